/* bench/engine_weft.c - the weft engine: a SHAPES.md graph through the public API. */
#include "bench/engines.h"

#include <stdint.h>
#include <stdio.h>

#include "bench/body.h"
#include "bench/measure.h"

/* Task functions: the task id travels in the argument pointer itself, so building the
 * graph allocates nothing per task on the benchmark's side. */
static int weft_task_plain(void *arg)
{
    bench_body((uint64_t)(uintptr_t)arg);
    return 0;
}

static int weft_task_verify(void *arg)
{
    bench_body_verify((uint64_t)(uintptr_t)arg);
    return 0;
}

static int weft_fail(const char *call, weft_status st)
{
    fprintf(stderr, "weft-bench: %s failed: %s (%s): %s\n", call, weft_status_name(st),
            weft_status_str(st), weft_last_error());
    return -1;
}

int bench_weft_build(const bench_graph *graph, bench_body_kind kind, weft_graph **out)
{
    weft_task_fn fn = kind == BENCH_BODY_VERIFY ? weft_task_verify : weft_task_plain;
    weft_graph *wg = NULL;
    weft_status st = weft_graph_create(&wg);
    if (st != WEFT_OK)
        return weft_fail("weft_graph_create", st);
    st = weft_graph_reserve(wg, graph->n, graph->m);
    if (st != WEFT_OK) {
        weft_graph_destroy(wg);
        return weft_fail("weft_graph_reserve", st);
    }
    for (size_t v = 0; v < graph->n; v++) {
        st = weft_graph_add_task(wg, fn, (void *)(uintptr_t)v, NULL, NULL);
        if (st != WEFT_OK) {
            weft_graph_destroy(wg);
            return weft_fail("weft_graph_add_task", st);
        }
    }
    for (size_t v = 0; v < graph->n; v++) {
        for (uint64_t e = graph->off[v]; e < graph->off[v + 1]; e++) {
            st = weft_graph_add_edge(wg, graph->preds[e], (weft_task_id)v);
            if (st != WEFT_OK) {
                weft_graph_destroy(wg);
                return weft_fail("weft_graph_add_edge", st);
            }
        }
    }
    *out = wg;
    return 0;
}

int bench_weft_run(weft_pool *pool, weft_graph *wg)
{
    weft_status st = weft_graph_run(pool, wg);
    return st == WEFT_OK ? 0 : weft_fail("weft_graph_run", st);
}

int bench_weft_oneshot(weft_pool *pool, const bench_graph *graph, bench_body_kind kind,
                       bench_phases *phases)
{
    weft_graph *wg = NULL;
    double t0 = bench_now_s();
    if (bench_weft_build(graph, kind, &wg) != 0)
        return -1;
    double t1 = bench_now_s();
    int rc = bench_weft_run(pool, wg);
    double t2 = bench_now_s();
    weft_graph_destroy(wg);
    double t3 = bench_now_s();
    if (phases != NULL) {
        phases->build_s = t1 - t0;
        phases->run_s = t2 - t1;
        phases->destroy_s = t3 - t2;
    }
    return rc;
}

int bench_weft_analyze(const bench_graph *graph, weft_graph_stats *stats)
{
    weft_graph *wg = NULL;
    if (bench_weft_build(graph, BENCH_BODY_PLAIN, &wg) != 0)
        return -1;
    weft_status st = weft_graph_analyze(wg, stats);
    weft_graph_destroy(wg);
    if (st != WEFT_OK)
        return weft_fail("weft_graph_analyze", st);
    if (stats->tasks != graph->n || stats->edges != graph->m || stats->levels != graph->depth) {
        fprintf(stderr,
                "weft-bench: the weft analyzer disagrees with the generated graph: it found "
                "%zu tasks, %zu edges, %zu levels; the graph has %zu tasks, %zu edges, "
                "depth %zu\n",
                stats->tasks, stats->edges, stats->levels, graph->n, graph->m, graph->depth);
        return -1;
    }
    return 0;
}
