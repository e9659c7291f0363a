/* tests/scheduler/test_topology.c - topology, placement plan, steal order, NUMA memory.
 *
 * Synthetic hwloc topologies make the multi-node logic testable on a one-node machine:
 * "pack:2 numa:2 core:4 pu:1" has 16 cores in 4 NUMA nodes (two per package). Slots are
 * placed compactly (slot i on core i mod cores) and grouped by NUMA node; nothing is bound.
 * The steal order of a slot lists its own group first, then the other groups, nearest
 * (same package) first, each other slot exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hwloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tests/util/tu_common.h"
#include "weft.h"

#define SYNTH "pack:2 numa:2 core:4 pu:1"

static weft_status make_pool(unsigned threads, const char *topo, weft_pool **out)
{
    weft_pool_options o = weft_pool_options_default();
    o.threads = threads;
    o.topology = topo;
    *out = NULL;
    return weft_pool_create(&o, out);
}

/* Checks the compact plan of SYNTH for a pool of `threads` slots. */
static void check_synth_plan(unsigned threads, unsigned groups)
{
    weft_pool *p;
    assert_int_equal(make_pool(threads, SYNTH, &p), WEFT_OK);
    assert_int_equal(weft_pool_threads(p), threads);
    assert_int_equal(weft_pool_is_this_system(p), 0);
    assert_int_equal(weft_pool_numa_groups(p), groups);
    for (unsigned w = 0; w < threads; w++) {
        weft_worker_info wi;
        assert_int_equal(weft_pool_worker_info(p, w, &wi), WEFT_OK);
        unsigned core = w % 16;
        assert_int_equal(wi.core, core);
        assert_int_equal(wi.pu, core);
        assert_int_equal(wi.numa_node, core / 4);
        assert_int_equal(wi.group, core / 4);
        assert_int_equal(wi.bound, 0);
    }
    weft_worker_info wi;
    assert_int_equal(weft_pool_worker_info(p, threads, &wi), WEFT_ERR_RANGE);
    weft_pool_destroy(p);
}

static void test_topology_synthetic_8_threads_2_groups(void **state)
{
    (void)state;
    check_synth_plan(8, 2);
}

static void test_topology_synthetic_16_threads_4_groups(void **state)
{
    (void)state;
    check_synth_plan(16, 4);
}

static void test_topology_more_slots_than_cores_wrap(void **state)
{
    (void)state;
    check_synth_plan(20, 4); /* slots 16..19 share cores 0..3 */
}

/* Own group first (as a set), then (check_sibling) the sibling group in the same package,
 * then the rest; every other slot exactly once, never the slot itself. */
static void check_steal_order(unsigned threads, int check_sibling)
{
    weft_pool *p;
    assert_int_equal(make_pool(threads, SYNTH, &p), WEFT_OK);
    unsigned *v = calloc(threads + 4, sizeof *v);
    unsigned *seen = calloc(threads, sizeof *seen);
    assert_true(v && seen);
    for (unsigned w = 0; w < threads; w++) {
        size_t count = 0;
        memset(seen, 0, threads * sizeof *seen);
        assert_int_equal(weft_pool_steal_order(p, w, v, threads + 4, &count), WEFT_OK);
        assert_int_equal(count, threads - 1);
        unsigned g = (w % 16) / 4;
        size_t pos = 0;
        /* tier 1: the other members of the own group; tier 2: the sibling group in the
         * same package (g ^ 1); then the other package */
        size_t own = 0, sib = 0;
        for (unsigned x = 0; x < threads; x++) {
            own += x != w && (x % 16) / 4 == g;
            sib += (x % 16) / 4 == (g ^ 1u);
        }
        int tiers_ok = 1;
        if (!check_sibling)
            sib = 0;
        for (; pos < own + sib && pos < count; pos++)
            tiers_ok &= (v[pos] % 16) / 4 == (pos < own ? g : (g ^ 1u));
        if (!tiers_ok) {
            print_error("threads %u, slot %u (group %u): steal order", threads, w, g);
            for (size_t k = 0; k < count; k++)
                print_error(" %u", v[k]);
            print_error("\n");
            free(v); /* nothing leaks past the failing assert */
            free(seen);
            weft_pool_destroy(p);
        }
        assert_true(tiers_ok);
        for (size_t k = 0; k < count; k++) {
            assert_true(v[k] < threads);
            assert_true(v[k] != w);
            seen[v[k]]++;
        }
        for (unsigned x = 0; x < threads; x++)
            assert_int_equal(seen[x], x == w ? 0 : 1);
        /* a short buffer gets a prefix and the full count */
        unsigned two[2] = {9999, 9999};
        count = 0;
        assert_int_equal(weft_pool_steal_order(p, w, two, 2, &count), WEFT_OK);
        assert_int_equal(count, threads - 1);
        assert_int_equal(two[0], v[0]);
        assert_int_equal(two[1], v[1]);
    }
    size_t count;
    assert_int_equal(weft_pool_steal_order(p, threads, v, threads, &count), WEFT_ERR_RANGE);
    free(v);
    free(seen);
    weft_pool_destroy(p);
}

static void test_topology_steal_order_own_group_first(void **state)
{
    (void)state;
    check_steal_order(8, 0);
    check_steal_order(16, 0);
}

static void test_topology_steal_order_nearest_group_next(void **state)
{
    (void)state;
    check_steal_order(8, 1);
    check_steal_order(16, 1);
}

static void test_topology_env_var_is_honoured(void **state)
{
    (void)state;
    weft_pool *p;
    setenv("WEFT_TOPOLOGY", "pack:1 numa:3 core:2 pu:1", 1);
    weft_status s = make_pool(6, NULL, &p);
    unsetenv("WEFT_TOPOLOGY");
    assert_int_equal(s, WEFT_OK);
    assert_int_equal(weft_pool_is_this_system(p), 0);
    assert_int_equal(weft_pool_numa_groups(p), 3);
    weft_worker_info wi;
    assert_int_equal(weft_pool_worker_info(p, 5, &wi), WEFT_OK);
    assert_int_equal(wi.numa_node, 2);
    assert_int_equal(wi.core, 5);
    weft_pool_destroy(p);

    /* the option wins over the variable */
    setenv("WEFT_TOPOLOGY", "pack:1 numa:3 core:2 pu:1", 1);
    s = make_pool(8, SYNTH, &p);
    unsetenv("WEFT_TOPOLOGY");
    assert_int_equal(s, WEFT_OK);
    assert_int_equal(weft_pool_numa_groups(p), 2);
    weft_pool_destroy(p);
}

static void test_topology_invalid_synthetic_is_topology_error(void **state)
{
    (void)state;
    weft_pool *p = NULL;
    assert_int_equal(make_pool(4, "pack:banana numa:-3", &p), WEFT_ERR_TOPOLOGY);
    assert_true(strlen(weft_last_error()) > 0);
    setenv("WEFT_TOPOLOGY", "this is not a topology", 1);
    weft_status s = make_pool(4, NULL, &p);
    unsetenv("WEFT_TOPOLOGY");
    assert_int_equal(s, WEFT_ERR_TOPOLOGY);
    assert_true(strlen(weft_last_error()) > 0);
}

static void test_topology_threads_0_is_one_per_core(void **state)
{
    (void)state;
    weft_pool *p;
    /* 3 cores of 2 PUs: cores, not PUs, are counted */
    assert_int_equal(make_pool(0, "pack:1 numa:1 core:3 pu:2", &p), WEFT_OK);
    assert_int_equal(weft_pool_threads(p), 3);
    weft_pool_destroy(p);

    hwloc_topology_t topo;
    assert_int_equal(hwloc_topology_init(&topo), 0);
    assert_int_equal(hwloc_topology_load(topo), 0);
    int cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    hwloc_topology_destroy(topo);
    assert_true(cores > 0);
    assert_int_equal(make_pool(0, NULL, &p), WEFT_OK);
    assert_int_equal(weft_pool_threads(p), (unsigned)cores);
    assert_int_equal(weft_pool_is_this_system(p), 1);
    weft_pool_destroy(p);
}

typedef struct count_arg {
    _Atomic uint64_t n;
} count_arg;

static int count_task(void *arg)
{
    atomic_fetch_add(&((count_arg *)arg)->n, 1);
    return 0;
}

static int count_range(void *arg, size_t b, size_t e)
{
    atomic_fetch_add(&((count_arg *)arg)->n, e - b);
    return 0;
}

static void test_topology_256_threads_on_any_machine(void **state)
{
    (void)state;
    weft_pool *p;
    assert_int_equal(make_pool(256, NULL, &p), WEFT_OK);
    assert_int_equal(weft_pool_threads(p), 256);
    weft_worker_info wi;
    assert_int_equal(weft_pool_worker_info(p, 255, &wi), WEFT_OK);
    count_arg c = {0};
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(weft_graph_add_task(g, count_task, &c, NULL, NULL), WEFT_OK);
    for (int i = 1; i < 1000; i += 2)
        assert_int_equal(weft_graph_add_edge(g, (weft_task_id)(i - 1), (weft_task_id)i),
                         WEFT_OK);
    assert_int_equal(weft_graph_run(p, g), WEFT_OK);
    assert_int_equal(weft_parallel_for(p, 10000, 7, count_range, &c), WEFT_OK);
    assert_int_equal(atomic_load(&c.n), 11000);
    weft_graph_destroy(g);
    weft_pool_destroy(p);
}

static void test_topology_thread_count_limits(void **state)
{
    (void)state;
    weft_pool *p = NULL;
    assert_int_equal(make_pool(WEFT_MAX_THREADS + 1, NULL, &p), WEFT_ERR_INVALID_ARG);
    assert_true(strlen(weft_last_error()) > 0);
    assert_int_equal(make_pool(100000, SYNTH, &p), WEFT_ERR_INVALID_ARG);
    assert_int_equal(make_pool(1, SYNTH, &p), WEFT_OK);
    assert_int_equal(weft_pool_numa_groups(p), 1);
    size_t count = 99;
    unsigned v[4];
    assert_int_equal(weft_pool_steal_order(p, 0, v, 4, &count), WEFT_OK);
    assert_int_equal(count, 0);
    weft_pool_destroy(p);
}

static void test_topology_bind_off_binds_nothing(void **state)
{
    (void)state;
    weft_pool_options o = weft_pool_options_default();
    o.threads = 3;
    o.bind = 0;
    weft_pool *p = NULL;
    assert_int_equal(weft_pool_create(&o, &p), WEFT_OK);
    for (unsigned w = 0; w < 3; w++) {
        weft_worker_info wi;
        assert_int_equal(weft_pool_worker_info(p, w, &wi), WEFT_OK);
        assert_int_equal(wi.bound, 0);
        assert_true(wi.group < weft_pool_numa_groups(p));
    }
    weft_pool_destroy(p);
}

/* ---- NUMA memory -------------------------------------------------------------------- */

static void check_alloc(weft_pool *p, int node, size_t size)
{
    void *m = NULL;
    weft_status s = weft_pool_alloc(p, size, node, &m);
    if (s != WEFT_OK)
        print_error("weft_pool_alloc(%zu, node %d): %s\n", size, node, weft_last_error());
    assert_int_equal(s, WEFT_OK);
    assert_non_null(m);
    assert_int_equal((uintptr_t)m % 64, 0);
    memset(m, 0xab, size);
    assert_int_equal(((unsigned char *)m)[size - 1], 0xab);
    weft_pool_free(p, m, size);
}

typedef struct alloc_in_task {
    weft_pool *pool;
    int failures;
} alloc_in_task;

static int alloc_task(void *arg)
{
    alloc_in_task *a = arg;
    void *m = NULL;
    if (weft_pool_alloc(a->pool, 4096, -1, &m) != WEFT_OK || ((uintptr_t)m % 64) != 0) {
        a->failures++;
        return 0;
    }
    memset(m, 1, 4096);
    weft_pool_free(a->pool, m, 4096);
    return 0;
}

static void test_topology_numa_alloc(void **state)
{
    (void)state;
    weft_pool *p;
    assert_int_equal(make_pool(2, NULL, &p), WEFT_OK);
    check_alloc(p, -1, 100);
    check_alloc(p, 0, 1 << 20);
    check_alloc(p, -1, 1);
    void *m = (void *)0x1;
    assert_true(weft_pool_alloc(p, 64, 4096, &m) != WEFT_OK);
    assert_true(weft_pool_alloc(p, 64, -2, &m) != WEFT_OK);
    weft_pool_destroy(p);

    /* synthetic: ordinary memory, nodes 0..3 exist, 4 does not */
    assert_int_equal(make_pool(16, SYNTH, &p), WEFT_OK);
    check_alloc(p, 3, 1000);
    check_alloc(p, -1, 64);
    assert_true(weft_pool_alloc(p, 64, 4, &m) != WEFT_OK);
    alloc_in_task a = {.pool = p};
    weft_graph *g = NULL;
    assert_int_equal(weft_graph_create(&g), WEFT_OK);
    assert_int_equal(weft_graph_add_task(g, alloc_task, &a, "alloc", NULL), WEFT_OK);
    assert_int_equal(weft_graph_run(p, g), WEFT_OK);
    assert_int_equal(a.failures, 0);
    weft_graph_destroy(g);
    weft_pool_destroy(p);
}

int main(void)
{
    tu_main_init(240);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topology_synthetic_8_threads_2_groups),
        cmocka_unit_test(test_topology_synthetic_16_threads_4_groups),
        cmocka_unit_test(test_topology_more_slots_than_cores_wrap),
        cmocka_unit_test(test_topology_steal_order_own_group_first),
        cmocka_unit_test(test_topology_steal_order_nearest_group_next),
        cmocka_unit_test(test_topology_env_var_is_honoured),
        cmocka_unit_test(test_topology_invalid_synthetic_is_topology_error),
        cmocka_unit_test(test_topology_threads_0_is_one_per_core),
        cmocka_unit_test(test_topology_256_threads_on_any_machine),
        cmocka_unit_test(test_topology_thread_count_limits),
        cmocka_unit_test(test_topology_bind_off_binds_nothing),
        cmocka_unit_test(test_topology_numa_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
