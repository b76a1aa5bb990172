/* check.c: one conformance case in this process.
 *
 * Sections: element access and ULPs; inputs (seeded, per dtype, with ties
 * and special values on request); layouts (contiguous, strided, transposed,
 * broadcast views of a storage tensor); a group (kernel x dtype x shape:
 * tensors on the device and on "ref", the reference result, the magnitude
 * run); one case (config): launch, status, comparison.
 *
 * Outputs are compared over their whole storage: inside the view with the
 * kernel's tolerance, outside it bit for bit against what was there before
 * the launch (a kernel must not write outside a view). */
#include "conf_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 16
#define BIG_ERR 1e30

/* ---------------------------------------------------------------- elements and ULPs */

static double get_elem(ts_dtype d, const unsigned char *img, int64_t i) {
    if (d == TS_BOOL || d == TS_U8) return img[i]; /* raw: a bool must be 0 or 1 */
    return ts__load_elem(d, img, i);
}

static void put_elem(ts_dtype d, unsigned char *img, int64_t i, double v) {
    if (d == TS_BOOL) img[i] = (unsigned char)v; /* raw, so the sentinel 7 survives */
    else ts__store_elem(d, img, i, v);
}

static void dtype_format(ts_dtype d, int *mant, int *emin) {
    switch (d) {
    case TS_F16: *mant = 10, *emin = -14; break;
    case TS_BF16: *mant = 7, *emin = -126; break;
    case TS_F64: *mant = 52, *emin = -1022; break;
    case TS_F8_E4M3: *mant = 3, *emin = -6; break;
    case TS_F8_E5M2: *mant = 2, *emin = -14; break;
    default: *mant = 23, *emin = -126; break;
    }
}

/* Spacing of dtype d's values at |e| (the binade of e; subnormal spacing below). */
static double ulp_of(double e, ts_dtype d) {
    int mant, emin, ex;
    dtype_format(d, &mant, &emin);
    if (!(fabs(e) > 0) || isinf(e)) return ldexp(1.0, emin - mant);
    frexp(fabs(e), &ex);
    int binade = ex - 1 < emin ? emin : ex - 1;
    return ldexp(1.0, binade - mant);
}

static double eps_of(ts_dtype d) {
    int mant, emin;
    dtype_format(d, &mant, &emin);
    return ldexp(1.0, -mant);
}

static int is_half(ts_dtype d) { return d == TS_F16 || d == TS_BF16 || d == TS_F8_E4M3 || d == TS_F8_E5M2; }

/* docs/tolerances.md */
static void rel_tolerance(ts_dtype d, double *atol, double *rtol) {
    switch (d) {
    case TS_F16: *atol = 1e-3, *rtol = 2e-3; break;
    case TS_BF16: *atol = 8e-3, *rtol = 1.6e-2; break;
    case TS_F64: *atol = 1e-12, *rtol = 1e-12; break;
    case TS_F8_E4M3: *atol = 0.125, *rtol = 0.25; break; /* about two units of the last place, as f16's and bf16's */
    case TS_F8_E5M2: *atol = 0.25, *rtol = 0.5; break;
    default: *atol = 1e-5, *rtol = 1e-5; break;
    }
}

/* ---------------------------------------------------------------- inputs */

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static double rng_u01(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

static double gen_float(uint64_t *rng, const ts_conformance_kernel *kd, int specials) {
    if (specials && rng_next(rng) % 8 == 0) {
        static const double sp[5] = {NAN, INFINITY, -INFINITY, 0.0, -0.0};
        return sp[rng_next(rng) % 5];
    }
    double lo = kd->lo, hi = kd->hi;
    if (lo == hi) lo = -2, hi = 2;
    double v = lo + (hi - lo) * rng_u01(rng);
    if (kd->quantum > 0) v = round(v / kd->quantum) * kd->quantum;
    if (!kd->allow_zero && fabs(v) < 1e-3) v = hi > 0.5 ? 0.5 : (lo + hi) / 2;
    if (kd->ties && (rng_next(rng) & 1)) {
        /* the midpoint between a value of ties_dtype and its neighbour away from zero */
        double a = ts__round_to(kd->ties_dtype, v);
        if (a != 0 && isfinite(a)) v = a + copysign(0.5 * ulp_of(a, kd->ties_dtype), a);
    }
    return v;
}

/* ---------------------------------------------------------------- the runner and its group */

typedef enum { ROLE_IN, ROLE_OUT, ROLE_ACC } role_t;

typedef struct param_state {
    int is_tensor;
    ts_dtype dtype;
    role_t role;
    int rank;
    int64_t shape[TS_MAX_RANK], strides[TS_MAX_RANK], offset;
    int64_t storage_n;
    size_t es;
    unsigned char *init, *init_abs, *expected, *mag, *got;
    int64_t *vidx; /* storage element -> row-major index in the view, -1 outside (outputs) */
    ts_tensor *dev_store, *dev_view, *ref_store, *ref_view;
    double scalar;
    char name[32];
} param_state;

struct ts__conf_runner {
    ts_context *dev, *ref;
    uint64_t seed;
    /* the current group */
    int have_group;
    const ts_conformance_kernel *kd;
    ts_dtype dt;
    int shape;
    ts_conformance_status group_status; /* PASS when set up */
    char group_msg[2048];
    ts_kernel *k;
    int np;
    param_state p[MAX_PARAMS];
    ts_config *cfgs[TS__CONF_MAX_CONFIGS];
    const char *cnames[TS__CONF_MAX_CONFIGS];
    int ncfg;
    ts_conformance_sizes sizes;
    double L;
};

ts_status ts__conf_runner_open(const char *backend, int device, uint64_t seed, ts__conf_runner **out) {
    *out = NULL;
    ts__conf_runner *r = ts__calloc(1, sizeof *r);
    if (!r) return TS_ERR_OUT_OF_MEMORY;
    r->seed = seed ? seed : 1;
    if (backend && strcmp(backend, "auto") == 0) backend = NULL;
    ts_status s = ts_context_create(backend, device, &r->dev);
    if (!s) s = ts_context_create("ref", 0, &r->ref);
    if (s) {
        ts_context_destroy(r->dev);
        free(r);
        return s;
    }
    *out = r;
    return TS_OK;
}

ts_context *ts__conf_runner_device(ts__conf_runner *r) { return r ? r->dev : NULL; }

static void free_group(ts__conf_runner *r) {
    for (int i = 0; i < r->np; i++) {
        param_state *p = &r->p[i];
        if (p->dev_view != p->dev_store) ts_tensor_destroy(p->dev_view);
        if (p->ref_view != p->ref_store) ts_tensor_destroy(p->ref_view);
        ts_tensor_destroy(p->dev_store);
        ts_tensor_destroy(p->ref_store);
        free(p->init);
        free(p->init_abs);
        free(p->expected);
        free(p->mag);
        free(p->got);
        free(p->vidx);
    }
    memset(r->p, 0, sizeof r->p);
    for (int i = 0; i < r->ncfg; i++) ts_config_destroy(r->cfgs[i]);
    r->ncfg = 0;
    ts_kernel_destroy(r->k);
    r->k = NULL;
    r->np = 0;
    r->have_group = 0;
}

void ts__conf_runner_close(ts__conf_runner *r) {
    if (!r) return;
    free_group(r);
    ts_context_destroy(r->dev);
    ts_context_destroy(r->ref);
    free(r);
}

/* Strides, offset and storage size of a tensor parameter under a view kind. */
static void make_layout(param_state *p, ts_conformance_view view) {
    int r = p->rank;
    int64_t n = 1;
    for (int d = 0; d < r; d++) n *= p->shape[d];
    p->offset = 0;
    if (view == TS_CONFORMANCE_STRIDED) {
        p->strides[r - 1] = 2;
        for (int d = r - 2; d >= 0; d--) p->strides[d] = p->strides[d + 1] * (p->shape[d + 1] > 0 ? p->shape[d + 1] : 1) + 1;
        p->offset = 1;
        int64_t last = p->offset;
        for (int d = 0; d < r; d++) last += (p->shape[d] > 0 ? p->shape[d] - 1 : 0) * p->strides[d];
        p->storage_n = n ? last + 2 : 2;
        return;
    }
    if (view == TS_CONFORMANCE_TRANSPOSED && r >= 2) {
        int64_t s[TS_MAX_RANK], acc = 1;
        memcpy(s, p->shape, sizeof s);
        s[r - 1] = p->shape[r - 2];
        s[r - 2] = p->shape[r - 1];
        int64_t ss[TS_MAX_RANK];
        for (int d = r - 1; d >= 0; d--) ss[d] = acc, acc *= s[d];
        for (int d = 0; d < r - 2; d++) p->strides[d] = ss[d];
        p->strides[r - 2] = ss[r - 1];
        p->strides[r - 1] = ss[r - 2];
        p->storage_n = n;
        return;
    }
    if (view == TS_CONFORMANCE_BROADCAST && r >= 2 && p->role == ROLE_IN) {
        int64_t acc = 1;
        for (int d = r - 1; d >= 1; d--) p->strides[d] = acc, acc *= p->shape[d];
        p->strides[0] = 0;
        p->storage_n = acc;
        return;
    }
    int64_t acc = 1;
    for (int d = r - 1; d >= 0; d--) p->strides[d] = acc, acc *= p->shape[d];
    p->storage_n = n;
}

static int is_plain(const param_state *p) {
    if (p->offset) return 0;
    int64_t acc = 1;
    for (int d = p->rank - 1; d >= 0; d--) {
        if (p->strides[d] != acc) return 0;
        acc *= p->shape[d];
    }
    return acc == p->storage_n;
}

/* Storage and view of p on ctx. */
static ts_status make_tensors(ts_context *ctx, param_state *p, ts_tensor **store, ts_tensor **view) {
    if (is_plain(p)) {
        ts_status s = ts_tensor_create(ctx, p->dtype, p->rank, p->shape, store);
        *view = *store;
        return s;
    }
    int64_t n = p->storage_n;
    ts_status s = ts_tensor_create(ctx, p->dtype, 1, &n, store);
    if (s) return s;
    return ts_tensor_view(*store, p->rank, p->shape, p->strides, p->offset, view);
}

static void for_each_index(const param_state *p, void (*fn)(const param_state *, int64_t logical, int64_t storage, void *), void *u) {
    int64_t n = 1;
    for (int d = 0; d < p->rank; d++) n *= p->shape[d];
    int64_t idx[TS_MAX_RANK] = {0};
    for (int64_t i = 0; i < n; i++) {
        int64_t off = p->offset;
        for (int d = 0; d < p->rank; d++) off += idx[d] * p->strides[d];
        fn(p, i, off, u);
        for (int d = p->rank - 1; d >= 0; d--) {
            if (++idx[d] < p->shape[d]) break;
            idx[d] = 0;
        }
    }
}

static void mark_vidx(const param_state *p, int64_t logical, int64_t storage, void *u) {
    (void)u;
    p->vidx[storage] = logical;
}

static ts_status write_all(param_state *ps, int np, int use_ref, int abs_inputs) {
    for (int i = 0; i < np; i++) {
        param_state *p = &ps[i];
        if (!p->is_tensor || p->storage_n == 0) continue;
        const unsigned char *img = abs_inputs && p->init_abs ? p->init_abs : p->init;
        ts_status s = ts_tensor_write(use_ref ? p->ref_store : p->dev_store, img, (size_t)p->storage_n * p->es);
        if (s) return s;
    }
    return TS_OK;
}

static ts_status read_outputs(param_state *ps, int np, int use_ref, int into_mag) {
    for (int i = 0; i < np; i++) {
        param_state *p = &ps[i];
        if (!p->is_tensor || p->role == ROLE_IN || p->storage_n == 0) continue;
        unsigned char *dst = use_ref ? (into_mag ? p->mag : p->expected) : p->got;
        ts_status s = ts_tensor_read(use_ref ? p->ref_store : p->dev_store, dst, (size_t)p->storage_n * p->es);
        if (s) return s;
    }
    return TS_OK;
}

static void make_args(ts__conf_runner *r, int use_ref, ts_arg *args) {
    for (int i = 0; i < r->np; i++) {
        param_state *p = &r->p[i];
        if (p->is_tensor) args[i] = TS_ARG_TENSOR(use_ref ? p->ref_view : p->dev_view);
        else if (ts_dtype_is_float(p->dtype)) args[i] = TS_ARG_F(p->scalar);
        else args[i] = TS_ARG_I((int64_t)p->scalar);
    }
}

static uint64_t group_seed(const ts__conf_runner *r, const ts__conf_case *c) {
    uint64_t h = ts__hash_u64(TS__HASH_INIT, r->seed);
    h = ts__hash_str(h, c->kd->name);
    h = ts__hash_u64(h, (uint64_t)c->dt);
    h = ts__hash_str(h, c->kd->shapes[c->shape].sizes);
    h = ts__hash_u64(h, (uint64_t)c->kd->shapes[c->shape].view);
    return h ? h : 1;
}

static void group_fail(ts__conf_runner *r, ts_conformance_status st, const char *fmt, const char *detail) {
    r->group_status = st;
    snprintf(r->group_msg, sizeof r->group_msg, fmt, detail);
}

static int uses_sum_tolerance(const ts_conformance_kernel *kd) { return kd->tol.kind == TS_CONFORMANCE_TOL_SUM; }

static void setup_group(ts__conf_runner *r, const ts__conf_case *c) {
    free_group(r);
    const ts_conformance_kernel *kd = c->kd;
    const ts_conformance_shape *sh = &kd->shapes[c->shape];
    r->have_group = 1;
    r->kd = kd;
    r->dt = c->dt;
    r->shape = c->shape;
    r->group_status = TS_CONFORMANCE_PASS;
    r->group_msg[0] = 0;
    char tmp[1024];

    if (kd->build(kd, c->dt, &r->k) != TS_OK) {
        group_fail(r, TS_CONFORMANCE_FAIL, "the kernel does not build: %s", ts_last_error());
        return;
    }
    r->ncfg = ts__conf_configs(r->k, r->cfgs, r->cnames, TS__CONF_MAX_CONFIGS);
    if (ts__conf_parse_sizes(sh->sizes, &r->sizes) != TS_OK) {
        group_fail(r, TS_CONFORMANCE_FAIL, "%s", ts_last_error());
        return;
    }
    r->np = ts_kernel_param_count(r->k);
    if (r->np > MAX_PARAMS) {
        r->np = 0;
        group_fail(r, TS_CONFORMANCE_FAIL, "%s", "more than 16 parameters");
        return;
    }
    /* caps: storage of every dtype, f32 atomics */
    const ts_device_caps *caps = ts_context_caps(r->dev);
    for (int i = 0; i < r->np; i++) {
        ts_param_info pi;
        ts_kernel_param(r->k, i, &pi);
        if (pi.is_tensor && !ts_device_supports_dtype(r->dev, pi.dtype)) {
            snprintf(tmp, sizeof tmp, "the device does not store %s (caps.dtype_mask)", ts_dtype_name(pi.dtype));
            group_fail(r, TS_CONFORMANCE_NOT_SUPPORTED, "%s", tmp);
            r->np = 0;
            return;
        }
    }
    if (kd->atomics && c->dt == TS_F32 && caps && !caps->has_atomics_f32) {
        group_fail(r, TS_CONFORMANCE_NOT_SUPPORTED, "%s", "the device has no f32 atomic add (caps.has_atomics_f32)");
        r->np = 0;
        return;
    }
    /* the reduced length L */
    r->L = 1;
    if (kd->reduce_size) r->L = (double)ts_conformance_size(&r->sizes, kd->reduce_size);
    else
        for (int i = 0; i < r->sizes.n; i++) r->L *= (double)r->sizes.values[i];
    if (r->L < 1) r->L = 1;

    uint64_t rng = group_seed(r, c);
    for (int i = 0; i < r->np; i++) {
        param_state *p = &r->p[i];
        ts_param_info pi;
        ts_kernel_param(r->k, i, &pi);
        snprintf(p->name, sizeof p->name, "%s", pi.name);
        p->is_tensor = pi.is_tensor;
        p->dtype = pi.dtype;
        if (!pi.is_tensor) {
            p->scalar = kd->scalar ? kd->scalar(kd, i, &r->sizes) : 1.0;
            continue;
        }
        p->role = (kd->accumulate >> i) & 1 ? ROLE_ACC : (kd->outputs >> i) & 1 ? ROLE_OUT : ROLE_IN;
        p->rank = pi.rank;
        for (int d = 0; d < pi.rank; d++) {
            p->shape[d] = pi.size_names[d] ? ts_conformance_size(&r->sizes, pi.size_names[d]) : pi.fixed_sizes[d];
            if (p->shape[d] < 0) {
                group_fail(r, TS_CONFORMANCE_FAIL, "size '%s' is not given by the shape", pi.size_names[d]);
                return;
            }
        }
        make_layout(p, sh->view);
        p->es = ts_dtype_size(p->dtype);
        size_t bytes = (size_t)(p->storage_n ? p->storage_n : 1) * p->es;
        p->init = malloc(bytes);
        if (!p->init) {
            group_fail(r, TS_CONFORMANCE_FAIL, "%s", "out of memory");
            return;
        }
        int64_t lo = kd->int_lo, hi = kd->int_hi;
        if (lo == hi) lo = 0, hi = 100;
        if (kd->int_range) kd->int_range(kd, i, &r->sizes, &lo, &hi);
        if (hi <= lo) hi = lo + 1;
        for (int64_t e = 0; e < p->storage_n; e++) {
            double v;
            if (p->role == ROLE_OUT) v = ts_dtype_is_float(p->dtype) ? NAN : p->dtype == TS_BOOL ? 7 : -7; /* unwritten elements show */
            else if (ts_dtype_is_float(p->dtype)) v = gen_float(&rng, kd, sh->specials);
            else v = (double)(lo + (int64_t)(rng_next(&rng) % (uint64_t)(hi - lo)));
            put_elem(p->dtype, p->init, e, v);
        }
        if (p->role != ROLE_IN) {
            p->expected = malloc(bytes);
            p->got = malloc(bytes);
            p->vidx = malloc((size_t)(p->storage_n ? p->storage_n : 1) * sizeof *p->vidx);
            if (!p->expected || !p->got || !p->vidx) {
                group_fail(r, TS_CONFORMANCE_FAIL, "%s", "out of memory");
                return;
            }
            for (int64_t e = 0; e < p->storage_n; e++) p->vidx[e] = -1;
            for_each_index(p, mark_vidx, NULL);
        }
        ts_status s = make_tensors(r->dev, p, &p->dev_store, &p->dev_view);
        if (s) {
            snprintf(tmp, sizeof tmp, "tensor '%s' on the device: %s: %s", p->name, ts_status_name(s), ts_last_error());
            group_fail(r, s == TS_ERR_UNSUPPORTED || s == TS_ERR_LIMIT ? TS_CONFORMANCE_NOT_SUPPORTED : TS_CONFORMANCE_FAIL, "%s", tmp);
            return;
        }
        s = make_tensors(r->ref, p, &p->ref_store, &p->ref_view);
        if (s) {
            group_fail(r, TS_CONFORMANCE_FAIL, "tensor on the reference: %s", ts_last_error());
            return;
        }
    }
    /* the reference result, with the kernel's default config */
    ts_arg args[MAX_PARAMS];
    make_args(r, 1, args);
    ts_status s = write_all(r->p, r->np, 1, 0);
    if (!s) s = ts_launch(r->ref, r->k, r->cfgs[0], args, r->np, NULL);
    if (!s) s = read_outputs(r->p, r->np, 1, 0);
    if (s) {
        snprintf(tmp, sizeof tmp, "%s: %s", ts_status_name(s), ts_last_error());
        group_fail(r, TS_CONFORMANCE_FAIL, "the reference run failed: %s", tmp);
        return;
    }
    /* the magnitude run: the same kernel on |inputs| bounds the rounding error of sums */
    if (uses_sum_tolerance(kd)) {
        for (int i = 0; i < r->np; i++) {
            param_state *p = &r->p[i];
            if (!p->is_tensor || p->role == ROLE_OUT) continue;
            if (p->role == ROLE_ACC || ts_dtype_is_float(p->dtype)) {
                size_t bytes = (size_t)(p->storage_n ? p->storage_n : 1) * p->es;
                p->init_abs = malloc(bytes);
                if (!p->init_abs) continue;
                memcpy(p->init_abs, p->init, bytes);
                if (ts_dtype_is_float(p->dtype))
                    for (int64_t e = 0; e < p->storage_n; e++) put_elem(p->dtype, p->init_abs, e, fabs(get_elem(p->dtype, p->init, e)));
            }
            if (p->role == ROLE_ACC) {
                size_t bytes = (size_t)(p->storage_n ? p->storage_n : 1) * p->es;
                p->mag = malloc(bytes);
            }
        }
        for (int i = 0; i < r->np; i++)
            if (r->p[i].is_tensor && r->p[i].role == ROLE_OUT) r->p[i].mag = malloc((size_t)(r->p[i].storage_n ? r->p[i].storage_n : 1) * r->p[i].es);
        s = write_all(r->p, r->np, 1, 1);
        if (!s) s = ts_launch(r->ref, r->k, r->cfgs[0], args, r->np, NULL);
        if (!s) s = read_outputs(r->p, r->np, 1, 1);
        if (s) {
            snprintf(tmp, sizeof tmp, "%s: %s", ts_status_name(s), ts_last_error());
            group_fail(r, TS_CONFORMANCE_FAIL, "the reference run on |inputs| failed: %s", tmp);
        }
    }
}

/* ---------------------------------------------------------------- comparison */

/* |got - exp| over the bound; <= 1 passes. */
static double elem_err(const ts__conf_runner *r, const param_state *p, double e, double g, double mag) {
    const ts_conformance_tolerance *t = &r->kd->tol;
    ts_dtype d = p->dtype;
    if (isnan(e) && isnan(g)) return 0;
    if (isnan(e) || isnan(g)) return BIG_ERR;
    if (isinf(e) || isinf(g)) return e == g ? 0 : BIG_ERR;
    double bound = 0;
    switch (t->kind) {
    case TS_CONFORMANCE_TOL_EXACT: break;
    case TS_CONFORMANCE_TOL_ULP:
        bound = (is_half(d) ? t->half_ulps : t->ulps) * ulp_of(e, d) + t->abs_ulps * eps_of(d);
        break;
    case TS_CONFORMANCE_TOL_SUM: {
        double u = d == TS_F64 || r->dt == TS_F64 ? ldexp(1.0, -53) : ldexp(1.0, -24);
        double growth = t->growth > 0 ? t->growth : 2;
        bound = (2 + growth * sqrt(r->L)) * u * (isfinite(mag) ? fabs(mag) : 0) + (is_half(d) ? t->half_ulps : t->ulps) * ulp_of(e, d);
        break;
    }
    case TS_CONFORMANCE_TOL_REL: {
        double atol, rtol;
        rel_tolerance(d == TS_F32 && ts_dtype_is_float(r->dt) && r->dt != TS_F32 ? r->dt : d, &atol, &rtol);
        double scale = (t->scale > 0 ? t->scale : 1) * (r->L > 64 ? sqrt(r->L / 64) : 1);
        bound = scale * (atol + rtol * fabs(e));
        break;
    }
    }
    if (bound <= 0) return g == e ? 0 : BIG_ERR;
    return fabs(g - e) / bound;
}

static void compare(ts__conf_runner *r, ts_conformance_result *res) {
    int worst_outside = 0;
    for (int i = 0; i < r->np; i++) {
        param_state *p = &r->p[i];
        if (!p->is_tensor || p->role == ROLE_IN) continue;
        int is_float = ts_dtype_is_float(p->dtype);
        for (int64_t s = 0; s < p->storage_n; s++) {
            int64_t li = p->vidx[s];
            double e, g, err;
            const unsigned char *gb = p->got + s * (int64_t)p->es;
            if (li < 0) { /* outside the view: must be untouched */
                e = get_elem(p->dtype, p->init, s);
                g = get_elem(p->dtype, p->got, s);
                err = memcmp(gb, p->init + s * (int64_t)p->es, p->es) ? BIG_ERR : 0;
            } else {
                e = get_elem(p->dtype, p->expected, s);
                g = get_elem(p->dtype, p->got, s);
                if (!is_float) err = memcmp(gb, p->expected + s * (int64_t)p->es, p->es) ? BIG_ERR : 0;
                else err = elem_err(r, p, e, g, p->mag ? get_elem(p->dtype, p->mag, s) : 0);
            }
            if (err > res->max_err || res->worst_param[0] == 0) {
                if (err > res->max_err || res->worst_param[0] == 0) {
                    res->max_err = err > res->max_err ? err : res->max_err;
                    snprintf(res->worst_param, sizeof res->worst_param, "%s", p->name);
                    res->worst_index = li >= 0 ? li : -1 - s;
                    res->expected = e;
                    res->got = g;
                    worst_outside = li < 0;
                }
            }
        }
    }
    if (res->max_err > 1) {
        res->status = TS_CONFORMANCE_FAIL;
        if (worst_outside)
            snprintf(res->message, sizeof res->message, "%s: storage element %lld outside the view was changed: %.9g, was %.9g", res->worst_param,
                     (long long)(-1 - res->worst_index), res->got, res->expected);
        else if (res->max_err >= BIG_ERR)
            snprintf(res->message, sizeof res->message, "%s[%lld] = %.9g, expected %.9g (must match exactly)", res->worst_param,
                     (long long)res->worst_index, res->got, res->expected);
        else
            snprintf(res->message, sizeof res->message, "%s[%lld] = %.9g, expected %.9g (%.3g x the tolerance)", res->worst_param,
                     (long long)res->worst_index, res->got, res->expected, res->max_err);
    }
}

/* ---------------------------------------------------------------- one case */

void ts__conf_result_init(ts_conformance_result *res, const ts__conf_case *c) {
    memset(res, 0, sizeof *res);
    snprintf(res->id, sizeof res->id, "%s", c->id);
    snprintf(res->kernel, sizeof res->kernel, "%s", c->kd->name);
    snprintf(res->group, sizeof res->group, "%s", c->kd->group ? c->kd->group : "other");
    snprintf(res->dtype, sizeof res->dtype, "%s", ts_dtype_name(c->dt));
    snprintf(res->shape_class, sizeof res->shape_class, "%s", c->shape_name);
    snprintf(res->sizes, sizeof res->sizes, "%s", c->kd->shapes[c->shape].sizes);
    snprintf(res->config, sizeof res->config, "%s", c->config_text);
    res->worst_index = -1;
}

void ts__conf_runner_run(ts__conf_runner *r, const ts__conf_case *c, ts_conformance_result *res) {
    double t0 = ts__now_ms();
    ts__conf_result_init(res, c);
    if (!r->have_group || r->kd != c->kd || r->dt != c->dt || r->shape != c->shape) setup_group(r, c);
    if (r->group_status != TS_CONFORMANCE_PASS) {
        res->status = r->group_status;
        snprintf(res->message, sizeof res->message, "%s", r->group_msg);
        res->wall_ms = ts__now_ms() - t0;
        return;
    }
    if (c->config >= r->ncfg) {
        res->status = TS_CONFORMANCE_FAIL;
        snprintf(res->message, sizeof res->message, "config %d does not exist", c->config);
        res->wall_ms = ts__now_ms() - t0;
        return;
    }
    ts_arg args[MAX_PARAMS];
    make_args(r, 0, args);
    ts_clear_error();
    ts_status s = write_all(r->p, r->np, 0, 0);
    double ms = 0;
    if (!s) s = ts_launch(r->dev, r->k, r->cfgs[c->config], args, r->np, &ms);
    res->device_ms = ms;
    if (s) {
        const char *why = ts_last_error();
        switch (s) {
        case TS_ERR_BAD_CONFIG:
        case TS_ERR_UNSUPPORTED:
            res->status = TS_CONFORMANCE_NOT_SUPPORTED;
            snprintf(res->message, sizeof res->message, "%s: %s", ts_status_name(s), why);
            break;
        case TS_ERR_COMPILE:
            res->status = TS_CONFORMANCE_COMPILE_ERROR;
            snprintf(res->message, sizeof res->message, "%s", why[0] ? why : "compilation failed (no log)");
            break;
        case TS_ERR_TIMEOUT:
            res->status = TS_CONFORMANCE_TIMEOUT;
            snprintf(res->message, sizeof res->message, "the backend timed out: %s", why);
            break;
        default:
            res->status = TS_CONFORMANCE_FAIL;
            snprintf(res->message, sizeof res->message, "launch failed: %s: %s", ts_status_name(s), why);
            break;
        }
        res->wall_ms = ts__now_ms() - t0;
        return;
    }
    s = read_outputs(r->p, r->np, 0, 0);
    if (s) {
        res->status = TS_CONFORMANCE_FAIL;
        snprintf(res->message, sizeof res->message, "reading the outputs failed: %s: %s", ts_status_name(s), ts_last_error());
    } else {
        res->status = TS_CONFORMANCE_PASS;
        compare(r, res);
    }
    res->wall_ms = ts__now_ms() - t0;
}
