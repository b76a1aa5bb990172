/* cg_reduce.c: reductions. The fast form reduces the last axis of a value
 * in the standard layout: each thread folds its part of a row (floatN lanes
 * on the whole-tile path), partials meet in local memory; with keepdim the
 * result is ROWREP. Any other axis goes through local memory. */
#include "cg.h"

/* The vector width of the floatN fold of a fast reduction (0: scalar). */
int ts__cg_reduce_vw(const cg *g, const ts__op *op) {
    const ts__value *xv = &g->ir->values[op->in[0]];
    const layout *L = &g->lay[op->in[0]];
    if (!g->d->has_vector_types || xv->dtype != TS_F32 || op->sub == TS_RED_ARGMAX) return 0;
    int64_t cqn = L->cq * L->nn;
    for (int w = 16; w >= 4; w /= 2)
        if (cqn % w == 0 && cqn >= 2 * w) return w;
    return 0;
}

/* Reduction over the last axis of a value in the standard layout: each
 * thread folds the elements of each row it holds into a partial (padding
 * skipped), the partials of a row meet in local memory, and each result
 * element folds its row's TC partials. With keepdim the result is ROWREP,
 * so broadcasting it back over the row needs no exchange. */
int ts__cg_fast_reduce(const cg *g, const ts__op *op) {
    const ts__value *xv = &g->ir->values[op->in[0]];
    return op->axis == xv->rank - 1 && g->lay[op->in[0]].kind == LAYOUT_STD;
}

static const char *reduce_identity(const cg *g, int sub, ts_dtype dt) {
    int is_f = !is_int(dt);
    switch (sub) {
    case TS_RED_MAX:
    case TS_RED_ARGMAX:
        if (is_f) return inf_s(g, 1);
        return dt == TS_I64 ? "(long)0x8000000000000000UL" : dt == TS_I8 ? "(-128)" : dt == TS_I16 ? "(-32768)" : dt == TS_U8 ? "0" : "(-2147483647 - 1)";
    case TS_RED_MIN:
        if (is_f) return inf_s(g, 0);
        return dt == TS_I64 ? "(long)0x7fffffffffffffffL" : dt == TS_I8 ? "127" : dt == TS_I16 ? "32767" : dt == TS_U8 ? "255" : "2147483647";
    default: return "0";
    }
}

/* The accumulator as the result's value: i8/i16 sums wrap to their width
 * (GLSL accumulates them in int registers). */
static const char *acc_out(const cg *g, ts_dtype dt) { return dt == TS_I8 || dt == TS_I16 ? wrap_cast(g, dt, "acc_") : "acc_"; }

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

/* Lanes of one row whose partials are combined in registers before (or
 * instead of) local memory: a warp butterfly of __shfl_xor (CUDA, HIP;
 * the row's TC threads are consecutive, so xor offsets below TC stay in the
 * row) or a subgroup operation (GLSL: each subgroup of g->SG invocations
 * lies in one row when TC is a multiple of it; the kernel checks
 * gl_SubgroupSize at run time and takes the plain path when it differs).
 * 1: none applies. */
static int reduce_lanes(const cg *g, const ts__op *op, const layout *L) {
    ts_dtype dt = g->ir->values[op->in[0]].dtype;
    if (L->TC < 2 || dt == TS_U8 || dt == TS_BOOL || dt == TS_I8 || dt == TS_I16) return 1;
    if (g->d->shfl_xor && g->d->shfl_width >= 2) return (int)(L->TC < g->d->shfl_width ? L->TC : g->d->shfl_width);
    /* GLSL: sums only. max/min through subgroupMax/Min pass the reductions'
     * conformance on lavapipe (op.reduce.* quick, 77/77) but measured no
     * faster there (softmax 4096x1024 at the device default: 54.7 ms
     * without, 56.9 ms with, loaded machine), so they keep the local-memory
     * fold. (An earlier note blamed subgroupMax for wrong maxima in
     * softmax_online at threads=16, BLOCK_M=64, N=2000; that config is wrong
     * on lavapipe without subgroups too: docs/backends.md, "lavapipe".) */
    if (g->d->subgroup_ops && g->SG >= 2 && L->TC % g->SG == 0 && (op->sub == TS_RED_SUM || op->sub == TS_RED_MEAN) && dt != TS_I64) return g->SG;
    return 1;
}

/* Combines acc_ (and arg_) over `lanes` lanes in registers. */
static void lanes_fold(cg *g, const ts__op *op, ts_dtype dt, int lanes) {
    int is_f = !is_int(dt);
    if (g->d->shfl_xor) {
        for (int o = lanes / 2; o >= 1; o /= 2) {
            char y[160], ya[160];
            snprintf(y, sizeof y, g->d->shfl_xor, "acc_", o);
            snprintf(ya, sizeof ya, g->d->shfl_xor, "arg_", o);
            switch (op->sub) {
            case TS_RED_ARGMAX:
                line(g, "{ const %s y_ = %s; const int ya_ = %s; if (y_ > acc_ || (y_ == acc_ && ya_ < arg_)) { acc_ = y_; arg_ = ya_; } }", reg_type(g, dt), y, ya);
                break;
            case TS_RED_MAX: line(g, is_f ? "acc_ = ts_max(acc_, %s);" : "{ const %s y_ = %s; acc_ = y_ > acc_ ? y_ : acc_; }", is_f ? y : reg_type(g, dt), y); break;
            case TS_RED_MIN: line(g, is_f ? "acc_ = ts_min(acc_, %s);" : "{ const %s y_ = %s; acc_ = y_ < acc_ ? y_ : acc_; }", is_f ? y : reg_type(g, dt), y); break;
            default: line(g, "acc_ += %s;", y); break;
            }
        }
        return;
    }
    /* GLSL subgroups: NaN is tracked apart (subgroupMax/Min leave it undefined) */
    switch (op->sub) {
    case TS_RED_MAX:
    case TS_RED_MIN: {
        const char *f = op->sub == TS_RED_MAX ? "subgroupMax" : "subgroupMin";
        if (is_f) line(g, "if (sgok_) { const bool nan_ = subgroupAny(isnan(acc_)); acc_ = %s(acc_); if (nan_) acc_ = %s; }", f, g->d->nan_lit ? g->d->nan_lit : "(0.0f/0.0f)");
        else line(g, "if (sgok_) acc_ = %s(acc_);", f);
        break;
    }
    default: line(g, "if (sgok_) acc_ = subgroupAdd(acc_);"); break;
    }
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
    int lanes = reduce_lanes(g, op, L);
    /* the thread holds whole rows, or a warp butterfly gives every thread of a row its result */
    int direct = (L->TC == 1 || (g->d->shfl_xor && lanes == L->TC)) && g->lay[res].kind == LAYOUT_ROWREP;
    int sg = lanes > 1 && !g->d->shfl_xor; /* GLSL subgroups: sgok_ says at run time whether they apply */
    if (direct) {
        ts__cg_declare(g, res);
        line(g, "{");
        g->indent++;
    } else ts__cg_need_local(g, dt, nparts);
    int64_t ioff = is_int(dt) ? nparts : 0; /* argmax indices in ts_li after int values */
    if (argmax && !direct) ts__cg_need_local(g, TS_I32, ioff + nparts);
    if (!direct) line(g, "%s", g->d->barrier);
    line(g, "{");
    g->indent++;
    char tq[64], tm[64];
    snprintf(tq, sizeof tq, "(tid / %lld)", (long long)L->TC);
    snprintf(tm, sizeof tm, "(tid %% %lld)", (long long)L->TC);
    line(g, "const int tr_ = %s, tc_ = %s;", cx(g, "int", tq), cx(g, "int", tm));
    if (sg) line(g, "const bool sgok_ = gl_SubgroupSize == %d;", lanes);
    /* no unroll pragma here (registers_only targets excepted): the body holds loops of its own, and unrolling
     * both levels (64 rows x 16 columns) made PoCL's compile run for minutes */
    if (g->px[x].slow) ts__cg_declare(g, x); /* written on the partial-tile path only */
    int unroll = g->d->registers_only && L->mm * L->cq * L->nn <= TS__GPU_UNROLL_MAX;
    if (unroll) line(g, "%s", g->d->unroll);
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
    int vw = ts__cg_reduce_vw(g, op);
    const pendx *px = &g->px[x]; /* x's expression, fused into the fold (never with deferred loads) */
    int dx = g->deferred[x];     /* x a deferred load: read from global memory, emitted on the other path */
    if (vw) {
        int minmax = op->sub == TS_RED_MAX || op->sub == TS_RED_MIN;
        char row[256], gd[1400];
        if (rtn) snprintf(row, sizeof row, "b_%s + %lld <= x_%s", rtn, (long long)L->C, rtn);
        ts__cg_deferred_guard(g, rtn ? row : NULL, &x, dx, gd, sizeof gd);
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
            ts__cg_deferred_expr(g, x, ix, vw, e, sizeof e);
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
        if (dx) ts__cg_emit_load(g, ts__cg_load_op_of(g, x)); /* its registers, on this path only */
        if (px->slow)
            line(g, "for (int j = i * %lld; j < (i + 1) * %lld; j += %d) vstore%d(%s, 0, %s + j);", (long long)cqn, (long long)cqn, px->V, px->V, px->slow,
                 vname(x));
    }
    /* no unroll pragma on this fold either: PoCL 3.1 miscompiled it, unrolled
     * inside the row loop of a multi-thread group (softmax M=4,N=384,
     * threads=32,vec=16,BLOCK_M=4 summed wrong; tests/test_opencl.c row forms) */
    if (unroll) line(g, "%s", g->d->unroll);
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
    if (lanes > 1) lanes_fold(g, op, dt, lanes);
    if (direct) {
        if (op->sub == TS_RED_MEAN) {
            if (rtn) line(g, "%s[i] = acc_ / %s;", vname(res), mean_count(g, rtype, L->C, rtn));
            else line(g, "%s[i] = acc_ / %s;", vname(res), mean_count(g, rtype, L->C, NULL));
        } else line(g, "%s[i] = %s;", vname(res), argmax ? "arg_" : acc_out(g, dt));
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
    if (lanes > 1 && g->d->shfl_xor) line(g, "if (wr_ && (tc_ & %d) == 0) { /* one partial per warp */", lanes - 1);
    else line(g, "if (wr_) {");
    line(g, "  %s[r_ * %lld + tc_] = acc_;", lb, (long long)L->TC);
    if (argmax) line(g, "  ts_li[%lld + r_ * %lld + tc_] = arg_;", (long long)ioff, (long long)L->TC);
    line(g, "}");
    g->indent--;
    line(g, "}");
    g->indent--;
    line(g, "}");
    line(g, "%s", g->d->barrier);
    /* Tree fold of the row's partials (tree_reduce targets, float sums,
     * max and min): log2(TC / lanes) halving steps with a barrier each,
     * then one read a thread, instead of every thread reading all TC
     * partials (a per-lane gather per read on lavapipe). With subgroups,
     * each run of `lanes` slots already holds its run's result, so the
     * halving stops at the run length. */
    int tree = g->d->tree_reduce && !argmax && !is_int(dt) && L->TC >= 8 && (L->TC & (L->TC - 1)) == 0;
    if (tree) {
        int lg = 0;
        while ((1LL << lg) < L->TC) lg++;
        line(g, "{ /* tree fold of the partials */");
        g->indent++;
        line(g, "const int tr2_ = tid >> %d, tc2_ = tid & %lld;", lg, (long long)(L->TC - 1));
        if (sg) line(g, "const int stop_ = gl_SubgroupSize == %d ? %d : 1;", lanes, lanes);
        line(g, "for (int s_ = %lld; s_ >= %s; s_ >>= 1) {", (long long)(L->TC / 2), sg ? "stop_" : "1");
        g->indent++;
        line(g, "for (int i = 0; i < %lld; i++) {", (long long)L->mm);
        line(g, "  const int r_ = tr2_ + i * %lld;", (long long)L->TR);
        line(g, "  if (r_ < %lld && tc2_ < s_) {", (long long)(xv->rank == 1 ? 1 : L->R));
        char a[96], b[96];
        snprintf(a, sizeof a, "%s[r_ * %lld + tc2_]", lb, (long long)L->TC);
        snprintf(b, sizeof b, "%s[r_ * %lld + tc2_ + s_]", lb, (long long)L->TC);
        if (op->sub == TS_RED_MAX || op->sub == TS_RED_MIN) line(g, "    %s = %s(%s, %s);", a, op->sub == TS_RED_MAX ? "ts_max" : "ts_min", a, b);
        else line(g, "    %s = %s + %s;", a, a, b);
        line(g, "  }");
        line(g, "}");
        line(g, "%s", g->d->barrier);
        close_block(g); /* s_ */
        close_block(g);
    }
    ts__cg_declare(g, res);
    layout Lr;
    layout_of(g, res, &Lr);
    ts__cg_elem_loop_begin(g, &Lr, "j");
    line(g, "{ /* every thread, clamped (see relayout) */");
    line(g, "  const int fq_ = ok_ ? f_ : 0;");
    g->indent++;
    line(g, "%s acc_ = %s[fq_ * %lld];", rtype, lb, (long long)L->TC);
    if (argmax) line(g, "int arg_ = ts_li[%lld + fq_ * %lld];", (long long)ioff, (long long)L->TC);
    if (!tree) { /* every thread folds the row's partials */
        if (sg) {
            line(g, "const int step_ = gl_SubgroupSize == %d ? %d : 1;", lanes, lanes);
            line(g, "for (int k_ = step_; k_ < %lld; k_ += step_) {", (long long)L->TC);
        } else if (lanes > 1) line(g, "for (int k_ = %d; k_ < %lld; k_ += %d) {", lanes, (long long)L->TC, lanes);
        else line(g, "for (int k_ = 1; k_ < %lld; k_++) {", (long long)L->TC);
        g->indent++;
        line(g, "const %s y_ = %s[fq_ * %lld + k_];", rtype, lb, (long long)L->TC);
        if (argmax) {
            line(g, "const int ya_ = ts_li[%lld + fq_ * %lld + k_];", (long long)ioff, (long long)L->TC);
            line(g, "if (y_ > acc_ || (y_ == acc_ && ya_ < arg_)) { acc_ = y_; arg_ = ya_; }");
        } else fold_stmt(g, op->sub, dt, "acc_", "y_");
        g->indent--;
        line(g, "}");
    }
    if (op->sub == TS_RED_MEAN) {
        if (rtn) line(g, "%s[j] = acc_ / %s;", vname(res), mean_count(g, rtype, L->C, rtn));
        else line(g, "%s[j] = acc_ / %s;", vname(res), mean_count(g, rtype, L->C, NULL));
    } else if (argmax) line(g, "%s[j] = arg_;", vname(res));
    else line(g, "%s[j] = %s;", vname(res), acc_out(g, dt));
    g->indent--;
    line(g, "}");
    ts__cg_elem_loop_end(g);
}

void ts__cg_emit_reduce(cg *g, const ts__op *op) {
    if (ts__cg_fast_reduce(g, op)) { /* a deferred input always has a floatN fold here (find_deferred_loads) */
        emit_reduce_fast(g, op);
        return;
    }
    ts__cg_flush_deferred(g, op);
    ts_val x = op->in[0], res = op->result;
    const ts__value *xv = &g->ir->values[x];
    ts_dtype dt = xv->dtype;
    int64_t shape[TS_MAX_RANK];
    ts__value_shape(g->ir, g->plan, x, shape);
    int64_t n = shape[op->axis], inner = 1;
    for (int d = op->axis + 1; d < xv->rank; d++) inner *= shape[d];
    const char *identity = reduce_identity(g, op->sub, dt);
    int is_f = !is_int(dt);
    ts__cg_materialize(g, x, op->axis, identity);
    ts__cg_declare(g, res);
    layout L;
    layout_of(g, res, &L);
    ts_tile rt = xv->dims[op->axis];
    ts__cg_elem_loop_begin(g, &L, "j");
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
    } else line(g, "%s[j] = %s;", vname(res), acc_out(g, dt));
    ts__cg_elem_loop_end(g);
}

/* ---------------------------------------------------------------- scans */

/* Inclusive scans (cumsum, cumprod, cummax, cummin): the value goes to
 * local memory, one thread a line scans the line's valid prefix serially in
 * place (forward, or from its last valid element), and every thread reads
 * its elements back in the result's layout. Simple and exact in the order
 * the reference executor adds; the lines run in parallel. */
void ts__cg_emit_scan(cg *g, const ts__op *op) {
    ts_val x = op->in[0], res = op->result;
    const ts__value *xv = &g->ir->values[x];
    int64_t shape[TS_MAX_RANK];
    ts__value_shape(g->ir, g->plan, x, shape);
    int64_t outer = 1, inner = 1, n = shape[op->axis];
    for (int d = 0; d < op->axis; d++) outer *= shape[d];
    for (int d = op->axis + 1; d < xv->rank; d++) inner *= shape[d];
    ts_dtype dt = xv->dtype;
    const char *lb = local_buf(g, dt);
    ts__cg_materialize(g, x, -1, "0");
    ts_tile at = xv->dims[op->axis];
    if (at == TS_NONE) line(g, "{ const int nv_ = 1;");
    else {
        const char *tn = g->ir->tiles[at].name;
        char e[256];
        snprintf(e, sizeof e, "(x_%s - b_%s < %lld ? x_%s - b_%s : %lld)", tn, tn, (long long)n, tn, tn, (long long)n);
        line(g, "{ const int nv_ = %s;", cx(g, "int", e));
    }
    g->indent++;
    line(g, "for (int ln_ = tid; ln_ < %lld; ln_ += %d) {", (long long)(outer * inner), g->T);
    g->indent++;
    line(g, "const int base_ = (ln_ / %lld) * %lld + ln_ %% %lld;", (long long)inner, (long long)(n * inner), (long long)inner);
    char first[128], rd[160], opx[1024];
    snprintf(first, sizeof first, "%s[base_ + %s * %lld]", lb, op->keepdim ? "(nv_ - 1)" : "0", (long long)inner);
    line(g, "%s acc_ = %s;", reg_type(g, dt), local_cast(g, dt, first, 0));
    line(g, "for (int s_ = 1; s_ < nv_; s_++) {");
    g->indent++;
    line(g, "const int at_ = base_ + (%s) * %lld;", op->keepdim ? "nv_ - 1 - s_" : "s_", (long long)inner);
    snprintf(rd, sizeof rd, "%s[at_]", lb);
    static const int bop[] = {TS_ADD, TS_MUL, TS_MAX, TS_MIN};
    char rv[200];
    snprintf(rv, sizeof rv, "%s", local_cast(g, dt, rd, 0));
    ts__cg_binary_expr(g, bop[op->sub & 3], dt, "acc_", rv, opx, sizeof opx);
    line(g, "acc_ = %s;", dt == TS_I8 || dt == TS_I16 ? wrap_cast(g, dt, opx) : opx);
    line(g, "%s = %s;", rd, local_cast(g, dt, "acc_", 1));
    close_block(g); /* s_ */
    close_block(g); /* ln_ */
    close_block(g); /* nv_ */
    line(g, "%s", g->d->barrier);
    ts__cg_declare(g, res);
    layout L;
    layout_of(g, res, &L);
    ts__cg_elem_loop_begin(g, &L, "j");
    char e[96];
    snprintf(e, sizeof e, "%s[ok_ ? f_ : 0]", lb);
    line(g, "%s[j] = %s;", vname(res), local_cast(g, dt, e, 0));
    ts__cg_elem_loop_end(g);
}
