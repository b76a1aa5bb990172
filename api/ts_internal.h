/* ts_internal.h: helpers shared across the library's files (prefix ts__).
 * Not installed. */
#ifndef TS_INTERNAL_H
#define TS_INTERNAL_H

#include "tessera.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define TS__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TS__PRINTF(a, b)
#endif

/* Sets the thread's detail message and returns `s`, so that
 * `return ts__error(TS_ERR_X, "tensor '%s': ...", name);` reads naturally. */
ts_status ts__error(ts_status s, const char *fmt, ...) TS__PRINTF(2, 3);
ts_status ts__verror(ts_status s, const char *fmt, va_list ap);
/* Prefixes the current detail message with "prefix: ". */
void ts__error_prefix(const char *fmt, ...) TS__PRINTF(1, 2);

/* Allocation that reports TS_ERR_OUT_OF_MEMORY through the detail message. */
void *ts__calloc(size_t n, size_t size);
void *ts__realloc_array(void *p, size_t n, size_t size);
char *ts__strdup(const char *s);

/* Growable string (sticky out-of-memory: ts__sb_finish returns NULL). */
typedef struct ts__sb {
    char *data;
    size_t len, cap;
    bool failed;
} ts__sb;
void ts__sb_printf(ts__sb *sb, const char *fmt, ...) TS__PRINTF(2, 3);
void ts__sb_puts(ts__sb *sb, const char *s);
char *ts__sb_finish(ts__sb *sb); /* caller frees; NULL on failure */
void ts__sb_free(ts__sb *sb);

/* Direct writes into a contiguous tensor's storage where the backend
 * shares host memory (backend interface v2, buffer_map_write): *host points
 * at bytes [byte_offset, byte_offset + bytes) of the tensor until
 * ts__tensor_unmap. TS_ERR_UNSUPPORTED when the backend cannot (then use
 * ts_tensor_write_range). */
/* A contiguous tensor whose storage is `bytes` of host memory at `host`,
 * used in place (backend v4 buffer_wrap_host). On TS_OK the tensor owns the
 * memory and release(arg) runs once when the device is done with it; on any
 * error (TS_ERR_UNSUPPORTED: the backend cannot, or not at this address)
 * the caller keeps it. */
int ts__context_can_wrap_host(const ts_context *ctx);
ts_status ts__tensor_wrap_host(ts_context *ctx, ts_dtype dtype, int rank, const int64_t *shape, void *host, size_t bytes,
                               void (*release)(void *), void *arg, ts_tensor **out);
ts_status ts__tensor_map_write(ts_tensor *t, size_t byte_offset, size_t bytes, void **host);
ts_status ts__tensor_unmap(ts_tensor *t, void *host);

/* Pinned staging where the backend offers it (backend interface v3) and
 * cannot map its buffers: a page-locked host buffer (*host) named by
 * *handle; TS_ERR_UNSUPPORTED when absent. ts__tensor_write_async queues a
 * copy from host (inside the handle's buffer) into the tensor and returns;
 * the bytes must stay unchanged, and the tensor alive, until
 * ts__staging_wait(handle) returns (which reports a failed copy).
 * ts__staging_free waits, then frees (NULL: no-op). Calls on one context
 * are made one at a time. */
int ts__context_has_staging(const ts_context *ctx);
ts_status ts__staging_alloc(ts_context *ctx, size_t bytes, void **host, void **handle);
void ts__staging_free(ts_context *ctx, void *handle);
ts_status ts__tensor_write_async(ts_tensor *t, size_t byte_offset, void *handle, const void *host, size_t bytes);
ts_status ts__staging_wait(ts_context *ctx, void *handle);

/* Monotonic clock in milliseconds. */
double ts__now_ms(void);

/* 64-bit FNV-1a, chained. */
#define TS__HASH_INIT 0xcbf29ce484222325ull
uint64_t ts__hash_bytes(uint64_t h, const void *p, size_t n);
uint64_t ts__hash_u64(uint64_t h, uint64_t v);
uint64_t ts__hash_str(uint64_t h, const char *s);

/* Cache directory: $TESSERA_CACHE_DIR, else $XDG_CACHE_HOME/tessera, else
 * ~/.cache/tessera. `sub` ("bin", "tuning") is created. Writes into buf. */
ts_status ts__cache_dir(const char *sub, char *buf, size_t n);
/* Creates the folder and its parents (mkdir -p); existing ones are fine. */
ts_status ts__mkdir_p(const char *path);
/* Writes a file atomically (temporary file in the same folder, then rename). */
ts_status ts__write_file_atomic(const char *path, const void *data, size_t n);
/* Reads a whole file (at most max_bytes). Caller frees *out. */
ts_status ts__read_file(const char *path, size_t max_bytes, char **out, size_t *n);

/* f16 / bf16 conversions (round to nearest even). */
float ts__half_to_float(uint16_t h);
uint16_t ts__float_to_half(float f);
float ts__bf16_to_float(uint16_t h);
/* 8-bit floats: e5m2 = 0 for E4M3 (fn), 1 for E5M2; round to nearest even. */
float ts__f8_to_float(uint8_t b, int e5m2);
uint8_t ts__float_to_f8(float f, int e5m2);
uint16_t ts__float_to_bf16(float f);

/* Element access for any dtype, as double. */
double ts__load_elem(ts_dtype d, const void *base, int64_t index);
void ts__store_elem(ts_dtype d, void *base, int64_t index, double v);
/* Rounds v to what dtype d can hold (saturating/wrapping as C casts do for ints). */
double ts__round_to(ts_dtype d, double v);

#endif
