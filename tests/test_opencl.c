/* test_opencl.c: every example kernel on the OpenCL backend (PoCL in CI), at
 * sizes that are not multiples of the block sizes, under the default config
 * and the extremes of its tunables, against the independent references.
 * Skips with the reason when no OpenCL device is available. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "test_util.h"

static ts_context *open_or_skip(void) {
    const char *only = getenv("TESSERA_TEST_BACKENDS");
    if (only && !strstr(only, "opencl")) cr_skip_test("TESSERA_TEST_BACKENDS=%s excludes opencl", only);
    const char *why = NULL;
    if (!ts_backend_available("opencl", &why)) cr_skip_test("opencl backend not available: %s", why ? why : "?");
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create("opencl", 0, &ctx), TS_OK, "%s", ts_last_error());
    return ctx;
}

static void run_example(const char *name) {
    ts_context *ctx = open_or_skip();
    const ts_example *ex = ts_example_find(name);
    cr_assert_not_null(ex);
    for (int di = 0; di < ex->ndtypes; di++) {
        ts_dtype dt = ex->dtypes[di];
        ts_kernel *k = NULL;
        cr_assert_eq(ex->build(dt, &k), TS_OK, "%s", ts_last_error());
        ts_config *cfgs[4];
        int nc = ts_ex_configs(k, cfgs, di == 0 ? 4 : 1); /* every config in f32, the default in f16/bf16 */
        for (int si = 0; si < 6 && ex->sizes[si]; si++) {
            ts_ex_sizes sz;
            cr_assert_eq(ts_ex_parse_sizes(ex->sizes[si], &sz), TS_OK);
            for (int c = 0; c < nc; c++) {
                ts_ex_result r;
                ts_ex_run_case(ctx, ex, k, dt, &sz, cfgs[c], 1, (uint64_t)(si * 13 + c + 1), &r);
                char *cs = ts_config_format(cfgs[c]);
                /* An extreme config may exceed this device's limits (local or
                 * private memory): that must be a clear TS_ERR_BAD_CONFIG, never a
                 * wrong result; the default config must always run. */
                if (c > 0 && r.status == TS_ERR_BAD_CONFIG) {
                    free(cs);
                    continue;
                }
                cr_expect_eq(r.status, TS_OK, "%s %s %s [%s]: %s %s", name, ts_dtype_name(dt), ex->sizes[si], cs && *cs ? cs : "default",
                             ts_status_name(r.status), r.message);
                free(cs);
            }
        }
        for (int c = 0; c < nc; c++) ts_config_destroy(cfgs[c]);
        ts_kernel_destroy(k);
    }
    ts_context_destroy(ctx);
}

#define EXAMPLE_TEST(n) Test(opencl, n, .timeout = 600) { run_example(#n); }
EXAMPLE_TEST(add)
EXAMPLE_TEST(exp)
EXAMPLE_TEST(gelu)
EXAMPLE_TEST(silu)
EXAMPLE_TEST(swiglu)
EXAMPLE_TEST(sum)
EXAMPLE_TEST(long_sum)
EXAMPLE_TEST(softmax)
EXAMPLE_TEST(softmax_online)
EXAMPLE_TEST(layer_norm)
EXAMPLE_TEST(rms_norm)
EXAMPLE_TEST(matmul)
EXAMPLE_TEST(matmul_bias_gelu)
EXAMPLE_TEST(bmm)
EXAMPLE_TEST(attention)
EXAMPLE_TEST(cross_entropy)
EXAMPLE_TEST(embedding)
EXAMPLE_TEST(transpose)
/* after Helion's examples, in the tile language only */
EXAMPLE_TEST(rope)
EXAMPLE_TEST(concatenate)
EXAMPLE_TEST(jagged_sum)
EXAMPLE_TEST(segment_sum)
EXAMPLE_TEST(gather_gemv)
EXAMPLE_TEST(attention_causal)
EXAMPLE_TEST(matmul_split_k)
EXAMPLE_TEST(grouped_matmul)
EXAMPLE_TEST(layer_norm_bwd)
EXAMPLE_TEST(dropout)
EXAMPLE_TEST(int8_gemm)
EXAMPLE_TEST(fp8_gemm)

/* The CPU-style and GPU-style lowerings of dot both give right results. */
Test(opencl, matmul_staged_and_direct, .timeout = 600) {
    ts_context *ctx = open_or_skip();
    const ts_example *ex = ts_example_find("matmul");
    ts_kernel *k;
    cr_assert_eq(ex->build(TS_F32, &k), TS_OK);
    const char *cfgs[] = {"stage=0,micro_m=8,micro_n=16,BLOCK_M=64,BLOCK_N=128,BLOCK_K=64", "stage=1,micro_m=2,micro_n=2,BLOCK_M=32,BLOCK_N=32,BLOCK_K=8",
                          "stage=1,micro_m=4,micro_n=4,unroll=4"};
    ts_ex_sizes sz;
    ts_ex_parse_sizes("M=130,N=257,K=77", &sz);
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        ts_config *c;
        cr_assert_eq(ts_config_parse(cfgs[i], &c), TS_OK);
        ts_ex_result r;
        ts_ex_run_case(ctx, ex, k, TS_F32, &sz, c, 1, 3, &r);
        cr_expect_eq(r.status, TS_OK, "%s: %s", cfgs[i], r.message);
        ts_config_destroy(c);
    }
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* The row kernels under the thread and vector-width forms the tuner picks
 * on CPUs (one thread a row, float16 chunks) and GPUs, at every example
 * size (partial tiles included): whole-tile and partial-tile paths of
 * vector loads and stores (non-temporal ones with nt=1), fused expressions
 * and deferred loads. */
static void run_row_forms(const char *name) {
    ts_context *ctx = open_or_skip();
    const ts_example *ex = ts_example_find(name);
    cr_assert_not_null(ex);
    const char *forms[] = {"threads=1,vec=16", "threads=1,vec=16,nt=1", "threads=1,vec=4", "threads=2,vec=8", "threads=64,vec=16,nt=1", "threads=32,vec=2"};
    for (int di = 0; di < ex->ndtypes; di++) {
        ts_dtype dt = ex->dtypes[di];
        ts_kernel *k = NULL;
        cr_assert_eq(ex->build(dt, &k), TS_OK, "%s", ts_last_error());
        int has_bm = 0, ran = 0;
        for (int i = 0; i < ts_kernel_tunable_count(k); i++) {
            ts_tunable_info ti;
            ts_kernel_tunable(k, i, &ti);
            has_bm |= strcmp(ti.name, "BLOCK_M") == 0;
        }
        for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++)
            for (int bm = 0; bm < (has_bm ? 2 : 1); bm++) {
                char cs[128];
                snprintf(cs, sizeof cs, "%s%s", forms[f], has_bm ? (bm ? ",BLOCK_M=4" : ",BLOCK_M=1") : "");
                ts_config *c;
                cr_assert_eq(ts_config_parse(cs, &c), TS_OK, "%s", ts_last_error());
                for (int si = 0; si < 6 && ex->sizes[si]; si++) {
                    ts_ex_sizes sz;
                    cr_assert_eq(ts_ex_parse_sizes(ex->sizes[si], &sz), TS_OK);
                    ts_ex_result r;
                    ts_ex_run_case(ctx, ex, k, dt, &sz, c, 1, (uint64_t)(si * 7 + f + 1), &r);
                    if (r.status == TS_ERR_BAD_CONFIG) continue; /* over the private-memory cap: refused clearly */
                    cr_expect_eq(r.status, TS_OK, "%s %s %s [%s]: %s %s", name, ts_dtype_name(dt), ex->sizes[si], cs, ts_status_name(r.status), r.message);
                    ran++;
                }
                ts_config_destroy(c);
            }
        cr_expect_gt(ran, 0, "%s %s: no form ran", name, ts_dtype_name(dt));
        ts_kernel_destroy(k);
    }
    ts_context_destroy(ctx);
}

#define ROW_FORMS_TEST(n) Test(opencl_row_forms, n, .timeout = 600) { run_row_forms(#n); }
ROW_FORMS_TEST(add)
ROW_FORMS_TEST(gelu)
ROW_FORMS_TEST(softmax)
ROW_FORMS_TEST(layer_norm)
ROW_FORMS_TEST(rms_norm)
ROW_FORMS_TEST(cross_entropy)

/* Launches with no config and no tuning entry take the device's default
 * form (on a CPU device: one work-item a row, float16, nt=1; kernels with a
 * dot keep the kernel defaults): every example, every size, f32, against
 * the references. An empty cache directory, so no tuning entry applies. */
Test(opencl, device_defaults, .timeout = 600) {
    char dir[] = "/tmp/tessera-dd-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const char *old = getenv("TESSERA_CACHE_DIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("TESSERA_CACHE_DIR", dir, 1);
    ts_context *ctx = open_or_skip();
    for (int e = 0; e < ts_example_count(); e++) {
        const ts_example *ex = ts_example_get(e);
        ts_kernel *k = NULL;
        cr_assert_eq(ex->build(TS_F32, &k), TS_OK, "%s", ts_last_error());
        for (int si = 0; si < 6 && ex->sizes[si]; si++) {
            ts_ex_sizes sz;
            cr_assert_eq(ts_ex_parse_sizes(ex->sizes[si], &sz), TS_OK);
            ts_ex_result r;
            ts_ex_run_case(ctx, ex, k, TS_F32, &sz, NULL, 1, (uint64_t)(si + 11), &r);
            cr_expect_eq(r.status, TS_OK, "%s %s [device default]: %s %s", ex->name, ex->sizes[si], ts_status_name(r.status), r.message);
        }
        ts_kernel_destroy(k);
    }
    ts_context_destroy(ctx);
    if (saved) setenv("TESSERA_CACHE_DIR", saved, 1);
    else unsetenv("TESSERA_CACHE_DIR");
    free(saved);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

/* A corrupt cached binary is rebuilt, never trusted. */
Test(opencl, corrupt_binary_cache_is_rebuilt, .timeout = 300) {
    ts_context *ctx = open_or_skip();
    char dir[4096];
    const char *base = getenv("TESSERA_CACHE_DIR");
    cr_assert_not_null(base);
    snprintf(dir, sizeof dir, "%s/bin", base);
    const ts_example *ex = ts_example_find("exp");
    ts_kernel *k;
    cr_assert_eq(ex->build(TS_F32, &k), TS_OK);
    ts_ex_sizes sz;
    ts_ex_parse_sizes("N=777", &sz);
    ts_ex_result r;
    cr_assert_eq(ts_ex_run_case(ctx, ex, k, TS_F32, &sz, NULL, 1, 1, &r), TS_OK, "%s", r.message);
    ts_context_destroy(ctx);
    /* overwrite every cached OpenCL binary with garbage */
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "for f in '%s'/opencl-*.bin; do [ -f \"$f\" ] && head -c 100 /dev/urandom > \"$f\"; done; true", dir);
    cr_assert_eq(system(cmd), 0);
    ctx = open_or_skip();
    cr_expect_eq(ts_ex_run_case(ctx, ex, k, TS_F32, &sz, NULL, 1, 2, &r), TS_OK, "%s", r.message);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* rand/randint give the reference executor's bits under every config. */
Test(opencl, randint_bits_match_ref, .timeout = 300) {
    ts_context *ctx = open_or_skip(), *ref = NULL;
    cr_assert_eq(ts_context_create("ref", 0, &ref), TS_OK, "%s", ts_last_error());
    const int64_t M = 37, N = 300;
    int32_t *a = malloc((size_t)(M * N) * 4), *b = malloc((size_t)(M * N) * 4);
    ts_test_randint_2d(ref, TS_TEST_RANDINT_2D, NULL, M, N, 1234567, a);
    const char *cfgs[] = {NULL, "BM=1,BN=16", "BM=64,BN=1024"};
    for (int c = 0; c < 3; c++) {
        ts_test_randint_2d(ctx, TS_TEST_RANDINT_2D, cfgs[c], M, N, 1234567, b);
        cr_expect_eq(memcmp(a, b, (size_t)(M * N) * 4), 0, "config %s: randint differs from the reference", cfgs[c] ? cfgs[c] : "default");
    }
    free(a);
    free(b);
    ts_context_destroy(ref);
    ts_context_destroy(ctx);
}
