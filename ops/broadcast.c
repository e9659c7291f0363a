/* ops/broadcast.c - broadcast_like and sum_like, the two internal ops that move a
 * gradient between an operand's shape and the broadcast shape of a binary op's output.
 * broadcast_like(x, ref) stretches x to ref's shape; sum_like(x, ref) sums x over the
 * dims that ref broadcasts (size 1 or missing). Each is the other's gradient. ref is read
 * for its shape only.
 *
 * Both kernels fold the shapes first: size-1 dims of the larger shape are dropped and
 * neighbouring dims of one kind (broadcast or not) are merged, so [N,D] <-> [D] is a 2-dim
 * problem and a scalar <-> anything a 1-dim one. broadcast_like then copies or fills one
 * contiguous row at a time over WF_ELEM_GRAIN-element chunks of the output.
 *
 * sum_like must give bit-identical sums for any thread count, so the order of additions
 * is a function of the shapes alone. The folded dims alternate between kept (k) and
 * summed (s). If dim 0 is kept, chunks of it own disjoint output slices. If dim 0 is
 * summed, either chunks of dim 1 (kept) each sum all of dim 0 into their own slice (the
 * order of a plain sequential loop), or, when the output is too narrow for that, fixed
 * blocks of dim 0 each sum into a private partial result and the partials are added in
 * block order. A contiguous run of summed elements is added with 8 fixed interleaved
 * accumulators (vectorisable, and independent of alignment), so sums may differ in the
 * last bits from a naive left-to-right loop, but never between runs or thread counts.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/internal.h"
#include "scheduler/internal.h"

/* ---- shape rules ---------------------------------------------------------------------- */

/* 1 if `from` broadcasts to `to` (NumPy rules, aligned on the right, `from` not longer).
 * A pair with an unknown (-1) dim passes: run time checks it again with concrete shapes.
 * (wf_shape_broadcast(from, to) == to would reject [3] -> [?], which may be fine.) */
static int shape_broadcasts_to(const wf_shape *from, const wf_shape *to) {
    if (from->ndim > to->ndim) return 0;
    for (int i = 1; i <= from->ndim; i++) {
        int64_t f = from->d[from->ndim - i], t = to->d[to->ndim - i];
        if (f != t && f != 1 && f >= 0 && t >= 0) return 0;
    }
    return 1;
}

/* broadcast_like(x, ref): x's dtype (any: the kernel only copies), ref's shape. */
static weft_status broadcast_like_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                        wf_desc *out) {
    (void)attrs, (void)nin;
    if (weft_dtype_size(in[0].dtype) == 0)
        return wf_op_error("broadcast_like", "unknown dtype %d", (int)in[0].dtype);
    if (!shape_broadcasts_to(&in[0].shape, &in[1].shape))
        return wf_op_shape_error("broadcast_like", "shape does not broadcast", &in[0].shape,
                                 "to", &in[1].shape);
    out->dtype = in[0].dtype;
    out->shape = in[1].shape;
    return WEFT_OK;
}

/* sum_like(x, ref): x float; ref's shape must broadcast to x's. x's dtype, ref's shape. */
static weft_status sum_like_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                  wf_desc *out) {
    (void)attrs, (void)nin;
    if (!wf_dtype_is_float(in[0].dtype))
        return wf_op_error("sum_like", "expects f32 or f64, got %s",
                           weft_dtype_name(in[0].dtype));
    if (!shape_broadcasts_to(&in[1].shape, &in[0].shape))
        return wf_op_shape_error("sum_like", "target shape does not broadcast to the input",
                                 &in[0].shape, "->", &in[1].shape);
    out->dtype = in[0].dtype;
    out->shape = in[1].shape;
    return WEFT_OK;
}

/* ---- broadcast_like kernel ------------------------------------------------------------
 * The folded output dims (outermost first, ndim >= 1) and x's stride along each, in
 * elements: 0 where x is broadcast. The innermost stride is 1 or 0. */
typedef struct stretch_plan {
    int ndim;
    int64_t dim[WEFT_MAX_DIMS];
    int64_t stride[WEFT_MAX_DIMS];
    size_t esize;
    const char *x;
    char *out;
} stretch_plan;

static void stretch_plan_init(stretch_plan *plan, const wf_tref *x, const wf_tref *out) {
    const wf_shape *os = &out->shape;
    int64_t dim[WEFT_MAX_DIMS], stride[WEFT_MAX_DIMS], run = 1;
    int n = 0; /* dims kept so far, innermost first */
    for (int i = os->ndim - 1; i >= 0; i--) {
        int ix = i - (os->ndim - x->shape.ndim);
        int64_t d = os->d[i], dx = ix >= 0 ? x->shape.d[ix] : 1;
        if (d == 1) continue;
        int64_t step = dx == 1 ? 0 : run;
        run *= dx;
        if (n > 0 && step == stride[n - 1] * dim[n - 1]) {
            dim[n - 1] *= d; /* contiguous with, or broadcast like, the inner dim */
            continue;
        }
        dim[n] = d, stride[n] = step;
        n++;
    }
    if (n == 0) dim[0] = 1, stride[0] = 1, n = 1; /* a single element */
    plan->ndim = n;
    for (int i = 0; i < n; i++) {
        plan->dim[i] = dim[n - 1 - i];
        plan->stride[i] = stride[n - 1 - i];
    }
    plan->esize = weft_dtype_size(out->dtype);
    plan->x = x->data;
    plan->out = out->data;
}

/* n copies of the element at src (4 or 8 bytes: every weft dtype). */
static void fill_elements(char *dst, const char *src, size_t n, size_t esize) {
    if (esize == 8) {
        uint64_t v, *d = (uint64_t *)(void *)dst;
        memcpy(&v, src, 8);
        _Pragma("omp simd") for (size_t i = 0; i < n; i++) d[i] = v;
    } else if (esize == 4) {
        uint32_t v, *d = (uint32_t *)(void *)dst;
        memcpy(&v, src, 4);
        _Pragma("omp simd") for (size_t i = 0; i < n; i++) d[i] = v;
    } else {
        for (size_t i = 0; i < n; i++) memcpy(dst + i * esize, src, esize);
    }
}

/* Output elements [begin, end): positions an odometer at begin, then copies (x advances)
 * or fills (x broadcast) one innermost row, or part of one, at a time. */
static int stretch_chunk(void *arg, size_t begin, size_t end) {
    const stretch_plan *plan = arg;
    const int last = plan->ndim - 1;
    const int64_t *dim = plan->dim, *stride = plan->stride;
    const size_t es = plan->esize;
    int64_t idx[WEFT_MAX_DIMS], off = 0;
    size_t rest = begin;
    for (int i = last; i >= 0; i--) {
        idx[i] = (int64_t)(rest % (size_t)dim[i]);
        rest /= (size_t)dim[i];
        off += idx[i] * stride[i];
    }
    for (size_t pos = begin; pos < end;) {
        size_t len = (size_t)(dim[last] - idx[last]);
        if (len > end - pos) len = end - pos;
        if (stride[last]) memcpy(plan->out + pos * es, plan->x + (size_t)off * es, len * es);
        else fill_elements(plan->out + pos * es, plan->x + (size_t)off * es, len, es);
        pos += len;
        idx[last] += (int64_t)len;
        off += (int64_t)len * stride[last];
        for (int i = last; i > 0 && idx[i] == dim[i]; i--) { /* carry */
            idx[i] = 0;
            off += stride[i - 1] - dim[i] * stride[i];
            idx[i - 1]++;
        }
    }
    return 0;
}

/* Same element count: the identity (a copy, or nothing when the memory plan runs it in
 * place). Both ops take this path whenever the shapes agree at run time. */
static int identity_copy(const wf_kernel_ctx *ctx) {
    size_t bytes = wf_shape_numel(&ctx->out->shape) * weft_dtype_size(ctx->out->dtype);
    if (bytes && ctx->out->data != ctx->in[0].data) memcpy(ctx->out->data, ctx->in[0].data, bytes);
    return 0;
}

static int broadcast_like_forward(const wf_kernel_ctx *ctx) {
    size_t n = wf_shape_numel(&ctx->out->shape);
    if (n == 0) return 0;
    if (n == wf_shape_numel(&ctx->in[0].shape)) return identity_copy(ctx);
    stretch_plan plan;
    stretch_plan_init(&plan, &ctx->in[0], ctx->out);
    return wf_kernel_parallel(ctx, n, WF_ELEM_GRAIN, stretch_chunk, &plan);
}

/* ---- sum_like kernel -------------------------------------------------------------------
 * The folded dims of x (outermost first, ndim >= 1, alternating kept / summed), x's
 * strides (x is contiguous) and the output's (0 on summed dims). */
typedef struct sum_plan sum_plan;

/* out += x summed over indices [begin, end) of dim `level` and all of the dims inside it;
 * x and out point at index 0 of `level`. */
typedef void (*sum_into_fn)(const sum_plan *plan, int level, int64_t begin, int64_t end,
                            const void *x, void *out);
/* dst[0..n) += src[0..n) */
typedef void (*add_into_fn)(void *dst, const void *src, size_t n);

struct sum_plan {
    int ndim;
    int64_t dim[WEFT_MAX_DIMS];
    int64_t xstride[WEFT_MAX_DIMS], ostride[WEFT_MAX_DIMS];
    size_t esize, out_numel;
    const char *x;
    char *out;
    char *partial;      /* row blocks: a private result per block; NULL: write out */
    int64_t block_rows; /* row blocks: dim-0 indices per block */
    size_t nblocks;
    sum_into_fn sum_into;
    add_into_fn add_into;
};

static void sum_plan_init(sum_plan *plan, const wf_tref *x, const wf_tref *out) {
    const wf_shape *xs = &x->shape, *os = &out->shape;
    int64_t dim[WEFT_MAX_DIMS], xstride[WEFT_MAX_DIMS], ostride[WEFT_MAX_DIMS];
    int64_t run_x = 1, run_out = 1;
    int n = 0; /* dims kept so far, innermost first */
    for (int i = xs->ndim - 1; i >= 0; i--) {
        int io = i - (xs->ndim - os->ndim);
        int64_t d = xs->d[i];
        if (d == 1) continue;
        int kept = io >= 0 && os->d[io] != 1;
        int64_t xstep = run_x, ostep = kept ? run_out : 0;
        run_x *= d;
        if (kept) run_out *= d;
        if (n > 0 && (ostep != 0) == (ostride[n - 1] != 0)) {
            dim[n - 1] *= d; /* same kind as the inner dim: merge */
            continue;
        }
        dim[n] = d, xstride[n] = xstep, ostride[n] = ostep;
        n++;
    }
    if (n == 0) dim[0] = 1, xstride[0] = 1, ostride[0] = 1, n = 1; /* a single element */
    plan->ndim = n;
    for (int i = 0; i < n; i++) {
        plan->dim[i] = dim[n - 1 - i];
        plan->xstride[i] = xstride[n - 1 - i];
        plan->ostride[i] = ostride[n - 1 - i];
    }
    plan->esize = weft_dtype_size(x->dtype);
    plan->out_numel = wf_shape_numel(os);
    plan->x = x->data;
    plan->out = out->data;
    plan->partial = NULL;
    plan->block_rows = 1;
    plan->nblocks = 1;
}

#define SUM_LANES 8

#define DEFINE_SUM_T(T)                                                                    \
    /* x[0] + ... + x[n-1] as 8 interleaved partial sums, then those in lane order, then   \
     * the tail: a fixed order, whatever the alignment of x. */                            \
    static T lane_sum_##T(const T *x, int64_t n) {                                         \
        T lane[SUM_LANES] = {0};                                                           \
        int64_t i = 0;                                                                     \
        for (; i + SUM_LANES <= n; i += SUM_LANES)                                         \
            _Pragma("omp simd") for (int l = 0; l < SUM_LANES; l++) lane[l] += x[i + l];   \
        T sum = lane[0];                                                                   \
        for (int l = 1; l < SUM_LANES; l++) sum += lane[l];                                \
        for (; i < n; i++) sum += x[i];                                                    \
        return sum;                                                                        \
    }                                                                                      \
    static void sum_into_##T(const sum_plan *plan, int level, int64_t begin, int64_t end,  \
                             const void *xv, void *outv) {                                 \
        const T *x = xv;                                                                   \
        T *out = outv;                                                                     \
        if (level < plan->ndim - 1) {                                                      \
            const int64_t xs = plan->xstride[level], os = plan->ostride[level];            \
            for (int64_t i = begin; i < end; i++)                                          \
                sum_into_##T(plan, level + 1, 0, plan->dim[level + 1], x + i * xs,         \
                             out + i * os);                                                \
        } else if (plan->ostride[level]) { /* innermost, kept: both strides are 1 */      \
            _Pragma("omp simd") for (int64_t i = begin; i < end; i++) out[i] += x[i];      \
        } else { /* innermost, summed */                                                   \
            *out += lane_sum_##T(x + begin, end - begin);                                  \
        }                                                                                  \
    }                                                                                      \
    static void add_into_##T(void *dstv, const void *srcv, size_t n) {                     \
        T *dst = dstv;                                                                     \
        const T *src = srcv;                                                               \
        _Pragma("omp simd") for (size_t i = 0; i < n; i++) dst[i] += src[i];               \
    }
DEFINE_SUM_T(float)
DEFINE_SUM_T(double)

/* Dim 0 kept: indices [begin, end) of it own the output slice they sum into. */
static int sum_kept_chunk(void *arg, size_t begin, size_t end) {
    const sum_plan *plan = arg;
    size_t slice = (size_t)plan->ostride[0] * plan->esize;
    memset(plan->out + begin * slice, 0, (end - begin) * slice);
    plan->sum_into(plan, 0, (int64_t)begin, (int64_t)end, plan->x, plan->out);
    return 0;
}

/* Dim 0 summed, split on dim 1 (kept): indices [begin, end) of dim 1 own their output
 * slice and sum every dim-0 index into it, in order. */
static int sum_column_chunk(void *arg, size_t begin, size_t end) {
    const sum_plan *plan = arg;
    size_t slice = (size_t)plan->ostride[1] * plan->esize;
    size_t row = (size_t)plan->xstride[0] * plan->esize;
    memset(plan->out + begin * slice, 0, (end - begin) * slice);
    for (int64_t r = 0; r < plan->dim[0]; r++)
        plan->sum_into(plan, 1, (int64_t)begin, (int64_t)end, plan->x + (size_t)r * row,
                       plan->out);
    return 0;
}

/* Dim 0 summed, row blocks: block k = [begin, end) of dim 0 sums into partial k (into
 * the output itself when there is a single block). */
static int sum_block_chunk(void *arg, size_t begin, size_t end) {
    const sum_plan *plan = arg;
    size_t bytes = plan->out_numel * plan->esize;
    char *dst = plan->partial
                    ? plan->partial + (begin / (size_t)plan->block_rows) * bytes
                    : plan->out;
    memset(dst, 0, bytes);
    plan->sum_into(plan, 0, (int64_t)begin, (int64_t)end, plan->x, dst);
    return 0;
}

/* Output elements [begin, end) = partial 0 + partial 1 + ..., in block order. */
static int sum_combine_chunk(void *arg, size_t begin, size_t end) {
    const sum_plan *plan = arg;
    const size_t es = plan->esize, stride = plan->out_numel * es;
    memcpy(plan->out + begin * es, plan->partial + begin * es, (end - begin) * es);
    for (size_t k = 1; k < plan->nblocks; k++)
        plan->add_into(plan->out + begin * es, plan->partial + k * stride + begin * es,
                       end - begin);
    return 0;
}

static int sum_like_forward(const wf_kernel_ctx *ctx) {
    const wf_tref *x = &ctx->in[0], *out = ctx->out;
    size_t total = wf_shape_numel(&x->shape), out_numel = wf_shape_numel(&out->shape);
    size_t es = weft_dtype_size(out->dtype);
    if (out_numel == 0) return 0;
    if (total == out_numel) return identity_copy(ctx);
    if (total == 0) { /* an empty sum */
        memset(out->data, 0, out_numel * es);
        return 0;
    }
    sum_plan plan;
    sum_plan_init(&plan, x, out);
    if (x->dtype == WEFT_F32) {
        plan.sum_into = sum_into_float;
        plan.add_into = add_into_float;
    } else if (x->dtype == WEFT_F64) {
        plan.sum_into = sum_into_double;
        plan.add_into = add_into_double;
    } else { /* the shape rule admits floats only: a caller bypassed it */
        return wf_op_error("sum_like", "no kernel for dtype %s", weft_dtype_name(x->dtype));
    }

    size_t rows = (size_t)plan.dim[0], row_len = (size_t)plan.xstride[0];
    size_t rows_per_chunk = row_len >= WF_ELEM_GRAIN ? 1 : WF_ELEM_GRAIN / row_len;
    if (plan.ostride[0]) /* dim 0 kept */
        return wf_kernel_parallel(ctx, rows, rows_per_chunk, sum_kept_chunk, &plan);

    plan.block_rows = (int64_t)rows_per_chunk;
    plan.nblocks = (rows + rows_per_chunk - 1) / rows_per_chunk;
    if (plan.nblocks == 1)
        return wf_kernel_parallel(ctx, rows, rows_per_chunk, sum_block_chunk, &plan);
    if (plan.ndim >= 2 && plan.nblocks * out_numel > total / 8) {
        /* partials would cost more than an eighth of x: split the output instead */
        size_t col_work = rows * (size_t)plan.xstride[1]; /* elements per dim-1 index */
        size_t cols_per_chunk = col_work >= WF_ELEM_GRAIN ? 1 : WF_ELEM_GRAIN / col_work;
        return wf_kernel_parallel(ctx, (size_t)plan.dim[1], cols_per_chunk, sum_column_chunk,
                                  &plan);
    }
    size_t bytes = plan.nblocks * out_numel * es;
    plan.partial = wf_kernel_scratch(ctx, bytes);
    if (!plan.partial) return WEFT_ERR_NOMEM;
    int rc = wf_kernel_parallel(ctx, rows, rows_per_chunk, sum_block_chunk, &plan);
    if (!rc) rc = wf_kernel_parallel(ctx, out_numel, WF_ELEM_GRAIN, sum_combine_chunk, &plan);
    return rc;
}

/* ---- cost: ref's data is never read --------------------------------------------------- */

static double desc_bytes(const wf_desc *d) {
    return (double)wf_shape_numel(&d->shape) * (double)weft_dtype_size(d->dtype);
}

static wf_cost broadcast_like_cost(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                                   const wf_desc *out) {
    (void)attrs, (void)nin;
    return (wf_cost){0, desc_bytes(&in[0]) + desc_bytes(out)};
}

static wf_cost sum_like_cost(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                             const wf_desc *out) {
    (void)attrs, (void)nin;
    double summed = (double)wf_shape_numel(&in[0].shape);
    return (wf_cost){summed, desc_bytes(&in[0]) + desc_bytes(out)};
}

/* ---- backward builders ------------------------------------------------------------------
 * ref (input 1) contributes only its shape, so its gradient is zero: gin[1] stays
 * WF_NO_VALUE (no contribution). */

/* gin[0] = sum_like(g, x), or g itself when the shapes are equal. */
static weft_status broadcast_like_backward(wf_grad_ctx *c) {
    weft_status st = WEFT_OK;
    if (c->needs[0])
        st = wf_emit_unbroadcast(c, c->gout, c->in[0], c->out_desc, &c->in_desc[0], &c->gin[0]);
    return st;
}

/* gin[0] = broadcast_like(g, x), or g itself when the shapes are equal and known. */
static weft_status sum_like_backward(wf_grad_ctx *c) {
    weft_status st = WEFT_OK;
    if (c->needs[0]) {
        const wf_shape *gs = &c->out_desc->shape, *xs = &c->in_desc[0].shape;
        if (wf_shape_equal(gs, xs) && wf_shape_known(gs)) c->gin[0] = c->gout;
        else st = wf_emit2(c, WF_OP_BROADCAST_LIKE, c->gout, c->in[0], NULL, &c->gin[0]);
    }
    return st;
}

/* ---- the table entries ---------------------------------------------------------------- */

const wf_op_def wf_op_def_broadcast_like = {.name = "broadcast_like",
                                            .min_inputs = 2,
                                            .max_inputs = 2,
                                            .flags = WF_OPF_INTERNAL | WF_OPF_INPLACE | WF_OPF_VIEW,
                                            .shape_only = 1u << 1,
                                            .shape = broadcast_like_shape,
                                            .forward = broadcast_like_forward,
                                            .backward = broadcast_like_backward,
                                            .cost = broadcast_like_cost};

const wf_op_def wf_op_def_sum_like = {.name = "sum_like",
                                      .min_inputs = 2,
                                      .max_inputs = 2,
                                      .flags = WF_OPF_INTERNAL | WF_OPF_INPLACE | WF_OPF_VIEW,
                                      .shape_only = 1u << 1,
                                      .shape = sum_like_shape,
                                      .forward = sum_like_forward,
                                      .backward = sum_like_backward,
                                      .cost = sum_like_cost};
