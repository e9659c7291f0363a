/* examples/rnn_varlen.c - an Elman RNN on variable-length sequences, define by run.
 *
 *   build/rnn_varlen [--threads N] [--seed S] [--epochs E] [--train N] [--test N]
 *                    [--lr X] [--target ACC]
 *
 * The model: h_t = tanh(x_t Wx + h_{t-1} Wh + b) with h_0 = 0, input 64, hidden 128,
 * then logits = h_L Wc + bc and softmax_xent on the last hidden state. Each sequence
 * builds its own graph with a plain C loop over its own length (5 to 60 steps, no
 * padding, no masking): the graph of a 7-step sequence has 7 cells, that of a 60-step one
 * 60. Training is backpropagation through time (weft_dyn_backward) one sequence at a
 * time, Adam (lr 1e-3) with the gradient's global norm clipped to 1 (plain C over the
 * .grad tensors), zero_grad after every step.
 *
 * The task ("marker recall"), generated from --seed, needs memory across time:
 *   - five fixed random symbols in R^64 with entries +-1: four class symbols S0..S3 and a
 *     marker M;
 *   - a sequence of length L, uniform in [5, 60], is noise: every x_t uniform in
 *     [-0.5, 0.5)^64;
 *   - the marker is added at one position p, uniform in [0, L - 2], and the class symbol
 *     S_c (c uniform in 0..3) at p + 1: the label is c;
 *   - distractors: every other position carries, with probability 0.15, a class symbol
 *     drawn at random (any of the four, so also other classes than c).
 * The class is thus "the symbol that follows the marker". It is not a property of any
 * one input (distractor symbols look the same as the answer), so the net must notice the
 * marker, take the next symbol, and hold it through up to 58 later steps of noise and
 * distractors until the classifier reads the last state. Chance is 25%.
 *
 * The program trains for --epochs (8) passes over --train (1000) sequences, reshuffled
 * each epoch, evaluates a separate held-out test set (--test, 500 sequences from another
 * stream of the seed) after each epoch, and prints the mean training loss, the test loss
 * and accuracy, and the milliseconds per sequence (training: forward + backward + Adam
 * step; test: forward only). Exit status: 0 if the final test accuracy reaches --target
 * (default 0.95), 1 otherwise or on an error, 2 for a bad command line.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#define IN 64
#define HID 128
#define NCLASS 4
#define MIN_LEN 5
#define MAX_LEN 60
#define NOISE 0.5         /* x_t uniform in [-NOISE, NOISE) */
#define DISTRACTOR_P 0.15 /* probability of a distractor symbol at a free position */
#define CLIP_NORM 1.0     /* global gradient norm clip */

enum { P_WX, P_WH, P_B, P_WC, P_BC, NPARAM };

static void check(weft_status st, const char *what)
{
    if (st == WEFT_OK)
        return;
    fprintf(stderr, "rnn_varlen: %s failed: %s: %s\n", what, weft_status_name(st),
            weft_last_error());
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the synthetic data --------------------------------------------------------------- */

/* splitmix64: a seeded stream; the data depend on the seed only. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_uniform(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1p-53;
}

/* Uniform in [lo, hi]. */
static int rng_int(uint64_t *s, int lo, int hi)
{
    return lo + (int)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

/* One sequence: its inputs [len, IN] and label, as tensors the graph borrows. */
typedef struct sequence {
    int len;
    int32_t label;
    float *x;
    weft_tensor *xt, *yt;
} sequence;

typedef struct dataset {
    sequence *seq;
    size_t n;
} dataset;

/* The five symbols: rows 0..3 the classes, row 4 the marker; entries +-1. */
static void make_symbols(uint64_t seed, float sym[NCLASS + 1][IN])
{
    uint64_t s = seed ^ 0x5eed5eedull;
    for (int k = 0; k <= NCLASS; k++)
        for (int i = 0; i < IN; i++)
            sym[k][i] = (rng_next(&s) >> 63) ? 1.0f : -1.0f;
}

static void add_symbol(float *row, const float *sym)
{
    for (int i = 0; i < IN; i++)
        row[i] += sym[i];
}

/* n sequences of the marker-recall task from `seed` (see the top of the file). */
static void make_dataset(dataset *d, size_t n, uint64_t seed, float sym[NCLASS + 1][IN])
{
    d->n = n;
    d->seq = calloc(n, sizeof *d->seq);
    if (d->seq == NULL) {
        fprintf(stderr, "rnn_varlen: out of memory\n");
        exit(1);
    }
    uint64_t s = seed;
    for (size_t k = 0; k < n; k++) {
        sequence *q = &d->seq[k];
        q->len = rng_int(&s, MIN_LEN, MAX_LEN);
        q->label = (int32_t)rng_int(&s, 0, NCLASS - 1);
        int p = rng_int(&s, 0, q->len - 2);
        q->x = malloc((size_t)q->len * IN * sizeof *q->x);
        if (q->x == NULL) {
            fprintf(stderr, "rnn_varlen: out of memory\n");
            exit(1);
        }
        for (int t = 0; t < q->len; t++) {
            float *row = q->x + (size_t)t * IN;
            for (int i = 0; i < IN; i++)
                row[i] = (float)((2 * rng_uniform(&s) - 1) * NOISE);
            if (t == p)
                add_symbol(row, sym[NCLASS]);
            else if (t == p + 1)
                add_symbol(row, sym[q->label]);
            else if (rng_uniform(&s) < DISTRACTOR_P)
                add_symbol(row, sym[rng_int(&s, 0, NCLASS - 1)]);
        }
        const int64_t xd[2] = {q->len, IN}, yd[1] = {1};
        check(weft_tensor_from_data(WEFT_F32, 2, xd, q->x, WEFT_BORROW, &q->xt), "input x");
        check(weft_tensor_from_data(WEFT_I32, 1, yd, &q->label, WEFT_BORROW, &q->yt),
              "input label");
    }
}

static void free_dataset(dataset *d)
{
    for (size_t k = 0; k < d->n; k++) {
        weft_tensor_destroy(d->seq[k].xt);
        weft_tensor_destroy(d->seq[k].yt);
        free(d->seq[k].x);
    }
    free(d->seq);
}

/* ---- the model -------------------------------------------------------------------------- */

typedef struct rnn {
    weft_tensor *p[NPARAM], *g[NPARAM];
} rnn;

static void rnn_init(rnn *m, uint64_t seed)
{
    static const int64_t dims[NPARAM][2] = {{IN, HID}, {HID, HID}, {HID, 0}, {HID, NCLASS},
                                            {NCLASS, 0}};
    static const size_t ndim[NPARAM] = {2, 2, 1, 2, 1};
    for (int k = 0; k < NPARAM; k++) {
        check(weft_tensor_create(WEFT_F32, ndim[k], dims[k], &m->p[k]), "parameter");
        check(weft_tensor_create(WEFT_F32, ndim[k], dims[k], &m->g[k]), "gradient");
    }
    /* Xavier for the matrices (Wh: sd 1/sqrt(128), a spectral radius near 1), zero
     * biases (weft_tensor_create zero-fills). */
    check(weft_tensor_init_random(m->p[P_WX], WEFT_INIT_XAVIER, seed * 8 + 0, 0, 0), "Wx");
    check(weft_tensor_init_random(m->p[P_WH], WEFT_INIT_XAVIER, seed * 8 + 1, 0, 0), "Wh");
    check(weft_tensor_init_random(m->p[P_WC], WEFT_INIT_XAVIER, seed * 8 + 2, 0, 0), "Wc");
}

static void rnn_free(rnn *m)
{
    for (int k = 0; k < NPARAM; k++) {
        weft_tensor_destroy(m->p[k]);
        weft_tensor_destroy(m->g[k]);
    }
}

/* Records the forward graph of one sequence on a new iteration of `dyn`: the C loop runs
 * over this sequence's own length. Writes the logits [1, NCLASS] and the loss. */
static void rnn_forward(weft_dyn *dyn, rnn *m, const sequence *q, weft_value *logits,
                        weft_value *loss)
{
    weft_tgraph *g = NULL;
    weft_value x, y, p[NPARAM], h = {WEFT_VALUE_NONE_ID};
    check(weft_dyn_begin(dyn, &g), "weft_dyn_begin");
    check(weft_dyn_input(dyn, q->xt, &x), "input x");
    check(weft_dyn_input(dyn, q->yt, &y), "input label");
    for (int k = 0; k < NPARAM; k++)
        check(weft_dyn_param(dyn, m->p[k], m->g[k], &p[k]), "weft_dyn_param");
    for (int t = 0; t < q->len; t++) {
        weft_value xt, a, r;
        check(weft_op_slice(g, x, 0, t, t + 1, &xt), "slice x_t");    /* [1, IN] */
        check(weft_op_matmul(g, xt, p[P_WX], 0, &a), "x_t Wx");       /* [1, HID] */
        if (t > 0) {                                                   /* h_0 = 0 */
            check(weft_op_matmul(g, h, p[P_WH], 0, &r), "h Wh");
            check(weft_op_add(g, a, r, &a), "add");
        }
        check(weft_op_add(g, a, p[P_B], &a), "add b");
        check(weft_op_tanh(g, a, &h), "tanh");
    }
    check(weft_op_matmul(g, h, p[P_WC], 0, logits), "h Wc");
    check(weft_op_add(g, *logits, p[P_BC], logits), "add bc");
    check(weft_op_softmax_xent(g, *logits, y, loss), "softmax_xent");
}

/* Scales the gradients so that their global L2 norm is at most `clip`. */
static void clip_gradients(rnn *m, double clip)
{
    double ss = 0;
    for (int k = 0; k < NPARAM; k++) {
        const float *g = weft_tensor_data(m->g[k]);
        for (size_t i = 0, n = weft_tensor_numel(m->g[k]); i < n; i++)
            ss += (double)g[i] * g[i];
    }
    double norm = sqrt(ss);
    if (norm <= clip)
        return;
    float s = (float)(clip / norm);
    for (int k = 0; k < NPARAM; k++) {
        float *g = weft_tensor_data(m->g[k]);
        for (size_t i = 0, n = weft_tensor_numel(m->g[k]); i < n; i++)
            g[i] *= s;
    }
}

/* One training step on one sequence; returns its loss (before the update). */
static double train_step(weft_dyn *dyn, weft_pool *pool, weft_optim *opt, rnn *m,
                         const sequence *q)
{
    weft_value logits, loss;
    double l;
    rnn_forward(dyn, m, q, &logits, &loss);
    check(weft_dyn_backward(dyn, loss), "weft_dyn_backward"); /* BPTT */
    check(weft_dyn_scalar(dyn, loss, &l), "read loss");
    clip_gradients(m, CLIP_NORM);
    check(weft_optim_step(opt, pool, NPARAM, m->p, (const weft_tensor *const *)m->g),
          "weft_optim_step");
    for (int k = 0; k < NPARAM; k++)
        check(weft_tensor_fill(m->g[k], 0.0), "zero grad");
    return l;
}

/* Accuracy and mean loss on a dataset (forward only). */
static double evaluate(weft_dyn *dyn, rnn *m, const dataset *d, double *mean_loss)
{
    size_t correct = 0;
    double sum = 0;
    for (size_t k = 0; k < d->n; k++) {
        const sequence *q = &d->seq[k];
        weft_value logits, loss;
        const weft_tensor *lt = NULL;
        double l;
        rnn_forward(dyn, m, q, &logits, &loss);
        check(weft_dyn_scalar(dyn, loss, &l), "read loss"); /* evaluates the forward */
        check(weft_dyn_read(dyn, logits, &lt), "read logits");
        const float *z = weft_tensor_data_const(lt);
        int best = 0;
        for (int c = 1; c < NCLASS; c++)
            best = z[c] > z[best] ? c : best;
        correct += best == q->label;
        sum += l;
    }
    *mean_loss = sum / (double)d->n;
    return (double)correct / (double)d->n;
}

static int usage(void)
{
    fputs("usage: rnn_varlen [--threads N] [--seed S] [--epochs E] [--train N] [--test N] "
          "[--lr X] [--target ACC]\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    unsigned threads = 0;
    unsigned long long seed = 1, epochs = 8, ntrain = 1000, ntest = 500;
    double lr = 1e-3, target = 0.95;
    for (int i = 1; i < argc; i += 2) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (v == NULL)
            return usage();
        if (strcmp(opt, "--threads") == 0)
            threads = (unsigned)strtoul(v, &end, 10);
        else if (strcmp(opt, "--seed") == 0)
            seed = strtoull(v, &end, 10);
        else if (strcmp(opt, "--epochs") == 0)
            epochs = strtoull(v, &end, 10);
        else if (strcmp(opt, "--train") == 0)
            ntrain = strtoull(v, &end, 10);
        else if (strcmp(opt, "--test") == 0)
            ntest = strtoull(v, &end, 10);
        else if (strcmp(opt, "--lr") == 0)
            lr = strtod(v, &end);
        else if (strcmp(opt, "--target") == 0)
            target = strtod(v, &end);
        else
            return usage();
        if (end != NULL && (end == v || *end != '\0'))
            return usage();
    }
    if (!(lr > 0) || epochs == 0 || ntrain == 0 || ntest == 0)
        return usage();

    weft_pool_options po = weft_pool_options_default();
    po.threads = threads;
    weft_pool *pool = NULL;
    weft_dyn *dyn = NULL;
    weft_optim *opt = NULL;
    check(weft_pool_create(&po, &pool), "weft_pool_create");
    check(weft_dyn_create(pool, NULL, &dyn), "weft_dyn_create");
    weft_optim_options oo = weft_optim_options_default(WEFT_OPTIM_ADAM);
    oo.lr = lr;
    check(weft_optim_create(&oo, &opt), "weft_optim_create");

    static float sym[NCLASS + 1][IN];
    make_symbols(seed, sym);
    dataset train, test;
    make_dataset(&train, ntrain, seed * 1000003u + 1, sym);
    make_dataset(&test, ntest, seed * 1000003u + 2, sym); /* held out: another stream */
    rnn m;
    rnn_init(&m, seed);
    size_t *order = malloc(ntrain * sizeof *order);
    if (order == NULL)
        return 1;
    for (size_t k = 0; k < ntrain; k++)
        order[k] = k;
    double steps_total = 0;
    for (size_t k = 0; k < ntrain; k++)
        steps_total += train.seq[k].len;
    printf("marker recall, %d classes, lengths %d-%d (mean %.1f), input %d, hidden %d; "
           "%llu training and %llu test sequences; Adam lr %g, clip %g; %u thread(s)\n",
           NCLASS, MIN_LEN, MAX_LEN, steps_total / (double)ntrain, IN, HID, ntrain, ntest, lr,
           CLIP_NORM, weft_pool_threads(pool));

    uint64_t shuffle = seed ^ 0xabcdefull;
    double acc = 0, t_start = now_s(), train_s = 0;
    size_t trained = 0;
    for (unsigned long long e = 1; e <= epochs; e++) {
        for (size_t k = ntrain; k > 1; k--) { /* Fisher-Yates */
            size_t j = (size_t)(rng_next(&shuffle) % k), t = order[k - 1];
            order[k - 1] = order[j];
            order[j] = t;
        }
        double sum = 0, t0 = now_s();
        for (size_t k = 0; k < ntrain; k++)
            sum += train_step(dyn, pool, opt, &m, &train.seq[order[k]]);
        double t1 = now_s();
        train_s += t1 - t0;
        trained += ntrain;
        double test_loss;
        acc = evaluate(dyn, &m, &test, &test_loss);
        double t2 = now_s();
        printf("epoch %2llu  train loss %.4f  test loss %.4f  test accuracy %5.1f%%  "
               "%.3f ms/sequence train, %.3f ms/sequence test  (%.1f s)\n",
               e, sum / (double)ntrain, test_loss, 100 * acc, (t1 - t0) * 1e3 / (double)ntrain,
               (t2 - t1) * 1e3 / (double)ntest, t2 - t_start);
        fflush(stdout);
    }
    int ok = acc >= target;
    printf("%s: test accuracy %.1f%% on %llu held-out sequences after %zu training sequences "
           "(%.1f s in all; training %.3f ms per sequence)\n",
           ok ? "learned" : "NOT learned", 100 * acc, ntest, trained, now_s() - t_start,
           train_s * 1e3 / (double)trained);

    free(order);
    rnn_free(&m);
    free_dataset(&train);
    free_dataset(&test);
    weft_optim_destroy(opt);
    weft_dyn_destroy(dyn);
    weft_pool_destroy(pool);
    return ok ? 0 : 1;
}
