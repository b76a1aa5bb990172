/* test_safetensors_upload.c: Safetensors tensors to device tensors on the
 * "ref" backend and back (formats/safetensors_upload.c): every mapped dtype,
 * bf16/f16 -> f32 conversion, chunking (many small chunks, and tensors larger
 * than the default chunk), scalars, errors, whole files, collections, and
 * saving a set back byte for byte. */
#include <criterion/criterion.h>

#include "tessera_safetensors.h"
#include "ts_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ts_context *ref_ctx(void) {
    ts_context *ctx = NULL;
    cr_assert_eq(ts_context_create("ref", 0, &ctx), TS_OK, "%s", ts_last_error());
    return ctx;
}

static void fill(unsigned char *b, size_t n, unsigned seed) {
    for (size_t k = 0; k < n; k++) {
        seed = seed * 1103515245u + 12345u;
        b[k] = (unsigned char)(seed >> 16);
    }
}

/* A file image with one tensor of each mapped dtype (BOOL holds 0/1). Caller frees. */
static void *mapped_file(size_t *n) {
    const ts_st_dtype dts[] = {TS_ST_F32, TS_ST_F16, TS_ST_BF16, TS_ST_F64, TS_ST_I32, TS_ST_I64, TS_ST_U8, TS_ST_BOOL};
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        unsigned char buf[8 * 5 * 7];
        size_t nb = 35 * (size_t)ts_st_dtype_bits(dts[i]) / 8;
        fill(buf, nb, (unsigned)i + 1);
        if (dts[i] == TS_ST_BOOL)
            for (size_t k = 0; k < nb; k++) buf[k] &= 1;
        if (dts[i] == TS_ST_F16 || dts[i] == TS_ST_BF16) /* finite values only, so f32 round trips are exact */
            for (size_t k = 1; k < nb; k += 2) buf[k] &= 0x3f;
        char name[32];
        snprintf(name, sizeof name, "t_%s", ts_st_dtype_name(dts[i]));
        cr_assert_eq(ts_st_writer_add(w, name, dts[i], 2, (uint64_t[]){5, 7}, buf, nb), TS_OK);
    }
    cr_assert_eq(ts_st_writer_add(w, "scalar", TS_ST_F32, 0, NULL, &(float){2.5f}, 4), TS_OK);
    cr_assert_eq(ts_st_writer_metadata(w, "format", "pt"), TS_OK);
    void *buf;
    cr_assert_eq(ts_st_writer_serialize(w, &buf, n), TS_OK);
    ts_st_writer_destroy(w);
    return buf;
}

Test(st_upload, every_mapped_dtype_raw) {
    ts_context *ctx = ref_ctx();
    size_t n;
    void *img = mapped_file(&n);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(img, n, &f), TS_OK);
    ts_st_upload_options o = TS_ST_UPLOAD_OPTIONS_INIT;
    o.convert = TS_ST_CONVERT_NEVER;
    for (size_t i = 0; i < ts_st_count(f); i++) {
        ts_st_tensor_info info;
        ts_st_tensor_at(f, i, &info);
        ts_tensor *t = NULL;
        cr_assert_eq(ts_st_upload(ctx, &info, &o, &t), TS_OK, "%s: %s", info.name, ts_last_error());
        ts_dtype want;
        ts_st_dtype_to_ts(info.dtype, &want);
        cr_expect_eq(ts_tensor_dtype(t), want, "%s", info.name);
        cr_expect_eq(ts_tensor_numel(t), (int64_t)info.numel);
        void *back = malloc(info.nbytes);
        cr_assert_eq(ts_tensor_read(t, back, info.nbytes), TS_OK);
        cr_expect_eq(memcmp(back, info.data, info.nbytes), 0, "%s differs after upload", info.name);
        free(back);
        if (info.rank == 0) {
            cr_expect_eq(ts_tensor_rank(t), 1);
            cr_expect_eq(ts_tensor_shape(t)[0], 1);
        } else {
            cr_expect_eq(ts_tensor_rank(t), 2);
            cr_expect_eq(ts_tensor_shape(t)[1], 7);
        }
        ts_tensor_destroy(t);
    }
    ts_st_close(f);
    free(img);
    ts_context_destroy(ctx);
}

Test(st_upload, half_and_bf16_convert_to_f32_in_small_chunks) {
    ts_context *ctx = ref_ctx();
    uint16_t h[1000], b[1000];
    for (int i = 0; i < 1000; i++) {
        h[i] = ts__float_to_half((float)(i - 500) * 0.25f);
        b[i] = ts__float_to_bf16((float)(i * i) - 7.5f);
    }
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    cr_assert_eq(ts_st_writer_add_ref(w, "h", TS_ST_F16, 2, (uint64_t[]){10, 100}, h, sizeof h), TS_OK);
    cr_assert_eq(ts_st_writer_add_ref(w, "b", TS_ST_BF16, 1, (uint64_t[]){1000}, b, sizeof b), TS_OK);
    void *img;
    size_t n;
    cr_assert_eq(ts_st_writer_serialize(w, &img, &n), TS_OK);
    ts_st_writer_destroy(w);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(img, n, &f), TS_OK);
    ts_st_upload_options o = TS_ST_UPLOAD_OPTIONS_INIT;
    o.convert = TS_ST_CONVERT_ALWAYS;
    o.chunk_bytes = 100; /* 25 floats per chunk: many chunks, one partial */
    ts_st_tensor_info info;
    ts_tensor *t;
    float out[1000];
    cr_assert_eq(ts_st_find(f, "h", &info), TS_OK);
    cr_assert_eq(ts_st_upload(ctx, &info, &o, &t), TS_OK, "%s", ts_last_error());
    cr_expect_eq(ts_tensor_dtype(t), TS_F32);
    cr_assert_eq(ts_tensor_read(t, out, sizeof out), TS_OK);
    for (int i = 0; i < 1000; i++) cr_expect_eq(out[i], (float)(i - 500) * 0.25f, "h[%d]", i);
    ts_tensor_destroy(t);
    cr_assert_eq(ts_st_find(f, "b", &info), TS_OK);
    cr_assert_eq(ts_st_upload(ctx, &info, &o, &t), TS_OK, "%s", ts_last_error());
    cr_assert_eq(ts_tensor_read(t, out, sizeof out), TS_OK);
    for (int i = 0; i < 1000; i++) cr_expect_eq(out[i], ts__bf16_to_float(b[i]), "b[%d]", i);
    ts_tensor_destroy(t);
    /* raw upload in chunks of 100 bytes too */
    o.convert = TS_ST_CONVERT_NEVER;
    cr_assert_eq(ts_st_upload(ctx, &info, &o, &t), TS_OK, "%s", ts_last_error());
    cr_expect_eq(ts_tensor_dtype(t), TS_BF16);
    uint16_t back[1000];
    cr_assert_eq(ts_tensor_read(t, back, sizeof back), TS_OK);
    cr_expect_eq(memcmp(back, b, sizeof b), 0);
    ts_tensor_destroy(t);
    ts_st_close(f);
    free(img);
    ts_context_destroy(ctx);
}

Test(st_upload, unsupported_dtype_and_rank_are_clear_errors) {
    ts_context *ctx = ref_ctx();
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    unsigned char z[64] = {0};
    cr_assert_eq(ts_st_writer_add(w, "e8m0", TS_ST_F8_E8M0, 1, (uint64_t[]){4}, z, 4), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "r5", TS_ST_U8, 5, (uint64_t[]){1, 1, 1, 1, 2}, z, 2), TS_OK);
    void *img;
    size_t n;
    cr_assert_eq(ts_st_writer_serialize(w, &img, &n), TS_OK);
    ts_st_writer_destroy(w);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(img, n, &f), TS_OK);
    ts_st_tensor_info info;
    ts_tensor *t = (ts_tensor *)1;
    cr_assert_eq(ts_st_find(f, "e8m0", &info), TS_OK);
    cr_expect_eq(ts_st_upload(ctx, &info, NULL, &t), TS_ERR_UNSUPPORTED);
    cr_expect_null(t);
    cr_expect(strstr(ts_last_error(), "e8m0") && strstr(ts_last_error(), "F8_E8M0"), "%s", ts_last_error());
    cr_assert_eq(ts_st_find(f, "r5", &info), TS_OK);
    cr_expect_eq(ts_st_upload(ctx, &info, NULL, &t), TS_ERR_UNSUPPORTED);
    cr_expect(strstr(ts_last_error(), "r5") && strstr(ts_last_error(), "rank"), "%s", ts_last_error());
    ts_st_tensor_set *set = (ts_st_tensor_set *)1;
    cr_expect_eq(ts_st_upload_file(ctx, f, NULL, &set), TS_ERR_UNSUPPORTED);
    cr_expect_null(set);
    cr_expect_eq(ts_st_upload(NULL, &info, NULL, &t), TS_ERR_INVALID_ARGUMENT);
    cr_expect_eq(ts_st_upload(ctx, NULL, NULL, &t), TS_ERR_INVALID_ARGUMENT);
    ts_st_close(f);
    free(img);
    ts_context_destroy(ctx);
}

static char *tmpfile_path(const char *name) {
    static char dir[128];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/st-upload-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
    }
    char *p = malloc(300);
    snprintf(p, 300, "%s/%s", dir, name);
    return p;
}

static void *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc(*n ? *n : 1);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

Test(st_upload, whole_file_and_save_back_byte_for_byte) {
    ts_context *ctx = ref_ctx();
    size_t n;
    void *img = mapped_file(&n);
    char *src = tmpfile_path("src.safetensors"), *dst = tmpfile_path("dst.safetensors"), *dst2 = tmpfile_path("dst2.safetensors");
    FILE *fp = fopen(src, "wb");
    fwrite(img, 1, n, fp);
    fclose(fp);
    ts_st_file *f;
    cr_assert_eq(ts_st_open(src, &f), TS_OK);
    for (int mode = 0; mode < 2; mode++) {
        ts_st_upload_options o = TS_ST_UPLOAD_OPTIONS_INIT;
        o.convert = mode ? TS_ST_CONVERT_ALWAYS : TS_ST_CONVERT_NEVER;
        ts_st_tensor_set *set;
        cr_assert_eq(ts_st_upload_file(ctx, f, &o, &set), TS_OK, "%s", ts_last_error());
        cr_expect_eq(ts_st_tensor_set_count(set), ts_st_count(f));
        cr_expect_str_eq(ts_st_tensor_set_name(set, 0), "scalar"); /* name order */
        ts_tensor *bt = ts_st_tensor_set_find(set, "t_BF16");
        cr_assert_not_null(bt);
        cr_expect_eq(ts_tensor_dtype(bt), mode ? TS_F32 : TS_BF16);
        cr_expect_null(ts_st_tensor_set_find(set, "nope"));
        const uint64_t *shape;
        cr_expect_eq(ts_st_tensor_set_file_shape(set, 0, &shape), 0);
        cr_expect_eq(ts_st_tensor_set_file_dtype(set, 0), TS_ST_F32);
        const char *out = mode ? dst2 : dst;
        cr_assert_eq(ts_st_save_set(set, f, out), TS_OK, "%s", ts_last_error());
        size_t m;
        void *back = slurp(out, &m);
        cr_expect_eq(m, n, "saved %zu bytes, source %zu", m, n);
        cr_expect(m == n && memcmp(back, img, n) == 0, "saved file differs from the source (mode %d)", mode);
        free(back);
        ts_st_tensor_set_destroy(set);
    }
    ts_st_tensor_set_destroy(NULL);
    ts_st_close(f);
    unlink(src);
    unlink(dst);
    unlink(dst2);
    free(src);
    free(dst);
    free(dst2);
    free(img);
    ts_context_destroy(ctx);
}

Test(st_upload, tensors_larger_than_a_chunk_round_trip) {
    ts_context *ctx = ref_ctx();
    size_t count = (size_t)3 << 20; /* 12 MiB of f32: three default chunks */
    float *big = malloc(count * sizeof *big);
    for (size_t i = 0; i < count; i++) big[i] = (float)(i % 65521) - 1000.0f;
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    cr_assert_eq(ts_st_writer_add_ref(w, "big", TS_ST_F32, 2, (uint64_t[]){3, 1 << 20}, big, count * 4), TS_OK);
    char *src = tmpfile_path("big.safetensors"), *dst = tmpfile_path("big2.safetensors");
    cr_assert_eq(ts_st_writer_save(w, src), TS_OK);
    ts_st_writer_destroy(w);
    ts_st_file *f;
    cr_assert_eq(ts_st_open(src, &f), TS_OK);
    ts_st_tensor_set *set;
    cr_assert_eq(ts_st_upload_file(ctx, f, NULL, &set), TS_OK, "%s", ts_last_error());
    float *back = malloc(count * sizeof *back);
    cr_assert_eq(ts_tensor_read(ts_st_tensor_set_tensor(set, 0), back, count * 4), TS_OK);
    cr_expect_eq(memcmp(back, big, count * 4), 0);
    cr_assert_eq(ts_st_save_set(set, NULL, dst), TS_OK, "%s", ts_last_error());
    ts_st_file *g;
    cr_assert_eq(ts_st_open(dst, &g), TS_OK);
    ts_st_tensor_info info;
    cr_assert_eq(ts_st_find(g, "big", &info), TS_OK);
    cr_expect_eq(memcmp(info.data, big, count * 4), 0);
    ts_st_close(g);
    ts_st_tensor_set_destroy(set);
    ts_st_close(f);
    unlink(src);
    unlink(dst);
    free(src);
    free(dst);
    free(back);
    free(big);
    ts_context_destroy(ctx);
}

Test(st_upload, writer_takes_device_tensors) {
    ts_context *ctx = ref_ctx();
    ts_tensor *t;
    cr_assert_eq(ts_tensor_create(ctx, TS_F32, 2, (int64_t[]){2, 3}, &t), TS_OK);
    float v[6] = {1, -2, 3.5f, 65504, 1e-3f, 0};
    cr_assert_eq(ts_tensor_write(t, v, sizeof v), TS_OK);
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    cr_assert_eq(ts_st_writer_add_tensor(w, "f32", t, TS_ST_F32, -1, NULL), TS_OK);
    cr_assert_eq(ts_st_writer_add_tensor(w, "as_f16", t, TS_ST_F16, -1, NULL), TS_OK);
    cr_assert_eq(ts_st_writer_add_tensor(w, "flat_bf16", t, TS_ST_BF16, 1, (uint64_t[]){6}), TS_OK);
    cr_expect_eq(ts_st_writer_add_tensor(w, "bad", t, TS_ST_I32, -1, NULL), TS_ERR_UNSUPPORTED);
    cr_expect_eq(ts_st_writer_add_tensor(w, "bad", t, TS_ST_F32, 1, (uint64_t[]){5}), TS_ERR_INVALID_ARGUMENT);
    void *img;
    size_t n;
    cr_assert_eq(ts_st_writer_serialize(w, &img, &n), TS_OK, "%s", ts_last_error());
    ts_st_writer_destroy(w);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(img, n, &f), TS_OK);
    ts_st_tensor_info info;
    cr_assert_eq(ts_st_find(f, "f32", &info), TS_OK);
    cr_expect_eq(memcmp(info.data, v, sizeof v), 0);
    cr_assert_eq(ts_st_find(f, "as_f16", &info), TS_OK);
    cr_expect_eq(info.dtype, TS_ST_F16);
    for (int i = 0; i < 6; i++) {
        uint16_t h;
        memcpy(&h, (const char *)info.data + 2 * i, 2);
        cr_expect_eq(h, ts__float_to_half(v[i]));
    }
    cr_assert_eq(ts_st_find(f, "flat_bf16", &info), TS_OK);
    cr_expect_eq(info.rank, 1);
    ts_st_close(f);
    free(img);
    ts_tensor_destroy(t);
    ts_context_destroy(ctx);
}

Test(st_upload, collection_upload) {
    ts_context *ctx = ref_ctx();
    char *s1 = tmpfile_path("m-1.safetensors"), *s2 = tmpfile_path("m-2.safetensors"), *idx = tmpfile_path("model.safetensors.index.json");
    float a[2] = {1, 2}, b[3] = {3, 4, 5};
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "a", TS_ST_F32, 1, (uint64_t[]){2}, a, 8), TS_OK);
    cr_assert_eq(ts_st_writer_save(w, s1), TS_OK);
    ts_st_writer_destroy(w);
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    cr_assert_eq(ts_st_writer_add(w, "b", TS_ST_F32, 1, (uint64_t[]){3}, b, 12), TS_OK);
    cr_assert_eq(ts_st_writer_save(w, s2), TS_OK);
    ts_st_writer_destroy(w);
    FILE *fp = fopen(idx, "w");
    fprintf(fp, "{\"metadata\":{\"total_size\":20},\"weight_map\":{\"a\":\"m-1.safetensors\",\"b\":\"m-2.safetensors\"}}\n");
    fclose(fp);
    ts_st_collection *c;
    cr_assert_eq(ts_st_collection_open(idx, &c), TS_OK, "%s", ts_last_error());
    ts_st_tensor_set *set;
    cr_assert_eq(ts_st_upload_collection(ctx, c, NULL, &set), TS_OK, "%s", ts_last_error());
    cr_expect_eq(ts_st_tensor_set_count(set), 2);
    float out[3];
    cr_assert_eq(ts_tensor_read(ts_st_tensor_set_find(set, "b"), out, 12), TS_OK);
    cr_expect_eq(memcmp(out, b, 12), 0);
    ts_st_tensor_set_destroy(set);
    ts_st_collection_close(c);
    unlink(s1);
    unlink(s2);
    unlink(idx);
    free(s1);
    free(s2);
    free(idx);
    ts_context_destroy(ctx);
}

/* Every one of the 65,536 f16 and bf16 bit patterns converts, on the
 * vectorised upload path, to the bits of the scalar conversion (NaN
 * payloads, infinities, subnormals, signed zeros), at odd offsets too. */
Test(st_upload, conversions_match_the_scalar_ones_bit_for_bit) {
    ts_context *ctx = ref_ctx();
    for (int half = 0; half < 2; half++) {
        ts_st_writer *w;
        cr_assert_eq(ts_st_writer_create(&w), TS_OK);
        uint16_t *all = malloc(65536 * 2 + 2);
        for (uint32_t k = 0; k < 65536; k++) all[k] = (uint16_t)k;
        ts_st_dtype dt = half ? TS_ST_F16 : TS_ST_BF16;
        cr_assert_eq(ts_st_writer_add(w, "odd", TS_ST_U8, 1, (uint64_t[]){1}, "x", 1), TS_OK); /* puts the others at odd offsets */
        cr_assert_eq(ts_st_writer_add(w, "all", dt, 1, (uint64_t[]){65536}, all, 65536 * 2), TS_OK);
        cr_assert_eq(ts_st_writer_add(w, "tail", dt, 1, (uint64_t[]){13}, all + 1000, 26), TS_OK);
        void *img;
        size_t n;
        cr_assert_eq(ts_st_writer_serialize(w, &img, &n), TS_OK);
        ts_st_writer_destroy(w);
        ts_st_file *f;
        cr_assert_eq(ts_st_open_memory(img, n, &f), TS_OK);
        ts_st_upload_options o = TS_ST_UPLOAD_OPTIONS_INIT;
        o.convert = TS_ST_CONVERT_ALWAYS;
        o.chunk_bytes = 4096 + 12; /* chunks that do not divide the tensor */
        const char *names[2] = {"all", "tail"};
        for (int t = 0; t < 2; t++) {
            ts_st_tensor_info info;
            cr_assert_eq(ts_st_find(f, names[t], &info), TS_OK);
            ts_tensor *dev;
            cr_assert_eq(ts_st_upload(ctx, &info, &o, &dev), TS_OK, "%s", ts_last_error());
            float *back = malloc(info.numel * 4);
            cr_assert_eq(ts_tensor_read(dev, back, info.numel * 4), TS_OK);
            for (size_t k = 0; k < info.numel; k++) {
                uint16_t h;
                memcpy(&h, (const uint8_t *)info.data + 2 * k, 2);
                float want = half ? ts__half_to_float(h) : ts__bf16_to_float(h);
                uint32_t a, b;
                memcpy(&a, &back[k], 4);
                memcpy(&b, &want, 4);
                if (a != b) {
                    cr_expect_eq(a, b, "%s 0x%04x: 0x%08x, scalar 0x%08x", half ? "f16" : "bf16", h, a, b);
                    break;
                }
            }
            free(back);
            ts_tensor_destroy(dev);
        }
        ts_st_close(f);
        free(img);
        free(all);
    }
    ts_context_destroy(ctx);
}

/* Parallel uploads give the serial path's tensors, and its error. */
Test(st_upload, threads_give_the_serial_result) {
    ts_context *ctx = ref_ctx();
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    static unsigned char data[37][3000];
    for (int i = 0; i < 37; i++) {
        fill(data[i], sizeof data[i], (unsigned)i + 7);
        for (size_t k = 1; k < sizeof data[i]; k += 2) data[i][k] &= 0x3f;
        char name[16];
        snprintf(name, sizeof name, "t%02d", i);
        ts_st_dtype dt = i % 3 == 0 ? TS_ST_F32 : i % 3 == 1 ? TS_ST_BF16 : TS_ST_F16;
        size_t es = (size_t)ts_st_dtype_bits(dt) / 8;
        cr_assert_eq(ts_st_writer_add(w, name, dt, 1, (uint64_t[]){sizeof data[i] / es}, data[i], sizeof data[i]), TS_OK);
    }
    void *img;
    size_t n;
    cr_assert_eq(ts_st_writer_serialize(w, &img, &n), TS_OK);
    ts_st_writer_destroy(w);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(img, n, &f), TS_OK);
    ts_st_upload_options o = TS_ST_UPLOAD_OPTIONS_INIT;
    o.convert = TS_ST_CONVERT_ALWAYS;
    o.chunk_bytes = 1000;
    o.threads = 1;
    ts_st_tensor_set *serial, *par;
    cr_assert_eq(ts_st_upload_file(ctx, f, &o, &serial), TS_OK, "%s", ts_last_error());
    int counts[] = {2, 4, 7, 0};
    for (int c = 0; c < 4; c++) {
        o.threads = counts[c];
        cr_assert_eq(ts_st_upload_file(ctx, f, &o, &par), TS_OK, "%s", ts_last_error());
        cr_assert_eq(ts_st_tensor_set_count(par), ts_st_tensor_set_count(serial));
        for (size_t i = 0; i < ts_st_tensor_set_count(par); i++) {
            cr_expect_str_eq(ts_st_tensor_set_name(par, i), ts_st_tensor_set_name(serial, i));
            ts_tensor *a = ts_st_tensor_set_tensor(serial, i), *b = ts_st_tensor_set_tensor(par, i);
            size_t nb = (size_t)ts_tensor_numel(a) * ts_dtype_size(ts_tensor_dtype(a));
            cr_assert_eq(ts_tensor_dtype(a), ts_tensor_dtype(b));
            void *x = malloc(nb), *y = malloc(nb);
            ts_tensor_read(a, x, nb);
            ts_tensor_read(b, y, nb);
            cr_expect_eq(memcmp(x, y, nb), 0, "threads %d: %s differs", counts[c], ts_st_tensor_set_name(par, i));
            free(x);
            free(y);
        }
        ts_st_tensor_set_destroy(par);
    }
    /* OpenCL (PoCL here), with threads, against the serial ref upload */
    ts_context *cl = NULL;
    if (ts_backend_available("opencl", NULL) && ts_context_create("opencl", 0, &cl) == TS_OK) {
        o.threads = 4;
        cr_assert_eq(ts_st_upload_file(cl, f, &o, &par), TS_OK, "%s", ts_last_error());
        for (size_t i = 0; i < ts_st_tensor_set_count(par); i++) {
            ts_tensor *a = ts_st_tensor_set_tensor(serial, i), *b = ts_st_tensor_set_tensor(par, i);
            size_t nb = (size_t)ts_tensor_numel(a) * ts_dtype_size(ts_tensor_dtype(a));
            void *x = malloc(nb), *y = malloc(nb);
            ts_tensor_read(a, x, nb);
            cr_assert_eq(ts_tensor_read(b, y, nb), TS_OK, "%s", ts_last_error());
            cr_expect_eq(memcmp(x, y, nb), 0, "opencl: %s differs", ts_st_tensor_set_name(par, i));
            free(x);
            free(y);
        }
        ts_st_tensor_set_destroy(par);
        ts_context_destroy(cl);
    }
    ts_st_tensor_set_destroy(serial);
    ts_st_close(f);
    free(img);
    /* an old caller's smaller options struct still works (serial or not, same result) */
    struct { size_t size; ts_st_convert convert; size_t chunk_bytes; } old = {sizeof old, TS_ST_CONVERT_ALWAYS, 0};
    img = mapped_file(&n);
    cr_assert_eq(ts_st_open_memory(img, n, &f), TS_OK);
    cr_expect_eq(ts_st_upload_file(ctx, f, (const ts_st_upload_options *)&old, &par), TS_OK, "%s", ts_last_error());
    ts_st_tensor_set_destroy(par);
    ts_st_close(f);
    free(img);
    ts_context_destroy(ctx);
}

Test(st_upload, threads_report_the_first_failure_in_name_order) {
    ts_context *ctx = ref_ctx();
    ts_st_writer *w;
    cr_assert_eq(ts_st_writer_create(&w), TS_OK);
    static unsigned char buf[64];
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%02d", i);
        /* U16 has no runtime dtype: t05 and t13 fail */
        ts_st_dtype dt = i == 5 || i == 13 ? TS_ST_U16 : TS_ST_U8;
        cr_assert_eq(ts_st_writer_add(w, name, dt, 1, (uint64_t[]){dt == TS_ST_U16 ? 32 : 64}, buf, 64), TS_OK);
    }
    void *img;
    size_t n;
    cr_assert_eq(ts_st_writer_serialize(w, &img, &n), TS_OK);
    ts_st_writer_destroy(w);
    ts_st_file *f;
    cr_assert_eq(ts_st_open_memory(img, n, &f), TS_OK);
    for (int th = 1; th <= 8; th *= 2) {
        ts_st_upload_options o = TS_ST_UPLOAD_OPTIONS_INIT;
        o.threads = th;
        ts_st_tensor_set *set = (ts_st_tensor_set *)1;
        cr_expect_eq(ts_st_upload_file(ctx, f, &o, &set), TS_ERR_UNSUPPORTED, "threads %d", th);
        cr_expect_null(set);
        cr_expect(strstr(ts_last_error(), "t05") && !strstr(ts_last_error(), "t13"), "threads %d: %s", th, ts_last_error());
    }
    ts_st_close(f);
    free(img);
    ts_context_destroy(ctx);
}

/* ---------------------------------------------------------------- zero copy */

/* Mappings of `path` in this process (/proc/self/maps), an observation
 * independent of the code under test. */
static int mappings_of(const char *path) {
    FILE *m = fopen("/proc/self/maps", "r");
    if (!m) return -1;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, m))
        if (strstr(line, path)) n++;
    fclose(m);
    return n;
}

/* Zero copy on the backends that work on host memory (ref, and PoCL where
 * present): tensors of 64 KiB or more, at addresses that are not 128-byte
 * aligned in the file, become private mappings of the file (seen in
 * /proc/self/maps), hold the file's bytes, outlive ts_st_close, take a
 * kernel's writes without changing the file on disk; zero_copy=-1 copies
 * and gives the same values; small and misaligned tensors are copied. */
Test(st_upload, zero_copy_maps_the_file_and_never_writes_it) {
    const size_t nx = 70001, ns = 100;
    float *x = malloc(nx * sizeof *x), *s = malloc(ns * sizeof *s);
    for (size_t i = 0; i < nx; i++) x[i] = (float)(i % 1000) * 0.25f - 7.0f;
    for (size_t i = 0; i < ns; i++) s[i] = (float)i;
    /* Written by hand, so that tensors sit where the test needs them (our
     * writer orders by dtype): a_pad puts b_x 4 bytes past an 8-byte
     * boundary; c_odd puts d_mis 3 bytes past a 4-byte one; e_pad realigns. */
    const size_t X = nx * 4, S = ns * 4;
    size_t at[8] = {0, 12, 12 + X, 15 + X, 15 + 2 * X, 16 + 2 * X, 16 + 2 * X + S, 16 + 3 * X + S};
    char hdr[1024];
    int hl = snprintf(hdr, sizeof hdr,
                      "{\"a_pad\":{\"dtype\":\"U8\",\"shape\":[12],\"data_offsets\":[%zu,%zu]},"
                      "\"b_x\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]},"
                      "\"c_odd\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[%zu,%zu]},"
                      "\"d_mis\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]},"
                      "\"e_pad\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[%zu,%zu]},"
                      "\"e_small\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]},"
                      "\"f_y\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]}}",
                      at[0], at[1], nx, at[1], at[2], at[2], at[3], nx, at[3], at[4], at[4], at[5], ns, at[5], at[6], nx, at[6], at[7]);
    while (hl % 8) hdr[hl++] = ' ';
    size_t fn = 8 + (size_t)hl + at[7];
    unsigned char *image = calloc(1, fn);
    uint64_t hl64 = (uint64_t)hl;
    memcpy(image, &hl64, 8);
    memcpy(image + 8, hdr, (size_t)hl);
    unsigned char *data = image + 8 + hl;
    for (int i = 0; i < 12; i++) data[at[0] + i] = (unsigned char)(i + 1);
    memcpy(data + at[1], x, X);
    for (int i = 0; i < 3; i++) data[at[2] + i] = (unsigned char)(7 + i);
    memcpy(data + at[3], x, X);
    data[at[4]] = 1;
    memcpy(data + at[5], s, S);
    memcpy(data + at[6], x, X);
    char *path = tmpfile_path("zero_copy.safetensors");
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    cr_assert_eq(fwrite(image, 1, fn, fp), fn);
    fclose(fp);

    ts_kernel *k = NULL;
    cr_assert_eq(ts_kernel_parse("kernel twice_plus_one(x: f32[N], y: f32[N]) {\n"
                                 "  tunable BLOCK = 256 in 16..1024\n"
                                 "  grid t in tile(N, BLOCK)\n"
                                 "  store(y[t], load(x[t]) * 2.0 + 1.0)\n"
                                 "}\n",
                                 "zero_copy.tile", &k),
                 TS_OK, "%s", ts_last_error());
    const char *backends[] = {"ref", "opencl"};
    for (int b = 0; b < 2; b++) {
        if (!ts_backend_available(backends[b], NULL)) continue;
        ts_context *ctx = NULL;
        if (ts_context_create(backends[b], 0, &ctx) != TS_OK) continue;
        for (int mode = 0; mode < 2; mode++) {
            ts_st_file *f;
            cr_assert_eq(ts_st_open(path, &f), TS_OK, "%s", ts_last_error());
            int before = mappings_of(path);
            ts_st_upload_options o = TS_ST_UPLOAD_OPTIONS_INIT;
            o.zero_copy = mode ? -1 : 0;
            o.threads = 2;
            ts_st_tensor_set *set;
            cr_assert_eq(ts_st_upload_file(ctx, f, &o, &set), TS_OK, "%s", ts_last_error());
            int after = mappings_of(path);
            /* b_x and f_y are mapped; d_mis (misaligned), e_small (400 bytes) and the u8 pads are copied */
            cr_expect_eq(after - before, mode ? 0 : 2, "%s zero_copy=%d: %d new mappings of the file", backends[b], o.zero_copy, after - before);
            ts_st_close(f); /* the tensors keep their own mappings */
            float *back = malloc(nx * sizeof *back);
            const char *names[] = {"b_x", "d_mis", "f_y"};
            for (int i = 0; i < 3; i++) {
                ts_tensor *t = ts_st_tensor_set_find(set, names[i]);
                cr_assert_not_null(t);
                cr_assert_eq(ts_tensor_read(t, back, nx * 4), TS_OK, "%s", ts_last_error());
                cr_expect_eq(memcmp(back, x, nx * 4), 0, "%s zero_copy=%d: %s differs from the file", backends[b], o.zero_copy, names[i]);
            }
            float sm[100];
            cr_assert_eq(ts_tensor_read(ts_st_tensor_set_find(set, "e_small"), sm, sizeof sm), TS_OK);
            cr_expect_eq(memcmp(sm, s, sizeof sm), 0);
            /* a kernel writes y = 2 x + 1 into the mapped f_y */
            ts_arg args[2] = {TS_ARG_TENSOR(ts_st_tensor_set_find(set, "b_x")), TS_ARG_TENSOR(ts_st_tensor_set_find(set, "f_y"))};
            cr_assert_eq(ts_launch(ctx, k, NULL, args, 2, NULL), TS_OK, "%s", ts_last_error());
            cr_assert_eq(ts_tensor_read(args[1].tensor, back, nx * 4), TS_OK);
            size_t bad = nx;
            for (size_t i = 0; i < nx && bad == nx; i++)
                if (back[i] != x[i] * 2.0f + 1.0f) bad = i;
            cr_expect_eq(bad, nx, "%s zero_copy=%d: y[%zu] = %g, expected %g", backends[b], o.zero_copy, bad, bad < nx ? back[bad] : 0.0,
                         bad < nx ? x[bad] * 2.0 + 1.0 : 0.0);
            cr_assert_eq(ts_tensor_read(args[0].tensor, back, nx * 4), TS_OK);
            cr_expect_eq(memcmp(back, x, nx * 4), 0, "%s: x changed", backends[b]);
            free(back);
            ts_st_tensor_set_destroy(set);
            cr_expect_eq(mappings_of(path), 0, "%s zero_copy=%d: mappings left after the set is destroyed", backends[b], o.zero_copy);
            size_t m;
            void *now = slurp(path, &m);
            cr_expect(m == fn && memcmp(now, image, fn) == 0, "%s zero_copy=%d: the file on disk changed", backends[b], o.zero_copy);
            free(now);
        }
        ts_context_destroy(ctx);
    }
    ts_kernel_destroy(k);
    unlink(path);
    free(path);
    free(image);
    free(x);
    free(s);
}
