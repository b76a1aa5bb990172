/* config.c: configs bind tunables (by name) and backend knobs to integers. */
#include "ir.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ts__config_entry {
    char key[TS__MAX_NAME];
    int64_t value;
} ts__config_entry;

struct ts_config {
    ts__config_entry *e;
    int n, cap;
};

/* Backend knobs: name, min, max, must be a power of two. */
static const struct { const char *name; int64_t min, max; int pow2; } knobs[] = {
    {"threads", 1, 1024, 1}, {"vec", 1, 16, 1},     {"unroll", 1, 8, 0},       {"stage", 0, 1, 0},
    {"micro_m", 1, 16, 1},   {"micro_n", 1, 16, 1}, {"tensor_cores", 0, 2, 0}, {"group_m", 1, 64, 0},
    {"col_threads", 1, 1024, 1}, {"nt", 0, 1, 0},   {"warps", 1, 32, 1},   {"stages", 1, 4, 0},
};

ts_status ts_config_create(ts_config **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_config_create: out is NULL");
    *out = ts__calloc(1, sizeof **out);
    return *out ? TS_OK : TS_ERR_OUT_OF_MEMORY;
}

void ts_config_destroy(ts_config *c) {
    if (!c) return;
    free(c->e);
    free(c);
}

static int find(const ts_config *c, const char *key) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->e[i].key, key) == 0) return i;
    return -1;
}

ts_status ts_config_set(ts_config *c, const char *key, int64_t value) {
    if (!c || !key || !*key) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_config_set: NULL config or empty key");
    if (strlen(key) >= TS__MAX_NAME) return ts__error(TS_ERR_BAD_CONFIG, "config key '%.40s...' is too long", key);
    int i = find(c, key);
    if (i < 0) {
        if (c->n == c->cap) {
            int nc = c->cap ? c->cap * 2 : 8;
            void *p = ts__realloc_array(c->e, (size_t)nc, sizeof *c->e);
            if (!p) return TS_ERR_OUT_OF_MEMORY;
            c->e = p;
            c->cap = nc;
        }
        i = c->n++;
        snprintf(c->e[i].key, sizeof c->e[i].key, "%s", key);
    }
    c->e[i].value = value;
    return TS_OK;
}

int ts_config_get(const ts_config *c, const char *key, int64_t *value) {
    if (!c || !key) return 0;
    int i = find(c, key);
    if (i < 0) return 0;
    if (value) *value = c->e[i].value;
    return 1;
}

int ts_config_count(const ts_config *c) { return c ? c->n : 0; }
const char *ts_config_key(const ts_config *c, int i) { return c && i >= 0 && i < c->n ? c->e[i].key : NULL; }

ts_status ts_config_parse(const char *text, ts_config **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_config_parse: out is NULL");
    *out = NULL;
    if (!text) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_config_parse: text is NULL");
    ts_config *c;
    ts_status s = ts_config_create(&c);
    if (s) return s;
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        const char *k0 = p;
        while (isalnum((unsigned char)*p) || *p == '_') p++;
        size_t klen = (size_t)(p - k0);
        if (klen == 0 || klen >= TS__MAX_NAME || *p != '=') {
            ts_config_destroy(c);
            return ts__error(TS_ERR_BAD_CONFIG, "config '%s': expected KEY=VALUE at column %d", text, (int)(k0 - text) + 1);
        }
        char key[TS__MAX_NAME];
        memcpy(key, k0, klen);
        key[klen] = 0;
        p++;
        errno = 0;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || (*end && *end != ',' && *end != ' ')) {
            ts_config_destroy(c);
            return ts__error(TS_ERR_BAD_CONFIG, "config '%s': value of '%s' is not an integer", text, key);
        }
        if (find(c, key) >= 0) {
            ts_config_destroy(c);
            return ts__error(TS_ERR_BAD_CONFIG, "config '%s': key '%s' given twice", text, key);
        }
        s = ts_config_set(c, key, v);
        if (s) { ts_config_destroy(c); return s; }
        p = end;
    }
    *out = c;
    return TS_OK;
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const ts__config_entry *)a)->key, ((const ts__config_entry *)b)->key);
}

char *ts_config_format(const ts_config *c) {
    ts__sb sb = {0};
    if (c && c->n) {
        ts__config_entry *tmp = ts__calloc((size_t)c->n, sizeof *tmp);
        if (!tmp) return NULL;
        memcpy(tmp, c->e, (size_t)c->n * sizeof *tmp);
        qsort(tmp, (size_t)c->n, sizeof *tmp, cmp_entry);
        for (int i = 0; i < c->n; i++) ts__sb_printf(&sb, "%s%s=%lld", i ? "," : "", tmp[i].key, (long long)tmp[i].value);
        free(tmp);
    }
    return ts__sb_finish(&sb);
}

ts_status ts_config_copy(const ts_config *c, ts_config **out) {
    ts_status s = ts_config_create(out);
    if (s) return s;
    for (int i = 0; c && i < c->n; i++) {
        s = ts_config_set(*out, c->e[i].key, c->e[i].value);
        if (s) { ts_config_destroy(*out); *out = NULL; return s; }
    }
    return TS_OK;
}

int ts__config_knob_index(const char *key) {
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
        if (strcmp(knobs[i].name, key) == 0) return (int)i;
    return -1;
}

ts_status ts_config_check(const ts_config *c, const ts_kernel *k) {
    if (!k) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_config_check: kernel is NULL");
    for (int i = 0; c && i < c->n; i++) {
        const char *key = c->e[i].key;
        int64_t v = c->e[i].value;
        int t = ts__find_tunable(&k->ir, key);
        if (t >= 0) {
            const ts__tunable *tu = &k->ir.tunables[t];
            if (v < tu->min || v > tu->max || (v & (v - 1)) != 0)
                return ts__error(TS_ERR_BAD_CONFIG, "kernel '%s': config %s=%lld is not a power of two in %lld..%lld", k->ir.name, key,
                                 (long long)v, (long long)tu->min, (long long)tu->max);
            continue;
        }
        int kn = ts__config_knob_index(key);
        if (kn < 0)
            return ts__error(TS_ERR_UNKNOWN_TUNABLE, "kernel '%s': config key '%s' is neither a tunable of the kernel nor a backend knob",
                             k->ir.name, key);
        if (v < knobs[kn].min || v > knobs[kn].max || (knobs[kn].pow2 && (v & (v - 1)) != 0))
            return ts__error(TS_ERR_BAD_CONFIG, "config %s=%lld is out of range (%lld..%lld%s)", key, (long long)v, (long long)knobs[kn].min,
                             (long long)knobs[kn].max, knobs[kn].pow2 ? ", power of two" : "");
    }
    return TS_OK;
}
