/* fuzz_npy.c: libFuzzer target for the .npy reader (formats/npy.c) and the
 * writer behind it. Any input must either be rejected with an error status
 * and a message naming the input, leaving the result zeroed, or parse; a
 * parsed file's every data byte is touched (ASan catches a view outside the
 * buffer), its sizes must agree with each other and with the buffer, and
 * writing it back with our writer must give a file that parses to the same
 * dtype, shape and bytes. Seeds: tests/fuzz/corpus_npy. Build with
 * -DTS_FUZZ=ON (clang). */
#include "npy.h"

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
    ts__npy a;
    ts_status s = ts__npy_parse("fuzz.npy", buf, size, &a);
    if (s != TS_OK) {
        if (s > 0 || a.data || a.owned || a.rank || a.nbytes) abort();
        if (strncmp(ts_last_error(), "fuzz.npy: ", 10) != 0) {
            fprintf(stderr, "a rejection that does not name the file: %s\n", ts_last_error());
            abort();
        }
        free(buf);
        return 0;
    }
    if (a.rank < 0 || a.rank > TS_MAX_RANK || a.version < 1 || a.version > 3) abort();
    int64_t numel = 1;
    for (int d = 0; d < a.rank; d++) {
        if (a.shape[d] < 0) abort();
        numel *= a.shape[d];
    }
    if (numel != a.numel || a.nbytes != (size_t)numel * ts_dtype_size(a.dtype)) abort();
    const uint8_t *p = a.data;
    if (p < buf || p + a.nbytes != buf + size) abort(); /* the data ends the file exactly */
    unsigned sum = 0;
    for (size_t i = 0; i < a.nbytes; i++) sum += p[i];
    void *out = NULL;
    size_t n = 0;
    if (ts__npy_serialize(a.dtype, a.rank, a.shape, a.data, a.nbytes, &out, &n) != TS_OK) {
        fprintf(stderr, "our writer refuses what our reader accepted: %s\n", ts_last_error());
        abort();
    }
    ts__npy b;
    if (ts__npy_parse("again.npy", out, n, &b) != TS_OK) {
        fprintf(stderr, "our own output does not parse: %s\n", ts_last_error());
        abort();
    }
    if (b.dtype != a.dtype || b.rank != a.rank || memcmp(b.shape, a.shape, sizeof a.shape) || b.nbytes != a.nbytes ||
        (a.nbytes && memcmp(a.data, b.data, a.nbytes)))
        abort();
    free(out);
    free(buf);
    return (int)(sum & 0);
}
