/* graph/ops_api.c - the public op constructors of weft/ops.h. Each packs its attributes
 * and adds one node through wf_tgraph_add, where the op's shape rule runs. */
#include <string.h>

#include "graph/internal.h"
#include "weft/ops.h"

static weft_status add_op(weft_tgraph *g, wf_op_id op, size_t nin, const weft_value *in,
                          const wf_attrs *attrs, weft_value *out) {
    const char *name = wf_op_get(op)->name;
    if (!g || !out) return wf_error(WEFT_ERR_INVALID_ARG, "%s: NULL graph or out", name);
    out->id = WEFT_VALUE_NONE_ID;
    uint32_t ids[8];
    if (nin > 8) return wf_error(WEFT_ERR_INVALID_ARG, "%s: too many inputs", name);
    for (size_t i = 0; i < nin; i++) ids[i] = in[i].id;
    return wf_tgraph_add(g, op, nin, ids, attrs, &out->id);
}

static weft_status op1(weft_tgraph *g, wf_op_id op, weft_value a, const wf_attrs *attrs,
                       weft_value *out) {
    return add_op(g, op, 1, &a, attrs, out);
}

static weft_status op2(weft_tgraph *g, wf_op_id op, weft_value a, weft_value b,
                       const wf_attrs *attrs, weft_value *out) {
    weft_value in[2] = {a, b};
    return add_op(g, op, 2, in, attrs, out);
}

weft_status weft_op_matmul(weft_tgraph *g, weft_value a, weft_value b, unsigned flags,
                           weft_value *out) {
    if (flags & ~(WEFT_TRANS_A | WEFT_TRANS_B))
        return wf_error(WEFT_ERR_INVALID_ARG, "matmul: unknown flags 0x%x", flags);
    wf_attrs at = {.flags = flags};
    return op2(g, WF_OP_MATMUL, a, b, &at, out);
}

#define WF_BINARY_(fn, OP)                                                                \
    weft_status weft_op_##fn(weft_tgraph *g, weft_value a, weft_value b, weft_value *out) { \
        return op2(g, WF_OP_##OP, a, b, NULL, out);                                       \
    }
WF_BINARY_(add, ADD)
WF_BINARY_(sub, SUB)
WF_BINARY_(mul, MUL)
WF_BINARY_(div, DIV)
WF_BINARY_(softmax_xent, SOFTMAX_XENT)
WF_BINARY_(mse, MSE)
WF_BINARY_(gather, GATHER)
WF_BINARY_(assign, ASSIGN)
WF_BINARY_(assign_sub, ASSIGN_SUB)

#define WF_UNARY_(fn, OP)                                                                 \
    weft_status weft_op_##fn(weft_tgraph *g, weft_value a, weft_value *out) {             \
        return op1(g, WF_OP_##OP, a, NULL, out);                                          \
    }
WF_UNARY_(neg, NEG)
WF_UNARY_(exp, EXP)
WF_UNARY_(log, LOG)
WF_UNARY_(sqrt, SQRT)
WF_UNARY_(sigmoid, SIGMOID)
WF_UNARY_(tanh, TANH)
WF_UNARY_(relu, RELU)
WF_UNARY_(softmax, SOFTMAX)
WF_UNARY_(log_softmax, LOG_SOFTMAX)
WF_UNARY_(argmax, ARGMAX)

weft_status weft_op_pow(weft_tgraph *g, weft_value a, double p, weft_value *out) {
    wf_attrs at = {.scalar = p};
    return op1(g, WF_OP_POW, a, &at, out);
}

weft_status weft_op_scale(weft_tgraph *g, weft_value a, double s, weft_value *out) {
    wf_attrs at = {.scalar = s};
    return op1(g, WF_OP_SCALE, a, &at, out);
}

weft_status weft_op_sum(weft_tgraph *g, weft_value a, int axis, int keepdims, weft_value *out) {
    wf_attrs at = {.axis = axis, .keepdims = keepdims != 0};
    return op1(g, WF_OP_SUM, a, &at, out);
}

weft_status weft_op_mean(weft_tgraph *g, weft_value a, int axis, int keepdims, weft_value *out) {
    wf_attrs at = {.axis = axis, .keepdims = keepdims != 0};
    return op1(g, WF_OP_MEAN, a, &at, out);
}

weft_status weft_op_reshape(weft_tgraph *g, weft_value a, size_t ndim, const int64_t *dims,
                            weft_value *out) {
    if (ndim > WEFT_MAX_DIMS || (ndim && !dims))
        return wf_error(WEFT_ERR_INVALID_ARG, "reshape: %zu dimensions (at most %d, dims "
                        "non-NULL)", ndim, WEFT_MAX_DIMS);
    wf_attrs at = {.shape = {.ndim = (int)ndim}};
    for (size_t i = 0; i < ndim; i++) at.shape.d[i] = dims[i];
    return op1(g, WF_OP_RESHAPE, a, &at, out);
}

weft_status weft_op_transpose(weft_tgraph *g, weft_value a, const int *perm, weft_value *out) {
    weft_status st = wf_tgraph_check_value(g, a, "transpose");
    if (st) return st;
    int nd = g->nodes[a.id].desc.shape.ndim;
    wf_attrs at = {0};
    for (int i = 0; i < nd; i++) at.perm[i] = perm ? perm[i] : nd - 1 - i;
    return op1(g, WF_OP_TRANSPOSE, a, &at, out);
}

weft_status weft_op_concat(weft_tgraph *g, size_t n, const weft_value *values, int axis,
                           weft_value *out) {
    if (!g || !out || (n && !values))
        return wf_error(WEFT_ERR_INVALID_ARG, "concat: NULL argument");
    out->id = WEFT_VALUE_NONE_ID;
    uint32_t small[16] = {0}, *ids = small;
    if (n > 16 && !(ids = wf_alloc(n * sizeof *ids, 16)))
        return wf_error(WEFT_ERR_NOMEM, "concat: out of memory");
    for (size_t i = 0; i < n; i++) ids[i] = values[i].id;
    wf_attrs at = {.axis = axis};
    weft_status st = wf_tgraph_add(g, WF_OP_CONCAT, n, ids, &at, &out->id);
    if (ids != small) wf_free(ids, n * sizeof *ids);
    return st;
}

weft_status weft_op_slice(weft_tgraph *g, weft_value a, int axis, int64_t begin, int64_t end,
                          weft_value *out) {
    wf_attrs at = {.axis = axis, .begin = begin, .end = end};
    return op1(g, WF_OP_SLICE, a, &at, out);
}
