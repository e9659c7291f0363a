/* graph/autodiff.c - reverse-mode automatic differentiation of a tensor graph.
 *
 * weft_tgraph_gradients walks the nodes between the wrt values and the loss in reverse
 * creation order (a reverse topological order) and calls each op's backward builder,
 * which appends ordinary op nodes (marked backward) to the same graph. When a node's
 * builder runs, every consumer of its output has already contributed, so its gradient
 * is complete. Contributions to one value are added in the order they arrive, which is
 * the reverse creation order of the consumers: fixed by the graph, never by threads.
 */
#include <string.h>

#include "graph/internal.h"

typedef struct grad_state {
    weft_tgraph *g;
    size_t n;             /* nodes in the forward graph (those that may need gradients) */
    unsigned char *need;  /* need[v]: v lies on a path from a wrt value to the loss */
    uint32_t *grad;       /* grad[v]: the running sum of v's gradient, or WF_NO_VALUE */
} grad_state;

/* The emit callback handed to backward builders. */
static weft_status emit(void *builder, wf_op_id op, size_t nin, const uint32_t *inputs,
                        const wf_attrs *attrs, uint32_t *out) {
    grad_state *s = builder;
    return wf_tgraph_add(s->g, op, nin, inputs, attrs, out);
}

/* 1 if node c is a matmul that only this accumulation will read: made by the builder
 * that just ran (id >= first_new), used by no later node and by no other gradient of
 * the same builder. */
static int private_matmul(const weft_tgraph *g, uint32_t c, uint32_t first_new,
                          const uint32_t *gin, size_t nin, size_t i) {
    if (c < first_new || g->nodes[c].op != WF_OP_MATMUL) return 0;
    for (size_t k = 0; k < nin; k++)
        if (k != i && gin[k] == c) return 0;
    return !wf_tgraph_has_reader(g, c);
}

/* grad[v] += contribution (a new add node unless it is the first). A contribution that
 * is a private matmul becomes matmul_acc(a, b, grad[v]): one GEMM accumulating into the
 * running sum (in place under a memory plan) instead of a product and an add. */
static weft_status accumulate(grad_state *s, uint32_t v, uint32_t contribution, int fuse) {
    if (s->grad[v] == WF_NO_VALUE) {
        s->grad[v] = contribution;
        return WEFT_OK;
    }
    uint32_t sum;
    weft_status st;
    if (fuse) {
        const wf_tnode *mm = &s->g->nodes[contribution];
        uint32_t in3[3] = {s->g->inputs[mm->in_off], s->g->inputs[mm->in_off + 1], s->grad[v]};
        wf_attrs at = mm->attrs;
        st = wf_tgraph_add(s->g, WF_OP_MATMUL_ACC, 3, in3, &at, &sum);
        if (!st) {
            s->grad[v] = sum;
            /* nothing reads the product any more: dynamic graphs must not compute it */
            s->g->nodes[contribution].unused = 1;
        }
        return st;
    }
    uint32_t in[2] = {s->grad[v], contribution};
    st = wf_tgraph_add(s->g, WF_OP_ADD, 2, in, NULL, &sum);
    if (!st) s->grad[v] = sum;
    return st;
}

/* Marks need[]: reachable from a wrt value (forward sweep) and reaching the loss
 * (backward sweep). */
static void mark_needed(grad_state *s, uint32_t loss, size_t n, const weft_value *wrt) {
    weft_tgraph *g = s->g;
    unsigned char *from_wrt = s->need; /* reused: first "reachable from wrt" */
    for (size_t i = 0; i < n; i++) from_wrt[wrt[i].id] = 1;
    for (uint32_t v = 0; v <= loss; v++) {
        const wf_tnode *node = &g->nodes[v];
        if (from_wrt[v]) continue;
        for (uint32_t k = 0; k < node->nin; k++)
            if (from_wrt[g->inputs[node->in_off + k]]) { from_wrt[v] = 1; break; }
    }
    /* backward sweep: keep bit 1 = reaches loss, combined into value 3 = needed */
    from_wrt[loss] |= 2;
    for (uint32_t v = loss + 1; v-- > 0;) {
        const wf_tnode *node = &g->nodes[v];
        if (!(from_wrt[v] & 2)) continue;
        for (uint32_t k = 0; k < node->nin; k++) from_wrt[g->inputs[node->in_off + k]] |= 2;
    }
    for (uint32_t v = 0; v < s->n; v++) from_wrt[v] = from_wrt[v] == 3;
}

static weft_status not_differentiable(const weft_tgraph *g, uint32_t v) {
    const wf_tnode *node = &g->nodes[v];
    char shape[160];
    return wf_error(WEFT_ERR_INVALID_ARG, "gradients: %s is not differentiable (value %u, %s "
                    "%s, lies on a path from a wrt value to the loss)",
                    wf_op_get((wf_op_id)node->op)->name, v, weft_dtype_name(node->desc.dtype),
                    wf_shape_str(&node->desc.shape, shape, sizeof shape));
}

static weft_status backward_node(grad_state *s, uint32_t v) {
    weft_tgraph *g = s->g;
    const wf_tnode *node = &g->nodes[v];
    const wf_op_def *def = wf_op_get((wf_op_id)node->op);
    if (def->flags & WF_OPF_LEAF) return WEFT_OK;
    if (!def->backward) return not_differentiable(g, v);
    size_t nin = node->nin;
    unsigned char needs_small[8];
    uint32_t gin_small[8], in_small[8];
    wf_desc desc_small[8];
    unsigned char *needs = needs_small;
    uint32_t *gin = gin_small, *in = in_small;
    wf_desc *in_desc = desc_small;
    if (nin > 8) {
        needs = wf_alloc(nin, 16);
        gin = wf_alloc(nin * sizeof *gin, 16);
        in = wf_alloc(nin * sizeof *in, 16);
        in_desc = wf_alloc(nin * sizeof *in_desc, 16);
    }
    weft_status st = WEFT_OK;
    if (!needs || !gin || !in || !in_desc) {
        st = wf_error(WEFT_ERR_NOMEM, "gradients: out of memory");
        goto out;
    }
    /* the graph's arrays may move while the builder emits: copy what it reads */
    wf_attrs attrs = node->attrs;
    wf_desc out_desc = node->desc;
    for (size_t i = 0; i < nin; i++) {
        in[i] = g->inputs[node->in_off + i];
        in_desc[i] = g->nodes[in[i]].desc;
        needs[i] = s->need[in[i]];
        gin[i] = WF_NO_VALUE;
    }
    uint32_t first_new = (uint32_t)g->n;
    wf_grad_ctx ctx = {.attrs = &attrs, .nin = nin, .in = in, .in_desc = in_desc, .out = v,
                       .out_desc = &out_desc, .gout = s->grad[v], .needs = needs, .gin = gin,
                       .emit = emit, .builder = s};
    if ((st = def->backward(&ctx))) goto out;
    for (size_t i = 0; i < nin && !st; i++) {
        /* WF_NO_VALUE: the input contributes nothing (e.g. a shape-only reference) */
        if (needs[i] && gin[i] != WF_NO_VALUE)
            st = accumulate(s, in[i], gin[i], private_matmul(g, gin[i], first_new, gin, nin, i));
    }
out:
    if (nin > 8) {
        wf_free(needs, nin);
        wf_free(gin, nin * sizeof *gin);
        wf_free(in, nin * sizeof *in);
        wf_free(in_desc, nin * sizeof *in_desc);
    }
    return st;
}

weft_status weft_tgraph_gradients(weft_tgraph *g, weft_value loss, size_t n,
                                  const weft_value *wrt, weft_value *grads_out) {
    const char *who = "weft_tgraph_gradients";
    weft_status st = wf_tgraph_check_value(g, loss, who);
    if (st) return st;
    if (n && (!wrt || !grads_out)) return wf_error(WEFT_ERR_INVALID_ARG, "%s: NULL wrt/grads", who);
    if (!wf_dtype_is_float(g->nodes[loss.id].desc.dtype))
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: the loss (value %u, %s) is not a float value",
                        who, loss.id, weft_tgraph_value_op(g, loss));
    for (size_t i = 0; i < n; i++) {
        if ((st = wf_tgraph_check_value(g, wrt[i], who))) return st;
        if (!wf_dtype_is_float(g->nodes[wrt[i].id].desc.dtype))
            return wf_error(WEFT_ERR_INVALID_ARG, "%s: wrt[%zu] (value %u) is not a float value",
                            who, i, wrt[i].id);
        grads_out[i].id = WEFT_VALUE_NONE_ID;
    }
    grad_state s = {.g = g, .n = g->n};
    s.need = wf_calloc(s.n, 16);
    s.grad = wf_alloc(s.n * sizeof *s.grad, 16);
    if (!s.need || !s.grad) {
        st = wf_error(WEFT_ERR_NOMEM, "%s: out of memory", who);
        goto out;
    }
    memset(s.grad, 0xff, s.n * sizeof *s.grad);
    mark_needed(&s, loss.id, n, wrt);
    g->emitting_backward = 1;
    /* the seed: ones shaped like the loss */
    wf_attrs one = {.scalar = 1.0};
    if ((st = wf_tgraph_add(g, WF_OP_FILL_LIKE, 1, &loss.id, &one, &s.grad[loss.id]))) goto out;
    uint32_t lowest = loss.id;
    for (size_t i = 0; i < n; i++)
        if (wrt[i].id < lowest) lowest = wrt[i].id;
    for (uint32_t v = loss.id + 1; v-- > lowest;) {
        if (!s.need[v]) continue;
        /* an integer value between a wrt value and the loss (argmax ids feeding a gather,
         * say): the loss is not differentiable along that path */
        if (!wf_dtype_is_float(g->nodes[v].desc.dtype)) {
            st = not_differentiable(g, v);
            goto out;
        }
        if (s.grad[v] == WF_NO_VALUE) continue;
        if ((st = backward_node(&s, v))) goto out;
    }
    for (size_t i = 0; i < n && !st; i++) {
        uint32_t gv = s.grad[wrt[i].id];
        if (gv == WF_NO_VALUE) { /* the loss does not depend on it */
            wf_attrs zero = {.scalar = 0.0};
            st = wf_tgraph_add(g, WF_OP_FILL_LIKE, 1, &wrt[i].id, &zero, &gv);
        }
        grads_out[i].id = gv;
    }
out:
    g->emitting_backward = 0;
    wf_free(s.need, s.n);
    wf_free(s.grad, s.n * sizeof *s.grad);
    return st;
}
