/* tests/graph/test_tensor.c - weft_tensor: creation, copy and borrow, access and its
 * errors, and the counter-based random initialisation (same seed, same numbers, in any
 * order of filling; the documented ranges and moments of each distribution). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tests/util/tu_alloc.h"
#include "tests/util/tu_common.h"
#include "tests/util/tu_weft.h"
#include "weft.h"

static void test_tensor_create_is_zero_and_described(void **state)
{
    (void)state;
    const int64_t d[3] = {2, 3, 4};
    weft_tensor *t = NULL;
    OK(weft_tensor_create(WEFT_F64, 3, d, &t));
    assert_int_equal(weft_tensor_dtype(t), WEFT_F64);
    assert_int_equal(weft_tensor_ndim(t), 3);
    assert_int_equal(weft_tensor_dim(t, 1), 3);
    assert_int_equal(weft_tensor_dim(t, 3), -1);
    assert_int_equal(weft_tensor_numel(t), 24);
    for (size_t i = 0; i < 24; i++) {
        double v = -1;
        OK(weft_tensor_get(t, i, &v));
        assert_true(v == 0);
    }
    OK(weft_tensor_fill(t, 2.5));
    double v = 0;
    OK(weft_tensor_get(t, 23, &v));
    assert_true(v == 2.5);
    weft_tensor_destroy(t);
    weft_tensor_destroy(NULL);
    /* a scalar has one element */
    OK(weft_tensor_create(WEFT_I32, 0, NULL, &t));
    assert_int_equal(weft_tensor_numel(t), 1);
    weft_tensor_destroy(t);
}

/* A copy owns its data; a borrowed tensor sees the lender's writes and leaves the memory
 * to its owner. */
static void test_tensor_copy_and_borrow(void **state)
{
    (void)state;
    float data[6] = {1, 2, 3, 4, 5, 6};
    const int64_t d[2] = {2, 3};
    weft_tensor *copy = NULL, *borrow = NULL;
    OK(weft_tensor_from_data(WEFT_F32, 2, d, data, WEFT_COPY, &copy));
    OK(weft_tensor_from_data(WEFT_F32, 2, d, data, WEFT_BORROW, &borrow));
    assert_ptr_equal(weft_tensor_data(borrow), data);
    assert_ptr_not_equal(weft_tensor_data(copy), data);
    data[4] = 50;
    double v = 0;
    OK(weft_tensor_get(borrow, 4, &v));
    assert_true(v == 50);
    OK(weft_tensor_get(copy, 4, &v));
    assert_true(v == 5);
    float out[6];
    OK(weft_tensor_copy_to(copy, out, sizeof out));
    assert_true(out[5] == 6);
    FAILS(weft_tensor_copy_to(copy, out, sizeof out - 4), WEFT_ERR_INVALID_ARG);
    FAILS(weft_tensor_copy_from(copy, out, 4), WEFT_ERR_INVALID_ARG);
    weft_tensor_destroy(borrow); /* data[] is still ours */
    data[0] = 7;
    weft_tensor_destroy(copy);
}

static void test_tensor_bad_arguments(void **state)
{
    (void)state;
    const int64_t d[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, neg[2] = {2, -1};
    weft_tensor *t = NULL;
    FAILS(weft_tensor_create(WEFT_F32, 9, d, &t), WEFT_ERR_INVALID_ARG);
    tu_expect_message("ndim", "9 dimensions", NULL);
    FAILS(weft_tensor_create(WEFT_F32, 2, neg, &t), WEFT_ERR_INVALID_ARG);
    tu_expect_message("negative dim", "dimension 1", NULL);
    FAILS(weft_tensor_create((weft_dtype)7, 1, d, &t), WEFT_ERR_INVALID_ARG);
    FAILS(weft_tensor_create(WEFT_F32, 1, d, NULL), WEFT_ERR_INVALID_ARG);
    FAILS(weft_tensor_from_data(WEFT_F32, 1, d, NULL, WEFT_COPY, &t), WEFT_ERR_INVALID_ARG);
    assert_null(t);
    OK(weft_tensor_create(WEFT_I32, 1, d, &t));
    double v;
    FAILS(weft_tensor_get(t, 1, &v), WEFT_ERR_RANGE);
    FAILS(weft_tensor_init_random(t, WEFT_INIT_UNIFORM, 1, 0, 1), WEFT_ERR_INVALID_ARG);
    tu_expect_message("i32 init", "i32", NULL);
    weft_tensor_destroy(t);
    OK(weft_tensor_create(WEFT_F32, 1, d, &t));
    FAILS(weft_tensor_init_random(t, WEFT_INIT_UNIFORM, 1, 1, 0), WEFT_ERR_INVALID_ARG);
    FAILS(weft_tensor_init_random(t, WEFT_INIT_NORMAL, 1, 0, -1), WEFT_ERR_INVALID_ARG);
    FAILS(weft_tensor_init_random(t, (weft_init)9, 1, 0, 1), WEFT_ERR_INVALID_ARG);
    weft_tensor_destroy(t);
}

static weft_tensor *filled(weft_dtype dt, int64_t rows, int64_t cols, weft_init init,
                           uint64_t seed, double a, double b)
{
    const int64_t d[2] = {rows, cols};
    weft_tensor *t = NULL;
    OK(weft_tensor_create(dt, 2, d, &t));
    OK(weft_tensor_init_random(t, init, seed, a, b));
    return t;
}

/* Element i depends on (seed, i) only: the first elements of a small and of a large
 * tensor agree; the same seed repeats, another seed differs. */
static void test_tensor_random_is_counter_based(void **state)
{
    (void)state;
    weft_tensor *small = filled(WEFT_F64, 1, 100, WEFT_INIT_NORMAL, 42, 0, 1);
    weft_tensor *large = filled(WEFT_F64, 100, 1000, WEFT_INIT_NORMAL, 42, 0, 1);
    weft_tensor *again = filled(WEFT_F64, 1, 100, WEFT_INIT_NORMAL, 42, 0, 1);
    weft_tensor *other = filled(WEFT_F64, 1, 100, WEFT_INIT_NORMAL, 43, 0, 1);
    assert_memory_equal(weft_tensor_data(small), weft_tensor_data(large), 100 * sizeof(double));
    assert_memory_equal(weft_tensor_data(small), weft_tensor_data(again), 100 * sizeof(double));
    size_t same = 0;
    for (size_t i = 0; i < 100; i++)
        same += ((double *)weft_tensor_data(small))[i] == ((double *)weft_tensor_data(other))[i];
    assert_int_equal(same, 0);
    weft_tensor_destroy(small), weft_tensor_destroy(large);
    weft_tensor_destroy(again), weft_tensor_destroy(other);
}

/* Mean and standard deviation of a tensor's elements; also min and max. */
static void moments(weft_tensor *t, double *mean, double *sd, double *lo, double *hi)
{
    size_t n = weft_tensor_numel(t);
    double s = 0, s2 = 0;
    *lo = INFINITY, *hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double v;
        OK(weft_tensor_get(t, i, &v));
        s += v, s2 += v * v;
        if (v < *lo) *lo = v;
        if (v > *hi) *hi = v;
    }
    *mean = s / (double)n;
    *sd = sqrt(s2 / (double)n - *mean * *mean);
}

/* 200,000 samples: means within 5 standard errors, ranges as documented. */
static void test_tensor_random_distributions(void **state)
{
    (void)state;
    double mean, sd, lo, hi;
    weft_tensor *t = filled(WEFT_F64, 400, 500, WEFT_INIT_UNIFORM, 7, -1, 3);
    moments(t, &mean, &sd, &lo, &hi);
    assert_true(lo >= -1 && hi < 3 && lo < -0.99 && hi > 2.99);
    assert_true(fabs(mean - 1) < 5 * (4 / sqrt(12.0)) / sqrt(2e5));
    assert_true(fabs(sd - 4 / sqrt(12.0)) < 0.01);
    weft_tensor_destroy(t);

    t = filled(WEFT_F32, 400, 500, WEFT_INIT_NORMAL, 8, 2, 0.5);
    moments(t, &mean, &sd, &lo, &hi);
    assert_true(fabs(mean - 2) < 5 * 0.5 / sqrt(2e5));
    assert_true(fabs(sd - 0.5) < 0.005);
    weft_tensor_destroy(t);

    /* Xavier on [fan_in, fan_out] = [400, 500]: uniform in +-sqrt(6 / 900) */
    t = filled(WEFT_F64, 400, 500, WEFT_INIT_XAVIER, 9, 0, 0);
    moments(t, &mean, &sd, &lo, &hi);
    double bound = sqrt(6.0 / 900.0);
    assert_true(lo >= -bound && hi < bound && hi > 0.99 * bound);
    assert_true(fabs(sd - bound / sqrt(3.0)) < 0.002);
    weft_tensor_destroy(t);

    /* He on fan_in 400: normal with sd sqrt(2 / 400) */
    t = filled(WEFT_F64, 400, 500, WEFT_INIT_HE, 10, 0, 0);
    moments(t, &mean, &sd, &lo, &hi);
    assert_true(fabs(mean) < 5 * sqrt(2.0 / 400) / sqrt(2e5));
    assert_true(fabs(sd - sqrt(2.0 / 400)) < 0.001);
    weft_tensor_destroy(t);
}

/* Every allocation failing in turn: a clean WEFT_ERR_NOMEM, nothing leaked. */
static void test_tensor_allocation_failure_is_clean(void **state)
{
    (void)state;
    const int64_t d[2] = {30, 40};
    tu_alloc_install();
    for (uint64_t n = 1; n <= 2; n++) {
        tu_alloc_fail_at(n, 0);
        weft_tensor *t = NULL;
        FAILS(weft_tensor_create(WEFT_F32, 2, d, &t), WEFT_ERR_NOMEM);
        assert_null(t);
    }
    tu_alloc_fail_at(0, 0);
    tu_alloc_stats st = tu_alloc_get();
    assert_int_equal(st.allocs, st.frees);
    assert_int_equal(st.bytes_alloc, st.bytes_freed);
    assert_int_equal(st.bad_free, 0);
    tu_alloc_uninstall();
}

int main(void)
{
    tu_main_init(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tensor_create_is_zero_and_described),
        cmocka_unit_test(test_tensor_copy_and_borrow),
        cmocka_unit_test(test_tensor_bad_arguments),
        cmocka_unit_test(test_tensor_random_is_counter_based),
        cmocka_unit_test(test_tensor_random_distributions),
        cmocka_unit_test_teardown(test_tensor_allocation_failure_is_clean, tu_alloc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
