/* tests/engine/test_dyn_cache.c - the plan cache of dynamic graphs: a structure seen
 * before reuses its plan (with this iteration's data), results equal those of a context
 * without the cache bit for bit, values of an iteration stay valid while the cache
 * evicts, and a change of shape or attribute is a different structure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tests/util/tu_common.h"
#include "weft.h"

#define OK(call) assert_int_equal((call), WEFT_OK)

/* One iteration: loss = sum(tanh(x @ w) * s) for x [rows, 8] filled with `fill`; adds the
 * gradient into gw. Returns the loss and a view of tanh(x @ w) in *h. */
static double step(weft_dyn *d, weft_tensor *w, weft_tensor *gw, int64_t rows, double fill,
                   double s, const weft_tensor **h)
{
    weft_tgraph *g = NULL;
    OK(weft_dyn_begin(d, &g));
    int64_t xd[2] = {rows, 8};
    weft_tensor *x = NULL;
    OK(weft_tensor_create(WEFT_F64, 2, xd, &x));
    double *xp = weft_tensor_data(x);
    for (int64_t i = 0; i < rows * 8; i++) xp[i] = fill * (double)((i % 7) - 3) / 7.0;
    weft_value xv, wv, a, l;
    OK(weft_dyn_input(d, x, &xv));
    OK(weft_dyn_param(d, w, gw, &wv));
    OK(weft_op_matmul(g, xv, wv, 0, &a));
    OK(weft_op_tanh(g, a, &a));
    weft_value hv = a;
    OK(weft_op_scale(g, a, s, &a));
    OK(weft_op_sum(g, a, WEFT_AXIS_ALL, 0, &l));
    double loss = 0;
    OK(weft_dyn_scalar(d, l, &loss)); /* an evaluation of the forward part */
    OK(weft_dyn_backward(d, l));      /* and one of the backward part */
    OK(weft_dyn_read(d, hv, h));
    weft_tensor_destroy(x); /* read before: the iteration no longer needs its input */
    return loss;
}

static void make_params(weft_tensor **w, weft_tensor **gw)
{
    int64_t wd[2] = {8, 5};
    OK(weft_tensor_create(WEFT_F64, 2, wd, w));
    OK(weft_tensor_init_random(*w, WEFT_INIT_UNIFORM, 7, -1, 1));
    OK(weft_tensor_create(WEFT_F64, 2, wd, gw));
}

/* Cached and uncached contexts give the same losses, values and gradients, bit for bit,
 * over iterations that repeat two structures (rows 3 and 6) with new data; the cache
 * reports hits. */
static void test_dyn_cache_hits_equal_fresh_compilation(void **state)
{
    (void)state;
    weft_pool *pool = NULL;
    weft_pool_options po = weft_pool_options_default();
    po.threads = 4;
    OK(weft_pool_create(&po, &pool));
    weft_dyn *cached = NULL, *fresh = NULL;
    OK(weft_dyn_create(pool, NULL, &cached));
    OK(weft_dyn_create(pool, NULL, &fresh));
    OK(weft_dyn_set_cache(fresh, 0));
    weft_tensor *w1, *g1, *w2, *g2;
    make_params(&w1, &g1);
    make_params(&w2, &g2);
    for (int it = 0; it < 12; it++) {
        int64_t rows = it % 2 ? 6 : 3;
        double fill = 1.0 + 0.25 * it;
        const weft_tensor *h1, *h2;
        double l1 = step(cached, w1, g1, rows, fill, 0.5, &h1);
        double l2 = step(fresh, w2, g2, rows, fill, 0.5, &h2);
        assert_memory_equal(&l1, &l2, sizeof l1);
        assert_int_equal(weft_tensor_numel(h1), (size_t)rows * 5);
        assert_memory_equal(weft_tensor_data_const(h1), weft_tensor_data_const(h2),
                            weft_tensor_numel(h1) * sizeof(double));
        assert_memory_equal(weft_tensor_data_const(g1), weft_tensor_data_const(g2),
                            40 * sizeof(double));
    }
    weft_dyn_stats st;
    OK(weft_dyn_stats_get(cached, &st));
    /* two structures x two evaluations compiled once each; the other 20 evaluations hit */
    assert_int_equal(st.cached_plans, 4);
    assert_int_equal(st.cache_hits, 20);
    OK(weft_dyn_stats_get(fresh, &st));
    assert_int_equal(st.cache_hits, 0);
    weft_dyn_destroy(cached);
    weft_dyn_destroy(fresh);
    weft_tensor_destroy(w1), weft_tensor_destroy(g1), weft_tensor_destroy(w2), weft_tensor_destroy(g2);
    weft_pool_destroy(pool);
}

/* A different attribute (the scale) is a different structure: no stale hit. */
static void test_dyn_cache_attribute_change_is_a_miss(void **state)
{
    (void)state;
    weft_pool *pool = NULL;
    OK(weft_pool_create(NULL, &pool));
    weft_dyn *d = NULL;
    OK(weft_dyn_create(pool, NULL, &d));
    weft_tensor *w, *gw;
    make_params(&w, &gw);
    const weft_tensor *h;
    double a = step(d, w, gw, 4, 1.0, 0.5, &h);
    double b = step(d, w, gw, 4, 1.0, 2.0, &h);
    assert_true(b == 4 * a || (a == 0 && b == 0));
    weft_dyn_stats st;
    OK(weft_dyn_stats_get(d, &st));
    assert_int_equal(st.cache_hits, 0);
    weft_dyn_destroy(d);
    weft_tensor_destroy(w), weft_tensor_destroy(gw);
    weft_pool_destroy(pool);
}

/* With room for one plan, the second evaluation of an iteration cannot evict the first
 * (its values are still readable): the read view of the forward value stays intact. */
static void test_dyn_cache_never_evicts_a_plan_of_the_current_iteration(void **state)
{
    (void)state;
    weft_pool *pool = NULL;
    OK(weft_pool_create(NULL, &pool));
    weft_dyn *d = NULL, *ref = NULL;
    OK(weft_dyn_create(pool, NULL, &d));
    OK(weft_dyn_create(pool, NULL, &ref));
    OK(weft_dyn_set_cache(d, 1));
    OK(weft_dyn_set_cache(ref, 0));
    weft_tensor *w, *gw, *w2, *gw2;
    make_params(&w, &gw);
    make_params(&w2, &gw2);
    for (int it = 0; it < 6; it++) {
        const weft_tensor *h, *h2;
        double l = step(d, w, gw, 2 + it % 3, 1.0 + it, 1.5, &h);
        double l2 = step(ref, w2, gw2, 2 + it % 3, 1.0 + it, 1.5, &h2);
        assert_memory_equal(&l, &l2, sizeof l);
        assert_memory_equal(weft_tensor_data_const(h), weft_tensor_data_const(h2),
                            weft_tensor_numel(h) * sizeof(double));
    }
    weft_dyn_destroy(d);
    weft_dyn_destroy(ref);
    weft_tensor_destroy(w), weft_tensor_destroy(gw), weft_tensor_destroy(w2), weft_tensor_destroy(gw2);
    weft_pool_destroy(pool);
}

/* A parameter used by three matmuls: autodiff fuses the weight-gradient products into
 * matmul_acc, and the replaced products are not computed in a dynamic graph (reading one
 * is refused); the gradient equals a static plan's bit for bit. */
static void test_dyn_cache_fused_products_are_not_computed(void **state)
{
    (void)state;
    weft_pool *pool = NULL;
    OK(weft_pool_create(NULL, &pool));
    weft_dyn *d = NULL;
    OK(weft_dyn_create(pool, NULL, &d));
    weft_tensor *w, *gw;
    make_params(&w, &gw);
    int64_t xd[2] = {3, 8};
    weft_tensor *x = NULL;
    OK(weft_tensor_create(WEFT_F64, 2, xd, &x));
    OK(weft_tensor_init_random(x, WEFT_INIT_UNIFORM, 3, -1, 1));
    /* dynamic: s = sum over k of sum(tanh(slice(x, k) @ w)) */
    weft_tgraph *g = NULL;
    OK(weft_dyn_begin(d, &g));
    weft_value xv, wv, acc = {0}, l;
    OK(weft_dyn_input(d, x, &xv));
    OK(weft_dyn_param(d, w, gw, &wv));
    for (int k = 0; k < 3; k++) {
        weft_value r, a;
        OK(weft_op_slice(g, xv, 0, k, k + 1, &r));
        OK(weft_op_matmul(g, r, wv, 0, &a));
        OK(weft_op_tanh(g, a, &a));
        if (k) OK(weft_op_add(g, acc, a, &acc));
        else acc = a;
    }
    OK(weft_op_sum(g, acc, WEFT_AXIS_ALL, 0, &l));
    size_t before = weft_tgraph_node_count(g);
    OK(weft_dyn_backward(d, l));
    size_t refused = 0, fused = 0;
    for (size_t v = before; v < weft_tgraph_node_count(g); v++) {
        weft_value val = {(uint32_t)v};
        const char *op = weft_tgraph_value_op(g, val);
        fused += strcmp(op, "matmul_acc") == 0;
        const weft_tensor *t;
        if (strcmp(op, "matmul") == 0 && weft_dyn_read(d, val, &t) == WEFT_ERR_INVALID_ARG) {
            assert_non_null(strstr(weft_last_error(), "fused"));
            refused++;
        }
    }
    assert_int_equal(fused, 2);
    assert_int_equal(refused, 2);
    /* static: the same graph as a plan fetching the gradient */
    weft_tgraph *sg = NULL;
    OK(weft_tgraph_create(&sg));
    weft_value sx, sw, sacc = {0}, sl, grad;
    OK(weft_tgraph_constant(sg, x, "x", &sx));
    OK(weft_tgraph_variable(sg, w, "w", &sw));
    for (int k = 0; k < 3; k++) {
        weft_value r, a;
        OK(weft_op_slice(sg, sx, 0, k, k + 1, &r));
        OK(weft_op_matmul(sg, r, sw, 0, &a));
        OK(weft_op_tanh(sg, a, &a));
        if (k) OK(weft_op_add(sg, sacc, a, &sacc));
        else sacc = a;
    }
    OK(weft_op_sum(sg, sacc, WEFT_AXIS_ALL, 0, &sl));
    OK(weft_tgraph_gradients(sg, sl, 1, &sw, &grad));
    weft_plan *plan = NULL;
    OK(weft_plan_create(sg, pool, 1, &grad, 0, NULL, NULL, &plan));
    OK(weft_plan_run(plan, 0, NULL));
    const weft_tensor *sgrad;
    OK(weft_plan_fetch(plan, 0, &sgrad));
    assert_memory_equal(weft_tensor_data_const(sgrad), weft_tensor_data_const(gw), 40 * sizeof(double));
    weft_plan_destroy(plan);
    weft_tgraph_destroy(sg);
    weft_dyn_destroy(d);
    weft_tensor_destroy(x), weft_tensor_destroy(w), weft_tensor_destroy(gw);
    weft_pool_destroy(pool);
}

int main(void)
{
    tu_main_init(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dyn_cache_hits_equal_fresh_compilation),
        cmocka_unit_test(test_dyn_cache_attribute_change_is_a_miss),
        cmocka_unit_test(test_dyn_cache_never_evicts_a_plan_of_the_current_iteration),
        cmocka_unit_test(test_dyn_cache_fused_products_are_not_computed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
