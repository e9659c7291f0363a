/* tests/graph/test_release.c - wide fan-outs (released in leaves of WF_RELEASE_LEAF
 * successors, as jobs thieves take whole) and single-predecessor tasks (no counter):
 * every task runs once, joins wait for all, failures skip exactly the dependents, and
 * the graph re-runs; in the default order and in the global-priority order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tests/util/tu_common.h"
#include "weft.h"

#define MAX_TASKS 20000

typedef struct fan {
    _Atomic unsigned runs[MAX_TASKS];
    _Atomic unsigned children_done; /* children finished, read by the sink */
    unsigned sink_saw;              /* children_done when the sink ran */
    int fail_task;                  /* id that returns 7, or -1 */
    size_t n;                       /* children */
} fan;

typedef struct task_arg {
    fan *f;
    unsigned id;
} task_arg;

static task_arg args[MAX_TASKS];

static int fan_task(void *p) {
    task_arg *a = p;
    atomic_fetch_add(&a->f->runs[a->id], 1);
    if ((int)a->id == a->f->fail_task) return 7;
    if (a->id >= 1 && a->id <= a->f->n) atomic_fetch_add(&a->f->children_done, 1);
    if (a->id == a->f->n + 1) a->f->sink_saw = atomic_load(&a->f->children_done);
    return 0;
}

/* source 0 -> children 1..n -> sink n+1 */
static weft_graph *build_fan(fan *f, size_t n) {
    weft_graph *g;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    f->n = n;
    for (unsigned v = 0; v < n + 2; v++) {
        args[v] = (task_arg){f, v};
        assert_int_equal(weft_graph_add_task(g, fan_task, &args[v], NULL, NULL), WEFT_OK);
    }
    for (unsigned v = 1; v <= n; v++) {
        assert_int_equal(weft_graph_add_edge(g, 0, v), WEFT_OK);
        assert_int_equal(weft_graph_add_edge(g, v, (weft_task_id)n + 1), WEFT_OK);
    }
    return g;
}

static void reset(fan *f, int fail) {
    for (size_t v = 0; v < MAX_TASKS; v++) atomic_store(&f->runs[v], 0);
    atomic_store(&f->children_done, 0);
    f->sink_saw = 0;
    f->fail_task = fail;
}

static weft_status run_in(weft_pool *pool, weft_graph *g, int global) {
    weft_run_options ro = {.global_priority = global};
    return weft_graph_run_ex(pool, g, &ro);
}

static void run_fan(unsigned threads, size_t n, int global) {
    static fan f;
    weft_pool_options o = weft_pool_options_default();
    o.threads = threads;
    weft_pool *pool;
    assert_int_equal(weft_pool_create(&o, &pool), WEFT_OK);
    weft_graph *g = build_fan(&f, n);
    for (int rep = 0; rep < 3; rep++) { /* all succeed, several runs of one graph */
        reset(&f, -1);
        assert_int_equal(run_in(pool, g, global), WEFT_OK);
        for (size_t v = 0; v < n + 2; v++) assert_int_equal(atomic_load(&f.runs[v]), 1);
        assert_int_equal(f.sink_saw, n);
    }
    /* the source fails: every child and the sink are skipped */
    reset(&f, 0);
    assert_int_equal(run_in(pool, g, global), WEFT_ERR_TASK_FAILED);
    for (size_t v = 1; v < n + 2; v++) assert_int_equal(atomic_load(&f.runs[v]), 0);
    assert_int_equal(weft_graph_last_skipped(g), n + 1);
    /* one child in the middle of a leaf fails: the others run, the sink is skipped */
    reset(&f, (int)(n / 2 + 3));
    assert_int_equal(run_in(pool, g, global), WEFT_ERR_TASK_FAILED);
    for (size_t v = 0; v <= n; v++) assert_int_equal(atomic_load(&f.runs[v]), 1);
    assert_int_equal(atomic_load(&f.runs[n + 1]), 0);
    assert_int_equal(weft_graph_last_skipped(g), 1);
    /* and the graph is whole again, in the other order too */
    reset(&f, -1);
    assert_int_equal(run_in(pool, g, !global), WEFT_OK);
    assert_int_equal(f.sink_saw, n);
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

static void test_release_wide_fanout_1_thread(void **state) {
    (void)state;
    run_fan(1, 1000, 0);
    run_fan(1, 1000, 1);
}

static void test_release_wide_fanout_2_threads(void **state) {
    (void)state;
    run_fan(2, MAX_TASKS - 2, 0);
    run_fan(2, MAX_TASKS - 2, 1);
}

static void test_release_wide_fanout_16_threads(void **state) {
    (void)state;
    for (int i = 0; i < TU_SCALE(20, 5); i++) run_fan(16, 129 + (size_t)i * 997 % 5000, i % 2);
}

/* A binary out-tree: every task but the root has one predecessor (no counter at all).
 * A failing inner task skips exactly its subtree. */
static _Atomic unsigned tree_runs[4095];
static int tree_fail = -1;

static int tree_task(void *p) {
    unsigned id = (unsigned)(uintptr_t)p;
    atomic_fetch_add(&tree_runs[id], 1);
    return (int)id == tree_fail ? 3 : 0;
}

static int in_subtree(unsigned v, unsigned root) {
    while (v > root) v = (v - 1) / 2;
    return v == root;
}

static void test_release_single_predecessor_tree(void **state) {
    (void)state;
    weft_pool_options o = weft_pool_options_default();
    o.threads = 7;
    weft_pool *pool;
    assert_int_equal(weft_pool_create(&o, &pool), WEFT_OK);
    weft_graph *g;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (unsigned v = 0; v < 4095; v++) {
        assert_int_equal(weft_graph_add_task(g, tree_task, (void *)(uintptr_t)v, NULL, NULL), WEFT_OK);
        if (v) assert_int_equal(weft_graph_add_edge(g, (v - 1) / 2, v), WEFT_OK);
    }
    for (int fail = -1; fail < 40; fail += 7) {
        tree_fail = fail;
        for (unsigned v = 0; v < 4095; v++) atomic_store(&tree_runs[v], 0);
        weft_status st = run_in(pool, g, fail % 2 != 0);
        assert_int_equal(st, fail < 0 ? WEFT_OK : WEFT_ERR_TASK_FAILED);
        size_t skipped = 0;
        for (unsigned v = 0; v < 4095; v++) {
            unsigned expect = fail >= 0 && v != (unsigned)fail && in_subtree(v, (unsigned)fail) ? 0 : 1;
            skipped += !expect;
            assert_int_equal(atomic_load(&tree_runs[v]), expect);
        }
        assert_int_equal(weft_graph_last_skipped(g), skipped);
    }
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

int main(void) {
    tu_main_init(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_release_wide_fanout_1_thread),
        cmocka_unit_test(test_release_wide_fanout_2_threads),
        cmocka_unit_test(test_release_wide_fanout_16_threads),
        cmocka_unit_test(test_release_single_predecessor_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
