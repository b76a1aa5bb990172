/* dialect.h: what differs between the C-like targets, as a small table plus
 * leaf strings. The lowering in emit_c.c is written once against this. */
#ifndef TS_CODEGEN_DIALECT_H
#define TS_CODEGEN_DIALECT_H

#include "codegen.h"

/* How 128-bit chunks move on targets without vector types. */
enum { TS__VMEM_NONE = 0, TS__VMEM_PTR = 1 /* *(const ts_f4 *)(p + o) */, TS__VMEM_VIEW = 2 /* p4_name[o >> 2]: a vec4 view of the buffer */ };

typedef struct ts__dialect {
    ts_dialect id;
    const char *prelude;       /* helper functions and types, emitted first */
    const char *kernel_qual;   /* "__kernel void", "extern \"C\" __global__ void" */
    const char *global_ptr;    /* "__global", "" */
    const char *local_decl;    /* "__local", "__shared__" */
    const char *barrier;       /* "barrier(CLK_LOCAL_MEM_FENCE);" */
    const char *tid;           /* local thread index expression */
    const char *group_id[3];   /* program index along each grid dim */
    const char *i64;           /* 64-bit integer type name */
    const char *unroll;        /* "#pragma unroll" or "" */
    /* math function names (f32) */
    const char *exp_, *log_, *sqrt_, *rsqrt_, *tanh_, *erf_, *sin_, *cos_, *pow_, *fabs_;
    int has_vector_types;      /* float4 etc. with vloadN / mad */
    int native_half_loads;     /* vload_half / vstore_half; else the prelude's ts_f16_to_f32 / ts_f32_to_f16 on 16-bit words */
    int nt_stores;             /* the prelude's TS_NT_STORE(N, v, p): the config knob nt means something */
    const char *restrict_;     /* pointer qualifier of kernel buffers: "restrict", "__restrict__" */
    const char *atomic_add_i32; /* int atomic add on a global pointer: "atomic_add", "atomicAdd" */
    int max_private;           /* private elements per thread before a config is refused (0: the emitter's default) */
    /* Leaves for targets that are not C (GLSL). Each defaults to the C
     * spelling when 0 / NULL, so the C-like tables need not set them. */
    int function_casts;        /* T(x) instead of (T)x */
    const char *flag_type;     /* type of the emitter's condition variables (ok_, own_): "bool"; default "int" */
    const char *reg_u8;        /* register type of u8/bool values: "uint"; default "uchar" */
    const char *mem_u8, *mem_u16; /* element types of 8/16-bit tensors: "uint8_t", "uint16_t"; default "uchar", "ushort" */
    const char *mem_i8, *mem_i16; /* ... of i8/i16 tensors: "int8_t", "signed char"; default "char", "short" */
    const char *reg_i8, *reg_i16; /* register types of i8/i16 values when not 8/16-bit C types ("int": then wrap_cast
                                   * sign-extends with bitfieldExtract); default "char", "short" */
    const char *nan_lit, *inf_lit; /* f32 NaN and +infinity; default "(0.0f/0.0f)", "(1.0f/0.0f)" */
    const char *addr_of;       /* how atomics name their target element: "" (an lvalue); default "&" (a pointer) */
    int no_void_casts;         /* no "(void)x;" statements */
    int buffer_blocks;         /* tensors are storage-buffer blocks (binding 1 + tensor number), the other
                                * arguments members of a block at binding 0, in ts__cg_args order, all 32-bit */
    /* GPU shape (docs/design.md, "GPU-shaped lowering"). Each is 0 / NULL on
     * targets without it. */
    int registers_only;        /* private arrays must be indexed by constants: unroll every loop over them */
    int vec_mem;               /* 128-bit moves of f32 chunks without vector types: TS__VMEM_* */
    const char *shfl_xor;      /* printf format (value, lane mask) of a butterfly exchange within a warp */
    int shfl_width;            /* lanes a shfl_xor may span on every device of the target */
    int subgroup_ops;          /* GLSL subgroupAdd/Max/Min (GL_KHR_shader_subgroup_arithmetic), sized by the device's caps */
    const char *launch_bounds; /* printf format (threads) after the kernel qualifier */
    int launch_bounds_dot;     /* ... on kernels with a dot too */
    const char *copy_unroll;   /* attribute before a short register copy loop (loop-carried values, fills): "[[unroll]]"; default none */
    const char *extensions;    /* directives emitted right after the prelude (what copy_unroll needs); default none */
    int tree_reduce;           /* row reductions fold their partials in a shared-memory tree (cg_reduce.c) */
    int dot_vec4;              /* dot lowered by cg_dot_glsl.c: named vec4 registers, vec4 views of f32 buffers
                                * (a second block at the same binding), vec4 shared arrays (buffer_blocks only) */
} ts__dialect;

const ts__dialect *ts__dialect_get(ts_dialect d);

/* Argument order of every generated kernel (the backends set arguments in
 * this order): for each parameter in order, a tensor gives its buffer, then
 * its element offset (i64), then one i64 stride per dim; a scalar gives its
 * value (f32 -> float, f64 -> double, i32/u8/bool -> int, i64 -> i64; f16
 * and bf16 scalars are passed as float). Then one i64 per named size. */
typedef enum ts__cg_arg_kind { TS__ARG_BUFFER, TS__ARG_I64, TS__ARG_F32, TS__ARG_F64, TS__ARG_I32 } ts__cg_arg_kind;

typedef struct ts__cg_arg {
    ts__cg_arg_kind kind;
    int param;  /* parameter index, or -1 for a size */
    int what;   /* -1 offset, 0..3 stride of that dim; for sizes: size index */
} ts__cg_arg;

/* Fills the argument list of k (at most max); returns the count. */
int ts__cg_args(const ts__kir *ir, ts__cg_arg *out, int max);
/* The value of argument a for a launch, as i64/double. */
int64_t ts__cg_arg_i64(const ts__cg_arg *a, const ts_backend_arg *args, const int64_t *sizes);
double ts__cg_arg_f64(const ts__cg_arg *a, const ts_backend_arg *args);

/* Threads per program for the plan (dot kernels derive it from their micro-tile). */
int ts__cg_threads(const ts__kir *ir, const ts__plan *plan);

#endif
