/* bench/workload_common.h - the pieces the workload runners (bench/run_tensor.c,
 * bench/run_dynamic.c, bench/run_rnn.c) and the report (bench/report.c) share: the
 * shuffled rounds of filtered blocks, the traced pool of --trace, and the common bits of
 * the report (title, filter setup, time format, row notes).
 *
 * Thread safety: everything here runs on the controlling thread.
 */
#ifndef WEFT_BENCH_WORKLOAD_COMMON_H
#define WEFT_BENCH_WORKLOAD_COMMON_H

#include <stddef.h>

#include "bench/measure.h"
#include "bench/options.h"
#include "weft.h"

/* "weft-bench: workload <label> <what> failed: <status>: <last error>" on stderr; -1. */
int bench_workload_fail(const char *workload, const char *label, const char *what,
                        weft_status st);

/* Measures configuration `index` once (one block of R repetitions, filter `filter`);
 * 0, or -1 on failure (message printed). */
typedef int (*bench_block_fn)(void *ctx, size_t index, const bench_filter *filter);

/* The opts->rounds shuffled rounds (order from opts->seed), one block per configuration
 * 0 .. count-1 in each: progress on a terminal's stderr, and with the filter off a short
 * pause before each block so that the previous pool's workers park. 0, or -1 at the first
 * failed block or when out of memory (message printed). */
int bench_run_rounds(const bench_options *opts, size_t count, bench_block_fn block,
                     void *ctx);

/* A pool of `threads` workers tracing into opts->trace_path (--trace). */
weft_status bench_trace_pool_create(const bench_options *opts, unsigned threads,
                                    weft_pool **out);

/* Appends the thread counts of opts ("1,8") to buf, which holds len characters already
 * (snprintf-style: stops once the text reaches cap). */
void bench_append_threads(const bench_options *opts, char *buf, size_t cap, size_t len);
/* The largest of opts->threads (0 for none). */
unsigned bench_max_threads(const bench_options *opts);

/* "4.213 us", "48.02 ms", "1.250 s"; returns buf. */
const char *bench_fmt_time(double s, char *buf, size_t cap);

/* "weft-bench: workload <name>(<size>)[ [<label>]]: " (no newline). */
void bench_print_workload_title(const bench_options *opts, const char *name);
/* "load filter on|off[ (budget B s per configuration)]" (no newline). */
void bench_print_filter_setup(const bench_options *opts);
/* The notes that end a table row: " contaminated", " <n>-dirty-reps-redone", newline. */
void bench_print_row_notes(int contaminated, unsigned discarded);

#endif
