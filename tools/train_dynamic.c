/* tools/train_dynamic.c - the dynamic engine (see train_net.h): a new graph per batch,
 * PyTorch style. The net owns the parameters and their gradient tensors; the gradients
 * are zero between steps. */
#include "tools/train_net_internal.h"

#include "tools/train_common.h"

int train_dynamic_build(train_net *net, weft_tensor **init)
{
    for (size_t i = 0; i < net->nparams; i++) {
        net->param[i] = init[i];
        init[i] = NULL;
        size_t nd = weft_tensor_ndim(net->param[i]);
        int64_t dims[2] = {weft_tensor_dim(net->param[i], 0),
                           nd > 1 ? weft_tensor_dim(net->param[i], 1) : 0};
        if (train_check(weft_tensor_create(WEFT_F32, nd, dims, &net->grad[i]),
                        "gradient of %s", net->names[i]) != 0)
            return -1;
    }
    return train_check(weft_dyn_create(net->pool, NULL, &net->dyn), "weft_dyn_create");
}

/* Starts an iteration with input x and attaches the parameters (with their gradient
 * tensors, or frozen when grads is 0); writes the logits. */
static int record_forward(train_net *net, const weft_tensor *x, int grads, weft_tgraph **g,
                          weft_value *logits)
{
    weft_value xv, pv[TRAIN_MAX_PARAMS];
    if (train_check(weft_dyn_begin(net->dyn, g), "weft_dyn_begin") ||
        train_check(weft_dyn_input(net->dyn, x, &xv), "input x"))
        return -1;
    for (size_t i = 0; i < net->nparams; i++)
        if (train_check(weft_dyn_param(net->dyn, net->param[i], grads ? net->grad[i] : NULL,
                                       &pv[i]),
                        "parameter %s", net->names[i]) != 0)
            return -1;
    return train_net_forward(net, *g, xv, pv, logits);
}

int train_dynamic_step(train_net *net, const weft_tensor *x, const weft_tensor *y,
                       double *loss)
{
    weft_tgraph *g = NULL;
    weft_value logits, yv, lv;
    if (record_forward(net, x, 1, &g, &logits) != 0 ||
        train_check(weft_dyn_input(net->dyn, y, &yv), "input y") ||
        train_check(weft_op_softmax_xent(g, logits, yv, &lv), "softmax_xent") ||
        train_check(weft_dyn_backward(net->dyn, lv), "weft_dyn_backward") ||
        train_check(weft_dyn_scalar(net->dyn, lv, loss), "reading the loss") ||
        train_check(weft_optim_step(net->optim, net->pool, net->nparams, net->param,
                                    (const weft_tensor *const *)net->grad),
                    "weft_optim_step"))
        return -1;
    for (size_t i = 0; i < net->nparams; i++)
        if (train_check(weft_tensor_fill(net->grad[i], 0.0), "zeroing a gradient") != 0)
            return -1;
    return 0;
}

int train_dynamic_predict(train_net *net, const weft_tensor *x, const int32_t **pred)
{
    weft_tgraph *g = NULL;
    weft_value logits, pv;
    const weft_tensor *p = NULL;
    if (record_forward(net, x, 0, &g, &logits) != 0 ||
        train_check(weft_op_argmax(g, logits, &pv), "argmax") ||
        train_check(weft_dyn_read(net->dyn, pv, &p), "reading the predictions"))
        return -1;
    *pred = weft_tensor_data_const(p);
    return 0;
}

int train_dynamic_prepare_load(train_net *net)
{
    /* the optimizer's state for every parameter, in parameter order, before the load */
    return train_check(weft_optim_attach(net->optim, net->nparams, net->param),
                       "creating the optimizer state");
}

void train_dynamic_free(train_net *net)
{
    weft_dyn_destroy(net->dyn);
    net->dyn = NULL;
    for (size_t i = 0; i < net->nparams; i++) {
        weft_tensor_destroy(net->param[i]);
        weft_tensor_destroy(net->grad[i]);
        net->param[i] = net->grad[i] = NULL;
    }
}
