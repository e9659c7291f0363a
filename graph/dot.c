/* graph/dot.c - Graphviz DOT export of a tensor graph.
 *
 * Styles: placeholders are grey ellipses, variables yellow boxes, constants white boxes,
 * forward ops blue, backward ops (appended by autodiff) red, variable updates green,
 * unused nodes (products fused into their consumer, never computed) dashed grey.
 * Each node shows "op name" and its build-time shape ("?" for an open dimension); each
 * edge goes from an input to its consumer. The file is written atomically. */
#include <stdio.h>

#include "graph/internal.h"

static const char *node_style(const wf_tnode *n) {
    switch (n->op) {
    case WF_OP_PLACEHOLDER: return "shape=ellipse,style=filled,fillcolor=\"#dddddd\"";
    case WF_OP_VARIABLE: return "shape=box,style=\"filled,bold\",fillcolor=\"#ffe680\"";
    case WF_OP_CONSTANT: return "shape=box,style=filled,fillcolor=white";
    default: break;
    }
    if (n->unused) /* a product fused into its consumer: never computed */
        return "shape=box,style=\"dashed,rounded\",color=\"#999999\",fontcolor=\"#999999\"";
    if (wf_op_get((wf_op_id)n->op)->flags & WF_OPF_UPDATE)
        return "shape=box,style=\"filled,rounded\",fillcolor=\"#9be39b\"";
    return n->backward ? "shape=box,style=\"filled,rounded\",fillcolor=\"#f4a6a6\""
                       : "shape=box,style=\"filled,rounded\",fillcolor=\"#a6c8f4\"";
}

/* Writes s with DOT string escapes. */
static void put_escaped(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if ((unsigned char)*s >= 0x20) fputc(*s, f);
    }
}

weft_status weft_tgraph_to_dot(const weft_tgraph *g, const char *path) {
    if (!g || !path) return wf_error(WEFT_ERR_INVALID_ARG, "weft_tgraph_to_dot: NULL argument");
    wf_atomic_file af;
    weft_status st = wf_atomic_file_open(path, &af, "weft_tgraph_to_dot");
    if (st) return st;
    FILE *f = af.f;
    fprintf(f, "digraph weft {\n  rankdir=TB;\n  node [fontname=\"Helvetica\",fontsize=10];\n"
               "  edge [color=\"#555555\"];\n");
    for (size_t i = 0; i < g->n; i++) {
        const wf_tnode *n = &g->nodes[i];
        const char *name = wf_tnode_name(g, n);
        char shape[160];
        wf_shape_str(&n->desc.shape, shape, sizeof shape);
        fprintf(f, "  n%zu [%s,label=\"%s", i, node_style(n), wf_op_get((wf_op_id)n->op)->name);
        if (name) {
            fputc(' ', f);
            put_escaped(f, name);
        }
        fprintf(f, "\\n%s %s\"];\n", weft_dtype_name(n->desc.dtype), shape);
        for (uint32_t k = 0; k < n->nin; k++)
            fprintf(f, "  n%u -> n%zu;\n", g->inputs[n->in_off + k], i);
    }
    fprintf(f, "  subgraph cluster_legend {\n    label=\"legend\"; fontsize=10;\n"
               "    l_fwd [label=\"forward op\",%s];\n    l_bwd [label=\"backward op\",%s];\n"
               "  }\n}\n",
            "shape=box,style=\"filled,rounded\",fillcolor=\"#a6c8f4\"",
            "shape=box,style=\"filled,rounded\",fillcolor=\"#f4a6a6\"");
    return wf_atomic_file_commit(&af, "weft_tgraph_to_dot");
}
