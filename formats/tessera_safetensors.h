/* tessera_safetensors.h: Safetensors files: a strict reader, a canonical
 * writer, sharded checkpoints, and upload to / download from a device.
 *
 * Sections:
 *   1. Dtypes (every dtype of the reference implementation)
 *   2. Reading one file (mmap, zero-copy views, validation before any data access)
 *   3. Sharded checkpoints (model.safetensors.index.json) as one collection
 *   4. Writing (canonical layout, readable by the reference)
 *   5. Upload to a context, download and save back
 *
 * Errors are ts_status values in -100..-199 (tessera_status_st.def), one per
 * validation rule; ts_last_error() names the file, the tensor and the rule.
 * Nothing here aborts, reads outside the file, or allocates on a size taken
 * from the file without checking it against the file's length first.
 * The rules and where they differ from the reference: docs/safetensors.md. */
#ifndef TESSERA_SAFETENSORS_H
#define TESSERA_SAFETENSORS_H

#include "tessera.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- 1. Dtypes */

/* In the reference's order, which is also its alignment order: the writer
 * places tensors by descending dtype, then by name, as the reference does. */
typedef enum ts_st_dtype {
    TS_ST_BOOL = 0,
    TS_ST_F4,          /* 4 bits (OCP MX FP4 E2M1) */
    TS_ST_F6_E2M3,     /* 6 bits */
    TS_ST_F6_E3M2,     /* 6 bits */
    TS_ST_U8,
    TS_ST_I8,
    TS_ST_F8_E5M2,
    TS_ST_F8_E4M3,
    TS_ST_F8_E8M0,
    TS_ST_F8_E4M3FNUZ,
    TS_ST_F8_E5M2FNUZ,
    TS_ST_I16,
    TS_ST_U16,
    TS_ST_F16,
    TS_ST_BF16,
    TS_ST_I32,
    TS_ST_U32,
    TS_ST_F32,
    TS_ST_C64,         /* complex, two f32 */
    TS_ST_F64,
    TS_ST_I64,
    TS_ST_U64,
    TS_ST_DTYPE_COUNT
} ts_st_dtype;

/* "F32", "BF16", ... as written in files; NULL for an invalid value. Static string. */
const char *ts_st_dtype_name(ts_st_dtype d);
/* Parses a file dtype name (exact, case-sensitive). TS_ERR_ST_UNKNOWN_DTYPE otherwise. */
ts_status ts_st_dtype_parse(const char *name, ts_st_dtype *out);
/* Size of one element in bits (4, 6, 8, ..., 64); 0 for an invalid value. */
int ts_st_dtype_bits(ts_st_dtype d);
/* The runtime dtype with the same storage (F32 F16 BF16 F64 I32 I64 U8 BOOL);
 * TS_ERR_UNSUPPORTED for the others. */
ts_status ts_st_dtype_to_ts(ts_st_dtype d, ts_dtype *out);
ts_status ts_st_dtype_from_ts(ts_dtype d, ts_st_dtype *out);

/* ---------------------------------------------------------------- 2. Reading */

typedef struct ts_st_file ts_st_file;

/* One tensor of an open file. Every pointer is owned by the file and valid
 * until ts_st_close(). `data` points into the mapping (zero-copy); it is
 * aligned to the dtype only when the file is (the canonical layout is). */
typedef struct ts_st_tensor_info {
    const char *name;
    ts_st_dtype dtype;
    int rank;               /* 0 for a scalar */
    const uint64_t *shape;  /* rank entries (NULL when rank is 0) */
    uint64_t numel;         /* 1 for a scalar, 0 when a dim is 0 */
    uint64_t begin, end;    /* data_offsets, relative to the data buffer */
    size_t nbytes;          /* end - begin */
    const void *data;       /* nbytes bytes */
    const ts_st_file *file; /* the file holding it (for collections) */
} ts_st_tensor_info;

/* Maps `path` read-only and validates the whole header (every rule of
 * docs/safetensors.md) before any tensor data is touched. On failure *out is
 * NULL and the status names the broken rule. Close with ts_st_close. */
ts_status ts_st_open(const char *path, ts_st_file **out);
/* The same on a buffer in memory, which is borrowed: it must outlive the file. */
ts_status ts_st_open_memory(const void *buf, size_t n, ts_st_file **out);
/* Unmaps; NULL is a no-op. */
void ts_st_close(ts_st_file *f);

/* The path given to ts_st_open ("<memory>" for buffers). */
const char *ts_st_path(const ts_st_file *f);
/* Length of the JSON header (the 8-byte prefix's value) and of the data buffer. */
uint64_t ts_st_header_size(const ts_st_file *f);
uint64_t ts_st_data_size(const ts_st_file *f);

/* Tensors in data-offset order (ties by name). */
size_t ts_st_count(const ts_st_file *f);
ts_status ts_st_tensor_at(const ts_st_file *f, size_t i, ts_st_tensor_info *out);
/* TS_ERR_ST_TENSOR_NOT_FOUND when absent. */
ts_status ts_st_find(const ts_st_file *f, const char *name, ts_st_tensor_info *out);

/* __metadata__ entries sorted by key; strings owned by the file. */
size_t ts_st_metadata_count(const ts_st_file *f);
ts_status ts_st_metadata_at(const ts_st_file *f, size_t i, const char **key, const char **value);
/* Value of `key`, or NULL when absent. */
const char *ts_st_metadata_get(const ts_st_file *f, const char *key);

/* ---------------------------------------------------------------- 3. Collections */

/* A sharded checkpoint (an index with a weight_map naming a shard for every
 * tensor) seen as one set of tensors, or a single file seen the same way. */
typedef struct ts_st_collection ts_st_collection;

/* `path` is a model.safetensors.index.json (its shards, named relative to
 * its folder, are opened and validated, and must hold exactly the tensors
 * the weight_map gives them), a .safetensors file, or a folder holding
 * model.safetensors.index.json or else model.safetensors.
 * Errors: TS_ERR_ST_BAD_INDEX (malformed index, shard name leaving the
 * folder), TS_ERR_ST_INDEX_MISMATCH, any status of ts_st_open. */
ts_status ts_st_collection_open(const char *path, ts_st_collection **out);
void ts_st_collection_close(ts_st_collection *c);

/* Tensors sorted by name; info.file says which shard holds each. */
size_t ts_st_collection_count(const ts_st_collection *c);
ts_status ts_st_collection_tensor_at(const ts_st_collection *c, size_t i, ts_st_tensor_info *out);
ts_status ts_st_collection_find(const ts_st_collection *c, const char *name, ts_st_tensor_info *out);
/* The shards, in the order of first appearance in the weight_map. */
size_t ts_st_collection_file_count(const ts_st_collection *c);
const ts_st_file *ts_st_collection_file(const ts_st_collection *c, size_t i);
/* The index's "metadata" entry `key` as text (numbers in decimal), or, for a
 * single file, its __metadata__ value; NULL when absent. Owned by c. */
const char *ts_st_collection_metadata_get(const ts_st_collection *c, const char *key);

/* ---------------------------------------------------------------- 4. Writing */

typedef struct ts_st_writer ts_st_writer;

ts_status ts_st_writer_create(ts_st_writer **out);
void ts_st_writer_destroy(ts_st_writer *w);

/* Adds a tensor. `name` is copied; it must be valid UTF-8, unique and not
 * "__metadata__" (TS_ERR_NAME otherwise; TS_ERR_ST_UTF8). `shape` has
 * `rank` entries (rank 0: a scalar); `nbytes` must equal the elements times the
 * dtype's size (TS_ERR_ST_SIZE_MISMATCH, TS_ERR_ST_SUBBYTE, TS_ERR_ST_OVERFLOW).
 * ts_st_writer_add copies `data`; ts_st_writer_add_ref borrows it until the
 * writer is destroyed (for large tensors). */
ts_status ts_st_writer_add(ts_st_writer *w, const char *name, ts_st_dtype dtype, int rank, const uint64_t *shape,
                           const void *data, size_t nbytes);
ts_status ts_st_writer_add_ref(ts_st_writer *w, const char *name, ts_st_dtype dtype, int rank, const uint64_t *shape,
                               const void *data, size_t nbytes);
/* Adds a device tensor (borrowed until the writer is destroyed), read back in
 * bounded chunks while saving. `as` is the file dtype: the tensor's own, or
 * F16/BF16 for an f32 tensor (rounded to nearest even). `rank` -1 keeps the
 * tensor's shape; otherwise `rank` and `shape` give the file's shape (same
 * element count), e.g. rank 0 writes a scalar uploaded as [1] back as []. */
ts_status ts_st_writer_add_tensor(ts_st_writer *w, const char *name, const ts_tensor *t, ts_st_dtype as, int rank,
                                  const uint64_t *shape);
/* Sets __metadata__[key] = value (copied; UTF-8). Without any call the
 * header has no __metadata__ entry. */
ts_status ts_st_writer_metadata(ts_st_writer *w, const char *key, const char *value);

/* Layout options. The defaults give the canonical layout, byte for byte the
 * reference's. data_align: the data buffer starts at a file offset that is a
 * multiple of it (the header is padded with spaces); a power of two in
 * 8..4096; 0 means 8. tensor_align: every tensor starts at a data offset
 * (and, since data_align is raised to at least tensor_align, at a file
 * offset) that is a multiple of it; a power of two up to 4096, 0 or 1 for
 * packed. The format allows no unowned bytes between tensors, so each gap
 * is a zero-filled U8 tensor named "__padding.N" (with more leading
 * underscores if a tensor of the writer already uses that prefix): readers,
 * the reference included, list these like any tensor. */
typedef struct ts_st_write_options {
    size_t size;          /* sizeof(ts_st_write_options), for growth */
    size_t data_align;
    size_t tensor_align;
} ts_st_write_options;
#define TS_ST_WRITE_OPTIONS_INIT {sizeof(ts_st_write_options), 8, 0}

/* Sets the layout of later saves (copied). TS_ERR_INVALID_ARGUMENT for an
 * alignment out of range; TS_ERR_VERSION for a size too small. */
ts_status ts_st_writer_set_options(ts_st_writer *w, const ts_st_write_options *opts);

/* Writes the file without ever losing the old one: a temporary file in the
 * same folder, fsync, rename over `path`, fsync of the folder. On failure
 * `path` is untouched and the temporary file removed (only a failure of the
 * last step, the folder's sync, reports TS_ERR_IO with the new file in
 * place; the message says so). Canonical layout unless options say
 * otherwise: the reference's header JSON (no spaces, tensors by descending
 * dtype then name, __metadata__ first with sorted keys), padded with spaces
 * so the data starts 8-byte aligned. */
ts_status ts_st_writer_save(ts_st_writer *w, const char *path);
/* The same bytes in memory; the caller frees *out with free(). */
ts_status ts_st_writer_serialize(ts_st_writer *w, void **out, size_t *n);

/* ---------------------------------------------------------------- 5. Upload */

typedef enum ts_st_convert {
    TS_ST_CONVERT_IF_UNSUPPORTED = 0, /* f16/bf16 -> f32 when the device cannot store them */
    TS_ST_CONVERT_NEVER = 1,          /* keep the dtype; TS_ERR_UNSUPPORTED if the device lacks it */
    TS_ST_CONVERT_ALWAYS = 2          /* f16/bf16 -> f32 always */
} ts_st_convert;

typedef struct ts_st_upload_options {
    size_t size;          /* sizeof(ts_st_upload_options), for growth */
    ts_st_convert convert;
    size_t chunk_bytes;   /* bound of each transfer and of each staging buffer; 0: 4 MiB */
    /* Since the second version (callers with a smaller size get the default):
     * threads uploading the tensors of a file or collection, each with its
     * own staging buffer; 0: the online cores; 1: serial. Results are the
     * same whatever the count. Backends other than ref and opencl get one
     * call at a time (conversion still runs in parallel). */
    int threads;
    /* Since the third version: on backends with pinned staging and no
     * mapping (CUDA, HIP), the number of page-locked buffers of
     * chunk_bytes each in the ring through which each thread uploads (one
     * is filled while the others copy); 0: 3, at most 16. With threads
     * left 0 such a backend uploads with one thread. */
    int ring_slots;
    /* Since the fourth version: where the device works on host memory (ref;
     * OpenCL devices with unified host memory, PoCL) a tensor uploaded
     * without conversion may be a private copy-on-write mapping of its bytes
     * in the file instead of a copy (no copy at all; kernels that write it
     * change only their own pages, never the file). 0: wherever possible
     * (tensors of 64 KiB or more from a file opened by path, at an address
     * the device takes in place: see docs/safetensors.md); -1: never, always
     * a copy into memory the device allocates. While such a tensor lives its
     * file must not be truncated in place (replacing it by rename, as
     * ts_st_writer_save does, is safe): as with any mapping, the pages would
     * be gone. */
    int zero_copy;
} ts_st_upload_options;
#define TS_ST_UPLOAD_OPTIONS_INIT {sizeof(ts_st_upload_options), TS_ST_CONVERT_IF_UNSUPPORTED, 0, 0, 0, 0}

/* Creates a tensor on `ctx` holding the file tensor `info` (opts NULL: the
 * defaults). A scalar becomes shape [1]; ranks above TS_MAX_RANK and dtypes
 * without a runtime dtype give TS_ERR_UNSUPPORTED. Data moves in chunks of at
 * most chunk_bytes; conversion uses one staging buffer of that size, so no
 * tensor is ever held twice in host memory. Caller destroys *out. */
ts_status ts_st_upload(ts_context *ctx, const ts_st_tensor_info *info, const ts_st_upload_options *opts, ts_tensor **out);

/* A named set of device tensors (owned by the set). */
typedef struct ts_st_tensor_set ts_st_tensor_set;

/* Uploads every tensor of a file or collection, in name order. On failure
 * nothing is left allocated and the message names the tensor. */
ts_status ts_st_upload_file(ts_context *ctx, const ts_st_file *f, const ts_st_upload_options *opts, ts_st_tensor_set **out);
ts_status ts_st_upload_collection(ts_context *ctx, const ts_st_collection *c, const ts_st_upload_options *opts,
                                  ts_st_tensor_set **out);
/* Destroys the set and its tensors; NULL is a no-op. */
void ts_st_tensor_set_destroy(ts_st_tensor_set *s);
size_t ts_st_tensor_set_count(const ts_st_tensor_set *s);
const char *ts_st_tensor_set_name(const ts_st_tensor_set *s, size_t i);
ts_tensor *ts_st_tensor_set_tensor(const ts_st_tensor_set *s, size_t i);
/* The dtype and shape the tensor had in its file (before any conversion or scalar widening). */
ts_st_dtype ts_st_tensor_set_file_dtype(const ts_st_tensor_set *s, size_t i);
int ts_st_tensor_set_file_shape(const ts_st_tensor_set *s, size_t i, const uint64_t **shape);
/* The tensor named `name`, or NULL. */
ts_tensor *ts_st_tensor_set_find(const ts_st_tensor_set *s, const char *name);

/* Downloads every tensor of the set and saves them to `path` with their file
 * shapes and dtypes (converted back from f32 when the upload converted),
 * streaming in bounded chunks. `metadata` may be NULL; else its
 * __metadata__ is copied. */
ts_status ts_st_save_set(const ts_st_tensor_set *s, const ts_st_file *metadata, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_SAFETENSORS_H */
