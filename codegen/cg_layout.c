/* cg_layout.c: layouts, the map from a value's elements to threads and
 * registers (docs/design.md, "Lowering"), the element loops built on them,
 * and the exchanges that go through local memory between barriers:
 * materialize, relayout, broadcast indexing, transpose.
 *
 * Sections: layouts; element loops; local memory; transpose. */
#include "cg.h"

/* ---------------------------------------------------------------- layouts */

/* The standard layout of a shape: [.., C] viewed as R x C, column chunks of
 * nn over TC threads, rows over TR = T / TC threads. */
void ts__cg_std_layout(const cg *g, int rank, const int64_t *shape, layout *L) {
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

void ts__cg_value_std_layout(const cg *g, ts_val v, layout *L) {
    int64_t shape[TS_MAX_RANK];
    ts__value_shape(g->ir, g->plan, v, shape);
    ts__cg_std_layout(g, g->ir->values[v].rank, shape, L);
}

/* Rows of `parent` (an STD layout), one value per row, replicated over the
 * parent's column threads: the layout of a keepdim reduction over the last
 * axis, so that broadcasting it back over the row needs no exchange. */
void ts__cg_rowrep_layout(const layout *parent, int rank, const int64_t *shape_in, layout *L) {
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

/* Row and column, in the value viewed as R x C, of register jv (an int
 * expression) of this thread in STD layout L. */
void ts__cg_std_row_expr(const cg *g, const layout *L, const char *jv, char *buf, size_t n) {
    char tq[64];
    snprintf(tq, sizeof tq, "(tid / %lld)", (long long)L->TC);
    snprintf(buf, n, "%s + (%s / %lld) * %lld", cx(g, "int", tq), jv, (long long)(L->nn * L->cq), (long long)L->TR);
}

void ts__cg_std_col_expr(const cg *g, const layout *L, const char *jv, char *buf, size_t n) {
    char tm[64];
    snprintf(tm, sizeof tm, "(tid %% %lld)", (long long)L->TC);
    snprintf(buf, n, "(%s + ((%s / %lld) %% %lld) * %lld) * %lld + %s %% %lld", cx(g, "int", tm), jv, (long long)L->nn, (long long)L->cq,
             (long long)L->TC, (long long)L->nn, jv, (long long)L->nn);
}

/* ---------------------------------------------------------------- element loops */

/* Opens a loop over the elements a thread holds of a value with layout L.
 * Declares j (register), f_ (flat index in the value), ok_ (the element
 * exists in this thread), own_ (this thread is the one that writes it:
 * rank-1 values are computed redundantly by every row of threads, ROWREP
 * values by every column thread) and e0..e3 (multi-index). */
void ts__cg_elem_decls(cg *g, const layout *L, const char *jv) {
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
            ts__cg_std_row_expr(g, L, jv, rc, sizeof rc);
            line(g, "const int r_ = %s;", rc);
        }
        ts__cg_std_col_expr(g, L, jv, rc, sizeof rc);
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
void ts__cg_unroll_short(cg *g, int64_t trips) {
    /* registers_only targets (GPUs) unroll every loop over registers: a
     * private array indexed by a loop counter lives in (local) memory; past
     * TS__GPU_UNROLL_MAX elements a thread (extreme configs, which spill
     * anyway) the shader compilers take minutes (lavapipe's LLVM) */
    if (trips <= (g->d->registers_only ? TS__GPU_UNROLL_MAX : TS_UNROLL_MAX)) line(g, "%s", g->d->unroll);
}

void ts__cg_elem_loop_begin(cg *g, const layout *L, const char *jv) {
    ts__cg_unroll_short(g, L->J);
    line(g, "for (int %s = 0; %s < %lld; %s++) {", jv, jv, (long long)L->J, jv);
    g->indent++;
    ts__cg_elem_decls(g, L, jv);
}

void ts__cg_elem_loop_end(cg *g) {
    g->indent--;
    line(g, "}");
}

/* ---------------------------------------------------------------- local memory */

void ts__cg_need_local(cg *g, ts_dtype d, int64_t n) {
    if (is_int(d)) { if (n > g->li) g->li = n; }
    else if (n > g->lf) g->lf = n;
}

/* Writes every element of v (its whole tile) into local memory at its flat
 * index, between barriers. With mask_axis >= 0, elements whose index along
 * that axis is past the tile's extent get `identity` instead. */
void ts__cg_materialize(cg *g, ts_val v, int mask_axis, const char *identity) {
    layout L;
    layout_of(g, v, &L);
    const ts__value *val = &g->ir->values[v];
    int64_t numel = 1;
    for (int d = 0; d < L.rank; d++) numel *= L.shape[d];
    ts__cg_need_local(g, val->dtype, numel);
    line(g, "%s", g->d->barrier);
    ts__cg_elem_loop_begin(g, &L, "j");
    if (mask_axis >= 0 && val->dims[mask_axis] != TS_NONE) {
        const ts__tile *t = &g->ir->tiles[val->dims[mask_axis]];
        char e[160];
        snprintf(e, sizeof e, "((b_%s + e%d < x_%s) ? %s[j] : %s)", t->name, mask_axis, t->name, vname(v), identity);
        if (local_cast(g, val->dtype, e, 1) == e) /* the C spelling, unchanged */
            line(g, "if (own_) %s[f_] = (b_%s + e%d < x_%s) ? %s[j] : %s;", local_buf(g, val->dtype), t->name, mask_axis, t->name, vname(v), identity);
        else line(g, "if (own_) %s[f_] = %s;", local_buf(g, val->dtype), local_cast(g, val->dtype, e, 1));
    } else {
        char e[64];
        snprintf(e, sizeof e, "%s[j]", vname(v));
        line(g, "if (own_) %s[f_] = %s;", local_buf(g, val->dtype), local_cast(g, val->dtype, e, 1));
    }
    ts__cg_elem_loop_end(g);
    line(g, "%s", g->d->barrier);
}

/* Converts value `src` into the layout `to` in register array `dst` (declared
 * here when `declare_it`), through local memory. */
void ts__cg_relayout(cg *g, ts_val src, const char *dst, const layout *to, int declare_it) {
    ts_dtype dt = g->ir->values[src].dtype;
    ts__cg_materialize(g, src, -1, "0");
    if (declare_it) {
        line(g, "%s %s[%lld];", reg_type(g, dt), dst, (long long)to->J);
        g->priv += to->J;
    }
    ts__cg_elem_loop_begin(g, to, "j");
    /* unconditional with a clamped index: PoCL 3.1's work-group vectorizer
     * loses conditionally assigned private arrays across barriers */
    char e[64];
    snprintf(e, sizeof e, "%s[ok_ ? f_ : 0]", local_buf(g, dt));
    line(g, "%s[j] = %s;", dst, local_cast(g, dt, e, 0));
    ts__cg_elem_loop_end(g);
}

/* Flat index into a materialized operand o for the element e0.. of a result
 * of rank rr (numpy broadcasting, right-aligned; dims of 1 read index 0). */
void ts__cg_broadcast_index(const cg *g, ts_val o, int rr, char *buf, size_t n) {
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

/* ---------------------------------------------------------------- transpose */

void ts__cg_emit_transpose(cg *g, const ts__op *op) {
    ts_val x = op->in[0], res = op->result;
    int64_t shape[TS_MAX_RANK];
    ts__value_shape(g->ir, g->plan, x, shape);
    ts__cg_materialize(g, x, -1, "0");
    ts__cg_declare(g, res);
    layout L;
    layout_of(g, res, &L);
    ts__cg_elem_loop_begin(g, &L, "j");
    line(g, "%s[j] = %s[ok_ ? e1 * %lld + e0 : 0];", vname(res), local_buf(g, g->ir->values[x].dtype), (long long)shape[1]);
    ts__cg_elem_loop_end(g);
}
