/* tests/graph/test_autodiff.c - reverse-mode autodiff of whole graphs, and DOT export.
 *
 * The central check: gradients that weft_tgraph_gradients appends to a graph, computed by
 * a plan in float64, agree with central finite differences of the same plan's loss, for
 * every element of every wrt value (placeholder-fed inputs and variables alike):
 *   - a small MLP: x[8,5] -> matmul+bias -> tanh -> matmul+bias -> sigmoid -> mse;
 *   - two branches from one input that join by add and by mul;
 *   - a value used three times (x*x + exp(x)), also as a non-scalar loss.
 * The error measure is |analytic - numeric| / max(|analytic|, |numeric|, 1e-3): relative,
 * with a floor so that components whose true value is ~0 are checked absolutely (central
 * differences with h = 1e-5 in float64 are good to ~1e-10 absolute here).
 * Also: fan-out sums against analytic values, zeros for a wrt value the loss does not
 * depend on, clear failures for a non-float loss, an integer wrt value and a path through
 * argmax, and weft_tgraph_to_dot (colours of forward and backward nodes, failures that
 * leave no temporary file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/util/tu_common.h"
#include "tests/util/tu_weft.h"
#include "weft.h"

#define FD_H 1e-5
#define FD_TOL 1e-6
#define FD_FLOOR 1e-3

/* ---- helpers ------------------------------------------------------------------------- */

/* A float tensor filled uniformly in [lo, hi) from `seed`. */
static weft_tensor *rand_tensor(weft_dtype dt, size_t ndim, const int64_t *dims, uint64_t seed,
                                double lo, double hi)
{
    return tu_rand_tensor(dt, ndim, dims, WEFT_INIT_UNIFORM, seed, lo, hi);
}

static weft_value add_variable(weft_tgraph *g, size_t ndim, const int64_t *dims, uint64_t seed,
                               double lo, double hi, const char *name)
{
    weft_tensor *t = rand_tensor(WEFT_F64, ndim, dims, seed, lo, hi);
    weft_value v;
    OK(weft_tgraph_variable(g, t, name, &v));
    weft_tensor_destroy(t);
    return v;
}

static size_t value_numel(const weft_tgraph *g, weft_value v)
{
    size_t ndim = 0;
    int64_t dims[WEFT_MAX_DIMS];
    OK(weft_tgraph_value_info(g, v, NULL, &ndim, dims));
    size_t n = 1;
    for (size_t i = 0; i < ndim; i++) {
        assert_true(dims[i] > 0);
        n *= (size_t)dims[i];
    }
    return n;
}

static weft_plan *make_plan(weft_tgraph *g, weft_pool *pool, size_t nf, const weft_value *f)
{
    weft_plan_options po = weft_plan_options_default();
    po.inline_below_ns = 0; /* the scheduled path */
    weft_plan *plan = NULL;
    OK(weft_plan_create(g, pool, nf, f, 0, NULL, &po, &plan));
    return plan;
}

static double fetch_scalar(weft_plan *plan, size_t i)
{
    const weft_tensor *t = NULL;
    OK(weft_plan_fetch(plan, i, &t));
    assert_int_equal(weft_tensor_numel(t), 1);
    double v = 0;
    OK(weft_tensor_get(t, 0, &v));
    return v;
}

/* Copies fetch i (float64, n elements) into a new malloc'd array. */
static double *fetch_copy(weft_plan *plan, size_t i, size_t n)
{
    const weft_tensor *t = NULL;
    OK(weft_plan_fetch(plan, i, &t));
    assert_int_equal(weft_tensor_dtype(t), WEFT_F64);
    assert_int_equal(weft_tensor_numel(t), n);
    double *out = malloc(n * sizeof *out + 1);
    assert_non_null(out);
    OK(weft_tensor_copy_to(t, out, n * sizeof *out));
    return out;
}

/* The float64 storage that holds wrt value v: a variable's tensor or the feed of a
 * placeholder. */
static double *wrt_storage(weft_tgraph *g, weft_value v, size_t nfeeds, const weft_feed *feeds)
{
    if (strcmp(weft_tgraph_value_op(g, v), "variable") == 0) {
        weft_tensor *t = NULL;
        OK(weft_tgraph_variable_tensor(g, v, &t));
        return weft_tensor_data(t);
    }
    for (size_t i = 0; i < nfeeds; i++)
        if (feeds[i].placeholder.id == v.id)
            return (double *)weft_tensor_data_const(feeds[i].tensor);
    fail_msg("value %u is neither a variable nor fed", v.id);
    return NULL;
}

static double rel_err(double a, double n)
{
    double m = fmax(fmax(fabs(a), fabs(n)), FD_FLOOR);
    return fabs(a - n) / m;
}

/* Gradient check: a plan fetching [loss, grads...] gives the analytic gradients; a plan
 * fetching the loss alone gives central differences, one element at a time (the element is
 * changed in place between runs: variables through their tensor, placeholders through the
 * feed's data, both allowed between runs). Returns the largest error seen. */
static double gradcheck(weft_tgraph *g, weft_pool *pool, weft_value loss, size_t n,
                        const weft_value *wrt, const weft_value *grads, size_t nfeeds,
                        const weft_feed *feeds, const char *what)
{
    weft_value fetch[16];
    assert_true(n + 1 <= 16);
    fetch[0] = loss;
    for (size_t i = 0; i < n; i++)
        fetch[i + 1] = grads[i];
    weft_plan *pg = make_plan(g, pool, n + 1, fetch);
    weft_plan *pl = make_plan(g, pool, 1, &loss);
    OK(weft_plan_run(pg, nfeeds, feeds));
    double base = fetch_scalar(pg, 0);
    assert_true(isfinite(base));
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        size_t ne = value_numel(g, wrt[i]);
        assert_int_equal(value_numel(g, grads[i]), ne);
        double *ana = fetch_copy(pg, i + 1, ne);
        double *x = wrt_storage(g, wrt[i], nfeeds, feeds);
        for (size_t j = 0; j < ne; j++) {
            double orig = x[j];
            x[j] = orig + FD_H;
            OK(weft_plan_run(pl, nfeeds, feeds));
            double lp = fetch_scalar(pl, 0);
            x[j] = orig - FD_H;
            OK(weft_plan_run(pl, nfeeds, feeds));
            double lm = fetch_scalar(pl, 0);
            x[j] = orig;
            double num = (lp - lm) / (2 * FD_H);
            double e = rel_err(ana[j], num);
            if (e > worst)
                worst = e;
            if (!(e < FD_TOL)) {
                print_error("%s: d loss / d %s[%zu] (value %u): analytic %.12g, numeric %.12g, "
                            "error %.3g\n",
                            what, weft_tgraph_value_op(g, wrt[i]), j, wrt[i].id, ana[j], num, e);
                fail();
            }
        }
        free(ana);
    }
    /* the loss is back where it started (every element restored) */
    OK(weft_plan_run(pl, nfeeds, feeds));
    assert_true(fetch_scalar(pl, 0) == base);
    weft_plan_destroy(pl);
    weft_plan_destroy(pg);
    return worst;
}

/* ---- finite-difference checks of whole graphs ------------------------------------------ */

static void test_autodiff_mlp_matches_finite_differences(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(3);
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    const int64_t N = 8, D = 5, H = 6, O = 3;
    weft_value x, y;
    OK(weft_tgraph_placeholder(g, WEFT_F64, 2, (int64_t[]){N, D}, "x", &x));
    OK(weft_tgraph_placeholder(g, WEFT_F64, 2, (int64_t[]){N, O}, "target", &y));
    weft_value w1 = add_variable(g, 2, (int64_t[]){D, H}, 11, -0.8, 0.8, "w1");
    weft_value b1 = add_variable(g, 1, (int64_t[]){H}, 12, -0.3, 0.3, "b1");
    weft_value w2 = add_variable(g, 2, (int64_t[]){H, O}, 13, -0.8, 0.8, "w2");
    weft_value b2 = add_variable(g, 1, (int64_t[]){O}, 14, -0.3, 0.3, "b2");
    weft_value a1, z1, h, a2, z2, p, loss;
    OK(weft_op_matmul(g, x, w1, 0, &a1));
    OK(weft_op_add(g, a1, b1, &z1));
    OK(weft_op_tanh(g, z1, &h));
    OK(weft_op_matmul(g, h, w2, 0, &a2));
    OK(weft_op_add(g, a2, b2, &z2));
    OK(weft_op_sigmoid(g, z2, &p));
    OK(weft_op_mse(g, p, y, &loss));
    weft_value wrt[5] = {x, w1, b1, w2, b2}, grads[5];
    OK(weft_tgraph_gradients(g, loss, 5, wrt, grads));
    for (size_t i = 0; i < 5; i++) {
        /* each gradient has its wrt value's dtype and shape */
        weft_dtype dt_w, dt_g;
        size_t nd_w, nd_g;
        int64_t dw[WEFT_MAX_DIMS], dg[WEFT_MAX_DIMS];
        OK(weft_tgraph_value_info(g, wrt[i], &dt_w, &nd_w, dw));
        OK(weft_tgraph_value_info(g, grads[i], &dt_g, &nd_g, dg));
        assert_int_equal(dt_g, dt_w);
        assert_int_equal(nd_g, nd_w);
        assert_memory_equal(dg, dw, nd_w * sizeof dw[0]);
    }
    weft_tensor *tx = rand_tensor(WEFT_F64, 2, (int64_t[]){N, D}, 21, -1.5, 1.5);
    weft_tensor *ty = rand_tensor(WEFT_F64, 2, (int64_t[]){N, O}, 22, 0.0, 1.0);
    weft_feed feeds[2] = {{x, tx}, {y, ty}};
    double worst = gradcheck(g, pool, loss, 5, wrt, grads, 2, feeds, "mlp");
    print_message("mlp: worst error %.3g\n", worst);
    weft_tensor_destroy(tx);
    weft_tensor_destroy(ty);
    weft_tgraph_destroy(g);
    weft_pool_destroy(pool);
}

/* Two paths from one input (tanh(x*w) and exp(0.3*x)) joined by add and by mul, then
 * reduced; gradients wrt the fed input and the variable. */
static void test_autodiff_two_branches_join_by_add_and_mul(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(2);
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    weft_value x;
    OK(weft_tgraph_placeholder(g, WEFT_F64, 2, (int64_t[]){4, 3}, "x", &x));
    weft_value w = add_variable(g, 1, (int64_t[]){3}, 31, 0.2, 1.2, "w");
    weft_value xw, p1, xs, p2, j_add, j_mul, prod, loss;
    OK(weft_op_mul(g, x, w, &xw));
    OK(weft_op_tanh(g, xw, &p1));
    OK(weft_op_scale(g, x, 0.3, &xs));
    OK(weft_op_exp(g, xs, &p2));
    OK(weft_op_add(g, p1, p2, &j_add));
    OK(weft_op_mul(g, p1, p2, &j_mul));
    OK(weft_op_mul(g, j_add, j_mul, &prod));
    OK(weft_op_mean(g, prod, WEFT_AXIS_ALL, 0, &loss));
    weft_value wrt[2] = {x, w}, grads[2];
    OK(weft_tgraph_gradients(g, loss, 2, wrt, grads));
    weft_tensor *tx = rand_tensor(WEFT_F64, 2, (int64_t[]){4, 3}, 32, -1.0, 1.0);
    weft_feed feed = {x, tx};
    double worst = gradcheck(g, pool, loss, 2, wrt, grads, 1, &feed, "two branches");
    print_message("two branches: worst error %.3g\n", worst);
    weft_tensor_destroy(tx);
    weft_tgraph_destroy(g);
    weft_pool_destroy(pool);
}

/* y = x*x + exp(x): x is used three times (twice by one mul). Checked against the
 * analytic 2x + exp(x), against finite differences, and as a non-scalar loss (which is
 * differentiated as the sum of its elements). */
static void test_autodiff_value_used_three_times(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(2);
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    const int64_t R = 3, C = 4;
    weft_value x;
    OK(weft_tgraph_placeholder(g, WEFT_F64, 2, (int64_t[]){R, C}, "x", &x));
    weft_value sq, ex, y, loss;
    OK(weft_op_mul(g, x, x, &sq));
    OK(weft_op_exp(g, x, &ex));
    OK(weft_op_add(g, sq, ex, &y));
    OK(weft_op_sum(g, y, WEFT_AXIS_ALL, 0, &loss));
    weft_value gx, gy_x;
    OK(weft_tgraph_gradients(g, loss, 1, &x, &gx));
    OK(weft_tgraph_gradients(g, y, 1, &x, &gy_x)); /* non-scalar loss: sum of y */
    weft_tensor *tx = rand_tensor(WEFT_F64, 2, (int64_t[]){R, C}, 41, -1.0, 1.0);
    weft_feed feed = {x, tx};
    weft_value fetch[2] = {gx, gy_x};
    weft_plan *plan = make_plan(g, pool, 2, fetch);
    OK(weft_plan_run(plan, 1, &feed));
    const double *xv = weft_tensor_data_const(tx);
    for (int k = 0; k < 2; k++) {
        double *gv = fetch_copy(plan, (size_t)k, (size_t)(R * C));
        for (size_t i = 0; i < (size_t)(R * C); i++) {
            double want = 2 * xv[i] + exp(xv[i]);
            if (rel_err(gv[i], want) > 1e-12)
                print_error("grad %d [%zu]: %.17g, want %.17g\n", k, i, gv[i], want);
            assert_true(rel_err(gv[i], want) <= 1e-12);
        }
        free(gv);
    }
    weft_plan_destroy(plan);
    double worst = gradcheck(g, pool, loss, 1, &x, &gx, 1, &feed, "used three times");
    print_message("used three times: worst error %.3g\n", worst);
    weft_tensor_destroy(tx);
    weft_tgraph_destroy(g);
    weft_pool_destroy(pool);
}

/* ---- analytic checks --------------------------------------------------------------------- */

/* A value consumed by many nodes gets the sum of all contributions: x feeds K scales
 * (factors 1..K), each summed, the sums added: d loss / d x = K(K+1)/2 everywhere. And
 * v = x + x + x (one node with x twice, then again): d sum(v) / d x = 3. Exact in
 * float64 (small integers). */
static void test_autodiff_fan_out_sums_contributions(void **state)
{
    (void)state;
    enum { K = 12 };
    weft_pool *pool = tu_make_pool(4);
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    weft_value x, w;
    OK(weft_tgraph_placeholder(g, WEFT_F64, 2, (int64_t[]){5, 4}, "x", &x));
    w = add_variable(g, 2, (int64_t[]){5, 4}, 51, -1, 1, "w");
    weft_value total = {WEFT_VALUE_NONE_ID};
    for (int k = 0; k < K; k++) {
        weft_value s, r;
        OK(weft_op_scale(g, x, (double)(k + 1), &s));
        OK(weft_op_sum(g, s, WEFT_AXIS_ALL, 0, &r));
        if (k == 0)
            total = r;
        else
            OK(weft_op_add(g, total, r, &total));
    }
    weft_value xx, xxx, l3;
    OK(weft_op_add(g, w, w, &xx));
    OK(weft_op_add(g, xx, w, &xxx));
    OK(weft_op_sum(g, xxx, WEFT_AXIS_ALL, 0, &l3));
    weft_value gx, gw;
    OK(weft_tgraph_gradients(g, total, 1, &x, &gx));
    OK(weft_tgraph_gradients(g, l3, 1, &w, &gw));
    weft_tensor *tx = rand_tensor(WEFT_F64, 2, (int64_t[]){5, 4}, 52, -1, 1);
    weft_feed feed = {x, tx};
    weft_value fetch[2] = {gx, gw};
    weft_plan *plan = make_plan(g, pool, 2, fetch);
    OK(weft_plan_run(plan, 1, &feed));
    double *a = fetch_copy(plan, 0, 20), *b = fetch_copy(plan, 1, 20);
    for (size_t i = 0; i < 20; i++) {
        assert_true(a[i] == (double)(K * (K + 1) / 2));
        assert_true(b[i] == 3.0);
    }
    free(a);
    free(b);
    weft_plan_destroy(plan);
    weft_tensor_destroy(tx);
    weft_tgraph_destroy(g);
    weft_pool_destroy(pool);
}

/* A wrt value the loss does not depend on gets zeros shaped like it: an unused variable,
 * a placeholder on another path, and a value made after the loss. */
static void test_autodiff_unrelated_wrt_gets_zeros(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(2);
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    weft_value x, other;
    OK(weft_tgraph_placeholder(g, WEFT_F64, 2, (int64_t[]){3, 2}, "x", &x));
    OK(weft_tgraph_placeholder(g, WEFT_F64, 1, (int64_t[]){7}, "other", &other));
    weft_value unused = add_variable(g, 2, (int64_t[]){4, 5}, 61, -1, 1, "unused");
    weft_value side, t, loss, later;
    OK(weft_op_exp(g, other, &side)); /* a path that does not reach the loss */
    OK(weft_op_tanh(g, x, &t));
    OK(weft_op_sum(g, t, WEFT_AXIS_ALL, 0, &loss));
    OK(weft_op_exp(g, x, &later)); /* made after the loss */
    weft_value wrt[4] = {unused, other, later, x}, grads[4];
    OK(weft_tgraph_gradients(g, loss, 4, wrt, grads));
    for (size_t i = 0; i < 4; i++) {
        size_t nd_w, nd_g;
        int64_t dw[WEFT_MAX_DIMS], dg[WEFT_MAX_DIMS];
        OK(weft_tgraph_value_info(g, wrt[i], NULL, &nd_w, dw));
        OK(weft_tgraph_value_info(g, grads[i], NULL, &nd_g, dg));
        assert_int_equal(nd_g, nd_w);
        assert_memory_equal(dg, dw, nd_w * sizeof dw[0]);
    }
    weft_tensor *tx = rand_tensor(WEFT_F64, 2, (int64_t[]){3, 2}, 62, -1, 1);
    weft_tensor *to = rand_tensor(WEFT_F64, 1, (int64_t[]){7}, 63, -1, 1);
    weft_feed feeds[2] = {{x, tx}, {other, to}};
    weft_plan *plan = make_plan(g, pool, 4, grads);
    OK(weft_plan_run(plan, 2, feeds));
    size_t sizes[3] = {20, 7, 6};
    for (size_t k = 0; k < 3; k++) {
        double *z = fetch_copy(plan, k, sizes[k]);
        for (size_t i = 0; i < sizes[k]; i++)
            assert_true(z[i] == 0.0);
        free(z);
    }
    /* and the one that matters is 1 - tanh^2 */
    double *gx = fetch_copy(plan, 3, 6);
    const double *xv = weft_tensor_data_const(tx);
    for (size_t i = 0; i < 6; i++) {
        double th = tanh(xv[i]);
        assert_true(rel_err(gx[i], 1 - th * th) < 1e-12);
    }
    free(gx);
    weft_plan_destroy(plan);
    weft_tensor_destroy(tx);
    weft_tensor_destroy(to);
    weft_tgraph_destroy(g);
    weft_pool_destroy(pool);
}

/* ---- failures ------------------------------------------------------------------------- */

static void expect_invalid(weft_status s, const char *what, const char *must_contain)
{
    tu_expect_status(s, WEFT_ERR_INVALID_ARG, what);
    const char *msg = weft_last_error();
    if (!strstr(msg, must_contain))
        print_error("%s: message \"%s\" does not mention \"%s\"\n", what, msg, must_contain);
    assert_non_null(strstr(msg, must_contain));
}

static void test_autodiff_non_float_loss_fails_clearly(void **state)
{
    (void)state;
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    weft_value x, ids, am;
    OK(weft_tgraph_placeholder(g, WEFT_F64, 2, (int64_t[]){4, 3}, "x", &x));
    OK(weft_tgraph_placeholder(g, WEFT_I32, 1, (int64_t[]){4}, "ids", &ids));
    OK(weft_op_argmax(g, x, &am));
    weft_value gr = {7};
    expect_invalid(weft_tgraph_gradients(g, am, 1, &x, &gr), "gradients of an i32 loss",
                   "not a float");
    /* a float loss, but an integer wrt value */
    weft_value t, loss;
    OK(weft_op_tanh(g, x, &t));
    OK(weft_op_sum(g, t, WEFT_AXIS_ALL, 0, &loss));
    expect_invalid(weft_tgraph_gradients(g, loss, 1, &ids, &gr), "gradients wrt an i32 value",
                   "not a float");
    /* bad values */
    weft_value bogus = {100000};
    tu_expect_status(weft_tgraph_gradients(g, bogus, 1, &x, &gr), WEFT_ERR_INVALID_ARG,
                     "unknown loss");
    tu_expect_status(weft_tgraph_gradients(g, loss, 1, &bogus, &gr), WEFT_ERR_INVALID_ARG,
                     "unknown wrt");
    /* the graph is still fine for a good request */
    OK(weft_tgraph_gradients(g, loss, 1, &x, &gr));
    weft_tgraph_destroy(g);
}

/* x -> argmax -> ids of a gather -> loss. The loss depends on x only through argmax, which
 * is not differentiable: weft/tgraph.h promises WEFT_ERR_INVALID_ARG naming the op (not
 * a silent zero gradient). The table's gradient is fine. */
static void test_autodiff_gradient_through_argmax_fails(void **state)
{
    (void)state;
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    weft_value x, am, rows, loss;
    OK(weft_tgraph_placeholder(g, WEFT_F64, 2, (int64_t[]){4, 3}, "x", &x));
    weft_value table = add_variable(g, 2, (int64_t[]){3, 5}, 71, -1, 1, "table");
    OK(weft_op_argmax(g, x, &am));
    OK(weft_op_gather(g, table, am, &rows));
    OK(weft_op_sum(g, rows, WEFT_AXIS_ALL, 0, &loss));
    weft_value gt;
    OK(weft_tgraph_gradients(g, loss, 1, &table, &gt));
    weft_value gx = {0};
    weft_status s = weft_tgraph_gradients(g, loss, 1, &x, &gx);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", s ? weft_last_error() : "");
    if (s == WEFT_OK)
        print_error("gradient through argmax: returned OK (value %u, op %s) instead of "
                    "WEFT_ERR_INVALID_ARG naming argmax\n",
                    gx.id, weft_tgraph_value_op(g, gx));
    weft_tgraph_destroy(g); /* before asserting: a failure leaks nothing */
    assert_int_equal(s, WEFT_ERR_INVALID_ARG);
    if (!strstr(msg, "argmax"))
        print_error("gradient through argmax: message \"%s\" does not name argmax\n", msg);
    assert_non_null(strstr(msg, "argmax"));
}

/* ---- DOT export ------------------------------------------------------------------------ */

/* Lines that declare a node ("  n<id> [...") and contain `colour`. */
static size_t count_node_lines(const char *text, const char *colour)
{
    size_t n = 0;
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > 3 && strncmp(line, "  n", 3) == 0 && line[3] >= '0' && line[3] <= '9' &&
            !memmem(line, len, "->", 2) && memmem(line, len, colour, strlen(colour)))
            n++;
        line = end ? end + 1 : NULL;
    }
    return n;
}

static int path_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void test_autodiff_to_dot_colours_forward_and_backward(void **state)
{
    (void)state;
    weft_tgraph *g = NULL;
    OK(weft_tgraph_create(&g));
    weft_value x, h, s, loss;
    OK(weft_tgraph_placeholder(g, WEFT_F64, 2, (int64_t[]){WEFT_DIM_ANY, 3}, "x \"in\"", &x));
    weft_value w = add_variable(g, 2, (int64_t[]){3, 2}, 81, -1, 1, "w");
    OK(weft_op_matmul(g, x, w, 0, &h));
    OK(weft_op_tanh(g, h, &s));
    OK(weft_op_mean(g, s, WEFT_AXIS_ALL, 0, &loss));
    const size_t forward_ops = 3;
    size_t before = weft_tgraph_node_count(g);
    weft_value gw;
    OK(weft_tgraph_gradients(g, loss, 1, &w, &gw));
    size_t backward = weft_tgraph_node_count(g) - before;
    assert_true(backward > 0);

    char path[128];
    tu_temp_path(path, sizeof path, "dot");
    OK(weft_tgraph_to_dot(g, path));
    size_t len = 0;
    char *text = tu_read_file(path, &len);
    assert_non_null(text);
    assert_non_null(strstr(text, "digraph"));
    size_t nb = count_node_lines(text, "\"#f4a6a6\""), nf = count_node_lines(text, "\"#a6c8f4\"");
    if (nb != backward || nf != forward_ops)
        print_error("DOT: %zu backward-coloured nodes (want %zu), %zu forward-coloured (want "
                    "%zu)\n%s\n",
                    nb, backward, nf, forward_ops, text);
    assert_int_equal(nb, backward);
    assert_int_equal(nf, forward_ops);
    assert_non_null(strstr(text, "matmul"));
    assert_non_null(strstr(text, "[?,3]")); /* the open dimension */
    assert_non_null(strstr(text, "x \\\"in\\\"")); /* the name, escaped */
    free(text);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_false(path_exists(tmp));
    assert_int_equal(unlink(path), 0);

    /* a path in a missing directory: WEFT_ERR_IO, no file, no temporary file */
    char dir[128], bad[192], badtmp[200];
    tu_temp_path(dir, sizeof dir, "dotdir"); /* reserved name, removed: does not exist */
    snprintf(bad, sizeof bad, "%s/graph.dot", dir);
    snprintf(badtmp, sizeof badtmp, "%s.tmp", bad);
    weft_status st = weft_tgraph_to_dot(g, bad);
    tu_expect_status(st, WEFT_ERR_IO, "to_dot in a missing directory");
    assert_true(weft_last_error()[0] != '\0');
    assert_false(path_exists(bad));
    assert_false(path_exists(badtmp));
    assert_false(path_exists(dir));

    /* the rename fails (the target is a directory): the temporary file is removed */
    assert_int_equal(mkdir(dir, 0700), 0);
    char dirtmp[160];
    snprintf(dirtmp, sizeof dirtmp, "%s.tmp", dir);
    st = weft_tgraph_to_dot(g, dir);
    tu_expect_status(st, WEFT_ERR_IO, "to_dot onto a directory");
    assert_false(path_exists(dirtmp));
    assert_int_equal(rmdir(dir), 0);

    tu_expect_status(weft_tgraph_to_dot(g, NULL), WEFT_ERR_INVALID_ARG, "to_dot NULL path");
    weft_tgraph_destroy(g);
}

int main(void)
{
    tu_main_init(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_autodiff_mlp_matches_finite_differences),
        cmocka_unit_test(test_autodiff_two_branches_join_by_add_and_mul),
        cmocka_unit_test(test_autodiff_value_used_three_times),
        cmocka_unit_test(test_autodiff_fan_out_sums_contributions),
        cmocka_unit_test(test_autodiff_unrelated_wrt_gets_zeros),
        cmocka_unit_test(test_autodiff_non_float_loss_fails_clearly),
        cmocka_unit_test(test_autodiff_gradient_through_argmax_fails),
        cmocka_unit_test(test_autodiff_to_dot_colours_forward_and_backward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
