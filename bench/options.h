/* bench/options.h - the weft-bench command line.
 *
 *   weft-bench --shape chain|fanout|tree|wavefront|random|cholesky
 *              [--size N|small|full] [--tile NB] --grain empty|1us|10us
 *              [--threads 1,2] [--reps R] [--rounds K] [--baseline omp,static|none]
 *              [--json] [--budget S] [--no-filter] [--trace-dir D] [--seed X]
 *              [--force-omp]
 *   weft-bench --workload xor|wide|mlp|rnn|dynamic-overhead [--size N|small|full]
 *              [--iters I]
 *              [--threads 1,2] [--reps R] [--rounds K] [--json] [--budget S]
 *              [--no-filter] [--trace FILE] [--seed X]
 *
 * Thread safety: not thread-safe (parsing happens once, in main).
 */
#ifndef WEFT_BENCH_OPTIONS_H
#define WEFT_BENCH_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bench/shapes.h"

typedef enum bench_engine {
    BENCH_ENGINE_WEFT,
    BENCH_ENGINE_OMP,
    BENCH_ENGINE_STATIC,
    BENCH_ENGINE_LAPACKE,
    BENCH_ENGINE_COUNT
} bench_engine;

/* The tensor workloads of --workload (bench/run_tensor.h); NONE for a --shape run. */
typedef enum bench_workload {
    BENCH_WORKLOAD_NONE,
    BENCH_WORKLOAD_XOR,
    BENCH_WORKLOAD_WIDE,
    BENCH_WORKLOAD_MLP,
    BENCH_WORKLOAD_RNN, /* its own runner: bench/run_rnn.h */
    BENCH_WORKLOAD_DYNAMIC_OVERHEAD, /* its own runner: bench/run_dynamic.h */
    BENCH_WORKLOAD_COUNT
} bench_workload;

#define BENCH_MAX_THREAD_COUNTS 32

typedef struct bench_options {
    bench_shape shape;  /* BENCH_SHAPE_COUNT for a --workload run */
    bench_workload workload; /* BENCH_WORKLOAD_NONE for a --shape run */
    uint64_t size;      /* resolved size parameter (N, D, M, matrix order; workloads: the
                           batch (xor, mlp) or the width (wide)) */
    const char *size_label; /* "small", "full" or NULL for an explicit number */
    size_t tile;        /* cholesky tile size, default 256 */
    bench_grain grain;  /* ignored for cholesky */
    unsigned threads[BENCH_MAX_THREAD_COUNTS];
    size_t nthreads;
    size_t reps;        /* timed repetitions per block, default 5 */
    size_t rounds;      /* shuffled rounds, default 3 */
    unsigned baselines; /* bit (1u << engine) per baseline engine */
    int json;
    int filter;         /* background-load filter on (default) */
    double budget_s;    /* per-configuration filter budget, default 180 */
    const char *trace_dir;
    uint64_t seed;      /* seed of the round shuffles, default 1 */
    int force_omp;      /* measure omp at T=1 even where libgomp is quadratic */
    size_t iters;       /* workloads: iterations per timed repetition (resolved) */
    const char *trace_path; /* workloads: Chrome trace of a few extra iterations */
} bench_options;

/* "weft", "omp", "static", "lapacke". */
const char *bench_engine_name(bench_engine engine);

/* Parses argv. Returns 0 on success, 1 if --help was printed (exit 0), -1 on an error
 * (message printed on stderr, exit non-zero). */
int bench_options_parse(int argc, char **argv, bench_options *out);
void bench_options_usage(FILE *out);

#endif
