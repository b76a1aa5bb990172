/* tessera_tune.h: the autotuner and the tuning database.
 *
 * ts_tune() searches a kernel's config space (its tunables plus the
 * backend's knobs, pruned with the device's caps) on one device at one
 * shape. Every candidate is compiled (failures are recorded, not fatal),
 * checked against the reference executor on random non-zero inputs of the
 * real shape (a wrong result is never chosen nor stored), and timed (warm-up,
 * then the median of device-event times). The best config goes into the
 * tuning database, one JSON file per hardware fingerprint under
 * $TESSERA_CACHE_DIR/tuning/ (else $XDG_CACHE_HOME/tessera/tuning/), and
 * ts_launch(ctx, k, NULL, ...) then uses it transparently. docs/tuner.md
 * describes spaces, strategies, checks, the file format and the fallback.
 *
 * Sections: 1. options and report; 2. tuning; 3. the database.
 */
#ifndef TESSERA_TUNE_H
#define TESSERA_TUNE_H

#include "tessera.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- 1. Options and report */

typedef enum ts_tune_effort {
    TS_TUNE_EFFORT_NONE = 0,  /* no search: the database's entry, else the defaults */
    TS_TUNE_EFFORT_QUICK = 1, /* trimmed axes, guided search, budget 90 s by default */
    TS_TUNE_EFFORT_FULL = 2   /* every axis value, budget 600 s by default */
} ts_tune_effort;

typedef enum ts_tune_strategy {
    TS_TUNE_AUTO = 0,       /* exhaustive when the space is small, else guided */
    TS_TUNE_EXHAUSTIVE = 1, /* every valid point (until the budget ends) */
    TS_TUNE_RANDOM = 2,     /* uniform random valid points, without repeats */
    TS_TUNE_GUIDED = 3      /* pattern search along the axes from several starts */
} ts_tune_strategy;

/* What happened to one candidate. */
typedef enum ts_tune_outcome {
    TS_TUNE_OK = 0,         /* correct; timed */
    TS_TUNE_PRUNED = 1,     /* exceeds a device limit found before compiling (code generation) */
    TS_TUNE_COMPILE = 2,    /* the backend failed to compile or launch it */
    TS_TUNE_WRONG = 3,      /* its result differs from the reference: rejected */
    TS_TUNE_TIMEOUT = 4     /* one launch took longer than the candidate time limit */
} ts_tune_outcome;

/* Passed to the progress callback after each candidate (valid during the call). */
typedef struct ts_tune_progress {
    int done;              /* candidates finished so far */
    int space;             /* valid points in the space (-1: too many to count) */
    double elapsed_s, budget_s;
    const char *config;    /* the candidate just finished */
    ts_tune_outcome outcome;
    double ms;             /* its median time (0 unless outcome is TS_TUNE_OK) */
    const char *best_config;
    double best_ms;        /* 0 until a candidate succeeded */
    double default_ms;
} ts_tune_progress;

typedef void (*ts_tune_progress_fn)(const ts_tune_progress *p, void *user);

typedef struct ts_tune_options {
    size_t size;                 /* sizeof(ts_tune_options); fields past `size` take their defaults */
    ts_tune_effort effort;
    double budget_s;             /* wall-clock budget of the search; 0: the effort's default */
    ts_tune_strategy strategy;
    uint64_t seed;               /* inputs and random choices */
    ts_tune_progress_fn progress; /* NULL: silent */
    void *user;                  /* passed to the callbacks */
    int repeats;                 /* timed launches per candidate after the warm-up; 0: 5 */
    int use_db;                  /* consult the database first and store the result (default 1) */
    int force;                   /* tune even when the database has an exact entry */
    int max_evals;               /* at most this many candidates; 0: no limit */
    double candidate_timeout_s;  /* a launch slower than this times the candidate out; 0: max(1 s, 20x default) */
    /* The check. |got - ref| <= scale (atol + rtol |ref|), with the dtype's
     * atol/rtol (docs/tolerances.md) and scale = tol_scale * sqrt(L / 64)
     * when the kernel reduces over L > 64 elements. */
    double tol_scale;            /* 0: 4 */
    const char *reduce_size;     /* size symbol reduced over (L); NULL: the largest size */
    /* Inputs: floats uniform in [-2, 2] (never near 0); integer tensors in
     * [0, int_bound(param)) (NULL: the smallest size, so they are valid indices). */
    int64_t (*int_bound)(int param, void *user);
    double (*scalar)(int param, void *user); /* scalar parameters' values; NULL: 1 */
} ts_tune_options;

#define TS_TUNE_OPTIONS_INIT \
    { .size = sizeof(ts_tune_options), .effort = TS_TUNE_EFFORT_QUICK, .strategy = TS_TUNE_AUTO, .seed = 1, .use_db = 1 }

/* One candidate as the report lists it. */
typedef struct ts_tune_candidate {
    char config[256];
    ts_tune_outcome outcome;
    double ms;             /* median (TS_TUNE_OK), else the time measured before stopping, or 0 */
    double compile_s;      /* wall time of the first launch (code generation, compile, check run) */
    char why[256];         /* failure, mismatch or timeout detail; "" when ok */
} ts_tune_candidate;

/* Owned by the caller after ts_tune; free with ts_tune_report_destroy.
 * Fields are only appended in later versions. */
typedef struct ts_tune_report {
    ts_config *best;       /* best verified config (NULL when nothing succeeded) */
    char best_config[256]; /* its text ("" for the kernel's defaults) */
    double best_ms;        /* its median */
    double default_ms;     /* the kernel's defaults, timed the same way (0 if they failed) */
    double speedup;        /* default_ms / best_ms */
    int from_db;           /* 1: exact database entry, nothing was tuned */
    int stored;            /* 1: the result was written to the database */
    char strategy[16];     /* "exhaustive", "random", "guided", "db" */
    char fingerprint[512]; /* the device's readable fingerprint */
    char shape[256];       /* "M=1024,N=1024,K=1024" */
    int64_t space;         /* valid points in the space (-1: too many to count) */
    int tried;             /* candidates run (all outcomes), the default config excluded */
    int ok, pruned, failed_compile, rejected_wrong, timed_out;
    double tuning_s;       /* wall time of ts_tune */
    double reference_s;    /* of which running the reference executor */
    int budget_exhausted;  /* the search stopped on its budget or max_evals */
    int ncandidates;
    ts_tune_candidate *candidates; /* every candidate in the order run */
} ts_tune_report;

void ts_tune_report_destroy(ts_tune_report *r);

/* ---------------------------------------------------------------- 2. Tuning */

/* Tunes `k` on ctx's device with the named sizes (`names[i]` = `values[i]`;
 * every size symbol of k must be given). `opts` NULL means defaults. On
 * success *out owns the report. Returns TS_ERR_NOT_FOUND when no candidate
 * (nor the default) produced a correct result; the report is still written.
 * Thread safety: one ts_tune per context at a time. */
ts_status ts_tune(ts_context *ctx, const ts_kernel *k, const char *const *names, const int64_t *values, int nsizes,
                  const ts_tune_options *opts, ts_tune_report **out);

const char *ts_tune_outcome_name(ts_tune_outcome o);

/* The config ts_launch uses for k with cfg NULL and tensors of these shapes
 * (shapes[i]: parameter i's shape; ignored for scalars): the tuning
 * database's entry for ctx's device, with its fallbacks, else the device's
 * default form (OpenCL CPU devices: one work-item a row, docs/tuner.md).
 * *config gets its text (caller frees), or NULL when the kernel's defaults
 * apply; *from_db (may be NULL) is 1 when it came from the database. */
ts_status ts_tune_lookup(ts_context *ctx, const ts_kernel *k, const int64_t *const *shapes, char **config, int *from_db);

/* ---------------------------------------------------------------- 3. The database */

/* One stored entry, as listed. */
typedef struct ts_tune_db_entry {
    char fingerprint[512];       /* readable device id */
    char fingerprint_hash[17];   /* hex; the file is tuning/<hash>.json */
    char kernel[64];             /* kernel name (not part of the key) */
    char kernel_hash[17];        /* hex structural hash (the key) */
    char dtypes[128];            /* parameter dtypes (the key) */
    char bucket[256];            /* sizes rounded up to powers of two (the key) */
    char shape[256];             /* sizes tuned at */
    char config[512];
    double ms, default_ms;
    char date[32];
    char version[16];
} ts_tune_db_entry;

/* Every entry of every readable database file (fingerprint NULL) or of the
 * device whose readable id or hash is `fingerprint`. *out is an array the
 * caller frees with free() (NULL when *n is 0). Bad files are reported and skipped. */
ts_status ts_tune_db_list(const char *fingerprint, ts_tune_db_entry **out, int *n);
/* Writes the databases (all, or one device's) into one JSON file at `path`,
 * for shipping. *count (may be NULL) gets the number of entries. */
ts_status ts_tune_db_export(const char *path, const char *fingerprint, int *count);
/* Reads an export (or a single database file) and writes each device's
 * entries into its database. merge 1: entries already present stay unless
 * the imported one is faster; merge 0: the imported entries replace each
 * device's file. A corrupt or foreign file is refused with TS_ERR_CORRUPT. */
ts_status ts_tune_db_import(const char *path, int merge, int *count);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_TUNE_H */
