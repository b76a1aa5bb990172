/* gpu_common.c: the binary cache and library loading shared by the CUDA and
 * HIP backends (see gpu_common.h). */
#include "gpu_common.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ts__bincache_path(const char *prefix, const char *ext, uint64_t key, char *buf, size_t n) {
    char dir[4096];
    buf[0] = 0;
    if (ts__cache_dir("bin", dir, sizeof dir) != TS_OK) {
        ts_clear_error();
        return;
    }
    snprintf(buf, n, "%s/%s-%016" PRIx64 ".%s", dir, prefix, key, ext);
}

int ts__bincache_load(const char *path, const char magic[8], uint64_t key, char **out, size_t *outn) {
    char *data;
    size_t n;
    *out = NULL;
    *outn = 0;
    if (!path[0] || ts__read_file(path, (size_t)1 << 30, &data, &n) != TS_OK) {
        ts_clear_error();
        return 0;
    }
    uint64_t k, size, sum;
    int ok = 0;
    if (n >= 32 && memcmp(data, magic, 8) == 0) {
        memcpy(&k, data + 8, 8);
        memcpy(&size, data + 16, 8);
        if (k == key && size == n - 32) {
            memcpy(&sum, data + 24 + size, 8);
            if (sum == ts__hash_bytes(TS__HASH_INIT, data + 24, size)) {
                char *p = malloc(size + 1);
                if (p) {
                    memcpy(p, data + 24, size);
                    p[size] = 0;
                    *out = p;
                    *outn = size;
                    ok = 1;
                }
            }
        }
    }
    free(data);
    return ok;
}

void ts__bincache_save(const char *path, const char magic[8], uint64_t key, const void *data, size_t size) {
    if (!path[0] || !size) return;
    char *buf = malloc(size + 32);
    if (!buf) return;
    uint64_t s64 = size, sum = ts__hash_bytes(TS__HASH_INIT, data, size);
    memcpy(buf, magic, 8);
    memcpy(buf + 8, &key, 8);
    memcpy(buf + 16, &s64, 8);
    memcpy(buf + 24, data, size);
    memcpy(buf + 24 + size, &sum, 8);
    if (ts__write_file_atomic(path, buf, size + 32) != TS_OK) ts_clear_error();
    free(buf);
}

void *ts__dlopen_first(const char *const *names, int count, char *why, size_t whylen) {
    char last[256] = "";
    for (int i = 0; i < count; i++) {
        if (!names[i]) continue;
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        const char *e = dlerror();
        snprintf(last, sizeof last, "%s", e ? e : "?");
    }
    if (why) {
        size_t k = (size_t)snprintf(why, whylen, "cannot load ");
        for (int i = 0; i < count && k < whylen; i++)
            if (names[i]) k += (size_t)snprintf(why + k, whylen - k, "%s%s", i ? " / " : "", names[i]);
        if (k < whylen) snprintf(why + k, whylen - k, " (%s)", last);
    }
    return NULL;
}
