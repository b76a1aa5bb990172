/* hip_backend.c: the HIP backend on the HIP runtime (libamdhip64) and hiprtc,
 * both loaded with dlopen at run time (never linked). On ROCm 5 hiprtc lives
 * in libamdhip64 itself; ROCm 6 ships it as libhiprtc.
 *
 * Sections: the runtime and hiprtc tables (prototypes declared here, no HIP
 * header needed); hiprtc compilation for a named gfx arch (also used
 * without a device by tests and tools); init and device open; buffers;
 * compile with the on-disk code-object cache; launch timed with events.
 *
 * Code-object cache: $TESSERA_CACHE_DIR/bin/hip-<key>.co, key = hash of the
 * source, device fingerprint (name, gfx arch, runtime version) and Tessera
 * version, in the OpenCL cache's file format (gpu_common.c).
 *
 * Verified here only without a device: hiprtc compiles every example kernel
 * for gfx90a and gfx1030 (tests/test_cuda_hip_codegen.c); hipInit fails
 * cleanly and the backend reports "not available". The device paths (caps,
 * launch) follow the HIP module API but have not run on an AMD GPU. */
#include "backend_internal.h"
#include "dialect.h"
#include "gpu_common.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- runtime and hiprtc tables */

typedef int hipError_t;
typedef struct ihipModule_t *hipModule_t;
typedef struct ihipModuleSymbol_t *hipFunction_t;
typedef struct ihipEvent_t *hipEvent_t;
typedef struct ihipStream_t *hipStream_t;

/* hipDeviceAttribute_t values (ROCm 5 numbering, kept in ROCm 6). */
enum {
    TS__HIP_ATTR_CC_MAJOR = 23,
    TS__HIP_ATTR_MAX_GRID_DIM_X = 29,
    TS__HIP_ATTR_MAX_GRID_DIM_Y = 30,
    TS__HIP_ATTR_MAX_GRID_DIM_Z = 31,
    TS__HIP_ATTR_MAX_THREADS_PER_BLOCK = 56,
    TS__HIP_ATTR_CC_MINOR = 61,
    TS__HIP_ATTR_MULTIPROCESSOR_COUNT = 63,
    TS__HIP_ATTR_MAX_SHARED_MEMORY_PER_BLOCK = 74,
    TS__HIP_ATTR_WARP_SIZE = 87,
};
#define TS__HIP_MEMCPY_H2D 1
#define TS__HIP_MEMCPY_D2H 2

typedef struct hip_api {
    void *lib;
    hipError_t (*Init)(unsigned);
    hipError_t (*GetDeviceCount)(int *);
    hipError_t (*SetDevice)(int);
    hipError_t (*DeviceGetName)(char *, int, int);
    hipError_t (*DeviceGetAttribute)(int *, int, int);
    hipError_t (*DeviceTotalMem)(size_t *, int);
    hipError_t (*GetDeviceProperties)(void *, int);
    hipError_t (*RuntimeGetVersion)(int *);
    hipError_t (*DeviceSynchronize)(void);
    hipError_t (*Malloc)(void **, size_t);
    hipError_t (*Free)(void *);
    hipError_t (*Memcpy)(void *, const void *, size_t, int);
    hipError_t (*ModuleLoadData)(hipModule_t *, const void *);
    hipError_t (*ModuleUnload)(hipModule_t);
    hipError_t (*ModuleGetFunction)(hipFunction_t *, hipModule_t, const char *);
    hipError_t (*ModuleLaunchKernel)(hipFunction_t, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, hipStream_t, void **,
                                     void **);
    hipError_t (*EventCreate)(hipEvent_t *);
    hipError_t (*EventRecord)(hipEvent_t, hipStream_t);
    hipError_t (*EventSynchronize)(hipEvent_t);
    hipError_t (*EventElapsedTime)(float *, hipEvent_t, hipEvent_t);
    hipError_t (*EventDestroy)(hipEvent_t);
    const char *(*GetErrorString)(hipError_t);
} hip_api;

typedef int hiprtcResult;
typedef struct _hiprtcProgram *hiprtcProgram;

typedef struct hiprtc_api {
    void *lib;
    const char *(*GetErrorString)(hiprtcResult);
    hiprtcResult (*CreateProgram)(hiprtcProgram *, const char *, const char *, int, const char **, const char **);
    hiprtcResult (*DestroyProgram)(hiprtcProgram *);
    hiprtcResult (*CompileProgram)(hiprtcProgram, int, const char **);
    hiprtcResult (*GetProgramLogSize)(hiprtcProgram, size_t *);
    hiprtcResult (*GetProgramLog)(hiprtcProgram, char *);
    hiprtcResult (*GetCodeSize)(hiprtcProgram, size_t *);
    hiprtcResult (*GetCode)(hiprtcProgram, char *);
} hiprtc_api;

static hiprtc_api hiprtc;
static char hiprtc_why[1024];
static pthread_once_t hiprtc_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t hiprtc_lock = PTHREAD_MUTEX_INITIALIZER;

#define TS__SYM(api, field, name, required)                                                                                             \
    do {                                                                                                                                \
        *(void **)&(api).field = dlsym((api).lib, (name));                                                                             \
        if (!(api).field && (required)) missing = (name);                                                                              \
    } while (0)

static const char *const hip_lib_names[] = {"libamdhip64.so", "libamdhip64.so.6", "libamdhip64.so.5", "/opt/rocm/lib/libamdhip64.so"};

static void hiprtc_load(void) {
    const char *names[] = {"libhiprtc.so", "libhiprtc.so.6", "/opt/rocm/lib/libhiprtc.so", "libamdhip64.so", "libamdhip64.so.6", "libamdhip64.so.5",
                           "/opt/rocm/lib/libamdhip64.so"};
    char last[700] = "no candidate library loaded";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *h = ts__dlopen_first(&names[i], 1, last, sizeof last);
        if (!h) continue;
        if (!dlsym(h, "hiprtcCreateProgram")) {
            snprintf(last, sizeof last, "%s has no hiprtcCreateProgram", names[i]);
            dlclose(h);
            continue;
        }
        hiprtc.lib = h;
        break;
    }
    if (!hiprtc.lib) {
        snprintf(hiprtc_why, sizeof hiprtc_why, "hiprtc not found (tried libhiprtc and libamdhip64): %s", last);
        return;
    }
    const char *missing = NULL;
    TS__SYM(hiprtc, GetErrorString, "hiprtcGetErrorString", 1);
    TS__SYM(hiprtc, CreateProgram, "hiprtcCreateProgram", 1);
    TS__SYM(hiprtc, DestroyProgram, "hiprtcDestroyProgram", 1);
    TS__SYM(hiprtc, CompileProgram, "hiprtcCompileProgram", 1);
    TS__SYM(hiprtc, GetProgramLogSize, "hiprtcGetProgramLogSize", 1);
    TS__SYM(hiprtc, GetProgramLog, "hiprtcGetProgramLog", 1);
    TS__SYM(hiprtc, GetCodeSize, "hiprtcGetCodeSize", 1);
    TS__SYM(hiprtc, GetCode, "hiprtcGetCode", 1);
    if (missing) {
        snprintf(hiprtc_why, sizeof hiprtc_why, "hiprtc has no %s", missing);
        dlclose(hiprtc.lib);
        hiprtc.lib = NULL;
    }
}

const char *ts__hiprtc_available(char *why, size_t whylen) {
    pthread_once(&hiprtc_once, hiprtc_load);
    if (!hiprtc.lib) {
        if (why) snprintf(why, whylen, "%s", hiprtc_why);
        return NULL;
    }
    return "hiprtc";
}

ts_status ts__hip_compile_for_arch(const char *source, const char *arch, char **code, size_t *code_size, char **log) {
    *code = NULL;
    *code_size = 0;
    if (log) *log = NULL;
    if (!source || !arch || strncmp(arch, "gfx", 3) != 0) return ts__error(TS_ERR_INVALID_ARGUMENT, "hiprtc: no source, or arch is not gfxNNN");
    pthread_once(&hiprtc_once, hiprtc_load);
    if (!hiprtc.lib) return ts__error(TS_ERR_UNAVAILABLE, "%s", hiprtc_why);
    char archopt[96];
    snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
    const char *opts[] = {archopt, "-O3"};
    /* hiprtc (ROCm 5.2) is not reliably thread-safe: one compilation at a time */
    pthread_mutex_lock(&hiprtc_lock);
    hiprtcProgram prog = NULL;
    hiprtcResult r = hiprtc.CreateProgram(&prog, source, "tessera.hip", 0, NULL, NULL);
    if (r) {
        pthread_mutex_unlock(&hiprtc_lock);
        return ts__error(TS_ERR_COMPILE, "hiprtcCreateProgram failed: %s", hiprtc.GetErrorString(r));
    }
    r = hiprtc.CompileProgram(prog, (int)(sizeof opts / sizeof opts[0]), opts);
    size_t ln = 0;
    char *lg = NULL;
    if (hiprtc.GetProgramLogSize(prog, &ln) == 0 && ln > 0 && (lg = calloc(1, ln + 1))) hiprtc.GetProgramLog(prog, lg);
    ts_status s = TS_OK;
    if (r) {
        s = ts__error(TS_ERR_COMPILE, "hiprtc (%s): %s\n--- log ---\n%.16000s\n--- source ---\n%.40000s", arch, hiprtc.GetErrorString(r), lg ? lg : "",
                      source);
    } else {
        size_t n = 0;
        char *buf = NULL;
        r = hiprtc.GetCodeSize(prog, &n);
        if (!r && n) buf = malloc(n + 1);
        if (buf) r = hiprtc.GetCode(prog, buf);
        if (!buf || r) {
            free(buf);
            s = ts__error(TS_ERR_COMPILE, "hiprtc (%s): no code object produced", arch);
        } else {
            buf[n] = 0;
            *code = buf;
            *code_size = n;
        }
    }
    hiprtc.DestroyProgram(&prog);
    pthread_mutex_unlock(&hiprtc_lock);
    if (log) *log = lg;
    else free(lg);
    return s;
}

/* ---------------------------------------------------------------- init */

typedef struct hip_state {
    hip_api api;
    int ndevices;
    int runtime_version;
} hip_state;

typedef struct hip_dev {
    hip_api *api;
    int index;
    int max_grid[3];
    char arch[64];
    char fingerprint[512];
} hip_dev;

typedef struct hip_module {
    hipModule_t mod;
    hipFunction_t fn;
    ts__cg_arg args[128];
    int nargs;
    int threads;
} hip_module;

static ts_status hip_fail(const hip_api *api, ts_status st, hipError_t r, const char *what) {
    return ts__error(st, "hip: %s failed: %s (%d)", what, api->GetErrorString ? api->GetErrorString(r) : "?", r);
}

static ts_status hip_init(void **state) {
    *state = NULL;
    hip_state *st = ts__calloc(1, sizeof *st);
    if (!st) return TS_ERR_OUT_OF_MEMORY;
    hip_api *a = &st->api;
    char why[700];
    a->lib = ts__dlopen_first(hip_lib_names, (int)(sizeof hip_lib_names / sizeof hip_lib_names[0]), why, sizeof why);
    if (!a->lib) {
        free(st);
        return ts__error(TS_ERR_UNAVAILABLE, "no HIP runtime: %s", why);
    }
    const char *missing = NULL;
    TS__SYM(*a, Init, "hipInit", 1);
    TS__SYM(*a, GetDeviceCount, "hipGetDeviceCount", 1);
    TS__SYM(*a, SetDevice, "hipSetDevice", 1);
    TS__SYM(*a, DeviceGetName, "hipDeviceGetName", 1);
    TS__SYM(*a, DeviceGetAttribute, "hipDeviceGetAttribute", 1);
    TS__SYM(*a, DeviceTotalMem, "hipDeviceTotalMem", 1);
    TS__SYM(*a, GetDeviceProperties, "hipGetDevicePropertiesR0600", 0);
    if (!a->GetDeviceProperties) TS__SYM(*a, GetDeviceProperties, "hipGetDeviceProperties", 1);
    TS__SYM(*a, RuntimeGetVersion, "hipRuntimeGetVersion", 1);
    TS__SYM(*a, DeviceSynchronize, "hipDeviceSynchronize", 1);
    TS__SYM(*a, Malloc, "hipMalloc", 1);
    TS__SYM(*a, Free, "hipFree", 1);
    TS__SYM(*a, Memcpy, "hipMemcpy", 1);
    TS__SYM(*a, ModuleLoadData, "hipModuleLoadData", 1);
    TS__SYM(*a, ModuleUnload, "hipModuleUnload", 1);
    TS__SYM(*a, ModuleGetFunction, "hipModuleGetFunction", 1);
    TS__SYM(*a, ModuleLaunchKernel, "hipModuleLaunchKernel", 1);
    TS__SYM(*a, EventCreate, "hipEventCreate", 1);
    TS__SYM(*a, EventRecord, "hipEventRecord", 1);
    TS__SYM(*a, EventSynchronize, "hipEventSynchronize", 1);
    TS__SYM(*a, EventElapsedTime, "hipEventElapsedTime", 1);
    TS__SYM(*a, EventDestroy, "hipEventDestroy", 1);
    TS__SYM(*a, GetErrorString, "hipGetErrorString", 0);
    if (missing) {
        dlclose(a->lib);
        free(st);
        return ts__error(TS_ERR_UNAVAILABLE, "the HIP runtime has no %s", missing);
    }
    hipError_t r = a->Init(0);
    if (r) {
        ts_status s = ts__error(TS_ERR_UNAVAILABLE, "hipInit failed: %s (%d): no usable AMD GPU (amdgpu/KFD driver, /dev/kfd)",
                                a->GetErrorString ? a->GetErrorString(r) : "?", r);
        dlclose(a->lib);
        free(st);
        return s;
    }
    char hwhy[1024];
    if (!ts__hiprtc_available(hwhy, sizeof hwhy)) {
        dlclose(a->lib);
        free(st);
        return ts__error(TS_ERR_UNAVAILABLE, "HIP runtime found but no runtime compiler: %s", hwhy);
    }
    a->RuntimeGetVersion(&st->runtime_version);
    if (a->GetDeviceCount(&st->ndevices)) st->ndevices = 0;
    *state = st;
    return TS_OK;
}

static void hip_shutdown(void *state) {
    hip_state *st = state;
    if (!st) return;
    dlclose(st->api.lib);
    free(st);
}

static int hip_device_count(void *state) { return state ? ((hip_state *)state)->ndevices : 0; }

/* ---------------------------------------------------------------- device */

static int attr(hip_dev *d, int which) {
    int v = 0;
    if (d->api->DeviceGetAttribute(&v, which, d->index)) v = 0;
    return v;
}

/* The gfx arch of a device: $TESSERA_HIP_ARCH, else the "gfxNNN" string in
 * its properties (gcnArchName; found by content, since the struct's layout
 * changed between ROCm 5 and 6), without feature suffixes. */
static void device_arch(hip_dev *d, char *out, size_t n) {
    const char *env = getenv("TESSERA_HIP_ARCH");
    if (env && strncmp(env, "gfx", 3) == 0) {
        snprintf(out, n, "%s", env);
        return;
    }
    snprintf(out, n, "gfx000");
    unsigned char *props = calloc(1, 16384);
    if (!props) return;
    if (d->api->GetDeviceProperties(props, d->index) == 0) {
        for (size_t i = 0; i + 4 < 16384; i++) {
            if (memcmp(props + i, "gfx", 3) != 0 || props[i + 3] < '0' || props[i + 3] > '9') continue;
            size_t k = 0;
            while (k + 1 < n && i + k < 16384 && (props[i + k] == 'g' || props[i + k] == 'f' || props[i + k] == 'x' || (props[i + k] >= '0' && props[i + k] <= '9') ||
                                                 (props[i + k] >= 'a' && props[i + k] <= 'f')))
                k++;
            memcpy(out, props + i, k);
            out[k] = 0;
            break;
        }
    }
    free(props);
}

static ts_status hip_device_open(void *state, int index, ts_device_caps *caps, ts_fingerprint *fp, void **out) {
    hip_state *st = state;
    hip_api *a = &st->api;
    hip_dev *d = ts__calloc(1, sizeof *d);
    if (!d) return TS_ERR_OUT_OF_MEMORY;
    d->api = a;
    d->index = index;
    hipError_t r = a->SetDevice(index);
    if (r) {
        free(d);
        return hip_fail(a, TS_ERR_DEVICE, r, "hipSetDevice");
    }
    d->max_grid[0] = attr(d, TS__HIP_ATTR_MAX_GRID_DIM_X);
    d->max_grid[1] = attr(d, TS__HIP_ATTR_MAX_GRID_DIM_Y);
    d->max_grid[2] = attr(d, TS__HIP_ATTR_MAX_GRID_DIM_Z);
    device_arch(d, d->arch, sizeof d->arch);
    size_t total = 0;
    a->DeviceTotalMem(&total, index);
    memset(caps, 0, sizeof *caps);
    int mt = attr(d, TS__HIP_ATTR_MAX_THREADS_PER_BLOCK);
    caps->max_group_size = mt > 0 ? (mt > 1024 ? 1024 : mt) : 256;
    caps->shared_mem_bytes = attr(d, TS__HIP_ATTR_MAX_SHARED_MEMORY_PER_BLOCK);
    caps->subgroup_size = 0; /* the generated code uses no wavefront operations yet */
    caps->compute_units = attr(d, TS__HIP_ATTR_MULTIPROCESSOR_COUNT);
    caps->global_mem_bytes = (int64_t)total;
    caps->max_buffer_bytes = (int64_t)total;
    caps->dtype_mask = (1u << TS_F32) | (1u << TS_F16) | (1u << TS_BF16) | (1u << TS_F64) | (1u << TS_I32) | (1u << TS_I64) | (1u << TS_U8) |
                       (1u << TS_BOOL);
    caps->native_dtype_mask = caps->dtype_mask & ~(1u << TS_BF16);
    caps->has_atomics_f32 = 1;
    memset(fp, 0, sizeof *fp);
    snprintf(fp->vendor, sizeof fp->vendor, "AMD");
    if (a->DeviceGetName(fp->device, (int)sizeof fp->device - 1, index)) snprintf(fp->device, sizeof fp->device, "HIP device %d", index);
    snprintf(fp->arch, sizeof fp->arch, "%s", d->arch);
    snprintf(fp->driver, sizeof fp->driver, "hip%d", st->runtime_version);
    snprintf(fp->device_version, sizeof fp->device_version, "wave%d", attr(d, TS__HIP_ATTR_WARP_SIZE));
    snprintf(d->fingerprint, sizeof d->fingerprint, "%s|%s|%s|%s", fp->device, fp->arch, fp->driver, fp->device_version);
    *out = d;
    return TS_OK;
}

static void hip_device_close(void *dev) {
    hip_dev *d = dev;
    if (!d) return;
    d->api->SetDevice(d->index);
    d->api->DeviceSynchronize();
    free(d);
}

/* ---------------------------------------------------------------- buffers */

static ts_status hip_alloc(void *dev, size_t bytes, void **buf) {
    hip_dev *d = dev;
    d->api->SetDevice(d->index);
    hipError_t r = d->api->Malloc(buf, bytes);
    return r ? hip_fail(d->api, r == 2 ? TS_ERR_OUT_OF_MEMORY : TS_ERR_DEVICE, r, "hipMalloc") : TS_OK;
}

static void hip_free_buf(void *dev, void *buf) {
    hip_dev *d = dev;
    if (!buf) return;
    d->api->SetDevice(d->index);
    d->api->Free(buf);
}

static ts_status hip_write(void *dev, void *buf, size_t off, const void *src, size_t n) {
    hip_dev *d = dev;
    d->api->SetDevice(d->index);
    hipError_t r = d->api->Memcpy((char *)buf + off, src, n, TS__HIP_MEMCPY_H2D);
    return r ? hip_fail(d->api, TS_ERR_DEVICE, r, "hipMemcpy (to device)") : TS_OK;
}

static ts_status hip_read(void *dev, void *buf, size_t off, void *dst, size_t n) {
    hip_dev *d = dev;
    d->api->SetDevice(d->index);
    hipError_t r = d->api->Memcpy(dst, (char *)buf + off, n, TS__HIP_MEMCPY_D2H);
    return r ? hip_fail(d->api, TS_ERR_DEVICE, r, "hipMemcpy (to host)") : TS_OK;
}

/* ---------------------------------------------------------------- compile + code-object cache */

#define TS__HIP_BIN_MAGIC "TSHIPCO1"

static ts_status hip_compile(void *dev, const ts_compile_request *req, void **module) {
    hip_dev *d = dev;
    hip_api *a = d->api;
    const ts__plan *plan = req->plan;
    a->SetDevice(d->index);
    uint64_t key = ts__hash_str(TS__HASH_INIT, req->source);
    key = ts__hash_str(key, "-O3");
    key = ts__hash_str(key, d->fingerprint);
    key = ts__hash_str(key, TS_VERSION_STRING);
    char path[4300];
    ts__bincache_path("hip", "co", key, path, sizeof path);
    hip_module *m = ts__calloc(1, sizeof *m);
    if (!m) return TS_ERR_OUT_OF_MEMORY;
    char *image = NULL;
    size_t n = 0;
    hipError_t r = 1;
    if (ts__bincache_load(path, TS__HIP_BIN_MAGIC, key, &image, &n)) {
        r = a->ModuleLoadData(&m->mod, image);
        free(image);
        image = NULL;
    }
    if (r) {
        ts_status s = ts__hip_compile_for_arch(req->source, d->arch, &image, &n, NULL);
        if (s) {
            free(m);
            return s;
        }
        r = a->ModuleLoadData(&m->mod, image);
        if (r) {
            free(image);
            free(m);
            return hip_fail(a, TS_ERR_COMPILE, r, "hipModuleLoadData");
        }
        ts__bincache_save(path, TS__HIP_BIN_MAGIC, key, image, n);
        free(image);
    }
    r = a->ModuleGetFunction(&m->fn, m->mod, req->entry);
    if (r) {
        a->ModuleUnload(m->mod);
        free(m);
        return hip_fail(a, TS_ERR_COMPILE, r, "hipModuleGetFunction");
    }
    m->nargs = ts__cg_args(&req->kernel->ir, m->args, 128);
    m->threads = ts__cg_threads(&req->kernel->ir, plan);
    *module = m;
    return TS_OK;
}

static void hip_module_free(void *dev, void *module) {
    hip_dev *d = dev;
    hip_module *m = module;
    if (!m) return;
    d->api->SetDevice(d->index);
    d->api->ModuleUnload(m->mod);
    free(m);
}

/* ---------------------------------------------------------------- launch */

typedef union hip_argval {
    void *p;
    long long i64;
    int i32;
    float f32;
    double f64;
} hip_argval;

static ts_status hip_launch(void *dev, void *module, const ts_launch_request *req, double *ms) {
    hip_dev *d = dev;
    hip_api *a = d->api;
    hip_module *m = module;
    if (m->nargs > 128) return ts__error(TS_ERR_LIMIT, "hip: too many kernel arguments");
    for (int i = 0; i < 3; i++)
        if (req->grid[i] > (d->max_grid[i] > 0 ? d->max_grid[i] : 65535))
            return ts__error(TS_ERR_LIMIT, "hip: kernel '%s' needs %lld programs along grid dim %d; the device allows %d (use larger blocks)",
                             ts_kernel_name(req->kernel), (long long)req->grid[i], i, d->max_grid[i]);
    hip_argval vals[128];
    void *params[128];
    for (int i = 0; i < m->nargs; i++) {
        const ts__cg_arg *ar = &m->args[i];
        switch (ar->kind) {
        case TS__ARG_BUFFER: vals[i].p = req->args[ar->param].buffer; break;
        case TS__ARG_I64: vals[i].i64 = (long long)ts__cg_arg_i64(ar, req->args, req->sizes); break;
        case TS__ARG_F32: vals[i].f32 = (float)ts__cg_arg_f64(ar, req->args); break;
        case TS__ARG_F64: vals[i].f64 = ts__cg_arg_f64(ar, req->args); break;
        default: vals[i].i32 = (int)req->args[ar->param].i; break;
        }
        params[i] = &vals[i];
    }
    a->SetDevice(d->index);
    hipEvent_t e0 = NULL, e1 = NULL;
    if (a->EventCreate(&e0) || a->EventCreate(&e1)) {
        if (e0) a->EventDestroy(e0);
        return ts__error(TS_ERR_DEVICE, "hip: hipEventCreate failed");
    }
    a->EventRecord(e0, NULL);
    hipError_t r = a->ModuleLaunchKernel(m->fn, (unsigned)req->grid[0], (unsigned)req->grid[1], (unsigned)req->grid[2], (unsigned)m->threads, 1, 1, 0,
                                         NULL, params, NULL);
    ts_status s = TS_OK;
    if (r) s = hip_fail(a, TS_ERR_LAUNCH, r, "hipModuleLaunchKernel");
    else {
        a->EventRecord(e1, NULL);
        r = a->EventSynchronize(e1);
        if (r) s = hip_fail(a, TS_ERR_LAUNCH, r, "running the kernel");
        else if (ms) {
            float t = 0;
            a->EventElapsedTime(&t, e0, e1);
            *ms = t;
        }
    }
    a->EventDestroy(e0);
    a->EventDestroy(e1);
    return s;
}

static ts_status hip_sync(void *dev) {
    hip_dev *d = dev;
    d->api->SetDevice(d->index);
    hipError_t r = d->api->DeviceSynchronize();
    return r ? hip_fail(d->api, TS_ERR_DEVICE, r, "hipDeviceSynchronize") : TS_OK;
}

static const ts_backend hip_backend = {
    .version = TS_BACKEND_VERSION,
    .name = "hip",
    .dialect = TS_DIALECT_HIP,
    .init = hip_init,
    .shutdown = hip_shutdown,
    .device_count = hip_device_count,
    .device_open = hip_device_open,
    .device_close = hip_device_close,
    .buffer_alloc = hip_alloc,
    .buffer_free = hip_free_buf,
    .buffer_write = hip_write,
    .buffer_read = hip_read,
    .compile = hip_compile,
    .module_free = hip_module_free,
    .launch = hip_launch,
    .synchronize = hip_sync,
};

const ts_backend *ts__hip_backend(void) { return &hip_backend; }
