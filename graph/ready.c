/* graph/ready.c - the shared ready queue of a global-priority run (run.c).
 *
 * A binary max-heap of node ids ordered by priority (cost-weighted longest path to a
 * sink), ties to the lower id (earlier in program order), behind a test-and-set spin
 * lock. Its capacity is the graph's task count: a task enters it at most once per run.
 * The lock is held for O(log n) steps only, never while a task runs.
 *
 * Memory orders: the lock is taken with an acquire exchange and released with a release
 * store, so whatever a thread wrote before it inserted a node (the node became ready:
 * its predecessors' effects, acquired by the acq_rel decrement of pending) is visible to
 * the thread that pops it. */
#include "graph/internal.h"
#include "scheduler/atomic.h"

void wf_ready_lock(wf_ready *r) {
    while (atomic_exchange_explicit(&r->lock, 1, memory_order_acquire)) /* pairs: unlock */
        while (wf_load_relaxed(&r->lock)) wf_cpu_relax();
}

void wf_ready_unlock(wf_ready *r) { wf_store_release(&r->lock, 0); /* pairs: lock */ }

/* a goes before b */
static int before(const wf_gnode *nodes, uint32_t a, uint32_t b) {
    return nodes[a].prio > nodes[b].prio || (nodes[a].prio == nodes[b].prio && a < b);
}

void wf_ready_insert(wf_ready *r, const wf_gnode *nodes, uint32_t id) {
    size_t i = r->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(nodes, id, r->ids[parent])) break;
        r->ids[i] = r->ids[parent];
        i = parent;
    }
    r->ids[i] = id;
}

uint32_t wf_ready_pop(wf_ready *r, const wf_gnode *nodes) {
    if (r->n == 0) return UINT32_MAX;
    uint32_t top = r->ids[0], last = r->ids[--r->n];
    size_t i = 0, n = r->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(nodes, r->ids[c + 1], r->ids[c])) c++;
        if (!before(nodes, r->ids[c], last)) break;
        r->ids[i] = r->ids[c];
        i = c;
    }
    if (n > 0) r->ids[i] = last;
    return top;
}
