/* bench_kernels.c: the example kernels on each backend against peers:
 * f32 matmul against OpenBLAS cblas_sgemm (and CLBlast on OpenCL devices,
 * see bench_clblast.c), memory-bound kernels as GB/s against memcpy of the
 * same bytes. Inputs are random, never zeros. */
#include "bench.h"
#include "cli.h"
#include "kernels.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void fill(float *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = ((float)(seed >> 8) / 16777216.0f) * 2.0f - 1.0f + 1e-3f;
    }
}

/* Median ms of memcpy of `bytes` (read + write, as our kernels do). */
static double memcpy_ms(size_t bytes, int repeats) {
    char *a = malloc(bytes), *b = malloc(bytes);
    if (!a || !b) { free(a); free(b); return 0; }
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    double t[64];
    int n = repeats > 64 ? 64 : repeats;
    memcpy(b, a, bytes);
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        memcpy(b, a, bytes);
        t[i] = now_ms() - t0;
    }
    free(a);
    free(b);
    return ts_bench_median(t, n);
}

static double openblas_sgemm_ms(int M, int N, int K, int repeats) {
    float *A = malloc(sizeof(float) * (size_t)M * K), *B = malloc(sizeof(float) * (size_t)K * N), *C = malloc(sizeof(float) * (size_t)M * N);
    if (!A || !B || !C) { free(A); free(B); free(C); return 0; }
    fill(A, (size_t)M * K, 1);
    fill(B, (size_t)K * N, 2);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
    double t[64];
    int n = repeats > 64 ? 64 : repeats;
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
        t[i] = now_ms() - t0;
    }
    free(A);
    free(B);
    free(C);
    return ts_bench_median(t, n);
}

/* Times our kernel `ex` at sizes `sizes` on ctx: warm-up, then the median of
 * device times. Checks the result once against the reference first. */
static int time_ours(ts_context *ctx, const ts_example *ex, const char *sizes, int repeats, double *ms, char *note, size_t nn) {
    ts_kernel *k;
    if (ex->build(TS_F32, &k)) {
        snprintf(note, nn, "build: %s", ts_last_error());
        return 0;
    }
    ts_ex_sizes sz;
    ts_ex_parse_sizes(sizes, &sz);
    ts_ex_result r;
    ts_status s = ts_ex_run_case(ctx, ex, k, TS_F32, &sz, NULL, repeats, 7, &r);
    ts_kernel_destroy(k);
    if (s) {
        snprintf(note, nn, "FAILED: %s", r.message);
        return 0;
    }
    *ms = r.ms;
    snprintf(note, nn, "checked, max err %.2g x tol", r.max_err);
    return 1;
}

void ts_bench_clblast(ts_bench_report *r, const ts_bench_options *o, ts_context *ctx, const ts_bench_entry *ours) __attribute__((weak));

void ts_bench_kernels(ts_bench_report *r, const ts_bench_options *o) {
    const char *names[32];
    int nb = ts_cli_selected_backends(o->backend, names, 32);
    for (int b = 0; b < nb; b++) {
        if (!ts_backend_available(names[b], NULL)) continue;
        ts_context *ctx;
        if (ts_context_create(names[b], 0, &ctx)) continue;
        int is_ref = strcmp(names[b], "ref") == 0;
        /* The reference executor interprets in f64: smaller problems keep it quick. */
        int n = is_ref ? 256 : 1024;
        char sizes[96], shape[64];
        ts_bench_entry e;
        if (ts_bench_selected(o, "matmul")) {
            memset(&e, 0, sizeof e);
            snprintf(e.name, sizeof e.name, "matmul");
            snprintf(e.backend, sizeof e.backend, "%s", names[b]);
            snprintf(e.device, sizeof e.device, "%s", ts_context_device_name(ctx));
            snprintf(shape, sizeof shape, "%dx%dx%d", n, n, n);
            snprintf(e.shape, sizeof e.shape, "%s", shape);
            snprintf(e.dtype, sizeof e.dtype, "f32");
            snprintf(sizes, sizeof sizes, "M=%d,N=%d,K=%d", n, n, n);
            if (time_ours(ctx, ts_example_find("matmul"), sizes, is_ref ? 3 : o->repeats, &e.ours_ms, e.note, sizeof e.note)) {
                e.gflops = 2.0 * n * (double)n * n / (e.ours_ms * 1e6);
                snprintf(e.peer, sizeof e.peer, "openblas");
                e.peer_ms = openblas_sgemm_ms(n, n, n, o->repeats);
                ts_bench_add(r, &e);
                if (ts_bench_clblast) ts_bench_clblast(r, o, ctx, &e);
            } else ts_bench_add(r, &e);
        }
        struct { const char *name, *sizes; double bytes_per_elem; } mem[] = {
            {"add", "M=4096,N=1024", 12.0}, {"softmax", "M=4096,N=1024", 8.0}, {"layer_norm", "M=4096,N=1024", 8.0}};
        for (size_t i = 0; i < sizeof mem / sizeof mem[0]; i++) {
            if (!ts_bench_selected(o, mem[i].name)) continue;
            memset(&e, 0, sizeof e);
            const char *sz = is_ref ? "M=256,N=1024" : mem[i].sizes;
            ts_ex_sizes s;
            ts_ex_parse_sizes(sz, &s);
            double elems = (double)ts_ex_size(&s, "M") * (double)ts_ex_size(&s, "N");
            snprintf(e.name, sizeof e.name, "%s", mem[i].name);
            snprintf(e.backend, sizeof e.backend, "%s", names[b]);
            snprintf(e.device, sizeof e.device, "%s", ts_context_device_name(ctx));
            snprintf(e.shape, sizeof e.shape, "%s", sz);
            snprintf(e.dtype, sizeof e.dtype, "f32");
            if (time_ours(ctx, ts_example_find(mem[i].name), sz, is_ref ? 3 : o->repeats, &e.ours_ms, e.note, sizeof e.note)) {
                double bytes = elems * mem[i].bytes_per_elem; /* bytes read and written (add: x, y, z) */
                e.gbps = bytes / (e.ours_ms * 1e6);
                snprintf(e.peer, sizeof e.peer, "memcpy");
                e.peer_ms = memcpy_ms((size_t)(bytes / 2), o->repeats); /* the same traffic: half read, half written */
            }
            ts_bench_add(r, &e);
        }
        /* Causal attention whose key loop stops at the diagonal, against the
         * masked full loop (the attention example with causal=1) at the same
         * size: the ratio is the speed-up of the shortened loop. */
        if (ts_bench_selected(o, "attention_causal") && !is_ref) {
            memset(&e, 0, sizeof e);
            const char *sz = "H=4,S=2048,T=2048,D=64";
            snprintf(e.name, sizeof e.name, "attention_causal");
            snprintf(e.backend, sizeof e.backend, "%s", names[b]);
            snprintf(e.device, sizeof e.device, "%s", ts_context_device_name(ctx));
            snprintf(e.shape, sizeof e.shape, "%s", sz);
            snprintf(e.dtype, sizeof e.dtype, "f32");
            char pnote[160];
            if (time_ours(ctx, ts_example_find("attention_causal"), sz, o->repeats, &e.ours_ms, e.note, sizeof e.note) &&
                time_ours(ctx, ts_example_find("attention"), sz, o->repeats, &e.peer_ms, pnote, sizeof pnote)) {
                snprintf(e.peer, sizeof e.peer, "masked full loop");
                e.gflops = 4.0 * 4 * 2048.0 * 2049.0 / 2 * 64 / (e.ours_ms * 1e6); /* the causal half: QK^T and PV */
            }
            ts_bench_add(r, &e);
        }
        ts_context_destroy(ctx);
    }
}
