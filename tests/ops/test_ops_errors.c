/* tests/ops/test_ops_errors.c - what the ops refuse, and how they say it.
 *
 * Shape errors at build time (WEFT_ERR_INVALID_ARG, nothing added to the graph, a message
 * with the op and the shapes), data errors at run time (WEFT_ERR_RANGE for ids out of
 * range, an open dimension fed with a bad size; the plan stays usable), and check mode
 * (WEFT_ERR_NUMERICS naming the op and the pass), inline and scheduled, f32 and f64.
 * The forward and backward checks of every op against references are tests/ops/test_ops.c.
 *
 * Failures are collected (tu_op_fail, tests/util/tu_opcases.h) and asserted at the end of
 * each test, so one run lists every wrong status or message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tests/util/tu_common.h"
#include "tests/util/tu_opcases.h"
#include "tests/util/tu_tensor.h"
#include "weft.h"

static weft_pool *pool;

/* ---- shape errors at build time ------------------------------------------------------- */

static weft_value mkval(weft_tgraph *g, weft_dtype dt, const char *shape)
{
    int nd, open;
    int64_t dims[WEFT_MAX_DIMS];
    assert_int_equal(tu_shape_parse(shape, &nd, dims, &open), 0);
    weft_tensor *t = NULL;
    weft_value v;
    assert_int_equal(weft_tensor_create(dt, (size_t)nd, dims, &t), WEFT_OK);
    if (dt == WEFT_I32) {
        assert_int_equal(weft_tgraph_constant(g, t, NULL, &v), WEFT_OK);
    } else {
        assert_int_equal(weft_tensor_fill(t, 0.5), WEFT_OK);
        assert_int_equal(weft_tgraph_variable(g, t, NULL, &v), WEFT_OK);
    }
    weft_tensor_destroy(t);
    return v;
}

/* The call must fail with WEFT_ERR_INVALID_ARG, add no node, and say every part. */
static void expect_bad(weft_tgraph *g, size_t n0, weft_status st, const char *call,
                       const char *const *parts)
{
    const char *msg = weft_last_error();
    size_t n1 = weft_tgraph_node_count(g);
    if (st != WEFT_ERR_INVALID_ARG)
        tu_op_fail(call, "returned %s (message \"%s\"), expected WEFT_ERR_INVALID_ARG",
                   weft_status_name(st), st ? msg : "");
    if (n1 != n0)
        tu_op_fail(call, "the graph went from %zu to %zu nodes", n0, n1);
    if (st == WEFT_OK)
        return;
    for (size_t i = 0; parts[i]; i++)
        if (!tu_op_contains(msg, parts[i]))
            tu_op_fail(call, "message \"%s\" does not mention \"%s\"", msg, parts[i]);
}

#define EXPECT_BAD(call, ...)                                                             \
    do {                                                                                  \
        size_t n0_ = weft_tgraph_node_count(g);                                           \
        weft_status st_ = (call);                                                         \
        expect_bad(g, n0_, st_, #call, (const char *const[]){__VA_ARGS__, NULL});         \
    } while (0)

static void test_ops_shape_errors(void **state)
{
    (void)state;
    tu_op_fail_reset();
    weft_tgraph *g = NULL;
    assert_int_equal(weft_tgraph_create(&g), WEFT_OK);
    const weft_dtype D = WEFT_F64;
    weft_value a43 = mkval(g, D, "4x3"), b52 = mkval(g, D, "5x2"), a34 = mkval(g, D, "3x4");
    weft_value a23 = mkval(g, D, "2x3"), a24 = mkval(g, D, "2x4"), a2x3x4 = mkval(g, D, "2x3x4");
    weft_value f23 = mkval(g, WEFT_F32, "2x3"), f34 = mkval(g, WEFT_F32, "3x4");
    weft_value a314 = mkval(g, D, "3x1x4"), a52 = b52, a3 = mkval(g, D, "3"), a4 = mkval(g, D, "4");
    weft_value a35 = mkval(g, D, "3x5"), a5 = mkval(g, D, "5"), s = mkval(g, D, "");
    weft_value i4 = mkval(g, WEFT_I32, "4"), i3 = mkval(g, WEFT_I32, "3"), i23 = mkval(g, WEFT_I32, "2x3");
    weft_value i3x4 = mkval(g, WEFT_I32, "3x4"), f3 = mkval(g, D, "3"), i0 = mkval(g, WEFT_I32, "");
    weft_value a53 = mkval(g, D, "5x3"), p43;
    int64_t pd[2] = {WEFT_DIM_ANY, 3};
    assert_int_equal(weft_tgraph_placeholder(g, D, 2, pd, "p", &p43), WEFT_OK);
    weft_value c43;
    {
        weft_tensor *t = NULL;
        int64_t d[2] = {4, 3};
        assert_int_equal(weft_tensor_create(D, 2, d, &t), WEFT_OK);
        assert_int_equal(weft_tgraph_constant(g, t, "c", &c43), WEFT_OK);
        weft_tensor_destroy(t);
    }
    weft_value out;

    /* matmul */
    EXPECT_BAD(weft_op_matmul(g, a43, b52, 0, &out), "matmul: inner dimensions differ: [4,3] @ [5,2]");
    EXPECT_BAD(weft_op_matmul(g, a34, b52, WEFT_TRANS_A, &out), "matmul", "[3,4]", "[5,2]");
    EXPECT_BAD(weft_op_matmul(g, a43, a34, WEFT_TRANS_B, &out), "matmul", "[4,3]", "[3,4]");
    EXPECT_BAD(weft_op_matmul(g, a2x3x4, a43, 0, &out), "matmul", "[2,3,4]");
    EXPECT_BAD(weft_op_matmul(g, a3, a35, 0, &out), "matmul", "[3]");
    EXPECT_BAD(weft_op_matmul(g, f34, a43, 0, &out), "matmul");
    EXPECT_BAD(weft_op_matmul(g, a43, a34, 4u, &out), "matmul");
    EXPECT_BAD(weft_op_matmul(g, i3x4, a43, 0, &out), "matmul");
    /* elementwise, broadcasting */
    EXPECT_BAD(weft_op_add(g, a23, a43, &out), "add", "[2,3]", "[4,3]");
    EXPECT_BAD(weft_op_sub(g, a314, a52, &out), "sub", "[3,1,4]", "[5,2]");
    EXPECT_BAD(weft_op_mul(g, a3, a4, &out), "mul", "[3]", "[4]");
    EXPECT_BAD(weft_op_div(g, a24, a23, &out), "div", "[2,4]", "[2,3]");
    EXPECT_BAD(weft_op_add(g, f23, a23, &out), "add");
    EXPECT_BAD(weft_op_mul(g, a23, f23, &out), "mul");
    EXPECT_BAD(weft_op_sub(g, i3, i3, &out), "sub");
    EXPECT_BAD(weft_op_div(g, a3, i3, &out), "div");
    /* unary on integers */
    EXPECT_BAD(weft_op_neg(g, i3, &out), "neg");
    EXPECT_BAD(weft_op_exp(g, i3, &out), "exp");
    EXPECT_BAD(weft_op_log(g, i3, &out), "log");
    EXPECT_BAD(weft_op_sqrt(g, i3, &out), "sqrt");
    EXPECT_BAD(weft_op_sigmoid(g, i3, &out), "sigmoid");
    EXPECT_BAD(weft_op_tanh(g, i3, &out), "tanh");
    EXPECT_BAD(weft_op_relu(g, i3, &out), "relu");
    EXPECT_BAD(weft_op_pow(g, i3, 2.0, &out), "pow");
    EXPECT_BAD(weft_op_scale(g, i3, 2.0, &out), "scale");
    /* reductions */
    EXPECT_BAD(weft_op_sum(g, a2x3x4, 3, 0, &out), "sum", "[2,3,4]");
    EXPECT_BAD(weft_op_mean(g, a2x3x4, -4, 1, &out), "mean", "[2,3,4]");
    EXPECT_BAD(weft_op_sum(g, s, 0, 0, &out), "sum");
    EXPECT_BAD(weft_op_mean(g, i3, WEFT_AXIS_ALL, 0, &out), "mean");
    EXPECT_BAD(weft_op_argmax(g, i3, &out), "argmax");
    EXPECT_BAD(weft_op_argmax(g, s, &out), "argmax");
    /* softmax family and losses */
    EXPECT_BAD(weft_op_softmax(g, i3, &out), "softmax");
    EXPECT_BAD(weft_op_log_softmax(g, i3, &out), "log_softmax");
    EXPECT_BAD(weft_op_softmax_xent(g, a35, i4, &out), "softmax_xent", "[3,5]", "[4]");
    EXPECT_BAD(weft_op_softmax_xent(g, a35, i23, &out), "softmax_xent", "[3,5]", "[2,3]");
    EXPECT_BAD(weft_op_softmax_xent(g, a35, f3, &out), "softmax_xent");
    EXPECT_BAD(weft_op_softmax_xent(g, a5, i0, &out), "softmax_xent", "[5]");
    EXPECT_BAD(weft_op_softmax_xent(g, i3x4, i3, &out), "softmax_xent");
    EXPECT_BAD(weft_op_mse(g, a34, a43, &out), "mse", "[3,4]", "[4,3]");
    EXPECT_BAD(weft_op_mse(g, f34, a34, &out), "mse");
    /* shape ops */
    EXPECT_BAD(weft_op_reshape(g, a34, 2, (const int64_t[]){5, 3}, &out), "reshape", "[3,4]");
    EXPECT_BAD(weft_op_reshape(g, a34, 2, (const int64_t[]){5, -1}, &out), "reshape", "[3,4]");
    EXPECT_BAD(weft_op_reshape(g, a34, 2, (const int64_t[]){-1, -1}, &out), "reshape");
    EXPECT_BAD(weft_op_reshape(g, a34, 2, (const int64_t[]){-2, -6}, &out), "reshape");
    EXPECT_BAD(weft_op_transpose(g, a2x3x4, (const int[]){0, 0, 1}, &out), "transpose");
    EXPECT_BAD(weft_op_transpose(g, a2x3x4, (const int[]){0, 1, 3}, &out), "transpose");
    EXPECT_BAD(weft_op_transpose(g, a2x3x4, (const int[]){-1, 0, 1}, &out), "transpose");
    EXPECT_BAD(weft_op_concat(g, 3, (const weft_value[]){a23, a24, a23}, 0, &out), "concat",
               "[2,3]", "[2,4]");
    EXPECT_BAD(weft_op_concat(g, 2, (const weft_value[]){a23, a3}, 0, &out), "concat");
    EXPECT_BAD(weft_op_concat(g, 2, (const weft_value[]){a23, a23}, 2, &out), "concat");
    EXPECT_BAD(weft_op_concat(g, 2, (const weft_value[]){a23, f23}, 0, &out), "concat");
    EXPECT_BAD(weft_op_concat(g, 0, (const weft_value[]){a23}, 0, &out), "concat");
    EXPECT_BAD(weft_op_slice(g, a34, 1, 2, 5, &out), "slice", "[3,4]");
    EXPECT_BAD(weft_op_slice(g, a34, 1, 3, 1, &out), "slice");
    EXPECT_BAD(weft_op_slice(g, a34, 2, 0, 1, &out), "slice");
    EXPECT_BAD(weft_op_slice(g, a34, 0, -1, 2, &out), "slice");
    EXPECT_BAD(weft_op_gather(g, a53, f3, &out), "gather");
    EXPECT_BAD(weft_op_gather(g, a5, i3, &out), "gather", "[5]");
    EXPECT_BAD(weft_op_gather(g, i3x4, i3, &out), "gather");
    /* updates */
    EXPECT_BAD(weft_op_assign(g, a34, a43, &out), "assign", "[3,4]", "[4,3]");
    EXPECT_BAD(weft_op_assign(g, c43, a43, &out), "assign", "variable");
    EXPECT_BAD(weft_op_assign_sub(g, f34, a34, &out), "assign_sub");
    EXPECT_BAD(weft_op_assign_sub(g, p43, a43, &out), "assign_sub", "variable");

    /* the graph is intact: a good op still builds and runs */
    weft_value ok;
    assert_int_equal(weft_op_matmul(g, a43, a34, 0, &ok), WEFT_OK);
    weft_plan *plan = NULL;
    weft_plan_options o = tu_op_plan_opts(0);
    assert_int_equal(weft_plan_create(g, pool, 1, &ok, 0, NULL, &o, &plan), WEFT_OK);
    assert_int_equal(weft_plan_run(plan, 0, NULL), WEFT_OK);
    const weft_tensor *t = NULL;
    assert_int_equal(weft_plan_fetch(plan, 0, &t), WEFT_OK);
    double v;
    assert_int_equal(weft_tensor_get(t, 0, &v), WEFT_OK);
    assert_true(fabs(v - 0.75) < 1e-15); /* 3 * 0.5 * 0.5 */
    weft_plan_destroy(plan);
    weft_tgraph_destroy(g);
    assert_int_equal(tu_op_failures(), 0);
}

/* ---- data errors at run time ---------------------------------------------------------- */

static weft_tensor *i32_tensor(size_t n, const int32_t *v)
{
    weft_tensor *t = NULL;
    int64_t d = (int64_t)n;
    assert_int_equal(weft_tensor_from_data(WEFT_I32, 1, &d, v, WEFT_COPY, &t), WEFT_OK);
    return t;
}

static void expect_run(weft_plan *plan, weft_value ph, const int32_t *ids, size_t n,
                       weft_status want, const char *op, const char *what)
{
    weft_tensor *t = i32_tensor(n, ids);
    weft_feed f = {.placeholder = ph, .tensor = t};
    weft_status st = weft_plan_run(plan, 1, &f);
    const char *msg = weft_last_error();
    if (st != want)
        tu_op_fail(what, "run returned %s (\"%s\"), expected %s", weft_status_name(st),
                   st ? msg : "", weft_status_name(want));
    else if (want != WEFT_OK && !tu_op_contains(msg, op))
        tu_op_fail(what, "message \"%s\" does not name %s", msg, op);
    weft_tensor_destroy(t);
}

static void test_ops_run_time_range_errors(void **state)
{
    (void)state;
    tu_op_fail_reset();
    for (int dt = 0; dt < 2; dt++) {
        weft_dtype dtype = dt ? WEFT_F32 : WEFT_F64;
        weft_tgraph *g = NULL;
        assert_int_equal(weft_tgraph_create(&g), WEFT_OK);
        weft_tensor *t = NULL;
        int64_t td[2] = {5, 3};
        assert_int_equal(weft_tensor_create(dtype, 2, td, &t), WEFT_OK);
        assert_int_equal(weft_tensor_init_random(t, WEFT_INIT_UNIFORM, 9, -1, 1), WEFT_OK);
        weft_value table, ids, rows, gloss, gtab, logits, labels, xent, gxent;
        assert_int_equal(weft_tgraph_variable(g, t, "table", &table), WEFT_OK);
        assert_int_equal(weft_tgraph_variable(g, t, "logits", &logits), WEFT_OK);
        weft_tensor_destroy(t);
        int64_t any = WEFT_DIM_ANY;
        assert_int_equal(weft_tgraph_placeholder(g, WEFT_I32, 1, &any, "ids", &ids), WEFT_OK);
        assert_int_equal(weft_tgraph_placeholder(g, WEFT_I32, 1, (const int64_t[]){5}, "labels",
                                                 &labels), WEFT_OK);
        assert_int_equal(weft_op_gather(g, table, ids, &rows), WEFT_OK);
        assert_int_equal(weft_op_sum(g, rows, WEFT_AXIS_ALL, 0, &gloss), WEFT_OK);
        assert_int_equal(weft_tgraph_gradients(g, gloss, 1, &table, &gtab), WEFT_OK);
        assert_int_equal(weft_op_softmax_xent(g, logits, labels, &xent), WEFT_OK);
        assert_int_equal(weft_tgraph_gradients(g, xent, 1, &logits, &gxent), WEFT_OK);

        for (int sched = 0; sched < 2; sched++) {
            weft_plan_options o = tu_op_plan_opts(sched);
            weft_plan *gp = NULL, *xp = NULL;
            assert_int_equal(weft_plan_create(g, pool, 2, (const weft_value[]){rows, gtab}, 0,
                                              NULL, &o, &gp), WEFT_OK);
            assert_int_equal(weft_plan_create(g, pool, 2, (const weft_value[]){xent, gxent}, 0,
                                              NULL, &o, &xp), WEFT_OK);
            char what[64];
            snprintf(what, sizeof what, "gather %s %s", weft_dtype_name(dtype),
                     sched ? "scheduled" : "inline");
            expect_run(gp, ids, (const int32_t[]){0, 5, 1, 2}, 4, WEFT_ERR_RANGE, "gather", what);
            expect_run(gp, ids, (const int32_t[]){-1, 0}, 2, WEFT_ERR_RANGE, "gather", what);
            expect_run(gp, ids, (const int32_t[]){4, 4, 0, 1, 4}, 5, WEFT_OK, "gather", what);
            /* the good run's results: rows of the table, and a count per row as gradient */
            const weft_tensor *ft = NULL;
            if (weft_plan_fetch(gp, 1, &ft) == WEFT_OK) {
                static const double count[5] = {1, 1, 0, 0, 3};
                for (size_t i = 0; i < 15; i++) {
                    double v = -1;
                    weft_tensor_get(ft, i, &v);
                    if (v != count[i / 3])
                        tu_op_fail(what, "gradient of table element %zu is %g, expected %g", i, v,
                                   count[i / 3]);
                }
            }
            snprintf(what, sizeof what, "softmax_xent %s %s", weft_dtype_name(dtype),
                     sched ? "scheduled" : "inline");
            expect_run(xp, labels, (const int32_t[]){0, 3, 1, 2, 0}, 5, WEFT_ERR_RANGE,
                       "softmax_xent", what);
            expect_run(xp, labels, (const int32_t[]){0, 1, -1, 2, 0}, 5, WEFT_ERR_RANGE,
                       "softmax_xent", what);
            expect_run(xp, labels, (const int32_t[]){0, 2, 1, 2, 0}, 5, WEFT_OK, "softmax_xent",
                       what);
            weft_plan_destroy(gp);
            weft_plan_destroy(xp);
        }
        weft_tgraph_destroy(g);
    }
    assert_int_equal(tu_op_failures(), 0);
}

/* An open dimension is checked when a plan runs: a bad feed fails the run, a good one
 * then works. */
static void test_ops_open_dimension_checked_at_run_time(void **state)
{
    (void)state;
    weft_tgraph *g = NULL;
    assert_int_equal(weft_tgraph_create(&g), WEFT_OK);
    weft_value p, c, y;
    int64_t pd[2] = {WEFT_DIM_ANY, 3}, cd[2] = {4, 3};
    assert_int_equal(weft_tgraph_placeholder(g, WEFT_F64, 2, pd, "p", &p), WEFT_OK);
    weft_tensor *ct = NULL, *bad = NULL, *good = NULL;
    assert_int_equal(weft_tensor_create(WEFT_F64, 2, cd, &ct), WEFT_OK);
    assert_int_equal(weft_tensor_fill(ct, 1.0), WEFT_OK);
    assert_int_equal(weft_tgraph_constant(g, ct, "c", &c), WEFT_OK);
    assert_int_equal(weft_op_add(g, p, c, &y), WEFT_OK);
    assert_int_equal(weft_tensor_create(WEFT_F64, 2, (const int64_t[]){5, 3}, &bad), WEFT_OK);
    assert_int_equal(weft_tensor_create(WEFT_F64, 2, cd, &good), WEFT_OK);
    assert_int_equal(weft_tensor_fill(good, 2.0), WEFT_OK);
    weft_plan *plan = NULL;
    weft_plan_options o = tu_op_plan_opts(0);
    assert_int_equal(weft_plan_create(g, pool, 1, &y, 0, NULL, &o, &plan), WEFT_OK);
    weft_feed f = {.placeholder = p, .tensor = bad};
    assert_int_equal(weft_plan_run(plan, 1, &f), WEFT_ERR_INVALID_ARG);
    assert_non_null(strstr(weft_last_error(), "add"));
    f.tensor = good;
    assert_int_equal(weft_plan_run(plan, 1, &f), WEFT_OK);
    const weft_tensor *t = NULL;
    double v = 0;
    assert_int_equal(weft_plan_fetch(plan, 0, &t), WEFT_OK);
    assert_int_equal(weft_tensor_numel(t), 12);
    assert_int_equal(weft_tensor_get(t, 11, &v), WEFT_OK);
    assert_true(v == 3.0);
    weft_plan_destroy(plan);
    weft_tensor_destroy(ct);
    weft_tensor_destroy(bad);
    weft_tensor_destroy(good);
    weft_tgraph_destroy(g);
}

/* ---- check mode ----------------------------------------------------------------------- */

static weft_tensor *float_tensor(weft_dtype dt, size_t n, const double *v)
{
    tu_ref r = {0};
    int64_t d = (int64_t)n;
    assert_int_equal(tu_ref_alloc(&r, 1, &d), 0);
    memcpy(r.v, v, n * sizeof *v);
    weft_tensor *t = tu_ref_to_tensor(&r, dt);
    assert_non_null(t);
    tu_ref_free(&r);
    return t;
}

static weft_status run_fed(weft_plan *plan, weft_value ph, weft_dtype dt, size_t n,
                           const double *v)
{
    weft_tensor *t = float_tensor(dt, n, v);
    weft_feed f = {.placeholder = ph, .tensor = t};
    weft_status st = weft_plan_run(plan, 1, &f);
    weft_tensor_destroy(t);
    return st;
}

static void test_ops_check_numerics_forward(void **state)
{
    (void)state;
    tu_op_fail_reset();
    for (int dt = 0; dt < 2; dt++) {
        weft_dtype dtype = dt ? WEFT_F32 : WEFT_F64;
        weft_tgraph *g = NULL;
        assert_int_equal(weft_tgraph_create(&g), WEFT_OK);
        weft_value x, y, z;
        assert_int_equal(weft_tgraph_placeholder(g, dtype, 1, (const int64_t[]){4}, "x", &x),
                         WEFT_OK);
        assert_int_equal(weft_op_log(g, x, &y), WEFT_OK);
        assert_int_equal(weft_op_scale(g, y, 2.0, &z), WEFT_OK);
        for (int sched = 0; sched < 2; sched++) {
            weft_plan_options o = tu_op_plan_opts(sched);
            o.check_numerics = 1;
            weft_plan *plan = NULL;
            assert_int_equal(weft_plan_create(g, pool, 1, &z, 0, NULL, &o, &plan), WEFT_OK);
            static const double zero[4] = {1, 0, 2, 3}, neg[4] = {1, 2, -1, 3}, ok[4] = {1, 2, 3, 4};
            const double *bad[2] = {zero, neg};
            for (int k = 0; k < 2; k++) {
                weft_status st = run_fed(plan, x, dtype, 4, bad[k]);
                const char *msg = weft_last_error();
                if (st != WEFT_ERR_NUMERICS || !tu_op_contains(msg, "log") ||
                    !tu_op_contains(msg, "forward") || tu_op_contains(msg, "scale"))
                    tu_op_fail(k ? "log of a negative" : "log of 0",
                               "%s %s: %s, \"%s\"; expected WEFT_ERR_NUMERICS naming log, forward",
                               weft_dtype_name(dtype), sched ? "scheduled" : "inline",
                               weft_status_name(st), st ? msg : "");
            }
            assert_int_equal(run_fed(plan, x, dtype, 4, ok), WEFT_OK);
            const weft_tensor *t = NULL;
            double v = 0;
            assert_int_equal(weft_plan_fetch(plan, 0, &t), WEFT_OK);
            assert_int_equal(weft_tensor_get(t, 3, &v), WEFT_OK);
            assert_true(fabs(v - 2.0 * log(4.0)) < 1e-6);
            weft_plan_destroy(plan);
        }
        /* without check mode the same feed runs and yields -inf */
        weft_plan_options o = tu_op_plan_opts(0);
        weft_plan *plan = NULL;
        assert_int_equal(weft_plan_create(g, pool, 1, &z, 0, NULL, &o, &plan), WEFT_OK);
        assert_int_equal(run_fed(plan, x, dtype, 4, (const double[]){1, 0, 2, 3}), WEFT_OK);
        const weft_tensor *t = NULL;
        double v = 0;
        assert_int_equal(weft_plan_fetch(plan, 0, &t), WEFT_OK);
        assert_int_equal(weft_tensor_get(t, 1, &v), WEFT_OK);
        assert_true(isinf(v) && v < 0);
        weft_plan_destroy(plan);
        weft_tgraph_destroy(g);
    }
    assert_int_equal(tu_op_failures(), 0);
}

/* sqrt at 0 is finite forward, but its derivative is not: with R = 0 there the backward
 * makes 0 * inf (or 0 / 0), a NaN that first appears in a backward node. */
static void test_ops_check_numerics_backward(void **state)
{
    (void)state;
    tu_op_fail_reset();
    for (int dt = 0; dt < 2; dt++) {
        weft_dtype dtype = dt ? WEFT_F32 : WEFT_F64;
        weft_tgraph *g = NULL;
        assert_int_equal(weft_tgraph_create(&g), WEFT_OK);
        weft_value x, s, rv, prod, loss, grad;
        assert_int_equal(weft_tgraph_placeholder(g, dtype, 1, (const int64_t[]){3}, "x", &x),
                         WEFT_OK);
        weft_tensor *rt = float_tensor(dtype, 3, (const double[]){0, 1, -1});
        assert_int_equal(weft_tgraph_constant(g, rt, "R", &rv), WEFT_OK);
        weft_tensor_destroy(rt);
        assert_int_equal(weft_op_sqrt(g, x, &s), WEFT_OK);
        assert_int_equal(weft_op_mul(g, s, rv, &prod), WEFT_OK);
        assert_int_equal(weft_op_sum(g, prod, WEFT_AXIS_ALL, 0, &loss), WEFT_OK);
        assert_int_equal(weft_tgraph_gradients(g, loss, 1, &x, &grad), WEFT_OK);
        for (int sched = 0; sched < 2; sched++) {
            weft_plan_options o = tu_op_plan_opts(sched);
            o.check_numerics = 1;
            weft_plan *plan = NULL;
            assert_int_equal(weft_plan_create(g, pool, 2, (const weft_value[]){loss, grad}, 0,
                                              NULL, &o, &plan), WEFT_OK);
            weft_status st = run_fed(plan, x, dtype, 3, (const double[]){0, 1, 4});
            const char *msg = weft_last_error();
            if (st != WEFT_ERR_NUMERICS || !tu_op_contains(msg, "backward") ||
                tu_op_contains(msg, "forward"))
                tu_op_fail("sqrt'(0) in backward", "%s %s: %s, \"%s\"; expected WEFT_ERR_NUMERICS "
                           "naming the backward pass", weft_dtype_name(dtype),
                           sched ? "scheduled" : "inline", weft_status_name(st), st ? msg : "");
            /* good data runs: d/dx sum(sqrt(x) * R) = R / (2 sqrt(x)) */
            assert_int_equal(run_fed(plan, x, dtype, 3, (const double[]){1, 1, 4}), WEFT_OK);
            const weft_tensor *t = NULL;
            double v[3] = {0};
            assert_int_equal(weft_plan_fetch(plan, 1, &t), WEFT_OK);
            for (size_t i = 0; i < 3; i++)
                assert_int_equal(weft_tensor_get(t, i, &v[i]), WEFT_OK);
            assert_true(fabs(v[0]) < 1e-6 && fabs(v[1] - 0.5) < 1e-6 && fabs(v[2] + 0.25) < 1e-6);
            weft_plan_destroy(plan);
        }
        weft_tgraph_destroy(g);
    }
    assert_int_equal(tu_op_failures(), 0);
}

/* ---- main ----------------------------------------------------------------------------- */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_shape_errors),
        cmocka_unit_test(test_ops_run_time_range_errors),
        cmocka_unit_test(test_ops_open_dimension_checked_at_run_time),
        cmocka_unit_test(test_ops_check_numerics_forward),
        cmocka_unit_test(test_ops_check_numerics_backward),
    };
    return tu_op_run_tests(tests, &pool);
}
