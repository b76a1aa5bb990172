/* cmd_inspect.c: `tessera inspect FILE [--json]`: validates a .safetensors
 * file (or a sharded checkpoint's index, or a folder holding either) and
 * lists its tensors and metadata. Exit 0 when valid, 1 when invalid (the
 * status and the reason on stderr), 2 on a usage error. */
#include "cli.h"
#include "tessera_safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: tessera inspect FILE [--json]\n"
               "Validates FILE (a .safetensors file, a model.safetensors.index.json of a sharded\n"
               "checkpoint, or a folder holding one) with every rule of the format, then prints\n"
               "its tensors (name, dtype, shape, bytes) and metadata.\n"
               "  --json   one JSON object on stdout: files, metadata, tensors (name, dtype, shape,\n"
               "           data_offsets, bytes, file); for an invalid file {\"valid\": false, ...}\n"
               "Exit status: 0 valid, 1 invalid (the status name and the reason on stderr), 2 usage.\n");
}

static void shape_text(const ts_st_tensor_info *t, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int d = 0; d < t->rank && k < n; d++) k += (size_t)snprintf(buf + k, n - k, "%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static void print_text(const char *path, const ts_st_collection *c) {
    size_t nt = ts_st_collection_count(c), nf = ts_st_collection_file_count(c);
    unsigned long long total = 0;
    for (size_t i = 0; i < nf; i++) total += ts_st_data_size(ts_st_collection_file(c, i));
    printf("%s: valid, %zu tensor%s, %llu data bytes, %zu file%s\n", path, nt, nt == 1 ? "" : "s", total, nf, nf == 1 ? "" : "s");
    for (size_t i = 0; nf > 1 && i < nf; i++) {
        const ts_st_file *f = ts_st_collection_file(c, i);
        printf("  shard %s: %zu tensors, header %llu bytes, data %llu bytes\n", ts_st_path(f), ts_st_count(f),
               (unsigned long long)ts_st_header_size(f), (unsigned long long)ts_st_data_size(f));
    }
    if (nf == 1) {
        const ts_st_file *f = ts_st_collection_file(c, 0);
        printf("header: %llu bytes\n", (unsigned long long)ts_st_header_size(f));
        size_t nm = ts_st_metadata_count(f);
        printf("metadata:%s\n", nm ? "" : " (none)");
        for (size_t i = 0; i < nm; i++) {
            const char *k, *v;
            ts_st_metadata_at(f, i, &k, &v);
            printf("  %s: %s\n", k, v);
        }
    }
    size_t wname = 4;
    for (size_t i = 0; i < nt; i++) {
        ts_st_tensor_info t;
        ts_st_collection_tensor_at(c, i, &t);
        size_t l = strlen(t.name);
        if (l > wname) wname = l < 60 ? l : 60;
    }
    printf("tensors:\n  %-*s  %-11s  %-24s  %s\n", (int)wname, "name", "dtype", "shape", "bytes");
    for (size_t i = 0; i < nt; i++) {
        ts_st_tensor_info t;
        ts_st_collection_tensor_at(c, i, &t);
        char shape[256];
        shape_text(&t, shape, sizeof shape);
        printf("  %-*s  %-11s  %-24s  %zu\n", (int)wname, t.name, ts_st_dtype_name(t.dtype), shape, t.nbytes);
    }
}

static int print_json(const ts_st_collection *c) {
    json_t *root = json_object(), *files = json_array(), *meta = json_object(), *tensors = json_array();
    json_object_set_new(root, "valid", json_true());
    for (size_t i = 0; i < ts_st_collection_file_count(c); i++) {
        const ts_st_file *f = ts_st_collection_file(c, i);
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(ts_st_path(f)));
        json_object_set_new(o, "header_bytes", json_integer((json_int_t)ts_st_header_size(f)));
        json_object_set_new(o, "data_bytes", json_integer((json_int_t)ts_st_data_size(f)));
        json_object_set_new(o, "tensors", json_integer((json_int_t)ts_st_count(f)));
        json_array_append_new(files, o);
        for (size_t k = 0; k < ts_st_metadata_count(f); k++) {
            const char *key, *v;
            ts_st_metadata_at(f, k, &key, &v);
            json_object_set_new(meta, key, json_string(v));
        }
    }
    for (size_t i = 0; i < ts_st_collection_count(c); i++) {
        ts_st_tensor_info t;
        ts_st_collection_tensor_at(c, i, &t);
        json_t *o = json_object(), *shape = json_array(), *offs = json_array();
        for (int d = 0; d < t.rank; d++) json_array_append_new(shape, json_integer((json_int_t)t.shape[d]));
        json_array_append_new(offs, json_integer((json_int_t)t.begin));
        json_array_append_new(offs, json_integer((json_int_t)t.end));
        json_object_set_new(o, "name", json_string(t.name));
        json_object_set_new(o, "dtype", json_string(ts_st_dtype_name(t.dtype)));
        json_object_set_new(o, "shape", shape);
        json_object_set_new(o, "data_offsets", offs);
        json_object_set_new(o, "bytes", json_integer((json_int_t)t.nbytes));
        json_object_set_new(o, "file", json_string(ts_st_path(t.file)));
        json_array_append_new(tensors, o);
    }
    json_object_set_new(root, "files", files);
    json_object_set_new(root, "metadata", meta);
    json_object_set_new(root, "tensors", tensors);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text) {
        fprintf(stderr, "tessera inspect: out of memory\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

int ts_cli_inspect(int argc, char **argv) {
    if (ts_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "tessera inspect: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (!path) path = argv[i];
        else {
            fprintf(stderr, "tessera inspect: one FILE at a time ('%s' is extra)\n", argv[i]);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    ts_st_collection *c = NULL;
    ts_status s = ts_st_collection_open(path, &c);
    if (s) {
        fprintf(stderr, "tessera inspect: %s: %s: %s\n", path, ts_status_name(s), ts_last_error());
        if (json) {
            json_t *o = json_pack("{s:b, s:s, s:s, s:s}", "valid", 0, "path", path, "status", ts_status_name(s), "message", ts_last_error());
            char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
            if (text) printf("%s\n", text);
            free(text);
            json_decref(o);
        }
        return 1;
    }
    int rc = json ? print_json(c) : (print_text(path, c), 0);
    ts_st_collection_close(c);
    return rc;
}
