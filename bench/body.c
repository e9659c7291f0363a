/* bench/body.c - task bodies, accumulators and the verification run (see body.h). */
#include "bench/body.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One accumulator per thread, alone on its cache line so that two threads never write
 * the same line. */
typedef struct accum_slot {
    _Alignas(64) uint64_t count;
    uint64_t sum;
} accum_slot;

static uint64_t body_w;
static accum_slot slots[BENCH_ACCUM_SLOTS];
/* Epoch of the current run; starts at 1 so that a thread's zero-initialised tl_epoch is
 * always stale. Written only by bench_accum_reset (no body running). */
static uint64_t accum_epoch = 1;
/* Slots claimed in this run. Relaxed is enough: the claim only needs a unique index; the
 * controlling thread reads it after the run, ordered by the engine's completion. */
static atomic_uint accum_next;
static atomic_int accum_overflow;

static _Thread_local uint64_t tl_epoch;
static _Thread_local accum_slot *tl_slot;
/* Where a thread accumulates if every slot is taken; never summed, so such a run fails
 * its check (accum_overflow says why). */
static _Thread_local accum_slot tl_spill;

/* The verification state of bench_verify_begin. */
static atomic_uint_fast64_t verify_clock;
static atomic_uint *verify_execs;
static atomic_uint_fast64_t *verify_start;
static atomic_uint_fast64_t *verify_end;
static size_t verify_n;

void bench_body_setup(uint64_t w) { body_w = w; }

uint64_t bench_body_iterations(void) { return body_w; }

/* First body of this thread in this run: claim a fresh slot. */
static accum_slot *accum_claim(void)
{
    unsigned i = atomic_fetch_add_explicit(&accum_next, 1u, memory_order_relaxed);
    tl_epoch = accum_epoch;
    if (i >= BENCH_ACCUM_SLOTS) {
        atomic_store_explicit(&accum_overflow, 1, memory_order_relaxed);
        tl_slot = &tl_spill;
    } else {
        tl_slot = &slots[i];
    }
    return tl_slot;
}

static inline accum_slot *accum_self(void)
{
    return tl_epoch == accum_epoch ? tl_slot : accum_claim();
}

void bench_body(uint64_t v)
{
    uint64_t r = bench_kernel(v, body_w);
    accum_slot *s = accum_self();
    s->count += 1;
    s->sum += r;
}

void bench_body_verify(uint64_t v)
{
    /* All RMWs on verify_clock are totally ordered (seq_cst), so a dependency violation
     * shows up as start[v] < end[p]. */
    uint64_t t0 = atomic_fetch_add(&verify_clock, 1);
    atomic_store_explicit(&verify_start[v], t0, memory_order_relaxed);
    uint64_t r = bench_kernel(v, body_w);
    atomic_fetch_add_explicit(&verify_execs[v], 1u, memory_order_relaxed);
    accum_slot *s = accum_self();
    s->count += 1;
    s->sum += r;
    uint64_t t1 = atomic_fetch_add(&verify_clock, 1);
    atomic_store_explicit(&verify_end[v], t1, memory_order_relaxed);
}

void bench_accum_reset(void)
{
    unsigned used = atomic_load_explicit(&accum_next, memory_order_relaxed);
    if (used > BENCH_ACCUM_SLOTS)
        used = BENCH_ACCUM_SLOTS;
    memset(slots, 0, used * sizeof slots[0]);
    atomic_store_explicit(&accum_next, 0u, memory_order_relaxed);
    atomic_store_explicit(&accum_overflow, 0, memory_order_relaxed);
    accum_epoch++;
}

int bench_accum_total_get(bench_accum_total *out)
{
    unsigned used = atomic_load_explicit(&accum_next, memory_order_relaxed);
    out->threads = used;
    if (used > BENCH_ACCUM_SLOTS)
        used = BENCH_ACCUM_SLOTS;
    out->count = 0;
    out->sum = 0;
    for (unsigned i = 0; i < used; i++) {
        out->count += slots[i].count;
        out->sum += slots[i].sum;
    }
    return atomic_load_explicit(&accum_overflow, memory_order_relaxed) ? 0 : 1;
}

int bench_accum_check(size_t n, uint64_t expected, const char *what)
{
    bench_accum_total t;
    if (!bench_accum_total_get(&t)) {
        fprintf(stderr,
                "weft-bench: %s: invalid run: %u threads ran task bodies, more than the %u "
                "accumulator slots\n",
                what, t.threads, BENCH_ACCUM_SLOTS);
        return -1;
    }
    if (t.count != n || t.sum != expected) {
        fprintf(stderr,
                "weft-bench: %s: invalid run: %" PRIu64 " task bodies ran (expected %zu), "
                "checksum %016" PRIx64 " (expected %016" PRIx64 ")\n",
                what, t.count, n, t.sum, expected);
        return -1;
    }
    return 0;
}

int bench_verify_begin(size_t n)
{
    bench_verify_end();
    size_t cnt = n ? n : 1;
    verify_execs = calloc(cnt, sizeof *verify_execs);
    verify_start = calloc(cnt, sizeof *verify_start);
    verify_end = calloc(cnt, sizeof *verify_end);
    if (verify_execs == NULL || verify_start == NULL || verify_end == NULL) {
        bench_verify_end();
        fprintf(stderr, "weft-bench: out of memory for the verification state of %zu tasks\n",
                n);
        return -1;
    }
    verify_n = n;
    atomic_store(&verify_clock, 0);
    return 0;
}

int bench_verify_check(const bench_graph *graph, int check_order, const char *what)
{
    if (verify_execs == NULL || graph->n != verify_n) {
        fprintf(stderr, "weft-bench: %s: verification state missing or of the wrong size\n",
                what);
        return -1;
    }
    size_t bad_execs = 0, bad_edges = 0;
    for (size_t v = 0; v < graph->n; v++) {
        unsigned e = atomic_load_explicit(&verify_execs[v], memory_order_relaxed);
        if (e != 1) {
            if (bad_execs++ == 0)
                fprintf(stderr, "weft-bench: %s: verification failed: task %zu ran %u times\n",
                        what, v, e);
            continue;
        }
        if (!check_order)
            continue;
        uint64_t sv = atomic_load_explicit(&verify_start[v], memory_order_relaxed);
        for (uint64_t i = graph->off[v]; i < graph->off[v + 1]; i++) {
            uint32_t p = graph->preds[i];
            uint64_t ep = atomic_load_explicit(&verify_end[p], memory_order_relaxed);
            if (!(ep < sv)) {
                if (bad_edges++ == 0)
                    fprintf(stderr,
                            "weft-bench: %s: verification failed: edge %u -> %zu violated "
                            "(end[%u] = %" PRIu64 " >= start[%zu] = %" PRIu64 ")\n",
                            what, p, v, p, ep, v, sv);
            }
        }
    }
    if (bad_execs || bad_edges) {
        fprintf(stderr, "weft-bench: %s: %zu tasks not run exactly once, %zu edges violated\n",
                what, bad_execs, bad_edges);
        return -1;
    }
    return 0;
}

void bench_verify_end(void)
{
    free(verify_execs);
    free(verify_start);
    free(verify_end);
    verify_execs = NULL;
    verify_start = NULL;
    verify_end = NULL;
    verify_n = 0;
}
