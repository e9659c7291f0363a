/* bench/run_tensor.h - the tensor workloads of weft-bench --workload: xor, wide, mlp.
 *
 * Each workload is a tensor graph with reverse-mode autodiff compiled into a weft plan
 * (weft/plan.h) and timed per iteration (one plan run); bench/run_tensor.c describes the
 * graphs and the protocol. This header holds the workload table the command line and the
 * report need: names, sizes, iterations per repetition and the targets.
 *
 * Thread safety: everything here runs on the controlling thread.
 */
#ifndef WEFT_BENCH_RUN_TENSOR_H
#define WEFT_BENCH_RUN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "bench/options.h"

/* "xor", "wide", "mlp"; NULL for NONE or an out-of-range value. */
const char *bench_workload_name(bench_workload workload);
/* Parses a workload name; 0 on success, -1 if unknown. */
int bench_workload_parse(const char *text, bench_workload *out);

/* The size of a workload: xor 4 (its batch, fixed), wide 256 (the width N), mlp 128 (the
 * batch). small = the tiny sizes of the test suite: xor 4, wide 32, mlp 16. */
uint64_t bench_workload_size(bench_workload workload, int small);
/* 1 if an explicit --size N is meaningful (wide, mlp), 0 for xor. */
int bench_workload_sizable(bench_workload workload);
/* Iterations per timed repetition, enough to dwarf the clock's resolution: xor 1000,
 * wide 1, mlp 10; small: 20, 1, 2. */
size_t bench_workload_iterations(bench_workload workload, int small);

/* What a full-size run should reach at T threads: the median time of one iteration at
 * most max_s, and the speedup over T = 1 at least min_speedup (0 = no such target). */
typedef struct bench_target {
    double max_s;
    double min_speedup;
} bench_target;

/* The target of opts->workload at `threads`; {0, 0} when there is none (other thread
 * counts, or a size other than full). */
bench_target bench_workload_target(const bench_options *opts, unsigned threads);

/* Runs the workload benchmark and prints the report. 0 on success, -1 on any error or
 * failed verification (message printed). */
int bench_run_tensor(const bench_options *opts);

#endif
