/* cases.c: which cases a run has: kernels (built in and the caller's) x
 * dtypes x shape classes x configs, cut down by the level and the filter.
 * Also the small public helpers (status names, levels, sizes). */
#include "conf_internal.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ts_conformance_status_name(ts_conformance_status s) {
    static const char *names[] = {"pass", "fail", "not-supported", "compile-error", "crash", "timeout"};
    return (unsigned)s < TS_CONFORMANCE_STATUS_COUNT ? names[s] : "unknown";
}

ts_status ts_conformance_level_parse(const char *text, ts_conformance_level *out) {
    if (text && strcmp(text, "quick") == 0) *out = TS_CONFORMANCE_QUICK;
    else if (text && strcmp(text, "full") == 0) *out = TS_CONFORMANCE_FULL;
    else return ts__error(TS_ERR_INVALID_ARGUMENT, "conformance level '%s' (expected quick or full)", text ? text : "(null)");
    return TS_OK;
}

int64_t ts_conformance_size(const ts_conformance_sizes *s, const char *name) {
    for (int i = 0; s && name && i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) return s->values[i];
    return -1;
}

ts_status ts__conf_parse_sizes(const char *text, ts_conformance_sizes *s) {
    memset(s, 0, sizeof *s);
    const char *p = text ? text : "";
    while (*p) {
        while (*p == ',' || *p == ' ') p++;
        if (!*p) break;
        const char *eq = strchr(p, '=');
        if (!eq || eq == p || eq - p >= (long)sizeof s->names[0] || s->n >= TS_CONFORMANCE_MAX_SIZES)
            return ts__error(TS_ERR_INVALID_ARGUMENT, "bad size list '%s' (expected NAME=VALUE,...)", text);
        memcpy(s->names[s->n], p, (size_t)(eq - p));
        s->names[s->n][eq - p] = 0;
        char *end;
        long long v = strtoll(eq + 1, &end, 10);
        if (end == eq + 1 || v < 0) return ts__error(TS_ERR_INVALID_ARGUMENT, "bad size value in '%s'", text);
        s->values[s->n++] = v;
        p = end;
    }
    return TS_OK;
}

/* ---------------------------------------------------------------- configs */

/* The backend knobs at the ends of their valid ranges (api/config.c). */
static const struct { const char *key; int64_t lo, hi; } knob_ends[] = {
    {"threads", 1, 1024}, {"vec", 1, 16},      {"unroll", 1, 8},      {"stage", 0, 1},        {"micro_m", 1, 16},
    {"micro_n", 1, 16},   {"col_threads", 1, 1024}, {"group_m", 1, 64}, {"tensor_cores", 0, 1},
};

int ts__conf_configs(const ts_kernel *k, ts_config **out, const char **names, int max) {
    /* tmin/tmax: every tunable at its end, knobs at their defaults (cheap, and
     * the block-size edge cases); min/max: knobs at their ends too */
    static const char *all[] = {"default", "tmin", "tmax", "min", "max", "alt"};
    int nt = ts_kernel_tunable_count(k), n = 0;
    for (int v = 0; v < 6 && n < max; v++) {
        int lo = v == 1 || v == 3, hi = v == 2 || v == 4;
        if ((v == 1 || v == 2) && nt == 0) continue;
        if (v == 5 && nt < 2) continue;
        ts_config *c;
        if (ts_config_create(&c)) break;
        for (int i = 0; i < nt && v > 0; i++) {
            ts_tunable_info ti;
            ts_kernel_tunable(k, i, &ti);
            ts_config_set(c, ti.name, lo ? ti.min : hi ? ti.max : (i % 2 ? ti.min : ti.max));
        }
        if (v == 3 || v == 4)
            for (size_t j = 0; j < sizeof knob_ends / sizeof knob_ends[0]; j++) ts_config_set(c, knob_ends[j].key, lo ? knob_ends[j].lo : knob_ends[j].hi);
        names[n] = all[v];
        out[n++] = c;
    }
    return n;
}

/* ---------------------------------------------------------------- filters */

static int glob_match(const char *glob, size_t len, const ts__conf_case *c) {
    char g[256];
    if (len >= sizeof g) len = sizeof g - 1;
    memcpy(g, glob, len);
    g[len] = 0;
    const char *subject = strchr(g, '/') ? c->id : c->kd->name;
    return fnmatch(g, subject, 0) == 0;
}

/* Comma-separated globs; "!GLOB" excludes. A case runs when it matches a
 * positive glob (or there is none) and no negative one. */
static int filter_match(const char *filter, const ts__conf_case *c) {
    if (!filter || !*filter) return 1;
    int positives = 0, hit = 0;
    const char *p = filter;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && *p == ' ') p++, len--;
        if (len) {
            if (*p == '!') {
                if (len > 1 && glob_match(p + 1, len - 1, c)) return 0;
            } else {
                positives++;
                if (glob_match(p, len, c)) hit = 1;
            }
        }
        if (!e) break;
        p = e + 1;
    }
    return positives == 0 || hit;
}

/* ---------------------------------------------------------------- enumeration */

static int push(ts__conf_case **arr, int *n, int *cap, const ts__conf_case *c) {
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 256;
        void *p = ts__realloc_array(*arr, (size_t)nc, sizeof **arr);
        if (!p) return 0;
        *arr = p;
        *cap = nc;
    }
    (*arr)[(*n)++] = *c;
    return 1;
}

ts_status ts__conf_enumerate(const ts_conformance_options *o, ts__conf_case **out, int *nout) {
    *out = NULL;
    *nout = 0;
    int nk = (o->no_builtin ? 0 : ts__conf_builtin_count()) + (o->kernels ? o->nkernels : 0);
    ts__conf_case *arr = NULL;
    int n = 0, cap = 0;
    int full = o->level == TS_CONFORMANCE_FULL;
    for (int ki = 0; ki < nk; ki++) {
        const ts_conformance_kernel *kd = o->no_builtin ? &o->kernels[ki]
                                          : ki < ts__conf_builtin_count() ? ts__conf_builtin(ki) : &o->kernels[ki - ts__conf_builtin_count()];
        if (!kd->name || !kd->build || kd->ndtypes <= 0) continue;
        /* configs come from the tunables, the same for every dtype */
        ts_config *cfgs[TS__CONF_MAX_CONFIGS];
        const char *cnames[TS__CONF_MAX_CONFIGS];
        int nc = 0;
        ts_kernel *k = NULL;
        if (kd->build(kd, kd->dtypes[0], &k) == TS_OK) nc = ts__conf_configs(k, cfgs, cnames, TS__CONF_MAX_CONFIGS);
        char ctext[TS__CONF_MAX_CONFIGS][160];
        for (int c = 0; c < nc; c++) {
            char *t = ts_config_format(cfgs[c]);
            snprintf(ctext[c], sizeof ctext[c], "%s", t && *t ? t : "default");
            free(t);
            ts_config_destroy(cfgs[c]);
        }
        ts_kernel_destroy(k);
        if (nc == 0) { /* the kernel does not build: one case per dtype and shape reports it */
            nc = 1;
            cnames[0] = "default";
            snprintf(ctext[0], sizeof ctext[0], "default");
        }
        int qd = kd->quick_dtypes == 0 ? 1 : kd->quick_dtypes < 0 ? 0 : kd->quick_dtypes;
        int nd = full ? kd->ndtypes : (qd < kd->ndtypes ? qd : kd->ndtypes);
        int qc = kd->quick_configs <= 0 ? 1 : kd->quick_configs;
        int ncfg = full ? nc : (qc < nc ? qc : nc);
        for (int d = 0; d < nd; d++)
            for (int s = 0; s < kd->nshapes; s++) {
                const ts_conformance_shape *sh = &kd->shapes[s];
                if (sh->full_only && !full) continue;
                ts__conf_case c;
                memset(&c, 0, sizeof c);
                c.kd = kd;
                c.dt = kd->dtypes[d];
                c.shape = s;
                /* shape class names are unique per kernel: a repeated one gets a number */
                int rep = 0;
                for (int t = 0; t < s; t++)
                    if (strcmp(kd->shapes[t].shape_class, sh->shape_class) == 0) rep++;
                if (rep) snprintf(c.shape_name, sizeof c.shape_name, "%s%d", sh->shape_class, rep + 1);
                else snprintf(c.shape_name, sizeof c.shape_name, "%s", sh->shape_class);
                for (int ci = 0; ci < ncfg; ci++) {
                    c.config = ci;
                    snprintf(c.config_name, sizeof c.config_name, "%s", cnames[ci]);
                    snprintf(c.config_text, sizeof c.config_text, "%s", ctext[ci]);
                    snprintf(c.id, sizeof c.id, "%s/%s/%s/%s", kd->name, ts_dtype_name(c.dt), c.shape_name, c.config_name);
                    if (!filter_match(o->filter, &c)) continue;
                    if (!push(&arr, &n, &cap, &c)) {
                        free(arr);
                        return TS_ERR_OUT_OF_MEMORY;
                    }
                }
            }
    }
    *out = arr;
    *nout = n;
    return TS_OK;
}

int ts_conformance_list(const ts_conformance_options *opts, void (*fn)(const char *id, void *user), void *user) {
    ts_conformance_options o = TS_CONFORMANCE_OPTIONS_INIT;
    if (opts) memcpy(&o, opts, opts->size < sizeof o ? opts->size : sizeof o);
    ts__conf_case *cases;
    int n;
    ts_status s = ts__conf_enumerate(&o, &cases, &n);
    if (s) return s;
    for (int i = 0; fn && i < n; i++) fn(cases[i].id, user);
    free(cases);
    return n;
}
