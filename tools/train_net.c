/* tools/train_net.c - what the two engines share: parameters and their initial values,
 * the forward ops, the optimizer, evaluation, the checkpoint tensor list, and the
 * dispatch to train_static.c / train_dynamic.c. */
#include "tools/train_net_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/train_common.h"

/* The initial values: w_l He with seed train_mix(seed * 32 + l), b_l zero. */
static int init_params(const train_net *net, uint64_t seed, weft_tensor **init)
{
    for (size_t l = 0; l < net->nlayers; l++) {
        const int64_t wd[2] = {net->width[l], net->width[l + 1]}, bd[1] = {net->width[l + 1]};
        if (train_check(weft_tensor_create(WEFT_F32, 2, wd, &init[2 * l]), "creating %s",
                        net->names[2 * l]) != 0 ||
            train_check(weft_tensor_init_random(init[2 * l], WEFT_INIT_HE,
                                                train_mix(seed * 32u + l), 0, 0),
                        "initialising %s", net->names[2 * l]) != 0 ||
            train_check(weft_tensor_create(WEFT_F32, 1, bd, &init[2 * l + 1]), "creating %s",
                        net->names[2 * l + 1]) != 0)
            return -1;
    }
    return 0;
}

int train_net_forward(const train_net *net, weft_tgraph *g, weft_value x,
                      const weft_value *params, weft_value *logits)
{
    weft_value h = x;
    for (size_t l = 0; l < net->nlayers; l++) {
        weft_value z, zb;
        if (train_check(weft_op_matmul(g, h, params[2 * l], 0, &z), "layer %zu: matmul", l) ||
            train_check(weft_op_add(g, z, params[2 * l + 1], &zb), "layer %zu: add", l))
            return -1;
        h = zb;
        if (l + 1 < net->nlayers &&
            train_check(weft_op_relu(g, zb, &h), "layer %zu: relu", l) != 0)
            return -1;
    }
    *logits = h;
    return 0;
}

int train_net_create(const train_options *o, int64_t input_width, weft_pool *pool,
                     train_net **out)
{
    *out = NULL;
    train_net *net = calloc(1, sizeof *net);
    if (net == NULL)
        return train_fail("out of memory");
    net->mode = o->mode;
    net->pool = pool;
    net->nlayers = o->nhidden + 1;
    net->nparams = 2 * net->nlayers;
    net->width[0] = input_width;
    for (size_t l = 0; l < o->nhidden; l++)
        net->width[l + 1] = o->hidden[l];
    net->width[net->nlayers] = TRAIN_CLASSES;
    for (size_t l = 0; l < net->nlayers; l++) {
        snprintf(net->names[2 * l], sizeof net->names[0], "fc%zu.w", l);
        snprintf(net->names[2 * l + 1], sizeof net->names[0], "fc%zu.b", l);
    }

    weft_optim_options oo = weft_optim_options_default(o->optim);
    oo.lr = o->lr;
    oo.momentum = o->momentum;
    oo.weight_decay = o->weight_decay;
    weft_tensor *init[TRAIN_MAX_PARAMS] = {0};
    int rc = train_check(weft_optim_create(&oo, &net->optim), "creating the optimizer");
    if (rc == 0)
        rc = init_params(net, o->seed, init);
    if (rc == 0)
        rc = net->mode == TRAIN_MODE_STATIC ? train_static_build(net, init)
                                            : train_dynamic_build(net, init);
    for (size_t i = 0; i < net->nparams; i++)
        weft_tensor_destroy(init[i]); /* static: copied; dynamic: taken (NULL) */
    if (rc != 0) {
        train_net_destroy(net);
        return -1;
    }
    *out = net;
    return 0;
}

void train_net_destroy(train_net *net)
{
    if (net == NULL)
        return;
    /* Plans and the dynamic context first, then the graph, then the optimizer: the
     * update nodes of plan and graph point at the optimizer's slots. */
    if (net->mode == TRAIN_MODE_STATIC)
        train_static_free(net);
    else
        train_dynamic_free(net);
    weft_tgraph_destroy(net->graph);
    weft_optim_destroy(net->optim);
    free(net);
}

int train_net_step(train_net *net, const weft_tensor *x, const weft_tensor *y, double *loss)
{
    return net->mode == TRAIN_MODE_STATIC ? train_static_step(net, x, y, loss)
                                          : train_dynamic_step(net, x, y, loss);
}

int train_eval_create(const train_split *test, train_eval *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->n = test->n;
    ev->labels = weft_tensor_data_const(test->y);
    ev->nbatches = (test->n + TRAIN_EVAL_BATCH - 1) / TRAIN_EVAL_BATCH;
    ev->x = calloc(ev->nbatches ? ev->nbatches : 1, sizeof *ev->x);
    if (ev->x == NULL)
        return train_fail("out of memory");
    const int64_t width = weft_tensor_dim(test->x, 1);
    const float *data = weft_tensor_data_const(test->x);
    for (size_t b = 0; b < ev->nbatches; b++) {
        size_t first = b * TRAIN_EVAL_BATCH;
        size_t rows = test->n - first < TRAIN_EVAL_BATCH ? test->n - first : TRAIN_EVAL_BATCH;
        const int64_t dims[2] = {(int64_t)rows, width};
        if (train_check(weft_tensor_from_data(WEFT_F32, 2, dims, data + first * (size_t)width,
                                              WEFT_BORROW, &ev->x[b]),
                        "test batch %zu", b) != 0)
            return -1;
    }
    return 0;
}

void train_eval_free(train_eval *ev)
{
    for (size_t b = 0; ev->x != NULL && b < ev->nbatches; b++)
        weft_tensor_destroy(ev->x[b]);
    free(ev->x);
    memset(ev, 0, sizeof *ev);
}

int train_net_evaluate(train_net *net, const train_eval *ev, size_t *correct)
{
    size_t ok = 0;
    for (size_t b = 0; b < ev->nbatches; b++) {
        const int32_t *pred = NULL;
        int rc = net->mode == TRAIN_MODE_STATIC ? train_static_predict(net, ev->x[b], &pred)
                                                : train_dynamic_predict(net, ev->x[b], &pred);
        if (rc != 0)
            return -1;
        size_t rows = (size_t)weft_tensor_dim(ev->x[b], 0);
        const int32_t *lab = ev->labels + b * TRAIN_EVAL_BATCH;
        for (size_t i = 0; i < rows; i++)
            ok += pred[i] == lab[i];
    }
    *correct = ok;
    return 0;
}

int train_net_checkpoint_tensors(train_net *net, size_t cap, const char **names,
                                 weft_tensor **tensors, size_t *n)
{
    size_t nstate = weft_optim_state_count(net->optim);
    if (net->nparams + nstate > cap)
        return train_fail("checkpoint: %zu tensors, at most %zu", net->nparams + nstate, cap);
    for (size_t i = 0; i < net->nparams; i++) {
        names[i] = net->names[i];
        tensors[i] = net->param[i];
    }
    for (size_t i = 0; i < nstate; i++)
        if (train_check(weft_optim_state(net->optim, i, &names[net->nparams + i],
                                         &tensors[net->nparams + i]),
                        "optimizer state %zu", i) != 0)
            return -1;
    *n = net->nparams + nstate;
    return 0;
}

int train_net_prepare_load(train_net *net)
{
    return net->mode == TRAIN_MODE_DYNAMIC ? train_dynamic_prepare_load(net) : 0;
}

uint64_t train_net_params_hash(train_net *net)
{
    uint64_t h = TRAIN_FNV_START;
    for (size_t i = 0; i < net->nparams; i++)
        h = train_fnv(h, weft_tensor_data_const(net->param[i]),
                      weft_tensor_numel(net->param[i]) * sizeof(float));
    return h;
}
