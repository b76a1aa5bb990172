/* cmd_tune.c: `tessera tune`: tunes one kernel (an example by name or a
 * .tile file) on one device at one shape and stores the result in the
 * tuning database; --list, --export and --import manage the database.
 *
 * Sections: arguments; progress line; the final table; database commands;
 * the command. */
#include "cli.h"
#include "cli_lang.h"
#include "tessera_tune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ts_cli_tune(int argc, char **argv);

/* ---------------------------------------------------------------- arguments */

static const char *const value_options[] = {"--backend", "--shape",  "--dtype",  "--effort",    "--budget", "--strategy",
                                            "--seed",    "--export", "--import", "--max-evals", "--repeats", NULL};

static const char *positional(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) return argv[i];
        for (int o = 0; value_options[o]; o++)
            if (strcmp(argv[i], value_options[o]) == 0) {
                i++;
                break;
            }
    }
    return NULL;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: tessera tune NAME|FILE.tile [--backend B] [--shape M=1024,N=1024,K=1024] [--dtype f16]\n"
            "                    [--effort quick|full] [--budget SECONDS] [--strategy auto|exhaustive|random|guided]\n"
            "                    [--seed S] [--max-evals N] [--repeats N] [--force] [--no-db]\n"
            "       tessera tune --list [--backend B]\n"
            "       tessera tune --export FILE\n"
            "       tessera tune --import FILE [--replace]\n"
            "Searches the kernel's config space (its block sizes and the backend's knobs, pruned by the\n"
            "device's limits) on one device at one shape. Every candidate is compiled, checked against\n"
            "the reference executor on random inputs of the shape (a wrong result is rejected, never\n"
            "chosen) and timed (median of device times after a warm-up). The best config is stored in\n"
            "the tuning database ($TESSERA_CACHE_DIR/tuning, one file per device fingerprint) and\n"
            "launches without a config use it. A second tune of the same kernel and shape reads the\n"
            "database and tunes nothing (--force tunes again). Sizes default to the example's first\n"
            "size set, else 100. Effort quick (default): trimmed axes, budget 90 s; full: every value,\n"
            "budget 600 s. --list prints the database, --export writes it to one file (for shipping),\n"
            "--import merges such a file in (faster entries win; --replace replaces each device's file).\n");
}

typedef struct example_user {
    const ts_example *ex;
    ts_ex_sizes sizes;
} example_user;

static int64_t ex_int_bound(int param, void *user) {
    example_user *u = user;
    return u->ex->int_bound(param, &u->sizes);
}

static double ex_scalar(int param, void *user) {
    example_user *u = user;
    return u->ex->scalar(param, &u->sizes);
}

/* ---------------------------------------------------------------- progress line */

static void on_progress(const ts_tune_progress *p, void *user) {
    (void)user;
    char space[32];
    if (p->space >= 0) snprintf(space, sizeof space, "%d", p->space);
    else snprintf(space, sizeof space, "many");
    char last[64];
    if (p->outcome == TS_TUNE_OK) snprintf(last, sizeof last, "%.3f ms", p->ms);
    else snprintf(last, sizeof last, "%s", ts_tune_outcome_name(p->outcome));
    char best[48] = "-";
    if (p->best_ms > 0) snprintf(best, sizeof best, "%.3f ms (%.2fx)", p->best_ms, p->default_ms > 0 ? p->default_ms / p->best_ms : 0);
    printf("\r  [%4d/%s] %5.1f/%.0f s  best %-22s last %-12s %-60.60s\033[K", p->done, space, p->elapsed_s, p->budget_s, best, last, p->config);
    fflush(stdout);
}

/* ---------------------------------------------------------------- the final table */

static int cmp_ms(const void *a, const void *b) {
    const ts_tune_candidate *x = *(const ts_tune_candidate *const *)a, *y = *(const ts_tune_candidate *const *)b;
    return x->ms < y->ms ? -1 : x->ms > y->ms;
}

static void print_report(const ts_tune_report *r) {
    printf("\n");
    if (r->from_db) {
        printf("  found in the tuning database: nothing tuned (--force tunes again)\n");
        printf("  %-8s %-76s %10s %9s\n", "", "config", "ms", "speed-up");
        printf("  %-8s %-76.76s %10.4f %8.2fx\n", "best", r->best_config[0] ? r->best_config : "(kernel defaults)", r->best_ms, r->speedup);
        printf("  %-8s %-76s %10.4f %8.2fx\n", "default", "(kernel defaults)", r->default_ms, 1.0);
        return;
    }
    printf("  strategy %s; space %lld valid configs; tried %d%s\n", r->strategy, (long long)r->space, r->tried,
           r->budget_exhausted ? " (budget reached)" : "");
    printf("  outcomes: %d ok, %d pruned before compiling, %d failed to compile or launch, %d rejected (wrong result), %d timed out\n", r->ok,
           r->pruned, r->failed_compile, r->rejected_wrong, r->timed_out);
    printf("\n  %-8s %-76s %10s %9s\n", "", "config", "ms", "speed-up");
    printf("  %-8s %-76.76s %10.4f %8.2fx\n", "best", r->best_config[0] ? r->best_config : "(kernel defaults)", r->best_ms, r->speedup);
    printf("  %-8s %-76s %10.4f %8.2fx\n", "default", "(kernel defaults)", r->default_ms, r->default_ms > 0 ? 1.0 : 0.0);
    const ts_tune_candidate **ok = calloc((size_t)(r->ncandidates + 1), sizeof *ok);
    int nok = 0;
    for (int i = 0; ok && i < r->ncandidates; i++)
        if (r->candidates[i].outcome == TS_TUNE_OK) ok[nok++] = &r->candidates[i];
    if (ok && nok) {
        qsort(ok, (size_t)nok, sizeof *ok, cmp_ms);
        printf("\n  fastest candidates:\n");
        for (int i = 0; i < nok && i < 5; i++)
            printf("  %-8d %-76.76s %10.4f %8.2fx\n", i + 1, ok[i]->config, ok[i]->ms, r->default_ms > 0 ? r->default_ms / ok[i]->ms : 0);
    }
    free(ok);
    int shown = 0;
    for (int i = 0; i < r->ncandidates; i++) {
        const ts_tune_candidate *c = &r->candidates[i];
        if (c->outcome == TS_TUNE_OK) continue;
        if (!shown++) printf("\n  not chosen, and why:\n");
        if (shown > 12) continue;
        printf("  %-8s %-48.48s %s\n", ts_tune_outcome_name(c->outcome), c->config, c->why);
    }
    if (shown > 12) printf("  ... and %d more\n", shown - 12);
    printf("\n  tuning time %.1f s (reference executor %.1f s)%s\n", r->tuning_s, r->reference_s,
           r->stored ? "; stored in the tuning database" : "");
}

/* ---------------------------------------------------------------- database commands */

static int cmd_list(const char *backend) {
    ts_tune_db_entry *e;
    int n;
    if (ts_tune_db_list(NULL, &e, &n)) {
        fprintf(stderr, "tessera tune --list: %s\n", ts_last_error());
        return 1;
    }
    const char *prev = "";
    int shown = 0;
    for (int i = 0; i < n; i++) {
        if (backend && strncmp(e[i].fingerprint, backend, strlen(backend)) != 0) continue;
        if (strcmp(prev, e[i].fingerprint) != 0) {
            printf("%s (%s)\n", e[i].fingerprint, e[i].fingerprint_hash);
            printf("  %-18s %-16s %-26s %-56s %10s %10s %8s  %s\n", "kernel", "dtypes", "bucket", "config", "ms", "default", "speed-up", "date");
            prev = e[i].fingerprint;
        }
        printf("  %-18.18s %-16.16s %-26.26s %-56.56s %10.4f %10.4f %7.2fx  %s\n", e[i].kernel, e[i].dtypes, e[i].bucket,
               e[i].config[0] ? e[i].config : "(defaults)", e[i].ms, e[i].default_ms, e[i].ms > 0 ? e[i].default_ms / e[i].ms : 0, e[i].date);
        shown++;
    }
    printf("%d entr%s\n", shown, shown == 1 ? "y" : "ies");
    free(e);
    return 0;
}

/* ---------------------------------------------------------------- the command */

int ts_cli_tune(int argc, char **argv) {
    if (ts_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *backend = ts_cli_backend(argc, argv);
    if (ts_cli_flag(argc, argv, "--list")) return cmd_list(backend);
    const char *exp = ts_cli_option(argc, argv, "--export"), *imp = ts_cli_option(argc, argv, "--import");
    if (exp) {
        int n = 0;
        if (ts_tune_db_export(exp, NULL, &n)) {
            fprintf(stderr, "tessera tune --export: %s\n", ts_last_error());
            return 1;
        }
        printf("exported %d entries to %s\n", n, exp);
        return 0;
    }
    if (imp) {
        int n = 0;
        if (ts_tune_db_import(imp, !ts_cli_flag(argc, argv, "--replace"), &n)) {
            fprintf(stderr, "tessera tune --import: %s\n", ts_last_error());
            return 1;
        }
        printf("imported %d entries from %s\n", n, imp);
        return 0;
    }
    const char *target = positional(argc, argv);
    if (!target) {
        usage(stderr);
        return 2;
    }
    ts_tune_options o = TS_TUNE_OPTIONS_INIT;
    const char *effort = ts_cli_option(argc, argv, "--effort"), *strategy = ts_cli_option(argc, argv, "--strategy");
    const char *budget = ts_cli_option(argc, argv, "--budget"), *seed = ts_cli_option(argc, argv, "--seed");
    const char *max_evals = ts_cli_option(argc, argv, "--max-evals"), *repeats = ts_cli_option(argc, argv, "--repeats");
    if (effort) {
        if (strcmp(effort, "none") == 0) o.effort = TS_TUNE_EFFORT_NONE;
        else if (strcmp(effort, "quick") == 0) o.effort = TS_TUNE_EFFORT_QUICK;
        else if (strcmp(effort, "full") == 0) o.effort = TS_TUNE_EFFORT_FULL;
        else {
            fprintf(stderr, "tessera tune: --effort is none, quick or full\n");
            return 2;
        }
    }
    if (strategy) {
        if (strcmp(strategy, "auto") == 0) o.strategy = TS_TUNE_AUTO;
        else if (strcmp(strategy, "exhaustive") == 0) o.strategy = TS_TUNE_EXHAUSTIVE;
        else if (strcmp(strategy, "random") == 0) o.strategy = TS_TUNE_RANDOM;
        else if (strcmp(strategy, "guided") == 0) o.strategy = TS_TUNE_GUIDED;
        else {
            fprintf(stderr, "tessera tune: --strategy is auto, exhaustive, random or guided\n");
            return 2;
        }
    }
    if (budget && (o.budget_s = atof(budget)) <= 0) {
        fprintf(stderr, "tessera tune: --budget takes a number of seconds\n");
        return 2;
    }
    if (seed) o.seed = strtoull(seed, NULL, 10);
    if (max_evals) o.max_evals = atoi(max_evals);
    if (repeats) o.repeats = atoi(repeats);
    o.force = ts_cli_flag(argc, argv, "--force");
    o.use_db = !ts_cli_flag(argc, argv, "--no-db");

    ts_cli_kernel ck;
    int rc = ts_cli_load_kernel(target, ts_cli_option(argc, argv, "--dtype"), &ck);
    if (rc) return rc;
    ts_cli_sizes sz;
    ts_context *ctx = NULL;
    ts_tune_report *r = NULL;
    example_user eu = {0};
    rc = ts_cli_sizes_for(&ck, ts_cli_option(argc, argv, "--shape"), &sz);
    if (rc) goto done;
    ts_status s = ts_context_create(backend, 0, &ctx);
    if (s) {
        fprintf(stderr, "tessera tune: cannot open backend '%s': %s\n", backend ? backend : "auto", ts_last_error());
        rc = 1;
        goto done;
    }
    const char *names[TS_CLI_MAX_SIZES];
    int64_t values[TS_CLI_MAX_SIZES];
    int n = 0;
    for (int i = 0; i < sz.n; i++) { /* only the kernel's sizes (an example's size set may name more) */
        int used = 0;
        for (int p = 0; p < ts_kernel_param_count(ck.k) && !used; p++) {
            ts_param_info pi;
            ts_kernel_param(ck.k, p, &pi);
            for (int d = 0; d < pi.rank; d++) used |= pi.size_names[d] && strcmp(pi.size_names[d], sz.names[i]) == 0;
        }
        if (!used) continue;
        names[n] = sz.names[i];
        values[n++] = sz.values[i];
    }
    if (ck.ex) {
        eu.ex = ck.ex;
        for (int i = 0; i < sz.n && i < TS_EX_MAX_SIZES; i++) {
            eu.sizes.names[eu.sizes.n] = sz.names[i];
            eu.sizes.values[eu.sizes.n++] = sz.values[i];
        }
        o.user = &eu;
        o.tol_scale = ck.ex->tol_scale;
        o.reduce_size = ck.ex->reduce_dim;
        if (ck.ex->int_bound) o.int_bound = ex_int_bound;
        if (ck.ex->scalar) o.scalar = ex_scalar;
    }
    o.progress = on_progress;
    char sizes_text[512];
    ts_cli_sizes_format(&sz, sizes_text, sizeof sizes_text);
    printf("tune %s (%s%s%s) on %s [%s]\n  sizes %s, effort %s\n  fingerprint %s\n", ts_kernel_name(ck.k), ck.from_file ? target : "example",
           ck.ex ? ", dtype " : "", ck.ex ? ts_dtype_name(ck.dt) : "", ts_context_backend(ctx), ts_context_device_name(ctx), sizes_text,
           o.effort == TS_TUNE_EFFORT_FULL ? "full" : o.effort == TS_TUNE_EFFORT_NONE ? "none" : "quick", ts_context_fingerprint(ctx, NULL));
    fflush(stdout);
    s = ts_tune(ctx, ck.k, names, values, n, &o, &r);
    if (r) print_report(r);
    if (s) {
        fprintf(stderr, "tessera tune: %s\n", ts_last_error());
        rc = 1;
    }
done:
    ts_tune_report_destroy(r);
    ts_context_destroy(ctx);
    ts_kernel_destroy(ck.k);
    return rc;
}
