/* cmd_devices.c: `tessera devices`. */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>

int ts_cli_devices(int argc, char **argv) {
    if (ts_cli_wants_help(argc, argv)) {
        printf("usage: tessera devices [--backend NAME]\n"
               "Lists every registered backend and its devices with the hardware fingerprint\n"
               "(readable id and hash); a backend that cannot run here says why.\n");
        return 0;
    }
    const char *only = ts_cli_backend(argc, argv);
    const char *names[32];
    int n = ts_cli_selected_backends(only, names, 32);
    if (n == 0) {
        fprintf(stderr, "tessera devices: no backend named '%s'\n", only);
        return 2;
    }
    for (int i = 0; i < n; i++) {
        const char *why = NULL;
        if (!ts_backend_available(names[i], &why)) {
            printf("%-8s not available: %s\n", names[i], why);
            continue;
        }
        int nd = ts_backend_device_count(names[i]);
        for (int d = 0; d < nd; d++) {
            ts_context *ctx;
            if (ts_context_create(names[i], d, &ctx) != TS_OK) {
                printf("%-8s device %d: cannot open: %s\n", names[i], d, ts_last_error());
                continue;
            }
            uint64_t h;
            const char *fp = ts_context_fingerprint(ctx, &h);
            const ts_device_caps *c = ts_context_caps(ctx);
            printf("%-8s device %d: %s\n", names[i], d, ts_context_device_name(ctx));
            printf("         fingerprint %s (hash %016" PRIx64 ")\n", fp, h);
            printf("         max group %d, shared %lld KiB, subgroup %d, compute units %d, memory %lld MiB, dtypes:",
                   c->max_group_size, (long long)(c->shared_mem_bytes >> 10), c->subgroup_size, c->compute_units,
                   (long long)(c->global_mem_bytes >> 20));
            for (int t = 0; t < TS_DTYPE_COUNT; t++)
                if (ts_device_supports_dtype(ctx, (ts_dtype)t)) printf(" %s", ts_dtype_name((ts_dtype)t));
            printf("\n");
            ts_context_destroy(ctx);
        }
    }
    return 0;
}
