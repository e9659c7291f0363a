/* tests/graph/test_errors.c - every failure a user can cause, and what it leaves behind.
 *
 * Cycles (2- and 3-cycles among acyclic tasks) are WEFT_ERR_CYCLE naming a task on the
 * cycle, from analyze and from run, without hanging; self-edges are dropped. A failing
 * task skips exactly its transitive dependents, independent tasks still run, the status
 * and message name the task, and the same graph then runs cleanly on the same pool.
 * NULL and out-of-range arguments to each public call give INVALID_ARG / RANGE with a
 * message. Status names and messages come from the one X-macro list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "tests/util/tu_common.h"
#include "weft.h"

static int nop(void *arg)
{
    (void)arg;
    return 0;
}

static weft_pool *make_pool(unsigned threads)
{
    weft_pool_options o = weft_pool_options_default();
    o.threads = threads;
    weft_pool *p = NULL;
    assert_int_equal(weft_pool_create(&o, &p), WEFT_OK);
    return p;
}

/* Asserts status s and a non-empty message. */
#define EXPECT_ERR(call, code)                                                            \
    do {                                                                                  \
        weft_status s_ = (call);                                                          \
        if (s_ != (code))                                                                 \
            print_error("%s: %s, expected %s\n", #call, weft_status_name(s_),             \
                        weft_status_name(code));                                          \
        assert_int_equal(s_, (code));                                                     \
        assert_true(strlen(weft_last_error()) > 0);                                       \
    } while (0)

/* ---- cycles ------------------------------------------------------------------------- */

static weft_graph *named_graph(size_t n, const char *const *names)
{
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(weft_graph_add_task(g, nop, NULL, names[i], NULL), WEFT_OK);
    return g;
}

static void expect_cycle(weft_graph *g, weft_pool *pool, const char *const *on_cycle, size_t k)
{
    for (int via_run = 0; via_run < 2; via_run++) {
        EXPECT_ERR(via_run ? weft_graph_run(pool, g) : weft_graph_analyze(g, NULL),
                   WEFT_ERR_CYCLE);
        const char *msg = weft_last_error();
        int named = 0;
        for (size_t i = 0; i < k; i++)
            named |= strstr(msg, on_cycle[i]) != NULL;
        if (!named)
            print_error("cycle message names no task on the cycle: \"%s\"\n", msg);
        assert_true(named);
    }
}

static void test_errors_two_cycle(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(2);
    const char *names[] = {"before", "cyc_a", "cyc_b", "after"};
    weft_graph *g = named_graph(4, names);
    assert_int_equal(weft_graph_add_edge(g, 0, 1), WEFT_OK);
    assert_int_equal(weft_graph_add_edge(g, 1, 2), WEFT_OK);
    assert_int_equal(weft_graph_add_edge(g, 2, 1), WEFT_OK);
    assert_int_equal(weft_graph_add_edge(g, 2, 3), WEFT_OK);
    expect_cycle(g, pool, names + 1, 2);
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

static void test_errors_three_cycle_from_accesses_and_edges(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(2);
    const char *names[] = {"free_0", "ring_x", "free_2", "ring_y", "ring_z"};
    weft_graph *g = named_graph(5, names);
    int v;
    /* ring_x -> ring_y inferred (RAW), ring_y -> ring_z and ring_z -> ring_x explicit */
    assert_int_equal(weft_graph_access(g, 1, WEFT_WRITE, &v, sizeof v), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 3, WEFT_READ, &v, sizeof v), WEFT_OK);
    assert_int_equal(weft_graph_add_edge(g, 3, 4), WEFT_OK);
    assert_int_equal(weft_graph_add_edge(g, 4, 1), WEFT_OK);
    assert_int_equal(weft_graph_add_edge(g, 0, 2), WEFT_OK);
    const char *ring[] = {"ring_x", "ring_y", "ring_z"};
    expect_cycle(g, pool, ring, 3);
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

static void test_errors_self_edge_is_dropped(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(2);
    const char *names[] = {"a", "b"};
    weft_graph *g = named_graph(2, names);
    assert_int_equal(weft_graph_add_edge(g, 0, 0), WEFT_OK);
    assert_int_equal(weft_graph_add_edge(g, 0, 1), WEFT_OK);
    weft_graph_stats st;
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    assert_int_equal(st.edges, 1);
    const weft_task_id *s;
    size_t count;
    assert_int_equal(weft_graph_successors(g, 0, &s, &count), WEFT_OK);
    assert_int_equal(count, 1);
    assert_int_equal(s[0], 1);
    assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

/* ---- a failing task ----------------------------------------------------------------- */

typedef struct fail_ctx {
    _Atomic uint32_t ran[32];
    int fail_value; /* what task "boom" returns; 0 on the second run */
} fail_ctx;

typedef struct fail_arg {
    fail_ctx *c;
    int id;
} fail_arg;

static int maybe_fail(void *arg)
{
    fail_arg *a = arg;
    atomic_fetch_add(&a->c->ran[a->id], 1);
    return a->id == 3 ? a->c->fail_value : 0;
}

/* Tasks 0..15. 3 ("boom") fails. Its dependents: 4 -> 5 -> 6, 3 -> 7, 7 and 9 -> 8 (8 also
 * depends on independent 9), and 10 reads data 6 writes (inferred). Skipped: 4,5,6,7,8,10.
 * Independent: 0,1,2 (2 precedes 3), 9, 11..15. */
static void failing_case(unsigned threads)
{
    weft_pool *pool = make_pool(threads);
    fail_ctx c = {.fail_value = 42};
    fail_arg args[16];
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (int i = 0; i < 16; i++) {
        args[i] = (fail_arg){.c = &c, .id = i};
        assert_int_equal(weft_graph_add_task(g, maybe_fail, &args[i], i == 3 ? "boom" : "ok",
                                             NULL),
                         WEFT_OK);
    }
    static const int e[][2] = {{2, 3}, {3, 4}, {4, 5}, {5, 6}, {3, 7},
                               {7, 8}, {9, 8}, {0, 1}, {11, 12}};
    for (size_t i = 0; i < sizeof e / sizeof *e; i++)
        assert_int_equal(weft_graph_add_edge(g, (weft_task_id)e[i][0], (weft_task_id)e[i][1]),
                         WEFT_OK);
    double data;
    assert_int_equal(weft_graph_access(g, 6, WEFT_WRITE, &data, sizeof data), WEFT_OK);
    assert_int_equal(weft_graph_access(g, 10, WEFT_READ, &data, sizeof data), WEFT_OK);
    static const int skipped[] = {4, 5, 6, 7, 8, 10};

    weft_task_id who = 0;
    int value = 0;
    assert_int_equal(weft_graph_last_failure(g, &who, &value), WEFT_OK); /* no run yet */
    assert_int_equal(who, WEFT_TASK_NONE);
    EXPECT_ERR(weft_graph_run(pool, g), WEFT_ERR_TASK_FAILED);
    const char *msg = weft_last_error();
    if (!strstr(msg, "boom"))
        print_error("message does not name the task: \"%s\"\n", msg);
    assert_non_null(strstr(msg, "boom"));
    assert_int_equal(weft_graph_last_failure(g, &who, &value), WEFT_OK);
    assert_int_equal(who, 3);
    assert_int_equal(value, 42);
    assert_int_equal(weft_graph_last_skipped(g), 6);
    for (int i = 0; i < 16; i++) {
        int is_skipped = 0;
        for (size_t k = 0; k < 6; k++)
            is_skipped |= skipped[k] == i;
        assert_int_equal(atomic_load(&c.ran[i]), is_skipped ? 0 : 1);
    }

    /* the same graph, now succeeding, on the same pool */
    c.fail_value = 0;
    for (int i = 0; i < 16; i++)
        atomic_store(&c.ran[i], 0);
    assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
    for (int i = 0; i < 16; i++)
        assert_int_equal(atomic_load(&c.ran[i]), 1);
    assert_int_equal(weft_graph_last_skipped(g), 0);
    assert_int_equal(weft_graph_last_failure(g, &who, &value), WEFT_OK);
    assert_int_equal(who, WEFT_TASK_NONE);
    /* and the pool runs other work */
    weft_graph *h = named_graph(3, (const char *const[]){"x", "y", "z"});
    assert_int_equal(weft_graph_run(pool, h), WEFT_OK);
    weft_graph_destroy(h);
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

static void test_errors_failing_task_1_thread(void **state)
{
    (void)state;
    failing_case(1);
}

static void test_errors_failing_task_4_threads(void **state)
{
    (void)state;
    failing_case(4);
}

/* ---- invalid arguments -------------------------------------------------------------- */

static int body(void *arg, size_t b, size_t e)
{
    (void)arg;
    (void)b;
    (void)e;
    return 0;
}

static void test_errors_null_arguments(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(2);
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    assert_int_equal(weft_graph_add_task(g, nop, NULL, NULL, NULL), WEFT_OK);
    weft_pool_options o = weft_pool_options_default();
    int x;

    EXPECT_ERR(weft_pool_create(&o, NULL), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_pool_worker_info(NULL, 0, &(weft_worker_info){0}), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_pool_worker_info(pool, 0, NULL), WEFT_ERR_INVALID_ARG);
    size_t count;
    unsigned v[4];
    EXPECT_ERR(weft_pool_steal_order(NULL, 0, v, 4, &count), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_pool_steal_order(pool, 0, NULL, 4, &count), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_pool_steal_order(pool, 0, v, 4, NULL), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_pool_counters(NULL, 0, &(weft_worker_counters){0}), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_pool_counters(pool, 0, NULL), WEFT_ERR_INVALID_ARG);
    void *m;
    EXPECT_ERR(weft_pool_alloc(NULL, 64, -1, &m), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_pool_alloc(pool, 64, -1, NULL), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_pool_trace_flush(NULL), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_parallel_for(NULL, 10, 1, body, NULL), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_parallel_for(pool, 10, 1, NULL, NULL), WEFT_ERR_INVALID_ARG);
    weft_group *grp = NULL;
    EXPECT_ERR(weft_group_create(NULL, &grp), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_group_create(pool, NULL), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_group_create(pool, &grp), WEFT_OK);
    EXPECT_ERR(weft_group_spawn(NULL, nop, NULL), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_group_spawn(grp, NULL, NULL), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_group_wait(NULL), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_group_wait(grp), WEFT_OK);
    weft_group_destroy(grp);
    weft_group_destroy(NULL);

    EXPECT_ERR(weft_graph_create(NULL), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_reserve(NULL, 10, 10), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_add_task(NULL, nop, NULL, NULL, NULL), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_add_task(g, NULL, NULL, "x", NULL), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_set_cost(NULL, 0, 1.0), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_set_affinity(NULL, 0, WEFT_AFFINITY_WORKER, 0),
               WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_add_edge(NULL, 0, 0), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_access(NULL, 0, WEFT_READ, &x, sizeof x), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_access(g, 0, WEFT_READ, NULL, 4), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_access_handle(NULL, 0, WEFT_READ, 1), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_analyze(NULL, NULL), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_graph_analyze(g, NULL), WEFT_OK);
    size_t level;
    const weft_task_id *succ;
    EXPECT_ERR(weft_graph_task_level(NULL, 0, &level), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_task_level(g, 0, NULL), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_successors(NULL, 0, &succ, &count), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_successors(g, 0, NULL, &count), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_successors(g, 0, &succ, NULL), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_run(NULL, g), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_run(pool, NULL), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_run_ex(NULL, g, NULL), WEFT_ERR_INVALID_ARG);
    weft_task_id who;
    int value;
    EXPECT_ERR(weft_graph_last_failure(NULL, &who, &value), WEFT_ERR_INVALID_ARG);

    /* calls without a status must simply not crash on NULL */
    (void)weft_pool_threads(NULL);
    (void)weft_pool_numa_groups(NULL);
    (void)weft_pool_is_this_system(NULL);
    (void)weft_pool_current_worker(NULL);
    (void)weft_graph_task_count(NULL);
    (void)weft_graph_last_skipped(NULL);
    weft_pool_counters_reset(NULL);
    weft_pool_free(NULL, NULL, 0);
    weft_graph_destroy(NULL);
    weft_pool_destroy(NULL);
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

static void test_errors_out_of_range_and_invalid_values(void **state)
{
    (void)state;
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_graph_add_task(g, nop, NULL, NULL, NULL), WEFT_OK);
    int x;
    size_t level;
    const weft_task_id *succ;
    size_t count;
    EXPECT_ERR(weft_graph_set_cost(g, 3, 1.0), WEFT_ERR_RANGE);
    EXPECT_ERR(weft_graph_set_affinity(g, 3, WEFT_AFFINITY_WORKER, 0), WEFT_ERR_RANGE);
    EXPECT_ERR(weft_graph_add_edge(g, 0, 3), WEFT_ERR_RANGE);
    EXPECT_ERR(weft_graph_add_edge(g, 7, 0), WEFT_ERR_RANGE);
    EXPECT_ERR(weft_graph_add_edge(g, WEFT_TASK_NONE, 0), WEFT_ERR_RANGE);
    EXPECT_ERR(weft_graph_access(g, 3, WEFT_READ, &x, sizeof x), WEFT_ERR_RANGE);
    EXPECT_ERR(weft_graph_access_handle(g, 3, WEFT_READ, 1), WEFT_ERR_RANGE);
    assert_int_equal(weft_graph_analyze(g, NULL), WEFT_OK);
    EXPECT_ERR(weft_graph_task_level(g, 3, &level), WEFT_ERR_RANGE);
    EXPECT_ERR(weft_graph_successors(g, 3, &succ, &count), WEFT_ERR_RANGE);

    EXPECT_ERR(weft_graph_access(g, 0, WEFT_READ, &x, 0), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_access(g, 0, (weft_access_mode)0, &x, sizeof x),
               WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_access(g, 0, (weft_access_mode)4, &x, sizeof x),
               WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_access_handle(g, 0, (weft_access_mode)7, 1), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_set_cost(g, 0, NAN), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_set_cost(g, 0, -1.0), WEFT_ERR_INVALID_ARG);
    EXPECT_ERR(weft_graph_set_cost(g, 0, INFINITY), WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_graph_set_cost(g, 0, 0.0), WEFT_OK);
    EXPECT_ERR(weft_graph_set_affinity(g, 0, (weft_affinity_kind)9, 0), WEFT_ERR_INVALID_ARG);
    /* sizes whose byte counts overflow are refused, not wrapped */
    weft_status rs = weft_graph_reserve(g, SIZE_MAX, 0);
    assert_true(rs == WEFT_ERR_NOMEM || rs == WEFT_ERR_RANGE || rs == WEFT_ERR_INVALID_ARG);
    rs = weft_graph_reserve(g, 0, SIZE_MAX / 2);
    assert_true(rs == WEFT_ERR_NOMEM || rs == WEFT_ERR_RANGE || rs == WEFT_ERR_INVALID_ARG);
    assert_int_equal(weft_graph_reserve(g, 100, 100), WEFT_OK);
    /* the rejected calls changed nothing */
    weft_graph_stats st;
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    assert_int_equal(st.tasks, 3);
    assert_int_equal(st.edges, 0);
    weft_graph_destroy(g);

    weft_pool *pool = make_pool(3);
    weft_worker_info wi;
    weft_worker_counters wc;
    unsigned v[4];
    EXPECT_ERR(weft_pool_worker_info(pool, 3, &wi), WEFT_ERR_RANGE);
    EXPECT_ERR(weft_pool_counters(pool, 3, &wc), WEFT_ERR_RANGE);
    EXPECT_ERR(weft_pool_steal_order(pool, 99, v, 4, &count), WEFT_ERR_RANGE);
    weft_pool_destroy(pool);
}

/* ---- status names and messages ------------------------------------------------------ */

typedef struct code_row {
    weft_status code;
    const char *name, *msg;
} code_row;

#define ROW_(name, value, msg) {WEFT_##name, "WEFT_" #name, msg},
static const code_row rows[] = {WEFT_STATUS_LIST(ROW_)};
#undef ROW_

static void test_errors_status_names_and_strings(void **state)
{
    (void)state;
    assert_int_equal(sizeof rows / sizeof *rows, 11);
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        assert_string_equal(weft_status_name(rows[i].code), rows[i].name);
        assert_string_equal(weft_status_str(rows[i].code), rows[i].msg);
    }
    assert_string_equal(weft_status_name((weft_status)99), "WEFT_UNKNOWN");
    assert_string_equal(weft_status_name((weft_status)-1), "WEFT_UNKNOWN");
    assert_non_null(weft_status_str((weft_status)99));
}

typedef struct seen_msgs {
    char before[256], after[256];
} seen_msgs;

/* Copies the messages inside the thread: a thread's message dies with it. */
static void *fresh_thread(void *arg)
{
    seen_msgs *m = arg;
    strncpy(m->before, weft_last_error(), sizeof m->before - 1); /* nothing failed yet */
    weft_graph_create(NULL);
    strncpy(m->after, weft_last_error(), sizeof m->after - 1);
    return NULL;
}

static void test_errors_last_error_is_thread_local(void **state)
{
    (void)state;
    EXPECT_ERR(weft_graph_add_edge(NULL, 0, 1), WEFT_ERR_INVALID_ARG);
    char mine[256];
    strncpy(mine, weft_last_error(), sizeof mine - 1);
    mine[sizeof mine - 1] = '\0';
    seen_msgs m;
    memset(&m, 0, sizeof m);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fresh_thread, &m), 0);
    pthread_join(t, NULL);
    assert_string_equal(m.before, "");
    assert_true(strlen(m.after) > 0);
    assert_string_equal(weft_last_error(), mine); /* untouched by the other thread */
}

int main(void)
{
    tu_main_init(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_two_cycle),
        cmocka_unit_test(test_errors_three_cycle_from_accesses_and_edges),
        cmocka_unit_test(test_errors_self_edge_is_dropped),
        cmocka_unit_test(test_errors_failing_task_1_thread),
        cmocka_unit_test(test_errors_failing_task_4_threads),
        cmocka_unit_test(test_errors_null_arguments),
        cmocka_unit_test(test_errors_out_of_range_and_invalid_values),
        cmocka_unit_test(test_errors_status_names_and_strings),
        cmocka_unit_test(test_errors_last_error_is_thread_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
