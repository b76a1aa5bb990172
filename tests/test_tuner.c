/* test_tuner.c: the autotuner and the tuning database.
 *
 * Sections: helpers (a private cache folder per test); search strategies on
 * synthetic costs with a known optimum; the database (concurrent writers,
 * bad files, fallback order, export/import, the in-process cache); a
 * fault-injecting backend (a planted wrong-result config is never chosen,
 * a second tune is a database hit, ts_launch(cfg NULL) uses the entry);
 * generic inputs for a parsed .tile kernel; PoCL (skipped without OpenCL or
 * when TESSERA_TEST_BACKENDS excludes it). */
#define _XOPEN_SOURCE 700 /* nftw */
#include <criterion/criterion.h>

#include "ir.h"
#include "kernels.h"
#include "tessera_tune.h"
#include "tuner.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* A fresh, private TESSERA_CACHE_DIR for this test; returns the tuning folder. */
static const char *fresh_cache(const char *name) {
    static char dir[1024], tuning[1100];
    snprintf(dir, sizeof dir, "%s/test-cache/tuner-%s", TS_BINARY_DIR, name);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    setenv("TESSERA_CACHE_DIR", dir, 1);
    char buf[1100];
    cr_assert_eq(ts__cache_dir("tuning", buf, sizeof buf), TS_OK, "%s", ts_last_error());
    snprintf(tuning, sizeof tuning, "%s", buf);
    ts__tune_db_cache_clear();
    return tuning;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static ts_kernel *example_kernel(const char *name) {
    ts_kernel *k = NULL;
    cr_assert_eq(ts_example_find(name)->build(TS_F32, &k), TS_OK, "%s", ts_last_error());
    return k;
}

static ts__tune_fp make_fp(uint64_t hash, const char *vendor, const char *arch) {
    ts__tune_fp fp;
    memset(&fp, 0, sizeof fp);
    snprintf(fp.id, sizeof fp.id, "fake:%s:dev%llx:%s", vendor, (unsigned long long)hash, arch);
    fp.hash = hash;
    snprintf(fp.backend, sizeof fp.backend, "fake");
    snprintf(fp.vendor, sizeof fp.vendor, "%s", vendor);
    snprintf(fp.arch, sizeof fp.arch, "%s", arch);
    snprintf(fp.device, sizeof fp.device, "dev%llx", (unsigned long long)hash);
    return fp;
}

/* Key of the 1-D example kernel `k` (x[N], y[N]) at N = n. */
static ts__tune_key key_at(const ts_kernel *k, int64_t n) {
    const int64_t shape[1] = {n};
    const int64_t *shapes[2] = {shape, shape};
    ts__tune_key key;
    cr_assert_eq(ts__tune_key_of(k, shapes, &key), TS_OK, "%s", ts_last_error());
    return key;
}

static void store(const ts__tune_fp *fp, const ts__tune_key *key, const char *config, double ms) {
    ts__tune_value v;
    memset(&v, 0, sizeof v);
    snprintf(v.config, sizeof v.config, "%s", config);
    v.ms = ms;
    v.default_ms = 2 * ms;
    cr_assert_eq(ts__tune_db_store(fp, key, &v, 0), TS_OK, "%s", ts_last_error());
}

/* ---------------------------------------------------------------- search strategies */

/* Four axes of 8 values; the optimum (cost 10) is at (5, 2, 6, 3); a
 * coupling term makes axes 0 and 1 interact; points with a0 + a1 > 12 are
 * invalid (pruned before "compiling"). */
static const int optimum[4] = {5, 2, 6, 3};
static int synthetic_evals;

static double synthetic_cost(void *user, const int *idx, int *stop) {
    (void)user, (void)stop;
    synthetic_evals++;
    double c = 10;
    for (int a = 0; a < 4; a++) c += (idx[a] - optimum[a]) * (idx[a] - optimum[a]) * (a + 1);
    double d = (idx[0] - idx[1]) - (optimum[0] - optimum[1]);
    c += 0.5 * d * d;
    if (idx[2] == 0) return INFINITY; /* a "failed compile" plateau */
    return c;
}

static int synthetic_valid(const ts__tune_space *sp, const int *idx, void *user) {
    (void)sp, (void)user;
    return idx[0] + idx[1] <= 12;
}

static void synthetic_space(ts__tune_space *sp) {
    memset(sp, 0, sizeof *sp);
    sp->naxes = 4;
    for (int a = 0; a < 4; a++) {
        snprintf(sp->axes[a].name, sizeof sp->axes[a].name, "axis%d", a);
        sp->axes[a].n = 8;
        for (int i = 0; i < 8; i++) sp->axes[a].v[i] = (int64_t)1 << i;
        sp->axes[a].def = 1;
    }
    sp->valid = synthetic_valid;
}

Test(search, exhaustive_finds_the_known_optimum) {
    ts__tune_space sp;
    synthetic_space(&sp);
    ts__search_opts o = {.strategy = TS_TUNE_EXHAUSTIVE, .effort = TS_TUNE_EFFORT_QUICK, .seed = 1};
    ts__search_result r;
    synthetic_evals = 0;
    cr_assert_eq(ts__search_run(&sp, &o, synthetic_cost, NULL, &r), TS_OK);
    cr_expect_eq(r.used, TS_TUNE_EXHAUSTIVE);
    cr_expect_eq(r.best_cost, 10.0);
    cr_expect_arr_eq(r.best, optimum, sizeof optimum);
    int64_t valid = ts__tune_space_count_valid(&sp, 1 << 20);
    cr_expect_eq(r.evals, (int)valid, "exhaustive evaluates every valid point once (%d of %lld)", r.evals, (long long)valid);
    cr_expect_eq(synthetic_evals, r.evals);
    cr_expect_lt(valid, 4096, "the constraint pruned points");
}

Test(search, guided_is_within_10_percent_with_fewer_evaluations) {
    ts__tune_space sp;
    synthetic_space(&sp);
    int64_t valid = ts__tune_space_count_valid(&sp, 1 << 20);
    for (uint64_t seed = 1; seed <= 5; seed++) {
        ts__search_opts o = {.strategy = TS_TUNE_GUIDED, .effort = TS_TUNE_EFFORT_QUICK, .seed = seed};
        ts__search_result r;
        cr_assert_eq(ts__search_run(&sp, &o, synthetic_cost, NULL, &r), TS_OK);
        cr_expect_eq(r.used, TS_TUNE_GUIDED);
        cr_expect_leq(r.best_cost, 11.0, "seed %llu: guided best %g, optimum 10", (unsigned long long)seed, r.best_cost);
        cr_expect_lt(r.evals * 10, valid, "seed %llu: guided used %d evaluations of %lld points", (unsigned long long)seed, r.evals, (long long)valid);
    }
    /* the full effort climbs from more starts and still finds it */
    ts__search_opts o = {.strategy = TS_TUNE_GUIDED, .effort = TS_TUNE_EFFORT_FULL, .seed = 3, .max_evals = 400};
    ts__search_result r;
    cr_assert_eq(ts__search_run(&sp, &o, synthetic_cost, NULL, &r), TS_OK);
    cr_expect_eq(r.best_cost, 10.0);
    cr_expect_leq(r.evals, 400);
}

Test(search, random_and_auto_respect_limits) {
    ts__tune_space sp;
    synthetic_space(&sp);
    ts__search_opts o = {.strategy = TS_TUNE_RANDOM, .effort = TS_TUNE_EFFORT_QUICK, .seed = 9, .max_evals = 50};
    ts__search_result r;
    synthetic_evals = 0;
    cr_assert_eq(ts__search_run(&sp, &o, synthetic_cost, NULL, &r), TS_OK);
    cr_expect_eq(r.evals, 50);
    cr_expect_eq(synthetic_evals, 50, "random never repeats a point");
    cr_expect(r.stopped);
    cr_expect(isfinite(r.best_cost));
    /* AUTO: exhaustive for a small space */
    sp.axes[2].n = sp.axes[3].n = 1;
    sp.axes[0].n = sp.axes[1].n = 4;
    ts__search_opts a = {.strategy = TS_TUNE_AUTO, .effort = TS_TUNE_EFFORT_QUICK, .seed = 1};
    cr_assert_eq(ts__search_run(&sp, &a, synthetic_cost, NULL, &r), TS_OK);
    cr_expect_eq(r.used, TS_TUNE_EXHAUSTIVE);
    cr_expect_eq(r.evals, 16);
}

/* ---------------------------------------------------------------- the database */

Test(db, two_concurrent_writers_lose_nothing) {
    fresh_cache("concurrent");
    ts_kernel *k = example_kernel("exp");
    ts__tune_fp fp = make_fp(0x1111222233334444ull, "V", "a1");
    pid_t pid[2];
    for (int w = 0; w < 2; w++) {
        pid[w] = fork();
        cr_assert_geq(pid[w], 0);
        if (pid[w] == 0) {
            for (int i = 0; i < 50; i++) {
                ts__tune_key key = key_at(k, 100 + 7 * i);
                key.kernel_hash += (uint64_t)(w * 50 + i); /* 100 distinct keys */
                ts__tune_value v;
                memset(&v, 0, sizeof v);
                snprintf(v.config, sizeof v.config, "BLOCK=%d", 16 << (i % 8));
                v.ms = 1 + i;
                if (ts__tune_db_store(&fp, &key, &v, 0) != TS_OK) _exit(1);
            }
            _exit(0);
        }
    }
    for (int w = 0; w < 2; w++) {
        int st;
        cr_assert_eq(waitpid(pid[w], &st, 0), pid[w]);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %d failed", w);
    }
    ts_tune_db_entry *e;
    int n;
    cr_assert_eq(ts_tune_db_list(NULL, &e, &n), TS_OK, "%s", ts_last_error());
    cr_expect_eq(n, 100, "both writers' 50 entries are present (%d)", n);
    free(e);
    ts_kernel_destroy(k);
}

static void expect_ignored(const char *tuning, const char *content, const char *reason) {
    ts_kernel *k = example_kernel("exp");
    ts__tune_fp fp = make_fp(0xabcdef0123456789ull, "V", "a1");
    char path[1200];
    snprintf(path, sizeof path, "%s/abcdef0123456789.json", tuning);
    write_text(path, content);
    ts__tune_key key = key_at(k, 1000);
    int before;
    ts__tune_db_last_warning(&before);
    ts__tune_value v;
    for (int i = 0; i < 3; i++) cr_expect_eq(ts__tune_db_find(&fp, &key, 0, NULL, NULL, &v), TS__TUNE_MISS);
    int after;
    const char *w = ts__tune_db_last_warning(&after);
    cr_expect_eq(after, before + 1, "%s: reported exactly once (%d -> %d)", reason, before, after);
    cr_expect(strstr(w, reason) != NULL, "warning '%s' should say '%s'", w, reason);
    cr_expect(strstr(w, "abcdef0123456789.json") != NULL, "warning names the file: %s", w);
    /* listing skips it; storing replaces it and keeps the bad one aside */
    ts_tune_db_entry *e;
    int n;
    cr_expect_eq(ts_tune_db_list(NULL, &e, &n), TS_OK);
    cr_expect_eq(n, 0);
    free(e);
    store(&fp, &key, "BLOCK=256", 1.0);
    cr_expect_eq(ts__tune_db_find(&fp, &key, 0, NULL, NULL, &v), TS__TUNE_EXACT);
    cr_expect_str_eq(v.config, "BLOCK=256");
    char bad[1300];
    snprintf(bad, sizeof bad, "%s.bad", path);
    cr_expect_eq(access(bad, F_OK), 0, "the bad file is kept as %s", bad);
    remove(bad);
    remove(path);
    ts_kernel_destroy(k);
}

Test(db, corrupt_truncated_foreign_and_duplicate_files_are_ignored) {
    const char *tuning = fresh_cache("corrupt");
    expect_ignored(tuning, "{\"format\": \"tessera-tuning\", \"vers", "corrupt JSON");
    expect_ignored(tuning, "\x01\x02garbage\xff", "corrupt JSON");
    expect_ignored(tuning, "", "empty file");
    /* a whole, valid database written by another device under this name */
    ts_kernel *k = example_kernel("exp");
    ts__tune_fp other = make_fp(0x9999999999999999ull, "V", "a1");
    ts__tune_key key = key_at(k, 1000);
    store(&other, &key, "BLOCK=64", 1.0);
    char src[1200], text[8192];
    snprintf(src, sizeof src, "%s/9999999999999999.json", tuning);
    FILE *f = fopen(src, "rb");
    cr_assert(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    remove(src);
    expect_ignored(tuning, text, "foreign file");
    /* truncated: the same file cut in half */
    text[n / 2] = 0;
    expect_ignored(tuning, text, "corrupt JSON");
    /* duplicate keys */
    expect_ignored(tuning,
                   "{\"format\": \"tessera-tuning\", \"version\": 1, \"format\": \"tessera-tuning\", \"fingerprint\": \"x\","
                   " \"fingerprint_hash\": \"abcdef0123456789\", \"backend\": \"fake\", \"vendor\": \"V\", \"arch\": \"a1\", \"entries\": {}}",
                   "duplicate");
    expect_ignored(tuning, "[1, 2, 3]", "not a JSON object");
    expect_ignored(tuning, "{\"format\": \"something-else\"}", "not a Tessera tuning database");
    ts_kernel_destroy(k);
}

Test(db, lookup_falls_back_nearest_bucket_then_sibling_device) {
    fresh_cache("fallback");
    ts_kernel *k = example_kernel("exp");
    ts__tune_fp me = make_fp(0x00000000000000a1ull, "Vendor", "arch1");
    ts__tune_fp sibling = make_fp(0x00000000000000b2ull, "Vendor", "arch1");
    ts__tune_fp stranger = make_fp(0x00000000000000c3ull, "Other", "arch1");
    ts__tune_fp other_arch = make_fp(0x00000000000000d4ull, "Vendor", "arch2");
    ts__tune_key want = key_at(k, 1000); /* bucket N=1024 */
    ts__tune_value v;

    cr_expect_eq(ts__tune_db_find(&me, &want, 0, NULL, NULL, &v), TS__TUNE_MISS, "nothing stored");
    store(&stranger, &want, "BLOCK=16", 1.0);
    store(&other_arch, &want, "BLOCK=32", 1.0);
    cr_expect_eq(ts__tune_db_find(&me, &want, 0, NULL, NULL, &v), TS__TUNE_MISS, "other vendor or arch never match");

    ts__tune_key far = key_at(k, 100000);
    store(&sibling, &far, "BLOCK=4096", 1.0);
    cr_expect_eq(ts__tune_db_find(&me, &want, 0, NULL, NULL, &v), TS__TUNE_SIBLING);
    cr_expect_str_eq(v.config, "BLOCK=4096");
    store(&sibling, &want, "BLOCK=2048", 1.0);
    cr_expect_eq(ts__tune_db_find(&me, &want, 0, NULL, NULL, &v), TS__TUNE_SIBLING);
    cr_expect_str_eq(v.config, "BLOCK=2048", "the sibling's exact bucket before its nearest");

    ts__tune_key b256 = key_at(k, 200), b2048 = key_at(k, 2000);
    store(&me, &b256, "BLOCK=128", 1.0);
    cr_expect_eq(ts__tune_db_find(&me, &want, 0, NULL, NULL, &v), TS__TUNE_NEAREST, "own nearest bucket before any sibling");
    cr_expect_str_eq(v.config, "BLOCK=128");
    store(&me, &b2048, "BLOCK=512", 1.0);
    cr_expect_eq(ts__tune_db_find(&me, &want, 0, NULL, NULL, &v), TS__TUNE_NEAREST);
    cr_expect_str_eq(v.config, "BLOCK=512", "2048 is one doubling away, 256 two");
    cr_expect_eq(ts__tune_db_find(&me, &want, 1, NULL, NULL, &v), TS__TUNE_MISS, "exact_only stops at level 1");

    store(&me, &want, "BLOCK=1024", 1.0);
    cr_expect_eq(ts__tune_db_find(&me, &want, 0, NULL, NULL, &v), TS__TUNE_EXACT);
    cr_expect_str_eq(v.config, "BLOCK=1024");
    /* other dtypes or kernels never match */
    ts__tune_key other_k = want;
    other_k.kernel_hash ^= 1;
    ts_kernel_destroy(k);
    fresh_cache("fallback2");
    store(&me, &other_k, "BLOCK=64", 1.0);
    cr_expect_eq(ts__tune_db_find(&me, &want, 0, NULL, NULL, &v), TS__TUNE_MISS);
}

Test(db, faster_entry_wins_and_export_import_merge) {
    const char *tuning = fresh_cache("export");
    ts_kernel *k = example_kernel("exp");
    ts__tune_fp a = make_fp(0x0aull, "V", "x"), b = make_fp(0x0bull, "V", "y");
    ts__tune_key k1 = key_at(k, 1000), k2 = key_at(k, 5000);
    store(&a, &k1, "BLOCK=256", 2.0);
    store(&a, &k1, "BLOCK=512", 3.0); /* slower: the stored one stays */
    ts__tune_value v;
    cr_expect_eq(ts__tune_db_find(&a, &k1, 1, NULL, NULL, &v), TS__TUNE_EXACT);
    cr_expect_str_eq(v.config, "BLOCK=256");
    store(&a, &k1, "BLOCK=1024", 1.0); /* faster: replaces it */
    cr_expect_eq(ts__tune_db_find(&a, &k1, 1, NULL, NULL, &v), TS__TUNE_EXACT);
    cr_expect_str_eq(v.config, "BLOCK=1024");
    store(&b, &k2, "BLOCK=64", 1.0);
    char out[1200];
    snprintf(out, sizeof out, "%s/../export.json", tuning);
    int count = 0;
    cr_assert_eq(ts_tune_db_export(out, NULL, &count), TS_OK, "%s", ts_last_error());
    cr_expect_eq(count, 2);
    /* wipe, then import */
    char p[1200];
    snprintf(p, sizeof p, "%s/000000000000000a.json", tuning);
    cr_expect_eq(remove(p), 0);
    snprintf(p, sizeof p, "%s/000000000000000b.json", tuning);
    cr_expect_eq(remove(p), 0);
    cr_assert_eq(ts_tune_db_import(out, 1, &count), TS_OK, "%s", ts_last_error());
    cr_expect_eq(count, 2);
    ts_tune_db_entry *e;
    int n;
    cr_assert_eq(ts_tune_db_list(NULL, &e, &n), TS_OK);
    cr_expect_eq(n, 2);
    free(e);
    /* merge: a faster local entry survives a slower import; replace overwrites */
    store(&a, &k1, "BLOCK=2048", 0.5);
    cr_assert_eq(ts_tune_db_import(out, 1, &count), TS_OK);
    cr_expect_eq(ts__tune_db_find(&a, &k1, 1, NULL, NULL, &v), TS__TUNE_EXACT);
    cr_expect_str_eq(v.config, "BLOCK=2048");
    cr_assert_eq(ts_tune_db_import(out, 0, &count), TS_OK);
    cr_expect_eq(ts__tune_db_find(&a, &k1, 1, NULL, NULL, &v), TS__TUNE_EXACT);
    cr_expect_str_eq(v.config, "BLOCK=1024");
    /* a corrupt import is refused and changes nothing */
    write_text(out, "{\"format\": \"tessera-tuning-export\", \"version\": 1, \"databases\": [{\"format\": 3}]}");
    cr_expect_eq(ts_tune_db_import(out, 1, &count), TS_ERR_CORRUPT);
    cr_expect(strstr(ts_last_error(), "nothing imported") != NULL, "%s", ts_last_error());
    write_text(out, "not json");
    cr_expect_eq(ts_tune_db_import(out, 1, &count), TS_ERR_CORRUPT);
    ts_kernel_destroy(k);
}

/* ---------------------------------------------------------------- a fault-injecting backend */

/* Host-memory backend whose launches run the reference executor; one config
 * (BLOCK=256) corrupts its output and reports the fastest time of all, and
 * the others report a time with a known optimum (BLOCK=2048, threads=32,
 * vec=4). It remembers the last launch's plan. */
static struct {
    int launches;
    int64_t last_block;
    int last_threads, last_vec;
} faulty;

static ts_status f_init(void **state) {
    *state = &faulty;
    return TS_OK;
}
static void f_shutdown(void *state) { (void)state; }
static int f_count(void *state) { return state == &faulty ? 2 : 0; }
static ts_status f_open(void *state, int index, ts_device_caps *caps, ts_fingerprint *fp, void **dev) {
    (void)state;
    memset(caps, 0, sizeof *caps);
    caps->max_group_size = 64;
    caps->shared_mem_bytes = 48 << 10;
    caps->compute_units = 4;
    caps->global_mem_bytes = INT64_C(1) << 30;
    caps->max_buffer_bytes = INT64_C(1) << 28;
    caps->dtype_mask = (1u << TS_F32) | (1u << TS_I32) | (1u << TS_I64);
    caps->native_dtype_mask = caps->dtype_mask;
    memset(fp, 0, sizeof *fp);
    snprintf(fp->vendor, sizeof fp->vendor, "Faulty Inc");
    snprintf(fp->device, sizeof fp->device, "faulty device %d", index);
    snprintf(fp->arch, sizeof fp->arch, "f1");
    snprintf(fp->driver, sizeof fp->driver, "1.0");
    snprintf(fp->device_version, sizeof fp->device_version, "v%d", index);
    *dev = (void *)(intptr_t)(index + 1);
    return TS_OK;
}
static void f_close(void *dev) { (void)dev; }
static ts_status f_alloc(void *dev, size_t bytes, void **buf) {
    (void)dev;
    *buf = calloc(1, bytes ? bytes : 1);
    return *buf ? TS_OK : TS_ERR_OUT_OF_MEMORY;
}
static void f_free(void *dev, void *buf) { (void)dev, free(buf); }
static ts_status f_write(void *dev, void *buf, size_t off, const void *src, size_t n) {
    (void)dev;
    memcpy((char *)buf + off, src, n);
    return TS_OK;
}
static ts_status f_read(void *dev, void *buf, size_t off, void *dst, size_t n) {
    (void)dev;
    memcpy(dst, (char *)buf + off, n);
    return TS_OK;
}
static ts_status f_compile(void *dev, const ts_compile_request *req, void **module) {
    (void)dev, (void)req;
    *module = malloc(1);
    return *module ? TS_OK : TS_ERR_OUT_OF_MEMORY;
}
static void f_module_free(void *dev, void *module) { (void)dev, free(module); }
static ts_status f_launch(void *dev, void *module, const ts_launch_request *req, double *ms) {
    (void)dev, (void)module;
    const ts__plan *p = req->plan;
    faulty.launches++;
    faulty.last_block = p->block[0];
    faulty.last_threads = p->threads;
    faulty.last_vec = p->vec;
    ts_status s = ts_backend_run_reference(req);
    if (s) return s;
    double t = 1.0 + 0.3 * fabs(log2((double)p->block[0]) - 11) + 0.1 * fabs(log2((double)p->threads) - 5) + 0.05 * fabs(log2((double)p->vec) - 2);
    if (p->block[0] == 256 && strcmp(ts_kernel_name(req->kernel), "exp") == 0) {
        const ts_backend_arg *y = &req->args[req->nargs - 1];
        float *out = (float *)y->buffer + y->offset;
        out[3] += 0.25f; /* one wrong element */
        t = 0.01;
    }
    if (ms) *ms = t;
    return TS_OK;
}
static ts_status f_sync(void *dev) { (void)dev; return TS_OK; }

static const ts_backend faulty_backend = {
    .version = TS_BACKEND_VERSION, .name = "faulty", .dialect = TS_DIALECT_NONE,
    .init = f_init, .shutdown = f_shutdown, .device_count = f_count, .device_open = f_open, .device_close = f_close,
    .buffer_alloc = f_alloc, .buffer_free = f_free, .buffer_write = f_write, .buffer_read = f_read,
    .compile = f_compile, .module_free = f_module_free, .launch = f_launch, .synchronize = f_sync,
};

static ts_context *faulty_context(int device) {
    ts_status s = ts_backend_register(&faulty_backend);
    cr_assert(s == TS_OK || s == TS_ERR_NAME, "%s", ts_last_error());
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create("faulty", device, &ctx), TS_OK, "%s", ts_last_error());
    return ctx;
}

static int progress_calls;
static void count_progress(const ts_tune_progress *p, void *user) {
    (void)user;
    progress_calls++;
    cr_expect_geq(p->done, 1);
    cr_expect(p->config && *p->config);
}

static void expect_faulty_result(const ts_tune_report *r) {
    /* (col_threads, where the build has it, does not change this backend's time) */
    cr_expect_eq(strncmp(r->best_config, "BLOCK=2048,threads=32,vec=4", 27), 0, "best %s", r->best_config);
    cr_expect(strstr(r->best_config, "BLOCK=256,") == NULL);
    cr_expect_float_eq(r->best_ms, 1.0, 1e-9);
    int64_t v = 0;
    cr_expect(ts_config_get(r->best, "BLOCK", &v) && v == 2048);
    for (int i = 0; i < r->ncandidates; i++) {
        const ts_tune_candidate *c = &r->candidates[i];
        int planted = strncmp(c->config, "BLOCK=256,", 10) == 0;
        cr_expect_eq(c->outcome == TS_TUNE_WRONG, planted, "%s: %s (%s)", c->config, ts_tune_outcome_name(c->outcome), c->why);
        if (planted) cr_expect(strstr(c->why, "y[3]") != NULL, "the reason names the element: %s", c->why);
    }
}

Test(tune, planted_wrong_config_is_never_chosen_exhaustive) {
    fresh_cache("wrong-exhaustive");
    ts_context *ctx = faulty_context(0);
    ts_kernel *k = example_kernel("exp");
    ts_tune_options o = TS_TUNE_OPTIONS_INIT;
    o.strategy = TS_TUNE_EXHAUSTIVE;
    o.repeats = 2;
    o.progress = count_progress;
    progress_calls = 0;
    ts_tune_report *r = NULL;
    cr_assert_eq(ts_tune(ctx, k, (const char *[]){"N"}, (const int64_t[]){3000}, 1, &o, &r), TS_OK, "%s", ts_last_error());
    /* quick space: BLOCK {256..4096} x threads {1, 4..64} (device limit 64) x vec {1..16} (x col_threads) */
    cr_expect_geq(r->space, 75);
    cr_expect_eq(r->space % 5, 0, "pruning does not depend on BLOCK");
    cr_expect_eq(r->tried, r->space);
    cr_expect_eq(r->rejected_wrong, r->space / 5, "every BLOCK=256 point is rejected (%d)", r->rejected_wrong);
    cr_expect_eq(r->ok, r->space - r->space / 5);
    cr_expect_eq(r->pruned + r->failed_compile + r->timed_out, 0);
    cr_expect_eq(progress_calls, r->space);
    cr_expect_str_eq(r->strategy, "exhaustive");
    expect_faulty_result(r);
    cr_expect_float_eq(r->default_ms, 1.0 + 0.3 * 1 + 0.1 * 1 + 0.05 * 2, 1e-9);
    cr_expect(r->stored);
    /* the stored entry is the verified one */
    ts_tune_db_entry *e;
    int n;
    cr_assert_eq(ts_tune_db_list(NULL, &e, &n), TS_OK);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(e[0].config, r->best_config);
    cr_expect_str_eq(e[0].kernel, "exp");
    cr_expect_str_eq(e[0].bucket, "N=4096");
    cr_expect_str_eq(e[0].shape, "N=3000");
    free(e);
    ts_tune_report_destroy(r);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

Test(tune, planted_wrong_config_never_chosen_guided_then_db_hit_and_launch_uses_it) {
    fresh_cache("wrong-guided");
    ts_context *ctx = faulty_context(0);
    ts_kernel *k = example_kernel("exp");
    ts_tune_options o = TS_TUNE_OPTIONS_INIT;
    o.strategy = TS_TUNE_GUIDED;
    o.repeats = 1;
    ts_tune_report *r = NULL;
    const char *names[] = {"N"};
    const int64_t n3000[] = {3000};
    cr_assert_eq(ts_tune(ctx, k, names, n3000, 1, &o, &r), TS_OK, "%s", ts_last_error());
    cr_expect_str_eq(r->strategy, "guided");
    cr_expect_lt(r->tried, r->space / 2, "guided tried far fewer than the whole space of %lld (%d)", (long long)r->space, r->tried);
    expect_faulty_result(r);
    cr_expect_eq(r->from_db, 0);
    ts_tune_report_destroy(r);

    /* the second tune of the same kernel and shape bucket tunes nothing */
    int launches = faulty.launches;
    const int64_t n4000[] = {4000};
    cr_assert_eq(ts_tune(ctx, k, names, n4000, 1, &o, &r), TS_OK, "%s", ts_last_error());
    cr_expect_eq(r->from_db, 1);
    cr_expect_eq(r->tried, 0);
    cr_expect_eq(faulty.launches, launches, "nothing ran");
    cr_expect_eq(strncmp(r->best_config, "BLOCK=2048,threads=32,vec=4", 27), 0, "%s", r->best_config);
    cr_expect_str_eq(r->strategy, "db");
    ts_tune_report_destroy(r);

    /* ts_launch with cfg NULL picks the stored config, compiling nothing new */
    int64_t shape[1] = {3000};
    ts_tensor *x, *y;
    cr_assert_eq(ts_tensor_create(ctx, TS_F32, 1, shape, &x), TS_OK);
    cr_assert_eq(ts_tensor_create(ctx, TS_F32, 1, shape, &y), TS_OK);
    int compiles = ts__context_compile_count(ctx);
    ts_arg args[2] = {TS_ARG_TENSOR(x), TS_ARG_TENSOR(y)};
    cr_assert_eq(ts_launch(ctx, k, NULL, args, 2, NULL), TS_OK, "%s", ts_last_error());
    cr_expect_eq(faulty.last_block, 2048);
    cr_expect_eq(faulty.last_threads, 32);
    cr_expect_eq(faulty.last_vec, 4);
    cr_expect_eq(ts__context_compile_count(ctx), compiles, "the tuned module was already compiled");
    /* an explicit config still wins */
    ts_config *c;
    cr_assert_eq(ts_config_parse("BLOCK=512", &c), TS_OK);
    cr_assert_eq(ts_launch(ctx, k, c, args, 2, NULL), TS_OK);
    cr_expect_eq(faulty.last_block, 512);
    ts_config_destroy(c);
    /* the entry changes on disk: the next launch sees it (mtime invalidation) */
    ts__tune_fp fp;
    ts__tune_fp_of(ctx, &fp);
    const int64_t *shapes[2] = {shape, shape};
    ts__tune_key key;
    cr_assert_eq(ts__tune_key_of(k, shapes, &key), TS_OK);
    ts__tune_value v;
    memset(&v, 0, sizeof v);
    snprintf(v.config, sizeof v.config, "BLOCK=128,threads=16,vec=2");
    v.ms = 5;
    cr_assert_eq(ts__tune_db_store(&fp, &key, &v, 1), TS_OK);
    cr_assert_eq(ts_launch(ctx, k, NULL, args, 2, NULL), TS_OK);
    cr_expect_eq(faulty.last_block, 128);
    cr_expect_eq(faulty.last_threads, 16);
    /* a config that does not fit this device (too many threads) falls back to the defaults */
    snprintf(v.config, sizeof v.config, "BLOCK=128,threads=512");
    cr_assert_eq(ts__tune_db_store(&fp, &key, &v, 1), TS_OK);
    cr_assert_eq(ts_launch(ctx, k, NULL, args, 2, NULL), TS_OK, "%s", ts_last_error());
    cr_expect_eq(faulty.last_block, 1024);
    cr_expect_eq(faulty.last_threads, 64);
    ts_tensor_destroy(x);
    ts_tensor_destroy(y);

    /* device 1 (same vendor and arch, another fingerprint) falls back to device 0's entries */
    ts_context *ctx1 = faulty_context(1);
    snprintf(v.config, sizeof v.config, "BLOCK=4096,threads=16");
    cr_assert_eq(ts__tune_db_store(&fp, &key, &v, 1), TS_OK);
    ts_tensor *x1, *y1;
    cr_assert_eq(ts_tensor_create(ctx1, TS_F32, 1, shape, &x1), TS_OK);
    cr_assert_eq(ts_tensor_create(ctx1, TS_F32, 1, shape, &y1), TS_OK);
    ts_arg args1[2] = {TS_ARG_TENSOR(x1), TS_ARG_TENSOR(y1)};
    cr_assert_eq(ts_launch(ctx1, k, NULL, args1, 2, NULL), TS_OK);
    cr_expect_eq(faulty.last_block, 4096);
    ts_tensor_destroy(x1);
    ts_tensor_destroy(y1);
    ts_context_destroy(ctx1);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

Test(tune, options_size_and_effort_none_and_bad_sizes) {
    fresh_cache("options");
    ts_context *ctx = faulty_context(0);
    ts_kernel *k = example_kernel("exp");
    /* an old caller's struct that ends before `repeats`: later fields take their defaults */
    ts_tune_options o = TS_TUNE_OPTIONS_INIT;
    o.size = offsetof(ts_tune_options, repeats);
    o.strategy = TS_TUNE_RANDOM;
    o.max_evals = 3; /* past size: ignored, so random takes its effort default */
    o.use_db = 0;    /* past size: ignored */
    o.user = NULL;
    o.progress = NULL;
    ts_tune_report *r = NULL;
    cr_assert_eq(ts_tune(ctx, k, (const char *[]){"N"}, (const int64_t[]){500}, 1, &o, &r), TS_OK, "%s", ts_last_error());
    cr_expect_eq(r->tried, 24, "random's quick default");
    cr_expect(r->stored, "use_db defaulted to 1");
    ts_tune_report_destroy(r);
    /* effort none: no search, the database's entry */
    ts_tune_options none = TS_TUNE_OPTIONS_INIT;
    none.effort = TS_TUNE_EFFORT_NONE;
    cr_assert_eq(ts_tune(ctx, k, (const char *[]){"N"}, (const int64_t[]){3000}, 1, &none, &r), TS_OK);
    cr_expect_eq(r->tried, 0);
    cr_expect_eq(r->from_db, 1, "nearest bucket of the entry just stored");
    ts_tune_report_destroy(r);
    /* sizes: missing or unknown */
    cr_expect_eq(ts_tune(ctx, k, NULL, NULL, 0, NULL, &r), TS_ERR_INVALID_ARGUMENT);
    cr_expect(r == NULL);
    cr_expect(strstr(ts_last_error(), "size N") != NULL, "%s", ts_last_error());
    cr_expect_eq(ts_tune(ctx, k, (const char *[]){"N", "Q"}, (const int64_t[]){5, 5}, 2, NULL, &r), TS_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(ts_last_error(), "'Q'") != NULL, "%s", ts_last_error());
    cr_expect_eq(ts_tune(NULL, k, NULL, NULL, 0, NULL, &r), TS_ERR_INVALID_ARGUMENT);
    ts_tune_report_destroy(NULL);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* ---------------------------------------------------------------- generic inputs for a .tile kernel */

Test(tune, parsed_tile_kernel_with_integer_indices) {
    fresh_cache("tile");
    char path[1024];
    snprintf(path, sizeof path, "%s/examples/embedding.tile", TS_SOURCE_DIR);
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    ts_kernel *k = NULL;
    cr_assert_eq(ts_kernel_parse(text, path, &k), TS_OK, "%s", ts_last_error());
    ts_context *ctx = faulty_context(0);
    ts_tune_options o = TS_TUNE_OPTIONS_INIT;
    o.max_evals = 6;
    o.repeats = 1;
    ts_tune_report *r = NULL;
    /* ids get values below the smallest size (V = 13 here), so every gather is in range */
    cr_assert_eq(ts_tune(ctx, k, (const char *[]){"M", "V", "D"}, (const int64_t[]){40, 13, 24}, 3, &o, &r), TS_OK, "%s", ts_last_error());
    cr_expect_eq(r->tried, 6);
    cr_expect_eq(r->rejected_wrong, 0, "the planted fault only hits the exp kernel");
    cr_expect_gt(r->ok, 0);
    cr_expect_gt(r->best_ms, 0);
    ts_tune_report_destroy(r);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* ---------------------------------------------------------------- PoCL */

static ts_context *opencl_or_skip(void) {
    const char *only = getenv("TESSERA_TEST_BACKENDS");
    if (only && !strstr(only, "opencl")) cr_skip_test("TESSERA_TEST_BACKENDS=%s excludes opencl", only);
    const char *why = NULL;
    if (!ts_backend_available("opencl", &why)) cr_skip_test("opencl backend not available: %s", why ? why : "?");
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create("opencl", 0, &ctx), TS_OK, "%s", ts_last_error());
    return ctx;
}

Test(opencl, quick_tune_of_a_small_matmul_is_checked_stored_and_used, .timeout = 120) {
    fresh_cache("opencl");
    ts_context *ctx = opencl_or_skip();
    ts_kernel *k = example_kernel("matmul");
    ts_tune_options o = TS_TUNE_OPTIONS_INIT;
    o.budget_s = 8;
    o.repeats = 3;
    o.tol_scale = 8;
    o.reduce_size = "K";
    ts_tune_report *r = NULL;
    const char *names[] = {"M", "N", "K"};
    const int64_t vals[] = {64, 48, 80};
    cr_assert_eq(ts_tune(ctx, k, names, vals, 3, &o, &r), TS_OK, "%s", ts_last_error());
    cr_expect_gt(r->ok, 0);
    cr_expect_eq(r->rejected_wrong, 0, "every lowering is correct on PoCL");
    cr_expect_gt(r->space, 0);
    cr_expect_gt(r->best_ms, 0);
    cr_expect_leq(r->best_ms, r->default_ms * 1.05, "best %g vs default %g", r->best_ms, r->default_ms);
    cr_expect(r->stored);
    cr_expect_lt(r->tuning_s, 30);
    char best[256];
    snprintf(best, sizeof best, "%s", r->best_config);
    ts_tune_report_destroy(r);
    cr_assert_eq(ts_tune(ctx, k, names, vals, 3, &o, &r), TS_OK);
    cr_expect_eq(r->from_db, 1);
    cr_expect_str_eq(r->best_config, best);
    ts_tune_report_destroy(r);
    /* a launch without a config uses it and is still correct */
    ts_ex_sizes s;
    cr_assert_eq(ts_ex_parse_sizes("M=64,N=48,K=80", &s), TS_OK);
    ts_ex_result res;
    int compiles = ts__context_compile_count(ctx);
    cr_expect_eq(ts_ex_run_case(ctx, ts_example_find("matmul"), k, TS_F32, &s, NULL, 1, 3, &res), TS_OK, "%s", res.message);
    cr_expect_eq(ts__context_compile_count(ctx), compiles, "the stored config's module is reused");
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}
