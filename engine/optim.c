/* engine/optim.c - optimizer objects: hyper-parameters, per-parameter state (slots),
 * the static path (gradients + one update op per variable: optim_update, or
 * optim_update_mm for a gradient product it consumes tile by tile) and the eager path
 * (the same kernel run directly on tensors). The kernels are in ops/optim.c.
 *
 * Slots are allocated one by one and never move: plans hold pointers to them in their
 * update nodes' attributes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/internal.h"
#include "weft/ops.h"
#include "weft/optim.h"

typedef struct optim_param {
    wf_optim_slot slot;
    const void *key;        /* the parameter's data (static: the variable's storage) */
    weft_tensor *state[3];  /* momentum: b; Adam: m, v, t */
    char names[3][48];
} optim_param;

struct weft_optim {
    wf_optim_hyper hyper;
    optim_param **params;
    size_t n, cap;
};

weft_optim_options weft_optim_options_default(weft_optim_kind kind) {
    return (weft_optim_options){.kind = kind, .lr = 0.01, .momentum = 0.9, .beta1 = 0.9,
                                .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0};
}

static weft_status check_options(const weft_optim_options *o) {
    const char *who = "weft_optim_create";
    if (o->kind != WEFT_OPTIM_SGD && o->kind != WEFT_OPTIM_MOMENTUM && o->kind != WEFT_OPTIM_ADAM)
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: unknown kind %d", who, (int)o->kind);
    if (!(o->lr > 0) || !isfinite(o->lr))
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: lr %g must be > 0", who, o->lr);
    if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay))
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: weight_decay %g must be >= 0", who,
                        o->weight_decay);
    if (o->kind == WEFT_OPTIM_MOMENTUM && !(o->momentum >= 0 && o->momentum < 1))
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: momentum %g must be in [0, 1)", who, o->momentum);
    if (o->kind == WEFT_OPTIM_ADAM &&
        !(o->beta1 >= 0 && o->beta1 < 1 && o->beta2 >= 0 && o->beta2 < 1 && o->eps > 0))
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: Adam needs beta1, beta2 in [0, 1) and eps > 0 "
                        "(got %g, %g, %g)", who, o->beta1, o->beta2, o->eps);
    return WEFT_OK;
}

weft_status weft_optim_create(const weft_optim_options *opts, weft_optim **out) {
    if (!opts || !out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_optim_create: NULL argument");
    *out = NULL;
    weft_status st = check_options(opts);
    if (st) return st;
    weft_optim *o = wf_calloc(sizeof *o, 16);
    if (!o) return wf_error(WEFT_ERR_NOMEM, "weft_optim_create: out of memory");
    o->hyper = (wf_optim_hyper){(int)opts->kind, opts->lr, opts->momentum, opts->beta1,
                                opts->beta2, opts->eps, opts->weight_decay};
    *out = o;
    return WEFT_OK;
}

static void param_free(optim_param *p) {
    for (int k = 0; k < 3; k++) weft_tensor_destroy(p->state[k]);
    wf_scratch_free(&p->slot.scratch);
    wf_free(p, sizeof *p);
}

void weft_optim_destroy(weft_optim *o) {
    if (!o) return;
    for (size_t i = 0; i < o->n; i++) param_free(o->params[i]);
    wf_free(o->params, o->cap * sizeof *o->params);
    wf_free(o, sizeof *o);
}

weft_status weft_optim_set_lr(weft_optim *o, double lr) {
    if (!o) return wf_error(WEFT_ERR_INVALID_ARG, "weft_optim_set_lr: optim is NULL");
    if (!(lr > 0) || !isfinite(lr))
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_optim_set_lr: lr %g must be > 0", lr);
    o->hyper.lr = lr;
    return WEFT_OK;
}

double weft_optim_lr(const weft_optim *o) { return o ? o->hyper.lr : 0.0; }

/* The slot of the parameter whose data is `key` (dtype, shape), created on first use. */
static weft_status param_slot(weft_optim *o, const void *key, weft_dtype dtype,
                              const wf_shape *shape, optim_param **out) {
    for (size_t i = 0; i < o->n; i++)
        if (o->params[i]->key == key) {
            *out = o->params[i];
            return WEFT_OK;
        }
    if (wf_array_reserve((void **)&o->params, &o->cap, o->n + 1, sizeof *o->params))
        return wf_error(WEFT_ERR_NOMEM, "optimizer: out of memory");
    optim_param *p = wf_calloc(sizeof *p, 16);
    if (!p) return wf_error(WEFT_ERR_NOMEM, "optimizer: out of memory");
    p->key = key;
    p->slot.hyper = &o->hyper;
    static const char *const fields[3] = {"m", "v", "t"};
    int nstate = o->hyper.kind == WEFT_OPTIM_ADAM ? 3 : o->hyper.kind == WEFT_OPTIM_MOMENTUM;
    wf_shape scalar = {.ndim = 0};
    weft_status st = WEFT_OK;
    for (int k = 0; k < nstate && !st; k++) {
        st = k < 2 ? wf_tensor_new(dtype, shape, &p->state[k])
                   : wf_tensor_new(WEFT_F64, &scalar, &p->state[k]);
        snprintf(p->names[k], sizeof p->names[k], "optim.%zu.%s", o->n,
                 o->hyper.kind == WEFT_OPTIM_MOMENTUM ? "momentum" : fields[k]);
    }
    if (st) {
        param_free(p);
        return st;
    }
    p->slot.m = p->state[0] ? p->state[0]->ref.data : NULL;
    p->slot.v = p->state[1] ? p->state[1]->ref.data : NULL;
    p->slot.t = p->state[2] ? p->state[2]->ref.data : NULL;
    o->params[o->n++] = p;
    *out = p;
    return WEFT_OK;
}

/* 1 if value v is a variable's storage, directly or through views (reshape...). */
static int is_variable_data(const weft_tgraph *g, uint32_t v) {
    while (wf_op_get((wf_op_id)g->nodes[v].op)->flags & WF_OPF_VIEW)
        v = g->inputs[g->nodes[v].in_off];
    return g->nodes[v].op == WF_OP_VARIABLE;
}

/* 1 if the update of vars[i] may consume its gradient grads[i] tile by tile
 * (optim_update_mm): the gradient is a product made by this call's autodiff (at or after
 * first_new), read by no node and the gradient of no other variable, and no operand is a
 * variable's data. An operand that is a variable would be read while updates write it:
 * the variable itself (W @ W) changes under its own update's tiles, and two variables
 * that are each other's operands (A @ B) would need each update before the other. */
static int fusable_gradient(const weft_tgraph *g, size_t n, const weft_value *grads, size_t i,
                            uint32_t first_new) {
    const uint32_t v = grads[i].id;
    const wf_tnode *node = &g->nodes[v];
    if (v < first_new || (node->op != WF_OP_MATMUL && node->op != WF_OP_MATMUL_ACC)) return 0;
    for (size_t j = 0; j < n; j++)
        if (j != i && grads[j].id == v) return 0;
    for (uint32_t k = 0; k < node->nin; k++)
        if (is_variable_data(g, g->inputs[node->in_off + k])) return 0;
    return !wf_tgraph_has_reader(g, v);
}

/* The update of variable var by gradient grad: optim_update_mm over the product's
 * operands when `fuse` (the gradient, the largest value of a training step, is then never
 * stored; the numbers are the same bit for bit), else optim_update. */
static weft_status add_update(weft_tgraph *g, wf_optim_slot *slot, uint32_t var, uint32_t grad,
                              int fuse, uint32_t *out) {
    wf_attrs at = {.slot = slot};
    if (!fuse) {
        uint32_t in[2] = {var, grad};
        return wf_tgraph_add(g, WF_OP_OPTIM_UPDATE, 2, in, &at, out);
    }
    const wf_tnode *mm = &g->nodes[grad];
    uint32_t in[4] = {var, g->inputs[mm->in_off], g->inputs[mm->in_off + 1]};
    if (mm->nin == 3) in[3] = g->inputs[mm->in_off + 2];
    at.flags = mm->attrs.flags;
    weft_status st = wf_tgraph_add(g, WF_OP_OPTIM_UPDATE_MM, 1 + mm->nin, in, &at, out);
    if (!st) g->nodes[grad].unused = 1; /* nothing reads the product: never computed */
    return st;
}

weft_status weft_optim_minimize(weft_optim *o, weft_tgraph *g, weft_value loss, size_t n,
                                const weft_value *vars, weft_value *updates_out) {
    const char *who = "weft_optim_minimize";
    if (!o || !g || (n && (!vars || !updates_out)))
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: NULL argument", who);
    weft_status st = WEFT_OK;
    for (size_t i = 0; i < n && !st; i++) {
        if ((st = wf_tgraph_check_value(g, vars[i], who))) return st;
        if (g->nodes[vars[i].id].op != WF_OP_VARIABLE)
            return wf_error(WEFT_ERR_INVALID_ARG, "%s: vars[%zu] (value %u) is a %s, not a "
                            "variable", who, i, vars[i].id, weft_tgraph_value_op(g, vars[i]));
    }
    weft_value small[16], *grads = small;
    unsigned char small_fuse[16], *fuse = small_fuse;
    const size_t bytes = n * (sizeof *grads + 1);
    if (n > 16) {
        if (!(grads = wf_alloc(bytes, 16))) return wf_error(WEFT_ERR_NOMEM, "%s: out of memory", who);
        fuse = (unsigned char *)(grads + n);
    }
    const uint32_t first_new = (uint32_t)g->n;
    st = weft_tgraph_gradients(g, loss, n, vars, grads);
    /* decided before any update is added (the fused ones mark their products unused) */
    for (size_t i = 0; i < n && !st; i++)
        fuse[i] = (unsigned char)fusable_gradient(g, n, grads, i, first_new);
    for (size_t i = 0; i < n && !st; i++) {
        const weft_tensor *w = g->nodes[vars[i].id].storage;
        optim_param *p;
        if ((st = param_slot(o, w->ref.data, w->ref.dtype, &w->ref.shape, &p))) break;
        st = add_update(g, &p->slot, vars[i].id, grads[i].id, fuse[i], &updates_out[i].id);
    }
    if (grads != small) wf_free(grads, bytes);
    return st;
}

weft_status weft_optim_step(weft_optim *o, weft_pool *pool, size_t n, weft_tensor *const *params,
                            const weft_tensor *const *grads) {
    const char *who = "weft_optim_step";
    if (!o || (n && (!params || !grads)))
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: NULL argument", who);
    const wf_op_def *def = wf_op_get(WF_OP_OPTIM_UPDATE);
    /* every pair is checked before anything changes: a refused step updates nothing */
    for (size_t i = 0; i < n; i++) {
        if (!params[i] || !grads[i])
            return wf_error(WEFT_ERR_INVALID_ARG, "%s: params[%zu] or grads[%zu] is NULL", who, i, i);
        wf_optim_slot probe = {.hyper = &o->hyper};
        wf_attrs at = {.slot = &probe};
        const wf_tref *w = &params[i]->ref, *gr = &grads[i]->ref;
        wf_desc in_desc[2] = {{w->dtype, w->shape}, {gr->dtype, gr->shape}}, out_desc;
        weft_status st = def->shape(&at, 2, in_desc, &out_desc);
        if (st) return st;
    }
    for (size_t i = 0; i < n; i++) {
        const wf_tref *w = &params[i]->ref, *gr = &grads[i]->ref;
        optim_param *p;
        weft_status st = param_slot(o, w->data, w->dtype, &w->shape, &p);
        if (st) return st;
        wf_attrs at = {.slot = &p->slot};
        wf_tref in[2] = {*w, *gr}, out = *w;
        wf_kernel_ctx ctx = {.scratch = &p->slot.scratch, .pool = pool, .attrs = &at, .nin = 2,
                             .in = in, .out = &out};
        int rc = def->forward(&ctx);
        if (rc) return wf_error(WEFT_ERR_TASK_FAILED, "%s: %s", who, weft_last_error());
    }
    return WEFT_OK;
}

weft_status weft_optim_attach(weft_optim *o, size_t n, weft_tensor *const *params) {
    if (!o || (n && !params)) return wf_error(WEFT_ERR_INVALID_ARG, "weft_optim_attach: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (!params[i] || !wf_dtype_is_float(params[i]->ref.dtype))
            return wf_error(WEFT_ERR_INVALID_ARG, "weft_optim_attach: params[%zu] is NULL or "
                            "not a float tensor", i);
    for (size_t i = 0; i < n; i++) {
        optim_param *p;
        const wf_tref *w = &params[i]->ref;
        weft_status st = param_slot(o, w->data, w->dtype, &w->shape, &p);
        if (st) return st;
    }
    return WEFT_OK;
}

size_t weft_optim_state_count(const weft_optim *o) {
    if (!o) return 0;
    size_t per = o->hyper.kind == WEFT_OPTIM_ADAM ? 3 : o->hyper.kind == WEFT_OPTIM_MOMENTUM;
    return o->n * per;
}

weft_status weft_optim_state(weft_optim *o, size_t i, const char **name, weft_tensor **tensor) {
    size_t count = weft_optim_state_count(o);
    if (!o || !name || !tensor) return wf_error(WEFT_ERR_INVALID_ARG, "weft_optim_state: NULL argument");
    if (i >= count)
        return wf_error(WEFT_ERR_RANGE, "weft_optim_state: %zu, the optimizer has %zu state tensors",
                        i, count);
    size_t per = count / o->n;
    optim_param *p = o->params[i / per];
    *name = p->names[i % per];
    *tensor = p->state[i % per];
    return WEFT_OK;
}
