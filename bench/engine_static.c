/* bench/engine_static.c - the static engine: task bodies split in contiguous blocks over
 * T threads, no dependencies (the hardware ceiling for speedup). Thread t runs tasks
 * [t*n/T, (t+1)*n/T); the caller is thread 0, threads 1..T-1 are created per run and
 * joined, which also orders their accumulator writes before the check. */
#include "bench/engines.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/body.h"

typedef struct static_block {
    size_t begin, end;
    bench_body_kind kind;
} static_block;

static void static_block_run(const static_block *b)
{
    if (b->kind == BENCH_BODY_VERIFY) {
        for (size_t v = b->begin; v < b->end; v++)
            bench_body_verify(v);
    } else {
        for (size_t v = b->begin; v < b->end; v++)
            bench_body(v);
    }
}

static void *static_thread(void *arg)
{
    static_block_run(arg);
    return NULL;
}

int bench_static_run(const bench_graph *graph, unsigned threads, bench_body_kind kind)
{
    if (threads == 0) {
        fprintf(stderr, "weft-bench: static engine needs at least 1 thread\n");
        return -1;
    }
    static_block *blocks = calloc(threads, sizeof *blocks);
    pthread_t *tids = calloc(threads, sizeof *tids);
    if (blocks == NULL || tids == NULL) {
        free(blocks);
        free(tids);
        fprintf(stderr, "weft-bench: static engine: out of memory for %u threads\n", threads);
        return -1;
    }
    for (unsigned t = 0; t < threads; t++) {
        blocks[t].begin = graph->n * t / threads;
        blocks[t].end = graph->n * (t + 1) / threads;
        blocks[t].kind = kind;
    }
    unsigned started = 1;
    int rc = 0;
    for (unsigned t = 1; t < threads; t++) {
        int err = pthread_create(&tids[t], NULL, static_thread, &blocks[t]);
        if (err != 0) {
            fprintf(stderr, "weft-bench: static engine: pthread_create failed: %s\n",
                    strerror(err));
            rc = -1;
            break;
        }
        started++;
    }
    if (rc == 0)
        static_block_run(&blocks[0]);
    for (unsigned t = 1; t < started; t++)
        pthread_join(tids[t], NULL);
    free(blocks);
    free(tids);
    return rc;
}
