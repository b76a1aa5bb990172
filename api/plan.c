/* plan.c: a config and the launch's tensor shapes make every block size,
 * grid size and knob concrete. Shared by the reference executor and codegen. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

void ts__plan_free(ts__plan *p) {
    free(p->size_values);
    free(p->block);
    memset(p, 0, sizeof *p);
}

int64_t ts__next_pow2(int64_t v) {
    int64_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

static int64_t knob(const ts_config *cfg, const char *key, int64_t def) {
    int64_t v;
    return ts_config_get(cfg, key, &v) ? v : def;
}

#define TS__MAX_WHOLE_BLOCK 16384

ts_status ts__plan_make(const ts__kir *ir, const ts_config *cfg, const int64_t *const *shapes, ts__plan *out) {
    memset(out, 0, sizeof *out);
    out->size_values = ts__calloc((size_t)(ir->nsizes ? ir->nsizes : 1), sizeof(int64_t));
    out->block = ts__calloc((size_t)(ir->ntiles ? ir->ntiles : 1), sizeof(int64_t));
    if (!out->size_values || !out->block) { ts__plan_free(out); return TS_ERR_OUT_OF_MEMORY; }
    for (int s = 0; s < ir->nsizes; s++) out->size_values[s] = ir->sizes[s].name[0] ? -1 : ir->sizes[s].fixed;
    for (int p = 0; p < ir->nparams; p++) {
        const ts__param *pa = &ir->params[p];
        for (int d = 0; d < pa->rank; d++) {
            int64_t got = shapes[p][d];
            int s = pa->sizes[d];
            if (got < 0) { ts__plan_free(out); return ts__error(TS_ERR_BAD_ARGS, "kernel '%s': tensor '%s' dim %d is negative", ir->name, pa->name, d); }
            if (out->size_values[s] < 0) out->size_values[s] = got;
            else if (out->size_values[s] != got) {
                int64_t prev = out->size_values[s];
                ts__plan_free(out);
                if (ir->sizes[s].name[0])
                    return ts__error(TS_ERR_BAD_ARGS, "kernel '%s': tensor '%s' dim %d is %lld but size %s is already %lld", ir->name, pa->name, d,
                                     (long long)got, ir->sizes[s].name, (long long)prev);
                return ts__error(TS_ERR_BAD_ARGS, "kernel '%s': tensor '%s' dim %d is %lld but must be %lld", ir->name, pa->name, d,
                                 (long long)got, (long long)ir->sizes[s].fixed);
            }
        }
    }
    ts_status st = ts_config_check(cfg, &(const ts_kernel){.ir = *ir});
    if (st) { ts__plan_free(out); return st; }
    for (int t = 0; t < ir->ntiles; t++) {
        const ts__tile *tl = &ir->tiles[t];
        int64_t ext = tl->extent >= 0 ? out->size_values[tl->extent] : 1; /* a ranged loop's block is a tunable */
        if (tl->block == TS__BLOCK_POINT) out->block[t] = 1;
        else if (tl->block == TS__BLOCK_WHOLE) {
            out->block[t] = ts__next_pow2(ext < 1 ? 1 : ext);
            if (out->block[t] > TS__MAX_WHOLE_BLOCK) {
                int64_t b = out->block[t];
                ts__plan_free(out);
                return ts__error(TS_ERR_LIMIT, "kernel '%s': whole tile '%s' needs a block of %lld elements (at most %d); use a looped kernel",
                                 ir->name, tl->name, (long long)b, TS__MAX_WHOLE_BLOCK);
            }
        } else out->block[t] = knob(cfg, ir->tunables[tl->block].name, ir->tunables[tl->block].def);
    }
    for (int g = 0; g < TS_MAX_GRID; g++) out->grid[g] = 1;
    for (int g = 0; g < ir->ngrid; g++) {
        ts_tile t = ir->grid[g];
        int64_t ext = out->size_values[ir->tiles[t].extent];
        out->grid[g] = (ext + out->block[t] - 1) / out->block[t];
    }
    out->threads = (int)knob(cfg, "threads", 64);
    out->vec = (int)knob(cfg, "vec", 1);
    out->unroll = (int)knob(cfg, "unroll", 1);
    out->stage = (int)knob(cfg, "stage", 0);
    out->micro_m = (int)knob(cfg, "micro_m", 4);
    out->micro_n = (int)knob(cfg, "micro_n", 8);
    out->tensor_cores = (int)knob(cfg, "tensor_cores", -1);
    out->warps = (int)knob(cfg, "warps", 0);
    out->group_m = (int)knob(cfg, "group_m", 1);
    out->col_threads = (int)knob(cfg, "col_threads", 1024);
    out->nt = (int)knob(cfg, "nt", 0);
    out->stages = (int)knob(cfg, "stages", 0);
    return TS_OK;
}

int64_t ts__value_numel(const ts__kir *ir, const ts__plan *p, ts_val v) {
    int64_t n = 1;
    const ts__value *val = &ir->values[v];
    for (int d = 0; d < val->rank; d++) n *= val->dims[d] == TS_NONE ? 1 : p->block[val->dims[d]];
    return n;
}

void ts__value_shape(const ts__kir *ir, const ts__plan *p, ts_val v, int64_t *shape) {
    const ts__value *val = &ir->values[v];
    for (int d = 0; d < val->rank; d++) shape[d] = val->dims[d] == TS_NONE ? 1 : p->block[val->dims[d]];
}
