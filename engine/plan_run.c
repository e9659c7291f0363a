/* engine/plan_run.c - weft_plan_run, fetches and the plan report. */
#include <stdint.h>
#include <string.h>

#include "engine/internal.h"

/* Binds feeds to placeholders; marks shapes stale when a fed shape changed. */
static weft_status bind_feeds(weft_plan *plan, size_t nfeeds, const weft_feed *feeds) {
    if (nfeeds && !feeds) return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_run: feeds is NULL");
    uint32_t stamp = ++plan->run_stamp;
    if (stamp == 0) { /* wrapped: clear the old stamps */
        memset(plan->fed, 0, plan->n * sizeof *plan->fed);
        stamp = ++plan->run_stamp;
    }
    const weft_tgraph *g = plan->graph;
    size_t nfed = 0; /* distinct placeholders of the plan fed in this run */
    for (size_t i = 0; i < nfeeds; i++) {
        uint32_t v = feeds[i].placeholder.id;
        const weft_tensor *t = feeds[i].tensor;
        if (v >= g->n || g->nodes[v].op != WF_OP_PLACEHOLDER)
            return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_run: feeds[%zu] names value %u, "
                            "not a placeholder", i, v);
        if (!t) return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_run: feeds[%zu] has no tensor", i);
        if (v >= plan->map_len || plan->map[v] == UINT32_MAX) continue; /* not needed */
        wf_pnode *p = &plan->nodes[plan->map[v]];
        const char *name = wf_tnode_name(g, &g->nodes[v]);
        char want[160], got[160];
        int ok = t->ref.dtype == p->build_desc.dtype &&
                 t->ref.shape.ndim == p->build_desc.shape.ndim;
        for (int d = 0; ok && d < t->ref.shape.ndim; d++)
            ok = p->build_desc.shape.d[d] < 0 || p->build_desc.shape.d[d] == t->ref.shape.d[d];
        if (!ok)
            return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_run: placeholder '%s' (value %u) is "
                            "%s %s, fed %s %s", name ? name : "", v,
                            weft_dtype_name(p->build_desc.dtype),
                            wf_shape_str(&p->build_desc.shape, want, sizeof want),
                            weft_dtype_name(t->ref.dtype), wf_shape_str(&t->ref.shape, got, sizeof got));
        if (!wf_shape_equal(&p->out.shape, &t->ref.shape)) plan->shapes_valid = 0;
        p->out.shape = t->ref.shape;
        p->out.data = t->ref.data;
        nfed += plan->fed[plan->map[v]] != stamp;
        plan->fed[plan->map[v]] = stamp;
    }
    if (nfed == plan->nplaceholders) return WEFT_OK;
    for (size_t i = 0; i < plan->n; i++) { /* name the one that is missing */
        const wf_pnode *p = &plan->nodes[i];
        if (p->op == WF_OP_PLACEHOLDER && plan->fed[i] != stamp) {
            const char *name = wf_tnode_name(g, &g->nodes[p->node]);
            return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_run: placeholder '%s' (value %u) "
                            "is not fed", name ? name : "", p->node);
        }
    }
    return WEFT_OK;
}

/* Runs the op nodes on the calling thread in a topological order of the task DAG (graph
 * order is not one when a variable is read by a node created after its update: the
 * reader must still run first). A node that fails or is skipped skips its successors,
 * as in a scheduled run. */
static weft_status run_inline(weft_plan *plan) {
    weft_status st = weft_graph_analyze(plan->tasks, NULL);
    if (st) return st;
    if (!plan->inline_order && (st = wf_plan_inline_order(plan))) return st;
    for (size_t t = 0; t < plan->ntasks; t++) plan->nodes[plan->inline_order[t]].failed = 0;
    for (size_t i = 0; i < plan->ntasks; i++) {
        wf_pnode *p = &plan->nodes[plan->inline_order[i]];
        if (!p->failed && wf_pnode_exec(p) == 0) continue;
        const weft_task_id *succ;
        size_t ns;
        weft_graph_successors(plan->tasks, p->task, &succ, &ns);
        for (size_t k = 0; k < ns; k++) plan->nodes[plan->task_node[succ[k]]].failed = 1;
    }
    return WEFT_OK;
}

/* After the first scheduled run on a multi-NUMA pool: ask each task to run where its
 * buffer lives, so that the placement holds from run to run. */
static void keep_placement(weft_plan *plan) {
    if (plan->numa_placed || weft_pool_numa_groups(plan->pool) < 2) return;
    for (size_t i = 0; i < plan->n; i++) {
        const wf_pnode *p = &plan->nodes[i];
        if (p->task != WEFT_TASK_NONE && p->group >= 0 &&
            weft_graph_set_affinity(plan->tasks, p->task, WEFT_AFFINITY_NUMA,
                                    (unsigned)p->group) == WEFT_OK)
            plan->placed_tasks++;
    }
    plan->numa_placed = 1;
}

weft_status weft_plan_run(weft_plan *plan, size_t nfeeds, const weft_feed *feeds) {
    if (!plan) return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_run: plan is NULL");
    plan->fetch_valid = 0;
    weft_status st = bind_feeds(plan, nfeeds, feeds);
    if (st) return st;
    if (!plan->shapes_valid && (st = wf_plan_resolve(plan))) return st;
    atomic_store_explicit(&plan->fail_claimed, 0, memory_order_relaxed);
    /* inline: too little work to share, one thread, or (nearly) no parallelism between
     * the nodes (a chain: large ops still split across the pool) */
    int inline_run = plan->work_ns < plan->opts.inline_below_ns ||
                     weft_pool_threads(plan->pool) == 1;
    if (!inline_run && plan->opts.inline_below_ns > 0 &&
        plan->work_ns < WF_PLAN_INLINE_TASK_NS * (double)plan->ntasks) {
        weft_graph_stats gs;
        if ((st = weft_graph_analyze(plan->tasks, &gs))) return st;
        inline_run = gs.parallelism < WF_PLAN_INLINE_PARALLELISM;
    }
    if (inline_run) {
        if ((st = run_inline(plan))) return st;
    } else {
        st = weft_graph_run(plan->pool, plan->tasks);
        if (st && st != WEFT_ERR_TASK_FAILED) return st;
        keep_placement(plan);
    }
    if (atomic_load_explicit(&plan->fail_claimed, memory_order_acquire))
        return wf_error(plan->fail_status, "%s", plan->fail_msg);
    for (size_t i = 0; i < plan->nfetch; i++) {
        const wf_pnode *p = &plan->nodes[plan->fetch[i]];
        wf_tensor_view(&plan->fetch_views[i], p->out.dtype, &p->out.shape, p->out.data);
    }
    plan->fetch_valid = 1;
    return WEFT_OK;
}

weft_status weft_plan_fetch(weft_plan *plan, size_t i, const weft_tensor **out) {
    if (!plan || !out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_fetch: NULL argument");
    if (i >= plan->nfetch)
        return wf_error(WEFT_ERR_RANGE, "weft_plan_fetch: fetch %zu, the plan has %zu", i,
                        plan->nfetch);
    if (!plan->fetch_valid)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_fetch: the last run did not succeed");
    *out = &plan->fetch_views[i];
    return WEFT_OK;
}

weft_status weft_plan_value_buffer(const weft_plan *plan, weft_value value, size_t *buffer) {
    if (!plan || !buffer) return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_value_buffer: NULL argument");
    if (!plan->shapes_valid)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_value_buffer: the plan has not run yet");
    *buffer = SIZE_MAX;
    if (value.id < plan->map_len && plan->map[value.id] != UINT32_MAX) {
        const wf_pnode *p = &plan->nodes[plan->map[value.id]];
        if (p->buf != UINT32_MAX) *buffer = p->buf;
    }
    return WEFT_OK;
}

weft_status weft_plan_stats_get(weft_plan *plan, weft_plan_stats *out) {
    if (!plan || !out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_stats_get: NULL argument");
    memset(out, 0, sizeof *out);
    weft_status st;
    if (!plan->shapes_valid) {
        /* no run yet: estimate with the build-time shapes (open dimensions as 1) */
        int any_open = 0;
        for (size_t i = 0; i < plan->n; i++)
            if (plan->nodes[i].op == WF_OP_PLACEHOLDER) {
                wf_pnode *p = &plan->nodes[i];
                for (int d = 0; d < p->out.shape.ndim; d++)
                    if (p->out.shape.d[d] < 0) { p->out.shape.d[d] = 1; any_open = 1; }
            }
        if ((st = wf_plan_resolve(plan))) return st;
        if (any_open) plan->shapes_valid = 0; /* the first run resolves again */
    }
    if ((st = weft_graph_analyze(plan->tasks, &out->graph))) return st;
    out->nodes = plan->n;
    out->tasks = plan->ntasks;
    out->backward_nodes = plan->nbackward;
    out->buffer_bytes = atomic_load_explicit(&plan->buffer_bytes, memory_order_relaxed);
    out->allocations = atomic_load_explicit(&plan->allocations, memory_order_relaxed);
    out->placed_tasks = plan->placed_tasks;
    out->planned_bytes = plan->planned_bytes;
    out->naive_bytes = plan->naive_bytes;
    out->scratch_bytes = plan->scratch_bytes;
    out->fused_bytes = plan->fused_bytes;
    return WEFT_OK;
}
