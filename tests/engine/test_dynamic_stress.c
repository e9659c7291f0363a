/* tests/engine/test_dynamic_stress.c - dynamic graphs (define by run), weft/dynamic.h:
 * memory, stress and the benchmark at a tiny size. The semantics, gradient and error cases
 * are in tests/engine/test_dynamic.c; helpers both suites use are in tests/util/tu_dyn.h.
 *
 * What is checked, against the promises of the header:
 *   - the arena stops growing after a few identical (or alternating) iterations;
 *   - every allocation failing in turn (through the counting hook) gives WEFT_ERR_NOMEM,
 *     leaks nothing, and leaves the context usable;
 *   - a stress run: random shapes and lengths (an RNN unrolled by C code) on a 16-thread
 *     pool, compared with a 1-thread context bit for bit at every iteration;
 *   - weft-bench --workload dynamic-overhead runs through its whole runner at a tiny size.
 *
 * cmocka is not thread-safe: nothing here asserts from a worker; every check runs on the
 * main thread after the weft call returned.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/options.h"
#include "bench/run_dynamic.h"
#include "tests/util/tu_alloc.h"
#include "tests/util/tu_bench.h"
#include "tests/util/tu_common.h"
#include "tests/util/tu_dyn.h"
#include "tests/util/tu_weft.h"
#include "weft.h"

/* ---- memory ----------------------------------------------------------------------------- */

/* One iteration of a model whose buffers pass the arena's 1 MiB block: x[B,256] f64 ->
 * tanh(x @ W [256,256]) -> mean; backward; read. */
static void arena_iteration(weft_dyn *d, weft_tensor *tx, weft_tensor *w, weft_tensor *gw)
{
    weft_tgraph *g = NULL;
    weft_value x, pw, a, h, l;
    OK(weft_dyn_begin(d, &g));
    OK(weft_dyn_input(d, tx, &x));
    OK(weft_dyn_param(d, w, gw, &pw));
    OK(weft_op_matmul(g, x, pw, 0, &a));
    OK(weft_op_tanh(g, a, &h));
    OK(weft_op_mean(g, h, WEFT_AXIS_ALL, 0, &l));
    assert_true(isfinite(tu_dyn_read_scalar(d, l)));
    OK(weft_dyn_backward(d, l));
}

static void test_dynamic_arena_stops_growing(void **state)
{
    (void)state;
    weft_pool *pool = tu_make_pool(2);
    weft_dyn *d = tu_dyn_make(pool, 1);
    weft_tensor *big =
        tu_rand_tensor(WEFT_F64, 2, (int64_t[]){512, 256}, WEFT_INIT_UNIFORM, 51, -1, 1);
    weft_tensor *small =
        tu_rand_tensor(WEFT_F64, 2, (int64_t[]){96, 256}, WEFT_INIT_UNIFORM, 52, -1, 1);
    weft_tensor *w = tu_rand_tensor(WEFT_F64, 2, (int64_t[]){256, 256}, WEFT_INIT_XAVIER, 53, 0, 0);
    weft_tensor *gw = tu_dyn_zeros_like(w);
    enum { N = 8 };
    size_t held[N];
    weft_dyn_stats st;
    for (int i = 0; i < N; i++) {
        arena_iteration(d, big, w, gw);
        OK(weft_dyn_stats_get(d, &st));
        held[i] = st.arena_bytes;
    }
    print_message("arena bytes over %d identical iterations: %zu %zu %zu ... %zu\n", N,
                  held[0], held[1], held[2], held[N - 1]);
    assert_true(held[0] >= (size_t)512 * 256 * 8); /* it does hold the buffers */
    for (int i = 2; i < N; i++)
        if (held[i] != held[1]) {
            print_error("arena grew at iteration %d: %zu after %zu\n", i, held[i], held[1]);
            fail();
        }
    /* alternating shapes: bounded by the larger iteration, and steady */
    size_t alt[N];
    for (int i = 0; i < N; i++) {
        arena_iteration(d, i % 2 ? small : big, w, gw);
        OK(weft_dyn_stats_get(d, &st));
        alt[i] = st.arena_bytes;
    }
    for (int i = 1; i < N; i++)
        assert_true(alt[i] <= alt[0]);
    for (int i = 3; i < N; i++)
        assert_int_equal(alt[i], alt[2]);
    weft_tensor_destroy(big);
    weft_tensor_destroy(small);
    weft_tensor_destroy(w);
    weft_tensor_destroy(gw);
    weft_dyn_destroy(d);
    weft_pool_destroy(pool);
}

/* Every allocation of one iteration (begin, record, read, backward, read) failing in turn,
 * once and sticky: each failing call returns WEFT_ERR_NOMEM with a message, a context
 * destroyed afterwards gives back everything (the hook's counts balance), and a context
 * that saw the failure computes the reference results in its next iteration. */
typedef struct af_ctx {
    weft_pool *pool;
    weft_tensor *x, *par[2], *grad[2];
    unsigned char ref_loss[8];
    double ref_grad0[6];
} af_ctx;

/* One iteration; stops at the first failing call and returns its status. */
static weft_status af_iteration(af_ctx *a, weft_dyn *d, double *loss)
{
    weft_tgraph *g = NULL;
    weft_value x, p0, p1, m, h, o, l;
    weft_status st;
    if ((st = weft_dyn_begin(d, &g)) || (st = weft_dyn_input(d, a->x, &x)) ||
        (st = weft_dyn_param(d, a->par[0], a->grad[0], &p0)) ||
        (st = weft_dyn_param(d, a->par[1], a->grad[1], &p1)) ||
        (st = weft_op_matmul(g, x, p0, 0, &m)) || (st = weft_op_add(g, m, p1, &h)) ||
        (st = weft_op_tanh(g, h, &o)) || (st = weft_op_mean(g, o, WEFT_AXIS_ALL, 0, &l)) ||
        (st = weft_dyn_scalar(d, l, loss)) || (st = weft_dyn_backward(d, l)) ||
        (st = weft_dyn_scalar(d, l, loss)))
        return st;
    return WEFT_OK;
}

static void af_check_reference(af_ctx *a, weft_dyn *d, uint64_t k)
{
    for (int i = 0; i < 2; i++)
        OK(weft_tensor_fill(a->grad[i], 0));
    double loss = 0;
    weft_status st = af_iteration(a, d, &loss);
    if (st != WEFT_OK)
        print_error("N=%llu: the iteration after the failure failed: %s (%s)\n",
                    (unsigned long long)k, weft_status_name(st), weft_last_error());
    assert_int_equal(st, WEFT_OK);
    if (memcmp(&loss, a->ref_loss, sizeof loss) != 0 ||
        memcmp(weft_tensor_data_const(a->grad[0]), a->ref_grad0, sizeof a->ref_grad0) != 0) {
        print_error("N=%llu: the next iteration differs from the reference\n",
                    (unsigned long long)k);
        fail();
    }
}

static void alloc_fail_on(unsigned threads)
{
    af_ctx a;
    memset(&a, 0, sizeof a);
    a.pool = tu_make_pool(threads);
    a.x = tu_rand_tensor(WEFT_F64, 2, (int64_t[]){5, 2}, WEFT_INIT_UNIFORM, 61, -1, 1);
    a.par[0] = tu_rand_tensor(WEFT_F64, 2, (int64_t[]){2, 3}, WEFT_INIT_UNIFORM, 62, -1, 1);
    a.par[1] = tu_rand_tensor(WEFT_F64, 1, (int64_t[]){3}, WEFT_INIT_UNIFORM, 63, -1, 1);
    for (int i = 0; i < 2; i++)
        a.grad[i] = tu_dyn_zeros_like(a.par[i]);
    /* warm-up and reference */
    weft_dyn *d = tu_dyn_make(a.pool, 1);
    double loss = 0;
    OK(af_iteration(&a, d, &loss));
    OK(af_iteration(&a, d, &loss));
    for (int i = 0; i < 2; i++)
        OK(weft_tensor_fill(a.grad[i], 0));
    OK(af_iteration(&a, d, &loss));
    memcpy(a.ref_loss, &loss, sizeof loss);
    memcpy(a.ref_grad0, weft_tensor_data_const(a.grad[0]), sizeof a.ref_grad0);
    weft_dyn_destroy(d);

    const uint64_t limit = 100000;
    for (int sticky = 0; sticky < 2; sticky++) {
        uint64_t done_at = 0;
        for (uint64_t k = 1; k < limit; k++) {
            tu_alloc_stats s0 = tu_alloc_get();
            d = tu_dyn_make(a.pool, 1);
            for (int i = 0; i < 2; i++)
                OK(weft_tensor_fill(a.grad[i], 0));
            uint64_t f0 = tu_alloc_get().failed;
            tu_alloc_fail_at(k, sticky);
            weft_status st = af_iteration(&a, d, &loss);
            uint64_t failed = tu_alloc_get().failed - f0;
            tu_alloc_fail_at(0, 0);
            if (st != WEFT_OK) {
                if (st != WEFT_ERR_NOMEM)
                    print_error("N=%llu: %s (%s), expected WEFT_ERR_NOMEM\n",
                                (unsigned long long)k, weft_status_name(st), weft_last_error());
                assert_int_equal(st, WEFT_ERR_NOMEM);
                assert_true(weft_last_error()[0] != '\0');
            } else if (memcmp(&loss, a.ref_loss, sizeof loss) != 0) {
                print_error("N=%llu: an allocation failed but the iteration succeeded with "
                            "another loss\n", (unsigned long long)k);
                fail();
            }
            af_check_reference(&a, d, k); /* the context stays usable */
            weft_dyn_destroy(d);
            tu_alloc_expect_balanced(&s0, NULL, k);
            if (failed == 0) {
                done_at = k;
                break;
            }
        }
        assert_true(done_at > 1 && done_at < limit);
        print_message("%u threads, %s: %llu allocations in one iteration\n", threads,
                      sticky ? "sticky" : "once", (unsigned long long)(done_at - 1));
    }
    weft_tensor_destroy(a.x);
    for (int i = 0; i < 2; i++) {
        weft_tensor_destroy(a.par[i]);
        weft_tensor_destroy(a.grad[i]);
    }
    weft_pool_destroy(a.pool);
}

static void test_dynamic_alloc_failures_are_clean(void **state)
{
    (void)state;
    tu_alloc_failures_clean_on_1_and_3_threads(alloc_fail_on);
}

/* ---- stress ----------------------------------------------------------------------------- */

/* An RNN unrolled by C code: h = tanh(x_0 @ Wx + b), then for t = 1 .. L-1
 * h = tanh(x_t @ Wx + h @ Wh + b); a mid-graph read of mean(h) picks a branch
 * (h * 0.5 or -h); loss = mse(h @ Wo, y). Batch B and length L random per iteration;
 * one momentum step per iteration. Two contexts (1 thread; 16 threads, scheduled) run
 * the same iterations and must agree bit for bit at every one. */
enum { SD = 12, SH = 24, SP = 4 };

typedef struct stress_side {
    weft_pool *pool;
    weft_dyn *d;
    weft_tensor *par[SP], *grad[SP];
    weft_optim *opt;
} stress_side;

static void stress_side_make(stress_side *s, unsigned threads, int scheduled)
{
    s->pool = tu_make_pool(threads);
    s->d = tu_dyn_make(s->pool, scheduled);
    s->par[0] = tu_rand_tensor(WEFT_F32, 2, (int64_t[]){SD, SH}, WEFT_INIT_XAVIER, 71, 0, 0);
    s->par[1] = tu_rand_tensor(WEFT_F32, 2, (int64_t[]){SH, SH}, WEFT_INIT_XAVIER, 72, 0, 0);
    s->par[2] = tu_rand_tensor(WEFT_F32, 1, (int64_t[]){SH}, WEFT_INIT_UNIFORM, 73, -0.1, 0.1);
    s->par[3] = tu_rand_tensor(WEFT_F32, 2, (int64_t[]){SH, 1}, WEFT_INIT_XAVIER, 74, 0, 0);
    for (int i = 0; i < SP; i++)
        s->grad[i] = tu_dyn_zeros_like(s->par[i]);
    weft_optim_options oo = weft_optim_options_default(WEFT_OPTIM_MOMENTUM);
    oo.lr = 0.05;
    OK(weft_optim_create(&oo, &s->opt));
}

static void stress_side_free(stress_side *s)
{
    for (int i = 0; i < SP; i++) {
        weft_tensor_destroy(s->par[i]);
        weft_tensor_destroy(s->grad[i]);
    }
    weft_optim_destroy(s->opt);
    weft_dyn_destroy(s->d);
    weft_pool_destroy(s->pool);
}

/* One iteration on one side; *loss_bits gets the loss bytes, *branch the branch taken. */
static void stress_iteration(stress_side *s, weft_tensor *const *xs, size_t L, weft_tensor *ty,
                             float *loss, int *branch)
{
    weft_tgraph *g = NULL;
    weft_value p[SP], x, h = {0}, a, r, z, m, o, y, l;
    OK(weft_dyn_begin(s->d, &g));
    for (int i = 0; i < SP; i++)
        OK(weft_dyn_param(s->d, s->par[i], s->grad[i], &p[i]));
    for (size_t t = 0; t < L; t++) {
        OK(weft_dyn_input(s->d, xs[t], &x));
        OK(weft_op_matmul(g, x, p[0], 0, &a));
        if (t > 0) {
            OK(weft_op_matmul(g, h, p[1], 0, &r));
            OK(weft_op_add(g, a, r, &a));
        }
        OK(weft_op_add(g, a, p[2], &z));
        OK(weft_op_tanh(g, z, &h));
    }
    OK(weft_op_mean(g, h, WEFT_AXIS_ALL, 0, &m));
    *branch = tu_dyn_read_scalar(s->d, m) > 0;
    if (*branch)
        OK(weft_op_scale(g, h, 0.5, &h));
    else
        OK(weft_op_neg(g, h, &h));
    OK(weft_op_matmul(g, h, p[3], 0, &o));
    OK(weft_dyn_input(s->d, ty, &y));
    OK(weft_op_mse(g, o, y, &l));
    OK(weft_dyn_backward(s->d, l));
    const weft_tensor *lt = NULL;
    OK(weft_dyn_read(s->d, l, &lt));
    OK(weft_tensor_copy_to(lt, loss, sizeof *loss));
}

static void stress_step(stress_side *s)
{
    OK(weft_optim_step(s->opt, s->pool, SP, s->par, (const weft_tensor *const *)s->grad));
    for (int i = 0; i < SP; i++)
        OK(weft_tensor_fill(s->grad[i], 0));
}

static void test_dynamic_stress_random_shapes_match_one_thread(void **state)
{
    (void)state;
    stress_side one, many;
    stress_side_make(&one, 1, 0);
    stress_side_make(&many, 16, 1);
    static const int64_t batches[] = {1, 2, 3, 7, 17, 64, 129, 1500};
    enum { LMAX = 6 };
    const int iters = TU_SCALE(200, 30);
    tu_rng rng;
    tu_rng_seed(&rng, 2024);
    int branches[2] = {0, 0};
    size_t max_nodes = 0;
    for (int it = 0; it < iters; it++) {
        int64_t B = batches[tu_rng_below(&rng, sizeof batches / sizeof batches[0])];
        size_t L = 1 + (size_t)tu_rng_below(&rng, LMAX);
        weft_tensor *xs[LMAX];
        for (size_t t = 0; t < L; t++)
            xs[t] = tu_rand_tensor(WEFT_F32, 2, (int64_t[]){B, SD}, WEFT_INIT_UNIFORM,
                                   1000u * (uint64_t)it + t, -1, 1);
        weft_tensor *ty = tu_rand_tensor(WEFT_F32, 2, (int64_t[]){B, 1}, WEFT_INIT_UNIFORM,
                                         1000u * (uint64_t)it + 999, -1, 1);
        float l1, l16;
        int b1, b16;
        stress_iteration(&one, xs, L, ty, &l1, &b1);
        stress_iteration(&many, xs, L, ty, &l16, &b16);
        weft_dyn_stats st;
        OK(weft_dyn_stats_get(many.d, &st));
        if (st.nodes > max_nodes)
            max_nodes = st.nodes;
        int bad = b1 != b16 || memcmp(&l1, &l16, sizeof l1) != 0;
        for (int i = 0; i < SP && !bad; i++)
            bad = !tu_same_tensor(one.grad[i], many.grad[i]);
        if (bad) {
            print_error("iteration %d (B=%lld, L=%zu): 16 threads differ from 1 (loss %.9g vs "
                        "%.9g, branch %d vs %d)\n", it, (long long)B, L, l16, l1, b16, b1);
            fail();
        }
        assert_true(isfinite(l1));
        branches[b1]++;
        stress_step(&one);
        stress_step(&many);
        for (size_t t = 0; t < L; t++)
            weft_tensor_destroy(xs[t]);
        weft_tensor_destroy(ty);
    }
    for (int i = 0; i < SP; i++)
        assert_true(tu_same_tensor(one.par[i], many.par[i]));
    print_message("stress: %d iterations, up to %zu nodes, branches %d / %d\n", iters,
                  max_nodes, branches[0], branches[1]);
    stress_side_free(&one);
    stress_side_free(&many);
}

/* ---- the benchmark at a tiny size ---------------------------------------------------- */

/* Runs weft-bench's dynamic-overhead runner with stdout captured; returns its status. */
static int run_bench_captured(const char *line, char **text)
{
    bench_options o;
    if (tu_bench_parse(line, &o) != 0)
        return -2;
    assert_int_equal(o.workload, BENCH_WORKLOAD_DYNAMIC_OVERHEAD);
    return tu_bench_run_captured(bench_run_dynamic, &o, "dynbench", text);
}

/* weft-bench --workload dynamic-overhead through the whole runner at a tiny size: option
 * parsing, verification, rounds, JSON and table. */
static void test_dynamic_overhead_bench_runs_tiny(void **state)
{
    (void)state;
    bench_options o;
    assert_int_equal(tu_bench_parse("weft-bench --workload dynamic-overhead", &o), 0);
    assert_int_equal(o.size, 10000);
    assert_int_equal(o.iters, 10);
    char *text = NULL;
    assert_int_equal(run_bench_captured("weft-bench --workload dynamic-overhead --size small "
                                        "--threads 1,2 --reps 2 --rounds 2 --no-filter --json",
                                        &text),
                     0);
    assert_non_null(text);
    /* one record per (graph, T); 2 reps x 2 rounds x 3 iterations */
    assert_int_equal(tu_count_substr(text, "\"shape\":\"dynamic-overhead\""), 4);
    assert_int_equal(tu_count_substr(text, "\"samples\":12,"), 4);
    assert_int_equal(tu_count_substr(text, "\"ns_per_node\":"), 4);
    assert_int_equal(tu_count_substr(text, "\"record_ns_per_node\":"), 4);
    assert_int_equal(tu_count_substr(text, "\"target_ns_per_node\":500"), 4);
    assert_int_equal(tu_count_substr(text, "\"target_met\":null"), 4); /* N = 100 < 1000 */
    free(text);
    assert_int_equal(run_bench_captured("weft-bench --workload dynamic-overhead --size 1000 "
                                        "--iters 1 --threads 2 --reps 1 --rounds 1 --no-filter",
                                        &text),
                     0);
    assert_non_null(strstr(text, "verification passed"));
    assert_non_null(strstr(text, "ns/node"));
    assert_int_equal(tu_count_substr(text, "<= 500 ns, "), 2);
    free(text);
}

int main(void)
{
    tu_main_init(300);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dynamic_arena_stops_growing),
        cmocka_unit_test_teardown(test_dynamic_alloc_failures_are_clean, tu_alloc_teardown),
        cmocka_unit_test(test_dynamic_stress_random_shapes_match_one_thread),
        cmocka_unit_test(test_dynamic_overhead_bench_runs_tiny),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
