/* tests/graph/test_run.c - running graphs: dataflow results, ordering, scale, reuse.
 *
 * The central check: random programs whose tasks really read and write the bytes (and
 * handle cells) they declare give, run in parallel on 7 threads, exactly the results of
 * running the tasks one after another in id order; the inferred dependencies are what
 * makes that true, in the default order and in the global-priority order (the runs of
 * one graph alternate between them). Also: critical-path-first choice among ready
 * successors and the global-priority order (1 thread, deterministic), a fan-out large
 * enough to grow a deque, a long chain, empty graphs, reuse and change between runs,
 * affinity hints, and threads == 1 on the caller.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tests/util/tu_common.h"
#include "weft.h"

static weft_pool *make_pool(unsigned threads, const char *topo)
{
    weft_pool_options o = weft_pool_options_default();
    o.threads = threads;
    o.topology = topo;
    weft_pool *p = NULL;
    assert_int_equal(weft_pool_create(&o, &p), WEFT_OK);
    return p;
}

/* ---- random dataflow programs ------------------------------------------------------- */

enum { ARENA = 256, NH = 8, MAXT = 60 };

typedef struct program {
    size_t n;
    unsigned char mode[MAXT][ARENA + NH]; /* merged per-byte / per-handle modes */
} program;

typedef struct machine {
    const program *p;
    unsigned char *bytes; /* ARENA bytes */
    uint64_t *cells;      /* NH handle cells */
    uint64_t out[MAXT];   /* each task's hash of what it read */
} machine;

typedef struct step {
    machine *m;
    uint32_t t;
} step;

/* Reads every declared-readable byte and cell, then writes every writable one with a
 * value that depends on what was read: any missing dependency changes some result. */
static int step_fn(void *arg)
{
    step *s = arg;
    const unsigned char *mode = s->m->p->mode[s->t];
    uint64_t h = tu_mix(s->t + 1);
    for (size_t b = 0; b < ARENA + NH; b++)
        if (mode[b] & WEFT_READ)
            h = tu_mix(h ^ (b < ARENA ? s->m->bytes[b] : s->m->cells[b - ARENA]) ^ (b << 40));
    for (size_t b = 0; b < ARENA + NH; b++)
        if (mode[b] & WEFT_WRITE) {
            if (b < ARENA)
                s->m->bytes[b] = (unsigned char)(h >> (b % 56));
            else
                s->m->cells[b - ARENA] = h + b;
        }
    s->m->out[s->t] = h;
    return 0;
}

static void reset_machine(machine *m)
{
    for (size_t b = 0; b < ARENA; b++)
        m->bytes[b] = (unsigned char)(b * 7);
    for (size_t h = 0; h < NH; h++)
        m->cells[h] = h * 1000;
    memset(m->out, 0, sizeof m->out);
}

static void test_run_dataflow_matches_sequential(void **state)
{
    (void)state;
    const int programs = 200;
    weft_pool *pool = make_pool(7, NULL);
    unsigned char *bytes = malloc(ARENA);
    program *p = malloc(sizeof *p);
    uint64_t cells[NH];
    assert_true(bytes && p);
    static const int modes[3] = {WEFT_READ, WEFT_WRITE, WEFT_READWRITE};
    tu_rng r;
    tu_rng_seed(&r, 99);
    for (int iter = 0; iter < programs; iter++) {
        memset(p, 0, sizeof *p);
        p->n = 1 + (size_t)tu_rng_below(&r, MAXT);
        weft_graph *g = NULL;
        assert_int_equal(weft_graph_create(&g), WEFT_OK);
        machine m = {.p = p, .bytes = bytes, .cells = cells};
        step steps[MAXT];
        for (size_t t = 0; t < p->n; t++) {
            steps[t] = (step){.m = &m, .t = (uint32_t)t};
            assert_int_equal(weft_graph_add_task(g, step_fn, &steps[t], "step", NULL), WEFT_OK);
            size_t nacc = (size_t)tu_rng_below(&r, 5);
            for (size_t k = 0; k < nacc; k++) {
                int md = modes[tu_rng_below(&r, 3)];
                if (tu_rng_below(&r, 5) == 0) {
                    unsigned h = (unsigned)tu_rng_below(&r, NH);
                    assert_int_equal(weft_graph_access_handle(g, (weft_task_id)t, md, h),
                                     WEFT_OK);
                    p->mode[t][ARENA + h] |= (unsigned char)md;
                } else {
                    unsigned off = (unsigned)tu_rng_below(&r, ARENA);
                    unsigned len = 1 + (unsigned)tu_rng_below(&r, ARENA - off < 40 ? ARENA - off : 40);
                    assert_int_equal(weft_graph_access(g, (weft_task_id)t, md, bytes + off, len),
                                     WEFT_OK);
                    for (unsigned b = off; b < off + len; b++)
                        p->mode[t][b] |= (unsigned char)md;
                }
            }
        }
        /* sequential reference in id order, then three parallel runs from the same data */
        unsigned char ref_bytes[ARENA];
        uint64_t ref_cells[NH], ref_out[MAXT];
        reset_machine(&m);
        for (size_t t = 0; t < p->n; t++)
            step_fn(&steps[t]);
        memcpy(ref_bytes, bytes, ARENA);
        memcpy(ref_cells, cells, sizeof cells);
        memcpy(ref_out, m.out, sizeof ref_out);
        for (int rep = 0; rep < 3; rep++) { /* default, global priority, default again */
            reset_machine(&m);
            weft_run_options ro = {.global_priority = rep == 1};
            assert_int_equal(weft_graph_run_ex(pool, g, &ro), WEFT_OK);
            int same = memcmp(bytes, ref_bytes, ARENA) == 0 &&
                       memcmp(cells, ref_cells, sizeof cells) == 0 &&
                       memcmp(m.out, ref_out, p->n * sizeof *ref_out) == 0;
            if (!same)
                print_error("program %d (%zu tasks), run %d: result differs from sequential\n",
                            iter, p->n, rep);
            assert_true(same);
        }
        weft_graph_destroy(g);
    }
    free(bytes);
    free(p);
    weft_pool_destroy(pool);
}

/* ---- critical path first ------------------------------------------------------------ */

typedef struct trace {
    weft_task_id order[16];
    _Atomic int len;
} trace;

typedef struct tr_arg {
    trace *tr;
    weft_task_id id;
} tr_arg;

static int record(void *arg)
{
    tr_arg *a = arg;
    int k = atomic_fetch_add(&a->tr->len, 1);
    if (k < 16)
        a->tr->order[k] = a->id;
    return 0;
}

/* One thread: source 0 with successors 1 (cheap) and 2 (costly, or heading a longer
 * chain). The worker keeps the successor on the longest remaining path, so 2 runs right
 * after 0 although 1 has the lower id. */
static void critical_case(int by_cost)
{
    weft_pool *pool = make_pool(1, NULL);
    trace tr = {.len = 0};
    tr_arg args[5];
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    size_t n = by_cost ? 3 : 5;
    for (size_t i = 0; i < n; i++) {
        args[i] = (tr_arg){.tr = &tr, .id = (weft_task_id)i};
        assert_int_equal(weft_graph_add_task(g, record, &args[i], NULL, NULL), WEFT_OK);
    }
    assert_int_equal(weft_graph_add_edge(g, 0, 1), WEFT_OK);
    assert_int_equal(weft_graph_add_edge(g, 0, 2), WEFT_OK);
    if (by_cost) {
        assert_int_equal(weft_graph_set_cost(g, 2, 50.0), WEFT_OK);
    } else {
        assert_int_equal(weft_graph_add_edge(g, 2, 3), WEFT_OK);
        assert_int_equal(weft_graph_add_edge(g, 3, 4), WEFT_OK);
    }
    for (int rep = 0; rep < 3; rep++) {
        atomic_store(&tr.len, 0);
        assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
        assert_int_equal(atomic_load(&tr.len), (int)n);
        assert_int_equal(tr.order[0], 0);
        assert_int_equal(tr.order[1], 2);
    }
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

static void test_run_critical_path_first_by_cost(void **state)
{
    (void)state;
    critical_case(1);
}

static void test_run_critical_path_first_by_length(void **state)
{
    (void)state;
    critical_case(0);
}

/* One thread: source 0 (cost 2) with successors 1 (cost 1) and 2 (cost c2), and an
 * independent source 3 (cost 3.5). Default order: 0, the kept successor 2, the newest
 * pushed task 1, then 3. Global priority order: 0 (priority 2 + c2 > 3.5) first; then
 * with c2 = 3 the worker keeps its successor 2 (3 >= 0.7 * 3.5) and runs 3 before 1;
 * with c2 = 2 the queued 3 is more urgent by more than 1 / 0.7 and runs before 2. */
static void test_run_global_priority_order(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(1, NULL);
    for (int variant = 0; variant < 2; variant++) {
        trace tr = {.len = 0};
        tr_arg args[4];
        weft_graph *g = NULL;
        assert_int_equal(weft_graph_create(&g), WEFT_OK);
        const double cost[4] = {2, 1, variant ? 2 : 3, 3.5};
        for (size_t i = 0; i < 4; i++) {
            args[i] = (tr_arg){.tr = &tr, .id = (weft_task_id)i};
            assert_int_equal(weft_graph_add_task(g, record, &args[i], NULL, NULL), WEFT_OK);
            assert_int_equal(weft_graph_set_cost(g, (weft_task_id)i, cost[i]), WEFT_OK);
        }
        assert_int_equal(weft_graph_add_edge(g, 0, 1), WEFT_OK);
        assert_int_equal(weft_graph_add_edge(g, 0, 2), WEFT_OK);
        static const weft_task_id local[4] = {0, 2, 1, 3};
        static const weft_task_id global[2][4] = {{0, 2, 3, 1}, {0, 3, 2, 1}};
        for (int rep = 0; rep < 4; rep++) { /* alternating: each run resets what it changes */
            weft_run_options ro = {.global_priority = rep % 2};
            atomic_store(&tr.len, 0);
            assert_int_equal(weft_graph_run_ex(pool, g, &ro), WEFT_OK);
            assert_int_equal(atomic_load(&tr.len), 4);
            for (int k = 0; k < 4; k++)
                assert_int_equal(tr.order[k], rep % 2 ? global[variant][k] : local[k]);
        }
        weft_graph_destroy(g);
    }
    weft_pool_destroy(pool);
}

/* ---- scale -------------------------------------------------------------------------- */

static int count_task(void *arg)
{
    atomic_fetch_add((_Atomic uint64_t *)arg, 1);
    return 0;
}

static void test_run_large_fanout(void **state)
{
    (void)state;
    const size_t n = TU_SCALE(100000, 50000);
    weft_pool *pool = make_pool(4, NULL);
    _Atomic uint64_t ran = 0;
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    assert_int_equal(weft_graph_reserve(g, n + 2, 2 * n), WEFT_OK);
    assert_int_equal(weft_graph_add_task(g, count_task, (void *)&ran, "src", NULL), WEFT_OK);
    assert_int_equal(weft_graph_add_task(g, count_task, (void *)&ran, "sink", NULL), WEFT_OK);
    for (size_t i = 0; i < n; i++) {
        weft_task_id t;
        assert_int_equal(weft_graph_add_task(g, count_task, (void *)&ran, NULL, &t), WEFT_OK);
        assert_int_equal(weft_graph_add_edge(g, 0, t), WEFT_OK);
        assert_int_equal(weft_graph_add_edge(g, t, 1), WEFT_OK);
    }
    for (int rep = 0; rep < 2; rep++) {
        atomic_store(&ran, 0);
        assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
        assert_int_equal(atomic_load(&ran), n + 2);
    }
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

typedef struct chain_ctx {
    uint64_t next; /* plain: the chain's edges order every access */
    uint64_t bad;
} chain_ctx;

typedef struct chain_arg {
    chain_ctx *c;
    uint64_t id;
} chain_arg;

static int chain_task(void *arg)
{
    chain_arg *a = arg;
    if (a->c->next != a->id)
        a->c->bad++;
    a->c->next = a->id + 1;
    return 0;
}

static void test_run_long_chain(void **state)
{
    (void)state;
    const size_t n = TU_SCALE(200000, 100000);
    weft_pool *pool = make_pool(3, NULL);
    chain_ctx c = {0};
    chain_arg *args = calloc(n, sizeof *args);
    assert_non_null(args);
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (size_t i = 0; i < n; i++) {
        args[i] = (chain_arg){.c = &c, .id = i};
        assert_int_equal(weft_graph_add_task(g, chain_task, &args[i], NULL, NULL), WEFT_OK);
        if (i)
            assert_int_equal(weft_graph_add_edge(g, (weft_task_id)(i - 1), (weft_task_id)i),
                             WEFT_OK);
    }
    weft_graph_stats st;
    assert_int_equal(weft_graph_analyze(g, &st), WEFT_OK);
    assert_int_equal(st.levels, n);
    assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
    assert_int_equal(c.next, n);
    assert_int_equal(c.bad, 0);
    /* a graph is not tied to a pool: the same graph on another pool */
    weft_pool *other = make_pool(1, NULL);
    c.next = 0;
    assert_int_equal(weft_graph_run(other, g), WEFT_OK);
    assert_int_equal(c.next, n);
    assert_int_equal(c.bad, 0);
    weft_pool_destroy(other);
    weft_graph_destroy(g);
    free(args);
    weft_pool_destroy(pool);
}

static void test_run_empty_graph_and_rerun_after_change(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(2, NULL);
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
    assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
    trace tr = {.len = 0};
    tr_arg args[4];
    for (int i = 0; i < 2; i++) {
        args[i] = (tr_arg){.tr = &tr, .id = (weft_task_id)i};
        assert_int_equal(weft_graph_add_task(g, record, &args[i], NULL, NULL), WEFT_OK);
    }
    assert_int_equal(weft_graph_add_edge(g, 1, 0), WEFT_OK);
    assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
    assert_int_equal(atomic_load(&tr.len), 2);
    assert_int_equal(tr.order[0], 1);
    /* add a task that must come first, and run again */
    args[2] = (tr_arg){.tr = &tr, .id = 2};
    assert_int_equal(weft_graph_add_task(g, record, &args[2], NULL, NULL), WEFT_OK);
    assert_int_equal(weft_graph_add_edge(g, 2, 1), WEFT_OK);
    atomic_store(&tr.len, 0);
    assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
    assert_int_equal(atomic_load(&tr.len), 3);
    assert_int_equal(tr.order[0], 2);
    assert_int_equal(tr.order[1], 1);
    assert_int_equal(tr.order[2], 0);
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

/* ---- affinity, caller slot ---------------------------------------------------------- */

typedef struct aff {
    weft_pool *pool;
    _Atomic uint32_t on_slot[16];
} aff;

static int aff_task(void *arg)
{
    aff *a = arg;
    int w = weft_pool_current_worker(a->pool);
    if (w >= 0 && w < 16)
        atomic_fetch_add(&a->on_slot[w], 1);
    uint64_t end = tu_now_ns() + 200000; /* 0.2 ms: long enough for the hint to matter */
    while (tu_now_ns() < end) {
    }
    return 0;
}

static void test_run_affinity_hints(void **state)
{
    (void)state;
    /* 8 slots in 2 NUMA groups (slots 4..7 in group 1) */
    weft_pool *pool = make_pool(8, "pack:2 numa:2 core:4 pu:1");
    aff a = {.pool = pool};
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (int i = 0; i < 12; i++) {
        weft_task_id t;
        assert_int_equal(weft_graph_add_task(g, aff_task, &a, "aff", &t), WEFT_OK);
        if (i < 4)
            assert_int_equal(weft_graph_set_affinity(g, t, WEFT_AFFINITY_WORKER, 3), WEFT_OK);
        else if (i < 8)
            assert_int_equal(weft_graph_set_affinity(g, t, WEFT_AFFINITY_NUMA, 1), WEFT_OK);
        else /* indexes the pool does not have are ignored at run time */
            assert_int_equal(weft_graph_set_affinity(g, t, i % 2 ? WEFT_AFFINITY_WORKER
                                                                 : WEFT_AFFINITY_NUMA,
                                                     1000),
                             WEFT_OK);
    }
    for (int rep = 0; rep < 5; rep++) { /* hinted tasks bypass the global queue */
        weft_run_options ro = {.global_priority = rep % 2};
        assert_int_equal(weft_graph_run_ex(pool, g, &ro), WEFT_OK);
    }
    uint32_t total = 0, group1 = 0;
    for (int w = 0; w < 8; w++) {
        total += atomic_load(&a.on_slot[w]);
        if (w >= 4)
            group1 += atomic_load(&a.on_slot[w]);
    }
    print_message("affinity: %u of 20 on slot 3, %u of 60 in group 1 (20 hinted there)\n",
                  atomic_load(&a.on_slot[3]), group1);
    /* Every task ran once, on a slot of the pool. Where hinted tasks run is not asserted:
     * on 2 cores with 8 slots the OS decides which woken slot gets a core first, and the
     * hint is only honoured "when that slot is not overloaded". */
    assert_int_equal(total, 60);
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

typedef struct self_check {
    pthread_t caller;
    _Atomic int elsewhere;
} self_check;

static int on_caller(void *arg)
{
    self_check *s = arg;
    if (!pthread_equal(pthread_self(), s->caller))
        atomic_fetch_add(&s->elsewhere, 1);
    return 0;
}

static void test_run_one_thread_runs_on_caller(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(1, NULL);
    self_check s = {.caller = pthread_self()};
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (int i = 0; i < 100; i++)
        assert_int_equal(weft_graph_add_task(g, on_caller, &s, NULL, NULL), WEFT_OK);
    for (int i = 1; i < 100; i += 3)
        assert_int_equal(weft_graph_add_edge(g, (weft_task_id)(i - 1), (weft_task_id)i), WEFT_OK);
    assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
    assert_int_equal(atomic_load(&s.elsewhere), 0);
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

int main(void)
{
    tu_main_init(240);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_dataflow_matches_sequential),
        cmocka_unit_test(test_run_critical_path_first_by_cost),
        cmocka_unit_test(test_run_critical_path_first_by_length),
        cmocka_unit_test(test_run_global_priority_order),
        cmocka_unit_test(test_run_large_fanout),
        cmocka_unit_test(test_run_long_chain),
        cmocka_unit_test(test_run_empty_graph_and_rerun_after_change),
        cmocka_unit_test(test_run_affinity_hints),
        cmocka_unit_test(test_run_one_thread_runs_on_caller),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
