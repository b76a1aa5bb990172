/* safetensors_index.c: sharded checkpoints. A model.safetensors.index.json
 * ({"metadata": {...}, "weight_map": {tensor: shard file}}) opens as one
 * collection of tensors; so does a single .safetensors file.
 *
 * Sections: reading the index; opening; queries. */
#include "safetensors_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ts_st_collection {
    ts_st_file **files;
    size_t nfiles;
    ts_st_tensor_info *t; /* sorted by name */
    size_t nt;
    char **mkey, **mval;
    size_t nmeta;
};

void ts_st_collection_close(ts_st_collection *c) {
    if (!c) return;
    for (size_t i = 0; i < c->nfiles; i++) ts_st_close(c->files[i]);
    free(c->files);
    free(c->t);
    for (size_t i = 0; i < c->nmeta; i++) {
        free(c->mkey[i]);
        free(c->mval[i]);
    }
    free(c->mkey);
    free(c->mval);
    free(c);
}

static int cmp_info_name(const void *a, const void *b) {
    return strcmp(((const ts_st_tensor_info *)a)->name, ((const ts_st_tensor_info *)b)->name);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A shard name must stay inside the index's folder. */
static int shard_name_ok(const char *s) {
    if (!*s || s[0] == '/') return 0;
    for (const char *p = s; *p;) {
        const char *q = strchr(p, '/');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len == 0 || (len == 2 && p[0] == '.' && p[1] == '.') || (len == 1 && p[0] == '.')) return 0;
        p += len + (q ? 1 : 0);
        if (q && !*p) return 0;
    }
    return 1;
}

static ts_status add_meta(ts_st_collection *c, const char *k, const char *v) {
    char **nk = ts__realloc_array(c->mkey, c->nmeta + 1, sizeof *nk);
    if (!nk) return TS_ERR_OUT_OF_MEMORY;
    c->mkey = nk;
    char **nv = ts__realloc_array(c->mval, c->nmeta + 1, sizeof *nv);
    if (!nv) return TS_ERR_OUT_OF_MEMORY;
    c->mval = nv;
    c->mkey[c->nmeta] = ts__strdup(k);
    c->mval[c->nmeta] = ts__strdup(v);
    c->nmeta++;
    return c->mkey[c->nmeta - 1] && c->mval[c->nmeta - 1] ? TS_OK : TS_ERR_OUT_OF_MEMORY;
}

static ts_status open_single(const char *path, ts_st_collection *c) {
    c->files = ts__calloc(1, sizeof *c->files);
    if (!c->files) return TS_ERR_OUT_OF_MEMORY;
    ts_status s = ts_st_open(path, &c->files[0]);
    if (s) return s;
    c->nfiles = 1;
    const ts_st_file *f = c->files[0];
    c->nt = ts_st_count(f);
    c->t = ts__calloc(c->nt ? c->nt : 1, sizeof *c->t);
    if (!c->t) return TS_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < c->nt; i++) ts_st_tensor_at(f, i, &c->t[i]);
    qsort(c->t, c->nt, sizeof *c->t, cmp_info_name);
    for (size_t i = 0; i < ts_st_metadata_count(f); i++) {
        const char *k, *v;
        ts_st_metadata_at(f, i, &k, &v);
        if ((s = add_meta(c, k, v))) return s;
    }
    return TS_OK;
}

static ts_status open_index(const char *path, ts_st_collection *c) {
    char *text = NULL;
    size_t n = 0;
    ts_status s = ts__read_file(path, (size_t)TS__ST_MAX_HEADER, &text, &n);
    if (s == TS_ERR_LIMIT) return ts__error(TS_ERR_ST_BAD_INDEX, "index '%s' is larger than %llu bytes", path, (unsigned long long)TS__ST_MAX_HEADER);
    if (s) return s;
    size_t bad;
    json_t *root = NULL;
    char *dir = NULL;
    if (!ts__st_utf8_valid((const uint8_t *)text, n, &bad)) {
        s = ts__error(TS_ERR_ST_BAD_INDEX, "index '%s' is not valid UTF-8 (byte %zu)", path, bad);
        goto done;
    }
    if (ts__st_json_depth(text, n, TS__ST_MAX_DEPTH) > TS__ST_MAX_DEPTH) {
        s = ts__error(TS_ERR_ST_BAD_INDEX, "index '%s' nests JSON deeper than %d levels", path, TS__ST_MAX_DEPTH);
        goto done;
    }
    json_error_t err;
    root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        s = ts__error(TS_ERR_ST_BAD_INDEX, "index '%s', line %d column %d: %s", path, err.line, err.column, err.text);
        goto done;
    }
    json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(wm)) {
        s = ts__error(TS_ERR_ST_BAD_INDEX, "index '%s' has no \"weight_map\" object", path);
        goto done;
    }
    json_t *meta = json_object_get(root, "metadata");
    if (meta && !json_is_null(meta) && !json_is_object(meta)) {
        s = ts__error(TS_ERR_ST_BAD_INDEX, "index '%s': \"metadata\" is not an object", path);
        goto done;
    }
    if (json_is_object(meta)) {
        const char *k;
        json_t *v;
        json_object_foreach(meta, k, v) {
            char num[64];
            const char *val = NULL;
            if (json_is_string(v)) val = json_string_value(v);
            else if (json_is_integer(v)) snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v)), val = num;
            else if (json_is_real(v)) snprintf(num, sizeof num, "%.17g", json_real_value(v)), val = num;
            else if (json_is_boolean(v)) val = json_is_true(v) ? "true" : "false";
            if (val && (s = add_meta(c, k, val))) goto done;
        }
    }
    /* the folder of the index, to which shard names are relative */
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 1;
    dir = malloc(dlen + 2);
    if (!dir) {
        s = ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    memcpy(dir, slash ? path : ".", dlen);
    dir[dlen] = 0;
    if (slash == path) strcpy(dir, "/");

    size_t nmap = json_object_size(wm);
    c->t = ts__calloc(nmap ? nmap : 1, sizeof *c->t);
    c->files = ts__calloc(nmap ? nmap : 1, sizeof *c->files);
    const char **fnames = ts__calloc(nmap ? nmap : 1, sizeof *fnames);
    size_t *per_file = ts__calloc(nmap ? nmap : 1, sizeof *per_file);
    if (!c->t || !c->files || !fnames || !per_file) {
        free(fnames);
        free(per_file);
        s = TS_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (void *it = json_object_iter(wm); it && !s; it = json_object_iter_next(wm, it)) {
        const char *name = json_object_iter_key(it);
        json_t *v = json_object_iter_value(it);
        if (strlen(name) != json_object_iter_key_len(it)) {
            s = ts__error(TS_ERR_ST_BAD_INDEX, "index '%s': tensor name '%.*s...' contains a NUL character", path, TS__ST_QUOTE, name);
            break;
        }
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) || !shard_name_ok(json_string_value(v))) {
            s = ts__error(TS_ERR_ST_BAD_INDEX,
                          "index '%s': the shard of tensor '%.*s' is not a file name inside the index's folder (no '..', not absolute)", path,
                          TS__ST_QUOTE, name);
            break;
        }
        const char *shard = json_string_value(v);
        size_t fi = 0;
        while (fi < c->nfiles && strcmp(fnames[fi], shard) != 0) fi++;
        if (fi == c->nfiles) {
            size_t plen = strlen(dir) + strlen(shard) + 2;
            char *sp = malloc(plen);
            if (!sp) {
                s = ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory");
                break;
            }
            snprintf(sp, plen, "%s/%s", dir, shard);
            s = ts_st_open(sp, &c->files[fi]);
            free(sp);
            if (s) {
                ts__error_prefix("shard '%.*s' of index '%s'", TS__ST_QUOTE, shard, path);
                break;
            }
            fnames[fi] = shard;
            c->nfiles++;
        }
        s = ts_st_find(c->files[fi], name, &c->t[c->nt]);
        if (s) {
            s = ts__error(TS_ERR_ST_INDEX_MISMATCH, "index '%s' puts tensor '%.*s' in shard '%.*s', which does not hold it", path,
                          TS__ST_QUOTE, name, TS__ST_QUOTE, shard);
            break;
        }
        c->nt++;
        per_file[fi]++;
    }
    for (size_t fi = 0; fi < c->nfiles && !s; fi++)
        if (per_file[fi] != ts_st_count(c->files[fi])) {
            /* name one tensor the weight_map does not give to this shard */
            const char *extra = "?";
            for (size_t i = 0; i < ts_st_count(c->files[fi]); i++) {
                ts_st_tensor_info ti;
                ts_st_tensor_at(c->files[fi], i, &ti);
                json_t *v = json_object_get(wm, ti.name);
                if (!json_is_string(v) || strcmp(json_string_value(v), fnames[fi]) != 0) {
                    extra = ti.name;
                    break;
                }
            }
            s = ts__error(TS_ERR_ST_INDEX_MISMATCH, "shard '%.*s' holds tensor '%.*s', which index '%s' does not give to it", TS__ST_QUOTE,
                          fnames[fi], TS__ST_QUOTE, extra, path);
        }
    free(fnames);
    free(per_file);
    if (!s) qsort(c->t, c->nt, sizeof *c->t, cmp_info_name);
done:
    json_decref(root);
    free(text);
    free(dir);
    return s;
}

ts_status ts_st_collection_open(const char *path, ts_st_collection **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_collection_open: out is NULL");
    *out = NULL;
    if (!path) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_collection_open: path is NULL");
    ts_st_collection *c = ts__calloc(1, sizeof *c);
    if (!c) return TS_ERR_OUT_OF_MEMORY;
    struct stat st;
    ts_status s;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t plen = strlen(path) + 40;
        char *p = malloc(plen);
        if (!p) {
            free(c);
            return ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory");
        }
        snprintf(p, plen, "%s/model.safetensors.index.json", path);
        if (stat(p, &st) == 0) {
            s = open_index(p, c);
        } else {
            snprintf(p, plen, "%s/model.safetensors", path);
            s = stat(p, &st) == 0 ? open_single(p, c)
                                  : ts__error(TS_ERR_NOT_FOUND, "folder '%s' has neither model.safetensors.index.json nor model.safetensors", path);
        }
        free(p);
    } else if (ends_with(path, ".json")) {
        s = open_index(path, c);
    } else {
        s = open_single(path, c);
    }
    if (s) {
        ts_st_collection_close(c);
        return s;
    }
    *out = c;
    return TS_OK;
}

size_t ts_st_collection_count(const ts_st_collection *c) { return c ? c->nt : 0; }

ts_status ts_st_collection_tensor_at(const ts_st_collection *c, size_t i, ts_st_tensor_info *out) {
    if (!c || !out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_collection_tensor_at: NULL argument");
    if (i >= c->nt) return ts__error(TS_ERR_INDEX, "ts_st_collection_tensor_at: index %zu of %zu", i, c->nt);
    *out = c->t[i];
    return TS_OK;
}

ts_status ts_st_collection_find(const ts_st_collection *c, const char *name, ts_st_tensor_info *out) {
    if (!c || !name || !out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_collection_find: NULL argument");
    ts_st_tensor_info key = {0};
    key.name = name;
    const ts_st_tensor_info *hit = bsearch(&key, c->t, c->nt, sizeof *c->t, cmp_info_name);
    if (!hit) return ts__error(TS_ERR_ST_TENSOR_NOT_FOUND, "the collection has no tensor '%.*s'", TS__ST_QUOTE, name);
    *out = *hit;
    return TS_OK;
}

size_t ts_st_collection_file_count(const ts_st_collection *c) { return c ? c->nfiles : 0; }
const ts_st_file *ts_st_collection_file(const ts_st_collection *c, size_t i) { return c && i < c->nfiles ? c->files[i] : NULL; }

const char *ts_st_collection_metadata_get(const ts_st_collection *c, const char *key) {
    if (!c || !key) return NULL;
    for (size_t i = 0; i < c->nmeta; i++)
        if (strcmp(c->mkey[i], key) == 0) return c->mval[i];
    return NULL;
}
