/* tools/train_static.c - the static engine (see train_net.h): one graph, built once,
 * with placeholders x [?, D] and y [?]; a training plan and an evaluation plan. */
#include "tools/train_net_internal.h"

#include "tools/train_common.h"

int train_static_build(train_net *net, weft_tensor **init)
{
    const int64_t xd[2] = {WEFT_DIM_ANY, net->width[0]}, yd[1] = {WEFT_DIM_ANY};
    weft_value vars[TRAIN_MAX_PARAMS], updates[TRAIN_MAX_PARAMS], logits;
    if (train_check(weft_tgraph_create(&net->graph), "creating the graph") != 0 ||
        train_check(weft_tgraph_placeholder(net->graph, WEFT_F32, 2, xd, "x", &net->x),
                    "placeholder x") != 0 ||
        train_check(weft_tgraph_placeholder(net->graph, WEFT_I32, 1, yd, "y", &net->y),
                    "placeholder y") != 0)
        return -1;
    for (size_t i = 0; i < net->nparams; i++) {
        /* The graph keeps a copy; its variable tensor is the live parameter. */
        if (train_check(weft_tgraph_variable(net->graph, init[i], net->names[i], &vars[i]),
                        "variable %s", net->names[i]) != 0 ||
            train_check(weft_tgraph_variable_tensor(net->graph, vars[i], &net->param[i]),
                        "variable %s", net->names[i]) != 0)
            return -1;
    }
    if (train_net_forward(net, net->graph, net->x, vars, &logits) != 0 ||
        train_check(weft_op_softmax_xent(net->graph, logits, net->y, &net->loss),
                    "softmax_xent") != 0 ||
        train_check(weft_op_argmax(net->graph, logits, &net->pred), "argmax") != 0 ||
        train_check(weft_optim_minimize(net->optim, net->graph, net->loss, net->nparams, vars,
                                        updates),
                    "weft_optim_minimize") != 0)
        return -1;
    if (train_check(weft_plan_create(net->graph, net->pool, 1, &net->loss, net->nparams,
                                        updates, NULL, &net->train_plan),
                       "creating the training plan") ||
           train_check(weft_plan_create(net->graph, net->pool, 1, &net->pred, 0, NULL, NULL,
                                        &net->eval_plan),
                       "creating the evaluation plan"))
        return -1;
    return 0;
}

int train_static_step(train_net *net, const weft_tensor *x, const weft_tensor *y, double *loss)
{
    const weft_feed feeds[2] = {{net->x, x}, {net->y, y}};
    const weft_tensor *l = NULL;
    if (train_check(weft_plan_run(net->train_plan, 2, feeds), "training step") ||
        train_check(weft_plan_fetch(net->train_plan, 0, &l), "fetching the loss") ||
        train_check(weft_tensor_get(l, 0, loss), "reading the loss"))
        return -1;
    return 0;
}

int train_static_predict(train_net *net, const weft_tensor *x, const int32_t **pred)
{
    const weft_feed feed = {net->x, x};
    const weft_tensor *p = NULL;
    if (train_check(weft_plan_run(net->eval_plan, 1, &feed), "evaluation") ||
        train_check(weft_plan_fetch(net->eval_plan, 0, &p), "fetching the predictions"))
        return -1;
    *pred = weft_tensor_data_const(p);
    return 0;
}

void train_static_free(train_net *net)
{
    weft_plan_destroy(net->train_plan);
    weft_plan_destroy(net->eval_plan);
    net->train_plan = net->eval_plan = NULL;
}
