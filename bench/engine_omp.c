/* bench/engine_omp.c - the OpenMP baseline: the same graph as OpenMP tasks with depend
 * clauses, created in SHAPES.md order by one thread of a T-thread team.
 *
 * The dependence objects are one char per task (dep[v]); task v declares depend(in:) on
 * the slot of each predecessor (an OpenMP 5.0 iterator over preds(v)) and depend(out:) on
 * its own slot. The array is allocated inside the call, so a timed call covers the whole
 * one-shot cost (dependence objects, task creation, execution, teardown). */
#include "bench/engines.h"

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/body.h"

size_t bench_omp_stack_bytes(size_t max_preds)
{
    /* libgomp builds the depend array (a 5-word header + one pointer per dependence) in
     * the creating function's frame. Below 64 Ki predecessors it fits in any default
     * stack; above, ask for twice the array plus 16 MiB for everything else. */
    if (max_preds < 65536)
        return 0;
    return 2 * (max_preds + 8) * sizeof(void *) + ((size_t)16 << 20);
}

double bench_omp_serial_scans(const bench_graph *graph)
{
    uint32_t *outdeg = calloc(graph->n ? graph->n : 1, sizeof *outdeg);
    if (outdeg == NULL) {
        fprintf(stderr, "weft-bench: out of memory counting successors of %zu tasks\n",
                graph->n);
        return -1;
    }
    for (size_t e = 0; e < graph->m; e++)
        outdeg[graph->preds[e]]++;
    double scans = 0;
    for (size_t v = 0; v < graph->n; v++)
        scans += 0.5 * (double)outdeg[v] * ((double)outdeg[v] - 1.0) * (outdeg[v] > 1);
    free(outdeg);
    return scans;
}

int bench_omp_run(const bench_graph *graph, unsigned threads, bench_body_kind kind)
{
    if (threads == 0 || threads > (unsigned)INT32_MAX) {
        fprintf(stderr, "weft-bench: omp engine: invalid thread count %u\n", threads);
        return -1;
    }
    char *dep = calloc(graph->n ? graph->n : 1, 1);
    if (dep == NULL) {
        fprintf(stderr, "weft-bench: omp engine: out of memory for %zu dependence objects\n",
                graph->n);
        return -1;
    }
    void (*body)(uint64_t) = kind == BENCH_BODY_VERIFY ? bench_body_verify : bench_body;
    const uint64_t *off = graph->off;
    const uint32_t *preds = graph->preds;
    size_t n = graph->n;
    int team = 0;
    omp_set_dynamic(0);
#pragma omp parallel num_threads((int)threads) default(none) \
    shared(dep, body, off, preds, n, team)
#pragma omp single
    {
        team = omp_get_num_threads();
        for (size_t v = 0; v < n; v++) {
            const uint32_t *pv = preds + off[v];
            int k = (int)(off[v + 1] - off[v]);
            (void)k; /* gcc 12 does not count a use inside a depend iterator */
#pragma omp task default(none) firstprivate(v, body) \
    depend(iterator(int j = 0 : k), in : dep[pv[j]]) depend(out : dep[v])
            body(v);
        }
    }
    free(dep);
    if (team != (int)threads) {
        fprintf(stderr,
                "weft-bench: omp engine: the OpenMP runtime gave a team of %d threads instead "
                "of %u (check OMP_THREAD_LIMIT)\n",
                team, threads);
        return -1;
    }
    return 0;
}
