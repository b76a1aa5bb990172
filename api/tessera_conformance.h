/* tessera_conformance.h: the conformance suite: does Tessera run correctly on
 * this device?
 *
 * A case is kernel x dtype x shape class x config. Each runs on the device
 * under test and, with the same inputs, on the "ref" backend (the reference
 * executor, which computes in f64); the outputs are compared with a tolerance
 * per operation and dtype (docs/conformance.md). Cases run in forked child
 * processes with a deadline, so a crash or a hang costs one case, not the
 * suite. The built-in cases are focused kernels per operation (every unary and
 * binary op, each reduction, dot, casts, gather, atomic add, masks); a caller
 * adds more (the CLI adds the example kernel set) through
 * ts_conformance_options.kernels.
 *
 * Sections: 1. statuses and levels  2. kernel descriptions  3. options
 *           4. running, results and reports
 *
 * Ownership: everything passed in is borrowed for the duration of the call;
 * the report belongs to the caller (ts_conformance_report_destroy).
 */
#ifndef TESSERA_CONFORMANCE_H
#define TESSERA_CONFORMANCE_H

#include "tessera.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- 1. Statuses */

typedef enum ts_conformance_status {
    TS_CONFORMANCE_PASS = 0,
    TS_CONFORMANCE_FAIL = 1,          /* an output element outside the tolerance, or a launch error */
    TS_CONFORMANCE_NOT_SUPPORTED = 2, /* dtype or feature ruled out by the caps, TS_ERR_UNSUPPORTED, TS_ERR_BAD_CONFIG */
    TS_CONFORMANCE_COMPILE_ERROR = 3, /* TS_ERR_COMPILE; the message holds the log */
    TS_CONFORMANCE_CRASH = 4,         /* the child running the case died (signal or exit) */
    TS_CONFORMANCE_TIMEOUT = 5,       /* the case ran past its deadline and was killed */
    TS_CONFORMANCE_STATUS_COUNT
} ts_conformance_status;

/* "pass", "fail", "not-supported", "compile-error", "crash", "timeout". Static. */
const char *ts_conformance_status_name(ts_conformance_status s);

typedef enum ts_conformance_level {
    TS_CONFORMANCE_QUICK = 0, /* f32 (plus a few f16/bf16), the default config and the extremes of the examples; minutes */
    TS_CONFORMANCE_FULL = 1   /* every dtype, shape class and config */
} ts_conformance_level;

/* "quick" / "full". TS_ERR_INVALID_ARGUMENT otherwise. */
ts_status ts_conformance_level_parse(const char *text, ts_conformance_level *out);

/* ---------------------------------------------------------------- 2. Kernels */

#define TS_CONFORMANCE_MAX_SIZES 8
#define TS_CONFORMANCE_MAX_SHAPES 12

/* Size bindings of a shape ("M=127,N=1000" parsed). */
typedef struct ts_conformance_sizes {
    int n;
    char names[TS_CONFORMANCE_MAX_SIZES][32];
    int64_t values[TS_CONFORMANCE_MAX_SIZES];
} ts_conformance_sizes;

/* Value of size `name`, -1 when not bound. */
int64_t ts_conformance_size(const ts_conformance_sizes *s, const char *name);

/* How tensor parameters are laid out in device memory for a shape. */
typedef enum ts_conformance_view {
    TS_CONFORMANCE_CONTIGUOUS = 0,
    TS_CONFORMANCE_STRIDED = 1,    /* every tensor a view: last dim stride 2, element offset 1, inside a larger storage */
    TS_CONFORMANCE_TRANSPOSED = 2, /* rank >= 2 tensors: a view of storage whose last two dims are swapped */
    TS_CONFORMANCE_BROADCAST = 3   /* rank >= 2 inputs: dim 0 has stride 0 (one row in storage) */
} ts_conformance_view;

typedef struct ts_conformance_shape {
    const char *shape_class;  /* "tiny", "odd", "prime", "nonmult", "large", "bcast", "strided", "transposed", "empty", ... */
    const char *sizes;        /* "M=127,N=1000" */
    ts_conformance_view view;
    int full_only;            /* 1: only at TS_CONFORMANCE_FULL */
    int specials;             /* 1: about 1 float input in 8 is NaN, +-inf or +-0 */
} ts_conformance_shape;

/* How outputs are compared with the reference (docs/conformance.md). */
typedef enum ts_conformance_tol_kind {
    TS_CONFORMANCE_TOL_EXACT = 0, /* equal (NaN matches NaN, -0 matches +0) */
    /* |got - exp| <= ulps * ulp(exp) + abs_ulps * ulp(1), ulps of the output dtype;
     * `ulps` for f32/f64 outputs, `half_ulps` for f16/bf16 outputs */
    TS_CONFORMANCE_TOL_ULP = 1,
    /* reductions and dot: |got - exp| <= (2 + growth * sqrt(L)) * u * mag + ulps * ulp(exp)
     * (half_ulps for f16/bf16 outputs),
     * u = 2^-24 (2^-53 for f64), mag = the same kernel on the reference with |inputs|,
     * L = the size named `reduce_size`; growth 0 means 2 */
    TS_CONFORMANCE_TOL_SUM = 2,
    /* composite kernels (docs/tolerances.md): |got - exp| <= scale * max(1, sqrt(L / 64)) * (atol + rtol |exp|) */
    TS_CONFORMANCE_TOL_REL = 3
} ts_conformance_tol_kind;

typedef struct ts_conformance_tolerance {
    ts_conformance_tol_kind kind;
    double ulps;      /* ULP: f32/f64 outputs */
    double half_ulps; /* ULP and SUM: f16/bf16 outputs */
    double abs_ulps;  /* ULP: absolute term in ulp(1.0) of the output dtype */
    double growth;    /* SUM */
    double scale;     /* REL */
} ts_conformance_tolerance;

typedef struct ts_conformance_kernel ts_conformance_kernel;
struct ts_conformance_kernel {
    const char *name;  /* case ids start with it ("example.matmul"); [A-Za-z0-9_.] */
    const char *group; /* "unary", "binary", "reduce", "example", ... (the JUnit testsuite) */
    ts_status (*build)(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out);
    ts_dtype dtypes[8];
    int ndtypes;
    int quick_dtypes;  /* the first quick_dtypes dtypes run at quick level (0: 1; -1: none) */
    ts_conformance_shape shapes[TS_CONFORMANCE_MAX_SHAPES];
    int nshapes;
    unsigned outputs;    /* bit p: parameter p is written (compared; filled with NaN or -7 before the launch) */
    unsigned accumulate; /* bit p: an output the kernel adds into (atomic add): starts with random values */
    /* Inputs: floats uniform in [lo, hi] ([-2, 2] when lo == hi), never within 1e-3 of 0 unless
     * allow_zero; integers uniform in [int_lo, int_hi) (default [0, 100)), or int_range when set. */
    double lo, hi;
    int allow_zero;
    double quantum;           /* > 0: float inputs are rounded to multiples of it (ties in comparisons, argmax) */
    int ties;                 /* 1: half the float inputs are midpoints between neighbours of ties_dtype (cast rounding) */
    ts_dtype ties_dtype;
    int atomics;              /* 1: uses atomic_add; in f32 that needs caps.has_atomics_f32 */
    int64_t int_lo, int_hi;
    void (*int_range)(const ts_conformance_kernel *kd, int param, const ts_conformance_sizes *s, int64_t *lo, int64_t *hi);
    double (*scalar)(const ts_conformance_kernel *kd, int param, const ts_conformance_sizes *s); /* NULL: 1 */
    ts_conformance_tolerance tol;
    const char *reduce_size;  /* size symbol reduced over (SUM, REL) */
    int quick_configs;        /* configs at quick level: 1 default (0 means 1), 2 + all tunables at min, 3 + at max */
    const void *user;
};

/* ---------------------------------------------------------------- 3. Options */

typedef struct ts_conformance_result ts_conformance_result;
typedef void (*ts_conformance_result_fn)(const ts_conformance_result *r, void *user);

typedef struct ts_conformance_options {
    size_t size;              /* sizeof(ts_conformance_options); fields past `size` take their defaults */
    const char *backend;      /* NULL or "auto": $TESSERA_BACKEND, else the best available */
    int device;
    ts_conformance_level level;
    /* Globs (fnmatch) over case ids "KERNEL/DTYPE/SHAPE_CLASS/CONFIG", separated by
     * commas; a case runs if any matches. A glob without '/' matches the
     * kernel name alone ("op.unary.*"). NULL: every case. */
    const char *filter;
    double timeout_s;         /* per case, compile included; 0: 120 */
    int no_fork;              /* 1: run in this process (for debuggers; a crash ends the suite) */
    int no_builtin;           /* 1: only `kernels` */
    const ts_conformance_kernel *kernels; /* more kernels (the CLI passes the example set) */
    int nkernels;
    ts_conformance_result_fn on_result;   /* called in the calling process as each case ends */
    void *user;
    uint64_t seed;            /* inputs; 0: 1 */
} ts_conformance_options;

#define TS_CONFORMANCE_OPTIONS_INIT { .size = sizeof(ts_conformance_options), .level = TS_CONFORMANCE_QUICK }

/* ---------------------------------------------------------------- 4. Results */

struct ts_conformance_result {
    char id[192];          /* "op.unary.exp/f32/odd/default" */
    char kernel[64];
    char group[32];
    char dtype[8];
    char shape_class[24];
    char sizes[96];
    char config[160];      /* "default", or "BLOCK=16,threads=1,..." */
    ts_conformance_status status;
    double max_err;        /* worst |got - exp| / bound (<= 1 passes) */
    char worst_param[32];  /* where the worst element is ("" when none) */
    int64_t worst_index;   /* row-major index in the view; -1 - storage index when outside the view */
    double expected, got;
    double device_ms;      /* launch time reported by the device */
    double wall_ms;        /* the whole case: inputs, compile, launch, reference, compare */
    char message[2048];    /* why: mismatch detail, error, compile log (truncated), signal */
};

typedef struct ts_conformance_report ts_conformance_report;

/* Runs the suite. A failing case is not an error: the return is TS_OK with
 * every result in *out. Errors: bad options, no such backend or device
 * (TS_ERR_NOT_FOUND / TS_ERR_UNAVAILABLE with the reason), out of memory. */
ts_status ts_conformance_run(const ts_conformance_options *opts, ts_conformance_report **out);
/* Calls `fn` for the id of every case the options select, without running
 * anything. Returns the number of cases, or a negative status. */
int ts_conformance_list(const ts_conformance_options *opts, void (*fn)(const char *id, void *user), void *user);

void ts_conformance_report_destroy(ts_conformance_report *r);
int ts_conformance_report_count(const ts_conformance_report *r);
const ts_conformance_result *ts_conformance_report_result(const ts_conformance_report *r, int i);
/* Cases with status s. */
int ts_conformance_report_status_count(const ts_conformance_report *r, ts_conformance_status s);
/* 1 when no case failed, crashed, timed out or failed to compile (not-supported is fine). */
int ts_conformance_report_ok(const ts_conformance_report *r);
const char *ts_conformance_report_backend(const ts_conformance_report *r);
const char *ts_conformance_report_device(const ts_conformance_report *r);
const char *ts_conformance_report_fingerprint(const ts_conformance_report *r);
double ts_conformance_report_seconds(const ts_conformance_report *r);
/* "conformance: N passed, N failed, N not-supported, N compile-error, N crash, N timeout" (static per thread). */
const char *ts_conformance_report_summary(const ts_conformance_report *r);
/* JSON report (schema in docs/conformance.md) and JUnit XML. */
ts_status ts_conformance_report_write_json(const ts_conformance_report *r, const char *path);
ts_status ts_conformance_report_write_junit(const ts_conformance_report *r, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_CONFORMANCE_H */
