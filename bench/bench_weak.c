/* bench_weak.c: fallbacks for benchmark groups and commands whose module is
 * not in this build; the real definitions override these. */
#include "bench.h"
#include "cli.h"

#include <stdio.h>

__attribute__((weak)) void ts_bench_safetensors(ts_bench_report *r, const ts_bench_options *o) {
    (void)r;
    (void)o;
}

__attribute__((weak)) int ts_cli_inspect(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "tessera inspect: the Safetensors module is not in this build\n");
    return 2;
}
