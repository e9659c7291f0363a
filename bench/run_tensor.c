/* bench/run_tensor.c - weft-bench --workload: tensor graphs with reverse-mode autodiff,
 * compiled into a plan once and timed per iteration (one weft_plan_run).
 *
 * Workloads ("size" is the batch or the width; --size small gives the test suite's tiny
 * versions):
 *   xor   the network of examples/xor_static.c with its default seed and learning rate:
 *         x[4,2], y[4,2], a2 = sigmoid(x@w1 + b1), hyp = a2@w2 + b2, mse, four SGD
 *         assign_sub updates as targets, argmax(softmax(hyp)) fetched. One training step
 *         per iteration.
 *   wide  x[N,N] f32 fed (N = 256); 16 independent branches of 4 layers h = tanh(h @ W),
 *         each W [N,N] Xavier; loss = sum over branches of sum(h). One iteration =
 *         forward + backward; the loss and the 64 gradients are fetched, nothing updated.
 *   mlp   784-256-128-10, relu hidden layers, f32, He init, zero biases; a batch of B =
 *         128 random inputs in [0,1) and random labels; softmax_xent; one step of SGD
 *         with momentum 0.9, lr 0.05 (weft-train's default) per iteration: forward,
 *         backward and the six updates of weft_optim_minimize.
 * The data and the parameters come from fixed seeds, so every run computes the same
 * numbers; --seed only orders the rounds, as for the shapes.
 *
 * Protocol (SHAPES.md section 5 where it applies): per thread count T, a pool and a model
 * of its own, built from the same seeds. Untimed: VERIFY_STEPS iterations, the first of
 * which is the warm-up that allocates the plan's buffers; the fetched values of each and
 * the variables after the last must be bit-identical on every T (plans promise results
 * that do not depend on the thread count), and the loss finite. Then K shuffled rounds of
 * R filtered repetitions; a repetition runs `iters` iterations back to back and records
 * their mean, so the reported median is the time of one iteration. Every run's status is
 * checked, and the loss after each repetition must stay finite.
 *
 * The bound is work / span of the plan's task graph from weft_plan_stats_get, with the
 * op table's cost estimates; the same plan on every T.
 */
#include "bench/run_tensor.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/harness.h"
#include "bench/workload_common.h"
#include "weft.h"

#define VERIFY_STEPS 3
#define TRACE_STEPS 3
#define DATA_SEED 1u /* the seed of every input and parameter */

#define XOR_LR 0.5
#define WIDE_BRANCHES 16
#define WIDE_DEPTH 4
#define MLP_LR 0.05
#define MLP_MOMENTUM 0.9
#define MLP_LAYERS 3
static const int64_t mlp_width[MLP_LAYERS + 1] = {784, 256, 128, 10};

/* ---- the workload table ------------------------------------------------------------- */

typedef struct workload_def {
    const char *name;
    uint64_t size, small_size;
    size_t iters, small_iters;
    int sizable;
} workload_def;

static const workload_def workloads[BENCH_WORKLOAD_COUNT] = {
    [BENCH_WORKLOAD_XOR] = {"xor", 4, 4, 1000, 20, 0},
    [BENCH_WORKLOAD_WIDE] = {"wide", 256, 32, 1, 1, 1},
    [BENCH_WORKLOAD_MLP] = {"mlp", 128, 16, 10, 2, 1},
    /* size = sequences per pass; run and reported by bench/run_rnn.c */
    [BENCH_WORKLOAD_RNN] = {"rnn", 200, 20, 1, 1, 1},
    /* size = N, the op nodes per iteration (full: 1000 and 10000); run and reported by
     * bench/run_dynamic.c */
    [BENCH_WORKLOAD_DYNAMIC_OVERHEAD] = {"dynamic-overhead", 10000, 100, 10, 3, 1},
};

static const workload_def *workload_get(bench_workload w)
{
    return w > BENCH_WORKLOAD_NONE && w < BENCH_WORKLOAD_COUNT ? &workloads[w] : NULL;
}

const char *bench_workload_name(bench_workload w)
{
    const workload_def *d = workload_get(w);
    return d ? d->name : NULL;
}

int bench_workload_parse(const char *text, bench_workload *out)
{
    for (unsigned w = BENCH_WORKLOAD_NONE + 1; w < BENCH_WORKLOAD_COUNT; w++) {
        if (strcmp(text, workloads[w].name) == 0) {
            *out = (bench_workload)w;
            return 0;
        }
    }
    return -1;
}

uint64_t bench_workload_size(bench_workload w, int small)
{
    const workload_def *d = workload_get(w);
    return d ? (small ? d->small_size : d->size) : 0;
}

int bench_workload_sizable(bench_workload w)
{
    const workload_def *d = workload_get(w);
    return d ? d->sizable : 0;
}

size_t bench_workload_iterations(bench_workload w, int small)
{
    const workload_def *d = workload_get(w);
    return d ? (small ? d->small_iters : d->iters) : 0;
}

bench_target bench_workload_target(const bench_options *o, unsigned threads)
{
    bench_target t = {0, 0};
    if (o->size_label == NULL || strcmp(o->size_label, "full") != 0)
        return t;
    switch (o->workload) {
    case BENCH_WORKLOAD_XOR:
        if (threads == 1)
            t.max_s = 5e-6;
        break;
    case BENCH_WORKLOAD_WIDE:
        if (threads == 2)
            t = (bench_target){50e-3, 1.75};
        break;
    case BENCH_WORKLOAD_MLP:
        if (threads == 1)
            t.max_s = 2.5e-3;
        else if (threads == 2)
            t.max_s = 1.6e-3;
        break;
    default:
        break;
    }
    return t;
}

/* ---- models ------------------------------------------------------------------------- */

#define MODEL_MAX_VARS (WIDE_BRANCHES * WIDE_DEPTH)
#define MODEL_MAX_FEEDS 2

/* One workload's graph and plan, with its fed tensors; everything owned. */
typedef struct tensor_model {
    weft_tgraph *graph;
    weft_plan *plan;
    weft_tensor *inputs[MODEL_MAX_FEEDS];
    weft_feed feeds[MODEL_MAX_FEEDS];
    size_t nfeeds;
    weft_value vars[MODEL_MAX_VARS];
    size_t nvars;
    weft_optim *optim; /* mlp: the optimizer whose updates are the plan's targets */
    double flops; /* matmul flops per iteration */
    char label[48];
} tensor_model;

static void model_destroy(tensor_model *m)
{
    weft_plan_destroy(m->plan);
    weft_optim_destroy(m->optim);
    weft_tgraph_destroy(m->graph);
    for (size_t i = 0; i < MODEL_MAX_FEEDS; i++)
        weft_tensor_destroy(m->inputs[i]);
    memset(m, 0, sizeof *m);
}

/* A float placeholder and the tensor that feeds it, filled by init (uniform in [a, b)). */
static weft_status add_input(tensor_model *m, weft_dtype dtype, size_t ndim,
                             const int64_t *dims, const char *name, weft_value *out)
{
    size_t k = m->nfeeds;
    weft_status st = weft_tgraph_placeholder(m->graph, dtype, ndim, dims, name, out);
    if (st == WEFT_OK)
        st = weft_tensor_create(dtype, ndim, dims, &m->inputs[k]);
    if (st == WEFT_OK) {
        m->feeds[k] = (weft_feed){*out, m->inputs[k]};
        m->nfeeds++;
    }
    return st;
}

/* A variable of shape dims, random (init with seed, a, b) or zero (random == 0). */
static weft_status add_variable(tensor_model *m, size_t ndim, const int64_t *dims, int random,
                                weft_init init, uint64_t seed, double a, double b,
                                const char *name)
{
    weft_tensor *t = NULL;
    weft_status st = weft_tensor_create(WEFT_F32, ndim, dims, &t);
    if (st == WEFT_OK && random)
        st = weft_tensor_init_random(t, init, seed, a, b);
    if (st == WEFT_OK)
        st = weft_tgraph_variable(m->graph, t, name, &m->vars[m->nvars]);
    if (st == WEFT_OK)
        m->nvars++;
    weft_tensor_destroy(t);
    return st;
}

/* Gradients of loss with respect to every variable, then w <- w - lr * grad as the
 * plan's targets; the plan fetches `nfetch` values. */
static weft_status add_sgd_plan(tensor_model *m, weft_pool *pool, weft_value loss, double lr,
                                size_t nfetch, const weft_value *fetches)
{
    weft_value grads[MODEL_MAX_VARS], updates[MODEL_MAX_VARS];
    weft_status st = weft_tgraph_gradients(m->graph, loss, m->nvars, m->vars, grads);
    for (size_t k = 0; k < m->nvars && st == WEFT_OK; k++) {
        weft_value step;
        st = weft_op_scale(m->graph, grads[k], lr, &step);
        if (st == WEFT_OK)
            st = weft_op_assign_sub(m->graph, m->vars[k], step, &updates[k]);
    }
    if (st == WEFT_OK)
        st = weft_plan_create(m->graph, pool, nfetch, fetches, m->nvars, updates, NULL,
                              &m->plan);
    return st;
}

/* weft-train's step: SGD with momentum MLP_MOMENTUM through weft_optim_minimize (one
 * fused update per variable, the weight gradients consumed tile by tile); the plan
 * fetches the loss. */
static weft_status add_momentum_plan(tensor_model *m, weft_pool *pool, weft_value loss)
{
    weft_optim_options oo = weft_optim_options_default(WEFT_OPTIM_MOMENTUM);
    oo.lr = MLP_LR;
    oo.momentum = MLP_MOMENTUM;
    weft_value updates[MODEL_MAX_VARS];
    weft_status st = weft_optim_create(&oo, &m->optim);
    if (st == WEFT_OK)
        st = weft_optim_minimize(m->optim, m->graph, loss, m->nvars, m->vars, updates);
    if (st == WEFT_OK)
        st = weft_plan_create(m->graph, pool, 1, &loss, m->nvars, updates, NULL, &m->plan);
    return st;
}

static weft_status build_xor(tensor_model *m, weft_pool *pool)
{
    static const float x_data[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    static const float y_data[8] = {1, 0, 0, 1, 0, 1, 1, 0};
    const int64_t d42[] = {4, 2}, d25[] = {2, 5}, d5[] = {5}, d52[] = {5, 2}, d2[] = {2};
    const int64_t *shapes[4] = {d25, d5, d52, d2};
    const size_t ndims[4] = {2, 1, 2, 1};
    static const char *const names[4] = {"w1", "b1", "w2", "b2"};
    weft_value x, y, z, a2, hyp, cost, prob, pred;
    weft_status st = add_input(m, WEFT_F32, 2, d42, "x", &x);
    if (st == WEFT_OK)
        st = add_input(m, WEFT_F32, 2, d42, "y", &y);
    if (st == WEFT_OK)
        st = weft_tensor_copy_from(m->inputs[0], x_data, sizeof x_data);
    if (st == WEFT_OK)
        st = weft_tensor_copy_from(m->inputs[1], y_data, sizeof y_data);
    /* As examples/xor_static.c with --seed 1: variable k from seed 4 * 1 + k. */
    for (int k = 0; k < 4 && st == WEFT_OK; k++)
        st = add_variable(m, ndims[k], shapes[k], 1, WEFT_INIT_UNIFORM, 4u * DATA_SEED + k,
                          -1.0, 1.0, names[k]);
    weft_tgraph *g = m->graph;
    if (st == WEFT_OK)
        st = weft_op_matmul(g, x, m->vars[0], 0, &z);
    if (st == WEFT_OK)
        st = weft_op_add(g, z, m->vars[1], &z);
    if (st == WEFT_OK)
        st = weft_op_sigmoid(g, z, &a2);
    if (st == WEFT_OK)
        st = weft_op_matmul(g, a2, m->vars[2], 0, &hyp);
    if (st == WEFT_OK)
        st = weft_op_add(g, hyp, m->vars[3], &hyp);
    if (st == WEFT_OK)
        st = weft_op_mse(g, hyp, y, &cost);
    if (st == WEFT_OK)
        st = weft_op_softmax(g, hyp, &prob);
    if (st == WEFT_OK)
        st = weft_op_argmax(g, prob, &pred);
    const weft_value fetches[2] = {cost, pred};
    if (st == WEFT_OK)
        st = add_sgd_plan(m, pool, cost, XOR_LR, 2, fetches);
    m->flops = 0; /* a few hundred flops: not a matmul benchmark */
    return st;
}

static weft_status build_wide(tensor_model *m, weft_pool *pool, int64_t n)
{
    const int64_t dims[2] = {n, n};
    weft_value x, loss = {WEFT_VALUE_NONE_ID};
    weft_status st = add_input(m, WEFT_F32, 2, dims, "x", &x);
    if (st == WEFT_OK)
        st = weft_tensor_init_random(m->inputs[0], WEFT_INIT_UNIFORM, DATA_SEED, -1.0, 1.0);
    weft_tgraph *g = m->graph;
    for (int b = 0; b < WIDE_BRANCHES && st == WEFT_OK; b++) {
        weft_value h = x, s;
        for (int i = 0; i < WIDE_DEPTH && st == WEFT_OK; i++) {
            char name[16];
            snprintf(name, sizeof name, "W%d_%d", b, i);
            uint64_t seed = 1000u * DATA_SEED + (uint64_t)(b * WIDE_DEPTH + i);
            st = add_variable(m, 2, dims, 1, WEFT_INIT_XAVIER, seed, 0, 0, name);
            if (st == WEFT_OK)
                st = weft_op_matmul(g, h, m->vars[m->nvars - 1], 0, &h);
            if (st == WEFT_OK)
                st = weft_op_tanh(g, h, &h);
        }
        if (st == WEFT_OK)
            st = weft_op_sum(g, h, WEFT_AXIS_ALL, 0, &s);
        if (st == WEFT_OK)
            st = b == 0 ? (loss = s, WEFT_OK) : weft_op_add(g, loss, s, &loss);
    }
    weft_value fetches[1 + MODEL_MAX_VARS];
    if (st == WEFT_OK)
        st = weft_tgraph_gradients(g, loss, m->nvars, m->vars, fetches + 1);
    fetches[0] = loss;
    if (st == WEFT_OK)
        st = weft_plan_create(g, pool, 1 + m->nvars, fetches, 0, NULL, NULL, &m->plan);
    /* Every matmul of the graph is N x N x N; count those autodiff emitted. */
    size_t mm = 0;
    for (size_t v = 0; v < weft_tgraph_node_count(g); v++)
        mm += strcmp(weft_tgraph_value_op(g, (weft_value){(uint32_t)v}), "matmul") == 0;
    m->flops = (double)mm * 2.0 * (double)n * (double)n * (double)n;
    return st;
}

/* The data of mlp: inputs uniform in [0,1), labels from a splitmix64 stream. */
static weft_status mlp_data(tensor_model *m, int64_t batch)
{
    weft_status st = weft_tensor_init_random(m->inputs[0], WEFT_INIT_UNIFORM, DATA_SEED, 0, 1);
    int32_t *labels = weft_tensor_data(m->inputs[1]);
    bench_splitmix rng = {DATA_SEED};
    for (int64_t i = 0; i < batch; i++)
        labels[i] = (int32_t)(bench_splitmix_next(&rng) % (uint64_t)mlp_width[MLP_LAYERS]);
    return st;
}

static weft_status build_mlp(tensor_model *m, weft_pool *pool, int64_t batch)
{
    const int64_t xd[2] = {batch, mlp_width[0]}, ld[1] = {batch};
    weft_value x, labels, h, loss;
    weft_status st = add_input(m, WEFT_F32, 2, xd, "x", &x);
    if (st == WEFT_OK)
        st = add_input(m, WEFT_I32, 1, ld, "labels", &labels);
    if (st == WEFT_OK)
        st = mlp_data(m, batch);
    weft_tgraph *g = m->graph;
    h = x;
    double fwd = 0, dh = 0; /* multiply-adds per example: forward, backward through h */
    for (int l = 0; l < MLP_LAYERS && st == WEFT_OK; l++) {
        const int64_t wd[2] = {mlp_width[l], mlp_width[l + 1]}, bd[1] = {mlp_width[l + 1]};
        char wn[8], bn[8];
        snprintf(wn, sizeof wn, "w%d", l + 1);
        snprintf(bn, sizeof bn, "b%d", l + 1);
        st = add_variable(m, 2, wd, 1, WEFT_INIT_HE, 100u * DATA_SEED + (uint64_t)l, 0, 0, wn);
        if (st == WEFT_OK)
            st = add_variable(m, 1, bd, 0, WEFT_INIT_HE, 0, 0, 0, bn);
        if (st == WEFT_OK)
            st = weft_op_matmul(g, h, m->vars[m->nvars - 2], 0, &h);
        if (st == WEFT_OK)
            st = weft_op_add(g, h, m->vars[m->nvars - 1], &h);
        if (st == WEFT_OK && l + 1 < MLP_LAYERS)
            st = weft_op_relu(g, h, &h);
        fwd += (double)(wd[0] * wd[1]);
        dh += l > 0 ? (double)(wd[0] * wd[1]) : 0; /* no gradient for the input x */
    }
    if (st == WEFT_OK)
        st = weft_op_softmax_xent(g, h, labels, &loss);
    if (st == WEFT_OK)
        st = add_momentum_plan(m, pool, loss);
    /* forward, weight gradients (as many), input gradients of layers 2 and 3 */
    m->flops = 2.0 * (double)batch * (2 * fwd + dh);
    return st;
}

/* Builds opts->workload on `pool`. */
static int model_build(const bench_options *o, weft_pool *pool, unsigned threads,
                       tensor_model *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->label, sizeof m->label, "%s T=%u", bench_workload_name(o->workload), threads);
    weft_status st = weft_tgraph_create(&m->graph);
    if (st == WEFT_OK) {
        switch (o->workload) {
        case BENCH_WORKLOAD_XOR:
            st = build_xor(m, pool);
            break;
        case BENCH_WORKLOAD_WIDE:
            st = build_wide(m, pool, (int64_t)o->size);
            break;
        default:
            st = build_mlp(m, pool, (int64_t)o->size);
            break;
        }
    }
    if (st != WEFT_OK) {
        fprintf(stderr, "weft-bench: building workload %s failed: %s: %s\n", m->label,
                weft_status_name(st), weft_last_error());
        model_destroy(m);
        return -1;
    }
    return 0;
}

/* One iteration: one run of the plan with the model's feeds. */
static int model_step(tensor_model *m)
{
    weft_status st = weft_plan_run(m->plan, m->nfeeds, m->feeds);
    if (st != WEFT_OK) {
        fprintf(stderr, "weft-bench: workload %s: weft_plan_run failed: %s: %s\n", m->label,
                weft_status_name(st), weft_last_error());
        return -1;
    }
    return 0;
}

/* The loss of the last run (fetch 0), which must be finite. */
static int model_loss(tensor_model *m, double *loss)
{
    const weft_tensor *t = NULL;
    weft_status st = weft_plan_fetch(m->plan, 0, &t);
    if (st == WEFT_OK)
        st = weft_tensor_get(t, 0, loss);
    if (st != WEFT_OK) {
        fprintf(stderr, "weft-bench: workload %s: reading the loss failed: %s: %s\n", m->label,
                weft_status_name(st), weft_last_error());
        return -1;
    }
    if (!isfinite(*loss)) {
        fprintf(stderr, "weft-bench: workload %s: the loss is %g\n", m->label, *loss);
        return -1;
    }
    return 0;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t bytes)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < bytes; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t tensor_digest(uint64_t h, const weft_tensor *t)
{
    size_t bytes = weft_tensor_numel(t) * weft_dtype_size(weft_tensor_dtype(t));
    return fnv1a(h, weft_tensor_data_const(t), bytes);
}

/* The untimed verification: VERIFY_STEPS iterations (the first is the warm-up); *digest
 * hashes every fetched value of each and the variables after the last. */
static int model_verify(tensor_model *m, size_t nfetch, uint64_t *digest)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int s = 0; s < VERIFY_STEPS; s++) {
        double loss;
        if (model_step(m) != 0 || model_loss(m, &loss) != 0)
            return -1;
        for (size_t i = 0; i < nfetch; i++) {
            const weft_tensor *t = NULL;
            weft_status st = weft_plan_fetch(m->plan, i, &t);
            if (st != WEFT_OK) {
                fprintf(stderr, "weft-bench: workload %s: fetch %zu failed: %s\n", m->label,
                        i, weft_last_error());
                return -1;
            }
            h = tensor_digest(h, t);
        }
    }
    for (size_t k = 0; k < m->nvars; k++) {
        weft_tensor *t = NULL;
        weft_status st = weft_tgraph_variable_tensor(m->graph, m->vars[k], &t);
        if (st != WEFT_OK) {
            fprintf(stderr, "weft-bench: workload %s: reading variable %zu failed: %s\n",
                    m->label, k, weft_last_error());
            return -1;
        }
        h = tensor_digest(h, t);
    }
    *digest = h;
    return 0;
}

/* ---- measurement -------------------------------------------------------------------- */

typedef struct tensor_ctx {
    tensor_model *m;
    size_t iters;
} tensor_ctx;

/* One repetition: `iters` iterations back to back; *seconds = their mean. */
static int rep_iterations(void *arg, double *seconds)
{
    tensor_ctx *c = arg;
    double t0 = bench_now_s();
    for (size_t i = 0; i < c->iters; i++) {
        if (model_step(c->m) != 0)
            return -1;
    }
    double t1 = bench_now_s();
    double loss;
    if (model_loss(c->m, &loss) != 0)
        return -1;
    *seconds = (t1 - t0) / (double)c->iters;
    return 0;
}

typedef struct tensor_rounds {
    const bench_options *o;
    tensor_model *models;
    bench_result *res;
} tensor_rounds;

/* One block (R repetitions) of thread count `index` (bench_run_rounds). */
static int run_block(void *arg, size_t index, const bench_filter *f)
{
    tensor_rounds *t = arg;
    bench_result *r = &t->res[index];
    tensor_ctx c = {&t->models[index], t->o->iters};
    weft_pool_counters_reset(r->pool);
    int rc = bench_measure(f, &r->filter_oneshot, t->o->reps, rep_iterations, &c, &r->oneshot);
    if (rc == 0)
        rc = bench_result_take_counters(r);
    return rc;
}

/* --trace: a pool of its own with tracing on, TRACE_STEPS iterations (the first one
 * allocates the buffers), written when the pool is flushed. Kept out of the timed runs. */
static int write_trace(const bench_options *o, unsigned threads)
{
    weft_pool *pool = NULL;
    weft_status st = bench_trace_pool_create(o, threads, &pool);
    if (st != WEFT_OK) {
        fprintf(stderr, "weft-bench: weft_pool_create for the trace failed: %s: %s\n",
                weft_status_name(st), weft_last_error());
        return -1;
    }
    tensor_model m;
    int rc = model_build(o, pool, threads, &m);
    if (rc == 0) {
        for (int s = 0; s < TRACE_STEPS && rc == 0; s++)
            rc = model_step(&m);
        model_destroy(&m);
    }
    if (rc == 0 && (st = weft_pool_trace_flush(pool)) != WEFT_OK) {
        fprintf(stderr, "weft-bench: writing the trace failed: %s\n", weft_last_error());
        rc = -1;
    }
    weft_pool_destroy(pool);
    if (rc == 0)
        fprintf(stderr, "weft-bench: Chrome trace of %d iterations of %s at T=%u written to "
                        "%s\n", TRACE_STEPS, bench_workload_name(o->workload), threads,
                o->trace_path);
    return rc;
}

static void describe(const bench_options *o, const weft_plan_stats *ps, unsigned mem_threads,
                     int inline_1, char *buf, size_t cap)
{
    char what[200];
    switch (o->workload) {
    case BENCH_WORKLOAD_XOR:
        snprintf(what, sizeof what, "XOR 2-5-2 training step (x[4,2], sigmoid, mse, 4 SGD "
                                    "updates, argmax fetched)");
        break;
    case BENCH_WORKLOAD_WIDE:
        snprintf(what, sizeof what, "x[%" PRIu64 ",%" PRIu64 "], %d branches x %d layers "
                 "tanh(h @ W), forward + backward (64 gradients fetched)", o->size, o->size,
                 WIDE_BRANCHES, WIDE_DEPTH);
        break;
    default:
        snprintf(what, sizeof what, "MLP 784-256-128-10 (relu, He init), batch %" PRIu64
                 ", softmax_xent, one step of SGD with momentum 0.9 (forward + backward + 6 fused updates)", o->size);
        break;
    }
    snprintf(buf, cap, "%s; plan: %zu nodes, %zu tasks, %zu backward nodes; memory plan at "
             "T=%u %.3g MB (buffers, and %.3g MB of gradient blocks of fused updates) for "
             "%.3g MB of values (%.2f); estimated work %.1f us, span %.1f us%s", what,
             ps->nodes, ps->tasks, ps->backward_nodes, mem_threads,
             (double)ps->planned_bytes * 1e-6,
             (double)ps->scratch_bytes * 1e-6, (double)ps->naive_bytes * 1e-6,
             ps->naive_bytes ? (double)ps->planned_bytes / (double)ps->naive_bytes : 0.0,
             ps->graph.work * 1e-3, ps->graph.span * 1e-3,
             inline_1 ? "; below the plan's inline threshold: runs on the calling thread"
                      : "");
}

int bench_run_tensor(const bench_options *o)
{
    bench_result *res = NULL;
    size_t nres = 0;
    bench_pools pools = {.count = 0};
    tensor_model *models = NULL;
    uint64_t *digests = NULL;
    weft_plan_stats ps;
    memset(&ps, 0, sizeof ps);
    int rc = o->filter ? bench_filter_available() : 0;
    if (rc == 0)
        rc = bench_results_make(o, &res, &nres);
    if (rc == 0) {
        models = calloc(nres, sizeof *models);
        digests = calloc(nres, sizeof *digests);
        if (models == NULL || digests == NULL) {
            fprintf(stderr, "weft-bench: out of memory for the models\n");
            rc = -1;
        }
    }
    size_t built = 0;
    for (size_t i = 0; i < nres && rc == 0; i++) {
        rc = bench_pools_get(&pools, o, res[i].threads, &res[i].pool);
        if (rc == 0)
            rc = model_build(o, res[i].pool, res[i].threads, &models[i]);
        if (rc == 0)
            built++;
        size_t nfetch = o->workload == BENCH_WORKLOAD_XOR    ? 2
                        : o->workload == BENCH_WORKLOAD_WIDE ? 1 + models[i].nvars
                                                             : 1;
        if (rc == 0)
            rc = model_verify(&models[i], nfetch, &digests[i]);
        if (rc == 0 && digests[i] != digests[0]) {
            fprintf(stderr, "weft-bench: workload %s: verification failed: the results "
                            "differ from those at T=%u (digest %016" PRIx64 " vs %016" PRIx64
                            ")\n", models[i].label, res[0].threads, digests[i], digests[0]);
            rc = -1;
        }
    }
    size_t top = 0; /* the memory plan is reported for the most threads (one block each) */
    for (size_t i = 0; i < built; i++)
        top = res[i].threads > res[top].threads ? i : top;
    if (rc == 0) {
        weft_status st = weft_plan_stats_get(models[top].plan, &ps);
        if (st != WEFT_OK) {
            fprintf(stderr, "weft-bench: weft_plan_stats_get failed: %s\n", weft_last_error());
            rc = -1;
        }
    }
    if (rc == 0) {
        tensor_rounds rounds = {o, models, res};
        rc = bench_run_rounds(o, nres, run_block, &rounds);
    }
    double flops = built ? models[0].flops : 0;
    for (size_t i = 0; i < built; i++)
        model_destroy(&models[i]);
    if (rc == 0) {
        char verified[256], note[640];
        size_t len = (size_t)snprintf(verified, sizeof verified,
                                      "verification passed: loss finite, fetched values (%d "
                                      "iterations) and variables bit-identical at T=",
                                      VERIFY_STEPS);
        bench_append_threads(o, verified, sizeof verified, len);
        weft_plan_options po = weft_plan_options_default();
        describe(o, &ps, res[top].threads, ps.graph.work < po.inline_below_ns, note, sizeof note);
        bench_report rep = {o, ps.tasks, ps.graph.edges, ps.graph.levels, 0, o->iters,
                            ps.graph.parallelism, flops, verified, note, res, nres};
        bench_report_print(&rep);
    }
    bench_results_free(res, nres);
    if (bench_pools_destroy(&pools) != 0)
        rc = -1;
    free(models);
    free(digests);
    if (rc == 0 && o->trace_path != NULL) {
        rc = write_trace(o, bench_max_threads(o));
    }
    return rc;
}
