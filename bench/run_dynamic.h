/* bench/run_dynamic.h - weft-bench --workload dynamic-overhead: what one recorded node
 * costs in dynamic mode (weft/dynamic.h) when the kernels cost (nearly) nothing.
 *
 * One iteration = weft_dyn_begin (which releases the previous iteration), N ops recorded
 * on one-element f64 tensors with the ordinary weft_op_* calls, weft_dyn_eval (compile
 * the pending nodes into a plan, analyse its task graph, schedule or run inline). The
 * figure is nanoseconds per recorded op node, split into release / record / evaluate;
 * bench/run_dynamic.c describes the graphs and the protocol.
 *
 * The workload's name, size (N: full = 1000 and 10000, small = 100, or --size N) and
 * option handling come from the workload table of bench/run_tensor.h; this runner does its
 * own timing and report.
 *
 * Thread safety: everything here runs on the controlling thread.
 */
#ifndef WEFT_BENCH_RUN_DYNAMIC_H
#define WEFT_BENCH_RUN_DYNAMIC_H

#include "bench/options.h"

/* The target, at every N and T: median nanoseconds per recorded node of a whole
 * iteration (release + record + evaluate). */
#define BENCH_DYN_TARGET_NS_PER_NODE 500.0

/* Runs the workload (opts->workload == BENCH_WORKLOAD_DYNAMIC_OVERHEAD) and prints the
 * report. 0 on success, -1 on any error or failed verification (message printed). */
int bench_run_dynamic(const bench_options *opts);

#endif
