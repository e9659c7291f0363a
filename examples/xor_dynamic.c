/* examples/xor_dynamic.c - the XOR network of examples/xor_static.c, written the way a
 * PyTorch user writes it: the graph is built anew inside the training loop at every step
 * (define by run, weft/dynamic.h), the loss is read as a number, backward adds the
 * gradients into .grad tensors, and an optimizer steps the parameters eagerly.
 *
 *   build/xor_dynamic [--threads N] [--lr X] [--seed S] [--max-steps N] [--time-steps N]
 *
 * Same network, initialisation, learning rate, loss and optimizer as xor_static: a 2-5-2
 * net, a2 = sigmoid(x @ w1 + b1), hyp = a2 @ w2 + b2, mse(hyp, y), plain SGD
 * (w -= lr * dcost/dw, WEFT_OPTIM_SGD), parameter k filled uniform in [-1, 1) from seed
 * 4 * --seed + k. A step reads the cost and argmax(softmax(hyp)) of the parameters before
 * that step's update, as the static plan does, and training stops once all four inputs
 * are classified correctly.
 *
 * For comparison the program then trains the static version (one compiled plan run in a
 * loop, exactly as xor_static does) from the same initial parameters, and finally times
 * --time-steps (default 5000) further training steps of each style on one pool, in
 * alternating blocks of 250 steps, printing the median block of each as
 * "dynamic X us/step, static Y us/step". Exit status: 0 once both have
 * converged, 1 on an error or if --max-steps passed first, 2 for a bad command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#define NPARAM 4
#define TIME_BLOCK 250 /* training steps per timed block */

/* Every weft call returns a status; on failure weft_last_error() says what went wrong. */
static void check(weft_status st, const char *what)
{
    if (st == WEFT_OK)
        return;
    fprintf(stderr, "xor_dynamic: %s failed: %s: %s\n", what, weft_status_name(st),
            weft_last_error());
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The data: the four inputs and their one-hot classes (class = a xor b). */
static const float x_data[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
static const float y_data[4][2] = {{1, 0}, {0, 1}, {0, 1}, {1, 0}};
static const int target_class[4] = {0, 1, 1, 0};

static const int64_t d42[] = {4, 2};
static const int64_t *const param_dims[NPARAM] = {(const int64_t[]){2, 5}, (const int64_t[]){5},
                                                  (const int64_t[]){5, 2}, (const int64_t[]){2}};
static const size_t param_ndim[NPARAM] = {2, 1, 2, 1};
static const char *const param_names[NPARAM] = {"w1", "b1", "w2", "b2"};

/* Parameter k, uniform in [-1, 1) from seed 4 * seed + k (as in xor_static). */
static weft_tensor *param_create(int k, unsigned long long seed)
{
    weft_tensor *t = NULL;
    check(weft_tensor_create(WEFT_F32, param_ndim[k], param_dims[k], &t), "weft_tensor_create");
    check(weft_tensor_init_random(t, WEFT_INIT_UNIFORM, 4 * seed + (unsigned)k, -1.0, 1.0),
          param_names[k]);
    return t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n) (sorts v). */
static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int all_correct(const int32_t *cls)
{
    int ok = 1;
    for (int i = 0; i < 4; i++)
        ok &= cls[i] == target_class[i];
    return ok;
}

/* ---- the dynamic style ---------------------------------------------------------------- */

typedef struct dyn_model {
    weft_pool *pool;
    weft_dyn *dyn;
    weft_optim *sgd;
    weft_tensor *params[NPARAM], *grads[NPARAM];
    weft_tensor *xt, *yt; /* borrow the static arrays */
} dyn_model;

/* One training step, PyTorch style: build the graph, backward, read, step, zero_grad.
 * *solved says whether the parameters before the step classified all four inputs. */
static void dyn_step(dyn_model *m, double *loss, int *solved)
{
    weft_tgraph *g = NULL;
    weft_value x, y, p[NPARAM], z1, a2, hyp, cost, prob, pred;
    check(weft_dyn_begin(m->dyn, &g), "weft_dyn_begin");
    check(weft_dyn_input(m->dyn, m->xt, &x), "input x");
    check(weft_dyn_input(m->dyn, m->yt, &y), "input y");
    for (int k = 0; k < NPARAM; k++)
        check(weft_dyn_param(m->dyn, m->params[k], m->grads[k], &p[k]), param_names[k]);
    check(weft_op_matmul(g, x, p[0], 0, &z1), "matmul x@w1");
    check(weft_op_add(g, z1, p[1], &z1), "add b1");
    check(weft_op_sigmoid(g, z1, &a2), "sigmoid");
    check(weft_op_matmul(g, a2, p[2], 0, &hyp), "matmul a2@w2");
    check(weft_op_add(g, hyp, p[3], &hyp), "add b2");
    check(weft_op_mse(g, hyp, y, &cost), "mse");
    check(weft_op_softmax(g, hyp, &prob), "softmax");
    check(weft_op_argmax(g, prob, &pred), "argmax");
    /* backward evaluates everything recorded so far in one go (forward, the argmax and the
     * gradients); the reads below then cost nothing */
    check(weft_dyn_backward(m->dyn, cost), "weft_dyn_backward");
    const weft_tensor *cls = NULL;
    check(weft_dyn_scalar(m->dyn, cost, loss), "read cost");
    check(weft_dyn_read(m->dyn, pred, &cls), "read pred");
    *solved = all_correct(weft_tensor_data_const(cls));
    check(weft_optim_step(m->sgd, m->pool, NPARAM, m->params,
                          (const weft_tensor *const *)m->grads),
          "weft_optim_step");
    for (int k = 0; k < NPARAM; k++) /* zero_grad */
        check(weft_tensor_fill(m->grads[k], 0.0), "zero grad");
}

/* ---- the static style (examples/xor_static.c, condensed) ------------------------------- */

typedef struct static_model {
    weft_tgraph *g;
    weft_plan *train;
    weft_feed feeds[2];
    weft_tensor *xt, *yt;
} static_model;

static void static_build(static_model *m, weft_pool *pool, double lr, unsigned long long seed)
{
    weft_tgraph *g = NULL;
    check(weft_tgraph_create(&g), "weft_tgraph_create");
    m->g = g;
    weft_value x, y, params[NPARAM], z1, a2, hyp, cost, prob, pred, grads[NPARAM],
        updates[NPARAM];
    check(weft_tgraph_placeholder(g, WEFT_F32, 2, d42, "x", &x), "placeholder x");
    check(weft_tgraph_placeholder(g, WEFT_F32, 2, d42, "y", &y), "placeholder y");
    for (int k = 0; k < NPARAM; k++) {
        weft_tensor *init = param_create(k, seed);
        check(weft_tgraph_variable(g, init, param_names[k], &params[k]), param_names[k]);
        weft_tensor_destroy(init);
    }
    check(weft_op_matmul(g, x, params[0], 0, &z1), "matmul x@w1");
    check(weft_op_add(g, z1, params[1], &z1), "add b1");
    check(weft_op_sigmoid(g, z1, &a2), "sigmoid");
    check(weft_op_matmul(g, a2, params[2], 0, &hyp), "matmul a2@w2");
    check(weft_op_add(g, hyp, params[3], &hyp), "add b2");
    check(weft_op_mse(g, hyp, y, &cost), "mse");
    check(weft_op_softmax(g, hyp, &prob), "softmax");
    check(weft_op_argmax(g, prob, &pred), "argmax");
    check(weft_tgraph_gradients(g, cost, NPARAM, params, grads), "weft_tgraph_gradients");
    for (int k = 0; k < NPARAM; k++) {
        weft_value step;
        check(weft_op_scale(g, grads[k], lr, &step), "scale");
        check(weft_op_assign_sub(g, params[k], step, &updates[k]), "assign_sub");
    }
    const weft_value fetches[2] = {cost, pred};
    check(weft_plan_create(g, pool, 2, fetches, NPARAM, updates, NULL, &m->train),
          "weft_plan_create");
    check(weft_tensor_from_data(WEFT_F32, 2, d42, x_data, WEFT_BORROW, &m->xt), "feed x");
    check(weft_tensor_from_data(WEFT_F32, 2, d42, y_data, WEFT_BORROW, &m->yt), "feed y");
    m->feeds[0] = (weft_feed){x, m->xt};
    m->feeds[1] = (weft_feed){y, m->yt};
}

static void static_step(static_model *m, double *loss, int *solved)
{
    const weft_tensor *c = NULL, *p = NULL;
    check(weft_plan_run(m->train, 2, m->feeds), "weft_plan_run");
    check(weft_plan_fetch(m->train, 0, &c), "fetch cost");
    check(weft_plan_fetch(m->train, 1, &p), "fetch pred");
    check(weft_tensor_get(c, 0, loss), "read cost");
    *solved = all_correct(weft_tensor_data_const(p));
}

static void static_destroy(static_model *m)
{
    weft_plan_destroy(m->train);
    weft_tgraph_destroy(m->g);
    weft_tensor_destroy(m->xt);
    weft_tensor_destroy(m->yt);
}

static int usage(void)
{
    fputs("usage: xor_dynamic [--threads N] [--lr X] [--seed S] [--max-steps N] "
          "[--time-steps N]\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    unsigned threads = 0; /* 0: one per core */
    double lr = 0.5;
    unsigned long long seed = 1, max_steps = 20000, time_steps = 5000;
    for (int i = 1; i < argc; i += 2) {
        const char *opt = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (v == NULL)
            return usage();
        if (strcmp(opt, "--threads") == 0)
            threads = (unsigned)strtoul(v, &end, 10);
        else if (strcmp(opt, "--lr") == 0)
            lr = strtod(v, &end);
        else if (strcmp(opt, "--seed") == 0)
            seed = strtoull(v, &end, 10);
        else if (strcmp(opt, "--max-steps") == 0)
            max_steps = strtoull(v, &end, 10);
        else if (strcmp(opt, "--time-steps") == 0)
            time_steps = strtoull(v, &end, 10);
        else
            return usage();
        if (end != NULL && (end == v || *end != '\0'))
            return usage();
    }
    if (!(lr > 0) || max_steps == 0)
        return usage();

    weft_pool_options po = weft_pool_options_default();
    po.threads = threads;
    dyn_model dm;
    memset(&dm, 0, sizeof dm);
    check(weft_pool_create(&po, &dm.pool), "weft_pool_create");
    check(weft_dyn_create(dm.pool, NULL, &dm.dyn), "weft_dyn_create");
    weft_optim_options oo = weft_optim_options_default(WEFT_OPTIM_SGD);
    oo.lr = lr;
    check(weft_optim_create(&oo, &dm.sgd), "weft_optim_create");
    for (int k = 0; k < NPARAM; k++) {
        dm.params[k] = param_create(k, seed);
        check(weft_tensor_create(WEFT_F32, param_ndim[k], param_dims[k], &dm.grads[k]),
              "grad"); /* zero-filled */
    }
    check(weft_tensor_from_data(WEFT_F32, 2, d42, x_data, WEFT_BORROW, &dm.xt), "input x");
    check(weft_tensor_from_data(WEFT_F32, 2, d42, y_data, WEFT_BORROW, &dm.yt), "input y");

    /* Train, dynamic style. */
    unsigned long long steps = 0;
    int solved = 0;
    double loss = 0, t0 = now_s();
    while (!solved && steps < max_steps) {
        dyn_step(&dm, &loss, &solved);
        steps++;
        if (steps == 1 || steps % 500 == 0)
            printf("dynamic step %5llu  loss %.6f\n", steps, loss);
    }
    double dyn_train_us = (now_s() - t0) * 1e6 / (double)steps;
    if (!solved) {
        printf("dynamic: not converged after %llu steps (loss %.6f); try another --lr or "
               "--seed\n", steps, loss);
        return 1;
    }
    printf("dynamic: all 4 inputs classified correctly after %llu steps (loss %.6f); "
           "%.2f us per step\n", steps, loss, dyn_train_us);

    /* Train, static style, from the same initial parameters. */
    static_model sm;
    memset(&sm, 0, sizeof sm);
    static_build(&sm, dm.pool, lr, seed);
    unsigned long long ssteps = 0;
    int ssolved = 0;
    double sloss = 0;
    t0 = now_s();
    while (!ssolved && ssteps < max_steps) {
        static_step(&sm, &sloss, &ssolved);
        ssteps++;
    }
    double static_train_us = (now_s() - t0) * 1e6 / (double)ssteps;
    printf("static:  %s after %llu steps (loss %.6f); %.2f us per step\n",
           ssolved ? "all 4 inputs classified correctly" : "NOT converged", ssteps, sloss,
           static_train_us);

    /* Time further training steps: blocks of TIME_BLOCK steps, alternating between the
     * two styles on the same pool, and the median block of each (robust to a burst of
     * background load). A warm-up step of each first (caches, the dynamic arena). */
    if (time_steps > 0) {
        size_t nblocks = (size_t)((time_steps + TIME_BLOCK - 1) / TIME_BLOCK);
        double *dyn_blk = calloc(nblocks, sizeof *dyn_blk);
        double *st_blk = calloc(nblocks, sizeof *st_blk);
        if (dyn_blk == NULL || st_blk == NULL) {
            fprintf(stderr, "xor_dynamic: out of memory\n");
            return 1;
        }
        int s;
        dyn_step(&dm, &loss, &s);
        static_step(&sm, &sloss, &s);
        for (size_t b = 0; b < nblocks; b++) {
            t0 = now_s();
            for (int i = 0; i < TIME_BLOCK; i++)
                dyn_step(&dm, &loss, &s);
            dyn_blk[b] = (now_s() - t0) * 1e6 / TIME_BLOCK;
            t0 = now_s();
            for (int i = 0; i < TIME_BLOCK; i++)
                static_step(&sm, &sloss, &s);
            st_blk[b] = (now_s() - t0) * 1e6 / TIME_BLOCK;
        }
        double dyn_us = median(dyn_blk, nblocks), static_us = median(st_blk, nblocks);
        weft_dyn_stats ds;
        check(weft_dyn_stats_get(dm.dyn, &ds), "weft_dyn_stats_get");
        printf("time per training step (median of %zu blocks of %d steps each), %u thread(s): "
               "dynamic %.2f us/step, static %.2f us/step (dynamic / static = %.1fx; a "
               "dynamic step records %zu nodes and evaluates them in %zu plan(s))\n",
               nblocks, TIME_BLOCK, weft_pool_threads(dm.pool), dyn_us, static_us,
               static_us > 0 ? dyn_us / static_us : 0, ds.nodes, ds.evals);
        free(dyn_blk);
        free(st_blk);
    }

    static_destroy(&sm);
    for (int k = 0; k < NPARAM; k++) {
        weft_tensor_destroy(dm.params[k]);
        weft_tensor_destroy(dm.grads[k]);
    }
    weft_tensor_destroy(dm.xt);
    weft_tensor_destroy(dm.yt);
    weft_optim_destroy(dm.sgd);
    weft_dyn_destroy(dm.dyn);
    weft_pool_destroy(dm.pool);
    return ssolved ? 0 : 1;
}
