/* weft/optim.h - optimizers: SGD, SGD with momentum, Adam; each with weight decay.
 *
 * One optimizer object serves both styles:
 *   - static graphs: weft_optim_minimize appends the gradients of the loss and one fused
 *     update op per variable to the graph; list the returned updates as plan targets.
 *     Each update runs as soon as its gradient is ready, overlapping the rest of the
 *     backward pass, and reads the learning rate when it runs (weft_optim_set_lr between
 *     runs takes effect at the next run);
 *   - dynamic graphs and plain tensors: weft_optim_step updates parameter tensors from
 *     gradient tensors, eagerly, on the pool.
 * The update rules are PyTorch's (torch.optim.SGD / Adam with weight_decay as L2 added
 * to the gradient):
 *   g' = g + weight_decay * w
 *   SGD:       w -= lr * g'
 *   momentum:  b = momentum * b + g'            (b starts at 0);  w -= lr * b
 *   Adam:      t += 1; m = beta1 m + (1 - beta1) g'; v = beta2 v + (1 - beta2) g'^2
 *              w -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
 * The per-parameter state is exposed as tensors for checkpoints (weft_optim_state),
 * named "optim.<k>.momentum" (the buffer b) or "optim.<k>.m", ".v", ".t" (Adam; t is an
 * f64 scalar), with k the parameter's index in the order parameters were first seen.
 * A refused weft_optim_step changes nothing.
 *
 * Thread safety: an optimizer is used by one thread at a time, and not while a plan
 * containing its updates runs.
 */
#ifndef WEFT_OPTIM_H
#define WEFT_OPTIM_H

#include <stddef.h>

#include "weft/pool.h"
#include "weft/status.h"
#include "weft/tensor.h"
#include "weft/tgraph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum weft_optim_kind {
    WEFT_OPTIM_SGD = 0,
    WEFT_OPTIM_MOMENTUM = 1,
    WEFT_OPTIM_ADAM = 2
} weft_optim_kind;

typedef struct weft_optim_options {
    weft_optim_kind kind;
    double lr;           /* > 0 */
    double momentum;     /* momentum: in [0, 1) */
    double beta1, beta2; /* Adam: in [0, 1) */
    double eps;          /* Adam: > 0 */
    double weight_decay; /* >= 0 */
} weft_optim_options;

/* lr 0.01, momentum 0.9, beta1 0.9, beta2 0.999, eps 1e-8, weight_decay 0. */
WEFT_API weft_optim_options weft_optim_options_default(weft_optim_kind kind);

typedef struct weft_optim weft_optim;

/* *out is owned by the caller; destroy it after every plan that holds its updates. */
WEFT_API weft_status weft_optim_create(const weft_optim_options *opts, weft_optim **out);
WEFT_API void weft_optim_destroy(weft_optim *optim);
WEFT_API weft_status weft_optim_set_lr(weft_optim *optim, double lr);
WEFT_API double weft_optim_lr(const weft_optim *optim);

/* Static style: gradients of `loss` with respect to the n variables, then one update per
 * variable; updates_out[i] is the update of vars[i] (a plan target). The variables get
 * optimizer state on first use. A gradient that is a matrix product (a weight used in
 * matmuls) of operands that are not variables, and the gradient of no other variable, is
 * not stored: its update computes the product one tile at a time and applies the step to
 * each tile at once, with the same numbers bit for bit (see weft_plan_stats.scratch_bytes
 * and fused_bytes, and docs/tensors.md). */
WEFT_API weft_status weft_optim_minimize(weft_optim *optim, weft_tgraph *graph,
                                         weft_value loss, size_t n, const weft_value *vars,
                                         weft_value *updates_out);

/* Eager style: params[i] is updated with grads[i] (same dtype and shape). A parameter is
 * recognised by its tensor (the same weft_tensor * from step to step). pool may be NULL. */
WEFT_API weft_status weft_optim_step(weft_optim *optim, weft_pool *pool, size_t n,
                                     weft_tensor *const *params,
                                     const weft_tensor *const *grads);

/* Eager style: creates the state of these parameters now, in this order, without a step
 * (the state of a parameter is otherwise created by its first step), so that a
 * checkpoint can be loaded into it before training resumes. Already known parameters
 * are left as they are. */
WEFT_API weft_status weft_optim_attach(weft_optim *optim, size_t n, weft_tensor *const *params);

/* The optimizer state for checkpoints: count, then each tensor (owned by the optimizer)
 * and its name (static string valid as long as the optimizer). */
WEFT_API size_t weft_optim_state_count(const weft_optim *optim);
WEFT_API weft_status weft_optim_state(weft_optim *optim, size_t i, const char **name,
                                      weft_tensor **tensor);

#ifdef __cplusplus
}
#endif
#endif
