/* fuzz_safetensors.c: libFuzzer target for the Safetensors reader (and the
 * writer behind it). Any input must either be rejected with a status or
 * open; an opened file's every tensor byte and metadata string is touched
 * (ASan catches a view outside the buffer), and writing it back with our
 * writer must give a file that opens again with the same tensors.
 * Seeds: tests/fuzz/corpus_safetensors. Build with -DTS_FUZZ=ON (clang). */
#include "tessera_safetensors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* an exact-size copy, so reading one byte past the end is an ASan error */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    ts_st_file *f = NULL;
    ts_status s = ts_st_open_memory(buf, size, &f);
    if (s != TS_OK) {
        if (f || s > -100 || s < -199) abort(); /* failures leave no file and use the module's statuses */
        free(buf);
        return 0;
    }
    ts_st_writer *w = NULL;
    if (ts_st_writer_create(&w)) abort();
    unsigned sum = 0;
    for (size_t i = 0; i < ts_st_count(f); i++) {
        ts_st_tensor_info t;
        if (ts_st_tensor_at(f, i, &t)) abort();
        for (size_t k = 0; k < t.nbytes; k++) sum += ((const uint8_t *)t.data)[k];
        ts_st_tensor_info again;
        if (ts_st_find(f, t.name, &again) || again.data != t.data) abort();
        if (ts_st_writer_add_ref(w, t.name, t.dtype, t.rank, t.shape, t.data, t.nbytes)) abort();
    }
    for (size_t i = 0; i < ts_st_metadata_count(f); i++) {
        const char *k, *v;
        if (ts_st_metadata_at(f, i, &k, &v)) abort();
        sum += (unsigned)strlen(k) + (unsigned)strlen(v);
        if (ts_st_writer_metadata(w, k, v)) abort();
    }
    void *out = NULL;
    size_t n = 0;
    ts_st_file *g = NULL;
    if (ts_st_writer_serialize(w, &out, &n) == TS_OK) { /* fails only past the 100 MB header limit */
        if (ts_st_open_memory(out, n, &g) != TS_OK) {
            fprintf(stderr, "our own output does not open: %s\n", ts_last_error());
            abort();
        }
        if (ts_st_count(g) != ts_st_count(f) || ts_st_metadata_count(g) != ts_st_metadata_count(f)) abort();
        for (size_t i = 0; i < ts_st_count(f); i++) {
            ts_st_tensor_info a, b;
            ts_st_tensor_at(f, i, &a);
            if (ts_st_find(g, a.name, &b) || b.dtype != a.dtype || b.rank != a.rank || b.nbytes != a.nbytes ||
                (a.nbytes && memcmp(a.data, b.data, a.nbytes)))
                abort();
        }
    }
    ts_st_close(g);
    free(out);
    ts_st_writer_destroy(w);
    ts_st_close(f);
    free(buf);
    return (int)(sum & 0);
}
