/* hostsim.c: the smallest complete Tessera backend, built out of tree as
 * the plugin libtessera-backend-hostsim.so.
 *
 * It is what a vendor's bring-up starts from: buffers are host memory,
 * `compile` has nothing to do (dialect TS_DIALECT_NONE), and `launch` hands
 * the request to ts_backend_run_reference(), the reference executor the
 * host process provides. A real device replaces the buffer functions with
 * its allocator and copies, sets `dialect` to the source it compiles, and
 * builds that source in `compile` (see docs/porting.md).
 *
 * Only the installed headers are used: tessera.h and tessera_backend.h. */
#include "tessera_backend.h"

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

static ts_status hs_init(void **state) {
    *state = NULL; /* a driver would be loaded and its devices enumerated here */
    return TS_OK;
}

static int hs_device_count(void *state) {
    (void)state;
    return 1;
}

static ts_status hs_device_open(void *state, int index, ts_device_caps *caps, ts_fingerprint *fp, void **dev) {
    (void)state;
    (void)index;
    /* caps: what the device can do; the core refuses what they rule out */
    caps->max_group_size = 1024;
    caps->shared_mem_bytes = 64 * 1024;
    caps->subgroup_size = 0;
    caps->compute_units = 1;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    caps->global_mem_bytes = pages > 0 && psize > 0 ? (int64_t)pages * psize : (INT64_C(1) << 32);
    caps->max_buffer_bytes = caps->global_mem_bytes;
    caps->dtype_mask = (1u << TS_DTYPE_COUNT) - 1; /* stores every dtype */
    caps->native_dtype_mask = caps->dtype_mask;
    caps->has_atomics_f32 = 1;
    /* fingerprint: identifies hardware and software for the caches */
    snprintf(fp->vendor, sizeof fp->vendor, "example");
    snprintf(fp->device, sizeof fp->device, "hostsim (host memory, reference executor)");
    snprintf(fp->arch, sizeof fp->arch, "hostsim");
    snprintf(fp->driver, sizeof fp->driver, "hostsim-1.0");
    snprintf(fp->device_version, sizeof fp->device_version, "1");
    *dev = (void *)1; /* no per-device state */
    return TS_OK;
}

static void hs_device_close(void *dev) { (void)dev; }

static ts_status hs_alloc(void *dev, size_t bytes, void **buf) {
    (void)dev;
    *buf = calloc(1, bytes ? bytes : 1);
    return *buf ? TS_OK : TS_ERR_OUT_OF_MEMORY;
}

static void hs_free(void *dev, void *buf) {
    (void)dev;
    free(buf);
}

static ts_status hs_write(void *dev, void *buf, size_t offset, const void *src, size_t bytes) {
    (void)dev;
    memcpy((char *)buf + offset, src, bytes);
    return TS_OK;
}

static ts_status hs_read(void *dev, void *buf, size_t offset, void *dst, size_t bytes) {
    (void)dev;
    memcpy(dst, (char *)buf + offset, bytes);
    return TS_OK;
}

static ts_status hs_compile(void *dev, const ts_compile_request *req, void **module) {
    (void)dev;
    (void)req; /* req->source is NULL: dialect NONE */
    *module = (void *)1;
    return TS_OK;
}

static void hs_module_free(void *dev, void *module) {
    (void)dev;
    (void)module;
}

static ts_status hs_launch(void *dev, void *module, const ts_launch_request *req, double *ms) {
    (void)dev;
    (void)module;
    double t0 = now_ms();
    ts_status s = ts_backend_run_reference(req); /* blocking, like every launch */
    if (ms) *ms = now_ms() - t0;
    return s;
}

static ts_status hs_synchronize(void *dev) {
    (void)dev;
    return TS_OK;
}

static const ts_backend hostsim_backend = {
    .version = TS_BACKEND_VERSION,
    .name = "hostsim",
    .dialect = TS_DIALECT_NONE,
    .init = hs_init,
    .shutdown = NULL,
    .device_count = hs_device_count,
    .device_open = hs_device_open,
    .device_close = hs_device_close,
    .buffer_alloc = hs_alloc,
    .buffer_free = hs_free,
    .buffer_write = hs_write,
    .buffer_read = hs_read,
    .compile = hs_compile,
    .module_free = hs_module_free,
    .launch = hs_launch,
    .synchronize = hs_synchronize,
};

/* The one symbol the registry looks for. The table lives for the process. */
__attribute__((visibility("default"))) const ts_backend *ts_backend_entry(void) { return &hostsim_backend; }
