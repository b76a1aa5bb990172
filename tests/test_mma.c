/* test_mma.c: dot on tensor cores (codegen/cg_mma.c), checked without a GPU.
 *
 * emulated: every dot kernel (matmul, bmm, matmul_bias_gelu, attention) in
 *   f16 and bf16, at edge sizes (1, 7, 127, 1000) and several configs, on
 *   OpenCL with tensor_cores=1: the warp-level lowering CUDA compiles, run on
 *   the prelude's emulation of mma.m16n8k16 / ldmatrix / cp.async (its own
 *   lane table, from the PTX ISA) against the independent references. Each
 *   case first checks that the source took that path.
 *   Also at stages 1, 2, 4 (default 3: the cp.async pipeline; the source is
 *   checked for its wait_group and for C kept in fragments), a missing
 *   wait_group (fault injection) caught by the emulation, and group_m.
 * ptx: the CUDA form compiled with NVRTC for sm_80 and sm_90 has mma.sync,
 *   ldmatrix (.trans where B is k-outer), cp.async (commit_group and
 *   wait_group unless stages=1), and ptxas -v reports no spills (its
 *   registers and shared memory logged). Skips with the reason without
 *   NVRTC/ptxas or OpenCL.
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

/* OpenCL: PoCL's local memory (1 MiB), since the emulation's scratch comes
 * on top of what CUDA needs; the pipeline's stage count still follows the
 * 48 KiB CUDA has (codegen/cg_mma.c). */
static ts_status emit(const ts_kernel *k, const ts_config *cfg, const char *sizes, ts_dialect dialect, char **src) {
    ts_device_caps pocl = {.max_group_size = 1024, .shared_mem_bytes = 1 << 20};
    return ts_test_emit(k, cfg, sizes, dialect, dialect == TS_DIALECT_OPENCL ? &pocl : NULL, src);
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* The kernel after the preludes (which define the leaves by name). */
static const char *body_of(const char *src) {
    const char *b = strstr(src, "/* kernel '");
    cr_assert_not_null(b, "no kernel comment in the source");
    return b;
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
/* The default is the 3-stage cp.async pipeline; stages=1 is one k block at
 * a time; stages=2 and 4 at other block shapes (a short k block: more
 * blocks, so the ring wraps several times at K=127 and 1000). */
static const char *const mm_configs[] = {"tensor_cores=1",
                                         "tensor_cores=1,warps=1,BLOCK_M=16,BLOCK_N=16,BLOCK_K=8",
                                         "tensor_cores=1,stages=1",
                                         "tensor_cores=1,stages=2,BLOCK_K=16",
                                         "tensor_cores=1,stages=4,warps=2,BLOCK_M=32,BLOCK_N=64,BLOCK_K=16",
                                         NULL};
static const char *const mm_configs_bf16[] = {"tensor_cores=1", "tensor_cores=1,warps=1,BLOCK_M=16,BLOCK_N=16,BLOCK_K=8",
                                              "tensor_cores=1,stages=2,warps=2,BLOCK_K=16", NULL};
static const char *const configs_s4[] = {"tensor_cores=1", "tensor_cores=1,stages=4,BLOCK_K=16", NULL};
static const char *const configs_s2[] = {"tensor_cores=1", "tensor_cores=1,stages=2,BLOCK_K=16", NULL};
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
            if (strcmp(name, "attention") == 0) {
                cr_assert_eq(ndots, 2, "attention: both dots on tensor cores");
                cr_assert(strstr(src, "cp.async pipeline: not here"), "attention: no reason given for the single-stage dots");
                cr_assert(!strstr(src, "C in fragments"), "attention: its accumulator is rescaled outside the dot (no fragments)");
            } else {
                /* the pipeline where stages is not 1: wait_group stages-2 before the block is used */
                int stages = strstr(configs[ci], "stages=1") ? 1 : strstr(configs[ci], "stages=2") ? 2 : strstr(configs[ci], "stages=4") ? 4 : 3;
                char wait[64];
                snprintf(wait, sizeof wait, "TS_CP_ASYNC_WAIT_GROUP(%d);", stages - 2);
                const char *body = body_of(src);
                if (stages > 1)
                    cr_assert(strstr(body, "operands from the cp.async ring") && strstr(body, wait) && strstr(body, "TS_CP_ASYNC_COMMIT();"),
                              "%s [%s]: no %d-stage pipeline", name, configs[ci], stages);
                else
                    cr_assert(!strstr(body, "TS_CP_ASYNC_WAIT_GROUP(") && strstr(body, "TS_CP_ASYNC_WAIT();"), "%s [%s]: stages=1 pipelined", name,
                              configs[ci]);
                /* the accumulator is the loop's carried value: C in fragments across the loop */
                cr_assert(strstr(body, "C in fragments"), "%s [%s]: the accumulator is not kept in fragments", name, configs[ci]);
            }
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
EMU_TEST(matmul, BF16, matmul_sizes, mm_configs_bf16)
EMU_TEST(matmul_bias_gelu, F16, matmul_sizes, configs_s4)
EMU_TEST(matmul_bias_gelu, BF16, matmul_sizes, configs_s2)
EMU_TEST(bmm, F16, bmm_sizes, configs_s4)
EMU_TEST(bmm, BF16, bmm_sizes, configs_s2)
EMU_TEST(attention, F16, attention_sizes, att_configs)
EMU_TEST(attention, BF16, attention_sizes, att_configs)

/* The emulated cp.async copies only when a wait completes its group: with
 * the pipeline's wait_group left out (fault injection), the dot reads
 * buffers whose copies are still queued, and the check fails; the same
 * case passes with the wait. Aligned rows (K, N multiples of 8), so the
 * copies are cp.async chunks, not element copies. */
Test(mma_emulated, missing_wait_is_caught, .timeout = 1800) {
    ts_context *ctx = open_or_skip();
    const ts_example *ex = ts_example_find("matmul");
    ts_kernel *k = NULL;
    cr_assert_eq(ex->build(TS_F16, &k), TS_OK, "%s", ts_last_error());
    const char *cfgs[] = {"tensor_cores=1,stages=2,BLOCK_K=16"}; /* one compile (stages=3 failed the same way: C[0] = inf) */
    ts_ex_sizes sz;
    cr_assert_eq(ts_ex_parse_sizes("M=64,N=64,K=128", &sz), TS_OK);
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        ts_config *cfg = cfg_of(cfgs[i]);
        ts_ex_result r;
        ts__cg_fault_no_cp_wait = 1;
        char *src = NULL;
        cr_assert_eq(emit(k, cfg, "M=64,N=64,K=128", TS_DIALECT_OPENCL, &src), TS_OK, "%s", ts_last_error());
        cr_assert(!strstr(body_of(src), "TS_CP_ASYNC_WAIT_GROUP(") && strstr(src, "operands from the cp.async ring"), "[%s]: the fault did not take", cfgs[i]);
        free(src);
        ts_ex_run_case(ctx, ex, k, TS_F16, &sz, cfg, 1, 11, &r);
        ts__cg_fault_no_cp_wait = 0;
        cr_expect_neq(r.status, TS_OK, "[%s]: a missing cp.async.wait_group went unnoticed", cfgs[i]);
        cr_log_info("[%s] without the wait: %s %s", cfgs[i], ts_status_name(r.status), r.message);
        ts_config_destroy(cfg);
    }
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* group_m: the grouped program order (codegen/emit_c.c) on the CPU path
 * (f32) and on the emulated tensor-core path, at grids that leave a short
 * last group (M=1000: 16 rows of 64 blocks, groups of 3 and 5), a single
 * column (N=7) and a single program. */
Test(mma_emulated, group_m_order) {
    ts_context *ctx = open_or_skip();
    struct {
        const char *kernel;
        ts_dtype dt;
        const char *cfg;
    } cases[] = {
        {"matmul", TS_F32, "group_m=3"},
        {"matmul", TS_F32, "group_m=5,BLOCK_M=16,BLOCK_N=16"},
        {"bmm", TS_F32, "group_m=2,BLOCK_M=16,BLOCK_N=32"},
        {"matmul", TS_F16, "tensor_cores=1,group_m=3"},
    };
    const char *sizes[] = {"M=1000,N=127,K=65", "M=127,N=1000,K=7", "M=1,N=1,K=1", "M=300,N=7,K=31"};
    const char *bsizes[] = {"Z=2,M=127,N=300,K=7", "Z=1,M=1,N=1,K=1"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ts_example *ex = ts_example_find(cases[i].kernel);
        ts_kernel *k = NULL;
        cr_assert_eq(ex->build(cases[i].dt, &k), TS_OK, "%s", ts_last_error());
        ts_config *cfg = cfg_of(cases[i].cfg);
        int isb = strcmp(cases[i].kernel, "bmm") == 0;
        const char *const *sz = isb ? bsizes : sizes;
        int nsz = isb ? 2 : 4;
        for (int si = 0; si < nsz; si++) {
            char *src = NULL;
            cr_assert_eq(emit(k, cfg, sz[si], TS_DIALECT_OPENCL, &src), TS_OK, "%s", ts_last_error());
            cr_assert(strstr(src, "grouped program order"), "%s [%s]: no grouped order", cases[i].kernel, cases[i].cfg);
            free(src);
            ts_ex_sizes s;
            cr_assert_eq(ts_ex_parse_sizes(sz[si], &s), TS_OK);
            ts_ex_result r;
            ts_ex_run_case(ctx, ex, k, cases[i].dt, &s, cfg, 1, (uint64_t)(si + 3), &r);
            cr_expect_eq(r.status, TS_OK, "%s %s %s [%s]: %s %s", cases[i].kernel, ts_dtype_name(cases[i].dt), sz[si], cases[i].cfg, ts_status_name(r.status),
                         r.message);
        }
        ts_config_destroy(cfg);
        ts_kernel_destroy(k);
    }
    ts_context_destroy(ctx);
}

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
        if (strcmp(name, "attention") != 0) { /* B is k-outer ([k][n] in memory): ldmatrix .trans */
            cr_expect(strstr(ptx, "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"), "%s %s: no ldmatrix .trans for B", name, archs[a]);
            /* the cp.async pipeline (default 3 stages) unless stages=1 */
            int piped = !strstr(config, "stages=1");
            cr_expect_eq(strstr(ptx, "cp.async.commit_group") != NULL, piped, "%s %s [%s]: cp.async.commit_group", name, archs[a], config);
            cr_expect_eq(strstr(ptx, "cp.async.wait_group") != NULL, piped, "%s %s [%s]: cp.async.wait_group", name, archs[a], config);
        }
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
        const char *used = strstr(rep, "Used ");
        char usage[160] = "";
        if (used) snprintf(usage, sizeof usage, "%.*s", (int)strcspn(used, "\n"), used);
        cr_log_info("%s %s %s [%s]: %d mma, %d ldmatrix, %d cp.async; ptxas: %s", name, ts_dtype_name(dt), archs[a], config, count(ptx, "mma.sync"),
                    count(ptx, "ldmatrix"), count(ptx, "cp.async.cg"), usage);
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
PTX_TEST(matmul, F16, stages1, "stages=1")
PTX_TEST(matmul, F16, stages2, "stages=2")
PTX_TEST(matmul, F16, stages3, "stages=3")
PTX_TEST(matmul, BF16, stages3, "stages=3")
PTX_TEST(matmul, F16, stages4, "stages=4")
PTX_TEST(bmm, F16, stages4, "stages=4,BLOCK_K=64")
PTX_TEST(matmul, F16, group_m8, "group_m=8")
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
