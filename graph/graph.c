/* graph/graph.c - building task graphs: tasks, edges, accesses, hints; validation. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "graph/internal.h"

weft_status weft_graph_create(weft_graph **out) {
    if (!out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_graph_create: out is NULL");
    weft_graph *g = wf_calloc(sizeof(*g), WF_CACHE_LINE);
    *out = g;
    if (!g) return wf_error(WEFT_ERR_NOMEM, "weft_graph_create: out of memory");
    g->dirty = 1;
    atomic_init(&g->fail_task, WEFT_TASK_NONE);
    return WEFT_OK;
}

static void free_run_side(weft_graph *g) {
    wf_free(g->succ, g->nsucc * sizeof(*g->succ));
    wf_free(g->sources, g->nsources * sizeof(*g->sources));
    wf_free(g->level, (g->n ? g->n : 1) * sizeof(*g->level));
    wf_free(g->order, (g->n ? g->n : 1) * sizeof(*g->order));
    wf_free(g->release_first, (g->n ? g->n : 1) * sizeof(*g->release_first));
    wf_free(g->release, g->nrelease * sizeof(*g->release));
    g->order = NULL;
    g->release_first = NULL;
    g->release = NULL;
    g->nrelease = 0;
    g->succ = NULL;
    g->sources = NULL;
    g->level = NULL;
    g->nsucc = g->nsources = 0;
}

void weft_graph_destroy(weft_graph *g) {
    if (!g) return;
    free_run_side(g);
    wf_free(g->nodes, g->cap * sizeof(*g->nodes));
    wf_free(g->cost, g->cap * sizeof(*g->cost));
    wf_free(g->name_off, g->cap * sizeof(*g->name_off));
    wf_free(g->affinity, g->cap * sizeof(*g->affinity));
    wf_free(g->measured_ns, g->cap * sizeof(*g->measured_ns));
    wf_free(g->names, g->names_cap);
    wf_free(g->edges, g->edges_cap * sizeof(*g->edges));
    wf_free(g->acc, g->acc_cap * sizeof(*g->acc));
    wf_free(g->ready.ids, g->ready.cap * sizeof(uint32_t));
    wf_free(g, sizeof(*g));
}

/* A graph may be changed only when it exists and is not running. */
static weft_status mutable_graph(weft_graph *g, const char *fn) {
    if (!g) return wf_error(WEFT_ERR_INVALID_ARG, "%s: graph is NULL", fn);
    if (atomic_load(&g->running))
        return wf_error(WEFT_ERR_BUSY, "%s: the graph is running", fn);
    return WEFT_OK;
}

/* A change that succeeded makes the analysis stale (called after validation, so a
 * rejected call leaves the analysis and the arrays it handed out intact). */
static void invalidate(weft_graph *g) {
    if (!g->dirty) {
        free_run_side(g);
        g->dirty = 1;
    }
}

static weft_status check_task(const weft_graph *g, weft_task_id t, const char *fn) {
    if (t >= g->n)
        return wf_error(WEFT_ERR_RANGE, "%s: task id %u, the graph has %zu tasks", fn, t, g->n);
    return WEFT_OK;
}

/* Makes room for `need` tasks in the nodes and all side arrays (all-or-nothing). */
static int grow_tasks(weft_graph *g, size_t need) {
    if (need <= g->cap) return 0;
    size_t ncap = g->cap ? g->cap : 64;
    while (ncap < need) ncap *= 2;
    void *nodes = wf_alloc(ncap * sizeof(wf_gnode), WF_CACHE_LINE);
    void *cost = wf_alloc(ncap * sizeof(double), 16);
    void *names = wf_alloc(ncap * sizeof(uint32_t), 16);
    void *aff = g->affinity ? wf_calloc(ncap * sizeof(uint32_t), 16) : NULL;
    void *meas = g->measured_ns ? wf_calloc(ncap * sizeof(uint64_t), 16) : NULL;
    if (!nodes || !cost || !names || (g->affinity && !aff) || (g->measured_ns && !meas)) {
        wf_free(nodes, ncap * sizeof(wf_gnode));
        wf_free(cost, ncap * sizeof(double));
        wf_free(names, ncap * sizeof(uint32_t));
        wf_free(aff, ncap * sizeof(uint32_t));
        wf_free(meas, ncap * sizeof(uint64_t));
        return -1;
    }
    if (g->cap) {
        memcpy(nodes, g->nodes, g->n * sizeof(wf_gnode));
        memcpy(cost, g->cost, g->n * sizeof(double));
        memcpy(names, g->name_off, g->n * sizeof(uint32_t));
        if (aff) memcpy(aff, g->affinity, g->n * sizeof(uint32_t));
        if (meas) memcpy(meas, g->measured_ns, g->n * sizeof(uint64_t));
    }
    wf_free(g->nodes, g->cap * sizeof(wf_gnode));
    wf_free(g->cost, g->cap * sizeof(double));
    wf_free(g->name_off, g->cap * sizeof(uint32_t));
    wf_free(g->affinity, g->cap * sizeof(uint32_t));
    wf_free(g->measured_ns, g->cap * sizeof(uint64_t));
    g->nodes = nodes;
    g->cost = cost;
    g->name_off = names;
    g->affinity = aff;
    g->measured_ns = meas;
    g->cap = ncap;
    return 0;
}

/* Allocates a lazily created per-task array (zeroed) of cap entries. */
int wf_graph_side_alloc(weft_graph *g, void **arr, size_t elem) {
    if (*arr) return 0;
    if (g->cap == 0 && grow_tasks(g, 1)) return -1; /* freed as cap * elem: cap >= 1 */
    *arr = wf_calloc(g->cap * elem, 16);
    return *arr ? 0 : -1;
}

weft_status weft_graph_reserve(weft_graph *g, size_t tasks, size_t edges) {
    weft_status st = mutable_graph(g, "weft_graph_reserve");
    if (st) return st;
    if (tasks >= WEFT_TASK_NONE || edges >= UINT32_MAX)
        return wf_error(WEFT_ERR_RANGE, "weft_graph_reserve: %zu tasks, %zu edges: too many",
                        tasks, edges);
    size_t old_cap = g->cap;
    int grown_ok = grow_tasks(g, tasks) == 0;
    if (g->cap != old_cap) invalidate(g); /* the nodes moved: release leaves point at them */
    if (!grown_ok ||
        wf_array_reserve((void **)&g->edges, &g->edges_cap, edges, sizeof(*g->edges)))
        return wf_error(WEFT_ERR_NOMEM, "weft_graph_reserve: out of memory for %zu tasks and "
                        "%zu edges", tasks, edges);
    return WEFT_OK;
}

weft_status weft_graph_add_task(weft_graph *g, weft_task_fn fn, void *arg, const char *name,
                                weft_task_id *out) {
    weft_status st = mutable_graph(g, "weft_graph_add_task");
    if (st) return st;
    if (!fn) return wf_error(WEFT_ERR_INVALID_ARG, "weft_graph_add_task: fn is NULL");
    if (g->n >= WEFT_TASK_NONE - 1)
        return wf_error(WEFT_ERR_RANGE, "weft_graph_add_task: too many tasks");
    size_t name_len = name ? strlen(name) + 1 : 0;
    if (g->names_len + name_len >= WF_NO_NAME)
        return wf_error(WEFT_ERR_RANGE, "weft_graph_add_task: more than 4 GiB of task names");
    /* allocate first: a failure leaves the graph and its analysis as they were */
    if ((g->n == g->cap && grow_tasks(g, g->n + 1)) ||
        (name && wf_array_reserve((void **)&g->names, &g->names_cap, g->names_len + name_len, 1)))
        return wf_error(WEFT_ERR_NOMEM, "weft_graph_add_task: out of memory at task %zu", g->n);
    invalidate(g);
    uint32_t name_off = WF_NO_NAME;
    if (name) {
        memcpy(g->names + g->names_len, name, name_len);
        name_off = (uint32_t)g->names_len;
        g->names_len += name_len;
    }
    wf_gnode *nd = &g->nodes[g->n];
    *nd = (wf_gnode){.job.run = wf_graph_node_run, .fn = fn, .arg = arg, .graph = g};
    g->cost[g->n] = 1.0;
    g->name_off[g->n] = name_off;
    if (out) *out = (weft_task_id)g->n;
    g->n++;
    return WEFT_OK;
}

weft_status weft_graph_set_cost(weft_graph *g, weft_task_id t, double cost) {
    weft_status st = mutable_graph(g, "weft_graph_set_cost");
    if (st || (st = check_task(g, t, "weft_graph_set_cost"))) return st;
    if (!isfinite(cost) || cost < 0)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_graph_set_cost: cost %g of task %u must be "
                        "finite and >= 0", cost, t);
    invalidate(g); /* priorities, work and span change */
    g->cost[t] = cost;
    return WEFT_OK;
}

weft_status weft_graph_set_affinity(weft_graph *g, weft_task_id t, weft_affinity_kind kind,
                                    unsigned index) {
    weft_status st = mutable_graph(g, "weft_graph_set_affinity");
    if (st || (st = check_task(g, t, "weft_graph_set_affinity"))) return st;
    if (kind != WEFT_AFFINITY_NONE && kind != WEFT_AFFINITY_WORKER && kind != WEFT_AFFINITY_NUMA)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_graph_set_affinity: unknown kind %d", (int)kind);
    if (index > WF_AFF_INDEX_MASK)
        return wf_error(WEFT_ERR_RANGE, "weft_graph_set_affinity: index %u too large", index);
    /* a hint is read at run time only: the analysis stays valid */
    if (kind != WEFT_AFFINITY_NONE && wf_graph_side_alloc(g, (void **)&g->affinity, sizeof(uint32_t)))
        return wf_error(WEFT_ERR_NOMEM, "weft_graph_set_affinity: out of memory");
    if (g->affinity) g->affinity[t] = kind == WEFT_AFFINITY_NONE ? 0 : ((uint32_t)kind << WF_AFF_KIND_SHIFT) | index;
    return WEFT_OK;
}

weft_status wf_graph_push_edge(weft_graph *g, uint32_t from, uint32_t to) {
    if (wf_array_reserve((void **)&g->edges, &g->edges_cap, g->nedges + 1, sizeof(*g->edges)))
        return wf_error(WEFT_ERR_NOMEM, "task graph: out of memory for edge %u -> %u", from, to);
    g->edges[g->nedges++] = (wf_edge){from, to};
    return WEFT_OK;
}

weft_status weft_graph_add_edge(weft_graph *g, weft_task_id before, weft_task_id after) {
    weft_status st = mutable_graph(g, "weft_graph_add_edge");
    if (st || (st = check_task(g, before, "weft_graph_add_edge")) ||
        (st = check_task(g, after, "weft_graph_add_edge")))
        return st;
    if (wf_array_reserve((void **)&g->edges, &g->edges_cap, g->nedges + 1, sizeof(*g->edges)))
        return wf_error(WEFT_ERR_NOMEM, "weft_graph_add_edge: out of memory for edge %u -> %u",
                        before, after);
    invalidate(g);
    g->edges[g->nedges++] = (wf_edge){before, after};
    return WEFT_OK;
}

static weft_status add_access(weft_graph *g, weft_task_id t, weft_access_mode mode, int space,
                              uintptr_t lo, uintptr_t hi, const char *fn) {
    weft_status st = mutable_graph(g, fn);
    if (st || (st = check_task(g, t, fn))) return st;
    if (mode != WEFT_READ && mode != WEFT_WRITE && mode != WEFT_READWRITE)
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: invalid access mode %d for task %u", fn,
                        (int)mode, t);
    if (wf_array_reserve((void **)&g->acc, &g->acc_cap, g->nacc + 1, sizeof(*g->acc)))
        return wf_error(WEFT_ERR_NOMEM, "%s: out of memory", fn);
    invalidate(g);
    g->acc[g->nacc++] = (wf_access){.task = t, .mode = (uint8_t)mode, .space = (uint8_t)space,
                                    .lo = lo, .hi = hi, .seq = g->nacc};
    return WEFT_OK;
}

weft_status weft_graph_access(weft_graph *g, weft_task_id t, weft_access_mode mode,
                              const void *ptr, size_t size) {
    if (g && (!ptr || size == 0 || (uintptr_t)ptr + (size - 1) < (uintptr_t)ptr))
        return wf_error(WEFT_ERR_INVALID_ARG,
                        "weft_graph_access: task %u: invalid region %p + %zu bytes", t, ptr, size);
    return add_access(g, t, mode, 0, (uintptr_t)ptr, (uintptr_t)ptr + (size ? size - 1 : 0),
                      "weft_graph_access");
}

weft_status weft_graph_access_handle(weft_graph *g, weft_task_id t, weft_access_mode mode,
                                     uintptr_t handle) {
    return add_access(g, t, mode, 1, handle, handle, "weft_graph_access_handle");
}

size_t weft_graph_task_count(const weft_graph *g) { return g ? g->n : 0; }

const char *wf_task_label(const weft_graph *g, uint32_t id, char *buf, size_t size) {
    if (g->name_off[id] != WF_NO_NAME)
        snprintf(buf, size, "task '%s' (id %u)", g->names + g->name_off[id], id);
    else
        snprintf(buf, size, "task %u", id);
    return buf;
}
