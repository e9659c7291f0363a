/* bench/paired.c - paired per-round ratios of two engines (see paired.h). */
#include "bench/paired.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t bench_median_ci_rank(size_t n)
{
    /* Cumulative binomial(n, 1/2) probabilities, each term from the previous one:
     * P(X = i) = P(X = i - 1) * (n - i + 1) / i, starting at 2^-n (exp2 of a negative
     * integer: exact down to the smallest subnormal, and n < 1074 here in practice). */
    double term = exp2(-(double)n), cdf = 0.0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            term = term * (double)(n - i + 1) / (double)i;
        cdf += term; /* P(X <= i) */
        if (cdf > 0.025)
            break;
        k = i + 1;
    }
    return k;
}

static double block_median(const double *v, size_t reps, double *tmp)
{
    memcpy(tmp, v, reps * sizeof *tmp);
    return bench_median_sort(tmp, reps);
}

int bench_paired_ratio(const bench_samples *a, const bench_samples *b, size_t reps,
                       bench_paired *out)
{
    memset(out, 0, sizeof *out);
    if (reps == 0) {
        fprintf(stderr, "weft-bench: paired comparison needs reps >= 1\n");
        return -1;
    }
    size_t rounds = (a->n < b->n ? a->n : b->n) / reps;
    if (rounds == 0)
        return 0;
    double *ratio = malloc(rounds * sizeof *ratio);
    double *tmp = malloc(reps * sizeof *tmp);
    if (ratio == NULL || tmp == NULL) {
        free(ratio);
        free(tmp);
        fprintf(stderr, "weft-bench: out of memory for a paired comparison\n");
        return -1;
    }
    size_t used = 0;
    for (size_t r = 0; r < rounds; r++) {
        double ma = block_median(a->v + r * reps, reps, tmp);
        double mb = block_median(b->v + r * reps, reps, tmp);
        if (!(mb > 0))
            continue;
        ratio[used] = ma / mb;
        out->a_faster += ratio[used] < 1.0;
        used++;
    }
    if (used > 0) {
        out->pairs = used;
        out->median = bench_median_sort(ratio, used); /* sorts ratio */
        size_t k = bench_median_ci_rank(used);
        if (k > 0) {
            out->lo = ratio[k - 1];
            out->hi = ratio[used - k];
        }
    }
    free(ratio);
    free(tmp);
    return 0;
}
