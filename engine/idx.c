/* engine/idx.c - IDX files (the MNIST / Fashion-MNIST format): weft_idx_read, weft_idx_write.
 *
 * Format (Y. LeCun, "THE MNIST DATABASE of handwritten digits", the "IDX file format"):
 *   offset 0  two zero bytes
 *   offset 2  element type: 0x08 ubyte, 0x09 sbyte, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64
 *   offset 3  number of dimensions
 *   offset 4  one big-endian u32 per dimension
 *   then      the elements, row-major, big-endian
 *
 * Reading goes through zlib's gz* interface, which reads gzip and raw files alike; every
 * offset in a message counts bytes of the decompressed stream. The header is validated
 * completely before anything large is allocated, and an announced size the file cannot
 * hold is refused before the tensor is allocated: a raw file's size is known (fstat), and
 * deflate cannot expand more than 1032:1, so a gzip file of c bytes holds at most about
 * 1032 c bytes. A 100-byte file announcing 64 GB therefore fails with "truncated", not
 * with an out-of-memory error. The data is read in 1 MiB chunks and converted chunk by
 * chunk into the tensor (zlib's inflate dominates the time).
 *
 * Thread safety: weft_idx_read and weft_idx_write keep no shared state (thread-safe).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "graph/internal.h"
#include "weft/data.h"

#define IDX_MAX_ELEMS ((uint64_t)1 << 34) /* refused above: no dataset is near this */
#define IDX_CHUNK ((size_t)1 << 20)       /* read/convert unit; a multiple of every size */
#define IDX_DEFLATE_MAX_RATIO 1032u       /* deflate's maximum expansion (zlib FAQ) */

typedef struct idx_type {
    uint8_t code;
    uint8_t size;
    uint8_t is_float;
    const char *name;
} idx_type;

static const idx_type k_types[] = {
    {0x08, 1, 0, "ubyte"}, {0x09, 1, 0, "sbyte"}, {0x0B, 2, 0, "i16"},
    {0x0C, 4, 0, "i32"},   {0x0D, 4, 1, "f32"},   {0x0E, 8, 1, "f64"},
};

static const idx_type *idx_type_find(unsigned code) {
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
        if (k_types[i].code == code) return &k_types[i];
    return NULL;
}

/* ---- big-endian loads and stores (the compiler turns these into bswap) ---------------- */

static inline uint16_t ld_be16(const uint8_t *p) { return (uint16_t)((unsigned)p[0] << 8 | p[1]); }
static inline uint32_t ld_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t ld_be64(const uint8_t *p) {
    return (uint64_t)ld_be32(p) << 32 | ld_be32(p + 4);
}
static inline void st_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void st_be64(uint8_t *p, uint64_t v) {
    st_be32(p, (uint32_t)(v >> 32));
    st_be32(p + 4, (uint32_t)v);
}

static inline int16_t ld_i16(const uint8_t *p) { return (int16_t)ld_be16(p); }
static inline int32_t ld_i32(const uint8_t *p) { return (int32_t)ld_be32(p); }
static inline float ld_f32(const uint8_t *p) {
    uint32_t u = ld_be32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline double ld_f64(const uint8_t *p) {
    uint64_t u = ld_be64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Converts n elements of IDX type `code` at src into dst[0 .. n) of `dtype`. Floats are
 * value * scale, computed in double and rounded once; i32 takes integer values as they
 * are (the caller has refused float files for i32). One loop per (type, dtype) pair so
 * that each loop is branch-free. */
#define IDX_FLOAT_LOOPS(LOAD, SZ)                                                              \
    do {                                                                                       \
        if (dtype == WEFT_F32) {                                                               \
            float *o = dst;                                                                    \
            for (size_t i = 0; i < n; i++) o[i] = (float)((double)LOAD(src + i * (SZ)) * scale); \
        } else if (dtype == WEFT_F64) {                                                        \
            double *o = dst;                                                                   \
            for (size_t i = 0; i < n; i++) o[i] = (double)LOAD(src + i * (SZ)) * scale;        \
        }                                                                                      \
    } while (0)
#define IDX_INT_LOOPS(LOAD, SZ)                                                                \
    do {                                                                                       \
        if (dtype == WEFT_I32) {                                                               \
            int32_t *o = dst;                                                                  \
            for (size_t i = 0; i < n; i++) o[i] = (int32_t)LOAD(src + i * (SZ));               \
        } else {                                                                               \
            IDX_FLOAT_LOOPS(LOAD, SZ);                                                         \
        }                                                                                      \
    } while (0)
#define LD_U8(p) (*(p))
#define LD_S8(p) ((int8_t) * (p))

static void idx_convert(const uint8_t *src, size_t n, unsigned code, weft_dtype dtype,
                        double scale, void *dst) {
    switch (code) {
    case 0x08: IDX_INT_LOOPS(LD_U8, 1); break;
    case 0x09: IDX_INT_LOOPS(LD_S8, 1); break;
    case 0x0B: IDX_INT_LOOPS(ld_i16, 2); break;
    case 0x0C: IDX_INT_LOOPS(ld_i32, 4); break;
    case 0x0D: IDX_FLOAT_LOOPS(ld_f32, 4); break;
    case 0x0E: IDX_FLOAT_LOOPS(ld_f64, 8); break;
    default: break; /* unreachable: the type was validated */
    }
}

/* ---- reading -------------------------------------------------------------------------- */

typedef struct idx_reader {
    gzFile gz;
    const char *path;
} idx_reader;

#define RD_WHO "weft_idx_read"

/* The status and message for a failed gzread at decompressed offset `at`: a system read
 * error is WEFT_ERR_IO, a corrupt gzip stream bad content (WEFT_ERR_INVALID_ARG). */
static weft_status idx_read_error(idx_reader *r, uint64_t at) {
    int errnum = Z_OK;
    const char *msg = gzerror(r->gz, &errnum);
    if (!msg) msg = "";
    if (strncmp(msg, "<fd:", 4) == 0 && strstr(msg, ": ")) /* gzdopen's "<fd:3>: " prefix */
        msg = strstr(msg, ": ") + 2;
    if (errnum == Z_MEM_ERROR)
        return wf_error(WEFT_ERR_NOMEM, RD_WHO ": %s: offset %llu: zlib is out of memory",
                        r->path, (unsigned long long)at);
    if (errnum == Z_ERRNO)
        return wf_error(WEFT_ERR_IO, RD_WHO ": %s: offset %llu: read failed: %s", r->path,
                        (unsigned long long)at, *msg ? msg : "system error");
    /* zlib inflates ahead of what we asked for (and checks the CRC at the member's end),
     * so the damage is at or after `at`, not necessarily there. */
    return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset %llu: corrupt gzip data at or "
                    "after this offset: %s", r->path, (unsigned long long)at,
                    *msg ? msg : "unknown error");
}

/* Reads up to n bytes, stopping early only at the end of the stream; *got says how many.
 * at: the decompressed offset of buf[0], for the message of a read error. */
static weft_status idx_read_full(idx_reader *r, void *buf, size_t n, uint64_t at, size_t *got) {
    size_t done = 0;
    while (done < n) {
        size_t want = n - done;
        if (want > (size_t)INT_MAX / 2) want = (size_t)INT_MAX / 2;
        int k = gzread(r->gz, (char *)buf + done, (unsigned)want);
        if (k < 0) return idx_read_error(r, at + done);
        if (k == 0) break;
        done += (size_t)k;
    }
    *got = done;
    return WEFT_OK;
}

/* " (the gzip stream ends early)" when the short read came from a cut compressed stream. */
static const char *idx_cut_note(idx_reader *r) {
    int errnum = Z_OK;
    gzerror(r->gz, &errnum);
    return errnum == Z_BUF_ERROR ? " (the gzip stream ends early)" : "";
}

/* Opens path for gz reading; *size is the file's size for a regular file, -1 otherwise. */
static weft_status idx_open(idx_reader *r, const char *path, long long *size) {
    r->path = path;
    r->gz = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return wf_error(WEFT_ERR_IO, RD_WHO ": %s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int e = fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (e) {
        close(fd);
        return wf_error(WEFT_ERR_IO, RD_WHO ": %s: cannot read: %s", path, strerror(e));
    }
    *size = S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
    r->gz = gzdopen(fd, "rb"); /* owns fd from here: gzclose closes it */
    if (!r->gz) {
        close(fd);
        return wf_error(WEFT_ERR_NOMEM, RD_WHO ": %s: out of memory opening the file", path);
    }
    gzbuffer(r->gz, 256u << 10); /* larger than the default 8 KiB: fewer read calls */
    return WEFT_OK;
}

/* The validated header. */
typedef struct idx_header {
    const idx_type *type;
    wf_shape shape;
    uint64_t numel;
    uint64_t hdr_bytes;  /* 4 + 4 * ndim */
    uint64_t data_bytes; /* numel * type size */
} idx_header;

/* Reads and validates the header (magic, type, rank, dimensions, total size) and checks
 * that the element type can become `dtype`. */
static weft_status idx_read_header(idx_reader *r, weft_dtype dtype, idx_header *h) {
    const char *p = r->path;
    uint8_t buf[4 * WEFT_MAX_DIMS];
    size_t got;
    weft_status st = idx_read_full(r, buf, 4, 0, &got);
    if (st) return st;
    if (got < 4)
        return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset 0: truncated header: "
                        "expected 4 bytes (magic, type, rank), found %zu%s", p, got,
                        idx_cut_note(r));
    if (buf[0] != 0 || buf[1] != 0)
        return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset %d: bad magic 0x%02x 0x%02x, "
                        "expected 0x00 0x00 (not an IDX file)", p, buf[0] != 0 ? 0 : 1,
                        buf[0], buf[1]);
    h->type = idx_type_find(buf[2]);
    if (!h->type)
        return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset 2: unknown element type "
                        "0x%02x (known: 0x08 ubyte, 0x09 sbyte, 0x0b i16, 0x0c i32, 0x0d f32, "
                        "0x0e f64)", p, buf[2]);
    unsigned ndim = buf[3];
    if (ndim == 0 || ndim > WEFT_MAX_DIMS)
        return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset 3: %u dimensions, expected "
                        "1..%d", p, ndim, WEFT_MAX_DIMS);
    if (dtype == WEFT_I32 && h->type->is_float)
        return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset 2: element type %s cannot "
                        "be read as i32 (only integer types can)", p, h->type->name);
    h->hdr_bytes = 4 + 4 * (uint64_t)ndim;
    if ((st = idx_read_full(r, buf, 4 * (size_t)ndim, 4, &got))) return st;
    if (got < 4 * (size_t)ndim)
        return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset 4: truncated header: "
                        "expected %u bytes of dimensions, found %zu%s", p, 4 * ndim, got,
                        idx_cut_note(r));
    h->shape.ndim = (int)ndim;
    h->numel = 1;
    for (unsigned i = 0; i < ndim; i++) {
        uint32_t d = ld_be32(buf + 4 * i);
        if (d == 0)
            return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset %u: dimension %u is 0",
                            p, 4 + 4 * i, i);
        if (h->numel > IDX_MAX_ELEMS / d)
            return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset %u: dimension %u (%u) "
                            "makes too many elements (more than 2^34)", p, 4 + 4 * i, i, d);
        h->numel *= d;
        h->shape.d[i] = d;
    }
    h->data_bytes = h->numel * h->type->size;
    if (h->numel > SIZE_MAX / 8) /* only on a 32-bit system */
        return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset 4: %llu elements do not fit "
                        "in memory", p, (unsigned long long)h->numel);
    return WEFT_OK;
}

/* Refuses, before anything is allocated, a size the file cannot hold (see the top). */
static weft_status idx_check_size(idx_reader *r, const idx_header *h, long long fsize) {
    if (fsize < 0) return WEFT_OK; /* not a regular file: found out while reading */
    uint64_t total = h->hdr_bytes + h->data_bytes;
    uint64_t fs = (uint64_t)fsize;
    if (gzdirect(r->gz)) {
        if (fs < total)
            return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset %llu: truncated: expected "
                            "%llu bytes of data, found %llu", r->path,
                            (unsigned long long)h->hdr_bytes, (unsigned long long)h->data_bytes,
                            (unsigned long long)(fs - h->hdr_bytes));
        if (fs > total)
            return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset %llu: trailing data: %llu "
                            "bytes after the %llu bytes the header announces", r->path,
                            (unsigned long long)total, (unsigned long long)(fs - total),
                            (unsigned long long)total);
        return WEFT_OK;
    }
    if (fs < UINT64_MAX / IDX_DEFLATE_MAX_RATIO && total > fs * IDX_DEFLATE_MAX_RATIO)
        return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset %llu: truncated: expected "
                        "%llu bytes of data, more than %llu compressed bytes can hold",
                        r->path, (unsigned long long)h->hdr_bytes,
                        (unsigned long long)h->data_bytes, (unsigned long long)fs);
    return WEFT_OK;
}

/* Reads the data into t (chunk by chunk), then checks that the stream ends there. */
static weft_status idx_read_data(idx_reader *r, const idx_header *h, weft_dtype dtype,
                                 double scale, weft_tensor *t) {
    uint8_t *buf = wf_alloc(IDX_CHUNK, 64);
    if (!buf) return wf_error(WEFT_ERR_NOMEM, RD_WHO ": %s: out of memory", r->path);
    weft_status st = WEFT_OK;
    size_t osize = weft_dtype_size(dtype), esize = h->type->size;
    uint8_t *dst = t->ref.data;
    uint64_t done = 0;
    while (done < h->data_bytes) {
        size_t want = h->data_bytes - done < IDX_CHUNK ? (size_t)(h->data_bytes - done) : IDX_CHUNK;
        size_t got;
        if ((st = idx_read_full(r, buf, want, h->hdr_bytes + done, &got))) goto out;
        if (got < want) {
            st = wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset %llu: truncated: expected "
                          "%llu bytes of data, found %llu%s", r->path,
                          (unsigned long long)h->hdr_bytes, (unsigned long long)h->data_bytes,
                          (unsigned long long)(done + got), idx_cut_note(r));
            goto out;
        }
        /* done and want are multiples of esize: IDX_CHUNK is a multiple of every size */
        idx_convert(buf, want / esize, h->type->code, dtype, scale, dst + done / esize * osize);
        done += want;
    }
    uint64_t extra = 0;
    for (;;) { /* anything after the data is an error; count it for the message */
        size_t got;
        if ((st = idx_read_full(r, buf, IDX_CHUNK, h->hdr_bytes + done + extra, &got))) goto out;
        extra += got;
        if (got < IDX_CHUNK) break;
    }
    if (extra)
        st = wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset %llu: trailing data: %llu bytes "
                      "after the %llu bytes the header announces", r->path,
                      (unsigned long long)(h->hdr_bytes + done), (unsigned long long)extra,
                      (unsigned long long)(h->hdr_bytes + done));
    else if (*idx_cut_note(r)) /* all the data, but the gzip trailer (CRC, size) is missing */
        st = wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: offset %llu: truncated: the gzip stream "
                      "ends early (its check trailer is missing)", r->path,
                      (unsigned long long)(h->hdr_bytes + done));
out:
    wf_free(buf, IDX_CHUNK);
    return st;
}

weft_status weft_idx_read(const char *path, weft_dtype dtype, double scale, weft_tensor **out) {
    if (!out) return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": out is NULL");
    *out = NULL;
    if (!path || !*path) return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": empty path");
    if (weft_dtype_size(dtype) == 0)
        return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: unknown dtype %d", path, (int)dtype);
    if (dtype != WEFT_I32 && !isfinite(scale))
        return wf_error(WEFT_ERR_INVALID_ARG, RD_WHO ": %s: scale is %g", path, scale);
    idx_reader r;
    long long fsize = -1;
    weft_status st = idx_open(&r, path, &fsize);
    if (st) return st;
    idx_header h;
    weft_tensor *t = NULL;
    if (!(st = idx_read_header(&r, dtype, &h)) && !(st = idx_check_size(&r, &h, fsize)) &&
        !(st = wf_tensor_new(dtype, &h.shape, &t)))
        st = idx_read_data(&r, &h, dtype, scale, t);
    gzclose(r.gz); /* a read-side close cannot lose data; errors were seen by gzread */
    if (st) {
        weft_tensor_destroy(t);
        return st;
    }
    *out = t;
    return WEFT_OK;
}

/* ---- writing -------------------------------------------------------------------------- */

#define WR_WHO "weft_idx_write"

weft_status weft_idx_write(const char *path, const weft_tensor *t) {
    if (!t) return wf_error(WEFT_ERR_INVALID_ARG, WR_WHO ": tensor is NULL");
    if (!path || !*path) return wf_error(WEFT_ERR_INVALID_ARG, WR_WHO ": empty path");
    const wf_tref *ref = &t->ref;
    unsigned code, size;
    switch (ref->dtype) {
    case WEFT_F32: code = 0x0D, size = 4; break;
    case WEFT_F64: code = 0x0E, size = 8; break;
    case WEFT_I32: code = 0x0C, size = 4; break;
    default:
        return wf_error(WEFT_ERR_INVALID_ARG, WR_WHO ": %s: unknown dtype %d", path,
                        (int)ref->dtype);
    }
    char sbuf[160];
    if (ref->shape.ndim < 1)
        return wf_error(WEFT_ERR_INVALID_ARG, WR_WHO ": %s: a scalar cannot be written (IDX "
                        "needs 1..%d dimensions)", path, WEFT_MAX_DIMS);
    for (int i = 0; i < ref->shape.ndim; i++)
        if (ref->shape.d[i] < 1 || ref->shape.d[i] > (int64_t)UINT32_MAX)
            return wf_error(WEFT_ERR_INVALID_ARG, WR_WHO ": %s: tensor %s: IDX dimensions are "
                            "1..4294967295", path, wf_shape_str(&ref->shape, sbuf, sizeof sbuf));
    /* The largest readable file: refuse to write what weft_idx_read would refuse. */
    if (wf_shape_numel(&ref->shape) > IDX_MAX_ELEMS)
        return wf_error(WEFT_ERR_INVALID_ARG, WR_WHO ": %s: tensor %s: more than 2^34 elements",
                        path, wf_shape_str(&ref->shape, sbuf, sizeof sbuf));

    wf_atomic_file af;
    weft_status st = wf_atomic_file_open(path, &af, WR_WHO);
    if (st) return st;
    uint8_t buf[16384]; /* a multiple of every element size */
    buf[0] = buf[1] = 0;
    buf[2] = (uint8_t)code;
    buf[3] = (uint8_t)ref->shape.ndim;
    for (int i = 0; i < ref->shape.ndim; i++) st_be32(buf + 4 + 4 * i, (uint32_t)ref->shape.d[i]);
    size_t hdr = 4 + 4 * (size_t)ref->shape.ndim;
    int ok = fwrite(buf, 1, hdr, af.f) == hdr;
    const uint8_t *src = ref->data;
    size_t n = wf_shape_numel(&ref->shape), per = sizeof buf / size;
    for (size_t i = 0; ok && i < n; i += per) {
        size_t k = n - i < per ? n - i : per;
        const uint8_t *s = src + i * size;
        for (size_t j = 0; j < k; j++) {
            if (size == 4) {
                uint32_t u;
                memcpy(&u, s + 4 * j, 4);
                st_be32(buf + 4 * j, u);
            } else {
                uint64_t u;
                memcpy(&u, s + 8 * j, 8);
                st_be64(buf + 8 * j, u);
            }
        }
        ok = fwrite(buf, size, k, af.f) == k;
    }
    /* A failed fwrite leaves the stream's error flag set: commit then removes the
     * temporary file and reports WEFT_ERR_IO. */
    return wf_atomic_file_commit(&af, WR_WHO);
}
