/* bench/shapes.c - graph generation, fingerprint and depth of SHAPES.md (see shapes.h).
 *
 * Every generator writes preds(v) for v = 0, 1, ... in order into a CSR whose arrays are
 * sized exactly (the edge count of each shape is known in closed form, except random,
 * whose array is sized for K draws per task and then trimmed).
 */
#include "bench/shapes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const shape_names[BENCH_SHAPE_COUNT] = {
    "chain", "fanout", "tree", "wavefront", "random", "cholesky"};
static const char *const grain_names[BENCH_GRAIN_COUNT] = {"empty", "1us", "10us"};
static const uint64_t grain_w[BENCH_GRAIN_COUNT] = {0, 850, 8500};

/* SHAPES.md section 4, indexed [grain][shape] for the five graph shapes. */
static const uint64_t full_sizes[BENCH_GRAIN_COUNT][BENCH_SHAPE_CHOLESKY] = {
    {1000000, 1000000, 20, 1024, 1000000},
    {250000, 250000, 18, 512, 250000},
    {50000, 50000, 16, 224, 50000},
};

#define CHOLESKY_FULL_ORDER 4096u
#define CHOLESKY_SMALL_ORDER 2048u

const char *bench_shape_name(bench_shape shape)
{
    return (unsigned)shape < BENCH_SHAPE_COUNT ? shape_names[shape] : NULL;
}

int bench_shape_parse(const char *text, bench_shape *out)
{
    for (unsigned i = 0; i < BENCH_SHAPE_COUNT; i++) {
        if (strcmp(text, shape_names[i]) == 0) {
            *out = (bench_shape)i;
            return 0;
        }
    }
    return -1;
}

const char *bench_grain_name(bench_grain grain)
{
    return (unsigned)grain < BENCH_GRAIN_COUNT ? grain_names[grain] : NULL;
}

int bench_grain_parse(const char *text, bench_grain *out)
{
    for (unsigned i = 0; i < BENCH_GRAIN_COUNT; i++) {
        if (strcmp(text, grain_names[i]) == 0) {
            *out = (bench_grain)i;
            return 0;
        }
    }
    return -1;
}

uint64_t bench_grain_iterations(bench_grain grain)
{
    return (unsigned)grain < BENCH_GRAIN_COUNT ? grain_w[grain] : 0;
}

uint64_t bench_shape_size(bench_shape shape, bench_grain grain, int small)
{
    if (shape == BENCH_SHAPE_CHOLESKY)
        return small ? CHOLESKY_SMALL_ORDER : CHOLESKY_FULL_ORDER;
    if ((unsigned)shape >= BENCH_SHAPE_CHOLESKY || (unsigned)grain >= BENCH_GRAIN_COUNT)
        return 0;
    uint64_t full = full_sizes[grain][shape];
    if (!small)
        return full;
    switch (shape) {
    case BENCH_SHAPE_TREE:
        return full - 3;
    case BENCH_SHAPE_WAVEFRONT:
        return full / 3;
    default:
        return full / 10;
    }
}

size_t bench_shape_tasks(bench_shape shape, uint64_t size, const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = "the size must be at least 1";
    if (size == 0)
        return 0;
    uint64_t n = 0;
    switch (shape) {
    case BENCH_SHAPE_CHAIN:
    case BENCH_SHAPE_RANDOM:
        n = size;
        break;
    case BENCH_SHAPE_FANOUT:
        n = size <= BENCH_MAX_TASKS ? size + 2 : size;
        break;
    case BENCH_SHAPE_TREE:
        if (size > 31) {
            *why = "tree depth D must be between 1 and 31";
            return 0;
        }
        n = (UINT64_C(1) << size) - 1;
        break;
    case BENCH_SHAPE_WAVEFRONT:
        n = size <= UINT32_MAX ? size * size : UINT64_MAX;
        break;
    default:
        *why = "not a graph shape";
        return 0;
    }
    if (n > BENCH_MAX_TASKS) {
        *why = "the graph would have more tasks than weft task ids allow (2^32 - 16)";
        return 0;
    }
    return (size_t)n;
}

uint64_t bench_splitmix_next(bench_splitmix *rng)
{
    rng->state += 0x9E3779B97F4A7C15ull;
    uint64_t z = rng->state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Allocates the CSR arrays for n tasks and at most m_cap edges. */
static int graph_alloc(bench_graph *g, size_t n, size_t m_cap)
{
    memset(g, 0, sizeof *g);
    g->n = n;
    g->off = malloc((n + 1) * sizeof *g->off);
    g->preds = malloc((m_cap ? m_cap : 1) * sizeof *g->preds);
    if (g->off == NULL || g->preds == NULL) {
        fprintf(stderr, "weft-bench: out of memory for a graph of %zu tasks and %zu edges\n",
                n, m_cap);
        bench_graph_free(g);
        return -1;
    }
    g->off[0] = 0;
    return 0;
}

/* Fills m, max_preds and depth from the CSR (ids in increasing order are a topological
 * order since every predecessor is smaller than its task). */
static int graph_finish(bench_graph *g)
{
    uint32_t *depth = malloc((g->n ? g->n : 1) * sizeof *depth);
    if (depth == NULL) {
        fprintf(stderr, "weft-bench: out of memory computing the depth of %zu tasks\n", g->n);
        return -1;
    }
    g->m = (size_t)g->off[g->n];
    g->max_preds = 0;
    g->depth = 0;
    for (size_t v = 0; v < g->n; v++) {
        uint32_t d = 0;
        size_t deg = (size_t)(g->off[v + 1] - g->off[v]);
        for (uint64_t e = g->off[v]; e < g->off[v + 1]; e++) {
            if (depth[g->preds[e]] > d)
                d = depth[g->preds[e]];
        }
        depth[v] = d + 1;
        if (depth[v] > g->depth)
            g->depth = depth[v];
        if (deg > g->max_preds)
            g->max_preds = deg;
    }
    free(depth);
    return 0;
}

static void make_chain(bench_graph *g)
{
    size_t e = 0;
    for (size_t v = 0; v < g->n; v++) {
        if (v > 0)
            g->preds[e++] = (uint32_t)(v - 1);
        g->off[v + 1] = e;
    }
}

static void make_fanout(bench_graph *g)
{
    size_t e = 0, sink = g->n - 1;
    g->off[1] = 0;
    for (size_t v = 1; v < sink; v++) {
        g->preds[e++] = 0;
        g->off[v + 1] = e;
    }
    for (size_t p = 1; p < sink; p++)
        g->preds[e++] = (uint32_t)p;
    g->off[sink + 1] = e;
}

static void make_tree(bench_graph *g)
{
    size_t e = 0;
    for (size_t v = 0; v < g->n; v++) {
        if (v > 0)
            g->preds[e++] = (uint32_t)((v - 1) / 2);
        g->off[v + 1] = e;
    }
}

static void make_wavefront(bench_graph *g, size_t mside)
{
    size_t e = 0;
    for (size_t v = 0; v < g->n; v++) {
        size_t i = v / mside, j = v % mside;
        if (i > 0)
            g->preds[e++] = (uint32_t)(v - mside);
        if (j > 0)
            g->preds[e++] = (uint32_t)(v - 1);
        g->off[v + 1] = e;
    }
}

int bench_graph_make_random(uint64_t n, uint64_t k, uint64_t s, uint64_t seed,
                            bench_graph *out)
{
    if (n == 0 || n > BENCH_MAX_TASKS || k == 0 || k > 1024 || s == 0) {
        fprintf(stderr,
                "weft-bench: random(N=%llu, K=%llu, S=%llu) needs 1 <= N <= %u, "
                "1 <= K <= 1024 and S >= 1\n",
                (unsigned long long)n, (unsigned long long)k, (unsigned long long)s,
                BENCH_MAX_TASKS);
        return -1;
    }
    if (graph_alloc(out, (size_t)n, (size_t)((n - 1) * k)) != 0)
        return -1;
    bench_splitmix rng = {seed};
    uint32_t draws[1024];
    size_t e = 0;
    out->off[1] = 0;
    for (uint64_t i = 1; i < n; i++) {
        uint64_t cnt = 1 + bench_splitmix_next(&rng) % k;
        uint64_t w = i < s ? i : s;
        /* Draw in order, then insertion-sort the (at most K) draws and drop duplicates. */
        for (uint64_t j = 0; j < cnt; j++) {
            uint32_t d = (uint32_t)(i - 1 - bench_splitmix_next(&rng) % w);
            uint64_t pos = j;
            while (pos > 0 && draws[pos - 1] > d) {
                draws[pos] = draws[pos - 1];
                pos--;
            }
            draws[pos] = d;
        }
        for (uint64_t j = 0; j < cnt; j++) {
            if (j == 0 || draws[j] != draws[j - 1])
                out->preds[e++] = draws[j];
        }
        out->off[i + 1] = e;
    }
    if (e > 0) {
        uint32_t *trimmed = realloc(out->preds, e * sizeof *trimmed);
        if (trimmed != NULL)
            out->preds = trimmed;
    }
    if (graph_finish(out) != 0) {
        bench_graph_free(out);
        return -1;
    }
    return 0;
}

int bench_graph_make(bench_shape shape, uint64_t size, bench_graph *out)
{
    memset(out, 0, sizeof *out);
    const char *why = NULL;
    size_t n = bench_shape_tasks(shape, size, &why);
    if (n == 0) {
        fprintf(stderr, "weft-bench: invalid size %llu for shape %s: %s\n",
                (unsigned long long)size,
                bench_shape_name(shape) ? bench_shape_name(shape) : "?", why);
        return -1;
    }
    if (shape == BENCH_SHAPE_RANDOM)
        return bench_graph_make_random(size, BENCH_RANDOM_K, BENCH_RANDOM_S,
                                       BENCH_RANDOM_SEED, out);
    size_t m = 0;
    switch (shape) {
    case BENCH_SHAPE_CHAIN:
    case BENCH_SHAPE_TREE:
        m = n - 1;
        break;
    case BENCH_SHAPE_FANOUT:
        m = 2 * (n - 2);
        break;
    default: /* wavefront */
        m = 2 * (size_t)size * ((size_t)size - 1);
        break;
    }
    if (graph_alloc(out, n, m) != 0)
        return -1;
    switch (shape) {
    case BENCH_SHAPE_CHAIN:
        make_chain(out);
        break;
    case BENCH_SHAPE_FANOUT:
        make_fanout(out);
        break;
    case BENCH_SHAPE_TREE:
        make_tree(out);
        break;
    default:
        make_wavefront(out, (size_t)size);
        break;
    }
    if (graph_finish(out) != 0) {
        bench_graph_free(out);
        return -1;
    }
    return 0;
}

void bench_graph_free(bench_graph *graph)
{
    free(graph->off);
    free(graph->preds);
    memset(graph, 0, sizeof *graph);
}

uint64_t bench_graph_fingerprint(const bench_graph *graph)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t v = 0; v < graph->n; v++) {
        for (uint64_t e = graph->off[v]; e < graph->off[v + 1]; e++) {
            h = (h ^ graph->preds[e]) * 0x100000001b3ull;
            h = (h ^ (uint64_t)v) * 0x100000001b3ull;
        }
    }
    return h;
}

uint64_t bench_expected_sum(size_t n, uint64_t w)
{
    uint64_t sum = 0;
    for (size_t v = 0; v < n; v++)
        sum += bench_kernel(v, w);
    return sum;
}
