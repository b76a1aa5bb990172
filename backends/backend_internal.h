/* backend_internal.h: the core's side of the backend interface: the
 * registry, contexts and the in-process module cache. Not installed. */
#ifndef TS_BACKEND_INTERNAL_H
#define TS_BACKEND_INTERNAL_H

#include "ir.h"
#include "tessera_backend.h"

#include <pthread.h>

typedef struct ts__module_entry {
    uint64_t key;
    void *module;
} ts__module_entry;

struct ts_context {
    const ts_backend *be;
    void *state;
    void *dev;
    int device_index;
    ts_device_caps caps;
    ts_fingerprint fp;
    char fp_id[512];
    uint64_t fp_hash;
    pthread_mutex_t lock;
    ts__module_entry *modules;
    int nmodules, cap_modules;
    int compiles; /* how many modules this context compiled (tests read it) */
};

/* Finds a registered backend by name and initializes it once; on failure
 * returns TS_ERR_UNAVAILABLE with the reason. */
ts_status ts__backend_get(const char *name, const ts_backend **be, void **state);
/* Built-in backends. */
const ts_backend *ts__ref_backend(void);
const ts_backend *ts__opencl_backend(void);
const ts_backend *ts__vulkan_backend(void);
const ts_backend *ts__cuda_backend(void);
const ts_backend *ts__hip_backend(void);

/* Module for (kernel, plan) on ctx, compiled on first use. */
ts_status ts__context_module(ts_context *ctx, const ts_kernel *k, const ts_config *cfg, const ts__plan *plan, void **module);
int ts__context_compile_count(const ts_context *ctx);

/* Host args for the reference executor from backend args whose buffers are host memory. */
ts_status ts__host_args(const ts_kernel *k, const ts_backend_arg *args, int nargs, ts__host_arg **out);

#endif
