/* status.c: status names, messages, and the per-thread detail message. */
#include "ts_internal.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char ts__detail[65536];

const char *ts_status_name(ts_status s) {
    switch (s) {
#define TS_STATUS(name, value, text) case name: return #name;
#include "tessera_status.def"
#undef TS_STATUS
    }
    return "TS_UNKNOWN_STATUS";
}

const char *ts_strerror(ts_status s) {
    switch (s) {
#define TS_STATUS(name, value, text) case name: return text;
#include "tessera_status.def"
#undef TS_STATUS
    }
    return "unknown status";
}

const char *ts_last_error(void) { return ts__detail; }

void ts_clear_error(void) { ts__detail[0] = 0; }

ts_status ts__verror(ts_status s, const char *fmt, va_list ap) {
    vsnprintf(ts__detail, sizeof ts__detail, fmt, ap);
    return s;
}

ts_status ts__error(ts_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ts__verror(s, fmt, ap);
    va_end(ap);
    return s;
}

void ts__error_prefix(const char *fmt, ...) {
    char prefix[1024], old[sizeof ts__detail];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, ts__detail, sizeof old);
    snprintf(ts__detail, sizeof ts__detail, "%s: %s", prefix, old);
}
