/* tests/engine/test_data.c - datasets: IDX files and shuffled mini-batches.
 *
 * IDX: weft_idx_write / weft_idx_read round trips for every dtype and ranks 1..4 (with the
 * written bytes checked against the format independently); files of all six IDX element
 * types, encoded here by the test, read into f32, f64 and i32 with the expected values and
 * scale; gzip files read exactly like raw ones (also across the reader's 1 MiB chunks);
 * every kind of corrupt file (bad magic, unknown type, bad rank, a zero dimension, cut
 * header, cut data, trailing bytes, too many elements, a size the file cannot hold, a cut
 * or damaged gzip stream), raw and gzip, refused with a status and a message naming the
 * file and the byte offset; failed allocations (NOMEM, nothing leaked); and, when
 * /usr/share/datasets/fashion-mnist exists, the real Fashion-MNIST files.
 *
 * Batcher: each row exactly once per epoch with x and y still paired, the order a pure
 * function of (seed, epoch), distinct orders across epochs and seeds, an unbiased shuffle,
 * drop_last, the partial last batch, no y, bad arguments, failed allocations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "tests/util/tu_alloc.h"
#include "tests/util/tu_common.h"
#include "tests/util/tu_weft.h"
#include "weft.h"

/* ---- helpers ------------------------------------------------------------------------- */

static void write_raw(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile gz = gzopen(path, "wb6");
    assert_non_null(gz);
    size_t done = 0;
    while (done < n) {
        unsigned k = n - done > (1u << 20) ? 1u << 20 : (unsigned)(n - done);
        assert_int_equal(gzwrite(gz, (const char *)data + done, k), (int)k);
        done += k;
    }
    if (n == 0) assert_int_equal(gzwrite(gz, "", 0), 0);
    assert_int_equal(gzclose(gz), Z_OK);
}

/* The six IDX element types. */
typedef struct etype {
    unsigned code, size;
    int is_float;
    double lo, hi; /* range of the test's random values */
} etype;

static const etype k_etypes[] = {
    {0x08, 1, 0, 0, 255},
    {0x09, 1, 0, -128, 127},
    {0x0B, 2, 0, -32768, 32767},
    {0x0C, 4, 0, -2147483648.0, 2147483647.0},
    {0x0D, 4, 1, -1e6, 1e6},
    {0x0E, 8, 1, -1e300, 1e300},
};
#define NETYPES (sizeof k_etypes / sizeof k_etypes[0])

/* A value of the type's range (integers exact, f32 values representable). */
static double random_value(tu_rng *r, const etype *t, size_t i)
{
    if (i == 0) return t->lo; /* the extremes first */
    if (i == 1) return t->hi;
    if (!t->is_float) {
        uint64_t span = (uint64_t)(t->hi - t->lo) + 1;
        return t->lo + (double)tu_rng_below(r, span);
    }
    double v = t->lo + (t->hi - t->lo) * tu_rng_unit(r);
    return t->size == 4 ? (double)(float)v : v;
}

static void put_be(uint8_t *p, uint64_t v, unsigned size)
{
    for (unsigned k = 0; k < size; k++) p[k] = (uint8_t)(v >> (8 * (size - 1 - k)));
}

/* Encodes one element, big-endian, the way the IDX format stores it. */
static void encode(uint8_t *p, const etype *t, double v)
{
    if (t->code == 0x0D) {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, 4);
        put_be(p, u, 4);
    } else if (t->code == 0x0E) {
        uint64_t u;
        memcpy(&u, &v, 8);
        put_be(p, u, 8);
    } else {
        put_be(p, (uint64_t)(int64_t)v, t->size);
    }
}

/* A complete IDX file (malloc'd, *len bytes) of type t with the given dims and values. */
static uint8_t *make_idx(const etype *t, int ndim, const uint32_t *dims, const double *vals,
                         size_t *len)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    *len = 4 + 4 * (size_t)ndim + n * t->size;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    b[0] = b[1] = 0;
    b[2] = (uint8_t)t->code;
    b[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) put_be(b + 4 + 4 * i, dims[i], 4);
    for (size_t i = 0; i < n; i++) encode(b + 4 + 4 * ndim + i * t->size, t, vals[i]);
    return b;
}

/* What weft_idx_read promises for value v read as dtype with scale. */
static double expected(weft_dtype dt, double v, double scale)
{
    if (dt == WEFT_F32) return (double)(float)(v * scale);
    if (dt == WEFT_F64) return v * scale;
    return v;
}

static void check_shape(const weft_tensor *t, weft_dtype dt, int ndim, const uint32_t *dims)
{
    assert_int_equal(weft_tensor_dtype(t), dt);
    assert_int_equal(weft_tensor_ndim(t), ndim);
    for (int i = 0; i < ndim; i++) assert_int_equal(weft_tensor_dim(t, (size_t)i), dims[i]);
}

/* ---- IDX: round trips and element types ---------------------------------------------- */

static void test_data_roundtrip_each_dtype_and_rank(void **state)
{
    (void)state;
    static const weft_dtype dts[] = {WEFT_F32, WEFT_F64, WEFT_I32};
    static const unsigned codes[] = {0x0D, 0x0E, 0x0C};
    tu_rng r;
    tu_rng_seed(&r, 7);
    char path[128], tmp[160];
    for (int k = 0; k < 3; k++) {
        for (int ndim = 1; ndim <= 4; ndim++) {
            int64_t dims[4];
            size_t n = 1;
            for (int i = 0; i < ndim; i++) {
                dims[i] = 1 + (int64_t)tu_rng_below(&r, 6);
                n *= (size_t)dims[i];
            }
            weft_tensor *t = NULL, *back = NULL;
            OK(weft_tensor_create(dts[k], (size_t)ndim, dims, &t));
            void *d = weft_tensor_data(t);
            for (size_t i = 0; i < n; i++) {
                uint64_t u = tu_rng_next(&r);
                if (dts[k] == WEFT_F32) ((float *)d)[i] = (float)((double)(int64_t)u * 1e-12);
                if (dts[k] == WEFT_F64) ((double *)d)[i] = (double)(int64_t)u * 1e-9;
                if (dts[k] == WEFT_I32) ((int32_t *)d)[i] = (int32_t)(uint32_t)u;
            }
            tu_temp_path(path, sizeof path, "idx");
            OK(weft_idx_write(path, t));
            snprintf(tmp, sizeof tmp, "%s.tmp", path);
            assert_int_not_equal(access(tmp, F_OK), 0); /* no temporary file left */

            /* the bytes, checked against the format independently of the reader */
            size_t len = 0;
            uint8_t *b = (uint8_t *)tu_read_file(path, &len);
            assert_non_null(b);
            size_t es = weft_dtype_size(dts[k]);
            assert_int_equal(len, 4 + 4 * (size_t)ndim + n * es);
            assert_int_equal(b[0], 0);
            assert_int_equal(b[1], 0);
            assert_int_equal(b[2], codes[k]);
            assert_int_equal(b[3], ndim);
            for (int i = 0; i < ndim; i++) {
                uint8_t want[4];
                put_be(want, (uint64_t)dims[i], 4);
                assert_memory_equal(b + 4 + 4 * i, want, 4);
            }
            uint64_t u0 = 0;
            memcpy(&u0, d, es); /* little-endian host: the low bytes */
            uint8_t want0[8];
            put_be(want0, u0, (unsigned)es);
            assert_memory_equal(b + 4 + 4 * ndim, want0, es);
            free(b);

            OK(weft_idx_read(path, dts[k], 1.0, &back));
            assert_true(tu_same_tensor(t, back));
            weft_tensor_destroy(back);
            if (dts[k] == WEFT_F32) { /* f32 read as f64: exact */
                OK(weft_idx_read(path, WEFT_F64, 1.0, &back));
                for (size_t i = 0; i < n; i++)
                    assert_true(((const double *)weft_tensor_data_const(back))[i] ==
                                (double)((const float *)d)[i]);
                weft_tensor_destroy(back);
            }
            weft_tensor_destroy(t);
            unlink(path);
        }
    }
}

/* Files of each IDX type, encoded here, read into each dtype (float types not as i32). */
static void test_data_reads_every_element_type(void **state)
{
    (void)state;
    static const weft_dtype dts[] = {WEFT_F32, WEFT_F64, WEFT_I32};
    tu_rng r;
    tu_rng_seed(&r, 11);
    char path[128];
    for (size_t e = 0; e < NETYPES; e++) {
        const etype *t = &k_etypes[e];
        uint32_t dims[3] = {3, 1 + (uint32_t)e, 5};
        size_t n = 3 * (1 + e) * 5, len;
        double *vals = malloc(n * sizeof *vals);
        assert_non_null(vals);
        for (size_t i = 0; i < n; i++) vals[i] = random_value(&r, t, i);
        uint8_t *b = make_idx(t, 3, dims, vals, &len);
        tu_temp_path(path, sizeof path, "idx");
        write_raw(path, b, len);
        for (int k = 0; k < 3; k++) {
            if (t->is_float && dts[k] == WEFT_I32) continue;
            double scale = dts[k] == WEFT_I32 ? 1.0 : 0.375;
            weft_tensor *x = NULL;
            OK(weft_idx_read(path, dts[k], scale, &x));
            check_shape(x, dts[k], 3, dims);
            for (size_t i = 0; i < n; i++) {
                double got;
                OK(weft_tensor_get(x, i, &got));
                double want = expected(dts[k], vals[i], scale);
                if (got != want)
                    print_error("type 0x%02x as %s, element %zu: %.17g, expected %.17g\n",
                                t->code, weft_dtype_name(dts[k]), i, got, want);
                assert_true(got == want);
            }
            weft_tensor_destroy(x);
        }
        unlink(path);
        free(b);
        free(vals);
    }
}

/* The same content, raw and gzip-compressed, reads into identical tensors; sizes cross
 * the reader's 1 MiB chunks and are not multiples of them. */
static void test_data_gzip_reads_like_raw(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 12);
    char raw[128], gz[128];
    tu_temp_path(raw, sizeof raw, "idx-raw");
    tu_temp_path(gz, sizeof gz, "idx-gz");
    for (size_t e = 0; e < NETYPES; e++) {
        const etype *t = &k_etypes[e];
        for (int ndim = 1; ndim <= 4; ndim++) {
            uint32_t dims[4] = {7, 3, 2, 5};
            if (ndim == 1) dims[0] = e == 0 ? (uint32_t)TU_SCALE(2500001, 1100001) : 300001;
            size_t n = 1, len;
            for (int i = 0; i < ndim; i++) n *= dims[i];
            double *vals = malloc(n * sizeof *vals);
            assert_non_null(vals);
            for (size_t i = 0; i < n; i++) vals[i] = random_value(&r, t, i);
            uint8_t *b = make_idx(t, ndim, dims, vals, &len);
            write_raw(raw, b, len);
            write_gz(gz, b, len);
            weft_dtype dt = t->is_float ? WEFT_F64 : WEFT_I32;
            weft_tensor *a = NULL, *c = NULL, *f = NULL;
            OK(weft_idx_read(raw, dt, 1.0, &a));
            OK(weft_idx_read(gz, dt, 1.0, &c));
            check_shape(a, dt, ndim, dims);
            assert_true(tu_same_tensor(a, c));
            for (size_t i = 0; i < n; i += 1 + n / 97) {
                double got;
                OK(weft_tensor_get(c, i, &got));
                assert_true(got == vals[i]);
            }
            OK(weft_idx_read(gz, WEFT_F32, 0.5, &f));
            for (size_t i = 0; i < n; i += 1 + n / 97) {
                double got;
                OK(weft_tensor_get(f, i, &got));
                assert_true(got == expected(WEFT_F32, vals[i], 0.5));
            }
            weft_tensor_destroy(a);
            weft_tensor_destroy(c);
            weft_tensor_destroy(f);
            free(b);
            free(vals);
        }
    }
    unlink(raw);
    unlink(gz);
}

/* f32/f64 get value * scale; i32 ignores the scale. */
static void test_data_scale_applied(void **state)
{
    (void)state;
    double vals[256];
    for (int i = 0; i < 256; i++) vals[i] = i;
    uint32_t dims[2] = {16, 16};
    size_t len;
    uint8_t *b = make_idx(&k_etypes[0], 2, dims, vals, &len);
    char path[128];
    tu_temp_path(path, sizeof path, "idx");
    write_gz(path, b, len);
    weft_tensor *f = NULL, *d = NULL, *i32 = NULL;
    OK(weft_idx_read(path, WEFT_F32, 1.0 / 255.0, &f));
    OK(weft_idx_read(path, WEFT_F64, -2.0, &d));
    OK(weft_idx_read(path, WEFT_I32, 1.0 / 255.0, &i32));
    const float *pf = weft_tensor_data_const(f);
    const double *pd = weft_tensor_data_const(d);
    const int32_t *pi = weft_tensor_data_const(i32);
    for (int i = 0; i < 256; i++) {
        assert_true(pf[i] == (float)(i * (1.0 / 255.0)));
        assert_true(pf[i] >= 0.0f && pf[i] <= 1.0f);
        assert_true(pd[i] == -2.0 * i);
        assert_int_equal(pi[i], i);
    }
    assert_true(pf[255] == 1.0f);
    weft_tensor_destroy(f);
    weft_tensor_destroy(d);
    weft_tensor_destroy(i32);
    /* a non-finite scale for a float dtype is refused */
    f = (weft_tensor *)b;
    tu_expect_status(weft_idx_read(path, WEFT_F32, NAN, &f), WEFT_ERR_INVALID_ARG, "NaN scale");
    assert_null(f);
    unlink(path);
    free(b);
}

static void test_data_i32_refuses_float_files(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "idx");
    for (size_t e = 4; e < NETYPES; e++) {
        double vals[6] = {1, 2, 3, 4, 5, 6};
        uint32_t dims[2] = {2, 3};
        size_t len;
        uint8_t *b = make_idx(&k_etypes[e], 2, dims, vals, &len);
        write_raw(path, b, len);
        weft_tensor *t = (weft_tensor *)b;
        tu_expect_status(weft_idx_read(path, WEFT_I32, 1.0, &t), WEFT_ERR_INVALID_ARG,
                         "i32 of float");
        assert_null(t);
        tu_expect_message("i32 of float", path, "offset 2", "i32", NULL);
        OK(weft_idx_read(path, WEFT_F32, 1.0, &t)); /* the file itself is fine */
        weft_tensor_destroy(t);
        free(b);
    }
    unlink(path);
}

/* ---- IDX: corrupt files ---------------------------------------------------------------- */

typedef struct corrupt_case {
    const char *what;
    uint8_t bytes[64];
    size_t len;
    const char *expect[3]; /* substrings of the message besides the path */
} corrupt_case;

/* The valid base file: ubyte [2, 3], values 0..5 (18 bytes). */
#define BASE_HDR 0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3
#define BASE BASE_HDR, 0, 1, 2, 3, 4, 5

static const corrupt_case k_corrupt[] = {
    {"bad magic byte 0", {1, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 3, 4, 5}, 18,
     {"offset 0:", "magic", NULL}},
    {"bad magic byte 1", {0, 8, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 3, 4, 5}, 18,
     {"offset 1:", "magic", NULL}},
    {"unknown type", {0, 0, 7, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 3, 4, 5}, 18,
     {"offset 2:", "unknown element type 0x07", NULL}},
    {"zero dims", {0, 0, 8, 0, 0, 1, 2}, 7, {"offset 3:", "0 dimensions", NULL}},
    {"nine dims", {0, 0, 8, 9}, 4, {"offset 3:", "9 dimensions", NULL}},
    {"a zero dimension", {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 0}, 12,
     {"offset 8:", "dimension 1 is 0", NULL}},
    {"empty file", {0}, 0, {"offset 0:", "truncated header", "found 0"}},
    {"truncated magic", {0, 0, 8}, 3, {"offset 0:", "truncated header", "found 3"}},
    {"truncated dimensions", {0, 0, 8, 2, 0, 0, 0, 2, 0, 0}, 10,
     {"offset 4:", "truncated header", "expected 8 bytes of dimensions, found 6"}},
    {"truncated data", {BASE}, 16,
     {"offset 12:", "truncated", "expected 6 bytes of data, found 4"}},
    {"no data", {BASE_HDR}, 12, {"offset 12:", "truncated", "expected 6 bytes of data, found 0"}},
    {"trailing bytes", {BASE, 9, 9, 9}, 21, {"offset 18:", "trailing data", "3 bytes"}},
    {"too many elements", {0, 0, 8, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0}, 16,
     {"offset 12:", "dimension 2", "too many elements"}},
    {"64-bit overflow",
     {0, 0, 0x0E, 8, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
      255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255},
     36, {"offset 8:", "dimension 1", "too many elements"}},
};

/* Writes each corrupt file raw and gzip-compressed and checks the refusal. */
static void test_data_corrupt_inputs_refused(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "idx-bad");
    for (size_t c = 0; c < sizeof k_corrupt / sizeof k_corrupt[0]; c++) {
        const corrupt_case *k = &k_corrupt[c];
        for (int gz = 0; gz < 2; gz++) {
            if (gz)
                write_gz(path, k->bytes, k->len);
            else
                write_raw(path, k->bytes, k->len);
            char what[160];
            snprintf(what, sizeof what, "%s (%s)", k->what, gz ? "gzip" : "raw");
            for (int dt = 0; dt < 3; dt++) {
                if (dt == WEFT_I32 && k->bytes[2] == 0x0E) continue; /* refused earlier */
                weft_tensor *t = (weft_tensor *)path;
                weft_status s = weft_idx_read(path, (weft_dtype)dt, 1.0, &t);
                tu_expect_status(s, WEFT_ERR_INVALID_ARG, what);
                assert_null(t);
                tu_expect_message(what, path, k->expect[0], k->expect[1] ? k->expect[1] : "",
                                  k->expect[2] ? k->expect[2] : "", NULL);
            }
        }
    }
    unlink(path);
}

/* A header announcing 2^34 elements (the limit) over a file of a few bytes is refused as
 * truncated before the 64 GB tensor is allocated (which would fail, or abort under ASan). */
static void test_data_announced_size_beyond_file_refused_before_allocating(void **state)
{
    (void)state;
    uint8_t b[] = {0, 0, 8, 2, 0, 2, 0, 0, 0, 2, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    char path[128];
    tu_temp_path(path, sizeof path, "idx-big");
    for (int gz = 0; gz < 2; gz++) {
        if (gz)
            write_gz(path, b, sizeof b);
        else
            write_raw(path, b, sizeof b);
        weft_tensor *t = NULL;
        tu_expect_status(weft_idx_read(path, WEFT_F64, 1.0, &t), WEFT_ERR_INVALID_ARG, "big");
        assert_null(t);
        tu_expect_message("big", path, "offset 12:", "truncated", "expected 17179869184 bytes",
                          NULL);
    }
    unlink(path);
}

/* A gzip stream cut in the middle, and one with damaged bytes. */
static void test_data_damaged_gzip_refused(void **state)
{
    (void)state;
    tu_rng r;
    tu_rng_seed(&r, 5);
    enum { N = 20000 };
    double *vals = malloc(N * sizeof *vals);
    assert_non_null(vals);
    for (size_t i = 0; i < N; i++) vals[i] = (double)(tu_rng_below(&r, 4) * 60); /* compressible */
    uint32_t dims[2] = {100, 200};
    size_t len;
    uint8_t *b = make_idx(&k_etypes[0], 2, dims, vals, &len);
    char path[128];
    tu_temp_path(path, sizeof path, "idx-gz");
    write_gz(path, b, len);
    size_t glen = 0;
    uint8_t *g = (uint8_t *)tu_read_file(path, &glen);
    assert_non_null(g);
    assert_true(glen > 100);

    /* cut: the data ends early */
    write_raw(path, g, glen / 2);
    weft_tensor *t = (weft_tensor *)g;
    tu_expect_status(weft_idx_read(path, WEFT_F32, 1.0, &t), WEFT_ERR_INVALID_ARG, "cut gzip");
    assert_null(t);
    tu_expect_message("cut gzip", path, "offset 12:", "truncated", "expected 20000 bytes of data",
                      "gzip stream ends early", NULL);

    /* the trailer only is missing: all the data arrives, then the stream ends early */
    write_raw(path, g, glen - 8);
    t = (weft_tensor *)g;
    weft_status s = weft_idx_read(path, WEFT_F32, 1.0, &t);
    assert_int_not_equal(s, WEFT_OK);
    assert_null(t);
    tu_expect_message("gzip without trailer", path, "offset", NULL);

    /* damaged bytes in the middle of the compressed stream */
    for (size_t i = glen / 2; i < glen / 2 + 8; i++) g[i] ^= 0x5a;
    write_raw(path, g, glen);
    t = (weft_tensor *)g;
    tu_expect_status(weft_idx_read(path, WEFT_F32, 1.0, &t), WEFT_ERR_INVALID_ARG, "damaged gzip");
    assert_null(t);
    tu_expect_message("damaged gzip", path, "offset", "corrupt gzip data", NULL);
    assert_null(strstr(weft_last_error(), "<fd:"));
    unlink(path);
    free(g);
    free(b);
    free(vals);
}

static void test_data_missing_file_and_bad_arguments(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "idx-missing");
    weft_tensor *t = (weft_tensor *)path;
    tu_expect_status(weft_idx_read(path, WEFT_F32, 1.0, &t), WEFT_ERR_IO, "missing file");
    assert_null(t);
    tu_expect_message("missing file", path, "cannot open", NULL);
    t = (weft_tensor *)path;
    tu_expect_status(weft_idx_read("/tmp", WEFT_F32, 1.0, &t), WEFT_ERR_IO, "directory");
    assert_null(t);
    tu_expect_message("directory", "/tmp", NULL);
    tu_expect_status(weft_idx_read(path, WEFT_F32, 1.0, NULL), WEFT_ERR_INVALID_ARG, "out NULL");
    tu_expect_status(weft_idx_read(NULL, WEFT_F32, 1.0, &t), WEFT_ERR_INVALID_ARG, "path NULL");
    tu_expect_status(weft_idx_read(path, (weft_dtype)9, 1.0, &t), WEFT_ERR_INVALID_ARG, "dtype");

    /* the writer: nothing it cannot represent, nothing the reader would refuse */
    weft_tensor *s = NULL, *e = NULL;
    OK(weft_tensor_create(WEFT_F32, 0, NULL, &s));
    int64_t zd[2] = {3, 0};
    OK(weft_tensor_create(WEFT_F32, 2, zd, &e));
    tu_expect_status(weft_idx_write(path, s), WEFT_ERR_INVALID_ARG, "write scalar");
    tu_expect_message("write scalar", path, "scalar", NULL);
    tu_expect_status(weft_idx_write(path, e), WEFT_ERR_INVALID_ARG, "write empty");
    tu_expect_message("write empty", path, "[3,0]", NULL);
    tu_expect_status(weft_idx_write(path, NULL), WEFT_ERR_INVALID_ARG, "write NULL");
    assert_int_not_equal(access(path, F_OK), 0);
    tu_expect_status(weft_idx_write("/nonexistent-dir/x.idx", e), WEFT_ERR_INVALID_ARG, "write");
    int64_t d1[1] = {4};
    weft_tensor *ok = NULL;
    OK(weft_tensor_create(WEFT_I32, 1, d1, &ok));
    tu_expect_status(weft_idx_write("/nonexistent-dir/x.idx", ok), WEFT_ERR_IO, "write no dir");
    tu_expect_message("write no dir", "/nonexistent-dir/x.idx", NULL);
    weft_tensor_destroy(ok);
    weft_tensor_destroy(s);
    weft_tensor_destroy(e);
}

/* Every allocation of weft_idx_read and weft_batcher_create failing in turn: NOMEM,
 * no result, nothing leaked; the next attempt succeeds. */
static void test_data_allocation_failures(void **state)
{
    (void)state;
    double vals[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    uint32_t dims[2] = {4, 3};
    size_t len;
    uint8_t *b = make_idx(&k_etypes[0], 2, dims, vals, &len);
    char path[128];
    tu_temp_path(path, sizeof path, "idx-af");
    write_gz(path, b, len);
    tu_alloc_install();
    int failures = 0;
    for (uint64_t k = 1; k < 100; k++) {
        tu_alloc_stats s0 = tu_alloc_get();
        weft_tensor *t = (weft_tensor *)b;
        tu_alloc_fail_at(k, 0);
        weft_status s = weft_idx_read(path, WEFT_F32, 1.0, &t);
        uint64_t failed = tu_alloc_get().failed - s0.failed;
        tu_alloc_fail_at(0, 0);
        if (failed == 0) {
            OK(s);
            weft_tensor_destroy(t);
            tu_alloc_expect_balanced(&s0, "idx_read", k);
            break;
        }
        tu_expect_status(s, WEFT_ERR_NOMEM, "idx_read with a failed allocation");
        assert_null(t);
        tu_alloc_expect_balanced(&s0, "idx_read", k);
        failures++;
    }
    assert_true(failures >= 2); /* the tensor struct, its data, the read buffer */

    weft_tensor *x = NULL, *y = NULL;
    OK(weft_idx_read(path, WEFT_F32, 1.0, &x));
    int64_t n4[1] = {4};
    OK(weft_tensor_create(WEFT_I32, 1, n4, &y));
    failures = 0;
    for (uint64_t k = 1; k < 100; k++) {
        tu_alloc_stats s0 = tu_alloc_get();
        weft_batcher *bt = (weft_batcher *)b;
        tu_alloc_fail_at(k, 1);
        weft_status s = weft_batcher_create(x, y, 3, 1, 0, &bt);
        uint64_t failed = tu_alloc_get().failed - s0.failed;
        tu_alloc_fail_at(0, 0);
        if (failed == 0) {
            OK(s);
            weft_batcher_destroy(bt);
            tu_alloc_expect_balanced(&s0, "batcher_create", k);
            break;
        }
        tu_expect_status(s, WEFT_ERR_NOMEM, "batcher_create with a failed allocation");
        assert_null(bt);
        tu_alloc_expect_balanced(&s0, "batcher_create", k);
        failures++;
    }
    assert_true(failures >= 4); /* batcher, perm, x buffer (2), y buffer (2) */
    weft_tensor_destroy(x);
    weft_tensor_destroy(y);
    tu_alloc_uninstall();
    unlink(path);
    free(b);
}

/* ---- Fashion-MNIST -------------------------------------------------------------------- */

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static void check_labels(const weft_tensor *y, size_t n)
{
    uint32_t d1[1] = {(uint32_t)n};
    check_shape(y, WEFT_I32, 1, d1);
    const int32_t *l = weft_tensor_data_const(y);
    size_t count[10] = {0};
    for (size_t i = 0; i < n; i++) {
        assert_true(l[i] >= 0 && l[i] <= 9);
        count[l[i]]++;
    }
    for (int c = 0; c < 10; c++) assert_int_equal(count[c], n / 10); /* balanced classes */
}

static void test_data_fashion_mnist(void **state)
{
    (void)state;
    if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) skip();
    weft_tensor *xtr = NULL, *ytr = NULL, *xte = NULL, *yte = NULL;
    uint64_t t0 = tu_now_ns();
    OK(weft_idx_read(FASHION_DIR "/train-images-idx3-ubyte.gz", WEFT_F32, 1.0 / 255.0, &xtr));
    uint64_t t1 = tu_now_ns();
    print_message("Fashion-MNIST train images (60000x28x28, 47 MB decompressed) read as f32 "
                  "in %.3f s\n", (double)(t1 - t0) * 1e-9);
    OK(weft_idx_read(FASHION_DIR "/train-labels-idx1-ubyte.gz", WEFT_I32, 1.0, &ytr));
    OK(weft_idx_read(FASHION_DIR "/t10k-images-idx3-ubyte.gz", WEFT_F32, 1.0 / 255.0, &xte));
    OK(weft_idx_read(FASHION_DIR "/t10k-labels-idx1-ubyte.gz", WEFT_I32, 1.0, &yte));
    uint32_t dtr[3] = {60000, 28, 28}, dte[3] = {10000, 28, 28};
    check_shape(xtr, WEFT_F32, 3, dtr);
    check_shape(xte, WEFT_F32, 3, dte);
    check_labels(ytr, 60000);
    check_labels(yte, 10000);
    const float *p = weft_tensor_data_const(xtr);
    double sum = 0;
    for (size_t i = 0; i < 60000u * 784u; i++) {
        assert_true(p[i] >= 0.0f && p[i] <= 1.0f);
        sum += p[i];
    }
    double mean = sum / (60000.0 * 784.0); /* the known pixel mean is 0.286 */
    assert_true(mean > 0.27 && mean < 0.30);
    /* a batcher over the real data: the first batch's rows are real rows */
    weft_batcher *b = NULL;
    OK(weft_batcher_create(xtr, ytr, 64, 42, 1, &b));
    assert_int_equal(weft_batcher_batches(b), 60000 / 64);
    OK(weft_batcher_start_epoch(b, 0));
    const weft_tensor *bx = NULL, *by = NULL;
    OK(weft_batcher_next(b, &bx, &by));
    assert_int_equal(weft_tensor_dim(bx, 0), 64);
    assert_int_equal(weft_tensor_dim(bx, 2), 28);
    weft_batcher_destroy(b);
    weft_tensor_destroy(xtr);
    weft_tensor_destroy(ytr);
    weft_tensor_destroy(xte);
    weft_tensor_destroy(yte);
}

/* ---- batcher ---------------------------------------------------------------------------- */

/* x: [n, 2, 3] f32 whose row i holds i + 0.01 * j; y[i] = 1000 + 7 * i: every row says
 * which it is, and whether its label travelled with it. */
static void make_rows(size_t n, weft_dtype dt, weft_tensor **x, weft_tensor **y)
{
    int64_t dx[3] = {(int64_t)n, 2, 3}, dy[1] = {(int64_t)n};
    OK(weft_tensor_create(dt, 3, dx, x));
    OK(weft_tensor_create(WEFT_I32, 1, dy, y));
    int32_t *l = weft_tensor_data(*y);
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < 6; j++) {
            double v = (double)i + 0.01 * j;
            if (dt == WEFT_F32) ((float *)weft_tensor_data(*x))[i * 6 + j] = (float)v;
            else ((double *)weft_tensor_data(*x))[i * 6 + j] = v;
        }
        l[i] = 1000 + 7 * (int32_t)i;
    }
}

/* Runs one epoch; writes the row ids in batch order into order[] (capacity n) and the
 * batch sizes into sizes[] (capacity n); checks that x and y rows are intact and paired.
 * Returns the number of rows. */
static size_t run_epoch(weft_batcher *b, uint64_t epoch, int with_y, size_t *order,
                        size_t *sizes, size_t *nb)
{
    OK(weft_batcher_start_epoch(b, epoch));
    size_t rows = 0;
    *nb = 0;
    for (;;) {
        const weft_tensor *x = (const weft_tensor *)b, *y = (const weft_tensor *)b;
        OK(weft_batcher_next(b, &x, with_y ? &y : NULL));
        if (!x) {
            if (with_y) assert_null(y);
            break;
        }
        size_t B = (size_t)weft_tensor_dim(x, 0);
        assert_int_equal(weft_tensor_ndim(x), 3);
        assert_int_equal(weft_tensor_dim(x, 1), 2);
        assert_int_equal(weft_tensor_dim(x, 2), 3);
        assert_int_equal(weft_tensor_numel(x), B * 6);
        if (with_y) {
            assert_non_null(y);
            assert_int_equal(weft_tensor_ndim(y), 1);
            assert_int_equal(weft_tensor_dim(y, 0), B);
        }
        for (size_t k = 0; k < B; k++) {
            double v0;
            OK(weft_tensor_get(x, k * 6, &v0));
            size_t id = (size_t)v0;
            for (int j = 0; j < 6; j++) {
                double v;
                OK(weft_tensor_get(x, k * 6 + (size_t)j, &v));
                assert_true(fabs(v - ((double)id + 0.01 * j)) < 1e-4);
            }
            if (with_y) {
                double l;
                OK(weft_tensor_get(y, k, &l));
                assert_int_equal((int64_t)l, 1000 + 7 * (int64_t)id);
            }
            order[rows++] = id;
        }
        sizes[(*nb)++] = B;
    }
    /* the end stays the end until the next epoch */
    const weft_tensor *x = (const weft_tensor *)b;
    OK(weft_batcher_next(b, &x, NULL));
    assert_null(x);
    assert_int_equal(*nb, weft_batcher_batches(b));
    return rows;
}

static void test_data_batcher_each_row_once_per_epoch(void **state)
{
    (void)state;
    enum { N = 103, BATCH = 10 };
    for (int dt = 0; dt < 2; dt++) {
        weft_tensor *x, *y;
        make_rows(N, (weft_dtype)dt, &x, &y);
        weft_batcher *b = NULL;
        OK(weft_batcher_create(x, y, BATCH, 99, 0, &b));
        assert_int_equal(weft_batcher_batches(b), 11);
        size_t order[N], sizes[N], nb;
        for (uint64_t e = 0; e < 5; e++) {
            assert_int_equal(run_epoch(b, e, 1, order, sizes, &nb), N);
            int seen[N] = {0};
            for (size_t i = 0; i < N; i++) {
                assert_true(order[i] < N);
                assert_int_equal(seen[order[i]]++, 0);
            }
            assert_int_equal(nb, 11);
            for (size_t i = 0; i < 10; i++) assert_int_equal(sizes[i], BATCH);
            assert_int_equal(sizes[10], 3);
        }
        weft_batcher_destroy(b);
        weft_tensor_destroy(x);
        weft_tensor_destroy(y);
    }
}

static void test_data_batcher_order_is_a_function_of_seed_and_epoch(void **state)
{
    (void)state;
    enum { N = 50, E = 10 };
    weft_tensor *x, *y;
    make_rows(N, WEFT_F32, &x, &y);
    weft_batcher *a = NULL, *c = NULL, *d = NULL;
    OK(weft_batcher_create(x, y, 8, 1234, 0, &a));
    OK(weft_batcher_create(x, NULL, 8, 1234, 0, &c)); /* same seed, other batcher */
    OK(weft_batcher_create(x, y, 8, 1235, 0, &d));    /* other seed */
    size_t orders[E][N], other[N], sizes[N], nb;
    for (uint64_t e = 0; e < E; e++) run_epoch(a, e, 1, orders[e], sizes, &nb);
    /* epochs in another order, on another batcher: the same permutations */
    for (uint64_t e = E; e-- > 0;) {
        run_epoch(c, e, 0, other, sizes, &nb);
        assert_memory_equal(other, orders[e], sizeof other);
    }
    run_epoch(a, 3, 1, other, sizes, &nb); /* repeating an epoch repeats it */
    assert_memory_equal(other, orders[3], sizeof other);
    /* different epochs and different seeds give different orders */
    for (int e = 0; e < E; e++) {
        size_t identity = 0;
        for (size_t i = 0; i < N; i++) identity += orders[e][i] == i;
        assert_true(identity < N / 2);
        for (int f = e + 1; f < E; f++)
            assert_memory_not_equal(orders[e], orders[f], sizeof orders[e]);
        run_epoch(d, (uint64_t)e, 1, other, sizes, &nb);
        assert_memory_not_equal(other, orders[e], sizeof other);
    }
    weft_batcher_destroy(a);
    weft_batcher_destroy(c);
    weft_batcher_destroy(d);
    weft_tensor_destroy(x);
    weft_tensor_destroy(y);
}

/* Over many epochs of 5 rows, every one of the 120 orders occurs and each row leads
 * about as often as any other: the shuffle is not biased. */
static void test_data_batcher_shuffle_is_uniform(void **state)
{
    (void)state;
    enum { N = 5, E = 6000 };
    weft_tensor *x, *y;
    make_rows(N, WEFT_F64, &x, &y);
    weft_batcher *b = NULL;
    OK(weft_batcher_create(x, y, N, 7, 0, &b));
    size_t first[N] = {0}, perm_count[3125] = {0}, order[N], sizes[N], nb;
    for (uint64_t e = 0; e < E; e++) {
        run_epoch(b, e, 1, order, sizes, &nb);
        first[order[0]]++;
        size_t code = 0;
        for (int i = 0; i < N; i++) code = code * 5 + order[i];
        perm_count[code]++;
    }
    for (int i = 0; i < N; i++) assert_true(first[i] > E / N - 150 && first[i] < E / N + 150);
    size_t distinct = 0;
    for (size_t c = 0; c < 3125; c++) {
        if (!perm_count[c]) continue;
        distinct++;
        assert_true(perm_count[c] > 15 && perm_count[c] < 90); /* expected 50 */
    }
    assert_int_equal(distinct, 120);
    weft_batcher_destroy(b);
    weft_tensor_destroy(x);
    weft_tensor_destroy(y);
}

static void test_data_batcher_drop_last(void **state)
{
    (void)state;
    enum { N = 103 };
    weft_tensor *x, *y;
    make_rows(N, WEFT_F32, &x, &y);
    weft_batcher *b = NULL;
    OK(weft_batcher_create(x, y, 10, 3, 1, &b));
    assert_int_equal(weft_batcher_batches(b), 10);
    size_t order[N], sizes[N], nb;
    for (uint64_t e = 0; e < 3; e++) {
        assert_int_equal(run_epoch(b, e, 1, order, sizes, &nb), 100);
        assert_int_equal(nb, 10);
        int seen[N] = {0};
        for (size_t i = 0; i < 100; i++) {
            assert_int_equal(sizes[i / 10], 10);
            assert_int_equal(seen[order[i]]++, 0);
        }
    }
    weft_batcher_destroy(b);
    /* drop_last with the same seed drops the tail of the same permutation */
    weft_batcher *keep = NULL;
    size_t full[N];
    OK(weft_batcher_create(x, y, 10, 3, 0, &keep));
    run_epoch(keep, 2, 1, full, sizes, &nb);
    assert_memory_equal(full, order, 100 * sizeof *order);
    weft_batcher_destroy(keep);
    /* a batch larger than the data: nothing with drop_last, one short batch without */
    OK(weft_batcher_create(x, y, 500, 3, 1, &b));
    assert_int_equal(weft_batcher_batches(b), 0);
    assert_int_equal(run_epoch(b, 0, 1, order, sizes, &nb), 0);
    weft_batcher_destroy(b);
    OK(weft_batcher_create(x, y, 500, 3, 0, &b));
    assert_int_equal(weft_batcher_batches(b), 1);
    assert_int_equal(run_epoch(b, 0, 1, order, sizes, &nb), N);
    assert_int_equal(sizes[0], N);
    weft_batcher_destroy(b);
    weft_tensor_destroy(x);
    weft_tensor_destroy(y);
}

/* The short last batch is [B, ...] / [B]; batches divide evenly; no y. */
static void test_data_batcher_partial_last_batch(void **state)
{
    (void)state;
    weft_tensor *x, *y;
    make_rows(24, WEFT_F64, &x, &y);
    size_t order[24], sizes[24], nb;
    static const size_t batch[] = {1, 5, 7, 8, 24, 25};
    for (size_t k = 0; k < sizeof batch / sizeof batch[0]; k++) {
        for (int with_y = 0; with_y < 2; with_y++) {
            weft_batcher *b = NULL;
            OK(weft_batcher_create(x, with_y ? y : NULL, batch[k], 17, 0, &b));
            assert_int_equal(run_epoch(b, 4, with_y, order, sizes, &nb), 24);
            assert_int_equal(nb, (24 + batch[k] - 1) / batch[k]);
            for (size_t i = 0; i + 1 < nb; i++) assert_int_equal(sizes[i], batch[k]);
            size_t last = 24 % batch[k] ? 24 % batch[k] : batch[k];
            if (batch[k] > 24) last = 24;
            assert_int_equal(sizes[nb - 1], last);
            if (!with_y) { /* y asked for, none given: NULL */
                OK(weft_batcher_start_epoch(b, 0));
                const weft_tensor *bx = NULL, *by = (const weft_tensor *)b;
                OK(weft_batcher_next(b, &bx, &by));
                assert_non_null(bx);
                assert_null(by);
            }
            weft_batcher_destroy(b);
        }
    }
    weft_tensor_destroy(x);
    weft_tensor_destroy(y);
}

static void test_data_batcher_refuses_bad_arguments(void **state)
{
    (void)state;
    weft_tensor *x, *y, *yl, *xi;
    make_rows(10, WEFT_F32, &x, &y);
    int64_t d9[1] = {9}, d10[2] = {10, 2};
    OK(weft_tensor_create(WEFT_I32, 1, d9, &yl));
    OK(weft_tensor_create(WEFT_I32, 2, d10, &xi));
    weft_batcher *b = (weft_batcher *)x;
    tu_expect_status(weft_batcher_create(x, y, 0, 1, 0, &b), WEFT_ERR_INVALID_ARG, "batch 0");
    assert_null(b);
    tu_expect_message("batch 0", "weft_batcher_create", "batch", NULL);
    tu_expect_status(weft_batcher_create(NULL, y, 4, 1, 0, &b), WEFT_ERR_INVALID_ARG, "x NULL");
    tu_expect_status(weft_batcher_create(x, y, 4, 1, 0, NULL), WEFT_ERR_INVALID_ARG, "out NULL");
    tu_expect_status(weft_batcher_create(x, yl, 4, 1, 0, &b), WEFT_ERR_INVALID_ARG, "y length");
    tu_expect_message("y length", "[10,2,3]", "[9]", NULL);
    tu_expect_status(weft_batcher_create(x, x, 4, 1, 0, &b), WEFT_ERR_INVALID_ARG, "y f32");
    tu_expect_status(weft_batcher_create(xi, y, 4, 1, 0, &b), WEFT_ERR_INVALID_ARG, "x i32");
    tu_expect_message("x i32", "i32", "float", NULL);
    OK(weft_batcher_create(x, y, 4, 1, 0, &b));
    const weft_tensor *bx = (const weft_tensor *)x;
    tu_expect_status(weft_batcher_next(b, &bx, NULL), WEFT_ERR_INVALID_ARG, "next before start");
    assert_null(bx);
    tu_expect_message("next before start", "weft_batcher_start_epoch", NULL);
    tu_expect_status(weft_batcher_next(b, NULL, NULL), WEFT_ERR_INVALID_ARG, "next x NULL");
    tu_expect_status(weft_batcher_start_epoch(NULL, 0), WEFT_ERR_INVALID_ARG, "start NULL");
    assert_int_equal(weft_batcher_batches(NULL), 0);
    weft_batcher_destroy(NULL);
    weft_batcher_destroy(b);
    weft_tensor_destroy(x);
    weft_tensor_destroy(y);
    weft_tensor_destroy(yl);
    weft_tensor_destroy(xi);
}

int main(void)
{
    tu_main_init(240);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_roundtrip_each_dtype_and_rank),
        cmocka_unit_test(test_data_reads_every_element_type),
        cmocka_unit_test(test_data_gzip_reads_like_raw),
        cmocka_unit_test(test_data_scale_applied),
        cmocka_unit_test(test_data_i32_refuses_float_files),
        cmocka_unit_test(test_data_corrupt_inputs_refused),
        cmocka_unit_test(test_data_announced_size_beyond_file_refused_before_allocating),
        cmocka_unit_test(test_data_damaged_gzip_refused),
        cmocka_unit_test(test_data_missing_file_and_bad_arguments),
        cmocka_unit_test(test_data_allocation_failures),
        cmocka_unit_test(test_data_fashion_mnist),
        cmocka_unit_test(test_data_batcher_each_row_once_per_epoch),
        cmocka_unit_test(test_data_batcher_order_is_a_function_of_seed_and_epoch),
        cmocka_unit_test(test_data_batcher_shuffle_is_uniform),
        cmocka_unit_test(test_data_batcher_drop_last),
        cmocka_unit_test(test_data_batcher_partial_last_batch),
        cmocka_unit_test(test_data_batcher_refuses_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
