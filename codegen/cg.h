/* cg.h: the emitter's state and the functions its files share (internal).
 *
 * The one lowering of the tile IR to C-like source is split by concern:
 *   emit_c.c     the state, use counts, layout assignment, parameters, the
 *                op loop (loops, scalars, constants) and the entry point
 *   cg_layout.c  layouts: which thread holds which element; element loops;
 *                exchanges through local memory (materialize, relayout,
 *                transpose)
 *   cg_expr.c    dtypes, literals, math and cast expressions; elementwise
 *                ops, scalar and floatN
 *   cg_memory.c  global memory: loads, stores, atomics, gather; vector chunks,
 *                the whole-tile path; deferred loads
 *   cg_reduce.c  reductions and scans
 *   cg_dot.c     dot
 *   cg_dot_glsl.c  dot, register-blocked with vec4 views (dialects with dot_vec4: GLSL)
 *   cg_mma.c     dot on tensor cores (warp level; mma.sync, emulated on OpenCL)
 *   cg_mfma.c    dot on AMD matrix cores (wavefront level; MFMA, emulated on OpenCL)
 *   cg_random.c  rand and randint (Philox 4x32-10)
 *   cg_f8.c      f8_e4m3 / f8_e5m2 conversions (emitted when used)
 * The model is described in emit_c.c and docs/design.md ("Lowering"); the
 * syntax of each target lives in dialect.c. */
#ifndef TS_CODEGEN_CG_H
#define TS_CODEGEN_CG_H

#include "dialect.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- state */

#define TS__MAX_PRIVATE 16384          /* elements per thread */
#define TS__MAX_PRIVATE_GROUP (1 << 20) /* elements per work-group (drivers keep them on one stack) */
#define TS__COPY_UNROLL_MAX 256        /* longest register copy loop unrolled (dialects with copy_unroll) */
#define LAYOUT_STD 0
#define LAYOUT_ROWREP 1

typedef struct layout {
    int kind;          /* LAYOUT_STD, or LAYOUT_ROWREP: rows of a parent layout, replicated across its columns */
    int rank;
    int64_t shape[TS_MAX_RANK];
    int64_t R, C, nn, TC, TR, cq, mm, J;
} layout;

#define TS__MAX_DEFERRED 4
#define TS__GPU_UNROLL_MAX 128 /* registers_only targets: longest loop over registers unrolled */
#define TS__PX_MAX 2000 /* longest fused expression (characters) */
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
    int SG;            /* GLSL: the device's subgroup size when subgroup operations are usable, else 0 */
    int indent;
    int *uses;         /* [nvalues] */
    int *fused;        /* [nops]: load/transpose read directly by a dot */
    struct pendx *px;  /* [nvalues]: floatN expression of a value fused into its only consumer */
    int *deferred;     /* [nvalues]: a load not emitted at its op, read from global memory by its consumer (def_load) */
    int64_t lf, li;    /* local memory needs (elements) for float / integer buffers */
    int64_t priv;      /* private elements declared per thread */
    struct layout *lay; /* [nvalues]: the layout chosen for each value */
    unsigned vec4_view;            /* params (bit per index) also declared as a vec4 view of their buffer (cg_dot_glsl.c) */
    int64_t dot_shared_a4, dot_shared_b4; /* vec4s of shared memory of the staged GLSL dot (ts_da4, ts_db4) */
    int mma;           /* a dot went to tensor cores: the kernel needs cg_mma.c's prelude */
    int mfma;          /* a dot went to MFMA: the kernel needs cg_mfma.c's prelude */
    int rand;          /* the kernel uses rand/randint: it needs cg_random.c's helper */
    /* cg_mma.c's cp.async pipeline (ts__cg_mma_loop_begin): the dot of the
     * loop being emitted whose operands stream through the ring ts_pipe_ */
    const struct ts__op *pipe_loop, *pipe_dot; /* LOOP_BEGIN, DOT */
    int pipe_stages;
    int64_t pipe_halfs;  /* ts_pipe_: halfs of the ring (the largest of the kernel's loops) */
    int cp_queue;        /* emulation: cp.async copies one work-item may have in flight */
    /* cg_mma.c: the loop whose carried value frag_cv (a tensor-core dot's
     * accumulator, read only by the dot, the dot's result its yield) lives
     * in the warps' C fragments across the loop, not in registers of its layout */
    const struct ts__op *frag_loop, *frag_dot;
    ts_val frag_cv;
    int frag_c;          /* its index among the loop's carried values */
    int frag_cs_in_ring; /* its Cs (before and after the loop) in the pipeline's ring */
    int64_t smem_limit;  /* bytes of local memory the device allows (0: unknown) */
    ts_status err;
    char errmsg[512];
} cg;

/* ---------------------------------------------------------------- small leaves (every file) */

static inline void line(cg *g, const char *fmt, ...) TS__PRINTF(2, 3);
static inline void cg_fail(cg *g, ts_status s, const char *fmt, ...) TS__PRINTF(3, 4);

static inline void line(cg *g, const char *fmt, ...) {
    for (int i = 0; i < g->indent; i++) ts__sb_puts(&g->sb, "  ");
    va_list ap;
    va_start(ap, fmt);
    char buf[4096];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ts__sb_puts(&g->sb, buf);
    ts__sb_puts(&g->sb, "\n");
}

static inline void cg_fail(cg *g, ts_status s, const char *fmt, ...) {
    if (g->err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->errmsg, sizeof g->errmsg, fmt, ap);
    va_end(ap);
    g->err = s;
}

/* x converted to type: "(T)x" in C (x verbatim, as the C targets always
 * spelled it), "T(x)" in GLSL. Rotating buffers: up to 16 live at once. */
static inline const char *cx(const cg *g, const char *type, const char *x) {
    static _Thread_local char buf[16][4096];
    static _Thread_local int k;
    k = (k + 1) % 16;
    snprintf(buf[k], sizeof buf[k], g->d->function_casts ? "%s(%s)" : "(%s)%s", type, x);
    return buf[k];
}

/* Type of the emitter's condition variables (ok_, own_, in_, ...). */
static inline const char *flag_t(const cg *g) { return g->d->flag_type ? g->d->flag_type : "int"; }

static inline int flags_are_int(const cg *g) { return !g->d->flag_type || strcmp(g->d->flag_type, "int") == 0; }

/* +infinity or -infinity as an f32 expression. */
static inline const char *inf_s(const cg *g, int neg) {
    if (!g->d->inf_lit) return neg ? "(-1.0f/0.0f)" : "(1.0f/0.0f)";
    static _Thread_local char buf[2][96];
    snprintf(buf[neg], sizeof buf[neg], neg ? "(-%s)" : "%s", g->d->inf_lit);
    return buf[neg];
}

/* A u8/bool register used as a condition. */
static inline const char *truth(const cg *g, const char *x) {
    static _Thread_local char buf[4][512];
    static _Thread_local int k;
    if (flags_are_int(g)) return x;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "(%s != 0)", x);
    return buf[k];
}

static inline void layout_of(const cg *g, ts_val v, layout *L) { *L = g->lay[v]; }

static inline int same_layout(const layout *a, const layout *b) {
    return a->kind == b->kind && a->R == b->R && a->C == b->C && a->J == b->J && a->TC == b->TC && a->TR == b->TR && a->nn == b->nn &&
           a->cq == b->cq && a->mm == b->mm;
}

static inline const char *reg_type(const cg *g, ts_dtype d) {
    switch (d) {
    case TS_F64: return "double";
    case TS_I32: return "int";
    case TS_I64: return g->d->i64;
    case TS_U8:
    case TS_BOOL: return g->d->reg_u8 ? g->d->reg_u8 : "uchar";
    case TS_I8: return g->d->reg_i8 ? g->d->reg_i8 : "char";
    case TS_I16: return g->d->reg_i16 ? g->d->reg_i16 : "short";
    default: return "float";
    }
}

static inline int is_int(ts_dtype d) { return d == TS_I32 || d == TS_I64 || d == TS_U8 || d == TS_BOOL || d == TS_I8 || d == TS_I16; }
static inline int is_f8(ts_dtype d) { return d == TS_F8_E4M3 || d == TS_F8_E5M2; }

/* Expression x converted to dtype d's register type, wrapping integers to
 * d's width as the reference does: a C cast on targets with 8- and 16-bit
 * registers; on the others (GLSL's int registers) a sign-extending
 * bitfieldExtract. */
static inline const char *wrap_cast(const cg *g, ts_dtype d, const char *x) {
    static _Thread_local char buf[4][1300];
    static _Thread_local int k;
    if ((d == TS_I8 || d == TS_I16) && g->d->function_casts) {
        k = (k + 1) % 4;
        snprintf(buf[k], sizeof buf[k], "bitfieldExtract(int(%s), 0, %d)", x, d == TS_I8 ? 8 : 16);
        return buf[k];
    }
    return cx(g, reg_type(g, d), x);
}

static inline const char *mem_type(const cg *g, ts_dtype d) {
    switch (d) {
    case TS_F16:
    case TS_BF16: return g->d->mem_u16 ? g->d->mem_u16 : "ushort";
    case TS_F32: return "float";
    case TS_F64: return "double";
    case TS_I32: return "int";
    case TS_I64: return g->d->i64;
    case TS_I8: return g->d->mem_i8 ? g->d->mem_i8 : "char";
    case TS_I16: return g->d->mem_i16 ? g->d->mem_i16 : "short";
    default: return g->d->mem_u8 ? g->d->mem_u8 : "uchar"; /* u8, bool, f8_e4m3, f8_e5m2 */
    }
}

static inline const char *vname(ts_val v) {
    static _Thread_local char buf[8][24];
    static _Thread_local int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "v%d", (int)v);
    return buf[k];
}

static inline const char *local_buf(const cg *g, ts_dtype d) { return is_int(d) ? "ts_li" : "ts_lf"; }

/* Expression x of dtype d converted for (to_local) or from (from_local) its
 * local buffer: GLSL has no implicit conversion between its uint
 * bool/u8 registers and the int buffer; C needs none (x verbatim). */
static inline const char *local_cast(const cg *g, ts_dtype d, const char *x, int to_local) {
    if (!g->d->function_casts || !is_int(d) || strcmp(reg_type(g, d), "int") == 0) return x;
    return cx(g, to_local ? "int" : reg_type(g, d), x);
}

static inline int op_nin(const ts__op *op) { return op->kind == TS__OP_SELECT ? 3 : op->kind == TS__OP_BINARY ? 2 : 1; }

/* Closes the innermost open block. */
static inline void close_block(cg *g) {
    g->indent--;
    line(g, "}");
}

/* emit_c.c: state and the kernel */
void ts__cg_declare(cg *g, ts_val v);

/* cg_layout.c: layouts, element loops, exchange through local memory */
void ts__cg_std_layout(const cg *g, int rank, const int64_t *shape, layout *L);
void ts__cg_value_std_layout(const cg *g, ts_val v, layout *L);
void ts__cg_rowrep_layout(const layout *parent, int rank, const int64_t *shape_in, layout *L);
void ts__cg_std_row_expr(const cg *g, const layout *L, const char *jv, char *buf, size_t n);
void ts__cg_std_col_expr(const cg *g, const layout *L, const char *jv, char *buf, size_t n);
void ts__cg_elem_decls(cg *g, const layout *L, const char *jv);
void ts__cg_unroll_short(cg *g, int64_t trips);
void ts__cg_elem_loop_begin(cg *g, const layout *L, const char *jv);
void ts__cg_elem_loop_end(cg *g);
void ts__cg_need_local(cg *g, ts_dtype d, int64_t n);
void ts__cg_materialize(cg *g, ts_val v, int mask_axis, const char *identity);
void ts__cg_relayout(cg *g, ts_val src, const char *dst, const layout *to, int declare_it);
void ts__cg_broadcast_index(const cg *g, ts_val o, int rr, char *buf, size_t n);
void ts__cg_emit_transpose(cg *g, const ts__op *op);

/* cg_expr.c: dtypes, literals, math, elementwise ops */
void ts__cg_literal(const cg *g, ts_dtype d, double v, char *buf, size_t n);
void ts__cg_cast_expr(const cg *g, ts_dtype from, ts_dtype to, const char *x, char *buf, size_t n);
int ts__cg_dims_equal(const ts__value *a, const ts__value *b);
void ts__cg_binary_expr(const cg *g, int op, ts_dtype dt, const char *x, const char *y, char *buf, size_t n);
int ts__cg_operand_access(const cg *g, ts_val o, ts_val res, char *idx, size_t n);
int ts__cg_vector_width(const cg *g, const ts__op *op, const layout *L);
void ts__cg_emit_elementwise(cg *g, const ts__op *op);

/* cg_memory.c: global memory: loads, stores, atomics, gather, deferred loads */
void ts__cg_load_expr(const cg *g, int p, const char *off, char *buf, size_t n);
void ts__cg_index_exprs(const cg *g, const ts__op *op, const char *prefix, char *off, size_t on, char *cond, size_t cn);
int ts__cg_access_plain(const cg *g, const ts__op *op);
int ts__cg_access_tiles(const cg *g, const ts__op *op);
int ts__cg_store_fusable(const cg *g, const ts__op *st, ts_val v, int V);
void ts__cg_find_deferred_loads(cg *g);
const ts__op *ts__cg_load_op_of(const cg *g, ts_val v);
void ts__cg_undefer(cg *g, ts_val v);
void ts__cg_flush_deferred(cg *g, const ts__op *op);
void ts__cg_deferred_expr(const cg *g, ts_val o, const char *idx, int V, char *buf, size_t n);
void ts__cg_deferred_guard(const cg *g, const char *base, const ts_val *dl, int ndl, char *buf, size_t n);
void ts__cg_emit_deferred(cg *g, const ts_val *dl, int ndl);
void ts__cg_emit_load(cg *g, const ts__op *op);
void ts__cg_emit_store(cg *g, const ts__op *op, int atomic);
void ts__cg_emit_gather(cg *g, const ts__op *op);

/* cg_reduce.c: reductions */
int ts__cg_reduce_vw(const cg *g, const ts__op *op);
int ts__cg_fast_reduce(const cg *g, const ts__op *op);
void ts__cg_emit_reduce(cg *g, const ts__op *op);
void ts__cg_emit_scan(cg *g, const ts__op *op);

/* cg_dot.c: dot */
const ts__op *ts__cg_direct_load(const cg *g, ts_val v, int *transposed);
void ts__cg_emit_dot(cg *g, const ts__op *op);

/* cg_dot_glsl.c: the register-blocked dot of dot_vec4 dialects */
int ts__cg_dot_glsl_ok(const cg *g, const ts__op *op);
void ts__cg_emit_dot_glsl(cg *g, const ts__op *op);
/* cg_mma.c: dot on tensor cores (mma.sync; emulated on OpenCL) */
int ts__cg_mma_applies(const cg *g, const ts__op *op);
void ts__cg_emit_dot_mma(cg *g, const ts__op *op);
/* A dot operand's load copied into a 16-bit local tile in chunks (shared by cg_mma.c and cg_mfma.c) */
typedef struct ts__cg_chunks {
    const ts__op *ld;          /* the load, read only by the dot */
    const char *pre;           /* prefix of its index variables */
    int64_t rows, nch;         /* rows, chunks a row */
    int cw;                    /* halfs a chunk */
    int64_t B0, B1;            /* the valid extent (zero fill past it) */
    const char *dst;           /* where chunk (r_, c<cw>_) goes */
    const char *aligned, *copy; /* macros: aligned(src_), copy(dst_, src_) */
} ts__cg_chunks;
void ts__cg_chunk_copy(cg *g, const ts__cg_chunks *c);
void ts__cg_mma_explain(cg *g, const ts__op *op);
void ts__cg_mma_prelude(const cg *g, ts__sb *sb);
/* cg_mfma.c: dot on AMD matrix cores (MFMA; emulated on OpenCL) */
int ts__cg_mfma_selected(const cg *g);
int ts__cg_mfma_applies(const cg *g, const ts__op *op);
void ts__cg_mfma_explain(cg *g, const ts__op *op);
void ts__cg_emit_dot_mfma(cg *g, const ts__op *op);
int ts__cg_mfma_guarded(const cg *g);
void ts__cg_mfma_prelude(const cg *g, ts__sb *sb);
void ts__cg_mma_decls(const cg *g, ts__sb *sb);
void ts__cg_mma_loop_plan(cg *g, const ts__op *bop);
int ts__cg_mma_carry_in_fragments(const cg *g, const ts__op *bop, int c);
void ts__cg_mma_loop_begin(cg *g, const ts__op *bop);
void ts__cg_mma_loop_end(cg *g, const ts__op *eop);
/* cg_random.c: rand, randint (Philox 4x32-10) */
void ts__cg_emit_rand(cg *g, const ts__op *op);
void ts__cg_random_prelude(const cg *g, ts__sb *sb);

/* cg_f8.c: 8-bit float conversions */
void ts__cg_f8_prelude(const cg *g, ts__sb *sb);
int ts__cg_uses_f8(const ts__kir *ir);

#endif
