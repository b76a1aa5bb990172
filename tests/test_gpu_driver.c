/* test_gpu_driver.c: the shared CUDA/HIP driver layer (backends/gpu_driver.c)
 * on a fake driver, since no machine here can run a CUDA or HIP kernel. The
 * fake's calls are plain functions over host memory that record what the
 * layer passes (device, caps, buffers, the kernel image, the launch's grid,
 * block and every kernel parameter's bytes), and each can be made to fail
 * (fault injection), so these tests check the argument marshalling against
 * the documented argument order (codegen/dialect.h) and the error paths.
 *
 * Pinned staging (backend v3): the fake's asynchronous copies are only
 * queued; they happen when an event recorded after them is synchronised
 * (or the context is), reading the pinned buffer as it is then. So an
 * upload that refills a slot before waiting for its copy gets wrong data
 * here, as it would on a GPU. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialect.h"
#include "gpu_driver.h"
#include "kernels.h"
#include "tessera_safetensors.h"

/* ---------------------------------------------------------------- the fake driver */

static struct {
    int fail_init, fail_alloc, fail_launch, fail_event_sync, fail_load, grid_limit;
    int nallocs;
    void *allocs[16];
    char image[64];
    char entry[128];
    unsigned grid[3], block[3], shmem;
    int launched;
    unsigned char params[128][8];
    int nparams_seen;
    /* pinned staging */
    int no_staging;                 /* leave the staging symbols out of the table */
    int fail_host_alloc;            /* the Nth cuMemHostAlloc fails (out of memory) */
    int fail_async;                 /* the Nth cuMemcpyHtoDAsync is refused */
    int fail_async_exec;            /* the Nth queued copy fails when it runs (reported at the wait) */
    int nhost, host_live, dev_live, streams, nasync;
    int queued, done, max_pending;  /* copies queued, performed; most outstanding at once */
    struct { char *dst; const char *src; size_t n; } q[4096];
} fk;

#define FAKE_STREAM ((ts__gpu_stream)(uintptr_t)0x3000)

typedef struct fake_event {
    int seq; /* copies queued before it was recorded */
} fake_event;

/* Performs queued copies up to (not including) `upto`; 700 when one of them is the failing one. */
static int fk_perform(int upto) {
    int r = 0;
    for (; fk.done < upto; fk.done++) {
        if (fk.done + 1 == fk.fail_async_exec) r = 700;
        else memcpy(fk.q[fk.done].dst, fk.q[fk.done].src, fk.q[fk.done].n);
    }
    return r;
}

static int f_init(unsigned flags) { return flags ? 1 : fk.fail_init; }
static int f_version(int *v) { return *v = 12040, 0; }
static int f_count(int *n) { return *n = 1, 0; }
static int f_name(char *s, int n, int dev) { return snprintf(s, (size_t)n, "Fake GPU %d", dev), 0; }
enum { A_THREADS = 1, A_GX = 5, A_GY = 6, A_GZ = 7, A_SHARED = 8, A_UNITS = 16 };
static int f_attr(int *v, int which, int dev) {
    (void)dev;
    switch (which) {
    case A_THREADS: *v = 1024; break;
    case A_GX: *v = fk.grid_limit ? fk.grid_limit : 2147483647; break;
    case A_GY: case A_GZ: *v = fk.grid_limit ? fk.grid_limit : 65535; break;
    case A_SHARED: *v = 49152; break;
    case A_UNITS: *v = 132; break;
    default: *v = 0; return 1;
    }
    return 0;
}
static int f_mem(size_t *n, int dev) { return (void)dev, *n = (size_t)1 << 30, 0; }
static int f_sync(void) { return fk_perform(fk.queued), 0; }
static int f_host_alloc(void **p, size_t n, unsigned flags) {
    if (flags) return 1;
    if (++fk.nhost == fk.fail_host_alloc) return 2;
    *p = malloc(n);
    fk.host_live++;
    return 0;
}
static int f_host_free(void *p) { return free(p), fk.host_live--, 0; }
static int f_stream_create(ts__gpu_stream *s, unsigned flags) { return *s = FAKE_STREAM, fk.streams++, flags != 0; }
static int f_stream_destroy(ts__gpu_stream s) { return fk_perform(fk.queued), fk.streams--, s != FAKE_STREAM; }
static int f_memcpy_async(unsigned long long dst, const void *src, size_t n, ts__gpu_stream s) {
    if (s != FAKE_STREAM || fk.queued >= 4096) return 1;
    if (++fk.nasync == fk.fail_async) return 700;
    fk.q[fk.queued].dst = (char *)(uintptr_t)dst;
    fk.q[fk.queued].src = src;
    fk.q[fk.queued].n = n;
    fk.queued++;
    if (fk.queued - fk.done > fk.max_pending) fk.max_pending = fk.queued - fk.done;
    return 0;
}
static int f_load(ts__gpu_module *m, const void *image) {
    if (fk.fail_load) return 200;
    snprintf(fk.image, sizeof fk.image, "%.60s", (const char *)image);
    *m = (ts__gpu_module)(uintptr_t)0x1000;
    return 0;
}
static int f_unload(ts__gpu_module m) { return m != (ts__gpu_module)(uintptr_t)0x1000; }
static int f_getfn(ts__gpu_function *f, ts__gpu_module m, const char *name) {
    snprintf(fk.entry, sizeof fk.entry, "%s", name);
    *f = (ts__gpu_function)(uintptr_t)0x2000;
    return m != (ts__gpu_module)(uintptr_t)0x1000;
}
/* Copies 8 bytes of each of the want_params parameters (the layer's value
 * slots are 8 bytes; the test knows the count from ts__cg_args). */
static int want_params;
static int f_launch(ts__gpu_function f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shmem, ts__gpu_stream st,
                    void **params, void **extra) {
    if (f != (ts__gpu_function)(uintptr_t)0x2000 || st || extra) return 1;
    if (fk.fail_launch) return 700;
    fk.grid[0] = gx, fk.grid[1] = gy, fk.grid[2] = gz;
    fk.block[0] = bx, fk.block[1] = by, fk.block[2] = bz;
    fk.shmem = shmem;
    for (int i = 0; i < want_params; i++) memcpy(fk.params[i], params[i], 8);
    fk.nparams_seen = want_params;
    fk.launched++;
    return 0;
}
static int f_ev_record(ts__gpu_event e, ts__gpu_stream s) {
    if (!e || (s && s != FAKE_STREAM)) return 1;
    ((fake_event *)e)->seq = fk.queued;
    return 0;
}
static int f_ev_sync(ts__gpu_event e) {
    if (!e) return 1;
    int r = fk_perform(((fake_event *)e)->seq);
    return r ? r : fk.fail_event_sync;
}
static int f_ev_elapsed(float *ms, ts__gpu_event a, ts__gpu_event b) { return *ms = 1.5f, !a || !b; }
static int f_ev_destroy(ts__gpu_event e) { return free(e), 0; }
static const char *f_errstr(int r) { return r == 2 ? "fakeErrorOutOfMemory" : r == 700 ? "fakeErrorIllegalAddress" : "fakeError"; }

static void fk_describe_error(const ts__gpu_calls *c, ts__gpu_result r, char *buf, size_t n) { snprintf(buf, n, "%s (%d)", f_errstr(r), r); }
static ts__gpu_result fk_open(ts__gpu_dev *d) {
    d->dev = d->index;
    return 0;
}
static ts__gpu_result fk_current(const ts__gpu_dev *d) { return (void)d, 0; }
static void fk_describe(ts__gpu_dev *d, ts_device_caps *caps, ts_fingerprint *fp) {
    (void)caps;
    snprintf(d->arch, sizeof d->arch, "sm_90");
    snprintf(fp->driver, sizeof fp->driver, "fake%d", d->st->version);
    snprintf(fp->device_version, sizeof fp->device_version, "cc9.0");
}
static ts__gpu_result fk_alloc(const ts__gpu_calls *c, size_t n, void **buf) {
    (void)c;
    if (fk.fail_alloc) return 2;
    *buf = calloc(1, n ? n : 1);
    if (fk.nallocs < 16) fk.allocs[fk.nallocs++] = *buf;
    fk.dev_live++;
    return 0;
}
static ts__gpu_result fk_free(const ts__gpu_calls *c, void *buf) { return (void)c, free(buf), fk.dev_live--, 0; }
static ts__gpu_result fk_to_dev(const ts__gpu_calls *c, void *buf, size_t off, const void *src, size_t n) {
    return (void)c, memcpy((char *)buf + off, src, n), 0;
}
static ts__gpu_result fk_to_host(const ts__gpu_calls *c, void *dst, void *buf, size_t off, size_t n) {
    return (void)c, memcpy(dst, (char *)buf + off, n), 0;
}
static ts__gpu_result fk_event(const ts__gpu_calls *c, ts__gpu_event *e) { return (void)c, *e = calloc(1, sizeof(fake_event)), 0; }
static ts__gpu_result fk_to_dev_async(const ts__gpu_calls *c, void *buf, size_t off, const void *src, size_t n, ts__gpu_stream s) {
    return c->MemcpyHtoDAsync((unsigned long long)(uintptr_t)buf + off, src, n, s);
}
static ts_status fk_build(const ts__gpu_dev *d, const char *source, char **image, size_t *n) {
    (void)d;
    *image = strdup(source);
    *n = strlen(source);
    return TS_OK;
}
static const char *fk_rtc(char *why, size_t n) { return (void)why, (void)n, "fake"; }

static const ts__gpu_driver fake_driver = {
    .name = "fakegpu", .label = "FAKE", .vendor = "Fake", .lib_names = NULL, .nlib_names = 0, .no_lib = "no fake driver",
    .no_sym = "no ", .no_sym_suffix = "", .syms = NULL, .nsyms = 0, .init_prefix = "fakegpu: ", .init_call = "fakeInit", .init_hint = "",
    .rtc_missing = "driver", .rtc_available = fk_rtc, .attr_grid = {A_GX, A_GY, A_GZ}, .attr_max_threads = A_THREADS, .attr_shared = A_SHARED,
    .attr_units = A_UNITS, .default_group_size = 1024, .default_grid = {2147483647, 65535, 65535}, .open_call = "fakeOpen", .alloc_call = "fakeAlloc",
    .write_call = "fakeWrite", .read_call = "fakeRead", .load_call = "fakeModuleLoad", .get_function_call = "fakeGetFunction",
    .launch_call = "fakeLaunch", .event_create_call = "fakeEventCreate", .sync_call = "fakeSync", .bin_prefix = "fake", .bin_ext = "bin",
    .bin_magic = "TSFAKE01", .bin_key_option = "", .describe_error = fk_describe_error, .open = fk_open, .release = NULL, .make_current = fk_current,
    .describe = fk_describe, .mem_alloc = fk_alloc, .mem_free = fk_free, .copy_to_device = fk_to_dev, .copy_to_host = fk_to_host,
    .event_create = fk_event, .build = fk_build, .staging_call = "fakeMemHostAlloc", .write_async_call = "fakeMemcpyHtoDAsync",
    .copy_to_device_async = fk_to_dev_async,
};

/* The backend: the layer's entries over a state whose call table holds the
 * fakes (ts__gpu_init would dlopen a library; its own paths are tested
 * below with libraries that lack the symbols). */
static ts_status fake_init(void **state) {
    ts__gpu_state *st = calloc(1, sizeof *st);
    st->drv = &fake_driver;
    ts__gpu_calls *c = &st->c;
    c->Init = f_init;
    c->Version = f_version;
    c->DeviceCount = f_count;
    c->DeviceGetName = f_name;
    c->DeviceGetAttribute = f_attr;
    c->DeviceTotalMem = f_mem;
    c->Synchronize = f_sync;
    c->ModuleLoadData = f_load;
    c->ModuleUnload = f_unload;
    c->ModuleGetFunction = f_getfn;
    c->LaunchKernel = f_launch;
    c->EventRecord = f_ev_record;
    c->EventSynchronize = f_ev_sync;
    c->EventElapsedTime = f_ev_elapsed;
    c->EventDestroy = f_ev_destroy;
    if (!fk.no_staging) {
        c->HostAlloc = f_host_alloc;
        c->HostFree = f_host_free;
        c->StreamCreate = f_stream_create;
        c->StreamDestroy = f_stream_destroy;
        c->MemcpyHtoDAsync = f_memcpy_async;
    }
    if (c->Init(0)) {
        free(st);
        return ts__error(TS_ERR_UNAVAILABLE, "fake init failed");
    }
    c->Version(&st->version);
    c->DeviceCount(&st->ndevices);
    *state = st;
    return TS_OK;
}
static void fake_shutdown(void *state) { free(state); }

static ts_backend fake_backend = TS__GPU_BACKEND("fakegpu", TS_DIALECT_CUDA, fake_init);

static void setup(void) {
    memset(&fk, 0, sizeof fk);
    fake_backend.shutdown = fake_shutdown;
    cr_assert_eq(ts_backend_register(&fake_backend), TS_OK, "%s", ts_last_error());
    setenv("TESSERA_CACHE_DIR", "/nonexistent-tessera-cache", 1); /* no binary cache: every compile builds */
}

/* ---------------------------------------------------------------- helpers */

typedef struct run {
    ts_context *ctx;
    ts_kernel *k;
    ts_tensor *t[8];
    int np;
    ts_arg args[8];
    int64_t shape[8][TS_MAX_RANK];
    int rank[8];
} run;

/* Builds example `name` (f32), makes its tensors at the first size set with
 * scalars 0.5 (float) / 3 (int), launches it with the defaults. */
static ts_status launch_example(run *r, const char *name, const char *sizes, double *ms) {
    memset(r, 0, sizeof *r);
    const ts_example *ex = ts_example_find(name);
    cr_assert(ex);
    ts_ex_sizes sz;
    cr_assert_eq(ts_ex_parse_sizes(sizes, &sz), TS_OK);
    cr_assert_eq(ts_context_create("fakegpu", 0, &r->ctx), TS_OK, "%s", ts_last_error());
    cr_assert_eq(ex->build(TS_F32, &r->k), TS_OK);
    r->np = ts_kernel_param_count(r->k);
    for (int p = 0; p < r->np; p++) {
        ts_param_info pi;
        ts_kernel_param(r->k, p, &pi);
        if (!pi.is_tensor) {
            r->args[p] = ts_dtype_is_float(pi.dtype) ? TS_ARG_F(0.5) : TS_ARG_I(3);
            continue;
        }
        r->rank[p] = pi.rank;
        for (int d = 0; d < pi.rank; d++) r->shape[p][d] = pi.size_names[d] ? ts_ex_size(&sz, pi.size_names[d]) : pi.fixed_sizes[d];
        cr_assert_eq(ts_tensor_create(r->ctx, pi.dtype, pi.rank, r->shape[p], &r->t[p]), TS_OK, "%s", ts_last_error());
        r->args[p] = TS_ARG_TENSOR(r->t[p]);
    }
    ts_config *cfg = NULL;
    cr_assert_eq(ts_config_create(&cfg), TS_OK);
    want_params = ts__cg_args(&r->k->ir, (ts__cg_arg[128]){0}, 128);
    ts_status s = ts_launch(r->ctx, r->k, cfg, r->args, r->np, ms);
    ts_config_destroy(cfg);
    return s;
}

static void run_free(run *r) {
    for (int p = 0; p < 8; p++) ts_tensor_destroy(r->t[p]);
    ts_kernel_destroy(r->k);
    ts_context_destroy(r->ctx);
}

/* Checks each recorded parameter against the documented order: per
 * parameter, a tensor's buffer (the address the fake allocated for it), its
 * element offset and contiguous strides as i64; a scalar's value; then the
 * named sizes as i64. */
static void check_params(const run *r, const ts_ex_sizes *sz) {
    ts__cg_arg a[128];
    int n = ts__cg_args(&r->k->ir, a, 128);
    cr_assert_eq(fk.nparams_seen, n);
    int tensor_no = 0, tensor_of[8];
    for (int p = 0; p < r->np; p++) tensor_of[p] = r->t[p] ? tensor_no++ : -1;
    int si = 0;
    for (int i = 0; i < n; i++) {
        const unsigned char *v = fk.params[i];
        long long i64;
        memcpy(&i64, v, 8);
        if (a[i].kind == TS__ARG_BUFFER) {
            void *want = fk.allocs[tensor_of[a[i].param]], *got;
            memcpy(&got, v, sizeof got);
            cr_expect_eq(got, want, "arg %d: buffer of param %d", i, a[i].param);
        } else if (a[i].kind == TS__ARG_I64 && a[i].param >= 0) {
            int p = a[i].param;
            long long want = 0;
            if (a[i].what >= 0) {
                want = 1;
                for (int d = a[i].what + 1; d < r->rank[p]; d++) want *= r->shape[p][d];
            }
            cr_expect_eq(i64, want, "arg %d: %s of param %d", i, a[i].what < 0 ? "offset" : "stride", p);
        } else if (a[i].kind == TS__ARG_I64) {
            (void)sz;
            cr_expect_gt(i64, 0, "arg %d: size %d", i, si);
            si++;
        } else if (a[i].kind == TS__ARG_F32) {
            float f;
            memcpy(&f, v, 4);
            cr_expect_eq(f, 0.5f, "arg %d: f32 scalar", i);
        } else if (a[i].kind == TS__ARG_F64) {
            double f;
            memcpy(&f, v, 8);
            cr_expect_eq(f, 0.5, "arg %d: f64 scalar", i);
        } else {
            int x;
            memcpy(&x, v, 4);
            cr_expect_eq(x, 3, "arg %d: i32 scalar", i);
        }
    }
}

/* ---------------------------------------------------------------- tests */

TestSuite(gpu_driver, .init = setup);

Test(gpu_driver, device_caps_and_fingerprint_come_from_the_attributes) {
    ts_context *ctx;
    cr_assert_eq(ts_context_create("fakegpu", 0, &ctx), TS_OK, "%s", ts_last_error());
    const ts_device_caps *caps = ts_context_caps(ctx);
    cr_expect_eq(caps->max_group_size, 1024);
    cr_expect_eq(caps->shared_mem_bytes, 49152);
    cr_expect_eq(caps->compute_units, 132);
    cr_expect_eq(caps->global_mem_bytes, (int64_t)1 << 30);
    ts_context_destroy(ctx);
}

Test(gpu_driver, add_launch_passes_buffers_offsets_strides_and_sizes_in_order) {
    run r;
    double ms = 0;
    cr_assert_eq(launch_example(&r, "add", "M=7,N=13", &ms), TS_OK, "%s", ts_last_error());
    cr_expect_eq(fk.launched, 1);
    cr_expect_eq(ms, 1.5);
    cr_expect(fk.entry[0], "no entry name asked for");
    cr_expect(fk.image[0], "no image loaded");
    cr_expect_gt(fk.block[0], 0u);
    cr_expect_eq(fk.block[1], 1u);
    cr_expect_eq(fk.block[2], 1u);
    cr_expect_eq(fk.shmem, 0u);
    /* add: x (buffer, offset, 2 strides), bias (buffer, offset, stride), y (4), M, N */
    cr_expect_eq(fk.nparams_seen, 13);
    long long m, nn;
    memcpy(&m, fk.params[11], 8);
    memcpy(&nn, fk.params[12], 8);
    cr_expect_eq(m, 7);
    cr_expect_eq(nn, 13);
    ts_ex_sizes sz;
    ts_ex_parse_sizes("M=7,N=13", &sz);
    check_params(&r, &sz);
    run_free(&r);
}

Test(gpu_driver, scalars_are_passed_by_kind) {
    const char *names[] = {"layer_norm", "attention"}, *sizes[] = {"M=5,N=9", "H=2,S=7,T=7,D=13"};
    for (int i = 0; i < 2; i++) {
        memset(&fk, 0, sizeof fk);
        run r;
        cr_assert_eq(launch_example(&r, names[i], sizes[i], NULL), TS_OK, "%s: %s", names[i], ts_last_error());
        ts_ex_sizes sz;
        ts_ex_parse_sizes(sizes[i], &sz);
        check_params(&r, &sz);
        run_free(&r);
    }
}

Test(gpu_driver, tensor_data_round_trips_through_the_copies) {
    ts_context *ctx;
    ts_tensor *t;
    cr_assert_eq(ts_context_create("fakegpu", 0, &ctx), TS_OK);
    cr_assert_eq(ts_tensor_create(ctx, TS_F32, 1, (int64_t[]){5}, &t), TS_OK);
    float in[5] = {1, 2, 3, 4, 5}, out[5] = {0};
    cr_assert_eq(ts_tensor_write(t, in, sizeof in), TS_OK);
    cr_assert_eq(ts_tensor_read(t, out, sizeof out), TS_OK);
    cr_expect_arr_eq(in, out, sizeof in);
    ts_tensor_destroy(t);
    ts_context_destroy(ctx);
}

Test(gpu_driver, faults_come_back_as_statuses_with_the_driver_error) {
    run r;
    fk.fail_launch = 1;
    cr_assert_eq(launch_example(&r, "add", "M=7,N=13", NULL), TS_ERR_LAUNCH);
    cr_expect(strstr(ts_last_error(), "fakegpu: fakeLaunch failed: fakeErrorIllegalAddress (700)"), "%s", ts_last_error());
    run_free(&r);
    memset(&fk, 0, sizeof fk);
    fk.fail_event_sync = 719;
    cr_assert_eq(launch_example(&r, "add", "M=7,N=13", NULL), TS_ERR_LAUNCH);
    cr_expect(strstr(ts_last_error(), "fakegpu: running the kernel failed: fakeError (719)"), "%s", ts_last_error());
    run_free(&r);
    memset(&fk, 0, sizeof fk);
    fk.fail_load = 1;
    cr_assert_eq(launch_example(&r, "add", "M=7,N=13", NULL), TS_ERR_COMPILE);
    cr_expect(strstr(ts_last_error(), "fakegpu: fakeModuleLoad failed"), "%s", ts_last_error());
    run_free(&r);
    memset(&fk, 0, sizeof fk);
    ts_context *ctx;
    ts_tensor *t = NULL;
    cr_assert_eq(ts_context_create("fakegpu", 0, &ctx), TS_OK);
    fk.fail_alloc = 1;
    cr_expect_eq(ts_tensor_create(ctx, TS_F32, 1, (int64_t[]){5}, &t), TS_ERR_OUT_OF_MEMORY);
    cr_expect(strstr(ts_last_error(), "fakegpu: fakeAlloc failed: fakeErrorOutOfMemory (2)"), "%s", ts_last_error());
    ts_context_destroy(ctx);
}

Test(gpu_driver, a_grid_past_the_device_limit_is_refused) {
    run r;
    fk.grid_limit = 1; /* every grid dim: 1 program */
    cr_assert_eq(launch_example(&r, "add", "M=100,N=1000", NULL), TS_ERR_LIMIT);
    cr_expect(strstr(ts_last_error(), "fakegpu: kernel 'add' needs"), "%s", ts_last_error());
    cr_expect_eq(fk.launched, 0);
    run_free(&r);
}

/* ts__gpu_init's own paths: a library that is missing, one without the symbols. */
static const char *const missing_lib[] = {"libtessera-no-such-driver.so.1"};
static const char *const libc_lib[] = {"libc.so.6"};
static const ts__gpu_sym needs_init[] = {TS__GPU_SYM(ts__gpu_calls, Init, "fakeInitNotInLibc", NULL, 1)};

Test(gpu_driver, init_reports_a_missing_library_and_a_missing_symbol) {
    ts__gpu_driver d = fake_driver;
    void *st = NULL;
    d.lib_names = missing_lib;
    d.nlib_names = 1;
    cr_expect_eq(ts__gpu_init(&d, &st), TS_ERR_UNAVAILABLE);
    cr_expect(strstr(ts_last_error(), "no fake driver: cannot load libtessera-no-such-driver.so.1"), "%s", ts_last_error());
    cr_expect_null(st);
    d.lib_names = libc_lib;
    d.syms = needs_init;
    d.nsyms = 1;
    cr_expect_eq(ts__gpu_init(&d, &st), TS_ERR_UNAVAILABLE);
    cr_expect(strstr(ts_last_error(), "no fakeInitNotInLibc"), "%s", ts_last_error());
    cr_expect_null(st);
}

/* ---------------------------------------------------------------- staged Safetensors uploads */

/* A file whose tensors, sorted by name, take these copies with 4 KiB slots:
 * a_small 1 (copy 1), b_big 3 (2-4), c_bf16 3 (5-7: 3000 bf16 -> 12000
 * bytes of f32), d_exact 1 (8), e_f16 1 (9), then s00..s19 one each. */
#define SLOT 4096
static void *staged_file(size_t *n) {
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    unsigned char *buf = malloc(12000);
    for (int k = 0; k < 12000; k++) buf[k] = (unsigned char)(k * 7 + 3);
    uint16_t *h = malloc(3000 * 2);
    for (int k = 0; k < 3000; k++) h[k] = ts__float_to_bf16((float)(k - 1500) * 0.375f);
    cr_assert_eq(ts_st_writer_add(w, "a_small", TS_ST_F32, 1, (uint64_t[]){25}, buf, 100), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "b_big", TS_ST_F32, 2, (uint64_t[]){50, 50}, buf + 1, 10000), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "c_bf16", TS_ST_BF16, 1, (uint64_t[]){3000}, h, 6000), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "d_exact", TS_ST_F32, 1, (uint64_t[]){1024}, buf + 2, SLOT), TS_OK);
    for (int k = 0; k < 500; k++) h[k] = ts__float_to_half((float)(k - 250) * 0.125f);
    cr_assert_eq(ts_st_writer_add(w, "e_f16", TS_ST_F16, 1, (uint64_t[]){500}, h, 1000), TS_OK);
    for (int i = 0; i < 20; i++) {
        char name[8];
        snprintf(name, sizeof name, "s%02d", i);
        cr_assert_eq(ts_st_writer_add(w, name, TS_ST_F32, 1, (uint64_t[]){(uint64_t)(i + 1)}, buf + 3 + i, (size_t)(i + 1) * 4), TS_OK);
    }
    void *img;
    cr_assert_eq(ts_st_writer_serialize(w, &img, n), TS_OK);
    ts_st_writer_destroy(w);
    free(buf);
    free(h);
    return img;
}

static ts_st_upload_options staged_options(void) {
    ts_st_upload_options o = TS_ST_UPLOAD_OPTIONS_INIT;
    o.convert = TS_ST_CONVERT_ALWAYS;
    o.chunk_bytes = SLOT;
    return o;
}

/* Every tensor of the set against the file: raw bytes identical, f16/bf16
 * as the library's scalar converters give them. */
static void check_set(const ts_st_file *f, const ts_st_tensor_set *set) {
    cr_assert_eq(ts_st_tensor_set_count(set), ts_st_count(f));
    for (size_t i = 0; i < ts_st_count(f); i++) {
        ts_st_tensor_info info;
        ts_st_tensor_at(f, i, &info);
        ts_tensor *t = ts_st_tensor_set_find(set, info.name);
        cr_assert(t, "%s missing", info.name);
        int conv = info.dtype == TS_ST_F16 || info.dtype == TS_ST_BF16;
        size_t nb = conv ? (size_t)info.numel * 4 : info.nbytes;
        unsigned char *got = malloc(nb), *want = malloc(nb);
        cr_assert_eq(ts_tensor_read(t, got, nb), TS_OK, "%s", ts_last_error());
        if (!conv) memcpy(want, info.data, nb);
        for (size_t k = 0; conv && k < (size_t)info.numel; k++) {
            uint16_t h;
            memcpy(&h, (const char *)info.data + 2 * k, 2);
            float v = info.dtype == TS_ST_F16 ? ts__half_to_float(h) : ts__bf16_to_float(h);
            memcpy(want + 4 * k, &v, 4);
        }
        cr_expect_eq(memcmp(got, want, nb), 0, "%s differs after the staged upload", info.name);
        free(got);
        free(want);
    }
}

Test(gpu_driver, staged_upload_matches_the_file_through_a_reused_ring_of_three) {
    size_t n;
    void *img = staged_file(&n);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(img, n, &f), TS_OK);
    ts_context *ctx;
    cr_assert_eq(ts_context_create("fakegpu", 0, &ctx), TS_OK, "%s", ts_last_error());
    ts_st_upload_options o = staged_options();
    ts_st_tensor_set *set = NULL;
    cr_assert_eq(ts_st_upload_file(ctx, f, &o, &set), TS_OK, "%s", ts_last_error());
    cr_expect_eq(fk.nhost, 3, "pinned buffers allocated: %d", fk.nhost);
    cr_expect_eq(fk.host_live, 0, "the ring is freed after the upload");
    cr_expect_eq(fk.queued, 29, "one copy per slot-sized piece");
    cr_expect_eq(fk.done, fk.queued, "every copy waited for before the upload returns");
    cr_expect_geq(fk.max_pending, 2, "copies overlap the filling of the next slot");
    check_set(f, set);
    ts_st_tensor_set_destroy(set);
    /* ring_slots 5: five buffers */
    memset(&fk, 0, sizeof fk);
    o.ring_slots = 5;
    cr_assert_eq(ts_st_upload_file(ctx, f, &o, &set), TS_OK, "%s", ts_last_error());
    cr_expect_eq(fk.nhost, 5);
    cr_expect_eq(fk.host_live, 0);
    check_set(f, set);
    ts_st_tensor_set_destroy(set);
    ts_context_destroy(ctx);
    ts_st_close(f);
    free(img);
}

Test(gpu_driver, staged_upload_of_one_tensor_and_in_parallel) {
    size_t n;
    void *img = staged_file(&n);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(img, n, &f), TS_OK);
    ts_context *ctx;
    cr_assert_eq(ts_context_create("fakegpu", 0, &ctx), TS_OK, "%s", ts_last_error());
    ts_st_upload_options o = staged_options();
    ts_st_tensor_info info;
    cr_assert_eq(ts_st_find(f, "c_bf16", &info), TS_OK);
    ts_tensor *t = NULL;
    cr_assert_eq(ts_st_upload(ctx, &info, &o, &t), TS_OK, "%s", ts_last_error());
    cr_expect_eq(fk.nhost, 3);
    cr_expect_eq(fk.host_live, 0);
    float got[3000];
    cr_assert_eq(ts_tensor_read(t, got, sizeof got), TS_OK);
    for (int k = 0; k < 3000; k++) cr_expect_eq(got[k], ts__bf16_to_float(ts__float_to_bf16((float)(k - 1500) * 0.375f)), "c_bf16[%d]", k);
    ts_tensor_destroy(t);
    /* explicit threads: a ring each, the backend called one at a time */
    memset(&fk, 0, sizeof fk);
    o.threads = 4;
    ts_st_tensor_set *set = NULL;
    cr_assert_eq(ts_st_upload_file(ctx, f, &o, &set), TS_OK, "%s", ts_last_error());
    cr_expect_leq(fk.nhost, 12);
    cr_expect_eq(fk.host_live, 0);
    check_set(f, set);
    ts_st_tensor_set_destroy(set);
    ts_context_destroy(ctx);
    ts_st_close(f);
    free(img);
}

Test(gpu_driver, without_the_staging_symbols_uploads_take_the_synchronous_copy) {
    fk.no_staging = 1;
    size_t n;
    void *img = staged_file(&n);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(img, n, &f), TS_OK);
    ts_context *ctx;
    cr_assert_eq(ts_context_create("fakegpu", 0, &ctx), TS_OK, "%s", ts_last_error());
    ts_st_upload_options o = staged_options();
    ts_st_tensor_set *set = NULL;
    cr_assert_eq(ts_st_upload_file(ctx, f, &o, &set), TS_OK, "%s", ts_last_error());
    cr_expect_eq(fk.nhost, 0);
    cr_expect_eq(fk.queued, 0);
    check_set(f, set);
    ts_st_tensor_set_destroy(set);
    ts_context_destroy(ctx);
    ts_st_close(f);
    free(img);
}

/* Uploads the staged file expecting status `want` and a message with both strings; nothing may stay allocated. */
static void staged_failure(ts_status want, const char *s1, const char *s2) {
    size_t n;
    void *img = staged_file(&n);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(img, n, &f), TS_OK);
    ts_context *ctx;
    cr_assert_eq(ts_context_create("fakegpu", 0, &ctx), TS_OK, "%s", ts_last_error());
    ts_st_upload_options o = staged_options();
    ts_st_tensor_set *set = (ts_st_tensor_set *)&o;
    cr_expect_eq(ts_st_upload_file(ctx, f, &o, &set), want, "%s", ts_last_error());
    cr_expect_null(set);
    cr_expect(strstr(ts_last_error(), s1), "%s", ts_last_error());
    cr_expect(strstr(ts_last_error(), s2), "%s", ts_last_error());
    cr_expect_eq(fk.host_live, 0, "pinned buffers left: %d", fk.host_live);
    cr_expect_eq(fk.dev_live, 0, "device buffers left: %d", fk.dev_live);
    ts_context_destroy(ctx);
    ts_st_close(f);
    free(img);
}

Test(gpu_driver, a_refused_async_copy_names_the_tensor_and_frees_everything) {
    fk.fail_async = 5; /* c_bf16's first piece */
    staged_failure(TS_ERR_DEVICE, "uploading tensor 'c_bf16' (BF16)", "fakegpu: fakeMemcpyHtoDAsync failed: fakeErrorIllegalAddress (700)");
}

Test(gpu_driver, a_failed_pinned_allocation_names_the_tensor_and_frees_everything) {
    fk.fail_host_alloc = 2; /* the second slot, for b_big's first piece */
    staged_failure(TS_ERR_OUT_OF_MEMORY, "uploading tensor 'b_big' (F32)", "fakegpu: fakeMemHostAlloc failed: fakeErrorOutOfMemory (2)");
}

Test(gpu_driver, a_copy_failing_on_the_device_names_the_tensor_that_queued_it) {
    fk.fail_async_exec = 3; /* b_big's second piece; found when its slot is refilled for c_bf16 */
    staged_failure(TS_ERR_DEVICE, "the copy of tensor 'b_big' (queued earlier)", "fakeMemcpyHtoDAsync failed: fakeErrorIllegalAddress (700)");
}

Test(gpu_driver, a_copy_failing_in_the_last_wait_names_its_tensor) {
    fk.fail_async_exec = 29; /* s19's, the last: found by the final drain */
    staged_failure(TS_ERR_DEVICE, "uploading tensor 's19' (F32)", "fakeMemcpyHtoDAsync failed");
}

/* A table that says version 2 gets no staging, whatever lies past its end. */
static ts_backend fake_backend_v2;

Test(gpu_driver, a_version_2_table_is_never_asked_to_stage) {
    fake_backend_v2 = fake_backend;
    fake_backend_v2.version = 2;
    fake_backend_v2.name = "fakegpu_v2";
    cr_assert_eq(ts_backend_register(&fake_backend_v2), TS_OK, "%s", ts_last_error());
    size_t n;
    void *img = staged_file(&n);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(img, n, &f), TS_OK);
    ts_context *ctx;
    cr_assert_eq(ts_context_create("fakegpu_v2", 0, &ctx), TS_OK, "%s", ts_last_error());
    ts_st_upload_options o = staged_options();
    ts_st_tensor_set *set = NULL;
    cr_assert_eq(ts_st_upload_file(ctx, f, &o, &set), TS_OK, "%s", ts_last_error());
    cr_expect_eq(fk.nhost, 0);
    cr_expect_eq(fk.queued, 0);
    check_set(f, set);
    ts_st_tensor_set_destroy(set);
    ts_context_destroy(ctx);
    ts_st_close(f);
    free(img);
}
