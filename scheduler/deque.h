/* scheduler/deque.h - Chase-Lev work-stealing deque of job pointers.
 *
 * Algorithm: D. Chase and Y. Lev, "Dynamic circular work-stealing deque" (SPAA 2005),
 * with the C11 memory orders of N. M. Lê, A. Pop, A. Cohen, F. Zappa Nardelli,
 * "Correct and efficient work-stealing for weak memory models" (PPoPP 2013).
 *
 * One owner thread calls push and pop (at the bottom); any thread may call steal (at the
 * top). The buffer grows by doubling when full, up to WF_DEQUE_MAX_LOG2 entries; when it
 * cannot grow (limit or allocation failure) push returns -1 and the caller puts the job on
 * the pool's shared overflow queue, so a job is never dropped. Old buffers stay allocated
 * until destroy because a thief may still read from them.
 */
#ifndef WEFT_SCHED_DEQUE_H
#define WEFT_SCHED_DEQUE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "scheduler/config.h"

struct wf_worker;

/* A unit of work on a deque. `run` executes it on worker w; `next` links jobs in the
 * overflow queue and inboxes (never used while the job is on a deque). */
typedef struct wf_job {
    void (*run)(struct wf_job *job, struct wf_worker *w);
    struct wf_job *next;
} wf_job;

typedef struct wf_deque_buf {
    int64_t mask;               /* capacity - 1; capacity is a power of two */
    struct wf_deque_buf *older; /* previous buffer, kept for late thieves */
    _Atomic(wf_job *) slot[];
} wf_deque_buf;

typedef struct wf_deque {
    WF_CACHE_ALIGNED _Atomic int64_t top;    /* thieves CAS here */
    WF_CACHE_ALIGNED _Atomic int64_t bottom; /* owner only writes */
    _Atomic(wf_deque_buf *) buf;
} wf_deque;

/* steal() result when it lost a race with another thief or the owner (retry later). */
#define WF_STEAL_ABORT ((wf_job *)(uintptr_t)1)

/* 0, or -1 if the first buffer (2^log2cap entries) cannot be allocated. */
int wf_deque_init(wf_deque *q, unsigned log2cap);
/* Frees every buffer. No thread may use q any more. */
void wf_deque_destroy(wf_deque *q);
/* Owner only. 0 on success, -1 if the deque is full and cannot grow (job not queued). */
int wf_deque_push(wf_deque *q, wf_job *job);
/* Owner only. The most recently pushed job, or NULL if empty. */
wf_job *wf_deque_pop(wf_deque *q);
/* Any thread. The oldest job, NULL if empty, or WF_STEAL_ABORT on a lost race. */
wf_job *wf_deque_steal(wf_deque *q);
/* Any thread; a snapshot that may be stale by the time it returns. */
int64_t wf_deque_size(const wf_deque *q);

#endif
