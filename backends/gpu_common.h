/* gpu_common.h: what the CUDA and HIP backends share: a disk cache of
 * device binaries (the OpenCL backend's file format: magic, key, size,
 * payload, checksum; written atomically; anything that fails a check is a
 * miss), dlopen over a list of library names, and the runtime compilers for
 * a named arch, usable without a device (tests, `tessera compile`).
 * Internal, not installed. */
#ifndef TS_GPU_COMMON_H
#define TS_GPU_COMMON_H

#include "ts_internal.h"

#include <stddef.h>
#include <stdint.h>

/* Path of the cache entry `<prefix>-<key>.<ext>` under $TESSERA_CACHE_DIR/bin
 * (empty string when there is no cache dir). */
void ts__bincache_path(const char *prefix, const char *ext, uint64_t key, char *buf, size_t n);
/* Reads a valid entry (8-byte magic, key match, checksum); returns 1 and a
 * malloc'ed payload, or 0 (a miss: absent, short, corrupt, other key). */
int ts__bincache_load(const char *path, const char magic[8], uint64_t key, char **data, size_t *n);
/* Writes an entry atomically; failures are ignored (the cache is an optimization). */
void ts__bincache_save(const char *path, const char magic[8], uint64_t key, const void *data, size_t n);

/* dlopen (RTLD_NOW | RTLD_LOCAL) of the first name that loads; on failure
 * writes the names tried and the last dlerror into why. */
void *ts__dlopen_first(const char *const *names, int count, char *why, size_t whylen);

/* NVRTC: compiles CUDA source for `arch`. "sm_XY" gives a CUBIN, "compute_XY"
 * PTX (NUL-terminated). TS_ERR_UNAVAILABLE when NVRTC cannot be loaded,
 * TS_ERR_COMPILE with the log (and *log) when the source does not build.
 * Caller frees *out and *log (either may be NULL on return). */
ts_status ts__nvrtc_build(const char *source, const char *arch, char **out, size_t *out_size, char **log);
/* PTX for "sm_XY" (compiled as compute_XY): for checking with ptxas. */
ts_status ts__cuda_compile_for_arch(const char *source, const char *arch, char **ptx, char **log);
/* "12.4": the NVRTC version, or NULL when NVRTC cannot be loaded (why set). */
const char *ts__nvrtc_version(char *why, size_t whylen);

/* hiprtc: compiles HIP source to a code object for `arch` ("gfx90a"). */
ts_status ts__hip_compile_for_arch(const char *source, const char *arch, char **code, size_t *code_size, char **log);
/* non-NULL when hiprtc can be loaded (why set otherwise) */
const char *ts__hiprtc_available(char *why, size_t whylen);

#endif
