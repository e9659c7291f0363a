/* bench/shapes.h - the benchmark graphs, task kernel and grains of shared/bench/SHAPES.md.
 *
 * This module is the reference implementation of SHAPES.md sections 1-4 for weft: it
 * builds the predecessor lists of the five shapes (chain, fanout, tree, wavefront,
 * random) in CSR form, computes the graph fingerprint and depth, and defines the work
 * kernel and the grains. It has no main() and no weft dependency, so the benchmark
 * program and the test suite share it (tests/bench/test_shapes.c checks every
 * fingerprint of the spec table against it).
 *
 * Thread safety: graphs are immutable after bench_graph_make; any number of threads may
 * read one at once. Nothing here has global state.
 */
#ifndef WEFT_BENCH_SHAPES_H
#define WEFT_BENCH_SHAPES_H

#include <stddef.h>
#include <stdint.h>

typedef enum bench_shape {
    BENCH_SHAPE_CHAIN,
    BENCH_SHAPE_FANOUT,
    BENCH_SHAPE_TREE,
    BENCH_SHAPE_WAVEFRONT,
    BENCH_SHAPE_RANDOM,
    BENCH_SHAPE_CHOLESKY, /* not a SHAPES.md graph: the tiled Cholesky of examples/ */
    BENCH_SHAPE_COUNT
} bench_shape;

typedef enum bench_grain {
    BENCH_GRAIN_EMPTY, /* W = 0 */
    BENCH_GRAIN_1US,   /* W = 850 */
    BENCH_GRAIN_10US,  /* W = 8500 */
    BENCH_GRAIN_COUNT
} bench_grain;

/* Parameters of random(N, K, S, seed) other than N (SHAPES.md defaults). */
#define BENCH_RANDOM_K 4u
#define BENCH_RANDOM_S 64u
#define BENCH_RANDOM_SEED 42u

/* Largest task count a benchmark graph may have: weft task ids are 32-bit and
 * WEFT_TASK_NONE (0xffffffff) is reserved; the CSR uses 32-bit predecessor ids. */
#define BENCH_MAX_TASKS 0xfffffff0u

/* A graph as SHAPES.md defines it: preds(v) = preds[off[v] .. off[v+1]), ascending and
 * without duplicates, every predecessor < v. Owned by the caller of bench_graph_make,
 * released with bench_graph_free. */
typedef struct bench_graph {
    size_t n;          /* tasks */
    size_t m;          /* edges */
    size_t depth;      /* tasks on a longest path */
    size_t max_preds;  /* largest in-degree */
    uint64_t *off;     /* n + 1 offsets */
    uint32_t *preds;   /* m predecessor ids */
} bench_graph;

/* "chain", ... "cholesky"; NULL for an out-of-range value. */
const char *bench_shape_name(bench_shape shape);
/* Parses a shape name; 0 on success, -1 if unknown. */
int bench_shape_parse(const char *text, bench_shape *out);
const char *bench_grain_name(bench_grain grain);
int bench_grain_parse(const char *text, bench_grain *out);
/* Kernel iterations W of a grain (0, 850, 8500). */
uint64_t bench_grain_iterations(bench_grain grain);

/* The size parameter of SHAPES.md section 4 for (shape, grain): N for chain, fanout and
 * random, D for tree, M for wavefront. For cholesky: the matrix order 4096 (grain is
 * ignored). `small` gives the reduced size used by `make demo` and quick runs (about 10x
 * less work: N/10, D-3, M/3; cholesky 2048). */
uint64_t bench_shape_size(bench_shape shape, bench_grain grain, int small);
/* Number of tasks of a shape for a size parameter, or 0 if the size is invalid or the
 * graph would exceed BENCH_MAX_TASKS (then *why, if not NULL, gets a static sentence).
 * Not for cholesky. */
size_t bench_shape_tasks(bench_shape shape, uint64_t size, const char **why);

/* Builds the graph of a shape (not cholesky) with the given size parameter; random uses
 * K = 4, S = 64, seed = 42. Computes m, depth and max_preds. Returns 0, or -1 with a
 * message on stderr (invalid size, out of memory). */
int bench_graph_make(bench_shape shape, uint64_t size, bench_graph *out);
/* random(N, K, S, seed) with explicit parameters (K >= 1, S >= 1). */
int bench_graph_make_random(uint64_t n, uint64_t k, uint64_t s, uint64_t seed,
                            bench_graph *out);
/* Frees the arrays and zeroes the struct; a zeroed struct is a no-op. */
void bench_graph_free(bench_graph *graph);

/* The FNV-style fingerprint of SHAPES.md over all (p, v) edges in order. */
uint64_t bench_graph_fingerprint(const bench_graph *graph);

/* The splitmix64 generator of SHAPES.md (state starts at the seed). */
typedef struct bench_splitmix {
    uint64_t state;
} bench_splitmix;

uint64_t bench_splitmix_next(bench_splitmix *rng);

/* The work kernel of SHAPES.md section 3: W dependent multiply-adds, x kept opaque to the
 * optimiser in every iteration so the loop can be neither shortened nor vectorised. */
static inline uint64_t bench_kernel(uint64_t v, uint64_t w)
{
    uint64_t x = v ^ 0x9E3779B97F4A7C15ull;
    for (uint64_t i = 0; i < w; i++) {
        x = x * 0xD1342543DE82EF95ull + 1u;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

/* sum over v < n of kernel(v, w), the expected accumulator sum of a run. */
uint64_t bench_expected_sum(size_t n, uint64_t w);

#endif
