/* tests/graph/test_analyze.c - the analyzer's report: levels, sources, width, work, span,
 * parallelism, per-task levels and successor lists, re-analysis after a change, and the
 * measured work and span of a run made with measure = 1.
 *
 * Expected figures are derived by hand for small graphs (chain, diamond, fan-out, a
 * reversed chain whose edges go from higher to lower ids) with cost hints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>

#include "tests/util/tu_common.h"
#include "weft.h"

/* cmocka 1.1 has no double comparison. */
#define assert_near(a, b, eps)                                                            \
    do {                                                                                  \
        double a_ = (a), b_ = (b);                                                        \
        if (!(fabs(a_ - b_) <= (eps)))                                                    \
            print_error("%s = %.17g, expected %.17g\n", #a, a_, b_);                      \
        assert_true(fabs(a_ - b_) <= (eps));                                              \
    } while (0)

static int nop(void *arg)
{
    (void)arg;
    return 0;
}

static weft_graph *graph_with(size_t n)
{
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (size_t i = 0; i < n; i++) {
        weft_task_id id = WEFT_TASK_NONE;
        assert_int_equal(weft_graph_add_task(g, nop, NULL, "t", &id), WEFT_OK);
        assert_int_equal(id, i);
    }
    assert_int_equal(weft_graph_task_count(g), n);
    return g;
}

static void edge(weft_graph *g, weft_task_id a, weft_task_id b)
{
    assert_int_equal(weft_graph_add_edge(g, a, b), WEFT_OK);
}

static size_t level_of(weft_graph *g, weft_task_id t)
{
    size_t l = 999;
    assert_int_equal(weft_graph_task_level(g, t, &l), WEFT_OK);
    return l;
}

static void test_analyze_empty_graph(void **state)
{
    (void)state;
    weft_graph *g = graph_with(0);
    weft_graph_stats st;
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    assert_int_equal(st.tasks, 0);
    assert_int_equal(st.edges, 0);
    assert_int_equal(st.sources, 0);
    assert_int_equal(st.levels, 0);
    assert_int_equal(st.max_width, 0);
    assert_true(st.work == 0.0 && st.span == 0.0 && st.parallelism == 0.0);
    assert_int_equal(weft_graph_analyze(g, NULL), WEFT_OK);
    weft_graph_destroy(g);
}

static void test_analyze_chain_with_costs(void **state)
{
    (void)state;
    weft_graph *g = graph_with(5);
    for (weft_task_id t = 0; t < 5; t++) {
        assert_int_equal(weft_graph_set_cost(g, t, (double)(t + 1)), WEFT_OK);
        if (t)
            edge(g, t - 1, t);
    }
    weft_graph_stats st;
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    assert_int_equal(st.tasks, 5);
    assert_int_equal(st.edges, 4);
    assert_int_equal(st.sources, 1);
    assert_int_equal(st.levels, 5);
    assert_int_equal(st.max_width, 1);
    assert_near(st.work, 15.0, 1e-12);
    assert_near(st.span, 15.0, 1e-12);
    assert_near(st.parallelism, 1.0, 1e-12);
    for (weft_task_id t = 0; t < 5; t++)
        assert_int_equal(level_of(g, t), t);
    weft_graph_destroy(g);
}

/* 0 -> {1, 2} -> 3 with costs 1, 5, 2, 1: span through 1. */
static void test_analyze_diamond_with_costs(void **state)
{
    (void)state;
    weft_graph *g = graph_with(4);
    const double cost[4] = {1, 5, 2, 1};
    for (weft_task_id t = 0; t < 4; t++)
        assert_int_equal(weft_graph_set_cost(g, t, cost[t]), WEFT_OK);
    edge(g, 0, 1);
    edge(g, 0, 2);
    edge(g, 1, 3);
    edge(g, 2, 3);
    weft_graph_stats st;
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    assert_int_equal(st.edges, 4);
    assert_int_equal(st.sources, 1);
    assert_int_equal(st.levels, 3);
    assert_int_equal(st.max_width, 2);
    assert_near(st.work, 9.0, 1e-12);
    assert_near(st.span, 7.0, 1e-12);
    assert_near(st.parallelism, 9.0 / 7.0, 1e-12);
    assert_int_equal(level_of(g, 3), 2);
    /* a heavier short branch moves the span */
    assert_int_equal(weft_graph_set_cost(g, 2, 10.0), WEFT_OK);
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    assert_near(st.span, 12.0, 1e-12);
    assert_near(st.work, 17.0, 1e-12);
    weft_graph_destroy(g);
}

static void test_analyze_fanout_default_costs(void **state)
{
    (void)state;
    enum { LEAVES = 100 };
    weft_graph *g = graph_with(LEAVES + 1);
    /* edges added in a scrambled order, with duplicates */
    for (weft_task_id k = 0; k < LEAVES; k++) {
        weft_task_id leaf = 1 + (k * 37) % LEAVES;
        edge(g, 0, leaf);
        if (k % 10 == 0)
            edge(g, 0, leaf);
    }
    weft_graph_stats st;
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    assert_int_equal(st.edges, LEAVES);
    assert_int_equal(st.sources, 1);
    assert_int_equal(st.levels, 2);
    assert_int_equal(st.max_width, LEAVES);
    assert_near(st.work, LEAVES + 1.0, 1e-9);
    assert_near(st.span, 2.0, 1e-12);
    assert_near(st.parallelism, (LEAVES + 1.0) / 2.0, 1e-9);
    const weft_task_id *s = NULL;
    size_t count = 0;
    assert_int_equal(weft_graph_successors(g, 0, &s, &count), WEFT_OK);
    assert_int_equal(count, LEAVES);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(s[i], i + 1); /* sorted ascending, each once */
    assert_int_equal(weft_graph_successors(g, 5, &s, &count), WEFT_OK);
    assert_int_equal(count, 0);
    weft_graph_destroy(g);
}

/* Edges against id order: 3 -> 2 -> 1 -> 0, plus an independent task 4. */
static void test_analyze_edges_against_id_order(void **state)
{
    (void)state;
    weft_graph *g = graph_with(5);
    edge(g, 3, 2);
    edge(g, 2, 1);
    edge(g, 1, 0);
    assert_int_equal(weft_graph_set_cost(g, 4, 0.0), WEFT_OK);
    weft_graph_stats st;
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    assert_int_equal(st.levels, 4);
    assert_int_equal(st.sources, 2);
    assert_int_equal(st.max_width, 2);
    assert_near(st.work, 4.0, 1e-12);
    assert_near(st.span, 4.0, 1e-12);
    assert_int_equal(level_of(g, 3), 0);
    assert_int_equal(level_of(g, 0), 3);
    assert_int_equal(level_of(g, 4), 0);
    weft_graph_destroy(g);
}

static void test_analyze_again_after_a_change(void **state)
{
    (void)state;
    weft_graph *g = graph_with(2);
    edge(g, 0, 1);
    weft_graph_stats st;
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    assert_int_equal(st.levels, 2);
    weft_task_id t = 0;
    assert_int_equal(weft_graph_add_task(g, nop, NULL, NULL, &t), WEFT_OK);
    assert_int_equal(t, 2);
    edge(g, 1, 2);
    edge(g, 0, 2);
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    assert_int_equal(st.tasks, 3);
    assert_int_equal(st.edges, 3);
    assert_int_equal(st.levels, 3);
    assert_int_equal(level_of(g, 2), 2);
    const weft_task_id *s = NULL;
    size_t count = 0;
    assert_int_equal(weft_graph_successors(g, 0, &s, &count), WEFT_OK);
    assert_int_equal(count, 2);
    assert_int_equal(s[0], 1);
    assert_int_equal(s[1], 2);
    /* a data access added later changes the graph too */
    int v;
    assert_int_equal(weft_graph_access(g, 2, WEFT_WRITE, &v, sizeof v), WEFT_OK);
    assert_int_equal(weft_graph_add_task(g, nop, NULL, NULL, &t), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 3, WEFT_READ, &v, sizeof v), WEFT_OK);
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    assert_int_equal(st.edges, 4);
    assert_int_equal(st.levels, 4);
    weft_graph_destroy(g);
}

/* ---- measured work and span --------------------------------------------------------- */

static int busy_2ms(void *arg)
{
    (void)arg;
    uint64_t end = tu_now_ns() + 2000000ull;
    while (tu_now_ns() < end) {
    }
    return 0;
}

static void test_analyze_measured_work_and_span(void **state)
{
    (void)state;
    weft_pool_options o = weft_pool_options_default();
    o.threads = 2;
    weft_pool *pool = NULL;
    assert_int_equal(weft_pool_create(&o, &pool), WEFT_OK);
    /* 0 -> 1 -> 2 chain, and 3, 4 independent: work ~10 ms, span ~6 ms */
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(weft_graph_add_task(g, busy_2ms, NULL, "busy", NULL), WEFT_OK);
    edge(g, 0, 1);
    edge(g, 1, 2);
    weft_graph_stats st;
    assert_int_equal(weft_graph_run(pool, g), WEFT_OK); /* not measured */
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    assert_true(st.measured_work_s == 0.0 && st.measured_span_s == 0.0);
    weft_run_options ro = {.measure = 1};
    assert_int_equal(weft_graph_run_ex(pool, g, &ro), WEFT_OK);
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    print_message("measured work %.6f s, span %.6f s\n", st.measured_work_s,
                  st.measured_span_s);
    assert_true(st.measured_work_s >= 5 * 0.002 * 0.95);
    assert_true(st.measured_work_s < 5.0);
    assert_true(st.measured_span_s >= 3 * 0.002 * 0.95);
    assert_true(st.measured_span_s < st.measured_work_s);
    assert_true(isfinite(st.measured_work_s) && isfinite(st.measured_span_s));
    /* the cost-hint figures are unchanged by measuring */
    assert_near(st.work, 5.0, 1e-12);
    assert_near(st.span, 3.0, 1e-12);
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

int main(void)
{
    tu_main_init(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_analyze_empty_graph),
        cmocka_unit_test(test_analyze_chain_with_costs),
        cmocka_unit_test(test_analyze_diamond_with_costs),
        cmocka_unit_test(test_analyze_fanout_default_costs),
        cmocka_unit_test(test_analyze_edges_against_id_order),
        cmocka_unit_test(test_analyze_again_after_a_change),
        cmocka_unit_test(test_analyze_measured_work_and_span),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
