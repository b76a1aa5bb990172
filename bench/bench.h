/* bench.h: the benchmark harness behind `tessera bench`.
 * Each benchmark measures ours and a peer side by side in one run (medians of
 * repeated runs after warm-up) and adds one entry per measurement. */
#ifndef TS_BENCH_H
#define TS_BENCH_H

#include <stddef.h>

typedef struct ts_bench_entry {
    char name[64];     /* "matmul", "safetensors_open", ... */
    char backend[32];
    char device[128];
    char shape[64];    /* "1024x1024x1024" */
    char dtype[16];
    double ours_ms;    /* median */
    char peer[64];     /* "clblast", "memcpy", "safetensors(python)" */
    double peer_ms;    /* median; 0 when there is no peer */
    double ratio;      /* peer_ms / ours_ms: above 1 means faster than the peer */
    double gbps;       /* 0 when not meaningful */
    double gflops;     /* 0 when not meaningful */
    char note[160];
} ts_bench_entry;

typedef struct ts_bench_report ts_bench_report;

/* Options every benchmark sees. */
typedef struct ts_bench_options {
    const char *backend; /* NULL: every available backend */
    const char *filter;  /* NULL: all; else substring of the benchmark name */
    int repeats;         /* timed runs per measurement (median) */
    int warmup;
} ts_bench_options;

/* Adds an entry (ratio is computed when peer_ms > 0 and ratio == 0). */
void ts_bench_add(ts_bench_report *r, const ts_bench_entry *e);
/* Median of n values (sorts a copy). */
double ts_bench_median(const double *v, int n);
/* 1 if the benchmark `name` is selected by the options' filter. */
int ts_bench_selected(const ts_bench_options *o, const char *name);

/* Benchmark groups (bench/bench_*.c). */
void ts_bench_kernels(ts_bench_report *r, const ts_bench_options *o);
void ts_bench_safetensors(ts_bench_report *r, const ts_bench_options *o);

#endif
