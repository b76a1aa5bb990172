/* npy.h: numpy's .npy format, read strictly and written as numpy writes it
 * (prefix ts__npy_). Internal: used by `tessera run --inputs/--outputs`,
 * the tests and the fuzz target; not installed.
 *
 * What is accepted (see docs/language.md, "Running a kernel on your own
 * data"): versions 1.0, 2.0 and 3.0; a header that is exactly the dict
 * {'descr': ..., 'fortran_order': False, 'shape': (...)} (keys in any
 * order, each once, Python literal syntax) padded with spaces and a final
 * '\n' to a multiple of 16 bytes from the start of the file; little-endian
 * C-order data of one of the dtypes of ts__npy_descr_dtype; rank 0 ..
 * TS_MAX_RANK; exactly header + data bytes. Everything else is an error
 * status whose message names the file and the rule it broke. */
#ifndef TS_NPY_H
#define TS_NPY_H

#include "ts_internal.h"

#include <stddef.h>
#include <stdint.h>

/* Longest file ts__npy_load reads (a tensor this large cannot be a kernel input here). */
#define TS__NPY_MAX_FILE ((size_t)1 << 36)

typedef struct ts__npy {
    ts_dtype dtype;
    int rank;                     /* 0 .. TS_MAX_RANK */
    int64_t shape[TS_MAX_RANK];   /* row-major (C order) */
    int64_t numel;
    size_t nbytes;                /* numel * ts_dtype_size(dtype) */
    const void *data;             /* nbytes bytes: into the parsed buffer, or into `owned` */
    int version;                  /* 1, 2 or 3 */
    void *owned;                  /* the file's bytes when read by ts__npy_load */
} ts__npy;

/* Parses the .npy bytes p[0..n). On success *out describes them and
 * out->data points into p (nothing is owned; p must outlive the use). On
 * failure *out is zeroed and the message starts with `what` (a file name). */
ts_status ts__npy_parse(const char *what, const void *p, size_t n, ts__npy *out);

/* Reads and parses the file at path (at most TS__NPY_MAX_FILE bytes);
 * out->owned holds its bytes until ts__npy_free. TS_ERR_NOT_FOUND when the
 * file does not exist. */
ts_status ts__npy_load(const char *path, ts__npy *out);
void ts__npy_free(ts__npy *a);

/* The numpy dtype string for a Tessera dtype ("<f4", "|b1"); NULL for bf16,
 * which numpy has no dtype for. */
const char *ts__npy_dtype_descr(ts_dtype d);
/* The Tessera dtype of a descr; TS_ERR_UNSUPPORTED with a message saying
 * why otherwise (big-endian, a dtype this build has no type for, a
 * structured or object dtype). */
ts_status ts__npy_descr_dtype(const char *what, const char *descr, ts_dtype *out);

/* The bytes of a .npy file (version 1.0, or 2.0 when the header needs more
 * than 65535 bytes; the header byte for byte as numpy's np.save writes it)
 * holding data[0..nbytes) of dtype d and the given shape, C order. Caller
 * frees *out. TS_ERR_UNSUPPORTED for bf16, TS_ERR_INVALID_ARGUMENT when
 * nbytes is not the shape's size. */
ts_status ts__npy_serialize(ts_dtype d, int rank, const int64_t *shape, const void *data, size_t nbytes, void **out, size_t *n);
/* ts__npy_serialize, written atomically (ts__write_file_atomic) to path. */
ts_status ts__npy_save(const char *path, ts_dtype d, int rank, const int64_t *shape, const void *data, size_t nbytes);

/* "(3, 4)", "(5,)", "()" into buf. */
void ts__npy_shape_text(int rank, const int64_t *shape, char *buf, size_t n);

#endif
