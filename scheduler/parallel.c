/* scheduler/parallel.c - weft_parallel_for and task groups.
 *
 * parallel_for splits the chunk range [0, nchunks) by halves: the right half goes on the
 * caller's deque as a job on the caller's stack, the left half is split again, down to
 * single chunks. After the leftmost chunk, the halves are reclaimed in reverse order: a
 * half still on the deque is run inline; a stolen one is waited for while helping. The
 * stack frames outlive their jobs because a frame does not return before its job's
 * counter reaches zero. Chunk boundaries are k*grain, whatever the thread count. */
#include <string.h>

#include "scheduler/atomic.h"
#include "scheduler/internal.h"
#include "weft/parallel.h"

typedef struct pfor_ctx {
    weft_range_fn body;
    void *arg;
    size_t n, grain;
    _Atomic int failed; /* 0, then 1 once a body failed (first failure wins the CAS) */
    size_t fail_chunk;  /* written only by the CAS winner, read after the join */
    int fail_value;
} pfor_ctx;

typedef struct pfor_job {
    wf_job job;
    pfor_ctx *ctx;
    size_t lo, hi;           /* chunk indexes */
    _Atomic uint32_t pending; /* 1 until the job has run */
} pfor_job;

static void pfor_range(wf_worker *w, pfor_ctx *c, size_t lo, size_t hi);

static void run_chunk(wf_worker *w, pfor_ctx *c, size_t k) {
    if (wf_load_relaxed(&c->failed)) return; /* a body failed: skip what has not started */
    size_t begin = k * c->grain, end = c->n - begin > c->grain ? begin + c->grain : c->n;
    uint64_t t0 = w && w->pool->trace_on ? wf_now_ns() : 0;
    int rc = c->body(c->arg, begin, end);
    if (w) wf_task_done(w, "parallel_for", t0, t0 ? wf_now_ns() : 0);
    if (rc != 0) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&c->failed, &expected, 1)) {
            c->fail_chunk = k;
            c->fail_value = rc;
        }
    }
}

static void pfor_job_run(wf_job *job, wf_worker *w) {
    pfor_job *j = (pfor_job *)job;
    pfor_range(w, j->ctx, j->lo, j->hi);
    weft_pool *pool = w->pool; /* j lives on the waiter's stack: not touched after this */
    /* release: pairs with the acquire load in wf_help_until_zero of the owner */
    atomic_store_explicit(&j->pending, 0, memory_order_release);
    wf_wake_waiters(pool);
}

/* Depth of halving is at most 64 (size_t). */
static void pfor_range(wf_worker *w, pfor_ctx *c, size_t lo, size_t hi) {
    pfor_job right[64];
    int k = 0;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        pfor_job *r = &right[k++];
        r->job.run = pfor_job_run;
        r->ctx = c;
        r->lo = mid;
        r->hi = hi;
        atomic_init(&r->pending, 1);
        wf_push(w->pool, w, &r->job);
        hi = mid;
    }
    if (k) wf_wake_for_work(w->pool); /* one wake-up for the whole batch of halves */
    run_chunk(w, c, lo);
    while (k > 0) {
        pfor_job *r = &right[--k];
        for (;;) {
            wf_job *job = wf_deque_pop(&w->deque);
            if (job == &r->job) { /* not stolen: run it here, no synchronisation needed */
                pfor_range(w, c, r->lo, r->hi);
                break;
            }
            if (!job) { /* stolen (or overflowed): work elsewhere until it is done */
                wf_help_until_zero(w, &r->pending);
                break;
            }
            wf_run_job(w, job); /* pushed above ours by work we helped with */
        }
    }
}

weft_status weft_parallel_for(weft_pool *pool, size_t n, size_t grain, weft_range_fn body,
                              void *arg) {
    if (!pool || !body)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_parallel_for: %s is NULL",
                        pool ? "body" : "pool");
    if (n == 0) return WEFT_OK;
    if (grain == 0) grain = 1;
    pfor_ctx c = {.body = body, .arg = arg, .n = n, .grain = grain};
    atomic_init(&c.failed, 0);
    size_t nchunks = n / grain + (n % grain != 0);
    int entered;
    wf_worker *w = wf_enter(pool, &entered);
    if (w) {
        pfor_range(w, &c, 0, nchunks);
        if (entered) wf_leave(pool);
    } else { /* slot 0 busy while this thread holds another pool's slot: run here */
        for (size_t k = 0; k < nchunks; k++) run_chunk(NULL, &c, k);
    }
    if (wf_load_acquire(&c.failed))
        return wf_error(WEFT_ERR_TASK_FAILED,
                        "weft_parallel_for: body returned %d on chunk [%zu, %zu)", c.fail_value,
                        c.fail_chunk * grain,
                        n - c.fail_chunk * grain > grain ? (c.fail_chunk + 1) * grain : n);
    return WEFT_OK;
}

/* ---- task groups ------------------------------------------------------------------------ */

struct weft_group {
    weft_pool *pool;
    _Atomic uint32_t pending; /* spawned and not finished */
    _Atomic int failed;
    int fail_value;
};

typedef struct group_task {
    wf_job job;
    weft_task_fn fn;
    void *arg;
    weft_group *group;
} group_task;

static void group_task_run(wf_job *job, wf_worker *w) {
    group_task *t = (group_task *)job;
    weft_group *g = t->group;
    uint64_t t0 = w->pool->trace_on ? wf_now_ns() : 0;
    int rc = t->fn(t->arg);
    wf_task_done(w, "group task", t0, t0 ? wf_now_ns() : 0);
    wf_free(t, sizeof(*t));
    if (rc != 0) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&g->failed, &expected, 1)) g->fail_value = rc;
    }
    weft_pool *pool = w->pool;
    /* acq_rel: release publishes this task's effects to the waiter (acquire in
     * wf_help_until_zero); after the last decrement g may be freed by the waiter. */
    if (wf_sub_acq_rel(&g->pending, 1) == 1) wf_wake_waiters(pool);
}

weft_status weft_group_create(weft_pool *pool, weft_group **out) {
    if (!pool || !out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_group_create: NULL argument");
    weft_group *g = wf_calloc(sizeof(*g), 16);
    if (!g) return wf_error(WEFT_ERR_NOMEM, "weft_group_create: out of memory");
    g->pool = pool;
    *out = g;
    return WEFT_OK;
}

weft_status weft_group_spawn(weft_group *g, weft_task_fn fn, void *arg) {
    if (!g || !fn) return wf_error(WEFT_ERR_INVALID_ARG, "weft_group_spawn: NULL argument");
    group_task *t = wf_alloc(sizeof(*t), 16);
    if (!t) return wf_error(WEFT_ERR_NOMEM, "weft_group_spawn: out of memory");
    t->job.run = group_task_run;
    t->fn = fn;
    t->arg = arg;
    t->group = g;
    wf_add_relaxed(&g->pending, 1); /* published to the runner by the push's release */
    wf_spawn(g->pool, wf_current_worker(g->pool), &t->job);
    return WEFT_OK;
}

weft_status weft_group_wait(weft_group *g) {
    if (!g) return wf_error(WEFT_ERR_INVALID_ARG, "weft_group_wait: group is NULL");
    if (wf_load_acquire(&g->pending) != 0) {
        int entered;
        wf_worker *w = wf_enter(g->pool, &entered);
        if (w) {
            wf_help_until_zero(w, &g->pending);
            if (entered) wf_leave(g->pool);
        } else { /* no slot to be had: the pool's workers run the tasks */
            wf_wait_without_slot(g->pool, &g->pending);
        }
    }
    if (atomic_exchange(&g->failed, 0)) {
        return wf_error(WEFT_ERR_TASK_FAILED, "weft_group_wait: a spawned task returned %d",
                        g->fail_value);
    }
    return WEFT_OK;
}

void weft_group_destroy(weft_group *g) {
    if (g) wf_free(g, sizeof(*g));
}
