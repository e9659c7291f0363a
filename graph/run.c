/* graph/run.c - executing an analysed task graph on a pool.
 *
 * Each node is a scheduler job. Running a node: call its function (unless a predecessor
 * failed: then it is skipped), then decrement every successor's pending count; of the
 * successors that become ready, keep the one with the highest priority (longest remaining
 * path) to run next on this worker and push the others for thieves. A node with an
 * affinity hint goes to its slot's inbox instead (unless that slot is overloaded).
 *
 * Global-priority runs (weft_run_options.global_priority): ready tasks (those without an
 * affinity hint) wait in one max-heap per run (graph/ready.c), and the deques carry
 * tokens, plain jobs each of which runs whatever task is most urgent when it is taken.
 * A worker that finishes a task queues the successors it made ready and continues with
 * the most urgent of them, or with the most urgent queued task (perhaps an older one)
 * when that is much more urgent (WF_GLOBAL_KEEP_RATIO). The scheduler's
 * machinery (deques, stealing, parking, wake-ups) is unchanged; only the choice of task
 * moves to the heap. It costs a lock per task, so it is opt-in for coarse tasks.
 *
 * Memory orders: the decrement of pending is acq_rel. Its release half publishes the
 * predecessor's effects (and a poisoned flag stored before it) to the thread that brings
 * the count to zero; its acquire half lets that thread see every predecessor's effects.
 * The run ends when the last sink finishes: sinks_left is decremented with acq_rel, all
 * those RMWs form one release sequence, and the caller's acquire load of zero sees every
 * task's effects (every task is an ancestor of some sink). */
#include <stdio.h>

#include "graph/internal.h"
#include "scheduler/atomic.h"

static const char *node_name(const weft_graph *g, uint32_t id) {
    return g->name_off[id] != WF_NO_NAME ? g->names + g->name_off[id] : "task";
}

/* The slot a task's affinity hint names in this pool, or UINT32_MAX (no usable hint). */
static unsigned affinity_slot(const weft_pool *pool, uint32_t aff, uint32_t id) {
    uint32_t kind = aff >> WF_AFF_KIND_SHIFT, index = aff & WF_AFF_INDEX_MASK;
    if (kind == WEFT_AFFINITY_WORKER) return index;
    const wf_topology *t = &pool->topo;
    if (kind != WEFT_AFFINITY_NUMA || index >= t->ngroups) return UINT32_MAX;
    unsigned size = t->group_first[index + 1] - t->group_first[index];
    return t->group_slots[t->group_first[index] + id % size];
}

/* Routes a ready task by its affinity hint: 0 if it has none (or names this slot), else
 * it has been queued: 2 in another slot's inbox (wake everyone), 1 on this worker. */
static int route_affine(weft_pool *pool, wf_worker *w, wf_gnode *nd) {
    const weft_graph *g = nd->graph;
    uint32_t id = (uint32_t)(nd - g->nodes);
    if (!g->affinity || !g->affinity[id]) return 0;
    unsigned slot = affinity_slot(pool, g->affinity[id], id);
    if (slot >= pool->nslots || (w && slot == w->index)) return 0;
    nd->job.run = wf_graph_node_run; /* the job may have been a token (global order) */
    return 1 + wf_push_affine(pool, w, &nd->job, slot);
}

/* Pushes ready[0 .. n) by increasing priority: the owner, who pops the newest job, runs
 * the most urgent next, and thieves take the least urgent (the oldest). Measured on the
 * tiled Cholesky, this order beats the reverse one (thieves first served) at 1 and 2
 * threads: the owner stays on the critical path and on the tiles it just wrote.
 * Insertion sort: n is small. */
static void push_by_priority(weft_pool *pool, wf_worker *w, wf_gnode **ready, unsigned n) {
    for (unsigned i = 1; i < n; i++) {
        wf_gnode *x = ready[i];
        unsigned j = i;
        for (; j > 0 && ready[j - 1]->prio > x->prio; j--) ready[j] = ready[j - 1];
        ready[j] = x;
    }
    for (unsigned i = 0; i < n; i++) wf_push(pool, w, &ready[i]->job);
}

/* One wake-up for a batch: `queued` jobs were pushed on deques; `routed` is the OR of
 * route_affine results (2: some went to another slot's inbox, whose owner may be parked,
 * so wake everyone). */
static void wake_after_batch(weft_pool *pool, unsigned queued, int routed) {
    if (routed & 2)
        wf_ec_notify_all(&pool->ec);
    else if (queued || routed)
        wf_wake_for_work(pool);
}

#define READY_BATCH 16

/* Global-priority order: inserts ready[0 .. n) into the run's ready queue and pushes one
 * token per inserted task. With `take` (and n > 0) one task is returned to run next
 * instead, without a token: the most urgent of ready[], which reads what this worker
 * just wrote, unless the queue's top is more urgent by more than 1/WF_GLOBAL_KEEP_RATIO;
 * then all of ready[] is queued and the top is taken (it may be an older task). Either
 * way n - 1 tokens are pushed for a net n - 1 queued tasks, so tokens never outnumber
 * queued tasks and a token always finds one (see wf_graph_token_run). A node's job
 * serves as a token at most once per run, when the node enters the queue: no job is
 * ever queued twice. */
static wf_gnode *ready_insert(weft_pool *pool, wf_worker *w, weft_graph *g, wf_gnode **ready,
                              unsigned n, int take) {
    wf_gnode *kept = NULL;
    if (take && n > 0) { /* the most urgent of ready[] to ready[0] */
        unsigned best = 0;
        for (unsigned i = 1; i < n; i++)
            if (ready[i]->prio > ready[best]->prio) best = i;
        wf_gnode *t = ready[0];
        ready[0] = ready[best];
        ready[best] = t;
    }
    wf_ready_lock(&g->ready);
    for (unsigned i = take ? 1 : 0; i < n; i++)
        wf_ready_insert(&g->ready, g->nodes, (uint32_t)(ready[i] - g->nodes));
    if (take && n > 0) {
        kept = ready[0];
        if (g->ready.n > 0 &&
            kept->prio < WF_GLOBAL_KEEP_RATIO * g->nodes[g->ready.ids[0]].prio) {
            wf_ready_insert(&g->ready, g->nodes, (uint32_t)(kept - g->nodes));
            kept = &g->nodes[wf_ready_pop(&g->ready, g->nodes)];
        }
    }
    wf_ready_unlock(&g->ready);
    for (unsigned i = take ? 1 : 0; i < n; i++) {
        ready[i]->job.run = wf_graph_token_run; /* published by the push (release) */
        wf_push(pool, w, &ready[i]->job);
    }
    return kept;
}

/* One successor s of a finished task: poisons it first if `poison`, decrements its
 * pending count, and returns 1 if it became ready and is this worker's to place (0 if it
 * still waits, or if its affinity hint sent it to another slot's inbox: *routed records
 * that). A task with one predecessor is ready now: no counter to decrement, so its line
 * is only read (its effects reach the runner through this thread or the push's
 * release). Otherwise acq_rel, see the top of the file; the poisoned flag is published
 * by that release. */
static inline int ready_here(weft_pool *pool, wf_worker *w, wf_gnode *s, uint32_t poison,
                             unsigned *routed) {
    if (poison) wf_store_relaxed(&s->poisoned, 1);
    if (s->indeg != 1 && wf_sub_acq_rel(&s->pending, 1) != 1) return 0;
    int r = route_affine(pool, w, s);
    *routed |= (unsigned)r;
    return !r;
}

/* Decrements the successors succ[0 .. n) (poisoning them first if `poison`). Of those
 * that become ready, the highest-priority one is returned to run next on this worker
 * (critical path first); the others are pushed, by increasing priority within each batch
 * of READY_BATCH, then one wake-up is issued. After the last decrement the graph may be
 * finished and destroyed by its caller: nothing of it is read afterwards. */
static wf_gnode *release(weft_pool *pool, wf_worker *w, wf_gnode *nodes,
                         const weft_task_id *succ, uint32_t n, uint32_t poison) {
    wf_gnode *kept = NULL, *ready[READY_BATCH];
    unsigned nready = 0, pushed = 0, routed = 0;
    for (uint32_t i = 0; i < n; i++) {
        wf_gnode *s = &nodes[succ[i]];
        if (!ready_here(pool, w, s, poison, &routed)) continue;
        if (!kept) {
            kept = s;
            continue;
        }
        if (s->prio > kept->prio) { /* s becomes the next task; the old one is pushed */
            wf_gnode *t = kept;
            kept = s;
            s = t;
        }
        if (nready == READY_BATCH) {
            push_by_priority(pool, w, ready, nready);
            pushed += nready;
            nready = 0;
        }
        ready[nready++] = s;
    }
    push_by_priority(pool, w, ready, nready);
    wake_after_batch(pool, pushed + nready, routed);
    return kept;
}

/* release() for a global-priority run: the successors that become ready go to the
 * shared ready queue by batches of READY_BATCH, and the most urgent queued task (perhaps
 * an older one) is returned. The graph is read after the last decrement only while this
 * thread holds ready nodes that have not run (they keep the run from ending). */
__attribute__((noinline)) /* keeps the default path's code as it was */
static wf_gnode *release_global(weft_pool *pool, wf_worker *w, weft_graph *g,
                                const weft_task_id *succ, uint32_t n, uint32_t poison) {
    wf_gnode *ready[READY_BATCH];
    unsigned nready = 0, pushed = 0, routed = 0;
    for (uint32_t i = 0; i < n; i++) {
        wf_gnode *s = &g->nodes[succ[i]];
        if (!ready_here(pool, w, s, poison, &routed)) continue;
        if (nready == READY_BATCH) {
            ready_insert(pool, w, g, ready, nready, 0);
            pushed += nready;
            nready = 0;
        }
        ready[nready++] = s;
    }
    wf_gnode *kept = nready ? ready_insert(pool, w, g, ready, nready, 1) : NULL;
    wake_after_batch(pool, pushed + (nready ? nready - 1 : 0), routed);
    return kept;
}

/* The release of a node's successors in the run's order. g->global is read before any
 * decrement, while the run cannot end. */
static wf_gnode *release_any(weft_pool *pool, wf_worker *w, weft_graph *g,
                             const weft_task_id *succ, uint32_t n, uint32_t poison) {
    if (g->global) return release_global(pool, w, g, succ, n, poison);
    return release(pool, w, g->nodes, succ, n, poison);
}

/* Executes one node and returns the successor to run next (or NULL). */
static wf_gnode *node_exec(wf_gnode *nd, wf_worker *w) {
    weft_graph *g = nd->graph;
    weft_pool *pool = w->pool;
    uint32_t id = (uint32_t)(nd - g->nodes);
    uint32_t skip = wf_load_relaxed(&nd->poisoned); /* ordered by the acquire on pending */
    if (nd->indeg > 1) wf_store_relaxed(&nd->pending, nd->indeg); /* ready for next run */
    if (skip) wf_store_relaxed(&nd->poisoned, 0);
    if (!skip) {
        int timed = g->measuring || pool->trace_on;
        uint64_t t0 = timed ? wf_now_ns() : 0;
        int rc = nd->fn(nd->arg);
        uint64_t t1 = timed ? wf_now_ns() : 0;
        if (g->measuring) g->measured_ns[id] = t1 - t0;
        wf_task_done(w, pool->trace_on ? node_name(g, id) : NULL, t0, t1);
        if (rc != 0) {
            uint32_t none = WEFT_TASK_NONE;
            if (atomic_compare_exchange_strong(&g->fail_task, &none, id))
                g->fail_value = rc; /* read by the caller after the run (sinks_left) */
            skip = 1;
        }
    } else {
        if (g->measuring) g->measured_ns[id] = 0;
        wf_add_relaxed(&g->skipped, 1);
    }
    uint32_t nsucc = nd->succ_end - nd->succ_begin;
    if (nsucc == 0) {
        if (wf_sub_acq_rel(&g->sinks_left, 1) == 1)
            wf_wake_waiters(pool); /* g may be gone once the caller sees zero */
        return NULL;
    }
    if (nsucc > 2 * WF_RELEASE_LEAF && g->release_first[id] != UINT32_MAX) {
        /* many successors: push all leaves but the first, release the first here */
        wf_release *leaf = &g->release[g->release_first[id]];
        uint32_t nleaves = (nsucc + WF_RELEASE_LEAF - 1) / WF_RELEASE_LEAF;
        for (uint32_t k = 0; k < nleaves; k++) leaf[k].poison = skip;
        for (uint32_t k = nleaves - 1; k > 0; k--) wf_push(pool, w, &leaf[k].job);
        wf_wake_for_work(pool);
        return release_any(pool, w, g, g->succ + leaf[0].lo, leaf[0].hi - leaf[0].lo, skip);
    }
    return release_any(pool, w, g, g->succ + nd->succ_begin, nsucc, skip);
}

void wf_graph_node_run(wf_job *job, wf_worker *w) {
    for (wf_gnode *nd = (wf_gnode *)job; nd;) nd = node_exec(nd, w);
}

void wf_graph_release_run(wf_job *job, wf_worker *w) {
    wf_release *leaf = (wf_release *)job;
    weft_graph *g = leaf->node->graph;
    wf_gnode *nd = release_any(w->pool, w, g, g->succ + leaf->lo, leaf->hi - leaf->lo,
                               leaf->poison);
    while (nd) nd = node_exec(nd, w);
}

/* A token of a global-priority run: runs the most urgent queued task (there is one: each
 * token was pushed after its task was queued, and tokens never outnumber queued tasks),
 * then whatever it keeps. The job itself is only a ticket; which node it belongs to does
 * not matter. */
void wf_graph_token_run(wf_job *job, wf_worker *w) {
    weft_graph *g = ((wf_gnode *)job)->graph;
    wf_ready_lock(&g->ready);
    uint32_t id = wf_ready_pop(&g->ready, g->nodes);
    wf_ready_unlock(&g->ready);
    for (wf_gnode *nd = &g->nodes[id]; nd;) nd = node_exec(nd, w);
}

weft_status weft_graph_run(weft_pool *pool, weft_graph *g) { return weft_graph_run_ex(pool, g, NULL); }

weft_status weft_graph_run_ex(weft_pool *pool, weft_graph *g, const weft_run_options *opts) {
    if (!pool || !g)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_graph_run: %s is NULL", pool ? "graph" : "pool");
    int idle = 0;
    if (!atomic_compare_exchange_strong(&g->running, &idle, 1))
        return wf_error(WEFT_ERR_BUSY, "weft_graph_run: the graph is already running");
    weft_status st = g->dirty ? wf_graph_build_dag(g) : WEFT_OK;
    if (st) {
        atomic_store(&g->running, 0);
        return st;
    }
    atomic_store_explicit(&g->fail_task, WEFT_TASK_NONE, memory_order_relaxed);
    atomic_store_explicit(&g->skipped, 0, memory_order_relaxed);
    g->measuring = opts && opts->measure;
    g->global = opts && opts->global_priority && g->n > 0;
    if (g->global) {
        if (g->ready.cap < g->n) { /* kept for later runs: a re-run allocates nothing */
            uint32_t *ids = wf_alloc(g->n * sizeof(uint32_t), 16);
            if (!ids) {
                atomic_store(&g->running, 0);
                return wf_error(WEFT_ERR_NOMEM,
                                "weft_graph_run: out of memory for the ready queue");
            }
            wf_free(g->ready.ids, g->ready.cap * sizeof(uint32_t));
            g->ready.ids = ids;
            g->ready.cap = g->n;
        }
        g->ready.n = 0;
        g->tokens_set = 1;
    } else if (g->tokens_set) { /* the last run used nodes' jobs as tokens */
        for (size_t i = 0; i < g->n; i++) g->nodes[i].job.run = wf_graph_node_run;
        g->tokens_set = 0;
    }
    if (g->measuring && wf_graph_side_alloc(g, (void **)&g->measured_ns, sizeof(uint64_t))) {
        atomic_store(&g->running, 0);
        return wf_error(WEFT_ERR_NOMEM, "weft_graph_run: out of memory for task timings");
    }
    if (g->n > 0) {
        atomic_store_explicit(&g->sinks_left, g->nsinks, memory_order_relaxed);
        int entered;
        wf_worker *w = wf_enter(pool, &entered); /* NULL: no slot to be had, see wf_enter */
        /* every node's job.run and the counters above are published to other workers by
         * the release of the pushes below */
        int routed = 0;
        for (size_t i = g->stats.sources; i > 0; i--) { /* the caller pops source 0 first */
            wf_gnode *src = &g->nodes[g->sources[i - 1]];
            int r = route_affine(pool, w, src);
            if (!r && g->global) ready_insert(pool, w, g, &src, 1, 0);
            else if (!r) wf_push(pool, w, &src->job);
            routed |= r;
        }
        wake_after_batch(pool, 1, routed);
        if (w)
            wf_help_until_zero(w, &g->sinks_left);
        else
            wf_wait_without_slot(pool, &g->sinks_left);
        if (entered) wf_leave(pool);
    }
    g->measured_valid = g->measuring;
    g->global = 0;
    uint32_t failed = atomic_load_explicit(&g->fail_task, memory_order_relaxed);
    if (failed != WEFT_TASK_NONE) {
        char label[160];
        wf_task_label(g, failed, label, sizeof label);
        st = wf_error(WEFT_ERR_TASK_FAILED,
                      "weft_graph_run: %s returned %d; %u dependent task(s) skipped", label,
                      g->fail_value, atomic_load_explicit(&g->skipped, memory_order_relaxed));
    }
    atomic_store(&g->running, 0);
    return st;
}

weft_status weft_graph_last_failure(const weft_graph *g, weft_task_id *task, int *value) {
    if (!g) return wf_error(WEFT_ERR_INVALID_ARG, "weft_graph_last_failure: graph is NULL");
    uint32_t f = atomic_load_explicit(&((weft_graph *)g)->fail_task, memory_order_relaxed);
    if (task) *task = f;
    if (value) *value = f == WEFT_TASK_NONE ? 0 : g->fail_value;
    return WEFT_OK;
}

size_t weft_graph_last_skipped(const weft_graph *g) {
    return g ? atomic_load_explicit(&((weft_graph *)g)->skipped, memory_order_relaxed) : 0;
}
