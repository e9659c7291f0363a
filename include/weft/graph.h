/* weft/graph.h - task graphs of plain C functions and their dependency analyzer.
 *
 * A graph is built once (tasks, explicit edges, declared data accesses), then run any
 * number of times on a pool. Dependencies come from
 *   - explicit edges: weft_graph_add_edge(g, a, b) means a finishes before b starts;
 *   - declared accesses: a task reads, writes or reads-and-writes a memory region
 *     (pointer + size) or an opaque handle. The analyzer infers edges in task-id order
 *     (the order tasks were added), per byte of data, like OpenMP `depend`:
 *       * a task that reads a byte depends on the last earlier task that wrote it (RAW);
 *       * a task that writes a byte depends on the earlier readers of it since its last
 *         writer (WAR) or, if there are none, on that last writer (WAW; a pure writer
 *         gets no edge from the last writer when readers sit between them, since the
 *         readers already depend on it); a read-write task gets both rules: RAW from
 *         the last writer and WAR from the readers, as OpenMP `inout` does;
 *       * successive readers do not depend on each other and may run concurrently.
 *     Overlapping regions therefore share the bytes they have in common. A task's several
 *     declarations on the same data merge (read + write = read-write). Handles live in
 *     their own space: a handle never aliases a memory address.
 *   Duplicate edges (explicit and inferred alike) are kept once; self-edges are dropped.
 *
 * The analyzer (weft_graph_analyze, or the first run after a change) builds the DAG and
 * reports tasks, edges, topological levels, work and span. A cycle is an error naming a
 * task on it. Runs execute ready tasks in parallel; when a task completes, its worker
 * keeps the ready successor with the longest remaining path (critical path first) and
 * pushes the others for thieves.
 *
 * Thread safety: a graph is used by one thread at a time; it must not be modified while
 * it runs. Different graphs may run concurrently on one pool, and a task may run another
 * graph (nested), but one graph runs at most once at a time (else WEFT_ERR_BUSY).
 */
#ifndef WEFT_GRAPH_H
#define WEFT_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "weft/parallel.h"
#include "weft/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_graph weft_graph;
typedef uint32_t weft_task_id;

#define WEFT_TASK_NONE ((weft_task_id)0xffffffffu)

typedef enum weft_access_mode {
    WEFT_READ = 1,
    WEFT_WRITE = 2,
    WEFT_READWRITE = 3
} weft_access_mode;

typedef enum weft_affinity_kind {
    WEFT_AFFINITY_NONE = 0,
    WEFT_AFFINITY_WORKER = 1, /* index = pool slot */
    WEFT_AFFINITY_NUMA = 2    /* index = NUMA group of the pool */
} weft_affinity_kind;

/* *out is owned by the caller, released with weft_graph_destroy (NULL is a no-op). */
WEFT_API weft_status weft_graph_create(weft_graph **out);
WEFT_API void weft_graph_destroy(weft_graph *graph);

/* Reserves room for `tasks` tasks and `edges` explicit edges in total, so that building a
 * large graph does not reallocate. Optional. */
WEFT_API weft_status weft_graph_reserve(weft_graph *graph, size_t tasks, size_t edges);
/* Adds task fn(arg). name may be NULL; it is copied. The new id (0, 1, 2, ... in order)
 * goes to *out (out may be NULL). fn must not be NULL. */
WEFT_API weft_status weft_graph_add_task(weft_graph *graph, weft_task_fn fn, void *arg,
                                         const char *name, weft_task_id *out);
/* Cost hint in any unit (default 1.0); used for work, span and critical-path order.
 * Must be finite and >= 0. */
WEFT_API weft_status weft_graph_set_cost(weft_graph *graph, weft_task_id task, double cost);
/* Affinity hint: run the task on this slot / NUMA group when that slot is not
 * overloaded; otherwise it runs wherever it became ready. Indexes that the pool of a run
 * does not have are ignored at run time. */
WEFT_API weft_status weft_graph_set_affinity(weft_graph *graph, weft_task_id task,
                                             weft_affinity_kind kind, unsigned index);
/* before finishes before after starts. WEFT_ERR_RANGE for an unknown id. */
WEFT_API weft_status weft_graph_add_edge(weft_graph *graph, weft_task_id before,
                                         weft_task_id after);
/* Declares that `task` accesses [ptr, ptr+size) with `mode`. size must be > 0. */
WEFT_API weft_status weft_graph_access(weft_graph *graph, weft_task_id task,
                                       weft_access_mode mode, const void *ptr, size_t size);
/* Declares that `task` accesses the opaque handle `handle`. */
WEFT_API weft_status weft_graph_access_handle(weft_graph *graph, weft_task_id task,
                                              weft_access_mode mode, uintptr_t handle);

WEFT_API size_t weft_graph_task_count(const weft_graph *graph);

typedef struct weft_graph_stats {
    size_t tasks;
    size_t edges;      /* after inference and de-duplication */
    size_t sources;    /* tasks without predecessors */
    size_t levels;     /* number of topological levels (longest path in tasks) */
    size_t max_width;  /* most tasks in one level */
    double work;       /* sum of cost hints */
    double span;       /* longest cost-weighted path */
    double parallelism;/* work / span (0 for an empty graph) */
    /* From measured task durations of the last run made with measure = 1; 0 otherwise. */
    double measured_work_s;
    double measured_span_s;
} weft_graph_stats;

/* Builds the DAG (if the graph changed since the last analysis) and fills *out (may be
 * NULL). WEFT_ERR_CYCLE names a task on a cycle. */
WEFT_API weft_status weft_graph_analyze(weft_graph *graph, weft_graph_stats *out);
/* After a successful analysis: the topological level of a task (0 for sources) and its
 * successors (sorted ascending; the array is owned by the graph and valid until the
 * graph changes or is destroyed). */
WEFT_API weft_status weft_graph_task_level(const weft_graph *graph, weft_task_id task,
                                           size_t *level);
WEFT_API weft_status weft_graph_successors(const weft_graph *graph, weft_task_id task,
                                           const weft_task_id **succ, size_t *count);

typedef struct weft_run_options {
    int measure; /* time every task (for measured work/span); costs two clock reads per task */
    /* 0 (default): work-first order: a worker continues with the most urgent successor of
     * the task it finished and others steal the oldest ready tasks. 1: global priority
     * order: ready tasks wait in one queue shared by the run, and whichever worker is
     * free takes the most urgent one (priority = cost-weighted longest path to a sink,
     * see weft_graph_set_cost); a worker still continues with a successor of the task
     * it finished unless a queued task is much more urgent. Costs a short lock per task:
     * meant for tasks of tens of microseconds or more (tiled linear algebra), where it
     * shortens the idle tail. */
    int global_priority;
} weft_run_options;

/* Runs every task once, respecting dependencies, and returns when all have finished or
 * been skipped. The calling thread works on the graph. If a task returns non-zero, the
 * tasks that depend on it (transitively) are skipped, independent tasks still run, and
 * the result is WEFT_ERR_TASK_FAILED with a message naming the first failing task; the
 * graph and the pool stay usable. opts may be NULL. */
WEFT_API weft_status weft_graph_run(weft_pool *pool, weft_graph *graph);
WEFT_API weft_status weft_graph_run_ex(weft_pool *pool, weft_graph *graph,
                                       const weft_run_options *opts);
/* The first failing task of the last run and its return value; WEFT_TASK_NONE if none. */
WEFT_API weft_status weft_graph_last_failure(const weft_graph *graph, weft_task_id *task,
                                             int *value);
/* Number of tasks the last run skipped because a predecessor failed. */
WEFT_API size_t weft_graph_last_skipped(const weft_graph *graph);

#ifdef __cplusplus
}
#endif
#endif
