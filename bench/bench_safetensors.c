/* bench_safetensors.c: Safetensors benchmarks of `tessera bench`.
 *
 *   safetensors_open    open and validate a file of 10,000 tensors (every
 *                       header rule, mmap) against the reference's
 *                       safe_open in Python, timed inside a python3
 *                       subprocess that reports its own median after warm-up
 *                       (interpreter start-up is not counted)
 *   safetensors_upload  upload of a 256 MiB file (64 tensors of 4 MiB f32)
 *                       to each selected backend, GB/s, against memcpy of
 *                       the same bytes from the same mapping into a buffer
 *                       touched beforehand (the bound of any host copy)
 *   safetensors_upload_bf16  the same bytes as bf16 converted to f32 on the way
 *                       (uploads use the default options: threads = cores)
 *   safetensors_upload_sharded  a 4-shard checkpoint (index + shards) of
 *                       bf16 converted to f32, default threads against
 *                       threads=1 (the parallel speed-up)
 *
 * Files are written to a temporary folder with our writer and removed. */
#include "bench.h"
#include "cli.h"
#include "tessera_safetensors.h"
#include "ts_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPEN_TENSORS 10000
#define UPLOAD_TENSORS 64
#define UPLOAD_ELEMS ((size_t)1 << 20)

static const char py_open[] =
    "import sys, time\n"
    "from safetensors import safe_open\n"
    "path, warm, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\n"
    "def once():\n"
    "    t = time.perf_counter()\n"
    "    with safe_open(path, framework='numpy') as f:\n"
    "        n = len(f.keys())\n"
    "    return (time.perf_counter() - t) * 1e3, n\n"
    "for _ in range(warm): once()\n"
    "ts = sorted(once()[0] for _ in range(reps))\n"
    "m = len(ts) // 2\n"
    "med = ts[m] if len(ts) % 2 else 0.5 * (ts[m - 1] + ts[m])\n"
    "print('%.6f %d %s' % (med, once()[1], __import__('safetensors').__version__))\n";

/* The reference's median in ms (0 when python3 or the module is missing). */
static double python_open_ms(const char *dir, const char *path, int warm, int reps, char *version, size_t nv) {
    char script[512], cmd[1400];
    snprintf(script, sizeof script, "%s/open.py", dir);
    FILE *f = fopen(script, "w");
    if (!f) return 0;
    fputs(py_open, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "python3 '%s' '%s' %d %d 2>/dev/null", script, path, warm, reps);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    double ms = 0;
    int n = 0;
    char ver[32] = "";
    if (fscanf(p, "%lf %d %31s", &ms, &n, ver) != 3 || n != OPEN_TENSORS) ms = 0;
    pclose(p);
    snprintf(version, nv, "%s", ver);
    unlink(script);
    return ms;
}

static void bench_open(ts_bench_report *r, const ts_bench_options *o, const char *dir) {
    char path[400];
    snprintf(path, sizeof path, "%s/open.safetensors", dir);
    ts_st_writer *w = NULL;
    if (ts_st_writer_create(&w)) return;
    static float data[64]; /* the largest tensor: 4 x 16 f32 */
    ts_status s = TS_OK;
    for (int i = 0; i < OPEN_TENSORS && !s; i++) {
        char name[64];
        snprintf(name, sizeof name, "model.layers.%d.block.%d.weight", i / 16, i % 16);
        uint64_t shape[2] = {4, (uint64_t)(1 + i % 16)};
        ts_st_dtype dt = i % 3 == 0 ? TS_ST_F32 : i % 3 == 1 ? TS_ST_BF16 : TS_ST_F16;
        s = ts_st_writer_add_ref(w, name, dt, 2, shape, data, shape[0] * shape[1] * (size_t)ts_st_dtype_bits(dt) / 8);
    }
    if (!s) s = ts_st_writer_metadata(w, "format", "pt");
    if (!s) s = ts_st_writer_save(w, path);
    ts_st_writer_destroy(w);
    if (s) {
        fprintf(stderr, "bench safetensors_open: %s\n", ts_last_error());
        return;
    }
    int reps = o->repeats > 0 ? o->repeats : 7;
    double *t = calloc((size_t)reps, sizeof *t);
    if (!t) return;
    for (int i = 0; i < o->warmup + reps; i++) {
        double t0 = ts__now_ms();
        ts_st_file *f = NULL;
        if (ts_st_open(path, &f) != TS_OK || ts_st_count(f) != OPEN_TENSORS) {
            fprintf(stderr, "bench safetensors_open: %s\n", ts_last_error());
            ts_st_close(f);
            free(t);
            return;
        }
        ts_st_close(f);
        if (i >= o->warmup) t[i - o->warmup] = ts__now_ms() - t0;
    }
    ts_bench_entry e = {0};
    snprintf(e.name, sizeof e.name, "safetensors_open");
    snprintf(e.backend, sizeof e.backend, "host");
    snprintf(e.device, sizeof e.device, "cpu");
    snprintf(e.shape, sizeof e.shape, "%d tensors", OPEN_TENSORS);
    snprintf(e.dtype, sizeof e.dtype, "mixed");
    e.ours_ms = ts_bench_median(t, reps);
    char ver[32] = "";
    e.peer_ms = python_open_ms(dir, path, o->warmup > 0 ? o->warmup : 1, reps, ver, sizeof ver);
    if (e.peer_ms > 0) {
        snprintf(e.peer, sizeof e.peer, "safetensors(python)");
        snprintf(e.note, sizeof e.note, "safe_open + keys() timed inside python3 (safetensors %s); open = mmap + full header validation", ver);
    } else {
        snprintf(e.note, sizeof e.note, "peer skipped: python3 with the safetensors module is not available");
    }
    ts_bench_add(r, &e);
    free(t);
    unlink(path);
}

static int write_upload_file(const char *path, ts_st_dtype dt) {
    size_t es = (size_t)ts_st_dtype_bits(dt) / 8, nb = UPLOAD_ELEMS * 4;
    unsigned char *block = malloc(nb);
    if (!block) return -1;
    for (size_t i = 0; i < nb / 2; i++) ((uint16_t *)block)[i] = (uint16_t)(0x3c00 + (i & 0x3ff)); /* finite f16/bf16 */
    ts_st_writer *w = NULL;
    ts_status s = ts_st_writer_create(&w);
    for (int i = 0; i < UPLOAD_TENSORS && !s; i++) {
        char name[32];
        snprintf(name, sizeof name, "w%02d", i);
        uint64_t shape[2] = {1024, nb / es / 1024};
        s = ts_st_writer_add_ref(w, name, dt, 2, shape, block, nb);
    }
    if (!s) s = ts_st_writer_save(w, path);
    ts_st_writer_destroy(w);
    free(block);
    return s ? -1 : 0;
}

static void bench_upload_file(ts_bench_report *r, const ts_bench_options *o, const char *path, const char *name, ts_st_dtype dt,
                              ts_st_convert convert) {
    ts_st_file *f = NULL;
    if (ts_st_open(path, &f)) return;
    size_t total = (size_t)ts_st_data_size(f);
    int reps = o->repeats > 0 ? o->repeats : 7;
    double *t = calloc((size_t)reps, sizeof *t), *m = calloc((size_t)reps, sizeof *m);
    unsigned char *dst = malloc(total);
    if (!t || !m || !dst) goto out;
    memset(dst, 1, total);
    /* memcpy of the same bytes out of the same mapping (page cache warm after the first pass) */
    for (int i = 0; i < o->warmup + reps; i++) {
        double t0 = ts__now_ms();
        for (size_t k = 0; k < ts_st_count(f); k++) {
            ts_st_tensor_info info;
            ts_st_tensor_at(f, k, &info);
            memcpy(dst + info.begin, info.data, info.nbytes);
        }
        if (i >= o->warmup) m[i - o->warmup] = ts__now_ms() - t0;
    }
    const char *names[16];
    int nb = ts_cli_selected_backends(o->backend, names, 16);
    for (int b = 0; b < nb; b++) {
        if (!ts_backend_available(names[b], NULL)) continue;
        ts_context *ctx = NULL;
        if (ts_context_create(names[b], 0, &ctx)) continue;
        ts_st_upload_options uo = TS_ST_UPLOAD_OPTIONS_INIT;
        uo.convert = convert;
        int ok = 1;
        for (int i = 0; i < o->warmup + reps && ok; i++) {
            double t0 = ts__now_ms();
            ts_st_tensor_set *set = NULL;
            ok = ts_st_upload_file(ctx, f, &uo, &set) == TS_OK;
            double dt_ms = ts__now_ms() - t0;
            ts_st_tensor_set_destroy(set);
            if (i >= o->warmup) t[i - o->warmup] = dt_ms;
        }
        if (!ok) {
            fprintf(stderr, "bench %s on %s: %s\n", name, names[b], ts_last_error());
            ts_context_destroy(ctx);
            continue;
        }
        ts_bench_entry e = {0};
        snprintf(e.name, sizeof e.name, "%s", name);
        snprintf(e.backend, sizeof e.backend, "%s", names[b]);
        snprintf(e.device, sizeof e.device, "%s", ts_context_device_name(ctx));
        snprintf(e.shape, sizeof e.shape, "%dx%zuMiB", UPLOAD_TENSORS, total / UPLOAD_TENSORS >> 20);
        snprintf(e.dtype, sizeof e.dtype, "%s", dt == TS_ST_F32 ? "f32" : "bf16");
        e.ours_ms = ts_bench_median(t, reps);
        snprintf(e.peer, sizeof e.peer, "memcpy");
        e.peer_ms = ts_bench_median(m, reps);
        e.gbps = (double)total / (e.ours_ms * 1e6);
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        snprintf(e.note, sizeof e.note, "file bytes per second incl. tensor creation%s, default options (%ld threads); memcpy %.2f GB/s",
                 convert == TS_ST_CONVERT_ALWAYS ? " and bf16->f32 (twice the bytes out)" : "", cores, (double)total / (e.peer_ms * 1e6));
        ts_bench_add(r, &e);
        ts_context_destroy(ctx);
    }
out:
    free(t);
    free(m);
    free(dst);
    ts_st_close(f);
}

/* A 4-shard checkpoint (model.safetensors.index.json and its shards, 16 bf16
 * tensors of 2 MiB each per shard), uploaded converting to f32: the
 * default thread count against threads=1, side by side, alternating. */
#define SHARDS 4
#define SHARD_TENSORS 16
static void bench_upload_sharded(ts_bench_report *r, const ts_bench_options *o, const char *dir) {
    char index[400], shard[SHARDS][400];
    size_t nb = (size_t)2 << 20;
    uint16_t *block = malloc(nb);
    if (!block) return;
    for (size_t i = 0; i < nb / 2; i++) block[i] = (uint16_t)(0x3c00 + (i & 0x3ff));
    ts__sb map = {0};
    ts__sb_puts(&map, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    int ok = 1;
    for (int k = 0; k < SHARDS && ok; k++) {
        snprintf(shard[k], sizeof shard[k], "%s/model-%05d-of-%05d.safetensors", dir, k + 1, SHARDS);
        ts_st_writer *w = NULL;
        ok = ts_st_writer_create(&w) == TS_OK;
        for (int i = 0; i < SHARD_TENSORS && ok; i++) {
            char name[32];
            snprintf(name, sizeof name, "layer%02d.w%02d", k, i);
            uint64_t shape[2] = {1024, nb / 2 / 1024};
            ok = ts_st_writer_add_ref(w, name, TS_ST_BF16, 2, shape, block, nb) == TS_OK;
            ts__sb_printf(&map, "%s\"%s\": \"model-%05d-of-%05d.safetensors\"", k || i ? ", " : "", name, k + 1, SHARDS);
        }
        ok = ok && ts_st_writer_save(w, shard[k]) == TS_OK;
        ts_st_writer_destroy(w);
    }
    ts__sb_puts(&map, "}}");
    free(block);
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    FILE *fp = ok && map.data && !map.failed ? fopen(index, "w") : NULL;
    ok = fp && fputs(map.data, fp) >= 0;
    if (fp) fclose(fp);
    free(map.data);
    ts_st_collection *c = NULL;
    if (ok && ts_st_collection_open(index, &c) != TS_OK) {
        fprintf(stderr, "bench safetensors_upload_sharded: %s\n", ts_last_error());
        c = NULL;
    }
    int reps = o->repeats > 0 ? o->repeats : 7;
    double *par = calloc((size_t)reps, sizeof *par), *ser = calloc((size_t)reps, sizeof *ser);
    const char *names[16];
    int nbk = c && par && ser ? ts_cli_selected_backends(o->backend, names, 16) : 0;
    for (int b = 0; b < nbk; b++) {
        if (!ts_backend_available(names[b], NULL)) continue;
        ts_context *ctx = NULL;
        if (ts_context_create(names[b], 0, &ctx)) continue;
        int good = 1;
        for (int i = 0; i < o->warmup + reps && good; i++)
            for (int serial = 0; serial < 2 && good; serial++) {
                ts_st_upload_options uo = TS_ST_UPLOAD_OPTIONS_INIT;
                uo.convert = TS_ST_CONVERT_ALWAYS;
                uo.threads = serial ? 1 : 0;
                double t0 = ts__now_ms();
                ts_st_tensor_set *set = NULL;
                good = ts_st_upload_collection(ctx, c, &uo, &set) == TS_OK;
                double ms = ts__now_ms() - t0;
                ts_st_tensor_set_destroy(set);
                if (i >= o->warmup) (serial ? ser : par)[i - o->warmup] = ms;
            }
        if (!good) {
            fprintf(stderr, "bench safetensors_upload_sharded on %s: %s\n", names[b], ts_last_error());
            ts_context_destroy(ctx);
            continue;
        }
        ts_bench_entry e = {0};
        snprintf(e.name, sizeof e.name, "safetensors_upload_sharded");
        snprintf(e.backend, sizeof e.backend, "%s", names[b]);
        snprintf(e.device, sizeof e.device, "%s", ts_context_device_name(ctx));
        snprintf(e.shape, sizeof e.shape, "%dx%dx%zuMiB", SHARDS, SHARD_TENSORS, nb >> 20);
        snprintf(e.dtype, sizeof e.dtype, "bf16");
        e.ours_ms = ts_bench_median(par, reps);
        e.peer_ms = ts_bench_median(ser, reps);
        snprintf(e.peer, sizeof e.peer, "threads=1");
        e.gbps = (double)SHARDS * SHARD_TENSORS * nb / (e.ours_ms * 1e6);
        snprintf(e.note, sizeof e.note, "4-shard checkpoint (index + shards), bf16->f32; default threads (%ld cores) against serial, alternating",
                 sysconf(_SC_NPROCESSORS_ONLN));
        ts_bench_add(r, &e);
        ts_context_destroy(ctx);
    }
    free(par);
    free(ser);
    ts_st_collection_close(c);
    for (int k = 0; k < SHARDS; k++) unlink(shard[k]);
    unlink(index);
}

void ts_bench_safetensors(ts_bench_report *r, const ts_bench_options *o) {
    int want_open = ts_bench_selected(o, "safetensors_open"),
        want_up = ts_bench_selected(o, "safetensors_upload") || ts_bench_selected(o, "safetensors_upload_bf16") ||
                  ts_bench_selected(o, "safetensors_upload_sharded");
    if (!want_open && !want_up) return;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/tessera-bench-st-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "bench safetensors: cannot create a temporary folder\n");
        return;
    }
    if (want_open) bench_open(r, o, dir);
    if (want_up) {
        char path[400];
        snprintf(path, sizeof path, "%s/upload.safetensors", dir);
        if (ts_bench_selected(o, "safetensors_upload") && write_upload_file(path, TS_ST_F32) == 0)
            bench_upload_file(r, o, path, "safetensors_upload", TS_ST_F32, TS_ST_CONVERT_NEVER);
        unlink(path);
        if (ts_bench_selected(o, "safetensors_upload_bf16") && write_upload_file(path, TS_ST_BF16) == 0)
            bench_upload_file(r, o, path, "safetensors_upload_bf16", TS_ST_BF16, TS_ST_CONVERT_ALWAYS);
        unlink(path);
        if (ts_bench_selected(o, "safetensors_upload_sharded")) bench_upload_sharded(r, o, dir);
    }
    rmdir(dir);
}
