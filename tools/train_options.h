/* tools/train_options.h - the weft-train command line.
 *
 *   weft-train [--hidden 256,128] [--epochs 5] [--batch 128] [--optim sgd|momentum|adam]
 *              [--lr X] [--momentum 0.9] [--weight-decay 0] [--threads N] [--seed 1]
 *              [--data DIR] [--checkpoint FILE [--resume]] [--mode static|dynamic]
 *              [--json] [--max-batches N] [--quiet]
 *
 * Thread safety: not thread-safe (parsing happens once, in main).
 */
#ifndef WEFT_TOOLS_TRAIN_OPTIONS_H
#define WEFT_TOOLS_TRAIN_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

#include "weft.h"

#define TRAIN_MAX_HIDDEN 16
#define TRAIN_DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

typedef enum train_mode {
    TRAIN_MODE_STATIC,  /* one graph, a training plan and an evaluation plan */
    TRAIN_MODE_DYNAMIC  /* a new graph per batch (weft_dyn_*), weft_optim_step */
} train_mode;

typedef struct train_options {
    int64_t hidden[TRAIN_MAX_HIDDEN]; /* hidden layer widths, default 256,128 */
    size_t nhidden;
    uint64_t epochs;        /* default 5 */
    uint64_t batch;         /* default 128 */
    weft_optim_kind optim;  /* default momentum */
    double lr;              /* default 0.05; Adam: 1e-3 */
    double momentum;        /* default 0.9 (momentum only) */
    double weight_decay;    /* default 0 */
    unsigned threads;       /* 0 = one per core (the default) */
    uint64_t seed;          /* default 1: parameter init and data order */
    const char *data_dir;   /* default TRAIN_DEFAULT_DATA */
    const char *checkpoint; /* NULL = none */
    int resume;             /* load `checkpoint` first and continue */
    train_mode mode;        /* default static */
    int json;               /* one JSON object per epoch on stdout */
    uint64_t max_batches;   /* 0 = every batch of an epoch */
    int quiet;              /* no banner, no progress bar, no per-epoch text */
} train_options;

/* Parses argv. Returns 0 on success, 1 if --help was printed (exit 0), -1 on an error
 * (a message on stderr; exit 2). */
int train_options_parse(int argc, char **argv, train_options *out);
void train_options_usage(FILE *out);

/* "sgd", "momentum", "adam"; "static", "dynamic". */
const char *train_optim_name(weft_optim_kind kind);
const char *train_mode_name(train_mode mode);

#endif
