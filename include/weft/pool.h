/* weft/pool.h - the NUMA-aware work-stealing thread pool.
 *
 * A pool has `threads` execution slots. Slot 0 belongs to the calling thread: an outside
 * thread that runs a graph, a parallel-for or waits for a group takes slot 0 for the time
 * of that call and works on it (outside callers are serialised on slot 0). Slots
 * 1..threads-1 are background workers. So `threads` counts every thread that may execute
 * tasks, the caller included, and threads == 1 runs everything on the caller.
 *
 * Placement: the topology comes from hwloc (this machine), or from an hwloc synthetic
 * description (options.topology, else the WEFT_TOPOLOGY environment variable). Slots are
 * placed compactly on cores in hwloc's logical order (slot i on core i mod cores) and
 * grouped by the NUMA node of their core. Background workers are pinned to their core
 * when the topology is this machine's and options.bind is set; with a synthetic topology
 * nothing is bound but the plan is computed the same way (weft_pool_worker_info). An
 * outside caller is pinned to slot 0's PU for the time it holds slot 0 (when workers are
 * pinned and threads > 1); its own binding is restored when the call returns.
 *
 * Scheduling: one Chase-Lev deque per slot; an idle worker steals from a random victim of
 * its own NUMA group first, then from the other groups, spins briefly, then parks without
 * using CPU until work arrives.
 *
 * Thread safety: all functions may be called from any thread, including from inside
 * tasks, except weft_pool_destroy (no other call may be in progress) and
 * weft_pool_counters_reset / weft_pool_trace_flush (call them while no task runs).
 */
#ifndef WEFT_POOL_H
#define WEFT_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "weft/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_pool weft_pool;

/* The most slots a pool may have. */
#define WEFT_MAX_THREADS 1024

typedef struct weft_pool_options {
    /* Threads that execute tasks, the caller's slot included; 0 = one per core of the
     * topology. 1..WEFT_MAX_THREADS; more threads than cores is allowed. */
    unsigned threads;
    /* hwloc synthetic topology ("pack:2 numa:2 core:4 pu:1"), or NULL for the
     * WEFT_TOPOLOGY environment variable, or, if unset, this machine. Borrowed. */
    const char *topology;
    /* Pin background workers to their cores (only when the topology is this machine's). */
    int bind;
    /* Write a Chrome trace-event JSON file of every task to this path when the pool is
     * destroyed or weft_pool_trace_flush is called. NULL = the WEFT_TRACE environment
     * variable, or no tracing. Borrowed. */
    const char *trace_path;
    /* Microseconds an idle worker keeps looking for work before it parks. */
    unsigned spin_us;
} weft_pool_options;

/* Defaults: threads 0 (one per core), topology NULL, bind 1, trace_path NULL, spin_us 50. */
WEFT_API weft_pool_options weft_pool_options_default(void);

/* Creates a pool. opts may be NULL (defaults). *out is owned by the caller and released
 * with weft_pool_destroy. Errors: WEFT_ERR_INVALID_ARG (threads out of range),
 * WEFT_ERR_TOPOLOGY (bad synthetic description), WEFT_ERR_NOMEM, WEFT_ERR_SYSTEM. */
WEFT_API weft_status weft_pool_create(const weft_pool_options *opts, weft_pool **out);
/* Stops and joins the workers, writes the trace if enabled, frees everything. NULL is a
 * no-op. No run, parallel-for or group may be in progress on the pool. */
WEFT_API void weft_pool_destroy(weft_pool *pool);

WEFT_API unsigned weft_pool_threads(const weft_pool *pool);
/* Number of NUMA groups that hold at least one slot. */
WEFT_API unsigned weft_pool_numa_groups(const weft_pool *pool);
/* 1 if the topology is this machine's (and binding is possible), 0 if synthetic. */
WEFT_API int weft_pool_is_this_system(const weft_pool *pool);

typedef struct weft_worker_info {
    unsigned numa_node; /* hwloc logical index of the slot's NUMA node */
    unsigned group;     /* index of the slot's NUMA group in this pool, 0.. */
    unsigned core;      /* hwloc logical index of the slot's core */
    unsigned pu;        /* hwloc logical index of the PU the slot is pinned to */
    int bound;          /* 1 if the thread is actually pinned */
} weft_worker_info;

/* The placement plan of slot `worker`. WEFT_ERR_RANGE if worker >= threads. */
WEFT_API weft_status weft_pool_worker_info(const weft_pool *pool, unsigned worker,
                                           weft_worker_info *out);

/* The order in which slot `worker` considers victims: the other slots of its own NUMA
 * group first, then the slots of the other groups (nearest groups first). At run time the
 * scheduler starts at a random position inside each tier. Writes up to cap entries and
 * the full count to *count. */
WEFT_API weft_status weft_pool_steal_order(const weft_pool *pool, unsigned worker,
                                           unsigned *victims, size_t cap, size_t *count);

/* The slot index of the calling thread in this pool, or -1 if the caller is not executing
 * inside the pool. */
WEFT_API int weft_pool_current_worker(const weft_pool *pool);

typedef struct weft_worker_counters {
    uint64_t tasks_run;    /* tasks executed by this slot (graph tasks, chunks, spawns) */
    uint64_t steals_tried; /* steal attempts on a victim */
    uint64_t steals_ok;    /* attempts that returned a task */
    uint64_t parks;        /* times the worker went to sleep */
    uint64_t parked_ns;    /* total time spent asleep */
} weft_worker_counters;

/* Counters of one slot since creation or the last reset. The values are read without
 * stopping the worker; each is exact once the pool is idle. */
WEFT_API weft_status weft_pool_counters(const weft_pool *pool, unsigned worker,
                                        weft_worker_counters *out);
WEFT_API void weft_pool_counters_reset(weft_pool *pool);

/* NUMA-local memory: `size` bytes bound to NUMA node `numa_node` (hwloc logical index),
 * or, with numa_node == -1, to the node of the calling slot (node of slot 0 for outside
 * threads). Memory of a synthetic topology is ordinary memory (nothing to bind to).
 * The block is 64-byte aligned, owned by the caller, released with weft_pool_free (same
 * size) before the pool is destroyed. */
WEFT_API weft_status weft_pool_alloc(weft_pool *pool, size_t size, int numa_node, void **out);
WEFT_API void weft_pool_free(weft_pool *pool, void *ptr, size_t size);

/* Writes the trace file now (atomically: temporary file, then rename). WEFT_ERR_IO with
 * the path on failure; WEFT_OK and no file if tracing is off. */
WEFT_API weft_status weft_pool_trace_flush(weft_pool *pool);

#ifdef __cplusplus
}
#endif
#endif
