/* tools/train_net.h - the MLP being trained, in either execution style.
 *
 * Layers l = 0..L-1: z_l = h_l @ w_l + b_l, h_{l+1} = relu(z_l) for the hidden layers, and
 * the last z is the logits; the loss is softmax_xent(logits, labels). Widths: the input
 * width, the --hidden list, TRAIN_CLASSES.
 *
 * Initial values are the same in both modes: w_l [in, out] is He-initialised
 * (WEFT_INIT_HE) with seed train_mix(seed * 32 + l), b_l is zero. The op sequence is the
 * same in both modes too (train_net_forward builds it for both), and so is the update
 * kernel (the optimizer's fused update: a plan target in static mode, weft_optim_step in
 * dynamic mode), so the two modes compute the same numbers.
 *
 *   static   one graph: placeholders x [?, D] and y [?]; weft_optim_minimize appends the
 *            backward pass and one update per parameter; a training plan (fetch the loss,
 *            target the updates) runs once per batch, an evaluation plan fetches
 *            argmax(logits). The live parameters are the graph's variables.
 *   dynamic  every batch records a new graph (weft_dyn_begin, weft_dyn_input,
 *            weft_dyn_param), weft_dyn_backward fills the gradient tensors, weft_optim_step
 *            updates the parameters, and the gradients are zeroed. The live parameters are
 *            tensors owned by the net.
 *
 * Errors follow train_common.h (0 or -1 with a message printed). Main thread only.
 */
#ifndef WEFT_TOOLS_TRAIN_NET_H
#define WEFT_TOOLS_TRAIN_NET_H

#include <stddef.h>
#include <stdint.h>

#include "tools/train_data.h"
#include "tools/train_options.h"
#include "weft.h"

typedef struct train_net train_net;

/* Builds the net for options o (mode, hidden widths, optimizer, seed) on `pool` (which
 * must outlive the net). *out is owned by the caller (train_net_destroy). */
int train_net_create(const train_options *o, int64_t input_width, weft_pool *pool,
                     train_net **out);
/* NULL is a no-op. */
void train_net_destroy(train_net *net);

/* One optimizer step on the batch x [B, D], y [B]; *loss is the batch's mean loss (before
 * the update). The tensors are read during the call (dynamic: borrowed until the next
 * step or prediction). */
int train_net_step(train_net *net, const weft_tensor *x, const weft_tensor *y, double *loss);

/* Test-set evaluation: the views of the test images in batches of TRAIN_EVAL_BATCH rows
 * (they must stay alive while the net may still refer to them: dynamic inputs are
 * borrowed until the next iteration begins). */
#define TRAIN_EVAL_BATCH 1000
typedef struct train_eval {
    weft_tensor **x; /* views of test images, rows [i * TRAIN_EVAL_BATCH, ...) */
    size_t nbatches;
    const int32_t *labels;
    size_t n;
} train_eval;
int train_eval_create(const train_split *test, train_eval *out);
void train_eval_free(train_eval *ev);
/* Number of test items whose argmax(logits) equals the label. */
int train_net_evaluate(train_net *net, const train_eval *ev, size_t *correct);

/* The tensors a checkpoint holds: the parameters ("fc<l>.w", "fc<l>.b") and the optimizer
 * state (weft_optim_state names). Up to cap entries; *n is the count. The tensors are the
 * live ones: loading into them restores the net. */
#define TRAIN_MAX_CKPT_TENSORS 256
int train_net_checkpoint_tensors(train_net *net, size_t cap, const char **names,
                                 weft_tensor **tensors, size_t *n);
/* Makes sure the optimizer state exists before a checkpoint is loaded into it. Static
 * mode has it from weft_optim_minimize; a dynamic net creates it with one step on zero
 * gradients (weft_optim has no other way to register a parameter), whose effect the load
 * then overwrites entirely. */
int train_net_prepare_load(train_net *net);

/* FNV-1a over the bytes of every parameter, in layer order: equal hashes mean
 * bit-identical parameters. */
uint64_t train_net_params_hash(train_net *net);

#endif
