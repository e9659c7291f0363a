/* tests/engine/test_checkpoint.c - checkpoints: format, round trips, and refusal of every
 * kind of bad file without touching the target tensors.
 *
 * The format is checked against an encoder written here from the header's description
 * alone (byte-wise little-endian, zlib CRC-32): weft's file must equal it byte for byte,
 * and weft must load the hand-made file. Round trips cover f32, f64, i32, a scalar, a
 * 4-D and an empty tensor with random bit patterns (NaN payloads included), in any order
 * of names, and an empty checkpoint.
 *
 * Refusals, each with a message that names the file (and the tensor or offset), and with
 * the targets and meta bit-identical afterwards: every single-byte corruption of a small
 * file (three patterns at every offset) and of sampled offsets of a larger one;
 * truncation at every length; trailing bytes; a newer version; wrong shape, dtype,
 * missing and unexpected names; bad arguments; allocation failure at every allocation
 * of a load. Saving: over an existing checkpoint (replaced, no ".tmp" left), into a
 * directory that does not exist (WEFT_ERR_IO, nothing created), with invalid arguments
 * (nothing created, the old file intact), and onto a full device (/dev/full behind the
 * temporary name: WEFT_ERR_IO, the old checkpoint intact, no ".tmp" left).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "tests/util/tu_alloc.h"
#include "tests/util/tu_common.h"
#include "tests/util/tu_weft.h"
#include "weft.h"

/* ---- helpers ------------------------------------------------------------------------- */

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static void tmp_name(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "%s.tmp", path);
}

static void write_file(const char *path, const unsigned char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_all(const char *path, size_t *n)
{
    char *b = tu_read_file(path, n);
    assert_non_null(b);
    return (unsigned char *)b;
}

/* ---- models: a set of named tensors --------------------------------------------------- */

enum { MAXT = 8 };

typedef struct spec {
    const char *name;
    weft_dtype dtype;
    size_t ndim;
    int64_t dims[4];
} spec;

typedef struct model {
    size_t n;
    const char *names[MAXT];
    weft_tensor *t[MAXT];
} model;

/* Every dtype, a scalar, a 4-D and an empty tensor. */
static const spec SMALL[] = {
    {"w1", WEFT_F32, 2, {3, 4, 0, 0}},     {"b1", WEFT_F64, 1, {5, 0, 0, 0}},
    {"labels", WEFT_I32, 2, {2, 3, 0, 0}}, {"scale", WEFT_F32, 0, {0, 0, 0, 0}},
    {"conv", WEFT_F64, 4, {2, 1, 3, 2}},   {"empty", WEFT_F32, 2, {0, 3, 0, 0}},
};
#define NSMALL (sizeof SMALL / sizeof SMALL[0])

/* A few records around one larger tensor, for sampled corruption. */
static const spec LARGE[] = {
    {"embed", WEFT_F32, 2, {64, 48, 0, 0}},
    {"bias", WEFT_F64, 1, {7, 0, 0, 0}},
    {"step_ids", WEFT_I32, 1, {3, 0, 0, 0}},
};
#define NLARGE (sizeof LARGE / sizeof LARGE[0])

/* Fills the data with random bytes: any bit pattern (NaNs, denormals) must survive. */
static void fill_random(weft_tensor *t, uint64_t seed)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    unsigned char *p = weft_tensor_data(t);
    for (size_t i = 0; i < tu_tensor_bytes(t); i++)
        p[i] = (unsigned char)tu_rng_next(&r);
}

/* A model of the specs (in the order given by `order`, or as listed), data from seed. */
static void model_make(model *m, const spec *s, size_t n, const size_t *order, uint64_t seed)
{
    assert_true(n <= MAXT);
    m->n = n;
    for (size_t i = 0; i < n; i++) {
        const spec *e = &s[order ? order[i] : i];
        m->names[i] = e->name;
        m->t[i] = NULL;
        OK(weft_tensor_create(e->dtype, e->ndim, e->dims, &m->t[i]));
        fill_random(m->t[i], seed * 1000 + i);
    }
}

static void model_free(model *m)
{
    for (size_t i = 0; i < m->n; i++)
        weft_tensor_destroy(m->t[i]);
    m->n = 0;
}

static weft_status model_save(const model *m, const char *path, const weft_checkpoint_meta *meta)
{
    return weft_checkpoint_save(path, m->n, m->names, (const weft_tensor *const *)m->t, meta);
}

static weft_status model_load(model *m, const char *path, weft_checkpoint_meta *meta)
{
    return weft_checkpoint_load(path, m->n, m->names, m->t, meta);
}

/* Tensor `name` of m, or NULL. */
static weft_tensor *model_get(const model *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->names[i], name) == 0)
            return m->t[i];
    return NULL;
}

/* Every tensor of a has the bytes of the same-named tensor of b. */
static void expect_same_data(const model *a, const model *b)
{
    for (size_t i = 0; i < a->n; i++) {
        weft_tensor *o = model_get(b, a->names[i]);
        assert_non_null(o);
        assert_int_equal(tu_tensor_bytes(a->t[i]), tu_tensor_bytes(o));
        if (tu_tensor_bytes(o) &&
            memcmp(weft_tensor_data(a->t[i]), weft_tensor_data(o), tu_tensor_bytes(o)) != 0) {
            print_error("tensor '%s' differs\n", a->names[i]);
            fail();
        }
    }
}

/* A snapshot of a model's bytes and of a meta struct, to show that a refused load
 * changed nothing. */
typedef struct snapshot {
    unsigned char *bytes[MAXT];
    weft_checkpoint_meta meta;
} snapshot;

static void snap_take(snapshot *s, const model *m, const weft_checkpoint_meta *meta)
{
    for (size_t i = 0; i < m->n; i++) {
        size_t b = tu_tensor_bytes(m->t[i]);
        s->bytes[i] = malloc(b + 1);
        assert_non_null(s->bytes[i]);
        if (b)
            memcpy(s->bytes[i], weft_tensor_data(m->t[i]), b);
    }
    s->meta = *meta;
}

static void snap_expect(const snapshot *s, const model *m, const weft_checkpoint_meta *meta,
                        const char *what)
{
    for (size_t i = 0; i < m->n; i++) {
        size_t b = tu_tensor_bytes(m->t[i]);
        if (b && memcmp(s->bytes[i], weft_tensor_data(m->t[i]), b) != 0) {
            print_error("%s: tensor '%s' was changed by a refused load\n", what, m->names[i]);
            fail();
        }
    }
    if (memcmp(&s->meta, meta, sizeof *meta) != 0) {
        print_error("%s: meta was changed by a refused load\n", what);
        fail();
    }
}

static void snap_free(snapshot *s, const model *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(s->bytes[i]);
}

static const weft_checkpoint_meta META = {
    .step = 0x0102030405060708ull, .epoch = 17, .seed = 0xdeadbeefcafef00dull, .user = 42};
static const weft_checkpoint_meta SENTINEL_META = {.step = 1, .epoch = 2, .seed = 3, .user = 4};

/* ---- an independent encoder, from the header's description ----------------------------- */

typedef struct bytes {
    unsigned char *p;
    size_t n, cap;
} bytes;

static void b_put(bytes *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void b_u32(bytes *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    b_put(b, x, 4);
}

static void b_u64(bytes *b, uint64_t v)
{
    b_u32(b, (uint32_t)v);
    b_u32(b, (uint32_t)(v >> 32));
}

static uint32_t crc_range(const bytes *b, size_t from)
{
    return (uint32_t)crc32(0L, b->p + from, (uInt)(b->n - from));
}

/* The element at `p` of `es` bytes, as a little-endian byte sequence. */
static void b_elem(bytes *b, const unsigned char *p, size_t es)
{
    if (es == 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        b_u32(b, v);
    } else {
        uint64_t v;
        memcpy(&v, p, 8);
        b_u64(b, v);
    }
}

static bytes encode_model(const model *m, const weft_checkpoint_meta *meta, uint32_t version)
{
    bytes b = {0};
    b_put(&b, "WEFTCKPT", 8);
    b_u32(&b, version);
    b_u32(&b, (uint32_t)m->n);
    b_u64(&b, meta->step);
    b_u64(&b, meta->epoch);
    b_u64(&b, meta->seed);
    b_u64(&b, meta->user);
    b_u32(&b, crc_range(&b, 0));
    for (size_t i = 0; i < m->n; i++) {
        const weft_tensor *t = m->t[i];
        size_t rec = b.n, len = strlen(m->names[i]);
        b_u32(&b, (uint32_t)len);
        b_put(&b, m->names[i], len);
        b_u32(&b, (uint32_t)weft_tensor_dtype(t));
        b_u32(&b, (uint32_t)weft_tensor_ndim(t));
        for (size_t d = 0; d < weft_tensor_ndim(t); d++)
            b_u64(&b, (uint64_t)weft_tensor_dim(t, d));
        b_u64(&b, tu_tensor_bytes(t));
        b_u32(&b, crc_range(&b, rec));
        size_t data = b.n, es = weft_dtype_size(weft_tensor_dtype(t));
        const unsigned char *p = weft_tensor_data_const(t);
        for (size_t k = 0; k < tu_tensor_bytes(t); k += es)
            b_elem(&b, p + k, es);
        b_u32(&b, crc_range(&b, data));
    }
    b_put(&b, "WEFTEND!", 8);
    return b;
}

/* ---- round trips ------------------------------------------------------------------------ */

static void test_checkpoint_round_trip(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    model src, dst;
    model_make(&src, SMALL, NSMALL, NULL, 1);
    model_make(&dst, SMALL, NSMALL, NULL, 2);
    OK(model_save(&src, path, &META));

    weft_checkpoint_meta got = SENTINEL_META;
    OK(model_load(&dst, path, &got));
    expect_same_data(&src, &dst);
    assert_memory_equal(&got, &META, sizeof got);
    /* meta may be NULL on load */
    model_free(&dst);
    model_make(&dst, SMALL, NSMALL, NULL, 3);
    OK(model_load(&dst, path, NULL));
    expect_same_data(&src, &dst);

    char tmp[160];
    tmp_name(tmp, sizeof tmp, path);
    assert_false(exists(tmp));
    unlink(path);
    model_free(&src);
    model_free(&dst);
}

/* weft's file equals the encoder above, byte for byte; and weft reads the encoder's file. */
static void test_checkpoint_format_matches_header(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    model src, dst;
    model_make(&src, SMALL, NSMALL, NULL, 4);
    OK(model_save(&src, path, &META));
    size_t n = 0;
    unsigned char *file = read_all(path, &n);
    bytes want = encode_model(&src, &META, 1);
    assert_int_equal(n, want.n);
    assert_memory_equal(file, want.p, n);
    /* spot checks of the little-endian layout, independent of the encoder */
    assert_memory_equal(file, "WEFTCKPT", 8);
    static const unsigned char v1[4] = {1, 0, 0, 0};
    assert_memory_equal(file + 8, v1, 4);
    static const unsigned char step[8] = {8, 7, 6, 5, 4, 3, 2, 1};
    assert_memory_equal(file + 16, step, 8);
    assert_memory_equal(file + n - 8, "WEFTEND!", 8);
    free(file);

    unlink(path);
    write_file(path, want.p, want.n);
    model_make(&dst, SMALL, NSMALL, NULL, 5);
    weft_checkpoint_meta got = SENTINEL_META;
    OK(model_load(&dst, path, &got));
    expect_same_data(&src, &dst);
    assert_memory_equal(&got, &META, sizeof got);

    free(want.p);
    unlink(path);
    model_free(&src);
    model_free(&dst);
}

static void test_checkpoint_any_name_order(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    model src, dst;
    model_make(&src, SMALL, NSMALL, NULL, 6);
    OK(model_save(&src, path, &META));
    static const size_t rev[NSMALL] = {5, 4, 3, 2, 1, 0};
    static const size_t mix[NSMALL] = {2, 0, 5, 1, 4, 3};
    const size_t *orders[] = {rev, mix};
    for (size_t k = 0; k < 2; k++) {
        model_make(&dst, SMALL, NSMALL, orders[k], 7 + k);
        OK(model_load(&dst, path, NULL));
        expect_same_data(&src, &dst);
        model_free(&dst);
    }
    unlink(path);
    model_free(&src);
}

static void test_checkpoint_empty_checkpoint(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    OK(weft_checkpoint_save(path, 0, NULL, NULL, &META));
    weft_checkpoint_meta got = SENTINEL_META;
    OK(weft_checkpoint_load(path, 0, NULL, NULL, &got));
    assert_memory_equal(&got, &META, sizeof got);
    /* NULL meta saves zeros */
    OK(weft_checkpoint_save(path, 0, NULL, NULL, NULL));
    OK(weft_checkpoint_load(path, 0, NULL, NULL, &got));
    weft_checkpoint_meta zero = {0};
    assert_memory_equal(&got, &zero, sizeof got);
    /* a non-empty checkpoint does not load into an empty set */
    model src;
    model_make(&src, SMALL, 1, NULL, 9);
    OK(model_save(&src, path, &META));
    got = SENTINEL_META;
    tu_expect_status(weft_checkpoint_load(path, 0, NULL, NULL, &got), WEFT_ERR_INVALID_ARG,
                     "load into nothing");
    tu_expect_message("load into nothing", path, "unexpected tensor 'w1'", NULL);
    assert_memory_equal(&got, &SENTINEL_META, sizeof got);
    model_free(&src);
    unlink(path);
}

/* A name of exactly 255 bytes is allowed. */
static void test_checkpoint_longest_name(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    char name[256];
    memset(name, 'n', 255);
    name[255] = '\0';
    model src, dst;
    model_make(&src, SMALL, 1, NULL, 10);
    model_make(&dst, SMALL, 1, NULL, 11);
    src.names[0] = dst.names[0] = name;
    OK(model_save(&src, path, NULL));
    OK(model_load(&dst, path, NULL));
    expect_same_data(&src, &dst);
    model_free(&src);
    model_free(&dst);
    unlink(path);
}

/* ---- refusals ------------------------------------------------------------------------------ */

/* Loads `path` into targets that hold a snapshot; expects status `want`, a message that
 * names the file and contains `needle` (if any), and targets and meta untouched. */
static void expect_refused(const char *path, model *targets, const snapshot *snap,
                           weft_status want, const char *needle, const char *what)
{
    weft_checkpoint_meta got = SENTINEL_META;
    weft_status s = model_load(targets, path, &got);
    if (s != want) {
        print_error("%s: got %s (%s), expected %s\n", what, weft_status_name(s),
                    weft_last_error(), weft_status_name(want));
        fail();
    }
    char prefix[200];
    snprintf(prefix, sizeof prefix, "checkpoint %s:", path);
    if (strncmp(weft_last_error(), prefix, strlen(prefix)) != 0) {
        print_error("%s: message \"%s\" does not start with \"%s\"\n", what,
                    weft_last_error(), prefix);
        fail();
    }
    if (needle)
        tu_expect_message(what, needle, NULL);
    snap_expect(snap, targets, &got, what);
}

/* Flips bits of one byte at each offset in `offs`, three patterns each: every variant is
 * refused as corrupt (WEFT_ERR_IO, a message with an offset), targets untouched. */
static void corrupt_at(const char *path, const unsigned char *good, size_t n,
                       const size_t *offs, size_t noffs, model *targets, const snapshot *snap)
{
    static const unsigned char patterns[] = {0x01, 0x80, 0xff};
    unsigned char *bad = malloc(n);
    assert_non_null(bad);
    for (size_t k = 0; k < noffs; k++) {
        for (size_t q = 0; q < sizeof patterns; q++) {
            memcpy(bad, good, n);
            bad[offs[k]] ^= patterns[q];
            write_file(path, bad, n);
            char what[96];
            snprintf(what, sizeof what, "byte %zu of %zu ^ 0x%02x", offs[k], n, patterns[q]);
            expect_refused(path, targets, snap, WEFT_ERR_IO, "offset", what);
        }
    }
    free(bad);
}

static void test_checkpoint_corrupt_byte_refused(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    model src, dst;
    model_make(&src, SMALL, NSMALL, NULL, 12);
    model_make(&dst, SMALL, NSMALL, NULL, 13);
    OK(model_save(&src, path, &META));
    size_t n = 0;
    unsigned char *good = read_all(path, &n);
    snapshot snap;
    snap_take(&snap, &dst, &SENTINEL_META);

    /* every offset of the small file: header, record heads, data, CRCs, end magic */
    size_t *offs = malloc(n * sizeof *offs);
    assert_non_null(offs);
    for (size_t i = 0; i < n; i++)
        offs[i] = i;
    corrupt_at(path, good, n, offs, n, &dst, &snap);
    free(offs);

    /* the intact file still loads */
    write_file(path, good, n);
    OK(model_load(&dst, path, NULL));
    expect_same_data(&src, &dst);
    snap_free(&snap, &dst);
    free(good);
    model_free(&src);
    model_free(&dst);
    unlink(path);
}

static void test_checkpoint_corrupt_byte_sampled_refused(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    model src, dst;
    model_make(&src, LARGE, NLARGE, NULL, 14);
    model_make(&dst, LARGE, NLARGE, NULL, 15);
    OK(model_save(&src, path, &META));
    size_t n = 0;
    unsigned char *good = read_all(path, &n);
    snapshot snap;
    snap_take(&snap, &dst, &SENTINEL_META);

    /* the first 100 bytes (header, first record head), the last 200 (data of the large
     * tensor, the small records, end magic) and 150 random offsets in between */
    enum { HEAD = 100, TAIL = 200, RAND = 150 };
    assert_true(n > HEAD + TAIL);
    size_t offs[HEAD + TAIL + RAND], k = 0;
    for (size_t i = 0; i < HEAD; i++)
        offs[k++] = i;
    for (size_t i = n - TAIL; i < n; i++)
        offs[k++] = i;
    tu_rng r;
    tu_rng_seed(&r, 99);
    for (size_t i = 0; i < RAND; i++)
        offs[k++] = HEAD + (size_t)tu_rng_below(&r, n - HEAD - TAIL);
    corrupt_at(path, good, n, offs, k, &dst, &snap);

    snap_free(&snap, &dst);
    free(good);
    model_free(&src);
    model_free(&dst);
    unlink(path);
}

static void test_checkpoint_truncated_refused(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    model src, dst;
    model_make(&src, SMALL, NSMALL, NULL, 16);
    model_make(&dst, SMALL, NSMALL, NULL, 17);
    OK(model_save(&src, path, &META));
    size_t n = 0;
    unsigned char *good = read_all(path, &n);
    snapshot snap;
    snap_take(&snap, &dst, &SENTINEL_META);
    for (size_t len = 0; len < n; len++) {
        write_file(path, good, len);
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", len, n);
        expect_refused(path, &dst, &snap, WEFT_ERR_IO, "truncated at offset", what);
    }
    snap_free(&snap, &dst);
    free(good);
    model_free(&src);
    model_free(&dst);
    unlink(path);
}

static void test_checkpoint_trailing_bytes_refused(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    model src, dst;
    model_make(&src, SMALL, NSMALL, NULL, 18);
    model_make(&dst, SMALL, NSMALL, NULL, 19);
    OK(model_save(&src, path, &META));
    size_t n = 0;
    unsigned char *good = read_all(path, &n);
    snapshot snap;
    snap_take(&snap, &dst, &SENTINEL_META);
    unsigned char *longer = malloc(n + 64);
    assert_non_null(longer);
    memcpy(longer, good, n);
    memset(longer + n, 0, 64);
    write_file(path, longer, n + 1);
    expect_refused(path, &dst, &snap, WEFT_ERR_IO, "1 trailing bytes", "1 zero byte appended");
    write_file(path, longer, n + 64);
    expect_refused(path, &dst, &snap, WEFT_ERR_IO, "64 trailing bytes", "64 bytes appended");
    /* a second copy of the end magic */
    memcpy(longer + n, "WEFTEND!", 8);
    write_file(path, longer, n + 8);
    expect_refused(path, &dst, &snap, WEFT_ERR_IO, "trailing", "end magic twice");
    /* the whole file twice */
    unsigned char *twice = malloc(2 * n);
    assert_non_null(twice);
    memcpy(twice, good, n);
    memcpy(twice + n, good, n);
    write_file(path, twice, 2 * n);
    expect_refused(path, &dst, &snap, WEFT_ERR_IO, "trailing", "file twice");
    free(twice);
    free(longer);
    snap_free(&snap, &dst);
    free(good);
    model_free(&src);
    model_free(&dst);
    unlink(path);
}

static void test_checkpoint_newer_version_refused(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    model src, dst;
    model_make(&src, SMALL, NSMALL, NULL, 20);
    model_make(&dst, SMALL, NSMALL, NULL, 21);
    snapshot snap;
    snap_take(&snap, &dst, &SENTINEL_META);
    /* a well-formed version 2 file (its header CRC is right) */
    bytes v2 = encode_model(&src, &META, 2);
    write_file(path, v2.p, v2.n);
    expect_refused(path, &dst, &snap, WEFT_ERR_IO, "version 2, this build reads version 1",
                   "version 2");
    /* a much newer one whose header this build cannot even check */
    v2.p[8] = 0x07;
    v2.p[9] = 0x01;
    write_file(path, v2.p, v2.n);
    expect_refused(path, &dst, &snap, WEFT_ERR_IO, "version 263, this build reads version 1",
                   "version 263");
    free(v2.p);
    /* version 0 is not a version */
    bytes v0 = encode_model(&src, &META, 0);
    write_file(path, v0.p, v0.n);
    expect_refused(path, &dst, &snap, WEFT_ERR_IO, "version 0", "version 0");
    free(v0.p);
    snap_free(&snap, &dst);
    model_free(&src);
    model_free(&dst);
    unlink(path);
}

static void test_checkpoint_not_a_checkpoint_refused(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    model dst;
    model_make(&dst, SMALL, NSMALL, NULL, 22);
    snapshot snap;
    snap_take(&snap, &dst, &SENTINEL_META);
    static const char text[] = "digraph weft { a -> b; } and some more text to be long enough "
                               "for a header";
    write_file(path, (const unsigned char *)text, sizeof text);
    expect_refused(path, &dst, &snap, WEFT_ERR_IO, "bad magic at offset 0", "text file");
    /* a file that does not exist, a directory */
    unlink(path);
    expect_refused(path, &dst, &snap, WEFT_ERR_IO, "cannot open", "missing file");
    assert_int_equal(mkdir(path, 0700), 0);
    expect_refused(path, &dst, &snap, WEFT_ERR_IO, "not a regular file", "directory");
    rmdir(path);
    snap_free(&snap, &dst);
    model_free(&dst);
}

/* Saves a model of the `nsaved` tensors of `saved` to path, then loads the file into a
 * model of the `nnow` tensors of `now`: refused with WEFT_ERR_INVALID_ARG and a message
 * containing `want`, every tensor and the metadata untouched (expect_refused). The
 * message stays readable with weft_last_error() afterwards. */
static void expect_mismatch_refused(const char *path, const spec *saved, size_t nsaved,
                                    const spec *now, size_t nnow, uint64_t seed,
                                    const char *want, const char *what)
{
    model src, dst;
    model_make(&src, saved, nsaved, NULL, seed);
    OK(model_save(&src, path, &META));
    model_make(&dst, now, nnow, NULL, seed + 1);
    snapshot snap;
    snap_take(&snap, &dst, &SENTINEL_META);
    expect_refused(path, &dst, &snap, WEFT_ERR_INVALID_ARG, want, what);
    snap_free(&snap, &dst);
    model_free(&dst);
    model_free(&src);
}

/* The example of the specification: a model whose layer changed size; and a rank that
 * differs (a scalar where a vector was saved). */
static void test_checkpoint_shape_mismatch_refused(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    static const spec saved[] = {{"w1", WEFT_F32, 2, {784, 256, 0, 0}},
                                 {"b1", WEFT_F32, 1, {256, 0, 0, 0}}};
    static const spec now[] = {{"b1", WEFT_F32, 1, {256, 0, 0, 0}},
                               {"w1", WEFT_F32, 2, {784, 128, 0, 0}}};
    static const spec scalar[] = {{"b1", WEFT_F32, 0, {0, 0, 0, 0}},
                                  {"w1", WEFT_F32, 2, {784, 256, 0, 0}}};
    char want[256];
    snprintf(want, sizeof want,
             "checkpoint %s: tensor 'w1' is f32 [784,256], the model has f32 [784,128]", path);
    expect_mismatch_refused(path, saved, 2, now, 2, 23, want, "w1 narrower");
    tu_expect_message("w1 narrower", "offset", NULL);
    expect_mismatch_refused(path, saved, 2, scalar, 2, 25,
                            "tensor 'b1' is f32 [256], the model has f32 []", "b1 scalar");
    unlink(path);
}

static void test_checkpoint_dtype_mismatch_refused(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    spec changed[NSMALL];
    memcpy(changed, SMALL, sizeof changed);
    changed[2].dtype = WEFT_F32; /* labels: i32 -> f32 */
    expect_mismatch_refused(path, SMALL, NSMALL, changed, NSMALL, 26,
                            "tensor 'labels' is i32 [2,3], the model has f32 [2,3]",
                            "labels f32");
    unlink(path);
}

/* A tensor the file lacks, one the model lacks, and a renamed one. */
static void test_checkpoint_missing_and_extra_names_refused(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    /* SMALL's last tensor is "empty" */
    expect_mismatch_refused(path, SMALL, NSMALL - 1, SMALL, NSMALL, 28,
                            "tensor 'empty' is missing", "missing empty");
    expect_mismatch_refused(path, SMALL, NSMALL, SMALL, NSMALL - 1, 30,
                            "unexpected tensor 'empty'", "extra empty");
    tu_expect_message("extra empty", "offset", NULL);
    spec renamed[NSMALL];
    memcpy(renamed, SMALL, sizeof renamed);
    renamed[0].name = "w1_renamed";
    expect_mismatch_refused(path, SMALL, NSMALL, renamed, NSMALL, 32,
                            "unexpected tensor 'w1'", "renamed w1");
    unlink(path);
}

/* A file written by a faulty writer: intact CRCs, but a name twice. */
static void test_checkpoint_duplicate_record_refused(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    model src, dst;
    model_make(&src, SMALL, 2, NULL, 32);
    src.names[1] = "w1";
    bytes b = encode_model(&src, &META, 1);
    write_file(path, b.p, b.n);
    free(b.p);
    src.names[1] = SMALL[1].name;
    model_make(&dst, SMALL, 2, NULL, 33);
    snapshot snap;
    snap_take(&snap, &dst, &SENTINEL_META);
    /* the first "w1" record fits; the second is refused as a corrupt file */
    expect_refused(path, &dst, &snap, WEFT_ERR_IO, "tensor 'w1' appears twice", "duplicate");
    snap_free(&snap, &dst);
    model_free(&dst);
    model_free(&src);
    unlink(path);
}

static void test_checkpoint_load_invalid_args(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "ckpt");
    model src;
    model_make(&src, SMALL, NSMALL, NULL, 34);
    OK(model_save(&src, path, &META));
    weft_checkpoint_meta got = SENTINEL_META;
    tu_expect_status(weft_checkpoint_load(NULL, src.n, src.names, src.t, &got),
                     WEFT_ERR_INVALID_ARG, "NULL path");
    tu_expect_status(weft_checkpoint_load("", src.n, src.names, src.t, &got),
                     WEFT_ERR_INVALID_ARG, "empty path");
    tu_expect_status(weft_checkpoint_load(path, src.n, NULL, src.t, &got), WEFT_ERR_INVALID_ARG,
                     "NULL names");
    tu_expect_status(weft_checkpoint_load(path, src.n, src.names, NULL, &got),
                     WEFT_ERR_INVALID_ARG, "NULL tensors");
    const char *dup[NSMALL];
    memcpy(dup, src.names, sizeof dup);
    dup[4] = "b1";
    tu_expect_status(weft_checkpoint_load(path, src.n, dup, src.t, &got), WEFT_ERR_INVALID_ARG,
                     "duplicate names");
    tu_expect_message("duplicate names", "'b1'", "twice", NULL);
    weft_tensor *with_null[NSMALL];
    memcpy(with_null, src.t, sizeof with_null);
    with_null[3] = NULL;
    tu_expect_status(weft_checkpoint_load(path, src.n, src.names, with_null, &got),
                     WEFT_ERR_INVALID_ARG, "NULL tensor");
    tu_expect_message("NULL tensor", "'scale'", NULL);
    assert_memory_equal(&got, &SENTINEL_META, sizeof got);
    model_free(&src);
    unlink(path);
}

/* ---- saving ---------------------------------------------------------------------------------- */

static void test_checkpoint_save_replaces_existing(void **state)
{
    (void)state;
    char path[128], tmp[160];
    tu_temp_path(path, sizeof path, "ckpt");
    tmp_name(tmp, sizeof tmp, path);
    model a, b, dst;
    model_make(&a, SMALL, NSMALL, NULL, 35);
    model_make(&b, LARGE, NLARGE, NULL, 36);
    OK(model_save(&a, path, &META));
    weft_checkpoint_meta meta_b = {.step = 9, .epoch = 8, .seed = 7, .user = 6};
    OK(model_save(&b, path, &meta_b));
    assert_false(exists(tmp));
    model_make(&dst, LARGE, NLARGE, NULL, 37);
    weft_checkpoint_meta got = SENTINEL_META;
    OK(model_load(&dst, path, &got));
    expect_same_data(&b, &dst);
    assert_memory_equal(&got, &meta_b, sizeof got);
    /* the old layout is gone */
    model_free(&dst);
    model_make(&dst, SMALL, NSMALL, NULL, 38);
    tu_expect_status(model_load(&dst, path, NULL), WEFT_ERR_INVALID_ARG, "old layout");
    /* a stale temporary file from a crashed save does not get in the way */
    write_file(tmp, (const unsigned char *)"junk", 4);
    OK(model_save(&a, path, &META));
    assert_false(exists(tmp));
    OK(model_load(&dst, path, NULL));
    expect_same_data(&a, &dst);
    model_free(&a);
    model_free(&b);
    model_free(&dst);
    unlink(path);
}

static void test_checkpoint_save_missing_directory_fails(void **state)
{
    (void)state;
    char dir[128], path[192], tmp[200];
    tu_temp_path(dir, sizeof dir, "ckdir"); /* reserved, and removed: does not exist */
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
    tmp_name(tmp, sizeof tmp, path);
    model src;
    model_make(&src, SMALL, NSMALL, NULL, 39);
    tu_expect_status(model_save(&src, path, &META), WEFT_ERR_IO, "missing directory");
    tu_expect_message("missing directory", dir, NULL);
    assert_false(exists(dir));
    assert_false(exists(path));
    assert_false(exists(tmp));
    model_free(&src);
}

/* Invalid arguments are refused before any file is created; an old checkpoint stays. */
static void test_checkpoint_save_invalid_args(void **state)
{
    (void)state;
    char path[128], tmp[160], fresh[128], fresh_tmp[160];
    tu_temp_path(path, sizeof path, "ckpt");
    tu_temp_path(fresh, sizeof fresh, "ckpt");
    tmp_name(tmp, sizeof tmp, path);
    tmp_name(fresh_tmp, sizeof fresh_tmp, fresh);
    model src;
    model_make(&src, SMALL, NSMALL, NULL, 40);
    OK(model_save(&src, path, &META));
    size_t n0 = 0;
    unsigned char *before = read_all(path, &n0);

    char long_name[300];
    memset(long_name, 'x', 256);
    long_name[256] = '\0';
    const weft_tensor *const *ts = (const weft_tensor *const *)src.t;
    struct {
        const char *what;
        const char *names[NSMALL];
        int null_tensor;
        const char *needle;
    } cases[] = {
        {"duplicate", {"a", "b", "c", "d", "e", "a"}, 0, "twice"},
        {"empty name", {"a", "b", "", "d", "e", "f"}, 0, "empty"},
        {"NULL name", {"a", "b", "c", NULL, "e", "f"}, 0, "NULL"},
        {"long name", {"a", long_name, "c", "d", "e", "f"}, 0, "at most 255"},
        {"NULL tensor", {"a", "b", "c", "d", "e", "f"}, 1, "'e' is NULL"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const weft_tensor *tv[NSMALL];
        memcpy(tv, ts, sizeof tv);
        if (cases[k].null_tensor)
            tv[4] = NULL;
        const char *targets[] = {path, fresh};
        for (size_t p = 0; p < 2; p++) {
            tu_expect_status(weft_checkpoint_save(targets[p], NSMALL, cases[k].names, tv, &META),
                             WEFT_ERR_INVALID_ARG, cases[k].what);
            tu_expect_message(cases[k].what, cases[k].needle, NULL);
        }
        assert_false(exists(tmp));
        assert_false(exists(fresh));
        assert_false(exists(fresh_tmp));
    }
    tu_expect_status(weft_checkpoint_save(NULL, NSMALL, src.names, ts, &META),
                     WEFT_ERR_INVALID_ARG, "NULL path");
    tu_expect_status(weft_checkpoint_save("", NSMALL, src.names, ts, &META), WEFT_ERR_INVALID_ARG,
                     "empty path");
    tu_expect_status(weft_checkpoint_save(fresh, NSMALL, NULL, ts, &META), WEFT_ERR_INVALID_ARG,
                     "NULL names");
    tu_expect_status(weft_checkpoint_save(fresh, NSMALL, src.names, NULL, &META),
                     WEFT_ERR_INVALID_ARG, "NULL tensors");
    assert_false(exists(fresh));
    assert_false(exists(fresh_tmp));

    size_t n1 = 0;
    unsigned char *after = read_all(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
    model_free(&src);
    unlink(path);
}

/* The temporary name points at /dev/full: every write fails (at the final flush for a
 * small file, inside the data for a large one). The save reports WEFT_ERR_IO, removes
 * the temporary name and leaves the old checkpoint as it was. */
static void test_checkpoint_failed_write_keeps_old(void **state)
{
    (void)state;
    if (access("/dev/full", W_OK) != 0) {
        print_message("skipped: no writable /dev/full\n");
        return;
    }
    char path[128], tmp[160];
    tu_temp_path(path, sizeof path, "ckpt");
    tmp_name(tmp, sizeof tmp, path);
    model old, small, large;
    model_make(&old, SMALL, NSMALL, NULL, 41);
    model_make(&small, SMALL, NSMALL, NULL, 42);
    static const spec big[] = {{"big", WEFT_F64, 2, {256, 256, 0, 0}}};
    model_make(&large, big, 1, NULL, 43);
    OK(model_save(&old, path, &META));
    size_t n0 = 0;
    unsigned char *before = read_all(path, &n0);

    model *news[] = {&small, &large};
    for (size_t k = 0; k < 2; k++) {
        assert_int_equal(symlink("/dev/full", tmp), 0);
        tu_expect_status(model_save(news[k], path, &META), WEFT_ERR_IO, "write to /dev/full");
        tu_expect_message("write to /dev/full", path, NULL);
        assert_false(exists(tmp));
        size_t n1 = 0;
        unsigned char *after = read_all(path, &n1);
        assert_int_equal(n0, n1);
        assert_memory_equal(before, after, n0);
        free(after);
    }
    model dst;
    model_make(&dst, SMALL, NSMALL, NULL, 44);
    OK(model_load(&dst, path, NULL));
    expect_same_data(&old, &dst);
    model_free(&dst);
    free(before);
    model_free(&old);
    model_free(&small);
    model_free(&large);
    unlink(path);
}

/* ---- allocation failure ----------------------------------------------------------------------- */

/* Every allocation of a load fails in turn (once, then sticky): WEFT_ERR_NOMEM with a
 * message, targets untouched; then the load succeeds. Save fails cleanly too. The hook's
 * counters balance at the end. */
static void test_checkpoint_alloc_failure(void **state)
{
    (void)state;
    tu_alloc_install(); /* before any weft object exists */
    char path[128], tmp[160], fresh[128];
    tu_temp_path(path, sizeof path, "ckpt");
    tu_temp_path(fresh, sizeof fresh, "ckpt");
    tmp_name(tmp, sizeof tmp, path);
    model src, dst;
    model_make(&src, SMALL, NSMALL, NULL, 45);
    model_make(&dst, SMALL, NSMALL, NULL, 46);
    OK(model_save(&src, path, &META));
    snapshot snap;
    snap_take(&snap, &dst, &SENTINEL_META);

    for (int sticky = 0; sticky <= 1; sticky++) {
        uint64_t n = 1;
        for (;; n++) {
            assert_true(n < 100);
            tu_alloc_fail_at(n, sticky);
            uint64_t failed0 = tu_alloc_get().failed;
            weft_checkpoint_meta got = SENTINEL_META;
            weft_status s = model_load(&dst, path, &got);
            int hit = tu_alloc_get().failed != failed0;
            tu_alloc_fail_at(0, 0);
            if (s == WEFT_OK) {
                assert_false(hit);
                assert_memory_equal(&got, &META, sizeof got);
                break;
            }
            char what[64];
            snprintf(what, sizeof what, "allocation %llu failing (sticky %d)",
                     (unsigned long long)n, sticky);
            tu_expect_status(s, WEFT_ERR_NOMEM, what);
            tu_expect_message(what, path, "out of memory", NULL);
            snap_expect(&snap, &dst, &got, what);
        }
        assert_true(n >= 2); /* at least one allocation was made and failed */
        expect_same_data(&src, &dst);
        /* put the sentinel data back for the sticky round */
        for (size_t i = 0; i < dst.n; i++)
            if (tu_tensor_bytes(dst.t[i]))
                memcpy(weft_tensor_data(dst.t[i]), snap.bytes[i], tu_tensor_bytes(dst.t[i]));
    }

    /* a save that cannot allocate creates nothing and leaves the old file */
    size_t n0 = 0;
    unsigned char *before = read_all(path, &n0);
    tu_alloc_fail_at(1, 1);
    tu_expect_status(model_save(&dst, path, &META), WEFT_ERR_NOMEM, "save without memory");
    tu_expect_status(model_save(&dst, fresh, &META), WEFT_ERR_NOMEM, "save without memory");
    tu_alloc_fail_at(0, 0);
    assert_false(exists(tmp));
    assert_false(exists(fresh));
    size_t n1 = 0;
    unsigned char *after = read_all(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);

    snap_free(&snap, &dst);
    model_free(&src);
    model_free(&dst);
    unlink(path);
    tu_alloc_uninstall_expect_clean("checkpoint allocation failures");
}

int main(void)
{
    tu_main_init(240);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_checkpoint_format_matches_header),
        cmocka_unit_test(test_checkpoint_any_name_order),
        cmocka_unit_test(test_checkpoint_empty_checkpoint),
        cmocka_unit_test(test_checkpoint_longest_name),
        cmocka_unit_test(test_checkpoint_corrupt_byte_refused),
        cmocka_unit_test(test_checkpoint_corrupt_byte_sampled_refused),
        cmocka_unit_test(test_checkpoint_truncated_refused),
        cmocka_unit_test(test_checkpoint_trailing_bytes_refused),
        cmocka_unit_test(test_checkpoint_newer_version_refused),
        cmocka_unit_test(test_checkpoint_not_a_checkpoint_refused),
        cmocka_unit_test(test_checkpoint_shape_mismatch_refused),
        cmocka_unit_test(test_checkpoint_dtype_mismatch_refused),
        cmocka_unit_test(test_checkpoint_missing_and_extra_names_refused),
        cmocka_unit_test(test_checkpoint_duplicate_record_refused),
        cmocka_unit_test(test_checkpoint_load_invalid_args),
        cmocka_unit_test(test_checkpoint_save_replaces_existing),
        cmocka_unit_test(test_checkpoint_save_missing_directory_fails),
        cmocka_unit_test(test_checkpoint_save_invalid_args),
        cmocka_unit_test(test_checkpoint_failed_write_keeps_old),
        cmocka_unit_test(test_checkpoint_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
