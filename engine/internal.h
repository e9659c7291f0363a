/* engine/internal.h - plans: the compiled, runnable form of a tensor graph.
 *
 * A plan copies what it needs from the graph at creation (ops, inputs, attributes), so
 * the graph may grow afterwards. Node i of the plan is graph node `node` (plan nodes keep
 * the graph's order, a topological order). Op nodes become tasks of a task graph; leaves
 * bind data (feeds, the graph's variable and constant storage) and are not tasks.
 *
 * Buffers: the memory plan (memplan.c) gives each op output a buffer, shared along
 * happens-before edges; a buffer is allocated inside the task of its first holder, by
 * the worker that runs it, on that worker's NUMA node (first touch, or weft_pool_alloc
 * when the pool spans several NUMA groups), and kept for later runs. Dynamic one-off
 * plans take their buffers from the iteration's arena instead. Update ops (assign,
 * assign_sub, assign_add, optim_update, optim_update_mm) have no buffer: their output is the variable's storage. */
#ifndef WEFT_ENGINE_INTERNAL_H
#define WEFT_ENGINE_INTERNAL_H

#include <stdatomic.h>

#include "graph/internal.h"
#include "weft/plan.h"

/* ---- the arena of dynamic iterations (engine/arena.c) ---------------------------------
 * A bump allocator: blocks of at least WF_ARENA_BLOCK bytes, 64-byte aligned pieces.
 * reset frees everything at once and keeps one block as large as the last iteration
 * needed in total, so that a steady loop stops allocating. Not thread-safe. */
typedef struct wf_arena_block wf_arena_block;
typedef struct wf_arena {
    wf_arena_block *head;
    size_t used_total; /* bytes handed out since the last reset */
    size_t held;       /* bytes of all blocks */
} wf_arena;
void *wf_arena_alloc(wf_arena *a, size_t bytes);
void wf_arena_reset(wf_arena *a);
void wf_arena_free(wf_arena *a);

/* A buffer of a static plan, shared by the values the memory plan gives it. */
typedef struct wf_buffer {
    void *data;      /* allocated during a run by the buffer's first holder */
    size_t cap;
    uint8_t on_pool; /* from weft_pool_alloc */
    uint8_t in_arena;/* from a dynamic iteration's arena: never freed one by one */
    int group;       /* NUMA group of the worker that allocated it, -1 before */
} wf_buffer;

typedef struct wf_pnode {
    const wf_op_def *def;
    struct weft_plan *plan;
    uint32_t node;        /* graph node id */
    uint32_t nin;
    uint32_t in_off;      /* plan->in_idx[in_off ..]: plan indexes of the inputs */
    uint32_t task;        /* task id, or WEFT_TASK_NONE for leaves */
    wf_op_id op;
    uint8_t backward;
    uint8_t failed;       /* inline runs: this node failed or was skipped */
    uint8_t buf_first;    /* the first holder of buf: allocates it */
    uint32_t buf;         /* index in plan->bufs, UINT32_MAX for none (leaves, updates) */
    int group;            /* NUMA group of its buffer, -1 before the first run */
    wf_attrs attrs;
    wf_desc build_desc;   /* from the graph (may hold open dimensions) */
    wf_tref out;          /* concrete description and data of the current run */
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
    size_t nplaceholders; /* placeholders among the plan's nodes */
    uint32_t run_stamp;
    wf_tref *in_refs;     /* scratch: node i's input views at [in_off .. in_off + nin) */
    weft_graph *tasks;
    size_t ntasks;
    uint32_t *task_node;  /* plan node of each task */
    uint32_t *inline_order; /* plan nodes of the tasks in topological order (made lazily) */
    wf_arena *arena;      /* dynamic plans: buffers come from here, never freed one by one */
    int pin_forward;      /* dynamic plans: forward values may be read after the run, so
                             the memory plan never reuses their buffers */
    wf_buffer *bufs;      /* static plans: the memory plan's buffers */
    size_t nbufs, bufs_cap;
    size_t planned_bytes, naive_bytes; /* planned includes scratch, naive fused */
    size_t scratch_bytes, fused_bytes;
    size_t nbackward;
    uint32_t *fetch;      /* plan indexes of the fetches */
    size_t nfetch;
    weft_tensor *fetch_views;
    int fetch_valid;
    int shapes_valid;     /* node shapes match the feeds of the last resolve */
    int numa_placed;
    size_t placed_tasks;
    int costs_set;        /* task costs were set by a resolve (kept afterwards) */
    double work_ns;       /* sum of estimated costs */
    _Atomic size_t allocations;
    _Atomic size_t buffer_bytes;
    /* first failure of a run: written by the task that wins fail_claimed */
    _Atomic int fail_claimed;
    weft_status fail_status;
    char fail_msg[768];
};


/* What the dynamic mode adds to a plan: nodes already computed by earlier plans of the
 * iteration (is_done[v], their data done[v]) become leaves, and buffers come from the
 * arena (allocated when shapes are resolved, on the calling thread). */
typedef struct wf_plan_extras {
    const unsigned char *is_done;
    const wf_tref *done;
    size_t ndone;
    wf_arena *arena;      /* NULL: the plan owns its buffers (a cached dynamic plan) */
    int dynamic;
} wf_plan_extras;

weft_status wf_plan_create_ex(weft_tgraph *graph, weft_pool *pool, size_t nfetch,
                              const weft_value *fetches, size_t ntarget,
                              const weft_value *targets, const weft_plan_options *opts,
                              const wf_plan_extras *extras, weft_plan **out);

weft_status wf_plan_inline_order(struct weft_plan *plan);

/* ---- the plan cache of dynamic graphs (engine/dyn_cache.c) ---------------------------- */
typedef struct wf_dyn_entry wf_dyn_entry;
typedef struct wf_dyn_cache {
    wf_dyn_entry *entries;
    size_t n, cap;
    uint64_t clock;
    uint64_t iteration; /* bumped by weft_dyn_begin */
} wf_dyn_cache;
/* A hash of the structure of nodes [0, n) and of `from` (where the evaluation starts). */
uint64_t wf_dyn_structure_hash(const weft_tgraph *g, size_t from);
/* The plan compiled for exactly this structure, or NULL. */
weft_plan *wf_dyn_cache_find(wf_dyn_cache *c, const weft_tgraph *g, size_t from, uint64_t hash);
/* Keeps `plan` for this structure and returns 1 (the cache owns it from now on), or 0
 * when it cannot (every entry serves the current iteration, or no memory): the caller
 * keeps the plan. */
int wf_dyn_cache_insert(wf_dyn_cache *c, const weft_tgraph *g, size_t from, uint64_t hash,
                        weft_plan *plan);
weft_status wf_dyn_cache_resize(wf_dyn_cache *c, size_t entries);
void wf_dyn_cache_free(wf_dyn_cache *c);

/* engine/plan_exec.c */
/* Runs one op node (allocating its buffer if needed); a weft_task_fn. */
int wf_pnode_exec(void *arg);
/* Concrete shapes for the current feeds: runs every op's shape rule in order; sets
 * cost estimates. */
weft_status wf_plan_resolve(struct weft_plan *plan);
void wf_plan_free_buffers(struct weft_plan *plan);
/* engine/memplan.c: assigns buffers for the resolved shapes (see the file's comment);
 * keeps old buffers that are still large enough. */
weft_status wf_memplan_build(struct weft_plan *plan);

#endif
