/* examples/cholesky_lib.c - tiled lower Cholesky on weft, on OpenMP tasks and on
 * LAPACKE, plus the test matrix and the residual check (see cholesky_lib.h).
 *
 * The algorithm is the right-looking tiled Cholesky of Buttari, Langou, Kurzak and
 * Dongarra ("A class of parallel tiled linear algebra algorithms for multicore
 * architectures", Parallel Computing 35, 2009). For an nt x nt grid of nb x nb tiles:
 *
 *   for k in 0..nt-1:
 *     POTRF(A_kk)                          A_kk = L_kk L_kk^T
 *     for i in k+1..nt-1: TRSM(A_kk, A_ik)  A_ik = A_ik L_kk^-T
 *     for i in k+1..nt-1:
 *       SYRK(A_ik, A_ii)                    A_ii -= A_ik A_ik^T
 *       for j in k+1..i-1: GEMM(A_ik, A_jk, A_ij)   A_ij -= A_ik A_jk^T
 *
 * Every kernel is one sequential OpenBLAS/LAPACKE call on whole tiles, so the only
 * parallelism is between tiles. The weft and OpenMP versions add the tasks in exactly
 * this order and derive all dependencies from the tiles each task reads and writes; the
 * updates of any one tile therefore happen in the same order as in a sequential run, and
 * the factor is bit-identical for every thread count and for both engines.
 *
 * OpenBLAS must run single-threaded inside tasks (nested BLAS threads would oversubscribe
 * the cores and make the results depend on the split); the task-parallel versions set
 * openblas_set_num_threads(1) themselves.
 */
#include "examples/cholesky_lib.h"

#include <cblas.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------------------ */

static uint64_t chol_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double chol_now_s(void) {
    return 1e-9 * (double)chol_now_ns();
}

/* splitmix64 (Steele, Lea, Flood 2014) used as a hash: a well-mixed 64-bit value of x. */
static uint64_t chol_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Element (r, c), r >= c, of the seeded test matrix. Off-diagonal entries are uniform in
 * [-1, 1); the diagonal is n. Every row's off-diagonal absolute sum is below n - 1, so the
 * symmetric matrix is strictly diagonally dominant with a positive diagonal, hence SPD,
 * and its eigenvalues lie in (1, 2n - 1) (Gershgorin), in practice n +- O(sqrt(n)): a
 * well-conditioned matrix whose factor has a residual near machine precision.
 * The value depends only on (seed, n, r, c), not on the tile size. */
static double chol_element(unsigned seed, size_t n, size_t r, size_t c) {
    if (r == c)
        return (double)n;
    uint64_t h = chol_mix64(chol_mix64((uint64_t)seed) ^ ((uint64_t)r * (uint64_t)n + c));
    return (double)(h >> 11) * 0x1.0p-52 - 1.0; /* 53 random bits in [0, 2) - 1 */
}

/* Checks that m looks like a matrix made by chol_matrix_create and that its sizes fit the
 * int arguments of BLAS/LAPACKE. 0 if usable; otherwise prints why (naming `who`) and
 * returns -1. */
static int chol_matrix_check(const chol_matrix *m, const char *who) {
    if (m == NULL || m->tiles == NULL || m->nb == 0 || m->nt == 0 || m->n != m->nb * m->nt) {
        fprintf(stderr, "%s: not a valid tiled matrix (NULL or n != nb * nt)\n", who);
        return -1;
    }
    if (m->n > INT_MAX) {
        fprintf(stderr, "%s: order %zu is too large for BLAS int arguments\n", who, m->n);
        return -1;
    }
    return 0;
}

/* ---- the matrix --------------------------------------------------------------------- */

int chol_matrix_create(chol_matrix *m, size_t n, size_t nb, unsigned seed) {
    if (m == NULL) {
        fprintf(stderr, "chol_matrix_create: NULL matrix\n");
        return -1;
    }
    memset(m, 0, sizeof *m);
    if (n == 0 || nb == 0 || n % nb != 0) {
        fprintf(stderr, "chol_matrix_create: n (%zu) must be a positive multiple of the tile "
                        "size (%zu)\n", n, nb);
        return -1;
    }
    /* n <= INT_MAX for BLAS; n * n elements must also be addressable (lapacke, residual). */
    if (n > INT_MAX || n > SIZE_MAX / sizeof(double) / n) {
        fprintf(stderr, "chol_matrix_create: order %zu is too large\n", n);
        return -1;
    }
    size_t nt = n / nb;
    m->n = n;
    m->nb = nb;
    m->nt = nt;
    m->tiles = calloc(nt * nt, sizeof *m->tiles);
    if (m->tiles == NULL)
        goto nomem;
    for (size_t i = 0; i < nt; i++) {
        for (size_t j = 0; j <= i; j++) {
            void *p = NULL;
            if (posix_memalign(&p, 64, nb * nb * sizeof(double)) != 0)
                goto nomem;
            double *t = p;
            m->tiles[i * nt + j] = t;
            /* Column-major tile: element (r, c) of the tile at t[c * nb + r]. The upper part
             * of a diagonal tile mirrors its lower part (never read by the kernels). */
            for (size_t c = 0; c < nb; c++) {
                for (size_t r = 0; r < nb; r++) {
                    size_t gr = i * nb + r, gc = j * nb + c;
                    t[c * nb + r] = gr >= gc ? chol_element(seed, n, gr, gc)
                                             : chol_element(seed, n, gc, gr);
                }
            }
        }
    }
    return 0;
nomem:
    fprintf(stderr, "chol_matrix_create: out of memory for a %zu x %zu matrix\n", n, n);
    chol_matrix_destroy(m);
    return -1;
}

void chol_matrix_copy(chol_matrix *dst, const chol_matrix *src) {
    if (dst == NULL || src == NULL || dst->tiles == NULL || src->tiles == NULL ||
        dst->n != src->n || dst->nb != src->nb)
        return;
    size_t nt = src->nt, bytes = src->nb * src->nb * sizeof(double);
    for (size_t i = 0; i < nt; i++)
        for (size_t j = 0; j <= i; j++)
            memcpy(dst->tiles[i * nt + j], src->tiles[i * nt + j], bytes);
}

/* Frees the tiles and the pointer array and zeroes *m; safe on a zeroed or partially
 * created matrix (unallocated tiles are NULL) and on NULL. */
void chol_matrix_destroy(chol_matrix *m) {
    if (m == NULL)
        return;
    if (m->tiles != NULL) {
        for (size_t i = 0; i < m->nt * m->nt; i++)
            free(m->tiles[i]);
        free(m->tiles);
    }
    memset(m, 0, sizeof *m);
}

/* ---- the tile kernels ---------------------------------------------------------------- */

/* One task's operands: `c` is the tile the task updates (read-write), `a` and `b` the
 * tiles it only reads (NULL where the kernel has fewer operands). */
typedef struct chol_task {
    const double *a, *b;
    double *c;
    int nb;
    _Atomic uint64_t *kernel_ns; /* the factorisation's kernel-time sum, or NULL */
} chol_task;

/* Adds the time since t0 to the task's kernel-time sum. Relaxed: the sum is read only
 * after the factorisation has ended (weft_graph_run_ex returned, or the OpenMP parallel
 * region's closing barrier), which orders every addition before the read. */
static void chol_kernel_done(const chol_task *t, uint64_t t0) {
    if (t->kernel_ns != NULL)
        atomic_fetch_add_explicit(t->kernel_ns, chol_now_ns() - t0, memory_order_relaxed);
}

/* A_kk = L_kk L_kk^T in place (lower). Non-zero (LAPACK info) if A_kk is not positive
 * definite, which fails the task and skips its dependents. */
static int chol_kernel_potrf(void *arg) {
    chol_task *t = arg;
    uint64_t t0 = chol_now_ns();
    int info = (int)LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', t->nb, t->c, t->nb);
    chol_kernel_done(t, t0);
    return info;
}

/* A_ik = A_ik L_kk^-T, a = L_kk, c = A_ik. */
static int chol_kernel_trsm(void *arg) {
    chol_task *t = arg;
    uint64_t t0 = chol_now_ns();
    cblas_dtrsm(CblasColMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, t->nb, t->nb,
                1.0, t->a, t->nb, t->c, t->nb);
    chol_kernel_done(t, t0);
    return 0;
}

/* A_ii -= A_ik A_ik^T (lower part), a = A_ik, c = A_ii. */
static int chol_kernel_syrk(void *arg) {
    chol_task *t = arg;
    uint64_t t0 = chol_now_ns();
    cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, t->nb, t->nb, -1.0, t->a, t->nb, 1.0,
                t->c, t->nb);
    chol_kernel_done(t, t0);
    return 0;
}

/* A_ij -= A_ik A_jk^T, a = A_ik, b = A_jk, c = A_ij. */
static int chol_kernel_gemm(void *arg) {
    chol_task *t = arg;
    uint64_t t0 = chol_now_ns();
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, t->nb, t->nb, t->nb, -1.0, t->a,
                t->nb, t->b, t->nb, 1.0, t->c, t->nb);
    chol_kernel_done(t, t0);
    return 0;
}

/* ---- weft ---------------------------------------------------------------------------- */

/* Adds one task with its name, cost and tile accesses: READ on a and b (when not NULL),
 * READWRITE on c. Returns the first failing weft status. */
static weft_status chol_add(weft_graph *g, weft_task_fn fn, chol_task *t, const char *name,
                            double cost) {
    size_t bytes = (size_t)t->nb * (size_t)t->nb * sizeof(double);
    weft_task_id id;
    weft_status st = weft_graph_add_task(g, fn, t, name, &id);
    if (st == WEFT_OK)
        st = weft_graph_set_cost(g, id, cost);
    if (st == WEFT_OK && t->a != NULL)
        st = weft_graph_access(g, id, WEFT_READ, t->a, bytes);
    if (st == WEFT_OK && t->b != NULL)
        st = weft_graph_access(g, id, WEFT_READ, t->b, bytes);
    if (st == WEFT_OK)
        st = weft_graph_access(g, id, WEFT_READWRITE, t->c, bytes);
    return st;
}

size_t chol_task_count(size_t nt) {
    size_t pairs = nt < 2 ? 0 : nt * (nt - 1) / 2;           /* TRSM, and as many SYRK */
    size_t triples = nt < 3 ? 0 : nt * (nt - 1) * (nt - 2) / 6; /* GEMM */
    return nt + 2 * pairs + triples;
}

/* Builds the graph (tasks added in the loop order of the header comment, so that the
 * access-inferred dependencies reproduce the sequential order on each tile), analyses it
 * (the DAG is built here, not in the run), runs it on pool and destroys it.
 * All task arguments live in one array allocated here and freed before returning. */
int chol_factor_weft_ex(weft_pool *pool, chol_matrix *m, double *build_s, double *run_s,
                        weft_graph_stats *stats, double *kernel_s) {
    if (build_s != NULL)
        *build_s = 0.0;
    if (run_s != NULL)
        *run_s = 0.0;
    if (kernel_s != NULL)
        *kernel_s = 0.0;
    if (pool == NULL) {
        fprintf(stderr, "chol_factor_weft: NULL pool\n");
        return WEFT_ERR_INVALID_ARG;
    }
    if (chol_matrix_check(m, "chol_factor_weft") != 0)
        return WEFT_ERR_INVALID_ARG;
    /* Task ids are 32-bit; nt <= 4096 keeps the count itself from overflowing. */
    if (m->nt > 4096 || chol_task_count(m->nt) >= WEFT_TASK_NONE) {
        fprintf(stderr, "chol_factor_weft: %zu x %zu tiles make too many tasks; use larger "
                        "tiles\n", m->nt, m->nt);
        return WEFT_ERR_RANGE;
    }
    openblas_set_num_threads(1);

    const size_t nt = m->nt;
    const int nb = (int)m->nb;
    /* Costs: relative kernel times, which set the priorities (the longest remaining path)
     * of the global-priority order. Not flop counts (potrf nb^3/3, trsm and syrk nb^3,
     * gemm 2 nb^3): OpenBLAS's dtrsm and dpotrf run at a third of dgemm's flop rate or
     * less, so flops understate the critical path potrf -> trsm -> syrk -> potrf. These
     * are median times at nb = 256 with OpenBLAS 0.3.21's SkylakeX kernels on the
     * development machine (potrf 0.27 ms, trsm 0.88, syrk 0.35, gemm 0.58), scaled to
     * gemm = 2 nb^3; the shared idle time at T=2 was lower with them than with flops. */
    const double nb3 = (double)m->nb * (double)m->nb * (double)m->nb;
    double **T = m->tiles;
    chol_task *args = malloc(chol_task_count(nt) * sizeof *args);
    if (args == NULL) {
        fprintf(stderr, "chol_factor_weft: out of memory for %zu task arguments\n",
                chol_task_count(nt));
        return WEFT_ERR_NOMEM;
    }

    _Atomic uint64_t kernel_ns = 0;
    _Atomic uint64_t *kp = kernel_s != NULL ? &kernel_ns : NULL;
    double t0 = chol_now_s();
    weft_graph *g = NULL;
    weft_status st = weft_graph_create(&g);
    size_t next = 0;
    char name[80]; /* "gemm(i,j,k)" with three 20-digit indexes fits */
    for (size_t k = 0; k < nt && st == WEFT_OK; k++) {
        chol_task *t = &args[next++];
        *t = (chol_task){NULL, NULL, T[k * nt + k], nb, kp};
        snprintf(name, sizeof name, "potrf(%zu)", k);
        st = chol_add(g, chol_kernel_potrf, t, name, 0.9 * nb3);
        for (size_t i = k + 1; i < nt && st == WEFT_OK; i++) {
            t = &args[next++];
            *t = (chol_task){T[k * nt + k], NULL, T[i * nt + k], nb, kp};
            snprintf(name, sizeof name, "trsm(%zu,%zu)", i, k);
            st = chol_add(g, chol_kernel_trsm, t, name, 3.0 * nb3);
        }
        for (size_t i = k + 1; i < nt && st == WEFT_OK; i++) {
            t = &args[next++];
            *t = (chol_task){T[i * nt + k], NULL, T[i * nt + i], nb, kp};
            snprintf(name, sizeof name, "syrk(%zu,%zu)", i, k);
            st = chol_add(g, chol_kernel_syrk, t, name, 1.2 * nb3);
            for (size_t j = k + 1; j < i && st == WEFT_OK; j++) {
                t = &args[next++];
                *t = (chol_task){T[i * nt + k], T[j * nt + k], T[i * nt + j], nb, kp};
                snprintf(name, sizeof name, "gemm(%zu,%zu,%zu)", i, j, k);
                st = chol_add(g, chol_kernel_gemm, t, name, 2.0 * nb3);
            }
        }
    }
    weft_graph_stats local;
    if (st == WEFT_OK)
        st = weft_graph_analyze(g, stats != NULL ? stats : &local);
    double t1 = chol_now_s();
    /* Global priority order: a free worker takes the most urgent ready tile task (or
     * keeps its own successor unless that is much less urgent). With work-first order
     * (the default) thieves take the oldest ready tasks, and at n = 2048 on 2 threads the
     * two threads together idled 3-4 ms per factorisation (5% of their time), about
     * twice as much as here; see the README's Cholesky section for the figures. */
    weft_run_options ro = {.global_priority = 1};
    if (st == WEFT_OK)
        st = weft_graph_run_ex(pool, g, &ro);
    double t2 = chol_now_s();

    if (st == WEFT_OK) {
        if (build_s != NULL)
            *build_s = t1 - t0;
        if (run_s != NULL)
            *run_s = t2 - t1;
        if (kernel_s != NULL)
            *kernel_s = 1e-9 * (double)atomic_load_explicit(&kernel_ns, memory_order_relaxed);
    }
    /* weft_last_error() still describes a failure: destroy and free do not fail. */
    weft_graph_destroy(g);
    free(args);
    return st;
}

int chol_factor_weft(weft_pool *pool, chol_matrix *m, double *build_s, double *run_s) {
    return chol_factor_weft_ex(pool, m, build_s, run_s, NULL, NULL);
}

/* ---- OpenMP -------------------------------------------------------------------------- */

/* 0 = all processors; negative is an error (-1 returned by the callers). */
static int chol_threads(int threads, const char *who) {
    if (threads < 0) {
        fprintf(stderr, "%s: threads must be >= 0 (0 = all processors), got %d\n", who,
                threads);
        return -1;
    }
    return threads == 0 ? omp_get_num_procs() : threads;
}

/* The same loop as the weft version; the dependence object of a tile is its first
 * element. A failed POTRF sets `failed` (its dependents still run, on garbage, and the
 * call returns -1). */
int chol_factor_omp_ex(chol_matrix *m, int threads, double *kernel_s) {
    if (kernel_s != NULL)
        *kernel_s = 0.0;
    if (chol_matrix_check(m, "chol_factor_omp") != 0)
        return -1;
    int nth = chol_threads(threads, "chol_factor_omp");
    if (nth < 0)
        return -1;
    openblas_set_num_threads(1);

    const size_t nt = m->nt;
    const int nb = (int)m->nb;
    double **T = m->tiles;
    int failed = 0;
    _Atomic uint64_t kernel_ns = 0;
    _Atomic uint64_t *kp = kernel_s != NULL ? &kernel_ns : NULL;
#pragma omp parallel num_threads(nth) shared(failed)
#pragma omp single
    for (size_t k = 0; k < nt; k++) {
#pragma omp task firstprivate(k) depend(inout: T[k * nt + k][0])
        {
            chol_task t = {NULL, NULL, T[k * nt + k], nb, kp};
            if (chol_kernel_potrf(&t) != 0) {
#pragma omp atomic write
                failed = 1;
            }
        }
        for (size_t i = k + 1; i < nt; i++) {
#pragma omp task firstprivate(i, k) depend(in: T[k * nt + k][0]) depend(inout: T[i * nt + k][0])
            {
                chol_task t = {T[k * nt + k], NULL, T[i * nt + k], nb, kp};
                chol_kernel_trsm(&t);
            }
        }
        for (size_t i = k + 1; i < nt; i++) {
#pragma omp task firstprivate(i, k) depend(in: T[i * nt + k][0]) depend(inout: T[i * nt + i][0])
            {
                chol_task t = {T[i * nt + k], NULL, T[i * nt + i], nb, kp};
                chol_kernel_syrk(&t);
            }
            for (size_t j = k + 1; j < i; j++) {
#pragma omp task firstprivate(i, j, k) depend(in: T[i * nt + k][0], T[j * nt + k][0]) \
    depend(inout: T[i * nt + j][0])
                {
                    chol_task t = {T[i * nt + k], T[j * nt + k], T[i * nt + j], nb, kp};
                    chol_kernel_gemm(&t);
                }
            }
        }
    }
    int f;
#pragma omp atomic read
    f = failed;
    if (f) {
        fprintf(stderr, "chol_factor_omp: a diagonal tile is not positive definite\n");
        return -1;
    }
    if (kernel_s != NULL)
        *kernel_s = 1e-9 * (double)atomic_load_explicit(&kernel_ns, memory_order_relaxed);
    return 0;
}

int chol_factor_omp(chol_matrix *m, int threads) {
    return chol_factor_omp_ex(m, threads, NULL);
}

/* ---- LAPACKE ------------------------------------------------------------------------- */

/* Copies the lower tiles of m into (to_full) or out of (!to_full) the column-major n x n
 * array a. Diagonal tiles are copied whole; entries above the diagonal tiles are not
 * touched. */
static void chol_tiles_full(const chol_matrix *m, double *a, int to_full) {
    size_t n = m->n, nb = m->nb, nt = m->nt;
    for (size_t i = 0; i < nt; i++)
        for (size_t j = 0; j <= i; j++)
            for (size_t c = 0; c < nb; c++) {
                double *full = a + (j * nb + c) * n + i * nb;
                double *tile = m->tiles[i * nt + j] + c * nb;
                if (to_full)
                    memcpy(full, tile, nb * sizeof(double));
                else
                    memcpy(tile, full, nb * sizeof(double));
            }
}

int chol_factor_lapacke_ex(chol_matrix *m, int threads, double *potrf_s) {
    if (potrf_s != NULL)
        *potrf_s = 0.0;
    if (chol_matrix_check(m, "chol_factor_lapacke") != 0)
        return -1;
    int nth = chol_threads(threads, "chol_factor_lapacke");
    if (nth < 0)
        return -1;
    size_t n = m->n;
    double *a = malloc(n * n * sizeof(double));
    if (a == NULL) {
        fprintf(stderr, "chol_factor_lapacke: out of memory for a %zu x %zu copy\n", n, n);
        return -1;
    }
    chol_tiles_full(m, a, 1);
    openblas_set_num_threads(nth);
    double t0 = chol_now_s();
    lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)n, a, (lapack_int)n);
    double t1 = chol_now_s();
    openblas_set_num_threads(1);
    if (potrf_s != NULL && info == 0)
        *potrf_s = t1 - t0;
    if (info == 0)
        chol_tiles_full(m, a, 0);
    free(a);
    if (info != 0) {
        fprintf(stderr, "chol_factor_lapacke: LAPACKE_dpotrf returned info %d\n", (int)info);
        return -1;
    }
    return 0;
}

int chol_factor_lapacke(chol_matrix *m, int threads) {
    return chol_factor_lapacke_ex(m, threads, NULL);
}

/* ---- verification -------------------------------------------------------------------- */

/* Frobenius norm of a symmetric matrix from its lower triangle (column-major n x n). */
static double chol_sym_frobenius(const double *a, size_t n) {
    double s = 0.0;
    for (size_t c = 0; c < n; c++) {
        s += a[c * n + c] * a[c * n + c];
        for (size_t r = c + 1; r < n; r++)
            s += 2.0 * a[c * n + r] * a[c * n + r];
    }
    return sqrt(s);
}

/* Forms R = A - L L^T in the lower triangle with one DSYRK on full copies (A from orig, L
 * from factor with the stale upper part of its diagonal tiles zeroed), then returns
 * ||R||_F / ||A||_F. Not timed; sequential OpenBLAS. NaN if the matrices are unusable or
 * memory runs out (message on stderr): callers test !(r < tolerance). */
double chol_residual(const chol_matrix *orig, const chol_matrix *factor) {
    if (chol_matrix_check(orig, "chol_residual") != 0 ||
        chol_matrix_check(factor, "chol_residual") != 0)
        return NAN;
    if (orig->n != factor->n || orig->nb != factor->nb) {
        fprintf(stderr, "chol_residual: the matrices differ in size (%zu/%zu vs %zu/%zu)\n",
                orig->n, orig->nb, factor->n, factor->nb);
        return NAN;
    }
    size_t n = orig->n;
    double *a = malloc(n * n * sizeof(double));
    double *l = calloc(n * n, sizeof(double));
    if (a == NULL || l == NULL) {
        fprintf(stderr, "chol_residual: out of memory for two %zu x %zu copies\n", n, n);
        free(a);
        free(l);
        return NAN;
    }
    chol_tiles_full(orig, a, 1);
    chol_tiles_full(factor, l, 1);
    for (size_t c = 1; c < n; c++) /* zero the strict upper part of L */
        memset(l + c * n, 0, c * sizeof(double));

    double norm_a = chol_sym_frobenius(a, n);
    cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, (int)n, (int)n, -1.0, l, (int)n, 1.0,
                a, (int)n);
    double norm_r = chol_sym_frobenius(a, n);
    free(a);
    free(l);
    return norm_a > 0.0 ? norm_r / norm_a : NAN;
}

double chol_flops(size_t n) {
    double x = (double)n;
    return x * x * x / 3.0 + x * x / 2.0 + x / 6.0;
}
