/* builder.c: the kernel builder, which is also the validator.
 *
 * Sections: state and sticky errors; declarations (sizes, params, tunables,
 * tiles); loops; value helpers (types, scope, broadcasting); operations;
 * finishing.
 *
 * Every operation checks its operands as it is added, so a kernel that
 * reaches ts_builder_finish() is well formed except for the whole-kernel
 * checks done there. The tile-language parser builds through these same
 * calls, so both front ends give the same IR and the same messages.
 */
#include "ir.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ts_builder {
    ts__kir ir;
    int caps_sizes, caps_params, caps_tunables, caps_tiles, caps_values, caps_ops;
    ts_status error;
    char error_msg[1024];
    int loop_stack[32];
    int depth;
};

/* ---------------------------------------------------------------- sticky errors */

static ts_status fail(ts_builder *b, ts_status s, const char *fmt, ...) TS__PRINTF(3, 4);

static ts_status fail(ts_builder *b, ts_status s, const char *fmt, ...) {
    if (b->error) return b->error;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(b->error_msg, sizeof b->error_msg, "kernel '%s', op %d: %s", b->ir.name, b->ir.nops, msg);
    b->error = s;
    ts__error(s, "%s", b->error_msg);
    return s;
}

#define GROW(b, arr, n, caps)                                                          \
    do {                                                                               \
        if ((b)->ir.n >= (b)->caps) {                                                  \
            int nc = (b)->caps ? (b)->caps * 2 : 16;                                   \
            void *p = ts__realloc_array((b)->ir.arr, (size_t)nc, sizeof *(b)->ir.arr); \
            if (!p) { fail((b), TS_ERR_OUT_OF_MEMORY, "out of memory"); return TS_NONE; } \
            (b)->ir.arr = p;                                                           \
            (b)->caps = nc;                                                            \
        }                                                                              \
    } while (0)

static int valid_ident(const char *s) {
    if (!s || !*s || strlen(s) >= TS__MAX_NAME) return 0;
    if (!isalpha((unsigned char)s[0]) && s[0] != '_') return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_') return 0;
    return 1;
}

ts_status ts_builder_create(const char *name, ts_builder **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_builder_create: out is NULL");
    *out = NULL;
    if (!valid_ident(name))
        return ts__error(TS_ERR_NAME, "kernel name '%s' is not an identifier (letters, digits, _; at most %d chars)",
                         name ? name : "(null)", TS__MAX_NAME - 1);
    ts_builder *b = ts__calloc(1, sizeof *b);
    if (!b) return TS_ERR_OUT_OF_MEMORY;
    snprintf(b->ir.name, sizeof b->ir.name, "%s", name);
    *out = b;
    return TS_OK;
}

void ts_builder_destroy(ts_builder *b) {
    if (!b) return;
    ts__kir_free(&b->ir);
    free(b);
}

/* ---------------------------------------------------------------- declarations */

static int name_taken(const ts__kir *ir, const char *name) {
    return ts__find_param(ir, name) >= 0 || ts__find_tunable(ir, name) >= 0 || ts__find_size(ir, name) >= 0;
}

ts_size ts_size_sym(ts_builder *b, const char *name) {
    if (!b || b->error) return TS_NONE;
    if (!valid_ident(name)) { fail(b, TS_ERR_NAME, "size name '%s' is not an identifier", name ? name : "(null)"); return TS_NONE; }
    int i = ts__find_size(&b->ir, name);
    if (i >= 0) return i;
    if (ts__find_param(&b->ir, name) >= 0 || ts__find_tunable(&b->ir, name) >= 0) {
        fail(b, TS_ERR_NAME, "size name '%s' is already a parameter or tunable", name);
        return TS_NONE;
    }
    GROW(b, sizes, nsizes, caps_sizes);
    ts__size *s = &b->ir.sizes[b->ir.nsizes];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return b->ir.nsizes++;
}

ts_size ts_size_fixed(ts_builder *b, int64_t n) {
    if (!b || b->error) return TS_NONE;
    if (n < 1 || n > (INT64_C(1) << 40)) { fail(b, TS_ERR_INVALID_ARGUMENT, "fixed size %lld is not in 1..2^40", (long long)n); return TS_NONE; }
    for (int i = 0; i < b->ir.nsizes; i++)
        if (!b->ir.sizes[i].name[0] && b->ir.sizes[i].fixed == n) return i;
    GROW(b, sizes, nsizes, caps_sizes);
    ts__size *s = &b->ir.sizes[b->ir.nsizes];
    memset(s, 0, sizeof *s);
    s->fixed = n;
    return b->ir.nsizes++;
}

static int valid_size(const ts_builder *b, ts_size s) { return s >= 0 && s < b->ir.nsizes; }

static ts_param add_param(ts_builder *b, const char *name, int is_tensor, ts_dtype dtype, int rank, const ts_size *sizes) {
    if (!b || b->error) return TS_NONE;
    if (b->ir.ntiles || b->ir.nops) { fail(b, TS_ERR_STATE, "parameter '%s' declared after the grid or an operation", name ? name : "(null)"); return TS_NONE; }
    if (!valid_ident(name)) { fail(b, TS_ERR_NAME, "parameter name '%s' is not an identifier", name ? name : "(null)"); return TS_NONE; }
    if (name_taken(&b->ir, name)) { fail(b, TS_ERR_NAME, "duplicate name '%s'", name); return TS_NONE; }
    if ((unsigned)dtype >= TS_DTYPE_COUNT) { fail(b, TS_ERR_DTYPE_MISMATCH, "parameter '%s' has invalid dtype %d", name, (int)dtype); return TS_NONE; }
    if (is_tensor && (rank < 1 || rank > TS_MAX_RANK)) { fail(b, TS_ERR_RANK, "tensor '%s' has rank %d (expected 1..%d)", name, rank, TS_MAX_RANK); return TS_NONE; }
    if (is_tensor && !sizes) { fail(b, TS_ERR_INVALID_ARGUMENT, "tensor '%s' has no sizes", name); return TS_NONE; }
    for (int d = 0; is_tensor && d < rank; d++)
        if (!valid_size(b, sizes[d])) { fail(b, TS_ERR_INVALID_ARGUMENT, "tensor '%s' dim %d has an invalid size handle", name, d); return TS_NONE; }
    GROW(b, params, nparams, caps_params);
    ts__param *p = &b->ir.params[b->ir.nparams];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->is_tensor = is_tensor;
    p->dtype = dtype;
    p->rank = is_tensor ? rank : 0;
    for (int d = 0; d < p->rank; d++) p->sizes[d] = sizes[d];
    return b->ir.nparams++;
}

ts_param ts_param_tensor(ts_builder *b, const char *name, ts_dtype dtype, int rank, const ts_size *sizes) {
    return add_param(b, name, 1, dtype, rank, sizes);
}

ts_param ts_param_scalar(ts_builder *b, const char *name, ts_dtype dtype) {
    return add_param(b, name, 0, dtype, 0, NULL);
}

static int is_pow2(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

ts_status ts_tunable(ts_builder *b, const char *name, int64_t min, int64_t max, int64_t def) {
    if (!b) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tunable: builder is NULL");
    if (b->error) return b->error;
    if (!valid_ident(name)) return fail(b, TS_ERR_NAME, "tunable name '%s' is not an identifier", name ? name : "(null)");
    if (name_taken(&b->ir, name)) return fail(b, TS_ERR_NAME, "duplicate name '%s'", name);
    if (!is_pow2(min) || !is_pow2(max) || !is_pow2(def) || min > max || def < min || def > max || max > 65536)
        return fail(b, TS_ERR_INVALID_KERNEL,
                    "tunable '%s': range %lld..%lld default %lld must be powers of two with min <= default <= max <= 65536",
                    name, (long long)min, (long long)max, (long long)def);
    if (b->ir.ntunables >= b->caps_tunables) {
        int nc = b->caps_tunables ? b->caps_tunables * 2 : 8;
        void *p = ts__realloc_array(b->ir.tunables, (size_t)nc, sizeof *b->ir.tunables);
        if (!p) return fail(b, TS_ERR_OUT_OF_MEMORY, "out of memory");
        b->ir.tunables = p;
        b->caps_tunables = nc;
    }
    ts__tunable *t = &b->ir.tunables[b->ir.ntunables++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->min = min;
    t->max = max;
    t->def = def;
    return TS_OK;
}

static ts_tile add_tile(ts_builder *b, const char *name, ts_size extent, int block, int is_grid) {
    for (int i = 0; i < b->ir.ntiles; i++)
        if (strcmp(b->ir.tiles[i].name, name) == 0) { fail(b, TS_ERR_NAME, "duplicate tile name '%s'", name); return TS_NONE; }
    if (name_taken(&b->ir, name)) { fail(b, TS_ERR_NAME, "tile name '%s' is already a parameter, size or tunable", name); return TS_NONE; }
    GROW(b, tiles, ntiles, caps_tiles);
    ts__tile *t = &b->ir.tiles[b->ir.ntiles];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->extent = extent;
    t->block = block;
    t->is_grid = is_grid;
    t->loop_op = -1;
    return b->ir.ntiles++;
}

static int block_of(ts_builder *b, const char *what, const char *block) {
    if (!block) return TS__BLOCK_WHOLE;
    int t = ts__find_tunable(&b->ir, block);
    if (t < 0) {
        fail(b, TS_ERR_UNKNOWN_TUNABLE, "%s uses unknown tunable '%s' as its block size", what, block);
        return TS_NONE;
    }
    return t;
}

static ts_tile grid_tile(ts_builder *b, const char *name, ts_size extent, const char *block, int point) {
    if (!b || b->error) return TS_NONE;
    if (!valid_ident(name)) { fail(b, TS_ERR_NAME, "tile name '%s' is not an identifier", name ? name : "(null)"); return TS_NONE; }
    if (b->ir.nops) { fail(b, TS_ERR_STATE, "grid tile '%s' declared after an operation", name); return TS_NONE; }
    if (b->ir.ngrid >= TS_MAX_GRID) { fail(b, TS_ERR_LIMIT, "grid tile '%s': a grid has at most %d dims", name, TS_MAX_GRID); return TS_NONE; }
    if (!valid_size(b, extent)) { fail(b, TS_ERR_INVALID_ARGUMENT, "grid tile '%s' has an invalid extent handle", name); return TS_NONE; }
    char what[128];
    snprintf(what, sizeof what, "grid tile '%s'", name);
    int blk = point ? TS__BLOCK_POINT : block_of(b, what, block);
    if (blk == TS_NONE) return TS_NONE;
    ts_tile t = add_tile(b, name, extent, blk, 1);
    if (t != TS_NONE) b->ir.grid[b->ir.ngrid++] = t;
    return t;
}

ts_tile ts_grid_tile(ts_builder *b, const char *name, ts_size extent, const char *block) {
    return grid_tile(b, name, extent, block, 0);
}

ts_tile ts_grid_point(ts_builder *b, const char *name, ts_size extent) { return grid_tile(b, name, extent, NULL, 1); }

/* ---------------------------------------------------------------- values and scope */

static int cur_scope(const ts_builder *b) { return b->depth ? b->loop_stack[b->depth - 1] : -1; }

static ts__op *new_op(ts_builder *b, ts__op_kind kind) {
    if (b->ir.nops >= b->caps_ops) {
        int nc = b->caps_ops ? b->caps_ops * 2 : 32;
        void *p = ts__realloc_array(b->ir.ops, (size_t)nc, sizeof *b->ir.ops);
        if (!p) { fail(b, TS_ERR_OUT_OF_MEMORY, "out of memory"); return NULL; }
        b->ir.ops = p;
        b->caps_ops = nc;
    }
    ts__op *op = &b->ir.ops[b->ir.nops];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->result = TS_NONE;
    op->param = TS_NONE;
    op->tile = TS_NONE;
    op->match = -1;
    for (int i = 0; i < 3; i++) op->in[i] = TS_NONE;
    return op;
}

/* Appends the op being built (the one new_op returned). */
static int commit_op(ts_builder *b) { return b->ir.nops++; }

static ts_val new_value(ts_builder *b, ts_dtype dtype, int rank, const ts_tile *dims, int def_op) {
    if (b->ir.nvalues >= b->caps_values) {
        int nc = b->caps_values ? b->caps_values * 2 : 32;
        void *p = ts__realloc_array(b->ir.values, (size_t)nc, sizeof *b->ir.values);
        if (!p) { fail(b, TS_ERR_OUT_OF_MEMORY, "out of memory"); return TS_NONE; }
        b->ir.values = p;
        b->caps_values = nc;
    }
    ts__value *v = &b->ir.values[b->ir.nvalues];
    memset(v, 0, sizeof *v);
    v->dtype = dtype;
    v->rank = rank;
    for (int i = 0; i < TS_MAX_RANK; i++) v->dims[i] = i < rank ? dims[i] : TS_NONE;
    v->def_op = def_op;
    v->scope = cur_scope(b);
    return b->ir.nvalues++;
}

/* A loop (LOOP_BEGIN index) is open at the current point. */
static int loop_open(const ts_builder *b, int loop_op) {
    if (loop_op < 0) return 1;
    for (int i = 0; i < b->depth; i++)
        if (b->loop_stack[i] == loop_op) return 1;
    return 0;
}

static const char *value_label(const ts_builder *b, ts_val v, char *buf, size_t n) {
    if (v >= 0 && v < b->ir.nvalues && b->ir.values[v].name[0]) snprintf(buf, n, "'%s'", b->ir.values[v].name);
    else snprintf(buf, n, "%%%d", (int)v);
    return buf;
}

static int check_value(ts_builder *b, const char *opname, ts_val v) {
    char lab[96];
    if (b->error) return 0;
    if (v < 0 || v >= b->ir.nvalues) { fail(b, TS_ERR_INVALID_ARGUMENT, "%s: operand %d is not a value of this kernel", opname, (int)v); return 0; }
    if (!loop_open(b, b->ir.values[v].scope)) {
        fail(b, TS_ERR_SCOPE, "%s: value %s is used outside the loop '%s' that defines it", opname, value_label(b, v, lab, sizeof lab),
             b->ir.tiles[b->ir.ops[b->ir.values[v].scope].tile].name);
        return 0;
    }
    return 1;
}

static int check_tile(ts_builder *b, const char *opname, ts_tile t) {
    if (b->error) return 0;
    if (t < 0 || t >= b->ir.ntiles) { fail(b, TS_ERR_INVALID_ARGUMENT, "%s: %d is not a tile of this kernel", opname, (int)t); return 0; }
    if (!b->ir.tiles[t].is_grid && !loop_open(b, b->ir.tiles[t].loop_op)) {
        fail(b, TS_ERR_SCOPE, "%s: tile '%s' is used outside its loop", opname, b->ir.tiles[t].name);
        return 0;
    }
    return 1;
}

static void shape_str(const ts_builder *b, int rank, const ts_tile *dims, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? ", " : "", dims[i] == TS_NONE ? "1" : b->ir.tiles[dims[i]].name);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* numpy-style broadcast of two shapes; returns 0 on mismatch. */
static int broadcast_shapes(int ra, const ts_tile *a, int rb, const ts_tile *bd, int *rout, ts_tile *out) {
    int r = ra > rb ? ra : rb;
    for (int i = 0; i < r; i++) {
        int ia = ra - r + i, ib = rb - r + i;
        ts_tile da = ia >= 0 ? a[ia] : TS_NONE, db = ib >= 0 ? bd[ib] : TS_NONE;
        if (da == db || db == TS_NONE) out[i] = da;
        else if (da == TS_NONE) out[i] = db;
        else return 0;
    }
    *rout = r;
    return 1;
}

static int broadcast_values(ts_builder *b, const char *opname, ts_val x, ts_val y, int *rank, ts_tile *dims) {
    const ts__value *vx = &b->ir.values[x], *vy = &b->ir.values[y];
    if (!broadcast_shapes(vx->rank, vx->dims, vy->rank, vy->dims, rank, dims)) {
        char sx[160], sy[160], lx[96], ly[96];
        shape_str(b, vx->rank, vx->dims, sx, sizeof sx);
        shape_str(b, vy->rank, vy->dims, sy, sizeof sy);
        fail(b, TS_ERR_SHAPE_MISMATCH, "%s: shapes %s of %s and %s of %s do not broadcast", opname, sx,
             value_label(b, x, lx, sizeof lx), sy, value_label(b, y, ly, sizeof ly));
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- loops */

static int check_int_scalar(ts_builder *b, const char *what, ts_val v);

static ts_tile loop_begin(ts_builder *b, const char *name, ts_size extent, ts_val lo, ts_val hi, const char *block, int ncarry,
                          const ts_val *init, ts_val *carried) {
    if (!b || b->error) return TS_NONE;
    int ranged = lo != TS_NONE || hi != TS_NONE;
    if (!valid_ident(name)) { fail(b, TS_ERR_NAME, "loop tile name '%s' is not an identifier", name ? name : "(null)"); return TS_NONE; }
    if (b->ir.ngrid == 0) { fail(b, TS_ERR_STATE, "loop '%s' before any grid tile: declare the grid first", name); return TS_NONE; }
    if (ncarry < 0 || ncarry > TS__MAX_CARRY) { fail(b, TS_ERR_LIMIT, "loop '%s' carries %d values (at most %d)", name, ncarry, TS__MAX_CARRY); return TS_NONE; }
    if (ncarry && (!init || !carried)) { fail(b, TS_ERR_INVALID_ARGUMENT, "loop '%s': init or carried is NULL", name); return TS_NONE; }
    if (b->depth >= 32) { fail(b, TS_ERR_LIMIT, "loop '%s' nests deeper than 32", name); return TS_NONE; }
    if (!ranged && !valid_size(b, extent)) { fail(b, TS_ERR_INVALID_ARGUMENT, "loop '%s' has an invalid extent handle", name); return TS_NONE; }
    char what[128];
    snprintf(what, sizeof what, "loop '%s'", name);
    if (ranged) {
        char w2[160];
        snprintf(w2, sizeof w2, "the range start of loop '%s'", name);
        if (!check_int_scalar(b, w2, lo)) return TS_NONE;
        snprintf(w2, sizeof w2, "the range end of loop '%s'", name);
        if (!check_int_scalar(b, w2, hi)) return TS_NONE;
        if (!block) { fail(b, TS_ERR_INVALID_ARGUMENT, "loop '%s' over a range needs a tunable block size", name); return TS_NONE; }
    }
    for (int i = 0; i < ncarry; i++)
        if (!check_value(b, what, init[i])) return TS_NONE;
    int blk = block_of(b, what, block);
    if (blk == TS_NONE) return TS_NONE;
    ts_tile t = add_tile(b, name, ranged ? TS_NONE : extent, blk, 0);
    if (t == TS_NONE) return TS_NONE;
    b->ir.tiles[t].ranged = ranged;
    ts__op *op = new_op(b, TS__OP_LOOP_BEGIN);
    if (!op) return TS_NONE;
    int idx = commit_op(b);
    b->ir.tiles[t].loop_op = idx;
    op = &b->ir.ops[idx];
    op->tile = t;
    op->ncarry = ncarry;
    if (ranged) {
        op->in[0] = lo;
        op->in[1] = hi;
    }
    b->loop_stack[b->depth++] = idx;
    for (int i = 0; i < ncarry; i++) {
        const ts__value *iv = &b->ir.values[init[i]];
        ts_tile dims[TS_MAX_RANK];
        memcpy(dims, iv->dims, sizeof dims);
        ts_dtype dt = iv->dtype;
        int rank = iv->rank;
        ts_val c = new_value(b, dt, rank, dims, idx);
        if (c == TS_NONE) return TS_NONE;
        op = &b->ir.ops[idx];
        op->init[i] = init[i];
        op->carried[i] = c;
        carried[i] = c;
    }
    return t;
}

ts_tile ts_loop_begin(ts_builder *b, const char *name, ts_size extent, const char *block, int ncarry, const ts_val *init,
                      ts_val *carried) {
    return loop_begin(b, name, extent, TS_NONE, TS_NONE, block, ncarry, init, carried);
}

ts_tile ts_loop_begin_range(ts_builder *b, const char *name, ts_val lo, ts_val hi, const char *block, int ncarry, const ts_val *init,
                            ts_val *carried) {
    if (b && !b->error && (lo == TS_NONE || hi == TS_NONE)) {
        fail(b, TS_ERR_INVALID_ARGUMENT, "loop '%s': a range needs both ends", name ? name : "(null)");
        return TS_NONE;
    }
    return loop_begin(b, name, TS_NONE, lo, hi, block, ncarry, init, carried);
}

ts_status ts_loop_end(ts_builder *b, const ts_val *yields, ts_val *results) {
    if (!b) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_loop_end: builder is NULL");
    if (b->error) return b->error;
    if (b->depth == 0) return fail(b, TS_ERR_STATE, "loop end without an open loop");
    int begin = b->loop_stack[b->depth - 1];
    ts__op bop = b->ir.ops[begin];
    const char *lname = b->ir.tiles[bop.tile].name;
    if (bop.ncarry && (!yields || !results)) return fail(b, TS_ERR_INVALID_ARGUMENT, "end of loop '%s': yields or results is NULL", lname);
    char what[128];
    snprintf(what, sizeof what, "yield of loop '%s'", lname);
    for (int i = 0; i < bop.ncarry; i++) {
        if (!check_value(b, what, yields[i])) return b->error;
        const ts__value *y = &b->ir.values[yields[i]], *c = &b->ir.values[bop.carried[i]];
        if (y->dtype != c->dtype)
            return fail(b, TS_ERR_DTYPE_MISMATCH, "%s: value %d is %s but the carried value is %s", what, i, ts_dtype_name(y->dtype),
                        ts_dtype_name(c->dtype));
        if (y->rank != c->rank || memcmp(y->dims, c->dims, sizeof y->dims) != 0) {
            char sy[160], sc[160];
            shape_str(b, y->rank, y->dims, sy, sizeof sy);
            shape_str(b, c->rank, c->dims, sc, sizeof sc);
            return fail(b, TS_ERR_SHAPE_MISMATCH, "%s: value %d has shape %s but the carried value has %s", what, i, sy, sc);
        }
    }
    ts__op *op = new_op(b, TS__OP_LOOP_END);
    if (!op) return b->error;
    int idx = commit_op(b);
    b->depth--;
    op = &b->ir.ops[idx];
    op->tile = bop.tile;
    op->ncarry = bop.ncarry;
    op->match = begin;
    b->ir.ops[begin].match = idx;
    for (int i = 0; i < bop.ncarry; i++) {
        const ts__value *c = &b->ir.values[bop.carried[i]];
        ts_tile dims[TS_MAX_RANK];
        memcpy(dims, c->dims, sizeof dims);
        ts_val r = new_value(b, c->dtype, c->rank, dims, idx);
        if (r == TS_NONE) return b->error;
        b->ir.ops[idx].yields[i] = yields[i];
        b->ir.ops[idx].results[i] = r;
        results[i] = r;
    }
    return TS_OK;
}

/* ---------------------------------------------------------------- operations */

/* Adds an op with one result; `op` was filled by the caller. */
static ts_val finish_value_op(ts_builder *b, ts__op *op, ts_dtype dtype, int rank, const ts_tile *dims) {
    int idx = commit_op(b);
    ts_val v = new_value(b, dtype, rank, dims, idx);
    if (v == TS_NONE) return TS_NONE;
    b->ir.ops[idx].result = v;
    (void)op;
    return v;
}

static int check_tensor_param(ts_builder *b, const char *opname, ts_param t) {
    if (b->error) return 0;
    if (t < 0 || t >= b->ir.nparams) { fail(b, TS_ERR_INVALID_ARGUMENT, "%s: %d is not a parameter", opname, (int)t); return 0; }
    if (!b->ir.params[t].is_tensor) { fail(b, TS_ERR_INVALID_ARGUMENT, "%s: '%s' is a scalar, not a tensor", opname, b->ir.params[t].name); return 0; }
    return 1;
}

/* A rank-0 integer value used in an index or as a loop bound. */
static int check_int_scalar(ts_builder *b, const char *what, ts_val v) {
    if (!check_value(b, what, v)) return 0;
    const ts__value *iv = &b->ir.values[v];
    char lab[96];
    if (iv->rank != 0 || ts_dtype_is_float(iv->dtype) || iv->dtype == TS_BOOL) {
        fail(b, TS_ERR_INDEX, "%s: %s must be a rank-0 integer value (it is %s of rank %d)", what, value_label(b, v, lab, sizeof lab),
             ts_dtype_name(iv->dtype), iv->rank);
        return 0;
    }
    return 1;
}

/* Checks an index list against tensor t; writes the dims it adds. Any tile
 * may index any dim: accesses are masked by the tiles' validity and the
 * dim's range (docs/language.md, "Indexing"). */
static int check_index(ts_builder *b, const char *opname, ts_param t, const ts_index *idx, int *rank, ts_tile *dims) {
    const ts__param *p = &b->ir.params[t];
    if (!idx) { fail(b, TS_ERR_INDEX, "%s '%s': no index", opname, p->name); return 0; }
    *rank = 0;
    char what[160];
    for (int d = 0; d < p->rank; d++) {
        const ts_index *ix = &idx[d];
        snprintf(what, sizeof what, "%s '%s' dim %d", opname, p->name, d);
        switch (ix->kind) {
        case TS_IDX_CONST:
            if (ix->value < 0) { fail(b, TS_ERR_INDEX, "%s '%s': constant index %lld in dim %d is negative", opname, p->name, (long long)ix->value, d); return 0; }
            continue;
        case TS_IDX_TILE:
        case TS_IDX_POINT:
        case TS_IDX_SHIFT:
            if (!check_tile(b, opname, ix->tile)) return 0;
            if (ix->kind == TS_IDX_SHIFT && !check_int_scalar(b, what, ix->val)) return 0;
            if (ix->kind != TS_IDX_POINT) {
                if (*rank >= TS_MAX_RANK) { fail(b, TS_ERR_RANK, "%s: the access has more than %d dims", what, TS_MAX_RANK); return 0; }
                dims[(*rank)++] = ix->tile;
            }
            continue;
        case TS_IDX_SCALAR:
            if (!check_int_scalar(b, what, ix->val)) return 0;
            continue;
        case TS_IDX_VALUE: {
            if (!check_value(b, what, ix->val)) return 0;
            const ts__value *iv = &b->ir.values[ix->val];
            char lab[96];
            if (ts_dtype_is_float(iv->dtype) || iv->dtype == TS_BOOL) {
                fail(b, TS_ERR_DTYPE_MISMATCH, "%s: index %s is %s (indices are integers)", what, value_label(b, ix->val, lab, sizeof lab), ts_dtype_name(iv->dtype));
                return 0;
            }
            if (*rank + iv->rank > TS_MAX_RANK) { fail(b, TS_ERR_RANK, "%s: the access has more than %d dims", what, TS_MAX_RANK); return 0; }
            for (int i = 0; i < iv->rank; i++) dims[(*rank)++] = iv->dims[i];
            continue;
        }
        default: fail(b, TS_ERR_INDEX, "%s '%s': dim %d has an invalid index kind", opname, p->name, d); return 0;
        }
    }
    for (int i = 0; i < *rank; i++)
        for (int j = i + 1; j < *rank; j++)
            if (dims[i] != TS_NONE && dims[i] == dims[j]) {
                fail(b, TS_ERR_INDEX, "%s '%s': tile '%s' gives two dims of the access (use a value index for a diagonal)", opname, p->name, b->ir.tiles[dims[i]].name);
                return 0;
            }
    return 1;
}

ts_val ts_load(ts_builder *b, ts_param t, const ts_index *idx, double fill) {
    if (!b || b->error) return TS_NONE;
    if (!check_tensor_param(b, "load", t)) return TS_NONE;
    if (b->ir.ngrid == 0) { fail(b, TS_ERR_STATE, "load '%s' before any grid tile", b->ir.params[t].name); return TS_NONE; }
    ts_tile dims[TS_MAX_RANK];
    int rank;
    if (!check_index(b, "load", t, idx, &rank, dims)) return TS_NONE;
    ts__op *op = new_op(b, TS__OP_LOAD);
    if (!op) return TS_NONE;
    op->param = t;
    for (int d = 0; d < b->ir.params[t].rank; d++) op->idx[d] = idx[d];
    op->value = fill;
    return finish_value_op(b, op, b->ir.params[t].dtype, rank, dims);
}

static ts_status store_like(ts_builder *b, ts__op_kind kind, const char *opname, ts_param t, const ts_index *idx, ts_val v) {
    if (!b) return ts__error(TS_ERR_INVALID_ARGUMENT, "%s: builder is NULL", opname);
    if (b->error) return b->error;
    if (!check_tensor_param(b, opname, t) || !check_value(b, opname, v)) return b->error;
    ts_tile dims[TS_MAX_RANK], out[TS_MAX_RANK];
    int rank, r;
    if (!check_index(b, opname, t, idx, &rank, dims)) return b->error;
    const ts__value *val = &b->ir.values[v];
    if (!broadcast_shapes(rank, dims, val->rank, val->dims, &r, out) || r != rank || memcmp(out, dims, sizeof(ts_tile) * (size_t)rank) != 0) {
        char s1[160], s2[160], lab[96];
        shape_str(b, val->rank, val->dims, s1, sizeof s1);
        shape_str(b, rank, dims, s2, sizeof s2);
        return fail(b, TS_ERR_SHAPE_MISMATCH, "%s '%s': value %s of shape %s does not fit the indexed shape %s", opname,
                    b->ir.params[t].name, value_label(b, v, lab, sizeof lab), s1, s2);
    }
    if (kind == TS__OP_ATOMIC_ADD) {
        ts_dtype td = b->ir.params[t].dtype;
        if (td != TS_F32 && td != TS_I32)
            return fail(b, TS_ERR_DTYPE_MISMATCH, "atomic_add '%s': tensor is %s (atomic add needs f32 or i32)", b->ir.params[t].name, ts_dtype_name(td));
    }
    ts__op *op = new_op(b, kind);
    if (!op) return b->error;
    op->param = t;
    for (int d = 0; d < b->ir.params[t].rank; d++) op->idx[d] = idx[d];
    op->in[0] = v;
    commit_op(b);
    return TS_OK;
}

ts_status ts_store(ts_builder *b, ts_param t, const ts_index *idx, ts_val v) { return store_like(b, TS__OP_STORE, "store", t, idx, v); }

ts_status ts_atomic_add(ts_builder *b, ts_param t, const ts_index *idx, ts_val v) {
    return store_like(b, TS__OP_ATOMIC_ADD, "atomic_add", t, idx, v);
}

ts_val ts_gather(ts_builder *b, ts_param table, ts_val ids, ts_index col, double fill) {
    if (!b || b->error) return TS_NONE;
    if (!check_tensor_param(b, "gather", table) || !check_value(b, "gather", ids)) return TS_NONE;
    const ts__param *p = &b->ir.params[table];
    if (p->rank != 2) { fail(b, TS_ERR_RANK, "gather '%s': table has rank %d (gather needs a rank-2 table)", p->name, p->rank); return TS_NONE; }
    const ts__value *iv = &b->ir.values[ids];
    if (iv->dtype != TS_I32 && iv->dtype != TS_I64) { fail(b, TS_ERR_DTYPE_MISMATCH, "gather '%s': ids are %s (need i32 or i64)", p->name, ts_dtype_name(iv->dtype)); return TS_NONE; }
    if (iv->rank != 1) { fail(b, TS_ERR_SHAPE_MISMATCH, "gather '%s': ids have rank %d (need rank 1)", p->name, iv->rank); return TS_NONE; }
    if (col.kind != TS_IDX_TILE) { fail(b, TS_ERR_INDEX, "gather '%s': the column index must be a tile", p->name); return TS_NONE; }
    if (!check_tile(b, "gather", col.tile)) return TS_NONE;
    if (b->ir.tiles[col.tile].extent != p->sizes[1]) {
        fail(b, TS_ERR_SHAPE_MISMATCH, "gather '%s': column tile '%s' is not over the table's dim 1", p->name, b->ir.tiles[col.tile].name);
        return TS_NONE;
    }
    ts__op *op = new_op(b, TS__OP_GATHER);
    if (!op) return TS_NONE;
    op->param = table;
    op->in[0] = ids;
    op->idx[0] = col;
    op->value = fill;
    ts_tile dims[2] = {iv->dims[0], col.tile};
    return finish_value_op(b, op, p->dtype, 2, dims);
}

ts_val ts_scalar(ts_builder *b, ts_param p) {
    if (!b || b->error) return TS_NONE;
    if (p < 0 || p >= b->ir.nparams) { fail(b, TS_ERR_INVALID_ARGUMENT, "scalar: %d is not a parameter", (int)p); return TS_NONE; }
    if (b->ir.params[p].is_tensor) { fail(b, TS_ERR_INVALID_ARGUMENT, "scalar: '%s' is a tensor", b->ir.params[p].name); return TS_NONE; }
    if (b->ir.ngrid == 0) { fail(b, TS_ERR_STATE, "scalar '%s' used before any grid tile", b->ir.params[p].name); return TS_NONE; }
    ts__op *op = new_op(b, TS__OP_SCALAR);
    if (!op) return TS_NONE;
    op->param = p;
    return finish_value_op(b, op, b->ir.params[p].dtype, 0, NULL);
}

static int check_dims(ts_builder *b, const char *opname, int rank, const ts_tile *dims) {
    if (rank < 0 || rank > TS_MAX_RANK) { fail(b, TS_ERR_RANK, "%s: rank %d (expected 0..%d)", opname, rank, TS_MAX_RANK); return 0; }
    if (rank && !dims) { fail(b, TS_ERR_INVALID_ARGUMENT, "%s: dims is NULL", opname); return 0; }
    for (int i = 0; i < rank; i++)
        if (dims[i] != TS_NONE && !check_tile(b, opname, dims[i])) return 0;
    return 1;
}

ts_val ts_full(ts_builder *b, ts_dtype dtype, int rank, const ts_tile *dims, double value) {
    if (!b || b->error) return TS_NONE;
    if ((unsigned)dtype >= TS_DTYPE_COUNT) { fail(b, TS_ERR_DTYPE_MISMATCH, "full: invalid dtype %d", (int)dtype); return TS_NONE; }
    if (b->ir.ngrid == 0) { fail(b, TS_ERR_STATE, "full before any grid tile"); return TS_NONE; }
    if (!check_dims(b, "full", rank, dims)) return TS_NONE;
    ts__op *op = new_op(b, TS__OP_FULL);
    if (!op) return TS_NONE;
    op->dtype = dtype;
    op->value = value;
    return finish_value_op(b, op, dtype, rank, dims);
}

ts_val ts_zeros(ts_builder *b, ts_dtype dtype, int rank, const ts_tile *dims) { return ts_full(b, dtype, rank, dims, 0.0); }

ts_val ts_arange(ts_builder *b, ts_tile t) {
    if (!b || b->error) return TS_NONE;
    if (!check_tile(b, "arange", t)) return TS_NONE;
    ts__op *op = new_op(b, TS__OP_ARANGE);
    if (!op) return TS_NONE;
    op->tile = t;
    return finish_value_op(b, op, TS_I32, 1, &t);
}

ts_val ts_tile_pos(ts_builder *b, ts_tile t, ts_pos_kind which) {
    if (!b || b->error) return TS_NONE;
    if ((unsigned)which > TS_POS_ID) { fail(b, TS_ERR_INVALID_ARGUMENT, "tile position: invalid kind %d", (int)which); return TS_NONE; }
    if (!check_tile(b, "tile position", t)) return TS_NONE;
    ts__op *op = new_op(b, TS__OP_TILE_POS);
    if (!op) return TS_NONE;
    op->tile = t;
    op->sub = (int)which;
    return finish_value_op(b, op, TS_I32, 0, NULL);
}

ts_val ts_size_value(ts_builder *b, ts_size s) {
    if (!b || b->error) return TS_NONE;
    if (!valid_size(b, s)) { fail(b, TS_ERR_INVALID_ARGUMENT, "size value: %d is not a size of this kernel", (int)s); return TS_NONE; }
    if (b->ir.ngrid == 0) { fail(b, TS_ERR_STATE, "size value used before any grid tile"); return TS_NONE; }
    ts__op *op = new_op(b, TS__OP_SIZE);
    if (!op) return TS_NONE;
    op->axis = (int)s;
    return finish_value_op(b, op, TS_I32, 0, NULL);
}

static ts_val rand_op(ts_builder *b, int sub, const char *opname, ts_val seed, int ntiles, const ts_tile *tiles) {
    if (!b || b->error) return TS_NONE;
    if (!check_int_scalar(b, opname, seed)) return TS_NONE;
    if (ntiles < 0 || ntiles > TS_MAX_RANK || (ntiles && !tiles)) { fail(b, TS_ERR_RANK, "%s: %d tiles (0..%d)", opname, ntiles, TS_MAX_RANK); return TS_NONE; }
    for (int i = 0; i < ntiles; i++) {
        if (tiles[i] == TS_NONE) continue;
        if (!check_tile(b, opname, tiles[i])) return TS_NONE;
        if (b->ir.tiles[tiles[i]].ranged) {
            fail(b, TS_ERR_INDEX, "%s: tile '%s' runs over a range, so it has no extent to number elements by", opname, b->ir.tiles[tiles[i]].name);
            return TS_NONE;
        }
        for (int j = 0; j < i; j++)
            if (tiles[j] == tiles[i]) { fail(b, TS_ERR_INDEX, "%s: tile '%s' is listed twice", opname, b->ir.tiles[tiles[i]].name); return TS_NONE; }
    }
    ts__op *op = new_op(b, TS__OP_RAND);
    if (!op) return TS_NONE;
    op->sub = sub;
    op->in[0] = seed;
    op->bdims = ntiles;
    for (int i = 0; i < ntiles; i++) op->idx[i] = TS_AT(tiles[i]);
    ts_tile dims[TS_MAX_RANK];
    for (int i = 0; i < ntiles; i++) dims[i] = tiles[i];
    return finish_value_op(b, op, sub ? TS_I32 : TS_F32, ntiles, dims);
}

ts_val ts_scan(ts_builder *b, ts_scan_op sop, ts_val x, int axis, int reverse) {
    if (!b || b->error) return TS_NONE;
    static const char *const names[] = {"cumsum", "cumprod", "cummax", "cummin"};
    if ((unsigned)sop >= TS_SCAN_COUNT) { fail(b, TS_ERR_INVALID_ARGUMENT, "scan: invalid op %d", (int)sop); return TS_NONE; }
    if (!check_value(b, names[sop], x)) return TS_NONE;
    const ts__value *v = &b->ir.values[x];
    if (v->dtype == TS_BOOL) { fail(b, TS_ERR_DTYPE_MISMATCH, "%s: operand is bool (cast it first)", names[sop]); return TS_NONE; }
    if (axis < 0 || axis >= v->rank) { fail(b, TS_ERR_INVALID_ARGUMENT, "%s: axis %d is not in 0..%d", names[sop], axis, v->rank - 1); return TS_NONE; }
    ts_tile dims[TS_MAX_RANK];
    memcpy(dims, v->dims, sizeof dims);
    ts_dtype dt = v->dtype;
    int rank = v->rank;
    ts__op *op = new_op(b, TS__OP_SCAN);
    if (!op) return TS_NONE;
    op->sub = (int)sop;
    op->in[0] = x;
    op->axis = axis;
    op->keepdim = reverse != 0;
    return finish_value_op(b, op, dt, rank, dims);
}

ts_val ts_rand(ts_builder *b, ts_val seed, int ntiles, const ts_tile *tiles) { return rand_op(b, 0, "rand", seed, ntiles, tiles); }
ts_val ts_randint(ts_builder *b, ts_val seed, int ntiles, const ts_tile *tiles) { return rand_op(b, 1, "randint", seed, ntiles, tiles); }

ts_val ts_unary(ts_builder *b, ts_unary_op uop, ts_val x) {
    if (!b || b->error) return TS_NONE;
    if ((unsigned)uop >= TS_UNARY_COUNT) { fail(b, TS_ERR_INVALID_ARGUMENT, "unary: invalid op %d", (int)uop); return TS_NONE; }
    const char *name = ts__unary_name(uop);
    if (!check_value(b, name, x)) return TS_NONE;
    const ts__value *v = &b->ir.values[x];
    int float_only = uop != TS_NEG && uop != TS_ABS && uop != TS_RELU && uop != TS_NOT;
    if (float_only && !ts_dtype_is_float(v->dtype)) {
        char lab[96];
        fail(b, TS_ERR_DTYPE_MISMATCH, "%s: operand %s is %s (needs a float dtype; cast it first)", name, value_label(b, x, lab, sizeof lab), ts_dtype_name(v->dtype));
        return TS_NONE;
    }
    if (uop == TS_NOT && v->dtype != TS_BOOL) { fail(b, TS_ERR_DTYPE_MISMATCH, "not: operand is %s (needs bool)", ts_dtype_name(v->dtype)); return TS_NONE; }
    ts__op *op = new_op(b, TS__OP_UNARY);
    if (!op) return TS_NONE;
    op->sub = uop;
    op->in[0] = x;
    ts_tile dims[TS_MAX_RANK];
    memcpy(dims, v->dims, sizeof dims);
    return finish_value_op(b, op, v->dtype, v->rank, dims);
}

ts_val ts_binary(ts_builder *b, ts_binary_op bop, ts_val x, ts_val y) {
    if (!b || b->error) return TS_NONE;
    if ((unsigned)bop >= TS_BINARY_COUNT) { fail(b, TS_ERR_INVALID_ARGUMENT, "binary: invalid op %d", (int)bop); return TS_NONE; }
    const char *name = ts__binary_name(bop);
    if (!check_value(b, name, x) || !check_value(b, name, y)) return TS_NONE;
    ts_dtype dx = b->ir.values[x].dtype, dy = b->ir.values[y].dtype;
    if (dx != dy) {
        char lx[96], ly[96];
        fail(b, TS_ERR_DTYPE_MISMATCH, "%s: operands %s (%s) and %s (%s) differ in dtype; cast one first", name, value_label(b, x, lx, sizeof lx),
             ts_dtype_name(dx), value_label(b, y, ly, sizeof ly), ts_dtype_name(dy));
        return TS_NONE;
    }
    if ((bop == TS_AND || bop == TS_OR) && dx != TS_BOOL) { fail(b, TS_ERR_DTYPE_MISMATCH, "%s: operands are %s (needs bool)", name, ts_dtype_name(dx)); return TS_NONE; }
    if (bop == TS_MOD && (ts_dtype_is_float(dx) || dx == TS_BOOL)) { fail(b, TS_ERR_DTYPE_MISMATCH, "mod: operands are %s (needs an integer dtype)", ts_dtype_name(dx)); return TS_NONE; }
    if (bop == TS_POW && !ts_dtype_is_float(dx)) { fail(b, TS_ERR_DTYPE_MISMATCH, "pow: operands are %s (needs a float dtype)", ts_dtype_name(dx)); return TS_NONE; }
    int rank;
    ts_tile dims[TS_MAX_RANK];
    if (!broadcast_values(b, name, x, y, &rank, dims)) return TS_NONE;
    ts__op *op = new_op(b, TS__OP_BINARY);
    if (!op) return TS_NONE;
    op->sub = bop;
    op->in[0] = x;
    op->in[1] = y;
    return finish_value_op(b, op, ts__binary_result_dtype(bop, dx), rank, dims);
}

ts_val ts_select(ts_builder *b, ts_val cond, ts_val x, ts_val y) {
    if (!b || b->error) return TS_NONE;
    if (!check_value(b, "select", cond) || !check_value(b, "select", x) || !check_value(b, "select", y)) return TS_NONE;
    if (b->ir.values[cond].dtype != TS_BOOL) { fail(b, TS_ERR_DTYPE_MISMATCH, "select: condition is %s (needs bool)", ts_dtype_name(b->ir.values[cond].dtype)); return TS_NONE; }
    if (b->ir.values[x].dtype != b->ir.values[y].dtype) {
        fail(b, TS_ERR_DTYPE_MISMATCH, "select: branches are %s and %s; cast one first", ts_dtype_name(b->ir.values[x].dtype), ts_dtype_name(b->ir.values[y].dtype));
        return TS_NONE;
    }
    int r1, r2;
    ts_tile d1[TS_MAX_RANK], d2[TS_MAX_RANK];
    if (!broadcast_values(b, "select", x, y, &r1, d1)) return TS_NONE;
    const ts__value *c = &b->ir.values[cond];
    if (!broadcast_shapes(r1, d1, c->rank, c->dims, &r2, d2)) {
        char s1[160], s2[160];
        shape_str(b, r1, d1, s1, sizeof s1);
        shape_str(b, c->rank, c->dims, s2, sizeof s2);
        fail(b, TS_ERR_SHAPE_MISMATCH, "select: condition shape %s does not broadcast with %s", s2, s1);
        return TS_NONE;
    }
    ts__op *op = new_op(b, TS__OP_SELECT);
    if (!op) return TS_NONE;
    op->in[0] = cond;
    op->in[1] = x;
    op->in[2] = y;
    return finish_value_op(b, op, b->ir.values[x].dtype, r2, d2);
}

ts_val ts_cast(ts_builder *b, ts_val x, ts_dtype to) {
    if (!b || b->error) return TS_NONE;
    if (!check_value(b, "cast", x)) return TS_NONE;
    if ((unsigned)to >= TS_DTYPE_COUNT) { fail(b, TS_ERR_DTYPE_MISMATCH, "cast: invalid target dtype %d", (int)to); return TS_NONE; }
    ts__op *op = new_op(b, TS__OP_CAST);
    if (!op) return TS_NONE;
    op->in[0] = x;
    op->dtype = to;
    const ts__value *v = &b->ir.values[x];
    ts_tile dims[TS_MAX_RANK];
    memcpy(dims, v->dims, sizeof dims);
    return finish_value_op(b, op, to, v->rank, dims);
}

ts_val ts_expand_dims(ts_builder *b, ts_val x, int axis) {
    if (!b || b->error) return TS_NONE;
    if (!check_value(b, "expand_dims", x)) return TS_NONE;
    const ts__value *v = &b->ir.values[x];
    if (v->rank >= TS_MAX_RANK) { fail(b, TS_ERR_RANK, "expand_dims: value already has rank %d", v->rank); return TS_NONE; }
    if (axis < 0 || axis > v->rank) { fail(b, TS_ERR_INVALID_ARGUMENT, "expand_dims: axis %d is not in 0..%d", axis, v->rank); return TS_NONE; }
    ts_tile dims[TS_MAX_RANK];
    for (int i = 0, j = 0; i <= v->rank; i++) dims[i] = i == axis ? TS_NONE : v->dims[j++];
    ts__op *op = new_op(b, TS__OP_EXPAND_DIMS);
    if (!op) return TS_NONE;
    op->in[0] = x;
    op->axis = axis;
    ts_dtype dt = v->dtype;
    int rank = v->rank + 1;
    return finish_value_op(b, op, dt, rank, dims);
}

ts_val ts_broadcast(ts_builder *b, ts_val x, int rank, const ts_tile *dims) {
    if (!b || b->error) return TS_NONE;
    if (!check_value(b, "broadcast", x) || !check_dims(b, "broadcast", rank, dims)) return TS_NONE;
    const ts__value *v = &b->ir.values[x];
    int r;
    ts_tile out[TS_MAX_RANK];
    if (!broadcast_shapes(rank, dims, v->rank, v->dims, &r, out) || r != rank || memcmp(out, dims, sizeof(ts_tile) * (size_t)rank) != 0) {
        char s1[160], s2[160];
        shape_str(b, v->rank, v->dims, s1, sizeof s1);
        shape_str(b, rank, dims, s2, sizeof s2);
        fail(b, TS_ERR_SHAPE_MISMATCH, "broadcast: shape %s cannot broadcast to %s", s1, s2);
        return TS_NONE;
    }
    ts__op *op = new_op(b, TS__OP_BROADCAST);
    if (!op) return TS_NONE;
    op->in[0] = x;
    op->bdims = rank;
    for (int i = 0; i < rank; i++) op->idx[i] = TS_AT(dims[i]);
    ts_dtype dt = v->dtype;
    ts_tile d[TS_MAX_RANK];
    memcpy(d, dims, sizeof(ts_tile) * (size_t)rank);
    return finish_value_op(b, op, dt, rank, d);
}

ts_val ts_reduce(ts_builder *b, ts_reduce_op rop, ts_val x, int axis, int keepdim) {
    if (!b || b->error) return TS_NONE;
    if ((unsigned)rop >= TS_REDUCE_COUNT) { fail(b, TS_ERR_INVALID_ARGUMENT, "reduce: invalid op %d", (int)rop); return TS_NONE; }
    const char *name = ts__reduce_name(rop);
    if (!check_value(b, name, x)) return TS_NONE;
    const ts__value *v = &b->ir.values[x];
    if (v->rank == 0) { fail(b, TS_ERR_RANK, "%s: cannot reduce a scalar", name); return TS_NONE; }
    if (axis < 0 || axis >= v->rank) { fail(b, TS_ERR_INVALID_ARGUMENT, "%s: axis %d is not in 0..%d", name, axis, v->rank - 1); return TS_NONE; }
    if (rop == TS_RED_MEAN && !ts_dtype_is_float(v->dtype)) { fail(b, TS_ERR_DTYPE_MISMATCH, "mean: operand is %s (needs a float dtype)", ts_dtype_name(v->dtype)); return TS_NONE; }
    if (v->dtype == TS_BOOL) { fail(b, TS_ERR_DTYPE_MISMATCH, "%s: cannot reduce bool; cast it first", name); return TS_NONE; }
    ts_tile dims[TS_MAX_RANK];
    int rank = 0;
    for (int i = 0; i < v->rank; i++) {
        if (i == axis) { if (keepdim) dims[rank++] = TS_NONE; }
        else dims[rank++] = v->dims[i];
    }
    ts__op *op = new_op(b, TS__OP_REDUCE);
    if (!op) return TS_NONE;
    op->sub = rop;
    op->in[0] = x;
    op->axis = axis;
    op->keepdim = keepdim ? 1 : 0;
    return finish_value_op(b, op, rop == TS_RED_ARGMAX ? TS_I32 : v->dtype, rank, dims);
}

ts_val ts_dot(ts_builder *b, ts_val x, ts_val y, ts_val acc) {
    if (!b || b->error) return TS_NONE;
    if (!check_value(b, "dot", x) || !check_value(b, "dot", y)) return TS_NONE;
    if (acc != TS_NONE && !check_value(b, "dot", acc)) return TS_NONE;
    const ts__value *vx = &b->ir.values[x], *vy = &b->ir.values[y];
    if (vx->rank != 2 || vy->rank != 2) { fail(b, TS_ERR_RANK, "dot: operands have ranks %d and %d (need 2 and 2)", vx->rank, vy->rank); return TS_NONE; }
    if (vx->dtype != vy->dtype || (!ts_dtype_is_float(vx->dtype) && vx->dtype != TS_I8)) {
        fail(b, TS_ERR_DTYPE_MISMATCH, "dot: operands are %s and %s (need the same float dtype, or both i8)", ts_dtype_name(vx->dtype),
             ts_dtype_name(vy->dtype));
        return TS_NONE;
    }
    ts_dtype rdt = vx->dtype == TS_I8 ? TS_I32 : TS_F32; /* i8 x i8 accumulates exactly in i32 */
    if (vx->dims[1] != vy->dims[0] || vx->dims[1] == TS_NONE) {
        char s1[160], s2[160];
        shape_str(b, 2, vx->dims, s1, sizeof s1);
        shape_str(b, 2, vy->dims, s2, sizeof s2);
        fail(b, TS_ERR_SHAPE_MISMATCH, "dot: inner dims of %s and %s differ (both must be the same tile)", s1, s2);
        return TS_NONE;
    }
    ts_tile dims[2] = {vx->dims[0], vy->dims[1]};
    if (acc != TS_NONE) {
        const ts__value *va = &b->ir.values[acc];
        if (va->dtype != rdt) {
            fail(b, TS_ERR_DTYPE_MISMATCH, "dot: accumulator is %s (needs %s for %s operands)", ts_dtype_name(va->dtype), ts_dtype_name(rdt),
                 ts_dtype_name(vx->dtype));
            return TS_NONE;
        }
        if (va->rank != 2 || va->dims[0] != dims[0] || va->dims[1] != dims[1]) {
            char s1[160], s2[160];
            shape_str(b, va->rank, va->dims, s1, sizeof s1);
            shape_str(b, 2, dims, s2, sizeof s2);
            fail(b, TS_ERR_SHAPE_MISMATCH, "dot: accumulator shape %s is not the result shape %s", s1, s2);
            return TS_NONE;
        }
    }
    ts__op *op = new_op(b, TS__OP_DOT);
    if (!op) return TS_NONE;
    op->in[0] = x;
    op->in[1] = y;
    op->in[2] = acc;
    return finish_value_op(b, op, rdt, 2, dims);
}

ts_val ts_transpose(ts_builder *b, ts_val x) {
    if (!b || b->error) return TS_NONE;
    if (!check_value(b, "transpose", x)) return TS_NONE;
    const ts__value *v = &b->ir.values[x];
    if (v->rank != 2) { fail(b, TS_ERR_RANK, "transpose: operand has rank %d (needs 2)", v->rank); return TS_NONE; }
    ts_tile dims[2] = {v->dims[1], v->dims[0]};
    ts_dtype dt = v->dtype;
    ts__op *op = new_op(b, TS__OP_TRANSPOSE);
    if (!op) return TS_NONE;
    op->in[0] = x;
    return finish_value_op(b, op, dt, 2, dims);
}

ts_status ts_name(ts_builder *b, ts_val v, const char *name) {
    if (!b) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_name: builder is NULL");
    if (b->error) return b->error;
    if (v < 0 || v >= b->ir.nvalues) return fail(b, TS_ERR_INVALID_ARGUMENT, "name: %d is not a value", (int)v);
    if (!valid_ident(name)) return fail(b, TS_ERR_NAME, "value name '%s' is not an identifier", name ? name : "(null)");
    snprintf(b->ir.values[v].name, sizeof b->ir.values[v].name, "%s", name);
    return TS_OK;
}

/* ---------------------------------------------------------------- finishing */

ts_status ts_builder_finish(ts_builder *b, ts_kernel **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_builder_finish: out is NULL");
    *out = NULL;
    if (!b) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_builder_finish: builder is NULL");
    if (b->error) return ts__error(b->error, "%s", b->error_msg);
    if (b->depth) return fail(b, TS_ERR_STATE, "loop '%s' is not closed", b->ir.tiles[b->ir.ops[b->loop_stack[b->depth - 1]].tile].name);
    ts_status s = ts__kir_validate(&b->ir);
    if (s) return s;
    ts_kernel *k = ts__calloc(1, sizeof *k);
    if (!k) return TS_ERR_OUT_OF_MEMORY;
    s = ts__kir_copy(&b->ir, &k->ir);
    if (s) { free(k); return s; }
    k->hash = ts__kir_hash(&k->ir);
    *out = k;
    return TS_OK;
}
