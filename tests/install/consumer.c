/* consumer.c: the smallest program built against an installed Tessera (tests/install/test_install.sh). */
#include <tessera.h>
#include <stdio.h>

int main(void) {
    ts_kernel *k = NULL;
    const char *text = "kernel neg(x: f32[N], y: f32[N]) {\n  grid t in tile(N)\n  store(y[t], -load(x[t]))\n}\n";
    if (ts_kernel_parse(text, "<consumer>", &k) != TS_OK) {
        fprintf(stderr, "%s\n", ts_last_error());
        return 1;
    }
    ts_context *ctx = NULL;
    ts_tensor *x = NULL, *y = NULL;
    int64_t n = 5;
    float in[5] = {1, 2, 3, 4, 5}, out[5] = {0};
    if (ts_context_create("ref", 0, &ctx) || ts_tensor_create(ctx, TS_F32, 1, &n, &x) || ts_tensor_create(ctx, TS_F32, 1, &n, &y) ||
        ts_tensor_write(x, in, sizeof in) || ts_launch(ctx, k, NULL, (ts_arg[]){TS_ARG_TENSOR(x), TS_ARG_TENSOR(y)}, 2, NULL) ||
        ts_tensor_read(y, out, sizeof out)) {
        fprintf(stderr, "%s\n", ts_last_error());
        return 1;
    }
    printf("tessera %s: neg -> %g %g %g %g %g\n", TS_VERSION_STRING, out[0], out[1], out[2], out[3], out[4]);
    ts_tensor_destroy(x);
    ts_tensor_destroy(y);
    ts_context_destroy(ctx);
    ts_kernel_destroy(k);
    return out[4] == -5.0f ? 0 : 1;
}
