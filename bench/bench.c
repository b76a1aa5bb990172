/* bench.c: `tessera bench`: runs the benchmark groups, prints a table and
 * writes JSON (one entry per measurement: ours against a peer measured side
 * by side in the same run, medians after warm-up). */
#include "bench.h"
#include "bench_tuner.h"
#include "cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ts_bench_report {
    ts_bench_entry *e;
    int n, cap;
};

void ts_bench_add(ts_bench_report *r, const ts_bench_entry *e) {
    if (r->n == r->cap) {
        int nc = r->cap ? r->cap * 2 : 16;
        ts_bench_entry *p = realloc(r->e, (size_t)nc * sizeof *p);
        if (!p) return;
        r->e = p;
        r->cap = nc;
    }
    ts_bench_entry *d = &r->e[r->n++];
    *d = *e;
    if (d->ratio == 0 && d->peer_ms > 0 && d->ours_ms > 0) d->ratio = d->peer_ms / d->ours_ms;
    printf("%-18s %-8s %-24.24s %-16s %-5s %10.3f %-22s %10.3f %7.2fx %9.2f %9.2f  %s\n", d->name, d->backend, d->device, d->shape, d->dtype, d->ours_ms,
           d->peer, d->peer_ms, d->ratio, d->gbps, d->gflops, d->note);
    fflush(stdout);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double ts_bench_median(const double *v, int n) {
    if (n <= 0) return 0;
    double *c = malloc((size_t)n * sizeof *c);
    if (!c) return v[0];
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

int ts_bench_selected(const ts_bench_options *o, const char *name) { return !o->filter || strstr(name, o->filter) != NULL; }

static int write_json(const ts_bench_report *r, const char *path) {
    json_t *arr = json_array();
    for (int i = 0; i < r->n; i++) {
        const ts_bench_entry *e = &r->e[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(e->name));
        json_object_set_new(o, "backend", json_string(e->backend));
        json_object_set_new(o, "device", json_string(e->device));
        json_object_set_new(o, "shape", json_string(e->shape));
        json_object_set_new(o, "dtype", json_string(e->dtype));
        json_object_set_new(o, "ours_ms", json_real(e->ours_ms));
        json_object_set_new(o, "peer", json_string(e->peer));
        json_object_set_new(o, "peer_ms", json_real(e->peer_ms));
        json_object_set_new(o, "ratio", json_real(e->ratio));
        json_object_set_new(o, "gbps", json_real(e->gbps));
        json_object_set_new(o, "gflops", json_real(e->gflops));
        json_object_set_new(o, "note", json_string(e->note));
        json_array_append_new(arr, o);
    }
    int rc = json_dump_file(arr, path, JSON_INDENT(2));
    json_decref(arr);
    return rc;
}

static void write_markdown(const ts_bench_report *r, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "| benchmark | backend | device | shape | dtype | ours (ms) | peer | peer (ms) | peer/ours | GB/s | GFLOP/s |\n");
    fprintf(f, "|---|---|---|---|---|---:|---|---:|---:|---:|---:|\n");
    for (int i = 0; i < r->n; i++) {
        const ts_bench_entry *e = &r->e[i];
        fprintf(f, "| %s | %s | %s | %s | %s | %.3f | %s | %.3f | %.2fx | %.2f | %.2f |\n", e->name, e->backend, e->device, e->shape, e->dtype, e->ours_ms,
                e->peer, e->peer_ms, e->ratio, e->gbps, e->gflops);
    }
    fclose(f);
}

int ts_cli_bench(int argc, char **argv) {
    if (ts_cli_wants_help(argc, argv)) {
        printf("usage: tessera bench [--backend NAME] [--filter NAME] [--json FILE] [--markdown FILE] [--repeats N]\n"
               "Runs every benchmark: each measures ours and a peer side by side in this run (median of\n"
               "N timed runs after warm-up). JSON entries: name, backend, device, shape, dtype, ours_ms,\n"
               "peer, peer_ms, ratio (peer_ms / ours_ms: above 1 is faster than the peer), gbps, gflops.\n");
        return 0;
    }
    ts_bench_options o = {.backend = ts_cli_backend(argc, argv), .filter = ts_cli_option(argc, argv, "--filter"), .repeats = 7, .warmup = 2};
    const char *rep = ts_cli_option(argc, argv, "--repeats");
    if (rep) o.repeats = atoi(rep) > 0 ? atoi(rep) : 7;
    ts_bench_report r = {0};
    printf("%-18s %-8s %-24s %-16s %-5s %10s %-22s %10s %8s %9s %9s\n", "benchmark", "backend", "device", "shape", "dtype", "ours(ms)", "peer", "peer(ms)",
           "ratio", "GB/s", "GFLOP/s");
    ts_bench_kernels(&r, &o);
    ts_bench_safetensors(&r, &o);
    ts_bench_tuner(&r, &o);
    const char *json = ts_cli_option(argc, argv, "--json"), *md = ts_cli_option(argc, argv, "--markdown");
    int rc = 0;
    if (json && write_json(&r, json) != 0) {
        fprintf(stderr, "tessera bench: cannot write '%s'\n", json);
        rc = 1;
    }
    if (md) write_markdown(&r, md);
    printf("\nbench: %d measurements\n", r.n);
    free(r.e);
    return rc;
}
