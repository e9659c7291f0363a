/* graph/tgraph.c - the tensor graph: nodes, leaves (placeholders, variables, constants),
 * and the one function through which every op node is added (shape rule first, so a
 * rejected op adds nothing). */
#include <string.h>

#include "graph/internal.h"

weft_status weft_tgraph_create(weft_tgraph **out) {
    if (!out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_tgraph_create: out is NULL");
    weft_tgraph *g = wf_calloc(sizeof *g, 16);
    if (!g) return wf_error(WEFT_ERR_NOMEM, "weft_tgraph_create: out of memory");
    *out = g;
    return WEFT_OK;
}

void wf_tgraph_reset(weft_tgraph *g) {
    for (size_t i = 0; i < g->n; i++)
        if (!g->nodes[i].borrowed) weft_tensor_destroy(g->nodes[i].storage);
    g->n = g->ninputs = g->names_len = 0;
    g->emitting_backward = 0;
}

void weft_tgraph_destroy(weft_tgraph *g) {
    if (!g) return;
    wf_tgraph_reset(g);
    wf_free(g->nodes, g->cap * sizeof *g->nodes);
    wf_free(g->inputs, g->inputs_cap * sizeof *g->inputs);
    wf_free(g->names, g->names_cap);
    wf_free(g, sizeof *g);
}

weft_status wf_tgraph_check_value(const weft_tgraph *g, weft_value v, const char *who) {
    if (!g) return wf_error(WEFT_ERR_INVALID_ARG, "%s: graph is NULL", who);
    if (v.id >= g->n)
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: value %u is not in the graph (%zu values)",
                        who, v.id, g->n);
    return WEFT_OK;
}

const char *wf_tnode_name(const weft_tgraph *g, const wf_tnode *node) {
    return node->name_off == WF_NO_NAME ? NULL : g->names + node->name_off;
}

int wf_tgraph_has_reader(const weft_tgraph *g, uint32_t v) {
    for (size_t u = (size_t)v + 1; u < g->n; u++)
        for (uint32_t k = 0; k < g->nodes[u].nin; k++)
            if (g->inputs[g->nodes[u].in_off + k] == v) return 1;
    return 0;
}

/* Reserves one node, `nin` input slots and the name; nothing is committed. */
static weft_status reserve(weft_tgraph *g, size_t nin, const char *name, const char *who) {
    size_t name_len = name ? strlen(name) + 1 : 0;
    if (g->n >= WEFT_VALUE_NONE_ID - 1 ||
        wf_array_reserve((void **)&g->nodes, &g->cap, g->n + 1, sizeof *g->nodes) ||
        wf_array_reserve((void **)&g->inputs, &g->inputs_cap, g->ninputs + nin, sizeof *g->inputs) ||
        wf_array_reserve((void **)&g->names, &g->names_cap, g->names_len + name_len, 1))
        return wf_error(WEFT_ERR_NOMEM, "%s: out of memory", who);
    return WEFT_OK;
}

/* Commits a node reserved by reserve(). */
static uint32_t push(weft_tgraph *g, wf_op_id op, size_t nin, const uint32_t *inputs,
                     const wf_attrs *attrs, const wf_desc *desc, const char *name,
                     weft_tensor *storage) {
    wf_tnode *n = &g->nodes[g->n];
    memset(n, 0, sizeof *n);
    n->op = (uint16_t)op;
    n->backward = (uint8_t)(g->emitting_backward != 0);
    n->nin = (uint32_t)nin;
    n->in_off = (uint32_t)g->ninputs;
    if (nin) memcpy(g->inputs + g->ninputs, inputs, nin * sizeof *inputs);
    g->ninputs += nin;
    n->name_off = WF_NO_NAME;
    if (name) {
        size_t len = strlen(name) + 1;
        memcpy(g->names + g->names_len, name, len);
        n->name_off = (uint32_t)g->names_len;
        g->names_len += len;
    }
    n->desc = *desc;
    if (attrs) n->attrs = *attrs;
    n->storage = storage;
    return (uint32_t)g->n++;
}

weft_status wf_tgraph_add(weft_tgraph *g, wf_op_id op, size_t nin, const uint32_t *inputs,
                          const wf_attrs *attrs, uint32_t *out) {
    const wf_op_def *def = wf_op_get(op);
    if (!def || (def->flags & WF_OPF_LEAF))
        return wf_error(WEFT_ERR_INVALID_ARG, "tensor graph: op %d cannot be added", (int)op);
    if (nin < def->min_inputs || (def->max_inputs && nin > def->max_inputs))
        return wf_op_error(def->name, "%zu inputs (expects %u..%u)", nin, def->min_inputs,
                           def->max_inputs);
    wf_desc small[4], *in = small;
    if (nin > 4 && !(in = wf_alloc(nin * sizeof *in, 16)))
        return wf_error(WEFT_ERR_NOMEM, "%s: out of memory", def->name);
    weft_status st = WEFT_OK;
    for (size_t i = 0; i < nin && !st; i++) {
        if (inputs[i] >= g->n)
            st = wf_op_error(def->name, "input %zu is value %u, not in the graph (%zu values)", i,
                             inputs[i], g->n);
        else
            in[i] = g->nodes[inputs[i]].desc;
    }
    if (!st && (def->flags & WF_OPF_UPDATE) && g->nodes[inputs[0]].op != WF_OP_VARIABLE)
        st = wf_op_error(def->name, "input 0 must be a variable, not the output of %s",
                         wf_op_get((wf_op_id)g->nodes[inputs[0]].op)->name);
    wf_attrs a = attrs ? *attrs : (wf_attrs){0};
    wf_desc desc = {0};
    if (!st) st = def->shape(&a, nin, in, &desc);
    if (!st) st = reserve(g, nin, NULL, def->name);
    if (in != small) wf_free(in, nin * sizeof *in);
    if (st) return st;
    uint32_t id = push(g, op, nin, inputs, &a, &desc, NULL, NULL);
    if (out) *out = id;
    return WEFT_OK;
}

static weft_status add_leaf(weft_tgraph *g, wf_op_id op, weft_dtype dtype, const wf_shape *shape,
                            const weft_tensor *init, const char *name, const char *who,
                            weft_value *out) {
    if (!g || !out) return wf_error(WEFT_ERR_INVALID_ARG, "%s: NULL argument", who);
    out->id = WEFT_VALUE_NONE_ID;
    weft_tensor *storage = NULL;
    weft_status st;
    if (init) {
        if ((st = wf_tensor_new(dtype, shape, &storage))) return st;
        if (storage->bytes) memcpy(storage->ref.data, init->ref.data, storage->bytes);
    }
    if ((st = reserve(g, 0, name, who))) {
        weft_tensor_destroy(storage);
        return st;
    }
    wf_desc desc = {.dtype = dtype, .shape = *shape};
    out->id = push(g, op, 0, NULL, NULL, &desc, name, storage);
    return WEFT_OK;
}

weft_status wf_tgraph_add_borrowed(weft_tgraph *g, wf_op_id op, weft_tensor *t, uint32_t *out) {
    weft_status st = reserve(g, 0, NULL, "tensor graph");
    if (st) return st;
    wf_desc desc = {.dtype = t->ref.dtype, .shape = t->ref.shape};
    *out = push(g, op, 0, NULL, NULL, &desc, NULL, t);
    g->nodes[*out].borrowed = 1;
    return WEFT_OK;
}

weft_status weft_tgraph_placeholder(weft_tgraph *g, weft_dtype dtype, size_t ndim,
                                    const int64_t *dims, const char *name, weft_value *out) {
    const char *who = "weft_tgraph_placeholder";
    if (weft_dtype_size(dtype) == 0)
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: unknown dtype %d", who, (int)dtype);
    if (ndim > WEFT_MAX_DIMS || (ndim && !dims))
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: %zu dimensions (at most %d, dims non-NULL)",
                        who, ndim, WEFT_MAX_DIMS);
    wf_shape shape = {.ndim = (int)ndim};
    for (size_t i = 0; i < ndim; i++) {
        if (dims[i] < 1 && !(i == 0 && dims[i] == WEFT_DIM_ANY))
            return wf_error(WEFT_ERR_INVALID_ARG, "%s '%s': dimension %zu is %lld (only the "
                            "leading one may be WEFT_DIM_ANY)", who, name ? name : "",
                            i, (long long)dims[i]);
        shape.d[i] = dims[i];
    }
    return add_leaf(g, WF_OP_PLACEHOLDER, dtype, &shape, NULL, name, who, out);
}

weft_status weft_tgraph_variable(weft_tgraph *g, const weft_tensor *init, const char *name,
                                 weft_value *out) {
    if (!init) return wf_error(WEFT_ERR_INVALID_ARG, "weft_tgraph_variable: init is NULL");
    if (!wf_dtype_is_float(init->ref.dtype))
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_tgraph_variable '%s': %s (f32 or f64 only)",
                        name ? name : "", weft_dtype_name(init->ref.dtype));
    return add_leaf(g, WF_OP_VARIABLE, init->ref.dtype, &init->ref.shape, init, name,
                    "weft_tgraph_variable", out);
}

weft_status weft_tgraph_constant(weft_tgraph *g, const weft_tensor *value, const char *name,
                                 weft_value *out) {
    if (!value) return wf_error(WEFT_ERR_INVALID_ARG, "weft_tgraph_constant: value is NULL");
    return add_leaf(g, WF_OP_CONSTANT, value->ref.dtype, &value->ref.shape, value, name,
                    "weft_tgraph_constant", out);
}

weft_status weft_tgraph_scalar(weft_tgraph *g, weft_dtype dtype, double value, weft_value *out) {
    if (!wf_dtype_is_float(dtype))
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_tgraph_scalar: dtype %s (float only)",
                        weft_dtype_name(dtype));
    weft_tensor t;
    double d = value;
    float f = (float)value;
    wf_shape scalar = {.ndim = 0};
    wf_tensor_view(&t, dtype, &scalar, dtype == WEFT_F32 ? (void *)&f : (void *)&d);
    return add_leaf(g, WF_OP_CONSTANT, dtype, &scalar, &t, NULL, "weft_tgraph_scalar", out);
}

weft_status weft_tgraph_value_info(const weft_tgraph *g, weft_value v, weft_dtype *dtype,
                                   size_t *ndim, int64_t *dims) {
    weft_status st = wf_tgraph_check_value(g, v, "weft_tgraph_value_info");
    if (st) return st;
    const wf_desc *d = &g->nodes[v.id].desc;
    if (dtype) *dtype = d->dtype;
    if (ndim) *ndim = (size_t)d->shape.ndim;
    if (dims)
        for (int i = 0; i < d->shape.ndim; i++) dims[i] = d->shape.d[i];
    return WEFT_OK;
}

const char *weft_tgraph_value_op(const weft_tgraph *g, weft_value v) {
    if (!g || v.id >= g->n) return "?";
    return wf_op_get((wf_op_id)g->nodes[v.id].op)->name;
}

weft_status weft_tgraph_value_inputs(const weft_tgraph *g, weft_value v, const weft_value **inputs,
                                     size_t *n) {
    weft_status st = wf_tgraph_check_value(g, v, "weft_tgraph_value_inputs");
    if (st) return st;
    if (!inputs || !n) return wf_error(WEFT_ERR_INVALID_ARG, "weft_tgraph_value_inputs: NULL argument");
    _Static_assert(sizeof(weft_value) == sizeof(uint32_t), "weft_value wraps one id");
    const wf_tnode *node = &g->nodes[v.id];
    *inputs = (const weft_value *)(g->inputs + node->in_off);
    *n = node->nin;
    return WEFT_OK;
}

size_t weft_tgraph_node_count(const weft_tgraph *g) { return g ? g->n : 0; }

weft_status weft_tgraph_variable_tensor(weft_tgraph *g, weft_value v, weft_tensor **out) {
    weft_status st = wf_tgraph_check_value(g, v, "weft_tgraph_variable_tensor");
    if (st) return st;
    if (!out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_tgraph_variable_tensor: out is NULL");
    if (g->nodes[v.id].op != WF_OP_VARIABLE)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_tgraph_variable_tensor: value %u is a %s, "
                        "not a variable", v.id, weft_tgraph_value_op(g, v));
    *out = g->nodes[v.id].storage;
    return WEFT_OK;
}
