/* bench/run_rnn.c - weft-bench --workload rnn: a variable-length Elman RNN, one training
 * step per sequence, timed per sequence in two styles.
 *
 * The model (the reference of examples/rnn_varlen.c): input 64, hidden 128, 4 classes;
 *   h_1 = tanh(x_1 Wx + b), h_t = tanh(x_t Wx + h_{t-1} Wh + b),
 *   loss = softmax_xent(h_L Wc + bc, label),
 * recorded with ordinary ops in a C loop over the sequence's own length L (5..60, no
 * padding): x_t = slice(x, t) of the [L, 64] input, two matmuls, two adds and a tanh per
 * step. One iteration = forward + backpropagation through time + one plain SGD step
 * (lr 0.01) on the five parameters.
 *   dynamic  the PyTorch style: weft_dyn_begin, weft_dyn_input / weft_dyn_param, the ops,
 *            weft_dyn_backward, weft_dyn_scalar (the loss), weft_optim_step
 *            (WEFT_OPTIM_SGD), zero the five .grad tensors. The graph is recorded anew at
 *            every sequence; the context compiles a structure the first time it sees it
 *            and reuses that plan afterwards (weft_dyn_set_cache).
 *   static   the TensorFlow 1.x style: one tensor graph holds the five variables; the
 *            first sequence of each distinct length L adds placeholders x [L, 64] and
 *            label [1], the unrolled forward, weft_optim_minimize (the same SGD) and a
 *            plan fetching the loss with the updates as targets; the plan is cached, and
 *            every sequence of that length runs it with feeds.
 * The data: N sequences (200; --size small: 20; --size N), lengths uniform in [5, 60], x
 * uniform in [-1, 1), labels uniform in 0..3, all from fixed seeds, as are the initial
 * parameters (Xavier matrices, zero biases); --seed only orders the rounds.
 *
 * Protocol, per thread count T: one pool, and one model per style from the same initial
 * parameters. Untimed warm-up: one pass over the N sequences in each style (it builds
 * and caches every static plan, timed separately as "plan build", and grows the dynamic
 * context's arena). Verification: after the warm-up both styles have taken the same N SGD
 * steps, so their parameters must be equal, and equal to those at the first T (bit for
 * bit: both styles run the same kernels on the same graph, and results do not depend on
 * the thread count), with every loss finite. Then K rounds, each running every
 * (style, T) block in a shuffled order; a block is R filtered repetitions, and a
 * repetition is one pass over the N sequences in their fixed order with each sequence
 * timed on its own; its figure is the median over the pass. Reported: the median (and
 * min, max) of those figures, i.e. the median time of one training step on one sequence.
 */
#include "bench/run_rnn.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/harness.h"
#include "bench/run_tensor.h"
#include "bench/workload_common.h"
#include "weft.h"

#define RNN_IN 64
#define RNN_HID 128
#define RNN_CLASSES 4
#define RNN_MIN_LEN 5
#define RNN_MAX_LEN 60
#define RNN_LR 0.01
#define RNN_SEED 1u      /* the seed of every input and parameter */
#define RNN_TRACE_SEQS 3 /* --trace: sequences per style */

enum { P_WX, P_WH, P_B, P_WC, P_BC, RNN_NPARAM };
enum { STYLE_DYNAMIC, STYLE_STATIC, STYLE_COUNT };
static const char *const style_names[STYLE_COUNT] = {"dynamic", "static"};

static int fail(const char *label, const char *what, weft_status st)
{
    return bench_workload_fail("rnn", label, what, st);
}

/* ---- data and initial parameters ------------------------------------------------------ */

typedef struct rnn_seq {
    int len;
    int32_t label;
    weft_tensor *x, *y; /* [len, 64] f32, [1] i32; owned */
} rnn_seq;

typedef struct rnn_data {
    rnn_seq *seq;
    size_t n;
    size_t distinct; /* distinct lengths */
    double mean_len;
    weft_tensor *init[RNN_NPARAM]; /* the initial parameters */
} rnn_data;

static void data_free(rnn_data *d)
{
    for (size_t i = 0; d->seq != NULL && i < d->n; i++) {
        weft_tensor_destroy(d->seq[i].x);
        weft_tensor_destroy(d->seq[i].y);
    }
    free(d->seq);
    for (int k = 0; k < RNN_NPARAM; k++)
        weft_tensor_destroy(d->init[k]);
    memset(d, 0, sizeof *d);
}

static int data_make(rnn_data *d, size_t n)
{
    static const int64_t pdims[RNN_NPARAM][2] = {
        {RNN_IN, RNN_HID}, {RNN_HID, RNN_HID}, {RNN_HID, 0}, {RNN_HID, RNN_CLASSES},
        {RNN_CLASSES, 0}};
    static const size_t pndim[RNN_NPARAM] = {2, 2, 1, 2, 1};
    memset(d, 0, sizeof *d);
    d->seq = calloc(n, sizeof *d->seq);
    if (d->seq == NULL) {
        fprintf(stderr, "weft-bench: out of memory for the rnn data\n");
        return -1;
    }
    d->n = n;
    bench_splitmix rng = {RNN_SEED};
    int seen[RNN_MAX_LEN + 1] = {0};
    weft_status st = WEFT_OK;
    for (size_t i = 0; i < n && st == WEFT_OK; i++) {
        rnn_seq *q = &d->seq[i];
        q->len = RNN_MIN_LEN +
                 (int)(bench_splitmix_next(&rng) % (uint64_t)(RNN_MAX_LEN - RNN_MIN_LEN + 1));
        q->label = (int32_t)(bench_splitmix_next(&rng) % RNN_CLASSES);
        d->distinct += !seen[q->len];
        seen[q->len] = 1;
        d->mean_len += (double)q->len / (double)n;
        const int64_t xd[2] = {q->len, RNN_IN}, yd[1] = {1};
        st = weft_tensor_create(WEFT_F32, 2, xd, &q->x);
        if (st == WEFT_OK)
            st = weft_tensor_init_random(q->x, WEFT_INIT_UNIFORM, 1000u * RNN_SEED + i, -1, 1);
        if (st == WEFT_OK)
            st = weft_tensor_from_data(WEFT_I32, 1, yd, &q->label, WEFT_COPY, &q->y);
    }
    for (int k = 0; k < RNN_NPARAM && st == WEFT_OK; k++) {
        st = weft_tensor_create(WEFT_F32, pndim[k], pdims[k], &d->init[k]);
        if (st == WEFT_OK && pndim[k] == 2) /* matrices Xavier, biases zero */
            st = weft_tensor_init_random(d->init[k], WEFT_INIT_XAVIER, 100u * RNN_SEED + k, 0,
                                         0);
    }
    if (st != WEFT_OK) {
        data_free(d);
        return fail("data", "creating the sequences", st);
    }
    return 0;
}

/* ---- the model, recorded on a graph --------------------------------------------------- */

/* Records the forward pass of a sequence of length len on g: x [len, 64], y [1] i32, p the
 * five parameters; *loss the scalar loss. Both styles call it. */
static weft_status rnn_record(weft_tgraph *g, weft_value x, weft_value y, const weft_value *p,
                              int len, weft_value *loss)
{
    weft_value h = {WEFT_VALUE_NONE_ID}, logits;
    weft_status st = WEFT_OK;
    for (int t = 0; t < len && st == WEFT_OK; t++) {
        weft_value xt, a, r;
        st = weft_op_slice(g, x, 0, t, t + 1, &xt); /* [1, 64] */
        if (st == WEFT_OK)
            st = weft_op_matmul(g, xt, p[P_WX], 0, &a);
        if (st == WEFT_OK && t > 0) { /* h_0 = 0: no recurrent term at the first step */
            st = weft_op_matmul(g, h, p[P_WH], 0, &r);
            if (st == WEFT_OK)
                st = weft_op_add(g, a, r, &a);
        }
        if (st == WEFT_OK)
            st = weft_op_add(g, a, p[P_B], &a);
        if (st == WEFT_OK)
            st = weft_op_tanh(g, a, &h);
    }
    if (st == WEFT_OK)
        st = weft_op_matmul(g, h, p[P_WC], 0, &logits);
    if (st == WEFT_OK)
        st = weft_op_add(g, logits, p[P_BC], &logits);
    if (st == WEFT_OK)
        st = weft_op_softmax_xent(g, logits, y, loss);
    return st;
}

/* ---- the two styles ------------------------------------------------------------------- */

typedef struct rnn_model {
    int style;
    unsigned threads;
    char label[32];
    weft_pool *pool; /* borrowed */
    weft_optim *sgd;
    /* dynamic */
    weft_dyn *dyn;
    weft_tensor *param[RNN_NPARAM], *grad[RNN_NPARAM];
    /* static: one graph, a plan per length, built on first use */
    weft_tgraph *graph;
    weft_value var[RNN_NPARAM];
    weft_plan *plan[RNN_MAX_LEN + 1];
    weft_value xph[RNN_MAX_LEN + 1], yph[RNN_MAX_LEN + 1];
    size_t nplans;
    double build_s; /* seconds spent building plans (first use of each length) */
    double last_loss;
} rnn_model;

static void model_free(rnn_model *m)
{
    for (int l = 0; l <= RNN_MAX_LEN; l++)
        weft_plan_destroy(m->plan[l]);
    weft_tgraph_destroy(m->graph);
    weft_dyn_destroy(m->dyn);
    for (int k = 0; k < RNN_NPARAM; k++) {
        weft_tensor_destroy(m->param[k]);
        weft_tensor_destroy(m->grad[k]);
    }
    weft_optim_destroy(m->sgd); /* after every plan holding its updates */
    memset(m, 0, sizeof *m);
}

static int model_make(rnn_model *m, int style, weft_pool *pool, unsigned threads,
                      const rnn_data *d)
{
    memset(m, 0, sizeof *m);
    m->style = style;
    m->threads = threads;
    m->pool = pool;
    snprintf(m->label, sizeof m->label, "%s T=%u", style_names[style], threads);
    weft_optim_options oo = weft_optim_options_default(WEFT_OPTIM_SGD);
    oo.lr = RNN_LR;
    weft_status st = weft_optim_create(&oo, &m->sgd);
    if (st == WEFT_OK && style == STYLE_DYNAMIC) {
        st = weft_dyn_create(pool, NULL, &m->dyn);
        for (int k = 0; k < RNN_NPARAM && st == WEFT_OK; k++) {
            const weft_tensor *t = d->init[k];
            int64_t dims[WEFT_MAX_DIMS];
            size_t nd = weft_tensor_ndim(t);
            for (size_t i = 0; i < nd; i++)
                dims[i] = weft_tensor_dim(t, i);
            st = weft_tensor_from_data(WEFT_F32, nd, dims, weft_tensor_data_const(t),
                                       WEFT_COPY, &m->param[k]);
            if (st == WEFT_OK)
                st = weft_tensor_create(WEFT_F32, nd, dims, &m->grad[k]); /* zeros */
        }
    } else if (st == WEFT_OK) {
        static const char *const names[RNN_NPARAM] = {"Wx", "Wh", "b", "Wc", "bc"};
        st = weft_tgraph_create(&m->graph);
        for (int k = 0; k < RNN_NPARAM && st == WEFT_OK; k++)
            st = weft_tgraph_variable(m->graph, d->init[k], names[k], &m->var[k]);
    }
    if (st != WEFT_OK) {
        fail(m->label, "building the model", st);
        model_free(m);
        return -1;
    }
    return 0;
}

/* Dynamic: one training step, PyTorch style. */
static weft_status dyn_step(rnn_model *m, const rnn_seq *q)
{
    weft_tgraph *g = NULL;
    weft_value x, y, p[RNN_NPARAM], loss;
    weft_status st = weft_dyn_begin(m->dyn, &g);
    if (st == WEFT_OK)
        st = weft_dyn_input(m->dyn, q->x, &x);
    if (st == WEFT_OK)
        st = weft_dyn_input(m->dyn, q->y, &y);
    for (int k = 0; k < RNN_NPARAM && st == WEFT_OK; k++)
        st = weft_dyn_param(m->dyn, m->param[k], m->grad[k], &p[k]);
    if (st == WEFT_OK)
        st = rnn_record(g, x, y, p, q->len, &loss);
    if (st == WEFT_OK)
        st = weft_dyn_backward(m->dyn, loss);
    if (st == WEFT_OK)
        st = weft_dyn_scalar(m->dyn, loss, &m->last_loss);
    if (st == WEFT_OK)
        st = weft_optim_step(m->sgd, m->pool, RNN_NPARAM, m->param,
                             (const weft_tensor *const *)m->grad);
    for (int k = 0; k < RNN_NPARAM && st == WEFT_OK; k++)
        st = weft_tensor_fill(m->grad[k], 0.0);
    return st;
}

/* Static: the plan of length len (placeholders, unrolled forward, SGD updates). */
static weft_status static_build(rnn_model *m, int len)
{
    double t0 = bench_now_s();
    const int64_t xd[2] = {len, RNN_IN}, yd[1] = {1};
    weft_value loss, updates[RNN_NPARAM];
    weft_status st = weft_tgraph_placeholder(m->graph, WEFT_F32, 2, xd, "x", &m->xph[len]);
    if (st == WEFT_OK)
        st = weft_tgraph_placeholder(m->graph, WEFT_I32, 1, yd, "label", &m->yph[len]);
    if (st == WEFT_OK)
        st = rnn_record(m->graph, m->xph[len], m->yph[len], m->var, len, &loss);
    if (st == WEFT_OK)
        st = weft_optim_minimize(m->sgd, m->graph, loss, RNN_NPARAM, m->var, updates);
    if (st == WEFT_OK)
        st = weft_plan_create(m->graph, m->pool, 1, &loss, RNN_NPARAM, updates, NULL,
                              &m->plan[len]);
    if (st == WEFT_OK)
        m->nplans++;
    m->build_s += bench_now_s() - t0;
    return st;
}

/* Static: one training step, the cached plan of the sequence's length run with feeds. */
static weft_status static_step(rnn_model *m, const rnn_seq *q)
{
    weft_status st = m->plan[q->len] ? WEFT_OK : static_build(m, q->len);
    const weft_tensor *lt = NULL;
    if (st == WEFT_OK) {
        const weft_feed feeds[2] = {{m->xph[q->len], q->x}, {m->yph[q->len], q->y}};
        st = weft_plan_run(m->plan[q->len], 2, feeds);
    }
    if (st == WEFT_OK)
        st = weft_plan_fetch(m->plan[q->len], 0, &lt);
    if (st == WEFT_OK)
        st = weft_tensor_get(lt, 0, &m->last_loss);
    return st;
}

static int model_step(rnn_model *m, const rnn_seq *q)
{
    weft_status st = m->style == STYLE_DYNAMIC ? dyn_step(m, q) : static_step(m, q);
    if (st != WEFT_OK)
        return fail(m->label, "a training step", st);
    return 0;
}

static int check_loss(const rnn_model *m)
{
    if (isfinite(m->last_loss))
        return 0;
    fprintf(stderr, "weft-bench: workload rnn %s: the loss is %g\n", m->label, m->last_loss);
    return -1;
}

/* The parameter tensors of the model (the dynamic ones, or the static variables). */
static int model_params(rnn_model *m, weft_tensor *out[RNN_NPARAM])
{
    for (int k = 0; k < RNN_NPARAM; k++) {
        if (m->style == STYLE_DYNAMIC) {
            out[k] = m->param[k];
        } else {
            weft_status st = weft_tgraph_variable_tensor(m->graph, m->var[k], &out[k]);
            if (st != WEFT_OK)
                return fail(m->label, "reading a variable", st);
        }
    }
    return 0;
}

/* Compares the parameters of a and b: 0 if bit-identical; else -1 with a message naming
 * the largest difference. */
static int params_compare(rnn_model *a, rnn_model *b)
{
    weft_tensor *pa[RNN_NPARAM], *pb[RNN_NPARAM];
    if (model_params(a, pa) != 0 || model_params(b, pb) != 0)
        return -1;
    double worst = 0;
    int worst_k = -1;
    for (int k = 0; k < RNN_NPARAM; k++) {
        const float *x = weft_tensor_data_const(pa[k]), *y = weft_tensor_data_const(pb[k]);
        size_t n = weft_tensor_numel(pa[k]);
        if (memcmp(x, y, n * sizeof *x) == 0)
            continue;
        for (size_t i = 0; i < n; i++) {
            double diff = fabs((double)x[i] - (double)y[i]);
            if (!(diff <= worst)) {
                worst = diff;
                worst_k = k;
            }
        }
    }
    if (worst_k < 0)
        return 0;
    static const char *const names[RNN_NPARAM] = {"Wx", "Wh", "b", "Wc", "bc"};
    fprintf(stderr, "weft-bench: workload rnn: verification failed: the parameters of %s and "
                    "%s differ after the warm-up pass (largest difference %g, in %s)\n",
            a->label, b->label, worst, names[worst_k]);
    return -1;
}

/* ---- measurement ---------------------------------------------------------------------- */

typedef struct rnn_config {
    rnn_model model;
    bench_samples samples; /* per accepted repetition: the median seconds per sequence */
    bench_filter_state filter;
} rnn_config;

typedef struct rnn_pass {
    rnn_config *c;
    const rnn_data *d;
    double *times; /* scratch: one per sequence */
} rnn_pass;

/* One repetition: a pass over the sequences, each timed; *seconds = the median. */
static int rep_pass(void *arg, double *seconds)
{
    rnn_pass *p = arg;
    size_t n = p->d->n;
    for (size_t i = 0; i < n; i++) {
        double t0 = bench_now_s();
        if (model_step(&p->c->model, &p->d->seq[i]) != 0)
            return -1;
        p->times[i] = bench_now_s() - t0;
    }
    if (check_loss(&p->c->model) != 0)
        return -1;
    *seconds = bench_median_sort(p->times, n);
    return 0;
}

typedef struct rnn_rounds {
    const bench_options *o;
    rnn_config *cfg;
    const rnn_data *d;
    double *times; /* scratch of rnn_pass */
} rnn_rounds;

/* One block (R repetitions) of configuration `index` (bench_run_rounds). */
static int run_block(void *arg, size_t index, const bench_filter *f)
{
    rnn_rounds *r = arg;
    rnn_config *c = &r->cfg[index];
    rnn_pass pass = {c, r->d, r->times};
    return bench_measure(f, &c->filter, r->o->reps, rep_pass, &pass, &c->samples);
}

static int run_rounds(const bench_options *o, rnn_config *cfg, size_t ncfg, const rnn_data *d)
{
    double *times = calloc(d->n, sizeof *times);
    if (times == NULL) {
        fprintf(stderr, "weft-bench: out of memory for the round plan\n");
        return -1;
    }
    rnn_rounds rounds = {o, cfg, d, times};
    int rc = bench_run_rounds(o, ncfg, run_block, &rounds);
    free(times);
    return rc;
}

/* --trace: a traced pool, RNN_TRACE_SEQS sequences in each style (the static plans are
 * built untraced first), written when the pool is flushed. */
static int write_trace(const bench_options *o, const rnn_data *d, unsigned threads)
{
    weft_pool *pool = NULL;
    weft_status st = bench_trace_pool_create(o, threads, &pool);
    if (st != WEFT_OK)
        return fail("trace", "weft_pool_create", st);
    rnn_model m[STYLE_COUNT];
    int rc = 0, made = 0;
    for (int s = 0; s < STYLE_COUNT && rc == 0; s++)
        if ((rc = model_make(&m[s], s, pool, threads, d)) == 0)
            made++;
    size_t n = d->n < RNN_TRACE_SEQS ? d->n : RNN_TRACE_SEQS;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (m[STYLE_STATIC].plan[d->seq[i].len] == NULL)
            rc = static_build(&m[STYLE_STATIC], d->seq[i].len) == WEFT_OK ? 0 : -1;
    for (int s = 0; s < STYLE_COUNT && rc == 0; s++)
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = model_step(&m[s], &d->seq[i]);
    for (int s = 0; s < made; s++)
        model_free(&m[s]);
    if (rc == 0 && (st = weft_pool_trace_flush(pool)) != WEFT_OK)
        rc = fail("trace", "weft_pool_trace_flush", st);
    weft_pool_destroy(pool);
    if (rc == 0)
        fprintf(stderr, "weft-bench: Chrome trace of %zu sequences per style (dynamic, then "
                        "static) at T=%u written to %s\n", n, threads, o->trace_path);
    return rc;
}

/* ---- report --------------------------------------------------------------------------- */

static int target_applies(const bench_options *o)
{
    return o->size_label != NULL && strcmp(o->size_label, "full") == 0;
}

static void print_report(const bench_options *o, rnn_config *cfg, size_t ncfg,
                         const rnn_data *d, const char *verified)
{
    int target = target_applies(o);
    for (size_t i = 0; i < ncfg; i++) {
        rnn_config *c = &cfg[i];
        bench_stats s, base;
        bench_samples_stats(&c->samples, &s);
        /* speedup over the same style at the smallest T */
        const rnn_config *b = NULL;
        for (size_t j = 0; j < ncfg; j++)
            if (cfg[j].model.style == c->model.style &&
                (b == NULL || cfg[j].model.threads < b->model.threads))
                b = &cfg[j];
        bench_samples_stats(&b->samples, &base);
        double speedup = s.median > 0 ? base.median / s.median : 0;
        int met = s.median <= BENCH_RNN_TARGET_S;
        if (o->json) {
            printf("{\"engine\":\"weft\",\"shape\":\"rnn-%s\",\"size\":%" PRIu64
                   ",\"grain\":null,\"threads\":%u,\"reps\":%zu,\"rounds\":%zu,\"samples\":%zu"
                   ",\"sequences\":%zu,\"mean_len\":%.2f,\"wall_s\":%.9g,\"min_s\":%.9g"
                   ",\"max_s\":%.9g,\"speedup\":%.9g,\"contaminated\":%s,\"discarded\":%u",
                   style_names[c->model.style], o->size, c->model.threads, o->reps, o->rounds,
                   s.count, d->n, d->mean_len, s.median, s.min, s.max, speedup,
                   c->filter.contaminated ? "true" : "false", c->filter.discarded);
            if (c->model.style == STYLE_STATIC)
                printf(",\"plans\":%zu,\"plan_build_s\":%.9g", c->model.nplans,
                       c->model.build_s);
            if (target)
                printf(",\"target_s\":%.9g,\"target_met\":%s}\n", BENCH_RNN_TARGET_S,
                       met ? "true" : "false");
            else
                printf(",\"target_s\":null,\"target_met\":null}\n");
            continue;
        }
        if (i == 0) {
            bench_print_workload_title(o, "rnn");
            printf("Elman RNN 64-128-4, %zu sequences of lengths %d-%d (mean %.1f, %zu "
                   "distinct), one SGD step (forward + BPTT + update) per sequence, timed per "
                   "sequence\n",
                   d->n, RNN_MIN_LEN, RNN_MAX_LEN, d->mean_len, d->distinct);
            printf("  %s\n", verified);
            printf("  a rep = one pass over the %zu sequences, its figure = the median "
                   "sequence; %zu reps x %zu rounds; ", d->n, o->reps, o->rounds);
            bench_print_filter_setup(o);
            printf("\n\n%-8s %4s %12s %12s %12s %8s  %-22s %s\n", "style", "T", "median/seq",
                   "min/seq", "max/seq", "speedup", "target", "notes");
        }
        char tgt[32] = "-";
        if (target)
            snprintf(tgt, sizeof tgt, "<= %.1f ms, %s", BENCH_RNN_TARGET_S * 1e3,
                     met ? "met" : "MISSED");
        printf("%-8s %4u %9.3f ms %9.3f ms %9.3f ms %8.2f  %-22s", style_names[c->model.style],
               c->model.threads, s.median * 1e3, s.min * 1e3, s.max * 1e3, speedup, tgt);
        if (c->model.style == STYLE_STATIC)
            printf(" %zu plans cached (built in %.0f ms)", c->model.nplans,
                   c->model.build_s * 1e3);
        bench_print_row_notes(c->filter.contaminated, c->filter.discarded);
    }
    if (!o->json)
        printf("dynamic: the graph of each sequence is recorded anew (autodiff included), and "
               "its structure finds the context's cached plan after the first sequence of a "
               "length; static: one plan per length, built by the benchmark, run with feeds.\n");
    fflush(stdout);
}

/* ---- entry point ---------------------------------------------------------------------- */

int bench_run_rnn(const bench_options *o)
{
    rnn_data d;
    bench_pools pools = {.count = 0};
    size_t ncfg = o->nthreads * STYLE_COUNT, made = 0;
    rnn_config *cfg = calloc(ncfg, sizeof *cfg);
    int rc = cfg ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "weft-bench: out of memory for the rnn configurations\n");
    if (rc == 0 && o->filter)
        rc = bench_filter_available();
    if (rc == 0)
        rc = data_make(&d, (size_t)o->size);
    int have_data = rc == 0;
    /* Per T: a pool, both models, the warm-up pass, the checks. */
    for (size_t t = 0; t < o->nthreads && rc == 0; t++) {
        weft_pool *pool = NULL;
        rc = bench_pools_get(&pools, o, o->threads[t], &pool);
        for (int s = 0; s < STYLE_COUNT && rc == 0; s++) {
            rnn_config *c = &cfg[t * STYLE_COUNT + (size_t)s];
            rc = model_make(&c->model, s, pool, o->threads[t], &d);
            if (rc == 0)
                made++;
            for (size_t i = 0; i < d.n && rc == 0; i++) {
                rc = model_step(&c->model, &d.seq[i]);
                if (rc == 0)
                    rc = check_loss(&c->model);
            }
        }
        if (rc == 0)
            rc = params_compare(&cfg[t * STYLE_COUNT + STYLE_DYNAMIC].model,
                                &cfg[t * STYLE_COUNT + STYLE_STATIC].model);
        if (rc == 0 && t > 0)
            rc = params_compare(&cfg[STYLE_STATIC].model,
                                &cfg[t * STYLE_COUNT + STYLE_STATIC].model);
    }
    if (rc == 0)
        rc = run_rounds(o, cfg, ncfg, &d);
    if (rc == 0) {
        char verified[256];
        size_t len = (size_t)snprintf(verified, sizeof verified,
                                      "verification passed: losses finite; parameters after "
                                      "the warm-up pass bit-identical between the styles and "
                                      "at T=");
        bench_append_threads(o, verified, sizeof verified, len);
        print_report(o, cfg, ncfg, &d, verified);
    }
    for (size_t i = 0; i < made; i++) {
        model_free(&cfg[i].model);
        bench_samples_free(&cfg[i].samples);
    }
    free(cfg);
    if (bench_pools_destroy(&pools) != 0)
        rc = -1;
    if (rc == 0 && o->trace_path != NULL) {
        rc = write_trace(o, &d, bench_max_threads(o));
    }
    if (have_data)
        data_free(&d);
    return rc;
}
