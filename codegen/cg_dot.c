/* cg_dot.c: dot. The result lives in each thread's register micro-tile
 * (micro_m x micro_n); operands are read straight from global memory when
 * they are loads used only by the dot (stage=0, the CPU form; an interior
 * fast path with a constant k trip count) or staged through local memory
 * (stage=1). */
#include "cg.h"

/* A dot operand read directly from global memory: the load (possibly
 * under a transpose) whose only use is this dot, when stage=0. */
/* A load a dot may read in place: plain accesses; on the generic f32 path
 * also tiles not spanning their dims (ranged loops), whose fast paths
 * check the full condition. (f32 dots never take tensor cores.) */
static int direct_ok(const cg *g, const ts__op *ld) {
    if (ts__cg_access_plain(g, ld)) return 1;
    return ts__cg_access_tiles(g, ld) && g->ir->params[ld->param].dtype == TS_F32 && !g->d->dot_vec4;
}

const ts__op *ts__cg_direct_load(const cg *g, ts_val v, int *transposed) {
    const ts__op *def = &g->ir->ops[g->ir->values[v].def_op];
    *transposed = 0;
    /* dot_vec4 dialects read (or stage) straight loads themselves at any stage */
    if (g->plan->stage && !g->d->dot_vec4) return NULL;
    if (def->kind == TS__OP_TRANSPOSE && g->uses[v] == 1) {
        if (g->plan->stage) return NULL;
        const ts__op *inner = &g->ir->ops[g->ir->values[def->in[0]].def_op];
        if (inner->kind == TS__OP_LOAD && g->uses[def->in[0]] == 1 && direct_ok(g, inner)) {
            *transposed = 1;
            return inner;
        }
        return NULL;
    }
    if (def->kind == TS__OP_LOAD && g->uses[v] == 1 && direct_ok(g, def)) return def;
    return NULL;
}

/* Expression for element (row, col) of a dot operand read directly from
 * global memory; emits the index bindings it needs as statements first. */
static void dot_operand_expr(cg *g, ts_val v, const ts__op *ld, int transposed, const char *row, const char *col, char *buf, size_t n) {
    const int idot = g->ir->values[v].dtype == TS_I8; /* i8 x i8 -> i32: int operands and sums */
    char off[1024], cond[1024], ex[1400], pre[16];
    snprintf(pre, sizeof pre, "dq%d_", (int)v);
    ts__cg_index_exprs(g, ld, pre, off, sizeof off, cond, sizeof cond);
    ts__cg_load_expr(g, ld->param, off, ex, sizeof ex);
    /* the load's value dims are (e0, e1); a transposed operand swaps them */
    line(g, "const int %s0 = %s; const int %s1 = %s;", pre, transposed ? col : row, pre, transposed ? row : col);
    snprintf(buf, n, "((%s) ? %s : %s)", cond, cx(g, idot ? "int" : "float", ex), idot ? "0" : "0.0f");
}

static void emit_dot_plain(cg *g, const ts__op *op);

void ts__cg_emit_dot(cg *g, const ts__op *op) {
    if (ts__cg_mfma_selected(g)) { /* HIP (MFMA), or its emulation on OpenCL with tensor_cores=2 */
        if (ts__cg_mfma_applies(g, op)) {
            ts__cg_emit_dot_mfma(g, op);
            if (ts__cg_mfma_guarded(g)) { /* HIP: #if TS_MFMA ... #else the ordinary dot #endif (the arch is known only to the compiler) */
                int64_t priv = g->priv;
                g->priv -= g->lay[op->result].J; /* one of the two branches' declarations of the result is compiled */
                emit_dot_plain(g, op);
                if (g->priv < priv) g->priv = priv;
                line(g, "#endif");
            }
            return;
        }
        ts__cg_mfma_explain(g, op); /* where it does not apply: the reason, in the source */
    } else if (ts__cg_mma_applies(g, op)) {
        ts__cg_emit_dot_mma(g, op);
        return;
    } else ts__cg_mma_explain(g, op); /* tensor_cores=1 where it does not apply: the reason, in the source */
    emit_dot_plain(g, op);
}

static void emit_dot_plain(cg *g, const ts__op *op) {
    if (ts__cg_dot_glsl_ok(g, op)) {
        ts__cg_emit_dot_glsl(g, op);
        return;
    }
    ts_val a = op->in[0], b = op->in[1], acc = op->in[2], res = op->result;
    const ts__value *av = &g->ir->values[a];
    /* i8 operands: exact int multiply-adds into i32 (no vector or fast path) */
    const int idot = g->ir->values[res].dtype == TS_I32;
    const char *et = idot ? "int" : "float", *zero = idot ? "0" : "0.0f", *lbuf = idot ? "ts_li" : "ts_lf";
    int64_t BM = g->plan->block[av->dims[0]], BK = g->plan->block[av->dims[1]];
    int64_t BN = g->plan->block[g->ir->values[b].dims[1]];
    const ts__tile *kt = &g->ir->tiles[av->dims[1]];
    layout L;
    layout_of(g, res, &L);
    int ta, tb;
    const ts__op *la = ts__cg_direct_load(g, a, &ta), *lb = ts__cg_direct_load(g, b, &tb);
    /* Staged operands live in ts_lf: A at 0, B at BM*BK. */
    int64_t aoff = 0, boff = BM * BK;
    if (!la || !lb) ts__cg_need_local(g, idot ? TS_I32 : TS_F32, BM * BK + BK * BN);
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
        ts__cg_elem_loop_begin(g, &Lv, "j");
        char vj[40];
        snprintf(vj, sizeof vj, "%s[j]", vname(v));
        line(g, "if (own_) %s[%lld + f_] = (b_%s + e%d < x_%s) ? %s : %s;", lbuf, (long long)base, kt->name, kaxis, kt->name, cx(g, et, vj), zero);
        ts__cg_elem_loop_end(g);
    }
    if (!la || !lb) line(g, "%s", g->d->barrier);
    ts__cg_declare(g, res);
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
    int vec = !idot && g->d->has_vector_types && (L.nn == 4 || L.nn == 8 || L.nn == 16);
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
        ts__cg_index_exprs(g, la, "fa_", offa, sizeof offa, conda, sizeof conda);
        ts__cg_index_exprs(g, lb, "fb_", offb, sizeof offb, condb, sizeof condb);
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
    if (g->plan->unroll > 1 && g->d->unroll[0] == '#') line(g, "#pragma unroll %d", g->plan->unroll);
    line(g, "for (int k_ = 0; k_ < kn_; k_++) {");
    g->indent++;
    /* B row chunk(s) */
    char ex[4096], rowe[64], cole[96];
    line(g, "%s bq_[%lld];", et, (long long)(L.cq * L.nn));
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
        ts__cg_index_exprs(g, lb, pre, off, sizeof off, cond, sizeof cond);
        const ts__tile *nt = &g->ir->tiles[g->ir->values[b].dims[1]];
        line(g, "const int %s0 = k_; const int %s1 = c0_;", pre, pre);
        /* a tile not spanning its dim (a ranged loop): the chunk's first element in range too */
        char extra[1100] = "";
        if (!ts__cg_access_plain(g, lb)) snprintf(extra, sizeof extra, " && (%s)", cond);
        line(g, "if (st_%s_%d == 1 && b_%s + c0_ + %lld <= x_%s%s) {", pb->name, pb->rank - 1, nt->name, (long long)L.nn, nt->name, extra);
        line(g, "  vstore%lld(vload%lld(0, p_%s + (%s)), q, bq_);", (long long)L.nn, (long long)L.nn, pb->name, off);
        line(g, "} else {");
        g->indent++;
    }
    line(g, "%s", g->d->unroll);
    line(g, "for (int jj = 0; jj < %lld; jj++) {", (long long)L.nn);
    g->indent++;
    snprintf(cole, sizeof cole, "c0_ + jj");
    if (lb) dot_operand_expr(g, b, lb, tb, "k_", cole, ex, sizeof ex);
    else snprintf(ex, sizeof ex, "%s[%lld + k_ * %lld + c0_ + jj]", lbuf, (long long)boff, (long long)BN);
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
    else snprintf(ex, sizeof ex, "%s[%lld + (%s) * %lld + k_]", lbuf, (long long)aoff, rowe, (long long)BK);
    if (L.R < L.TR) line(g, "const %s a_ = (%s) < %lld ? %s : %s;", et, rowe, (long long)L.R, ex, zero);
    else line(g, "const %s a_ = %s;", et, ex);
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
