/* scheduler/deque.c - Chase-Lev deque, C11 orders of Lê et al. (PPoPP 2013), figure 1.
 *
 * Invariants: top only grows (thieves and the owner's last-element race CAS it); bottom
 * is written by the owner only; the live jobs are slot[top .. bottom-1] (mod capacity).
 *
 * TSan: the paper's fences are kept for real builds. Under TSan (which ignores fences) the
 * accesses they order are made stronger instead: push publishes bottom with a release
 * store that steal reads with acquire (the paper's release fence + relaxed store), and
 * the seq_cst fences of pop/steal become seq_cst accesses of bottom and top. */
#include "scheduler/deque.h"

#include "scheduler/atomic.h"
#include "scheduler/internal.h"

#if WF_TSAN
#define BOTTOM_PUBLISH memory_order_release
#define BOTTOM_READ memory_order_seq_cst
#define TOP_READ_AFTER_FENCE memory_order_seq_cst
#else
#define BOTTOM_PUBLISH memory_order_relaxed
#define BOTTOM_READ memory_order_acquire
#define TOP_READ_AFTER_FENCE memory_order_relaxed
#endif

static wf_deque_buf *buf_new(unsigned log2cap) {
    size_t cap = (size_t)1 << log2cap;
    wf_deque_buf *b = wf_alloc(sizeof(*b) + cap * sizeof(b->slot[0]), WF_CACHE_LINE);
    if (!b) return NULL;
    b->mask = (int64_t)cap - 1;
    b->older = NULL;
    return b;
}

static void buf_free(wf_deque_buf *b) {
    wf_free(b, sizeof(*b) + (size_t)(b->mask + 1) * sizeof(b->slot[0]));
}

int wf_deque_init(wf_deque *q, unsigned log2cap) {
    wf_deque_buf *b = buf_new(log2cap);
    if (!b) return -1;
    atomic_init(&q->top, 0);
    atomic_init(&q->bottom, 0);
    atomic_init(&q->buf, b);
    return 0;
}

void wf_deque_destroy(wf_deque *q) {
    wf_deque_buf *b = wf_load_relaxed(&q->buf);
    while (b) {
        wf_deque_buf *older = b->older;
        buf_free(b);
        b = older;
    }
    atomic_store_explicit(&q->buf, NULL, memory_order_relaxed);
}

/* Owner only: doubles the buffer, copying the live range. The new buffer is published
 * with a release store that pairs with the acquire load of buf in steal. */
static wf_deque_buf *grow(wf_deque *q, wf_deque_buf *old, int64_t t, int64_t b) {
    unsigned log2 = (unsigned)__builtin_ctzll((unsigned long long)(old->mask + 1)) + 1;
    if (log2 > WF_DEQUE_MAX_LOG2) return NULL;
    wf_deque_buf *nb = buf_new(log2);
    if (!nb) return NULL;
    for (int64_t i = t; i < b; i++)
        wf_store_relaxed(&nb->slot[i & nb->mask], wf_load_relaxed(&old->slot[i & old->mask]));
    nb->older = old;
    wf_store_release(&q->buf, nb);
    return nb;
}

int wf_deque_push(wf_deque *q, wf_job *job) {
    int64_t b = wf_load_relaxed(&q->bottom);
    int64_t t = wf_load_acquire(&q->top); /* pairs with the thieves' CAS of top */
    wf_deque_buf *a = wf_load_relaxed(&q->buf);
    if (b - t > a->mask) {
        a = grow(q, a, t, b);
        if (!a) return -1;
    }
    wf_store_relaxed(&a->slot[b & a->mask], job);
#if !WF_TSAN
    /* Release fence: the job (and everything written before the push) is visible to a
     * thief that reads the new bottom (pairs with the acquire load of bottom in steal). */
    atomic_thread_fence(memory_order_release);
#endif
    atomic_store_explicit(&q->bottom, b + 1, BOTTOM_PUBLISH);
    return 0;
}

wf_job *wf_deque_pop(wf_deque *q) {
    int64_t b = wf_load_relaxed(&q->bottom) - 1;
    wf_deque_buf *a = wf_load_relaxed(&q->buf);
#if WF_TSAN
    wf_store_seq_cst(&q->bottom, b);
#else
    wf_store_relaxed(&q->bottom, b);
    /* seq_cst fence: the store of bottom is ordered before the load of top; pairs with the
     * fence in steal between its load of top and its load of bottom, so the owner and a
     * thief cannot both take the last job. */
    atomic_thread_fence(memory_order_seq_cst);
#endif
    int64_t t = atomic_load_explicit(&q->top, TOP_READ_AFTER_FENCE);
    if (t > b) { /* empty */
        wf_store_relaxed(&q->bottom, b + 1);
        return NULL;
    }
    wf_job *job = wf_load_relaxed(&a->slot[b & a->mask]);
    if (t == b) { /* last job: race the thieves for it */
        if (!wf_cas_seq_cst(&q->top, &t, t + 1)) job = NULL;
        wf_store_relaxed(&q->bottom, b + 1);
    }
    return job;
}

wf_job *wf_deque_steal(wf_deque *q) {
    int64_t t = wf_load_acquire(&q->top);
#if !WF_TSAN
    atomic_thread_fence(memory_order_seq_cst); /* pairs with the fence in pop */
#endif
    int64_t b = atomic_load_explicit(&q->bottom, BOTTOM_READ);
    if (t >= b) return NULL;
    /* acquire: pairs with the release store of buf in grow (the paper's consume) */
    wf_deque_buf *a = wf_load_acquire(&q->buf);
    wf_job *job = wf_load_relaxed(&a->slot[t & a->mask]);
    if (!wf_cas_seq_cst(&q->top, &t, t + 1)) return WF_STEAL_ABORT;
    return job;
}

int64_t wf_deque_size(const wf_deque *q) {
    int64_t b = wf_load_relaxed(&((wf_deque *)q)->bottom);
    int64_t t = wf_load_relaxed(&((wf_deque *)q)->top);
    return b > t ? b - t : 0;
}
