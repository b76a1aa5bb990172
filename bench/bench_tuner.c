/* bench_tuner.c: what tuning buys and what it costs. For each kernel
 * (f32 matmul 1024^3, softmax 4096x1024) on each GPU-like backend present
 * (opencl, vulkan): a guided quick tune and an exhaustive tune of the same
 * space (neither touches the tuning database), then the defaults, the
 * guided best and the exhaustive best timed again side by side in this run
 * (median of o->repeats launches, each result checked against the kernel's
 * independent reference). Entries:
 *   tuner_NAME         ours = guided best, peer = the defaults
 *   tuner_NAME_search  ours = guided best, peer = exhaustive best
 *                      (ratio >= 0.9: within 10% of the exhaustive best)
 * with the configs each search benchmarked and its tuning time in the note. */
#include "bench_tuner.h"
#include "cli.h"
#include "kernels.h"
#include "tessera_tune.h"

#include <stdio.h>
#include <string.h>

typedef struct tuner_case {
    const char *name, *sizes;
    const char *names[3];
    int64_t values[3];
    int nsizes;
    double flops; /* 0: memory-bound, report GB/s */
    double bytes;
} tuner_case;

static ts_status tune_once(ts_context *ctx, const ts_example *ex, const ts_kernel *k, const tuner_case *c, ts_tune_strategy st,
                           ts_tune_report **out) {
    ts_tune_options o = TS_TUNE_OPTIONS_INIT;
    o.effort = TS_TUNE_EFFORT_QUICK;
    o.strategy = st;
    o.use_db = 0;
    o.tol_scale = ex->tol_scale;
    o.reduce_size = ex->reduce_dim;
    if (st == TS_TUNE_EXHAUSTIVE) o.budget_s = 3600;
    return ts_tune(ctx, k, c->names, c->values, c->nsizes, &o, out);
}

/* Median time of cfg, checked against the example's reference; 0 on failure. */
static double timed(ts_context *ctx, const ts_example *ex, const ts_kernel *k, const char *sizes, const ts_config *cfg, int repeats) {
    ts_ex_sizes s;
    if (ts_ex_parse_sizes(sizes, &s)) return 0;
    ts_ex_result res;
    if (ts_ex_run_case(ctx, ex, k, TS_F32, &s, cfg, repeats, 11, &res)) {
        fprintf(stderr, "bench tuner: %s: %s\n", ex->name, res.message);
        return 0;
    }
    return res.ms;
}

static void fill_entry(ts_bench_entry *e, const char *name, const char *backend, ts_context *ctx, const tuner_case *c) {
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->backend, sizeof e->backend, "%s", backend);
    snprintf(e->device, sizeof e->device, "%s", ts_context_device_name(ctx));
    snprintf(e->shape, sizeof e->shape, "%s", c->sizes);
    snprintf(e->dtype, sizeof e->dtype, "f32");
    (void)c;
}

static void rates(ts_bench_entry *e, const tuner_case *c) {
    if (e->ours_ms <= 0) return;
    if (c->flops > 0) e->gflops = c->flops / (e->ours_ms * 1e6);
    if (c->bytes > 0) e->gbps = c->bytes / (e->ours_ms * 1e6);
}

static void bench_case(ts_bench_report *r, const ts_bench_options *o, const char *backend, ts_context *ctx, const tuner_case *c) {
    char name[64], sname[64];
    snprintf(name, sizeof name, "tuner_%s", c->name);
    snprintf(sname, sizeof sname, "tuner_%s_search", c->name);
    if (!ts_bench_selected(o, name)) return;
    const ts_example *ex = ts_example_find(c->name);
    ts_kernel *k = NULL;
    ts_bench_entry e;
    if (!ex || ex->build(TS_F32, &k)) {
        fill_entry(&e, name, backend, ctx, c);
        snprintf(e.note, sizeof e.note, "build failed: %s", ts_last_error());
        ts_bench_add(r, &e);
        return;
    }
    ts_tune_report *g = NULL, *x = NULL;
    ts_status sg = tune_once(ctx, ex, k, c, TS_TUNE_GUIDED, &g);
    ts_status sx = sg ? sg : tune_once(ctx, ex, k, c, TS_TUNE_EXHAUSTIVE, &x);
    fill_entry(&e, name, backend, ctx, c);
    if (sg || sx) {
        snprintf(e.note, sizeof e.note, "tuning failed: %s", ts_last_error());
        ts_bench_add(r, &e);
    } else {
        /* the three configs again, side by side */
        ts_config *defaults = NULL;
        ts_config_create(&defaults);
        int reps = o->repeats > 0 ? o->repeats : 7;
        double d_ms = timed(ctx, ex, k, c->sizes, defaults, reps);
        double g_ms = timed(ctx, ex, k, c->sizes, g->best, reps);
        double x_ms = timed(ctx, ex, k, c->sizes, x->best, reps);
        ts_config_destroy(defaults);
        e.ours_ms = g_ms;
        snprintf(e.peer, sizeof e.peer, "default config");
        e.peer_ms = d_ms;
        rates(&e, c);
        snprintf(e.note, sizeof e.note, "guided %d configs, %.0f s: %s", g->tried, g->tuning_s, g->best_config);
        ts_bench_add(r, &e);
        fill_entry(&e, sname, backend, ctx, c);
        e.ours_ms = g_ms;
        snprintf(e.peer, sizeof e.peer, "exhaustive best");
        e.peer_ms = x_ms;
        rates(&e, c);
        snprintf(e.note, sizeof e.note, "guided %d cfgs %.0f s; exhaustive %d of %lld cfgs %.0f s: %s", g->tried, g->tuning_s, x->tried,
                 (long long)x->space, x->tuning_s, x->best_config);
        ts_bench_add(r, &e);
    }
    ts_tune_report_destroy(g);
    ts_tune_report_destroy(x);
    ts_kernel_destroy(k);
}

void ts_bench_tuner(ts_bench_report *r, const ts_bench_options *o) {
    if (o->filter && !strstr(o->filter, "tuner")) return;
    static const char *const backends[] = {"opencl", "vulkan"};
    const tuner_case cases[] = {
        {"matmul", "M=1024,N=1024,K=1024", {"M", "N", "K"}, {1024, 1024, 1024}, 3, 2.0 * 1024 * 1024 * 1024, 0},
        {"softmax", "M=4096,N=1024", {"M", "N"}, {4096, 1024}, 2, 0, 8.0 * 4096 * 1024},
    };
    for (size_t b = 0; b < sizeof backends / sizeof backends[0]; b++) {
        if (o->backend && strcmp(o->backend, backends[b]) != 0) continue;
        if (!ts_backend_available(backends[b], NULL)) continue;
        ts_context *ctx;
        if (ts_context_create(backends[b], 0, &ctx)) continue;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) bench_case(r, o, backends[b], ctx, &cases[i]);
        ts_context_destroy(ctx);
    }
}
