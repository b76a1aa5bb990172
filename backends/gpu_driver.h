/* gpu_driver.h: one driver layer for the CUDA and HIP backends. The CUDA
 * driver API (libcuda.so.1) and the HIP runtime (libamdhip64) have the same
 * module / launch / event model; what differs is a few calls and every name.
 * So each backend file supplies a const ts__gpu_driver (library names, the
 * symbols to dlsym, attribute numbers, call names for messages, and a few
 * hooks for the calls whose shapes differ), and this layer implements the
 * ts_backend entries once: init (dlopen, dlsym, driver init, runtime
 * compiler check), device open/close (caps from attributes), buffers,
 * compile with the on-disk binary cache, launch timed with events.
 *
 * The driver libraries are dlopen'ed, never linked: no CUDA or HIP header
 * is needed, the handle types below are our own opaque ones. Every call
 * returns 0 on success (CUresult, hipError_t). Internal, not installed. */
#ifndef TS_GPU_DRIVER_H
#define TS_GPU_DRIVER_H

#include "backend_internal.h"
#include "gpu_common.h"

#include <stddef.h>

typedef int ts__gpu_result;
typedef struct ts__gpu_ctx_st *ts__gpu_ctx;
typedef struct ts__gpu_module_st *ts__gpu_module;
typedef struct ts__gpu_function_st *ts__gpu_function;
typedef struct ts__gpu_event_st *ts__gpu_event;
typedef struct ts__gpu_stream_st *ts__gpu_stream;

/* The driver calls, filled by dlsym from the API's symbol list. The first
 * group has the same shape in both APIs and is called by this layer; the
 * others are called only by that API's hooks. A replaceable table: a test can
 * overwrite members after init to inject faults. */
typedef struct ts__gpu_calls {
    void *lib;
    /* both: cuX / hipX */
    ts__gpu_result (*Init)(unsigned);
    ts__gpu_result (*Version)(int *);     /* cuDriverGetVersion / hipRuntimeGetVersion */
    ts__gpu_result (*DeviceCount)(int *); /* cuDeviceGetCount / hipGetDeviceCount */
    ts__gpu_result (*DeviceGetName)(char *, int, int);
    ts__gpu_result (*DeviceGetAttribute)(int *, int, int);
    ts__gpu_result (*DeviceTotalMem)(size_t *, int);
    ts__gpu_result (*Synchronize)(void); /* cuCtxSynchronize / hipDeviceSynchronize */
    ts__gpu_result (*ModuleLoadData)(ts__gpu_module *, const void *);
    ts__gpu_result (*ModuleUnload)(ts__gpu_module);
    ts__gpu_result (*ModuleGetFunction)(ts__gpu_function *, ts__gpu_module, const char *);
    ts__gpu_result (*LaunchKernel)(ts__gpu_function, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, ts__gpu_stream, void **,
                                   void **); /* cuLaunchKernel / hipModuleLaunchKernel */
    ts__gpu_result (*EventRecord)(ts__gpu_event, ts__gpu_stream);
    ts__gpu_result (*EventSynchronize)(ts__gpu_event);
    ts__gpu_result (*EventElapsedTime)(float *, ts__gpu_event, ts__gpu_event);
    ts__gpu_result (*EventDestroy)(ts__gpu_event);
    /* both, optional (pinned staging; absent: uploads use the synchronous
     * copy): cuMemHostAlloc / hipHostMalloc, cuMemFreeHost / hipHostFree,
     * cuStreamCreate / hipStreamCreateWithFlags, cuStreamDestroy /
     * hipStreamDestroy */
    ts__gpu_result (*HostAlloc)(void **, size_t, unsigned);
    ts__gpu_result (*HostFree)(void *);
    ts__gpu_result (*StreamCreate)(ts__gpu_stream *, unsigned);
    ts__gpu_result (*StreamDestroy)(ts__gpu_stream);
    /* CUDA driver API only */
    ts__gpu_result (*DeviceGet)(int *, int);
    ts__gpu_result (*DevicePrimaryCtxRetain)(ts__gpu_ctx *, int);
    ts__gpu_result (*DevicePrimaryCtxRelease)(int);
    ts__gpu_result (*CtxSetCurrent)(ts__gpu_ctx);
    ts__gpu_result (*MemAlloc)(unsigned long long *, size_t);
    ts__gpu_result (*MemFree)(unsigned long long);
    ts__gpu_result (*MemcpyHtoD)(unsigned long long, const void *, size_t);
    ts__gpu_result (*MemcpyDtoH)(void *, unsigned long long, size_t);
    ts__gpu_result (*EventCreateWithFlags)(ts__gpu_event *, unsigned); /* cuEventCreate */
    ts__gpu_result (*MemcpyHtoDAsync)(unsigned long long, const void *, size_t, ts__gpu_stream); /* optional */
    ts__gpu_result (*GetErrorName)(ts__gpu_result, const char **);
    ts__gpu_result (*GetErrorStringOut)(ts__gpu_result, const char **); /* cuGetErrorString */
    /* HIP runtime only */
    ts__gpu_result (*SetDevice)(int);
    ts__gpu_result (*GetDeviceProperties)(void *, int);
    ts__gpu_result (*Malloc)(void **, size_t);
    ts__gpu_result (*Free)(void *);
    ts__gpu_result (*Memcpy)(void *, const void *, size_t, int);
    ts__gpu_result (*EventCreate)(ts__gpu_event *);
    ts__gpu_result (*HipMemcpyHtoDAsync)(void *, void *, size_t, ts__gpu_stream); /* hipMemcpyHtoDAsync, optional */
    const char *(*GetErrorString)(ts__gpu_result); /* hipGetErrorString */
} ts__gpu_calls;

/* One symbol to load into a table at `offset`: `name`, else `fallback` (when
 * set); `required`: init fails naming the last one tried when neither loads. */
typedef struct ts__gpu_sym {
    size_t offset;
    const char *name, *fallback;
    int required;
} ts__gpu_sym;

#define TS__GPU_SYM(table, field, name, fallback, required) {offsetof(table, field), (name), (fallback), (required)}

/* Loads syms from lib into table; returns NULL, or the name of the last
 * required symbol that is missing. */
const char *ts__gpu_load_syms(void *lib, void *table, const ts__gpu_sym *syms, int n);

typedef struct ts__gpu_driver ts__gpu_driver;

typedef struct ts__gpu_state {
    const ts__gpu_driver *drv;
    ts__gpu_calls c;
    int ndevices;
    int version; /* cuDriverGetVersion / hipRuntimeGetVersion */
} ts__gpu_state;

typedef struct ts__gpu_dev {
    const ts__gpu_driver *drv;
    ts__gpu_calls *c;
    ts__gpu_state *st;
    int index;
    int dev; /* CUdevice; the HIP device index */
    ts__gpu_ctx ctx; /* CUDA's primary context; unused by HIP */
    int cc_major, cc_minor;
    int max_grid[3];
    char arch[64];
    char fingerprint[512];
    ts__gpu_stream stream; /* for staged uploads; made by the first staging_alloc */
    int has_stream;
} ts__gpu_dev;

struct ts__gpu_driver {
    const char *name;  /* "cuda": the prefix of error messages */
    const char *label; /* "CUDA": "CUDA device 0" when the name is unknown */
    const char *vendor;
    const char *const *lib_names;
    int nlib_names;
    const char *no_lib;                   /* "no NVIDIA driver" (": <why>" follows) */
    const char *no_sym, *no_sym_suffix;   /* "<no_sym><symbol><no_sym_suffix>" */
    const ts__gpu_sym *syms;
    int nsyms;
    const char *init_prefix, *init_call, *init_hint; /* "<prefix><call> failed: <error><hint>" */
    const char *rtc_missing;              /* "<rtc_missing> found but no runtime compiler: <why>" */
    const char *(*rtc_available)(char *why, size_t whylen);
    /* attribute numbers */
    int attr_grid[3], attr_max_threads, attr_shared, attr_units;
    int default_group_size;
    int default_grid[3]; /* when the grid attributes read 0 */
    /* call names in messages */
    const char *staging_call, *write_async_call; /* "cuMemHostAlloc", "cuMemcpyHtoDAsync" */
    const char *open_call, *alloc_call, *write_call, *read_call, *load_call, *get_function_call, *launch_call, *event_create_call, *sync_call;
    /* binary cache: <prefix>-<key>.<ext>, magic, and the compiler option hashed into the key */
    const char *bin_prefix, *bin_ext, *bin_magic, *bin_key_option;
    /* hooks, for the calls whose shapes differ */
    void (*describe_error)(const ts__gpu_calls *c, ts__gpu_result r, char *buf, size_t n); /* "<name> (<r>)..." */
    ts__gpu_result (*open)(ts__gpu_dev *d);         /* d->index set; sets d->dev (and the context), makes it current */
    void (*release)(ts__gpu_dev *d);                /* after the final synchronize; may be NULL */
    ts__gpu_result (*make_current)(const ts__gpu_dev *d);
    /* d->arch (and cc), the native dtypes, fp->driver and fp->device_version */
    void (*describe)(ts__gpu_dev *d, ts_device_caps *caps, ts_fingerprint *fp);
    ts__gpu_result (*mem_alloc)(const ts__gpu_calls *c, size_t bytes, void **buf);
    ts__gpu_result (*mem_free)(const ts__gpu_calls *c, void *buf);
    ts__gpu_result (*copy_to_device)(const ts__gpu_calls *c, void *buf, size_t off, const void *src, size_t n);
    ts__gpu_result (*copy_to_host)(const ts__gpu_calls *c, void *dst, void *buf, size_t off, size_t n);
    ts__gpu_result (*event_create)(const ts__gpu_calls *c, ts__gpu_event *e);
    /* Optional: queues a copy on stream s; returns -1 without calling when
     * the driver lacks the symbol. */
    ts__gpu_result (*copy_to_device_async)(const ts__gpu_calls *c, void *buf, size_t off, const void *src, size_t n, ts__gpu_stream s);
    /* device binary from source for d->arch (malloc'ed; TS_ERR_COMPILE with the log) */
    ts_status (*build)(const ts__gpu_dev *d, const char *source, char **image, size_t *n);
};

/* "<name>: <what> failed: <error description>" under status st. */
ts_status ts__gpu_fail(const ts__gpu_calls *c, const ts__gpu_driver *drv, ts_status st, ts__gpu_result r, const char *what);
/* A device attribute, 0 when the query fails. */
int ts__gpu_attr(const ts__gpu_dev *d, int which);

/* The ts_backend entries; init takes the API's driver. */
ts_status ts__gpu_init(const ts__gpu_driver *drv, void **state);
void ts__gpu_shutdown(void *state);
int ts__gpu_device_count(void *state);
ts_status ts__gpu_device_open(void *state, int index, ts_device_caps *caps, ts_fingerprint *fp, void **out);
void ts__gpu_device_close(void *dev);
ts_status ts__gpu_buffer_alloc(void *dev, size_t bytes, void **buf);
void ts__gpu_buffer_free(void *dev, void *buf);
ts_status ts__gpu_buffer_write(void *dev, void *buf, size_t off, const void *src, size_t n);
ts_status ts__gpu_buffer_read(void *dev, void *buf, size_t off, void *dst, size_t n);
ts_status ts__gpu_compile(void *dev, const ts_compile_request *req, void **module);
void ts__gpu_module_free(void *dev, void *module);
ts_status ts__gpu_launch(void *dev, void *module, const ts_launch_request *req, double *ms);
ts_status ts__gpu_synchronize(void *dev);
/* Pinned staging (backend interface v3); TS_ERR_UNSUPPORTED from
 * staging_alloc when the driver lacks a symbol it needs. */
ts_status ts__gpu_staging_alloc(void *dev, size_t bytes, void **host, void **handle);
void ts__gpu_staging_free(void *dev, void *handle);
ts_status ts__gpu_buffer_write_async(void *dev, void *buf, size_t off, void *handle, const void *host, size_t n);
ts_status ts__gpu_staging_wait(void *dev, void *handle);

/* A ts_backend for a driver: `init` is the API file's one-line wrapper. */
#define TS__GPU_BACKEND(backend_name, dialect_value, init_fn)                                                                               \
    {                                                                                                                                       \
        .version = TS_BACKEND_VERSION, .name = (backend_name), .dialect = (dialect_value), .init = (init_fn), .shutdown = ts__gpu_shutdown, \
        .device_count = ts__gpu_device_count, .device_open = ts__gpu_device_open, .device_close = ts__gpu_device_close,                   \
        .buffer_alloc = ts__gpu_buffer_alloc, .buffer_free = ts__gpu_buffer_free, .buffer_write = ts__gpu_buffer_write,                   \
        .buffer_read = ts__gpu_buffer_read, .compile = ts__gpu_compile, .module_free = ts__gpu_module_free, .launch = ts__gpu_launch,      \
        .synchronize = ts__gpu_synchronize, .staging_alloc = ts__gpu_staging_alloc, .staging_free = ts__gpu_staging_free,                   \
        .buffer_write_async = ts__gpu_buffer_write_async, .staging_wait = ts__gpu_staging_wait,                                             \
    }

#endif
