/* test_executor.c: the reference executor (backend "ref") against
 * independent computations.
 *
 * Sections:
 *   1. The example kernel set: every kernel, dtype, size and config, each
 *      checked by the harness against the kernel's own plain-C reference.
 *   2. Hand-written kernels checked against plain C loops written here:
 *      atomics, reductions with partial tiles, masks, casts, strided views,
 *      broadcasting, integer division, gathers, empty launches, loops.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "kernels.h"
#include "tessera.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static ts_context *ref_ctx(void) {
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create("ref", 0, &ctx), TS_OK, "%s", ts_last_error());
    return ctx;
}

static ts_kernel *finish(ts_builder *b) {
    ts_kernel *k = NULL;
    ts_status s = ts_builder_finish(b, &k);
    cr_assert_eq(s, TS_OK, "builder: %s", ts_last_error());
    ts_builder_destroy(b);
    return k;
}

static ts_builder *begin(const char *name) {
    ts_builder *b = NULL;
    cr_assert_eq(ts_builder_create(name, &b), TS_OK, "%s", ts_last_error());
    return b;
}

static ts_tensor *tensor(ts_context *ctx, ts_dtype dt, int rank, const int64_t *shape, const void *data) {
    ts_tensor *t = NULL;
    cr_assert_eq(ts_tensor_create(ctx, dt, rank, shape, &t), TS_OK, "%s", ts_last_error());
    if (data) cr_assert_eq(ts_tensor_write(t, data, (size_t)ts_tensor_numel(t) * ts_dtype_size(dt)), TS_OK, "%s", ts_last_error());
    return t;
}

static void read_back(const ts_tensor *t, void *out) {
    cr_assert_eq(ts_tensor_read(t, out, (size_t)ts_tensor_numel(t) * ts_dtype_size(ts_tensor_dtype(t))), TS_OK, "%s", ts_last_error());
}

static ts_config *config(const char *text) {
    ts_config *c = NULL;
    cr_assert_eq(ts_config_parse(text, &c), TS_OK, "%s", ts_last_error());
    return c;
}

static void launch(ts_context *ctx, const ts_kernel *k, const char *cfg, const ts_arg *args, int n) {
    ts_config *c = config(cfg);
    ts_status s = ts_launch(ctx, k, c, args, n, NULL);
    cr_assert_eq(s, TS_OK, "launch %s [%s]: %s: %s", ts_kernel_name(k), cfg, ts_status_name(s), ts_last_error());
    ts_config_destroy(c);
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
/* uniform in [-2, 2), never exactly 0 */
static float rndf(void) {
    float v = (float)((double)(rnd() >> 11) / 9007199254740992.0 * 4.0 - 2.0);
    return v == 0.0f ? 0.25f : v;
}

static float *rand_f32(int64_t n) {
    float *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    cr_assert_not_null(p);
    for (int64_t i = 0; i < n; i++) p[i] = rndf();
    return p;
}

static float *fill_f32(int64_t n, float v) {
    float *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    cr_assert_not_null(p);
    for (int64_t i = 0; i < n; i++) p[i] = v;
    return p;
}

static int close_to(double got, double want, double atol, double rtol) { return fabs(got - want) <= atol + rtol * fabs(want); }

/* ---------------------------------------------------------------- 1. the example kernel set */

typedef struct example_case {
    int example;
    int dtype_index;
} example_case;

ParameterizedTestParameters(examples, ref) {
    static example_case cases[128];
    int n = 0;
    for (int e = 0; e < ts_example_count(); e++)
        for (int d = 0; d < ts_example_get(e)->ndtypes && n < 128; d++) cases[n++] = (example_case){e, d};
    return cr_make_param_array(example_case, cases, (size_t)n);
}

static void run_example(const ts_example *ex, ts_dtype dt, uint64_t seed_base, int *ncases) {
    ts_context *ctx = ref_ctx();
    ts_kernel *k = NULL;
    cr_assert_eq(ex->build(dt, &k), TS_OK, "%s/%s: build: %s", ex->name, ts_dtype_name(dt), ts_last_error());
    ts_config *cfgs[4];
    int nc = ts_ex_configs(k, cfgs, 4);
    cr_assert_geq(nc, 1);
    if (ts_kernel_tunable_count(k) > 0) cr_expect_geq(nc, 2, "%s: only the default config", ex->name);
    for (int si = 0; si < 6 && ex->sizes[si]; si++) {
        ts_ex_sizes sz;
        cr_assert_eq(ts_ex_parse_sizes(ex->sizes[si], &sz), TS_OK);
        for (int c = 0; c < nc; c++) {
            ts_ex_result r;
            ts_ex_run_case(ctx, ex, k, dt, &sz, cfgs[c], 1, seed_base + (uint64_t)(si * 7 + c), &r);
            char *cs = ts_config_format(cfgs[c]);
            cr_expect_eq(r.status, TS_OK, "%s dtype=%s sizes=%s config=%s: %s: %s", ex->name, ts_dtype_name(dt), ex->sizes[si],
                         cs && *cs ? cs : "default", ts_status_name(r.status), r.message);
            cr_expect_leq(r.max_err, 1.0, "%s dtype=%s sizes=%s config=%s: error %g x tolerance", ex->name, ts_dtype_name(dt), ex->sizes[si],
                          cs && *cs ? cs : "default", r.max_err);
            free(cs);
            (*ncases)++;
        }
    }
    for (int c = 0; c < nc; c++) ts_config_destroy(cfgs[c]);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

ParameterizedTest(example_case *p, examples, ref, .timeout = 120) {
    const ts_example *ex = ts_example_get(p->example);
    cr_assert_not_null(ex);
    int n = 0;
    run_example(ex, ex->dtypes[p->dtype_index], 1000u * (uint64_t)p->example + 17u * (uint64_t)p->dtype_index + 1u, &n);
    cr_expect_geq(n, 4, "%s: too few cases ran", ex->name);
}

Test(examples, the_set_is_complete) {
    static const char *const names[] = {"add", "exp", "gelu", "silu", "swiglu", "sum", "long_sum", "softmax", "softmax_online",
                                        "layer_norm", "rms_norm", "matmul", "matmul_bias_gelu", "bmm", "attention",
                                        "cross_entropy", "embedding", "transpose",
                                        /* after Helion's examples, in the tile language only */
                                        "rope", "concatenate", "jagged_sum", "segment_sum", "gather_gemv", "attention_causal",
                                        "matmul_split_k", "grouped_matmul", "layer_norm_bwd", "dropout",
                                        "int8_gemm", "fp8_gemm"};
    cr_expect_geq(ts_example_count(), (int)(sizeof names / sizeof names[0]));
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const ts_example *ex = ts_example_find(names[i]);
        cr_expect_not_null(ex, "example '%s' is missing", names[i]);
        if (ex) cr_expect_not_null(ex->reference, "example '%s' has no independent reference", names[i]);
    }
    const ts_example *mm = ts_example_find("matmul");
    cr_assert_not_null(mm);
    cr_expect_eq(mm->ndtypes, 3, "matmul is tested with f32, f16 and bf16 inputs");
}

/* attention's table runs with causal on; run it off too */
static double attention_not_causal(int p, const ts_ex_sizes *s) {
    if (p == 4) return 1.0 / sqrt((double)ts_ex_size(s, "D"));
    return 0.0;
}

Test(examples, attention_without_causal_mask, .timeout = 120) {
    const ts_example *orig = ts_example_find("attention");
    cr_assert_not_null(orig);
    ts_example ex = *orig;
    ex.scalar = attention_not_causal;
    int n = 0;
    run_example(&ex, TS_F32, 777, &n);
    cr_expect_geq(n, 4);
}

/* S != T: the causal mask and the key tiles must not assume a square. */
Test(examples, attention_rectangular) {
    const ts_example *ex = ts_example_find("attention");
    cr_assert_not_null(ex);
    ts_example noncausal = *ex;
    noncausal.scalar = attention_not_causal;
    ts_context *ctx = ref_ctx();
    ts_kernel *k;
    cr_assert_eq(ex->build(TS_F32, &k), TS_OK);
    static const char *const sizes[] = {"H=2,S=5,T=37,D=8", "H=1,S=40,T=3,D=16"};
    for (int i = 0; i < 2; i++) {
        ts_ex_sizes sz;
        ts_ex_parse_sizes(sizes[i], &sz);
        ts_ex_result r;
        ts_ex_run_case(ctx, &noncausal, k, TS_F32, &sz, NULL, 1, 99 + (uint64_t)i, &r);
        cr_expect_eq(r.status, TS_OK, "attention %s (not causal): %s", sizes[i], r.message);
    }
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* ---------------------------------------------------------------- 2. hand-written kernels */

/* out[n] += sum over a tile of rows of x[m, n]: column sums accumulated by
 * every row tile with atomic adds. */
static ts_kernel *build_colsum(ts_dtype dt) {
    ts_builder *b = begin(dt == TS_F32 ? "colsum" : "colsum_i32");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 2, (ts_size[]){M, N});
    ts_param out = ts_param_tensor(b, "out", dt, 1, &N);
    ts_tunable(b, "BM", 1, 64, 4);
    ts_tunable(b, "BN", 16, 256, 32);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BM"), tn = ts_grid_tile(b, "tn", N, "BN");
    ts_val v = ts_load(b, x, (ts_index[]){TS_AT(tm), TS_AT(tn)}, 1000.0); /* fill must not be added */
    ts_atomic_add(b, out, &TS_AT(tn), ts_reduce(b, TS_RED_SUM, v, 0, 0));
    return finish(b);
}

Test(handwritten, atomic_add_column_sums) {
    ts_context *ctx = ref_ctx();
    ts_kernel *k = build_colsum(TS_F32);
    static const int64_t shapes[][2] = {{1, 1}, {7, 13}, {127, 1000}, {1000, 7}, {3, 0}};
    static const char *const cfgs[] = {"", "BM=1,BN=16", "BM=64,BN=256", "BM=8,BN=128"};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
            int64_t M = shapes[si][0], N = shapes[si][1];
            float *x = rand_f32(M * N), *got = fill_f32(N, 0.0f);
            ts_tensor *tx = tensor(ctx, TS_F32, 2, shapes[si], x), *to = tensor(ctx, TS_F32, 1, &N, got);
            launch(ctx, k, cfgs[ci], (ts_arg[]){TS_ARG_TENSOR(tx), TS_ARG_TENSOR(to)}, 2);
            read_back(to, got);
            for (int64_t n = 0; n < N; n++) {
                double want = 0, mag = 0;
                for (int64_t m = 0; m < M; m++) {
                    want += x[m * N + n];
                    mag += fabs(x[m * N + n]);
                }
                cr_expect(close_to(got[n], want, 1e-5 + 1e-6 * mag, 1e-5), "M=%lld N=%lld [%s] out[%lld] = %.9g, want %.9g",
                          (long long)M, (long long)N, cfgs[ci], (long long)n, got[n], want);
            }
            ts_tensor_destroy(tx);
            ts_tensor_destroy(to);
            free(x);
            free(got);
        }
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

Test(handwritten, atomic_add_i32_exact) {
    ts_context *ctx = ref_ctx();
    ts_kernel *k = build_colsum(TS_I32);
    int64_t shape[2] = {127, 33}, N = 33;
    int32_t x[127 * 33], got[33];
    for (int i = 0; i < 127 * 33; i++) x[i] = (int32_t)(rnd() % 2001) - 1000;
    for (int i = 0; i < 33; i++) got[i] = 5; /* atomics add to what is there */
    ts_tensor *tx = tensor(ctx, TS_I32, 2, shape, x), *to = tensor(ctx, TS_I32, 1, &N, got);
    launch(ctx, k, "BM=8,BN=16", (ts_arg[]){TS_ARG_TENSOR(tx), TS_ARG_TENSOR(to)}, 2);
    read_back(to, got);
    for (int n = 0; n < 33; n++) {
        int32_t want = 5;
        for (int m = 0; m < 127; m++) want += x[m * 33 + n];
        cr_expect_eq(got[n], want, "out[%d] = %d, want %d", n, got[n], want);
    }
    ts_tensor_destroy(tx);
    ts_tensor_destroy(to);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* Row reductions over a whole-row tile whose padding holds a fill value
 * that would win (or poison) the reduction if it were observed. */
static ts_kernel *build_row_reductions(void) {
    ts_builder *b = begin("row_reductions");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", TS_F32, 2, (ts_size[]){M, N});
    ts_param amax = ts_param_tensor(b, "amax", TS_I32, 1, &M);
    ts_param mn = ts_param_tensor(b, "mn", TS_F32, 1, &M);
    ts_param mx = ts_param_tensor(b, "mx", TS_F32, 1, &M);
    ts_param mean = ts_param_tensor(b, "mean", TS_F32, 1, &M);
    ts_param sum = ts_param_tensor(b, "sum", TS_F32, 1, &M);
    ts_tunable(b, "BM", 1, 16, 2);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BM"), tn = ts_grid_tile(b, "tn", N, NULL);
    ts_index ix[2] = {TS_AT(tm), TS_AT(tn)};
    ts_val big = ts_load(b, x, ix, 1000.0), small = ts_load(b, x, ix, -1000.0), nan = ts_load(b, x, ix, NAN);
    ts_store(b, amax, &TS_AT(tm), ts_reduce(b, TS_RED_ARGMAX, big, 1, 0));
    ts_store(b, mx, &TS_AT(tm), ts_reduce(b, TS_RED_MAX, big, 1, 0));
    ts_store(b, mn, &TS_AT(tm), ts_reduce(b, TS_RED_MIN, small, 1, 0));
    ts_store(b, mean, &TS_AT(tm), ts_reduce(b, TS_RED_MEAN, nan, 1, 0));
    ts_store(b, sum, &TS_AT(tm), ts_reduce(b, TS_RED_SUM, nan, 1, 0));
    return finish(b);
}

Test(handwritten, argmax_min_max_mean_sum_with_partial_tiles) {
    ts_context *ctx = ref_ctx();
    ts_kernel *k = build_row_reductions();
    static const int64_t ns[] = {1, 7, 127, 1000};
    static const char *const cfgs[] = {"BM=1", "BM=2", "BM=16"};
    for (int ties = 0; ties < 2; ties++)
        for (size_t ni = 0; ni < 4; ni++)
            for (size_t ci = 0; ci < 3; ci++) {
                int64_t M = 5, N = ns[ni], shape[2] = {M, N};
                float *x = rand_f32(M * N);
                if (ties)
                    for (int64_t i = 0; i < M * N; i++) x[i] = (float)(rnd() % 4) - 2.0f; /* many equal maxima */
                int32_t amax[5];
                float mn[5], mx[5], mean[5], sum[5];
                ts_tensor *tx = tensor(ctx, TS_F32, 2, shape, x), *ta = tensor(ctx, TS_I32, 1, &M, NULL),
                          *tmn = tensor(ctx, TS_F32, 1, &M, NULL), *tmx = tensor(ctx, TS_F32, 1, &M, NULL),
                          *tme = tensor(ctx, TS_F32, 1, &M, NULL), *tsu = tensor(ctx, TS_F32, 1, &M, NULL);
                launch(ctx, k, cfgs[ci],
                       (ts_arg[]){TS_ARG_TENSOR(tx), TS_ARG_TENSOR(ta), TS_ARG_TENSOR(tmn), TS_ARG_TENSOR(tmx), TS_ARG_TENSOR(tme),
                                  TS_ARG_TENSOR(tsu)},
                       6);
                read_back(ta, amax);
                read_back(tmn, mn);
                read_back(tmx, mx);
                read_back(tme, mean);
                read_back(tsu, sum);
                for (int64_t m = 0; m < M; m++) {
                    const float *r = x + m * N;
                    int64_t arg = 0;
                    double lo = r[0], hi = r[0], s = 0;
                    for (int64_t n = 0; n < N; n++) {
                        if (r[n] > hi) { hi = r[n]; arg = n; }
                        if (r[n] < lo) lo = r[n];
                        s += r[n];
                    }
                    cr_expect_eq(amax[m], arg, "N=%lld %s ties=%d row %lld: argmax %d, want %lld (first maximum)", (long long)N, cfgs[ci], ties,
                                 (long long)m, amax[m], (long long)arg);
                    cr_expect_eq(mx[m], (float)hi, "N=%lld row %lld: max %g, want %g", (long long)N, (long long)m, mx[m], hi);
                    cr_expect_eq(mn[m], (float)lo, "N=%lld row %lld: min %g, want %g", (long long)N, (long long)m, mn[m], lo);
                    cr_expect(close_to(sum[m], s, 1e-5, 1e-6), "N=%lld row %lld: sum %.9g, want %.9g", (long long)N, (long long)m, sum[m], s);
                    cr_expect(close_to(mean[m], s / (double)N, 1e-6, 1e-6), "N=%lld row %lld: mean %.9g, want %.9g", (long long)N,
                              (long long)m, mean[m], s / (double)N);
                }
                ts_tensor_destroy(tx);
                ts_tensor_destroy(ta);
                ts_tensor_destroy(tmn);
                ts_tensor_destroy(tmx);
                ts_tensor_destroy(tme);
                ts_tensor_destroy(tsu);
                free(x);
            }
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* argmax across the tiles of an inner loop: the argmax of each tile is a
 * global index, combined with a running (max, index) pair. */
Test(handwritten, argmax_through_a_loop_gives_global_indices) {
    ts_builder *b = begin("loop_argmax");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", TS_F32, 2, (ts_size[]){M, N});
    ts_param out = ts_param_tensor(b, "out", TS_I32, 1, &M);
    ts_tunable(b, "BM", 1, 8, 2);
    ts_tunable(b, "BN", 16, 256, 16);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BM");
    ts_val init[2] = {ts_full(b, TS_F32, 1, &tm, -INFINITY), ts_zeros(b, TS_I32, 1, &tm)}, cur[2], res[2];
    ts_tile tn = ts_loop_begin(b, "tn", N, "BN", 2, init, cur);
    ts_val v = ts_load(b, x, (ts_index[]){TS_AT(tm), TS_AT(tn)}, 1e30);
    ts_val tmax = ts_reduce(b, TS_RED_MAX, v, 1, 0);
    ts_val targ = ts_reduce(b, TS_RED_ARGMAX, v, 1, 0);
    ts_val better = ts_binary(b, TS_GT, tmax, cur[0]);
    ts_val nbest = ts_select(b, better, tmax, cur[0]);
    ts_val narg = ts_select(b, better, targ, cur[1]);
    ts_loop_end(b, (ts_val[]){nbest, narg}, res);
    ts_store(b, out, &TS_AT(tm), res[1]);
    ts_kernel *k = finish(b);
    ts_context *ctx = ref_ctx();
    static const int64_t ns[] = {1, 7, 127, 1000};
    static const char *const cfgs[] = {"BN=16", "BN=64,BM=1", "BN=256,BM=8"};
    for (size_t ni = 0; ni < 4; ni++)
        for (size_t ci = 0; ci < 3; ci++) {
            int64_t M = 6, N = ns[ni], shape[2] = {M, N};
            float *x = rand_f32(M * N);
            int32_t got[6];
            ts_tensor *tx = tensor(ctx, TS_F32, 2, shape, x), *to = tensor(ctx, TS_I32, 1, &M, NULL);
            launch(ctx, k, cfgs[ci], (ts_arg[]){TS_ARG_TENSOR(tx), TS_ARG_TENSOR(to)}, 2);
            read_back(to, got);
            for (int64_t m = 0; m < M; m++) {
                int64_t arg = 0;
                for (int64_t n = 1; n < N; n++)
                    if (x[m * N + n] > x[m * N + arg]) arg = n;
                cr_expect_eq(got[m], arg, "N=%lld %s row %lld: %d, want %lld", (long long)N, cfgs[ci], (long long)m, got[m], (long long)arg);
            }
            ts_tensor_destroy(tx);
            ts_tensor_destroy(to);
            free(x);
        }
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* out[m, n] = m >= n ? x[m, n] : -1 (a causal mask from arange) */
Test(handwritten, arange_select_causal_mask) {
    ts_builder *b = begin("causal_mask");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", TS_F32, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "y", TS_F32, 2, (ts_size[]){M, N});
    ts_tunable(b, "BM", 1, 64, 8);
    ts_tunable(b, "BN", 16, 128, 16);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BM"), tn = ts_grid_tile(b, "tn", N, "BN");
    ts_index ix[2] = {TS_AT(tm), TS_AT(tn)};
    ts_val rows = ts_expand_dims(b, ts_arange(b, tm), 1);
    ts_val cols = ts_arange(b, tn);
    ts_val keep = ts_binary(b, TS_GE, rows, cols);
    ts_val xv = ts_load(b, x, ix, 0.0);
    ts_val minus1 = ts_full(b, TS_F32, 0, NULL, -1.0);
    ts_store(b, y, ix, ts_select(b, keep, xv, minus1));
    ts_kernel *k = finish(b);
    ts_context *ctx = ref_ctx();
    static const int64_t shapes[][2] = {{1, 1}, {7, 13}, {127, 100}, {100, 127}};
    static const char *const cfgs[] = {"", "BM=1,BN=16", "BM=64,BN=128", "BM=4,BN=32"};
    for (size_t si = 0; si < 4; si++)
        for (size_t ci = 0; ci < 4; ci++) {
            int64_t M = shapes[si][0], N = shapes[si][1];
            float *xs = rand_f32(M * N), *got = fill_f32(M * N, NAN);
            ts_tensor *tx = tensor(ctx, TS_F32, 2, shapes[si], xs), *ty = tensor(ctx, TS_F32, 2, shapes[si], got);
            launch(ctx, k, cfgs[ci], (ts_arg[]){TS_ARG_TENSOR(tx), TS_ARG_TENSOR(ty)}, 2);
            read_back(ty, got);
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    float want = m >= n ? xs[m * N + n] : -1.0f;
                    cr_expect_eq(got[m * N + n], want, "%lldx%lld [%s] y[%lld,%lld] = %g, want %g", (long long)M, (long long)N, cfgs[ci],
                                 (long long)m, (long long)n, got[m * N + n], want);
                }
            ts_tensor_destroy(tx);
            ts_tensor_destroy(ty);
            free(xs);
            free(got);
        }
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* Round-to-nearest-even of a double to a binary format with `mant` stored
 * significand bits and exponent bias `bias`, written from the definition
 * (scaling by powers of two is exact in double). Returns the bit pattern. */
static uint16_t round_bits(double x, int mant, int ebits) {
    int bias = (1 << (ebits - 1)) - 1, emin = 1 - bias, emax = bias;
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    uint16_t inf = (uint16_t)(((1u << ebits) - 1u) << mant);
    if (isnan(x)) return (uint16_t)(inf | (1u << (mant - 1)));
    double a = fabs(x);
    if (isinf(a)) return sign | inf;
    int e = 0;
    if (a != 0) frexp(a, &e);
    int E = a == 0 ? emin : e - 1;
    if (E < emin) E = emin;
    double r = nearbyint(ldexp(a, mant - E)); /* default rounding mode: nearest even */
    if (r >= ldexp(1.0, mant + 1)) {
        r /= 2;
        E++;
    }
    if (E > emax) return sign | inf;
    if (r < ldexp(1.0, mant)) return (uint16_t)(sign | (uint16_t)r); /* subnormal (or zero) */
    return (uint16_t)(sign | (uint16_t)((E + bias) << mant) | (uint16_t)((uint32_t)r - (1u << mant)));
}
static uint16_t f16_bits(double x) { return round_bits(x, 10, 5); }
static uint16_t bf16_bits(double x) { return round_bits(x, 7, 8); }

Test(handwritten, independent_rounding_knows_exact_values) {
    /* the test's own rounding against values known by hand */
    cr_expect_eq(f16_bits(1.0 / 3.0), 0x3555);
    cr_expect_eq(f16_bits(65504.0), 0x7bff);
    cr_expect_eq(f16_bits(65520.0), 0x7c00);
    cr_expect_eq(f16_bits(ldexp(1, -24)), 0x0001);
    cr_expect_eq(f16_bits(ldexp(1, -25)), 0x0000);
    cr_expect_eq(f16_bits(-2.5), 0xc100);
    cr_expect_eq(bf16_bits(1.0 / 3.0), 0x3eab);
    cr_expect_eq(bf16_bits(1.0), 0x3f80);
    cr_expect_eq(bf16_bits(-2.0), 0xc000);
}

Test(handwritten, cast_rounds_to_nearest_even) {
    ts_builder *b = begin("casts");
    ts_size N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", TS_F32, 1, &N);
    ts_param h = ts_param_tensor(b, "h", TS_F16, 1, &N);
    ts_param bf = ts_param_tensor(b, "bf", TS_BF16, 1, &N);
    ts_param hf = ts_param_tensor(b, "hf", TS_F32, 1, &N);   /* cast to f16 and back: the cast itself rounds */
    ts_param hs = ts_param_tensor(b, "hs", TS_F16, 1, &N);   /* f32 stored into f16: the store rounds */
    ts_param iv = ts_param_tensor(b, "iv", TS_I32, 1, &N);   /* truncation toward zero */
    ts_param bo = ts_param_tensor(b, "bo", TS_BOOL, 1, &N);
    ts_tunable(b, "BLOCK", 16, 64, 16);
    ts_tile t = ts_grid_tile(b, "t", N, "BLOCK");
    ts_val v = ts_load(b, x, &TS_AT(t), 0.0);
    ts_store(b, h, &TS_AT(t), ts_cast(b, v, TS_F16));
    ts_store(b, bf, &TS_AT(t), ts_cast(b, v, TS_BF16));
    ts_store(b, hf, &TS_AT(t), ts_cast(b, ts_cast(b, v, TS_F16), TS_F32));
    ts_store(b, hs, &TS_AT(t), v);
    ts_store(b, iv, &TS_AT(t), ts_cast(b, v, TS_I32));
    ts_store(b, bo, &TS_AT(t), ts_cast(b, v, TS_BOOL));
    ts_kernel *k = finish(b);

    float special[] = {1.0f / 3.0f, 0.1f, 65504.0f, 65519.0f, 65520.0f, 1e6f, -1e6f, 1e-8f, 5.9604645e-8f /* 2^-24 */,
                       2.9802322e-8f /* 2^-25: tie to 0 */, 8.940697e-8f /* 1.5 * 2^-24: tie to 2^-23 */,
                       1.00048828125f /* 1 + 2^-11: tie to 1 */, 1.00146484375f /* 1 + 3 * 2^-11: tie up */, -2.5f, 2.7f, -2.7f,
                       0.0f, -0.0f, 3.3895314e38f, 1.0039063f /* bf16 tie region */, 6.1035156e-5f /* min normal f16 */,
                       6.0975552e-5f /* largest f16 subnormal region */};
    int64_t ns = (int64_t)(sizeof special / sizeof special[0]), Nn = ns + 200;
    float *xs = rand_f32(Nn);
    memcpy(xs, special, sizeof special);
    for (int64_t i = ns; i < Nn; i++) xs[i] = (float)ldexp(xs[i], (int)(rnd() % 40) - 30); /* a wide range of exponents */
    uint16_t *gh = calloc((size_t)Nn, 2), *gb = calloc((size_t)Nn, 2), *ghs = calloc((size_t)Nn, 2);
    float *ghf = calloc((size_t)Nn, 4);
    int32_t *gi = calloc((size_t)Nn, 4);
    uint8_t *gbo = calloc((size_t)Nn, 1);
    ts_context *ctx = ref_ctx();
    ts_tensor *tx = tensor(ctx, TS_F32, 1, &Nn, xs), *th = tensor(ctx, TS_F16, 1, &Nn, NULL), *tb = tensor(ctx, TS_BF16, 1, &Nn, NULL),
              *thf = tensor(ctx, TS_F32, 1, &Nn, NULL), *ths = tensor(ctx, TS_F16, 1, &Nn, NULL), *ti = tensor(ctx, TS_I32, 1, &Nn, NULL),
              *tbo = tensor(ctx, TS_BOOL, 1, &Nn, NULL);
    launch(ctx, k, "",
           (ts_arg[]){TS_ARG_TENSOR(tx), TS_ARG_TENSOR(th), TS_ARG_TENSOR(tb), TS_ARG_TENSOR(thf), TS_ARG_TENSOR(ths), TS_ARG_TENSOR(ti),
                      TS_ARG_TENSOR(tbo)},
           7);
    read_back(th, gh);
    read_back(tb, gb);
    read_back(thf, ghf);
    read_back(ths, ghs);
    read_back(ti, gi);
    read_back(tbo, gbo);
    cr_expect_eq(gh[0], 0x3555, "1/3 -> f16 %#06x, want 0x3555", gh[0]);
    cr_expect_eq(gb[0], 0x3eab, "1/3 -> bf16 %#06x, want 0x3eab", gb[0]);
    for (int64_t i = 0; i < Nn; i++) {
        double v = xs[i];
        uint16_t wh = f16_bits(v), wb = bf16_bits(v);
        cr_expect_eq(gh[i], wh, "cast(%.9g, f16) = %#06x, want %#06x", v, gh[i], wh);
        cr_expect_eq(ghs[i], wh, "store of %.9g into f16 = %#06x, want %#06x", v, ghs[i], wh);
        cr_expect_eq(gb[i], wb, "cast(%.9g, bf16) = %#06x, want %#06x", v, gb[i], wb);
        /* the f16 value read back as f32: decode the expected bits by hand */
        int ex = (wh >> 10) & 31, mt = wh & 1023;
        double dec = ex == 31 ? (mt ? NAN : INFINITY) : ex == 0 ? ldexp(mt, -24) : ldexp(1024 + mt, ex - 25);
        if (wh & 0x8000) dec = -dec;
        cr_expect(ghf[i] == (float)dec || (isnan(dec) && isnan(ghf[i])), "cast(cast(%.9g, f16), f32) = %.9g, want %.9g", v, ghf[i], dec);
        if (fabs(v) < 2e9) cr_expect_eq(gi[i], (int32_t)v, "cast(%.9g, i32) = %d, want %d", v, gi[i], (int32_t)v);
        cr_expect_eq(gbo[i], v != 0.0, "cast(%.9g, bool) = %d", v, gbo[i]);
    }
    ts_tensor_destroy(tx);
    ts_tensor_destroy(th);
    ts_tensor_destroy(tb);
    ts_tensor_destroy(thf);
    ts_tensor_destroy(ths);
    ts_tensor_destroy(ti);
    ts_tensor_destroy(tbo);
    free(xs);
    free(gh);
    free(gb);
    free(ghs);
    free(ghf);
    free(gi);
    free(gbo);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* y = 2 x + 1 elementwise over [M, N]; used with strided views. */
static ts_kernel *build_affine(void) {
    ts_builder *b = begin("affine");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", TS_F32, 2, (ts_size[]){M, N});
    ts_param y = ts_param_tensor(b, "y", TS_F32, 2, (ts_size[]){M, N});
    ts_tunable(b, "BM", 1, 64, 4);
    ts_tunable(b, "BN", 16, 128, 16);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BM"), tn = ts_grid_tile(b, "tn", N, "BN");
    ts_index ix[2] = {TS_AT(tm), TS_AT(tn)};
    ts_val two = ts_full(b, TS_F32, 0, NULL, 2.0), one = ts_full(b, TS_F32, 0, NULL, 1.0);
    ts_store(b, y, ix, ts_binary(b, TS_ADD, ts_binary(b, TS_MUL, ts_load(b, x, ix, 0.0), two), one));
    return finish(b);
}

Test(handwritten, transposed_view_as_input) {
    ts_context *ctx = ref_ctx();
    ts_kernel *k = build_affine();
    int64_t M = 37, N = 21, st_shape[2] = {N, M};
    float *src = rand_f32(N * M); /* src[n][m], viewed as x[m][n] */
    ts_tensor *st = tensor(ctx, TS_F32, 2, st_shape, src), *xv = NULL;
    cr_assert_eq(ts_tensor_view(st, 2, (int64_t[]){M, N}, (int64_t[]){1, M}, 0, &xv), TS_OK, "%s", ts_last_error());
    ts_tensor *ty = tensor(ctx, TS_F32, 2, (int64_t[]){M, N}, NULL);
    static const char *const cfgs[] = {"", "BM=1,BN=16", "BM=64,BN=128"};
    for (int c = 0; c < 3; c++) {
        launch(ctx, k, cfgs[c], (ts_arg[]){TS_ARG_TENSOR(xv), TS_ARG_TENSOR(ty)}, 2);
        float *got = fill_f32(M * N, 0);
        read_back(ty, got);
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++)
                cr_expect_eq(got[m * N + n], 2.0f * src[n * M + m] + 1.0f, "[%s] y[%lld,%lld]", cfgs[c], (long long)m, (long long)n);
        free(got);
    }
    /* reading the view back gives the transpose too */
    float *xt = fill_f32(M * N, 0);
    read_back(xv, xt);
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) cr_expect_eq(xt[m * N + n], src[n * M + m]);
    free(xt);
    ts_tensor_destroy(xv);
    ts_tensor_destroy(st);
    ts_tensor_destroy(ty);
    free(src);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

Test(handwritten, sliced_views_with_offset_in_and_out) {
    ts_context *ctx = ref_ctx();
    ts_kernel *k = build_affine();
    const int64_t R = 20, C = 30, r0 = 3, c0 = 5, M = 7, N = 13;
    float *src = rand_f32(R * C);
    ts_tensor *st = tensor(ctx, TS_F32, 2, (int64_t[]){R, C}, src), *xv = NULL;
    cr_assert_eq(ts_tensor_view(st, 2, (int64_t[]){M, N}, (int64_t[]){C, 1}, r0 * C + c0, &xv), TS_OK, "%s", ts_last_error());
    /* output: every other column of rows 2.. of a sentinel-filled storage */
    float *dst = fill_f32(R * C, -99.0f);
    ts_tensor *ot = tensor(ctx, TS_F32, 2, (int64_t[]){R, C}, dst), *yv = NULL;
    const int64_t o0 = 2 * C + 1;
    cr_assert_eq(ts_tensor_view(ot, 2, (int64_t[]){M, N}, (int64_t[]){C, 2}, o0, &yv), TS_OK, "%s", ts_last_error());
    launch(ctx, k, "BM=2,BN=16", (ts_arg[]){TS_ARG_TENSOR(xv), TS_ARG_TENSOR(yv)}, 2);
    read_back(ot, dst);
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < C; c++) {
            int64_t off = r * C + c - o0;
            int inside = off >= 0 && off / C < M && (off % C) % 2 == 0 && (off % C) / 2 < N;
            float want = inside ? 2.0f * src[(r0 + off / C) * C + c0 + (off % C) / 2] + 1.0f : -99.0f;
            cr_expect_eq(dst[r * C + c], want, "storage[%lld,%lld] = %g, want %g (%s the view)", (long long)r, (long long)c, dst[r * C + c],
                         want, inside ? "inside" : "outside");
        }
    ts_tensor_destroy(xv);
    ts_tensor_destroy(yv);
    ts_tensor_destroy(st);
    ts_tensor_destroy(ot);
    free(src);
    free(dst);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

Test(handwritten, reversed_view_negative_stride) {
    ts_context *ctx = ref_ctx();
    ts_kernel *k = build_affine();
    const int64_t M = 3, N = 50;
    float *src = rand_f32(M * N);
    ts_tensor *st = tensor(ctx, TS_F32, 2, (int64_t[]){M, N}, src), *xv = NULL;
    /* rows kept, columns reversed */
    cr_assert_eq(ts_tensor_view(st, 2, (int64_t[]){M, N}, (int64_t[]){N, -1}, N - 1, &xv), TS_OK, "%s", ts_last_error());
    ts_tensor *ty = tensor(ctx, TS_F32, 2, (int64_t[]){M, N}, NULL);
    launch(ctx, k, "BN=16", (ts_arg[]){TS_ARG_TENSOR(xv), TS_ARG_TENSOR(ty)}, 2);
    float got[150];
    read_back(ty, got);
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) cr_expect_eq(got[m * N + n], 2.0f * src[m * N + (N - 1 - n)] + 1.0f);
    ts_tensor_destroy(xv);
    ts_tensor_destroy(st);
    ts_tensor_destroy(ty);
    free(src);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* out[m, n] = a[m] - 2 b[n] + 0.5, built with expand_dims and explicit broadcasts */
Test(handwritten, expand_dims_and_broadcast) {
    ts_builder *b = begin("outer");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param a = ts_param_tensor(b, "a", TS_F32, 1, &M);
    ts_param bb = ts_param_tensor(b, "b", TS_F32, 1, &N);
    ts_param out = ts_param_tensor(b, "out", TS_F32, 2, (ts_size[]){M, N});
    ts_tunable(b, "BM", 1, 32, 4);
    ts_tunable(b, "BN", 16, 64, 16);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BM"), tn = ts_grid_tile(b, "tn", N, "BN");
    ts_tile dims[2] = {tm, tn};
    ts_val av = ts_broadcast(b, ts_expand_dims(b, ts_load(b, a, &TS_AT(tm), 0.0), 1), 2, dims); /* [tm,1] -> [tm,tn] */
    ts_val bv = ts_broadcast(b, ts_expand_dims(b, ts_load(b, bb, &TS_AT(tn), 0.0), 0), 2, dims); /* [1,tn] -> [tm,tn] */
    ts_val half = ts_broadcast(b, ts_full(b, TS_F32, 0, NULL, 0.5), 2, (ts_tile[]){TS_NONE, tn}); /* [] -> [1,tn] */
    ts_val two = ts_full(b, TS_F32, 2, (ts_tile[]){TS_NONE, TS_NONE}, 2.0);                        /* [1,1] */
    ts_val r = ts_binary(b, TS_ADD, ts_binary(b, TS_SUB, av, ts_binary(b, TS_MUL, bv, two)), half);
    ts_store(b, out, (ts_index[]){TS_AT(tm), TS_AT(tn)}, r);
    ts_kernel *k = finish(b);
    ts_context *ctx = ref_ctx();
    int64_t Ms = 9, Ns = 70;
    float *av_ = rand_f32(Ms), *bv_ = rand_f32(Ns), *got = fill_f32(Ms * Ns, NAN);
    ts_tensor *ta = tensor(ctx, TS_F32, 1, &Ms, av_), *tb = tensor(ctx, TS_F32, 1, &Ns, bv_), *to = tensor(ctx, TS_F32, 2, (int64_t[]){Ms, Ns}, NULL);
    static const char *const cfgs[] = {"", "BM=1,BN=16", "BM=32,BN=64"};
    for (int c = 0; c < 3; c++) {
        launch(ctx, k, cfgs[c], (ts_arg[]){TS_ARG_TENSOR(ta), TS_ARG_TENSOR(tb), TS_ARG_TENSOR(to)}, 3);
        read_back(to, got);
        for (int64_t m = 0; m < Ms; m++)
            for (int64_t n = 0; n < Ns; n++) {
                float want = (float)((double)av_[m] - 2.0 * (double)bv_[n] + 0.5);
                cr_expect(close_to(got[m * Ns + n], want, 1e-6, 1e-6), "[%s] out[%lld,%lld] = %g, want %g", cfgs[c], (long long)m,
                          (long long)n, got[m * Ns + n], want);
            }
    }
    ts_tensor_destroy(ta);
    ts_tensor_destroy(tb);
    ts_tensor_destroy(to);
    free(av_);
    free(bv_);
    free(got);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

static void int_division(ts_dtype dt) {
    ts_builder *b = begin("idiv");
    ts_size N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 1, &N);
    ts_param y = ts_param_tensor(b, "y", dt, 1, &N);
    ts_param q = ts_param_tensor(b, "q", dt, 1, &N);
    ts_tile t = ts_grid_tile(b, "t", N, NULL);
    ts_store(b, q, &TS_AT(t), ts_binary(b, TS_DIV, ts_load(b, x, &TS_AT(t), 0.0), ts_load(b, y, &TS_AT(t), 0.0)));
    ts_kernel *k = finish(b);
    ts_context *ctx = ref_ctx();
    enum { NN = 200 };
    int64_t N_ = NN, xs[NN], ys[NN], got[NN];
    for (int i = 0; i < NN; i++) {
        xs[i] = (int64_t)(rnd() % 201) - 100;
        ys[i] = (int64_t)(rnd() % 7) - 3; /* -3..3, zeros included */
    }
    xs[0] = 7, ys[0] = 0;
    xs[1] = -7, ys[1] = 2;  /* truncates toward zero: -3 */
    xs[2] = 7, ys[2] = -2;  /* -3 */
    xs[3] = 0, ys[3] = 0;
    unsigned char bx[NN * 8], by[NN * 8], bq[NN * 8];
    for (int i = 0; i < NN; i++) {
        if (dt == TS_I32) {
            int32_t a = (int32_t)xs[i], c = (int32_t)ys[i];
            memcpy(bx + i * 4, &a, 4);
            memcpy(by + i * 4, &c, 4);
        } else {
            memcpy(bx + i * 8, &xs[i], 8);
            memcpy(by + i * 8, &ys[i], 8);
        }
    }
    ts_tensor *tx = tensor(ctx, dt, 1, &N_, bx), *ty = tensor(ctx, dt, 1, &N_, by), *tq = tensor(ctx, dt, 1, &N_, NULL);
    launch(ctx, k, "", (ts_arg[]){TS_ARG_TENSOR(tx), TS_ARG_TENSOR(ty), TS_ARG_TENSOR(tq)}, 3);
    read_back(tq, bq);
    for (int i = 0; i < NN; i++) {
        if (dt == TS_I32) {
            int32_t v;
            memcpy(&v, bq + i * 4, 4);
            got[i] = v;
        } else memcpy(&got[i], bq + i * 8, 8);
        int64_t want = ys[i] == 0 ? 0 : xs[i] / ys[i];
        cr_expect_eq(got[i], want, "%s: %lld / %lld = %lld, want %lld", ts_dtype_name(dt), (long long)xs[i], (long long)ys[i], (long long)got[i],
                     (long long)want);
    }
    ts_tensor_destroy(tx);
    ts_tensor_destroy(ty);
    ts_tensor_destroy(tq);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

Test(handwritten, integer_division_by_zero_gives_zero_i32) { int_division(TS_I32); }
Test(handwritten, integer_division_by_zero_gives_zero_i64) { int_division(TS_I64); }

Test(handwritten, gather_out_of_range_ids_give_fill) {
    ts_builder *b = begin("gather_oob");
    ts_size M = ts_size_sym(b, "M"), V = ts_size_sym(b, "V"), D = ts_size_sym(b, "D");
    ts_param ids = ts_param_tensor(b, "ids", TS_I32, 1, &M);
    ts_param table = ts_param_tensor(b, "table", TS_F32, 2, (ts_size[]){V, D});
    ts_param out = ts_param_tensor(b, "out", TS_F32, 2, (ts_size[]){M, D});
    ts_tunable(b, "BM", 1, 16, 4);
    ts_tunable(b, "BD", 16, 64, 16);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BM"), td = ts_grid_tile(b, "td", D, "BD");
    ts_val iv = ts_load(b, ids, &TS_AT(tm), 0.0);
    ts_store(b, out, (ts_index[]){TS_AT(tm), TS_AT(td)}, ts_gather(b, table, iv, TS_AT(td), -7.5));
    ts_kernel *k = finish(b);
    ts_context *ctx = ref_ctx();
    const int64_t Vn = 11, Dn = 19;
    int32_t idv[] = {0, -1, 10, 11, 12, INT32_MAX, INT32_MIN, 5, 3, -100, 1000000};
    int64_t Mn = (int64_t)(sizeof idv / sizeof idv[0]);
    /* the table is a slice of a larger storage, so reads past its end would
     * land on sentinel values instead of outside memory */
    float *big = fill_f32((Vn + 2) * Dn, 12345.0f), *tab = rand_f32(Vn * Dn);
    memcpy(big + Dn, tab, (size_t)(Vn * Dn) * sizeof(float));
    ts_tensor *st = tensor(ctx, TS_F32, 2, (int64_t[]){Vn + 2, Dn}, big), *tv = NULL;
    cr_assert_eq(ts_tensor_view(st, 2, (int64_t[]){Vn, Dn}, (int64_t[]){Dn, 1}, Dn, &tv), TS_OK, "%s", ts_last_error());
    ts_tensor *ti = tensor(ctx, TS_I32, 1, &Mn, idv), *to = tensor(ctx, TS_F32, 2, (int64_t[]){Mn, Dn}, NULL);
    static const char *const cfgs[] = {"", "BM=1,BD=16", "BM=16,BD=64"};
    float *got = fill_f32(Mn * Dn, 0);
    for (int c = 0; c < 3; c++) {
        launch(ctx, k, cfgs[c], (ts_arg[]){TS_ARG_TENSOR(ti), TS_ARG_TENSOR(tv), TS_ARG_TENSOR(to)}, 3);
        read_back(to, got);
        for (int64_t m = 0; m < Mn; m++)
            for (int64_t d = 0; d < Dn; d++) {
                int ok = idv[m] >= 0 && idv[m] < Vn;
                float want = ok ? tab[idv[m] * Dn + d] : -7.5f;
                cr_expect_eq(got[m * Dn + d], want, "[%s] id %d: out[%lld,%lld] = %g, want %g", cfgs[c], idv[m], (long long)m, (long long)d,
                             got[m * Dn + d], want);
            }
    }
    free(got);
    free(big);
    free(tab);
    ts_tensor_destroy(tv);
    ts_tensor_destroy(st);
    ts_tensor_destroy(ti);
    ts_tensor_destroy(to);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* y[m] = x[m] + 1 and flag[0] = 1 from every program: with M = 0 there is
 * no program, so nothing may be written. */
Test(handwritten, empty_tensors_launch_and_do_nothing) {
    ts_builder *b = begin("empty");
    ts_size M = ts_size_sym(b, "M");
    ts_param x = ts_param_tensor(b, "x", TS_F32, 1, &M);
    ts_param y = ts_param_tensor(b, "y", TS_F32, 1, &M);
    ts_param flag = ts_param_tensor(b, "flag", TS_F32, 1, (ts_size[]){ts_size_fixed(b, 1)});
    ts_tunable(b, "BM", 16, 64, 16);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BM");
    ts_store(b, y, &TS_AT(tm), ts_binary(b, TS_ADD, ts_load(b, x, &TS_AT(tm), 0.0), ts_full(b, TS_F32, 0, NULL, 1.0)));
    ts_store(b, flag, &TS_CONST_IDX(0), ts_full(b, TS_F32, 0, NULL, 1.0));
    ts_kernel *k = finish(b);
    ts_context *ctx = ref_ctx();
    int64_t zero = 0, one = 1, three = 3;
    float fl = -5.0f;
    ts_tensor *tx = tensor(ctx, TS_F32, 1, &zero, NULL), *ty = tensor(ctx, TS_F32, 1, &zero, NULL), *tf = tensor(ctx, TS_F32, 1, &one, &fl);
    cr_expect_eq(ts_tensor_numel(tx), 0);
    double ms = -1;
    cr_expect_eq(ts_launch(ctx, k, NULL, (ts_arg[]){TS_ARG_TENSOR(tx), TS_ARG_TENSOR(ty), TS_ARG_TENSOR(tf)}, 3, &ms), TS_OK, "%s", ts_last_error());
    cr_expect_geq(ms, 0.0);
    read_back(tf, &fl);
    cr_expect_eq(fl, -5.0f, "a launch over zero tiles wrote flag = %g", fl);
    /* the same kernel with M = 3 writes it (so the check above means something) */
    float x3[3] = {1, 2, 3}, y3[3];
    ts_tensor *tx3 = tensor(ctx, TS_F32, 1, &three, x3), *ty3 = tensor(ctx, TS_F32, 1, &three, NULL);
    launch(ctx, k, "", (ts_arg[]){TS_ARG_TENSOR(tx3), TS_ARG_TENSOR(ty3), TS_ARG_TENSOR(tf)}, 3);
    read_back(tf, &fl);
    read_back(ty3, y3);
    cr_expect_eq(fl, 1.0f);
    for (int i = 0; i < 3; i++) cr_expect_eq(y3[i], x3[i] + 1.0f);
    ts_tensor_destroy(tx);
    ts_tensor_destroy(ty);
    ts_tensor_destroy(tf);
    ts_tensor_destroy(tx3);
    ts_tensor_destroy(ty3);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

Test(handwritten, empty_example_shapes) {
    ts_context *ctx = ref_ctx();
    static const struct { const char *name, *sizes; } cases[] = {
        {"exp", "N=0"}, {"add", "M=0,N=5"}, {"add", "M=4,N=0"}, {"matmul", "M=0,N=3,K=4"}, {"transpose", "M=0,N=0"}, {"long_sum", "M=0,N=9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ts_example *ex = ts_example_find(cases[i].name);
        cr_assert_not_null(ex);
        ts_kernel *k;
        cr_assert_eq(ex->build(TS_F32, &k), TS_OK);
        ts_ex_sizes sz;
        ts_ex_parse_sizes(cases[i].sizes, &sz);
        ts_ex_result r;
        ts_ex_run_case(ctx, ex, k, TS_F32, &sz, NULL, 1, 5, &r);
        cr_expect_eq(r.status, TS_OK, "%s %s: %s", cases[i].name, cases[i].sizes, r.message);
        ts_kernel_destroy(k);
    }
    ts_context_destroy(ctx);
}

/* total[m] = init + sum_k w[k] and count[m] = 3 + number of loop steps:
 * with K = 0 the loop runs zero times and the init values pass through. */
Test(handwritten, zero_iteration_loop_passes_init_through) {
    ts_builder *b = begin("zero_loop");
    ts_size M = ts_size_sym(b, "M"), K = ts_size_sym(b, "K");
    ts_param w = ts_param_tensor(b, "w", TS_F32, 1, &K);
    ts_param total = ts_param_tensor(b, "total", TS_F32, 1, &M);
    ts_param count = ts_param_tensor(b, "count", TS_I32, 1, &M);
    ts_tunable(b, "BM", 1, 8, 2);
    ts_tunable(b, "BK", 16, 64, 16);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BM");
    ts_val init[2] = {ts_full(b, TS_F32, 1, &tm, 5.0), ts_full(b, TS_I32, 0, NULL, 3.0)}, cur[2], res[2];
    ts_tile tk = ts_loop_begin(b, "tk", K, "BK", 2, init, cur);
    ts_val part = ts_reduce(b, TS_RED_SUM, ts_load(b, w, &TS_AT(tk), 0.0), 0, 0);
    ts_val nxt[2] = {ts_binary(b, TS_ADD, cur[0], part), ts_binary(b, TS_ADD, cur[1], ts_full(b, TS_I32, 0, NULL, 1.0))};
    ts_loop_end(b, nxt, res);
    ts_store(b, total, &TS_AT(tm), res[0]);
    ts_store(b, count, &TS_AT(tm), res[1]);
    ts_kernel *k = finish(b);
    ts_context *ctx = ref_ctx();
    static const int64_t ks[] = {0, 1, 7, 16, 1000};
    static const int64_t bks[] = {16, 64};
    for (int ki = 0; ki < 5; ki++)
        for (int bi = 0; bi < 2; bi++) {
            int64_t Kn = ks[ki], Mn = 5;
            float *wv = rand_f32(Kn), tot[5];
            int32_t cnt[5];
            ts_tensor *tw = tensor(ctx, TS_F32, 1, &Kn, wv), *tt = tensor(ctx, TS_F32, 1, &Mn, NULL), *tc = tensor(ctx, TS_I32, 1, &Mn, NULL);
            char cfg[32];
            snprintf(cfg, sizeof cfg, "BK=%lld", (long long)bks[bi]);
            launch(ctx, k, cfg, (ts_arg[]){TS_ARG_TENSOR(tw), TS_ARG_TENSOR(tt), TS_ARG_TENSOR(tc)}, 3);
            read_back(tt, tot);
            read_back(tc, cnt);
            double want = 5.0;
            for (int64_t i = 0; i < Kn; i++) want += wv[i];
            int32_t steps = (int32_t)((Kn + bks[bi] - 1) / bks[bi]);
            for (int m = 0; m < 5; m++) {
                cr_expect(close_to(tot[m], want, 1e-4, 1e-5), "K=%lld %s: total %g, want %g", (long long)Kn, cfg, tot[m], want);
                cr_expect_eq(cnt[m], 3 + steps, "K=%lld %s: count %d, want %d", (long long)Kn, cfg, cnt[m], 3 + steps);
            }
            ts_tensor_destroy(tw);
            ts_tensor_destroy(tt);
            ts_tensor_destroy(tc);
            free(wv);
        }
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* s[m] = sum over p, q of x[m, p, q] through two nested loops: the inner
 * loop restarts at 0 on every outer step. */
Test(handwritten, nested_loops) {
    ts_builder *b = begin("nested");
    ts_size M = ts_size_sym(b, "M"), P = ts_size_sym(b, "P"), Q = ts_size_sym(b, "Q");
    ts_param x = ts_param_tensor(b, "x", TS_F32, 3, (ts_size[]){M, P, Q});
    ts_param s = ts_param_tensor(b, "s", TS_F32, 1, &M);
    ts_tunable(b, "BP", 1, 8, 2);
    ts_tunable(b, "BQ", 16, 32, 16);
    ts_tile tm = ts_grid_point(b, "tm", M);
    ts_val z = ts_zeros(b, TS_F32, 0, NULL), acc, res, acc2, res2;
    ts_tile tp = ts_loop_begin(b, "tp", P, "BP", 1, &z, &acc);
    ts_tile tq = ts_loop_begin(b, "tq", Q, "BQ", 1, &acc, &acc2);
    ts_val v = ts_load(b, x, (ts_index[]){TS_POINT(tm), TS_AT(tp), TS_AT(tq)}, 100.0);
    ts_val part = ts_reduce(b, TS_RED_SUM, ts_reduce(b, TS_RED_SUM, v, 1, 0), 0, 0);
    ts_val n2 = ts_binary(b, TS_ADD, acc2, part);
    ts_loop_end(b, &n2, &res2);
    ts_loop_end(b, &res2, &res);
    ts_store(b, s, &TS_POINT(tm), res);
    ts_kernel *k = finish(b);
    ts_context *ctx = ref_ctx();
    int64_t shape[3] = {4, 5, 37}, Mn = 4;
    float *xs = rand_f32(4 * 5 * 37), got[4];
    ts_tensor *tx = tensor(ctx, TS_F32, 3, shape, xs), *ts_ = tensor(ctx, TS_F32, 1, &Mn, NULL);
    static const char *const cfgs[] = {"", "BP=1,BQ=16", "BP=8,BQ=32"};
    for (int c = 0; c < 3; c++) {
        launch(ctx, k, cfgs[c], (ts_arg[]){TS_ARG_TENSOR(tx), TS_ARG_TENSOR(ts_)}, 2);
        read_back(ts_, got);
        for (int m = 0; m < 4; m++) {
            double want = 0;
            for (int i = 0; i < 5 * 37; i++) want += xs[m * 5 * 37 + i];
            cr_expect(close_to(got[m], want, 1e-4, 1e-5), "[%s] s[%d] = %g, want %g", cfgs[c], m, got[m], want);
        }
    }
    ts_tensor_destroy(tx);
    ts_tensor_destroy(ts_);
    free(xs);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* dot with NaN padding: the padding along K must not reach any result. */
Test(handwritten, dot_ignores_padding) {
    ts_builder *b = begin("mm_nan_fill");
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N"), K = ts_size_sym(b, "K");
    ts_param A = ts_param_tensor(b, "A", TS_F32, 2, (ts_size[]){M, K});
    ts_param B = ts_param_tensor(b, "B", TS_F32, 2, (ts_size[]){K, N});
    ts_param C = ts_param_tensor(b, "C", TS_F32, 2, (ts_size[]){M, N});
    ts_tunable(b, "BM", 16, 32, 16);
    ts_tunable(b, "BN", 16, 32, 16);
    ts_tunable(b, "BK", 8, 32, 8);
    ts_tile tm = ts_grid_tile(b, "tm", M, "BM"), tn = ts_grid_tile(b, "tn", N, "BN");
    ts_val z = ts_zeros(b, TS_F32, 2, (ts_tile[]){tm, tn}), acc, res;
    ts_tile tk = ts_loop_begin(b, "tk", K, "BK", 1, &z, &acc);
    ts_val a = ts_load(b, A, (ts_index[]){TS_AT(tm), TS_AT(tk)}, NAN);
    ts_val bb = ts_load(b, B, (ts_index[]){TS_AT(tk), TS_AT(tn)}, INFINITY);
    ts_val nxt = ts_dot(b, a, bb, acc);
    ts_loop_end(b, &nxt, &res);
    ts_store(b, C, (ts_index[]){TS_AT(tm), TS_AT(tn)}, res);
    ts_kernel *k = finish(b);
    ts_context *ctx = ref_ctx();
    const int64_t Mn = 19, Nn = 23, Kn = 13;
    float *a_ = rand_f32(Mn * Kn), *b_ = rand_f32(Kn * Nn), *c_ = fill_f32(Mn * Nn, 0);
    ts_tensor *ta = tensor(ctx, TS_F32, 2, (int64_t[]){Mn, Kn}, a_), *tb = tensor(ctx, TS_F32, 2, (int64_t[]){Kn, Nn}, b_),
              *tc = tensor(ctx, TS_F32, 2, (int64_t[]){Mn, Nn}, NULL);
    static const char *const cfgs[] = {"", "BM=32,BN=32,BK=32", "BK=16"};
    for (int c = 0; c < 3; c++) {
        launch(ctx, k, cfgs[c], (ts_arg[]){TS_ARG_TENSOR(ta), TS_ARG_TENSOR(tb), TS_ARG_TENSOR(tc)}, 3);
        read_back(tc, c_);
        for (int64_t m = 0; m < Mn; m++)
            for (int64_t n = 0; n < Nn; n++) {
                double want = 0;
                for (int64_t kk = 0; kk < Kn; kk++) want += (double)a_[m * Kn + kk] * b_[kk * Nn + n];
                cr_expect(close_to(c_[m * Nn + n], want, 1e-5, 1e-5), "[%s] C[%lld,%lld] = %g, want %g", cfgs[c], (long long)m, (long long)n,
                          c_[m * Nn + n], want);
            }
    }
    ts_tensor_destroy(ta);
    ts_tensor_destroy(tb);
    ts_tensor_destroy(tc);
    free(a_);
    free(b_);
    free(c_);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* Scalars: y = alpha * x + beta (f32 scalar) and an i32 scalar offset. */
Test(handwritten, scalar_parameters) {
    ts_builder *b = begin("axpb");
    ts_size N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", TS_F32, 1, &N);
    ts_param y = ts_param_tensor(b, "y", TS_F32, 1, &N);
    ts_param idx = ts_param_tensor(b, "idx", TS_I32, 1, &N);
    ts_param alpha = ts_param_scalar(b, "alpha", TS_F32);
    ts_param off = ts_param_scalar(b, "off", TS_I32);
    ts_tile t = ts_grid_tile(b, "t", N, NULL);
    ts_val xv = ts_load(b, x, &TS_AT(t), 0.0);
    ts_store(b, y, &TS_AT(t), ts_binary(b, TS_MUL, xv, ts_scalar(b, alpha)));
    ts_store(b, idx, &TS_AT(t), ts_binary(b, TS_ADD, ts_arange(b, t), ts_scalar(b, off)));
    ts_kernel *k = finish(b);
    ts_context *ctx = ref_ctx();
    int64_t N_ = 10;
    float *xs = rand_f32(10), got[10];
    int32_t gi[10];
    ts_tensor *tx = tensor(ctx, TS_F32, 1, &N_, xs), *ty = tensor(ctx, TS_F32, 1, &N_, NULL), *ti = tensor(ctx, TS_I32, 1, &N_, NULL);
    launch(ctx, k, "", (ts_arg[]){TS_ARG_TENSOR(tx), TS_ARG_TENSOR(ty), TS_ARG_TENSOR(ti), TS_ARG_F(-1.5), TS_ARG_I(-40)}, 5);
    read_back(ty, got);
    read_back(ti, gi);
    for (int i = 0; i < 10; i++) {
        cr_expect_eq(got[i], (float)(xs[i] * -1.5));
        cr_expect_eq(gi[i], i - 40);
    }
    ts_tensor_destroy(tx);
    ts_tensor_destroy(ty);
    ts_tensor_destroy(ti);
    free(xs);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* ---------------------------------------------------------------- random numbers */

#include "test_util.h"

/* randint is word 0 of Philox 4x32-10 at (global index, seed): Random123's
 * first known-answer vector (counter 0, key 0 -> 0x6627e8d5), then every
 * element against the examples' own Philox (helion.c), for three seeds and
 * two configs (the result may not depend on the blocks). */
Test(random, randint_is_philox_at_the_global_index) {
    ts_context *ctx = ref_ctx();
    const int64_t M = 37, N = 300;
    int32_t *a = malloc((size_t)(M * N) * 4), *b = malloc((size_t)(M * N) * 4);
    const int64_t seeds[] = {0, 1234567, -5};
    for (int s = 0; s < 3; s++) {
        ts_test_randint_2d(ctx, TS_TEST_RANDINT_2D, "BM=1,BN=16", M, N, seeds[s], a);
        ts_test_randint_2d(ctx, TS_TEST_RANDINT_2D, "BM=64,BN=1024", M, N, seeds[s], b);
        cr_expect_eq(memcmp(a, b, (size_t)(M * N) * 4), 0, "seed %lld: the blocks changed the numbers", (long long)seeds[s]);
        if (seeds[s] == 0) cr_expect_eq((uint32_t)a[0], 0x6627e8d5u, "Random123 known answer: got 0x%08x", (uint32_t)a[0]);
        int bad = 0;
        for (int64_t i = 0; i < M * N; i++) bad += (uint32_t)a[i] != ts_ex_philox_word0((uint64_t)i, (uint64_t)seeds[s]);
        cr_expect_eq(bad, 0, "seed %lld: %d elements differ from the independent Philox", (long long)seeds[s], bad);
    }
    free(a);
    free(b);
    ts_context_destroy(ctx);
}

/* Dropout keeps about 1 - p of the elements (within 5 sigma), scales them
 * by exactly 1 / (1 - p) in f32, and zeroes the rest. */
Test(random, dropout_keep_fraction_and_scaling) {
    ts_context *ctx = ref_ctx();
    const ts_example *ex = ts_example_find("dropout");
    cr_assert_not_null(ex);
    ts_kernel *k = NULL;
    cr_assert_eq(ex->build(TS_F32, &k), TS_OK, "%s", ts_last_error());
    const int64_t n = 200003;
    const float p = 0.3f;
    float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) x[i] = 1.0f + (float)(i % 7);
    ts_tensor *tx, *ty;
    cr_assert_eq(ts_tensor_create(ctx, TS_F32, 1, &n, &tx), TS_OK);
    cr_assert_eq(ts_tensor_create(ctx, TS_F32, 1, &n, &ty), TS_OK);
    cr_assert_eq(ts_tensor_write(tx, x, (size_t)n * 4), TS_OK);
    ts_arg args[4] = {TS_ARG_TENSOR(tx), TS_ARG_TENSOR(ty), TS_ARG_F(p), TS_ARG_I(99)};
    cr_assert_eq(ts_launch(ctx, k, NULL, args, 4, NULL), TS_OK, "%s", ts_last_error());
    cr_assert_eq(ts_tensor_read(ty, y, (size_t)n * 4), TS_OK);
    int64_t kept = 0, wrong = 0;
    const float q = 1.0f - p;
    for (int64_t i = 0; i < n; i++) {
        if (y[i] != 0.0f) {
            kept++;
            wrong += y[i] != x[i] / q;
        }
    }
    double frac = (double)kept / (double)n, sigma = sqrt(0.3 * 0.7 / (double)n);
    cr_expect(fabs(frac - 0.7) < 5 * sigma, "kept %.5f of the elements, expected 0.7 +- %.5f", frac, 5 * sigma);
    cr_expect_eq(wrong, 0, "%lld kept elements are not x / (1 - p)", (long long)wrong);
    ts_tensor_destroy(tx);
    ts_tensor_destroy(ty);
    free(x);
    free(y);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* Scans against plain C loops: whole rows forward and reversed, over
 * partial tiles (M not a multiple of BM); the fills would change every
 * result if padding leaked in. */
Test(scans, cumsum_cumprod_cummax_cummin_rows) {
    static const char *const text =
        "kernel scans(x: f32[M, N], s: f32[M, N], r: f32[M, N], p: f32[M, N], mx: f32[M, N], mn: f32[M, N]) {\n"
        " tunable BM = 2 in 1..16\n grid tm in tile(M, BM), tn in tile(N)\n"
        " v = load(x[tm, tn], fill=1000)\n"
        " store(s[tm, tn], cumsum(v, axis=1))\n store(r[tm, tn], cumsum(v, axis=1, reverse=true))\n"
        " store(p[tm, tn], cumprod(v * 0.01 + 1, axis=1))\n"
        " store(mx[tm, tn], cummax(v, axis=1, reverse=true))\n store(mn[tm, tn], cummin(v, axis=-1))\n}\n";
    ts_kernel *k;
    cr_assert_eq(ts_kernel_parse(text, "scans.tile", &k), TS_OK, "%s", ts_last_error());
    ts_context *ctx = ref_ctx();
    static const int64_t ns[] = {1, 7, 127};
    static const char *const cfgs[] = {"BM=1", "BM=4"};
    for (size_t ni = 0; ni < 3; ni++)
        for (size_t ci = 0; ci < 2; ci++) {
            int64_t M = 5, N = ns[ni], shape[2] = {M, N};
            float *x = rand_f32(M * N), *got[5];
            ts_tensor *t[6];
            t[0] = tensor(ctx, TS_F32, 2, shape, x);
            for (int i = 1; i < 6; i++) t[i] = tensor(ctx, TS_F32, 2, shape, NULL);
            launch(ctx, k, cfgs[ci],
                   (ts_arg[]){TS_ARG_TENSOR(t[0]), TS_ARG_TENSOR(t[1]), TS_ARG_TENSOR(t[2]), TS_ARG_TENSOR(t[3]), TS_ARG_TENSOR(t[4]),
                              TS_ARG_TENSOR(t[5])},
                   6);
            for (int i = 0; i < 5; i++) {
                got[i] = malloc((size_t)(M * N) * sizeof(float));
                read_back(t[i + 1], got[i]);
            }
            for (int64_t m = 0; m < M; m++) {
                const float *row = x + m * N;
                float s = 0, p = 1, lo = INFINITY;
                for (int64_t n = 0; n < N; n++) {
                    s += row[n];
                    p *= row[n] * 0.01f + 1;
                    lo = fminf(lo, row[n]);
                    cr_expect(close_to(got[0][m * N + n], s, 1e-5, 1e-5), "N=%lld %s cumsum[%lld,%lld] = %g, want %g", (long long)N, cfgs[ci],
                              (long long)m, (long long)n, got[0][m * N + n], s);
                    cr_expect(close_to(got[2][m * N + n], p, 1e-6, 1e-5), "cumprod[%lld,%lld] = %g, want %g", (long long)m, (long long)n,
                              got[2][m * N + n], p);
                    cr_expect_eq(got[4][m * N + n], lo, "cummin[%lld,%lld] = %g, want %g", (long long)m, (long long)n, got[4][m * N + n], lo);
                }
                float rs = 0, hi = -INFINITY;
                for (int64_t n = N - 1; n >= 0; n--) {
                    rs += row[n];
                    hi = fmaxf(hi, row[n]);
                    cr_expect(close_to(got[1][m * N + n], rs, 1e-5, 1e-5), "N=%lld %s reversed cumsum[%lld,%lld] = %g, want %g", (long long)N,
                              cfgs[ci], (long long)m, (long long)n, got[1][m * N + n], rs);
                    cr_expect_eq(got[3][m * N + n], hi, "reversed cummax[%lld,%lld] = %g, want %g", (long long)m, (long long)n, got[3][m * N + n],
                                 hi);
                }
            }
            for (int i = 0; i < 6; i++) ts_tensor_destroy(t[i]);
            for (int i = 0; i < 5; i++) free(got[i]);
            free(x);
        }
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}

/* ---------------------------------------------------------------- 8- and 16-bit dtypes */

/* The value of 8-bit float code c from the OCP OFP8 definition (written
 * here independently of api/util.c); NaN for NaN codes. */
static double ofp8_value(unsigned c, int e5m2) {
    const int mb = e5m2 ? 2 : 3, bias = e5m2 ? 15 : 7;
    int s = c >> 7, e = (int)(c >> mb) & (e5m2 ? 31 : 15), m = (int)c & ((1 << mb) - 1);
    double v;
    if (e5m2 && e == 31) v = m ? NAN : INFINITY;
    else if (!e5m2 && e == 15 && m == 7) v = NAN;
    else if (e == 0) v = m * pow(2.0, 1 - bias - mb);
    else v = (1.0 + m / (double)(1 << mb)) * pow(2.0, e - bias);
    return s ? -v : v;
}

/* The code round-to-nearest-even gives for x, by searching all codes: ties
 * go to the even code; past the largest finite value the next step (480 for
 * E4M3, whose code would be odd; 65536 for E5M2, even) stands for overflow:
 * NaN for E4M3, infinity for E5M2. */
static unsigned ofp8_nearest(float x, int e5m2) {
    if (isnan(x)) return e5m2 ? 0x7e : 0x7f;
    unsigned sign = signbit(x) ? 0x80 : 0;
    double a = fabs((double)x), best_d = INFINITY;
    unsigned best = 0;
    for (unsigned c = 0; c < 0x80; c++) {
        double v = ofp8_value(c, e5m2);
        if (isnan(v) || isinf(v)) continue;
        double d = fabs(a - v);
        if (d < best_d || (d == best_d && !(c & 1))) best_d = d, best = c;
    }
    double over = e5m2 ? 65536.0 : 480.0, d = isinf(a) ? INFINITY : fabs(a - over);
    if (isinf(a) || d < best_d || (d == best_d && e5m2)) return sign | (e5m2 ? 0x7c : 0x7f);
    return sign | best;
}

Test(dtypes, f8_decode_and_round_to_nearest_even_match_a_search_over_all_codes) {
    ts_context *ctx = ref_ctx();
    for (int e5 = 0; e5 < 2; e5++) {
        ts_dtype f8 = e5 ? TS_F8_E5M2 : TS_F8_E4M3;
        /* inputs: every code's value, the midpoints between neighbours and a hair either side, the edges, randoms */
        float xs[4096];
        int n = 0;
        for (unsigned c = 0; c < 0x80; c++) {
            double v = ofp8_value(c, e5), w = ofp8_value(c + 1, e5);
            if (isnan(v) || isinf(v)) continue;
            xs[n++] = (float)v, xs[n++] = (float)-v;
            if (c + 1 < 0x80 && isfinite(w)) {
                double mid = (v + w) / 2;
                xs[n++] = (float)mid, xs[n++] = (float)-mid;
                xs[n++] = nextafterf((float)mid, 0), xs[n++] = nextafterf((float)mid, INFINITY);
            }
        }
        float edges[] = {INFINITY, -INFINITY, NAN, 464.0f, nextafterf(464.0f, 1e9f), 500.0f, 61440.0f, nextafterf(61440.0f, 0), 1e9f, -0.0f, 1e-30f,
                         -1e-30f, 0.0009765625f /* 2^-10: half the smallest E4M3 subnormal */, 0.0029296875f /* 1.5 units */};
        for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) xs[n++] = edges[i];
        for (; n < 4096; n++) xs[n] = (rndf() * 2 - 1) * (e5 ? 70000.0f : 500.0f) * (n % 3 ? 1.0f : 0.01f);
        int64_t N = n;
        ts_builder *b = begin("f8");
        ts_size sN = ts_size_sym(b, "N");
        ts_param px = ts_param_tensor(b, "x", TS_F32, 1, &sN), py = ts_param_tensor(b, "y", f8, 1, &sN);
        ts_param pz = ts_param_tensor(b, "z", TS_F32, 1, &sN), pb = ts_param_tensor(b, "back", TS_F32, 1, &sN);
        ts_param pc = ts_param_tensor(b, "codes", f8, 1, &sN);
        ts_tunable(b, "BLOCK", 16, 64, 16);
        ts_tile t = ts_grid_tile(b, "t", sN, "BLOCK");
        ts_val v = ts_load(b, px, &TS_AT(t), 0.0);
        ts_store(b, py, &TS_AT(t), v);                                    /* the store rounds */
        ts_store(b, pz, &TS_AT(t), ts_cast(b, ts_cast(b, v, f8), TS_F32)); /* so does a cast */
        ts_store(b, pb, &TS_AT(t), ts_load(b, pc, &TS_AT(t), 0.0));      /* decoding */
        ts_kernel *k = finish(b);
        uint8_t codes[4096], got[4096];
        for (int i = 0; i < n; i++) codes[i] = (uint8_t)i;
        float z[4096], back[4096];
        ts_tensor *tx = tensor(ctx, TS_F32, 1, &N, xs), *ty = tensor(ctx, f8, 1, &N, NULL), *tz = tensor(ctx, TS_F32, 1, &N, NULL),
                  *tb = tensor(ctx, TS_F32, 1, &N, NULL), *tc = tensor(ctx, f8, 1, &N, codes);
        launch(ctx, k, "BLOCK=64", (ts_arg[]){TS_ARG_TENSOR(tx), TS_ARG_TENSOR(ty), TS_ARG_TENSOR(tz), TS_ARG_TENSOR(tb), TS_ARG_TENSOR(tc)}, 5);
        read_back(ty, got);
        read_back(tz, z);
        read_back(tb, back);
        int bad = 0;
        for (int i = 0; i < n; i++) {
            unsigned want = ofp8_nearest(xs[i], e5);
            double wv = ofp8_value(want, e5);
            int ok = got[i] == want || (isnan(wv) && isnan(ofp8_value(got[i], e5)));
            int zok = isnan(wv) ? isnan(z[i]) : z[i] == (float)wv;
            if ((!ok || !zok) && bad++ < 5)
                cr_expect(0, "%s: x = %.9g stored as 0x%02x (cast back %.9g), want 0x%02x (%.9g)", ts_dtype_name(f8), xs[i], got[i], z[i], want, wv);
        }
        cr_expect_eq(bad, 0, "%s: %d of %d roundings differ from the search", ts_dtype_name(f8), bad, n);
        for (int c = 0; c < 256; c++) {
            double w = ofp8_value((unsigned)c, e5);
            cr_expect(isnan(w) ? isnan(back[c]) : back[c] == (float)w, "%s code 0x%02x decodes to %.9g, want %.9g", ts_dtype_name(f8), c, back[c], w);
        }
        ts_tensor_destroy(tx), ts_tensor_destroy(ty), ts_tensor_destroy(tz), ts_tensor_destroy(tb), ts_tensor_destroy(tc);
        ts_kernel_destroy(k);
    }
    ts_context_destroy(ctx);
}

/* i8 and i16 wrap as two's complement at every op (sums, products, casts);
 * an i8 dot accumulates exactly into i32 (checked with plain C sums). */
Test(dtypes, i8_i16_wrap_and_i8_dot_is_exact_in_i32) {
    static const char *const text =
        "kernel narrow(a: i8[M, K], b: i8[K, N], c: i32[M, N], w: i8[M, K], h: i16[M, K]) {\n"
        " tunable BM = 16 in 1..64\n tunable BN = 16 in 1..64\n tunable BK = 16 in 1..64\n"
        " grid tm in tile(M, BM), tn in tile(N, BN)\n"
        " acc = for tk in tile(K, BK) carry (s = zeros(i32, [tm, tn])) {\n  yield dot(load(a[tm, tk]), load(b[tk, tn]), s)\n }\n"
        " store(c[tm, tn], acc)\n"
        " kw = for tq in tile(K, BK) carry (z = zeros(i32, [])) {\n"
        "  x = load(a[tm, tq])\n  store(w[tm, tq], x * x + x)\n  store(h[tm, tq], cast(x, i16) * cast(x, i16) * cast(x, i16))\n"
        "  yield z\n }\n}\n";
    ts_kernel *k;
    cr_assert_eq(ts_kernel_parse(text, "narrow.tile", &k), TS_OK, "%s", ts_last_error());
    ts_context *ctx = ref_ctx();
    const int64_t M = 37, N = 29, K = 301;
    int8_t *a = malloc(M * K), *bm = malloc(K * N), *w = malloc(M * K);
    int16_t *h = malloc(M * K * 2);
    int32_t *c = malloc(M * N * 4);
    for (int64_t i = 0; i < M * K; i++) a[i] = (int8_t)(rnd() % 256 - 128);
    for (int64_t i = 0; i < K * N; i++) bm[i] = (int8_t)(rnd() % 256 - 128);
    ts_tensor *ta = tensor(ctx, TS_I8, 2, (int64_t[]){M, K}, a), *tb = tensor(ctx, TS_I8, 2, (int64_t[]){K, N}, bm),
              *tc = tensor(ctx, TS_I32, 2, (int64_t[]){M, N}, NULL), *tw = tensor(ctx, TS_I8, 2, (int64_t[]){M, K}, NULL),
              *th = tensor(ctx, TS_I16, 2, (int64_t[]){M, K}, NULL);
    launch(ctx, k, "BM=16,BN=8,BK=32", (ts_arg[]){TS_ARG_TENSOR(ta), TS_ARG_TENSOR(tb), TS_ARG_TENSOR(tc), TS_ARG_TENSOR(tw), TS_ARG_TENSOR(th)}, 5);
    read_back(tc, c);
    read_back(tw, w);
    read_back(th, h);
    int bad = 0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            int32_t s = 0;
            for (int64_t p = 0; p < K; p++) s += (int32_t)a[i * K + p] * bm[p * N + j];
            bad += c[i * N + j] != s;
        }
    cr_expect_eq(bad, 0, "%d i8 dot results differ from plain C", bad);
    bad = 0;
    for (int64_t i = 0; i < M * K; i++) {
        int x = a[i];
        bad += w[i] != (int8_t)(uint8_t)(unsigned)(x * x + x) || h[i] != (int16_t)(uint16_t)(unsigned)(x * x * x);
    }
    cr_expect_eq(bad, 0, "%d wrapped i8/i16 results differ from plain C", bad);
    free(a), free(bm), free(w), free(h), free(c);
    ts_tensor_destroy(ta), ts_tensor_destroy(tb), ts_tensor_destroy(tc), ts_tensor_destroy(tw), ts_tensor_destroy(th);
    ts_kernel_destroy(k);
    ts_context_destroy(ctx);
}
