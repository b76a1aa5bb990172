/* ops.c: the built-in conformance kernels: one small kernel per operation,
 * written with the C API, so a failure names the operation that is wrong.
 *
 * Sections: shape sets; builders (elementwise, reductions, dot, casts,
 * gather, atomics, masks, layout); the table (filled once) with each
 * kernel's dtypes, input domain and tolerance (docs/conformance.md). */
#include "conf_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- shape sets */

/* 2-D [M, N] kernels with BLOCK_M in 1..64 and BLOCK_N in 16..1024. */
static const ts_conformance_shape shapes_2d[] = {
    {"tiny", "M=1,N=1", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"odd", "M=7,N=13", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"aligned", "M=64,N=1024", TS_CONFORMANCE_CONTIGUOUS, 0, 0},      /* a multiple of every block size */
    {"nonmult", "M=65,N=1025", TS_CONFORMANCE_CONTIGUOUS, 0, 0},      /* a multiple of none */
    {"bcast", "M=33,N=100", TS_CONFORMANCE_BROADCAST, 0, 0},
    {"strided", "M=17,N=300", TS_CONFORMANCE_STRIDED, 0, 0},
    {"transposed", "M=40,N=77", TS_CONFORMANCE_TRANSPOSED, 0, 0},
    {"empty", "M=0,N=37", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"prime", "M=31,N=1009", TS_CONFORMANCE_CONTIGUOUS, 1, 0},
    {"large", "M=1031,N=1031", TS_CONFORMANCE_CONTIGUOUS, 1, 0},
    {"empty_n", "M=5,N=0", TS_CONFORMANCE_CONTIGUOUS, 1, 0},
};
static const ts_conformance_shape shape_special_2d = {"special", "M=9,N=50", TS_CONFORMANCE_CONTIGUOUS, 0, 1};

/* 1-D [N] kernels with BLOCK in 16..4096. */
static const ts_conformance_shape shapes_1d[] = {
    {"tiny", "N=1", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"odd", "N=13", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"aligned", "N=4096", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"nonmult", "N=4099", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"strided", "N=1000", TS_CONFORMANCE_STRIDED, 0, 0},
    {"empty", "N=0", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"large", "N=1048583", TS_CONFORMANCE_CONTIGUOUS, 1, 0},
};
static const ts_conformance_shape shape_special_1d = {"special", "N=500", TS_CONFORMANCE_CONTIGUOUS, 0, 1};

/* Row and column reductions of x[M, N] (whole-extent tiles, at most 16384). */
/* Row and column reductions of x[M, N] over whole-extent tiles (at most
 * 16384; each distinct power of two is a separate compile on a compiling
 * backend, so the quick classes share block sizes: 128 along both axes). */
static const ts_conformance_shape shapes_reduce[] = {
    {"tiny", "M=1,N=1", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"odd", "M=7,N=13", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"nonmult", "M=65,N=1025", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"bcast", "M=65,N=100", TS_CONFORMANCE_BROADCAST, 0, 0},
    {"strided", "M=100,N=65", TS_CONFORMANCE_STRIDED, 0, 0},
    {"transposed", "M=100,N=100", TS_CONFORMANCE_TRANSPOSED, 0, 0},
    {"empty", "M=0,N=100", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"aligned", "M=64,N=1024", TS_CONFORMANCE_CONTIGUOUS, 1, 0},
    {"long", "M=3,N=10007", TS_CONFORMANCE_CONTIGUOUS, 1, 0},
    {"tall", "M=4099,N=3", TS_CONFORMANCE_CONTIGUOUS, 1, 0},
    {"large", "M=257,N=16383", TS_CONFORMANCE_CONTIGUOUS, 1, 0},
};

static const ts_conformance_shape shapes_dot[] = {
    {"tiny", "M=1,N=1,K=1", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"odd", "M=7,N=13,K=5", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"aligned", "M=128,N=128,K=128", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"nonmult", "M=65,N=33,K=129", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"long_k", "M=19,N=23,K=4099", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"strided", "M=9,N=20,K=31", TS_CONFORMANCE_STRIDED, 0, 0},
    {"transposed", "M=33,N=17,K=40", TS_CONFORMANCE_TRANSPOSED, 0, 0},
    {"empty_k", "M=5,N=7,K=0", TS_CONFORMANCE_CONTIGUOUS, 0, 0}, /* C = 0: a loop of no steps */
    {"empty", "M=0,N=7,K=5", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"large", "M=200,N=300,K=1000", TS_CONFORMANCE_CONTIGUOUS, 1, 0},
};

static const ts_conformance_shape shapes_gather[] = {
    {"tiny", "M=1,V=1,D=1", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"odd", "M=7,V=13,D=5", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"aligned", "M=64,V=100,D=1024", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"nonmult", "M=65,V=100,D=1025", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"strided", "M=30,V=20,D=33", TS_CONFORMANCE_STRIDED, 0, 0},
    {"transposed", "M=30,V=20,D=33", TS_CONFORMANCE_TRANSPOSED, 0, 0},
    {"empty", "M=0,V=5,D=3", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"large", "M=1000,V=5000,D=300", TS_CONFORMANCE_CONTIGUOUS, 1, 0},
};

static const ts_conformance_shape shapes_atomic[] = {
    {"tiny", "M=1,N=1", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"odd", "M=7,N=13", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"aligned", "M=64,N=1024", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"nonmult", "M=65,N=1025", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"tall", "M=3001,N=17", TS_CONFORMANCE_CONTIGUOUS, 0, 0}, /* many programs add into one element */
    {"strided", "M=17,N=300", TS_CONFORMANCE_STRIDED, 0, 0},
    {"transposed", "M=40,N=77", TS_CONFORMANCE_TRANSPOSED, 0, 0},
    {"empty", "M=0,N=37", TS_CONFORMANCE_CONTIGUOUS, 0, 0},
    {"large", "M=2000,N=1000", TS_CONFORMANCE_CONTIGUOUS, 1, 0},
};

/* ---------------------------------------------------------------- builders */

#define B_BEGIN(name)                               \
    ts_builder *b;                                  \
    ts_status s_ = ts_builder_create((name), &b);   \
    if (s_) return s_
#define B_END()                     \
    s_ = ts_builder_finish(b, out); \
    ts_builder_destroy(b);          \
    return s_

/* What a builder needs to know beyond the dtype: an op code and, for casts, a target. */
typedef struct op_info {
    int op;
    ts_dtype to;
    char kname[48]; /* the ts_kernel's name */
} op_info;

static const op_info *info_of(const ts_conformance_kernel *kd) { return (const op_info *)kd->user; }

static void tiles_2d(ts_builder *b, ts_size M, ts_size N, ts_tile *tm, ts_tile *tn) {
    ts_tunable(b, "BLOCK_M", 1, 64, 8);
    ts_tunable(b, "BLOCK_N", 16, 1024, 128);
    *tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    *tn = ts_grid_tile(b, "tn", N, "BLOCK_N");
}

/* y[M, N] = op(x[M, N]) */
static ts_status build_unary(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    const op_info *in = info_of(kd);
    B_BEGIN(in->kname);
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "y", dt, 2, (ts_size[]){M, N});
    ts_tile tm, tn;
    tiles_2d(b, M, N, &tm, &tn);
    ts_index ix[2] = {TS_AT(tm), TS_AT(tn)};
    ts_store(b, y, ix, ts_unary(b, (ts_unary_op)in->op, ts_load(b, x, ix, 0.5)));
    B_END();
}

static int is_compare(int op) { return op >= TS_LT && op <= TS_NE; }

/* z[M, N] = x[M, N] op y[M, N] */
static ts_status build_binary(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    const op_info *in = info_of(kd);
    B_BEGIN(in->kname);
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "y", dt, 2, (ts_size[]){M, N});
    ts_param z = ts_param_tensor(b, "z", is_compare(in->op) ? TS_BOOL : dt, 2, (ts_size[]){M, N});
    ts_tile tm, tn;
    tiles_2d(b, M, N, &tm, &tn);
    ts_index ix[2] = {TS_AT(tm), TS_AT(tn)};
    ts_val xv = ts_load(b, x, ix, 1.0), yv = ts_load(b, y, ix, 1.0);
    ts_store(b, z, ix, ts_binary(b, (ts_binary_op)in->op, xv, yv));
    B_END();
}

/* z[M, N] = x[M] * y[N]: both operands broadcast inside the kernel */
static ts_status build_outer(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    B_BEGIN(info_of(kd)->kname);
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 1, &M);
    ts_param y = ts_param_tensor(b, "y", dt, 1, &N);
    ts_param z = ts_param_tensor(b, "z", dt, 2, (ts_size[]){M, N});
    ts_tile tm, tn;
    tiles_2d(b, M, N, &tm, &tn);
    ts_val xv = ts_expand_dims(b, ts_load(b, x, &TS_AT(tm), 0.0), 1);
    ts_val yv = ts_expand_dims(b, ts_load(b, y, &TS_AT(tn), 0.0), 0);
    ts_store(b, z, (ts_index[]){TS_AT(tm), TS_AT(tn)}, ts_binary(b, TS_MUL, xv, yv));
    B_END();
}

static ts_dtype reduce_out(int op, ts_dtype dt) { return op == TS_RED_ARGMAX ? TS_I32 : dt; }

/* y[M] = reduce_n x[M, N], one whole row per tile */
static ts_status build_reduce_rows(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    const op_info *in = info_of(kd);
    B_BEGIN(in->kname);
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "y", reduce_out(in->op, dt), 1, &M);
    ts_tunable(b, "BLOCK_M", 1, 64, 4);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile tn = ts_grid_tile(b, "tn", N, NULL);
    ts_val xv = ts_load(b, x, (ts_index[]){TS_AT(tm), TS_AT(tn)}, 0.0);
    ts_store(b, y, &TS_AT(tm), ts_reduce(b, (ts_reduce_op)in->op, xv, 1, 0));
    B_END();
}

/* y[N] = reduce_m x[M, N], one whole column per tile (a reduction along axis 0) */
static ts_status build_reduce_cols(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    const op_info *in = info_of(kd);
    B_BEGIN(in->kname);
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "y", reduce_out(in->op, dt), 1, &N);
    ts_tunable(b, "BLOCK_N", 16, 1024, 64);
    ts_tile tn = ts_grid_tile(b, "tn", N, "BLOCK_N");
    ts_tile tm = ts_grid_tile(b, "tm", M, NULL);
    ts_val xv = ts_load(b, x, (ts_index[]){TS_AT(tm), TS_AT(tn)}, 0.0);
    ts_store(b, y, &TS_AT(tn), ts_reduce(b, (ts_reduce_op)in->op, xv, 0, 0));
    B_END();
}

/* C[M, N] (f32) = A[M, K] B (B[K, N], or B[N, K] transposed in the kernel when op == 1),
 * over an inner loop of K tiles (op 2: one whole-K step) */
static ts_status build_dot(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    const op_info *in = info_of(kd);
    B_BEGIN(in->kname);
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N"), K = ts_size_sym(b, "K");
    ts_param A = ts_param_tensor(b, "A", dt, 2, (ts_size[]){M, K});
    ts_param B = in->op == 1 ? ts_param_tensor(b, "B", dt, 2, (ts_size[]){N, K}) : ts_param_tensor(b, "B", dt, 2, (ts_size[]){K, N});
    ts_dtype cdt = dt == TS_I8 ? TS_I32 : TS_F32; /* i8 x i8 accumulates exactly in i32 */
    ts_param C = ts_param_tensor(b, "C", cdt, 2, (ts_size[]){M, N});
    ts_tunable(b, "BLOCK_M", 16, 128, 32);
    ts_tunable(b, "BLOCK_N", 16, 128, 32);
    if (in->op != 2) ts_tunable(b, "BLOCK_K", 8, 64, 16);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile tn = ts_grid_tile(b, "tn", N, "BLOCK_N");
    ts_val acc0 = ts_zeros(b, cdt, 2, (ts_tile[]){tm, tn}), acc, res;
    ts_tile tk = ts_loop_begin(b, "tk", K, in->op == 2 ? NULL : "BLOCK_K", 1, &acc0, &acc);
    ts_val av = ts_load(b, A, (ts_index[]){TS_AT(tm), TS_AT(tk)}, 0.0);
    ts_val bv = in->op == 1 ? ts_transpose(b, ts_load(b, B, (ts_index[]){TS_AT(tn), TS_AT(tk)}, 0.0))
                            : ts_load(b, B, (ts_index[]){TS_AT(tk), TS_AT(tn)}, 0.0);
    ts_val nxt = ts_dot(b, av, bv, acc);
    ts_loop_end(b, &nxt, &res);
    ts_store(b, C, (ts_index[]){TS_AT(tm), TS_AT(tn)}, res);
    B_END();
}

/* y[N] (to) = cast(x[N]) */
static ts_status build_cast(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    const op_info *in = info_of(kd);
    B_BEGIN(in->kname);
    ts_size N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 1, &N);
    ts_param y = ts_param_tensor(b, "y", in->to, 1, &N);
    ts_tunable(b, "BLOCK", 16, 4096, 256);
    ts_tile tn = ts_grid_tile(b, "tn", N, "BLOCK");
    ts_store(b, y, &TS_AT(tn), ts_cast(b, ts_load(b, x, &TS_AT(tn), 0.0), in->to));
    B_END();
}

/* out[M, D] = table[ids[M], D]; ids out of range give the fill value -1.5 */
static ts_status build_gather(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    const op_info *in = info_of(kd);
    B_BEGIN(in->kname);
    ts_size M = ts_size_sym(b, "M"), V = ts_size_sym(b, "V"), D = ts_size_sym(b, "D");
    ts_param ids = ts_param_tensor(b, "ids", in->to, 1, &M);
    ts_param table = ts_param_tensor(b, "table", dt, 2, (ts_size[]){V, D});
    ts_param y = ts_param_tensor(b, "out", dt, 2, (ts_size[]){M, D});
    ts_tunable(b, "BLOCK_M", 1, 64, 4);
    ts_tunable(b, "BLOCK_D", 16, 1024, 64);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile td = ts_grid_tile(b, "td", D, "BLOCK_D");
    ts_val iv = ts_load(b, ids, &TS_AT(tm), 0.0);
    ts_store(b, y, (ts_index[]){TS_AT(tm), TS_AT(td)}, ts_gather(b, table, iv, TS_AT(td), -1.5));
    B_END();
}

/* op 0: out[N] += column sums of each [BLOCK_M, BLOCK_N] tile of x (many programs per element);
 * op 1: out[0] += the sum of each tile (every program adds into one element) */
static ts_status build_atomic(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    const op_info *in = info_of(kd);
    B_BEGIN(in->kname);
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_size ysize = in->op == 0 ? N : ts_size_fixed(b, 1);
    ts_param y = ts_param_tensor(b, "out", dt, 1, &ysize);
    ts_tunable(b, "BLOCK_M", 1, 64, 16);
    ts_tunable(b, "BLOCK_N", 16, 1024, 64);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile tn = ts_grid_tile(b, "tn", N, "BLOCK_N");
    ts_val xv = ts_load(b, x, (ts_index[]){TS_AT(tm), TS_AT(tn)}, 0.0);
    ts_val cols = ts_reduce(b, TS_RED_SUM, xv, 0, 0);
    if (in->op == 0) ts_atomic_add(b, y, &TS_AT(tn), cols);
    else ts_atomic_add(b, y, &TS_CONST_IDX(0), ts_reduce(b, TS_RED_SUM, cols, 0, 0));
    B_END();
}

/* op 0 (tril): y = where(row >= col, x, 0); op 1 (where): y = where(x > s, x, x * 0.25);
 * op 2 (arange): y[N] = arange * 3 + s (i32) */
static ts_status build_mask(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    const op_info *in = info_of(kd);
    B_BEGIN(in->kname);
    ts_size N = ts_size_sym(b, "N");
    if (in->op == 2) {
        ts_param y = ts_param_tensor(b, "y", TS_I32, 1, &N);
        ts_param s = ts_param_scalar(b, "s", TS_I32);
        ts_tunable(b, "BLOCK", 16, 4096, 256);
        ts_tile tn = ts_grid_tile(b, "tn", N, "BLOCK");
        ts_val r = ts_binary(b, TS_MUL, ts_arange(b, tn), ts_full(b, TS_I32, 0, NULL, 3));
        ts_store(b, y, &TS_AT(tn), ts_binary(b, TS_ADD, r, ts_scalar(b, s)));
        B_END();
    }
    ts_size M = ts_size_sym(b, "M");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "y", dt, 2, (ts_size[]){M, N});
    ts_param s = in->op == 1 ? ts_param_scalar(b, "s", dt) : TS_NONE;
    ts_tile tm, tn;
    tiles_2d(b, M, N, &tm, &tn);
    ts_index ix[2] = {TS_AT(tm), TS_AT(tn)};
    ts_val xv = ts_load(b, x, ix, 0.0);
    ts_val r;
    if (in->op == 0) {
        ts_val keep = ts_binary(b, TS_GE, ts_expand_dims(b, ts_arange(b, tm), 1), ts_expand_dims(b, ts_arange(b, tn), 0));
        r = ts_select(b, keep, xv, ts_full(b, dt, 0, NULL, 0.0));
    } else {
        ts_val sv = ts_scalar(b, s);
        ts_val quarter = ts_binary(b, TS_MUL, xv, ts_full(b, dt, 0, NULL, 0.25));
        r = ts_select(b, ts_binary(b, TS_GT, xv, sv), xv, quarter);
    }
    ts_store(b, y, ix, r);
    B_END();
}

/* y[M, N] = x[M, N]: storage of every dtype through every view */
static ts_status build_copy(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    B_BEGIN(info_of(kd)->kname);
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "y", dt, 2, (ts_size[]){M, N});
    ts_tile tm, tn;
    tiles_2d(b, M, N, &tm, &tn);
    ts_index ix[2] = {TS_AT(tm), TS_AT(tn)};
    ts_store(b, y, ix, ts_load(b, x, ix, 0.0));
    B_END();
}

/* ---------------------------------------------------------------- indexing and ranged loops (tile language) */

/* Kernels of the "index" group, as tile-language text with DT for the
 * dtype: every index form, masked at both edges, and loops over ranges
 * (empty ones included). */
static const char *const index_texts[] = {
    /* 0 shift_right: reads past the right edge are masked */
    "kernel K(x: DT[M, N], y: DT[M, N]) {\n tunable BLOCK_M = 8 in 1..64\n tunable BLOCK_N = 64 in 16..1024\n"
    " grid tm in tile(M, BLOCK_M), tn in tile(N, BLOCK_N)\n store(y[tm, tn], load(x[tm, tn + 3]))\n}\n",
    /* 1 shift_left: negative offsets, a scalar in the offset, fill before the start */
    "kernel K(x: DT[M, N], y: DT[M, N], s: i32) {\n tunable BLOCK_M = 8 in 1..64\n tunable BLOCK_N = 64 in 16..1024\n"
    " grid tm in tile(M, BLOCK_M), tn in tile(N, BLOCK_N)\n store(y[tm, tn], load(x[tm - 1, tn - s - 2], fill=2))\n}\n",
    /* 2 cross_dims: a tile over N indexes a dim of size M, and the other way */
    "kernel K(x: DT[M, N], y: DT[M, N]) {\n tunable BLOCK_M = 8 in 1..64\n tunable BLOCK_N = 64 in 16..1024\n"
    " grid tm in tile(M, BLOCK_M), tn in tile(N, BLOCK_N)\n store(y[tm, tn], transpose(load(x[tn, tm], fill=1)))\n}\n",
    /* 3 scalar: a rank-0 index from tile arithmetic, broadcast over rows (BLOCK_M fixed: the index depends on it) */
    "kernel K(x: DT[M, N], y: DT[M, N]) {\n tunable BLOCK_M = 8 in 8..8\n tunable BLOCK_N = 64 in 16..1024\n"
    " grid tm in tile(M, BLOCK_M), tn in tile(N, BLOCK_N)\n r = (tm.begin * 3 + tm.id) % M\n"
    " store(y[tm, tn], load(x[r, tn]) + zeros(DT, [tm, tn]))\n}\n",
    /* 4 value_load: rows reversed by a computed index */
    "kernel K(x: DT[M, N], y: DT[M, N]) {\n tunable BLOCK_M = 8 in 1..64\n tunable BLOCK_N = 64 in 16..1024\n"
    " grid tm in tile(M, BLOCK_M), tn in tile(N, BLOCK_N)\n store(y[tm, tn], load(x[M - 1 - arange(tm), tn]))\n}\n",
    /* 5 value_store: rows scattered by a computed index (a permutation) */
    "kernel K(x: DT[M, N], y: DT[M, N]) {\n tunable BLOCK_M = 8 in 1..64\n tunable BLOCK_N = 64 in 16..1024\n"
    " grid tm in tile(M, BLOCK_M), tn in tile(N, BLOCK_N)\n store(y[M - 1 - arange(tm), tn], load(x[tm, tn]))\n}\n",
    /* 6 value_atomic: rows added into three by a computed index */
    "kernel K(x: DT[M, N], y: DT[M, N]) {\n tunable BLOCK_M = 8 in 1..64\n tunable BLOCK_N = 64 in 16..1024\n"
    " grid tm in tile(M, BLOCK_M), tn in tile(N, BLOCK_N)\n atomic_add(y[arange(tm) % 3, tn], load(x[tm, tn]))\n}\n",
    /* 7 range_fixed: a sub-range 3 .. N - 2 (empty when N < 6) */
    "kernel K(x: DT[M, N], y: DT[M]) {\n tunable BLOCK_M = 8 in 1..64\n tunable BLOCK_N = 64 in 16..1024\n"
    " grid tm in tile(M, BLOCK_M)\n acc = for tk in tile(3 .. N - 2, BLOCK_N) carry (a = zeros(DT, [tm])) {\n"
    "  yield a + sum(load(x[tm, tk]), axis=1)\n }\n store(y[tm], acc)\n}\n",
    /* 8 range_loaded: per-row ranges read from tensors (some empty, some past N) */
    "kernel K(x: DT[M, N], lo: i32[M], hi: i32[M], y: DT[M]) {\n tunable BLOCK_N = 64 in 16..1024\n"
    " grid tm in points(M)\n l = load(lo[tm.begin])\n h = load(hi[tm.begin])\n"
    " acc = for tk in tile(l .. h, BLOCK_N) carry (a = zeros(DT, [])) {\n"
    "  yield a + sum(load(x[tm.begin, tk]), axis=0)\n }\n store(y[tm.begin], acc)\n}\n",
    /* 9 positions: t.begin, t.end, t.id and sizes as values (the blocks fixed: positions depend on them; the knobs vary) */
    "kernel K(x: DT[M, N], y: i32[M, N]) {\n tunable BLOCK_M = 8 in 8..8\n tunable BLOCK_N = 64 in 64..64\n"
    " grid tm in tile(M, BLOCK_M), tn in tile(N, BLOCK_N)\n"
    " v = tm.id * 100000 + tn.id * 1000 + (tn.end - tn.begin) * 7 + N % 5\n"
    " store(y[tm, tn], zeros(i32, [tm, tn]) + v)\n}\n",
    /* 10 rand: Philox bits, the same under every config and backend */
    "kernel K(x: DT[M, N], y: f32[M, N], s: i32) {\n tunable BLOCK_M = 8 in 1..64\n tunable BLOCK_N = 64 in 16..1024\n"
    " grid tm in tile(M, BLOCK_M), tn in tile(N, BLOCK_N)\n store(y[tm, tn], rand(s, [tm, tn]))\n}\n",
    /* 11 randint over a dim of 1 and a scalar seed expression */
    "kernel K(x: DT[M, N], y: i32[M, N], s: i32) {\n tunable BLOCK_M = 8 in 1..64\n tunable BLOCK_N = 64 in 16..1024\n"
    " grid tm in tile(M, BLOCK_M), tn in tile(N, BLOCK_N)\n store(y[tm, tn], randint(s * 7 + 1, [1, tn]) + randint(s, [tm, 1]))\n}\n",
    /* Scans run within a tile, so each scans a whole-dim tile: the result is then the same under every config. */
    /* 12 cumsum along whole rows: the padding past N (the tile is a power of two) never enters */
    "kernel K(x: DT[M, N], y: DT[M, N]) {\n tunable BLOCK_M = 2 in 1..64\n"
    " grid tm in tile(M, BLOCK_M), tn in tile(N)\n store(y[tm, tn], cumsum(load(x[tm, tn], fill=7), axis=1))\n}\n",
    /* 13 cumsum down whole columns, reversed: starts at the last valid row */
    "kernel K(x: DT[M, N], y: DT[M, N]) {\n tunable BLOCK_N = 16 in 1..256\n"
    " grid tm in tile(M), tn in tile(N, BLOCK_N)\n store(y[tm, tn], cumsum(load(x[tm, tn], fill=7), axis=0, reverse=true))\n}\n",
    /* 14 cumprod of factors near one over whole rows */
    "kernel K(x: DT[M, N], y: DT[M, N]) {\n tunable BLOCK_M = 2 in 1..64\n"
    " grid tm in tile(M, BLOCK_M), tn in tile(N)\n store(y[tm, tn], cumprod(load(x[tm, tn], fill=3) * 0.001 + 1, axis=-1))\n}\n",
    /* 15 cummax reversed along whole rows, a fill that would win if it leaked */
    "kernel K(x: DT[M, N], y: DT[M, N]) {\n tunable BLOCK_M = 2 in 1..64\n"
    " grid tm in tile(M, BLOCK_M), tn in tile(N)\n store(y[tm, tn], cummax(load(x[tm, tn], fill=100), axis=1, reverse=true))\n}\n",
    /* 16 cummin down columns of whole-column tiles */
    "kernel K(x: DT[M, N], y: DT[M, N]) {\n tunable BLOCK_N = 16 in 1..256\n"
    " grid tm in tile(M), tn in tile(N, BLOCK_N)\n store(y[tm, tn], cummin(load(x[tm, tn], fill=-100), axis=0))\n}\n",
};
static const char *const index_names[] = {"shift_right", "shift_left", "cross_dims", "scalar", "value_load", "value_store", "value_atomic",
                                          "range_fixed", "range_loaded", "positions", "rand", "randint",
                                          "cumsum", "cumsum_reverse", "cumprod", "cummax_reverse", "cummin_columns"};

static ts_status build_index(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    const op_info *in = info_of(kd);
    const char *t = index_texts[in->op];
    char text[2048], *o = text;
    for (const char *p = t; *p && o < text + sizeof text - 64; p++) { /* DT -> the dtype, K -> the kernel's name */
        if (p[0] == 'D' && p[1] == 'T') o += snprintf(o, 16, "%s", ts_dtype_name(dt)), p++;
        else if (p[0] == 'K' && p[1] == '(') o += snprintf(o, 60, "%s", in->kname);
        else *o++ = *p;
    }
    *o = 0;
    return ts_kernel_parse(text, in->kname, out);
}

static double index_scalar(const ts_conformance_kernel *kd, int param, const ts_conformance_sizes *s) {
    (void)kd, (void)param, (void)s;
    return 3.0;
}

static void range_ids(const ts_conformance_kernel *kd, int param, const ts_conformance_sizes *s, int64_t *lo, int64_t *hi) {
    (void)kd, (void)param;
    *lo = -2; /* ranges that start before 0 and end past N: masked */
    *hi = ts_conformance_size(s, "N") + 3;
}

/* ---------------------------------------------------------------- the table */

#define MAX_BUILTINS 128
static ts_conformance_kernel table[MAX_BUILTINS];
static op_info infos[MAX_BUILTINS];
static char names[MAX_BUILTINS][48];
static int ntable;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static ts_conformance_kernel *add(const char *group, const char *op, ts_status (*build)(const ts_conformance_kernel *, ts_dtype, ts_kernel **)) {
    int i = ntable++;
    ts_conformance_kernel *k = &table[i];
    memset(k, 0, sizeof *k);
    snprintf(names[i], sizeof names[i], "op.%s.%s", group, op);
    snprintf(infos[i].kname, sizeof infos[i].kname, "%s_%s", group, op);
    k->name = names[i];
    k->group = group;
    k->build = build;
    k->user = &infos[i];
    k->quick_dtypes = 1;
    k->quick_configs = 1;
    return k;
}

static void set_dtypes(ts_conformance_kernel *k, int quick, int n, const ts_dtype *d) {
    for (int i = 0; i < n && i < 8; i++) k->dtypes[i] = d[i];
    k->ndtypes = n;
    k->quick_dtypes = quick;
}
#define DTYPES(k, quick, ...) set_dtypes((k), (quick), (int)(sizeof((ts_dtype[]){__VA_ARGS__}) / sizeof(ts_dtype)), (ts_dtype[]){__VA_ARGS__})

static void set_shapes(ts_conformance_kernel *k, const ts_conformance_shape *s, int n, const ts_conformance_shape *special) {
    k->nshapes = 0;
    for (int i = 0; i < n && k->nshapes < TS_CONFORMANCE_MAX_SHAPES; i++) k->shapes[k->nshapes++] = s[i];
    if (special && k->nshapes < TS_CONFORMANCE_MAX_SHAPES) k->shapes[k->nshapes++] = *special;
}
#define SHAPES(k, arr, special) set_shapes((k), (arr), (int)(sizeof(arr) / sizeof((arr)[0])), (special))

static ts_conformance_tolerance tol_exact(void) { return (ts_conformance_tolerance){.kind = TS_CONFORMANCE_TOL_EXACT}; }
static ts_conformance_tolerance tol_ulp(double ulps, double half_ulps, double abs_ulps) {
    return (ts_conformance_tolerance){.kind = TS_CONFORMANCE_TOL_ULP, .ulps = ulps, .half_ulps = half_ulps, .abs_ulps = abs_ulps};
}
static ts_conformance_tolerance tol_sum(void) {
    return (ts_conformance_tolerance){.kind = TS_CONFORMANCE_TOL_SUM, .ulps = 1, .half_ulps = 1, .growth = 2};
}

static void gather_ids(const ts_conformance_kernel *kd, int param, const ts_conformance_sizes *s, int64_t *lo, int64_t *hi) {
    (void)kd;
    (void)param;
    *lo = -3; /* a few ids on each side are out of range: the fill value */
    *hi = ts_conformance_size(s, "V") + 3;
}

static double where_scalar(const ts_conformance_kernel *kd, int param, const ts_conformance_sizes *s) {
    (void)s;
    (void)param;
    return info_of(kd)->op == 2 ? 5.0 : 0.5;
}

/* Elementwise math: ULP bounds after the OpenCL conformance tests' f32 bounds
 * (docs/conformance.md has the table and the reasons). */
static const struct {
    ts_unary_op op;
    const char *name;
    double lo, hi, ulps, abs_ulps;
    int specials;
} unary_ops[] = {
    {TS_NEG, "neg", -2, 2, 0, 0, 1},        {TS_ABS, "abs", -2, 2, 0, 0, 1},
    {TS_RELU, "relu", -2, 2, 0, 0, 0},      {TS_EXP, "exp", -8, 8, 3, 0, 1},
    {TS_LOG, "log", 0.01, 100, 3, 0, 0},    {TS_SQRT, "sqrt", 0.01, 100, 3, 0, 0},
    {TS_RSQRT, "rsqrt", 0.01, 100, 2, 0, 0}, {TS_TANH, "tanh", -5, 5, 5, 0, 1},
    {TS_SIGMOID, "sigmoid", -10, 10, 8, 0, 0}, {TS_ERF, "erf", -3, 3, 16, 0, 1},
    {TS_GELU, "gelu", -5, 5, 16, 16, 0},    {TS_SILU, "silu", -8, 8, 10, 0, 0},
    {TS_SIN, "sin", -6, 6, 4, 1, 0},        {TS_COS, "cos", -6, 6, 4, 1, 0},
    {TS_NOT, "not", 0, 0, 0, 0, 0},
};

static const struct {
    ts_binary_op op;
    const char *name;
    double ulps;
    int kind; /* 0 arithmetic (float and int), 1 float only, 2 comparison, 3 logical, 4 integer only */
} binary_ops[] = {
    {TS_ADD, "add", 0, 0}, {TS_SUB, "sub", 0, 0}, {TS_MUL, "mul", 0, 0}, {TS_DIV, "div", 3, 0}, {TS_MAX, "max", 0, 0},
    {TS_MIN, "min", 0, 0}, {TS_POW, "pow", 16, 1}, {TS_LT, "lt", 0, 2},  {TS_LE, "le", 0, 2},   {TS_GT, "gt", 0, 2},
    {TS_GE, "ge", 0, 2},   {TS_EQ, "eq", 0, 2},   {TS_NE, "ne", 0, 2},   {TS_AND, "and", 0, 3}, {TS_OR, "or", 0, 3},
    {TS_MOD, "mod", 0, 4},
};

static const struct {
    const char *name;
    ts_dtype from, to;
    double lo, hi;
    int64_t ilo, ihi;
    int ties, allow_zero;
    double quantum;
} casts[] = {
    {"f32_to_f16", TS_F32, TS_F16, -100, 100, 0, 0, 1, 0, 0},
    {"f32_to_bf16", TS_F32, TS_BF16, -100, 100, 0, 0, 1, 0, 0},
    {"f32_to_i32", TS_F32, TS_I32, -1000, 1000, 0, 0, 0, 0, 0},
    {"f32_to_u8", TS_F32, TS_U8, 0, 255, 0, 0, 0, 0, 0},
    {"f32_to_bool", TS_F32, TS_BOOL, -2, 2, 0, 0, 0, 1, 1},
    {"f64_to_f32", TS_F64, TS_F32, -100, 100, 0, 0, 1, 0, 0},
    {"f16_to_f32", TS_F16, TS_F32, -100, 100, 0, 0, 0, 0, 0},
    {"bf16_to_f32", TS_BF16, TS_F32, -100, 100, 0, 0, 0, 0, 0},
    {"i32_to_f32", TS_I32, TS_F32, 0, 0, -(INT64_C(1) << 26), INT64_C(1) << 26, 0, 0, 0},
    {"i32_to_f16", TS_I32, TS_F16, 0, 0, -70000, 70000, 0, 0, 0},
    {"i64_to_i32", TS_I64, TS_I32, 0, 0, -(INT64_C(1) << 40), INT64_C(1) << 40, 0, 0, 0},
    {"u8_to_f32", TS_U8, TS_F32, 0, 0, 0, 256, 0, 0, 0},
    {"bool_to_f32", TS_BOOL, TS_F32, 0, 0, 0, 2, 0, 0, 0},
    /* 8- and 16-bit dtypes: round to nearest even at ties, overflow (NaN for e4m3, inf for e5m2), wrap */
    {"f32_to_f8_e4m3", TS_F32, TS_F8_E4M3, -500, 500, 0, 0, 1, 0, 0},
    {"f32_to_f8_e5m2", TS_F32, TS_F8_E5M2, -70000, 70000, 0, 0, 1, 0, 0},
    {"f32_to_f8_e4m3_small", TS_F32, TS_F8_E4M3, -0.03, 0.03, 0, 0, 1, 1, 0}, /* subnormals */
    {"f8_e4m3_to_f32", TS_F8_E4M3, TS_F32, -448, 448, 0, 0, 0, 0, 0},
    {"f8_e5m2_to_f32", TS_F8_E5M2, TS_F32, -57344, 57344, 0, 0, 0, 0, 0},
    {"f8_e4m3_to_bf16", TS_F8_E4M3, TS_BF16, -448, 448, 0, 0, 0, 0, 0},
    {"f16_to_f8_e5m2", TS_F16, TS_F8_E5M2, -100, 100, 0, 0, 1, 0, 0},
    {"i32_to_i8", TS_I32, TS_I8, 0, 0, -1000, 1000, 0, 0, 0},
    {"i32_to_i16", TS_I32, TS_I16, 0, 0, -100000, 100000, 0, 0, 0},
    {"i8_to_f32", TS_I8, TS_F32, 0, 0, -128, 128, 0, 0, 0},
    {"i16_to_i32", TS_I16, TS_I32, 0, 0, -32768, 32768, 0, 0, 0},
    {"f32_to_i8", TS_F32, TS_I8, -127, 127, 0, 0, 0, 0, 0},
};

static void fill_table(void) {
    ts_conformance_kernel *k;
    /* unary */
    for (size_t i = 0; i < sizeof unary_ops / sizeof unary_ops[0]; i++) {
        k = add("unary", unary_ops[i].name, build_unary);
        infos[ntable - 1].op = unary_ops[i].op;
        SHAPES(k, shapes_2d, unary_ops[i].specials ? &shape_special_2d : NULL);
        k->lo = unary_ops[i].lo;
        k->hi = unary_ops[i].hi;
        if (unary_ops[i].op == TS_NOT) {
            DTYPES(k, 1, TS_BOOL);
            k->int_lo = 0, k->int_hi = 2;
            k->tol = tol_exact();
        } else if (unary_ops[i].op == TS_NEG || unary_ops[i].op == TS_ABS || unary_ops[i].op == TS_RELU) {
            DTYPES(k, 2, TS_F32, TS_I32, TS_F16, TS_BF16, TS_F64, TS_I64);
            k->int_lo = -1000, k->int_hi = 1000;
            k->tol = tol_exact();
        } else {
            DTYPES(k, unary_ops[i].op == TS_EXP ? 3 : 1, TS_F32, TS_F16, TS_BF16, TS_F64);
            k->tol = tol_ulp(unary_ops[i].ulps, 1, unary_ops[i].abs_ulps);
        }
    }
    /* binary */
    for (size_t i = 0; i < sizeof binary_ops / sizeof binary_ops[0]; i++) {
        int kind = binary_ops[i].kind;
        ts_binary_op op = binary_ops[i].op;
        k = add("binary", binary_ops[i].name, build_binary);
        infos[ntable - 1].op = op;
        int specials = kind == 2 || op == TS_ADD || op == TS_SUB || op == TS_MUL || op == TS_DIV || op == TS_MAX || op == TS_MIN;
        SHAPES(k, shapes_2d, specials ? &shape_special_2d : NULL);
        k->tol = binary_ops[i].ulps > 0 ? tol_ulp(binary_ops[i].ulps, 1, 0) : tol_exact();
        k->int_lo = -50, k->int_hi = 50;
        if (kind == 0) {
            int quick = op == TS_ADD || op == TS_DIV || op == TS_MAX ? 2 : 1;
            DTYPES(k, quick, TS_F32, TS_I32, TS_F16, TS_BF16, TS_F64, TS_I64, TS_I8, TS_I16);
            if (op == TS_DIV) k->allow_zero = 1; /* integer division by zero gives 0 */
            if (op == TS_MAX || op == TS_MIN) k->quantum = 0.25;
        } else if (kind == 1) {
            DTYPES(k, 1, TS_F32, TS_F16, TS_BF16, TS_F64);
            k->lo = 0.25, k->hi = 4;
        } else if (kind == 2) {
            DTYPES(k, 1, TS_F32, TS_I32, TS_F16, TS_F64);
            k->quantum = 0.5; /* equal operands are common */
            k->int_lo = -3, k->int_hi = 3;
        } else if (kind == 4) { /* integer only */
            DTYPES(k, 1, TS_I32, TS_I64);
            k->allow_zero = 1; /* remainder by zero gives 0 */
        } else {
            DTYPES(k, 1, TS_BOOL);
            k->int_lo = 0, k->int_hi = 2;
        }
    }
    k = add("broadcast", "outer", build_outer);
    DTYPES(k, 1, TS_F32, TS_I32, TS_F16);
    SHAPES(k, shapes_2d, NULL);
    k->tol = tol_exact();
    /* reductions */
    static const struct { ts_reduce_op op; const char *name; } reds[] = {
        {TS_RED_SUM, "sum"}, {TS_RED_MAX, "max"}, {TS_RED_MIN, "min"}, {TS_RED_MEAN, "mean"}, {TS_RED_ARGMAX, "argmax"}};
    for (int axis = 1; axis >= 0; axis--)
        for (size_t i = 0; i < sizeof reds / sizeof reds[0]; i++) {
            char nm[32];
            snprintf(nm, sizeof nm, "%s_%s", reds[i].name, axis ? "rows" : "cols");
            k = add("reduce", nm, axis ? build_reduce_rows : build_reduce_cols);
            infos[ntable - 1].op = reds[i].op;
            SHAPES(k, shapes_reduce, NULL);
            k->reduce_size = axis ? "N" : "M";
            k->int_lo = -1000, k->int_hi = 1000;
            switch (reds[i].op) {
            case TS_RED_SUM: DTYPES(k, axis ? 2 : 1, TS_F32, TS_I32, TS_F16, TS_BF16, TS_F64, TS_I64, TS_I8, TS_I16); k->tol = tol_sum(); break;
            case TS_RED_MEAN: DTYPES(k, 1, TS_F32, TS_F16, TS_BF16, TS_F64); k->tol = tol_sum(); break;
            default:
                DTYPES(k, 1, TS_F32, TS_I32, TS_F16, TS_BF16, TS_F64, TS_I8, TS_I16, TS_F8_E4M3);
                k->tol = tol_exact();
                k->quantum = 1.0 / 64; /* ties: the first maximum wins */
                k->lo = -1, k->hi = 1;
                break;
            }
        }
    /* dot */
    static const char *dots[] = {"nn", "nt", "whole_k"};
    for (int i = 0; i < 3; i++) {
        k = add("dot", dots[i], build_dot);
        infos[ntable - 1].op = i;
        if (i == 0) DTYPES(k, 3, TS_F32, TS_F16, TS_BF16, TS_I8, TS_F8_E4M3, TS_F8_E5M2);
        else DTYPES(k, 1, TS_F32, TS_F16, TS_BF16, TS_I8);
        SHAPES(k, shapes_dot, NULL);
        if (i == 2) { /* the whole K extent is one tile: at most 16384 */
            for (int s = 0; s < k->nshapes; s++)
                if (strcmp(k->shapes[s].shape_class, "large") == 0) k->shapes[s].sizes = "M=200,N=300,K=999";
        }
        k->reduce_size = "K";
        k->tol = tol_sum();
    }
    /* casts */
    for (size_t i = 0; i < sizeof casts / sizeof casts[0]; i++) {
        k = add("cast", casts[i].name, build_cast);
        infos[ntable - 1].to = casts[i].to;
        set_dtypes(k, 1, 1, &casts[i].from);
        int float_from = ts_dtype_is_float(casts[i].from), float_to = ts_dtype_is_float(casts[i].to);
        SHAPES(k, shapes_1d, float_from && float_to ? &shape_special_1d : NULL);
        k->lo = casts[i].lo, k->hi = casts[i].hi;
        k->int_lo = casts[i].ilo, k->int_hi = casts[i].ihi;
        k->ties = casts[i].ties;
        k->ties_dtype = casts[i].to;
        k->allow_zero = casts[i].allow_zero;
        k->quantum = casts[i].quantum;
        k->tol = tol_exact(); /* round to nearest even, truncation toward zero, wrap: one right answer */
    }
    /* gather */
    k = add("gather", "rows", build_gather);
    infos[ntable - 1].to = TS_I32;
    DTYPES(k, 1, TS_F32, TS_F16, TS_BF16, TS_I32);
    SHAPES(k, shapes_gather, NULL);
    k->int_range = gather_ids;
    k->tol = tol_exact();
    k = add("gather", "ids_i64", build_gather);
    infos[ntable - 1].to = TS_I64;
    DTYPES(k, -1, TS_F32); /* full level only */
    SHAPES(k, shapes_gather, NULL);
    k->int_range = gather_ids;
    k->tol = tol_exact();
    /* atomics */
    static const char *atomics[] = {"colsum", "total"};
    for (int i = 0; i < 2; i++) {
        k = add("atomic", atomics[i], build_atomic);
        infos[ntable - 1].op = i;
        DTYPES(k, 2, TS_F32, TS_I32);
        SHAPES(k, shapes_atomic, NULL);
        k->outputs = 0;
        k->accumulate = 1u << 1;
        k->atomics = 1;
        k->reduce_size = "M";
        k->int_lo = -1000, k->int_hi = 1000;
        k->tol = tol_sum();
        if (i == 1) { /* everything lands in one element: L is the element count */
            k->reduce_size = NULL;
            k->tol.growth = 0;
        }
    }
    /* masks */
    static const char *masks[] = {"tril", "where", "arange"};
    for (int i = 0; i < 3; i++) {
        k = add("mask", masks[i], build_mask);
        infos[ntable - 1].op = i;
        if (i == 2) {
            DTYPES(k, 1, TS_I32);
            SHAPES(k, shapes_1d, NULL);
            k->outputs = 1u << 0;
        } else {
            DTYPES(k, 1, TS_F32, TS_I32, TS_F16, TS_F64);
            SHAPES(k, shapes_2d, NULL);
            k->int_lo = -5, k->int_hi = 5;
            k->quantum = i == 1 ? 0.25 : 0;
        }
        if (i > 0) k->scalar = where_scalar;
        k->tol = tol_exact();
    }
    /* layout */
    k = add("layout", "copy", build_copy);
    DTYPES(k, 2, TS_F32, TS_U8, TS_F16, TS_BF16, TS_F64, TS_I32, TS_I64, TS_BOOL);
    SHAPES(k, shapes_2d, NULL);
    k->int_lo = 0, k->int_hi = 2; /* valid for bool too */
    k->allow_zero = 1;
    k->tol = tol_exact();
    k = add("layout", "copy_narrow", build_copy); /* the 8- and 16-bit dtypes, bit for bit */
    DTYPES(k, 4, TS_I8, TS_I16, TS_F8_E4M3, TS_F8_E5M2);
    SHAPES(k, shapes_2d, NULL);
    k->int_lo = -128, k->int_hi = 128;
    k->lo = -400, k->hi = 400;
    k->allow_zero = 1;
    k->tol = tol_exact();

    /* indexing: offsets, any tile on any dim, scalar and value indices, ranged loops */
    for (int i = 0; i < (int)(sizeof index_names / sizeof index_names[0]); i++) {
        k = add("index", index_names[i], build_index);
        infos[ntable - 1].op = i;
        SHAPES(k, shapes_2d, NULL);
        k->int_lo = -50, k->int_hi = 50;
        k->tol = tol_exact();
        k->scalar = index_scalar;
        if (i == 12 || i == 13) { /* sums: exact for integers, a summation tolerance for floats */
            DTYPES(k, 1, TS_F32, TS_I32);
            k->reduce_size = i == 12 ? "N" : "M";
            k->tol = tol_sum();
        } else if (i == 14) {
            DTYPES(k, 1, TS_F32);
            k->reduce_size = "N";
            k->tol = tol_sum();
        } else if (i == 15 || i == 16) DTYPES(k, 2, TS_F32, TS_I32, TS_F16);
        else if (i >= 9) DTYPES(k, 1, TS_F32);
        else if (i == 6) {
            DTYPES(k, 1, TS_F32, TS_I32);
            k->outputs = 0;
            k->accumulate = 1u << 1;
            k->atomics = 1;
            k->reduce_size = "M";
            k->tol = tol_sum();
        } else if (i == 7 || i == 8) {
            DTYPES(k, 1, TS_F32, TS_I32);
            k->reduce_size = "N";
            k->tol = tol_sum();
            if (i == 8) k->int_range = range_ids;
        } else DTYPES(k, 1, TS_F32, TS_I32, TS_F16);
    }
    /* Outputs: the last tensor parameter unless set above. */
    for (int i = 0; i < ntable; i++) {
        ts_conformance_kernel *t = &table[i];
        if (t->outputs || t->accumulate) continue;
        ts_kernel *kk;
        if (t->build(t, t->dtypes[0], &kk) != TS_OK) continue;
        int last = -1;
        for (int p = 0; p < ts_kernel_param_count(kk); p++) {
            ts_param_info pi;
            ts_kernel_param(kk, p, &pi);
            if (pi.is_tensor) last = p;
        }
        if (last >= 0) t->outputs = 1u << last;
        ts_kernel_destroy(kk);
    }
}

static void init_table(void) { fill_table(); }

int ts__conf_builtin_count(void) {
    pthread_once(&table_once, init_table);
    return ntable;
}

const ts_conformance_kernel *ts__conf_builtin(int i) {
    pthread_once(&table_once, init_table);
    return i >= 0 && i < ntable ? &table[i] : NULL;
}
