/* ops/matmul.c - the matrix product op(a) @ op(b) of two 2-D float tensors, where op(x)
 * is x or its transpose (attrs->flags: WEFT_TRANS_A, WEFT_TRANS_B).
 *
 * Kernel: products below MM_TINY_MACS multiply-adds run a plain C loop (an OpenBLAS call
 * costs more than the whole product there, e.g. XOR's [4,2] @ [2,5]). Larger ones call
 * cblas_sgemm / cblas_dgemm on fixed tiles of the output, run with wf_kernel_parallel, so
 * that one large product uses the whole pool. OpenBLAS itself is made single-threaded
 * once per process: parallelism comes from the pool, never from BLAS threads competing
 * with its workers. The path and the tiles depend only on (m, n, k), so every output
 * element is computed by the same call on the same operands whatever the thread count:
 * results are bit-identical on 1 or N threads.
 *
 * Tiles rather than row blocks: each BLAS call packs all of its op(b) panel, so thin row
 * blocks repack b again and again. With OpenBLAS's SkylakeX kernels, 128x784 @ 784x256 in
 * 16-row blocks costs 1.5x (f32) to 1.9x (f64) one whole call; near-square tiles of side
 * >= 64 (see mm_tiling) keep that overhead small.
 */
#include <cblas.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "ops/internal.h"
#include "ops/matmul.h"
#include "scheduler/internal.h"
#include "weft/ops.h"

/* Declared by OpenBLAS's cblas.h; repeated so that another cblas.h (netlib's, selected
 * through Debian's alternatives) still compiles. Linking still needs OpenBLAS. */
void openblas_set_num_threads(int num_threads);

/* Below this many multiply-adds (m*n*k) the C loop runs instead of OpenBLAS. Measured
 * (Xeon, AVX-512, Debian's OpenBLAS 0.3.21 on its default Prescott kernels): sgemm costs
 * ~100 ns at 40 multiply-adds where the loop takes ~55 ns (XOR's [4,2] @ [2,5]); they
 * meet near 256-512. (With OPENBLAS_CORETYPE=SkylakeX, sgemm's small-matrix path is
 * faster still at every size; the loop keeps tiny products cheap whatever BLAS does.) */
#define MM_TINY_MACS ((size_t)512)
/* Outer products (k == 1) up to this many outputs take GER, in tiles of whole rows of at
 * most MM_TILE_MAX_ELEMS elements (each row is one AXPY-like pass whatever the call's
 * other rows); larger ones split into GEMM tiles. */
#define MM_OUTER_MAX ((size_t)1 << 18)
/* GEMM output tiles: the longer side is halved while the tile holds at least
 * 2 * MM_TILE_FLOPS (2 * rows * cols * k) or more than MM_TILE_MAX_ELEMS elements, and
 * the halved side stays >= MM_TILE_MIN_SIDE. Tiles therefore cost at most twice
 * MM_TILE_FLOPS (~300 us of SkylakeX sgemm on one core); with a small k the element cap
 * makes them smaller (the MLP's weight gradient [784,128] @ [128,256]: 14 tiles of 112 x
 * 128, 3.7 MFLOP each), still far above a task's cost. The element cap bounds what a
 * consumer that takes a product tile by tile (optim_update_mm) keeps in flight: 64 KB of
 * f32 per thread. The side bound keeps packing small: each call packs (rows + cols) * k
 * elements for 2 * rows * cols * k flops, and measured tiles of side 16 cost 1.3-2.1x one
 * whole call, side >= 128 ~1.0-1.2x. Sides are multiples of MM_TILE_ALIGN (whole register
 * tiles of the BLAS kernels). */
#define MM_TILE_FLOPS (16.0 * 1000 * 1000)
#define MM_TILE_MAX_ELEMS ((size_t)16384)
#define MM_TILE_MIN_SIDE ((size_t)64)
#define MM_TILE_ALIGN ((size_t)16)

/* ---- shape rule ------------------------------------------------------------------------ */

/* "[4,3]" or "[3,4]^T" for the error messages: shapes as given, marked when transposed. */
static const char *mm_operand_str(const wf_shape *s, int trans, char *buf, size_t cap) {
    wf_shape_str(s, buf, cap);
    if (trans) {
        size_t len = strlen(buf);
        if (len + 3 <= cap) memcpy(buf + len, "^T", 3);
    }
    return buf;
}

static weft_status matmul_shape(wf_attrs *attrs, size_t nin, const wf_desc *in, wf_desc *out) {
    (void)nin;
    const wf_desc *a = &in[0], *b = &in[1];
    if (!wf_dtype_is_float(a->dtype) || !wf_dtype_is_float(b->dtype))
        return wf_op_error("matmul", "operands must be float: %s @ %s",
                           weft_dtype_name(a->dtype), weft_dtype_name(b->dtype));
    if (a->dtype != b->dtype)
        return wf_op_error("matmul", "dtypes differ: %s @ %s", weft_dtype_name(a->dtype),
                           weft_dtype_name(b->dtype));
    if (a->shape.ndim != 2 || b->shape.ndim != 2)
        return wf_op_shape_error("matmul", "operands must be 2-D", &a->shape, "@", &b->shape);
    if (attrs->flags & ~(WEFT_TRANS_A | WEFT_TRANS_B))
        return wf_op_error("matmul", "unknown flags 0x%x", attrs->flags);
    int ta = (attrs->flags & WEFT_TRANS_A) != 0, tb = (attrs->flags & WEFT_TRANS_B) != 0;
    int64_t m = a->shape.d[ta], ka = a->shape.d[!ta];
    int64_t kb = b->shape.d[tb], n = b->shape.d[!tb];
    /* an open dimension (-1) is checked again when the run gives it a size */
    if (ka >= 0 && kb >= 0 && ka != kb) {
        char sa[160], sb[160];
        return wf_op_error("matmul", "inner dimensions differ: %s @ %s",
                           mm_operand_str(&a->shape, ta, sa, sizeof sa),
                           mm_operand_str(&b->shape, tb, sb, sizeof sb));
    }
    out->dtype = a->dtype;
    out->shape = (wf_shape){.ndim = 2, .d = {m, n}};
    return WEFT_OK;
}

/* ---- kernel ---------------------------------------------------------------------------- */

/* c[m,n] (row stride ldc) = op(a) op(b) by the definition, one type at a time, for tiny
 * products only. Element (i,p) of op(a) is a[i*a_rs + p*a_ks], element (p,j) of op(b) is
 * b[p*b_ks + j*b_cs]. With contiguous rows of op(b) (no TRANS_B) and n >= 4: c row +=
 * a(i,p) * b row, vectorised over j; otherwise one dot product per element (for n < 4 the
 * vector loop's set-up costs more than the row: [4,5] @ [5,1] takes 3x longer). Each
 * element's arithmetic depends on n, never on m or on which rows are computed. */
#define MM_TINY_DEFINE(T)                                                                  \
    static void mm_tiny_##T(const T *a, const T *b, T *c, size_t m, size_t n, size_t k,     \
                            size_t a_rs, size_t a_ks, size_t b_ks, size_t b_cs, size_t ldc, \
                            int acc) {                                                     \
        for (size_t i = 0; i < m; i++) {                                                   \
            T *ci = c + i * ldc;                                                           \
            const T *ai = a + i * a_rs;                                                    \
            if (b_cs == 1 && n >= 4) {                                                     \
                if (!acc)                                                                  \
                    for (size_t j = 0; j < n; j++) ci[j] = 0;                              \
                for (size_t p = 0; p < k; p++) {                                           \
                    const T aip = ai[p * a_ks], *bp = b + p * b_ks;                        \
                    _Pragma("omp simd") for (size_t j = 0; j < n; j++) ci[j] += aip * bp[j]; \
                }                                                                          \
            } else {                                                                       \
                for (size_t j = 0; j < n; j++) {                                           \
                    const T *bj = b + j * b_cs;                                            \
                    T s = 0;                                                               \
                    for (size_t p = 0; p < k; p++) s += ai[p * a_ks] * bj[p * b_ks];      \
                    ci[j] = acc ? ci[j] + s : s;                                           \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }
MM_TINY_DEFINE(float)
MM_TINY_DEFINE(double)
#undef MM_TINY_DEFINE

static pthread_once_t mm_blas_once = PTHREAD_ONCE_INIT;

/* OpenBLAS's thread count is process-wide; 1 keeps BLAS from spawning threads that would
 * compete with the pool's workers (and makes its results independent of its own
 * threading). Applications that call BLAS themselves see the same setting. */
static void mm_blas_init(void) {
    openblas_set_num_threads(1);
}

/* Tile sides for an m x n output with inner dimension k: a function of (m, n, k) only,
 * never of the thread count. E.g. [128,784] @ [784,256]: two tiles of 128 x 128; the
 * weight gradient [784,128] @ [128,256]: 7 x 2 tiles of 112 x 128. */
static void mm_tiling(size_t m, size_t n, size_t k, size_t *mb, size_t *nb) {
    const double kf = 2.0 * (double)k;
    size_t r = m, c = n;
    while (kf * (double)r * (double)c >= 2.0 * MM_TILE_FLOPS || r * c > MM_TILE_MAX_ELEMS) {
        size_t *side = r >= c ? &r : &c;
        if (*side < 2 * MM_TILE_MIN_SIDE) side = side == &r ? &c : &r;
        if (*side < 2 * MM_TILE_MIN_SIDE) break; /* both sides as thin as they may go */
        *side = ((*side + 1) / 2 + MM_TILE_ALIGN - 1) / MM_TILE_ALIGN * MM_TILE_ALIGN;
    }
    *mb = r;
    *nb = c;
}

int wf_mm_prepare(const char *op, const wf_tref *a, const wf_tref *b, unsigned flags,
                  wf_mm *mm) {
    const int ta = (flags & WEFT_TRANS_A) != 0, tb = (flags & WEFT_TRANS_B) != 0;
    const size_t ar = (size_t)a->shape.d[0], ac = (size_t)a->shape.d[1];
    const size_t br = (size_t)b->shape.d[0], bc = (size_t)b->shape.d[1];
    *mm = (wf_mm){.dtype = a->dtype, .ta = ta, .tb = tb, .a = a->data, .b = b->data,
                  .m = ta ? ac : ar, .k = ta ? ar : ac, .n = tb ? br : bc, .ac = ac, .bc = bc};
    const size_t m = mm->m, n = mm->n, k = mm->k;
    mm->mb = m, mm->nb = n, mm->tiles_n = 1, mm->tiles = 1;
    if (m == 0 || n == 0) {
        mm->path = WF_MM_NONE, mm->tiles = 0;
        return 0;
    }
    if (k == 0) { /* an empty sum (BLAS may not accept lda = 0) */
        mm->path = WF_MM_ZERO;
        return 0;
    }
    if (m < MM_TINY_MACS && n < MM_TINY_MACS && k < MM_TINY_MACS && m * n * k < MM_TINY_MACS) {
        mm->path = WF_MM_TINY;
        return 0;
    }
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || ac > INT_MAX || bc > INT_MAX)
        return wf_error(WEFT_ERR_RANGE, "%s: [%zu,%zu] @ [%zu,%zu] exceeds the BLAS index range",
                        op, ar, ac, br, bc);
    pthread_once(&mm_blas_once, mm_blas_init);
    if (m == 1) {
        mm->path = WF_MM_ROW;
    } else if (k == 1 && m * n <= MM_OUTER_MAX) {
        mm->path = WF_MM_OUTER;
        mm->mb = MM_TILE_MAX_ELEMS / n ? MM_TILE_MAX_ELEMS / n : 1;
        if (mm->mb > m) mm->mb = m;
        mm->tiles = (m + mm->mb - 1) / mm->mb;
    } else {
        mm->path = WF_MM_GEMM;
        mm_tiling(m, n, k, &mm->mb, &mm->nb);
        mm->tiles_n = (n + mm->nb - 1) / mm->nb;
        mm->tiles = (m + mm->mb - 1) / mm->mb * mm->tiles_n;
    }
    return 0;
}

void wf_mm_tile(const wf_mm *mm, size_t t, size_t *r0, size_t *rows, size_t *c0,
                size_t *cols) {
    *r0 = t / mm->tiles_n * mm->mb;
    *c0 = t % mm->tiles_n * mm->nb;
    *rows = *r0 + mm->mb < mm->m ? mm->mb : mm->m - *r0;
    *cols = *c0 + mm->nb < mm->n ? mm->nb : mm->n - *c0;
}

/* One output row (m == 1, the step of an RNN): a matrix-vector product. OpenBLAS's
 * small-matrix GEMM kernel for a transposed b is ~10x slower per flop than GEMV on such
 * shapes ([1,128] @ [128,128]^T: the gradient through h Wh). The row of op(a) is a with
 * stride 1, or with TRANS_A column 0 of a [k,1] with stride ac. */
static void mm_row(const wf_mm *mm, void *dst, int accumulate) {
    const int incx = mm->ta ? (int)mm->ac : 1;
    /* out[j] = sum_p a[p] op(b)[p][j]: op(b) = b [k,n] -> b^T x; op(b) = b^T, b [n,k] -> b x */
    const enum CBLAS_TRANSPOSE t = mm->tb ? CblasNoTrans : CblasTrans;
    const int rows = mm->tb ? (int)mm->n : (int)mm->k, cols = mm->tb ? (int)mm->k : (int)mm->n;
    if (mm->dtype == WEFT_F32)
        cblas_sgemv(CblasRowMajor, t, rows, cols, 1.0f, (const float *)mm->b, (int)mm->bc,
                    (const float *)mm->a, incx, accumulate ? 1.0f : 0.0f, (float *)dst, 1);
    else
        cblas_dgemv(CblasRowMajor, t, rows, cols, 1.0, (const double *)mm->b, (int)mm->bc,
                    (const double *)mm->a, incx, accumulate ? 1.0 : 0.0, (double *)dst, 1);
}

/* Rows [r0, r0 + rows) (one tile) of an outer product (k == 1: the weight gradient x^T g
 * of one RNN step) as a rank-1 update; OpenBLAS's small-matrix GEMM spends ~4x longer on
 * it than GER. op(a) is a column of m values (stride 1 when a is [1,m] under TRANS_A, ac when a
 * is [m,1]), op(b) a row of n (stride bc under TRANS_B). Each element is one product
 * (added to dst's element when accumulating), whatever rows are computed. */
static void mm_outer(const wf_mm *mm, size_t r0, size_t rows, void *dst, size_t ldd,
                     int accumulate) {
    const size_t incx = mm->ta ? 1 : mm->ac, incy = mm->tb ? mm->bc : 1;
    const size_t es = weft_dtype_size(mm->dtype);
    if (!accumulate)
        for (size_t r = 0; r < rows; r++) memset((char *)dst + r * ldd * es, 0, mm->n * es);
    if (mm->dtype == WEFT_F32)
        cblas_sger(CblasRowMajor, (int)rows, (int)mm->n, 1.0f,
                   (const float *)mm->a + r0 * incx, (int)incx, (const float *)mm->b,
                   (int)incy, (float *)dst, (int)ldd);
    else
        cblas_dger(CblasRowMajor, (int)rows, (int)mm->n, 1.0,
                   (const double *)mm->a + r0 * incx, (int)incx, (const double *)mm->b,
                   (int)incy, (double *)dst, (int)ldd);
}

/* Rows i of op(a) start at a + i*ac, or, with TRANS_A (a column of a), at a + i; columns
 * j of op(b) start at b + j, or, with TRANS_B (a row of b), at b + j*bc. */
static void mm_gemm(const wf_mm *mm, size_t r0, size_t rows, size_t c0, size_t cols,
                    void *dst, size_t ldd, int accumulate) {
    const enum CBLAS_TRANSPOSE ta = mm->ta ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = mm->tb ? CblasTrans : CblasNoTrans;
    const size_t a_off = mm->ta ? r0 : r0 * mm->ac, b_off = mm->tb ? c0 * mm->bc : c0;
    if (mm->dtype == WEFT_F32)
        cblas_sgemm(CblasRowMajor, ta, tb, (int)rows, (int)cols, (int)mm->k, 1.0f,
                    (const float *)mm->a + a_off, (int)mm->ac, (const float *)mm->b + b_off,
                    (int)mm->bc, accumulate ? 1.0f : 0.0f, (float *)dst, (int)ldd);
    else
        cblas_dgemm(CblasRowMajor, ta, tb, (int)rows, (int)cols, (int)mm->k, 1.0,
                    (const double *)mm->a + a_off, (int)mm->ac, (const double *)mm->b + b_off,
                    (int)mm->bc, accumulate ? 1.0 : 0.0, (double *)dst, (int)ldd);
}

void wf_mm_block(const wf_mm *mm, size_t r0, size_t rows, size_t c0, size_t cols, void *dst,
                 size_t ldd, int accumulate) {
    const size_t es = weft_dtype_size(mm->dtype);
    switch (mm->path) {
    case WF_MM_NONE: break;
    case WF_MM_ZERO:
        if (!accumulate)
            for (size_t r = 0; r < rows; r++) memset((char *)dst + r * ldd * es, 0, cols * es);
        break;
    case WF_MM_TINY: {
        const size_t a_rs = mm->ta ? 1 : mm->ac, a_ks = mm->ta ? mm->ac : 1;
        const size_t b_ks = mm->tb ? 1 : mm->bc, b_cs = mm->tb ? mm->bc : 1;
        if (mm->dtype == WEFT_F32)
            mm_tiny_float((const float *)mm->a + r0 * a_rs, mm->b, dst, rows, mm->n, mm->k,
                          a_rs, a_ks, b_ks, b_cs, ldd, accumulate);
        else
            mm_tiny_double((const double *)mm->a + r0 * a_rs, mm->b, dst, rows, mm->n, mm->k,
                           a_rs, a_ks, b_ks, b_cs, ldd, accumulate);
        break;
    }
    case WF_MM_ROW: mm_row(mm, dst, accumulate); break;
    case WF_MM_OUTER: mm_outer(mm, r0, rows, dst, ldd, accumulate); break;
    case WF_MM_GEMM: mm_gemm(mm, r0, rows, c0, cols, dst, ldd, accumulate); break;
    }
}

typedef struct mm_job {
    const wf_mm *mm;
    void *c;
    int accumulate; /* matmul_acc: c += product (beta = 1) */
} mm_job;

/* Tiles [t0, t1) of the product, each straight into c. */
static int mm_tiles(void *arg, size_t t0, size_t t1) {
    const mm_job *j = arg;
    const size_t es = weft_dtype_size(j->mm->dtype);
    for (size_t t = t0; t < t1; t++) {
        size_t r0, rows, c0, cols;
        wf_mm_tile(j->mm, t, &r0, &rows, &c0, &cols);
        wf_mm_block(j->mm, r0, rows, c0, cols, (char *)j->c + (r0 * j->mm->n + c0) * es,
                    j->mm->n, j->accumulate);
    }
    return 0;
}

/* c = op(a) op(b), or with accumulate (matmul_acc, c already holding the addend):
 * c += op(a) op(b). */
static int matmul_run(const wf_kernel_ctx *ctx, const char *op, int accumulate) {
    wf_mm mm;
    int rc = wf_mm_prepare(op, &ctx->in[0], &ctx->in[1], ctx->attrs->flags, &mm);
    if (rc) return rc;
    mm_job job = {.mm = &mm, .c = ctx->out->data, .accumulate = accumulate};
    return wf_kernel_parallel(ctx, mm.tiles, 1, mm_tiles, &job);
}

static int matmul_forward(const wf_kernel_ctx *ctx) {
    return matmul_run(ctx, "matmul", 0);
}

/* ---- matmul_acc: c + op(a) op(b) --------------------------------------------------------
 * Emitted by autodiff when a gradient contribution is a product added to a running sum
 * (weight gradients summed over the steps of an RNN): one GEMM with beta = 1 instead of
 * a product into a new buffer and an add. In place over c (input 2) when the memory plan
 * allows it; otherwise c is copied into the output first. */
static weft_status matmul_acc_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                    wf_desc *out) {
    weft_status st = matmul_shape(attrs, 2, in, out);
    (void)nin;
    if (st) return st;
    if (in[2].dtype != out->dtype || (wf_shape_known(&in[2].shape) && wf_shape_known(&out->shape) &&
                                      !wf_shape_equal(&in[2].shape, &out->shape)))
        return wf_op_shape_error("matmul_acc", "the addend must have the product's shape",
                                 &in[2].shape, "vs", &out->shape);
    return WEFT_OK;
}

static int matmul_acc_forward(const wf_kernel_ctx *ctx) {
    size_t bytes = wf_shape_numel(&ctx->out->shape) * weft_dtype_size(ctx->out->dtype);
    if (ctx->out->data != ctx->in[2].data && bytes)
        memcpy(ctx->out->data, ctx->in[2].data, bytes);
    return matmul_run(ctx, "matmul_acc", 1);
}

/* The product's gradients as for matmul (the same builder on inputs 0 and 1) and the
 * addend's: g itself. */
static weft_status matmul_backward(wf_grad_ctx *ctx);
static weft_status matmul_acc_backward(wf_grad_ctx *ctx) {
    weft_status st = matmul_backward(ctx);
    if (!st && ctx->needs[2]) ctx->gin[2] = ctx->gout;
    return st;
}

static wf_cost matmul_cost(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                           const wf_desc *out);

const wf_op_def wf_op_def_matmul_acc = {
    .name = "matmul_acc",
    .min_inputs = 3,
    .max_inputs = 3,
    .flags = WF_OPF_INTERNAL | WF_OPF_INPLACE_LAST,
    .shape = matmul_acc_shape,
    .forward = matmul_acc_forward,
    .backward = matmul_acc_backward,
    .cost = matmul_cost,
};

/* ---- cost ------------------------------------------------------------------------------ */

static double mm_dim(int64_t d) {
    return d < 0 ? 1.0 : (double)d;
}

wf_cost wf_mm_cost(unsigned flags, const wf_desc *a, const wf_desc *b, const wf_desc *out) {
    const int ta = (flags & WEFT_TRANS_A) != 0;
    const double k = mm_dim(a->shape.d[!ta]);
    const double m = mm_dim(out->shape.d[0]), n = mm_dim(out->shape.d[1]);
    const double esize = (double)weft_dtype_size(out->dtype);
    const double bytes =
        ((double)wf_shape_numel(&a->shape) + (double)wf_shape_numel(&b->shape) + m * n) * esize;
    return (wf_cost){2.0 * m * n * k, bytes};
}

static wf_cost matmul_cost(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                           const wf_desc *out) {
    (void)nin;
    return wf_mm_cost(attrs->flags, &in[0], &in[1], out);
}

/* ---- backward -------------------------------------------------------------------------- */

/* With G the gradient of C:
 *   C = A B     : dA = G B^T,   dB = A^T G
 *   C = A^T B   : dA = B G^T,   dB = A G
 *   C = A B^T   : dA = G B,     dB = G^T A
 *   C = A^T B^T : dA = B^T G^T, dB = G^T A^T
 * each one matmul with flags, so no transpose is ever materialised. */
static weft_status matmul_backward(wf_grad_ctx *ctx) {
    const uint32_t A = ctx->in[0], B = ctx->in[1], G = ctx->gout;
    const unsigned ta = ctx->attrs->flags & WEFT_TRANS_A;
    const unsigned tb = ctx->attrs->flags & WEFT_TRANS_B;
    const unsigned T_A = WEFT_TRANS_A, T_B = WEFT_TRANS_B;
    uint32_t da_x, da_y, db_x, db_y;
    unsigned da_f, db_f;
    if (!ta && !tb) {
        da_x = G, da_y = B, da_f = T_B;
        db_x = A, db_y = G, db_f = T_A;
    } else if (ta && !tb) {
        da_x = B, da_y = G, da_f = T_B;
        db_x = A, db_y = G, db_f = 0;
    } else if (!ta && tb) {
        da_x = G, da_y = B, da_f = 0;
        db_x = G, db_y = A, db_f = T_A;
    } else {
        da_x = B, da_y = G, da_f = T_A | T_B;
        db_x = G, db_y = A, db_f = T_A | T_B;
    }
    weft_status st;
    if (ctx->needs[0]) {
        wf_attrs at = {.flags = da_f};
        if ((st = wf_emit2(ctx, WF_OP_MATMUL, da_x, da_y, &at, &ctx->gin[0])) != WEFT_OK)
            return st;
    }
    if (ctx->needs[1]) {
        wf_attrs at = {.flags = db_f};
        if ((st = wf_emit2(ctx, WF_OP_MATMUL, db_x, db_y, &at, &ctx->gin[1])) != WEFT_OK)
            return st;
    }
    return WEFT_OK;
}

const wf_op_def wf_op_def_matmul = {
    .name = "matmul",
    .min_inputs = 2,
    .max_inputs = 2,
    .flags = 0,
    .shape = matmul_shape,
    .forward = matmul_forward,
    .backward = matmul_backward,
    .cost = matmul_cost,
};
