/* test_runtime.c: contexts, tensors and views, launch argument and config
 * checks, the backend registry and interface (with a fake backend defined
 * here), the module cache, the printer's golden files and the CLI.
 *
 * Sections: helpers; tensors and views; launch arguments; configs;
 * contexts and the registry; a fake backend; the module cache; golden
 * files; the CLI. Criterion runs each test in its own process, so tests
 * may set environment variables and register backends freely. */
#include <criterion/criterion.h>

#include "backend_internal.h"
#include "kernels.h"
#include "tessera.h"
#include "tessera_backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* ---------------------------------------------------------------- helpers */

static ts_context *ref_ctx(void) {
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create("ref", 0, &ctx), TS_OK, "%s", ts_last_error());
    return ctx;
}

static ts_tensor *tensor(ts_context *ctx, ts_dtype dt, int rank, const int64_t *shape) {
    ts_tensor *t = NULL;
    cr_assert_eq(ts_tensor_create(ctx, dt, rank, shape, &t), TS_OK, "%s", ts_last_error());
    return t;
}

static void expect_msg(const char *const *subs) {
    const char *msg = ts_last_error();
    for (int i = 0; subs[i]; i++) cr_expect(strstr(msg, subs[i]) != NULL, "message '%s' lacks '%s'", msg, subs[i]);
}
#define SUBS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* y[m, n] = x[m, n] * s over a tiled grid. */
static ts_kernel *build_scale(void) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("scale", &b), TS_OK);
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", TS_F32, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "y", TS_F32, 2, (ts_size[]){M, N});
    ts_param s = ts_param_scalar(b, "s", TS_F32);
    ts_tunable(b, "BM", 1, 64, 4);
    ts_tunable(b, "BN", 16, 128, 32);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BM"), tn = ts_grid_tile(b, "tn", N, "BN");
    ts_index ix[2] = {TS_AT(tm), TS_AT(tn)};
    ts_store(b, y, ix, ts_binary(b, TS_MUL, ts_load(b, x, ix, 0.0), ts_scalar(b, s)));
    ts_kernel *k = NULL;
    cr_assert_eq(ts_builder_finish(b, &k), TS_OK, "%s", ts_last_error());
    ts_builder_destroy(b);
    return k;
}

/* ---------------------------------------------------------------- tensors and views */

Test(tensors, create_and_query) {
    ts_context *ctx = ref_ctx();
    ts_tensor *t = tensor(ctx, TS_F16, 3, (int64_t[]){2, 3, 4});
    cr_expect_eq(ts_tensor_dtype(t), TS_F16);
    cr_expect_eq(ts_tensor_rank(t), 3);
    cr_expect_eq(ts_tensor_numel(t), 24);
    const int64_t *sh = ts_tensor_shape(t), *st = ts_tensor_strides(t);
    cr_expect(sh[0] == 2 && sh[1] == 3 && sh[2] == 4);
    cr_expect(st[0] == 12 && st[1] == 4 && st[2] == 1, "row-major strides, got %lld %lld %lld", (long long)st[0], (long long)st[1],
              (long long)st[2]);
    cr_expect_eq(ts_tensor_context(t), ctx);
    ts_tensor_destroy(t);
    ts_tensor *bad = (ts_tensor *)&bad;
    cr_expect_eq(ts_tensor_create(ctx, TS_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, &bad), TS_ERR_RANK);
    cr_expect_null(bad);
    bad = (ts_tensor *)&bad;
    cr_expect_eq(ts_tensor_create(ctx, TS_F32, 1, (int64_t[]){-1}, &bad), TS_ERR_INVALID_ARGUMENT);
    cr_expect_null(bad);
    cr_expect_eq(ts_tensor_create(ctx, TS_DTYPE_COUNT, 1, (int64_t[]){1}, &bad), TS_ERR_INVALID_ARGUMENT);
    cr_expect_eq(ts_tensor_create(NULL, TS_F32, 1, (int64_t[]){1}, &bad), TS_ERR_INVALID_ARGUMENT);
    ts_context_destroy(ctx);
}

Test(tensors, view_bounds_are_checked) {
    ts_context *ctx = ref_ctx();
    ts_tensor *t = tensor(ctx, TS_F32, 2, (int64_t[]){4, 5}); /* 20 elements */
    static const struct {
        int rank;
        int64_t shape[2], strides[2], offset;
        ts_status want;
    } cases[] = {
        {2, {4, 5}, {5, 1}, 0, TS_OK},
        {2, {5, 4}, {4, 1}, 0, TS_OK},              /* a reshape */
        {2, {5, 4}, {1, 5}, 0, TS_OK},              /* the transpose */
        {1, {20, 0}, {1, 0}, 0, TS_OK},
        {1, {10, 0}, {2, 0}, 1, TS_OK},             /* odd elements: 1..19 */
        {1, {20, 0}, {-1, 0}, 19, TS_OK},           /* reversed */
        {2, {4, 5}, {5, 1}, 1, TS_ERR_INDEX},       /* one past the end */
        {1, {1, 0}, {1, 0}, 20, TS_ERR_INDEX},
        {1, {3, 0}, {1, 0}, -1, TS_ERR_INDEX},      /* before the start */
        {1, {20, 0}, {-1, 0}, 18, TS_ERR_INDEX},    /* reversed, reaching -1 */
        {2, {4, 5}, {6, 1}, 0, TS_ERR_INDEX},       /* last element 22 */
        {1, {11, 0}, {2, 0}, 0, TS_ERR_INDEX},      /* last element 20 */
        {1, {0, 0}, {1, 0}, 0, TS_OK},              /* empty view */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ts_tensor *v = (ts_tensor *)&v;
        ts_status s = ts_tensor_view(t, cases[i].rank, cases[i].shape, cases[i].strides, cases[i].offset, &v);
        cr_expect_eq(s, cases[i].want, "case %zu: %s (want %s): %s", i, ts_status_name(s), ts_status_name(cases[i].want), ts_last_error());
        if (cases[i].want == TS_ERR_INDEX) {
            cr_expect_null(v, "case %zu: failed view must leave *out NULL", i);
            expect_msg(SUBS("ts_tensor_view", "outside the storage"));
        }
        if (s == TS_OK) ts_tensor_destroy(v);
    }
    ts_tensor *v = (ts_tensor *)&v;
    cr_expect_eq(ts_tensor_view(t, 5, (int64_t[]){1, 1, 1, 1, 1}, (int64_t[]){1, 1, 1, 1, 1}, 0, &v), TS_ERR_RANK);
    cr_expect_null(v);
    cr_expect_eq(ts_tensor_view(t, 1, (int64_t[]){-2}, (int64_t[]){1}, 0, &v), TS_ERR_INVALID_ARGUMENT);
    cr_expect_eq(ts_tensor_view(NULL, 1, (int64_t[]){1}, (int64_t[]){1}, 0, &v), TS_ERR_INVALID_ARGUMENT);
    ts_tensor_destroy(t);
    ts_context_destroy(ctx);
}

/* Regression: `(shape[d] - 1) * strides[d]` once overflowed int64 for large
 * strides, so the bound check could be bypassed (2 * 2^62 wraps). */
Test(tensors, view_bounds_survive_overflow) {
    ts_context *ctx = ref_ctx();
    ts_tensor *t = tensor(ctx, TS_F32, 1, (int64_t[]){4});
    ts_tensor *v = (ts_tensor *)&v;
    cr_expect_eq(ts_tensor_view(t, 1, (int64_t[]){3}, (int64_t[]){INT64_C(1) << 62}, 0, &v), TS_ERR_INDEX, "%s", ts_last_error());
    cr_expect_null(v);
    v = (ts_tensor *)&v;
    cr_expect_eq(ts_tensor_view(t, 2, (int64_t[]){INT64_C(1) << 40, INT64_C(1) << 40}, (int64_t[]){INT64_C(1) << 40, 1}, 0, &v),
                 TS_ERR_INDEX, "%s", ts_last_error());
    cr_expect_null(v);
    ts_tensor_destroy(t);
    ts_context_destroy(ctx);
}

Test(tensors, contiguous_round_trip_and_ranges) {
    ts_context *ctx = ref_ctx();
    ts_tensor *t = tensor(ctx, TS_I32, 2, (int64_t[]){3, 7});
    int32_t in[21], out[21];
    for (int i = 0; i < 21; i++) in[i] = i * i - 50;
    cr_assert_eq(ts_tensor_write(t, in, sizeof in), TS_OK);
    memset(out, 0, sizeof out);
    cr_assert_eq(ts_tensor_read(t, out, sizeof out), TS_OK);
    cr_expect_arr_eq(in, out, sizeof in);
    /* wrong byte counts are rejected, naming the function */
    cr_expect_eq(ts_tensor_write(t, in, sizeof in - 4), TS_ERR_INVALID_ARGUMENT);
    expect_msg(SUBS("ts_tensor_write", "80 bytes given", "84"));
    cr_expect_eq(ts_tensor_read(t, out, sizeof out + 4), TS_ERR_INVALID_ARGUMENT);
    /* chunked uploads */
    int32_t part[5] = {-1, -2, -3, -4, -5};
    cr_assert_eq(ts_tensor_write_range(t, 8 * 4, part, sizeof part), TS_OK);
    cr_assert_eq(ts_tensor_read(t, out, sizeof out), TS_OK);
    for (int i = 0; i < 21; i++) cr_expect_eq(out[i], i >= 8 && i < 13 ? -(i - 7) : in[i], "element %d", i);
    cr_expect_eq(ts_tensor_write_range(t, 20 * 4, part, 8), TS_ERR_INDEX);
    cr_expect_eq(ts_tensor_write_range(t, 21 * 4, part, 0), TS_OK);
    ts_tensor_destroy(t);
    ts_context_destroy(ctx);
}

Test(tensors, strided_view_round_trip) {
    ts_context *ctx = ref_ctx();
    const int64_t R = 6, C = 8;
    ts_tensor *st = tensor(ctx, TS_F32, 2, (int64_t[]){R, C});
    float base[48];
    for (int i = 0; i < 48; i++) base[i] = (float)(1000 + i);
    cr_assert_eq(ts_tensor_write(st, base, sizeof base), TS_OK);
    /* rows 1, 3, 5 and columns 2, 5 (stride 3): a 3 x 2 view */
    ts_tensor *v = NULL;
    cr_assert_eq(ts_tensor_view(st, 2, (int64_t[]){3, 2}, (int64_t[]){2 * C, 3}, 1 * C + 2, &v), TS_OK, "%s", ts_last_error());
    float got[6], in[6] = {-1, -2, -3, -4, -5, -6};
    cr_assert_eq(ts_tensor_read(v, got, sizeof got), TS_OK);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) cr_expect_eq(got[i * 2 + j], base[(1 + 2 * i) * C + 2 + 3 * j]);
    cr_assert_eq(ts_tensor_write(v, in, sizeof in), TS_OK);
    cr_assert_eq(ts_tensor_read(v, got, sizeof got), TS_OK);
    cr_expect_arr_eq(got, in, sizeof in);
    float all[48];
    cr_assert_eq(ts_tensor_read(st, all, sizeof all), TS_OK);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            int inside = r % 2 == 1 && (c == 2 || c == 5);
            float want = inside ? in[(r / 2) * 2 + (c == 5)] : base[r * C + c];
            cr_expect_eq(all[r * C + c], want, "storage[%d,%d] = %g, want %g", r, c, all[r * C + c], want);
        }
    /* a contiguous view with an offset (rows 2..3) round-trips through the fast path */
    ts_tensor *rows = NULL;
    cr_assert_eq(ts_tensor_view(st, 2, (int64_t[]){2, C}, (int64_t[]){C, 1}, 2 * C, &rows), TS_OK);
    float r2[16];
    for (int i = 0; i < 16; i++) r2[i] = (float)(-100 - i);
    cr_assert_eq(ts_tensor_write(rows, r2, sizeof r2), TS_OK);
    cr_assert_eq(ts_tensor_read(st, all, sizeof all), TS_OK);
    for (int i = 0; i < 16; i++) cr_expect_eq(all[2 * C + i], r2[i]);
    cr_expect_eq(all[2 * C - 1], base[2 * C - 1]);
    cr_expect_eq(all[4 * C], base[4 * C]);
    /* write_range refuses a strided view */
    cr_expect_eq(ts_tensor_write_range(v, 0, in, 4), TS_ERR_INVALID_ARGUMENT);
    /* the storage outlives the tensor it came from while views remain */
    ts_tensor_destroy(st);
    cr_assert_eq(ts_tensor_read(rows, r2, sizeof r2), TS_OK);
    cr_expect_eq(r2[0], -100.0f);
    ts_tensor_destroy(v);
    ts_tensor_destroy(rows);
    ts_context_destroy(ctx);
}

/* ---------------------------------------------------------------- launch arguments */

Test(launch, argument_checks) {
    ts_context *ctx = ref_ctx(), *other = ref_ctx();
    ts_kernel *k = build_scale();
    ts_tensor *x = tensor(ctx, TS_F32, 2, (int64_t[]){3, 4}), *y = tensor(ctx, TS_F32, 2, (int64_t[]){3, 4});
    ts_tensor *x16 = tensor(ctx, TS_F16, 2, (int64_t[]){3, 4}), *x1 = tensor(ctx, TS_F32, 1, (int64_t[]){12});
    ts_tensor *y5 = tensor(ctx, TS_F32, 2, (int64_t[]){3, 5}), *xo = tensor(other, TS_F32, 2, (int64_t[]){3, 4});
    float zeros[12] = {0};
    ts_tensor_write(x, zeros, sizeof zeros);

    cr_expect_eq(ts_launch(ctx, k, NULL, (ts_arg[]){TS_ARG_TENSOR(x), TS_ARG_TENSOR(y), TS_ARG_F(2)}, 3, NULL), TS_OK, "%s", ts_last_error());

    cr_expect_eq(ts_launch(ctx, k, NULL, (ts_arg[]){TS_ARG_TENSOR(x), TS_ARG_TENSOR(y)}, 2, NULL), TS_ERR_BAD_ARGS);
    expect_msg(SUBS("kernel 'scale'", "takes 3 arguments, 2 given"));
    cr_expect_eq(ts_launch(ctx, k, NULL, NULL, 3, NULL), TS_ERR_BAD_ARGS);

    cr_expect_eq(ts_launch(ctx, k, NULL, (ts_arg[]){TS_ARG_TENSOR(x16), TS_ARG_TENSOR(y), TS_ARG_F(2)}, 3, NULL), TS_ERR_BAD_ARGS);
    expect_msg(SUBS("kernel 'scale'", "tensor 'x'", "f16", "expects f32"));

    cr_expect_eq(ts_launch(ctx, k, NULL, (ts_arg[]){TS_ARG_TENSOR(x), TS_ARG_TENSOR(x1), TS_ARG_F(2)}, 3, NULL), TS_ERR_BAD_ARGS);
    expect_msg(SUBS("kernel 'scale'", "tensor 'y'", "rank 1", "expects 2"));

    cr_expect_eq(ts_launch(ctx, k, NULL, (ts_arg[]){TS_ARG_F(1), TS_ARG_TENSOR(y), TS_ARG_F(2)}, 3, NULL), TS_ERR_BAD_ARGS);
    expect_msg(SUBS("kernel 'scale'", "'x'", "must be a tensor"));

    cr_expect_eq(ts_launch(ctx, k, NULL, (ts_arg[]){TS_ARG_TENSOR(x), TS_ARG_TENSOR(y), TS_ARG_TENSOR(x)}, 3, NULL), TS_ERR_BAD_ARGS);
    expect_msg(SUBS("kernel 'scale'", "'s'", "must be a scalar"));

    cr_expect_eq(ts_launch(ctx, k, NULL, (ts_arg[]){TS_ARG_TENSOR(xo), TS_ARG_TENSOR(y), TS_ARG_F(2)}, 3, NULL), TS_ERR_BAD_ARGS);
    expect_msg(SUBS("kernel 'scale'", "tensor 'x'", "another context"));

    cr_expect_eq(ts_launch(NULL, k, NULL, NULL, 0, NULL), TS_ERR_INVALID_ARGUMENT);
    cr_expect_eq(ts_launch(ctx, NULL, NULL, NULL, 0, NULL), TS_ERR_INVALID_ARGUMENT);

    ts_tensor *all[] = {x, y, x16, x1, y5, xo};
    for (int i = 0; i < 6; i++) ts_tensor_destroy(all[i]);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
    ts_context_destroy(other);
}

/* Regression: the "size %s is already %lld" message once read the plan
 * after freeing it, so an inconsistently bound size symbol crashed. */
Test(launch, size_bound_inconsistently) {
    ts_context *ctx = ref_ctx();
    ts_kernel *k = build_scale();
    ts_tensor *x = tensor(ctx, TS_F32, 2, (int64_t[]){3, 4}), *y5 = tensor(ctx, TS_F32, 2, (int64_t[]){3, 5});
    cr_expect_eq(ts_launch(ctx, k, NULL, (ts_arg[]){TS_ARG_TENSOR(x), TS_ARG_TENSOR(y5), TS_ARG_F(2)}, 3, NULL), TS_ERR_BAD_ARGS);
    expect_msg(SUBS("kernel 'scale'", "tensor 'y'", "dim 1 is 5", "size N is already 4"));
    ts_tensor_destroy(x);
    ts_tensor_destroy(y5);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

Test(launch, fixed_size_must_match) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("fixed", &b), TS_OK);
    ts_size F = ts_size_fixed(b, 4);
    ts_param x = ts_param_tensor(b, "x", TS_F32, 1, &F);
    ts_tile t = ts_grid_tile(b, "t", F, NULL);
    ts_store(b, x, &TS_AT(t), ts_zeros(b, TS_F32, 1, &t));
    ts_kernel *k;
    cr_assert_eq(ts_builder_finish(b, &k), TS_OK, "%s", ts_last_error());
    ts_builder_destroy(b);
    ts_context *ctx = ref_ctx();
    ts_tensor *x5 = tensor(ctx, TS_F32, 1, (int64_t[]){5}), *x4 = tensor(ctx, TS_F32, 1, (int64_t[]){4});
    cr_expect_eq(ts_launch(ctx, k, NULL, (ts_arg[]){TS_ARG_TENSOR(x5)}, 1, NULL), TS_ERR_BAD_ARGS);
    expect_msg(SUBS("kernel 'fixed'", "tensor 'x'", "dim 0 is 5", "must be 4"));
    cr_expect_eq(ts_launch(ctx, k, NULL, (ts_arg[]){TS_ARG_TENSOR(x4)}, 1, NULL), TS_OK, "%s", ts_last_error());
    ts_tensor_destroy(x5);
    ts_tensor_destroy(x4);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* ---------------------------------------------------------------- configs */

static ts_status launch_with(ts_context *ctx, const ts_kernel *k, const char *cfg_text) {
    ts_config *c = NULL;
    cr_assert_eq(ts_config_parse(cfg_text, &c), TS_OK, "%s", ts_last_error());
    ts_tensor *x = tensor(ctx, TS_F32, 2, (int64_t[]){3, 4}), *y = tensor(ctx, TS_F32, 2, (int64_t[]){3, 4});
    float zeros[12] = {0};
    ts_tensor_write(x, zeros, sizeof zeros);
    ts_status s = ts_launch(ctx, k, c, (ts_arg[]){TS_ARG_TENSOR(x), TS_ARG_TENSOR(y), TS_ARG_F(1)}, 3, NULL);
    ts_tensor_destroy(x);
    ts_tensor_destroy(y);
    ts_config_destroy(c);
    return s;
}

Test(config, launch_rejects_bad_configs) {
    ts_context *ctx = ref_ctx();
    ts_kernel *k = build_scale();
    cr_expect_eq(launch_with(ctx, k, "BM=8,BN=64,threads=128,vec=4,unroll=3,stage=1"), TS_OK, "%s", ts_last_error());
    cr_expect_eq(launch_with(ctx, k, "BX=8"), TS_ERR_UNKNOWN_TUNABLE);
    expect_msg(SUBS("kernel 'scale'", "'BX'", "neither a tunable"));
    cr_expect_eq(launch_with(ctx, k, "BM=3"), TS_ERR_BAD_CONFIG);
    expect_msg(SUBS("kernel 'scale'", "BM=3", "power of two", "1..64"));
    cr_expect_eq(launch_with(ctx, k, "BN=256"), TS_ERR_BAD_CONFIG); /* above the range */
    expect_msg(SUBS("BN=256", "16..128"));
    cr_expect_eq(launch_with(ctx, k, "BN=8"), TS_ERR_BAD_CONFIG); /* below the range */
    cr_expect_eq(launch_with(ctx, k, "BM=0"), TS_ERR_BAD_CONFIG);
    cr_expect_eq(launch_with(ctx, k, "BM=-4"), TS_ERR_BAD_CONFIG);
    cr_expect_eq(launch_with(ctx, k, "threads=96"), TS_ERR_BAD_CONFIG);
    expect_msg(SUBS("threads=96", "power of two"));
    cr_expect_eq(launch_with(ctx, k, "threads=2048"), TS_ERR_BAD_CONFIG);
    cr_expect_eq(launch_with(ctx, k, "vec=32"), TS_ERR_BAD_CONFIG);
    cr_expect_eq(launch_with(ctx, k, "unroll=9"), TS_ERR_BAD_CONFIG);
    cr_expect_eq(launch_with(ctx, k, "stage=2"), TS_ERR_BAD_CONFIG);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

Test(config, check_without_launch) {
    ts_kernel *k = build_scale();
    ts_config *c;
    cr_assert_eq(ts_config_create(&c), TS_OK);
    cr_expect_eq(ts_config_check(c, k), TS_OK);
    cr_expect_eq(ts_config_check(NULL, k), TS_OK);
    cr_assert_eq(ts_config_set(c, "BM", 16), TS_OK);
    cr_expect_eq(ts_config_check(c, k), TS_OK);
    cr_assert_eq(ts_config_set(c, "BM", 12), TS_OK); /* replaces */
    cr_expect_eq(ts_config_count(c), 1);
    cr_expect_eq(ts_config_check(c, k), TS_ERR_BAD_CONFIG);
    cr_expect_eq(ts_config_check(c, NULL), TS_ERR_INVALID_ARGUMENT);
    cr_expect_eq(ts_config_set(c, "", 1), TS_ERR_INVALID_ARGUMENT);
    cr_expect_eq(ts_config_set(NULL, "BM", 1), TS_ERR_INVALID_ARGUMENT);
    char longkey[100];
    memset(longkey, 'k', 99);
    longkey[99] = 0;
    cr_expect_eq(ts_config_set(c, longkey, 1), TS_ERR_BAD_CONFIG);
    ts_config_destroy(c);
    ts_kernel_destroy(k);
}

Test(config, parse_format_copy) {
    ts_config *c = NULL;
    cr_assert_eq(ts_config_parse(" threads=64 , BM=8,BN=32 ", &c), TS_OK, "%s", ts_last_error());
    cr_expect_eq(ts_config_count(c), 3);
    int64_t v = 0;
    cr_expect(ts_config_get(c, "BM", &v) && v == 8);
    cr_expect(ts_config_get(c, "threads", &v) && v == 64);
    cr_expect_not(ts_config_get(c, "BK", &v));
    cr_expect_not(ts_config_get(NULL, "BM", &v));
    char *s = ts_config_format(c);
    cr_expect_str_eq(s, "BM=8,BN=32,threads=64"); /* keys sorted */
    free(s);
    ts_config *d = NULL;
    cr_assert_eq(ts_config_copy(c, &d), TS_OK);
    s = ts_config_format(d);
    cr_expect_str_eq(s, "BM=8,BN=32,threads=64");
    free(s);
    ts_config_set(d, "BM", 16);
    cr_expect(ts_config_get(c, "BM", &v) && v == 8, "the copy is independent");
    ts_config_destroy(d);
    ts_config_destroy(c);

    cr_assert_eq(ts_config_parse("", &c), TS_OK);
    cr_expect_eq(ts_config_count(c), 0);
    s = ts_config_format(c);
    cr_expect_str_eq(s, "");
    free(s);
    ts_config_destroy(c);
    cr_assert_eq(ts_config_parse("BM=-8", &c), TS_OK); /* negative parses; the check rejects it */
    cr_expect(ts_config_get(c, "BM", &v) && v == -8);
    ts_config_destroy(c);
}

Test(config, parse_errors) {
    static const struct { const char *text, *needle; } bad[] = {
        {"BM", "KEY=VALUE"},        {"=4", "KEY=VALUE"},        {"BM=", "not an integer"},       {"BM=x", "not an integer"},
        {"BM=4;BN=2", "not an integer"}, {"BM=4,BM=8", "given twice"}, {"BM=4x", "not an integer"}, {"B-M=4", "KEY=VALUE"},
        {"BM=99999999999999999999", "not an integer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ts_config *c = (ts_config *)&c;
        cr_expect_eq(ts_config_parse(bad[i].text, &c), TS_ERR_BAD_CONFIG, "'%s' parsed", bad[i].text);
        cr_expect_null(c, "'%s': a failed parse leaves *out NULL", bad[i].text);
        cr_expect(strstr(ts_last_error(), bad[i].needle) != NULL, "'%s': message '%s' lacks '%s'", bad[i].text, ts_last_error(), bad[i].needle);
        cr_expect(strstr(ts_last_error(), bad[i].text) != NULL, "'%s': message '%s' does not quote the config", bad[i].text, ts_last_error());
    }
    ts_config *c = (ts_config *)&c;
    cr_expect_eq(ts_config_parse(NULL, &c), TS_ERR_INVALID_ARGUMENT);
    cr_expect_null(c);
    cr_expect_eq(ts_config_parse("BM=1", NULL), TS_ERR_INVALID_ARGUMENT);
}

/* ---------------------------------------------------------------- contexts and the registry */

Test(context, ref_is_always_there) {
    int found = 0;
    for (int i = 0; i < ts_backend_count(); i++)
        if (strcmp(ts_backend_name(i), "ref") == 0) found = 1;
    cr_expect(found, "ref is registered");
    cr_expect_null(ts_backend_name(-1));
    cr_expect_null(ts_backend_name(ts_backend_count()));
    const char *why = NULL;
    cr_expect(ts_backend_available("ref", &why));
    cr_expect_eq(ts_backend_device_count("ref"), 1);
    ts_context *ctx = ref_ctx();
    cr_expect_str_eq(ts_context_backend(ctx), "ref");
    cr_expect_str_neq(ts_context_device_name(ctx), "");
    uint64_t h1 = 0, h2 = 0;
    const char *fp = ts_context_fingerprint(ctx, &h1);
    cr_expect(strncmp(fp, "ref:tessera:", 12) == 0, "fingerprint '%s'", fp);
    cr_expect_neq(h1, 0);
    ts_context *again = ref_ctx();
    ts_context_fingerprint(again, &h2);
    cr_expect_eq(h1, h2, "the fingerprint is stable");
    const ts_device_caps *caps = ts_context_caps(ctx);
    cr_assert_not_null(caps);
    cr_expect_gt(caps->max_group_size, 0);
    cr_expect_gt(caps->global_mem_bytes, 0);
    for (int d = 0; d < TS_DTYPE_COUNT; d++) cr_expect(ts_device_supports_dtype(ctx, (ts_dtype)d), "ref stores %s", ts_dtype_name((ts_dtype)d));
    cr_expect_not(ts_device_supports_dtype(ctx, TS_DTYPE_COUNT));
    ts_context_destroy(ctx);
    ts_context_destroy(again);
}

Test(context, unknown_backend_names_known_ones) {
    ts_context *ctx = (ts_context *)&ctx;
    cr_expect_eq(ts_context_create("nosuch", 0, &ctx), TS_ERR_NOT_FOUND);
    cr_expect_null(ctx);
    expect_msg(SUBS("'nosuch'", "known:", "ref"));
    const char *why = NULL;
    cr_expect_not(ts_backend_available("nosuch", &why));
    cr_assert_not_null(why);
    cr_expect(strstr(why, "nosuch") != NULL, "%s", why);
    cr_expect_eq(ts_backend_device_count("nosuch"), 0);
}

Test(context, device_index_out_of_range) {
    ts_context *ctx = (ts_context *)&ctx;
    cr_expect_eq(ts_context_create("ref", 1, &ctx), TS_ERR_NOT_FOUND);
    cr_expect_null(ctx);
    expect_msg(SUBS("'ref'", "1 device", "device 1 does not exist"));
    ctx = (ts_context *)&ctx;
    cr_expect_eq(ts_context_create("ref", -1, &ctx), TS_ERR_NOT_FOUND);
    cr_expect_null(ctx);
    cr_expect_eq(ts_context_create("ref", 0, NULL), TS_ERR_INVALID_ARGUMENT);
}

Test(context, tessera_backend_env_is_honored) {
    cr_assert_eq(setenv("TESSERA_BACKEND", "nosuch_env", 1), 0);
    ts_context *ctx = (ts_context *)&ctx;
    cr_expect_eq(ts_context_create(NULL, 0, &ctx), TS_ERR_NOT_FOUND, "NULL backend must follow $TESSERA_BACKEND");
    cr_expect_null(ctx);
    expect_msg(SUBS("'nosuch_env'"));
    cr_expect_eq(ts_context_create("auto", 0, &ctx), TS_ERR_NOT_FOUND, "\"auto\" must follow $TESSERA_BACKEND");
    /* an explicit name wins over the environment */
    cr_expect_eq(ts_context_create("ref", 0, &ctx), TS_OK, "%s", ts_last_error());
    ts_context_destroy(ctx);
    cr_assert_eq(setenv("TESSERA_BACKEND", "ref", 1), 0);
    cr_expect_eq(ts_context_create(NULL, 0, &ctx), TS_OK, "%s", ts_last_error());
    cr_expect_str_eq(ts_context_backend(ctx), "ref");
    ts_context_destroy(ctx);
    cr_assert_eq(unsetenv("TESSERA_BACKEND"), 0);
    cr_expect_eq(ts_context_create(NULL, 0, &ctx), TS_OK, "auto picks an available backend: %s", ts_last_error());
    ts_context_destroy(ctx);
}

/* ---------------------------------------------------------------- a fake backend */

/* Host-memory backend that counts every call, so the tests can see what
 * the core calls and when: ownership of buffers and modules, caps, the
 * module cache. Launches run the reference executor. */
static struct {
    int init, shutdown, opens, closes, allocs, frees, writes, reads, compiles, module_frees, launches, syncs;
    int64_t last_grid[3];
    int last_threads;
    const void *last_source;
} calls;

static ts_status fake_init(void **state) {
    calls.init++;
    *state = &calls;
    return TS_OK;
}
static void fake_shutdown(void *state) { (void)state, calls.shutdown++; }
static int fake_device_count(void *state) { return state == &calls ? 2 : 0; }
static ts_status fake_open(void *state, int index, ts_device_caps *caps, ts_fingerprint *fp, void **dev) {
    (void)state;
    calls.opens++;
    memset(caps, 0, sizeof *caps);
    caps->max_group_size = 64;
    caps->shared_mem_bytes = 48 << 10;
    caps->subgroup_size = 32;
    caps->compute_units = 7;
    caps->global_mem_bytes = INT64_C(1) << 30;
    caps->max_buffer_bytes = 1 << 20;
    caps->dtype_mask = (1u << TS_F32) | (1u << TS_I32);
    caps->native_dtype_mask = caps->dtype_mask;
    snprintf(fp->vendor, sizeof fp->vendor, "Fake Vendor");
    snprintf(fp->device, sizeof fp->device, "fake device %d", index);
    snprintf(fp->arch, sizeof fp->arch, "fk1");
    snprintf(fp->driver, sizeof fp->driver, "9.9");
    snprintf(fp->device_version, sizeof fp->device_version, "v%d", index);
    *dev = (void *)(intptr_t)(index + 1);
    return TS_OK;
}
static void fake_close(void *dev) { (void)dev, calls.closes++; }
static ts_status fake_alloc(void *dev, size_t bytes, void **buf) {
    (void)dev;
    calls.allocs++;
    *buf = calloc(1, bytes);
    return *buf ? TS_OK : TS_ERR_OUT_OF_MEMORY;
}
static void fake_free(void *dev, void *buf) {
    (void)dev;
    calls.frees++;
    free(buf);
}
static ts_status fake_write(void *dev, void *buf, size_t off, const void *src, size_t n) {
    (void)dev;
    calls.writes++;
    memcpy((char *)buf + off, src, n);
    return TS_OK;
}
static ts_status fake_read(void *dev, void *buf, size_t off, void *dst, size_t n) {
    (void)dev;
    calls.reads++;
    memcpy(dst, (char *)buf + off, n);
    return TS_OK;
}
static ts_status fake_compile(void *dev, const ts_compile_request *req, void **module) {
    (void)dev;
    calls.compiles++;
    calls.last_source = req->source;
    *module = malloc(16); /* owned by the backend until module_free */
    return *module ? TS_OK : TS_ERR_OUT_OF_MEMORY;
}
static void fake_module_free(void *dev, void *module) {
    (void)dev;
    calls.module_frees++;
    free(module);
}
static ts_status fake_launch(void *dev, void *module, const ts_launch_request *req, double *ms) {
    (void)dev, (void)module;
    calls.launches++;
    memcpy(calls.last_grid, req->grid, sizeof calls.last_grid);
    calls.last_threads = req->threads;
    if (ms) *ms = 0.5;
    return ts_backend_run_reference(req);
}
static ts_status fake_sync(void *dev) { (void)dev, calls.syncs++; return TS_OK; }

static const ts_backend fake_backend = {
    .version = TS_BACKEND_VERSION, .name = "fake", .dialect = TS_DIALECT_NONE,
    .init = fake_init, .shutdown = fake_shutdown, .device_count = fake_device_count,
    .device_open = fake_open, .device_close = fake_close,
    .buffer_alloc = fake_alloc, .buffer_free = fake_free, .buffer_write = fake_write, .buffer_read = fake_read,
    .compile = fake_compile, .module_free = fake_module_free, .launch = fake_launch, .synchronize = fake_sync,
};

Test(backend, register_checks_the_version) {
    ts_backend old = fake_backend, newer = fake_backend, unnamed = fake_backend;
    old.version = 0;
    old.name = "old";
    cr_expect_eq(ts_backend_register(&old), TS_ERR_VERSION);
    expect_msg(SUBS("'old'", "version 0"));
    newer.version = TS_BACKEND_VERSION + 1;
    newer.name = "newer";
    cr_expect_eq(ts_backend_register(&newer), TS_ERR_VERSION);
    expect_msg(SUBS("'newer'", "understands"));
    unnamed.name = NULL;
    cr_expect_neq(ts_backend_register(&unnamed), TS_OK);
    cr_expect_neq(ts_backend_register(NULL), TS_OK);
    ts_backend dup = fake_backend;
    dup.name = "ref";
    cr_expect_eq(ts_backend_register(&dup), TS_ERR_NAME);
    expect_msg(SUBS("'ref'", "already registered"));
    for (int i = 0; i < ts_backend_count(); i++) {
        cr_expect_str_neq(ts_backend_name(i), "old");
        cr_expect_str_neq(ts_backend_name(i), "newer");
    }
}

Test(backend, fake_backend_lifecycle_and_ownership) {
    cr_assert_eq(ts_backend_register(&fake_backend), TS_OK, "%s", ts_last_error());
    cr_expect_eq(calls.init, 0, "backends are initialized lazily");
    cr_expect(ts_backend_available("fake", NULL));
    cr_expect_eq(ts_backend_device_count("fake"), 2);
    cr_expect_eq(calls.init, 1, "and once");
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create("fake", 1, &ctx), TS_OK, "%s", ts_last_error());
    cr_expect_eq(calls.init, 1);
    cr_expect_eq(calls.opens, 1);
    cr_expect_str_eq(ts_context_device_name(ctx), "fake device 1");
    const ts_device_caps *caps = ts_context_caps(ctx);
    cr_expect_eq(caps->max_group_size, 64);
    cr_expect_eq(caps->subgroup_size, 32);
    uint64_t h = 0;
    const char *fp = ts_context_fingerprint(ctx, &h);
    cr_expect(strstr(fp, "fake:Fake-Vendor:fake-device-1:fk1:9.9") == fp, "fingerprint '%s' (fields sanitized)", fp);
    cr_expect(strstr(fp, "wg64") && strstr(fp, "sg32") && strstr(fp, "cu7"), "fingerprint '%s' lacks caps", fp);
    cr_expect_neq(h, 0);
    /* dtypes the device cannot store are refused, naming the device */
    ts_tensor *t = (ts_tensor *)&t;
    cr_expect_eq(ts_tensor_create(ctx, TS_F16, 1, (int64_t[]){4}, &t), TS_ERR_UNSUPPORTED);
    cr_expect_null(t);
    expect_msg(SUBS("fake device 1", "f16"));
    cr_expect_not(ts_device_supports_dtype(ctx, TS_F16));
    /* larger than max_buffer_bytes */
    cr_expect_eq(ts_tensor_create(ctx, TS_F32, 1, (int64_t[]){1 << 20}, &t), TS_ERR_LIMIT);
    cr_expect_eq(calls.allocs, 0);
    /* a tensor and two views share one buffer, freed after the last of them */
    ts_tensor *a = tensor(ctx, TS_F32, 2, (int64_t[]){4, 8}), *v1 = NULL, *v2 = NULL;
    cr_expect_eq(calls.allocs, 1);
    cr_assert_eq(ts_tensor_view(a, 1, (int64_t[]){8}, (int64_t[]){1}, 8, &v1), TS_OK);
    cr_assert_eq(ts_tensor_view(a, 1, (int64_t[]){4}, (int64_t[]){8}, 0, &v2), TS_OK);
    cr_expect_eq(calls.allocs, 1);
    ts_tensor_destroy(a);
    ts_tensor_destroy(v1);
    cr_expect_eq(calls.frees, 0);
    ts_tensor_destroy(v2);
    cr_expect_eq(calls.frees, 1);
    ts_context_destroy(ctx);
    cr_expect_eq(calls.closes, 1);
}

Test(backend, launches_flow_through_the_interface) {
    cr_assert_eq(ts_backend_register(&fake_backend), TS_OK, "%s", ts_last_error());
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create("fake", 0, &ctx), TS_OK, "%s", ts_last_error());
    ts_kernel *k = build_scale();
    ts_tensor *x = tensor(ctx, TS_F32, 2, (int64_t[]){5, 70}), *y = tensor(ctx, TS_F32, 2, (int64_t[]){5, 70});
    float xs[350], ys[350];
    for (int i = 0; i < 350; i++) xs[i] = (float)i - 100.0f;
    cr_assert_eq(ts_tensor_write(x, xs, sizeof xs), TS_OK);
    ts_config *c = NULL;
    cr_assert_eq(ts_config_parse("BM=2,BN=32,threads=32", &c), TS_OK);
    double ms = 0;
    cr_assert_eq(ts_launch(ctx, k, c, (ts_arg[]){TS_ARG_TENSOR(x), TS_ARG_TENSOR(y), TS_ARG_F(-3)}, 3, &ms), TS_OK, "%s", ts_last_error());
    cr_expect_eq(ms, 0.5, "the backend's time is reported");
    cr_expect_eq(calls.compiles, 1);
    cr_expect_null(calls.last_source, "a TS_DIALECT_NONE backend gets no source");
    cr_expect_eq(calls.launches, 1);
    cr_expect(calls.last_grid[0] == 3 && calls.last_grid[1] == 3 && calls.last_grid[2] == 1, "grid %lld %lld %lld (want 3 3 1)",
              (long long)calls.last_grid[0], (long long)calls.last_grid[1], (long long)calls.last_grid[2]);
    cr_expect_eq(calls.last_threads, 32);
    cr_assert_eq(ts_tensor_read(y, ys, sizeof ys), TS_OK);
    for (int i = 0; i < 350; i++) cr_expect_eq(ys[i], xs[i] * -3.0f);
    /* the device caps gate the config: threads above max_group_size */
    ts_config_set(c, "threads", 128);
    cr_expect_eq(ts_launch(ctx, k, c, (ts_arg[]){TS_ARG_TENSOR(x), TS_ARG_TENSOR(y), TS_ARG_F(1)}, 3, NULL), TS_ERR_BAD_CONFIG);
    expect_msg(SUBS("kernel 'scale'", "128", "64"));
    cr_expect_eq(calls.launches, 1);
    /* a second config compiles a second module; both are freed with the context */
    ts_config_set(c, "threads", 64);
    cr_assert_eq(ts_launch(ctx, k, c, (ts_arg[]){TS_ARG_TENSOR(x), TS_ARG_TENSOR(y), TS_ARG_F(1)}, 3, NULL), TS_OK, "%s", ts_last_error());
    cr_expect_eq(calls.compiles, 2);
    ts_config_destroy(c);
    ts_tensor_destroy(x);
    ts_tensor_destroy(y);
    cr_expect_eq(calls.module_frees, 0, "modules live as long as the context");
    ts_context_destroy(ctx);
    cr_expect_eq(calls.module_frees, 2);
    cr_expect_eq(calls.allocs, calls.frees);
    ts_kernel_destroy(k);
}

static ts_status failing_init(void **state) {
    (void)state;
    return ts__error(TS_ERR_UNAVAILABLE, "libfake.so.1: cannot open shared object file");
}
static int no_devices(void *state) { (void)state; return 0; }

Test(backend, unavailable_backends_say_why) {
    ts_backend broken = fake_backend, empty = fake_backend;
    broken.name = "broken";
    broken.init = failing_init;
    empty.name = "empty";
    empty.device_count = no_devices;
    cr_assert_eq(ts_backend_register(&broken), TS_OK);
    cr_assert_eq(ts_backend_register(&empty), TS_OK);
    const char *why = NULL;
    cr_expect_not(ts_backend_available("broken", &why));
    cr_expect(why && strstr(why, "libfake.so.1"), "%s", why ? why : "(null)");
    ts_context *ctx = (ts_context *)&ctx;
    cr_expect_eq(ts_context_create("broken", 0, &ctx), TS_ERR_UNAVAILABLE);
    cr_expect_null(ctx);
    expect_msg(SUBS("'broken'", "not available", "libfake.so.1"));
    cr_expect_not(ts_backend_available("empty", &why));
    cr_expect(why && strstr(why, "no device"), "%s", why ? why : "(null)");
    cr_expect_eq(ts_context_create("empty", 0, &ctx), TS_ERR_UNAVAILABLE);
    /* ref is unaffected, and "auto" skips them */
    ctx = NULL;
    cr_expect_eq(ts_context_create(NULL, 0, &ctx), TS_OK, "%s", ts_last_error());
    ts_context_destroy(ctx);
}

/* A table missing a member the core calls is refused at registration,
 * naming the member, so nothing can call through a NULL pointer later. */
Test(backend, null_members_are_refused_not_called) {
    ts_backend partial = fake_backend;
    partial.name = "partial";
    partial.buffer_alloc = NULL;
    partial.compile = NULL;
    partial.launch = NULL;
    cr_expect_eq(ts_backend_register(&partial), TS_ERR_VERSION);
    cr_expect(strstr(ts_last_error(), "partial") && strstr(ts_last_error(), "buffer_alloc"), "%s", ts_last_error());
    ts_context *ctx = (ts_context *)&ctx;
    cr_expect_eq(ts_context_create("partial", 0, &ctx), TS_ERR_NOT_FOUND);
    cr_expect_null(ctx);
}

/* ---------------------------------------------------------------- the module cache */

static void launch_scale(ts_context *ctx, const ts_kernel *k, const char *cfg, int64_t n) {
    ts_config *c = NULL;
    cr_assert_eq(ts_config_parse(cfg, &c), TS_OK);
    ts_tensor *x = tensor(ctx, TS_F32, 2, (int64_t[]){3, n}), *y = tensor(ctx, TS_F32, 2, (int64_t[]){3, n});
    float *z = calloc((size_t)(3 * n), sizeof *z);
    ts_tensor_write(x, z, (size_t)(3 * n) * sizeof *z);
    cr_assert_eq(ts_launch(ctx, k, c, (ts_arg[]){TS_ARG_TENSOR(x), TS_ARG_TENSOR(y), TS_ARG_F(1)}, 3, NULL), TS_OK, "%s", ts_last_error());
    free(z);
    ts_tensor_destroy(x);
    ts_tensor_destroy(y);
    ts_config_destroy(c);
}

Test(cache, same_kernel_and_config_compile_once) {
    ts_context *ctx = ref_ctx();
    ts_kernel *k = build_scale();
    cr_expect_eq(ts__context_compile_count(ctx), 0);
    launch_scale(ctx, k, "BM=4,BN=32", 10);
    cr_expect_eq(ts__context_compile_count(ctx), 1);
    launch_scale(ctx, k, "BM=4,BN=32", 10);
    cr_expect_eq(ts__context_compile_count(ctx), 1, "the second launch reuses the module");
    launch_scale(ctx, k, "BM=4,BN=32", 77); /* other sizes, same blocks */
    cr_expect_eq(ts__context_compile_count(ctx), 1);
    launch_scale(ctx, k, "", 10); /* defaults are BM=4,BN=32 */
    cr_expect_eq(ts__context_compile_count(ctx), 1, "an empty config means the defaults");
    launch_scale(ctx, k, "BM=8,BN=32", 10);
    cr_expect_eq(ts__context_compile_count(ctx), 2, "other block sizes compile another module");
    launch_scale(ctx, k, "BM=4,BN=32,threads=128", 10);
    cr_expect_eq(ts__context_compile_count(ctx), 3, "a knob is part of the key");
    launch_scale(ctx, k, "BM=8,BN=32", 10);
    cr_expect_eq(ts__context_compile_count(ctx), 3);
    /* an identical kernel built again has the same hash, hence the same modules */
    ts_kernel *k2 = build_scale();
    cr_expect_eq(ts_kernel_hash(k), ts_kernel_hash(k2));
    launch_scale(ctx, k2, "BM=4,BN=32", 10);
    cr_expect_eq(ts__context_compile_count(ctx), 3);
    /* a different context has its own cache */
    ts_context *ctx2 = ref_ctx();
    launch_scale(ctx2, k, "BM=4,BN=32", 10);
    cr_expect_eq(ts__context_compile_count(ctx2), 1);
    cr_expect_eq(ts__context_compile_count(ctx), 3);
    ts_kernel_destroy(k);
    ts_kernel_destroy(k2);
    ts_context_destroy(ctx);
    ts_context_destroy(ctx2);
}

Test(cache, failed_launch_compiles_nothing) {
    ts_context *ctx = ref_ctx();
    ts_kernel *k = build_scale();
    ts_tensor *x = tensor(ctx, TS_F32, 2, (int64_t[]){3, 4});
    cr_expect_eq(ts_launch(ctx, k, NULL, (ts_arg[]){TS_ARG_TENSOR(x), TS_ARG_TENSOR(x)}, 2, NULL), TS_ERR_BAD_ARGS);
    ts_config *c;
    ts_config_parse("BM=3", &c);
    cr_expect_eq(ts_launch(ctx, k, c, (ts_arg[]){TS_ARG_TENSOR(x), TS_ARG_TENSOR(x), TS_ARG_F(1)}, 3, NULL), TS_ERR_BAD_CONFIG);
    cr_expect_eq(ts__context_compile_count(ctx), 0);
    ts_config_destroy(c);
    ts_tensor_destroy(x);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* ---------------------------------------------------------------- golden files */

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static void check_golden(const char *example) {
    const ts_example *ex = ts_example_find(example);
    cr_assert_not_null(ex);
    ts_kernel *k = NULL;
    cr_assert_eq(ex->build(TS_F32, &k), TS_OK, "%s", ts_last_error());
    char *got = ts_kernel_print(k);
    cr_assert_not_null(got);
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/golden/%s.tile", TS_SOURCE_DIR, example);
    char *want = read_text(path);
    if (strcmp(got, want) != 0) {
        /* first differing line, for a readable failure */
        const char *g = got, *w = want;
        int line = 1;
        while (*g && *g == *w) {
            if (*g == '\n') line++;
            g++, w++;
        }
        const char *gl = g, *wl = w;
        while (gl > got && gl[-1] != '\n') gl--;
        while (wl > want && wl[-1] != '\n') wl--;
        cr_expect_fail("%s differs from the printer at line %d:\n  golden:  %.*s\n  printed: %.*s", path, line, (int)strcspn(wl, "\n"), wl,
                       (int)strcspn(gl, "\n"), gl);
    }
    /* printing is deterministic */
    char *again = ts_kernel_print(k);
    cr_expect_str_eq(got, again);
    free(again);
    free(got);
    free(want);
    ts_kernel_destroy(k);
}

Test(golden, matmul) { check_golden("matmul"); }
Test(golden, softmax_online) { check_golden("softmax_online"); }

/* Regression: build_attention once passed two builder calls as arguments
 * of one call; C leaves their order open, so gcc and clang built different
 * IR. The golden file holds the source order. */
Test(golden, attention) { check_golden("attention"); }

/* ---------------------------------------------------------------- the CLI */

static int run_cli(const char *args, char **out) {
    const char *cli = getenv("TESSERA_TEST_CLI");
    if (!cli || !*cli) cr_skip_test("TESSERA_TEST_CLI is not set (run through ctest)");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", cli, args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen: %s", strerror(errno));
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + n, 1, cap - 1 - n, p)) > 0) n += k;
    buf[n] = 0;
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(cli, devices_lists_ref) {
    char *out;
    int rc = run_cli("devices", &out);
    cr_expect_eq(rc, 0, "tessera devices exited %d:\n%s", rc, out);
    cr_expect(strstr(out, "ref") != NULL, "no ref in:\n%s", out);
    cr_expect(strstr(out, "fingerprint ref:") != NULL, "no fingerprint in:\n%s", out);
    free(out);
}

Test(cli, examples_softmax_on_ref) {
    char *out;
    int rc = run_cli("examples --backend ref --filter softmax", &out);
    cr_expect_eq(rc, 0, "tessera examples exited %d:\n%s", rc, out);
    cr_expect(strstr(out, "kernel") && strstr(out, "shape") && strstr(out, "dtype") && strstr(out, "status"), "no table header in:\n%s", out);
    cr_expect(strstr(out, "softmax_online") != NULL, "no softmax_online row in:\n%s", out);
    cr_expect(strstr(out, " ok ") != NULL, "no passing row in:\n%s", out);
    cr_expect(strstr(out, "FAIL") == NULL, "a failing row in:\n%s", out);
    cr_expect(strstr(out, "matmul") == NULL, "--filter softmax ran matmul:\n%s", out);
    free(out);
}

Test(cli, help_and_unknown_command) {
    char *out;
    static const char *const cmds[] = {"--help", "devices --help", "examples --help", "bench --help"};
    for (int i = 0; i < 4; i++) {
        int rc = run_cli(cmds[i], &out);
        cr_expect_eq(rc, 0, "tessera %s exited %d", cmds[i], rc);
        cr_expect(strstr(out, "usage") != NULL, "tessera %s printed no usage:\n%s", cmds[i], out);
        free(out);
    }
    int rc = run_cli("no-such-command", &out);
    cr_expect_neq(rc, 0);
    cr_expect(strstr(out, "no-such-command") != NULL, "%s", out);
    free(out);
}

Test(cli, backend_from_environment) {
    char *out;
    int rc = run_cli("devices", &out); /* skips when the CLI is unknown */
    free(out);
    (void)rc;
    cr_assert_eq(setenv("TESSERA_BACKEND", "nosuch", 1), 0);
    rc = run_cli("examples --filter exp --quick", &out);
    cr_expect_neq(rc, 0, "TESSERA_BACKEND=nosuch must select no backend:\n%s", out);
    cr_expect(strstr(out, "nosuch") != NULL, "%s", out);
    free(out);
    cr_assert_eq(setenv("TESSERA_BACKEND", "ref", 1), 0);
    rc = run_cli("examples --filter exp --quick", &out);
    cr_expect_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "exp ") != NULL, "%s", out);
    free(out);
}
