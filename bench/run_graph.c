/* bench/run_graph.c - the protocol of SHAPES.md section 5 for the five graph shapes. */
#include "bench/harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/body.h"
#include "bench/engines.h"
#include "bench/shapes.h"
#include "bench/workload_common.h"

/* What a repetition needs. */
typedef struct graph_ctx {
    const bench_graph *graph;
    uint64_t expected;
    bench_result *r;
    weft_graph *wg; /* run-only blocks */
    char label[96];
} graph_ctx;

static void ctx_label(graph_ctx *c, const char *what)
{
    snprintf(c->label, sizeof c->label, "%s T=%u %s", bench_engine_name(c->r->engine),
             c->r->threads, what);
}

/* One run of the result's engine (weft: one-shot). */
static int engine_run(graph_ctx *c, bench_body_kind kind, bench_phases *phases)
{
    switch (c->r->engine) {
    case BENCH_ENGINE_WEFT:
        return bench_weft_oneshot(c->r->pool, c->graph, kind, phases);
    case BENCH_ENGINE_OMP:
        return bench_omp_run(c->graph, c->r->threads, kind);
    case BENCH_ENGINE_STATIC:
        return bench_static_run(c->graph, c->r->threads, kind);
    default:
        fprintf(stderr, "weft-bench: engine %s does not run graph shapes\n",
                bench_engine_name(c->r->engine));
        return -1;
    }
}

static int rep_oneshot(void *arg, double *seconds)
{
    graph_ctx *c = arg;
    bench_phases ph = {0, 0, 0};
    bench_accum_reset();
    double t0 = bench_now_s();
    int rc = engine_run(c, BENCH_BODY_PLAIN, &ph);
    double t1 = bench_now_s();
    if (rc != 0 || bench_accum_check(c->graph->n, c->expected, c->label) != 0)
        return -1;
    *seconds = t1 - t0;
    if (c->r->engine == BENCH_ENGINE_WEFT) {
        if (bench_samples_push(&c->r->build, ph.build_s) != 0 ||
            bench_samples_push(&c->r->run, ph.run_s) != 0 ||
            bench_samples_push(&c->r->destroy, ph.destroy_s) != 0)
            return -1;
    }
    return 0;
}

static int rep_runonly(void *arg, double *seconds)
{
    graph_ctx *c = arg;
    bench_accum_reset();
    double t0 = bench_now_s();
    int rc = bench_weft_run(c->r->pool, c->wg);
    double t1 = bench_now_s();
    if (rc != 0 || bench_accum_check(c->graph->n, c->expected, c->label) != 0)
        return -1;
    *seconds = t1 - t0;
    return 0;
}

/* Untimed setup of one measurement: pool, warm-up run, verification run. */
static int setup_result(graph_ctx *c, const bench_options *opts, bench_pools *pools)
{
    if (c->r->engine == BENCH_ENGINE_WEFT &&
        bench_pools_get(pools, opts, c->r->threads, &c->r->pool) != 0)
        return -1;
    ctx_label(c, "warm-up");
    bench_accum_reset();
    if (engine_run(c, BENCH_BODY_PLAIN, NULL) != 0 ||
        bench_accum_check(c->graph->n, c->expected, c->label) != 0)
        return -1;
    ctx_label(c, "verification");
    if (bench_verify_begin(c->graph->n) != 0)
        return -1;
    bench_accum_reset();
    /* The static engine ignores edges by design: only "every task once" applies to it. */
    int rc = engine_run(c, BENCH_BODY_VERIFY, NULL);
    if (rc == 0)
        rc = bench_accum_check(c->graph->n, c->expected, c->label);
    if (rc == 0)
        rc = bench_verify_check(c->graph, c->r->engine != BENCH_ENGINE_STATIC, c->label);
    bench_verify_end();
    return rc;
}

/* A run-only block: build once, one untimed run, R timed runs, destroy. The pool counters
 * cover the R timed runs. */
static int block_runonly(graph_ctx *c, const bench_options *opts)
{
    ctx_label(c, "run-only");
    if (bench_weft_build(c->graph, BENCH_BODY_PLAIN, &c->wg) != 0)
        return -1;
    bench_accum_reset();
    int rc = bench_weft_run(c->r->pool, c->wg);
    if (rc == 0)
        rc = bench_accum_check(c->graph->n, c->expected, c->label);
    if (rc == 0) {
        weft_pool_counters_reset(c->r->pool);
        bench_filter f = {opts->filter, opts->budget_s};
        rc = bench_measure(&f, &c->r->filter_runonly, opts->reps, rep_runonly, c,
                           &c->r->runonly);
    }
    if (rc == 0)
        rc = bench_result_take_counters(c->r);
    weft_graph_destroy(c->wg);
    c->wg = NULL;
    return rc;
}

static int block_oneshot(graph_ctx *c, const bench_options *opts)
{
    ctx_label(c, "one-shot");
    bench_filter f = {opts->filter, opts->budget_s};
    return bench_measure(&f, &c->r->filter_oneshot, opts->reps, rep_oneshot, c,
                         &c->r->oneshot);
}

/* The K shuffled rounds over every block. */
static int run_rounds(const bench_options *opts, const bench_graph *g, uint64_t expected,
                      bench_result *res, size_t nres)
{
    bench_block *blocks = calloc(2 * nres, sizeof *blocks);
    if (blocks == NULL) {
        fprintf(stderr, "weft-bench: out of memory for the round plan\n");
        return -1;
    }
    size_t nblocks = 0;
    for (size_t i = 0; i < nres; i++) {
        blocks[nblocks++] = (bench_block){i, 0};
        if (res[i].engine == BENCH_ENGINE_WEFT)
            blocks[nblocks++] = (bench_block){i, 1};
    }
    uint64_t rng = opts->seed;
    int rc = 0;
    for (size_t round = 0; round < opts->rounds && rc == 0; round++) {
        if (isatty(STDERR_FILENO))
            fprintf(stderr, "weft-bench: round %zu/%zu\n", round + 1, opts->rounds);
        bench_blocks_shuffle(blocks, nblocks, &rng);
        for (size_t b = 0; b < nblocks && rc == 0; b++) {
            graph_ctx c = {g, expected, &res[blocks[b].result], NULL, ""};
            /* Without the filter's quiet-probe, let the previous engine's threads (OpenMP
             * spin-waits) settle before the next block. */
            if (!opts->filter)
                bench_sleep_s(0.02);
            rc = blocks[b].mode ? block_runonly(&c, opts) : block_oneshot(&c, opts);
        }
    }
    free(blocks);
    return rc;
}

/* Checks that the calling thread and new threads have stacks big enough for the OpenMP
 * engine's task creation on this graph (main.c arranges it). */
static int check_omp_stack(const bench_graph *g)
{
    size_t need = bench_omp_stack_bytes(g->max_preds);
    if (need == 0)
        return 0;
    size_t self = 0, dflt = 0;
    pthread_attr_t at;
    if (pthread_getattr_np(pthread_self(), &at) == 0) {
        pthread_attr_getstacksize(&at, &self);
        pthread_attr_destroy(&at);
    }
    if (pthread_getattr_default_np(&at) == 0) {
        pthread_attr_getstacksize(&at, &dflt);
        pthread_attr_destroy(&at);
    }
    if (self < need || dflt < need) {
        fprintf(stderr,
                "weft-bench: the omp engine needs thread stacks of %zu MiB for a task with "
                "%zu predecessors (have %zu / %zu MiB)\n",
                need >> 20, g->max_preds, self >> 20, dflt >> 20);
        return -1;
    }
    return 0;
}

static void describe_verification(const bench_options *opts, char *buf, size_t cap)
{
    int weftomp = (opts->baselines >> BENCH_ENGINE_OMP) & 1u;
    int stat = (opts->baselines >> BENCH_ENGINE_STATIC) & 1u;
    size_t len = (size_t)snprintf(buf, cap, "verification passed: %s (every task once, every "
                                  "edge ordered)%s at T=", weftomp ? "weft, omp" : "weft",
                                  stat ? ", static (every task once)" : "");
    bench_append_threads(opts, buf, cap, len);
}

/* Drops the omp T=1 result when libgomp would spend its time walking dependence lists
 * (bench_omp_serial_scans); writes the reason into note. */
static int drop_quadratic_omp(const bench_options *opts, const bench_graph *g,
                              bench_result *res, size_t *nres, char *note, size_t cap)
{
    if (opts->force_omp || !((opts->baselines >> BENCH_ENGINE_OMP) & 1u))
        return 0;
    double scans = bench_omp_serial_scans(g);
    if (scans < 0)
        return -1;
    if (scans <= BENCH_OMP_MAX_SERIAL_SCANS)
        return 0;
    for (size_t i = 0; i < *nres; i++) {
        if (res[i].engine == BENCH_ENGINE_OMP && res[i].threads == 1) {
            memmove(&res[i], &res[i + 1], (*nres - i - 1) * sizeof *res);
            (*nres)--;
            snprintf(note, cap,
                     "omp T=1 not measured: with one thread libgomp creates every task before "
                     "running any and walks %.3g pending-reader list entries (quadratic in the "
                     "out-degree); --force-omp measures it anyway",
                     scans);
            break;
        }
    }
    return 0;
}

int bench_run_graph(const bench_options *opts)
{
    char note[320] = "";
    bench_graph g;
    if (bench_graph_make(opts->shape, opts->size, &g) != 0)
        return -1;
    uint64_t w = bench_grain_iterations(opts->grain);
    bench_body_setup(w);
    uint64_t expected = bench_expected_sum(g.n, w);
    weft_graph_stats stats;
    bench_result *res = NULL;
    size_t nres = 0;
    bench_pools pools = {.count = 0};
    int rc = bench_weft_analyze(&g, &stats);
    if (rc == 0 && ((opts->baselines >> BENCH_ENGINE_OMP) & 1u))
        rc = check_omp_stack(&g);
    if (rc == 0 && opts->filter)
        rc = bench_filter_available();
    if (rc == 0)
        rc = bench_results_make(opts, &res, &nres);
    if (rc == 0)
        rc = drop_quadratic_omp(opts, &g, res, &nres, note, sizeof note);
    for (size_t i = 0; i < nres && rc == 0; i++) {
        graph_ctx c = {&g, expected, &res[i], NULL, ""};
        rc = setup_result(&c, opts, &pools);
    }
    if (rc == 0)
        rc = run_rounds(opts, &g, expected, res, nres);
    if (rc == 0) {
        char verified[256];
        describe_verification(opts, verified, sizeof verified);
        bench_report rep = {opts, g.n, g.m, g.depth, bench_graph_fingerprint(&g), w,
                            stats.parallelism, 0.0, verified, note[0] ? note : NULL, res,
                            nres};
        bench_report_print(&rep);
    }
    bench_results_free(res, nres);
    if (bench_pools_destroy(&pools) != 0)
        rc = -1;
    bench_graph_free(&g);
    return rc;
}
