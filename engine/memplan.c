/* engine/memplan.c - the memory plan of a static plan: which buffer holds each value.
 *
 * A value may take over the buffer of an earlier value X only when X is dead for it:
 * every consumer of X (and X's producer) happens-before the new value's producer in the
 * task DAG. Reuse therefore follows existing edges only: it adds no edge, removes no
 * parallelism, and no two values that may be alive at once share memory. An op flagged
 * INPLACE may write over an input of its own size when all the other consumers of that
 * input happen-before it. Fetched values keep their own buffers (they are read after the run).
 *
 * Greedy, in a topological order of the task DAG: in place if possible, else the
 * smallest dead buffer that is large enough, else the largest dead buffer (grown), else
 * a new one. Happens-before is answered from ancestor bitsets (tasks^2 / 8 bytes); above
 * WF_MEMPLAN_MAX_TASKS tasks every value gets its own buffer. In a dynamic plan only
 * backward values (never handed to the caller) share buffers, since a forward value may
 * be read after the run, and only in place over a value nobody else reads (the running
 * sums of gradients), which needs no ancestor bitsets.
 *
 * A buffer is allocated during the run by its first holder (in topological order, which
 * happens-before every later holder), on that worker's NUMA node. */
#include <string.h>

#include "engine/internal.h"

#define WF_MEMPLAN_MAX_TASKS 16384

typedef struct memplan_ctx {
    weft_plan *plan;
    size_t ntasks, words;
    uint64_t *anc;       /* anc[t * words ..]: ancestors of task t */
    uint32_t *order;     /* tasks in topological order */
    uint32_t *task_node; /* plan node of each task */
    uint32_t *cons_off, *cons; /* consumers (tasks) of each plan node: CSR */
    uint32_t *holder;    /* per buffer: the plan node that holds it now */
    uint32_t *root;      /* per plan node: the node whose buffer it uses (itself, or the
                            value a view aliases) */
    unsigned char *fetched;
    int cheap;           /* dynamic plans: in place over a value read by nobody else only,
                            without ancestor bitsets (a plan that runs once cannot pay
                            tasks^2 bits) */
} memplan_ctx;

static int is_anc(const memplan_ctx *c, uint32_t a, uint32_t t) {
    if (c->cheap) return 0; /* no bitsets: only the direct cases below are decided */
    return (c->anc[(size_t)t * c->words + a / 64] >> (a % 64)) & 1;
}

/* 1 if value (plan node) v is dead for task t: v's producer and all its consumers other
 * than `except` happen-before t. */
static int dead_for(const memplan_ctx *c, uint32_t v, uint32_t t, uint32_t except) {
    const wf_pnode *p = &c->plan->nodes[v];
    if (c->cheap) { /* v is an input of t (in place): dead iff t is its only reader */
        for (uint32_t k = c->cons_off[v]; k < c->cons_off[v + 1]; k++)
            if (c->cons[k] != except) return 0;
        return except == t;
    }
    if (!is_anc(c, p->task, t)) return 0;
    for (uint32_t k = c->cons_off[v]; k < c->cons_off[v + 1]; k++)
        if (c->cons[k] != except && !is_anc(c, c->cons[k], t)) return 0;
    return 1;
}

static size_t value_bytes(const wf_pnode *p) {
    size_t b = wf_shape_numel(&p->out.shape) * weft_dtype_size(p->out.dtype);
    return b < 64 ? 64 : (b + 63) & ~(size_t)63;
}

/* Exact size (in place and views need the same element count, not the same rounding). */
static size_t exact_bytes(const wf_pnode *p) {
    return wf_shape_numel(&p->out.shape) * weft_dtype_size(p->out.dtype);
}

static int owns_buffer(const wf_pnode *p) {
    return p->task != WEFT_TASK_NONE && !(p->def->flags & WF_OPF_UPDATE);
}

/* The scratch that nodes keep (part of the plan's memory) and the products fused into
 * their consumers (part of the naive total: an unfused graph stores them), from the op
 * table's memory hooks and the current shapes. */
static void node_memory(weft_plan *plan) {
    plan->scratch_bytes = plan->fused_bytes = 0;
    for (size_t i = 0; i < plan->n; i++) {
        const wf_pnode *p = &plan->nodes[i];
        wf_desc in[WF_MEM_MAX_INPUTS];
        if (!p->def->memory || p->nin > WF_MEM_MAX_INPUTS) continue;
        for (uint32_t k = 0; k < p->nin; k++) {
            const wf_pnode *src = &plan->nodes[plan->in_idx[p->in_off + k]];
            in[k] = (wf_desc){src->out.dtype, src->out.shape};
        }
        const unsigned threads = plan->pool ? weft_pool_threads(plan->pool) : 1;
        wf_mem m = p->def->memory(&p->attrs, p->nin, in, &(wf_desc){p->out.dtype, p->out.shape},
                                  threads);
        plan->scratch_bytes += m.scratch;
        plan->fused_bytes += m.fused;
    }
}

/* Topological order (Kahn) and ancestor bitsets from the analysed task graph. */
static weft_status ancestors(memplan_ctx *c) {
    weft_graph *tg = c->plan->tasks;
    weft_status st = weft_graph_analyze(tg, NULL);
    if (st) return st;
    size_t n = c->ntasks;
    uint32_t *indeg = wf_calloc(n * sizeof *indeg + 1, 16);
    if (!indeg) return wf_error(WEFT_ERR_NOMEM, "memory plan: out of memory");
    for (uint32_t t = 0; t < n; t++) {
        const weft_task_id *succ;
        size_t ns;
        weft_graph_successors(tg, t, &succ, &ns);
        for (size_t k = 0; k < ns; k++) indeg[succ[k]]++;
    }
    size_t head = 0, tail = 0;
    for (uint32_t t = 0; t < n; t++)
        if (!indeg[t]) c->order[tail++] = t;
    while (head < tail) {
        uint32_t t = c->order[head++];
        const weft_task_id *succ;
        size_t ns;
        weft_graph_successors(tg, t, &succ, &ns);
        uint64_t *at = c->anc + (size_t)t * c->words;
        for (size_t k = 0; k < ns; k++) {
            uint64_t *as = c->anc + (size_t)succ[k] * c->words;
            for (size_t w = 0; w < c->words; w++) as[w] |= at[w];
            as[t / 64] |= (uint64_t)1 << (t % 64);
            if (--indeg[succ[k]] == 0) c->order[tail++] = succ[k];
        }
    }
    wf_free(indeg, n * sizeof *indeg + 1);
    return WEFT_OK;
}

/* Views: a VIEW op whose output has input 0's size, where input 0 (through its own
 * views) is an op output with a buffer and nothing is fetched, aliases that buffer: no
 * copy, no buffer of its own. Its consumers then count as consumers of the root. Views
 * of leaves are not made: an update op may write a variable while a view of it would
 * be read outside the update's ordering edges. */
static void find_views(memplan_ctx *c) {
    weft_plan *plan = c->plan;
    for (size_t i = 0; i < plan->n; i++) c->root[i] = (uint32_t)i;
    for (size_t i = 0; i < c->ntasks; i++) {
        uint32_t v = c->task_node[c->order[i]];
        const wf_pnode *p = &plan->nodes[v];
        if (!(p->def->flags & WF_OPF_VIEW) || !p->nin || c->fetched[v]) continue;
        uint32_t r = c->root[plan->in_idx[p->in_off]];
        const wf_pnode *q = &plan->nodes[r];
        if (owns_buffer(q) && !c->fetched[r] && q->out.dtype == p->out.dtype &&
            exact_bytes(q) == exact_bytes(p))
            c->root[v] = r;
    }
}

/* Consumers of each plan node's buffer root (tasks that read its data; an input read
 * for its shape only does not count; a view's consumers count for the root), CSR. */
static void consumers(memplan_ctx *c) {
    weft_plan *plan = c->plan;
    for (size_t i = 0; i < plan->n; i++) {
        const wf_pnode *p = &plan->nodes[i];
        if (p->task == WEFT_TASK_NONE) continue;
        for (uint32_t k = 0; k < p->nin; k++)
            if (!(p->def->shape_only >> k & 1)) c->cons_off[c->root[plan->in_idx[p->in_off + k]] + 1]++;
    }
    for (size_t i = 0; i < plan->n; i++) c->cons_off[i + 1] += c->cons_off[i];
    uint32_t *fill = c->holder; /* borrowed as a cursor array (sized n) */
    memcpy(fill, c->cons_off, plan->n * sizeof *fill);
    for (size_t i = 0; i < plan->n; i++) {
        const wf_pnode *p = &plan->nodes[i];
        if (p->task == WEFT_TASK_NONE) continue;
        for (uint32_t k = 0; k < p->nin; k++)
            if (!(p->def->shape_only >> k & 1))
                c->cons[fill[c->root[plan->in_idx[p->in_off + k]]]++] = p->task;
    }
}

/* The greedy assignment; writes p->buf / p->buf_first and the buffers' sizes. */
static weft_status assign(memplan_ctx *c, wf_buffer *bufs, size_t *nbufs, int reuse) {
    weft_plan *plan = c->plan;
    size_t nb = 0;
    for (size_t i = 0; i < c->ntasks; i++) {
        uint32_t v = c->task_node[c->order[i]];
        wf_pnode *p = &plan->nodes[v];
        if (!owns_buffer(p)) continue;
        if (c->root[v] != v) { /* a view: the root's buffer */
            p->buf = plan->nodes[c->root[v]].buf;
            p->buf_first = 0;
            continue;
        }
        size_t bytes = value_bytes(p);
        uint32_t t = p->task, pick = UINT32_MAX;
        /* in place over any input of the same size (the INPLACE contract: element i of
         * the output depends on element i of such an input only) */
        const int inplace_any = (p->def->flags & WF_OPF_INPLACE) != 0;
        const int inplace_last = (p->def->flags & WF_OPF_INPLACE_LAST) != 0;
        for (uint32_t k = inplace_any ? 0 : p->nin ? p->nin - 1 : 0;
             reuse && (inplace_any || inplace_last) && k < p->nin; k++) {
            uint32_t x = c->root[plan->in_idx[p->in_off + k]];
            const wf_pnode *q = &plan->nodes[x];
            /* matmul_acc(G, W, G): the addend's buffer is still read as an operand */
            int read_elsewhere = 0;
            for (uint32_t k2 = 0; inplace_last && k2 < p->nin; k2++)
                read_elsewhere |= k2 != k && c->root[plan->in_idx[p->in_off + k2]] == x;
            if (!read_elsewhere && owns_buffer(q) && !c->fetched[x] && q->buf != UINT32_MAX &&
                c->holder[q->buf] == x && exact_bytes(q) == exact_bytes(p) && bufs[q->buf].cap >= bytes &&
                q->out.dtype == p->out.dtype && dead_for(c, x, t, t)) {
                pick = q->buf;
                break;
            }
        }
        if (reuse && !c->cheap && pick == UINT32_MAX) {
            uint32_t best_fit = UINT32_MAX, largest = UINT32_MAX;
            for (uint32_t b = 0; b < nb; b++) {
                uint32_t h = c->holder[b];
                if (h == UINT32_MAX || c->fetched[h] || !dead_for(c, h, t, UINT32_MAX)) continue;
                if (bufs[b].cap >= bytes && (best_fit == UINT32_MAX || bufs[b].cap < bufs[best_fit].cap))
                    best_fit = b;
                if (largest == UINT32_MAX || bufs[b].cap > bufs[largest].cap) largest = b;
            }
            pick = best_fit != UINT32_MAX ? best_fit : largest;
        }
        p->buf_first = pick == UINT32_MAX;
        if (pick == UINT32_MAX) {
            pick = (uint32_t)nb++;
            bufs[pick] = (wf_buffer){.cap = bytes, .group = -1};
        } else if (bufs[pick].cap < bytes) {
            bufs[pick].cap = bytes;
        }
        p->buf = pick;
        c->holder[pick] = v;
    }
    *nbufs = nb;
    return WEFT_OK;
}

weft_status wf_memplan_build(weft_plan *plan) {
    memplan_ctx c = {.plan = plan, .ntasks = plan->ntasks};
    int reuse = plan->opts.memory_plan && (plan->arena || c.ntasks <= WF_MEMPLAN_MAX_TASKS);
    c.cheap = plan->arena != NULL;
    c.words = c.cheap ? 0 : (c.ntasks + 63) / 64;
    size_t anc_bytes = reuse && !c.cheap ? c.ntasks * c.words * sizeof *c.anc + 8 : 8;
    c.anc = wf_calloc(anc_bytes, 64);
    c.order = wf_alloc(c.ntasks * sizeof *c.order + 4, 16);
    c.task_node = wf_alloc(c.ntasks * sizeof *c.task_node + 4, 16);
    c.cons_off = wf_calloc((plan->n + 1) * sizeof *c.cons_off, 16);
    c.cons = wf_alloc(plan->nin_total * sizeof *c.cons + 4, 16);
    c.holder = wf_alloc(plan->n * sizeof *c.holder + 4, 16);
    c.root = wf_alloc(plan->n * sizeof *c.root + 4, 16);
    c.fetched = wf_calloc(plan->n + 1, 16);
    wf_buffer *bufs = wf_calloc(c.ntasks * sizeof *bufs + 1, 16);
    weft_status st = WEFT_OK;
    if (!c.anc || !c.order || !c.task_node || !c.cons_off || !c.cons || !c.holder || !c.root ||
        !c.fetched || !bufs) {
        st = wf_error(WEFT_ERR_NOMEM, "memory plan: out of memory");
        goto out;
    }
    for (size_t i = 0; i < plan->n; i++) {
        plan->nodes[i].buf = UINT32_MAX;
        if (plan->nodes[i].task != WEFT_TASK_NONE) c.task_node[plan->nodes[i].task] = (uint32_t)i;
    }
    for (size_t i = 0; i < plan->nfetch; i++) c.fetched[plan->fetch[i]] = 1;
    /* dynamic plans: any forward value may be read (or used by a later evaluation) after
     * the run, so only the values autodiff made, which the caller never sees, share */
    if (plan->pin_forward)
        for (size_t i = 0; i < plan->n; i++) c.fetched[i] |= !plan->nodes[i].backward;
    if (reuse && c.cheap) {
        /* dynamic plans: task ids follow the graph's order, a topological order (their
         * only updates accumulate into gradient tensors that nothing else reads) */
        for (uint32_t t = 0; t < c.ntasks; t++) c.order[t] = t;
        for (size_t i = 0; i < plan->n; i++) c.root[i] = (uint32_t)i;
        consumers(&c);
    } else if (reuse) {
        if ((st = ancestors(&c))) goto out;
        find_views(&c);
        consumers(&c);
    } else {
        for (uint32_t t = 0; t < c.ntasks; t++) c.order[t] = t;
        for (size_t i = 0; i < plan->n; i++) c.root[i] = (uint32_t)i;
    }
    memset(c.holder, 0xff, plan->n * sizeof *c.holder);
    size_t nb = 0;
    if ((st = assign(&c, bufs, &nb, reuse))) goto out;
    /* keep the old buffers that are large enough (a batch that shrinks back allocates
     * nothing); free the others */
    size_t planned = 0, naive = 0;
    for (size_t b = 0; b < nb; b++) {
        if (b < plan->nbufs && plan->bufs[b].data && plan->bufs[b].cap >= bufs[b].cap) {
            bufs[b].data = plan->bufs[b].data;
            bufs[b].on_pool = plan->bufs[b].on_pool;
            bufs[b].group = plan->bufs[b].group;
            bufs[b].cap = plan->bufs[b].cap;
            plan->bufs[b].data = NULL;
        }
        planned += bufs[b].cap;
    }
    for (size_t i = 0; i < plan->n; i++)
        if (owns_buffer(&plan->nodes[i])) naive += value_bytes(&plan->nodes[i]);
    node_memory(plan);
    planned += plan->scratch_bytes;
    naive += plan->fused_bytes;
    wf_plan_free_buffers(plan);
    wf_free(plan->bufs, plan->bufs_cap * sizeof *plan->bufs + 1);
    plan->bufs = bufs;
    plan->bufs_cap = c.ntasks;
    plan->nbufs = nb;
    plan->planned_bytes = planned;
    plan->naive_bytes = naive;
    bufs = NULL;
out:
    wf_free(bufs, c.ntasks * sizeof *bufs + 1);
    wf_free(c.anc, anc_bytes);
    wf_free(c.order, c.ntasks * sizeof *c.order + 4);
    wf_free(c.task_node, c.ntasks * sizeof *c.task_node + 4);
    wf_free(c.cons_off, (plan->n + 1) * sizeof *c.cons_off);
    wf_free(c.cons, plan->nin_total * sizeof *c.cons + 4);
    wf_free(c.holder, plan->n * sizeof *c.holder + 4);
    wf_free(c.root, plan->n * sizeof *c.root + 4);
    wf_free(c.fetched, plan->n + 1);
    return st;
}
