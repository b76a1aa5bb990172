/* test_util.h: helpers shared by the Criterion suites that generate code or
 * open a backend (header-only; each suite is its own executable). */
#ifndef TS_TEST_UTIL_H
#define TS_TEST_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen.h"
#include "kernels.h"

/* The sanitizer run sets TESSERA_TEST_BACKENDS=ref: third-party compilers
 * and drivers are neither built with ASan nor leak-free. */
static inline void ts_test_skip_unless_selected(const char *name) {
    const char *only = getenv("TESSERA_TEST_BACKENDS");
    if (only && !strstr(only, name)) cr_skip_test("TESSERA_TEST_BACKENDS=%s excludes %s", only, name);
}

/* A CUDA toolkit program ("nvcc", "ptxas"): $CUDA_HOME/bin, then
 * /usr/local/cuda/bin; NULL when absent. The result lives until the next call. */
static inline const char *ts_test_cuda_tool(const char *tool) {
    static char buf[4200];
    const char *h = getenv("CUDA_HOME");
    if (h && *h) {
        snprintf(buf, sizeof buf, "%s/bin/%s", h, tool);
        if (access(buf, X_OK) == 0) return buf;
    }
    snprintf(buf, sizeof buf, "/usr/local/cuda/bin/%s", tool);
    return access(buf, X_OK) == 0 ? buf : NULL;
}

/* The source of k for a dialect under cfg at the size set "M=127,N=1000"
 * (entry ts_<name>); caps NULL: a 1024-thread, 48 KiB device. */
static inline ts_status ts_test_emit(const ts_kernel *k, const ts_config *cfg, const char *sizes, ts_dialect dialect, const ts_device_caps *caps,
                                     char **src) {
    *src = NULL;
    ts_ex_sizes sz;
    cr_assert_eq(ts_ex_parse_sizes(sizes, &sz), TS_OK);
    int np = ts_kernel_param_count(k);
    cr_assert(np <= 16);
    int64_t shapes[16][TS_MAX_RANK];
    const int64_t *ptrs[16];
    for (int p = 0; p < np; p++) {
        ts_param_info pi;
        ts_kernel_param(k, p, &pi);
        for (int d = 0; d < pi.rank; d++) shapes[p][d] = pi.size_names[d] ? ts_ex_size(&sz, pi.size_names[d]) : pi.fixed_sizes[d];
        ptrs[p] = shapes[p];
    }
    ts_device_caps def = {.max_group_size = 1024, .shared_mem_bytes = 48 * 1024};
    ts__plan plan;
    memset(&plan, 0, sizeof plan);
    ts_status s = ts__plan_make(&k->ir, cfg, ptrs, &plan);
    if (!s) {
        char entry[96];
        snprintf(entry, sizeof entry, "ts_%s", ts_kernel_name(k));
        s = ts__codegen_emit(k, &plan, dialect, caps ? caps : &def, entry, src);
    }
    ts__plan_free(&plan);
    return s;
}

/* A context on the backend, or the test skips with the reason. */
static inline ts_context *ts_test_open_or_skip(const char *backend) {
    ts_test_skip_unless_selected(backend);
    const char *why = NULL;
    if (!ts_backend_available(backend, &why)) cr_skip_test("%s backend not available: %s", backend, why ? why : "?");
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create(backend, 0, &ctx), TS_OK, "%s", ts_last_error());
    return ctx;
}

/* Runs the kernel of `text` (parameters: y: i32[M, N], then the scalar
 * seed) on ctx under cfg (NULL: defaults) at M x N and reads y into out. */
static inline void ts_test_randint_2d(ts_context *ctx, const char *text, const char *cfg_text, int64_t M, int64_t N, int64_t seed, int32_t *out) {
    ts_kernel *k = NULL;
    cr_assert_eq(ts_kernel_parse(text, "randint_2d.tile", &k), TS_OK, "%s", ts_last_error());
    ts_config *cfg = NULL;
    if (cfg_text) cr_assert_eq(ts_config_parse(cfg_text, &cfg), TS_OK, "%s", ts_last_error());
    ts_tensor *y = NULL;
    int64_t shape[2] = {M, N};
    cr_assert_eq(ts_tensor_create(ctx, TS_I32, 2, shape, &y), TS_OK, "%s", ts_last_error());
    ts_arg args[2] = {TS_ARG_TENSOR(y), TS_ARG_I(seed)};
    cr_assert_eq(ts_launch(ctx, k, cfg, args, 2, NULL), TS_OK, "%s", ts_last_error());
    cr_assert_eq(ts_tensor_read(y, out, (size_t)(M * N) * 4), TS_OK, "%s", ts_last_error());
    ts_tensor_destroy(y);
    ts_config_destroy(cfg);
    ts_kernel_destroy(k);
}

#define TS_TEST_RANDINT_2D                                                                         \
    "kernel r2(y: i32[M, N], seed: i32) {\n  tunable BM = 4 in 1..64\n  tunable BN = 64 in 16..1024\n" \
    "  grid tm in tile(M, BM), tn in tile(N, BN)\n  store(y[tm, tn], randint(seed, [tm, tn]))\n}\n"

#endif
