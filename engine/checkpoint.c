/* engine/checkpoint.c - weft_checkpoint_save / weft_checkpoint_load (the format is
 * specified in weft/checkpoint.h).
 *
 * Encoding: every integer is written byte by byte, least significant first, and so is
 * tensor data (element by element, by dtype size). Nothing depends on struct layout,
 * padding or the host's byte order.
 *
 * Save validates all its arguments (path, unique non-empty names of at most 255 bytes,
 * well-formed tensors) before it creates anything, then streams the file through
 * wf_atomic_file ("<path>.tmp", fsync, rename). A failed write removes the temporary
 * file; the old checkpoint, if any, is left as it was.
 *
 * Load runs in phases, and only the last one writes to the caller's tensors:
 *   1. arguments (as for save) and a sorted index of the expected names;
 *   2. the whole file is read into one staging buffer and the file is closed;
 *   3. integrity: magic, version, header CRC, for every record its bounds, record CRC,
 *      sanity (dtype, ndim, dims, data size) and data CRC, then the end magic and the
 *      absence of trailing bytes;
 *   4. matching: each record names an expected tensor (once) with the same dtype and
 *      shape, and no expected name is missing;
 *   5. copy: data into the tensors, meta into *meta. This phase cannot fail.
 * Integrity is checked over the whole file before matching, so a corrupt file is
 * reported as corrupt (WEFT_ERR_IO) even if it would also mismatch. A file that is intact
 * but does not fit the tensors gives WEFT_ERR_INVALID_ARG. Messages start with
 * "checkpoint <path>:" and name the offset and the tensor involved. The price of checking
 * before changing is a staging buffer as large as the file.
 *
 * Both functions keep no global state: thread-safe for distinct paths and tensors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "graph/internal.h"
#include "weft/checkpoint.h"

#define CK_MAGIC "WEFTCKPT"
#define CK_END "WEFTEND!"
#define CK_MAGIC_LEN 8
#define CK_NAME_MAX 255
/* magic, version, count, step, epoch, seed, user */
#define CK_HEADER_BODY (CK_MAGIC_LEN + 4 + 4 + 4 * 8)
#define CK_HEADER_LEN (CK_HEADER_BODY + 4)
/* The longest record head: name length, name, dtype, ndim, dims, data bytes, CRC. */
#define CK_RECORD_HEAD_MAX (4 + CK_NAME_MAX + 4 + 4 + 8 * WEFT_MAX_DIMS + 8 + 4)
/* Data is encoded through a stack buffer of this size (a multiple of every dtype size). */
#define CK_CHUNK 16384

/* ---- little-endian encoding --------------------------------------------------------- */

static unsigned char *put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
    return p + 4;
}

static unsigned char *put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
    return p + 8;
}

static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Native elements of es bytes (4 or 8) at src to little-endian bytes at dst. */
static void encode_le(unsigned char *dst, const unsigned char *src, size_t bytes, size_t es) {
    if (es == 4) {
        for (size_t i = 0; i < bytes; i += 4) {
            uint32_t v;
            memcpy(&v, src + i, 4);
            put_u32(dst + i, v);
        }
    } else {
        for (size_t i = 0; i < bytes; i += 8) {
            uint64_t v;
            memcpy(&v, src + i, 8);
            put_u64(dst + i, v);
        }
    }
}

/* The inverse of encode_le. */
static void decode_le(unsigned char *dst, const unsigned char *src, size_t bytes, size_t es) {
    if (es == 4) {
        for (size_t i = 0; i < bytes; i += 4) {
            uint32_t v = get_u32(src + i);
            memcpy(dst + i, &v, 4);
        }
    } else {
        for (size_t i = 0; i < bytes; i += 8) {
            uint64_t v = get_u64(src + i);
            memcpy(dst + i, &v, 8);
        }
    }
}

static uint32_t crc_of(const unsigned char *p, size_t len) {
    return (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), p, len);
}

/* ---- arguments and the name index ----------------------------------------------------- */

/* One expected name. Sorted by name (bytewise, shorter first on a common prefix: the
 * order of strcmp), so that a record's name is found by binary search and duplicates sit
 * next to each other. */
typedef struct ck_slot {
    const char *name;
    size_t len;
    size_t index;    /* position in the caller's arrays */
    size_t rec_off;  /* load: offset of the record that matched it; SIZE_MAX = none yet */
    size_t data_off; /* load: offset of that record's data in the staging buffer */
} ck_slot;

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c) return c;
    return alen < blen ? -1 : alen > blen;
}

static int slot_cmp(const void *a, const void *b) {
    const ck_slot *x = a, *y = b;
    return name_cmp(x->name, x->len, y->name, y->len);
}

static const ck_slot *slot_find(const ck_slot *s, size_t n, const char *name, size_t len) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(name, len, s[mid].name, s[mid].len);
        if (c == 0) return &s[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

/* Checks path, names and tensors, and builds the sorted name index *out (n entries,
 * owned by the caller: wf_free(*out, n * sizeof **out); NULL when n == 0). Allocates
 * nothing unless every argument is valid; WEFT_ERR_INVALID_ARG or WEFT_ERR_NOMEM. */
static weft_status check_args(const char *who, const char *path, size_t n,
                              const char *const *names, const weft_tensor *const *tensors,
                              ck_slot **out) {
    *out = NULL;
    if (!path || !*path) return wf_error(WEFT_ERR_INVALID_ARG, "%s: empty path", who);
    if (n > UINT32_MAX)
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: %zu tensors, at most %u", who, n,
                        (unsigned)UINT32_MAX);
    if (n == 0) return WEFT_OK;
    if (!names || !tensors)
        return wf_error(WEFT_ERR_INVALID_ARG, "%s %s: %s is NULL (n = %zu)", who, path,
                        names ? "tensors" : "names", n);
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i];
        size_t len = name ? strlen(name) : 0;
        if (len == 0)
            return wf_error(WEFT_ERR_INVALID_ARG, "%s %s: name %zu is %s", who, path, i,
                            name ? "empty" : "NULL");
        if (len > CK_NAME_MAX)
            return wf_error(WEFT_ERR_INVALID_ARG, "%s %s: name %zu ('%.40s...') is %zu bytes, "
                            "at most %d", who, path, i, name, len, CK_NAME_MAX);
        const weft_tensor *t = tensors[i];
        if (!t)
            return wf_error(WEFT_ERR_INVALID_ARG, "%s %s: tensor '%s' is NULL", who, path, name);
        size_t es = weft_dtype_size(t->ref.dtype);
        if (es == 0 || t->ref.shape.ndim < 0 || t->ref.shape.ndim > WEFT_MAX_DIMS ||
            t->bytes != wf_shape_numel(&t->ref.shape) * es || (t->bytes && !t->ref.data))
            return wf_error(WEFT_ERR_INVALID_ARG, "%s %s: tensor '%s' is not a valid tensor",
                            who, path, name);
    }
    ck_slot *s = wf_alloc(n * sizeof *s, 16);
    if (!s)
        return wf_error(WEFT_ERR_NOMEM, "%s %s: out of memory for the index of %zu names", who,
                        path, n);
    for (size_t i = 0; i < n; i++)
        s[i] = (ck_slot){.name = names[i], .len = strlen(names[i]), .index = i,
                         .rec_off = SIZE_MAX, .data_off = 0};
    qsort(s, n, sizeof *s, slot_cmp);
    for (size_t i = 1; i < n; i++) {
        if (slot_cmp(&s[i - 1], &s[i]) == 0) {
            size_t a = s[i - 1].index, b = s[i].index;
            wf_free(s, n * sizeof *s);
            return wf_error(WEFT_ERR_INVALID_ARG, "%s %s: name '%s' is given twice (names %zu "
                            "and %zu)", who, path, names[a], a < b ? a : b, a < b ? b : a);
        }
    }
    *out = s;
    return WEFT_OK;
}

/* ---- save ------------------------------------------------------------------------------- */

typedef struct ck_writer {
    FILE *f;
    int failed; /* a write failed; errno_at_failure says why */
    int errno_at_failure;
} ck_writer;

static void write_bytes(ck_writer *w, const void *p, size_t len) {
    if (w->failed || len == 0) return;
    if (fwrite(p, 1, len, w->f) != len) {
        w->failed = 1;
        w->errno_at_failure = errno;
    }
}

/* Record i: head (with its CRC), data in little-endian chunks, data CRC. */
static void write_record(ck_writer *w, const char *name, const weft_tensor *t) {
    unsigned char head[CK_RECORD_HEAD_MAX];
    size_t len = strlen(name);
    unsigned char *p = put_u32(head, (uint32_t)len);
    memcpy(p, name, len);
    p += len;
    p = put_u32(p, (uint32_t)t->ref.dtype);
    p = put_u32(p, (uint32_t)t->ref.shape.ndim);
    for (int d = 0; d < t->ref.shape.ndim; d++) p = put_u64(p, (uint64_t)t->ref.shape.d[d]);
    p = put_u64(p, (uint64_t)t->bytes);
    p = put_u32(p, crc_of(head, (size_t)(p - head)));
    write_bytes(w, head, (size_t)(p - head));

    unsigned char chunk[CK_CHUNK];
    size_t es = weft_dtype_size(t->ref.dtype);
    const unsigned char *src = t->ref.data;
    uLong crc = crc32_z(0L, Z_NULL, 0);
    for (size_t off = 0; off < t->bytes && !w->failed; off += CK_CHUNK) {
        size_t k = t->bytes - off < CK_CHUNK ? t->bytes - off : CK_CHUNK;
        encode_le(chunk, src + off, k, es);
        crc = crc32_z(crc, chunk, k);
        write_bytes(w, chunk, k);
    }
    unsigned char tail[4];
    put_u32(tail, (uint32_t)crc);
    write_bytes(w, tail, 4);
}

weft_status weft_checkpoint_save(const char *path, size_t n, const char *const *names,
                                 const weft_tensor *const *tensors,
                                 const weft_checkpoint_meta *meta) {
    static const char who[] = "weft_checkpoint_save";
    ck_slot *slots = NULL;
    weft_status st = check_args(who, path, n, names, tensors, &slots);
    if (st) return st;
    /* The index was only needed to find duplicate names. */
    wf_free(slots, n * sizeof *slots);

    wf_atomic_file af;
    st = wf_atomic_file_open(path, &af, who);
    if (st) return st;

    weft_checkpoint_meta m = meta ? *meta : (weft_checkpoint_meta){0};
    unsigned char head[CK_HEADER_LEN];
    memcpy(head, CK_MAGIC, CK_MAGIC_LEN);
    unsigned char *p = put_u32(head + CK_MAGIC_LEN, WEFT_CHECKPOINT_VERSION);
    p = put_u32(p, (uint32_t)n);
    p = put_u64(p, m.step);
    p = put_u64(p, m.epoch);
    p = put_u64(p, m.seed);
    p = put_u64(p, m.user);
    put_u32(p, crc_of(head, CK_HEADER_BODY));

    ck_writer w = {.f = af.f};
    write_bytes(&w, head, sizeof head);
    for (size_t i = 0; i < n && !w.failed; i++) write_record(&w, names[i], tensors[i]);
    write_bytes(&w, CK_END, CK_MAGIC_LEN);

    if (w.failed) {
        /* wf_atomic_file has no abort: close and remove the temporary file here; the old
         * checkpoint at path was never touched. */
        char why[128];
        const char *reason = strerror_r(w.errno_at_failure, why, sizeof why);
        fclose(af.f);
        unlink(af.tmp);
        return wf_error(WEFT_ERR_IO, "%s: cannot write %s: %s", who, af.tmp, reason);
    }
    return wf_atomic_file_commit(&af, who);
}

/* ---- load: reading ---------------------------------------------------------------------- */

/* Reads the whole file at path into a new buffer (*buf, *cap bytes allocated for *size
 * bytes of content; free with wf_free(*buf, *cap)). The file is closed on every path. */
static weft_status read_file(const char *path, unsigned char **buf, size_t *cap,
                             size_t *size) {
    char why[128];
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return wf_error(WEFT_ERR_IO, "checkpoint %s: cannot open: %s", path,
                        strerror_r(errno, why, sizeof why));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return wf_error(WEFT_ERR_IO, "checkpoint %s: not a regular file", path);
    }
    if ((uintmax_t)sb.st_size > (uintmax_t)(SIZE_MAX / 2)) {
        fclose(f);
        return wf_error(WEFT_ERR_IO, "checkpoint %s: too large (%jd bytes)", path,
                        (intmax_t)sb.st_size);
    }
    size_t want = (size_t)sb.st_size;
    size_t c = want ? want : 1;
    unsigned char *b = wf_alloc(c, 64);
    if (!b) {
        fclose(f);
        return wf_error(WEFT_ERR_NOMEM, "checkpoint %s: out of memory for a staging buffer of "
                        "%zu bytes", path, want);
    }
    size_t got = 0;
    while (got < want) {
        size_t k = fread(b + got, 1, want - got, f);
        if (k == 0) break;
        got += k;
    }
    int err = ferror(f);
    int saved_errno = errno;
    fclose(f);
    if (err || got != want) {
        wf_free(b, c);
        if (err)
            return wf_error(WEFT_ERR_IO, "checkpoint %s: read failed at offset %zu: %s", path,
                            got, strerror_r(saved_errno, why, sizeof why));
        return wf_error(WEFT_ERR_IO, "checkpoint %s: the file shrank while being read (%zu of "
                        "%zu bytes)", path, got, want);
    }
    *buf = b;
    *cap = c;
    *size = want;
    return WEFT_OK;
}

/* ---- load: parsing ------------------------------------------------------------------------ */

typedef struct ck_reader {
    const unsigned char *p;
    size_t size;
    size_t off;
    const char *path;
    char where[320]; /* what is being read, for messages: "the header", "tensor 'w1' ..." */
} ck_reader;

/* WEFT_OK if len more bytes follow the cursor, else the truncation error. */
static weft_status need(const ck_reader *r, size_t len, const char *what) {
    if (len <= r->size - r->off) return WEFT_OK;
    return wf_error(WEFT_ERR_IO, "checkpoint %s: truncated at offset %zu in %s: %s needs %zu "
                    "bytes, %zu left", r->path, r->off, r->where, what, len, r->size - r->off);
}

static weft_status take_u32(ck_reader *r, const char *what, uint32_t *v) {
    weft_status st = need(r, 4, what);
    if (st) return st;
    *v = get_u32(r->p + r->off);
    r->off += 4;
    return WEFT_OK;
}

static weft_status take_u64(ck_reader *r, const char *what, uint64_t *v) {
    weft_status st = need(r, 8, what);
    if (st) return st;
    *v = get_u64(r->p + r->off);
    r->off += 8;
    return WEFT_OK;
}

/* Reads a stored CRC at the cursor and compares it with the CRC of bytes [from, to). */
static weft_status check_crc(ck_reader *r, size_t from, size_t to, const char *what) {
    size_t at = r->off;
    uint32_t stored;
    weft_status st = take_u32(r, what, &stored);
    if (st) return st;
    uint32_t actual = crc_of(r->p + from, to - from);
    if (stored != actual)
        return wf_error(WEFT_ERR_IO, "checkpoint %s: %s mismatch in %s at offset %zu (stored "
                        "%08x, computed %08x over offsets %zu..%zu): the file is corrupt",
                        r->path, what, r->where, at, (unsigned)stored, (unsigned)actual, from,
                        to);
    return WEFT_OK;
}

typedef struct ck_header {
    uint32_t count;
    weft_checkpoint_meta meta;
} ck_header;

static weft_status read_header(ck_reader *r, ck_header *h) {
    snprintf(r->where, sizeof r->where, "the header");
    weft_status st = need(r, CK_MAGIC_LEN, "the magic");
    if (st) return st;
    if (memcmp(r->p, CK_MAGIC, CK_MAGIC_LEN) != 0)
        return wf_error(WEFT_ERR_IO, "checkpoint %s: not a weft checkpoint (bad magic at "
                        "offset 0)", r->path);
    r->off = CK_MAGIC_LEN;
    uint32_t version;
    if ((st = take_u32(r, "the version", &version))) return st;
    /* The version is checked before the header CRC: a newer format may lay its header out
     * differently, and "newer version" is the message that helps. */
    if (version > WEFT_CHECKPOINT_VERSION)
        return wf_error(WEFT_ERR_IO, "checkpoint %s: version %u, this build reads version %d "
                        "(offset %d)", r->path, (unsigned)version, WEFT_CHECKPOINT_VERSION,
                        CK_MAGIC_LEN);
    if (version == 0)
        return wf_error(WEFT_ERR_IO, "checkpoint %s: invalid version 0 at offset %d", r->path,
                        CK_MAGIC_LEN);
    if ((st = take_u32(r, "the tensor count", &h->count))) return st;
    if ((st = take_u64(r, "the step", &h->meta.step))) return st;
    if ((st = take_u64(r, "the epoch", &h->meta.epoch))) return st;
    if ((st = take_u64(r, "the seed", &h->meta.seed))) return st;
    if ((st = take_u64(r, "the user counter", &h->meta.user))) return st;
    return check_crc(r, 0, CK_HEADER_BODY, "header CRC");
}

typedef struct ck_record {
    size_t off; /* where the record starts */
    const char *name;
    size_t name_len;
    weft_dtype dtype;
    wf_shape shape;
    size_t data_off, data_bytes;
} ck_record;

/* Reads record i at the cursor and moves past it. Checks bounds, the record CRC, that the
 * head is well-formed and, when check_data, the data CRC. */
static weft_status read_record(ck_reader *r, uint32_t i, int check_data, ck_record *rec) {
    weft_status st;
    rec->off = r->off;
    snprintf(r->where, sizeof r->where, "record %u (offset %zu)", (unsigned)i, rec->off);
    uint32_t len;
    if ((st = take_u32(r, "the name length", &len))) return st;
    if (len == 0 || len > CK_NAME_MAX)
        return wf_error(WEFT_ERR_IO, "checkpoint %s: corrupt name length %u at offset %zu in "
                        "%s (1..%d)", r->path, (unsigned)len, rec->off, r->where, CK_NAME_MAX);
    if ((st = need(r, len, "the name"))) return st;
    rec->name = (const char *)r->p + r->off;
    rec->name_len = len;
    r->off += len;
    snprintf(r->where, sizeof r->where, "tensor '%.*s' (record %u at offset %zu)", (int)len,
             rec->name, (unsigned)i, rec->off);
    uint32_t dtype, ndim;
    if ((st = take_u32(r, "the dtype", &dtype))) return st;
    size_t ndim_off = r->off;
    if ((st = take_u32(r, "the rank", &ndim))) return st;
    /* Bounded before the CRC is checked: ndim decides where the CRC is. */
    if (ndim > WEFT_MAX_DIMS)
        return wf_error(WEFT_ERR_IO, "checkpoint %s: corrupt rank %u at offset %zu in %s (at "
                        "most %d)", r->path, (unsigned)ndim, ndim_off, r->where, WEFT_MAX_DIMS);
    uint64_t dims[WEFT_MAX_DIMS];
    for (uint32_t d = 0; d < ndim; d++)
        if ((st = take_u64(r, "a dimension", &dims[d]))) return st;
    uint64_t bytes;
    if ((st = take_u64(r, "the data size", &bytes))) return st;
    if ((st = check_crc(r, rec->off, r->off, "record CRC"))) return st;

    /* The head is intact; is it well-formed? (Only a faulty writer gets here.) */
    if (dtype >= WEFT_DTYPE_COUNT)
        return wf_error(WEFT_ERR_IO, "checkpoint %s: unknown dtype %u in %s", r->path,
                        (unsigned)dtype, r->where);
    size_t es = weft_dtype_size((weft_dtype)dtype);
    if (memchr(rec->name, 0, len))
        return wf_error(WEFT_ERR_IO, "checkpoint %s: a name contains a NUL byte in %s", r->path,
                        r->where);
    rec->dtype = (weft_dtype)dtype;
    rec->shape.ndim = (int)ndim;
    size_t numel = 1;
    for (uint32_t d = 0; d < ndim; d++) {
        if (dims[d] > (uint64_t)INT64_MAX ||
            (dims[d] && numel > SIZE_MAX / es / (size_t)dims[d]))
            return wf_error(WEFT_ERR_IO, "checkpoint %s: dimension %u is %llu in %s", r->path,
                            (unsigned)d, (unsigned long long)dims[d], r->where);
        rec->shape.d[d] = (int64_t)dims[d];
        numel *= (size_t)dims[d];
    }
    if (bytes != (uint64_t)numel * es)
        return wf_error(WEFT_ERR_IO, "checkpoint %s: %s holds %llu data bytes, its shape needs "
                        "%zu", r->path, r->where, (unsigned long long)bytes, numel * es);
    rec->data_bytes = (size_t)bytes;
    if ((st = need(r, rec->data_bytes, "the data"))) return st;
    rec->data_off = r->off;
    r->off += rec->data_bytes;
    if (!check_data) {
        r->off += 4; /* verified on the first pass */
        return WEFT_OK;
    }
    return check_crc(r, rec->data_off, r->off, "data CRC");
}

/* Phase 3: the whole file, without looking at the expected tensors. */
static weft_status check_integrity(ck_reader *r, const ck_header *h) {
    weft_status st;
    ck_record rec;
    for (uint32_t i = 0; i < h->count; i++)
        if ((st = read_record(r, i, 1, &rec))) return st;
    snprintf(r->where, sizeof r->where, "the end marker");
    if ((st = need(r, CK_MAGIC_LEN, "the end magic"))) return st;
    if (memcmp(r->p + r->off, CK_END, CK_MAGIC_LEN) != 0)
        return wf_error(WEFT_ERR_IO, "checkpoint %s: bad end magic at offset %zu after %u "
                        "tensors: the file is corrupt", r->path, r->off, (unsigned)h->count);
    r->off += CK_MAGIC_LEN;
    if (r->off != r->size)
        return wf_error(WEFT_ERR_IO, "checkpoint %s: %zu trailing bytes after the end magic at "
                        "offset %zu", r->path, r->size - r->off, r->off);
    return WEFT_OK;
}

/* Phase 4: every record names an expected tensor, once, with its dtype and shape; every
 * expected tensor is there. Records the data offset of each in its slot. */
static weft_status match_tensors(ck_reader *r, const ck_header *h, ck_slot *slots, size_t n,
                                 weft_tensor *const *tensors) {
    weft_status st;
    ck_record rec;
    for (uint32_t i = 0; i < h->count; i++) {
        if ((st = read_record(r, i, 0, &rec))) return st; /* cannot fail after phase 3 */
        ck_slot *s = (ck_slot *)slot_find(slots, n, rec.name, rec.name_len);
        if (!s)
            return wf_error(WEFT_ERR_INVALID_ARG, "checkpoint %s: unexpected tensor '%.*s' "
                            "(record %u at offset %zu): it is not among the %zu names asked "
                            "for", r->path, (int)rec.name_len, rec.name, (unsigned)i, rec.off,
                            n);
        if (s->rec_off != SIZE_MAX)
            return wf_error(WEFT_ERR_IO, "checkpoint %s: tensor '%s' appears twice (records "
                            "at offsets %zu and %zu): the file is corrupt", r->path, s->name,
                            s->rec_off, rec.off);
        const wf_tref *t = &tensors[s->index]->ref;
        if (rec.dtype != t->dtype || !wf_shape_equal(&rec.shape, &t->shape)) {
            char fs[200], ts[200];
            return wf_error(WEFT_ERR_INVALID_ARG, "checkpoint %s: tensor '%s' is %s %s, the "
                            "model has %s %s (record %u at offset %zu)", r->path, s->name,
                            weft_dtype_name(rec.dtype), wf_shape_str(&rec.shape, fs, sizeof fs),
                            weft_dtype_name(t->dtype), wf_shape_str(&t->shape, ts, sizeof ts),
                            (unsigned)i, rec.off);
        }
        s->rec_off = rec.off;
        s->data_off = rec.data_off;
    }
    for (size_t k = 0; k < n; k++)
        if (slots[k].rec_off == SIZE_MAX)
            return wf_error(WEFT_ERR_INVALID_ARG, "checkpoint %s: tensor '%s' is missing (the "
                            "file holds %u tensors, %zu were asked for)", r->path,
                            slots[k].name, (unsigned)h->count, n);
    return WEFT_OK;
}

weft_status weft_checkpoint_load(const char *path, size_t n, const char *const *names,
                                 weft_tensor *const *tensors, weft_checkpoint_meta *meta) {
    static const char who[] = "weft_checkpoint_load";
    ck_slot *slots = NULL;
    weft_status st =
        check_args(who, path, n, names, (const weft_tensor *const *)tensors, &slots);
    if (st) return st;

    unsigned char *buf = NULL;
    size_t cap = 0, size = 0;
    st = read_file(path, &buf, &cap, &size);
    if (st) goto out;

    ck_reader r = {.p = buf, .size = size, .off = 0, .path = path};
    ck_header h;
    if ((st = read_header(&r, &h))) goto out;
    if ((st = check_integrity(&r, &h))) goto out;
    r.off = CK_HEADER_LEN;
    if ((st = match_tensors(&r, &h, slots, n, tensors))) goto out;

    /* Phase 5: everything checked; nothing below can fail. */
    for (size_t k = 0; k < n; k++) {
        weft_tensor *t = tensors[slots[k].index];
        if (t->bytes)
            decode_le(t->ref.data, buf + slots[k].data_off, t->bytes,
                      weft_dtype_size(t->ref.dtype));
    }
    if (meta) *meta = h.meta;

out:
    wf_free(buf, cap);
    wf_free(slots, n * sizeof *slots);
    return st;
}
