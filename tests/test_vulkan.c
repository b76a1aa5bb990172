/* test_vulkan.c: every example kernel on the Vulkan backend (lavapipe in CI)
 * against the independent references, at sizes that are not multiples of
 * the block sizes; every generated GLSL module compiles and passes
 * spvValidate; a tensor past maxStorageBufferRange is a clear TS_ERR_LIMIT;
 * a corrupt on-disk pipeline cache is ignored. Skips with the reason when no
 * Vulkan device is available or TESSERA_TEST_BACKENDS excludes vulkan.
 *
 * lavapipe compiles each pipeline with LLVM (most of this suite's time), so
 * f32 runs the default config and the three extremes, f16/bf16 the default. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "test_util.h"
#include "ir.h"
#include "kernels.h"
#include "ts_internal.h"
#ifdef TS_HAVE_VULKAN
#include "backends/vulkan/vk_spirv.h"
#endif

static void skip_unless_selected(void) { ts_test_skip_unless_selected("vulkan"); }

static ts_context *open_or_skip(void) { return ts_test_open_or_skip("vulkan"); }

static void run_example(const char *name) {
    ts_context *ctx = open_or_skip();
    const ts_example *ex = ts_example_find(name);
    cr_assert_not_null(ex);
    for (int di = 0; di < ex->ndtypes; di++) {
        ts_dtype dt = ex->dtypes[di];
        ts_kernel *k = NULL;
        cr_assert_eq(ex->build(dt, &k), TS_OK, "%s", ts_last_error());
        cr_assert(ts_device_supports_dtype(ctx, dt), "%s: vulkan should support %s", name, ts_dtype_name(dt));
        ts_config *cfgs[4];
        int nc = ts_ex_configs(k, cfgs, di == 0 ? 4 : 1);
        for (int si = 0; si < 6 && ex->sizes[si]; si++) {
            ts_ex_sizes sz;
            cr_assert_eq(ts_ex_parse_sizes(ex->sizes[si], &sz), TS_OK);
            for (int c = 0; c < nc; c++) {
                ts_ex_result r;
                ts_ex_run_case(ctx, ex, k, dt, &sz, cfgs[c], 1, (uint64_t)(si * 13 + c + 1), &r);
                char *cs = ts_config_format(cfgs[c]);
                /* An extreme config may exceed lavapipe's limits (32 KiB of
                 * shared memory, private arrays): a clear TS_ERR_BAD_CONFIG,
                 * never a wrong result; the default config must always run. */
                if (c > 0 && r.status == TS_ERR_BAD_CONFIG) {
                    cr_expect(strstr(r.message, "memory") || strstr(r.message, "private"), "%s", r.message);
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

#define EXAMPLE_TEST(n) Test(vulkan, n, .timeout = 600) { run_example(#n); }
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

/* Both lowerings of dot (operands from global memory, or staged through
 * shared memory) give right results. */
Test(vulkan, matmul_staged_and_direct, .timeout = 600) {
    ts_context *ctx = open_or_skip();
    const ts_example *ex = ts_example_find("matmul");
    ts_kernel *k;
    cr_assert_eq(ex->build(TS_F32, &k), TS_OK);
    const char *cfgs[] = {"stage=0,micro_m=4,micro_n=4,BLOCK_M=32,BLOCK_N=64,BLOCK_K=32", "stage=1,micro_m=2,micro_n=2,BLOCK_M=32,BLOCK_N=32,BLOCK_K=8",
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

/* Every module the GLSL dialect produces for the examples (each dtype,
 * default config, first size set) compiles with shaderc and passes
 * spvValidate; no device needed. Broken GLSL and broken SPIR-V are
 * TS_ERR_COMPILE with the message. */
Test(vulkan, every_module_passes_spirv_validation, .timeout = 600) {
    skip_unless_selected();
#ifndef TS_HAVE_VULKAN
    cr_skip_test("built without the Vulkan backend (shaderc / SPIRV-Tools not found)");
#else
    int modules = 0;
    for (int e = 0; e < ts_example_count(); e++) {
        const ts_example *ex = ts_example_get(e);
        ts_ex_sizes sz;
        cr_assert_eq(ts_ex_parse_sizes(ex->sizes[0], &sz), TS_OK);
        for (int di = 0; di < ex->ndtypes; di++) {
            ts_kernel *k;
            cr_assert_eq(ex->build(ex->dtypes[di], &k), TS_OK, "%s", ts_last_error());
            int np = ts_kernel_param_count(k);
            int64_t shapes[16][TS_MAX_RANK];
            const int64_t *ptrs[16];
            for (int p = 0; p < np && p < 16; p++) {
                ts_param_info pi;
                ts_kernel_param(k, p, &pi);
                for (int d = 0; d < pi.rank; d++) shapes[p][d] = pi.size_names[d] ? ts_ex_size(&sz, pi.size_names[d]) : pi.fixed_sizes[d];
                ptrs[p] = shapes[p];
            }
            ts_config *cfg;
            cr_assert_eq(ts_config_create(&cfg), TS_OK);
            ts__plan plan;
            memset(&plan, 0, sizeof plan);
            cr_assert_eq(ts__plan_make(&k->ir, cfg, ptrs, &plan), TS_OK, "%s", ts_last_error());
            char *src = NULL;
            cr_assert_eq(ts__codegen_emit(k, &plan, TS_DIALECT_GLSL, NULL, "main", &src), TS_OK, "%s: %s", ex->name, ts_last_error());
            uint32_t *words = NULL;
            size_t nw = 0;
            ts_status s = ts__vk_glsl_to_spirv(src, ex->name, &words, &nw);
            cr_expect_eq(s, TS_OK, "%s %s: %s", ex->name, ts_dtype_name(ex->dtypes[di]), ts_last_error());
            if (!s) {
                cr_expect_eq(ts__vk_spirv_validate(words, nw), TS_OK, "%s", ts_last_error());
                modules++;
            }
            free(words);
            free(src);
            ts__plan_free(&plan);
            ts_config_destroy(cfg);
            ts_kernel_destroy(k);
        }
    }
    cr_expect_geq(modules, 18);
    /* a compile error carries the compiler's message and the source */
    uint32_t *words = NULL;
    size_t nw = 0;
    cr_expect_eq(ts__vk_glsl_to_spirv("#version 450\nlayout(local_size_x = 1) in;\nvoid main() { undeclared_x = 1; }\n", "bad", &words, &nw),
                 TS_ERR_COMPILE);
    cr_expect(strstr(ts_last_error(), "undeclared_x") != NULL, "%s", ts_last_error());
    cr_expect_null(words);
    /* a module that is not SPIR-V fails validation */
    uint32_t junk[8] = {0x07230203u, 0x00010500u, 0, 99, 0, 0xdeadbeefu, 0x12345678u, 0};
    cr_expect_eq(ts__vk_spirv_validate(junk, 8), TS_ERR_COMPILE);
    cr_expect(strstr(ts_last_error(), "spirv-val") != NULL, "%s", ts_last_error());
#endif
}

/* A tensor beyond maxStorageBufferRange (128 MiB on lavapipe) is refused
 * with TS_ERR_LIMIT and a message, never allocated short. */
Test(vulkan, tensor_past_storage_buffer_range_is_refused, .timeout = 120) {
    ts_context *ctx = open_or_skip();
    const ts_device_caps *caps = ts_context_caps(ctx);
    cr_assert_gt(caps->max_buffer_bytes, 0);
    cr_assert_leq(caps->max_buffer_bytes, 0x7fffffff);
    int64_t n = caps->max_buffer_bytes / 4 + 1;
    ts_tensor *t = NULL;
    int64_t shape[1] = {n};
    cr_expect_eq(ts_tensor_create(ctx, TS_F32, 1, shape, &t), TS_ERR_LIMIT);
    cr_expect_null(t);
    cr_expect(strstr(ts_last_error(), "exceeds") != NULL, "%s", ts_last_error());
    /* a small tensor is still fine */
    int64_t ok_shape[1] = {1024};
    cr_expect_eq(ts_tensor_create(ctx, TS_F32, 1, ok_shape, &t), TS_OK, "%s", ts_last_error());
    ts_tensor_destroy(t);
    ts_context_destroy(ctx);
}

/* A corrupt or truncated on-disk pipeline cache is ignored (an empty cache),
 * never passed to the driver, and kernels still give right results. */
Test(vulkan, corrupt_pipeline_cache_is_ignored, .timeout = 300) {
    ts_context *ctx = open_or_skip();
    const char *base = getenv("TESSERA_CACHE_DIR");
    cr_assert_not_null(base);
    const ts_example *ex = ts_example_find("exp");
    ts_kernel *k;
    cr_assert_eq(ex->build(TS_F32, &k), TS_OK);
    ts_ex_sizes sz;
    ts_ex_parse_sizes("N=777", &sz);
    ts_ex_result r;
    cr_assert_eq(ts_ex_run_case(ctx, ex, k, TS_F32, &sz, NULL, 1, 1, &r), TS_OK, "%s", r.message);
    ts_context_destroy(ctx); /* writes the pipeline cache */
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "ls '%s'/bin/vulkan-pipelines-*.bin >/dev/null 2>&1", base);
    cr_expect_eq(system(cmd), 0, "no pipeline cache file was written under %s/bin", base);
    const char *damage[] = {
        "head -c 100 /dev/urandom > \"$f\"",                                  /* garbage */
        ": > \"$f\"",                                                       /* empty */
        "head -c 40 \"$f\" > \"$f.t\" && mv \"$f.t\" \"$f\"",                /* truncated */
        "printf 'XXXX' | dd of=\"$f\" bs=1 seek=60 conv=notrunc 2>/dev/null", /* payload bytes changed: checksum */
    };
    for (size_t i = 0; i < sizeof damage / sizeof damage[0]; i++) {
        snprintf(cmd, sizeof cmd, "for f in '%s'/bin/vulkan-pipelines-*.bin; do [ -f \"$f\" ] && %s; done; true", base, damage[i]);
        cr_assert_eq(system(cmd), 0);
        ctx = open_or_skip();
        cr_expect_eq(ts_ex_run_case(ctx, ex, k, TS_F32, &sz, NULL, 1, (uint64_t)(2 + i), &r), TS_OK, "damage %zu: %s", i, r.message);
        ts_context_destroy(ctx);
    }
    ts_kernel_destroy(k);
}

/* rand/randint give the reference executor's bits under every config. */
Test(vulkan, randint_bits_match_ref, .timeout = 300) {
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
