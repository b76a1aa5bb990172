/* safetensors_write.c: the canonical Safetensors writer.
 *
 * Sections: entries; the header (the reference's JSON, byte for byte);
 * streaming the data (host buffers and device tensors in bounded chunks);
 * save (atomic) and serialize (memory). */
#include "safetensors_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- entries */

typedef enum { SRC_COPY, SRC_REF, SRC_TENSOR } src_kind;

typedef struct w_entry {
    char *name;
    ts_st_dtype dtype;
    int rank;
    uint64_t *shape;
    uint64_t nbytes;
    src_kind kind;
    const void *data; /* COPY (owned) and REF */
    const ts_tensor *t;
    int base_known;   /* the tensor's storage offset is 0 (made by ts_tensor_create) */
} w_entry;

struct ts_st_writer {
    w_entry *e;
    size_t n, cap;
    char **mkey, **mval;
    size_t nmeta, capmeta;
    size_t data_align, tensor_align; /* ts_st_write_options (tensor_align 0: packed) */
};

ts_status ts_st_writer_create(ts_st_writer **out) {
    if (!out) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_writer_create: out is NULL");
    *out = ts__calloc(1, sizeof **out);
    if (!*out) return TS_ERR_OUT_OF_MEMORY;
    (*out)->data_align = 8;
    return TS_OK;
}

static int pow2_in(size_t v, size_t lo, size_t hi) { return v >= lo && v <= hi && (v & (v - 1)) == 0; }

ts_status ts_st_writer_set_options(ts_st_writer *w, const ts_st_write_options *o) {
    if (!w || !o) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_writer_set_options: NULL argument");
    if (o->size < sizeof(size_t) * 3) return ts__error(TS_ERR_VERSION, "ts_st_writer_set_options: options size %zu is too small", o->size);
    size_t da = o->data_align ? o->data_align : 8, ta = o->tensor_align > 1 ? o->tensor_align : 0;
    if (!pow2_in(da, 8, 4096)) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_writer_set_options: data_align %zu is not a power of two in 8..4096", da);
    if (ta && !pow2_in(ta, 2, 4096))
        return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_writer_set_options: tensor_align %zu is not a power of two up to 4096", ta);
    w->data_align = da > ta ? da : ta; /* so that tensors are aligned in the file too */
    w->tensor_align = ta;
    return TS_OK;
}

void ts_st_writer_destroy(ts_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].shape);
        if (w->e[i].kind == SRC_COPY) free((void *)w->e[i].data);
    }
    free(w->e);
    for (size_t i = 0; i < w->nmeta; i++) {
        free(w->mkey[i]);
        free(w->mval[i]);
    }
    free(w->mkey);
    free(w->mval);
    free(w);
}

static ts_status check_text(const char *what, const char *s) {
    size_t bad;
    if (!ts__st_utf8_valid((const uint8_t *)s, strlen(s), &bad))
        return ts__error(TS_ERR_ST_UTF8, "%s '%.*s' is not valid UTF-8 (byte %zu)", what, TS__ST_QUOTE, s, bad);
    return TS_OK;
}

static ts_status add_entry(ts_st_writer *w, const char *name, ts_st_dtype dtype, int rank, const uint64_t *shape, uint64_t nbytes,
                           w_entry **out) {
    *out = NULL;
    if (!w || !name) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_writer_add: NULL argument");
    if ((unsigned)dtype >= TS_ST_DTYPE_COUNT) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_writer_add: tensor '%.*s': invalid dtype %d", TS__ST_QUOTE, name, (int)dtype);
    if (rank < 0 || (rank > 0 && !shape))
        return ts__error(TS_ERR_RANK, "ts_st_writer_add: tensor '%.*s': rank %d without a shape", TS__ST_QUOTE, name, rank);
    ts_status s = check_text("tensor name", name);
    if (s) return s;
    if (strcmp(name, "__metadata__") == 0) return ts__error(TS_ERR_NAME, "ts_st_writer_add: '__metadata__' is reserved");
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return ts__error(TS_ERR_NAME, "ts_st_writer_add: tensor '%.*s' was already added", TS__ST_QUOTE, name);
    char what[300];
    snprintf(what, sizeof what, "ts_st_writer_add: tensor '%.*s'", TS__ST_QUOTE, name);
    uint64_t numel, want;
    if ((s = ts__st_tensor_bytes(what, dtype, rank, shape, &numel, &want))) return s;
    if (want != nbytes)
        return ts__error(TS_ERR_ST_SIZE_MISMATCH, "%s: %llu bytes given, %llu elements of %s need %llu", what, (unsigned long long)nbytes,
                         (unsigned long long)numel, ts_st_dtype_name(dtype), (unsigned long long)want);
    if (w->n == w->cap) {
        size_t nc = w->cap ? 2 * w->cap : 16;
        w_entry *p = ts__realloc_array(w->e, nc, sizeof *p);
        if (!p) return TS_ERR_OUT_OF_MEMORY;
        w->e = p;
        w->cap = nc;
    }
    w_entry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = ts__strdup(name);
    if (rank) e->shape = ts__calloc((size_t)rank, sizeof *e->shape);
    if (!e->name || (rank && !e->shape)) {
        free(e->name);
        free(e->shape);
        return TS_ERR_OUT_OF_MEMORY;
    }
    if (rank) memcpy(e->shape, shape, (size_t)rank * sizeof *shape);
    e->dtype = dtype;
    e->rank = rank;
    e->nbytes = nbytes;
    w->n++;
    *out = e;
    return TS_OK;
}

static void drop_last(ts_st_writer *w) {
    w_entry *e = &w->e[--w->n];
    free(e->name);
    free(e->shape);
}

ts_status ts_st_writer_add(ts_st_writer *w, const char *name, ts_st_dtype dtype, int rank, const uint64_t *shape, const void *data,
                           size_t nbytes) {
    if (!data && nbytes) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_writer_add: data is NULL");
    w_entry *e;
    ts_status s = add_entry(w, name, dtype, rank, shape, nbytes, &e);
    if (s) return s;
    void *copy = malloc(nbytes ? nbytes : 1);
    if (!copy) {
        drop_last(w);
        return ts__error(TS_ERR_OUT_OF_MEMORY, "ts_st_writer_add: out of memory copying %zu bytes of tensor '%.*s'", nbytes, TS__ST_QUOTE, name);
    }
    if (nbytes) memcpy(copy, data, nbytes);
    e->kind = SRC_COPY;
    e->data = copy;
    return TS_OK;
}

ts_status ts_st_writer_add_ref(ts_st_writer *w, const char *name, ts_st_dtype dtype, int rank, const uint64_t *shape, const void *data,
                               size_t nbytes) {
    if (!data && nbytes) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_writer_add_ref: data is NULL");
    w_entry *e;
    ts_status s = add_entry(w, name, dtype, rank, shape, nbytes, &e);
    if (s) return s;
    e->kind = SRC_REF;
    e->data = data;
    return TS_OK;
}

ts_status ts__st_writer_add_tensor(ts_st_writer *w, const char *name, const ts_tensor *t, ts_st_dtype as, int rank, const uint64_t *shape,
                                   int base_known) {
    if (!w || !name || !t) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_writer_add_tensor: NULL argument");
    ts_dtype td = ts_tensor_dtype(t);
    ts_st_dtype natural;
    ts_status s = ts_st_dtype_from_ts(td, &natural);
    if (s) return s;
    if (as != natural && !(td == TS_F32 && (as == TS_ST_F16 || as == TS_ST_BF16)))
        return ts__error(TS_ERR_UNSUPPORTED, "ts_st_writer_add_tensor: tensor '%.*s' is %s and cannot be saved as %s (only f32 -> F16/BF16 converts)",
                         TS__ST_QUOTE, name, ts_dtype_name(td), ts_st_dtype_name(as));
    int64_t numel = ts_tensor_numel(t);
    uint64_t tshape[TS_MAX_RANK];
    if (rank < 0) {
        rank = ts_tensor_rank(t);
        for (int d = 0; d < rank; d++) tshape[d] = (uint64_t)ts_tensor_shape(t)[d];
        shape = tshape;
    } else {
        if (rank > 0 && !shape) return ts__error(TS_ERR_RANK, "ts_st_writer_add_tensor: tensor '%.*s': rank %d without a shape", TS__ST_QUOTE, name, rank);
        uint64_t n = 1;
        for (int d = 0; d < rank; d++)
            if (__builtin_mul_overflow(n, shape[d], &n)) n = UINT64_MAX;
        if (n != (uint64_t)numel)
            return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_writer_add_tensor: tensor '%.*s': the shape given has %llu elements, the tensor %lld",
                             TS__ST_QUOTE, name, (unsigned long long)n, (long long)numel);
    }
    w_entry *e;
    if ((s = add_entry(w, name, as, rank, shape, (uint64_t)numel * (uint64_t)(ts_st_dtype_bits(as) / 8), &e))) return s;
    e->kind = SRC_TENSOR;
    e->t = t;
    e->base_known = base_known;
    return TS_OK;
}

ts_status ts_st_writer_add_tensor(ts_st_writer *w, const char *name, const ts_tensor *t, ts_st_dtype as, int rank, const uint64_t *shape) {
    return ts__st_writer_add_tensor(w, name, t, as, rank, shape, 0);
}

ts_status ts_st_writer_metadata(ts_st_writer *w, const char *key, const char *value) {
    if (!w || !key || !value) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_writer_metadata: NULL argument");
    ts_status s = check_text("metadata key", key);
    if (!s) s = check_text("metadata value", value);
    if (s) return s;
    char *v = ts__strdup(value);
    if (!v) return TS_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < w->nmeta; i++)
        if (strcmp(w->mkey[i], key) == 0) {
            free(w->mval[i]);
            w->mval[i] = v;
            return TS_OK;
        }
    if (w->nmeta == w->capmeta) {
        size_t nc = w->capmeta ? 2 * w->capmeta : 8;
        char **k = ts__realloc_array(w->mkey, nc, sizeof *k);
        if (k) w->mkey = k;
        char **vv = k ? ts__realloc_array(w->mval, nc, sizeof *vv) : NULL;
        if (vv) w->mval = vv;
        if (!k || !vv) {
            free(v);
            return TS_ERR_OUT_OF_MEMORY;
        }
        w->capmeta = nc;
    }
    if (!(w->mkey[w->nmeta] = ts__strdup(key))) {
        free(v);
        return TS_ERR_OUT_OF_MEMORY;
    }
    w->mval[w->nmeta++] = v;
    return TS_OK;
}

/* ---------------------------------------------------------------- the header */

void ts__st_json_string(ts__sb *sb, const char *s) {
    static const char hex[] = "0123456789abcdef";
    char buf[256];
    size_t k = 0;
    buf[k++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (k > sizeof buf - 8) {
            buf[k] = 0;
            ts__sb_puts(sb, buf);
            k = 0;
        }
        unsigned char c = *p;
        switch (c) {
        case '"': buf[k++] = '\\'; buf[k++] = '"'; break;
        case '\\': buf[k++] = '\\'; buf[k++] = '\\'; break;
        case '\b': buf[k++] = '\\'; buf[k++] = 'b'; break;
        case '\f': buf[k++] = '\\'; buf[k++] = 'f'; break;
        case '\n': buf[k++] = '\\'; buf[k++] = 'n'; break;
        case '\r': buf[k++] = '\\'; buf[k++] = 'r'; break;
        case '\t': buf[k++] = '\\'; buf[k++] = 't'; break;
        default:
            if (c < 0x20) {
                memcpy(buf + k, "\\u00", 4);
                k += 4;
                buf[k++] = hex[c >> 4];
                buf[k++] = hex[c & 15];
            } else {
                buf[k++] = (char)c;
            }
        }
    }
    buf[k++] = '"';
    buf[k] = 0;
    ts__sb_puts(sb, buf);
}

static int cmp_order(const void *a, const void *b) {
    const w_entry *x = *(const w_entry *const *)a, *y = *(const w_entry *const *)b;
    if (x->dtype != y->dtype) return x->dtype > y->dtype ? -1 : 1; /* descending alignment, as the reference */
    return strcmp(x->name, y->name);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Where each tensor goes: the tensor order, and the data offset at which
 * each starts (past any padding before it, with tensor_align). */
typedef struct layout {
    const w_entry **order;
    uint64_t *begin;
    char pad_prefix[64]; /* padding tensors are pad_prefix + "N" */
} layout;

static void layout_free(layout *l) {
    free((void *)l->order);
    free(l->begin);
}

/* Padding tensors are named "__padding.N"; when a tensor of the writer
 * already has that prefix, more underscores until none has. */
static void choose_pad_prefix(const ts_st_writer *w, char *prefix, size_t n) {
    for (int extra = 0;; extra++) {
        snprintf(prefix, n, "%.*s__padding.", extra < 40 ? extra : 40, "________________________________________");
        size_t k = strlen(prefix);
        int used = 0;
        for (size_t i = 0; i < w->n && !used; i++) used = strncmp(w->e[i].name, prefix, k) == 0;
        if (!used || extra >= 40) return;
    }
}

/* The header (padded) and the layout. Caller frees *header and the layout. */
static ts_status build_header(const ts_st_writer *w, char **header, size_t *hlen, layout *lay, uint64_t *data_len) {
    *header = NULL;
    memset(lay, 0, sizeof *lay);
    lay->order = ts__calloc(w->n ? w->n : 1, sizeof *lay->order);
    lay->begin = ts__calloc(w->n ? w->n : 1, sizeof *lay->begin);
    if (!lay->order || !lay->begin) return TS_ERR_OUT_OF_MEMORY;
    const w_entry **order = lay->order;
    for (size_t i = 0; i < w->n; i++) order[i] = &w->e[i];
    qsort(order, w->n, sizeof *order, cmp_order);
    if (w->tensor_align) choose_pad_prefix(w, lay->pad_prefix, sizeof lay->pad_prefix);
    ts__sb sb = {0};
    ts__sb_puts(&sb, "{");
    int first = 1;
    if (w->nmeta) {
        char **keys = ts__calloc(w->nmeta, sizeof *keys);
        if (!keys) {
            ts__sb_free(&sb);
            return TS_ERR_OUT_OF_MEMORY;
        }
        memcpy(keys, w->mkey, w->nmeta * sizeof *keys);
        qsort(keys, w->nmeta, sizeof *keys, cmp_str);
        ts__sb_puts(&sb, "\"__metadata__\":{");
        for (size_t i = 0; i < w->nmeta; i++) {
            const char *val = NULL;
            for (size_t j = 0; j < w->nmeta; j++)
                if (w->mkey[j] == keys[i]) val = w->mval[j];
            if (i) ts__sb_puts(&sb, ",");
            ts__st_json_string(&sb, keys[i]);
            ts__sb_puts(&sb, ":");
            ts__st_json_string(&sb, val);
        }
        ts__sb_puts(&sb, "}");
        free(keys);
        first = 0;
    }
    uint64_t at = 0, npad = 0;
    for (size_t k = 0; k < w->n; k++) {
        const w_entry *e = order[k];
        uint64_t pad = w->tensor_align ? (w->tensor_align - at % w->tensor_align) % w->tensor_align : 0;
        if (pad) { /* the bytes up to the next aligned offset belong to a U8 tensor: the format has no holes */
            if (!first) ts__sb_puts(&sb, ",");
            ts__sb_printf(&sb, "\"%s%llu\":{\"dtype\":\"U8\",\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}", lay->pad_prefix,
                          (unsigned long long)npad++, (unsigned long long)pad, (unsigned long long)at, (unsigned long long)(at + pad));
            at += pad;
            first = 0;
        }
        lay->begin[k] = at;
        if (!first) ts__sb_puts(&sb, ",");
        first = 0;
        ts__st_json_string(&sb, e->name);
        ts__sb_printf(&sb, ":{\"dtype\":\"%s\",\"shape\":[", ts_st_dtype_name(e->dtype));
        for (int d = 0; d < e->rank; d++) ts__sb_printf(&sb, "%s%llu", d ? "," : "", (unsigned long long)e->shape[d]);
        if (__builtin_add_overflow(at, e->nbytes, &at)) {
            ts__sb_free(&sb);
            return ts__error(TS_ERR_ST_OVERFLOW, "ts_st_writer: the data buffer's size overflows 64 bits");
        }
        ts__sb_printf(&sb, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)(at - e->nbytes), (unsigned long long)at);
    }
    ts__sb_puts(&sb, "}");
    /* spaces until the data (after the 8-byte length and the header) starts aligned */
    while (!sb.failed && (8 + sb.len) % w->data_align) ts__sb_puts(&sb, " ");
    size_t len = sb.len;
    char *h = ts__sb_finish(&sb);
    if (!h) return ts__error(TS_ERR_OUT_OF_MEMORY, "ts_st_writer: out of memory building the header");
    if (len > TS__ST_MAX_HEADER) {
        free(h);
        return ts__error(TS_ERR_ST_HEADER_TOO_LARGE, "ts_st_writer: the header would be %zu bytes, above the limit of %llu", len,
                         (unsigned long long)TS__ST_MAX_HEADER);
    }
    *header = h;
    *hlen = len;
    *data_len = at;
    return TS_OK;
}

/* ---------------------------------------------------------------- streaming the data */

ts_status ts__st_download(const ts_tensor *t, ts_st_dtype as, int base_known, size_t chunk, ts__st_sink_fn fn, void *sink) {
    ts_dtype td = ts_tensor_dtype(t);
    size_t es = ts_dtype_size(td);
    int64_t numel = ts_tensor_numel(t);
    int convert = td == TS_F32 && (as == TS_ST_F16 || as == TS_ST_BF16);
    size_t total = (size_t)numel * es;
    if (!total) return TS_OK;
    if (!chunk) chunk = TS__ST_CHUNK;
    size_t per = chunk / es;
    if (!per) per = 1;
    /* Chunked through 1-D views of the storage when the tensor is known to
     * start at storage offset 0 and be contiguous; otherwise one whole read
     * (the public API has no ranged read yet). */
    const int64_t *sh = ts_tensor_shape(t), *str = ts_tensor_strides(t);
    int contiguous = 1;
    int64_t expect = 1;
    for (int d = ts_tensor_rank(t) - 1; d >= 0; d--) {
        if (sh[d] != 1 && str[d] != expect) contiguous = 0;
        expect *= sh[d];
    }
    int chunked = base_known && contiguous && (size_t)numel > per;
    size_t step = chunked ? per : (size_t)numel;
    void *buf = malloc(step * es);
    if (!buf) return ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory for a %zu-byte download buffer", step * es);
    ts_status s = TS_OK;
    for (size_t at = 0; at < (size_t)numel && !s; at += step) {
        size_t n = (size_t)numel - at < step ? (size_t)numel - at : step;
        if (chunked) {
            ts_tensor *v = NULL;
            int64_t vshape = (int64_t)n, vstride = 1;
            s = ts_tensor_view((ts_tensor *)t, 1, &vshape, &vstride, (int64_t)at, &v);
            if (!s) s = ts_tensor_read(v, buf, n * es);
            ts_tensor_destroy(v);
        } else {
            s = ts_tensor_read(t, buf, n * es);
        }
        if (s) break;
        if (convert) {
            const float *src = buf;
            uint16_t *dst = buf; /* in place: element i is written after element i is read */
            for (size_t i = 0; i < n; i++) dst[i] = as == TS_ST_F16 ? ts__float_to_half(src[i]) : ts__float_to_bf16(src[i]);
            s = fn(sink, buf, n * 2);
        } else {
            s = fn(sink, buf, n * es);
        }
    }
    free(buf);
    return s;
}

static ts_status write_data(const ts_st_writer *w, const layout *lay, ts__st_sink_fn fn, void *sink) {
    static const uint8_t zeros[4096];
    uint64_t at = 0;
    for (size_t k = 0; k < w->n; k++) {
        const w_entry *e = lay->order[k];
        ts_status s = lay->begin[k] > at ? fn(sink, zeros, (size_t)(lay->begin[k] - at)) : TS_OK; /* padding: less than 4096 */
        if (s) return s;
        if (e->kind == SRC_TENSOR) {
            s = ts__st_download(e->t, e->dtype, e->base_known, TS__ST_CHUNK, fn, sink);
            if (s) ts__error_prefix("saving tensor '%.*s'", TS__ST_QUOTE, e->name);
        } else {
            s = e->nbytes ? fn(sink, e->data, (size_t)e->nbytes) : TS_OK;
        }
        if (s) return s;
        at = lay->begin[k] + e->nbytes;
    }
    return TS_OK;
}

/* ---------------------------------------------------------------- save and serialize */

static int open_dir_default(const char *path) { return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC); }

ts__st_io ts__st_io_calls = {mkstemp, write, fchmod, fsync, close, rename, open_dir_default};

typedef struct fd_sink {
    int fd;
    const char *path;
} fd_sink;

static ts_status fd_write(void *sink, const void *p, size_t n) {
    fd_sink *f = sink;
    const char *c = p;
    while (n) {
        ssize_t k = ts__st_io_calls.write(f->fd, c, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return ts__error(TS_ERR_IO, "cannot write '%s': %s", f->path, strerror(errno));
        }
        if (k == 0) return ts__error(TS_ERR_IO, "cannot write '%s': no progress (device full?)", f->path);
        c += k;
        n -= (size_t)k;
    }
    return TS_OK;
}

typedef struct mem_sink {
    char *p;
    size_t at, cap;
} mem_sink;

static ts_status mem_write(void *sink, const void *p, size_t n) {
    mem_sink *m = sink;
    if (n > m->cap - m->at) return ts__error(TS_ERR_STATE, "ts_st_writer_serialize: data longer than announced");
    memcpy(m->p + m->at, p, n);
    m->at += n;
    return TS_OK;
}

static void le64(uint8_t *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

ts_status ts_st_writer_save(ts_st_writer *w, const char *path) {
    if (!w || !path) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_writer_save: NULL argument");
    char *h;
    size_t hlen;
    layout lay;
    uint64_t dlen;
    ts_status s = build_header(w, &h, &hlen, &lay, &dlen);
    if (s) {
        layout_free(&lay);
        return s;
    }
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        free(h);
        layout_free(&lay);
        return ts__error(TS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    /* Nothing lost on write: the bytes go to a temporary file in the same
     * folder, which is synced to disk before it replaces `path` by rename
     * (atomic on POSIX), and the folder is synced after. A failure or a crash
     * at any step leaves `path` as it was (the old file, or none); a failure
     * removes the temporary file. */
    int fd = ts__st_io_calls.mkstemp(tmp);
    if (fd < 0) {
        s = ts__error(TS_ERR_IO, "cannot create a temporary file next to '%s': %s", path, strerror(errno));
        goto out;
    }
    fd_sink sink = {fd, tmp};
    uint8_t len8[8];
    le64(len8, hlen);
    s = fd_write(&sink, len8, 8);
    if (!s) s = fd_write(&sink, h, hlen);
    if (!s) s = write_data(w, &lay, fd_write, &sink);
    if (!s && ts__st_io_calls.fchmod(fd, 0644) != 0) s = ts__error(TS_ERR_IO, "cannot set the mode of '%s': %s", tmp, strerror(errno));
    if (!s && ts__st_io_calls.fsync(fd) != 0) s = ts__error(TS_ERR_IO, "cannot sync '%s' to disk: %s", tmp, strerror(errno));
    if (ts__st_io_calls.close(fd) != 0 && !s) s = ts__error(TS_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    if (!s && ts__st_io_calls.rename(tmp, path) != 0) s = ts__error(TS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    if (s) {
        unlink(tmp);
        goto out;
    }
    /* the rename is only durable once the folder is synced */
    char *dir = ts__strdup(path);
    if (!dir) {
        s = TS_ERR_OUT_OF_MEMORY;
        goto out;
    }
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    int dfd = ts__st_io_calls.open_dir(dir);
    if (dfd < 0 || ts__st_io_calls.fsync(dfd) != 0)
        s = ts__error(TS_ERR_IO, "'%s' is written and renamed, but its folder '%s' could not be synced: %s", path, dir, strerror(errno));
    if (dfd >= 0) ts__st_io_calls.close(dfd);
    free(dir);
out:
    free(tmp);
    free(h);
    layout_free(&lay);
    return s;
}

ts_status ts_st_writer_serialize(ts_st_writer *w, void **out, size_t *n) {
    if (!out || !n) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_writer_serialize: NULL argument");
    *out = NULL;
    *n = 0;
    if (!w) return ts__error(TS_ERR_INVALID_ARGUMENT, "ts_st_writer_serialize: writer is NULL");
    char *h;
    size_t hlen;
    layout lay;
    uint64_t dlen;
    ts_status s = build_header(w, &h, &hlen, &lay, &dlen);
    if (s) {
        layout_free(&lay);
        return s;
    }
    if (dlen > (uint64_t)SIZE_MAX - 8 - hlen) {
        free(h);
        layout_free(&lay);
        return ts__error(TS_ERR_LIMIT, "ts_st_writer_serialize: %llu data bytes do not fit in memory", (unsigned long long)dlen);
    }
    mem_sink m = {malloc(8 + hlen + (size_t)dlen), 0, 8 + hlen + (size_t)dlen};
    if (!m.p) s = ts__error(TS_ERR_OUT_OF_MEMORY, "ts_st_writer_serialize: out of memory for %zu bytes", m.cap);
    if (!s) {
        le64((uint8_t *)m.p, hlen);
        memcpy(m.p + 8, h, hlen);
        m.at = 8 + hlen;
        s = write_data(w, &lay, mem_write, &m);
    }
    free(h);
    layout_free(&lay);
    if (s) {
        free(m.p);
        return s;
    }
    *out = m.p;
    *n = m.cap;
    return TS_OK;
}
