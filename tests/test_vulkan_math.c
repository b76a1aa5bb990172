/* test_vulkan_math.c: the GLSL prelude's exp, log, tanh and erf (and the
 * sigmoid, silu and gelu built on them) on the Vulkan backend, against
 * double-precision libm on the host, over a dense sweep of f32 inputs: every
 * 1021st bit pattern of each sign (normals and subnormals of every binade),
 * a fine grid of [-12, 12], tiny arguments near 0, the overflow and
 * underflow edges, and 0, inf, NaN. Errors are counted in ulps of the
 * correctly rounded result, as in docs/conformance.md; the bounds asserted
 * are the conformance bounds or tighter. Also: every overload (float, vec2,
 * vec3, vec4) of the prelude compiles and validates. Skips with the reason
 * when Vulkan is not available.
 *
 * The Vulkan spec lets a driver flush subnormals to zero (lavapipe does not):
 * a subnormal input may act as a zero of its sign and a subnormal result may
 * be a zero (counted, reported); everything else must be within the bound.
 * sigmoid and silu are checked where exp(-x) is finite (x > -88.72): below,
 * the emitter's 1 / (1 + exp(-x)) and x / (1 + exp(-x)) give 0 where the
 * exact value is a tiny normal (silu) or subnormal (sigmoid), a limit of the
 * formula, not of exp. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "test_util.h"
#include "dialect.h"
#include "ts_internal.h"
#ifdef TS_HAVE_VULKAN
#include "backends/vulkan/vk_spirv.h"
#endif

static void skip_unless_selected(void) { ts_test_skip_unless_selected("vulkan"); }

static ts_context *open_or_skip(void) { return ts_test_open_or_skip("vulkan"); }

static float f32_of_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The inputs of the sweep (for log only the non-negative ones matter, the
 * rest must give NaN). */
static float *sweep_inputs(int64_t *count) {
    int64_t cap = 2 * (0x7f800000 / 1021 + 2) + 240001 + 4 * 4000 + 64, n = 0;
    float *x = malloc((size_t)cap * sizeof *x);
    cr_assert_not_null(x);
    for (uint32_t u = 0; u < 0x7f800000u; u += 1021u) {
        x[n++] = f32_of_bits(u);
        x[n++] = f32_of_bits(u | 0x80000000u);
    }
    for (int i = -120000; i <= 120000; i++) x[n++] = (float)i * 1e-4f;
    /* tiny arguments and the edges: 4000 consecutive floats from each */
    const float starts[] = {1e-7f, 88.5f, -87.5f, -103.5f};
    for (int s = 0; s < 4; s++) {
        float v = starts[s];
        for (int i = 0; i < 4000; i++, v = nextafterf(v, INFINITY)) x[n++] = v;
    }
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX,
                             f32_of_bits(1), f32_of_bits(0x80000001u), f32_of_bits(0x007fffffu), 1.0f, -1.0f,
                             0.625f, -0.625f, nextafterf(0.625f, 0), nextafterf(1.0f, 2), nextafterf(1.0f, 0),
                             88.72283f, 88.72284f, -103.97208f, -87.33654f, 0.5f, 2.0f, 1e-30f, -1e-30f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) x[n++] = special[i];
    cr_assert_leq(n, cap);
    *count = n;
    return x;
}

typedef struct math_case {
    const char *name;
    ts_unary_op op;
    double (*ref)(double);
    double ulps, eps; /* bound: ulps * ulp(e) + eps * FLT_EPSILON */
    double lo;        /* inputs below lo are not checked (-INFINITY: all are) */
} math_case;

static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double ref_silu(double x) { return x / (1.0 + exp(-x)); }
/* the device rounds x / sqrt(2) to f32 first: the reference does too, so the
 * bound measures gelu's formula, not the rounding of its argument */
static double ref_gelu(double x) { return 0.5 * x * (1.0 + erf((double)(float)(x * (double)0.70710678118654752f))); }

/* ulp of the f32 binade of e (the subnormal spacing below FLT_MIN) */
static double ulp_of(float e) {
    float a = fabsf(e);
    if (a < FLT_MIN) return ldexp(1.0, -149);
    if (a >= FLT_MAX) return ldexp(1.0, 104);
    int ex;
    frexpf(a, &ex);
    return ldexp(1.0, ex - 24);
}

static ts_kernel *unary_kernel(const char *name, ts_unary_op op) {
    ts_builder *b = NULL;
    cr_assert_eq(ts_builder_create(name, &b), TS_OK);
    ts_size N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", TS_F32, 1, &N);
    ts_param y = ts_param_tensor(b, "y", TS_F32, 1, &N);
    ts_tunable(b, "BLOCK", 16, 4096, 1024);
    ts_tile tn = ts_grid_tile(b, "tn", N, "BLOCK");
    ts_store(b, y, &TS_AT(tn), ts_unary(b, op, ts_load(b, x, &TS_AT(tn), 0.0)));
    ts_kernel *k = NULL;
    cr_assert_eq(ts_builder_finish(b, &k), TS_OK, "%s", ts_last_error());
    ts_builder_destroy(b);
    return k;
}

/* Runs one function over the sweep; returns the worst error in ulps (of the
 * normal-range results) and checks every element against the bound. */
static void check_math(const math_case *mc) {
    ts_context *ctx = open_or_skip();
    int64_t n = 0;
    float *x = sweep_inputs(&n);
    float *y = malloc((size_t)n * sizeof *y);
    cr_assert_not_null(y);
    ts_kernel *k = unary_kernel(mc->name, mc->op);
    ts_tensor *tx = NULL, *ty = NULL;
    cr_assert_eq(ts_tensor_create(ctx, TS_F32, 1, &n, &tx), TS_OK, "%s", ts_last_error());
    cr_assert_eq(ts_tensor_create(ctx, TS_F32, 1, &n, &ty), TS_OK, "%s", ts_last_error());
    cr_assert_eq(ts_tensor_write(tx, x, (size_t)n * 4), TS_OK);
    cr_assert_eq(ts_launch(ctx, k, NULL, (ts_arg[]){TS_ARG_TENSOR(tx), TS_ARG_TENSOR(ty)}, 2, NULL), TS_OK, "%s", ts_last_error());
    cr_assert_eq(ts_tensor_read(ty, y, (size_t)n * 4), TS_OK);
    double worst = 0, worst_rel = 0; /* in ulps; in units of the bound */
    float worst_x = 0;
    int64_t bad = 0, flushed = 0, skipped = 0;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] < mc->lo) {
            skipped++;
            continue;
        }
        double ed = mc->ref((double)x[i]);
        float e = (float)ed, g = y[i];
        if (isnan(e) || isinf(e)) {
            int ok = isnan(e) ? isnan(g) : g == e;
            if (!ok && bad++ < 8) cr_log_error("%s(%a) = %a, expected %a", mc->name, x[i], g, e);
            continue;
        }
        double err = fabs((double)g - (double)e) / ulp_of(e);
        double bound = mc->ulps + mc->eps * FLT_EPSILON / ulp_of(e);
        if (!(err <= bound)) {
            /* flush to zero: a subnormal input as a zero, a subnormal result as 0 */
            float e0 = (float)mc->ref(copysign(0.0, (double)x[i]));
            int sub_in = fabsf(x[i]) < FLT_MIN && (g == e0 || (isnan(g) && isnan(e0)));
            int sub_out = fabsf(e) < FLT_MIN && g == 0.0f;
            if (sub_in || sub_out) {
                flushed++;
                continue;
            }
            if (bad++ < 8) cr_log_error("%s(%a) = %a, expected %a: %.2f ulp (bound %.2f)", mc->name, x[i], g, e, err, bound);
            continue;
        }
        if (err / bound > worst_rel) worst_rel = err / bound;
        if (fabsf(e) >= FLT_MIN && mc->eps == 0 && err > worst) worst = err, worst_x = x[i];
    }
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %lld inputs (%lld below the domain), worst %.2f ulp (at x = %.9g), %.3f of the bound %g ulp + %g eps, %lld subnormals flushed",
             mc->name, (long long)n, (long long)skipped, worst, worst_x, worst_rel, mc->ulps, mc->eps, (long long)flushed);
    cr_log_info("%s", msg);
    if (getenv("TS_TEST_VERBOSE")) fprintf(stderr, "%s\n", msg);
    cr_expect_eq(bad, 0, "%s: %lld of %lld inputs outside %.1f ulp + %.0f eps", mc->name, (long long)bad, (long long)n, mc->ulps, mc->eps);
    ts_tensor_destroy(tx);
    ts_tensor_destroy(ty);
    ts_kernel_destroy(k);
    free(x);
    free(y);
    ts_context_destroy(ctx);
}

/* Bounds: exp and log within 2 ulp (conformance: 3), tanh 3 (5), erf 4
 * (16); sigmoid, silu and gelu at their conformance bounds. */
Test(vulkan_math, exp, .timeout = 300) { check_math(&(math_case){"exp", TS_EXP, exp, 2, 0, -INFINITY}); }
Test(vulkan_math, log, .timeout = 300) { check_math(&(math_case){"log", TS_LOG, log, 2, 0, -INFINITY}); }
Test(vulkan_math, tanh, .timeout = 300) { check_math(&(math_case){"tanh", TS_TANH, tanh, 3, 0, -INFINITY}); }
Test(vulkan_math, erf, .timeout = 300) { check_math(&(math_case){"erf", TS_ERF, erf, 4, 0, -INFINITY}); }
Test(vulkan_math, sigmoid, .timeout = 300) { check_math(&(math_case){"sigmoid", TS_SIGMOID, ref_sigmoid, 8, 0, -88.72f}); }
Test(vulkan_math, silu, .timeout = 300) { check_math(&(math_case){"silu", TS_SILU, ref_silu, 10, 0, -88.72f}); }
Test(vulkan_math, gelu, .timeout = 300) { check_math(&(math_case){"gelu", TS_GELU, ref_gelu, 16, 16, -INFINITY}); }

/* The prelude's overloads for vec2/vec3/vec4 (for a vectorised GLSL path)
 * compile and validate; no device needed. */
Test(vulkan_math, vector_overloads_compile, .timeout = 120) {
    skip_unless_selected();
#ifndef TS_HAVE_VULKAN
    cr_skip_test("built without the Vulkan backend (shaderc / SPIRV-Tools not found)");
#else
    const ts__dialect *d = ts__dialect_get(TS_DIALECT_GLSL);
    cr_assert_not_null(d);
    cr_expect_str_eq(d->exp_, "ts_exp");
    cr_expect_str_eq(d->log_, "ts_log");
    cr_expect_str_eq(d->tanh_, "ts_tanh");
    cr_expect_str_eq(d->erf_, "ts_erf");
    static const char body[] =
        "layout(local_size_x = 1) in;\n"
        "layout(std430, binding = 0) buffer B { vec4 v[]; } b;\n"
        "void main() {\n"
        "  vec4 x = b.v[0];\n"
        "  float s = ts_exp(x.x) + ts_log(x.y) + ts_tanh(x.z) + ts_erf(x.w);\n"
        "  vec2 a = ts_exp(x.xy) + ts_log(x.xy) + ts_tanh(x.xy) + ts_erf(x.xy);\n"
        "  vec3 c = ts_exp(x.xyz) + ts_log(x.xyz) + ts_tanh(x.xyz) + ts_erf(x.xyz);\n"
        "  vec4 e = ts_exp(x) + ts_log(x) + ts_tanh(x) + ts_erf(x);\n"
        "  b.v[1] = e + vec4(a, c.z, s);\n"
        "}\n";
    size_t n = strlen(d->prelude) + sizeof body;
    char *src = malloc(n);
    cr_assert_not_null(src);
    snprintf(src, n, "%s%s", d->prelude, body);
    uint32_t *words = NULL;
    size_t nw = 0;
    cr_assert_eq(ts__vk_glsl_to_spirv(src, "math_overloads", &words, &nw), TS_OK, "%s", ts_last_error());
    cr_expect_eq(ts__vk_spirv_validate(words, nw), TS_OK, "%s", ts_last_error());
    free(words);
    free(src);
#endif
}
