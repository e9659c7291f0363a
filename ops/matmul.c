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
/* Outer products (k == 1) up to this many outputs take GER, single-threaded; larger ones
 * split into GEMM tiles across the pool. */
#define MM_OUTER_MAX ((size_t)1 << 18)
/* Output tiles: the longer side is halved while the tile holds at least
 * 2 * MM_TILE_FLOPS (2 * rows * cols * k) and the halved side stays >= MM_TILE_MIN_SIDE,
 * so tiles end between MM_TILE_FLOPS and twice that (~150-300 us of SkylakeX sgemm on
 * one core), far above a task's cost. The side bound keeps packing small: each call
 * packs (rows + cols) * k elements for 2 * rows * cols * k flops, and measured tiles of
 * side 16 cost 1.3-2.1x one whole call, side >= 128 ~1.0-1.2x. Sides are multiples of
 * MM_TILE_ALIGN (whole register tiles of the BLAS kernels). */
#define MM_TILE_FLOPS (16.0 * 1000 * 1000)
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

/* c[m,n] = op(a) op(b) by the definition, one type at a time, for tiny products only.
 * Element (i,p) of op(a) is a[i*a_rs + p*a_ks], element (p,j) of op(b) is
 * b[p*b_ks + j*b_cs]. With contiguous rows of op(b) (no TRANS_B) and n >= 4: c row +=
 * a(i,p) * b row, vectorised over j; otherwise one dot product per element (for n < 4 the
 * vector loop's set-up costs more than the row: [4,5] @ [5,1] takes 3x longer). */
#define MM_TINY_DEFINE(T)                                                                  \
    static void mm_tiny_##T(const T *a, const T *b, T *c, size_t m, size_t n, size_t k,     \
                            size_t a_rs, size_t a_ks, size_t b_ks, size_t b_cs, int acc) { \
        for (size_t i = 0; i < m; i++) {                                                   \
            T *ci = c + i * n;                                                             \
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

/* One product split into tiles of c: rows [i0, i0 + mb) x columns [j0, j0 + nb). */
typedef struct mm_job {
    weft_dtype dtype;
    int ta, tb;
    const void *a, *b;
    void *c;
    int n, k, lda, ldb; /* checked against INT_MAX before the job is built */
    int accumulate;     /* matmul_acc: c += product (beta = 1) */
    size_t m, mb, nb, tiles_n;
} mm_job;

/* Tiles [t0, t1), row-major over the tile grid. Rows i of op(a) start at a + i*lda, or,
 * with TRANS_A (a column of a), at a + i; columns j of op(b) start at b + j, or, with
 * TRANS_B (a row of b), at b + j*ldb. */
static int mm_tiles(void *arg, size_t t0, size_t t1) {
    const mm_job *j = arg;
    const enum CBLAS_TRANSPOSE ta = j->ta ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = j->tb ? CblasTrans : CblasNoTrans;
    for (size_t t = t0; t < t1; t++) {
        const size_t i0 = t / j->tiles_n * j->mb, j0 = t % j->tiles_n * j->nb;
        const int rows = (int)(i0 + j->mb < j->m ? j->mb : j->m - i0);
        const int cols = (int)(j0 + j->nb < (size_t)j->n ? j->nb : (size_t)j->n - j0);
        const size_t a_off = j->ta ? i0 : i0 * (size_t)j->lda;
        const size_t b_off = j->tb ? j0 * (size_t)j->ldb : j0;
        const size_t c_off = i0 * (size_t)j->n + j0;
        if (j->dtype == WEFT_F32)
            cblas_sgemm(CblasRowMajor, ta, tb, rows, cols, j->k, 1.0f,
                        (const float *)j->a + a_off, j->lda, (const float *)j->b + b_off,
                        j->ldb, j->accumulate ? 1.0f : 0.0f, (float *)j->c + c_off, j->n);
        else
            cblas_dgemm(CblasRowMajor, ta, tb, rows, cols, j->k, 1.0,
                        (const double *)j->a + a_off, j->lda, (const double *)j->b + b_off,
                        j->ldb, j->accumulate ? 1.0 : 0.0, (double *)j->c + c_off, j->n);
    }
    return 0;
}

static pthread_once_t mm_blas_once = PTHREAD_ONCE_INIT;

/* OpenBLAS's thread count is process-wide; 1 keeps BLAS from spawning threads that would
 * compete with the pool's workers (and makes its results independent of its own
 * threading). Applications that call BLAS themselves see the same setting. */
static void mm_blas_init(void) {
    openblas_set_num_threads(1);
}

/* Tile sides for an m x n output with inner dimension k: a function of (m, n, k) only,
 * never of the thread count. E.g. [128,784] @ [784,256]: two tiles of 128 x 128. */
static void mm_tiling(size_t m, size_t n, size_t k, size_t *mb, size_t *nb) {
    const double kf = 2.0 * (double)k;
    size_t r = m, c = n;
    while (kf * (double)r * (double)c >= 2.0 * MM_TILE_FLOPS) {
        size_t *side = r >= c ? &r : &c;
        if (*side < 2 * MM_TILE_MIN_SIDE) side = side == &r ? &c : &r;
        if (*side < 2 * MM_TILE_MIN_SIDE) break; /* both sides as thin as they may go */
        *side = ((*side + 1) / 2 + MM_TILE_ALIGN - 1) / MM_TILE_ALIGN * MM_TILE_ALIGN;
    }
    *mb = r;
    *nb = c;
}

/* One output row (m == 1, the step of an RNN): a matrix-vector product. OpenBLAS's
 * small-matrix GEMM kernel for a transposed b is ~10x slower per flop than GEMV on such
 * shapes ([1,128] @ [128,128]^T: the gradient through h Wh). The row of op(a) is a with
 * stride 1, or with TRANS_A column 0 of a [k,1] with stride lda. The choice depends on
 * the shape only, so results stay independent of the thread count. */
static int mm_row(const void *a, const void *b, wf_tref *c, int ta, int tb, size_t n,
                  size_t k, size_t ac, size_t bc, int accumulate) {
    const int incx = ta ? (int)ac : 1;
    /* out[j] = sum_p a[p] op(b)[p][j]: op(b) = b [k,n] -> b^T x; op(b) = b^T, b [n,k] -> b x */
    const enum CBLAS_TRANSPOSE t = tb ? CblasNoTrans : CblasTrans;
    const int rows = tb ? (int)n : (int)k, cols = tb ? (int)k : (int)n;
    if (c->dtype == WEFT_F32)
        cblas_sgemv(CblasRowMajor, t, rows, cols, 1.0f, (const float *)b, (int)bc,
                    (const float *)a, incx, accumulate ? 1.0f : 0.0f, (float *)c->data, 1);
    else
        cblas_dgemv(CblasRowMajor, t, rows, cols, 1.0, (const double *)b, (int)bc,
                    (const double *)a, incx, accumulate ? 1.0 : 0.0, (double *)c->data, 1);
    return 0;
}

/* An outer product (k == 1: the weight gradient x^T g of one RNN step): a rank-1 update.
 * OpenBLAS's small-matrix GEMM spends ~4x longer on it than GER. op(a) is a column of m
 * values (stride 1 when a is [1,m] under TRANS_A, lda = 1 when a is [m,1]), op(b) a row
 * of n (stride ldb under TRANS_B). The choice depends on the shape only. */
static int mm_outer(const void *a, const void *b, wf_tref *c, int ta, int tb, size_t m,
                    size_t n, size_t ac, size_t bc, int accumulate) {
    const int incx = ta ? 1 : (int)ac, incy = tb ? (int)bc : 1;
    if (!accumulate) memset(c->data, 0, m * n * weft_dtype_size(c->dtype));
    if (c->dtype == WEFT_F32)
        cblas_sger(CblasRowMajor, (int)m, (int)n, 1.0f, (const float *)a, incx,
                   (const float *)b, incy, (float *)c->data, (int)n);
    else
        cblas_dger(CblasRowMajor, (int)m, (int)n, 1.0, (const double *)a, incx,
                   (const double *)b, incy, (double *)c->data, (int)n);
    return 0;
}

/* c = op(a) op(b), or with accumulate (matmul_acc, c already holding the addend):
 * c += op(a) op(b). */
static int matmul_run(const wf_kernel_ctx *ctx, int accumulate) {
    const wf_tref *a = &ctx->in[0], *b = &ctx->in[1];
    wf_tref *c = ctx->out;
    const int ta = (ctx->attrs->flags & WEFT_TRANS_A) != 0;
    const int tb = (ctx->attrs->flags & WEFT_TRANS_B) != 0;
    const size_t ar = (size_t)a->shape.d[0], ac = (size_t)a->shape.d[1];
    const size_t br = (size_t)b->shape.d[0], bc = (size_t)b->shape.d[1];
    const size_t m = ta ? ac : ar, k = ta ? ar : ac, n = tb ? br : bc;
    const size_t esize = weft_dtype_size(c->dtype);

    if (m == 0 || n == 0) return 0;
    if (k == 0) { /* an empty sum: c = 0 (BLAS may not accept lda = 0) */
        if (!accumulate) memset(c->data, 0, m * n * esize);
        return 0;
    }
    if (m < MM_TINY_MACS && n < MM_TINY_MACS && k < MM_TINY_MACS && m * n * k < MM_TINY_MACS) {
        const size_t a_rs = ta ? 1 : ac, a_ks = ta ? ac : 1;
        const size_t b_ks = tb ? 1 : bc, b_cs = tb ? bc : 1;
        if (c->dtype == WEFT_F32)
            mm_tiny_float(a->data, b->data, c->data, m, n, k, a_rs, a_ks, b_ks, b_cs, accumulate);
        else
            mm_tiny_double(a->data, b->data, c->data, m, n, k, a_rs, a_ks, b_ks, b_cs,
                           accumulate);
        return 0;
    }
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || ac > INT_MAX || bc > INT_MAX)
        return wf_error(WEFT_ERR_RANGE,
                        "matmul: [%zu,%zu] @ [%zu,%zu] exceeds the BLAS index range", ar, ac,
                        br, bc);
    pthread_once(&mm_blas_once, mm_blas_init);
    if (m == 1) return mm_row(a->data, b->data, c, ta, tb, n, k, ac, bc, accumulate);
    if (k == 1 && m * n <= MM_OUTER_MAX) return mm_outer(a->data, b->data, c, ta, tb, m, n, ac, bc, accumulate);
    mm_job job = {.dtype = c->dtype, .ta = ta, .tb = tb, .a = a->data, .b = b->data,
                  .c = c->data, .n = (int)n, .k = (int)k, .lda = (int)ac, .ldb = (int)bc,
                  .accumulate = accumulate, .m = m};
    mm_tiling(m, n, k, &job.mb, &job.nb);
    job.tiles_n = (n + job.nb - 1) / job.nb;
    const size_t tiles = (m + job.mb - 1) / job.mb * job.tiles_n;
    return wf_kernel_parallel(ctx, tiles, 1, mm_tiles, &job);
}

static int matmul_forward(const wf_kernel_ctx *ctx) {
    return matmul_run(ctx, 0);
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
    return matmul_run(ctx, 1);
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

/* 2mnk flops; reads a and b, writes c. */
static wf_cost matmul_cost(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                           const wf_desc *out) {
    (void)nin;
    const int ta = (attrs->flags & WEFT_TRANS_A) != 0;
    const double k = mm_dim(in[0].shape.d[!ta]);
    const double m = mm_dim(out->shape.d[0]), n = mm_dim(out->shape.d[1]);
    const double esize = (double)weft_dtype_size(out->dtype);
    const double bytes = ((double)wf_shape_numel(&in[0].shape) +
                          (double)wf_shape_numel(&in[1].shape) + m * n) * esize;
    return (wf_cost){2.0 * m * n * k, bytes};
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
