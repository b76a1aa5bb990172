/* ir.h: the tile IR shared by the builder, validator, printer, parser,
 * reference executor and code generators. Internal (not installed).
 *
 * A kernel is a flat list of operations in program order. Inner loops are
 * bracketed by TS__OP_LOOP_BEGIN / TS__OP_LOOP_END; a loop's body is the ops
 * between them. Values are SSA: each is defined once, by an op result, a
 * loop-carried argument (defined at LOOP_BEGIN) or a loop result (defined at
 * LOOP_END). A value's scope is the loop it was defined in (-1: top level).
 */
#ifndef TS_IR_H
#define TS_IR_H

#include "ts_internal.h"

#define TS__MAX_CARRY 16
#define TS__MAX_NAME 64
#define TS__BLOCK_WHOLE (-2) /* tile covers its whole extent (block = next pow2) */
#define TS__BLOCK_POINT (-3) /* block 1, one program / step per index */

typedef enum ts__op_kind {
    TS__OP_LOAD,
    TS__OP_STORE,
    TS__OP_ATOMIC_ADD,
    TS__OP_GATHER,
    TS__OP_SCALAR,
    TS__OP_FULL,
    TS__OP_ARANGE,
    TS__OP_UNARY,
    TS__OP_BINARY,
    TS__OP_SELECT,
    TS__OP_CAST,
    TS__OP_EXPAND_DIMS,
    TS__OP_BROADCAST,
    TS__OP_REDUCE,
    TS__OP_DOT,
    TS__OP_TRANSPOSE,
    TS__OP_LOOP_BEGIN,
    TS__OP_LOOP_END,
    TS__OP_TILE_POS,  /* sub: ts_tile_pos of `tile`; rank-0 i32 */
    TS__OP_SIZE,      /* axis: the size index; rank-0 i32 */
    TS__OP_RAND,      /* sub 0 rand (f32), 1 randint (i32); in[0] the seed; dims: idx[0..bdims).tile */
    TS__OP_SCAN,      /* sub: ts_scan_op; axis; keepdim: reverse */
    TS__OP_KIND_COUNT
} ts__op_kind;

typedef struct ts__size {
    char name[TS__MAX_NAME]; /* "" for a fixed size */
    int64_t fixed;           /* > 0 for fixed sizes */
} ts__size;

typedef struct ts__param {
    char name[TS__MAX_NAME];
    int is_tensor;
    ts_dtype dtype;
    int rank;
    ts_size sizes[TS_MAX_RANK];
} ts__param;

typedef struct ts__tunable {
    char name[TS__MAX_NAME];
    int64_t min, max, def;
} ts__tunable;

typedef struct ts__tile {
    char name[TS__MAX_NAME];
    ts_size extent;
    int block;       /* tunable index, TS__BLOCK_WHOLE or TS__BLOCK_POINT */
    int is_grid;
    int loop_op;     /* index of its LOOP_BEGIN (-1 for grid tiles) */
    int ranged;      /* a loop over lo .. hi (its LOOP_BEGIN's in[0], in[1]); extent is TS_NONE */
} ts__tile;

typedef struct ts__value {
    char name[TS__MAX_NAME]; /* "" when unnamed */
    ts_dtype dtype;
    int rank;                /* 0 for scalars */
    ts_tile dims[TS_MAX_RANK]; /* tile id, or TS_NONE for a dim of 1 */
    int def_op;              /* defining op */
    int scope;               /* LOOP_BEGIN op index of the innermost enclosing loop, -1 top */
} ts__value;

typedef struct ts__op {
    ts__op_kind kind;
    int sub;                 /* ts_unary_op / ts_binary_op / ts_reduce_op */
    ts_dtype dtype;          /* FULL, CAST */
    ts_val result;           /* TS_NONE for STORE, ATOMIC_ADD, LOOP_BEGIN */
    ts_val in[3];            /* operands */
    ts_param param;          /* LOAD, STORE, ATOMIC_ADD, GATHER, SCALAR */
    ts_index idx[TS_MAX_RANK];
    double value;            /* fill for LOAD/GATHER, constant for FULL */
    int axis, keepdim;       /* REDUCE, EXPAND_DIMS */
    /* loops */
    ts_tile tile;            /* LOOP_BEGIN / LOOP_END: the loop's tile; ARANGE, TILE_POS: its tile */
                             /* LOOP_BEGIN of a ranged loop: in[0] = lo, in[1] = hi (rank-0 integers) */
    int ncarry;
    ts_val init[TS__MAX_CARRY];    /* LOOP_BEGIN */
    ts_val carried[TS__MAX_CARRY]; /* LOOP_BEGIN: values inside the loop */
    ts_val yields[TS__MAX_CARRY];  /* LOOP_END */
    ts_val results[TS__MAX_CARRY]; /* LOOP_END: values after the loop */
    int match;               /* LOOP_BEGIN <-> LOOP_END partner */
    int bdims;               /* BROADCAST: rank of target; dims in idx[i].tile */
} ts__op;

typedef struct ts__kir {
    char name[TS__MAX_NAME];
    ts__size *sizes; int nsizes;
    ts__param *params; int nparams;
    ts__tunable *tunables; int ntunables;
    ts__tile *tiles; int ntiles;
    ts__value *values; int nvalues;
    ts__op *ops; int nops;
    int ngrid;
    ts_tile grid[TS_MAX_GRID];
} ts__kir;

struct ts_kernel {
    ts__kir ir;
    uint64_t hash;
};

/* ---- IR helpers (ir.c) */
void ts__kir_free(ts__kir *ir);
ts_status ts__kir_copy(const ts__kir *src, ts__kir *dst);
const char *ts__op_kind_name(ts__op_kind k);
const char *ts__unary_name(ts_unary_op op);
const char *ts__binary_name(ts_binary_op op);
const char *ts__reduce_name(ts_reduce_op op);
int ts__binary_is_compare(int op);
/* Dtype of a binary op's result given the operand dtype. */
ts_dtype ts__binary_result_dtype(int op, ts_dtype in);
uint64_t ts__kir_hash(const ts__kir *ir);
/* 1 when the kernel has a dot (its layout is a register micro-tile; the
 * row knobs threads, vec, col_threads, nt do not apply). */
int ts__kir_has_dot(const ts__kir *ir);
/* Finds by name; -1 when absent. */
int ts__find_tunable(const ts__kir *ir, const char *name);
int ts__find_param(const ts__kir *ir, const char *name);
int ts__find_size(const ts__kir *ir, const char *name);
/* Validates a whole IR (also used on parsed kernels); names the op on failure. */
ts_status ts__kir_validate(const ts__kir *ir);

/* Philox 4x32-10 (Salmon et al., SC'11): ctr is replaced by its output. */
void ts__philox4x32_10(uint32_t ctr[4], uint32_t k0, uint32_t k1);

/* ---- Concrete plan for one launch (plan.c): a config and the tensors'
 * sizes make every block size concrete. Shared by the executor and codegen. */
typedef struct ts__plan {
    int64_t *size_values;  /* [nsizes]: bound sizes */
    int64_t *block;        /* [ntiles]: concrete block size per tile */
    int64_t grid[TS_MAX_GRID]; /* programs per grid dim */
    /* backend knobs (defaults filled) */
    int threads, vec, unroll, stage, micro_m, micro_n, tensor_cores, group_m;
    int col_threads; /* at most this many threads share a row (1: each thread owns whole rows) */
    int nt;          /* 1: whole-tile vector stores bypass the cache (non-temporal) where the target has them */
    /* tensor_cores: 1 on, 0 off, -1 (no knob) where the target has them (CUDA, HIP) for f16/bf16 dots;
     * 2: the MFMA lowering (HIP; OpenCL: its emulation; CUDA: as 1).
     * warps: dot kernels run 32 x warps threads per program; 0 (no knob): the micro-tile's count */
    int warps;
    /* stages: tensor-core dots in a k loop: k blocks in flight through a ring of
     * shared buffers (cp.async pipeline, 1..4); 0 (no knob): the emitter's default */
    int stages;
} ts__plan;

void ts__plan_free(ts__plan *p);
/* Binds sizes from tensor shapes, checks them, makes blocks concrete. */
ts_status ts__plan_make(const ts__kir *ir, const ts_config *cfg, const int64_t *const *shapes, ts__plan *out);
int64_t ts__next_pow2(int64_t v);
/* Number of elements of value v under the plan (product of block sizes). */
int64_t ts__value_numel(const ts__kir *ir, const ts__plan *p, ts_val v);
/* Concrete dims of value v. */
void ts__value_shape(const ts__kir *ir, const ts__plan *p, ts_val v, int64_t *shape);

/* ---- Reference executor (backends/ref/executor.c). One tensor argument as
 * host memory: base pointer (already at the view's offset), shape, strides. */
typedef struct ts__host_tensor {
    void *base;
    ts_dtype dtype;
    int rank;
    int64_t shape[TS_MAX_RANK];
    int64_t strides[TS_MAX_RANK];
} ts__host_tensor;

typedef struct ts__host_arg {
    int is_tensor;
    ts__host_tensor t;
    double f;
    int64_t i;
} ts__host_arg;

ts_status ts__execute(const ts_kernel *k, const ts__plan *p, const ts__host_arg *args);

#endif
