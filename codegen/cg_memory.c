/* cg_memory.c: global memory. Index and bounds expressions of loads,
 * stores and atomics; vector chunks with the whole-tile path (one hoisted
 * condition, straight vector moves) and the partial-tile path (per-chunk
 * checks, element fallback); gather; deferred loads (read from global memory
 * by their consumer instead of copied into registers).
 *
 * Sections: elements and indices; deferred loads; vector chunks; loads;
 * stores and atomics; gather. */
#include "cg.h"

static void whole_tile_cond(const cg *g, const ts__op *op, char *buf, size_t n);
static int chunk_vector(const cg *g, const ts__op *op, const layout *L);
static int vmem_elems(ts_dtype dt, int64_t nn);

/* ---------------------------------------------------------------- elements and indices */

/* Expression reading element `off` of tensor param p as a register value. */
void ts__cg_load_expr(const cg *g, int p, const char *off, char *buf, size_t n) {
    const ts__param *pa = &g->ir->params[p];
    switch (pa->dtype) {
    case TS_F16:
        if (g->d->native_half_loads) snprintf(buf, n, "vload_half(0, (%s const half*)(p_%s + (%s)))", g->d->global_ptr, pa->name, off);
        else snprintf(buf, n, "ts_f16_to_f32(p_%s[%s])", pa->name, off);
        break;
    case TS_BF16: snprintf(buf, n, "ts_bf16_to_f32(p_%s[%s])", pa->name, off); break;
    case TS_F8_E4M3: snprintf(buf, n, "ts_e4m3_to_f32(p_%s[%s])", pa->name, off); break;
    case TS_F8_E5M2: snprintf(buf, n, "ts_e5m2_to_f32(p_%s[%s])", pa->name, off); break;
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
    case TS_F8_E4M3: line(g, "p_%s[%s] = ts_f32_to_e4m3(%s);", pa->name, off, cx(g, "float", vp)); break;
    case TS_F8_E5M2: line(g, "p_%s[%s] = ts_f32_to_e5m2(%s);", pa->name, off, cx(g, "float", vp)); break;
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

/* 1 when tile t runs over dim d of pa's size (not a ranged loop): its
 * validity is the dim's range, one condition does for both. */
static int tile_spans(const cg *g, ts_tile t, const ts__param *pa, int d) {
    const ts__tile *tl = &g->ir->tiles[t];
    return !tl->ranged && tl->extent == pa->sizes[d];
}

/* 1 when every index of op is a constant, a point, or a tile spanning its
 * dim: the fast paths that assume so (deferred loads, dot operands read in
 * place) take it; other accesses go element by element with full masks. */
int ts__cg_access_plain(const cg *g, const ts__op *op) {
    const ts__param *pa = &g->ir->params[op->param];
    for (int d = 0; d < pa->rank; d++) {
        const ts_index *ix = &op->idx[d];
        if (ix->kind == TS_IDX_TILE && !tile_spans(g, ix->tile, pa, d)) return 0;
        if (ix->kind >= TS_IDX_SHIFT) return 0;
    }
    return 1;
}

/* 1 when every index of op is a constant, a point or a tile (spanning its
 * dim or not: the generic dot's operand paths check the full condition). */
int ts__cg_access_tiles(const cg *g, const ts__op *op) {
    for (int d = 0; d < g->ir->params[op->param].rank; d++)
        if (op->idx[d].kind >= TS_IDX_SHIFT) return 0;
    return 1;
}

/* i64 expression of rank-0 value v. */
static const char *scalar_i64(const cg *g, ts_val v, char *buf, size_t n) {
    char e[64];
    snprintf(e, sizeof e, "%s[0]", vname(v));
    snprintf(buf, n, "%s", cx(g, g->d->i64, e));
    return buf;
}

/* Offset and in-range condition of a load/store/atomic element whose value
 * dims are the access's dims, with multi-index vars e0.. (prefix). The
 * condition is the validity of every tile the access runs over and 0 <=
 * index < size for every dim; a value index reads ix<op>_<dim>[j] (its
 * elements in the access's layout, index_prepare). */
void ts__cg_index_exprs(const cg *g, const ts__op *op, const char *prefix, char *off, size_t on, char *cond, size_t cn) {
    const ts__param *pa = &g->ir->params[op->param];
    size_t ko = (size_t)snprintf(off, on, "off_%s", pa->name);
    size_t kc = 0;
    cond[0] = 0;
    int k = 0, opi = (int)(op - g->ir->ops);
    for (int d = 0; d < pa->rank; d++) {
        const ts_index *ix = &op->idx[d];
        char idx[256], c[512], sv[96];
        char cv[32];
        char ext[96];
        size_ext(g, pa, d, ext, sizeof ext);
        snprintf(cv, sizeof cv, "%lld", (long long)ix->value);
        const char *tn = ix->tile >= 0 && ix->tile < g->ir->ntiles ? g->ir->tiles[ix->tile].name : "";
        switch (ix->kind) {
        case TS_IDX_CONST:
            snprintf(idx, sizeof idx, "%s", cx(g, g->d->i64, cv));
            snprintf(c, sizeof c, "%s < %s", idx, ext);
            break;
        case TS_IDX_POINT:
            snprintf(idx, sizeof idx, "b_%s", tn);
            snprintf(c, sizeof c, "%s < %s", idx, ext);
            break;
        case TS_IDX_SHIFT:
            snprintf(idx, sizeof idx, "(b_%s + %s%d + %s)", tn, prefix, k, scalar_i64(g, ix->val, sv, sizeof sv));
            snprintf(c, sizeof c, "b_%s + %s%d < x_%s && %s >= 0 && %s < %s", tn, prefix, k, tn, idx, idx, ext);
            k++;
            break;
        case TS_IDX_SCALAR:
            snprintf(idx, sizeof idx, "%s", scalar_i64(g, ix->val, sv, sizeof sv));
            snprintf(c, sizeof c, "%s >= 0 && %s < %s", idx, idx, ext);
            break;
        case TS_IDX_VALUE: {
            char ie[64];
            snprintf(ie, sizeof ie, "ix%d_%d[j]", opi, d);
            snprintf(idx, sizeof idx, "%s", cx(g, g->d->i64, ie));
            size_t q = (size_t)snprintf(c, sizeof c, "%s >= 0 && %s < %s", idx, idx, ext);
            const ts__value *iv = &g->ir->values[ix->val];
            for (int j = 0; j < iv->rank; j++, k++)
                if (iv->dims[j] != TS_NONE && q < sizeof c) {
                    const char *un = g->ir->tiles[iv->dims[j]].name;
                    q += (size_t)snprintf(c + q, sizeof c - q, " && b_%s + %s%d < x_%s", un, prefix, k, un);
                }
            break;
        }
        default:
            snprintf(idx, sizeof idx, "(b_%s + %s%d)", tn, prefix, k);
            if (tile_spans(g, ix->tile, pa, d)) snprintf(c, sizeof c, "%s < %s", idx, ext);
            else if (g->ir->tiles[ix->tile].ranged) /* a range may start below 0 */
                snprintf(c, sizeof c, "%s >= 0 && %s < %s && %s < x_%s", idx, idx, ext, idx, tn);
            else snprintf(c, sizeof c, "%s < %s && %s < x_%s", idx, ext, idx, tn);
            k++;
            break;
        }
        if (ko < on) ko += (size_t)snprintf(off + ko, on - ko, " + %s * st_%s_%d", idx, pa->name, d);
        if (kc < cn) kc += (size_t)snprintf(cond + kc, cn - kc, "%s%s", kc ? " && " : "", c);
    }
    if (!kc) snprintf(cond, cn, "1");
}

/* Value indices of op, each read into the access's layout L as a private
 * array ix<op>_<dim> (through local memory: the index value's own layout
 * differs). Element (.., e_k .. e_k+r-1, ..) of the access reads element
 * (e_k .. e_k+r-1) of the index value. */
static void index_prepare(cg *g, const ts__op *op, const layout *L) {
    const ts__param *pa = &g->ir->params[op->param];
    int k = 0, opi = (int)(op - g->ir->ops);
    for (int d = 0; d < pa->rank; d++) {
        const ts_index *ix = &op->idx[d];
        if (ix->kind == TS_IDX_TILE || ix->kind == TS_IDX_SHIFT) k++;
        if (ix->kind != TS_IDX_VALUE) continue;
        const ts__value *iv = &g->ir->values[ix->val];
        int64_t shape[TS_MAX_RANK];
        ts__value_shape(g->ir, g->plan, ix->val, shape);
        ts__cg_materialize(g, ix->val, -1, "0");
        line(g, "int ix%d_%d[%lld];", opi, d, (long long)L->J);
        g->priv += L->J;
        ts__cg_elem_loop_begin(g, L, "j");
        char fl[256];
        size_t q = (size_t)snprintf(fl, sizeof fl, "0");
        int64_t stride = 1;
        for (int j = iv->rank - 1; j >= 0 && q < sizeof fl; j--) {
            q += (size_t)snprintf(fl + q, sizeof fl - q, " + e%d * %lld", k + j, (long long)stride);
            stride *= shape[j];
        }
        char e[320], ce[400];
        snprintf(e, sizeof e, "%s[ok_ ? %s : 0]", local_buf(g, iv->dtype), fl);
        snprintf(ce, sizeof ce, "%s", cx(g, "int", e));
        line(g, "ix%d_%d[j] = %s;", opi, d, ce);
        ts__cg_elem_loop_end(g);
        k += iv->rank;
    }
}

static int has_value_index(const cg *g, const ts__op *op) {
    for (int d = 0; d < g->ir->params[op->param].rank; d++)
        if (op->idx[d].kind == TS_IDX_VALUE) return 1;
    return 0;
}

/* 1 when the dims of value v are the TILE indices of load/store op, in
 * order: element e0.. of v is element (b_t + e0, ..) of the tensor. */
static int straight_access(const cg *g, const ts__op *op, ts_val v) {
    const ts__param *pa = &g->ir->params[op->param];
    const ts__value *vv = &g->ir->values[v];
    int r = 0;
    for (int d = 0; d < pa->rank; d++) {
        if (op->idx[d].kind == TS_IDX_VALUE) return 0;
        if ((op->idx[d].kind == TS_IDX_TILE || op->idx[d].kind == TS_IDX_SHIFT) && (r >= vv->rank || vv->dims[r++] != op->idx[d].tile)) return 0;
    }
    return r == vv->rank;
}

/* A store that can take value v's floatN expression of width V in place of
 * its registers: f32, straight, vector chunks. */
int ts__cg_store_fusable(const cg *g, const ts__op *st, ts_val v, int V) {
    const ts__param *pa = &g->ir->params[st->param];
    if (st->kind != TS__OP_STORE || st->in[0] != v || pa->dtype != TS_F32 || g->ir->values[v].dtype != TS_F32 || !straight_access(g, st, v)) return 0;
    int nv = chunk_vector(g, st, &g->lay[v]);
    return nv && nv % V == 0;
}

/* ---------------------------------------------------------------- deferred loads */

/* Deferred loads: an f32 load whose every use is an elementwise op in
 * vector form reading it register by register or by column, or a fast
 * reduction folding it in floatN, is not copied into registers at its op.
 * Each consumer reads it straight from global memory (vloadN) when the
 * load's whole tile is in range, and emits the load itself only on the
 * other path. Layer norm's w and b: 2 x 4 KiB of private copies a row less;
 * softmax's x is read twice from cache instead of copied once (0.85 ->
 * 0.74 ms on PoCL). Nothing may write memory between the load and its last
 * consumer. */
void ts__cg_find_deferred_loads(cg *g) {
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
        if (!nv || !straight_access(g, op, v) || !ts__cg_access_plain(g, op)) continue;
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
                int V = ts__cg_vector_width(g, co, &g->lay[co->result]);
                char idx[96];
                ok = V && nv % V == 0 && ts__cg_operand_access(g, v, co->result, idx, sizeof idx) > 0 &&
                     (strcmp(idx, "j") == 0 || strncmp(idx, "(j %", 4) == 0);
            } else if (ok && co->kind == TS__OP_REDUCE) {
                int w = ts__cg_fast_reduce(g, co) ? ts__cg_reduce_vw(g, co) : 0;
                ok = w && nv % w == 0;
            } else ok = 0;
        }
        if (ok && seen == g->uses[v]) g->deferred[v] = 1;
    }
}

/* The load op that defines (deferred) load value v. */
const ts__op *ts__cg_load_op_of(const cg *g, ts_val v) { return &g->ir->ops[g->ir->values[v].def_op]; }

/* Deferred load v becomes an ordinary one: emitted here, read from registers after. */
void ts__cg_undefer(cg *g, ts_val v) {
    g->deferred[v] = 0;
    ts__cg_emit_load(g, ts__cg_load_op_of(g, v));
}

/* Emits the deferred loads among op's operands at this point. */
void ts__cg_flush_deferred(cg *g, const ts__op *op) {
    for (int k = 0; k < 3; k++)
        if (op->in[k] != TS_NONE && g->deferred[op->in[k]]) ts__cg_undefer(g, op->in[k]);
}

/* floatV read of deferred load o at its register index idx, straight from
 * global memory (valid under whole_tile_cond of the load). */
void ts__cg_deferred_expr(const cg *g, ts_val o, const char *idx, int V, char *buf, size_t n) {
    const ts__op *op = ts__cg_load_op_of(g, o);
    const ts__param *pa = &g->ir->params[op->param];
    const layout *L = &g->lay[o];
    char e[TS_MAX_RANK][320], r[256], rc[256];
    ts__cg_std_col_expr(g, L, idx, rc, sizeof rc);
    snprintf(e[L->rank - 1], sizeof e[0], "(%s)", rc);
    ts__cg_std_row_expr(g, L, idx, rc, sizeof rc);
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
void ts__cg_deferred_guard(const cg *g, const char *base, const ts_val *dl, int ndl, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "%s", base ? base : ndl ? "" : "1");
    for (int q = 0; q < ndl && k < n; q++) {
        char c[1024];
        whole_tile_cond(g, ts__cg_load_op_of(g, dl[q]), c, sizeof c);
        k += (size_t)snprintf(buf + k, n - k, "%s(%s)", base || q ? " && " : "", c);
    }
}

/* Emits the deferred loads dl (the path where their fast form is not valid). */
void ts__cg_emit_deferred(cg *g, const ts_val *dl, int ndl) {
    for (int q = 0; q < ndl; q++) ts__cg_emit_load(g, ts__cg_load_op_of(g, dl[q]));
}

/* ---------------------------------------------------------------- vector chunks */

/* Vector width usable for whole chunks of a load/store of `op` with value
 * layout L: the chunk is nn contiguous elements along the tensor's last dim
 * (checked at run time: stride 1 and fully in range); 0 when not usable. */
static int chunk_vector(const cg *g, const ts__op *op, const layout *L) {
    const ts__param *pa = &g->ir->params[op->param];
    if (has_value_index(g, op)) return 0; /* element by element */
    ts_index_kind lk = op->idx[pa->rank - 1].kind;
    if (lk == TS_IDX_SHIFT && L->kind == LAYOUT_STD && L->rank >= 1) lk = TS_IDX_TILE; /* a shifted chunk is still contiguous */
    if (!g->d->has_vector_types && g->d->vec_mem && L->kind == LAYOUT_STD && L->rank >= 1) /* 128-bit moves */
        return vmem_elems(pa->dtype, L->nn) && lk == TS_IDX_TILE ? (int)L->nn : 0;
    if (!g->d->has_vector_types || L->kind != LAYOUT_STD || L->rank < 1) return 0;
    if (L->nn != 2 && L->nn != 4 && L->nn != 8 && L->nn != 16) return 0;
    if (pa->dtype != TS_F32 && pa->dtype != TS_F16) return 0;
    if (pa->dtype == TS_F16 && !g->d->native_half_loads) return 0; /* vload_halfN */
    if (lk != TS_IDX_TILE) return 0;
    return (int)L->nn;
}

/* 128-bit moves on vec_mem targets (CUDA, HIP: a 16-byte aligned struct
 * through a pointer cast; GLSL: a vec4/uvec4 view of the storage buffer).
 * f32 moves four elements (ts_f4 / vec4); f16 and bf16 move eight as four
 * packed words (ts_u4 / uvec4), or four as two (ts_u2 / uvec2) when the
 * chunk is four wide. A chunk is nn / E moves; every move must be aligned
 * to its size: vec_align_cond below. */
static int vmem_elems(ts_dtype dt, int64_t nn) {
    if (dt == TS_F32) return nn % 4 == 0 ? 4 : 0;
    if (dt == TS_F16 || dt == TS_BF16) return nn % 8 == 0 ? 8 : nn == 4 ? 4 : 0;
    return 0;
}

/* The type and the expression of move m of the chunk at o_. */
static void vmem_ref(const cg *g, const ts__param *pa, int E, int m, const char **type, char *buf, size_t n) {
    int f32 = pa->dtype == TS_F32, view = g->d->vec_mem == TS__VMEM_VIEW;
    *type = f32 ? (view ? "vec4" : "ts_f4") : E == 8 ? (view ? "uvec4" : "ts_u4") : (view ? "uvec2" : "ts_u2");
    if (view) snprintf(buf, n, "p%d_%s[(o_ + %d) >> %d]", E, pa->name, m * E, E == 8 ? 3 : 2);
    else snprintf(buf, n, "(*(%s%s *)(p_%s + o_ + %d))", "", *type, pa->name, m * E);
}

/* Registers j0..j0+nn-1 of value v (or `fill` where !okvar) from the chunk at o_. */
static void vmem_load_chunk(cg *g, const ts__param *pa, ts_val v, int64_t nn, const char *okvar, const char *fill) {
    int E = vmem_elems(pa->dtype, nn);
    static const char comp[] = "xyzw";
    const char *conv = pa->dtype == TS_BF16 ? "ts_bf16_to_f32" : "ts_f16_to_f32";
    const char *u16 = g->d->mem_u16 ? g->d->mem_u16 : "ushort";
    for (int m = 0; m < nn / E; m++) {
        const char *type;
        char e[256];
        vmem_ref(g, pa, E, m, &type, e, sizeof e);
        line(g, "{ const %s q_ = %s;", type, e);
        for (int c = 0; c < E; c++) {
            char x[160];
            if (pa->dtype == TS_F32) snprintf(x, sizeof x, "q_.%c", comp[c]);
            else {
                char w[64];
                snprintf(w, sizeof w, c % 2 ? "(q_.%c >> 16)" : "(q_.%c & 0xffffu)", comp[c / 2]);
                snprintf(x, sizeof x, "%s(%s)", conv, cx(g, u16, w));
            }
            if (okvar) line(g, "  %s[j0 + %d] = %s ? %s : %s;", vname(v), m * E + c, okvar, x, fill);
            else line(g, "  %s[j0 + %d] = %s;", vname(v), m * E + c, x);
        }
        line(g, "}");
    }
}

static void vmem_store_chunk(cg *g, const ts__param *pa, ts_val v, int64_t nn) {
    int E = vmem_elems(pa->dtype, nn);
    const char *r = vname(v), *to = pa->dtype == TS_BF16 ? "ts_f32_to_bf16" : "ts_f32_to_f16";
    int view = g->d->vec_mem == TS__VMEM_VIEW;
    for (int m = 0; m < nn / E; m++) {
        const char *type;
        char ref[256], parts[4][256];
        vmem_ref(g, pa, E, m, &type, ref, sizeof ref);
        int nw = pa->dtype == TS_F32 ? 4 : E / 2;
        for (int c = 0; c < nw; c++) {
            int j = m * E + (pa->dtype == TS_F32 ? c : 2 * c);
            if (pa->dtype == TS_F32) snprintf(parts[c], sizeof parts[c], "%s[j0 + %d]", r, j);
            else {
                char lo[96], hi[96];
                snprintf(lo, sizeof lo, "%s(%s[j0 + %d])", to, r, j);
                snprintf(hi, sizeof hi, "%s(%s[j0 + %d])", to, r, j + 1);
                char l2[128], h2[128];
                snprintf(l2, sizeof l2, "%s", cx(g, "uint", lo));
                snprintf(h2, sizeof h2, "%s", cx(g, "uint", hi));
                snprintf(parts[c], sizeof parts[c], "(%s | (%s << 16))", l2, h2);
            }
        }
        if (nw == 4) line(g, view ? "%s = %s(%s, %s, %s, %s);" : "%s = %s{%s, %s, %s, %s};", ref, type, parts[0], parts[1], parts[2], parts[3]);
        else line(g, view ? "%s = %s(%s, %s);" : "%s = %s{%s, %s};", ref, type, parts[0], parts[1]);
    }
}

/* On vec_mem targets, every move of a chunk of `op` is aligned when the
 * tensor's first element is and every stride but the last (1) is a
 * multiple of the move (chunks start at multiples of nn along the last
 * dim: blocks and nn are powers of two). "" elsewhere. */
static void vec_align_cond(const cg *g, const ts__op *op, char *buf, size_t n) {
    const ts__param *pa = &g->ir->params[op->param];
    buf[0] = 0;
    if (g->d->has_vector_types || !g->d->vec_mem) return;
    int E = vmem_elems(pa->dtype, g->lay[op->kind == TS__OP_LOAD ? op->result : op->in[0]].nn);
    int bytes = E * (int)ts_dtype_size(pa->dtype);
    size_t k;
    if (g->d->vec_mem == TS__VMEM_VIEW) k = (size_t)snprintf(buf, n, " && (off_%s & %d) == 0", pa->name, E - 1);
    else k = (size_t)snprintf(buf, n, " && (((unsigned long long)(p_%s + off_%s)) & %d) == 0", pa->name, pa->name, bytes - 1);
    for (int d = 0; d + 1 < pa->rank && k < n; d++) k += (size_t)snprintf(buf + k, n - k, " && (st_%s_%d & %d) == 0", pa->name, d, E - 1);
    const ts_index *lx = &op->idx[pa->rank - 1];
    if (lx->kind == TS_IDX_SHIFT && k < n) {
        char sv[96];
        k += (size_t)snprintf(buf + k, n - k, " && (%s & %d) == 0", scalar_i64(g, lx->val, sv, sizeof sv), E - 1);
    }
    /* a ranged loop's tile starts at lo + k BLOCK: any element, so its chunks may be unaligned */
    if ((lx->kind == TS_IDX_SHIFT || lx->kind == TS_IDX_TILE) && g->ir->tiles[lx->tile].ranged && k < n)
        k += (size_t)snprintf(buf + k, n - k, " && (b_%s & %d) == 0", g->ir->tiles[lx->tile].name, E - 1);
}

/* Opens the chunk loop of a vectorized load/store: declares j0 and the
 * element variables of the chunk's first element, o_ (its offset) and vec_
 * (the whole chunk can move as one vector). */
/* Opens the loop over the nn-element chunks of layout L: j0, the element
 * variables of the chunk's first element and o_, its offset. */
static void chunk_loop_begin(cg *g, const layout *L, const char *off, int unroll) {
    if (unroll && g->d->registers_only) ts__cg_unroll_short(g, L->J); /* every element of the loop is a register */
    else if (unroll) ts__cg_unroll_short(g, L->J / L->nn);
    line(g, "for (int ch_ = 0; ch_ < %lld; ch_++) {", (long long)(L->J / L->nn));
    g->indent++;
    line(g, "const int j0 = ch_ * %lld;", (long long)L->nn);
    ts__cg_elem_decls(g, L, "j0");
    line(g, "const %s o_ = %s;", g->d->i64, off);
}

static void chunk_begin(cg *g, const ts__op *op, const layout *L, const char *okvar, const char *off, const char *cond) {
    const ts__param *pa = &g->ir->params[op->param];
    const ts__tile *lt = &g->ir->tiles[op->idx[pa->rank - 1].tile];
    /* no unroll pragma on the CPU: this is the partial-tile path, kept small (compile time) */
    chunk_loop_begin(g, L, off, g->d->registers_only); /* GPUs: unrolled up to TS__GPU_UNROLL_MAX */
    char al[512];
    vec_align_cond(g, op, al, sizeof al);
    char end[400] = "";
    const ts_index *lx = &op->idx[pa->rank - 1];
    if (lx->kind == TS_IDX_SHIFT || !tile_spans(g, lx->tile, pa, pa->rank - 1)) { /* the chunk's last element in the dim's range too */
        char ext[96], sv[96];
        size_ext(g, pa, pa->rank - 1, ext, sizeof ext);
        snprintf(end, sizeof end, " && b_%s + e%d + %s%s + %lld <= %s", lt->name, L->rank - 1, lx->kind == TS_IDX_SHIFT ? scalar_i64(g, lx->val, sv, sizeof sv) : "0",
                 "", (long long)L->nn, ext);
    }
    line(g, "const %s vec_ = %s && st_%s_%d == 1 && %s && b_%s + e%d + %lld <= x_%s%s%s;", flag_t(g), okvar, pa->name, pa->rank - 1, cond, lt->name,
         L->rank - 1, (long long)L->nn, lt->name, end, al);
}

/* The element loop of a chunk that cannot move as one vector (inside the
 * chunk's "} else {"): binds j, the element variables and o_ for each
 * element. */
static void chunk_elems_begin(cg *g, const layout *L, int nv, const char *off) {
    if (g->d->registers_only) line(g, "%s", g->d->unroll);
    line(g, "for (int jj_ = 0; jj_ < %d; jj_++) {", nv);
    g->indent++;
    line(g, "const int j = j0 + jj_;");
    ts__cg_elem_decls(g, L, "j");
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
        char sv[96];
        if (ix->kind == TS_IDX_CONST) k += (size_t)snprintf(buf + k, n - k, " && %lld < %s", (long long)ix->value, ext);
        else if (ix->kind == TS_IDX_POINT) k += (size_t)snprintf(buf + k, n - k, " && b_%s < %s", g->ir->tiles[ix->tile].name, ext);
        else if (ix->kind == TS_IDX_SCALAR) {
            scalar_i64(g, ix->val, sv, sizeof sv);
            k += (size_t)snprintf(buf + k, n - k, " && %s >= 0 && %s < %s", sv, sv, ext);
        } else if (ix->kind == TS_IDX_SHIFT) { /* every element's index in range, and the tile whole */
            const char *tn = g->ir->tiles[ix->tile].name;
            long long blk = (long long)g->plan->block[ix->tile];
            scalar_i64(g, ix->val, sv, sizeof sv);
            k += (size_t)snprintf(buf + k, n - k, " && b_%s + %s >= 0 && b_%s + %s + %lld <= %s && b_%s + %lld <= x_%s", tn, sv, tn, sv, blk, ext, tn, blk, tn);
        } else {
            const char *tn = g->ir->tiles[ix->tile].name;
            long long blk = (long long)g->plan->block[ix->tile];
            k += (size_t)snprintf(buf + k, n - k, " && b_%s + %lld <= %s", tn, blk, ext);
            if (g->ir->tiles[ix->tile].ranged) k += (size_t)snprintf(buf + k, n - k, " && b_%s >= 0", tn);
            if (d == pa->rank - 1 || !tile_spans(g, ix->tile, pa, d)) k += (size_t)snprintf(buf + k, n - k, " && b_%s + %lld <= x_%s", tn, blk, tn);
        }
    }
    if (k < n) vec_align_cond(g, op, buf + k, n - k);
}

/* ---------------------------------------------------------------- loads */

/* Registers j0..j0+nv-1 of res from the chunk at o_ in one vector move
 * (OpenCL vloadN / vload_halfN, or vec_mem words); with okvar, padding rows
 * (!okvar) read fill. */
static void load_chunk(cg *g, const ts__param *pa, ts_val res, int nv, const char *okvar, const char *fill) {
    if (!g->d->has_vector_types) {
        vmem_load_chunk(g, pa, res, nv, okvar, fill);
        return;
    }
    char vl[1200];
    if (pa->dtype == TS_F32) snprintf(vl, sizeof vl, "vload%d(0, p_%s + o_)", nv, pa->name);
    else snprintf(vl, sizeof vl, "vload_half%d(0, (%s const half*)(p_%s + o_))", nv, g->d->global_ptr, pa->name);
    if (okvar) line(g, "vstore%d(%s ? %s : (float%d)(%s), 0, %s + j0);", nv, okvar, vl, nv, fill, vname(res));
    else line(g, "vstore%d(%s, 0, %s + j0);", nv, vl, vname(res));
}

void ts__cg_emit_load(cg *g, const ts__op *op) {
    ts_val res = op->result;
    ts__cg_declare(g, res);
    layout L;
    layout_of(g, res, &L);
    char off[1024], cond[1024], ex[1400], fill[64];
    ts__cg_index_exprs(g, op, "e", off, sizeof off, cond, sizeof cond);
    ts__cg_literal(g, g->ir->values[res].dtype, op->value, fill, sizeof fill);
    ts__cg_load_expr(g, op->param, "o_", ex, sizeof ex);
    int nv = chunk_vector(g, op, &L);
    if (!nv) index_prepare(g, op, &L);
    if (nv) {
        const ts__param *pa = &g->ir->params[op->param];
        char wt[1024];
        whole_tile_cond(g, op, wt, sizeof wt);
        line(g, "if (%s) {", wt);
        g->indent++;
        chunk_loop_begin(g, &L, off, 1);
        load_chunk(g, pa, res, nv, "ok_", fill);
        close_block(g); /* chunk loop */
        g->indent--;
        line(g, "} else {");
        g->indent++;
        chunk_begin(g, op, &L, "ok_", off, cond);
        line(g, "if (vec_) {");
        g->indent++;
        load_chunk(g, pa, res, nv, NULL, NULL);
        g->indent--;
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
    ts__cg_elem_loop_begin(g, &L, "j");
    line(g, "const %s o_ = %s;", g->d->i64, off);
    line(g, "%s[j] = (ok_ && %s) ? %s : %s;", vname(res), cond, cx(g, reg_type(g, g->ir->values[res].dtype), ex), fill);
    ts__cg_elem_loop_end(g);
}

/* ---------------------------------------------------------------- stores and atomics */

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
    if (!g->d->has_vector_types) { /* vec_mem: no pending expressions on these targets */
        vmem_store_chunk(g, pa, v, nv);
        return;
    }
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
    ts__cg_deferred_guard(g, wt, p->dl, p->slow ? p->ndl : 0, gd, sizeof gd);
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
    if (p->slow) ts__cg_emit_deferred(g, p->dl, p->ndl);
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

void ts__cg_emit_store(cg *g, const ts__op *op, int atomic) {
    const ts__param *pa = &g->ir->params[op->param];
    /* the index shape: TILE dims in order */
    ts_val v = op->in[0];
    const ts__value *vv = &g->ir->values[v];
    int r = 0;
    ts_tile dims[TS_MAX_RANK];
    for (int d = 0; d < pa->rank; d++) {
        const ts_index *ix = &op->idx[d];
        if (ix->kind == TS_IDX_TILE || ix->kind == TS_IDX_SHIFT) dims[r++] = ix->tile;
        else if (ix->kind == TS_IDX_VALUE)
            for (int j = 0; j < g->ir->values[ix->val].rank; j++) dims[r++] = g->ir->values[ix->val].dims[j];
    }
    int direct = straight_access(g, op, v);
    char off[1024], cond[1024], src[256];
    ts__cg_index_exprs(g, op, "e", off, sizeof off, cond, sizeof cond);
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
        } else ts__cg_elem_loop_begin(g, &L, "j");
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
        } else ts__cg_elem_loop_end(g);
        return;
    }
    /* broadcast store: materialize, then every element of the index shape */
    layout L;
    int64_t ishape[TS_MAX_RANK];
    for (int d = 0; d < r; d++) ishape[d] = dims[d] == TS_NONE ? 1 : g->plan->block[dims[d]];
    ts__cg_std_layout(g, r, ishape, &L);
    index_prepare(g, op, &L); /* value indices first: both may go through ts_li */
    ts__cg_materialize(g, v, -1, "0");
    ts__cg_elem_loop_begin(g, &L, "j");
    char idx[256];
    ts__cg_broadcast_index(g, v, r, idx, sizeof idx);
    line(g, "const %s o_ = %s;", g->d->i64, off);
    line(g, "if (own_ && %s) {", cond);
    g->indent++;
    snprintf(src, sizeof src, "%s[%s]", local_buf(g, vv->dtype), idx);
    if (atomic) {
        emit_atomic(g, pa, src);
    } else store_stmt(g, op->param, "o_", src);
    g->indent--;
    line(g, "}");
    ts__cg_elem_loop_end(g);
}

/* ---------------------------------------------------------------- gather */

void ts__cg_emit_gather(cg *g, const ts__op *op) {
    ts_val res = op->result;
    const ts__param *pa = &g->ir->params[op->param];
    const ts__value *iv = &g->ir->values[op->in[0]];
    ts__cg_declare(g, res);
    layout L;
    layout_of(g, res, &L);
    /* ids [A] are needed by row: through local memory */
    ts__cg_materialize(g, op->in[0], -1, "0");
    const ts__tile *at = &g->ir->tiles[iv->dims[0]], *ct = &g->ir->tiles[op->idx[0].tile];
    char ex[512], fill[64];
    ts__cg_literal(g, pa->dtype, op->value, fill, sizeof fill);
    ts__cg_elem_loop_begin(g, &L, "j");
    line(g, "const %s id_ = %s;", g->d->i64, cx(g, g->d->i64, "ts_li[e0]"));
    line(g, "const %s col_ = b_%s + e1;", g->d->i64, ct->name);
    line(g, "const %s in_ = ok_ && b_%s + e0 < x_%s && id_ >= 0 && id_ < s_%s && col_ < x_%s;", flag_t(g), at->name, at->name,
         g->ir->sizes[pa->sizes[0]].name[0] ? g->ir->sizes[pa->sizes[0]].name : "0", ct->name);
    line(g, "const %s o_ = in_ ? off_%s + id_ * st_%s_0 + col_ * st_%s_1 : 0;", g->d->i64, pa->name, pa->name, pa->name);
    ts__cg_load_expr(g, op->param, "o_", ex, sizeof ex);
    line(g, "%s[j] = in_ ? %s : %s;", vname(res), cx(g, reg_type(g, pa->dtype), ex), fill);
    ts__cg_elem_loop_end(g);
    if (!g->ir->sizes[pa->sizes[0]].name[0]) cg_fail(g, TS_ERR_UNSUPPORTED, "gather: tables with a fixed row count are not lowered yet");
}
