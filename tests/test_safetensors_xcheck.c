/* test_safetensors_xcheck.c: cross-checks of formats/ against the reference
 * implementation (the `safetensors` Python package, driven through
 * tests/py/st_ref.py): files it writes read identically with ours, files we
 * write read identically with it, for every dtype; our writer's bytes equal
 * its writer's; and it judges the malformed corpus as expected.txt says.
 * Skipped, with the reason, when python3 or the package is missing. */
#include <criterion/criterion.h>

#include "tessera_safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ST_REF TS_SOURCE_DIR "/tests/py/st_ref.py"

static char tmpdir[256];

static void need_reference(void) {
    if (system("python3 -c 'import safetensors, numpy' >/dev/null 2>&1") != 0)
        cr_skip_test("python3 with the safetensors and numpy modules is not available (make setup installs them)");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/st-xcheck-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void cleanup(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
}

static int run(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static json_t *load_json(const char *path) {
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    cr_assert_not_null(j, "%s: %s", path, e.text);
    return j;
}

static unsigned char *unhex(const char *h, size_t *n) {
    size_t l = strlen(h);
    unsigned char *b = malloc(l / 2 + 1);
    for (size_t i = 0; i < l / 2; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        b[i] = (unsigned char)v;
    }
    *n = l / 2;
    return b;
}

/* Compares what the reference read (JSON from st_ref.py) with what ours reads from `path`. */
static void compare(const char *path, json_t *ref, int expect_count) {
    ts_st_file *f;
    cr_assert_eq(ts_st_open(path, &f), TS_OK, "%s", ts_last_error());
    json_t *tensors = json_object_get(ref, "tensors");
    cr_expect_eq(json_array_size(tensors), ts_st_count(f));
    cr_expect_eq((int)ts_st_count(f), expect_count);
    size_t i;
    json_t *t;
    json_array_foreach(tensors, i, t) {
        const char *name = json_string_value(json_object_get(t, "name"));
        ts_st_tensor_info info;
        cr_assert_eq(ts_st_find(f, name, &info), TS_OK, "%s", ts_last_error());
        cr_expect_str_eq(ts_st_dtype_name(info.dtype), json_string_value(json_object_get(t, "dtype")), "%s", name);
        json_t *shape = json_object_get(t, "shape");
        cr_expect_eq((size_t)info.rank, json_array_size(shape), "%s", name);
        for (int d = 0; d < info.rank && (size_t)d < json_array_size(shape); d++)
            cr_expect_eq(info.shape[d], (uint64_t)json_integer_value(json_array_get(shape, (size_t)d)), "%s dim %d", name, d);
        size_t n;
        unsigned char *bytes = unhex(json_string_value(json_object_get(t, "hex")), &n);
        cr_expect_eq(info.nbytes, n, "%s", name);
        if (info.nbytes == n) cr_expect_eq(memcmp(info.data, bytes, n), 0, "%s: data differs", name);
        free(bytes);
    }
    json_t *meta = json_object_get(ref, "metadata");
    cr_expect_eq(json_is_object(meta) ? json_object_size(meta) : 0, ts_st_metadata_count(f));
    const char *k;
    json_t *v;
    if (json_is_object(meta)) json_object_foreach(meta, k, v) {
            const char *ours = ts_st_metadata_get(f, k);
            cr_expect(ours && strcmp(ours, json_string_value(v)) == 0, "metadata %s", k);
        }
    ts_st_close(f);
}

Test(st_xcheck, reference_writes_ours_reads_every_dtype) {
    need_reference();
    char cmd[1024], file[400], js[400];
    snprintf(file, sizeof file, "%s/ref.safetensors", tmpdir);
    snprintf(js, sizeof js, "%s/ref.json", tmpdir);
    snprintf(cmd, sizeof cmd, "python3 '%s' write '%s' > '%s'", ST_REF, file, js);
    cr_assert_eq(run(cmd), 0, "%s failed", cmd);
    json_t *ref = load_json(js);
    /* every dtype its writer takes (all but the F6 pair), plus a scalar and an empty tensor */
    compare(file, ref, TS_ST_DTYPE_COUNT - 2 + 2);
    json_decref(ref);
    cleanup();
}

/* Deterministic bytes for tensor i. */
static void fill(unsigned char *b, size_t n, int i) {
    for (size_t k = 0; k < n; k++) b[k] = (unsigned char)(i * 97 + k * 13 + (k >> 4));
}

static ts_st_writer *every_dtype_writer(int with_f6) {
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    for (int d = 0; d < TS_ST_DTYPE_COUNT; d++) {
        if (!with_f6 && (d == TS_ST_F6_E2M3 || d == TS_ST_F6_E3M2)) continue;
        uint64_t shape[3] = {2, 3, 4};
        size_t n = 24 * (size_t)ts_st_dtype_bits((ts_st_dtype)d) / 8;
        unsigned char buf[256];
        fill(buf, n, d);
        if (d == TS_ST_BOOL)
            for (size_t k = 0; k < n; k++) buf[k] &= 1;
        char name[64];
        snprintf(name, sizeof name, "x.%s", ts_st_dtype_name((ts_st_dtype)d));
        cr_assert_eq(ts_st_writer_add(w, name, (ts_st_dtype)d, 3, shape, buf, n), TS_OK, "%s", ts_last_error());
    }
    double one = 1.0;
    cr_assert_eq(ts_st_writer_add(w, "scalar", TS_ST_F64, 0, NULL, &one, 8), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "empty", TS_ST_BF16, 2, (uint64_t[]){0, 7}, NULL, 0), TS_OK);
    return w;
}

Test(st_xcheck, ours_writes_reference_reads_every_dtype) {
    need_reference();
    ts_st_writer *w = every_dtype_writer(1);
    cr_assert_eq(ts_st_writer_metadata(w, "format", "pt"), TS_OK);
    cr_assert_eq(ts_st_writer_metadata(w, "quote", "a \"b\" \\ c\n\xc3\xa9"), TS_OK);
    char cmd[1024], file[400], js[400];
    snprintf(file, sizeof file, "%s/ours.safetensors", tmpdir);
    snprintf(js, sizeof js, "%s/ours.json", tmpdir);
    cr_assert_eq(ts_st_writer_save(w, file), TS_OK, "%s", ts_last_error());
    ts_st_writer_destroy(w);
    snprintf(cmd, sizeof cmd, "python3 '%s' read '%s' > '%s'", ST_REF, file, js);
    cr_assert_eq(run(cmd), 0, "the reference could not read our file");
    json_t *ref = load_json(js);
    compare(file, ref, TS_ST_DTYPE_COUNT + 2); /* what the reference read equals what we wrote */
    json_decref(ref);
    cleanup();
}

/* The aligned layout (data at 4096 or 64, every tensor at a multiple of
 * 256 through padding tensors) is read by the reference as we read it. */
Test(st_xcheck, aligned_layout_reference_reads) {
    need_reference();
    size_t aligns[2][2] = {{4096, 256}, {64, 4096}};
    for (int a = 0; a < 2; a++) {
        ts_st_writer *w = every_dtype_writer(1);
        cr_assert_eq(ts_st_writer_metadata(w, "format", "pt"), TS_OK);
        ts_st_write_options o = TS_ST_WRITE_OPTIONS_INIT;
        o.data_align = aligns[a][0];
        o.tensor_align = aligns[a][1];
        cr_assert_eq(ts_st_writer_set_options(w, &o), TS_OK, "%s", ts_last_error());
        char cmd[1024], file[400], js[400];
        snprintf(file, sizeof file, "%s/aligned%d.safetensors", tmpdir, a);
        snprintf(js, sizeof js, "%s/aligned%d.json", tmpdir, a);
        cr_assert_eq(ts_st_writer_save(w, file), TS_OK, "%s", ts_last_error());
        ts_st_writer_destroy(w);
        ts_st_file *f;
        cr_assert_eq(ts_st_open(file, &f), TS_OK, "%s", ts_last_error());
        size_t want = aligns[a][0] > aligns[a][1] ? aligns[a][0] : aligns[a][1], pads = 0;
        cr_expect_eq((8 + ts_st_header_size(f)) % want, 0, "data starts at %llu", (unsigned long long)(8 + ts_st_header_size(f)));
        for (size_t i = 0; i < ts_st_count(f); i++) {
            ts_st_tensor_info t;
            ts_st_tensor_at(f, i, &t);
            if (strncmp(t.name, "__padding.", 10) == 0) {
                pads++;
                cr_expect_eq(t.dtype, TS_ST_U8);
                for (size_t k = 0; k < t.nbytes; k++) cr_expect_eq(((const unsigned char *)t.data)[k], 0);
                continue;
            }
            cr_expect_eq(t.begin % aligns[a][1], 0, "%s starts at data offset %llu", t.name, (unsigned long long)t.begin);
            cr_expect_eq(((uintptr_t)t.data) % aligns[a][1], 0, "%s is not aligned in the mapping", t.name);
        }
        cr_expect_gt(pads, 0);
        ts_st_close(f);
        snprintf(cmd, sizeof cmd, "python3 '%s' read '%s' > '%s'", ST_REF, file, js);
        cr_assert_eq(run(cmd), 0, "the reference could not read our aligned file");
        json_t *ref = load_json(js);
        compare(file, ref, (int)(TS_ST_DTYPE_COUNT + 2 + pads)); /* padding tensors included */
        json_decref(ref);
    }
    cleanup();
}

Test(st_xcheck, our_bytes_equal_the_reference_writer) {
    need_reference();
    ts_st_writer *w = every_dtype_writer(0);
    cr_assert_eq(ts_st_writer_metadata(w, "format", "pt"), TS_OK); /* one key: the reference orders a HashMap */
    void *ours;
    size_t n;
    cr_assert_eq(ts_st_writer_serialize(w, &ours, &n), TS_OK);
    ts_st_writer_destroy(w);
    /* the same tensors as a spec for the reference writer, taken from our file */
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(ours, n, &f), TS_OK);
    json_t *spec = json_object(), *arr = json_array();
    for (size_t i = 0; i < ts_st_count(f); i++) {
        ts_st_tensor_info t;
        ts_st_tensor_at(f, i, &t);
        json_t *o = json_object(), *shape = json_array();
        for (int d = 0; d < t.rank; d++) json_array_append_new(shape, json_integer((json_int_t)t.shape[d]));
        char *hex = malloc(2 * t.nbytes + 1);
        for (size_t k = 0; k < t.nbytes; k++) sprintf(hex + 2 * k, "%02x", ((const unsigned char *)t.data)[k]);
        hex[2 * t.nbytes] = 0;
        json_object_set_new(o, "name", json_string(t.name));
        json_object_set_new(o, "dtype", json_string(ts_st_dtype_name(t.dtype)));
        json_object_set_new(o, "shape", shape);
        json_object_set_new(o, "hex", json_string(hex));
        free(hex);
        json_array_append_new(arr, o);
    }
    ts_st_close(f);
    json_object_set_new(spec, "tensors", arr);
    json_object_set_new(spec, "metadata", json_pack("{s:s}", "format", "pt"));
    char cmd[1024], sp[400], file[400];
    snprintf(sp, sizeof sp, "%s/spec.json", tmpdir);
    snprintf(file, sizeof file, "%s/theirs.safetensors", tmpdir);
    cr_assert_eq(json_dump_file(spec, sp, 0), 0);
    json_decref(spec);
    snprintf(cmd, sizeof cmd, "python3 '%s' serialize '%s' '%s'", ST_REF, sp, file);
    cr_assert_eq(run(cmd), 0, "%s failed", cmd);
    FILE *fp = fopen(file, "rb");
    cr_assert_not_null(fp);
    unsigned char *theirs = malloc(n + 64);
    size_t m = fread(theirs, 1, n + 64, fp);
    fclose(fp);
    cr_expect_eq(m, n, "sizes differ: ours %zu, reference %zu", n, m);
    if (m == n) {
        size_t at = 0;
        while (at < n && ((unsigned char *)ours)[at] == theirs[at]) at++;
        cr_expect_eq(at, n, "first difference at byte %zu: ours '%.40s' reference '%.40s'", at, (char *)ours + (at > 20 ? at - 20 : 0),
                     (char *)theirs + (at > 20 ? at - 20 : 0));
    }
    free(theirs);
    free(ours);
    cleanup();
}

Test(st_xcheck, reference_judges_the_corpus_as_documented) {
    need_reference();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/py/st_ref_corpus.py' '%s/tests/safetensors'", TS_SOURCE_DIR, TS_SOURCE_DIR);
    cr_expect_eq(run(cmd), 0, "the reference disagrees with expected.txt (see the output above)");
    cleanup();
}
