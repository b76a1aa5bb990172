/* tune.c: ts_tune: inputs, the reference, the check and timing of each
 * candidate, the search, and the database entry.
 *
 * Sections: options and report; inputs (any kernel, from its parameter
 * list); the reference (the "ref" backend run once on the same inputs);
 * one candidate (prune, compile + check run, timed runs); finalists; ts_tune.
 *
 * A candidate is checked before it is timed: its first launch (which also
 * compiles it) runs on the tuning inputs with every written tensor reset to
 * its initial contents, and each written tensor is compared element by
 * element with the reference (docs/tolerances.md). A mismatch rejects the
 * candidate for good: its cost is infinite, so the search never returns it
 * and it is never stored. Then `repeats` timed launches give the median of
 * the device-event times ts_launch reports; a candidate already 3x slower
 * than the best after one timed launch is not timed further.
 */
#include "tuner.h"

#include "codegen.h"
#include "dialect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS__TUNE_MAX_PARAMS 64

/* ---------------------------------------------------------------- options and report */

const char *ts_tune_outcome_name(ts_tune_outcome o) {
    switch (o) {
    case TS_TUNE_OK: return "ok";
    case TS_TUNE_PRUNED: return "pruned";
    case TS_TUNE_COMPILE: return "compile";
    case TS_TUNE_WRONG: return "wrong";
    case TS_TUNE_TIMEOUT: return "timeout";
    default: return "?";
    }
}

void ts_tune_report_destroy(ts_tune_report *r) {
    if (!r) return;
    ts_config_destroy(r->best);
    free(r->candidates);
    free(r);
}

static void options_of(const ts_tune_options *in, ts_tune_options *o) {
    ts_tune_options d = TS_TUNE_OPTIONS_INIT;
    *o = d;
    if (in && in->size >= sizeof(size_t)) memcpy(o, in, in->size < sizeof *o ? in->size : sizeof *o);
    o->size = sizeof *o;
    if (o->budget_s <= 0) o->budget_s = o->effort == TS_TUNE_EFFORT_FULL ? 600 : 90;
    if (o->repeats <= 0) o->repeats = 5;
    if (o->repeats > 100) o->repeats = 100;
    if (o->tol_scale <= 0) o->tol_scale = 4;
}

/* ---------------------------------------------------------------- state */

typedef struct tuner {
    ts_context *ctx;
    const ts_kernel *k;
    const ts__kir *ir;
    ts_tune_options o;
    ts_tune_report *rep;
    int np;
    int64_t shape[TS__TUNE_MAX_PARAMS][TS_MAX_RANK];
    const int64_t *shapes[TS__TUNE_MAX_PARAMS];
    int64_t numel[TS__TUNE_MAX_PARAMS];
    size_t bytes[TS__TUNE_MAX_PARAMS];
    int written[TS__TUNE_MAX_PARAMS], loaded[TS__TUNE_MAX_PARAMS], atomic[TS__TUNE_MAX_PARAMS];
    ts_dtype tol_dtype[TS__TUNE_MAX_PARAMS];
    void *init[TS__TUNE_MAX_PARAMS];   /* host contents before a launch */
    void *want[TS__TUNE_MAX_PARAMS];   /* reference contents after it */
    void *got;                         /* scratch */
    ts_tensor *t[TS__TUNE_MAX_PARAMS];
    ts_arg args[TS__TUNE_MAX_PARAMS];
    double scale;
    ts__kspace_info info;
    ts__tune_space sp;
    double t0;
    double best_ms, default_ms, timeout_ms;
    char best_config[256];
    int cap_candidates;
} tuner;

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ---------------------------------------------------------------- inputs */

static ts_status bind_sizes(tuner *tu, const char *const *names, const int64_t *values, int nsizes) {
    const ts__kir *ir = tu->ir;
    int64_t sv[256];
    if (ir->nsizes > 256) return ts__error(TS_ERR_LIMIT, "kernel '%s' has too many sizes", ir->name);
    for (int s = 0; s < ir->nsizes; s++) {
        sv[s] = ir->sizes[s].name[0] ? -1 : ir->sizes[s].fixed;
        for (int i = 0; i < nsizes && sv[s] < 0; i++)
            if (names && names[i] && strcmp(names[i], ir->sizes[s].name) == 0) sv[s] = values[i];
        if (sv[s] < 0) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tune: kernel '%s': size %s is not given", ir->name, ir->sizes[s].name);
    }
    for (int i = 0; i < nsizes; i++)
        if (!names || !names[i] || ts__find_size(ir, names[i]) < 0)
            return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tune: kernel '%s' has no size named '%s'", ir->name, names && names[i] ? names[i] : "(null)");
    size_t k = 0;
    for (int s = 0; s < ir->nsizes && k < sizeof tu->rep->shape; s++)
        if (ir->sizes[s].name[0])
            k += (size_t)snprintf(tu->rep->shape + k, sizeof tu->rep->shape - k, "%s%s=%lld", k ? "," : "", ir->sizes[s].name, (long long)sv[s]);
    for (int p = 0; p < tu->np; p++) {
        const ts__param *pa = &ir->params[p];
        tu->numel[p] = 1;
        for (int d = 0; d < pa->rank; d++) {
            tu->shape[p][d] = sv[pa->sizes[d]];
            tu->numel[p] *= tu->shape[p][d];
        }
        tu->shapes[p] = tu->shape[p];
        tu->bytes[p] = pa->is_tensor ? (size_t)tu->numel[p] * ts_dtype_size(pa->dtype) : 0;
    }
    /* tolerance: the reduced length (named, else the largest size) */
    double L = 1;
    for (int s = 0; s < ir->nsizes; s++) {
        if (!ir->sizes[s].name[0]) continue;
        if (tu->o.reduce_size ? strcmp(tu->o.reduce_size, ir->sizes[s].name) == 0 : (double)sv[s] > L) L = (double)sv[s];
    }
    tu->scale = tu->o.tol_scale * (L > 64 ? sqrt(L / 64.0) : 1.0);
    return TS_OK;
}

static ts_status make_inputs(tuner *tu) {
    const ts__kir *ir = tu->ir;
    for (int i = 0; i < ir->nops; i++) {
        const ts__op *op = &ir->ops[i];
        if (op->kind == TS__OP_STORE || op->kind == TS__OP_ATOMIC_ADD) tu->written[op->param] = 1;
        if (op->kind == TS__OP_ATOMIC_ADD) tu->atomic[op->param] = 1;
        if (op->kind == TS__OP_LOAD || op->kind == TS__OP_GATHER) tu->loaded[op->param] = 1;
    }
    ts_dtype lowest = TS_F32; /* f32 outputs of f16/bf16 kernels are checked at the inputs' precision */
    for (int p = 0; p < tu->np; p++) {
        ts_dtype d = ir->params[p].dtype;
        if (ir->params[p].is_tensor && (d == TS_BF16 || (d == TS_F16 && lowest != TS_BF16))) lowest = d;
    }
    int64_t smallest = INT64_MAX;
    for (int s = 0; s < ir->nsizes; s++) {
        int64_t v = -1;
        for (int p = 0; p < tu->np && v < 0; p++)
            for (int d = 0; d < ir->params[p].rank && v < 0; d++)
                if (ir->params[p].sizes[d] == s) v = tu->shape[p][d];
        if (v > 0 && v < smallest) smallest = v;
    }
    uint64_t rng = tu->o.seed * 2654435761u + 0x9e3779b97f4a7c15ull;
    if (!rng) rng = 1;
    size_t most = 1;
    for (int p = 0; p < tu->np; p++) {
        const ts__param *pa = &ir->params[p];
        if (!pa->is_tensor) {
            double v = tu->o.scalar ? tu->o.scalar(p, tu->o.user) : 1.0;
            tu->args[p] = ts_dtype_is_float(pa->dtype) ? TS_ARG_F(v) : TS_ARG_I((int64_t)v);
            continue;
        }
        tu->tol_dtype[p] = pa->dtype == TS_F32 ? lowest : pa->dtype;
        tu->init[p] = malloc(tu->bytes[p] ? tu->bytes[p] : 1);
        tu->want[p] = tu->written[p] ? malloc(tu->bytes[p] ? tu->bytes[p] : 1) : NULL;
        if (!tu->init[p] || (tu->written[p] && !tu->want[p])) return ts__error(TS_ERR_OUT_OF_MEMORY, "ts_tune: out of memory for inputs");
        if (tu->bytes[p] > most) most = tu->bytes[p];
        int64_t bound = tu->o.int_bound ? tu->o.int_bound(p, tu->o.user) : smallest == INT64_MAX ? 1 : smallest;
        if (bound < 1) bound = 1;
        /* outputs only stored to start as a sentinel, so an element left unwritten shows */
        int sentinel = tu->written[p] && !tu->loaded[p] && !tu->atomic[p];
        for (int64_t i = 0; i < tu->numel[p]; i++) {
            double v;
            if (sentinel) v = ts_dtype_is_float(pa->dtype) ? NAN : -7;
            else if (pa->dtype == TS_BOOL) v = (double)(rng_next(&rng) & 1);
            else if (ts_dtype_is_float(pa->dtype)) {
                v = (double)(rng_next(&rng) >> 11) / 9007199254740992.0 * 4.0 - 2.0;
                if (fabs(v) < 1e-3) v = 0.5; /* never zeros */
            } else v = (double)(rng_next(&rng) % (uint64_t)bound);
            ts__store_elem(pa->dtype, tu->init[p], i, v);
        }
        ts_status s = ts_tensor_create(tu->ctx, pa->dtype, pa->rank, tu->shape[p], &tu->t[p]);
        if (s) return s;
        if ((s = ts_tensor_write(tu->t[p], tu->init[p], tu->bytes[p]))) return s;
        tu->args[p] = TS_ARG_TENSOR(tu->t[p]);
    }
    tu->got = malloc(most);
    return tu->got ? TS_OK : ts__error(TS_ERR_OUT_OF_MEMORY, "ts_tune: out of memory for outputs");
}

static ts_status reset_outputs(tuner *tu) {
    for (int p = 0; p < tu->np; p++)
        if (tu->written[p]) {
            ts_status s = ts_tensor_write(tu->t[p], tu->init[p], tu->bytes[p]);
            if (s) return s;
        }
    return TS_OK;
}

/* ---------------------------------------------------------------- the reference */

static ts_status run_reference(tuner *tu) {
    double t0 = ts__now_ms();
    ts_context *ref = NULL;
    ts_status s = ts_context_create("ref", 0, &ref);
    if (s) return s;
    ts_tensor *t[TS__TUNE_MAX_PARAMS] = {0};
    ts_arg args[TS__TUNE_MAX_PARAMS];
    ts_config *defaults = NULL;
    for (int p = 0; p < tu->np && !s; p++) {
        args[p] = tu->args[p];
        if (!tu->ir->params[p].is_tensor) continue;
        s = ts_tensor_create(ref, tu->ir->params[p].dtype, tu->ir->params[p].rank, tu->shape[p], &t[p]);
        if (!s) s = ts_tensor_write(t[p], tu->init[p], tu->bytes[p]);
        args[p] = TS_ARG_TENSOR(t[p]);
    }
    if (!s) s = ts_config_create(&defaults); /* explicit defaults: the reference never consults the database */
    if (!s) s = ts_launch(ref, tu->k, defaults, args, tu->np, NULL);
    for (int p = 0; p < tu->np && !s; p++)
        if (tu->written[p]) s = ts_tensor_read(t[p], tu->want[p], tu->bytes[p]);
    if (s) ts__error_prefix("ts_tune: the reference executor failed");
    for (int p = 0; p < tu->np; p++) ts_tensor_destroy(t[p]);
    ts_config_destroy(defaults);
    ts_context_destroy(ref);
    tu->rep->reference_s = (ts__now_ms() - t0) / 1e3;
    return s;
}

/* max over the written tensors of |got - want| / (scale (atol + rtol |want|)); where names the worst element */
static ts_status compare(tuner *tu, double *worst, char *where, size_t n) {
    *worst = 0;
    where[0] = 0;
    for (int p = 0; p < tu->np; p++) {
        if (!tu->written[p]) continue;
        const ts__param *pa = &tu->ir->params[p];
        ts_status s = ts_tensor_read(tu->t[p], tu->got, tu->bytes[p]);
        if (s) return s;
        double atol = 0, rtol = 0;
        switch (tu->tol_dtype[p]) {
        case TS_F16: atol = 1e-3; rtol = 2e-3; break;
        case TS_BF16: atol = 8e-3; rtol = 1.6e-2; break;
        case TS_F64: atol = 1e-12; rtol = 1e-12; break;
        case TS_F32: atol = 1e-5; rtol = 1e-5; break;
        default: break; /* integers: exact */
        }
        for (int64_t i = 0; i < tu->numel[p]; i++) {
            double g = ts__load_elem(pa->dtype, tu->got, i), w = ts__load_elem(pa->dtype, tu->want[p], i), e;
            if ((isnan(g) && isnan(w)) || g == w) continue;
            if (isnan(g) || isnan(w) || isinf(g) || isinf(w)) e = INFINITY;
            else e = fabs(g - w) / (tu->scale * (atol + rtol * fabs(w)) + 1e-300);
            if (e > *worst) {
                *worst = e;
                snprintf(where, n, "%s[%lld] = %.9g, reference %.9g (%.3g x tolerance)", pa->name, (long long)i, g, w, e);
            }
        }
    }
    return TS_OK;
}

/* ---------------------------------------------------------------- one candidate */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Private (per-thread) array elements the generated source declares. Past
 * this, device compilers (PoCL's LLVM) can take minutes on one candidate,
 * which no budget can interrupt; such points are pruned. Since the code
 * generator stopped unrolling long loops and reduction row loops, one work-item
 * owning a whole 1024-wide row (softmax, layer norm: 4-8 arrays of 1024,
 * the fastest layout on PoCL) compiles in 1-20 s, so the cap sits above that.
 * (Parsed from the source until the code generator reports it.) */
#define TS__TUNE_MAX_PRIVATE 12288

static int64_t private_elements(const char *src) {
    static const char *const types[] = {"float", "double", "int", "uint", "long", "ulong", "half", "short", "ushort", "char", "uchar", NULL};
    int64_t total = 0;
    for (const char *line = src; line && *line;) {
        const char *end = strchr(line, '\n');
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        for (int t = 0; types[t]; t++) {
            size_t n = strlen(types[t]);
            if (strncmp(p, types[t], n) != 0) continue;
            const char *q = p + n;
            while (*q >= '0' && *q <= '9') q++; /* float4 */
            if (*q != ' ') break;
            q++;
            if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || *q == '_')) break;
            while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_') q++;
            if (*q != '[') break;
            char *after;
            long long v = strtoll(q + 1, &after, 10);
            if (after != q + 1 && *after == ']') total += v;
            break;
        }
        line = end ? end + 1 : NULL;
    }
    return total;
}

ts_status ts__tune_fits(ts_context *ctx, const ts_kernel *k, const ts_config *cfg, const int64_t *const *shapes) {
    ts__plan plan;
    ts_status s = ts__plan_make(&k->ir, cfg, shapes, &plan);
    if (s) return s;
    const ts_backend *be = ctx->be;
    int threads = be->dialect != TS_DIALECT_NONE ? ts__cg_threads(&k->ir, &plan) : plan.threads;
    if (threads > ctx->caps.max_group_size)
        s = ts__error(TS_ERR_BAD_CONFIG, "needs %d threads per group, the device allows %d", threads, ctx->caps.max_group_size);
    else if (be->dialect != TS_DIALECT_NONE) {
        char *src = NULL;
        s = ts__codegen_emit(k, &plan, be->dialect, &ctx->caps, "ts_probe", &src);
        int64_t priv = s ? 0 : private_elements(src);
        if (priv > TS__TUNE_MAX_PRIVATE)
            s = ts__error(TS_ERR_BAD_CONFIG, "needs %lld private elements per thread; the tuner skips more than %d (compile time explodes)",
                          (long long)priv, TS__TUNE_MAX_PRIVATE);
        free(src);
    }
    ts__plan_free(&plan);
    return s;
}

/* Runs cfg: prune, compile and check, time. Writes the outcome into c. */
static void run_candidate(tuner *tu, const ts_config *cfg, int repeats, ts_tune_candidate *c) {
    c->outcome = TS_TUNE_OK;
    c->ms = 0;
    c->why[0] = 0;
    ts_status s = ts__tune_fits(tu->ctx, tu->k, cfg, tu->shapes); /* limits known before any compiler runs */
    if (s) {
        c->outcome = TS_TUNE_PRUNED;
        snprintf(c->why, sizeof c->why, "%s", ts_last_error());
        return;
    }
    double t0 = ts__now_ms(), ms = 0;
    s = reset_outputs(tu);
    if (!s) s = ts_launch(tu->ctx, tu->k, cfg, tu->args, tu->np, &ms);
    c->compile_s = (ts__now_ms() - t0) / 1e3;
    if (s) {
        c->outcome = TS_TUNE_COMPILE;
        snprintf(c->why, sizeof c->why, "%s: %s", ts_status_name(s), ts_last_error());
        return;
    }
    double err;
    s = compare(tu, &err, c->why, sizeof c->why);
    if (s) {
        c->outcome = TS_TUNE_COMPILE;
        snprintf(c->why, sizeof c->why, "reading the result: %s", ts_last_error());
        return;
    }
    if (err > 1.0) {
        c->outcome = TS_TUNE_WRONG;
        return;
    }
    c->why[0] = 0;
    if (ms > tu->timeout_ms) {
        c->outcome = TS_TUNE_TIMEOUT;
        c->ms = ms;
        snprintf(c->why, sizeof c->why, "one launch took %.1f ms (limit %.1f ms)", ms, tu->timeout_ms);
        return;
    }
    /* one untimed launch more (the first after a build pays first-touch
     * costs), then at least `repeats` timed ones and, for short kernels,
     * enough to cover about 20 ms: on a shared 2-core CPU five launches of
     * a 1 ms kernel gave medians 1.5x apart from one tuning run to the next */
    if (ms < tu->timeout_ms && !ts_launch(tu->ctx, tu->k, cfg, tu->args, tu->np, &ms) && ms > 0 && ms < 20.0 / repeats) {
        int want = (int)(20.0 / ms) + 1;
        repeats = want > 40 ? 40 : want;
    }
    double times[100];
    int nt = 0;
    for (int r = 0; r < repeats && r < 100; r++) {
        s = ts_launch(tu->ctx, tu->k, cfg, tu->args, tu->np, &ms);
        if (s) {
            c->outcome = TS_TUNE_COMPILE;
            snprintf(c->why, sizeof c->why, "timed launch: %s: %s", ts_status_name(s), ts_last_error());
            return;
        }
        times[nt++] = ms;
        if (ms > tu->timeout_ms) {
            c->outcome = TS_TUNE_TIMEOUT;
            c->ms = ms;
            snprintf(c->why, sizeof c->why, "one launch took %.1f ms (limit %.1f ms)", ms, tu->timeout_ms);
            return;
        }
        if (r == 0 && tu->best_ms > 0 && ms > 3 * tu->best_ms) break; /* clearly slower: not worth more runs */
    }
    qsort(times, (size_t)nt, sizeof times[0], cmp_double);
    c->ms = nt % 2 ? times[nt / 2] : 0.5 * (times[nt / 2 - 1] + times[nt / 2]);
}

static ts_tune_candidate *log_candidate(tuner *tu, const ts_tune_candidate *c) {
    ts_tune_report *r = tu->rep;
    if (r->ncandidates == tu->cap_candidates) {
        int nc = tu->cap_candidates ? tu->cap_candidates * 2 : 64;
        ts_tune_candidate *p = realloc(r->candidates, (size_t)nc * sizeof *p);
        if (!p) return NULL;
        r->candidates = p;
        tu->cap_candidates = nc;
    }
    r->candidates[r->ncandidates] = *c;
    return &r->candidates[r->ncandidates++];
}

static void progress(tuner *tu, const ts_tune_candidate *c) {
    if (!tu->o.progress) return;
    ts_tune_progress p = {.done = tu->rep->tried, .space = (int)tu->rep->space, .elapsed_s = (ts__now_ms() - tu->t0) / 1e3,
                          .budget_s = tu->o.budget_s, .config = c->config, .outcome = c->outcome, .ms = c->outcome == TS_TUNE_OK ? c->ms : 0,
                          .best_config = tu->best_config, .best_ms = tu->best_ms, .default_ms = tu->default_ms};
    tu->o.progress(&p, tu->o.user);
}

/* The search's cost function: one point of the space. */
static double cost_of_point(void *user, const int *idx, int *stop) {
    tuner *tu = user;
    ts_tune_candidate c;
    memset(&c, 0, sizeof c);
    ts__tune_space_format(&tu->sp, idx, c.config, sizeof c.config);
    ts_config *cfg;
    if (ts__tune_space_config(&tu->sp, idx, &cfg)) {
        *stop = 1;
        return INFINITY;
    }
    run_candidate(tu, cfg, tu->o.repeats, &c);
    ts_config_destroy(cfg);
    ts_tune_report *r = tu->rep;
    r->tried++;
    switch (c.outcome) {
    case TS_TUNE_OK: r->ok++; break;
    case TS_TUNE_PRUNED: r->pruned++; break;
    case TS_TUNE_COMPILE: r->failed_compile++; break;
    case TS_TUNE_WRONG: r->rejected_wrong++; break;
    case TS_TUNE_TIMEOUT: r->timed_out++; break;
    }
    if (c.outcome == TS_TUNE_OK && (tu->best_ms <= 0 || c.ms < tu->best_ms)) {
        tu->best_ms = c.ms;
        snprintf(tu->best_config, sizeof tu->best_config, "%s", c.config);
    }
    if (!log_candidate(tu, &c)) *stop = 1;
    progress(tu, &c);
    if (tu->o.max_evals > 0 && r->tried >= tu->o.max_evals) *stop = 1;
    return c.outcome == TS_TUNE_OK ? c.ms : INFINITY;
}

/* ---------------------------------------------------------------- finalists */

/* Times the best few and the defaults again, side by side with more runs, so
 * the choice and the speed-up are not one noisy median. */
static void retime_finalists(tuner *tu, int *best_i) {
    ts_tune_report *r = tu->rep;
    int pick[3], np = 0;
    for (int k = 0; k < 3; k++) {
        int b = -1;
        for (int i = 0; i < r->ncandidates; i++) {
            if (r->candidates[i].outcome != TS_TUNE_OK) continue;
            int taken = 0;
            for (int j = 0; j < np; j++) taken |= pick[j] == i;
            if (!taken && (b < 0 || r->candidates[i].ms < r->candidates[b].ms)) b = i;
        }
        if (b >= 0) pick[np++] = b;
    }
    *best_i = np ? pick[0] : -1;
    if (np < 2) return;
    double best = INFINITY;
    for (int j = 0; j < np; j++) {
        ts_config *cfg;
        if (ts_config_parse(r->candidates[pick[j]].config, &cfg)) continue;
        ts_tune_candidate c = r->candidates[pick[j]];
        double saved = tu->best_ms;
        tu->best_ms = 0; /* no early stop while re-timing */
        run_candidate(tu, cfg, 2 * tu->o.repeats, &c);
        tu->best_ms = saved;
        ts_config_destroy(cfg);
        if (c.outcome != TS_TUNE_OK) continue;
        if (c.ms < best) {
            best = c.ms;
            *best_i = pick[j];
        }
        r->candidates[pick[j]].ms = c.ms;
    }
}

/* ---------------------------------------------------------------- ts_tune */

/* A stored config still names only this kernel's tunables and known knobs. */
static int config_fits(const char *text, void *user) {
    ts_config *c;
    if (ts_config_parse(text, &c)) return 0;
    int ok = ts_config_check(c, user) == TS_OK;
    ts_config_destroy(c);
    return ok;
}

static void free_tuner(tuner *tu) {
    for (int p = 0; p < tu->np; p++) {
        ts_tensor_destroy(tu->t[p]);
        free(tu->init[p]);
        free(tu->want[p]);
    }
    free(tu->got);
}

ts_status ts_tune(ts_context *ctx, const ts_kernel *k, const char *const *names, const int64_t *values, int nsizes, const ts_tune_options *opts,
                  ts_tune_report **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tune: out is NULL");
    *out = NULL;
    if (!ctx || !k || nsizes < 0 || (nsizes && (!names || !values))) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tune: NULL argument");
    if (k->ir.nparams > TS__TUNE_MAX_PARAMS) return ts__error(TS_ERR_LIMIT, "ts_tune: kernel '%s' has more than %d parameters", k->ir.name, TS__TUNE_MAX_PARAMS);
    tuner *tu = ts__calloc(1, sizeof *tu);
    ts_tune_report *rep = ts__calloc(1, sizeof *rep);
    if (!tu || !rep) {
        free(tu);
        free(rep);
        return TS_ERR_OUT_OF_MEMORY;
    }
    tu->ctx = ctx;
    tu->k = k;
    tu->ir = &k->ir;
    tu->np = k->ir.nparams;
    tu->rep = rep;
    tu->t0 = ts__now_ms();
    options_of(opts, &tu->o);
    snprintf(rep->fingerprint, sizeof rep->fingerprint, "%s", ts_context_fingerprint(ctx, NULL));
    ts_status s = bind_sizes(tu, names, values, nsizes);
    ts__tune_fp fp;
    ts__tune_key key;
    ts__tune_fp_of(ctx, &fp);
    if (!s) s = ts__tune_key_of(k, tu->shapes, &key);
    if (s) goto fail;

    /* a stored result for this exact key: nothing to tune */
    if (tu->o.use_db && (!tu->o.force || tu->o.effort == TS_TUNE_EFFORT_NONE)) {
        ts__tune_value v;
        if (ts__tune_db_find(&fp, &key, tu->o.effort != TS_TUNE_EFFORT_NONE, config_fits, (void *)k, &v) != TS__TUNE_MISS &&
            ts_config_parse(v.config, &rep->best) == TS_OK) {
            rep->from_db = 1;
            snprintf(rep->best_config, sizeof rep->best_config, "%s", v.config);
            rep->best_ms = v.ms;
            rep->default_ms = v.default_ms;
            rep->speedup = v.ms > 0 ? v.default_ms / v.ms : 0;
            snprintf(rep->strategy, sizeof rep->strategy, "db");
            goto done;
        }
    }
    if (tu->o.effort == TS_TUNE_EFFORT_NONE) {
        s = ts_config_create(&rep->best);
        snprintf(rep->strategy, sizeof rep->strategy, "none");
        if (s) goto fail;
        goto done;
    }

    if ((s = make_inputs(tu)) || (s = run_reference(tu))) goto fail;

    /* the defaults, checked and timed like any candidate (not counted as tried) */
    tu->timeout_ms = tu->o.candidate_timeout_s > 0 ? tu->o.candidate_timeout_s * 1e3 : INFINITY;
    ts_tune_candidate dc;
    memset(&dc, 0, sizeof dc);
    ts_config *defaults = NULL;
    if ((s = ts_config_create(&defaults))) goto fail;
    run_candidate(tu, defaults, tu->o.repeats, &dc);
    if (dc.outcome == TS_TUNE_OK) tu->default_ms = dc.ms;
    if (tu->o.candidate_timeout_s <= 0) tu->timeout_ms = tu->default_ms > 0 ? fmax(1000.0, 20 * tu->default_ms) : 10000.0;

    ts__tune_space *sp = &tu->sp;
    tu->info = (ts__kspace_info){.k = k, .caps = ctx->caps, .dialect = ctx->be->dialect, .shapes = tu->shapes};
    if ((s = ts__tune_space_build(&tu->info, tu->o.effort, sp))) {
        ts_config_destroy(defaults);
        goto fail;
    }
    rep->space = ts__tune_space_count_valid(sp, 1 << 20);
    ts__search_opts so = {.strategy = tu->o.strategy, .effort = tu->o.effort, .seed = tu->o.seed, .max_evals = tu->o.max_evals,
                          .exhaustive_limit = tu->o.effort == TS_TUNE_EFFORT_FULL ? 256 : 32};
    double left = tu->o.budget_s - (ts__now_ms() - tu->t0) / 1e3;
    so.budget_s = left > 1 ? left : 1;
    ts__search_result sr;
    s = ts__search_run(sp, &so, cost_of_point, tu, &sr);
    if (s) {
        ts_config_destroy(defaults);
        goto fail;
    }
    snprintf(rep->strategy, sizeof rep->strategy, "%s", ts__tune_strategy_name(sr.used));
    rep->budget_exhausted = sr.stopped;

    int bi;
    retime_finalists(tu, &bi);
    if (dc.outcome == TS_TUNE_OK && bi >= 0) { /* the defaults again, timed the same way */
        double saved = tu->best_ms;
        tu->best_ms = 0;
        run_candidate(tu, defaults, 2 * tu->o.repeats, &dc);
        tu->best_ms = saved;
        if (dc.outcome == TS_TUNE_OK) tu->default_ms = dc.ms;
    }
    ts_config_destroy(defaults);
    rep->default_ms = tu->default_ms;
    if (bi < 0 && tu->default_ms <= 0) {
        s = ts__error(TS_ERR_NOT_FOUND, "ts_tune: kernel '%s': no config (not even the defaults) gave a correct result; first failure: %s", k->ir.name,
                      dc.why[0] ? dc.why : "?");
        goto fail;
    }
    if (bi >= 0 && (tu->default_ms <= 0 || rep->candidates[bi].ms <= tu->default_ms)) {
        snprintf(rep->best_config, sizeof rep->best_config, "%s", rep->candidates[bi].config);
        rep->best_ms = rep->candidates[bi].ms;
    } else { /* nothing beat the defaults */
        rep->best_config[0] = 0;
        rep->best_ms = tu->default_ms;
    }
    rep->speedup = rep->best_ms > 0 && tu->default_ms > 0 ? tu->default_ms / rep->best_ms : 0;
    if ((s = ts_config_parse(rep->best_config, &rep->best))) goto fail;
    if (tu->o.use_db) {
        ts__tune_value v;
        memset(&v, 0, sizeof v);
        snprintf(v.config, sizeof v.config, "%s", rep->best_config);
        v.ms = rep->best_ms;
        v.default_ms = tu->default_ms;
        if (ts__tune_db_store(&fp, &key, &v, tu->o.force) == TS_OK) rep->stored = 1;
        else fprintf(stderr, "tessera: the tuning result was not stored: %s\n", ts_last_error());
    }
done:
    rep->tuning_s = (ts__now_ms() - tu->t0) / 1e3;
    free_tuner(tu);
    free(tu);
    *out = rep;
    return TS_OK;
fail:
    rep->tuning_s = (ts__now_ms() - tu->t0) / 1e3;
    free_tuner(tu);
    free(tu);
    if (s == TS_ERR_NOT_FOUND) {
        *out = rep; /* the report says what went wrong with each candidate */
        return s;
    }
    ts_tune_report_destroy(rep);
    return s;
}
