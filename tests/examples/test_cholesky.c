/* tests/examples/test_cholesky.c - the tiled Cholesky example (examples/cholesky_lib.c).
 *
 * The factor must be right (residual), and, because every tile kernel is sequential and
 * the access-inferred dependencies fix the order of the updates of each tile, the weft
 * factor must be bit-identical for every thread count and to the OpenMP-tasks version.
 * The graph must have the task and edge counts the algorithm implies. Bad input and a
 * matrix that is not positive definite must give clean errors, and the pool must stay
 * usable after a failed factorisation.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cblas.h>
#include <cmocka.h>

#include "examples/cholesky_lib.h"
#include "tests/util/tu_common.h"
#include "weft.h"

#define TOL 1e-12

/* libgomp is not built with ThreadSanitizer, so TSan cannot see the synchronisation of
 * OpenMP tasks and reports false races in them: under TSan the OpenMP baseline is not
 * run (weft, which is instrumented, is). */
#if defined(__SANITIZE_THREAD__)
#define OMP_UNDER_TSAN 1
#else
#define OMP_UNDER_TSAN 0
#endif

/* The sizes every numerical case runs: a power-of-two grid and an odd tile size. */
static const struct {
    size_t n, nb;
} sizes[] = {{256, 64}, {300, 60}};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static weft_pool *pool_new(unsigned threads) {
    weft_pool_options o = weft_pool_options_default();
    o.threads = threads;
    weft_pool *p = NULL;
    assert_int_equal(weft_pool_create(&o, &p), WEFT_OK);
    assert_non_null(p);
    return p;
}

/* 1 if the lower tiles of x and y hold the same bits. */
static int same_bits(const chol_matrix *x, const chol_matrix *y) {
    if (x->n != y->n || x->nb != y->nb)
        return 0;
    for (size_t i = 0; i < x->nt; i++)
        for (size_t j = 0; j <= i; j++)
            if (memcmp(x->tiles[i * x->nt + j], y->tiles[i * y->nt + j],
                       x->nb * x->nb * sizeof(double)) != 0)
                return 0;
    return 1;
}

/* Factorises a copy of `orig` with weft on `threads` threads into *out (created here). */
static void weft_factor(const chol_matrix *orig, unsigned threads, chol_matrix *out) {
    assert_int_equal(chol_matrix_create(out, orig->n, orig->nb, 0), 0);
    chol_matrix_copy(out, orig);
    weft_pool *pool = pool_new(threads);
    double build_s = -1.0, run_s = -1.0;
    assert_int_equal(chol_factor_weft(pool, out, &build_s, &run_s), WEFT_OK);
    assert_true(build_s >= 0.0 && run_s >= 0.0);
    weft_pool_destroy(pool);
}

/* The seeded matrix depends on (n, seed) only: not on the tile size, and it changes with
 * the seed. */
static void test_cholesky_matrix_deterministic(void **state) {
    (void)state;
    chol_matrix a, b, c;
    assert_int_equal(chol_matrix_create(&a, 128, 32, 7), 0);
    assert_int_equal(chol_matrix_create(&b, 128, 64, 7), 0);
    assert_int_equal(chol_matrix_create(&c, 128, 32, 8), 0);
    for (size_t r = 0; r < 128; r++)
        for (size_t col = 0; col <= r; col++) {
            double va = a.tiles[(r / 32) * a.nt + col / 32][(col % 32) * 32 + r % 32];
            double vb = b.tiles[(r / 64) * b.nt + col / 64][(col % 64) * 64 + r % 64];
            assert_true(va == vb);
        }
    assert_false(same_bits(&a, &c));
    chol_matrix_destroy(&a);
    chol_matrix_destroy(&b);
    chol_matrix_destroy(&c);
}

/* weft at 1, 2 and 7 threads: residual below 1e-12 and the same bits as 1 thread,
 * several runs each to give races a chance. */
static void test_cholesky_weft_matches_sequential(void **state) {
    (void)state;
    static const unsigned threads[] = {2, 7};
    for (size_t s = 0; s < NSIZES; s++) {
        chol_matrix a, ref;
        assert_int_equal(chol_matrix_create(&a, sizes[s].n, sizes[s].nb, 42), 0);
        weft_factor(&a, 1, &ref);
        double res = chol_residual(&a, &ref);
        assert_true(res < TOL);
        for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
            for (int rep = 0; rep < 3; rep++) {
                chol_matrix l;
                weft_factor(&a, threads[t], &l);
                assert_true(chol_residual(&a, &l) < TOL);
                assert_true(same_bits(&l, &ref));
                chol_matrix_destroy(&l);
            }
        }
        chol_matrix_destroy(&ref);
        chol_matrix_destroy(&a);
    }
}

/* A pool runs several factorisations in a row (a graph is built and destroyed in each). */
static void test_cholesky_weft_pool_reused(void **state) {
    (void)state;
    chol_matrix a, l;
    assert_int_equal(chol_matrix_create(&a, 256, 32, 3), 0);
    assert_int_equal(chol_matrix_create(&l, 256, 32, 3), 0);
    weft_pool *pool = pool_new(2);
    for (int rep = 0; rep < 5; rep++) {
        chol_matrix_copy(&l, &a);
        assert_int_equal(chol_factor_weft(pool, &l, NULL, NULL), WEFT_OK);
        assert_true(chol_residual(&a, &l) < TOL);
    }
    weft_pool_destroy(pool);
    chol_matrix_destroy(&l);
    chol_matrix_destroy(&a);
}

/* The OpenMP-tasks version does the same operations in the same order per tile: same
 * bits as weft on one thread. */
static void test_cholesky_omp_matches_weft(void **state) {
    (void)state;
    if (OMP_UNDER_TSAN)
        skip();
    for (size_t s = 0; s < NSIZES; s++) {
        chol_matrix a, ref, l;
        assert_int_equal(chol_matrix_create(&a, sizes[s].n, sizes[s].nb, 5), 0);
        weft_factor(&a, 1, &ref);
        assert_int_equal(chol_matrix_create(&l, a.n, a.nb, 0), 0);
        for (int threads = 1; threads <= 3; threads++) {
            chol_matrix_copy(&l, &a);
            assert_int_equal(chol_factor_omp(&l, threads), 0);
            assert_true(chol_residual(&a, &l) < TOL);
            assert_true(same_bits(&l, &ref));
        }
        chol_matrix_destroy(&l);
        chol_matrix_destroy(&ref);
        chol_matrix_destroy(&a);
    }
}

/* The summed kernel time is positive and fits in threads x the run's wall time, for both
 * engines (a kernel counted twice or time counted outside the kernels breaks the bound
 * at one thread, where kernels fill most of the run). */
static void test_cholesky_kernel_time(void **state) {
    (void)state;
    chol_matrix a, l;
    assert_int_equal(chol_matrix_create(&a, 512, 64, 3), 0);
    assert_int_equal(chol_matrix_create(&l, 512, 64, 3), 0);
    for (unsigned threads = 1; threads <= 4; threads *= 2) {
        weft_pool *pool = pool_new(threads);
        double build_s = 0.0, run_s = 0.0, kernel_s = -1.0;
        chol_matrix_copy(&l, &a);
        assert_int_equal(chol_factor_weft_ex(pool, &l, &build_s, &run_s, NULL, &kernel_s),
                         WEFT_OK);
        assert_true(kernel_s > 0.0);
        assert_true(kernel_s <= (double)threads * run_s * (1.0 + 1e-6) + 1e-6);
        assert_true(chol_residual(&a, &l) < TOL);
        weft_pool_destroy(pool);
        if (OMP_UNDER_TSAN)
            continue;
        chol_matrix_copy(&l, &a);
        kernel_s = -1.0;
        uint64_t t0 = tu_now_ns();
        assert_int_equal(chol_factor_omp_ex(&l, (int)threads, &kernel_s), 0);
        double wall = 1e-9 * (double)(tu_now_ns() - t0);
        assert_true(kernel_s > 0.0);
        assert_true(kernel_s <= (double)threads * wall * (1.0 + 1e-6) + 1e-6);
        assert_true(chol_residual(&a, &l) < TOL);
    }
    chol_matrix_destroy(&l);
    chol_matrix_destroy(&a);
}

/* LAPACKE_dpotrf (blocked differently, so only the residual is compared), and OpenBLAS is
 * left at one thread afterwards. */
static void test_cholesky_lapacke_residual(void **state) {
    (void)state;
    for (size_t s = 0; s < NSIZES; s++) {
        chol_matrix a, l;
        assert_int_equal(chol_matrix_create(&a, sizes[s].n, sizes[s].nb, 9), 0);
        assert_int_equal(chol_matrix_create(&l, a.n, a.nb, 0), 0);
        for (int threads = 1; threads <= 2; threads++) {
            chol_matrix_copy(&l, &a);
            assert_int_equal(chol_factor_lapacke(&l, threads), 0);
            assert_true(chol_residual(&a, &l) < TOL);
            assert_int_equal(openblas_get_num_threads(), 1);
        }
        chol_matrix_destroy(&l);
        chol_matrix_destroy(&a);
    }
}

/* Tasks: nt POTRF + nt(nt-1)/2 TRSM + as many SYRK + C(nt,3) GEMM. Edges, from the
 * accesses: POTRF(k>0) after SYRK(k,k-1); TRSM(i,k) after POTRF(k) and, for k>0, after
 * GEMM(i,k,k-1); SYRK(i,k) after TRSM(i,k) and, for k>0, SYRK(i,k-1); GEMM(i,j,k) after
 * TRSM(i,k), TRSM(j,k) and, for k>0, GEMM(i,j,k-1). Levels: POTRF(k) is on level 3k, so
 * there are 3nt-2. */
static void test_cholesky_graph_shape(void **state) {
    (void)state;
    weft_pool *pool = pool_new(2);
    for (size_t nt = 1; nt <= 9; nt++) {
        size_t pairs = nt * (nt - 1) / 2;                       /* (i, k), i > k */
        size_t pairs_k1 = nt < 3 ? 0 : (nt - 1) * (nt - 2) / 2; /* the same with k > 0 */
        size_t triples = nt < 3 ? 0 : nt * (nt - 1) * (nt - 2) / 6; /* (i, j, k) */
        size_t triples_k1 = nt < 4 ? 0 : (nt - 1) * (nt - 2) * (nt - 3) / 6;
        size_t tasks = nt + 2 * pairs + triples;
        size_t edges = (nt - 1) + 2 * (pairs + pairs_k1) + 2 * triples + triples_k1;

        chol_matrix a, l;
        assert_int_equal(chol_matrix_create(&a, nt * 16, 16, 1), 0);
        assert_int_equal(chol_matrix_create(&l, nt * 16, 16, 1), 0);
        weft_graph_stats gs;
        memset(&gs, 0xff, sizeof gs);
        assert_int_equal(chol_factor_weft_ex(pool, &l, NULL, NULL, &gs, NULL), WEFT_OK);
        assert_int_equal(chol_task_count(nt), tasks);
        assert_int_equal(gs.tasks, tasks);
        assert_int_equal(gs.edges, edges);
        assert_int_equal(gs.levels, 3 * nt - 2);
        assert_int_equal(gs.sources, 1);
        double nb3 = 16.0 * 16 * 16;
        /* cost hints: potrf 0.9, trsm 3, syrk 1.2, gemm 2 nb^3 (relative kernel times) */
        double work = nb3 * (0.9 * nt + 4.2 * (double)pairs + 2.0 * (double)triples);
        assert_true(fabs(gs.work - work) <= 1e-9 * work);
        /* span may carry float rounding of the cost hints (1e-7 relative). */
        assert_true(gs.span > 0.0 && gs.span <= gs.work * (1.0 + 1e-6));
        assert_true(gs.parallelism >= 1.0 - 1e-6);
        assert_true(chol_residual(&a, &l) < TOL);
        chol_matrix_destroy(&l);
        chol_matrix_destroy(&a);
    }
    weft_pool_destroy(pool);
}

/* A matrix that is not positive definite fails the POTRF task: a clear status naming the
 * task, dependents skipped, and the pool still factorises the next matrix. */
static void test_cholesky_not_positive_definite_fails(void **state) {
    (void)state;
    chol_matrix a, l;
    assert_int_equal(chol_matrix_create(&a, 192, 64, 2), 0);
    assert_int_equal(chol_matrix_create(&l, 192, 64, 2), 0);
    l.tiles[1 * l.nt + 1][0] = -1.0; /* A(64,64) < 0: potrf(1) fails */
    weft_pool *pool = pool_new(2);
    assert_int_equal(chol_factor_weft(pool, &l, NULL, NULL), WEFT_ERR_TASK_FAILED);
    assert_non_null(strstr(weft_last_error(), "potrf(1)"));

    if (!OMP_UNDER_TSAN) {
        chol_matrix_copy(&l, &a);
        l.tiles[1 * l.nt + 1][0] = -1.0;
        assert_int_not_equal(chol_factor_omp(&l, 2), 0);
    }
    chol_matrix_copy(&l, &a);
    l.tiles[1 * l.nt + 1][0] = -1.0;
    assert_int_not_equal(chol_factor_lapacke(&l, 2), 0);
    assert_int_equal(openblas_get_num_threads(), 1);

    chol_matrix_copy(&l, &a);
    assert_int_equal(chol_factor_weft(pool, &l, NULL, NULL), WEFT_OK);
    assert_true(chol_residual(&a, &l) < TOL);
    weft_pool_destroy(pool);
    chol_matrix_destroy(&l);
    chol_matrix_destroy(&a);
}

/* Bad arguments are refused with an error, never an abort. */
static void test_cholesky_bad_input(void **state) {
    (void)state;
    chol_matrix m;
    assert_int_equal(chol_matrix_create(&m, 0, 16, 1), -1);
    chol_matrix_destroy(&m);
    assert_int_equal(chol_matrix_create(&m, 100, 0, 1), -1);
    chol_matrix_destroy(&m);
    assert_int_equal(chol_matrix_create(&m, 100, 16, 1), -1);
    chol_matrix_destroy(&m);
    assert_int_equal(chol_matrix_create(NULL, 64, 16, 1), -1);
    chol_matrix_destroy(NULL);

    assert_int_equal(chol_matrix_create(&m, 64, 16, 1), 0);
    weft_pool *pool = pool_new(1);
    assert_int_equal(chol_factor_weft(NULL, &m, NULL, NULL), WEFT_ERR_INVALID_ARG);
    assert_int_equal(chol_factor_weft(pool, NULL, NULL, NULL), WEFT_ERR_INVALID_ARG);
    assert_int_equal(chol_factor_omp(NULL, 1), -1);
    assert_int_equal(chol_factor_omp(&m, -1), -1);
    assert_int_equal(chol_factor_lapacke(NULL, 1), -1);
    assert_int_equal(chol_factor_lapacke(&m, -1), -1);
    assert_true(isnan(chol_residual(NULL, &m)));
    chol_matrix other;
    assert_int_equal(chol_matrix_create(&other, 64, 32, 1), 0);
    assert_true(isnan(chol_residual(&m, &other)));
    chol_matrix_destroy(&other);
    weft_pool_destroy(pool);
    chol_matrix_destroy(&m);
}

static void test_cholesky_flops(void **state) {
    (void)state;
    assert_true(fabs(chol_flops(1) - 1.0) < 1e-12);
    assert_true(fabs(chol_flops(3) - (9.0 + 4.5 + 0.5)) < 1e-12);
}

int main(void) {
    openblas_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cholesky_flops),
        cmocka_unit_test(test_cholesky_matrix_deterministic),
        cmocka_unit_test(test_cholesky_weft_matches_sequential),
        cmocka_unit_test(test_cholesky_weft_pool_reused),
        cmocka_unit_test(test_cholesky_omp_matches_weft),
        cmocka_unit_test(test_cholesky_lapacke_residual),
        cmocka_unit_test(test_cholesky_kernel_time),
        cmocka_unit_test(test_cholesky_graph_shape),
        cmocka_unit_test(test_cholesky_not_positive_definite_fails),
        cmocka_unit_test(test_cholesky_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
