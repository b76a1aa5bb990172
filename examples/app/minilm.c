/* minilm.c: all-MiniLM-L6-v2 on Tessera (see minilm.h).
 *
 * Sections:
 *   1. the extra kernels, in the tile language (the others come from the example set)
 *   2. loading: checking the file's tensors, uploading, transposing linear weights on the device
 *   3. activations for a [B, S] batch, with the strided views attention uses
 *   4. the forward pass
 *   5. tuning the heavy kernels
 *   6. the expected output file
 *
 * Layout. Activations are row-major [T, C] with T = B*S tokens (a batch padded
 * to S). Linear weights are stored [in, out] (transposed from PyTorch's
 * [out, in] once, at load), and Q, K and V share one [384, 1152] weight, so
 * one launch projects all three. Attention reads the heads through views:
 * q[b, h, s, d] = qkv[b*S + s, h*64 + d], i.e. shape [B, 12, S, 64] with
 * strides [S*1152, 64, 1152, 1] (k and v at offsets 384 and 768), and writes
 * ctx[T, 384] the same way; the attention mask [B, S] masks the keys. */
#include "minilm.h"

#include "kernels.h"
#include "tessera_safetensors.h"
#include "ts_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define D_MODEL TS_MINILM_HIDDEN
#define N_HEADS TS_MINILM_HEADS
#define HEAD_DIM (D_MODEL / N_HEADS)
#define N_LAYERS TS_MINILM_LAYERS
#define D_FFN TS_MINILM_FFN
#define LN_EPS 1e-12

/* ---------------------------------------------------------------- 1. kernels */

/* word + position + token type embeddings, then layer norm, one row per token */
static const char K_EMBED[] =
    "kernel bert_embed(ids: i32[T], pos: i32[T], types: i32[T], word: f32[V, D], wpos: f32[P, D], wtype: f32[Y, D],\n"
    "                  g: f32[D], b: f32[D], y: f32[T, D], eps: f32) {\n"
    "  tunable BLOCK_T = 2 in 1..64\n"
    "  grid tt in tile(T, BLOCK_T), td in tile(D)\n"
    "  x = gather(word, load(ids[tt]), td) + gather(wpos, load(pos[tt]), td) + gather(wtype, load(types[tt]), td)\n"
    "  xc = x - mean(x, axis=1, keepdim=true)\n"
    "  var = mean(xc * xc, axis=1, keepdim=true)\n"
    "  store(y[tt, td], xc * rsqrt(var + eps) * load(g[td]) + load(b[td]))\n"
    "}\n";

/* C = A W + bias */
static const char K_LINEAR[] =
    "kernel linear(A: f32[M, K], W: f32[K, N], bias: f32[N], C: f32[M, N]) {\n"
    "  sizes M, N, K\n"
    "  tunable BLOCK_M = 64 in 16..128\n"
    "  tunable BLOCK_N = 64 in 16..128\n"
    "  tunable BLOCK_K = 32 in 8..64\n"
    "  grid tm in tile(M, BLOCK_M), tn in tile(N, BLOCK_N)\n"
    "  c = for tk in tile(K, BLOCK_K) carry (acc = zeros(f32, [tm, tn])) {\n"
    "    yield dot(load(A[tm, tk]), load(W[tk, tn]), acc)\n"
    "  }\n"
    "  store(C[tm, tn], c + load(bias[tn]))\n"
    "}\n";

/* C = A W + bias + R: the projection, its bias and the residual in one pass */
static const char K_LINEAR_RES[] =
    "kernel linear_residual(A: f32[M, K], W: f32[K, N], bias: f32[N], R: f32[M, N], C: f32[M, N]) {\n"
    "  sizes M, N, K\n"
    "  tunable BLOCK_M = 64 in 16..128\n"
    "  tunable BLOCK_N = 64 in 16..128\n"
    "  tunable BLOCK_K = 32 in 8..64\n"
    "  grid tm in tile(M, BLOCK_M), tn in tile(N, BLOCK_N)\n"
    "  c = for tk in tile(K, BLOCK_K) carry (acc = zeros(f32, [tm, tn])) {\n"
    "    yield dot(load(A[tm, tk]), load(W[tk, tn]), acc)\n"
    "  }\n"
    "  store(C[tm, tn], c + load(bias[tn]) + load(R[tm, tn]))\n"
    "}\n";

/* Non-causal attention over every (sentence, head) pair with the key mask,
 * flash style as examples/attention.tile. The grid holds three dims
 * (sentence, head, query tile), so the head dim is a one-step loop (tile(D)
 * covers it whole) and the key loop nests inside it. Masked keys score -1e30
 * rather than -inf, so a key tile that is all padding cannot make
 * exp(-inf + inf). */
static const char K_ATTENTION[] =
    "kernel attention_masked(q: f32[B, H, S, D], k: f32[B, H, S, D], v: f32[B, H, S, D], mask: i32[B, S], o: f32[B, H, S, D],\n"
    "                        scale: f32) {\n"
    "  sizes B, H, S, D\n"
    "  tunable BLOCK_Q = 16 in 16..128\n"
    "  tunable BLOCK_KV = 16 in 16..128\n"
    "  grid tb in points(B), th in points(H), tq in tile(S, BLOCK_Q)\n"
    "  sc = scale\n"
    "  for td in tile(D) {\n"
    "    qv = load(q[tb.begin, th.begin, tq, td])\n"
    "    m, l, acc = for tk in tile(S, BLOCK_KV) carry (m_i = full(f32, [tq, 1], -inf), l_i = zeros(f32, [tq, 1]), acc_i = zeros(f32, [tq, td])) {\n"
    "      kv = load(k[tb.begin, th.begin, tk, td])\n"
    "      vv = load(v[tb.begin, th.begin, tk, td])\n"
    "      keep = load(mask[tb.begin, tk]) != 0\n"
    "      s = where(keep, dot(qv, transpose(kv)) * sc, -1e30)\n"
    "      m_new = max(m_i, max(s, axis=1, keepdim=true))\n"
    "      p = exp(s - m_new)\n"
    "      alpha = exp(m_i - m_new)\n"
    "      l_new = l_i * alpha + sum(p, axis=1, keepdim=true)\n"
    "      acc_new = dot(p, vv, acc_i * alpha)\n"
    "      yield (m_new, l_new, acc_new)\n"
    "    }\n"
    "    store(o[tb.begin, th.begin, tq, td], acc / l)\n"
    "  }\n"
    "}\n";

/* Mean of the token rows under the mask, then divided by its L2 norm
 * (sentence-transformers' Pooling and Normalize modules). */
static const char K_POOL[] =
    "kernel mean_pool_l2(x: f32[B, S, D], mask: i32[B, S], y: f32[B, D]) {\n"
    "  grid tb in points(B), ts in tile(S), td in tile(D)\n"
    "  xv = load(x[tb.begin, ts, td])\n"
    "  mv = cast(load(mask[tb.begin, ts]), f32)\n"
    "  e = sum(xv * expand_dims(mv, 1), axis=0) / max(sum(mv, axis=0), 1e-9)\n"
    "  nrm = sqrt(sum(e * e, axis=0))\n"
    "  store(y[tb.begin, td], e / max(nrm, 1e-12))\n"
    "}\n";

/* ---------------------------------------------------------------- 2. loading */

typedef struct layer_weights {
    ts_tensor *wqkv, *bqkv;  /* [384, 1152], [1152] */
    ts_tensor *wo, *bo;      /* [384, 384], [384] */
    ts_tensor *ln1_g, *ln1_b;
    ts_tensor *w1, *b1;      /* [384, 1536], [1536] */
    ts_tensor *w2, *b2;      /* [1536, 384], [384] */
    ts_tensor *ln2_g, *ln2_b;
} layer_weights;

struct ts_minilm {
    ts_context *ctx;
    ts_kernel *k_embed, *k_linear, *k_linear_res, *k_mlp, *k_ln, *k_attn, *k_pool, *k_transpose;
    ts_tensor *word, *wpos, *wtype, *emb_g, *emb_b;
    int64_t vocab, max_pos, n_types;
    layer_weights L[N_LAYERS];
    /* activations for the current batch shape */
    int B, S;
    ts_tensor *ids, *pos, *types, *mask, *x, *qkv, *ctxb, *h, *x2, *ffn, *y;
    ts_tensor *x3, *q, *k, *v, *o; /* views: x as [B, S, 384]; the heads of qkv and ctx as [B, 12, S, 64] */
};


static ts_status find_checked(const ts_st_file *f, const char *name, int rank, const int64_t *shape, ts_st_tensor_info *info) {
    ts_status s = ts_st_find(f, name, info);
    if (s) return ts__error(s, "minilm: %s: tensor '%s' is missing", ts_st_path(f), name);
    int ok = info->dtype == TS_ST_F32 && info->rank == rank;
    for (int i = 0; ok && i < rank; i++)
        if (shape[i] >= 0 && (int64_t)info->shape[i] != shape[i]) ok = 0;
    if (!ok) return ts__error(TS_ERR_INVALID_ARGUMENT, "minilm: %s: tensor '%s' has the wrong dtype or shape for all-MiniLM-L6-v2", ts_st_path(f), name);
    return TS_OK;
}

static ts_status upload(ts_minilm *m, const ts_st_file *f, const char *name, int rank, const int64_t *shape, ts_tensor **out) {
    ts_st_tensor_info info;
    ts_status s = find_checked(f, name, rank, shape, &info);
    if (s) return s;
    s = ts_st_upload(m->ctx, &info, NULL, out);
    if (s) ts__error_prefix("minilm: uploading '%s'", name);
    return s;
}

static ts_status upload_vec(ts_minilm *m, const ts_st_file *f, const char *fmt, int layer, int64_t n, ts_tensor **out) {
    char name[160];
    snprintf(name, sizeof name, fmt, layer);
    return upload(m, f, name, 1, &n, out);
}

/* Uploads the PyTorch weight `name` ([out, in]) and writes its transpose into
 * `dst` ([in, out], possibly a column slice of a larger matrix) with the
 * transpose kernel. */
static ts_status upload_transposed(ts_minilm *m, const ts_st_file *f, const char *name, int64_t n_out, int64_t n_in, ts_tensor *dst) {
    ts_tensor *t = NULL;
    ts_status s = upload(m, f, name, 2, (int64_t[]){n_out, n_in}, &t);
    if (s) return s;
    s = ts_launch(m->ctx, m->k_transpose, NULL, (ts_arg[]){TS_ARG_TENSOR(t), TS_ARG_TENSOR(dst)}, 2, NULL);
    if (s) ts__error_prefix("minilm: transposing '%s'", name);
    ts_tensor_destroy(t);
    return s;
}

static ts_status new_tensor(ts_context *ctx, int rank, const int64_t *shape, ts_dtype dt, ts_tensor **out) {
    ts_status s = ts_tensor_create(ctx, dt, rank, shape, out);
    if (s) ts__error_prefix("minilm: allocating a tensor");
    return s;
}

static ts_status parse_kernel(const char *text, const char *name, ts_kernel **out) {
    ts_status s = ts_kernel_parse(text, name, out);
    if (s) ts__error_prefix("minilm: kernel %s", name);
    return s;
}

static ts_status build_kernels(ts_minilm *m) {
    ts_status s;
    if ((s = parse_kernel(K_EMBED, "bert_embed", &m->k_embed))) return s;
    if ((s = parse_kernel(K_LINEAR, "linear", &m->k_linear))) return s;
    if ((s = parse_kernel(K_LINEAR_RES, "linear_residual", &m->k_linear_res))) return s;
    if ((s = parse_kernel(K_ATTENTION, "attention_masked", &m->k_attn))) return s;
    if ((s = parse_kernel(K_POOL, "mean_pool_l2", &m->k_pool))) return s;
    const char *reused[3] = {"matmul_bias_gelu", "layer_norm", "transpose"};
    ts_kernel **dst[3] = {&m->k_mlp, &m->k_ln, &m->k_transpose};
    for (int i = 0; i < 3; i++) {
        const ts_example *ex = ts_example_find(reused[i]);
        if (!ex) return TS_ERR_NOT_FOUND;
        if ((s = ex->build(TS_F32, dst[i]))) {
            ts__error_prefix("minilm: kernel %s", reused[i]);
            return s;
        }
    }
    return TS_OK;
}

static ts_status load_weights(ts_minilm *m, const ts_st_file *f) {
    ts_status s;
    ts_st_tensor_info info;
    if ((s = find_checked(f, "embeddings.word_embeddings.weight", 2, (int64_t[]){-1, D_MODEL}, &info))) return s;
    m->vocab = (int64_t)info.shape[0];
    if ((s = find_checked(f, "embeddings.position_embeddings.weight", 2, (int64_t[]){-1, D_MODEL}, &info))) return s;
    m->max_pos = (int64_t)info.shape[0];
    if ((s = find_checked(f, "embeddings.token_type_embeddings.weight", 2, (int64_t[]){-1, D_MODEL}, &info))) return s;
    m->n_types = (int64_t)info.shape[0];
    if ((s = upload(m, f, "embeddings.word_embeddings.weight", 2, (int64_t[]){m->vocab, D_MODEL}, &m->word))) return s;
    if ((s = upload(m, f, "embeddings.position_embeddings.weight", 2, (int64_t[]){m->max_pos, D_MODEL}, &m->wpos))) return s;
    if ((s = upload(m, f, "embeddings.token_type_embeddings.weight", 2, (int64_t[]){m->n_types, D_MODEL}, &m->wtype))) return s;
    if ((s = upload_vec(m, f, "embeddings.LayerNorm.weight", 0, D_MODEL, &m->emb_g))) return s;
    if ((s = upload_vec(m, f, "embeddings.LayerNorm.bias", 0, D_MODEL, &m->emb_b))) return s;
    const char *qkv[3] = {"query", "key", "value"};
    for (int l = 0; l < N_LAYERS; l++) {
        layer_weights *w = &m->L[l];
        char name[160];
        if ((s = new_tensor(m->ctx, 2, (int64_t[]){D_MODEL, 3 * D_MODEL}, TS_F32, &w->wqkv))) return s;
        if ((s = new_tensor(m->ctx, 1, (int64_t[]){3 * D_MODEL}, TS_F32, &w->bqkv))) return s;
        for (int j = 0; j < 3; j++) {
            ts_tensor *slice = NULL;
            if ((s = ts_tensor_view(w->wqkv, 2, (int64_t[]){D_MODEL, D_MODEL}, (int64_t[]){3 * D_MODEL, 1}, j * D_MODEL, &slice))) return s;
            snprintf(name, sizeof name, "encoder.layer.%d.attention.self.%s.weight", l, qkv[j]);
            s = upload_transposed(m, f, name, D_MODEL, D_MODEL, slice);
            ts_tensor_destroy(slice);
            if (s) return s;
            snprintf(name, sizeof name, "encoder.layer.%d.attention.self.%s.bias", l, qkv[j]);
            if ((s = find_checked(f, name, 1, (int64_t[]){D_MODEL}, &info))) return s;
            if ((s = ts_tensor_write_range(w->bqkv, (size_t)j * D_MODEL * sizeof(float), info.data, info.nbytes))) return s;
        }
        if ((s = new_tensor(m->ctx, 2, (int64_t[]){D_MODEL, D_MODEL}, TS_F32, &w->wo))) return s;
        if ((s = new_tensor(m->ctx, 2, (int64_t[]){D_MODEL, D_FFN}, TS_F32, &w->w1))) return s;
        if ((s = new_tensor(m->ctx, 2, (int64_t[]){D_FFN, D_MODEL}, TS_F32, &w->w2))) return s;
        snprintf(name, sizeof name, "encoder.layer.%d.attention.output.dense.weight", l);
        if ((s = upload_transposed(m, f, name, D_MODEL, D_MODEL, w->wo))) return s;
        snprintf(name, sizeof name, "encoder.layer.%d.intermediate.dense.weight", l);
        if ((s = upload_transposed(m, f, name, D_FFN, D_MODEL, w->w1))) return s;
        snprintf(name, sizeof name, "encoder.layer.%d.output.dense.weight", l);
        if ((s = upload_transposed(m, f, name, D_MODEL, D_FFN, w->w2))) return s;
        if ((s = upload_vec(m, f, "encoder.layer.%d.attention.output.dense.bias", l, D_MODEL, &w->bo))) return s;
        if ((s = upload_vec(m, f, "encoder.layer.%d.attention.output.LayerNorm.weight", l, D_MODEL, &w->ln1_g))) return s;
        if ((s = upload_vec(m, f, "encoder.layer.%d.attention.output.LayerNorm.bias", l, D_MODEL, &w->ln1_b))) return s;
        if ((s = upload_vec(m, f, "encoder.layer.%d.intermediate.dense.bias", l, D_FFN, &w->b1))) return s;
        if ((s = upload_vec(m, f, "encoder.layer.%d.output.dense.bias", l, D_MODEL, &w->b2))) return s;
        if ((s = upload_vec(m, f, "encoder.layer.%d.output.LayerNorm.weight", l, D_MODEL, &w->ln2_g))) return s;
        if ((s = upload_vec(m, f, "encoder.layer.%d.output.LayerNorm.bias", l, D_MODEL, &w->ln2_b))) return s;
    }
    return TS_OK;
}

ts_status ts_minilm_load(ts_context *ctx, const char *path, ts_minilm **out) {
    if (!out) return TS_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!ctx || !path) return TS_ERR_INVALID_ARGUMENT;
    ts_minilm *m = calloc(1, sizeof *m);
    if (!m) return TS_ERR_OUT_OF_MEMORY;
    m->ctx = ctx;
    ts_st_file *f = NULL;
    ts_status s = build_kernels(m);
    if (!s) {
        s = ts_st_open(path, &f);
        if (s) ts__error_prefix("minilm");
    }
    if (!s) s = load_weights(m, f);
    ts_st_close(f);
    if (s) {
        ts_minilm_destroy(m);
        return s;
    }
    *out = m;
    return TS_OK;
}

/* ---------------------------------------------------------------- 3. activations */

static void free_activations(ts_minilm *m) {
    ts_tensor **ts[] = {&m->ids, &m->pos, &m->types, &m->mask, &m->x, &m->qkv, &m->ctxb, &m->h, &m->x2, &m->ffn, &m->y,
                        &m->x3, &m->q, &m->k, &m->v, &m->o};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        ts_tensor_destroy(*ts[i]);
        *ts[i] = NULL;
    }
    m->B = m->S = 0;
}

static ts_status make_activations(ts_minilm *m, int B, int S) {
    if (m->B == B && m->S == S) return TS_OK;
    free_activations(m);
    int64_t T = (int64_t)B * S;
    ts_status s;
    ts_context *c = m->ctx;
    if ((s = new_tensor(c, 1, &T, TS_I32, &m->ids)) || (s = new_tensor(c, 1, &T, TS_I32, &m->pos)) ||
        (s = new_tensor(c, 1, &T, TS_I32, &m->types)) || (s = new_tensor(c, 2, (int64_t[]){B, S}, TS_I32, &m->mask)) ||
        (s = new_tensor(c, 2, (int64_t[]){T, D_MODEL}, TS_F32, &m->x)) ||
        (s = new_tensor(c, 2, (int64_t[]){T, 3 * D_MODEL}, TS_F32, &m->qkv)) ||
        (s = new_tensor(c, 2, (int64_t[]){T, D_MODEL}, TS_F32, &m->ctxb)) || (s = new_tensor(c, 2, (int64_t[]){T, D_MODEL}, TS_F32, &m->h)) ||
        (s = new_tensor(c, 2, (int64_t[]){T, D_MODEL}, TS_F32, &m->x2)) || (s = new_tensor(c, 2, (int64_t[]){T, D_FFN}, TS_F32, &m->ffn)) ||
        (s = new_tensor(c, 2, (int64_t[]){B, D_MODEL}, TS_F32, &m->y))) {
        free_activations(m);
        return s;
    }
    m->B = B;
    m->S = S;
    if ((s = ts_tensor_view(m->x, 3, (int64_t[]){B, S, D_MODEL}, (int64_t[]){(int64_t)S * D_MODEL, D_MODEL, 1}, 0, &m->x3))) goto fail;
    int64_t bhsd[4] = {B, N_HEADS, S, HEAD_DIM};
    int64_t st_qkv[4] = {(int64_t)S * 3 * D_MODEL, HEAD_DIM, 3 * D_MODEL, 1}, st_o[4] = {(int64_t)S * D_MODEL, HEAD_DIM, D_MODEL, 1};
    if ((s = ts_tensor_view(m->qkv, 4, bhsd, st_qkv, 0, &m->q)) || (s = ts_tensor_view(m->qkv, 4, bhsd, st_qkv, D_MODEL, &m->k)) ||
        (s = ts_tensor_view(m->qkv, 4, bhsd, st_qkv, 2 * D_MODEL, &m->v)) || (s = ts_tensor_view(m->ctxb, 4, bhsd, st_o, 0, &m->o)))
        goto fail;
    return TS_OK;
fail:
    ts__error_prefix("minilm: making views");
    free_activations(m);
    return s;
}

void ts_minilm_destroy(ts_minilm *m) {
    if (!m) return;
    free_activations(m);
    ts_tensor **ts[] = {&m->word, &m->wpos, &m->wtype, &m->emb_g, &m->emb_b};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) ts_tensor_destroy(*ts[i]);
    for (int l = 0; l < N_LAYERS; l++) {
        layer_weights *w = &m->L[l];
        ts_tensor *lw[] = {w->wqkv, w->bqkv, w->wo, w->bo, w->ln1_g, w->ln1_b, w->w1, w->b1, w->w2, w->b2, w->ln2_g, w->ln2_b};
        for (size_t i = 0; i < sizeof lw / sizeof lw[0]; i++) ts_tensor_destroy(lw[i]);
    }
    ts_kernel *ks[] = {m->k_embed, m->k_linear, m->k_linear_res, m->k_mlp, m->k_ln, m->k_attn, m->k_pool, m->k_transpose};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) ts_kernel_destroy(ks[i]);
    free(m);
}

/* ---------------------------------------------------------------- 4. the forward pass */

#define T_(t) TS_ARG_TENSOR(t)
#define LAUNCH(k, ...)                                                                             \
    do {                                                                                           \
        ts_arg args_[] = {__VA_ARGS__};                                                            \
        s = ts_launch(m->ctx, (k), NULL, args_, (int)(sizeof args_ / sizeof args_[0]), NULL);      \
        if (s) {                                                                                   \
            ts__error_prefix("minilm: %s", ts_kernel_name(k));               \
            return s;                                                                              \
        }                                                                                          \
    } while (0)

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static ts_status check_inputs(const ts_minilm *m, int B, int S, const int32_t *ids, const int32_t *types, const int32_t *mask) {
    if (B < 1 || S < 1 || !ids || !types || !mask) return ts__error(TS_ERR_INVALID_ARGUMENT, "minilm: empty batch or missing inputs");
    if (S > m->max_pos) return ts__error(TS_ERR_INVALID_ARGUMENT, "minilm: %d tokens per sentence, the model has %lld positions", S, (long long)m->max_pos);
    for (int64_t i = 0; i < (int64_t)B * S; i++) {
        if (ids[i] < 0 || ids[i] >= m->vocab || types[i] < 0 || types[i] >= m->n_types || (mask[i] != 0 && mask[i] != 1))
            return ts__error(TS_ERR_INVALID_ARGUMENT, "minilm: token %lld: id %d, type %d, mask %d out of range", (long long)i, ids[i], types[i],
                             mask[i]);
    }
    for (int b = 0; b < B; b++)
        if (!mask[(int64_t)b * S]) return ts__error(TS_ERR_INVALID_ARGUMENT, "minilm: sentence %d does not start with a token (mask[%d, 0] = 0)", b, b);
    return TS_OK;
}

ts_status ts_minilm_forward(ts_minilm *m, int B, int S, const int32_t *ids, const int32_t *types, const int32_t *mask,
                            float *out, double *ms) {
    if (!m || !out) return TS_ERR_INVALID_ARGUMENT;
    ts_status s = check_inputs(m, B, S, ids, types, mask);
    if (s) return s;
    double t0 = now_ms();
    if ((s = make_activations(m, B, S))) return s;
    int64_t T = (int64_t)B * S;
    int32_t *pos = malloc((size_t)T * sizeof *pos);
    if (!pos) return TS_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < T; i++) pos[i] = (int32_t)(i % S);
    size_t nb = (size_t)T * sizeof(int32_t);
    s = ts_tensor_write(m->ids, ids, nb);
    if (!s) s = ts_tensor_write(m->pos, pos, nb);
    if (!s) s = ts_tensor_write(m->types, types, nb);
    if (!s) s = ts_tensor_write(m->mask, mask, nb);
    free(pos);
    if (s) return s;

    LAUNCH(m->k_embed, T_(m->ids), T_(m->pos), T_(m->types), T_(m->word), T_(m->wpos), T_(m->wtype), T_(m->emb_g), T_(m->emb_b),
           T_(m->x), TS_ARG_F(LN_EPS));
    const double scale = 1.0 / sqrt((double)HEAD_DIM);
    for (int l = 0; l < N_LAYERS; l++) {
        const layer_weights *w = &m->L[l];
        LAUNCH(m->k_linear, T_(m->x), T_(w->wqkv), T_(w->bqkv), T_(m->qkv));
        LAUNCH(m->k_attn, T_(m->q), T_(m->k), T_(m->v), T_(m->mask), T_(m->o), TS_ARG_F(scale));
        LAUNCH(m->k_linear_res, T_(m->ctxb), T_(w->wo), T_(w->bo), T_(m->x), T_(m->h));
        LAUNCH(m->k_ln, T_(m->h), T_(w->ln1_g), T_(w->ln1_b), T_(m->x2), TS_ARG_F(LN_EPS));
        LAUNCH(m->k_mlp, T_(m->x2), T_(w->w1), T_(w->b1), T_(m->ffn));
        LAUNCH(m->k_linear_res, T_(m->ffn), T_(w->w2), T_(w->b2), T_(m->x2), T_(m->h));
        LAUNCH(m->k_ln, T_(m->h), T_(w->ln2_g), T_(w->ln2_b), T_(m->x), TS_ARG_F(LN_EPS));
    }
    LAUNCH(m->k_pool, T_(m->x3), T_(m->mask), T_(m->y));
    s = ts_tensor_read(m->y, out, (size_t)B * D_MODEL * sizeof(float));
    if (ms) *ms = now_ms() - t0;
    return s;
}

/* ---------------------------------------------------------------- 5. tuning */

typedef struct heavy {
    const char *name;
    int kernel; /* 0 linear, 1 linear_residual, 2 matmul_bias_gelu */
    int64_t n, k;
} heavy;

static const heavy HEAVY[] = {
    {"qkv projection (linear, N=1152, K=384)", 0, 3 * D_MODEL, D_MODEL},
    {"output projection (linear_residual, N=384, K=384)", 1, D_MODEL, D_MODEL},
    {"mlp up (matmul_bias_gelu, N=1536, K=384)", 2, D_FFN, D_MODEL},
    {"mlp down (linear_residual, N=384, K=1536)", 1, D_MODEL, D_FFN},
};

int ts_minilm_tune_count(void) { return (int)(sizeof HEAVY / sizeof HEAVY[0]); }
const char *ts_minilm_tune_name(int i) { return i >= 0 && i < ts_minilm_tune_count() ? HEAVY[i].name : NULL; }

/* Fingerprints equal except for the "memN M" field. PoCL reports the memory
 * it could allocate now, so the same CPU device gets a new fingerprint when
 * the machine's free memory moves; ts_tune only takes an entry of its own
 * fingerprint as "already tuned", while launches fall back to entries of
 * the same backend, vendor and arch. Without this the demo would tune again
 * on a second run. */
static int same_device_but_memory(const char *a, const char *b) {
    while (*a && *b) {
        const char *ea = strchr(a, ':'), *eb = strchr(b, ':');
        size_t na = ea ? (size_t)(ea - a) : strlen(a), nb = eb ? (size_t)(eb - b) : strlen(b);
        int mem = strncmp(a, "mem", 3) == 0 && strncmp(b, "mem", 3) == 0;
        if (!mem && (na != nb || strncmp(a, b, na) != 0)) return 0;
        a += na + (ea ? 1 : 0);
        b += nb + (eb ? 1 : 0);
    }
    return !*a && !*b;
}

static int64_t next_pow2(int64_t v) {
    int64_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

/* 1 when the tuning database holds an entry for kernel k at exactly this
 * bucket on this device model (any free-memory figure). */
static int tuned_on_this_device(const ts_minilm *m, const ts_kernel *k, const int64_t *values) {
    ts_tune_db_entry *e = NULL;
    int n = 0;
    if (ts_tune_db_list(NULL, &e, &n) != TS_OK) return 0;
    char kh[17], bucket[256];
    snprintf(kh, sizeof kh, "%016llx", (unsigned long long)ts_kernel_hash(k));
    snprintf(bucket, sizeof bucket, "M=%lld,N=%lld,K=%lld", (long long)next_pow2(values[0]), (long long)next_pow2(values[1]),
             (long long)next_pow2(values[2]));
    const char *fp = ts_context_fingerprint(m->ctx, NULL);
    int found = 0;
    for (int i = 0; i < n && !found; i++)
        found = strcmp(e[i].kernel_hash, kh) == 0 && strcmp(e[i].bucket, bucket) == 0 && same_device_but_memory(e[i].fingerprint, fp);
    free(e);
    return found;
}

ts_status ts_minilm_tune_one(ts_minilm *m, int i, int B, int S, ts_tune_effort effort, double budget_s, ts_tune_progress_fn progress,
                             void *user, int *tuned, int *cached) {
    if (tuned) *tuned = 0;
    if (cached) *cached = 0;
    if (!m || B < 1 || S < 1 || i < 0 || i >= ts_minilm_tune_count()) return ts__error(TS_ERR_INVALID_ARGUMENT, "minilm: bad tuning request");
    const ts_kernel *k = HEAVY[i].kernel == 0 ? m->k_linear : HEAVY[i].kernel == 1 ? m->k_linear_res : m->k_mlp;
    const char *names[3] = {"M", "N", "K"};
    int64_t values[3] = {(int64_t)B * S, HEAVY[i].n, HEAVY[i].k};
    if (effort != TS_TUNE_EFFORT_NONE && tuned_on_this_device(m, k, values)) {
        if (cached) *cached = 1;
        return TS_OK;
    }
    ts_tune_options o = TS_TUNE_OPTIONS_INIT;
    o.effort = effort;
    o.budget_s = budget_s;
    o.progress = progress;
    o.user = user;
    o.reduce_size = "K";
    o.repeats = 3;
    ts_tune_report *r = NULL;
    ts_status s = ts_tune(m->ctx, k, names, values, 3, &o, &r);
    if (r && r->from_db && cached) *cached = 1;
    else if (r && !r->from_db && tuned) *tuned = 1;
    ts_tune_report_destroy(r);
    if (s) ts__error_prefix("minilm: tuning %s", HEAVY[i].name);
    return s;
}

ts_status ts_minilm_tune(ts_minilm *m, int B, int S, ts_tune_effort effort, double budget_s, ts_tune_progress_fn progress,
                         void *user, int *tuned, int *cached) {
    if (tuned) *tuned = 0;
    if (cached) *cached = 0;
    for (int i = 0; i < ts_minilm_tune_count(); i++) {
        int t = 0, c = 0;
        ts_status s = ts_minilm_tune_one(m, i, B, S, effort, budget_s, progress, user, &t, &c);
        if (tuned) *tuned += t;
        if (cached) *cached += c;
        if (s) return s;
    }
    return TS_OK;
}

/* ---------------------------------------------------------------- 6. the expected output */

static ts_status copy_tensor(const ts_st_file *f, const char *name, ts_st_dtype dt, int rank, const int64_t *shape, void **out) {
    ts_st_tensor_info info;
    ts_status s = ts_st_find(f, name, &info);
    if (s) return ts__error(s, "minilm: %s: tensor '%s' is missing", ts_st_path(f), name);
    int ok = info.dtype == dt && info.rank == rank;
    for (int i = 0; ok && i < rank; i++)
        if ((int64_t)info.shape[i] != shape[i]) ok = 0;
    if (!ok) return ts__error(TS_ERR_INVALID_ARGUMENT, "minilm: %s: tensor '%s' has an unexpected dtype or shape", ts_st_path(f), name);
    *out = malloc(info.nbytes ? info.nbytes : 1);
    if (!*out) return TS_ERR_OUT_OF_MEMORY;
    memcpy(*out, info.data, info.nbytes);
    return TS_OK;
}

ts_status ts_minilm_expected_load(const char *path, ts_minilm_expected *e) {
    if (!e) return TS_ERR_INVALID_ARGUMENT;
    memset(e, 0, sizeof *e);
    ts_st_file *f = NULL;
    ts_status s = ts_st_open(path, &f);
    if (s) {
        ts__error_prefix("minilm");
        return s;
    }
    ts_st_tensor_info info;
    s = ts_st_find(f, "input_ids", &info);
    if (s || info.rank != 2 || info.shape[0] < 1 || info.shape[1] < 1 || info.shape[0] > 4096 || info.shape[1] > 4096) {
        ts_st_close(f);
        return s ? s : ts__error(TS_ERR_INVALID_ARGUMENT, "minilm: %s: no usable tensor 'input_ids' ([B, S] i32)", path);
    }
    e->B = (int)info.shape[0];
    e->S = (int)info.shape[1];
    int64_t bs[2] = {e->B, e->S}, bd[2] = {e->B, D_MODEL};
    if (!(s = copy_tensor(f, "input_ids", TS_ST_I32, 2, bs, (void **)&e->ids)) &&
        !(s = copy_tensor(f, "token_type_ids", TS_ST_I32, 2, bs, (void **)&e->types)) &&
        !(s = copy_tensor(f, "attention_mask", TS_ST_I32, 2, bs, (void **)&e->mask)))
        s = copy_tensor(f, "embeddings", TS_ST_F32, 2, bd, (void **)&e->embeddings);
    const char *sent = ts_st_metadata_get(f, "sentences");
    if (sent) snprintf(e->sentences, sizeof e->sentences, "%s", sent);
    ts_st_close(f);
    if (s) ts_minilm_expected_free(e);
    return s;
}

void ts_minilm_expected_free(ts_minilm_expected *e) {
    if (!e) return;
    free(e->ids);
    free(e->types);
    free(e->mask);
    free(e->embeddings);
    memset(e, 0, sizeof *e);
}

const char *ts_minilm_default_dir(void) {
    const char *d = getenv("TESSERA_DEMO_DIR");
    if (d && *d) return d;
#ifdef TS_SOURCE_DIR
    return TS_SOURCE_DIR "/build/demo";
#else
    return "build/demo";
#endif
}
