/* test_parse.c: the tile language (api/parse.c, docs/language.md).
 *
 * Sections: helpers; round trip parse(print(k)) == k for every example
 * kernel and dtype; examples/NAME.tile equal to the C-API kernels and
 * passing on the ref backend at every tested size; the error corpus
 * tests/parse_errors/NAME.tile (first line "# expect: L:C: text", second line
 * "# status: TS_ERR_..."); the sugar and what it lowers to; the error
 * format; API misuse; garbage input. */
#include <criterion/criterion.h>

#include "kernels.h"
#include "tessera.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static ts_kernel *parse_ok(const char *text) {
    ts_kernel *k = NULL;
    ts_status s = ts_kernel_parse(text, "test.tile", &k);
    cr_assert_eq(s, TS_OK, "parse failed (%s): %s\n--- text:\n%s", ts_status_name(s), ts_last_error(), text);
    cr_assert_not_null(k);
    return k;
}

/* Both texts parse, to equal kernels. */
static void expect_same_ir(const char *a, const char *b) {
    ts_kernel *ka = parse_ok(a), *kb = parse_ok(b);
    char *pa = ts_kernel_print(ka), *pb = ts_kernel_print(kb);
    cr_expect(ts_kernel_equal(ka, kb), "different IR:\n%s\nvs\n%s", pa, pb);
    cr_expect_eq(ts_kernel_hash(ka), ts_kernel_hash(kb));
    free(pa);
    free(pb);
    ts_kernel_destroy(ka);
    ts_kernel_destroy(kb);
}

/* Parsing fails with `want`; the message's first line holds `sub`. */
static void expect_parse_error(const char *text, ts_status want, const char *sub) {
    ts_kernel *k = (ts_kernel *)&k;
    ts_status s = ts_kernel_parse(text, "t.tile", &k);
    cr_expect_eq(s, want, "got %s (want %s): %s", ts_status_name(s), ts_status_name(want), ts_last_error());
    cr_expect_null(k, "a failed parse must leave *out NULL");
    cr_expect(strstr(ts_last_error(), sub) != NULL, "message '%s' lacks '%s'", ts_last_error(), sub);
}

static const char *const example_names[] = {"add", "exp", "gelu", "silu", "swiglu", "sum", "long_sum", "softmax", "softmax_online",
                                            "layer_norm", "rms_norm", "matmul", "matmul_bias_gelu", "bmm", "attention", "cross_entropy",
                                            "embedding", "transpose"};
#define NEXAMPLES ((int)(sizeof example_names / sizeof example_names[0]))

static ts_kernel *parse_tile_file(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/examples/%s.tile", TS_SOURCE_DIR, name);
    char *text = read_text(path);
    cr_assert_not_null(text, "cannot read %s", path);
    ts_kernel *k = NULL;
    ts_status s = ts_kernel_parse(text, path, &k);
    free(text);
    cr_assert_eq(s, TS_OK, "%s", ts_last_error());
    return k;
}

/* A kernel with x, y: f32[M, N], eps: f32, tm/tn grid tiles; `body` is the rest. */
#define KHEAD "kernel k(x: f32[M, N], y: f32[M, N], eps: f32) {\n  tunable BM = 4 in 1..64\n  grid tm in tile(M, BM), tn in tile(N)\n"

/* ---------------------------------------------------------------- round trip */

Test(parse, round_trip_every_example_and_dtype) {
    cr_assert_geq(ts_example_count(), NEXAMPLES); /* and the tile-language-only examples (examples/helion.list) */
    int checked = 0;
    for (int i = 0; i < ts_example_count(); i++) {
        const ts_example *ex = ts_example_get(i);
        for (int d = 0; d < ex->ndtypes; d++) {
            ts_kernel *k = NULL, *k2 = NULL;
            cr_assert_eq(ex->build(ex->dtypes[d], &k), TS_OK, "%s", ts_last_error());
            char *text = ts_kernel_print(k);
            cr_assert_not_null(text);
            ts_status s = ts_kernel_parse(text, ex->name, &k2);
            cr_expect_eq(s, TS_OK, "%s/%s: %s\n%s", ex->name, ts_dtype_name(ex->dtypes[d]), ts_last_error(), text);
            if (s == TS_OK) {
                cr_expect(ts_kernel_equal(k, k2), "%s/%s: parse(print(k)) != k\n%s", ex->name, ts_dtype_name(ex->dtypes[d]), text);
                cr_expect_eq(ts_kernel_hash(k), ts_kernel_hash(k2), "%s/%s: hashes differ", ex->name, ts_dtype_name(ex->dtypes[d]));
                char *text2 = ts_kernel_print(k2);
                cr_expect_str_eq(text2, text, "%s/%s: printing the parsed kernel gives other text", ex->name, ts_dtype_name(ex->dtypes[d]));
                free(text2);
                checked++;
            }
            free(text);
            ts_kernel_destroy(k);
            ts_kernel_destroy(k2);
        }
    }
    cr_expect_geq(checked, 40, "only %d kernels round-tripped", checked);
}

/* ---------------------------------------------------------------- examples/NAME.tile */

Test(parse, tile_files_equal_the_c_api_kernels) {
    for (int i = 0; i < NEXAMPLES; i++) {
        const ts_example *ex = ts_example_find(example_names[i]);
        cr_assert_not_null(ex, "no example '%s'", example_names[i]);
        ts_kernel *c = NULL, *t = parse_tile_file(example_names[i]);
        cr_assert_eq(ex->build(TS_F32, &c), TS_OK);
        char *pc = ts_kernel_print(c), *pt = ts_kernel_print(t);
        cr_expect(ts_kernel_equal(c, t), "examples/%s.tile differs from the C-API kernel:\n--- C API\n%s--- .tile\n%s", example_names[i], pc, pt);
        cr_expect_eq(ts_kernel_hash(c), ts_kernel_hash(t), "%s: hashes differ", example_names[i]);
        cr_expect_str_eq(ts_kernel_name(t), example_names[i]);
        free(pc);
        free(pt);
        ts_kernel_destroy(c);
        ts_kernel_destroy(t);
    }
}

Test(parse, tile_files_pass_on_ref_at_every_size, .timeout = 600) {
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create("ref", 0, &ctx), TS_OK, "%s", ts_last_error());
    ts_config *cfg = NULL;
    cr_assert_eq(ts_config_create(&cfg), TS_OK);
    int cases = 0;
    for (int i = 0; i < NEXAMPLES; i++) {
        const ts_example *ex = ts_example_find(example_names[i]);
        ts_kernel *k = parse_tile_file(example_names[i]);
        for (int si = 0; si < 6 && ex->sizes[si]; si++) {
            ts_ex_sizes sz;
            cr_assert_eq(ts_ex_parse_sizes(ex->sizes[si], &sz), TS_OK);
            ts_ex_result r;
            ts_status s = ts_ex_run_case(ctx, ex, k, TS_F32, &sz, cfg, 1, (uint64_t)(i * 31 + si + 1), &r);
            cr_expect_eq(s, TS_OK, "%s.tile at %s: %s (%s)", example_names[i], ex->sizes[si], r.message, ts_status_name(s));
            cr_expect_leq(r.max_err, 1.0, "%s.tile at %s: max error %g", example_names[i], ex->sizes[si], r.max_err);
            cases++;
        }
        ts_kernel_destroy(k);
    }
    cr_expect_geq(cases, 4 * NEXAMPLES);
    ts_config_destroy(cfg);
    ts_context_destroy(ctx);
}

/* ---------------------------------------------------------------- error corpus */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

Test(parse, error_corpus) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tests/parse_errors", TS_SOURCE_DIR);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".tile") == 0) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    cr_expect_geq(n, 25, "the corpus has only %d programs", n);
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *text = read_text(path);
        cr_assert_not_null(text, "cannot read %s", path);
        int line = 0, col = 0, off = 0;
        char status[64] = "";
        int ok = sscanf(text, "# expect: %d:%d: %n", &line, &col, &off) == 2 && off > 0;
        cr_expect(ok, "%s: first line must be '# expect: LINE:COL: message'", names[i]);
        const char *nl = strchr(text, '\n');
        if (!ok || !nl) {
            free(text);
            continue;
        }
        char want[512];
        snprintf(want, sizeof want, "%.*s", (int)(nl - (text + off)), text + off);
        cr_expect_eq(sscanf(nl + 1, "# status: %63s", status), 1, "%s: second line must be '# status: TS_ERR_...'", names[i]);

        ts_kernel *k = (ts_kernel *)&k;
        ts_status s = ts_kernel_parse(text, path, &k);
        const char *msg = ts_last_error();
        cr_expect_neq(s, TS_OK, "%s: parsed without error", names[i]);
        cr_expect_null(k, "%s: a failed parse must leave *out NULL", names[i]);
        cr_expect_str_eq(ts_status_name(s), status, "%s: status %s, expected %s (%s)", names[i], ts_status_name(s), status, msg);
        char prefix[1200];
        snprintf(prefix, sizeof prefix, "%s:%d:%d: error: ", path, line, col);
        cr_expect(strncmp(msg, prefix, strlen(prefix)) == 0, "%s: message does not start with '%s':\n%s", names[i], prefix, msg);
        const char *first_end = strchr(msg, '\n');
        size_t first_len = first_end ? (size_t)(first_end - msg) : strlen(msg);
        char first[2048];
        snprintf(first, sizeof first, "%.*s", (int)first_len, msg);
        cr_expect(strstr(first, want) != NULL, "%s: message '%s' lacks '%s'", names[i], first, want);
        /* then the source line and a caret under the column */
        int lines = 0;
        for (const char *p = msg; *p; p++) lines += *p == '\n';
        cr_expect_eq(lines, 2, "%s: expected message, source line, caret:\n%s", names[i], msg);
        const char *caret = strrchr(msg, '\n');
        if (caret) cr_expect_eq((int)strlen(caret + 1), col, "%s: caret not under column %d:\n%s", names[i], col, msg);
        free(text);
    }
    for (int i = 0; i < n; i++) free(names[i]);
}

/* ---------------------------------------------------------------- sugar */

Test(parse, nested_calls_lower_like_one_op_per_line) {
    expect_same_ir(KHEAD "  xv = load(x[tm, tn])\n  m = max(xv, axis=1, keepdim=true)\n  store(y[tm, tn], exp(sub(xv, m)))\n}\n",
                   KHEAD "  v0 = load(x[tm, tn])\n  v1 = max(v0, axis=1, keepdim=true)\n  v2 = sub(v0, v1)\n  v3 = exp(v2)\n  store(y[tm, tn], v3)\n}\n");
}

Test(parse, infix_operators_and_precedence) {
    /* a + b * c - d / a: mul and div bind tighter; left to right */
    expect_same_ir(KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], a + a * a - a / a)\n}\n",
                   KHEAD "  a = load(x[tm, tn])\n  t = mul(a, a)\n  u = add(a, t)\n  w = div(a, a)\n  r = sub(u, w)\n  store(y[tm, tn], r)\n}\n");
    /* parentheses */
    expect_same_ir(KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], (a + a) * a)\n}\n",
                   KHEAD "  a = load(x[tm, tn])\n  t = add(a, a)\n  r = mul(t, a)\n  store(y[tm, tn], r)\n}\n");
    /* comparisons bind looser than arithmetic, && looser than comparisons, || loosest */
    expect_same_ir(KHEAD "  a = load(x[tm, tn])\n  c = a < a + a || a >= a && a != a\n  store(y[tm, tn], where(c, a, a))\n}\n",
                   KHEAD "  a = load(x[tm, tn])\n  s = add(a, a)\n  l = lt(a, s)\n  g = ge(a, a)\n  n = ne(a, a)\n  d = and(g, n)\n"
                         "  c = or(l, d)\n  store(y[tm, tn], select(c, a, a))\n}\n");
    expect_same_ir(KHEAD "  a = load(x[tm, tn])\n  c = a <= a == (a > a)\n  store(y[tm, tn], where(c, a, a))\n}\n",
                   KHEAD "  a = load(x[tm, tn])\n  l = le(a, a)\n  g = gt(a, a)\n  c = eq(l, g)\n  store(y[tm, tn], select(c, a, a))\n}\n");
}

Test(parse, numbers_next_to_values_become_rank0_full) {
    expect_same_ir(KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], a * 2)\n}\n",
                   KHEAD "  a = load(x[tm, tn])\n  c = full(f32, [], 2)\n  store(y[tm, tn], mul(a, c))\n}\n");
    /* a number on the left is emitted after the right operand is computed */
    expect_same_ir(KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], 0.5 - exp(a))\n}\n",
                   KHEAD "  a = load(x[tm, tn])\n  e = exp(a)\n  c = full(f32, [], 0.5)\n  store(y[tm, tn], sub(c, e))\n}\n");
    /* the dtype comes from the other operand: i32 here */
    expect_same_ir("kernel k(i: i32[N], y: f32[N]) {\n  grid tn in tile(N)\n  b = load(i[tn]) == 3\n  store(y[tn], where(b, 1, load(y[tn])))\n}\n",
                   "kernel k(i: i32[N], y: f32[N]) {\n  grid tn in tile(N)\n  v = load(i[tn])\n  c = full(i32, [], 3)\n  b = eq(v, c)\n"
                   "  w = load(y[tn])\n  o = full(f32, [], 1)\n  store(y[tn], select(b, o, w))\n}\n");
    /* in binary calls, in yield, in store */
    expect_same_ir(KHEAD "  store(y[tm, tn], max(load(x[tm, tn]), 0))\n}\n",
                   KHEAD "  a = load(x[tm, tn])\n  z = full(f32, [], 0)\n  store(y[tm, tn], max(a, z))\n}\n");
    expect_same_ir(KHEAD "  store(y[tm, tn], 1)\n}\n", KHEAD "  store(y[tm, tn], full(f32, [], 1))\n}\n");
    /* -inf, 1e-5, -0 */
    expect_same_ir(KHEAD "  a = load(x[tm, tn], fill=-inf)\n  store(y[tm, tn], a * -2 + 1e-5)\n}\n",
                   KHEAD "  a = load(x[tm, tn], fill=-inf)\n  c = full(f32, [], -2)\n  m = mul(a, c)\n  store(y[tm, tn], add(m, full(f32, [], 1e-05)))\n}\n");
}

Test(parse, unary_minus) {
    expect_same_ir(KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], -a)\n}\n", KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], neg(a))\n}\n");
    expect_same_ir(KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], - -a)\n}\n",
                   KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], neg(neg(a)))\n}\n");
    /* -0 is negative zero: it is a different constant */
    ts_kernel *pz = parse_ok(KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], a + 0)\n}\n");
    ts_kernel *nz = parse_ok(KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], a + -0)\n}\n");
    cr_expect_not(ts_kernel_equal(pz, nz));
    char *t = ts_kernel_print(nz);
    cr_expect(strstr(t, "full(f32, [], -0)") != NULL, "%s", t);
    free(t);
    ts_kernel_destroy(pz);
    ts_kernel_destroy(nz);
}

Test(parse, where_zeros_scalar_and_negative_axis) {
    expect_same_ir(KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], where(a > 0, a, zeros(f32, [tm, 1])))\n}\n",
                   KHEAD "  a = load(x[tm, tn])\n  z = full(f32, [], 0)\n  c = gt(a, z)\n  w = full(f32, [tm, 1], 0)\n  store(y[tm, tn], select(c, a, w))\n}\n");
    expect_same_ir(KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], a * eps)\n}\n",
                   KHEAD "  a = load(x[tm, tn])\n  e = scalar(eps)\n  store(y[tm, tn], mul(a, e))\n}\n");
    expect_same_ir(KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], sum(a, axis=-1, keepdim=true))\n}\n",
                   KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], sum(a, axis=1, keepdim=true))\n}\n");
    expect_same_ir(KHEAD "  a = load(x[tm, tn])\n  s = sum(a, axis=1)\n  store(y[tm, tn], expand_dims(s, -1))\n}\n",
                   KHEAD "  a = load(x[tm, tn])\n  s = sum(a, axis=1)\n  store(y[tm, tn], expand_dims(s, 1))\n}\n");
}

Test(parse, comments_wrapping_and_one_line_blocks) {
    expect_same_ir(KHEAD "  # a comment line\n  a = load(x[tm, tn],   # a comment inside a call\n           fill=0)\n"
                         "  store(y[tm,\n          tn], a)  # trailing\n}\n",
                   KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], a)\n}\n");
    const char *loop_a = "kernel k(x: f32[M, N], y: f32[M]) {\n  tunable BN = 64 in 16..1024\n  grid tm in tile(M)\n"
                         "  s, t = for tn in tile(N, BN) carry (a = zeros(f32, [tm]), b = zeros(f32, [tm])) {\n"
                         "    v = sum(load(x[tm, tn]), axis=1)\n    yield a + v, b\n  }\n  store(y[tm], s + t)\n}\n";
    const char *loop_b = "kernel k(x: f32[M, N], y: f32[M]) {\n  tunable BN = 64 in 16..1024\n  grid tm in tile(M)\n"
                         "  z0 = full(f32, [tm], 0)\n  z1 = full(f32, [tm], 0)\n"
                         "  s, t = for tn in tile(N, BN) carry (a = z0, b = z1) {\n"
                         "    l = load(x[tm, tn])\n    v = sum(l, axis=1)\n    w = add(a, v)\n    yield (w, b)\n  }\n  store(y[tm], add(s, t))\n}\n";
    expect_same_ir(loop_a, loop_b);
    expect_same_ir("kernel k(x: f32[N], y: f32[N]) {\n  grid tn in tile(N)\n  for u in tile(N) { store(y[u], load(x[u])) }\n}\n",
                   "kernel k(x: f32[N], y: f32[N]) {\n  grid tn in tile(N)\n  for u in tile(N) {\n    store(y[u], load(x[u]))\n  }\n}\n");
}

Test(parse, rebinding_and_loop_scopes) {
    /* a name may be bound again; a loop's names end with the loop and the outer binding shows again */
    expect_same_ir("kernel k(x: f32[M, N], y: f32[M]) {\n  grid tm in tile(M)\n  a = full(f32, [tm], 1)\n"
                   "  s = for tn in tile(N) carry (c = a) {\n    a = sum(load(x[tm, tn]), axis=1)\n    a = a + c\n    yield a\n  }\n"
                   "  store(y[tm], s * a)\n}\n",
                   "kernel k(x: f32[M, N], y: f32[M]) {\n  grid tm in tile(M)\n  v0 = full(f32, [tm], 1)\n"
                   "  v5 = for tn in tile(N) carry (v1 = v0) {\n    v2 = load(x[tm, tn])\n    v3 = sum(v2, axis=1)\n    v4 = add(v3, v1)\n    yield v4\n  }\n"
                   "  store(y[tm], mul(v5, v0))\n}\n");
}

Test(parse, sizes_line_fixes_size_numbering) {
    const char *in_use_order = "kernel mm(A: f32[M, K], B: f32[K, N], C: f32[M, N]) {\n  grid tm in tile(M), tn in tile(N)\n"
                               "  c = for tk in tile(K) carry (acc = zeros(f32, [tm, tn])) {\n    yield dot(load(A[tm, tk]), load(B[tk, tn]), acc)\n  }\n"
                               "  store(C[tm, tn], c)\n}\n";
    char with_sizes[1024];
    snprintf(with_sizes, sizeof with_sizes, "kernel mm(A: f32[M, K], B: f32[K, N], C: f32[M, N]) {\n  sizes M, N, K\n%s",
             strstr(in_use_order, "  grid"));
    ts_kernel *a = parse_ok(in_use_order), *b = parse_ok(with_sizes);
    cr_expect_not(ts_kernel_equal(a, b), "the numbering of sizes is part of the IR");
    /* each prints back to itself */
    ts_kernel *ks[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        char *t = ts_kernel_print(ks[i]);
        ts_kernel *back = parse_ok(t);
        cr_expect(ts_kernel_equal(back, ks[i]), "%s", t);
        free(t);
        ts_kernel_destroy(back);
    }
    ts_kernel_destroy(a);
    ts_kernel_destroy(b);
    /* a value may be called "sizes" */
    ts_kernel_destroy(parse_ok(KHEAD "  sizes = load(x[tm, tn])\n  store(y[tm, tn], sizes)\n}\n"));
}

Test(parse, every_operation_parses) {
    const char *text =
        "kernel all_ops(x: f32[M, N], i: i32[M], t: f16[V, N], y: f32[M, N], z: f32[N, M], w: f32[M], c: i32[M], h: f16[M, N], "
        "b: f32[Q, M, N], s: f32) {\n"
        "  tunable BM = 16 in 1..64\n"
        "  tunable BK = 16 in 16..64\n"
        "  grid tq in points(Q), tm in tile(M, BM), tn in tile(N)\n"
        "  a = load(x[tm, tn], fill=nan)\n"
        "  ids = load(i[tm])\n"
        "  g = cast(gather(t, ids, tn, fill=-1.5), f32)\n"
        "  u = neg(abs(exp(log(sqrt(rsqrt(tanh(sigmoid(erf(relu(gelu(silu(sin(cos(a))))))))))))))\n"
        "  p = pow(max(a, g), min(a, u))\n"
        "  m = not(and(or(lt(a, p), le(a, p)), ne(gt(a, p), or(ge(a, p), eq(a, p)))))\n"
        "  sel = select(m, add(a, sub(a, mul(a, div(a, p)))), zeros(f32, [tm, 1]))\n"
        "  r = mean(sel, axis=1, keepdim=true) + min(sel, axis=1, keepdim=true)\n"
        "  am = argmax(sel, axis=1)\n"
        "  store(c[tm], am)\n"
        "  e = broadcast(expand_dims(sum(sel, axis=1), 1), [tm, tn])\n"
        "  store(y[tm, tn], e * r)\n"
        "  store(z[tn, tm], transpose(a))\n"
        "  store(h[tm, tn], cast(a, f16))\n"
        "  d = for tk in tile(N, BK) carry (acc = full(f32, [tm, tm], 0)) {\n"
        "    q = load(x[tm, tk])\n"
        "    yield dot(q, transpose(q), acc)\n"
        "  }\n"
        "  atomic_add(w[tm], sum(d, axis=1) + scalar(s) + s + cast(arange(tm), f32))\n"
        "  store(b[tq.begin, tm, tn], a)\n"
        "  store(x[tm, 0], sum(a, axis=1))\n"
        "}\n";
    ts_kernel *k = parse_ok(text);
    char *printed = ts_kernel_print(k);
    ts_kernel *k2 = parse_ok(printed);
    cr_expect(ts_kernel_equal(k, k2), "%s", printed);
    cr_expect(strstr(printed, "fill=nan") && strstr(printed, "fill=-1.5") && strstr(printed, "tq.begin") && strstr(printed, "x[tm, 0]"), "%s",
              printed);
    free(printed);
    ts_kernel_destroy(k);
    ts_kernel_destroy(k2);
}

Test(parse, names_are_kept_for_printing) {
    ts_kernel *k = parse_ok(KHEAD "  xv = load(x[tm, tn])\n  scaled = xv * eps\n  store(y[tm, tn], scaled)\n}\n");
    char *t = ts_kernel_print(k);
    cr_expect(strstr(t, "xv = load(x[tm, tn])") != NULL, "%s", t);
    cr_expect(strstr(t, "scaled = mul(xv, ") != NULL, "%s", t);
    cr_expect(strstr(t, "store(y[tm, tn], scaled)") != NULL, "%s", t);
    free(t);
    ts_kernel_destroy(k);
}

Test(parse, contextual_keywords) {
    /* op and keyword names are only keywords where the grammar expects them */
    ts_kernel_destroy(parse_ok("kernel exp(tile: f32[N], carry: f32[N]) {\n  tunable points = 64 in 16..128\n  grid in in tile(N, points)\n"
                               "  exp = exp(load(tile[in]))\n  load = exp + exp\n  store(carry[in], load)\n}\n"));
}

/* ---------------------------------------------------------------- error format and API */

Test(parse, error_format_keeps_tabs_under_the_caret) {
    ts_kernel *k = NULL;
    ts_status s = ts_kernel_parse("kernel k(x: f32[N], y: f32[N]) {\n\tgrid tn in tile(N)\n\tstore(y[tn], foo)\n}\n", "tabs.tile", &k);
    cr_expect_eq(s, TS_ERR_PARSE);
    cr_expect_str_eq(ts_last_error(), "tabs.tile:3:15: error: unknown name 'foo'\n\tstore(y[tn], foo)\n\t             ^");
}

Test(parse, builder_status_and_message_come_through) {
    expect_parse_error(KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], dot(a, a))\n}\n", TS_ERR_SHAPE_MISMATCH, "t.tile:5:20: error: dot: inner dims");
    expect_parse_error(KHEAD "  a = load(x[tm, tn])\n  store(y[tm, tn], exp(cast(a, i32)))\n}\n", TS_ERR_DTYPE_MISMATCH, "t.tile:5:20: error: exp:");
    /* no grid: found at finish, reported at the kernel's name */
    expect_parse_error("kernel nogrid(x: f32[N]) {\n}\n", TS_ERR_INVALID_KERNEL, "t.tile:1:8: error: no grid tile");
}

Test(parse, api_misuse) {
    ts_kernel *k = (ts_kernel *)&k;
    cr_expect_eq(ts_kernel_parse(NULL, "f", &k), TS_ERR_INVALID_ARGUMENT);
    cr_expect_null(k);
    cr_expect_eq(ts_kernel_parse("kernel k() {}", "f", NULL), TS_ERR_INVALID_ARGUMENT);
    k = (ts_kernel *)&k;
    cr_expect_eq(ts_kernel_parse("", NULL, &k), TS_ERR_PARSE);
    cr_expect_null(k);
    cr_expect(strncmp(ts_last_error(), "<input>:1:1: error: expected 'kernel'", 37) == 0, "%s", ts_last_error());
}

Test(parse, more_errors) {
    expect_parse_error(KHEAD "  a, b = load(x[tm, tn])\n}\n", TS_ERR_PARSE, "only a loop gives several values");
    expect_parse_error(KHEAD "  a = load(x[tm, tn])\n  a = exp(a, a)\n}\n", TS_ERR_PARSE, "expected ')' to close exp(...)");
    expect_parse_error(KHEAD "  store(y[tm, tn], max(load(x[tm, tn]), axis=1, axis=0))\n}\n", TS_ERR_PARSE, "axis= given twice");
    expect_parse_error(KHEAD "  store(y[tm, tn], load(x[tm, tn], axis=1))\n}\n", TS_ERR_PARSE, "load(...) takes no axis= argument");
    expect_parse_error(KHEAD "  store(y[tm, tn], exp(2))\n}\n", TS_ERR_PARSE, "exp needs a tile value here, not a number");
    expect_parse_error(KHEAD "  store(y[tm, tn], where(eps > 0, 1, 2))\n}\n", TS_ERR_PARSE, "both branches of where are numbers");
    expect_parse_error(KHEAD "  store(y[tm, tn], load(x[tm, tn.last]))\n}\n", TS_ERR_PARSE, "a tile has .begin, .end and .id, not 'last'");
    expect_parse_error(KHEAD "  store(y[tm, tn], tm)\n}\n", TS_ERR_PARSE, "'tm' is a tile, not a value");
    expect_parse_error(KHEAD "  store(y[tm, tn], BM)\n}\n", TS_ERR_PARSE, "'BM' is a tunable, not a value");
    expect_parse_error(KHEAD "  store(y[tm, tn], load(x[tm, tn * 2]))\n}\n", TS_ERR_PARSE, "expected ',' or ']' in the index list, found '*'");
    expect_parse_error(KHEAD "  store(y[tm, tn], store(y[tm, tn], 1))\n}\n", TS_ERR_PARSE, "store(...) is a statement");
    expect_parse_error(KHEAD "  for tk in tile(N) {\n  }\n  s = for tj in tile(N) {\n  }\n}\n", TS_ERR_PARSE, "carries no values");
    expect_parse_error(KHEAD "  a = load(x[tm, tn]) b\n}\n", TS_ERR_PARSE, "expected the end of the line, found 'b'");
    expect_parse_error(KHEAD "  tm = load(x[tm, tn])\n}\n", TS_ERR_PARSE, "'tm' is already a tile");
    expect_parse_error(KHEAD "  store(y[tm, tn], load(x[tm, tn]) & 1)\n}\n", TS_ERR_PARSE, "unexpected character '&' (use &&)");
    expect_parse_error(KHEAD "  store(y[tm, tn], load(x[tm, tx]))\n}\n", TS_ERR_PARSE, "unknown name 'tx'");
    expect_parse_error(KHEAD "  store(q[tm, tn], 1)\n}\n", TS_ERR_PARSE, "unknown tensor 'q'");
    expect_parse_error("kernel k(x: f32[M, N, M, N, M], y: f32[N]) {\n  grid tn in tile(N)\n  store(y[tn], 1)\n}\n", TS_ERR_RANK, "rank 5");
    expect_parse_error("kernel k(y: f32[N]) {\n  grid tn in tile(N, B)\n  store(y[tn], 1)\n}\n", TS_ERR_UNKNOWN_TUNABLE, "t.tile:2:22:");
    char deep[4096] = KHEAD "  a = load(x[tm, tn])\n  b = ";
    for (int i = 0; i < 100; i++) strcat(deep, "-");
    strcat(deep, "a\n  store(y[tm, tn], b)\n}\n");
    expect_parse_error(deep, TS_ERR_PARSE, "nested too deeply");
    /* loops nest at most 32 deep (the builder's limit) */
    char nest[8192] = "kernel k(x: f32[N], y: f32[N]) {\n  grid tn in tile(N)\n";
    for (int i = 0; i < 40; i++) snprintf(nest + strlen(nest), sizeof nest - strlen(nest), "for t%d in tile(N) {\n", i);
    for (int i = 0; i < 40; i++) strcat(nest, "}\n");
    strcat(nest, "store(y[tn], load(x[tn]))\n}\n");
    expect_parse_error(nest, TS_ERR_LIMIT, "nests deeper than 32");
}

/* ---------------------------------------------------------------- garbage in */

static uint64_t rng(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

Test(parse, mutated_examples_never_crash, .timeout = 120) {
    uint64_t seed = 0x1234567;
    int parsed = 0, failed = 0;
    static const char *const pieces[] = {"(", ")", "[", "]", "{", "}", ",", "=", "..", ".", "-", "*", "&&", "\n", "for ", "yield ", "carry (",
                                         "inf", "1e999", "99999999999999999999", "x", "tm", "#", "\t", "sizes ", "load(", "full(f32, [", "0"};
    for (int i = 0; i < ts_example_count(); i++) { /* every example has examples/NAME.tile */
        char path[512];
        snprintf(path, sizeof path, "%s/examples/%s.tile", TS_SOURCE_DIR, ts_example_get(i)->name);
        char *orig = read_text(path);
        cr_assert_not_null(orig);
        size_t n = strlen(orig);
        char *buf = malloc(n + 64);
        for (int m = 0; m < 150; m++) {
            memcpy(buf, orig, n + 1);
            size_t len = n;
            int edits = 1 + (int)(rng(&seed) % 3);
            for (int e = 0; e < edits && len > 0; e++) {
                size_t at = rng(&seed) % len;
                switch (rng(&seed) % 4) {
                case 0: buf[at] = (char)(rng(&seed) % 256 ? rng(&seed) % 256 : 1); break; /* replace a byte */
                case 1: memmove(buf + at, buf + at + 1, len - at); len--; break; /* delete a byte */
                case 2: len = at; buf[len] = 0; break;                          /* truncate */
                default: {                                                       /* insert a piece */
                    const char *pc = pieces[rng(&seed) % (sizeof pieces / sizeof pieces[0])];
                    size_t pl = strlen(pc);
                    if (len + pl + 1 > n + 63) break;
                    memmove(buf + at + pl, buf + at, len - at + 1);
                    memcpy(buf + at, pc, pl);
                    len += pl;
                }
                }
            }
            ts_kernel *k = NULL;
            ts_status s = ts_kernel_parse(buf, "mut.tile", &k);
            if (s == TS_OK) {
                parsed++;
                cr_assert_not_null(k);
                char *t = ts_kernel_print(k);
                ts_kernel *k2 = NULL;
                cr_expect_eq(ts_kernel_parse(t, "printed", &k2), TS_OK, "%s\n%s", ts_last_error(), t);
                cr_expect(ts_kernel_equal(k, k2), "round trip of a mutated kernel:\n%s", t);
                free(t);
                ts_kernel_destroy(k2);
            } else {
                failed++;
                cr_expect_null(k);
                cr_expect(strstr(ts_last_error(), "mut.tile:") == ts_last_error(), "%s", ts_last_error());
            }
            ts_kernel_destroy(k);
        }
        free(buf);
        free(orig);
    }
    cr_expect_gt(failed, 0);
    cr_log_info("mutations: %d parsed, %d rejected", parsed, failed);
}
