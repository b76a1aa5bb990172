/* print.c: prints a kernel in the tile language (docs/language.md). The
 * output parses back to the same IR (ts_kernel_parse), which the round-trip
 * test checks for every example kernel. One op per line, SSA names. */
#include "ir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reserved[] = {"kernel", "tunable", "grid", "for", "in", "carry", "yield", "tile", "points", "inf", "nan",
                                       "true", "false", "fill", "axis", "keepdim", NULL};

static int is_reserved(const char *s) {
    for (int i = 0; reserved[i]; i++)
        if (strcmp(reserved[i], s) == 0) return 1;
    if (ts_dtype_parse(s, &(ts_dtype){0}) == TS_OK) return 1;
    return 0;
}

typedef struct printer {
    const ts__kir *ir;
    ts__sb sb;
    char (*names)[TS__MAX_NAME + 8];
} printer;

/* A value prints as its own name when that name is unique and free, else vN. */
static void assign_names(printer *pr) {
    const ts__kir *ir = pr->ir;
    for (int v = 0; v < ir->nvalues; v++) {
        const char *n = ir->values[v].name;
        int ok = n[0] && !is_reserved(n) && ts__find_param(ir, n) < 0 && ts__find_tunable(ir, n) < 0 && ts__find_size(ir, n) < 0;
        for (int t = 0; ok && t < ir->ntiles; t++)
            if (strcmp(ir->tiles[t].name, n) == 0) ok = 0;
        for (int w = 0; ok && w < ir->nvalues; w++)
            if (w != v && strcmp(ir->values[w].name, n) == 0) ok = 0;
        if (ok && n[0] == 'v') { /* avoid clashing with generated vN names */
            const char *p = n + 1;
            while (*p >= '0' && *p <= '9') p++;
            if (!*p && n[1]) ok = 0;
        }
        if (ok) snprintf(pr->names[v], sizeof pr->names[v], "%s", n);
        else snprintf(pr->names[v], sizeof pr->names[v], "v%d", v);
    }
}

static const char *vname(printer *pr, ts_val v) { return pr->names[v]; }

static void put_number(printer *pr, double x) {
    if (isnan(x)) ts__sb_puts(&pr->sb, "nan");
    else if (isinf(x)) ts__sb_puts(&pr->sb, x < 0 ? "-inf" : "inf");
    else {
        char buf[64];
        snprintf(buf, sizeof buf, "%.17g", x);
        /* shortest form that reads back exactly */
        for (int prec = 1; prec <= 17; prec++) {
            char t[64];
            snprintf(t, sizeof t, "%.*g", prec, x);
            if (strtod(t, NULL) == x) { snprintf(buf, sizeof buf, "%s", t); break; }
        }
        ts__sb_puts(&pr->sb, buf);
    }
}

static void put_size(printer *pr, ts_size s) {
    const ts__size *sz = &pr->ir->sizes[s];
    if (sz->name[0]) ts__sb_puts(&pr->sb, sz->name);
    else ts__sb_printf(&pr->sb, "%lld", (long long)sz->fixed);
}

static void put_tile_decl(printer *pr, ts_tile t) {
    const ts__tile *tl = &pr->ir->tiles[t];
    ts__sb_printf(&pr->sb, "%s in ", tl->name);
    if (tl->block == TS__BLOCK_POINT) {
        ts__sb_puts(&pr->sb, "points(");
        put_size(pr, tl->extent);
    } else if (tl->ranged) {
        const ts__op *lb = &pr->ir->ops[tl->loop_op];
        ts__sb_printf(&pr->sb, "tile(%s .. %s", vname(pr, lb->in[0]), vname(pr, lb->in[1]));
        if (tl->block >= 0) ts__sb_printf(&pr->sb, ", %s", pr->ir->tunables[tl->block].name);
    } else {
        ts__sb_puts(&pr->sb, "tile(");
        put_size(pr, tl->extent);
        if (tl->block >= 0) ts__sb_printf(&pr->sb, ", %s", pr->ir->tunables[tl->block].name);
    }
    ts__sb_puts(&pr->sb, ")");
}

static void put_dims(printer *pr, int rank, const ts_tile *dims) {
    ts__sb_puts(&pr->sb, "[");
    for (int i = 0; i < rank; i++) {
        if (i) ts__sb_puts(&pr->sb, ", ");
        if (dims[i] == TS_NONE) ts__sb_puts(&pr->sb, "1");
        else ts__sb_puts(&pr->sb, pr->ir->tiles[dims[i]].name);
    }
    ts__sb_puts(&pr->sb, "]");
}

static void put_index(printer *pr, const ts__op *op) {
    const ts__param *p = &pr->ir->params[op->param];
    ts__sb_printf(&pr->sb, "%s[", p->name);
    for (int d = 0; d < p->rank; d++) {
        const ts_index *ix = &op->idx[d];
        if (d) ts__sb_puts(&pr->sb, ", ");
        if (ix->kind == TS_IDX_CONST) ts__sb_printf(&pr->sb, "%lld", (long long)ix->value);
        else if (ix->kind == TS_IDX_POINT) ts__sb_printf(&pr->sb, "%s.begin", pr->ir->tiles[ix->tile].name);
        else if (ix->kind == TS_IDX_SHIFT) ts__sb_printf(&pr->sb, "%s + %s", pr->ir->tiles[ix->tile].name, vname(pr, ix->val));
        else if (ix->kind == TS_IDX_SCALAR || ix->kind == TS_IDX_VALUE) ts__sb_puts(&pr->sb, vname(pr, ix->val));
        else ts__sb_puts(&pr->sb, pr->ir->tiles[ix->tile].name);
    }
    ts__sb_puts(&pr->sb, "]");
}

static void indent(printer *pr, int depth) {
    for (int i = 0; i < depth; i++) ts__sb_puts(&pr->sb, "  ");
}

static void put_results(printer *pr, int n, const ts_val *vals) {
    for (int i = 0; i < n; i++) ts__sb_printf(&pr->sb, "%s%s", i ? ", " : "", vname(pr, vals[i]));
}

static void put_op(printer *pr, const ts__op *op, int depth) {
    const ts__kir *ir = pr->ir;
    if (op->kind != TS__OP_LOOP_END) indent(pr, depth);
    if (op->kind == TS__OP_LOOP_BEGIN) {
        const ts__op *end = &ir->ops[op->match];
        if (op->ncarry) {
            put_results(pr, op->ncarry, end->results);
            ts__sb_puts(&pr->sb, " = ");
        }
        ts__sb_puts(&pr->sb, "for ");
        put_tile_decl(pr, op->tile);
        if (op->ncarry) {
            ts__sb_puts(&pr->sb, " carry (");
            for (int i = 0; i < op->ncarry; i++)
                ts__sb_printf(&pr->sb, "%s%s = %s", i ? ", " : "", vname(pr, op->carried[i]), vname(pr, op->init[i]));
            ts__sb_puts(&pr->sb, ")");
        }
        ts__sb_puts(&pr->sb, " {\n");
        return;
    }
    if (op->kind == TS__OP_LOOP_END) {
        if (op->ncarry) {
            indent(pr, depth + 1);
            ts__sb_puts(&pr->sb, "yield ");
            if (op->ncarry > 1) ts__sb_puts(&pr->sb, "(");
            put_results(pr, op->ncarry, op->yields);
            if (op->ncarry > 1) ts__sb_puts(&pr->sb, ")");
            ts__sb_puts(&pr->sb, "\n");
        }
        indent(pr, depth);
        ts__sb_puts(&pr->sb, "}\n");
        return;
    }
    if (op->result != TS_NONE) ts__sb_printf(&pr->sb, "%s = ", vname(pr, op->result));
    switch (op->kind) {
    case TS__OP_LOAD:
        ts__sb_puts(&pr->sb, "load(");
        put_index(pr, op);
        if (op->value != 0.0 || signbit(op->value)) {
            ts__sb_puts(&pr->sb, ", fill=");
            put_number(pr, op->value);
        }
        ts__sb_puts(&pr->sb, ")");
        break;
    case TS__OP_STORE:
    case TS__OP_ATOMIC_ADD:
        ts__sb_puts(&pr->sb, op->kind == TS__OP_STORE ? "store(" : "atomic_add(");
        put_index(pr, op);
        ts__sb_printf(&pr->sb, ", %s)", vname(pr, op->in[0]));
        break;
    case TS__OP_GATHER:
        ts__sb_printf(&pr->sb, "gather(%s, %s, %s", ir->params[op->param].name, vname(pr, op->in[0]), ir->tiles[op->idx[0].tile].name);
        if (op->value != 0.0 || signbit(op->value)) {
            ts__sb_puts(&pr->sb, ", fill=");
            put_number(pr, op->value);
        }
        ts__sb_puts(&pr->sb, ")");
        break;
    case TS__OP_SCALAR: ts__sb_printf(&pr->sb, "scalar(%s)", ir->params[op->param].name); break;
    case TS__OP_FULL: {
        const ts__value *v = &ir->values[op->result];
        ts__sb_printf(&pr->sb, "full(%s, ", ts_dtype_name(op->dtype));
        put_dims(pr, v->rank, v->dims);
        ts__sb_puts(&pr->sb, ", ");
        put_number(pr, op->value);
        ts__sb_puts(&pr->sb, ")");
        break;
    }
    case TS__OP_ARANGE: ts__sb_printf(&pr->sb, "arange(%s)", ir->tiles[op->tile].name); break;
    case TS__OP_TILE_POS:
        ts__sb_printf(&pr->sb, "%s.%s", ir->tiles[op->tile].name, op->sub == TS_POS_BEGIN ? "begin" : op->sub == TS_POS_END ? "end" : "id");
        break;
    case TS__OP_SCAN: {
        static const char *const names[] = {"cumsum", "cumprod", "cummax", "cummin"};
        ts__sb_printf(&pr->sb, "%s(%s, axis=%d%s)", names[op->sub & 3], vname(pr, op->in[0]), op->axis, op->keepdim ? ", reverse=true" : "");
        break;
    }
    case TS__OP_RAND: {
        ts_tile dims[TS_MAX_RANK];
        for (int i = 0; i < op->bdims; i++) dims[i] = op->idx[i].tile;
        ts__sb_printf(&pr->sb, "%s(%s, ", op->sub ? "randint" : "rand", vname(pr, op->in[0]));
        put_dims(pr, op->bdims, dims);
        ts__sb_puts(&pr->sb, ")");
        break;
    }
    case TS__OP_SIZE: /* a fixed size prints as its number: the same value */
        if (ir->sizes[op->axis].name[0]) ts__sb_puts(&pr->sb, ir->sizes[op->axis].name);
        else ts__sb_printf(&pr->sb, "full(i32, [], %lld)", (long long)ir->sizes[op->axis].fixed);
        break;
    case TS__OP_UNARY: ts__sb_printf(&pr->sb, "%s(%s)", ts__unary_name(op->sub), vname(pr, op->in[0])); break;
    case TS__OP_BINARY:
        ts__sb_printf(&pr->sb, "%s(%s, %s)", ts__binary_name(op->sub), vname(pr, op->in[0]), vname(pr, op->in[1]));
        break;
    case TS__OP_SELECT:
        ts__sb_printf(&pr->sb, "select(%s, %s, %s)", vname(pr, op->in[0]), vname(pr, op->in[1]), vname(pr, op->in[2]));
        break;
    case TS__OP_CAST: ts__sb_printf(&pr->sb, "cast(%s, %s)", vname(pr, op->in[0]), ts_dtype_name(op->dtype)); break;
    case TS__OP_EXPAND_DIMS: ts__sb_printf(&pr->sb, "expand_dims(%s, %d)", vname(pr, op->in[0]), op->axis); break;
    case TS__OP_BROADCAST: {
        ts_tile dims[TS_MAX_RANK];
        for (int i = 0; i < op->bdims; i++) dims[i] = op->idx[i].tile;
        ts__sb_printf(&pr->sb, "broadcast(%s, ", vname(pr, op->in[0]));
        put_dims(pr, op->bdims, dims);
        ts__sb_puts(&pr->sb, ")");
        break;
    }
    case TS__OP_REDUCE:
        ts__sb_printf(&pr->sb, "%s(%s, axis=%d%s)", ts__reduce_name(op->sub), vname(pr, op->in[0]), op->axis, op->keepdim ? ", keepdim=true" : "");
        break;
    case TS__OP_TRANSPOSE: ts__sb_printf(&pr->sb, "transpose(%s)", vname(pr, op->in[0])); break;
    case TS__OP_DOT:
        ts__sb_printf(&pr->sb, "dot(%s, %s", vname(pr, op->in[0]), vname(pr, op->in[1]));
        if (op->in[2] != TS_NONE) ts__sb_printf(&pr->sb, ", %s", vname(pr, op->in[2]));
        ts__sb_puts(&pr->sb, ")");
        break;
    default: ts__sb_puts(&pr->sb, "?"); break;
    }
    ts__sb_puts(&pr->sb, "\n");
}

/* Size symbols are numbered in creation order, which the hash sees. The
 * parser numbers them in first use (parameter dims left to right, then tile
 * extents); when the kernel's order differs, a `sizes` line gives it. */
static void put_sizes_line(printer *pr) {
    const ts__kir *ir = pr->ir;
    int next = 0, in_order = 1;
    for (int i = 0; i < ir->nparams; i++)
        for (int d = 0; d < ir->params[i].rank; d++) {
            if (ir->params[i].sizes[d] == next) next++;
            else if (ir->params[i].sizes[d] > next) in_order = 0;
        }
    for (int t = 0; t < ir->ntiles; t++) {
        if (ir->tiles[t].extent == next) next++;
        else if (ir->tiles[t].extent > next) in_order = 0;
    }
    if (in_order && next == ir->nsizes) return;
    ts__sb_puts(&pr->sb, "  sizes ");
    for (int s = 0; s < ir->nsizes; s++) {
        if (s) ts__sb_puts(&pr->sb, ", ");
        put_size(pr, s);
    }
    ts__sb_puts(&pr->sb, "\n");
}

char *ts_kernel_print(const ts_kernel *k) {
    if (!k) return NULL;
    const ts__kir *ir = &k->ir;
    printer pr = {.ir = ir};
    pr.names = ts__calloc((size_t)(ir->nvalues ? ir->nvalues : 1), sizeof *pr.names);
    if (!pr.names) return NULL;
    assign_names(&pr);
    ts__sb_printf(&pr.sb, "kernel %s(", ir->name);
    for (int i = 0; i < ir->nparams; i++) {
        const ts__param *p = &ir->params[i];
        ts__sb_printf(&pr.sb, "%s%s: %s", i ? ", " : "", p->name, ts_dtype_name(p->dtype));
        if (p->is_tensor) {
            ts__sb_puts(&pr.sb, "[");
            for (int d = 0; d < p->rank; d++) {
                if (d) ts__sb_puts(&pr.sb, ", ");
                put_size(&pr, p->sizes[d]);
            }
            ts__sb_puts(&pr.sb, "]");
        }
    }
    ts__sb_puts(&pr.sb, ") {\n");
    put_sizes_line(&pr);
    for (int i = 0; i < ir->ntunables; i++) {
        const ts__tunable *t = &ir->tunables[i];
        ts__sb_printf(&pr.sb, "  tunable %s = %lld in %lld..%lld\n", t->name, (long long)t->def, (long long)t->min, (long long)t->max);
    }
    ts__sb_puts(&pr.sb, "  grid ");
    for (int g = 0; g < ir->ngrid; g++) {
        if (g) ts__sb_puts(&pr.sb, ", ");
        put_tile_decl(&pr, ir->grid[g]);
    }
    ts__sb_puts(&pr.sb, "\n");
    int depth = 1;
    for (int i = 0; i < ir->nops; i++) {
        const ts__op *op = &ir->ops[i];
        if (op->kind == TS__OP_LOOP_END) depth--;
        put_op(&pr, op, depth);
        if (op->kind == TS__OP_LOOP_BEGIN) depth++;
    }
    ts__sb_puts(&pr.sb, "}\n");
    free(pr.names);
    return ts__sb_finish(&pr.sb);
}
