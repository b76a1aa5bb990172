/* conf_internal.h: the conformance suite's shared internals (ts__conf_).
 * Not installed.
 *
 *   ops.c     the built-in kernels, one focused kernel per operation
 *   cases.c   configs, case enumeration, filters, size parsing
 *   check.c   running one case in this process: inputs, views, the
 *             reference run, the device run, the comparison
 *   run.c     the driver: forked children, pipes, deadlines
 *   report.c  results, the JSON report and the JUnit XML report
 */
#ifndef TS_CONF_INTERNAL_H
#define TS_CONF_INTERNAL_H

#include "tessera_conformance.h"
#include "ts_internal.h"

/* ---------------------------------------------------------------- ops.c */
int ts__conf_builtin_count(void);
const ts_conformance_kernel *ts__conf_builtin(int i);

/* ---------------------------------------------------------------- cases.c */
#define TS__CONF_MAX_CONFIGS 6

/* The configs of a kernel, in order: default, tmin (every tunable at its
 * minimum), tmax, min (tunables and backend knobs at their minimum), max,
 * alt (tunables alternate between min and max).
 * Writes names (static strings) and new configs; returns the count. */
int ts__conf_configs(const ts_kernel *k, ts_config **out, const char **names, int max);
ts_status ts__conf_parse_sizes(const char *text, ts_conformance_sizes *s);

typedef struct ts__conf_case {
    const ts_conformance_kernel *kd;
    ts_dtype dt;
    int shape;   /* index into kd->shapes */
    int config;  /* index into ts__conf_configs */
    char shape_name[24];
    char config_name[16];
    char config_text[160];
    char id[192];
} ts__conf_case;

/* Every case the options select. *out is malloc'ed (caller frees). */
ts_status ts__conf_enumerate(const ts_conformance_options *o, ts__conf_case **out, int *n);

/* ---------------------------------------------------------------- check.c */
typedef struct ts__conf_runner ts__conf_runner;

/* Opens the device under test and the "ref" reference. `backend` NULL or
 * "auto" picks as ts_context_create does. */
ts_status ts__conf_runner_open(const char *backend, int device, uint64_t seed, ts__conf_runner **out);
void ts__conf_runner_close(ts__conf_runner *r);
ts_context *ts__conf_runner_device(ts__conf_runner *r);
/* Runs one case; consecutive cases of the same kernel, dtype and shape share
 * inputs and the reference result. Never fails: the outcome is in *res. */
void ts__conf_runner_run(ts__conf_runner *r, const ts__conf_case *c, ts_conformance_result *res);
/* Fills the descriptive fields of a result from its case. */
void ts__conf_result_init(ts_conformance_result *res, const ts__conf_case *c);

/* ---------------------------------------------------------------- report.c */
struct ts_conformance_report {
    char backend[64];
    char device[128];
    char fingerprint[512];
    ts_conformance_level level;
    char filter[256];
    uint64_t seed;
    char started[32];
    double seconds;
    ts_conformance_result *results;
    int n;
};

#endif
