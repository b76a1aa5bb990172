/* ref_backend.c: the reference backend: host memory buffers, and launches
 * run by the reference executor. Always available. */
#include "backend_internal.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ts_status ref_init(void **state) {
    *state = NULL;
    return TS_OK;
}

static int ref_device_count(void *state) {
    (void)state;
    return 1;
}

static ts_status ref_device_open(void *state, int index, ts_device_caps *caps, ts_fingerprint *fp, void **dev) {
    (void)state;
    (void)index;
    memset(caps, 0, sizeof *caps);
    caps->max_group_size = 1024;
    caps->shared_mem_bytes = 1 << 20;
    caps->subgroup_size = 0;
    caps->compute_units = 1;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    caps->global_mem_bytes = pages > 0 && psize > 0 ? (int64_t)pages * psize : (INT64_C(1) << 32);
    caps->max_buffer_bytes = caps->global_mem_bytes;
    caps->dtype_mask = (1u << TS_DTYPE_COUNT) - 1;
    caps->native_dtype_mask = caps->dtype_mask;
    caps->has_atomics_f32 = 1;
    memset(fp, 0, sizeof *fp);
    snprintf(fp->vendor, sizeof fp->vendor, "tessera");
    snprintf(fp->device, sizeof fp->device, "reference executor (f64)");
    snprintf(fp->arch, sizeof fp->arch, "ref");
    snprintf(fp->driver, sizeof fp->driver, "%s", TS_VERSION_STRING);
    snprintf(fp->device_version, sizeof fp->device_version, "1");
    *dev = (void *)1;
    return TS_OK;
}

static void ref_device_close(void *dev) { (void)dev; }

static ts_status ref_alloc(void *dev, size_t bytes, void **buf) {
    (void)dev;
    *buf = calloc(1, bytes ? bytes : 1);
    return *buf ? TS_OK : ts__error(TS_ERR_OUT_OF_MEMORY, "ref: cannot allocate %zu bytes", bytes);
}

/* Buffers over the caller's host memory (buffer_wrap_host): a buffer is its
 * host pointer here, so the ones this backend did not allocate are kept in
 * a small hash of pointer -> release, guarded by a mutex (tensors are
 * created and destroyed from several upload threads). */
#define TS__REF_WRAP_BUCKETS 256
typedef struct ref_wrapped {
    void *host;
    void (*release)(void *);
    void *arg;
    struct ref_wrapped *next;
} ref_wrapped;
static ref_wrapped *wrapped[TS__REF_WRAP_BUCKETS];
static pthread_mutex_t wrapped_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t wrap_bucket(const void *p) { return (size_t)(((uintptr_t)p >> 12) * 0x9E3779B97F4A7C15ull >> 56) % TS__REF_WRAP_BUCKETS; }

static ts_status ref_wrap_host(void *dev, void *host, size_t bytes, void (*release)(void *), void *arg, void **buf) {
    (void)dev;
    (void)bytes;
    if (!host || !release) return TS_ERR_UNSUPPORTED;
    ref_wrapped *w = ts__calloc(1, sizeof *w);
    if (!w) return TS_ERR_OUT_OF_MEMORY;
    w->host = host;
    w->release = release;
    w->arg = arg;
    pthread_mutex_lock(&wrapped_lock);
    size_t b = wrap_bucket(host);
    w->next = wrapped[b];
    wrapped[b] = w;
    pthread_mutex_unlock(&wrapped_lock);
    *buf = host;
    return TS_OK;
}

static void ref_free(void *dev, void *buf) {
    (void)dev;
    if (!buf) return;
    ref_wrapped *found = NULL;
    pthread_mutex_lock(&wrapped_lock);
    for (ref_wrapped **w = &wrapped[wrap_bucket(buf)]; *w; w = &(*w)->next)
        if ((*w)->host == buf) {
            found = *w;
            *w = found->next;
            break;
        }
    pthread_mutex_unlock(&wrapped_lock);
    if (!found) {
        free(buf);
        return;
    }
    found->release(found->arg);
    free(found);
}

static ts_status ref_write(void *dev, void *buf, size_t off, const void *src, size_t n) {
    (void)dev;
    memcpy((char *)buf + off, src, n);
    return TS_OK;
}

static ts_status ref_map_write(void *dev, void *buf, size_t off, size_t n, void **host) {
    (void)dev;
    (void)n;
    *host = (char *)buf + off;
    return TS_OK;
}

static ts_status ref_unmap(void *dev, void *buf, void *host) { return TS_OK; }

static ts_status ref_read(void *dev, void *buf, size_t off, void *dst, size_t n) {
    (void)dev;
    memcpy(dst, (char *)buf + off, n);
    return TS_OK;
}

static ts_status ref_compile(void *dev, const ts_compile_request *req, void **module) {
    (void)dev;
    (void)req;
    *module = (void *)1; /* nothing to compile: the executor interprets the IR */
    return TS_OK;
}

static void ref_module_free(void *dev, void *module) {
    (void)dev;
    (void)module;
}

static ts_status ref_launch(void *dev, void *module, const ts_launch_request *req, double *ms) {
    (void)dev;
    (void)module;
    double t0 = ts__now_ms();
    ts_status s = ts_backend_run_reference(req);
    if (ms) *ms = ts__now_ms() - t0;
    return s;
}

static ts_status ref_sync(void *dev) {
    (void)dev;
    return TS_OK;
}

static const ts_backend ref_backend = {
    .version = TS_BACKEND_VERSION,
    .name = "ref",
    .dialect = TS_DIALECT_NONE,
    .init = ref_init,
    .shutdown = NULL,
    .device_count = ref_device_count,
    .device_open = ref_device_open,
    .device_close = ref_device_close,
    .buffer_alloc = ref_alloc,
    .buffer_free = ref_free,
    .buffer_write = ref_write,
    .buffer_read = ref_read,
    .compile = ref_compile,
    .module_free = ref_module_free,
    .launch = ref_launch,
    .synchronize = ref_sync,
    .buffer_map_write = ref_map_write,
    .buffer_unmap = ref_unmap,
    .buffer_wrap_host = ref_wrap_host,
};

const ts_backend *ts__ref_backend(void) { return &ref_backend; }
