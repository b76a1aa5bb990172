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
 * exponent is the right answer). BIAS is 127 - the format's bias (the f32
 * rebias). One body for every target: each spells the macros TS_Q (the
 * qualifier), TS_B (the 8-bit storage word), TS_U(x) and TS_BYTE(x)
 * (conversions), TS_FL(x) (to float), TS_F2U, TS_U2F (bit casts) and TS_RINT (round to nearest
 * even) in front of it. */
#define F8_BODY(NAME, MB, EMASK, BIAS, DEC_SPECIAL, SUBSCALE, NANC, OVF, OVFC, MINN, ENCSCALE)                                    \
    "TS_Q float ts_" NAME "_to_f32(TS_B bw) {\n"                                                                                 \
    "  const uint b = TS_U(bw), s = (b & 0x80u) << 24, e = (b >> " #MB ") & " #EMASK "u, m = b & ((1u << " #MB ") - 1u);\n"     \
    DEC_SPECIAL                                                                                                                    \
    "  if (e == 0u) { const float f = TS_FL(m) * " SUBSCALE "; return s != 0u ? -f : f; }\n"                                     \
    "  return TS_U2F(s | ((e + " #BIAS "u) << 23) | (m << (23 - " #MB ")));\n"                                                   \
    "}\n"                                                                                                                         \
    "TS_Q TS_B ts_f32_to_" NAME "(float f) {\n"                                                                                  \
    "  const uint x = TS_F2U(f), s = (x >> 24) & 0x80u, a = x & 0x7fffffffu;\n"                                                 \
    "  if (a > 0x7f800000u) return TS_BYTE(s | " NANC "u);\n"                                                                   \
    "  if (a >= " OVF "u) return TS_BYTE(s | " OVFC "u);\n"                                                                     \
    "  if (a < " MINN "u) return TS_BYTE(s | TS_U(TS_RINT(TS_U2F(a) * " ENCSCALE ")));\n"                                       \
    "  const uint r = (a + ((1u << (22 - " #MB ")) - 1u) + ((a >> (23 - " #MB ")) & 1u)) >> (23 - " #MB ");\n"                    \
    "  return TS_BYTE(s | (r - (" #BIAS "u << " #MB ")));\n"                                                                     \
    "}\n"

#define F8_HELPERS                                                                                                                 \
    F8_BODY("e4m3", 3, 15, 120, "  if ((b & 0x7fu) == 0x7fu) return TS_U2F(s | 0x7fc00000u);\n", "0.001953125f", "0x7f",          \
            "0x43e80001", "0x7f", "0x3c800000", "512.0f")                                                                           \
    F8_BODY("e5m2", 2, 31, 112, "  if (e == 31u) return TS_U2F(s | 0x7f800000u | (m << 21));\n", "1.52587890625e-05f", "0x7e",      \
            "0x47700000", "0x7c", "0x38800000", "65536.0f")                                                                         \
    "#undef TS_Q\n#undef TS_B\n#undef TS_U\n#undef TS_BYTE\n#undef TS_F2U\n#undef TS_U2F\n#undef TS_RINT\n#undef TS_FL\n"

#define F8_C_CASTS "#define TS_B uchar\n#define TS_U(x) ((uint)(x))\n#define TS_BYTE(x) ((uchar)(x))\n#define TS_FL(x) ((float)(x))\n"
static const char f8_opencl[] = "#define TS_Q inline\n" F8_C_CASTS "#define TS_F2U(x) as_uint(x)\n#define TS_U2F(x) as_float(x)\n"
                                "#define TS_RINT(x) rint(x)\n" F8_HELPERS;
static const char f8_cuda[] = "#define TS_Q static __device__ __forceinline__\n" F8_C_CASTS "#define TS_F2U(x) __float_as_uint(x)\n"
                              "#define TS_U2F(x) __uint_as_float(x)\n#define TS_RINT(x) rintf(x)\n" F8_HELPERS;
static const char f8_glsl[] = "#define TS_Q\n#define TS_B uint8_t\n#define TS_U(x) uint(x)\n#define TS_FL(x) float(x)\n#define TS_BYTE(x) uint8_t(x)\n"
                              "#define TS_F2U(x) floatBitsToUint(x)\n#define TS_U2F(x) uintBitsToFloat(x)\n#define TS_RINT(x) roundEven(x)\n"
                              F8_HELPERS;

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
