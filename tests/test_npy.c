/* test_npy.c: formats/npy.c and `tessera run --inputs/--outputs`.
 *
 * Sections: helpers; round trips with numpy (tests/py/npy_ref.py; numpy
 * is the reference: files np.save writes read right with ours and equal our
 * writer's bytes, files ours writes read right with np.load), every dtype,
 * rank 0, zero-size dims, versions 2.0 and 3.0; hostile files built here,
 * each rejected with a status and a message naming the file and the rule;
 * headers numpy could write that must be accepted; the CLI end to end (the
 * outputs checked against numpy's own computation of the kernel) and its
 * errors for mismatched files. Skipped, with the reason, without numpy or
 * the CLI. */
#include <criterion/criterion.h>

#include "npy.h"
#include "tessera.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPY_REF TS_SOURCE_DIR "/tests/py/npy_ref.py"

/* ---------------------------------------------------------------- helpers */

static char tmpdir[256];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/npy-test-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void cleanup(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
}

static void need_numpy(void) {
    if (system("python3 -c 'import numpy' >/dev/null 2>&1") != 0)
        cr_skip_test("python3 with numpy is not available (make setup installs it)");
    make_tmpdir();
}

static int run(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Runs a command, its stdout and stderr into *out (caller frees); the exit status. */
static int run_capture(const char *cmd, char **out) {
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p, "popen: %s", strerror(errno));
    size_t cap = 1 << 20, n = 0, k;
    char *buf = malloc(cap);
    while ((k = fread(buf + n, 1, cap - 1 - n, p)) > 0) n += k;
    buf[n] = 0;
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)l + 1);
    cr_assert_eq(fread(b, 1, (size_t)l, f), (size_t)l);
    fclose(f);
    *n = (size_t)l;
    return b;
}

/* Element i of a case, as tests/py/npy_ref.py's values() computes it. */
static double expected(ts_dtype d, int64_t i) {
    if (d == TS_BOOL) return i % 3 == 0;
    if (d == TS_U8) return (double)((i * 37) % 251);
    double v = (double)((i * 37) % 101 - 50);
    if (ts_dtype_is_float(d)) return v * 0.5;
    if (d == TS_I64) return v * 1000000007.0;
    return v;
}

/* ---------------------------------------------------------------- round trips with numpy */

Test(npy, numpy_writes_ours_reads_and_writes_the_same_bytes) {
    need_numpy();
    char cmd[1024], path[600];
    snprintf(cmd, sizeof cmd, "python3 '%s' write '%s'", NPY_REF, tmpdir);
    cr_assert_eq(run(cmd), 0, "%s failed", cmd);
    snprintf(path, sizeof path, "%s/cases.txt", tmpdir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char line[256];
    int cases = 0, seen[TS_DTYPE_COUNT] = {0}, rank0 = 0, empty = 0, versions[4] = {0};
    while (fgets(line, sizeof line, f)) {
        char name[64], descr[16];
        int rank, used;
        if (sscanf(line, "%63s %15s %d%n", name, descr, &rank, &used) != 3) continue;
        int64_t shape[TS_MAX_RANK] = {0};
        const char *p = line + used;
        for (int d = 0; d < rank; d++) {
            char *end;
            shape[d] = strtoll(p, &end, 10);
            p = end;
        }
        snprintf(path, sizeof path, "%s/%s", tmpdir, name);
        ts__npy a;
        ts_status s = ts__npy_load(path, &a);
        cr_assert_eq(s, TS_OK, "%s: %s", name, ts_last_error());
        ts_dtype want;
        cr_assert_eq(ts__npy_descr_dtype(name, descr, &want), TS_OK, "%s", ts_last_error());
        cr_expect_eq(a.dtype, want, "%s: dtype %s, numpy wrote %s", name, ts_dtype_name(a.dtype), descr);
        cr_expect_str_eq(ts__npy_dtype_descr(a.dtype), descr);
        cr_assert_eq(a.rank, rank, "%s", name);
        int64_t numel = 1;
        for (int d = 0; d < rank; d++) {
            cr_expect_eq(a.shape[d], shape[d], "%s dim %d", name, d);
            numel *= shape[d];
        }
        cr_assert_eq(a.numel, numel, "%s", name);
        cr_assert_eq(a.nbytes, (size_t)numel * ts_dtype_size(a.dtype));
        for (int64_t i = 0; i < numel; i++)
            cr_assert_eq(ts__load_elem(a.dtype, a.data, i), expected(a.dtype, i), "%s element %lld", name, (long long)i);
        /* our writer gives numpy's bytes (numpy picks version 1.0 for these) */
        if (a.version == 1) {
            void *ours;
            size_t n, theirs_n;
            cr_assert_eq(ts__npy_serialize(a.dtype, a.rank, a.shape, a.data, a.nbytes, &ours, &n), TS_OK, "%s", ts_last_error());
            unsigned char *theirs = read_bytes(path, &theirs_n);
            cr_expect(n == theirs_n && memcmp(ours, theirs, n) == 0, "%s: our writer's %zu bytes differ from np.save's %zu", name, n, theirs_n);
            free(ours);
            free(theirs);
        }
        versions[a.version]++;
        seen[a.dtype]++;
        rank0 += rank == 0;
        empty += numel == 0;
        ts__npy_free(&a);
        cases++;
    }
    fclose(f);
    int nd = 0; /* the dtypes numpy has */
    for (int d = 0; d < TS_DTYPE_COUNT; d++)
        if (ts__npy_dtype_descr((ts_dtype)d)) {
            nd++;
            cr_expect_eq(seen[d], 9, "dtype %s read %d times", ts_dtype_name((ts_dtype)d), seen[d]);
        }
    cr_expect_eq(nd, 9);
    cr_expect_eq(cases, nd * 9);
    cr_expect_eq(rank0, nd);
    cr_expect_eq(empty, 2 * nd);
    cr_expect(versions[1] == 7 * nd && versions[2] == nd && versions[3] == nd);
    cleanup();
}

Test(npy, ours_writes_numpy_reads) {
    need_numpy();
    static const int64_t shapes[][TS_MAX_RANK] = {{0}, {0}, {5}, {3, 4}, {2, 3, 4}, {3, 0, 2}, {2, 1, 3, 2}};
    static const int ranks[] = {0, 1, 1, 2, 3, 3, 4};
    char path[600];
    snprintf(path, sizeof path, "%s/cases.txt", tmpdir);
    FILE *list = fopen(path, "w");
    cr_assert_not_null(list);
    int cases = 0;
    for (int d = 0; d < TS_DTYPE_COUNT; d++) {
        if (!ts__npy_dtype_descr((ts_dtype)d)) continue; /* bf16, f8: no numpy dtype */
        for (int j = 0; j < 7; j++) {
            int64_t numel = 1;
            for (int k = 0; k < ranks[j]; k++) numel *= shapes[j][k];
            size_t nbytes = (size_t)numel * ts_dtype_size((ts_dtype)d);
            unsigned char *buf = calloc(nbytes + 1, 1);
            for (int64_t i = 0; i < numel; i++) ts__store_elem((ts_dtype)d, buf, i, expected((ts_dtype)d, i));
            char name[64];
            snprintf(name, sizeof name, "ours_%d_%d.npy", d, j);
            snprintf(path, sizeof path, "%s/%s", tmpdir, name);
            cr_assert_eq(ts__npy_save(path, (ts_dtype)d, ranks[j], shapes[j], buf, nbytes), TS_OK, "%s", ts_last_error());
            fprintf(list, "%s %s %d", name, ts__npy_dtype_descr((ts_dtype)d), ranks[j]);
            for (int k = 0; k < ranks[j]; k++) fprintf(list, " %lld", (long long)shapes[j][k]);
            fprintf(list, "\n");
            /* and it reads back with ours */
            ts__npy a;
            cr_assert_eq(ts__npy_load(path, &a), TS_OK, "%s", ts_last_error());
            cr_expect(a.dtype == (ts_dtype)d && a.rank == ranks[j] && a.nbytes == nbytes && (!nbytes || memcmp(a.data, buf, nbytes) == 0), "%s", name);
            ts__npy_free(&a);
            free(buf);
            cases++;
        }
    }
    fclose(list);
    cr_expect_eq(cases, 63);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 '%s' check '%s'", NPY_REF, tmpdir);
    cr_expect_eq(run(cmd), 0, "numpy did not read our files as written (see above)");
    cleanup();
}

Test(npy, writer_refuses_bf16_and_wrong_sizes) {
    void *out = (void *)1;
    size_t n = 7;
    uint16_t h[4] = {0};
    cr_expect_eq(ts__npy_serialize(TS_BF16, 1, (int64_t[]){4}, h, 8, &out, &n), TS_ERR_UNSUPPORTED);
    cr_expect(strstr(ts_last_error(), "bf16") && strstr(ts_last_error(), "numpy"), "%s", ts_last_error());
    cr_expect(out == NULL && n == 0);
    cr_expect_eq(ts__npy_serialize(TS_F32, 1, (int64_t[]){4}, h, 8, &out, &n), TS_ERR_INVALID_ARGUMENT);
    cr_expect_eq(ts__npy_serialize(TS_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, h, 4, &out, &n), TS_ERR_RANK);
    cr_expect_eq(ts__npy_save("/nonexistent-dir/x.npy", TS_F32, 1, (int64_t[]){2}, h, 8), TS_ERR_IO);
    cr_expect_null(ts__npy_dtype_descr(TS_BF16));
}

/* ---------------------------------------------------------------- hostile files */

/* A .npy file: magic, version `major`, the dict padded with spaces and '\n'
 * so that the data starts at a multiple of 64, then `data_n` bytes of 0x01
 * (true for bools, some value for the rest). */
static unsigned char *build(int major, const char *dict, size_t data_n, size_t *n) {
    size_t prefix = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t hl = dl + 1, pad = 64 - (prefix + hl) % 64;
    size_t total = prefix + hl + pad + data_n;
    unsigned char *b = malloc(total + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    size_t field = hl + pad;
    b[8] = (unsigned char)field;
    b[9] = (unsigned char)(field >> 8);
    if (prefix == 12) {
        b[10] = (unsigned char)(field >> 16);
        b[11] = (unsigned char)(field >> 24);
    }
    memcpy(b + prefix, dict, dl);
    memset(b + prefix + dl, ' ', pad);
    b[prefix + hl + pad - 1] = '\n';
    memset(b + prefix + hl + pad, 1, data_n);
    *n = total;
    return b;
}

#define F32_34 "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"

typedef struct hostile {
    const char *what;   /* the case */
    int major;
    const char *dict;   /* NULL: raw bytes below */
    long data_delta;    /* bytes of data past (or short of) the shape's */
    size_t data_n;      /* the shape's bytes */
    ts_status want;
    const char *msg;    /* a substring of the message */
} hostile;

static void expect_rejected(const char *name, const unsigned char *b, size_t n, ts_status want, const char *msg) {
    /* an exact-size copy, so reading past the end is visible to ASan */
    unsigned char *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, b, n);
    ts__npy a;
    memset(&a, 0x5a, sizeof a);
    ts_clear_error();
    ts_status s = ts__npy_parse("hostile.npy", copy, n, &a);
    cr_expect_eq(s, want, "%s: %s (want %s): %s", name, ts_status_name(s), ts_status_name(want), ts_last_error());
    cr_expect(s != TS_OK, "%s accepted", name);
    const char *m = ts_last_error();
    cr_expect(strncmp(m, "hostile.npy: ", 13) == 0, "%s: the message does not name the file: '%s'", name, m);
    cr_expect(strstr(m, msg) != NULL, "%s: message '%s' lacks '%s'", name, m, msg);
    cr_expect(a.data == NULL && a.owned == NULL && a.rank == 0, "%s: a failed parse must leave *out zeroed", name);
    free(copy);
}

Test(npy, hostile_files_are_rejected_with_a_reason) {
    static const hostile cases[] = {
        {"missing key", 1, "{'descr': '<f4', 'shape': (3, 4), }", 0, 48, TS_ERR_PARSE, "the key 'fortran_order' is missing"},
        {"duplicate key", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'descr': '<f4', }", 0, 48, TS_ERR_PARSE,
         "key 'descr' appears twice"},
        {"extra key", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'x': 1}", 0, 48, TS_ERR_PARSE, "unexpected key 'x'"},
        {"bad descr", 1, "{'descr': '<q9', 'fortran_order': False, 'shape': (3, 4), }", 0, 48, TS_ERR_UNSUPPORTED, "dtype '<q9' is not supported"},
        {"descr not a string", 1, "{'descr': 4, 'fortran_order': False, 'shape': (3, 4), }", 0, 48, TS_ERR_PARSE, "quoted dtype string"},
        {"big-endian", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 4), }", 0, 48, TS_ERR_UNSUPPORTED, "big-endian"},
        {"uint16", 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (3, 4), }", 0, 24, TS_ERR_UNSUPPORTED,
         "dtype u2 (uint16) is not supported by this build"},
        {"int8 too short", 1, "{'descr': '|i1', 'fortran_order': False, 'shape': (3, 4), }", 0, 11, TS_ERR_PARSE, "12 bytes"},
        {"object", 1, "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", 0, 24, TS_ERR_UNSUPPORTED, "object arrays"},
        {"structured", 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", 0, 12, TS_ERR_UNSUPPORTED, "structured"},
        {"bf16 as void", 1, "{'descr': '<V2', 'fortran_order': False, 'shape': (3,), }", 0, 6, TS_ERR_UNSUPPORTED, "bf16 has no numpy dtype"},
        {"fortran True", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", 0, 48, TS_ERR_UNSUPPORTED, "fortran_order True"},
        {"fortran not a bool", 1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (3, 4), }", 0, 48, TS_ERR_PARSE, "True or False"},
        {"fortran Trueish", 1, "{'descr': '<f4', 'fortran_order': Truex, 'shape': (3, 4), }", 0, 48, TS_ERR_PARSE, "True or False"},
        {"negative dim", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 4), }", 0, 0, TS_ERR_PARSE, "dim 0 is negative (-3)"},
        {"overflowing shape", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2), }", 0, 0, TS_ERR_LIMIT,
         "more elements than fit in 64 bits"},
        {"overflowing bytes", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2305843009213693952, 2), }", 0, 0, TS_ERR_LIMIT,
         "more bytes than this machine can address"},
        {"dim past int64", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0, 0, TS_ERR_LIMIT,
         "larger than 2^63 - 1"},
        {"dim 2^63", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775808,), }", 0, 0, TS_ERR_LIMIT, "larger than 2^63 - 1"},
        {"rank 5", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }", 0, 4, TS_ERR_RANK, "more than 4 dims"},
        {"int, not a tuple", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5), }", 0, 20, TS_ERR_PARSE, "is not a tuple"},
        {"list shape", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': [5], }", 0, 20, TS_ERR_PARSE, "a list is not a tuple"},
        {"leading zero", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (05,), }", 0, 20, TS_ERR_PARSE, "leading zeros"},
        {"long suffix", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5L,), }", 0, 20, TS_ERR_PARSE, "after a dim"},
        {"float dim", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5.0,), }", 0, 20, TS_ERR_PARSE, "',' or ')'"},
        {"two commas", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,,), }", 0, 20, TS_ERR_PARSE, "integer dim"},
        {"unclosed tuple", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5, ", 0, 20, TS_ERR_PARSE, "at the end of the header"},
        {"unclosed dict", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), ", 0, 48, TS_ERR_PARSE, "at the end of the header"},
        {"unclosed string", 1, "{'descr': '<f4", 0, 48, TS_ERR_PARSE, "is not closed"},
        {"escape in string", 1, "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (3, 4), }", 0, 48, TS_ERR_PARSE, "without escapes"},
        {"unquoted key", 1, "{descr: '<f4', 'fortran_order': False, 'shape': (3, 4), }", 0, 48, TS_ERR_PARSE, "a quoted key"},
        {"not a dict", 1, "('<f4', False, (3, 4))", 0, 48, TS_ERR_PARSE, "the dict's '{'"},
        {"text after the dict", 1, F32_34 " x", 0, 48, TS_ERR_PARSE, "only space padding"},
        {"newline inside", 1, "{'descr': '<f4',\n'fortran_order': False, 'shape': (3, 4), }", 0, 48, TS_ERR_PARSE, "byte 0x0a"},
        {"trailing data", 1, F32_34, 1, 48, TS_ERR_PARSE, "holds 48 bytes of f32 data but the file has 49 after its header (trailing bytes)"},
        {"short data", 1, F32_34, -8, 48, TS_ERR_PARSE, "shape (3, 4) holds 48 bytes of f32 data but the file has 40 after its header"},
        {"no data", 1, F32_34, -48, 48, TS_ERR_PARSE, "the file has 0 after its header (truncated)"},
        {"zero-size with data", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 0), }", 8, 0, TS_ERR_PARSE, "holds 0 bytes of f64"},
        {"non-ASCII header in v1", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }\xc3\xa9", 0, 48, TS_ERR_PARSE,
         "non-ASCII byte 0xc3"},
        {"non-ASCII header in v2", 2, "{'descr': '\xe9', 'fortran_order': False, 'shape': (3, 4), }", 0, 48, TS_ERR_PARSE, "non-ASCII byte 0xe9"},
        {"bad UTF-8 in v3", 3, "{'descr': '\xff', 'fortran_order': False, 'shape': (3, 4), }", 0, 48, TS_ERR_PARSE, "invalid UTF-8"},
        {"UTF-8 descr in v3", 3, "{'descr': '\xc3\xa9', 'fortran_order': False, 'shape': (3, 4), }", 0, 48, TS_ERR_UNSUPPORTED, "is not supported"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const hostile *c = &cases[i];
        size_t n;
        unsigned char *b = build(c->major, c->dict, (size_t)((long)c->data_n + (c->data_delta > 0 ? c->data_delta : 0)), &n);
        if (c->data_delta < 0) n -= (size_t)-c->data_delta;
        expect_rejected(c->what, b, n, c->want, c->msg);
        free(b);
    }
}

/* Byte-level damage: magic, version, length field, padding. */
Test(npy, hostile_prefixes_are_rejected_with_a_reason) {
    size_t n;
    unsigned char *good = build(1, F32_34, 48, &n);
    unsigned char b[256];
    cr_assert(n <= sizeof b);

    expect_rejected("empty", good, 0, TS_ERR_PARSE, "shorter than the magic");
    expect_rejected("truncated magic", good, 4, TS_ERR_PARSE, "shorter than the magic");
    expect_rejected("no version", good, 7, TS_ERR_PARSE, "version bytes are missing");
    expect_rejected("no length", good, 9, TS_ERR_PARSE, "header length field is cut off");
    memcpy(b, good, n);
    b[0] = 0x92;
    expect_rejected("bad magic", b, n, TS_ERR_PARSE, "not a .npy file");
    memcpy(b, "PK\3\4", 4);
    expect_rejected("an .npz (zip)", b, n, TS_ERR_PARSE, "not a .npy file");
    static const unsigned char versions[][2] = {{0, 0}, {4, 0}, {1, 1}, {2, 5}, {255, 0}};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        memcpy(b, good, n);
        b[6] = versions[i][0];
        b[7] = versions[i][1];
        char want[64];
        snprintf(want, sizeof want, "format version %u.%u", versions[i][0], versions[i][1]);
        expect_rejected("bad version", b, n, TS_ERR_PARSE, want);
    }
    memcpy(b, good, n);
    b[8] = 0xff;
    b[9] = 0xff;
    expect_rejected("header length past EOF", b, n, TS_ERR_PARSE, "header length 65535 reaches past the end of the file");
    expect_rejected("header cut short", good, 40, TS_ERR_PARSE, "reaches past the end of the file");
    memcpy(b, good, n);
    b[8] = 0; /* header of 0 bytes */
    b[9] = 0;
    expect_rejected("empty header", b, n, TS_ERR_PARSE, "does not end with '\\n'");
    memcpy(b, good, n);
    b[8] = (unsigned char)(good[8] - 1); /* the last pad byte becomes data */
    expect_rejected("no final newline", b, n, TS_ERR_PARSE, "does not end with '\\n'");
    /* a version 2 length field that reaches 4 GiB */
    unsigned char *v2 = build(2, F32_34, 48, &n);
    v2[11] = 0xff;
    expect_rejected("v2 length past EOF", v2, n, TS_ERR_PARSE, "reaches past the end of the file");
    free(v2);
    /* a header ending at byte 72: not 16-aligned */
    unsigned char mis[200];
    memcpy(mis, good, 10);
    const char *dict = F32_34 "   ";
    size_t dl = strlen(dict);
    memcpy(mis + 10, dict, dl);
    mis[10 + dl] = '\n';
    size_t hl = dl + 1;
    mis[8] = (unsigned char)hl;
    mis[9] = 0;
    cr_assert_eq((10 + hl) % 16 != 0, 1);
    memset(mis + 10 + hl, 0, 48);
    expect_rejected("misaligned data", mis, 10 + hl + 48, TS_ERR_PARSE, "not a multiple of 16");
    free(good);
    /* bools other than 0 and 1 */
    unsigned char *bl = build(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", 3, &n);
    bl[n - 1] = 2;
    expect_rejected("bool 2", bl, n, TS_ERR_PARSE, "bool element 2 is 0x02");
    free(bl);
}

/* Headers numpy (or Python's literal syntax) allows, which must read. */
Test(npy, accepted_header_spellings) {
    static const struct {
        int major;
        const char *dict;
        int rank;
        int64_t d0;
    } ok[] = {
        {1, "{'shape': (3, 4), 'fortran_order': False, 'descr': '<f4'}", 2, 3},      /* any key order, no trailing comma */
        {1, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (12,)}", 1, 12}, /* double quotes */
        {1, "{'descr':'<f4','fortran_order':False,'shape':(3,4,),}", 2, 3},          /* no spaces, trailing commas */
        {1, " {\t'descr': '<f4', 'fortran_order': False, 'shape': ( 3 , 4 ) }", 2, 3},
        {2, F32_34, 2, 3},
        {3, F32_34, 2, 3},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-0, 3), }", 2, 0}, /* -0 is 0 */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n, data = ok[i].d0 ? 48 : 0;
        unsigned char *b = build(ok[i].major, ok[i].dict, data, &n);
        ts__npy a;
        ts_status s = ts__npy_parse("ok.npy", b, n, &a);
        cr_expect_eq(s, TS_OK, "case %zu: %s", i, ts_last_error());
        cr_expect(a.dtype == TS_F32 && a.rank == ok[i].rank && a.shape[0] == ok[i].d0 && a.nbytes == data, "case %zu", i);
        cr_expect_eq(a.version, ok[i].major);
        free(b);
    }
    /* a 16-aligned header (numpy before 1.9 wrote these) */
    unsigned char b[128];
    const char *dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }"; /* 58 bytes */
    size_t dl = strlen(dict), hl = 80 - 10;
    memcpy(b, "\x93NUMPY\1\0", 8);
    b[8] = (unsigned char)hl;
    b[9] = 0;
    memcpy(b + 10, dict, dl);
    memset(b + 10 + dl, ' ', hl - dl - 1);
    b[10 + hl - 1] = '\n';
    memset(b + 80, 0, 8);
    ts__npy a;
    cr_expect_eq(ts__npy_parse("old.npy", b, 88, &a), TS_OK, "%s", ts_last_error());
    cr_expect(a.dtype == TS_I32 && a.numel == 2);
    /* a missing file is TS_ERR_NOT_FOUND naming it */
    cr_expect_eq(ts__npy_load("/nonexistent/x.npy", &a), TS_ERR_NOT_FOUND);
    cr_expect(strstr(ts_last_error(), "/nonexistent/x.npy") != NULL, "%s", ts_last_error());
}

/* ---------------------------------------------------------------- the CLI */

static const char *cli_or_skip(void) {
    const char *cli = getenv("TESSERA_TEST_CLI");
    if (!cli || !*cli) cr_skip_test("TESSERA_TEST_CLI is not set (run through ctest)");
    return cli;
}

static const char add_tile[] = "kernel add(x: f32[M, N], bias: f32[N], y: f32[M, N]) {\n"
                               "  tunable BLOCK_M = 8 in 1..64\n"
                               "  tunable BLOCK_N = 32 in 16..1024\n"
                               "  grid tm in tile(M, BLOCK_M), tn in tile(N, BLOCK_N)\n"
                               "  store(y[tm, tn], load(x[tm, tn]) + load(bias[tn]))\n"
                               "}\n";

static const char softmax_tile[] = "kernel row_softmax(x: f32[M, N], y: f32[M, N]) {\n"
                                   "  tunable BLOCK_M = 4 in 1..64\n"
                                   "  grid tm in tile(M, BLOCK_M), tn in tile(N)\n"
                                   "  xv = load(x[tm, tn], fill=-inf)\n"
                                   "  e = exp(xv - max(xv, axis=1, keepdim=true))\n"
                                   "  store(y[tm, tn], e / sum(e, axis=1, keepdim=true))\n"
                                   "}\n";

/* tmpdir/k.tile with `text`; tmpdir/in with numpy's x (37 x 50, not a
 * multiple of any block) and, for add, bias. */
static void setup_kernel(const char *text, int with_bias) {
    char path[600], cmd[1024];
    snprintf(path, sizeof path, "%s/k.tile", tmpdir);
    write_bytes(path, text, strlen(text));
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir -p in && python3 -c \"import numpy as np; r = np.random.default_rng(7); "
             "np.save('in/x.npy', (r.standard_normal((37, 50)) * 3).astype(np.float32)); "
             "%s\"",
             tmpdir, with_bias ? "np.save('in/bias.npy', r.standard_normal(50).astype(np.float32))" : "");
    cr_assert_eq(run(cmd), 0, "%s", cmd);
}

static void end_to_end(const char *backend, const char *text, const char *name, int with_bias) {
    const char *cli = cli_or_skip();
    need_numpy();
    if (strcmp(backend, "ref") != 0) {
        const char *only = getenv("TESSERA_TEST_BACKENDS"), *why = NULL;
        if (only && !strstr(only, backend)) cr_skip_test("TESSERA_TEST_BACKENDS=%s excludes %s", only, backend);
        if (!ts_backend_available(backend, &why)) cr_skip_test("%s backend not available: %s", backend, why ? why : "?");
    }
    setup_kernel(text, with_bias);
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' run k.tile --backend %s --inputs in --outputs out", tmpdir, cli, backend);
    int rc = run_capture(cmd, &out);
    cr_expect_eq(rc, 0, "%s exited %d:\n%s", cmd, rc, out);
    cr_expect(strstr(out, "sizes M=37,N=50") != NULL, "the files' shapes did not bind the sizes:\n%s", out);
    cr_expect(strstr(out, with_bias ? "x.npy (37, 50), bias.npy (50,); random: y" : "x.npy (37, 50); random: y") != NULL, "%s", out);
    cr_expect(strstr(out, "wrote") != NULL, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "python3 '%s' kernel %s '%s/in' '%s/out'", NPY_REF, name, tmpdir, tmpdir);
    cr_expect_eq(run(cmd), 0, "the outputs of %s on %s differ from numpy's (see above)", name, backend);
    cleanup();
}

Test(npy_cli, add_on_ref_matches_numpy) { end_to_end("ref", add_tile, "add", 1); }
Test(npy_cli, softmax_on_ref_matches_numpy) { end_to_end("ref", softmax_tile, "softmax", 0); }
Test(npy_cli, add_on_opencl_matches_numpy) { end_to_end("opencl", add_tile, "add", 1); }
Test(npy_cli, softmax_on_opencl_matches_numpy) { end_to_end("opencl", softmax_tile, "softmax", 0); }

/* Runs the CLI on tmpdir/k.tile with `args`; expects exit status 2 and
 * every substring of subs in its output. */
static void expect_cli_error(const char *args, const char *const *subs) {
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' run k.tile --backend ref %s", tmpdir, getenv("TESSERA_TEST_CLI"), args);
    int rc = run_capture(cmd, &out);
    cr_expect_eq(rc, 2, "%s exited %d:\n%s", args, rc, out);
    for (int i = 0; subs[i]; i++) cr_expect(strstr(out, subs[i]) != NULL, "%s: output lacks '%s':\n%s", args, subs[i], out);
    free(out);
}
#define SUBS(...) ((const char *const[]){__VA_ARGS__, NULL})

Test(npy_cli, mismatched_files_fail_naming_the_file) {
    cli_or_skip();
    need_numpy();
    setup_kernel(add_tile, 1);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir -p dt rank conflict short && python3 -c \"import numpy as np; "
             "np.save('dt/x.npy', np.zeros((37, 50))); "
             "np.save('rank/bias.npy', np.zeros((1, 50), np.float32)); "
             "np.save('conflict/x.npy', np.zeros((37, 50), np.float32)); np.save('conflict/bias.npy', np.zeros(49, np.float32)); "
             "open('short/x.npy', 'wb').write(open('conflict/x.npy', 'rb').read()[:-4])\"",
             tmpdir);
    cr_assert_eq(run(cmd), 0, "%s", cmd);
    expect_cli_error("--inputs dt", SUBS("dt/x.npy", "f64", "'<f8'", "f32"));
    expect_cli_error("--inputs rank", SUBS("rank/bias.npy", "(1, 50)", "rank 2", "bias: f32[N] has rank 1"));
    expect_cli_error("--inputs conflict", SUBS("conflict/bias.npy", "N = 49", "conflict/x.npy bound N = 50"));
    expect_cli_error("--inputs short", SUBS("short/x.npy", "holds 7400 bytes of f32 data but the file has 7396 after its header"));
    expect_cli_error("--inputs in --shape N=51", SUBS("in/x.npy", "--shape sets N = 51"));
    expect_cli_error("--inputs nosuch", SUBS("nosuch", "cannot open the --inputs folder"));
    cleanup();
}

Test(npy_cli, unused_files_warn_and_options_work_alone) {
    const char *cli = cli_or_skip();
    need_numpy();
    setup_kernel(add_tile, 0);
    char cmd[2048], *out;
    snprintf(cmd, sizeof cmd, "cd '%s' && python3 -c \"import numpy as np; np.save('in/z.npy', np.zeros(3))\"", tmpdir);
    cr_assert_eq(run(cmd), 0);
    /* --inputs alone: the shape binds M and N, bias stays random, z.npy is named in a warning */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' run k.tile --backend ref --inputs in --shape M=37", tmpdir, cli);
    int rc = run_capture(cmd, &out);
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "warning: in/z.npy ignored") != NULL, "%s", out);
    cr_expect(strstr(out, "sizes M=37,N=50") != NULL, "%s", out);
    cr_expect(strstr(out, "random: bias, y") != NULL, "%s", out);
    free(out);
    /* --outputs alone: random inputs at --shape, every tensor written, the folder made */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' run k.tile --backend ref --shape M=3,N=5 --outputs new/dir", tmpdir, cli);
    rc = run_capture(cmd, &out);
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "wrote 3 tensors") != NULL, "%s", out);
    free(out);
    static const char *const names[] = {"x", "bias", "y"};
    static const int64_t dims[][2] = {{3, 5}, {5, 0}, {3, 5}};
    for (int i = 0; i < 3; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/new/dir/%s.npy", tmpdir, names[i]);
        ts__npy a;
        cr_assert_eq(ts__npy_load(path, &a), TS_OK, "%s", ts_last_error());
        cr_expect(a.dtype == TS_F32 && a.rank == (i == 1 ? 1 : 2) && a.shape[0] == dims[i][0] && (i == 1 || a.shape[1] == dims[i][1]), "%s", path);
        ts__npy_free(&a);
    }
    /* y = x + bias, checked by numpy (on the written x and bias) */
    snprintf(cmd, sizeof cmd, "python3 -c \"import numpy as np, sys; d = '%s/new/dir/'; x, b, y = (np.load(d + n + '.npy') for n in ('x', 'bias', 'y')); "
                              "sys.exit(0 if np.allclose(y, x + b, rtol=1e-6, atol=0) else 1)\"",
             tmpdir);
    cr_expect_eq(run(cmd), 0, "y != x + bias");
    cleanup();
}
