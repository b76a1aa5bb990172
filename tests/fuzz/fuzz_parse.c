/* fuzz_parse.c: libFuzzer target for the tile language parser.
 *
 * Any input must parse or fail cleanly (no crash, leak, hang or undefined
 * behaviour under ASan/UBSan). A kernel that parses must also print and
 * parse back to the same IR (the printer/parser round trip). Seeds:
 * tests/fuzz/corpus_parse (the examples and the error corpus).
 *
 * Build: CC=clang cmake -DTS_FUZZ=ON -DTS_SANITIZE=ON ...; run with
 * tools/run-fuzz.sh BUILD_DIR SECONDS. */
#include "tessera.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 16) return 0; /* kernels are small; keep each run fast */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    ts_kernel *k = NULL;
    ts_status s = ts_kernel_parse(text, "fuzz.tile", &k);
    free(text);
    if (s != TS_OK) {
        if (k) __builtin_trap(); /* a failed parse must leave *out NULL */
        if (ts_last_error()[0] == 0) __builtin_trap(); /* and say why */
        return 0;
    }
    if (!k) __builtin_trap();
    char *printed = ts_kernel_print(k);
    if (printed) {
        ts_kernel *k2 = NULL;
        if (ts_kernel_parse(printed, "printed.tile", &k2) != TS_OK) __builtin_trap();
        if (!ts_kernel_equal(k, k2) || ts_kernel_hash(k) != ts_kernel_hash(k2)) __builtin_trap();
        ts_kernel_destroy(k2);
        free(printed);
    }
    ts_kernel_destroy(k);
    return 0;
}
