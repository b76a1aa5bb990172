/* cg_dot_glsl.c: the register-blocked dot of dialects without vector types
 * but with vec4 views of storage buffers (GLSL, `dot_vec4`).
 *
 * Sections: eligibility (which dots take this path; the rest take the
 * generic one in cg_dot.c), operand access (straight-line loads into named
 * registers), the kernel (accumulators, the interior and edge k loops).
 *
 * What lavapipe (and GPUs) reward, and why the code looks like this: every
 * register is a named variable (the accumulators are vec4s, the operands
 * floats and vec4s) and every loop over the micro-tile is unrolled by the
 * generator, so no private array is indexed by a loop counter (lavapipe
 * turns such an array into memory with a per-lane gather/scatter at every
 * access); B's row chunks are read as vec4s through a second view of its
 * storage buffer (one access loop over the lanes instead of four) when the
 * block lies inside both operands, B's rows are contiguous and 16-byte
 * aligned (checked at run time; scalar loads with bounds checks otherwise);
 * thread coordinates are shifts and masks (block sizes are powers of two).
 * With stage=1 both operands are staged through shared memory as vec4s, A
 * transposed and permuted so that a thread's micro_m rows are adjacent:
 * per k step a thread reads micro_m/4 + micro_n/4 vec4s. */
#include "cg.h"

/* ---------------------------------------------------------------- eligibility */

static int is_pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

static int log2i(int64_t v) {
    int s = 0;
    while ((INT64_C(1) << s) < v) s++;
    return s;
}

/* A load whose value dims are its tile indices in order (element (e0, e1)
 * is element (b_t0 + e0, b_t1 + e1) of the tensor). */
static int straight_load(const cg *g, const ts__op *ld, ts_val v) {
    const ts__param *pa = &g->ir->params[ld->param];
    const ts__value *vv = &g->ir->values[v];
    int r = 0;
    for (int d = 0; d < pa->rank; d++)
        if (ld->idx[d].kind == TS_IDX_TILE && (r >= vv->rank || vv->dims[r++] != ld->idx[d].tile)) return 0;
    return r == vv->rank && ts__cg_access_plain(g, ld) && (pa->dtype == TS_F32 || pa->dtype == TS_F16 || pa->dtype == TS_BF16);
}

int ts__cg_dot_glsl_ok(const cg *g, const ts__op *op) {
    if (!g->d->dot_vec4 || op->kind != TS__OP_DOT) return 0;
    ts_val a = op->in[0], b = op->in[1];
    const ts__value *av = &g->ir->values[a], *bv = &g->ir->values[b];
    if (av->rank != 2 || bv->rank != 2 || g->ir->values[op->result].rank != 2) return 0;
    for (int w = 0; w < 2; w++) {
        ts_val v = w ? b : a;
        const ts__op *def = &g->ir->ops[g->ir->values[v].def_op];
        if (def->kind != TS__OP_LOAD || g->uses[v] != 1 || !straight_load(g, def, v)) return 0;
    }
    int64_t BM = g->plan->block[av->dims[0]], BK = g->plan->block[av->dims[1]], BN = g->plan->block[bv->dims[1]];
    const layout *L = &g->lay[op->result];
    if (!is_pow2(BM) || !is_pow2(BK) || !is_pow2(BN) || BK < 4 || BM < 4) return 0;
    if (L->kind != LAYOUT_STD || L->R != BM || L->C != BN || L->nn % 4 || L->mm % 4 || L->TR * L->mm != BM || L->TC * L->cq * L->nn != BN) return 0;
    if (!is_pow2(L->TC) || !is_pow2(L->TR) || !is_pow2(L->nn)) return 0;
    return 1;
}

/* ---------------------------------------------------------------- operand access */

/* Binds the load's index variables P0, P1 to (e0, e1) in a block and
 * assigns dst = the element (zero outside the tensor when guarded). */
static void load_elem(cg *g, const ts__op *ld, const char *pre, const char *e0, const char *e1, int guarded, const char *dst) {
    char off[1024], cond[1024], ex[1400];
    ts__cg_index_exprs(g, ld, pre, off, sizeof off, cond, sizeof cond);
    ts__cg_load_expr(g, ld->param, off, ex, sizeof ex);
    if (guarded)
        line(g, "{ const int %s0 = %s, %s1 = %s; %s = (%s) ? %s : 0.0; }", pre, e0, pre, e1, dst, cond, cx(g, "float", ex));
    else line(g, "{ const int %s0 = %s, %s1 = %s; %s = %s; }", pre, e0, pre, e1, dst, cx(g, "float", ex));
}

/* Element offset of a straight load at (e0, e1), with the last stride
 * dropped (the vec4 paths run only where it is 1). */
static void vec_offset(cg *g, const ts__op *ld, const char *pre, char *off, size_t n) {
    const ts__param *pa = &g->ir->params[ld->param];
    char cond[1024], unit[64];
    ts__cg_index_exprs(g, ld, pre, off, n, cond, sizeof cond);
    snprintf(unit, sizeof unit, " * st_%s_%d", pa->name, pa->rank - 1);
    char *at = strstr(off, unit);
    if (at) memmove(at, at + strlen(unit), strlen(at + strlen(unit)) + 1);
}

/* "the vec4 view of p's buffer may be used": unit last stride, every other
 * stride and the element offset of the block's first element multiples of 4. */
static void vec4_cond(cg *g, const ts__op *ld, const char *pre, char *buf, size_t n) {
    const ts__param *pa = &g->ir->params[ld->param];
    char off[1024];
    vec_offset(g, ld, pre, off, sizeof off);
    size_t k = (size_t)snprintf(buf, n, "st_%s_%d == 1", pa->name, pa->rank - 1);
    for (int d = 0; d + 1 < pa->rank && k < n; d++) k += (size_t)snprintf(buf + k, n - k, " && (st_%s_%d & 3) == 0", pa->name, d);
    if (k < n) snprintf(buf + k, n - k, " && ((%s) & 3) == 0", off);
}

static void mark_vec4_view(cg *g, int param) {
    if (param < 32) g->vec4_view |= 1u << param;
}

/* ---------------------------------------------------------------- the kernel */

void ts__cg_emit_dot_glsl(cg *g, const ts__op *op) {
    ts_val a = op->in[0], b = op->in[1], acc = op->in[2], res = op->result;
    const ts__value *av = &g->ir->values[a], *bv = &g->ir->values[b];
    const ts__op *la = &g->ir->ops[av->def_op], *lb = &g->ir->ops[bv->def_op];
    const ts__param *pa = &g->ir->params[la->param], *pb = &g->ir->params[lb->param];
    int64_t BM = g->plan->block[av->dims[0]], BK = g->plan->block[av->dims[1]], BN = g->plan->block[bv->dims[1]];
    const ts__tile *kt = &g->ir->tiles[av->dims[1]];
    layout L;
    layout_of(g, res, &L);
    const int64_t mm = L.mm, cq = L.cq, nn = L.nn, n4 = nn / 4, TR = L.TR, TC = L.TC;
    const int stage = g->plan->stage != 0;
    const int a_f32 = pa->dtype == TS_F32, b_f32 = pb->dtype == TS_F32;
    ts__cg_declare(g, res);
    line(g, "{");
    g->indent++;
    /* accumulators: acc_i_q_u holds row tr + i*TR, columns (tc + q*TC)*nn + 4u .. +3 */
    for (int64_t i = 0; i < mm; i++)
        for (int64_t q = 0; q < cq; q++)
            for (int64_t u = 0; u < n4; u++) {
                int64_t j = (i * cq + q) * nn + u * 4;
                if (acc != TS_NONE)
                    line(g, "vec4 c%lld_%lld_%lld = vec4(%s[%lld], %s[%lld], %s[%lld], %s[%lld]);", (long long)i, (long long)q, (long long)u, vname(acc),
                         (long long)j, vname(acc), (long long)j + 1, vname(acc), (long long)j + 2, vname(acc), (long long)j + 3);
                else line(g, "vec4 c%lld_%lld_%lld = vec4(0.0);", (long long)i, (long long)q, (long long)u);
            }
    line(g, "const int tr_ = tid >> %d, tc_ = tid & %lld;", log2i(TC), (long long)(TC - 1));
    line(g, "const int kn_ = min(%lld, x_%s - b_%s);", (long long)BK, kt->name, kt->name);
    /* whole block inside both operands (checked at the far corner: the conditions are monotone) */
    {
        char offa[1024], conda[1024], offb[1024], condb[1024];
        ts__cg_index_exprs(g, la, "fa_", offa, sizeof offa, conda, sizeof conda);
        ts__cg_index_exprs(g, lb, "fb_", offb, sizeof offb, condb, sizeof condb);
        line(g, "bool inside_;");
        line(g, "{ const int fa_0 = %lld, fa_1 = %lld, fb_0 = %lld, fb_1 = %lld; inside_ = kn_ == %lld && (%s) && (%s); }", (long long)(BM - 1),
             (long long)(BK - 1), (long long)(BK - 1), (long long)(BN - 1), (long long)BK, conda, condb);
    }
    char va[1400] = "false", vb[1400] = "false";
    if (a_f32 && stage) {
        char c[1300];
        line(g, "bool va_;");
        vec4_cond(g, la, "fa_", c, sizeof c);
        line(g, "{ const int fa_0 = 0, fa_1 = 0; va_ = inside_ && %s; }", c);
        snprintf(va, sizeof va, "va_");
        mark_vec4_view(g, la->param);
    }
    if (b_f32) {
        char c[1300];
        line(g, "bool vb_;");
        vec4_cond(g, lb, "fb_", c, sizeof c);
        line(g, "{ const int fb_0 = 0, fb_1 = 0; vb_ = inside_ && %s; }", c);
        snprintf(vb, sizeof vb, "vb_");
        mark_vec4_view(g, lb->param);
    }
    (void)va;
    (void)vb;
    char rowe[128], cole[128], dst[64], off[1024];
    if (!stage) {
        /* operands straight from global memory: per k step micro_m scalars of A, micro_n/4 vec4s of B */
        for (int path = 0; path < 2; path++) {
            /* path 0: interior (no bounds checks, vec4 B when allowed); path 1: edges */
            if (path == 0) line(g, "if (inside_) {");
            else line(g, "} else {");
            g->indent++;
            if (path == 0) line(g, "for (int k_ = 0; k_ < %lld; k_++) {", (long long)BK);
            else line(g, "for (int k_ = 0; k_ < kn_; k_++) {");
            g->indent++;
            for (int64_t q = 0; q < cq; q++)
                for (int64_t u = 0; u < n4; u++) line(g, "vec4 b%lld_%lld;", (long long)q, (long long)u);
            if (path == 0 && b_f32) {
                line(g, "if (vb_) {");
                g->indent++;
                vec_offset(g, lb, "fb_", off, sizeof off);
                for (int64_t q = 0; q < cq; q++)
                    for (int64_t u = 0; u < n4; u++)
                        line(g, "{ const int fb_0 = k_, fb_1 = ((tc_ + %lld) << %d) + %lld; b%lld_%lld = p_%s4[(%s) >> 2]; }", (long long)(q * TC), log2i(nn),
                             (long long)(u * 4), (long long)q, (long long)u, pb->name, off);
                g->indent--;
                line(g, "} else {");
                g->indent++;
            }
            for (int64_t q = 0; q < cq; q++)
                for (int64_t u = 0; u < n4; u++)
                    for (int e = 0; e < 4; e++) {
                        snprintf(cole, sizeof cole, "((tc_ + %lld) << %d) + %lld", (long long)(q * TC), log2i(nn), (long long)(u * 4 + e));
                        snprintf(dst, sizeof dst, "b%lld_%lld[%d]", (long long)q, (long long)u, e);
                        load_elem(g, lb, "fb_", "k_", cole, path == 1, dst);
                    }
            if (path == 0 && b_f32) {
                g->indent--;
                line(g, "}");
            }
            for (int64_t i = 0; i < mm; i++) {
                snprintf(rowe, sizeof rowe, "tr_ + %lld", (long long)(i * TR));
                snprintf(dst, sizeof dst, "a%lld_", (long long)i);
                line(g, "float a%lld_;", (long long)i);
                load_elem(g, la, "fa_", rowe, "k_", path == 1, dst);
            }
            for (int64_t i = 0; i < mm; i++)
                for (int64_t q = 0; q < cq; q++)
                    for (int64_t u = 0; u < n4; u++)
                        line(g, "c%lld_%lld_%lld = fma(vec4(a%lld_), b%lld_%lld, c%lld_%lld_%lld);", (long long)i, (long long)q, (long long)u, (long long)i,
                             (long long)q, (long long)u, (long long)i, (long long)q, (long long)u);
            g->indent--;
            line(g, "}");
            g->indent--;
        }
        line(g, "}");
    } else {
        /* staged: A transposed into ts_da4[k][BM/4] with row m at position
         * (m & (TR-1)) * mm + (m >> log2 TR), so a thread's rows are
         * adjacent; B as is in ts_db4[k][BN/4]; zero past the edges */
        g->dot_shared_a4 = BK * BM / 4 > g->dot_shared_a4 ? BK * BM / 4 : g->dot_shared_a4;
        g->dot_shared_b4 = BK * BN / 4 > g->dot_shared_b4 ? BK * BN / 4 : g->dot_shared_b4;
        const int64_t T = TR * TC;
        line(g, "%s", g->d->barrier);
        /* A: BM x BK as vec4s along k */
        {
            int64_t nv = BM * BK / 4, steps = (nv + T - 1) / T;
            int sk = log2i(BK / 4);
            line(g, "for (int s_ = 0; s_ < %lld; s_++) {", (long long)steps);
            g->indent++;
            line(g, "const int id_ = tid + s_ * %lld;", (long long)T);
            if (nv % T) line(g, "if (id_ < %lld) {", (long long)nv);
            line(g, "const int m_ = id_ >> %d, k4_ = (id_ & %lld) << 2;", sk, (long long)(BK / 4 - 1));
            line(g, "vec4 t_;");
            if (a_f32) {
                vec_offset(g, la, "fa_", off, sizeof off);
                line(g, "if (va_) { const int fa_0 = m_, fa_1 = k4_; t_ = p_%s4[(%s) >> 2]; } else {", pa->name, off);
            } else line(g, "{");
            g->indent++;
            for (int e = 0; e < 4; e++) {
                snprintf(cole, sizeof cole, "k4_ + %d", e);
                snprintf(dst, sizeof dst, "t_[%d]", e);
                load_elem(g, la, "fa_", "m_", cole, 1, dst);
            }
            g->indent--;
            line(g, "}");
            line(g, "const int pm_ = ((m_ & %lld) << %d) + (m_ >> %d);", (long long)(TR - 1), log2i(mm), log2i(TR));
            for (int e = 0; e < 4; e++)
                line(g, "ts_da4[(k4_ + %d) * %lld + (pm_ >> 2)][pm_ & 3] = t_[%d];", e, (long long)(BM / 4), e);
            if (nv % T) line(g, "}");
            g->indent--;
            line(g, "}");
        }
        /* B: BK x BN as vec4s along n */
        {
            int64_t nv = BK * BN / 4, steps = (nv + T - 1) / T;
            int sn = log2i(BN / 4);
            line(g, "for (int s_ = 0; s_ < %lld; s_++) {", (long long)steps);
            g->indent++;
            line(g, "const int id_ = tid + s_ * %lld;", (long long)T);
            if (nv % T) line(g, "if (id_ < %lld) {", (long long)nv);
            line(g, "const int k_ = id_ >> %d, n4_ = id_ & %lld;", sn, (long long)(BN / 4 - 1));
            line(g, "vec4 t_;");
            if (b_f32) {
                vec_offset(g, lb, "fb_", off, sizeof off);
                line(g, "if (vb_) { const int fb_0 = k_, fb_1 = n4_ << 2; t_ = p_%s4[(%s) >> 2]; } else {", pb->name, off);
            } else line(g, "{");
            g->indent++;
            for (int e = 0; e < 4; e++) {
                snprintf(cole, sizeof cole, "(n4_ << 2) + %d", e);
                snprintf(dst, sizeof dst, "t_[%d]", e);
                load_elem(g, lb, "fb_", "k_", cole, 1, dst);
            }
            g->indent--;
            line(g, "}");
            line(g, "ts_db4[id_] = t_;");
            if (nv % T) line(g, "}");
            g->indent--;
            line(g, "}");
        }
        line(g, "%s", g->d->barrier);
        line(g, "for (int k_ = 0; k_ < kn_; k_++) {");
        g->indent++;
        for (int64_t i4 = 0; i4 < mm / 4; i4++)
            line(g, "const vec4 a%lld_ = ts_da4[k_ * %lld + (tr_ << %d) + %lld];", (long long)i4, (long long)(BM / 4), log2i(mm / 4), (long long)i4);
        for (int64_t q = 0; q < cq; q++)
            for (int64_t u = 0; u < n4; u++)
                line(g, "const vec4 b%lld_%lld = ts_db4[k_ * %lld + ((tc_ + %lld) << %d) + %lld];", (long long)q, (long long)u, (long long)(BN / 4),
                     (long long)(q * TC), log2i(n4), (long long)u);
        for (int64_t i = 0; i < mm; i++)
            for (int64_t q = 0; q < cq; q++)
                for (int64_t u = 0; u < n4; u++)
                    line(g, "c%lld_%lld_%lld = fma(vec4(a%lld_[%lld]), b%lld_%lld, c%lld_%lld_%lld);", (long long)i, (long long)q, (long long)u, (long long)(i / 4),
                         (long long)(i % 4), (long long)q, (long long)u, (long long)i, (long long)q, (long long)u);
        g->indent--;
        line(g, "}");
    }
    for (int64_t i = 0; i < mm; i++)
        for (int64_t q = 0; q < cq; q++)
            for (int64_t u = 0; u < n4; u++)
                for (int e = 0; e < 4; e++)
                    line(g, "%s[%lld] = c%lld_%lld_%lld[%d];", vname(res), (long long)((i * cq + q) * nn + u * 4 + e), (long long)i, (long long)q, (long long)u, e);
    g->indent--;
    line(g, "}");
}
