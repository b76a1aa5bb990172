/* hip_backend.c: the HIP backend on the HIP runtime (libamdhip64) and hiprtc,
 * both loaded with dlopen at run time (never linked). On ROCm 5 hiprtc lives
 * in libamdhip64 itself; ROCm 6 ships it as libhiprtc.
 *
 * Sections: hiprtc (its table, prototypes declared here so no HIP header is
 * needed, and compilation for a named gfx arch, also used without a device
 * by tests and tools); the runtime: its symbols, attribute numbers and the
 * hooks for the calls whose shapes differ from CUDA's (hipSetDevice,
 * hipMemcpy, the gfx arch from the device properties). Init, devices,
 * buffers, compile and launch are the shared driver layer's (gpu_driver.c).
 *
 * Code-object cache: $TESSERA_CACHE_DIR/bin/hip-<key>.co, key = hash of the
 * source, device fingerprint (name, gfx arch, runtime version) and Tessera
 * version (gpu_driver.c).
 *
 * Verified here only without a device: hiprtc compiles every example kernel
 * for gfx90a and gfx1030 (tests/test_cuda_hip_codegen.c); hipInit fails
 * cleanly and the backend reports "not available". The device paths (caps,
 * launch) follow the HIP module API but have not run on an AMD GPU. */
#include "backend_internal.h"
#include "dialect.h"
#include "gpu_driver.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- hiprtc */

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

static const ts__gpu_sym hiprtc_syms[] = {
    TS__GPU_SYM(hiprtc_api, GetErrorString, "hiprtcGetErrorString", NULL, 1),
    TS__GPU_SYM(hiprtc_api, CreateProgram, "hiprtcCreateProgram", NULL, 1),
    TS__GPU_SYM(hiprtc_api, DestroyProgram, "hiprtcDestroyProgram", NULL, 1),
    TS__GPU_SYM(hiprtc_api, CompileProgram, "hiprtcCompileProgram", NULL, 1),
    TS__GPU_SYM(hiprtc_api, GetProgramLogSize, "hiprtcGetProgramLogSize", NULL, 1),
    TS__GPU_SYM(hiprtc_api, GetProgramLog, "hiprtcGetProgramLog", NULL, 1),
    TS__GPU_SYM(hiprtc_api, GetCodeSize, "hiprtcGetCodeSize", NULL, 1),
    TS__GPU_SYM(hiprtc_api, GetCode, "hiprtcGetCode", NULL, 1),
};

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
    const char *missing = ts__gpu_load_syms(hiprtc.lib, &hiprtc, hiprtc_syms, (int)(sizeof hiprtc_syms / sizeof hiprtc_syms[0]));
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

/* ---------------------------------------------------------------- runtime */

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

static const ts__gpu_sym hip_syms[] = {
    TS__GPU_SYM(ts__gpu_calls, Init, "hipInit", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, DeviceCount, "hipGetDeviceCount", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, SetDevice, "hipSetDevice", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, DeviceGetName, "hipDeviceGetName", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, DeviceGetAttribute, "hipDeviceGetAttribute", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, DeviceTotalMem, "hipDeviceTotalMem", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, GetDeviceProperties, "hipGetDevicePropertiesR0600", "hipGetDeviceProperties", 1),
    TS__GPU_SYM(ts__gpu_calls, Version, "hipRuntimeGetVersion", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, Synchronize, "hipDeviceSynchronize", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, Malloc, "hipMalloc", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, Free, "hipFree", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, Memcpy, "hipMemcpy", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, ModuleLoadData, "hipModuleLoadData", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, ModuleUnload, "hipModuleUnload", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, ModuleGetFunction, "hipModuleGetFunction", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, LaunchKernel, "hipModuleLaunchKernel", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, EventCreate, "hipEventCreate", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, EventRecord, "hipEventRecord", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, EventSynchronize, "hipEventSynchronize", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, EventElapsedTime, "hipEventElapsedTime", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, EventDestroy, "hipEventDestroy", NULL, 1),
    TS__GPU_SYM(ts__gpu_calls, GetErrorString, "hipGetErrorString", NULL, 0),
    /* pinned staging: optional, uploads fall back to hipMemcpy */
    TS__GPU_SYM(ts__gpu_calls, HostAlloc, "hipHostMalloc", NULL, 0),
    TS__GPU_SYM(ts__gpu_calls, HostFree, "hipHostFree", NULL, 0),
    TS__GPU_SYM(ts__gpu_calls, HipMemcpyHtoDAsync, "hipMemcpyHtoDAsync", NULL, 0),
    TS__GPU_SYM(ts__gpu_calls, StreamCreate, "hipStreamCreateWithFlags", NULL, 0),
    TS__GPU_SYM(ts__gpu_calls, StreamDestroy, "hipStreamDestroy", NULL, 0),
};

/* "hipErrorX (n)" */
static void hip_describe_error(const ts__gpu_calls *c, ts__gpu_result r, char *buf, size_t n) {
    snprintf(buf, n, "%s (%d)", c->GetErrorString ? c->GetErrorString(r) : "?", r);
}

static ts__gpu_result hip_make_current(const ts__gpu_dev *d) { return d->c->SetDevice(d->index); }

static ts__gpu_result hip_open(ts__gpu_dev *d) {
    d->dev = d->index;
    return hip_make_current(d);
}

/* The gfx arch of a device: $TESSERA_HIP_ARCH, else the "gfxNNN" string in
 * its properties (gcnArchName; found by content, since the struct's layout
 * changed between ROCm 5 and 6), without feature suffixes. */
static void device_arch(ts__gpu_dev *d, char *out, size_t n) {
    const char *env = getenv("TESSERA_HIP_ARCH");
    if (env && strncmp(env, "gfx", 3) == 0) {
        snprintf(out, n, "%s", env);
        return;
    }
    snprintf(out, n, "gfx000");
    unsigned char *props = calloc(1, 16384);
    if (!props) return;
    if (d->c->GetDeviceProperties(props, d->index) == 0) {
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

static void hip_describe(ts__gpu_dev *d, ts_device_caps *caps, ts_fingerprint *fp) {
    device_arch(d, d->arch, sizeof d->arch);
    caps->native_dtype_mask &= ~(1u << TS_BF16);
    snprintf(fp->driver, sizeof fp->driver, "hip%d", d->st->version);
    snprintf(fp->device_version, sizeof fp->device_version, "wave%d", ts__gpu_attr(d, TS__HIP_ATTR_WARP_SIZE));
}

static ts__gpu_result hip_mem_alloc(const ts__gpu_calls *c, size_t bytes, void **buf) { return c->Malloc(buf, bytes); }

static ts__gpu_result hip_mem_free(const ts__gpu_calls *c, void *buf) { return c->Free(buf); }

static ts__gpu_result hip_copy_to_device(const ts__gpu_calls *c, void *buf, size_t off, const void *src, size_t n) {
    return c->Memcpy((char *)buf + off, src, n, TS__HIP_MEMCPY_H2D);
}

static ts__gpu_result hip_copy_to_host(const ts__gpu_calls *c, void *dst, void *buf, size_t off, size_t n) {
    return c->Memcpy(dst, (char *)buf + off, n, TS__HIP_MEMCPY_D2H);
}

static ts__gpu_result hip_event_create(const ts__gpu_calls *c, ts__gpu_event *e) { return c->EventCreate(e); }

/* hipMemcpyHtoDAsync takes a non-const source (hipDeviceptr_t is void *) */
static ts__gpu_result hip_copy_to_device_async(const ts__gpu_calls *c, void *buf, size_t off, const void *src, size_t n, ts__gpu_stream s) {
    return c->HipMemcpyHtoDAsync ? c->HipMemcpyHtoDAsync((char *)buf + off, (void *)(uintptr_t)src, n, s) : -1;
}

static ts_status hip_build(const ts__gpu_dev *d, const char *source, char **image, size_t *n) {
    return ts__hip_compile_for_arch(source, d->arch, image, n, NULL);
}

static const ts__gpu_driver hip_driver = {
    .name = "hip",
    .label = "HIP",
    .vendor = "AMD",
    .lib_names = hip_lib_names,
    .nlib_names = (int)(sizeof hip_lib_names / sizeof hip_lib_names[0]),
    .no_lib = "no HIP runtime",
    .no_sym = "the HIP runtime has no ",
    .no_sym_suffix = "",
    .syms = hip_syms,
    .nsyms = (int)(sizeof hip_syms / sizeof hip_syms[0]),
    .init_prefix = "",
    .init_call = "hipInit",
    .init_hint = ": no usable AMD GPU (amdgpu/KFD driver, /dev/kfd)",
    .rtc_missing = "HIP runtime",
    .rtc_available = ts__hiprtc_available,
    .attr_grid = {TS__HIP_ATTR_MAX_GRID_DIM_X, TS__HIP_ATTR_MAX_GRID_DIM_Y, TS__HIP_ATTR_MAX_GRID_DIM_Z},
    .attr_max_threads = TS__HIP_ATTR_MAX_THREADS_PER_BLOCK,
    .attr_shared = TS__HIP_ATTR_MAX_SHARED_MEMORY_PER_BLOCK,
    .attr_units = TS__HIP_ATTR_MULTIPROCESSOR_COUNT,
    .default_group_size = 256,
    .default_grid = {65535, 65535, 65535},
    .open_call = "hipSetDevice",
    .alloc_call = "hipMalloc",
    .write_call = "hipMemcpy (to device)",
    .staging_call = "hipHostMalloc",
    .write_async_call = "hipMemcpyHtoDAsync",
    .read_call = "hipMemcpy (to host)",
    .load_call = "hipModuleLoadData",
    .get_function_call = "hipModuleGetFunction",
    .launch_call = "hipModuleLaunchKernel",
    .event_create_call = "hipEventCreate",
    .sync_call = "hipDeviceSynchronize",
    .bin_prefix = "hip",
    .bin_ext = "co",
    .bin_magic = "TSHIPCO1",
    .bin_key_option = "-O3",
    .describe_error = hip_describe_error,
    .open = hip_open,
    .release = NULL,
    .make_current = hip_make_current,
    .describe = hip_describe,
    .mem_alloc = hip_mem_alloc,
    .mem_free = hip_mem_free,
    .copy_to_device = hip_copy_to_device,
    .copy_to_host = hip_copy_to_host,
    .event_create = hip_event_create,
    .copy_to_device_async = hip_copy_to_device_async,
    .build = hip_build,
};

static ts_status hip_init(void **state) { return ts__gpu_init(&hip_driver, state); }

static const ts_backend hip_backend = TS__GPU_BACKEND("hip", TS_DIALECT_HIP, hip_init);

const ts_backend *ts__hip_backend(void) { return &hip_backend; }
