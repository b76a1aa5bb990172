/* kernels.c: the example kernel set, written once with the C API.
 * Each kernel also exists as examples/NAME.tile in the tile language.
 * Block sizes are tunables; the tuner (or a config) picks them. */
#include "kernels.h"

#include <math.h>
#include <stddef.h>

#define B_BEGIN(name)              \
    ts_builder *b;                 \
    ts_status s_ = ts_builder_create(name, &b); \
    if (s_) return s_
#define B_END()                          \
    s_ = ts_builder_finish(b, out);      \
    ts_builder_destroy(b);               \
    return s_

/* y[n] = f(x[n]) over a 1-D tile grid. */
static ts_status build_unary1d(const char *name, ts_unary_op op, ts_dtype dt, ts_kernel **out) {
    B_BEGIN(name);
    ts_size N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 1, &N);
    ts_param y = ts_param_tensor(b, "y", dt, 1, &N);
    ts_tunable(b, "BLOCK", 16, 4096, 1024);
    ts_tile tn = ts_grid_tile(b, "tn", N, "BLOCK");
    ts_val v = ts_load(b, x, &TS_AT(tn), 0.0);
    if (dt != TS_F32) v = ts_cast(b, v, TS_F32);
    ts_val r = ts_unary(b, op, v);
    ts_store(b, y, &TS_AT(tn), r);
    B_END();
}

static ts_status build_exp(ts_dtype dt, ts_kernel **out) { return build_unary1d("exp", TS_EXP, dt, out); }
static ts_status build_gelu(ts_dtype dt, ts_kernel **out) { return build_unary1d("gelu", TS_GELU, dt, out); }
static ts_status build_silu(ts_dtype dt, ts_kernel **out) { return build_unary1d("silu", TS_SILU, dt, out); }

/* y[m, n] = x[m, n] + bias[n] */
static ts_status build_add(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("add");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param bias = ts_param_tensor(b, "bias", dt, 1, &N);
    ts_param y = ts_param_tensor(b, "y", dt, 2, (ts_size[]){M, N});
    ts_tunable(b, "BLOCK_M", 1, 64, 8);
    ts_tunable(b, "BLOCK_N", 16, 1024, 256);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile tn = ts_grid_tile(b, "tn", N, "BLOCK_N");
    ts_val xv = ts_load(b, x, (ts_index[]){TS_AT(tm), TS_AT(tn)}, 0.0);
    ts_val bv = ts_load(b, bias, &TS_AT(tn), 0.0); /* [tn] broadcasts over tm */
    ts_store(b, y, (ts_index[]){TS_AT(tm), TS_AT(tn)}, ts_binary(b, TS_ADD, xv, bv));
    B_END();
}

/* out[m, n] = silu(gate[m, n]) * up[m, n] */
static ts_status build_swiglu(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("swiglu");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param g = ts_param_tensor(b, "gate", dt, 2, (ts_size[]){M, N});
    ts_param u = ts_param_tensor(b, "up", dt, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "out", dt, 2, (ts_size[]){M, N});
    ts_tunable(b, "BLOCK_M", 1, 64, 4);
    ts_tunable(b, "BLOCK_N", 16, 1024, 256);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile tn = ts_grid_tile(b, "tn", N, "BLOCK_N");
    ts_index ix[2] = {TS_AT(tm), TS_AT(tn)};
    ts_val gv = ts_load(b, g, ix, 0.0), uv = ts_load(b, u, ix, 0.0);
    ts_store(b, y, ix, ts_binary(b, TS_MUL, ts_unary(b, TS_SILU, gv), uv));
    B_END();
}

/* y[m] = sum_n x[m, n], one whole row per tile */
static ts_status build_sum(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("sum");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "y", dt, 1, &M);
    ts_tunable(b, "BLOCK_M", 1, 64, 4);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile tn = ts_grid_tile(b, "tn", N, NULL);
    ts_val xv = ts_load(b, x, (ts_index[]){TS_AT(tm), TS_AT(tn)}, 0.0);
    ts_store(b, y, &TS_AT(tm), ts_reduce(b, TS_RED_SUM, xv, 1, 0));
    B_END();
}

/* y[m] = sum_n x[m, n] through an inner loop over tiles of n */
static ts_status build_long_sum(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("long_sum");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "y", dt, 1, &M);
    ts_tunable(b, "BLOCK_M", 1, 64, 4);
    ts_tunable(b, "BLOCK_N", 16, 4096, 512);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_val acc0 = ts_zeros(b, dt, 1, &tm), acc, res;
    ts_tile tn = ts_loop_begin(b, "tn", N, "BLOCK_N", 1, &acc0, &acc);
    ts_val xv = ts_load(b, x, (ts_index[]){TS_AT(tm), TS_AT(tn)}, 0.0);
    ts_val nxt = ts_binary(b, TS_ADD, acc, ts_reduce(b, TS_RED_SUM, xv, 1, 0));
    ts_loop_end(b, &nxt, &res);
    ts_store(b, y, &TS_AT(tm), res);
    B_END();
}

/* y = softmax(x) along rows, one whole row per tile */
static ts_status build_softmax(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("softmax");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "y", dt, 2, (ts_size[]){M, N});
    ts_tunable(b, "BLOCK_M", 1, 64, 2);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile tn = ts_grid_tile(b, "tn", N, NULL);
    ts_index ix[2] = {TS_AT(tm), TS_AT(tn)};
    ts_val xv = ts_load(b, x, ix, -INFINITY);
    ts_val mx = ts_reduce(b, TS_RED_MAX, xv, 1, 1);
    ts_val e = ts_unary(b, TS_EXP, ts_binary(b, TS_SUB, xv, mx));
    ts_val den = ts_reduce(b, TS_RED_SUM, e, 1, 1);
    ts_store(b, y, ix, ts_binary(b, TS_DIV, e, den));
    B_END();
}

/* softmax in two passes over tiles of a row: running max and sum, then normalize */
static ts_status build_softmax_online(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("softmax_online");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "y", dt, 2, (ts_size[]){M, N});
    ts_tunable(b, "BLOCK_M", 1, 64, 2);
    ts_tunable(b, "BLOCK_N", 16, 4096, 512);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile d1[2] = {tm, TS_NONE};
    ts_val init[2], cur[2], res[2];
    init[0] = ts_full(b, dt, 2, d1, -INFINITY);
    init[1] = ts_zeros(b, dt, 2, d1);
    ts_tile tn = ts_loop_begin(b, "tn", N, "BLOCK_N", 2, init, cur);
    ts_val xv = ts_load(b, x, (ts_index[]){TS_AT(tm), TS_AT(tn)}, -INFINITY);
    ts_val mn = ts_binary(b, TS_MAX, cur[0], ts_reduce(b, TS_RED_MAX, xv, 1, 1));
    ts_val scaled = ts_binary(b, TS_MUL, cur[1], ts_unary(b, TS_EXP, ts_binary(b, TS_SUB, cur[0], mn)));
    ts_val ln = ts_binary(b, TS_ADD, scaled, ts_reduce(b, TS_RED_SUM, ts_unary(b, TS_EXP, ts_binary(b, TS_SUB, xv, mn)), 1, 1));
    ts_val nxt[2] = {mn, ln};
    ts_loop_end(b, nxt, res);
    ts_tile tn2 = ts_loop_begin(b, "tn2", N, "BLOCK_N", 0, NULL, NULL);
    ts_index ix[2] = {TS_AT(tm), TS_AT(tn2)};
    ts_val x2 = ts_load(b, x, ix, 0.0);
    ts_val p = ts_binary(b, TS_DIV, ts_unary(b, TS_EXP, ts_binary(b, TS_SUB, x2, res[0])), res[1]);
    ts_store(b, y, ix, p);
    ts_loop_end(b, NULL, NULL);
    (void)tn;
    B_END();
}

/* y = (x - mean) / sqrt(var + eps) * w + bias, over rows */
static ts_status build_layer_norm(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("layer_norm");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param w = ts_param_tensor(b, "w", dt, 1, &N);
    ts_param bias = ts_param_tensor(b, "b", dt, 1, &N);
    ts_param y = ts_param_tensor(b, "y", dt, 2, (ts_size[]){M, N});
    ts_param eps = ts_param_scalar(b, "eps", dt);
    ts_tunable(b, "BLOCK_M", 1, 64, 2);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile tn = ts_grid_tile(b, "tn", N, NULL);
    ts_index ix[2] = {TS_AT(tm), TS_AT(tn)};
    ts_val xv = ts_load(b, x, ix, 0.0);
    ts_val xc = ts_binary(b, TS_SUB, xv, ts_reduce(b, TS_RED_MEAN, xv, 1, 1));
    ts_val var = ts_reduce(b, TS_RED_MEAN, ts_binary(b, TS_MUL, xc, xc), 1, 1);
    ts_val rstd = ts_unary(b, TS_RSQRT, ts_binary(b, TS_ADD, var, ts_scalar(b, eps)));
    ts_val wv = ts_load(b, w, &TS_AT(tn), 0.0), bv = ts_load(b, bias, &TS_AT(tn), 0.0);
    ts_store(b, y, ix, ts_binary(b, TS_ADD, ts_binary(b, TS_MUL, ts_binary(b, TS_MUL, xc, rstd), wv), bv));
    B_END();
}

/* y = x / sqrt(mean(x^2) + eps) * w */
static ts_status build_rms_norm(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("rms_norm");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param w = ts_param_tensor(b, "w", dt, 1, &N);
    ts_param y = ts_param_tensor(b, "y", dt, 2, (ts_size[]){M, N});
    ts_param eps = ts_param_scalar(b, "eps", dt);
    ts_tunable(b, "BLOCK_M", 1, 64, 2);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile tn = ts_grid_tile(b, "tn", N, NULL);
    ts_index ix[2] = {TS_AT(tm), TS_AT(tn)};
    ts_val xv = ts_load(b, x, ix, 0.0);
    ts_val ms = ts_reduce(b, TS_RED_MEAN, ts_binary(b, TS_MUL, xv, xv), 1, 1);
    ts_val rstd = ts_unary(b, TS_RSQRT, ts_binary(b, TS_ADD, ms, ts_scalar(b, eps)));
    ts_val wv = ts_load(b, w, &TS_AT(tn), 0.0);
    ts_store(b, y, ix, ts_binary(b, TS_MUL, ts_binary(b, TS_MUL, xv, rstd), wv));
    B_END();
}

/* Shared body of matmul-like kernels: acc = sum over k tiles of A[tm,tk] B[tk,tn]. */
static ts_val matmul_body(ts_builder *b, ts_param A, ts_param B, ts_size K, ts_index batch, ts_tile tm, ts_tile tn) {
    ts_val acc0 = ts_zeros(b, TS_F32, 2, (ts_tile[]){tm, tn}), acc, res;
    ts_tile tk = ts_loop_begin(b, "tk", K, "BLOCK_K", 1, &acc0, &acc);
    ts_val a, bb;
    if (batch.kind == TS_IDX_POINT) {
        a = ts_load(b, A, (ts_index[]){batch, TS_AT(tm), TS_AT(tk)}, 0.0);
        bb = ts_load(b, B, (ts_index[]){batch, TS_AT(tk), TS_AT(tn)}, 0.0);
    } else {
        a = ts_load(b, A, (ts_index[]){TS_AT(tm), TS_AT(tk)}, 0.0);
        bb = ts_load(b, B, (ts_index[]){TS_AT(tk), TS_AT(tn)}, 0.0);
    }
    ts_val nxt = ts_dot(b, a, bb, acc);
    ts_loop_end(b, &nxt, &res);
    return res;
}

static void matmul_tunables(ts_builder *b) {
    ts_tunable(b, "BLOCK_M", 16, 128, 64);
    ts_tunable(b, "BLOCK_N", 16, 128, 64);
    ts_tunable(b, "BLOCK_K", 8, 64, 32);
}

/* C[m, n] = sum_k A[m, k] B[k, n]; f16/bf16 inputs accumulate in f32 */
static ts_status build_matmul(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("matmul");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N"), K = ts_size_sym(b, "K");
    ts_param A = ts_param_tensor(b, "A", dt, 2, (ts_size[]){M, K});
    ts_param B = ts_param_tensor(b, "B", dt, 2, (ts_size[]){K, N});
    ts_param C = ts_param_tensor(b, "C", dt, 2, (ts_size[]){M, N});
    matmul_tunables(b);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile tn = ts_grid_tile(b, "tn", N, "BLOCK_N");
    ts_val acc = matmul_body(b, A, B, K, TS_CONST_IDX(0), tm, tn);
    ts_store(b, C, (ts_index[]){TS_AT(tm), TS_AT(tn)}, acc);
    B_END();
}

/* C = gelu(A B + bias): the epilogue runs on the accumulator before the store */
static ts_status build_matmul_bias_gelu(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("matmul_bias_gelu");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N"), K = ts_size_sym(b, "K");
    ts_param A = ts_param_tensor(b, "A", dt, 2, (ts_size[]){M, K});
    ts_param B = ts_param_tensor(b, "B", dt, 2, (ts_size[]){K, N});
    ts_param bias = ts_param_tensor(b, "bias", TS_F32, 1, &N);
    ts_param C = ts_param_tensor(b, "C", dt, 2, (ts_size[]){M, N});
    matmul_tunables(b);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile tn = ts_grid_tile(b, "tn", N, "BLOCK_N");
    ts_val acc = matmul_body(b, A, B, K, TS_CONST_IDX(0), tm, tn);
    ts_val bv = ts_load(b, bias, &TS_AT(tn), 0.0);
    ts_store(b, C, (ts_index[]){TS_AT(tm), TS_AT(tn)}, ts_unary(b, TS_GELU, ts_binary(b, TS_ADD, acc, bv)));
    B_END();
}

/* C[z] = A[z] B[z] for each batch z */
static ts_status build_bmm(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("bmm");
    ts_size Z = ts_size_sym(b, "Z"), M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N"), K = ts_size_sym(b, "K");
    ts_param A = ts_param_tensor(b, "A", dt, 3, (ts_size[]){Z, M, K});
    ts_param B = ts_param_tensor(b, "B", dt, 3, (ts_size[]){Z, K, N});
    ts_param C = ts_param_tensor(b, "C", dt, 3, (ts_size[]){Z, M, N});
    matmul_tunables(b);
    ts_tile tz = ts_grid_point(b, "tz", Z);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile tn = ts_grid_tile(b, "tn", N, "BLOCK_N");
    ts_val acc = matmul_body(b, A, B, K, TS_POINT(tz), tm, tn);
    ts_store(b, C, (ts_index[]){TS_POINT(tz), TS_AT(tm), TS_AT(tn)}, acc);
    B_END();
}

/* O = softmax(Q K^T * scale [+ causal mask]) V, flash-style online softmax */
static ts_status build_attention(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("attention");
    ts_size H = ts_size_sym(b, "H"), S = ts_size_sym(b, "S"), T = ts_size_sym(b, "T"), D = ts_size_sym(b, "D");
    ts_param Q = ts_param_tensor(b, "q", dt, 3, (ts_size[]){H, S, D});
    ts_param Kp = ts_param_tensor(b, "k", dt, 3, (ts_size[]){H, T, D});
    ts_param V = ts_param_tensor(b, "v", dt, 3, (ts_size[]){H, T, D});
    ts_param O = ts_param_tensor(b, "o", dt, 3, (ts_size[]){H, S, D});
    ts_param scale = ts_param_scalar(b, "scale", TS_F32);
    ts_param causal = ts_param_scalar(b, "causal", TS_I32);
    ts_tunable(b, "BLOCK_Q", 16, 128, 32);
    ts_tunable(b, "BLOCK_KV", 16, 128, 32);
    ts_tile th = ts_grid_point(b, "th", H);
    ts_tile tq = ts_grid_tile(b, "tq", S, "BLOCK_Q");
    ts_tile td = ts_grid_tile(b, "td", D, NULL);
    /* f16/bf16: both dots take 16-bit operands (tensor cores where the
     * target has them), p cast to the input dtype for the second, as
     * FlashAttention does; scores and the online softmax stay in f32 */
    ts_val q = ts_load(b, Q, (ts_index[]){TS_POINT(th), TS_AT(tq), TS_AT(td)}, 0.0);
    ts_val qi = ts_expand_dims(b, ts_arange(b, tq), 1);
    /* builder calls in source order (C leaves argument evaluation order open) */
    ts_val cv = ts_scalar(b, causal), zero = ts_full(b, TS_I32, 0, NULL, 0);
    ts_val not_causal = ts_binary(b, TS_EQ, cv, zero);
    ts_val sc = ts_scalar(b, scale);
    ts_tile dq1[2] = {tq, TS_NONE};
    ts_val init[3];
    init[0] = ts_full(b, TS_F32, 2, dq1, -INFINITY);
    init[1] = ts_zeros(b, TS_F32, 2, dq1);
    init[2] = ts_zeros(b, TS_F32, 2, (ts_tile[]){tq, td});
    ts_val cur[3], res[3];
    ts_tile tk = ts_loop_begin(b, "tk", T, "BLOCK_KV", 3, init, cur);
    ts_val kv = ts_load(b, Kp, (ts_index[]){TS_POINT(th), TS_AT(tk), TS_AT(td)}, 0.0);
    ts_val vv = ts_load(b, V, (ts_index[]){TS_POINT(th), TS_AT(tk), TS_AT(td)}, 0.0);
    ts_val s = ts_binary(b, TS_MUL, ts_dot(b, q, ts_transpose(b, kv), TS_NONE), sc);
    ts_val keep = ts_binary(b, TS_OR, not_causal, ts_binary(b, TS_GE, qi, ts_arange(b, tk)));
    s = ts_select(b, keep, s, ts_full(b, TS_F32, 0, NULL, -INFINITY));
    ts_val mn = ts_binary(b, TS_MAX, cur[0], ts_reduce(b, TS_RED_MAX, s, 1, 1));
    ts_val p = ts_unary(b, TS_EXP, ts_binary(b, TS_SUB, s, mn));
    ts_val alpha = ts_unary(b, TS_EXP, ts_binary(b, TS_SUB, cur[0], mn));
    ts_val scaled = ts_binary(b, TS_MUL, cur[1], alpha);
    ts_val psum = ts_reduce(b, TS_RED_SUM, p, 1, 1);
    ts_val ln = ts_binary(b, TS_ADD, scaled, psum);
    ts_val an = ts_dot(b, dt != TS_F32 ? ts_cast(b, p, dt) : p, vv, ts_binary(b, TS_MUL, cur[2], alpha));
    ts_val nxt[3] = {mn, ln, an};
    ts_loop_end(b, nxt, res);
    (void)tk;
    ts_store(b, O, (ts_index[]){TS_POINT(th), TS_AT(tq), TS_AT(td)}, ts_binary(b, TS_DIV, res[2], res[1]));
    B_END();
}

/* loss[m] = logsumexp(logits[m, :]) - logits[m, target[m]] */
static ts_status build_cross_entropy(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("cross_entropy");
    ts_size M = ts_size_sym(b, "M"), V = ts_size_sym(b, "V");
    ts_param x = ts_param_tensor(b, "logits", dt, 2, (ts_size[]){M, V});
    ts_param t = ts_param_tensor(b, "target", TS_I32, 1, &M);
    ts_param loss = ts_param_tensor(b, "loss", TS_F32, 1, &M);
    ts_tunable(b, "BLOCK_M", 1, 64, 2);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile tv = ts_grid_tile(b, "tv", V, NULL);
    ts_val xv = ts_load(b, x, (ts_index[]){TS_AT(tm), TS_AT(tv)}, -INFINITY);
    if (dt != TS_F32) xv = ts_cast(b, xv, TS_F32);
    ts_val mx = ts_reduce(b, TS_RED_MAX, xv, 1, 1);
    ts_val lse = ts_binary(b, TS_ADD, ts_unary(b, TS_LOG, ts_reduce(b, TS_RED_SUM, ts_unary(b, TS_EXP, ts_binary(b, TS_SUB, xv, mx)), 1, 1)), mx);
    ts_val tv_ = ts_expand_dims(b, ts_load(b, t, &TS_AT(tm), 0.0), 1);
    ts_val hit = ts_binary(b, TS_EQ, ts_arange(b, tv), tv_);
    ts_val picked = ts_reduce(b, TS_RED_SUM, ts_select(b, hit, xv, ts_full(b, TS_F32, 0, NULL, 0.0)), 1, 1);
    ts_store(b, loss, &TS_AT(tm), ts_reduce(b, TS_RED_SUM, ts_binary(b, TS_SUB, lse, picked), 1, 0));
    B_END();
}

/* out[m, d] = table[ids[m], d] */
static ts_status build_embedding(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("embedding");
    ts_size M = ts_size_sym(b, "M"), V = ts_size_sym(b, "V"), D = ts_size_sym(b, "D");
    ts_param ids = ts_param_tensor(b, "ids", TS_I32, 1, &M);
    ts_param table = ts_param_tensor(b, "table", dt, 2, (ts_size[]){V, D});
    ts_param y = ts_param_tensor(b, "out", dt, 2, (ts_size[]){M, D});
    ts_tunable(b, "BLOCK_M", 1, 64, 4);
    ts_tunable(b, "BLOCK_D", 16, 1024, 128);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile td = ts_grid_tile(b, "td", D, "BLOCK_D");
    ts_val iv = ts_load(b, ids, &TS_AT(tm), 0.0);
    ts_store(b, y, (ts_index[]){TS_AT(tm), TS_AT(td)}, ts_gather(b, table, iv, TS_AT(td), 0.0));
    B_END();
}

/* y[n, m] = x[m, n] */
static ts_status build_transpose(ts_dtype dt, ts_kernel **out) {
    B_BEGIN("transpose");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "y", dt, 2, (ts_size[]){N, M});
    ts_tunable(b, "BLOCK_M", 8, 128, 32);
    ts_tunable(b, "BLOCK_N", 8, 128, 32);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BLOCK_M");
    ts_tile tn = ts_grid_tile(b, "tn", N, "BLOCK_N");
    ts_val xv = ts_load(b, x, (ts_index[]){TS_AT(tm), TS_AT(tn)}, 0.0);
    ts_store(b, y, (ts_index[]){TS_AT(tn), TS_AT(tm)}, ts_transpose(b, xv));
    B_END();
}

/* ---------------------------------------------------------------- independent references */

#define IO_AT(io, p, i) ((io)->data[p][i])

static void ref_unary(ts_ex_io *io, double (*f)(double)) {
    int64_t n = io->shape[0][0];
    for (int64_t i = 0; i < n; i++) io->data[1][i] = f(io->data[0][i]);
}
static double f_exp(double x) { return exp(x); }
static double f_gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double f_silu(double x) { return x / (1.0 + exp(-x)); }
static void ref_exp(ts_ex_io *io) { ref_unary(io, f_exp); }
static void ref_gelu(ts_ex_io *io) { ref_unary(io, f_gelu); }
static void ref_silu(ts_ex_io *io) { ref_unary(io, f_silu); }

static void ref_add(ts_ex_io *io) {
    int64_t M = io->shape[0][0], N = io->shape[0][1];
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) io->data[2][m * N + n] = io->data[0][m * N + n] + io->data[1][n];
}

static void ref_swiglu(ts_ex_io *io) {
    int64_t n = io->shape[0][0] * io->shape[0][1];
    for (int64_t i = 0; i < n; i++) io->data[2][i] = f_silu(io->data[0][i]) * io->data[1][i];
}

static void ref_rowsum(ts_ex_io *io) {
    int64_t M = io->shape[0][0], N = io->shape[0][1];
    for (int64_t m = 0; m < M; m++) {
        double s = 0;
        for (int64_t n = 0; n < N; n++) s += io->data[0][m * N + n];
        io->data[1][m] = s;
    }
}

static void ref_softmax(ts_ex_io *io) {
    int64_t M = io->shape[0][0], N = io->shape[0][1];
    for (int64_t m = 0; m < M; m++) {
        const double *x = io->data[0] + m * N;
        double mx = -INFINITY, s = 0;
        for (int64_t n = 0; n < N; n++) mx = x[n] > mx ? x[n] : mx;
        for (int64_t n = 0; n < N; n++) s += exp(x[n] - mx);
        for (int64_t n = 0; n < N; n++) io->data[1][m * N + n] = exp(x[n] - mx) / s;
    }
}

static void ref_layer_norm(ts_ex_io *io) {
    int64_t M = io->shape[0][0], N = io->shape[0][1];
    double eps = io->scalar[4];
    for (int64_t m = 0; m < M; m++) {
        const double *x = io->data[0] + m * N;
        double mean = 0, var = 0;
        for (int64_t n = 0; n < N; n++) mean += x[n];
        mean /= (double)N;
        for (int64_t n = 0; n < N; n++) var += (x[n] - mean) * (x[n] - mean);
        var /= (double)N;
        for (int64_t n = 0; n < N; n++) io->data[3][m * N + n] = (x[n] - mean) / sqrt(var + eps) * io->data[1][n] + io->data[2][n];
    }
}

static void ref_rms_norm(ts_ex_io *io) {
    int64_t M = io->shape[0][0], N = io->shape[0][1];
    double eps = io->scalar[3];
    for (int64_t m = 0; m < M; m++) {
        const double *x = io->data[0] + m * N;
        double ms = 0;
        for (int64_t n = 0; n < N; n++) ms += x[n] * x[n];
        ms /= (double)N;
        for (int64_t n = 0; n < N; n++) io->data[2][m * N + n] = x[n] / sqrt(ms + eps) * io->data[1][n];
    }
}

static void gemm(const double *A, const double *B, double *C, int64_t M, int64_t N, int64_t K) {
    for (int64_t m = 0; m < M; m++) {
        double *c = C + m * N;
        for (int64_t n = 0; n < N; n++) c[n] = 0;
        for (int64_t k = 0; k < K; k++) {
            double a = A[m * K + k];
            const double *bb = B + k * N;
            for (int64_t n = 0; n < N; n++) c[n] += a * bb[n];
        }
    }
}

static void ref_matmul(ts_ex_io *io) { gemm(io->data[0], io->data[1], io->data[2], io->shape[0][0], io->shape[1][1], io->shape[0][1]); }

static void ref_matmul_bias_gelu(ts_ex_io *io) {
    int64_t M = io->shape[0][0], N = io->shape[1][1], K = io->shape[0][1];
    gemm(io->data[0], io->data[1], io->data[3], M, N, K);
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) io->data[3][m * N + n] = f_gelu(io->data[3][m * N + n] + io->data[2][n]);
}

static void ref_bmm(ts_ex_io *io) {
    int64_t Z = io->shape[0][0], M = io->shape[0][1], K = io->shape[0][2], N = io->shape[1][2];
    for (int64_t z = 0; z < Z; z++) gemm(io->data[0] + z * M * K, io->data[1] + z * K * N, io->data[2] + z * M * N, M, N, K);
}

static void ref_attention(ts_ex_io *io) {
    int64_t H = io->shape[0][0], S = io->shape[0][1], D = io->shape[0][2], T = io->shape[1][1];
    double scale = io->scalar[4];
    int causal = io->scalar[5] != 0.0;
    for (int64_t h = 0; h < H; h++)
        for (int64_t s = 0; s < S; s++) {
            const double *q = io->data[0] + (h * S + s) * D;
            double mx = -INFINITY, den = 0;
            double *o = io->data[3] + (h * S + s) * D;
            for (int64_t d = 0; d < D; d++) o[d] = 0;
            for (int64_t t = 0; t < T; t++) {
                if (causal && t > s) continue;
                double dotv = 0;
                for (int64_t d = 0; d < D; d++) dotv += q[d] * io->data[1][(h * T + t) * D + d];
                dotv *= scale;
                mx = dotv > mx ? dotv : mx;
            }
            for (int64_t t = 0; t < T; t++) {
                if (causal && t > s) continue;
                double dotv = 0;
                for (int64_t d = 0; d < D; d++) dotv += q[d] * io->data[1][(h * T + t) * D + d];
                double p = exp(dotv * scale - mx);
                den += p;
                for (int64_t d = 0; d < D; d++) o[d] += p * io->data[2][(h * T + t) * D + d];
            }
            for (int64_t d = 0; d < D; d++) o[d] /= den;
        }
}

static void ref_cross_entropy(ts_ex_io *io) {
    int64_t M = io->shape[0][0], V = io->shape[0][1];
    for (int64_t m = 0; m < M; m++) {
        const double *x = io->data[0] + m * V;
        double mx = -INFINITY, s = 0;
        for (int64_t v = 0; v < V; v++) mx = x[v] > mx ? x[v] : mx;
        for (int64_t v = 0; v < V; v++) s += exp(x[v] - mx);
        io->data[2][m] = log(s) + mx - x[(int64_t)io->data[1][m]];
    }
}

static void ref_embedding(ts_ex_io *io) {
    int64_t M = io->shape[0][0], D = io->shape[1][1];
    for (int64_t m = 0; m < M; m++)
        for (int64_t d = 0; d < D; d++) io->data[2][m * D + d] = io->data[1][(int64_t)io->data[0][m] * D + d];
}

static void ref_transpose(ts_ex_io *io) {
    int64_t M = io->shape[0][0], N = io->shape[0][1];
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) io->data[1][n * M + m] = io->data[0][m * N + n];
}

/* ---------------------------------------------------------------- scalars and bounds */

static double sc_norm(int p, const ts_ex_sizes *s) {
    (void)p;
    (void)s;
    return 1e-5;
}

static double sc_attention(int p, const ts_ex_sizes *s) {
    if (p == 4) return 1.0 / sqrt((double)ts_ex_size(s, "D"));
    return p == 5 ? 1.0 : 0.0; /* causal on; the tests also run it off */
}

static int64_t bound_vocab(int p, const ts_ex_sizes *s) {
    (void)p;
    return ts_ex_size(s, "V");
}

/* ---------------------------------------------------------------- the table */

#define F32_ONLY {TS_F32}, 1
#define ALL_FLOATS {TS_F32, TS_F16, TS_BF16}, 3

static const ts_example examples[] = {
    {"add", "y = x + bias (bias broadcast over rows)", build_add, ALL_FLOATS, {"M=127,N=1000", "M=1,N=1", "M=7,N=13", "M=300,N=513"}, 1u << 2, NULL, NULL, ref_add, 1, NULL, NULL},
    {"exp", "y = exp(x)", build_exp, ALL_FLOATS, {"N=1000", "N=1", "N=7", "N=4099"}, 1u << 1, NULL, NULL, ref_exp, 1, NULL, NULL},
    {"gelu", "y = gelu(x) (erf form)", build_gelu, ALL_FLOATS, {"N=1000", "N=1", "N=7", "N=4099"}, 1u << 1, NULL, NULL, ref_gelu, 1, NULL, NULL},
    {"silu", "y = x * sigmoid(x)", build_silu, ALL_FLOATS, {"N=1000", "N=1", "N=7", "N=4099"}, 1u << 1, NULL, NULL, ref_silu, 1, NULL, NULL},
    {"swiglu", "out = silu(gate) * up", build_swiglu, ALL_FLOATS, {"M=127,N=1000", "M=1,N=1", "M=7,N=13", "M=64,N=513"}, 1u << 2, NULL, NULL, ref_swiglu, 1, NULL, NULL},
    {"sum", "y[m] = sum_n x[m, n] (whole row)", build_sum, F32_ONLY, {"M=127,N=1000", "M=1,N=1", "M=7,N=13", "M=33,N=4099"}, 1u << 1, NULL, NULL, ref_rowsum, 4, "N", NULL},
    {"long_sum", "y[m] = sum_n x[m, n] (inner tile loop)", build_long_sum, F32_ONLY, {"M=127,N=1000", "M=1,N=1", "M=7,N=13", "M=5,N=20000"}, 1u << 1, NULL, NULL, ref_rowsum, 4, "N", NULL},
    {"softmax", "row softmax (whole row)", build_softmax, ALL_FLOATS, {"M=127,N=1000", "M=1,N=1", "M=7,N=13", "M=33,N=4099"}, 1u << 1, NULL, NULL, ref_softmax, 2, "N", NULL},
    {"softmax_online", "row softmax, two passes with online max and sum", build_softmax_online, F32_ONLY, {"M=127,N=1000", "M=1,N=1", "M=7,N=13", "M=5,N=20000"}, 1u << 1, NULL, NULL, ref_softmax, 2, "N", NULL},
    {"layer_norm", "layer norm over rows", build_layer_norm, ALL_FLOATS, {"M=127,N=1000", "M=1,N=1", "M=7,N=13", "M=33,N=384"}, 1u << 3, sc_norm, NULL, ref_layer_norm, 4, "N", NULL},
    {"rms_norm", "RMS norm over rows", build_rms_norm, ALL_FLOATS, {"M=127,N=1000", "M=1,N=1", "M=7,N=13", "M=33,N=384"}, 1u << 2, sc_norm, NULL, ref_rms_norm, 4, "N", NULL},
    {"matmul", "C = A B, f32 accumulation", build_matmul, ALL_FLOATS, {"M=127,N=65,K=200", "M=1,N=1,K=1", "M=7,N=13,K=5", "M=200,N=300,K=127"}, 1u << 2, NULL, NULL, ref_matmul, 8, "K", NULL},
    {"matmul_bias_gelu", "C = gelu(A B + bias)", build_matmul_bias_gelu, ALL_FLOATS, {"M=127,N=65,K=200", "M=1,N=1,K=1", "M=7,N=13,K=5", "M=100,N=129,K=64"}, 1u << 3, NULL, NULL, ref_matmul_bias_gelu, 8, "K", NULL},
    {"bmm", "C[z] = A[z] B[z]", build_bmm, ALL_FLOATS, {"Z=3,M=65,N=33,K=40", "Z=1,M=1,N=1,K=1", "Z=2,M=7,N=13,K=5", "Z=4,M=100,N=70,K=129"}, 1u << 2, NULL, NULL, ref_bmm, 8, "K", NULL},
    {"attention", "softmax(Q K^T scale, causal) V, online softmax", build_attention, ALL_FLOATS, {"H=2,S=100,T=100,D=32", "H=1,S=1,T=1,D=1", "H=3,S=7,T=7,D=13", "H=2,S=129,T=129,D=64"}, 1u << 3, sc_attention, NULL, ref_attention, 8, "T", NULL},
    {"cross_entropy", "loss[m] = logsumexp(x[m]) - x[m, target[m]]", build_cross_entropy, F32_ONLY, {"M=127,V=1000", "M=1,V=1", "M=7,V=13", "M=33,V=4099"}, 1u << 2, NULL, bound_vocab, ref_cross_entropy, 4, "V", NULL},
    {"embedding", "out[m] = table[ids[m]] (gather)", build_embedding, ALL_FLOATS, {"M=127,V=1000,D=384", "M=1,V=1,D=1", "M=7,V=13,D=5", "M=300,V=50,D=129"}, 1u << 2, NULL, bound_vocab, ref_embedding, 1, NULL, NULL},
    {"transpose", "y = x^T", build_transpose, ALL_FLOATS, {"M=127,N=1000", "M=1,N=1", "M=7,N=13", "M=300,N=513"}, 1u << 1, NULL, NULL, ref_transpose, 1, NULL, NULL},
};

/* helion.c: the examples written in the tile language only */
extern const ts_example ts_helion_examples[];
extern const int ts_helion_example_count;

#define NBUILT ((int)(sizeof examples / sizeof examples[0]))
int ts_example_count(void) { return NBUILT + ts_helion_example_count; }
const ts_example *ts_example_get(int i) {
    if (i < 0 || i >= ts_example_count()) return NULL;
    return i < NBUILT ? &examples[i] : &ts_helion_examples[i - NBUILT];
}
