/* examples/cholesky_lib.h - tiled Cholesky factorisation (lower, double precision) shared
 * by examples/cholesky.c and build/weft-bench. Uses only the public weft API, OpenBLAS
 * (cblas) and LAPACKE. The matrix is stored as nt x nt tiles of nb x nb doubles, each tile
 * contiguous and column-major (tile (i,j) at tiles[i*nt + j]); only i >= j are used. */
#ifndef WEFT_EXAMPLES_CHOLESKY_LIB_H
#define WEFT_EXAMPLES_CHOLESKY_LIB_H

#include <stddef.h>

#include "weft.h"

typedef struct chol_matrix {
    size_t n, nb, nt; /* order, tile size, tiles per side (n = nb * nt) */
    double **tiles;   /* nt*nt pointers, lower triangle allocated */
} chol_matrix;

/* Allocates a tiled matrix and fills it with a seeded symmetric positive definite matrix
 * (deterministic for a seed). n must be a multiple of nb. 0 on success, -1 on failure
 * (message on stderr). */
int chol_matrix_create(chol_matrix *m, size_t n, size_t nb, unsigned seed);
/* Copies src's values into dst (same n, nb). */
void chol_matrix_copy(chol_matrix *dst, const chol_matrix *src);
void chol_matrix_destroy(chol_matrix *m);

/* Factorises in place, A = L L^T, L in the lower tiles.
 * weft: builds a task graph whose edges come only from declared tile accesses, runs it
 *       on pool (graph built, run and destroyed inside; build_s/run_s receive the phases,
 *       either may be NULL). Returns a weft_status.
 * omp:  the same tiled algorithm with OpenMP tasks and depend clauses on T threads.
 * lapacke: copies into a column-major n x n array and calls LAPACKE_dpotrf with OpenBLAS
 *       threading set to T threads (restored to 1 afterwards); 0 on success. */
int chol_factor_weft(weft_pool *pool, chol_matrix *m, double *build_s, double *run_s);
/* chol_factor_weft that also reports the analyzer's statistics of the graph it built
 * (tasks, edges, levels, work and span in units of the cost hints, which are relative
 * kernel times scaled to gemm = 2 nb^3, see cholesky_lib.c; stats may be NULL).
 * build_s covers creating the graph, declaring the accesses and weft_graph_analyze;
 * run_s covers weft_graph_run only; kernel_s (may be NULL) receives the summed time
 * of all tile kernels over all threads, so that T x wall - kernel_s is the time the
 * threads spent outside kernels (idle, scheduling, graph building). An out-parameter rather than a "last stats" global, so
 * that factorisations in several threads do not interfere. */
int chol_factor_weft_ex(weft_pool *pool, chol_matrix *m, double *build_s, double *run_s,
                        weft_graph_stats *stats, double *kernel_s);
/* Tasks of the graph for nt tiles per side: nt POTRF, nt(nt-1)/2 TRSM and as many SYRK,
 * nt(nt-1)(nt-2)/6 GEMM. */
size_t chol_task_count(size_t nt);
int chol_factor_omp(chol_matrix *m, int threads);
/* chol_factor_omp that also reports the summed kernel time over all threads (kernel_s
 * may be NULL), timed exactly as in chol_factor_weft_ex. */
int chol_factor_omp_ex(chol_matrix *m, int threads, double *kernel_s);
int chol_factor_lapacke(chol_matrix *m, int threads);
/* chol_factor_lapacke that also reports the time of the LAPACKE_dpotrf call alone
 * (potrf_s may be NULL), without the two copies between tiles and the full array, for a
 * fair comparison with the run time of the tiled versions. */
int chol_factor_lapacke_ex(chol_matrix *m, int threads, double *potrf_s);

/* Relative residual ||A - L L^T||_F / ||A||_F for the factor L (in `factor`) of the
 * original matrix `orig`. */
double chol_residual(const chol_matrix *orig, const chol_matrix *factor);
/* Floating-point operations of a Cholesky of order n: n^3/3 + n^2/2 + n/6. */
double chol_flops(size_t n);

#endif
