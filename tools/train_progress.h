/* tools/train_progress.h - what weft-train prints: the progress bar of an epoch (on a
 * terminal) and the line that closes each epoch (text or JSON).
 *
 * The bar is redrawn in place ("\r", erase line) at most every 100 ms and at the last
 * batch: batches done/total, the running mean loss, samples/s and the time left. It is
 * drawn only when stdout is a terminal and neither --json nor --quiet is given; when the
 * epoch ends it is erased and replaced by the epoch's line.
 *
 * Main thread only.
 */
#ifndef WEFT_TOOLS_TRAIN_PROGRESS_H
#define WEFT_TOOLS_TRAIN_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

typedef struct train_progress {
    int active;      /* drawing (terminal, not --json or --quiet) */
    uint64_t epoch;  /* 1-based */
    uint64_t epochs;
    size_t total;    /* batches this epoch */
    double t0, last; /* start of the epoch, last redraw */
} train_progress;

void train_progress_begin(train_progress *p, int active, uint64_t epoch, uint64_t epochs,
                          size_t total);
/* After batch `done` (1-based); samples so far and their mean loss. */
void train_progress_update(train_progress *p, size_t done, size_t samples, double mean_loss);
/* Erases the bar. */
void train_progress_end(train_progress *p);

typedef struct train_epoch_report {
    uint64_t epoch, epochs;  /* epoch is 1-based (= epochs completed) */
    const char *mode, *optim;
    double lr;
    uint64_t batch;
    unsigned threads;
    size_t batches, samples; /* trained this epoch */
    uint64_t step;           /* optimizer steps since the start of training */
    double loss;             /* mean training loss over the epoch's samples */
    size_t test_correct, test_n;
    double epoch_s;          /* training time of the epoch (evaluation excluded) */
    double eval_s;           /* test-set evaluation time */
    uint64_t params_hash;    /* train_net_params_hash after the epoch */
} train_epoch_report;

/* JSON: one object per line with epoch, epochs, mode, optim, lr, batch, threads, batches,
 * samples, step, loss, test_accuracy, test_correct, test_n, epoch_s, eval_s,
 * samples_per_s, params_fnv. Text: one human line. The loss is printed with 17
 * significant digits, so equal lines mean equal numbers. */
void train_report_epoch(const train_epoch_report *r, int json);

#endif
