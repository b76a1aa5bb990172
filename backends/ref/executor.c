/* executor.c: the reference executor, the oracle every backend, the tuner
 * and the conformance suite compare against.
 *
 * It interprets the IR directly, program instance by program instance and
 * tile by tile under the plan's block sizes, computing in f64 (integers are
 * wrapped to their dtype after each op; floats are rounded only by casts
 * and stores). Tiles have the same logical semantics as generated code:
 * padding lanes hold the load's fill value, reductions and dot skip them,
 * stores write only valid elements.
 *
 * Sections: value storage; index helpers; ops; the program loop.
 */
#include "ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TS__MAX_TILE_ELEMS (INT64_C(1) << 24)

typedef struct exec {
    const ts__kir *ir;
    const ts__plan *plan;
    const ts__host_arg *args;
    double **vals;    /* [nvalues] */
    int64_t *numel;   /* [nvalues] */
    int64_t *begin;   /* [ntiles]: first global index of the current tile */
    int64_t *extent;  /* [ntiles]: one past the last valid index (a ranged loop: its hi) */
    int64_t *lo;      /* [ntiles]: where the tile's range starts (0 but for ranged loops) */
    int64_t *iter;    /* [nops]: loop iteration counters at LOOP_BEGIN */
    int64_t *niter;   /* [nops] */
    double *tmp;      /* scratch for loop-carried swaps */
    int64_t tmp_n;
} exec;

/* ---------------------------------------------------------------- values */

static void shape_of(const exec *ex, ts_val v, int64_t *shape) { ts__value_shape(ex->ir, ex->plan, v, shape); }

static int valid_at(const exec *ex, ts_tile t, int64_t i) { return t == TS_NONE || ex->begin[t] + i < ex->extent[t]; }

static double wrap(ts_dtype d, double x) { return ts_dtype_is_float(d) ? x : ts__round_to(d, x); }

/* Strides (in elements) with which operand `o` is read for each dim of a
 * result of rank r: right-aligned numpy broadcasting, 0 on dims of 1. */
static void operand_strides(const exec *ex, ts_val o, int r, int64_t *st) {
    const ts__value *ov = &ex->ir->values[o];
    int64_t oshape[TS_MAX_RANK];
    shape_of(ex, o, oshape);
    int64_t s = 1;
    for (int d = 0; d < r; d++) st[d] = 0;
    for (int j = ov->rank - 1; j >= 0; j--) {
        int d = j + (r - ov->rank);
        st[d] = ov->dims[j] == TS_NONE ? 0 : s;
        s *= oshape[j];
    }
}

/* Iterates a rank-r shape (padded to 4 dims) calling BODY with e (linear
 * result index) and i[4] (multi-index, right-aligned to dims 4-r..3). */
#define FOR_EACH(shape4, BODY)                                                   \
    do {                                                                         \
        int64_t e = 0, i[4];                                                     \
        for (i[0] = 0; i[0] < (shape4)[0]; i[0]++)                               \
            for (i[1] = 0; i[1] < (shape4)[1]; i[1]++)                           \
                for (i[2] = 0; i[2] < (shape4)[2]; i[2]++)                       \
                    for (i[3] = 0; i[3] < (shape4)[3]; i[3]++, e++) { BODY; }    \
    } while (0)

static void pad4(int r, const int64_t *in, int64_t *out, int64_t fillv) {
    for (int d = 0; d < 4; d++) out[d] = fillv;
    for (int d = 0; d < r; d++) out[4 - r + d] = in[d];
}

/* ---------------------------------------------------------------- scalar math */

static double erf_d(double x) { return erf(x); }

static double unary(int op, double x) {
    switch (op) {
    case TS_NEG: return -x;
    case TS_ABS: return fabs(x);
    case TS_EXP: return exp(x);
    case TS_LOG: return log(x);
    case TS_SQRT: return sqrt(x);
    case TS_RSQRT: return 1.0 / sqrt(x);
    case TS_TANH: return tanh(x);
    case TS_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case TS_ERF: return erf_d(x);
    case TS_RELU: return x > 0 ? x : 0.0;
    case TS_GELU: return 0.5 * x * (1.0 + erf_d(x / sqrt(2.0)));
    case TS_SILU: return x / (1.0 + exp(-x));
    case TS_SIN: return sin(x);
    case TS_COS: return cos(x);
    case TS_NOT: return x == 0.0 ? 1.0 : 0.0;
    default: return NAN;
    }
}

static double binary(int op, double x, double y, int is_float) {
    switch (op) {
    case TS_ADD: return x + y;
    case TS_SUB: return x - y;
    case TS_MUL: return x * y;
    case TS_DIV:
        if (is_float) return x / y;
        if (y == 0.0) return 0.0; /* integer division by zero gives 0 on every backend */
        return trunc(x / y);
    case TS_MAX: return isnan(x) || isnan(y) ? NAN : (x > y ? x : y);
    case TS_MIN: return isnan(x) || isnan(y) ? NAN : (x < y ? x : y);
    case TS_POW: return pow(x, y);
    case TS_LT: return x < y;
    case TS_LE: return x <= y;
    case TS_GT: return x > y;
    case TS_GE: return x >= y;
    case TS_EQ: return x == y;
    case TS_NE: return x != y;
    case TS_AND: return x != 0.0 && y != 0.0;
    case TS_OR: return x != 0.0 || y != 0.0;
    case TS_MOD: return y == 0.0 ? 0.0 : x - trunc(x / y) * y;
    default: return NAN;
    }
}

/* ---------------------------------------------------------------- memory ops */

/* Element offset into tensor for a load/store/atomic at result multi-index
 * i (rank-r dims of the access: tiles, shifted tiles, value indices' dims).
 * Returns 0 when masked: a tile element past its tile's valid range, or an
 * index outside 0 <= index < the dim's size. */
static int tensor_offset(const exec *ex, const ts__op *op, const ts__host_tensor *t, const int64_t *i4, int r, int64_t *off) {
    int k = 4 - r;
    int64_t o = 0;
    for (int d = 0; d < t->rank; d++) {
        const ts_index *ix = &op->idx[d];
        int64_t g;
        switch (ix->kind) {
        case TS_IDX_CONST: g = ix->value; break;
        case TS_IDX_POINT: g = ex->begin[ix->tile]; break;
        case TS_IDX_SCALAR: g = (int64_t)ex->vals[ix->val][0]; break;
        case TS_IDX_VALUE: {
            const ts__value *iv = &ex->ir->values[ix->val];
            int64_t shape[TS_MAX_RANK], flat = 0;
            shape_of(ex, ix->val, shape);
            for (int j = 0; j < iv->rank; j++) {
                int64_t pos = i4[k++];
                if (!valid_at(ex, iv->dims[j], pos)) return 0;
                flat = flat * shape[j] + pos;
            }
            g = (int64_t)ex->vals[ix->val][flat];
            break;
        }
        default: { /* TILE, SHIFT */
            int64_t pos = i4[k++];
            if (!valid_at(ex, ix->tile, pos)) return 0;
            g = ex->begin[ix->tile] + pos;
            if (ix->kind == TS_IDX_SHIFT) g += (int64_t)ex->vals[ix->val][0];
            break;
        }
        }
        if (g < 0 || g >= t->shape[d]) return 0;
        o += g * t->strides[d];
    }
    *off = o;
    return 1;
}

static void do_load(exec *ex, const ts__op *op) {
    const ts__value *rv = &ex->ir->values[op->result];
    const ts__host_tensor *t = &ex->args[op->param].t;
    double *out = ex->vals[op->result];
    int64_t shape[TS_MAX_RANK], s4[4];
    shape_of(ex, op->result, shape);
    pad4(rv->rank, shape, s4, 1);
    FOR_EACH(s4, {
        int64_t off;
        out[e] = tensor_offset(ex, op, t, i, rv->rank, &off) ? ts__load_elem(t->dtype, t->base, off) : op->value;
    });
}

static void do_store(exec *ex, const ts__op *op, int atomic) {
    const ts__host_tensor *t = &ex->args[op->param].t;
    int r = 0;
    int64_t shape[TS_MAX_RANK];
    for (int d = 0; d < t->rank; d++) { /* the access's dims */
        const ts_index *ix = &op->idx[d];
        if (ix->kind == TS_IDX_TILE || ix->kind == TS_IDX_SHIFT) shape[r++] = ex->plan->block[ix->tile];
        else if (ix->kind == TS_IDX_VALUE) {
            int64_t vs[TS_MAX_RANK];
            shape_of(ex, ix->val, vs);
            for (int j = 0; j < ex->ir->values[ix->val].rank; j++) shape[r++] = vs[j];
        }
    }
    int64_t st[TS_MAX_RANK], s4[4], st4[4];
    operand_strides(ex, op->in[0], r, st);
    pad4(r, shape, s4, 1);
    pad4(r, st, st4, 0);
    const double *src = ex->vals[op->in[0]];
    FOR_EACH(s4, {
        (void)e;
        int64_t off;
        if (tensor_offset(ex, op, t, i, r, &off)) {
            double v = src[i[0] * st4[0] + i[1] * st4[1] + i[2] * st4[2] + i[3] * st4[3]];
            if (atomic) v += ts__load_elem(t->dtype, t->base, off);
            ts__store_elem(t->dtype, t->base, off, v);
        }
    });
}

static void do_gather(exec *ex, const ts__op *op) {
    const ts__host_tensor *t = &ex->args[op->param].t;
    const ts__value *iv = &ex->ir->values[op->in[0]];
    const double *ids = ex->vals[op->in[0]];
    double *out = ex->vals[op->result];
    int64_t na = ex->plan->block[iv->dims[0]];
    ts_tile ct = op->idx[0].tile;
    int64_t nc = ex->plan->block[ct];
    for (int64_t a = 0; a < na; a++)
        for (int64_t c = 0; c < nc; c++) {
            double id = ids[a];
            int64_t col = ex->begin[ct] + c;
            int ok = valid_at(ex, iv->dims[0], a) && id >= 0 && id < (double)t->shape[0] && col < t->shape[1];
            out[a * nc + c] = ok ? ts__load_elem(t->dtype, t->base, (int64_t)id * t->strides[0] + col * t->strides[1]) : op->value;
        }
}

/* Philox 4x32-10 keyed by the seed, counted by the element's row-major
 * global index over the tiles' extents (ts_rand in tessera.h). */
static void do_rand(exec *ex, const ts__op *op) {
    const ts__value *rv = &ex->ir->values[op->result];
    int64_t shape[TS_MAX_RANK], ext[TS_MAX_RANK], pos[TS_MAX_RANK] = {0};
    shape_of(ex, op->result, shape);
    for (int d = 0; d < rv->rank; d++) ext[d] = rv->dims[d] == TS_NONE ? 1 : ex->extent[rv->dims[d]];
    uint64_t seed = (uint64_t)(int64_t)ex->vals[op->in[0]][0];
    double *out = ex->vals[op->result];
    for (int64_t e = 0; e < ex->numel[op->result]; e++) {
        int64_t gi = 0;
        for (int d = 0; d < rv->rank; d++) gi = gi * ext[d] + (rv->dims[d] == TS_NONE ? 0 : ex->begin[rv->dims[d]] + pos[d]);
        uint32_t c[4] = {(uint32_t)(uint64_t)gi, (uint32_t)((uint64_t)gi >> 32), 0, 0};
        ts__philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32));
        out[e] = op->sub ? (double)(int32_t)c[0] : (double)(c[0] >> 8) * (1.0 / 16777216.0);
        for (int d = rv->rank - 1; d >= 0; d--) { /* next multi-index, row-major */
            if (++pos[d] < shape[d]) break;
            pos[d] = 0;
        }
    }
}

/* op->in[0]'s shape around op->axis: outer x n x inner (reductions, scans). */
static void axis_split(exec *ex, const ts__op *op, int64_t *outer, int64_t *n, int64_t *inner) {
    int64_t shape[TS_MAX_RANK];
    shape_of(ex, op->in[0], shape);
    *outer = 1, *inner = 1, *n = shape[op->axis];
    for (int d = 0; d < op->axis; d++) *outer *= shape[d];
    for (int d = op->axis + 1; d < ex->ir->values[op->in[0]].rank; d++) *inner *= shape[d];
}

/* Inclusive scan along op->axis over the valid elements (a prefix of the
 * axis: begin + k < extent); reverse from the last valid one. Padding
 * results are left as the input's. */
static void do_scan(exec *ex, const ts__op *op) {
    const ts__value *xv = &ex->ir->values[op->in[0]];
    int64_t outer, n, inner;
    axis_split(ex, op, &outer, &n, &inner);
    ts_tile at = xv->dims[op->axis];
    int64_t nv = 0; /* valid elements along the axis */
    while (nv < n && valid_at(ex, at, nv)) nv++;
    const double *x = ex->vals[op->in[0]];
    double *y = ex->vals[op->result];
    memcpy(y, x, (size_t)ex->numel[op->result] * sizeof(double));
    int is_float = ts_dtype_is_float(xv->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            double acc = 0;
            for (int64_t s = 0; s < nv; s++) {
                int64_t k = op->keepdim ? nv - 1 - s : s;
                double v = x[(o * n + k) * inner + in];
                if (s == 0) acc = v;
                else switch (op->sub) {
                    case TS_SCAN_SUM: acc = wrap(xv->dtype, acc + v); break;
                    case TS_SCAN_PROD: acc = wrap(xv->dtype, acc * v); break;
                    case TS_SCAN_MAX: acc = binary(TS_MAX, acc, v, is_float); break;
                    default: acc = binary(TS_MIN, acc, v, is_float); break;
                    }
                y[(o * n + k) * inner + in] = acc;
            }
        }
}

/* ---------------------------------------------------------------- compute ops */

static void do_elementwise(exec *ex, const ts__op *op) {
    const ts__value *rv = &ex->ir->values[op->result];
    int nin = op->kind == TS__OP_SELECT ? 3 : op->kind == TS__OP_BINARY ? 2 : 1;
    int64_t shape[TS_MAX_RANK], s4[4], st[3][4];
    shape_of(ex, op->result, shape);
    pad4(rv->rank, shape, s4, 1);
    const double *src[3] = {0};
    for (int k = 0; k < nin; k++) {
        int64_t s[TS_MAX_RANK];
        operand_strides(ex, op->in[k], rv->rank, s);
        pad4(rv->rank, s, st[k], 0);
        src[k] = ex->vals[op->in[k]];
    }
    double *out = ex->vals[op->result];
    ts_dtype in_dt = ex->ir->values[op->in[0]].dtype;
    int is_float = ts_dtype_is_float(op->kind == TS__OP_SELECT ? ex->ir->values[op->in[1]].dtype : in_dt);
#define AT(k) src[k][i[0] * st[k][0] + i[1] * st[k][1] + i[2] * st[k][2] + i[3] * st[k][3]]
    switch (op->kind) {
    case TS__OP_UNARY: FOR_EACH(s4, out[e] = wrap(rv->dtype, unary(op->sub, AT(0)))); break;
    case TS__OP_BINARY: FOR_EACH(s4, out[e] = wrap(rv->dtype, binary(op->sub, AT(0), AT(1), is_float))); break;
    case TS__OP_SELECT: FOR_EACH(s4, out[e] = AT(0) != 0.0 ? AT(1) : AT(2)); break;
    case TS__OP_CAST: FOR_EACH(s4, out[e] = ts__round_to(op->dtype, AT(0))); break;
    default: FOR_EACH(s4, out[e] = AT(0)); break; /* expand_dims, broadcast */
    }
#undef AT
}

static void do_reduce(exec *ex, const ts__op *op) {
    const ts__value *xv = &ex->ir->values[op->in[0]];
    int64_t outer, n, inner;
    axis_split(ex, op, &outer, &n, &inner);
    ts_tile rt = xv->dims[op->axis];
    const double *x = ex->vals[op->in[0]];
    double *out = ex->vals[op->result];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            double acc = 0, best = -INFINITY;
            int64_t cnt = 0, arg = 0;
            int first = 1;
            for (int64_t k = 0; k < n; k++) {
                if (!valid_at(ex, rt, k)) continue;
                double v = x[(o * n + k) * inner + in];
                cnt++;
                switch (op->sub) {
                case TS_RED_SUM:
                case TS_RED_MEAN: acc += v; break;
                case TS_RED_MAX:
                    if (first || v > acc || isnan(v)) acc = isnan(acc) ? acc : v;
                    break;
                case TS_RED_MIN:
                    if (first || v < acc || isnan(v)) acc = isnan(acc) ? acc : v;
                    break;
                case TS_RED_ARGMAX:
                    if (first || v > best) { best = v; arg = (rt == TS_NONE ? 0 : ex->begin[rt]) + k; }
                    break;
                }
                first = 0;
            }
            double r = op->sub == TS_RED_MEAN ? acc / (double)(cnt ? cnt : 1) : op->sub == TS_RED_ARGMAX ? (double)arg : acc;
            out[o * inner + in] = wrap(ex->ir->values[op->result].dtype, r);
        }
}

static void do_dot(exec *ex, const ts__op *op) {
    const ts__value *xv = &ex->ir->values[op->in[0]];
    int64_t m = ex->plan->block[xv->dims[0]], k = ex->plan->block[xv->dims[1]];
    int64_t n = ex->plan->block[ex->ir->values[op->in[1]].dims[1]];
    ts_tile kt = xv->dims[1];
    const double *a = ex->vals[op->in[0]], *b = ex->vals[op->in[1]];
    double *c = ex->vals[op->result];
    if (op->in[2] != TS_NONE) memcpy(c, ex->vals[op->in[2]], (size_t)(m * n) * sizeof(double));
    else memset(c, 0, (size_t)(m * n) * sizeof(double));
    int64_t kvalid = ex->extent[kt] - ex->begin[kt];
    if (kvalid > k) kvalid = k;
    for (int64_t i = 0; i < m; i++)
        for (int64_t p = 0; p < kvalid; p++) {
            double av = a[i * k + p];
            const double *brow = b + p * n;
            double *crow = c + i * n;
            for (int64_t j = 0; j < n; j++) crow[j] += av * brow[j];
        }
    /* i8 operands: the sums are exact in f64 (below 2^53), then wrap to i32 as the devices' i32 adds do */
    if (ex->ir->values[op->result].dtype == TS_I32)
        for (int64_t i = 0; i < m * n; i++) c[i] = wrap(TS_I32, c[i]);
}

static void copy_val(exec *ex, ts_val dst, ts_val src) {
    if (dst != src) memcpy(ex->vals[dst], ex->vals[src], (size_t)ex->numel[dst] * sizeof(double));
}

/* ---------------------------------------------------------------- the program loop */

static ts_status run_program(exec *ex) {
    const ts__kir *ir = ex->ir;
    int pc = 0;
    while (pc < ir->nops) {
        const ts__op *op = &ir->ops[pc];
        switch (op->kind) {
        case TS__OP_LOAD: do_load(ex, op); break;
        case TS__OP_STORE: do_store(ex, op, 0); break;
        case TS__OP_ATOMIC_ADD: do_store(ex, op, 1); break;
        case TS__OP_GATHER: do_gather(ex, op); break;
        case TS__OP_SCALAR: {
            const ts__host_arg *a = &ex->args[op->param];
            ex->vals[op->result][0] = ts_dtype_is_float(ir->params[op->param].dtype) ? a->f : wrap(ir->params[op->param].dtype, (double)a->i);
            break;
        }
        case TS__OP_FULL: {
            double v = ts__round_to(op->dtype, op->value);
            for (int64_t e = 0; e < ex->numel[op->result]; e++) ex->vals[op->result][e] = v;
            break;
        }
        case TS__OP_ARANGE:
            for (int64_t e = 0; e < ex->numel[op->result]; e++) ex->vals[op->result][e] = (double)(ex->begin[op->tile] + e);
            break;
        case TS__OP_UNARY:
        case TS__OP_BINARY:
        case TS__OP_SELECT:
        case TS__OP_CAST:
        case TS__OP_BROADCAST: do_elementwise(ex, op); break;
        case TS__OP_EXPAND_DIMS: copy_val(ex, op->result, op->in[0]); break; /* same linear order */
        case TS__OP_REDUCE: do_reduce(ex, op); break;
        case TS__OP_DOT: do_dot(ex, op); break;
        case TS__OP_TRANSPOSE: {
            int64_t shape[TS_MAX_RANK];
            shape_of(ex, op->in[0], shape);
            const double *x = ex->vals[op->in[0]];
            double *y = ex->vals[op->result];
            for (int64_t r = 0; r < shape[0]; r++)
                for (int64_t c = 0; c < shape[1]; c++) y[c * shape[0] + r] = x[r * shape[1] + c];
            break;
        }
        case TS__OP_TILE_POS: {
            ts_tile t = op->tile;
            int64_t b = ex->begin[t], blk = ex->plan->block[t], e = b + blk < ex->extent[t] ? b + blk : ex->extent[t];
            ex->vals[op->result][0] = wrap(TS_I32, (double)(op->sub == TS_POS_BEGIN ? b : op->sub == TS_POS_END ? e : (b - ex->lo[t]) / blk));
            break;
        }
        case TS__OP_RAND: do_rand(ex, op); break;
        case TS__OP_SCAN: do_scan(ex, op); break;
        case TS__OP_SIZE: ex->vals[op->result][0] = wrap(TS_I32, (double)ex->plan->size_values[op->axis]); break;
        case TS__OP_LOOP_BEGIN: {
            int64_t blk = ex->plan->block[op->tile], lo = 0;
            if (ir->tiles[op->tile].ranged) { /* lo .. hi, computed before the loop */
                lo = (int64_t)ex->vals[op->in[0]][0];
                ex->extent[op->tile] = (int64_t)ex->vals[op->in[1]][0];
            }
            ex->lo[op->tile] = lo;
            ex->niter[pc] = ex->extent[op->tile] > lo ? (ex->extent[op->tile] - lo + blk - 1) / blk : 0;
            ex->iter[pc] = 0;
            ex->begin[op->tile] = lo;
            for (int i = 0; i < op->ncarry; i++) copy_val(ex, op->carried[i], op->init[i]);
            if (ex->niter[pc] == 0) {
                const ts__op *end = &ir->ops[op->match];
                for (int i = 0; i < op->ncarry; i++) copy_val(ex, end->results[i], op->carried[i]);
                pc = op->match + 1;
                continue;
            }
            break;
        }
        case TS__OP_LOOP_END: {
            const ts__op *bop = &ir->ops[op->match];
            /* yields -> carried through scratch: a yield may be another carried value */
            int64_t off = 0;
            for (int i = 0; i < op->ncarry; i++) {
                memcpy(ex->tmp + off, ex->vals[op->yields[i]], (size_t)ex->numel[op->yields[i]] * sizeof(double));
                off += ex->numel[op->yields[i]];
            }
            off = 0;
            for (int i = 0; i < op->ncarry; i++) {
                memcpy(ex->vals[bop->carried[i]], ex->tmp + off, (size_t)ex->numel[bop->carried[i]] * sizeof(double));
                off += ex->numel[bop->carried[i]];
            }
            if (++ex->iter[op->match] < ex->niter[op->match]) {
                ex->begin[op->tile] += ex->plan->block[op->tile];
                pc = op->match + 1;
                continue;
            }
            for (int i = 0; i < op->ncarry; i++) copy_val(ex, op->results[i], bop->carried[i]);
            break;
        }
        default: return ts__error(TS_ERR_INVALID_KERNEL, "kernel '%s': op %d has unknown kind %d", ir->name, pc, (int)op->kind);
        }
        pc++;
    }
    return TS_OK;
}

static void exec_free(exec *ex) {
    if (ex->vals)
        for (int v = 0; v < ex->ir->nvalues; v++) free(ex->vals[v]);
    free(ex->vals);
    free(ex->numel);
    free(ex->begin);
    free(ex->extent);
    free(ex->lo);
    free(ex->iter);
    free(ex->niter);
    free(ex->tmp);
}

ts_status ts__execute(const ts_kernel *k, const ts__plan *p, const ts__host_arg *args) {
    const ts__kir *ir = &k->ir;
    exec ex = {.ir = ir, .plan = p, .args = args};
    size_t nv = (size_t)(ir->nvalues ? ir->nvalues : 1), nt = (size_t)(ir->ntiles ? ir->ntiles : 1), no = (size_t)(ir->nops ? ir->nops : 1);
    ex.vals = ts__calloc(nv, sizeof *ex.vals);
    ex.numel = ts__calloc(nv, sizeof *ex.numel);
    ex.begin = ts__calloc(nt, sizeof *ex.begin);
    ex.extent = ts__calloc(nt, sizeof *ex.extent);
    ex.lo = ts__calloc(nt, sizeof *ex.lo);
    ex.iter = ts__calloc(no, sizeof *ex.iter);
    ex.niter = ts__calloc(no, sizeof *ex.niter);
    if (!ex.vals || !ex.numel || !ex.begin || !ex.extent || !ex.lo || !ex.iter || !ex.niter) { exec_free(&ex); return TS_ERR_OUT_OF_MEMORY; }
    int64_t total = 0;
    for (int v = 0; v < ir->nvalues; v++) {
        ex.numel[v] = ts__value_numel(ir, p, v);
        if (ex.numel[v] > TS__MAX_TILE_ELEMS) {
            exec_free(&ex);
            return ts__error(TS_ERR_LIMIT, "kernel '%s': a tile of %lld elements exceeds the reference executor's limit; use smaller blocks",
                             ir->name, (long long)ex.numel[v]);
        }
        ex.vals[v] = ts__calloc((size_t)ex.numel[v], sizeof(double));
        if (!ex.vals[v]) { exec_free(&ex); return TS_ERR_OUT_OF_MEMORY; }
        total += ex.numel[v];
    }
    ex.tmp = ts__calloc((size_t)(total ? total : 1), sizeof(double));
    if (!ex.tmp) { exec_free(&ex); return TS_ERR_OUT_OF_MEMORY; }
    for (int t = 0; t < ir->ntiles; t++) ex.extent[t] = ir->tiles[t].extent >= 0 ? p->size_values[ir->tiles[t].extent] : 0;
    ts_status s = TS_OK;
    int64_t g[3];
    for (g[0] = 0; g[0] < p->grid[0] && !s; g[0]++)
        for (g[1] = 0; g[1] < p->grid[1] && !s; g[1]++)
            for (g[2] = 0; g[2] < p->grid[2] && !s; g[2]++) {
                for (int d = 0; d < ir->ngrid; d++) ex.begin[ir->grid[d]] = g[d] * p->block[ir->grid[d]];
                s = run_program(&ex);
            }
    exec_free(&ex);
    return s;
}
