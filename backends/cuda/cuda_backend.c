/* cuda_backend.c: the CUDA backend on the driver API and NVRTC, both loaded
 * with dlopen at run time (never linked), so the library builds and runs
 * without the CUDA toolkit and reports "not available: <reason>" on a
 * machine without the driver.
 *
 * Sections: the driver and NVRTC tables (the few prototypes we use,
 * declared here so no CUDA header is needed); NVRTC compilation for a named
 * arch (also used without a device by tests and `tessera compile`); init and
 * device open (primary context, caps from device attributes); buffers;
 * compile with the on-disk CUBIN cache; launch timed with events.
 *
 * CUBIN cache: $TESSERA_CACHE_DIR/bin/cuda-<key>.cubin, key = hash of the
 * source, NVRTC options and version, device fingerprint (name, sm_XY, driver)
 * and Tessera version; the OpenCL cache's file format (gpu_common.c). A
 * cached image the driver refuses is rebuilt from source and rewritten. */
#include "backend_internal.h"
#include "dialect.h"
#include "gpu_common.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- driver API table */

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUevent_st *CUevent;
typedef struct CUstream_st *CUstream;

enum {
    TS__CU_ATTR_MAX_THREADS_PER_BLOCK = 1,
    TS__CU_ATTR_MAX_GRID_DIM_X = 5,
    TS__CU_ATTR_MAX_GRID_DIM_Y = 6,
    TS__CU_ATTR_MAX_GRID_DIM_Z = 7,
    TS__CU_ATTR_MAX_SHARED_MEMORY_PER_BLOCK = 8, /* the static __shared__ limit (48 KiB) */
    TS__CU_ATTR_WARP_SIZE = 10,
    TS__CU_ATTR_MULTIPROCESSOR_COUNT = 16,
    TS__CU_ATTR_CC_MAJOR = 75,
    TS__CU_ATTR_CC_MINOR = 76,
};

typedef struct cu_api {
    void *lib;
    CUresult (*Init)(unsigned);
    CUresult (*DriverGetVersion)(int *);
    CUresult (*DeviceGetCount)(int *);
    CUresult (*DeviceGet)(CUdevice *, int);
    CUresult (*DeviceGetName)(char *, int, CUdevice);
    CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
    CUresult (*DeviceTotalMem)(size_t *, CUdevice);
    CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
    CUresult (*DevicePrimaryCtxRelease)(CUdevice);
    CUresult (*CtxSetCurrent)(CUcontext);
    CUresult (*CtxSynchronize)(void);
    CUresult (*MemAlloc)(CUdeviceptr *, size_t);
    CUresult (*MemFree)(CUdeviceptr);
    CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
    CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
    CUresult (*ModuleLoadData)(CUmodule *, const void *);
    CUresult (*ModuleUnload)(CUmodule);
    CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
    CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void **, void **);
    CUresult (*EventCreate)(CUevent *, unsigned);
    CUresult (*EventRecord)(CUevent, CUstream);
    CUresult (*EventSynchronize)(CUevent);
    CUresult (*EventElapsedTime)(float *, CUevent, CUevent);
    CUresult (*EventDestroy)(CUevent);
    CUresult (*GetErrorName)(CUresult, const char **);
    CUresult (*GetErrorString)(CUresult, const char **);
} cu_api;

/* ---------------------------------------------------------------- NVRTC table */

typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;

typedef struct nvrtc_api {
    void *lib;
    int major, minor;
    const char *(*GetErrorString)(nvrtcResult);
    nvrtcResult (*Version)(int *, int *);
    nvrtcResult (*CreateProgram)(nvrtcProgram *, const char *, const char *, int, const char *const *, const char *const *);
    nvrtcResult (*DestroyProgram)(nvrtcProgram *);
    nvrtcResult (*CompileProgram)(nvrtcProgram, int, const char *const *);
    nvrtcResult (*GetProgramLogSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetProgramLog)(nvrtcProgram, char *);
    nvrtcResult (*GetPTXSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetPTX)(nvrtcProgram, char *);
    nvrtcResult (*GetCUBINSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetCUBIN)(nvrtcProgram, char *);
    nvrtcResult (*GetNumSupportedArchs)(int *);
    nvrtcResult (*GetSupportedArchs)(int *);
} nvrtc_api;

static nvrtc_api nvrtc;
static char nvrtc_why[1024];
static char nvrtc_ver[32];
static pthread_once_t nvrtc_once = PTHREAD_ONCE_INIT;

#define TS__SYM(api, field, name, required)                                                                                             \
    do {                                                                                                                                \
        *(void **)&(api).field = dlsym((api).lib, (name));                                                                             \
        if (!(api).field && (required)) missing = (name);                                                                              \
    } while (0)

static void nvrtc_load(void) {
    /* $CUDA_HOME / $CUDA_PATH first, then the loader path, then the usual toolkit places */
    char home1[4200] = "", home2[4200] = "";
    const char *h = getenv("CUDA_HOME");
    if (h && *h) snprintf(home1, sizeof home1, "%s/lib64/libnvrtc.so", h);
    h = getenv("CUDA_PATH");
    if (h && *h) snprintf(home2, sizeof home2, "%s/lib64/libnvrtc.so", h);
    const char *names[] = {home1[0] ? home1 : NULL, home2[0] ? home2 : NULL, "libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2",
                           "/usr/local/cuda/lib64/libnvrtc.so", "/usr/local/cuda/lib64/libnvrtc.so.13", "/usr/local/cuda/lib64/libnvrtc.so.12"};
    char why[900];
    nvrtc.lib = ts__dlopen_first(names, (int)(sizeof names / sizeof names[0]), why, sizeof why);
    if (!nvrtc.lib) {
        snprintf(nvrtc_why, sizeof nvrtc_why, "NVRTC not found: %s", why);
        return;
    }
    const char *missing = NULL;
    TS__SYM(nvrtc, GetErrorString, "nvrtcGetErrorString", 1);
    TS__SYM(nvrtc, Version, "nvrtcVersion", 1);
    TS__SYM(nvrtc, CreateProgram, "nvrtcCreateProgram", 1);
    TS__SYM(nvrtc, DestroyProgram, "nvrtcDestroyProgram", 1);
    TS__SYM(nvrtc, CompileProgram, "nvrtcCompileProgram", 1);
    TS__SYM(nvrtc, GetProgramLogSize, "nvrtcGetProgramLogSize", 1);
    TS__SYM(nvrtc, GetProgramLog, "nvrtcGetProgramLog", 1);
    TS__SYM(nvrtc, GetPTXSize, "nvrtcGetPTXSize", 1);
    TS__SYM(nvrtc, GetPTX, "nvrtcGetPTX", 1);
    TS__SYM(nvrtc, GetCUBINSize, "nvrtcGetCUBINSize", 0); /* NVRTC >= 11.1 */
    TS__SYM(nvrtc, GetCUBIN, "nvrtcGetCUBIN", 0);
    TS__SYM(nvrtc, GetNumSupportedArchs, "nvrtcGetNumSupportedArchs", 0);
    TS__SYM(nvrtc, GetSupportedArchs, "nvrtcGetSupportedArchs", 0);
    if (missing) {
        snprintf(nvrtc_why, sizeof nvrtc_why, "NVRTC has no %s", missing);
        dlclose(nvrtc.lib);
        nvrtc.lib = NULL;
        return;
    }
    nvrtc.Version(&nvrtc.major, &nvrtc.minor);
    snprintf(nvrtc_ver, sizeof nvrtc_ver, "%d.%d", nvrtc.major, nvrtc.minor);
}

const char *ts__nvrtc_version(char *why, size_t whylen) {
    pthread_once(&nvrtc_once, nvrtc_load);
    if (!nvrtc.lib) {
        if (why) snprintf(why, whylen, "%s", nvrtc_why);
        return NULL;
    }
    return nvrtc_ver;
}

ts_status ts__nvrtc_build(const char *source, const char *arch, char **out, size_t *out_size, char **log) {
    *out = NULL;
    *out_size = 0;
    if (log) *log = NULL;
    if (!source || !arch) return ts__error(TS_ERR_INVALID_ARGUMENT, "nvrtc: no source or arch");
    pthread_once(&nvrtc_once, nvrtc_load);
    if (!nvrtc.lib) return ts__error(TS_ERR_UNAVAILABLE, "%s", nvrtc_why);
    int cubin = strncmp(arch, "sm_", 3) == 0;
    if (cubin && !nvrtc.GetCUBIN) return ts__error(TS_ERR_UNAVAILABLE, "NVRTC %s cannot emit CUBIN (needs 11.1 or later)", nvrtc_ver);
    char archopt[96];
    snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
    const char *opts[] = {archopt, "-default-device"};
    nvrtcProgram prog = NULL;
    nvrtcResult r = nvrtc.CreateProgram(&prog, source, "tessera.cu", 0, NULL, NULL);
    if (r) return ts__error(TS_ERR_COMPILE, "nvrtcCreateProgram failed: %s", nvrtc.GetErrorString(r));
    r = nvrtc.CompileProgram(prog, (int)(sizeof opts / sizeof opts[0]), opts);
    size_t ln = 0;
    char *lg = NULL;
    if (nvrtc.GetProgramLogSize(prog, &ln) == 0 && ln > 0 && (lg = calloc(1, ln + 1))) nvrtc.GetProgramLog(prog, lg);
    if (r) {
        ts_status s = ts__error(TS_ERR_COMPILE, "nvrtc (%s, %s): %s\n--- log ---\n%.16000s\n--- source ---\n%.40000s", nvrtc_ver, arch,
                                nvrtc.GetErrorString(r), lg ? lg : "", source);
        nvrtc.DestroyProgram(&prog);
        if (log) *log = lg;
        else free(lg);
        return s;
    }
    size_t n = 0;
    r = cubin ? nvrtc.GetCUBINSize(prog, &n) : nvrtc.GetPTXSize(prog, &n);
    char *buf = r == 0 && n ? malloc(n + 1) : NULL;
    if (buf) r = cubin ? nvrtc.GetCUBIN(prog, buf) : nvrtc.GetPTX(prog, buf);
    nvrtc.DestroyProgram(&prog);
    if (!buf || r) {
        free(buf);
        free(lg);
        return ts__error(TS_ERR_COMPILE, "nvrtc (%s, %s): no %s produced", nvrtc_ver, arch, cubin ? "CUBIN" : "PTX");
    }
    buf[n] = 0;
    *out = buf;
    *out_size = n;
    if (log) *log = lg;
    else free(lg);
    return TS_OK;
}

ts_status ts__cuda_compile_for_arch(const char *source, const char *arch, char **ptx, char **log) {
    char varch[64];
    if (arch && strncmp(arch, "sm_", 3) == 0) snprintf(varch, sizeof varch, "compute_%s", arch + 3);
    else snprintf(varch, sizeof varch, "%s", arch ? arch : "");
    size_t n;
    return ts__nvrtc_build(source, varch, ptx, &n, log);
}

/* ---------------------------------------------------------------- init */

typedef struct cu_state {
    cu_api api;
    int ndevices;
    int driver_version;
} cu_state;

typedef struct cu_dev {
    cu_api *api;
    CUdevice dev;
    CUcontext ctx;
    int cc_major, cc_minor;
    int max_grid[3];
    char arch[16];
    char fingerprint[512];
} cu_dev;

typedef struct cu_module {
    CUmodule mod;
    CUfunction fn;
    ts__cg_arg args[128];
    int nargs;
    int threads;
} cu_module;

static const char *cu_err(const cu_api *api, CUresult r) {
    const char *s = NULL;
    if (api->GetErrorName) api->GetErrorName(r, &s);
    return s ? s : "unknown CUDA error";
}

static ts_status cu_fail(const cu_api *api, ts_status st, CUresult r, const char *what) {
    const char *desc = NULL;
    if (api->GetErrorString) api->GetErrorString(r, &desc);
    return ts__error(st, "cuda: %s failed: %s (%d)%s%s", what, cu_err(api, r), r, desc ? ": " : "", desc ? desc : "");
}

static ts_status cu_init(void **state) {
    *state = NULL;
    cu_state *st = ts__calloc(1, sizeof *st);
    if (!st) return TS_ERR_OUT_OF_MEMORY;
    cu_api *a = &st->api;
    const char *names[] = {"libcuda.so.1", "libcuda.so"};
    char why[700];
    a->lib = ts__dlopen_first(names, 2, why, sizeof why);
    if (!a->lib) {
        free(st);
        return ts__error(TS_ERR_UNAVAILABLE, "no NVIDIA driver: %s", why);
    }
    const char *missing = NULL;
    TS__SYM(*a, Init, "cuInit", 1);
    TS__SYM(*a, DriverGetVersion, "cuDriverGetVersion", 1);
    TS__SYM(*a, DeviceGetCount, "cuDeviceGetCount", 1);
    TS__SYM(*a, DeviceGet, "cuDeviceGet", 1);
    TS__SYM(*a, DeviceGetName, "cuDeviceGetName", 1);
    TS__SYM(*a, DeviceGetAttribute, "cuDeviceGetAttribute", 1);
    TS__SYM(*a, DeviceTotalMem, "cuDeviceTotalMem_v2", 1);
    TS__SYM(*a, DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", 1);
    TS__SYM(*a, DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", 0);
    if (!a->DevicePrimaryCtxRelease) TS__SYM(*a, DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease", 1);
    TS__SYM(*a, CtxSetCurrent, "cuCtxSetCurrent", 1);
    TS__SYM(*a, CtxSynchronize, "cuCtxSynchronize", 1);
    TS__SYM(*a, MemAlloc, "cuMemAlloc_v2", 1);
    TS__SYM(*a, MemFree, "cuMemFree_v2", 1);
    TS__SYM(*a, MemcpyHtoD, "cuMemcpyHtoD_v2", 1);
    TS__SYM(*a, MemcpyDtoH, "cuMemcpyDtoH_v2", 1);
    TS__SYM(*a, ModuleLoadData, "cuModuleLoadData", 1);
    TS__SYM(*a, ModuleUnload, "cuModuleUnload", 1);
    TS__SYM(*a, ModuleGetFunction, "cuModuleGetFunction", 1);
    TS__SYM(*a, LaunchKernel, "cuLaunchKernel", 1);
    TS__SYM(*a, EventCreate, "cuEventCreate", 1);
    TS__SYM(*a, EventRecord, "cuEventRecord", 1);
    TS__SYM(*a, EventSynchronize, "cuEventSynchronize", 1);
    TS__SYM(*a, EventElapsedTime, "cuEventElapsedTime_v2", 0);
    if (!a->EventElapsedTime) TS__SYM(*a, EventElapsedTime, "cuEventElapsedTime", 1);
    TS__SYM(*a, EventDestroy, "cuEventDestroy_v2", 0);
    if (!a->EventDestroy) TS__SYM(*a, EventDestroy, "cuEventDestroy", 1);
    TS__SYM(*a, GetErrorName, "cuGetErrorName", 0);
    TS__SYM(*a, GetErrorString, "cuGetErrorString", 0);
    if (missing) {
        dlclose(a->lib);
        free(st);
        return ts__error(TS_ERR_UNAVAILABLE, "the NVIDIA driver library has no %s (driver too old)", missing);
    }
    CUresult r = a->Init(0);
    if (r) {
        ts_status s = cu_fail(a, TS_ERR_UNAVAILABLE, r, "cuInit");
        dlclose(a->lib);
        free(st);
        return s;
    }
    char nwhy[1024];
    if (!ts__nvrtc_version(nwhy, sizeof nwhy)) {
        dlclose(a->lib);
        free(st);
        return ts__error(TS_ERR_UNAVAILABLE, "driver found but no runtime compiler: %s", nwhy);
    }
    a->DriverGetVersion(&st->driver_version);
    if (a->DeviceGetCount(&st->ndevices)) st->ndevices = 0;
    *state = st;
    return TS_OK;
}

static void cu_shutdown(void *state) {
    cu_state *st = state;
    if (!st) return;
    dlclose(st->api.lib);
    free(st);
}

static int cu_device_count(void *state) { return state ? ((cu_state *)state)->ndevices : 0; }

/* ---------------------------------------------------------------- device */

static int attr(cu_dev *d, int which) {
    int v = 0;
    if (d->api->DeviceGetAttribute(&v, which, d->dev)) v = 0;
    return v;
}

static ts_status cu_device_open(void *state, int index, ts_device_caps *caps, ts_fingerprint *fp, void **out) {
    cu_state *st = state;
    cu_api *a = &st->api;
    cu_dev *d = ts__calloc(1, sizeof *d);
    if (!d) return TS_ERR_OUT_OF_MEMORY;
    d->api = a;
    CUresult r = a->DeviceGet(&d->dev, index);
    if (!r) r = a->DevicePrimaryCtxRetain(&d->ctx, d->dev);
    if (r) {
        free(d);
        return cu_fail(a, TS_ERR_DEVICE, r, "opening the device (cuDevicePrimaryCtxRetain)");
    }
    a->CtxSetCurrent(d->ctx);
    d->cc_major = attr(d, TS__CU_ATTR_CC_MAJOR);
    d->cc_minor = attr(d, TS__CU_ATTR_CC_MINOR);
    d->max_grid[0] = attr(d, TS__CU_ATTR_MAX_GRID_DIM_X);
    d->max_grid[1] = attr(d, TS__CU_ATTR_MAX_GRID_DIM_Y);
    d->max_grid[2] = attr(d, TS__CU_ATTR_MAX_GRID_DIM_Z);
    snprintf(d->arch, sizeof d->arch, "sm_%d%d", d->cc_major, d->cc_minor);
    size_t total = 0;
    a->DeviceTotalMem(&total, d->dev);
    memset(caps, 0, sizeof *caps);
    int mt = attr(d, TS__CU_ATTR_MAX_THREADS_PER_BLOCK);
    caps->max_group_size = mt > 0 ? (mt > 1024 ? 1024 : mt) : 1024;
    caps->shared_mem_bytes = attr(d, TS__CU_ATTR_MAX_SHARED_MEMORY_PER_BLOCK); /* static __shared__: 48 KiB */
    caps->subgroup_size = 0; /* the generated code uses no warp operations yet */
    caps->compute_units = attr(d, TS__CU_ATTR_MULTIPROCESSOR_COUNT);
    caps->global_mem_bytes = (int64_t)total;
    caps->max_buffer_bytes = (int64_t)total;
    caps->dtype_mask = (1u << TS_F32) | (1u << TS_F16) | (1u << TS_BF16) | (1u << TS_F64) | (1u << TS_I32) | (1u << TS_I64) | (1u << TS_U8) |
                       (1u << TS_BOOL);
    caps->native_dtype_mask = caps->dtype_mask;
    if (d->cc_major * 10 + d->cc_minor < 53) caps->native_dtype_mask &= ~(1u << TS_F16);
    if (d->cc_major < 8) caps->native_dtype_mask &= ~(1u << TS_BF16);
    caps->has_atomics_f32 = 1;
    memset(fp, 0, sizeof *fp);
    snprintf(fp->vendor, sizeof fp->vendor, "NVIDIA");
    if (a->DeviceGetName(fp->device, (int)sizeof fp->device - 1, d->dev)) snprintf(fp->device, sizeof fp->device, "CUDA device %d", index);
    snprintf(fp->arch, sizeof fp->arch, "%s", d->arch);
    snprintf(fp->driver, sizeof fp->driver, "cuda%d.%d-nvrtc%s", st->driver_version / 1000, (st->driver_version % 1000) / 10,
             ts__nvrtc_version(NULL, 0));
    snprintf(fp->device_version, sizeof fp->device_version, "cc%d.%d", d->cc_major, d->cc_minor);
    snprintf(d->fingerprint, sizeof d->fingerprint, "%s|%s|%s|%s", fp->device, fp->arch, fp->driver, fp->device_version);
    *out = d;
    return TS_OK;
}

static void cu_device_close(void *dev) {
    cu_dev *d = dev;
    if (!d) return;
    d->api->CtxSetCurrent(d->ctx);
    d->api->CtxSynchronize();
    d->api->DevicePrimaryCtxRelease(d->dev);
    free(d);
}

/* ---------------------------------------------------------------- buffers */

static ts_status cu_alloc(void *dev, size_t bytes, void **buf) {
    cu_dev *d = dev;
    d->api->CtxSetCurrent(d->ctx);
    CUdeviceptr p = 0;
    CUresult r = d->api->MemAlloc(&p, bytes);
    if (r) return cu_fail(d->api, r == 2 ? TS_ERR_OUT_OF_MEMORY : TS_ERR_DEVICE, r, "cuMemAlloc");
    *buf = (void *)(uintptr_t)p;
    return TS_OK;
}

static void cu_free_buf(void *dev, void *buf) {
    cu_dev *d = dev;
    if (!buf) return;
    d->api->CtxSetCurrent(d->ctx);
    d->api->MemFree((CUdeviceptr)(uintptr_t)buf);
}

static ts_status cu_write(void *dev, void *buf, size_t off, const void *src, size_t n) {
    cu_dev *d = dev;
    d->api->CtxSetCurrent(d->ctx);
    CUresult r = d->api->MemcpyHtoD((CUdeviceptr)(uintptr_t)buf + off, src, n);
    return r ? cu_fail(d->api, TS_ERR_DEVICE, r, "cuMemcpyHtoD") : TS_OK;
}

static ts_status cu_read(void *dev, void *buf, size_t off, void *dst, size_t n) {
    cu_dev *d = dev;
    d->api->CtxSetCurrent(d->ctx);
    CUresult r = d->api->MemcpyDtoH(dst, (CUdeviceptr)(uintptr_t)buf + off, n);
    return r ? cu_fail(d->api, TS_ERR_DEVICE, r, "cuMemcpyDtoH") : TS_OK;
}

/* ---------------------------------------------------------------- compile + CUBIN cache */

#define TS__CU_BIN_MAGIC "TSCUBIN1"

/* The highest arch this NVRTC supports that is not newer than the device
 * (a device newer than the toolkit runs PTX JIT-compiled by the driver). */
static int fallback_arch(int want) {
    int n = 0, best = 0;
    if (!nvrtc.GetNumSupportedArchs || nvrtc.GetNumSupportedArchs(&n) || n <= 0 || n > 256) return 0;
    int archs[256];
    if (nvrtc.GetSupportedArchs(archs)) return 0;
    for (int i = 0; i < n; i++)
        if (archs[i] <= want && archs[i] > best) best = archs[i];
    return best;
}

static ts_status cu_compile(void *dev, const ts_compile_request *req, void **module) {
    cu_dev *d = dev;
    cu_api *a = d->api;
    const ts__plan *plan = req->plan;
    a->CtxSetCurrent(d->ctx);
    uint64_t key = ts__hash_str(TS__HASH_INIT, req->source);
    key = ts__hash_str(key, "-default-device");
    key = ts__hash_str(key, d->fingerprint);
    key = ts__hash_str(key, TS_VERSION_STRING);
    char path[4300];
    ts__bincache_path("cuda", "cubin", key, path, sizeof path);
    cu_module *m = ts__calloc(1, sizeof *m);
    if (!m) return TS_ERR_OUT_OF_MEMORY;
    char *image = NULL;
    size_t n = 0;
    CUresult r = 1;
    if (ts__bincache_load(path, TS__CU_BIN_MAGIC, key, &image, &n)) {
        r = a->ModuleLoadData(&m->mod, image);
        free(image);
        image = NULL;
    }
    if (r) { /* no valid cached image: build from source */
        ts_status s = ts__nvrtc_build(req->source, d->arch, &image, &n, NULL);
        if (s == TS_ERR_COMPILE && strstr(ts_last_error(), "INVALID_OPTION")) {
            int fb = fallback_arch(d->cc_major * 10 + d->cc_minor);
            if (fb) {
                char varch[32];
                snprintf(varch, sizeof varch, "compute_%d", fb);
                s = ts__nvrtc_build(req->source, varch, &image, &n, NULL);
            }
        }
        if (s) {
            free(m);
            return s;
        }
        r = a->ModuleLoadData(&m->mod, image);
        if (r) {
            free(image);
            free(m);
            return cu_fail(a, TS_ERR_COMPILE, r, "cuModuleLoadData");
        }
        ts__bincache_save(path, TS__CU_BIN_MAGIC, key, image, n);
        free(image);
    }
    r = a->ModuleGetFunction(&m->fn, m->mod, req->entry);
    if (r) {
        a->ModuleUnload(m->mod);
        free(m);
        return cu_fail(a, TS_ERR_COMPILE, r, "cuModuleGetFunction");
    }
    m->nargs = ts__cg_args(&req->kernel->ir, m->args, 128);
    m->threads = ts__cg_threads(&req->kernel->ir, plan);
    *module = m;
    return TS_OK;
}

static void cu_module_free(void *dev, void *module) {
    cu_dev *d = dev;
    cu_module *m = module;
    if (!m) return;
    d->api->CtxSetCurrent(d->ctx);
    d->api->ModuleUnload(m->mod);
    free(m);
}

/* ---------------------------------------------------------------- launch */

typedef union cu_argval {
    CUdeviceptr p;
    long long i64;
    int i32;
    float f32;
    double f64;
} cu_argval;

static ts_status cu_launch(void *dev, void *module, const ts_launch_request *req, double *ms) {
    cu_dev *d = dev;
    cu_api *a = d->api;
    cu_module *m = module;
    if (m->nargs > 128) return ts__error(TS_ERR_LIMIT, "cuda: too many kernel arguments");
    for (int i = 0; i < 3; i++)
        if (req->grid[i] > (d->max_grid[i] > 0 ? d->max_grid[i] : (i ? 65535 : 2147483647)))
            return ts__error(TS_ERR_LIMIT, "cuda: kernel '%s' needs %lld programs along grid dim %d; the device allows %d (use larger blocks)",
                             ts_kernel_name(req->kernel), (long long)req->grid[i], i, d->max_grid[i]);
    cu_argval vals[128];
    void *params[128];
    for (int i = 0; i < m->nargs; i++) {
        const ts__cg_arg *ar = &m->args[i];
        switch (ar->kind) {
        case TS__ARG_BUFFER: vals[i].p = (CUdeviceptr)(uintptr_t)req->args[ar->param].buffer; break;
        case TS__ARG_I64: vals[i].i64 = (long long)ts__cg_arg_i64(ar, req->args, req->sizes); break;
        case TS__ARG_F32: vals[i].f32 = (float)ts__cg_arg_f64(ar, req->args); break;
        case TS__ARG_F64: vals[i].f64 = ts__cg_arg_f64(ar, req->args); break;
        default: vals[i].i32 = (int)req->args[ar->param].i; break;
        }
        params[i] = &vals[i];
    }
    a->CtxSetCurrent(d->ctx);
    CUevent e0 = NULL, e1 = NULL;
    if (a->EventCreate(&e0, 0) || a->EventCreate(&e1, 0)) {
        if (e0) a->EventDestroy(e0);
        return ts__error(TS_ERR_DEVICE, "cuda: cuEventCreate failed");
    }
    a->EventRecord(e0, NULL);
    CUresult r = a->LaunchKernel(m->fn, (unsigned)req->grid[0], (unsigned)req->grid[1], (unsigned)req->grid[2], (unsigned)m->threads, 1, 1, 0, NULL,
                                 params, NULL);
    ts_status s = TS_OK;
    if (r) s = cu_fail(a, TS_ERR_LAUNCH, r, "cuLaunchKernel");
    else {
        a->EventRecord(e1, NULL);
        r = a->EventSynchronize(e1);
        if (r) s = cu_fail(a, TS_ERR_LAUNCH, r, "running the kernel");
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

static ts_status cu_sync(void *dev) {
    cu_dev *d = dev;
    d->api->CtxSetCurrent(d->ctx);
    CUresult r = d->api->CtxSynchronize();
    return r ? cu_fail(d->api, TS_ERR_DEVICE, r, "cuCtxSynchronize") : TS_OK;
}

static const ts_backend cuda_backend = {
    .version = TS_BACKEND_VERSION,
    .name = "cuda",
    .dialect = TS_DIALECT_CUDA,
    .init = cu_init,
    .shutdown = cu_shutdown,
    .device_count = cu_device_count,
    .device_open = cu_device_open,
    .device_close = cu_device_close,
    .buffer_alloc = cu_alloc,
    .buffer_free = cu_free_buf,
    .buffer_write = cu_write,
    .buffer_read = cu_read,
    .compile = cu_compile,
    .module_free = cu_module_free,
    .launch = cu_launch,
    .synchronize = cu_sync,
};

const ts_backend *ts__cuda_backend(void) { return &cuda_backend; }
