/* tests/util/tu_randgraph.h - random training graphs for tests/engine/test_memplan.c:
 * forward ops of every family, gradients, variable updates by assign_sub / assign /
 * weft_optim_minimize, fetched intermediates, with feeds ready to run.
 *
 * Built from a seed, deterministically (so that each run configuration builds its own
 * copy with fresh variables). Small seeds use dims 1..7; every 16th seed uses dims of a
 * few hundred, so that kernels split into several chunks. Values stay bounded (tanh
 * after products, safe denominators), though the comparisons are bitwise anyway. Ops are
 * tried freely: one the shape rules refuse adds nothing and is skipped. Every reader of
 * a variable is made before the variable's updates, so that graph order agrees with the
 * update edges (the late-reader case is tested on its own).
 *
 * Every check fails the current cmocka test like the assert_* it stands for.
 *
 * Thread safety: test main thread only (cmocka's assertions are not thread-safe).
 */
#ifndef WEFT_TESTS_TU_RANDGRAPH_H
#define WEFT_TESTS_TU_RANDGRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "tests/util/tu_common.h"
#include "weft.h"

enum { TU_RG_POOL = 256, TU_RG_VARS = 10, TU_RG_FETCH = 40, TU_RG_TARGET = 2 * TU_RG_VARS,
       TU_RG_PH = 4 };

/* A value of the graph as the generator tracks it. */
typedef struct tu_rg_val {
    weft_value v;
    int ndim;
    int64_t d[WEFT_MAX_DIMS];
    size_t numel;
    int leaf, uses;
} tu_rg_val;

/* A random graph with its feeds, fetches (the loss among them) and targets. */
typedef struct tu_rg {
    weft_tgraph *g;
    weft_optim *optim;
    tu_rng rng;
    weft_dtype dt;
    int large;
    size_t max_numel;
    tu_rg_val pool[TU_RG_POOL];
    size_t np;
    weft_value ph[TU_RG_PH];
    weft_tensor *feed_t[TU_RG_PH];
    weft_feed feeds[TU_RG_PH];
    size_t nph;
    weft_value var[TU_RG_VARS];
    size_t nvar;
    weft_value fetch[TU_RG_FETCH];
    size_t nfetch;
    weft_value target[TU_RG_TARGET];
    size_t ntarget;
    weft_value loss;
    int mode;
} tu_rg;

/* Builds graph `seed` into r (overwritten): the graph, its variables, placeholders with
 * their feeds (r->feeds, r->nph of them), fetches and targets. */
void tu_rg_build(tu_rg *r, uint64_t seed);
/* Destroys everything r owns (graph, feeds, optimiser) and zeroes it. */
void tu_rg_free(tu_rg *r);
/* A plan of r's graph on pool fetching r->fetch, with r->target as targets. The caller
 * destroys it. */
weft_plan *tu_rg_plan(tu_rg *r, weft_pool *pool, const weft_plan_options *po);

#endif
