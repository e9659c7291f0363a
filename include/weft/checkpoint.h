/* weft/checkpoint.h - checkpoints: named tensors (parameters, optimizer state) and a
 * few counters, in a versioned binary format.
 *
 * Format (little-endian), version 1:
 *   header: magic "WEFTCKPT", u32 version, u32 tensor count, u64 step, u64 epoch,
 *           u64 seed, u64 user, u32 CRC-32 of the header bytes before it;
 *   per tensor: u32 name length, name bytes, u32 dtype, u32 ndim, i64 dims[ndim],
 *           u64 data bytes, u32 CRC-32 of this record's bytes before the data,
 *           data, u32 CRC-32 of the data;
 *   end: magic "WEFTEND!".
 * A checkpoint is written to "<path>.tmp", flushed, fsync'ed and renamed over path, so a
 * crash leaves either the old checkpoint or the new one, never half of one.
 *
 * Loading checks everything before it changes anything: magic, version, every checksum,
 * truncation, trailing bytes, and that the file holds exactly the expected names with
 * the expected dtypes and shapes. A corrupt, truncated or mismatching file is refused
 * (WEFT_ERR_IO / WEFT_ERR_INVALID_ARG, the message names the file, the offset and the
 * tensor) and the tensors are left untouched.
 *
 * Thread safety: the functions are thread-safe for distinct paths and tensors.
 */
#ifndef WEFT_CHECKPOINT_H
#define WEFT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "weft/status.h"
#include "weft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_CHECKPOINT_VERSION 1

typedef struct weft_checkpoint_meta {
    uint64_t step;  /* optimizer steps taken */
    uint64_t epoch; /* epochs completed */
    uint64_t seed;  /* the run's seed */
    uint64_t user;  /* free for the application */
} weft_checkpoint_meta;

/* Saves n tensors under unique non-empty names (at most 255 bytes). */
WEFT_API weft_status weft_checkpoint_save(const char *path, size_t n, const char *const *names,
                                          const weft_tensor *const *tensors,
                                          const weft_checkpoint_meta *meta);
/* Loads a checkpoint into n existing tensors, matched by name; meta may be NULL. */
WEFT_API weft_status weft_checkpoint_load(const char *path, size_t n, const char *const *names,
                                          weft_tensor *const *tensors,
                                          weft_checkpoint_meta *meta);

#ifdef __cplusplus
}
#endif
#endif
