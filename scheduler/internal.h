/* scheduler/internal.h - private declarations shared by the scheduler's files and the
 * layers above (graph/). Never installed; nothing here is exported from libweft.so
 * (the library is built with -fvisibility=hidden and only WEFT_API names are exported). */
#ifndef WEFT_SCHED_INTERNAL_H
#define WEFT_SCHED_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hwloc.h>

#include "scheduler/config.h"
#include "scheduler/deque.h"
#include "weft/pool.h"
#include "weft/status.h"

/* ---- status and memory (scheduler/status.c) ---------------------------------------- */

/* Records a printf-style message as the calling thread's last error; returns status. */
weft_status wf_error(weft_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Allocation through the user's hook; NULL on failure (callers report WEFT_ERR_NOMEM). */
void *wf_alloc(size_t size, size_t align);
void *wf_calloc(size_t size, size_t align);
void wf_free(void *ptr, size_t size);
/* Grows an array of elem bytes to hold at least `need` elements (doubling). Returns 0, or
 * -1 with *arr unchanged. */
int wf_array_reserve(void **arr, size_t *cap, size_t need, size_t elem);
/* Monotonic clock in nanoseconds. */
uint64_t wf_now_ns(void);

/* ---- atomic files (scheduler/atomic_file.c) ------------------------------------------
 * open writes to "<path>.tmp"; commit flushes, fsyncs, closes and renames it over path
 * (on any failure it removes the temporary file and returns WEFT_ERR_IO). */
typedef struct wf_atomic_file {
    FILE *f;
    const char *path;
    char tmp[4096];
} wf_atomic_file;
weft_status wf_atomic_file_open(const char *path, wf_atomic_file *af, const char *who);
weft_status wf_atomic_file_commit(wf_atomic_file *af, const char *who);

/* ---- environment (scheduler/env.c) -------------------------------------------------- */

typedef struct wf_env {
    const char *topology; /* WEFT_TOPOLOGY */
    const char *trace;    /* WEFT_TRACE */
    int check_numerics;   /* WEFT_CHECK_NUMERICS=1 */
} wf_env;
void wf_env_read(wf_env *env);

/* ---- eventcount (scheduler/eventcount.c) ---------------------------------------------
 * Parking without lost wake-ups. A waiter announces itself (prepare), re-checks its
 * condition, then sleeps only if no notify happened since prepare (commit). A notifier
 * changes the condition, then calls notify, which wakes sleepers only if someone is
 * waiting. See eventcount.c for the ordering argument. */
typedef struct wf_eventcount {
    WF_CACHE_ALIGNED _Atomic uint32_t epoch; /* futex word; bumped by every notify */
    _Atomic uint32_t waiters;                /* threads between prepare and wake-up */
} wf_eventcount;

uint32_t wf_ec_prepare(wf_eventcount *ec);
void wf_ec_cancel(wf_eventcount *ec);
void wf_ec_commit(wf_eventcount *ec, uint32_t ticket);
void wf_ec_notify_one(wf_eventcount *ec);
void wf_ec_notify_all(wf_eventcount *ec);

/* ---- topology (scheduler/topology.c) ------------------------------------------------ */

typedef struct wf_placement {
    unsigned numa_node, group, core, pu;
    hwloc_obj_t pu_obj;
} wf_placement;

typedef struct wf_topology {
    hwloc_topology_t topo;
    int this_system;
    unsigned ncores;
    unsigned ngroups;
    unsigned *group_first;  /* slots of group g: group_slots[group_first[g] .. group_first[g+1]) */
    unsigned *group_slots;
    unsigned *group_numa;   /* NUMA node logical index of each group */
    wf_placement *place;    /* one per slot */
    unsigned nslots;
} wf_topology;

/* Loads the topology (synthetic if desc != NULL) and computes the placement of nslots
 * slots (0 = one per core; the count chosen is written back). */
weft_status wf_topology_load(wf_topology *t, const char *desc, unsigned *nslots);
void wf_topology_free(wf_topology *t);
/* Victims of slot s: own group first (excluding s), then the other groups in order of
 * distance (group index distance). Writes nslots-1 entries. */
void wf_topology_steal_order(const wf_topology *t, unsigned s, unsigned *out);

/* ---- tracing (scheduler/trace.c) ---------------------------------------------------- */

typedef struct wf_trace_event {
    uint64_t start_ns, end_ns;
    size_t name_off; /* into the buffer's text */
} wf_trace_event;

/* One slot's events; names are copied into `text` (tasks may be gone when the trace is
 * written). Consecutive events with the same name share one copy. */
typedef struct wf_trace_buf {
    wf_trace_event *ev;
    size_t n, cap;
    char *text;
    size_t text_len, text_cap;
    size_t last_off; /* the last copied name, shared by consecutive events */
    uint64_t dropped; /* events lost to allocation failure */
} wf_trace_buf;

void wf_trace_add(wf_trace_buf *b, const char *name, uint64_t start_ns, uint64_t end_ns);
void wf_trace_buf_free(wf_trace_buf *b);

/* ---- the pool (scheduler/pool.c) ---------------------------------------------------- */

typedef struct wf_worker {
    wf_deque deque;
    struct weft_pool *pool;
    unsigned index;
    unsigned group;
    uint64_t rng;
    unsigned *victims;  /* steal order, pool->nslots - 1 entries */
    unsigned own_count; /* first own_count victims are in this slot's group */
    /* Affinity inbox: a lock-free LIFO of jobs that asked for this slot (any thread
     * pushes; the owner or, as a last resort, thieves take the whole list). */
    WF_CACHE_ALIGNED _Atomic(wf_job *) inbox;
    /* 1 while the slot looks for work (it will find its inbox itself): other slots take
     * its inbox only when this is 0 (busy running a task, or slot 0 without a caller). */
    _Atomic uint32_t looking;
    /* counters: written by the owner only (wf_bump_owner), read by anyone */
    WF_CACHE_ALIGNED _Atomic uint64_t tasks_run;
    _Atomic uint64_t steals_tried, steals_ok, parks, parked_ns;
    wf_trace_buf trace;
    pthread_t thread;
    int has_thread;
    int bound;
} wf_worker;

struct weft_pool {
    unsigned nslots;
    wf_worker **slots; /* nslots workers, each cache-aligned on its own allocation */
    wf_topology topo;
    unsigned spin_us;
    int trace_on;
    char *trace_path;
    uint64_t trace_t0;
    /* Outside threads take slot 0 under this lock for the time of one call. */
    pthread_mutex_t caller_lock;
    /* Pin outside callers to slot 0's PU while they hold it (they share the cores with
     * pinned workers; an unpinned caller the OS parks on a worker's core halves both).
     * caller_saved keeps the caller's own binding, restored by wf_leave. */
    int bind_caller;
    hwloc_bitmap_t caller_saved;
    WF_CACHE_ALIGNED wf_eventcount ec;
    /* Threads that wait without a slot (wf_wait_without_slot) park here, not on `ec`, so
     * they never swallow a wake-up meant for a worker. Notified by wf_wake_waiters and
     * when slot 0 is released (slot0_busy goes to 0, seq_cst: they may take it then). */
    WF_CACHE_ALIGNED wf_eventcount slotless_ec;
    _Atomic int slot0_busy;
    /* Shared overflow queue (FIFO, intrusive): jobs a full deque could not take, and jobs
     * queued by threads that do not own a slot. `overflow_n` lets idle workers skip the
     * lock when it is empty. */
    WF_CACHE_ALIGNED pthread_mutex_t overflow_lock;
    wf_job *overflow_head, *overflow_tail;
    _Atomic size_t overflow_n;
    /* Time of the last weft_pool_counters_reset: a park that began earlier counts only
     * from then on. */
    _Atomic uint64_t counters_reset_ns;
    /* Threads in the spinning phase of looking for work (pool.c: wf_wake_for_work). */
    WF_CACHE_ALIGNED _Atomic uint32_t searching;
    WF_CACHE_ALIGNED _Atomic int stopping;
};

/* The slot of the calling thread in `pool`, or NULL. */
wf_worker *wf_current_worker(const struct weft_pool *pool);
/* Returns the calling thread's slot in `pool` with *entered = 0 if it has one (also one
 * held further down its stack of entered pools). Otherwise takes slot 0 (*entered = 1;
 * release with wf_leave): an outside thread waits for it; a thread that holds a slot of
 * another pool only tries, and gets NULL if slot 0 is busy (or past 8 nested pools):
 * it must then work without a slot (wf_push with w = NULL, wf_wait_without_slot). */
wf_worker *wf_enter(struct weft_pool *pool, int *entered);
void wf_leave(struct weft_pool *pool);
/* Blocks (parked, no CPU) until *pending == 0, for a thread without a slot. */
void wf_wait_without_slot(struct weft_pool *pool, const _Atomic uint32_t *pending);
/* Makes job runnable from worker w (w may be NULL for a thread without a slot): pushes
 * it on w's deque (overflow queue if full, or if w is NULL) and wakes a sleeper. */
void wf_spawn(struct weft_pool *pool, wf_worker *w, wf_job *job);
/* wf_spawn in two halves, for a batch of jobs: push without waking, then one wake. */
void wf_push(struct weft_pool *pool, wf_worker *w, wf_job *job);
void wf_wake_for_work(struct weft_pool *pool);
/* Puts a job with an affinity hint in slot `target`'s inbox when that slot exists, is
 * not w's and is not overloaded (returns 1: the caller must then wf_ec_notify_all, the
 * owner may be parked), else pushes it like wf_push (returns 0). */
int wf_push_affine(struct weft_pool *pool, wf_worker *w, wf_job *job, unsigned target);
/* Runs jobs (own deque, inbox, steals, overflow) until *pending == 0 (acquire load: what
 * the thread that made it zero wrote before, with a release RMW, is visible). Parks when
 * there is nothing to do; whoever brings *pending to zero must then call
 * wf_wake_waiters. */
void wf_help_until_zero(wf_worker *w, const _Atomic uint32_t *pending);
/* Wakes every parked thread (after setting a flag some helper may wait for). */
void wf_wake_waiters(struct weft_pool *pool);
/* The main loop of a background worker (pthread entry; arg is its wf_worker). */
void *wf_worker_main(void *arg);
/* Executes one job on w. */
void wf_run_job(wf_worker *w, wf_job *job);
/* Counts one user task run by w and, when tracing, records it. */
static inline void wf_task_done(wf_worker *w, const char *name, uint64_t t0, uint64_t t1) {
    atomic_store_explicit(&w->tasks_run,
                          atomic_load_explicit(&w->tasks_run, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (w->pool->trace_on) wf_trace_add(&w->trace, name, t0, t1);
}

#endif
