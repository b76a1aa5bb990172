/* gpu_bench.c: times one example kernel at a large shape on a backend,
 * without the reference check (correctness at these kernels' tested sizes is
 * `tessera examples --backend B`). Built and run by tools/gpu-check.sh:
 *
 *   gpu_bench BACKEND NAME DTYPE SIZES [CONFIG] [REPEATS]
 *   gpu_bench cuda matmul f16 M=4096,N=4096,K=4096 "" 20
 *
 * CONFIG "": the kernel's defaults; "tuned": no config, so the launch takes
 * the tuning database's entry (nearest shape bucket) or the device default;
 * else a config ("BLOCK_M=128,..."). Prints one line: name dtype sizes
 * median_ms GB/s (bytes of every tensor moved once) GFLOP/s (2MNK for the
 * matmul family; 2HSTD for attention: QK^T and PV are 4HSTD, halved by the
 * causal mask the bench sets; else 0). Exit 1 on any failure, with the
 * reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A finite, non-zero fill in each dtype (the timing does not depend on it;
 * integer params get 0, a valid index for gather). */
static void fill(ts_dtype dt, void *buf, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case TS_F32: ((float *)buf)[i] = 0.25f + (float)(i % 7) * 0.125f; break;
        case TS_F64: ((double *)buf)[i] = 0.25 + (double)(i % 7) * 0.125; break;
        case TS_F16: ((unsigned short *)buf)[i] = (unsigned short)(0x3400 + (i % 7) * 0x40); break; /* 0.25 .. */
        case TS_BF16: ((unsigned short *)buf)[i] = (unsigned short)(0x3e80 + (i % 7) * 0x8); break;
        default: memset((char *)buf + i * (int64_t)ts_dtype_size(dt), 0, ts_dtype_size(dt)); break;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: gpu_bench BACKEND NAME DTYPE SIZES [CONFIG] [REPEATS]\n");
        return 2;
    }
    const char *backend = argv[1], *name = argv[2], *cfgtext = argc > 5 ? argv[5] : "";
    int repeats = argc > 6 ? atoi(argv[6]) : 20;
    if (repeats < 1 || repeats > 1000) repeats = 20;
    const ts_example *ex = ts_example_find(name);
    ts_dtype dt;
    ts_ex_sizes sz;
    if (!ex || ts_dtype_parse(argv[3], &dt) || ts_ex_parse_sizes(argv[4], &sz)) {
        fprintf(stderr, "gpu_bench: unknown example '%s', dtype '%s' or bad sizes '%s'\n", name, argv[3], argv[4]);
        return 2;
    }
    ts_context *ctx = NULL;
    ts_kernel *k = NULL;
    ts_config *cfg = NULL;
    ts_tensor *t[16] = {0};
    ts_arg args[16];
    int rc = 1, np = 0;
    double bytes = 0, flops = 0;
    int tuned = strcmp(cfgtext, "tuned") == 0;
    if (ts_context_create(backend, 0, &ctx) || ex->build(dt, &k) ||
        (tuned ? TS_OK : cfgtext[0] ? ts_config_parse(cfgtext, &cfg) : ts_config_create(&cfg))) {
        fprintf(stderr, "gpu_bench: %s\n", ts_last_error());
        goto done;
    }
    np = ts_kernel_param_count(k);
    if (np > 16) goto done;
    for (int p = 0; p < np; p++) {
        ts_param_info pi;
        ts_kernel_param(k, p, &pi);
        if (!pi.is_tensor) {
            args[p] = ts_dtype_is_float(pi.dtype) ? TS_ARG_F(1e-5) : TS_ARG_I(1);
            continue;
        }
        int64_t shape[TS_MAX_RANK], n = 1;
        for (int d = 0; d < pi.rank; d++) {
            shape[d] = pi.size_names[d] ? ts_ex_size(&sz, pi.size_names[d]) : pi.fixed_sizes[d];
            if (shape[d] < 0) {
                fprintf(stderr, "gpu_bench: size '%s' not given\n", pi.size_names[d]);
                goto done;
            }
            n *= shape[d];
        }
        size_t nb = (size_t)n * ts_dtype_size(pi.dtype);
        void *host = malloc(nb ? nb : 1);
        if (!host || ts_tensor_create(ctx, pi.dtype, pi.rank, shape, &t[p])) {
            free(host);
            fprintf(stderr, "gpu_bench: %s\n", ts_last_error());
            goto done;
        }
        fill(pi.dtype, host, n);
        ts_status s = ts_tensor_write(t[p], host, nb);
        free(host);
        if (s) {
            fprintf(stderr, "gpu_bench: %s\n", ts_last_error());
            goto done;
        }
        bytes += (double)nb;
        args[p] = TS_ARG_TENSOR(t[p]);
    }
    if (strncmp(name, "matmul", 6) == 0 || strcmp(name, "bmm") == 0) {
        int64_t M = ts_ex_size(&sz, "M"), N = ts_ex_size(&sz, "N"), K = ts_ex_size(&sz, "K"), B = ts_ex_size(&sz, "Z"); /* bmm */
        flops = 2.0 * (double)M * (double)N * (double)K * (double)(B > 0 ? B : 1);
    } else if (strcmp(name, "attention") == 0) {
        flops = 2.0 * (double)ts_ex_size(&sz, "H") * (double)ts_ex_size(&sz, "S") * (double)ts_ex_size(&sz, "T") * (double)ts_ex_size(&sz, "D");
    }
    double times[1000], ms = 0;
    for (int i = 0; i < 3; i++) /* warm-up, first launch compiles */
        if (ts_launch(ctx, k, cfg, args, np, &ms)) {
            fprintf(stderr, "gpu_bench: %s %s %s: %s\n", name, argv[3], argv[4], ts_last_error());
            goto done;
        }
    for (int i = 0; i < repeats; i++) {
        if (ts_launch(ctx, k, cfg, args, np, &times[i])) {
            fprintf(stderr, "gpu_bench: %s\n", ts_last_error());
            goto done;
        }
    }
    qsort(times, (size_t)repeats, sizeof times[0], cmp);
    ms = times[repeats / 2];
    printf("%s %s %s ms=%.4f GB/s=%.1f GFLOP/s=%.1f\n", name, argv[3], argv[4], ms, ms > 0 ? bytes / ms / 1e6 : 0, ms > 0 ? flops / ms / 1e6 : 0);
    rc = 0;
done:
    for (int p = 0; p < 16; p++) ts_tensor_destroy(t[p]);
    ts_config_destroy(cfg);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
    return rc;
}
