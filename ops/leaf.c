/* ops/leaf.c - the table entries of the leaves: placeholders, variables and constants.
 * They have no kernel and no inputs; a plan binds their data (feeds, the graph's
 * storage). Gradients flow into them and stop there. */
#include "ops/internal.h"

static weft_status leaf_shape(wf_attrs *attrs, size_t nin, const wf_desc *in, wf_desc *out) {
    (void)attrs, (void)nin, (void)in, (void)out;
    return WEFT_OK; /* the description is set when the leaf is created */
}

#define WF_LEAF_DEF_(n)                                                                   \
    const wf_op_def wf_op_def_##n = {.name = #n, .flags = WF_OPF_LEAF, .shape = leaf_shape};
WF_LEAF_DEF_(placeholder)
WF_LEAF_DEF_(variable)
WF_LEAF_DEF_(constant)
