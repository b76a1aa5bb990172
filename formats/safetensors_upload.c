/* safetensors_upload.c: file tensors to device tensors and back.
 *
 * Sections: one tensor (raw chunks straight from the mapping; conversions
 * straight into a mapped host-memory buffer, or through one bounded staging
 * buffer; both through the pinned ring where the backend has one); parallel tensor sets (a whole file or
 * collection); saving a set back.
 *
 * Memory bound: a raw upload hands the backend slices of the mapping, at
 * most chunk_bytes each; a converting upload writes into the device buffer
 * itself where the backend maps it (backend v2), else owns one staging
 * buffer of chunk_bytes per thread. None ever holds a whole tensor in host
 * memory besides the device's own buffer. Where the backend has pinned
 * staging and no mapping (backend v3: CUDA, HIP), each thread owns a ring of
 * ring_slots page-locked buffers of chunk_bytes instead: it fills one (memcpy
 * or conversion from the mapping), queues its asynchronous copy and moves on,
 * waiting for a slot's previous copy only before refilling it, so reading
 * the file and converting overlap the transfers. */
#include "safetensors_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---------------------------------------------------------------- one tensor */

#define TS__ST_RING_DEFAULT 3 /* slots: one filling, two copying */
#define TS__ST_RING_MAX 16

static ts_st_upload_options options_of(const ts_st_upload_options *o) {
    ts_st_upload_options d = TS_ST_UPLOAD_OPTIONS_INIT;
    if (o && o->size >= offsetof(ts_st_upload_options, chunk_bytes) + sizeof o->chunk_bytes) {
        d.convert = o->convert;
        d.chunk_bytes = o->chunk_bytes;
    }
    if (o && o->size >= offsetof(ts_st_upload_options, threads) + sizeof o->threads) d.threads = o->threads;
    if (o && o->size >= offsetof(ts_st_upload_options, ring_slots) + sizeof o->ring_slots) d.ring_slots = o->ring_slots;
    if (o && o->size >= offsetof(ts_st_upload_options, zero_copy) + sizeof o->zero_copy) d.zero_copy = o->zero_copy;
    if (d.ring_slots <= 0) d.ring_slots = TS__ST_RING_DEFAULT;
    if (d.ring_slots > TS__ST_RING_MAX) d.ring_slots = TS__ST_RING_MAX;
    if (!d.chunk_bytes) d.chunk_bytes = TS__ST_CHUNK;
    if (d.chunk_bytes < 64) d.chunk_bytes = 64;
    return d;
}

/* The runtime dtype a file tensor becomes on ctx under `o`. */
static ts_status target_dtype(ts_context *ctx, const ts_st_tensor_info *info, const ts_st_upload_options *o, ts_dtype *out) {
    ts_dtype td;
    ts_status s = ts_st_dtype_to_ts(info->dtype, &td);
    if (s) return s;
    if (td == TS_F16 || td == TS_BF16) {
        if (o->convert == TS_ST_CONVERT_ALWAYS || (o->convert == TS_ST_CONVERT_IF_UNSUPPORTED && !ts_device_supports_dtype(ctx, td)))
            td = TS_F32;
    }
    *out = td;
    return TS_OK;
}

/* Conversions to f32, written so that the compiler vectorises them (no
 * branches, no calls; the source may be unaligned). Bit for bit the same as
 * ts__half_to_float / ts__bf16_to_float: subnormal halves are renormalised
 * by an exact float subtraction, infinities and NaNs keep their payload. */
#if defined(__GNUC__) && !defined(__clang__)
#define TS__VECTORISE __attribute__((optimize("tree-vectorize")))
#else
#define TS__VECTORISE
#endif

TS__VECTORISE static void bf16_to_f32(float *restrict dst, const uint8_t *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        uint32_t b = (uint32_t)h << 16;
        memcpy(dst + i, &b, 4);
    }
}

TS__VECTORISE static void f16_to_f32(float *restrict dst, const uint8_t *restrict src, size_t n) {
    const float magic = 6.103515625e-05f; /* 2^-14: the value of (113 << 23) */
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        uint32_t o = ((uint32_t)h & 0x7fffu) << 13, e = o & (0x7c00u << 13);
        o += (127u - 15u) << 23;
        uint32_t inf_nan = o + ((128u - 16u) << 23);
        uint32_t sub = o + (1u << 23);
        float fs;
        memcpy(&fs, &sub, 4);
        fs -= magic;
        uint32_t sb;
        memcpy(&sb, &fs, 4);
        o = e == (0x7c00u << 13) ? inf_nan : e == 0 ? sb : o;
        o |= ((uint32_t)h & 0x8000u) << 16;
        memcpy(dst + i, &o, 4);
    }
}

/* The pinned ring (see the file comment). */

/* Slots are allocated on first use (a single small tensor takes one) and
 * reused round-robin across every tensor the owning thread uploads. `owner`
 * is the tensor whose copy a slot last queued, for messages. */
typedef struct st_ring {
    ts_context *ctx;
    int k, next;
    int absent; /* the backend has no staging after all: the unstaged paths */
    size_t slot_bytes;
    struct {
        void *host, *handle;
        const ts_st_tensor_info *owner;
    } slot[TS__ST_RING_MAX];
} st_ring;

static void ring_init(st_ring *r, ts_context *ctx, const ts_st_upload_options *o) {
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
    r->k = o->ring_slots;
    r->slot_bytes = o->chunk_bytes;
    r->absent = !ts__context_has_staging(ctx);
}

/* Waits for one slot's queued copy; a failure names the tensor it carried. */
static ts_status ring_wait(st_ring *r, int i, const ts_st_tensor_info *current) {
    if (!r->slot[i].handle) return TS_OK;
    ts_status s = ts__staging_wait(r->ctx, r->slot[i].handle);
    const ts_st_tensor_info *o = r->slot[i].owner;
    if (s && o && o != current) ts__error_prefix("the copy of tensor '%.*s' (queued earlier)", TS__ST_QUOTE, o->name);
    return s;
}

/* Waits for every slot; returns the first failure and, when `failed` is
 * not NULL, the tensor whose copy failed. */
static ts_status ring_drain(st_ring *r, const ts_st_tensor_info *current, const ts_st_tensor_info **failed) {
    ts_status first = TS_OK;
    char why[1024] = "";
    for (int i = 0; i < r->k; i++) {
        const ts_st_tensor_info *o = r->slot[i].owner;
        ts_status s = ring_wait(r, i, current);
        if (s && !first) {
            first = s;
            snprintf(why, sizeof why, "%s", ts_last_error());
            if (failed) *failed = o;
        }
    }
    return first ? ts__error(first, "%s", why) : TS_OK;
}

static void ring_free(st_ring *r) {
    for (int i = 0; i < r->k; i++) ts__staging_free(r->ctx, r->slot[i].handle);
    memset(r->slot, 0, sizeof r->slot);
}

/* Uploads one tensor through the ring: raw bytes memcpy'd, f16/bf16
 * converted to f32, chunk by chunk from the file's mapping. Copies may
 * still be in flight on return (ring_drain). */
static ts_status ring_upload(st_ring *r, ts_tensor *t, const ts_st_tensor_info *info, ts_dtype from, ts_dtype td, pthread_mutex_t *lock) {
    const uint8_t *src = info->data;
    int convert = td != from;
    size_t per = convert ? r->slot_bytes / sizeof(float) : r->slot_bytes;
    size_t total = convert ? (size_t)info->numel : info->nbytes;
    ts_status s = TS_OK;
    for (size_t at = 0; at < total && !s; at += per) {
        size_t n = total - at < per ? total - at : per;
        int i = r->next;
        if (lock) pthread_mutex_lock(lock);
        if (!r->slot[i].handle) s = ts__staging_alloc(r->ctx, r->slot_bytes, &r->slot[i].host, &r->slot[i].handle);
        else s = ring_wait(r, i, info);
        if (lock) pthread_mutex_unlock(lock);
        if (s) break;
        if (!convert) memcpy(r->slot[i].host, src + at, n);
        else if (from == TS_F16) f16_to_f32(r->slot[i].host, src + 2 * at, n);
        else bf16_to_f32(r->slot[i].host, src + 2 * at, n);
        size_t off = convert ? at * sizeof(float) : at, bytes = convert ? n * sizeof(float) : n;
        if (lock) pthread_mutex_lock(lock);
        s = ts__tensor_write_async(t, off, r->slot[i].handle, r->slot[i].host, bytes);
        if (lock) pthread_mutex_unlock(lock);
        if (!s) {
            r->slot[i].owner = info;
            r->next = (i + 1) % r->k;
        }
    }
    return s;
}

static ts_status shape_of(const ts_st_tensor_info *info, int *rank, int64_t *shape) {
    if (info->rank > TS_MAX_RANK)
        return ts__error(TS_ERR_UNSUPPORTED, "rank %d is above the runtime's limit of %d", info->rank, TS_MAX_RANK);
    shape[0] = 1;
    *rank = info->rank ? info->rank : 1; /* a scalar becomes [1] */
    for (int d = 0; d < info->rank; d++) {
        if (info->shape[d] > (uint64_t)INT64_MAX) return ts__error(TS_ERR_LIMIT, "dim %d is too large", d);
        shape[d] = (int64_t)info->shape[d];
    }
    return TS_OK;
}

static ts_status create_for(ts_context *ctx, const ts_st_tensor_info *info, ts_dtype td, ts_tensor **t) {
    int64_t shape[TS_MAX_RANK];
    int rank;
    ts_status s = shape_of(info, &rank, shape);
    return s ? s : ts_tensor_create(ctx, td, rank, shape, t);
}

/* Zero copy (see zero_copy in tessera_safetensors.h): a private mapping of
 * the tensor's pages of the file, read-faulted here (one read a page, which
 * the kernel serves from the page cache several pages at a time) so that
 * no launch pays the faults, then handed to the backend to use in place.
 * Returns TS_ERR_UNSUPPORTED, with nothing left mapped, wherever it does not
 * apply; the caller then copies. */
#define TS__ST_ZERO_COPY_MIN ((size_t)64 << 10) /* below this a copy is cheaper than a mapping */

typedef struct zc_mapping {
    void *base;
    size_t len;
} zc_mapping;

static void zc_release(void *arg) {
    zc_mapping *m = arg;
    munmap(m->base, m->len);
    free(m);
}

static ts_status zero_copy(ts_context *ctx, const ts_st_tensor_info *info, ts_dtype td, pthread_mutex_t *lock, ts_tensor **out) {
    uint64_t off;
    int fd = ts__st_file_fd(info->file, info->data, &off);
    if (fd < 0 || info->nbytes < TS__ST_ZERO_COPY_MIN || !ts__context_can_wrap_host(ctx)) return TS_ERR_UNSUPPORTED;
    int64_t shape[TS_MAX_RANK];
    int rank;
    if (shape_of(info, &rank, shape)) {
        ts_clear_error();
        return TS_ERR_UNSUPPORTED; /* the copy path reports it */
    }
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return TS_ERR_UNSUPPORTED;
    uint64_t start = off - off % (uint64_t)page;
    size_t delta = (size_t)(off - start), len = delta + info->nbytes;
    if ((uintptr_t)info->data % ts_dtype_size(td)) return TS_ERR_UNSUPPORTED; /* elements must be aligned in memory */
    zc_mapping *m = malloc(sizeof *m);
    if (!m) return TS_ERR_UNSUPPORTED;
    m->len = len;
    m->base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, (off_t)start);
    if (m->base == MAP_FAILED) {
        free(m);
        return TS_ERR_UNSUPPORTED;
    }
    uint8_t *host = (uint8_t *)m->base + delta;
    unsigned sum = 0;
    for (size_t p = 0; p < len; p += (size_t)page) sum += ((volatile uint8_t *)m->base)[p];
    (void)sum;
    if (lock) pthread_mutex_lock(lock);
    ts_status s = ts__tensor_wrap_host(ctx, td, rank, shape, host, info->nbytes, zc_release, m, out);
    if (lock) pthread_mutex_unlock(lock);
    if (s) {
        ts_clear_error();
        munmap(m->base, m->len);
        free(m);
        return TS_ERR_UNSUPPORTED;
    }
    return TS_OK;
}

/* `lock`, when not NULL, is held around every backend call (backends not
 * known to be thread-safe, under parallel uploads). `stage` is a staging
 * buffer of o->chunk_bytes (converting uploads only); `ring` the thread's
 * pinned ring, used where the backend has one and no mapping (its copies
 * may be in flight on return). */
static ts_status upload_one(ts_context *ctx, const ts_st_tensor_info *info, const ts_st_upload_options *o, pthread_mutex_t *lock,
                            float *stage, st_ring *ring, ts_tensor **out) {
    ts_dtype td;
    ts_status s = target_dtype(ctx, info, o, &td);
    if (s) return s;
    ts_dtype from;
    ts_st_dtype_to_ts(info->dtype, &from);
    ts_tensor *t = NULL;
    if (o->zero_copy >= 0 && td == from && (size_t)info->numel * ts_dtype_size(td) == info->nbytes) {
        s = zero_copy(ctx, info, td, lock, &t);
        if (!s) {
            *out = t;
            return TS_OK;
        }
    }
    if (lock) pthread_mutex_lock(lock);
    s = create_for(ctx, info, td, &t);
    if (lock) pthread_mutex_unlock(lock);
    if (s) return s;
    const uint8_t *src = info->data;
    size_t chunk = o->chunk_bytes;
    size_t out_bytes = (size_t)info->numel * ts_dtype_size(td);
    void *direct = NULL;
    if (td == from && out_bytes != info->nbytes)
        s = ts__error(TS_ERR_UNSUPPORTED, "runtime dtype %s does not have the file's element size", ts_dtype_name(td));
    else if (out_bytes && td != from) {
        /* Converting, where the device shares host memory: straight from the
         * file's mapping into the buffer, no staging pass. Raw bytes take
         * buffer_write from the mapping instead: on PoCL, mapping and
         * copying ourselves measured about twice slower than
         * clEnqueueWriteBuffer (48-60 ms against 83-200 ms for 256 MiB). */
        if (lock) pthread_mutex_lock(lock);
        ts_status m = ts__tensor_map_write(t, 0, out_bytes, &direct);
        if (lock) pthread_mutex_unlock(lock);
        if (m && m != TS_ERR_UNSUPPORTED) s = m;
    }
    int staged = 0;
    if (!s && !direct && ring && !ring->absent && out_bytes && (td == from || from == TS_F16 || from == TS_BF16)) {
        s = ring_upload(ring, t, info, from, td, lock);
        if (s == TS_ERR_UNSUPPORTED && !ring->slot[0].handle) { /* no staging after all: the unstaged paths, from now on */
            ring->absent = 1;
            ts_clear_error();
            s = TS_OK;
        } else staged = 1;
    }
    if (s || staged) {
    } else if (direct) {
        if (from == TS_F16) f16_to_f32(direct, src, (size_t)info->numel);
        else bf16_to_f32(direct, src, (size_t)info->numel);
        if (lock) pthread_mutex_lock(lock);
        s = ts__tensor_unmap(t, direct);
        if (lock) pthread_mutex_unlock(lock);
    } else if (td == from) { /* straight from the mapping, no staging copy */
        for (size_t at = 0; at < info->nbytes && !s; at += chunk) {
            size_t n = info->nbytes - at < chunk ? info->nbytes - at : chunk;
            if (lock) pthread_mutex_lock(lock);
            s = ts_tensor_write_range(t, at, src + at, n);
            if (lock) pthread_mutex_unlock(lock);
        }
    } else { /* f16 / bf16 -> f32, converted chunk by chunk into the staging buffer */
        size_t per = chunk / sizeof(float), total = (size_t)info->numel;
        for (size_t at = 0; at < total && !s; at += per) {
            size_t n = total - at < per ? total - at : per;
            if (from == TS_F16) f16_to_f32(stage, src + 2 * at, n);
            else bf16_to_f32(stage, src + 2 * at, n);
            if (lock) pthread_mutex_lock(lock);
            s = ts_tensor_write_range(t, at * sizeof(float), stage, n * sizeof(float));
            if (lock) pthread_mutex_unlock(lock);
        }
    }
    if (s) {
        if (lock) pthread_mutex_lock(lock);
        if (staged) { /* no copy may still target t's buffer; keep the message of s */
            char why[1024];
            snprintf(why, sizeof why, "%s", ts_last_error());
            ring_drain(ring, info, NULL);
            ts__error(s, "%s", why);
        }
        ts_tensor_destroy(t);
        if (lock) pthread_mutex_unlock(lock);
        return s;
    }
    *out = t;
    return TS_OK;
}

static ts_status upload_prefixed(ts_context *ctx, const ts_st_tensor_info *info, const ts_st_upload_options *o, pthread_mutex_t *lock,
                                 float *stage, st_ring *ring, ts_tensor **out) {
    ts_status s = upload_one(ctx, info, o, lock, stage, ring, out);
    if (s) ts__error_prefix("uploading tensor '%.*s' (%s)", TS__ST_QUOTE, info->name, ts_st_dtype_name(info->dtype));
    return s;
}

ts_status ts_st_upload(ts_context *ctx, const ts_st_tensor_info *info, const ts_st_upload_options *opts, ts_tensor **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_upload: out is NULL");
    *out = NULL;
    if (!ctx || !info || !info->name || (!info->data && info->nbytes))
        return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_upload: NULL argument");
    ts_st_upload_options o = options_of(opts);
    float *stage = malloc(o.chunk_bytes);
    if (!stage) return ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory for a %zu-byte staging buffer", o.chunk_bytes);
    st_ring ring;
    ring_init(&ring, ctx, &o);
    ts_status s = upload_prefixed(ctx, info, &o, NULL, stage, &ring, out);
    ts_status d = s ? TS_OK : ring_drain(&ring, NULL, NULL);
    if (d) {
        ts__error_prefix("uploading tensor '%.*s' (%s)", TS__ST_QUOTE, info->name, ts_st_dtype_name(info->dtype));
        s = d;
        ts_tensor_destroy(*out);
        *out = NULL;
    }
    ring_free(&ring);
    free(stage);
    return s;
}

/* ---------------------------------------------------------------- tensor sets */

typedef struct set_entry {
    char *name;
    ts_tensor *t;
    ts_st_dtype fdtype;
    int frank;
    uint64_t *fshape;
} set_entry;

struct ts_st_tensor_set {
    set_entry *e; /* sorted by name */
    size_t n;
};

void ts_st_tensor_set_destroy(ts_st_tensor_set *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        ts_tensor_destroy(s->e[i].t);
        free(s->e[i].name);
        free(s->e[i].fshape);
    }
    free(s->e);
    free(s);
}

static int cmp_info_name(const void *a, const void *b) {
    return strcmp(((const ts_st_tensor_info *)a)->name, ((const ts_st_tensor_info *)b)->name);
}

/* Parallel uploads: workers take tensors in index order from a shared
 * counter. The failure with the lowest index is the one reported, which is
 * the one the serial path would have stopped at (every tensor before it was
 * taken earlier, so it was uploaded); its message crosses threads as text. */
typedef struct upload_job {
    ts_context *ctx;
    const ts_st_tensor_info *infos;
    ts_st_tensor_set *set;
    size_t n;
    const ts_st_upload_options *o;
    pthread_mutex_t *backend_lock; /* NULL for thread-safe backends */
    pthread_mutex_t mu;            /* next, fail_at, status, message */
    size_t next, fail_at;
    ts_status status;
    char message[1024];
} upload_job;

/* Records failure s (message in ts_last_error) of tensor i if it is the lowest so far. */
static void job_fail(upload_job *j, size_t i, ts_status s) {
    pthread_mutex_lock(&j->mu);
    if (i < j->fail_at) {
        j->fail_at = i;
        j->status = s;
        snprintf(j->message, sizeof j->message, "%s", ts_last_error());
    }
    pthread_mutex_unlock(&j->mu);
}

static void *upload_worker(void *arg) {
    upload_job *j = arg;
    float *stage = malloc(j->o->chunk_bytes);
    st_ring ring;
    ring_init(&ring, j->ctx, j->o);
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t i = j->next < j->fail_at ? j->next++ : SIZE_MAX;
        pthread_mutex_unlock(&j->mu);
        if (i == SIZE_MAX) break;
        ts_status s = stage ? upload_prefixed(j->ctx, &j->infos[i], j->o, j->backend_lock, stage, &ring, &j->set->e[i].t)
                            : ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory for a %zu-byte staging buffer", j->o->chunk_bytes);
        if (s) job_fail(j, i, s);
    }
    /* the last copies: a failure belongs to the tensor that queued it */
    const ts_st_tensor_info *failed = NULL;
    if (j->backend_lock) pthread_mutex_lock(j->backend_lock);
    ts_status s = ring_drain(&ring, NULL, &failed);
    if (s && failed) {
        ts__error_prefix("uploading tensor '%.*s' (%s)", TS__ST_QUOTE, failed->name, ts_st_dtype_name(failed->dtype));
        job_fail(j, (size_t)(failed - j->infos), s);
    }
    ring_free(&ring);
    if (j->backend_lock) pthread_mutex_unlock(j->backend_lock);
    free(stage);
    return NULL;
}

static int default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n < 64 ? n : 64) : 1;
}

/* Uploads infos (sorted by name) into a new set. */
static ts_status upload_list(ts_context *ctx, const ts_st_tensor_info *infos, size_t n, const ts_st_upload_options *opts,
                             ts_st_tensor_set **out) {
    *out = NULL;
    if (!ctx) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_upload: context is NULL");
    ts_st_upload_options o = options_of(opts);
    ts_st_tensor_set *set = ts__calloc(1, sizeof *set);
    if (!set) return TS_ERR_OUT_OF_MEMORY;
    set->e = ts__calloc(n ? n : 1, sizeof *set->e);
    if (!set->e) {
        free(set);
        return TS_ERR_OUT_OF_MEMORY;
    }
    set->n = n;
    for (size_t i = 0; i < n; i++) {
        set_entry *e = &set->e[i];
        e->fdtype = infos[i].dtype;
        e->frank = infos[i].rank;
        e->name = ts__strdup(infos[i].name);
        if (infos[i].rank) e->fshape = ts__calloc((size_t)infos[i].rank, sizeof *e->fshape);
        if (!e->name || (infos[i].rank && !e->fshape)) {
            ts_st_tensor_set_destroy(set);
            return TS_ERR_OUT_OF_MEMORY;
        }
        if (infos[i].rank) memcpy(e->fshape, infos[i].shape, (size_t)infos[i].rank * sizeof *e->fshape);
    }
    /* one thread by default where a ring overlaps the copies: the link, not the CPU, bounds those */
    int threads = o.threads > 0 ? o.threads : ts__context_has_staging(ctx) ? 1 : default_threads();
    if ((size_t)threads > n) threads = n ? (int)n : 1;
    if (threads > 64) threads = 64;
    upload_job j = {.ctx = ctx, .infos = infos, .set = set, .n = n, .o = &o, .fail_at = n};
    pthread_mutex_init(&j.mu, NULL);
    /* ref and opencl (OpenCL API calls are thread-safe) take concurrent calls; others get one call at a time */
    pthread_mutex_t backend_lock;
    const char *be = ts_context_backend(ctx);
    int safe = be && (strcmp(be, "ref") == 0 || strcmp(be, "opencl") == 0);
    if (threads > 1 && !safe) {
        pthread_mutex_init(&backend_lock, NULL);
        j.backend_lock = &backend_lock;
    }
    pthread_t tid[64];
    int started = 0;
    for (int k = 1; k < threads; k++) {
        if (pthread_create(&tid[started], NULL, upload_worker, &j) != 0) break; /* fewer threads: still correct */
        started++;
    }
    upload_worker(&j); /* the calling thread works too */
    for (int k = 0; k < started; k++) pthread_join(tid[k], NULL);
    pthread_mutex_destroy(&j.mu);
    if (j.backend_lock) pthread_mutex_destroy(&backend_lock);
    if (j.status) {
        ts_st_tensor_set_destroy(set);
        return ts__error(j.status, "%s", j.message);
    }
    *out = set;
    return TS_OK;
}

ts_status ts_st_upload_file(ts_context *ctx, const ts_st_file *f, const ts_st_upload_options *opts, ts_st_tensor_set **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_upload_file: out is NULL");
    *out = NULL;
    if (!f) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_upload_file: file is NULL");
    size_t n = ts_st_count(f);
    ts_st_tensor_info *infos = ts__calloc(n ? n : 1, sizeof *infos);
    if (!infos) return TS_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < n; i++) ts_st_tensor_at(f, i, &infos[i]);
    qsort(infos, n, sizeof *infos, cmp_info_name);
    ts_status s = upload_list(ctx, infos, n, opts, out);
    if (s) ts__error_prefix("'%s'", ts_st_path(f));
    free(infos);
    return s;
}

ts_status ts_st_upload_collection(ts_context *ctx, const ts_st_collection *c, const ts_st_upload_options *opts, ts_st_tensor_set **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_upload_collection: out is NULL");
    *out = NULL;
    if (!c) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_upload_collection: collection is NULL");
    size_t n = ts_st_collection_count(c);
    ts_st_tensor_info *infos = ts__calloc(n ? n : 1, sizeof *infos);
    if (!infos) return TS_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < n; i++) ts_st_collection_tensor_at(c, i, &infos[i]); /* already sorted by name */
    ts_status s = upload_list(ctx, infos, n, opts, out);
    free(infos);
    return s;
}

size_t ts_st_tensor_set_count(const ts_st_tensor_set *s) { return s ? s->n : 0; }
const char *ts_st_tensor_set_name(const ts_st_tensor_set *s, size_t i) { return s && i < s->n ? s->e[i].name : NULL; }
ts_tensor *ts_st_tensor_set_tensor(const ts_st_tensor_set *s, size_t i) { return s && i < s->n ? s->e[i].t : NULL; }
ts_st_dtype ts_st_tensor_set_file_dtype(const ts_st_tensor_set *s, size_t i) { return s && i < s->n ? s->e[i].fdtype : TS_ST_DTYPE_COUNT; }

int ts_st_tensor_set_file_shape(const ts_st_tensor_set *s, size_t i, const uint64_t **shape) {
    if (!s || i >= s->n) {
        if (shape) *shape = NULL;
        return -1;
    }
    if (shape) *shape = s->e[i].fshape;
    return s->e[i].frank;
}

ts_tensor *ts_st_tensor_set_find(const ts_st_tensor_set *s, const char *name) {
    if (!s || !name) return NULL;
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->e[mid].name, name);
        if (c == 0) return s->e[mid].t;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* ---------------------------------------------------------------- saving back */

ts_status ts_st_save_set(const ts_st_tensor_set *set, const ts_st_file *metadata, const char *path) {
    if (!set || !path) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_save_set: NULL argument");
    ts_st_writer *w = NULL;
    ts_status s = ts_st_writer_create(&w);
    for (size_t i = 0; i < set->n && !s; i++) {
        const set_entry *e = &set->e[i];
        /* tensors of a set come from ts_tensor_create: storage offset 0, so downloads can be chunked */
        s = ts__st_writer_add_tensor(w, e->name, e->t, e->fdtype, e->frank, e->fshape, 1);
    }
    for (size_t i = 0; metadata && i < ts_st_metadata_count(metadata) && !s; i++) {
        const char *k, *v;
        ts_st_metadata_at(metadata, i, &k, &v);
        s = ts_st_writer_metadata(w, k, v);
    }
    if (!s) s = ts_st_writer_save(w, path);
    ts_st_writer_destroy(w);
    return s;
}
