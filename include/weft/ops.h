/* weft/ops.h - the tensor operations a graph is built from.
 *
 * Each call adds one node to `graph` and writes the value it produces to *out. Inputs
 * must be values of the same graph. Shapes and dtypes are checked here, at build time
 * (an open dimension is checked when a plan runs): on a mismatch the call returns
 * WEFT_ERR_INVALID_ARG, adds nothing, and weft_last_error() names the op and the shapes.
 * Float ops accept f32 and f64; the operands of an op share one dtype. Integer (i32)
 * inputs are class labels or row ids.
 *
 * Binary elementwise ops broadcast as NumPy does: shapes are aligned on the right, and a
 * dimension of 1 stretches to match the other operand.
 *
 * Thread safety: as for the graph (weft/tgraph.h).
 */
#ifndef WEFT_OPS_H
#define WEFT_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "weft/status.h"
#include "weft/tgraph.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_TRANS_A 1u /* matmul: use a transposed */
#define WEFT_TRANS_B 2u /* matmul: use b transposed */
#define WEFT_AXIS_ALL (-128) /* reductions: over all elements */

/* 2-D matrix product op(a) @ op(b); flags = WEFT_TRANS_A | WEFT_TRANS_B. */
WEFT_API weft_status weft_op_matmul(weft_tgraph *graph, weft_value a, weft_value b,
                                    unsigned flags, weft_value *out);

/* Elementwise, broadcasting. */
WEFT_API weft_status weft_op_add(weft_tgraph *graph, weft_value a, weft_value b, weft_value *out);
WEFT_API weft_status weft_op_sub(weft_tgraph *graph, weft_value a, weft_value b, weft_value *out);
WEFT_API weft_status weft_op_mul(weft_tgraph *graph, weft_value a, weft_value b, weft_value *out);
WEFT_API weft_status weft_op_div(weft_tgraph *graph, weft_value a, weft_value b, weft_value *out);

/* Elementwise, one operand. */
WEFT_API weft_status weft_op_neg(weft_tgraph *graph, weft_value a, weft_value *out);
WEFT_API weft_status weft_op_exp(weft_tgraph *graph, weft_value a, weft_value *out);
WEFT_API weft_status weft_op_log(weft_tgraph *graph, weft_value a, weft_value *out);
WEFT_API weft_status weft_op_sqrt(weft_tgraph *graph, weft_value a, weft_value *out);
WEFT_API weft_status weft_op_sigmoid(weft_tgraph *graph, weft_value a, weft_value *out);
WEFT_API weft_status weft_op_tanh(weft_tgraph *graph, weft_value a, weft_value *out);
WEFT_API weft_status weft_op_relu(weft_tgraph *graph, weft_value a, weft_value *out);
/* a ** p for a scalar p. */
WEFT_API weft_status weft_op_pow(weft_tgraph *graph, weft_value a, double p, weft_value *out);
/* a * s for a scalar s. */
WEFT_API weft_status weft_op_scale(weft_tgraph *graph, weft_value a, double s, weft_value *out);

/* Sum / mean over all elements (axis = WEFT_AXIS_ALL) or over one axis (negative axes
 * count from the end). keepdims keeps the reduced axis with size 1. */
WEFT_API weft_status weft_op_sum(weft_tgraph *graph, weft_value a, int axis, int keepdims,
                                 weft_value *out);
WEFT_API weft_status weft_op_mean(weft_tgraph *graph, weft_value a, int axis, int keepdims,
                                  weft_value *out);

/* Softmax and log-softmax over the last axis. */
WEFT_API weft_status weft_op_softmax(weft_tgraph *graph, weft_value a, weft_value *out);
WEFT_API weft_status weft_op_log_softmax(weft_tgraph *graph, weft_value a, weft_value *out);
/* Mean over the batch of -log softmax(logits)[i, labels[i]]: logits [N, C] (float),
 * labels [N] (i32, each in [0, C); a label out of range fails the run). A scalar. */
WEFT_API weft_status weft_op_softmax_xent(weft_tgraph *graph, weft_value logits,
                                          weft_value labels, weft_value *out);
/* Mean over all elements of (pred - target)^2; same shapes. A scalar. */
WEFT_API weft_status weft_op_mse(weft_tgraph *graph, weft_value pred, weft_value target,
                                 weft_value *out);

/* Same data, new shape. One entry of dims may be -1 (inferred); the element counts must
 * match. */
WEFT_API weft_status weft_op_reshape(weft_tgraph *graph, weft_value a, size_t ndim,
                                     const int64_t *dims, weft_value *out);
/* Permutes the axes: output axis i is input axis perm[i]. perm NULL reverses the axes. */
WEFT_API weft_status weft_op_transpose(weft_tgraph *graph, weft_value a, const int *perm,
                                       weft_value *out);
/* Joins n >= 1 values along `axis`; the other dimensions must match. */
WEFT_API weft_status weft_op_concat(weft_tgraph *graph, size_t n, const weft_value *values,
                                    int axis, weft_value *out);
/* Elements [begin, end) of `axis`. */
WEFT_API weft_status weft_op_slice(weft_tgraph *graph, weft_value a, int axis, int64_t begin,
                                   int64_t end, weft_value *out);
/* Rows of table [V, D] picked by ids (i32, any shape): the result has shape
 * ids.shape + [D]. An id out of [0, V) fails the run. */
WEFT_API weft_status weft_op_gather(weft_tgraph *graph, weft_value table, weft_value ids,
                                    weft_value *out);
/* Index of the largest element along the last axis (i32; ties: the first). Not
 * differentiable: a gradient through it is an error. */
WEFT_API weft_status weft_op_argmax(weft_tgraph *graph, weft_value a, weft_value *out);

/* Updates of a variable, run as part of a plan (list them as plan targets): `variable`
 * becomes `value` / `variable - value`. The update runs after every other node of the
 * plan that reads the variable. Its value is the updated variable. Not differentiable. */
WEFT_API weft_status weft_op_assign(weft_tgraph *graph, weft_value variable, weft_value value,
                                    weft_value *out);
WEFT_API weft_status weft_op_assign_sub(weft_tgraph *graph, weft_value variable,
                                        weft_value value, weft_value *out);

#ifdef __cplusplus
}
#endif
#endif
