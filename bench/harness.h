/* bench/harness.h - the measurement protocol of SHAPES.md section 5 and its results.
 *
 * A measurement is one (engine, threads) pair. Its timed work is split into blocks, one
 * per mode (one-shot for every engine, run-only for weft), and each round runs every
 * block once, in an order shuffled by a seeded splitmix64 stream; a block is R filtered
 * repetitions (bench/measure.h). Untimed setup per measurement: the weft pool with T
 * threads, one warm-up run, one verification run (instrumented bodies for graph shapes,
 * the residual for cholesky). Every run's accumulators are checked; any invalid run ends
 * the program with a message and a non-zero status.
 *
 * Thread safety: everything here runs on the controlling thread.
 */
#ifndef WEFT_BENCH_HARNESS_H
#define WEFT_BENCH_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "bench/measure.h"
#include "bench/options.h"
#include "weft.h"

typedef struct bench_result {
    bench_engine engine;
    unsigned threads;
    weft_pool *pool;             /* weft only; borrowed from the pool table */
    bench_samples oneshot;       /* seconds per one-shot run */
    bench_samples runonly;       /* seconds per run-only run (weft graph shapes) */
    bench_samples build, run, destroy; /* weft one-shot phases */
    bench_samples outside;       /* cholesky weft/omp: T x seconds - summed kernel seconds,
                                    per accepted sample (thread time outside the kernels) */
    bench_filter_state filter_oneshot, filter_runonly;
    double residual;             /* cholesky: largest residual checked; else 0 */
    weft_worker_counters *counters; /* weft: per slot, last run-only block (or one-shot) */
    unsigned ncounters;
} bench_result;

/* What the report needs besides the results. */
typedef struct bench_report {
    const bench_options *opts;
    size_t tasks;          /* tasks per run */
    size_t edges;          /* graph shapes: m; cholesky: analyzer's edges */
    size_t depth;          /* tasks on the longest path */
    uint64_t fingerprint;  /* graph shapes only */
    uint64_t iterations;   /* W */
    double bound;          /* work / span from weft_graph_analyze */
    double flops;          /* cholesky: flops per factorisation; 0 otherwise */
    const char *verified;  /* one line describing the verification that passed */
    const char *note;      /* printed under the table (NULL for none) */
    bench_result *results;
    size_t nresults;
} bench_report;

/* Runs the benchmark for a graph shape / for cholesky; prints the report. 0 on success,
 * -1 on any error or invalid run (message printed). */
int bench_run_graph(const bench_options *opts);
int bench_run_cholesky(const bench_options *opts);

/* Shared by both runners. */

/* One weft pool per distinct thread count, created on demand. */
typedef struct bench_pools {
    unsigned threads[BENCH_MAX_THREAD_COUNTS];
    weft_pool *pool[BENCH_MAX_THREAD_COUNTS];
    size_t count;
} bench_pools;

/* The pool with T threads (trace file D/weft-<shape>-T.json with --trace-dir). */
int bench_pools_get(bench_pools *pools, const bench_options *opts, unsigned threads,
                    weft_pool **out);
/* Writes the trace files (with --trace-dir) and destroys the pools. Returns 0, or -1 if a
 * trace could not be written (message printed; the pools are destroyed anyway). */
int bench_pools_destroy(bench_pools *pools);

/* Allocates one result per (engine in weft + baselines, T in opts->threads), in that
 * order. *out is freed with bench_results_free. */
int bench_results_make(const bench_options *opts, bench_result **out, size_t *count);
void bench_results_free(bench_result *results, size_t count);
/* Copies the per-slot counters of the result's pool into it. */
int bench_result_take_counters(bench_result *r);

/* A block of the round plan: result index and mode (0 = one-shot, 1 = run-only). */
typedef struct bench_block {
    size_t result;
    int mode;
} bench_block;

/* Shuffles blocks in place (Fisher-Yates over the splitmix64 stream *state). */
void bench_blocks_shuffle(bench_block *blocks, size_t count, uint64_t *state);

/* Prints the table (or JSON lines with opts->json) to stdout. */
void bench_report_print(const bench_report *report);

#endif
