/* tessera.h: the public C API of Tessera.
 *
 * Sections:
 *   1. Status codes and error details
 *   2. Data types
 *   3. Kernels: the builder (parameters, tunables, grid and loop tiles, tile operations)
 *   4. Kernels: finished kernels (validation, printing, hashing)
 *   5. Configs (bindings of tunables and backend knobs)
 *   6. Runtime: contexts, devices, tensors, launches
 *
 * Conventions. Every function that can fail returns ts_status (0 success,
 * negative error) and, on failure, sets a per-thread detail message read with
 * ts_last_error(). `ts_x_create(..., ts_x **out)` pairs with `ts_x_destroy`;
 * a failed create leaves *out NULL; destroy(NULL) is a no-op. Strings passed
 * in are copied; strings returned are owned by the object that returned them
 * unless documented otherwise. Nothing aborts on bad input.
 */
#ifndef TESSERA_H
#define TESSERA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TS_VERSION_MAJOR 0
#define TS_VERSION_MINOR 1
#define TS_VERSION_PATCH 0
#define TS_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------- 1. Status */

typedef enum ts_status {
#define TS_STATUS(name, value, text) name = value,
#include "tessera_status.def"
#undef TS_STATUS
} ts_status;

/* "TS_ERR_PARSE" etc.; "TS_UNKNOWN_STATUS" for values not in the list. Static string. */
const char *ts_status_name(ts_status s);
/* One-line description of the status. Static string. */
const char *ts_strerror(ts_status s);
/* Detail message of the last failure on this thread (names the kernel,
 * operation, tensor or file and says why). Valid until the next failing call
 * on this thread. Never NULL. */
const char *ts_last_error(void);
/* Clears the detail message. */
void ts_clear_error(void);

/* ---------------------------------------------------------------- 2. Dtypes */

typedef enum ts_dtype {
    TS_F32 = 0,
    TS_F16 = 1,
    TS_BF16 = 2,
    TS_F64 = 3,
    TS_I32 = 4,
    TS_I64 = 5,
    TS_U8 = 6,
    TS_BOOL = 7,
    TS_I8 = 8,
    TS_I16 = 9,
    TS_F8_E4M3 = 10, /* OCP 8-bit float E4M3 (bias 7, no infinity, max 448; Safetensors F8_E4M3, torch float8_e4m3fn) */
    TS_F8_E5M2 = 11, /* OCP 8-bit float E5M2 (bias 15, IEEE-like, max 57344; Safetensors F8_E5M2) */
    TS_DTYPE_COUNT
} ts_dtype;

/* "f32", "f16", ...; NULL for an invalid dtype. */
const char *ts_dtype_name(ts_dtype d);
/* Size of one element in bytes; 0 for an invalid dtype. */
size_t ts_dtype_size(ts_dtype d);
/* Parses "f32", "bf16", ... Returns TS_ERR_INVALID_ARGUMENT for unknown names. */
ts_status ts_dtype_parse(const char *name, ts_dtype *out);
/* 1 for f32, f16, bf16, f64, f8_e4m3, f8_e5m2 (the 16- and 8-bit floats are
 * storage formats: computed in f32, rounded to nearest even when stored or
 * cast; f8_e4m3 overflows to NaN as it has no infinity, f8_e5m2 to inf). */
int ts_dtype_is_float(ts_dtype d);

/* ---------------------------------------------------------------- 3. Builder
 *
 * A kernel has parameters (tensors with dtype, rank 1..4 and sizes that are
 * size symbols or fixed numbers; scalars), tunables (power-of-two block sizes
 * with a range and a default), a grid of 1..3 tile dimensions (one program
 * instance per tile), inner sequential tile loops with loop-carried values,
 * and operations on tile values in SSA form.
 *
 * A tile value has a dtype and a shape: a list of dims, each the tile of a
 * tile variable (size = that tile's block size) or 1 (broadcastable).
 * Semantics are *logical*: a tile at the edge of its extent holds only its
 * valid elements. Loads pad the rest with a fill value that no result can
 * observe, reductions and dot ignore the padding, stores write only valid
 * elements. Elementwise binary ops broadcast as numpy does (shapes aligned on
 * the right, a dim of 1 stretches).
 *
 * The builder has a sticky error: once an operation fails, later ones return
 * TS_NONE and ts_builder_finish() returns the first error with its message.
 * Handles (ts_size, ts_tile, ts_val, ts_param) are small integers valid only
 * for the builder that made them; TS_NONE (-1) is "none" or "failed".
 */

#define TS_NONE (-1)
#define TS_MAX_RANK 4
#define TS_MAX_GRID 3

typedef int32_t ts_size;   /* a size symbol ("M") or a fixed size */
typedef int32_t ts_param;  /* a kernel parameter, tensor or scalar */
typedef int32_t ts_tile;   /* a tile variable (grid or loop) */
typedef int32_t ts_val;    /* an SSA value: a tile or a scalar (rank-0 tile) */

typedef struct ts_builder ts_builder;
typedef struct ts_kernel ts_kernel;

typedef enum ts_unary_op {
    TS_NEG, TS_ABS, TS_EXP, TS_LOG, TS_SQRT, TS_RSQRT, TS_TANH, TS_SIGMOID,
    TS_ERF, TS_RELU, TS_GELU, TS_SILU, TS_SIN, TS_COS, TS_NOT,
    TS_UNARY_COUNT
} ts_unary_op;

typedef enum ts_binary_op {
    TS_ADD, TS_SUB, TS_MUL, TS_DIV, TS_MAX, TS_MIN, TS_POW,
    TS_LT, TS_LE, TS_GT, TS_GE, TS_EQ, TS_NE, TS_AND, TS_OR,
    TS_MOD, /* integer remainder, truncating like TS_DIV (x - (x / y) * y); by zero gives 0 */
    TS_BINARY_COUNT
} ts_binary_op;

typedef enum ts_reduce_op {
    TS_RED_SUM, TS_RED_MAX, TS_RED_MIN, TS_RED_MEAN, TS_RED_ARGMAX,
    TS_REDUCE_COUNT
} ts_reduce_op;

/* How one dimension of a tensor is indexed by a load, store or atomic. */
/* Any tile may index any dim. Every access is masked by the validity of
 * the tiles it runs over and by 0 <= index < the dim's size: a masked load
 * reads the fill value, a masked store or atomic is skipped. */
typedef enum ts_index_kind {
    TS_IDX_TILE = 0,   /* the elements of a tile variable: adds a dim */
    TS_IDX_POINT = 1,  /* the first index of a tile variable: no dim (use with block-1 tiles) */
    TS_IDX_CONST = 2,  /* a fixed index: no dim */
    TS_IDX_SHIFT = 3,  /* tile + `val` (a rank-0 integer value, may be negative): adds the tile's dim */
    TS_IDX_SCALAR = 4, /* `val`, a rank-0 integer value: no dim */
    TS_IDX_VALUE = 5   /* `val`, an integer tile value, element by element: adds val's dims */
} ts_index_kind;

typedef struct ts_index {
    ts_index_kind kind;
    int32_t tile;   /* for TILE, POINT and SHIFT */
    int64_t value;  /* for CONST */
    ts_val val;     /* for SHIFT, SCALAR and VALUE (read for those kinds only) */
} ts_index;

#define TS_AT(t) ((ts_index){TS_IDX_TILE, (t), 0, TS_NONE})
#define TS_POINT(t) ((ts_index){TS_IDX_POINT, (t), 0, TS_NONE})
#define TS_CONST_IDX(v) ((ts_index){TS_IDX_CONST, TS_NONE, (v), TS_NONE})
#define TS_AT_SHIFT(t, off) ((ts_index){TS_IDX_SHIFT, (t), 0, (off)})
#define TS_AT_SCALAR(v) ((ts_index){TS_IDX_SCALAR, TS_NONE, 0, (v)})
#define TS_AT_VALUE(v) ((ts_index){TS_IDX_VALUE, TS_NONE, 0, (v)})

/* Scalar positions of a tile (rank-0 i32 values; ts_tile_pos()). */
typedef enum ts_tile_pos {
    TS_POS_BEGIN = 0, /* first global index of the current tile */
    TS_POS_END = 1,   /* min(begin + block, end of its range): one past its last valid index */
    TS_POS_ID = 2     /* which tile: the program index of a grid tile, the iteration of a loop */
} ts_pos_kind;

/* Creates a builder for a kernel named `name` (an identifier). */
ts_status ts_builder_create(const char *name, ts_builder **out);
void ts_builder_destroy(ts_builder *b);

/* Size symbol `name` ("M"); the same name returns the same symbol. Bound at
 * launch from the shapes of the tensors that use it. */
ts_size ts_size_sym(ts_builder *b, const char *name);
/* A fixed size (>= 1). */
ts_size ts_size_fixed(ts_builder *b, int64_t n);

/* Tensor parameter of rank 1..4 with dims `sizes`. Strides are given at
 * launch, so transposed and sliced views work. */
ts_param ts_param_tensor(ts_builder *b, const char *name, ts_dtype dtype, int rank, const ts_size *sizes);
/* Scalar parameter; use its value with ts_scalar(). */
ts_param ts_param_scalar(ts_builder *b, const char *name, ts_dtype dtype);

/* Tunable block size: a power of two in [min, max], default `def`. */
ts_status ts_tunable(ts_builder *b, const char *name, int64_t min, int64_t max, int64_t def);

/* Grid tile over `extent` with the block size of tunable `block`, or, with
 * block NULL, one tile covering the whole extent (block = next power of two
 * of the extent at launch). 1..3 grid tiles, declared before any operation. */
ts_tile ts_grid_tile(ts_builder *b, const char *name, ts_size extent, const char *block);
/* Grid over `extent` with block 1: one program per index (use with TS_POINT). */
ts_tile ts_grid_point(ts_builder *b, const char *name, ts_size extent);

/* Inner sequential tile loop over `extent` with tunable block `block` (NULL:
 * the whole extent in one step). `ncarry` loop-carried values start as
 * `init`; inside the loop their current values are written to `carried`.
 * Returns the loop's tile variable. Close with ts_loop_end. */
ts_tile ts_loop_begin(ts_builder *b, const char *name, ts_size extent, const char *block,
                      int ncarry, const ts_val *init, ts_val *carried);
/* A loop over the sub-range lo .. hi (rank-0 integer values computed
 * before the loop, e.g. loaded from a tensor or another tile's end) in steps
 * of tunable `block` (required). Its tiles begin at lo, lo + block, ...; the
 * last is cut at hi; an empty range (hi <= lo) runs no iteration. */
ts_tile ts_loop_begin_range(ts_builder *b, const char *name, ts_val lo, ts_val hi, const char *block, int ncarry, const ts_val *init,
                            ts_val *carried);
/* Ends the innermost loop; `yields` (ncarry of them, same types as init)
 * become the carried values of the next step; after the loop their final
 * values are written to `results`. */
ts_status ts_loop_end(ts_builder *b, const ts_val *yields, ts_val *results);

/* Masked load of tensor `t` at `idx` (one per tensor dim). Padding lanes
 * hold `fill`. The result's dims are the TILE indices, in order. */
ts_val ts_load(ts_builder *b, ts_param t, const ts_index *idx, double fill);
/* Masked store of `v` (shape = the TILE indices, or broadcastable to them). */
ts_status ts_store(ts_builder *b, ts_param t, const ts_index *idx, ts_val v);
/* atomic t[idx] += v, masked. */
ts_status ts_atomic_add(ts_builder *b, ts_param t, const ts_index *idx, ts_val v);
/* Gather: table[ids[...], cols] where `ids` is an integer tile of shape
 * [A] and `col` indexes the table's last dim (rank-2 tables). Result [A, col]. */
ts_val ts_gather(ts_builder *b, ts_param table, ts_val ids, ts_index col, double fill);

/* Value of a scalar parameter (a rank-0 value). */
ts_val ts_scalar(ts_builder *b, ts_param p);
/* Constant tile of `dtype` with dims `dims` (tile variables, or TS_NONE for 1). rank 0 for a scalar. */
ts_val ts_full(ts_builder *b, ts_dtype dtype, int rank, const ts_tile *dims, double value);
ts_val ts_zeros(ts_builder *b, ts_dtype dtype, int rank, const ts_tile *dims);
/* Global indices of tile variable `t` (i32, shape [t]): begin + 0..block-1. */
ts_val ts_arange(ts_builder *b, ts_tile t);
/* A scalar position of tile `t` (rank-0 i32): begin, end or id (ts_pos_kind). */
ts_val ts_tile_pos(ts_builder *b, ts_tile t, ts_pos_kind which);
/* The value of size `s` at launch (rank-0 i32). */
ts_val ts_size_value(ts_builder *b, ts_size s);
/* Counter-based random numbers (Philox 4x32-10) of shape `tiles` (ntiles
 * 0..4, tile variables or TS_NONE for a dim of 1): element i's counter is
 * its row-major global index over the tiles' extents (c0 = low word, c1 =
 * high word, c2 = c3 = 0), the key the rank-0 integer `seed` (k0 = low
 * word, k1 = high word); the result depends on neither blocks, config nor
 * backend. ts_rand: f32 in [0, 1), (word0 >> 8) * 2^-24; ts_randint: i32,
 * word0's bits. (Vulkan has no 64-bit integers in our GLSL: there the seed
 * is its low 32 bits sign-extended, so seeds in the i32 range are
 * bit-identical on every backend.) */
ts_val ts_rand(ts_builder *b, ts_val seed, int ntiles, const ts_tile *tiles);
/* Inclusive scans along `axis` over the valid elements only (a tile's
 * padding never enters, in either direction); `reverse` scans from the last
 * valid element. Same dtype and dims as x (not bool); integer sums and
 * products wrap, max/min propagate NaN. */
typedef enum ts_scan_op { TS_SCAN_SUM, TS_SCAN_PROD, TS_SCAN_MAX, TS_SCAN_MIN, TS_SCAN_COUNT } ts_scan_op;
ts_val ts_scan(ts_builder *b, ts_scan_op op, ts_val x, int axis, int reverse);
ts_val ts_randint(ts_builder *b, ts_val seed, int ntiles, const ts_tile *tiles);

ts_val ts_unary(ts_builder *b, ts_unary_op op, ts_val x);
ts_val ts_binary(ts_builder *b, ts_binary_op op, ts_val x, ts_val y);
/* where(cond, x, y), all three broadcast. */
ts_val ts_select(ts_builder *b, ts_val cond, ts_val x, ts_val y);
ts_val ts_cast(ts_builder *b, ts_val x, ts_dtype to);
/* Inserts a dim of 1 before position `axis` (0..rank). */
ts_val ts_expand_dims(ts_builder *b, ts_val x, int axis);
/* Broadcasts `x` to the dims `dims` (TS_NONE entries are 1). */
ts_val ts_broadcast(ts_builder *b, ts_val x, int rank, const ts_tile *dims);
/* Transpose of a rank-2 tile: [A, B] -> [B, A]. */
ts_val ts_transpose(ts_builder *b, ts_val x);
/* Reduction along `axis`. keepdim 1 keeps it as a dim of 1. argmax gives i32
 * global indices along the axis (the first maximum). */
ts_val ts_reduce(ts_builder *b, ts_reduce_op op, ts_val x, int axis, int keepdim);
/* Tile matmul [M,K] x [K,N] (+ acc [M,N] when acc != TS_NONE), f32 accumulation. */
ts_val ts_dot(ts_builder *b, ts_val x, ts_val y, ts_val acc);

/* Gives the last op a readable name (kept by the printer; not in the hash). */
ts_status ts_name(ts_builder *b, ts_val v, const char *name);

/* Validates and finishes the kernel. On success *out owns a new immutable
 * kernel (free with ts_kernel_destroy) and the builder may be destroyed. On
 * failure returns the first error; ts_last_error() names the kernel, the
 * operation and the reason. */
ts_status ts_builder_finish(ts_builder *b, ts_kernel **out);

/* ---------------------------------------------------------------- 4. Kernels */

void ts_kernel_destroy(ts_kernel *k);
const char *ts_kernel_name(const ts_kernel *k);
/* Structural hash (ops, types, shapes, tunables; not names). */
uint64_t ts_kernel_hash(const ts_kernel *k);
/* Text form of the kernel (the tile language). Caller frees with free(). */
char *ts_kernel_print(const ts_kernel *k);
/* Parses the tile language (see docs/language.md). `filename` is used in
 * messages ("file:line:col: ..."). */
ts_status ts_kernel_parse(const char *text, const char *filename, ts_kernel **out);
/* Structural equality (same hash and same structure). */
int ts_kernel_equal(const ts_kernel *a, const ts_kernel *b);

int ts_kernel_param_count(const ts_kernel *k);
typedef struct ts_param_info {
    const char *name;
    int is_tensor;
    ts_dtype dtype;
    int rank;
    const char *size_names[TS_MAX_RANK]; /* NULL for fixed sizes */
    int64_t fixed_sizes[TS_MAX_RANK];    /* 0 for symbolic sizes */
} ts_param_info;
ts_status ts_kernel_param(const ts_kernel *k, int i, ts_param_info *out);

int ts_kernel_tunable_count(const ts_kernel *k);
typedef struct ts_tunable_info {
    const char *name;
    int64_t min, max, def;
} ts_tunable_info;
ts_status ts_kernel_tunable(const ts_kernel *k, int i, ts_tunable_info *out);

/* ---------------------------------------------------------------- 5. Configs
 *
 * A config binds tunables (by name) and backend knobs:
 *   threads   work-group size (power of two, 1..1024)
 *   vec       load/store vector width (1, 2, 4, 8, 16)
 *   unroll    unroll factor of inner loops (1..8)
 *   stage     stage dot operands through local/shared memory (0/1)
 *   micro_m, micro_n  register micro-tile of dot per thread
 *   tensor_cores      f16/bf16 dot on tensor cores (0..2; default: on for CUDA
 *                     (mma.sync) and HIP (MFMA on CDNA), off elsewhere; on
 *                     OpenCL, test forms: 1 emulates mma.sync, 2 MFMA; on CUDA
 *                     2 is as 1, on HIP 1 and 2 are MFMA)
 *   warps             dot kernels: 32 x warps threads per program (1..32; MFMA
 *                     needs whole 64-lane wavefronts: an even warps)
 *   stages            tensor-core dots in a k loop (CUDA): k blocks in flight
 *                     (cp.async ring of shared buffers, 1..4; 1: one block at
 *                     a time; default 3 where the pipeline applies)
 *   col_threads       at most this many threads share one row of a tile (1: each
 *                     thread owns whole rows, the CPU-friendly form; default 1024)
 *   group_m           grid order: groups of rows of programs for cache reuse
 * Missing entries take the kernel's defaults. */
typedef struct ts_config ts_config;

ts_status ts_config_create(ts_config **out);
void ts_config_destroy(ts_config *c);
ts_status ts_config_set(ts_config *c, const char *key, int64_t value);
/* Returns 1 and writes *value if `key` is set. */
int ts_config_get(const ts_config *c, const char *key, int64_t *value);
int ts_config_count(const ts_config *c);
const char *ts_config_key(const ts_config *c, int i);
/* "BLOCK_M=64,threads=128" */
ts_status ts_config_parse(const char *text, ts_config **out);
/* Caller frees with free(). Keys sorted. */
char *ts_config_format(const ts_config *c);
ts_status ts_config_copy(const ts_config *c, ts_config **out);
/* Checks that every key is a tunable of `k` or a known knob and every value is in range. */
ts_status ts_config_check(const ts_config *c, const ts_kernel *k);

/* ---------------------------------------------------------------- 6. Runtime */

typedef struct ts_context ts_context;
typedef struct ts_tensor ts_tensor;

/* Number of registered backends (built in and plugins). */
int ts_backend_count(void);
const char *ts_backend_name(int i);
/* 1 if the backend has at least one usable device; else 0 and, if `why` is
 * not NULL, the reason (static or thread-local storage). */
int ts_backend_available(const char *name, const char **why);
int ts_backend_device_count(const char *name);

/* Opens device `device` of `backend` ("ref", "opencl", ...; NULL or "auto":
 * $TESSERA_BACKEND, else the best available). */
ts_status ts_context_create(const char *backend, int device, ts_context **out);
void ts_context_destroy(ts_context *ctx);
const char *ts_context_backend(const ts_context *ctx);
const char *ts_context_device_name(const ts_context *ctx);
/* Readable fingerprint id ("opencl:pocl:cpu-...") and its 64-bit hash. */
const char *ts_context_fingerprint(const ts_context *ctx, uint64_t *hash);

typedef struct ts_device_caps {
    int max_group_size;       /* work-items per group */
    int64_t shared_mem_bytes; /* local/shared memory per group */
    int subgroup_size;        /* 0 when subgroup ops are not usable */
    int compute_units;
    int64_t global_mem_bytes;
    int64_t max_buffer_bytes;
    uint32_t dtype_mask;      /* bit (1 << ts_dtype) when storage is supported */
    uint32_t native_dtype_mask; /* bit when arithmetic is native (else emulated in f32) */
    int has_atomics_f32;
} ts_device_caps;
const ts_device_caps *ts_context_caps(const ts_context *ctx);
int ts_device_supports_dtype(const ts_context *ctx, ts_dtype d);

/* Contiguous tensor on the context's device. Contents undefined. */
ts_status ts_tensor_create(ts_context *ctx, ts_dtype dtype, int rank, const int64_t *shape, ts_tensor **out);
/* A view sharing t's storage: `shape`, `strides` (in elements) and element `offset`. */
ts_status ts_tensor_view(ts_tensor *t, int rank, const int64_t *shape, const int64_t *strides,
                         int64_t offset, ts_tensor **out);
/* Frees the tensor; the storage lives until its last view is destroyed. */
void ts_tensor_destroy(ts_tensor *t);
ts_dtype ts_tensor_dtype(const ts_tensor *t);
int ts_tensor_rank(const ts_tensor *t);
const int64_t *ts_tensor_shape(const ts_tensor *t);
const int64_t *ts_tensor_strides(const ts_tensor *t);
int64_t ts_tensor_numel(const ts_tensor *t);
/* Copies host data (packed, row-major, in the tensor's dtype) into the tensor / out of it. */
ts_status ts_tensor_write(ts_tensor *t, const void *host, size_t bytes);
ts_status ts_tensor_read(const ts_tensor *t, void *host, size_t bytes);
/* Writes `bytes` of packed data at `byte_offset` into a contiguous tensor
 * (for streaming uploads in chunks). */
ts_status ts_tensor_write_range(ts_tensor *t, size_t byte_offset, const void *host, size_t bytes);
/* Context the tensor lives on. */
ts_context *ts_tensor_context(const ts_tensor *t);

/* A launch argument: a tensor or a scalar. */
typedef struct ts_arg {
    ts_tensor *tensor;  /* NULL for a scalar */
    double f;           /* float scalars */
    int64_t i;          /* integer scalars */
} ts_arg;
#define TS_ARG_TENSOR(t) ((ts_arg){(t), 0.0, 0})
#define TS_ARG_F(x) ((ts_arg){NULL, (x), 0})
#define TS_ARG_I(x) ((ts_arg){NULL, 0.0, (x)})

/* Runs `k` with `args` (one per parameter, in order). `cfg` NULL: the tuning
 * database's config for this device and shape, else the kernel's defaults.
 * Compiles on first use (binary cache). Blocks until done. If `ms` is not
 * NULL, writes the device time in milliseconds. */
ts_status ts_launch(ts_context *ctx, const ts_kernel *k, const ts_config *cfg, const ts_arg *args,
                    int nargs, double *ms);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_H */
