/* report.c: the conformance report: accessors, the summary line, the JSON
 * report (schema in docs/conformance.md) and the JUnit XML report (the
 * Ant/Jenkins junit schema: testsuites > testsuite > properties, testcase
 * with failure / error / skipped, system-out, system-err).
 *
 * Messages can hold anything a driver printed (compile logs), so strings are
 * made valid UTF-8 first, and XML text also drops the control characters
 * XML 1.0 forbids. */
#include "conf_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ts_conformance_report_destroy(ts_conformance_report *r) {
    if (!r) return;
    free(r->results);
    free(r);
}

int ts_conformance_report_count(const ts_conformance_report *r) { return r ? r->n : 0; }

const ts_conformance_result *ts_conformance_report_result(const ts_conformance_report *r, int i) {
    return r && i >= 0 && i < r->n ? &r->results[i] : NULL;
}

int ts_conformance_report_status_count(const ts_conformance_report *r, ts_conformance_status s) {
    int c = 0;
    for (int i = 0; r && i < r->n; i++) c += r->results[i].status == s;
    return c;
}

int ts_conformance_report_ok(const ts_conformance_report *r) {
    return r && ts_conformance_report_status_count(r, TS_CONFORMANCE_FAIL) == 0 && ts_conformance_report_status_count(r, TS_CONFORMANCE_CRASH) == 0 &&
           ts_conformance_report_status_count(r, TS_CONFORMANCE_TIMEOUT) == 0 &&
           ts_conformance_report_status_count(r, TS_CONFORMANCE_COMPILE_ERROR) == 0;
}

const char *ts_conformance_report_backend(const ts_conformance_report *r) { return r ? r->backend : ""; }
const char *ts_conformance_report_device(const ts_conformance_report *r) { return r ? r->device : ""; }
const char *ts_conformance_report_fingerprint(const ts_conformance_report *r) { return r ? r->fingerprint : ""; }
double ts_conformance_report_seconds(const ts_conformance_report *r) { return r ? r->seconds : 0; }

const char *ts_conformance_report_summary(const ts_conformance_report *r) {
    static _Thread_local char buf[256];
    snprintf(buf, sizeof buf, "conformance: %d passed, %d failed, %d not-supported, %d compile-error, %d crash, %d timeout",
             ts_conformance_report_status_count(r, TS_CONFORMANCE_PASS), ts_conformance_report_status_count(r, TS_CONFORMANCE_FAIL),
             ts_conformance_report_status_count(r, TS_CONFORMANCE_NOT_SUPPORTED), ts_conformance_report_status_count(r, TS_CONFORMANCE_COMPILE_ERROR),
             ts_conformance_report_status_count(r, TS_CONFORMANCE_CRASH), ts_conformance_report_status_count(r, TS_CONFORMANCE_TIMEOUT));
    return buf;
}

/* ---------------------------------------------------------------- text */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static int utf8_len(const unsigned char *p) {
    if (p[0] < 0x80) return 1;
    int n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] < 0xe0 ? 2 : 0;
    if (!n) return 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    if (n == 3 && p[0] == 0xe0 && p[1] < 0xa0) return 0;      /* overlong */
    if (n == 3 && p[0] == 0xed && p[1] >= 0xa0) return 0;     /* surrogates */
    if (n == 4 && p[0] == 0xf0 && p[1] < 0x90) return 0;      /* overlong */
    if (n == 4 && p[0] == 0xf4 && p[1] >= 0x90) return 0;     /* > U+10FFFF */
    return n;
}

/* A copy that is valid UTF-8 (invalid bytes become '?'). Caller frees. */
static char *utf8_clean(const char *s) {
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    if (!o) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        int l = utf8_len((const unsigned char *)s + i);
        if (!l) {
            o[j++] = '?';
            i++;
            continue;
        }
        memcpy(o + j, s + i, (size_t)l);
        j += (size_t)l;
        i += (size_t)l;
    }
    o[j] = 0;
    return o;
}

static void xml_text(FILE *f, const char *s) {
    char *c = utf8_clean(s ? s : "");
    for (const unsigned char *p = (const unsigned char *)(c ? c : ""); *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        case '\t': case '\n': case '\r': fputc(*p, f); break;
        default:
            if (*p < 0x20 || *p == 0x7f) fputc('?', f); /* not allowed in XML 1.0 */
            else fputc(*p, f);
        }
    }
    free(c);
}

/* ---------------------------------------------------------------- JSON */

static json_t *jstr(const char *s) {
    char *c = utf8_clean(s ? s : "");
    json_t *j = json_string(c ? c : "");
    free(c);
    return j ? j : json_null();
}

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

ts_status ts_conformance_report_write_json(const ts_conformance_report *r, const char *path) {
    if (!r || !path) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_conformance_report_write_json: NULL argument");
    json_t *root = json_object();
    json_object_set_new(root, "format", json_string("tessera-conformance"));
    json_object_set_new(root, "format_version", json_integer(1));
    json_object_set_new(root, "tessera_version", json_string(TS_VERSION_STRING));
    json_object_set_new(root, "backend", jstr(r->backend));
    json_object_set_new(root, "device", jstr(r->device));
    json_object_set_new(root, "fingerprint", jstr(r->fingerprint));
    json_object_set_new(root, "level", json_string(r->level == TS_CONFORMANCE_FULL ? "full" : "quick"));
    json_object_set_new(root, "filter", r->filter[0] ? jstr(r->filter) : json_null());
    json_object_set_new(root, "seed", json_integer((json_int_t)r->seed));
    json_object_set_new(root, "started", jstr(r->started));
    json_object_set_new(root, "seconds", jnum(r->seconds));
    json_t *counts = json_object();
    for (int s = 0; s < TS_CONFORMANCE_STATUS_COUNT; s++)
        json_object_set_new(counts, ts_conformance_status_name((ts_conformance_status)s), json_integer(ts_conformance_report_status_count(r, (ts_conformance_status)s)));
    json_object_set_new(counts, "total", json_integer(r->n));
    json_object_set_new(root, "counts", counts);
    json_object_set_new(root, "ok", json_boolean(ts_conformance_report_ok(r)));
    json_object_set_new(root, "summary", json_string(ts_conformance_report_summary(r)));
    json_t *cases = json_array();
    for (int i = 0; i < r->n; i++) {
        const ts_conformance_result *c = &r->results[i];
        json_t *o = json_object();
        json_object_set_new(o, "id", jstr(c->id));
        json_object_set_new(o, "kernel", jstr(c->kernel));
        json_object_set_new(o, "group", jstr(c->group));
        json_object_set_new(o, "dtype", jstr(c->dtype));
        json_object_set_new(o, "shape_class", jstr(c->shape_class));
        json_object_set_new(o, "sizes", jstr(c->sizes));
        json_object_set_new(o, "config", jstr(c->config));
        json_object_set_new(o, "status", json_string(ts_conformance_status_name(c->status)));
        json_object_set_new(o, "max_err", jnum(c->max_err >= 1e30 ? INFINITY : c->max_err));
        if (c->status == TS_CONFORMANCE_FAIL && c->worst_param[0]) {
            json_t *w = json_object();
            json_object_set_new(w, "param", jstr(c->worst_param));
            json_object_set_new(w, "index", json_integer(c->worst_index));
            json_object_set_new(w, "expected", jnum(c->expected));
            json_object_set_new(w, "got", jnum(c->got));
            json_object_set_new(o, "worst", w);
        }
        json_object_set_new(o, "device_ms", jnum(c->device_ms));
        json_object_set_new(o, "wall_ms", jnum(c->wall_ms));
        json_object_set_new(o, "message", jstr(c->message));
        json_array_append_new(cases, o);
    }
    json_object_set_new(root, "cases", cases);
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text) return ts__error(TS_ERR_OUT_OF_MEMORY, "conformance: cannot format the JSON report");
    size_t n = strlen(text);
    ts_status s = ts__write_file_atomic(path, text, n);
    free(text);
    return s;
}

/* ---------------------------------------------------------------- JUnit */

typedef struct suite_acc {
    char name[32];
    int tests, failures, errors, skipped;
    double seconds;
} suite_acc;

ts_status ts_conformance_report_write_junit(const ts_conformance_report *r, const char *path) {
    if (!r || !path) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_conformance_report_write_junit: NULL argument");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return ts__error(TS_ERR_OUT_OF_MEMORY, "conformance: cannot format the JUnit report");
    /* one testsuite per group, in order of first appearance */
    suite_acc suites[64];
    int ns = 0;
    int *suite_of = calloc((size_t)(r->n ? r->n : 1), sizeof *suite_of);
    if (!suite_of) {
        fclose(f);
        free(buf);
        return ts__error(TS_ERR_OUT_OF_MEMORY, "conformance: cannot format the JUnit report");
    }
    int tot_fail = 0, tot_err = 0, tot_skip = 0;
    for (int i = 0; i < r->n; i++) {
        const ts_conformance_result *c = &r->results[i];
        int k = 0;
        while (k < ns && strcmp(suites[k].name, c->group) != 0) k++;
        if (k == ns) {
            if (ns == 64) k = 63; /* more groups than that share the last suite */
            else {
                memset(&suites[ns], 0, sizeof suites[ns]);
                snprintf(suites[ns].name, sizeof suites[ns].name, "%s", c->group);
                ns++;
            }
        }
        suite_of[i] = k;
        suites[k].tests++;
        suites[k].seconds += c->wall_ms / 1000;
        if (c->status == TS_CONFORMANCE_FAIL) suites[k].failures++, tot_fail++;
        else if (c->status == TS_CONFORMANCE_CRASH || c->status == TS_CONFORMANCE_TIMEOUT || c->status == TS_CONFORMANCE_COMPILE_ERROR) suites[k].errors++, tot_err++;
        else if (c->status == TS_CONFORMANCE_NOT_SUPPORTED) suites[k].skipped++, tot_skip++;
    }
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0 || !host[0]) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;

    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<testsuites name=\"tessera conformance (");
    xml_text(f, r->backend);
    fprintf(f, ")\" tests=\"%d\" failures=\"%d\" errors=\"%d\" skipped=\"%d\" time=\"%.3f\">\n", r->n, tot_fail, tot_err, tot_skip, r->seconds);
    for (int k = 0; k < ns; k++) {
        fprintf(f, "  <testsuite name=\"conformance.");
        xml_text(f, r->backend);
        fputc('.', f);
        xml_text(f, suites[k].name);
        fprintf(f, "\" package=\"tessera.conformance\" id=\"%d\" hostname=\"", k);
        xml_text(f, host);
        fprintf(f, "\" timestamp=\"%s\" tests=\"%d\" failures=\"%d\" errors=\"%d\" skipped=\"%d\" time=\"%.3f\">\n", r->started, suites[k].tests,
                suites[k].failures, suites[k].errors, suites[k].skipped, suites[k].seconds);
        fprintf(f, "    <properties>\n");
        const char *props[][2] = {{"backend", r->backend}, {"device", r->device}, {"fingerprint", r->fingerprint},
                                  {"level", r->level == TS_CONFORMANCE_FULL ? "full" : "quick"}, {"tessera_version", TS_VERSION_STRING}};
        for (size_t p = 0; p < sizeof props / sizeof props[0]; p++) {
            fprintf(f, "      <property name=\"%s\" value=\"", props[p][0]);
            xml_text(f, props[p][1]);
            fprintf(f, "\"/>\n");
        }
        fprintf(f, "    </properties>\n");
        for (int i = 0; i < r->n; i++) {
            const ts_conformance_result *c = &r->results[i];
            if (suite_of[i] != k) continue;
            fprintf(f, "    <testcase name=\"");
            xml_text(f, c->id);
            fprintf(f, "\" classname=\"conformance.");
            xml_text(f, r->backend);
            fputc('.', f);
            xml_text(f, c->kernel);
            fprintf(f, "\" time=\"%.3f\"", c->wall_ms / 1000);
            if (c->status == TS_CONFORMANCE_PASS) {
                fprintf(f, "/>\n");
                continue;
            }
            fprintf(f, ">\n");
            const char *el = c->status == TS_CONFORMANCE_FAIL ? "failure" : c->status == TS_CONFORMANCE_NOT_SUPPORTED ? "skipped" : "error";
            fprintf(f, "      <%s message=\"", el);
            char head[2300];
            snprintf(head, sizeof head, "%s: %.200s", ts_conformance_status_name(c->status), c->message);
            xml_text(f, head);
            if (c->status == TS_CONFORMANCE_NOT_SUPPORTED) {
                fprintf(f, "\"/>\n");
            } else {
                fprintf(f, "\" type=\"%s\">", ts_conformance_status_name(c->status));
                xml_text(f, c->message);
                fprintf(f, "\nsizes: ");
                xml_text(f, c->sizes);
                fprintf(f, "\nconfig: ");
                xml_text(f, c->config);
                fprintf(f, "</%s>\n", el);
            }
            fprintf(f, "    </testcase>\n");
        }
        fprintf(f, "    <system-out/>\n    <system-err/>\n  </testsuite>\n");
    }
    fprintf(f, "</testsuites>\n");
    free(suite_of);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return ts__error(TS_ERR_OUT_OF_MEMORY, "conformance: cannot format the JUnit report");
    }
    ts_status s = ts__write_file_atomic(path, buf, len);
    free(buf);
    return s;
}
