/* context.c: contexts (an open device), tensors (storage + view), and
 * launches (argument checks, plan, module cache, backend launch).
 *
 * Sections: contexts and fingerprints; tensors; module cache; launch. */
#include "backend_internal.h"
#include "codegen.h"
#include "dialect.h"
#include "tuner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- contexts */

static const char *const auto_order[] = {"cuda", "hip", "opencl", "vulkan", "ref"};

static void sanitize(char *dst, size_t n, const char *src) {
    size_t k = 0;
    for (const char *p = src; *p && k + 1 < n; p++) {
        char c = *p;
        dst[k++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ? c : '-';
    }
    dst[k] = 0;
}

static void make_fingerprint(ts_context *ctx) {
    char v[64], d[128], a[64], dr[64];
    sanitize(v, sizeof v, ctx->fp.vendor);
    sanitize(d, sizeof d, ctx->fp.device);
    sanitize(a, sizeof a, ctx->fp.arch);
    sanitize(dr, sizeof dr, ctx->fp.driver);
    snprintf(ctx->fp_id, sizeof ctx->fp_id, "%s:%s:%s:%s:%s:cu%d:mem%lldM:wg%d:sh%lldK:sg%d:ts%s", ctx->be->name, v, d, a, dr, ctx->caps.compute_units,
             (long long)(ctx->caps.global_mem_bytes >> 20), ctx->caps.max_group_size, (long long)(ctx->caps.shared_mem_bytes >> 10),
             ctx->caps.subgroup_size, TS_VERSION_STRING);
    uint64_t h = ts__hash_str(TS__HASH_INIT, ctx->fp_id);
    h = ts__hash_str(h, ctx->fp.device_version);
    h = ts__hash_u64(h, ctx->caps.dtype_mask);
    h = ts__hash_u64(h, ctx->caps.native_dtype_mask);
    ctx->fp_hash = h;
}

ts_status ts_context_create(const char *backend, int device, ts_context **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_context_create: out is NULL");
    *out = NULL;
    const char *env = getenv("TESSERA_BACKEND");
    if ((!backend || strcmp(backend, "auto") == 0) && env && *env && strcmp(env, "auto") != 0) backend = env;
    const ts_backend *be = NULL;
    void *state = NULL;
    if (!backend || strcmp(backend, "auto") == 0) {
        for (size_t i = 0; i < sizeof auto_order / sizeof auto_order[0] && !be; i++)
            if (ts__backend_get(auto_order[i], &be, &state) != TS_OK) be = NULL;
        if (!be) return ts__error(TS_ERR_UNAVAILABLE, "no backend is available");
    } else {
        ts_status s = ts__backend_get(backend, &be, &state);
        if (s) return s;
    }
    int n = be->device_count ? be->device_count(state) : 0;
    if (device < 0 || device >= n)
        return ts__error(TS_ERR_NOT_FOUND, "backend '%s' has %d device(s); device %d does not exist", be->name, n, device);
    ts_context *ctx = ts__calloc(1, sizeof *ctx);
    if (!ctx) return TS_ERR_OUT_OF_MEMORY;
    ctx->be = be;
    ctx->state = state;
    ctx->device_index = device;
    pthread_mutex_init(&ctx->lock, NULL);
    ts_status s = be->device_open ? be->device_open(state, device, &ctx->caps, &ctx->fp, &ctx->dev)
                                  : ts__error(TS_ERR_VERSION, "backend '%s' has no device_open", be->name);
    if (s) {
        pthread_mutex_destroy(&ctx->lock);
        free(ctx);
        return s;
    }
    make_fingerprint(ctx);
    *out = ctx;
    return TS_OK;
}

void ts_context_destroy(ts_context *ctx) {
    if (!ctx) return;
    for (int i = 0; i < ctx->nmodules; i++)
        if (ctx->be->module_free) ctx->be->module_free(ctx->dev, ctx->modules[i].module);
    free(ctx->modules);
    if (ctx->be->device_close) ctx->be->device_close(ctx->dev);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

const char *ts_context_backend(const ts_context *ctx) { return ctx ? ctx->be->name : ""; }
const char *ts_context_device_name(const ts_context *ctx) { return ctx ? ctx->fp.device : ""; }

const char *ts_context_fingerprint(const ts_context *ctx, uint64_t *hash) {
    if (!ctx) return "";
    if (hash) *hash = ctx->fp_hash;
    return ctx->fp_id;
}

const ts_device_caps *ts_context_caps(const ts_context *ctx) { return ctx ? &ctx->caps : NULL; }

int ts_device_supports_dtype(const ts_context *ctx, ts_dtype d) {
    return ctx && (unsigned)d < TS_DTYPE_COUNT && (ctx->caps.dtype_mask & (1u << d));
}

int ts__context_compile_count(const ts_context *ctx) { return ctx ? ctx->compiles : 0; }

/* ---------------------------------------------------------------- tensors */

typedef struct ts__storage {
    int refs;
    ts_context *ctx;
    void *buf;
    size_t bytes;
} ts__storage;

struct ts_tensor {
    ts__storage *st;
    ts_dtype dtype;
    int rank;
    int64_t shape[TS_MAX_RANK];
    int64_t strides[TS_MAX_RANK];
    int64_t offset;
};

static int64_t numel_of(int rank, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < rank; d++) n *= shape[d];
    return n;
}

/* A contiguous tensor over a new buffer: buffer_alloc, or buffer_wrap_host
 * when `host` is not NULL (ts__tensor_wrap_host). */
static ts_status tensor_new(ts_context *ctx, ts_dtype dtype, int rank, const int64_t *shape, void *host, size_t host_bytes,
                            void (*release)(void *), void *arg, ts_tensor **out);

ts_status ts_tensor_create(ts_context *ctx, ts_dtype dtype, int rank, const int64_t *shape, ts_tensor **out) {
    return tensor_new(ctx, dtype, rank, shape, NULL, 0, NULL, NULL, out);
}

int ts__context_can_wrap_host(const ts_context *ctx) { return ctx && ctx->be->version >= 4 && ctx->be->buffer_wrap_host; }

ts_status ts__tensor_wrap_host(ts_context *ctx, ts_dtype dtype, int rank, const int64_t *shape, void *host, size_t bytes,
                               void (*release)(void *), void *arg, ts_tensor **out) {
    if (out) *out = NULL;
    if (!host || !release || !ts__context_can_wrap_host(ctx)) return TS_ERR_UNSUPPORTED;
    return tensor_new(ctx, dtype, rank, shape, host, bytes, release, arg, out);
}

static ts_status tensor_new(ts_context *ctx, ts_dtype dtype, int rank, const int64_t *shape, void *host, size_t host_bytes,
                            void (*release)(void *), void *arg, ts_tensor **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tensor_create: out is NULL");
    *out = NULL;
    if (!ctx) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tensor_create: context is NULL");
    if ((unsigned)dtype >= TS_DTYPE_COUNT) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tensor_create: invalid dtype %d", (int)dtype);
    if (rank < 1 || rank > TS_MAX_RANK || !shape) return ts__error(TS_ERR_RANK, "ts_tensor_create: rank %d (expected 1..%d)", rank, TS_MAX_RANK);
    int64_t n = 1;
    for (int d = 0; d < rank; d++) {
        if (shape[d] < 0 || shape[d] > (INT64_C(1) << 40)) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tensor_create: dim %d is %lld", d, (long long)shape[d]);
        if (shape[d] && n > (INT64_C(1) << 40) / shape[d]) return ts__error(TS_ERR_LIMIT, "ts_tensor_create: too many elements");
        n *= shape[d];
    }
    if (!ts_device_supports_dtype(ctx, dtype))
        return ts__error(TS_ERR_UNSUPPORTED, "device '%s' (%s) cannot store %s tensors", ctx->fp.device, ctx->be->name, ts_dtype_name(dtype));
    size_t bytes = (size_t)n * ts_dtype_size(dtype);
    if (ctx->caps.max_buffer_bytes && (int64_t)bytes > ctx->caps.max_buffer_bytes)
        return ts__error(TS_ERR_LIMIT, "tensor of %zu bytes exceeds the device's largest buffer (%lld bytes)", bytes, (long long)ctx->caps.max_buffer_bytes);
    ts_tensor *t = ts__calloc(1, sizeof *t);
    ts__storage *st = ts__calloc(1, sizeof *st);
    if (!t || !st) { free(t); free(st); return TS_ERR_OUT_OF_MEMORY; }
    ts_status s;
    if (!host) s = ctx->be->buffer_alloc(ctx->dev, bytes ? bytes : 1, &st->buf);
    else if (host_bytes != bytes || !bytes) s = TS_ERR_UNSUPPORTED;
    else s = ctx->be->buffer_wrap_host(ctx->dev, host, bytes, release, arg, &st->buf);
    if (s) { free(t); free(st); return s; }
    st->refs = 1;
    st->ctx = ctx;
    st->bytes = bytes;
    t->st = st;
    t->dtype = dtype;
    t->rank = rank;
    int64_t stride = 1;
    for (int d = rank - 1; d >= 0; d--) {
        t->shape[d] = shape[d];
        t->strides[d] = stride;
        stride *= shape[d] ? shape[d] : 1;
    }
    *out = t;
    return TS_OK;
}

ts_status ts_tensor_view(ts_tensor *t, int rank, const int64_t *shape, const int64_t *strides, int64_t offset, ts_tensor **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tensor_view: out is NULL");
    *out = NULL;
    if (!t || !shape || !strides) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tensor_view: NULL argument");
    if (rank < 1 || rank > TS_MAX_RANK) return ts__error(TS_ERR_RANK, "ts_tensor_view: rank %d", rank);
    int64_t cap = (int64_t)(t->st->bytes / ts_dtype_size(t->dtype));
    int64_t lo = offset, hi = offset, n = 1;
    for (int d = 0; d < rank; d++) {
        if (shape[d] < 0) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tensor_view: dim %d is negative", d);
        if (shape[d] && n > (INT64_C(1) << 40) / shape[d]) return ts__error(TS_ERR_LIMIT, "ts_tensor_view: too many elements");
        n *= shape[d];
        if (shape[d] == 0) continue;
        int64_t span;
        if (__builtin_mul_overflow(shape[d] - 1, strides[d], &span) || __builtin_add_overflow(strides[d] >= 0 ? hi : lo, span, strides[d] >= 0 ? &hi : &lo))
            return ts__error(TS_ERR_INDEX, "ts_tensor_view: dim %d (size %lld, stride %lld) reaches outside the storage", d, (long long)shape[d],
                             (long long)strides[d]);
    }
    if (n > 0 && (lo < 0 || hi >= cap))
        return ts__error(TS_ERR_INDEX, "ts_tensor_view: the view reaches elements %lld..%lld outside the storage's 0..%lld", (long long)lo,
                         (long long)hi, (long long)cap - 1);
    ts_tensor *v = ts__calloc(1, sizeof *v);
    if (!v) return TS_ERR_OUT_OF_MEMORY;
    *v = *t;
    v->rank = rank;
    memset(v->shape, 0, sizeof v->shape);
    memset(v->strides, 0, sizeof v->strides);
    for (int d = 0; d < rank; d++) {
        v->shape[d] = shape[d];
        v->strides[d] = strides[d];
    }
    v->offset = offset;
    t->st->refs++;
    *out = v;
    return TS_OK;
}

void ts_tensor_destroy(ts_tensor *t) {
    if (!t) return;
    if (--t->st->refs == 0) {
        t->st->ctx->be->buffer_free(t->st->ctx->dev, t->st->buf);
        free(t->st);
    }
    free(t);
}

ts_dtype ts_tensor_dtype(const ts_tensor *t) { return t ? t->dtype : TS_F32; }
int ts_tensor_rank(const ts_tensor *t) { return t ? t->rank : 0; }
const int64_t *ts_tensor_shape(const ts_tensor *t) { return t ? t->shape : NULL; }
const int64_t *ts_tensor_strides(const ts_tensor *t) { return t ? t->strides : NULL; }
int64_t ts_tensor_numel(const ts_tensor *t) { return t ? numel_of(t->rank, t->shape) : 0; }
ts_context *ts_tensor_context(const ts_tensor *t) { return t ? t->st->ctx : NULL; }

static int is_contiguous(const ts_tensor *t) {
    int64_t s = 1;
    for (int d = t->rank - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->strides[d] != s) return 0;
        s *= t->shape[d];
    }
    return 1;
}

/* Copies between packed host data and a strided view through a host image of the storage. */
static ts_status strided_copy(const ts_tensor *t, void *host, int to_device) {
    ts_context *ctx = t->st->ctx;
    size_t es = ts_dtype_size(t->dtype);
    char *img = malloc(t->st->bytes ? t->st->bytes : 1);
    if (!img) return ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory copying a strided tensor");
    ts_status s = ctx->be->buffer_read(ctx->dev, t->st->buf, 0, img, t->st->bytes);
    if (s) { free(img); return s; }
    int64_t n = numel_of(t->rank, t->shape), idx[TS_MAX_RANK] = {0};
    for (int64_t e = 0; e < n; e++) {
        int64_t off = t->offset;
        for (int d = 0; d < t->rank; d++) off += idx[d] * t->strides[d];
        if (to_device) memcpy(img + off * (int64_t)es, (char *)host + e * (int64_t)es, es);
        else memcpy((char *)host + e * (int64_t)es, img + off * (int64_t)es, es);
        for (int d = t->rank - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    if (to_device) s = ctx->be->buffer_write(ctx->dev, t->st->buf, 0, img, t->st->bytes);
    free(img);
    return s;
}

static ts_status check_bytes(const ts_tensor *t, size_t bytes, const char *fn) {
    if (!t) return ts__error(TS_ERR_INVALID_ARGUMENT, "%s: tensor is NULL", fn);
    size_t want = (size_t)ts_tensor_numel(t) * ts_dtype_size(t->dtype);
    if (bytes != want) return ts__error(TS_ERR_INVALID_ARGUMENT, "%s: %zu bytes given, the tensor holds %zu", fn, bytes, want);
    return TS_OK;
}

ts_status ts_tensor_write(ts_tensor *t, const void *host, size_t bytes) {
    ts_status s = check_bytes(t, bytes, "ts_tensor_write");
    if (s) return s;
    if (!bytes) return TS_OK;
    if (!host) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tensor_write: host is NULL");
    if (is_contiguous(t))
        return t->st->ctx->be->buffer_write(t->st->ctx->dev, t->st->buf, (size_t)t->offset * ts_dtype_size(t->dtype), host, bytes);
    return strided_copy(t, (void *)host, 1);
}

ts_status ts_tensor_read(const ts_tensor *t, void *host, size_t bytes) {
    ts_status s = check_bytes(t, bytes, "ts_tensor_read");
    if (s) return s;
    if (!bytes) return TS_OK;
    if (!host) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tensor_read: host is NULL");
    if (is_contiguous(t))
        return t->st->ctx->be->buffer_read(t->st->ctx->dev, t->st->buf, (size_t)t->offset * ts_dtype_size(t->dtype), host, bytes);
    return strided_copy(t, host, 0);
}

ts_status ts_tensor_write_range(ts_tensor *t, size_t byte_offset, const void *host, size_t bytes) {
    if (!t || (!host && bytes)) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tensor_write_range: NULL argument");
    if (!is_contiguous(t)) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tensor_write_range: tensor is not contiguous");
    size_t total = (size_t)ts_tensor_numel(t) * ts_dtype_size(t->dtype);
    if (byte_offset > total || bytes > total - byte_offset)
        return ts__error(TS_ERR_INDEX, "ts_tensor_write_range: bytes %zu..%zu are outside the tensor's %zu", byte_offset, byte_offset + bytes, total);
    if (!bytes) return TS_OK;
    return t->st->ctx->be->buffer_write(t->st->ctx->dev, t->st->buf, (size_t)t->offset * ts_dtype_size(t->dtype) + byte_offset, host, bytes);
}

ts_status ts__tensor_map_write(ts_tensor *t, size_t byte_offset, size_t bytes, void **host) {
    *host = NULL;
    if (!t || !is_contiguous(t)) return TS_ERR_UNSUPPORTED;
    const ts_backend *be = t->st->ctx->be;
    if (be->version < 2 || !be->buffer_map_write || !be->buffer_unmap) return TS_ERR_UNSUPPORTED;
    size_t total = (size_t)ts_tensor_numel(t) * ts_dtype_size(t->dtype);
    if (byte_offset > total || bytes > total - byte_offset || !bytes)
        return ts__error(TS_ERR_INDEX, "ts__tensor_map_write: bytes %zu..%zu are outside the tensor's %zu", byte_offset, byte_offset + bytes, total);
    return be->buffer_map_write(t->st->ctx->dev, t->st->buf, (size_t)t->offset * ts_dtype_size(t->dtype) + byte_offset, bytes, host);
}

ts_status ts__tensor_unmap(ts_tensor *t, void *host) {
    return t->st->ctx->be->buffer_unmap(t->st->ctx->dev, t->st->buf, host);
}

/* Pinned staging (backend v3). Only where the backend has all four
 * members and no buffer_map_write (a mapping beats any staging copy). */
static int has_staging(const ts_backend *be) {
    return be->version >= 3 && be->staging_alloc && be->staging_free && be->buffer_write_async && be->staging_wait &&
           !(be->buffer_map_write && be->buffer_unmap);
}

int ts__context_has_staging(const ts_context *ctx) { return ctx && has_staging(ctx->be); }

ts_status ts__staging_alloc(ts_context *ctx, size_t bytes, void **host, void **handle) {
    *host = NULL;
    *handle = NULL;
    if (!ctx || !has_staging(ctx->be)) return TS_ERR_UNSUPPORTED;
    ts_status s = ctx->be->staging_alloc(ctx->dev, bytes, host, handle);
    if (s) *host = *handle = NULL;
    return s;
}

void ts__staging_free(ts_context *ctx, void *handle) {
    if (ctx && handle) ctx->be->staging_free(ctx->dev, handle);
}

ts_status ts__tensor_write_async(ts_tensor *t, size_t byte_offset, void *handle, const void *host, size_t bytes) {
    size_t total = (size_t)ts_tensor_numel(t) * ts_dtype_size(t->dtype);
    if (!is_contiguous(t) || byte_offset > total || bytes > total - byte_offset)
        return ts__error(TS_ERR_INDEX, "ts__tensor_write_async: bytes %zu..%zu are outside the tensor's %zu", byte_offset, byte_offset + bytes, total);
    if (!bytes) return TS_OK;
    return t->st->ctx->be->buffer_write_async(t->st->ctx->dev, t->st->buf, (size_t)t->offset * ts_dtype_size(t->dtype) + byte_offset, handle, host,
                                              bytes);
}

ts_status ts__staging_wait(ts_context *ctx, void *handle) { return ctx->be->staging_wait(ctx->dev, handle); }

/* ---------------------------------------------------------------- module cache */

static uint64_t module_key(const ts_kernel *k, const ts__plan *p) {
    uint64_t h = ts__hash_u64(TS__HASH_INIT, k->hash);
    for (int t = 0; t < k->ir.ntiles; t++) h = ts__hash_u64(h, (uint64_t)p->block[t]);
    int knobs[] = {p->threads, p->vec, p->unroll, p->stage, p->micro_m, p->micro_n, p->tensor_cores, p->group_m, p->col_threads, p->warps, p->stages};
    return ts__hash_bytes(h, knobs, sizeof knobs);
}

ts_status ts__context_module(ts_context *ctx, const ts_kernel *k, const ts_config *cfg, const ts__plan *plan, void **module) {
    uint64_t key = module_key(k, plan);
    pthread_mutex_lock(&ctx->lock);
    for (int i = 0; i < ctx->nmodules; i++)
        if (ctx->modules[i].key == key) {
            *module = ctx->modules[i].module;
            pthread_mutex_unlock(&ctx->lock);
            return TS_OK;
        }
    char *source = NULL;
    char entry[TS__MAX_NAME + 8];
    snprintf(entry, sizeof entry, "ts_%s", k->ir.name);
    ts_status s = TS_OK;
    if (ctx->be->dialect != TS_DIALECT_NONE) s = ts__codegen_emit(k, plan, ctx->be->dialect, &ctx->caps, entry, &source);
    void *mod = NULL;
    const char *dump = getenv("TESSERA_DUMP_SOURCE"); /* a directory: every generated kernel is written there */
    if (!s && source && dump && *dump) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s-%016llx.src", dump, entry, (unsigned long long)key);
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(source, f);
            fclose(f);
        }
    }
    if (!s) {
        ts_compile_request req = {.kernel = k, .config = cfg, .plan = plan, .source = source, .entry = entry, .options = NULL};
        s = ctx->be->compile(ctx->dev, &req, &mod);
    }
    free(source);
    if (!s) {
        if (ctx->nmodules == ctx->cap_modules) {
            int nc = ctx->cap_modules ? ctx->cap_modules * 2 : 16;
            void *p = ts__realloc_array(ctx->modules, (size_t)nc, sizeof *ctx->modules);
            if (!p) {
                ctx->be->module_free(ctx->dev, mod);
                pthread_mutex_unlock(&ctx->lock);
                return TS_ERR_OUT_OF_MEMORY;
            }
            ctx->modules = p;
            ctx->cap_modules = nc;
        }
        ctx->modules[ctx->nmodules++] = (ts__module_entry){key, mod};
        ctx->compiles++;
        *module = mod;
    }
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

/* ---------------------------------------------------------------- launch */

ts_status ts_launch(ts_context *ctx, const ts_kernel *k, const ts_config *cfg, const ts_arg *args, int nargs, double *ms) {
    if (!ctx || !k) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_launch: NULL context or kernel");
    const ts__kir *ir = &k->ir;
    if (nargs != ir->nparams || (nargs && !args))
        return ts__error(TS_ERR_BAD_ARGS, "kernel '%s' takes %d arguments, %d given", ir->name, ir->nparams, nargs);
    const int64_t *shapes[64];
    static const int64_t no_shape[TS_MAX_RANK] = {0};
    if (nargs > 64) return ts__error(TS_ERR_LIMIT, "kernel '%s' has more than 64 parameters", ir->name);
    for (int i = 0; i < nargs; i++) {
        const ts__param *p = &ir->params[i];
        shapes[i] = no_shape;
        if (!p->is_tensor) {
            if (args[i].tensor) return ts__error(TS_ERR_BAD_ARGS, "kernel '%s': argument %d ('%s') must be a scalar", ir->name, i, p->name);
            continue;
        }
        const ts_tensor *t = args[i].tensor;
        if (!t) return ts__error(TS_ERR_BAD_ARGS, "kernel '%s': argument %d ('%s') must be a tensor", ir->name, i, p->name);
        if (t->st->ctx != ctx) return ts__error(TS_ERR_BAD_ARGS, "kernel '%s': tensor '%s' lives on another context", ir->name, p->name);
        if (t->dtype != p->dtype)
            return ts__error(TS_ERR_BAD_ARGS, "kernel '%s': tensor '%s' is %s, the kernel expects %s", ir->name, p->name, ts_dtype_name(t->dtype),
                             ts_dtype_name(p->dtype));
        if (t->rank != p->rank)
            return ts__error(TS_ERR_BAD_ARGS, "kernel '%s': tensor '%s' has rank %d, the kernel expects %d", ir->name, p->name, t->rank, p->rank);
        shapes[i] = t->shape;
    }
    ts_config *tuned = NULL;
    if (!cfg) {
        ts__tuner_lookup(ctx, k, shapes, &tuned); /* NULL when no entry: kernel defaults */
        cfg = tuned;
    }
    ts__plan plan;
    ts_status s = ts__plan_make(ir, cfg, shapes, &plan);
    if (s) { ts_config_destroy(tuned); return s; }
    int threads = ctx->be->dialect != TS_DIALECT_NONE ? ts__cg_threads(ir, &plan) : plan.threads;
    if (threads > ctx->caps.max_group_size) {
        s = ts__error(TS_ERR_BAD_CONFIG, "kernel '%s': the config needs %d threads per group; the device allows %d", ir->name, threads,
                      ctx->caps.max_group_size);
        goto done;
    }
    void *mod;
    s = ts__context_module(ctx, k, cfg, &plan, &mod);
    if (s) goto done;
    ts_backend_arg bargs[64];
    memset(bargs, 0, sizeof(ts_backend_arg) * (size_t)(nargs ? nargs : 1));
    for (int i = 0; i < nargs; i++) {
        ts_backend_arg *b = &bargs[i];
        const ts__param *p = &ir->params[i];
        b->dtype = p->dtype;
        if (p->is_tensor) {
            const ts_tensor *t = args[i].tensor;
            b->is_tensor = 1;
            b->buffer = t->st->buf;
            b->rank = t->rank;
            memcpy(b->shape, t->shape, sizeof b->shape);
            memcpy(b->strides, t->strides, sizeof b->strides);
            b->offset = t->offset;
        } else {
            double f = args[i].f;
            b->f = ts_dtype_is_float(p->dtype) ? f : (double)args[i].i;
            b->i = ts_dtype_is_float(p->dtype) ? (isfinite(f) && fabs(f) < 9.2e18 ? (int64_t)f : 0) : args[i].i;
        }
    }
    ts_launch_request req = {.kernel = k, .plan = &plan, .args = bargs, .nargs = nargs, .threads = threads,
                             .sizes = plan.size_values, .nsizes = ir->nsizes};
    memcpy(req.grid, plan.grid, sizeof req.grid);
    int empty = 0;
    for (int g = 0; g < 3; g++)
        if (req.grid[g] == 0) empty = 1;
    if (empty) {
        if (ms) *ms = 0;
        goto done;
    }
    s = ctx->be->launch(ctx->dev, mod, &req, ms);
done:
    ts__plan_free(&plan);
    ts_config_destroy(tuned);
    return s;
}

ts_status ts__host_args(const ts_kernel *k, const ts_backend_arg *args, int nargs, ts__host_arg **out) {
    ts__host_arg *h = ts__calloc((size_t)(nargs ? nargs : 1), sizeof *h);
    if (!h) return TS_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < nargs; i++) {
        h[i].is_tensor = args[i].is_tensor;
        h[i].f = args[i].f;
        h[i].i = args[i].i;
        if (args[i].is_tensor) {
            h[i].t.base = (char *)args[i].buffer + args[i].offset * (int64_t)ts_dtype_size(args[i].dtype);
            h[i].t.dtype = args[i].dtype;
            h[i].t.rank = args[i].rank;
            memcpy(h[i].t.shape, args[i].shape, sizeof h[i].t.shape);
            memcpy(h[i].t.strides, args[i].strides, sizeof h[i].t.strides);
        }
    }
    (void)k;
    *out = h;
    return TS_OK;
}

ts_status ts_backend_run_reference(const ts_launch_request *req) {
    ts__host_arg *h;
    ts_status s = ts__host_args(req->kernel, req->args, req->nargs, &h);
    if (s) return s;
    s = ts__execute(req->kernel, (const ts__plan *)req->plan, h);
    free(h);
    return s;
}
