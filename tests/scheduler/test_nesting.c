/* tests/scheduler/test_nesting.c - calls that cross pools: a task of pool A that calls
 * into pool B, which calls back into A, and two outside threads whose tasks call into
 * each other's pool. None may deadlock (the watchdog turns a hang into a failure), and
 * every chunk and task runs exactly once. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/util/tu_common.h"
#include "weft.h"

static weft_pool *pool_a, *pool_b;
static _Atomic unsigned inner_chunks;

static int inner(void *arg, size_t b, size_t e) {
    (void)arg;
    atomic_fetch_add(&inner_chunks, (unsigned)(e - b));
    return 0;
}

static int via_a(void *arg, size_t b, size_t e) {
    (void)arg;
    (void)b;
    (void)e;
    return weft_parallel_for(pool_a, 8, 1, inner, NULL) != WEFT_OK;
}

static int via_b(void *arg, size_t b, size_t e) {
    (void)arg;
    (void)b;
    (void)e;
    return weft_parallel_for(pool_b, 4, 1, via_a, NULL) != WEFT_OK;
}

static void make_pools(unsigned threads) {
    weft_pool_options o = weft_pool_options_default();
    o.threads = threads;
    assert_int_equal(weft_pool_create(&o, &pool_a), WEFT_OK);
    assert_int_equal(weft_pool_create(&o, &pool_b), WEFT_OK);
}

static void free_pools(void) {
    weft_pool_destroy(pool_a);
    weft_pool_destroy(pool_b);
}

/* A -> B -> A from one outside thread: the thread keeps its A slot inside B. */
static void test_nesting_a_b_a(void **state) {
    (void)state;
    for (unsigned threads = 1; threads <= 4; threads += 3) {
        make_pools(threads);
        atomic_store(&inner_chunks, 0);
        assert_int_equal(weft_parallel_for(pool_a, 3, 1, via_b, NULL), WEFT_OK);
        assert_int_equal(atomic_load(&inner_chunks), 3 * 4 * 8);
        free_pools();
    }
}

/* Two outside threads: one runs a graph on A whose tasks use B, the other a graph on B
 * whose tasks use A. Each may hold one pool's slot 0 while wanting the other's. */
static _Atomic unsigned graph_tasks;

static int task_into(void *arg) {
    weft_pool *other = arg;
    atomic_fetch_add(&graph_tasks, 1);
    return weft_parallel_for(other, 16, 2, inner, NULL) != WEFT_OK;
}

typedef struct cross {
    weft_pool *mine, *other;
    weft_status st;
} cross;

static void *cross_thread(void *p) {
    cross *c = p;
    weft_graph *g;
    c->st = weft_graph_create(&g);
    for (int i = 0; i < 20 && c->st == WEFT_OK; i++)
        c->st = weft_graph_add_task(g, task_into, c->other, "cross", NULL);
    for (int rep = 0; rep < TU_SCALE(50, 10) && c->st == WEFT_OK; rep++)
        c->st = weft_graph_run(c->mine, g);
    weft_graph_destroy(g);
    return NULL;
}

static void test_nesting_two_threads_cross_pools(void **state) {
    (void)state;
    for (unsigned threads = 1; threads <= 3; threads++) {
        make_pools(threads);
        atomic_store(&inner_chunks, 0);
        atomic_store(&graph_tasks, 0);
        cross c1 = {pool_a, pool_b, WEFT_OK}, c2 = {pool_b, pool_a, WEFT_OK};
        pthread_t t1, t2;
        assert_int_equal(pthread_create(&t1, NULL, cross_thread, &c1), 0);
        assert_int_equal(pthread_create(&t2, NULL, cross_thread, &c2), 0);
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
        assert_int_equal(c1.st, WEFT_OK);
        assert_int_equal(c2.st, WEFT_OK);
        unsigned reps = TU_SCALE(50, 10);
        assert_int_equal(atomic_load(&graph_tasks), 2 * 20 * reps);
        assert_int_equal(atomic_load(&inner_chunks), 2 * 20 * reps * 16);
        free_pools();
    }
}

/* A group waited for from a task of another pool while that pool's slot 0 is taken. */
static _Atomic unsigned spawned;

static int count_one(void *arg) {
    (void)arg;
    atomic_fetch_add(&spawned, 1);
    return 0;
}

static int group_in_b(void *arg) {
    (void)arg;
    weft_group *grp;
    if (weft_group_create(pool_b, &grp) != WEFT_OK) return 1;
    for (int i = 0; i < 10; i++)
        if (weft_group_spawn(grp, count_one, NULL) != WEFT_OK) return 1;
    int rc = weft_group_wait(grp) != WEFT_OK;
    weft_group_destroy(grp);
    return rc;
}

static void *hold_b(void *p) { /* keeps B's slot 0 busy with a graph of group waits */
    (void)p;
    weft_graph *g;
    weft_graph_create(&g);
    for (int i = 0; i < 30; i++) weft_graph_add_task(g, group_in_b, NULL, NULL, NULL);
    for (int r = 0; r < 10; r++) weft_graph_run(pool_b, g);
    weft_graph_destroy(g);
    return NULL;
}

static void test_nesting_group_wait_across_pools(void **state) {
    (void)state;
    make_pools(2);
    atomic_store(&spawned, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hold_b, NULL), 0);
    weft_graph *g;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (int i = 0; i < 30; i++)
        assert_int_equal(weft_graph_add_task(g, group_in_b, NULL, NULL, NULL), WEFT_OK);
    for (int r = 0; r < 10; r++) assert_int_equal(weft_graph_run(pool_a, g), WEFT_OK);
    weft_graph_destroy(g);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&spawned), 2 * 30 * 10 * 10);
    free_pools();
}

/* A one-thread pool P whose slot 0 is held by another thread: a task of pool Q that runs
 * a graph on P must wait without a slot and then take slot 0 itself once it is free
 * (nobody else would ever run its tasks). */
static _Atomic int slot_taken_by_b;
static _Atomic unsigned quick_runs;

static int slow_task(void *arg) {
    (void)arg;
    atomic_store(&slot_taken_by_b, 1);
    tu_sleep_ms(100);
    return 0;
}

static int quick_task(void *arg) {
    (void)arg;
    atomic_fetch_add(&quick_runs, 1);
    return 0;
}

static int run_on_a(void *arg) { /* a task of B's neighbour pool, runs a graph on pool_a */
    (void)arg;
    while (!atomic_load(&slot_taken_by_b)) tu_sleep_ms(1);
    weft_graph *g;
    if (weft_graph_create(&g) != WEFT_OK) return 1;
    for (int i = 0; i < 5; i++) weft_graph_add_task(g, quick_task, NULL, "quick", NULL);
    int rc = weft_graph_run(pool_a, g) != WEFT_OK;
    weft_graph_destroy(g);
    return rc;
}

static void *hold_a_slot0(void *p) {
    (void)p;
    weft_graph *g;
    weft_graph_create(&g);
    weft_graph_add_task(g, slow_task, NULL, "slow", NULL);
    weft_graph_run(pool_a, g);
    weft_graph_destroy(g);
    return NULL;
}

static void test_nesting_slotless_wait_on_one_thread_pool(void **state) {
    (void)state;
    weft_pool_options o = weft_pool_options_default();
    o.threads = 1;
    assert_int_equal(weft_pool_create(&o, &pool_a), WEFT_OK);
    o.threads = 2;
    assert_int_equal(weft_pool_create(&o, &pool_b), WEFT_OK);
    atomic_store(&slot_taken_by_b, 0);
    atomic_store(&quick_runs, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hold_a_slot0, NULL), 0);
    weft_graph *g;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    assert_int_equal(weft_graph_add_task(g, run_on_a, NULL, "into a", NULL), WEFT_OK);
    assert_int_equal(weft_graph_run(pool_b, g), WEFT_OK);
    weft_graph_destroy(g);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&quick_runs), 5);
    free_pools();
}

int main(void) {
    tu_main_init(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nesting_a_b_a),
        cmocka_unit_test(test_nesting_two_threads_cross_pools),
        cmocka_unit_test(test_nesting_group_wait_across_pools),
        cmocka_unit_test(test_nesting_slotless_wait_on_one_thread_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
