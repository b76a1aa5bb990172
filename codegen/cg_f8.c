/* cg_f8.c: the 8-bit float formats f8_e4m3 (OCP E4M3 "fn": bias 7, no
 * infinity, one NaN pattern a sign) and f8_e5m2 (OCP E5M2: bias 15,
 * IEEE-like). Values are computed in f32; these helpers decode on load and
 * round to nearest even on store and cast, bit for bit as the reference's
 * ts__float_to_f8 (api/util.c): past the largest finite value (448, 57344,
 * after rounding) E4M3 gives NaN and E5M2 infinity. Emitted once, in front
 * of the kernel, when a parameter or value has an 8-bit float dtype; each
 * target spells only the bit casts, the rounding and the qualifier.
 *
 * Sections: the helpers; when to emit them. */
#include "cg.h"

/* ---------------------------------------------------------------- the helpers */

/* Decode: sign, exponent field E, mantissa M (MB bits). Encode: NaN, then
 * overflow (a >= OVF, the smallest f32 bit pattern that rounds past the
 * largest finite value), then the subnormal range (a < MINN: scaled to
 * units of the smallest subnormal and rounded), then normals by rounding
 * the f32 bits at the mantissa boundary and rebiasing (a carry into the
 * exponent is the right answer). */
#define F8_C_BODY(NAME, MB, EMASK, BIAS, DEC_SPECIAL, SUBSCALE, NANC, OVF, OVFC, MINN, ENCSCALE)                                   \
    "Q float ts_" NAME "_to_f32(uint b) {\n"                                                                                        \
    "  const uint s = (b & 0x80u) << 24, e = (b >> " #MB ") & " #EMASK "u, m = b & ((1u << " #MB ") - 1u);\n"      \
    DEC_SPECIAL                                                                                                                     \
    "  if (e == 0u) { const float f = (float)m * " SUBSCALE "; return s != 0u ? -f : f; }\n"                                       \
    "  return TS_U2F(s | ((e + " #BIAS "u) << 23) | (m << (23 - " #MB ")));\n"                                                     \
    "}\n"                                                                                                                           \
    "Q uchar ts_f32_to_" NAME "(float f) {\n"                                                                                       \
    "  const uint x = TS_F2U(f), s = (x >> 24) & 0x80u, a = x & 0x7fffffffu;\n"                                                   \
    "  if (a > 0x7f800000u) return (uchar)(s | " NANC "u);\n"                                                                      \
    "  if (a >= " OVF "u) return (uchar)(s | " OVFC "u);\n"                                                                        \
    "  if (a < " MINN "u) return (uchar)(s | (uint)TS_RINT(TS_U2F(a) * " ENCSCALE "));\n"                                          \
    "  const uint r = (a + ((1u << (22 - " #MB ")) - 1u) + ((a >> (23 - " #MB ")) & 1u)) >> (23 - " #MB ");\n"                      \
    "  return (uchar)(s | (r - (" #BIAS "u << " #MB ")));\n"                                                                        \
    "}\n"

/* BIAS in the bodies is 127 - the format's bias (the f32 rebias). */
#define F8_HELPERS                                                                                                                  \
    F8_C_BODY("e4m3", 3, 15, 120, "  if ((b & 0x7fu) == 0x7fu) return TS_U2F(s | 0x7fc00000u);\n", "0.001953125f", "0x7f",         \
              "0x43e80001", "0x7f", "0x3c800000", "512.0f")                                                                          \
    F8_C_BODY("e5m2", 2, 31, 112, "  if (e == 31u) return TS_U2F(s | 0x7f800000u | (m << 21));\n", "1.52587890625e-05f", "0x7e",     \
              "0x47700000", "0x7c", "0x38800000", "65536.0f")

static const char f8_opencl[] = "#define Q inline\n#define TS_F2U(x) as_uint(x)\n#define TS_U2F(x) as_float(x)\n#define TS_RINT(x) rint(x)\n"
                                F8_HELPERS "#undef Q\n";
static const char f8_cuda[] = "#define Q static __device__ __forceinline__\n#define TS_F2U(x) __float_as_uint(x)\n#define TS_U2F(x) __uint_as_float(x)\n"
                              "#define TS_RINT(x) rintf(x)\n" F8_HELPERS "#undef Q\n";
/* GLSL: the same steps with constructor casts and 8-bit storage words. */
#define F8_GLSL_BODY(NAME, MB, EMASK, BIAS, DEC_SPECIAL, SUBSCALE, NANC, OVF, OVFC, MINN, ENCSCALE)                                 \
    "float ts_" NAME "_to_f32(uint8_t bw) {\n"                                                                                      \
    "  const uint b = uint(bw), s = (b & 0x80u) << 24, e = (b >> " #MB ") & " #EMASK "u, m = b & ((1u << " #MB ") - 1u);\n"        \
    DEC_SPECIAL                                                                                                                     \
    "  if (e == 0u) { const float f = float(m) * " SUBSCALE "; return s != 0u ? -f : f; }\n"                                       \
    "  return uintBitsToFloat(s | ((e + " #BIAS "u) << 23) | (m << (23 - " #MB ")));\n"                                            \
    "}\n"                                                                                                                           \
    "uint8_t ts_f32_to_" NAME "(float f) {\n"                                                                                       \
    "  const uint x = floatBitsToUint(f), s = (x >> 24) & 0x80u, a = x & 0x7fffffffu;\n"                                          \
    "  if (a > 0x7f800000u) return uint8_t(s | " NANC "u);\n"                                                                      \
    "  if (a >= " OVF "u) return uint8_t(s | " OVFC "u);\n"                                                                        \
    "  if (a < " MINN "u) return uint8_t(s | uint(roundEven(uintBitsToFloat(a) * " ENCSCALE ")));\n"                               \
    "  const uint r = (a + ((1u << (22 - " #MB ")) - 1u) + ((a >> (23 - " #MB ")) & 1u)) >> (23 - " #MB ");\n"                      \
    "  return uint8_t(s | (r - (" #BIAS "u << " #MB ")));\n"                                                                        \
    "}\n"
static const char f8_glsl[] =
    F8_GLSL_BODY("e4m3", 3, 15, 120, "  if ((b & 0x7fu) == 0x7fu) return uintBitsToFloat(s | 0x7fc00000u);\n", "0.001953125", "0x7f",
                 "0x43e80001", "0x7f", "0x3c800000", "512.0")
    F8_GLSL_BODY("e5m2", 2, 31, 112, "  if (e == 31u) return uintBitsToFloat(s | 0x7f800000u | (m << 21));\n", "1.52587890625e-05", "0x7e",
                 "0x47700000", "0x7c", "0x38800000", "65536.0");

void ts__cg_f8_prelude(const cg *g, ts__sb *sb) {
    switch (g->d->id) {
    case TS_DIALECT_GLSL: ts__sb_puts(sb, f8_glsl); break;
    case TS_DIALECT_CUDA:
    case TS_DIALECT_HIP: ts__sb_puts(sb, f8_cuda); break;
    default: ts__sb_puts(sb, f8_opencl); break;
    }
}

/* ---------------------------------------------------------------- when to emit them */

int ts__cg_uses_f8(const ts__kir *ir) {
    for (int p = 0; p < ir->nparams; p++)
        if (is_f8(ir->params[p].dtype)) return 1;
    for (int v = 0; v < ir->nvalues; v++)
        if (is_f8(ir->values[v].dtype)) return 1;
    return 0;
}
