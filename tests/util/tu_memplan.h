/* tests/util/tu_memplan.h - an independent validator of a static plan's memory plan
 * (engine/memplan.c), for tests/engine/test_memplan.c.
 *
 * It rebuilds the happens-before relation of the plan's op nodes from the graph alone
 * (weft_tgraph_value_inputs for data edges; for every update of a variable, an edge from
 * every other node that reads the variable, and from an earlier update of it in graph
 * order, as weft/plan.h and engine/plan.c document) and its transitive closure, reads the
 * buffers with weft_plan_value_buffer, and proves that no two values that share a buffer
 * can be alive at once.
 *
 * Values that own a plan buffer ("owners"): op nodes of the plan other than updates.
 * Leaves, updates and values outside the plan must report SIZE_MAX.
 *
 * Classes: a VIEW op (reshape, reshape_like, sum_like, broadcast_like) of input 0 with
 * the same element count and dtype, in input 0's buffer, is the same data: it joins input
 * 0's class. A class's producers are its members' nodes; its readers are the (node,
 * input) pairs that read a member's data (not the shape-only inputs: input 1 of
 * reshape_like / sum_like / broadcast_like / slice_grad, input 0 of fill_like, input 2
 * of gather_grad); a class with a fetched member is read after the run.
 *
 * Two classes A and B in one buffer are safe iff one of them, say A, is dead before B's
 * root (first producer) runs: nothing of A is fetched, every producer of A
 * happens-before B's root, and so does every reader of A, except a read by B's root
 * itself when that op may run in place over that input and A has B's element count and
 * dtype (INPLACE ops, over any input: element i of the output depends on element i of
 * that input only; matmul_acc, over its addend, input 2, only: a read of the same data
 * at input 0 or 1 is not exempt).
 *
 * Every check fails the current cmocka test like the assert_* it stands for.
 *
 * Thread safety: test main thread only (cmocka's assertions are not thread-safe).
 */
#ifndef WEFT_TESTS_TU_MEMPLAN_H
#define WEFT_TESTS_TU_MEMPLAN_H

#include <stddef.h>
#include <stdint.h>

#include "weft.h"

/* The graph and plan as the validator sees them. Zero-initialise before the first
 * tu_vg_load; the arrays are owned by the struct (tu_vg_free), the counters add up over
 * every tu_vg_check made with it. */
typedef struct tu_vg {
    size_t n, words;
    const char **op;
    const weft_value **in;
    size_t *nin;
    unsigned char *task, *owner, *leaf, *update, *fetched;
    size_t *numel;
    weft_dtype *dt;
    size_t *buf;
    uint32_t *parent;   /* classes: union-find, parent[v] <= v */
    uint64_t *anc;      /* anc[v * words ..]: nodes that happen-before v */
    /* counters of what the checked plans did (over all checks) */
    size_t pairs, inplace, views, shared_values;
} tu_vg;

/* 1 if input k of op is read for its shape only (no data: it keeps no buffer alive). */
int tu_vg_shape_only(const char *op, size_t k);
/* 1 if op is a VIEW op (it may alias input 0). */
int tu_vg_view_op(const char *op);
/* 1 if node a happens-before node b (indices into the graph). */
int tu_vg_hb(const tu_vg *V, size_t a, size_t b);
/* The class (root value) of v; valid after tu_vg_check. */
uint32_t tu_vg_find(const tu_vg *V, size_t v);
/* Frees the arrays (counters stay); V may be loaded again. */
void tu_vg_free(tu_vg *V);

/* Reads the graph, the plan's node set (what the nf fetches f and the nt targets t need),
 * the happens-before closure and the buffers of the last run into V (freed or fresh).
 * The plan must have run. */
void tu_vg_load(tu_vg *V, weft_tgraph *g, const weft_plan *plan, size_t nf,
                const weft_value *f, size_t nt, const weft_value *t);

/* Checks the buffers in V->buf; returns the number of violations (unless quiet, the first
 * few are printed with `what`). memory_plan 0: every owner must have a buffer of its own.
 * Callers may edit V->buf between checks (the validator's self-test does). */
size_t tu_vg_check(tu_vg *V, const char *what, int memory_plan, int quiet);

#endif
