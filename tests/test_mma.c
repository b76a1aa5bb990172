/* test_mma.c: dot on tensor cores (codegen/cg_mma.c), checked without a GPU.
 *
 * emulated: every dot kernel (matmul, bmm, matmul_bias_gelu, attention) in
 *   f16 and bf16, at edge sizes (1, 7, 127, 1000) and several configs, on
 *   OpenCL with tensor_cores=1: the warp-level lowering CUDA compiles, run on
 *   the prelude's emulation of mma.m16n8k16 / ldmatrix / cp.async (its own
 *   lane table, from the PTX ISA) against the independent references. Each
 *   case first checks that the source took that path.
 * ptx: the CUDA form compiled with NVRTC for sm_80 and sm_90 has mma.sync,
 *   ldmatrix (.trans where B is k-outer) and cp.async, and ptxas -v reports
 *   no spills. Skips with the reason without NVRTC/ptxas or OpenCL.
 * defaults: the path is the default for f16/bf16 dots on CUDA only;
 *   tensor_cores=0 turns it off; f32 dots never take it (no tf32 unasked);
 *   targets without it say so in the source. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen.h"
#include "gpu_common.h"
#include "kernels.h"
#include "test_util.h"

/* ---------------------------------------------------------------- helpers */

static ts_status emit(const ts_kernel *k, const ts_config *cfg, const char *sizes, ts_dialect dialect, char **src) {
    return ts_test_emit(k, cfg, sizes, dialect, NULL, src);
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static ts_config *cfg_of(const char *text) {
    ts_config *c = NULL;
    cr_assert_eq(ts_config_parse(text, &c), TS_OK, "%s", ts_last_error());
    return c;
}

/* Sizes per kernel: 1, 7, 127, 1000 on every dim in some case. */
static const char *const matmul_sizes[] = {"M=1,N=1,K=1", "M=7,N=7,K=7", "M=127,N=127,K=127", "M=1000,N=7,K=127", "M=7,N=1000,K=1000", NULL};
static const char *const bmm_sizes[] = {"Z=1,M=1,N=1,K=1", "Z=2,M=7,N=127,K=7", "Z=2,M=127,N=7,K=1000", NULL};
/* D fixes attention's whole-tile block (16 here): one compile per config
 * (PoCL takes minutes over the emulation's barriers) */
static const char *const attention_sizes[] = {"H=1,S=1,T=1,D=13", "H=3,S=7,T=7,D=13", "H=1,S=127,T=1000,D=13", NULL};
/* Configs: the default blocks (4 warps on matmul), one warp over the
 * smallest blocks (padding to 16 everywhere). Each costs a PoCL compile. */
static const char *const mm_configs[] = {"tensor_cores=1", "tensor_cores=1,warps=1,BLOCK_M=16,BLOCK_N=16,BLOCK_K=8", NULL};
static const char *const one_config[] = {"tensor_cores=1", NULL};
static const char *const att_configs[] = {"tensor_cores=1", NULL};

/* ---------------------------------------------------------------- emulated on OpenCL */

static ts_context *open_or_skip(void) {
    const char *only = getenv("TESSERA_TEST_BACKENDS");
    if (only && !strstr(only, "opencl")) cr_skip_test("TESSERA_TEST_BACKENDS=%s excludes opencl", only);
    const char *why = NULL;
    if (!ts_backend_available("opencl", &why)) cr_skip_test("opencl backend not available: %s", why ? why : "?");
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create("opencl", 0, &ctx), TS_OK, "%s", ts_last_error());
    return ctx;
}

static void run_emulated(const char *name, ts_dtype dt, const char *const *sizes, const char *const *configs) {
    ts_context *ctx = open_or_skip();
    const ts_example *ex = ts_example_find(name);
    cr_assert_not_null(ex);
    ts_kernel *k = NULL;
    cr_assert_eq(ex->build(dt, &k), TS_OK, "%s", ts_last_error());
    int ran = 0;
    for (int ci = 0; configs[ci]; ci++) {
        ts_config *cfg = cfg_of(configs[ci]);
        for (int si = 0; sizes[si]; si++) {
            char *src = NULL;
            cr_assert_eq(emit(k, cfg, sizes[si], TS_DIALECT_OPENCL, &src), TS_OK, "%s [%s]: %s", name, configs[ci], ts_last_error());
            int ndots = count(src, "dot on tensor cores");
            cr_assert(ndots >= 1 && strstr(src, "ts_emu_mma_16816(") && strstr(src, "TS_LDMATRIX_X4"),
                      "%s %s [%s]: the dot did not take the tensor-core path", name, ts_dtype_name(dt), configs[ci]);
            if (strcmp(name, "attention") == 0) cr_assert_eq(ndots, 2, "attention: both dots on tensor cores");
            free(src);
            ts_ex_sizes sz;
            cr_assert_eq(ts_ex_parse_sizes(sizes[si], &sz), TS_OK);
            ts_ex_result r;
            ts_ex_run_case(ctx, ex, k, dt, &sz, cfg, 1, (uint64_t)(si * 7 + ci + 1), &r);
            cr_expect_eq(r.status, TS_OK, "%s %s %s [%s]: %s %s", name, ts_dtype_name(dt), sizes[si], configs[ci], ts_status_name(r.status), r.message);
            ran++;
        }
        ts_config_destroy(cfg);
    }
    cr_assert_gt(ran, 0);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

#define EMU_TEST(kname, dt, sizes, configs) \
    Test(mma_emulated, kname##_##dt, .timeout = 1800) { run_emulated(#kname, TS_##dt, sizes, configs); }
EMU_TEST(matmul, F16, matmul_sizes, mm_configs)
EMU_TEST(matmul, BF16, matmul_sizes, mm_configs)
EMU_TEST(matmul_bias_gelu, F16, matmul_sizes, one_config)
EMU_TEST(matmul_bias_gelu, BF16, matmul_sizes, one_config)
EMU_TEST(bmm, F16, bmm_sizes, one_config)
EMU_TEST(bmm, BF16, bmm_sizes, one_config)
EMU_TEST(attention, F16, attention_sizes, att_configs)
EMU_TEST(attention, BF16, attention_sizes, att_configs)

/* ---------------------------------------------------------------- PTX (NVRTC + ptxas) */

static const char *ptxas_path(void) { return ts_test_cuda_tool("ptxas"); }

/* ptxas -v on the PTX; its report goes to out. */
static int run_ptxas_v(const char *ptxas, const char *ptx, const char *arch, char *out, size_t outn) {
    char path[] = "/tmp/ts-mma-ptx-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return snprintf(out, outn, "mkstemp failed"), -1;
    size_t n = strlen(ptx);
    int ok = write(fd, ptx, n) == (ssize_t)n;
    close(fd);
    if (!ok) {
        unlink(path);
        return snprintf(out, outn, "write failed"), -1;
    }
    char cmd[8800];
    snprintf(cmd, sizeof cmd, "'%s' -v -arch=%s '%s' -o /dev/null 2>&1", ptxas, arch, path);
    FILE *p = popen(cmd, "r");
    out[0] = 0;
    if (p) {
        size_t k = fread(out, 1, outn - 1, p);
        out[k] = 0;
    }
    int rc = p ? pclose(p) : -1;
    unlink(path);
    return rc;
}

static void check_ptx(const char *name, ts_dtype dt, const char *config) {
    char why[1024];
    const char *only = getenv("TESSERA_TEST_BACKENDS");
    if (only && !strstr(only, "cuda")) cr_skip_test("TESSERA_TEST_BACKENDS=%s excludes cuda", only);
    if (!ts__nvrtc_version(why, sizeof why)) cr_skip_test("%s", why);
    const char *ptxas = ptxas_path();
    if (!ptxas) cr_skip_test("ptxas not found (set CUDA_HOME or install the CUDA toolkit in /usr/local/cuda)");
    const ts_example *ex = ts_example_find(name);
    cr_assert_not_null(ex);
    ts_kernel *k = NULL;
    cr_assert_eq(ex->build(dt, &k), TS_OK, "%s", ts_last_error());
    ts_config *cfg = cfg_of(config);
    char *src = NULL;
    cr_assert_eq(emit(k, cfg, ex->sizes[0], TS_DIALECT_CUDA, &src), TS_OK, "%s [%s]: %s", name, config, ts_last_error());
    cr_assert(strstr(src, "dot on tensor cores"), "%s: no tensor-core dot in the CUDA source", name);
    const char *archs[] = {"sm_80", "sm_90"};
    char mma[128];
    snprintf(mma, sizeof mma, "mma.sync.aligned.m16n8k16.row.col.f32.%s.%s.f32", dt == TS_BF16 ? "bf16" : "f16", dt == TS_BF16 ? "bf16" : "f16");
    for (int a = 0; a < 2; a++) {
        char *ptx = NULL, *log = NULL;
        ts_status s = ts__cuda_compile_for_arch(src, archs[a], &ptx, &log);
        cr_assert_eq(s, TS_OK, "%s %s: %s", name, archs[a], ts_last_error());
        cr_expect(strstr(ptx, mma), "%s %s: no %s in the PTX", name, archs[a], mma);
        cr_expect(strstr(ptx, "ldmatrix.sync.aligned.m8n8.x4.shared.b16") || strstr(ptx, "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"),
                  "%s %s: no ldmatrix in the PTX", name, archs[a]);
        cr_expect(strstr(ptx, "cp.async.cg.shared.global"), "%s %s: no cp.async in the PTX", name, archs[a]);
        if (strcmp(name, "attention") != 0) /* B is k-outer ([k][n] in memory): ldmatrix .trans */
            cr_expect(strstr(ptx, "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"), "%s %s: no ldmatrix .trans for B", name, archs[a]);
        char rep[16384];
        int rc = run_ptxas_v(ptxas, ptx, archs[a], rep, sizeof rep);
        cr_assert_eq(rc, 0, "%s: ptxas -arch=%s failed: %s", name, archs[a], rep);
        cr_expect(strstr(rep, "bytes spill stores"), "%s %s: no spill report from ptxas -v: %s", name, archs[a], rep);
        /* every function reports no spills */
        for (const char *p = strstr(rep, "bytes spill stores"); p; p = strstr(p + 1, "bytes spill stores")) {
            const char *q = p;
            while (q > rep && q[-1] == ' ') q--;
            cr_expect(q > rep && q[-1] == '0' && (q - 1 == rep || q[-2] == ' '), "%s %s [%s]: ptxas reports spills: %s", name, archs[a], config, rep);
        }
        cr_log_info("%s %s %s [%s]: %d mma, %d ldmatrix, %d cp.async", name, ts_dtype_name(dt), archs[a], config, count(ptx, "mma.sync"), count(ptx, "ldmatrix"),
                    count(ptx, "cp.async.cg"));
        free(ptx);
        free(log);
    }
    free(src);
    ts_config_destroy(cfg);
    ts_kernel_destroy(k);
}

/* An empty config: the path is the default on CUDA for f16/bf16 dots. */
#define PTX_TEST(kname, dt, tag, config) \
    Test(mma_ptx, kname##_##dt##_##tag, .timeout = 600) { check_ptx(#kname, TS_##dt, config); }
PTX_TEST(matmul, F16, default, "")
PTX_TEST(matmul, BF16, default, "")
PTX_TEST(matmul, F16, warps8, "warps=8,BLOCK_M=64,BLOCK_N=128,BLOCK_K=32")
PTX_TEST(matmul_bias_gelu, F16, default, "")
PTX_TEST(bmm, BF16, default, "")
PTX_TEST(attention, F16, warps4, "warps=4")
PTX_TEST(attention, BF16, warps4, "warps=4")

/* ---------------------------------------------------------------- defaults and other targets */

Test(mma_defaults, where_the_path_applies) {
    ts_kernel *k16 = NULL, *k32 = NULL;
    const ts_example *ex = ts_example_find("matmul");
    cr_assert_eq(ex->build(TS_F16, &k16), TS_OK);
    cr_assert_eq(ex->build(TS_F32, &k32), TS_OK);
    struct {
        ts_kernel *k;
        ts_dialect d;
        const char *cfg;
        int mma;
    } cases[] = {
        {k16, TS_DIALECT_CUDA, "", 1},                 /* default on CUDA */
        {k16, TS_DIALECT_CUDA, "tensor_cores=0", 0},   /* turned off */
        {k32, TS_DIALECT_CUDA, "tensor_cores=1", 0},   /* f32: tf32 only when asked (not lowered) */
        {k16, TS_DIALECT_OPENCL, "", 0},               /* OpenCL: only the emulation, when asked */
        {k16, TS_DIALECT_OPENCL, "tensor_cores=1", 1},
        {k16, TS_DIALECT_CUDA, "BLOCK_M=16,BLOCK_N=16", 0}, /* 8 threads: no whole warp */
        {k16, TS_DIALECT_CUDA, "BLOCK_M=16,BLOCK_N=16,warps=1", 1},
        {k16, TS_DIALECT_HIP, "tensor_cores=1", 0},
        {k16, TS_DIALECT_GLSL, "tensor_cores=1", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ts_config *cfg = cfg_of(cases[i].cfg);
        char *src = NULL;
        ts_status s = emit(cases[i].k, cfg, "M=127,N=65,K=200", cases[i].d, &src);
        if (s == TS_ERR_UNSUPPORTED) { /* a dialect this build lacks */
            ts_config_destroy(cfg);
            continue;
        }
        cr_assert_eq(s, TS_OK, "case %zu: %s", i, ts_last_error());
        cr_expect_eq(strstr(src, "dot on tensor cores") != NULL, cases[i].mma, "case %zu [%s]", i, cases[i].cfg);
        free(src);
        ts_config_destroy(cfg);
    }
    ts_kernel_destroy(k16);
    ts_kernel_destroy(k32);
}

/* Where tensor_cores=1 is asked for and the target has no lowering, the
 * source says why (GLSL: GL_KHR_cooperative_matrix is not lowered) and the
 * ordinary dot runs. HIP has the MFMA path (tests/test_mfma.c). */
Test(mma_defaults, unsupported_targets_say_why) {
    ts_kernel *k = NULL;
    cr_assert_eq(ts_example_find("matmul")->build(TS_F16, &k), TS_OK);
    ts_config *cfg = cfg_of("tensor_cores=1");
    ts_dialect ds[] = {TS_DIALECT_GLSL};
    const char *why[] = {"GL_KHR_cooperative_matrix"};
    for (int i = 0; i < 1; i++) {
        char *src = NULL;
        ts_status s = emit(k, cfg, "M=127,N=65,K=200", ds[i], &src);
        if (s == TS_ERR_UNSUPPORTED) continue;
        cr_assert_eq(s, TS_OK, "%s", ts_last_error());
        cr_expect(strstr(src, "tensor_cores=1 not supported") && strstr(src, why[i]), "dialect %d: no reason in the source", (int)ds[i]);
        free(src);
    }
    ts_config_destroy(cfg);
    ts_kernel_destroy(k);
}
