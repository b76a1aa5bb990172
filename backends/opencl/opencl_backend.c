/* opencl_backend.c: the OpenCL backend on the ICD loader (every platform and
 * device; PoCL on the CPU in CI).
 *
 * Sections: platform/device discovery; device open and caps; buffers;
 * compilation with the on-disk binary cache; launch with profiling events.
 *
 * Binary cache: $TESSERA_CACHE_DIR/bin/opencl-<key>.bin, key = hash of the
 * source, build options, device fingerprint, driver version and Tessera
 * version. The file carries a magic, the key, the size and a checksum; one
 * that fails any check, or fails to build, is rebuilt from source and
 * rewritten (atomically), never trusted. */
#include "backend_internal.h"
#include "dialect.h"

#include <CL/cl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS__CL_MAX_DEVICES 16

typedef struct cl_state {
    cl_device_id devices[TS__CL_MAX_DEVICES];
    cl_platform_id platforms[TS__CL_MAX_DEVICES];
    int ndevices;
} cl_state;

typedef struct cl_dev {
    cl_device_id id;
    cl_context ctx;
    cl_command_queue queue;
    char fingerprint[512];
    char driver[128];
    int host_unified; /* CL_DEVICE_HOST_UNIFIED_MEMORY: buffers live in host memory (PoCL CPU, integrated GPUs) */
    size_t wrap_align; /* alignment a CL_MEM_USE_HOST_PTR buffer needs to be used in place (0: never wrapped) */
} cl_dev;

typedef struct cl_module {
    cl_program program;
    cl_kernel kernel;
    ts__cg_arg args[128];
    int nargs;
    int threads;
} cl_module;

static ts_status cl_fail(cl_int err, const char *what) {
    return ts__error(TS_ERR_DEVICE, "opencl: %s failed (error %d)", what, (int)err);
}

/* ---------------------------------------------------------------- discovery */

static ts_status cl_init(void **state) {
    *state = NULL;
    /* PoCL's CPU device: pin its worker threads to cores, unless the
     * environment says otherwise. Unpinned, the scheduler sometimes ran both
     * workers on one core: on a 2-core machine a 0.85 ms softmax took
     * 1.65 ms for stretches of launches, and tuning picked configs by that
     * noise (docs/backends.md). Read by PoCL when the ICD loader loads it, below. */
    setenv("POCL_AFFINITY", "1", 0);
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    if (err != CL_SUCCESS || np == 0)
        return ts__error(TS_ERR_UNAVAILABLE, "no OpenCL platform (clGetPlatformIDs: %d, %u platforms); install an ICD such as pocl-opencl-icd",
                         (int)err, np);
    cl_platform_id plats[8];
    if (np > 8) np = 8;
    clGetPlatformIDs(np, plats, NULL);
    cl_state *st = ts__calloc(1, sizeof *st);
    if (!st) return TS_ERR_OUT_OF_MEMORY;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0) continue;
        cl_device_id ids[TS__CL_MAX_DEVICES];
        if (nd > TS__CL_MAX_DEVICES) nd = TS__CL_MAX_DEVICES;
        clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, ids, NULL);
        for (cl_uint d = 0; d < nd && st->ndevices < TS__CL_MAX_DEVICES; d++) {
            st->platforms[st->ndevices] = plats[p];
            st->devices[st->ndevices++] = ids[d];
        }
    }
    if (st->ndevices == 0) {
        free(st);
        return ts__error(TS_ERR_UNAVAILABLE, "OpenCL platforms found but no device");
    }
    *state = st;
    return TS_OK;
}

static void cl_shutdown(void *state) { free(state); }

static int cl_device_count(void *state) { return state ? ((cl_state *)state)->ndevices : 0; }

/* ---------------------------------------------------------------- device */

static void info_str(cl_device_id d, cl_device_info what, char *buf, size_t n) {
    buf[0] = 0;
    if (clGetDeviceInfo(d, what, n - 1, buf, NULL) != CL_SUCCESS) buf[0] = 0;
    buf[n - 1] = 0;
}

static ts_status cl_device_open(void *state, int index, ts_device_caps *caps, ts_fingerprint *fp, void **out) {
    cl_state *st = state;
    cl_dev *d = ts__calloc(1, sizeof *d);
    if (!d) return TS_ERR_OUT_OF_MEMORY;
    d->id = st->devices[index];
    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)st->platforms[index], 0};
    d->ctx = clCreateContext(props, 1, &d->id, NULL, NULL, &err);
    if (!d->ctx) { free(d); return cl_fail(err, "clCreateContext"); }
    d->queue = clCreateCommandQueue(d->ctx, d->id, CL_QUEUE_PROFILING_ENABLE, &err);
    if (!d->queue) { clReleaseContext(d->ctx); free(d); return cl_fail(err, "clCreateCommandQueue"); }
    size_t wg = 0;
    cl_ulong local = 0, global = 0, maxalloc = 0;
    cl_uint cu = 0;
    cl_device_fp_config dbl = 0;
    cl_bool unified = CL_FALSE;
    if (clGetDeviceInfo(d->id, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL) == CL_SUCCESS) d->host_unified = unified == CL_TRUE;
    {
        /* host memory used in place (CL_MEM_USE_HOST_PTR): the spec sets no
         * alignment, an implementation may copy where it cannot use the
         * address (results stay right either way). A CPU device (PoCL) uses
         * any address in place (measured: 256 MiB in 64 buffers cost no
         * copy); integrated GPUs want whole pages. */
        cl_device_type type = 0;
        clGetDeviceInfo(d->id, CL_DEVICE_TYPE, sizeof type, &type, NULL);
        d->wrap_align = !d->host_unified ? 0 : (type & CL_DEVICE_TYPE_CPU) ? 1 : 4096;
    }
    clGetDeviceInfo(d->id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    clGetDeviceInfo(d->id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local, &local, NULL);
    clGetDeviceInfo(d->id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof global, &global, NULL);
    clGetDeviceInfo(d->id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc, &maxalloc, NULL);
    clGetDeviceInfo(d->id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    clGetDeviceInfo(d->id, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof dbl, &dbl, NULL);
    char ext[8192];
    info_str(d->id, CL_DEVICE_EXTENSIONS, ext, sizeof ext);
    memset(caps, 0, sizeof *caps);
    caps->max_group_size = (int)(wg > 1024 ? 1024 : wg);
    caps->shared_mem_bytes = (int64_t)local;
    caps->subgroup_size = 0; /* OpenCL 1.2: no portable subgroup ops */
    caps->compute_units = (int)cu;
    caps->global_mem_bytes = (int64_t)global;
    caps->max_buffer_bytes = (int64_t)maxalloc;
    /* f16/bf16 are stored as 16-bit words (vload_half) and computed in f32 */
    caps->dtype_mask = (1u << TS_F32) | (1u << TS_F16) | (1u << TS_BF16) | (1u << TS_I32) | (1u << TS_I64) | (1u << TS_U8) | (1u << TS_BOOL) |
                       (1u << TS_I8) | (1u << TS_I16) | (1u << TS_F8_E4M3) | (1u << TS_F8_E5M2);
    if (dbl) caps->dtype_mask |= 1u << TS_F64;
    caps->native_dtype_mask = caps->dtype_mask & ~((1u << TS_BF16) | (1u << TS_F8_E4M3) | (1u << TS_F8_E5M2) | (strstr(ext, "cl_khr_fp16") ? 0u : (1u << TS_F16)));
    caps->has_atomics_f32 = 1; /* through atomic_cmpxchg */
    memset(fp, 0, sizeof *fp);
    info_str(d->id, CL_DEVICE_VENDOR, fp->vendor, sizeof fp->vendor);
    info_str(d->id, CL_DEVICE_NAME, fp->device, sizeof fp->device);
    info_str(d->id, CL_DRIVER_VERSION, fp->driver, sizeof fp->driver);
    info_str(d->id, CL_DEVICE_VERSION, fp->device_version, sizeof fp->device_version);
    cl_device_type type = 0;
    clGetDeviceInfo(d->id, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    snprintf(fp->arch, sizeof fp->arch, "%s", type & CL_DEVICE_TYPE_CPU ? "cpu" : type & CL_DEVICE_TYPE_GPU ? "gpu" : "accelerator");
    snprintf(d->fingerprint, sizeof d->fingerprint, "%s|%s|%s|%s|%s", fp->vendor, fp->device, fp->arch, fp->driver, fp->device_version);
    snprintf(d->driver, sizeof d->driver, "%s", fp->driver);
    *out = d;
    return TS_OK;
}

static void cl_device_close(void *dev) {
    cl_dev *d = dev;
    if (!d) return;
    clReleaseCommandQueue(d->queue);
    clReleaseContext(d->ctx);
    free(d);
}

/* ---------------------------------------------------------------- buffers */

static ts_status cl_alloc(void *dev, size_t bytes, void **buf) {
    cl_dev *d = dev;
    cl_int err;
    cl_mem m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (!m) return ts__error(err == CL_OUT_OF_HOST_MEMORY || err == CL_MEM_OBJECT_ALLOCATION_FAILURE ? TS_ERR_OUT_OF_MEMORY : TS_ERR_DEVICE,
                             "opencl: cannot allocate %zu bytes (error %d)", bytes, (int)err);
    *buf = m;
    return TS_OK;
}

static void cl_free_buf(void *dev, void *buf) {
    (void)dev;
    if (buf) clReleaseMemObject((cl_mem)buf);
}

static ts_status cl_write(void *dev, void *buf, size_t off, const void *src, size_t n) {
    cl_dev *d = dev;
    cl_int err = clEnqueueWriteBuffer(d->queue, (cl_mem)buf, CL_TRUE, off, n, src, 0, NULL, NULL);
    return err == CL_SUCCESS ? TS_OK : cl_fail(err, "clEnqueueWriteBuffer");
}

/* Host memory used in place (CL_MEM_USE_HOST_PTR), where the device shares
 * host memory and the address is aligned as it needs; the destructor
 * callback hands the memory back once the runtime is done with it. */
typedef struct cl_wrap {
    void (*release)(void *);
    void *arg;
} cl_wrap;

static void CL_CALLBACK cl_wrap_done(cl_mem m, void *user) {
    (void)m;
    cl_wrap *w = user;
    w->release(w->arg);
    free(w);
}

static ts_status cl_wrap_host(void *dev, void *host, size_t bytes, void (*release)(void *), void *arg, void **buf) {
    cl_dev *d = dev;
    if (!d->wrap_align || !host || !bytes || !release || (uintptr_t)host % d->wrap_align) return TS_ERR_UNSUPPORTED;
    cl_wrap *w = ts__calloc(1, sizeof *w);
    if (!w) return TS_ERR_OUT_OF_MEMORY;
    w->release = release;
    w->arg = arg;
    cl_int err;
    cl_mem m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, bytes, host, &err);
    if (!m) {
        free(w);
        return TS_ERR_UNSUPPORTED; /* the caller allocates and copies instead */
    }
    err = clSetMemObjectDestructorCallback(m, cl_wrap_done, w);
    if (err != CL_SUCCESS) {
        /* without the callback the memory's end is unknown: never wrap */
        clReleaseMemObject(m);
        free(w);
        return TS_ERR_UNSUPPORTED;
    }
    *buf = m;
    return TS_OK;
}

/* Mapping for writing, where buffers are host memory: the caller writes
 * (or converts) straight into the buffer, with no staging copy and no copy
 * inside the driver. Refused on discrete devices, where clEnqueueWriteBuffer
 * from the caller's memory is the direct path. */
static ts_status cl_map_write(void *dev, void *buf, size_t off, size_t n, void **host) {
    cl_dev *d = dev;
    if (!d->host_unified) return TS_ERR_UNSUPPORTED;
    cl_int err;
    void *p = clEnqueueMapBuffer(d->queue, (cl_mem)buf, CL_TRUE, CL_MAP_WRITE_INVALIDATE_REGION, off, n, 0, NULL, NULL, &err);
    if (!p) return cl_fail(err, "clEnqueueMapBuffer");
    *host = p;
    return TS_OK;
}

static ts_status cl_unmap(void *dev, void *buf, void *host) {
    cl_dev *d = dev;
    cl_event ev;
    cl_int err = clEnqueueUnmapMemObject(d->queue, (cl_mem)buf, host, 0, NULL, &ev);
    if (err != CL_SUCCESS) return cl_fail(err, "clEnqueueUnmapMemObject");
    err = clWaitForEvents(1, &ev);
    clReleaseEvent(ev);
    return err == CL_SUCCESS ? TS_OK : cl_fail(err, "clWaitForEvents (unmap)");
}

static ts_status cl_read(void *dev, void *buf, size_t off, void *dst, size_t n) {
    cl_dev *d = dev;
    cl_int err = clEnqueueReadBuffer(d->queue, (cl_mem)buf, CL_TRUE, off, n, dst, 0, NULL, NULL);
    return err == CL_SUCCESS ? TS_OK : cl_fail(err, "clEnqueueReadBuffer");
}

/* ---------------------------------------------------------------- compile + binary cache */

#define TS__CL_BIN_MAGIC "TSCLBIN1"

static const char *build_options(void) { return "-cl-std=CL1.2 -cl-mad-enable"; }

static void cache_path(uint64_t key, char *buf, size_t n) {
    char dir[4096];
    if (ts__cache_dir("bin", dir, sizeof dir) != TS_OK) {
        buf[0] = 0;
        return;
    }
    snprintf(buf, n, "%s/opencl-%016" PRIx64 ".bin", dir, key);
}

/* Returns a program built from a valid cached binary, or NULL. */
static cl_program load_cached(cl_dev *d, const char *path, uint64_t key) {
    char *data;
    size_t n;
    if (!path[0] || ts__read_file(path, (size_t)1 << 30, &data, &n) != TS_OK) {
        ts_clear_error();
        return NULL;
    }
    cl_program prog = NULL;
    uint64_t k, size, sum;
    if (n >= 32 && memcmp(data, TS__CL_BIN_MAGIC, 8) == 0) {
        memcpy(&k, data + 8, 8);
        memcpy(&size, data + 16, 8);
        if (k == key && size == n - 32) {
            memcpy(&sum, data + 24 + size, 8);
            if (sum == ts__hash_bytes(TS__HASH_INIT, data + 24, size)) {
                const unsigned char *bin = (const unsigned char *)data + 24;
                size_t bsize = size;
                cl_int st, err;
                prog = clCreateProgramWithBinary(d->ctx, 1, &d->id, &bsize, &bin, &st, &err);
                if (prog && clBuildProgram(prog, 1, &d->id, build_options(), NULL, NULL) != CL_SUCCESS) {
                    clReleaseProgram(prog);
                    prog = NULL;
                }
            }
        }
    }
    free(data);
    return prog;
}

static void save_cached(cl_dev *d, cl_program prog, const char *path, uint64_t key) {
    (void)d;
    if (!path[0]) return;
    size_t size = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS || size == 0) return;
    char *buf = malloc(size + 32);
    if (!buf) return;
    unsigned char *bin = (unsigned char *)buf + 24;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) == CL_SUCCESS) {
        uint64_t s64 = size, sum = ts__hash_bytes(TS__HASH_INIT, buf + 24, size);
        memcpy(buf, TS__CL_BIN_MAGIC, 8);
        memcpy(buf + 8, &key, 8);
        memcpy(buf + 16, &s64, 8);
        memcpy(buf + 24 + size, &sum, 8);
        if (ts__write_file_atomic(path, buf, size + 32) != TS_OK) ts_clear_error(); /* the cache is an optimization */
    }
    free(buf);
}

static ts_status cl_compile(void *dev, const ts_compile_request *req, void **module) {
    cl_dev *d = dev;
    const ts__plan *plan = req->plan;
    uint64_t key = ts__hash_str(TS__HASH_INIT, req->source);
    key = ts__hash_str(key, build_options());
    key = ts__hash_str(key, d->fingerprint);
    key = ts__hash_str(key, TS_VERSION_STRING);
    char path[4200];
    cache_path(key, path, sizeof path);
    cl_program prog = load_cached(d, path, key);
    cl_int err;
    if (!prog) {
        const char *src = req->source;
        prog = clCreateProgramWithSource(d->ctx, 1, &src, NULL, &err);
        if (!prog) return cl_fail(err, "clCreateProgramWithSource");
        err = clBuildProgram(prog, 1, &d->id, build_options(), NULL, NULL);
        if (err != CL_SUCCESS) {
            char log[16384];
            log[0] = 0;
            clGetProgramBuildInfo(prog, d->id, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
            log[sizeof log - 1] = 0;
            clReleaseProgram(prog);
            return ts__error(TS_ERR_COMPILE, "opencl: kernel '%s' failed to build (error %d)\n--- build log ---\n%s\n--- source ---\n%.40000s",
                             ts_kernel_name(req->kernel), (int)err, log, req->source);
        }
        save_cached(d, prog, path, key);
    }
    cl_module *m = ts__calloc(1, sizeof *m);
    if (!m) { clReleaseProgram(prog); return TS_ERR_OUT_OF_MEMORY; }
    m->program = prog;
    m->kernel = clCreateKernel(prog, req->entry, &err);
    if (!m->kernel) {
        clReleaseProgram(prog);
        free(m);
        return cl_fail(err, "clCreateKernel");
    }
    m->nargs = ts__cg_args(&req->kernel->ir, m->args, 128);
    m->threads = ts__cg_threads(&req->kernel->ir, plan);
    *module = m;
    return TS_OK;
}

static void cl_module_free(void *dev, void *module) {
    (void)dev;
    cl_module *m = module;
    if (!m) return;
    clReleaseKernel(m->kernel);
    clReleaseProgram(m->program);
    free(m);
}

/* ---------------------------------------------------------------- launch */

static ts_status cl_launch(void *dev, void *module, const ts_launch_request *req, double *ms) {
    cl_dev *d = dev;
    cl_module *m = module;
    if (m->nargs > 128) return ts__error(TS_ERR_LIMIT, "opencl: too many kernel arguments");
    for (int i = 0; i < m->nargs; i++) {
        const ts__cg_arg *a = &m->args[i];
        cl_int err;
        switch (a->kind) {
        case TS__ARG_BUFFER: {
            cl_mem mem = (cl_mem)req->args[a->param].buffer;
            err = clSetKernelArg(m->kernel, (cl_uint)i, sizeof mem, &mem);
            break;
        }
        case TS__ARG_I64: {
            cl_long v = (cl_long)ts__cg_arg_i64(a, req->args, req->sizes);
            err = clSetKernelArg(m->kernel, (cl_uint)i, sizeof v, &v);
            break;
        }
        case TS__ARG_F32: {
            cl_float v = (cl_float)ts__cg_arg_f64(a, req->args);
            err = clSetKernelArg(m->kernel, (cl_uint)i, sizeof v, &v);
            break;
        }
        case TS__ARG_F64: {
            cl_double v = ts__cg_arg_f64(a, req->args);
            err = clSetKernelArg(m->kernel, (cl_uint)i, sizeof v, &v);
            break;
        }
        default: {
            cl_int v = (cl_int)req->args[a->param].i;
            err = clSetKernelArg(m->kernel, (cl_uint)i, sizeof v, &v);
            break;
        }
        }
        if (err != CL_SUCCESS) return ts__error(TS_ERR_LAUNCH, "opencl: setting argument %d of '%s' failed (error %d)", i, ts_kernel_name(req->kernel), (int)err);
    }
    size_t local[3] = {(size_t)m->threads, 1, 1};
    size_t global[3] = {(size_t)req->grid[0] * (size_t)m->threads, (size_t)req->grid[1], (size_t)req->grid[2]};
    cl_event ev;
    cl_int err = clEnqueueNDRangeKernel(d->queue, m->kernel, 3, NULL, global, local, 0, NULL, &ev);
    if (err != CL_SUCCESS) return ts__error(TS_ERR_LAUNCH, "opencl: launching '%s' failed (error %d)", ts_kernel_name(req->kernel), (int)err);
    err = clWaitForEvents(1, &ev);
    if (err == CL_SUCCESS && ms) {
        cl_ulong t0 = 0, t1 = 0;
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
        *ms = (double)(t1 - t0) / 1e6;
    }
    clReleaseEvent(ev);
    return err == CL_SUCCESS ? TS_OK : ts__error(TS_ERR_LAUNCH, "opencl: '%s' failed while running (error %d)", ts_kernel_name(req->kernel), (int)err);
}

static ts_status cl_sync(void *dev) {
    cl_dev *d = dev;
    cl_int err = clFinish(d->queue);
    return err == CL_SUCCESS ? TS_OK : cl_fail(err, "clFinish");
}

static const ts_backend opencl_backend = {
    .version = TS_BACKEND_VERSION,
    .name = "opencl",
    .dialect = TS_DIALECT_OPENCL,
    .init = cl_init,
    .shutdown = cl_shutdown,
    .device_count = cl_device_count,
    .device_open = cl_device_open,
    .device_close = cl_device_close,
    .buffer_alloc = cl_alloc,
    .buffer_free = cl_free_buf,
    .buffer_write = cl_write,
    .buffer_read = cl_read,
    .compile = cl_compile,
    .module_free = cl_module_free,
    .launch = cl_launch,
    .synchronize = cl_sync,
    .buffer_map_write = cl_map_write,
    .buffer_unmap = cl_unmap,
    .buffer_wrap_host = cl_wrap_host,
};

const ts_backend *ts__opencl_backend(void) { return &opencl_backend; }
