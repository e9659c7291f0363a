/* weft/dynamic.h - dynamic graphs (define by run), the PyTorch style.
 *
 * Each training iteration builds a new graph with ordinary C control flow; shapes may
 * change from one iteration to the next (variable-length sequences). weft_dyn_begin
 * starts an iteration and hands out its graph: ops are recorded on it with the same
 * weft_op_* calls as a static graph, and evaluated lazily. Reading a value
 * (weft_dyn_read, weft_dyn_scalar), weft_dyn_backward or weft_dyn_eval runs the pending
 * part of the graph (every node recorded since the last evaluation) on the pool,
 * independent nodes in parallel. Reading a value is therefore always correct, and C code
 * can branch on it.
 *
 * Parameters persist across iterations: they are tensors owned by the caller, attached
 * to each iteration with weft_dyn_param together with a gradient tensor of the same
 * shape; weft_dyn_backward(loss) adds d loss / d parameter into those gradient tensors
 * (PyTorch's .grad). Zero them (weft_tensor_fill) and step an optimizer
 * (weft_optim_step) as you would in PyTorch.
 *
 * Everything an iteration creates (nodes, intermediate tensors, one-off plans) is
 * released in one step by the next weft_dyn_begin (or weft_dyn_destroy): nodes and
 * one-off plans' tensors live in the context's arena, and the tensors of a plan taken
 * from the plan cache (below) live in that plan's buffers, which the next iteration of
 * the same structure reuses. Either way a steady training loop reuses the same memory
 * every iteration. Values and tensors read from an iteration are valid until the next
 * weft_dyn_begin.
 *
 * Thread safety: a context is used by one thread at a time. Ops on the graph of an
 * iteration follow weft/ops.h (shape errors are reported when the op is recorded).
 */
#ifndef WEFT_DYNAMIC_H
#define WEFT_DYNAMIC_H

#include "weft/plan.h"
#include "weft/pool.h"
#include "weft/status.h"
#include "weft/tensor.h"
#include "weft/tgraph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_dyn weft_dyn;

/* The pool must outlive the context. opts may be NULL (plan defaults: check mode from
 * WEFT_CHECK_NUMERICS). *out is owned by the caller. */
WEFT_API weft_status weft_dyn_create(weft_pool *pool, const weft_plan_options *opts,
                                     weft_dyn **out);
WEFT_API void weft_dyn_destroy(weft_dyn *dyn);

/* Starts an iteration (releasing the previous one) and returns its graph (owned by the
 * context, valid until the next weft_dyn_begin). */
WEFT_API weft_status weft_dyn_begin(weft_dyn *dyn, weft_tgraph **graph);
/* An input of this iteration: the tensor is borrowed (not copied) until the next
 * weft_dyn_begin and must not change before the iteration has been evaluated. */
WEFT_API weft_status weft_dyn_input(weft_dyn *dyn, const weft_tensor *tensor, weft_value *out);
/* A parameter (float tensor, borrowed, persistent) and its gradient accumulator (same
 * dtype and shape; may be NULL for a frozen parameter). Using the same parameter twice
 * in one iteration returns the same value. */
WEFT_API weft_status weft_dyn_param(weft_dyn *dyn, weft_tensor *param, weft_tensor *grad,
                                    weft_value *out);

/* Runs every pending node on the pool. */
WEFT_API weft_status weft_dyn_eval(weft_dyn *dyn);
/* Runs the pending nodes, then gives the value (a tensor owned by the context, valid
 * until the next weft_dyn_begin). */
WEFT_API weft_status weft_dyn_read(weft_dyn *dyn, weft_value value, const weft_tensor **out);
/* The value of a one-element float value, as a double. */
WEFT_API weft_status weft_dyn_scalar(weft_dyn *dyn, weft_value value, double *out);
/* Reverse mode from a float loss (a non-scalar loss is summed): adds the gradient of the
 * loss into every parameter's gradient tensor, then evaluates. */
WEFT_API weft_status weft_dyn_backward(weft_dyn *dyn, weft_value loss);

/* Plan cache: an evaluation whose pending part has the structure of one seen before
 * (the same ops, inputs, attributes, dtypes and shapes, up to the same node) runs the
 * plan compiled then, bound to this iteration's tensors: no compilation, analysis or
 * memory planning. Results are those of a fresh compilation. `entries` plans are kept
 * (least recently used evicted; default 256, each holding its buffers); 0 disables the
 * cache (every evaluation is compiled, with buffers from the arena). */
WEFT_API weft_status weft_dyn_set_cache(weft_dyn *dyn, size_t entries);

typedef struct weft_dyn_stats {
    size_t nodes;      /* nodes recorded in this iteration */
    size_t evals;      /* evaluations run in this iteration */
    size_t arena_bytes;/* bytes the arena holds (kept across iterations) */
    size_t cache_hits; /* evaluations that reused a cached plan, since creation */
    size_t cached_plans;
} weft_dyn_stats;
WEFT_API weft_status weft_dyn_stats_get(const weft_dyn *dyn, weft_dyn_stats *out);

#ifdef __cplusplus
}
#endif
#endif
