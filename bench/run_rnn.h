/* bench/run_rnn.h - weft-bench --workload rnn: a variable-length Elman RNN trained one
 * sequence at a time, timed per sequence in the dynamic style (a graph recorded per
 * sequence, weft/dynamic.h) and in the static style (one plan per distinct length, built
 * on first use and cached, weft/plan.h). bench/run_rnn.c describes the model and the
 * protocol.
 *
 * The workload's name, size (the number of sequences: 200, small 20) and option handling
 * come from the workload table of bench/run_tensor.h; this runner does its own timing and
 * report, since it measures two styles per thread count.
 *
 * Thread safety: everything here runs on the controlling thread.
 */
#ifndef WEFT_BENCH_RUN_RNN_H
#define WEFT_BENCH_RUN_RNN_H

#include "bench/options.h"

/* The target of a full-size run, for either style at any T: median seconds per sequence. */
#define BENCH_RNN_TARGET_S 0.4e-3

/* Runs the rnn workload (opts->workload == BENCH_WORKLOAD_RNN) and prints the report.
 * 0 on success, -1 on any error or failed verification (message printed). */
int bench_run_rnn(const bench_options *opts);

#endif
