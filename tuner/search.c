/* search.c: search strategies over a space with an abstract cost (the
 * candidate check in tune.c, or a synthetic function in the tests).
 *
 * Sections: memo of evaluated points (each point is evaluated at most once
 * per search; the budget and max_evals are checked before each new point);
 * exhaustive; random; guided (pattern search from several starts); run.
 *
 * Guided search: the starts are the kernel's default point, the space's
 * seeds (one CPU-style and one GPU-style lowering for a dot) and, with
 * effort full, random valid points. Every start is evaluated first and the
 * climbs begin from the best, so a short budget is spent where it pays.
 * A climb is a pattern search: for each axis in turn it tries the next valid
 * value up, then down; a move that improves by more than the noise margin
 * is taken and repeated in the same direction while it keeps improving. It
 * ends when a whole sweep improves nothing; effort full then also tries
 * moving two axes at once (the coupled ones, such as a block and its
 * micro-tile) before giving up.
 */
#include "tuner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A move must beat the current point by this fraction: timing noise on a
 * busy machine is about this large, and chasing it wastes evaluations. */
#define TS__SEARCH_MARGIN 0.02

typedef struct memo_entry {
    int idx[TS__TUNE_MAX_AXES];
    double cost;
    int used;
} memo_entry;

typedef struct search {
    const ts__tune_space *sp;
    const ts__search_opts *o;
    ts__tune_cost_fn cost;
    void *user;
    memo_entry *memo;
    size_t cap, count;
    double t0;
    int stop;
    int evals, max_evals;
    uint64_t rng;
    int best[TS__TUNE_MAX_AXES];
    double best_cost;
} search;

static uint64_t point_hash(const search *s, const int *idx) {
    return ts__hash_bytes(TS__HASH_INIT, idx, (size_t)s->sp->naxes * sizeof(int));
}

static memo_entry *memo_find(search *s, const int *idx) {
    size_t mask = s->cap - 1, i = (size_t)point_hash(s, idx) & mask;
    size_t bytes = (size_t)s->sp->naxes * sizeof(int);
    while (s->memo[i].used) {
        if (memcmp(s->memo[i].idx, idx, bytes) == 0) return &s->memo[i];
        i = (i + 1) & mask;
    }
    return &s->memo[i];
}

static int memo_grow(search *s) {
    size_t nc = s->cap ? s->cap * 2 : 256;
    memo_entry *n = calloc(nc, sizeof *n), *old = s->memo;
    if (!n) return -1;
    size_t oc = s->cap;
    s->memo = n;
    s->cap = nc;
    for (size_t i = 0; i < oc; i++)
        if (old[i].used) *memo_find(s, old[i].idx) = old[i];
    free(old);
    return 0;
}

static uint64_t rng_next(search *s) {
    uint64_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return s->rng = x;
}

static int out_of_time(search *s) {
    if (s->stop) return 1;
    if (s->max_evals > 0 && s->evals >= s->max_evals) s->stop = 1;
    if (s->o->budget_s > 0 && (ts__now_ms() - s->t0) / 1e3 >= s->o->budget_s) s->stop = 1;
    return s->stop;
}

/* Cost of a point, evaluated once; INFINITY (not recorded) when the search has to stop. */
static double eval(search *s, const int *idx) {
    if (s->count * 2 >= s->cap && memo_grow(s)) {
        s->stop = 1;
        return INFINITY;
    }
    memo_entry *e = memo_find(s, idx);
    if (e->used) return e->cost;
    if (out_of_time(s)) return INFINITY;
    int stop = 0;
    double c = s->cost(s->user, idx, &stop);
    if (isnan(c)) c = INFINITY;
    e = memo_find(s, idx); /* the cost function may not touch the memo, but stay safe */
    memcpy(e->idx, idx, (size_t)s->sp->naxes * sizeof(int));
    e->cost = c;
    e->used = 1;
    s->count++;
    s->evals++;
    if (c < s->best_cost) {
        s->best_cost = c;
        memcpy(s->best, idx, sizeof s->best);
    }
    if (stop) s->stop = 1;
    return c;
}

static int seen(search *s, const int *idx) { return memo_find(s, idx)->used; }

/* ---------------------------------------------------------------- exhaustive */

static void run_exhaustive(search *s) {
    const ts__tune_space *sp = s->sp;
    int idx[TS__TUNE_MAX_AXES] = {0};
    int64_t total = ts__tune_space_points(sp);
    for (int64_t p = 0; p < total && !out_of_time(s); p++) {
        int64_t r = p;
        for (int a = sp->naxes - 1; a >= 0; a--) {
            idx[a] = (int)(r % sp->axes[a].n);
            r /= sp->axes[a].n;
        }
        if (ts__tune_space_valid(sp, idx)) eval(s, idx);
    }
}

/* ---------------------------------------------------------------- random */

static int random_valid_point(search *s, int *idx, int fresh) {
    for (int attempt = 0; attempt < 2000; attempt++) {
        for (int a = 0; a < s->sp->naxes; a++) idx[a] = (int)(rng_next(s) % (uint64_t)s->sp->axes[a].n);
        if (ts__tune_space_valid(s->sp, idx) && (!fresh || !seen(s, idx))) return 1;
    }
    return 0;
}

static void run_random(search *s) {
    int idx[TS__TUNE_MAX_AXES];
    while (!out_of_time(s) && random_valid_point(s, idx, 1)) eval(s, idx);
}

/* ---------------------------------------------------------------- guided */

/* Next valid point from cur along axis a in direction dir (skipping invalid values). */
static int step(search *s, const int *cur, int a, int dir, int *out) {
    memcpy(out, cur, sizeof(int) * TS__TUNE_MAX_AXES);
    for (int j = cur[a] + dir; j >= 0 && j < s->sp->axes[a].n; j += dir) {
        out[a] = j;
        if (ts__tune_space_valid(s->sp, out)) return 1;
    }
    return 0;
}

static int better(double c, double cur) { return isfinite(c) && (!isfinite(cur) || c < cur * (1.0 - TS__SEARCH_MARGIN)); }

static void climb(search *s, const int *start) {
    int cur[TS__TUNE_MAX_AXES], nb[TS__TUNE_MAX_AXES];
    memcpy(cur, start, sizeof cur);
    double cc = eval(s, cur);
    if (!isfinite(cc)) return;
    int n = s->sp->naxes;
    for (int sweep = 0; sweep < 64 && !s->stop; sweep++) {
        int improved = 0;
        for (int a = 0; a < n && !s->stop; a++) {
            if (s->sp->axes[a].n < 2) continue;
            for (int dir = 1; dir >= -1 && !s->stop; dir -= 2) {
                if (!step(s, cur, a, dir, nb)) continue;
                double c = eval(s, nb);
                if (!better(c, cc)) continue;
                memcpy(cur, nb, sizeof cur);
                cc = c;
                improved = 1;
                while (!s->stop && step(s, cur, a, dir, nb)) { /* pattern move */
                    c = eval(s, nb);
                    if (!better(c, cc)) break;
                    memcpy(cur, nb, sizeof cur);
                    cc = c;
                }
                break;
            }
        }
        if (!improved && s->o->effort == TS_TUNE_EFFORT_FULL) {
            /* two axes at once: escapes ridges where each axis alone gets worse */
            for (int a = 0; a < n && !improved && !s->stop; a++)
                for (int b = a + 1; b < n && !improved && !s->stop; b++)
                    for (int d = 0; d < 4 && !improved && !s->stop; d++) {
                        int da = d & 1 ? 1 : -1, db = d & 2 ? 1 : -1;
                        memcpy(nb, cur, sizeof nb);
                        nb[a] += da;
                        nb[b] += db;
                        if (!ts__tune_space_valid(s->sp, nb)) continue;
                        double c = eval(s, nb);
                        if (better(c, cc)) {
                            memcpy(cur, nb, sizeof cur);
                            cc = c;
                            improved = 1;
                        }
                    }
        }
        if (!improved) break;
    }
}

static void run_guided(search *s) {
    const ts__tune_space *sp = s->sp;
    enum { MAX_STARTS = 2 + TS__TUNE_MAX_SEEDS + 8 };
    int starts[MAX_STARTS][TS__TUNE_MAX_AXES];
    double cost[MAX_STARTS];
    int ns = 0;
    memset(starts, 0, sizeof starts);
    ts__tune_space_default(sp, starts[ns]);
    if (ts__tune_space_valid(sp, starts[ns])) ns++;
    for (int i = 0; i < sp->nseeds; i++) {
        memcpy(starts[ns], sp->seeds[i], sizeof starts[ns]);
        if (ts__tune_space_valid(sp, starts[ns])) ns++;
    }
    int nrandom = s->o->effort == TS_TUNE_EFFORT_FULL ? 6 : ns == 0 ? 2 : 1;
    for (int i = 0; i < nrandom && ns < MAX_STARTS; i++)
        if (random_valid_point(s, starts[ns], 0)) ns++;
    /* evaluate every start, then climb from the best first */
    for (int i = 0; i < ns; i++) cost[i] = eval(s, starts[i]);
    int order[MAX_STARTS];
    for (int i = 0; i < ns; i++) order[i] = i;
    for (int i = 1; i < ns; i++)
        for (int j = i; j > 0 && cost[order[j]] < cost[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; i < ns && !s->stop; i++) climb(s, starts[order[i]]);
    /* effort full: keep climbing from fresh random points while the budget lasts */
    int idx[TS__TUNE_MAX_AXES];
    while (s->o->effort == TS_TUNE_EFFORT_FULL && !out_of_time(s) && random_valid_point(s, idx, 1)) climb(s, idx);
}

/* ---------------------------------------------------------------- run */

const char *ts__tune_strategy_name(ts_tune_strategy st) {
    switch (st) {
    case TS_TUNE_EXHAUSTIVE: return "exhaustive";
    case TS_TUNE_RANDOM: return "random";
    case TS_TUNE_GUIDED: return "guided";
    default: return "auto";
    }
}

ts_status ts__search_run(const ts__tune_space *sp, const ts__search_opts *o, ts__tune_cost_fn cost, void *user, ts__search_result *r) {
    memset(r, 0, sizeof *r);
    r->best_cost = INFINITY;
    if (!sp || !o || !cost) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts__search_run: NULL argument");
    search s = {.sp = sp, .o = o, .cost = cost, .user = user, .t0 = ts__now_ms(), .max_evals = o->max_evals, .best_cost = INFINITY};
    s.rng = o->seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;
    if (!s.rng) s.rng = 1;
    if (memo_grow(&s)) return ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory for the search");
    ts_tune_strategy st = o->strategy;
    if (st == TS_TUNE_AUTO) {
        int limit = o->exhaustive_limit > 0 ? o->exhaustive_limit : 32;
        int64_t valid = ts__tune_space_count_valid(sp, 1 << 20);
        st = valid >= 0 && valid <= limit ? TS_TUNE_EXHAUSTIVE : TS_TUNE_GUIDED;
    }
    if (st == TS_TUNE_RANDOM && s.max_evals <= 0) s.max_evals = o->effort == TS_TUNE_EFFORT_FULL ? 128 : 24;
    switch (st) {
    case TS_TUNE_EXHAUSTIVE: run_exhaustive(&s); break;
    case TS_TUNE_RANDOM: run_random(&s); break;
    default: st = TS_TUNE_GUIDED; run_guided(&s); break;
    }
    r->used = st;
    r->evals = s.evals;
    r->stopped = s.stop;
    r->best_cost = s.best_cost;
    memcpy(r->best, s.best, sizeof r->best);
    free(s.memo);
    return TS_OK;
}
