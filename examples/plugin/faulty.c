/* faulty.c: a deliberately broken backend, the plugin
 * libtessera-backend-faulty.so, to prove that the conformance suite catches
 * broken devices. It is hostsim (host memory, the reference executor) plus
 * one fault chosen by the environment at each launch:
 *
 *   TS_FAULT=rounding      results are truncated instead of rounded: f32 and
 *                          f64 lose their 12 / 32 lowest mantissa bits, f16
 *                          and bf16 come out one ulp toward zero
 *   TS_FAULT=dropped_edge  the partial tile at the end of the last dim is
 *                          never written, as if the grid were N / BLOCK
 *                          programs instead of ceil(N / BLOCK) (BLOCK: the
 *                          largest block size of the launch's config)
 *   TS_FAULT=crash         the launch raises SIGSEGV
 *   TS_FAULT=hang          the launch never returns
 *   TS_FAULT=version0, TS_FAULT=version_new
 *                          ts_backend_entry returns a table with interface
 *                          version 0 / one newer than the header (the loader
 *                          must refuse it with TS_ERR_VERSION)
 *   TS_FAULT_KERNEL=TEXT   only kernels whose name contains TEXT are affected
 *
 * Unset or empty TS_FAULT: a correct backend. */
#include "tessera_backend.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *fault(void) {
    const char *f = getenv("TS_FAULT");
    return f ? f : "";
}

static int affected(const ts_kernel *k) {
    const char *only = getenv("TS_FAULT_KERNEL");
    return !only || !*only || strstr(ts_kernel_name(k), only) != NULL;
}

/* ---------------------------------------------------------------- device and buffers */

static ts_status fy_init(void **state) {
    *state = NULL;
    return TS_OK;
}

static int fy_device_count(void *state) {
    (void)state;
    return 1;
}

static ts_status fy_device_open(void *state, int index, ts_device_caps *caps, ts_fingerprint *fp, void **dev) {
    (void)state;
    (void)index;
    caps->max_group_size = 1024;
    caps->shared_mem_bytes = 64 * 1024;
    caps->compute_units = 1;
    caps->global_mem_bytes = INT64_C(1) << 32;
    caps->max_buffer_bytes = INT64_C(1) << 31;
    caps->dtype_mask = (1u << TS_DTYPE_COUNT) - 1;
    caps->native_dtype_mask = caps->dtype_mask;
    caps->has_atomics_f32 = 1;
    snprintf(fp->vendor, sizeof fp->vendor, "example");
    snprintf(fp->device, sizeof fp->device, "faulty (fault injection)");
    snprintf(fp->arch, sizeof fp->arch, "faulty");
    snprintf(fp->driver, sizeof fp->driver, "faulty-1.0");
    snprintf(fp->device_version, sizeof fp->device_version, "1");
    *dev = (void *)1;
    return TS_OK;
}

static void fy_device_close(void *dev) { (void)dev; }

static ts_status fy_alloc(void *dev, size_t bytes, void **buf) {
    (void)dev;
    *buf = calloc(1, bytes ? bytes : 1);
    return *buf ? TS_OK : TS_ERR_OUT_OF_MEMORY;
}

static void fy_free(void *dev, void *buf) {
    (void)dev;
    free(buf);
}

static ts_status fy_write(void *dev, void *buf, size_t offset, const void *src, size_t bytes) {
    (void)dev;
    memcpy((char *)buf + offset, src, bytes);
    return TS_OK;
}

static ts_status fy_read(void *dev, void *buf, size_t offset, void *dst, size_t bytes) {
    (void)dev;
    memcpy(dst, (char *)buf + offset, bytes);
    return TS_OK;
}

/* A module remembers the largest block size of its config (for dropped_edge). */
typedef struct fy_module {
    int64_t block;
} fy_module;

static ts_status fy_compile(void *dev, const ts_compile_request *req, void **module) {
    (void)dev;
    fy_module *m = calloc(1, sizeof *m);
    if (!m) return TS_ERR_OUT_OF_MEMORY;
    m->block = 0;
    for (int i = 0; i < ts_kernel_tunable_count(req->kernel); i++) {
        ts_tunable_info ti;
        if (ts_kernel_tunable(req->kernel, i, &ti)) continue;
        int64_t v = ti.def;
        if (req->config) ts_config_get(req->config, ti.name, &v);
        if (v > m->block) m->block = v;
    }
    if (m->block <= 0) m->block = 16384; /* whole-extent tiles only */
    *module = m;
    return TS_OK;
}

static void fy_module_free(void *dev, void *module) {
    (void)dev;
    free(module);
}

/* ---------------------------------------------------------------- faults */

/* Calls fn on every element of the view of a (in row-major order). */
static void each_element(const ts_backend_arg *a, void (*fn)(unsigned char *elem, ts_dtype d, int64_t last_index, void *u), void *u) {
    size_t es = ts_dtype_size(a->dtype);
    int64_t n = 1;
    for (int d = 0; d < a->rank; d++) n *= a->shape[d];
    int64_t idx[TS_MAX_RANK] = {0};
    for (int64_t i = 0; i < n; i++) {
        int64_t off = a->offset;
        for (int d = 0; d < a->rank; d++) off += idx[d] * a->strides[d];
        fn((unsigned char *)a->buffer + off * (int64_t)es, a->dtype, idx[a->rank - 1], u);
        for (int d = a->rank - 1; d >= 0; d--) {
            if (++idx[d] < a->shape[d]) break;
            idx[d] = 0;
        }
    }
}

static void round_wrong(unsigned char *e, ts_dtype d, int64_t last, void *u) {
    (void)last;
    (void)u;
    if (d == TS_F32) {
        uint32_t b;
        memcpy(&b, e, 4);
        if ((b & 0x7f800000u) != 0x7f800000u) b &= ~UINT32_C(0xfff);
        memcpy(e, &b, 4);
    } else if (d == TS_F64) {
        uint64_t b;
        memcpy(&b, e, 8);
        if ((b & UINT64_C(0x7ff0000000000000)) != UINT64_C(0x7ff0000000000000)) b &= ~UINT64_C(0xffffffff);
        memcpy(e, &b, 8);
    } else if (d == TS_F16 || d == TS_BF16) {
        uint16_t b;
        memcpy(&b, e, 2);
        uint16_t expmask = d == TS_F16 ? 0x7c00 : 0x7f80;
        if ((b & 0x7fff) != 0 && (b & expmask) != expmask) b = (uint16_t)((b & 0x8000) | ((b & 0x7fff) - 1));
        memcpy(e, &b, 2);
    }
}

/* The saved edge: elements whose last-dim index is past the last whole block. */
typedef struct edge_save {
    int64_t from;     /* first last-dim index of the partial tile */
    unsigned char *data;
    size_t used, es;
    int restore;
} edge_save;

static void edge_visit(unsigned char *e, ts_dtype d, int64_t last, void *u) {
    (void)d;
    edge_save *s = u;
    if (last < s->from) return;
    if (s->restore) memcpy(e, s->data + s->used, s->es);
    else memcpy(s->data + s->used, e, s->es);
    s->used += s->es;
}

static ts_status fy_launch(void *dev, void *module, const ts_launch_request *req, double *ms) {
    (void)dev;
    const fy_module *m = module;
    const char *f = affected(req->kernel) ? fault() : "";
    if (strcmp(f, "crash") == 0) raise(SIGSEGV);
    if (strcmp(f, "hang") == 0)
        for (;;) pause();
    int drop = strcmp(f, "dropped_edge") == 0;
    edge_save saves[32];
    memset(saves, 0, sizeof saves);
    for (int i = 0; drop && i < req->nargs && i < 32; i++) {
        const ts_backend_arg *a = &req->args[i];
        if (!a->is_tensor || a->rank < 1) continue;
        int64_t n = a->shape[a->rank - 1], rows = 1;
        if (n % m->block == 0) continue;
        for (int d = 0; d < a->rank - 1; d++) rows *= a->shape[d];
        saves[i].from = n / m->block * m->block;
        saves[i].es = ts_dtype_size(a->dtype);
        saves[i].data = malloc((size_t)((n - saves[i].from) * rows + 1) * saves[i].es);
        if (saves[i].data) each_element(a, edge_visit, &saves[i]);
    }
    double t0 = now_ms();
    ts_status s = ts_backend_run_reference(req);
    if (ms) *ms = now_ms() - t0;
    for (int i = 0; drop && i < req->nargs && i < 32; i++) {
        if (!saves[i].data) continue;
        saves[i].used = 0;
        saves[i].restore = 1;
        each_element(&req->args[i], edge_visit, &saves[i]); /* the edge tile was never written */
        free(saves[i].data);
    }
    if (!s && strcmp(f, "rounding") == 0)
        for (int i = 0; i < req->nargs; i++)
            if (req->args[i].is_tensor && req->args[i].rank >= 1) each_element(&req->args[i], round_wrong, NULL);
    return s;
}

static ts_status fy_synchronize(void *dev) {
    (void)dev;
    return TS_OK;
}

#define FAULTY_TABLE(ver)                                                                                          \
    {                                                                                                              \
        .version = (ver), .name = "faulty", .dialect = TS_DIALECT_NONE, .init = fy_init, .shutdown = NULL,         \
        .device_count = fy_device_count, .device_open = fy_device_open, .device_close = fy_device_close,           \
        .buffer_alloc = fy_alloc, .buffer_free = fy_free, .buffer_write = fy_write, .buffer_read = fy_read,        \
        .compile = fy_compile, .module_free = fy_module_free, .launch = fy_launch, .synchronize = fy_synchronize, \
    }

static const ts_backend faulty_backend = FAULTY_TABLE(TS_BACKEND_VERSION);
static const ts_backend faulty_v0 = FAULTY_TABLE(0);
static const ts_backend faulty_too_new = FAULTY_TABLE(TS_BACKEND_VERSION + 1);

__attribute__((visibility("default"))) const ts_backend *ts_backend_entry(void) {
    const char *f = fault();
    if (strcmp(f, "version0") == 0) return &faulty_v0;
    if (strcmp(f, "version_new") == 0) return &faulty_too_new;
    return &faulty_backend;
}
