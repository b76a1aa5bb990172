/* test_gpu_shape.c: the GPU shape of the generated code, checked without a
 * GPU (static checks standing in for hardware, docs/design.md "GPU-shaped
 * lowering"). Every example kernel, in every dtype it is built for, at the
 * config a GPU launches it with untuned (ts__tune_device_knobs) and its
 * typical sizes:
 *   - CUDA, sm_80 and sm_90 (nvcc -cubin -Xptxas -v): no spill stores or
 *     loads; at most 64 registers for kernels without
 *     a reduction or dot, at most 128 for row kernels (a reduction, no dot);
 *   - the PTX (nvcc -ptx) of add, softmax and layer_norm has 128-bit global
 *     loads (ld.global*.v4), softmax and layer_norm warp shuffles, and no
 *     kernel's PTX declares .local memory;
 *   - HIP, gfx90a (hiprtc): the code object's metadata says no VGPR or SGPR
 *     spills (dot kernels: SGPR spills, which go to VGPR lanes, are only
 *     logged) and no private segment, and the same register budgets.
 * Skips with the reason where nvcc or hiprtc is missing. */
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

static void skip_unless_selected(const char *name) { ts_test_skip_unless_selected(name); }

static const char *nvcc_path(void) { return ts_test_cuda_tool("nvcc"); }

/* ---------------------------------------------------------------- generation */

typedef enum { KIND_ELEMENTWISE, KIND_ROW, KIND_DOT } kernel_kind;

static kernel_kind kind_of(const ts_kernel *k) {
    kernel_kind kd = KIND_ELEMENTWISE;
    for (int i = 0; i < k->ir.nops; i++) {
        if (k->ir.ops[i].kind == TS__OP_DOT) return KIND_DOT;
        if (k->ir.ops[i].kind == TS__OP_REDUCE) kd = KIND_ROW;
    }
    return kd;
}

/* Registers a thread may use (ptxas; VGPRs on gfx90a). Dot kernels: no
 * budget past the hardware's (255 on CUDA, 512 VGPR+AGPR on gfx90a). */
static int budget(kernel_kind kd, int hip) { return kd == KIND_ELEMENTWISE ? 64 : kd == KIND_ROW ? 128 : hip ? 512 : 255; }

/* Source of k for dialect at its untuned GPU config and sizes; *cfg_text
 * says which config. */
static char *emit(const ts_kernel *k, const char *sizes, ts_dialect dialect, const char **cfg_text) {
    *cfg_text = ts__tune_device_knobs(dialect, 0, &k->ir);
    ts_config *cfg = NULL;
    cr_assert_eq(*cfg_text ? ts_config_parse(*cfg_text, &cfg) : ts_config_create(&cfg), TS_OK);
    char *src = NULL;
    ts_status s = ts_test_emit(k, cfg, sizes, dialect, NULL, &src);
    ts_config_destroy(cfg);
    cr_assert_eq(s, TS_OK, "%s: %s", ts_kernel_name(k), ts_last_error());
    if (!*cfg_text) *cfg_text = "the kernel's defaults";
    return src;
}

/* Runs cmd, returns its output (stdout + stderr) and exit status. */
static char *run(const char *cmd, int *rc) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen failed: %s", cmd);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    size_t k;
    while ((k = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (n + 1 == cap) {
            cap *= 2;
            out = realloc(out, cap);
            cr_assert_not_null(out);
        }
    }
    out[n] = 0;
    *rc = pclose(p);
    return out;
}

/* The integer after `key` in ptxas -v output ("Used 56 registers", "8 bytes spill stores"), -1 if absent. */
static long ptxas_number(const char *out, const char *key, int before) {
    const char *at = strstr(out, key);
    if (!at) return -1;
    if (!before) return strtol(at + strlen(key), NULL, 10);
    const char *q = at;
    while (q > out && q[-1] == ' ') q--;
    while (q > out && q[-1] >= '0' && q[-1] <= '9') q--;
    return strtol(q, NULL, 10);
}

/* ---------------------------------------------------------------- CUDA */

static void check_cuda(const char *name) {
    skip_unless_selected("cuda");
    const char *nvcc = nvcc_path();
    if (!nvcc) cr_skip_test("nvcc not found (set CUDA_HOME or install the CUDA toolkit in /usr/local/cuda)");
    const ts_example *ex = ts_example_find(name);
    cr_assert_not_null(ex);
    char dir[] = "/tmp/ts-gpushape-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    for (int di = 0; di < ex->ndtypes; di++) {
        ts_dtype dt = ex->dtypes[di];
        ts_kernel *k = NULL;
        cr_assert_eq(ex->build(dt, &k), TS_OK, "%s", ts_last_error());
        const char *cfg;
        char *src = emit(k, ex->sizes[0], TS_DIALECT_CUDA, &cfg);
        kernel_kind kd = kind_of(k);
        char path[512], cmd[5000];
        snprintf(path, sizeof path, "%s/%s_%s.cu", dir, name, ts_dtype_name(dt));
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(src, f);
        fclose(f);
        const char *archs[] = {"sm_80", "sm_90"};
        for (int a = 0; a < 2; a++) {
            int rc;
            snprintf(cmd, sizeof cmd, "'%s' -arch=%s -cubin -Xptxas -v '%s' -o /dev/null 2>&1", nvcc, archs[a], path);
            char *out = run(cmd, &rc);
            cr_assert_eq(rc, 0, "%s %s %s: nvcc failed:\n%s", name, ts_dtype_name(dt), archs[a], out);
            long regs = ptxas_number(out, "Used ", 0), st = ptxas_number(out, "bytes spill stores", 1);
            long ld = ptxas_number(out, "bytes spill loads", 1), stack = ptxas_number(out, "bytes stack frame", 1);
            cr_assert(regs > 0 && st >= 0 && ld >= 0 && stack >= 0, "%s: unexpected ptxas output:\n%s", name, out);
            cr_expect(st == 0 && ld == 0, "%s %s %s [%s]: %ld bytes spill stores, %ld spill loads", name, ts_dtype_name(dt), archs[a], cfg, st, ld);
            cr_expect(regs <= budget(kd, 0), "%s %s %s [%s]: %ld registers, budget %d", name, ts_dtype_name(dt), archs[a], cfg, regs, budget(kd, 0));
            cr_log_info("cuda %s %s %s [%s]: %ld registers, spills %ld/%ld, stack %ld", name, ts_dtype_name(dt), archs[a], cfg, regs, st, ld, stack);
            free(out);
        }
        /* the instructions: no private array in local memory (a stack
         * frame alone can be a math library call's, e.g. logf's slow path
         * on sm_80), 128-bit loads, warp shuffles */
        int wants_v4 = dt == TS_F32 && (!strcmp(name, "add") || !strcmp(name, "softmax") || !strcmp(name, "layer_norm"));
        int wants_shfl = !strcmp(name, "softmax") || !strcmp(name, "layer_norm");
        {
            int rc;
            snprintf(cmd, sizeof cmd, "'%s' -arch=sm_90 -ptx '%s' -o - 2>/dev/null", nvcc, path);
            char *ptx = run(cmd, &rc);
            cr_assert_eq(rc, 0, "%s: nvcc -ptx failed:\n%s", name, ptx);
            cr_expect_null(strstr(ptx, ".local"), "%s %s [%s]: a private array lives in local memory (.local in the PTX)", name, ts_dtype_name(dt), cfg);
            if (wants_v4) cr_expect(strstr(ptx, "ld.global.v4") || strstr(ptx, "ld.global.nc.v4"), "%s: no 128-bit global load in the PTX", name);
            if (wants_shfl) cr_expect(strstr(ptx, "shfl.sync.bfly"), "%s: no warp shuffle in the PTX", name);
            free(ptx);
        }
        unlink(path);
        free(src);
        ts_kernel_destroy(k);
    }
    rmdir(dir);
}

/* ---------------------------------------------------------------- HIP */

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

static void check_hip(const char *name) {
    char why[1024];
    skip_unless_selected("hip");
    if (!ts__hiprtc_available(why, sizeof why)) cr_skip_test("%s", why);
    const ts_example *ex = ts_example_find(name);
    cr_assert_not_null(ex);
    for (int di = 0; di < ex->ndtypes; di++) {
        ts_dtype dt = ex->dtypes[di];
        ts_kernel *k = NULL;
        cr_assert_eq(ex->build(dt, &k), TS_OK, "%s", ts_last_error());
        const char *cfg;
        char *src = emit(k, ex->sizes[0], TS_DIALECT_HIP, &cfg);
        char *code = NULL, *log = NULL;
        size_t n = 0;
        ts_status s = ts__hip_compile_for_arch(src, "gfx90a", &code, &n, &log);
        cr_assert_eq(s, TS_OK, "%s %s gfx90a: %s", name, ts_dtype_name(dt), ts_last_error());
        const unsigned char *co = (const unsigned char *)code;
        long vs = meta_number(co, n, ".vgpr_spill_count"), ss = meta_number(co, n, ".sgpr_spill_count");
        long priv = meta_number(co, n, ".private_segment_fixed_size"), vg = meta_number(co, n, ".vgpr_count");
        cr_assert(vs >= 0 && ss >= 0 && priv >= 0 && vg > 0, "%s: no register metadata in the gfx90a code object", name);
        /* dot kernels: SGPR spills (to VGPR lanes, not memory) are reported, not refused */
        cr_expect(vs == 0 && priv == 0 && (ss == 0 || kind_of(k) == KIND_DOT), "%s %s gfx90a [%s]: %ld VGPR spills, %ld SGPR spills, %ld bytes private segment",
                  name, ts_dtype_name(dt), cfg, vs, ss, priv);
        cr_expect(vg <= budget(kind_of(k), 1), "%s %s gfx90a [%s]: %ld VGPRs, budget %d", name, ts_dtype_name(dt), cfg, vg, budget(kind_of(k), 1));
        cr_log_info("hip %s %s gfx90a [%s]: %ld VGPRs, spills %ld/%ld, private %ld", name, ts_dtype_name(dt), cfg, vg, vs, ss, priv);
        free(code);
        free(log);
        free(src);
        ts_kernel_destroy(k);
    }
}

#define SHAPE_TESTS(n)                                                                                                                     \
    Test(cuda_shape, n, .timeout = 600) { check_cuda(#n); }                                                                                \
    Test(hip_shape, n, .timeout = 600) { check_hip(#n); }
SHAPE_TESTS(add)
SHAPE_TESTS(exp)
SHAPE_TESTS(gelu)
SHAPE_TESTS(silu)
SHAPE_TESTS(swiglu)
SHAPE_TESTS(sum)
SHAPE_TESTS(long_sum)
SHAPE_TESTS(softmax)
SHAPE_TESTS(softmax_online)
SHAPE_TESTS(layer_norm)
SHAPE_TESTS(rms_norm)
SHAPE_TESTS(matmul)
SHAPE_TESTS(matmul_bias_gelu)
SHAPE_TESTS(bmm)
SHAPE_TESTS(attention)
SHAPE_TESTS(cross_entropy)
SHAPE_TESTS(embedding)
SHAPE_TESTS(transpose)
SHAPE_TESTS(rope)
SHAPE_TESTS(concatenate)
SHAPE_TESTS(jagged_sum)
SHAPE_TESTS(segment_sum)
SHAPE_TESTS(gather_gemv)
SHAPE_TESTS(attention_causal)
SHAPE_TESTS(matmul_split_k)
SHAPE_TESTS(grouped_matmul)
SHAPE_TESTS(layer_norm_bwd)
SHAPE_TESTS(dropout)
SHAPE_TESTS(int8_gemm)
SHAPE_TESTS(fp8_gemm)

/* Every example kernel has a test above. */
Test(cuda_shape, every_example_is_covered) {
    const char *covered = " add exp gelu silu swiglu sum long_sum softmax softmax_online layer_norm rms_norm matmul matmul_bias_gelu bmm attention "
                          "cross_entropy embedding transpose "
                          "rope concatenate jagged_sum segment_sum gather_gemv attention_causal matmul_split_k grouped_matmul layer_norm_bwd dropout int8_gemm fp8_gemm ";
    for (int i = 0; i < ts_example_count(); i++) {
        char key[96];
        snprintf(key, sizeof key, " %s ", ts_example_get(i)->name);
        cr_expect(strstr(covered, key), "example '%s' has no GPU shape test", ts_example_get(i)->name);
    }
}
