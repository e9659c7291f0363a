/* engine/internal.h - plans: the compiled, runnable form of a tensor graph.
 *
 * A plan copies what it needs from the graph at creation (ops, inputs, attributes), so
 * the graph may grow afterwards. Node i of the plan is graph node `node` (plan nodes keep
 * the graph's order, a topological order). Op nodes become tasks of a task graph; leaves
 * bind data (feeds, the graph's variable and constant storage) and are not tasks.
 *
 * Buffers: an op node's output buffer is allocated inside its task, by the worker that
 * runs it, on that worker's NUMA node (first touch, or weft_pool_alloc when the pool
 * spans several NUMA groups), and kept for later runs. Update ops (assign, assign_sub)
 * have no buffer: their output is the variable's storage. */
#ifndef WEFT_ENGINE_INTERNAL_H
#define WEFT_ENGINE_INTERNAL_H

#include <stdatomic.h>

#include "graph/internal.h"
#include "weft/plan.h"

typedef struct wf_pnode {
    const wf_op_def *def;
    struct weft_plan *plan;
    uint32_t node;        /* graph node id */
    uint32_t nin;
    uint32_t in_off;      /* plan->in_idx[in_off ..]: plan indexes of the inputs */
    uint32_t task;        /* task id, or WEFT_TASK_NONE for leaves */
    wf_op_id op;
    uint8_t backward;
    uint8_t on_pool;      /* the buffer came from weft_pool_alloc */
    uint8_t failed;       /* inline runs: this node failed or was skipped */
    int group;            /* NUMA group that allocated the buffer, -1 before */
    wf_attrs attrs;
    wf_desc build_desc;   /* from the graph (may hold open dimensions) */
    wf_tref out;          /* concrete description and data of the current run */
    size_t cap;           /* bytes of the owned buffer (0: none) */
    wf_scratch scratch;   /* the kernel's scratch, kept from run to run */
    double cost_ns;       /* estimated */
} wf_pnode;

struct weft_plan {
    weft_tgraph *graph;
    weft_pool *pool;
    weft_plan_options opts;
    wf_pnode *nodes;
    size_t n;
    uint32_t *in_idx;
    size_t nin_total;
    uint32_t *map;        /* graph node id -> plan index (UINT32_MAX: not in the plan) */
    size_t map_len;       /* graph nodes at creation */
    uint32_t *fed;        /* per plan node: the run stamp of its last feed */
    uint32_t run_stamp;
    wf_tref *in_refs;     /* scratch: node i's input views at [in_off .. in_off + nin) */
    weft_graph *tasks;
    size_t ntasks;
    size_t nbackward;
    uint32_t *fetch;      /* plan indexes of the fetches */
    size_t nfetch;
    weft_tensor *fetch_views;
    int fetch_valid;
    int shapes_valid;     /* node shapes match the feeds of the last resolve */
    int numa_placed;
    size_t placed_tasks;
    int costs_set;        /* task costs were set by a resolve (kept afterwards) */      /* affinity hints set from the first run's placement */
    double work_ns;       /* sum of estimated costs */
    _Atomic size_t allocations;
    _Atomic size_t buffer_bytes;
    /* first failure of a run: written by the task that wins fail_claimed */
    _Atomic int fail_claimed;
    weft_status fail_status;
    char fail_msg[768];
};

/* engine/plan_exec.c */
/* Runs one op node (allocating its buffer if needed); a weft_task_fn. */
int wf_pnode_exec(void *arg);
/* Concrete shapes for the current feeds: runs every op's shape rule in order; sets
 * cost estimates. */
weft_status wf_plan_resolve(struct weft_plan *plan);
void wf_plan_free_buffers(struct weft_plan *plan);

#endif
