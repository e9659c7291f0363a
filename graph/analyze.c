/* graph/analyze.c - the dependency analyzer: from tasks, explicit edges and inferred
 * access edges to the DAG a run executes (CSR successor lists without duplicates,
 * in-degrees, sources, sinks), plus levels, critical-path priorities and work/span.
 * A cycle is reported with a task that lies on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

static int u32_cmp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts and de-duplicates v[0..n); returns the new length. */
static size_t sort_unique(uint32_t *v, size_t n) {
    int sorted = 1;
    for (size_t i = 1; i < n && sorted; i++) sorted = v[i - 1] <= v[i];
    if (!sorted) {
        if (n <= 16) {
            for (size_t i = 1; i < n; i++) {
                uint32_t x = v[i];
                size_t j = i;
                for (; j > 0 && v[j - 1] > x; j--) v[j] = v[j - 1];
                v[j] = x;
            }
        } else {
            qsort(v, n, sizeof(*v), u32_cmp);
        }
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || v[k - 1] != v[i]) v[k++] = v[i];
    return k;
}

/* Error path of Kahn's algorithm: every task left with pending predecessors has at least
 * one unfinished predecessor, so walking unfinished predecessors n times from any of them
 * ends on a cycle. */
static weft_status report_cycle(weft_graph *g, const uint32_t *remaining) {
    size_t n = g->n;
    size_t *pstart = wf_calloc((n + 1) * sizeof(size_t), 8);
    uint32_t *preds = wf_alloc((g->nsucc + 1) * sizeof(uint32_t), 4);
    if (!pstart || !preds) {
        wf_free(pstart, (n + 1) * sizeof(size_t));
        wf_free(preds, (g->nsucc + 1) * sizeof(uint32_t));
        return wf_error(WEFT_ERR_CYCLE, "task graph: dependency cycle (out of memory naming it)");
    }
    for (size_t v = 0; v < n; v++)
        for (uint32_t i = g->nodes[v].succ_begin; i < g->nodes[v].succ_end; i++)
            pstart[g->succ[i] + 1]++;
    for (size_t v = 0; v < n; v++) pstart[v + 1] += pstart[v];
    for (size_t v = 0; v < n; v++)
        for (uint32_t i = g->nodes[v].succ_begin; i < g->nodes[v].succ_end; i++)
            preds[pstart[g->succ[i]]++] = (uint32_t)v;
    for (size_t v = n; v > 0; v--) pstart[v] = pstart[v - 1];
    pstart[0] = 0;
    uint32_t cur = 0;
    while (cur < n && remaining[cur] == 0) cur++;
    for (size_t step = 0; step < n; step++)
        for (size_t i = pstart[cur]; i < pstart[cur + 1]; i++)
            if (remaining[preds[i]] != 0) {
                cur = preds[i];
                break;
            }
    char label[160];
    wf_task_label(g, cur, label, sizeof label);
    wf_free(pstart, (n + 1) * sizeof(size_t));
    wf_free(preds, (g->nsucc + 1) * sizeof(uint32_t));
    return wf_error(WEFT_ERR_CYCLE, "task graph: dependency cycle through %s", label);
}

/* The analysis works on compact arrays (offsets, in-degrees, priorities) and writes the
 * nodes once at the end: nodes are large, and every pass over them costs a cache miss
 * per task. */
typedef struct dag_tmp {
    uint32_t *start;  /* n+2 entries: successors of v are succ[start[v] .. start[v+1]) */
    uint32_t *indeg;  /* n */
    uint32_t *order;  /* n: a topological order */
    double *prio;     /* n */
    uint32_t *prio_u32; /* n: scratch */
    int forward;      /* every edge goes from a lower to a higher id */
} dag_tmp;

static void tmp_free(dag_tmp *t, size_t n) {
    wf_free(t->start, (n + 2) * sizeof(uint32_t));
    wf_free(t->indeg, (n ? n : 1) * sizeof(uint32_t));
    wf_free(t->order, (n ? n : 1) * sizeof(uint32_t));
    wf_free(t->prio, (n ? n : 1) * sizeof(double));
    wf_free(t->prio_u32, (n ? n : 1) * sizeof(uint32_t));
}

/* CSR successor lists from the edge list, self-edges dropped, duplicates removed. */
static weft_status build_csr(weft_graph *g, dag_tmp *t) {
    size_t n = g->n, m = g->nedges;
    if (m >= UINT32_MAX)
        return wf_error(WEFT_ERR_RANGE, "task graph: %zu edges, at most %u", m, UINT32_MAX - 1);
    g->succ = wf_alloc((m ? m : 1) * sizeof(weft_task_id), 4);
    g->nsucc = m ? m : 1;
    if (!g->succ) return wf_error(WEFT_ERR_NOMEM, "task graph: out of memory for %zu edges", m);
    uint32_t *start = t->start, *indeg = t->indeg;
    int forward = 1;
    for (size_t e = 0; e < m; e++) {
        const wf_edge *ed = &g->edges[e];
        if (ed->from == ed->to) continue;
        forward &= ed->from < ed->to;
        start[ed->from + 2]++;
        indeg[ed->to]++;
    }
    t->forward = forward;
    for (size_t v = 0; v < n; v++) start[v + 2] += start[v + 1];
    for (size_t e = 0; e < m; e++) { /* start[v+1] is v's fill cursor */
        const wf_edge *ed = &g->edges[e];
        if (ed->from != ed->to) g->succ[start[ed->from + 1]++] = ed->to;
    }
    /* now successors of v are succ[start[v] .. start[v+1]); de-duplicate in place */
    uint32_t out = 0, dups = 0;
    for (size_t v = 0; v < n; v++) {
        uint32_t b = start[v], e = start[v + 1];
        size_t len = sort_unique(g->succ + b, e - b);
        if (out != b) memmove(g->succ + out, g->succ + b, len * sizeof(weft_task_id));
        dups |= len != e - b;
        start[v] = out;
        out += (uint32_t)len;
    }
    start[n] = out;
    if (dups) { /* recount in-degrees without the duplicates */
        memset(indeg, 0, n * sizeof(uint32_t));
        for (uint32_t i = 0; i < out; i++) indeg[g->succ[i]]++;
    }
    g->stats.edges = out;
    return WEFT_OK;
}

/* A topological order: none is stored (g->order stays NULL, meaning the identity) when
 * every edge goes from a lower to a higher id (graphs built in program order, and every
 * access-inferred edge); else Kahn's algorithm. WEFT_ERR_CYCLE names a task on a cycle. */
static weft_status topo_order(weft_graph *g, dag_tmp *t) {
    size_t n = g->n;
    if (t->forward) return WEFT_OK;
    const uint32_t *start = t->start;
    uint32_t *order = t->order;
    uint32_t *remaining = t->prio_u32; /* scratch: in-degrees consumed by the walk */
    memcpy(remaining, t->indeg, n * sizeof(uint32_t));
    size_t head = 0, tail = 0;
    for (size_t v = 0; v < n; v++)
        if (remaining[v] == 0) order[tail++] = (uint32_t)v;
    while (head < tail) {
        uint32_t v = order[head++];
        for (uint32_t i = start[v]; i < start[v + 1]; i++)
            if (--remaining[g->succ[i]] == 0) order[tail++] = g->succ[i];
    }
    if (tail == n) {
        g->order = order;
        t->order = NULL;
        return WEFT_OK;
    }
    for (size_t v = 0; v < n; v++) { /* the nodes' lists, for the cycle walk */
        g->nodes[v].succ_begin = start[v];
        g->nodes[v].succ_end = start[v + 1];
    }
    return report_cycle(g, remaining);
}

#define ORDER(g, k) ((g)->order ? (g)->order[k] : (uint32_t)(k))

/* Priorities = cost-weighted longest path to a sink (backward over the order), work and
 * span; then the one pass that writes the nodes, finds the sources and counts the
 * release leaves. Levels are left to wf_graph_levels (only statistics need them). */
static weft_status measure(weft_graph *g, dag_tmp *t, size_t *leaves) {
    size_t n = g->n;
    const uint32_t *start = t->start, *indeg = t->indeg;
    /* in double: span must be exact enough never to exceed work (nodes keep a float) */
    double work = 0, span = 0;
    double *prio = t->prio;
    const double *cost = g->cost;
    for (size_t k = n; k > 0; k--) {
        uint32_t v = ORDER(g, k - 1);
        double best = 0;
        for (uint32_t i = start[v]; i < start[v + 1]; i++)
            if (prio[g->succ[i]] > best) best = prio[g->succ[i]];
        prio[v] = cost[v] + best;
        work += cost[v];
        if (prio[v] > span) span = prio[v];
    }
    uint32_t *sources = t->prio_u32; /* scratch, copied below */
    size_t nsources = 0;
    uint32_t nsinks = 0;
    *leaves = 0;
    for (size_t v = 0; v < n; v++) {
        uint32_t d = start[v + 1] - start[v];
        if (indeg[v] == 0) sources[nsources++] = (uint32_t)v;
        nsinks += d == 0;
        if (d > 2 * WF_RELEASE_LEAF) *leaves += (d + WF_RELEASE_LEAF - 1) / WF_RELEASE_LEAF;
        wf_gnode *nd = &g->nodes[v];
        nd->succ_begin = start[v];
        nd->succ_end = start[v + 1];
        nd->prio = (float)prio[v];
        nd->indeg = indeg[v];
        atomic_store_explicit(&nd->pending, indeg[v], memory_order_relaxed);
        atomic_store_explicit(&nd->poisoned, 0, memory_order_relaxed);
    }
    g->sources = wf_alloc((nsources ? nsources : 1) * sizeof(uint32_t), 4);
    if (!g->sources) return wf_error(WEFT_ERR_NOMEM, "task graph: out of memory analysing %zu tasks", n);
    memcpy(g->sources, sources, nsources * sizeof(uint32_t));
    g->nsources = nsources ? nsources : 1;
    g->nsinks = nsinks;
    g->stats.tasks = n;
    g->stats.sources = nsources;
    g->stats.work = work;
    g->stats.span = span;
    g->stats.parallelism = span > 0 ? work / span : 0;
    return WEFT_OK;
}

/* Release leaves for the tasks with more than 2 * WF_RELEASE_LEAF successors. */
static weft_status plan_release(weft_graph *g, size_t leaves) {
    size_t n = g->n;
    if (leaves == 0) return WEFT_OK;
    g->release_first = wf_alloc((n ? n : 1) * sizeof(uint32_t), 4);
    g->release = wf_alloc(leaves * sizeof(wf_release), WF_CACHE_LINE);
    if (!g->release_first || !g->release) {
        wf_free(g->release, leaves * sizeof(wf_release));
        g->release = NULL;
        return wf_error(WEFT_ERR_NOMEM, "task graph: out of memory planning %zu release leaves", leaves);
    }
    g->nrelease = leaves;
    size_t k = 0;
    for (size_t v = 0; v < n; v++) {
        wf_gnode *nd = &g->nodes[v];
        uint32_t d = nd->succ_end - nd->succ_begin;
        g->release_first[v] = UINT32_MAX;
        if (d <= 2 * WF_RELEASE_LEAF) continue;
        g->release_first[v] = (uint32_t)k;
        for (uint32_t lo = nd->succ_begin; lo < nd->succ_end; lo += WF_RELEASE_LEAF)
            g->release[k++] = (wf_release){
                .job.run = wf_graph_release_run, .node = nd, .lo = lo,
                .hi = nd->succ_end - lo > WF_RELEASE_LEAF ? lo + WF_RELEASE_LEAF : nd->succ_end};
    }
    return WEFT_OK;
}

weft_status wf_graph_build_dag(weft_graph *g) {
    size_t explicit_edges = g->nedges, n = g->n, leaves = 0;
    weft_status st = wf_infer_access_edges(g);
    size_t n1 = n ? n : 1;
    dag_tmp t = {wf_calloc((n + 2) * sizeof(uint32_t), 4), wf_calloc(n1 * sizeof(uint32_t), 4),
                 wf_alloc(n1 * sizeof(uint32_t), 4), wf_alloc(n1 * sizeof(double), 8),
                 wf_alloc(n1 * sizeof(uint32_t), 4), 0};
    if (!st && (!t.start || !t.indeg || !t.order || !t.prio || !t.prio_u32))
        st = wf_error(WEFT_ERR_NOMEM, "task graph: out of memory analysing %zu tasks", n);
    if (!st) st = build_csr(g, &t);
    g->nedges = explicit_edges; /* inferred edges live in the CSR only */
    if (!st) st = topo_order(g, &t);
    if (!st) st = measure(g, &t, &leaves);
    if (!st) st = plan_release(g, leaves);
    tmp_free(&t, n);
    if (st) {
        wf_free(g->succ, g->nsucc * sizeof(*g->succ));
        wf_free(g->sources, g->nsources * sizeof(*g->sources));
        wf_free(g->order, (g->n ? g->n : 1) * sizeof(*g->order));
        wf_free(g->release_first, (g->n ? g->n : 1) * sizeof(*g->release_first));
        g->order = NULL;
        g->release_first = NULL;
        g->succ = NULL;
        g->sources = NULL;
        g->nsucc = g->nsources = 0;
        return st;
    }
    g->measured_valid = 0;
    g->dirty = 0;
    return WEFT_OK;
}

/* Topological levels (0 for sources) and the level statistics, computed on first need
 * after an analysis. */
static weft_status levels_compute(weft_graph *g) {
    if (g->level) return WEFT_OK;
    size_t n = g->n, levels = 0, max_width = 0;
    uint32_t *level = wf_calloc((n ? n : 1) * sizeof(uint32_t), 4);
    uint32_t *width = wf_calloc((n ? n : 1) * sizeof(uint32_t), 4);
    if (!level || !width) {
        wf_free(level, (n ? n : 1) * sizeof(uint32_t));
        wf_free(width, (n ? n : 1) * sizeof(uint32_t));
        return wf_error(WEFT_ERR_NOMEM, "task graph: out of memory computing levels");
    }
    for (size_t k = 0; k < n; k++) {
        uint32_t v = ORDER(g, k), lv = level[v] + 1;
        const wf_gnode *nd = &g->nodes[v];
        for (uint32_t i = nd->succ_begin; i < nd->succ_end; i++)
            if (level[g->succ[i]] < lv) level[g->succ[i]] = lv;
        if (lv > levels) levels = lv;
        if (++width[level[v]] > max_width) max_width = width[level[v]];
    }
    wf_free(width, (n ? n : 1) * sizeof(uint32_t));
    g->level = level;
    g->stats.levels = levels;
    g->stats.max_width = max_width;
    return WEFT_OK;
}

/* Measured work and span from the durations of the last measured run. */
static void measured_stats(weft_graph *g) {
    double work = 0, span = 0;
    size_t n = g->n;
    double *best = wf_calloc((n ? n : 1) * sizeof(double), 8);
    if (!best) return; /* measured figures stay 0 */
    for (size_t k = n; k > 0; k--) { /* reverse topological order */
        uint32_t v = ORDER(g, k - 1);
        const wf_gnode *nd = &g->nodes[v];
        double b = 0;
        for (uint32_t i = nd->succ_begin; i < nd->succ_end; i++)
            if (best[g->succ[i]] > b) b = best[g->succ[i]];
        best[v] = (double)g->measured_ns[v] * 1e-9 + b;
        work += (double)g->measured_ns[v] * 1e-9;
        if (best[v] > span) span = best[v];
    }
    wf_free(best, (n ? n : 1) * sizeof(double));
    g->stats.measured_work_s = work;
    g->stats.measured_span_s = span;
}

weft_status weft_graph_analyze(weft_graph *g, weft_graph_stats *out) {
    if (!g) return wf_error(WEFT_ERR_INVALID_ARG, "weft_graph_analyze: graph is NULL");
    if (atomic_load(&g->running)) return wf_error(WEFT_ERR_BUSY, "weft_graph_analyze: the graph is running");
    weft_status st = g->dirty ? wf_graph_build_dag(g) : WEFT_OK;
    if (!st) st = levels_compute(g);
    if (st) return st;
    if (g->measured_valid && g->measured_ns) {
        measured_stats(g);
    } else {
        g->stats.measured_work_s = 0;
        g->stats.measured_span_s = 0;
    }
    if (out) *out = g->stats;
    return WEFT_OK;
}

weft_status weft_graph_task_level(const weft_graph *cg, weft_task_id t, size_t *level) {
    if (!cg || !level) return wf_error(WEFT_ERR_INVALID_ARG, "weft_graph_task_level: NULL argument");
    if (cg->dirty) return wf_error(WEFT_ERR_INVALID_ARG, "weft_graph_task_level: graph not analysed");
    if (t >= cg->n) return wf_error(WEFT_ERR_RANGE, "weft_graph_task_level: task id %u of %zu", t, cg->n);
    weft_graph *g = (weft_graph *)cg; /* levels are a cache of the analysis */
    weft_status st = levels_compute(g);
    if (st) return st;
    *level = g->level[t];
    return WEFT_OK;
}

weft_status weft_graph_successors(const weft_graph *g, weft_task_id t, const weft_task_id **succ,
                                  size_t *count) {
    if (!g || !succ || !count)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_graph_successors: NULL argument");
    if (g->dirty) return wf_error(WEFT_ERR_INVALID_ARG, "weft_graph_successors: graph not analysed");
    if (t >= g->n) return wf_error(WEFT_ERR_RANGE, "weft_graph_successors: task id %u of %zu", t, g->n);
    *succ = g->succ + g->nodes[t].succ_begin;
    *count = g->nodes[t].succ_end - g->nodes[t].succ_begin;
    return WEFT_OK;
}
