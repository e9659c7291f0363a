/* engine/dyn_cache.c - the plan cache of dynamic graphs.
 *
 * A training loop records the same graph structure again and again (an MLP step, an RNN
 * over a length seen before). An evaluation looks its pending part up by structure: the
 * ops, their inputs, attributes, dtypes and shapes of every node up to the last one, and
 * where the evaluation starts. On a hit the compiled plan is run again with its leaves
 * bound to this iteration's tensors: no compilation, analysis or memory planning, and
 * the buffers of the last time. The numbers are the same as a fresh compilation gives
 * (same kernels, same chunking). Entries are evicted least recently used. */
#include <string.h>

#include "engine/internal.h"

struct wf_dyn_entry {
    uint64_t hash, last_use;
    uint64_t iteration;  /* the last iteration that ran it: not evicted during it (values
                            of that iteration live in its buffers) */
    size_t from, n, ninputs;
    wf_tnode *nodes;   /* copies: what the structure was when the plan was compiled */
    uint32_t *inputs;
    weft_plan *plan;
};

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h * 0x100000001B3ull;
}

static uint64_t bits_of(double x) {
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

/* The attributes that matter to an op (padding and unused fields are not compared). */
static int attrs_same(const wf_attrs *a, const wf_attrs *b) {
    if (a->axis != b->axis || a->keepdims != b->keepdims || a->flags != b->flags ||
        bits_of(a->scalar) != bits_of(b->scalar) || a->begin != b->begin || a->end != b->end ||
        a->slot != b->slot || !wf_shape_equal(&a->shape, &b->shape))
        return 0;
    return memcmp(a->perm, b->perm, sizeof a->perm) == 0;
}

static uint64_t node_hash(uint64_t h, const weft_tgraph *g, const wf_tnode *x) {
    h = mix(h, ((uint64_t)x->op << 32) | ((uint64_t)x->backward << 24) |
                   ((uint64_t)x->borrowed << 16) | ((uint64_t)x->unused << 8) |
                   (uint64_t)x->desc.dtype);
    h = mix(h, (uint64_t)x->desc.shape.ndim);
    for (int i = 0; i < x->desc.shape.ndim; i++) h = mix(h, (uint64_t)x->desc.shape.d[i]);
    for (uint32_t k = 0; k < x->nin; k++) h = mix(h, g->inputs[x->in_off + k]);
    return mix(h, (uint64_t)x->attrs.axis ^ bits_of(x->attrs.scalar) ^ x->attrs.flags);
}

static int node_same(const weft_tgraph *g, const wf_tnode *x, const wf_dyn_entry *e, size_t v) {
    const wf_tnode *y = &e->nodes[v];
    if (x->op != y->op || x->nin != y->nin || x->backward != y->backward ||
        x->borrowed != y->borrowed || x->unused != y->unused || x->desc.dtype != y->desc.dtype ||
        !wf_shape_equal(&x->desc.shape, &y->desc.shape) || !attrs_same(&x->attrs, &y->attrs))
        return 0;
    return memcmp(g->inputs + x->in_off, e->inputs + y->in_off, x->nin * sizeof *e->inputs) == 0;
}

uint64_t wf_dyn_structure_hash(const weft_tgraph *g, size_t from) {
    uint64_t h = mix(0xcbf29ce484222325ull, from);
    for (size_t v = 0; v < g->n; v++) h = node_hash(h, g, &g->nodes[v]);
    return h;
}

static void entry_free(wf_dyn_entry *e) {
    weft_plan_destroy(e->plan);
    wf_free(e->nodes, e->n * sizeof *e->nodes + 1);
    wf_free(e->inputs, e->ninputs * sizeof *e->inputs + 1);
    memset(e, 0, sizeof *e);
}

void wf_dyn_cache_free(wf_dyn_cache *c) {
    for (size_t i = 0; i < c->n; i++) entry_free(&c->entries[i]);
    wf_free(c->entries, c->cap * sizeof *c->entries);
    memset(c, 0, sizeof *c);
}

weft_plan *wf_dyn_cache_find(wf_dyn_cache *c, const weft_tgraph *g, size_t from, uint64_t hash) {
    for (size_t i = 0; i < c->n; i++) {
        wf_dyn_entry *e = &c->entries[i];
        if (e->hash != hash || e->from != from || e->n != g->n || e->ninputs != g->ninputs) continue;
        size_t v = 0;
        while (v < g->n && node_same(g, &g->nodes[v], e, v)) v++;
        if (v < g->n) continue;
        e->last_use = ++c->clock;
        e->iteration = c->iteration;
        return e->plan;
    }
    return NULL;
}

int wf_dyn_cache_insert(wf_dyn_cache *c, const weft_tgraph *g, size_t from, uint64_t hash,
                        weft_plan *plan) {
    wf_dyn_entry *e = NULL;
    if (c->n < c->cap) {
        e = &c->entries[c->n++];
    } else { /* full: replace the least recently used, if not used in this iteration */
        for (size_t i = 0; i < c->n; i++)
            if (c->entries[i].iteration != c->iteration &&
                (!e || c->entries[i].last_use < e->last_use))
                e = &c->entries[i];
        if (!e) return 0;
        entry_free(e);
    }
    e->nodes = wf_alloc(g->n * sizeof *e->nodes + 1, 16);
    e->inputs = wf_alloc(g->ninputs * sizeof *e->inputs + 1, 16);
    if (!e->nodes || !e->inputs) { /* not cached: the caller keeps the plan */
        wf_free(e->nodes, g->n * sizeof *e->nodes + 1);
        wf_free(e->inputs, g->ninputs * sizeof *e->inputs + 1);
        *e = c->entries[--c->n]; /* drop the slot (the last entry moves in) */
        return 0;
    }
    memcpy(e->nodes, g->nodes, g->n * sizeof *e->nodes);
    memcpy(e->inputs, g->inputs, g->ninputs * sizeof *e->inputs);
    e->hash = hash;
    e->from = from;
    e->n = g->n;
    e->ninputs = g->ninputs;
    e->plan = plan;
    e->last_use = ++c->clock;
    e->iteration = c->iteration;
    return 1;
}

weft_status wf_dyn_cache_resize(wf_dyn_cache *c, size_t entries) {
    while (c->n > entries) entry_free(&c->entries[--c->n]);
    if (entries == c->cap) return WEFT_OK;
    wf_dyn_entry *ne = entries ? wf_calloc(entries * sizeof *ne, 16) : NULL;
    if (entries && !ne) return wf_error(WEFT_ERR_NOMEM, "dynamic graph: out of memory for the plan cache");
    if (c->n) memcpy(ne, c->entries, c->n * sizeof *ne);
    wf_free(c->entries, c->cap * sizeof *c->entries);
    c->entries = ne;
    c->cap = entries;
    return WEFT_OK;
}
