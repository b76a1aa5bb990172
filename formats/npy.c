/* npy.c: numpy's .npy format (numpy/lib/format.py), a strict reader and a
 * writer whose header is byte for byte numpy's.
 *
 * Sections: the dtype table; the header's dict literal (a small parser
 * over a cursor: strings, True/False, tuples of ints); the reader (magic,
 * version, header length, padding, the dict, sizes with overflow checks,
 * data length); the writer.
 *
 * Every rejection names the file (`what`) and the rule; nothing is read
 * outside p[0..n) (the fuzz target, tests/fuzz/fuzz_npy.c, checks it). */
#include "npy.h"
#include "safetensors_internal.h" /* ts__st_utf8_valid, for version 3 headers */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- dtypes */

static const struct {
    const char *descr;
    ts_dtype dtype;
} dtype_table[] = {
    {"<f4", TS_F32}, {"<f2", TS_F16}, {"<f8", TS_F64}, {"<i4", TS_I32}, {"<i8", TS_I64}, {"|u1", TS_U8}, {"|b1", TS_BOOL},
    {"|i1", TS_I8},  {"<i2", TS_I16},
};
#define NDTYPES (sizeof dtype_table / sizeof dtype_table[0])

/* numpy dtypes Tessera has no type for, named for the message */
static const struct {
    const char *descr, *name;
} unsupported_table[] = {
    {"<u2", "u2 (uint16)"},         {"<u4", "u4 (uint32)"},
    {"<u8", "u8 (uint64)"},     {"<c8", "c8 (complex64)"},      {"<c16", "c16 (complex128)"},   {"<f16", "f16 (longdouble)"},
    {"<f12", "f12 (longdouble)"}, {"<M8", "M8 (datetime64)"},   {"<m8", "m8 (timedelta64)"},
};

const char *ts__npy_dtype_descr(ts_dtype d) {
    for (size_t i = 0; i < NDTYPES; i++)
        if (dtype_table[i].dtype == d) return dtype_table[i].descr;
    return NULL;
}

#define SUPPORTED_LIST "<f4 (f32), <f2 (f16), <f8 (f64), <i4 (i32), <i8 (i64), <i2 (i16), |i1 (i8), |u1 (u8), |b1 (bool)"

ts_status ts__npy_descr_dtype(const char *what, const char *descr, ts_dtype *out) {
    for (size_t i = 0; i < NDTYPES; i++)
        if (strcmp(descr, dtype_table[i].descr) == 0) {
            *out = dtype_table[i].dtype;
            return TS_OK;
        }
    if (descr[0] == '>') {
        char le[16];
        snprintf(le, sizeof le, "<%s", descr + 1);
        return ts__error(TS_ERR_UNSUPPORTED, "%s: big-endian data ('%s') is not supported; save it little-endian (a.astype('%s'))", what, descr, le);
    }
    for (size_t i = 0; i < sizeof unsupported_table / sizeof unsupported_table[0]; i++)
        if (strcmp(descr + (descr[0] == '|' || descr[0] == '<' || descr[0] == '='), unsupported_table[i].descr + 1) == 0)
            return ts__error(TS_ERR_UNSUPPORTED, "%s: dtype %s is not supported by this build (it reads " SUPPORTED_LIST ")", what,
                             unsupported_table[i].name);
    if (strchr(descr, 'O'))
        return ts__error(TS_ERR_UNSUPPORTED, "%s: object arrays ('%s') are not supported (they hold pickled Python objects)", what, descr);
    if (strchr(descr, 'V'))
        return ts__error(TS_ERR_UNSUPPORTED, "%s: raw void dtype '%s' is not supported (bf16 has no numpy dtype, so bf16 tensors cannot be read from .npy)",
                         what, descr);
    return ts__error(TS_ERR_UNSUPPORTED, "%s: dtype '%s' is not supported (it reads " SUPPORTED_LIST "; bf16 and the f8 formats have no numpy dtype)", what, descr);
}

void ts__npy_shape_text(int rank, const int64_t *shape, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int d = 0; d < rank && k < n; d++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, rank == 1 ? ",)" : ")");
}

/* ---------------------------------------------------------------- the header's dict literal */

typedef struct cursor {
    const char *what;
    const char *s;
    size_t i, n; /* s[i..n) is left */
} cursor;

static void skip_space(cursor *c) {
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t')) c->i++;
}

static int peek(const cursor *c) { return c->i < c->n ? (unsigned char)c->s[c->i] : -1; }

/* "at header byte 12 ('x')" or "at the end of the header" */
static const char *where(const cursor *c, char *buf, size_t n) {
    int ch = peek(c);
    if (ch < 0) snprintf(buf, n, "at the end of the header");
    else if (ch >= 0x20 && ch < 0x7f) snprintf(buf, n, "at header byte %zu ('%c')", c->i, ch);
    else snprintf(buf, n, "at header byte %zu (byte 0x%02x)", c->i, (unsigned)ch);
    return buf;
}

static ts_status syntax(const cursor *c, const char *expected) {
    char w[64];
    return ts__error(TS_ERR_PARSE, "%s: bad header: expected %s %s", c->what, expected, where(c, w, sizeof w));
}

/* A Python string literal without escapes, quoted with ' or ", at most
 * cap - 1 characters. */
static ts_status parse_string(cursor *c, const char *role, char *buf, size_t cap) {
    int q = peek(c);
    if (q != '\'' && q != '"') return syntax(c, role);
    size_t start = ++c->i;
    while (c->i < c->n && c->s[c->i] != q) {
        unsigned char ch = (unsigned char)c->s[c->i];
        if (ch == '\\' || ch < 0x20) return syntax(c, "a string without escapes or control characters");
        c->i++;
    }
    if (c->i >= c->n) return ts__error(TS_ERR_PARSE, "%s: bad header: a string starting at header byte %zu is not closed", c->what, start - 1);
    size_t len = c->i - start;
    c->i++;
    if (len >= cap)
        return ts__error(TS_ERR_PARSE, "%s: bad header: %s of %zu characters at header byte %zu is longer than any a .npy header holds", c->what, role,
                         len, start - 1);
    memcpy(buf, c->s + start, len);
    buf[len] = 0;
    return TS_OK;
}

static int is_ident(int ch) { return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'); }

static ts_status parse_bool(cursor *c, int *out) {
    static const char *const words[2] = {"False", "True"};
    for (int v = 0; v < 2; v++) {
        size_t l = strlen(words[v]);
        if (c->n - c->i >= l && memcmp(c->s + c->i, words[v], l) == 0 && !is_ident(c->i + l < c->n ? (unsigned char)c->s[c->i + l] : 0)) {
            c->i += l;
            *out = v;
            return TS_OK;
        }
    }
    return syntax(c, "True or False for 'fortran_order'");
}

/* One dim: a Python int literal (decimal, no leading zeros, an optional
 * minus sign), at most INT64_MAX. */
static ts_status parse_dim(cursor *c, int d, int64_t *out) {
    size_t start = c->i;
    int neg = peek(c) == '-';
    if (neg) {
        c->i++;
        skip_space(c);
    }
    int ch = peek(c);
    if (ch < '0' || ch > '9') return syntax(c, "an integer dim in 'shape'");
    if (ch == '0' && c->i + 1 < c->n && c->s[c->i + 1] >= '0' && c->s[c->i + 1] <= '9')
        return syntax(c, "an integer without leading zeros in 'shape'");
    uint64_t v = 0;
    int big = 0;
    while ((ch = peek(c)) >= '0' && ch <= '9') {
        if (v > (UINT64_MAX - 9) / 10) big = 1;
        else v = v * 10 + (uint64_t)(ch - '0');
        c->i++;
    }
    if (is_ident(peek(c))) return syntax(c, "',' or ')' after a dim in 'shape'");
    if (neg && (v != 0 || big))
        return ts__error(TS_ERR_PARSE, "%s: shape dim %d is negative (%.*s)", c->what, d, (int)(c->i - start > 40 ? 40 : c->i - start), c->s + start);
    if (big || v > (uint64_t)INT64_MAX)
        return ts__error(TS_ERR_LIMIT, "%s: shape dim %d (%.*s) is larger than 2^63 - 1", c->what, d, (int)(c->i - start > 40 ? 40 : c->i - start),
                         c->s + start);
    *out = (int64_t)v;
    return TS_OK;
}

/* A tuple of ints: "()", "(5,)", "(3, 4)", "(3, 4,)". */
static ts_status parse_shape(cursor *c, int *rank, int64_t *shape) {
    if (peek(c) != '(') {
        if (peek(c) == '[') return syntax(c, "a tuple for 'shape' (a list is not a tuple)");
        return syntax(c, "a tuple '(' for 'shape'");
    }
    c->i++;
    int r = 0, comma = 0;
    ts_status s;
    for (;;) {
        skip_space(c);
        if (peek(c) == ')') break;
        if (r == TS_MAX_RANK) return ts__error(TS_ERR_RANK, "%s: shape has more than %d dims, the largest rank Tessera supports", c->what, TS_MAX_RANK);
        if ((s = parse_dim(c, r, &shape[r]))) return s;
        r++;
        skip_space(c);
        comma = peek(c) == ',';
        if (comma) c->i++;
        else if (peek(c) != ')') return syntax(c, "',' or ')' in 'shape'");
    }
    if (r == 1 && !comma) return ts__error(TS_ERR_PARSE, "%s: bad header: 'shape' (%lld) is not a tuple (a one-element tuple is written (%lld,))", c->what,
                                           (long long)shape[0], (long long)shape[0]);
    c->i++;
    *rank = r;
    return TS_OK;
}

typedef struct header {
    char descr[64];
    int fortran;
    int rank;
    int64_t shape[TS_MAX_RANK];
} header;

/* The dict: '{' then 'key': value pairs separated by ',' (a trailing one
 * allowed), '}', then only spaces. */
static ts_status parse_dict(cursor *c, header *h) {
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    int seen[3] = {0, 0, 0};
    ts_status s;
    skip_space(c);
    if (peek(c) != '{') return syntax(c, "the dict's '{'");
    c->i++;
    for (;;) {
        skip_space(c);
        if (peek(c) == '}') break;
        char key[64];
        size_t at = c->i;
        if ((s = parse_string(c, "a quoted key", key, sizeof key))) return s;
        int k = 0;
        while (k < 3 && strcmp(key, keys[k]) != 0) k++;
        if (k == 3)
            return ts__error(TS_ERR_PARSE, "%s: bad header: unexpected key '%s' at header byte %zu (a .npy header has exactly 'descr', 'fortran_order' and 'shape')",
                             c->what, key, at);
        if (seen[k]++) return ts__error(TS_ERR_PARSE, "%s: bad header: key '%s' appears twice", c->what, key);
        skip_space(c);
        if (peek(c) != ':') return syntax(c, "':' after a key");
        c->i++;
        skip_space(c);
        if (k == 0) {
            if (peek(c) == '[')
                return ts__error(TS_ERR_UNSUPPORTED, "%s: structured dtypes (a list for 'descr') are not supported", c->what);
            if ((s = parse_string(c, "a quoted dtype string for 'descr'", h->descr, sizeof h->descr))) return s;
        } else if (k == 1) {
            if ((s = parse_bool(c, &h->fortran))) return s;
        } else if ((s = parse_shape(c, &h->rank, h->shape))) return s;
        skip_space(c);
        if (peek(c) == ',') c->i++;
        else if (peek(c) != '}') return syntax(c, "',' or '}' after a value");
    }
    c->i++;
    while (c->i < c->n && c->s[c->i] == ' ') c->i++;
    if (c->i < c->n) return syntax(c, "only space padding after the dict");
    for (int k = 0; k < 3; k++)
        if (!seen[k]) return ts__error(TS_ERR_PARSE, "%s: bad header: the key '%s' is missing", c->what, keys[k]);
    return TS_OK;
}

/* ---------------------------------------------------------------- the reader */

ts_status ts__npy_parse(const char *what, const void *p, size_t n, ts__npy *out) {
    memset(out, 0, sizeof *out);
    const uint8_t *b = p;
    if (!what) what = "(memory)";
    if (n < 6 || memcmp(b, "\x93NUMPY", 6) != 0) {
        if (n < 6 && (n == 0 || memcmp(b, "\x93NUMPY", n) == 0))
            return ts__error(TS_ERR_PARSE, "%s: truncated: %zu bytes, shorter than the magic \\x93NUMPY", what, n);
        return ts__error(TS_ERR_PARSE, "%s: not a .npy file (it does not start with the magic \\x93NUMPY)", what);
    }
    if (n < 8) return ts__error(TS_ERR_PARSE, "%s: truncated: %zu bytes, the version bytes are missing", what, n);
    unsigned major = b[6], minor = b[7];
    if (major < 1 || major > 3 || minor != 0)
        return ts__error(TS_ERR_PARSE, "%s: unsupported .npy format version %u.%u (this reader knows 1.0, 2.0 and 3.0)", what, major, minor);
    size_t lenbytes = major == 1 ? 2 : 4, start = 8 + lenbytes;
    if (n < start) return ts__error(TS_ERR_PARSE, "%s: truncated: %zu bytes, the header length field is cut off", what, n);
    uint64_t hlen = b[8] | (uint64_t)b[9] << 8;
    if (major > 1) hlen |= (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
    if (hlen > n - start)
        return ts__error(TS_ERR_PARSE, "%s: the header length %llu reaches past the end of the file (%zu bytes follow the length field)", what,
                         (unsigned long long)hlen, n - start);
    size_t hl = (size_t)hlen, data_at = start + hl;
    const char *hs = (const char *)b + start;
    if (hl == 0 || hs[hl - 1] != '\n') return ts__error(TS_ERR_PARSE, "%s: bad header: it does not end with '\\n'", what);
    if (data_at % 16 != 0)
        return ts__error(TS_ERR_PARSE, "%s: bad header: the data would start at byte %zu, not a multiple of 16 (numpy pads the header to 64)", what, data_at);
    if (major < 3) {
        for (size_t i = 0; i < hl; i++)
            if ((unsigned char)hs[i] >= 0x80)
                return ts__error(TS_ERR_PARSE, "%s: bad header: non-ASCII byte 0x%02x at header byte %zu (a version %u.0 header is ASCII; only 3.0 allows UTF-8)",
                                 what, (unsigned char)hs[i], i, major);
    } else {
        size_t bad = 0;
        if (!ts__st_utf8_valid((const uint8_t *)hs, hl, &bad))
            return ts__error(TS_ERR_PARSE, "%s: bad header: invalid UTF-8 at header byte %zu (version 3.0)", what, bad);
    }
    header h;
    memset(&h, 0, sizeof h);
    cursor c = {what, hs, 0, hl - 1};
    ts_status s = parse_dict(&c, &h);
    if (s) return s;
    ts_dtype dt;
    if ((s = ts__npy_descr_dtype(what, h.descr, &dt))) return s;
    if (h.fortran)
        return ts__error(TS_ERR_UNSUPPORTED, "%s: fortran_order True (column-major data) is not supported; save C-ordered data (np.ascontiguousarray)",
                         what);

    char shape_text[160];
    ts__npy_shape_text(h.rank, h.shape, shape_text, sizeof shape_text);
    int64_t numel = 1;
    int zero = 0;
    for (int d = 0; d < h.rank; d++) zero |= h.shape[d] == 0;
    for (int d = 0; d < h.rank && !zero; d++) {
        if (numel > INT64_MAX / h.shape[d]) return ts__error(TS_ERR_LIMIT, "%s: shape %s has more elements than fit in 64 bits", what, shape_text);
        numel *= h.shape[d];
    }
    if (zero) numel = 0;
    size_t es = ts_dtype_size(dt);
    if ((uint64_t)numel > (uint64_t)(SIZE_MAX / es) || (uint64_t)numel > (uint64_t)INT64_MAX / es)
        return ts__error(TS_ERR_LIMIT, "%s: shape %s of %s holds more bytes than this machine can address", what, shape_text, ts_dtype_name(dt));
    size_t nbytes = (size_t)numel * es, have = n - data_at;
    if (have != nbytes)
        return ts__error(TS_ERR_PARSE, "%s: shape %s holds %zu bytes of %s data but the file has %zu after its header%s", what, shape_text, nbytes,
                         ts_dtype_name(dt), have, have > nbytes ? " (trailing bytes)" : " (truncated)");
    const uint8_t *data = b + data_at;
    if (dt == TS_BOOL)
        for (size_t i = 0; i < nbytes; i++)
            if (data[i] > 1) return ts__error(TS_ERR_PARSE, "%s: bool element %zu is 0x%02x (numpy writes bools as 0 or 1)", what, i, data[i]);
    out->dtype = dt;
    out->rank = h.rank;
    memcpy(out->shape, h.shape, sizeof h.shape);
    out->numel = numel;
    out->nbytes = nbytes;
    out->data = data;
    out->version = (int)major;
    return TS_OK;
}

ts_status ts__npy_load(const char *path, ts__npy *out) {
    memset(out, 0, sizeof *out);
    char *bytes = NULL;
    size_t n = 0;
    ts_status s = ts__read_file(path, TS__NPY_MAX_FILE, &bytes, &n);
    if (s) return s;
    s = ts__npy_parse(path, bytes, n, out);
    if (s) {
        free(bytes);
        return s;
    }
    out->owned = bytes;
    return TS_OK;
}

void ts__npy_free(ts__npy *a) {
    if (!a) return;
    free(a->owned);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------------- the writer */

/* numpy's _write_array_header: keys sorted, repr() values, room for the
 * first dim to grow to 21 digits, then spaces and '\n' so that the data
 * starts at a multiple of 64. */
ts_status ts__npy_serialize(ts_dtype d, int rank, const int64_t *shape, const void *data, size_t nbytes, void **out, size_t *n) {
    *out = NULL;
    *n = 0;
    const char *descr = ts__npy_dtype_descr(d);
    if (!descr)
        return ts__error(TS_ERR_UNSUPPORTED, "%s has no numpy dtype, so it cannot be written as .npy", ts_dtype_name(d) ? ts_dtype_name(d) : "this dtype");
    if (rank < 0 || rank > TS_MAX_RANK) return ts__error(TS_ERR_RANK, ".npy writer: rank %d is outside 0..%d", rank, TS_MAX_RANK);
    uint64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0) return ts__error(TS_ERR_INVALID_ARGUMENT, ".npy writer: dim %d is negative", i);
        if (shape[i] && numel > UINT64_MAX / (uint64_t)shape[i]) numel = UINT64_MAX;
        else numel *= (uint64_t)shape[i];
    }
    if (numel > SIZE_MAX / ts_dtype_size(d) || numel * ts_dtype_size(d) != nbytes)
        return ts__error(TS_ERR_INVALID_ARGUMENT, ".npy writer: %zu bytes given for %llu elements of %s", nbytes, (unsigned long long)numel,
                         ts_dtype_name(d));
    char shape_text[160], dict[320];
    ts__npy_shape_text(rank, shape, shape_text, sizeof shape_text);
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape_text);
    if (rank > 0) {
        char first[24];
        int digits = snprintf(first, sizeof first, "%lld", (long long)shape[0]);
        for (int i = digits; i < 21; i++) dict[len++] = ' ';
        dict[len] = 0;
    }
    size_t hlen = (size_t)len + 1, prefix = 10;
    size_t pad = 64 - (prefix + hlen) % 64;
    if (hlen + pad > 65535) { /* version 2.0: a 4-byte length (not reached with rank <= 4; kept for the format) */
        prefix = 12;
        pad = 64 - (prefix + hlen) % 64;
    }
    size_t head = prefix + hlen + pad;
    if (nbytes > SIZE_MAX - head) return ts__error(TS_ERR_LIMIT, ".npy writer: %zu bytes of data are too many", nbytes);
    uint8_t *buf = malloc(head + nbytes ? head + nbytes : 1);
    if (!buf) return ts__error(TS_ERR_OUT_OF_MEMORY, ".npy writer: out of memory for %zu bytes", head + nbytes);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = prefix == 10 ? 1 : 2;
    buf[7] = 0;
    size_t field = hlen + pad;
    buf[8] = (uint8_t)field;
    buf[9] = (uint8_t)(field >> 8);
    if (prefix == 12) {
        buf[10] = (uint8_t)(field >> 16);
        buf[11] = (uint8_t)(field >> 24);
    }
    memcpy(buf + prefix, dict, (size_t)len);
    memset(buf + prefix + len, ' ', pad);
    buf[head - 1] = '\n';
    if (nbytes) memcpy(buf + head, data, nbytes);
    *out = buf;
    *n = head + nbytes;
    return TS_OK;
}

ts_status ts__npy_save(const char *path, ts_dtype d, int rank, const int64_t *shape, const void *data, size_t nbytes) {
    void *bytes = NULL;
    size_t n = 0;
    ts_status s = ts__npy_serialize(d, rank, shape, data, nbytes, &bytes, &n);
    if (s) {
        ts__error_prefix("%s", path);
        return s;
    }
    s = ts__write_file_atomic(path, bytes, n);
    free(bytes);
    return s;
}
