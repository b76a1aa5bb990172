/* emit.c: entry point of the shared code generator. */
#include "codegen.h"

#include <stdlib.h>

const char *ts__dialect_name(ts_dialect d) {
    switch (d) {
    case TS_DIALECT_OPENCL: return "opencl";
    case TS_DIALECT_CUDA: return "cuda";
    case TS_DIALECT_HIP: return "hip";
    case TS_DIALECT_GLSL: return "glsl";
    default: return "none";
    }
}

ts_status ts__codegen_emit(const ts_kernel *k, const ts__plan *plan, ts_dialect dialect, const ts_device_caps *caps, const char *entry,
                           char **source) {
    (void)plan;
    (void)caps;
    (void)entry;
    *source = NULL;
    return ts__error(TS_ERR_UNSUPPORTED, "kernel '%s': no code generator for dialect '%s' in this build", ts_kernel_name(k),
                     ts__dialect_name(dialect));
}
