/* tools/train_main.c - weft-train: trains an MLP on an IDX dataset (Fashion-MNIST by
 * default) and reports the test accuracy after every epoch.
 *
 *   build/weft-train [--hidden 256,128] [--epochs 5] [--batch 128]
 *                    [--optim sgd|momentum|adam] [--lr X] [--mode static|dynamic]
 *                    [--checkpoint FILE [--resume]] [--json] ...   (see --help)
 *
 * Each epoch e (0-based) draws its batches from weft_batcher_start_epoch(e) with seed
 * --seed, so the data order is a function of (seed, epoch) only: a run resumed after
 * epoch k sees the batches the uninterrupted run saw, and, with the parameters and the
 * optimizer state restored from the checkpoint, computes the same numbers. The last
 * batch of an epoch may be smaller (every sample is used once per epoch).
 *
 * Exit status: 0 on success, 1 on any error (the message names the weft call and gives
 * weft_last_error()), 2 for a bad command line.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "tools/train_ckpt.h"
#include "tools/train_common.h"
#include "tools/train_data.h"
#include "tools/train_net.h"
#include "tools/train_options.h"
#include "tools/train_progress.h"

typedef struct train_run {
    const train_options *o;
    train_dataset data;
    weft_pool *pool;
    train_net *net;
    weft_batcher *batcher;
    train_eval eval;
    uint64_t fingerprint;
    uint64_t step; /* optimizer steps so far */
    int bar;       /* draw progress bars */
} train_run;

static void print_banner(const train_run *r, uint64_t first_epoch)
{
    const train_options *o = r->o;
    printf("weft-train: %zu training and %zu test items of %lld values from %s\n",
           r->data.train.n, r->data.test.n, (long long)r->data.width, o->data_dir);
    printf("  MLP %lld", (long long)r->data.width);
    for (size_t i = 0; i < o->nhidden; i++)
        printf("-%lld", (long long)o->hidden[i]);
    printf("-%d (relu), %s lr %g", TRAIN_CLASSES, train_optim_name(o->optim), o->lr);
    if (o->optim == WEFT_OPTIM_MOMENTUM)
        printf(" momentum %g", o->momentum);
    printf(" weight decay %g, batch %" PRIu64 ", %s mode, %u thread(s), seed %" PRIu64 "\n",
           o->weight_decay, o->batch, train_mode_name(o->mode), weft_pool_threads(r->pool),
           o->seed);
    if (o->resume)
        printf("  resumed from %s after epoch %" PRIu64 " (step %" PRIu64 ")\n", o->checkpoint,
               first_epoch, r->step);
    fflush(stdout);
}

/* Trains epoch e (0-based), evaluates, checkpoints, reports. */
static int run_epoch(train_run *r, uint64_t e)
{
    const train_options *o = r->o;
    if (train_check(weft_batcher_start_epoch(r->batcher, e), "starting epoch %" PRIu64,
                    e + 1) != 0)
        return -1;
    size_t total = weft_batcher_batches(r->batcher);
    if (o->max_batches != 0 && o->max_batches < total)
        total = (size_t)o->max_batches;
    train_progress bar;
    train_progress_begin(&bar, r->bar, e + 1, o->epochs, total);
    double t0 = train_now_s(), loss_sum = 0;
    size_t done = 0, samples = 0;
    while (done < total) {
        const weft_tensor *x = NULL, *y = NULL;
        double loss = 0;
        if (train_check(weft_batcher_next(r->batcher, &x, &y), "next batch") != 0)
            return -1;
        if (x == NULL)
            break;
        if (train_net_step(r->net, x, y, &loss) != 0)
            return -1;
        if (!isfinite(loss)) {
            train_progress_end(&bar);
            return train_fail("the loss is %g at epoch %" PRIu64 ", batch %zu: training "
                              "diverged (try a smaller --lr)", loss, e + 1, done + 1);
        }
        size_t rows = (size_t)weft_tensor_dim(x, 0);
        loss_sum += loss * (double)rows;
        samples += rows;
        done++;
        r->step++;
        train_progress_update(&bar, done, samples, loss_sum / (double)samples);
    }
    double train_s = train_now_s() - t0;
    train_progress_end(&bar);

    size_t correct = 0;
    double t1 = train_now_s();
    if (train_net_evaluate(r->net, &r->eval, &correct) != 0)
        return -1;
    double eval_s = train_now_s() - t1;
    if (o->checkpoint != NULL &&
        train_ckpt_save(r->net, o->checkpoint, r->fingerprint, o->seed, e + 1, r->step) != 0)
        return -1;
    if (o->quiet && !o->json)
        return 0;
    const train_epoch_report rep = {
        .epoch = e + 1, .epochs = o->epochs, .mode = train_mode_name(o->mode),
        .optim = train_optim_name(o->optim), .lr = o->lr, .batch = o->batch,
        .threads = weft_pool_threads(r->pool), .batches = done, .samples = samples,
        .step = r->step, .loss = samples ? loss_sum / (double)samples : 0.0,
        .test_correct = correct, .test_n = r->eval.n, .epoch_s = train_s, .eval_s = eval_s,
        .params_hash = train_net_params_hash(r->net)};
    train_report_epoch(&rep, o->json);
    return 0;
}

static int setup(train_run *r)
{
    const train_options *o = r->o;
    if (train_data_load(o->data_dir, &r->data) != 0)
        return -1;
    weft_pool_options po = weft_pool_options_default();
    po.threads = o->threads;
    if (train_check(weft_pool_create(&po, &r->pool), "creating the thread pool") != 0 ||
        train_net_create(o, r->data.width, r->pool, &r->net) != 0 ||
        train_check(weft_batcher_create(r->data.train.x, r->data.train.y, (size_t)o->batch,
                                        o->seed, 0, &r->batcher),
                    "creating the batcher") != 0 ||
        train_eval_create(&r->data.test, &r->eval) != 0)
        return -1;
    r->fingerprint = train_ckpt_fingerprint(o, r->data.width);
    return 0;
}

static int train(const train_options *o)
{
    train_run r = {.o = o};
    r.bar = isatty(STDOUT_FILENO) && !o->json && !o->quiet;
    uint64_t first_epoch = 0;
    int rc = setup(&r);
    if (rc == 0 && o->resume)
        rc = train_ckpt_load(r.net, o->checkpoint, r.fingerprint, o->seed, &first_epoch,
                             &r.step);
    if (rc == 0 && !o->json && !o->quiet)
        print_banner(&r, first_epoch);
    if (rc == 0 && first_epoch >= o->epochs)
        fprintf(stderr, "weft-train: %s already holds %" PRIu64 " epoch(s); nothing to do "
                "for --epochs %" PRIu64 "\n", o->checkpoint, first_epoch, o->epochs);
    for (uint64_t e = first_epoch; rc == 0 && e < o->epochs; e++)
        rc = run_epoch(&r, e);
    train_net_destroy(r.net); /* before the eval views and the batcher its inputs borrow */
    train_eval_free(&r.eval);
    weft_batcher_destroy(r.batcher);
    weft_pool_destroy(r.pool);
    train_data_free(&r.data);
    return rc;
}

int main(int argc, char **argv)
{
    train_options o;
    int rc = train_options_parse(argc, argv, &o);
    if (rc > 0)
        return 0;
    if (rc < 0)
        return 2;
    return train(&o) == 0 ? 0 : 1;
}
