/* bench/workload_common.c - shared runner and report pieces (see workload_common.h). */
#include "bench/workload_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench/harness.h"

int bench_workload_fail(const char *workload, const char *label, const char *what,
                        weft_status st)
{
    fprintf(stderr, "weft-bench: workload %s %s: %s failed: %s: %s\n", workload, label, what,
            weft_status_name(st), weft_last_error());
    return -1;
}

int bench_run_rounds(const bench_options *o, size_t count, bench_block_fn block, void *ctx)
{
    bench_block *blocks = calloc(count, sizeof *blocks);
    if (blocks == NULL) {
        fprintf(stderr, "weft-bench: out of memory for the round plan\n");
        return -1;
    }
    for (size_t i = 0; i < count; i++)
        blocks[i] = (bench_block){i, 0};
    uint64_t rng = o->seed;
    bench_filter f = {o->filter, o->budget_s};
    int rc = 0;
    for (size_t round = 0; round < o->rounds && rc == 0; round++) {
        if (isatty(STDERR_FILENO))
            fprintf(stderr, "weft-bench: round %zu/%zu\n", round + 1, o->rounds);
        bench_blocks_shuffle(blocks, count, &rng);
        for (size_t b = 0; b < count && rc == 0; b++) {
            if (!o->filter)
                bench_sleep_s(0.02); /* let the previous pool's workers park */
            rc = block(ctx, blocks[b].result, &f);
        }
    }
    free(blocks);
    return rc;
}

weft_status bench_trace_pool_create(const bench_options *o, unsigned threads, weft_pool **out)
{
    weft_pool_options po = weft_pool_options_default();
    po.threads = threads;
    po.trace_path = o->trace_path;
    return weft_pool_create(&po, out);
}

void bench_append_threads(const bench_options *o, char *buf, size_t cap, size_t len)
{
    for (size_t t = 0; t < o->nthreads && len < cap; t++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%u", t ? "," : "", o->threads[t]);
}

unsigned bench_max_threads(const bench_options *o)
{
    unsigned tmax = 0;
    for (size_t t = 0; t < o->nthreads; t++)
        tmax = o->threads[t] > tmax ? o->threads[t] : tmax;
    return tmax;
}

const char *bench_fmt_time(double s, char *buf, size_t cap)
{
    if (s < 1e-3)
        snprintf(buf, cap, "%.3f us", s * 1e6);
    else if (s < 1.0)
        snprintf(buf, cap, "%.3f ms", s * 1e3);
    else
        snprintf(buf, cap, "%.3f s", s);
    return buf;
}

void bench_print_workload_title(const bench_options *o, const char *name)
{
    printf("weft-bench: workload %s(%" PRIu64 ")%s%s%s: ", name, o->size,
           o->size_label ? " [" : "", o->size_label ? o->size_label : "",
           o->size_label ? "]" : "");
}

void bench_print_filter_setup(const bench_options *o)
{
    printf("load filter %s", o->filter ? "on" : "off");
    if (o->filter)
        printf(" (budget %.0f s per configuration)", o->budget_s);
}

void bench_print_row_notes(int contaminated, unsigned discarded)
{
    if (contaminated)
        printf(" contaminated");
    if (discarded)
        printf(" %u-dirty-reps-redone", discarded);
    printf("\n");
}
