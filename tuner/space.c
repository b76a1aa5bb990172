/* space.c: the config space of a kernel on a device.
 *
 * Axes: every tunable of the kernel (powers of two in its range), then the
 * backend knobs that shape its code. A kernel with a dot gets micro_m,
 * micro_n (the register micro-tile, which also sets the threads per group),
 * stage (0: operands read straight from global memory, the CPU-style
 * lowering; 1: staged through local memory, the GPU-style one) and unroll,
 * and on CUDA and HIP with f16/bf16 operands tensor_cores, warps and group_m
 * (and stages on CUDA, the cp.async pipeline);
 * other kernels get threads, vec and (when the code generator has it)
 * col_threads. Effort "quick" keeps a window of values
 * around each default (3 for the blocks of a dot, 5 otherwise; threads
 * also keeps 1 and vec keeps every width) and the
 * micro-tiles of 4..8 rows by 8..16 columns (the default 4x8 and the wide
 * vector loads a CPU wants; on a GPU 4x8 and 8x8 with 128x128 blocks give
 * 512 and 256 threads); "full" keeps every value (1..16 each, unroll 1..8).
 * On dialects with dot_vec4 (GLSL: cg_dot_glsl.c) quick keeps 4, 8 and 16
 * both ways, stage=1 is the default, two more seeds first (16x16 staged,
 * 8x8 unstaged: lavapipe's best at 1024^3 by CPU time) and groups must be a multiple of 8 invocations (lavapipe runs 8
 * to a SIMD vector).
 *
 * Pruning (before anything compiles): threads per group within the device's
 * limit, an estimate of local memory within the device's, micro-tile within
 * the block, blocks no larger than needed to cover their extent at this
 * shape, and (without a dot) no more threads than elements nor a vector
 * wider than the row. Whatever still exceeds a limit is caught by the code
 * generator, which the candidate check runs before the backend compiles.
 */
#include "tuner.h"

#include "dialect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add_axis(ts__tune_space *sp, const char *name, const int64_t *v, int n, int64_t def) {
    if (sp->naxes >= TS__TUNE_MAX_AXES || n < 1) return -1;
    ts__tune_axis *a = &sp->axes[sp->naxes];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    for (int i = 0; i < n && a->n < TS__TUNE_MAX_VALUES; i++) a->v[a->n++] = v[i];
    a->def = 0;
    for (int i = 0; i < a->n; i++)
        if (a->v[i] == def) a->def = i;
    return sp->naxes++;
}

/* Powers of two in [lo, hi]; with window > 0 only `window` values centred on def. */
static int pow2_values(int64_t lo, int64_t hi, int64_t def, int window, int64_t *out) {
    int64_t all[64];
    int n = 0, d = 0;
    for (int64_t v = ts__next_pow2(lo < 1 ? 1 : lo); v <= hi && n < 64; v <<= 1) {
        if (v == def) d = n;
        all[n++] = v;
    }
    if (n == 0) {
        out[0] = def;
        return 1;
    }
    int first = 0, count = n;
    if (window > 0 && n > window) {
        first = d - window / 2;
        if (first < 0) first = 0;
        if (first + window > n) first = n - window;
        count = window;
    }
    if (count > TS__TUNE_MAX_VALUES) {
        first += count - TS__TUNE_MAX_VALUES;
        count = TS__TUNE_MAX_VALUES;
    }
    memcpy(out, all + first, (size_t)count * sizeof *out);
    return count;
}

int64_t ts__tune_local_estimate(const ts__kir *ir, const ts__plan *p) {
    int64_t most = 0;
    for (int i = 0; i < ir->nops; i++) {
        const ts__op *op = &ir->ops[i];
        int64_t need = 0;
        switch (op->kind) {
        case TS__OP_DOT:
            if (p->stage) need = ts__value_numel(ir, p, op->in[0]) + ts__value_numel(ir, p, op->in[1]);
            break;
        case TS__OP_REDUCE:
        case TS__OP_TRANSPOSE:
        case TS__OP_BROADCAST:
        case TS__OP_EXPAND_DIMS: need = ts__value_numel(ir, p, op->in[0]); break;
        default: break;
        }
        if (need > most) most = need;
    }
    return most * 4;
}

int64_t ts__tune_space_points(const ts__tune_space *sp) {
    int64_t n = 1;
    for (int a = 0; a < sp->naxes; a++) n *= sp->axes[a].n;
    return n;
}

int ts__tune_space_valid(const ts__tune_space *sp, const int *idx) {
    for (int a = 0; a < sp->naxes; a++)
        if (idx[a] < 0 || idx[a] >= sp->axes[a].n) return 0;
    return sp->valid ? sp->valid(sp, idx, sp->valid_user) : 1;
}

int64_t ts__tune_space_count_valid(const ts__tune_space *sp, int64_t limit) {
    int idx[TS__TUNE_MAX_AXES] = {0};
    int64_t total = ts__tune_space_points(sp), n = 0;
    if (total > limit) return -1;
    for (int64_t p = 0; p < total; p++) {
        int64_t r = p;
        for (int a = sp->naxes - 1; a >= 0; a--) {
            idx[a] = (int)(r % sp->axes[a].n);
            r /= sp->axes[a].n;
        }
        n += ts__tune_space_valid(sp, idx);
    }
    return n;
}

ts_status ts__tune_space_config(const ts__tune_space *sp, const int *idx, ts_config **out) {
    ts_status s = ts_config_create(out);
    for (int a = 0; a < sp->naxes && !s; a++) s = ts_config_set(*out, sp->axes[a].name, sp->axes[a].v[idx[a]]);
    if (s) {
        ts_config_destroy(*out);
        *out = NULL;
    }
    return s;
}

void ts__tune_space_format(const ts__tune_space *sp, const int *idx, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (int a = 0; a < sp->naxes && k < n; a++) {
        int w = snprintf(buf + k, n - k, "%s%s=%lld", a ? "," : "", sp->axes[a].name, (long long)sp->axes[a].v[idx[a]]);
        if (w < 0) break;
        k += (size_t)w;
    }
}

void ts__tune_space_default(const ts__tune_space *sp, int *idx) {
    for (int a = 0; a < sp->naxes; a++) idx[a] = sp->axes[a].def;
}

/* ---------------------------------------------------------------- pruning of a kernel's space */

static int kernel_valid(const ts__tune_space *sp, const int *idx, void *user) {
    const ts__kspace_info *info = user;
    const ts__kir *ir = &info->k->ir;
    ts_config *cfg;
    if (ts__tune_space_config(sp, idx, &cfg)) return 0;
    ts__plan p;
    ts_status s = ts__plan_make(ir, cfg, info->shapes, &p);
    ts_config_destroy(cfg);
    if (s) return 0;
    int ok = 1;
    /* blocks: no larger than needed to cover their extent (larger ones only add padding) */
    for (int t = 0; t < ir->ntiles && ok; t++) {
        const ts__tile *tl = &ir->tiles[t];
        if (tl->block < 0 || tl->extent < 0) continue; /* ranged loops: their range is known only at run time */
        int64_t need = ts__next_pow2(p.size_values[tl->extent] < 1 ? 1 : p.size_values[tl->extent]);
        if (need < ir->tunables[tl->block].min) need = ir->tunables[tl->block].min;
        if (p.block[t] > need) ok = 0;
    }
    int threads = info->dialect != TS_DIALECT_NONE ? ts__cg_threads(ir, &p) : p.threads;
    if (threads < 1 || threads > info->caps.max_group_size) ok = 0;
    if (ok && info->caps.shared_mem_bytes && ts__tune_local_estimate(ir, &p) > info->caps.shared_mem_bytes) ok = 0;
    if (ok && sp->has_dot) {
        /* micro-tile within the block: a larger one is clamped, a duplicate of a smaller point */
        for (int i = 0; i < ir->nops && ok; i++) {
            const ts__op *op = &ir->ops[i];
            if (op->kind != TS__OP_DOT) continue;
            const ts__value *rv = &ir->values[op->result];
            if (p.micro_m > p.block[rv->dims[0]] || p.micro_n > p.block[rv->dims[1]]) ok = 0;
        }
        /* dot_vec4 dialects: whole SIMD rows of invocations (lavapipe packs 8 along x) */
        const ts__dialect *dd = ts__dialect_get(info->dialect);
        if (ok && dd && dd->dot_vec4 && threads % 8) ok = 0;
    } else if (ok) {
        /* no more threads than elements of the largest tile, no vector wider than a row */
        int64_t most = 1, row = 1;
        for (int v = 0; v < ir->nvalues; v++) {
            int64_t n = ts__value_numel(ir, &p, v);
            if (n > most) most = n;
            const ts__value *val = &ir->values[v];
            if (val->rank > 0 && val->dims[val->rank - 1] != TS_NONE) {
                int64_t c = p.block[val->dims[val->rank - 1]];
                if (c > row) row = c;
            }
        }
        if (p.threads > 1 && p.threads > most) ok = 0;
        if (p.vec > 1 && p.vec > row) ok = 0;
        /* col_threads at or above the group size all mean "the whole group": keep the default only */
        int ca = -1;
        for (int a = 0; a < sp->naxes; a++)
            if (strcmp(sp->axes[a].name, "col_threads") == 0) ca = a;
        if (ca >= 0) {
            int64_t col = sp->axes[ca].v[idx[ca]];
            if (col != sp->axes[ca].v[sp->axes[ca].def] && col >= p.threads) ok = 0;
        }
    }
    ts__plan_free(&p);
    return ok;
}

static int axis_index(const ts__tune_space *sp, const char *name) {
    for (int a = 0; a < sp->naxes; a++)
        if (strcmp(sp->axes[a].name, name) == 0) return a;
    return -1;
}

/* Index of the axis value closest to v (in log2 terms: values are powers of two or small). */
static int nearest(const ts__tune_axis *a, int64_t v) {
    int best = 0;
    for (int i = 1; i < a->n; i++) {
        int64_t d = a->v[i] > v ? a->v[i] - v : v - a->v[i], db = a->v[best] > v ? a->v[best] - v : v - a->v[best];
        if (d < db) best = i;
    }
    return best;
}

/* A starting point: the defaults with keys set to vals; with ntunables > 0
 * the kernel's tunables (the first axes) at their smallest value. */
static void add_seed(ts__tune_space *sp, const char *const *keys, const int64_t *vals, int n, int ntunables) {
    if (sp->nseeds >= TS__TUNE_MAX_SEEDS) return;
    int *s = sp->seeds[sp->nseeds];
    ts__tune_space_default(sp, s);
    for (int t = 0; t < ntunables; t++) s[t] = 0;
    for (int i = 0; i < n; i++) {
        int a = axis_index(sp, keys[i]);
        if (a >= 0) s[a] = nearest(&sp->axes[a], vals[i]);
    }
    sp->nseeds++;
}

/* 1 when the kernel's dots take f16/bf16 operands (the tensor-core path). */
static int dot_is_16bit(const ts__kir *ir) {
    for (int i = 0; i < ir->nops; i++)
        if (ir->ops[i].kind == TS__OP_DOT) {
            ts_dtype d = ir->values[ir->ops[i].in[0]].dtype;
            if (d == TS_F16 || d == TS_BF16) return 1;
        }
    return 0;
}

ts_status ts__tune_space_build(ts__kspace_info *info, ts_tune_effort effort, ts__tune_space *sp) {
    memset(sp, 0, sizeof *sp);
    const ts__kir *ir = &info->k->ir;
    int quick = effort != TS_TUNE_EFFORT_FULL;
    sp->has_dot = ts__kir_has_dot(ir);
    int64_t v[64];
    for (int t = 0; t < ir->ntunables; t++) {
        const ts__tunable *tu = &ir->tunables[t];
        int n = pow2_values(tu->min, tu->max, tu->def, quick ? (sp->has_dot ? 3 : 5) : 0, v);
        if (add_axis(sp, tu->name, v, n, tu->def) < 0)
            return ts__error(TS_ERR_LIMIT, "kernel '%s' has more than %d tunables and knobs to search", ir->name, TS__TUNE_MAX_AXES);
    }
    int64_t max_group = info->caps.max_group_size > 0 ? info->caps.max_group_size : 1;
    if (sp->has_dot) {
        static const int64_t mm_full[] = {1, 2, 4, 8, 16}, mm_quick[] = {4, 8}, nn_quick[] = {8, 16};
        static const int64_t stage[] = {0, 1}, unroll_full[] = {1, 2, 4, 8}, unroll_quick[] = {1};
        /* dot_vec4 dialects (GLSL): micro-tiles of 4..16 both ways (vec4
         * registers; on lavapipe the larger tiles amortize the per-lane loop
         * of every buffer and shared access), staged by default */
        static const int64_t v4_quick[] = {4, 8, 16};
        const ts__dialect *dd = ts__dialect_get(info->dialect);
        int v4 = dd && dd->dot_vec4;
        int ok = add_axis(sp, "micro_m", quick ? (v4 ? v4_quick : mm_quick) : mm_full, quick ? (v4 ? 3 : 2) : 5, v4 ? 8 : 4) >= 0;
        ok = ok && add_axis(sp, "micro_n", quick ? (v4 ? v4_quick : nn_quick) : mm_full, quick ? (v4 ? 3 : 2) : 5, 8) >= 0;
        ok = ok && add_axis(sp, "stage", stage, 2, v4 ? 1 : 0) >= 0;
        ok = ok && add_axis(sp, "unroll", quick ? unroll_quick : unroll_full, quick ? 1 : 4, 1) >= 0;
        /* CUDA and HIP, f16/bf16 dots: the tensor-core path (mma.sync; MFMA
         * on HIP; default on), its warps per program and the grouped program
         * order; on CUDA also the cp.async pipeline's stages (1: none; a count
         * that does not fit shared memory is reduced by the emitter);
         * tensor_cores=0 keeps the micro-tile lowering in reach. HIP: whole
         * 64-lane wavefronts, so an even number of 32-thread warps */
        int hip = info->dialect == TS_DIALECT_HIP;
        if (ok && (info->dialect == TS_DIALECT_CUDA || hip) && dot_is_16bit(ir)) {
            static const int64_t tc[] = {1, 0}, warps_quick[] = {2, 4, 8}, warps_full[] = {1, 2, 4, 8, 16};
            static const int64_t stages_quick[] = {2, 3, 4}, stages_full[] = {1, 2, 3, 4}, gm_quick[] = {1, 8}, gm_full[] = {1, 4, 8, 16};
            ok = add_axis(sp, "tensor_cores", tc, 2, 1) >= 0;
            ok = ok && add_axis(sp, "warps", quick ? warps_quick : warps_full + hip, quick ? 3 : 5 - hip, 4) >= 0;
            if (!hip) ok = ok && add_axis(sp, "stages", quick ? stages_quick : stages_full, quick ? 3 : 4, 3) >= 0;
            ok = ok && add_axis(sp, "group_m", quick ? gm_quick : gm_full, quick ? 2 : 4, 1) >= 0;
        }
        if (!ok) return ts__error(TS_ERR_LIMIT, "kernel '%s' has too many tunables to search", ir->name);
        /* starting points of both styles: register blocks with wide vector loads
         * and no staging (CPU), small micro-tiles staged through local memory (GPU) */
        static const char *const keys[] = {"micro_m", "micro_n", "stage"};
        if (v4) { /* first (a quick budget on lavapipe evaluates few points): 16x16 per invocation, staged */
            add_seed(sp, keys, (const int64_t[]){16, 16, 1}, 3, 0);
            add_seed(sp, keys, (const int64_t[]){8, 8, 0}, 3, 0);
        }
        add_seed(sp, keys, (const int64_t[]){8, 16, 0}, 3, 0);
        add_seed(sp, keys, (const int64_t[]){4, 4, 1}, 3, 0);
    } else {
        /* threads: a window around the default, plus 1 (a work-item per
         * group: on a CPU device each group is a loop on one core, and one
         * item holding whole rows with float16 operations was fastest on
         * PoCL for softmax and layer norm); vec: every width, 16 included
         * (AVX-512 lanes of f32) */
        int n = pow2_values(1, max_group < 1024 ? max_group : 1024, 64, quick ? 5 : 0, v);
        if (quick && v[0] != 1 && n < TS__TUNE_MAX_VALUES) {
            memmove(v + 1, v, (size_t)n * sizeof *v);
            v[0] = 1;
            n++;
        }
        int ok = add_axis(sp, "threads", v, n, 64) >= 0;
        n = pow2_values(1, 16, 1, 0, v);
        ok = ok && add_axis(sp, "vec", v, n, 1) >= 0;
        /* col_threads (how many threads share a row; 1: each owns whole rows),
         * when this build's code generator has the knob */
        ts_config *probe = NULL;
        if (ok && ts_config_create(&probe) == TS_OK && ts_config_set(probe, "col_threads", 1) == TS_OK &&
            ts_config_check(probe, info->k) == TS_OK) {
            static const int64_t col_quick[] = {1, 16, 1024};
            n = quick ? 3 : pow2_values(1, 1024, 1024, 0, v);
            ok = add_axis(sp, "col_threads", quick ? col_quick : v, n, 1024) >= 0;
        }
        ts_config_destroy(probe);
        ts_clear_error();
        /* nt: non-temporal whole-tile stores (OpenCL C via Clang's builtin):
         * a large output written once skips the read-for-ownership of its
         * cache lines (softmax 4096x1024 on PoCL: about 10% faster) */
        static const int64_t nt[] = {0, 1};
        const ts__dialect *d = ts__dialect_get(info->dialect);
        if (ok && d && d->nt_stores) ok = add_axis(sp, "nt", nt, 2, 0) >= 0;
        if (!ok) return ts__error(TS_ERR_LIMIT, "kernel '%s' has too many tunables to search", ir->name);
        /* starting points: a GPU-like group with short vectors, a CPU-like
         * one (one item owning whole rows, 16-wide vectors), and wide
         * vectors over a 64-item group (elementwise kernels on PoCL) */
        static const char *const keys[] = {"threads", "vec", "nt"};
        add_seed(sp, keys, (const int64_t[]){16, 4, 0}, 3, 0);
        add_seed(sp, keys, (const int64_t[]){1, 16, 1}, 3, 0);
        /* the same with the kernel's blocks at their smallest (one row a
         * group: the default blocks may need more private memory than allowed) */
        add_seed(sp, keys, (const int64_t[]){1, 16, 1}, 3, ir->ntunables);
        add_seed(sp, keys, (const int64_t[]){64, 16, 1}, 3, 0);
    }
    sp->valid = kernel_valid;
    sp->valid_user = info;
    return TS_OK;
}
