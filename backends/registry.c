/* registry.c: backends by name: the built-in ones, and plugins found on
 * $TESSERA_BACKEND_PATH (libtessera-backend-NAME.so exporting
 * ts_backend_entry). Each backend is initialized once, lazily; a backend
 * whose driver is missing stays registered and reports why. */
#include "backend_internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS__MAX_BACKENDS 32

typedef struct reg_entry {
    const ts_backend *be;
    int tried;
    ts_status init_status;
    char why[512];
    void *state;
} reg_entry;

static reg_entry registry[TS__MAX_BACKENDS];
static int nregistry;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static int version_ok(const ts_backend *b) { return b && b->version >= 1 && b->version <= TS_BACKEND_VERSION && b->name; }

/* The v1 members the core calls without further checks. */
static const char *missing_member(const ts_backend *b) {
    if (!b->device_count) return "device_count";
    if (!b->device_open) return "device_open";
    if (!b->buffer_alloc) return "buffer_alloc";
    if (!b->buffer_free) return "buffer_free";
    if (!b->buffer_write) return "buffer_write";
    if (!b->buffer_read) return "buffer_read";
    if (!b->compile) return "compile";
    if (!b->module_free) return "module_free";
    if (!b->launch) return "launch";
    return NULL;
}

static ts_status register_locked(const ts_backend *b) {
    if (!version_ok(b))
        return ts__error(TS_ERR_VERSION, "backend '%s' has interface version %d; this library understands 1..%d",
                         b && b->name ? b->name : "(unnamed)", b ? b->version : 0, TS_BACKEND_VERSION);
    const char *miss = missing_member(b);
    if (miss) return ts__error(TS_ERR_VERSION, "backend '%s' has no '%s' (required since interface version 1)", b->name, miss);
    for (int i = 0; i < nregistry; i++)
        if (strcmp(registry[i].be->name, b->name) == 0) return ts__error(TS_ERR_NAME, "backend '%s' is already registered", b->name);
    if (nregistry >= TS__MAX_BACKENDS) return ts__error(TS_ERR_LIMIT, "too many backends (at most %d)", TS__MAX_BACKENDS);
    memset(&registry[nregistry], 0, sizeof registry[nregistry]);
    registry[nregistry++].be = b;
    return TS_OK;
}

static void load_plugins(void) {
    const char *path = getenv("TESSERA_BACKEND_PATH");
    if (!path || !*path) return;
    char *copy = strdup(path);
    if (!copy) return;
    for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        DIR *d = opendir(dir);
        if (!d) continue;
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t n = strlen(de->d_name);
            if (strncmp(de->d_name, "libtessera-backend-", 19) != 0 || n < 23 || strcmp(de->d_name + n - 3, ".so") != 0) continue;
            char full[4096];
            snprintf(full, sizeof full, "%s/%s", dir, de->d_name);
            void *h = dlopen(full, RTLD_NOW | RTLD_LOCAL);
            if (!h) {
                fprintf(stderr, "tessera: plugin '%s' not loaded: %s\n", full, dlerror());
                continue;
            }
            ts_backend_entry_fn entry;
            *(void **)&entry = dlsym(h, "ts_backend_entry");
            const ts_backend *b = entry ? entry() : NULL;
            if (!b || register_locked(b) != TS_OK) {
                fprintf(stderr, "tessera: plugin '%s' not loaded: %s\n", full, b ? ts_last_error() : "no ts_backend_entry symbol");
                dlclose(h);
            }
        }
        closedir(d);
    }
    free(copy);
}

static void init_registry(void) {
    /* The one place that knows which backends were built in. */
    const ts_backend *builtins[] = {
        ts__ref_backend(),
#ifdef TS_HAVE_OPENCL
        ts__opencl_backend(),
#endif
#ifdef TS_HAVE_VULKAN
        ts__vulkan_backend(),
#endif
#ifdef TS_HAVE_CUDA
        ts__cuda_backend(),
#endif
#ifdef TS_HAVE_HIP
        ts__hip_backend(),
#endif
    };
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (builtins[i]) register_locked(builtins[i]);
    load_plugins();
}

static void ensure(void) { pthread_once(&reg_once, init_registry); }

ts_status ts_backend_register(const ts_backend *b) {
    ensure();
    pthread_mutex_lock(&reg_lock);
    ts_status s = register_locked(b);
    pthread_mutex_unlock(&reg_lock);
    return s;
}

int ts_backend_count(void) {
    ensure();
    return nregistry;
}

const char *ts_backend_name(int i) {
    ensure();
    return i >= 0 && i < nregistry ? registry[i].be->name : NULL;
}

static reg_entry *find_entry(const char *name) {
    for (int i = 0; i < nregistry; i++)
        if (strcmp(registry[i].be->name, name) == 0) return &registry[i];
    return NULL;
}

/* Caller holds reg_lock. */
static void try_init(reg_entry *e) {
    if (e->tried) return;
    e->tried = 1;
    if (!e->be->init) {
        e->init_status = TS_OK;
        return;
    }
    ts_clear_error();
    e->init_status = e->be->init(&e->state);
    if (e->init_status) snprintf(e->why, sizeof e->why, "%s", ts_last_error()[0] ? ts_last_error() : ts_strerror(e->init_status));
    else if (!e->be->device_count || e->be->device_count(e->state) <= 0) {
        e->init_status = TS_ERR_UNAVAILABLE;
        snprintf(e->why, sizeof e->why, "no device found");
    }
}

ts_status ts__backend_get(const char *name, const ts_backend **be, void **state) {
    ensure();
    pthread_mutex_lock(&reg_lock);
    reg_entry *e = find_entry(name);
    if (!e) {
        pthread_mutex_unlock(&reg_lock);
        ts__sb sb = {0};
        for (int i = 0; i < nregistry; i++) ts__sb_printf(&sb, "%s%s", i ? ", " : "", registry[i].be->name);
        char *list = ts__sb_finish(&sb);
        ts_status s = ts__error(TS_ERR_NOT_FOUND, "no backend named '%s' (known: %s)", name, list ? list : "");
        free(list);
        return s;
    }
    try_init(e);
    ts_status s = e->init_status;
    if (s) ts__error(TS_ERR_UNAVAILABLE, "backend '%s' is not available: %s", name, e->why);
    else {
        *be = e->be;
        *state = e->state;
    }
    pthread_mutex_unlock(&reg_lock);
    return s;
}

int ts_backend_available(const char *name, const char **why) {
    static _Thread_local char reason[600];
    const ts_backend *be;
    void *st;
    ts_status s = ts__backend_get(name, &be, &st);
    if (s && why) {
        snprintf(reason, sizeof reason, "%s", ts_last_error());
        *why = reason;
    }
    return s == TS_OK;
}

int ts_backend_device_count(const char *name) {
    const ts_backend *be;
    void *st;
    if (ts__backend_get(name, &be, &st)) return 0;
    return be->device_count ? be->device_count(st) : 0;
}
