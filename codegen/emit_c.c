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

#define TS__MAX_PRIVATE 16384          /* elements per thread */
#define TS__MAX_PRIVATE_GROUP (1 << 20) /* elements per work-group (drivers keep them on one stack) */
#define LAYOUT_STD 0
#define LAYOUT_ROWREP 1

typedef struct layout {
    int kind;          /* LAYOUT_STD, or LAYOUT_ROWREP: rows of a parent layout, replicated across its columns */
    int rank;
    int64_t shape[TS_MAX_RANK];
    int64_t R, C, nn, TC, TR, cq, mm, J;
} layout;

#define TS__MAX_DEFERRED 4
/* A value not stored in registers: its floatN expression at register index
 * j, fused into its only consumer. `slow` reads registers; `fast` reads the
 * deferred loads it depends on (dl) straight from global memory and is
 * valid only under their whole-tile conditions. */
typedef struct pendx {
    char *slow, *fast;
    int V;                     /* vector width */
    int ndl;
    ts_val dl[TS__MAX_DEFERRED]; /* deferred loads read by `fast` */
} pendx;

typedef struct cg {
    const ts__kir *ir;
    const ts__plan *plan;
    const ts__dialect *d;
    ts__sb sb;
    int T, NN, COLMAX;
    int indent;
    int *uses;         /* [nvalues] */
    int *fused;        /* [nops]: load/transpose read directly by a dot */
    struct pendx *px;  /* [nvalues]: floatN expression of a value fused into its only consumer */
    int *deferred;     /* [nvalues]: a load not emitted at its op, read from global memory by its consumer (def_load) */
    int64_t lf, li;    /* local memory needs (elements) for float / integer buffers */
    int64_t priv;      /* private elements declared per thread */
    struct layout *lay; /* [nvalues]: the layout chosen for each value */
    ts_status err;
    char errmsg[512];
} cg;

static void line(cg *g, const char *fmt, ...) TS__PRINTF(2, 3);
static void emit_load(cg *g, const ts__op *op);
static void whole_tile_cond(const cg *g, const ts__op *op, char *buf, size_t n);
static int chunk_vector(const cg *g, const ts__op *op, const layout *L);
static int fast_reduce(const cg *g, const ts__op *op);

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

/* Dialect leaves with their C defaults (dialect.h). */

/* x converted to type: "(T)x" in C (x verbatim, as the C targets always
 * spelled it), "T(x)" in GLSL. Rotating buffers: up to 16 live at once. */
static const char *cx(const cg *g, const char *type, const char *x) {
    static _Thread_local char buf[16][4096];
    static _Thread_local int k;
    k = (k + 1) % 16;
    snprintf(buf[k], sizeof buf[k], g->d->function_casts ? "%s(%s)" : "(%s)%s", type, x);
    return buf[k];
}

/* Type of the emitter's condition variables (ok_, own_, in_, ...). */
static const char *flag_t(const cg *g) { return g->d->flag_type ? g->d->flag_type : "int"; }
static int flags_are_int(const cg *g) { return !g->d->flag_type || strcmp(g->d->flag_type, "int") == 0; }

/* +infinity or -infinity as an f32 expression. */
static const char *inf_s(const cg *g, int neg) {
    if (!g->d->inf_lit) return neg ? "(-1.0f/0.0f)" : "(1.0f/0.0f)";
    static _Thread_local char buf[2][96];
    snprintf(buf[neg], sizeof buf[neg], neg ? "(-%s)" : "%s", g->d->inf_lit);
    return buf[neg];
}

/* A u8/bool register used as a condition. */
static const char *truth(const cg *g, const char *x) {
    static _Thread_local char buf[4][512];
    static _Thread_local int k;
    if (flags_are_int(g)) return x;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "(%s != 0)", x);
    return buf[k];
}

/* ---------------------------------------------------------------- layouts */

/* The standard layout of a shape: [.., C] viewed as R x C, column chunks of
 * nn over TC threads, rows over TR = T / TC threads. */
static void std_layout(const cg *g, int rank, const int64_t *shape, layout *L) {
    memset(L, 0, sizeof *L);
    L->kind = LAYOUT_STD;
    L->rank = rank;
    for (int d = 0; d < rank; d++) L->shape[d] = shape[d];
    L->C = rank ? shape[rank - 1] : 1;
    L->R = 1;
    for (int d = 0; d + 1 < rank; d++) L->R *= shape[d];
    if (rank == 0) { /* scalars are replicated in every thread */
        L->nn = L->TC = L->cq = L->mm = L->J = 1;
        L->TR = g->T;
        return;
    }
    L->nn = g->NN < L->C ? g->NN : L->C;
    int64_t CC = L->C / L->nn;
    L->TC = CC < g->T ? CC : g->T;
    if (L->TC > g->COLMAX) L->TC = g->COLMAX;
    L->TR = g->T / L->TC;
    L->cq = CC / L->TC;
    L->mm = L->R >= L->TR ? L->R / L->TR : 1;
    L->J = L->mm * L->cq * L->nn;
}

static void value_std_layout(const cg *g, ts_val v, layout *L) {
    int64_t shape[TS_MAX_RANK];
    ts__value_shape(g->ir, g->plan, v, shape);
    std_layout(g, g->ir->values[v].rank, shape, L);
}

/* Rows of `parent` (an STD layout), one value per row, replicated over the
 * parent's column threads: the layout of a keepdim reduction over the last
 * axis, so that broadcasting it back over the row needs no exchange. */
static void rowrep_layout(const layout *parent, int rank, const int64_t *shape_in, layout *L) {
    int64_t shape[TS_MAX_RANK]; /* shape_in may point into *L */
    for (int d = 0; d < rank; d++) shape[d] = shape_in[d];
    memset(L, 0, sizeof *L);
    L->kind = LAYOUT_ROWREP;
    L->rank = rank;
    for (int d = 0; d < rank; d++) L->shape[d] = shape[d];
    L->R = parent->R;
    L->C = 1;
    L->TC = parent->TC;
    L->TR = parent->TR;
    L->mm = parent->mm;
    L->nn = L->cq = 1;
    L->J = parent->mm;
}

static void layout_of(const cg *g, ts_val v, layout *L) { *L = g->lay[v]; }

static int same_layout(const layout *a, const layout *b) {
    return a->kind == b->kind && a->R == b->R && a->C == b->C && a->J == b->J && a->TC == b->TC && a->TR == b->TR && a->nn == b->nn &&
           a->cq == b->cq && a->mm == b->mm;
}

/* Row and column, in the value viewed as R x C, of register jv (an int
 * expression) of this thread in STD layout L. */
static void std_row_expr(const cg *g, const layout *L, const char *jv, char *buf, size_t n) {
    char tq[64];
    snprintf(tq, sizeof tq, "(tid / %lld)", (long long)L->TC);
    snprintf(buf, n, "%s + (%s / %lld) * %lld", cx(g, "int", tq), jv, (long long)(L->nn * L->cq), (long long)L->TR);
}

static void std_col_expr(const cg *g, const layout *L, const char *jv, char *buf, size_t n) {
    char tm[64];
    snprintf(tm, sizeof tm, "(tid %% %lld)", (long long)L->TC);
    snprintf(buf, n, "(%s + ((%s / %lld) %% %lld) * %lld) * %lld + %s %% %lld", cx(g, "int", tm), jv, (long long)L->nn, (long long)L->cq,
             (long long)L->TC, (long long)L->nn, jv, (long long)L->nn);
}

/* Opens a loop over the elements a thread holds of a value with layout L.
 * Declares j (register), f_ (flat index in the value), ok_ (the element
 * exists in this thread), own_ (this thread is the one that writes it:
 * rank-1 values are computed redundantly by every row of threads, ROWREP
 * values by every column thread) and e0..e3 (multi-index). */
static void elem_decls(cg *g, const layout *L, const char *jv) {
    if (L->rank == 0) {
        if (flags_are_int(g)) line(g, "const int f_ = 0, ok_ = 1, own_ = tid == 0;");
        else line(g, "const int f_ = 0; const %s ok_ = true, own_ = tid == 0;", flag_t(g));
    } else if (L->kind == LAYOUT_ROWREP) {
        char tq[64];
        snprintf(tq, sizeof tq, "(tid / %lld)", (long long)L->TC);
        line(g, "const int r_ = %s + %s * %lld;", cx(g, "int", tq), jv, (long long)L->TR);
        if (flags_are_int(g)) line(g, "const int f_ = r_, ok_ = r_ < %lld, own_ = ok_ && (tid %% %lld) == 0;", (long long)L->R, (long long)L->TC);
        else line(g, "const int f_ = r_; const %s ok_ = r_ < %lld, own_ = ok_ && (tid %% %lld) == 0;", flag_t(g), (long long)L->R, (long long)L->TC);
    } else {
        char rc[512];
        if (L->rank == 1) line(g, "const int r_ = 0;");
        else {
            std_row_expr(g, L, jv, rc, sizeof rc);
            line(g, "const int r_ = %s;", rc);
        }
        std_col_expr(g, L, jv, rc, sizeof rc);
        line(g, "const int c_ = %s;", rc);
        if (flags_are_int(g)) line(g, "const int f_ = r_ * %lld + c_, ok_ = r_ < %lld;", (long long)L->C, (long long)L->R);
        else line(g, "const int f_ = r_ * %lld + c_; const %s ok_ = r_ < %lld;", (long long)L->C, flag_t(g), (long long)L->R);
        if (L->rank == 1) line(g, "const %s own_ = tid < %lld;", flag_t(g), (long long)L->TC);
        else line(g, "const %s own_ = ok_;", flag_t(g));
    }
    int64_t div = 1;
    for (int d = L->rank - 1; d >= 0; d--) {
        line(g, "const int e%d = (f_ / %lld) %% %lld;", d, (long long)div, (long long)L->shape[d]);
        div *= L->shape[d];
    }
    if (!g->d->no_void_casts) line(g, "(void)f_; (void)ok_; (void)own_;");
}

/* "#pragma unroll" only for short loops: fully unrolled loops over whole
 * tiles (1024 elements a thread) blow up code size and, on PoCL, ran 4x slower
 * than the plain loop (softmax 4096x1024: 40 ms -> 9 ms). */
#define TS_UNROLL_MAX 64
static void unroll_short(cg *g, int64_t trips) {
    if (trips <= TS_UNROLL_MAX) line(g, "%s", g->d->unroll);
}

static void elem_loop_begin(cg *g, const layout *L, const char *jv) {
    unroll_short(g, L->J);
    line(g, "for (int %s = 0; %s < %lld; %s++) {", jv, jv, (long long)L->J, jv);
    g->indent++;
    elem_decls(g, L, jv);
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
    case TS_BOOL: return g->d->reg_u8 ? g->d->reg_u8 : "uchar";
    default: return "float";
    }
}

static int is_int(ts_dtype d) { return d == TS_I32 || d == TS_I64 || d == TS_U8 || d == TS_BOOL; }

static const char *mem_type(const cg *g, ts_dtype d) {
    switch (d) {
    case TS_F16:
    case TS_BF16: return g->d->mem_u16 ? g->d->mem_u16 : "ushort";
    case TS_F32: return "float";
    case TS_F64: return "double";
    case TS_I32: return "int";
    case TS_I64: return g->d->i64;
    default: return g->d->mem_u8 ? g->d->mem_u8 : "uchar";
    }
}

/* A literal in dtype d. */
static void literal(const cg *g, ts_dtype d, double v, char *buf, size_t n) {
    if (is_int(d)) snprintf(buf, n, "(%s)%lld", d == TS_I64 ? "(long)" : "", (long long)v);
    else if (isnan(v)) snprintf(buf, n, "%s", g->d->nan_lit ? g->d->nan_lit : "(0.0f/0.0f)");
    else if (isinf(v)) snprintf(buf, n, "%s", inf_s(g, v < 0));
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
    case TS_F16:
        if (g->d->native_half_loads) snprintf(buf, n, "vload_half(0, (%s const half*)(p_%s + (%s)))", g->d->global_ptr, pa->name, off);
        else snprintf(buf, n, "ts_f16_to_f32(p_%s[%s])", pa->name, off);
        break;
    case TS_BF16: snprintf(buf, n, "ts_bf16_to_f32(p_%s[%s])", pa->name, off); break;
    case TS_BOOL: {
        char t[1200];
        snprintf(t, sizeof t, "(p_%s[%s] != 0)", pa->name, off);
        snprintf(buf, n, "%s", cx(g, reg_type(g, TS_BOOL), t));
        break;
    }
    default: snprintf(buf, n, "p_%s[%s]", pa->name, off); break;
    }
}

/* Statement storing register expression `v` at element `off` of param p. */
static void store_stmt(cg *g, int p, const char *off, const char *v) {
    const ts__param *pa = &g->ir->params[p];
    char vp[1024], nz[1024];
    snprintf(vp, sizeof vp, "(%s)", v);
    snprintf(nz, sizeof nz, "((%s) != 0)", v);
    switch (pa->dtype) {
    case TS_F16:
        if (g->d->native_half_loads) line(g, "vstore_half_rte((float)(%s), 0, (%s half*)(p_%s + (%s)));", v, g->d->global_ptr, pa->name, off);
        else line(g, "p_%s[%s] = ts_f32_to_f16(%s);", pa->name, off, cx(g, "float", vp));
        break;
    case TS_BF16: line(g, "p_%s[%s] = ts_f32_to_bf16(%s);", pa->name, off, cx(g, "float", vp)); break;
    case TS_BOOL: line(g, "p_%s[%s] = %s;", pa->name, off, cx(g, mem_type(g, TS_BOOL), nz)); break;
    default: line(g, "p_%s[%s] = %s;", pa->name, off, cx(g, mem_type(g, pa->dtype), vp)); break;
    }
}

/* The extent of dim d of param pa: "s_<size>" or the fixed number. */
static void size_ext(const cg *g, const ts__param *pa, int d, char *buf, size_t n) {
    const ts__size *sz = &g->ir->sizes[pa->sizes[d]];
    if (sz->name[0]) snprintf(buf, n, "s_%s", sz->name);
    else snprintf(buf, n, "%lld", (long long)sz->fixed);
}

/* Offset and in-range condition of a load/store/atomic element whose value
 * dims are the TILE indices of op, with multi-index vars e0.. (prefix). */
static void index_exprs(const cg *g, const ts__op *op, const char *prefix, char *off, size_t on, char *cond, size_t cn) {
    const ts__param *pa = &g->ir->params[op->param];
    size_t ko = (size_t)snprintf(off, on, "off_%s", pa->name);
    size_t kc = 0;
    cond[0] = 0;
    int k = 0;
    for (int d = 0; d < pa->rank; d++) {
        const ts_index *ix = &op->idx[d];
        char idx[128];
        char cv[32];
        snprintf(cv, sizeof cv, "%lld", (long long)ix->value);
        if (ix->kind == TS_IDX_CONST) snprintf(idx, sizeof idx, "%s", cx(g, g->d->i64, cv));
        else if (ix->kind == TS_IDX_POINT) snprintf(idx, sizeof idx, "b_%s", g->ir->tiles[ix->tile].name);
        else snprintf(idx, sizeof idx, "(b_%s + %s%d)", g->ir->tiles[ix->tile].name, prefix, k++);
        char ext[96];
        size_ext(g, pa, d, ext, sizeof ext);
        if (ko < on) ko += (size_t)snprintf(off + ko, on - ko, " + %s * st_%s_%d", idx, pa->name, d);
        if (kc < cn) kc += (size_t)snprintf(cond + kc, cn - kc, "%s%s < %s", kc ? " && " : "", idx, ext);
    }
    if (!kc) snprintf(cond, cn, "1");
}

static const char *vname(ts_val v) {
    static _Thread_local char buf[8][24];
    static _Thread_local int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "v%d", (int)v);
    return buf[k];
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
    int64_t numel = 1;
    for (int d = 0; d < L.rank; d++) numel *= L.shape[d];
    need_local(g, val->dtype, numel);
    line(g, "%s", g->d->barrier);
    elem_loop_begin(g, &L, "j");
    if (mask_axis >= 0 && val->dims[mask_axis] != TS_NONE) {
        const ts__tile *t = &g->ir->tiles[val->dims[mask_axis]];
        line(g, "if (own_) %s[f_] = (b_%s + e%d < x_%s) ? %s[j] : %s;", local_buf(g, val->dtype), t->name, mask_axis, t->name, vname(v), identity);
    } else line(g, "if (own_) %s[f_] = %s[j];", local_buf(g, val->dtype), vname(v));
    elem_loop_end(g);
    line(g, "%s", g->d->barrier);
}

/* Converts value `src` into the layout `to` in register array `dst` (declared
 * here when `declare_it`), through local memory. */
static void relayout(cg *g, ts_val src, const char *dst, const layout *to, int declare_it) {
    ts_dtype dt = g->ir->values[src].dtype;
    materialize(g, src, -1, "0");
    if (declare_it) {
        line(g, "%s %s[%lld];", reg_type(g, dt), dst, (long long)to->J);
        g->priv += to->J;
    }
    elem_loop_begin(g, to, "j");
    /* unconditional with a clamped index: PoCL 3.1's work-group vectorizer
     * loses conditionally assigned private arrays across barriers */
    line(g, "%s[j] = %s[ok_ ? f_ : 0];", dst, local_buf(g, dt));
    elem_loop_end(g);
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
    case TS_NOT: {
        char t[1024];
        snprintf(t, sizeof t, "((%s) == 0)", x);
        snprintf(buf, n, "%s", cx(g, reg_type(g, TS_BOOL), t));
        break;
    }
    default: snprintf(buf, n, "0"); break;
    }
}

static void binary_expr(const cg *g, int op, ts_dtype dt, const char *x, const char *y, char *buf, size_t n) {
    int in = is_int(dt);
    const char *cmp = NULL; /* comparisons and logic give u8 (bool) */
    switch (op) {
    case TS_LT: cmp = "(%s < %s)"; break;
    case TS_LE: cmp = "(%s <= %s)"; break;
    case TS_GT: cmp = "(%s > %s)"; break;
    case TS_GE: cmp = "(%s >= %s)"; break;
    case TS_EQ: cmp = "(%s == %s)"; break;
    case TS_NE: cmp = "(%s != %s)"; break;
    case TS_AND: cmp = flags_are_int(g) ? "((%s) && (%s))" : "((%s) != 0 && (%s) != 0)"; break;
    case TS_OR: cmp = flags_are_int(g) ? "((%s) || (%s))" : "((%s) != 0 || (%s) != 0)"; break;
    default: break;
    }
    if (cmp) {
        char t[2048];
        snprintf(t, sizeof t, cmp, x, y);
        snprintf(buf, n, "%s", cx(g, reg_type(g, TS_BOOL), t));
        return;
    }
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
    char xp[1100], nz[1100];
    snprintf(xp, sizeof xp, "(%s)", x);
    snprintf(nz, sizeof nz, "((%s) != 0)", x);
    switch (to) {
    case TS_F16: snprintf(buf, n, "ts_round_f16(%s)", cx(g, "float", xp)); break;
    case TS_BF16: snprintf(buf, n, "ts_bf16_to_f32(ts_f32_to_bf16(%s))", cx(g, "float", xp)); break;
    case TS_BOOL: snprintf(buf, n, "%s", cx(g, reg_type(g, TS_BOOL), nz)); break;
    default: snprintf(buf, n, "%s", cx(g, reg_type(g, to), xp)); break;
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
static int dims_equal(const ts__value *a, const ts__value *b) {
    return a->rank == b->rank && memcmp(a->dims, b->dims, sizeof(ts_tile) * (size_t)a->rank) == 0;
}

/* How an elementwise op reads operand o for its result: register by register
 * (same layout), one row value per row of the result (ROWREP operand), one
 * column value per column (rank-1 operand of the result's columns), or -1:
 * through local memory. Writes the register index expression. */
static int operand_access(const cg *g, ts_val o, ts_val res, char *idx, size_t n) {
    const ts__value *ov = &g->ir->values[o], *rv = &g->ir->values[res];
    const layout *Lo = &g->lay[o], *L = &g->lay[res];
    if (ov->rank == 0) { snprintf(idx, n, "0"); return 1; }
    if (dims_equal(ov, rv) && same_layout(Lo, L)) { snprintf(idx, n, "j"); return 1; }
    if (L->kind != LAYOUT_STD || rv->rank < 1) return -1;
    if (Lo->kind == LAYOUT_ROWREP && ov->rank == rv->rank && Lo->TC == L->TC && Lo->TR == L->TR && Lo->mm == L->mm && Lo->R == L->R &&
        memcmp(ov->dims, rv->dims, sizeof(ts_tile) * (size_t)(rv->rank - 1)) == 0) {
        snprintf(idx, n, "(j / %lld)", (long long)(L->cq * L->nn));
        return 1;
    }
    if (Lo->kind == LAYOUT_STD && ov->rank == 1 && ov->dims[0] == rv->dims[rv->rank - 1] && Lo->C == L->C && Lo->TC == L->TC && Lo->nn == L->nn &&
        Lo->cq == L->cq) {
        snprintf(idx, n, "(j %% %lld)", (long long)(L->cq * L->nn));
        return 1;
    }
    return -1;
}

/* The f32 elementwise ops whose C expression is also valid on OpenCL
 * vector types (floatN), with the same rounding as the scalar form. */
static int vector_safe(const ts__op *op) {
    if (op->kind == TS__OP_UNARY) {
        switch (op->sub) {
        case TS_NEG: case TS_ABS: case TS_EXP: case TS_LOG: case TS_SQRT: case TS_RSQRT: case TS_TANH:
        case TS_SIGMOID: case TS_ERF: case TS_GELU: case TS_SILU: case TS_SIN: case TS_COS: return 1;
        default: return 0;
        }
    }
    if (op->kind == TS__OP_BINARY) return op->sub == TS_ADD || op->sub == TS_SUB || op->sub == TS_MUL || op->sub == TS_DIV;
    return 0;
}

static int op_nin(const ts__op *op) { return op->kind == TS__OP_SELECT ? 3 : op->kind == TS__OP_BINARY ? 2 : 1; }

/* The vector width for op in result layout L, or 0 when the vector form
 * does not apply. */
static int vector_width(const cg *g, const ts__op *op, const layout *L) {
    if (!g->d->has_vector_types || !vector_safe(op) || g->ir->values[op->result].dtype != TS_F32) return 0;
    int64_t row = L->cq * L->nn;
    int V = 0;
    for (int w = 16; w >= 4 && !V; w /= 2)
        if (L->J % w == 0 && row % w == 0) V = w;
    if (!V) return 0;
    int any_vec = 0;
    for (int k = 0; k < op_nin(op); k++) {
        ts_val o = op->in[k];
        if (g->ir->values[o].dtype != TS_F32) return 0;
        char idx[96];
        if (operand_access(g, o, op->result, idx, sizeof idx) <= 0) return 0;
        if (strcmp(idx, "j") == 0 || strncmp(idx, "(j %", 4) == 0) any_vec = 1;
    }
    return any_vec ? V : 0;
}

/* The vector width of the floatN fold of a fast reduction (0: scalar). */
static int reduce_vw(const cg *g, const ts__op *op) {
    const ts__value *xv = &g->ir->values[op->in[0]];
    const layout *L = &g->lay[op->in[0]];
    if (!g->d->has_vector_types || xv->dtype != TS_F32 || op->sub == TS_RED_ARGMAX) return 0;
    int64_t cqn = L->cq * L->nn;
    for (int w = 16; w >= 4; w /= 2)
        if (cqn % w == 0 && cqn >= 2 * w) return w;
    return 0;
}

/* 1 when the dims of value v are the TILE indices of load/store op, in
 * order: element e0.. of v is element (b_t + e0, ..) of the tensor. */
static int straight_access(const cg *g, const ts__op *op, ts_val v) {
    const ts__param *pa = &g->ir->params[op->param];
    const ts__value *vv = &g->ir->values[v];
    int r = 0;
    for (int d = 0; d < pa->rank; d++)
        if (op->idx[d].kind == TS_IDX_TILE && (r >= vv->rank || vv->dims[r++] != op->idx[d].tile)) return 0;
    return r == vv->rank;
}

/* A store that can take value v's floatN expression of width V in place of
 * its registers: f32, straight, vector chunks. */
static int store_fusable(const cg *g, const ts__op *st, ts_val v, int V) {
    const ts__param *pa = &g->ir->params[st->param];
    if (st->kind != TS__OP_STORE || st->in[0] != v || pa->dtype != TS_F32 || g->ir->values[v].dtype != TS_F32 || !straight_access(g, st, v)) return 0;
    int nv = chunk_vector(g, st, &g->lay[v]);
    return nv && nv % V == 0;
}

/* Deferred loads: an f32 load whose every use is an elementwise op in
 * vector form reading it register by register or by column, or a fast
 * reduction folding it in floatN, is not copied into registers at its op.
 * Each consumer reads it straight from global memory (vloadN) when the
 * load's whole tile is in range, and emits the load itself only on the
 * other path. Layer norm's w and b: 2 x 4 KiB of private copies a row less;
 * softmax's x is read twice from cache instead of copied once (0.85 ->
 * 0.74 ms on PoCL). Nothing may write memory between the load and its last
 * consumer. */
static void find_deferred_loads(cg *g) {
    const ts__kir *ir = g->ir;
    if (!g->d->has_vector_types) return;
    for (int i = 0; i < ir->nops; i++) {
        const ts__op *op = &ir->ops[i];
        if (op->kind != TS__OP_LOAD || g->fused[i]) continue;
        ts_val v = op->result;
        const ts__value *vv = &ir->values[v];
        const ts__param *pa = &ir->params[op->param];
        const layout *L = &g->lay[v];
        if (g->uses[v] < 1 || pa->dtype != TS_F32 || vv->dtype != TS_F32 || L->kind != LAYOUT_STD) continue;
        if (vv->rank >= 2 && L->R < L->TR) continue; /* padding rows would read past the tile */
        int nv = chunk_vector(g, op, L);
        if (!nv || !straight_access(g, op, v)) continue;
        int seen = 0, ok = 1, stores = 0;
        for (int c = i + 1; c < ir->nops && ok && seen < g->uses[v]; c++) {
            const ts__op *co = &ir->ops[c];
            int reads = 0;
            for (int k = 0; k < 3; k++) reads += co->in[k] == v;
            for (int k = 0; k < co->ncarry; k++) reads += (co->kind == TS__OP_LOOP_BEGIN ? co->init[k] : co->yields[k]) == v;
            if (!reads) {
                stores |= co->kind == TS__OP_STORE || co->kind == TS__OP_ATOMIC_ADD || co->kind == TS__OP_LOOP_BEGIN || co->kind == TS__OP_LOOP_END;
                continue;
            }
            seen += reads;
            ok = !stores && reads == 1;
            if (ok && (co->kind == TS__OP_UNARY || co->kind == TS__OP_BINARY)) {
                int V = vector_width(g, co, &g->lay[co->result]);
                char idx[96];
                ok = V && nv % V == 0 && operand_access(g, v, co->result, idx, sizeof idx) > 0 &&
                     (strcmp(idx, "j") == 0 || strncmp(idx, "(j %", 4) == 0);
            } else if (ok && co->kind == TS__OP_REDUCE) {
                int w = fast_reduce(g, co) ? reduce_vw(g, co) : 0;
                ok = w && nv % w == 0;
            } else ok = 0;
        }
        if (ok && seen == g->uses[v]) g->deferred[v] = 1;
    }
}

/* The load op that defines (deferred) load value v. */
static const ts__op *load_op_of(const cg *g, ts_val v) { return &g->ir->ops[g->ir->values[v].def_op]; }

/* Deferred load v becomes an ordinary one: emitted here, read from registers after. */
static void undefer(cg *g, ts_val v) {
    g->deferred[v] = 0;
    emit_load(g, load_op_of(g, v));
}

/* Emits the deferred loads among op's operands at this point. */
static void flush_deferred(cg *g, const ts__op *op) {
    for (int k = 0; k < 3; k++)
        if (op->in[k] != TS_NONE && g->deferred[op->in[k]]) undefer(g, op->in[k]);
}

/* floatV read of deferred load o at its register index idx, straight from
 * global memory (valid under whole_tile_cond of the load). */
static void deferred_expr(const cg *g, ts_val o, const char *idx, int V, char *buf, size_t n) {
    const ts__op *op = load_op_of(g, o);
    const ts__param *pa = &g->ir->params[op->param];
    const layout *L = &g->lay[o];
    char e[TS_MAX_RANK][320], r[256], rc[256];
    std_col_expr(g, L, idx, rc, sizeof rc);
    snprintf(e[L->rank - 1], sizeof e[0], "(%s)", rc);
    std_row_expr(g, L, idx, rc, sizeof rc);
    snprintf(r, sizeof r, "(%s)", rc);
    int64_t div = 1;
    for (int d = L->rank - 2; d >= 0; d--) {
        snprintf(e[d], sizeof e[0], "((%s / %lld) %% %lld)", r, (long long)div, (long long)L->shape[d]);
        div *= L->shape[d];
    }
    size_t k = (size_t)snprintf(buf, n, "vload%d(0, p_%s + off_%s", V, pa->name, pa->name);
    int t = 0;
    for (int d = 0; d < pa->rank && k < n; d++) {
        const ts_index *ix = &op->idx[d];
        const char *tn = g->ir->tiles[ix->tile].name;
        if (ix->kind == TS_IDX_CONST) k += (size_t)snprintf(buf + k, n - k, " + (long)%lld * st_%s_%d", (long long)ix->value, pa->name, d);
        else if (ix->kind == TS_IDX_POINT) k += (size_t)snprintf(buf + k, n - k, " + b_%s * st_%s_%d", tn, pa->name, d);
        else if (d == pa->rank - 1) k += (size_t)snprintf(buf + k, n - k, " + (b_%s + %s)", tn, e[t++]); /* unit stride */
        else k += (size_t)snprintf(buf + k, n - k, " + (b_%s + %s) * st_%s_%d", tn, e[t++], pa->name, d);
    }
    if (k < n) snprintf(buf + k, n - k, ")");
}

/* `base` (a condition, or NULL) and the whole-tile conditions of the
 * deferred loads dl: where the fast forms reading them are valid. "1" when
 * both are empty. */
static void deferred_guard(const cg *g, const char *base, const ts_val *dl, int ndl, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "%s", base ? base : ndl ? "" : "1");
    for (int q = 0; q < ndl && k < n; q++) {
        char c[1024];
        whole_tile_cond(g, load_op_of(g, dl[q]), c, sizeof c);
        k += (size_t)snprintf(buf + k, n - k, "%s(%s)", base || q ? " && " : "", c);
    }
}

/* Emits the deferred loads dl (the path where their fast form is not valid). */
static void emit_deferred(cg *g, const ts_val *dl, int ndl) {
    for (int q = 0; q < ndl; q++) emit_load(g, load_op_of(g, dl[q]));
}

#define TS__PX_MAX 2000 /* longest fused expression (characters) */

/* An f32 unary/binary op over register operands as floatN vector code: the
 * scalar loop calls exp/erf/... one element at a time (PoCL does not
 * vectorize those calls), the vector form uses the vector math builtins.
 * Operands: same layout (vloadN of the registers), one value per row
 * (scalar, broadcast by OpenCL's arithmetic), one value per column (vloadN
 * at the column), rank 0 (scalar), deferred loads (vloadN from global
 * memory on the whole-tile path). A result whose only use is the next op
 * is not stored when that op can take its expression: another vector op
 * over the same layout, a store (layer norm's xc * rstd * w + b goes
 * straight to y) or a fast reduction (layer norm's xc * xc). Returns 0
 * when not applicable. */
/* Operand o of a vector op with result res, as a floatV expression at
 * register index j: `fast` reads deferred loads from global memory. */
static void vector_operand(const cg *g, ts_val o, ts_val res, int V, int fast, char *buf, size_t n) {
    const pendx *p = &g->px[o];
    if (p->slow) {
        snprintf(buf, n, "(%s)", fast && p->fast ? p->fast : p->slow);
        return;
    }
    char idx[96];
    operand_access(g, o, res, idx, sizeof idx);
    if (fast && g->deferred[o]) deferred_expr(g, o, idx, V, buf, n);
    else if (strcmp(idx, "j") == 0) snprintf(buf, n, "vload%d(0, %s + j)", V, vname(o));
    else if (strncmp(idx, "(j %", 4) == 0) snprintf(buf, n, "vload%d(0, %s + %s)", V, vname(o), idx);
    else snprintf(buf, n, "%s[%s]", vname(o), idx); /* row or scalar: constant over the vector */
}

static int emit_elementwise_vector(cg *g, const ts__op *op, const layout *L, int nin, int V) {
    ts_val dl[TS__MAX_DEFERRED];
    int ndl = 0;
    for (int k = 0; k < nin; k++) { /* the pending operand's loads first: they cannot be emitted any more */
        const pendx *p = &g->px[op->in[k]];
        if (p->slow) for (int q = 0; q < p->ndl; q++) dl[ndl++] = p->dl[q];
    }
    for (int k = 0; k < nin; k++) {
        ts_val o = op->in[k];
        if (!g->deferred[o]) continue;
        int have = 0;
        for (int q = 0; q < ndl; q++) have |= dl[q] == o;
        if (have) continue;
        if (ndl < TS__MAX_DEFERRED) dl[ndl++] = o;
        else undefer(g, o);
    }
    /* es reads registers; ef, only when deferred loads are involved, reads them from global memory */
    char es[2 * TS__PX_MAX + 400], ef[2 * TS__PX_MAX + 400];
    for (int fast = 0; fast <= (ndl > 0); fast++) {
        char opnd[3][TS__PX_MAX + 64];
        for (int k = 0; k < nin; k++) vector_operand(g, op->in[k], op->result, V, fast, opnd[k], sizeof opnd[k]);
        char *e = fast ? ef : es;
        if (op->kind == TS__OP_UNARY) unary_expr(g, op->sub, TS_F32, opnd[0], e, sizeof es);
        else binary_expr(g, op->sub, TS_F32, opnd[0], opnd[1], e, sizeof es);
    }
    int i = (int)(op - g->ir->ops);
    ts_val res = op->result;
    if (g->uses[res] == 1 && i + 1 < g->ir->nops && strlen(ndl ? ef : es) < TS__PX_MAX) {
        const ts__op *nx = &g->ir->ops[i + 1];
        int ok = 0;
        if (nx->kind == TS__OP_UNARY || nx->kind == TS__OP_BINARY) {
            int reads = 0;
            for (int k = 0; k < op_nin(nx); k++) reads |= nx->in[k] == res;
            char idx[96];
            ok = reads && operand_access(g, res, nx->result, idx, sizeof idx) > 0 && strcmp(idx, "j") == 0 &&
                 same_layout(&g->lay[nx->result], L) && vector_width(g, nx, &g->lay[nx->result]) == V;
        } else if (nx->kind == TS__OP_STORE) ok = store_fusable(g, nx, res, V);
        else if (nx->kind == TS__OP_REDUCE) ok = !ndl && nx->in[0] == res && fast_reduce(g, nx) && reduce_vw(g, nx) == V;
        if (ok) {
            pendx *p = &g->px[res];
            p->slow = ts__strdup(es);
            p->fast = ndl ? ts__strdup(ef) : NULL;
            p->V = V;
            p->ndl = ndl;
            memcpy(p->dl, dl, sizeof(ts_val) * (size_t)ndl);
            if (p->slow && (p->fast || !ndl)) return 1;
            free(p->slow);
            free(p->fast);
            p->slow = p->fast = NULL;
        }
    }
    declare(g, res);
    if (ndl) {
        char gd[4096];
        deferred_guard(g, NULL, dl, ndl, gd, sizeof gd);
        line(g, "if (%s) {", gd);
        line(g, "  for (int j = 0; j < %lld; j += %d) vstore%d(%s, 0, %s + j);", (long long)L->J, V, V, ef, vname(res));
        line(g, "} else {");
        g->indent++;
        emit_deferred(g, dl, ndl);
    }
    line(g, "for (int j = 0; j < %lld; j += %d) vstore%d(%s, 0, %s + j);", (long long)L->J, V, V, es, vname(res));
    if (ndl) {
        g->indent--;
        line(g, "}");
    }
    return 1;
}

/* Elementwise op (unary, binary, select, cast, broadcast, expand_dims):
 * operands are read in registers where the layouts allow (operand_access);
 * the others are materialized and read by broadcast index. */
static void emit_elementwise(cg *g, const ts__op *op) {
    ts_val res = op->result;
    const ts__value *rv = &g->ir->values[res];
    layout L;
    layout_of(g, res, &L);
    int nin = op->kind == TS__OP_SELECT ? 3 : op->kind == TS__OP_BINARY ? 2 : 1;
    int V = vector_width(g, op, &L);
    if (!V) flush_deferred(g, op);
    char ops_s[3][160];
    for (int k = 0; k < nin; k++) {
        ts_val o = op->in[k];
        char idx[96];
        if (op->kind != TS__OP_EXPAND_DIMS && operand_access(g, o, res, idx, sizeof idx) > 0) {
            snprintf(ops_s[k], sizeof ops_s[k], "%s[%s]", vname(o), idx);
            continue;
        }
        /* through local memory, into a temporary in the result's layout */
        materialize(g, o, -1, "0");
        line(g, "%s t%d_%d[%lld];", reg_type(g, g->ir->values[o].dtype), (int)res, k, (long long)L.J);
        g->priv += L.J;
        elem_loop_begin(g, &L, "j");
        char bidx[256];
        if (op->kind == TS__OP_EXPAND_DIMS) snprintf(bidx, sizeof bidx, "f_"); /* same linear order */
        else broadcast_index(g, o, rv->rank, bidx, sizeof bidx);
        line(g, "t%d_%d[j] = %s[ok_ ? (%s) : 0];", (int)res, k, local_buf(g, g->ir->values[o].dtype), bidx);
        elem_loop_end(g);
        snprintf(ops_s[k], sizeof ops_s[k], "t%d_%d[j]", (int)res, k);
    }
    if (V && emit_elementwise_vector(g, op, &L, nin, V)) return;
    declare(g, res);
    elem_loop_begin(g, &L, "j");
    char e[1024];
    ts_dtype in_dt = g->ir->values[op->in[0]].dtype;
    switch (op->kind) {
    case TS__OP_UNARY: unary_expr(g, op->sub, in_dt, ops_s[0], e, sizeof e); break;
    case TS__OP_BINARY: binary_expr(g, op->sub, in_dt, ops_s[0], ops_s[1], e, sizeof e); break;
    case TS__OP_SELECT: snprintf(e, sizeof e, "(%s ? %s : %s)", truth(g, ops_s[0]), ops_s[1], ops_s[2]); break;
    case TS__OP_CAST: cast_expr(g, in_dt, op->dtype, ops_s[0], e, sizeof e); break;
    default: snprintf(e, sizeof e, "%s", ops_s[0]); break;
    }
    /* integer results wrap to their dtype, as the reference does */
    {
        char ep[1100];
        snprintf(ep, sizeof ep, "(%s)", e);
        line(g, "%s[j] = %s;", vname(res), cx(g, reg_type(g, rv->dtype), ep));
    }
    elem_loop_end(g);
}

/* Vector width usable for whole chunks of a load/store of `op` with value
 * layout L: the chunk is nn contiguous elements along the tensor's last dim
 * (checked at run time: stride 1 and fully in range); 0 when not usable. */
static int chunk_vector(const cg *g, const ts__op *op, const layout *L) {
    const ts__param *pa = &g->ir->params[op->param];
    if (!g->d->has_vector_types || L->kind != LAYOUT_STD || L->rank < 1) return 0;
    if (L->nn != 2 && L->nn != 4 && L->nn != 8 && L->nn != 16) return 0;
    if (pa->dtype != TS_F32 && pa->dtype != TS_F16) return 0;
    if (pa->dtype == TS_F16 && !g->d->native_half_loads) return 0; /* vload_halfN */
    if (op->idx[pa->rank - 1].kind != TS_IDX_TILE) return 0;
    return (int)L->nn;
}

/* Opens the chunk loop of a vectorized load/store: declares j0 and the
 * element variables of the chunk's first element, o_ (its offset) and vec_
 * (the whole chunk can move as one vector). */
/* Opens the loop over the nn-element chunks of layout L: j0, the element
 * variables of the chunk's first element and o_, its offset. */
static void chunk_loop_begin(cg *g, const layout *L, const char *off, int unroll) {
    if (unroll) unroll_short(g, L->J / L->nn);
    line(g, "for (int ch_ = 0; ch_ < %lld; ch_++) {", (long long)(L->J / L->nn));
    g->indent++;
    line(g, "const int j0 = ch_ * %lld;", (long long)L->nn);
    elem_decls(g, L, "j0");
    line(g, "const %s o_ = %s;", g->d->i64, off);
}

static void chunk_begin(cg *g, const ts__op *op, const layout *L, const char *okvar, const char *off, const char *cond) {
    const ts__param *pa = &g->ir->params[op->param];
    const ts__tile *lt = &g->ir->tiles[op->idx[pa->rank - 1].tile];
    chunk_loop_begin(g, L, off, 0); /* no unroll pragma: this is the partial-tile path, kept small (compile time) */
    line(g, "const int vec_ = %s && st_%s_%d == 1 && %s && b_%s + e%d + %lld <= x_%s;", okvar, pa->name, pa->rank - 1, cond, lt->name, L->rank - 1,
         (long long)L->nn, lt->name);
}

/* Closes the innermost open block. */
static void close_block(cg *g) {
    g->indent--;
    line(g, "}");
}

/* The element loop of a chunk that cannot move as one vector (inside the
 * chunk's "} else {"): binds j, the element variables and o_ for each
 * element. */
static void chunk_elems_begin(cg *g, const layout *L, int nv, const char *off) {
    line(g, "for (int jj_ = 0; jj_ < %d; jj_++) {", nv);
    g->indent++;
    line(g, "const int j = j0 + jj_;");
    elem_decls(g, L, "j");
    line(g, "const %s o_ = %s;", g->d->i64, off);
}

/* The condition under which a load/store of `op` covers its whole tile in
 * range with a unit last stride: then every chunk moves as one vector and
 * the per-chunk bounds checks and scalar fallbacks are not needed. Hoisted
 * out of the chunk loop, it leaves PoCL a short straight loop (layer norm
 * 4096x1024: the per-chunk checks cost more than the memory traffic). */
static void whole_tile_cond(const cg *g, const ts__op *op, char *buf, size_t n) {
    const ts__param *pa = &g->ir->params[op->param];
    size_t k = (size_t)snprintf(buf, n, "st_%s_%d == 1", pa->name, pa->rank - 1);
    for (int d = 0; d < pa->rank && k < n; d++) {
        const ts_index *ix = &op->idx[d];
        char ext[96];
        size_ext(g, pa, d, ext, sizeof ext);
        if (ix->kind == TS_IDX_CONST) k += (size_t)snprintf(buf + k, n - k, " && %lld < %s", (long long)ix->value, ext);
        else if (ix->kind == TS_IDX_POINT) k += (size_t)snprintf(buf + k, n - k, " && b_%s < %s", g->ir->tiles[ix->tile].name, ext);
        else {
            const char *tn = g->ir->tiles[ix->tile].name;
            long long blk = (long long)g->plan->block[ix->tile];
            k += (size_t)snprintf(buf + k, n - k, " && b_%s + %lld <= %s", tn, blk, ext);
            if (d == pa->rank - 1) k += (size_t)snprintf(buf + k, n - k, " && b_%s + %lld <= x_%s", tn, blk, tn);
        }
    }
}

static void emit_load(cg *g, const ts__op *op) {
    ts_val res = op->result;
    declare(g, res);
    layout L;
    layout_of(g, res, &L);
    char off[1024], cond[1024], ex[1400], fill[64];
    index_exprs(g, op, "e", off, sizeof off, cond, sizeof cond);
    literal(g, g->ir->values[res].dtype, op->value, fill, sizeof fill);
    load_expr(g, op->param, "o_", ex, sizeof ex);
    int nv = chunk_vector(g, op, &L);
    if (nv) {
        const ts__param *pa = &g->ir->params[op->param];
        char wt[1024], vl[1200];
        whole_tile_cond(g, op, wt, sizeof wt);
        if (pa->dtype == TS_F32) snprintf(vl, sizeof vl, "vload%d(0, p_%s + o_)", nv, pa->name);
        else snprintf(vl, sizeof vl, "vload_half%d(0, (%s const half*)(p_%s + o_))", nv, g->d->global_ptr, pa->name);
        line(g, "if (%s) {", wt);
        g->indent++;
        chunk_loop_begin(g, &L, off, 1);
        line(g, "vstore%d(ok_ ? %s : (float%d)(%s), 0, %s + j0);", nv, vl, nv, fill, vname(res));
        g->indent--;
        line(g, "}");
        g->indent--;
        line(g, "} else {");
        g->indent++;
        chunk_begin(g, op, &L, "ok_", off, cond);
        line(g, "if (vec_) {");
        line(g, "  vstore%d(%s, 0, %s + j0);", nv, vl, vname(res));
        line(g, "} else {");
        g->indent++;
        chunk_elems_begin(g, &L, nv, off);
        line(g, "%s[j] = (ok_ && %s) ? %s : %s;", vname(res), cond, cx(g, reg_type(g, g->ir->values[res].dtype), ex), fill);
        close_block(g); /* element loop */
        close_block(g); /* else */
        close_block(g); /* chunk loop */
        close_block(g); /* partial-tile path */
        return;
    }
    elem_loop_begin(g, &L, "j");
    line(g, "const %s o_ = %s;", g->d->i64, off);
    line(g, "%s[j] = (ok_ && %s) ? %s : %s;", vname(res), cond, cx(g, reg_type(g, g->ir->values[res].dtype), ex), fill);
    elem_loop_end(g);
}

static void emit_atomic(cg *g, const ts__param *pa, const char *src) {
    const char *amp = g->d->addr_of ? g->d->addr_of : "&";
    char sp[300];
    snprintf(sp, sizeof sp, "(%s)", src);
    if (pa->dtype == TS_I32) line(g, "%s(%sp_%s[o_], %s);", g->d->atomic_add_i32, amp, pa->name, cx(g, "int", sp));
    else line(g, "ts_atomic_add_f32(%sp_%s[o_], %s);", amp, pa->name, cx(g, "float", sp));
}

/* One chunk of nv elements at j0 of value v to global memory at o_: from
 * its registers, or its pending floatN expression (fast: the form reading
 * deferred loads from global memory). */
static void store_chunk(cg *g, const ts__op *op, ts_val v, int nv, int fast) {
    const ts__param *pa = &g->ir->params[op->param];
    const pendx *p = &g->px[v];
    int nt = fast && g->plan->nt && g->d->nt_stores && pa->dtype == TS_F32; /* whole-tile path only */
    int V = p->slow ? p->V : nv;
    char e[2 * TS__PX_MAX + 400], dst[128], st[sizeof e + 256];
    if (p->slow) snprintf(e, sizeof e, "%s", fast && p->fast ? p->fast : p->slow);
    else snprintf(e, sizeof e, "vload%d(0, %s + j0)", nv, vname(v));
    snprintf(dst, sizeof dst, V == nv ? "p_%s + o_" : "p_%s + o_ + (j - j0)", pa->name);
    if (nt) snprintf(st, sizeof st, "TS_NT_STORE(%d, %s, %s);", V, e, dst);
    else if (pa->dtype == TS_F32) snprintf(st, sizeof st, "vstore%d(%s, 0, %s);", V, e, dst);
    else snprintf(st, sizeof st, "vstore_half%d_rte(%s, 0, (%s half*)(%s));", V, e, g->d->global_ptr, dst);
    if (!p->slow) line(g, "%s", st);
    else if (V == nv) line(g, "{ const int j = j0; %s }", st);
    else line(g, "for (int j = j0; j < j0 + %d; j += %d) %s", nv, V, st);
}

/* A straight store in vector chunks: the whole-tile path (one hoisted
 * condition, then plain vector stores), else per chunk a vector store when
 * the chunk is in range and element stores otherwise. A value with a
 * pending expression is computed chunk by chunk here and never stored in
 * registers; the deferred loads it reads are emitted on the second path. */
static void emit_store_chunks(cg *g, const ts__op *op, ts_val v, const layout *L, int nv, const char *off, const char *cond) {
    const pendx *p = &g->px[v];
    char wt[1024], gd[4096], src[64];
    whole_tile_cond(g, op, wt, sizeof wt);
    deferred_guard(g, wt, p->dl, p->slow ? p->ndl : 0, gd, sizeof gd);
    line(g, "if (%s) {", gd);
    g->indent++;
    chunk_loop_begin(g, L, off, 1);
    line(g, "if (own_) {");
    g->indent++;
    store_chunk(g, op, v, nv, 1);
    close_block(g); /* if */
    close_block(g); /* chunk loop */
    g->indent--;
    line(g, "} else {");
    g->indent++;
    if (p->slow) emit_deferred(g, p->dl, p->ndl);
    chunk_begin(g, op, L, "own_", off, cond);
    line(g, "if (vec_) {");
    g->indent++;
    store_chunk(g, op, v, nv, 0);
    g->indent--;
    line(g, "} else {");
    g->indent++;
    if (p->slow) { /* the chunk's values, then element by element */
        line(g, "float pv_[%d];", nv);
        line(g, "for (int j = j0; j < j0 + %d; j += %d) vstore%d(%s, 0, pv_ + (j - j0));", nv, p->V, p->V, p->slow);
        snprintf(src, sizeof src, "pv_[jj_]");
    } else snprintf(src, sizeof src, "%s[j]", vname(v));
    chunk_elems_begin(g, L, nv, off);
    line(g, "if (own_ && %s) {", cond);
    g->indent++;
    store_stmt(g, op->param, "o_", src);
    close_block(g); /* if */
    close_block(g); /* element loop */
    close_block(g); /* else */
    close_block(g); /* chunk loop */
    close_block(g); /* partial-tile path */
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
    int direct = straight_access(g, op, v);
    char off[1024], cond[1024], src[256];
    index_exprs(g, op, "e", off, sizeof off, cond, sizeof cond);
    if (direct && !atomic) {
        layout L;
        layout_of(g, v, &L);
        int nv = chunk_vector(g, op, &L);
        if (nv && pa->dtype == g->ir->values[v].dtype) {
            emit_store_chunks(g, op, v, &L, nv, off, cond);
            return;
        }
    }
    if (direct || (vv->rank == 0 && r == 0)) {
        layout L;
        layout_of(g, v, &L);
        if (vv->rank == 0) { /* one thread stores a scalar */
            line(g, "if (tid == 0) {");
            g->indent++;
        } else elem_loop_begin(g, &L, "j");
        snprintf(src, sizeof src, vv->rank == 0 ? "%s[0]" : "%s[j]", vname(v));
        line(g, "const %s o_ = %s;", g->d->i64, off);
        line(g, "if (%s%s) {", vv->rank ? "own_ && " : "", cond);
        g->indent++;
        if (atomic) {
            emit_atomic(g, pa, src);
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
    int64_t ishape[TS_MAX_RANK];
    for (int d = 0; d < r; d++) ishape[d] = g->plan->block[dims[d]];
    std_layout(g, r, ishape, &L);
    elem_loop_begin(g, &L, "j");
    char idx[256];
    broadcast_index(g, v, r, idx, sizeof idx);
    line(g, "const %s o_ = %s;", g->d->i64, off);
    line(g, "if (own_ && %s) {", cond);
    g->indent++;
    snprintf(src, sizeof src, "%s[%s]", local_buf(g, vv->dtype), idx);
    if (atomic) {
        emit_atomic(g, pa, src);
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
    line(g, "const %s id_ = %s;", g->d->i64, cx(g, g->d->i64, "ts_li[e0]"));
    line(g, "const %s col_ = b_%s + e1;", g->d->i64, ct->name);
    line(g, "const %s in_ = ok_ && b_%s + e0 < x_%s && id_ >= 0 && id_ < s_%s && col_ < x_%s;", flag_t(g), at->name, at->name,
         g->ir->sizes[pa->sizes[0]].name[0] ? g->ir->sizes[pa->sizes[0]].name : "0", ct->name);
    line(g, "const %s o_ = in_ ? off_%s + id_ * st_%s_0 + col_ * st_%s_1 : 0;", g->d->i64, pa->name, pa->name, pa->name);
    load_expr(g, op->param, "o_", ex, sizeof ex);
    line(g, "%s[j] = in_ ? %s : %s;", vname(res), cx(g, reg_type(g, pa->dtype), ex), fill);
    elem_loop_end(g);
    if (!g->ir->sizes[pa->sizes[0]].name[0]) cg_fail(g, TS_ERR_UNSUPPORTED, "gather: tables with a fixed row count are not lowered yet");
}

/* Reduction over the last axis of a value in the standard layout: each
 * thread folds the elements of each row it holds into a partial (padding
 * skipped), the partials of a row meet in local memory, and each result
 * element folds its row's TC partials. With keepdim the result is ROWREP,
 * so broadcasting it back over the row needs no exchange. */
static int fast_reduce(const cg *g, const ts__op *op) {
    const ts__value *xv = &g->ir->values[op->in[0]];
    return op->axis == xv->rank - 1 && g->lay[op->in[0]].kind == LAYOUT_STD;
}

static const char *reduce_identity(const cg *g, int sub, ts_dtype dt) {
    int is_f = !is_int(dt);
    switch (sub) {
    case TS_RED_MAX:
    case TS_RED_ARGMAX: return is_f ? inf_s(g, 1) : (dt == TS_I64 ? "(long)0x8000000000000000UL" : "(-2147483647 - 1)");
    case TS_RED_MIN: return is_f ? inf_s(g, 0) : (dt == TS_I64 ? "(long)0x7fffffffffffffffL" : "2147483647");
    default: return "0";
    }
}

static void fold_stmt(cg *g, int sub, ts_dtype dt, const char *acc, const char *x) {
    int is_f = !is_int(dt);
    switch (sub) {
    case TS_RED_MAX: line(g, is_f ? "%s = ts_max(%s, %s);" : "%s = %s > %s ? %s : %s;", acc, acc, x, acc, x); break;
    case TS_RED_MIN: line(g, is_f ? "%s = ts_min(%s, %s);" : "%s = %s < %s ? %s : %s;", acc, acc, x, acc, x); break;
    default: line(g, "%s += %s;", acc, x); break;
    }
}

/* The element count of a mean over a tile of block n along tile `tn` (the
 * valid part only), as type `rtype`: "(float)min((long)n, x_t - b_t)". */
static const char *mean_count(const cg *g, const char *rtype, int64_t n, const char *tn) {
    char nb[32], m[256];
    snprintf(nb, sizeof nb, "%lld", (long long)n);
    if (!tn) return cx(g, rtype, nb);
    snprintf(m, sizeof m, "min(%s, x_%s - b_%s)", cx(g, g->d->i64, nb), tn, tn);
    return cx(g, rtype, m);
}

static void emit_reduce_fast(cg *g, const ts__op *op) {
    ts_val x = op->in[0], res = op->result;
    const ts__value *xv = &g->ir->values[x];
    ts_dtype dt = xv->dtype;
    const layout *L = &g->lay[x];
    ts_tile rt = xv->dims[op->axis];
    const char *rtn = rt != TS_NONE ? g->ir->tiles[rt].name : NULL;
    const char *lb = local_buf(g, dt), *rtype = reg_type(g, dt);
    int argmax = op->sub == TS_RED_ARGMAX;
    int64_t nparts = L->R * L->TC;
    int direct = L->TC == 1 && g->lay[res].kind == LAYOUT_ROWREP; /* the thread holds whole rows */
    if (direct) {
        declare(g, res);
        line(g, "{");
        g->indent++;
    } else need_local(g, dt, nparts);
    int64_t ioff = is_int(dt) ? nparts : 0; /* argmax indices in ts_li after int values */
    if (argmax && !direct) need_local(g, TS_I32, ioff + nparts);
    if (!direct) line(g, "%s", g->d->barrier);
    line(g, "{");
    g->indent++;
    char tq[64], tm[64];
    snprintf(tq, sizeof tq, "(tid / %lld)", (long long)L->TC);
    snprintf(tm, sizeof tm, "(tid %% %lld)", (long long)L->TC);
    line(g, "const int tr_ = %s, tc_ = %s;", cx(g, "int", tq), cx(g, "int", tm));
    /* no unroll pragma here: the body holds loops of its own, and unrolling
     * both levels (64 rows x 16 columns) made PoCL's compile run for minutes */
    if (g->px[x].slow) declare(g, x); /* written on the partial-tile path only */
    line(g, "for (int i = 0; i < %lld; i++) {", (long long)L->mm);
    g->indent++;
    line(g, "%s acc_ = %s;", rtype, reduce_identity(g, op->sub, dt));
    if (argmax) {
        if (flags_are_int(g)) line(g, "int arg_ = 0x7fffffff, first_ = 1;");
        else line(g, "int arg_ = 0x7fffffff; %s first_ = true;", flag_t(g));
    }
    /* Vector accumulators when the whole tile row is in range: a scalar fold
     * is one long dependency chain (4 cycles an element on a CPU); floatN
     * lanes fold independently. max/min use fmax/fmin and a NaN flag, so NaN
     * still propagates as in the reference. */
    int64_t cqn = L->cq * L->nn;
    int vw = reduce_vw(g, op);
    const pendx *px = &g->px[x]; /* x's expression, fused into the fold (never with deferred loads) */
    int dx = g->deferred[x];     /* x a deferred load: read from global memory, emitted on the other path */
    if (vw) {
        int minmax = op->sub == TS_RED_MAX || op->sub == TS_RED_MIN;
        char row[256], gd[1400];
        if (rtn) snprintf(row, sizeof row, "b_%s + %lld <= x_%s", rtn, (long long)L->C, rtn);
        deferred_guard(g, rtn ? row : NULL, &x, dx, gd, sizeof gd);
        line(g, "if (%s) {", gd);
        g->indent++;
        line(g, "float%d va_ = (float%d)(%s);", vw, vw, reduce_identity(g, op->sub, dt));
        if (minmax) line(g, "int%d vn_ = (int%d)(0);", vw, vw);
        line(g, "for (int x = 0; x < %lld; x += %d) {", (long long)cqn, vw);
        if (px->slow) {
            line(g, "  const int j = i * %lld + x;", (long long)cqn);
            line(g, "  const float%d y_ = %s;", vw, px->slow);
        } else if (dx) {
            char ix[64], e[2048];
            snprintf(ix, sizeof ix, "(i * %lld + x)", (long long)cqn);
            deferred_expr(g, x, ix, vw, e, sizeof e);
            line(g, "  const float%d y_ = %s;", vw, e);
        } else line(g, "  const float%d y_ = vload%d(0, %s + i * %lld + x);", vw, vw, vname(x), (long long)cqn);
        /* select, not fmax/fmin: PoCL's vector fmax is a library call
         * (softmax 4096x1024 without exp: 0.85 -> 0.61 ms); same fold as
         * ts_max/ts_min, NaN tracked by vn_ */
        if (minmax) line(g, "  va_ = select(y_, va_, va_ %s y_); vn_ |= isnan(y_);", op->sub == TS_RED_MAX ? ">" : "<");
        else line(g, "  va_ += y_;");
        line(g, "}");
        line(g, "float t_[%d];", vw);
        line(g, "vstore%d(va_, 0, t_);", vw);
        line(g, "for (int k_ = 0; k_ < %d; k_++) acc_ = %s;", vw, minmax ? (op->sub == TS_RED_MAX ? "fmax(acc_, t_[k_])" : "fmin(acc_, t_[k_])") : "acc_ + t_[k_]");
        if (minmax) line(g, "if (any(vn_)) acc_ = NAN;");
        g->indent--;
        line(g, "} else {");
        g->indent++;
        if (dx) emit_load(g, load_op_of(g, x)); /* its registers, on this path only */
        if (px->slow)
            line(g, "for (int j = i * %lld; j < (i + 1) * %lld; j += %d) vstore%d(%s, 0, %s + j);", (long long)cqn, (long long)cqn, px->V, px->V, px->slow,
                 vname(x));
    }
    /* no unroll pragma on this fold either: PoCL 3.1 miscompiled it, unrolled
     * inside the row loop of a multi-thread group (softmax M=4,N=384,
     * threads=32,vec=16,BLOCK_M=4 summed wrong; tests/test_opencl.c row forms) */
    line(g, "for (int x = 0; x < %lld; x++) {", (long long)(L->cq * L->nn));
    g->indent++;
    line(g, "const int c_ = (tc_ + (x / %lld) * %lld) * %lld + x %% %lld;", (long long)L->nn, (long long)L->TC, (long long)L->nn, (long long)L->nn);
    char xv_s[64];
    snprintf(xv_s, sizeof xv_s, "%s[i * %lld + x]", vname(x), (long long)(L->cq * L->nn));
    if (rtn) line(g, "if (b_%s + c_ < x_%s) {", rtn, rtn);
    else line(g, "{");
    g->indent++;
    if (argmax) {
        char ai[128];
        snprintf(ai, sizeof ai, "(%s%s + c_)", rtn ? "b_" : "", rtn ? rtn : "0");
        line(g, "if (first_ || %s > acc_) { acc_ = %s; arg_ = %s; first_ = %s; }", xv_s, xv_s, cx(g, "int", ai), flags_are_int(g) ? "0" : "false");
    }
    else fold_stmt(g, op->sub, dt, "acc_", xv_s);
    g->indent--;
    line(g, "}");
    g->indent--;
    line(g, "}");
    if (vw) {
        g->indent--;
        line(g, "}");
    }
    if (direct) {
        if (op->sub == TS_RED_MEAN) {
            if (rtn) line(g, "%s[i] = acc_ / %s;", vname(res), mean_count(g, rtype, L->C, rtn));
            else line(g, "%s[i] = acc_ / %s;", vname(res), mean_count(g, rtype, L->C, NULL));
        } else line(g, "%s[i] = %s;", vname(res), argmax ? "arg_" : "acc_");
        g->indent--;
        line(g, "}");
        g->indent--;
        line(g, "}");
        g->indent--;
        line(g, "}");
        return;
    }
    if (flags_are_int(g)) {
        if (xv->rank == 1) line(g, "const int r_ = 0, wr_ = tr_ == 0;");
        else line(g, "const int r_ = tr_ + i * %lld, wr_ = r_ < %lld;", (long long)L->TR, (long long)L->R);
    } else {
        if (xv->rank == 1) line(g, "const int r_ = 0; const %s wr_ = tr_ == 0;", flag_t(g));
        else line(g, "const int r_ = tr_ + i * %lld; const %s wr_ = r_ < %lld;", (long long)L->TR, flag_t(g), (long long)L->R);
    }
    line(g, "if (wr_) {");
    line(g, "  %s[r_ * %lld + tc_] = acc_;", lb, (long long)L->TC);
    if (argmax) line(g, "  ts_li[%lld + r_ * %lld + tc_] = arg_;", (long long)ioff, (long long)L->TC);
    line(g, "}");
    g->indent--;
    line(g, "}");
    g->indent--;
    line(g, "}");
    line(g, "%s", g->d->barrier);
    declare(g, res);
    layout Lr;
    layout_of(g, res, &Lr);
    elem_loop_begin(g, &Lr, "j");
    line(g, "{ /* every thread, clamped (see relayout) */");
    line(g, "  const int fq_ = ok_ ? f_ : 0;");
    g->indent++;
    line(g, "%s acc_ = %s[fq_ * %lld];", rtype, lb, (long long)L->TC);
    if (argmax) line(g, "int arg_ = ts_li[%lld + fq_ * %lld];", (long long)ioff, (long long)L->TC);
    line(g, "for (int k_ = 1; k_ < %lld; k_++) {", (long long)L->TC);
    g->indent++;
    line(g, "const %s y_ = %s[fq_ * %lld + k_];", rtype, lb, (long long)L->TC);
    if (argmax) {
        line(g, "const int ya_ = ts_li[%lld + fq_ * %lld + k_];", (long long)ioff, (long long)L->TC);
        line(g, "if (y_ > acc_ || (y_ == acc_ && ya_ < arg_)) { acc_ = y_; arg_ = ya_; }");
    } else fold_stmt(g, op->sub, dt, "acc_", "y_");
    g->indent--;
    line(g, "}");
    if (op->sub == TS_RED_MEAN) {
        if (rtn) line(g, "%s[j] = acc_ / %s;", vname(res), mean_count(g, rtype, L->C, rtn));
        else line(g, "%s[j] = acc_ / %s;", vname(res), mean_count(g, rtype, L->C, NULL));
    } else if (argmax) line(g, "%s[j] = arg_;", vname(res));
    else line(g, "%s[j] = acc_;", vname(res));
    g->indent--;
    line(g, "}");
    elem_loop_end(g);
}

static void emit_reduce(cg *g, const ts__op *op) {
    if (fast_reduce(g, op)) { /* a deferred input always has a floatN fold here (find_deferred_loads) */
        emit_reduce_fast(g, op);
        return;
    }
    flush_deferred(g, op);
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
    case TS_RED_ARGMAX: identity = is_f ? inf_s(g, 1) : (dt == TS_I64 ? "(long)0x8000000000000000UL" : "(-2147483647 - 1)"); break;
    case TS_RED_MIN: identity = is_f ? inf_s(g, 0) : (dt == TS_I64 ? "(long)0x7fffffffffffffffL" : "2147483647"); break;
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
        line(g, "%s[j] = acc_ / %s;", vname(res), mean_count(g, reg_type(g, dt), n, rt != TS_NONE ? g->ir->tiles[rt].name : NULL));
    } else if (op->sub == TS_RED_ARGMAX) {
        char ai[96];
        snprintf(ai, sizeof ai, "(b_%s + arg_)", rt != TS_NONE ? g->ir->tiles[rt].name : "");
        if (rt != TS_NONE) line(g, "%s[j] = %s;", vname(res), cx(g, "int", ai));
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
    line(g, "%s[j] = %s[ok_ ? e1 * %lld + e0 : 0];", vname(res), local_buf(g, g->ir->values[x].dtype), (long long)shape[1]);
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
    snprintf(buf, n, "((%s) ? %s : 0.0f)", cond, cx(g, "float", ex));
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
        char vj[40];
        snprintf(vj, sizeof vj, "%s[j]", vname(v));
        line(g, "if (own_) ts_lf[%lld + f_] = (b_%s + e%d < x_%s) ? %s : 0.0f;", (long long)base, kt->name, kaxis, kt->name, cx(g, "float", vj));
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
    {
        char tq[64], tm[64], bk[32], mn[160];
        snprintf(tq, sizeof tq, "(tid / %lld)", (long long)L.TC);
        snprintf(tm, sizeof tm, "(tid %% %lld)", (long long)L.TC);
        snprintf(bk, sizeof bk, "%lld", (long long)BK);
        line(g, "const int tr_ = %s, tc_ = %s;", cx(g, "int", tq), cx(g, "int", tm));
        snprintf(mn, sizeof mn, "min(%s, x_%s - b_%s)", cx(g, g->d->i64, bk), kt->name, kt->name);
        line(g, "const int kn_ = %s;", cx(g, "int", mn));
    }
    int vec = g->d->has_vector_types && (L.nn == 4 || L.nn == 8 || L.nn == 16);
    if (vec) {
        line(g, "float%lld accv_[%lld];", (long long)L.nn, (long long)(L.mm * L.cq));
        line(g, "%s", g->d->unroll);
        line(g, "for (int x = 0; x < %lld; x++) accv_[x] = vload%lld(x, %s);", (long long)(L.mm * L.cq), (long long)L.nn, vname(res));
    }
    /* Interior fast path: when this program's whole block lies inside both
     * operands (checked at the block's far corner: every index condition is
     * monotone) and B's rows are contiguous, the k loop has a constant trip
     * count, no bounds checks and vector loads of B straight into registers.
     * On PoCL this takes f32 matmul 1024^3 from ~94 to ~140 GFLOP/s. */
    int fast = vec && la && lb && !ta && !tb && L.R >= L.TR && g->ir->params[la->param].dtype == TS_F32 &&
               g->ir->params[lb->param].dtype == TS_F32;
    if (fast) {
        const ts__param *pa = &g->ir->params[la->param], *pb = &g->ir->params[lb->param];
        char offa[1024], conda[1024], offb[1024], condb[1024];
        index_exprs(g, la, "fa_", offa, sizeof offa, conda, sizeof conda);
        index_exprs(g, lb, "fb_", offb, sizeof offb, condb, sizeof condb);
        { /* B's last stride is 1 on this path: drop the multiply so addresses fold */
            char unit[64];
            snprintf(unit, sizeof unit, " * st_%s_%d", pb->name, pb->rank - 1);
            char *at = strstr(offb, unit);
            if (at) memmove(at, at + strlen(unit), strlen(at + strlen(unit)) + 1);
        }
        line(g, "int fast_;");
        line(g, "{");
        line(g, "  const int fa_0 = %lld, fa_1 = %lld, fb_0 = %lld, fb_1 = %lld;", (long long)(BM - 1), (long long)(BK - 1), (long long)(BK - 1),
             (long long)(BN - 1));
        line(g, "  fast_ = kn_ == %lld && st_%s_%d == 1 && (%s) && (%s);", (long long)BK, pb->name, pb->rank - 1, conda, condb);
        line(g, "}");
        line(g, "if (fast_) {");
        g->indent++;
        if (g->plan->unroll > 1) line(g, "#pragma unroll %d", g->plan->unroll);
        line(g, "for (int k_ = 0; k_ < %lld; k_++) {", (long long)BK);
        g->indent++;
        line(g, "float%lld bv_[%lld];", (long long)L.nn, (long long)L.cq);
        line(g, "%s", g->d->unroll);
        line(g, "for (int q = 0; q < %lld; q++) {", (long long)L.cq);
        line(g, "  const int fb_0 = k_, fb_1 = (tc_ + q * %lld) * %lld;", (long long)L.TC, (long long)L.nn);
        line(g, "  bv_[q] = vload%lld(0, p_%s + (%s));", (long long)L.nn, pb->name, offb);
        line(g, "}");
        line(g, "%s", g->d->unroll);
        line(g, "for (int i = 0; i < %lld; i++) {", (long long)L.mm);
        line(g, "  const int fa_0 = tr_ + i * %lld, fa_1 = k_;", (long long)L.TR);
        line(g, "  const float a_ = p_%s[%s];", pa->name, offa);
        line(g, "  %s", g->d->unroll);
        line(g, "  for (int q = 0; q < %lld; q++) accv_[i * %lld + q] = mad((float%lld)(a_), bv_[q], accv_[i * %lld + q]);", (long long)L.cq, (long long)L.cq,
             (long long)L.nn, (long long)L.cq);
        line(g, "}");
        g->indent--;
        line(g, "}");
        g->indent--;
        line(g, "} else {");
        g->indent++;
    }
    if (g->plan->unroll > 1 && g->d->unroll[0]) line(g, "#pragma unroll %d", g->plan->unroll);
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
    if (fast) {
        g->indent--;
        line(g, "}");
    }
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

/* Chooses a layout for every value (see the file comment): the standard
 * layout of its shape, except keepdim reductions over the last axis (ROWREP
 * of their input) and elementwise results that take a same-shape operand's
 * ROWREP layout. Loop-carried values take their yield's layout when it
 * differs from the init's; the pass repeats until loops agree. */
static void assign_layouts(cg *g) {
    const ts__kir *ir = g->ir;
    int *pref = ts__calloc((size_t)(ir->nvalues + 1), sizeof(int)); /* 1: carried takes the yield's layout */
    layout *prefL = ts__calloc((size_t)(ir->nvalues + 1), sizeof(layout));
    if (!pref || !prefL) { free(pref); free(prefL); cg_fail(g, TS_ERR_OUT_OF_MEMORY, "out of memory"); return; }
    for (int round = 0; round < 4; round++) {
        int changed = 0;
        for (int v = 0; v < ir->nvalues; v++) value_std_layout(g, v, &g->lay[v]);
        for (int i = 0; i < ir->nops; i++) {
            const ts__op *op = &ir->ops[i];
            switch (op->kind) {
            case TS__OP_REDUCE:
                if (fast_reduce(g, op) && op->keepdim && ir->values[op->result].rank >= 2)
                    rowrep_layout(&g->lay[op->in[0]], g->lay[op->result].rank, g->lay[op->result].shape, &g->lay[op->result]);
                break;
            case TS__OP_UNARY:
            case TS__OP_BINARY:
            case TS__OP_SELECT:
            case TS__OP_CAST: {
                int nin = op->kind == TS__OP_SELECT ? 3 : op->kind == TS__OP_BINARY ? 2 : 1;
                for (int k = 0; k < nin; k++) {
                    ts_val o = op->in[k];
                    if (g->lay[o].kind == LAYOUT_ROWREP && dims_equal(&ir->values[o], &ir->values[op->result])) {
                        g->lay[op->result] = g->lay[o];
                        break;
                    }
                }
                break;
            }
            case TS__OP_LOOP_BEGIN:
                for (int c = 0; c < op->ncarry; c++) {
                    ts_val cv = op->carried[c];
                    if (pref[cv]) g->lay[cv] = prefL[cv]; /* the yield's layout found last round */
                    else g->lay[cv] = g->lay[op->init[c]];
                }
                break;
            case TS__OP_LOOP_END: {
                const ts__op *bop = &ir->ops[op->match];
                for (int c = 0; c < op->ncarry; c++) {
                    ts_val cv = bop->carried[c];
                    if (!same_layout(&g->lay[op->yields[c]], &g->lay[cv]) && !pref[cv]) {
                        pref[cv] = 1;
                        prefL[cv] = g->lay[op->yields[c]];
                        changed = 1;
                    }
                    g->lay[op->results[c]] = g->lay[cv];
                }
                break;
            }
            default: break;
            }
        }
        if (!changed) break;
    }
    free(pref);
    free(prefL);
}

/* Buffer-block targets (GLSL): the arguments of ts__cg_args, less the
 * buffers, as 32-bit members of one block at binding 0 (then a pad member,
 * so the block is never empty); tensor t's storage buffer at binding 1 + t;
 * local memory at global scope; the work-group size; main(). */
static void emit_params_blocks(cg *g, const char *entry) {
    const ts__kir *ir = g->ir;
    ts__sb_printf(&g->sb, "layout(std430, set = 0, binding = 0) readonly buffer TsArgs {\n");
    int nt = 0;
    for (int p = 0; p < ir->nparams; p++) {
        const ts__param *pa = &ir->params[p];
        if (pa->dtype == TS_F64 || pa->dtype == TS_I64) {
            cg_fail(g, TS_ERR_UNSUPPORTED, "parameter '%s': %s is not supported by the %s code generator", pa->name, ts_dtype_name(pa->dtype),
                    ts__dialect_name(g->d->id));
            continue;
        }
        if (pa->is_tensor) {
            ts__sb_printf(&g->sb, "  %s off_%s;\n", g->d->i64, pa->name);
            for (int d = 0; d < pa->rank; d++) ts__sb_printf(&g->sb, "  %s st_%s_%d;\n", g->d->i64, pa->name, d);
        } else ts__sb_printf(&g->sb, "  %s a_%s;\n", is_int(pa->dtype) ? "int" : "float", pa->name);
    }
    for (int s = 0; s < ir->nsizes; s++)
        if (ir->sizes[s].name[0]) ts__sb_printf(&g->sb, "  %s s_%s;\n", g->d->i64, ir->sizes[s].name);
    ts__sb_puts(&g->sb, "  int ts_pad_;\n};\n");
    for (int p = 0; p < ir->nparams; p++) {
        const ts__param *pa = &ir->params[p];
        if (!pa->is_tensor) continue;
        nt++;
        ts__sb_printf(&g->sb, "layout(std430, set = 0, binding = %d) buffer TsBuf%d { %s p_%s[]; };\n", nt, nt, mem_type(g, pa->dtype), pa->name);
    }
    if (g->lf) ts__sb_printf(&g->sb, "%s float ts_lf[%lld];\n", g->d->local_decl, (long long)g->lf);
    if (g->li) ts__sb_printf(&g->sb, "%s int ts_li[%lld];\n", g->d->local_decl, (long long)g->li);
    ts__sb_printf(&g->sb, "layout(local_size_x = %d, local_size_y = 1, local_size_z = 1) in;\n", g->T);
    ts__sb_printf(&g->sb, "/* entry %s */\n%s main()\n{\n", entry, g->d->kernel_qual);
}

static void emit_params(cg *g, const char *entry) {
    const ts__kir *ir = g->ir;
    if (g->d->buffer_blocks) {
        emit_params_blocks(g, entry);
        return;
    }
    ts__sb_printf(&g->sb, "%s %s(", g->d->kernel_qual, entry);
    int first = 1;
    for (int p = 0; p < ir->nparams; p++) {
        const ts__param *pa = &ir->params[p];
        if (pa->is_tensor) {
            ts__sb_printf(&g->sb, "%s%s %s* %s p_%s, %s off_%s", first ? "" : ", ", g->d->global_ptr, mem_type(g, pa->dtype), g->d->restrict_, pa->name,
                          g->d->i64, pa->name);
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
    g.COLMAX = g.T;
    if (plan->col_threads < g.T && !ts__kir_has_dot(&k->ir)) g.COLMAX = plan->col_threads; /* a dot's layout is its micro-tile */
    if (caps && g.T > caps->max_group_size)
        return ts__error(TS_ERR_BAD_CONFIG, "kernel '%s': the config needs %d threads per group, the device allows %d", k->ir.name, g.T, caps->max_group_size);
    g.uses = ts__calloc((size_t)(k->ir.nvalues + 1), sizeof(int));
    g.fused = ts__calloc((size_t)(k->ir.nops + 1), sizeof(int));
    if (!g.uses || !g.fused) { free(g.uses); free(g.fused); return TS_ERR_OUT_OF_MEMORY; }
    count_uses(&g);
    g.lay = ts__calloc((size_t)(k->ir.nvalues + 1), sizeof *g.lay);
    g.px = ts__calloc((size_t)(k->ir.nvalues + 1), sizeof *g.px);
    g.deferred = ts__calloc((size_t)(k->ir.nvalues + 1), sizeof *g.deferred);
    if (!g.lay || !g.px || !g.deferred) {
        free(g.uses); free(g.fused); free(g.lay); free(g.px); free(g.deferred);
        return TS_ERR_OUT_OF_MEMORY;
    }
    assign_layouts(&g);
    find_deferred_loads(&g);
    const ts__kir *ir = &k->ir;
    ts__sb body = {0};
    /* The body is emitted first (it determines local memory needs), then the
     * header and declarations are put in front of it. */
    ts__sb head = {0};
    g.indent = 1;
    line(&g, "const int tid = %s;", cx(&g, "int", d->tid));
    for (int gi = 0; gi < ir->ngrid; gi++) {
        const ts__tile *t = &ir->tiles[ir->grid[gi]];
        line(&g, "const %s b_%s = %s * %lld;", d->i64, t->name, cx(&g, d->i64, d->group_id[gi]), (long long)plan->block[ir->grid[gi]]);
    }
    for (int t = 0; t < ir->ntiles; t++) {
        const ts__size *sz = &ir->sizes[ir->tiles[t].extent];
        if (sz->name[0]) line(&g, "const %s x_%s = s_%s;", d->i64, ir->tiles[t].name, sz->name);
        else line(&g, "const %s x_%s = %lld;", d->i64, ir->tiles[t].name, (long long)sz->fixed);
    }
    for (int i = 0; i < ir->nops && !g.err; i++) {
        const ts__op *op = &ir->ops[i];
        if (g.fused[i]) continue;
        if (op->kind != TS__OP_UNARY && op->kind != TS__OP_BINARY && op->kind != TS__OP_REDUCE) flush_deferred(&g, op);
        switch (op->kind) {
        case TS__OP_LOAD:
            if (!g.deferred[op->result]) emit_load(&g, op);
            break;
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
            else snprintf(e, sizeof e, "%s", cx(&g, reg_type(&g, pa->dtype), an));
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
            char ae[96];
            snprintf(ae, sizeof ae, "(b_%s + e0)", ir->tiles[op->tile].name);
            line(&g, "%s[j] = %s;", vname(op->result), cx(&g, "int", ae));
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
                if (same_layout(&L, &g.lay[op->init[c]]))
                    line(&g, "for (int j = 0; j < %lld; j++) %s[j] = %s[j];", (long long)L.J, vname(op->carried[c]), vname(op->init[c]));
                else relayout(&g, op->init[c], vname(op->carried[c]), &L, 0);
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
                char yn[32];
                snprintf(yn, sizeof yn, "y%d_%d", i, c);
                if (same_layout(&L, &g.lay[op->yields[c]]))
                    line(&g, "for (int j = 0; j < %lld; j++) y%d_%d[j] = %s[j];", (long long)L.J, i, c, vname(op->yields[c]));
                else relayout(&g, op->yields[c], yn, &L, 0);
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
    if (g.lf && !d->buffer_blocks) ts__sb_printf(&g.sb, "  %s float ts_lf[%lld];\n", d->local_decl, (long long)g.lf);
    if (g.li && !d->buffer_blocks) ts__sb_printf(&g.sb, "  %s int ts_li[%lld];\n", d->local_decl, (long long)g.li);
    char *b = ts__sb_finish(&body);
    if (b) ts__sb_puts(&g.sb, b);
    free(b);
    ts__sb_puts(&g.sb, "}\n");
    free(g.uses);
    free(g.fused);
    free(g.lay);
    for (int v = 0; v < k->ir.nvalues; v++) {
        free(g.px[v].slow);
        free(g.px[v].fast);
    }
    free(g.px);
    free(g.deferred);
    int64_t local_bytes = g.lf * 4 + g.li * 4;
    /* Large private arrays spill to the stack (and crash some drivers): such
     * configs are refused, and the tuner prunes them. */
    const int max_priv = d->max_private > 0 ? d->max_private : TS__MAX_PRIVATE;
    if (!g.err && (g.priv > max_priv || g.priv * g.T > TS__MAX_PRIVATE_GROUP))
        cg_fail(&g, TS_ERR_BAD_CONFIG, "needs %lld private elements per thread x %d threads (at most %d per thread, %d per group); use smaller blocks",
                (long long)g.priv, g.T, max_priv, TS__MAX_PRIVATE_GROUP);
    if (!g.err && caps && caps->shared_mem_bytes && local_bytes > caps->shared_mem_bytes)
        cg_fail(&g, TS_ERR_BAD_CONFIG, "needs %lld bytes of local memory, the device has %lld", (long long)local_bytes, (long long)caps->shared_mem_bytes);
    if (g.err) {
        ts__sb_free(&g.sb);
        return ts__error(g.err, "kernel '%s': %s", ir->name, g.errmsg);
    }
    *source = ts__sb_finish(&g.sb);
    return *source ? TS_OK : ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory emitting kernel '%s'", ir->name);
}
