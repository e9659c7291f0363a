/* weft.h - the one header users include.
 *
 * weft runs dataflow graphs on every core of a machine: a dependency analyzer finds the
 * independent nodes of a graph and a NUMA-aware work-stealing pool runs them in parallel.
 *
 *   weft/status.h    status codes, weft_last_error(), the allocator hook
 *   weft/pool.h      the thread pool: topology, placement, counters, NUMA memory, tracing
 *   weft/parallel.h  weft_parallel_for and task groups (nested parallelism)
 *   weft/graph.h     task graphs: tasks, edges, data accesses, analysis, runs
 *   weft/tensor.h    dense tensors (f32, f64, i32), seeded random initialisation
 *   weft/tgraph.h    tensor graphs: placeholders, variables, autodiff, DOT export
 *   weft/ops.h       the tensor operations (matmul, elementwise, reductions, losses, ...)
 *   weft/plan.h      static sessions: compile a graph once, run it many times with feeds
 *   weft/dynamic.h   dynamic graphs (define by run): lazy evaluation, parameters, backward
 *   weft/optim.h     optimizers (SGD, momentum, Adam) for static and dynamic graphs
 *   weft/data.h      IDX datasets and shuffled mini-batches
 *   weft/checkpoint.h  checkpoints of parameters and optimizer state
 *
 * Conventions: names are weft_<noun>_<verb>; every call that can fail returns a
 * weft_status (0 = WEFT_OK) and writes results through out-parameters; objects are opaque
 * handles with one create and one destroy (destroy accepts NULL); nothing aborts on bad
 * input. A call is not thread-safe unless its header says so.
 */
#ifndef WEFT_H
#define WEFT_H

#include "weft/status.h"
#include "weft/pool.h"
#include "weft/parallel.h"
#include "weft/graph.h"
#include "weft/tensor.h"
#include "weft/tgraph.h"
#include "weft/ops.h"
#include "weft/plan.h"
#include "weft/dynamic.h"
#include "weft/optim.h"
#include "weft/data.h"
#include "weft/checkpoint.h"

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1

#endif
