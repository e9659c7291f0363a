/* weft/parallel.h - nested parallelism: parallel-for and task groups.
 *
 * Both may be called from an outside thread (which then works in slot 0) or from inside a
 * running task: the calling worker keeps executing other tasks while it waits, so nesting
 * never deadlocks and never blocks a worker.
 */
#ifndef WEFT_PARALLEL_H
#define WEFT_PARALLEL_H

#include <stddef.h>

#include "weft/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A task: returns 0 on success, any other value is a failure. */
typedef int (*weft_task_fn)(void *arg);
/* A range body for [begin, end). Returns 0 on success. */
typedef int (*weft_range_fn)(void *arg, size_t begin, size_t end);

/* Calls body on the chunks [k*grain, min(n, (k+1)*grain)) for k = 0.. in parallel, each
 * chunk exactly once. The chunk boundaries depend only on n and grain, never on the number
 * of threads. grain 0 is taken as 1. If a body returns non-zero, the chunks not yet started
 * are skipped and WEFT_ERR_TASK_FAILED is returned (the message gives the chunk and the
 * value). n == 0 returns WEFT_OK without calling body. */
WEFT_API weft_status weft_parallel_for(weft_pool *pool, size_t n, size_t grain,
                                       weft_range_fn body, void *arg);

/* A task group: spawn any number of tasks, then wait for all of them.
 * A group is used by one thread at a time (the one that spawns and waits), which may be
 * a task; the spawned tasks may themselves create groups. */
typedef struct weft_group weft_group;

WEFT_API weft_status weft_group_create(weft_pool *pool, weft_group **out);
/* Queues fn(arg). WEFT_ERR_NOMEM if the task record cannot be allocated (fn not run). */
WEFT_API weft_status weft_group_spawn(weft_group *group, weft_task_fn fn, void *arg);
/* Waits, working, until every spawned task has finished. Returns WEFT_ERR_TASK_FAILED if
 * one returned non-zero (the others still ran). The group can be reused afterwards. */
WEFT_API weft_status weft_group_wait(weft_group *group);
/* NULL is a no-op. The group must have been waited for. */
WEFT_API void weft_group_destroy(weft_group *group);

#ifdef __cplusplus
}
#endif
#endif
