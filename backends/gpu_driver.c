/* gpu_driver.c: the CUDA and HIP backends' shared driver layer (see
 * gpu_driver.h). Sections: symbol loading; errors; init; device open and
 * close (caps from attributes); buffers; pinned staging (a stream per
 * device, an event per staging buffer); compile with the on-disk binary
 * cache; launch timed with events.
 *
 * Binary cache: $TESSERA_CACHE_DIR/bin/<prefix>-<key>.<ext>, key = hash of
 * the source, the compiler option the API names, the device fingerprint and
 * the Tessera version, in the OpenCL cache's file format (gpu_common.c). A
 * cached image the driver refuses is rebuilt from source and rewritten. */
#include "gpu_driver.h"
#include "dialect.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- symbols */

const char *ts__gpu_load_syms(void *lib, void *table, const ts__gpu_sym *syms, int n) {
    const char *missing = NULL;
    for (int i = 0; i < n; i++) {
        void **slot = (void **)((char *)table + syms[i].offset);
        const char *name = syms[i].name;
        *slot = dlsym(lib, name);
        if (!*slot && syms[i].fallback) *slot = dlsym(lib, name = syms[i].fallback);
        if (!*slot && syms[i].required) missing = name;
    }
    return missing;
}

/* ---------------------------------------------------------------- errors */

ts_status ts__gpu_fail(const ts__gpu_calls *c, const ts__gpu_driver *drv, ts_status st, ts__gpu_result r, const char *what) {
    char desc[1024];
    drv->describe_error(c, r, desc, sizeof desc);
    return ts__error(st, "%s: %s failed: %s", drv->name, what, desc);
}

int ts__gpu_attr(const ts__gpu_dev *d, int which) {
    int v = 0;
    if (d->c->DeviceGetAttribute(&v, which, d->dev)) v = 0;
    return v;
}

/* ---------------------------------------------------------------- init */

ts_status ts__gpu_init(const ts__gpu_driver *drv, void **state) {
    *state = NULL;
    ts__gpu_state *st = ts__calloc(1, sizeof *st);
    if (!st) return TS_ERR_OUT_OF_MEMORY;
    st->drv = drv;
    ts__gpu_calls *c = &st->c;
    char why[700];
    c->lib = ts__dlopen_first(drv->lib_names, drv->nlib_names, why, sizeof why);
    if (!c->lib) {
        free(st);
        return ts__error(TS_ERR_UNAVAILABLE, "%s: %s", drv->no_lib, why);
    }
    ts_status s = TS_OK;
    const char *missing = ts__gpu_load_syms(c->lib, c, drv->syms, drv->nsyms);
    if (missing) s = ts__error(TS_ERR_UNAVAILABLE, "%s%s%s", drv->no_sym, missing, drv->no_sym_suffix);
    else {
        ts__gpu_result r = c->Init(0);
        char desc[1024], rwhy[1024];
        if (r) {
            drv->describe_error(c, r, desc, sizeof desc);
            s = ts__error(TS_ERR_UNAVAILABLE, "%s%s failed: %s%s", drv->init_prefix, drv->init_call, desc, drv->init_hint);
        } else if (!drv->rtc_available(rwhy, sizeof rwhy))
            s = ts__error(TS_ERR_UNAVAILABLE, "%s found but no runtime compiler: %s", drv->rtc_missing, rwhy);
    }
    if (s) {
        dlclose(c->lib);
        free(st);
        return s;
    }
    c->Version(&st->version);
    if (c->DeviceCount(&st->ndevices)) st->ndevices = 0;
    *state = st;
    return TS_OK;
}

void ts__gpu_shutdown(void *state) {
    ts__gpu_state *st = state;
    if (!st) return;
    dlclose(st->c.lib);
    free(st);
}

int ts__gpu_device_count(void *state) { return state ? ((ts__gpu_state *)state)->ndevices : 0; }

/* ---------------------------------------------------------------- device */

ts_status ts__gpu_device_open(void *state, int index, ts_device_caps *caps, ts_fingerprint *fp, void **out) {
    ts__gpu_state *st = state;
    const ts__gpu_driver *drv = st->drv;
    ts__gpu_dev *d = ts__calloc(1, sizeof *d);
    if (!d) return TS_ERR_OUT_OF_MEMORY;
    d->drv = drv;
    d->c = &st->c;
    d->st = st;
    d->index = index;
    ts__gpu_result r = drv->open(d);
    if (r) {
        free(d);
        return ts__gpu_fail(&st->c, drv, TS_ERR_DEVICE, r, drv->open_call);
    }
    for (int i = 0; i < 3; i++) d->max_grid[i] = ts__gpu_attr(d, drv->attr_grid[i]);
    size_t total = 0;
    st->c.DeviceTotalMem(&total, d->dev);
    memset(caps, 0, sizeof *caps);
    int mt = ts__gpu_attr(d, drv->attr_max_threads);
    caps->max_group_size = mt > 0 ? (mt > 1024 ? 1024 : mt) : drv->default_group_size;
    caps->shared_mem_bytes = ts__gpu_attr(d, drv->attr_shared); /* static __shared__: 48 KiB on NVIDIA */
    caps->subgroup_size = 0; /* the generated code uses no warp/wavefront operations yet */
    caps->compute_units = ts__gpu_attr(d, drv->attr_units);
    caps->global_mem_bytes = (int64_t)total;
    caps->max_buffer_bytes = (int64_t)total;
    caps->dtype_mask = (1u << TS_F32) | (1u << TS_F16) | (1u << TS_BF16) | (1u << TS_F64) | (1u << TS_I32) | (1u << TS_I64) | (1u << TS_U8) |
                       (1u << TS_BOOL) | (1u << TS_I8) | (1u << TS_I16) | (1u << TS_F8_E4M3) | (1u << TS_F8_E5M2);
    caps->native_dtype_mask = caps->dtype_mask & ~((1u << TS_F8_E4M3) | (1u << TS_F8_E5M2));
    caps->has_atomics_f32 = 1;
    memset(fp, 0, sizeof *fp);
    snprintf(fp->vendor, sizeof fp->vendor, "%s", drv->vendor);
    if (st->c.DeviceGetName(fp->device, (int)sizeof fp->device - 1, d->dev))
        snprintf(fp->device, sizeof fp->device, "%s device %d", drv->label, index);
    drv->describe(d, caps, fp);
    snprintf(fp->arch, sizeof fp->arch, "%s", d->arch);
    snprintf(d->fingerprint, sizeof d->fingerprint, "%s|%s|%s|%s", fp->device, fp->arch, fp->driver, fp->device_version);
    *out = d;
    return TS_OK;
}

void ts__gpu_device_close(void *dev) {
    ts__gpu_dev *d = dev;
    if (!d) return;
    d->drv->make_current(d);
    d->c->Synchronize();
    if (d->has_stream) d->c->StreamDestroy(d->stream);
    if (d->drv->release) d->drv->release(d);
    free(d);
}

/* ---------------------------------------------------------------- buffers */

ts_status ts__gpu_buffer_alloc(void *dev, size_t bytes, void **buf) {
    ts__gpu_dev *d = dev;
    d->drv->make_current(d);
    ts__gpu_result r = d->drv->mem_alloc(d->c, bytes, buf);
    return r ? ts__gpu_fail(d->c, d->drv, r == 2 ? TS_ERR_OUT_OF_MEMORY : TS_ERR_DEVICE, r, d->drv->alloc_call) : TS_OK; /* 2: out of memory in both */
}

void ts__gpu_buffer_free(void *dev, void *buf) {
    ts__gpu_dev *d = dev;
    if (!buf) return;
    d->drv->make_current(d);
    d->drv->mem_free(d->c, buf);
}

ts_status ts__gpu_buffer_write(void *dev, void *buf, size_t off, const void *src, size_t n) {
    ts__gpu_dev *d = dev;
    d->drv->make_current(d);
    ts__gpu_result r = d->drv->copy_to_device(d->c, buf, off, src, n);
    return r ? ts__gpu_fail(d->c, d->drv, TS_ERR_DEVICE, r, d->drv->write_call) : TS_OK;
}

ts_status ts__gpu_buffer_read(void *dev, void *buf, size_t off, void *dst, size_t n) {
    ts__gpu_dev *d = dev;
    d->drv->make_current(d);
    ts__gpu_result r = d->drv->copy_to_host(d->c, dst, buf, off, n);
    return r ? ts__gpu_fail(d->c, d->drv, TS_ERR_DEVICE, r, d->drv->read_call) : TS_OK;
}

/* ---------------------------------------------------------------- pinned staging */

/* A page-locked host buffer and the event recorded after its last copy.
 * Copies go on the device's own stream (created blocking, so launches and
 * synchronous copies on the default stream still order after them). */
typedef struct gpu_staging {
    void *host;
    size_t bytes;
    ts__gpu_event ev;
    int pending; /* a copy was queued and not yet waited for */
} gpu_staging;

static int staging_present(const ts__gpu_dev *d) {
    const ts__gpu_calls *c = d->c;
    return c->HostAlloc && c->HostFree && c->StreamCreate && c->StreamDestroy && c->EventRecord && c->EventSynchronize && c->EventDestroy &&
           (c->MemcpyHtoDAsync || c->HipMemcpyHtoDAsync) &&
           d->drv->copy_to_device_async && d->drv->event_create && d->drv->staging_call;
}

ts_status ts__gpu_staging_alloc(void *dev, size_t bytes, void **host, void **handle) {
    ts__gpu_dev *d = dev;
    const ts__gpu_driver *drv = d->drv;
    ts__gpu_calls *c = d->c;
    *host = *handle = NULL;
    if (!staging_present(d)) return TS_ERR_UNSUPPORTED;
    drv->make_current(d);
    ts__gpu_result r;
    if (!d->has_stream) {
        r = c->StreamCreate(&d->stream, 0);
        if (r) return ts__gpu_fail(c, drv, TS_ERR_DEVICE, r, "creating the upload stream");
        d->has_stream = 1;
    }
    gpu_staging *h = ts__calloc(1, sizeof *h);
    if (!h) return TS_ERR_OUT_OF_MEMORY;
    h->bytes = bytes;
    r = c->HostAlloc(&h->host, bytes ? bytes : 1, 0);
    if (r) {
        free(h);
        return ts__gpu_fail(c, drv, r == 2 ? TS_ERR_OUT_OF_MEMORY : TS_ERR_DEVICE, r, drv->staging_call);
    }
    r = drv->event_create(c, &h->ev);
    if (r) {
        c->HostFree(h->host);
        free(h);
        return ts__gpu_fail(c, drv, TS_ERR_DEVICE, r, drv->event_create_call);
    }
    *host = h->host;
    *handle = h;
    return TS_OK;
}

ts_status ts__gpu_staging_wait(void *dev, void *handle) {
    ts__gpu_dev *d = dev;
    gpu_staging *h = handle;
    if (!h || !h->pending) return TS_OK;
    d->drv->make_current(d);
    h->pending = 0;
    ts__gpu_result r = d->c->EventSynchronize(h->ev);
    return r ? ts__gpu_fail(d->c, d->drv, TS_ERR_DEVICE, r, d->drv->write_async_call) : TS_OK;
}

void ts__gpu_staging_free(void *dev, void *handle) {
    ts__gpu_dev *d = dev;
    gpu_staging *h = handle;
    if (!h) return;
    d->drv->make_current(d);
    if (h->pending) d->c->EventSynchronize(h->ev); /* quietly: the owner waited already where it cared, and keeps its message */
    d->c->EventDestroy(h->ev);
    d->c->HostFree(h->host);
    free(h);
}

ts_status ts__gpu_buffer_write_async(void *dev, void *buf, size_t off, void *handle, const void *src, size_t n) {
    ts__gpu_dev *d = dev;
    const ts__gpu_driver *drv = d->drv;
    gpu_staging *h = handle;
    const char *lo = h->host, *p = src;
    if (p < lo || n > h->bytes || (size_t)(p - lo) > h->bytes - n)
        return ts__error(TS_ERR_INVALID_ARGUMENT, "%s: an asynchronous copy must come from its staging buffer", drv->name);
    if (h->pending) /* the caller refilled the buffer before waiting: the queued copy may read either bytes */
        return ts__error(TS_ERR_INVALID_ARGUMENT, "%s: a staging buffer was reused before staging_wait", drv->name);
    drv->make_current(d);
    ts__gpu_result r = drv->copy_to_device_async(d->c, buf, off, src, n, d->stream);
    if (!r && (r = d->c->EventRecord(h->ev, d->stream)) != 0) d->c->Synchronize(); /* queued but not marked: finish it before the caller refills */
    if (r) return ts__gpu_fail(d->c, drv, TS_ERR_DEVICE, r, drv->write_async_call);
    h->pending = 1;
    return TS_OK;
}

/* ---------------------------------------------------------------- compile + binary cache */

typedef struct gpu_module {
    ts__gpu_module mod;
    ts__gpu_function fn;
    ts__cg_arg args[128];
    int nargs;
    int threads;
} gpu_module;

ts_status ts__gpu_compile(void *dev, const ts_compile_request *req, void **module) {
    ts__gpu_dev *d = dev;
    const ts__gpu_driver *drv = d->drv;
    ts__gpu_calls *c = d->c;
    const ts__plan *plan = req->plan;
    drv->make_current(d);
    uint64_t key = ts__hash_str(TS__HASH_INIT, req->source);
    key = ts__hash_str(key, drv->bin_key_option);
    key = ts__hash_str(key, d->fingerprint);
    key = ts__hash_str(key, TS_VERSION_STRING);
    char path[4300];
    ts__bincache_path(drv->bin_prefix, drv->bin_ext, key, path, sizeof path);
    gpu_module *m = ts__calloc(1, sizeof *m);
    if (!m) return TS_ERR_OUT_OF_MEMORY;
    char *image = NULL;
    size_t n = 0;
    ts__gpu_result r = 1;
    if (ts__bincache_load(path, drv->bin_magic, key, &image, &n)) {
        r = c->ModuleLoadData(&m->mod, image);
        free(image);
        image = NULL;
    }
    if (r) { /* no valid cached image: build from source */
        ts_status s = drv->build(d, req->source, &image, &n);
        if (s) {
            free(m);
            return s;
        }
        r = c->ModuleLoadData(&m->mod, image);
        if (r) {
            free(image);
            free(m);
            return ts__gpu_fail(c, drv, TS_ERR_COMPILE, r, drv->load_call);
        }
        ts__bincache_save(path, drv->bin_magic, key, image, n);
        free(image);
    }
    r = c->ModuleGetFunction(&m->fn, m->mod, req->entry);
    if (r) {
        c->ModuleUnload(m->mod);
        free(m);
        return ts__gpu_fail(c, drv, TS_ERR_COMPILE, r, drv->get_function_call);
    }
    m->nargs = ts__cg_args(&req->kernel->ir, m->args, 128);
    m->threads = ts__cg_threads(&req->kernel->ir, plan);
    *module = m;
    return TS_OK;
}

void ts__gpu_module_free(void *dev, void *module) {
    ts__gpu_dev *d = dev;
    gpu_module *m = module;
    if (!m) return;
    d->drv->make_current(d);
    d->c->ModuleUnload(m->mod);
    free(m);
}

/* ---------------------------------------------------------------- launch */

/* A kernel parameter's value; the driver copies its size from &value. A
 * buffer is the device address itself: CUdeviceptr is an unsigned 64-bit
 * integer holding the same bits as the void * this layer keeps (the CUDA
 * backend's buffers are (void *)(uintptr_t)CUdeviceptr). */
typedef union gpu_argval {
    void *p;
    long long i64;
    int i32;
    float f32;
    double f64;
} gpu_argval;

_Static_assert(sizeof(void *) == sizeof(unsigned long long), "device pointers are passed as 64-bit values");

ts_status ts__gpu_launch(void *dev, void *module, const ts_launch_request *req, double *ms) {
    ts__gpu_dev *d = dev;
    const ts__gpu_driver *drv = d->drv;
    ts__gpu_calls *c = d->c;
    gpu_module *m = module;
    if (m->nargs > 128) return ts__error(TS_ERR_LIMIT, "%s: too many kernel arguments", drv->name);
    for (int i = 0; i < 3; i++)
        if (req->grid[i] > (d->max_grid[i] > 0 ? d->max_grid[i] : drv->default_grid[i]))
            return ts__error(TS_ERR_LIMIT, "%s: kernel '%s' needs %lld programs along grid dim %d; the device allows %d (use larger blocks)", drv->name,
                             ts_kernel_name(req->kernel), (long long)req->grid[i], i, d->max_grid[i]);
    gpu_argval vals[128];
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
    drv->make_current(d);
    ts__gpu_event e0 = NULL, e1 = NULL;
    if (drv->event_create(c, &e0) || drv->event_create(c, &e1)) {
        if (e0) c->EventDestroy(e0);
        return ts__error(TS_ERR_DEVICE, "%s: %s failed", drv->name, drv->event_create_call);
    }
    c->EventRecord(e0, NULL);
    ts__gpu_result r = c->LaunchKernel(m->fn, (unsigned)req->grid[0], (unsigned)req->grid[1], (unsigned)req->grid[2], (unsigned)m->threads, 1, 1, 0, NULL,
                                       params, NULL);
    ts_status s = TS_OK;
    if (r) s = ts__gpu_fail(c, drv, TS_ERR_LAUNCH, r, drv->launch_call);
    else {
        c->EventRecord(e1, NULL);
        r = c->EventSynchronize(e1);
        if (r) s = ts__gpu_fail(c, drv, TS_ERR_LAUNCH, r, "running the kernel");
        else if (ms) {
            float t = 0;
            c->EventElapsedTime(&t, e0, e1);
            *ms = t;
        }
    }
    c->EventDestroy(e0);
    c->EventDestroy(e1);
    return s;
}

ts_status ts__gpu_synchronize(void *dev) {
    ts__gpu_dev *d = dev;
    d->drv->make_current(d);
    ts__gpu_result r = d->c->Synchronize();
    return r ? ts__gpu_fail(d->c, d->drv, TS_ERR_DEVICE, r, d->drv->sync_call) : TS_OK;
}
