/* cmd_conformance.c: `tessera conformance`: the conformance suite on one
 * backend (conformance/, api/tessera_conformance.h) with the example kernel
 * set added to the built-in per-operation kernels; a table on stdout ending
 * in one summary line, optional JSON and JUnit reports, and an exit status
 * of 0 only when nothing failed, crashed or timed out. */
#include "cli.h"
#include "kernels.h"
#include "tessera_conformance.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ts_cli_conformance(int argc, char **argv);

/* ---------------------------------------------------------------- the examples as conformance kernels */

static void to_ex_sizes(const ts_conformance_sizes *s, ts_ex_sizes *e) {
    memset(e, 0, sizeof *e);
    for (int i = 0; i < s->n && i < TS_EX_MAX_SIZES; i++) {
        e->names[i] = s->names[i];
        e->values[i] = s->values[i];
    }
    e->n = s->n < TS_EX_MAX_SIZES ? s->n : TS_EX_MAX_SIZES;
}

static ts_status ex_build(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    return ((const ts_example *)kd->user)->build(dt, out);
}

static void ex_int_range(const ts_conformance_kernel *kd, int param, const ts_conformance_sizes *s, int64_t *lo, int64_t *hi) {
    const ts_example *ex = kd->user;
    ts_ex_sizes es;
    to_ex_sizes(s, &es);
    *lo = 0;
    *hi = ex->int_bound ? ex->int_bound(param, &es) : 100;
    if (*hi < 1) *hi = 1;
}

static double ex_scalar(const ts_conformance_kernel *kd, int param, const ts_conformance_sizes *s) {
    const ts_example *ex = kd->user;
    ts_ex_sizes es;
    to_ex_sizes(s, &es);
    return ex->scalar ? ex->scalar(param, &es) : 1.0;
}

/* Kernels whose tiling has several tunables that interact: their extremes
 * (all tunables and knobs at min, at max) run at the quick level too. */
static int quick_extremes(const char *name) {
    static const char *names[] = {"matmul", "attention", "long_sum", "softmax_online", "transpose", "embedding", "add"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0) return 1;
    return 0;
}

#define MAX_EXAMPLES 32
static ts_conformance_kernel ex_kernels[MAX_EXAMPLES];
static char ex_names[MAX_EXAMPLES][64];
static char ex_empty[MAX_EXAMPLES][96];

/* Shape classes of an example: its own size sets (typical, tiny, odd,
 * large), the odd sizes through strided and transposed views, and an
 * empty variant (the first size set to 0). */
static int example_kernels(void) {
    int n = 0;
    for (int e = 0; e < ts_example_count() && n < MAX_EXAMPLES; e++) {
        const ts_example *ex = ts_example_get(e);
        ts_conformance_kernel *k = &ex_kernels[n];
        memset(k, 0, sizeof *k);
        snprintf(ex_names[n], sizeof ex_names[n], "example.%s", ex->name);
        k->name = ex_names[n];
        k->group = "example";
        k->build = ex_build;
        for (int d = 0; d < ex->ndtypes && d < 8; d++) k->dtypes[d] = ex->dtypes[d];
        k->ndtypes = ex->ndtypes;
        k->quick_dtypes = 1;
        static const char *classes[] = {"typical", "tiny", "odd", "large"};
        for (int s = 0; s < 6 && ex->sizes[s] && k->nshapes < TS_CONFORMANCE_MAX_SHAPES; s++)
            k->shapes[k->nshapes++] = (ts_conformance_shape){s < 4 ? classes[s] : "extra", ex->sizes[s], TS_CONFORMANCE_CONTIGUOUS, 0, 0};
        const char *odd = ex->sizes[2] ? ex->sizes[2] : ex->sizes[0];
        k->shapes[k->nshapes++] = (ts_conformance_shape){"strided", odd, TS_CONFORMANCE_STRIDED, 0, 0};
        k->shapes[k->nshapes++] = (ts_conformance_shape){"transposed", odd, TS_CONFORMANCE_TRANSPOSED, 0, 0};
        k->shapes[k->nshapes++] = (ts_conformance_shape){"transposed_typical", ex->sizes[0], TS_CONFORMANCE_TRANSPOSED, 1, 0};
        const char *eq = strchr(odd, '='), *comma = strchr(odd, ',');
        if (eq) {
            snprintf(ex_empty[n], sizeof ex_empty[n], "%.*s=0%s", (int)(eq - odd), odd, comma ? comma : "");
            k->shapes[k->nshapes++] = (ts_conformance_shape){"empty", ex_empty[n], TS_CONFORMANCE_CONTIGUOUS, 0, 0};
        }
        k->outputs = ex->outputs;
        k->int_range = ex_int_range;
        k->scalar = ex_scalar;
        k->tol = (ts_conformance_tolerance){.kind = TS_CONFORMANCE_TOL_REL, .scale = ex->tol_scale};
        k->reduce_size = ex->reduce_dim;
        k->quick_configs = quick_extremes(ex->name) ? 3 : 1;
        k->user = ex;
        n++;
    }
    return n;
}

/* ---------------------------------------------------------------- output */

typedef struct cli_state {
    int quiet;
    int done, total;
} cli_state;

static void print_result(const ts_conformance_result *r, void *user) {
    cli_state *st = user;
    st->done++;
    if (st->quiet && (r->status == TS_CONFORMANCE_PASS || r->status == TS_CONFORMANCE_NOT_SUPPORTED)) return;
    char err[32];
    if (r->status == TS_CONFORMANCE_PASS || r->status == TS_CONFORMANCE_FAIL) {
        if (r->max_err >= 1e30) snprintf(err, sizeof err, "inf");
        else snprintf(err, sizeof err, "%.3g", r->max_err);
    } else snprintf(err, sizeof err, "-");
    printf("%-13s %-58s %-14s %9s %9.1f", ts_conformance_status_name(r->status), r->id, r->sizes, err, r->wall_ms);
    if (r->status != TS_CONFORMANCE_PASS) {
        /* the first line of the message (compile logs are long; the reports keep all of it) */
        const char *nl = strchr(r->message, '\n');
        int len = nl ? (int)(nl - r->message) : (int)strlen(r->message);
        printf("  %.*s%s", len > 300 ? 300 : len, r->message, nl || len > 300 ? " ..." : "");
        if (r->status == TS_CONFORMANCE_FAIL || r->status == TS_CONFORMANCE_COMPILE_ERROR) printf("  [config %s]", r->config);
    }
    printf("\n");
    fflush(stdout);
}

static void print_id(const char *id, void *user) {
    (void)user;
    printf("%s\n", id);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: tessera conformance [--backend B] [--device N] [--level quick|full] [--filter GLOB[,GLOB...]]\n"
            "                           [--json FILE] [--junit FILE] [--timeout SECONDS] [--seed N]\n"
            "                           [--quiet] [--list] [--no-fork] [--no-examples]\n"
            "\n"
            "Runs the conformance suite on one device: every operation in focused kernels and the\n"
            "example kernel set, per dtype, shape class (tiny, odd, aligned, non-multiple of every\n"
            "block size, large, broadcast, strided and transposed views, empty) and config (defaults,\n"
            "every tunable and knob at its minimum and at its maximum, ...), each compared with the\n"
            "reference executor under the tolerances of docs/conformance.md.\n"
            "\n"
            "Statuses: pass, fail (worst element, expected, got), not-supported (ruled out by the\n"
            "device's caps or refused as TS_ERR_BAD_CONFIG / TS_ERR_UNSUPPORTED), compile-error (with\n"
            "the log), crash and timeout (each case runs in a child process with a deadline).\n"
            "\n"
            "  --backend B    backend to test (default $TESSERA_BACKEND, else the best available);\n"
            "                 plugins are found on $TESSERA_BACKEND_PATH\n"
            "  --level L      quick (default; minutes) or full (every dtype, shape class and config)\n"
            "  --filter G     globs over case ids KERNEL/DTYPE/SHAPE/CONFIG, e.g. 'op.unary.*',\n"
            "                 '*/f16/*', 'example.matmul/*/odd/*'; '!GLOB' excludes\n"
            "  --json FILE    write the JSON report;  --junit FILE  write a JUnit XML report\n"
            "  --timeout S    deadline per case in seconds, compilation included (default 120)\n"
            "  --quiet        print only cases that did not pass or were not supported\n"
            "  --list         print the selected case ids and exit\n"
            "  --no-fork      run in this process (for a debugger; a crash ends the run)\n"
            "\n"
            "Exit status: 0 when no case failed, crashed, timed out or failed to compile; 1 otherwise;\n"
            "2 on usage errors or when the backend cannot be opened.\n");
}

int ts_cli_conformance(int argc, char **argv) {
    if (ts_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    ts_conformance_options o = TS_CONFORMANCE_OPTIONS_INIT;
    o.backend = ts_cli_backend(argc, argv);
    const char *dev = ts_cli_option(argc, argv, "--device");
    o.device = dev ? atoi(dev) : 0;
    const char *level = ts_cli_option(argc, argv, "--level");
    if (level && ts_conformance_level_parse(level, &o.level)) {
        fprintf(stderr, "tessera conformance: %s\n", ts_last_error());
        return 2;
    }
    o.filter = ts_cli_option(argc, argv, "--filter");
    const char *timeout = ts_cli_option(argc, argv, "--timeout");
    if (timeout) {
        o.timeout_s = atof(timeout);
        if (!(o.timeout_s > 0)) {
            fprintf(stderr, "tessera conformance: --timeout needs a positive number of seconds\n");
            return 2;
        }
    }
    const char *seed = ts_cli_option(argc, argv, "--seed");
    if (seed) o.seed = strtoull(seed, NULL, 10);
    o.no_fork = ts_cli_flag(argc, argv, "--no-fork");
    if (!ts_cli_flag(argc, argv, "--no-examples")) {
        o.kernels = ex_kernels;
        o.nkernels = example_kernels();
    }
    const char *json = ts_cli_option(argc, argv, "--json"), *junit = ts_cli_option(argc, argv, "--junit");
    cli_state st = {.quiet = ts_cli_flag(argc, argv, "--quiet")};
    if (ts_cli_flag(argc, argv, "--list")) {
        int n = ts_conformance_list(&o, print_id, NULL);
        if (n < 0) {
            fprintf(stderr, "tessera conformance: %s\n", ts_last_error());
            return 2;
        }
        fprintf(stderr, "%d cases\n", n);
        return 0;
    }
    o.on_result = print_result;
    o.user = &st;
    printf("%-13s %-58s %-14s %9s %9s  %s\n", "status", "case (kernel/dtype/shape/config)", "sizes", "err/tol", "ms", "detail");
    fflush(stdout);
    ts_conformance_report *rep;
    ts_status s = ts_conformance_run(&o, &rep);
    if (s) {
        fprintf(stderr, "tessera conformance: %s: %s\n", ts_status_name(s), ts_last_error());
        return 2;
    }
    printf("backend %s, device %s, fingerprint %s, level %s, %d cases in %.1f s\n", ts_conformance_report_backend(rep),
           ts_conformance_report_device(rep), ts_conformance_report_fingerprint(rep), o.level == TS_CONFORMANCE_FULL ? "full" : "quick",
           ts_conformance_report_count(rep), ts_conformance_report_seconds(rep));
    int rc = ts_conformance_report_ok(rep) ? 0 : 1;
    if (json && ts_conformance_report_write_json(rep, json)) {
        fprintf(stderr, "tessera conformance: cannot write %s: %s\n", json, ts_last_error());
        rc = rc ? rc : 2;
    }
    if (junit && ts_conformance_report_write_junit(rep, junit)) {
        fprintf(stderr, "tessera conformance: cannot write %s: %s\n", junit, ts_last_error());
        rc = rc ? rc : 2;
    }
    printf("%s\n", ts_conformance_report_summary(rep));
    ts_conformance_report_destroy(rep);
    return rc;
}
