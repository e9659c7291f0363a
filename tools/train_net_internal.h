/* tools/train_net_internal.h - the net's fields and the two engines (train_static.c,
 * train_dynamic.c) behind train_net.h. Not for other files of the tool. */
#ifndef WEFT_TOOLS_TRAIN_NET_INTERNAL_H
#define WEFT_TOOLS_TRAIN_NET_INTERNAL_H

#include "tools/train_net.h"

#define TRAIN_MAX_LAYERS (TRAIN_MAX_HIDDEN + 1)
#define TRAIN_MAX_PARAMS (2 * TRAIN_MAX_LAYERS)

struct train_net {
    train_mode mode;
    size_t nlayers;                     /* L */
    int64_t width[TRAIN_MAX_LAYERS + 1]; /* input, hidden..., classes */
    size_t nparams;                     /* 2L: w_0, b_0, w_1, b_1, ... */
    char names[TRAIN_MAX_PARAMS][32];
    weft_tensor *param[TRAIN_MAX_PARAMS]; /* live values (static: the graph's variables) */
    weft_pool *pool;
    weft_optim *optim;

    /* static */
    weft_tgraph *graph;
    weft_value x, y, loss, pred;
    weft_plan *train_plan, *eval_plan;

    /* dynamic */
    weft_dyn *dyn;
    weft_tensor *grad[TRAIN_MAX_PARAMS]; /* owned; zero between steps */
};

/* Appends the layers to g: x is the input value, params[2l] / params[2l+1] are w_l / b_l.
 * Both engines call it, so both record the same ops in the same order. */
int train_net_forward(const train_net *net, weft_tgraph *g, weft_value x,
                      const weft_value *params, weft_value *logits);

/* Engines. build takes the initial values (static copies them into variables; dynamic
 * takes ownership of them as its live parameters and sets init[i] = NULL). */
int train_static_build(train_net *net, weft_tensor **init);
int train_static_step(train_net *net, const weft_tensor *x, const weft_tensor *y, double *loss);
int train_static_predict(train_net *net, const weft_tensor *x, const int32_t **pred);
void train_static_free(train_net *net);

int train_dynamic_build(train_net *net, weft_tensor **init);
int train_dynamic_step(train_net *net, const weft_tensor *x, const weft_tensor *y,
                       double *loss);
int train_dynamic_predict(train_net *net, const weft_tensor *x, const int32_t **pred);
int train_dynamic_prepare_load(train_net *net);
void train_dynamic_free(train_net *net);

#endif
