/* test_demo.c: all-MiniLM-L6-v2 (examples/app/minilm.c) on every available
 * backend against the expected embeddings of an independent numpy forward
 * pass (tools/demo_model.py, run by the set-up: tools/setup-demo.sh), and
 * the errors for missing or malformed weights and bad inputs.
 *
 * No tuning here: launches use the tuning database of the test cache, else
 * the kernels' defaults. Backends excluded by $TESSERA_TEST_BACKENDS (a list
 * of names) are skipped, and so is everything that needs the model when
 * build/demo (or $TESSERA_DEMO_DIR) does not hold it, with the reason. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "minilm.h"
#include "tessera_safetensors.h"

static void paths(char *model, char *expected, size_t n) {
    snprintf(model, n, "%s/model.safetensors", ts_minilm_default_dir());
    snprintf(expected, n, "%s/expected.safetensors", ts_minilm_default_dir());
}

static void need_model(char *model, char *expected, size_t n) {
    paths(model, expected, n);
    if (access(model, R_OK) != 0 || access(expected, R_OK) != 0)
        cr_skip_test("the demo model is absent (%s, %s): tools/setup-demo.sh fetches it (make setup runs it)", model, expected);
}

static int backend_selected(const char *name) {
    const char *only = getenv("TESSERA_TEST_BACKENDS");
    if (!only || !*only) return 1;
    /* whole names in a comma or space separated list */
    size_t n = strlen(name);
    for (const char *p = strstr(only, name); p; p = strstr(p + 1, name))
        if ((p == only || p[-1] == ',' || p[-1] == ' ') && (p[n] == 0 || p[n] == ',' || p[n] == ' ')) return 1;
    return 0;
}

/* Runs the model on `backend` and compares with the expected embeddings;
 * returns 0 when the backend was skipped. */
static int check_backend(const char *backend) {
    char model[4096], expected[4096];
    paths(model, expected, sizeof model);
    const char *why = NULL;
    if (!backend_selected(backend) || !ts_backend_available(backend, &why)) return 0;
    ts_minilm_expected e;
    cr_assert_eq(ts_minilm_expected_load(expected, &e), TS_OK, "%s", ts_last_error());
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create(backend, 0, &ctx), TS_OK, "%s: %s", backend, ts_last_error());
    ts_minilm *m = NULL;
    cr_assert_eq(ts_minilm_load(ctx, model, &m), TS_OK, "%s: %s", backend, ts_last_error());
    float *out = malloc((size_t)e.B * TS_MINILM_HIDDEN * sizeof(float));
    cr_assert_not_null(out);
    for (int i = 0; i < (int)((size_t)e.B * TS_MINILM_HIDDEN); i++) out[i] = NAN;
    cr_assert_eq(ts_minilm_forward(m, e.B, e.S, e.ids, e.types, e.mask, out, NULL), TS_OK, "%s: %s", backend, ts_last_error());
    double worst = 0;
    int at = 0;
    for (int i = 0; i < e.B * TS_MINILM_HIDDEN; i++) {
        double d = fabs((double)out[i] - (double)e.embeddings[i]);
        if (!(d <= worst)) {
            worst = d;
            at = i;
        }
    }
    cr_log_info("%s (%s): max |ours - expected| = %.3g over %d x %d", backend, ts_context_device_name(ctx), worst, e.B, TS_MINILM_HIDDEN);
    cr_expect(worst <= TS_MINILM_TOLERANCE, "%s: embedding [%d, %d] = %.9g, expected %.9g (max error %.3g > %.0e)", backend, at / TS_MINILM_HIDDEN,
              at % TS_MINILM_HIDDEN, out[at], e.embeddings[at], worst, TS_MINILM_TOLERANCE);
    /* a second pass on the same buffers gives the same result */
    float *again = malloc((size_t)e.B * TS_MINILM_HIDDEN * sizeof(float));
    cr_assert_not_null(again);
    cr_assert_eq(ts_minilm_forward(m, e.B, e.S, e.ids, e.types, e.mask, again, NULL), TS_OK, "%s", ts_last_error());
    cr_expect_eq(memcmp(out, again, (size_t)e.B * TS_MINILM_HIDDEN * sizeof(float)), 0, "%s: two forward passes differ", backend);
    free(again);
    free(out);
    ts_minilm_destroy(m);
    ts_context_destroy(ctx);
    ts_minilm_expected_free(&e);
    return 1;
}

Test(demo, ref, .timeout = 600) {
    char model[4096], expected[4096];
    need_model(model, expected, sizeof model);
    if (!backend_selected("ref")) cr_skip_test("TESSERA_TEST_BACKENDS=%s excludes ref", getenv("TESSERA_TEST_BACKENDS"));
    cr_assert(check_backend("ref"));
}

Test(demo, opencl, .timeout = 600) {
    char model[4096], expected[4096];
    need_model(model, expected, sizeof model);
    if (!backend_selected("opencl")) cr_skip_test("TESSERA_TEST_BACKENDS=%s excludes opencl", getenv("TESSERA_TEST_BACKENDS"));
    const char *why = NULL;
    if (!ts_backend_available("opencl", &why)) cr_skip_test("opencl backend not available: %s", why ? why : "?");
    cr_assert(check_backend("opencl"));
}

/* Every other registered backend (CUDA, HIP, Vulkan, plugins) that is available here. */
Test(demo, other_backends, .timeout = 600) {
    char model[4096], expected[4096];
    need_model(model, expected, sizeof model);
    int ran = 0;
    char names[512] = "";
    for (int i = 0; i < ts_backend_count(); i++) {
        const char *b = ts_backend_name(i);
        if (strcmp(b, "ref") == 0 || strcmp(b, "opencl") == 0) continue;
        if (check_backend(b)) {
            ran++;
            strncat(names, " ", sizeof names - strlen(names) - 1);
            strncat(names, b, sizeof names - strlen(names) - 1);
        }
    }
    if (!ran) cr_skip_test("no other backend is available and selected here");
    cr_log_info("checked:%s", names);
}

/* ---------------------------------------------------------------- bad input */

Test(demo, missing_weights_are_an_error) {
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create("ref", 0, &ctx), TS_OK);
    ts_minilm *m = (ts_minilm *)1;
    ts_status s = ts_minilm_load(ctx, "/nonexistent/model.safetensors", &m);
    cr_expect_neq(s, TS_OK);
    cr_expect_null(m);
    cr_expect(strstr(ts_last_error(), "/nonexistent/model.safetensors") != NULL, "message: %s", ts_last_error());
    ts_minilm_expected e;
    cr_expect_neq(ts_minilm_expected_load("/nonexistent/expected.safetensors", &e), TS_OK);
    ts_context_destroy(ctx);
}

Test(demo, malformed_weights_are_an_error) {
    char path[] = "/tmp/tessera_demo_bad_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char junk[] = "\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}";
    cr_assert_eq(write(fd, junk, sizeof junk - 1), (ssize_t)(sizeof junk - 1));
    close(fd);
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create("ref", 0, &ctx), TS_OK);
    ts_minilm *m = NULL;
    cr_expect_neq(ts_minilm_load(ctx, path, &m), TS_OK);
    cr_expect_null(m);
    cr_log_info("truncated file: %s", ts_last_error());

    /* a valid file whose tensors have the wrong shape */
    ts_st_writer *w = NULL;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    float data[8] = {0};
    cr_assert_eq(ts_st_writer_add(w, "embeddings.word_embeddings.weight", TS_ST_F32, 2, (uint64_t[]){2, 4}, data, sizeof data), TS_OK);
    cr_assert_eq(ts_st_writer_save(w, path), TS_OK);
    ts_st_writer_destroy(w);
    cr_expect_neq(ts_minilm_load(ctx, path, &m), TS_OK);
    cr_expect_null(m);
    cr_expect(strstr(ts_last_error(), "embeddings.word_embeddings.weight") != NULL, "message: %s", ts_last_error());
    unlink(path);
    ts_context_destroy(ctx);
}

Test(demo, bad_tokens_are_an_error, .timeout = 300) {
    char model[4096], expected[4096];
    need_model(model, expected, sizeof model);
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create("ref", 0, &ctx), TS_OK);
    ts_minilm *m = NULL;
    cr_assert_eq(ts_minilm_load(ctx, model, &m), TS_OK, "%s", ts_last_error());
    int32_t ids[2] = {101, 999999}, types[2] = {0, 0}, mask[2] = {1, 1};
    float out[TS_MINILM_HIDDEN];
    cr_expect_eq(ts_minilm_forward(m, 1, 2, ids, types, mask, out, NULL), TS_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(ts_last_error(), "999999") != NULL, "message: %s", ts_last_error());
    ids[1] = 102;
    mask[0] = 0;
    cr_expect_eq(ts_minilm_forward(m, 1, 2, ids, types, mask, out, NULL), TS_ERR_INVALID_ARGUMENT);
    mask[0] = 1;
    cr_expect_eq(ts_minilm_forward(m, 1, 2, ids, types, mask, out, NULL), TS_OK, "%s", ts_last_error());
    ts_minilm_destroy(m);
    ts_context_destroy(ctx);
}

/* ---------------------------------------------------------------- the command */

/* Runs `cmd`, returns its exit status and its output (caller frees). */
static int run_cli(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = calloc(1, cap);
    cr_assert_not_null(buf);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) n += r;
    buf[n] = 0;
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(demo, command_on_ref, .timeout = 300) {
    char model[4096], expected[4096];
    need_model(model, expected, sizeof model);
    if (!backend_selected("ref")) cr_skip_test("TESSERA_TEST_BACKENDS=%s excludes ref", getenv("TESSERA_TEST_BACKENDS"));
    const char *cli = getenv("TESSERA_TEST_CLI");
    if (!cli || !*cli) cr_skip_test("TESSERA_TEST_CLI is not set (run through ctest)");
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' demo --backend ref --repeats 1 --model '%s' 2>&1", cli, ts_minilm_default_dir());
    int rc = run_cli(cmd, &out);
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "ms/forward") && strstr(out, " ok\n"), "%s", out);
    free(out);
    /* no model: exit 1 and the set-up script named */
    snprintf(cmd, sizeof cmd, "'%s' demo --backend ref --model /nonexistent 2>&1", cli);
    rc = run_cli(cmd, &out);
    cr_expect_eq(rc, 1, "%s", out);
    cr_expect(strstr(out, "setup-demo.sh") != NULL, "%s", out);
    free(out);
}
