/* kernels.h: the example kernel set, each written once with the C API, and
 * the harness that checks a kernel on a device against an independent
 * computation (plain C loops in double, never the reference executor). */
#ifndef TS_EXAMPLES_KERNELS_H
#define TS_EXAMPLES_KERNELS_H

#include "tessera.h"

#define TS_EX_MAX_SIZES 8

/* One set of size bindings ("M=127,N=1000"). */
typedef struct ts_ex_sizes {
    int n;
    const char *names[TS_EX_MAX_SIZES];
    int64_t values[TS_EX_MAX_SIZES];
} ts_ex_sizes;

/* Host view of every parameter for the reference computation: values as
 * doubles (inputs already rounded to their dtype), shapes, and scalars. */
typedef struct ts_ex_io {
    int nparams;
    double *data[16];
    int64_t shape[16][TS_MAX_RANK];
    double scalar[16];
    const ts_ex_sizes *sizes;
} ts_ex_io;

typedef struct ts_example {
    const char *name;
    const char *summary;
    /* Builds the kernel for input dtype `dt` (most kernels are f32-only; see dtypes). */
    ts_status (*build)(ts_dtype dt, ts_kernel **out);
    /* dtypes the kernel is tested with (first is the default). */
    ts_dtype dtypes[3];
    int ndtypes;
    /* Size sets tested; the first is the "typical" one. */
    const char *sizes[6];
    /* Index of output params (computed by `reference`) as a bit mask. */
    unsigned outputs;
    /* Scalars' values by param index. */
    double (*scalar)(int param, const ts_ex_sizes *s);
    /* Input generation: integer params get values in [0, bound). */
    int64_t (*int_bound)(int param, const ts_ex_sizes *s);
    /* Independent reference: fills the output params of io. */
    void (*reference)(ts_ex_io *io);
    /* Tolerance scale for this kernel (1 = elementwise). */
    double tol_scale;
    /* Size reduced over (sum, dot); the tolerance grows with sqrt(len / 64),
     * as f32 rounding error of a sum does (docs/tolerances.md). */
    const char *reduce_dim;
    /* Optional: replaces the starting values of tensor param p (inputs and
     * outputs: an atomic kernel's output starts at zero, a jagged kernel's
     * offsets are sorted) after the random fill. The harness stores them
     * rounded to the param's dtype, and the reference sees them. */
    void (*init)(int param, double *v, int64_t n, const ts_ex_sizes *s);
} ts_example;

/* Word 0 of Philox 4x32-10 at (counter, key): the examples' own
 * implementation (helion.c), independent of the library's. */
uint32_t ts_ex_philox_word0(uint64_t counter, uint64_t key);

int ts_example_count(void);
const ts_example *ts_example_get(int i);
const ts_example *ts_example_find(const char *name);

/* Parses "M=127,N=1000" into s (names point into a static copy). */
ts_status ts_ex_parse_sizes(const char *text, ts_ex_sizes *s);
int64_t ts_ex_size(const ts_ex_sizes *s, const char *name);

/* Result of checking one case. */
typedef struct ts_ex_result {
    ts_status status;
    double max_err;      /* max |got - expected| / (atol + rtol |expected|); <= 1 passes */
    double worst_got, worst_expected;
    int64_t worst_index;
    int worst_param;
    double ms;           /* median launch time */
    char message[512];
} ts_ex_result;

/* Tolerances (docs/tolerances.md): |got - exp| <= tol_scale * (atol + rtol |exp|). */
void ts_ex_tolerance(ts_dtype dt, double *atol, double *rtol);

/* Builds inputs (seeded random, never zeros), runs `k` on ctx with cfg
 * (NULL: defaults/tuned), compares with ex->reference. `repeats` > 1 times
 * repeated launches (median). */
ts_status ts_ex_run_case(ts_context *ctx, const ts_example *ex, const ts_kernel *k, ts_dtype dt, const ts_ex_sizes *s, const ts_config *cfg,
                         int repeats, uint64_t seed, ts_ex_result *res);

/* Configs worth testing for a kernel: defaults, all tunables at min, at max,
 * and alternating. Returns how many were written (<= max). Caller destroys. */
int ts_ex_configs(const ts_kernel *k, ts_config **out, int max);

#endif
