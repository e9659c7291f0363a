/* tests/scheduler/test_parallel.c - nested parallelism: parallel-for, task groups, and
 * graphs run from inside tasks.
 *
 * parallel_for must call the body on exactly the chunks [k*grain, min(n,(k+1)*grain)),
 * each once, whatever the thread count (grain 0 = 1, n == 0 calls nothing), from an
 * outside thread, from a graph task and from inside another parallel_for; a failing body
 * gives WEFT_ERR_TASK_FAILED. Groups: spawned tasks that spawn more, recursive fib on 16
 * threads against the closed form, failures, reuse. A task may run another graph on the
 * same pool, but not the graph it belongs to (WEFT_ERR_BUSY). weft_pool_current_worker is
 * a slot of the pool in graph tasks, chunks and spawned tasks, and -1 outside (and for
 * another pool). Worker threads only record; main asserts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tests/util/tu_common.h"
#include "weft.h"

static weft_pool *make_pool(unsigned threads)
{
    weft_pool_options o = weft_pool_options_default();
    o.threads = threads;
    weft_pool *p = NULL;
    assert_int_equal(weft_pool_create(&o, &p), WEFT_OK);
    return p;
}

/* ---- parallel_for ------------------------------------------------------------------- */

typedef struct cover {
    size_t n, grain;             /* grain as the chunks must be cut (0 already made 1) */
    _Atomic uint32_t *hits;      /* per index */
    _Atomic uint64_t bad_chunks; /* chunk not of the promised shape */
    _Atomic uint64_t calls;
} cover;

static int cover_body(void *arg, size_t begin, size_t end)
{
    cover *c = arg;
    atomic_fetch_add(&c->calls, 1);
    size_t want_end = begin + c->grain < c->n ? begin + c->grain : c->n;
    if (begin % c->grain != 0 || end != want_end || begin >= end || end > c->n) {
        atomic_fetch_add(&c->bad_chunks, 1);
        return 0;
    }
    for (size_t i = begin; i < end; i++)
        atomic_fetch_add_explicit(&c->hits[i], 1, memory_order_relaxed);
    return 0;
}

/* Runs parallel_for(n, grain) from the calling context; returns the number of
 * violations, so it can be used from tasks too (no cmocka there). */
static size_t cover_run(weft_pool *pool, size_t n, size_t grain)
{
    cover c = {.n = n, .grain = grain ? grain : 1};
    c.hits = calloc(n + 1, sizeof *c.hits);
    if (!c.hits)
        return 1;
    size_t bad = 0;
    if (weft_parallel_for(pool, n, grain, cover_body, &c) != WEFT_OK)
        bad++;
    for (size_t i = 0; i < n; i++)
        bad += atomic_load(&c.hits[i]) != 1;
    bad += (size_t)atomic_load(&c.bad_chunks);
    size_t chunks = n == 0 ? 0 : (n + c.grain - 1) / c.grain;
    bad += atomic_load(&c.calls) != chunks;
    free((void *)c.hits);
    return bad;
}

static const size_t for_ns[] = {0, 1, 2, 3, 7, 64, 100, 1000, 4097, 100003};
static const size_t for_grains[] = {0, 1, 2, 3, 16, 64, 1000, 5000, 200000};

static void test_parallel_for_covers_every_index_once(void **state)
{
    (void)state;
    const unsigned threads[] = {1, 2, 7, 16};
    for (size_t t = 0; t < 4; t++) {
        weft_pool *pool = make_pool(threads[t]);
        for (size_t i = 0; i < sizeof for_ns / sizeof *for_ns; i++)
            for (size_t j = 0; j < sizeof for_grains / sizeof *for_grains; j++) {
                size_t n = for_ns[i], grain = for_grains[j];
                if (TU_SANITIZED && n > 5000 && grain < 16)
                    n = 5000; /* fewer chunks under sanitizers */
                size_t bad = cover_run(pool, n, grain);
                if (bad)
                    print_error("threads %u n %zu grain %zu: %zu violations\n", threads[t],
                                n, grain, bad);
                assert_int_equal(bad, 0);
            }
        weft_pool_destroy(pool);
    }
}

static int never_called(void *arg, size_t b, size_t e)
{
    (void)b;
    (void)e;
    atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

static void test_parallel_for_n_zero_calls_nothing(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(2);
    _Atomic int calls = 0;
    assert_int_equal(weft_parallel_for(pool, 0, 0, never_called, &calls), WEFT_OK);
    assert_int_equal(weft_parallel_for(pool, 0, 10, never_called, &calls), WEFT_OK);
    assert_int_equal(atomic_load(&calls), 0);
    weft_pool_destroy(pool);
}

typedef struct huge {
    size_t begins[4], ends[4];
    _Atomic int calls;
} huge;

static int huge_body(void *arg, size_t b, size_t e)
{
    huge *h = arg;
    int k = atomic_fetch_add(&h->calls, 1);
    if (k < 4) {
        h->begins[k] = b;
        h->ends[k] = e;
    }
    return 0;
}

/* Chunk ends near SIZE_MAX must not wrap: n = SIZE_MAX with a grain just over half of it
 * is two chunks, [0, g) and [g, SIZE_MAX). */
static void test_parallel_for_huge_range_does_not_overflow(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(2);
    const size_t g = SIZE_MAX / 2 + 1;
    huge h = {.calls = 0};
    assert_int_equal(weft_parallel_for(pool, SIZE_MAX, g, huge_body, &h), WEFT_OK);
    assert_int_equal(atomic_load(&h.calls), 2);
    int first = h.begins[0] == 0 ? 0 : 1;
    assert_int_equal(h.begins[first], 0);
    assert_int_equal(h.ends[first], g);
    assert_int_equal(h.begins[1 - first], g);
    assert_int_equal(h.ends[1 - first], SIZE_MAX);
    huge one = {.calls = 0};
    assert_int_equal(weft_parallel_for(pool, SIZE_MAX, SIZE_MAX, huge_body, &one), WEFT_OK);
    assert_int_equal(atomic_load(&one.calls), 1);
    assert_int_equal(one.begins[0], 0);
    assert_int_equal(one.ends[0], SIZE_MAX);
    weft_pool_destroy(pool);
}

typedef struct nested_for {
    weft_pool *pool;
    _Atomic uint64_t bad;
} nested_for;

/* A graph task that runs parallel_fors of several shapes. */
static int for_in_task(void *arg)
{
    nested_for *nf = arg;
    atomic_fetch_add(&nf->bad, cover_run(nf->pool, 777, 5));
    atomic_fetch_add(&nf->bad, cover_run(nf->pool, 3, 10)); /* n < grain */
    atomic_fetch_add(&nf->bad, cover_run(nf->pool, 50, 0));
    return 0;
}

/* A parallel_for body that runs a parallel_for per chunk. */
static int for_in_for(void *arg, size_t b, size_t e)
{
    nested_for *nf = arg;
    for (size_t i = b; i < e; i++)
        atomic_fetch_add(&nf->bad, cover_run(nf->pool, 100 + i, 7));
    return 0;
}

static void test_parallel_for_inside_task_and_inside_for(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(7);
    nested_for nf = {.pool = pool};
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (int i = 0; i < 16; i++)
        assert_int_equal(weft_graph_add_task(g, for_in_task, &nf, "for_in_task", NULL),
                         WEFT_OK);
    assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
    assert_int_equal(weft_parallel_for(pool, 40, 3, for_in_for, &nf), WEFT_OK);
    assert_int_equal(atomic_load(&nf.bad), 0);
    weft_graph_destroy(g);
    weft_pool_destroy(pool);
}

static int fail_at_1234(void *arg, size_t b, size_t e)
{
    _Atomic int *after = arg;
    if (b <= 1234 && 1234 < e)
        return 99;
    atomic_fetch_add(after, 1);
    return 0;
}

static void test_parallel_for_body_error_is_task_failed(void **state)
{
    (void)state;
    const unsigned threads[] = {1, 4};
    for (int t = 0; t < 2; t++) {
        weft_pool *pool = make_pool(threads[t]);
        _Atomic int ok_chunks = 0;
        assert_int_equal(weft_parallel_for(pool, 5000, 10, fail_at_1234, &ok_chunks),
                         WEFT_ERR_TASK_FAILED);
        /* the message gives the chunk and the value */
        if (!strstr(weft_last_error(), "99"))
            print_error("message without the value 99: \"%s\"\n", weft_last_error());
        assert_non_null(strstr(weft_last_error(), "99"));
        assert_true(atomic_load(&ok_chunks) < 500);
        /* the pool stays usable */
        assert_int_equal(cover_run(pool, 1000, 3), 0);
        weft_pool_destroy(pool);
    }
}

/* ---- groups ------------------------------------------------------------------------- */

typedef struct tree {
    weft_pool *pool;
    _Atomic uint64_t leaves, nodes, errors;
} tree;

typedef struct tree_arg {
    tree *t;
    int depth;
} tree_arg;

/* Spawns 3 children per level in its own group and waits for them. */
static int tree_node(void *arg)
{
    tree_arg *a = arg;
    tree *t = a->t;
    atomic_fetch_add(&t->nodes, 1);
    if (a->depth == 0) {
        atomic_fetch_add(&t->leaves, 1);
        return 0;
    }
    weft_group *g = NULL;
    if (weft_group_create(t->pool, &g) != WEFT_OK) {
        atomic_fetch_add(&t->errors, 1);
        return 1;
    }
    tree_arg kids[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = (tree_arg){.t = t, .depth = a->depth - 1};
        if (weft_group_spawn(g, tree_node, &kids[i]) != WEFT_OK)
            atomic_fetch_add(&t->errors, 1);
    }
    if (weft_group_wait(g) != WEFT_OK)
        atomic_fetch_add(&t->errors, 1);
    weft_group_destroy(g);
    return 0;
}

static void test_parallel_group_spawned_tasks_spawn_more(void **state)
{
    (void)state;
    const int depth = TU_SCALE(7, 6);
    uint64_t leaves = 1, nodes = 0;
    for (int d = 0; d <= depth; d++) {
        nodes += leaves;
        if (d < depth)
            leaves *= 3;
    }
    const unsigned threads[] = {1, 7, 16};
    for (int k = 0; k < 3; k++) {
        weft_pool *pool = make_pool(threads[k]);
        tree t = {.pool = pool};
        tree_arg root = {.t = &t, .depth = depth};
        /* from the outside thread (slot 0) ... */
        assert_int_equal(tree_node(&root), 0);
        /* ... and from a graph task */
        weft_graph *g = NULL;
        assert_int_equal(weft_graph_create(&g), WEFT_OK);
        assert_int_equal(weft_graph_add_task(g, tree_node, &root, "tree", NULL), WEFT_OK);
        assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
        weft_graph_destroy(g);
        assert_int_equal(atomic_load(&t.errors), 0);
        assert_int_equal(atomic_load(&t.leaves), 2 * leaves);
        assert_int_equal(atomic_load(&t.nodes), 2 * nodes);
        weft_pool_destroy(pool);
    }
}

typedef struct fib_arg {
    weft_pool *pool;
    int n;
    uint64_t result;
    int error;
} fib_arg;

static int fib_task(void *arg)
{
    fib_arg *a = arg;
    if (a->n < 2) {
        a->result = (uint64_t)a->n;
        return 0;
    }
    fib_arg x = {.pool = a->pool, .n = a->n - 1}, y = {.pool = a->pool, .n = a->n - 2};
    weft_group *g = NULL;
    if (weft_group_create(a->pool, &g) != WEFT_OK) {
        a->error = 1;
        return 1;
    }
    if (weft_group_spawn(g, fib_task, &x) != WEFT_OK)
        a->error = 1;
    fib_task(&y); /* the second half inline, as fib is usually written */
    if (weft_group_wait(g) != WEFT_OK)
        a->error = 1;
    weft_group_destroy(g);
    a->result = x.result + y.result;
    a->error |= x.error | y.error;
    return a->error;
}

static void test_parallel_fib_with_groups_on_16_threads(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(16);
    const int n = TU_SCALE(22, 18);
    uint64_t a = 0, b = 1;
    for (int i = 0; i < n; i++) {
        uint64_t c = a + b;
        a = b;
        b = c;
    }
    fib_arg root = {.pool = pool, .n = n};
    assert_int_equal(fib_task(&root), 0);
    assert_int_equal(root.error, 0);
    assert_int_equal(root.result, a);
    weft_pool_destroy(pool);
}

static int fail_odd(void *arg)
{
    _Atomic int *ran = arg;
    int k = atomic_fetch_add(ran, 1);
    return k % 2; /* every other task fails */
}

static int succeed(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

static void test_parallel_group_failure_and_reuse(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(4);
    weft_group *g = NULL;
    assert_int_equal(weft_group_create(pool, &g), WEFT_OK);
    _Atomic int ran = 0;
    for (int i = 0; i < 100; i++)
        assert_int_equal(weft_group_spawn(g, fail_odd, &ran), WEFT_OK);
    assert_int_equal(weft_group_wait(g), WEFT_ERR_TASK_FAILED);
    assert_int_equal(atomic_load(&ran), 100); /* the others still ran */
    /* reused: a clean round succeeds */
    atomic_store(&ran, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(weft_group_spawn(g, succeed, &ran), WEFT_OK);
    assert_int_equal(weft_group_wait(g), WEFT_OK);
    assert_int_equal(atomic_load(&ran), 100);
    /* waiting with nothing spawned returns at once */
    assert_int_equal(weft_group_wait(g), WEFT_OK);
    weft_group_destroy(g);
    weft_pool_destroy(pool);
}

/* ---- graphs inside tasks ------------------------------------------------------------ */

typedef struct inner {
    weft_pool *pool;
    weft_graph *graph; /* this task's own inner graph */
    weft_graph *outer; /* the graph the task belongs to */
    int chain[8];      /* written in order by the inner chain */
    _Atomic int pos;
    int status, busy_status;
} inner;

typedef struct link {
    inner *in;
    int k;
} link;

static int chain_step(void *arg)
{
    link *l = arg;
    l->in->chain[l->k] = atomic_fetch_add(&l->in->pos, 1);
    return 0;
}

static int run_inner(void *arg)
{
    inner *in = arg;
    in->status = weft_graph_run(in->pool, in->graph);
    in->busy_status = weft_graph_run(in->pool, in->outer); /* already running */
    return 0;
}

static void test_parallel_graph_run_inside_task(void **state)
{
    (void)state;
    enum { OUTER = 12 };
    weft_pool *pool = make_pool(4);
    weft_graph *outer = NULL;
    assert_int_equal(weft_graph_create(&outer), WEFT_OK);
    inner *ins = calloc(OUTER, sizeof *ins);
    link(*links)[8] = calloc(OUTER, sizeof *links);
    assert_true(ins && links);
    for (int i = 0; i < OUTER; i++) {
        ins[i].pool = pool;
        ins[i].outer = outer;
        ins[i].busy_status = -1;
        assert_int_equal(weft_graph_create(&ins[i].graph), WEFT_OK);
        for (int k = 0; k < 8; k++) {
            links[i][k] = (link){.in = &ins[i], .k = k};
            assert_int_equal(
                weft_graph_add_task(ins[i].graph, chain_step, &links[i][k], "step", NULL),
                WEFT_OK);
            if (k > 0)
                assert_int_equal(weft_graph_add_edge(ins[i].graph, (weft_task_id)(k - 1),
                                                     (weft_task_id)k),
                                 WEFT_OK);
        }
        assert_int_equal(weft_graph_add_task(outer, run_inner, &ins[i], "outer", NULL),
                         WEFT_OK);
    }
    assert_int_equal(weft_graph_run(pool, outer), WEFT_OK);
    for (int i = 0; i < OUTER; i++) {
        assert_int_equal(ins[i].status, WEFT_OK);
        assert_int_equal(ins[i].busy_status, WEFT_ERR_BUSY);
        for (int k = 0; k < 8; k++)
            assert_int_equal(ins[i].chain[k], k);
        weft_graph_destroy(ins[i].graph);
    }
    weft_graph_destroy(outer);
    free(ins);
    free(links);
    weft_pool_destroy(pool);
}

/* ---- the calling slot --------------------------------------------------------------- */

typedef struct where {
    weft_pool *pool, *other;
    _Atomic int bad;
    _Atomic uint32_t seen_mask; /* bit w set when slot w ran a task */
} where;

static int where_task(void *arg)
{
    where *w = arg;
    int me = weft_pool_current_worker(w->pool);
    if (me < 0 || (unsigned)me >= weft_pool_threads(w->pool))
        atomic_fetch_add(&w->bad, 1);
    else
        atomic_fetch_or(&w->seen_mask, 1u << me);
    if (weft_pool_current_worker(w->other) != -1)
        atomic_fetch_add(&w->bad, 1);
    for (volatile int i = 0; i < 20000; i++) {
    }
    return 0;
}

static int where_range(void *arg, size_t b, size_t e)
{
    (void)b;
    (void)e;
    return where_task(arg);
}

static void test_parallel_current_worker_in_every_kind_of_task(void **state)
{
    (void)state;
    weft_pool *pool = make_pool(7), *other = make_pool(2);
    where w = {.pool = pool, .other = other};
    assert_int_equal(weft_pool_current_worker(pool), -1);
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (int i = 0; i < 200; i++)
        assert_int_equal(weft_graph_add_task(g, where_task, &w, "where", NULL), WEFT_OK);
    assert_int_equal(weft_graph_run(pool, g), WEFT_OK);
    assert_int_equal(weft_pool_current_worker(pool), -1);
    assert_int_equal(weft_parallel_for(pool, 1000, 7, where_range, &w), WEFT_OK);
    weft_group *grp = NULL;
    assert_int_equal(weft_group_create(pool, &grp), WEFT_OK);
    for (int i = 0; i < 50; i++)
        assert_int_equal(weft_group_spawn(grp, where_task, &w), WEFT_OK);
    assert_int_equal(weft_group_wait(grp), WEFT_OK);
    weft_group_destroy(grp);
    assert_int_equal(weft_pool_current_worker(pool), -1);
    assert_int_equal(atomic_load(&w.bad), 0);
    assert_true(atomic_load(&w.seen_mask) != 0);
    assert_true((atomic_load(&w.seen_mask) & ~0x7fu) == 0);
    weft_graph_destroy(g);
    weft_pool_destroy(other);
    weft_pool_destroy(pool);
}

int main(void)
{
    tu_main_init(300);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parallel_for_covers_every_index_once),
        cmocka_unit_test(test_parallel_for_n_zero_calls_nothing),
        cmocka_unit_test(test_parallel_for_huge_range_does_not_overflow),
        cmocka_unit_test(test_parallel_for_inside_task_and_inside_for),
        cmocka_unit_test(test_parallel_for_body_error_is_task_failed),
        cmocka_unit_test(test_parallel_group_spawned_tasks_spawn_more),
        cmocka_unit_test(test_parallel_fib_with_groups_on_16_threads),
        cmocka_unit_test(test_parallel_group_failure_and_reuse),
        cmocka_unit_test(test_parallel_graph_run_inside_task),
        cmocka_unit_test(test_parallel_current_worker_in_every_kind_of_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
