/* tuner.h: the tuner's internals (not installed). The public side is
 * api/tessera_tune.h.
 *
 * Pieces: config spaces (space.c), search strategies over an abstract cost
 * (search.c), the candidate checks and ts_tune (tune.c), the tuning database
 * (db.c) and the lookup used by ts_launch (lookup.c). docs/tuner.md tells
 * the whole story. */
#ifndef TS_TUNER_H
#define TS_TUNER_H

#include "backend_internal.h"
#include "tessera_tune.h"

/* The tuning database's config for (ctx's device, k, shapes), or *out NULL
 * when there is none (the kernel's defaults apply). */
ts_status ts__tuner_lookup(ts_context *ctx, const ts_kernel *k, const int64_t *const *shapes, ts_config **out);

/* Whether cfg fits ctx's device for k at these shapes, as far as can be
 * known without compiling: a plan, threads per group within the device's
 * limit and, for generated code, the code generator's own limits and at
 * most the tuner's cap of private elements a thread (compile time on CPU
 * drivers). TS_OK, or TS_ERR_BAD_CONFIG (or the plan's error) with the
 * reason. The tuner prunes by it; lookup.c checks device defaults by it. */
ts_status ts__tune_fits(ts_context *ctx, const ts_kernel *k, const ts_config *cfg, const int64_t *const *shapes);
/* The knobs a kernel without a dot launches with on a device with no tuning
 * entry (NULL: the knobs' own defaults): the CPU row form on CPU devices with
 * vector types (OpenCL on PoCL), 128-bit chunks on GPU-shaped targets. Also
 * what `tessera compile` and the codegen budget test use for those targets. */
const char *ts__tune_device_knobs(ts_dialect dialect, int cpu_device, const ts__kir *ir);

/* ---------------------------------------------------------------- spaces (space.c) */

#define TS__TUNE_MAX_AXES 16
#define TS__TUNE_MAX_VALUES 16
#define TS__TUNE_MAX_SEEDS 4
#define TS__TUNE_MAX_SIZES 12

typedef struct ts__tune_axis {
    char name[TS__MAX_NAME]; /* tunable or knob name: the config key */
    int n;
    int64_t v[TS__TUNE_MAX_VALUES]; /* ascending */
    int def;                        /* index of the kernel's default value */
} ts__tune_axis;

typedef struct ts__tune_space ts__tune_space;
/* 1 when the point may be compiled (caps and structural pruning). */
typedef int (*ts__tune_valid_fn)(const ts__tune_space *sp, const int *idx, void *user);

struct ts__tune_space {
    int naxes;
    ts__tune_axis axes[TS__TUNE_MAX_AXES];
    ts__tune_valid_fn valid; /* NULL: every point is valid */
    void *valid_user;
    /* Extra starting points for guided search (e.g. one CPU-style and one
     * GPU-style lowering of a dot). */
    int nseeds;
    int seeds[TS__TUNE_MAX_SEEDS][TS__TUNE_MAX_AXES];
    int has_dot;
};

/* What a kernel space is pruned against. */
typedef struct ts__kspace_info {
    const ts_kernel *k;
    ts_device_caps caps;
    ts_dialect dialect;
    const int64_t *const *shapes; /* per parameter, as ts_launch gets them */
} ts__kspace_info;

/* Builds the space of k for `effort` (quick trims each axis to its most
 * promising values; full keeps every value). `info` must outlive the space. */
ts_status ts__tune_space_build(ts__kspace_info *info, ts_tune_effort effort, ts__tune_space *sp);
int ts__tune_space_valid(const ts__tune_space *sp, const int *idx);
/* Number of points, and of valid points (at most `limit` are checked; -1 if more). */
int64_t ts__tune_space_points(const ts__tune_space *sp);
int64_t ts__tune_space_count_valid(const ts__tune_space *sp, int64_t limit);
/* Config of a point (every axis key set). */
ts_status ts__tune_space_config(const ts__tune_space *sp, const int *idx, ts_config **out);
/* "BLOCK_M=64,micro_m=4,..." into buf. */
void ts__tune_space_format(const ts__tune_space *sp, const int *idx, char *buf, size_t n);
/* The point holding the kernel's defaults. */
void ts__tune_space_default(const ts__tune_space *sp, int *idx);
/* Local memory bytes a plan needs, estimated before code generation. */
int64_t ts__tune_local_estimate(const ts__kir *ir, const ts__plan *p);

/* ---------------------------------------------------------------- search (search.c) */

/* Cost of a point (smaller is better); INFINITY when the candidate failed
 * (compile, wrong result, time out). May set *stop to end the search. */
typedef double (*ts__tune_cost_fn)(void *user, const int *idx, int *stop);

typedef struct ts__search_opts {
    ts_tune_strategy strategy; /* TS_TUNE_AUTO picks exhaustive for small spaces, else guided */
    ts_tune_effort effort;
    double budget_s;           /* 0: none */
    uint64_t seed;
    int max_evals;             /* 0: none (random: effort's default) */
    int exhaustive_limit;      /* AUTO: exhaustive when the valid points are at most this */
} ts__search_opts;

typedef struct ts__search_result {
    int best[TS__TUNE_MAX_AXES];
    double best_cost;          /* INFINITY when nothing succeeded */
    int evals;                 /* distinct points evaluated */
    int stopped;               /* budget or max_evals ended it */
    ts_tune_strategy used;
} ts__search_result;

ts_status ts__search_run(const ts__tune_space *sp, const ts__search_opts *o, ts__tune_cost_fn cost, void *user, ts__search_result *r);
const char *ts__tune_strategy_name(ts_tune_strategy s);

/* ---------------------------------------------------------------- database (db.c) */

/* The device side of a key: which file, and what the fallback matches. */
typedef struct ts__tune_fp {
    char id[512];
    uint64_t hash;
    char backend[32], vendor[64], arch[64], device[128];
} ts__tune_fp;

void ts__tune_fp_of(const ts_context *ctx, ts__tune_fp *fp);

/* The kernel side of a key. */
typedef struct ts__tune_key {
    uint64_t kernel_hash;
    char kernel[TS__MAX_NAME];
    char dtypes[128];  /* "f32,f32,f32": the parameters' dtypes */
    int nsizes;
    char size_names[TS__TUNE_MAX_SIZES][TS__MAX_NAME];
    int64_t sizes[TS__TUNE_MAX_SIZES];  /* actual sizes */
    int64_t bucket[TS__TUNE_MAX_SIZES]; /* each rounded up to a power of two */
} ts__tune_key;

/* Key of k at the sizes bound by `shapes` (per parameter). */
ts_status ts__tune_key_of(const ts_kernel *k, const int64_t *const *shapes, ts__tune_key *key);
/* "hash/dtypes/M=1024,N=1024" */
void ts__tune_key_string(const ts__tune_key *key, char *buf, size_t n);

typedef struct ts__tune_value {
    char config[512];
    double ms, default_ms;
    char date[32];     /* ISO 8601 UTC; filled by store when empty */
    char version[16];  /* Tessera version; filled by store when empty */
} ts__tune_value;

/* Read-merge-write of one entry under the file's lock; on a key already
 * present the faster entry wins unless `replace`. */
ts_status ts__tune_db_store(const ts__tune_fp *fp, const ts__tune_key *key, const ts__tune_value *v, int replace);
/* Path of fp's database file (the folder is created). */
ts_status ts__tune_db_path(uint64_t fp_hash, char *buf, size_t n);

/* Fallback levels of a lookup. */
enum { TS__TUNE_MISS = 0, TS__TUNE_EXACT = 1, TS__TUNE_NEAREST = 2, TS__TUNE_SIBLING = 3 };
/* Called for each candidate in fallback order until it returns 1. */
typedef int (*ts__tune_accept_fn)(const char *config, void *user);
/* Looks up key for fp: exact bucket, nearest bucket, a device of the same
 * backend, vendor and arch (exact then nearest), else a miss. Writes the
 * accepted config and returns its level. `exact_only` stops after level 1. */
int ts__tune_db_find(const ts__tune_fp *fp, const ts__tune_key *key, int exact_only, ts__tune_accept_fn accept, void *user,
                     ts__tune_value *out);
/* Last database problem reported (corrupt, truncated, foreign file), and
 * how many were reported in this process. Each bad file is reported once. */
const char *ts__tune_db_last_warning(int *count);
/* Forgets the in-process cache of database files. */
void ts__tune_db_cache_clear(void);

#endif
