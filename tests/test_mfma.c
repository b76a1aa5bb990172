/* test_mfma.c: dot on AMD matrix cores (codegen/cg_mfma.c), checked without a GPU.
 *
 * emulated: every dot kernel (matmul, bmm, matmul_bias_gelu, attention) in
 *   f16 and bf16, at edge sizes (1, 7, 127, 1000) and several configs, on
 *   OpenCL with tensor_cores=2: the wavefront-level lowering HIP compiles,
 *   run on the prelude's emulation of v_mfma_f32_16x16x16{f16,bf16_1k} (64
 *   work-items a wavefront, its own lane table, from AMD's operand layout)
 *   against the independent references. Each case first checks that the
 *   source took that path.
 * gfx: the HIP form of every dot kernel, f16 and bf16, at the config a GPU
 *   launches it with untuned, compiled with hiprtc: for gfx90a and gfx908
 *   the disassembly (llvm-objdump) has v_mfma and the code object's metadata
 *   says no VGPR spills and no private segment; for gfx1030 (RDNA2, no
 *   MFMA) no v_mfma (the #else branch: the register-blocked dot). Skips with
 *   the reason without hiprtc or llvm-objdump.
 * defaults: the path is the default for f16/bf16 dots on HIP; tensor_cores=0
 *   turns it off; f32 dots never take it; programs that are not whole
 *   64-lane wavefronts say why in the source; on OpenCL only
 *   tensor_cores=2 selects it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen.h"
#include "gpu_common.h"
#include "kernels.h"
#include "test_util.h"
#include "tuner.h"

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
/* D fixes attention's whole-tile block (16 here): one compile per config */
static const char *const attention_sizes[] = {"H=1,S=1,T=1,D=13", "H=3,S=7,T=7,D=13", "H=1,S=127,T=1000,D=13", NULL};
/* Configs: the default blocks (2 wavefronts on matmul), one wavefront over
 * the smallest blocks (padding to 16 everywhere), 4 wavefronts over more
 * tiles than wavefronts, and stage=1 (both operands written to local memory
 * from registers, not copied from global memory). Each costs a PoCL
 * compile. */
static const char *const mm_configs[] = {"tensor_cores=2", "tensor_cores=2,warps=2,BLOCK_M=16,BLOCK_N=16,BLOCK_K=8",
                                         "tensor_cores=2,warps=8,BLOCK_M=32,BLOCK_N=64,BLOCK_K=32", "tensor_cores=2,stage=1", NULL};
static const char *const one_config[] = {"tensor_cores=2", NULL};
static const char *const att_configs[] = {"tensor_cores=2,warps=2", "tensor_cores=2,warps=4", NULL};

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
    double worst = 0;
    for (int ci = 0; configs[ci]; ci++) {
        ts_config *cfg = cfg_of(configs[ci]);
        for (int si = 0; sizes[si]; si++) {
            char *src = NULL;
            cr_assert_eq(emit(k, cfg, sizes[si], TS_DIALECT_OPENCL, &src), TS_OK, "%s [%s]: %s", name, configs[ci], ts_last_error());
            int ndots = count(src, "dot on MFMA");
            cr_assert(ndots >= 1 && strstr(src, "ts_emu_mfma_16x16x16(") && !strstr(src, "dot on tensor cores"),
                      "%s %s [%s]: the dot did not take the MFMA path", name, ts_dtype_name(dt), configs[ci]);
            if (strcmp(name, "attention") == 0) cr_assert_eq(ndots, 2, "attention: both dots on MFMA");
            free(src);
            ts_ex_sizes sz;
            cr_assert_eq(ts_ex_parse_sizes(sizes[si], &sz), TS_OK);
            ts_ex_result r;
            ts_ex_run_case(ctx, ex, k, dt, &sz, cfg, 1, (uint64_t)(si * 7 + ci + 1), &r);
            cr_expect_eq(r.status, TS_OK, "%s %s %s [%s]: %s %s", name, ts_dtype_name(dt), sizes[si], configs[ci], ts_status_name(r.status), r.message);
            if (r.max_err > worst) worst = r.max_err;
            ran++;
        }
        ts_config_destroy(cfg);
    }
    cr_assert_gt(ran, 0);
    cr_log_info("mfma emulated %s %s: %d cases, worst error %.3g x tolerance", name, ts_dtype_name(dt), ran, worst);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

#define EMU_TEST(kname, dt, sizes, configs) \
    Test(mfma_emulated, kname##_##dt, .timeout = 1800) { run_emulated(#kname, TS_##dt, sizes, configs); }
EMU_TEST(matmul, F16, matmul_sizes, mm_configs)
EMU_TEST(matmul, BF16, matmul_sizes, mm_configs)
EMU_TEST(matmul_bias_gelu, F16, matmul_sizes, one_config)
EMU_TEST(matmul_bias_gelu, BF16, matmul_sizes, one_config)
EMU_TEST(bmm, F16, bmm_sizes, one_config)
EMU_TEST(bmm, BF16, bmm_sizes, one_config)
EMU_TEST(attention, F16, attention_sizes, att_configs)
EMU_TEST(attention, BF16, attention_sizes, att_configs)

/* ---------------------------------------------------------------- gfx code objects (hiprtc) */

/* llvm-objdump that can disassemble amdgcn (PATH, then the usual places). */
static const char *objdump_path(void) {
    static const char *const cands[] = {"/usr/bin/llvm-objdump", "/opt/rocm/llvm/bin/llvm-objdump", "/usr/lib/llvm-14/bin/llvm-objdump", NULL};
    for (int i = 0; cands[i]; i++)
        if (access(cands[i], X_OK) == 0) return cands[i];
    return NULL;
}

/* The msgpack unsigned integer after `key` in the code object's metadata, -1 if absent. */
static long meta_number(const unsigned char *co, size_t n, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 1; i + kl + 5 < n; i++) {
        if (co[i - 1] != (0xa0 | kl) || memcmp(co + i, key, kl) != 0) continue;
        const unsigned char *v = co + i + kl;
        if (v[0] < 0x80) return v[0];
        if (v[0] == 0xcc) return v[1];
        if (v[0] == 0xcd) return (long)v[1] << 8 | v[2];
        if (v[0] == 0xce) return (long)v[1] << 24 | (long)v[2] << 16 | (long)v[3] << 8 | v[4];
        return -1;
    }
    return -1;
}

/* The disassembly of a code object (caller frees), or NULL with the reason in why. */
static char *disassemble(const char *objdump, const char *code, size_t n, const char *arch, char *why, size_t whyn) {
    char path[] = "/tmp/ts-mfma-co-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return snprintf(why, whyn, "mkstemp failed"), NULL;
    int ok = write(fd, code, n) == (ssize_t)n;
    close(fd);
    if (!ok) {
        unlink(path);
        return snprintf(why, whyn, "write failed"), NULL;
    }
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' -d --mcpu=%s '%s' 2>&1", objdump, arch, path);
    FILE *p = popen(cmd, "r");
    size_t cap = 1 << 20, len = 0, k;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    while (p && (k = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += k;
        if (len + 1 == cap) {
            cap *= 2;
            out = realloc(out, cap);
            cr_assert_not_null(out);
        }
    }
    out[len] = 0;
    int rc = p ? pclose(p) : -1;
    unlink(path);
    if (rc != 0) {
        snprintf(why, whyn, "llvm-objdump failed: %.300s", out);
        free(out);
        return NULL;
    }
    return out;
}

static void check_gfx(const char *name, ts_dtype dt) {
    char why[1024];
    ts_test_skip_unless_selected("hip");
    if (!ts__hiprtc_available(why, sizeof why)) cr_skip_test("%s", why);
    const char *objdump = objdump_path();
    if (!objdump) cr_skip_test("llvm-objdump not found (needed to disassemble the gfx code objects)");
    const ts_example *ex = ts_example_find(name);
    cr_assert_not_null(ex);
    ts_kernel *k = NULL;
    cr_assert_eq(ex->build(dt, &k), TS_OK, "%s", ts_last_error());
    const char *cfg_text = ts__tune_device_knobs(TS_DIALECT_HIP, 0, &k->ir);
    ts_config *cfg = cfg_of(cfg_text ? cfg_text : "");
    char *src = NULL;
    cr_assert_eq(emit(k, cfg, ex->sizes[0], TS_DIALECT_HIP, &src), TS_OK, "%s: %s", name, ts_last_error());
    int ndots = count(src, "dot on MFMA");
    cr_assert(ndots >= 1 && strstr(src, "#if TS_MFMA"), "%s %s [%s]: the HIP dot did not take the MFMA path", name, ts_dtype_name(dt), cfg_text);
    const char *archs[] = {"gfx90a", "gfx908", "gfx1030"};
    for (int a = 0; a < 3; a++) {
        char *code = NULL, *log = NULL;
        size_t n = 0;
        ts_status s = ts__hip_compile_for_arch(src, archs[a], &code, &n, &log);
        cr_assert_eq(s, TS_OK, "%s %s %s: %s", name, ts_dtype_name(dt), archs[a], ts_last_error());
        char *dis = disassemble(objdump, code, n, archs[a], why, sizeof why);
        cr_assert_not_null(dis, "%s %s: %s", name, archs[a], why);
        int nmfma = count(dis, "v_mfma_");
        const unsigned char *co = (const unsigned char *)code;
        long vs = meta_number(co, n, ".vgpr_spill_count"), ss = meta_number(co, n, ".sgpr_spill_count");
        long priv = meta_number(co, n, ".private_segment_fixed_size"), vg = meta_number(co, n, ".vgpr_count");
        long ag = meta_number(co, n, ".agpr_count");
        cr_assert(vs >= 0 && priv >= 0 && vg > 0, "%s %s: no register metadata in the code object", name, archs[a]);
        if (a < 2) { /* CDNA: MFMA */
            const char *want = dt == TS_BF16 ? (a == 0 ? "v_mfma_f32_16x16x16bf16_1k" : "v_mfma_f32_16x16x8bf16") : "v_mfma_f32_16x16x16f16";
            cr_expect(strstr(dis, want), "%s %s %s: no %s in the disassembly", name, ts_dtype_name(dt), archs[a], want);
            cr_expect(vs == 0 && priv == 0, "%s %s %s [%s]: %ld VGPR spills, %ld bytes private segment", name, ts_dtype_name(dt), archs[a], cfg_text, vs, priv);
        } else cr_expect_eq(nmfma, 0, "%s %s gfx1030: v_mfma on an arch without MFMA", name, ts_dtype_name(dt));
        cr_log_info("hip %s %s %s [%s]: %d v_mfma, %ld VGPRs, %ld AGPRs, spills VGPR %ld SGPR %ld, private %ld", name, ts_dtype_name(dt), archs[a],
                    cfg_text ? cfg_text : "defaults", nmfma, vg, ag, vs, ss, priv);
        free(dis);
        free(code);
        free(log);
    }
    free(src);
    ts_config_destroy(cfg);
    ts_kernel_destroy(k);
}

#define GFX_TEST(kname, dt) \
    Test(mfma_gfx, kname##_##dt, .timeout = 600) { check_gfx(#kname, TS_##dt); }
GFX_TEST(matmul, F16)
GFX_TEST(matmul, BF16)
GFX_TEST(matmul_bias_gelu, F16)
GFX_TEST(matmul_bias_gelu, BF16)
GFX_TEST(bmm, F16)
GFX_TEST(bmm, BF16)
GFX_TEST(attention, F16)
GFX_TEST(attention, BF16)

/* ---------------------------------------------------------------- defaults and other targets */

Test(mfma_defaults, where_the_path_applies) {
    ts_kernel *k16 = NULL, *k32 = NULL;
    const ts_example *ex = ts_example_find("matmul");
    cr_assert_eq(ex->build(TS_BF16, &k16), TS_OK);
    cr_assert_eq(ex->build(TS_F32, &k32), TS_OK);
    struct {
        ts_kernel *k;
        ts_dialect d;
        const char *cfg;
        int mfma, mma;
    } cases[] = {
        {k16, TS_DIALECT_HIP, "", 1, 0},                      /* default on HIP (128 threads: 2 wavefronts) */
        {k16, TS_DIALECT_HIP, "warps=4", 1, 0},
        {k16, TS_DIALECT_HIP, "tensor_cores=1", 1, 0},
        {k16, TS_DIALECT_HIP, "tensor_cores=2", 1, 0},
        {k16, TS_DIALECT_HIP, "tensor_cores=0", 0, 0},        /* turned off */
        {k16, TS_DIALECT_HIP, "warps=1", 0, 0},               /* 32 threads: no whole wavefront */
        {k32, TS_DIALECT_HIP, "tensor_cores=1", 0, 0},        /* f32: not lowered */
        {k16, TS_DIALECT_OPENCL, "", 0, 0},                   /* OpenCL: only the emulations, when asked */
        {k16, TS_DIALECT_OPENCL, "tensor_cores=1", 0, 1},     /* 1: the mma.sync emulation */
        {k16, TS_DIALECT_OPENCL, "tensor_cores=2", 1, 0},     /* 2: the MFMA emulation */
        {k16, TS_DIALECT_OPENCL, "tensor_cores=2,warps=1", 0, 0},
        {k16, TS_DIALECT_CUDA, "tensor_cores=2", 0, 1},       /* CUDA: 2 is as 1 */
        {k16, TS_DIALECT_GLSL, "tensor_cores=2", 0, 0},
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
        cr_expect_eq(strstr(src, "dot on MFMA") != NULL, cases[i].mfma, "case %zu [%s]: MFMA", i, cases[i].cfg);
        cr_expect_eq(strstr(src, "dot on tensor cores") != NULL, cases[i].mma, "case %zu [%s]: mma.sync", i, cases[i].cfg);
        if (cases[i].mfma && cases[i].d == TS_DIALECT_HIP) /* the arch is the compiler's: RDNA compiles the #else branch */
            cr_expect(strstr(src, "#if TS_MFMA") && strstr(src, "#else") && strstr(src, "no MFMA on this arch"), "case %zu: no RDNA fallback", i);
        free(src);
        ts_config_destroy(cfg);
    }
    ts_kernel_destroy(k16);
    ts_kernel_destroy(k32);
}

/* Where the MFMA path is asked for and the program is not whole
 * wavefronts, the source says why and the ordinary dot runs. */
Test(mfma_defaults, not_whole_wavefronts_say_why) {
    ts_kernel *k = NULL;
    cr_assert_eq(ts_example_find("matmul")->build(TS_F16, &k), TS_OK);
    const char *cfgs[] = {"tensor_cores=1,warps=1", "tensor_cores=2,warps=1"};
    ts_dialect ds[] = {TS_DIALECT_HIP, TS_DIALECT_OPENCL};
    for (int i = 0; i < 2; i++) {
        ts_config *cfg = cfg_of(cfgs[i]);
        char *src = NULL;
        ts_status s = emit(k, cfg, "M=127,N=65,K=200", ds[i], &src);
        cr_assert_eq(s, TS_OK, "%s", ts_last_error());
        cr_expect(strstr(src, "(MFMA) not supported here") && strstr(src, "wavefronts"), "dialect %d: no reason in the source", (int)ds[i]);
        cr_expect_null(strstr(src, "dot on MFMA"));
        free(src);
        ts_config_destroy(cfg);
    }
    ts_kernel_destroy(k);
}
