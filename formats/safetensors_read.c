/* safetensors_read.c: the strict Safetensors reader.
 *
 * Sections: dtypes; shared checks (UTF-8, nesting depth, sizes); the file
 * and its name table; the one-pass header parser (lexer, values, entries,
 * __metadata__, the top level); header validation; opening and queries.
 *
 * Order of validation, so that nothing past the header is read before the
 * header is known good and no allocation depends on an unchecked size:
 *   1. prefix: file >= 8 bytes, header length <= 100 MB and inside the file
 *   2. text: UTF-8, first byte '{'
 *   3. one pass over the JSON into the tensor table: JSON errors (syntax,
 *      duplicate keys, NUL in keys, numbers beyond 64 bits) stop it; the
 *      first broken entry rule in header order (object, dtype, shape,
 *      data_offsets, begin <= end, sizes without overflow, whole bytes,
 *      size match, inside the data buffer) is kept and reported after
 *   4. after the object only JSON whitespace; on any failure so far, a
 *      nesting deeper than 64 anywhere is reported instead (as before)
 *   5. coverage: sorted by offsets, each tensor starts where the previous
 *      ended (overlap / hole) and the last ends at the end of the file. */
#include "safetensors_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
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
    {TS_ST_I8, TS_I8},   {TS_ST_I16, TS_I16}, {TS_ST_F8_E4M3, TS_F8_E4M3}, {TS_ST_F8_E5M2, TS_F8_E5M2},
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
            /* ASCII runs, eight bytes at a time */
            for (uint64_t w; n - i >= 8; i += 8) {
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ull) break;
            }
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
    const char *name;      /* in the arena */
    size_t name_len;
    uint64_t hash;         /* of the name, for the name table */
    ts_st_dtype dtype;
    int rank;
    const uint64_t *shape; /* into dims (set once parsing is done) */
    size_t shape_at;       /* index into dims while parsing (dims may move) */
    uint64_t numel, begin, end;
} st_entry;

typedef struct st_meta {
    const char *key, *value; /* in the arena */
} st_meta;

struct ts_st_file {
    char *path;
    const uint8_t *base;
    size_t size;
    int mapped;
    int fd; /* kept open for zero-copy uploads (mappings of tensor ranges); -1 for buffers */
    uint64_t header_len, data_len;
    const uint8_t *data;
    /* Every decoded name, key and value, NUL-terminated, one after the other.
     * A decoded string is never longer than its quoted form, so the header's
     * length plus one bounds it: one allocation per file, no per-name malloc. */
    char *arena;
    st_entry *t; /* by data offset */
    size_t nt, capt;
    uint64_t *dims; /* every shape, one after the other */
    size_t ndims, capdims;
    uint32_t *slots; /* name table: open addressing, entry index + 1, 0 empty */
    size_t nslots;   /* a power of two, at least twice nt */
    st_meta *meta;   /* sorted by key */
    size_t nmeta, capmeta;
};

#define QUOTE(s) TS__ST_QUOTE, (s)

static int is_json_space_c(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void free_file(ts_st_file *f) {
    if (!f) return;
    free(f->arena);
    free(f->t);
    free(f->dims);
    free(f->slots);
    free(f->meta);
    if (f->mapped && f->base) munmap((void *)f->base, f->size);
    if (f->fd >= 0) close(f->fd);
    free(f->path);
    free(f);
}

void ts_st_close(ts_st_file *f) { free_file(f); }

int ts__st_file_fd(const ts_st_file *f, const void *p, uint64_t *file_offset) {
    if (!f || f->fd < 0 || !f->mapped || (const uint8_t *)p < f->base || (const uint8_t *)p > f->base + f->size) return -1;
    *file_offset = (uint64_t)((const uint8_t *)p - f->base);
    return f->fd;
}

/* Word-at-a-time multiply-xorshift hash. The seed is per process and not
 * predictable from the file, so a hostile header cannot aim its names at
 * one bucket chain. */
static uint64_t hash_seed;

static uint64_t name_hash(const char *s, size_t n) {
    uint64_t h = hash_seed ^ (n * 0x9E3779B97F4A7C15ull), w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

static void seed_once(void) {
    uint64_t v = (uint64_t)(uintptr_t)&v ^ ((uint64_t)(ts__now_ms() * 1e6) * 0x9E3779B97F4A7C15ull) ^ (uint64_t)getpid();
    hash_seed = v | 1;
}

static void seed_hash(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, seed_once);
}

/* Index of the tensor named s[0..n) with hash h, or -1. */
static ptrdiff_t name_lookup(const ts_st_file *f, const char *s, size_t n, uint64_t h) {
    if (!f->nslots) return -1;
    size_t mask = f->nslots - 1;
    for (size_t k = (size_t)h & mask;; k = (k + 1) & mask) {
        uint32_t v = f->slots[k];
        if (!v) return -1;
        const st_entry *e = &f->t[v - 1];
        if (e->hash == h && e->name_len == n && memcmp(e->name, s, n) == 0) return (ptrdiff_t)(v - 1);
    }
}

static void name_place(ts_st_file *f, size_t i) {
    size_t mask = f->nslots - 1;
    size_t k = (size_t)f->t[i].hash & mask;
    while (f->slots[k]) k = (k + 1) & mask;
    f->slots[k] = (uint32_t)(i + 1);
}

/* (Re)builds the name table for nt + 1 entries when it is too small or `force`. */
static ts_status name_table_fit(ts_st_file *f, int force) {
    if (!force && f->nslots >= 2 * (f->nt + 1)) return TS_OK;
    size_t ns = f->nslots ? f->nslots : 64;
    while (ns < 2 * (f->nt + 1)) ns *= 2;
    uint32_t *s = ts__calloc(ns, sizeof *s);
    if (!s) return TS_ERR_OUT_OF_MEMORY;
    free(f->slots);
    f->slots = s;
    f->nslots = ns;
    for (size_t i = 0; i < f->nt; i++) name_place(f, i);
    return TS_OK;
}

/* ---------------------------------------------------------------- the header parser
 *
 * One pass over the header's JSON straight into the tensor table, without a
 * tree. It keeps the order in which the jansson-based reader reported
 * errors: a JSON error anywhere (syntax, duplicate key, NUL in a key, an
 * integer beyond 64 bits) wins over a broken rule of an entry, so the first
 * broken rule is recorded (p->sem, with its message) and parsing goes on for
 * JSON errors only; trailing bytes come between the two. Nesting is bounded
 * by the depth scan that runs first (and checked again here), so the
 * recursion is at most TS__ST_MAX_DEPTH deep. */

/* Keys of objects other than the top level (entries' unknown fields,
 * __metadata__, nested values), for duplicate detection: (object, key). */
typedef struct key_slot {
    const char *k; /* in the arena; NULL when empty */
    size_t len;
    uint32_t obj;
} key_slot;

typedef struct st_parser {
    ts_st_file *f;
    const char *path;
    const uint8_t *h;
    size_t n, i;
    size_t arena_at;
    ts_status sem;     /* first broken entry / metadata rule (message already set) */
    uint32_t next_obj; /* object numbering for key_slot.obj */
    key_slot *keys;
    size_t nkeys, capkeys;
    int has_meta;
} st_parser;

static ts_status json_error(st_parser *p, ts_status s, const char *what) {
    if (p->i >= p->n) return ts__error(s, "'%s': header JSON, at the end of the header (byte %zu): %s", p->path, p->n, what);
    return ts__error(s, "'%s': header JSON, byte %zu ('%c'): %s", p->path, p->i, p->h[p->i] >= 0x20 && p->h[p->i] < 0x7f ? p->h[p->i] : '?',
                     what);
}

#define SEM(...)                                                                                                                           \
    do {                                                                                                                                   \
        if (!p->sem) p->sem = ts__error(__VA_ARGS__);                                                                                      \
    } while (0)

static void skip_ws(st_parser *p) {
    while (p->i < p->n && is_json_space_c(p->h[p->i])) p->i++;
}

static int peek(const st_parser *p) { return p->i < p->n ? p->h[p->i] : -1; }

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(st_parser *p, size_t at, uint32_t *out) {
    if (p->n - at < 4) return 0;
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        int d = hexval(p->h[at + k]);
        if (d < 0) return 0;
        v = (v << 4) | (uint32_t)d;
    }
    *out = v;
    return 1;
}

/* Decodes the string whose opening quote is at p->i into the arena at
 * arena_at, NUL-terminated, without committing it (the caller adds len + 1
 * to arena_at to keep it). *nul: it holds an escaped NUL. */
static ts_status lex_string(st_parser *p, char **out, size_t *len, int *nul) {
    char *dst = p->f->arena + p->arena_at, *d = dst;
    const uint8_t *h = p->h;
    size_t i = p->i + 1, n = p->n;
    *nul = 0;
    for (;;) {
        size_t run = i;
        while (i < n && h[i] != '"' && h[i] != '\\' && h[i] >= 0x20) i++;
        memcpy(d, h + run, i - run);
        d += i - run;
        if (i >= n) {
            p->i = i;
            return json_error(p, TS_ERR_ST_JSON, "unterminated string");
        }
        if (h[i] == '"') break;
        if (h[i] < 0x20) {
            p->i = i;
            return json_error(p, TS_ERR_ST_JSON, "control character in a string");
        }
        /* an escape */
        if (i + 1 >= n) {
            p->i = i + 1;
            return json_error(p, TS_ERR_ST_JSON, "unterminated string");
        }
        uint8_t c = h[i + 1];
        i += 2;
        switch (c) {
        case '"': *d++ = '"'; break;
        case '\\': *d++ = '\\'; break;
        case '/': *d++ = '/'; break;
        case 'b': *d++ = '\b'; break;
        case 'f': *d++ = '\f'; break;
        case 'n': *d++ = '\n'; break;
        case 'r': *d++ = '\r'; break;
        case 't': *d++ = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (!hex4(p, i, &cp)) {
                p->i = i - 2;
                return json_error(p, TS_ERR_ST_JSON, "invalid \\u escape");
            }
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (n - i < 6 || h[i] != '\\' || h[i + 1] != 'u' || !hex4(p, i + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    p->i = i - 6;
                    return json_error(p, TS_ERR_ST_JSON, "a high surrogate escape without its low surrogate");
                }
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                p->i = i - 6;
                return json_error(p, TS_ERR_ST_JSON, "a lone low surrogate escape");
            }
            if (cp == 0) *nul = 1;
            if (cp < 0x80) *d++ = (char)cp;
            else if (cp < 0x800) {
                *d++ = (char)(0xC0 | (cp >> 6));
                *d++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *d++ = (char)(0xE0 | (cp >> 12));
                *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *d++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *d++ = (char)(0xF0 | (cp >> 18));
                *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *d++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            p->i = i - 2;
            return json_error(p, TS_ERR_ST_JSON, "invalid escape");
        }
    }
    *d = 0;
    p->i = i + 1;
    *out = dst;
    *len = (size_t)(d - dst);
    return TS_OK;
}

/* A number. *is_int: no fraction or exponent; then *mag and *neg give it
 * (integers beyond the signed 64-bit range are TS_ERR_ST_OVERFLOW, as
 * jansson's were; so are reals beyond a double's range). */
static ts_status lex_number(st_parser *p, int *is_int, uint64_t *mag, int *neg) {
    const uint8_t *h = p->h;
    size_t i = p->i, n = p->n, start = p->i;
    int over = 0;
    uint64_t v = 0;
    *neg = 0;
    if (h[i] == '-') {
        *neg = 1;
        i++;
    }
    if (i < n && h[i] == '0') {
        i++;
        if (i < n && h[i] >= '0' && h[i] <= '9') {
            p->i = i;
            return json_error(p, TS_ERR_ST_JSON, "a number with a leading zero");
        }
    } else if (i < n && h[i] >= '1' && h[i] <= '9') {
        while (i < n && h[i] >= '0' && h[i] <= '9') {
            if (__builtin_mul_overflow(v, 10u, &v) || __builtin_add_overflow(v, (uint64_t)(h[i] - '0'), &v)) over = 1;
            i++;
        }
    } else {
        p->i = i;
        return json_error(p, TS_ERR_ST_JSON, "invalid number");
    }
    int real = 0;
    if (i < n && h[i] == '.') {
        real = 1;
        i++;
        if (i >= n || h[i] < '0' || h[i] > '9') {
            p->i = i;
            return json_error(p, TS_ERR_ST_JSON, "invalid number (no digit after '.')");
        }
        while (i < n && h[i] >= '0' && h[i] <= '9') i++;
    }
    if (i < n && (h[i] == 'e' || h[i] == 'E')) {
        real = 1;
        i++;
        if (i < n && (h[i] == '+' || h[i] == '-')) i++;
        if (i >= n || h[i] < '0' || h[i] > '9') {
            p->i = i;
            return json_error(p, TS_ERR_ST_JSON, "invalid number (no digit in the exponent)");
        }
        while (i < n && h[i] >= '0' && h[i] <= '9') i++;
    }
    if (!real) {
        if (over || v > (*neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX)) {
            p->i = start;
            return json_error(p, TS_ERR_ST_OVERFLOW, "an integer beyond 64 bits");
        }
    } else {
        char small[64], *buf = i - start < sizeof small ? small : malloc(i - start + 1);
        if (!buf) return ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory reading a number");
        memcpy(buf, h + start, i - start);
        buf[i - start] = 0;
        double dv = strtod(buf, NULL);
        if (buf != small) free(buf);
        if (isinf(dv)) {
            p->i = start;
            return json_error(p, TS_ERR_ST_OVERFLOW, "a real number beyond a double's range");
        }
    }
    p->i = i;
    *is_int = !real;
    *mag = v;
    return TS_OK;
}

static ts_status lex_literal(st_parser *p, const char *word) {
    size_t k = strlen(word);
    if (p->n - p->i < k || memcmp(p->h + p->i, word, k) != 0) return json_error(p, TS_ERR_ST_JSON, "invalid token");
    p->i += k;
    return TS_OK;
}

/* Adds (obj, key) to the key set; TS_ERR_ST_DUPLICATE_KEY when present. */
static ts_status key_insert(st_parser *p, uint32_t obj, const char *k, size_t len, size_t at) {
    if (2 * (p->nkeys + 1) > p->capkeys) {
        size_t nc = p->capkeys ? 2 * p->capkeys : 64;
        key_slot *ns = ts__calloc(nc, sizeof *ns);
        if (!ns) return TS_ERR_OUT_OF_MEMORY;
        for (size_t i = 0; i < p->capkeys; i++)
            if (p->keys[i].k) {
                size_t j = (size_t)ts__hash_u64(name_hash(p->keys[i].k, p->keys[i].len), p->keys[i].obj) & (nc - 1);
                while (ns[j].k) j = (j + 1) & (nc - 1);
                ns[j] = p->keys[i];
            }
        free(p->keys);
        p->keys = ns;
        p->capkeys = nc;
    }
    size_t mask = p->capkeys - 1;
    for (size_t j = (size_t)ts__hash_u64(name_hash(k, len), obj) & mask;; j = (j + 1) & mask) {
        key_slot *s = &p->keys[j];
        if (!s->k) {
            s->k = k;
            s->len = len;
            s->obj = obj;
            p->nkeys++;
            return TS_OK;
        }
        if (s->obj == obj && s->len == len && memcmp(s->k, k, len) == 0) {
            p->i = at;
            return ts__error(TS_ERR_ST_DUPLICATE_KEY, "'%s': header JSON, byte %zu: duplicate key '%.*s'", p->path, at, QUOTE(k));
        }
    }
}

/* A key (p->i on its quote), decoded and kept in the arena; a NUL in it is an error. */
static ts_status lex_key(st_parser *p, char **k, size_t *len, int keep) {
    if (peek(p) != '"') return json_error(p, TS_ERR_ST_JSON, "expected a string (an object key)");
    size_t at = p->i;
    int nul;
    ts_status s = lex_string(p, k, len, &nul);
    if (s) return s;
    if (nul) {
        p->i = at;
        return ts__error(TS_ERR_ST_NUL_IN_STRING, "'%s': header JSON, byte %zu: the key '%.*s...' contains a NUL character", p->path, at,
                         QUOTE(*k));
    }
    if (keep) p->arena_at += *len + 1;
    return TS_OK;
}

static ts_status expect_colon(st_parser *p) {
    skip_ws(p);
    if (peek(p) != ':') return json_error(p, TS_ERR_ST_JSON, "expected ':'");
    p->i++;
    skip_ws(p);
    return TS_OK;
}

/* After a member or element: ',' (1, more follow), the closer (0), else an error. */
static ts_status next_member(st_parser *p, int closer, int *more) {
    skip_ws(p);
    int c = peek(p);
    if (c == ',') {
        p->i++;
        skip_ws(p);
        *more = 1;
        return TS_OK;
    }
    if (c == closer) {
        p->i++;
        *more = 0;
        return TS_OK;
    }
    return json_error(p, TS_ERR_ST_JSON, closer == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

static ts_status parse_value(st_parser *p, int depth);

/* strlen of each dtype name, for matching without strcmp */
static const size_t st_dtype_len[TS_ST_DTYPE_COUNT] = {
    [TS_ST_BOOL] = 4, [TS_ST_F4] = 2, [TS_ST_F6_E2M3] = 7, [TS_ST_F6_E3M2] = 7, [TS_ST_U8] = 2, [TS_ST_I8] = 2,
    [TS_ST_F8_E5M2] = 7, [TS_ST_F8_E4M3] = 7, [TS_ST_F8_E8M0] = 7, [TS_ST_F8_E4M3FNUZ] = 11, [TS_ST_F8_E5M2FNUZ] = 11,
    [TS_ST_I16] = 3, [TS_ST_U16] = 3, [TS_ST_F16] = 3, [TS_ST_BF16] = 4, [TS_ST_I32] = 3, [TS_ST_U32] = 3, [TS_ST_F32] = 3,
    [TS_ST_C64] = 3, [TS_ST_F64] = 3, [TS_ST_I64] = 3, [TS_ST_U64] = 3,
};

static ts_status parse_object(st_parser *p, int depth) {
    if (depth > TS__ST_MAX_DEPTH) return ts__error(TS_ERR_ST_TOO_DEEP, "'%s': the header nests JSON deeper than %d levels", p->path, TS__ST_MAX_DEPTH);
    uint32_t obj = p->next_obj++;
    p->i++;
    skip_ws(p);
    if (peek(p) == '}') {
        p->i++;
        return TS_OK;
    }
    for (int more = 1; more;) {
        size_t at = p->i, len;
        char *k;
        ts_status s = lex_key(p, &k, &len, 1);
        if (!s) s = key_insert(p, obj, k, len, at);
        if (!s) s = expect_colon(p);
        if (!s) s = parse_value(p, depth + 1);
        if (!s) s = next_member(p, '}', &more);
        if (s) return s;
    }
    return TS_OK;
}

static ts_status parse_array(st_parser *p, int depth) {
    if (depth > TS__ST_MAX_DEPTH) return ts__error(TS_ERR_ST_TOO_DEEP, "'%s': the header nests JSON deeper than %d levels", p->path, TS__ST_MAX_DEPTH);
    p->i++;
    skip_ws(p);
    if (peek(p) == ']') {
        p->i++;
        return TS_OK;
    }
    for (int more = 1; more;) {
        ts_status s = parse_value(p, depth + 1);
        if (!s) s = next_member(p, ']', &more);
        if (s) return s;
    }
    return TS_OK;
}

/* Any JSON value at p->i (whitespace skipped), checked and dropped. */
static ts_status parse_value(st_parser *p, int depth) {
    int c = peek(p), is_int, neg, nul;
    uint64_t v;
    char *str;
    size_t len;
    switch (c) {
    case '{': return parse_object(p, depth);
    case '[': return parse_array(p, depth);
    case '"': return lex_string(p, &str, &len, &nul);
    case 't': return lex_literal(p, "true");
    case 'f': return lex_literal(p, "false");
    case 'n': return lex_literal(p, "null");
    case -1: return json_error(p, TS_ERR_ST_JSON, "expected a value");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return lex_number(p, &is_int, &v, &neg);
        return json_error(p, TS_ERR_ST_JSON, "expected a value");
    }
}

/* A non-negative integer value (-0 included, as jansson read it), else *ok = 0. */
static ts_status parse_uint(st_parser *p, int depth, uint64_t *out, int *ok) {
    int c = peek(p);
    *ok = 0;
    if (c == '-' || (c >= '0' && c <= '9')) {
        int is_int, neg;
        uint64_t v;
        ts_status s = lex_number(p, &is_int, &v, &neg);
        if (s) return s;
        if (is_int && (!neg || v == 0)) {
            *out = v;
            *ok = 1;
        }
        return TS_OK;
    }
    return parse_value(p, depth);
}

static ts_status push_dim(ts_st_file *f, uint64_t v) {
    if (f->ndims == f->capdims) {
        size_t nc = f->capdims ? 2 * f->capdims : 256;
        uint64_t *d = ts__realloc_array(f->dims, nc, sizeof *d);
        if (!d) return TS_ERR_OUT_OF_MEMORY;
        f->dims = d;
        f->capdims = nc;
    }
    f->dims[f->ndims++] = v;
    return TS_OK;
}

/* The value of a tensor entry (p->i on it) into e; a broken rule goes to p->sem. */
static ts_status parse_entry(st_parser *p, st_entry *e) {
    const char *path = p->path, *name = e->name;
    int check = !p->sem;
    ts_status s;
    if (peek(p) != '{') {
        if ((s = parse_value(p, 2))) return s;
        if (check) SEM(TS_ERR_ST_ENTRY_NOT_OBJECT, "'%s': tensor '%.*s': the entry is not an object", path, QUOTE(name));
        return TS_OK;
    }
    uint32_t obj = p->next_obj++;
    int has_dtype = 0, has_shape = 0, has_offsets = 0;
    int dtype_string = 0, dtype_ok = 0, shape_list = 0, offsets_ok = 0;
    size_t bad_dim = SIZE_MAX, rank = 0;
    char dtype_text[65] = "";
    p->i++;
    skip_ws(p);
    if (peek(p) == '}') p->i++;
    else
        for (int more = 1; more;) {
            size_t at = p->i, len;
            char *k;
            if ((s = lex_key(p, &k, &len, 0))) return s;
            int which = len == 5 && memcmp(k, "dtype", 5) == 0 ? 1 : len == 5 && memcmp(k, "shape", 5) == 0 ? 2
                        : len == 12 && memcmp(k, "data_offsets", 12) == 0                                     ? 3
                                                                                                               : 0;
            int *seen = which == 1 ? &has_dtype : which == 2 ? &has_shape : which == 3 ? &has_offsets : NULL;
            if (seen && *seen) {
                p->i = at;
                return ts__error(TS_ERR_ST_DUPLICATE_KEY, "'%s': header JSON, byte %zu: duplicate key '%s' in tensor '%.*s'", path, at, k,
                                 QUOTE(name));
            }
            if (seen) *seen = 1;
            else {
                p->arena_at += len + 1; /* unknown fields are ignored (as the reference does) but count for duplicates */
                if ((s = key_insert(p, obj, k, len, at))) return s;
            }
            if ((s = expect_colon(p))) return s;
            if (which == 1) {
                if (peek(p) == '"') {
                    char *v;
                    size_t vl;
                    int nul;
                    if ((s = lex_string(p, &v, &vl, &nul))) return s;
                    dtype_string = 1;
                    if (!nul)
                        for (int d = 0; d < TS_ST_DTYPE_COUNT && !dtype_ok; d++)
                            if (st_dtype_len[d] == vl && memcmp(v, st_dtypes[d].name, vl) == 0) {
                                e->dtype = (ts_st_dtype)d;
                                dtype_ok = 1;
                            }
                    if (!dtype_ok) snprintf(dtype_text, sizeof dtype_text, "%s", v);
                } else if ((s = parse_value(p, 3))) return s;
            } else if (which == 2) {
                if (peek(p) == '[') {
                    shape_list = 1;
                    e->shape_at = p->f->ndims;
                    p->i++;
                    skip_ws(p);
                    if (peek(p) == ']') p->i++;
                    else
                        for (int m = 1; m;) {
                            uint64_t v = 0;
                            int ok;
                            if ((s = parse_uint(p, 4, &v, &ok))) return s;
                            if (!ok && bad_dim == SIZE_MAX) bad_dim = rank;
                            if ((s = push_dim(p->f, v))) return s;
                            rank++;
                            if ((s = next_member(p, ']', &m))) return s;
                        }
                } else if ((s = parse_value(p, 3))) return s;
            } else if (which == 3) {
                if (peek(p) == '[') {
                    size_t count = 0;
                    int good = 1;
                    p->i++;
                    skip_ws(p);
                    if (peek(p) == ']') p->i++;
                    else
                        for (int m = 1; m;) {
                            uint64_t v = 0;
                            int ok;
                            if ((s = parse_uint(p, 4, &v, &ok))) return s;
                            if (count == 0) e->begin = v;
                            if (count == 1) e->end = v;
                            if (!ok) good = 0;
                            count++;
                            if ((s = next_member(p, ']', &m))) return s;
                        }
                    offsets_ok = good && count == 2;
                } else if ((s = parse_value(p, 3))) return s;
            } else if ((s = parse_value(p, 3))) return s;
            if ((s = next_member(p, '}', &more))) return s;
        }
    if (!check || p->sem) return TS_OK;
    /* the rules, in the order the reader has always checked them */
    if (!has_dtype) SEM(TS_ERR_ST_MISSING_DTYPE, "'%s': tensor '%.*s' has no 'dtype'", path, QUOTE(name));
    else if (!has_shape) SEM(TS_ERR_ST_MISSING_SHAPE, "'%s': tensor '%.*s' has no 'shape'", path, QUOTE(name));
    else if (!has_offsets) SEM(TS_ERR_ST_MISSING_OFFSETS, "'%s': tensor '%.*s' has no 'data_offsets'", path, QUOTE(name));
    else if (!dtype_string) SEM(TS_ERR_ST_UNKNOWN_DTYPE, "'%s': tensor '%.*s': 'dtype' is not a string", path, QUOTE(name));
    else if (!dtype_ok) SEM(TS_ERR_ST_UNKNOWN_DTYPE, "'%s': tensor '%.*s': unknown dtype '%.*s'", path, QUOTE(name), 64, dtype_text);
    else if (!shape_list) SEM(TS_ERR_ST_BAD_SHAPE, "'%s': tensor '%.*s': 'shape' is not a list", path, QUOTE(name));
    else if (rank > (size_t)INT32_MAX) SEM(TS_ERR_ST_BAD_SHAPE, "'%s': tensor '%.*s': shape too long", path, QUOTE(name));
    else if (bad_dim != SIZE_MAX)
        SEM(TS_ERR_ST_BAD_SHAPE, "'%s': tensor '%.*s': dim %zu is not a non-negative integer", path, QUOTE(name), bad_dim);
    else if (!offsets_ok)
        SEM(TS_ERR_ST_BAD_OFFSETS, "'%s': tensor '%.*s': 'data_offsets' is not [begin, end] with non-negative integers", path, QUOTE(name));
    else if (e->begin > e->end)
        SEM(TS_ERR_ST_OFFSETS_REVERSED, "'%s': tensor '%.*s': data_offsets begin %llu is after end %llu", path, QUOTE(name),
            (unsigned long long)e->begin, (unsigned long long)e->end);
    if (p->sem) return TS_OK;
    e->rank = (int)rank;
    const uint64_t *dims = rank ? p->f->dims + e->shape_at : NULL;
    uint64_t numel = 1, bits, nbytes;
    int fits = 1;
    for (size_t d = 0; d < rank && fits; d++) fits = !__builtin_mul_overflow(numel, dims[d], &numel);
    fits = fits && !__builtin_mul_overflow(numel, (uint64_t)st_dtypes[e->dtype].bits, &bits) && bits % 8 == 0 && bits / 8 <= (uint64_t)SIZE_MAX;
    char what[400];
    if (!fits) { /* the shared check gives the message */
        snprintf(what, sizeof what, "'%s': tensor '%.*s'", path, QUOTE(name));
        p->sem = ts__st_tensor_bytes(what, e->dtype, e->rank, dims, &e->numel, &nbytes);
        if (!p->sem) p->sem = ts__error(TS_ERR_STATE, "%s: size check disagrees", what); /* cannot happen */
        return TS_OK;
    }
    e->numel = numel;
    nbytes = bits / 8;
    if (e->end - e->begin != nbytes || e->end > p->f->data_len) snprintf(what, sizeof what, "'%s': tensor '%.*s'", path, QUOTE(name));
    if (e->end - e->begin != nbytes)
        SEM(TS_ERR_ST_SIZE_MISMATCH, "%s: data_offsets [%llu, %llu] hold %llu bytes but %llu elements of %s need %llu", what,
            (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)(e->end - e->begin), (unsigned long long)e->numel,
            ts_st_dtype_name(e->dtype), (unsigned long long)nbytes);
    else if (e->end > p->f->data_len)
        SEM(TS_ERR_ST_OFFSETS_OUTSIDE, "%s: data_offsets end %llu is past the data buffer's %llu bytes", what, (unsigned long long)e->end,
            (unsigned long long)p->f->data_len);
    return TS_OK;
}

static ts_status push_meta(ts_st_file *f, const char *k, const char *v) {
    if (f->nmeta == f->capmeta) {
        size_t nc = f->capmeta ? 2 * f->capmeta : 8;
        st_meta *m = ts__realloc_array(f->meta, nc, sizeof *m);
        if (!m) return TS_ERR_OUT_OF_MEMORY;
        f->meta = m;
        f->capmeta = nc;
    }
    f->meta[f->nmeta].key = k;
    f->meta[f->nmeta].value = v;
    f->nmeta++;
    return TS_OK;
}

/* The value of __metadata__: null (no metadata) or an object of strings. */
static ts_status parse_metadata(st_parser *p) {
    const char *path = p->path;
    ts_status s;
    int c = peek(p);
    if (c == 'n') return lex_literal(p, "null"); /* the reference reads null as "no metadata" */
    if (c != '{') {
        if ((s = parse_value(p, 2))) return s;
        SEM(TS_ERR_ST_METADATA_NOT_OBJECT, "'%s': __metadata__ is not an object", path);
        return TS_OK;
    }
    uint32_t obj = p->next_obj++;
    p->i++;
    skip_ws(p);
    if (peek(p) == '}') {
        p->i++;
        return TS_OK;
    }
    for (int more = 1; more;) {
        size_t at = p->i, len;
        char *k;
        if ((s = lex_key(p, &k, &len, 1))) return s;
        if ((s = key_insert(p, obj, k, len, at))) return s;
        if ((s = expect_colon(p))) return s;
        if (peek(p) == '"') {
            char *v;
            size_t vl;
            int nul;
            if ((s = lex_string(p, &v, &vl, &nul))) return s;
            p->arena_at += vl + 1;
            if (nul) SEM(TS_ERR_ST_NUL_IN_STRING, "'%s': __metadata__ value of '%.*s' contains a NUL character", path, QUOTE(k));
            if ((s = push_meta(p->f, k, v))) return s;
        } else {
            if ((s = parse_value(p, 3))) return s;
            SEM(TS_ERR_ST_METADATA_NOT_STRING, "'%s': __metadata__ value of '%.*s' is not a string", path, QUOTE(k));
        }
        if ((s = next_member(p, '}', &more))) return s;
    }
    return TS_OK;
}

static ts_status new_entry(st_parser *p, const char *name, size_t len, uint64_t hash, st_entry **out) {
    ts_st_file *f = p->f;
    if (f->nt == f->capt) {
        size_t nc = f->capt ? 2 * f->capt : 64;
        st_entry *t = ts__realloc_array(f->t, nc, sizeof *t);
        if (!t) return TS_ERR_OUT_OF_MEMORY;
        f->t = t;
        f->capt = nc;
    }
    ts_status s = name_table_fit(f, 0);
    if (s) return s;
    st_entry *e = &f->t[f->nt];
    memset(e, 0, sizeof *e);
    e->name = name;
    e->name_len = len;
    e->hash = hash;
    name_place(f, f->nt++);
    *out = e;
    return TS_OK;
}

/* The top-level object into f's tables. Returns a JSON error, or TS_OK with
 * p->sem holding the first broken rule of an entry (or TS_OK). */
static ts_status parse_top(st_parser *p) {
    ts_status s;
    p->i = 1; /* after the '{' (checked by the caller) */
    p->next_obj = 1;
    skip_ws(p);
    if (peek(p) == '}') {
        p->i++;
        return TS_OK;
    }
    for (int more = 1; more;) {
        size_t at = p->i, len;
        char *k;
        if ((s = lex_key(p, &k, &len, 1))) return s;
        if (len == 12 && memcmp(k, "__metadata__", 12) == 0) {
            p->arena_at -= len + 1;
            if (p->has_meta) {
                p->i = at;
                return ts__error(TS_ERR_ST_DUPLICATE_KEY, "'%s': header JSON, byte %zu: duplicate key '__metadata__'", p->path, at);
            }
            p->has_meta = 1;
            if ((s = expect_colon(p)) || (s = parse_metadata(p))) return s;
        } else {
            uint64_t hash = name_hash(k, len);
            if (name_lookup(p->f, k, len, hash) >= 0) {
                p->i = at;
                return ts__error(TS_ERR_ST_DUPLICATE_KEY, "'%s': header JSON, byte %zu: duplicate tensor name '%.*s'", p->path, at, QUOTE(k));
            }
            st_entry *e;
            if ((s = new_entry(p, k, len, hash, &e)) || (s = expect_colon(p)) || (s = parse_entry(p, e))) return s;
        }
        if ((s = next_member(p, '}', &more))) return s;
    }
    return TS_OK;
}

static int entry_before(const st_entry *x, const st_entry *y) {
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_offsets(const void *a, const void *b) { return entry_before(a, b); }

static int cmp_meta(const void *a, const void *b) { return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key); }

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

    /* bounded by the header's length, checked against the file's above */
    if (!(f->arena = malloc((size_t)n + 1))) return ts__error(TS_ERR_OUT_OF_MEMORY, "'%s': out of memory for a %llu-byte header", p, (unsigned long long)n);
    seed_hash();
    st_parser ps = {.f = f, .path = p, .h = h, .n = (size_t)n};
    ts_status s = parse_top(&ps);
    free(ps.keys);
    for (size_t i = ps.i; i < n && !s; i++)
        if (!is_json_space_c(h[i]))
            s = ts__error(TS_ERR_ST_TRAILING, "'%s': byte %zu of the header follows the JSON object and is not a space", p, i);
    if (!s) s = ps.sem; /* its message is the last one set */
    /* Nesting deeper than the limit anywhere in the header comes before every
     * JSON and entry error. Where the parse succeeded it saw every bracket
     * (and checked the depth itself), so the scan runs only on failure. */
    if (s && s != TS_ERR_ST_TOO_DEEP && s != TS_ERR_OUT_OF_MEMORY &&
        ts__st_json_depth((const char *)h, (size_t)n, TS__ST_MAX_DEPTH) > TS__ST_MAX_DEPTH)
        s = ts__error(TS_ERR_ST_TOO_DEEP, "'%s': the header nests JSON deeper than %d levels", p, TS__ST_MAX_DEPTH);
    if (s) return s;

    for (size_t i = 0; i < f->nt; i++) f->t[i].shape = f->t[i].rank ? f->dims + f->t[i].shape_at : NULL;
    int sorted = 1;
    for (size_t i = 1; i < f->nt && sorted; i++)
        if (entry_before(&f->t[i - 1], &f->t[i]) > 0) sorted = 0;
    if (!sorted) {
        qsort(f->t, f->nt, sizeof *f->t, cmp_offsets);
        if ((s = name_table_fit(f, 1))) return s;
    }
    uint64_t at = 0;
    for (size_t i = 0; i < f->nt; i++) {
        const st_entry *e = &f->t[i];
        if (e->begin < at)
            return ts__error(TS_ERR_ST_OVERLAP, "'%s': tensor '%.*s' (bytes %llu..%llu) overlaps tensor '%.*s' (which ends at %llu)", p,
                             QUOTE(e->name), (unsigned long long)e->begin, (unsigned long long)e->end, QUOTE(f->t[i - 1].name),
                             (unsigned long long)at);
        if (e->begin > at)
            return ts__error(TS_ERR_ST_HOLE, "'%s': data bytes %llu..%llu belong to no tensor (before tensor '%.*s')", p, (unsigned long long)at,
                             (unsigned long long)e->begin, QUOTE(e->name));
        at = e->end;
    }
    if (at != f->data_len)
        return ts__error(TS_ERR_ST_INCOMPLETE, "'%s': the tensors end at data byte %llu but the data buffer has %llu bytes", p,
                         (unsigned long long)at, (unsigned long long)f->data_len);
    if (f->nmeta > 1) qsort(f->meta, f->nmeta, sizeof *f->meta, cmp_meta);
    return TS_OK;
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
    if (f) f->fd = -1;
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
    f->fd = fd; /* closed by ts_st_close, also on a validation failure */
    return open_common(f, out);
}

ts_status ts_st_open_memory(const void *buf, size_t n, ts_st_file **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_open_memory: out is NULL");
    *out = NULL;
    if (!buf && n) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_open_memory: buffer is NULL");
    ts_st_file *f = ts__calloc(1, sizeof *f);
    if (f) f->fd = -1;
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
    size_t n = strlen(name);
    ptrdiff_t i = name_lookup(f, name, n, name_hash(name, n));
    if (i >= 0) {
        fill_info(f, &f->t[i], out);
        return TS_OK;
    }
    return ts__error(TS_ERR_ST_TENSOR_NOT_FOUND, "'%s' has no tensor '%.*s'", f->path, QUOTE(name));
}

size_t ts_st_metadata_count(const ts_st_file *f) { return f ? f->nmeta : 0; }

ts_status ts_st_metadata_at(const ts_st_file *f, size_t i, const char **key, const char **value) {
    if (!f) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_metadata_at: file is NULL");
    if (i >= f->nmeta) return ts__error(TS_ERR_INDEX, "ts_st_metadata_at: index %zu, '%s' has %zu metadata entries", i, f->path, f->nmeta);
    if (key) *key = f->meta[i].key;
    if (value) *value = f->meta[i].value;
    return TS_OK;
}

const char *ts_st_metadata_get(const ts_st_file *f, const char *key) {
    if (!f || !key || !f->nmeta) return NULL;
    st_meta k = {key, NULL};
    const st_meta *m = bsearch(&k, f->meta, f->nmeta, sizeof *f->meta, cmp_meta);
    return m ? m->value : NULL;
}
