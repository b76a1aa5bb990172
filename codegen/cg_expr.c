/* cg_expr.c: register types and literals per dtype, the math of unary,
 * binary and cast ops, and elementwise ops: register by register where the
 * operands' layouts allow, through local memory otherwise, and as floatN
 * vector code (fused into the consumer where possible) on targets with
 * vector types.
 *
 * Sections: types and literals; math; elementwise ops (scalar, vector). */
#include "cg.h"

/* ---------------------------------------------------------------- types and literals */

/* A literal in dtype d. */
void ts__cg_literal(const cg *g, ts_dtype d, double v, char *buf, size_t n) {
    if (is_int(d)) snprintf(buf, n, "(%s)%lld", d == TS_I64 ? "(long)" : "", (long long)v);
    else if (isnan(v)) snprintf(buf, n, "%s", g->d->nan_lit ? g->d->nan_lit : "(0.0f/0.0f)");
    else if (isinf(v)) snprintf(buf, n, "%s", inf_s(g, v < 0));
    else if (d == TS_F64) snprintf(buf, n, "%.17g%s", v, v == floor(v) && fabs(v) < 1e15 ? ".0" : "");
    else {
        char t[48];
        snprintf(t, sizeof t, "%.9g", (double)(float)v);
        snprintf(buf, n, "%s%sf", t, strpbrk(t, ".e") ? "" : ".0");
    }
    if (d == TS_I8) v = (double)(int8_t)(uint8_t)(long long)v; /* wrapped as the reference's full() */
    if (d == TS_I16) v = (double)(int16_t)(uint16_t)(long long)v;
    if (is_int(d) && d != TS_I64) snprintf(buf, n, "%lld", (long long)v);
    else if (d == TS_I64) snprintf(buf, n, "((long)%lld)", (long long)v);
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

void ts__cg_binary_expr(const cg *g, int op, ts_dtype dt, const char *x, const char *y, char *buf, size_t n) {
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
    case TS_MOD: /* truncating on every target (GLSL's % is undefined for negative operands) */
        snprintf(buf, n, "((%s) == 0 ? 0 : (%s) - ((%s) / (%s)) * (%s))", y, x, x, y, y);
        break;
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
void ts__cg_cast_expr(const cg *g, ts_dtype from, ts_dtype to, const char *x, char *buf, size_t n) {
    (void)from;
    char xp[1100], nz[1100];
    snprintf(xp, sizeof xp, "(%s)", x);
    snprintf(nz, sizeof nz, "((%s) != 0)", x);
    switch (to) {
    case TS_F16: snprintf(buf, n, "ts_round_f16(%s)", cx(g, "float", xp)); break;
    case TS_BF16: snprintf(buf, n, "ts_bf16_to_f32(ts_f32_to_bf16(%s))", cx(g, "float", xp)); break;
    case TS_F8_E4M3: snprintf(buf, n, "ts_e4m3_to_f32(ts_f32_to_e4m3(%s))", cx(g, "float", xp)); break;
    case TS_F8_E5M2: snprintf(buf, n, "ts_e5m2_to_f32(ts_f32_to_e5m2(%s))", cx(g, "float", xp)); break;
    case TS_BOOL: snprintf(buf, n, "%s", cx(g, reg_type(g, TS_BOOL), nz)); break;
    default: snprintf(buf, n, "%s", cx(g, reg_type(g, to), xp)); break;
    }
}

/* ---------------------------------------------------------------- elementwise ops */

/* Elementwise op (unary, binary, select, cast, broadcast, expand_dims):
 * operands with the result's layout are read register by register; the
 * others are materialized and read by broadcast index. */
int ts__cg_dims_equal(const ts__value *a, const ts__value *b) {
    return a->rank == b->rank && memcmp(a->dims, b->dims, sizeof(ts_tile) * (size_t)a->rank) == 0;
}

/* How an elementwise op reads operand o for its result: register by register
 * (same layout), one row value per row of the result (ROWREP operand), one
 * column value per column (rank-1 operand of the result's columns), or -1:
 * through local memory. Writes the register index expression. */
int ts__cg_operand_access(const cg *g, ts_val o, ts_val res, char *idx, size_t n) {
    const ts__value *ov = &g->ir->values[o], *rv = &g->ir->values[res];
    const layout *Lo = &g->lay[o], *L = &g->lay[res];
    if (ov->rank == 0) { snprintf(idx, n, "0"); return 1; }
    if (ts__cg_dims_equal(ov, rv) && same_layout(Lo, L)) { snprintf(idx, n, "j"); return 1; }
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

/* The vector width for op in result layout L, or 0 when the vector form
 * does not apply. */
int ts__cg_vector_width(const cg *g, const ts__op *op, const layout *L) {
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
        if (ts__cg_operand_access(g, o, op->result, idx, sizeof idx) <= 0) return 0;
        if (strcmp(idx, "j") == 0 || strncmp(idx, "(j %", 4) == 0) any_vec = 1;
    }
    return any_vec ? V : 0;
}

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
    ts__cg_operand_access(g, o, res, idx, sizeof idx);
    if (fast && g->deferred[o]) ts__cg_deferred_expr(g, o, idx, V, buf, n);
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
        else ts__cg_undefer(g, o);
    }
    /* es reads registers; ef, only when deferred loads are involved, reads them from global memory */
    char es[2 * TS__PX_MAX + 400], ef[2 * TS__PX_MAX + 400];
    for (int fast = 0; fast <= (ndl > 0); fast++) {
        char opnd[3][TS__PX_MAX + 64];
        for (int k = 0; k < nin; k++) vector_operand(g, op->in[k], op->result, V, fast, opnd[k], sizeof opnd[k]);
        char *e = fast ? ef : es;
        if (op->kind == TS__OP_UNARY) unary_expr(g, op->sub, TS_F32, opnd[0], e, sizeof es);
        else ts__cg_binary_expr(g, op->sub, TS_F32, opnd[0], opnd[1], e, sizeof es);
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
            ok = reads && ts__cg_operand_access(g, res, nx->result, idx, sizeof idx) > 0 && strcmp(idx, "j") == 0 &&
                 same_layout(&g->lay[nx->result], L) && ts__cg_vector_width(g, nx, &g->lay[nx->result]) == V;
        } else if (nx->kind == TS__OP_STORE) ok = ts__cg_store_fusable(g, nx, res, V);
        else if (nx->kind == TS__OP_REDUCE) ok = !ndl && nx->in[0] == res && ts__cg_fast_reduce(g, nx) && ts__cg_reduce_vw(g, nx) == V;
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
    ts__cg_declare(g, res);
    if (ndl) {
        char gd[4096];
        ts__cg_deferred_guard(g, NULL, dl, ndl, gd, sizeof gd);
        line(g, "if (%s) {", gd);
        line(g, "  for (int j = 0; j < %lld; j += %d) vstore%d(%s, 0, %s + j);", (long long)L->J, V, V, ef, vname(res));
        line(g, "} else {");
        g->indent++;
        ts__cg_emit_deferred(g, dl, ndl);
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
void ts__cg_emit_elementwise(cg *g, const ts__op *op) {
    ts_val res = op->result;
    const ts__value *rv = &g->ir->values[res];
    layout L;
    layout_of(g, res, &L);
    int nin = op->kind == TS__OP_SELECT ? 3 : op->kind == TS__OP_BINARY ? 2 : 1;
    int V = ts__cg_vector_width(g, op, &L);
    if (!V) ts__cg_flush_deferred(g, op);
    char ops_s[3][160];
    for (int k = 0; k < nin; k++) {
        ts_val o = op->in[k];
        char idx[96];
        if (op->kind != TS__OP_EXPAND_DIMS && ts__cg_operand_access(g, o, res, idx, sizeof idx) > 0) {
            snprintf(ops_s[k], sizeof ops_s[k], "%s[%s]", vname(o), idx);
            continue;
        }
        /* through local memory, into a temporary in the result's layout */
        ts__cg_materialize(g, o, -1, "0");
        line(g, "%s t%d_%d[%lld];", reg_type(g, g->ir->values[o].dtype), (int)res, k, (long long)L.J);
        g->priv += L.J;
        ts__cg_elem_loop_begin(g, &L, "j");
        char bidx[256];
        if (op->kind == TS__OP_EXPAND_DIMS) snprintf(bidx, sizeof bidx, "f_"); /* same linear order */
        else ts__cg_broadcast_index(g, o, rv->rank, bidx, sizeof bidx);
        char e[400];
        snprintf(e, sizeof e, "%s[ok_ ? (%s) : 0]", local_buf(g, g->ir->values[o].dtype), bidx);
        line(g, "t%d_%d[j] = %s;", (int)res, k, local_cast(g, g->ir->values[o].dtype, e, 0));
        ts__cg_elem_loop_end(g);
        snprintf(ops_s[k], sizeof ops_s[k], "t%d_%d[j]", (int)res, k);
    }
    if (V && emit_elementwise_vector(g, op, &L, nin, V)) return;
    ts__cg_declare(g, res);
    ts__cg_elem_loop_begin(g, &L, "j");
    char e[1024];
    ts_dtype in_dt = g->ir->values[op->in[0]].dtype;
    switch (op->kind) {
    case TS__OP_UNARY: unary_expr(g, op->sub, in_dt, ops_s[0], e, sizeof e); break;
    case TS__OP_BINARY: ts__cg_binary_expr(g, op->sub, in_dt, ops_s[0], ops_s[1], e, sizeof e); break;
    case TS__OP_SELECT: snprintf(e, sizeof e, "(%s ? %s : %s)", truth(g, ops_s[0]), ops_s[1], ops_s[2]); break;
    case TS__OP_CAST: ts__cg_cast_expr(g, in_dt, op->dtype, ops_s[0], e, sizeof e); break;
    default: snprintf(e, sizeof e, "%s", ops_s[0]); break;
    }
    /* integer results wrap to their dtype, as the reference does */
    {
        char ep[1100];
        snprintf(ep, sizeof ep, "(%s)", e);
        line(g, "%s[j] = %s;", vname(res), wrap_cast(g, rv->dtype, ep));
    }
    ts__cg_elem_loop_end(g);
}
