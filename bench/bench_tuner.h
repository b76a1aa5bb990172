/* bench_tuner.h: the tuner's benchmarks (bench/bench_tuner.c). */
#ifndef TS_BENCH_TUNER_H
#define TS_BENCH_TUNER_H

#include "bench.h"

/* On opencl and vulkan (when available and selected by --backend), for f32
 * matmul 1024^3 and softmax 4096x1024: the tuned config against the
 * defaults, the guided search's best against the exhaustive best over the
 * same (quick) space with the configs each benchmarked, and the time spent
 * tuning. Runs when there is no --filter or the filter names "tuner"
 * ("tuner_matmul", "tuner_softmax"); the exhaustive searches take minutes.
 * Neither reads nor writes the tuning database. */
void ts_bench_tuner(ts_bench_report *r, const ts_bench_options *o);

#endif
