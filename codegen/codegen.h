/* codegen.h: lowering of a kernel under a concrete plan to C-like source
 * (one shared emitter, a small dialect per target). Internal. */
#ifndef TS_CODEGEN_H
#define TS_CODEGEN_H

#include "ir.h"
#include "tessera_backend.h"

/* Emits the source of `k` under `plan` for `dialect`, with entry point
 * `entry`. Caller frees *source. */
ts_status ts__codegen_emit(const ts_kernel *k, const ts__plan *plan, ts_dialect dialect, const ts_device_caps *caps, const char *entry,
                           char **source);
const char *ts__dialect_name(ts_dialect d);
/* Fault injection, tests only: nonzero leaves the tensor-core dot's
 * cp.async.wait_group out of its pipeline (codegen/cg_mma.c), so a test can
 * see the emulation catch a missing wait. */
extern int ts__cg_fault_no_cp_wait;

#endif
