/* tests/bench/test_paired.c - the paired per-round comparison of bench/paired.c, and
 * bench_measure2 keeping a second value per repetition in step with the seconds.
 *
 * The CI ranks are checked against the published sign-test table and against a direct
 * binomial sum; the ratios against values computed here from the round layout the
 * harness produces (reps samples per round, rounds in order).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/measure.h"
#include "bench/paired.h"

/* Ranks of the 95% distribution-free CI of a median (sign test), from the standard
 * tables (e.g. Conover, Practical Nonparametric Statistics, table A3). */
static void test_paired_ci_rank_table(void **state)
{
    (void)state;
    static const size_t table[][2] = {{0, 0}, {1, 0}, {5, 0}, {6, 1},   {7, 1},   {10, 2},
                                      {15, 4}, {20, 6}, {30, 10}, {60, 22}, {100, 40}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        assert_int_equal(bench_median_ci_rank(table[i][0]), table[i][1]);
}

/* P(Binomial(n, 1/2) <= k - 1) <= 0.025 < P(... <= k) for every n up to 200, with the
 * cumulative sum computed here in long double from binomial coefficients. */
static void test_paired_ci_rank_definition(void **state)
{
    (void)state;
    for (size_t n = 6; n <= 200; n++) {
        size_t k = bench_median_ci_rank(n);
        assert_true(k >= 1 && k <= n / 2);
        long double coef = 1.0L, below = 0.0L; /* C(n, i), P(X <= k - 1) * 2^n */
        for (size_t i = 0; i < k; i++) {
            below += coef;
            coef = coef * (long double)(n - i) / (long double)(i + 1);
        }
        long double scale = ldexpl(1.0L, -(int)n);
        assert_true(below * scale <= 0.025L);
        assert_true((below + coef) * scale > 0.025L); /* adding P(X = k) crosses 0.025 */
    }
}

/* cmocka 1.1.6 (Debian 12) has no assert_double_equal. */
#define assert_near(x, y) assert_true(fabs((double)(x) - (double)(y)) <= 1e-12)

static void push_all(bench_samples *s, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(bench_samples_push(s, v[i]), 0);
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Three samples per round whose median is the round's value; the comparison must use
 * the per-round medians and pair round r of a with round r of b, even when the machine
 * speed (the round's scale) varies tenfold across rounds. */
static void test_paired_ratio_by_round(void **state)
{
    (void)state;
    enum { REPS = 3, ROUNDS = 15 };
    bench_samples a = {0}, b = {0};
    double expect[ROUNDS];
    size_t faster = 0;
    for (size_t r = 0; r < ROUNDS; r++) {
        double scale = 1.0 + 9.0 * (double)((r * 7) % ROUNDS) / ROUNDS; /* drift */
        double ratio = 0.9 + 0.02 * (double)r;                           /* 0.90 .. 1.18 */
        double av = scale * ratio, bv = scale;
        double ab[REPS] = {av * 3.0, av, av * 0.25}, bb[REPS] = {bv * 0.5, bv * 4.0, bv};
        push_all(&a, ab, REPS);
        push_all(&b, bb, REPS);
        expect[r] = av / bv;
        faster += expect[r] < 1.0;
    }
    bench_paired p;
    assert_int_equal(bench_paired_ratio(&a, &b, REPS, &p), 0);
    qsort(expect, ROUNDS, sizeof expect[0], cmp_double);
    assert_int_equal(p.pairs, ROUNDS);
    assert_near(p.median, expect[ROUNDS / 2]);
    assert_near(p.lo, expect[3]);          /* rank 4 of 15 */
    assert_near(p.hi, expect[ROUNDS - 4]); /* rank 12 of 15 */
    assert_int_equal(p.a_faster, faster);
    assert_int_equal(faster, 5); /* ratios 0.90 .. 0.98 */
    bench_samples_free(&a);
    bench_samples_free(&b);
}

/* Rounds only one side has are left out; a round whose baseline median is 0 is skipped;
 * fewer than 6 rounds give no interval; reps = 0 is refused. */
static void test_paired_ratio_edges(void **state)
{
    (void)state;
    bench_samples a = {0}, b = {0};
    const double av[] = {2, 4, 6, 8, 10}, bv[] = {1, 0, 2};
    push_all(&a, av, 5);
    push_all(&b, bv, 3);
    bench_paired p;
    assert_int_equal(bench_paired_ratio(&a, &b, 1, &p), 0);
    assert_int_equal(p.pairs, 2); /* rounds 0 and 2; round 1 has a zero baseline */
    assert_near(p.median, 2.5); /* ratios 2 and 3 */
    assert_true(p.lo == 0 && p.hi == 0);
    assert_int_equal(p.a_faster, 0);

    bench_samples empty = {0};
    assert_int_equal(bench_paired_ratio(&a, &empty, 1, &p), 0);
    assert_int_equal(p.pairs, 0);
    assert_int_equal(bench_paired_ratio(&a, &b, 0, &p), -1);
    assert_int_equal(p.pairs, 0);
    bench_samples_free(&a);
    bench_samples_free(&b);
}

static int rep_counting(void *ctx, double *seconds, double *aux)
{
    int *calls = ctx;
    ++*calls;
    *seconds = (double)*calls;
    *aux = 10.0 * (double)*calls;
    return *calls == 99 ? -1 : 0; /* call 99 fails */
}

/* Without the filter every repetition is kept; aux values land in step with the seconds,
 * a NULL aux list drops them, and a failing repetition ends the block with -1. */
static void test_measure2_keeps_aux_in_step(void **state)
{
    (void)state;
    bench_filter off = {0, 0.0};
    bench_filter_state fs = {0};
    bench_samples sec = {0}, aux = {0};
    int calls = 0;
    assert_int_equal(bench_measure2(&off, &fs, 4, rep_counting, &calls, &sec, &aux), 0);
    assert_int_equal(sec.n, 4);
    assert_int_equal(aux.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_near(sec.v[i], (double)(i + 1));
        assert_near(aux.v[i], 10.0 * (double)(i + 1));
    }
    assert_int_equal(bench_measure2(&off, &fs, 2, rep_counting, &calls, &sec, NULL), 0);
    assert_int_equal(sec.n, 6);
    assert_int_equal(aux.n, 4);
    calls = 97;
    assert_int_equal(bench_measure2(&off, &fs, 5, rep_counting, &calls, &sec, &aux), -1);
    assert_int_equal(calls, 99);
    bench_samples_free(&sec);
    bench_samples_free(&aux);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paired_ci_rank_table),
        cmocka_unit_test(test_paired_ci_rank_definition),
        cmocka_unit_test(test_paired_ratio_by_round),
        cmocka_unit_test(test_paired_ratio_edges),
        cmocka_unit_test(test_measure2_keeps_aux_in_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
