/* cmd_demo.c: `tessera demo`: the main job. all-MiniLM-L6-v2 (examples/app)
 * embeds a few sentences on every available backend; each result is checked
 * against the expected embeddings of an independent numpy forward pass
 * (tools/demo_model.py), and a table gives the time per forward pass, the
 * speed-up over the reference executor and the error. The heavy kernels are
 * tuned on first use (quick effort, bounded budget); later runs find them in
 * the tuning database and the compiled kernels in the binary cache.
 *
 * Sections: arguments; progress; the binary cache count; one backend; the command. */
#include "cli.h"
#include "minilm.h"
#include "ts_internal.h"

#include <dirent.h>
#include <sys/stat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the check: examples/app/minilm.h says why */
#define DEMO_TOLERANCE TS_MINILM_TOLERANCE

/* ---------------------------------------------------------------- arguments */

static void usage(FILE *f) {
    fprintf(f,
            "usage: tessera demo [--backend B] [--model DIR] [--repeats N] [--budget SECONDS] [--no-tune]\n"
            "Runs all-MiniLM-L6-v2 (6-layer BERT sentence encoder, examples/app/minilm.c) on every available\n"
            "backend (or B; default $TESSERA_BACKEND, else all), checks the sentence embeddings against an\n"
            "independent numpy forward pass, and prints ms per forward (median after warm-up), the speed-up\n"
            "over ref, and the max error. The first run tunes the four matmul shapes of a layer (quick\n"
            "effort, --budget seconds each, default 20) and stores them in the tuning database; later runs\n"
            "use the database and the binary cache. DIR (default $TESSERA_DEMO_DIR, else build/demo) holds\n"
            "model.safetensors and expected.safetensors, made by tools/setup-demo.sh.\n");
}

/* ---------------------------------------------------------------- progress */

typedef struct progress_state {
    const char *backend;
    int index, count;
    const char *name;
} progress_state;

static void on_progress(const ts_tune_progress *p, void *user) {
    progress_state *ps = user;
    if (!isatty(STDOUT_FILENO)) return; /* a log gets one line per kernel instead */
    char best[48] = "-";
    if (p->best_ms > 0) snprintf(best, sizeof best, "%.3f ms (%.2fx)", p->best_ms, p->default_ms > 0 ? p->default_ms / p->best_ms : 0);
    printf("\r  %s: tuning %d/%d %-48.48s %3d configs %5.1f/%.0f s best %-20s\033[K", ps->backend, ps->index + 1, ps->count, ps->name, p->done,
           p->elapsed_s, p->budget_s, best);
    fflush(stdout);
}

/* ---------------------------------------------------------------- binary cache */

/* The backend's files in the binary cache ("<backend>-*"), their number and
 * total size: compared before and after the first forward pass, they tell
 * whether its kernels were compiled now or came from the cache. OpenCL keeps
 * one file per kernel; Vulkan one pipeline cache that grows. */
typedef struct cache_state {
    int files;
    long long bytes;
} cache_state;

static cache_state binary_cache(const char *backend) {
    cache_state c = {0, 0};
    char dir[4096], path[8192];
    if (ts__cache_dir("bin", dir, sizeof dir) != TS_OK) return c;
    DIR *d = opendir(dir);
    if (!d) return c;
    size_t n = strlen(backend);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, backend, n) != 0 || e->d_name[n] != '-') continue;
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0) continue;
        c.files++;
        c.bytes += (long long)st.st_size;
    }
    closedir(d);
    return c;
}

/* ---------------------------------------------------------------- one backend */

typedef struct row {
    char backend[32], device[96];
    int ran, ok;
    double ms, err, cos_min;
    char tuning[64], cache[64], why[256];
} row;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void run_backend(const char *name, const ts_minilm_expected *e, const char *model, int repeats, int tune, double budget, row *r) {
    memset(r, 0, sizeof *r);
    snprintf(r->backend, sizeof r->backend, "%s", name);
    const char *why = NULL;
    if (!ts_backend_available(name, &why)) {
        snprintf(r->why, sizeof r->why, "not available: %s", why ? why : "?");
        return;
    }
    ts_context *ctx = NULL;
    ts_minilm *m = NULL;
    float *out = malloc((size_t)e->B * TS_MINILM_HIDDEN * sizeof(float));
    double *times = malloc((size_t)(repeats > 0 ? repeats : 1) * sizeof(double));
    if (!out || !times) {
        snprintf(r->why, sizeof r->why, "out of memory");
        goto done;
    }
    if (ts_context_create(name, 0, &ctx)) {
        snprintf(r->why, sizeof r->why, "%s", ts_last_error());
        goto done;
    }
    snprintf(r->device, sizeof r->device, "%s", ts_context_device_name(ctx));
    printf("  %s: loading %s\n", name, model);
    fflush(stdout);
    if (ts_minilm_load(ctx, model, &m)) {
        snprintf(r->why, sizeof r->why, "%s", ts_last_error());
        goto done;
    }
    /* The reference executor interprets the IR: block sizes barely matter there. */
    if (!tune || strcmp(name, "ref") == 0) {
        snprintf(r->tuning, sizeof r->tuning, strcmp(name, "ref") == 0 ? "n/a" : "off (--no-tune)");
    } else {
        int tuned = 0, cached = 0, n = ts_minilm_tune_count();
        progress_state ps = {name, 0, n, ""};
        printf("  %s: the heavy kernels: from the tuning database, else tuned now (quick effort, up to %.0f s each)\n", name, budget);
        fflush(stdout);
        ts_status s = TS_OK;
        for (int i = 0; i < n && !s; i++) {
            ps.index = i;
            ps.name = ts_minilm_tune_name(i);
            int t = 0, c = 0;
            double t0 = ts__now_ms();
            s = ts_minilm_tune_one(m, i, e->B, e->S, TS_TUNE_EFFORT_QUICK, budget, on_progress, &ps, &t, &c);
            tuned += t;
            cached += c;
            if (isatty(STDOUT_FILENO)) printf("\r\033[K");
            if (!s) printf("  %s: %-52s %s (%.1f s)\n", name, ps.name, t ? "tuned" : "from the tuning database", (ts__now_ms() - t0) / 1e3);
            fflush(stdout);
        }
        if (s) {
            snprintf(r->why, sizeof r->why, "tuning: %s", ts_last_error());
            goto done;
        }
        if (tuned) snprintf(r->tuning, sizeof r->tuning, "tuned now (%d)", tuned);
        else snprintf(r->tuning, sizeof r->tuning, "database (%d)", cached);
        printf("  %s: %d kernel shapes tuned now, %d from the tuning database\n", name, tuned, cached);
    }
    cache_state before = binary_cache(name);
    double first = 0;
    if (ts_minilm_forward(m, e->B, e->S, e->ids, e->types, e->mask, out, &first)) {
        snprintf(r->why, sizeof r->why, "%s", ts_last_error());
        goto done;
    }
    cache_state after = binary_cache(name);
    printf("  %s: first forward %.0f ms\n", name, first);
    /* one more warm-up, then the timed runs */
    double ms = 0;
    if (ts_minilm_forward(m, e->B, e->S, e->ids, e->types, e->mask, out, &ms)) {
        snprintf(r->why, sizeof r->why, "%s", ts_last_error());
        goto done;
    }
    for (int i = 0; i < repeats; i++) {
        if (ts_minilm_forward(m, e->B, e->S, e->ids, e->types, e->mask, out, &times[i])) {
            snprintf(r->why, sizeof r->why, "%s", ts_last_error());
            goto done;
        }
    }
    qsort(times, (size_t)repeats, sizeof *times, cmp_double);
    r->ms = repeats % 2 ? times[repeats / 2] : 0.5 * (times[repeats / 2 - 1] + times[repeats / 2]);
    /* Compiled now or from the binary cache? New files in it say so for
     * backends with one file per kernel (OpenCL); a backend that keeps one
     * cache file and writes it when the context closes (Vulkan's pipeline
     * cache) shows it only as a first pass much slower than the others. */
    double extra_s = (first - r->ms) / 1e3;
    if (strcmp(name, "ref") == 0) snprintf(r->cache, sizeof r->cache, "n/a");
    else if (after.files > before.files) snprintf(r->cache, sizeof r->cache, "compiled %d", after.files - before.files);
    else if (after.bytes != before.bytes || extra_s > 1.0) snprintf(r->cache, sizeof r->cache, "first +%.1fs", extra_s);
    else snprintf(r->cache, sizeof r->cache, "binary cache");
    r->ran = 1;
    r->cos_min = 1;
    for (int b = 0; b < e->B; b++) {
        double dot = 0, na = 0, nb = 0;
        for (int d = 0; d < TS_MINILM_HIDDEN; d++) {
            double x = out[b * TS_MINILM_HIDDEN + d], y = e->embeddings[b * TS_MINILM_HIDDEN + d];
            double err = fabs(x - y);
            if (!(err <= r->err)) r->err = err; /* NaN counts as the largest */
            dot += x * y;
            na += x * x;
            nb += y * y;
        }
        double c = dot / sqrt(na * nb);
        if (!(c >= r->cos_min)) r->cos_min = c;
    }
    r->ok = r->err <= DEMO_TOLERANCE;
    if (!r->ok) snprintf(r->why, sizeof r->why, "max error %.3g above the tolerance %.0e", r->err, DEMO_TOLERANCE);
done:
    ts_minilm_destroy(m);
    ts_context_destroy(ctx);
    free(out);
    free(times);
}

/* ---------------------------------------------------------------- the command */

int ts_cli_demo(int argc, char **argv) {
    if (ts_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *dir = ts_cli_option(argc, argv, "--model");
    if (!dir) dir = ts_minilm_default_dir();
    const char *rep = ts_cli_option(argc, argv, "--repeats"), *bud = ts_cli_option(argc, argv, "--budget");
    int repeats = rep ? atoi(rep) : 5;
    double budget = bud ? atof(bud) : 20;
    if (repeats < 1 || repeats > 1000 || budget <= 0) {
        usage(stderr);
        return 2;
    }
    char model[4096], expected[4096];
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    snprintf(expected, sizeof expected, "%s/expected.safetensors", dir);
    ts_minilm_expected e;
    if (ts_minilm_expected_load(expected, &e)) {
        fprintf(stderr, "tessera demo: %s\n  (tools/setup-demo.sh fetches the model and computes the expected output; make setup runs it)\n",
                ts_last_error());
        return 1;
    }
    printf("all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads): %d sentences, %d tokens each after padding\n", e.B, e.S);
    if (e.sentences[0]) printf("  sentences: %s\n", e.sentences);
    printf("  expected output: independent numpy forward pass (float64), tools/demo_model.py\n\n");

    const char *names[32];
    int n = ts_cli_selected_backends(ts_cli_backend(argc, argv), names, 32);
    if (n == 0) {
        fprintf(stderr, "tessera demo: no backend named '%s'\n", ts_cli_backend(argc, argv));
        ts_minilm_expected_free(&e);
        return 2;
    }
    row *rows = calloc((size_t)n, sizeof *rows);
    if (!rows) {
        ts_minilm_expected_free(&e);
        return 1;
    }
    for (int i = 0; i < n; i++) run_backend(names[i], &e, model, repeats, !ts_cli_flag(argc, argv, "--no-tune"), budget, &rows[i]);
    double ref_ms = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(rows[i].backend, "ref") == 0 && rows[i].ran) ref_ms = rows[i].ms;

    printf("\n%-8s %-34s %12s %10s %11s %9s %-16s %-14s %s\n", "backend", "device", "ms/forward", "vs ref", "max error", "min cos", "tuning",
           "kernels", "result");
    /* kernels: "compiled N" (new files in the binary cache), "binary cache"
     * (nothing new and no slow first pass), "first +Xs" (no per-kernel files
     * to count, and the first pass took X s more than the median) */
    int failed = 0, ran = 0;
    for (int i = 0; i < n; i++) {
        row *r = &rows[i];
        if (!r->ran) {
            int unavailable = strncmp(r->why, "not available", 13) == 0;
            if (!unavailable) failed = 1;
            printf("%-8s %-34.34s %12s %10s %11s %9s %-16s %-14s %s\n", r->backend, r->device[0] ? r->device : "-", "-", "-", "-", "-", "-", "-",
                   unavailable ? "skipped" : "FAILED");
            printf("         %s\n", r->why);
            continue;
        }
        ran++;
        char sp[32] = "-";
        if (ref_ms > 0) snprintf(sp, sizeof sp, "%.1fx", ref_ms / r->ms);
        printf("%-8s %-34.34s %12.2f %10s %11.2e %9.6f %-16s %-14s %s\n", r->backend, r->device, r->ms, sp, r->err, r->cos_min, r->tuning, r->cache,
               r->ok ? "ok" : "MISMATCH");
        if (!r->ok) {
            failed = 1;
            printf("         %s\n", r->why);
        }
    }
    printf("\nms/forward: median of %d forward passes after two warm-ups (uploads of the token ids and the read-back included).\n"
           "max error: largest |ours - expected| over the %d x 384 embedding entries; tolerance %.0e (docs/demo.md).\n",
           repeats, e.B, DEMO_TOLERANCE);
    free(rows);
    ts_minilm_expected_free(&e);
    if (!ran) {
        fprintf(stderr, "tessera demo: no backend ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}
