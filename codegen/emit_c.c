/* emit_c.c: the one lowering of the tile IR to C-like kernel source.
 *
 * Sections: emitter state; layouts; expressions (dtypes, math, loads);
 * materialization through local memory; ops; dot; loops; the kernel.
 *
 * Model (docs/design.md, "Lowering"). A program instance is one work-group
 * of T threads. Every tile value of concrete shape [.., C] is viewed as
 * R x C (R = product of the leading dims) and spread over the threads by a
 * layout that depends only on (R, C, T, NN): thread t = (tr, tc) holds rows
 * r = tr + i*TR and column chunks of NN contiguous elements c = (tc +
 * q*TC)*NN + jj in a private array indexed by compile-time constants.
 * Values of the same shape share a layout, so elementwise ops work register
 * by register. Anything that needs another thread's elements (broadcast of
 * a size-1 dim, reductions, transposes, dot operands held in registers)
 * goes through local memory between barriers. A dot's result layout is its
 * register micro-tile (micro_m x micro_n per thread); its operands are read
 * straight from global memory when they are loads used only by the dot
 * (stage=0, the CPU-friendly form) or staged through local memory
 * (stage=1, the GPU form). Syntax differences live in dialect.c.
 */
#include "dialect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- state */

#define TS__MAX_PRIVATE 4096

typedef struct layout {
    int rank;
    int64_t shape[TS_MAX_RANK];
    int64_t R, C, nn, TC, TR, cq, mm, J;
} layout;

typedef struct cg {
    const ts__kir *ir;
    const ts__plan *plan;
    const ts__dialect *d;
    ts__sb sb;
    int T, NN;
    int indent;
    int *uses;         /* [nvalues] */
    int *fused;        /* [nops]: load/transpose read directly by a dot */
    int64_t lf, li;    /* local memory needs (elements) for float / integer buffers */
    int64_t priv;      /* private elements declared per thread */
    ts_status err;
    char errmsg[512];
} cg;

static void line(cg *g, const char *fmt, ...) TS__PRINTF(2, 3);

static void line(cg *g, const char *fmt, ...) {
    for (int i = 0; i < g->indent; i++) ts__sb_puts(&g->sb, "  ");
    va_list ap;
    va_start(ap, fmt);
    char buf[4096];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ts__sb_puts(&g->sb, buf);
    ts__sb_puts(&g->sb, "\n");
}

static void cg_fail(cg *g, ts_status s, const char *fmt, ...) TS__PRINTF(3, 4);

static void cg_fail(cg *g, ts_status s, const char *fmt, ...) {
    if (g->err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->errmsg, sizeof g->errmsg, fmt, ap);
    va_end(ap);
    g->err = s;
}

/* ---------------------------------------------------------------- layouts */

static void layout_of(const cg *g, ts_val v, layout *L) {
    memset(L, 0, sizeof *L);
    const ts__value *val = &g->ir->values[v];
    L->rank = val->rank;
    ts__value_shape(g->ir, g->plan, v, L->shape);
    L->C = val->rank ? L->shape[val->rank - 1] : 1;
    L->R = 1;
    for (int d = 0; d + 1 < val->rank; d++) L->R *= L->shape[d];
    if (val->rank == 0) { /* scalars are replicated in every thread */
        L->nn = L->TC = L->cq = L->mm = L->J = 1;
        L->TR = g->T;
        return;
    }
    L->nn = g->NN < L->C ? g->NN : L->C;
    int64_t CC = L->C / L->nn;
    L->TC = CC < g->T ? CC : g->T;
    L->TR = g->T / L->TC;
    L->cq = CC / L->TC;
    L->mm = L->R >= L->TR ? L->R / L->TR : 1;
    L->J = L->mm * L->cq * L->nn;
}

static int same_layout(const layout *a, const layout *b) {
    return a->R == b->R && a->C == b->C && a->J == b->J && a->TC == b->TC && a->nn == b->nn;
}

/* Opens a loop over the elements a thread holds of a value with layout L.
 * Declares j (register), r, c, ok (row exists) and e0..e3 (multi-index). */
static void elem_loop_begin(cg *g, const layout *L, const char *jv) {
    line(g, "%s", g->d->unroll);
    line(g, "for (int %s = 0; %s < %lld; %s++) {", jv, jv, (long long)L->J, jv);
    g->indent++;
    line(g, "const int r_ = (int)(tid / %lld) + (%s / %lld) * %lld;", (long long)L->TC, jv, (long long)(L->nn * L->cq), (long long)L->TR);
    line(g, "const int c_ = ((int)(tid %% %lld) + ((%s / %lld) %% %lld) * %lld) * %lld + %s %% %lld;", (long long)L->TC, jv, (long long)L->nn,
         (long long)L->cq, (long long)L->TC, (long long)L->nn, jv, (long long)L->nn);
    line(g, "const int ok_ = r_ < %lld;", (long long)L->R);
    /* multi-index: leading dims from r_, last dim c_ */
    int64_t div = 1;
    for (int d = L->rank - 2; d >= 0; d--) {
        line(g, "const int e%d = (r_ / %lld) %% %lld;", d, (long long)div, (long long)L->shape[d]);
        div *= L->shape[d];
    }
    if (L->rank) line(g, "const int e%d = c_;", L->rank - 1);
    line(g, "(void)ok_; (void)r_; (void)c_;");
}

static void elem_loop_end(cg *g) {
    g->indent--;
    line(g, "}");
}

/* ---------------------------------------------------------------- types and expressions */

static const char *reg_type(const cg *g, ts_dtype d) {
    switch (d) {
    case TS_F64: return "double";
    case TS_I32: return "int";
    case TS_I64: return g->d->i64;
    case TS_U8:
    case TS_BOOL: return "uchar";
    default: return "float";
    }
}

static int is_int(ts_dtype d) { return d == TS_I32 || d == TS_I64 || d == TS_U8 || d == TS_BOOL; }

static const char *mem_type(const cg *g, ts_dtype d) {
    switch (d) {
    case TS_F16:
    case TS_BF16: return "ushort";
    case TS_F32: return "float";
    case TS_F64: return "double";
    case TS_I32: return "int";
    case TS_I64: return g->d->i64;
    default: return "uchar";
    }
}

/* A literal in dtype d. */
static void literal(const cg *g, ts_dtype d, double v, char *buf, size_t n) {
    (void)g;
    if (is_int(d)) snprintf(buf, n, "(%s)%lld", d == TS_I64 ? "(long)" : "", (long long)v);
    else if (isnan(v)) snprintf(buf, n, "(0.0f/0.0f)");
    else if (isinf(v)) snprintf(buf, n, v < 0 ? "(-1.0f/0.0f)" : "(1.0f/0.0f)");
    else if (d == TS_F64) snprintf(buf, n, "%.17g%s", v, v == floor(v) && fabs(v) < 1e15 ? ".0" : "");
    else {
        char t[48];
        snprintf(t, sizeof t, "%.9g", (double)(float)v);
        snprintf(buf, n, "%s%sf", t, strpbrk(t, ".e") ? "" : ".0");
    }
    if (is_int(d) && d != TS_I64) snprintf(buf, n, "%lld", (long long)v);
    else if (d == TS_I64) snprintf(buf, n, "((long)%lld)", (long long)v);
}

/* Expression reading element `off` of tensor param p as a register value. */
static void load_expr(const cg *g, int p, const char *off, char *buf, size_t n) {
    const ts__param *pa = &g->ir->params[p];
    switch (pa->dtype) {
    case TS_F16: snprintf(buf, n, "vload_half(0, (%s const half*)(p_%s + (%s)))", g->d->global_ptr, pa->name, off); break;
    case TS_BF16: snprintf(buf, n, "ts_bf16_to_f32(p_%s[%s])", pa->name, off); break;
    case TS_BOOL: snprintf(buf, n, "(uchar)(p_%s[%s] != 0)", pa->name, off); break;
    default: snprintf(buf, n, "p_%s[%s]", pa->name, off); break;
    }
}

/* Statement storing register expression `v` at element `off` of param p. */
static void store_stmt(cg *g, int p, const char *off, const char *v) {
    const ts__param *pa = &g->ir->params[p];
    switch (pa->dtype) {
    case TS_F16: line(g, "vstore_half_rte((float)(%s), 0, (%s half*)(p_%s + (%s)));", v, g->d->global_ptr, pa->name, off); break;
    case TS_BF16: line(g, "p_%s[%s] = ts_f32_to_bf16((float)(%s));", pa->name, off, v); break;
    case TS_BOOL: line(g, "p_%s[%s] = (uchar)((%s) != 0);", pa->name, off, v); break;
    default: line(g, "p_%s[%s] = (%s)(%s);", pa->name, off, mem_type(g, pa->dtype), v); break;
    }
}

/* Offset and in-range condition of a load/store/atomic element whose value
 * dims are the TILE indices of op, with multi-index vars e0.. (prefix). */
static void index_exprs(const cg *g, const ts__op *op, const char *prefix, char *off, size_t on, char *cond, size_t cn) {
    const ts__param *pa = &g->ir->params[op->param];
    size_t ko = (size_t)snprintf(off, on, "off_%s", pa->name);
    size_t kc = (size_t)snprintf(cond, cn, "1");
    int k = 0;
    for (int d = 0; d < pa->rank; d++) {
        const ts_index *ix = &op->idx[d];
        char idx[128];
        if (ix->kind == TS_IDX_CONST) snprintf(idx, sizeof idx, "(%s)%lld", g->d->i64, (long long)ix->value);
        else if (ix->kind == TS_IDX_POINT) snprintf(idx, sizeof idx, "b_%s", g->ir->tiles[ix->tile].name);
        else snprintf(idx, sizeof idx, "(b_%s + %s%d)", g->ir->tiles[ix->tile].name, prefix, k++);
        const ts__size *sz = &g->ir->sizes[pa->sizes[d]];
        char ext[96];
        if (sz->name[0]) snprintf(ext, sizeof ext, "s_%s", sz->name);
        else snprintf(ext, sizeof ext, "%lld", (long long)sz->fixed);
        if (ko < on) ko += (size_t)snprintf(off + ko, on - ko, " + %s * st_%s_%d", idx, pa->name, d);
        if (kc < cn) kc += (size_t)snprintf(cond + kc, cn - kc, " && %s < %s", idx, ext);
    }
}

static const char *vname(ts_val v) {
    static _Thread_local char buf[8][24];
    static _Thread_local int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "v%d", (int)v);
    return buf[k];
}

/* Element of operand o for an element of a result with the same layout (register j). */
static void operand_at(const cg *g, ts_val o, const char *j, char *buf, size_t n) {
    if (g->ir->values[o].rank == 0) snprintf(buf, n, "%s[0]", vname(o));
    else snprintf(buf, n, "%s[%s]", vname(o), j);
}

/* ---------------------------------------------------------------- local memory */

static const char *local_buf(const cg *g, ts_dtype d) { return is_int(d) ? "ts_li" : "ts_lf"; }

static void need_local(cg *g, ts_dtype d, int64_t n) {
    if (is_int(d)) { if (n > g->li) g->li = n; }
    else if (n > g->lf) g->lf = n;
}

/* Writes every element of v (its whole tile) into local memory at its flat
 * index, between barriers. With mask_axis >= 0, elements whose index along
 * that axis is past the tile's extent get `identity` instead. */
static void materialize(cg *g, ts_val v, int mask_axis, const char *identity) {
    layout L;
    layout_of(g, v, &L);
    const ts__value *val = &g->ir->values[v];
    int64_t numel = L.R * L.C;
    need_local(g, val->dtype, numel);
    line(g, "%s", g->d->barrier);
    if (val->rank == 0) {
        line(g, "if (tid == 0) %s[0] = %s[0];", local_buf(g, val->dtype), vname(v));
    } else {
        elem_loop_begin(g, &L, "j");
        char cond[256] = "ok_";
        if (mask_axis >= 0 && val->dims[mask_axis] != TS_NONE) {
            const ts__tile *t = &g->ir->tiles[val->dims[mask_axis]];
            snprintf(cond, sizeof cond, "ok_");
            line(g, "const int valid_ = b_%s + e%d < x_%s;", t->name, mask_axis, t->name);
            line(g, "if (ok_) %s[r_ * %lld + c_] = valid_ ? %s[j] : %s;", local_buf(g, val->dtype), (long long)L.C, vname(v), identity);
        } else line(g, "if (%s) %s[r_ * %lld + c_] = %s[j];", cond, local_buf(g, val->dtype), (long long)L.C, vname(v));
        elem_loop_end(g);
    }
    line(g, "%s", g->d->barrier);
}

/* Flat index into a materialized operand o for the element e0.. of a result
 * of rank rr (numpy broadcasting, right-aligned; dims of 1 read index 0). */
static void broadcast_index(const cg *g, ts_val o, int rr, char *buf, size_t n) {
    const ts__value *ov = &g->ir->values[o];
    int64_t shape[TS_MAX_RANK];
    ts__value_shape(g->ir, g->plan, o, shape);
    size_t k = (size_t)snprintf(buf, n, "0");
    int64_t stride = 1;
    for (int j = ov->rank - 1; j >= 0; j--) {
        int d = j + (rr - ov->rank);
        if (ov->dims[j] != TS_NONE && k < n) k += (size_t)snprintf(buf + k, n - k, " + e%d * %lld", d, (long long)stride);
        stride *= shape[j];
    }
}

/* ---------------------------------------------------------------- math */

static void unary_expr(const cg *g, int op, ts_dtype dt, const char *x, char *buf, size_t n) {
    const ts__dialect *d = g->d;
    switch (op) {
    case TS_NEG: snprintf(buf, n, "(-(%s))", x); break;
    case TS_ABS: snprintf(buf, n, is_int(dt) ? "((%s) < 0 ? -(%s) : (%s))" : "%s(%s)", is_int(dt) ? x : d->fabs_, x, x); break;
    case TS_EXP: snprintf(buf, n, "%s(%s)", d->exp_, x); break;
    case TS_LOG: snprintf(buf, n, "%s(%s)", d->log_, x); break;
    case TS_SQRT: snprintf(buf, n, "%s(%s)", d->sqrt_, x); break;
    case TS_RSQRT: snprintf(buf, n, "%s(%s)", d->rsqrt_, x); break;
    case TS_TANH: snprintf(buf, n, "%s(%s)", d->tanh_, x); break;
    case TS_SIGMOID: snprintf(buf, n, "(1.0f / (1.0f + %s(-(%s))))", d->exp_, x); break;
    case TS_ERF: snprintf(buf, n, "%s(%s)", d->erf_, x); break;
    case TS_RELU: snprintf(buf, n, "((%s) > 0 ? (%s) : 0)", x, x); break;
    case TS_GELU: snprintf(buf, n, "(0.5f * (%s) * (1.0f + %s((%s) * 0.70710678118654752f)))", x, d->erf_, x); break;
    case TS_SILU: snprintf(buf, n, "((%s) / (1.0f + %s(-(%s))))", x, d->exp_, x); break;
    case TS_SIN: snprintf(buf, n, "%s(%s)", d->sin_, x); break;
    case TS_COS: snprintf(buf, n, "%s(%s)", d->cos_, x); break;
    case TS_NOT: snprintf(buf, n, "(uchar)((%s) == 0)", x); break;
    default: snprintf(buf, n, "0"); break;
    }
}

static void binary_expr(const cg *g, int op, ts_dtype dt, const char *x, const char *y, char *buf, size_t n) {
    int in = is_int(dt);
    switch (op) {
    case TS_ADD: snprintf(buf, n, "(%s + %s)", x, y); break;
    case TS_SUB: snprintf(buf, n, "(%s - %s)", x, y); break;
    case TS_MUL: snprintf(buf, n, "(%s * %s)", x, y); break;
    case TS_DIV:
        if (in) snprintf(buf, n, "((%s) == 0 ? 0 : (%s) / (%s))", y, x, y);
        else snprintf(buf, n, "(%s / %s)", x, y);
        break;
    case TS_MAX: snprintf(buf, n, in ? "((%s) > (%s) ? (%s) : (%s))" : "ts_max(%s, %s)", x, y, x, y); break;
    case TS_MIN: snprintf(buf, n, in ? "((%s) < (%s) ? (%s) : (%s))" : "ts_min(%s, %s)", x, y, x, y); break;
    case TS_POW: snprintf(buf, n, "%s(%s, %s)", g->d->pow_, x, y); break;
    case TS_LT: snprintf(buf, n, "(uchar)(%s < %s)", x, y); break;
    case TS_LE: snprintf(buf, n, "(uchar)(%s <= %s)", x, y); break;
    case TS_GT: snprintf(buf, n, "(uchar)(%s > %s)", x, y); break;
    case TS_GE: snprintf(buf, n, "(uchar)(%s >= %s)", x, y); break;
    case TS_EQ: snprintf(buf, n, "(uchar)(%s == %s)", x, y); break;
    case TS_NE: snprintf(buf, n, "(uchar)(%s != %s)", x, y); break;
    case TS_AND: snprintf(buf, n, "(uchar)((%s) && (%s))", x, y); break;
    case TS_OR: snprintf(buf, n, "(uchar)((%s) || (%s))", x, y); break;
    default: snprintf(buf, n, "0"); break;
    }
}

/* Conversion of a register value to dtype `to` with the rounding the
 * reference executor applies (f16/bf16 round to nearest even). */
static void cast_expr(const cg *g, ts_dtype from, ts_dtype to, const char *x, char *buf, size_t n) {
    (void)from;
    switch (to) {
    case TS_F16: snprintf(buf, n, "ts_round_f16((float)(%s))", x); break;
    case TS_BF16: snprintf(buf, n, "ts_bf16_to_f32(ts_f32_to_bf16((float)(%s)))", x); break;
    case TS_BOOL: snprintf(buf, n, "(uchar)((%s) != 0)", x); break;
    default: snprintf(buf, n, "(%s)(%s)", reg_type(g, to), x); break;
    }
}

/* ---------------------------------------------------------------- ops */

static void declare(cg *g, ts_val v) {
    layout L;
    layout_of(g, v, &L);
    g->priv += L.J;
    line(g, "%s %s[%lld];", reg_type(g, g->ir->values[v].dtype), vname(v), (long long)L.J);
}

/* Elementwise op (unary, binary, select, cast, broadcast, expand_dims):
 * operands with the result's layout are read register by register; the
 * others are materialized and read by broadcast index. */
static void emit_elementwise(cg *g, const ts__op *op) {
    ts_val res = op->result;
    const ts__value *rv = &g->ir->values[res];
    layout L;
    layout_of(g, res, &L);
    int nin = op->kind == TS__OP_SELECT ? 3 : op->kind == TS__OP_BINARY ? 2 : 1;
    int direct[3] = {1, 1, 1};
    for (int k = 0; k < nin; k++) {
        layout Lo;
        layout_of(g, op->in[k], &Lo);
        const ts__value *ov = &g->ir->values[op->in[k]];
        direct[k] = ov->rank == 0 || (same_layout(&Lo, &L) && ov->rank == rv->rank && memcmp(ov->dims, rv->dims, sizeof ov->dims) == 0);
        if (op->kind == TS__OP_EXPAND_DIMS) direct[k] = 0;
    }
    declare(g, res);
    /* Materialize non-direct operands one at a time (they share the buffer):
     * read each into a temporary register array first. */
    char ops_s[3][160];
    for (int k = 0; k < nin; k++) {
        if (direct[k]) {
            operand_at(g, op->in[k], "j", ops_s[k], sizeof ops_s[k]);
            continue;
        }
        ts_val o = op->in[k];
        materialize(g, o, -1, "0");
        line(g, "%s t%d_%d[%lld];", reg_type(g, g->ir->values[o].dtype), (int)res, k, (long long)L.J);
        elem_loop_begin(g, &L, "j");
        char idx[256];
        if (op->kind == TS__OP_EXPAND_DIMS) {
            /* same linear order as the result: flat index of e0.. in the result shape */
            snprintf(idx, sizeof idx, "r_ * %lld + c_", (long long)L.C);
        } else broadcast_index(g, o, rv->rank, idx, sizeof idx);
        line(g, "if (ok_) t%d_%d[j] = %s[%s];", (int)res, k, local_buf(g, g->ir->values[o].dtype), idx);
        elem_loop_end(g);
        snprintf(ops_s[k], sizeof ops_s[k], "t%d_%d[j]", (int)res, k);
    }
    elem_loop_begin(g, &L, "j");
    char e[1024];
    ts_dtype in_dt = g->ir->values[op->in[0]].dtype;
    switch (op->kind) {
    case TS__OP_UNARY: unary_expr(g, op->sub, in_dt, ops_s[0], e, sizeof e); break;
    case TS__OP_BINARY: binary_expr(g, op->sub, in_dt, ops_s[0], ops_s[1], e, sizeof e); break;
    case TS__OP_SELECT: snprintf(e, sizeof e, "(%s ? %s : %s)", ops_s[0], ops_s[1], ops_s[2]); break;
    case TS__OP_CAST: cast_expr(g, in_dt, op->dtype, ops_s[0], e, sizeof e); break;
    default: snprintf(e, sizeof e, "%s", ops_s[0]); break;
    }
    /* integer results wrap to their dtype, as the reference does */
    line(g, "%s[j] = (%s)(%s);", vname(res), reg_type(g, rv->dtype), e);
    elem_loop_end(g);
}

static void emit_load(cg *g, const ts__op *op) {
    ts_val res = op->result;
    declare(g, res);
    layout L;
    layout_of(g, res, &L);
    char off[1024], cond[1024], ex[1400], fill[64];
    index_exprs(g, op, "e", off, sizeof off, cond, sizeof cond);
    literal(g, g->ir->values[res].dtype, op->value, fill, sizeof fill);
    elem_loop_begin(g, &L, "j");
    load_expr(g, op->param, "o_", ex, sizeof ex);
    line(g, "const %s o_ = %s;", g->d->i64, off);
    line(g, "%s[j] = (ok_ && %s) ? (%s)%s : %s;", vname(res), cond, reg_type(g, g->ir->values[res].dtype), ex, fill);
    elem_loop_end(g);
}

static void emit_store(cg *g, const ts__op *op, int atomic) {
    const ts__param *pa = &g->ir->params[op->param];
    /* the index shape: TILE dims in order */
    ts_val v = op->in[0];
    const ts__value *vv = &g->ir->values[v];
    int r = 0;
    ts_tile dims[TS_MAX_RANK];
    for (int d = 0; d < pa->rank; d++)
        if (op->idx[d].kind == TS_IDX_TILE) dims[r++] = op->idx[d].tile;
    int direct = vv->rank == r && memcmp(vv->dims, dims, sizeof(ts_tile) * (size_t)r) == 0;
    char off[1024], cond[1024], src[256];
    index_exprs(g, op, "e", off, sizeof off, cond, sizeof cond);
    if (direct || (vv->rank == 0 && r == 0)) {
        layout L;
        layout_of(g, v, &L);
        if (vv->rank == 0) { /* one thread stores a scalar */
            line(g, "if (tid == 0) {");
            g->indent++;
        } else elem_loop_begin(g, &L, "j");
        snprintf(src, sizeof src, vv->rank == 0 ? "%s[0]" : "%s[j]", vname(v));
        line(g, "const %s o_ = %s;", g->d->i64, off);
        line(g, "if (%s%s) {", vv->rank ? "ok_ && " : "", cond);
        g->indent++;
        if (atomic) {
            if (pa->dtype == TS_I32) line(g, "atomic_add(&p_%s[o_], (int)(%s));", pa->name, src);
            else line(g, "ts_atomic_add_f32(&p_%s[o_], (float)(%s));", pa->name, src);
        } else store_stmt(g, op->param, "o_", src);
        g->indent--;
        line(g, "}");
        if (vv->rank == 0) {
            g->indent--;
            line(g, "}");
        } else elem_loop_end(g);
        return;
    }
    /* broadcast store: materialize, then every element of the index shape */
    materialize(g, v, -1, "0");
    layout L;
    memset(&L, 0, sizeof L);
    /* a layout for the index shape, built like layout_of */
    L.rank = r;
    for (int d = 0; d < r; d++) L.shape[d] = g->plan->block[dims[d]];
    L.C = r ? L.shape[r - 1] : 1;
    L.R = 1;
    for (int d = 0; d + 1 < r; d++) L.R *= L.shape[d];
    L.nn = g->NN < L.C ? g->NN : L.C;
    int64_t CC = L.C / L.nn;
    L.TC = CC < g->T ? CC : g->T;
    L.TR = g->T / L.TC;
    L.cq = CC / L.TC;
    L.mm = L.R >= L.TR ? L.R / L.TR : 1;
    L.J = L.mm * L.cq * L.nn;
    elem_loop_begin(g, &L, "j");
    char idx[256];
    broadcast_index(g, v, r, idx, sizeof idx);
    line(g, "const %s o_ = %s;", g->d->i64, off);
    line(g, "if (ok_ && %s) {", cond);
    g->indent++;
    snprintf(src, sizeof src, "%s[%s]", local_buf(g, vv->dtype), idx);
    if (atomic) {
        if (pa->dtype == TS_I32) line(g, "atomic_add(&p_%s[o_], (int)(%s));", pa->name, src);
        else line(g, "ts_atomic_add_f32(&p_%s[o_], (float)(%s));", pa->name, src);
    } else store_stmt(g, op->param, "o_", src);
    g->indent--;
    line(g, "}");
    elem_loop_end(g);
}

static void emit_gather(cg *g, const ts__op *op) {
    ts_val res = op->result;
    const ts__param *pa = &g->ir->params[op->param];
    const ts__value *iv = &g->ir->values[op->in[0]];
    declare(g, res);
    layout L;
    layout_of(g, res, &L);
    /* ids [A] are needed by row: through local memory */
    materialize(g, op->in[0], -1, "0");
    const ts__tile *at = &g->ir->tiles[iv->dims[0]], *ct = &g->ir->tiles[op->idx[0].tile];
    char ex[512], fill[64];
    literal(g, pa->dtype, op->value, fill, sizeof fill);
    elem_loop_begin(g, &L, "j");
    line(g, "const %s id_ = (%s)ts_li[e0];", g->d->i64, g->d->i64);
    line(g, "const %s col_ = b_%s + e1;", g->d->i64, ct->name);
    line(g, "const int in_ = ok_ && b_%s + e0 < x_%s && id_ >= 0 && id_ < s_%s && col_ < x_%s;", at->name, at->name,
         g->ir->sizes[pa->sizes[0]].name[0] ? g->ir->sizes[pa->sizes[0]].name : "0", ct->name);
    line(g, "const %s o_ = in_ ? off_%s + id_ * st_%s_0 + col_ * st_%s_1 : 0;", g->d->i64, pa->name, pa->name, pa->name);
    load_expr(g, op->param, "o_", ex, sizeof ex);
    line(g, "%s[j] = in_ ? (%s)%s : %s;", vname(res), reg_type(g, pa->dtype), ex, fill);
    elem_loop_end(g);
    if (!g->ir->sizes[pa->sizes[0]].name[0]) cg_fail(g, TS_ERR_UNSUPPORTED, "gather: tables with a fixed row count are not lowered yet");
}

static void emit_reduce(cg *g, const ts__op *op) {
    ts_val x = op->in[0], res = op->result;
    const ts__value *xv = &g->ir->values[x];
    ts_dtype dt = xv->dtype;
    int64_t shape[TS_MAX_RANK];
    ts__value_shape(g->ir, g->plan, x, shape);
    int64_t n = shape[op->axis], inner = 1;
    for (int d = op->axis + 1; d < xv->rank; d++) inner *= shape[d];
    const char *identity;
    int is_f = !is_int(dt);
    switch (op->sub) {
    case TS_RED_MAX:
    case TS_RED_ARGMAX: identity = is_f ? "(-1.0f/0.0f)" : (dt == TS_I64 ? "(long)0x8000000000000000UL" : "(-2147483647 - 1)"); break;
    case TS_RED_MIN: identity = is_f ? "(1.0f/0.0f)" : (dt == TS_I64 ? "(long)0x7fffffffffffffffL" : "2147483647"); break;
    default: identity = "0"; break;
    }
    materialize(g, x, op->axis, identity);
    declare(g, res);
    layout L;
    layout_of(g, res, &L);
    ts_tile rt = xv->dims[op->axis];
    elem_loop_begin(g, &L, "j");
    /* flat index of the first element of the reduced run: result multi-index
     * (with the axis kept or dropped) mapped into the input shape */
    const ts__value *rv = &g->ir->values[res];
    char base[512];
    size_t k = (size_t)snprintf(base, sizeof base, "0");
    int64_t stride = 1;
    for (int d = xv->rank - 1; d >= 0; d--) {
        if (d != op->axis) {
            int rd = op->keepdim || d < op->axis ? d : d - 1;
            if (rd < rv->rank && k < sizeof base) k += (size_t)snprintf(base + k, sizeof base - k, " + e%d * %lld", rd, (long long)stride);
        }
        stride *= shape[d];
    }
    const char *lb = local_buf(g, dt);
    line(g, "const int base_ = %s;", rv->rank ? base : "0");
    line(g, "%s acc_ = %s[base_];", reg_type(g, dt), lb);
    if (op->sub == TS_RED_ARGMAX) line(g, "int arg_ = 0;");
    line(g, "for (int k_ = 1; k_ < %lld; k_++) {", (long long)n);
    g->indent++;
    line(g, "const %s x_ = %s[base_ + k_ * %lld];", reg_type(g, dt), lb, (long long)inner);
    switch (op->sub) {
    case TS_RED_SUM:
    case TS_RED_MEAN: line(g, "acc_ += x_;"); break;
    case TS_RED_MAX: line(g, is_f ? "acc_ = ts_max(acc_, x_);" : "acc_ = x_ > acc_ ? x_ : acc_;"); break;
    case TS_RED_MIN: line(g, is_f ? "acc_ = ts_min(acc_, x_);" : "acc_ = x_ < acc_ ? x_ : acc_;"); break;
    case TS_RED_ARGMAX:
        if (rt != TS_NONE) line(g, "if (x_ > acc_ && b_%s + k_ < x_%s) { acc_ = x_; arg_ = k_; }", g->ir->tiles[rt].name, g->ir->tiles[rt].name);
        else line(g, "if (x_ > acc_) { acc_ = x_; arg_ = k_; }");
        break;
    }
    g->indent--;
    line(g, "}");
    if (op->sub == TS_RED_MEAN) {
        if (rt != TS_NONE)
            line(g, "%s[j] = acc_ / (%s)min((%s)%lld, x_%s - b_%s);", vname(res), reg_type(g, dt), g->d->i64, (long long)n, g->ir->tiles[rt].name,
                 g->ir->tiles[rt].name);
        else line(g, "%s[j] = acc_ / (%s)%lld;", vname(res), reg_type(g, dt), (long long)n);
    } else if (op->sub == TS_RED_ARGMAX) {
        if (rt != TS_NONE) line(g, "%s[j] = (int)(b_%s + arg_);", vname(res), g->ir->tiles[rt].name);
        else line(g, "%s[j] = arg_;", vname(res));
    } else line(g, "%s[j] = acc_;", vname(res));
    elem_loop_end(g);
}

static void emit_transpose(cg *g, const ts__op *op) {
    ts_val x = op->in[0], res = op->result;
    int64_t shape[TS_MAX_RANK];
    ts__value_shape(g->ir, g->plan, x, shape);
    materialize(g, x, -1, "0");
    declare(g, res);
    layout L;
    layout_of(g, res, &L);
    elem_loop_begin(g, &L, "j");
    line(g, "if (ok_) %s[j] = %s[e1 * %lld + e0];", vname(res), local_buf(g, g->ir->values[x].dtype), (long long)shape[1]);
    elem_loop_end(g);
}

/* ---------------------------------------------------------------- dot */

/* A dot operand read directly from global memory: the load (possibly
 * under a transpose) whose only use is this dot, when stage=0. */
static const ts__op *direct_load(const cg *g, ts_val v, int *transposed) {
    const ts__op *def = &g->ir->ops[g->ir->values[v].def_op];
    *transposed = 0;
    if (g->plan->stage) return NULL;
    if (def->kind == TS__OP_TRANSPOSE && g->uses[v] == 1) {
        const ts__op *inner = &g->ir->ops[g->ir->values[def->in[0]].def_op];
        if (inner->kind == TS__OP_LOAD && g->uses[def->in[0]] == 1) {
            *transposed = 1;
            return inner;
        }
        return NULL;
    }
    if (def->kind == TS__OP_LOAD && g->uses[v] == 1) return def;
    return NULL;
}

/* Expression for element (row, col) of a dot operand read directly from
 * global memory; emits the index bindings it needs as statements first. */
static void dot_operand_expr(cg *g, ts_val v, const ts__op *ld, int transposed, const char *row, const char *col, char *buf, size_t n) {
    char off[1024], cond[1024], ex[1400], pre[16];
    snprintf(pre, sizeof pre, "dq%d_", (int)v);
    index_exprs(g, ld, pre, off, sizeof off, cond, sizeof cond);
    load_expr(g, ld->param, off, ex, sizeof ex);
    /* the load's value dims are (e0, e1); a transposed operand swaps them */
    line(g, "const int %s0 = %s; const int %s1 = %s;", pre, transposed ? col : row, pre, transposed ? row : col);
    snprintf(buf, n, "((%s) ? (float)%s : 0.0f)", cond, ex);
}

static void emit_dot(cg *g, const ts__op *op) {
    ts_val a = op->in[0], b = op->in[1], acc = op->in[2], res = op->result;
    const ts__value *av = &g->ir->values[a];
    int64_t BM = g->plan->block[av->dims[0]], BK = g->plan->block[av->dims[1]];
    int64_t BN = g->plan->block[g->ir->values[b].dims[1]];
    const ts__tile *kt = &g->ir->tiles[av->dims[1]];
    layout L;
    layout_of(g, res, &L);
    int ta, tb;
    const ts__op *la = direct_load(g, a, &ta), *lb = direct_load(g, b, &tb);
    /* Staged operands live in ts_lf: A at 0, B at BM*BK. */
    int64_t aoff = 0, boff = BM * BK;
    if (!la || !lb) need_local(g, TS_F32, BM * BK + BK * BN);
    if (!la || !lb) line(g, "%s", g->d->barrier);
    for (int w = 0; w < 2; w++) {
        const ts__op *l = w ? lb : la;
        if (l) continue;
        ts_val v = w ? b : a;
        layout Lv;
        layout_of(g, v, &Lv);
        int64_t base = w ? boff : aoff;
        /* registers -> local memory, with elements past the k extent zeroed */
        int kaxis = w ? 0 : 1;
        elem_loop_begin(g, &Lv, "j");
        line(g, "if (ok_) ts_lf[%lld + r_ * %lld + c_] = (b_%s + e%d < x_%s) ? (float)%s[j] : 0.0f;", (long long)base, (long long)Lv.C, kt->name, kaxis,
             kt->name, vname(v));
        elem_loop_end(g);
    }
    if (!la || !lb) line(g, "%s", g->d->barrier);
    declare(g, res);
    /* accumulators in the result layout */
    line(g, "{");
    g->indent++;
    line(g, "%s", g->d->unroll);
    line(g, "for (int j = 0; j < %lld; j++) %s[j] = %s;", (long long)L.J, vname(res), acc != TS_NONE ? "0" : "0.0f");
    if (acc != TS_NONE) line(g, "for (int j = 0; j < %lld; j++) %s[j] = %s[j];", (long long)L.J, vname(res), vname(acc));
    line(g, "const int tr_ = (int)(tid / %lld), tc_ = (int)(tid %% %lld);", (long long)L.TC, (long long)L.TC);
    line(g, "const int kn_ = (int)min((%s)%lld, x_%s - b_%s);", g->d->i64, (long long)BK, kt->name, kt->name);
    int vec = g->d->has_vector_types && (L.nn == 4 || L.nn == 8 || L.nn == 16);
    if (vec) {
        line(g, "float%lld accv_[%lld];", (long long)L.nn, (long long)(L.mm * L.cq));
        line(g, "%s", g->d->unroll);
        line(g, "for (int x = 0; x < %lld; x++) accv_[x] = vload%lld(x, %s);", (long long)(L.mm * L.cq), (long long)L.nn, vname(res));
    }
    if (g->plan->unroll > 1) line(g, "#pragma unroll %d", g->plan->unroll);
    line(g, "for (int k_ = 0; k_ < kn_; k_++) {");
    g->indent++;
    /* B row chunk(s) */
    char ex[4096], rowe[64], cole[96];
    line(g, "float bq_[%lld];", (long long)(L.cq * L.nn));
    line(g, "%s", g->d->unroll);
    line(g, "for (int q = 0; q < %lld; q++) {", (long long)L.cq);
    g->indent++;
    line(g, "const int c0_ = (tc_ + q * %lld) * %lld;", (long long)L.TC, (long long)L.nn);
    int contiguous_b = lb && !tb && vec && g->ir->params[lb->param].dtype == TS_F32;
    if (contiguous_b) {
        /* fast path: the chunk is a contiguous, fully valid row piece */
        const ts__param *pb = &g->ir->params[lb->param];
        char off[1024], cond[1024];
        char pre[16];
        snprintf(pre, sizeof pre, "dq%d_", (int)b);
        index_exprs(g, lb, pre, off, sizeof off, cond, sizeof cond);
        const ts__tile *nt = &g->ir->tiles[g->ir->values[b].dims[1]];
        line(g, "const int %s0 = k_; const int %s1 = c0_;", pre, pre);
        line(g, "if (st_%s_%d == 1 && b_%s + c0_ + %lld <= x_%s) {", pb->name, pb->rank - 1, nt->name, (long long)L.nn, nt->name);
        line(g, "  vstore%lld(vload%lld(0, p_%s + (%s)), q, bq_);", (long long)L.nn, (long long)L.nn, pb->name, off);
        line(g, "} else {");
        g->indent++;
    }
    line(g, "%s", g->d->unroll);
    line(g, "for (int jj = 0; jj < %lld; jj++) {", (long long)L.nn);
    g->indent++;
    snprintf(cole, sizeof cole, "c0_ + jj");
    if (lb) dot_operand_expr(g, b, lb, tb, "k_", cole, ex, sizeof ex);
    else snprintf(ex, sizeof ex, "ts_lf[%lld + k_ * %lld + c0_ + jj]", (long long)boff, (long long)BN);
    line(g, "bq_[q * %lld + jj] = %s;", (long long)L.nn, ex);
    g->indent--;
    line(g, "}");
    if (contiguous_b) {
        g->indent--;
        line(g, "}");
    }
    g->indent--;
    line(g, "}");
    /* A column, row by row, and the multiply-adds */
    line(g, "%s", g->d->unroll);
    line(g, "for (int i = 0; i < %lld; i++) {", (long long)L.mm);
    g->indent++;
    snprintf(rowe, sizeof rowe, "tr_ + i * %lld", (long long)L.TR);
    if (la) dot_operand_expr(g, a, la, ta, rowe, "k_", ex, sizeof ex);
    else snprintf(ex, sizeof ex, "ts_lf[%lld + (%s) * %lld + k_]", (long long)aoff, rowe, (long long)BK);
    if (L.R < L.TR) line(g, "const float a_ = (%s) < %lld ? %s : 0.0f;", rowe, (long long)L.R, ex);
    else line(g, "const float a_ = %s;", ex);
    if (vec) {
        line(g, "%s", g->d->unroll);
        line(g, "for (int q = 0; q < %lld; q++) accv_[i * %lld + q] = mad((float%lld)(a_), vload%lld(q, bq_), accv_[i * %lld + q]);", (long long)L.cq,
             (long long)L.cq, (long long)L.nn, (long long)L.nn, (long long)L.cq);
    } else {
        line(g, "%s", g->d->unroll);
        line(g, "for (int x = 0; x < %lld; x++) %s[i * %lld + x] += a_ * bq_[x];", (long long)(L.cq * L.nn), vname(res), (long long)(L.cq * L.nn));
    }
    g->indent--;
    line(g, "}");
    g->indent--;
    line(g, "}");
    if (vec) {
        line(g, "%s", g->d->unroll);
        line(g, "for (int x = 0; x < %lld; x++) vstore%lld(accv_[x], x, %s);", (long long)(L.mm * L.cq), (long long)L.nn, vname(res));
    }
    g->indent--;
    line(g, "}");
}

/* ---------------------------------------------------------------- the kernel */

static void count_uses(cg *g) {
    const ts__kir *ir = g->ir;
    for (int i = 0; i < ir->nops; i++) {
        const ts__op *op = &ir->ops[i];
        for (int k = 0; k < 3; k++)
            if (op->in[k] != TS_NONE && (op->kind != TS__OP_LOOP_BEGIN && op->kind != TS__OP_LOOP_END)) g->uses[op->in[k]]++;
        for (int k = 0; k < op->ncarry; k++) {
            if (op->kind == TS__OP_LOOP_BEGIN) g->uses[op->init[k]]++;
            else g->uses[op->yields[k]]++;
        }
    }
    /* loads (and transposes of loads) read directly by a dot are not emitted */
    for (int i = 0; i < ir->nops; i++) {
        const ts__op *op = &ir->ops[i];
        if (op->kind != TS__OP_DOT) continue;
        for (int k = 0; k < 2; k++) {
            int tr;
            const ts__op *ld = direct_load(g, op->in[k], &tr);
            if (!ld) continue;
            g->fused[ld - ir->ops] = 1;
            if (tr) g->fused[ir->values[op->in[k]].def_op] = 1;
        }
    }
}

static void emit_params(cg *g, const char *entry) {
    const ts__kir *ir = g->ir;
    ts__sb_printf(&g->sb, "%s %s(", g->d->kernel_qual, entry);
    int first = 1;
    for (int p = 0; p < ir->nparams; p++) {
        const ts__param *pa = &ir->params[p];
        if (pa->is_tensor) {
            ts__sb_printf(&g->sb, "%s%s %s* restrict p_%s, %s off_%s", first ? "" : ", ", g->d->global_ptr, mem_type(g, pa->dtype), pa->name, g->d->i64, pa->name);
            for (int d = 0; d < pa->rank; d++) ts__sb_printf(&g->sb, ", %s st_%s_%d", g->d->i64, pa->name, d);
        } else {
            const char *t = pa->dtype == TS_F64 ? "double" : pa->dtype == TS_I64 ? g->d->i64 : is_int(pa->dtype) ? "int" : "float";
            ts__sb_printf(&g->sb, "%s%s a_%s", first ? "" : ", ", t, pa->name);
        }
        first = 0;
    }
    for (int s = 0; s < ir->nsizes; s++)
        if (ir->sizes[s].name[0]) ts__sb_printf(&g->sb, ", %s s_%s", g->d->i64, ir->sizes[s].name);
    ts__sb_puts(&g->sb, ")\n{\n");
}

int ts__cg_threads(const ts__kir *ir, const ts__plan *plan) {
    for (int i = 0; i < ir->nops; i++) {
        const ts__op *op = &ir->ops[i];
        if (op->kind != TS__OP_DOT) continue;
        const ts__value *rv = &ir->values[op->result];
        int64_t BM = plan->block[rv->dims[0]], BN = plan->block[rv->dims[1]];
        int64_t mm = plan->micro_m < BM ? plan->micro_m : BM, nn = plan->micro_n < BN ? plan->micro_n : BN;
        int64_t t = (BM / mm) * (BN / nn);
        return (int)(t < 1 ? 1 : t);
    }
    return plan->threads;
}

static int kernel_nn(const ts__kir *ir, const ts__plan *plan) {
    for (int i = 0; i < ir->nops; i++)
        if (ir->ops[i].kind == TS__OP_DOT) {
            int64_t BN = plan->block[ir->values[ir->ops[i].result].dims[1]];
            return (int)(plan->micro_n < BN ? plan->micro_n : BN);
        }
    return plan->vec;
}

ts_status ts__codegen_c(const ts_kernel *k, const ts__plan *plan, ts_dialect dialect, const ts_device_caps *caps, const char *entry, char **source) {
    *source = NULL;
    const ts__dialect *d = ts__dialect_get(dialect);
    if (!d) return ts__error(TS_ERR_UNSUPPORTED, "kernel '%s': no code generator for dialect '%s'", k->ir.name, ts__dialect_name(dialect));
    cg g = {.ir = &k->ir, .plan = plan, .d = d};
    g.T = ts__cg_threads(&k->ir, plan);
    g.NN = kernel_nn(&k->ir, plan);
    if (caps && g.T > caps->max_group_size)
        return ts__error(TS_ERR_BAD_CONFIG, "kernel '%s': the config needs %d threads per group, the device allows %d", k->ir.name, g.T, caps->max_group_size);
    g.uses = ts__calloc((size_t)(k->ir.nvalues + 1), sizeof(int));
    g.fused = ts__calloc((size_t)(k->ir.nops + 1), sizeof(int));
    if (!g.uses || !g.fused) { free(g.uses); free(g.fused); return TS_ERR_OUT_OF_MEMORY; }
    count_uses(&g);
    const ts__kir *ir = &k->ir;
    ts__sb body = {0};
    /* The body is emitted first (it determines local memory needs), then the
     * header and declarations are put in front of it. */
    ts__sb head = {0};
    g.indent = 1;
    line(&g, "const int tid = (int)%s;", d->tid);
    for (int gi = 0; gi < ir->ngrid; gi++) {
        const ts__tile *t = &ir->tiles[ir->grid[gi]];
        line(&g, "const %s b_%s = (%s)%s * %lld;", d->i64, t->name, d->i64, d->group_id[gi], (long long)plan->block[ir->grid[gi]]);
    }
    for (int t = 0; t < ir->ntiles; t++) {
        const ts__size *sz = &ir->sizes[ir->tiles[t].extent];
        if (sz->name[0]) line(&g, "const %s x_%s = s_%s;", d->i64, ir->tiles[t].name, sz->name);
        else line(&g, "const %s x_%s = %lld;", d->i64, ir->tiles[t].name, (long long)sz->fixed);
    }
    for (int p = 0; p < ir->nparams; p++)
        if (!ir->params[p].is_tensor) (void)0;
    for (int i = 0; i < ir->nops && !g.err; i++) {
        const ts__op *op = &ir->ops[i];
        if (g.fused[i]) continue;
        switch (op->kind) {
        case TS__OP_LOAD: emit_load(&g, op); break;
        case TS__OP_STORE: emit_store(&g, op, 0); break;
        case TS__OP_ATOMIC_ADD: emit_store(&g, op, 1); break;
        case TS__OP_GATHER: emit_gather(&g, op); break;
        case TS__OP_SCALAR: {
            declare(&g, op->result);
            const ts__param *pa = &ir->params[op->param];
            char e[160];
            char an[96];
            snprintf(an, sizeof an, "a_%s", pa->name);
            if (pa->dtype == TS_F16 || pa->dtype == TS_BF16) cast_expr(&g, TS_F32, pa->dtype, an, e, sizeof e);
            else snprintf(e, sizeof e, "(%s)%s", reg_type(&g, pa->dtype), an);
            line(&g, "%s[0] = %s;", vname(op->result), e);
            break;
        }
        case TS__OP_FULL: {
            declare(&g, op->result);
            layout L;
            layout_of(&g, op->result, &L);
            char lit[64], e[160];
            literal(&g, op->dtype, op->value, lit, sizeof lit);
            cast_expr(&g, op->dtype, op->dtype, lit, e, sizeof e);
            line(&g, "for (int j = 0; j < %lld; j++) %s[j] = %s;", (long long)L.J, vname(op->result), is_int(op->dtype) ? lit : e);
            break;
        }
        case TS__OP_ARANGE: {
            declare(&g, op->result);
            layout L;
            layout_of(&g, op->result, &L);
            elem_loop_begin(&g, &L, "j");
            line(&g, "%s[j] = (int)(b_%s + e0);", vname(op->result), ir->tiles[op->tile].name);
            elem_loop_end(&g);
            break;
        }
        case TS__OP_UNARY:
        case TS__OP_BINARY:
        case TS__OP_SELECT:
        case TS__OP_CAST:
        case TS__OP_EXPAND_DIMS:
        case TS__OP_BROADCAST: emit_elementwise(&g, op); break;
        case TS__OP_REDUCE: emit_reduce(&g, op); break;
        case TS__OP_TRANSPOSE: emit_transpose(&g, op); break;
        case TS__OP_DOT: emit_dot(&g, op); break;
        case TS__OP_LOOP_BEGIN: {
            const ts__tile *t = &ir->tiles[op->tile];
            for (int c = 0; c < op->ncarry; c++) {
                declare(&g, op->carried[c]);
                layout L;
                layout_of(&g, op->carried[c], &L);
                line(&g, "for (int j = 0; j < %lld; j++) %s[j] = %s[j];", (long long)L.J, vname(op->carried[c]), vname(op->init[c]));
            }
            line(&g, "for (%s b_%s = 0; b_%s < x_%s; b_%s += %lld) {", d->i64, t->name, t->name, t->name, t->name, (long long)plan->block[op->tile]);
            g.indent++;
            break;
        }
        case TS__OP_LOOP_END: {
            const ts__op *bop = &ir->ops[op->match];
            /* yields may name other carried values: go through temporaries */
            for (int c = 0; c < op->ncarry; c++) {
                layout L;
                layout_of(&g, bop->carried[c], &L);
                line(&g, "%s y%d_%d[%lld];", reg_type(&g, ir->values[bop->carried[c]].dtype), i, c, (long long)L.J);
                line(&g, "for (int j = 0; j < %lld; j++) y%d_%d[j] = %s[j];", (long long)L.J, i, c, vname(op->yields[c]));
            }
            for (int c = 0; c < op->ncarry; c++) {
                layout L;
                layout_of(&g, bop->carried[c], &L);
                line(&g, "for (int j = 0; j < %lld; j++) %s[j] = y%d_%d[j];", (long long)L.J, vname(bop->carried[c]), i, c);
            }
            g.indent--;
            line(&g, "}");
            for (int c = 0; c < op->ncarry; c++) {
                declare(&g, op->results[c]);
                layout L;
                layout_of(&g, op->results[c], &L);
                line(&g, "for (int j = 0; j < %lld; j++) %s[j] = %s[j];", (long long)L.J, vname(op->results[c]), vname(bop->carried[c]));
            }
            break;
        }
        default: cg_fail(&g, TS_ERR_UNSUPPORTED, "op %d (%s) is not lowered", i, ts__op_kind_name(op->kind)); break;
        }
    }
    body = g.sb;
    g.sb = head;
    ts__sb_puts(&g.sb, d->prelude);
    ts__sb_printf(&g.sb, "\n/* kernel '%s', %d threads per program */\n", ir->name, g.T);
    emit_params(&g, entry);
    if (g.lf) ts__sb_printf(&g.sb, "  %s float ts_lf[%lld];\n", d->local_decl, (long long)g.lf);
    if (g.li) ts__sb_printf(&g.sb, "  %s int ts_li[%lld];\n", d->local_decl, (long long)g.li);
    char *b = ts__sb_finish(&body);
    if (b) ts__sb_puts(&g.sb, b);
    free(b);
    ts__sb_puts(&g.sb, "}\n");
    free(g.uses);
    free(g.fused);
    int64_t local_bytes = g.lf * 4 + g.li * 4;
    /* Large private arrays spill to the stack (and crash some drivers): such
     * configs are refused, and the tuner prunes them. */
    if (!g.err && g.priv > TS__MAX_PRIVATE)
        cg_fail(&g, TS_ERR_BAD_CONFIG, "needs %lld private elements per thread (at most %d); use smaller blocks or more threads", (long long)g.priv,
                TS__MAX_PRIVATE);
    if (!g.err && caps && caps->shared_mem_bytes && local_bytes > caps->shared_mem_bytes)
        cg_fail(&g, TS_ERR_BAD_CONFIG, "needs %lld bytes of local memory, the device has %lld", (long long)local_bytes, (long long)caps->shared_mem_bytes);
    if (g.err) {
        ts__sb_free(&g.sb);
        return ts__error(g.err, "kernel '%s': %s", ir->name, g.errmsg);
    }
    *source = ts__sb_finish(&g.sb);
    return *source ? TS_OK : ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory emitting kernel '%s'", ir->name);
}
