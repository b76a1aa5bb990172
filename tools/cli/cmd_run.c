/* cmd_run.c: `tessera run FILE.tile|NAME`: runs one kernel on a backend
 * with seeded random inputs (never zeros), or with the user's data
 * (`--inputs DIR`: DIR/NAME.npy for tensor parameter NAME, whose shapes bind
 * the size symbols), and checks every tensor against the reference executor
 * (the "ref" backend) run on the same inputs; for an example kernel also
 * against its independent C reference (the harness). `--outputs DIR` writes
 * every tensor parameter, as the backend left it, to DIR/NAME.npy
 * (formats/npy.c reads and writes the files).
 *
 * Sections: argument helpers shared with cmd_compile.c; loading a kernel;
 * sizes; inputs; .npy inputs and outputs; one run on one context; the
 * command. */
#include "cli.h"
#include "cli_lang.h"
#include "ir.h"
#include "npy.h"
#include "tessera_tune.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- argument helpers */

static const char *const value_options[] = {"--backend", "--shape", "--dtype", "--config", "--scalar", "--target", "--repeat", "--seed", "--inputs", "--outputs", NULL};

const char *ts_cli_positional(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) return argv[i];
        for (int o = 0; value_options[o]; o++)
            if (strcmp(argv[i], value_options[o]) == 0) {
                i++;
                break;
            }
    }
    return NULL;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    while (s) {
        if (n + 1 >= cap) {
            char *t = cap < ((size_t)16 << 20) ? realloc(s, cap * 2) : NULL;
            if (!t) { free(s); s = NULL; break; }
            s = t;
            cap *= 2;
        }
        size_t r = fread(s + n, 1, cap - n - 1, f);
        if (r == 0) break;
        n += r;
    }
    fclose(f);
    if (s) s[n] = 0;
    return s;
}

/* ---------------------------------------------------------------- loading a kernel */

int ts_cli_load_kernel(const char *target, const char *dtype_opt, ts_cli_kernel *out) {
    memset(out, 0, sizeof *out);
    ts_dtype want = TS_F32;
    if (dtype_opt && ts_dtype_parse(dtype_opt, &want) != TS_OK) {
        fprintf(stderr, "tessera: unknown dtype '%s'\n", dtype_opt);
        return 2;
    }
    FILE *probe = fopen(target, "rb");
    if (probe) fclose(probe);
    if (ends_with(target, ".tile") || (probe && !ts_example_find(target))) {
        if (dtype_opt) {
            fprintf(stderr, "tessera: --dtype applies to example names; a .tile file states its dtypes\n");
            return 2;
        }
        char *text = read_file(target);
        if (!text) {
            fprintf(stderr, "tessera: cannot read '%s'\n", target);
            return 2;
        }
        ts_status s = ts_kernel_parse(text, target, &out->k);
        free(text);
        if (s) {
            fprintf(stderr, "%s\n", ts_last_error());
            return 1;
        }
        out->from_file = 1;
        /* the same IR as an example's: use its sizes, scalars and independent check */
        const ts_example *ex = ts_example_find(ts_kernel_name(out->k));
        for (int d = 0; ex && d < ex->ndtypes && !out->ex; d++) {
            ts_kernel *c = NULL;
            if (ex->build(ex->dtypes[d], &c) == TS_OK && ts_kernel_equal(c, out->k)) {
                out->ex = ex;
                out->dt = ex->dtypes[d];
            }
            ts_kernel_destroy(c);
        }
        return 0;
    }
    const ts_example *ex = ts_example_find(target);
    if (!ex) {
        fprintf(stderr, "tessera: '%s' is neither a .tile file nor an example kernel (tessera examples lists them)\n", target);
        return 2;
    }
    ts_dtype dt = dtype_opt ? want : ex->dtypes[0];
    int ok = 0;
    for (int d = 0; d < ex->ndtypes; d++) ok |= ex->dtypes[d] == dt;
    if (!ok) {
        fprintf(stderr, "tessera: example '%s' is not built for %s (it has:", ex->name, ts_dtype_name(dt));
        for (int d = 0; d < ex->ndtypes; d++) fprintf(stderr, " %s", ts_dtype_name(ex->dtypes[d]));
        fprintf(stderr, ")\n");
        return 2;
    }
    if (ex->build(dt, &out->k) != TS_OK) {
        fprintf(stderr, "tessera: building '%s' failed: %s\n", ex->name, ts_last_error());
        return 1;
    }
    out->ex = ex;
    out->dt = dt;
    return 0;
}

/* ---------------------------------------------------------------- sizes */

int64_t ts_cli_size(const ts_cli_sizes *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) return s->values[i];
    return -1;
}

static int set_size(ts_cli_sizes *s, const char *name, size_t len, int64_t v) {
    if (len == 0 || len >= sizeof s->names[0]) return -1;
    for (int i = 0; i < s->n; i++)
        if (strlen(s->names[i]) == len && strncmp(s->names[i], name, len) == 0) {
            s->values[i] = v;
            return 0;
        }
    if (s->n >= TS_CLI_MAX_SIZES) return -1;
    memcpy(s->names[s->n], name, len);
    s->names[s->n][len] = 0;
    s->values[s->n++] = v;
    return 0;
}

/* "M=127,N=1000" (also used for --scalar, where values may be reals). */
static int parse_bindings(const char *text, ts_cli_sizes *s, double *reals, const char *what) {
    const char *p = text;
    while (*p) {
        while (*p == ',' || *p == ' ') p++;
        if (!*p) break;
        const char *eq = strchr(p, '=');
        char *end = NULL;
        double v = eq ? strtod(eq + 1, &end) : 0;
        if (!eq || end == eq + 1 || (*end && *end != ',') || (!reals && (v < 0 || v != floor(v))) ||
            set_size(s, p, (size_t)(eq - p), (int64_t)v)) {
            fprintf(stderr, "tessera: bad %s list '%s' (expected NAME=VALUE,...)\n", what, text);
            return -1;
        }
        if (reals) reals[s->n - 1] = v;
        p = end;
    }
    return 0;
}

int ts_cli_sizes_for(const ts_cli_kernel *ck, const char *shape_opt, ts_cli_sizes *out) {
    memset(out, 0, sizeof *out);
    if (ck->ex && parse_bindings(ck->ex->sizes[0], out, NULL, "size")) return 2;
    if (shape_opt && parse_bindings(shape_opt, out, NULL, "--shape")) return 2;
    for (int p = 0; p < ts_kernel_param_count(ck->k); p++) {
        ts_param_info pi;
        ts_kernel_param(ck->k, p, &pi);
        for (int d = 0; d < pi.rank; d++)
            if (pi.size_names[d] && ts_cli_size(out, pi.size_names[d]) < 0 &&
                set_size(out, pi.size_names[d], strlen(pi.size_names[d]), 100)) {
                fprintf(stderr, "tessera: too many sizes\n");
                return 2;
            }
    }
    return 0;
}

void ts_cli_sizes_format(const ts_cli_sizes *s, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < s->n && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%s=%lld", i ? "," : "", s->names[i], (long long)s->values[i]);
}

/* ---------------------------------------------------------------- inputs */

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Host copies of every argument (tensors packed in their dtype). */
typedef struct run_inputs {
    int np;
    void *host[16];
    int64_t shape[16][TS_MAX_RANK];
    int64_t numel[16];
    ts_param_info info[16];
    ts_arg scalars[16];
} run_inputs;

static void inputs_free(run_inputs *in) {
    for (int p = 0; p < in->np; p++) free(in->host[p]);
}

/* Random tensors, never zeros for floats; integer tensors in [0, bound)
 * (the example's bound, else the smallest size, so they are valid indices). */
static int make_inputs(const ts_cli_kernel *ck, const ts_cli_sizes *sz, const char *scalar_opt, uint64_t seed, run_inputs *in) {
    memset(in, 0, sizeof *in);
    int np = ts_kernel_param_count(ck->k);
    if (np > 16) {
        fprintf(stderr, "tessera run: at most 16 parameters\n");
        return 2;
    }
    ts_cli_sizes given;
    double reals[TS_CLI_MAX_SIZES] = {0};
    memset(&given, 0, sizeof given);
    if (scalar_opt && parse_bindings(scalar_opt, &given, reals, "--scalar")) return 2;
    ts_ex_sizes exs = {0};
    for (int i = 0; i < sz->n && i < TS_EX_MAX_SIZES; i++) {
        exs.names[exs.n] = sz->names[i];
        exs.values[exs.n++] = sz->values[i];
    }
    int64_t smallest = INT64_MAX;
    for (int i = 0; i < sz->n; i++)
        if (sz->values[i] > 0 && sz->values[i] < smallest) smallest = sz->values[i];
    uint64_t rng = seed * 2654435761u + 0x9e3779b97f4a7c15ull;
    in->np = np;
    for (int p = 0; p < np; p++) {
        ts_param_info *pi = &in->info[p];
        ts_kernel_param(ck->k, p, pi);
        if (!pi->is_tensor) {
            double v = 1.0;
            for (int i = 0; i < given.n; i++)
                if (strcmp(given.names[i], pi->name) == 0) v = reals[i];
            if (ck->ex && ck->ex->scalar) {
                int set = 0;
                for (int i = 0; i < given.n; i++) set |= strcmp(given.names[i], pi->name) == 0;
                if (!set) v = ck->ex->scalar(p, &exs);
            }
            in->scalars[p] = ts_dtype_is_float(pi->dtype) ? TS_ARG_F(v) : TS_ARG_I((int64_t)v);
            continue;
        }
        int64_t n = 1;
        for (int d = 0; d < pi->rank; d++) {
            in->shape[p][d] = pi->size_names[d] ? ts_cli_size(sz, pi->size_names[d]) : pi->fixed_sizes[d];
            n *= in->shape[p][d];
        }
        in->numel[p] = n;
        in->host[p] = calloc((size_t)(n ? n : 1), ts_dtype_size(pi->dtype));
        if (!in->host[p]) {
            fprintf(stderr, "tessera run: out of memory\n");
            return 1;
        }
        int64_t bound = ck->ex && ck->ex->int_bound ? ck->ex->int_bound(p, &exs) : smallest == INT64_MAX ? 1 : smallest;
        if (bound < 1) bound = 1;
        for (int64_t i = 0; i < n; i++) {
            double v;
            if (pi->dtype == TS_BOOL) v = (double)(rng_next(&rng) & 1);
            else if (ts_dtype_is_float(pi->dtype)) {
                v = (double)(rng_next(&rng) >> 11) / 9007199254740992.0 * 4.0 - 2.0;
                if (fabs(v) < 1e-3) v = 0.5;
            } else v = (double)(rng_next(&rng) % (uint64_t)bound);
            ts__store_elem(pi->dtype, in->host[p], i, v);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- .npy inputs and outputs */

/* "x: f32[M, N]" */
static void param_signature(const ts_param_info *pi, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "%s: %s[", pi->name, ts_dtype_name(pi->dtype));
    for (int d = 0; d < pi->rank && k < n; d++) {
        if (pi->size_names[d]) k += (size_t)snprintf(buf + k, n - k, "%s%s", d ? ", " : "", pi->size_names[d]);
        else k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)pi->fixed_sizes[d]);
    }
    if (k < n) snprintf(buf + k, n - k, "]");
}

static int npy_path(const char *dir, const char *name, char *buf, size_t n) {
    size_t l = strlen(dir);
    int w = snprintf(buf, n, "%s%s%s.npy", dir, l && dir[l - 1] == '/' ? "" : "/", name);
    if (w < 0 || (size_t)w >= n) {
        fprintf(stderr, "tessera run: path too long: '%s/%s.npy'\n", dir, name);
        return -1;
    }
    return 0;
}

/* The files of --inputs: file[p] for the tensor parameters that have one
 * (have[p]); `bound` holds the sizes their shapes bind, bound_by[i] the
 * file that bound sizes entry i. */
typedef struct npy_inputs {
    int have[16];
    ts__npy file[16];
    char path[16][1024];
    ts_cli_sizes bound;
    int bound_by[TS_CLI_MAX_SIZES];
} npy_inputs;

static void npy_inputs_free(npy_inputs *ni) {
    for (int p = 0; p < 16; p++) ts__npy_free(&ni->file[p]);
}

/* Warns about the .npy files of dir that name no tensor parameter. */
static int warn_unused_files(const ts_kernel *k, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "tessera run: cannot open the --inputs folder '%s': %s\n", dir, strerror(errno));
        return 2;
    }
    int np = ts_kernel_param_count(k);
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l <= 4 || strcmp(e->d_name + l - 4, ".npy") != 0) continue;
        int found = 0, scalar = 0;
        for (int p = 0; p < np; p++) {
            ts_param_info pi;
            ts_kernel_param(k, p, &pi);
            if (strlen(pi.name) == l - 4 && strncmp(pi.name, e->d_name, l - 4) == 0) {
                found = pi.is_tensor;
                scalar = !pi.is_tensor;
            }
        }
        if (scalar)
            fprintf(stderr, "tessera run: warning: %s/%s ignored: '%.*s' is a scalar parameter (set it with --scalar)\n", dir, e->d_name, (int)(l - 4),
                    e->d_name);
        else if (!found)
            fprintf(stderr, "tessera run: warning: %s/%s ignored: kernel %s has no tensor parameter '%.*s'\n", dir, e->d_name, ts_kernel_name(k),
                    (int)(l - 4), e->d_name);
    }
    closedir(d);
    return 0;
}

/* Loads DIR/NAME.npy for every tensor parameter NAME that has one and
 * checks it against the parameter: same dtype (no conversions), same rank,
 * fixed sizes equal, each size symbol bound once (by the first file that
 * has it; later files and --shape must agree). 2 with a message on stderr
 * naming the file otherwise. */
static int load_npy_inputs(const ts_kernel *k, const char *dir, const char *shape_opt, npy_inputs *ni) {
    memset(ni, 0, sizeof *ni);
    int rc = warn_unused_files(k, dir);
    if (rc) return rc;
    ts_cli_sizes given;
    memset(&given, 0, sizeof given);
    if (shape_opt && parse_bindings(shape_opt, &given, NULL, "--shape")) return 2;
    int np = ts_kernel_param_count(k);
    for (int p = 0; p < np && p < 16; p++) {
        ts_param_info pi;
        ts_kernel_param(k, p, &pi);
        if (!pi.is_tensor) continue;
        char *path = ni->path[p], sig[200], shape[160];
        if (npy_path(dir, pi.name, path, sizeof ni->path[p])) return 2;
        struct stat st;
        if (stat(path, &st) != 0 && errno == ENOENT) continue;
        param_signature(&pi, sig, sizeof sig);
        if (!ts__npy_dtype_descr(pi.dtype)) {
            fprintf(stderr, "tessera run: %s: parameter %s is %s, which has no numpy dtype, so it cannot be read from .npy\n", path, sig,
                    ts_dtype_name(pi.dtype));
            return 2;
        }
        ts__npy *f = &ni->file[p];
        if (ts__npy_load(path, f) != TS_OK) {
            fprintf(stderr, "tessera run: %s\n", ts_last_error());
            return 2;
        }
        ni->have[p] = 1;
        ts__npy_shape_text(f->rank, f->shape, shape, sizeof shape);
        if (f->dtype != pi.dtype) {
            fprintf(stderr, "tessera run: %s holds %s data ('%s') but parameter %s is %s (no conversions: save it as '%s')\n", path,
                    ts_dtype_name(f->dtype), ts__npy_dtype_descr(f->dtype), sig, ts_dtype_name(pi.dtype), ts__npy_dtype_descr(pi.dtype));
            return 2;
        }
        if (f->rank != pi.rank) {
            fprintf(stderr, "tessera run: %s has shape %s, rank %d, but parameter %s has rank %d\n", path, shape, f->rank, sig, pi.rank);
            return 2;
        }
        for (int d = 0; d < pi.rank; d++) {
            int64_t v = f->shape[d];
            const char *sym = pi.size_names[d];
            if (!sym) {
                if (v != pi.fixed_sizes[d]) {
                    fprintf(stderr, "tessera run: %s has shape %s, but dim %d of parameter %s is fixed to %lld\n", path, shape, d, sig,
                            (long long)pi.fixed_sizes[d]);
                    return 2;
                }
                continue;
            }
            int64_t was = ts_cli_size(&ni->bound, sym);
            if (was >= 0 && was != v) {
                int i = 0;
                while (strcmp(ni->bound.names[i], sym) != 0) i++;
                fprintf(stderr, "tessera run: %s has shape %s, so %s = %lld (dim %d of %s), but %s bound %s = %lld\n", path, shape, sym, (long long)v,
                        d, sig, ni->path[ni->bound_by[i]], sym, (long long)was);
                return 2;
            }
            int64_t opt = ts_cli_size(&given, sym);
            if (opt >= 0 && opt != v) {
                fprintf(stderr, "tessera run: %s has shape %s, so %s = %lld (dim %d of %s), but --shape sets %s = %lld\n", path, shape, sym,
                        (long long)v, d, sig, sym, (long long)opt);
                return 2;
            }
            if (was < 0) {
                if (set_size(&ni->bound, sym, strlen(sym), v)) {
                    fprintf(stderr, "tessera run: too many sizes\n");
                    return 2;
                }
                ni->bound_by[ni->bound.n - 1] = p;
            }
        }
    }
    return 0;
}

/* Every tensor parameter of `in` with the contents in `got` as DIR/NAME.npy. */
static int write_npy_outputs(const run_inputs *in, void **got, const char *dir) {
    int n = 0;
    for (int p = 0; p < in->np; p++) {
        if (!in->info[p].is_tensor) continue;
        char path[1024];
        if (npy_path(dir, in->info[p].name, path, sizeof path)) return 1;
        size_t bytes = (size_t)in->numel[p] * ts_dtype_size(in->info[p].dtype);
        if (ts__npy_save(path, in->info[p].dtype, in->info[p].rank, in->shape[p], got[p], bytes) != TS_OK) {
            fprintf(stderr, "tessera run: --outputs: %s\n", ts_last_error());
            return 1;
        }
        n++;
    }
    printf("  wrote %d tensor%s to %s\n", n, n == 1 ? "" : "s", dir);
    return 0;
}

/* ---------------------------------------------------------------- one run */

/* Runs k on ctx with copies of the inputs; *outs gets every tensor's
 * contents afterwards (caller frees each). */
static ts_status run_once(ts_context *ctx, const ts_kernel *k, const ts_config *cfg, const run_inputs *in, void **outs, double *ms) {
    ts_tensor *t[16] = {0};
    ts_arg args[16];
    ts_status s = TS_OK;
    for (int p = 0; p < in->np && !s; p++) {
        outs[p] = NULL;
        if (!in->info[p].is_tensor) {
            args[p] = in->scalars[p];
            continue;
        }
        size_t bytes = (size_t)in->numel[p] * ts_dtype_size(in->info[p].dtype);
        s = ts_tensor_create(ctx, in->info[p].dtype, in->info[p].rank, in->shape[p], &t[p]);
        if (!s) s = ts_tensor_write(t[p], in->host[p], bytes);
        args[p] = TS_ARG_TENSOR(t[p]);
    }
    if (!s) s = ts_launch(ctx, k, cfg, args, in->np, ms);
    for (int p = 0; p < in->np && !s; p++) {
        if (!in->info[p].is_tensor) continue;
        size_t bytes = (size_t)in->numel[p] * ts_dtype_size(in->info[p].dtype);
        outs[p] = malloc(bytes ? bytes : 1);
        if (!outs[p]) s = TS_ERR_OUT_OF_MEMORY;
        else s = ts_tensor_read(t[p], outs[p], bytes);
    }
    for (int p = 0; p < in->np; p++) ts_tensor_destroy(t[p]);
    return s;
}

/* max over every tensor of |got - want| / (scale (atol + rtol |want|)) */
static double compare(const run_inputs *in, void **got, void **want, double scale, char *where, size_t n) {
    double worst = 0;
    where[0] = 0;
    for (int p = 0; p < in->np; p++) {
        if (!in->info[p].is_tensor || !got[p] || !want[p]) continue;
        double atol, rtol;
        ts_ex_tolerance(in->info[p].dtype, &atol, &rtol);
        if (!ts_dtype_is_float(in->info[p].dtype)) atol = rtol = 0;
        for (int64_t i = 0; i < in->numel[p]; i++) {
            double g = ts__load_elem(in->info[p].dtype, got[p], i), w = ts__load_elem(in->info[p].dtype, want[p], i), e;
            if ((isnan(g) && isnan(w)) || g == w) e = 0;
            else if (isnan(g) || isnan(w) || isinf(g) || isinf(w)) e = INFINITY;
            else e = fabs(g - w) / (scale * (atol + rtol * fabs(w)) + 1e-300);
            if (e > worst) {
                worst = e;
                snprintf(where, n, "%s[%lld] = %.9g, reference %.9g", in->info[p].name, (long long)i, g, w);
            }
        }
    }
    return worst;
}

/* ---------------------------------------------------------------- the command */

static void usage(FILE *f) {
    fprintf(f, "usage: tessera run FILE.tile|NAME [--backend B] [--shape M=1000,N=513] [--dtype f16]\n"
               "                  [--config KEY=V,...] [--scalar NAME=V,...] [--repeat N] [--seed S]\n"
               "                  [--inputs DIR] [--outputs DIR]\n"
               "Runs the kernel (a tile-language file, or an example kernel by name) on backend B\n"
               "(default: $TESSERA_BACKEND, else the best available) with random inputs, never zeros,\n"
               "and compares every tensor with the reference executor (backend 'ref') run on the same\n"
               "inputs; example kernels are also checked against their independent C reference.\n"
               "Sizes default to the example's first size set, else 100; scalars to 1. Prints the time\n"
               "and the max error (in units of the dtype's tolerance; <= 1 passes). Exit status 1 on\n"
               "a mismatch or a failure, 2 on bad arguments (bad or mismatched .npy files included).\n"
               "  --inputs DIR   DIR/NAME.npy is the data of tensor parameter NAME (same dtype and\n"
               "                 rank; no conversions); its shape binds the sizes of NAME's dims\n"
               "                 (files and --shape must agree). Tensors without a file stay random.\n"
               "  --outputs DIR  after the run, every tensor parameter as the backend left it is\n"
               "                 written to DIR/NAME.npy (DIR is created if missing).\n"
               ".npy dtypes: <f4 f32, <f2 f16, <f8 f64, <i4 i32, <i8 i64, <i2 i16, |i1 i8, |u1 u8, |b1 bool (bf16, f8_e4m3, f8_e5m2 have none).\n");
}

int ts_cli_run(int argc, char **argv) {
    if (ts_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *target = ts_cli_positional(argc, argv);
    if (!target) {
        usage(stderr);
        return 2;
    }
    const char *backend = ts_cli_backend(argc, argv), *cfg_text = ts_cli_option(argc, argv, "--config");
    const char *rep_text = ts_cli_option(argc, argv, "--repeat"), *seed_text = ts_cli_option(argc, argv, "--seed");
    int repeats = rep_text ? atoi(rep_text) : 5;
    if (repeats < 1 || repeats > 1000) repeats = 5;
    uint64_t seed = seed_text ? strtoull(seed_text, NULL, 10) : 1;
    const char *inputs_dir = ts_cli_option(argc, argv, "--inputs"), *outputs_dir = ts_cli_option(argc, argv, "--outputs");
    const char *shape_opt = ts_cli_option(argc, argv, "--shape");
    ts_cli_kernel ck;
    int rc = ts_cli_load_kernel(target, ts_cli_option(argc, argv, "--dtype"), &ck);
    if (rc) return rc;
    npy_inputs *ni = calloc(1, sizeof *ni);
    ts_cli_sizes sz;
    ts_config *cfg = NULL;
    ts_context *ctx = NULL, *ref = NULL;
    run_inputs in;
    memset(&in, 0, sizeof in);
    void *got[16] = {0}, *want[16] = {0};
    if (!ni) {
        fprintf(stderr, "tessera run: out of memory\n");
        rc = 1;
        goto done;
    }
    if (inputs_dir && (rc = load_npy_inputs(ck.k, inputs_dir, shape_opt, ni))) goto done;
    if (outputs_dir) {
        for (int p = 0; p < ts_kernel_param_count(ck.k); p++) {
            ts_param_info pi;
            ts_kernel_param(ck.k, p, &pi);
            if (pi.is_tensor && !ts__npy_dtype_descr(pi.dtype)) {
                fprintf(stderr, "tessera run: --outputs: parameter '%s' is %s, which has no numpy dtype\n", pi.name, ts_dtype_name(pi.dtype));
                rc = 2;
                goto done;
            }
        }
        if (ts__mkdir_p(outputs_dir) != TS_OK) {
            fprintf(stderr, "tessera run: --outputs: %s\n", ts_last_error());
            rc = 2;
            goto done;
        }
    }
    rc = ts_cli_sizes_for(&ck, shape_opt, &sz);
    if (rc) goto done;
    /* the files' shapes win over the example's and the default sizes (--shape agrees, checked above) */
    for (int i = 0; i < ni->bound.n; i++)
        if (set_size(&sz, ni->bound.names[i], strlen(ni->bound.names[i]), ni->bound.values[i])) {
            fprintf(stderr, "tessera run: too many sizes\n");
            rc = 2;
            goto done;
        }
    ts_status s = cfg_text ? ts_config_parse(cfg_text, &cfg) : ts_config_create(&cfg);
    if (!s) s = ts_config_check(cfg, ck.k);
    if (s) {
        fprintf(stderr, "tessera run: bad config: %s\n", ts_last_error());
        rc = 2;
        goto done;
    }
    if ((s = ts_context_create(backend, 0, &ctx)) || (s = ts_context_create("ref", 0, &ref))) {
        fprintf(stderr, "tessera run: cannot open backend '%s': %s\n", ctx ? "ref" : backend ? backend : "auto", ts_last_error());
        rc = 1;
        goto done;
    }
    rc = make_inputs(&ck, &sz, ts_cli_option(argc, argv, "--scalar"), seed, &in);
    if (rc) goto done;
    for (int p = 0; p < in.np; p++) { /* the files' data in place of the random data */
        if (!ni->have[p]) continue;
        size_t bytes = (size_t)in.numel[p] * ts_dtype_size(in.info[p].dtype);
        if (bytes != ni->file[p].nbytes) { /* cannot happen: the shape bound the sizes */
            fprintf(stderr, "tessera run: %s: %zu bytes, expected %zu\n", ni->path[p], ni->file[p].nbytes, bytes);
            rc = 1;
            goto done;
        }
        if (bytes) memcpy(in.host[p], ni->file[p].data, bytes);
    }

    /* without --config, the launch takes the tuned config (ts_launch with
     * cfg NULL), as an application's launch would */
    char sizes_text[512], *cfg_fmt = ts_config_format(cfg), *tuned = NULL;
    const ts_config *run_cfg = cfg;
    int from_db = 0;
    if (!cfg_text) {
        const int64_t *shapes[16];
        for (int p = 0; p < in.np; p++) shapes[p] = in.shape[p];
        ts_tune_lookup(ctx, ck.k, shapes, &tuned, &from_db);
        run_cfg = NULL;
    }
    ts_cli_sizes_format(&sz, sizes_text, sizeof sizes_text);
    printf("kernel %s (%s%s%s) on %s [%s]\n  sizes %s, config %s%s\n", ts_kernel_name(ck.k), ck.from_file ? target : "example",
           ck.ex ? ", dtype " : "", ck.ex ? ts_dtype_name(ck.dt) : "", ts_context_backend(ctx), ts_context_device_name(ctx), sizes_text,
           tuned ? tuned : cfg_fmt && *cfg_fmt ? cfg_fmt : "default", tuned ? (from_db ? " (tuning database)" : " (device default)") : "");
    free(cfg_fmt);
    free(tuned);
    if (inputs_dir) {
        printf("  inputs from %s:", inputs_dir);
        int nfile = 0, nrand = 0;
        for (int p = 0; p < in.np; p++)
            if (ni->have[p]) {
                char sh[160];
                ts__npy_shape_text(in.info[p].rank, in.shape[p], sh, sizeof sh);
                printf("%s %s.npy %s", nfile++ ? "," : "", in.info[p].name, sh);
            }
        if (!nfile) printf(" no file names a tensor parameter");
        for (int p = 0; p < in.np; p++)
            if (in.info[p].is_tensor && !ni->have[p]) printf("%s%s", nrand++ ? ", " : "; random: ", in.info[p].name);
        printf("\n");
    }

    double ms = 0, ref_ms = 0;
    if ((s = run_once(ctx, ck.k, run_cfg, &in, got, &ms)) || (s = run_once(ref, ck.k, cfg, &in, want, &ref_ms))) {
        fprintf(stderr, "tessera run: launch failed (%s): %s\n", ts_status_name(s), ts_last_error());
        rc = 1;
        goto done;
    }
    double scale = ck.ex ? ck.ex->tol_scale : 4.0, longest = 1;
    for (int i = 0; i < sz.n; i++)
        if ((double)sz.values[i] > longest && (!ck.ex || (ck.ex->reduce_dim && strcmp(ck.ex->reduce_dim, sz.names[i]) == 0))) longest = (double)sz.values[i];
    if ((!ck.ex || ck.ex->reduce_dim) && longest > 64) scale *= sqrt(longest / 64.0);
    char where[256];
    double err = compare(&in, got, want, scale, where, sizeof where);
    int bad = err > 1.0;
    printf("  vs reference executor: max error %.3g x tolerance%s%s%s\n", err, bad ? " MISMATCH (" : "", bad ? where : "", bad ? ")" : "");
    if (outputs_dir && write_npy_outputs(&in, got, outputs_dir)) {
        rc = 1;
        goto done;
    }

    /* timing: more launches after the results were read (atomic_add kernels accumulate) */
    double times[1000];
    int nt = 0;
    times[nt++] = ms;
    for (int r = 1; r < repeats && !s; r++) {
        void *tmp[16] = {0};
        double t = 0;
        s = run_once(ctx, ck.k, run_cfg, &in, tmp, &t);
        for (int p = 0; p < in.np; p++) free(tmp[p]);
        if (!s) times[nt++] = t;
    }
    for (int i = 1; i < nt; i++)
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            double x = times[j];
            times[j] = times[j - 1];
            times[j - 1] = x;
        }
    printf("  time %.4f ms (median of %d launches)\n", times[nt / 2], nt);

    if (ck.ex) { /* the independent check of the example set */
        ts_ex_sizes exs = {0};
        for (int i = 0; i < sz.n && i < TS_EX_MAX_SIZES; i++) {
            exs.names[exs.n] = sz.names[i];
            exs.values[exs.n++] = sz.values[i];
        }
        ts_ex_result r;
        ts_status hs = ts_ex_run_case(ctx, ck.ex, ck.k, ck.dt, &exs, cfg, 1, seed, &r);
        printf("  vs independent reference%s: max error %.3g x tolerance%s%s\n", inputs_dir ? " (on its own random inputs)" : "", r.max_err,
               hs ? " FAILED: " : "", hs ? r.message : "");
        if (hs) bad = 1;
    }
    printf("%s\n", bad ? "FAIL" : "ok");
    rc = bad ? 1 : 0;
done:
    for (int p = 0; p < 16; p++) {
        free(got[p]);
        free(want[p]);
    }
    inputs_free(&in);
    if (ni) npy_inputs_free(ni);
    free(ni);
    ts_context_destroy(ctx);
    ts_context_destroy(ref);
    ts_config_destroy(cfg);
    ts_kernel_destroy(ck.k);
    return rc;
}
