/* lookup.c: the config a launch with cfg NULL uses: the tuning database's
 * entry for this device, kernel, dtypes and shape bucket, with the fallback
 * of db.c (nearest bucket, then a device of the same backend, vendor and
 * architecture), else the kernel's defaults. A candidate that does not fit
 * this device (unknown key, too many threads per group) is passed over.
 * Database files are read once per process and again only when they change
 * (db.c's cache), so repeated launches cost a stat() or two. */
#include "tuner.h"

#include "dialect.h"

#include <stdlib.h>

typedef struct accept_ctx {
    ts_context *ctx;
    const ts_kernel *k;
    const int64_t *const *shapes;
    ts_config *cfg;
} accept_ctx;

static int accept_config(const char *text, void *user) {
    accept_ctx *a = user;
    ts_config *c;
    if (ts_config_parse(text, &c)) return 0;
    ts__plan p;
    if (ts_config_check(c, a->k) || ts__plan_make(&a->k->ir, c, a->shapes, &p)) {
        ts_config_destroy(c);
        return 0;
    }
    int threads = a->ctx->be->dialect != TS_DIALECT_NONE ? ts__cg_threads(&a->k->ir, &p) : p.threads;
    ts__plan_free(&p);
    if (threads < 1 || threads > a->ctx->caps.max_group_size) {
        ts_config_destroy(c);
        return 0;
    }
    a->cfg = c;
    return 1;
}

ts_status ts__tuner_lookup(ts_context *ctx, const ts_kernel *k, const int64_t *const *shapes, ts_config **out) {
    *out = NULL;
    if (!ctx || !k) return TS_OK;
    ts__tune_key key;
    if (ts__tune_key_of(k, shapes, &key)) return TS_OK; /* ts_launch reports bad shapes itself */
    ts__tune_fp fp;
    ts__tune_fp_of(ctx, &fp);
    accept_ctx a = {ctx, k, shapes, NULL};
    ts__tune_value v;
    if (ts__tune_db_find(&fp, &key, 0, accept_config, &a, &v) != TS__TUNE_MISS) *out = a.cfg;
    else ts_config_destroy(a.cfg);
    return TS_OK;
}

ts_status ts_tune_lookup(ts_context *ctx, const ts_kernel *k, const int64_t *const *shapes, char **config) {
    if (!config) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tune_lookup: config is NULL");
    *config = NULL;
    if (!ctx || !k || !shapes) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tune_lookup: NULL context, kernel or shapes");
    ts_config *c = NULL;
    ts__tuner_lookup(ctx, k, shapes, &c);
    if (!c) return TS_OK;
    *config = ts_config_format(c);
    ts_config_destroy(c);
    return *config ? TS_OK : ts__error(TS_ERR_OUT_OF_MEMORY, "ts_tune_lookup: out of memory");
}
