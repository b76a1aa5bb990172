/* test_conformance.c: the conformance suite and out-of-tree backend plugins.
 *
 * Sections:
 *   helpers      running the CLI with an environment, reading the reports
 *                (jansson for JSON; a python3 checker of the JUnit structure,
 *                skipped when python3 is missing)
 *   suite        quick level on ref, on opencl (when available and allowed by
 *                TESSERA_TEST_BACKENDS), case listing and filters
 *   statuses     a backend whose caps rule things out (not-supported), a
 *                kernel that does not build (escaping in both reports)
 *   plugins      hostsim loads through TESSERA_BACKEND_PATH and passes; the
 *                faulty plugin's wrong rounding, dropped edge tile, crash and
 *                hang are caught while the other cases still run; interface
 *                versions 0 and too new are refused with TS_ERR_VERSION
 *
 * The plugins are built by examples/plugin/plugin.cmake into
 * TS_BINARY_DIR/plugins; the CLI is $TESSERA_TEST_CLI. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tessera.h"
#include "tessera_backend.h"
#include "tessera_conformance.h"
#include "ts_internal.h"

#ifndef TS_BINARY_DIR
#define TS_BINARY_DIR "."
#endif

/* ---------------------------------------------------------------- helpers */

static const char *cli_or_skip(void) {
    static char path[4096];
    const char *c = getenv("TESSERA_TEST_CLI");
    snprintf(path, sizeof path, "%s", c && *c ? c : TS_BINARY_DIR "/tessera");
    if (access(path, X_OK) != 0) cr_skip_test("the tessera CLI is not at %s (set TESSERA_TEST_CLI)", path);
    return path;
}

static const char *plugin_dir_or_skip(void) {
    static const char *dir = TS_BINARY_DIR "/plugins";
    if (access(TS_BINARY_DIR "/plugins/libtessera-backend-hostsim.so", R_OK) != 0 ||
        access(TS_BINARY_DIR "/plugins/libtessera-backend-faulty.so", R_OK) != 0)
        cr_skip_test("the example plugins are not built in %s (examples/plugin/plugin.cmake)", dir);
    return dir;
}

static char *tmp_dir(void) {
    char *d = strdup("/tmp/ts-conformance-XXXXXX");
    cr_assert_not_null(mkdtemp(d));
    return d;
}

static char *path_in(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

/* Runs the CLI with `args` (NULL-terminated) and extra environment
 * assignments "K=V" (an empty value unsets K). stdout and stderr go to files.
 * Returns the exit status (or 128 + signal). */
static int run_cli(const char *const *env, const char *const *args, const char *out, const char *err) {
    const char *cli = cli_or_skip();
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        for (int i = 0; env && env[i]; i++) {
            char kv[4096];
            snprintf(kv, sizeof kv, "%s", env[i]);
            char *eq = strchr(kv, '=');
            if (!eq) continue;
            *eq = 0;
            if (eq[1]) setenv(kv, eq + 1, 1);
            else unsetenv(kv);
        }
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0) _exit(126);
        dup2(fo, 1);
        dup2(fe, 2);
        const char *argv[64];
        int n = 0;
        argv[n++] = cli;
        for (int i = 0; args[i] && n < 63; i++) argv[n++] = args[i];
        argv[n] = NULL;
        execv(cli, (char *const *)argv);
        _exit(127);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static char *slurp(const char *path) {
    char *text = NULL;
    size_t n = 0;
    if (ts__read_file(path, 1 << 26, &text, &n) != TS_OK) return strdup("");
    return text;
}

/* The last non-empty line of a file (static buffer). */
static const char *last_line(const char *path) {
    static char line[1024];
    char *t = slurp(path);
    size_t n = strlen(t);
    while (n && (t[n - 1] == '\n' || t[n - 1] == '\r')) t[--n] = 0;
    char *nl = strrchr(t, '\n');
    snprintf(line, sizeof line, "%s", nl ? nl + 1 : t);
    free(t);
    return line;
}

static const char *statuses[] = {"pass", "fail", "not-supported", "compile-error", "crash", "timeout"};

/* Loads the JSON report and checks its structure: every field, every case,
 * the counts against the cases. Caller json_decref()s. */
static json_t *load_report(const char *path) {
    json_error_t e;
    json_t *root = json_load_file(path, 0, &e);
    cr_assert_not_null(root, "%s: %s (line %d)", path, e.text, e.line);
    cr_assert(json_is_object(root));
    cr_expect_str_eq(json_string_value(json_object_get(root, "format")), "tessera-conformance");
    cr_expect_eq(json_integer_value(json_object_get(root, "format_version")), 1);
    const char *strs[] = {"tessera_version", "backend", "device", "fingerprint", "level", "started", "summary"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) cr_expect(json_is_string(json_object_get(root, strs[i])), "field %s", strs[i]);
    cr_expect(json_is_number(json_object_get(root, "seconds")));
    cr_expect(json_is_boolean(json_object_get(root, "ok")));
    json_t *counts = json_object_get(root, "counts"), *cases = json_object_get(root, "cases");
    cr_assert(json_is_object(counts) && json_is_array(cases));
    long tally[6] = {0}, sum = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *cstrs[] = {"id", "kernel", "group", "dtype", "shape_class", "sizes", "config", "status", "message"};
        for (size_t f = 0; f < sizeof cstrs / sizeof cstrs[0]; f++) cr_assert(json_is_string(json_object_get(c, cstrs[f])), "case %zu field %s", i, cstrs[f]);
        const char *st = json_string_value(json_object_get(c, "status"));
        int k = -1;
        for (int s = 0; s < 6; s++)
            if (strcmp(st, statuses[s]) == 0) k = s;
        cr_assert(k >= 0, "case %zu has status '%s'", i, st);
        tally[k]++;
        cr_expect(json_is_number(json_object_get(c, "wall_ms")));
        /* id = kernel/dtype/shape/config-name */
        const char *id = json_string_value(json_object_get(c, "id"));
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%s/%s/%s/", json_string_value(json_object_get(c, "kernel")), json_string_value(json_object_get(c, "dtype")),
                 json_string_value(json_object_get(c, "shape_class")));
        cr_expect(strncmp(id, prefix, strlen(prefix)) == 0, "id %s vs %s", id, prefix);
        if (k == 1 && json_object_get(c, "worst")) {
            json_t *w = json_object_get(c, "worst");
            cr_expect(json_is_string(json_object_get(w, "param")));
            cr_expect(json_is_integer(json_object_get(w, "index")));
            cr_expect(json_object_get(w, "expected") && json_object_get(w, "got"));
        }
        if (k != 0) cr_expect(strlen(json_string_value(json_object_get(c, "message"))) > 0, "%s: a %s needs a reason", id, st);
    }
    for (int s = 0; s < 6; s++) {
        cr_expect_eq(json_integer_value(json_object_get(counts, statuses[s])), tally[s], "count of %s", statuses[s]);
        sum += tally[s];
    }
    cr_expect_eq(json_integer_value(json_object_get(counts, "total")), sum);
    cr_expect_eq((long)json_array_size(cases), sum);
    cr_expect_eq(json_is_true(json_object_get(root, "ok")), tally[1] + tally[3] + tally[4] + tally[5] == 0);
    return root;
}

static long count_of(json_t *root, const char *status) { return (long)json_integer_value(json_object_get(json_object_get(root, "counts"), status)); }

static const char *status_of(json_t *root, const char *id) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), i, c) if (strcmp(json_string_value(json_object_get(c, "id")), id) == 0) return json_string_value(json_object_get(c, "status"));
    return NULL;
}

/* Structure of a JUnit file, as the Ant/Jenkins schema has it: testsuites >
 * testsuite (name, tests, failures, errors, skipped, time, timestamp,
 * hostname, id, package) > properties?, testcase (name, classname, time) with
 * at most one failure/error/skipped, system-out, system-err; the counts add up. */
static const char *junit_checker =
    "import sys, xml.etree.ElementTree as ET\n"
    "root = ET.parse(sys.argv[1]).getroot()\n"
    "assert root.tag == 'testsuites', root.tag\n"
    "tot = {'tests': 0, 'failures': 0, 'errors': 0, 'skipped': 0}\n"
    "suites = list(root)\n"
    "assert all(s.tag == 'testsuite' for s in suites)\n"
    "for s in suites:\n"
    "    for a in ('name', 'tests', 'failures', 'errors', 'skipped', 'time', 'timestamp', 'hostname', 'id', 'package'):\n"
    "        assert a in s.attrib, (s.attrib, a)\n"
    "    kids = [k.tag for k in s]\n"
    "    assert kids[-2:] == ['system-out', 'system-err'], kids[-2:]\n"
    "    assert kids[0] in ('properties', 'testcase', 'system-out'), kids[0]\n"
    "    n = {'tests': 0, 'failures': 0, 'errors': 0, 'skipped': 0}\n"
    "    for tc in s.iter('testcase'):\n"
    "        assert 'name' in tc.attrib and 'classname' in tc.attrib and 'time' in tc.attrib\n"
    "        float(tc.attrib['time'])\n"
    "        outcome = [k.tag for k in tc]\n"
    "        assert len(outcome) <= 1 and all(o in ('failure', 'error', 'skipped') for o in outcome), outcome\n"
    "        for k in tc:\n"
    "            assert 'message' in k.attrib\n"
    "            if k.tag != 'skipped': assert 'type' in k.attrib\n"
    "        n['tests'] += 1\n"
    "        for o, key in (('failure', 'failures'), ('error', 'errors'), ('skipped', 'skipped')):\n"
    "            n[key] += outcome.count(o)\n"
    "    for key in n:\n"
    "        assert int(s.attrib[key]) == n[key], (s.attrib['name'], key, s.attrib[key], n[key])\n"
    "        tot[key] += n[key]\n"
    "for key in tot:\n"
    "    assert int(root.attrib[key]) == tot[key], (key, root.attrib[key], tot[key])\n"
    "if len(sys.argv) > 2:\n"
    "    want = sys.argv[2]\n"
    "    assert any(want in (k.attrib.get('message', '') + (k.text or '')) for k in root.iter() if k.tag in ('failure', 'error')), want\n"
    "print('junit ok', tot)\n";

static int have_python3(void) { return system("python3 -c 'import xml.etree.ElementTree' >/dev/null 2>&1") == 0; }

static void check_junit(const char *dir, const char *xml, const char *must_contain) {
    char *t = slurp(xml);
    cr_assert(strncmp(t, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38) == 0, "JUnit file %s does not start with an XML declaration", xml);
    cr_expect(strstr(t, "<testsuites") && strstr(t, "</testsuites>"));
    free(t);
    /* the schema: tests/junit.xsd (Jenkins' junit-10 layout) through xmllint */
    if (system("command -v xmllint >/dev/null 2>&1") == 0) {
        char vcmd[8192];
        snprintf(vcmd, sizeof vcmd, "xmllint --noout --schema '%s/tests/junit.xsd' '%s' > '%s/xmllint.out' 2>&1", TS_SOURCE_DIR, xml, dir);
        int vrc = system(vcmd);
        char *vout_path = path_in(dir, "xmllint.out");
        char *vout = slurp(vout_path);
        cr_expect_eq(vrc, 0, "JUnit file %s does not validate against tests/junit.xsd: %s", xml, vout);
        free(vout);
        free(vout_path);
    } else cr_log_warn("xmllint not available: JUnit schema validation skipped");
    if (!have_python3()) {
        cr_log_warn("python3 not available: JUnit structure check skipped");
        return;
    }
    char *py = path_in(dir, "junit_check.py");
    FILE *f = fopen(py, "w");
    cr_assert_not_null(f);
    fputs(junit_checker, f);
    fclose(f);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "python3 '%s' '%s' %s%s%s > '%s/junit_check.out' 2>&1", py, xml, must_contain ? "'" : "", must_contain ? must_contain : "",
             must_contain ? "'" : "", dir);
    int rc = system(cmd);
    char *outp = path_in(dir, "junit_check.out");
    char *out = slurp(outp);
    cr_expect_eq(rc, 0, "JUnit check of %s failed: %s", xml, out);
    free(out);
    free(outp);
    free(py);
}

/* The summary line: "conformance: N passed, N failed, N not-supported, N compile-error, N crash, N timeout". */
static void check_summary(const char *line, json_t *root) {
    long n[6];
    int got = sscanf(line, "conformance: %ld passed, %ld failed, %ld not-supported, %ld compile-error, %ld crash, %ld timeout", &n[0], &n[1], &n[2],
                     &n[3], &n[4], &n[5]);
    cr_assert_eq(got, 6, "summary line: '%s'", line);
    for (int s = 0; s < 6 && root; s++) cr_expect_eq(n[s], count_of(root, statuses[s]), "summary %s", statuses[s]);
}

/* Runs `tessera conformance` with env and args; checks both reports and the
 * summary line; returns the exit status and the parsed JSON report. */
static int conformance(const char *const *env, const char *const *args, json_t **report, const char *junit_must_contain) {
    char *dir = tmp_dir();
    char *json = path_in(dir, "report.json"), *xml = path_in(dir, "report.xml"), *out = path_in(dir, "out.txt"), *err = path_in(dir, "err.txt");
    const char *argv[48];
    int n = 0;
    argv[n++] = "conformance";
    for (int i = 0; args[i] && n < 40; i++) argv[n++] = args[i];
    argv[n++] = "--json";
    argv[n++] = json;
    argv[n++] = "--junit";
    argv[n++] = xml;
    argv[n++] = "--quiet";
    argv[n] = NULL;
    int rc = run_cli(env, argv, out, err);
    if (rc != 0 && rc != 1) {
        char *e = slurp(err);
        cr_assert_fail("tessera conformance exited with %d: %s", rc, e);
    }
    *report = load_report(json);
    check_summary(last_line(out), *report);
    check_junit(dir, xml, junit_must_contain);
    free(json), free(xml), free(out), free(err), free(dir);
    return rc;
}

/* ---------------------------------------------------------------- suite */

Test(suite, quick_passes_on_ref, .timeout = 300) {
    json_t *r;
    int rc = conformance(NULL, (const char *[]){"--backend", "ref", "--level", "quick", NULL}, &r, NULL);
    cr_expect_eq(rc, 0);
    cr_expect_str_eq(json_string_value(json_object_get(r, "backend")), "ref");
    cr_expect_str_eq(json_string_value(json_object_get(r, "level")), "quick");
    cr_expect_gt(count_of(r, "pass"), 500, "the quick level has hundreds of cases");
    cr_expect_eq(count_of(r, "fail") + count_of(r, "crash") + count_of(r, "timeout") + count_of(r, "compile-error"), 0);
    /* every shape class and group shows up */
    const char *want[] = {"op.unary.exp/f32/tiny/default", "op.unary.exp/f32/odd/default", "op.unary.exp/f32/nonmult/default",
                          "op.binary.add/f32/bcast/default", "op.layout.copy/f32/strided/default", "op.layout.copy/f32/transposed/default",
                          "op.reduce.sum_rows/f32/empty/default", "op.dot.nn/f16/odd/default", "op.cast.f32_to_f16/f32/nonmult/default",
                          "op.gather.rows/f32/odd/default", "op.atomic.colsum/f32/odd/default", "op.mask.tril/f32/odd/default",
                          "example.matmul/f32/typical/tmax", "example.matmul/f32/typical/tmin", "example.attention/f32/odd/default"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) cr_expect_str_eq(status_of(r, want[i]) ? status_of(r, want[i]) : "(missing)", "pass", "%s", want[i]);
    json_decref(r);
}

Test(suite, quick_passes_on_opencl, .timeout = 600) {
    const char *only = getenv("TESSERA_TEST_BACKENDS");
    if (only && !strstr(only, "opencl")) cr_skip_test("TESSERA_TEST_BACKENDS=%s excludes opencl", only);
    const char *why = NULL;
    if (!ts_backend_available("opencl", &why)) cr_skip_test("opencl backend not available: %s", why ? why : "?");
    json_t *r;
    int rc = conformance(NULL, (const char *[]){"--backend", "opencl", NULL}, &r, NULL);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(r, "cases"), i, c) {
        const char *st = json_string_value(json_object_get(c, "status"));
        cr_expect(strcmp(st, "pass") == 0 || strcmp(st, "not-supported") == 0, "%s: %s: %s", json_string_value(json_object_get(c, "id")), st,
                  json_string_value(json_object_get(c, "message")));
    }
    cr_expect_eq(rc, 0);
    cr_expect_str_eq(json_string_value(json_object_get(r, "backend")), "opencl");
    json_decref(r);
}

static void collect(const char *id, void *user) {
    json_t *arr = user;
    json_array_append_new(arr, json_string(id));
}

Test(suite, levels_and_filters) {
    ts_conformance_options o = TS_CONFORMANCE_OPTIONS_INIT;
    int quick = ts_conformance_list(&o, NULL, NULL);
    o.level = TS_CONFORMANCE_FULL;
    int full = ts_conformance_list(&o, NULL, NULL);
    cr_expect_gt(quick, 300);
    cr_expect_gt(full, 3 * quick, "full has every dtype, shape class and config");
    json_t *ids = json_array();
    o.filter = "op.unary.exp/f32/*,!*/special/*";
    int n = ts_conformance_list(&o, collect, ids);
    cr_expect_gt(n, 10);
    size_t i;
    json_t *v;
    int saw_min = 0, saw_max = 0;
    json_array_foreach(ids, i, v) {
        const char *id = json_string_value(v);
        cr_expect(strncmp(id, "op.unary.exp/f32/", 17) == 0, "%s", id);
        cr_expect(!strstr(id, "/special/"), "%s", id);
        saw_min |= strstr(id, "/min") != NULL;
        saw_max |= strstr(id, "/max") != NULL;
    }
    cr_expect(saw_min && saw_max, "full has every knob at its minimum and at its maximum");
    json_decref(ids);
    o.filter = "op.dot.*"; /* no '/': matches kernel names */
    o.level = TS_CONFORMANCE_QUICK;
    cr_expect_gt(ts_conformance_list(&o, NULL, NULL), 5);
    o.filter = "no.such.kernel";
    cr_expect_eq(ts_conformance_list(&o, NULL, NULL), 0);
    ts_conformance_level lv;
    cr_expect_eq(ts_conformance_level_parse("full", &lv), TS_OK);
    cr_expect_eq(lv, TS_CONFORMANCE_FULL);
    cr_expect_eq(ts_conformance_level_parse("fast", &lv), TS_ERR_INVALID_ARGUMENT);
    cr_expect_str_eq(ts_conformance_status_name(TS_CONFORMANCE_NOT_SUPPORTED), "not-supported");
    cr_expect_str_eq(ts_conformance_status_name(TS_CONFORMANCE_COMPILE_ERROR), "compile-error");
}

/* ---------------------------------------------------------------- statuses */

/* A small host backend whose caps rule out f64 storage, f32 atomics and
 * groups above 64 work-items. */
static ts_status sm_init(void **s) { return *s = NULL, TS_OK; }
static int sm_count(void *s) { return (void)s, 1; }
static ts_status sm_open(void *st, int i, ts_device_caps *caps, ts_fingerprint *fp, void **dev) {
    (void)st, (void)i;
    caps->max_group_size = 64;
    caps->shared_mem_bytes = 16384;
    caps->compute_units = 1;
    caps->global_mem_bytes = INT64_C(1) << 30;
    caps->dtype_mask = ((1u << TS_DTYPE_COUNT) - 1) & ~(1u << TS_F64);
    caps->native_dtype_mask = caps->dtype_mask;
    caps->has_atomics_f32 = 0;
    snprintf(fp->vendor, sizeof fp->vendor, "test");
    snprintf(fp->device, sizeof fp->device, "small");
    snprintf(fp->arch, sizeof fp->arch, "small");
    snprintf(fp->driver, sizeof fp->driver, "1");
    *dev = (void *)1;
    return TS_OK;
}
static void sm_close(void *d) { (void)d; }
static ts_status sm_alloc(void *d, size_t n, void **b) { return (void)d, (*b = calloc(1, n ? n : 1)) ? TS_OK : TS_ERR_OUT_OF_MEMORY; }
static void sm_free(void *d, void *b) { (void)d, free(b); }
static ts_status sm_write(void *d, void *b, size_t o, const void *s, size_t n) { return (void)d, memcpy((char *)b + o, s, n), TS_OK; }
static ts_status sm_read(void *d, void *b, size_t o, void *s, size_t n) { return (void)d, memcpy(s, (char *)b + o, n), TS_OK; }
static ts_status sm_compile(void *d, const ts_compile_request *r, void **m) { return (void)d, (void)r, *m = (void *)1, TS_OK; }
static void sm_mfree(void *d, void *m) { (void)d, (void)m; }
static ts_status sm_launch(void *d, void *m, const ts_launch_request *r, double *ms) {
    (void)d, (void)m;
    if (ms) *ms = 0;
    return ts_backend_run_reference(r);
}
static ts_status sm_sync(void *d) { return (void)d, TS_OK; }
static const ts_backend small_backend = {
    .version = TS_BACKEND_VERSION, .name = "small", .dialect = TS_DIALECT_NONE, .init = sm_init, .device_count = sm_count,
    .device_open = sm_open, .device_close = sm_close, .buffer_alloc = sm_alloc, .buffer_free = sm_free, .buffer_write = sm_write,
    .buffer_read = sm_read, .compile = sm_compile, .module_free = sm_mfree, .launch = sm_launch, .synchronize = sm_sync,
};

static void count_results(const ts_conformance_result *r, void *user) { (void)r, ++*(int *)user; }

Test(statuses, caps_rule_out_cases_as_not_supported, .timeout = 120) {
    cr_assert_eq(ts_backend_register(&small_backend), TS_OK, "%s", ts_last_error());
    ts_conformance_options o = TS_CONFORMANCE_OPTIONS_INIT;
    int seen = 0;
    o.backend = "small";
    o.level = TS_CONFORMANCE_FULL;
    o.filter = "op.layout.copy/*/odd/*,op.atomic.colsum/*/odd/*";
    o.on_result = count_results;
    o.user = &seen;
    ts_conformance_report *rep;
    cr_assert_eq(ts_conformance_run(&o, &rep), TS_OK, "%s", ts_last_error());
    cr_expect_eq(seen, ts_conformance_report_count(rep), "on_result is called once per case");
    cr_expect_str_eq(ts_conformance_report_backend(rep), "small");
    int ns = 0;
    for (int i = 0; i < ts_conformance_report_count(rep); i++) {
        const ts_conformance_result *r = ts_conformance_report_result(rep, i);
        int f64 = strcmp(r->dtype, "f64") == 0;
        int atomic_f32 = strstr(r->id, "atomic") && strcmp(r->dtype, "f32") == 0;
        int big_group = strstr(r->config, "threads=1024") != NULL;
        if (f64 || atomic_f32 || big_group) {
            cr_expect_eq(r->status, TS_CONFORMANCE_NOT_SUPPORTED, "%s: %s %s", r->id, ts_conformance_status_name(r->status), r->message);
            ns++;
        } else cr_expect_eq(r->status, TS_CONFORMANCE_PASS, "%s: %s %s", r->id, ts_conformance_status_name(r->status), r->message);
        if (f64) cr_expect(strstr(r->message, "f64"), "%s", r->message);
        if (atomic_f32) cr_expect(strstr(r->message, "atomic"), "%s", r->message);
        if (big_group && !f64 && !atomic_f32) cr_expect(strstr(r->message, "TS_ERR_BAD_CONFIG"), "%s", r->message);
    }
    cr_expect_gt(ns, 3);
    cr_expect(ts_conformance_report_ok(rep), "not-supported is not a failure");
    ts_conformance_report_destroy(rep);
}

static ts_status build_broken(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    (void)kd, (void)dt;
    *out = NULL;
    return ts__error(TS_ERR_INVALID_KERNEL, "broken <kernel> & \"quotes\" 'apos' \x01 ctl \xff bad-utf8");
}

static ts_status build_copy(const ts_conformance_kernel *kd, ts_dtype dt, ts_kernel **out) {
    (void)kd;
    ts_builder *b;
    ts_builder_create("tcopy", &b);
    ts_size N = ts_size_sym(b, "N");
    ts_param x = ts_param_tensor(b, "x", dt, 1, &N), y = ts_param_tensor(b, "y", dt, 1, &N);
    ts_tunable(b, "BLOCK", 16, 64, 32);
    ts_tile t = ts_grid_tile(b, "t", N, "BLOCK");
    ts_store(b, y, &TS_AT(t), ts_load(b, x, &TS_AT(t), 0.0));
    ts_status s = ts_builder_finish(b, out);
    ts_builder_destroy(b);
    return s;
}

Test(statuses, reports_escape_and_count, .timeout = 120) {
    ts_conformance_kernel ks[2];
    memset(ks, 0, sizeof ks);
    ks[0] = (ts_conformance_kernel){.name = "user.broken", .group = "user", .build = build_broken, .dtypes = {TS_F32}, .ndtypes = 1,
                                    .shapes = {{"odd", "N=13", TS_CONFORMANCE_CONTIGUOUS, 0, 0}}, .nshapes = 1, .outputs = 2};
    ks[1] = (ts_conformance_kernel){.name = "user.copy", .group = "user", .build = build_copy, .dtypes = {TS_F32, TS_BF16}, .ndtypes = 2, .quick_dtypes = 2,
                                    .shapes = {{"odd", "N=13", TS_CONFORMANCE_CONTIGUOUS, 0, 0}, {"strided", "N=100", TS_CONFORMANCE_STRIDED, 0, 0},
                                               {"empty", "N=0", TS_CONFORMANCE_CONTIGUOUS, 0, 0}},
                                    .nshapes = 3, .outputs = 2, .quick_configs = 3};
    ts_conformance_options o = TS_CONFORMANCE_OPTIONS_INIT;
    o.backend = "ref";
    o.no_builtin = 1;
    o.kernels = ks;
    o.nkernels = 2;
    ts_conformance_report *rep;
    cr_assert_eq(ts_conformance_run(&o, &rep), TS_OK, "%s", ts_last_error());
    cr_expect_eq(ts_conformance_report_count(rep), 1 + 2 * 3 * 3);
    cr_expect_eq(ts_conformance_report_status_count(rep, TS_CONFORMANCE_FAIL), 1);
    cr_expect_eq(ts_conformance_report_status_count(rep, TS_CONFORMANCE_PASS), 18);
    cr_expect(!ts_conformance_report_ok(rep));
    const ts_conformance_result *r0 = ts_conformance_report_result(rep, 0);
    cr_expect_str_eq(r0->id, "user.broken/f32/odd/default");
    cr_expect(strstr(r0->message, "broken <kernel>"), "%s", r0->message);
    cr_expect_str_eq(ts_conformance_report_summary(rep), "conformance: 18 passed, 1 failed, 0 not-supported, 0 compile-error, 0 crash, 0 timeout");
    char *dir = tmp_dir();
    char *json = path_in(dir, "r.json"), *xml = path_in(dir, "r.xml");
    cr_assert_eq(ts_conformance_report_write_json(rep, json), TS_OK, "%s", ts_last_error());
    cr_assert_eq(ts_conformance_report_write_junit(rep, xml), TS_OK, "%s", ts_last_error());
    json_t *root = load_report(json);
    cr_expect_eq(count_of(root, "fail"), 1);
    json_decref(root);
    check_junit(dir, xml, "broken <kernel> & \"quotes\"");
    free(json), free(xml), free(dir);
    ts_conformance_report_destroy(rep);
}

/* ---------------------------------------------------------------- plugins */

static char plugin_env[4200];
static const char *plugin_path_env(void) {
    snprintf(plugin_env, sizeof plugin_env, "TESSERA_BACKEND_PATH=%s", plugin_dir_or_skip());
    return plugin_env;
}

Test(plugins, hostsim_loads_in_process) {
    setenv("TESSERA_BACKEND_PATH", plugin_dir_or_skip(), 1); /* before the registry's first use in this process */
    unsetenv("TS_FAULT");
    const char *why = NULL;
    cr_assert(ts_backend_available("hostsim", &why), "%s", why ? why : "");
    int found = 0;
    for (int i = 0; i < ts_backend_count(); i++) found |= strcmp(ts_backend_name(i), "hostsim") == 0;
    cr_expect(found);
    ts_context *ctx;
    cr_assert_eq(ts_context_create("hostsim", 0, &ctx), TS_OK, "%s", ts_last_error());
    uint64_t h;
    cr_expect(strstr(ts_context_fingerprint(ctx, &h), "hostsim"), "%s", ts_context_fingerprint(ctx, &h));
    cr_expect(ts_device_supports_dtype(ctx, TS_BF16));
    ts_context_destroy(ctx);
}

Test(plugins, quick_passes_on_hostsim, .timeout = 300) {
    json_t *r;
    int rc = conformance((const char *[]){plugin_path_env(), "TS_FAULT=", NULL}, (const char *[]){"--backend", "hostsim", NULL}, &r, NULL);
    cr_expect_eq(rc, 0);
    cr_expect_str_eq(json_string_value(json_object_get(r, "backend")), "hostsim");
    cr_expect(strstr(json_string_value(json_object_get(r, "fingerprint")), "hostsim"));
    cr_expect_gt(count_of(r, "pass"), 500);
    cr_expect_eq(count_of(r, "fail") + count_of(r, "crash") + count_of(r, "timeout"), 0);
    json_decref(r);
}

/* Statuses of the cases whose id starts with `prefix`, as counts. */
static void tally_prefix(json_t *r, const char *prefix, int counts[6], const char *skip_shape) {
    memset(counts, 0, 6 * sizeof counts[0]);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(r, "cases"), i, c) {
        const char *id = json_string_value(json_object_get(c, "id"));
        if (strncmp(id, prefix, strlen(prefix)) != 0) continue;
        if (skip_shape && strncmp(json_string_value(json_object_get(c, "shape_class")), skip_shape, strlen(skip_shape)) == 0) continue;
        for (int s = 0; s < 6; s++)
            if (strcmp(json_string_value(json_object_get(c, "status")), statuses[s]) == 0) counts[s]++;
    }
}

Test(plugins, faulty_rounding_fails_float_cases, .timeout = 120) {
    json_t *r;
    int rc = conformance((const char *[]){plugin_path_env(), "TS_FAULT=rounding", "TS_FAULT_KERNEL=", NULL},
                         (const char *[]){"--backend", "faulty", "--filter",
                                          "op.unary.exp/f32/*,op.binary.mul/f16/*,op.binary.add/i32/*,op.layout.copy/u8/*", "--level", "full", NULL},
                         &r, "expected");
    cr_expect_eq(rc, 1, "a failure gives exit status 1");
    int c[6];
    tally_prefix(r, "op.unary.exp/f32/", c, "empty");
    cr_expect_gt(c[1], 10);
    cr_expect_eq(c[0], 0, "every exp case with elements fails (%d passed)", c[0]);
    tally_prefix(r, "op.binary.mul/f16/", c, "empty");
    cr_expect_gt(c[1], 10);
    cr_expect_eq(c[0], 0, "one f16 ulp off is caught where the result is exact (%d passed)", c[0]);
    tally_prefix(r, "op.binary.add/i32/", c, NULL);
    cr_expect_gt(c[0], 10, "integer results are not rounded: they pass");
    cr_expect_eq(c[1], 0);
    tally_prefix(r, "op.layout.copy/u8/", c, NULL);
    cr_expect_eq(c[1], 0);
    json_decref(r);
}

Test(plugins, faulty_dropped_edge_fails_partial_tiles, .timeout = 120) {
    json_t *r;
    int rc = conformance((const char *[]){plugin_path_env(), "TS_FAULT=dropped_edge", "TS_FAULT_KERNEL=", NULL},
                         (const char *[]){"--backend", "faulty", "--filter", "op.unary.exp/f32/*/default,op.binary.add/f32/*/default,op.cast.f32_to_f16/*/default",
                                          NULL},
                         &r, NULL);
    cr_expect_eq(rc, 1);
    const char *kernels[] = {"op.unary.exp/f32", "op.binary.add/f32", "op.cast.f32_to_f16/f32"};
    for (int k = 0; k < 3; k++) {
        char id[128];
        /* sizes that are multiples of every block size pass; the rest lose their edge tile */
        snprintf(id, sizeof id, "%s/aligned/default", kernels[k]);
        cr_expect_str_eq(status_of(r, id), "pass", "%s", id);
        snprintf(id, sizeof id, "%s/empty/default", kernels[k]);
        cr_expect_str_eq(status_of(r, id), "pass", "%s (nothing to drop)", id);
        const char *partial[] = {"tiny", "odd", "nonmult", "strided"};
        for (int s = 0; s < 4; s++) {
            snprintf(id, sizeof id, "%s/%s/default", kernels[k], partial[s]);
            cr_expect_str_eq(status_of(r, id), "fail", "%s", id);
        }
    }
    /* the failure names the worst element */
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(r, "cases"), i, c) {
        if (strcmp(json_string_value(json_object_get(c, "status")), "fail") != 0) continue;
        json_t *w = json_object_get(c, "worst");
        cr_assert(json_is_object(w), "%s has no worst element", json_string_value(json_object_get(c, "id")));
        cr_expect_geq(json_integer_value(json_object_get(w, "index")), 0);
    }
    json_decref(r);
}

/* Under AddressSanitizer the child's SIGSEGV is caught by ASan, which
 * reports and exits with status 1: the case is still a crash. */
#if defined(__SANITIZE_ADDRESS__)
#define CRASH_TEXT "the process running the case exited with status"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CRASH_TEXT "the process running the case exited with status"
#endif
#endif
#ifndef CRASH_TEXT
#define CRASH_TEXT "SIGSEGV"
#endif

Test(plugins, faulty_crash_is_isolated, .timeout = 120) {
    json_t *r;
    int rc = conformance((const char *[]){plugin_path_env(), "TS_FAULT=crash", "TS_FAULT_KERNEL=unary_exp", NULL},
                         (const char *[]){"--backend", "faulty", "--filter", "op.unary.exp/f32/*/default,op.unary.log/f32/*/default", NULL}, &r, CRASH_TEXT);
    cr_expect_eq(rc, 1, "a crash gives exit status 1");
    int c[6];
    tally_prefix(r, "op.unary.exp/f32/", c, "empty");
    cr_expect_gt(c[4], 5, "each exp launch crashes");
    cr_expect_eq(c[4], c[0] + c[1] + c[2] + c[3] + c[4] + c[5]);
    tally_prefix(r, "op.unary.log/f32/", c, NULL);
    cr_expect_gt(c[0], 5, "the cases after a crash still run and pass");
    cr_expect_eq(c[0], c[0] + c[1] + c[2] + c[3] + c[4] + c[5]);
    cr_expect_gt(count_of(r, "crash"), 0);
    json_decref(r);
}

Test(plugins, faulty_hang_times_out, .timeout = 120) {
    json_t *r;
    int rc = conformance((const char *[]){plugin_path_env(), "TS_FAULT=hang", "TS_FAULT_KERNEL=unary_exp", NULL},
                         (const char *[]){"--backend", "faulty", "--timeout", "2", "--filter",
                                          "op.unary.exp/f32/tiny/default,op.unary.exp/f32/odd/default,op.unary.log/f32/tiny/default", NULL},
                         &r, "no result within");
    cr_expect_eq(rc, 1);
    cr_expect_str_eq(status_of(r, "op.unary.exp/f32/tiny/default"), "timeout");
    cr_expect_str_eq(status_of(r, "op.unary.exp/f32/odd/default"), "timeout");
    cr_expect_str_eq(status_of(r, "op.unary.log/f32/tiny/default"), "pass");
    json_decref(r);
}

Test(plugins, interface_versions_are_checked) {
    /* in process: a table with version 0 or newer than this library */
    ts_backend v0 = small_backend, vnew = small_backend;
    v0.name = "v0";
    v0.version = 0;
    vnew.name = "vnew";
    vnew.version = TS_BACKEND_VERSION + 1;
    cr_expect_eq(ts_backend_register(&v0), TS_ERR_VERSION);
    cr_expect(strstr(ts_last_error(), "version 0"), "%s", ts_last_error());
    cr_expect_eq(ts_backend_register(&vnew), TS_ERR_VERSION);

    /* the plugin's own entry point, opened as the registry does */
    const char *dir = plugin_dir_or_skip();
    char so[4200];
    snprintf(so, sizeof so, "%s/libtessera-backend-faulty.so", dir);
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(h, "%s", dlerror());
    ts_backend_entry_fn entry;
    *(void **)&entry = dlsym(h, "ts_backend_entry");
    cr_assert_not_null(entry);
    setenv("TS_FAULT", "version_new", 1);
    cr_expect_eq(ts_backend_register(entry()), TS_ERR_VERSION);
    setenv("TS_FAULT", "version0", 1);
    cr_expect_eq(ts_backend_register(entry()), TS_ERR_VERSION);
    unsetenv("TS_FAULT");
    dlclose(h);

    /* through TESSERA_BACKEND_PATH: refused with a line on stderr, not listed */
    const char *faults[] = {"TS_FAULT=version0", "TS_FAULT=version_new", "TS_FAULT="};
    for (int f = 0; f < 3; f++) {
        char *tdir = tmp_dir();
        char *out = path_in(tdir, "out.txt"), *err = path_in(tdir, "err.txt");
        int rc = run_cli((const char *[]){plugin_path_env(), faults[f], NULL}, (const char *[]){"devices", NULL}, out, err);
        cr_expect_eq(rc, 0);
        char *o = slurp(out), *e = slurp(err);
        cr_expect(strstr(o, "hostsim"), "hostsim is listed: %s", o);
        if (f < 2) {
            cr_expect(!strstr(o, "faulty"), "%s: the faulty plugin must be refused: %s", faults[f], o);
            cr_expect(strstr(e, "interface version"), "%s: stderr says why: %s", faults[f], e);
        } else cr_expect(strstr(o, "faulty"), "a correct version loads: %s", o);
        free(o), free(e), free(out), free(err), free(tdir);
    }
}
