/* scheduler/pool.c - the work-stealing pool: workers, finding work, parking, slot 0 for
 * outside callers.
 *
 * A worker looks for work in this order: its own deque (LIFO, cache-warm), its affinity
 * inbox, a random victim of its own NUMA group, a random victim of the other groups
 * (nearest first), the shared overflow queue, and last the inboxes of slots that are busy
 * running a task (so a job with an affinity hint never waits for a busy slot while others
 * idle; an idle slot collects its own inbox). When a full
 * round finds nothing it spins for spin_us, then parks on the pool's eventcount. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/atomic.h"
#include "scheduler/internal.h"

static _Thread_local wf_worker *tl_worker;
/* Slot a thread had before it entered another pool's slot 0 (restored by wf_leave). */
static _Thread_local wf_worker *tl_saved[8];
static _Thread_local unsigned tl_depth;

/* The slot this thread holds in `pool`: its current one, or one it holds further down
 * its stack of entered pools (a task of pool P that called into pool Q and, from there,
 * back into P keeps using its P slot: re-entering P's slot 0 would deadlock). */
wf_worker *wf_current_worker(const weft_pool *pool) {
    wf_worker *w = tl_worker;
    if (w && w->pool == pool) return w;
    for (unsigned i = tl_depth; i > 0; i--)
        if (tl_saved[i - 1] && tl_saved[i - 1]->pool == pool) return tl_saved[i - 1];
    return NULL;
}

int weft_pool_current_worker(const weft_pool *pool) {
    wf_worker *w = pool ? wf_current_worker(pool) : NULL;
    return w ? (int)w->index : -1;
}

static uint64_t rng_next(wf_worker *w) { /* xorshift64 */
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return w->rng = x;
}

/* ---- queues other than the deque ----------------------------------------------------- */

static void overflow_push(weft_pool *pool, wf_job *job) {
    job->next = NULL;
    pthread_mutex_lock(&pool->overflow_lock);
    if (pool->overflow_tail)
        pool->overflow_tail->next = job;
    else
        pool->overflow_head = job;
    pool->overflow_tail = job;
    /* seq_cst: read by idle workers after their eventcount fence (eventcount.c) */
    wf_add_seq_cst(&pool->overflow_n, 1);
    pthread_mutex_unlock(&pool->overflow_lock);
}

static wf_job *overflow_pop(weft_pool *pool) {
    if (wf_load_seq_cst(&pool->overflow_n) == 0) return NULL;
    pthread_mutex_lock(&pool->overflow_lock);
    wf_job *job = pool->overflow_head;
    if (job) {
        pool->overflow_head = job->next;
        if (!pool->overflow_head) pool->overflow_tail = NULL;
        wf_sub_seq_cst(&pool->overflow_n, 1);
    }
    pthread_mutex_unlock(&pool->overflow_lock);
    return job;
}

/* Takes the whole inbox of `from` for w: runs the first job, queues the rest on w's deque
 * (or the overflow queue). The exchange is acq_rel: acquire pairs with the release CAS in
 * inbox_push, so the jobs' contents are visible. */
static wf_job *inbox_take(wf_worker *w, wf_worker *from) {
    if (!wf_load_relaxed(&from->inbox)) return NULL;
    wf_job *list = wf_xchg_acq_rel(&from->inbox, NULL);
    if (!list) return NULL;
    wf_job *first = list;
    for (wf_job *j = list->next; j;) {
        wf_job *next = j->next;
        if (wf_deque_push(&w->deque, j) != 0) overflow_push(w->pool, j);
        j = next;
    }
    if (list->next) wf_wake_for_work(w->pool);
    return first;
}

/* A slot stops looking for work: from now on other slots may take its inbox (find_work),
 * so if the inbox holds jobs, wake them. The fence pairs with the fence of wf_ec_prepare
 * of a thread about to park: either its last look sees looking == 0 and takes the
 * inbox, or this notify sees it waiting. */
static void stop_looking(wf_worker *w) {
    wf_store_relaxed(&w->looking, 0);
    wf_fence_seq_cst();
    if (wf_load_relaxed(&w->inbox)) wf_ec_notify_all(&w->pool->ec);
}

static void inbox_push(wf_worker *target, wf_job *job) {
    wf_job *head = wf_load_relaxed(&target->inbox);
    do {
        job->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&target->inbox, &head, job,
                                                    memory_order_release,
                                                    memory_order_relaxed));
}

/* ---- spawning ----------------------------------------------------------------------- */

/* Wakes a parked worker unless one is already searching: a searcher finds the new job
 * itself, and when it does it wakes the next one (wait_for_work), so parallelism spreads
 * without a futex call per push. The fence orders the push before the load of
 * `searching`; it pairs with the fence of wf_ec_prepare that a searcher executes after
 * leaving the searching state and before its last look for work, so either this load
 * sees the searcher or the searcher's last look sees the job. */
void wf_wake_for_work(weft_pool *pool) {
    wf_fence_seq_cst();
    if (wf_load_relaxed(&pool->searching) == 0) wf_ec_notify_one(&pool->ec);
}

void wf_push(weft_pool *pool, wf_worker *w, wf_job *job) {
    if (!w || wf_deque_push(&w->deque, job) != 0) overflow_push(pool, job);
}

void wf_spawn(weft_pool *pool, wf_worker *w, wf_job *job) {
    wf_push(pool, w, job);
    wf_wake_for_work(pool);
}

int wf_push_affine(weft_pool *pool, wf_worker *w, wf_job *job, unsigned target) {
    if (target >= pool->nslots || (w && w->index == target) ||
        wf_deque_size(&pool->slots[target]->deque) >= WF_AFFINITY_MAX_QUEUED) {
        wf_push(pool, w, job); /* no such slot, ours, or overloaded: run it here */
        return 0;
    }
    inbox_push(pool->slots[target], job);
    return 1;
}

/* ---- finding work ------------------------------------------------------------------- */

/* Steals one job from slot v's deque; retries while it loses races (each lost race means
 * another thread made progress, so this terminates). */
static wf_job *steal_from(wf_worker *w, unsigned v) {
    wf_worker *victim = w->pool->slots[v];
    wf_bump_owner(&w->steals_tried, 1);
    for (;;) {
        wf_job *job = wf_deque_steal(&victim->deque);
        if (job == WF_STEAL_ABORT) {
            wf_cpu_relax();
            continue;
        }
        if (job) wf_bump_owner(&w->steals_ok, 1);
        return job;
    }
}

static wf_job *steal_tier(wf_worker *w, const unsigned *victims, unsigned n) {
    if (n == 0) return NULL;
    unsigned start = (unsigned)(rng_next(w) % n);
    for (unsigned i = 0; i < n; i++) {
        unsigned v = victims[(start + i) % n];
        /* cheap emptiness test before the costly steal (top/bottom on a shared line) */
        if (wf_deque_size(&w->pool->slots[v]->deque) == 0) continue;
        wf_job *job = steal_from(w, v);
        if (job) return job;
    }
    return NULL;
}

static wf_job *find_work(wf_worker *w) {
    weft_pool *pool = w->pool;
    wf_job *job = wf_deque_pop(&w->deque);
    if (job) return job;
    if ((job = inbox_take(w, w))) return job;
    unsigned nvict = pool->nslots - 1;
    if ((job = steal_tier(w, w->victims, w->own_count))) return job;
    if ((job = steal_tier(w, w->victims + w->own_count, nvict - w->own_count))) return job;
    if ((job = overflow_pop(pool))) return job;
    for (unsigned i = 0; i < nvict; i++) {
        wf_worker *v = pool->slots[w->victims[i]];
        if (!wf_load_relaxed(&v->looking) && (job = inbox_take(w, v))) return job;
    }
    return NULL;
}

void wf_run_job(wf_worker *w, wf_job *job) { job->run(job, w); }

/* Waits for work, for *pending == 0 (pending may be NULL) or for pool shutdown: spins for
 * spin_us, then parks. Returns a job, or NULL when the count is zero or the pool stops. */
static wf_job *wait_for_work(wf_worker *w, const _Atomic uint32_t *pending) {
    weft_pool *pool = w->pool;
    wf_job *job = NULL;
    wf_store_relaxed(&w->looking, 1);
    for (;;) {
        /* searching: seq_cst RMWs, read by wf_wake_for_work after its fence. Every way out
         * of the searching state but parking hands the search on: a pusher may have
         * skipped its wake-up because it saw this thread searching. */
        wf_add_seq_cst(&pool->searching, 1);
        uint64_t deadline = wf_now_ns() + (uint64_t)pool->spin_us * 1000u;
        for (unsigned spins = 1;; spins++) {
            /* the wait is over: do not pick up unrelated work */
            if ((pending && wf_load_acquire(pending) == 0) || wf_load_acquire(&pool->stopping)) {
                if (wf_sub_seq_cst(&pool->searching, 1) == 1) wf_ec_notify_one(&pool->ec);
                goto out;
            }
            if ((job = find_work(w))) {
                if (wf_sub_seq_cst(&pool->searching, 1) == 1) wf_ec_notify_one(&pool->ec);
                goto out;
            }
            if ((spins & 7) == 0 && wf_now_ns() >= deadline) break;
            for (int k = 0; k < 32; k++) wf_cpu_relax();
        }
        wf_sub_seq_cst(&pool->searching, 1);
        uint32_t ticket = wf_ec_prepare(&pool->ec);
        if ((pending && wf_load_acquire(pending) == 0) || wf_load_acquire(&pool->stopping) ||
            (job = find_work(w))) {
            wf_ec_cancel(&pool->ec);
            if (job) wf_ec_notify_one(&pool->ec); /* more may have come with it */
            goto out;
        }
        uint64_t t0 = wf_now_ns();
        wf_bump_owner(&w->parks, 1); /* counted when it parks: an idle pool shows it */
        wf_ec_commit(&pool->ec, ticket);
        uint64_t reset = wf_load_relaxed(&pool->counters_reset_ns);
        wf_bump_owner(&w->parked_ns, wf_now_ns() - (t0 > reset ? t0 : reset));
    }
out:
    stop_looking(w);
    return job;
}

void wf_help_until_zero(wf_worker *w, const _Atomic uint32_t *pending) {
    while (wf_load_acquire(pending) != 0) {
        wf_job *job = find_work(w);
        if (!job) job = wait_for_work(w, pending);
        if (job) wf_run_job(w, job);
    }
}

void wf_wake_waiters(weft_pool *pool) {
    wf_ec_notify_all(&pool->ec);
    wf_ec_notify_all(&pool->slotless_ec);
}

void *wf_worker_main(void *arg) {
    wf_worker *w = arg;
    tl_worker = w;
    for (;;) {
        wf_job *job = find_work(w);
        if (!job) job = wait_for_work(w, NULL);
        if (job)
            wf_run_job(w, job);
        else if (wf_load_acquire(&w->pool->stopping))
            break;
    }
    return NULL;
}

/* ---- slot 0 for outside threads ------------------------------------------------------- */

/* After caller_lock was acquired: slot 0 becomes the calling thread's (pinned to its PU
 * when the pool pins). */
static wf_worker *take_slot0(weft_pool *pool) {
    wf_store_seq_cst(&pool->slot0_busy, 1);
    tl_saved[tl_depth++] = tl_worker;
    tl_worker = pool->slots[0];
    if (pool->bind_caller) {
        hwloc_obj_t pu = pool->topo.place[0].pu_obj;
        if (hwloc_get_cpubind(pool->topo.topo, pool->caller_saved, HWLOC_CPUBIND_THREAD) != 0 ||
            hwloc_set_cpubind(pool->topo.topo, pu->cpuset, HWLOC_CPUBIND_THREAD) != 0)
            hwloc_bitmap_zero(pool->caller_saved); /* could not pin: nothing to restore */
    }
    return tl_worker;
}

wf_worker *wf_enter(weft_pool *pool, int *entered) {
    wf_worker *w = wf_current_worker(pool);
    *entered = 0;
    if (w) return w;
    if (tl_depth >= sizeof(tl_saved) / sizeof(tl_saved[0])) return NULL;
    /* A thread that holds a slot of another pool must not block here: the holder of this
     * pool's slot 0 may be waiting for it (two pools calling into each other). It then
     * works without a slot. A thread with no slot at all simply waits its turn. */
    if (tl_worker) {
        if (pthread_mutex_trylock(&pool->caller_lock) != 0) return NULL;
    } else {
        pthread_mutex_lock(&pool->caller_lock);
    }
    *entered = 1;
    return take_slot0(pool);
}

void wf_leave(weft_pool *pool) {
    wf_worker *w = pool->slots[0];
    /* Jobs sent to slot 0's inbox while the caller was busy: hand them to everyone. */
    wf_job *list = wf_xchg_acq_rel(&w->inbox, NULL);
    for (wf_job *j = list; j;) {
        wf_job *next = j->next;
        overflow_push(pool, j);
        j = next;
    }
    /* Jobs left on slot 0's deque (successors of other runs' tasks it helped with) are
     * stolen by the workers: make sure one is awake to see them. */
    if (list || wf_deque_size(&w->deque) > 0) wf_wake_for_work(pool);
    if (pool->bind_caller && !hwloc_bitmap_iszero(pool->caller_saved))
        hwloc_set_cpubind(pool->topo.topo, pool->caller_saved, HWLOC_CPUBIND_THREAD);
    tl_worker = tl_saved[--tl_depth];
    wf_store_seq_cst(&pool->slot0_busy, 0);
    pthread_mutex_unlock(&pool->caller_lock);
    wf_ec_notify_all(&pool->slotless_ec); /* slot-less waiters may take slot 0 now */
}

/* A thread that could not take slot 0 (it holds another pool's slot) waits here. It
 * parks on slotless_ec until its count is zero; whenever slot 0 is free it tries to take
 * it and work (with threads == 1 nobody else would run its jobs). Never blocks on the
 * lock. Ordering: slot0_busy is stored seq_cst before the unlock-and-notify in
 * wf_leave; a waiter reads it after wf_ec_prepare's fence, so either it sees the slot
 * free or the notify sees it waiting. */
void wf_wait_without_slot(weft_pool *pool, const _Atomic uint32_t *pending) {
    while (wf_load_acquire(pending) != 0) {
        if (tl_depth < sizeof(tl_saved) / sizeof(tl_saved[0]) &&
            pthread_mutex_trylock(&pool->caller_lock) == 0) {
            wf_worker *w = take_slot0(pool);
            wf_help_until_zero(w, pending);
            wf_leave(pool);
            return;
        }
        uint32_t ticket = wf_ec_prepare(&pool->slotless_ec);
        if (wf_load_acquire(pending) == 0 || !wf_load_seq_cst(&pool->slot0_busy)) {
            wf_ec_cancel(&pool->slotless_ec);
            continue;
        }
        wf_ec_commit(&pool->slotless_ec, ticket);
    }
}
