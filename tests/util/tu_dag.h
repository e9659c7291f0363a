/* tests/util/tu_dag.h - random DAGs for scheduler tests, with a sequential reference.
 *
 * A tu_dag has n tasks (ids 0..n-1) and an edge list to pass to weft_graph_add_edge. The
 * topological order is a random permutation of the ids, so edges go from higher to lower
 * ids as often as the other way; some edges are added twice on purpose (weft must keep
 * them once). The shape is drawn from the seed: independent tasks, a chain with extra
 * edges, sparse, dense, or layered. preds/pred_off give each task's unique predecessors in
 * ascending id order (CSR), `order` a topological order, `levels` the number of tasks on a
 * longest path, `sources` the tasks without predecessors.
 *
 * Thread safety: a tu_dag is read-only after tu_dag_random and may be shared by threads.
 */
#ifndef WEFT_TESTS_TU_DAG_H
#define WEFT_TESTS_TU_DAG_H

#include <stddef.h>
#include <stdint.h>

typedef struct tu_dag {
    size_t n;
    size_t nedges;      /* entries of from/to (duplicates included) */
    uint32_t *from, *to;
    size_t nunique;     /* distinct edges */
    uint32_t *pred_off; /* n + 1 offsets into pred */
    uint32_t *pred;     /* predecessors of v: pred[pred_off[v] .. pred_off[v+1]), ascending */
    uint32_t *order;    /* a topological order of the n ids */
    size_t levels;      /* tasks on a longest path (0 if n == 0) */
    size_t sources;
} tu_dag;

/* Fills d with a random DAG of 1..max_tasks tasks (max_tasks <= 4096). 0 on success, -1 if
 * out of memory. */
int tu_dag_random(tu_dag *d, uint64_t seed, size_t max_tasks);
void tu_dag_free(tu_dag *d);

/* The value task v computes from its seed and its predecessors' values (in pred order). */
uint64_t tu_dag_value(const tu_dag *d, uint32_t v, const uint64_t *values);
/* Sequential evaluation of every value in topological order into values[n]. */
void tu_dag_eval(const tu_dag *d, uint64_t *values);

#endif
