/* scheduler/pool_api.c - pool creation and destruction, placement and counter queries,
 * NUMA-local memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/atomic.h"
#include "scheduler/internal.h"

weft_pool_options weft_pool_options_default(void) {
    return (weft_pool_options){.threads = 0, .topology = NULL, .bind = 1,
                               .trace_path = NULL, .spin_us = WF_DEFAULT_SPIN_US};
}

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = wf_alloc(n, 1);
    if (d) memcpy(d, s, n);
    return d;
}

static void free_string(char *s) {
    if (s) wf_free(s, strlen(s) + 1);
}

static void worker_free(weft_pool *pool, wf_worker *w) {
    if (!w) return;
    wf_deque_destroy(&w->deque);
    wf_free(w->victims, (pool->nslots ? pool->nslots - 1 : 0) * sizeof(unsigned) + 1);
    wf_trace_buf_free(&w->trace);
    wf_free(w, sizeof(*w));
}

/* Stops the started workers and frees everything; safe on a partly built pool. */
static void pool_free(weft_pool *pool) {
    wf_store_release(&pool->stopping, 1);
    wf_wake_waiters(pool);
    for (unsigned i = 0; pool->slots && i < pool->nslots; i++)
        if (pool->slots[i] && pool->slots[i]->has_thread)
            pthread_join(pool->slots[i]->thread, NULL);
    for (unsigned i = 0; pool->slots && i < pool->nslots; i++) worker_free(pool, pool->slots[i]);
    wf_free(pool->slots, pool->nslots * sizeof(wf_worker *));
    if (pool->caller_saved) hwloc_bitmap_free(pool->caller_saved);
    wf_topology_free(&pool->topo);
    free_string(pool->trace_path);
    pthread_mutex_destroy(&pool->caller_lock);
    pthread_mutex_destroy(&pool->overflow_lock);
    wf_free(pool, sizeof(*pool));
}

static weft_status worker_init(weft_pool *pool, unsigned s) {
    wf_worker *w = wf_calloc(sizeof(*w), WF_CACHE_LINE);
    if (!w) return wf_error(WEFT_ERR_NOMEM, "pool: out of memory for worker %u", s);
    pool->slots[s] = w;
    w->pool = pool;
    w->index = s;
    w->group = pool->topo.place[s].group;
    w->rng = 0x9E3779B97F4A7C15ull * (s + 1) | 1;
    w->victims = wf_alloc((pool->nslots - 1) * sizeof(unsigned) + 1, 16);
    if (!w->victims) return wf_error(WEFT_ERR_NOMEM, "pool: out of memory for worker %u", s);
    wf_topology_steal_order(&pool->topo, s, w->victims);
    const wf_topology *t = &pool->topo;
    w->own_count = t->group_first[w->group + 1] - t->group_first[w->group] - 1;
    if (wf_deque_init(&w->deque, WF_DEQUE_INIT_LOG2) != 0) {
        atomic_init(&w->deque.buf, NULL);
        return wf_error(WEFT_ERR_NOMEM, "pool: out of memory for the deque of worker %u", s);
    }
    return WEFT_OK;
}

weft_status weft_pool_create(const weft_pool_options *opts, weft_pool **out) {
    if (!out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_pool_create: out is NULL");
    *out = NULL;
    weft_pool_options o = opts ? *opts : weft_pool_options_default();
    if (o.threads > WEFT_MAX_THREADS)
        return wf_error(WEFT_ERR_INVALID_ARG,
                        "weft_pool_create: threads = %u, must be 0 (one per core) to %d",
                        o.threads, WEFT_MAX_THREADS);
    wf_env env;
    wf_env_read(&env);
    const char *topo_desc = o.topology ? o.topology : env.topology;
    const char *trace = o.trace_path ? o.trace_path : env.trace;

    weft_pool *pool = wf_calloc(sizeof(*pool), WF_CACHE_LINE);
    if (!pool) return wf_error(WEFT_ERR_NOMEM, "weft_pool_create: out of memory");
    pthread_mutex_init(&pool->caller_lock, NULL);
    pthread_mutex_init(&pool->overflow_lock, NULL);
    pool->spin_us = o.spin_us;
    unsigned n = o.threads;
    weft_status st = wf_topology_load(&pool->topo, topo_desc, &n);
    if (st != WEFT_OK) {
        pool_free(pool);
        return st;
    }
    pool->nslots = n;
    if (trace) {
        pool->trace_path = dup_string(trace);
        if (!pool->trace_path) {
            pool_free(pool);
            return wf_error(WEFT_ERR_NOMEM, "weft_pool_create: out of memory");
        }
        pool->trace_on = 1;
        pool->trace_t0 = wf_now_ns();
    }
    pool->slots = wf_calloc(n * sizeof(wf_worker *), 16);
    if (!pool->slots) {
        pool_free(pool);
        return wf_error(WEFT_ERR_NOMEM, "weft_pool_create: out of memory");
    }
    for (unsigned s = 0; s < n; s++) {
        if ((st = worker_init(pool, s)) != WEFT_OK) {
            pool_free(pool);
            return st;
        }
    }
    int bind = o.bind && pool->topo.this_system;
    if (bind && n > 1 && pool->topo.place[0].pu_obj) {
        pool->caller_saved = hwloc_bitmap_alloc();
        if (!pool->caller_saved) {
            pool_free(pool);
            return wf_error(WEFT_ERR_NOMEM, "weft_pool_create: out of memory");
        }
        pool->bind_caller = 1;
    }
    for (unsigned s = 1; s < n; s++) {
        wf_worker *w = pool->slots[s];
        int rc = pthread_create(&w->thread, NULL, wf_worker_main, w);
        if (rc != 0) {
            pool_free(pool);
            return wf_error(WEFT_ERR_SYSTEM, "weft_pool_create: cannot start worker %u: %s",
                            s, strerror(rc));
        }
        w->has_thread = 1;
        hwloc_obj_t pu = pool->topo.place[s].pu_obj;
        if (bind && pu &&
            hwloc_set_thread_cpubind(pool->topo.topo, w->thread, pu->cpuset, 0) == 0)
            w->bound = 1;
    }
    *out = pool;
    return WEFT_OK;
}

void weft_pool_destroy(weft_pool *pool) {
    if (!pool) return;
    wf_store_release(&pool->stopping, 1);
    wf_wake_waiters(pool);
    for (unsigned i = 1; i < pool->nslots; i++)
        if (pool->slots[i]->has_thread) {
            pthread_join(pool->slots[i]->thread, NULL);
            pool->slots[i]->has_thread = 0;
        }
    if (pool->trace_on) (void)weft_pool_trace_flush(pool);
    pool_free(pool);
}

unsigned weft_pool_threads(const weft_pool *pool) { return pool ? pool->nslots : 0; }
unsigned weft_pool_numa_groups(const weft_pool *pool) { return pool ? pool->topo.ngroups : 0; }
int weft_pool_is_this_system(const weft_pool *pool) { return pool ? pool->topo.this_system : 0; }

weft_status weft_pool_worker_info(const weft_pool *pool, unsigned worker, weft_worker_info *out) {
    if (!pool || !out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_pool_worker_info: NULL argument");
    if (worker >= pool->nslots)
        return wf_error(WEFT_ERR_RANGE, "weft_pool_worker_info: worker %u of a pool of %u threads",
                        worker, pool->nslots);
    const wf_placement *p = &pool->topo.place[worker];
    *out = (weft_worker_info){.numa_node = p->numa_node, .group = p->group, .core = p->core,
                              .pu = p->pu, .bound = pool->slots[worker]->bound};
    return WEFT_OK;
}

weft_status weft_pool_steal_order(const weft_pool *pool, unsigned worker, unsigned *victims,
                                  size_t cap, size_t *count) {
    if (!pool || !count || (cap && !victims))
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_pool_steal_order: NULL argument");
    if (worker >= pool->nslots)
        return wf_error(WEFT_ERR_RANGE, "weft_pool_steal_order: worker %u of a pool of %u threads",
                        worker, pool->nslots);
    const wf_worker *w = pool->slots[worker];
    size_t n = pool->nslots - 1;
    for (size_t i = 0; i < n && i < cap; i++) victims[i] = w->victims[i];
    *count = n;
    return WEFT_OK;
}

weft_status weft_pool_counters(const weft_pool *pool, unsigned worker, weft_worker_counters *out) {
    if (!pool || !out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_pool_counters: NULL argument");
    if (worker >= pool->nslots)
        return wf_error(WEFT_ERR_RANGE, "weft_pool_counters: worker %u of a pool of %u threads",
                        worker, pool->nslots);
    wf_worker *w = pool->slots[worker];
    *out = (weft_worker_counters){
        .tasks_run = wf_load_relaxed(&w->tasks_run),
        .steals_tried = wf_load_relaxed(&w->steals_tried),
        .steals_ok = wf_load_relaxed(&w->steals_ok),
        .parks = wf_load_relaxed(&w->parks),
        .parked_ns = wf_load_relaxed(&w->parked_ns)};
    return WEFT_OK;
}

void weft_pool_counters_reset(weft_pool *pool) {
    if (!pool) return;
    wf_store_relaxed(&pool->counters_reset_ns, wf_now_ns());
    for (unsigned i = 0; i < pool->nslots; i++) {
        wf_worker *w = pool->slots[i];
        wf_store_relaxed(&w->tasks_run, 0);
        wf_store_relaxed(&w->steals_tried, 0);
        wf_store_relaxed(&w->steals_ok, 0);
        wf_store_relaxed(&w->parks, 0);
        wf_store_relaxed(&w->parked_ns, 0);
    }
}

/* ---- NUMA-local memory ---------------------------------------------------------------- */

weft_status weft_pool_alloc(weft_pool *pool, size_t size, int numa_node, void **out) {
    if (!pool || !out || size == 0)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_pool_alloc: NULL argument or size 0");
    *out = NULL;
    int nnuma = hwloc_get_nbobjs_by_type(pool->topo.topo, HWLOC_OBJ_NUMANODE);
    if (numa_node == -1) {
        wf_worker *w = wf_current_worker(pool);
        numa_node = (int)pool->topo.place[w ? w->index : 0].numa_node;
    }
    if (numa_node < 0 || numa_node >= (nnuma > 0 ? nnuma : 1))
        return wf_error(WEFT_ERR_RANGE, "weft_pool_alloc: NUMA node %d, the topology has %d",
                        numa_node, nnuma > 0 ? nnuma : 1);
    void *p = NULL;
    if (pool->topo.this_system) {
        hwloc_obj_t node = hwloc_get_obj_by_type(pool->topo.topo, HWLOC_OBJ_NUMANODE,
                                                 (unsigned)numa_node);
        if (node)
            p = hwloc_alloc_membind(pool->topo.topo, size, node->nodeset, HWLOC_MEMBIND_BIND,
                                    HWLOC_MEMBIND_BYNODESET);
        if (!p) p = hwloc_alloc(pool->topo.topo, size); /* binding unsupported: plain pages */
    } else {
        p = wf_alloc(size, WF_CACHE_LINE); /* synthetic topology: nothing to bind to */
    }
    if (!p)
        return wf_error(WEFT_ERR_NOMEM, "weft_pool_alloc: cannot allocate %zu bytes on NUMA node %d",
                        size, numa_node);
    *out = p;
    return WEFT_OK;
}

void weft_pool_free(weft_pool *pool, void *ptr, size_t size) {
    if (!pool || !ptr) return;
    if (pool->topo.this_system)
        hwloc_free(pool->topo.topo, ptr, size);
    else
        wf_free(ptr, size);
}
