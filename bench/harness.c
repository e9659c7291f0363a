/* bench/harness.c - pools, result records and round shuffling shared by the runners. */
#include "bench/harness.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/shapes.h"

int bench_pools_get(bench_pools *pools, const bench_options *opts, unsigned threads,
                    weft_pool **out)
{
    for (size_t i = 0; i < pools->count; i++) {
        if (pools->threads[i] == threads) {
            *out = pools->pool[i];
            return 0;
        }
    }
    if (pools->count == BENCH_MAX_THREAD_COUNTS) {
        fprintf(stderr, "weft-bench: too many pools\n");
        return -1;
    }
    weft_pool_options po = weft_pool_options_default();
    po.threads = threads;
    char path[PATH_MAX];
    if (opts->trace_dir != NULL) {
        int len = snprintf(path, sizeof path, "%s/weft-%s-%u.json", opts->trace_dir,
                           bench_shape_name(opts->shape), threads);
        if (len < 0 || (size_t)len >= sizeof path) {
            fprintf(stderr, "weft-bench: --trace-dir path too long: %s\n", opts->trace_dir);
            return -1;
        }
        po.trace_path = path;
    }
    weft_pool *pool = NULL;
    weft_status st = weft_pool_create(&po, &pool);
    if (st != WEFT_OK) {
        fprintf(stderr, "weft-bench: weft_pool_create with %u threads failed: %s: %s\n",
                threads, weft_status_name(st), weft_last_error());
        return -1;
    }
    pools->threads[pools->count] = threads;
    pools->pool[pools->count++] = pool;
    *out = pool;
    return 0;
}

int bench_pools_destroy(bench_pools *pools)
{
    int rc = 0;
    for (size_t i = 0; i < pools->count; i++) {
        /* A no-op without tracing; with it, the only place a write error can be seen. */
        weft_status st = weft_pool_trace_flush(pools->pool[i]);
        if (st != WEFT_OK) {
            fprintf(stderr, "weft-bench: writing the trace of the %u-thread pool failed: %s\n",
                    pools->threads[i], weft_last_error());
            rc = -1;
        }
        weft_pool_destroy(pools->pool[i]);
    }
    pools->count = 0;
    return rc;
}

int bench_results_make(const bench_options *opts, bench_result **out, size_t *count)
{
    size_t engines = 1;
    for (unsigned e = BENCH_ENGINE_OMP; e < BENCH_ENGINE_COUNT; e++)
        engines += (opts->baselines >> e) & 1u;
    size_t n = engines * opts->nthreads;
    bench_result *r = calloc(n, sizeof *r);
    if (r == NULL) {
        fprintf(stderr, "weft-bench: out of memory for %zu results\n", n);
        return -1;
    }
    size_t k = 0;
    for (unsigned e = 0; e < BENCH_ENGINE_COUNT; e++) {
        if (e != BENCH_ENGINE_WEFT && !((opts->baselines >> e) & 1u))
            continue;
        for (size_t t = 0; t < opts->nthreads; t++) {
            r[k].engine = (bench_engine)e;
            r[k].threads = opts->threads[t];
            k++;
        }
    }
    *out = r;
    *count = n;
    return 0;
}

void bench_results_free(bench_result *results, size_t count)
{
    if (results == NULL)
        return;
    for (size_t i = 0; i < count; i++) {
        bench_samples_free(&results[i].oneshot);
        bench_samples_free(&results[i].runonly);
        bench_samples_free(&results[i].build);
        bench_samples_free(&results[i].run);
        bench_samples_free(&results[i].destroy);
        bench_samples_free(&results[i].outside);
        free(results[i].counters);
    }
    free(results);
}

int bench_result_take_counters(bench_result *r)
{
    unsigned n = weft_pool_threads(r->pool);
    if (r->counters == NULL) {
        r->counters = calloc(n ? n : 1, sizeof *r->counters);
        if (r->counters == NULL) {
            fprintf(stderr, "weft-bench: out of memory for pool counters\n");
            return -1;
        }
        r->ncounters = n;
    }
    for (unsigned w = 0; w < r->ncounters; w++) {
        weft_status st = weft_pool_counters(r->pool, w, &r->counters[w]);
        if (st != WEFT_OK) {
            fprintf(stderr, "weft-bench: weft_pool_counters(slot %u) failed: %s: %s\n", w,
                    weft_status_name(st), weft_last_error());
            return -1;
        }
    }
    return 0;
}

void bench_blocks_shuffle(bench_block *blocks, size_t count, uint64_t *state)
{
    bench_splitmix rng = {*state};
    for (size_t i = count; i > 1; i--) {
        size_t j = (size_t)(bench_splitmix_next(&rng) % i);
        bench_block tmp = blocks[i - 1];
        blocks[i - 1] = blocks[j];
        blocks[j] = tmp;
    }
    *state = rng.state;
}
