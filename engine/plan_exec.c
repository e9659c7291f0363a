/* engine/plan_exec.c - what happens inside a plan run: shape resolution for the current
 * feeds, buffer placement, and the task that runs one op node.
 *
 * Concurrency: a node's task writes only its own wf_pnode (buffer, out.data), its own
 * slice of plan->in_refs, and, once per run for the first failure, plan->fail_*. It reads
 * its inputs' wf_pnode.out, written by the inputs' tasks, which the task graph orders
 * before it (release/acquire in the scheduler's dependency counters). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/internal.h"

/* Records the first failure of a run (later ones are dropped) and returns status. */
static int fail(weft_plan *plan, weft_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(weft_plan *plan, weft_status status, const char *fmt, ...) {
    int expected = 0;
    /* acq_rel: the winner's message is published by the run's completion (the caller
     * reads it after weft_graph_run returns, which synchronises with every task). */
    if (atomic_compare_exchange_strong_explicit(&plan->fail_claimed, &expected, 1,
                                                memory_order_acq_rel, memory_order_relaxed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(plan->fail_msg, sizeof plan->fail_msg, fmt, ap);
        va_end(ap);
        plan->fail_status = status;
    }
    return (int)status;
}

/* "[4,2], [2,5]": the input shapes of node p. */
static const char *input_shapes(const weft_plan *plan, const wf_pnode *p, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    for (uint32_t k = 0; k < p->nin && len + 2 < cap; k++) {
        char s[160];
        const wf_pnode *in = &plan->nodes[plan->in_idx[p->in_off + k]];
        wf_shape_str(&in->out.shape, s, sizeof s);
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", k ? ", " : "", s);
    }
    return buf;
}

static void free_buffer(weft_plan *plan, wf_buffer *b) {
    if (!b->data || b->in_arena) return;
    if (b->on_pool)
        weft_pool_free(plan->pool, b->data, b->cap);
    else
        wf_free(b->data, b->cap);
    atomic_fetch_sub_explicit(&plan->buffer_bytes, b->cap, memory_order_relaxed);
    b->data = NULL;
}

/* Allocates buffer b (b->cap bytes) on the calling worker's NUMA node: explicitly bound
 * when the pool spans several NUMA groups, else by first touch (the kernel writes it
 * here). Called by the buffer's first holder only. */
static int alloc_buffer(weft_plan *plan, const wf_pnode *p, wf_buffer *b) {
    void *data = NULL;
    if (weft_pool_numa_groups(plan->pool) > 1) {
        if (weft_pool_alloc(plan->pool, b->cap, -1, &data) != WEFT_OK) data = NULL;
        b->on_pool = 1;
        int slot = weft_pool_current_worker(plan->pool);
        weft_worker_info info;
        if (weft_pool_worker_info(plan->pool, slot < 0 ? 0 : (unsigned)slot, &info) == WEFT_OK)
            b->group = (int)info.group;
    } else {
        data = wf_alloc(b->cap, 64);
        b->on_pool = 0;
        b->group = 0;
    }
    if (!data)
        return fail(plan, WEFT_ERR_NOMEM, "%s (node %u): out of memory for %zu bytes",
                    p->def->name, p->node, b->cap);
    b->data = data;
    atomic_fetch_add_explicit(&plan->allocations, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&plan->buffer_bytes, b->cap, memory_order_relaxed);
    return 0;
}

int wf_pnode_exec(void *arg) {
    wf_pnode *p = arg;
    weft_plan *plan = p->plan;
    const uint32_t *idx = plan->in_idx + p->in_off;
    wf_tref *in = plan->in_refs + p->in_off;
    for (uint32_t k = 0; k < p->nin; k++) in[k] = plan->nodes[idx[k]].out;
    if (p->def->flags & WF_OPF_UPDATE) {
        p->out.data = in[0].data; /* the variable itself */
    } else if (p->buf != UINT32_MAX) {
        wf_buffer *b = &plan->bufs[p->buf];
        /* later holders see the first holder's allocation: it happens-before them */
        if (!b->data && p->buf_first) {
            int rc = alloc_buffer(plan, p, b);
            if (rc) return rc;
        }
        p->out.data = b->data;
        p->group = b->group;
    }
    wf_kernel_ctx ctx = {.scratch = &p->scratch, .pool = plan->pool, .attrs = &p->attrs,
                         .nin = p->nin, .in = in, .out = &p->out,
                         .check_numerics = plan->opts.check_numerics};
    int rc = p->def->forward(&ctx);
    if (rc) {
        weft_status st = rc > 0 && rc <= WEFT_ERR_NUMERICS ? (weft_status)rc : WEFT_ERR_TASK_FAILED;
        return fail(plan, st, "%s (node %u, %s): %s", p->def->name, p->node,
                    p->backward ? "backward" : "forward", weft_last_error());
    }
    if (plan->opts.check_numerics && wf_dtype_is_float(p->out.dtype)) {
        long bad = wf_find_nonfinite(&p->out);
        if (bad >= 0) {
            char shapes[400], os[160];
            double v = p->out.dtype == WEFT_F32 ? ((const float *)p->out.data)[bad]
                                                : ((const double *)p->out.data)[bad];
            return fail(plan, WEFT_ERR_NUMERICS,
                        "check numerics: %s (node %u, %s pass) produced %s at element %ld of "
                        "its output %s; input shapes: %s",
                        p->def->name, p->node, p->backward ? "backward" : "forward",
                        isnan(v) ? "NaN" : "Inf", bad, wf_shape_str(&p->out.shape, os, sizeof os),
                        input_shapes(plan, p, shapes, sizeof shapes));
        }
    }
    return 0;
}

static double node_cost_ns(const wf_pnode *p, const wf_desc *in) {
    wf_desc out = {.dtype = p->out.dtype, .shape = p->out.shape};
    wf_cost c = wf_op_cost(p->def, &p->attrs, p->nin, in, &out);
    return WF_COST_NS_PER_NODE + c.flops * WF_COST_NS_PER_FLOP + c.bytes * WF_COST_NS_PER_BYTE;
}

/* Dynamic plans: every buffer of the memory plan comes from the iteration's arena,
 * allocated here on the calling thread (such a plan runs once). */
static weft_status arena_buffers(weft_plan *plan) {
    for (size_t b = 0; b < plan->nbufs; b++) {
        wf_buffer *buf = &plan->bufs[b];
        if (!(buf->data = wf_arena_alloc(plan->arena, buf->cap)))
            return wf_error(WEFT_ERR_NOMEM, "dynamic graph: out of memory for %zu bytes", buf->cap);
        buf->in_arena = 1;
        buf->group = 0;
    }
    return WEFT_OK;
}

weft_status wf_plan_resolve(weft_plan *plan) {
    wf_desc small[8], *desc = small;
    size_t max_in = 0;
    for (size_t i = 0; i < plan->n; i++)
        if (plan->nodes[i].nin > max_in) max_in = plan->nodes[i].nin;
    if (max_in > 8 && !(desc = wf_alloc(max_in * sizeof *desc, 16)))
        return wf_error(WEFT_ERR_NOMEM, "plan: out of memory");
    weft_status st = WEFT_OK;
    double work = 0;
    for (size_t i = 0; i < plan->n && !st; i++) {
        wf_pnode *p = &plan->nodes[i];
        if (p->task == WEFT_TASK_NONE) continue; /* leaves: bound by create / feeds */
        for (uint32_t k = 0; k < p->nin; k++) {
            const wf_pnode *q = &plan->nodes[plan->in_idx[p->in_off + k]];
            desc[k] = (wf_desc){q->out.dtype, q->out.shape};
        }
        wf_desc out = {0};
        if (plan->pin_forward) {
            /* dynamic: every shape was concrete when the op was recorded, and checked then */
            out = p->build_desc;
        } else if ((st = p->def->shape(&p->attrs, p->nin, desc, &out))) {
            char msg[600];
            snprintf(msg, sizeof msg, "%s", weft_last_error());
            st = wf_error(st, "%s (at run time, with the fed shapes; node %u)", msg, p->node);
            break;
        }
        p->out.dtype = out.dtype;
        p->out.shape = out.shape;
        double cost = node_cost_ns(p, desc);
        work += cost;
        /* Costs steer priorities only, and a new cost invalidates the analysis (a
         * rebuild with allocations): they are set from the first shapes seen. */
        if (!plan->costs_set && cost != p->cost_ns) {
            p->cost_ns = cost;
            if ((st = weft_graph_set_cost(plan->tasks, p->task, cost))) break;
        }
    }
    if (desc != small) wf_free(desc, max_in * sizeof *desc);
    if (!st) st = wf_memplan_build(plan);
    if (!st && plan->arena) st = arena_buffers(plan);
    if (!st) {
        plan->costs_set = 1;
        plan->work_ns = work;
        plan->shapes_valid = 1;
    }
    return st;
}

void wf_plan_free_buffers(weft_plan *plan) {
    for (size_t b = 0; b < plan->nbufs; b++) free_buffer(plan, &plan->bufs[b]);
    for (size_t i = 0; i < plan->n; i++) wf_scratch_free(&plan->nodes[i].scratch);
}
