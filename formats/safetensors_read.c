/* safetensors_read.c: the strict Safetensors reader.
 *
 * Sections: dtypes; shared checks (UTF-8, nesting depth, sizes); header
 * validation (prefix, text, JSON, entries, coverage); opening and queries.
 *
 * Order of validation, so that nothing past the header is read before the
 * header is known good and no allocation depends on an unchecked size:
 *   1. prefix: file >= 8 bytes, header length <= 100 MB and inside the file
 *   2. text: UTF-8, first byte '{', nesting depth (before jansson recurses)
 *   3. JSON: jansson with duplicate keys rejected; after the object only
 *      JSON whitespace
 *   4. each entry in header order: object, dtype, shape, data_offsets,
 *      begin <= end, sizes without overflow, whole bytes, size match, inside
 *      the data buffer
 *   5. coverage: sorted by offsets, each tensor starts where the previous
 *      ended (overlap / hole) and the last ends at the end of the file. */
#include "safetensors_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- dtypes */

static const struct {
    const char *name;
    int bits;
} st_dtypes[TS_ST_DTYPE_COUNT] = {
    [TS_ST_BOOL] = {"BOOL", 8},         [TS_ST_F4] = {"F4", 4},
    [TS_ST_F6_E2M3] = {"F6_E2M3", 6},   [TS_ST_F6_E3M2] = {"F6_E3M2", 6},
    [TS_ST_U8] = {"U8", 8},             [TS_ST_I8] = {"I8", 8},
    [TS_ST_F8_E5M2] = {"F8_E5M2", 8},   [TS_ST_F8_E4M3] = {"F8_E4M3", 8},
    [TS_ST_F8_E8M0] = {"F8_E8M0", 8},   [TS_ST_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [TS_ST_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [TS_ST_I16] = {"I16", 16},          [TS_ST_U16] = {"U16", 16},
    [TS_ST_F16] = {"F16", 16},          [TS_ST_BF16] = {"BF16", 16},
    [TS_ST_I32] = {"I32", 32},          [TS_ST_U32] = {"U32", 32},
    [TS_ST_F32] = {"F32", 32},          [TS_ST_C64] = {"C64", 64},
    [TS_ST_F64] = {"F64", 64},          [TS_ST_I64] = {"I64", 64},
    [TS_ST_U64] = {"U64", 64},
};

const char *ts_st_dtype_name(ts_st_dtype d) { return (unsigned)d < TS_ST_DTYPE_COUNT ? st_dtypes[d].name : NULL; }
int ts_st_dtype_bits(ts_st_dtype d) { return (unsigned)d < TS_ST_DTYPE_COUNT ? st_dtypes[d].bits : 0; }

ts_status ts_st_dtype_parse(const char *name, ts_st_dtype *out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_dtype_parse: out is NULL");
    for (int i = 0; i < TS_ST_DTYPE_COUNT; i++)
        if (name && strcmp(name, st_dtypes[i].name) == 0) {
            *out = (ts_st_dtype)i;
            return TS_OK;
        }
    return ts__error(TS_ERR_ST_UNKNOWN_DTYPE, "unknown safetensors dtype '%.*s'", TS__ST_QUOTE, name ? name : "(null)");
}

static const struct {
    ts_st_dtype st;
    ts_dtype ts;
} dtype_map[] = {
    {TS_ST_F32, TS_F32}, {TS_ST_F16, TS_F16}, {TS_ST_BF16, TS_BF16}, {TS_ST_F64, TS_F64},
    {TS_ST_I32, TS_I32}, {TS_ST_I64, TS_I64}, {TS_ST_U8, TS_U8},     {TS_ST_BOOL, TS_BOOL},
};

ts_status ts_st_dtype_to_ts(ts_st_dtype d, ts_dtype *out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_dtype_to_ts: out is NULL");
    for (size_t i = 0; i < sizeof dtype_map / sizeof dtype_map[0]; i++)
        if (dtype_map[i].st == d) {
            *out = dtype_map[i].ts;
            return TS_OK;
        }
    if ((unsigned)d >= TS_ST_DTYPE_COUNT) return ts__error(TS_ERR_INVALID_ARGUMENT, "invalid safetensors dtype %d", (int)d);
    return ts__error(TS_ERR_UNSUPPORTED, "safetensors dtype %s has no runtime dtype (supported: F32 F16 BF16 F64 I32 I64 U8 BOOL)",
                     st_dtypes[d].name);
}

ts_status ts_st_dtype_from_ts(ts_dtype d, ts_st_dtype *out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_dtype_from_ts: out is NULL");
    for (size_t i = 0; i < sizeof dtype_map / sizeof dtype_map[0]; i++)
        if (dtype_map[i].ts == d) {
            *out = dtype_map[i].st;
            return TS_OK;
        }
    return ts__error(TS_ERR_INVALID_ARGUMENT, "invalid runtime dtype %d", (int)d);
}

/* ---------------------------------------------------------------- shared checks */

int ts__st_utf8_valid(const uint8_t *s, size_t n, size_t *bad) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1Fu; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0Fu; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07u; min = 0x10000; }
        else goto invalid;
        if (n - i < len) goto invalid;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) goto invalid;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) goto invalid;
        i += len;
    }
    return 1;
invalid:
    if (bad) *bad = i;
    return 0;
}

int ts__st_json_depth(const char *s, size_t n, int limit) {
    int depth = 0, max = 0, in_string = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\') i++; /* skip the escaped character (a quote or backslash) */
            else if (c == '"') in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max) max = depth;
            if (max > limit) return limit + 1;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return max;
}

ts_status ts__st_tensor_bytes(const char *what, ts_st_dtype dt, int rank, const uint64_t *shape, uint64_t *numel, uint64_t *nbytes) {
    uint64_t n = 1, bits;
    for (int d = 0; d < rank; d++)
        if (__builtin_mul_overflow(n, shape[d], &n))
            return ts__error(TS_ERR_ST_OVERFLOW, "%s: the number of elements overflows 64 bits (dim %d is %llu)", what, d,
                             (unsigned long long)shape[d]);
    if (__builtin_mul_overflow(n, (uint64_t)ts_st_dtype_bits(dt), &bits))
        return ts__error(TS_ERR_ST_OVERFLOW, "%s: %llu elements of %s overflow 64 bits", what, (unsigned long long)n, ts_st_dtype_name(dt));
    if (bits % 8)
        return ts__error(TS_ERR_ST_SUBBYTE, "%s: %llu elements of %s are %llu bits, not a whole number of bytes", what, (unsigned long long)n,
                         ts_st_dtype_name(dt), (unsigned long long)bits);
    if (bits / 8 > (uint64_t)SIZE_MAX)
        return ts__error(TS_ERR_ST_OVERFLOW, "%s: %llu bytes do not fit in memory", what, (unsigned long long)(bits / 8));
    *numel = n;
    *nbytes = bits / 8;
    return TS_OK;
}

/* ---------------------------------------------------------------- the file */

typedef struct st_entry {
    char *name;
    ts_st_dtype dtype;
    int rank;
    uint64_t *shape;
    uint64_t numel, begin, end;
} st_entry;

struct ts_st_file {
    char *path;
    const uint8_t *base;
    size_t size;
    int mapped;
    uint64_t header_len, data_len;
    const uint8_t *data;
    st_entry *t;      /* by data offset */
    size_t nt;
    const st_entry **by_name; /* sorted by name */
    char **meta_key, **meta_val; /* sorted by key */
    size_t nmeta;
};

#define QUOTE(s) TS__ST_QUOTE, (s)

static void free_file(ts_st_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->nt; i++) {
        free(f->t[i].name);
        free(f->t[i].shape);
    }
    free(f->t);
    free(f->by_name);
    for (size_t i = 0; i < f->nmeta; i++) {
        free(f->meta_key[i]);
        free(f->meta_val[i]);
    }
    free(f->meta_key);
    free(f->meta_val);
    if (f->mapped && f->base) munmap((void *)f->base, f->size);
    free(f->path);
    free(f);
}

void ts_st_close(ts_st_file *f) { free_file(f); }

/* A non-negative JSON integer (jansson integers are signed 64-bit). */
static int json_uint(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v)) return 0;
    json_int_t i = json_integer_value(v);
    if (i < 0) return 0;
    *out = (uint64_t)i;
    return 1;
}

static ts_status parse_entry(ts_st_file *f, const char *name, json_t *v, st_entry *e) {
    const char *p = f->path;
    if (!json_is_object(v))
        return ts__error(TS_ERR_ST_ENTRY_NOT_OBJECT, "'%s': tensor '%.*s': the entry is not an object", p, QUOTE(name));
    /* Unknown fields are ignored, as the reference does (serde without deny_unknown_fields). */
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"), *of = json_object_get(v, "data_offsets");
    if (!dt) return ts__error(TS_ERR_ST_MISSING_DTYPE, "'%s': tensor '%.*s' has no 'dtype'", p, QUOTE(name));
    if (!sh) return ts__error(TS_ERR_ST_MISSING_SHAPE, "'%s': tensor '%.*s' has no 'shape'", p, QUOTE(name));
    if (!of) return ts__error(TS_ERR_ST_MISSING_OFFSETS, "'%s': tensor '%.*s' has no 'data_offsets'", p, QUOTE(name));
    if (!json_is_string(dt)) return ts__error(TS_ERR_ST_UNKNOWN_DTYPE, "'%s': tensor '%.*s': 'dtype' is not a string", p, QUOTE(name));
    const char *dts = json_string_value(dt);
    int found = 0;
    if (strlen(dts) == json_string_length(dt))
        for (int i = 0; i < TS_ST_DTYPE_COUNT && !found; i++)
            if (strcmp(dts, st_dtypes[i].name) == 0) {
                e->dtype = (ts_st_dtype)i;
                found = 1;
            }
    if (!found) return ts__error(TS_ERR_ST_UNKNOWN_DTYPE, "'%s': tensor '%.*s': unknown dtype '%.*s'", p, QUOTE(name), 64, dts);
    if (!json_is_array(sh)) return ts__error(TS_ERR_ST_BAD_SHAPE, "'%s': tensor '%.*s': 'shape' is not a list", p, QUOTE(name));
    size_t rank = json_array_size(sh);
    if (rank > (size_t)INT32_MAX) return ts__error(TS_ERR_ST_BAD_SHAPE, "'%s': tensor '%.*s': shape too long", p, QUOTE(name));
    e->rank = (int)rank;
    if (rank) {
        e->shape = ts__calloc(rank, sizeof *e->shape); /* bounded by the header's length */
        if (!e->shape) return TS_ERR_OUT_OF_MEMORY;
    }
    for (size_t d = 0; d < rank; d++)
        if (!json_uint(json_array_get(sh, d), &e->shape[d]))
            return ts__error(TS_ERR_ST_BAD_SHAPE, "'%s': tensor '%.*s': dim %zu is not a non-negative integer", p, QUOTE(name), d);
    if (!json_is_array(of) || json_array_size(of) != 2 || !json_uint(json_array_get(of, 0), &e->begin) ||
        !json_uint(json_array_get(of, 1), &e->end))
        return ts__error(TS_ERR_ST_BAD_OFFSETS, "'%s': tensor '%.*s': 'data_offsets' is not [begin, end] with non-negative integers", p,
                         QUOTE(name));
    if (e->begin > e->end)
        return ts__error(TS_ERR_ST_OFFSETS_REVERSED, "'%s': tensor '%.*s': data_offsets begin %llu is after end %llu", p, QUOTE(name),
                         (unsigned long long)e->begin, (unsigned long long)e->end);
    char what[400];
    snprintf(what, sizeof what, "'%s': tensor '%.*s'", p, QUOTE(name));
    uint64_t nbytes;
    ts_status s = ts__st_tensor_bytes(what, e->dtype, e->rank, e->shape, &e->numel, &nbytes);
    if (s) return s;
    if (e->end - e->begin != nbytes)
        return ts__error(TS_ERR_ST_SIZE_MISMATCH, "%s: data_offsets [%llu, %llu] hold %llu bytes but %llu elements of %s need %llu", what,
                         (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)(e->end - e->begin),
                         (unsigned long long)e->numel, ts_st_dtype_name(e->dtype), (unsigned long long)nbytes);
    if (e->end > f->data_len)
        return ts__error(TS_ERR_ST_OFFSETS_OUTSIDE, "%s: data_offsets end %llu is past the data buffer's %llu bytes", what,
                         (unsigned long long)e->end, (unsigned long long)f->data_len);
    return TS_OK;
}

static ts_status parse_metadata(ts_st_file *f, json_t *m) {
    if (json_is_null(m)) return TS_OK; /* the reference reads null as "no metadata" */
    if (!json_is_object(m)) return ts__error(TS_ERR_ST_METADATA_NOT_OBJECT, "'%s': __metadata__ is not an object", f->path);
    size_t n = json_object_size(m);
    f->meta_key = ts__calloc(n ? n : 1, sizeof *f->meta_key);
    f->meta_val = ts__calloc(n ? n : 1, sizeof *f->meta_val);
    if (!f->meta_key || !f->meta_val) return TS_ERR_OUT_OF_MEMORY;
    for (void *it = json_object_iter(m); it; it = json_object_iter_next(m, it)) {
        const char *k = json_object_iter_key(it);
        json_t *v = json_object_iter_value(it);
        if (strlen(k) != json_object_iter_key_len(it))
            return ts__error(TS_ERR_ST_NUL_IN_STRING, "'%s': __metadata__ key '%.*s' contains a NUL character", f->path, QUOTE(k));
        if (!json_is_string(v))
            return ts__error(TS_ERR_ST_METADATA_NOT_STRING, "'%s': __metadata__ value of '%.*s' is not a string", f->path, QUOTE(k));
        if (strlen(json_string_value(v)) != json_string_length(v))
            return ts__error(TS_ERR_ST_NUL_IN_STRING, "'%s': __metadata__ value of '%.*s' contains a NUL character", f->path, QUOTE(k));
        f->meta_key[f->nmeta] = ts__strdup(k);
        f->meta_val[f->nmeta] = ts__strdup(json_string_value(v));
        f->nmeta++;
        if (!f->meta_key[f->nmeta - 1] || !f->meta_val[f->nmeta - 1]) return TS_ERR_OUT_OF_MEMORY;
    }
    /* insertion sort by key: metadata is small */
    for (size_t i = 1; i < f->nmeta; i++)
        for (size_t j = i; j > 0 && strcmp(f->meta_key[j - 1], f->meta_key[j]) > 0; j--) {
            char *k = f->meta_key[j], *v = f->meta_val[j];
            f->meta_key[j] = f->meta_key[j - 1];
            f->meta_val[j] = f->meta_val[j - 1];
            f->meta_key[j - 1] = k;
            f->meta_val[j - 1] = v;
        }
    return TS_OK;
}

static int cmp_offsets(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp((*(const st_entry *const *)a)->name, (*(const st_entry *const *)b)->name);
}

static int is_json_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static ts_status parse_header(ts_st_file *f) {
    const char *p = f->path;
    if (f->size < 8)
        return ts__error(TS_ERR_ST_HEADER_TOO_SMALL, "'%s': %zu bytes, too small for the 8-byte header length", p, f->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->base[i];
    if (n > TS__ST_MAX_HEADER)
        return ts__error(TS_ERR_ST_HEADER_TOO_LARGE, "'%s': header length %llu is above the limit of %llu bytes", p, (unsigned long long)n,
                         (unsigned long long)TS__ST_MAX_HEADER);
    if (n > f->size - 8)
        return ts__error(TS_ERR_ST_HEADER_LENGTH, "'%s': header length %llu reaches past the end of the file (%zu bytes)", p,
                         (unsigned long long)n, f->size);
    f->header_len = n;
    f->data = f->base + 8 + n;
    f->data_len = f->size - 8 - n;
    const uint8_t *h = f->base + 8;
    size_t bad = 0;
    if (!ts__st_utf8_valid(h, (size_t)n, &bad))
        return ts__error(TS_ERR_ST_UTF8, "'%s': the header is not valid UTF-8 (byte %zu of the header)", p, bad);
    if (n == 0 || h[0] != '{')
        return ts__error(TS_ERR_ST_HEADER_START, "'%s': the header does not start with '{'%s", p, n == 0 ? " (it is empty)" : "");
    if (ts__st_json_depth((const char *)h, (size_t)n, TS__ST_MAX_DEPTH) > TS__ST_MAX_DEPTH)
        return ts__error(TS_ERR_ST_TOO_DEEP, "'%s': the header nests JSON deeper than %d levels", p, TS__ST_MAX_DEPTH);

    json_error_t err;
    json_t *root = json_loadb((const char *)h, (size_t)n, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL, &err);
    if (!root) {
        enum json_error_code code = json_error_code(&err);
        ts_status s = code == json_error_duplicate_key ? TS_ERR_ST_DUPLICATE_KEY
                      : code == json_error_numeric_overflow ? TS_ERR_ST_OVERFLOW
                      : code == json_error_null_byte_in_key ? TS_ERR_ST_NUL_IN_STRING
                                                             : TS_ERR_ST_JSON;
        return ts__error(s, "'%s': header JSON, column %d: %s", p, err.position, err.text);
    }
    ts_status s = TS_OK;
    for (size_t i = (size_t)err.position; i < n; i++)
        if (!is_json_space(h[i])) {
            s = ts__error(TS_ERR_ST_TRAILING, "'%s': byte %zu of the header follows the JSON object and is not a space", p, i);
            goto done;
        }
    if (!json_is_object(root)) { /* cannot happen after the '{' check; kept for safety */
        s = ts__error(TS_ERR_ST_HEADER_START, "'%s': the header is not a JSON object", p);
        goto done;
    }
    size_t total = json_object_size(root);
    f->t = ts__calloc(total ? total : 1, sizeof *f->t);
    if (!f->t) {
        s = TS_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (void *it = json_object_iter(root); it; it = json_object_iter_next(root, it)) {
        const char *k = json_object_iter_key(it);
        json_t *v = json_object_iter_value(it);
        if (strlen(k) != json_object_iter_key_len(it)) {
            s = ts__error(TS_ERR_ST_NUL_IN_STRING, "'%s': tensor name '%.*s...' contains a NUL character", p, QUOTE(k));
            goto done;
        }
        if (strcmp(k, "__metadata__") == 0) {
            if ((s = parse_metadata(f, v))) goto done;
            continue;
        }
        st_entry *e = &f->t[f->nt++];
        if (!(e->name = ts__strdup(k))) {
            s = TS_ERR_OUT_OF_MEMORY;
            goto done;
        }
        if ((s = parse_entry(f, k, v, e))) goto done;
    }
    qsort(f->t, f->nt, sizeof *f->t, cmp_offsets);
    uint64_t at = 0;
    for (size_t i = 0; i < f->nt; i++) {
        const st_entry *e = &f->t[i];
        if (e->begin < at)
            s = ts__error(TS_ERR_ST_OVERLAP, "'%s': tensor '%.*s' (bytes %llu..%llu) overlaps tensor '%.*s' (which ends at %llu)", p,
                          QUOTE(e->name), (unsigned long long)e->begin, (unsigned long long)e->end, QUOTE(f->t[i - 1].name),
                          (unsigned long long)at);
        else if (e->begin > at)
            s = ts__error(TS_ERR_ST_HOLE, "'%s': data bytes %llu..%llu belong to no tensor (before tensor '%.*s')", p, (unsigned long long)at,
                          (unsigned long long)e->begin, QUOTE(e->name));
        if (s) goto done;
        at = e->end;
    }
    if (at != f->data_len) {
        s = ts__error(TS_ERR_ST_INCOMPLETE, "'%s': the tensors end at data byte %llu but the data buffer has %llu bytes", p,
                      (unsigned long long)at, (unsigned long long)f->data_len);
        goto done;
    }
    f->by_name = ts__calloc(f->nt ? f->nt : 1, sizeof *f->by_name);
    if (!f->by_name) {
        s = TS_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (size_t i = 0; i < f->nt; i++) f->by_name[i] = &f->t[i];
    qsort(f->by_name, f->nt, sizeof *f->by_name, cmp_names);
done:
    json_decref(root);
    return s;
}

static ts_status open_common(ts_st_file *f, ts_st_file **out) {
    ts_status s = parse_header(f);
    if (s) {
        free_file(f);
        return s;
    }
    *out = f;
    return TS_OK;
}

ts_status ts_st_open(const char *path, ts_st_file **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_open: out is NULL");
    *out = NULL;
    if (!path) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_open: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ts__error(errno == ENOENT ? TS_ERR_NOT_FOUND : TS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ts__error(TS_ERR_IO, "'%s' is not a regular file", path);
    }
    ts_st_file *f = ts__calloc(1, sizeof *f);
    if (!f || !(f->path = ts__strdup(path))) {
        close(fd);
        free(f);
        return TS_ERR_OUT_OF_MEMORY;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        free_file(f);
        return ts__error(TS_ERR_LIMIT, "'%s' is too large to map", path);
    }
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            free_file(f);
            return ts__error(TS_ERR_IO, "cannot map '%s': %s", path, strerror(e));
        }
        f->base = m;
        f->mapped = 1;
    }
    close(fd);
    return open_common(f, out);
}

ts_status ts_st_open_memory(const void *buf, size_t n, ts_st_file **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_open_memory: out is NULL");
    *out = NULL;
    if (!buf && n) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_open_memory: buffer is NULL");
    ts_st_file *f = ts__calloc(1, sizeof *f);
    if (!f || !(f->path = ts__strdup("<memory>"))) {
        free(f);
        return TS_ERR_OUT_OF_MEMORY;
    }
    f->base = buf;
    f->size = n;
    return open_common(f, out);
}

/* ---------------------------------------------------------------- queries */

const char *ts_st_path(const ts_st_file *f) { return f ? f->path : NULL; }
uint64_t ts_st_header_size(const ts_st_file *f) { return f ? f->header_len : 0; }
uint64_t ts_st_data_size(const ts_st_file *f) { return f ? f->data_len : 0; }
size_t ts_st_count(const ts_st_file *f) { return f ? f->nt : 0; }

static void fill_info(const ts_st_file *f, const st_entry *e, ts_st_tensor_info *out) {
    out->name = e->name;
    out->dtype = e->dtype;
    out->rank = e->rank;
    out->shape = e->shape;
    out->numel = e->numel;
    out->begin = e->begin;
    out->end = e->end;
    out->nbytes = (size_t)(e->end - e->begin);
    out->data = f->data + e->begin;
    out->file = f;
}

ts_status ts_st_tensor_at(const ts_st_file *f, size_t i, ts_st_tensor_info *out) {
    if (!f || !out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_tensor_at: NULL argument");
    if (i >= f->nt) return ts__error(TS_ERR_INDEX, "ts_st_tensor_at: index %zu, '%s' has %zu tensors", i, f->path, f->nt);
    fill_info(f, &f->t[i], out);
    return TS_OK;
}

ts_status ts_st_find(const ts_st_file *f, const char *name, ts_st_tensor_info *out) {
    if (!f || !name || !out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_find: NULL argument");
    size_t lo = 0, hi = f->nt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->by_name[mid]->name, name);
        if (c == 0) {
            fill_info(f, f->by_name[mid], out);
            return TS_OK;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return ts__error(TS_ERR_ST_TENSOR_NOT_FOUND, "'%s' has no tensor '%.*s'", f->path, QUOTE(name));
}

size_t ts_st_metadata_count(const ts_st_file *f) { return f ? f->nmeta : 0; }

ts_status ts_st_metadata_at(const ts_st_file *f, size_t i, const char **key, const char **value) {
    if (!f) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_metadata_at: file is NULL");
    if (i >= f->nmeta) return ts__error(TS_ERR_INDEX, "ts_st_metadata_at: index %zu, '%s' has %zu metadata entries", i, f->path, f->nmeta);
    if (key) *key = f->meta_key[i];
    if (value) *value = f->meta_val[i];
    return TS_OK;
}

const char *ts_st_metadata_get(const ts_st_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_key[i], key) == 0) return f->meta_val[i];
    return NULL;
}
