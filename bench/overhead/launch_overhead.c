/* launch_overhead.c: the C side of bench/python_overhead.py: per-call time of
 * a tiny kernel (axpy on 16 floats) launched from C, on one backend.
 *
 *   tessera_launch_overhead BACKEND CALLS
 *
 * Prints one JSON object: microseconds per ts_launch on device tensors
 * ("device_us"), and per call that also uploads x and y from host arrays
 * and reads y back into a new pair of tensors each time, the work a Python
 * call on numpy arrays does ("host_us"). Medians of 5 rounds of CALLS calls. */
#include <tessera.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define N 16

static const char *KERNEL = "kernel axpy(x: f32[N], y: f32[N], a: f32) {\n"
                            "  tunable B = 64 in 16..1024\n"
                            "  grid t in tile(N, B)\n"
                            "  store(y[t], a * load(x[t]) + load(y[t]))\n"
                            "}\n";

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define CHECK(call)                                                                                        \
    do {                                                                                                   \
        ts_status s_ = (call);                                                                             \
        if (s_ != TS_OK) {                                                                                 \
            fprintf(stderr, "launch_overhead: %s: %s\n", ts_status_name(s_), ts_last_error());           \
            return 1;                                                                                      \
        }                                                                                                  \
    } while (0)

int main(int argc, char **argv) {
    const char *backend = argc > 1 ? argv[1] : "ref";
    int calls = argc > 2 ? atoi(argv[2]) : 2000;
    if (calls < 1) calls = 1;
    ts_kernel *k;
    ts_context *ctx;
    CHECK(ts_kernel_parse(KERNEL, "<overhead>", &k));
    CHECK(ts_context_create(backend, 0, &ctx));
    int64_t n = N;
    float hx[N], hy[N];
    for (int i = 0; i < N; i++) hx[i] = (float)i, hy[i] = 1.0f;
    ts_tensor *x, *y;
    CHECK(ts_tensor_create(ctx, TS_F32, 1, &n, &x));
    CHECK(ts_tensor_create(ctx, TS_F32, 1, &n, &y));
    CHECK(ts_tensor_write(x, hx, sizeof hx));
    CHECK(ts_tensor_write(y, hy, sizeof hy));
    ts_arg args[3] = {TS_ARG_TENSOR(x), TS_ARG_TENSOR(y), TS_ARG_F(2.0)};
    for (int i = 0; i < 20; i++) CHECK(ts_launch(ctx, k, NULL, args, 3, NULL)); /* compile, warm up */
    double dev[5], host[5];
    for (int r = 0; r < 5; r++) {
        double t0 = now_us();
        for (int i = 0; i < calls; i++) CHECK(ts_launch(ctx, k, NULL, args, 3, NULL));
        dev[r] = (now_us() - t0) / calls;
    }
    for (int r = 0; r < 5; r++) {
        double t0 = now_us();
        for (int i = 0; i < calls; i++) {
            ts_tensor *hxT, *hyT;
            CHECK(ts_tensor_create(ctx, TS_F32, 1, &n, &hxT));
            CHECK(ts_tensor_create(ctx, TS_F32, 1, &n, &hyT));
            CHECK(ts_tensor_write(hxT, hx, sizeof hx));
            CHECK(ts_tensor_write(hyT, hy, sizeof hy));
            ts_arg a2[3] = {TS_ARG_TENSOR(hxT), TS_ARG_TENSOR(hyT), TS_ARG_F(2.0)};
            CHECK(ts_launch(ctx, k, NULL, a2, 3, NULL));
            CHECK(ts_tensor_read(hyT, hy, sizeof hy));
            ts_tensor_destroy(hxT);
            ts_tensor_destroy(hyT);
        }
        host[r] = (now_us() - t0) / calls;
    }
    qsort(dev, 5, sizeof *dev, cmp);
    qsort(host, 5, sizeof *host, cmp);
    printf("{\"backend\": \"%s\", \"device\": \"%s\", \"calls\": %d, \"device_us\": %.3f, \"host_us\": %.3f}\n", ts_context_backend(ctx),
           ts_context_device_name(ctx), calls, dev[2], host[2]);
    ts_tensor_destroy(x);
    ts_tensor_destroy(y);
    ts_context_destroy(ctx);
    ts_kernel_destroy(k);
    return 0;
}
