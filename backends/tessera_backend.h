/* tessera_backend.h: the interface a backend implements to add a device.
 *
 * One versioned table of functions (in the manner of SQLite's sqlite3_vfs):
 * `version` comes first, new members are only appended, and each member says
 * from which version it is valid. The core checks the version and NULL
 * before every call, so a backend built against an older header keeps
 * working. A backend registers by name (built in), or is a shared library
 * `libtessera-backend-NAME.so` on $TESSERA_BACKEND_PATH exporting
 * `const ts_backend *ts_backend_entry(void)`.
 *
 * No vendor SDK type appears here: devices, buffers and modules are opaque
 * pointers owned by the backend. See docs/backends.md.
 */
#ifndef TESSERA_BACKEND_H
#define TESSERA_BACKEND_H

#include "tessera.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TS_BACKEND_VERSION 4

/* Source dialects the shared code generator can emit. */
typedef enum ts_dialect {
    TS_DIALECT_NONE = 0, /* the backend runs the IR itself (ref, plugins that interpret) */
    TS_DIALECT_OPENCL = 1,
    TS_DIALECT_CUDA = 2,
    TS_DIALECT_HIP = 3,
    TS_DIALECT_GLSL = 4
} ts_dialect;

/* Hardware fingerprint fields, filled by device_open. */
typedef struct ts_fingerprint {
    char vendor[64];
    char device[128];
    char arch[64];        /* "sm_90", "gfx90a", "pocl-cpu-x86_64", "ref" */
    char driver[64];      /* driver / runtime version */
    char device_version[64];
} ts_fingerprint;

/* What the core hands a backend to compile: the kernel, its concrete
 * launch plan (block sizes), the config, and generated source when the
 * backend asked for a dialect. */
typedef struct ts_compile_request {
    const ts_kernel *kernel;
    const ts_config *config;
    const void *plan;       /* internal ts__plan; opaque to out-of-tree backends */
    const char *source;     /* NULL for TS_DIALECT_NONE */
    const char *entry;      /* kernel function name in the source */
    const char *options;    /* compiler options */
} ts_compile_request;

/* One launch argument as the backend sees it. */
typedef struct ts_backend_arg {
    int is_tensor;
    void *buffer;           /* backend buffer handle */
    ts_dtype dtype;
    int rank;
    int64_t shape[TS_MAX_RANK];
    int64_t strides[TS_MAX_RANK]; /* elements */
    int64_t offset;         /* elements from the buffer's start */
    double f;               /* scalar values */
    int64_t i;
} ts_backend_arg;

typedef struct ts_launch_request {
    const ts_kernel *kernel;
    const void *plan;       /* internal ts__plan */
    const ts_backend_arg *args;
    int nargs;
    int64_t grid[3];        /* programs per grid dim */
    int threads;            /* work-items per program */
    const int64_t *sizes;   /* bound size values, in the kernel's size order */
    int nsizes;
} ts_launch_request;

typedef struct ts_backend {
    int version;            /* TS_BACKEND_VERSION this table was built for */
    const char *name;       /* "ref", "opencl", ... */
    ts_dialect dialect;     /* what source the backend compiles */

    /* v1: set up the API; returns TS_ERR_UNAVAILABLE with a reason in
     * ts_last_error() when the driver or library is missing. */
    ts_status (*init)(void **state);
    void (*shutdown)(void *state);
    int (*device_count)(void *state);
    ts_status (*device_open)(void *state, int index, ts_device_caps *caps, ts_fingerprint *fp, void **dev);
    void (*device_close)(void *dev);

    ts_status (*buffer_alloc)(void *dev, size_t bytes, void **buf);
    void (*buffer_free)(void *dev, void *buf);
    ts_status (*buffer_write)(void *dev, void *buf, size_t offset, const void *src, size_t bytes);
    ts_status (*buffer_read)(void *dev, void *buf, size_t offset, void *dst, size_t bytes);

    ts_status (*compile)(void *dev, const ts_compile_request *req, void **module);
    void (*module_free)(void *dev, void *module);
    /* Launches and waits; writes device time in ms (events) when ms != NULL. */
    ts_status (*launch)(void *dev, void *module, const ts_launch_request *req, double *ms);
    ts_status (*synchronize)(void *dev);
    /* v1 end. Members added later are appended below with "valid since". */

    /* Valid since version 2, optional (NULL: absent). Where the device
     * shares host memory: a host pointer through which bytes [offset,
     * offset + bytes) of buf are written directly (their previous contents
     * are undefined once mapped), so uploads need no staging copy. The
     * backend may refuse (TS_ERR_UNSUPPORTED, e.g. a discrete device); the
     * core then falls back to buffer_write. buffer_unmap makes the bytes
     * visible to the device. Disjoint ranges may be mapped from several
     * threads at once. */
    ts_status (*buffer_map_write)(void *dev, void *buf, size_t offset, size_t bytes, void **host);
    ts_status (*buffer_unmap)(void *dev, void *buf, void *host);

    /* Valid since version 3, optional (NULL: absent). Pinned staging for
     * discrete devices (CUDA, HIP): uploads fill a few page-locked host
     * buffers in a ring and copy each to the device asynchronously while
     * the next is filled (formats/safetensors_upload.c).
     *
     * staging_alloc: a page-locked host buffer of `bytes` at *host, and
     * *handle to name it in the calls below (each handle also carries the
     * completion event of its last copy). TS_ERR_UNSUPPORTED when the
     * driver lacks what it needs: the core then uses buffer_write.
     * staging_free waits for the handle's copy, then frees it.
     * buffer_write_async: queues a copy of `bytes` from `host` (inside the
     * handle's buffer) to [offset, offset + bytes) of buf on a stream the
     * device owns, and records the handle's event after it; returns at
     * once. The host bytes must stay unchanged, and buf alive, until
     * staging_wait(handle) returns. staging_wait: blocks until the
     * handle's last copy is done; a failed copy reports here. A backend
     * with buffer_map_write does not need these (the core prefers the
     * mapping). Calls on one device are made one at a time. */
    ts_status (*staging_alloc)(void *dev, size_t bytes, void **host, void **handle);
    void (*staging_free)(void *dev, void *handle);
    ts_status (*buffer_write_async)(void *dev, void *buf, size_t offset, void *handle, const void *host, size_t bytes);
    ts_status (*staging_wait)(void *dev, void *handle);

    /* Valid since version 4, optional (NULL: absent). Where the device
     * works on host memory (ref; OpenCL devices with unified host memory):
     * a buffer whose storage is the `bytes` of host memory at `host`, used
     * in place with no copy (the Safetensors upload hands it a private
     * mapping of the file). On TS_OK the backend owns the memory and calls
     * release(arg) exactly once, when the device no longer uses it (at or
     * after buffer_free, possibly from another thread). On any error the
     * caller keeps it and release is not called; TS_ERR_UNSUPPORTED (the
     * address is not aligned as the device needs, or the device would
     * copy) makes the core allocate and copy instead. */
    ts_status (*buffer_wrap_host)(void *dev, void *host, size_t bytes, void (*release)(void *arg), void *arg, void **buf);
} ts_backend;

/* Entry point of a plugin library. */
typedef const ts_backend *(*ts_backend_entry_fn)(void);

/* Registers a backend table (built in or from a plugin). The table must
 * outlive the process. Fails with TS_ERR_VERSION when version is newer than
 * this library understands or 0. */
ts_status ts_backend_register(const ts_backend *b);

/* For interpreting backends: runs the kernel on host memory with the
 * reference executor. `args` point at host memory in `buffer`. */
ts_status ts_backend_run_reference(const ts_launch_request *req);

#ifdef __cplusplus
}
#endif
#endif
