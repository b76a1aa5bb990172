/* test_builder.c: the builder is the validator. Every kind of malformed
 * kernel is rejected by the failing call (which returns TS_NONE or the
 * status) and by ts_builder_finish() with its specific ts_status and a
 * message naming the kernel, the operation and the reason. Also: sticky
 * errors, NULL-safety of destroy functions, status names, kernel hashes.
 *
 * Sections: helpers; malformed kernels (one test each); sticky errors and
 * ownership; status names; hashes. */
#include <criterion/criterion.h>

#include "tessera.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

/* A kernel under construction with the usual scaffolding: sizes M and N,
 * tensors x, y: f32[M, N], tunables BM and BN, grid tiles tm and tn. */
typedef struct fixture {
    ts_builder *b;
    ts_size M, N;
    ts_param x, y;
    ts_tile tm, tn;
} fixture;

static fixture setup(const char *kernel) {
    fixture f;
    memset(&f, 0, sizeof f);
    cr_assert_eq(ts_builder_create(kernel, &f.b), TS_OK, "%s", ts_last_error());
    f.M = ts_size_sym(f.b, "M");
    f.N = ts_size_sym(f.b, "N");
    f.x = ts_param_tensor(f.b, "x", TS_F32, 2, (ts_size[]){f.M, f.N});
    f.y = ts_param_tensor(f.b, "y", TS_F32, 2, (ts_size[]){f.M, f.N});
    cr_assert_eq(ts_tunable(f.b, "BM", 1, 64, 8), TS_OK);
    cr_assert_eq(ts_tunable(f.b, "BN", 16, 256, 32), TS_OK);
    f.tm = ts_grid_tile(f.b, "tm", f.M, "BM");
    f.tn = ts_grid_tile(f.b, "tn", f.N, "BN");
    cr_assert(f.M >= 0 && f.N >= 0 && f.x >= 0 && f.y >= 0 && f.tm >= 0 && f.tn >= 0, "%s", ts_last_error());
    return f;
}

/* Finishes a builder that must fail: checks the status, that *out stays
 * NULL, and that the message holds each of the NULL-terminated substrings
 * (the kernel, the operation, the reason). Destroys the builder. */
static void expect_finish_error(ts_builder *b, ts_status want, const char *const *subs) {
    ts_kernel *k = (ts_kernel *)&k; /* not NULL: finish must clear it */
    ts_status s = ts_builder_finish(b, &k);
    const char *msg = ts_last_error();
    cr_expect_eq(s, want, "finish returned %s (want %s): %s", ts_status_name(s), ts_status_name(want), msg);
    cr_expect_null(k, "a failed finish must leave *out NULL");
    for (int i = 0; subs[i]; i++) cr_expect(strstr(msg, subs[i]) != NULL, "message '%s' lacks '%s'", msg, subs[i]);
    ts_kernel_destroy(k == (ts_kernel *)&k ? NULL : k);
    ts_builder_destroy(b);
}

#define SUBS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void at2(ts_tile a, ts_tile b, ts_index *buf) {
    buf[0] = TS_AT(a);
    buf[1] = TS_AT(b);
}

/* ---------------------------------------------------------------- malformed kernels */

Test(malformed, binary_shapes_do_not_broadcast) {
    fixture f = setup("bad_bcast");
    ts_index ix[2];
    at2(f.tm, f.tn, ix);
    ts_val a = ts_load(f.b, f.x, ix, 0.0);                       /* [tm, tn] */
    ts_val r = ts_reduce(f.b, TS_RED_SUM, a, 1, 0);              /* [tm]: right-aligned against tn */
    cr_assert(a >= 0 && r >= 0);
    ts_val bad = ts_binary(f.b, TS_ADD, a, r);
    cr_expect_eq(bad, TS_NONE);
    expect_finish_error(f.b, TS_ERR_SHAPE_MISMATCH, SUBS("kernel 'bad_bcast'", "add", "[tm, tn]", "[tm]", "do not broadcast"));
}

Test(malformed, binary_dtype_mismatch) {
    fixture f = setup("bad_dtype");
    ts_index ix[2];
    at2(f.tm, f.tn, ix);
    ts_val a = ts_load(f.b, f.x, ix, 0.0);
    ts_val i = ts_cast(f.b, a, TS_I32);
    cr_expect_eq(ts_binary(f.b, TS_MUL, a, i), TS_NONE);
    expect_finish_error(f.b, TS_ERR_DTYPE_MISMATCH, SUBS("kernel 'bad_dtype'", "mul", "f32", "i32", "differ in dtype"));
}

Test(malformed, loop_carried_value_used_after_loop) {
    fixture f = setup("bad_scope_carry");
    ts_val z = ts_zeros(f.b, TS_F32, 1, &f.tm), acc, res;
    ts_tile tk = ts_loop_begin(f.b, "tk", f.N, "BN", 1, &z, &acc);
    cr_assert(tk >= 0);
    ts_val nxt = ts_binary(f.b, TS_ADD, acc, z);
    cr_assert_eq(ts_loop_end(f.b, &nxt, &res), TS_OK);
    /* `acc` lives only inside the loop */
    cr_expect_eq(ts_binary(f.b, TS_MUL, acc, res), TS_NONE);
    expect_finish_error(f.b, TS_ERR_SCOPE, SUBS("kernel 'bad_scope_carry'", "mul", "outside the loop 'tk'"));
}

Test(malformed, loop_body_value_used_after_loop) {
    fixture f = setup("bad_scope_body");
    ts_tile tk = ts_loop_begin(f.b, "tk", f.N, "BN", 0, NULL, NULL);
    ts_val v = ts_load(f.b, f.x, (ts_index[]){TS_AT(f.tm), TS_AT(tk)}, 0.0);
    ts_val s = ts_reduce(f.b, TS_RED_SUM, v, 1, 0);
    cr_assert(s >= 0);
    cr_assert_eq(ts_name(f.b, s, "rowpart"), TS_OK);
    cr_assert_eq(ts_loop_end(f.b, NULL, NULL), TS_OK);
    cr_expect_eq(ts_store(f.b, f.y, (ts_index[]){TS_AT(f.tm), TS_AT(f.tn)}, s), TS_ERR_SCOPE);
    expect_finish_error(f.b, TS_ERR_SCOPE, SUBS("kernel 'bad_scope_body'", "store", "'rowpart'", "outside the loop 'tk'"));
}

Test(malformed, loop_tile_used_after_loop) {
    fixture f = setup("bad_scope_tile");
    ts_tile tk = ts_loop_begin(f.b, "tk", f.N, "BN", 0, NULL, NULL);
    ts_val v = ts_load(f.b, f.x, (ts_index[]){TS_AT(f.tm), TS_AT(tk)}, 0.0);
    ts_store(f.b, f.y, (ts_index[]){TS_AT(f.tm), TS_AT(tk)}, v);
    cr_assert_eq(ts_loop_end(f.b, NULL, NULL), TS_OK);
    cr_expect_eq(ts_arange(f.b, tk), TS_NONE);
    expect_finish_error(f.b, TS_ERR_SCOPE, SUBS("kernel 'bad_scope_tile'", "arange", "tile 'tk'", "outside its loop"));
}

Test(malformed, unknown_tunable) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_tunable", &b), TS_OK);
    ts_size M = ts_size_sym(b, "M");
    ts_param x = ts_param_tensor(b, "x", TS_F32, 1, &M);
    cr_assert_eq(ts_tunable(b, "BLOCK", 16, 64, 32), TS_OK);
    cr_expect_eq(ts_grid_tile(b, "tm", M, "BLOK"), TS_NONE);
    (void)x;
    expect_finish_error(b, TS_ERR_UNKNOWN_TUNABLE, SUBS("kernel 'bad_tunable'", "grid tile 'tm'", "unknown tunable 'BLOK'"));
}

Test(malformed, unknown_tunable_in_loop) {
    fixture f = setup("bad_loop_tunable");
    cr_expect_eq(ts_loop_begin(f.b, "tk", f.N, "BK", 0, NULL, NULL), TS_NONE);
    expect_finish_error(f.b, TS_ERR_UNKNOWN_TUNABLE, SUBS("kernel 'bad_loop_tunable'", "loop 'tk'", "unknown tunable 'BK'"));
}

Test(malformed, load_index_same_tile_twice) {
    fixture f = setup("bad_index");
    /* a tile gives one dim of an access: x[tn, tn] would need a diagonal */
    cr_expect_eq(ts_load(f.b, f.x, (ts_index[]){TS_AT(f.tn), TS_AT(f.tn)}, 0.0), TS_NONE);
    expect_finish_error(f.b, TS_ERR_INDEX, SUBS("kernel 'bad_index'", "load 'x'", "tile 'tn' gives two dims"));
}

Test(malformed, float_index_offset) {
    fixture f = setup("bad_offset");
    ts_val h = ts_full(f.b, TS_F32, 0, NULL, 1.0);
    cr_expect_eq(ts_load(f.b, f.x, (ts_index[]){TS_AT(f.tm), TS_AT_SHIFT(f.tn, h)}, 0.0), TS_NONE);
    expect_finish_error(f.b, TS_ERR_INDEX, SUBS("kernel 'bad_offset'", "load 'x' dim 1", "must be a rank-0 integer value"));
}

Test(malformed, ranged_loop_without_block) {
    fixture f = setup("bad_range");
    ts_val lo = ts_full(f.b, TS_I32, 0, NULL, 0), hi = ts_size_value(f.b, f.N);
    cr_expect_eq(ts_loop_begin_range(f.b, "tk", lo, hi, NULL, 0, NULL, NULL), TS_NONE);
    expect_finish_error(f.b, TS_ERR_INVALID_ARGUMENT, SUBS("loop 'tk' over a range needs a tunable block size"));
}

Test(malformed, yield_shape_differs_from_carry) {
    fixture f = setup("bad_yield_shape");
    ts_val z = ts_zeros(f.b, TS_F32, 1, &f.tm), acc, res;
    ts_tile tk = ts_loop_begin(f.b, "tk", f.N, "BN", 1, &z, &acc);
    ts_val v = ts_load(f.b, f.x, (ts_index[]){TS_AT(f.tm), TS_AT(tk)}, 0.0); /* [tm, tk] */
    cr_expect_eq(ts_loop_end(f.b, &v, &res), TS_ERR_SHAPE_MISMATCH);
    expect_finish_error(f.b, TS_ERR_SHAPE_MISMATCH, SUBS("kernel 'bad_yield_shape'", "yield of loop 'tk'", "[tm, tk]", "[tm]"));
}

Test(malformed, yield_dtype_differs_from_carry) {
    fixture f = setup("bad_yield_dtype");
    ts_val z = ts_zeros(f.b, TS_F32, 1, &f.tm), acc, res;
    ts_loop_begin(f.b, "tk", f.N, "BN", 1, &z, &acc);
    ts_val c = ts_cast(f.b, acc, TS_F16);
    cr_expect_eq(ts_loop_end(f.b, &c, &res), TS_ERR_DTYPE_MISMATCH);
    expect_finish_error(f.b, TS_ERR_DTYPE_MISMATCH, SUBS("kernel 'bad_yield_dtype'", "yield of loop 'tk'", "f16", "f32"));
}

Test(malformed, missing_yields) {
    fixture f = setup("bad_yield_count");
    ts_val z = ts_zeros(f.b, TS_F32, 1, &f.tm), acc;
    ts_loop_begin(f.b, "tk", f.N, "BN", 1, &z, &acc);
    cr_expect_eq(ts_loop_end(f.b, NULL, NULL), TS_ERR_INVALID_ARGUMENT);
    expect_finish_error(f.b, TS_ERR_INVALID_ARGUMENT, SUBS("kernel 'bad_yield_count'", "loop 'tk'", "yields or results is NULL"));
}

Test(malformed, unclosed_loop) {
    fixture f = setup("bad_unclosed");
    ts_tile tk = ts_loop_begin(f.b, "tk", f.N, "BN", 0, NULL, NULL);
    ts_val v = ts_load(f.b, f.x, (ts_index[]){TS_AT(f.tm), TS_AT(tk)}, 0.0);
    cr_assert_eq(ts_store(f.b, f.y, (ts_index[]){TS_AT(f.tm), TS_AT(tk)}, v), TS_OK);
    expect_finish_error(f.b, TS_ERR_STATE, SUBS("kernel 'bad_unclosed'", "loop 'tk'", "not closed"));
}

Test(malformed, loop_end_without_loop) {
    fixture f = setup("bad_loop_end");
    cr_expect_eq(ts_loop_end(f.b, NULL, NULL), TS_ERR_STATE);
    expect_finish_error(f.b, TS_ERR_STATE, SUBS("kernel 'bad_loop_end'", "loop end", "without an open loop"));
}

Test(malformed, no_store) {
    fixture f = setup("bad_no_store");
    ts_index ix[2];
    at2(f.tm, f.tn, ix);
    cr_assert(ts_unary(f.b, TS_EXP, ts_load(f.b, f.x, ix, 0.0)) >= 0);
    expect_finish_error(f.b, TS_ERR_INVALID_KERNEL, SUBS("kernel 'bad_no_store'", "no store or atomic_add"));
}

Test(malformed, no_grid) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_no_grid", &b), TS_OK);
    ts_size M = ts_size_sym(b, "M");
    ts_param_tensor(b, "x", TS_F32, 1, &M);
    expect_finish_error(b, TS_ERR_INVALID_KERNEL, SUBS("kernel 'bad_no_grid'", "no grid tile"));
}

Test(malformed, dot_inner_dim_mismatch) {
    fixture f = setup("bad_dot_inner");
    ts_index ix[2];
    at2(f.tm, f.tn, ix);
    ts_val a = ts_load(f.b, f.x, ix, 0.0); /* [tm, tn] */
    cr_expect_eq(ts_dot(f.b, a, a, TS_NONE), TS_NONE); /* [tm, tn] x [tm, tn] */
    expect_finish_error(f.b, TS_ERR_SHAPE_MISMATCH, SUBS("kernel 'bad_dot_inner'", "dot", "inner dims", "[tm, tn]"));
}

Test(malformed, dot_accumulator_not_f32) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_dot_acc", &b), TS_OK);
    ts_size M = ts_size_sym(b, "M"), K = ts_size_sym(b, "K"), N = ts_size_sym(b, "N");
    ts_param A = ts_param_tensor(b, "A", TS_F16, 2, (ts_size[]){M, K});
    ts_param B = ts_param_tensor(b, "B", TS_F16, 2, (ts_size[]){K, N});
    ts_tile tm = ts_grid_tile(b, "tm", M, NULL), tn = ts_grid_tile(b, "tn", N, NULL), tk = ts_grid_tile(b, "tk", K, NULL);
    ts_val a = ts_load(b, A, (ts_index[]){TS_AT(tm), TS_AT(tk)}, 0.0);
    ts_val bb = ts_load(b, B, (ts_index[]){TS_AT(tk), TS_AT(tn)}, 0.0);
    ts_val acc = ts_zeros(b, TS_F16, 2, (ts_tile[]){tm, tn});
    cr_assert(acc >= 0);
    cr_expect_eq(ts_dot(b, a, bb, acc), TS_NONE);
    expect_finish_error(b, TS_ERR_DTYPE_MISMATCH, SUBS("kernel 'bad_dot_acc'", "dot", "accumulator is f16", "needs f32"));
}

Test(malformed, tunable_range_not_power_of_two) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_tunable_range", &b), TS_OK);
    cr_expect_eq(ts_tunable(b, "BLOCK", 16, 96, 32), TS_ERR_INVALID_KERNEL);
    expect_finish_error(b, TS_ERR_INVALID_KERNEL, SUBS("kernel 'bad_tunable_range'", "tunable 'BLOCK'", "16..96", "powers of two"));
}

Test(malformed, tunable_default_outside_range) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_tunable_def", &b), TS_OK);
    cr_expect_eq(ts_tunable(b, "BLOCK", 16, 64, 128), TS_ERR_INVALID_KERNEL);
    expect_finish_error(b, TS_ERR_INVALID_KERNEL, SUBS("kernel 'bad_tunable_def'", "tunable 'BLOCK'", "default 128"));
}

Test(malformed, duplicate_parameter_name) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_dup", &b), TS_OK);
    ts_size M = ts_size_sym(b, "M");
    cr_assert(ts_param_tensor(b, "x", TS_F32, 1, &M) >= 0);
    cr_expect_eq(ts_param_scalar(b, "x", TS_F32), TS_NONE);
    expect_finish_error(b, TS_ERR_NAME, SUBS("kernel 'bad_dup'", "duplicate name 'x'"));
}

Test(malformed, tile_name_clashes_with_tunable) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_dup_tile", &b), TS_OK);
    ts_size M = ts_size_sym(b, "M");
    ts_param_tensor(b, "x", TS_F32, 1, &M);
    ts_tunable(b, "BM", 1, 64, 8);
    cr_expect_eq(ts_grid_tile(b, "BM", M, "BM"), TS_NONE);
    expect_finish_error(b, TS_ERR_NAME, SUBS("kernel 'bad_dup_tile'", "tile name 'BM'", "already"));
}

Test(malformed, invalid_identifiers) {
    static const char *const bad[] = {"1x", "a-b", "", "x y", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ts_builder *b;
        cr_assert_eq(ts_builder_create("bad_ident", &b), TS_OK);
        ts_size M = ts_size_sym(b, "M");
        cr_expect_eq(ts_param_tensor(b, bad[i], TS_F32, 1, &M), TS_NONE, "'%s' accepted", bad[i]);
        char want[64];
        snprintf(want, sizeof want, "parameter name '%s' is not an identifier", bad[i]);
        expect_finish_error(b, TS_ERR_NAME, SUBS("kernel 'bad_ident'", want));
    }
    char long_name[100];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_ident", &b), TS_OK);
    cr_expect_eq(ts_size_sym(b, long_name), TS_NONE);
    expect_finish_error(b, TS_ERR_NAME, SUBS("kernel 'bad_ident'", "size name", "not an identifier"));
}

Test(malformed, invalid_kernel_name) {
    ts_builder *b = (ts_builder *)&b;
    cr_expect_eq(ts_builder_create("9lives", &b), TS_ERR_NAME);
    cr_expect_null(b, "failed create must leave *out NULL");
    cr_expect(strstr(ts_last_error(), "'9lives'") && strstr(ts_last_error(), "not an identifier"), "%s", ts_last_error());
    b = (ts_builder *)&b;
    cr_expect_eq(ts_builder_create(NULL, &b), TS_ERR_NAME);
    cr_expect_null(b);
}

Test(malformed, rank_above_four) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_rank", &b), TS_OK);
    ts_size M = ts_size_sym(b, "M");
    ts_size dims[5] = {M, M, M, M, M};
    cr_expect_eq(ts_param_tensor(b, "x", TS_F32, 5, dims), TS_NONE);
    expect_finish_error(b, TS_ERR_RANK, SUBS("kernel 'bad_rank'", "tensor 'x'", "rank 5", "1..4"));
}

Test(malformed, rank_zero_tensor) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_rank0", &b), TS_OK);
    cr_expect_eq(ts_param_tensor(b, "x", TS_F32, 0, NULL), TS_NONE);
    expect_finish_error(b, TS_ERR_RANK, SUBS("kernel 'bad_rank0'", "tensor 'x'", "rank 0"));
}

Test(malformed, grid_tile_after_an_op) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_grid_late", &b), TS_OK);
    ts_size M = ts_size_sym(b, "M"), N = ts_size_sym(b, "N");
    ts_param_tensor(b, "x", TS_F32, 2, (ts_size[]){M, N});
    ts_tile tm = ts_grid_tile(b, "tm", M, NULL);
    cr_assert(ts_arange(b, tm) >= 0);
    cr_expect_eq(ts_grid_tile(b, "tn", N, NULL), TS_NONE);
    expect_finish_error(b, TS_ERR_STATE, SUBS("kernel 'bad_grid_late'", "grid tile 'tn'", "after an operation"));
}

Test(malformed, parameter_after_grid) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_param_late", &b), TS_OK);
    ts_size M = ts_size_sym(b, "M");
    ts_param_tensor(b, "x", TS_F32, 1, &M);
    ts_grid_tile(b, "tm", M, NULL);
    cr_expect_eq(ts_param_scalar(b, "alpha", TS_F32), TS_NONE);
    expect_finish_error(b, TS_ERR_STATE, SUBS("kernel 'bad_param_late'", "parameter 'alpha'", "after the grid"));
}

Test(malformed, more_than_three_grid_tiles) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_grid4", &b), TS_OK);
    ts_size s[4] = {ts_size_sym(b, "A"), ts_size_sym(b, "B"), ts_size_sym(b, "C"), ts_size_sym(b, "D")};
    ts_param_tensor(b, "x", TS_F32, 4, s);
    cr_assert(ts_grid_tile(b, "ta", s[0], NULL) >= 0);
    cr_assert(ts_grid_tile(b, "tb", s[1], NULL) >= 0);
    cr_assert(ts_grid_point(b, "tc", s[2]) >= 0);
    cr_expect_eq(ts_grid_tile(b, "td", s[3], NULL), TS_NONE);
    expect_finish_error(b, TS_ERR_LIMIT, SUBS("kernel 'bad_grid4'", "grid tile 'td'", "at most 3"));
}

Test(malformed, size_symbol_not_bound_by_a_tensor) {
    fixture f = setup("bad_unbound");
    ts_size K = ts_size_sym(f.b, "K"); /* used only as a loop extent */
    ts_tile tk = ts_loop_begin(f.b, "tk", K, NULL, 0, NULL, NULL);
    ts_val a = ts_arange(f.b, tk);
    cr_assert(a >= 0);
    ts_loop_end(f.b, NULL, NULL);
    ts_index ix[2];
    at2(f.tm, f.tn, ix);
    ts_store(f.b, f.y, ix, ts_load(f.b, f.x, ix, 0.0));
    expect_finish_error(f.b, TS_ERR_INVALID_KERNEL, SUBS("kernel 'bad_unbound'", "size 'K'", "not the size of any tensor dim"));
}

Test(malformed, exp_of_integer_tile) {
    fixture f = setup("bad_exp_int");
    ts_val a = ts_arange(f.b, f.tm); /* i32 */
    cr_assert_eq(ts_name(f.b, a, "rows"), TS_OK);
    cr_expect_eq(ts_unary(f.b, TS_EXP, a), TS_NONE);
    expect_finish_error(f.b, TS_ERR_DTYPE_MISMATCH, SUBS("kernel 'bad_exp_int'", "exp", "'rows'", "i32", "needs a float dtype"));
}

Test(malformed, select_with_non_bool_condition) {
    fixture f = setup("bad_select");
    ts_index ix[2];
    at2(f.tm, f.tn, ix);
    ts_val a = ts_load(f.b, f.x, ix, 0.0);
    cr_expect_eq(ts_select(f.b, a, a, a), TS_NONE);
    expect_finish_error(f.b, TS_ERR_DTYPE_MISMATCH, SUBS("kernel 'bad_select'", "select", "condition is f32", "needs bool"));
}

Test(malformed, select_branches_differ) {
    fixture f = setup("bad_select_branches");
    ts_val i = ts_arange(f.b, f.tm);
    ts_val c = ts_binary(f.b, TS_LT, i, i);
    ts_val fl = ts_cast(f.b, i, TS_F32);
    cr_expect_eq(ts_select(f.b, c, i, fl), TS_NONE);
    expect_finish_error(f.b, TS_ERR_DTYPE_MISMATCH, SUBS("kernel 'bad_select_branches'", "select", "i32", "f32"));
}

Test(malformed, reduce_axis_out_of_range) {
    fixture f = setup("bad_axis");
    ts_index ix[2];
    at2(f.tm, f.tn, ix);
    ts_val a = ts_load(f.b, f.x, ix, 0.0);
    cr_expect_eq(ts_reduce(f.b, TS_RED_SUM, a, 2, 0), TS_NONE);
    expect_finish_error(f.b, TS_ERR_INVALID_ARGUMENT, SUBS("kernel 'bad_axis'", "sum", "axis 2", "0..1"));
}

Test(malformed, negative_reduce_axis) {
    fixture f = setup("bad_axis_neg");
    ts_index ix[2];
    at2(f.tm, f.tn, ix);
    ts_val a = ts_load(f.b, f.x, ix, 0.0);
    cr_expect_eq(ts_reduce(f.b, TS_RED_ARGMAX, a, -1, 0), TS_NONE);
    expect_finish_error(f.b, TS_ERR_INVALID_ARGUMENT, SUBS("kernel 'bad_axis_neg'", "argmax", "axis -1"));
}

Test(malformed, gather_with_float_ids) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_gather", &b), TS_OK);
    ts_size M = ts_size_sym(b, "M"), V = ts_size_sym(b, "V"), D = ts_size_sym(b, "D");
    ts_param ids = ts_param_tensor(b, "ids", TS_F32, 1, &M);
    ts_param table = ts_param_tensor(b, "table", TS_F32, 2, (ts_size[]){V, D});
    ts_param out = ts_param_tensor(b, "out", TS_F32, 2, (ts_size[]){M, D});
    ts_tile tm = ts_grid_tile(b, "tm", M, NULL), td = ts_grid_tile(b, "td", D, NULL);
    ts_val iv = ts_load(b, ids, &TS_AT(tm), 0.0);
    cr_expect_eq(ts_gather(b, table, iv, TS_AT(td), 0.0), TS_NONE);
    (void)out;
    expect_finish_error(b, TS_ERR_DTYPE_MISMATCH, SUBS("kernel 'bad_gather'", "gather 'table'", "ids are f32", "i32 or i64"));
}

Test(malformed, atomic_add_on_f16_tensor) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_atomic", &b), TS_OK);
    ts_size N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", TS_F16, 1, &N);
    ts_param y = ts_param_tensor(b, "y", TS_F16, 1, &N);
    ts_tile tn = ts_grid_tile(b, "tn", N, NULL);
    ts_val v = ts_load(b, x, &TS_AT(tn), 0.0);
    cr_expect_eq(ts_atomic_add(b, y, &TS_AT(tn), v), TS_ERR_DTYPE_MISMATCH);
    expect_finish_error(b, TS_ERR_DTYPE_MISMATCH, SUBS("kernel 'bad_atomic'", "atomic_add 'y'", "tensor is f16", "f32 or i32"));
}

Test(malformed, store_value_does_not_fit_index) {
    fixture f = setup("bad_store_shape");
    ts_val v = ts_load(f.b, f.x, (ts_index[]){TS_AT(f.tm), TS_AT(f.tn)}, 0.0);
    cr_expect_eq(ts_store(f.b, f.y, (ts_index[]){TS_AT(f.tm), TS_CONST_IDX(0)}, v), TS_ERR_SHAPE_MISMATCH);
    expect_finish_error(f.b, TS_ERR_SHAPE_MISMATCH, SUBS("kernel 'bad_store_shape'", "store 'y'", "[tm, tn]", "does not fit"));
}

Test(malformed, value_of_another_kernel) {
    fixture f = setup("bad_handle");
    cr_expect_eq(ts_unary(f.b, TS_NEG, 12345), TS_NONE);
    expect_finish_error(f.b, TS_ERR_INVALID_ARGUMENT, SUBS("kernel 'bad_handle'", "neg", "not a value of this kernel"));
}

Test(malformed, scalar_used_as_tensor) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_scalar_load", &b), TS_OK);
    ts_size N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", TS_F32, 1, &N);
    ts_param s = ts_param_scalar(b, "alpha", TS_F32);
    ts_tile tn = ts_grid_tile(b, "tn", N, NULL);
    (void)x;
    cr_expect_eq(ts_load(b, s, &TS_AT(tn), 0.0), TS_NONE);
    expect_finish_error(b, TS_ERR_INVALID_ARGUMENT, SUBS("kernel 'bad_scalar_load'", "load", "'alpha' is a scalar"));
}

Test(malformed, negative_constant_index) {
    fixture f = setup("bad_const_idx");
    cr_expect_eq(ts_load(f.b, f.x, (ts_index[]){TS_AT(f.tm), TS_CONST_IDX(-1)}, 0.0), TS_NONE);
    expect_finish_error(f.b, TS_ERR_INDEX, SUBS("kernel 'bad_const_idx'", "load 'x'", "constant index -1", "negative"));
}

Test(malformed, logical_and_of_non_bool) {
    fixture f = setup("bad_and");
    ts_val i = ts_arange(f.b, f.tm);
    cr_expect_eq(ts_binary(f.b, TS_AND, i, i), TS_NONE);
    expect_finish_error(f.b, TS_ERR_DTYPE_MISMATCH, SUBS("kernel 'bad_and'", "and", "i32", "needs bool"));
}

Test(malformed, mean_of_integers) {
    fixture f = setup("bad_mean");
    ts_val i = ts_arange(f.b, f.tm);
    cr_expect_eq(ts_reduce(f.b, TS_RED_MEAN, i, 0, 0), TS_NONE);
    expect_finish_error(f.b, TS_ERR_DTYPE_MISMATCH, SUBS("kernel 'bad_mean'", "mean", "i32", "float"));
}

Test(malformed, broadcast_to_incompatible_shape) {
    fixture f = setup("bad_broadcast");
    ts_val i = ts_arange(f.b, f.tm); /* [tm] */
    cr_expect_eq(ts_broadcast(f.b, i, 2, (ts_tile[]){f.tm, f.tn}), TS_NONE); /* right-aligned: tm vs tn */
    expect_finish_error(f.b, TS_ERR_SHAPE_MISMATCH, SUBS("kernel 'bad_broadcast'", "broadcast", "[tm]", "[tm, tn]"));
}

Test(malformed, fixed_size_out_of_range) {
    ts_builder *b;
    cr_assert_eq(ts_builder_create("bad_fixed", &b), TS_OK);
    cr_expect_eq(ts_size_fixed(b, 0), TS_NONE);
    expect_finish_error(b, TS_ERR_INVALID_ARGUMENT, SUBS("kernel 'bad_fixed'", "fixed size 0"));
}

/* ---------------------------------------------------------------- sticky errors and ownership */

Test(sticky, first_error_wins) {
    fixture f = setup("sticky");
    ts_index ix[2];
    at2(f.tm, f.tn, ix);
    ts_val a = ts_load(f.b, f.x, ix, 0.0);
    cr_assert(a >= 0);
    ts_val i = ts_arange(f.b, f.tm);
    cr_expect_eq(ts_unary(f.b, TS_EXP, i), TS_NONE); /* first error: dtype */
    /* every later call fails, even valid ones */
    cr_expect_eq(ts_unary(f.b, TS_NEG, a), TS_NONE);
    cr_expect_eq(ts_load(f.b, f.x, ix, 0.0), TS_NONE);
    cr_expect_eq(ts_size_sym(f.b, "Q"), TS_NONE);
    cr_expect_eq(ts_arange(f.b, f.tm), TS_NONE);
    cr_expect_eq(ts_store(f.b, f.y, ix, a), TS_ERR_DTYPE_MISMATCH);
    cr_expect_eq(ts_tunable(f.b, "BK", 1, 8, 2), TS_ERR_DTYPE_MISMATCH);
    cr_expect_eq(ts_name(f.b, a, "fine"), TS_ERR_DTYPE_MISMATCH);
    cr_expect_eq(ts_loop_end(f.b, NULL, NULL), TS_ERR_DTYPE_MISMATCH);
    /* a later call that would fail differently does not replace the message */
    cr_expect_eq(ts_binary(f.b, TS_ADD, a, i), TS_NONE);
    expect_finish_error(f.b, TS_ERR_DTYPE_MISMATCH, SUBS("kernel 'sticky'", "exp", "needs a float dtype"));
}

Test(sticky, finish_twice_reports_same_error) {
    fixture f = setup("sticky2");
    cr_expect_eq(ts_reduce(f.b, TS_RED_SUM, ts_arange(f.b, f.tm), 3, 0), TS_NONE);
    ts_kernel *k;
    cr_expect_eq(ts_builder_finish(f.b, &k), TS_ERR_INVALID_ARGUMENT);
    ts_clear_error();
    cr_expect_str_empty(ts_last_error());
    cr_expect_eq(ts_builder_finish(f.b, &k), TS_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(ts_last_error(), "axis 3") != NULL, "%s", ts_last_error());
    cr_expect_null(k);
    ts_builder_destroy(f.b);
}

Test(ownership, destroy_null_is_noop) {
    ts_builder_destroy(NULL);
    ts_kernel_destroy(NULL);
    ts_config_destroy(NULL);
    ts_context_destroy(NULL);
    ts_tensor_destroy(NULL);
}

Test(ownership, null_arguments_fail_cleanly) {
    cr_expect_eq(ts_builder_create("k", NULL), TS_ERR_INVALID_ARGUMENT);
    ts_kernel *k = (ts_kernel *)&k;
    cr_expect_eq(ts_builder_finish(NULL, &k), TS_ERR_INVALID_ARGUMENT);
    cr_expect_null(k);
    cr_expect_eq(ts_size_sym(NULL, "M"), TS_NONE);
    cr_expect_eq(ts_tunable(NULL, "B", 1, 2, 1), TS_ERR_INVALID_ARGUMENT);
    cr_expect_eq(ts_loop_end(NULL, NULL, NULL), TS_ERR_INVALID_ARGUMENT);
    cr_expect_eq(ts_store(NULL, 0, NULL, 0), TS_ERR_INVALID_ARGUMENT);
    cr_expect_eq(ts_unary(NULL, TS_EXP, 0), TS_NONE);
    cr_expect_null(ts_kernel_print(NULL));
    cr_expect_eq(ts_kernel_hash(NULL), 0);
    cr_expect_eq(ts_kernel_param_count(NULL), 0);
    ts_config *c = (ts_config *)&c;
    cr_expect_eq(ts_config_parse("BLOCK=", &c), TS_ERR_BAD_CONFIG);
    cr_expect_null(c, "failed parse must leave *out NULL");
}

static ts_kernel *build_copy(const char *kname, const char *xname, const char *sname, const char *vname, int64_t bmax, double fill) {
    ts_builder *b;
    if (ts_builder_create(kname, &b)) return NULL;
    ts_size N = ts_size_sym(b, sname);
    ts_param x = ts_param_tensor(b, xname, TS_F32, 1, &N);
    ts_param y = ts_param_tensor(b, "y", TS_F32, 1, &N);
    ts_tunable(b, "BLOCK", 16, bmax, 16);
    ts_tile t = ts_grid_tile(b, "t", N, "BLOCK");
    ts_val v = ts_load(b, x, &TS_AT(t), fill);
    ts_val e = ts_unary(b, TS_EXP, v);
    if (vname) ts_name(b, e, vname);
    ts_store(b, y, &TS_AT(t), e);
    ts_kernel *k = NULL;
    ts_status s = ts_builder_finish(b, &k);
    ts_builder_destroy(b);
    cr_assert_eq(s, TS_OK, "%s", ts_last_error());
    return k;
}

Test(ownership, kernel_outlives_builder) {
    ts_kernel *k = build_copy("copy", "x", "N", NULL, 64, 0.0);
    cr_assert_not_null(k);
    cr_expect_str_eq(ts_kernel_name(k), "copy");
    cr_expect_eq(ts_kernel_param_count(k), 2);
    ts_param_info pi;
    cr_assert_eq(ts_kernel_param(k, 0, &pi), TS_OK);
    cr_expect_str_eq(pi.name, "x");
    cr_expect_eq(pi.is_tensor, 1);
    cr_expect_eq(pi.rank, 1);
    cr_expect_str_eq(pi.size_names[0], "N");
    cr_expect_eq(ts_kernel_param(k, 2, &pi), TS_ERR_INVALID_ARGUMENT);
    cr_expect_eq(ts_kernel_tunable_count(k), 1);
    ts_tunable_info ti;
    cr_assert_eq(ts_kernel_tunable(k, 0, &ti), TS_OK);
    cr_expect_str_eq(ti.name, "BLOCK");
    cr_expect_eq(ti.min, 16);
    cr_expect_eq(ti.max, 64);
    cr_expect_eq(ti.def, 16);
    ts_kernel_destroy(k);
}

/* ---------------------------------------------------------------- status names */

Test(status, every_status_has_distinct_name_and_text) {
    static const struct { ts_status s; const char *name; int value; } all[] = {
#define TS_STATUS(name, value, text) {name, #name, value},
#include "tessera_status.def"
#undef TS_STATUS
    };
    size_t n = sizeof all / sizeof all[0];
    cr_assert_gt(n, 20);
    for (size_t i = 0; i < n; i++) {
        const char *nm = ts_status_name(all[i].s), *tx = ts_strerror(all[i].s);
        cr_assert_not_null(nm);
        cr_assert_not_null(tx);
        cr_expect_str_eq(nm, all[i].name);
        cr_expect_gt(strlen(tx), 0, "%s has an empty description", nm);
        cr_expect_eq((int)all[i].s, all[i].value);
        cr_expect(all[i].value <= 0, "%s is positive", nm);
        for (size_t j = 0; j < i; j++) {
            cr_expect_str_neq(nm, ts_status_name(all[j].s));
            cr_expect_neq(all[i].value, all[j].value, "%s and %s share a value", nm, all[j].name);
        }
    }
    cr_expect_eq(TS_OK, 0);
    cr_expect_str_eq(ts_status_name((ts_status)12345), "TS_UNKNOWN_STATUS");
    cr_expect_gt(strlen(ts_strerror((ts_status)-9999)), 0);
}

Test(status, dtype_names_round_trip) {
    for (int d = 0; d < TS_DTYPE_COUNT; d++) {
        const char *n = ts_dtype_name((ts_dtype)d);
        cr_assert_not_null(n);
        ts_dtype back;
        cr_expect_eq(ts_dtype_parse(n, &back), TS_OK);
        cr_expect_eq(back, (ts_dtype)d);
        cr_expect_gt(ts_dtype_size((ts_dtype)d), 0);
    }
    ts_dtype x;
    cr_expect_eq(ts_dtype_parse("f12", &x), TS_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(ts_last_error(), "'f12'") != NULL);
    cr_expect_null(ts_dtype_name(TS_DTYPE_COUNT));
    cr_expect_eq(ts_dtype_size(TS_DTYPE_COUNT), 0);
    cr_expect_eq(ts_dtype_size(TS_F16), 2);
    cr_expect_eq(ts_dtype_size(TS_BF16), 2);
    cr_expect_eq(ts_dtype_size(TS_I64), 8);
}

/* ---------------------------------------------------------------- hashes */

Test(hash, names_do_not_change_the_hash) {
    ts_kernel *a = build_copy("copy_a", "x", "N", NULL, 64, 0.0);
    ts_kernel *b = build_copy("copy_b", "input", "LEN", "expx", 64, 0.0);
    cr_expect_eq(ts_kernel_hash(a), ts_kernel_hash(b));
    cr_expect(ts_kernel_equal(a, b));
    cr_expect_neq(ts_kernel_hash(a), 0);
    ts_kernel_destroy(a);
    ts_kernel_destroy(b);
}

Test(hash, structure_changes_the_hash) {
    ts_kernel *base = build_copy("copy", "x", "N", NULL, 64, 0.0);
    ts_kernel *range = build_copy("copy", "x", "N", NULL, 128, 0.0); /* tunable range */
    ts_kernel *fill = build_copy("copy", "x", "N", NULL, 64, -1.0);  /* load fill */
    cr_expect_neq(ts_kernel_hash(base), ts_kernel_hash(range));
    cr_expect_neq(ts_kernel_hash(base), ts_kernel_hash(fill));
    cr_expect_not(ts_kernel_equal(base, range));
    /* rebuilding gives the same hash (deterministic) */
    ts_kernel *again = build_copy("copy", "x", "N", NULL, 64, 0.0);
    cr_expect_eq(ts_kernel_hash(base), ts_kernel_hash(again));
    ts_kernel_destroy(base);
    ts_kernel_destroy(range);
    ts_kernel_destroy(fill);
    ts_kernel_destroy(again);
}

Test(hash, dtype_and_op_change_the_hash) {
    ts_kernel *k[3];
    for (int v = 0; v < 3; v++) {
        ts_builder *b;
        cr_assert_eq(ts_builder_create("h", &b), TS_OK);
        ts_size N = ts_size_sym(b, "N");
        ts_dtype dt = v == 1 ? TS_F16 : TS_F32;
        ts_param x = ts_param_tensor(b, "x", dt, 1, &N);
        ts_param y = ts_param_tensor(b, "y", dt, 1, &N);
        ts_tile t = ts_grid_tile(b, "t", N, NULL);
        ts_val l = ts_load(b, x, &TS_AT(t), 0.0);
        ts_store(b, y, &TS_AT(t), ts_unary(b, v == 2 ? TS_SIN : TS_COS, l));
        cr_assert_eq(ts_builder_finish(b, &k[v]), TS_OK, "%s", ts_last_error());
        ts_builder_destroy(b);
    }
    cr_expect_neq(ts_kernel_hash(k[0]), ts_kernel_hash(k[1]));
    cr_expect_neq(ts_kernel_hash(k[0]), ts_kernel_hash(k[2]));
    cr_expect_neq(ts_kernel_hash(k[1]), ts_kernel_hash(k[2]));
    for (int v = 0; v < 3; v++) ts_kernel_destroy(k[v]);
}
