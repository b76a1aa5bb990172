/* safetensors_internal.h: what the files of the Safetensors module share
 * (prefix ts__st_). Not installed. */
#ifndef TS_SAFETENSORS_INTERNAL_H
#define TS_SAFETENSORS_INTERNAL_H

#include "tessera_safetensors.h"
#include "ts_internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The reference's limit on the header length. */
#define TS__ST_MAX_HEADER 100000000ull
/* Deepest JSON nesting accepted (a valid header needs 3). The header parser
 * checks it as it recurses (so hostile nesting cannot exhaust the stack);
 * the index reader scans for it before jansson parses. */
#define TS__ST_MAX_DEPTH 64
/* Default transfer chunk of uploads and downloads. */
#define TS__ST_CHUNK (4u << 20)
/* Longest tensor name quoted in a message. */
#define TS__ST_QUOTE 200

/* 1 when s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF);
 * else 0 and *bad is the offset of the first invalid byte. */
/* The open descriptor of a mapped file and the file offset of p (inside
 * its mapping), for zero-copy uploads; -1 for buffers or a p outside. */
int ts__st_file_fd(const ts_st_file *f, const void *p, uint64_t *file_offset);

int ts__st_utf8_valid(const uint8_t *s, size_t n, size_t *bad);
/* Deepest nesting of [ and { outside strings in s[0..n). Stops counting once
 * the depth passes `limit` and returns limit + 1. */
int ts__st_json_depth(const char *s, size_t n, int limit);
/* Elements and bytes of a tensor; TS_ERR_ST_OVERFLOW / TS_ERR_ST_SUBBYTE
 * (message prefixed with `what`). */
ts_status ts__st_tensor_bytes(const char *what, ts_st_dtype dt, int rank, const uint64_t *shape, uint64_t *numel,
                              uint64_t *nbytes);

/* Appends s as a JSON string the way serde_json writes it. */
void ts__st_json_string(ts__sb *sb, const char *s);

/* Chunked download of t (elements [0, numel) of a tensor whose storage
 * offset is 0) into `sink`, converting from f32 when `as` is F16/BF16. */
typedef ts_status (*ts__st_sink_fn)(void *sink, const void *p, size_t n);
ts_status ts__st_download(const ts_tensor *t, ts_st_dtype as, int base_known, size_t chunk, ts__st_sink_fn fn, void *sink);

/* ts_st_writer_add_tensor, plus whether the tensor is known to start at
 * storage offset 0 (tensors of a set are), which allows chunked downloads. */
ts_status ts__st_writer_add_tensor(ts_st_writer *w, const char *name, const ts_tensor *t, ts_st_dtype as, int rank, const uint64_t *shape,
                                   int base_known);

/* The system calls of ts_st_writer_save, replaceable for fault injection
 * (tests/test_safetensors.c fails or kills each step in turn). Defaults:
 * mkstemp, write, fchmod, fsync, close, rename, open (of the folder). */
typedef struct ts__st_io {
    int (*mkstemp)(char *tmpl);
    ssize_t (*write)(int fd, const void *p, size_t n);
    int (*fchmod)(int fd, mode_t mode);
    int (*fsync)(int fd);
    int (*close)(int fd);
    int (*rename)(const char *from, const char *to);
    int (*open_dir)(const char *path);
} ts__st_io;
extern ts__st_io ts__st_io_calls;

#endif
