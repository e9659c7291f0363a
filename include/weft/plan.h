/* weft/plan.h - static sessions: a compiled plan of a tensor graph, run many times.
 *
 * weft_plan_create compiles a graph, a list of fetches and a list of targets (variable
 * updates, or any value to compute without fetching) into a plan: the nodes they need,
 * a task graph with one task per node (edges from the data flow, plus an edge from every
 * reader of a variable to each update of it), cost estimates from the op table, and the
 * buffers of the values. weft_plan_run feeds placeholders and runs the plan on the pool:
 * independent nodes of the forward and of the backward pass run at the same time, and a
 * large op splits itself with weft_parallel_for in chunks that do not depend on the
 * thread count, so results are bit-for-bit identical on any number of threads.
 *
 * Memory plan: a value whose consumers have all run hands its buffer to a later value
 * (or, for ops that allow it, the op writes over its input), but only along the DAG's
 * own happens-before edges, so no race appears and no parallelism is lost; fetched
 * values keep their own buffers. Buffers are allocated during the first run by the
 * worker that first uses them (on its NUMA node) and kept for the next runs: a run with
 * the same feed shapes allocates nothing. A feed whose open dimension changes re-checks
 * the shapes and re-plans, keeping the buffers that are still large enough.
 *
 * Check mode (option check_numerics, or WEFT_CHECK_NUMERICS=1 in the environment): the
 * run stops at the first node whose output holds a NaN or an infinity, and fails with
 * WEFT_ERR_NUMERICS naming the op, whether it is forward or backward, and its inputs'
 * shapes.
 *
 * Thread safety: a plan runs on one thread at a time; plans of different graphs may run
 * concurrently on one pool. Two plans of one graph that update the same variables must
 * not run at the same time.
 */
#ifndef WEFT_PLAN_H
#define WEFT_PLAN_H

#include <stddef.h>

#include "weft/graph.h"
#include "weft/pool.h"
#include "weft/tensor.h"
#include "weft/tgraph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_plan weft_plan;

typedef struct weft_plan_options {
    int check_numerics; /* 1: stop at the first NaN/Inf (default: WEFT_CHECK_NUMERICS) */
    /* Plans whose estimated work is below this many nanoseconds run their nodes in order
     * on the calling thread (scheduling them would cost more than it gains); large ops
     * still split across the pool. 0 always schedules. Default 20000. */
    double inline_below_ns;
    /* 1 (default): values whose consumers have all run hand their buffers on (and ops
     * that allow it run in place), along the DAG's own edges only; 0: every value keeps
     * its own buffer. */
    int memory_plan;
} weft_plan_options;

WEFT_API weft_plan_options weft_plan_options_default(void);

/* Compiles the plan. fetches / targets may be empty (n = 0) but not both. The graph and
 * the pool must outlive the plan; the graph may grow afterwards (the plan keeps its
 * nodes). *out is owned by the caller (weft_plan_destroy). Errors: an unknown value,
 * WEFT_ERR_NOMEM. */
WEFT_API weft_status weft_plan_create(weft_tgraph *graph, weft_pool *pool, size_t nfetch,
                                      const weft_value *fetches, size_t ntarget,
                                      const weft_value *targets,
                                      const weft_plan_options *opts, weft_plan **out);
/* NULL is a no-op. Frees the buffers; the graph's variables keep their values. */
WEFT_API void weft_plan_destroy(weft_plan *plan);

/* One placeholder and the tensor that feeds it: same dtype, same shape except an open
 * dimension. The tensor is read during the run (not copied) and not kept after it. */
typedef struct weft_feed {
    weft_value placeholder;
    const weft_tensor *tensor;
} weft_feed;

/* Runs the plan. Every placeholder the plan needs must be fed. On a failure (a bad feed,
 * an id out of range in gather or softmax_xent, a NaN in check mode, out of memory) the
 * nodes that depend on the failing one are skipped, the status and message say which
 * node failed, variables updated by nodes that did run keep their new values, and the
 * plan and the pool stay usable. */
WEFT_API weft_status weft_plan_run(weft_plan *plan, size_t nfeeds, const weft_feed *feeds);

/* Fetch i of the last successful run: a tensor owned by the plan, valid until the next run
 * or the plan's destruction. */
WEFT_API weft_status weft_plan_fetch(weft_plan *plan, size_t i, const weft_tensor **out);

typedef struct weft_plan_stats {
    size_t nodes;          /* nodes in the plan (leaves included) */
    size_t tasks;          /* op nodes scheduled as tasks */
    size_t backward_nodes; /* nodes appended by autodiff */
    size_t buffer_bytes;   /* bytes of the plan's own buffers allocated so far */
    size_t planned_bytes;  /* bytes of the memory plan's buffers for the current shapes,
                              scratch_bytes included */
    size_t naive_bytes;    /* the same if every value had its own buffer, fused_bytes
                              included */
    size_t scratch_bytes;  /* the gradient blocks of updates fused with their weight-
                              gradient product (other kernels' scratch, a few partial
                              sums, is not counted) */
    size_t fused_bytes;    /* products that fused updates consume block by block, which an
                              unfused plan stores whole (weft_optim_minimize fuses them) */
    size_t allocations;    /* buffer allocations since creation */
    size_t placed_tasks;   /* tasks pinned to the NUMA group that holds their buffer (pools
                              of several NUMA groups, after the first scheduled run) */
    weft_graph_stats graph;/* analyzer report; costs are estimated nanoseconds from the op
                              table's flop and byte counts */
} weft_plan_stats;

/* The memory plan's buffer of `value` for the shapes of the last run: *buffer is an index
 * (values with the same index share memory), or SIZE_MAX for a value without a buffer
 * of the plan (leaves, variable updates, values not in the plan). For inspection and
 * tests. WEFT_ERR_INVALID_ARG before the first run. */
WEFT_API weft_status weft_plan_value_buffer(const weft_plan *plan, weft_value value,
                                            size_t *buffer);

/* Work/span report and memory figures of the plan (analyses the task graph if needed). */
WEFT_API weft_status weft_plan_stats_get(weft_plan *plan, weft_plan_stats *out);

#ifdef __cplusplus
}
#endif
#endif
