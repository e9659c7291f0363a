/* bench/paired.h - paired comparison of two engines measured in the same rounds.
 *
 * The harness measures every (engine, T) once per shuffled round, so block r of engine
 * a and block r of engine b ran within about a second of each other. On a shared machine
 * whose speed drifts by tens of percent over seconds, the ratio of the two blocks of one
 * round cancels most of that drift, while the ratio of the two overall medians does not.
 * This module gives the median of the per-round ratios with a distribution-free 95%
 * confidence interval (order statistics of the sign test), which is what the report
 * prints beside the ratio of medians.
 */
#ifndef WEFT_BENCH_PAIRED_H
#define WEFT_BENCH_PAIRED_H

#include <stddef.h>

#include "bench/measure.h"

typedef struct bench_paired {
    size_t pairs;    /* rounds compared; 0 = no comparison possible */
    double median;   /* median over rounds of (median of a's block) / (median of b's block) */
    double lo, hi;   /* 95% CI of that median; 0 when pairs < 6 (no such interval exists) */
    size_t a_faster; /* rounds whose ratio is below 1 */
} bench_paired;

/* Compares a and b, each holding `reps` samples per round in round order (the harness's
 * layout). Rounds that either side lacks are ignored. Returns 0, or -1 with a message on
 * stderr if reps is 0 or memory runs out (*out is then zeroed). */
int bench_paired_ratio(const bench_samples *a, const bench_samples *b, size_t reps,
                       bench_paired *out);

/* The 1-based rank k of the lower end of the distribution-free 95% CI of a median from n
 * samples: the largest k with P(Binomial(n, 1/2) <= k - 1) <= 0.025; the interval is
 * [x_(k), x_(n+1-k)] of the sorted samples. 0 when n < 6. */
size_t bench_median_ci_rank(size_t n);

#endif
