/* tools/train_progress.c - progress bar and epoch lines (see train_progress.h). */
#include "tools/train_progress.h"

#include <inttypes.h>
#include <stdio.h>

#include "tools/train_common.h"

#define BAR_WIDTH 24
#define REDRAW_S 0.1

void train_progress_begin(train_progress *p, int active, uint64_t epoch, uint64_t epochs,
                          size_t total)
{
    p->active = active;
    p->epoch = epoch;
    p->epochs = epochs;
    p->total = total;
    p->t0 = train_now_s();
    p->last = 0;
}

static void print_duration(double s)
{
    unsigned long t = s > 0 && s < 1e7 ? (unsigned long)(s + 0.5) : 0;
    if (t >= 3600)
        printf("%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else
        printf("%lu:%02lu", t / 60, t % 60);
}

void train_progress_update(train_progress *p, size_t done, size_t samples, double mean_loss)
{
    if (!p->active)
        return;
    double now = train_now_s();
    if (done < p->total && now - p->last < REDRAW_S)
        return;
    p->last = now;
    double elapsed = now - p->t0;
    size_t fill = p->total ? done * BAR_WIDTH / p->total : BAR_WIDTH;
    char bar[BAR_WIDTH + 1];
    for (size_t i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '-';
    bar[BAR_WIDTH] = '\0';
    printf("\r\033[Kepoch %" PRIu64 "/%" PRIu64 " [%s] %zu/%zu  loss %.4f  %.0f samples/s  "
           "left ",
           p->epoch, p->epochs, bar, done, p->total, mean_loss,
           elapsed > 0 ? (double)samples / elapsed : 0.0);
    print_duration(done ? elapsed * (double)(p->total - done) / (double)done : 0);
    fflush(stdout);
}

void train_progress_end(train_progress *p)
{
    if (!p->active)
        return;
    fputs("\r\033[K", stdout);
    fflush(stdout);
}

void train_report_epoch(const train_epoch_report *r, int json)
{
    double acc = r->test_n ? (double)r->test_correct / (double)r->test_n : 0.0;
    double sps = r->epoch_s > 0 ? (double)r->samples / r->epoch_s : 0.0;
    if (json) {
        printf("{\"epoch\":%" PRIu64 ",\"epochs\":%" PRIu64 ",\"mode\":\"%s\",\"optim\":\"%s\","
               "\"lr\":%.10g,\"batch\":%" PRIu64 ",\"threads\":%u,\"batches\":%zu,"
               "\"samples\":%zu,\"step\":%" PRIu64 ",\"loss\":%.17g,\"test_accuracy\":%.6f,"
               "\"test_correct\":%zu,\"test_n\":%zu,\"epoch_s\":%.4f,\"eval_s\":%.4f,"
               "\"samples_per_s\":%.1f,\"params_fnv\":\"%016" PRIx64 "\"}\n",
               r->epoch, r->epochs, r->mode, r->optim, r->lr, r->batch, r->threads, r->batches,
               r->samples, r->step, r->loss, acc, r->test_correct, r->test_n, r->epoch_s,
               r->eval_s, sps, r->params_hash);
    } else {
        printf("epoch %" PRIu64 "/%" PRIu64 "  loss %.6f  test accuracy %.2f%% (%zu/%zu)  "
               "train %.2f s, %.0f samples/s  eval %.2f s\n",
               r->epoch, r->epochs, r->loss, 100.0 * acc, r->test_correct, r->test_n,
               r->epoch_s, sps, r->eval_s);
    }
    fflush(stdout);
}
