/* ops/matmul.h - the matrix product as tiles, for the matmul ops and for kernels that
 * consume a product tile by tile without storing it whole (optim_update_mm).
 *
 * Contract: the path and the tiles depend only on (m, n, k), and a tile is always
 * computed by the same call (wf_mm_block) whatever memory it is written to. So a product
 * computed tile by tile into its output and the same tiles computed one at a time into
 * scratch memory are equal bit for bit. (Smaller blocks would not be: OpenBLAS's SkylakeX
 * dgemm and Haswell sgemm kernels give different last bits for an element computed in a
 * call of another shape; tests/engine/test_optim_fused.c checks the equality.) */
#ifndef WEFT_OPS_MATMUL_H
#define WEFT_OPS_MATMUL_H

#include "ops/internal.h"

typedef enum wf_mm_path {
    WF_MM_NONE,  /* m == 0 or n == 0: no output element */
    WF_MM_ZERO,  /* k == 0: an empty sum, every element 0 */
    WF_MM_TINY,  /* a C loop: below a few hundred multiply-adds */
    WF_MM_ROW,   /* m == 1: GEMV */
    WF_MM_OUTER, /* k == 1: GER */
    WF_MM_GEMM   /* GEMM on tiles of the output */
} wf_mm_path;

/* op(a) @ op(b) with op(a) [m,k], op(b) [k,n]; a is [ar, ac] (row length ac), b [br, bc]. */
typedef struct wf_mm {
    weft_dtype dtype;
    int ta, tb;
    const void *a, *b;
    size_t m, n, k, ac, bc;
    wf_mm_path path;
    size_t mb, nb;        /* tile sides: GEMM tiles and GER row tiles hold at most
                             16384 elements; the TINY, ROW and ZERO paths have one tile,
                             the whole (small or degenerate) output */
    size_t tiles_n, tiles;
} wf_mm;

/* Sets up op(a) @ op(b) for flags (WEFT_TRANS_A | WEFT_TRANS_B) on shapes the matmul shape
 * rule accepted. Returns 0, or WEFT_ERR_RANGE (message recorded, naming `op`) when a
 * dimension exceeds BLAS's int range. */
int wf_mm_prepare(const char *op, const wf_tref *a, const wf_tref *b, unsigned flags,
                  wf_mm *mm);

/* Tile t (< mm->tiles): rows [*r0, *r0 + *rows), columns [*c0, *c0 + *cols). */
void wf_mm_tile(const wf_mm *mm, size_t t, size_t *r0, size_t *rows, size_t *c0,
                size_t *cols);

/* dst[(r - r0) * ldd + (c - c0)] = element (r, c) of the product for one tile (the values
 * of wf_mm_tile). With accumulate, the element is added to what dst holds (GEMM
 * beta = 1). */
void wf_mm_block(const wf_mm *mm, size_t r0, size_t rows, size_t c0, size_t cols, void *dst,
                 size_t ldd, int accumulate);

/* 2mnk flops; the bytes of a, b and the m x n output. */
wf_cost wf_mm_cost(unsigned flags, const wf_desc *a, const wf_desc *b, const wf_desc *out);

#endif
