/* engine/plan.c - compiling a tensor graph into a plan, and running it.
 *
 * Compile: the nodes the fetches and targets need (one reverse sweep: inputs have
 * smaller ids), copied in graph order; one task per op node; an edge per data
 * dependency between op nodes; and, for every update of a variable, an edge from each
 * other node of the plan that reads the variable (reads happen before the write, WAR)
 * and from the previous update of the same variable (WAW, in graph order).
 *
 * Run: bind the feeds, resolve shapes when a fed shape changed, then either schedule the
 * task graph on the pool or, for a plan whose estimated work is too small to share,
 * run the nodes in graph order on the calling thread. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "engine/internal.h"

weft_plan_options weft_plan_options_default(void) {
    wf_env env;
    wf_env_read(&env);
    return (weft_plan_options){.check_numerics = env.check_numerics,
                               .inline_below_ns = WF_PLAN_INLINE_BELOW_NS,
                               .memory_plan = 1};
}

void weft_plan_destroy(weft_plan *plan) {
    if (!plan) return;
    if (plan->nodes) wf_plan_free_buffers(plan);
    wf_free(plan->bufs, plan->bufs_cap * sizeof *plan->bufs + 1);
    wf_free(plan->task_node, plan->ntasks * sizeof *plan->task_node + 4);
    wf_free(plan->inline_order, plan->ntasks * sizeof *plan->inline_order + 4);
    weft_graph_destroy(plan->tasks);
    wf_free(plan->nodes, plan->n * sizeof *plan->nodes);
    wf_free(plan->fed, plan->n * sizeof *plan->fed);
    /* the arrays were allocated one byte longer, so that none is of size 0 */
    wf_free(plan->in_idx, plan->nin_total * sizeof *plan->in_idx + 1);
    wf_free(plan->in_refs, plan->nin_total * sizeof *plan->in_refs + 1);
    wf_free(plan->fetch, plan->nfetch * sizeof *plan->fetch + 1);
    wf_free(plan->fetch_views, plan->nfetch * sizeof *plan->fetch_views + 1);
    wf_free(plan->map, plan->map_len * sizeof *plan->map + 1);
    wf_free(plan, sizeof *plan);
}

static int is_done(const wf_plan_extras *x, size_t v) {
    return x && x->is_done && v < x->ndone && x->is_done[v];
}

static weft_status check_list(const weft_tgraph *g, size_t n, const weft_value *v,
                              const char *what) {
    if (n && !v) return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_create: %s is NULL", what);
    for (size_t i = 0; i < n; i++)
        if (v[i].id >= g->n)
            return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_create: %s[%zu] = value %u is not "
                            "in the graph (%zu values)", what, i, v[i].id, g->n);
    return WEFT_OK;
}

/* Marks the nodes needed by fetches and targets; returns how many. */
static size_t mark_needed(const weft_tgraph *g, const wf_plan_extras *x, unsigned char *need,
                          size_t nf, const weft_value *f, size_t nt, const weft_value *t) {
    for (size_t i = 0; i < nf; i++) need[f[i].id] = 1;
    for (size_t i = 0; i < nt; i++) need[t[i].id] = 1;
    size_t count = 0;
    for (size_t v = g->n; v-- > 0;) {
        if (!need[v]) continue;
        count++;
        if (is_done(x, v)) continue; /* computed by an earlier plan: a leaf here */
        const wf_tnode *node = &g->nodes[v];
        for (uint32_t k = 0; k < node->nin; k++) need[g->inputs[node->in_off + k]] = 1;
    }
    return count;
}

/* Copies the needed nodes into the plan and binds the leaves' storage (and the data of
 * nodes an earlier plan computed, which become leaves without inputs). */
static weft_status copy_nodes(weft_plan *plan, const wf_plan_extras *x, const unsigned char *need) {
    weft_tgraph *g = plan->graph;
    size_t j = 0, nin = 0;
    for (size_t v = 0; v < g->n; v++) {
        if (!need[v]) continue;
        const wf_tnode *node = &g->nodes[v];
        if (is_done(x, v)) {
            wf_pnode *p = &plan->nodes[j];
            plan->map[v] = (uint32_t)j++;
            p->def = wf_op_get(WF_OP_CONSTANT);
            p->op = WF_OP_CONSTANT;
            p->plan = plan;
            p->node = (uint32_t)v;
            p->task = WEFT_TASK_NONE;
            p->buf = UINT32_MAX;
            p->group = -1;
            p->build_desc = node->desc;
            p->out = x->done[v];
            continue;
        }
        wf_pnode *p = &plan->nodes[j];
        plan->map[v] = (uint32_t)j;
        p->def = wf_op_get((wf_op_id)node->op);
        p->op = (wf_op_id)node->op;
        p->plan = plan;
        p->node = (uint32_t)v;
        p->nin = node->nin;
        p->in_off = (uint32_t)nin;
        p->task = WEFT_TASK_NONE;
        p->buf = UINT32_MAX;
        p->backward = node->backward;
        p->group = -1;
        p->attrs = node->attrs;
        p->build_desc = node->desc;
        p->out.dtype = node->desc.dtype;
        p->out.shape = node->desc.shape;
        for (uint32_t k = 0; k < node->nin; k++)
            plan->in_idx[nin + k] = plan->map[g->inputs[node->in_off + k]];
        nin += node->nin;
        if (node->storage) p->out = node->storage->ref; /* variables, constants */
        plan->nplaceholders += node->op == WF_OP_PLACEHOLDER;
        plan->nbackward += node->backward;
        j++;
    }
    return WEFT_OK;
}

/* "<op>" or "<op> (backward)": names made once per process (a dynamic graph compiles
 * plans all the time; formatting a name per task would cost a third of it). */
static char backward_names[WF_OP_COUNT][48];
static pthread_once_t backward_names_once = PTHREAD_ONCE_INIT;

static void make_backward_names(void) {
    for (int op = 0; op < WF_OP_COUNT; op++)
        snprintf(backward_names[op], sizeof backward_names[op], "%s (backward)",
                 wf_op_get((wf_op_id)op)->name);
}

static const char *task_name(const wf_pnode *p) {
    if (!p->backward) return p->def->name;
    pthread_once(&backward_names_once, make_backward_names);
    return backward_names[p->op];
}

/* One task per op node; data edges; WAR/WAW edges of variable updates. */
static weft_status build_tasks(weft_plan *plan) {
    weft_status st = weft_graph_create(&plan->tasks);
    if (st) return st;
    size_t nops = 0;
    for (size_t i = 0; i < plan->n; i++) nops += !(plan->nodes[i].def->flags & WF_OPF_LEAF);
    if ((st = weft_graph_reserve(plan->tasks, nops, plan->nin_total))) return st;
    if (!(plan->task_node = wf_alloc(nops * sizeof *plan->task_node + 4, 16)))
        return wf_error(WEFT_ERR_NOMEM, "weft_plan_create: out of memory");
    plan->ntasks = nops; /* sizes task_node (and inline_order) for the free */
    for (size_t i = 0; i < plan->n && !st; i++) {
        wf_pnode *p = &plan->nodes[i];
        if (p->def->flags & WF_OPF_LEAF) continue;
        if ((st = weft_graph_add_task(plan->tasks, wf_pnode_exec, p, task_name(p), &p->task)))
            break;
        plan->task_node[p->task] = (uint32_t)i;
        for (uint32_t k = 0; k < p->nin && !st; k++) {
            const wf_pnode *q = &plan->nodes[plan->in_idx[p->in_off + k]];
            if (q->task != WEFT_TASK_NONE) st = weft_graph_add_edge(plan->tasks, q->task, p->task);
        }
    }
    for (size_t u = 0; u < plan->n && !st; u++) {
        wf_pnode *up = &plan->nodes[u];
        if (!(up->def->flags & WF_OPF_UPDATE)) continue;
        uint32_t var = plan->in_idx[up->in_off];
        for (size_t r = 0; r < plan->n && !st; r++) {
            wf_pnode *rp = &plan->nodes[r];
            if (r == u || rp->task == WEFT_TASK_NONE) continue;
            int reads = 0;
            for (uint32_t k = 0; k < rp->nin; k++) reads |= plan->in_idx[rp->in_off + k] == var;
            if (!reads) continue;
            if ((rp->def->flags & WF_OPF_UPDATE) && plan->in_idx[rp->in_off] == var) {
                if (r < u) st = weft_graph_add_edge(plan->tasks, rp->task, up->task); /* WAW */
            } else {
                st = weft_graph_add_edge(plan->tasks, rp->task, up->task); /* WAR */
            }
        }
    }
    /* static plans: report a cycle (a read of a variable that depends on its own update)
     * now; dynamic plans are analysed by their one run, after their costs are set */
    if (!st && !plan->pin_forward) st = weft_graph_analyze(plan->tasks, NULL);
    if (st == WEFT_ERR_CYCLE)
        st = wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_create: a node reads a variable that "
                      "an update it depends on writes (%s)", weft_last_error());
    return st;
}

/* The inline order: tasks in a topological order of the task DAG (Kahn, ties in id
 * order), as plan node indexes. Made once per plan (the DAG does not change with
 * shapes), so later inline runs allocate nothing. Needs an analysed task graph. */
weft_status wf_plan_inline_order(weft_plan *plan) {
    size_t n = plan->ntasks;
    uint32_t *order = wf_alloc(n * sizeof *order + 4, 16);
    uint32_t *indeg = wf_calloc(n * sizeof *indeg + 4, 16);
    if (!order || !indeg) {
        wf_free(order, n * sizeof *order + 4);
        wf_free(indeg, n * sizeof *indeg + 4);
        return wf_error(WEFT_ERR_NOMEM, "plan: out of memory");
    }
    for (uint32_t t = 0; t < n; t++) {
        const weft_task_id *succ;
        size_t ns;
        weft_graph_successors(plan->tasks, t, &succ, &ns);
        for (size_t k = 0; k < ns; k++) indeg[succ[k]]++;
    }
    size_t head = 0, tail = 0;
    for (uint32_t t = 0; t < n; t++)
        if (!indeg[t]) order[tail++] = t;
    while (head < tail) {
        const weft_task_id *succ;
        size_t ns;
        weft_graph_successors(plan->tasks, order[head++], &succ, &ns);
        for (size_t k = 0; k < ns; k++)
            if (--indeg[succ[k]] == 0) order[tail++] = succ[k];
    }
    for (size_t i = 0; i < n; i++) order[i] = plan->task_node[order[i]];
    wf_free(indeg, n * sizeof *indeg + 4);
    plan->inline_order = order;
    return WEFT_OK;
}

weft_status weft_plan_create(weft_tgraph *g, weft_pool *pool, size_t nfetch,
                             const weft_value *fetches, size_t ntarget,
                             const weft_value *targets, const weft_plan_options *opts,
                             weft_plan **out) {
    return wf_plan_create_ex(g, pool, nfetch, fetches, ntarget, targets, opts, NULL, out);
}

weft_status wf_plan_create_ex(weft_tgraph *g, weft_pool *pool, size_t nfetch,
                              const weft_value *fetches, size_t ntarget,
                              const weft_value *targets, const weft_plan_options *opts,
                              const wf_plan_extras *x, weft_plan **out) {
    if (!g || !pool || !out)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_create: NULL graph, pool or out");
    *out = NULL;
    if (nfetch + ntarget == 0)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_plan_create: nothing to fetch or update");
    weft_status st = check_list(g, nfetch, fetches, "fetches");
    if (st || (st = check_list(g, ntarget, targets, "targets"))) return st;
    weft_plan *plan = wf_calloc(sizeof *plan, 64);
    unsigned char *need = wf_calloc(g->n, 16);
    if (!plan || !need) {
        wf_free(plan, sizeof *plan);
        wf_free(need, g->n);
        return wf_error(WEFT_ERR_NOMEM, "weft_plan_create: out of memory");
    }
    plan->graph = g;
    plan->pool = pool;
    plan->opts = opts ? *opts : weft_plan_options_default();
    plan->arena = x ? x->arena : NULL;
    plan->pin_forward = x && x->dynamic;
    plan->n = mark_needed(g, x, need, nfetch, fetches, ntarget, targets);
    for (size_t v = 0; v < g->n; v++)
        if (need[v] && !is_done(x, v)) plan->nin_total += g->nodes[v].nin;
    plan->map_len = g->n;
    plan->nfetch = nfetch;
    plan->nodes = wf_calloc(plan->n * sizeof *plan->nodes, 64);
    plan->in_idx = wf_alloc(plan->nin_total * sizeof *plan->in_idx + 1, 16);
    plan->in_refs = wf_alloc(plan->nin_total * sizeof *plan->in_refs + 1, 16);
    plan->map = wf_alloc(plan->map_len * sizeof *plan->map + 1, 16);
    plan->fetch = wf_alloc(nfetch * sizeof *plan->fetch + 1, 16);
    plan->fetch_views = wf_calloc(nfetch * sizeof *plan->fetch_views + 1, 16);
    plan->fed = wf_calloc(plan->n * sizeof *plan->fed, 16);
    if (!plan->fed || !plan->nodes || !plan->in_idx || !plan->in_refs || !plan->map || !plan->fetch ||
        !plan->fetch_views) {
        st = wf_error(WEFT_ERR_NOMEM, "weft_plan_create: out of memory");
        goto out;
    }
    memset(plan->map, 0xff, plan->map_len * sizeof *plan->map);
    copy_nodes(plan, x, need);
    for (size_t i = 0; i < nfetch; i++) plan->fetch[i] = plan->map[fetches[i].id];
    st = build_tasks(plan);
out:
    wf_free(need, g->n);
    if (st) {
        weft_plan_destroy(plan);
        return st;
    }
    *out = plan;
    return WEFT_OK;
}
