/* lookup.c: the config a launch with cfg NULL uses: the tuning database's
 * entry for this device, kernel, dtypes and shape bucket, with the fallback
 * of db.c (nearest bucket, then a device of the same backend, vendor and
 * architecture), else the kernel's defaults. A candidate that does not fit
 * this device (unknown key, too many threads per group) is passed over.
 * Database files are read once per process and again only when they change
 * (db.c's cache), so repeated launches cost a stat() or two. */
#include "tuner.h"

#include "dialect.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct accept_ctx {
    ts_context *ctx;
    const ts_kernel *k;
    const int64_t *const *shapes;
    ts_config *cfg;
} accept_ctx;

static int accept_config(const char *text, void *user) {
    accept_ctx *a = user;
    ts_config *c;
    if (ts_config_parse(text, &c)) return 0;
    ts__plan p;
    if (ts_config_check(c, a->k) || ts__plan_make(&a->k->ir, c, a->shapes, &p)) {
        ts_config_destroy(c);
        return 0;
    }
    int threads = a->ctx->be->dialect != TS_DIALECT_NONE ? ts__cg_threads(&a->k->ir, &p) : p.threads;
    ts__plan_free(&p);
    if (threads < 1 || threads > a->ctx->caps.max_group_size) {
        ts_config_destroy(c);
        return 0;
    }
    a->cfg = c;
    return 1;
}

/* ---------------------------------------------------------------- device defaults */

/* Without a database entry, a kernel without a dot on a CPU device whose
 * code has vector types (OpenCL on PoCL) starts from the CPU row form instead of the GPU-style knob
 * defaults (threads=64, vec=1): one work-item a row, float16 operations,
 * non-temporal whole-tile stores. Measured on PoCL at the example sizes it
 * was faster for every row kernel (softmax_online 1.37 -> 0.12 ms,
 * cross_entropy 0.79 -> 0.20 ms, rms_norm 0.29 -> 0.07 ms; gelu and exp on
 * 1000 elements even). The kernel's own tunables keep their defaults. It is
 * used only when it generates code within the tuner's private-memory cap;
 * that check runs the code generator, so its answer is remembered per
 * (device, kernel, shapes). */
static const char cpu_row_knobs[] = "threads=1,vec=16,nt=1";
/* GPU-shaped targets (registers only, 128-bit moves, shuffles): four f32
 * a chunk so that loads and stores are ld/st.global.v4 (vec4 views in
 * GLSL); ptxas: every example row kernel within 128 registers, elementwise
 * within 64, no spills (tests/test_gpu_shape.c). */
static const char gpu_knobs[] = "threads=128,vec=4", gpu_knobs16[] = "threads=128,vec=8", /* 16 bytes of f32 / of f16, bf16 */
                  gpu_dot_knobs16[] = "warps=4";
/* Row kernels on a CPU device with a GPU-shaped dialect (Vulkan on
 * lavapipe: a group is one CPU thread, 8 lanes a SIMD vector, barriers are
 * coroutine switches): 16 invocations a row, one group a row. Quiet run,
 * 4096x1024 f32, ms: softmax 68.7 -> 18.0, layer_norm 28.6 -> 19.3,
 * rms_norm 20.0 -> 17.0 (threads=8 or 32 with col_threads=8 slower);
 * elementwise kernels keep threads=128 (add 8.2 ms, 12.8 at 16). */
static const char cpu_gpu_row_knobs[] = "threads=16,col_threads=16,vec=4", cpu_gpu_row_knobs16[] = "threads=16,col_threads=16,vec=8";

const char *ts__tune_device_knobs(ts_dialect dialect, int cpu_device, const ts__kir *ir) {
    const ts__dialect *d = ts__dialect_get(dialect);
    if (!d) return NULL;
    if (d->has_vector_types && cpu_device) return cpu_row_knobs;
    if (!d->registers_only || !d->vec_mem) return NULL;
    /* f16/bf16 dots on tensor cores (CUDA): 4 warps, no spills (one warp
     * spilled attention's); on MFMA (HIP): the same 128 threads, 2 wavefronts */
    if (ts__kir_has_dot(ir)) {
        int narrow = 0;
        for (int p = 0; p < ir->nparams; p++)
            if (ir->params[p].is_tensor && (ir->params[p].dtype == TS_F16 || ir->params[p].dtype == TS_BF16)) narrow = 1;
        return narrow && (dialect == TS_DIALECT_CUDA || dialect == TS_DIALECT_HIP) ? gpu_dot_knobs16 : NULL;
    }
    int wide = 0, reduce = 0;
    for (int p = 0; p < ir->nparams; p++)
        if (ir->params[p].is_tensor && (ir->params[p].dtype == TS_F32 || ir->params[p].dtype == TS_F64)) wide = 1;
    for (int i = 0; i < ir->nops; i++) reduce |= ir->ops[i].kind == TS__OP_REDUCE;
    if (cpu_device && reduce) return wide ? cpu_gpu_row_knobs : cpu_gpu_row_knobs16;
    return wide ? gpu_knobs : gpu_knobs16;
}
/* A dot kernel on a dot_vec4 dialect (GLSL, cg_dot_glsl.c) starts from
 * 8x8 register blocks staged through shared memory as vec4s (64
 * invocations at the 64x64 default blocks) instead of the 4x8 unstaged
 * knob defaults; same fit check. */
static const char vec4_dot_knobs[] = "micro_m=8,micro_n=8,stage=1";

#define TS__DD_SLOTS 256
static struct {
    uint64_t key;
    int ok; /* 1: use the CPU row form; -1: it does not fit */
} dd_cache[TS__DD_SLOTS];
static int dd_next;
static pthread_mutex_t dd_mutex = PTHREAD_MUTEX_INITIALIZER;

/* A CPU device: OpenCL's arch "cpu", Vulkan's "vk-cpu-..." (lavapipe). */
static int is_cpu_device(const ts_context *ctx) { return strcmp(ctx->fp.arch, "cpu") == 0 || strncmp(ctx->fp.arch, "vk-cpu-", 7) == 0; }

static ts_config *device_default(ts_context *ctx, const ts_kernel *k, const int64_t *const *shapes) {
    const ts__kir *ir = &k->ir;
    const ts__dialect *d = ts__dialect_get(ctx->be->dialect);
    const char *knobs = NULL;
    if (d && d->dot_vec4 && ts__kir_has_dot(ir)) knobs = vec4_dot_knobs;
    else if (d) knobs = ts__tune_device_knobs(ctx->be->dialect, is_cpu_device(ctx), ir);
    if (!knobs) return NULL;
    ts_config *c;
    if (ts_config_parse(knobs, &c)) {
        ts_clear_error();
        return NULL;
    }
    uint64_t key = ts__hash_u64(ctx->fp_hash, ts__kir_hash(ir));
    for (int p = 0; p < ir->nparams; p++)
        for (int d = 0; d < ir->params[p].rank; d++) key = ts__hash_u64(key, (uint64_t)shapes[p][d]);
    int ok = 0;
    pthread_mutex_lock(&dd_mutex);
    for (int i = 0; i < TS__DD_SLOTS && !ok; i++)
        if (dd_cache[i].ok && dd_cache[i].key == key) ok = dd_cache[i].ok;
    pthread_mutex_unlock(&dd_mutex);
    if (!ok) {
        ok = ts__tune_fits(ctx, k, c, shapes) ? -1 : 1;
        ts_clear_error();
        pthread_mutex_lock(&dd_mutex);
        dd_cache[dd_next].key = key;
        dd_cache[dd_next].ok = ok;
        dd_next = (dd_next + 1) % TS__DD_SLOTS;
        pthread_mutex_unlock(&dd_mutex);
    }
    if (ok < 0) {
        ts_config_destroy(c);
        return NULL;
    }
    return c;
}

static ts_status lookup(ts_context *ctx, const ts_kernel *k, const int64_t *const *shapes, ts_config **out, int *from_db) {
    *out = NULL;
    *from_db = 0;
    if (!ctx || !k) return TS_OK;
    ts__tune_key key;
    if (ts__tune_key_of(k, shapes, &key)) return TS_OK; /* ts_launch reports bad shapes itself */
    ts__tune_fp fp;
    ts__tune_fp_of(ctx, &fp);
    accept_ctx a = {ctx, k, shapes, NULL};
    ts__tune_value v;
    if (ts__tune_db_find(&fp, &key, 0, accept_config, &a, &v) != TS__TUNE_MISS) {
        *out = a.cfg;
        *from_db = 1;
    } else {
        ts_config_destroy(a.cfg);
        *out = device_default(ctx, k, shapes);
    }
    return TS_OK;
}

ts_status ts__tuner_lookup(ts_context *ctx, const ts_kernel *k, const int64_t *const *shapes, ts_config **out) {
    int from_db;
    return lookup(ctx, k, shapes, out, &from_db);
}

ts_status ts_tune_lookup(ts_context *ctx, const ts_kernel *k, const int64_t *const *shapes, char **config, int *from_db) {
    if (!config) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tune_lookup: config is NULL");
    *config = NULL;
    int db = 0;
    if (from_db) *from_db = 0;
    if (!ctx || !k || !shapes) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tune_lookup: NULL context, kernel or shapes");
    ts_config *c = NULL;
    lookup(ctx, k, shapes, &c, &db);
    if (from_db) *from_db = db;
    if (!c) return TS_OK;
    *config = ts_config_format(c);
    ts_config_destroy(c);
    return *config ? TS_OK : ts__error(TS_ERR_OUT_OF_MEMORY, "ts_tune_lookup: out of memory");
}
