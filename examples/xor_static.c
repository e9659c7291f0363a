/* examples/xor_static.c - XOR learned by a 2-5-2 network, written the way a TensorFlow 1.x
 * user writes it: placeholders and variables, a cost, gradients, SGD updates listed as
 * plan targets, and one compiled plan run in a loop with feeds.
 *
 *   build/xor_static [--threads N] [--lr X] [--seed S] [--max-steps N] [--dot FILE]
 *
 * Each step runs forward, backward and the four updates, and fetches the cost and the
 * predicted classes argmax(softmax(hyp)) (computed before that step's updates: an update
 * runs after every reader of its variable). Training stops when all four inputs are
 * classified correctly. Exit status: 0 once it has converged, 1 on an error or if
 * --max-steps passed first, 2 for a bad command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

/* Every weft call returns a status; on failure weft_last_error() says what went wrong. */
static void check(weft_status st, const char *what)
{
    if (st == WEFT_OK)
        return;
    fprintf(stderr, "xor_static: %s failed: %s: %s\n", what, weft_status_name(st),
            weft_last_error());
    exit(1);
}

/* A variable of shape dims, uniform in [-1, 1), filled from `seed`. */
static weft_value variable(weft_tgraph *g, const char *name, size_t ndim, const int64_t *dims,
                           uint64_t seed)
{
    weft_tensor *init = NULL;
    weft_value v;
    check(weft_tensor_create(WEFT_F32, ndim, dims, &init), "weft_tensor_create");
    check(weft_tensor_init_random(init, WEFT_INIT_UNIFORM, seed, -1.0, 1.0), name);
    check(weft_tgraph_variable(g, init, name, &v), name); /* the graph keeps a copy */
    weft_tensor_destroy(init);
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int usage(void)
{
    fputs("usage: xor_static [--threads N] [--lr X] [--seed S] [--max-steps N] [--dot FILE]\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    unsigned threads = 0; /* 0: one per core */
    double lr = 0.5;
    unsigned long long seed = 1, max_steps = 20000;
    const char *dot = NULL;
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
        else if (strcmp(opt, "--dot") == 0)
            dot = v;
        else
            return usage();
        if (end != NULL && (end == v || *end != '\0'))
            return usage();
    }
    if (!(lr > 0) || max_steps == 0)
        return usage();

    /* The data: the four inputs and their one-hot classes (class = a xor b). */
    static const float x_data[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    static const float y_data[4][2] = {{1, 0}, {0, 1}, {0, 1}, {1, 0}};
    static const int target_class[4] = {0, 1, 1, 0};

    /* Build the graph once. */
    weft_tgraph *g = NULL;
    check(weft_tgraph_create(&g), "weft_tgraph_create");
    const int64_t d42[] = {4, 2}, d25[] = {2, 5}, d5[] = {5}, d52[] = {5, 2}, d2[] = {2};
    weft_value x, y, z1, z1b, a2, hyp0, hyp, cost, prob, pred;
    check(weft_tgraph_placeholder(g, WEFT_F32, 2, d42, "x", &x), "placeholder x");
    check(weft_tgraph_placeholder(g, WEFT_F32, 2, d42, "y", &y), "placeholder y");
    /* Variable k is filled with seed 4 * --seed + k: no two variables or seeds share one. */
    weft_value params[4] = {variable(g, "w1", 2, d25, 4 * seed + 0),
                            variable(g, "b1", 1, d5, 4 * seed + 1),
                            variable(g, "w2", 2, d52, 4 * seed + 2),
                            variable(g, "b2", 1, d2, 4 * seed + 3)};
    check(weft_op_matmul(g, x, params[0], 0, &z1), "matmul x@w1");
    check(weft_op_add(g, z1, params[1], &z1b), "add b1");            /* [4,5] + [5] */
    check(weft_op_sigmoid(g, z1b, &a2), "sigmoid");
    check(weft_op_matmul(g, a2, params[2], 0, &hyp0), "matmul a2@w2");
    check(weft_op_add(g, hyp0, params[3], &hyp), "add b2");
    check(weft_op_mse(g, hyp, y, &cost), "mse");
    check(weft_op_softmax(g, hyp, &prob), "softmax");
    check(weft_op_argmax(g, prob, &pred), "argmax");

    /* Backward pass and plain SGD: w <- w - lr * dcost/dw. */
    weft_value grads[4], updates[4];
    check(weft_tgraph_gradients(g, cost, 4, params, grads), "weft_tgraph_gradients");
    for (int k = 0; k < 4; k++) {
        weft_value step;
        check(weft_op_scale(g, grads[k], lr, &step), "scale");
        check(weft_op_assign_sub(g, params[k], step, &updates[k]), "assign_sub");
    }
    if (dot != NULL)
        check(weft_tgraph_to_dot(g, dot), "weft_tgraph_to_dot");

    /* The session: a pool and one plan (fetch cost and pred; run the updates). */
    weft_pool_options po = weft_pool_options_default();
    po.threads = threads;
    weft_pool *pool = NULL;
    check(weft_pool_create(&po, &pool), "weft_pool_create");
    weft_plan *train = NULL;
    const weft_value fetches[2] = {cost, pred};
    check(weft_plan_create(g, pool, 2, fetches, 4, updates, NULL, &train), "weft_plan_create");

    weft_tensor *xt = NULL, *yt = NULL; /* feeds borrow the static arrays */
    check(weft_tensor_from_data(WEFT_F32, 2, d42, x_data, WEFT_BORROW, &xt), "feed x");
    check(weft_tensor_from_data(WEFT_F32, 2, d42, y_data, WEFT_BORROW, &yt), "feed y");
    const weft_feed feeds[2] = {{x, xt}, {y, yt}};

    unsigned long long steps = 0;
    int solved = 0;
    double loss = 0, t0 = now_s();
    while (!solved && steps < max_steps) {
        check(weft_plan_run(train, 2, feeds), "weft_plan_run");
        steps++;
        const weft_tensor *c = NULL, *p = NULL;
        check(weft_plan_fetch(train, 0, &c), "fetch cost");
        check(weft_plan_fetch(train, 1, &p), "fetch pred");
        check(weft_tensor_get(c, 0, &loss), "read cost");
        const int32_t *cls = weft_tensor_data_const(p);
        solved = 1;
        for (int i = 0; i < 4; i++)
            solved &= cls[i] == target_class[i];
        if (steps == 1 || steps % 500 == 0)
            printf("step %5llu  loss %.6f\n", steps, loss);
    }
    double us = (now_s() - t0) * 1e6 / (double)steps;

    if (solved)
        printf("all 4 inputs classified correctly after %llu steps (loss %.6f); "
               "%.2f us per step on %u thread(s)\n", steps, loss, us, weft_pool_threads(pool));
    else
        printf("not converged after %llu steps (loss %.6f); try another --lr or --seed\n",
               steps, loss);
    weft_tensor_destroy(xt);
    weft_tensor_destroy(yt);
    weft_plan_destroy(train);
    weft_pool_destroy(pool);
    weft_tgraph_destroy(g);
    return solved ? 0 : 1;
}
