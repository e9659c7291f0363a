/* weft/data.h - datasets: IDX files (MNIST, Fashion-MNIST) and shuffled mini-batches.
 *
 * weft_idx_read reads an IDX file, raw or gzip-compressed (detected from the content,
 * through zlib), and validates everything it reads: the magic number (two zero bytes,
 * a known element type, 1..WEFT_MAX_DIMS dimensions), every dimension (> 0), the total
 * size (no overflow), truncation (fewer bytes than the header announces) and trailing
 * data (more bytes than announced). A failure returns WEFT_ERR_IO (cannot open or read)
 * or WEFT_ERR_INVALID_ARG (bad content) with a message naming the file and the byte
 * offset (in the decompressed stream) where the problem is.
 *
 * A batcher draws mini-batches of rows from a dataset (x: [N, ...] float, y: [N] i32)
 * in a shuffled order that is a pure function of (seed, epoch), so that a run resumed at
 * epoch e sees exactly the batches the uninterrupted run saw.
 *
 * Thread safety: a batcher is used by one thread at a time; weft_idx_read is thread-safe.
 */
#ifndef WEFT_DATA_H
#define WEFT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "weft/status.h"
#include "weft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads an IDX file into a new tensor of `dtype`: f32/f64 elements are the file's values
 * times `scale` (e.g. 1/255 for pixels); i32 holds integer types unscaled (labels) and
 * refuses float files. *out is owned by the caller. */
WEFT_API weft_status weft_idx_read(const char *path, weft_dtype dtype, double scale,
                                   weft_tensor **out);

/* Writes `t` (f32 -> IDX float, f64 -> double, i32 -> int) as a raw IDX file, atomically
 * (temporary file, then rename). For tests and tools. */
WEFT_API weft_status weft_idx_write(const char *path, const weft_tensor *t);

typedef struct weft_batcher weft_batcher;

/* x: [N, ...] float, y: [N] i32 (or NULL); both are borrowed and must outlive the
 * batcher. batch >= 1. With drop_last, a final partial batch is skipped; otherwise the
 * last batch of an epoch may be smaller. *out is owned by the caller. */
WEFT_API weft_status weft_batcher_create(const weft_tensor *x, const weft_tensor *y,
                                         size_t batch, uint64_t seed, int drop_last,
                                         weft_batcher **out);
WEFT_API void weft_batcher_destroy(weft_batcher *b);
/* Starts epoch `epoch` (0, 1, ...): the order is the permutation of (seed, epoch). */
WEFT_API weft_status weft_batcher_start_epoch(weft_batcher *b, uint64_t epoch);
/* The next batch of the epoch: copies its rows into tensors owned by the batcher (valid
 * until the next call), [B, ...] and [B]. Returns WEFT_OK with *x = NULL at the end of
 * the epoch. */
WEFT_API weft_status weft_batcher_next(weft_batcher *b, const weft_tensor **x,
                                       const weft_tensor **y);
/* Number of batches per epoch. */
WEFT_API size_t weft_batcher_batches(const weft_batcher *b);

#ifdef __cplusplus
}
#endif
#endif
