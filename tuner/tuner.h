/* tuner.h: the tuner's side used by launches. Internal. */
#ifndef TS_TUNER_H
#define TS_TUNER_H

#include "backend_internal.h"

/* The tuning database's config for (ctx's device, k, shapes), or *out NULL
 * when there is none (the kernel's defaults apply). */
ts_status ts__tuner_lookup(ts_context *ctx, const ts_kernel *k, const int64_t *const *shapes, ts_config **out);

#endif
