/* cmd_examples.c: `tessera examples`: the kernel set on every selected
 * backend, every dtype and size set, under several configs; a table and a
 * non-zero exit if anything is wrong. */
#include "cli.h"
#include "kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ts_cli_examples(int argc, char **argv) {
    if (ts_cli_wants_help(argc, argv)) {
        printf("usage: tessera examples [--backend NAME] [--filter NAME] [--quick]\n"
               "Runs every example kernel at every tested size (1, 7, 127, 1000 and the like), for\n"
               "each dtype it supports, under its default config and the extremes of its tunables,\n"
               "and checks each result against an independent computation. --quick: default config\n"
               "and first dtype only. An extreme config past the device's limits is reported as 'limit'\n"
               "(refused with TS_ERR_BAD_CONFIG) and counted as skipped. Exit status 1 if any case fails.\n");
        return 0;
    }
    const char *only = ts_cli_backend(argc, argv), *filter = ts_cli_option(argc, argv, "--filter");
    int quick = ts_cli_flag(argc, argv, "--quick");
    const char *names[32];
    int nb = ts_cli_selected_backends(only, names, 32), failures = 0, passes = 0, skipped = 0;
    if (nb == 0) {
        fprintf(stderr, "tessera examples: no backend named '%s'\n", only);
        return 2;
    }
    printf("%-18s %-24s %-5s %-8s %-28s %-6s %10s %9s  %s\n", "kernel", "shape", "dtype", "backend", "device", "status", "time(ms)", "max err",
           "config");
    for (int b = 0; b < nb; b++) {
        const char *why;
        if (!ts_backend_available(names[b], &why)) {
            printf("%-18s %-24s %-5s %-8s %-28s %-6s  %s\n", "*", "-", "-", names[b], "-", "skip", why);
            skipped++;
            continue;
        }
        ts_context *ctx;
        if (ts_context_create(names[b], 0, &ctx)) {
            printf("%-8s: cannot open device: %s\n", names[b], ts_last_error());
            failures++;
            continue;
        }
        for (int e = 0; e < ts_example_count(); e++) {
            const ts_example *ex = ts_example_get(e);
            if (filter && !strstr(ex->name, filter)) continue;
            for (int di = 0; di < (quick ? 1 : ex->ndtypes); di++) {
                ts_dtype dt = ex->dtypes[di];
                ts_kernel *k;
                if (ex->build(dt, &k)) {
                    printf("%-18s build failed: %s\n", ex->name, ts_last_error());
                    failures++;
                    continue;
                }
                if (!ts_device_supports_dtype(ctx, dt)) {
                    printf("%-18s %-24s %-5s %-8s %-28.28s %-6s\n", ex->name, "*", ts_dtype_name(dt), names[b], ts_context_device_name(ctx), "n/s");
                    skipped++;
                    ts_kernel_destroy(k);
                    continue;
                }
                ts_config *cfgs[4];
                int nc = ts_ex_configs(k, cfgs, quick ? 1 : 4);
                for (int si = 0; si < 6 && ex->sizes[si]; si++) {
                    ts_ex_sizes sz;
                    ts_ex_parse_sizes(ex->sizes[si], &sz);
                    for (int c = 0; c < nc; c++) {
                        ts_ex_result r;
                        ts_ex_run_case(ctx, ex, k, dt, &sz, cfgs[c], 1, (uint64_t)(e * 131 + si * 7 + c + 1), &r);
                        char *cs = ts_config_format(cfgs[c]);
                        /* an extreme config past this device's limits (shared or
                         * private memory) is refused with TS_ERR_BAD_CONFIG, as the
                         * tests accept; the default config must always run */
                        if (c > 0 && r.status == TS_ERR_BAD_CONFIG) {
                            printf("%-18s %-24s %-5s %-8s %-28.28s %-6s %10s %9s  %s\n    %s\n", ex->name, ex->sizes[si], ts_dtype_name(dt), names[b],
                                   ts_context_device_name(ctx), "limit", "-", "-", cs && *cs ? cs : "default", r.message);
                            free(cs);
                            skipped++;
                            continue;
                        }
                        int ok = r.status == TS_OK;
                        printf("%-18s %-24s %-5s %-8s %-28.28s %-6s %10.3f %9.2e  %s%s%s\n", ex->name, ex->sizes[si], ts_dtype_name(dt), names[b],
                               ts_context_device_name(ctx), ok ? "ok" : "FAIL", r.ms, r.max_err, cs && *cs ? cs : "default", ok ? "" : "\n    ",
                               ok ? "" : r.message);
                        free(cs);
                        if (ok) passes++;
                        else failures++;
                    }
                }
                for (int c = 0; c < nc; c++) ts_config_destroy(cfgs[c]);
                ts_kernel_destroy(k);
            }
        }
        ts_context_destroy(ctx);
    }
    printf("\nexamples: %d passed, %d failed, %d skipped\n", passes, failures, skipped);
    return failures ? 1 : 0;
}
