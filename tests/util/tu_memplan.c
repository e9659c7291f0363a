/* tests/util/tu_memplan.c - see tu_memplan.h. */
#include "tests/util/tu_memplan.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/util/tu_weft.h"

static int op_is(const char *op, const char *name)
{
    return strcmp(op, name) == 0;
}

enum { VG_MAX_REPORT = 6 };

int tu_vg_shape_only(const char *op, size_t k)
{
    if (k == 1 && (op_is(op, "reshape_like") || op_is(op, "sum_like") ||
                   op_is(op, "broadcast_like") || op_is(op, "slice_grad")))
        return 1;
    return (k == 0 && op_is(op, "fill_like")) || (k == 2 && op_is(op, "gather_grad"));
}

int tu_vg_view_op(const char *op)
{
    return op_is(op, "reshape") || op_is(op, "reshape_like") || op_is(op, "sum_like") ||
           op_is(op, "broadcast_like");
}

/* 1 if op may write its output over its input k (ops/internal.h): WF_OPF_INPLACE ops
 * over any input (of the output's size: the caller checks), WF_OPF_INPLACE_LAST ops
 * (matmul_acc, accumulating into its addend) over their last input only. */
static int vg_inplace_op(const char *op, size_t k, size_t nin)
{
    if (op_is(op, "matmul_acc"))
        return k + 1 == nin;
    static const char *const names[] = {
        "add", "sub", "mul", "div", "neg", "exp", "log", "sqrt", "sigmoid", "tanh", "relu",
        "pow", "scale", "sigmoid_grad", "tanh_grad", "relu_grad", "broadcast_like",
        "sum_like", "reshape", "reshape_like", "mse_grad"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (op_is(op, names[i]))
            return 1;
    return 0;
}

static int vg_update_op(const char *op)
{
    return op_is(op, "assign") || op_is(op, "assign_sub") || op_is(op, "assign_add") ||
           op_is(op, "optim_update") || op_is(op, "optim_update_mm");
}

int tu_vg_hb(const tu_vg *V, size_t a, size_t b)
{
    return (V->anc[b * V->words + a / 64] >> (a % 64)) & 1;
}

uint32_t tu_vg_find(const tu_vg *V, size_t v)
{
    uint32_t r = (uint32_t)v;
    while (V->parent[r] != r)
        r = V->parent[r];
    return r;
}

void tu_vg_free(tu_vg *V)
{
    free(V->op);
    free(V->in);
    free(V->nin);
    free(V->task);
    free(V->owner);
    free(V->leaf);
    free(V->update);
    free(V->fetched);
    free(V->numel);
    free(V->dt);
    free(V->buf);
    free(V->parent);
    free(V->anc);
    V->op = NULL;
    V->in = NULL;
    V->nin = NULL;
    V->task = V->owner = V->leaf = V->update = V->fetched = NULL;
    V->numel = NULL;
    V->dt = NULL;
    V->buf = NULL;
    V->parent = NULL;
    V->anc = NULL;
}

/* Reads the graph, the plan's node set (what the fetches and targets need), the
 * happens-before closure and the buffers of the last run. The plan must have run. */
void tu_vg_load(tu_vg *V, weft_tgraph *g, const weft_plan *plan, size_t nf,
                    const weft_value *f, size_t nt, const weft_value *t)
{
    size_t n = weft_tgraph_node_count(g);
    V->n = n;
    V->words = (n + 63) / 64;
    V->op = calloc(n, sizeof *V->op);
    V->in = calloc(n, sizeof *V->in);
    V->nin = calloc(n, sizeof *V->nin);
    V->task = calloc(n, 1);
    V->owner = calloc(n, 1);
    V->leaf = calloc(n, 1);
    V->update = calloc(n, 1);
    V->fetched = calloc(n, 1);
    V->numel = calloc(n, sizeof *V->numel);
    V->dt = calloc(n, sizeof *V->dt);
    V->buf = calloc(n, sizeof *V->buf);
    V->parent = calloc(n, sizeof *V->parent);
    V->anc = calloc(n * V->words + 1, sizeof *V->anc);
    assert_true(V->op && V->in && V->nin && V->task && V->owner && V->leaf && V->update &&
                V->fetched && V->numel && V->dt && V->buf && V->parent && V->anc);
    unsigned char *need = calloc(n, 1);
    assert_non_null(need);
    for (size_t i = 0; i < nf; i++)
        need[f[i].id] = V->fetched[f[i].id] = 1;
    for (size_t i = 0; i < nt; i++)
        need[t[i].id] = 1;
    for (size_t v = n; v-- > 0;) {
        weft_value wv = {(uint32_t)v};
        V->op[v] = weft_tgraph_value_op(g, wv);
        assert_non_null(V->op[v]);
        OK(weft_tgraph_value_inputs(g, wv, &V->in[v], &V->nin[v]));
        size_t nd = 0;
        int64_t dims[WEFT_MAX_DIMS];
        OK(weft_tgraph_value_info(g, wv, &V->dt[v], &nd, dims));
        V->numel[v] = 1;
        for (size_t d = 0; d < nd; d++) {
            assert_true(dims[d] >= 0); /* the validator needs concrete shapes */
            V->numel[v] *= (size_t)dims[d];
        }
        V->leaf[v] = op_is(V->op[v], "placeholder") || op_is(V->op[v], "variable") ||
                     op_is(V->op[v], "constant");
        V->update[v] = vg_update_op(V->op[v]);
        if (need[v])
            for (size_t k = 0; k < V->nin[v]; k++)
                need[V->in[v][k].id] = 1;
        OK(weft_plan_value_buffer(plan, wv, &V->buf[v]));
        V->parent[v] = (uint32_t)v;
    }
    for (size_t v = 0; v < n; v++) {
        V->task[v] = need[v] && !V->leaf[v];
        V->owner[v] = V->task[v] && !V->update[v];
    }
    free(need);

    /* edges (from, to): data edges between op nodes; WAR / WAW edges of updates */
    size_t cap = 64, ne = 0;
    uint32_t(*e)[2] = malloc(cap * sizeof *e);
    assert_non_null(e);
#define VG_EDGE(a, b)                                                                      \
    do {                                                                                   \
        if (ne == cap) {                                                                   \
            cap *= 2;                                                                      \
            e = realloc(e, cap * sizeof *e);                                               \
            assert_non_null(e);                                                            \
        }                                                                                  \
        e[ne][0] = (uint32_t)(a);                                                          \
        e[ne][1] = (uint32_t)(b);                                                          \
        ne++;                                                                              \
    } while (0)
    for (size_t v = 0; v < n; v++) {
        if (!V->task[v])
            continue;
        for (size_t k = 0; k < V->nin[v]; k++)
            if (V->task[V->in[v][k].id])
                VG_EDGE(V->in[v][k].id, v);
    }
    for (size_t u = 0; u < n; u++) {
        if (!V->task[u] || !V->update[u])
            continue;
        uint32_t var = V->in[u][0].id;
        for (size_t r = 0; r < n; r++) {
            if (r == u || !V->task[r])
                continue;
            int reads = 0;
            for (size_t k = 0; k < V->nin[r]; k++)
                reads |= V->in[r][k].id == var;
            if (!reads)
                continue;
            if (V->update[r] && V->in[r][0].id == var) {
                if (r < u)
                    VG_EDGE(r, u); /* write after write, in graph order */
            } else {
                VG_EDGE(r, u); /* write after read */
            }
        }
    }
#undef VG_EDGE
    /* transitive closure in a topological order (Kahn): the update edges may point
     * backwards in id order */
    uint32_t *indeg = calloc(n + 1, sizeof *indeg), *off = calloc(n + 2, sizeof *off);
    uint32_t *succ = malloc((ne + 1) * sizeof *succ), *queue = malloc((n + 1) * sizeof *queue);
    assert_true(indeg && off && succ && queue);
    for (size_t i = 0; i < ne; i++) {
        indeg[e[i][1]]++;
        off[e[i][0] + 1]++;
    }
    for (size_t v = 0; v < n; v++)
        off[v + 1] += off[v];
    uint32_t *fill = calloc(n + 1, sizeof *fill);
    assert_non_null(fill);
    for (size_t i = 0; i < ne; i++)
        succ[off[e[i][0]] + fill[e[i][0]]++] = e[i][1];
    size_t head = 0, tail = 0;
    for (size_t v = 0; v < n; v++)
        if (V->task[v] && !indeg[v])
            queue[tail++] = (uint32_t)v;
    while (head < tail) {
        uint32_t a = queue[head++];
        for (uint32_t k = off[a]; k < off[a + 1]; k++) {
            uint32_t b = succ[k];
            uint64_t *ab = V->anc + (size_t)b * V->words, *aa = V->anc + (size_t)a * V->words;
            for (size_t w = 0; w < V->words; w++)
                ab[w] |= aa[w];
            ab[a / 64] |= (uint64_t)1 << (a % 64);
            if (--indeg[b] == 0)
                queue[tail++] = b;
        }
    }
    size_t ntasks = 0;
    for (size_t v = 0; v < n; v++)
        ntasks += V->task[v];
    assert_int_equal(tail, ntasks); /* no cycle: plan creation would have refused it */
    free(e);
    free(indeg);
    free(off);
    free(succ);
    free(queue);
    free(fill);
}

/* Classes of views (see the validator's comment), from the buffers in V->buf. */
static void vg_classes(tu_vg *V)
{
    for (size_t v = 0; v < V->n; v++)
        V->parent[v] = (uint32_t)v;
    for (size_t v = 0; v < V->n; v++) {
        if (!V->owner[v] || !tu_vg_view_op(V->op[v]) || !V->nin[v])
            continue;
        size_t x = V->in[v][0].id;
        if (V->owner[x] && V->buf[x] == V->buf[v] && V->buf[v] != SIZE_MAX &&
            V->numel[x] == V->numel[v] && V->dt[x] == V->dt[v])
            V->parent[v] = tu_vg_find(V, x);
    }
}

/* 1 if class a is dead before class b's root runs (the rule above); else 0 and `why`. */
static int vg_before(tu_vg *V, uint32_t a, uint32_t b, char *why, size_t cap)
{
    for (size_t v = a; v < V->n; v++) {
        if (!V->owner[v] || tu_vg_find(V, v) != a)
            continue;
        if (V->fetched[v]) {
            snprintf(why, cap, "value %zu (%s) is fetched, so its buffer is read after the run",
                     v, V->op[v]);
            return 0;
        }
        if (!tu_vg_hb(V, v, b)) {
            snprintf(why, cap, "its producer %zu (%s) does not happen-before %u (%s)", v,
                     V->op[v], b, V->op[b]);
            return 0;
        }
    }
    for (size_t r = a; r < V->n; r++) {
        if (!V->task[r])
            continue;
        for (size_t k = 0; k < V->nin[r]; k++) {
            size_t x = V->in[r][k].id;
            if (!V->owner[x] || tu_vg_find(V, x) != a || tu_vg_shape_only(V->op[r], k))
                continue;
            if (r == b) {
                if (vg_inplace_op(V->op[b], k, V->nin[b]) && V->numel[x] == V->numel[b] &&
                    V->dt[x] == V->dt[b])
                    continue;
                snprintf(why, cap, "%u (%s) reads it (input %zu = value %zu) and may not run in "
                         "place over it", b, V->op[b], k, x);
                return 0;
            }
            if (!tu_vg_hb(V, r, b)) {
                snprintf(why, cap, "its reader %zu (%s, input %zu = value %zu) does not "
                         "happen-before %u (%s)", r, V->op[r], k, x, b, V->op[b]);
                return 0;
            }
        }
    }
    return 1;
}

/* "(i, j, ...)": the inputs of v, for messages. */
static const char *vg_inputs(const tu_vg *V, size_t v, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (size_t k = 0; k < V->nin[v] && n < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%u", k ? ", " : "", V->in[v][k].id);
    if (n < cap)
        snprintf(buf + n, cap - n, ")");
    return buf;
}

/* Checks the buffers in V->buf; returns the number of violations (the first few are
 * printed with `what`). memory_plan 0: every owner must have a buffer of its own. */
size_t tu_vg_check(tu_vg *V, const char *what, int memory_plan, int quiet)
{
    size_t bad = 0;
    char why[512];
#define VG_BAD(...)                                                                        \
    do {                                                                                   \
        if (!quiet && bad < VG_MAX_REPORT) {                                               \
            print_error("%s: ", what);                                                     \
            print_error(__VA_ARGS__);                                                      \
        }                                                                                  \
        bad++;                                                                             \
    } while (0)
    size_t maxbuf = 0;
    for (size_t v = 0; v < V->n; v++) {
        if (V->owner[v] && V->buf[v] == SIZE_MAX)
            VG_BAD("value %zu (%s) is computed by the plan but has no buffer\n", v, V->op[v]);
        if (!V->owner[v] && V->buf[v] != SIZE_MAX)
            VG_BAD("value %zu (%s, %s) has buffer %zu, expected SIZE_MAX\n", v, V->op[v],
                   V->leaf[v] ? "a leaf" : V->update[v] ? "an update" : "not in the plan",
                   V->buf[v]);
        if (V->owner[v] && V->buf[v] != SIZE_MAX && V->buf[v] + 1 > maxbuf)
            maxbuf = V->buf[v] + 1;
    }
    if (bad)
        return bad;
    /* fetched values are read after the run: whatever shares their buffer was made
     * before them (a view of a fetched value would be a later value in its buffer) */
    for (size_t f = 0; f < V->n; f++) {
        if (!V->owner[f] || !V->fetched[f])
            continue;
        for (size_t z = 0; z < V->n; z++)
            if (z != f && V->owner[z] && V->buf[z] == V->buf[f] && !tu_vg_hb(V, z, f))
                VG_BAD("fetched value %zu (%s) shares buffer %zu with value %zu (%s), which "
                       "is not made before it\n", f, V->op[f], V->buf[f], z, V->op[z]);
    }
    if (!memory_plan) { /* every value in a buffer of its own: no reuse, no view */
        unsigned char *seen = calloc(maxbuf + 1, 1);
        assert_non_null(seen);
        for (size_t v = 0; v < V->n; v++) {
            if (!V->owner[v])
                continue;
            if (seen[V->buf[v]])
                VG_BAD("memory_plan = 0, yet value %zu (%s) shares buffer %zu\n", v, V->op[v],
                       V->buf[v]);
            seen[V->buf[v]] = 1;
        }
        free(seen);
    }
    vg_classes(V);
    /* the class roots of each buffer, in id order */
    size_t *first = malloc((maxbuf + 1) * sizeof *first), *next = malloc(V->n * sizeof *next);
    assert_true(first && next);
    for (size_t b = 0; b < maxbuf; b++)
        first[b] = SIZE_MAX;
    for (size_t v = V->n; v-- > 0;) {
        if (!V->owner[v])
            continue;
        if (tu_vg_find(V, v) != v) {
            V->views++;
            continue;
        }
        next[v] = first[V->buf[v]];
        first[V->buf[v]] = v;
    }
    for (size_t b = 0; b < maxbuf; b++) {
        size_t count = 0;
        for (size_t a = first[b]; a != SIZE_MAX; a = next[a])
            count++;
        if (count > 1)
            V->shared_values += count;
        for (size_t a = first[b]; a != SIZE_MAX; a = next[a])
            for (size_t c = next[a]; c != SIZE_MAX; c = next[c]) {
                V->pairs++;
                char why2[512];
                if (vg_before(V, (uint32_t)a, (uint32_t)c, why, sizeof why)) {
                    for (size_t k = 0; k < V->nin[c]; k++) /* an in-place read? */
                        if (V->owner[V->in[c][k].id] && tu_vg_find(V, V->in[c][k].id) == a &&
                            !tu_vg_shape_only(V->op[c], k)) {
                            V->inplace++;
                            break;
                        }
                    continue;
                }
                if (vg_before(V, (uint32_t)c, (uint32_t)a, why2, sizeof why2))
                    continue;
                char ia[96], ic[96];
                VG_BAD("buffer %zu is shared by value %zu = %s%s and value %zu = %s%s, which "
                       "may be alive at once: %zu is not dead before %zu: %s; nor the reverse: "
                       "%s\n",
                       b, a, V->op[a], vg_inputs(V, a, ia, sizeof ia), c, V->op[c],
                       vg_inputs(V, c, ic, sizeof ic), a, c, why, why2);
            }
    }
#undef VG_BAD
    free(first);
    free(next);
    return bad;
}
