/* tests/scheduler/test_pool.c - the work-stealing pool running task graphs.
 *
 * Random DAGs on 1, 2, 7 and 16 threads (explicit edges, random shapes and seeds, each run
 * twice): every task runs exactly once per run, starts after all its predecessors ended
 * (on one global seq_cst clock), and computes the same value as a sequential evaluation.
 * Also: spin_us 0, per-worker counters, Chrome tracing (option, WEFT_TRACE, at flush and at
 * destroy, names whole and escaped), an idle pool that costs no CPU and counts its parks,
 * parked workers that are woken, and outside threads sharing a pool (graphs, parallel-for,
 * groups). Worker threads only record; main asserts after the run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/util/tu_common.h"
#include "tests/util/tu_dag.h"
#include "weft.h"

static weft_pool *make_pool(unsigned threads)
{
    weft_pool_options o = weft_pool_options_default();
    o.threads = threads;
    weft_pool *p = NULL;
    weft_status s = weft_pool_create(&o, &p);
    if (s != WEFT_OK)
        print_error("weft_pool_create(%u): %s: %s\n", threads, weft_status_name(s),
                    weft_last_error());
    assert_int_equal(s, WEFT_OK);
    assert_non_null(p);
    return p;
}

static void test_pool_options_default(void **state)
{
    (void)state;
    weft_pool_options o = weft_pool_options_default();
    assert_int_equal(o.threads, 0);
    assert_null(o.topology);
    assert_int_equal(o.bind, 1);
    assert_null(o.trace_path);
    assert_int_equal(o.spin_us, 50);
}

static void test_pool_create_1_2_7_16_threads(void **state)
{
    (void)state;
    const unsigned counts[] = {1, 2, 7, 16};
    for (size_t i = 0; i < 4; i++) {
        weft_pool *p = make_pool(counts[i]);
        assert_int_equal(weft_pool_threads(p), counts[i]);
        assert_true(weft_pool_numa_groups(p) >= 1);
        assert_int_equal(weft_pool_is_this_system(p), 1);
        weft_pool_destroy(p);
    }
    weft_pool_destroy(NULL);
}

static size_t dag_problems(weft_pool *pool, const tu_dag *d, char *msg, size_t cap);

/* spin_us = 0: workers park at once; runs must still be complete and correct. */
static void test_pool_no_spin_still_correct(void **state)
{
    (void)state;
    weft_pool_options o = weft_pool_options_default();
    o.threads = 4;
    o.spin_us = 0;
    weft_pool *p = NULL;
    assert_int_equal(weft_pool_create(&o, &p), WEFT_OK);
    for (uint64_t seed = 1; seed <= 100; seed++) {
        tu_dag d;
        char msg[256];
        assert_int_equal(tu_dag_random(&d, seed, 100), 0);
        size_t bad = dag_problems(p, &d, msg, sizeof msg);
        tu_dag_free(&d);
        if (bad)
            print_error("seed %llu: %s\n", (unsigned long long)seed, msg);
        assert_int_equal(bad, 0);
    }
    weft_pool_destroy(p);
}

/* ---- random DAGs -------------------------------------------------------------------- */

static _Atomic uint64_t g_clock; /* seq_cst ticks: task starts and ends */

typedef struct dag_ctx {
    const tu_dag *d;
    weft_pool *pool;
    unsigned threads;
    uint64_t *values, *start, *end;
    _Atomic uint32_t *runs;
    _Atomic uint32_t bad_worker;
} dag_ctx;

typedef struct dag_arg {
    dag_ctx *c;
    uint32_t id;
} dag_arg;

static int dag_task(void *arg)
{
    dag_arg *a = arg;
    dag_ctx *c = a->c;
    uint64_t s = atomic_fetch_add(&g_clock, 1);
    int w = weft_pool_current_worker(c->pool);
    if (w < 0 || (unsigned)w >= c->threads)
        atomic_fetch_add(&c->bad_worker, 1);
    c->values[a->id] = tu_dag_value(c->d, a->id, c->values);
    atomic_fetch_add(&c->runs[a->id], 1);
    c->start[a->id] = s;
    c->end[a->id] = atomic_fetch_add(&g_clock, 1);
    return 0;
}

/* Builds d as a weft graph, checks the analysis, runs it twice and checks each run: every
 * task once, every edge respected on the clock, values as the sequential evaluation.
 * Returns the number of problems (described in msg); no cmocka, so threads may call it. */
static size_t dag_problems(weft_pool *pool, const tu_dag *d, char *msg, size_t cap)
{
    size_t n = d->n, bad = 0;
    dag_ctx c = {.d = d, .pool = pool, .threads = weft_pool_threads(pool)};
    c.values = calloc(n, sizeof *c.values);
    c.start = calloc(n, sizeof *c.start);
    c.end = calloc(n, sizeof *c.end);
    c.runs = calloc(n, sizeof *c.runs);
    uint64_t *ref = calloc(n, sizeof *ref);
    dag_arg *args = calloc(n, sizeof *args);
    weft_graph *g = NULL;
    snprintf(msg, cap, "out of memory or graph build failed");
    if (!c.values || !c.start || !c.end || !c.runs || !ref || !args ||
        weft_graph_create(&g) != WEFT_OK) {
        bad = 1;
        goto out;
    }
    tu_dag_eval(d, ref);
    for (size_t i = 0; i < n && !bad; i++) {
        weft_task_id id = WEFT_TASK_NONE;
        args[i] = (dag_arg){.c = &c, .id = (uint32_t)i};
        bad += weft_graph_add_task(g, dag_task, &args[i], NULL, &id) != WEFT_OK || id != i;
    }
    for (size_t e = 0; e < d->nedges && !bad; e++)
        bad += weft_graph_add_edge(g, d->from[e], d->to[e]) != WEFT_OK;
    weft_graph_stats st;
    if (bad || weft_graph_analyze(g, &st) != WEFT_OK)
        goto out;
    if (st.tasks != n || st.edges != d->nunique || st.levels != d->levels ||
        st.sources != d->sources) {
        snprintf(msg, cap, "stats: %zu tasks, %zu edges, %zu levels, %zu sources; expected "
                 "%zu, %zu, %zu, %zu", st.tasks, st.edges, st.levels, st.sources, n,
                 d->nunique, d->levels, d->sources);
        bad = 1;
        goto out;
    }
    for (int rep = 0; rep < 2 && !bad; rep++) {
        for (size_t i = 0; i < n; i++)
            atomic_store(&c.runs[i], 0);
        memset(c.values, 0, n * sizeof *c.values);
        weft_status s = rep == 0 ? weft_graph_run(pool, g) : weft_graph_run_ex(pool, g, NULL);
        size_t not_once = 0, order_bad = 0, value_bad = 0;
        for (size_t i = 0; i < n; i++) {
            not_once += atomic_load(&c.runs[i]) != 1;
            value_bad += c.values[i] != ref[i];
        }
        for (size_t e = 0; e < d->nedges; e++)
            order_bad += !(c.start[d->to[e]] > c.end[d->from[e]]);
        bad = (s != WEFT_OK) + not_once + order_bad + value_bad + atomic_load(&c.bad_worker);
        if (bad)
            snprintf(msg, cap, "run %d: %s; %zu tasks not run once, %zu edges violated, "
                     "%zu wrong values, %u bad slots", rep, weft_status_name(s), not_once,
                     order_bad, value_bad, (unsigned)atomic_load(&c.bad_worker));
    }
out:
    weft_graph_destroy(g);
    free(c.values);
    free(c.start);
    free(c.end);
    free((void *)c.runs);
    free(ref);
    free(args);
    return bad;
}

static void run_random_dags(unsigned threads)
{
    const size_t count = 1000; /* as many under sanitizers: fast enough */
    weft_pool *pool = make_pool(threads);
    size_t edges = 0;
    for (size_t k = 0; k < count; k++) {
        uint64_t seed = threads * 1000003ull + k;
        tu_dag d;
        assert_int_equal(tu_dag_random(&d, seed, 200), 0);
        edges += d.nedges;
        char msg[256];
        size_t bad = dag_problems(pool, &d, msg, sizeof msg);
        if (bad)
            print_error("seed %llu (n=%zu, edges=%zu, threads %u): %s\n",
                        (unsigned long long)seed, d.n, d.nedges, threads, msg);
        tu_dag_free(&d);
        assert_int_equal(bad, 0);
    }
    assert_true(edges > 0);
    weft_pool_destroy(pool);
}

static void test_pool_random_dags_1_thread(void **state) { (void)state; run_random_dags(1); }
static void test_pool_random_dags_2_threads(void **state) { (void)state; run_random_dags(2); }
static void test_pool_random_dags_7_threads(void **state) { (void)state; run_random_dags(7); }
static void test_pool_random_dags_16_threads(void **state) { (void)state; run_random_dags(16); }

/* ---- counters ----------------------------------------------------------------------- */

static int empty_task(void *arg)
{
    (void)arg;
    return 0;
}

static void test_pool_counters_sum_and_reset(void **state)
{
    (void)state;
    const unsigned T = 4;
    const size_t n = 2000;
    weft_pool *pool = make_pool(T);
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(weft_graph_add_task(g, empty_task, NULL, NULL, NULL), WEFT_OK);
    weft_pool_counters_reset(pool);
    assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
    uint64_t sum = 0;
    weft_worker_counters c;
    for (unsigned w = 0; w < T; w++) {
        assert_int_equal(weft_pool_counters(pool, w, &c), WEFT_OK);
        assert_true(c.steals_ok <= c.steals_tried);
        sum += c.tasks_run;
    }
    assert_true(sum >= n);
    assert_int_equal(weft_pool_counters(pool, T, &c), WEFT_ERR_RANGE);
    /* counters are exact once the pool is idle: let the workers finish spinning and
     * park (50 us), or a park that starts after the reset would count */
    tu_sleep_ms(50);
    weft_pool_counters_reset(pool);
    for (unsigned w = 0; w < T; w++) {
        assert_int_equal(weft_pool_counters(pool, w, &c), WEFT_OK);
        assert_int_equal(c.tasks_run, 0);
        assert_int_equal(c.steals_tried, 0);
        assert_int_equal(c.steals_ok, 0);
        assert_int_equal(c.parks, 0);
        assert_int_equal(c.parked_ns, 0);
    }
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

/* ---- tracing ------------------------------------------------------------------------ */

/* Checks the shape of a trace: starts like JSON, has traceEvents, exactly `events` task
 * ("X") events, and the names fmt % i for every i < named. */
static void check_trace_file(const char *path, size_t events, size_t named, const char *fmt)
{
    size_t len = 0;
    char *txt = tu_read_file(path, &len);
    assert_non_null(txt);
    const char *p = txt;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    assert_true(*p == '{' || *p == '[');
    assert_non_null(strstr(txt, "\"traceEvents\""));
    assert_int_equal(tu_json_count_pair(txt, "ph", "X"), events);
    char name[64];
    for (size_t i = 0; i < named; i++) {
        snprintf(name, sizeof name, fmt, i);
        if (!strstr(txt, name))
            print_error("trace lacks %s\n", name);
        assert_non_null(strstr(txt, name));
    }
    free(txt);
}

static int traced_task(void *arg)
{
    (void)arg;
    for (volatile int i = 0; i < 1000; i++) {
    }
    return 0;
}

static void run_named_tasks(weft_pool *pool, size_t n, const char *fmt)
{
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    char name[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, fmt, i);
        assert_int_equal(weft_graph_add_task(g, traced_task, NULL, name, NULL), WEFT_OK);
        if (i > 0 && i % 3 == 0)
            assert_int_equal(weft_graph_add_edge(g, (weft_task_id)(i - 3), (weft_task_id)i),
                             WEFT_OK);
    }
    assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
    weft_graph_destroy(g);
}

static weft_pool *traced_pool(char *path, size_t cap)
{
    tu_temp_path(path, cap, "trace");
    weft_pool_options o = weft_pool_options_default();
    o.threads = 3;
    o.trace_path = path;
    weft_pool *pool = NULL;
    assert_int_equal(weft_pool_create(&o, &pool), WEFT_OK);
    return pool;
}

static void test_pool_trace_writes_chrome_json(void **state)
{
    (void)state;
    char path[128];
    weft_pool *pool = traced_pool(path, sizeof path);
    run_named_tasks(pool, 25, "trace_task_%02zu");
    assert_int_equal(weft_pool_trace_flush(pool), WEFT_OK);
    check_trace_file(path, 25, 25, "\"trace_task_%02zu\"");
    weft_pool_destroy(pool);
    unlink(path);
}

/* Names are copied by add_task at any length: the trace has them whole, JSON-escaped. */
static void test_pool_trace_names_whole_and_escaped(void **state)
{
    (void)state;
    char path[128];
    weft_pool *pool = traced_pool(path, sizeof path);
    char longname[120];
    for (size_t i = 0; i < sizeof longname - 1; i++)
        longname[i] = (char)('a' + i % 26);
    longname[sizeof longname - 1] = '\0';
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    assert_int_equal(weft_graph_add_task(g, traced_task, NULL, "q\"b\\s\nl", NULL), WEFT_OK);
    assert_int_equal(weft_graph_add_task(g, traced_task, NULL, longname, NULL), WEFT_OK);
    assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
    weft_graph_destroy(g);
    assert_int_equal(weft_pool_trace_flush(pool), WEFT_OK);
    char *txt = tu_read_file(path, NULL);
    weft_pool_destroy(pool);
    unlink(path);
    assert_non_null(txt);
    /* \" and \\ escaped, the newline as \n or \u000a */
    int escaped = strstr(txt, "\"q\\\"b\\\\s\\nl\"") || strstr(txt, "\"q\\\"b\\\\s\\u000al\"") ||
                  strstr(txt, "\"q\\\"b\\\\s\\u000Al\"");
    int whole = strstr(txt, longname) != NULL;
    free(txt);
    assert_true(escaped);
    if (!whole)
        print_error("the trace lacks the full %zu-character name\n", strlen(longname));
    assert_true(whole);
}

static void test_pool_trace_env_var(void **state)
{
    (void)state;
    char path[128];
    tu_temp_path(path, sizeof path, "trace-env");
    setenv("WEFT_TRACE", path, 1);
    weft_pool *pool = make_pool(2);
    unsetenv("WEFT_TRACE");
    run_named_tasks(pool, 12, "env_task_%02zu");
    weft_pool_destroy(pool); /* writes the trace: no flush called */
    check_trace_file(path, 12, 12, "\"env_task_%02zu\"");
    unlink(path);
}

static void test_pool_trace_off_and_unwritable(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(2);
    assert_int_equal(weft_pool_trace_flush(pool), WEFT_OK); /* tracing off: no file */
    weft_pool_destroy(pool);

    const char *bad = "/nonexistent-weft-dir/sub/trace.json";
    weft_pool_options o = weft_pool_options_default();
    o.threads = 2;
    o.trace_path = bad;
    pool = NULL;
    assert_int_equal(weft_pool_create(&o, &pool), WEFT_OK);
    run_named_tasks(pool, 4, "t%zu");
    assert_int_equal(weft_pool_trace_flush(pool), WEFT_ERR_IO);
    assert_non_null(strstr(weft_last_error(), "/nonexistent-weft-dir/sub/trace.json"));
    weft_pool_destroy(pool); /* cannot write either; must not crash */
}

/* ---- idle pools cost nothing, parked workers wake ----------------------------------- */

static void idle_check(unsigned threads)
{
    weft_pool *pool = make_pool(threads);
    run_named_tasks(pool, 64, "idle_%zu");
    uint64_t c0 = tu_cpu_ns();
    tu_sleep_ms(1000);
    uint64_t used = tu_cpu_ns() - c0;
    print_message("idle pool of %u threads: %.3f ms CPU in 1 s\n", threads, used / 1e6);
    assert_true(used < 10000000ull);
    weft_pool_destroy(pool);
}

/* Every background worker of an idle pool is asleep, so each has gone to sleep at least
 * once: parks > 0 (the counters are exact once the pool is idle), also for a worker that
 * no run has woken yet. */
static void test_pool_idle_workers_count_their_parks(void **state)
{
    (void)state;
    const unsigned counts[] = {2, 16};
    for (int k = 0; k < 2; k++) {
        weft_pool *pool = make_pool(counts[k]);
        for (int phase = 0; phase < 2; phase++) {
            if (phase == 1)
                run_named_tasks(pool, 64, "park_%zu");
            tu_sleep_ms(100);
            for (unsigned w = 1; w < counts[k]; w++) {
                weft_worker_counters c;
                assert_int_equal(weft_pool_counters(pool, w, &c), WEFT_OK);
                if (c.parks == 0)
                    print_error("pool of %u, %s: worker %u idle but parks == 0\n", counts[k],
                                phase ? "after a run" : "never used", w);
                assert_true(c.parks > 0);
            }
        }
        weft_pool_destroy(pool);
    }
}

static void test_pool_idle_2_threads_uses_no_cpu(void **state) { (void)state; idle_check(2); }
static void test_pool_idle_16_threads_uses_no_cpu(void **state) { (void)state; idle_check(16); }

typedef struct meet {
    _Atomic int arrived;
    int expect;
    _Atomic int timeouts;
} meet;

/* Each task waits (bounded) until all `expect` tasks have started: that is only possible
 * if parked workers were woken to take them. */
static int meet_task(void *arg)
{
    meet *m = arg;
    atomic_fetch_add(&m->arrived, 1);
    uint64_t limit = tu_now_ns() + (TU_SANITIZED ? 20 : 5) * 1000000000ull;
    while (atomic_load(&m->arrived) < m->expect) {
        if (tu_now_ns() > limit) {
            atomic_fetch_add(&m->timeouts, 1);
            break;
        }
        sched_yield();
    }
    return 0;
}

static void wake_check(unsigned threads, int rounds)
{
    weft_pool *pool = make_pool(threads);
    for (int r = 0; r < rounds; r++) {
        tu_sleep_ms(3); /* long past spin_us: the workers are parked */
        meet m = {.expect = (int)threads};
        weft_graph *g = NULL;
        assert_int_equal(weft_graph_create(&g), WEFT_OK);
        for (unsigned i = 0; i < threads; i++)
            assert_int_equal(weft_graph_add_task(g, meet_task, &m, "meet", NULL), WEFT_OK);
        assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
        weft_graph_destroy(g);
        if (atomic_load(&m.timeouts))
            print_error("round %d: %d of %u tasks never met (lost wake-up?)\n", r,
                        atomic_load(&m.timeouts), threads);
        assert_int_equal(atomic_load(&m.timeouts), 0);
    }
    weft_pool_destroy(pool);
}

static void test_pool_wakes_parked_workers(void **state)
{
    (void)state;
    wake_check(2, 40);
    wake_check(8, 10);
}

/* ---- several outside threads on one pool ------------------------------------------- */

typedef struct caller {
    weft_pool *pool;
    uint64_t seed;
    int failures;
} caller;

static int sum_range(void *arg, size_t b, size_t e)
{
    atomic_fetch_add((_Atomic uint64_t *)arg, e - b);
    return 0;
}

static int sum_one(void *arg)
{
    atomic_fetch_add((_Atomic uint64_t *)arg, 1);
    return 0;
}

static void *caller_main(void *arg)
{
    caller *c = arg;
    for (int k = 0; k < TU_SCALE(30, 20); k++) {
        tu_dag d;
        char msg[256];
        if (tu_dag_random(&d, c->seed + (uint64_t)k, 100) != 0) {
            c->failures++;
            continue;
        }
        c->failures += dag_problems(c->pool, &d, msg, sizeof msg) != 0;
        tu_dag_free(&d);
        /* a parallel-for and a group from this outside thread too */
        _Atomic uint64_t sum = 0;
        c->failures += weft_parallel_for(c->pool, 5000, 64, sum_range, (void *)&sum) != WEFT_OK;
        c->failures += atomic_load(&sum) != 5000;
        weft_group *grp = NULL;
        if (weft_group_create(c->pool, &grp) != WEFT_OK) {
            c->failures++;
            continue;
        }
        for (int i = 0; i < 20; i++)
            c->failures += weft_group_spawn(grp, sum_one, (void *)&sum) != WEFT_OK;
        c->failures += weft_group_wait(grp) != WEFT_OK;
        c->failures += atomic_load(&sum) != 5020;
        weft_group_destroy(grp);
    }
    return NULL;
}

static void test_pool_outside_threads_share_a_pool(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(4);
    caller c[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        c[i] = (caller){.pool = pool, .seed = 777 + 1000u * (unsigned)i};
        assert_int_equal(pthread_create(&t[i], NULL, caller_main, &c[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(c[i].failures, 0);
    }
    weft_pool_destroy(pool);
}

int main(void)
{
    tu_main_init(300);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_options_default),
        cmocka_unit_test(test_pool_create_1_2_7_16_threads),
        cmocka_unit_test(test_pool_no_spin_still_correct),
        cmocka_unit_test(test_pool_random_dags_1_thread),
        cmocka_unit_test(test_pool_random_dags_2_threads),
        cmocka_unit_test(test_pool_random_dags_7_threads),
        cmocka_unit_test(test_pool_random_dags_16_threads),
        cmocka_unit_test(test_pool_counters_sum_and_reset),
        cmocka_unit_test(test_pool_trace_writes_chrome_json),
        cmocka_unit_test(test_pool_trace_names_whole_and_escaped),
        cmocka_unit_test(test_pool_trace_env_var),
        cmocka_unit_test(test_pool_trace_off_and_unwritable),
        cmocka_unit_test(test_pool_idle_2_threads_uses_no_cpu),
        cmocka_unit_test(test_pool_idle_16_threads_uses_no_cpu),
        cmocka_unit_test(test_pool_idle_workers_count_their_parks),
        cmocka_unit_test(test_pool_wakes_parked_workers),
        cmocka_unit_test(test_pool_outside_threads_share_a_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
