/* bench/run_dynamic.c - weft-bench --workload dynamic-overhead: the per-node cost of
 * define-by-run (weft/dynamic.h) when the kernels cost (nearly) nothing.
 *
 * The context's plan cache is off (weft_dyn_set_cache(dyn, 0)): every evaluation is
 * compiled and analysed, as for a graph whose structure changes every iteration.
 * Graphs, on one-element f64 tensors: two inputs a = 0.5 and b = 0.25 (weft_dyn_input,
 * borrowed), then N op nodes (the two input leaves are not counted in N):
 *   chain  v = a, then N times v = v * a (even steps) or v = v + b (odd steps): every node
 *          depends on the previous one, nothing can run in parallel; the pure cost of
 *          recording, compiling and running N nodes one after the other.
 *   tree   L = ceil(N / 2) independent leaves (a * b and a + b alternating), summed
 *          pairwise in FIFO order until one value remains (L - 1 adds), topped up to N
 *          nodes by a final scale when N is even: L-wide at the bottom, so T > 1 threads
 *          may run nodes at the same time.
 * One iteration = weft_dyn_begin (releases the previous iteration: plan, graph nodes,
 * arena), the two inputs and the N weft_op_* calls, weft_dyn_eval (one evaluation of all
 * N pending nodes: compile them into a plan, analyse its task graph, resolve shapes and
 * arena buffers, then run inline on the calling thread or schedule the tasks on the pool,
 * as the plan options decide). Plan options: the defaults with check mode off (the
 * environment does not change what is measured). Each phase is timed on its own with
 * CLOCK_MONOTONIC.
 *
 * Sizes: --size full (default) = N of 1000 and 10000, small = 100, or --size N; each N
 * runs both graphs. Figures per (graph, N, T): the median over every timed iteration of
 * the accepted repetitions, of the whole iteration and of each phase, in ns per node
 * (seconds * 1e9 / N). Target: at most BENCH_DYN_TARGET_NS_PER_NODE ns per node for the
 * whole iteration, for N >= 1000 (below that, fixed costs per iteration dominate).
 *
 * Protocol (as bench/run_tensor.c): per thread count T one pool; per (graph, N, T) one
 * dynamic context. Untimed: WARMUP iterations (they grow the arena and the context's
 * arrays), each result checked bit for bit against the same arithmetic done in C (the
 * kernels compute fl(x op y) like C does, so the value is exact to the bit), and the
 * node count of weft_dyn_stats_get. Then K shuffled rounds of R filtered repetitions per
 * configuration; a repetition runs `iters` iterations back to back, each timed, and checks
 * the last result again. Only the iterations of accepted repetitions are kept (a
 * repetition the load filter discards is forgotten with its samples).
 */
#include "bench/run_dynamic.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/harness.h"
#include "bench/run_tensor.h"
#include "bench/workload_common.h"
#include "weft.h"

#define WARMUP 3
#define TRACE_ITERS 3
#define IN_A 0.5
#define IN_B 0.25
#define TOP_UP_SCALE 0.5
#define TARGET_MIN_N 1000

enum { GRAPH_CHAIN, GRAPH_TREE, GRAPH_COUNT };
static const char *const graph_names[GRAPH_COUNT] = {"chain", "tree"};

enum { PH_RELEASE, PH_RECORD, PH_EVAL, PH_TOTAL, PH_COUNT };

static int fail(const char *label, const char *what, weft_status st)
{
    return bench_workload_fail("dynamic-overhead", label, what, st);
}

/* ---- the graphs ------------------------------------------------------------------------ */

/* Records graph `kind` with n op nodes on inputs a, b; *out = the last value. Scratch for
 * the tree's FIFO: q holds at least n + 1 values. */
static weft_status record(weft_tgraph *g, int kind, size_t n, weft_value a, weft_value b,
                          weft_value *q, weft_value *out)
{
    weft_status st = WEFT_OK;
    if (kind == GRAPH_CHAIN) {
        weft_value v = a;
        for (size_t k = 0; k < n && st == WEFT_OK; k++)
            st = k % 2 == 0 ? weft_op_mul(g, v, a, &v) : weft_op_add(g, v, b, &v);
        *out = v;
        return st;
    }
    if (n == 0) {
        *out = a;
        return st;
    }
    size_t leaves = (n + 1) / 2, head = 0, tail = 0;
    for (size_t k = 0; k < leaves && st == WEFT_OK; k++)
        st = k % 2 == 0 ? weft_op_mul(g, a, b, &q[tail++]) : weft_op_add(g, a, b, &q[tail++]);
    while (tail - head > 1 && st == WEFT_OK) {
        weft_value x = q[head++], y = q[head++];
        st = weft_op_add(g, x, y, &q[tail++]);
    }
    if (st == WEFT_OK && 2 * leaves - 1 < n)
        st = weft_op_scale(g, q[head], TOP_UP_SCALE, &q[head]);
    *out = q[head];
    return st;
}

/* The same arithmetic in C, in the same order; q holds n + 1 doubles. */
static double reference(int kind, size_t n, double *q)
{
    const double a = IN_A, b = IN_B;
    if (kind == GRAPH_CHAIN) {
        double v = a;
        for (size_t k = 0; k < n; k++)
            v = k % 2 == 0 ? v * a : v + b;
        return v;
    }
    if (n == 0)
        return a;
    size_t leaves = (n + 1) / 2, head = 0, tail = 0;
    q[0] = a;
    for (size_t k = 0; k < leaves; k++)
        q[tail++] = k % 2 == 0 ? a * b : a + b;
    while (tail - head > 1) {
        double x = q[head++], y = q[head++];
        q[tail++] = x + y;
    }
    if (2 * leaves - 1 < n)
        q[head] = q[head] * TOP_UP_SCALE;
    return q[head];
}

/* ---- configurations --------------------------------------------------------------------- */

typedef struct dyn_config {
    int kind;
    size_t n;
    unsigned threads;
    weft_pool *pool; /* borrowed from the pool table */
    weft_dyn *dyn;
    weft_tensor *a, *b;
    weft_value *q;   /* n + 1 values: the tree's FIFO */
    weft_value last; /* result of the last iteration */
    double want;     /* the C reference */
    size_t iters;    /* per repetition */
    bench_samples accepted[PH_COUNT]; /* seconds per iteration, accepted repetitions */
    bench_samples pending[PH_COUNT];  /* the repetition whose verdict is not known yet */
    bench_samples reps;               /* bench_measure's samples (mean per iteration) */
    size_t reps_seen;                 /* reps.n when `pending` was started */
    bench_filter_state filter;
    char label[48];
} dyn_config;

static void config_free(dyn_config *c)
{
    weft_dyn_destroy(c->dyn);
    weft_tensor_destroy(c->a);
    weft_tensor_destroy(c->b);
    free(c->q);
    for (int p = 0; p < PH_COUNT; p++) {
        bench_samples_free(&c->accepted[p]);
        bench_samples_free(&c->pending[p]);
    }
    bench_samples_free(&c->reps);
    memset(c, 0, sizeof *c);
}

static int config_make(dyn_config *c, int kind, size_t n, unsigned threads, weft_pool *pool,
                       size_t iters)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->n = n;
    c->threads = threads;
    c->pool = pool;
    c->iters = iters;
    snprintf(c->label, sizeof c->label, "%s N=%zu T=%u", graph_names[kind], n, threads);
    weft_plan_options po = weft_plan_options_default();
    po.check_numerics = 0;
    const double av = IN_A, bv = IN_B;
    const int64_t one[1] = {1};
    weft_status st = weft_dyn_create(pool, &po, &c->dyn);
    /* every iteration records the same structure: with the plan cache, evaluations after
     * the first would skip compilation and analysis, which is what this measures */
    if (st == WEFT_OK)
        st = weft_dyn_set_cache(c->dyn, 0);
    if (st == WEFT_OK)
        st = weft_tensor_from_data(WEFT_F64, 1, one, &av, WEFT_COPY, &c->a);
    if (st == WEFT_OK)
        st = weft_tensor_from_data(WEFT_F64, 1, one, &bv, WEFT_COPY, &c->b);
    if (st != WEFT_OK)
        return fail(c->label, "setup", st);
    c->q = malloc((n + 1) * sizeof *c->q);
    double *dq = malloc((n + 1) * sizeof *dq);
    if (c->q == NULL || dq == NULL) {
        free(dq);
        fprintf(stderr, "weft-bench: out of memory for the dynamic-overhead graphs\n");
        return -1;
    }
    c->want = reference(kind, n, dq);
    free(dq);
    return 0;
}

/* One timed iteration; ph[] receives the seconds of each phase and of the whole. */
static int iteration(dyn_config *c, double ph[PH_COUNT])
{
    weft_tgraph *g = NULL;
    weft_value a, b;
    double t0 = bench_now_s();
    weft_status st = weft_dyn_begin(c->dyn, &g);
    double t1 = bench_now_s();
    if (st != WEFT_OK)
        return fail(c->label, "weft_dyn_begin", st);
    st = weft_dyn_input(c->dyn, c->a, &a);
    if (st == WEFT_OK)
        st = weft_dyn_input(c->dyn, c->b, &b);
    if (st == WEFT_OK)
        st = record(g, c->kind, c->n, a, b, c->q, &c->last);
    double t2 = bench_now_s();
    if (st != WEFT_OK)
        return fail(c->label, "recording", st);
    st = weft_dyn_eval(c->dyn);
    double t3 = bench_now_s();
    if (st != WEFT_OK)
        return fail(c->label, "weft_dyn_eval", st);
    ph[PH_RELEASE] = t1 - t0;
    ph[PH_RECORD] = t2 - t1;
    ph[PH_EVAL] = t3 - t2;
    ph[PH_TOTAL] = t3 - t0;
    return 0;
}

/* The last iteration's result against the C reference (bit for bit), and its node count. */
static int check_result(dyn_config *c)
{
    double got = 0;
    weft_status st = weft_dyn_scalar(c->dyn, c->last, &got);
    if (st != WEFT_OK)
        return fail(c->label, "weft_dyn_scalar", st);
    weft_dyn_stats s;
    if ((st = weft_dyn_stats_get(c->dyn, &s)) != WEFT_OK)
        return fail(c->label, "weft_dyn_stats_get", st);
    if (memcmp(&got, &c->want, sizeof got) != 0 || s.nodes != c->n + 2 || s.evals != 1) {
        fprintf(stderr, "weft-bench: workload dynamic-overhead %s: verification failed: "
                        "result %.17g (want %.17g), %zu nodes (want %zu), %zu evaluations "
                        "(want 1)\n", c->label, got, c->want, s.nodes, c->n + 2, s.evals);
        return -1;
    }
    return 0;
}

/* The previous repetition's samples are kept iff bench_measure accepted it, which it did
 * iff its sample count grew since that repetition started. */
static int commit_pending(dyn_config *c)
{
    int keep = c->reps.n > c->reps_seen;
    for (int p = 0; p < PH_COUNT; p++) {
        for (size_t i = 0; keep && i < c->pending[p].n; i++)
            if (bench_samples_push(&c->accepted[p], c->pending[p].v[i]) != 0)
                return -1;
        c->pending[p].n = 0;
    }
    c->reps_seen = c->reps.n;
    return 0;
}

/* One repetition: `iters` timed iterations; *seconds = their mean. */
static int rep_iterations(void *arg, double *seconds)
{
    dyn_config *c = arg;
    if (commit_pending(c) != 0)
        return -1;
    double sum = 0;
    for (size_t i = 0; i < c->iters; i++) {
        double ph[PH_COUNT];
        if (iteration(c, ph) != 0)
            return -1;
        for (int p = 0; p < PH_COUNT; p++)
            if (bench_samples_push(&c->pending[p], ph[p]) != 0)
                return -1;
        sum += ph[PH_TOTAL];
    }
    if (check_result(c) != 0)
        return -1;
    *seconds = sum / (double)c->iters;
    return 0;
}

typedef struct dyn_rounds {
    const bench_options *o;
    dyn_config *cfg;
} dyn_rounds;

/* One block (R repetitions) of configuration `index` (bench_run_rounds). */
static int run_block(void *arg, size_t index, const bench_filter *f)
{
    dyn_rounds *r = arg;
    dyn_config *c = &r->cfg[index];
    int rc = bench_measure(f, &c->filter, r->o->reps, rep_iterations, c, &c->reps);
    if (rc == 0)
        rc = commit_pending(c);
    return rc;
}

/* --trace: a pool of its own with tracing on, TRACE_ITERS tree iterations of the largest
 * N at the largest T, written when the pool is flushed. Kept out of the timed runs. */
static int write_trace(const bench_options *o, size_t n, unsigned threads)
{
    weft_pool *pool = NULL;
    weft_status st = bench_trace_pool_create(o, threads, &pool);
    if (st != WEFT_OK)
        return fail("trace", "weft_pool_create", st);
    dyn_config c;
    int rc = config_make(&c, GRAPH_TREE, n, threads, pool, 1);
    for (int i = 0; i < TRACE_ITERS && rc == 0; i++) {
        double ph[PH_COUNT];
        rc = iteration(&c, ph);
    }
    config_free(&c);
    if (rc == 0 && (st = weft_pool_trace_flush(pool)) != WEFT_OK)
        rc = fail("trace", "weft_pool_trace_flush", st);
    weft_pool_destroy(pool);
    if (rc == 0)
        fprintf(stderr, "weft-bench: Chrome trace of %d tree iterations (N=%zu) at T=%u "
                        "written to %s\n", TRACE_ITERS, n, threads, o->trace_path);
    return rc;
}

/* ---- report ----------------------------------------------------------------------------- */

typedef struct row {
    bench_stats ph[PH_COUNT];
    double ns[PH_COUNT]; /* median ns per node of each phase */
    int met;             /* 1, 0, or -1 when the target does not apply */
} row;

static void row_figures(const dyn_config *c, row *r)
{
    for (int p = 0; p < PH_COUNT; p++) {
        bench_samples_stats(&c->accepted[p], &r->ph[p]);
        r->ns[p] = r->ph[p].median * 1e9 / (double)c->n;
    }
    r->met = c->n < TARGET_MIN_N ? -1 : r->ns[PH_TOTAL] <= BENCH_DYN_TARGET_NS_PER_NODE;
}

static void print_json(const bench_options *o, const dyn_config *c, const row *r)
{
    printf("{\"engine\":\"weft\",\"shape\":\"dynamic-overhead\",\"graph\":\"%s\",\"size\":%zu,"
           "\"nodes\":%zu,\"grain\":null,\"threads\":%u,\"reps\":%zu,\"rounds\":%zu,"
           "\"iterations\":%zu,\"samples\":%zu",
           graph_names[c->kind], c->n, c->n, c->threads, o->reps, o->rounds, c->iters,
           r->ph[PH_TOTAL].count);
    printf(",\"wall_s\":%.9g,\"min_s\":%.9g,\"max_s\":%.9g", r->ph[PH_TOTAL].median,
           r->ph[PH_TOTAL].min, r->ph[PH_TOTAL].max);
    printf(",\"ns_per_node\":%.6g,\"release_ns_per_node\":%.6g,\"record_ns_per_node\":%.6g,"
           "\"eval_ns_per_node\":%.6g",
           r->ns[PH_TOTAL], r->ns[PH_RELEASE], r->ns[PH_RECORD], r->ns[PH_EVAL]);
    printf(",\"target_ns_per_node\":%.6g,\"target_met\":%s", BENCH_DYN_TARGET_NS_PER_NODE,
           r->met < 0 ? "null" : r->met ? "true" : "false");
    printf(",\"contaminated\":%s,\"discarded\":%u}\n", c->filter.contaminated ? "true" : "false",
           c->filter.discarded);
}

static void print_report(const bench_options *o, const dyn_config *cfg, size_t ncfg,
                         const char *verified)
{
    if (!o->json) {
        bench_print_workload_title(o, "dynamic-overhead");
        printf("define-by-run cost per recorded node (one-element f64 ops, kernels ~free)\n");
        printf("  %s\n", verified);
        printf("  an iteration = weft_dyn_begin + 2 inputs + N ops + weft_dyn_eval; a rep = %zu "
               "iterations, each timed; figures = medians over the iterations of the accepted "
               "reps; %zu reps x %zu rounds; ",
               cfg[0].iters, o->reps, o->rounds);
        bench_print_filter_setup(o);
        printf("\n\n%-6s %6s %4s %9s %9s %9s %9s %12s %12s %12s  %-22s %s\n", "graph", "N", "T",
               "ns/node", "release", "record", "eval", "median/iter", "min/iter", "max/iter",
               "target", "notes");
    }
    for (size_t i = 0; i < ncfg; i++) {
        const dyn_config *c = &cfg[i];
        row r;
        row_figures(c, &r);
        if (o->json) {
            print_json(o, c, &r);
            continue;
        }
        char med[32], lo[32], hi[32], tgt[40];
        snprintf(tgt, sizeof tgt, "<= %.0f ns, %s", BENCH_DYN_TARGET_NS_PER_NODE,
                 r.met < 0 ? "n/a" : r.met ? "met" : "MISSED");
        printf("%-6s %6zu %4u %9.1f %9.1f %9.1f %9.1f %12s %12s %12s  %-22s",
               graph_names[c->kind], c->n, c->threads, r.ns[PH_TOTAL], r.ns[PH_RELEASE],
               r.ns[PH_RECORD], r.ns[PH_EVAL], bench_fmt_time(r.ph[PH_TOTAL].median, med, sizeof med),
               bench_fmt_time(r.ph[PH_TOTAL].min, lo, sizeof lo),
               bench_fmt_time(r.ph[PH_TOTAL].max, hi, sizeof hi), tgt);
        bench_print_row_notes(c->filter.contaminated, c->filter.discarded);
    }
    if (!o->json)
        printf("ns/node = median iteration / N. release = weft_dyn_begin (frees the previous "
               "iteration's plan, resets graph and arena); record = the 2 inputs and N weft_op_* "
               "calls; eval = weft_dyn_eval (plan: copy nodes, task graph, analysis, shapes, "
               "arena buffers; then run inline or on the pool). Phase medians are taken "
               "separately and need not add up exactly. Target for N >= %d.\n",
               TARGET_MIN_N);
}

/* ---- the runner ------------------------------------------------------------------------- */

int bench_run_dynamic(const bench_options *o)
{
    size_t ns[2], nn = 0;
    if (o->size_label != NULL && strcmp(o->size_label, "full") == 0) {
        ns[nn++] = 1000;
        ns[nn++] = 10000;
    } else {
        ns[nn++] = (size_t)o->size;
    }
    size_t ncfg = nn * GRAPH_COUNT * o->nthreads;
    dyn_config *cfg = calloc(ncfg, sizeof *cfg);
    bench_pools pools = {.count = 0};
    int rc = o->filter ? bench_filter_available() : 0;
    if (cfg == NULL) {
        fprintf(stderr, "weft-bench: out of memory for the dynamic-overhead configurations\n");
        rc = -1;
    }
    size_t made = 0;
    for (size_t g = 0; g < GRAPH_COUNT && rc == 0; g++)
        for (size_t k = 0; k < nn && rc == 0; k++)
            for (size_t t = 0; t < o->nthreads && rc == 0; t++) {
                weft_pool *pool = NULL;
                rc = bench_pools_get(&pools, o, o->threads[t], &pool);
                if (rc == 0)
                    rc = config_make(&cfg[made], (int)g, ns[k], o->threads[t], pool, o->iters);
                made++;
                /* untimed warm-up, every result verified */
                for (int w = 0; w < WARMUP && rc == 0; w++) {
                    double ph[PH_COUNT];
                    rc = iteration(&cfg[made - 1], ph);
                    if (rc == 0)
                        rc = check_result(&cfg[made - 1]);
                }
            }
    if (rc == 0) {
        dyn_rounds rounds = {o, cfg};
        rc = bench_run_rounds(o, ncfg, run_block, &rounds);
    }
    if (rc == 0) {
        char verified[256];
        size_t len = (size_t)snprintf(verified, sizeof verified,
                                      "verification passed: every result checked equals the C "
                                      "reference bit for bit, N + 2 nodes in one evaluation, at "
                                      "T=");
        bench_append_threads(o, verified, sizeof verified, len);
        print_report(o, cfg, ncfg, verified);
        fflush(stdout);
    }
    for (size_t i = 0; i < made; i++)
        config_free(&cfg[i]);
    free(cfg);
    if (bench_pools_destroy(&pools) != 0)
        rc = -1;
    if (rc == 0 && o->trace_path != NULL) {
        rc = write_trace(o, ns[nn - 1], bench_max_threads(o));
    }
    return rc;
}
