/* bench/body.h - the task body of SHAPES.md section 3, its per-thread accumulators, and
 * the instrumented body of the verification run (section 5, step 3).
 *
 * Body of task v:  r = kernel(v, W); slot = accumulator of this OS thread;
 *                  slot.count += 1; slot.sum += r.
 * Accumulators are cache-line padded slots of one static array. A thread obtains its slot
 * on first use in a run: bench_accum_reset() starts a new epoch, and a thread whose
 * thread-local epoch is older claims the next free slot (one atomic increment per thread
 * per run, outside the per-task path). So the timed body makes no shared writes and no
 * atomic operations, and threads that come and go between runs (OpenMP teams, the static
 * engine's pthreads) never exhaust the array.
 *
 * The instrumented body adds, around the same kernel and accumulator update, the
 * sequentially consistent clock, the per-task execution count and start/end stamps; the
 * check then requires execs[v] == 1 and end[p] < start[v] for every edge p -> v.
 *
 * Global state, one benchmark at a time: W, the epoch and the verification arrays are set
 * by the controlling thread while no body runs (bench_body_setup, bench_accum_reset,
 * bench_verify_begin/end); the engines' own start and completion (pool hand-off, OpenMP
 * region, pthread_create/join) order those writes before and the bodies' writes after.
 * bench_body and bench_body_verify may be called from any thread during a run.
 */
#ifndef WEFT_BENCH_BODY_H
#define WEFT_BENCH_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "bench/shapes.h"

/* Most threads that may execute bodies in one run (weft pool slots, OpenMP team, static
 * threads, plus the caller). */
#define BENCH_ACCUM_SLOTS 1100u

/* Sets W for bench_body / bench_body_verify. */
void bench_body_setup(uint64_t w);
uint64_t bench_body_iterations(void);

/* The plain body of task v. */
void bench_body(uint64_t v);
/* The instrumented body of task v (needs bench_verify_begin). */
void bench_body_verify(uint64_t v);

/* Starts a new run: zeroes the accumulators; every thread claims a fresh slot on its first
 * body. */
void bench_accum_reset(void);
/* Totals over all slots of the current run. */
typedef struct bench_accum_total {
    uint64_t count;
    uint64_t sum;
    unsigned threads; /* slots claimed = distinct OS threads that ran a body */
} bench_accum_total;
/* 0 if more threads ran bodies than there are slots (the totals are then incomplete). */
int bench_accum_total_get(bench_accum_total *out);
/* Checks count == n and sum == expected for the run just finished. Returns 0, or -1 with a
 * message on stderr naming `what` (e.g. "weft T=2 one-shot"). */
int bench_accum_check(size_t n, uint64_t expected, const char *what);

/* Allocates and zeroes the verification state for n tasks. 0, or -1 with a message. */
int bench_verify_begin(size_t n);
/* Checks the finished verification run of `graph`: every task executed exactly once and,
 * if check_order, end[p] < start[v] for every edge. Returns 0 on pass, or -1 with a
 * message on stderr naming `what` and the first offending task or edge. */
int bench_verify_check(const bench_graph *graph, int check_order, const char *what);
/* Frees the verification state (no-op if none). */
void bench_verify_end(void);

#endif
