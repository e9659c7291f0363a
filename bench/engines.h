/* bench/engines.h - the engines that execute a bench_graph: weft, OpenMP tasks, static.
 *
 * Each engine executes every task of the graph once with either the plain body or the
 * instrumented body of bench/body.h (set W and, for BENCH_BODY_VERIFY, the verification
 * state first). The caller times the calls; the engines do no timing of their own except
 * the phase split of weft one-shot runs.
 *
 *   weft    the public weft API: tasks added in increasing id, edges for v = 0, 1, ...
 *           and within v in preds(v) order (the SHAPES.md construction order); the pool
 *           is the caller's. One-shot = build + run + destroy; run-only = run a graph
 *           built by bench_weft_build.
 *   omp     one `omp parallel num_threads(T)` + `single` region creating task v with
 *           depend(in: dep[p]) for each p in preds(v) and depend(out: dep[v]), where dep
 *           is a per-run char array (one dependence object per task). Task creation
 *           materialises the depend list of a task on the creating thread's stack
 *           (8 bytes per predecessor), so a graph with a huge in-degree (the fanout sink)
 *           needs big thread stacks: see bench_omp_stack_bytes.
 *   static  the bodies of tasks 0..n-1 split in T contiguous blocks over the caller and
 *           T-1 new pthreads, ignoring every edge: the machine's ceiling for speedup.
 *
 * Every function returns 0, or -1 with a message on stderr. Thread safety: call from the
 * controlling thread only, one engine at a time.
 */
#ifndef WEFT_BENCH_ENGINES_H
#define WEFT_BENCH_ENGINES_H

#include <stddef.h>

#include "bench/shapes.h"
#include "weft.h"

typedef enum bench_body_kind {
    BENCH_BODY_PLAIN,
    BENCH_BODY_VERIFY
} bench_body_kind;

/* Phase times of a weft one-shot run, in seconds. */
typedef struct bench_phases {
    double build_s;
    double run_s;
    double destroy_s;
} bench_phases;

/* Builds the weft graph of `graph` with the chosen body. *out is owned by the caller
 * (weft_graph_destroy). */
int bench_weft_build(const bench_graph *graph, bench_body_kind kind, weft_graph **out);
/* Runs a built graph once on pool. */
int bench_weft_run(weft_pool *pool, weft_graph *wg);
/* Build + run + destroy; phases (may be NULL) receives the three phase durations. */
int bench_weft_oneshot(weft_pool *pool, const bench_graph *graph, bench_body_kind kind,
                       bench_phases *phases);
/* Analyses the weft graph of `graph` (untimed) and checks that the analyzer sees the same
 * edge count and depth as the generator. *stats receives the analyzer's figures. */
int bench_weft_analyze(const bench_graph *graph, weft_graph_stats *stats);

/* One run with OpenMP tasks on `threads` threads. */
int bench_omp_run(const bench_graph *graph, unsigned threads, bench_body_kind kind);
/* Stack size that the thread creating OpenMP tasks needs for this graph, or 0 if the
 * default stack is certainly enough. */
size_t bench_omp_stack_bytes(size_t max_preds);

/* libgomp keeps, per dependence object, a list of the pending tasks that declared it; a
 * new depend(in:) walks past every earlier pending reader of the same object. With one
 * thread the single thread creates every task before any can run (a deferred task whose
 * dependences are unmet stays deferred), so nothing leaves the lists and a task with d
 * successors costs d(d-1)/2 list steps: quadratic on fanout (N^2/2 for the source). This
 * returns that step count, sum over p of outdeg(p)(outdeg(p)-1)/2, or -1 on out of memory.
 * At 2+ threads the predecessor runs while its readers are being created and the lists
 * stay short. */
double bench_omp_serial_scans(const bench_graph *graph);
/* Above this many list steps the omp engine is not measured at T=1 (it would measure
 * libgomp's list walk, not task scheduling; fanout(1000000) would take hours per run). */
#define BENCH_OMP_MAX_SERIAL_SCANS 1e9

/* One run of the static split on `threads` threads (the caller included). */
int bench_static_run(const bench_graph *graph, unsigned threads, bench_body_kind kind);

#endif
