/* test_safetensors.c: the Safetensors reader, writer, collections and the
 * `tessera inspect` command (formats/). Cross-checks with the reference are
 * in test_safetensors_xcheck.c, uploads in test_safetensors_upload.c.
 *
 * Sections: helpers; dtypes; valid files; the malformed corpus
 * (tests/safetensors/expected.txt: every file gives its status, every
 * reader status has a file); targeted validation; the writer; collections;
 * the CLI. */
#include <criterion/criterion.h>

#include "tessera_safetensors.h"
#include "formats/safetensors_internal.h" /* ts__st_io_calls, for fault injection */

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

#define CORPUS TS_SOURCE_DIR "/tests/safetensors"

/* A file image: 8-byte length, header, data. Caller frees. */
static unsigned char *image(const char *header, const void *data, size_t ndata, size_t *n) {
    size_t h = strlen(header);
    unsigned char *b = malloc(8 + h + ndata + 1);
    cr_assert(b);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    if (ndata) memcpy(b + 8 + h, data, ndata);
    *n = 8 + h + ndata;
    return b;
}

static ts_status open_image(const char *header, const void *data, size_t ndata) {
    size_t n;
    unsigned char *b = image(header, data, ndata, &n);
    ts_st_file *f = NULL;
    ts_status s = ts_st_open_memory(b, n, &f);
    if (s) cr_expect_null(f);
    ts_st_close(f);
    free(b);
    return s;
}

static char tmpdir[256];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/st-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static const float F4X[4] = {1, 2, 3, 4};

/* ---------------------------------------------------------------- dtypes */

Test(st_dtype, names_bits_and_mapping) {
    static const char *names[] = {"BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
                                  "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"};
    static const int bits[] = {8, 4, 6, 6, 8, 8, 8, 8, 8, 8, 8, 16, 16, 16, 16, 32, 32, 32, 64, 64, 64, 64};
    cr_assert_eq(TS_ST_DTYPE_COUNT, 22);
    for (int i = 0; i < TS_ST_DTYPE_COUNT; i++) {
        cr_expect_str_eq(ts_st_dtype_name((ts_st_dtype)i), names[i]);
        cr_expect_eq(ts_st_dtype_bits((ts_st_dtype)i), bits[i], "%s", names[i]);
        ts_st_dtype d;
        cr_expect_eq(ts_st_dtype_parse(names[i], &d), TS_OK);
        cr_expect_eq(d, (ts_st_dtype)i);
    }
    ts_st_dtype d;
    cr_expect_eq(ts_st_dtype_parse("f32", &d), TS_ERR_ST_UNKNOWN_DTYPE);
    cr_expect_null(ts_st_dtype_name(TS_ST_DTYPE_COUNT));
    ts_dtype td;
    const ts_st_dtype mapped[] = {TS_ST_F32, TS_ST_F16, TS_ST_BF16, TS_ST_F64, TS_ST_I32, TS_ST_I64, TS_ST_U8, TS_ST_BOOL,
                                  TS_ST_I8,  TS_ST_I16, TS_ST_F8_E4M3, TS_ST_F8_E5M2};
    for (size_t i = 0; i < sizeof mapped / sizeof mapped[0]; i++) {
        cr_expect_eq(ts_st_dtype_to_ts(mapped[i], &td), TS_OK);
        ts_st_dtype back;
        cr_expect_eq(ts_st_dtype_from_ts(td, &back), TS_OK);
        cr_expect_eq(back, mapped[i]);
        cr_expect_eq(ts_dtype_size(td) * 8, (size_t)ts_st_dtype_bits(mapped[i]), "%s", ts_st_dtype_name(mapped[i]));
    }
    cr_expect_eq(ts_st_dtype_to_ts(TS_ST_F8_E8M0, &td), TS_ERR_UNSUPPORTED);
    cr_expect(strstr(ts_last_error(), "F8_E8M0") != NULL);
    cr_expect_eq(ts_st_dtype_to_ts(TS_ST_C64, &td), TS_ERR_UNSUPPORTED);
}

Test(st_dtype, statuses_are_named_and_in_range) {
    for (int v = -100; v >= -129; v--) {
        const char *n = ts_status_name((ts_status)v);
        cr_expect(strncmp(n, "TS_ERR_ST_", 10) == 0, "status %d is '%s'", v, n);
        cr_expect(strncmp(ts_strerror((ts_status)v), "safetensors: ", 13) == 0);
    }
}

/* ---------------------------------------------------------------- valid files */

Test(st_read, lists_tensors_metadata_and_views) {
    const char *h = "{\"__metadata__\":{\"format\":\"pt\",\"a\":\"b\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                    "\"s\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[16,17]}}";
    unsigned char data[17];
    memcpy(data, F4X, 16);
    data[16] = 42;
    size_t n;
    unsigned char *b = image(h, data, sizeof data, &n);
    ts_st_file *f = NULL;
    cr_assert_eq(ts_st_open_memory(b, n, &f), TS_OK, "%s", ts_last_error());
    cr_expect_eq(ts_st_count(f), 2);
    cr_expect_eq(ts_st_header_size(f), strlen(h));
    cr_expect_eq(ts_st_data_size(f), 17);
    ts_st_tensor_info t;
    cr_assert_eq(ts_st_tensor_at(f, 0, &t), TS_OK);
    cr_expect_str_eq(t.name, "w"); /* data-offset order */
    cr_expect_eq(t.dtype, TS_ST_F32);
    cr_expect_eq(t.rank, 2);
    cr_expect_eq(t.shape[0], 2);
    cr_expect_eq(t.numel, 4);
    cr_expect_eq(t.nbytes, 16);
    cr_expect_eq(t.data, b + 8 + strlen(h)); /* zero-copy */
    cr_expect_eq(memcmp(t.data, F4X, 16), 0);
    cr_assert_eq(ts_st_find(f, "s", &t), TS_OK);
    cr_expect_eq(t.rank, 0);
    cr_expect_eq(t.numel, 1);
    cr_expect_eq(*(const unsigned char *)t.data, 42);
    cr_expect_eq(ts_st_find(f, "nope", &t), TS_ERR_ST_TENSOR_NOT_FOUND);
    cr_expect(strstr(ts_last_error(), "nope") != NULL);
    cr_expect_eq(ts_st_tensor_at(f, 2, &t), TS_ERR_INDEX);
    cr_expect_eq(ts_st_metadata_count(f), 2);
    const char *k, *v;
    cr_assert_eq(ts_st_metadata_at(f, 0, &k, &v), TS_OK);
    cr_expect_str_eq(k, "a"); /* sorted */
    cr_expect_str_eq(ts_st_metadata_get(f, "format"), "pt");
    cr_expect_null(ts_st_metadata_get(f, "missing"));
    ts_st_close(f);
    free(b);
}

Test(st_read, null_and_bad_arguments) {
    ts_st_file *f = (ts_st_file *)1;
    cr_expect_eq(ts_st_open(NULL, &f), TS_ERR_INVALID_ARGUMENT);
    cr_expect_null(f);
    cr_expect_eq(ts_st_open("/nonexistent/x.safetensors", &f), TS_ERR_NOT_FOUND);
    cr_expect_eq(ts_st_open("/tmp", &f), TS_ERR_IO);
    cr_expect_eq(ts_st_open_memory(NULL, 4, &f), TS_ERR_INVALID_ARGUMENT);
    cr_expect_eq(ts_st_open_memory(NULL, 0, &f), TS_ERR_ST_HEADER_TOO_SMALL);
    ts_st_close(NULL);
    cr_expect_eq(ts_st_count(NULL), 0);
    cr_expect_null(ts_st_metadata_get(NULL, "x"));
}

Test(st_read, every_dtype_sized_in_bits) {
    for (int d = 0; d < TS_ST_DTYPE_COUNT; d++) {
        int bits = ts_st_dtype_bits((ts_st_dtype)d);
        /* 8 elements: whole bytes for every dtype */
        char h[256];
        snprintf(h, sizeof h, "{\"x\":{\"dtype\":\"%s\",\"shape\":[2,4],\"data_offsets\":[0,%d]}}", ts_st_dtype_name((ts_st_dtype)d), bits);
        unsigned char data[64] = {0};
        cr_expect_eq(open_image(h, data, (size_t)bits), TS_OK, "%s: %s", ts_st_dtype_name((ts_st_dtype)d), ts_last_error());
        /* 1 element: sub-byte dtypes are not whole bytes */
        snprintf(h, sizeof h, "{\"x\":{\"dtype\":\"%s\",\"shape\":[1],\"data_offsets\":[0,%d]}}", ts_st_dtype_name((ts_st_dtype)d),
                 bits < 8 ? 1 : bits / 8);
        ts_status want = bits % 8 ? TS_ERR_ST_SUBBYTE : TS_OK;
        cr_expect_eq(open_image(h, data, bits < 8 ? 1 : (size_t)bits / 8), want, "%s", ts_st_dtype_name((ts_st_dtype)d));
    }
}

Test(st_read, opens_from_disk_by_mmap) {
    make_tmpdir();
    char path[400];
    snprintf(path, sizeof path, "%s/a.safetensors", tmpdir);
    size_t n;
    unsigned char *b = image("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", F4X, 16, &n);
    write_bytes(path, b, n);
    free(b);
    ts_st_file *f = NULL;
    cr_assert_eq(ts_st_open(path, &f), TS_OK, "%s", ts_last_error());
    cr_expect_str_eq(ts_st_path(f), path);
    ts_st_tensor_info t;
    cr_assert_eq(ts_st_find(f, "a", &t), TS_OK);
    cr_expect_eq(memcmp(t.data, F4X, 16), 0);
    ts_st_close(f);
    /* an empty file is too small, not a mapping error */
    write_bytes(path, "", 0);
    cr_expect_eq(ts_st_open(path, &f), TS_ERR_ST_HEADER_TOO_SMALL);
    rm_rf(tmpdir);
}

/* ---------------------------------------------------------------- the malformed corpus */

typedef struct corpus_line {
    char file[128], status[64], ref[16];
} corpus_line;

static int read_manifest(corpus_line *out, int max) {
    FILE *m = fopen(CORPUS "/expected.txt", "r");
    cr_assert_not_null(m, "cannot open the corpus manifest");
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, m) && n < max) {
        if (line[0] == '#' || line[0] == '\n') continue;
        cr_assert_eq(sscanf(line, "%127s %63s %15s", out[n].file, out[n].status, out[n].ref), 3, "bad manifest line '%s'", line);
        n++;
    }
    fclose(m);
    return n;
}

Test(st_corpus, every_file_gives_its_status) {
    static corpus_line lines[512];
    int n = read_manifest(lines, 512);
    cr_assert_gt(n, 50);
    int failures = 0;
    for (int i = 0; i < n; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", CORPUS, lines[i].file);
        ts_st_file *f = NULL;
        ts_clear_error();
        ts_status s = ts_st_open(path, &f);
        if (strcmp(ts_status_name(s), lines[i].status) != 0) {
            failures++;
            cr_expect_fail("%s: expected %s, got %s (%s)", lines[i].file, lines[i].status, ts_status_name(s), ts_last_error());
        }
        if (s) {
            cr_expect_null(f);
            cr_expect(strstr(ts_last_error(), lines[i].file) != NULL, "%s: the message '%s' does not name the file", lines[i].file,
                      ts_last_error());
        }
        ts_st_close(f);
    }
    cr_expect_eq(failures, 0);
}

Test(st_corpus, every_reader_status_has_a_file) {
    static corpus_line lines[512];
    int n = read_manifest(lines, 512);
    for (int v = -100; v >= -126; v--) {
        const char *name = ts_status_name((ts_status)v);
        int found = 0;
        for (int i = 0; i < n && !found; i++) found = strcmp(lines[i].status, name) == 0;
        cr_expect(found, "no corpus file expects %s", name);
    }
}

Test(st_corpus, files_are_on_disk) {
    static corpus_line lines[512];
    int n = read_manifest(lines, 512);
    DIR *d = opendir(CORPUS);
    cr_assert_not_null(d);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l < 12 || strcmp(e->d_name + l - 12, ".safetensors") != 0) continue;
        files++;
        int listed = 0;
        for (int i = 0; i < n && !listed; i++) listed = strcmp(lines[i].file, e->d_name) == 0;
        cr_expect(listed, "%s is not in expected.txt", e->d_name);
    }
    closedir(d);
    cr_expect_eq(files, n);
}

/* ---------------------------------------------------------------- targeted validation */

Test(st_validate, messages_name_the_tensor_and_rule) {
    cr_expect_eq(open_image("{\"weight.7\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", F4X, 8), TS_ERR_ST_SIZE_MISMATCH);
    cr_expect(strstr(ts_last_error(), "weight.7") != NULL, "%s", ts_last_error());
    cr_expect(strstr(ts_last_error(), "12") != NULL, "%s", ts_last_error());
    cr_expect_eq(open_image("{\"q\":{\"dtype\":\"Q4\",\"shape\":[3],\"data_offsets\":[0,8]}}", F4X, 8), TS_ERR_ST_UNKNOWN_DTYPE);
    cr_expect(strstr(ts_last_error(), "'q'") && strstr(ts_last_error(), "Q4"), "%s", ts_last_error());
}

Test(st_validate, header_limit_boundary) {
    /* exactly 100,000,000 is allowed (then fails only because the file is short) */
    unsigned char b[16] = {0};
    uint64_t n = 100000000;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
    ts_st_file *f;
    cr_expect_eq(ts_st_open_memory(b, sizeof b, &f), TS_ERR_ST_HEADER_LENGTH);
    n++;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
    cr_expect_eq(ts_st_open_memory(b, sizeof b, &f), TS_ERR_ST_HEADER_TOO_LARGE);
}

Test(st_validate, nesting_within_strings_is_not_depth) {
    char h[1024];
    char deep[300];
    memset(deep, '[', 200);
    deep[200] = 0;
    snprintf(h, sizeof h, "{\"__metadata__\":{\"k\":\"%s\\\"{{{{\"},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", deep);
    cr_expect_eq(open_image(h, "x", 1), TS_OK, "%s", ts_last_error());
    /* depth 64 passes the scan, 65 does not */
    char h2[512] = "{\"__metadata__\":";
    size_t k = strlen(h2);
    for (int i = 0; i < 63; i++) h2[k++] = '[';
    for (int i = 0; i < 63; i++) h2[k++] = ']';
    h2[k] = 0;
    strcat(h2, "}");
    cr_expect_eq(open_image(h2, NULL, 0), TS_ERR_ST_METADATA_NOT_OBJECT, "%s", ts_last_error());
    memmove(h2 + 17, h2 + 16, strlen(h2 + 16) + 1);
    h2[16] = '[';
    k = strlen(h2);
    h2[k - 1] = ']';
    h2[k] = '}';
    h2[k + 1] = 0;
    cr_expect_eq(open_image(h2, NULL, 0), TS_ERR_ST_TOO_DEEP, "%s", ts_last_error());
}

Test(st_validate, zero_size_tensors_anywhere_between) {
    const char *h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    cr_expect_eq(open_image(h, F4X, 8), TS_OK, "%s", ts_last_error());
}

Test(st_validate, every_truncation_of_a_valid_file_fails_cleanly) {
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "a", TS_ST_F32, 1, (uint64_t[]){4}, F4X, 16), TS_OK);
    cr_assert_eq(ts_st_writer_metadata(w, "k", "v"), TS_OK);
    void *buf;
    size_t n;
    cr_assert_eq(ts_st_writer_serialize(w, &buf, &n), TS_OK);
    for (size_t cut = 0; cut < n; cut++) {
        void *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        ts_st_file *f = NULL;
        cr_expect_neq(ts_st_open_memory(copy, cut, &f), TS_OK, "truncated at %zu", cut);
        cr_expect_null(f);
        free(copy);
    }
    free(buf);
    ts_st_writer_destroy(w);
}

/* The one-pass header parser: JSON details it must get as jansson did, and
 * the order of errors (JSON errors anywhere beat an entry's broken rule). */
#define E1 "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}"

Test(st_parse, escapes_decode_like_json) {
    /* escaped field names are the fields; escaped tensor names are decoded */
    cr_expect_eq(open_image("{\"\\u0061\":{\"d\\u0074ype\":\"U\\u0038\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1), TS_OK, "%s",
                 ts_last_error());
    const char *h = "{\"\\ud83d\\ude00\\t\\\"\\/\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    size_t n;
    unsigned char *b = image(h, "x", 1, &n);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(b, n, &f), TS_OK, "%s", ts_last_error());
    ts_st_tensor_info info;
    cr_expect_eq(ts_st_find(f, "\xf0\x9f\x98\x80\t\"/", &info), TS_OK, "%s", ts_last_error());
    cr_expect_eq(ts_st_find(f, "\xf0\x9f\x98\x80", &info), TS_ERR_ST_TENSOR_NOT_FOUND);
    ts_st_close(f);
    free(b);
}

Test(st_parse, duplicates_at_every_level_after_decoding) {
    cr_expect_eq(open_image("{" E1 ",\"\\u0061\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[1,1]}}", "x", 1), TS_ERR_ST_DUPLICATE_KEY);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"sh\\u0061pe\":[1],\"data_offsets\":[0,1]}}", "x", 1),
                 TS_ERR_ST_DUPLICATE_KEY);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"x\":{\"k\":1,\"k\":2},\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1),
                 TS_ERR_ST_DUPLICATE_KEY);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"x\":1,\"x\":2,\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1), TS_ERR_ST_DUPLICATE_KEY);
    /* the same key in two different objects is not a duplicate */
    cr_expect_eq(open_image("{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"U8\",\"x\":{\"k\":[{\"k\":1}]},\"k\":0,\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1),
                 TS_OK, "%s", ts_last_error());
    cr_expect_eq(open_image("{\"__metadata__\":null,\"__metadata__\":null}", NULL, 0), TS_ERR_ST_DUPLICATE_KEY);
    /* many names: every one found by the hash table */
    char *big = malloc(4000 * 64 + 16);
    size_t k = 0;
    big[k++] = '{';
    for (int i = 0; i < 4000; i++)
        k += (size_t)sprintf(big + k, "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}", i ? "," : "", i);
    big[k++] = '}';
    big[k] = 0;
    size_t n;
    unsigned char *b = image(big, NULL, 0, &n);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(b, n, &f), TS_OK, "%s", ts_last_error());
    for (int i = 0; i < 4000; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        ts_st_tensor_info info;
        cr_expect_eq(ts_st_find(f, name, &info), TS_OK, "%s", name);
        cr_expect_str_eq(info.name, name);
    }
    ts_st_close(f);
    free(b);
    strcpy(big + k - 1, ",\"t3999\":{}}");
    cr_expect_eq(open_image(big, NULL, 0), TS_ERR_ST_DUPLICATE_KEY);
    cr_expect(strstr(ts_last_error(), "t3999") != NULL, "%s", ts_last_error());
    free(big);
}

Test(st_parse, numbers_strings_and_literals) {
    /* -0 is the integer 0 (jansson's reading) */
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"shape\":[-0],\"data_offsets\":[0,0]}}", NULL, 0), TS_OK, "%s", ts_last_error());
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"shape\":[01],\"data_offsets\":[0,1]}}", "x", 1), TS_ERR_ST_JSON);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"shape\":[1.],\"data_offsets\":[0,1]}}", "x", 1), TS_ERR_ST_JSON);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"shape\":[1e2],\"data_offsets\":[0,100]}}", NULL, 0), TS_ERR_ST_BAD_SHAPE);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":[1.5e-3,-2E+7,true,false,null]}}", "x", 1),
                 TS_OK, "%s", ts_last_error());
    /* beyond 64 bits, anywhere (also in an ignored field, and as a real) */
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"x\":9223372036854775808,\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1), TS_ERR_ST_OVERFLOW);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"x\":-9223372036854775808,\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1), TS_OK, "%s",
                 ts_last_error());
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"x\":1e400,\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1), TS_ERR_ST_OVERFLOW);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"x\":tru,\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1), TS_ERR_ST_JSON);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"x\":\"\t\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1), TS_ERR_ST_JSON);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"x\":\"\\ud800x\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1), TS_ERR_ST_JSON);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"x\":\"\\udc00\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1), TS_ERR_ST_JSON);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"x\":\"\\u00zz\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1), TS_ERR_ST_JSON);
    /* NUL: allowed in an ignored value, not in any key, not in a dtype */
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"x\":\"\\u0000\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1), TS_OK, "%s",
                 ts_last_error());
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"x\":{\"\\u0000\":1},\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1), TS_ERR_ST_NUL_IN_STRING);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\\u0000\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x", 1), TS_ERR_ST_UNKNOWN_DTYPE);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},}", "x", 1), TS_ERR_ST_JSON);
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,],\"data_offsets\":[0,1]}}", "x", 1), TS_ERR_ST_JSON);
    cr_expect_eq(open_image("{\"a\" {}}", NULL, 0), TS_ERR_ST_JSON);
    cr_expect_eq(open_image("{1:2}", NULL, 0), TS_ERR_ST_JSON);
}

Test(st_parse, json_errors_come_before_entry_rules) {
    /* an entry rule broken early, a JSON error late: the JSON error */
    cr_expect_eq(open_image("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]},\"b\":[1,}", "x", 1), TS_ERR_ST_JSON);
    cr_expect_eq(open_image("{\"a\":5,\"b\":{},\"b\":{}}", NULL, 0), TS_ERR_ST_DUPLICATE_KEY);
    cr_expect_eq(open_image("{\"a\":5,\"b\":99999999999999999999}", NULL, 0), TS_ERR_ST_OVERFLOW);
    /* trailing bytes come after JSON errors and before entry rules */
    cr_expect_eq(open_image("{\"a\":5} x", NULL, 0), TS_ERR_ST_TRAILING);
    /* nesting too deep anywhere comes first, even past an error or the object */
    char h[400] = "{\"a\":5,\"b\":";
    for (int i = 0; i < 70; i++) strcat(h, "[");
    cr_expect_eq(open_image(h, NULL, 0), TS_ERR_ST_TOO_DEEP);
    strcpy(h, "{\"a\":5} ");
    for (int i = 0; i < 70; i++) strcat(h, "{");
    cr_expect_eq(open_image(h, NULL, 0), TS_ERR_ST_TOO_DEEP);
    /* the first broken rule in header order is the one reported */
    cr_expect_eq(open_image("{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]},\"b\":5}", NULL, 0), TS_ERR_ST_MISSING_DTYPE);
    cr_expect_eq(open_image("{\"b\":5,\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", NULL, 0), TS_ERR_ST_ENTRY_NOT_OBJECT);
    cr_expect(strstr(ts_last_error(), "'b'") != NULL, "%s", ts_last_error());
    cr_expect_eq(open_image("{\"__metadata__\":{\"k\":1},\"b\":5}", NULL, 0), TS_ERR_ST_METADATA_NOT_STRING);
}

Test(st_parse, out_of_order_header_sorts_and_still_finds) {
    const char *h = "{\"z\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[3,5]},\"m\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[3,3]},"
                    "\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}";
    size_t n;
    unsigned char *b = image(h, "abcde", 5, &n);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(b, n, &f), TS_OK, "%s", ts_last_error());
    const char *order[] = {"a", "m", "z"};
    for (size_t i = 0; i < 3; i++) {
        ts_st_tensor_info t, u;
        cr_assert_eq(ts_st_tensor_at(f, i, &t), TS_OK);
        cr_expect_str_eq(t.name, order[i]);
        cr_assert_eq(ts_st_find(f, order[i], &u), TS_OK, "%s", order[i]);
        cr_expect_eq(u.data, t.data);
    }
    ts_st_close(f);
    free(b);
}

Test(st_parse, metadata_sorted_and_found) {
    const char *h = "{\"__metadata__\":{\"z\":\"1\",\"a\":\"2\",\"m\\u00e9\":\"\\u00e9\"}," E1 "}";
    size_t n;
    unsigned char *b = image(h, "x", 1, &n);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(b, n, &f), TS_OK, "%s", ts_last_error());
    cr_assert_eq(ts_st_metadata_count(f), 3);
    const char *k, *v;
    ts_st_metadata_at(f, 0, &k, &v);
    cr_expect_str_eq(k, "a");
    ts_st_metadata_at(f, 2, &k, &v);
    cr_expect_str_eq(k, "z");
    cr_expect_str_eq(ts_st_metadata_get(f, "m\xc3\xa9"), "\xc3\xa9");
    cr_expect_null(ts_st_metadata_get(f, "q"));
    ts_st_close(f);
    free(b);
}

/* ---------------------------------------------------------------- the writer */

Test(st_write, canonical_layout) {
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    uint8_t u8[3] = {1, 2, 3};
    uint16_t h16[2] = {0x3c00, 0x4000};
    double f64[1] = {1.5};
    cr_assert_eq(ts_st_writer_add(w, "z_u8", TS_ST_U8, 1, (uint64_t[]){3}, u8, 3), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "b_f16", TS_ST_F16, 1, (uint64_t[]){2}, h16, 4), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "a_f16", TS_ST_F16, 2, (uint64_t[]){1, 2}, h16, 4), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "s", TS_ST_F64, 0, NULL, f64, 8), TS_OK);
    cr_assert_eq(ts_st_writer_metadata(w, "zz", "1"), TS_OK);
    cr_assert_eq(ts_st_writer_metadata(w, "aa", "tab\there \"q\" \x01"), TS_OK);
    void *buf;
    size_t n;
    cr_assert_eq(ts_st_writer_serialize(w, &buf, &n), TS_OK, "%s", ts_last_error());
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | ((unsigned char *)buf)[i];
    cr_expect_eq(hl % 8, 0);
    const char *expect = "{\"__metadata__\":{\"aa\":\"tab\\there \\\"q\\\" \\u0001\",\"zz\":\"1\"},"
                         "\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
                         "\"a_f16\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[8,12]},"
                         "\"b_f16\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[12,16]},"
                         "\"z_u8\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[16,19]}}";
    size_t el = strlen(expect);
    cr_expect_eq(memcmp((char *)buf + 8, expect, el), 0, "header: %.*s", (int)hl, (char *)buf + 8);
    for (size_t i = el; i < hl; i++) cr_expect_eq(((char *)buf)[8 + i], ' ');
    cr_expect_eq(n, 8 + hl + 19);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(buf, n, &f), TS_OK, "%s", ts_last_error());
    ts_st_tensor_info t;
    cr_assert_eq(ts_st_find(f, "s", &t), TS_OK);
    cr_expect_eq(memcmp(t.data, f64, 8), 0);
    cr_expect_eq((uintptr_t)((const char *)t.data - (const char *)buf) % 8, 0);
    cr_assert_eq(ts_st_find(f, "z_u8", &t), TS_OK);
    cr_expect_eq(memcmp(t.data, u8, 3), 0);
    cr_expect_str_eq(ts_st_metadata_get(f, "aa"), "tab\there \"q\" \x01");
    ts_st_close(f);
    free(buf);
    ts_st_writer_destroy(w);
}

Test(st_write, empty_writer_matches_the_reference_bytes) {
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    void *buf;
    size_t n;
    cr_assert_eq(ts_st_writer_serialize(w, &buf, &n), TS_OK);
    static const unsigned char ref[] = {8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32}; /* the reference's test_empty */
    cr_expect_eq(n, sizeof ref);
    cr_expect_eq(memcmp(buf, ref, sizeof ref), 0);
    free(buf);
    ts_st_writer_destroy(w);
}

Test(st_write, the_reference_test_serialization_bytes) {
    /* safetensors/src/tensor.rs test_serialization: "attn.0" F32 [1,2,3] = 0..5 */
    float v[6] = {0, 1, 2, 3, 4, 5};
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    cr_assert_eq(ts_st_writer_add_ref(w, "attn.0", TS_ST_F32, 3, (uint64_t[]){1, 2, 3}, v, sizeof v), TS_OK);
    void *buf;
    size_t n;
    cr_assert_eq(ts_st_writer_serialize(w, &buf, &n), TS_OK);
    const char *h = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
    cr_expect_eq(((unsigned char *)buf)[0], 64);
    cr_expect_eq(memcmp((char *)buf + 8, h, strlen(h)), 0);
    cr_expect_eq(n, 8 + 64 + 24);
    cr_expect_eq(memcmp((char *)buf + 72, v, 24), 0);
    free(buf);
    ts_st_writer_destroy(w);
}

Test(st_write, rejects_bad_input) {
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    cr_expect_eq(ts_st_writer_add(w, "a", TS_ST_F32, 1, (uint64_t[]){2}, F4X, 4), TS_ERR_ST_SIZE_MISMATCH);
    cr_expect_eq(ts_st_writer_add(w, "a", TS_ST_F4, 1, (uint64_t[]){3}, F4X, 1), TS_ERR_ST_SUBBYTE);
    cr_expect_eq(ts_st_writer_add(w, "a", TS_ST_U8, 3, (uint64_t[]){1ull << 32, 1ull << 32, 1ull << 32}, F4X, 1), TS_ERR_ST_OVERFLOW);
    cr_expect_eq(ts_st_writer_add(w, "__metadata__", TS_ST_U8, 1, (uint64_t[]){1}, F4X, 1), TS_ERR_NAME);
    cr_expect_eq(ts_st_writer_add(w, "bad\xff", TS_ST_U8, 1, (uint64_t[]){1}, F4X, 1), TS_ERR_ST_UTF8);
    cr_expect_eq(ts_st_writer_add(w, "a", TS_ST_DTYPE_COUNT, 1, (uint64_t[]){1}, F4X, 1), TS_ERR_INVALID_ARGUMENT);
    cr_expect_eq(ts_st_writer_add(w, "a", TS_ST_U8, 1, NULL, F4X, 1), TS_ERR_RANK);
    cr_expect_eq(ts_st_writer_add(w, "a", TS_ST_U8, 1, (uint64_t[]){1}, NULL, 1), TS_ERR_INVALID_ARGUMENT);
    cr_expect_eq(ts_st_writer_add(w, "a", TS_ST_U8, 1, (uint64_t[]){1}, F4X, 1), TS_OK);
    cr_expect_eq(ts_st_writer_add(w, "a", TS_ST_U8, 1, (uint64_t[]){1}, F4X, 1), TS_ERR_NAME);
    cr_expect_eq(ts_st_writer_metadata(w, "k", "\xc0\x80"), TS_ERR_ST_UTF8);
    cr_expect_eq(ts_st_writer_save(w, "/nonexistent-dir/x.safetensors"), TS_ERR_IO);
    ts_st_writer_destroy(w);
    ts_st_writer_destroy(NULL);
}

Test(st_write, save_is_atomic_and_readable) {
    make_tmpdir();
    char path[400];
    snprintf(path, sizeof path, "%s/out.safetensors", tmpdir);
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "x", TS_ST_F32, 2, (uint64_t[]){2, 2}, F4X, 16), TS_OK);
    cr_assert_eq(ts_st_writer_metadata(w, "format", "pt"), TS_OK);
    cr_assert_eq(ts_st_writer_metadata(w, "format", "np"), TS_OK); /* replaces */
    cr_assert_eq(ts_st_writer_save(w, path), TS_OK, "%s", ts_last_error());
    ts_st_writer_destroy(w);
    ts_st_file *f;
    cr_assert_eq(ts_st_open(path, &f), TS_OK, "%s", ts_last_error());
    cr_expect_str_eq(ts_st_metadata_get(f, "format"), "np");
    cr_expect_eq(ts_st_metadata_count(f), 1);
    ts_st_close(f);
    DIR *d = opendir(tmpdir);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));) entries += e->d_name[0] != '.';
    closedir(d);
    cr_expect_eq(entries, 1, "a temporary file was left behind");
    rm_rf(tmpdir);
}

Test(st_write, aligned_options) {
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    ts_st_write_options o = TS_ST_WRITE_OPTIONS_INIT;
    o.data_align = 12;
    cr_expect_eq(ts_st_writer_set_options(w, &o), TS_ERR_INVALID_ARGUMENT);
    o.data_align = 8192;
    cr_expect_eq(ts_st_writer_set_options(w, &o), TS_ERR_INVALID_ARGUMENT);
    o.data_align = 8;
    o.tensor_align = 100;
    cr_expect_eq(ts_st_writer_set_options(w, &o), TS_ERR_INVALID_ARGUMENT);
    o.size = 4;
    cr_expect_eq(ts_st_writer_set_options(w, &o), TS_ERR_VERSION);
    o = (ts_st_write_options)TS_ST_WRITE_OPTIONS_INIT;
    o.tensor_align = 256;
    cr_assert_eq(ts_st_writer_set_options(w, &o), TS_OK);
    /* a name with the padding prefix moves the padding to another prefix */
    cr_assert_eq(ts_st_writer_add(w, "__padding.0", TS_ST_U8, 1, (uint64_t[]){3}, "abc", 3), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "b", TS_ST_U8, 1, (uint64_t[]){5}, "defgh", 5), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "c", TS_ST_U8, 1, (uint64_t[]){0}, NULL, 0), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "d", TS_ST_F32, 1, (uint64_t[]){4}, F4X, 16), TS_OK);
    void *buf;
    size_t n;
    cr_assert_eq(ts_st_writer_serialize(w, &buf, &n), TS_OK, "%s", ts_last_error());
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(buf, n, &f), TS_OK, "%s", ts_last_error());
    cr_expect_eq((8 + ts_st_header_size(f)) % 256, 0);
    cr_expect_eq(ts_st_count(f), 4 + 3); /* d (F32 first), pad, __padding.0, pad, b, pad, c (empty, aligned too) */
    const char *names[] = {"d", "__padding.0", "b", "c"};
    for (int i = 0; i < 4; i++) {
        ts_st_tensor_info t;
        cr_assert_eq(ts_st_find(f, names[i], &t), TS_OK, "%s", names[i]);
        cr_expect_eq(t.begin % 256, 0, "%s at %llu", names[i], (unsigned long long)t.begin);
    }
    ts_st_tensor_info t;
    cr_expect_eq(ts_st_find(f, "___padding.0", &t), TS_OK, "%s", ts_last_error());
    cr_expect_eq(t.nbytes, 256 - 16);
    ts_st_close(f);
    free(buf);
    ts_st_writer_destroy(w);
}

/* Fault injection into ts_st_writer_save: call number `fail_at` (counting
 * every system call of the save) fails with a plausible errno, or, with
 * `crash`, kills the process where the call would be. */
static int io_calls, io_fail_at = -1, io_crash, io_renamed;
static const char *io_failed_step;

static int io_inject(const char *step) {
    if (io_calls++ != io_fail_at) return 0;
    io_failed_step = step;
    if (io_crash) _exit(3);
    return 1;
}
static int fi_mkstemp(char *t) { if (io_inject("mkstemp")) { errno = EACCES; return -1; } return mkstemp(t); }
static ssize_t fi_write(int fd, const void *p, size_t n) {
    if (io_inject("write")) { errno = ENOSPC; return -1; }
    return write(fd, p, n < 5 ? n : 5); /* short writes, so the loop is exercised */
}
static int fi_fchmod(int fd, mode_t m) { if (io_inject("fchmod")) { errno = EPERM; return -1; } return fchmod(fd, m); }
static int fi_fsync(int fd) { if (io_inject("fsync")) { errno = EIO; return -1; } return fsync(fd); }
static int fi_close(int fd) { int r = close(fd); if (io_inject("close")) { errno = EIO; return -1; } return r; }
static int fi_rename(const char *a, const char *b) {
    if (io_inject("rename")) { errno = EXDEV; return -1; }
    int r = rename(a, b);
    io_renamed = r == 0;
    return r;
}
static int fi_open_dir(const char *d) { if (io_inject("open_dir")) { errno = EACCES; return -1; } return open(d, O_RDONLY | O_DIRECTORY); }

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static int folder_entries(const char *dir) {
    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));) entries += e->d_name[0] != '.';
    closedir(d);
    return entries;
}

static void save_old_and_make_new(const char *path, unsigned char **old, size_t *nold, unsigned char **nw, size_t *nnew, ts_st_writer **wnew) {
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "old", TS_ST_F32, 1, (uint64_t[]){4}, F4X, 16), TS_OK);
    cr_assert_eq(ts_st_writer_save(w, path), TS_OK, "%s", ts_last_error());
    ts_st_writer_destroy(w);
    *old = slurp(path, nold);
    cr_assert_eq(ts_st_writer_create(wnew), TS_OK);
    static uint8_t big[3000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7);
    cr_assert_eq(ts_st_writer_add(*wnew, "a", TS_ST_U8, 1, (uint64_t[]){sizeof big}, big, sizeof big), TS_OK);
    cr_assert_eq(ts_st_writer_add(*wnew, "b", TS_ST_F32, 1, (uint64_t[]){4}, F4X, 16), TS_OK);
    cr_assert_eq(ts_st_writer_metadata(*wnew, "k", "v"), TS_OK);
    void *m;
    cr_assert_eq(ts_st_writer_serialize(*wnew, &m, nnew), TS_OK);
    *nw = m;
}

static void install_faults(void) {
    ts__st_io_calls = (ts__st_io){fi_mkstemp, fi_write, fi_fchmod, fi_fsync, fi_close, fi_rename, fi_open_dir};
}

Test(st_write, a_failure_at_any_step_leaves_the_old_file) {
    make_tmpdir();
    char path[400];
    snprintf(path, sizeof path, "%s/model.safetensors", tmpdir);
    unsigned char *old, *nw;
    size_t nold, nnew;
    ts_st_writer *w;
    save_old_and_make_new(path, &old, &nold, &nw, &nnew, &w);
    install_faults();
    int steps = 0;
    for (int k = 0;; k++) {
        io_calls = 0;
        io_fail_at = k;
        io_renamed = 0;
        io_failed_step = NULL;
        ts_status s = ts_st_writer_save(w, path);
        size_t n;
        unsigned char *now = slurp(path, &n);
        if (!io_failed_step) { /* every step passed: the new file */
            cr_expect_eq(s, TS_OK, "%s", ts_last_error());
            cr_expect(n == nnew && memcmp(now, nw, n) == 0, "the saved file differs from the serialized bytes");
            free(now);
            break;
        }
        steps++;
        /* closing the folder (read-only, after its sync) is the one step whose failure does not matter */
        if (!(io_renamed && strcmp(io_failed_step, "close") == 0 && s == TS_OK))
            cr_expect_eq(s, TS_ERR_IO, "step %d (%s): %s", k, io_failed_step, ts_status_name(s));
        if (!io_renamed)
            cr_expect(n == nold && memcmp(now, old, n) == 0, "step %d (%s) changed the old file", k, io_failed_step);
        else /* only the folder sync failed: the complete new file is in place, and the error says so */
            cr_expect(n == nnew && memcmp(now, nw, n) == 0 && strstr(ts_last_error(), "renamed"), "step %d (%s): %s", k, io_failed_step,
                      ts_last_error());
        cr_expect_eq(folder_entries(tmpdir), 1, "step %d (%s) left a temporary file", k, io_failed_step);
        free(now);
        if (io_renamed) write_bytes(path, old, nold);
    }
    /* mkstemp, 2 + 2 tensors' writes (short ones: many), fchmod, fsync, close, rename, open_dir, fsync, close */
    cr_expect_gt(steps, 600, "only %d steps were injected", steps);
    ts_st_writer_destroy(w);
    free(old);
    free(nw);
    rm_rf(tmpdir);
}

Test(st_write, a_crash_at_any_step_leaves_a_whole_file) {
    make_tmpdir();
    char path[400];
    snprintf(path, sizeof path, "%s/model.safetensors", tmpdir);
    unsigned char *old, *nw;
    size_t nold, nnew;
    ts_st_writer *w;
    save_old_and_make_new(path, &old, &nold, &nw, &nnew, &w);
    install_faults();
    for (int k = 0;; k += 1 + k / 8) { /* every early step, then sparser through the many short writes */
        fflush(NULL);
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            io_crash = 1;
            io_fail_at = k;
            _exit(ts_st_writer_save(w, path) == TS_OK ? 0 : 1);
        }
        int st;
        waitpid(pid, &st, 0);
        cr_assert(WIFEXITED(st));
        size_t n;
        unsigned char *now = slurp(path, &n);
        int is_old = n == nold && memcmp(now, old, n) == 0, is_new = n == nnew && memcmp(now, nw, n) == 0;
        cr_expect(is_old || is_new, "a crash at step %d left a file that is neither the old nor the new one", k);
        free(now);
        if (WEXITSTATUS(st) == 0) { /* no step left to crash at */
            cr_expect(is_new);
            break;
        }
        cr_expect_eq(WEXITSTATUS(st), 3);
        /* a crash may leave the temporary file (never the target half-written): clear it */
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -f '%s'/*.tmp.*", tmpdir);
        cr_expect_eq(system(cmd), 0);
        write_bytes(path, old, nold);
    }
    ts_st_writer_destroy(w);
    free(old);
    free(nw);
    rm_rf(tmpdir);
}

/* ---------------------------------------------------------------- collections */

static void write_shard(const char *dir, const char *file, const char *const *names, int n) {
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    for (int i = 0; i < n; i++) cr_assert_eq(ts_st_writer_add(w, names[i], TS_ST_F32, 1, (uint64_t[]){1}, &F4X[i % 4], 4), TS_OK);
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    cr_assert_eq(ts_st_writer_save(w, path), TS_OK, "%s", ts_last_error());
    ts_st_writer_destroy(w);
}

static void write_text(const char *dir, const char *file, const char *text) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    write_bytes(path, text, strlen(text));
}

static ts_status open_collection_text(const char *text, ts_st_collection **c) {
    write_text(tmpdir, "model.safetensors.index.json", text);
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", tmpdir);
    return ts_st_collection_open(path, c);
}

Test(st_collection, sharded_index_opens_as_one) {
    make_tmpdir();
    write_shard(tmpdir, "model-00001-of-00002.safetensors", (const char *[]){"a", "c"}, 2);
    write_shard(tmpdir, "model-00002-of-00002.safetensors", (const char *[]){"b"}, 1);
    ts_st_collection *c = NULL;
    cr_assert_eq(open_collection_text("{\"metadata\":{\"total_size\":12,\"format\":\"pt\"},\"weight_map\":{"
                                      "\"c\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\","
                                      "\"a\":\"model-00001-of-00002.safetensors\"}}",
                                      &c),
                 TS_OK, "%s", ts_last_error());
    cr_expect_eq(ts_st_collection_count(c), 3);
    cr_expect_eq(ts_st_collection_file_count(c), 2);
    ts_st_tensor_info t;
    cr_assert_eq(ts_st_collection_tensor_at(c, 1, &t), TS_OK);
    cr_expect_str_eq(t.name, "b");
    cr_expect_eq(t.file, ts_st_collection_file(c, 1));
    cr_expect_eq(*(const float *)t.data, 1.0f);
    cr_assert_eq(ts_st_collection_find(c, "c", &t), TS_OK);
    cr_expect_eq(memcmp(t.data, &F4X[1], 4), 0);
    cr_expect_eq(ts_st_collection_find(c, "d", &t), TS_ERR_ST_TENSOR_NOT_FOUND);
    cr_expect_str_eq(ts_st_collection_metadata_get(c, "total_size"), "12");
    cr_expect_str_eq(ts_st_collection_metadata_get(c, "format"), "pt");
    ts_st_collection_close(c);
    /* the folder opens the index */
    cr_assert_eq(ts_st_collection_open(tmpdir, &c), TS_OK, "%s", ts_last_error());
    cr_expect_eq(ts_st_collection_count(c), 3);
    ts_st_collection_close(c);
    rm_rf(tmpdir);
}

Test(st_collection, index_errors) {
    make_tmpdir();
    write_shard(tmpdir, "s1.safetensors", (const char *[]){"a", "b"}, 2);
    ts_st_collection *c = (ts_st_collection *)1;
    cr_expect_eq(open_collection_text("{\"weight_map\":{\"a\":\"s1.safetensors\"}}", &c), TS_ERR_ST_INDEX_MISMATCH);
    cr_expect_null(c);
    cr_expect(strstr(ts_last_error(), "'b'") != NULL, "%s", ts_last_error());
    cr_expect_eq(open_collection_text("{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"x\":\"s1.safetensors\"}}", &c),
                 TS_ERR_ST_INDEX_MISMATCH);
    cr_expect_eq(open_collection_text("{\"weight_map\":{\"a\":\"../s1.safetensors\"}}", &c), TS_ERR_ST_BAD_INDEX);
    cr_expect_eq(open_collection_text("{\"weight_map\":{\"a\":\"/etc/passwd\"}}", &c), TS_ERR_ST_BAD_INDEX);
    cr_expect_eq(open_collection_text("{\"weight_map\":{\"a\":5}}", &c), TS_ERR_ST_BAD_INDEX);
    cr_expect_eq(open_collection_text("{\"weight_map\":[]}", &c), TS_ERR_ST_BAD_INDEX);
    cr_expect_eq(open_collection_text("{\"metadata\":{}}", &c), TS_ERR_ST_BAD_INDEX);
    cr_expect_eq(open_collection_text("{\"weight_map\":{\"a\":\"s1.safetensors\",\"a\":\"s1.safetensors\"}}", &c), TS_ERR_ST_BAD_INDEX);
    cr_expect_eq(open_collection_text("{\"weight_map\":{}", &c), TS_ERR_ST_BAD_INDEX);
    cr_expect_eq(open_collection_text("{\"weight_map\":{\"a\":\"missing.safetensors\"}}", &c), TS_ERR_NOT_FOUND);
    cr_expect(strstr(ts_last_error(), "missing.safetensors") != NULL, "%s", ts_last_error());
    write_text(tmpdir, "bad.safetensors", "xx");
    cr_expect_eq(open_collection_text("{\"weight_map\":{\"a\":\"bad.safetensors\"}}", &c), TS_ERR_ST_HEADER_TOO_SMALL);
    char deep[400] = "{\"weight_map\":{},\"x\":";
    for (int i = 0; i < 100; i++) strcat(deep, "[");
    for (int i = 0; i < 100; i++) strcat(deep, "]");
    strcat(deep, "}");
    cr_expect_eq(open_collection_text(deep, &c), TS_ERR_ST_BAD_INDEX);
    rm_rf(tmpdir);
}

Test(st_collection, single_file_and_folder) {
    make_tmpdir();
    write_shard(tmpdir, "model.safetensors", (const char *[]){"w"}, 1);
    ts_st_collection *c;
    cr_assert_eq(ts_st_collection_open(tmpdir, &c), TS_OK, "%s", ts_last_error());
    cr_expect_eq(ts_st_collection_count(c), 1);
    cr_expect_eq(ts_st_collection_file_count(c), 1);
    ts_st_collection_close(c);
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", tmpdir);
    cr_assert_eq(ts_st_collection_open(path, &c), TS_OK);
    ts_st_collection_close(c);
    ts_st_collection_close(NULL);
    rm_rf(tmpdir);
    cr_expect_eq(ts_st_collection_open(tmpdir, &c), TS_ERR_NOT_FOUND);
}

/* ---------------------------------------------------------------- the CLI */

static const char *cli(void) {
    const char *p = getenv("TESSERA_TEST_CLI");
    return p && *p ? p : TS_BINARY_DIR "/tessera";
}

/* Runs the CLI; returns its exit status, stdout and stderr in out/err. */
static int run_cli(const char *args, char *out, size_t nout, char *err, size_t nerr) {
    char cmd[2048], ef[64] = "/tmp/st-cli-err-XXXXXX";
    int fd = mkstemp(ef);
    cr_assert_geq(fd, 0);
    close(fd);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>'%s'", cli(), args, ef);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t k = fread(out, 1, nout - 1, p);
    out[k] = 0;
    int rc = pclose(p);
    FILE *e = fopen(ef, "r");
    k = e ? fread(err, 1, nerr - 1, e) : 0;
    err[k] = 0;
    if (e) fclose(e);
    unlink(ef);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

Test(st_cli, inspect_valid_invalid_and_json) {
    if (access(cli(), X_OK) != 0) cr_skip_test("the tessera CLI is not built at %s", cli());
    static char out[65536], err[8192];
    int rc = run_cli("inspect " CORPUS "/valid_scalar.safetensors", out, sizeof out, err, sizeof err);
    if (rc == 2 && strstr(err, "not in this build")) cr_skip_test("inspect is not wired into this CLI build");
    cr_expect_eq(rc, 0, "stderr: %s", err);
    cr_expect(strstr(out, "I64") && strstr(out, "[]") && strstr(out, "valid"), "%s", out);
    rc = run_cli("inspect --json " CORPUS "/valid_unicode_name.safetensors", out, sizeof out, err, sizeof err);
    cr_expect_eq(rc, 0);
    cr_expect(strstr(out, "\"valid\": true") && strstr(out, "\"dtype\": \"U8\""), "%s", out);
    rc = run_cli("inspect " CORPUS "/overlap_partial.safetensors", out, sizeof out, err, sizeof err);
    cr_expect_eq(rc, 1);
    cr_expect(strstr(err, "TS_ERR_ST_OVERLAP") != NULL, "%s", err);
    rc = run_cli("inspect --json " CORPUS "/hole_between.safetensors", out, sizeof out, err, sizeof err);
    cr_expect_eq(rc, 1);
    cr_expect(strstr(err, "TS_ERR_ST_HOLE") && strstr(out, "\"valid\": false"), "%s / %s", out, err);
    cr_expect_eq(run_cli("inspect --help", out, sizeof out, err, sizeof err), 0);
    cr_expect(strstr(out, "usage: tessera inspect") != NULL);
    cr_expect_eq(run_cli("inspect", out, sizeof out, err, sizeof err), 2);
    cr_expect_eq(run_cli("inspect --bogus x", out, sizeof out, err, sizeof err), 2);
}
