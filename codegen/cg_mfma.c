/* cg_mfma.c: dot on AMD matrix cores (MFMA), written once at wavefront level.
 *
 * The matrix-core primitives are small leaves, defined by the prelude this
 * file adds to the kernel (ts__cg_mfma_prelude):
 *   TS_MFMA_16X16X16_{F16,BF16}(c, a, b)  c = A B + c on one 16x16 tile,
 *       16 deep, f32 accumulation: v_mfma_f32_16x16x16f16 and
 *       v_mfma_f32_16x16x16bf16_1k (gfx90a, gfx94x); bf16 on gfx908, which
 *       has no _1k form, as two v_mfma_f32_16x16x8bf16 (see the prelude)
 *   TS_COPY4H(dst, src)  4 halfs (8 bytes) global -> local
 *   TS_MFMA_LD4[S]       4 halfs of a fragment from local memory
 *                        (contiguous, or S: `stride` apart)
 * HIP defines them with the compiler's MFMA builtins, under
 * `#if TS_MFMA`: the source is compiled later for whatever arch the device
 * has (the emitter does not know it), and only CDNA (gfx908, gfx90a,
 * gfx94x) has MFMA. (gfx908 and gfx90a are compile-checked by
 * tests/test_mfma.c; gfx94x is in the guard untested: ROCm 5.2's hiprtc
 * does not know it.) RDNA (gfx10xx, gfx11xx: wave32, no MFMA; gfx11's WMMA
 * is not lowered) compiles the `#else` branch, today's register-blocked
 * dot. OpenCL (tensor_cores=2 there, a test form) defines them as
 * work-group code where 64 consecutive work-items are a simulated
 * wavefront that exchanges fragments through local memory, following a lane
 * table written separately from this lowering, from AMD's documented
 * operand layout. So PoCL runs the very lowering HIP runs, with only the
 * instruction replaced, against the independent references.
 *
 * Sections: when the path applies; preludes; the lowering.
 *
 * The lowering, per dot (one k block):
 *   1. the accumulator (or zeros) goes to a f32 tile Cs[Mp][Np] in ts_lf;
 *   2. A and B go to 16-bit tiles in local memory, each stored with its
 *      contiguous global dim inner (W halfs a row: that dim padded to 16,
 *      plus 4 halfs against bank conflicts); loads read only by the dot are
 *      copied 8 bytes at a time where the chunk is inside the tensor and
 *      aligned (element copies with zero fill at the edges); other operands
 *      are written from registers, rounded to f16/bf16, k inner;
 *   3. each wavefront takes 16x16 output tiles round robin: C fragments from
 *      Cs, per 16-deep k step the A and B fragments from local memory and
 *      one MFMA, fragments back to Cs;
 *   4. the result layout's registers are read from Cs.
 * Padded extents: Mp, Np, Kp are the block sizes rounded up to 16.
 *
 * The fragment layout this lowering assumes (lane l of 64, element i of 4),
 * as AMD documents it for v_mfma_f32_16x16x16f16 / _bf16_1k (CDNA2 ISA,
 * "Matrix fused multiply-add"; the AMD Matrix Instruction Calculator):
 *   A (16 x 16, m x k): row l % 16, k 4 (l / 16) + i
 *   B (16 x 16, k x n): k 4 (l / 16) + i, column l % 16
 *   C, D (16 x 16 f32): row 4 (l / 16) + i, column l % 16
 * The emulation's table is its own transcription of the same figures. */
#include "cg.h"

/* ---------------------------------------------------------------- when the path applies */

static int is16(ts_dtype d) { return d == TS_F16 || d == TS_BF16; }

#define TS__WAVE 64 /* lanes of a CDNA wavefront */

int ts__cg_mfma_selected(const cg *g) {
    int tc = g->plan->tensor_cores;
    if (g->d->id == TS_DIALECT_HIP) return tc != 0; /* default on; tensor_cores=0 turns it off */
    if (g->d->id == TS_DIALECT_OPENCL) return tc == 2; /* the emulation, when asked */
    return 0;
}

static int shape_ok(const cg *g, const ts__op *op) {
    const ts__value *av = &g->ir->values[op->in[0]], *bv = &g->ir->values[op->in[1]];
    if (!is16(av->dtype) || av->dtype != bv->dtype) return 0; /* f32 has MFMA (xf32 aside) but is not lowered: f32 dots keep today's path */
    if (av->rank != 2 || bv->rank != 2) return 0;
    for (int d = 0; d < 2; d++)
        if (av->dims[d] == TS_NONE || bv->dims[d] == TS_NONE) return 0;
    return 1;
}

int ts__cg_mfma_applies(const cg *g, const ts__op *op) {
    if (!ts__cg_mfma_selected(g) || !shape_ok(g, op)) return 0;
    return g->T % TS__WAVE == 0; /* whole wavefronts only (warps=N sets 32 x N threads: N even) */
}

/* Where the MFMA path is asked for (tensor_cores=1 or 2 on HIP, 2 on
 * OpenCL) for an f16/bf16 dot it cannot take, the source says why. */
void ts__cg_mfma_explain(cg *g, const ts__op *op) {
    if (g->plan->tensor_cores < 1 || !is16(g->ir->values[op->in[0]].dtype)) return;
    const char *why = NULL;
    if (!shape_ok(g, op)) why = "the dot is not a 2-d f16 x f16 or bf16 x bf16 product";
    else if (g->T % TS__WAVE) why = "the program is not whole 64-lane wavefronts (set warps=N, N even); the register-blocked dot runs";
    if (why) line(g, "/* tensor_cores=%d (MFMA) not supported here: %s */", g->plan->tensor_cores, why);
}

/* ---------------------------------------------------------------- preludes */

static const char mfma_hip[] =
    "/* MFMA dot leaves (codegen/cg_mfma.c). Only CDNA has MFMA; elsewhere the\n"
    " * dots compile their #else branch (the register-blocked dot). */\n"
    "#if defined(__gfx908__) || defined(__gfx90a__) || defined(__gfx940__) || defined(__gfx941__) || defined(__gfx942__)\n"
    "#define TS_MFMA 1\n"
    "#define TS_LPTR\n"
    "#define TS_GPTR\n"
    "#define TS_ALIGNED8(p) ((((unsigned long long)(p)) & 7ull) == 0)\n"
    "typedef float ts_mfma_f4 __attribute__((ext_vector_type(4)));\n"
    "typedef _Float16 ts_mfma_h4 __attribute__((ext_vector_type(4)));\n"
    "typedef short ts_mfma_s4 __attribute__((ext_vector_type(4)));\n"
    "typedef short ts_mfma_s2 __attribute__((ext_vector_type(2)));\n"
    "static __device__ __forceinline__ ushort ts_mfma_bits_f16(float f) { return ts_f32_to_f16(f); }\n"
    "#define TS_COPY4H(dst, src) (*(ts_mfma_s4 *)(dst) = *(const ts_mfma_s4 *)(src))\n"
    "static __device__ __forceinline__ void TS_MFMA_LD4(ushort *f, const ushort *p) {\n"
    "  const ts_mfma_s4 v = *(const ts_mfma_s4 *)p;\n"
    "  f[0] = (ushort)v[0]; f[1] = (ushort)v[1]; f[2] = (ushort)v[2]; f[3] = (ushort)v[3];\n"
    "}\n"
    "static __device__ __forceinline__ void TS_MFMA_LD4S(ushort *f, const ushort *p, int s) { f[0] = p[0]; f[1] = p[s]; f[2] = p[2 * s]; f[3] = p[3 * s]; }\n"
    "#define TS__MFMA_IN(a, b, c)                                                   \\\n"
    "  const ts_mfma_s4 va_ = {(short)a[0], (short)a[1], (short)a[2], (short)a[3]}; \\\n"
    "  const ts_mfma_s4 vb_ = {(short)b[0], (short)b[1], (short)b[2], (short)b[3]}; \\\n"
    "  ts_mfma_f4 acc_ = {c[0], c[1], c[2], c[3]}\n"
    "#define TS__MFMA_OUT(c) (c[0] = acc_[0], c[1] = acc_[1], c[2] = acc_[2], c[3] = acc_[3])\n"
    "static __device__ __forceinline__ void TS_MFMA_16X16X16_F16(float *c, const ushort *a, const ushort *b) {\n"
    "  TS__MFMA_IN(a, b, c);\n"
    "  acc_ = __builtin_amdgcn_mfma_f32_16x16x16f16(__builtin_bit_cast(ts_mfma_h4, va_), __builtin_bit_cast(ts_mfma_h4, vb_), acc_, 0, 0, 0);\n"
    "  TS__MFMA_OUT(c);\n"
    "}\n"
    "static __device__ __forceinline__ void TS_MFMA_16X16X16_BF16(float *c, const ushort *a, const ushort *b) {\n"
    "  TS__MFMA_IN(a, b, c);\n"
    "#if defined(__gfx908__)\n"
    "  /* no bf16_1k on gfx908: v_mfma_f32_16x16x8bf16 reads k 2 (l / 16) + i from 2 halfs a lane;\n"
    "   * fed elements 0, 1 and then 2, 3 it sums k 4 (l / 16) + {0, 1}, then + {2, 3}:\n"
    "   * the same permutation of k on A and B, so the same product */\n"
    "  acc_ = __builtin_amdgcn_mfma_f32_16x16x8bf16(va_.xy, vb_.xy, acc_, 0, 0, 0);\n"
    "  acc_ = __builtin_amdgcn_mfma_f32_16x16x8bf16(va_.zw, vb_.zw, acc_, 0, 0, 0);\n"
    "#else\n"
    "  acc_ = __builtin_amdgcn_mfma_f32_16x16x16bf16_1k(va_, vb_, acc_, 0, 0, 0);\n"
    "#endif\n"
    "  TS__MFMA_OUT(c);\n"
    "}\n"
    "#define TS_WAVE_SCRATCH(f)\n"
    "#else\n"
    "#define TS_MFMA 0\n"
    "#endif\n";

/* The emulation. Its lane table is transcribed from AMD's description of
 * v_mfma_f32_16x16x16f16 (CDNA2 ISA guide, "Matrix fused multiply-add"
 * operand layout; the AMD Matrix Instruction Calculator's register layout
 * for this instruction), not shared with the lowering: in a wavefront of 64
 * lanes, with the lane split as l = 16 g + t (g = l / 16 the lane group,
 * t = l % 16),
 *   A[m][k] (16 x 16): lane l, element i holds m = t, k = 4 g + i;
 *   B[k][n] (16 x 16): lane l, element i holds k = 4 g + i, n = t;
 *   D[m][n] (16 x 16 f32), and C: lane l, element i holds m = 4 g + i, n = t.
 * Every work-item of the group calls it (the lowering keeps the trip counts
 * uniform): it contains a barrier. */
static const char mfma_emulated[] =
    "/* MFMA dot leaves (codegen/cg_mfma.c), emulated: 64 work-items are a wavefront */\n"
    "#define TS_LPTR __local\n"
    "#define TS_GPTR __global\n"
    "#define TS_ALIGNED8(p) ((((ulong)(p)) & 7ul) == 0)\n"
    "inline ushort ts_mfma_bits_f16(float f) { ushort h; vstore_half_rte(f, 0, (half *)&h); return h; }\n"
    "#define TS_COPY4H(dst, src) vstore4(vload4(0, (src)), 0, (dst))\n"
    "inline void TS_MFMA_LD4(ushort *f, __local const ushort *p) { for (int i = 0; i < 4; i++) f[i] = p[i]; }\n"
    "inline void TS_MFMA_LD4S(ushort *f, __local const ushort *p, int s) { for (int i = 0; i < 4; i++) f[i] = p[i * s]; }\n"
    "/* the lane table: (row, column) of element i of lane l */\n"
    "inline int ts_emu_mfma_a_m(int l, int i) { return l % 16; }\n"
    "inline int ts_emu_mfma_a_k(int l, int i) { return 4 * (l / 16) + i; }\n"
    "inline int ts_emu_mfma_b_k(int l, int i) { return 4 * (l / 16) + i; }\n"
    "inline int ts_emu_mfma_b_n(int l, int i) { return l % 16; }\n"
    "inline int ts_emu_mfma_d_m(int l, int i) { return 4 * (l / 16) + i; }\n"
    "inline int ts_emu_mfma_d_n(int l, int i) { return l % 16; }\n"
    "inline float ts_emu_mfma_in(ushort x, int bf16) { return bf16 ? ts_bf16_to_f32(x) : vload_half(0, (const half *)&x); }\n"
    "/* One barrier per call: successive calls alternate between two buffers\n"
    " * (*k counts the calls), so a call's writes cannot overtake the previous\n"
    " * call's reads of the same buffer (a barrier lies between). */\n"
    "void ts_emu_mfma_16x16x16(float *c, const ushort *a, const ushort *b, int bf16, __local float *wsf, int *k, int lane) {\n"
    "  __local float *ws = wsf + 512 * ((*k)++ & 1);\n"
    "  for (int i = 0; i < 4; i++) {\n"
    "    ws[ts_emu_mfma_a_m(lane, i) * 16 + ts_emu_mfma_a_k(lane, i)] = ts_emu_mfma_in(a[i], bf16);\n"
    "    ws[256 + ts_emu_mfma_b_k(lane, i) * 16 + ts_emu_mfma_b_n(lane, i)] = ts_emu_mfma_in(b[i], bf16);\n"
    "  }\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  float o[4];\n"
    "  for (int i = 0; i < 4; i++) {\n"
    "    const int m = ts_emu_mfma_d_m(lane, i), n = ts_emu_mfma_d_n(lane, i);\n"
    "    float s = c[i];\n"
    "    for (int kk = 0; kk < 16; kk++) s = fma(ws[m * 16 + kk], ws[256 + kk * 16 + n], s);\n"
    "    o[i] = s;\n"
    "  }\n"
    "  for (int i = 0; i < 4; i++) c[i] = o[i];\n"
    "}\n"
    "#define TS_MFMA_16X16X16_F16(c, a, b) ts_emu_mfma_16x16x16((c), (a), (b), 0, ts_wsf_, &ts_wsk_, lane_)\n"
    "#define TS_MFMA_16X16X16_BF16(c, a, b) ts_emu_mfma_16x16x16((c), (a), (b), 1, ts_wsf_, &ts_wsk_, lane_)\n"
    "/* the simulated wavefront's exchange buffers */\n"
    "#define TS_WAVE_SCRATCH(f) __local float *ts_wsf_ = (f); int ts_wsk_ = 0;\n";

static int emulated(const cg *g) { return g->d->id == TS_DIALECT_OPENCL; }

void ts__cg_mfma_prelude(const cg *g, ts__sb *sb) { ts__sb_puts(sb, emulated(g) ? mfma_emulated : mfma_hip); }

/* ---------------------------------------------------------------- the lowering */

#define TS__MFMA_SCRATCH_F 1024 /* per simulated wavefront: A and B 16x16 floats, twice */
#define TS__MFMA_PAD 4          /* halfs past each local tile row: 8 bytes keep the rows' alignment, shift their banks */

static int64_t pad16(int64_t x) { return x < 16 ? 16 : (x + 15) / 16 * 16; }

typedef struct mfma_operand {
    ts_val v;
    const ts__op *ld; /* load read directly from global memory, or NULL (registers) */
    int tr;           /* the load is under a transpose */
    int kouter;       /* local tile stored [k][m or n] */
    int64_t rows, W;  /* local tile: rows x W halfs (W: the padded row) */
    int64_t base;     /* offset in hs_ (halfs) */
    int64_t ob;       /* block of the m or n dim */
} mfma_operand;

/* Copies a load read only by the dot straight into its local tile
 * (ts__cg_chunk_copy), 8 bytes (4 halfs) a chunk into rows padded by
 * TS__MFMA_PAD. */
static void copy_from_global(cg *g, const mfma_operand *o, int64_t B0, int64_t B1) {
    char pre[16], dst[160];
    snprintf(pre, sizeof pre, "mq%d_", (int)o->v);
    snprintf(dst, sizeof dst, "hs_ + %lld + r_ * %lld + c4_", (long long)o->base, (long long)o->W);
    ts__cg_chunks c = {.ld = o->ld, .pre = pre, .rows = o->rows, .nch = (o->W - TS__MFMA_PAD) / 4, .cw = 4, .B0 = B0, .B1 = B1, .dst = dst,
                       .aligned = "TS_ALIGNED8", .copy = "TS_COPY4H"};
    ts__cg_chunk_copy(g, &c);
}

/* Writes an operand held in registers (any layout) into its local tile,
 * k inner, rounded to the dot's 16-bit type; elements past the k extent
 * and the padding are zero. kaxis: the operand's k dim. */
static void copy_from_registers(cg *g, const mfma_operand *o, int kaxis, ts_dtype dt, int64_t BO, int64_t BK, const char *kname) {
    int64_t used = o->W - TS__MFMA_PAD;
    if (o->rows > BO || used > BK) { /* padding: written by no register */
        line(g, "for (int i_ = tid; i_ < %lld; i_ += %d) {", (long long)(o->rows * used), g->T);
        line(g, "  const int r_ = i_ / %lld, c_ = i_ %% %lld;", (long long)used, (long long)used);
        line(g, "  if (r_ >= %lld || c_ >= %lld) hs_[%lld + r_ * %lld + c_] = (ushort)0;", (long long)BO, (long long)BK, (long long)o->base, (long long)o->W);
        line(g, "}");
    }
    layout Lv;
    layout_of(g, o->v, &Lv);
    ts__cg_elem_loop_begin(g, &Lv, "j");
    char vj[48];
    snprintf(vj, sizeof vj, "%s[j]", vname(o->v));
    line(g, "if (own_) hs_[%lld + e%d * %lld + e%d] = (b_%s + e%d < x_%s) ? %s(%s) : (ushort)0;", (long long)o->base, 1 - kaxis, (long long)o->W, kaxis, kname,
         kaxis, kname, dt == TS_BF16 ? "ts_f32_to_bf16" : "ts_mfma_bits_f16", vj);
    ts__cg_elem_loop_end(g);
}

/* The fragment read of one operand for the 16x16x16 step at (o0 = m0_ or
 * n0_, kk_ * 16): lane_ holds row/column o0 + lane_ % 16 and k
 * 4 (lane_ / 16) + i, i = 0..3; four contiguous halfs where the tile is
 * k inner, else four W apart. */
static void fragment_read(cg *g, const mfma_operand *o, const char *frag, const char *o0) {
    if (o->kouter)
        line(g, "TS_MFMA_LD4S(%s, hs_ + %lld + (kk_ * 16 + 4 * (lane_ >> 4)) * %lld + %s + (lane_ & 15), %lld);", frag, (long long)o->base, (long long)o->W, o0,
             (long long)o->W);
    else line(g, "TS_MFMA_LD4(%s, hs_ + %lld + (%s + (lane_ & 15)) * %lld + kk_ * 16 + 4 * (lane_ >> 4));", frag, (long long)o->base, o0, (long long)o->W);
}

void ts__cg_emit_dot_mfma(cg *g, const ts__op *op) {
    ts_val a = op->in[0], b = op->in[1], acc = op->in[2], res = op->result;
    const ts__value *av = &g->ir->values[a];
    ts_dtype dt = av->dtype;
    int64_t BM = g->plan->block[av->dims[0]], BK = g->plan->block[av->dims[1]];
    int64_t BN = g->plan->block[g->ir->values[b].dims[1]];
    int64_t Mp = pad16(BM), Np = pad16(BN), Kp = pad16(BK);
    const ts__tile *kt = &g->ir->tiles[av->dims[1]];
    int W = g->T / TS__WAVE;
    g->mfma = 1;
    mfma_operand o[2];
    memset(o, 0, sizeof o);
    for (int w = 0; w < 2; w++) {
        mfma_operand *x = &o[w];
        x->v = w ? b : a;
        x->ob = w ? BN : BM;
        x->ld = ts__cg_direct_load(g, x->v, &x->tr);
        if (x->ld && g->ir->params[x->ld->param].dtype != dt) { /* never: a load's value keeps its tensor's dtype */
            cg_fail(g, TS_ERR_UNSUPPORTED, "dot: operand load of dtype %s feeds a %s dot", ts_dtype_name(g->ir->params[x->ld->param].dtype), ts_dtype_name(dt));
            return;
        }
        /* A's load is [m][k] unless transposed, B's [k][n] */
        x->kouter = x->ld ? (w ? !x->tr : x->tr) : 0;
        int64_t op_ = pad16(x->ob);
        x->rows = x->kouter ? Kp : op_;
        x->W = (x->kouter ? op_ : Kp) + TS__MFMA_PAD;
    }
    o[0].base = 0;
    o[1].base = o[0].rows * o[0].W;
    int64_t cs = Mp * Np;                                   /* Cs floats */
    int64_t hs_floats = (o[1].base + o[1].rows * o[1].W + 1) / 2;
    int64_t scr = cs + hs_floats + (hs_floats & 1);         /* emulation scratch (floats) */
    ts__cg_need_local(g, TS_F32, scr + (emulated(g) ? W * TS__MFMA_SCRATCH_F : 0));
    layout L;
    layout_of(g, res, &L);
    if (!emulated(g)) line(g, "#if TS_MFMA");
    line(g, "/* dot on MFMA (16x16x16 %s): %d wavefronts, C %lldx%lld, k %lld (codegen/cg_mfma.c) */", dt == TS_BF16 ? "bf16" : "f16", W, (long long)Mp,
         (long long)Np, (long long)Kp);
    ts__cg_declare(g, res);
    line(g, "{");
    g->indent++;
    line(g, "TS_LPTR ushort *hs_ = (TS_LPTR ushort *)(ts_lf + %lld);", (long long)cs);
    line(g, "%s", g->d->barrier);
    /* 1. accumulator -> Cs */
    line(g, "for (int i_ = tid; i_ < %lld; i_ += %d) {", (long long)(Mp * Np), g->T);
    if (acc != TS_NONE) line(g, "  if (i_ / %lld >= %lld || i_ %% %lld >= %lld) ts_lf[i_] = 0.0f;", (long long)Np, (long long)BM, (long long)Np, (long long)BN);
    else line(g, "  ts_lf[i_] = 0.0f;");
    line(g, "}");
    if (acc != TS_NONE) {
        layout La;
        layout_of(g, acc, &La);
        ts__cg_elem_loop_begin(g, &La, "j");
        line(g, "if (own_) ts_lf[e0 * %lld + e1] = %s[j];", (long long)Np, vname(acc));
        ts__cg_elem_loop_end(g);
    }
    /* 2. operands -> local tiles */
    for (int w = 0; w < 2; w++) {
        mfma_operand *x = &o[w];
        if (x->ld) {
            int64_t B0 = x->kouter ? BK : x->ob, B1 = x->kouter ? x->ob : BK;
            copy_from_global(g, x, B0, B1);
        } else copy_from_registers(g, x, w ? 0 : 1, dt, x->ob, BK, kt->name);
    }
    line(g, "%s", g->d->barrier);
    /* 3. wavefronts over 16x16 tiles of C */
    int64_t nun = Np / 16, nu = (Mp / 16) * nun;
    line(g, "{");
    g->indent++;
    line(g, "const int lane_ = tid %% %d, wave_ = tid / %d;", TS__WAVE, TS__WAVE);
    if (emulated(g)) line(g, "TS_WAVE_SCRATCH(ts_lf + %lld + wave_ * %d)", (long long)scr, TS__MFMA_SCRATCH_F);
    {
        char kb[32], mn[160];
        snprintf(kb, sizeof kb, "%lld", (long long)BK);
        snprintf(mn, sizeof mn, "min(%s, x_%s - b_%s)", cx(g, g->d->i64, kb), kt->name, kt->name);
        line(g, "const int ks_ = (%s + 15) / 16;", cx(g, "int", mn));
    }
    line(g, "for (int u0_ = 0; u0_ < %lld; u0_ += %d) {", (long long)nu, W);
    g->indent++;
    line(g, "const int uu_ = u0_ + wave_, u_ = uu_ < %lld ? uu_ : %lld;", (long long)nu, (long long)(nu - 1));
    line(g, "const int m0_ = (u_ / %lld) * 16, n0_ = (u_ %% %lld) * 16;", (long long)nun, (long long)nun);
    /* the lowering's own reading of the C fragment: element i of lane l is
     * row 4 (l / 16) + i, column l % 16 */
    line(g, "float c_[4];");
    line(g, "%s", g->d->unroll);
    line(g, "for (int i = 0; i < 4; i++) c_[i] = ts_lf[(m0_ + 4 * (lane_ >> 4) + i) * %lld + n0_ + (lane_ & 15)];", (long long)Np);
    line(g, "for (int kk_ = 0; kk_ < ks_; kk_++) {");
    g->indent++;
    line(g, "ushort fa_[4], fb_[4];");
    fragment_read(g, &o[0], "fa_", "m0_");
    fragment_read(g, &o[1], "fb_", "n0_");
    line(g, "%s(c_, fa_, fb_);", dt == TS_BF16 ? "TS_MFMA_16X16X16_BF16" : "TS_MFMA_16X16X16_F16");
    g->indent--;
    line(g, "}");
    line(g, "if (uu_ < %lld) {", (long long)nu);
    line(g, "  %s", g->d->unroll);
    line(g, "  for (int i = 0; i < 4; i++) ts_lf[(m0_ + 4 * (lane_ >> 4) + i) * %lld + n0_ + (lane_ & 15)] = c_[i];", (long long)Np);
    line(g, "}");
    g->indent--;
    line(g, "}");
    g->indent--;
    line(g, "}");
    line(g, "%s", g->d->barrier);
    /* 4. Cs -> the result layout */
    ts__cg_elem_loop_begin(g, &L, "j");
    line(g, "%s[j] = ok_ ? ts_lf[e0 * %lld + e1] : 0.0f;", vname(res), (long long)Np);
    ts__cg_elem_loop_end(g);
    g->indent--;
    line(g, "}");
    if (!emulated(g)) {
        line(g, "#else");
        line(g, "/* no MFMA on this arch (RDNA: gfx10xx/gfx11xx are wave32 without matrix cores; older GCN): the register-blocked dot */");
    }
}

/* HIP: the MFMA branch above is under #if TS_MFMA, and the caller emits the
 * ordinary dot as its #else branch, then this. */
int ts__cg_mfma_guarded(const cg *g) { return !emulated(g); }
