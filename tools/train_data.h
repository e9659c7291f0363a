/* tools/train_data.h - the train and test splits of an IDX dataset (Fashion-MNIST layout).
 *
 * A split is read with weft_idx_read: images as f32 scaled by 1/255, then seen as [N, D]
 * (D = the product of the image dimensions, 784 for 28x28) through a borrowed tensor over
 * the same data; labels as i32 [N], each checked to lie in [0, TRAIN_CLASSES).
 *
 * Ownership: the dataset owns its tensors (train_data_free). Main thread only.
 */
#ifndef WEFT_TOOLS_TRAIN_DATA_H
#define WEFT_TOOLS_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "weft.h"

#define TRAIN_CLASSES 10

typedef struct train_split {
    weft_tensor *images; /* as read: [N, rows, cols] f32 */
    weft_tensor *x;      /* [N, D] f32, borrowing images' data */
    weft_tensor *y;      /* [N] i32 */
    size_t n;
} train_split;

typedef struct train_dataset {
    train_split train, test;
    int64_t width; /* D */
} train_dataset;

/* Reads the four files from `dir`: for each name the ".gz" file is tried first, then the
 * uncompressed one. A missing directory or file prints the hint to install
 * dataset-fashion-mnist or pass --data; a bad file prints weft's message. 0 or -1. */
int train_data_load(const char *dir, train_dataset *out);
/* Zero-initialised or loaded; frees everything. */
void train_data_free(train_dataset *d);

#endif
