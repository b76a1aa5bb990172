/* cg_random.c: counter-based random numbers (rand, randint): Philox
 * 4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy
 * as 1, 2, 3", SC'11), the same function as the reference executor's
 * ts__philox4x32_10, so every backend gives the same bits. The helper is
 * emitted once, in front of the kernel, when the kernel uses it
 * (ts__cg_random_prelude); each target spells only the 32x32 -> high 32
 * multiply and the function qualifier differently.
 *
 * Sections: the helper per target; the op. */
#include "cg.h"

/* ---------------------------------------------------------------- the helper per target */

/* ROUNDS: what precedes the round loop (CUDA/HIP keep it rolled: unrolled
 * ten rounds per element of eight elements a thread took dropout from 58
 * to 77 registers on sm_90, past the elementwise budget of 64). */
#define PHILOX_BODY(ROUNDS)                                                             \
    "  uint c2 = 0u, c3 = 0u;\n"                                                        \
    ROUNDS "  for (int r = 0; r < 10; r++) {\n"                                         \
    "    const uint h0 = TS_MULHI(0xD2511F53u, c0), l0 = 0xD2511F53u * c0;\n"            \
    "    const uint h1 = TS_MULHI(0xCD9E8D57u, c2), l1 = 0xCD9E8D57u * c2;\n"            \
    "    c0 = h1 ^ c1 ^ k0; c1 = l1; c2 = h0 ^ c3 ^ k1; c3 = l0;\n"                       \
    "    k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;\n"                                         \
    "  }\n"                                                                             \
    "  return c0;\n"                                                                    \
    "}\n"

static const char philox_opencl[] = "#define TS_MULHI(a, b) mul_hi((uint)(a), (uint)(b))\n"
                                    "static inline uint ts_philox(uint c0, uint c1, uint k0, uint k1) {\n" PHILOX_BODY("");
static const char philox_cuda[] = "#define TS_MULHI(a, b) __umulhi((a), (b))\n"
                                  "static __device__ __forceinline__ uint ts_philox(uint c0, uint c1, uint k0, uint k1) {\n" PHILOX_BODY("  #pragma unroll 1\n");
static const char philox_glsl[] = "uint TS_MULHI(uint a, uint b) { uint hi, lo; umulExtended(a, b, hi, lo); return hi; }\n"
                                  "uint ts_philox(uint c0, uint c1, uint k0, uint k1) {\n" PHILOX_BODY("");

void ts__cg_random_prelude(const cg *g, ts__sb *sb) {
    switch (g->d->id) {
    case TS_DIALECT_GLSL: ts__sb_puts(sb, philox_glsl); break;
    case TS_DIALECT_CUDA:
    case TS_DIALECT_HIP: ts__sb_puts(sb, philox_cuda); break;
    default: ts__sb_puts(sb, philox_opencl); break;
    }
}

/* ---------------------------------------------------------------- the op */

/* The low and high 32-bit words of 64-bit integer expression x. Targets
 * whose 64-bit type is a 32-bit int (our GLSL) sign-extend. */
static void words(const cg *g, const char *x, char *lo, char *hi, size_t n) {
    char t[256];
    snprintf(t, sizeof t, "(%s)", x);
    snprintf(lo, n, "%s", cx(g, "uint", t));
    if (strcmp(g->d->i64, "int") == 0) snprintf(hi, n, "((%s) < 0 ? 0xFFFFFFFFu : 0u)", x);
    else {
        char w[320];
        snprintf(w, sizeof w, "(%s >> 32)", cx(g, g->d->i64, t));
        snprintf(hi, n, "%s", cx(g, "uint", w));
    }
}

void ts__cg_emit_rand(cg *g, const ts__op *op) {
    ts_val res = op->result;
    const ts__value *rv = &g->ir->values[res];
    g->rand = 1;
    ts__cg_declare(g, res);
    layout L;
    layout_of(g, res, &L);
    char sv[64], slo[400], shi[400];
    snprintf(sv, sizeof sv, "%s[0]", vname(op->in[0]));
    words(g, sv, slo, shi, sizeof slo);
    ts__cg_elem_loop_begin(g, &L, "j");
    /* the element's row-major global index over the tiles' extents */
    char gi[1024];
    size_t k = (size_t)snprintf(gi, sizeof gi, "%s", cx(g, g->d->i64, "0"));
    for (int d = 0; d < rv->rank && k < sizeof gi; d++) {
        if (rv->dims[d] == TS_NONE) continue; /* a dim of 1: index 0, extent 1 */
        const char *tn = g->ir->tiles[rv->dims[d]].name;
        char rest[512] = "";
        size_t q = 0;
        for (int e = d + 1; e < rv->rank && q < sizeof rest; e++)
            if (rv->dims[e] != TS_NONE) q += (size_t)snprintf(rest + q, sizeof rest - q, " * x_%s", g->ir->tiles[rv->dims[e]].name);
        k += (size_t)snprintf(gi + k, sizeof gi - k, " + (b_%s + e%d)%s", tn, d, rest);
    }
    line(g, "const %s gi_ = %s;", g->d->i64, gi);
    char ilo[400], ihi[400];
    words(g, "gi_", ilo, ihi, sizeof ilo);
    line(g, "const uint rr_ = ts_philox(%s, %s, %s, %s);", ilo, ihi, slo, shi);
    if (op->sub) line(g, "%s[j] = %s;", vname(res), cx(g, "int", "rr_"));
    else {
        char f[64];
        snprintf(f, sizeof f, "%s", cx(g, "float", "(rr_ >> 8)"));
        line(g, "%s[j] = %s * (1.0f / 16777216.0f);", vname(res), f);
    }
    ts__cg_elem_loop_end(g);
}
