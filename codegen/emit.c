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

ts_status ts__codegen_c(const ts_kernel *k, const ts__plan *plan, ts_dialect dialect, const ts_device_caps *caps, const char *entry, char **source);

ts_status ts__codegen_emit(const ts_kernel *k, const ts__plan *plan, ts_dialect dialect, const ts_device_caps *caps, const char *entry,
                           char **source) {
    return ts__codegen_c(k, plan, dialect, caps, entry, source);
}
