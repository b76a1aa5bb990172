/* emit_c.c: the one lowering of the tile IR to C-like kernel source.
 *
 * This file: use counts, layout assignment, kernel parameters, the op loop
 * (loops, scalars, constants) and the entry point. The other concerns have
 * files of their own (map in cg.h): layouts, expressions, memory access,
 * reductions, dot.
 *
 * Model (docs/design.md, "Lowering"). A program instance is one work-group
 * of T threads. Every tile value of concrete shape [.., C] is viewed as
 * R x C (R = product of the leading dims) and spread over the threads by a
 * layout that depends only on (R, C, T, NN): thread t = (tr, tc) holds rows
 * r = tr + i*TR and column chunks of NN contiguous elements c = (tc +
 * q*TC)*NN + jj in a private array indexed by compile-time constants.
 * Values of the same shape share a layout, so elementwise ops work register
 * by register. Anything that needs another thread's elements (broadcast of
 * a size-1 dim, reductions, transposes, dot operands held in registers)
 * goes through local memory between barriers. A dot's result layout is its
 * register micro-tile (micro_m x micro_n per thread); its operands are read
 * straight from global memory when they are loads used only by the dot
 * (stage=0, the CPU-friendly form) or staged through local memory
 * (stage=1, the GPU form). Syntax differences live in dialect.c.
 */
#include "cg.h"

/* ---------------------------------------------------------------- values */

void ts__cg_declare(cg *g, ts_val v) {
    layout L;
    layout_of(g, v, &L);
    g->priv += L.J;
    line(g, "%s %s[%lld];", reg_type(g, g->ir->values[v].dtype), vname(v), (long long)L.J);
}

/* The attribute that unrolls a register copy loop of J elements (dialects
 * with copy_unroll, GLSL: lavapipe keeps a private array in registers only
 * when every access has a constant index; unrolled copies of the loop-carried
 * accumulators keep a dot's micro-tile out of memory). */
static void copy_unroll(cg *g, int64_t J) {
    if (g->d->copy_unroll && J <= TS__COPY_UNROLL_MAX) line(g, "%s", g->d->copy_unroll);
}

/* ---------------------------------------------------------------- analysis: uses, layouts */

static void count_uses(cg *g) {
    const ts__kir *ir = g->ir;
    for (int i = 0; i < ir->nops; i++) {
        const ts__op *op = &ir->ops[i];
        for (int k = 0; k < 3; k++) /* (a ranged loop's bounds: in[0], in[1] of its LOOP_BEGIN) */
            if (op->in[k] != TS_NONE && op->kind != TS__OP_LOOP_END) g->uses[op->in[k]]++;
        if (op->kind == TS__OP_LOAD || op->kind == TS__OP_STORE || op->kind == TS__OP_ATOMIC_ADD)
            for (int d = 0; d < ir->params[op->param].rank; d++)
                if (op->idx[d].kind >= TS_IDX_SHIFT) g->uses[op->idx[d].val]++;
        for (int k = 0; k < op->ncarry; k++) {
            if (op->kind == TS__OP_LOOP_BEGIN) g->uses[op->init[k]]++;
            else g->uses[op->yields[k]]++;
        }
    }
    /* loads (and transposes of loads) read directly by a dot are not emitted */
    for (int i = 0; i < ir->nops; i++) {
        const ts__op *op = &ir->ops[i];
        if (op->kind != TS__OP_DOT) continue;
        for (int k = 0; k < 2; k++) {
            int tr;
            const ts__op *ld = ts__cg_direct_load(g, op->in[k], &tr);
            if (!ld) continue;
            g->fused[ld - ir->ops] = 1;
            if (tr) g->fused[ir->values[op->in[k]].def_op] = 1;
        }
    }
}

/* Chooses a layout for every value (see the file comment): the standard
 * layout of its shape, except keepdim reductions over the last axis (ROWREP
 * of their input) and elementwise results that take a same-shape operand's
 * ROWREP layout. Loop-carried values take their yield's layout when it
 * differs from the init's; the pass repeats until loops agree. */
static void assign_layouts(cg *g) {
    const ts__kir *ir = g->ir;
    int *pref = ts__calloc((size_t)(ir->nvalues + 1), sizeof(int)); /* 1: carried takes the yield's layout */
    layout *prefL = ts__calloc((size_t)(ir->nvalues + 1), sizeof(layout));
    if (!pref || !prefL) { free(pref); free(prefL); cg_fail(g, TS_ERR_OUT_OF_MEMORY, "out of memory"); return; }
    for (int round = 0; round < 4; round++) {
        int changed = 0;
        for (int v = 0; v < ir->nvalues; v++) ts__cg_value_std_layout(g, v, &g->lay[v]);
        for (int i = 0; i < ir->nops; i++) {
            const ts__op *op = &ir->ops[i];
            switch (op->kind) {
            case TS__OP_REDUCE:
                if (ts__cg_fast_reduce(g, op) && op->keepdim && ir->values[op->result].rank >= 2)
                    ts__cg_rowrep_layout(&g->lay[op->in[0]], g->lay[op->result].rank, g->lay[op->result].shape, &g->lay[op->result]);
                break;
            case TS__OP_UNARY:
            case TS__OP_BINARY:
            case TS__OP_SELECT:
            case TS__OP_CAST: {
                int nin = op->kind == TS__OP_SELECT ? 3 : op->kind == TS__OP_BINARY ? 2 : 1;
                for (int k = 0; k < nin; k++) {
                    ts_val o = op->in[k];
                    if (g->lay[o].kind == LAYOUT_ROWREP && ts__cg_dims_equal(&ir->values[o], &ir->values[op->result])) {
                        g->lay[op->result] = g->lay[o];
                        break;
                    }
                }
                break;
            }
            case TS__OP_LOOP_BEGIN:
                for (int c = 0; c < op->ncarry; c++) {
                    ts_val cv = op->carried[c];
                    if (pref[cv]) g->lay[cv] = prefL[cv]; /* the yield's layout found last round */
                    else g->lay[cv] = g->lay[op->init[c]];
                }
                break;
            case TS__OP_LOOP_END: {
                const ts__op *bop = &ir->ops[op->match];
                for (int c = 0; c < op->ncarry; c++) {
                    ts_val cv = bop->carried[c];
                    if (!same_layout(&g->lay[op->yields[c]], &g->lay[cv]) && !pref[cv]) {
                        pref[cv] = 1;
                        prefL[cv] = g->lay[op->yields[c]];
                        changed = 1;
                    }
                    g->lay[op->results[c]] = g->lay[cv];
                }
                break;
            }
            default: break;
            }
        }
        if (!changed) break;
    }
    free(pref);
    free(prefL);
}

/* ---------------------------------------------------------------- parameters */

/* Buffer-block targets (GLSL): the arguments of ts__cg_args, less the
 * buffers, as 32-bit members of one block at binding 0 (then a pad member,
 * so the block is never empty); tensor t's storage buffer at binding 1 + t;
 * local memory at global scope; the work-group size; main(). */
static void emit_params_blocks(cg *g, const char *entry) {
    const ts__kir *ir = g->ir;
    /* The arguments are read once into locals at the top of main(): read
     * from the block at each use, they are reloaded after every store to a
     * tensor (which may alias it), one per-lane load loop each on lavapipe. */
    ts__sb sb_copy = {0};
    ts__sb_printf(&g->sb, "layout(std430, set = 0, binding = 0) restrict readonly buffer TsArgs {\n");
    int nt = 0;
    for (int p = 0; p < ir->nparams; p++) {
        const ts__param *pa = &ir->params[p];
        if (pa->dtype == TS_F64 || pa->dtype == TS_I64) {
            cg_fail(g, TS_ERR_UNSUPPORTED, "parameter '%s': %s is not supported by the %s code generator", pa->name, ts_dtype_name(pa->dtype),
                    ts__dialect_name(g->d->id));
            continue;
        }
        if (pa->is_tensor) {
            ts__sb_printf(&g->sb, "  %s off_%s;\n", g->d->i64, pa->name);
            ts__sb_printf(&sb_copy, "  const %s off_%s = ts_args.off_%s;\n", g->d->i64, pa->name, pa->name);
            for (int d = 0; d < pa->rank; d++) {
                ts__sb_printf(&g->sb, "  %s st_%s_%d;\n", g->d->i64, pa->name, d);
                ts__sb_printf(&sb_copy, "  const %s st_%s_%d = ts_args.st_%s_%d;\n", g->d->i64, pa->name, d, pa->name, d);
            }
        } else {
            const char *t = is_int(pa->dtype) ? "int" : "float";
            ts__sb_printf(&g->sb, "  %s a_%s;\n", t, pa->name);
            ts__sb_printf(&sb_copy, "  const %s a_%s = ts_args.a_%s;\n", t, pa->name, pa->name);
        }
    }
    for (int s = 0; s < ir->nsizes; s++)
        if (ir->sizes[s].name[0]) {
            ts__sb_printf(&g->sb, "  %s s_%s;\n", g->d->i64, ir->sizes[s].name);
            ts__sb_printf(&sb_copy, "  const %s s_%s = ts_args.s_%s;\n", g->d->i64, ir->sizes[s].name, ir->sizes[s].name);
        }
    ts__sb_puts(&g->sb, "  int ts_pad_;\n} ts_args;\n");
    for (int p = 0; p < ir->nparams; p++) {
        const ts__param *pa = &ir->params[p];
        if (!pa->is_tensor) continue;
        nt++;
        ts__sb_printf(&g->sb, "layout(std430, set = 0, binding = %d) buffer TsBuf%d { %s p_%s[]; };\n", nt, nt, mem_type(g, pa->dtype), pa->name);
        /* the same buffer as 64- and 128-bit words: chunk moves (cg_memory.c) */
        if (g->d->vec_mem == TS__VMEM_VIEW && pa->dtype == TS_F32)
            ts__sb_printf(&g->sb, "layout(std430, set = 0, binding = %d) buffer TsBuf%dV { vec4 p4_%s[]; };\n", nt, nt, pa->name);
        if (g->d->vec_mem == TS__VMEM_VIEW && (pa->dtype == TS_F16 || pa->dtype == TS_BF16)) {
            ts__sb_printf(&g->sb, "layout(std430, set = 0, binding = %d) buffer TsBuf%dV { uvec2 p4_%s[]; };\n", nt, nt, pa->name);
            ts__sb_printf(&g->sb, "layout(std430, set = 0, binding = %d) buffer TsBuf%dW { uvec4 p8_%s[]; };\n", nt, nt, pa->name);
        }
        if (p < 32 && (g->vec4_view >> p & 1u)) /* the same buffer as vec4s (cg_dot_glsl.c) */
            ts__sb_printf(&g->sb, "layout(std430, set = 0, binding = %d) buffer TsBuf%dv4 { vec4 p_%s4[]; };\n", nt, nt, pa->name);
    }
    if (g->dot_shared_a4) ts__sb_printf(&g->sb, "%s vec4 ts_da4[%lld];\n", g->d->local_decl, (long long)g->dot_shared_a4);
    if (g->dot_shared_b4) ts__sb_printf(&g->sb, "%s vec4 ts_db4[%lld];\n", g->d->local_decl, (long long)g->dot_shared_b4);
    if (g->lf) ts__sb_printf(&g->sb, "%s float ts_lf[%lld];\n", g->d->local_decl, (long long)g->lf);
    if (g->li) ts__sb_printf(&g->sb, "%s int ts_li[%lld];\n", g->d->local_decl, (long long)g->li);
    ts__sb_printf(&g->sb, "layout(local_size_x = %d, local_size_y = 1, local_size_z = 1) in;\n", g->T);
    ts__sb_printf(&g->sb, "/* entry %s */\n%s main()\n{\n", entry, g->d->kernel_qual);
    char *copy = ts__sb_finish(&sb_copy);
    if (copy) ts__sb_puts(&g->sb, copy);
    else cg_fail(g, TS_ERR_OUT_OF_MEMORY, "out of memory");
    free(copy);
}

static void emit_params(cg *g, const char *entry) {
    const ts__kir *ir = g->ir;
    if (g->d->buffer_blocks) {
        emit_params_blocks(g, entry);
        return;
    }
    ts__sb_printf(&g->sb, "%s ", g->d->kernel_qual);
    /* dots only where it helps: ptxas capped CUDA's matmul bf16 at 80
     * registers and spilled under it; hiprtc without it assumes 1024
     * threads and allows 128 VGPRs (attention f16 spilled on gfx90a) */
    if (g->d->launch_bounds && (g->d->launch_bounds_dot || !ts__kir_has_dot(g->ir))) {
        ts__sb_printf(&g->sb, g->d->launch_bounds, g->T);
        ts__sb_puts(&g->sb, " ");
    }
    ts__sb_printf(&g->sb, "%s(", entry);
    int first = 1;
    for (int p = 0; p < ir->nparams; p++) {
        const ts__param *pa = &ir->params[p];
        if (pa->is_tensor) {
            ts__sb_printf(&g->sb, "%s%s %s* %s p_%s, %s off_%s", first ? "" : ", ", g->d->global_ptr, mem_type(g, pa->dtype), g->d->restrict_, pa->name,
                          g->d->i64, pa->name);
            for (int d = 0; d < pa->rank; d++) ts__sb_printf(&g->sb, ", %s st_%s_%d", g->d->i64, pa->name, d);
        } else {
            const char *t = pa->dtype == TS_F64 ? "double" : pa->dtype == TS_I64 ? g->d->i64 : is_int(pa->dtype) ? "int" : "float";
            ts__sb_printf(&g->sb, "%s%s a_%s", first ? "" : ", ", t, pa->name);
        }
        first = 0;
    }
    for (int s = 0; s < ir->nsizes; s++)
        if (ir->sizes[s].name[0]) ts__sb_printf(&g->sb, ", %s s_%s", g->d->i64, ir->sizes[s].name);
    ts__sb_puts(&g->sb, ")\n{\n");
}

/* ---------------------------------------------------------------- the kernel */

/* ---------------------------------------------------------------- grouped program order (group_m) */

/* group_m > 1 on a kernel whose dot's m and n tiles are both grid tiles:
 * the grid dims (gm, gn) of those tiles; else -1. */
static void grouped_dims(const cg *g, int *gm, int *gn) {
    *gm = *gn = -1;
    if (g->plan->group_m <= 1) return;
    const ts__kir *ir = g->ir;
    for (int i = 0; i < ir->nops; i++) {
        if (ir->ops[i].kind != TS__OP_DOT) continue;
        const ts__value *rv = &ir->values[ir->ops[i].result];
        int m = -1, n = -1;
        for (int gi = 0; gi < ir->ngrid; gi++) {
            if (ir->grid[gi] == rv->dims[0]) m = gi;
            if (ir->grid[gi] == rv->dims[1]) n = gi;
        }
        if (m >= 0 && n >= 0 && m != n) {
            *gm = m, *gn = n;
            return;
        }
    }
}

/* Programs walk group_m rows of blocks down m before moving along n (the
 * order of Triton's matmul), so that consecutive programs share blocks of
 * A and of B in cache. The two program ids give a linear id p = id_m + G_m
 * id_n (launch order), mapped back onto the (m, n) grid group by group. */
static void emit_grouped_order(cg *g, int gm, int gn) {
    const ts__kir *ir = g->ir;
    const ts__dialect *d = g->d;
    const char *I = d->i64;
    const ts__tile *tm = &ir->tiles[ir->grid[gm]], *tn = &ir->tiles[ir->grid[gn]];
    long long Bm = (long long)g->plan->block[ir->grid[gm]], Bn = (long long)g->plan->block[ir->grid[gn]], G = g->plan->group_m;
    line(g, "/* grouped program order, group_m=%lld (codegen/emit_c.c) */", G);
    line(g, "const %s gm0_ = (x_%s + %lld) / %lld, gn0_ = (x_%s + %lld) / %lld;", I, tm->name, Bm - 1, Bm, tn->name, Bn - 1, Bn);
    line(g, "const %s gm_ = gm0_ > 0 ? gm0_ : 1, gn_ = gn0_ > 0 ? gn0_ : 1; /* an empty dim still launches one program */", I);
    line(g, "const %s pid_ = %s + gm_ * %s;", I, cx(g, I, d->group_id[gm]), cx(g, I, d->group_id[gn]));
    line(g, "const %s gw_ = %lld * gn_, gf_ = (pid_ / gw_) * %lld;", I, G, G);
    line(g, "const %s gs_ = gm_ - gf_ < %lld ? gm_ - gf_ : %lld;", I, G, G);
    line(g, "const %s b_%s = (gf_ + (pid_ %% gw_) %% gs_) * %lld;", I, tm->name, Bm);
    line(g, "const %s b_%s = ((pid_ %% gw_) / gs_) * %lld;", I, tn->name, Bn);
}

int ts__cg_threads(const ts__kir *ir, const ts__plan *plan) {
    for (int i = 0; i < ir->nops; i++) {
        const ts__op *op = &ir->ops[i];
        if (op->kind != TS__OP_DOT) continue;
        const ts__value *rv = &ir->values[op->result];
        if (plan->warps > 0) return 32 * plan->warps; /* warp-tiled dots (tensor cores) */
        int64_t BM = plan->block[rv->dims[0]], BN = plan->block[rv->dims[1]];
        int64_t mm = plan->micro_m < BM ? plan->micro_m : BM, nn = plan->micro_n < BN ? plan->micro_n : BN;
        int64_t t = (BM / mm) * (BN / nn);
        return (int)(t < 1 ? 1 : t);
    }
    return plan->threads;
}

static int kernel_nn(const ts__kir *ir, const ts__plan *plan) {
    for (int i = 0; i < ir->nops; i++)
        if (ir->ops[i].kind == TS__OP_DOT) {
            int64_t BN = plan->block[ir->values[ir->ops[i].result].dims[1]];
            return (int)(plan->micro_n < BN ? plan->micro_n : BN);
        }
    return plan->vec;
}

ts_status ts__codegen_c(const ts_kernel *k, const ts__plan *plan, ts_dialect dialect, const ts_device_caps *caps, const char *entry, char **source) {
    *source = NULL;
    const ts__dialect *d = ts__dialect_get(dialect);
    if (!d) return ts__error(TS_ERR_UNSUPPORTED, "kernel '%s': no code generator for dialect '%s'", k->ir.name, ts__dialect_name(dialect));
    cg g = {.ir = &k->ir, .plan = plan, .d = d};
    g.T = ts__cg_threads(&k->ir, plan);
    g.NN = kernel_nn(&k->ir, plan);
    g.COLMAX = g.T;
    g.smem_limit = caps ? caps->shared_mem_bytes : 0;
    g.SG = d->subgroup_ops && caps && caps->subgroup_size >= 2 ? caps->subgroup_size : 0;
    if (plan->col_threads < g.T && !ts__kir_has_dot(&k->ir)) g.COLMAX = plan->col_threads; /* a dot's layout is its micro-tile */
    if (caps && g.T > caps->max_group_size)
        return ts__error(TS_ERR_BAD_CONFIG, "kernel '%s': the config needs %d threads per group, the device allows %d", k->ir.name, g.T, caps->max_group_size);
    g.uses = ts__calloc((size_t)(k->ir.nvalues + 1), sizeof(int));
    g.fused = ts__calloc((size_t)(k->ir.nops + 1), sizeof(int));
    if (!g.uses || !g.fused) { free(g.uses); free(g.fused); return TS_ERR_OUT_OF_MEMORY; }
    count_uses(&g);
    g.lay = ts__calloc((size_t)(k->ir.nvalues + 1), sizeof *g.lay);
    g.px = ts__calloc((size_t)(k->ir.nvalues + 1), sizeof *g.px);
    g.deferred = ts__calloc((size_t)(k->ir.nvalues + 1), sizeof *g.deferred);
    if (!g.lay || !g.px || !g.deferred) {
        free(g.uses); free(g.fused); free(g.lay); free(g.px); free(g.deferred);
        return TS_ERR_OUT_OF_MEMORY;
    }
    assign_layouts(&g);
    ts__cg_find_deferred_loads(&g);
    const ts__kir *ir = &k->ir;
    ts__sb body = {0};
    /* The body is emitted first (it determines local memory needs), then the
     * header and declarations are put in front of it. */
    ts__sb head = {0};
    g.indent = 1;
    line(&g, "const int tid = %s;", cx(&g, "int", d->tid));
    int gm = -1, gn = -1;
    grouped_dims(&g, &gm, &gn);
    for (int gi = 0; gi < ir->ngrid; gi++) {
        const ts__tile *t = &ir->tiles[ir->grid[gi]];
        if (gi == gm || gi == gn) continue; /* below */
        line(&g, "const %s b_%s = %s * %lld;", d->i64, t->name, cx(&g, d->i64, d->group_id[gi]), (long long)plan->block[ir->grid[gi]]);
    }
    for (int t = 0; t < ir->ntiles; t++) {
        if (ir->tiles[t].ranged) continue; /* declared at its loop: x_ = hi, l_ = lo */
        const ts__size *sz = &ir->sizes[ir->tiles[t].extent];
        if (sz->name[0]) line(&g, "const %s x_%s = s_%s;", d->i64, ir->tiles[t].name, sz->name);
        else line(&g, "const %s x_%s = %lld;", d->i64, ir->tiles[t].name, (long long)sz->fixed);
    }
    if (gm >= 0) emit_grouped_order(&g, gm, gn);
    for (int i = 0; i < ir->nops && !g.err; i++) {
        const ts__op *op = &ir->ops[i];
        if (g.fused[i]) continue;
        if (op->kind != TS__OP_UNARY && op->kind != TS__OP_BINARY && op->kind != TS__OP_REDUCE) ts__cg_flush_deferred(&g, op);
        switch (op->kind) {
        case TS__OP_LOAD:
            if (!g.deferred[op->result]) ts__cg_emit_load(&g, op);
            break;
        case TS__OP_STORE: ts__cg_emit_store(&g, op, 0); break;
        case TS__OP_ATOMIC_ADD: ts__cg_emit_store(&g, op, 1); break;
        case TS__OP_GATHER: ts__cg_emit_gather(&g, op); break;
        case TS__OP_SCALAR: {
            ts__cg_declare(&g, op->result);
            const ts__param *pa = &ir->params[op->param];
            char e[160];
            char an[96];
            snprintf(an, sizeof an, "a_%s", pa->name);
            if (pa->dtype == TS_F16 || pa->dtype == TS_BF16 || is_f8(pa->dtype)) ts__cg_cast_expr(&g, TS_F32, pa->dtype, an, e, sizeof e);
            else snprintf(e, sizeof e, "%s", cx(&g, reg_type(&g, pa->dtype), an));
            line(&g, "%s[0] = %s;", vname(op->result), e);
            break;
        }
        case TS__OP_FULL: {
            ts__cg_declare(&g, op->result);
            layout L;
            layout_of(&g, op->result, &L);
            char lit[64], e[160];
            ts__cg_literal(&g, op->dtype, op->value, lit, sizeof lit);
            ts__cg_cast_expr(&g, op->dtype, op->dtype, lit, e, sizeof e);
            copy_unroll(&g, L.J);
            line(&g, "for (int j = 0; j < %lld; j++) %s[j] = %s;", (long long)L.J, vname(op->result), is_int(op->dtype) ? lit : e);
            break;
        }
        case TS__OP_ARANGE: {
            ts__cg_declare(&g, op->result);
            layout L;
            layout_of(&g, op->result, &L);
            ts__cg_elem_loop_begin(&g, &L, "j");
            char ae[96];
            snprintf(ae, sizeof ae, "(b_%s + e0)", ir->tiles[op->tile].name);
            line(&g, "%s[j] = %s;", vname(op->result), cx(&g, "int", ae));
            ts__cg_elem_loop_end(&g);
            break;
        }
        case TS__OP_TILE_POS: {
            ts__cg_declare(&g, op->result);
            const ts__tile *t = &ir->tiles[op->tile];
            long long B = (long long)plan->block[op->tile];
            char e[256];
            if (op->sub == TS_POS_BEGIN) snprintf(e, sizeof e, "b_%s", t->name);
            else if (op->sub == TS_POS_END) snprintf(e, sizeof e, "(b_%s + %lld < x_%s ? b_%s + %lld : x_%s)", t->name, B, t->name, t->name, B, t->name);
            else if (t->ranged) snprintf(e, sizeof e, "((b_%s - l_%s) / %lld)", t->name, t->name, B);
            else snprintf(e, sizeof e, "(b_%s / %lld)", t->name, B);
            line(&g, "%s[0] = %s;", vname(op->result), cx(&g, "int", e));
            break;
        }
        case TS__OP_RAND: ts__cg_emit_rand(&g, op); break;
        case TS__OP_SCAN: ts__cg_emit_scan(&g, op); break;
        case TS__OP_SIZE: {
            ts__cg_declare(&g, op->result);
            const ts__size *sz = &ir->sizes[op->axis];
            char e[96];
            if (sz->name[0]) snprintf(e, sizeof e, "s_%s", sz->name);
            else snprintf(e, sizeof e, "%lld", (long long)sz->fixed);
            line(&g, "%s[0] = %s;", vname(op->result), cx(&g, "int", e));
            break;
        }
        case TS__OP_UNARY:
        case TS__OP_BINARY:
        case TS__OP_SELECT:
        case TS__OP_CAST:
        case TS__OP_EXPAND_DIMS:
        case TS__OP_BROADCAST: ts__cg_emit_elementwise(&g, op); break;
        case TS__OP_REDUCE: ts__cg_emit_reduce(&g, op); break;
        case TS__OP_TRANSPOSE: ts__cg_emit_transpose(&g, op); break;
        case TS__OP_DOT: ts__cg_emit_dot(&g, op); break;
        case TS__OP_LOOP_BEGIN: {
            const ts__tile *t = &ir->tiles[op->tile];
            ts__cg_mma_loop_plan(&g, op); /* a tensor-core dot's pipeline and accumulator fragments, where the loop has them */
            for (int c = 0; c < op->ncarry; c++) {
                if (ts__cg_mma_carry_in_fragments(&g, op, c)) continue; /* declared by ts__cg_mma_loop_begin */
                ts__cg_declare(&g, op->carried[c]);
                layout L;
                layout_of(&g, op->carried[c], &L);
                if (same_layout(&L, &g.lay[op->init[c]])) {
                    copy_unroll(&g, L.J);
                    line(&g, "for (int j = 0; j < %lld; j++) %s[j] = %s[j];", (long long)L.J, vname(op->carried[c]), vname(op->init[c]));
                } else ts__cg_relayout(&g, op->init[c], vname(op->carried[c]), &L, 0);
            }
            if (t->ranged) {
                char lo[96], hi[96];
                snprintf(lo, sizeof lo, "%s[0]", vname(op->in[0]));
                snprintf(hi, sizeof hi, "%s[0]", vname(op->in[1]));
                line(&g, "const %s l_%s = %s;", d->i64, t->name, cx(&g, d->i64, lo));
                line(&g, "const %s x_%s = %s;", d->i64, t->name, cx(&g, d->i64, hi));
            }
            ts__cg_mma_loop_begin(&g, op); /* a tensor-core dot's cp.async pipeline: its prologue, where the loop has one */
            if (t->ranged)
                line(&g, "for (%s b_%s = l_%s; b_%s < x_%s; b_%s += %lld) {", d->i64, t->name, t->name, t->name, t->name, t->name,
                     (long long)plan->block[op->tile]);
            else
                line(&g, "for (%s b_%s = 0; b_%s < x_%s; b_%s += %lld) {", d->i64, t->name, t->name, t->name, t->name, (long long)plan->block[op->tile]);
            g.indent++;
            break;
        }
        case TS__OP_LOOP_END: {
            const ts__op *bop = &ir->ops[op->match];
            /* yields may name other carried values: go through temporaries */
            for (int c = 0; c < op->ncarry; c++) {
                if (ts__cg_mma_carry_in_fragments(&g, bop, c)) continue;
                layout L;
                layout_of(&g, bop->carried[c], &L);
                line(&g, "%s y%d_%d[%lld];", reg_type(&g, ir->values[bop->carried[c]].dtype), i, c, (long long)L.J);
                char yn[32];
                snprintf(yn, sizeof yn, "y%d_%d", i, c);
                if (same_layout(&L, &g.lay[op->yields[c]])) {
                    copy_unroll(&g, L.J);
                    line(&g, "for (int j = 0; j < %lld; j++) y%d_%d[j] = %s[j];", (long long)L.J, i, c, vname(op->yields[c]));
                } else ts__cg_relayout(&g, op->yields[c], yn, &L, 0);
            }
            for (int c = 0; c < op->ncarry; c++) {
                if (ts__cg_mma_carry_in_fragments(&g, bop, c)) continue;
                layout L;
                layout_of(&g, bop->carried[c], &L);
                copy_unroll(&g, L.J);
                line(&g, "for (int j = 0; j < %lld; j++) %s[j] = y%d_%d[j];", (long long)L.J, vname(bop->carried[c]), i, c);
            }
            g.indent--;
            line(&g, "}");
            for (int c = 0; c < op->ncarry; c++) {
                if (ts__cg_mma_carry_in_fragments(&g, bop, c)) continue;
                ts__cg_declare(&g, op->results[c]);
                layout L;
                layout_of(&g, op->results[c], &L);
                copy_unroll(&g, L.J);
                line(&g, "for (int j = 0; j < %lld; j++) %s[j] = %s[j];", (long long)L.J, vname(op->results[c]), vname(bop->carried[c]));
            }
            if (g.pipe_loop == bop || g.frag_loop == bop) ts__cg_mma_loop_end(&g, op); /* declares a result kept in fragments */
            break;
        }
        default: cg_fail(&g, TS_ERR_UNSUPPORTED, "op %d (%s) is not lowered", i, ts__op_kind_name(op->kind)); break;
        }
    }
    body = g.sb;
    g.sb = head;
    ts__sb_puts(&g.sb, d->prelude);
    if (d->extensions) ts__sb_puts(&g.sb, d->extensions);
    if (g.mma) ts__cg_mma_prelude(&g, &g.sb);
    if (g.mfma) ts__cg_mfma_prelude(&g, &g.sb);
    if (g.rand) ts__cg_random_prelude(&g, &g.sb);
    if (ts__cg_uses_f8(ir)) ts__cg_f8_prelude(&g, &g.sb);
    ts__sb_printf(&g.sb, "\n/* kernel '%s', %d threads per program */\n", ir->name, g.T);
    emit_params(&g, entry);
    /* cp.async and ldmatrix address 16-byte chunks of ts_lf, the MFMA dot 8-byte ones */
    if (g.lf && !d->buffer_blocks)
        ts__sb_printf(&g.sb, "  %s%s float ts_lf[%lld];\n", d->local_decl,
                      g.mma && d->id == TS_DIALECT_CUDA ? " __align__(16)" : g.mfma && d->id == TS_DIALECT_HIP ? " __attribute__((aligned(16)))" : "",
                      (long long)g.lf);
    if (g.li && !d->buffer_blocks) ts__sb_printf(&g.sb, "  %s int ts_li[%lld];\n", d->local_decl, (long long)g.li);
    if (g.mma) ts__cg_mma_decls(&g, &g.sb);
    char *b = ts__sb_finish(&body);
    if (b) ts__sb_puts(&g.sb, b);
    free(b);
    ts__sb_puts(&g.sb, "}\n");
    free(g.uses);
    free(g.fused);
    free(g.lay);
    for (int v = 0; v < k->ir.nvalues; v++) {
        free(g.px[v].slow);
        free(g.px[v].fast);
    }
    free(g.px);
    free(g.deferred);
    int64_t local_bytes = g.lf * 4 + g.li * 4 + (g.dot_shared_a4 + g.dot_shared_b4) * 16 + g.pipe_halfs * 2;
    /* Large private arrays spill to the stack (and crash some drivers): such
     * configs are refused, and the tuner prunes them. */
    const int max_priv = d->max_private > 0 ? d->max_private : TS__MAX_PRIVATE;
    if (!g.err && (g.priv > max_priv || g.priv * g.T > TS__MAX_PRIVATE_GROUP))
        cg_fail(&g, TS_ERR_BAD_CONFIG, "needs %lld private elements per thread x %d threads (at most %d per thread, %d per group); use smaller blocks",
                (long long)g.priv, g.T, max_priv, TS__MAX_PRIVATE_GROUP);
    if (!g.err && caps && caps->shared_mem_bytes && local_bytes > caps->shared_mem_bytes)
        cg_fail(&g, TS_ERR_BAD_CONFIG, "needs %lld bytes of local memory, the device has %lld", (long long)local_bytes, (long long)caps->shared_mem_bytes);
    if (g.err) {
        ts__sb_free(&g.sb);
        return ts__error(g.err, "kernel '%s': %s", ir->name, g.errmsg);
    }
    *source = ts__sb_finish(&g.sb);
    return *source ? TS_OK : ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory emitting kernel '%s'", ir->name);
}
