/* bench/run_cholesky.c - the tiled Cholesky benchmark: weft (examples/cholesky_lib.h),
 * the same tiled algorithm with OpenMP tasks, and OpenBLAS's threaded LAPACKE_dpotrf.
 *
 * The protocol follows SHAPES.md section 5 where it applies: untimed setup (matrices,
 * pool), a warm-up factorisation per (engine, T) whose residual must be < 1e-12 (the
 * verification: there is no instrumented body for Cholesky), shuffled rounds of R timed
 * factorisations (the matrix copy before each is untimed), the load filter, medians. The
 * residual of the last factorisation of every block is checked again.
 *
 * The bound is work / span of the tile DAG with flop costs per kernel, computed by the
 * weft analyzer on a graph whose edges come from declared tile accesses (handles) in the
 * right-looking task order; it is the DAG chol_factor_weft runs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench/harness.h"
#include "examples/cholesky_lib.h"

#define CHOL_SEED 1u
#define CHOL_MAX_RESIDUAL 1e-12

typedef struct chol_ctx {
    const chol_matrix *orig;
    chol_matrix *work;
    bench_result *r;
} chol_ctx;

static int chol_nop(void *arg)
{
    (void)arg;
    return 0;
}

/* Adds one analysis task with its cost and tile accesses (handle = tile index + 1). */
static weft_status chol_task(weft_graph *g, size_t nt, double cost, size_t w_i, size_t w_j,
                             const size_t *reads, size_t nreads)
{
    weft_task_id id;
    weft_status st = weft_graph_add_task(g, chol_nop, NULL, NULL, &id);
    if (st == WEFT_OK)
        st = weft_graph_set_cost(g, id, cost);
    for (size_t r = 0; r < nreads && st == WEFT_OK; r++)
        st = weft_graph_access_handle(g, id, WEFT_READ, (uintptr_t)reads[r] + 1u);
    if (st == WEFT_OK)
        st = weft_graph_access_handle(g, id, WEFT_READWRITE, (uintptr_t)(w_i * nt + w_j) + 1u);
    return st;
}

/* Work/span of the tiled right-looking algorithm: potrf nb^3/3, trsm and syrk nb^3,
 * gemm 2 nb^3 flops. */
static int chol_analyze(size_t nt, size_t nb, weft_graph_stats *stats)
{
    weft_graph *g = NULL;
    weft_status st = weft_graph_create(&g);
    double c = (double)nb * (double)nb * (double)nb;
    for (size_t k = 0; k < nt && st == WEFT_OK; k++) {
        st = chol_task(g, nt, c / 3, k, k, NULL, 0);
        for (size_t i = k + 1; i < nt && st == WEFT_OK; i++) {
            size_t rd[1] = {k * nt + k};
            st = chol_task(g, nt, c, i, k, rd, 1);
        }
        for (size_t i = k + 1; i < nt && st == WEFT_OK; i++) {
            size_t rd[2] = {i * nt + k, 0};
            st = chol_task(g, nt, c, i, i, rd, 1);
            for (size_t j = k + 1; j < i && st == WEFT_OK; j++) {
                rd[1] = j * nt + k;
                st = chol_task(g, nt, 2 * c, i, j, rd, 2);
            }
        }
    }
    if (st == WEFT_OK)
        st = weft_graph_analyze(g, stats);
    weft_graph_destroy(g);
    if (st != WEFT_OK) {
        fprintf(stderr, "weft-bench: analysing the Cholesky tile graph failed: %s: %s\n",
                weft_status_name(st), weft_last_error());
        return -1;
    }
    return 0;
}

/* Factorises c->work with the row's engine; *kernel_s receives the summed tile-kernel
 * time of the tiled engines (0 for lapacke, whose kernels are not tasks). */
static int chol_factor(chol_ctx *c, double *kernel_s)
{
    int rc;
    *kernel_s = 0.0;
    switch (c->r->engine) {
    case BENCH_ENGINE_WEFT:
        rc = chol_factor_weft_ex(c->r->pool, c->work, NULL, NULL, NULL, kernel_s);
        if (rc != WEFT_OK)
            fprintf(stderr, "weft-bench: chol_factor_weft T=%u failed: %s: %s\n",
                    c->r->threads, weft_status_name((weft_status)rc), weft_last_error());
        return rc == WEFT_OK ? 0 : -1;
    case BENCH_ENGINE_OMP:
        rc = chol_factor_omp_ex(c->work, (int)c->r->threads, kernel_s);
        break;
    case BENCH_ENGINE_LAPACKE:
        rc = chol_factor_lapacke(c->work, (int)c->r->threads);
        break;
    default:
        fprintf(stderr, "weft-bench: engine %s does not run cholesky\n",
                bench_engine_name(c->r->engine));
        return -1;
    }
    if (rc != 0)
        fprintf(stderr, "weft-bench: cholesky engine %s T=%u failed (status %d)\n",
                bench_engine_name(c->r->engine), c->r->threads, rc);
    return rc == 0 ? 0 : -1;
}

/* Checks the factor now in c->work; keeps the largest residual seen. */
static int chol_check(chol_ctx *c, const char *what)
{
    double res = chol_residual(c->orig, c->work);
    if (!(res < CHOL_MAX_RESIDUAL)) {
        fprintf(stderr,
                "weft-bench: cholesky %s T=%u %s: invalid factorisation: residual %.3e is not "
                "below %.0e\n",
                bench_engine_name(c->r->engine), c->r->threads, what, res, CHOL_MAX_RESIDUAL);
        return -1;
    }
    if (res > c->r->residual)
        c->r->residual = res;
    return 0;
}

/* One timed factorisation; *outside = T x wall - summed kernel time (0 for lapacke). */
static int rep_factor(void *arg, double *seconds, double *outside)
{
    chol_ctx *c = arg;
    chol_matrix_copy(c->work, c->orig);
    double kernel_s = 0.0, t0 = bench_now_s();
    int rc = chol_factor(c, &kernel_s);
    *seconds = bench_now_s() - t0;
    *outside = kernel_s > 0 ? (double)c->r->threads * *seconds - kernel_s : 0.0;
    return rc;
}

int bench_run_cholesky(const bench_options *opts)
{
    chol_matrix orig = {0}, work = {0};
    size_t n = (size_t)opts->size, nb = opts->tile, nt = n / nb;
    bench_result *res = NULL;
    size_t nres = 0;
    bench_pools pools = {.count = 0};
    weft_graph_stats stats;
    int rc = chol_analyze(nt, nb, &stats);
    if (rc == 0 && opts->filter)
        rc = bench_filter_available();
    int have_orig = 0, have_work = 0;
    if (rc == 0)
        rc = (have_orig = chol_matrix_create(&orig, n, nb, CHOL_SEED) == 0) ? 0 : -1;
    if (rc == 0)
        rc = (have_work = chol_matrix_create(&work, n, nb, CHOL_SEED) == 0) ? 0 : -1;
    if (rc == 0)
        rc = bench_results_make(opts, &res, &nres);
    for (size_t i = 0; i < nres && rc == 0; i++) {
        chol_ctx c = {&orig, &work, &res[i]};
        if (res[i].engine == BENCH_ENGINE_WEFT)
            rc = bench_pools_get(&pools, opts, res[i].threads, &res[i].pool);
        double unused, unused_outside;
        if (rc == 0)
            rc = rep_factor(&c, &unused, &unused_outside);
        if (rc == 0)
            rc = chol_check(&c, "warm-up");
    }
    bench_block *blocks = rc == 0 ? calloc(nres, sizeof *blocks) : NULL;
    if (rc == 0 && blocks == NULL) {
        fprintf(stderr, "weft-bench: out of memory for the round plan\n");
        rc = -1;
    }
    for (size_t i = 0; i < nres && rc == 0; i++)
        blocks[i] = (bench_block){i, 0};
    uint64_t rng = opts->seed;
    bench_filter f = {opts->filter, opts->budget_s};
    for (size_t round = 0; round < opts->rounds && rc == 0; round++) {
        if (isatty(STDERR_FILENO))
            fprintf(stderr, "weft-bench: round %zu/%zu\n", round + 1, opts->rounds);
        bench_blocks_shuffle(blocks, nres, &rng);
        for (size_t b = 0; b < nres && rc == 0; b++) {
            bench_result *r = &res[blocks[b].result];
            chol_ctx c = {&orig, &work, r};
            if (!opts->filter)
                bench_sleep_s(0.02);
            if (r->pool != NULL)
                weft_pool_counters_reset(r->pool);
            rc = bench_measure2(&f, &r->filter_oneshot, opts->reps, rep_factor, &c,
                                &r->oneshot,
                                r->engine == BENCH_ENGINE_LAPACKE ? NULL : &r->outside);
            if (rc == 0 && r->pool != NULL)
                rc = bench_result_take_counters(r);
            if (rc == 0)
                rc = chol_check(&c, "timed run");
        }
    }
    free(blocks);
    if (rc == 0) {
        bench_report rep = {opts, stats.tasks, stats.edges, stats.levels, 0, 0,
                            stats.parallelism, chol_flops(n),
                            "verification: every factorisation's residual checked < 1e-12 "
                            "(warm-up and last of each block)",
                            NULL, res, nres};
        bench_report_print(&rep);
    }
    bench_results_free(res, nres);
    if (bench_pools_destroy(&pools) != 0)
        rc = -1;
    if (have_orig)
        chol_matrix_destroy(&orig);
    if (have_work)
        chol_matrix_destroy(&work);
    return rc;
}
