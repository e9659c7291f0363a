/* tests/graph/test_alloc_fail.c - out-of-memory on every allocation, one at a time.
 *
 * A successful pass counts the allocations T that a sequence of steps makes through the
 * allocator hook (tests/util/tu_alloc.h). Then, for N = 1 .. T (+1), the Nth allocation
 * fails and every step must either succeed or return WEFT_ERR_NOMEM with a message (never
 * another code, never a crash or a hang); a run or parallel-for that failed is retried and
 * must then succeed with every task run once. After cleanup, the hook's counters must
 * balance (every block freed, with the size it was allocated with), and the same steps
 * succeed with the hook disarmed. Under ASan/LSan this also shows that nothing leaks.
 *
 * Scenarios: (a) the pool is created under the failing hook too, with the failure once
 * and sticky (every allocation from N on fails, so cleanup paths must not allocate);
 * (b) a pool created before the failures are armed (the hook itself is installed first,
 * as weft_allocator_set requires that no weft object exists) is reused by every pass,
 * and must stay usable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "tests/util/tu_alloc.h"
#include "tests/util/tu_common.h"
#include "weft.h"

enum { NT = 24, NSPAWN = 20, NFOR = 300 };

typedef struct outcome {
    int nomem;      /* WEFT_ERR_NOMEM results seen */
    int bad;        /* other codes, silent NOMEM, failed retries, wrong results */
    int completed;  /* every step succeeded (after retries) */
    char what[200]; /* the first problem */
} outcome;

static void bad(outcome *o, const char *fmt, const char *step, weft_status s)
{
    if (!o->bad)
        snprintf(o->what, sizeof o->what, fmt, step, weft_status_name(s));
    o->bad++;
}

/* 1 if s is OK, 0 if NOMEM (noted), 0 and a problem otherwise. */
static int step(outcome *o, const char *name, weft_status s)
{
    if (s == WEFT_OK)
        return 1;
    if (s == WEFT_ERR_NOMEM) {
        o->nomem++;
        if (weft_last_error()[0] == '\0')
            bad(o, "%s: %s without a message", name, s);
        return 0;
    }
    bad(o, "%s returned %s (only OK or NOMEM allowed)", name, s);
    return 0;
}

static _Atomic uint32_t ran[NT + NSPAWN];
static _Atomic uint64_t covered;

static int task_fn(void *arg)
{
    atomic_fetch_add(&ran[(uintptr_t)arg], 1);
    return 0;
}

static int range_fn(void *arg, size_t b, size_t e)
{
    (void)arg;
    atomic_fetch_add(&covered, e - b);
    return 0;
}

static void clear_ran(void)
{
    for (size_t i = 0; i < NT + NSPAWN; i++)
        atomic_store(&ran[i], 0);
    atomic_store(&covered, 0);
}

static int all_ran_once(size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (atomic_load(&ran[i]) != 1)
            return 0;
    return 1;
}

/* A run-like call; on NOMEM, retried once (only when the failure is not sticky), and then
 * it must succeed and run everything. */
#define RUN_STEP(o, name, call, check, retry)                                             \
    do {                                                                                  \
        clear_ran();                                                                      \
        weft_status s_ = (call);                                                          \
        if (!step(o, name, s_)) {                                                         \
            if ((o)->bad || !(retry))                                                     \
                goto out;                                                                 \
            clear_ran();                                                                  \
            s_ = (call);                                                                  \
            if (s_ != WEFT_OK) {                                                          \
                bad(o, "%s retried after NOMEM: %s", name, s_);                           \
                goto out;                                                                 \
            }                                                                             \
        }                                                                                 \
        if (!(check)) {                                                                   \
            bad(o, "%s: wrong result (%s)", name, s_);                                    \
            goto out;                                                                     \
        }                                                                                 \
    } while (0)

/* Graph build + analyze + three runs (measured, default, global priority), then a group
 * and a parallel-for on the pool. */
static void steps(weft_pool *pool, outcome *o, int retry)
{
    static char buf[64];
    weft_graph *g = NULL;
    weft_group *grp = NULL;
    o->completed = 0;
    if (!step(o, "graph_create", weft_graph_create(&g)))
        goto out;
    if (!step(o, "reserve", weft_graph_reserve(g, NT, 8)))
        goto out;
    char name[32];
    for (uintptr_t i = 0; i < NT; i++) {
        snprintf(name, sizeof name, "task_%u", (unsigned)i);
        if (!step(o, "add_task", weft_graph_add_task(g, task_fn, (void *)i, name, NULL)) ||
            !step(o, "set_cost", weft_graph_set_cost(g, (weft_task_id)i, 1.0 + (double)i)))
            goto out;
    }
    for (weft_task_id i = 0; i < NT; i++) {
        if (i % 4 == 0 && i + 3 < NT &&
            !step(o, "add_edge", weft_graph_add_edge(g, i, i + 3)))
            goto out;
        if (!step(o, "access", weft_graph_access(g, i, WEFT_WRITE, buf + i % 8, 8)) ||
            !step(o, "access", weft_graph_access(g, i, WEFT_READ, buf + 16 + i % 16, 4)))
            goto out;
        if (i % 5 == 0 &&
            !step(o, "access_handle", weft_graph_access_handle(g, i, WEFT_READWRITE, i % 3)))
            goto out;
    }
    weft_graph_stats st;
    if (!step(o, "analyze", weft_graph_analyze(g, &st)))
        goto out;
    weft_run_options ro = {.measure = 1};
    RUN_STEP(o, "run_ex", weft_graph_run_ex(pool, g, &ro), all_ran_once(0, NT), retry);
    RUN_STEP(o, "run", weft_graph_run(pool, g), all_ran_once(0, NT), retry);
    weft_run_options rg = {.global_priority = 1}; /* allocates its ready queue */
    RUN_STEP(o, "run_ex global", weft_graph_run_ex(pool, g, &rg), all_ran_once(0, NT), retry);

    if (!step(o, "group_create", weft_group_create(pool, &grp)))
        goto out;
    clear_ran();
    int spawned[NSPAWN] = {0};
    for (uintptr_t i = 0; i < NSPAWN; i++) {
        weft_status s = weft_group_spawn(grp, task_fn, (void *)(NT + i));
        spawned[i] = step(o, "group_spawn", s); /* a failed spawn is not run */
        if (o->bad)
            break;
    }
    weft_status s = weft_group_wait(grp);
    if (s != WEFT_OK) {
        bad(o, "%s: %s", "group_wait", s);
        goto out;
    }
    for (size_t i = 0; i < NSPAWN; i++)
        if (atomic_load(&ran[NT + i]) != (uint32_t)spawned[i]) {
            bad(o, "%s: task run count differs from spawn result (%s)", "group_spawn", s);
            goto out;
        }
    RUN_STEP(o, "parallel_for", weft_parallel_for(pool, NFOR, 7, range_fn, NULL),
             atomic_load(&covered) == NFOR, retry);
    o->completed = !o->nomem;
out:
    weft_group_destroy(grp);
    weft_graph_destroy(g);
}

static weft_status create_pool(weft_pool **out)
{
    weft_pool_options opt = weft_pool_options_default();
    opt.threads = 3;
    *out = NULL;
    return weft_pool_create(&opt, out);
}

/* Scenario (a): pool creation, the steps and destruction under the hook. */
static void whole_pass(outcome *o, int retry)
{
    weft_pool *pool = NULL;
    if (step(o, "pool_create", create_pool(&pool)))
        steps(pool, o, retry);
    weft_pool_destroy(pool);
}

static void check_balanced(uint64_t n, const char *mode)
{
    tu_alloc_stats st = tu_alloc_get();
    if (st.allocs != st.frees || st.bytes_alloc != st.bytes_freed)
        print_error("N=%llu (%s): %llu allocs / %llu frees, %llu / %llu bytes\n",
                    (unsigned long long)n, mode, (unsigned long long)st.allocs,
                    (unsigned long long)st.frees, (unsigned long long)st.bytes_alloc,
                    (unsigned long long)st.bytes_freed);
    assert_int_equal(st.allocs, st.frees);
    assert_int_equal(st.bytes_alloc, st.bytes_freed);
    assert_int_equal(st.bad_free, 0);
    assert_int_equal(st.bad_align, 0);
}

static void check_outcome(const outcome *o, uint64_t n, const char *mode, uint64_t failed)
{
    if (o->bad)
        print_error("N=%llu (%s): %s\n", (unsigned long long)n, mode, o->what);
    assert_int_equal(o->bad, 0);
    if (failed && !o->nomem)
        print_error("N=%llu (%s): the allocation failed but no call reported NOMEM\n",
                    (unsigned long long)n, mode);
    assert_true(!failed || o->nomem > 0);
    if (!failed)
        assert_true(o->completed);
}

static void test_alloc_fail_every_allocation_pool_included(void **state)
{
    (void)state;
    tu_alloc_install();
    outcome o = {0};
    whole_pass(&o, 1);
    assert_int_equal(o.bad, 0);
    assert_true(o.completed);
    check_balanced(0, "count");
    uint64_t total = tu_alloc_get().attempts;
    print_message("scenario a: %llu allocations in a successful pass\n",
                  (unsigned long long)total);
    assert_true(total > 0);
    for (int sticky = 0; sticky < 2; sticky++) {
        const char *mode = sticky ? "sticky" : "once";
        for (uint64_t n = 1; n <= total + 1; n++) {
            tu_alloc_reset();
            tu_alloc_fail_at(n, sticky);
            memset(&o, 0, sizeof o);
            whole_pass(&o, !sticky);
            uint64_t failed = tu_alloc_get().failed;
            tu_alloc_fail_at(0, 0);
            check_outcome(&o, n, mode, failed);
            check_balanced(n, mode);
            /* with the hook disarmed the same steps succeed */
            memset(&o, 0, sizeof o);
            whole_pass(&o, 0);
            assert_int_equal(o.bad, 0);
            assert_true(o.completed);
            check_balanced(n, "after");
        }
    }
    tu_alloc_uninstall();
}

static void test_alloc_fail_graph_steps_on_a_live_pool(void **state)
{
    (void)state;
    tu_alloc_install();
    weft_pool *pool = NULL;
    assert_int_equal(create_pool(&pool), WEFT_OK);
    outcome o = {0};
    steps(pool, &o, 0); /* warm-up: lazily made pool structures exist from here on */
    assert_true(o.completed);
    tu_alloc_fail_at(0, 0);
    uint64_t before = tu_alloc_get().attempts;
    memset(&o, 0, sizeof o);
    steps(pool, &o, 0);
    assert_true(o.completed);
    uint64_t total = tu_alloc_get().attempts - before;
    print_message("scenario b: %llu allocations per pass on a live pool\n",
                  (unsigned long long)total);
    assert_true(total > 0);
    for (uint64_t n = 1; n <= total + 1; n++) {
        uint64_t failed0 = tu_alloc_get().failed;
        tu_alloc_fail_at(n, 0);
        memset(&o, 0, sizeof o);
        steps(pool, &o, 1);
        tu_alloc_fail_at(0, 0);
        check_outcome(&o, n, "live pool", tu_alloc_get().failed - failed0);
        /* the pool is still usable */
        memset(&o, 0, sizeof o);
        steps(pool, &o, 0);
        assert_int_equal(o.bad, 0);
        assert_true(o.completed);
    }
    weft_pool_destroy(pool);
    check_balanced(0, "live pool, after destroy");
    tu_alloc_uninstall();
}

/* A mutation that fails for lack of memory leaves the graph unchanged: its analysis, and
 * the successor arrays handed out from it, stay valid (ASan would catch a read of freed
 * memory here). */
static int nop_task(void *arg)
{
    (void)arg;
    return 0;
}

static void test_alloc_fail_failed_mutation_keeps_analysis(void **state)
{
    (void)state;
    tu_alloc_install();
    weft_graph *g = NULL;
    weft_task_id a, b;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    assert_int_equal(weft_graph_add_task(g, nop_task, NULL, "a", &a), WEFT_OK);
    assert_int_equal(weft_graph_add_task(g, nop_task, NULL, "b", &b), WEFT_OK);
    assert_int_equal(weft_graph_add_edge(g, a, b), WEFT_OK);
    assert_int_equal(weft_graph_analyze(g, NULL), WEFT_OK);
    const weft_task_id *succ = NULL;
    size_t n = 0;
    assert_int_equal(weft_graph_successors(g, a, &succ, &n), WEFT_OK);
    assert_int_equal(n, 1);
    tu_alloc_fail_at(1, 1); /* every allocation from now on fails */
    assert_int_equal(weft_graph_reserve(g, 1u << 20, 1u << 20), WEFT_ERR_NOMEM);
    tu_alloc_fail_at(0, 0);
    /* reserve changed nothing, so the analysis is still current (no re-analysis needed
     * to ask for successors) and the array it handed out is intact (ASan would flag a
     * read of freed memory) */
    assert_int_equal(succ[0], b);
    const weft_task_id *again = NULL;
    assert_int_equal(weft_graph_successors(g, a, &again, &n), WEFT_OK);
    assert_ptr_equal(again, succ);
    weft_graph_destroy(g);
    assert_int_equal(tu_alloc_get().bad_free, 0);
    tu_alloc_uninstall();
}

/* Re-running a built graph allocates nothing, in either order: the global-priority ready
 * queue is allocated by the first global run and kept; a grown graph grows it once. */
static void test_alloc_fail_reruns_allocate_nothing(void **state)
{
    (void)state;
    tu_alloc_install();
    weft_pool *pool = NULL;
    weft_pool_options po = weft_pool_options_default();
    po.threads = 2;
    assert_int_equal(weft_pool_create(&po, &pool), WEFT_OK);
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    weft_task_id prev = 0, t = 0;
    for (int i = 0; i < 64; i++) {
        assert_int_equal(weft_graph_add_task(g, nop_task, NULL, NULL, &t), WEFT_OK);
        if (i % 4)
            assert_int_equal(weft_graph_add_edge(g, prev, t), WEFT_OK);
        prev = t;
    }
    for (int grown = 0; grown < 2; grown++) {
        for (int global = 0; global < 2; global++) {
            weft_run_options ro = {.global_priority = global};
            assert_int_equal(weft_graph_run_ex(pool, g, &ro), WEFT_OK); /* first: may allocate */
            tu_alloc_reset();
            for (int rep = 0; rep < 3; rep++)
                assert_int_equal(weft_graph_run_ex(pool, g, &ro), WEFT_OK);
            if (tu_alloc_get().allocs != 0)
                print_error("%s, global %d: %llu allocations in 3 re-runs\n",
                            grown ? "grown graph" : "graph", global,
                            (unsigned long long)tu_alloc_get().allocs);
            assert_int_equal(tu_alloc_get().allocs, 0);
        }
        assert_int_equal(weft_graph_add_task(g, nop_task, NULL, NULL, &t), WEFT_OK);
    }
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
    assert_int_equal(tu_alloc_get().bad_free, 0);
    tu_alloc_uninstall();
}

int main(void)
{
    tu_main_init(300);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_fail_every_allocation_pool_included),
        cmocka_unit_test(test_alloc_fail_graph_steps_on_a_live_pool),
        cmocka_unit_test(test_alloc_fail_failed_mutation_keeps_analysis),
        cmocka_unit_test(test_alloc_fail_reruns_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
