/* tests/util/tu_alloc.h - a counting, failing allocator hook for weft_allocator_set.
 *
 * Counts every allocation and free weft makes (count and bytes, with atomics: weft calls it
 * from any thread), checks that free receives the size that was asked for and the memory
 * is aligned as asked, and can fail on demand: the Nth allocation after tu_alloc_fail_at
 * returns NULL (once, or that one and every later one when sticky). Blocks carry a small
 * header (size, alignment, magic) in front of the user pointer.
 *
 * Thread safety: the hook functions are thread-safe; install/uninstall follow the rule of
 * weft_allocator_set (no weft object may exist); the other calls are made from the test's
 * main thread.
 */
#ifndef WEFT_TESTS_TU_ALLOC_H
#define WEFT_TESTS_TU_ALLOC_H

#include <stdint.h>

typedef struct tu_alloc_stats {
    uint64_t attempts;      /* calls to alloc, failed ones included */
    uint64_t allocs;        /* successful allocations */
    uint64_t frees;         /* calls to free with a non-NULL pointer */
    uint64_t bytes_alloc;   /* sum of sizes allocated */
    uint64_t bytes_freed;   /* sum of sizes passed to free */
    uint64_t failed;        /* allocations failed on purpose */
    uint64_t bad_free;      /* free with a size different from the allocation's, or a
                               pointer that this hook did not return */
    uint64_t bad_align;     /* alignment not a power of two or above 4096 */
} tu_alloc_stats;

/* Installs the hook with zeroed counters and no failure armed. */
void tu_alloc_install(void);
/* Restores weft's default allocator. */
void tu_alloc_uninstall(void);
/* Zeroes the counters (call while weft allocates nothing concurrently). */
void tu_alloc_reset(void);
/* From now on, the nth allocation (1-based) fails; sticky: that one and all after it.
 * n == 0 disarms. Resets the attempt count used for n. */
void tu_alloc_fail_at(uint64_t n, int sticky);
tu_alloc_stats tu_alloc_get(void);

/* A cmocka teardown for tests that install the hook: uninstalls it, so that a test that
 * failed half-way leaves neither the hook nor an armed failure to the next one. 0. */
int tu_alloc_teardown(void **state);

#endif
