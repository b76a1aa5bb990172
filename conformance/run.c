/* run.c: the conformance driver.
 *
 * The calling process never opens the device under test: a driver such as
 * PoCL or CUDA does not survive fork(), and a crash must not take the suite
 * down. A probe child opens the device and reports its name and fingerprint;
 * then the cases of each kernel run in a child that streams one result per
 * case through a pipe. The parent waits for each result with a deadline:
 * when the child dies or misses it, the case in progress is marked crash or
 * timeout (the child is killed) and a fresh child continues with the next
 * case. So a crash or a hang costs exactly one case.
 *
 * Sections: pipe I/O; the probe; children; ts_conformance_run. */
#include "conf_internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define DEFAULT_TIMEOUT_S 120.0

/* ---------------------------------------------------------------- pipe I/O */

static int write_full(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes before the absolute deadline (ms, ts__now_ms clock).
 * Returns n, 0 at end of file (or a short record), -2 at the deadline, -1 on error. */
static ssize_t read_record(int fd, void *buf, size_t n, double deadline) {
    size_t got = 0;
    while (got < n) {
        double left = deadline - ts__now_ms();
        if (left <= 0) return -2;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, left > 1e9 ? 1000000000 : (int)left + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) return -1;
        if (pr == 0) continue; /* re-check the deadline */
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) return 0;
        got += (size_t)r;
    }
    return (ssize_t)n;
}

static void child_setup(void) {
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* no orphans if the driver process dies */
#endif
    dup2(2, 1); /* a driver's chatter must not mix with the caller's table on stdout */
    signal(SIGPIPE, SIG_DFL);
}

static const char *signal_name(int sig) {
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGABRT: return "SIGABRT";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    default: return "signal";
    }
}

static void kill_and_reap(pid_t pid, int *wstatus) {
    kill(pid, SIGKILL);
    while (waitpid(pid, wstatus, 0) < 0 && errno == EINTR) {}
}

/* ---------------------------------------------------------------- the probe */

typedef struct probe_record {
    int32_t status;
    char backend[64];
    char device[128];
    char fingerprint[512];
    char message[1024];
} probe_record;

static void probe_here(const ts_conformance_options *o, probe_record *pr) {
    memset(pr, 0, sizeof *pr);
    ts__conf_runner *r;
    ts_status s = ts__conf_runner_open(o->backend, o->device, o->seed, &r);
    pr->status = s;
    if (s) {
        snprintf(pr->message, sizeof pr->message, "%s", ts_last_error());
        return;
    }
    ts_context *ctx = ts__conf_runner_device(r);
    snprintf(pr->backend, sizeof pr->backend, "%s", ts_context_backend(ctx));
    snprintf(pr->device, sizeof pr->device, "%s", ts_context_device_name(ctx));
    uint64_t h;
    const char *fp = ts_context_fingerprint(ctx, &h);
    snprintf(pr->fingerprint, sizeof pr->fingerprint, "%s (hash %016llx)", fp ? fp : "", (unsigned long long)h);
    ts__conf_runner_close(r);
}

static ts_status probe(const ts_conformance_options *o, double timeout_s, probe_record *pr) {
    if (o->no_fork) {
        probe_here(o, pr);
        return TS_OK;
    }
    int fds[2];
    if (pipe(fds)) return ts__error(TS_ERR_IO, "conformance: pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return ts__error(TS_ERR_IO, "conformance: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        child_setup();
        probe_record rec;
        probe_here(o, &rec);
        write_full(fds[1], &rec, sizeof rec);
        _exit(0);
    }
    close(fds[1]);
    ssize_t got = read_record(fds[0], pr, sizeof *pr, ts__now_ms() + timeout_s * 1000);
    close(fds[0]);
    int ws = 0;
    if (got == (ssize_t)sizeof *pr) {
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
        return TS_OK;
    }
    kill_and_reap(pid, &ws);
    if (got == -2) return ts__error(TS_ERR_TIMEOUT, "conformance: opening the device did not finish within %.0f s", timeout_s);
    if (WIFSIGNALED(ws)) return ts__error(TS_ERR_DEVICE, "conformance: opening the device crashed (signal %d, %s)", WTERMSIG(ws), strsignal(WTERMSIG(ws)));
    return ts__error(TS_ERR_DEVICE, "conformance: the process opening the device exited without an answer");
}

/* ---------------------------------------------------------------- children */

typedef struct case_record {
    int32_t index;
    int32_t pad;
    ts_conformance_result r;
} case_record;

typedef struct run_state {
    const ts_conformance_options *o;
    const char *backend; /* resolved by the probe */
    ts__conf_case *cases;
    ts_conformance_report *rep;
    double timeout_ms;
} run_state;

static void deliver(run_state *st, int index, const ts_conformance_result *r) {
    st->rep->results[index] = *r;
    if (st->o->on_result) st->o->on_result(&st->rep->results[index], st->o->user);
}

static void child_run(run_state *st, int fd, int begin, int end) {
    child_setup();
    ts__conf_runner *r = NULL;
    ts_status s = ts__conf_runner_open(st->backend, st->o->device, st->o->seed, &r);
    char why[1024];
    if (s) snprintf(why, sizeof why, "cannot open the device: %s", ts_last_error());
    for (int i = begin; i < end; i++) {
        case_record rec;
        memset(&rec, 0, sizeof rec);
        rec.index = i;
        if (r) ts__conf_runner_run(r, &st->cases[i], &rec.r);
        else {
            ts__conf_result_init(&rec.r, &st->cases[i]);
            rec.r.status = TS_CONFORMANCE_FAIL;
            snprintf(rec.r.message, sizeof rec.r.message, "%s", why);
        }
        if (write_full(fd, &rec, sizeof rec)) break;
    }
    _exit(0);
}

/* Runs cases [begin, end) in children until every one has a result. */
static ts_status run_batch(run_state *st, int begin, int end) {
    int next = begin;
    while (next < end) {
        int fds[2];
        if (pipe(fds)) return ts__error(TS_ERR_IO, "conformance: pipe: %s", strerror(errno));
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            close(fds[0]);
            close(fds[1]);
            return ts__error(TS_ERR_IO, "conformance: fork: %s", strerror(errno));
        }
        if (pid == 0) {
            close(fds[0]);
            child_run(st, fds[1], next, end);
        }
        close(fds[1]);
        double started = ts__now_ms();
        for (;;) {
            case_record rec;
            ssize_t got = read_record(fds[0], &rec, sizeof rec, ts__now_ms() + st->timeout_ms);
            if (got == (ssize_t)sizeof rec && rec.index >= next && rec.index < end) {
                deliver(st, rec.index, &rec.r);
                next = rec.index + 1;
                started = ts__now_ms();
                if (next == end) break;
                continue;
            }
            /* the case `next` did not finish: why? */
            int ws = 0;
            ts_conformance_result res;
            ts__conf_result_init(&res, &st->cases[next]);
            if (got == -2) {
                kill_and_reap(pid, &ws);
                pid = -1;
                res.status = TS_CONFORMANCE_TIMEOUT;
                snprintf(res.message, sizeof res.message, "no result within %.0f s (killed)", st->timeout_ms / 1000);
            } else {
                /* end of file: the child died (or a garbled record: kill it) */
                if (got != 0) kill(pid, SIGKILL);
                while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
                pid = -1;
                res.status = TS_CONFORMANCE_CRASH;
                if (WIFSIGNALED(ws))
                    snprintf(res.message, sizeof res.message, "the process running the case died of signal %d (%s, %s)", WTERMSIG(ws),
                             signal_name(WTERMSIG(ws)), strsignal(WTERMSIG(ws)));
                else
                    snprintf(res.message, sizeof res.message, "the process running the case exited with status %d before reporting",
                             WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
            }
            res.wall_ms = ts__now_ms() - started;
            deliver(st, next, &res);
            next++;
            break;
        }
        close(fds[0]);
        if (pid > 0) {
            int ws;
            while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
        }
    }
    return TS_OK;
}

/* ---------------------------------------------------------------- the run */

ts_status ts_conformance_run(const ts_conformance_options *opts, ts_conformance_report **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_conformance_run: out is NULL");
    *out = NULL;
    ts_conformance_options o = TS_CONFORMANCE_OPTIONS_INIT;
    if (opts) memcpy(&o, opts, opts->size < sizeof o ? opts->size : sizeof o);
    o.size = sizeof o;
    if (!o.seed) o.seed = 1;
    if (!o.backend || !*o.backend || strcmp(o.backend, "auto") == 0) {
        const char *env = getenv("TESSERA_BACKEND");
        o.backend = env && *env ? env : NULL;
    }
    double timeout_s = o.timeout_s > 0 ? o.timeout_s : DEFAULT_TIMEOUT_S;
    double t0 = ts__now_ms();

    ts_conformance_report *rep = ts__calloc(1, sizeof *rep);
    if (!rep) return TS_ERR_OUT_OF_MEMORY;
    rep->level = o.level;
    rep->seed = o.seed;
    snprintf(rep->filter, sizeof rep->filter, "%s", o.filter ? o.filter : "");
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(rep->started, sizeof rep->started, "%Y-%m-%dT%H:%M:%S", &tmv);

    probe_record pr;
    ts_status s = probe(&o, timeout_s, &pr);
    if (!s && pr.status) s = ts__error((ts_status)pr.status, "%s", pr.message);
    if (s) {
        free(rep);
        return s;
    }
    snprintf(rep->backend, sizeof rep->backend, "%s", pr.backend);
    snprintf(rep->device, sizeof rep->device, "%s", pr.device);
    snprintf(rep->fingerprint, sizeof rep->fingerprint, "%s", pr.fingerprint);

    ts__conf_case *cases;
    int n;
    s = ts__conf_enumerate(&o, &cases, &n);
    if (s) {
        free(rep);
        return s;
    }
    rep->results = ts__calloc((size_t)(n ? n : 1), sizeof *rep->results);
    if (!rep->results) {
        free(cases);
        free(rep);
        return TS_ERR_OUT_OF_MEMORY;
    }
    rep->n = n;
    run_state st = {.o = &o, .backend = rep->backend, .cases = cases, .rep = rep, .timeout_ms = timeout_s * 1000};
    if (o.no_fork) {
        ts__conf_runner *r;
        s = ts__conf_runner_open(rep->backend, o.device, o.seed, &r);
        for (int i = 0; !s && i < n; i++) {
            ts_conformance_result res;
            ts__conf_runner_run(r, &cases[i], &res);
            deliver(&st, i, &res);
        }
        if (!s) ts__conf_runner_close(r);
    } else {
        /* one child per kernel (all its dtypes, shapes and configs) */
        for (int b = 0; !s && b < n;) {
            int e = b + 1;
            while (e < n && cases[e].kd == cases[b].kd) e++;
            s = run_batch(&st, b, e);
            b = e;
        }
    }
    free(cases);
    if (s) {
        ts_conformance_report_destroy(rep);
        return s;
    }
    rep->seconds = (ts__now_ms() - t0) / 1000;
    *out = rep;
    return TS_OK;
}
