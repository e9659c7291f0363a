/* tests/util/tu_dag.c - see tu_dag.h. */
#include "tests/util/tu_dag.h"

#include <stdlib.h>
#include <string.h>

#include "tests/util/tu_common.h"

void tu_dag_free(tu_dag *d)
{
    free(d->from);
    free(d->to);
    free(d->pred_off);
    free(d->pred);
    free(d->order);
    memset(d, 0, sizeof *d);
}

/* Draws the edges between positions a < b of the permutation and fills the derived
 * fields. adj is an n*n byte matrix indexed [from * n + to] in ids. */
int tu_dag_random(tu_dag *d, uint64_t seed, size_t max_tasks)
{
    memset(d, 0, sizeof *d);
    tu_rng r;
    tu_rng_seed(&r, seed);
    size_t n = 1 + (size_t)tu_rng_below(&r, max_tasks);
    d->n = n;
    unsigned shape = (unsigned)tu_rng_below(&r, 5);
    double p;
    switch (shape) {
    case 0: p = 0.0; break;                                 /* independent tasks */
    case 1: p = 0.02 * tu_rng_unit(&r); break;              /* chain + a few extras */
    case 2: p = 3.0 / (double)n * tu_rng_unit(&r); break;   /* sparse */
    case 3: p = 0.5 * tu_rng_unit(&r); break;               /* dense */
    default: p = 0.0; break;                                /* layered */
    }
    size_t width = 1 + (size_t)tu_rng_below(&r, 16);
    unsigned char *adj = calloc(n * n, 1);
    d->order = malloc(n * sizeof *d->order);
    size_t cap = 64;
    d->from = malloc(cap * sizeof *d->from);
    d->to = malloc(cap * sizeof *d->to);
    if (!adj || !d->order || !d->from || !d->to)
        goto oom;
    for (size_t i = 0; i < n; i++)
        d->order[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)tu_rng_below(&r, i);
        uint32_t t = d->order[i - 1];
        d->order[i - 1] = d->order[j];
        d->order[j] = t;
    }
    for (size_t b = 1; b < n; b++) {
        for (size_t a = 0; a < b; a++) {
            int e;
            if (shape == 1)
                e = (a + 1 == b) || tu_rng_unit(&r) < p;
            else if (shape == 4) /* layer a/width precedes the next layer, at random */
                e = a / width + 1 == b / width && tu_rng_below(&r, 3) != 0;
            else
                e = p > 0 && tu_rng_unit(&r) < p;
            if (!e)
                continue;
            uint32_t u = d->order[a], v = d->order[b];
            int copies = tu_rng_below(&r, 16) == 0 ? 2 : 1;
            for (int c = 0; c < copies; c++) {
                if (d->nedges == cap) {
                    cap *= 2;
                    uint32_t *nf = realloc(d->from, cap * sizeof *nf);
                    if (nf)
                        d->from = nf;
                    uint32_t *nt = realloc(d->to, cap * sizeof *nt);
                    if (nt)
                        d->to = nt;
                    if (!nf || !nt)
                        goto oom;
                }
                d->from[d->nedges] = u;
                d->to[d->nedges] = v;
                d->nedges++;
            }
            if (!adj[(size_t)u * n + v])
                d->nunique++;
            adj[(size_t)u * n + v] = 1;
        }
    }
    d->pred_off = calloc(n + 1, sizeof *d->pred_off);
    d->pred = malloc((d->nunique + 1) * sizeof *d->pred);
    size_t *depth = calloc(n, sizeof *depth);
    if (!d->pred_off || !d->pred || !depth) {
        free(depth);
        goto oom;
    }
    size_t k = 0;
    for (size_t v = 0; v < n; v++) {
        d->pred_off[v] = (uint32_t)k;
        for (size_t u = 0; u < n; u++)
            if (adj[u * n + v])
                d->pred[k++] = (uint32_t)u;
        if (k == d->pred_off[v])
            d->sources++;
    }
    d->pred_off[n] = (uint32_t)k;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = d->order[i];
        size_t best = 0;
        for (uint32_t j = d->pred_off[v]; j < d->pred_off[v + 1]; j++)
            if (depth[d->pred[j]] > best)
                best = depth[d->pred[j]];
        depth[v] = best + 1;
        if (depth[v] > d->levels)
            d->levels = depth[v];
    }
    free(depth);
    free(adj);
    return 0;
oom:
    free(adj);
    tu_dag_free(d);
    return -1;
}

uint64_t tu_dag_value(const tu_dag *d, uint32_t v, const uint64_t *values)
{
    uint64_t h = tu_mix(0x1234567ull + v);
    for (uint32_t j = d->pred_off[v]; j < d->pred_off[v + 1]; j++)
        h = tu_mix(h ^ (values[d->pred[j]] + j));
    return h;
}

void tu_dag_eval(const tu_dag *d, uint64_t *values)
{
    for (size_t i = 0; i < d->n; i++)
        values[d->order[i]] = tu_dag_value(d, d->order[i], values);
}
