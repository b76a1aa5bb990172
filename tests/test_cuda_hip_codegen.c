/* test_cuda_hip_codegen.c: the CUDA and HIP dialects of the shared emitter,
 * checked without a GPU. For every example kernel, in every dtype it
 * supports, under the default config and extreme configs: the CUDA source
 * compiles with NVRTC for sm_80 and sm_90 and the PTX assembles with ptxas;
 * the HIP source compiles with hiprtc for gfx90a (every config) and gfx1030
 * (the default config). Skips with the
 * reason when NVRTC, ptxas or hiprtc is missing. Also: the backends report
 * "not available" cleanly on a machine without their driver. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen.h"
#include "gpu_common.h"
#include "kernels.h"
#include "test_util.h"

/* The sanitizer run sets TESSERA_TEST_BACKENDS=ref: NVRTC and hiprtc are
 * third-party compilers that are neither built with ASan nor leak-free. */
static void skip_unless_selected(const char *name) { ts_test_skip_unless_selected(name); }

/* ---------------------------------------------------------------- helpers */

static const char *ptxas_path(void) { return ts_test_cuda_tool("ptxas"); }

/* Assembles PTX for a real arch with ptxas; returns 0 on success, else
 * writes its output to err. */
static int run_ptxas(const char *ptxas, const char *ptx, const char *arch, char *err, size_t errn) {
    char path[] = "/tmp/ts-ptx-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return snprintf(err, errn, "mkstemp failed"), -1;
    size_t n = strlen(ptx);
    int ok = write(fd, ptx, n) == (ssize_t)n;
    close(fd);
    if (!ok) {
        unlink(path);
        return snprintf(err, errn, "write failed"), -1;
    }
    char cmd[8800];
    snprintf(cmd, sizeof cmd, "'%s' -arch=%s '%s' -o /dev/null 2>&1", ptxas, arch, path);
    FILE *p = popen(cmd, "r");
    size_t k = 0;
    err[0] = 0;
    if (p) {
        k = fread(err, 1, errn - 1, p);
        err[k] = 0;
    }
    int rc = p ? pclose(p) : -1;
    unlink(path);
    return rc;
}

/* Generates the source of k for a dialect under cfg and the size set. */
static ts_status emit(const ts_kernel *k, const ts_config *cfg, const char *sizes, ts_dialect dialect, const ts_device_caps *caps, char **src) {
    return ts_test_emit(k, cfg, sizes, dialect, caps, src);
}

/* The configs checked: the defaults, the tunables' extremes, and the
 * staged (GPU-style) dot with more threads. */
static int configs(const ts_kernel *k, ts_config **out) {
    int n = ts_ex_configs(k, out, 3);
    if (ts_config_parse("stage=1,threads=256", &out[n]) == TS_OK) n++;
    return n;
}

typedef struct counts {
    int compiled, refused;
} counts;

/* ---------------------------------------------------------------- CUDA */

static void check_cuda(const char *name) {
    char why[1024];
    skip_unless_selected("cuda");
    if (!ts__nvrtc_version(why, sizeof why)) cr_skip_test("%s", why);
    const char *ptxas = ptxas_path();
    if (!ptxas) cr_skip_test("ptxas not found (set CUDA_HOME or install the CUDA toolkit in /usr/local/cuda)");
    const ts_example *ex = ts_example_find(name);
    cr_assert_not_null(ex);
    ts_device_caps caps = {.max_group_size = 1024, .shared_mem_bytes = 48 * 1024};
    const char *archs[] = {"sm_80", "sm_90"};
    counts c = {0, 0};
    for (int di = 0; di < ex->ndtypes; di++) {
        ts_dtype dt = ex->dtypes[di];
        ts_kernel *k = NULL;
        cr_assert_eq(ex->build(dt, &k), TS_OK, "%s", ts_last_error());
        ts_config *cfgs[4];
        int nc = configs(k, cfgs);
        for (int ci = 0; ci < nc; ci++) {
            char *src = NULL;
            ts_status s = emit(k, cfgs[ci], ex->sizes[0], TS_DIALECT_CUDA, &caps, &src);
            char *cs = ts_config_format(cfgs[ci]);
            if (ci > 0 && s == TS_ERR_BAD_CONFIG) { /* past a limit: refused with a reason, never wrong code */
                c.refused++;
                free(cs);
                continue;
            }
            cr_assert_eq(s, TS_OK, "%s %s [%s]: %s", name, ts_dtype_name(dt), cs, ts_last_error());
            for (int a = 0; a < 2; a++) {
                char *ptx = NULL, *log = NULL;
                s = ts__cuda_compile_for_arch(src, archs[a], &ptx, &log);
                cr_assert_eq(s, TS_OK, "%s %s [%s] %s: %s", name, ts_dtype_name(dt), cs, archs[a], ts_last_error());
                cr_assert(ptx && strstr(ptx, ".entry"), "no .entry in the PTX");
                char err[4096];
                int rc = run_ptxas(ptxas, ptx, archs[a], err, sizeof err);
                cr_assert_eq(rc, 0, "%s %s [%s]: ptxas -arch=%s failed: %s", name, ts_dtype_name(dt), cs, archs[a], err);
                free(ptx);
                free(log);
                c.compiled++;
            }
            free(cs);
            free(src);
        }
        for (int ci = 0; ci < nc; ci++) ts_config_destroy(cfgs[ci]);
        ts_kernel_destroy(k);
    }
    cr_assert_gt(c.compiled, 0);
    cr_log_info("cuda %s: %d compiled+assembled, %d configs refused as over the limits", name, c.compiled, c.refused);
}

/* ---------------------------------------------------------------- HIP */

static void check_hip(const char *name) {
    char why[1024];
    skip_unless_selected("hip");
    if (!ts__hiprtc_available(why, sizeof why)) cr_skip_test("%s", why);
    const ts_example *ex = ts_example_find(name);
    cr_assert_not_null(ex);
    ts_device_caps caps = {.max_group_size = 1024, .shared_mem_bytes = 64 * 1024};
    const char *archs[] = {"gfx90a", "gfx1030"};
    counts c = {0, 0};
    for (int di = 0; di < ex->ndtypes; di++) {
        ts_dtype dt = ex->dtypes[di];
        ts_kernel *k = NULL;
        cr_assert_eq(ex->build(dt, &k), TS_OK, "%s", ts_last_error());
        ts_config *cfgs[4];
        int nc = configs(k, cfgs);
        for (int ci = 0; ci < nc; ci++) {
            char *src = NULL;
            ts_status s = emit(k, cfgs[ci], ex->sizes[0], TS_DIALECT_HIP, &caps, &src);
            char *cs = ts_config_format(cfgs[ci]);
            if (ci > 0 && s == TS_ERR_BAD_CONFIG) {
                c.refused++;
                free(cs);
                continue;
            }
            cr_assert_eq(s, TS_OK, "%s %s [%s]: %s", name, ts_dtype_name(dt), cs, ts_last_error());
            cr_assert_null(strstr(src, "#include"), "hiprtc sources must not include headers");
            for (int a = 0; a < 2; a++) {
                if (a == 1 && ci != 0) continue; /* gfx1030 (RDNA2, wave32): the default config; keeps the test short */
                char *code = NULL, *log = NULL;
                size_t n = 0;
                s = ts__hip_compile_for_arch(src, archs[a], &code, &n, &log);
                cr_assert_eq(s, TS_OK, "%s %s [%s] %s: %s", name, ts_dtype_name(dt), cs, archs[a], ts_last_error());
                cr_assert_gt(n, 64, "empty code object");
                free(code);
                free(log);
                c.compiled++;
            }
            free(cs);
            free(src);
        }
        for (int ci = 0; ci < nc; ci++) ts_config_destroy(cfgs[ci]);
        ts_kernel_destroy(k);
    }
    cr_assert_gt(c.compiled, 0);
    cr_log_info("hip %s: %d compiled, %d configs refused as over the limits", name, c.compiled, c.refused);
}

#define EXAMPLE_TESTS(n)                                                                                                                   \
    Test(cuda_codegen, n, .timeout = 600) { check_cuda(#n); }                                                                              \
    Test(hip_codegen, n, .timeout = 600) { check_hip(#n); }
EXAMPLE_TESTS(add)
EXAMPLE_TESTS(exp)
EXAMPLE_TESTS(gelu)
EXAMPLE_TESTS(silu)
EXAMPLE_TESTS(swiglu)
EXAMPLE_TESTS(sum)
EXAMPLE_TESTS(long_sum)
EXAMPLE_TESTS(softmax)
EXAMPLE_TESTS(softmax_online)
EXAMPLE_TESTS(layer_norm)
EXAMPLE_TESTS(rms_norm)
EXAMPLE_TESTS(matmul)
EXAMPLE_TESTS(matmul_bias_gelu)
EXAMPLE_TESTS(bmm)
EXAMPLE_TESTS(attention)
EXAMPLE_TESTS(cross_entropy)
EXAMPLE_TESTS(embedding)
EXAMPLE_TESTS(transpose)
EXAMPLE_TESTS(rope)
EXAMPLE_TESTS(concatenate)
EXAMPLE_TESTS(jagged_sum)
EXAMPLE_TESTS(segment_sum)
EXAMPLE_TESTS(gather_gemv)
EXAMPLE_TESTS(attention_causal)
EXAMPLE_TESTS(matmul_split_k)
EXAMPLE_TESTS(grouped_matmul)
EXAMPLE_TESTS(layer_norm_bwd)
EXAMPLE_TESTS(dropout)
EXAMPLE_TESTS(int8_gemm)
EXAMPLE_TESTS(fp8_gemm)

/* Every example kernel has a test above. */
Test(cuda_codegen, every_example_is_covered) {
    const char *covered = " add exp gelu silu swiglu sum long_sum softmax softmax_online layer_norm rms_norm matmul matmul_bias_gelu bmm attention "
                          "cross_entropy embedding transpose "
                          "rope concatenate jagged_sum segment_sum gather_gemv attention_causal matmul_split_k grouped_matmul layer_norm_bwd dropout int8_gemm fp8_gemm ";
    for (int i = 0; i < ts_example_count(); i++) {
        char pat[80];
        snprintf(pat, sizeof pat, " %s ", ts_example_get(i)->name);
        cr_expect_not_null(strstr(covered, pat), "example '%s' has no CUDA/HIP codegen test", ts_example_get(i)->name);
    }
}

/* ---------------------------------------------------------------- errors and availability */

Test(cuda_codegen, build_errors_come_back_with_the_log) {
    char why[1024];
    skip_unless_selected("cuda");
    if (!ts__nvrtc_version(why, sizeof why)) cr_skip_test("%s", why);
    char *ptx = NULL, *log = NULL;
    ts_status s = ts__cuda_compile_for_arch("extern \"C\" __global__ void f() { this is not C++; }", "sm_80", &ptx, &log);
    cr_assert_eq(s, TS_ERR_COMPILE);
    cr_assert_null(ptx);
    cr_assert(log && *log, "no NVRTC log");
    cr_assert_not_null(strstr(ts_last_error(), "this is not C++"), "the source is not in the message: %s", ts_last_error());
    free(log);
    cr_assert_eq(ts__cuda_compile_for_arch(NULL, "sm_80", &ptx, NULL), TS_ERR_INVALID_ARGUMENT);
}

Test(hip_codegen, build_errors_come_back_with_the_log) {
    char why[1024];
    skip_unless_selected("hip");
    if (!ts__hiprtc_available(why, sizeof why)) cr_skip_test("%s", why);
    char *code = NULL, *log = NULL;
    size_t n = 0;
    ts_status s = ts__hip_compile_for_arch("extern \"C\" __global__ void f() { this is not C++; }", "gfx90a", &code, &n, &log);
    cr_assert_eq(s, TS_ERR_COMPILE);
    cr_assert_null(code);
    cr_assert(log && *log, "no hiprtc log");
    free(log);
    cr_assert_eq(ts__hip_compile_for_arch("x", "sm_80", &code, &n, NULL), TS_ERR_INVALID_ARGUMENT);
}

/* Without the driver the backend is listed, says why, and a context fails
 * cleanly; with a device the context opens and reports an sm_ arch. */
static void availability(const char *name, const char *arch_prefix) {
    const char *why = NULL;
    ts_context *ctx = (ts_context *)(uintptr_t)1;
    if (!ts_backend_available(name, &why)) {
        cr_assert(why && strstr(why, name), "no reason given: %s", why ? why : "(null)");
        cr_assert_eq(ts_context_create(name, 0, &ctx), TS_ERR_UNAVAILABLE);
        cr_assert_null(ctx);
        cr_assert_neq(ts_last_error()[0], 0);
        return;
    }
    cr_assert_eq(ts_context_create(name, 0, &ctx), TS_OK, "%s", ts_last_error());
    uint64_t h = 0;
    const char *fp = ts_context_fingerprint(ctx, &h);
    cr_assert(fp && strstr(fp, arch_prefix), "fingerprint %s has no %s arch", fp ? fp : "(null)", arch_prefix);
    ts_context_destroy(ctx);
}

Test(cuda_codegen, backend_reports_availability) {
    int found = 0;
    for (int i = 0; i < ts_backend_count(); i++) found |= strcmp(ts_backend_name(i), "cuda") == 0;
    cr_assert(found, "the cuda backend is not registered");
    availability("cuda", "sm_");
}

Test(hip_codegen, backend_reports_availability) {
    int found = 0;
    for (int i = 0; i < ts_backend_count(); i++) found |= strcmp(ts_backend_name(i), "hip") == 0;
    cr_assert(found, "the hip backend is not registered");
    availability("hip", "gfx");
}

/* ---------------------------------------------------------------- accurate math */

/* y = exp(x) + log(x) + tanh(x) + erf(x) + sigmoid(x) + silu(x) + gelu(x) +
 * sqrt(x) + rsqrt(x) + sin(x) + cos(x) + pow(x, x) + x / (x + 1) */
static ts_kernel *all_math_kernel(void) {
    ts_builder *b = NULL;
    cr_assert_eq(ts_builder_create("all_math", &b), TS_OK);
    ts_size N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", TS_F32, 1, &N);
    ts_param y = ts_param_tensor(b, "y", TS_F32, 1, &N);
    ts_tunable(b, "BLOCK", 16, 4096, 256);
    ts_tile tn = ts_grid_tile(b, "tn", N, "BLOCK");
    ts_val v = ts_load(b, x, &TS_AT(tn), 1.0);
    const ts_unary_op ops[] = {TS_EXP, TS_LOG, TS_TANH, TS_ERF, TS_SIGMOID, TS_SILU, TS_GELU, TS_SQRT, TS_RSQRT, TS_SIN, TS_COS};
    ts_val r = ts_binary(b, TS_POW, v, v);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) r = ts_binary(b, TS_ADD, r, ts_unary(b, ops[i], v));
    r = ts_binary(b, TS_ADD, r, ts_binary(b, TS_DIV, v, ts_binary(b, TS_ADD, v, ts_full(b, TS_F32, 1, &tn, 1.0))));
    ts_store(b, y, &TS_AT(tn), r);
    ts_kernel *k = NULL;
    cr_assert_eq(ts_builder_finish(b, &k), TS_OK, "%s", ts_last_error());
    ts_builder_destroy(b);
    return k;
}

/* The CUDA and HIP dialects call the accurate f32 functions (expf-class
 * overloads: exp, log, tanh, erf, ...), never the fast-math intrinsics
 * (__expf, __logf, __fdividef, ...), and the backends do not pass
 * -use_fast_math (checked on the PTX: fast math flushes subnormals in every
 * f32 add/mul/fma (.ftz), uses sin/cos/lg2/sqrt.approx and divides with
 * div.approx / div.full). No GPU needed; the PTX check skips without NVRTC;
 * hiprtc's code objects are not disassembled (the source check and the
 * backend's options, "-O3" and the arch, are what say it there). */
static void check_accurate_math(ts_dialect dialect) {
    ts_kernel *k = all_math_kernel();
    ts_device_caps caps = {.max_group_size = 1024, .shared_mem_bytes = 48 * 1024};
    char *src = NULL;
    cr_assert_eq(emit(k, NULL, "N=1000", dialect, &caps, &src), TS_OK, "%s", ts_last_error());
    const char *fast[] = {"__expf", "__exp10f", "__logf", "__log2f", "__log10f", "__powf", "__tanhf", "__sinf", "__cosf",
                          "__tanf", "__fdividef", "__fdiv_r", "__frcp_r", "__fsqrt_r", "__frsqrt_rn", "__fmul_", "__fadd_",
                          "native_", "half_", "use_fast_math"};
    for (size_t i = 0; i < sizeof fast / sizeof fast[0]; i++)
        cr_expect_null(strstr(src, fast[i]), "%s source calls %s:\n%s", dialect == TS_DIALECT_CUDA ? "CUDA" : "HIP", fast[i], src);
    const char *accurate[] = {"exp(", "log(", "tanh(", "erf(", "sqrt(", "rsqrt(", "sin(", "cos(", "pow("};
    for (size_t i = 0; i < sizeof accurate / sizeof accurate[0]; i++) cr_expect_not_null(strstr(src, accurate[i]), "no %s in:\n%s", accurate[i], src);
    if (dialect == TS_DIALECT_CUDA) {
        char why[1024];
        if (!ts__nvrtc_version(why, sizeof why)) {
            free(src);
            ts_kernel_destroy(k);
            cr_skip_test("source checked; PTX not: %s", why);
        }
        char *ptx = NULL, *log = NULL;
        cr_assert_eq(ts__cuda_compile_for_arch(src, "sm_80", &ptx, &log), TS_OK, "%s", ts_last_error());
        /* CUDA's accurate expf, tanhf and erff themselves use ex2.approx.ftz and
         * rcp.approx.ftz on reduced arguments; fast math shows in the plain
         * arithmetic (-ftz=true), the approximate sin/cos/lg2 and sqrt, and
         * the divisions (-prec-div=false) */
        const char *fast_ptx[] = {"add.ftz", "sub.ftz", "mul.ftz", "fma.rn.ftz", "sin.approx", "cos.approx", "lg2.approx",
                                  "\tsqrt.approx" /* not rsqrt.approx: rsqrtf is 2 ulp either way */, "div.approx", "div.full"};
        for (size_t i = 0; i < sizeof fast_ptx / sizeof fast_ptx[0]; i++)
            cr_expect_null(strstr(ptx, fast_ptx[i]), "%s in the PTX (fast math?)", fast_ptx[i]);
        cr_expect_not_null(strstr(ptx, "sqrt.rn.f32"), "no IEEE sqrt in the PTX");
        cr_expect_not_null(strstr(ptx, "div.rn.f32"), "no IEEE division in the PTX");
        free(ptx);
        free(log);
    }
    free(src);
    ts_kernel_destroy(k);
}

Test(cuda_codegen, math_is_accurate, .timeout = 300) {
    skip_unless_selected("cuda");
    check_accurate_math(TS_DIALECT_CUDA);
}
Test(hip_codegen, math_is_accurate, .timeout = 300) {
    skip_unless_selected("hip");
    check_accurate_math(TS_DIALECT_HIP);
}
