/* db.c: the tuning database.
 *
 * One JSON file per hardware fingerprint: $TESSERA_CACHE_DIR/tuning/<hash>.json
 * (hash = the 16 hex digits of the fingerprint hash), see docs/tuner.md:
 *
 *   {"format": "tessera-tuning", "version": 1, "fingerprint": "opencl:...",
 *    "fingerprint_hash": "526dce0951b19855", "backend": "opencl",
 *    "vendor": "...", "arch": "...", "device": "...",
 *    "entries": {"<kernel hash>/<dtypes>/<bucket>": {"kernel": "matmul",
 *        "kernel_hash": "...", "dtypes": "f32,f32,f32",
 *        "bucket": "M=1024,N=1024,K=1024", "shape": "M=1000,N=1000,K=1000",
 *        "config": "BLOCK_K=64,...", "ms": 27.1, "default_ms": 58.4,
 *        "date": "2025-01-01T00:00:00Z", "version": "0.1.0"}}}
 *
 * Sections: keys and fingerprints; reading and checking a file (a corrupt,
 * truncated, duplicate-key or foreign file is reported once and ignored);
 * the in-process cache used by lookups (a file is re-read only when its
 * inode, size or mtime changes); lookup with fallback; store (flock'ed
 * read-merge-write, atomic rename); list, export and import.
 */
#include "tuner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TS__DB_FORMAT "tessera-tuning"
#define TS__DB_EXPORT_FORMAT "tessera-tuning-export"
#define TS__DB_VERSION 1
#define TS__DB_MAX_BYTES ((size_t)64 << 20)
#define TS__DB_PATH 1024

/* ---------------------------------------------------------------- keys and fingerprints */

void ts__tune_fp_of(const ts_context *ctx, ts__tune_fp *fp) {
    memset(fp, 0, sizeof *fp);
    snprintf(fp->id, sizeof fp->id, "%s", ctx->fp_id);
    fp->hash = ctx->fp_hash;
    snprintf(fp->backend, sizeof fp->backend, "%s", ctx->be->name);
    snprintf(fp->vendor, sizeof fp->vendor, "%s", ctx->fp.vendor);
    snprintf(fp->arch, sizeof fp->arch, "%s", ctx->fp.arch);
    snprintf(fp->device, sizeof fp->device, "%s", ctx->fp.device);
}

ts_status ts__tune_key_of(const ts_kernel *k, const int64_t *const *shapes, ts__tune_key *key) {
    const ts__kir *ir = &k->ir;
    memset(key, 0, sizeof *key);
    key->kernel_hash = k->hash;
    snprintf(key->kernel, sizeof key->kernel, "%s", ir->name);
    size_t n = 0;
    for (int p = 0; p < ir->nparams && n < sizeof key->dtypes; p++)
        n += (size_t)snprintf(key->dtypes + n, sizeof key->dtypes - n, "%s%s", p ? "," : "", ts_dtype_name(ir->params[p].dtype));
    for (int s = 0; s < ir->nsizes; s++) {
        if (!ir->sizes[s].name[0]) continue;
        if (key->nsizes >= TS__TUNE_MAX_SIZES) return ts__error(TS_ERR_LIMIT, "kernel '%s' has more than %d sizes", ir->name, TS__TUNE_MAX_SIZES);
        int64_t v = -1;
        for (int p = 0; p < ir->nparams && v < 0; p++)
            for (int d = 0; d < ir->params[p].rank && v < 0; d++)
                if (ir->params[p].sizes[d] == s && shapes && shapes[p]) v = shapes[p][d];
        if (v < 0) return ts__error(TS_ERR_BAD_ARGS, "kernel '%s': size %s is not bound", ir->name, ir->sizes[s].name);
        int i = key->nsizes++;
        snprintf(key->size_names[i], sizeof key->size_names[i], "%s", ir->sizes[s].name);
        key->sizes[i] = v;
        key->bucket[i] = ts__next_pow2(v < 1 ? 1 : v);
    }
    return TS_OK;
}

static void sizes_string(const ts__tune_key *key, const int64_t *v, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < key->nsizes && k < n; i++) {
        int w = snprintf(buf + k, n - k, "%s%s=%lld", i ? "," : "", key->size_names[i], (long long)v[i]);
        if (w < 0) break;
        k += (size_t)w;
    }
}

void ts__tune_key_string(const ts__tune_key *key, char *buf, size_t n) {
    char b[512];
    sizes_string(key, key->bucket, b, sizeof b);
    snprintf(buf, n, "%016llx/%s/%s", (unsigned long long)key->kernel_hash, key->dtypes, b);
}

ts_status ts__tune_db_path(uint64_t fp_hash, char *buf, size_t n) {
    char dir[TS__DB_PATH];
    ts_status s = ts__cache_dir("tuning", dir, sizeof dir);
    if (s) return s;
    int w = snprintf(buf, n, "%s/%016llx.json", dir, (unsigned long long)fp_hash);
    return w < 0 || (size_t)w >= n ? ts__error(TS_ERR_LIMIT, "tuning database path too long") : TS_OK;
}

/* ---------------------------------------------------------------- reading and checking a file */

static pthread_mutex_t db_mutex = PTHREAD_MUTEX_INITIALIZER;
static char last_warning[1200];
static int warning_count;
static uint64_t reported[64];
static int nreported;

const char *ts__tune_db_last_warning(int *count) {
    pthread_mutex_lock(&db_mutex);
    if (count) *count = warning_count;
    pthread_mutex_unlock(&db_mutex);
    return last_warning;
}

static uint64_t stat_sig(const char *path, const struct stat *st) {
    uint64_t h = ts__hash_str(TS__HASH_INIT, path);
    if (!st) return h;
    h = ts__hash_u64(h, (uint64_t)st->st_ino);
    h = ts__hash_u64(h, (uint64_t)st->st_size);
    h = ts__hash_u64(h, (uint64_t)st->st_mtim.tv_sec);
    return ts__hash_u64(h, (uint64_t)st->st_mtim.tv_nsec);
}

/* Reports a bad file once per version of the file (caller holds db_mutex). */
static void report_bad(const char *path, const struct stat *st, const char *why) {
    uint64_t sig = stat_sig(path, st);
    for (int i = 0; i < nreported; i++)
        if (reported[i] == sig) return;
    reported[nreported++ % 64] = sig;
    if (nreported > 64) nreported = 64;
    snprintf(last_warning, sizeof last_warning, "tuning database '%s' ignored: %s", path, why);
    warning_count++;
    fprintf(stderr, "tessera: %s\n", last_warning);
}

static int is_hex16(const char *s) {
    if (!s || strlen(s) != 16) return 0;
    for (int i = 0; i < 16; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

static const char *str_of(const json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

/* Checks a database object; `expect_hash` (may be NULL) is the hash its file name promises. */
static int check_db(const json_t *root, const char *expect_hash, char *why, size_t n) {
    if (!json_is_object(root)) return snprintf(why, n, "not a JSON object"), 0;
    const char *fmt = str_of(root, "format");
    if (!fmt || strcmp(fmt, TS__DB_FORMAT) != 0) return snprintf(why, n, "not a Tessera tuning database (format '%s')", fmt ? fmt : "?"), 0;
    json_t *ver = json_object_get(root, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) != TS__DB_VERSION)
        return snprintf(why, n, "format version %lld is not %d", json_is_integer(ver) ? (long long)json_integer_value(ver) : -1LL, TS__DB_VERSION), 0;
    const char *h = str_of(root, "fingerprint_hash");
    if (!is_hex16(h) || !str_of(root, "fingerprint") || !str_of(root, "backend") || !str_of(root, "vendor") || !str_of(root, "arch"))
        return snprintf(why, n, "missing or bad fingerprint fields"), 0;
    if (expect_hash && strcmp(h, expect_hash) != 0)
        return snprintf(why, n, "foreign file: it holds fingerprint %s, its name says %s", h, expect_hash), 0;
    json_t *entries = json_object_get(root, "entries");
    if (!json_is_object(entries)) return snprintf(why, n, "no \"entries\" object"), 0;
    const char *key;
    json_t *e;
    json_object_foreach(entries, key, e) {
        if (!json_is_object(e) || !is_hex16(str_of(e, "kernel_hash")) || !str_of(e, "dtypes") || !str_of(e, "bucket") || !str_of(e, "config") ||
            !json_is_number(json_object_get(e, "ms")))
            return snprintf(why, n, "entry '%.200s' is malformed", key), 0;
        char want[1024];
        snprintf(want, sizeof want, "%s/%s/%s", str_of(e, "kernel_hash"), str_of(e, "dtypes"), str_of(e, "bucket"));
        if (strcmp(want, key) != 0) return snprintf(why, n, "entry '%.200s' does not match its fields", key), 0;
    }
    return 1;
}

/* Hash named by a database file name "<16 hex>.json", or NULL. */
static const char *name_hash(const char *path, char *buf) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strlen(base) != 21 || strcmp(base + 16, ".json") != 0) return NULL;
    memcpy(buf, base, 16);
    buf[16] = 0;
    return is_hex16(buf) ? buf : NULL;
}

/* Loads and checks one database file. Returns the root (caller decrefs),
 * or NULL: *missing is set when the file does not exist, else the problem
 * is in why. */
static json_t *load_db(const char *path, int *missing, char *why, size_t n) {
    *missing = 0;
    char *text;
    size_t len;
    ts_status s = ts__read_file(path, TS__DB_MAX_BYTES, &text, &len);
    if (s == TS_ERR_NOT_FOUND) {
        *missing = 1;
        return NULL;
    }
    if (s) {
        snprintf(why, n, "%s", ts_last_error());
        return NULL;
    }
    json_error_t err;
    json_t *root = len ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &err) : NULL;
    free(text);
    if (!root) {
        if (len) snprintf(why, n, "corrupt JSON at line %d column %d: %s", err.line, err.column, err.text);
        else snprintf(why, n, "empty file");
        return NULL;
    }
    char hb[17];
    if (!check_db(root, name_hash(path, hb), why, n)) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* ---------------------------------------------------------------- the in-process cache */

typedef struct cached_file {
    char path[TS__DB_PATH];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    json_t *root; /* NULL: missing or bad */
} cached_file;

static cached_file *cache;
static int ncache, cap_cache;

typedef struct cached_dir {
    char path[TS__DB_PATH];
    struct timespec mtime;
    ino_t ino;
    char (*names)[32];
    int n;
} cached_dir;
static cached_dir dir_cache;

void ts__tune_db_cache_clear(void) {
    pthread_mutex_lock(&db_mutex);
    for (int i = 0; i < ncache; i++) json_decref(cache[i].root);
    free(cache);
    cache = NULL;
    ncache = cap_cache = 0;
    free(dir_cache.names);
    memset(&dir_cache, 0, sizeof dir_cache);
    pthread_mutex_unlock(&db_mutex);
}

static int same_stat(const cached_file *c, const struct stat *st) {
    return c->dev == st->st_dev && c->ino == st->st_ino && c->size == st->st_size && c->mtime.tv_sec == st->st_mtim.tv_sec &&
           c->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* The checked root of `path`, re-read only when the file changed. Caller holds db_mutex. */
static json_t *cached_db(const char *path) {
    struct stat st;
    int exists = stat(path, &st) == 0;
    cached_file *c = NULL;
    for (int i = 0; i < ncache && !c; i++)
        if (strcmp(cache[i].path, path) == 0) c = &cache[i];
    if (!exists) {
        if (c) {
            json_decref(c->root);
            c->root = NULL;
            c->ino = 0;
            c->size = -1;
        }
        return NULL;
    }
    if (c && same_stat(c, &st)) return c->root;
    if (!c) {
        if (ncache == cap_cache) {
            int nc = cap_cache ? cap_cache * 2 : 8;
            cached_file *p = realloc(cache, (size_t)nc * sizeof *p);
            if (!p) return NULL;
            cache = p;
            cap_cache = nc;
        }
        c = &cache[ncache++];
        memset(c, 0, sizeof *c);
        snprintf(c->path, sizeof c->path, "%s", path);
    }
    json_decref(c->root);
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    c->size = st.st_size;
    c->mtime = st.st_mtim;
    int missing;
    char why[512];
    c->root = load_db(path, &missing, why, sizeof why);
    if (!c->root && !missing) report_bad(path, &st, why);
    return c->root;
}

static int cmp_names(const void *a, const void *b) { return strcmp(a, b); }

/* Database file names in the folder (sorted), re-read when the folder changes. Caller holds db_mutex. */
static const cached_dir *list_dir(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0) return NULL;
    if (strcmp(dir_cache.path, dir) == 0 && dir_cache.ino == st.st_ino && dir_cache.mtime.tv_sec == st.st_mtim.tv_sec &&
        dir_cache.mtime.tv_nsec == st.st_mtim.tv_nsec)
        return &dir_cache;
    free(dir_cache.names);
    memset(&dir_cache, 0, sizeof dir_cache);
    DIR *d = opendir(dir);
    if (!d) return NULL;
    snprintf(dir_cache.path, sizeof dir_cache.path, "%s", dir);
    dir_cache.mtime = st.st_mtim;
    dir_cache.ino = st.st_ino;
    int cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char hb[17];
        if (!name_hash(de->d_name, hb)) continue;
        if (dir_cache.n == cap) {
            int nc = cap ? cap * 2 : 16;
            char(*p)[32] = realloc(dir_cache.names, (size_t)nc * sizeof *p);
            if (!p) break;
            dir_cache.names = p;
            cap = nc;
        }
        snprintf(dir_cache.names[dir_cache.n++], 32, "%s", de->d_name);
    }
    closedir(d);
    if (dir_cache.n) qsort(dir_cache.names, (size_t)dir_cache.n, sizeof *dir_cache.names, cmp_names);
    return &dir_cache;
}

/* ---------------------------------------------------------------- lookup */

static void value_of(const json_t *e, ts__tune_value *v) {
    memset(v, 0, sizeof *v);
    snprintf(v->config, sizeof v->config, "%s", str_of(e, "config") ? str_of(e, "config") : "");
    v->ms = json_number_value(json_object_get(e, "ms"));
    v->default_ms = json_number_value(json_object_get(e, "default_ms"));
    snprintf(v->date, sizeof v->date, "%s", str_of(e, "date") ? str_of(e, "date") : "");
    snprintf(v->version, sizeof v->version, "%s", str_of(e, "version") ? str_of(e, "version") : "");
}

/* Distance between the key's bucket and an entry's ("M=1024,N=512"): the sum
 * of |log2| differences per size; -1 when the sizes are not the same names. */
static double bucket_distance(const ts__tune_key *key, const char *bucket) {
    const char *p = bucket;
    double d = 0;
    for (int i = 0; i < key->nsizes; i++) {
        size_t nl = strlen(key->size_names[i]);
        if (strncmp(p, key->size_names[i], nl) != 0 || p[nl] != '=') return -1;
        p += nl + 1;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1) return -1;
        d += fabs(log2((double)v) - log2((double)key->bucket[i]));
        p = end;
        if (*p == ',') p++;
    }
    return *p ? -1 : d;
}

typedef struct candidate {
    double dist;
    int file;        /* order of the file: ties go to the earlier one */
    const json_t *e;
} candidate;

static int cmp_candidate(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->dist != y->dist) return x->dist < y->dist ? -1 : 1;
    return x->file - y->file;
}

/* Appends every entry of root for the same kernel and dtypes. */
static int collect(const json_t *root, const ts__tune_key *key, int file, candidate **c, int *n, int *cap) {
    char kh[17];
    snprintf(kh, sizeof kh, "%016llx", (unsigned long long)key->kernel_hash);
    const char *k;
    json_t *e;
    json_object_foreach(json_object_get(root, "entries"), k, e) {
        if (strcmp(str_of(e, "kernel_hash"), kh) != 0 || strcmp(str_of(e, "dtypes"), key->dtypes) != 0) continue;
        double d = bucket_distance(key, str_of(e, "bucket"));
        if (d < 0) continue;
        if (*n == *cap) {
            int nc = *cap ? *cap * 2 : 16;
            candidate *p = realloc(*c, (size_t)nc * sizeof *p);
            if (!p) return -1;
            *c = p;
            *cap = nc;
        }
        (*c)[(*n)++] = (candidate){d, file, e};
    }
    return 0;
}

static int try_candidates(candidate *c, int n, ts__tune_accept_fn accept, void *user, ts__tune_value *out) {
    if (n > 1) qsort(c, (size_t)n, sizeof *c, cmp_candidate);
    for (int i = 0; i < n; i++) {
        const char *cfg = str_of(c[i].e, "config");
        if (!accept || accept(cfg, user)) {
            value_of(c[i].e, out);
            return 1;
        }
    }
    return 0;
}

int ts__tune_db_find(const ts__tune_fp *fp, const ts__tune_key *key, int exact_only, ts__tune_accept_fn accept, void *user, ts__tune_value *out) {
    char path[TS__DB_PATH], keystr[1024];
    memset(out, 0, sizeof *out);
    if (ts__tune_db_path(fp->hash, path, sizeof path)) return TS__TUNE_MISS;
    ts__tune_key_string(key, keystr, sizeof keystr);
    int level = TS__TUNE_MISS;
    candidate *c = NULL;
    int n = 0, cap = 0;
    pthread_mutex_lock(&db_mutex);
    json_t *own = cached_db(path);
    if (own) {
        const json_t *e = json_object_get(json_object_get(own, "entries"), keystr);
        if (e && (!accept || accept(str_of(e, "config"), user))) {
            value_of(e, out);
            level = TS__TUNE_EXACT;
        }
        if (!level && !exact_only && !collect(own, key, 0, &c, &n, &cap) && try_candidates(c, n, accept, user, out)) level = TS__TUNE_NEAREST;
    }
    if (!level && !exact_only) {
        /* devices of the same backend, vendor and architecture */
        char dir[TS__DB_PATH], own_name[32];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        snprintf(own_name, sizeof own_name, "%016llx.json", (unsigned long long)fp->hash);
        const cached_dir *cd = slash ? list_dir(dir) : NULL;
        n = 0;
        for (int i = 0; cd && i < cd->n; i++) {
            if (strcmp(cd->names[i], own_name) == 0) continue;
            char other[TS__DB_PATH + 40];
            snprintf(other, sizeof other, "%s/%s", dir, cd->names[i]);
            json_t *root = cached_db(other);
            if (!root || strcmp(str_of(root, "backend"), fp->backend) != 0 || strcmp(str_of(root, "vendor"), fp->vendor) != 0 ||
                strcmp(str_of(root, "arch"), fp->arch) != 0)
                continue;
            if (collect(root, key, i, &c, &n, &cap)) break;
        }
        if (try_candidates(c, n, accept, user, out)) level = TS__TUNE_SIBLING;
    }
    pthread_mutex_unlock(&db_mutex);
    free(c);
    return level;
}

/* ---------------------------------------------------------------- store */

typedef struct db_lock {
    int fd;
} db_lock;

static ts_status lock_db(const char *path, db_lock *l) {
    char lp[TS__DB_PATH + 8];
    snprintf(lp, sizeof lp, "%.*s.lock", (int)(strlen(path) - 5), path); /* x.json -> x.lock */
    l->fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (l->fd < 0) return ts__error(TS_ERR_IO, "cannot open lock file '%s': %s", lp, strerror(errno));
    while (flock(l->fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        int e = errno;
        close(l->fd);
        return ts__error(TS_ERR_IO, "cannot lock '%s': %s", lp, strerror(e));
    }
    return TS_OK;
}

static void unlock_db(db_lock *l) {
    flock(l->fd, LOCK_UN);
    close(l->fd);
}

static json_t *new_db(const char *id, uint64_t hash, const char *backend, const char *vendor, const char *arch, const char *device) {
    char hb[17];
    snprintf(hb, sizeof hb, "%016llx", (unsigned long long)hash);
    json_t *r = json_object();
    json_object_set_new(r, "format", json_string(TS__DB_FORMAT));
    json_object_set_new(r, "version", json_integer(TS__DB_VERSION));
    json_object_set_new(r, "fingerprint", json_string(id));
    json_object_set_new(r, "fingerprint_hash", json_string(hb));
    json_object_set_new(r, "backend", json_string(backend));
    json_object_set_new(r, "vendor", json_string(vendor));
    json_object_set_new(r, "arch", json_string(arch));
    json_object_set_new(r, "device", json_string(device ? device : ""));
    json_object_set_new(r, "entries", json_object());
    return r;
}

/* The current file under the lock: its root, or a new one; a bad file is
 * reported, kept aside as <file>.bad and replaced. */
static json_t *load_for_update(const char *path, json_t *fresh) {
    int missing;
    char why[512];
    json_t *root = load_db(path, &missing, why, sizeof why);
    if (root) {
        json_decref(fresh);
        return root;
    }
    if (!missing) {
        struct stat st;
        int have = stat(path, &st) == 0;
        char bad[TS__DB_PATH + 8];
        snprintf(bad, sizeof bad, "%s.bad", path);
        pthread_mutex_lock(&db_mutex);
        report_bad(path, have ? &st : NULL, why);
        pthread_mutex_unlock(&db_mutex);
        if (rename(path, bad) != 0) unlink(path);
    }
    return fresh;
}

static ts_status write_db(const char *path, json_t *root) {
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (!text) return ts__error(TS_ERR_OUT_OF_MEMORY, "cannot serialize the tuning database");
    ts_status s = ts__write_file_atomic(path, text, strlen(text));
    free(text);
    return s;
}

static double entry_ms(const json_t *e) {
    const json_t *m = json_object_get(e, "ms");
    return json_is_number(m) ? json_number_value(m) : INFINITY;
}

ts_status ts__tune_db_store(const ts__tune_fp *fp, const ts__tune_key *key, const ts__tune_value *v, int replace) {
    char path[TS__DB_PATH], keystr[1024], bucket[512], shape[512], kh[17];
    ts_status s = ts__tune_db_path(fp->hash, path, sizeof path);
    if (s) return s;
    ts__tune_key_string(key, keystr, sizeof keystr);
    sizes_string(key, key->bucket, bucket, sizeof bucket);
    sizes_string(key, key->sizes, shape, sizeof shape);
    snprintf(kh, sizeof kh, "%016llx", (unsigned long long)key->kernel_hash);
    char date[32];
    if (v->date[0]) snprintf(date, sizeof date, "%s", v->date);
    else {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    json_t *e = json_object();
    json_object_set_new(e, "kernel", json_string(key->kernel));
    json_object_set_new(e, "kernel_hash", json_string(kh));
    json_object_set_new(e, "dtypes", json_string(key->dtypes));
    json_object_set_new(e, "bucket", json_string(bucket));
    json_object_set_new(e, "shape", json_string(shape));
    json_object_set_new(e, "config", json_string(v->config));
    json_object_set_new(e, "ms", json_real(v->ms));
    json_object_set_new(e, "default_ms", json_real(v->default_ms));
    json_object_set_new(e, "date", json_string(date));
    json_object_set_new(e, "version", json_string(v->version[0] ? v->version : TS_VERSION_STRING));
    db_lock l;
    s = lock_db(path, &l);
    if (s) {
        json_decref(e);
        return s;
    }
    json_t *root = load_for_update(path, new_db(fp->id, fp->hash, fp->backend, fp->vendor, fp->arch, fp->device));
    json_t *entries = json_object_get(root, "entries");
    json_t *old = json_object_get(entries, keystr);
    if (!replace && old && entry_ms(old) <= v->ms) json_decref(e); /* a faster entry stays */
    else json_object_set_new(entries, keystr, e);
    s = write_db(path, root);
    json_decref(root);
    unlock_db(&l);
    return s;
}

/* ---------------------------------------------------------------- list, export, import */

static int fp_matches(const json_t *root, const char *fingerprint) {
    return !fingerprint || strcmp(str_of(root, "fingerprint"), fingerprint) == 0 || strcmp(str_of(root, "fingerprint_hash"), fingerprint) == 0;
}

/* Every good database file (matching `fingerprint`), in name order; bad ones reported. */
static ts_status each_db(const char *fingerprint, int (*fn)(json_t *root, void *user), void *user) {
    char dir[TS__DB_PATH];
    ts_status s = ts__cache_dir("tuning", dir, sizeof dir);
    if (s) return s;
    DIR *d = opendir(dir);
    if (!d) return ts__error(TS_ERR_IO, "cannot read '%s': %s", dir, strerror(errno));
    char (*names)[32] = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char hb[17];
        if (!name_hash(de->d_name, hb)) continue;
        if (n == cap) {
            int nc = cap ? cap * 2 : 16;
            char(*p)[32] = realloc(names, (size_t)nc * sizeof *p);
            if (!p) break;
            names = p;
            cap = nc;
        }
        snprintf(names[n++], 32, "%s", de->d_name);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_names);
    for (int i = 0; i < n; i++) {
        char path[TS__DB_PATH + 40], why[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int missing;
        json_t *root = load_db(path, &missing, why, sizeof why);
        if (!root) {
            if (!missing) {
                struct stat st;
                int have = stat(path, &st) == 0;
                pthread_mutex_lock(&db_mutex);
                report_bad(path, have ? &st : NULL, why);
                pthread_mutex_unlock(&db_mutex);
            }
            continue;
        }
        int stop = fp_matches(root, fingerprint) ? fn(root, user) : 0;
        json_decref(root);
        if (stop) break;
    }
    free(names);
    return TS_OK;
}

typedef struct list_ctx {
    ts_tune_db_entry *e;
    int n, cap;
    int oom;
} list_ctx;

static int list_one(json_t *root, void *user) {
    list_ctx *lc = user;
    const char *k;
    json_t *e;
    json_object_foreach(json_object_get(root, "entries"), k, e) {
        if (lc->n == lc->cap) {
            int nc = lc->cap ? lc->cap * 2 : 32;
            ts_tune_db_entry *p = realloc(lc->e, (size_t)nc * sizeof *p);
            if (!p) {
                lc->oom = 1;
                return 1;
            }
            lc->e = p;
            lc->cap = nc;
        }
        ts_tune_db_entry *d = &lc->e[lc->n++];
        memset(d, 0, sizeof *d);
        snprintf(d->fingerprint, sizeof d->fingerprint, "%s", str_of(root, "fingerprint"));
        snprintf(d->fingerprint_hash, sizeof d->fingerprint_hash, "%s", str_of(root, "fingerprint_hash"));
        snprintf(d->kernel, sizeof d->kernel, "%s", str_of(e, "kernel") ? str_of(e, "kernel") : "?");
        snprintf(d->kernel_hash, sizeof d->kernel_hash, "%s", str_of(e, "kernel_hash"));
        snprintf(d->dtypes, sizeof d->dtypes, "%s", str_of(e, "dtypes"));
        snprintf(d->bucket, sizeof d->bucket, "%s", str_of(e, "bucket"));
        snprintf(d->shape, sizeof d->shape, "%s", str_of(e, "shape") ? str_of(e, "shape") : "");
        ts__tune_value v;
        value_of(e, &v);
        snprintf(d->config, sizeof d->config, "%s", v.config);
        d->ms = v.ms;
        d->default_ms = v.default_ms;
        snprintf(d->date, sizeof d->date, "%s", v.date);
        snprintf(d->version, sizeof d->version, "%s", v.version);
    }
    return 0;
}

ts_status ts_tune_db_list(const char *fingerprint, ts_tune_db_entry **out, int *n) {
    if (!out || !n) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tune_db_list: NULL output");
    *out = NULL;
    *n = 0;
    list_ctx lc = {0};
    ts_status s = each_db(fingerprint, list_one, &lc);
    if (!s && lc.oom) s = ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory listing the tuning database");
    if (s) {
        free(lc.e);
        return s;
    }
    *out = lc.e;
    *n = lc.n;
    return TS_OK;
}

typedef struct export_ctx {
    json_t *dbs;
    int count;
} export_ctx;

static int export_one(json_t *root, void *user) {
    export_ctx *ec = user;
    ec->count += (int)json_object_size(json_object_get(root, "entries"));
    json_array_append(ec->dbs, root);
    return 0;
}

ts_status ts_tune_db_export(const char *path, const char *fingerprint, int *count) {
    if (count) *count = 0;
    if (!path) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tune_db_export: path is NULL");
    export_ctx ec = {json_array(), 0};
    ts_status s = each_db(fingerprint, export_one, &ec);
    if (!s) {
        json_t *root = json_object();
        json_object_set_new(root, "format", json_string(TS__DB_EXPORT_FORMAT));
        json_object_set_new(root, "version", json_integer(TS__DB_VERSION));
        json_object_set_new(root, "tessera", json_string(TS_VERSION_STRING));
        json_object_set(root, "databases", ec.dbs);
        s = write_db(path, root);
        json_decref(root);
    }
    json_decref(ec.dbs);
    if (!s && count) *count = ec.count;
    return s;
}

static ts_status import_db(const json_t *db, int merge, int *count) {
    const char *h = str_of(db, "fingerprint_hash");
    uint64_t hash = strtoull(h, NULL, 16);
    char path[TS__DB_PATH];
    ts_status s = ts__tune_db_path(hash, path, sizeof path);
    if (s) return s;
    db_lock l;
    if ((s = lock_db(path, &l))) return s;
    json_t *fresh = new_db(str_of(db, "fingerprint"), hash, str_of(db, "backend"), str_of(db, "vendor"), str_of(db, "arch"), str_of(db, "device"));
    json_t *root = merge ? load_for_update(path, fresh) : fresh;
    json_t *entries = json_object_get(root, "entries");
    const char *k;
    json_t *e;
    json_object_foreach(json_object_get(db, "entries"), k, e) {
        json_t *old = json_object_get(entries, k);
        if (merge && old && entry_ms(old) <= entry_ms(e)) continue;
        json_object_set_new(entries, k, json_deep_copy(e));
        (*count)++;
    }
    s = write_db(path, root);
    json_decref(root);
    unlock_db(&l);
    return s;
}

ts_status ts_tune_db_import(const char *path, int merge, int *count) {
    int dummy = 0;
    if (!count) count = &dummy;
    *count = 0;
    if (!path) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_tune_db_import: path is NULL");
    char *text;
    size_t len;
    ts_status s = ts__read_file(path, TS__DB_MAX_BYTES, &text, &len);
    if (s) return s;
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    free(text);
    if (!root) return ts__error(TS_ERR_CORRUPT, "'%s': corrupt JSON at line %d column %d: %s", path, err.line, err.column, err.text);
    json_t *dbs;
    const char *fmt = str_of(root, "format");
    if (fmt && strcmp(fmt, TS__DB_EXPORT_FORMAT) == 0) {
        dbs = json_incref(json_object_get(root, "databases"));
        if (!json_is_array(dbs)) {
            json_decref(dbs);
            json_decref(root);
            return ts__error(TS_ERR_CORRUPT, "'%s': no \"databases\" array", path);
        }
    } else {
        dbs = json_array();
        json_array_append(dbs, root);
    }
    char why[512];
    size_t i;
    json_t *db;
    json_array_foreach(dbs, i, db) {
        if (!check_db(db, NULL, why, sizeof why)) {
            s = ts__error(TS_ERR_CORRUPT, "'%s': database %zu: %s; nothing imported", path, i, why);
            break;
        }
    }
    json_array_foreach(dbs, i, db) {
        if (s) break;
        s = import_db(db, merge, count);
    }
    json_decref(dbs);
    json_decref(root);
    return s;
}
