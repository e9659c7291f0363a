/* tools/train_data.c - loading the dataset (see train_data.h). */
#include "tools/train_data.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/train_common.h"

#define INSTALL_HINT                                                                     \
    "install the Debian package with `sudo apt-get install dataset-fashion-mnist`, or " \
    "pass --data DIR"

/* The path of `name` in dir: name.gz if it exists, else name. -1 (with the hint) if
 * neither exists. */
static int find_file(const char *dir, const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s.gz", dir, name);
    if (access(path, R_OK) == 0)
        return 0;
    snprintf(path, cap, "%s/%s", dir, name);
    if (access(path, R_OK) == 0)
        return 0;
    return train_fail("dataset file %s/%s.gz not found (%s): %s", dir, name, strerror(errno),
                      INSTALL_HINT);
}

static int load_split(const char *dir, const char *images_name, const char *labels_name,
                      train_split *s)
{
    char ipath[4096], lpath[4096];
    if (find_file(dir, images_name, ipath, sizeof ipath) != 0 ||
        find_file(dir, labels_name, lpath, sizeof lpath) != 0)
        return -1;
    if (train_check(weft_idx_read(ipath, WEFT_F32, 1.0 / 255.0, &s->images), "reading %s",
                    ipath) != 0 ||
        train_check(weft_idx_read(lpath, WEFT_I32, 1.0, &s->y), "reading %s", lpath) != 0)
        return -1;
    size_t nd = weft_tensor_ndim(s->images);
    if (nd < 2)
        return train_fail("%s: expected images [N, rows, cols], the file has %zu dimension(s)",
                          ipath, nd);
    int64_t n = weft_tensor_dim(s->images, 0), width = 1;
    for (size_t i = 1; i < nd; i++)
        width *= weft_tensor_dim(s->images, i);
    if (weft_tensor_ndim(s->y) != 1 || weft_tensor_dim(s->y, 0) != n)
        return train_fail("%s: expected %lld labels (one per image of %s), found shape with "
                          "%zu dimension(s) and %lld entries", lpath, (long long)n, ipath,
                          weft_tensor_ndim(s->y), (long long)weft_tensor_dim(s->y, 0));
    const int32_t *lab = weft_tensor_data_const(s->y);
    for (int64_t i = 0; i < n; i++)
        if (lab[i] < 0 || lab[i] >= TRAIN_CLASSES)
            return train_fail("%s: label %d of item %lld is outside [0, %d)", lpath,
                              (int)lab[i], (long long)i, TRAIN_CLASSES);
    const int64_t dims[2] = {n, width};
    s->n = (size_t)n;
    return train_check(weft_tensor_from_data(WEFT_F32, 2, dims, weft_tensor_data(s->images),
                                             WEFT_BORROW, &s->x),
                       "flattening %s", ipath);
}

int train_data_load(const char *dir, train_dataset *d)
{
    memset(d, 0, sizeof *d);
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return train_fail("no dataset directory %s (%s): %s", dir, strerror(errno),
                          INSTALL_HINT);
    if (!S_ISDIR(sb.st_mode))
        return train_fail("dataset path %s is not a directory: %s", dir, INSTALL_HINT);
    if (load_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", &d->train) != 0 ||
        load_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", &d->test) != 0)
        return -1;
    d->width = weft_tensor_dim(d->train.x, 1);
    if (weft_tensor_dim(d->test.x, 1) != d->width)
        return train_fail("%s: test images have %lld values each, training images %lld", dir,
                          (long long)weft_tensor_dim(d->test.x, 1), (long long)d->width);
    return 0;
}

static void split_free(train_split *s)
{
    weft_tensor_destroy(s->x); /* borrows images: destroyed first */
    weft_tensor_destroy(s->images);
    weft_tensor_destroy(s->y);
}

void train_data_free(train_dataset *d)
{
    split_free(&d->train);
    split_free(&d->test);
    memset(d, 0, sizeof *d);
}
