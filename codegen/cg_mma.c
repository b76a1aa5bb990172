/* cg_mma.c: dot on tensor cores, written once at warp level.
 *
 * The tensor-core primitives are small dialect leaves, defined by the
 * prelude this file adds to the kernel (ts__cg_mma_prelude):
 *   TS_CP_ASYNC16(dst, src)   16 bytes global -> local (cp.async.cg)
 *   TS_CP_ASYNC_COMMIT, TS_CP_ASYNC_WAIT_GROUP(n), TS_CP_ASYNC_WAIT
 *                             cp.async.commit_group / wait_group n / wait_all
 *                             (TS_CP_ASYNC_STATE(n): the emulation's queue)
 *   TS_LDMATRIX_X4[_TRANS]    four 8x8 b16 matrices from local memory into
 *                             a warp's fragments (ldmatrix.sync...x4[.trans])
 *   TS_MMA_16816_{F16,BF16}   D = A B + C, m16n8k16, f32 accumulation
 *                             (mma.sync.aligned.m16n8k16.row.col.f32...)
 * CUDA defines them with inline PTX. OpenCL (tensor_cores=1 there, a test
 * form: OpenCL C has no tensor-core instructions) defines them as
 * work-group code where 32 consecutive work-items are a simulated warp that
 * exchanges fragments through local memory, following a lane table written
 * separately from this lowering, from the PTX ISA's fragment figures. So
 * PoCL runs the very lowering CUDA runs, with only the instructions
 * replaced, against the independent references.
 *
 * Sections: when the path applies; preludes; the lowering (a dot's tiles;
 * the cp.async pipeline and the accumulator in fragments across a k loop,
 * hooked into emit_c.c's LOOP_BEGIN / LOOP_END; the dot).
 *
 * The lowering, per dot (one k block):
 *   1. the accumulator (or zeros) goes to a f32 tile Cs[Mp][Np] in ts_lf;
 *   2. A and B go to 16-bit tiles in local memory: loads read only by the
 *      dot are copied from global memory in 16-byte cp.async chunks where
 *      the chunk is inside the tensor and aligned (element copies with zero
 *      fill at the edges), other operands are written from registers,
 *      rounded to f16/bf16. A tile is stored with its contiguous global
 *      dimension inner; 16-byte chunks are XOR-swizzled by row (TS_SWZ) so
 *      that the 8 row addresses of an ldmatrix hit 8 different bank groups;
 *   3. each warp takes 16x16 output tiles round robin: C fragments from Cs,
 *      per 16-deep k step one ldmatrix.x4 of A, one of B (.trans where the
 *      tile is stored k-outer) and two mma.m16n8k16, fragments back to Cs;
 *   4. the result layout's registers are read from Cs.
 * In a k loop, step 2 may come from the pipeline's ring instead, and steps
 * 1, 3's Cs traffic and 4 may move out of the loop (C in fragments): see
 * "the cp.async pipeline" below.
 * Padded extents: Mp, Np, Kp are the block sizes rounded up to 16. */
#include "cg.h"

/* ---------------------------------------------------------------- when the path applies */

static int is16(ts_dtype d) { return d == TS_F16 || d == TS_BF16; }

int ts__cg_mma_applies(const cg *g, const ts__op *op) {
    int id = g->d->id;
    if (id != TS_DIALECT_CUDA && id != TS_DIALECT_OPENCL) return 0;
    int tc = g->plan->tensor_cores;
    if (tc == 0) return 0;
    if (tc < 0 && id != TS_DIALECT_CUDA) return 0; /* auto: on where the instructions exist */
    if (ts__cg_mfma_selected(g)) return 0;         /* OpenCL tensor_cores=2: the MFMA emulation (cg_mfma.c), no mma pipeline either */
    const ts__value *av = &g->ir->values[op->in[0]], *bv = &g->ir->values[op->in[1]];
    if (!is16(av->dtype) || av->dtype != bv->dtype) return 0; /* f32 would need tf32: not without asking */
    if (av->rank != 2 || bv->rank != 2) return 0;
    for (int d = 0; d < 2; d++)
        if (av->dims[d] == TS_NONE || bv->dims[d] == TS_NONE) return 0;
    if (g->T % 32) return 0; /* whole warps only (the warps knob sets 32 x warps threads) */
    return 1;
}

/* Where tensor_cores=1 is asked for an f16/bf16 dot the target cannot run
 * on tensor cores, the source says why; the ordinary dot follows. */
void ts__cg_mma_explain(cg *g, const ts__op *op) {
    if (g->plan->tensor_cores != 1 || !is16(g->ir->values[op->in[0]].dtype)) return;
    const char *why = NULL;
    switch (g->d->id) {
    case TS_DIALECT_GLSL:
        why = "GL_KHR_cooperative_matrix is not lowered (and lavapipe does not expose it); the register-blocked dot runs";
        break;
    case TS_DIALECT_HIP: break; /* the MFMA path (cg_mfma.c) takes HIP's dots and says why where it cannot */
    case TS_DIALECT_CUDA:
    case TS_DIALECT_OPENCL:
        if (g->T % 32) why = "the program is not whole warps (set warps=N); the register-blocked dot runs";
        break;
    default: why = "no tensor-core lowering for this target"; break;
    }
    if (why) line(g, "/* tensor_cores=1 not supported here: %s */", why);
}

/* ---------------------------------------------------------------- preludes */

static const char mma_common[] =
    "/* tensor-core dot leaves (codegen/cg_mma.c) */\n"
    "/* element (r, c) of a local tile W halfs wide: 16-byte chunk c/8 XOR-swizzled by row */\n"
    "#define TS_SWZ(r, c, W, SH) ((r) * (W) + (((((c) >> 3) ^ (((r) & 7) >> (SH)))) << 3) + ((c) & 7))\n";

static const char mma_cuda[] =
    "#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800\n"
    "#error \"tensor_cores=1 needs sm_80 or newer (mma.m16n8k16, ldmatrix, cp.async); use tensor_cores=0\"\n"
    "#endif\n"
    "#define TS_LPTR\n"
    "#define TS_GPTR\n"
    "#define TS_ALIGNED16(p) ((((unsigned long long)(p)) & 15ull) == 0)\n"
    "static __device__ __forceinline__ unsigned ts_smem_addr(const void *p) {\n"
    "  unsigned a; asm(\"{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }\" : \"=r\"(a) : \"l\"(p)); return a;\n"
    "}\n"
    "static __device__ __forceinline__ ushort ts_mma_bits_f16(float f) { return ts_f32_to_f16(f); }\n"
    "static __device__ __forceinline__ void TS_CP_ASYNC16(ushort *dst, const ushort *src) {\n"
    "  asm volatile(\"cp.async.cg.shared.global [%0], [%1], 16;\" :: \"r\"(ts_smem_addr(dst)), \"l\"(src) : \"memory\");\n"
    "}\n"
    "#define TS_CP_ASYNC_WAIT() asm volatile(\"cp.async.wait_all;\" ::: \"memory\")\n"
    "#define TS_CP_ASYNC_COMMIT() asm volatile(\"cp.async.commit_group;\" ::: \"memory\")\n"
    "#define TS_CP_ASYNC_WAIT_GROUP(n) asm volatile(\"cp.async.wait_group %0;\" :: \"n\"(n) : \"memory\")\n"
    "#define TS_CP_ASYNC_STATE(n)\n"
    "static __device__ __forceinline__ void TS_LDMATRIX_X4(uint *d, const ushort *hs, int off) {\n"
    "  asm volatile(\"ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\"\n"
    "               : \"=r\"(d[0]), \"=r\"(d[1]), \"=r\"(d[2]), \"=r\"(d[3]) : \"r\"(ts_smem_addr(hs + off)));\n"
    "}\n"
    "static __device__ __forceinline__ void TS_LDMATRIX_X4_TRANS(uint *d, const ushort *hs, int off) {\n"
    "  asm volatile(\"ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\"\n"
    "               : \"=r\"(d[0]), \"=r\"(d[1]), \"=r\"(d[2]), \"=r\"(d[3]) : \"r\"(ts_smem_addr(hs + off)));\n"
    "}\n"
    "#define TS__MMA16816(T)                                                                         \\\n"
    "  asm volatile(\"mma.sync.aligned.m16n8k16.row.col.f32.\" T \".\" T \".f32 {%0, %1, %2, %3}, \"      \\\n"
    "               \"{%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\"                              \\\n"
    "               : \"=f\"(d[0]), \"=f\"(d[1]), \"=f\"(d[2]), \"=f\"(d[3])                               \\\n"
    "               : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b[0]), \"r\"(b[1]),            \\\n"
    "                 \"f\"(c[0]), \"f\"(c[1]), \"f\"(c[2]), \"f\"(c[3]))\n"
    "static __device__ __forceinline__ void TS_MMA_16816_F16(float *d, const uint *a, const uint *b, const float *c) { TS__MMA16816(\"f16\"); }\n"
    "static __device__ __forceinline__ void TS_MMA_16816_BF16(float *d, const uint *a, const uint *b, const float *c) { TS__MMA16816(\"bf16\"); }\n"
    "#define TS_WARP_SCRATCH(i, f)\n";

/* The emulation. Its lane table is transcribed from the PTX ISA ("Matrix
 * fragments for mma.m16n8k16 with floating point type", "Warp-level matrix
 * load instruction: ldmatrix"), not shared with the lowering:
 *   A (16x16, row): a 32-bit register i of lane l holds two halves h = 0, 1
 *     (low half first) of row groupID + 8 * (i % 2), column
 *     2 * threadID_in_group + h + 8 * (i / 2)      (groupID = l / 4,
 *     threadID_in_group = l % 4)
 *   B (16x8, col): register i, half h: row (k) 2 * threadID_in_group + h + 8 i,
 *     column (n) groupID
 *   C, D (16x8 f32): element i: row groupID + 8 * (i / 2), column
 *     2 * threadID_in_group + i % 2
 *   ldmatrix .x4: lane l gives the address of row l % 8 of matrix l / 8;
 *     register m of lane l gets row l / 4, columns 2 (l % 4) and +1 of
 *     matrix m; with .trans, column l / 4, rows 2 (l % 4) and +1.
 * Every work-item of the group calls these (the lowering keeps their trip
 * counts uniform): they contain barriers. */
static const char mma_emulated[] =
    "#define TS_LPTR __local\n"
    "#define TS_GPTR __global\n"
    "#define TS_ALIGNED16(p) ((((ulong)(p)) & 15ul) == 0)\n"
    "inline ushort ts_mma_bits_f16(float f) { ushort h; vstore_half_rte(f, 0, (half *)&h); return h; }\n"
    "/* cp.async: a copy is queued, not made, until a wait_group (or wait_all)\n"
    " * completes its group, so a missing wait reads the buffer's old contents.\n"
    " * Each work-item keeps its own queue (n entries, sized by the lowering;\n"
    " * a full queue copies at once); groups are counted as in PTX: commit\n"
    " * closes the open group, wait_group(n) completes all but the newest n\n"
    " * committed groups, wait_all commits and completes everything. */\n"
    "#define TS_CP_ASYNC_STATE(n) TS_LPTR ushort *ts_cpd_[n]; const TS_GPTR ushort *ts_cps_[n]; int ts_cpg_[n]; int ts_cpn_ = 0, ts_cpo_ = 0;\\\n"
    "  const int ts_cpcap_ = (n);\n"
    "#define TS_CP_ASYNC16(dst, src) do {                                                            \\\n"
    "    if (ts_cpn_ < ts_cpcap_) { ts_cpd_[ts_cpn_] = (dst); ts_cps_[ts_cpn_] = (src); ts_cpg_[ts_cpn_++] = ts_cpo_; } \\\n"
    "    else vstore8(vload8(0, (src)), 0, (dst));                                                    \\\n"
    "  } while (0)\n"
    "#define TS_CP_ASYNC_COMMIT() (ts_cpo_++)\n"
    "#define TS_CP_ASYNC_WAIT_GROUP(n) do {                                                          \\\n"
    "    const int upto_ = ts_cpo_ - (n);                                                             \\\n"
    "    int k_ = 0;                                                                                  \\\n"
    "    for (int q_ = 0; q_ < ts_cpn_; q_++) {                                                       \\\n"
    "      if (ts_cpg_[q_] < upto_) vstore8(vload8(0, ts_cps_[q_]), 0, ts_cpd_[q_]);                  \\\n"
    "      else { ts_cpd_[k_] = ts_cpd_[q_]; ts_cps_[k_] = ts_cps_[q_]; ts_cpg_[k_++] = ts_cpg_[q_]; } \\\n"
    "    }                                                                                            \\\n"
    "    ts_cpn_ = k_;                                                                                \\\n"
    "  } while (0)\n"
    "#define TS_CP_ASYNC_WAIT() do { TS_CP_ASYNC_COMMIT(); TS_CP_ASYNC_WAIT_GROUP(0); } while (0)\n"
    "inline float ts_emu_half(uint w, int h, int bf16) {\n"
    "  ushort x = (ushort)(h ? (w >> 16) : (w & 0xffffu));\n"
    "  return bf16 ? ts_bf16_to_f32(x) : vload_half(0, (const half *)&x);\n"
    "}\n"
    "/* One barrier per exchange: successive calls alternate between two\n"
    " * buffers (*k counts the calls), so a call's writes cannot overtake the\n"
    " * previous call's reads of the same buffer (a barrier lies between). */\n"
    "void ts_emu_ldmatrix_x4(uint *d, __local const ushort *hs, int off, int trans, __local int *wsi, int *k, int lane) {\n"
    "  __local int *ws = wsi + 32 * ((*k)++ & 1);\n"
    "  ws[lane] = off;\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  for (int m = 0; m < 4; m++) {\n"
    "    uint lo, hi;\n"
    "    if (!trans) {\n"
    "      const int row = ws[8 * m + lane / 4];\n"
    "      lo = hs[row + 2 * (lane % 4)];\n"
    "      hi = hs[row + 2 * (lane % 4) + 1];\n"
    "    } else {\n"
    "      lo = hs[ws[8 * m + 2 * (lane % 4)] + lane / 4];\n"
    "      hi = hs[ws[8 * m + 2 * (lane % 4) + 1] + lane / 4];\n"
    "    }\n"
    "    d[m] = lo | (hi << 16);\n"
    "  }\n"
    "}\n"
    "void ts_emu_mma_16816(float *d, const uint *a, const uint *b, const float *c, int bf16, __local float *wsf, int *k, int lane) {\n"
    "  __local float *ws = wsf + 384 * ((*k)++ & 1);\n"
    "  const int gid = lane / 4, tig = lane % 4;\n"
    "  for (int i = 0; i < 4; i++)\n"
    "    for (int h = 0; h < 2; h++) ws[(gid + 8 * (i % 2)) * 16 + 2 * tig + h + 8 * (i / 2)] = ts_emu_half(a[i], h, bf16);\n"
    "  for (int i = 0; i < 2; i++)\n"
    "    for (int h = 0; h < 2; h++) ws[256 + (2 * tig + h + 8 * i) * 8 + gid] = ts_emu_half(b[i], h, bf16);\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  float o[4];\n"
    "  for (int i = 0; i < 4; i++) {\n"
    "    const int r = gid + 8 * (i / 2), n = 2 * tig + i % 2;\n"
    "    float s = c[i];\n"
    "    for (int k = 0; k < 16; k++) s = fma(ws[r * 16 + k], ws[256 + k * 8 + n], s);\n"
    "    o[i] = s;\n"
    "  }\n"
    "  for (int i = 0; i < 4; i++) d[i] = o[i];\n"
    "}\n"
    "#define TS_LDMATRIX_X4(d, hs, off) ts_emu_ldmatrix_x4((d), (hs), (off), 0, ts_wsi_, &ts_wsk_, lane_)\n"
    "#define TS_LDMATRIX_X4_TRANS(d, hs, off) ts_emu_ldmatrix_x4((d), (hs), (off), 1, ts_wsi_, &ts_wsk_, lane_)\n"
    "#define TS_MMA_16816_F16(d, a, b, c) ts_emu_mma_16816((d), (a), (b), (c), 0, ts_wsf_, &ts_wsk_, lane_)\n"
    "#define TS_MMA_16816_BF16(d, a, b, c) ts_emu_mma_16816((d), (a), (b), (c), 1, ts_wsf_, &ts_wsk_, lane_)\n"
    "/* the simulated warp's exchange buffers */\n"
    "#define TS_WARP_SCRATCH(i, f) __local int *ts_wsi_ = (i); __local float *ts_wsf_ = (f); int ts_wsk_ = 0;\n";

static int emulated(const cg *g) { return g->d->id == TS_DIALECT_OPENCL; }

void ts__cg_mma_prelude(const cg *g, ts__sb *sb) {
    ts__sb_puts(sb, mma_common);
    ts__sb_puts(sb, emulated(g) ? mma_emulated : mma_cuda);
}

/* ---------------------------------------------------------------- the lowering */

#define TS__MMA_SCRATCH_F 768 /* per simulated warp: A 16x16 + B 16x8 floats, twice */
#define TS__MMA_SCRATCH_I 64  /* per simulated warp: 32 row addresses, twice */

static int64_t pad16(int64_t x) { return x < 16 ? 16 : (x + 15) / 16 * 16; }

/* Shift of the swizzle for a tile W halfs wide (see TS_SWZ): chunks of a row
 * are XORed with (row % 8) >> SH, which stays below W / 8. */
static int swz_shift(int64_t W) { return W >= 64 ? 0 : W == 32 ? 1 : 2; }

typedef struct mma_operand {
    ts_val v;
    const ts__op *ld; /* load read directly from global memory, or NULL (registers) */
    int tr;           /* the load is under a transpose */
    int kouter;       /* local tile stored [k][m or n] (ldmatrix .trans) */
    int64_t rows, W;  /* local tile: rows x W halfs */
    int64_t base;     /* offset in hs_ (halfs) */
    int64_t ob;       /* block of the m or n dim */
} mma_operand;

/* Copies a load read only by a matrix-core dot straight into its 16-bit
 * local tile (cg_mma.c, cg_mfma.c): rows are the load's first value dim,
 * the row its second (the tensor's contiguous dim when its last index is
 * that tile), in chunks of `cw` halfs, `nch` a row. c->dst is where chunk
 * (r_, c<cw>_) goes; whole chunks inside the tensor and aligned (c->aligned
 * of the source) move by c->copy(dst_, src_), the rest element by element
 * with zero fill past B0 x B1. */
void ts__cg_chunk_copy(cg *g, const ts__cg_chunks *c) {
    const ts__param *pa = &g->ir->params[c->ld->param];
    char off[1024], cond[1024];
    const char *pre = c->pre;
    ts__cg_index_exprs(g, c->ld, pre, off, sizeof off, cond, sizeof cond);
    /* chunks need the row to be the tensor's last dim */
    int ntile = 0;
    for (int d = 0; d < pa->rank; d++) ntile += c->ld->idx[d].kind == TS_IDX_TILE;
    int chunks = ntile == 2 && c->ld->idx[pa->rank - 1].kind == TS_IDX_TILE;
    int cw = c->cw;
    long long B0 = (long long)c->B0, B1 = (long long)c->B1;
    line(g, "for (int i_ = tid; i_ < %lld; i_ += %d) {", (long long)(c->rows * c->nch), g->T);
    g->indent++;
    line(g, "const int r_ = i_ / %lld, c%d_ = (i_ %% %lld) * %d;", (long long)c->nch, cw, (long long)c->nch, cw);
    line(g, "TS_LPTR ushort *dst_ = %s;", c->dst);
    line(g, "int whole_ = 0;");
    if (chunks) {
        line(g, "if (r_ < %lld && c%d_ + %d <= %lld) {", B0, cw, cw, B1);
        line(g, "  const int %s0 = r_, %s1 = c%d_ + %d;", pre, pre, cw, cw - 1);
        line(g, "  whole_ = st_%s_%d == 1 && (%s);", pa->name, pa->rank - 1, cond);
        line(g, "}");
        line(g, "if (whole_) {");
        line(g, "  const int %s0 = r_, %s1 = c%d_;", pre, pre, cw);
        line(g, "  const TS_GPTR ushort *src_ = p_%s + (%s);", pa->name, off);
        line(g, "  if (%s(src_)) %s(dst_, src_);", c->aligned, c->copy);
        line(g, "  else whole_ = 0;");
        line(g, "}");
    }
    line(g, "if (!whole_) {");
    line(g, "  for (int h_ = 0; h_ < %d; h_++) {", cw);
    line(g, "    const int %s0 = r_, %s1 = c%d_ + h_;", pre, pre, cw);
    line(g, "    dst_[h_] = (r_ < %lld && %s1 < %lld && (%s)) ? p_%s[%s] : (ushort)0;", B0, pre, B1, cond, pa->name, off);
    line(g, "  }");
    line(g, "}");
    if (!g->d->no_void_casts) line(g, "(void)whole_;");
    g->indent--;
    line(g, "}");
}

static void copy_from_global(cg *g, const mma_operand *o, int64_t B0, int64_t B1) {
    char pre[16], dst[160];
    snprintf(pre, sizeof pre, "cq%d_", (int)o->v);
    snprintf(dst, sizeof dst, "hs_ + %lld + TS_SWZ(r_, c8_, %lld, %d)", (long long)o->base, (long long)o->W, swz_shift(o->W));
    ts__cg_chunks c = {.ld = o->ld, .pre = pre, .rows = o->rows, .nch = o->W / 8, .cw = 8, .B0 = B0, .B1 = B1, .dst = dst,
                       .aligned = "TS_ALIGNED16", .copy = "TS_CP_ASYNC16"};
    ts__cg_chunk_copy(g, &c);
}

/* Writes an operand held in registers (any layout) into its local tile,
 * k-inner, rounded to the dot's 16-bit type; elements past the k extent
 * and the padding are zero. kaxis: the operand's k dim. */
static void copy_from_registers(cg *g, const mma_operand *o, int kaxis, ts_dtype dt, int64_t BO, int64_t BK, const char *kname) {
    int sh = swz_shift(o->W);
    if (o->rows > BO || o->W > BK) { /* padding: written by no register */
        line(g, "for (int i_ = tid; i_ < %lld; i_ += %d) {", (long long)(o->rows * o->W), g->T);
        line(g, "  const int r_ = i_ / %lld, c_ = i_ %% %lld;", (long long)o->W, (long long)o->W);
        line(g, "  if (r_ >= %lld || c_ >= %lld) hs_[%lld + TS_SWZ(r_, c_, %lld, %d)] = (ushort)0;", (long long)BO, (long long)BK, (long long)o->base,
             (long long)o->W, sh);
        line(g, "}");
    }
    layout Lv;
    layout_of(g, o->v, &Lv);
    ts__cg_elem_loop_begin(g, &Lv, "j");
    char vj[48];
    snprintf(vj, sizeof vj, "%s[j]", vname(o->v));
    line(g, "if (own_) hs_[%lld + TS_SWZ(e%d, e%d, %lld, %d)] = (b_%s + e%d < x_%s) ? %s(%s) : (ushort)0;", (long long)o->base, 1 - kaxis, kaxis,
         (long long)o->W, sh, kname, kaxis, kname, dt == TS_BF16 ? "ts_f32_to_bf16" : "ts_mma_bits_f16", vj);
    ts__cg_elem_loop_end(g);
}

/* ldmatrix .x4 row address (in hs_) of lane_ for the 16x16 piece at (o0 =
 * m0_ or n0_, kk_ * 16): matrix j_ = lane_ / 8 is 8x8 block (ob, kb) with,
 * for A, ob = j_ % 2, kb = j_ / 2 (fragments a0..a3) and, for B, kb = j_ % 2,
 * ob = j_ / 2 (b0, b1 of n8 tile 0, then of tile 1). */
static void ldmatrix_addr(const mma_operand *o, int is_b, const char *o0, char *buf, size_t n) {
    const char *ob = is_b ? "(j_ >> 1)" : "(j_ & 1)", *kb = is_b ? "(j_ & 1)" : "(j_ >> 1)";
    int sh = swz_shift(o->W);
    if (o->kouter)
        snprintf(buf, n, "%lld + TS_SWZ(kk_ * 16 + 8 * %s + r8_, %s + 8 * %s, %lld, %d)", (long long)o->base, kb, o0, ob, (long long)o->W, sh);
    else snprintf(buf, n, "%lld + TS_SWZ(%s + 8 * %s + r8_, kk_ * 16 + 8 * %s, %lld, %d)", (long long)o->base, o0, ob, kb, (long long)o->W, sh);
}

/* A dot's shapes and operand tiles (shared by the pipeline's prologue and
 * the dot). */
typedef struct mma_dot {
    ts_dtype dt;
    int64_t BM, BK, BN, Mp, Np, Kp;
    const ts__tile *kt;
    mma_operand o[2];
    int64_t tile_halfs; /* A and B tiles of one k block */
} mma_dot;

static int mma_setup(cg *g, const ts__op *op, mma_dot *m) {
    memset(m, 0, sizeof *m);
    ts_val a = op->in[0], b = op->in[1];
    const ts__value *av = &g->ir->values[a];
    m->dt = av->dtype;
    m->BM = g->plan->block[av->dims[0]];
    m->BK = g->plan->block[av->dims[1]];
    m->BN = g->plan->block[g->ir->values[b].dims[1]];
    m->Mp = pad16(m->BM), m->Np = pad16(m->BN), m->Kp = pad16(m->BK);
    m->kt = &g->ir->tiles[av->dims[1]];
    for (int w = 0; w < 2; w++) {
        mma_operand *x = &m->o[w];
        x->v = w ? b : a;
        x->ob = w ? m->BN : m->BM;
        x->ld = ts__cg_direct_load(g, x->v, &x->tr);
        if (x->ld && g->ir->params[x->ld->param].dtype != m->dt) { /* never: a load's value keeps its tensor's dtype */
            cg_fail(g, TS_ERR_UNSUPPORTED, "dot: operand load of dtype %s feeds a %s dot", ts_dtype_name(g->ir->params[x->ld->param].dtype),
                    ts_dtype_name(m->dt));
            return 0;
        }
        /* A's load is [m][k] unless transposed, B's [k][n] */
        x->kouter = x->ld ? (w ? !x->tr : x->tr) : 0;
        int64_t op_ = pad16(x->ob);
        x->rows = x->kouter ? m->Kp : op_;
        x->W = x->kouter ? op_ : m->Kp;
    }
    m->o[0].base = 0;
    m->o[1].base = m->o[0].rows * m->o[0].W;
    m->tile_halfs = m->o[1].base + m->o[1].rows * m->o[1].W;
    return 1;
}

/* cp.async copies one work-item issues for a k block (the emulation's queue). */
static int copies_per_thread(const cg *g, const mma_dot *m) {
    int64_t n = 0;
    for (int w = 0; w < 2; w++)
        if (m->o[w].ld) n += (m->o[w].rows * (m->o[w].W / 8) + g->T - 1) / g->T;
    return (int)n;
}

/* ---------------------------------------------------------------- the cp.async pipeline
 *
 * A loop over k tiles whose body holds one tensor-core dot, both operands
 * loads read only by the dot, inside the loop and indexed by the loop's tile
 * (and by values fixed before the loop), streams its operands through a ring
 * of `stages` buffers ts_pipe_ (a local array of its own, so no other op's
 * use of ts_lf can touch it): before the loop, k blocks 0 .. stages-2 are
 * issued as cp.async groups; at the dot of block i, wait_group(stages-2)
 * completes block i's group, a barrier publishes it (and retires every
 * warp's reads of block i-1's buffer), block i+stages-1 is issued into that
 * buffer and committed, and block i is multiplied while the others are in
 * flight. Block n lives in buffer n % stages. Elsewhere the dot runs one k
 * block at a time, and the source says why (attention: q is loaded before
 * its loop and p is computed in registers; one ring per loop). */
int ts__cg_fault_no_cp_wait; /* tests only (codegen.h): leave out the pipeline's wait_group */

#define TS__MMA_STAGES_DEFAULT 3

static int64_t loop_block(const cg *g, const ts__op *bop) { return g->plan->block[bop->tile]; }

/* The loop's tensor-core dot if its operands can be pipelined; else NULL
 * and *why says why (NULL why: the loop has no tensor-core dot). */
static const ts__op *pipe_candidate(const cg *g, const ts__op *bop, const char **why) {
    const ts__kir *ir = g->ir;
    int bi = (int)(bop - ir->ops), ei = bop->match;
    const ts__op *dot = NULL;
    int ndots = 0, nested = 0;
    *why = NULL;
    for (int i = bi + 1, depth = 0; i < ei; i++) {
        const ts__op *op = &ir->ops[i];
        if (op->kind == TS__OP_LOOP_BEGIN) nested = 1, depth++;
        if (op->kind == TS__OP_LOOP_END) depth--;
        if (op->kind == TS__OP_DOT && depth == 0 && ts__cg_mma_applies(g, op)) {
            ndots++;
            dot = op;
        }
    }
    if (!ndots) return NULL;
    if (nested) return *why = "a loop is nested in this one (one ring and one group count per loop)", NULL;
    if (ndots > 1) return *why = "the loop holds more than one tensor-core dot (one ring and one group count per loop)", NULL;
    for (int w = 0; w < 2; w++) {
        int tr;
        const ts__op *ld = ts__cg_direct_load(g, dot->in[w], &tr);
        if (!ld) return *why = "an operand is computed in registers, not a load read only by the dot", NULL;
        int li = (int)(ld - ir->ops);
        if (li < bi || li > ei) return *why = "an operand is loaded before the loop (the same block every iteration)", NULL;
        int on_tile = 0;
        for (int d = 0; d < ir->params[ld->param].rank; d++) {
            const ts_index *x = &ld->idx[d];
            if ((x->kind == TS_IDX_TILE || x->kind == TS_IDX_SHIFT || x->kind == TS_IDX_POINT) && x->tile == bop->tile) on_tile = 1;
            if (x->kind >= TS_IDX_SHIFT && ir->values[x->val].def_op > bi)
                return *why = "an operand's index is computed inside the loop (not known stages-1 blocks ahead)", NULL;
        }
        if (!on_tile) return *why = "an operand does not depend on the loop's tile", NULL;
    }
    return dot;
}

/* Bytes of local memory the ring may bring the kernel to: the device's
 * limit, and at most 48 KiB (CUDA's static __shared__ arrays; the emulation
 * takes the same cap so that it runs the stage count CUDA gets). */
static int64_t smem_limit(const cg *g) {
    int64_t lim = g->smem_limit > 0 ? g->smem_limit : 49152;
    return lim > 49152 ? 49152 : lim;
}

/* The loop's first index (its blocks are loop_block apart from it). */
static const char *loop_start(const cg *g, const ts__op *bop) {
    static _Thread_local char buf[96];
    const ts__tile *t = &g->ir->tiles[bop->tile];
    if (t->ranged) snprintf(buf, sizeof buf, "l_%s", t->name);
    else snprintf(buf, sizeof buf, "0");
    return buf;
}

/* Issues the k block starting at `blk` (an expression) into ring buffer
 * `buf` (an expression), where the block is in the loop's range: the copy
 * reads the block's tile variable, shadowed here. */
static void issue_block(cg *g, const ts__op *bop, const mma_dot *m, const char *blk, const char *buf) {
    const ts__tile *t = &g->ir->tiles[bop->tile];
    line(g, "{");
    g->indent++;
    line(g, "const %s pb_ = %s;", g->d->i64, blk);
    line(g, "if (pb_ < x_%s) {", t->name);
    g->indent++;
    line(g, "TS_LPTR ushort *hs_ = ts_pipe_ + (%s) * %lld;", buf, (long long)m->tile_halfs);
    line(g, "const %s b_%s = pb_;", g->d->i64, t->name);
    for (int w = 0; w < 2; w++) {
        const mma_operand *x = &m->o[w];
        copy_from_global(g, x, x->kouter ? m->BK : x->ob, x->kouter ? x->ob : m->BK);
    }
    g->indent--;
    line(g, "}");
    g->indent--;
    line(g, "}");
}

/* The loop's carried value that can live in C fragments: the accumulator
 * of a tensor-core dot of the loop's body (not of a nested loop), read by
 * nothing else, the dot's result its yield and used by nothing else; -1 if
 * none. */
static int frag_carry(const cg *g, const ts__op *bop, const ts__op **dotp) {
    const ts__kir *ir = g->ir;
    int bi = (int)(bop - ir->ops), ei = bop->match;
    const ts__op *eop = &ir->ops[ei];
    for (int i = bi + 1; i < ei; i++)
        if (ir->ops[i].kind == TS__OP_LOOP_BEGIN) return -1;
    for (int i = bi + 1; i < ei; i++) {
        const ts__op *op = &ir->ops[i];
        if (op->kind != TS__OP_DOT || op->in[2] == TS_NONE || !ts__cg_mma_applies(g, op)) continue;
        for (int c = 0; c < bop->ncarry; c++)
            if (bop->carried[c] == op->in[2] && g->uses[op->in[2]] == 1 && eop->yields[c] == op->result && g->uses[op->result] == 1) {
                *dotp = op;
                return c;
            }
    }
    return -1;
}

void ts__cg_mma_loop_plan(cg *g, const ts__op *bop) {
    const char *why;
    const ts__op *dot = pipe_candidate(g, bop, &why), *fdot = NULL;
    int fc = frag_carry(g, bop, &fdot);
    if (fc >= 0) {
        g->frag_loop = bop;
        g->frag_dot = fdot;
        g->frag_cv = bop->carried[fc];
        g->frag_c = fc;
    }
    if (!dot && !why) return;
    int S = g->plan->stages > 0 ? g->plan->stages : TS__MMA_STAGES_DEFAULT;
    if (!dot) {
        line(g, "/* cp.async pipeline: not here, %s; the dot copies one k block at a time (codegen/cg_mma.c) */", why);
        return;
    }
    if (S < 2) return; /* stages=1: one k block at a time */
    mma_dot m;
    if (!mma_setup(g, dot, &m)) return;
    /* what else the kernel needs so far, and the dot's Cs (in the ring when
     * C is in fragments: Cs is used only before and after the loop); not
     * the emulation's scratch (its stage count is the one CUDA gets) */
    int alias = g->frag_dot == dot;
    int64_t cs = m.Mp * m.Np, lf = alias ? g->lf : (cs > g->lf ? cs : g->lf);
    int64_t other = (lf + g->li) * 4 + (g->dot_shared_a4 + g->dot_shared_b4) * 16, lim = smem_limit(g);
#define TS__RING_BYTES(S) (alias && cs * 4 > (S) * m.tile_halfs * 2 ? cs * 4 : (S) * m.tile_halfs * 2)
    int asked = S;
    while (S >= 2 && other + TS__RING_BYTES(S) > lim) S--;
    if (S < 2) {
        line(g, "/* cp.async pipeline: not here, stages=%d needs %lld bytes of local memory, the device allows %lld; one k block at a time */", asked,
             (long long)(other + TS__RING_BYTES(asked)), (long long)lim);
        return;
    }
    if (S < asked)
        line(g, "/* cp.async pipeline: stages=%d needs %lld bytes of local memory, the device allows %lld: %d stages */", asked,
             (long long)(other + TS__RING_BYTES(asked)), (long long)lim, S);
    int64_t ring = TS__RING_BYTES(S) / 2;
#undef TS__RING_BYTES
    g->pipe_loop = bop;
    g->pipe_dot = dot;
    g->pipe_stages = S;
    g->frag_cs_in_ring = alias;
    if (ring > g->pipe_halfs) g->pipe_halfs = ring;
    int q = copies_per_thread(g, &m) * S;
    if (q > g->cp_queue) g->cp_queue = q;
}

int ts__cg_mma_carry_in_fragments(const cg *g, const ts__op *bop, int c) { return g->frag_loop && g->frag_loop == bop && c == g->frag_c; }

/* Element i (0..7) of a warp's C fragments of the 16x16 tile at (m0_, n0_),
 * as an index of the Np-wide Cs: the lowering's own reading of the
 * m16n8k16 C layout (element i of n8 tile i/4 is row lane/4 + 8 ((i/2)%2),
 * column 2 (lane%4) + i%2). */
static void frag_index(int64_t Np, const char *i, char *buf, size_t n) {
    snprintf(buf, n, "(m0_ + (lane_ >> 2) + ((%s >> 1) & 1) * 8) * %lld + n0_ + (%s >> 2) * 8 + (lane_ & 3) * 2 + (%s & 1)", i, (long long)Np, i, i);
}

/* The warp's tiles of C kept in fragments: tile t_ is u = warp_ + t_ W. */
static int frag_tiles(const cg *g, const mma_dot *m) {
    int64_t nu = (m->Mp / 16) * (m->Np / 16), W = g->T / 32;
    return (int)((nu + W - 1) / W);
}

/* Opens a loop over the warp's tiles (unrolled: the fragments' indices are
 * constants; not in the emulation, where PoCL's compile time grows with
 * every copy of the barriers inside and an array in memory costs nothing):
 * u_ (clamped to the last tile, so that every warp runs the same steps),
 * m0_, n0_. */
static void frag_tiles_begin(cg *g, const mma_dot *m) {
    int64_t nun = m->Np / 16, nu = (m->Mp / 16) * nun;
    if (!emulated(g)) line(g, "%s", g->d->unroll);
    line(g, "for (int t_ = 0; t_ < %d; t_++) {", frag_tiles(g, m));
    g->indent++;
    line(g, "const int uu_ = warp_ + t_ * %d, u_ = uu_ < %lld ? uu_ : %lld;", g->T / 32, (long long)nu, (long long)(nu - 1));
    line(g, "const int m0_ = (u_ / %lld) * 16, n0_ = (u_ %% %lld) * 16;", (long long)nun, (long long)nun);
}

static const char *frag_name(const cg *g) {
    static _Thread_local char buf[32];
    snprintf(buf, sizeof buf, "cf%d_", (int)g->frag_cv);
    return buf;
}

/* Cs of the accumulator kept in fragments, written before and after the
 * loop only: in the ring when the loop is pipelined (no copy is in flight
 * then: the prologue follows, the final wait_all precedes), else in ts_lf. */
static void cs_decl(cg *g) {
    if (g->frag_cs_in_ring) line(g, "TS_LPTR float *cs_ = (TS_LPTR float *)ts_pipe_;");
    else line(g, "TS_LPTR float *cs_ = ts_lf;");
}

void ts__cg_mma_loop_begin(cg *g, const ts__op *bop) {
    if (g->frag_loop == bop) {
        mma_dot m;
        if (!mma_setup(g, g->frag_dot, &m)) return;
        ts_val init = bop->init[g->frag_c];
        if (!g->frag_cs_in_ring) ts__cg_need_local(g, TS_F32, m.Mp * m.Np);
        line(g, "/* the dot's accumulator stays in the warps' C fragments across the loop: %s[t * 8 + i] is element i of tile warp + t * %d (codegen/cg_mma.c) */",
             frag_name(g), g->T / 32);
        line(g, "float %s[%d];", frag_name(g), frag_tiles(g, &m) * 8);
        line(g, "{");
        g->indent++;
        cs_decl(g);
        line(g, "%s", g->d->barrier);
        line(g, "for (int i_ = tid; i_ < %lld; i_ += %d) {", (long long)(m.Mp * m.Np), g->T);
        line(g, "  if (i_ / %lld >= %lld || i_ %% %lld >= %lld) cs_[i_] = 0.0f;", (long long)m.Np, (long long)m.BM, (long long)m.Np, (long long)m.BN);
        line(g, "}");
        layout La;
        layout_of(g, init, &La);
        ts__cg_elem_loop_begin(g, &La, "j");
        line(g, "if (own_) cs_[e0 * %lld + e1] = %s[j];", (long long)m.Np, vname(init));
        ts__cg_elem_loop_end(g);
        line(g, "%s", g->d->barrier);
        line(g, "const int lane_ = tid %% 32, warp_ = tid / 32;");
        frag_tiles_begin(g, &m);
        char fi[256];
        frag_index(m.Np, "i", fi, sizeof fi);
        line(g, "%s", g->d->unroll);
        line(g, "for (int i = 0; i < 8; i++) %s[t_ * 8 + i] = cs_[%s];", frag_name(g), fi);
        close_block(g);
        close_block(g);
    }
    if (g->pipe_loop != bop) return;
    mma_dot m;
    if (!mma_setup(g, g->pipe_dot, &m)) return;
    int S = g->pipe_stages;
    line(g, "/* cp.async pipeline, %d stages: k blocks 0..%d in flight before the loop (codegen/cg_mma.c) */", S, S - 2);
    line(g, "%s", g->d->barrier); /* an earlier loop's warps are done with the ring */
    line(g, "for (int s_ = 0; s_ < %d; s_++) {", S - 1);
    g->indent++;
    char blk[128];
    snprintf(blk, sizeof blk, "%s + s_ * %lld", loop_start(g, bop), (long long)loop_block(g, bop));
    issue_block(g, bop, &m, blk, "s_");
    line(g, "TS_CP_ASYNC_COMMIT();");
    close_block(g);
}

void ts__cg_mma_loop_end(cg *g, const ts__op *eop) {
    const ts__op *bop = &g->ir->ops[eop->match];
    if (g->pipe_loop == bop) line(g, "TS_CP_ASYNC_WAIT(); /* the pipeline's last groups (empty: no block past the end is issued) */");
    if (g->frag_loop == bop) {
        /* the fragments -> Cs -> the result's layout */
        mma_dot m;
        if (!mma_setup(g, g->frag_dot, &m)) return;
        ts_val r = eop->results[g->frag_c];
        int64_t nu = (m.Mp / 16) * (m.Np / 16);
        ts__cg_declare(g, r);
        line(g, "{");
        g->indent++;
        cs_decl(g);
        line(g, "%s", g->d->barrier);
        line(g, "const int lane_ = tid %% 32, warp_ = tid / 32;");
        frag_tiles_begin(g, &m);
        char fi[256];
        frag_index(m.Np, "i", fi, sizeof fi);
        line(g, "if (uu_ < %lld) {", (long long)nu);
        line(g, "  %s", g->d->unroll);
        line(g, "  for (int i = 0; i < 8; i++) cs_[%s] = %s[t_ * 8 + i];", fi, frag_name(g));
        line(g, "}");
        close_block(g);
        line(g, "%s", g->d->barrier);
        layout L;
        layout_of(g, r, &L);
        ts__cg_elem_loop_begin(g, &L, "j");
        line(g, "%s[j] = ok_ ? cs_[e0 * %lld + e1] : 0.0f;", vname(r), (long long)m.Np);
        ts__cg_elem_loop_end(g);
        close_block(g);
    }
    g->pipe_loop = g->frag_loop = NULL;
    g->frag_cs_in_ring = 0;
    g->pipe_dot = g->frag_dot = NULL;
    g->pipe_stages = 0;
}

void ts__cg_mma_decls(const cg *g, ts__sb *sb) {
    if (g->pipe_halfs)
        ts__sb_printf(sb, "  %s%s ushort ts_pipe_[%lld];\n", g->d->local_decl, g->d->id == TS_DIALECT_CUDA ? " __align__(16)" : "", (long long)g->pipe_halfs);
    ts__sb_printf(sb, "  TS_CP_ASYNC_STATE(%d)\n", g->cp_queue > 0 ? g->cp_queue : 1);
}

/* ---------------------------------------------------------------- the dot */

void ts__cg_emit_dot_mma(cg *g, const ts__op *op) {
    ts_val acc = op->in[2], res = op->result;
    mma_dot m;
    if (!mma_setup(g, op, &m)) return;
    ts_dtype dt = m.dt;
    int64_t BM = m.BM, BK = m.BK, BN = m.BN, Mp = m.Mp, Np = m.Np, Kp = m.Kp;
    const ts__tile *kt = m.kt;
    mma_operand *o = m.o;
    int W = g->T / 32;
    g->mma = 1;
    const ts__op *bop = g->pipe_dot == op ? g->pipe_loop : NULL; /* operands from the ring (ts__cg_mma_loop_begin) */
    int S = bop ? g->pipe_stages : 1;
    const int frag = g->frag_dot == op; /* the accumulator in fragments across the loop (ts__cg_mma_loop_begin) */
    int64_t cs = Mp * Np;                           /* Cs floats (in ts_lf unless C is in fragments and Cs in the ring) */
    int64_t cs_lf = frag && g->frag_cs_in_ring ? 0 : cs;
    int64_t scr = cs_lf + (bop ? 0 : m.tile_halfs / 2); /* emulation scratch (floats), after the tiles when not in the ring */
    ts__cg_need_local(g, TS_F32, scr + (emulated(g) ? W * TS__MMA_SCRATCH_F : 0));
    if (emulated(g)) ts__cg_need_local(g, TS_I32, W * TS__MMA_SCRATCH_I);
    if (!bop) {
        int q = copies_per_thread(g, &m);
        if (q > g->cp_queue) g->cp_queue = q;
    }
    layout L;
    layout_of(g, res, &L);
    line(g, "/* dot on tensor cores (m16n8k16 %s): %d warps, C %lldx%lld, k %lld%s%s (codegen/cg_mma.c) */", dt == TS_BF16 ? "bf16" : "f16", W,
         (long long)Mp, (long long)Np, (long long)Kp, bop ? ", operands from the cp.async ring" : "", frag ? ", C in fragments" : "");
    if (!frag) ts__cg_declare(g, res); /* else the loop's end reads it from the fragments */
    line(g, "{");
    g->indent++;
    if (bop) {
        const ts__tile *lt = &g->ir->tiles[bop->tile];
        char e[256];
        snprintf(e, sizeof e, "((b_%s - %s) / %lld %% %d)", lt->name, loop_start(g, bop), (long long)loop_block(g, bop), S);
        line(g, "const int ps_ = %s; /* this block's buffer */", cx(g, "int", e));
        line(g, "TS_LPTR ushort *hs_ = ts_pipe_ + ps_ * %lld;", (long long)m.tile_halfs);
    } else line(g, "TS_LPTR ushort *hs_ = (TS_LPTR ushort *)(ts_lf + %lld);", (long long)cs);
    /* the previous readers of Cs and of the tiles in ts_lf are done (with
     * the ring and C in fragments, the barrier after the wait does it) */
    if (!(bop && frag)) line(g, "%s", g->d->barrier);
    /* 1. accumulator -> Cs */
    if (!frag) {
        line(g, "for (int i_ = tid; i_ < %lld; i_ += %d) {", (long long)(Mp * Np), g->T);
        if (acc != TS_NONE)
            line(g, "  if (i_ / %lld >= %lld || i_ %% %lld >= %lld) ts_lf[i_] = 0.0f;", (long long)Np, (long long)BM, (long long)Np, (long long)BN);
        else line(g, "  ts_lf[i_] = 0.0f;");
        line(g, "}");
    }
    if (acc != TS_NONE && !frag) {
        layout La;
        layout_of(g, acc, &La);
        ts__cg_elem_loop_begin(g, &La, "j");
        line(g, "if (own_) ts_lf[e0 * %lld + e1] = %s[j];", (long long)Np, vname(acc));
        ts__cg_elem_loop_end(g);
    }
    if (bop) {
        /* 2. this block's group complete (its copies and every other
         * work-item's, after the barrier); the block stages-1 ahead goes into
         * the buffer block i-1 used, which the barrier retired */
        if (!ts__cg_fault_no_cp_wait) line(g, "TS_CP_ASYNC_WAIT_GROUP(%d);", S - 2);
        line(g, "%s", g->d->barrier);
        char blk[160], buf[64];
        snprintf(blk, sizeof blk, "b_%s + %lld", g->ir->tiles[bop->tile].name, (long long)((S - 1) * loop_block(g, bop)));
        snprintf(buf, sizeof buf, "(ps_ + %d) %% %d", S - 1, S);
        issue_block(g, bop, &m, blk, buf);
        line(g, "TS_CP_ASYNC_COMMIT();");
    } else {
        /* 2. operands -> local tiles */
        for (int w = 0; w < 2; w++) {
            mma_operand *x = &o[w];
            if (x->ld) {
                int64_t B0 = x->kouter ? BK : x->ob, B1 = x->kouter ? x->ob : BK;
                copy_from_global(g, x, B0, B1);
            } else copy_from_registers(g, x, w ? 0 : 1, dt, x->ob, BK, kt->name);
        }
        line(g, "TS_CP_ASYNC_WAIT();");
        line(g, "%s", g->d->barrier);
    }
    /* 3. warps over 16x16 tiles of C */
    int64_t nun = Np / 16, nu = (Mp / 16) * nun;
    line(g, "{");
    g->indent++;
    line(g, "const int lane_ = tid %% 32, warp_ = tid / 32, j_ = lane_ >> 3, r8_ = lane_ & 7;");
    if (emulated(g))
        line(g, "TS_WARP_SCRATCH(ts_li + warp_ * %d, ts_lf + %lld + warp_ * %d)", TS__MMA_SCRATCH_I, (long long)scr, TS__MMA_SCRATCH_F);
    {
        char kb[32], mn[160];
        snprintf(kb, sizeof kb, "%lld", (long long)BK);
        snprintf(mn, sizeof mn, "min(%s, x_%s - b_%s)", cx(g, g->d->i64, kb), kt->name, kt->name);
        line(g, "const int ks_ = (%s + 15) / 16;", cx(g, "int", mn));
    }
    char fi[256], c0[64], c4[64];
    frag_index(Np, "i", fi, sizeof fi);
    if (frag) {
        frag_tiles_begin(g, &m);
        snprintf(c0, sizeof c0, "%s + t_ * 8", frag_name(g));
        snprintf(c4, sizeof c4, "%s + t_ * 8 + 4", frag_name(g));
    } else {
        line(g, "for (int u0_ = 0; u0_ < %lld; u0_ += %d) {", (long long)nu, W);
        g->indent++;
        line(g, "const int uu_ = u0_ + warp_, u_ = uu_ < %lld ? uu_ : %lld;", (long long)nu, (long long)(nu - 1));
        line(g, "const int m0_ = (u_ / %lld) * 16, n0_ = (u_ %% %lld) * 16;", (long long)nun, (long long)nun);
        line(g, "float c_[8];");
        line(g, "%s", g->d->unroll);
        line(g, "for (int i = 0; i < 8; i++) c_[i] = ts_lf[%s];", fi);
        snprintf(c0, sizeof c0, "c_");
        snprintf(c4, sizeof c4, "c_ + 4");
    }
    line(g, "for (int kk_ = 0; kk_ < ks_; kk_++) {");
    g->indent++;
    line(g, "uint fa_[4], fb_[4];");
    char ad[512];
    ldmatrix_addr(&o[0], 0, "m0_", ad, sizeof ad);
    line(g, "TS_LDMATRIX_X4%s(fa_, hs_, %s);", o[0].kouter ? "_TRANS" : "", ad);
    ldmatrix_addr(&o[1], 1, "n0_", ad, sizeof ad);
    line(g, "TS_LDMATRIX_X4%s(fb_, hs_, %s);", o[1].kouter ? "_TRANS" : "", ad);
    const char *mma = dt == TS_BF16 ? "TS_MMA_16816_BF16" : "TS_MMA_16816_F16";
    line(g, "%s(%s, fa_, fb_, %s);", mma, c0, c0);
    line(g, "%s(%s, fa_, fb_ + 2, %s);", mma, c4, c4);
    g->indent--;
    line(g, "}");
    if (!frag) {
        line(g, "if (uu_ < %lld) {", (long long)nu);
        line(g, "  %s", g->d->unroll);
        line(g, "  for (int i = 0; i < 8; i++) ts_lf[%s] = c_[i];", fi);
        line(g, "}");
    }
    g->indent--;
    line(g, "}");
    line(g, "(void)j_; (void)r8_;");
    g->indent--;
    line(g, "}");
    if (frag) { /* C stays in the fragments */
        g->indent--;
        line(g, "}");
        return;
    }
    line(g, "%s", g->d->barrier);
    /* 4. Cs -> the result layout */
    ts__cg_elem_loop_begin(g, &L, "j");
    line(g, "%s[j] = ok_ ? ts_lf[e0 * %lld + e1] : 0.0f;", vname(res), (long long)Np);
    ts__cg_elem_loop_end(g);
    g->indent--;
    line(g, "}");
}
