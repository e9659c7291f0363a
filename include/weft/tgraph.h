/* weft/tgraph.h - tensor graphs: placeholders, variables, constants, ops, autodiff, DOT.
 *
 * A tensor graph (weft_tgraph) is a dataflow graph of tensor operations, the static
 * (define, then run) style: build it once, differentiate it with weft_tgraph_gradients,
 * compile fetches into a plan (weft/plan.h) and run the plan many times with feeds.
 *
 * Every node produces one value, named by a weft_value. Values are numbered in the order
 * they are added, and an op may use only values that exist already, so the order of
 * creation is a topological order. Shapes and dtypes are checked when an op is added: a
 * mismatch returns WEFT_ERR_INVALID_ARG and weft_last_error() names the op and the shapes,
 * e.g. "matmul: inner dimensions differ: [4,3] @ [5,2]". The leading dimension of a
 * placeholder may be left open (WEFT_DIM_ANY, e.g. the batch size); it is shown as "?"
 * and becomes concrete when a plan runs with a feed.
 *
 * Ownership: the graph owns its nodes and the storage of its variables and constants
 * (copied from the tensors given at creation). Variables persist across plan runs; their
 * current values are read with weft_tgraph_variable_tensor.
 *
 * Thread safety: a graph is built by one thread at a time and must not be modified while
 * one of its plans runs. Adding nodes never invalidates existing plans.
 */
#ifndef WEFT_TGRAPH_H
#define WEFT_TGRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "weft/status.h"
#include "weft/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_tgraph weft_tgraph;

/* A value of a graph (the output of one node). Plain data; only meaningful with the graph
 * that made it. */
typedef struct weft_value {
    uint32_t id;
} weft_value;

#define WEFT_VALUE_NONE_ID 0xffffffffu
#define WEFT_DIM_ANY (-1) /* an open dimension (placeholders: the leading one only) */

/* *out is owned by the caller (weft_tgraph_destroy, NULL is a no-op). All plans of a graph
 * must be destroyed before the graph. */
WEFT_API weft_status weft_tgraph_create(weft_tgraph **out);
WEFT_API void weft_tgraph_destroy(weft_tgraph *graph);

/* A value fed at run time. dims[0] may be WEFT_DIM_ANY; the others must be >= 1.
 * name may be NULL; it is copied. */
WEFT_API weft_status weft_tgraph_placeholder(weft_tgraph *graph, weft_dtype dtype,
                                             size_t ndim, const int64_t *dims,
                                             const char *name, weft_value *out);
/* A persistent parameter, initialised with a copy of `init` (f32 or f64). */
WEFT_API weft_status weft_tgraph_variable(weft_tgraph *graph, const weft_tensor *init,
                                          const char *name, weft_value *out);
/* A constant: a copy of `value`. */
WEFT_API weft_status weft_tgraph_constant(weft_tgraph *graph, const weft_tensor *value,
                                          const char *name, weft_value *out);
/* A scalar constant of a float dtype. */
WEFT_API weft_status weft_tgraph_scalar(weft_tgraph *graph, weft_dtype dtype, double value,
                                        weft_value *out);

/* The dtype and shape (as known at build time; an open dimension is WEFT_DIM_ANY) of a
 * value. dims must hold WEFT_MAX_DIMS entries; any out-parameter may be NULL. */
WEFT_API weft_status weft_tgraph_value_info(const weft_tgraph *graph, weft_value value,
                                            weft_dtype *dtype, size_t *ndim, int64_t *dims);
/* The op name of the node that makes `value` ("matmul", "placeholder", ...). Static. */
WEFT_API const char *weft_tgraph_value_op(const weft_tgraph *graph, weft_value value);
/* The inputs of the node that makes `value` (owned by the graph, valid until the graph
 * changes): *n of them, in the op's order; leaves have none. */
WEFT_API weft_status weft_tgraph_value_inputs(const weft_tgraph *graph, weft_value value,
                                              const weft_value **inputs, size_t *n);
/* Number of nodes (values) in the graph. */
WEFT_API size_t weft_tgraph_node_count(const weft_tgraph *graph);
/* The current value of a variable: a tensor owned by the graph, valid until the graph is
 * destroyed. Its data may be read (and written) between plan runs, not during one. */
WEFT_API weft_status weft_tgraph_variable_tensor(weft_tgraph *graph, weft_value variable,
                                                 weft_tensor **out);

/* Reverse-mode autodiff. Appends to the graph the nodes that compute d(loss)/d(wrt[i])
 * for i < n and writes their values to grads_out[i]. The loss must be a float value; a
 * loss that is not a scalar is differentiated as the sum of its elements. The backward
 * nodes are ordinary ops (marked as backward), so forward and backward form one DAG that
 * a plan analyses and schedules together. The contributions to the gradient of a value
 * used several times are summed in a fixed order (the reverse order of its uses), so
 * results do not depend on the thread count. A wrt value the loss does not depend on gets
 * a gradient of zeros. A path from a wrt value to the loss through an op that is not
 * differentiable (argmax, an integer input) is WEFT_ERR_INVALID_ARG naming the op. On
 * failure the nodes appended so far stay in the graph but no plan uses them. */
WEFT_API weft_status weft_tgraph_gradients(weft_tgraph *graph, weft_value loss, size_t n,
                                           const weft_value *wrt, weft_value *grads_out);

/* Writes the graph in Graphviz DOT to `path` (atomically: a temporary file, then rename).
 * Forward ops, backward ops, updates, placeholders, variables and constants are drawn
 * differently; each node shows its op, name and shape. Render with `dot -Tpng`. */
WEFT_API weft_status weft_tgraph_to_dot(const weft_tgraph *graph, const char *path);

#ifdef __cplusplus
}
#endif
#endif
