/* minilm.h: all-MiniLM-L6-v2 (a 6-layer BERT sentence encoder) on Tessera.
 *
 * The whole forward pass runs as Tessera kernels on one context: embeddings
 * (word + position + token type, layer norm: one fused kernel), six post-LN
 * encoder layers (fused QKV projection, masked attention over the 12 heads
 * of each sentence through strided views, output projection with bias and
 * residual, layer norm, matmul+bias+GELU, projection with bias and residual,
 * layer norm), masked mean pooling and L2 normalization (one kernel). Every
 * launch passes config NULL, so the tuning database is used. Weights come
 * from a .safetensors file through formats/tessera_safetensors.h and are
 * uploaded to the context (linear weights transposed once, on the device).
 * docs/demo.md describes the model, the check and the figures. */
#ifndef TS_MINILM_H
#define TS_MINILM_H

#include "tessera.h"
#include "tessera_tune.h"

#include <stdint.h>

#define TS_MINILM_HIDDEN 384
#define TS_MINILM_HEADS 12
#define TS_MINILM_LAYERS 6
#define TS_MINILM_FFN 1536

/* Largest |ours - expected| accepted on the L2-normalized embeddings (entries
 * up to ~0.3 in magnitude). f32 rounding through the 6 layers (dots of length
 * up to 1536, layer norms, softmax) measures about 1e-7 on ref (f64 compute,
 * f32 storage) and on PoCL; 1e-5 leaves a wide margin for other summation
 * orders, while real mistakes are far above it (attending to the padding:
 * 0.18; one missing bias: 0.028; docs/demo.md). */
#define TS_MINILM_TOLERANCE 1e-5

typedef struct ts_minilm ts_minilm;

/* Opens `path` (model.safetensors of all-MiniLM-L6-v2 or any BERT of the same
 * shape), checks every tensor's presence, dtype and shape, uploads them to
 * ctx and builds the kernels. A missing or malformed file is a status with a
 * message naming the file and tensor. Destroy with ts_minilm_destroy. */
ts_status ts_minilm_load(ts_context *ctx, const char *path, ts_minilm **out);
void ts_minilm_destroy(ts_minilm *m);

/* Sentence embeddings of a batch: ids, token types and attention mask are
 * [B, S] (row-major, i32; mask 1 for tokens, 0 for padding; every row must
 * start with a token), `out` gets [B, 384] floats. `ms` (may be NULL) gets
 * the wall time of the forward pass on the device, uploads and download
 * included. */
ts_status ts_minilm_forward(ts_minilm *m, int B, int S, const int32_t *ids, const int32_t *types, const int32_t *mask,
                            float *out, double *ms);

/* Tunes the heavy kernels (the four matmul shapes of a layer) at the shapes
 * of a [B, S] batch with ts_tune, storing the results in the tuning database;
 * kernels with an exact database entry are not tuned again. `budget_s` is
 * each kernel's search budget. *tuned and *cached (may be NULL) count what
 * was tuned now and what the database already had. */
ts_status ts_minilm_tune(ts_minilm *m, int B, int S, ts_tune_effort effort, double budget_s, ts_tune_progress_fn progress,
                         void *user, int *tuned, int *cached);
/* The same for the i-th heavy kernel only (0 <= i < ts_minilm_tune_count()). */
ts_status ts_minilm_tune_one(ts_minilm *m, int i, int B, int S, ts_tune_effort effort, double budget_s, ts_tune_progress_fn progress,
                             void *user, int *tuned, int *cached);
/* Number of heavy kernels ts_minilm_tune looks at, and the name of the i-th (for progress lines). */
int ts_minilm_tune_count(void);
const char *ts_minilm_tune_name(int i);

/* The demo's inputs and expected output: expected.safetensors as written by
 * tools/demo_model.py (input_ids, token_type_ids, attention_mask: i32 [B, S];
 * embeddings: f32 [B, 384], computed by an independent numpy forward pass). */
typedef struct ts_minilm_expected {
    int B, S;
    int32_t *ids, *types, *mask;
    float *embeddings;
    char sentences[2048]; /* JSON list from the metadata ("" if absent) */
} ts_minilm_expected;

ts_status ts_minilm_expected_load(const char *path, ts_minilm_expected *out);
void ts_minilm_expected_free(ts_minilm_expected *e);

/* Folder holding model.safetensors and expected.safetensors: $TESSERA_DEMO_DIR,
 * else <source>/build/demo (where tools/setup-demo.sh puts them). */
const char *ts_minilm_default_dir(void);

#endif
