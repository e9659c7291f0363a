/* ops/reduce.c - sum and mean over all elements or over one axis, and argmax over the
 * last axis.
 *
 * Determinism: every result is a pure function of the input, bit for bit, whatever the
 * number of threads. Work is split with wf_kernel_parallel, whose chunk bounds depend only
 * on the shape, and no sum ever adds terms from two chunks in a thread-dependent order:
 *   - over all elements: one partial sum per chunk of WF_ELEM_GRAIN elements, then the
 *     partials added in chunk order on the calling thread;
 *   - over an axis (x seen as [outer, len, inner]): chunks of output positions; with
 *     inner > 1 each output is summed strictly in axis order (the vector runs across
 *     neighbouring outputs, not along the axis); with inner == 1 (the last axis) a row is
 *     contiguous and summed with an omp simd reduction, whose lane order is fixed by the
 *     binary, not by the threads.
 * Sums accumulate in double for f32 and f64 alike: an f32 sum of a million elements stays
 * accurate, and a sum of ones is exact up to 2^53 (mean's backward relies on that when a
 * count is only known at run time). The mean divides the double sum by the count once.
 */
#include <math.h>

#include "ops/internal.h"
#include "scheduler/internal.h"
#include "weft/ops.h"

#define FLOAT_TYPES(X) X(float, f32) X(double, f64)

/* Output positions an axis block sums at once (inner > 1): its double accumulators live
 * on the stack. */
#define AXIS_BLOCK ((size_t)256)
/* Partial sums up to this many chunks live on the stack; more go to the node's scratch. */
#define STACK_PARTIALS 64

/* ---- shape rules ---------------------------------------------------------------------- */

/* sum and mean: a float tensor; attrs->axis is WEFT_AXIS_ALL or an axis, normalised here
 * (negative counts from the end); keepdims keeps the reduced axes with size 1. */
static weft_status reduce_shape(const char *op, wf_attrs *attrs, const wf_desc *in,
                                wf_desc *out) {
    const wf_shape *s = &in->shape;
    if (!wf_dtype_is_float(in->dtype))
        return wf_op_error(op, "input must be f32 or f64, got %s", weft_dtype_name(in->dtype));
    attrs->keepdims = attrs->keepdims != 0;
    out->dtype = in->dtype;
    if (attrs->axis == WEFT_AXIS_ALL) {
        out->shape.ndim = attrs->keepdims ? s->ndim : 0;
        for (int i = 0; i < out->shape.ndim; i++) out->shape.d[i] = 1;
        return WEFT_OK;
    }
    int axis = wf_axis_norm(attrs->axis, s->ndim);
    if (axis < 0) {
        char buf[160];
        return wf_op_error(op, "axis %d out of range for %s", attrs->axis,
                           wf_shape_str(s, buf, sizeof buf));
    }
    attrs->axis = axis;
    out->shape = *s;
    if (attrs->keepdims) {
        out->shape.d[axis] = 1;
    } else {
        for (int i = axis; i + 1 < s->ndim; i++) out->shape.d[i] = s->d[i + 1];
        out->shape.ndim = s->ndim - 1;
    }
    return WEFT_OK;
}

static weft_status sum_shape(wf_attrs *attrs, size_t nin, const wf_desc *in, wf_desc *out) {
    (void)nin;
    return reduce_shape("sum", attrs, in, out);
}

static weft_status mean_shape(wf_attrs *attrs, size_t nin, const wf_desc *in, wf_desc *out) {
    (void)nin;
    return reduce_shape("mean", attrs, in, out);
}

/* argmax: a float tensor of at least one dimension with a non-empty last axis whose
 * indices fit in i32; the result drops the last axis. */
static weft_status argmax_shape(wf_attrs *attrs, size_t nin, const wf_desc *in, wf_desc *out) {
    (void)attrs, (void)nin;
    const wf_shape *s = &in->shape;
    if (!wf_dtype_is_float(in->dtype))
        return wf_op_error("argmax", "input must be f32 or f64, got %s",
                           weft_dtype_name(in->dtype));
    if (s->ndim < 1)
        return wf_op_shape_error("argmax", "needs at least one dimension", s, NULL, NULL);
    int64_t c = s->d[s->ndim - 1];
    if (c == 0) return wf_op_shape_error("argmax", "the last axis is empty", s, NULL, NULL);
    if (c > INT32_MAX)
        return wf_op_shape_error("argmax", "the last axis is too long for i32 indices", s, NULL,
                                 NULL);
    out->dtype = WEFT_I32;
    out->shape = *s;
    out->shape.ndim = s->ndim - 1;
    return WEFT_OK;
}

/* ---- sum and mean kernels ------------------------------------------------------------- */

/* What the chunk bodies read. x is seen as [outer, len, inner] (over all elements: len =
 * numel, outer = inner = 1); each output is (sum along len) / div, div = 1 for sum and the
 * count for mean. */
typedef struct reduce_job {
    const void *x;
    void *y;
    size_t len, inner;
    double div;
    double *partial; /* over all elements: partial[c] of chunk c (chunks of `grain`) */
    size_t grain;
} reduce_job;

/* Sum of x[0, n) in double (see the file comment on the simd order). */
#define DEFINE_SPAN_SUM(T, S)                                                              \
    static double span_sum_##S(const T *x, size_t n) {                                     \
        double acc = 0.0;                                                                  \
        _Pragma("omp simd reduction(+ : acc)") for (size_t i = 0; i < n; i++) acc += x[i]; \
        return acc;                                                                        \
    }
FLOAT_TYPES(DEFINE_SPAN_SUM)

/* Over all elements: chunk [b, e) writes its partial sum. */
#define DEFINE_ALL_BODY(T, S)                                                              \
    static int all_body_##S(void *arg, size_t b, size_t e) {                               \
        const reduce_job *j = arg;                                                         \
        j->partial[b / j->grain] = span_sum_##S((const T *)j->x + b, e - b);               \
        return 0;                                                                          \
    }
FLOAT_TYPES(DEFINE_ALL_BODY)

/* Last axis (inner == 1): output rows [b, e), each a contiguous run of len elements. */
#define DEFINE_ROWS_BODY(T, S)                                                             \
    static int rows_body_##S(void *arg, size_t b, size_t e) {                              \
        const reduce_job *j = arg;                                                         \
        const T *x = j->x;                                                                 \
        T *y = j->y;                                                                       \
        for (size_t r = b; r < e; r++)                                                     \
            y[r] = (T)(span_sum_##S(x + r * j->len, j->len) / j->div);                     \
        return 0;                                                                          \
    }
FLOAT_TYPES(DEFINE_ROWS_BODY)

/* Inner axis (inner > 1): output positions p in [b, e), p = o * inner + i. A block of up
 * to AXIS_BLOCK neighbouring positions of one o is summed together: for each k in axis
 * order, acc[i] += x[o, k, i] across the block (contiguous, vectorised), so every output
 * still sees its terms one by one in index order. */
#define DEFINE_INNER_BODY(T, S)                                                            \
    static int inner_body_##S(void *arg, size_t b, size_t e) {                             \
        const reduce_job *j = arg;                                                         \
        const T *x = j->x;                                                                 \
        T *y = j->y;                                                                       \
        double acc[AXIS_BLOCK];                                                            \
        for (size_t p = b; p < e;) {                                                       \
            size_t o = p / j->inner, i = p % j->inner;                                     \
            size_t n = e - p < j->inner - i ? e - p : j->inner - i;                        \
            if (n > AXIS_BLOCK) n = AXIS_BLOCK;                                            \
            const T *xo = x + o * j->len * j->inner + i;                                   \
            for (size_t q = 0; q < n; q++) acc[q] = 0.0;                                   \
            for (size_t k = 0; k < j->len; k++) {                                          \
                const T *xk = xo + k * j->inner;                                           \
                _Pragma("omp simd") for (size_t q = 0; q < n; q++) acc[q] += xk[q];        \
            }                                                                              \
            for (size_t q = 0; q < n; q++) y[p + q] = (T)(acc[q] / j->div);                \
            p += n;                                                                        \
        }                                                                                  \
        return 0;                                                                          \
    }
FLOAT_TYPES(DEFINE_INNER_BODY)

#define DEFINE_STORE(T, S)                                                                 \
    static void store_##S(void *y, double v) { *(T *)y = (T)v; }
FLOAT_TYPES(DEFINE_STORE)

/* Over all elements: the partial sums of fixed chunks, added in chunk order. Up to
 * STACK_PARTIALS chunks (2M elements) the partials live on the stack, beyond in the node's
 * scratch (allocated by the first run only). */
static int reduce_all(const wf_kernel_ctx *ctx, reduce_job *j, size_t n, int f32) {
    double stack[STACK_PARTIALS];
    size_t nchunks = (n + WF_ELEM_GRAIN - 1) / WF_ELEM_GRAIN;
    j->grain = WF_ELEM_GRAIN;
    j->partial = nchunks <= STACK_PARTIALS ? stack
                                           : wf_kernel_scratch(ctx, nchunks * sizeof(double));
    if (!j->partial) return WEFT_ERR_NOMEM; /* recorded by wf_kernel_scratch */
    int rc = wf_kernel_parallel(ctx, n, WF_ELEM_GRAIN, f32 ? all_body_f32 : all_body_f64, j);
    if (rc) return rc;
    double total = 0.0;
    for (size_t c = 0; c < nchunks; c++) total += j->partial[c];
    (f32 ? store_f32 : store_f64)(j->y, total / j->div);
    return 0;
}

/* sum (mean = 0) or mean (mean = 1) as the shape rule described the output. */
static int reduce_forward(const wf_kernel_ctx *ctx, const char *op, int mean) {
    const wf_tref *x = &ctx->in[0];
    const int f32 = x->dtype == WEFT_F32;
    const int axis = ctx->attrs->axis;
    reduce_job j = {.x = x->data, .y = ctx->out->data, .div = 1.0};
    if (axis == WEFT_AXIS_ALL) {
        size_t n = wf_shape_numel(&x->shape);
        if (mean) j.div = (double)n; /* 0 elements: 0 / 0 = NaN, as NumPy */
        return reduce_all(ctx, &j, n, f32);
    }
    if (axis < 0 || axis >= x->shape.ndim) /* the shape rule normalised it: our bug */
        return wf_op_error(op, "internal: axis %d not normalised", axis);
    size_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= (size_t)x->shape.d[i];
    for (int i = axis + 1; i < x->shape.ndim; i++) inner *= (size_t)x->shape.d[i];
    j.len = (size_t)x->shape.d[axis];
    j.inner = inner;
    if (mean) j.div = (double)j.len;
    /* each output position costs len additions: about WF_ELEM_GRAIN elements a chunk */
    size_t grain = j.len ? WF_ELEM_GRAIN / j.len : WF_ELEM_GRAIN;
    if (grain == 0) grain = 1;
    weft_range_fn body = inner == 1 ? (f32 ? rows_body_f32 : rows_body_f64)
                                    : (f32 ? inner_body_f32 : inner_body_f64);
    return wf_kernel_parallel(ctx, outer * inner, grain, body, &j);
}

static int sum_forward(const wf_kernel_ctx *ctx) { return reduce_forward(ctx, "sum", 0); }
static int mean_forward(const wf_kernel_ctx *ctx) { return reduce_forward(ctx, "mean", 1); }

/* ---- argmax kernel -------------------------------------------------------------------- */

typedef struct argmax_job {
    const void *x;
    int32_t *y;
    size_t len; /* >= 1 */
} argmax_job;

/* Rows [b, e). Ties keep the first index; a NaN counts as the largest value (the first
 * NaN wins, as in NumPy). Two passes over a row, both cheap: a vectorised pass for the
 * maximum and whether a NaN occurs, then a scan for the first element equal to it (or the
 * first NaN). -0 and +0 compare equal, so they tie like any equal pair. */
#define DEFINE_ARGMAX_BODY(T, S)                                                           \
    static int argmax_body_##S(void *arg, size_t b, size_t e) {                            \
        const argmax_job *j = arg;                                                         \
        const size_t c = j->len;                                                           \
        for (size_t r = b; r < e; r++) {                                                   \
            const T *row = (const T *)j->x + r * c;                                        \
            T m = row[0];                                                                  \
            int nan = 0;                                                                   \
            _Pragma("omp simd reduction(max : m) reduction(| : nan)")                      \
            for (size_t k = 0; k < c; k++) {                                               \
                m = row[k] > m ? row[k] : m;                                               \
                nan |= isnan(row[k]);                                                      \
            }                                                                              \
            size_t at = 0;                                                                 \
            if (nan)                                                                       \
                while (!isnan(row[at])) at++;                                              \
            else                                                                           \
                while (row[at] != m) at++;                                                 \
            j->y[r] = (int32_t)at;                                                         \
        }                                                                                  \
        return 0;                                                                          \
    }
FLOAT_TYPES(DEFINE_ARGMAX_BODY)

static int argmax_forward(const wf_kernel_ctx *ctx) {
    const wf_tref *x = &ctx->in[0];
    const int nd = x->shape.ndim;
    if (nd < 1 || x->shape.d[nd - 1] < 1) /* the shape rule refused it: our bug */
        return wf_op_error("argmax", "internal: empty last axis");
    size_t rows = 1;
    for (int i = 0; i + 1 < nd; i++) rows *= (size_t)x->shape.d[i];
    argmax_job j = {.x = x->data, .y = ctx->out->data, .len = (size_t)x->shape.d[nd - 1]};
    size_t grain = WF_ELEM_GRAIN / j.len ? WF_ELEM_GRAIN / j.len : 1;
    return wf_kernel_parallel(ctx, rows, grain,
                              x->dtype == WEFT_F32 ? argmax_body_f32 : argmax_body_f64, &j);
}

/* ---- cost ---------------------------------------------------------------------------- */

/* One flop (an add or a compare) per input element; the input read, the output written. */

/* ---- backward ------------------------------------------------------------------------ */

/* The gradient of a sum of input 0 given q, a value with the output's shape: q broadcast
 * back to the input's shape. Without keepdims, the reduced axis is first put back with
 * size 1 (a reshape whose shape is the input's with that axis set to 1; an open dimension
 * stays -1, "inferred", so at most one may remain), except for axis 0, where NumPy
 * broadcasting already prepends it. */
static weft_status sum_grad_of(wf_grad_ctx *ctx, const char *op, uint32_t q) {
    const wf_attrs *at = ctx->attrs;
    const wf_shape *xs = &ctx->in_desc[0].shape;
    weft_status st;
    if (at->axis != WEFT_AXIS_ALL && !at->keepdims && at->axis > 0) {
        wf_attrs ra = {.shape = *xs};
        ra.shape.d[at->axis] = 1;
        int open = 0;
        for (int i = 0; i < ra.shape.ndim; i++) open += ra.shape.d[i] < 0;
        if (open > 1) {
            char buf[160];
            return wf_op_error(op, "gradient over axis %d of %s: more than one open dimension "
                               "besides the reduced one",
                               at->axis, wf_shape_str(xs, buf, sizeof buf));
        }
        if ((st = wf_emit1(ctx, WF_OP_RESHAPE, q, &ra, &q))) return st;
    }
    return wf_emit2(ctx, WF_OP_BROADCAST_LIKE, q, ctx->in[0], NULL, &ctx->gin[0]);
}

static weft_status sum_backward(wf_grad_ctx *ctx) {
    if (!ctx->needs[0]) return WEFT_OK;
    return sum_grad_of(ctx, "sum", ctx->gout);
}

/* mean = sum / count, so the gradient is sum's applied to gout / count. A count known at
 * build time becomes scale(gout, 1 / count). A count that involves an open dimension is
 * computed by the graph: sum(fill_like(a, 1)) with the forward's axis and keepdims, which
 * has gout's shape and is exact (double accumulation), then div(gout, count). */
static weft_status mean_backward(wf_grad_ctx *ctx) {
    if (!ctx->needs[0]) return WEFT_OK;
    const wf_attrs *at = ctx->attrs;
    const wf_shape *xs = &ctx->in_desc[0].shape;
    int64_t count = at->axis == WEFT_AXIS_ALL
                        ? (wf_shape_known(xs) ? (int64_t)wf_shape_numel(xs) : -1)
                        : xs->d[at->axis];
    uint32_t q;
    weft_status st;
    if (count >= 0) {
        /* count 0: the input is empty and so is the gradient; keep the factor finite */
        wf_attrs sa = {.scalar = count ? 1.0 / (double)count : 0.0};
        st = wf_emit1(ctx, WF_OP_SCALE, ctx->gout, &sa, &q);
    } else {
        wf_attrs one = {.scalar = 1.0};
        wf_attrs red = {.axis = at->axis, .keepdims = at->keepdims};
        uint32_t ones, cnt;
        if ((st = wf_emit1(ctx, WF_OP_FILL_LIKE, ctx->in[0], &one, &ones))) return st;
        if ((st = wf_emit1(ctx, WF_OP_SUM, ones, &red, &cnt))) return st;
        st = wf_emit2(ctx, WF_OP_DIV, ctx->gout, cnt, NULL, &q);
    }
    if (st) return st;
    return sum_grad_of(ctx, "mean", q);
}

/* ---- the entries ---------------------------------------------------------------------- */

const wf_op_def wf_op_def_sum = {
    .name = "sum", .min_inputs = 1, .max_inputs = 1, .flags = 0,
    .shape = sum_shape, .forward = sum_forward, .backward = sum_backward, .flops_per_elem = 1,
};

const wf_op_def wf_op_def_mean = {
    .name = "mean", .min_inputs = 1, .max_inputs = 1, .flags = 0,
    .shape = mean_shape, .forward = mean_forward, .backward = mean_backward,
    .flops_per_elem = 1,
};

const wf_op_def wf_op_def_argmax = {
    .name = "argmax", .min_inputs = 1, .max_inputs = 1, .flags = WF_OPF_NOT_DIFFERENTIABLE,
    .shape = argmax_shape, .forward = argmax_forward, .backward = NULL, .flops_per_elem = 1,
};
