/* ir.c: IR bookkeeping (copy, free, names), the structural hash, the
 * whole-kernel validation run at finish, and the ts_kernel accessors. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

void ts__kir_free(ts__kir *ir) {
    free(ir->sizes);
    free(ir->params);
    free(ir->tunables);
    free(ir->tiles);
    free(ir->values);
    free(ir->ops);
    memset(ir, 0, sizeof *ir);
}

#define DUP(field, n)                                                                  \
    do {                                                                               \
        if (src->n) {                                                                  \
            dst->field = ts__calloc((size_t)src->n, sizeof *src->field);               \
            if (!dst->field) { ts__kir_free(dst); return TS_ERR_OUT_OF_MEMORY; }       \
            memcpy(dst->field, src->field, (size_t)src->n * sizeof *src->field);       \
        }                                                                              \
    } while (0)

ts_status ts__kir_copy(const ts__kir *src, ts__kir *dst) {
    memset(dst, 0, sizeof *dst);
    memcpy(dst->name, src->name, sizeof dst->name);
    dst->nsizes = src->nsizes;
    dst->nparams = src->nparams;
    dst->ntunables = src->ntunables;
    dst->ntiles = src->ntiles;
    dst->nvalues = src->nvalues;
    dst->nops = src->nops;
    dst->ngrid = src->ngrid;
    memcpy(dst->grid, src->grid, sizeof dst->grid);
    DUP(sizes, nsizes);
    DUP(params, nparams);
    DUP(tunables, ntunables);
    DUP(tiles, ntiles);
    DUP(values, nvalues);
    DUP(ops, nops);
    return TS_OK;
}

static const char *const op_kind_names[TS__OP_KIND_COUNT] = {
    "load", "store", "atomic_add", "gather", "scalar", "full", "arange", "unary", "binary",
    "select", "cast", "expand_dims", "broadcast", "reduce", "dot", "transpose", "for", "end", "tile_pos", "size", "rand", "scan"};
static const char *const unary_names[TS_UNARY_COUNT] = {
    "neg", "abs", "exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "erf", "relu", "gelu", "silu", "sin", "cos", "not"};
static const char *const binary_names[TS_BINARY_COUNT] = {
    "add", "sub", "mul", "div", "max", "min", "pow", "lt", "le", "gt", "ge", "eq", "ne", "and", "or", "mod"};
static const char *const reduce_names[TS_REDUCE_COUNT] = {"sum", "max", "min", "mean", "argmax"};

const char *ts__op_kind_name(ts__op_kind k) { return (unsigned)k < TS__OP_KIND_COUNT ? op_kind_names[k] : "?"; }
const char *ts__unary_name(ts_unary_op op) { return (unsigned)op < TS_UNARY_COUNT ? unary_names[op] : "?"; }
const char *ts__binary_name(ts_binary_op op) { return (unsigned)op < TS_BINARY_COUNT ? binary_names[op] : "?"; }
const char *ts__reduce_name(ts_reduce_op op) { return (unsigned)op < TS_REDUCE_COUNT ? reduce_names[op] : "?"; }

int ts__binary_is_compare(int op) { return op >= TS_LT && op <= TS_NE; }

ts_dtype ts__binary_result_dtype(int op, ts_dtype in) { return ts__binary_is_compare(op) ? TS_BOOL : in; }

int ts__find_tunable(const ts__kir *ir, const char *name) {
    for (int i = 0; i < ir->ntunables; i++)
        if (strcmp(ir->tunables[i].name, name) == 0) return i;
    return -1;
}

int ts__find_param(const ts__kir *ir, const char *name) {
    for (int i = 0; i < ir->nparams; i++)
        if (strcmp(ir->params[i].name, name) == 0) return i;
    return -1;
}

int ts__find_size(const ts__kir *ir, const char *name) {
    for (int i = 0; i < ir->nsizes; i++)
        if (ir->sizes[i].name[0] && strcmp(ir->sizes[i].name, name) == 0) return i;
    return -1;
}

/* The hash covers structure, not names: sizes are identified by position
 * (a symbol's name does not matter, only which dims share it), values by
 * index. Tunable names are included because configs bind them by name. */
int ts__kir_has_dot(const ts__kir *ir) {
    for (int i = 0; i < ir->nops; i++)
        if (ir->ops[i].kind == TS__OP_DOT) return 1;
    return 0;
}

uint64_t ts__kir_hash(const ts__kir *ir) {
    uint64_t h = TS__HASH_INIT;
    h = ts__hash_u64(h, 0x7e55e7a1u); /* IR format version 1 */
    h = ts__hash_u64(h, (uint64_t)ir->nsizes);
    for (int i = 0; i < ir->nsizes; i++) h = ts__hash_u64(h, ir->sizes[i].name[0] ? 0 : (uint64_t)ir->sizes[i].fixed);
    h = ts__hash_u64(h, (uint64_t)ir->nparams);
    for (int i = 0; i < ir->nparams; i++) {
        const ts__param *p = &ir->params[i];
        h = ts__hash_u64(h, (uint64_t)p->is_tensor);
        h = ts__hash_u64(h, (uint64_t)p->dtype);
        h = ts__hash_u64(h, (uint64_t)p->rank);
        for (int d = 0; d < p->rank; d++) h = ts__hash_u64(h, (uint64_t)p->sizes[d]);
    }
    h = ts__hash_u64(h, (uint64_t)ir->ntunables);
    for (int i = 0; i < ir->ntunables; i++) {
        h = ts__hash_str(h, ir->tunables[i].name);
        h = ts__hash_u64(h, (uint64_t)ir->tunables[i].min);
        h = ts__hash_u64(h, (uint64_t)ir->tunables[i].max);
        h = ts__hash_u64(h, (uint64_t)ir->tunables[i].def);
    }
    h = ts__hash_u64(h, (uint64_t)ir->ntiles);
    for (int i = 0; i < ir->ntiles; i++) {
        h = ts__hash_u64(h, (uint64_t)ir->tiles[i].extent);
        h = ts__hash_u64(h, (uint64_t)(int64_t)ir->tiles[i].block);
        h = ts__hash_u64(h, (uint64_t)ir->tiles[i].is_grid);
        if (ir->tiles[i].ranged) h = ts__hash_u64(h, 0x52414e47u); /* only then: older kernels keep their hash (tuning keys) */
    }
    h = ts__hash_u64(h, (uint64_t)ir->ngrid);
    for (int i = 0; i < ir->ngrid; i++) h = ts__hash_u64(h, (uint64_t)ir->grid[i]);
    h = ts__hash_u64(h, (uint64_t)ir->nvalues);
    for (int i = 0; i < ir->nvalues; i++) {
        const ts__value *v = &ir->values[i];
        h = ts__hash_u64(h, (uint64_t)v->dtype);
        h = ts__hash_u64(h, (uint64_t)v->rank);
        for (int d = 0; d < v->rank; d++) h = ts__hash_u64(h, (uint64_t)(int64_t)v->dims[d]);
    }
    h = ts__hash_u64(h, (uint64_t)ir->nops);
    for (int i = 0; i < ir->nops; i++) {
        const ts__op *op = &ir->ops[i];
        h = ts__hash_u64(h, (uint64_t)op->kind);
        h = ts__hash_u64(h, (uint64_t)op->sub);
        h = ts__hash_u64(h, (uint64_t)op->dtype);
        h = ts__hash_u64(h, (uint64_t)(int64_t)op->result);
        for (int j = 0; j < 3; j++) h = ts__hash_u64(h, (uint64_t)(int64_t)op->in[j]);
        h = ts__hash_u64(h, (uint64_t)(int64_t)op->param);
        for (int d = 0; d < TS_MAX_RANK; d++) {
            h = ts__hash_u64(h, (uint64_t)op->idx[d].kind);
            h = ts__hash_u64(h, (uint64_t)(int64_t)op->idx[d].tile);
            h = ts__hash_u64(h, (uint64_t)op->idx[d].value);
            if (op->idx[d].kind >= TS_IDX_SHIFT) h = ts__hash_u64(h, (uint64_t)(int64_t)op->idx[d].val);
        }
        h = ts__hash_bytes(h, &op->value, sizeof op->value);
        h = ts__hash_u64(h, (uint64_t)op->axis);
        h = ts__hash_u64(h, (uint64_t)op->keepdim);
        h = ts__hash_u64(h, (uint64_t)(int64_t)op->tile);
        h = ts__hash_u64(h, (uint64_t)op->ncarry);
        for (int j = 0; j < op->ncarry; j++) {
            h = ts__hash_u64(h, (uint64_t)(int64_t)op->init[j]);
            h = ts__hash_u64(h, (uint64_t)(int64_t)op->carried[j]);
            h = ts__hash_u64(h, (uint64_t)(int64_t)op->yields[j]);
            h = ts__hash_u64(h, (uint64_t)(int64_t)op->results[j]);
        }
        h = ts__hash_u64(h, (uint64_t)op->bdims);
    }
    return h;
}

ts_status ts__kir_validate(const ts__kir *ir) {
    if (ir->ngrid == 0) return ts__error(TS_ERR_INVALID_KERNEL, "kernel '%s': no grid tile (declare 1..3 grid tiles)", ir->name);
    int effects = 0;
    for (int i = 0; i < ir->nops; i++)
        if (ir->ops[i].kind == TS__OP_STORE || ir->ops[i].kind == TS__OP_ATOMIC_ADD) effects++;
    if (!effects) return ts__error(TS_ERR_INVALID_KERNEL, "kernel '%s': no store or atomic_add, so it computes nothing", ir->name);
    /* Every size symbol must be bound by some tensor dim at launch. */
    for (int s = 0; s < ir->nsizes; s++) {
        if (!ir->sizes[s].name[0]) continue;
        int bound = 0;
        for (int p = 0; p < ir->nparams && !bound; p++)
            for (int d = 0; d < ir->params[p].rank; d++)
                if (ir->params[p].sizes[d] == s) bound = 1;
        if (!bound)
            return ts__error(TS_ERR_INVALID_KERNEL, "kernel '%s': size '%s' is not the size of any tensor dim, so it cannot be bound at launch",
                             ir->name, ir->sizes[s].name);
    }
    return TS_OK;
}

/* ---------------------------------------------------------------- random numbers */

void ts__philox4x32_10(uint32_t ctr[4], uint32_t k0, uint32_t k1) {
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * ctr[0], p1 = (uint64_t)0xCD9E8D57u * ctr[2];
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ ctr[1] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ ctr[3] ^ k1;
        ctr[0] = n0;
        ctr[1] = (uint32_t)p1;
        ctr[2] = n2;
        ctr[3] = (uint32_t)p0;
        k0 += 0x9E3779B9u; /* the key schedule: bumped between rounds */
        k1 += 0xBB67AE85u;
    }
}

/* ---------------------------------------------------------------- ts_kernel accessors */

void ts_kernel_destroy(ts_kernel *k) {
    if (!k) return;
    ts__kir_free(&k->ir);
    free(k);
}

const char *ts_kernel_name(const ts_kernel *k) { return k ? k->ir.name : ""; }
uint64_t ts_kernel_hash(const ts_kernel *k) { return k ? k->hash : 0; }

int ts_kernel_equal(const ts_kernel *a, const ts_kernel *b) {
    if (!a || !b) return 0;
    return a->hash == b->hash && a->ir.nops == b->ir.nops && a->ir.nvalues == b->ir.nvalues && a->ir.nparams == b->ir.nparams;
}

int ts_kernel_param_count(const ts_kernel *k) { return k ? k->ir.nparams : 0; }

ts_status ts_kernel_param(const ts_kernel *k, int i, ts_param_info *out) {
    if (!k || !out || i < 0 || i >= k->ir.nparams) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_kernel_param: no parameter %d", i);
    const ts__param *p = &k->ir.params[i];
    memset(out, 0, sizeof *out);
    out->name = p->name;
    out->is_tensor = p->is_tensor;
    out->dtype = p->dtype;
    out->rank = p->rank;
    for (int d = 0; d < p->rank; d++) {
        const ts__size *s = &k->ir.sizes[p->sizes[d]];
        out->size_names[d] = s->name[0] ? s->name : NULL;
        out->fixed_sizes[d] = s->name[0] ? 0 : s->fixed;
    }
    return TS_OK;
}

int ts_kernel_tunable_count(const ts_kernel *k) { return k ? k->ir.ntunables : 0; }

ts_status ts_kernel_tunable(const ts_kernel *k, int i, ts_tunable_info *out) {
    if (!k || !out || i < 0 || i >= k->ir.ntunables) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_kernel_tunable: no tunable %d", i);
    const ts__tunable *t = &k->ir.tunables[i];
    out->name = t->name;
    out->min = t->min;
    out->max = t->max;
    out->def = t->def;
    return TS_OK;
}
