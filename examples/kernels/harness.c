/* harness.c: runs an example kernel on a device with seeded random inputs
 * (never zeros) and compares every output element with the kernel's
 * independent reference (plain C in double). Used by `tessera examples`,
 * the tests, the benchmarks and the tuner's checks. */
#include "kernels.h"
#include "ts_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const ts_example *ts_example_find(const char *name) {
    for (int i = 0; i < ts_example_count(); i++)
        if (strcmp(ts_example_get(i)->name, name) == 0) return ts_example_get(i);
    return NULL;
}

ts_status ts_ex_parse_sizes(const char *text, ts_ex_sizes *s) {
    static _Thread_local char names[TS_EX_MAX_SIZES][32];
    memset(s, 0, sizeof *s);
    const char *p = text;
    while (p && *p) {
        while (*p == ',' || *p == ' ') p++;
        if (!*p) break;
        const char *eq = strchr(p, '=');
        if (!eq || eq == p || eq - p >= 32 || s->n >= TS_EX_MAX_SIZES) {
            fprintf(stderr, "bad size list '%s' (expected NAME=VALUE,...)\n", text);
            return TS_ERR_INVALID_ARGUMENT;
        }
        memcpy(names[s->n], p, (size_t)(eq - p));
        names[s->n][eq - p] = 0;
        char *end;
        long long v = strtoll(eq + 1, &end, 10);
        if (end == eq + 1 || v < 0) {
            fprintf(stderr, "bad size value in '%s'\n", text);
            return TS_ERR_INVALID_ARGUMENT;
        }
        s->names[s->n] = names[s->n];
        s->values[s->n++] = v;
        p = end;
    }
    return TS_OK;
}

int64_t ts_ex_size(const ts_ex_sizes *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) return s->values[i];
    return -1;
}

void ts_ex_tolerance(ts_dtype dt, double *atol, double *rtol) {
    switch (dt) {
    case TS_F16: *atol = 1e-3; *rtol = 2e-3; break;
    case TS_BF16: *atol = 8e-3; *rtol = 1.6e-2; break;
    case TS_F64: *atol = 1e-12; *rtol = 1e-12; break;
    case TS_F8_E4M3: *atol = 0.125; *rtol = 0.25; break;
    case TS_F8_E5M2: *atol = 0.25; *rtol = 0.5; break;
    default: *atol = 1e-5; *rtol = 1e-5; break;
    }
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0; }

int ts_ex_configs(const ts_kernel *k, ts_config **out, int max) {
    int n = 0, nt = ts_kernel_tunable_count(k);
    if (n < max && ts_config_create(&out[n]) == TS_OK) n++; /* defaults */
    for (int variant = 0; variant < 3 && n < max; variant++) {
        if (nt == 0) break;
        ts_config *c;
        if (ts_config_create(&c)) break;
        for (int i = 0; i < nt; i++) {
            ts_tunable_info ti;
            ts_kernel_tunable(k, i, &ti);
            int64_t v = variant == 0 ? ti.min : variant == 1 ? ti.max : (i % 2 ? ti.min : ti.max);
            ts_config_set(c, ti.name, v);
        }
        out[n++] = c;
    }
    return n;
}

/* Stores v as element i of a host buffer of dtype dt; returns the stored value. */
static double encode(ts_dtype dt, void *host, int64_t i, double v) {
    switch (dt) {
    case TS_F32: { float f = (float)v; memcpy((char *)host + i * 4, &f, 4); return f; }
    case TS_F64: memcpy((char *)host + i * 8, &v, 8); return v;
    case TS_I32: { int32_t x = (int32_t)v; memcpy((char *)host + i * 4, &x, 4); return x; }
    case TS_I64: { int64_t x = (int64_t)v; memcpy((char *)host + i * 8, &x, 8); return (double)x; }
    case TS_U8: case TS_BOOL: { uint8_t x = (uint8_t)v; memcpy((char *)host + i, &x, 1); return x; }
    case TS_I8: case TS_I16: case TS_F8_E4M3: case TS_F8_E5M2: /* wrap; round to nearest even */
        ts__store_elem(dt, host, i, v);
        return ts__load_elem(dt, host, i);
    default: {
        /* f16 / bf16: the same bit-level rounding the library documents */
        uint16_t h = dt == TS_F16 ? ts__float_to_half((float)v) : ts__float_to_bf16((float)v);
        memcpy((char *)host + i * 2, &h, 2);
        return dt == TS_F16 ? ts__half_to_float(h) : ts__bf16_to_float(h);
    }
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

ts_status ts_ex_run_case(ts_context *ctx, const ts_example *ex, const ts_kernel *k, ts_dtype dt, const ts_ex_sizes *s, const ts_config *cfg,
                         int repeats, uint64_t seed, ts_ex_result *res) {
    memset(res, 0, sizeof *res);
    res->worst_param = -1;
    int np = ts_kernel_param_count(k);
    if (np > 16) return res->status = TS_ERR_LIMIT;
    ts_tensor *tensors[16] = {0};
    void *host[16] = {0};
    ts_ex_io io = {.nparams = np, .sizes = s};
    ts_arg args[16];
    ts_status st = TS_OK;
    uint64_t rng = seed * 2654435761u + 0x9e3779b97f4a7c15ull;
    if (!rng) rng = 1;
    for (int p = 0; p < np && !st; p++) {
        ts_param_info pi;
        ts_kernel_param(k, p, &pi);
        if (!pi.is_tensor) {
            double v = ex->scalar ? ex->scalar(p, s) : 1.0;
            io.scalar[p] = v;
            args[p] = ts_dtype_is_float(pi.dtype) ? TS_ARG_F(v) : TS_ARG_I((int64_t)v);
            continue;
        }
        int64_t shape[TS_MAX_RANK], n = 1;
        for (int d = 0; d < pi.rank; d++) {
            shape[d] = pi.size_names[d] ? ts_ex_size(s, pi.size_names[d]) : pi.fixed_sizes[d];
            if (shape[d] < 0) {
                snprintf(res->message, sizeof res->message, "size '%s' not given", pi.size_names[d]);
                st = TS_ERR_INVALID_ARGUMENT;
                break;
            }
            io.shape[p][d] = shape[d];
            n *= shape[d];
        }
        if (st) break;
        st = ts_tensor_create(ctx, pi.dtype, pi.rank, shape, &tensors[p]);
        if (st) {
            snprintf(res->message, sizeof res->message, "%s", ts_last_error());
            break;
        }
        size_t es = ts_dtype_size(pi.dtype);
        host[p] = calloc((size_t)(n ? n : 1), es);
        io.data[p] = calloc((size_t)(n ? n : 1), sizeof(double));
        if (!host[p] || !io.data[p]) { st = TS_ERR_OUT_OF_MEMORY; break; }
        int is_out = (ex->outputs >> p) & 1;
        int64_t bound = ex->int_bound ? ex->int_bound(p, s) : 100;
        for (int64_t i = 0; i < n; i++) {
            double v;
            if (is_out) v = ts_dtype_is_float(pi.dtype) ? NAN : -7; /* sentinel: unwritten elements fail */
            else if (ts_dtype_is_float(pi.dtype)) {
                v = rng_uniform(&rng) * 2.0;
                if (fabs(v) < 1e-3) v = 0.5; /* never zeros */
            } else v = (double)(rng_next(&rng) % (uint64_t)(bound > 0 ? bound : 1));
            io.data[p][i] = v;
        }
        if (ex->init) ex->init(p, io.data[p], n, s);
        /* The reference sees exactly the stored (rounded) values. */
        for (int64_t i = 0; i < n; i++) io.data[p][i] = encode(pi.dtype, host[p], i, io.data[p][i]);
        st = ts_tensor_write(tensors[p], host[p], (size_t)n * es);
        args[p] = TS_ARG_TENSOR(tensors[p]);
    }
    if (!st) {
        int runs = repeats > 1 ? repeats + 1 : 1;
        double times[64];
        int nt = 0;
        for (int r = 0; r < runs && !st; r++) {
            double ms = 0;
            st = ts_launch(ctx, k, cfg, args, np, &ms);
            if (st) snprintf(res->message, sizeof res->message, "%s", ts_last_error());
            else if (r > 0 || runs == 1) {
                if (nt < 64) times[nt++] = ms;
            }
        }
        if (nt) {
            qsort(times, (size_t)nt, sizeof times[0], cmp_double);
            res->ms = times[nt / 2];
        }
    }
    if (!st) {
        ex->reference(&io);
        double atol, rtol, scale = ex->tol_scale;
        if (ex->reduce_dim) {
            double len = (double)ts_ex_size(s, ex->reduce_dim);
            if (len > 64) scale *= sqrt(len / 64.0);
        }
        for (int p = 0; p < np && !st; p++) {
            if (!((ex->outputs >> p) & 1)) continue;
            ts_param_info pi;
            ts_kernel_param(k, p, &pi);
            int64_t n = ts_tensor_numel(tensors[p]);
            size_t es = ts_dtype_size(pi.dtype);
            st = ts_tensor_read(tensors[p], host[p], (size_t)n * es);
            if (st) break;
            ts_ex_tolerance(pi.dtype == TS_F32 && dt != TS_F32 ? dt : pi.dtype, &atol, &rtol);
            for (int64_t i = 0; i < n; i++) {
                double got;
                switch (pi.dtype) {
                case TS_F32: { float f; memcpy(&f, (char *)host[p] + i * 4, 4); got = f; break; }
                case TS_F64: memcpy(&got, (char *)host[p] + i * 8, 8); break;
                case TS_I32: { int32_t x; memcpy(&x, (char *)host[p] + i * 4, 4); got = x; break; }
                case TS_F16: {
                    uint16_t h; memcpy(&h, (char *)host[p] + i * 2, 2); got = ts__half_to_float(h); break;
                }
                case TS_BF16: {
                    uint16_t h; memcpy(&h, (char *)host[p] + i * 2, 2); got = ts__bf16_to_float(h); break;
                }
                default: got = ts__load_elem(pi.dtype, host[p], i); break;
                }
                double want = io.data[p][i];
                double err;
                if (isnan(want) && isnan(got)) err = 0;
                else if (isinf(want) && got == want) err = 0;
                else if (isnan(got) || isinf(got)) err = INFINITY;
                else err = fabs(got - want) / (scale * (atol + rtol * fabs(want)));
                if (err > res->max_err || (res->worst_param < 0)) {
                    if (err > res->max_err) res->max_err = err;
                    if (err >= res->max_err) {
                        res->worst_got = got;
                        res->worst_expected = want;
                        res->worst_index = i;
                        res->worst_param = p;
                    }
                }
            }
        }
        if (!st && res->max_err > 1.0) {
            ts_param_info pi;
            ts_kernel_param(k, res->worst_param, &pi);
            snprintf(res->message, sizeof res->message, "%s[%lld] = %.9g, expected %.9g (error %.3g x tolerance)", pi.name,
                     (long long)res->worst_index, res->worst_got, res->worst_expected, res->max_err);
            st = TS_ERR_MISMATCH;
        }
    }
    for (int p = 0; p < np; p++) {
        ts_tensor_destroy(tensors[p]);
        free(host[p]);
        free(io.data[p]);
    }
    res->status = st;
    return st;
}
