/* tests/bench/test_shapes.c - the benchmark's graphs, kernel and verification.
 *
 * Checks bench/shapes.c against shared/bench/SHAPES.md: every row of the fingerprint
 * table (n, m, depth, fingerprint), the kernel check values and the worked example of
 * random(10, 4, 64, 42). Then the verification run of the benchmark (instrumented bodies:
 * each task exactly once, every edge ordered) with accumulator sums, for weft on every
 * shape at 1, 2 and 16 threads (one-shot and run-only), for the OpenMP and static
 * baselines, and that the checks do catch a wrong run. Task bodies run on worker threads
 * and only record; every assertion is made on the main thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/body.h"
#include "bench/engines.h"
#include "bench/harness.h"
#include "bench/options.h"
#include "bench/run_tensor.h"
#include "bench/shapes.h"
#include "tests/util/tu_bench.h"
#include "tests/util/tu_common.h"
#include "weft.h"

/* libgomp is not built with ThreadSanitizer, so TSan cannot see its synchronisation and
 * reports false races on everything its tasks touch: the OpenMP engine is left out of
 * TSan builds (its verification still runs in the other builds). */
#if defined(__SANITIZE_THREAD__)
#define TEST_OMP 0
#else
#define TEST_OMP 1
#endif

/* LeakSanitizer: libgomp sometimes keeps the dependence hash table of a worker's implicit
 * task (4 KiB per table, allocated in gomp_task_handle_depend) past the end of the
 * program; it is libgomp's memory, not ours. Suppressed through the documented hook. */
#if defined(__SANITIZE_ADDRESS__)
const char *__lsan_default_suppressions(void);
__attribute__((visibility("default"))) const char *__lsan_default_suppressions(void)
{
    return "leak:libgomp.so\n";
}
#endif

typedef struct fp_row {
    bench_shape shape;
    uint64_t size;
    size_t n, m, depth;
    uint64_t fingerprint;
    int big; /* one of the three 10^6-task graphs (skipped under sanitizers) */
} fp_row;

/* SHAPES.md section 2, "Graph fingerprint", every row. */
static const fp_row fp_rows[] = {
    {BENCH_SHAPE_CHAIN, 1000000, 1000000, 999999, 1000000, 0xeaf0bcdad33c2ca2ull, 1},
    {BENCH_SHAPE_CHAIN, 250000, 250000, 249999, 250000, 0xd5b669cc6b9f25b2ull, 0},
    {BENCH_SHAPE_CHAIN, 50000, 50000, 49999, 50000, 0x5c4a15985284af72ull, 0},
    {BENCH_SHAPE_FANOUT, 1000000, 1000002, 2000000, 3, 0x8472677ed8a69be5ull, 1},
    {BENCH_SHAPE_FANOUT, 250000, 250002, 500000, 3, 0x9db5c9008a9a5b55ull, 0},
    {BENCH_SHAPE_FANOUT, 50000, 50002, 100000, 3, 0xa097d488a15f9595ull, 0},
    {BENCH_SHAPE_TREE, 20, 1048575, 1048574, 20, 0x6ea4e7717778950cull, 0},
    {BENCH_SHAPE_TREE, 18, 262143, 262142, 18, 0x8de8ae5a1730950cull, 0},
    {BENCH_SHAPE_TREE, 16, 65535, 65534, 16, 0xea7cc870673e950cull, 0},
    {BENCH_SHAPE_WAVEFRONT, 1024, 1048576, 2095104, 2047, 0x7eca0430a9f5864dull, 0},
    {BENCH_SHAPE_WAVEFRONT, 512, 262144, 523264, 1023, 0x247005c4db4c324dull, 0},
    {BENCH_SHAPE_WAVEFRONT, 224, 50176, 99904, 447, 0x78dff64e3724044dull, 0},
    {BENCH_SHAPE_RANDOM, 1000000, 1000000, 2461001, 75140, 0x174bb0cce075844bull, 1},
    {BENCH_SHAPE_RANDOM, 250000, 250000, 615746, 18788, 0x6ed9184ab3cf6df9ull, 0},
    {BENCH_SHAPE_RANDOM, 50000, 50000, 123281, 3750, 0x8bd0b7b7d827087dull, 0},
    {BENCH_SHAPE_CHAIN, 5, 5, 4, 5, 0x2205104070278fc1ull, 0},
    {BENCH_SHAPE_TREE, 3, 7, 6, 3, 0xcfb0672a9c01637cull, 0},
    {BENCH_SHAPE_WAVEFRONT, 3, 9, 12, 5, 0x15c4e6b71729e035ull, 0},
    {BENCH_SHAPE_RANDOM, 10, 10, 18, 5, 0x8427221c19fede0full, 0},
    {BENCH_SHAPE_RANDOM, 1000, 1000, 2462, 87, 0xcfdab641bfbb52dcull, 0},
};

static void test_bench_fingerprint_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fp_rows / sizeof fp_rows[0]; i++) {
        const fp_row *r = &fp_rows[i];
        if (r->big && TU_SANITIZED)
            continue;
        bench_graph g;
        assert_int_equal(bench_graph_make(r->shape, r->size, &g), 0);
        assert_int_equal(g.n, r->n);
        assert_int_equal(g.m, r->m);
        assert_int_equal(g.depth, r->depth);
        assert_int_equal(bench_graph_fingerprint(&g), r->fingerprint);
        assert_int_equal(bench_shape_tasks(r->shape, r->size, NULL), r->n);
        /* Every predecessor list is ascending, duplicate-free and below its task. */
        for (size_t v = 0; v < g.n; v++) {
            for (uint64_t e = g.off[v]; e < g.off[v + 1]; e++) {
                assert_true(g.preds[e] < v);
                if (e > g.off[v])
                    assert_true(g.preds[e - 1] < g.preds[e]);
            }
        }
        bench_graph_free(&g);
    }
}

static void test_bench_benchmark_sizes(void **state)
{
    (void)state;
    /* SHAPES.md section 4 and the small sizes of `make demo`. */
    assert_int_equal(bench_shape_size(BENCH_SHAPE_CHAIN, BENCH_GRAIN_EMPTY, 0), 1000000);
    assert_int_equal(bench_shape_size(BENCH_SHAPE_TREE, BENCH_GRAIN_1US, 0), 18);
    assert_int_equal(bench_shape_size(BENCH_SHAPE_WAVEFRONT, BENCH_GRAIN_10US, 0), 224);
    assert_int_equal(bench_shape_size(BENCH_SHAPE_RANDOM, BENCH_GRAIN_10US, 0), 50000);
    assert_int_equal(bench_shape_size(BENCH_SHAPE_FANOUT, BENCH_GRAIN_10US, 1), 5000);
    assert_int_equal(bench_shape_size(BENCH_SHAPE_TREE, BENCH_GRAIN_10US, 1), 13);
    assert_int_equal(bench_shape_size(BENCH_SHAPE_WAVEFRONT, BENCH_GRAIN_10US, 1), 74);
    assert_int_equal(bench_grain_iterations(BENCH_GRAIN_EMPTY), 0);
    assert_int_equal(bench_grain_iterations(BENCH_GRAIN_1US), 850);
    assert_int_equal(bench_grain_iterations(BENCH_GRAIN_10US), 8500);
    assert_int_equal(bench_shape_tasks(BENCH_SHAPE_TREE, 32, NULL), 0);
    assert_int_equal(bench_shape_tasks(BENCH_SHAPE_CHAIN, 0, NULL), 0);
    assert_int_equal(bench_shape_tasks(BENCH_SHAPE_WAVEFRONT, 70000, NULL), 0);
}

static void test_bench_kernel_check_values(void **state)
{
    (void)state;
    assert_int_equal(bench_kernel(0, 0), 0x9e3779b97f4a7c15ull);
    assert_int_equal(bench_kernel(1, 850), 0xc8a84c0a6ffb7dbaull);
    assert_int_equal(bench_kernel(7, 8500), 0x429c0a321578b23eull);
    assert_int_equal(bench_expected_sum(1000, 850), 0x67aeac72b0b2c1bcull);
}

static void test_bench_random_worked_example(void **state)
{
    (void)state;
    static const uint32_t preds[] = {0, 1, 0, 1, 0, 1, 0, 3, 4, 2, 4, 5, 1, 3, 0, 1, 3, 4};
    static const uint64_t off[] = {0, 0, 1, 2, 4, 6, 9, 12, 14, 15, 18};
    bench_graph g;
    assert_int_equal(bench_graph_make_random(10, 4, 64, 42, &g), 0);
    assert_int_equal(g.n, 10);
    assert_int_equal(g.m, 18);
    for (size_t v = 0; v <= 10; v++)
        assert_int_equal(g.off[v], off[v]);
    for (size_t e = 0; e < 18; e++)
        assert_int_equal(g.preds[e], preds[e]);
    bench_graph_free(&g);
}

/* Small sizes of the verification runs: chain 2000, fanout 2000, tree 10, wavefront 40,
 * random 5000. */
static const struct {
    bench_shape shape;
    uint64_t size;
} small_graphs[] = {
    {BENCH_SHAPE_CHAIN, 2000},   {BENCH_SHAPE_FANOUT, 2000}, {BENCH_SHAPE_TREE, 10},
    {BENCH_SHAPE_WAVEFRONT, 40}, {BENCH_SHAPE_RANDOM, 5000},
};

#define TEST_W 850u

/* The benchmark's weft protocol for one graph and pool: analyzer agreement, verification
 * one-shot (instrumented), a plain one-shot and two run-only runs, all with checked
 * accumulator sums. */
static void weft_protocol(const bench_graph *g, weft_pool *pool, uint64_t expected)
{
    weft_graph_stats st;
    assert_int_equal(bench_weft_analyze(g, &st), 0);
    assert_int_equal(st.edges, g->m);
    assert_int_equal(st.levels, g->depth);

    assert_int_equal(bench_verify_begin(g->n), 0);
    bench_accum_reset();
    assert_int_equal(bench_weft_oneshot(pool, g, BENCH_BODY_VERIFY, NULL), 0);
    assert_int_equal(bench_accum_check(g->n, expected, "weft verification"), 0);
    assert_int_equal(bench_verify_check(g, 1, "weft verification"), 0);
    bench_verify_end();

    bench_phases ph;
    bench_accum_reset();
    assert_int_equal(bench_weft_oneshot(pool, g, BENCH_BODY_PLAIN, &ph), 0);
    assert_int_equal(bench_accum_check(g->n, expected, "weft one-shot"), 0);
    assert_true(ph.build_s >= 0 && ph.run_s >= 0 && ph.destroy_s >= 0);

    weft_graph *wg = NULL;
    assert_int_equal(bench_weft_build(g, BENCH_BODY_PLAIN, &wg), 0);
    for (int run = 0; run < 2; run++) {
        bench_accum_reset();
        assert_int_equal(bench_weft_run(pool, wg), 0);
        assert_int_equal(bench_accum_check(g->n, expected, "weft run-only"), 0);
    }
    weft_graph_destroy(wg);
}

static void weft_verification(size_t which)
{
    static const unsigned threads[] = {1, 2, 16};
    bench_graph g;
    assert_int_equal(bench_graph_make(small_graphs[which].shape, small_graphs[which].size, &g),
                     0);
    bench_body_setup(TEST_W);
    uint64_t expected = bench_expected_sum(g.n, TEST_W);
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        weft_pool_options o = weft_pool_options_default();
        o.threads = threads[t];
        weft_pool *pool = NULL;
        assert_int_equal(weft_pool_create(&o, &pool), WEFT_OK);
        weft_protocol(&g, pool, expected);
        weft_pool_destroy(pool);
    }
    bench_graph_free(&g);
}

static void test_bench_weft_verification_chain(void **state)
{
    (void)state;
    weft_verification(0);
}

static void test_bench_weft_verification_fanout(void **state)
{
    (void)state;
    weft_verification(1);
}

static void test_bench_weft_verification_tree(void **state)
{
    (void)state;
    weft_verification(2);
}

static void test_bench_weft_verification_wavefront(void **state)
{
    (void)state;
    weft_verification(3);
}

static void test_bench_weft_verification_random(void **state)
{
    (void)state;
    weft_verification(4);
}

static void test_bench_baselines_verification(void **state)
{
    (void)state;
    bench_body_setup(TEST_W);
    for (size_t i = 0; i < sizeof small_graphs / sizeof small_graphs[0]; i++) {
        bench_graph g;
        assert_int_equal(bench_graph_make(small_graphs[i].shape, small_graphs[i].size, &g), 0);
        uint64_t expected = bench_expected_sum(g.n, TEST_W);
        for (unsigned t = 1; t <= 2; t++) {
            if (TEST_OMP) {
                assert_int_equal(bench_verify_begin(g.n), 0);
                bench_accum_reset();
                assert_int_equal(bench_omp_run(&g, t, BENCH_BODY_VERIFY), 0);
                assert_int_equal(bench_accum_check(g.n, expected, "omp"), 0);
                assert_int_equal(bench_verify_check(&g, 1, "omp"), 0);
            }
            /* static ignores edges: only "every task exactly once" holds. */
            assert_int_equal(bench_verify_begin(g.n), 0);
            bench_accum_reset();
            assert_int_equal(bench_static_run(&g, t, BENCH_BODY_VERIFY), 0);
            assert_int_equal(bench_accum_check(g.n, expected, "static"), 0);
            assert_int_equal(bench_verify_check(&g, 0, "static"), 0);
        }
        bench_verify_end();
        bench_graph_free(&g);
    }
}

static void test_bench_checks_catch_bad_runs(void **state)
{
    (void)state;
    bench_graph g;
    assert_int_equal(bench_graph_make(BENCH_SHAPE_CHAIN, 50, &g), 0);
    bench_body_setup(TEST_W);
    uint64_t expected = bench_expected_sum(g.n, TEST_W);
    fprintf(stderr, "(the failure messages that follow are expected)\n");
    /* Missing task: the accumulator count is wrong. */
    bench_accum_reset();
    for (uint64_t v = 0; v + 1 < g.n; v++)
        bench_body(v);
    assert_int_equal(bench_accum_check(g.n, expected, "missing task"), -1);
    /* Reverse order: every edge violated. */
    assert_int_equal(bench_verify_begin(g.n), 0);
    bench_accum_reset();
    for (uint64_t v = g.n; v-- > 0;)
        bench_body_verify(v);
    assert_int_equal(bench_accum_check(g.n, expected, "reverse"), 0);
    assert_int_equal(bench_verify_check(&g, 1, "reverse order"), -1);
    assert_int_equal(bench_verify_check(&g, 0, "reverse order, execs only"), 0);
    /* A task run twice. */
    assert_int_equal(bench_verify_begin(g.n), 0);
    for (uint64_t v = 0; v < g.n; v++)
        bench_body_verify(v);
    bench_body_verify(7);
    assert_int_equal(bench_verify_check(&g, 1, "task run twice"), -1);
    bench_verify_end();
    bench_graph_free(&g);
}

static void test_bench_options(void **state)
{
    (void)state;
    bench_options o;
    assert_int_equal(tu_bench_parse("weft-bench --shape fanout --grain 10us --size small "
                                    "--threads 1,2 --reps 3",
                                    &o),
                     0);
    assert_int_equal(o.shape, BENCH_SHAPE_FANOUT);
    assert_int_equal(o.size, 5000);
    assert_int_equal(o.nthreads, 2);
    assert_int_equal(o.threads[1], 2);
    assert_int_equal(o.reps, 3);
    assert_int_equal(o.rounds, 3);
    assert_int_equal(o.baselines, (1u << BENCH_ENGINE_OMP) | (1u << BENCH_ENGINE_STATIC));
    assert_int_equal(tu_bench_parse("weft-bench --shape tree --grain empty --baseline none "
                                    "--json --no-filter --budget 5",
                                    &o),
                     0);
    assert_int_equal(o.size, 20);
    assert_int_equal(o.baselines, 0);
    assert_true(o.json && !o.filter && o.budget_s == 5.0);
    assert_int_equal(tu_bench_parse("weft-bench --shape cholesky --size 1024 --tile 128", &o), 0);
    assert_int_equal(o.baselines, (1u << BENCH_ENGINE_OMP) | (1u << BENCH_ENGINE_LAPACKE));
    fprintf(stderr, "(the failure messages that follow are expected)\n");
    assert_int_equal(tu_bench_parse("weft-bench --shape fanout", &o), -1);           /* no grain */
    assert_int_equal(tu_bench_parse("weft-bench --shape ring --grain 1us", &o), -1); /* shape */
    assert_int_equal(tu_bench_parse("weft-bench --shape tree --grain 1us --size 40", &o), -1);
    assert_int_equal(tu_bench_parse("weft-bench --shape chain --grain 1us --threads 1,", &o), -1);
    assert_int_equal(tu_bench_parse("weft-bench --shape chain --grain 1us --threads 0", &o), -1);
    assert_int_equal(
        tu_bench_parse("weft-bench --shape chain --grain 1us --baseline lapacke", &o), -1);
    assert_int_equal(tu_bench_parse("weft-bench --shape cholesky --size 1000 --tile 256", &o), -1);
    assert_int_equal(tu_bench_parse("weft-bench --shape chain --grain 1us --reps", &o), -1);
}

static int run_graph_or_tensor(const bench_options *o)
{
    return o->workload != BENCH_WORKLOAD_NONE    ? bench_run_tensor(o)
           : o->shape == BENCH_SHAPE_CHOLESKY ? bench_run_cholesky(o)
                                              : bench_run_graph(o);
}

/* Runs the whole program path (setup, verification, shuffled rounds, report) with stdout
 * captured in a temporary file; returns the runner's status and the captured text. */
static int run_captured(const char *line, char **text)
{
    bench_options o;
    if (tu_bench_parse(line, &o) != 0)
        return -2;
    return tu_bench_run_captured(run_graph_or_tensor, &o, "bench", text);
}

static void test_bench_program_tiny_runs(void **state)
{
    (void)state;
    const char *base = TEST_OMP ? "omp,static" : "static";
    static const char *const shapes[] = {"chain 300", "fanout 300", "tree 8", "wavefront 17",
                                         "random 300"};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        char shape[32], line[256], *text = NULL;
        snprintf(shape, sizeof shape, "%s", shapes[i]);
        char *size = strchr(shape, ' ');
        *size++ = '\0';
        snprintf(line, sizeof line,
                 "weft-bench --shape %s --size %s --grain 1us --threads 1,2 --reps 2 --rounds 2 "
                 "--no-filter --json --baseline %s",
                 shape, size, base);
        assert_int_equal(run_captured(line, &text), 0);
        assert_non_null(text);
        /* One line per (engine, threads): weft and each baseline at T=1 and T=2. */
        size_t engines = TEST_OMP ? 3 : 2;
        assert_int_equal(tu_count_substr(text, "{\"engine\":"), 2 * engines);
        assert_int_equal(tu_count_substr(text, "\"samples\":4,"), 2 * engines);
        assert_int_equal(tu_count_substr(text, "\"run_ns_per_task\":null"), 2 * (engines - 1));
        assert_int_equal(tu_count_substr(text, "\"workers\":["), 2);
        free(text);
    }
    /* The table form, and Cholesky through examples/cholesky_lib. */
    char *text = NULL;
    assert_int_equal(run_captured("weft-bench --shape tree --size 6 --grain empty --threads 2 "
                                  "--reps 1 --rounds 1 --no-filter --baseline static",
                                  &text),
                     0);
    assert_non_null(strstr(text, "verification passed"));
    assert_non_null(strstr(text, "weft pool counters, T=2"));
    free(text);
    assert_int_equal(run_captured(TEST_OMP ? "weft-bench --shape cholesky --size 256 --tile 64 "
                                             "--threads 1,2 --reps 1 --rounds 1 --no-filter --json"
                                           : "weft-bench --shape cholesky --size 256 --tile 64 "
                                             "--threads 1,2 --reps 1 --rounds 1 --no-filter "
                                             "--json --baseline none",
                                  &text),
                     0);
    assert_int_equal(tu_count_substr(text, "\"residual\":"), TEST_OMP ? 6 : 2);
    free(text);
}

static void test_bench_workload_options(void **state)
{
    (void)state;
    bench_options o;
    assert_int_equal(
        tu_bench_parse("weft-bench --workload wide --threads 1,2 --trace t.json", &o), 0);
    assert_int_equal(o.workload, BENCH_WORKLOAD_WIDE);
    assert_int_equal(o.size, 256);
    assert_int_equal(o.iters, 1);
    assert_int_equal(o.baselines, 0);
    assert_non_null(o.trace_path); /* points into tu_bench_parse()'s buffer: not compared */
    assert_int_equal(tu_bench_parse("weft-bench --workload mlp --size small", &o), 0);
    assert_int_equal(o.size, 16);
    assert_int_equal(tu_bench_parse("weft-bench --workload xor --iters 7", &o), 0);
    assert_int_equal(o.size, 4);
    assert_int_equal(o.iters, 7);
    assert_true(bench_workload_target(&o, 1).max_s == 5e-6);
    fprintf(stderr, "(the failure messages that follow are expected)\n");
    assert_int_equal(tu_bench_parse("weft-bench --workload lstm", &o), -1);
    assert_int_equal(tu_bench_parse("weft-bench --workload xor --size 8", &o), -1);
    assert_int_equal(tu_bench_parse("weft-bench --workload mlp --grain 1us", &o), -1);
    assert_int_equal(tu_bench_parse("weft-bench --workload mlp --shape chain", &o), -1);
    assert_int_equal(tu_bench_parse("weft-bench --workload mlp --baseline omp", &o), -1);
    assert_int_equal(
        tu_bench_parse("weft-bench --shape chain --grain 1us --trace t.json", &o), -1);
}

/* The three tensor workloads at their tiny size, through the whole program path: build,
 * verification (bit-identical results at T=1 and T=2), rounds, JSON and table. */
static void test_bench_workloads_tiny(void **state)
{
    (void)state;
    static const char *const names[] = {"xor", "wide", "mlp"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char line[256], *text = NULL;
        snprintf(line, sizeof line,
                 "weft-bench --workload %s --size small --threads 1,2 --reps 2 --rounds 2 "
                 "--no-filter --json",
                 names[i]);
        assert_int_equal(run_captured(line, &text), 0);
        assert_non_null(text);
        char shape[32];
        snprintf(shape, sizeof shape, "\"shape\":\"%s\"", names[i]);
        assert_int_equal(tu_count_substr(text, shape), 2);
        assert_int_equal(tu_count_substr(text, "\"samples\":4,"), 2);
        assert_int_equal(tu_count_substr(text, "\"target_met\":null"), 2);
        free(text);
    }
    char *text = NULL;
    assert_int_equal(run_captured("weft-bench --workload mlp --size 8 --iters 1 --threads 2 "
                                  "--reps 1 --rounds 1 --no-filter",
                                  &text),
                     0);
    assert_non_null(strstr(text, "verification passed"));
    assert_non_null(strstr(text, "median/iter"));
    free(text);
}

int main(void)
{
    tu_main_init(300);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_fingerprint_table),
        cmocka_unit_test(test_bench_benchmark_sizes),
        cmocka_unit_test(test_bench_kernel_check_values),
        cmocka_unit_test(test_bench_random_worked_example),
        cmocka_unit_test(test_bench_weft_verification_chain),
        cmocka_unit_test(test_bench_weft_verification_fanout),
        cmocka_unit_test(test_bench_weft_verification_tree),
        cmocka_unit_test(test_bench_weft_verification_wavefront),
        cmocka_unit_test(test_bench_weft_verification_random),
        cmocka_unit_test(test_bench_baselines_verification),
        cmocka_unit_test(test_bench_checks_catch_bad_runs),
        cmocka_unit_test(test_bench_options),
        cmocka_unit_test(test_bench_program_tiny_runs),
        cmocka_unit_test(test_bench_workload_options),
        cmocka_unit_test(test_bench_workloads_tiny),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
