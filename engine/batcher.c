/* engine/batcher.c - shuffled mini-batches of rows: weft_batcher_*.
 *
 * The order of an epoch is a Fisher-Yates shuffle (Knuth, TAOCP vol. 2, Algorithm P) of
 * the identity, whose i-th swap draws from a counter-based generator: the random word of
 * step i is splitmix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number
 * generators", 2014) of key(seed, epoch) + i * golden ratio, reduced to [0, i] by Lemire's
 * multiply-shift (bias below i / 2^64, far under anything observable). The permutation
 * is thus a pure function of (seed, epoch, N): nothing carries over from one epoch to the
 * next, so a run resumed at epoch e sees the batches the uninterrupted run saw.
 *
 * Memory: the batcher allocates everything at creation (the permutation and one x and
 * one y tensor of min(batch, N) rows); weft_batcher_next only copies rows. A full batch
 * is returned in those tensors; a final partial batch of B rows in views of B rows over
 * the same buffers.
 *
 * Thread safety: a batcher is used by one thread at a time.
 */
#include <string.h>

#include "graph/internal.h"
#include "weft/data.h"

#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)

struct weft_batcher {
    const weft_tensor *x, *y; /* borrowed */
    size_t n;                 /* rows */
    size_t batch;
    size_t row_bytes;         /* bytes of one row of x */
    size_t nbatches;
    uint64_t seed;
    int drop_last;
    int started;              /* weft_batcher_start_epoch was called */
    size_t pos;               /* next index into perm */
    size_t *perm;             /* n entries */
    weft_tensor *bx, *by;     /* owned: [min(batch, n), ...] and [min(batch, n)] or NULL */
    weft_tensor vx, vy;       /* views over bx, by for a partial batch */
};

static uint64_t splitmix64_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Fills perm with the permutation of (seed, epoch). */
static void batcher_shuffle(size_t *perm, size_t n, uint64_t seed, uint64_t epoch) {
    uint64_t key = splitmix64_mix(splitmix64_mix(seed + GOLDEN) ^ (epoch * GOLDEN + 1));
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i-- > 1;) {
        uint64_t r = splitmix64_mix(key + (uint64_t)i * GOLDEN);
        size_t j = (size_t)(((unsigned __int128)r * (uint64_t)(i + 1)) >> 64); /* in [0, i] */
        size_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

weft_status weft_batcher_create(const weft_tensor *x, const weft_tensor *y, size_t batch,
                                uint64_t seed, int drop_last, weft_batcher **out) {
    static const char *who = "weft_batcher_create";
    if (!out) return wf_error(WEFT_ERR_INVALID_ARG, "%s: out is NULL", who);
    *out = NULL;
    if (!x) return wf_error(WEFT_ERR_INVALID_ARG, "%s: x is NULL", who);
    if (batch < 1) return wf_error(WEFT_ERR_INVALID_ARG, "%s: batch is 0", who);
    char s1[160], s2[160];
    if (x->ref.dtype != WEFT_F32 && x->ref.dtype != WEFT_F64)
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: x is %s %s, expected a float tensor", who,
                        weft_dtype_name(x->ref.dtype), wf_shape_str(&x->ref.shape, s1, sizeof s1));
    if (x->ref.shape.ndim < 1)
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: x is a scalar, expected [N, ...]", who);
    size_t n = (size_t)x->ref.shape.d[0];
    if (y && (y->ref.dtype != WEFT_I32 || y->ref.shape.ndim != 1 || (size_t)y->ref.shape.d[0] != n))
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: x is %s, y is %s %s, expected i32 [%zu]", who,
                        wf_shape_str(&x->ref.shape, s1, sizeof s1), weft_dtype_name(y->ref.dtype),
                        wf_shape_str(&y->ref.shape, s2, sizeof s2), n);

    weft_batcher *b = wf_calloc(sizeof *b, 16);
    if (!b) return wf_error(WEFT_ERR_NOMEM, "%s: out of memory", who);
    b->x = x;
    b->y = y;
    b->n = n;
    b->batch = batch;
    b->row_bytes = n ? x->bytes / n : 0;
    b->nbatches = drop_last ? n / batch : n / batch + (n % batch != 0);
    b->seed = seed;
    b->drop_last = drop_last != 0;
    size_t rows = batch < n ? batch : n;
    wf_shape shape = x->ref.shape;
    shape.d[0] = (int64_t)rows;
    weft_status st = WEFT_OK;
    if (n && !(b->perm = wf_alloc(n * sizeof *b->perm, 16)))
        st = wf_error(WEFT_ERR_NOMEM, "%s: out of memory for %zu rows", who, n);
    if (!st) st = wf_tensor_new(x->ref.dtype, &shape, &b->bx);
    if (!st && y) {
        wf_shape ys = {.ndim = 1, .d = {(int64_t)rows}};
        st = wf_tensor_new(WEFT_I32, &ys, &b->by);
    }
    if (st) {
        weft_batcher_destroy(b);
        return st;
    }
    *out = b;
    return WEFT_OK;
}

void weft_batcher_destroy(weft_batcher *b) {
    if (!b) return;
    weft_tensor_destroy(b->bx);
    weft_tensor_destroy(b->by);
    if (b->perm) wf_free(b->perm, b->n * sizeof *b->perm);
    wf_free(b, sizeof *b);
}

weft_status weft_batcher_start_epoch(weft_batcher *b, uint64_t epoch) {
    if (!b) return wf_error(WEFT_ERR_INVALID_ARG, "weft_batcher_start_epoch: batcher is NULL");
    batcher_shuffle(b->perm, b->n, b->seed, epoch);
    b->pos = 0;
    b->started = 1;
    return WEFT_OK;
}

weft_status weft_batcher_next(weft_batcher *b, const weft_tensor **x, const weft_tensor **y) {
    if (x) *x = NULL;
    if (y) *y = NULL;
    if (!b || !x)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_batcher_next: %s is NULL", b ? "x" : "batcher");
    if (!b->started)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_batcher_next: no epoch started (call "
                        "weft_batcher_start_epoch first)");
    size_t left = b->n - b->pos;
    if (left == 0 || (b->drop_last && left < b->batch)) {
        b->pos = b->n; /* the epoch is over: keep answering "end" */
        return WEFT_OK;
    }
    size_t rows = left < b->batch ? left : b->batch;
    const size_t *idx = b->perm + b->pos;
    const uint8_t *xs = b->x->ref.data;
    uint8_t *xd = b->bx->ref.data;
    size_t rb = b->row_bytes;
    for (size_t k = 0; k < rows; k++) memcpy(xd + k * rb, xs + idx[k] * rb, rb);
    if (b->y) {
        const int32_t *ys = b->y->ref.data;
        int32_t *yd = b->by->ref.data;
        for (size_t k = 0; k < rows; k++) yd[k] = ys[idx[k]];
    }
    b->pos += rows;
    if (rows == b->batch) {
        *x = b->bx;
        if (y) *y = b->by;
        return WEFT_OK;
    }
    wf_shape shape = b->x->ref.shape;
    shape.d[0] = (int64_t)rows;
    wf_tensor_view(&b->vx, b->x->ref.dtype, &shape, xd);
    *x = &b->vx;
    if (b->y) {
        wf_shape ys = {.ndim = 1, .d = {(int64_t)rows}};
        wf_tensor_view(&b->vy, WEFT_I32, &ys, b->by->ref.data);
        if (y) *y = &b->vy;
    }
    return WEFT_OK;
}

size_t weft_batcher_batches(const weft_batcher *b) { return b ? b->nbatches : 0; }
