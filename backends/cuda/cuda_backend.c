/* cuda_backend.c: the CUDA backend on the driver API and NVRTC, both loaded
 * with dlopen at run time (never linked), so the library builds and runs
 * without the CUDA toolkit and reports "not available: <reason>" on a
 * machine without the driver.
 *
 * Sections: NVRTC (its table, declared here so no CUDA header is needed, and
 * compilation for a named arch, also used without a device by tests and
 * `tessera compile`); the driver API: its symbols, attribute numbers and the
 * hooks for the calls whose shapes differ from HIP's (primary context,
 * CUdeviceptr buffers, cuEventCreate's flags). Init, devices, buffers,
 * compile and launch are the shared driver layer's (gpu_driver.c).
 *
 * CUBIN cache: $TESSERA_CACHE_DIR/bin/cuda-<key>.cubin, key = hash of the
 * source, NVRTC options, device fingerprint (name, sm_XY, driver and NVRTC
 * versions) and Tessera version (gpu_driver.c). */
#include "backend_internal.h"
#include "dialect.h"
#include "gpu_driver.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static const ts__gpu_sym nvrtc_syms[] = {
    TS__GPU_SYM(nvrtc_api, GetErrorString, "nvrtcGetErrorString", NULL, 1),
    TS__GPU_SYM(nvrtc_api, Version, "nvrtcVersion", NULL, 1),
    TS__GPU_SYM(nvrtc_api, CreateProgram, "nvrtcCreateProgram", NULL, 1),
    TS__GPU_SYM(nvrtc_api, DestroyProgram, "nvrtcDestroyProgram", NULL, 1),
    TS__GPU_SYM(nvrtc_api, CompileProgram, "nvrtcCompileProgram", NULL, 1),
    TS__GPU_SYM(nvrtc_api, GetProgramLogSize, "nvrtcGetProgramLogSize", NULL, 1),
    TS__GPU_SYM(nvrtc_api, GetProgramLog, "nvrtcGetProgramLog", NULL, 1),
    TS__GPU_SYM(nvrtc_api, GetPTXSize, "nvrtcGetPTXSize", NULL, 1),
    TS__GPU_SYM(nvrtc_api, GetPTX, "nvrtcGetPTX", NULL, 1),
    TS__GPU_SYM(nvrtc_api, GetCUBINSize, "nvrtcGetCUBINSize", NULL, 0), /* NVRTC >= 11.1 */
    TS__GPU_SYM(nvrtc_api, GetCUBIN, "nvrtcGetCUBIN", NULL, 0),
    TS__GPU_SYM(nvrtc_api, GetNumSupportedArchs, "nvrtcGetNumSupportedArchs", NULL, 0),
    TS__GPU_SYM(nvrtc_api, GetSupportedArchs, "nvrtcGetSupportedArchs", NULL, 0),
};

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
    const char *missing = ts__gpu_load_syms(nvrtc.lib, &nvrtc, nvrtc_syms, (int)(sizeof nvrtc_syms / sizeof nvrtc_syms[0]));
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

/* ---------------------------------------------------------------- driver API */

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

static const ts__gpu_sym cu_syms[] = {
    TS__GPU_SYM(ts__gpu_calls, Init, "cuInit", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, Version, "cuDriverGetVersion", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, DeviceCount, "cuDeviceGetCount", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, DeviceGet, "cuDeviceGet", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, DeviceGetName, "cuDeviceGetName", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, DeviceGetAttribute, "cuDeviceGetAttribute", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, DeviceTotalMem, "cuDeviceTotalMem_v2", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease", 1),
    TS__GPU_SYM(ts__gpu_calls, CtxSetCurrent, "cuCtxSetCurrent", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, Synchronize, "cuCtxSynchronize", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, MemAlloc, "cuMemAlloc_v2", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, MemFree, "cuMemFree_v2", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, MemcpyHtoD, "cuMemcpyHtoD_v2", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, MemcpyDtoH, "cuMemcpyDtoH_v2", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, ModuleLoadData, "cuModuleLoadData", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, ModuleUnload, "cuModuleUnload", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, ModuleGetFunction, "cuModuleGetFunction", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, LaunchKernel, "cuLaunchKernel", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, EventCreateWithFlags, "cuEventCreate", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, EventRecord, "cuEventRecord", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, EventSynchronize, "cuEventSynchronize", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, EventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime", 1),
    TS__GPU_SYM(ts__gpu_calls, EventDestroy, "cuEventDestroy_v2", "cuEventDestroy", 1),
    TS__GPU_SYM(ts__gpu_calls, GetErrorName, "cuGetErrorName", NULL, 0),
    /* pinned staging: optional, uploads fall back to cuMemcpyHtoD */
    TS__GPU_SYM(ts__gpu_calls, HostAlloc, "cuMemHostAlloc", NULL, 0),
    TS__GPU_SYM(ts__gpu_calls, HostFree, "cuMemFreeHost", NULL, 0),
    TS__GPU_SYM(ts__gpu_calls, MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2", "cuMemcpyHtoDAsync", 0),
    TS__GPU_SYM(ts__gpu_calls, StreamCreate, "cuStreamCreate", NULL, 0),
    TS__GPU_SYM(ts__gpu_calls, StreamDestroy, "cuStreamDestroy_v2", "cuStreamDestroy", 0),
    TS__GPU_SYM(ts__gpu_calls, GetErrorStringOut, "cuGetErrorString", NULL, 0),
};

/* "CUDA_ERROR_X (n): description" */
static void cu_describe_error(const ts__gpu_calls *c, ts__gpu_result r, char *buf, size_t n) {
    const char *name = NULL, *desc = NULL;
    if (c->GetErrorName) c->GetErrorName(r, &name);
    if (c->GetErrorStringOut) c->GetErrorStringOut(r, &desc);
    snprintf(buf, n, "%s (%d)%s%s", name ? name : "unknown CUDA error", r, desc ? ": " : "", desc ? desc : "");
}

static ts__gpu_result cu_open(ts__gpu_dev *d) {
    ts__gpu_result r = d->c->DeviceGet(&d->dev, d->index);
    if (!r) r = d->c->DevicePrimaryCtxRetain(&d->ctx, d->dev);
    if (!r) d->c->CtxSetCurrent(d->ctx);
    return r;
}

static void cu_release(ts__gpu_dev *d) { d->c->DevicePrimaryCtxRelease(d->dev); }

static ts__gpu_result cu_make_current(const ts__gpu_dev *d) { return d->c->CtxSetCurrent(d->ctx); }

static void cu_describe(ts__gpu_dev *d, ts_device_caps *caps, ts_fingerprint *fp) {
    d->cc_major = ts__gpu_attr(d, TS__CU_ATTR_CC_MAJOR);
    d->cc_minor = ts__gpu_attr(d, TS__CU_ATTR_CC_MINOR);
    snprintf(d->arch, sizeof d->arch, "sm_%d%d", d->cc_major, d->cc_minor);
    if (d->cc_major * 10 + d->cc_minor < 53) caps->native_dtype_mask &= ~(1u << TS_F16);
    if (d->cc_major < 8) caps->native_dtype_mask &= ~(1u << TS_BF16);
    int v = d->st->version;
    snprintf(fp->driver, sizeof fp->driver, "cuda%d.%d-nvrtc%s", v / 1000, (v % 1000) / 10, ts__nvrtc_version(NULL, 0));
    snprintf(fp->device_version, sizeof fp->device_version, "cc%d.%d", d->cc_major, d->cc_minor);
}

/* Buffers are CUdeviceptr values carried as void * */
static ts__gpu_result cu_mem_alloc(const ts__gpu_calls *c, size_t bytes, void **buf) {
    unsigned long long p = 0;
    ts__gpu_result r = c->MemAlloc(&p, bytes);
    if (!r) *buf = (void *)(uintptr_t)p;
    return r;
}

static ts__gpu_result cu_mem_free(const ts__gpu_calls *c, void *buf) { return c->MemFree((unsigned long long)(uintptr_t)buf); }

static ts__gpu_result cu_copy_to_device(const ts__gpu_calls *c, void *buf, size_t off, const void *src, size_t n) {
    return c->MemcpyHtoD((unsigned long long)(uintptr_t)buf + off, src, n);
}

static ts__gpu_result cu_copy_to_host(const ts__gpu_calls *c, void *dst, void *buf, size_t off, size_t n) {
    return c->MemcpyDtoH(dst, (unsigned long long)(uintptr_t)buf + off, n);
}

static ts__gpu_result cu_event_create(const ts__gpu_calls *c, ts__gpu_event *e) { return c->EventCreateWithFlags(e, 0); }

static ts__gpu_result cu_copy_to_device_async(const ts__gpu_calls *c, void *buf, size_t off, const void *src, size_t n, ts__gpu_stream s) {
    return c->MemcpyHtoDAsync ? c->MemcpyHtoDAsync((unsigned long long)(uintptr_t)buf + off, src, n, s) : -1;
}

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

/* CUBIN for the device's sm_XY; PTX for the newest older arch when this
 * NVRTC does not know the device's. */
static ts_status cu_build(const ts__gpu_dev *d, const char *source, char **image, size_t *n) {
    ts_status s = ts__nvrtc_build(source, d->arch, image, n, NULL);
    if (s == TS_ERR_COMPILE && strstr(ts_last_error(), "INVALID_OPTION")) {
        int fb = fallback_arch(d->cc_major * 10 + d->cc_minor);
        if (fb) {
            char varch[32];
            snprintf(varch, sizeof varch, "compute_%d", fb);
            s = ts__nvrtc_build(source, varch, image, n, NULL);
        }
    }
    return s;
}

static const char *const cu_lib_names[] = {"libcuda.so.1", "libcuda.so"};

static const ts__gpu_driver cuda_driver = {
    .name = "cuda",
    .label = "CUDA",
    .vendor = "NVIDIA",
    .lib_names = cu_lib_names,
    .nlib_names = 2,
    .no_lib = "no NVIDIA driver",
    .no_sym = "the NVIDIA driver library has no ",
    .no_sym_suffix = " (driver too old)",
    .syms = cu_syms,
    .nsyms = (int)(sizeof cu_syms / sizeof cu_syms[0]),
    .init_prefix = "cuda: ",
    .init_call = "cuInit",
    .init_hint = "",
    .rtc_missing = "driver",
    .rtc_available = ts__nvrtc_version,
    .attr_grid = {TS__CU_ATTR_MAX_GRID_DIM_X, TS__CU_ATTR_MAX_GRID_DIM_Y, TS__CU_ATTR_MAX_GRID_DIM_Z},
    .attr_max_threads = TS__CU_ATTR_MAX_THREADS_PER_BLOCK,
    .attr_shared = TS__CU_ATTR_MAX_SHARED_MEMORY_PER_BLOCK,
    .attr_units = TS__CU_ATTR_MULTIPROCESSOR_COUNT,
    .default_group_size = 1024,
    .default_grid = {2147483647, 65535, 65535},
    .open_call = "opening the device (cuDevicePrimaryCtxRetain)",
    .alloc_call = "cuMemAlloc",
    .write_call = "cuMemcpyHtoD",
    .staging_call = "cuMemHostAlloc",
    .write_async_call = "cuMemcpyHtoDAsync",
    .read_call = "cuMemcpyDtoH",
    .load_call = "cuModuleLoadData",
    .get_function_call = "cuModuleGetFunction",
    .launch_call = "cuLaunchKernel",
    .event_create_call = "cuEventCreate",
    .sync_call = "cuCtxSynchronize",
    .bin_prefix = "cuda",
    .bin_ext = "cubin",
    .bin_magic = "TSCUBIN1",
    .bin_key_option = "-default-device",
    .describe_error = cu_describe_error,
    .open = cu_open,
    .release = cu_release,
    .make_current = cu_make_current,
    .describe = cu_describe,
    .mem_alloc = cu_mem_alloc,
    .mem_free = cu_mem_free,
    .copy_to_device = cu_copy_to_device,
    .copy_to_host = cu_copy_to_host,
    .event_create = cu_event_create,
    .copy_to_device_async = cu_copy_to_device_async,
    .build = cu_build,
};

static ts_status cu_init(void **state) { return ts__gpu_init(&cuda_driver, state); }

static const ts_backend cuda_backend = TS__GPU_BACKEND("cuda", TS_DIALECT_CUDA, cu_init);

const ts_backend *ts__cuda_backend(void) { return &cuda_backend; }
