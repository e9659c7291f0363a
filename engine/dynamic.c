/* engine/dynamic.c - dynamic graphs (define by run), see weft/dynamic.h.
 *
 * A context keeps one tensor graph that every iteration reuses (weft_dyn_begin clears it
 * and keeps its arrays), an arena for the iteration's buffers, and the plans of the
 * iteration's evaluations. An evaluation compiles the pending nodes [evaluated, n) into
 * a plan whose leaves include the nodes earlier evaluations computed (their data stays
 * in the arena), runs it, and records each node's data as computed. */
#include <stdio.h>
#include <string.h>

#include "engine/internal.h"
#include "weft/dynamic.h"
#include "weft/ops.h"

typedef struct dyn_param {
    weft_tensor *param, *grad;
    uint32_t value;
} dyn_param;

struct weft_dyn {
    weft_pool *pool;
    weft_plan_options opts;
    weft_tgraph *graph;
    wf_arena arena;
    /* per node of the current iteration */
    unsigned char *is_done;
    wf_tref *done;
    size_t done_cap;
    size_t evaluated;        /* nodes [0, evaluated) are computed */
    weft_plan **plans;       /* this iteration's */
    size_t nplans, plans_cap;
    dyn_param *params;
    size_t nparams, params_cap;
    weft_value *targets;     /* scratch for evaluations */
    size_t targets_cap;
    size_t evals;
    wf_dyn_cache cache;      /* compiled plans by structure (see dyn_cache.c) */
    size_t cache_hits;
    /* a failed evaluation: later evaluations of the iteration return it (the nodes that
     * ran, gradient accumulations included, must not run twice) */
    weft_status failed;
    char fail_msg[768];
};

weft_status weft_dyn_create(weft_pool *pool, const weft_plan_options *opts, weft_dyn **out) {
    if (!pool || !out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_dyn_create: NULL argument");
    *out = NULL;
    weft_dyn *d = wf_calloc(sizeof *d, 64);
    if (!d) return wf_error(WEFT_ERR_NOMEM, "weft_dyn_create: out of memory");
    d->pool = pool;
    d->opts = opts ? *opts : weft_plan_options_default();
    if (wf_dyn_cache_resize(&d->cache, WF_DYN_CACHE_ENTRIES)) {
        wf_free(d, sizeof *d);
        return wf_error(WEFT_ERR_NOMEM, "weft_dyn_create: out of memory");
    }
    weft_status st = weft_tgraph_create(&d->graph);
    if (st) {
        wf_free(d, sizeof *d);
        return st;
    }
    *out = d;
    return WEFT_OK;
}

static void release_iteration(weft_dyn *d) {
    for (size_t i = 0; i < d->nplans; i++) weft_plan_destroy(d->plans[i]);
    d->nplans = 0;
    d->nparams = 0;
    d->evaluated = 0;
    d->evals = 0;
    d->failed = WEFT_OK;
    wf_tgraph_reset(d->graph);
    wf_arena_reset(&d->arena);
}

void weft_dyn_destroy(weft_dyn *d) {
    if (!d) return;
    release_iteration(d);
    wf_dyn_cache_free(&d->cache);
    weft_tgraph_destroy(d->graph);
    wf_arena_free(&d->arena);
    wf_free(d->plans, d->plans_cap * sizeof *d->plans);
    wf_free(d->params, d->params_cap * sizeof *d->params);
    wf_free(d->targets, d->targets_cap * sizeof *d->targets);
    wf_free(d->is_done, d->done_cap);
    wf_free(d->done, d->done_cap * sizeof *d->done);
    wf_free(d, sizeof *d);
}

weft_status weft_dyn_begin(weft_dyn *d, weft_tgraph **graph) {
    if (!d || !graph) return wf_error(WEFT_ERR_INVALID_ARG, "weft_dyn_begin: NULL argument");
    release_iteration(d);
    d->cache.iteration++;
    *graph = d->graph;
    return WEFT_OK;
}

weft_status weft_dyn_input(weft_dyn *d, const weft_tensor *t, weft_value *out) {
    if (!d || !t || !out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_dyn_input: NULL argument");
    /* a constant over the caller's data: never written (only update ops write, and they
     * accept variables only) */
    return wf_tgraph_add_borrowed(d->graph, WF_OP_CONSTANT, (weft_tensor *)t, &out->id);
}

weft_status weft_dyn_param(weft_dyn *d, weft_tensor *param, weft_tensor *grad, weft_value *out) {
    const char *who = "weft_dyn_param";
    if (!d || !param || !out) return wf_error(WEFT_ERR_INVALID_ARG, "%s: NULL argument", who);
    for (size_t i = 0; i < d->nparams; i++)
        if (d->params[i].param == param) {
            out->id = d->params[i].value;
            return WEFT_OK;
        }
    if (!wf_dtype_is_float(param->ref.dtype))
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: the parameter is %s (float only)", who,
                        weft_dtype_name(param->ref.dtype));
    if (grad && (grad->ref.dtype != param->ref.dtype ||
                 !wf_shape_equal(&grad->ref.shape, &param->ref.shape))) {
        char a[160], b[160];
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: gradient %s %s for parameter %s %s", who,
                        weft_dtype_name(grad->ref.dtype), wf_shape_str(&grad->ref.shape, a, sizeof a),
                        weft_dtype_name(param->ref.dtype), wf_shape_str(&param->ref.shape, b, sizeof b));
    }
    if (wf_array_reserve((void **)&d->params, &d->params_cap, d->nparams + 1, sizeof *d->params))
        return wf_error(WEFT_ERR_NOMEM, "%s: out of memory", who);
    weft_status st = wf_tgraph_add_borrowed(d->graph, WF_OP_VARIABLE, param, &out->id);
    if (st) return st;
    d->params[d->nparams++] = (dyn_param){param, grad, out->id};
    return WEFT_OK;
}

/* A cached plan run for a new iteration: its leaves take this iteration's data (the
 * shapes are the same: they are part of the structure). */
static void bind_leaves(weft_dyn *d, weft_plan *plan) {
    const weft_tgraph *g = d->graph;
    for (size_t i = 0; i < plan->n; i++) {
        wf_pnode *p = &plan->nodes[i];
        if (p->task != WEFT_TASK_NONE) continue;
        const wf_tnode *node = &g->nodes[p->node];
        if (d->is_done[p->node] && p->node < d->evaluated)
            p->out = d->done[p->node];
        else if (node->storage)
            p->out = node->storage->ref;
    }
}

weft_status weft_dyn_set_cache(weft_dyn *d, size_t entries) {
    if (!d) return wf_error(WEFT_ERR_INVALID_ARG, "weft_dyn_set_cache: dyn is NULL");
    return wf_dyn_cache_resize(&d->cache, entries);
}

weft_status weft_dyn_eval(weft_dyn *d) {
    if (!d) return wf_error(WEFT_ERR_INVALID_ARG, "weft_dyn_eval: dyn is NULL");
    weft_tgraph *g = d->graph;
    if (d->failed)
        return wf_error(d->failed, "%s (an earlier evaluation of this iteration failed; "
                        "weft_dyn_begin starts a new one)", d->fail_msg);
    size_t n = g->n, from = d->evaluated;
    if (from == n) return WEFT_OK;
    if (wf_array_reserve((void **)&d->targets, &d->targets_cap, n - from, sizeof *d->targets) ||
        wf_array_reserve((void **)&d->plans, &d->plans_cap, d->nplans + 1, sizeof *d->plans))
        return wf_error(WEFT_ERR_NOMEM, "weft_dyn_eval: out of memory");
    if (n > d->done_cap) {
        size_t cap = d->done_cap ? d->done_cap : 256;
        while (cap < n) cap *= 2;
        unsigned char *is_done = wf_calloc(cap, 16);
        wf_tref *done = wf_alloc(cap * sizeof *done, 16);
        if (!is_done || !done) {
            wf_free(is_done, cap);
            wf_free(done, cap * sizeof *done);
            return wf_error(WEFT_ERR_NOMEM, "weft_dyn_eval: out of memory");
        }
        if (d->done_cap) {
            memcpy(is_done, d->is_done, d->done_cap);
            memcpy(done, d->done, d->done_cap * sizeof *done);
        }
        wf_free(d->is_done, d->done_cap);
        wf_free(d->done, d->done_cap * sizeof *d->done);
        d->is_done = is_done;
        d->done = done;
        d->done_cap = cap;
    }
    size_t nt = 0;
    for (size_t v = from; v < n; v++)
        if (!g->nodes[v].unused) d->targets[nt++].id = (uint32_t)v;
    weft_plan *plan = NULL;
    weft_status st;
    uint64_t hash = 0;
    if (d->cache.cap) {
        hash = wf_dyn_structure_hash(g, from);
        if ((plan = wf_dyn_cache_find(&d->cache, g, from, hash))) {
            bind_leaves(d, plan);
            d->cache_hits++;
        }
    }
    if (!plan) {
        /* cached plans own their buffers (they outlive the iteration); one-off plans take
         * theirs from the arena */
        wf_plan_extras x = {.is_done = d->is_done, .done = d->done, .ndone = from,
                            .arena = d->cache.cap ? NULL : &d->arena, .dynamic = 1};
        if ((st = wf_plan_create_ex(g, d->pool, 0, NULL, nt, d->targets, &d->opts, &x, &plan)))
            return st;
        if (!d->cache.cap || !wf_dyn_cache_insert(&d->cache, g, from, hash, plan))
            d->plans[d->nplans++] = plan; /* destroyed by the next weft_dyn_begin */
    }
    d->evals++;
    if ((st = weft_plan_run(plan, 0, NULL))) {
        d->failed = st;
        snprintf(d->fail_msg, sizeof d->fail_msg, "%s", weft_last_error());
        return st;
    }
    for (size_t v = from; v < n; v++) {
        if (plan->map[v] == UINT32_MAX) { /* an unused node: never computed, never read */
            d->is_done[v] = 0;
            continue;
        }
        const wf_pnode *p = &plan->nodes[plan->map[v]];
        d->done[v] = p->out;
        d->is_done[v] = 1;
    }
    /* flags at or beyond n may remain from a longer earlier iteration: they are never
     * read, since plans look at is_done[v] only for v < the evaluated count */
    d->evaluated = n;
    return WEFT_OK;
}

weft_status weft_dyn_read(weft_dyn *d, weft_value v, const weft_tensor **out) {
    if (!d || !out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_dyn_read: NULL argument");
    weft_status st = wf_tgraph_check_value(d->graph, v, "weft_dyn_read");
    if (st) return st;
    /* a value computed already is read without evaluating what came after it */
    if (v.id >= d->evaluated && (st = weft_dyn_eval(d))) return st;
    if (!d->is_done[v.id])
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_dyn_read: value %u (%s) was replaced by a "
                        "fused op during autodiff and is not computed", v.id,
                        weft_tgraph_value_op(d->graph, v));
    /* the view lives in the arena: valid, and at a fixed address, until the next begin */
    weft_tensor *view = wf_arena_alloc(&d->arena, sizeof *view);
    if (!view) return wf_error(WEFT_ERR_NOMEM, "weft_dyn_read: out of memory");
    const wf_tref *r = &d->done[v.id];
    wf_tensor_view(view, r->dtype, &r->shape, r->data);
    *out = view;
    return WEFT_OK;
}

weft_status weft_dyn_scalar(weft_dyn *d, weft_value v, double *out) {
    const weft_tensor *t;
    if (!out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_dyn_scalar: out is NULL");
    weft_status st = weft_dyn_read(d, v, &t);
    if (st) return st;
    if (wf_shape_numel(&t->ref.shape) != 1 || !wf_dtype_is_float(t->ref.dtype)) {
        char s[160];
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_dyn_scalar: value %u is %s %s, not one float",
                        v.id, weft_dtype_name(t->ref.dtype), wf_shape_str(&t->ref.shape, s, sizeof s));
    }
    return weft_tensor_get(t, 0, out);
}

weft_status weft_dyn_backward(weft_dyn *d, weft_value loss) {
    if (!d) return wf_error(WEFT_ERR_INVALID_ARG, "weft_dyn_backward: dyn is NULL");
    weft_tgraph *g = d->graph;
    size_t n = 0;
    for (size_t i = 0; i < d->nparams; i++) n += d->params[i].grad != NULL;
    weft_value small[32], *wrt = small, *grads;
    if (2 * n > 32 && !(wrt = wf_alloc(2 * n * sizeof *wrt, 16)))
        return wf_error(WEFT_ERR_NOMEM, "weft_dyn_backward: out of memory");
    grads = wrt + n;
    size_t k = 0;
    for (size_t i = 0; i < d->nparams; i++)
        if (d->params[i].grad) wrt[k++].id = d->params[i].value;
    weft_status st = weft_tgraph_gradients(g, loss, n, wrt, grads);
    /* grad tensor += gradient: an update op on the accumulator bound as a variable */
    k = 0;
    for (size_t i = 0; i < d->nparams && !st; i++) {
        if (!d->params[i].grad) continue;
        uint32_t acc, upd;
        if ((st = wf_tgraph_add_borrowed(g, WF_OP_VARIABLE, d->params[i].grad, &acc))) break;
        uint32_t in[2] = {acc, grads[k++].id};
        st = wf_tgraph_add(g, WF_OP_ASSIGN_ADD, 2, in, NULL, &upd);
    }
    if (wrt != small) wf_free(wrt, 2 * n * sizeof *wrt);
    return st ? st : weft_dyn_eval(d);
}

weft_status weft_dyn_stats_get(const weft_dyn *d, weft_dyn_stats *out) {
    if (!d || !out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_dyn_stats_get: NULL argument");
    out->nodes = d->graph->n;
    out->evals = d->evals;
    out->arena_bytes = d->arena.held;
    out->cache_hits = d->cache_hits;
    out->cached_plans = d->cache.n;
    return WEFT_OK;
}
