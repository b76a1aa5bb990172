/* util.c: allocation, strings, hashing, clocks, files, half/bfloat16, elements. */
#include "ts_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void *ts__calloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *ts__realloc_array(void *p, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) {
        ts__error(TS_ERR_OUT_OF_MEMORY, "allocation size overflows");
        return NULL;
    }
    size_t bytes = n * size;
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory allocating %zu x %zu bytes", n, size);
    return q;
}

char *ts__strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = ts__calloc(n, 1);
    if (d) memcpy(d, s, n);
    return d;
}

void ts__sb_puts(ts__sb *sb, const char *s) { ts__sb_printf(sb, "%s", s); }

void ts__sb_printf(ts__sb *sb, const char *fmt, ...) {
    if (sb->failed) return;
    for (;;) {
        size_t room = sb->cap - sb->len;
        va_list ap;
        va_start(ap, fmt);
        int n = room ? vsnprintf(sb->data + sb->len, room, fmt, ap) : -2;
        va_end(ap);
        if (n == -1) { sb->failed = true; return; }
        if (n >= 0 && (size_t)n < room) { sb->len += (size_t)n; return; }
        size_t need = sb->len + (n > 0 ? (size_t)n : 0) + 1;
        size_t cap = sb->cap ? sb->cap * 2 : 256;
        while (cap < need) cap *= 2;
        char *d = realloc(sb->data, cap);
        if (!d) { sb->failed = true; return; }
        sb->data = d;
        sb->cap = cap;
    }
}

char *ts__sb_finish(ts__sb *sb) {
    if (sb->failed) { ts__sb_free(sb); return NULL; }
    if (!sb->data) {
        sb->data = calloc(1, 1);
        if (!sb->data) return NULL;
    }
    char *d = sb->data;
    sb->data = NULL;
    sb->len = sb->cap = 0;
    return d;
}

void ts__sb_free(ts__sb *sb) {
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

double ts__now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

uint64_t ts__hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t ts__hash_u64(uint64_t h, uint64_t v) { return ts__hash_bytes(h, &v, sizeof v); }

uint64_t ts__hash_str(uint64_t h, const char *s) {
    if (!s) return ts__hash_u64(h, 0x5a5a);
    return ts__hash_bytes(h, s, strlen(s) + 1);
}

static ts_status mkdir_p(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int r = mkdir(path, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST) return ts__error(TS_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return ts__error(TS_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    return TS_OK;
}

ts_status ts__cache_dir(const char *sub, char *buf, size_t n) {
    const char *env = getenv("TESSERA_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int w;
    if (env && *env) w = snprintf(buf, n, "%s/%s", env, sub);
    else if (xdg && *xdg) w = snprintf(buf, n, "%s/tessera/%s", xdg, sub);
    else w = snprintf(buf, n, "%s/.cache/tessera/%s", home && *home ? home : "/tmp", sub);
    if (w < 0 || (size_t)w >= n) return ts__error(TS_ERR_LIMIT, "cache directory path too long");
    return mkdir_p(buf);
}

ts_status ts__mkdir_p(const char *path) {
    char buf[4200];
    int w = snprintf(buf, sizeof buf, "%s", path);
    if (w <= 0 || (size_t)w >= sizeof buf) return ts__error(TS_ERR_LIMIT, "path too long: '%s'", path);
    while (w > 1 && buf[w - 1] == '/') buf[--w] = 0;
    return mkdir_p(buf);
}

ts_status ts__write_file_atomic(const char *path, const void *data, size_t n) {
    char tmp[4200];
    int w = snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%lx", path, (long)getpid(), (unsigned long)(uintptr_t)&tmp);
    if (w < 0 || (size_t)w >= sizeof tmp) return ts__error(TS_ERR_LIMIT, "path too long: '%s'", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return ts__error(TS_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    const char *c = data;
    size_t done = 0;
    while (done < n) {
        ssize_t k = write(fd, c + done, n - done);
        if (k < 0) {
            if (errno == EINTR) continue;
            close(fd);
            unlink(tmp);
            return ts__error(TS_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        }
        done += (size_t)k;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return ts__error(TS_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return ts__error(TS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    }
    return TS_OK;
}

ts_status ts__read_file(const char *path, size_t max_bytes, char **out, size_t *n) {
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return ts__error(errno == ENOENT ? TS_ERR_NOT_FOUND : TS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    ts__sb sb = {0};
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (sb.len + k > max_bytes) {
            fclose(f);
            ts__sb_free(&sb);
            return ts__error(TS_ERR_LIMIT, "'%s' is larger than %zu bytes", path, max_bytes);
        }
        size_t need = sb.len + k + 1;
        if (need > sb.cap) {
            size_t cap = sb.cap ? sb.cap : 65536;
            while (cap < need) cap *= 2;
            char *d = realloc(sb.data, cap);
            if (!d) { fclose(f); ts__sb_free(&sb); return ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory reading '%s'", path); }
            sb.data = d;
            sb.cap = cap;
        }
        memcpy(sb.data + sb.len, chunk, k);
        sb.len += k;
        sb.data[sb.len] = 0;
    }
    int err = ferror(f);
    fclose(f);
    if (err) { ts__sb_free(&sb); return ts__error(TS_ERR_IO, "cannot read '%s'", path); }
    *n = sb.len;
    *out = ts__sb_finish(&sb);
    return *out ? TS_OK : ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory");
}

/* ---- half and bfloat16 */

float ts__half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal */
            float f = ldexpf((float)man, -24);
            return sign ? -f : f;
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 112) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ts__float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u) return (uint16_t)(sign | 0x7e00); /* NaN */
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* overflow to inf (>= 65520) */
    if (absx < 0x38800000u) { /* subnormal or zero in half */
        float a;
        memcpy(&a, &absx, 4);
        float scaled = a * 16777216.0f; /* 2^24 */
        uint32_t m = (uint32_t)lrintf(scaled);
        return (uint16_t)(sign | m);
    }
    uint32_t exp = (absx >> 23) - 112, man = absx & 0x7fffff;
    uint32_t h = (exp << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float ts__bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ts__float_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    uint32_t lsb = (x >> 16) & 1;
    x += 0x7fffu + lsb;
    return (uint16_t)(x >> 16);
}

/* ---- 8-bit floats (OCP OFP8: E4M3 "fn", E5M2). Decoding from the fields;
 * encoding rounds to nearest even on the value's own quantum (exact in
 * double: every step is a power-of-two scale), then E4M3 (no infinity)
 * gives NaN past its largest finite 448 and E5M2 infinity past 57344, as
 * torch and ml_dtypes do. tests/test_builder.c checks both against a
 * nearest-value search over all 256 codes. */

float ts__f8_to_float(uint8_t b, int e5m2) {
    const int mb = e5m2 ? 2 : 3, bias = e5m2 ? 15 : 7, emax = e5m2 ? 31 : 15;
    int s = b >> 7, e = (b >> mb) & emax, m = b & ((1 << mb) - 1);
    float f;
    if (e5m2 && e == 31) f = m ? NAN : INFINITY;
    else if (!e5m2 && e == 15 && m == 7) f = NAN;
    else if (e == 0) f = ldexpf((float)m, 1 - bias - mb);
    else f = ldexpf((float)((1 << mb) + m), e - bias - mb);
    return s ? -f : f;
}

uint8_t ts__float_to_f8(float f, int e5m2) {
    const int mb = e5m2 ? 2 : 3, bias = e5m2 ? 15 : 7;
    const double maxf = e5m2 ? 57344.0 : 448.0;
    const uint8_t sign = signbit(f) ? 0x80 : 0, ovf = e5m2 ? 0x7c : 0x7f, nan = e5m2 ? 0x7e : 0x7f;
    if (isnan(f)) return sign | nan;
    double a = fabs((double)f);
    if (a == 0) return sign;
    int ex;
    (void)frexp(a, &ex); /* a = m 2^ex, m in [0.5, 1): leading bit 2^(ex-1) */
    int lead = ex - 1 < 1 - bias ? 1 - bias : ex - 1;
    double q = ldexp(1.0, lead - mb), r = nearbyint(a / q) * q; /* round to nearest even */
    if (isinf(a) || r > maxf) return sign | ovf;
    if (r < ldexp(1.0, 1 - bias)) return (uint8_t)(sign | (int)(r / ldexp(1.0, 1 - bias - mb))); /* subnormal */
    (void)frexp(r, &ex);
    int e = ex - 1;
    int m = (int)(r / ldexp(1.0, e - mb)) - (1 << mb);
    return (uint8_t)(sign | ((e + bias) << mb) | m);
}

/* ---- dtypes and elements */

static const char *const dtype_names[TS_DTYPE_COUNT] = {"f32", "f16", "bf16", "f64", "i32", "i64", "u8", "bool", "i8", "i16", "f8_e4m3", "f8_e5m2"};
static const size_t dtype_sizes[TS_DTYPE_COUNT] = {4, 2, 2, 8, 4, 8, 1, 1, 1, 2, 1, 1};

const char *ts_dtype_name(ts_dtype d) { return (unsigned)d < TS_DTYPE_COUNT ? dtype_names[d] : NULL; }
size_t ts_dtype_size(ts_dtype d) { return (unsigned)d < TS_DTYPE_COUNT ? dtype_sizes[d] : 0; }
int ts_dtype_is_float(ts_dtype d) { return d == TS_F32 || d == TS_F16 || d == TS_BF16 || d == TS_F64 || d == TS_F8_E4M3 || d == TS_F8_E5M2; }

ts_status ts_dtype_parse(const char *name, ts_dtype *out) {
    for (int i = 0; i < TS_DTYPE_COUNT; i++)
        if (name && strcmp(name, dtype_names[i]) == 0) { *out = (ts_dtype)i; return TS_OK; }
    return ts__error(TS_ERR_INVALID_ARGUMENT, "unknown dtype '%s' (expected f32, f16, bf16, f64, f8_e4m3, f8_e5m2, i64, i32, i16, i8, u8 or bool)",
                     name ? name : "(null)");
}

double ts__load_elem(ts_dtype d, const void *base, int64_t i) {
    switch (d) {
    case TS_F32: return ((const float *)base)[i];
    case TS_F16: return ts__half_to_float(((const uint16_t *)base)[i]);
    case TS_BF16: return ts__bf16_to_float(((const uint16_t *)base)[i]);
    case TS_F64: return ((const double *)base)[i];
    case TS_I32: return ((const int32_t *)base)[i];
    case TS_I64: return (double)((const int64_t *)base)[i];
    case TS_U8: return ((const uint8_t *)base)[i];
    case TS_BOOL: return ((const uint8_t *)base)[i] ? 1.0 : 0.0;
    case TS_I8: return ((const int8_t *)base)[i];
    case TS_I16: return ((const int16_t *)base)[i];
    case TS_F8_E4M3: return ts__f8_to_float(((const uint8_t *)base)[i], 0);
    case TS_F8_E5M2: return ts__f8_to_float(((const uint8_t *)base)[i], 1);
    default: return 0.0;
    }
}

static int64_t to_int(double v) {
    if (isnan(v)) return 0;
    if (v >= 9.2e18) return INT64_MAX;
    if (v <= -9.2e18) return INT64_MIN;
    return (int64_t)v;
}

void ts__store_elem(ts_dtype d, void *base, int64_t i, double v) {
    switch (d) {
    case TS_F32: ((float *)base)[i] = (float)v; break;
    case TS_F16: ((uint16_t *)base)[i] = ts__float_to_half((float)v); break;
    case TS_BF16: ((uint16_t *)base)[i] = ts__float_to_bf16((float)v); break;
    case TS_F64: ((double *)base)[i] = v; break;
    case TS_I32: ((int32_t *)base)[i] = (int32_t)(uint32_t)(uint64_t)to_int(v); break;
    case TS_I64: ((int64_t *)base)[i] = to_int(v); break;
    case TS_U8: ((uint8_t *)base)[i] = (uint8_t)(uint64_t)to_int(v); break;
    case TS_BOOL: ((uint8_t *)base)[i] = v != 0.0; break;
    case TS_I8: ((int8_t *)base)[i] = (int8_t)(uint8_t)(uint64_t)to_int(v); break;
    case TS_I16: ((int16_t *)base)[i] = (int16_t)(uint16_t)(uint64_t)to_int(v); break;
    case TS_F8_E4M3: ((uint8_t *)base)[i] = ts__float_to_f8((float)v, 0); break;
    case TS_F8_E5M2: ((uint8_t *)base)[i] = ts__float_to_f8((float)v, 1); break;
    default: break;
    }
}

double ts__round_to(ts_dtype d, double v) {
    unsigned char tmp[8];
    ts__store_elem(d, tmp, 0, v);
    return ts__load_elem(d, tmp, 0);
}
