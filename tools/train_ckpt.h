/* tools/train_ckpt.h - the training checkpoint: parameters, optimizer state, and meta
 * (epochs completed, optimizer steps, --seed, and in `user` a fingerprint of the settings
 * that shape the numbers: input width, --hidden, --optim, --lr, --momentum (momentum
 * only), --weight-decay, --batch). Not in the fingerprint: --mode (both modes compute the
 * same numbers, so a checkpoint of one resumes in the other), --threads (results do not
 * depend on it), --epochs, --max-batches, --data.
 *
 * Written with weft_checkpoint_save (atomic: temporary file, fsync, rename). Main thread
 * only; errors follow train_common.h.
 */
#ifndef WEFT_TOOLS_TRAIN_CKPT_H
#define WEFT_TOOLS_TRAIN_CKPT_H

#include <stdint.h>

#include "tools/train_net.h"
#include "tools/train_options.h"

uint64_t train_ckpt_fingerprint(const train_options *o, int64_t input_width);

int train_ckpt_save(train_net *net, const char *path, uint64_t fingerprint, uint64_t seed,
                    uint64_t epochs_done, uint64_t step);
/* Loads `path` into the net; refuses (-1) a file that is corrupt, holds other tensors, or
 * was written with another seed or other settings. */
int train_ckpt_load(train_net *net, const char *path, uint64_t fingerprint, uint64_t seed,
                    uint64_t *epochs_done, uint64_t *step);

#endif
