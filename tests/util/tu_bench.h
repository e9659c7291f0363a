/* tests/util/tu_bench.h - driving weft-bench's runners (bench/) from a test: a command
 * line parsed into bench_options, and a runner called with stdout captured.
 *
 * Thread safety: test main thread only (stdout is redirected while a runner runs).
 */
#ifndef WEFT_TESTS_TU_BENCH_H
#define WEFT_TESTS_TU_BENCH_H

#include "bench/options.h"

/* Parses a command line of space-separated words ("weft-bench --shape chain ...") with
 * bench_options_parse. The words live in a static buffer that the next call overwrites
 * (o's string members point into it). Its result: 0, or -1. */
int tu_bench_parse(const char *line, bench_options *o);

/* A runner of bench/ (bench_run_tensor, bench_run_graph, ...). */
typedef int (*tu_bench_runner)(const bench_options *o);

/* Calls run(o) with stdout redirected into a temporary file (tu_temp_path(tag)); *text
 * receives what it printed (malloc'd, NUL-terminated; NULL if unreadable). Returns the
 * runner's result. */
int tu_bench_run_captured(tu_bench_runner run, const bench_options *o, const char *tag,
                          char **text);

#endif
