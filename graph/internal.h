/* graph/internal.h - the task graph's private representation, shared by the graph
 * layer's files.
 *
 * Build side: nodes (one per task, in id order), an edge list (explicit edges) and an
 * access list (declared data accesses). Analysis (analyze.c) turns them into the run
 * side: successor lists in CSR form, in-degrees, sources, sinks, critical-path
 * priorities. `dirty` says the run side is stale. */
#ifndef WEFT_GRAPH_INTERNAL_H
#define WEFT_GRAPH_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "scheduler/internal.h"
#include "weft/graph.h"

#define WF_NO_NAME UINT32_MAX

/* One task on the run side: exactly one cache line, so the pending counters of
 * neighbouring tasks, decremented by different workers, never share a line. What a run
 * reads only rarely (name, cost, affinity, measured time) lives in side arrays. */
typedef struct wf_gnode {
    WF_CACHE_ALIGNED wf_job job; /* first member: the node is its own scheduler job */
    weft_task_fn fn;
    void *arg;
    struct weft_graph *graph;
    /* Run state. pending counts predecessors not finished in this run; a node resets it
     * to indeg (and poisoned to 0) when it executes, so the graph is ready for the next
     * run without a separate pass. */
    _Atomic uint32_t pending;
    _Atomic uint32_t poisoned; /* a predecessor failed or was skipped in this run */
    uint32_t indeg;
    uint32_t succ_begin, succ_end; /* successors: graph->succ[succ_begin .. succ_end) */
    float prio;                /* cost-weighted longest path from here to a sink */
} wf_gnode;

_Static_assert(sizeof(wf_gnode) == WF_CACHE_LINE, "a task node is one cache line");

/* A leaf of a large release: successors succ[lo .. hi) of `node`, decremented by
 * whichever worker runs the leaf. `poison` is written by the node's worker before it
 * pushes the leaf (published by the push) and says the node failed or was skipped. */
typedef struct wf_release {
    wf_job job;
    wf_gnode *node;
    uint32_t lo, hi;
    uint32_t poison;
} wf_release;

/* The shared ready queue of a global-priority run (graph/ready.c): a max-heap of node
 * ids by priority behind a spin lock; ids (cap entries, allocated by the first global
 * run, grown when tasks were added, freed with the graph) has room for every task. */
typedef struct wf_ready {
    _Atomic int lock;
    uint32_t *ids;
    size_t n, cap;
} wf_ready;
void wf_ready_lock(wf_ready *r);
void wf_ready_unlock(wf_ready *r);
/* Both under the lock. pop returns UINT32_MAX when the queue is empty. */
void wf_ready_insert(wf_ready *r, const wf_gnode *nodes, uint32_t id);
uint32_t wf_ready_pop(wf_ready *r, const wf_gnode *nodes);

/* Affinity side array entry: kind in the top 2 bits, index below. */
#define WF_AFF_KIND_SHIFT 30
#define WF_AFF_INDEX_MASK ((1u << WF_AFF_KIND_SHIFT) - 1)

typedef struct wf_access {
    uint32_t task;
    uint8_t mode;  /* WEFT_READ / WEFT_WRITE / WEFT_READWRITE */
    uint8_t space; /* 0 memory, 1 handle */
    uintptr_t lo, hi; /* inclusive byte range (a handle is [h, h]) */
    size_t seq;       /* declaration order */
} wf_access;

typedef struct wf_edge {
    uint32_t from, to;
} wf_edge;

struct weft_graph {
    wf_gnode *nodes;
    size_t n, cap;          /* nodes and every per-task side array have cap entries */
    double *cost;           /* cost hints (default 1) */
    uint32_t *name_off;     /* into names, or WF_NO_NAME */
    uint32_t *affinity;     /* NULL until a hint is set; 0 = none */
    uint64_t *measured_ns;  /* NULL until a measured run; durations of the last one */
    char *names;
    size_t names_len, names_cap;
    wf_edge *edges;
    size_t nedges, edges_cap;
    wf_access *acc;
    size_t nacc, acc_cap;

    /* analysis results (valid when !dirty) */
    int dirty;
    weft_task_id *succ; /* CSR successor array */
    /* This run is in global-priority order (weft_run_options.global_priority): ready
     * tasks wait in `ready` and the jobs on the deques are tokens (see run.c). Written by
     * the caller before the first push of a run; kept off the lines of the run counters. */
    int global;
    size_t nsucc;
    uint32_t *sources;
    size_t nsources;
    uint32_t nsinks;
    uint32_t *level; /* per node */
    uint32_t *order; /* a topological order */
    /* Release leaves of tasks with many successors: release_first[v] is the index in
     * `release` of v's first leaf, or UINT32_MAX (both NULL if no task needs leaves). */
    uint32_t *release_first;
    wf_release *release;
    size_t nrelease;
    weft_graph_stats stats;

    /* run state */
    _Atomic int running;
    _Atomic uint32_t sinks_left;
    _Atomic uint32_t fail_task;
    int fail_value;
    _Atomic uint32_t skipped;
    int measuring;
    int measured_valid;
    /* tokens_set: some node's job.run may still be the token function of a global-priority
     * run (reset before a run in the default order). */
    int tokens_set;
    WF_CACHE_ALIGNED wf_ready ready;
};

/* Formats "task 'name' (id N)" into buf. */
const char *wf_task_label(const struct weft_graph *g, uint32_t id, char *buf, size_t size);
/* Appends the edges inferred from the declared accesses to g->edges. */
weft_status wf_infer_access_edges(struct weft_graph *g);
/* Builds the run side (CSR, in-degrees, levels, priorities, stats). */
weft_status wf_graph_build_dag(struct weft_graph *g);
/* The scheduler job functions of nodes and release leaves (run.c). */
void wf_graph_node_run(wf_job *job, wf_worker *w);
void wf_graph_release_run(wf_job *job, wf_worker *w);
void wf_graph_token_run(wf_job *job, wf_worker *w);
/* Allocates the lazily created per-task array *arr (zeroed, cap entries). 0 or -1. */
int wf_graph_side_alloc(struct weft_graph *g, void **arr, size_t elem);
/* Appends an edge to the edge list. */
weft_status wf_graph_push_edge(struct weft_graph *g, uint32_t from, uint32_t to);

/* ---- tensor graphs (tensor.c, tgraph.c, autodiff.c, dot.c, ops_api.c) ---------------
 * A tensor graph is an array of nodes in creation order (a topological order: inputs
 * always have smaller ids). Node i produces value i. Variables and constants own their
 * storage (a weft_tensor); placeholders get theirs from the feeds of a plan run. */

#include "ops/internal.h"
#include "weft/tgraph.h"

/* A tensor: a kernel view (wf_tref) plus ownership. bytes = numel * dtype size. */
struct weft_tensor {
    wf_tref ref;
    size_t bytes;
    int owned; /* 1: data allocated by weft (64-byte aligned, `bytes` long, >= 64) */
};

typedef struct wf_tnode {
    uint16_t op;          /* wf_op_id */
    uint8_t backward;     /* appended by weft_tgraph_gradients */
    uint8_t borrowed;     /* storage is the caller's tensor (dynamic mode): not destroyed */
    uint8_t unused;       /* made by autodiff, then replaced (fused): never computed */
    uint32_t nin;
    uint32_t in_off;      /* inputs: graph->inputs[in_off .. in_off + nin) */
    uint32_t name_off;    /* into graph->names, or WF_NO_NAME */
    wf_desc desc;         /* as known at build time (-1 = open dimension) */
    wf_attrs attrs;
    weft_tensor *storage; /* variables and constants: owned */
} wf_tnode;

struct weft_tgraph {
    wf_tnode *nodes;
    size_t n, cap;
    uint32_t *inputs;
    size_t ninputs, inputs_cap;
    char *names;
    size_t names_len, names_cap;
    int emitting_backward; /* nodes added now are marked backward */
};

/* Initialises a tensor struct over data (no allocation). */
void wf_tensor_view(weft_tensor *t, weft_dtype dtype, const wf_shape *shape, void *data);
/* A new owned tensor with the given description, zero-filled. */
weft_status wf_tensor_new(weft_dtype dtype, const wf_shape *shape, weft_tensor **out);
/* Adds node op(inputs, attrs) after checking ids, arity and the op's shape rule.
 * On failure nothing is added and the message names the op. */
weft_status wf_tgraph_add(weft_tgraph *g, wf_op_id op, size_t nin, const uint32_t *inputs,
                          const wf_attrs *attrs, uint32_t *out);
/* A leaf (VARIABLE or CONSTANT) over the caller's tensor, borrowed, not copied. */
weft_status wf_tgraph_add_borrowed(weft_tgraph *g, wf_op_id op, weft_tensor *t, uint32_t *out);
/* Removes every node (keeping the arrays' capacity): a new graph in the same memory. */
void wf_tgraph_reset(weft_tgraph *g);
/* WEFT_ERR_INVALID_ARG unless v is a value of g. `who` names the caller. */
weft_status wf_tgraph_check_value(const weft_tgraph *g, weft_value v, const char *who);
/* The node's name or NULL. */
const char *wf_tnode_name(const weft_tgraph *g, const wf_tnode *node);
/* 1 if some node reads value v (only nodes after v can). O(nodes after v). */
int wf_tgraph_has_reader(const weft_tgraph *g, uint32_t v);

#endif
