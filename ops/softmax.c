/* ops/softmax.c - softmax and log-softmax over the last axis, the two losses (softmax
 * cross-entropy with integer labels, mean squared error) and the fused kernels their
 * backward builders emit (softmax_grad, log_softmax_grad, softmax_xent_grad, mse_grad).
 *
 * Numerics: a row is shifted by its maximum before exp, so no exp overflows; row sums
 * (of exp, of g*y, of g) and the losses accumulate in double for f32 and f64 alike.
 *
 * Determinism: row ops run over fixed chunks of rows (the grain depends on the row length
 * only), and each row is computed by the same code whichever thread runs it. A loss is
 * one partial sum per chunk, added in chunk order on the calling thread. Within a row or
 * chunk, omp simd reductions reorder additions in a way fixed by the binary, not by the
 * threads. So every result is bit-identical on 1 or N threads.
 *
 * In place: only mse_grad is marked WF_OPF_INPLACE, the one elementwise op here. The row
 * kernels would also be correct on a shared buffer (a row is read whole before its first
 * write, chunks are whole rows), but the flag promises elementwise dependence.
 */
#include <math.h>
#include <string.h>

#include "ops/internal.h"
#include "ops/vmath.h"
#include "scheduler/internal.h"

/* X(T, suffix): one instantiation per float dtype (kernels without exp). */
#define FLOAT_TYPES(X) X(float, f32) X(double, f64)
/* X(T, suffix, exp of T, suffix of T): kernels with exp. f32 has two variants, libm's
 * expf for short rows and exp_f32 (below) for rows of at least EXP_VEC_MIN_ROW. */
#define EXP_VARIANTS(X)                                                                    \
    X(float, f32, expf, f32) X(float, f32v, exp_f32, f32) X(double, f64, exp, f64)
/* A short f32 row runs mostly in the scalar tail of the vector loop, where expf's short
 * table-driven latency wins (XOR's [4,2] softmax: ~55 ns with expf, ~100 with exp_f32);
 * from 16 on the vector exp wins (measured with SSE2: 1.25x at 16, 1.3x at 256; a tie at
 * 10). The choice depends on the row length only: results do not depend on threads. */
#define EXP_VEC_MIN_ROW ((size_t)16)

/* Partial sums up to this many chunks live on the stack; more go to the node's scratch. */
#define STACK_PARTIALS 64

/* Flops charged for one exp in cost estimates (a short polynomial plus range reduction). */
#define EXP_FLOPS 8.0

/* ---- shape rules ---------------------------------------------------------------------- */

static weft_status need_float(const char *op, const char *what, weft_dtype t) {
    if (wf_dtype_is_float(t)) return WEFT_OK;
    return wf_op_error(op, "%s must be f32 or f64, got %s", what, weft_dtype_name(t));
}

/* *out = a where both are known and equal, the known one where one is open (checked again
 * at run time); -1 if the ranks differ or two known sizes do. */
static int shape_merge(const wf_shape *a, const wf_shape *b, wf_shape *out) {
    if (a->ndim != b->ndim) return -1;
    wf_shape r = *a;
    for (int i = 0; i < a->ndim; i++) {
        if (a->d[i] >= 0 && b->d[i] >= 0 && a->d[i] != b->d[i]) return -1;
        if (a->d[i] < 0) r.d[i] = b->d[i];
    }
    *out = r;
    return 0;
}

/* Two float operands of one dtype and one shape; *out gets their merged description. */
static weft_status same_pair(const char *op, const wf_desc *a, const wf_desc *b,
                             wf_desc *out) {
    weft_status st;
    if ((st = need_float(op, "the operands", a->dtype))) return st;
    if (a->dtype != b->dtype)
        return wf_op_error(op, "dtypes differ: %s vs %s", weft_dtype_name(a->dtype),
                           weft_dtype_name(b->dtype));
    if (shape_merge(&a->shape, &b->shape, &out->shape))
        return wf_op_shape_error(op, "shapes differ", &a->shape, "vs", &b->shape);
    out->dtype = a->dtype;
    return WEFT_OK;
}

/* An incoming gradient that must be a scalar (one element) of dtype t. */
static weft_status need_scalar(const char *op, const wf_desc *g, weft_dtype t) {
    for (int i = 0; i < g->shape.ndim; i++)
        if (g->shape.d[i] != 1 && g->shape.d[i] >= 0)
            return wf_op_shape_error(op, "the gradient must be a scalar", &g->shape, NULL, NULL);
    if (g->dtype != t)
        return wf_op_error(op, "the gradient is %s, the operands %s", weft_dtype_name(g->dtype),
                           weft_dtype_name(t));
    return WEFT_OK;
}

/* softmax, log_softmax: a float tensor of at least one dimension; same shape out. */
static weft_status rows_shape(const char *op, const wf_desc *in, wf_desc *out) {
    weft_status st;
    if ((st = need_float(op, "the input", in->dtype))) return st;
    if (in->shape.ndim < 1)
        return wf_op_shape_error(op, "needs at least one dimension", &in->shape, NULL, NULL);
    *out = *in;
    return WEFT_OK;
}

static weft_status softmax_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                 wf_desc *out) {
    (void)attrs, (void)nin;
    return rows_shape("softmax", in, out);
}

static weft_status log_softmax_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                     wf_desc *out) {
    (void)attrs, (void)nin;
    return rows_shape("log_softmax", in, out);
}

/* softmax_grad, log_softmax_grad (y, g): the forward output and its gradient. */
static weft_status rows_grad_shape(const char *op, const wf_desc *in, wf_desc *out) {
    weft_status st;
    if ((st = same_pair(op, &in[0], &in[1], out))) return st;
    if (out->shape.ndim < 1)
        return wf_op_shape_error(op, "needs at least one dimension", &in->shape, NULL, NULL);
    return WEFT_OK;
}

static weft_status softmax_grad_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                      wf_desc *out) {
    (void)attrs, (void)nin;
    return rows_grad_shape("softmax_grad", in, out);
}

static weft_status log_softmax_grad_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                          wf_desc *out) {
    (void)attrs, (void)nin;
    return rows_grad_shape("log_softmax_grad", in, out);
}

/* logits [N,C] float and labels [N] i32. */
static weft_status xent_inputs(const char *op, const wf_desc *in) {
    const wf_desc *lg = &in[0], *lb = &in[1];
    weft_status st;
    if ((st = need_float(op, "logits", lg->dtype))) return st;
    if (lb->dtype != WEFT_I32)
        return wf_op_error(op, "labels must be i32, got %s", weft_dtype_name(lb->dtype));
    if (lg->shape.ndim != 2)
        return wf_op_shape_error(op, "logits must be [N,C]", &lg->shape, NULL, NULL);
    if (lb->shape.ndim != 1 ||
        (lg->shape.d[0] >= 0 && lb->shape.d[0] >= 0 && lg->shape.d[0] != lb->shape.d[0]))
        return wf_op_shape_error(op, "labels must be [N] for logits [N,C]", &lg->shape, "vs",
                                 &lb->shape);
    return WEFT_OK;
}

static weft_status xent_shape(wf_attrs *attrs, size_t nin, const wf_desc *in, wf_desc *out) {
    (void)attrs, (void)nin;
    weft_status st = xent_inputs("softmax_xent", in);
    if (st) return st;
    out->dtype = in[0].dtype;
    out->shape.ndim = 0;
    return WEFT_OK;
}

/* (logits, labels, g): the gradient with the logits' description; g is a scalar. */
static weft_status xent_grad_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                   wf_desc *out) {
    (void)attrs, (void)nin;
    weft_status st = xent_inputs("softmax_xent_grad", in);
    if (!st) st = need_scalar("softmax_xent_grad", &in[2], in[0].dtype);
    if (st) return st;
    *out = in[0];
    if (out->shape.d[0] < 0) out->shape.d[0] = in[1].shape.d[0];
    return WEFT_OK;
}

static weft_status mse_shape(wf_attrs *attrs, size_t nin, const wf_desc *in, wf_desc *out) {
    (void)attrs, (void)nin;
    weft_status st = same_pair("mse", &in[0], &in[1], out);
    if (st) return st;
    out->shape.ndim = 0;
    return WEFT_OK;
}

/* (pred, target, g): the gradient with pred's description; g is a scalar. */
static weft_status mse_grad_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                  wf_desc *out) {
    (void)attrs, (void)nin;
    weft_status st = same_pair("mse_grad", &in[0], &in[1], out);
    if (!st) st = need_scalar("mse_grad", &in[2], in[0].dtype);
    return st;
}

/* ---- kernels: shared pieces ----------------------------------------------------------- */

/* What the chunk bodies read. Row ops see x (and g) as rows of length c. */
typedef struct row_job {
    const void *x, *g;     /* input 0; input 1 (g, target) when there is one */
    void *y;               /* the output */
    const int32_t *labels; /* softmax_xent*: validated before any body runs */
    size_t c;              /* row length (row ops) */
    double scale;          /* the grads: g / N or 2 g / numel */
    double *partial;       /* losses: partial[chunk], chunks of `grain` */
    size_t grain;
} row_job;

/* Rows per chunk: about WF_ELEM_GRAIN elements, from the row length only. */
static size_t row_grain(size_t c) {
    size_t g = c ? WF_ELEM_GRAIN / c : WF_ELEM_GRAIN;
    return g ? g : 1;
}

static size_t row_count(const wf_shape *s) {
    size_t rows = 1;
    for (int i = 0; i + 1 < s->ndim; i++) rows *= (size_t)s->d[i];
    return rows;
}

/* The value of a one-element tensor as a double. */
static double scalar_value(const wf_tref *t) {
    return t->dtype == WEFT_F32 ? (double)*(const float *)t->data : *(const double *)t->data;
}

/* Labels in [0, c), or WEFT_ERR_RANGE naming the first bad row. Runs on the calling
 * thread before any chunk: the message is recorded where the run will look for it, and
 * names the same row whatever the thread count. */
static int check_labels(const char *op, const int32_t *labels, size_t n, size_t c) {
    int bad = 0;
    _Pragma("omp simd reduction(| : bad)") for (size_t i = 0; i < n; i++)
        bad |= (uint64_t)(int64_t)labels[i] >= (uint64_t)c;
    if (!bad) return 0;
    for (size_t i = 0; i < n; i++)
        if ((uint64_t)(int64_t)labels[i] >= (uint64_t)c)
            return wf_error(WEFT_ERR_RANGE, "%s: label %d at row %zu out of range [0, %lld)", op,
                            (int)labels[i], i, (long long)c);
    return 0;
}

/* Runs a loss body over [0, n) in chunks of `grain`, each writing partial[b / grain], and
 * returns the partials' sum in chunk order in *total. Up to STACK_PARTIALS chunks the
 * partials live on the stack, beyond in the node's scratch (allocated by the first run
 * only). */
static int chunked_sum(const wf_kernel_ctx *ctx, row_job *j, size_t n, size_t grain,
                       weft_range_fn body, double *total) {
    double stack[STACK_PARTIALS];
    size_t nchunks = (n + grain - 1) / grain;
    j->grain = grain;
    j->partial = nchunks <= STACK_PARTIALS ? stack
                                           : wf_kernel_scratch(ctx, nchunks * sizeof(double));
    if (!j->partial) return WEFT_ERR_NOMEM; /* recorded by wf_kernel_scratch */
    int rc = wf_kernel_parallel(ctx, n, grain, body, j);
    if (rc) return rc;
    double t = 0.0;
    for (size_t k = 0; k < nchunks; k++) t += j->partial[k];
    *total = t;
    return 0;
}

/* ---- kernels, once per dtype ----------------------------------------------------------- */

/* The maximum of x[0, c), c >= 1. */
#define DEFINE_ROW_MAX(T, S)                                                          \
    static T row_max_##S(const T *x, size_t c) {                                           \
        T m = x[0];                                                                        \
        _Pragma("omp simd reduction(max : m)") for (size_t k = 1; k < c; k++)              \
            m = x[k] > m ? x[k] : m;                                                       \
        return m;                                                                          \
    }
FLOAT_TYPES(DEFINE_ROW_MAX)

/* y = exp(x - max) / sum(exp(x - max)), rows [b, e). */
#define DEFINE_SOFTMAX(T, S, EXP, B)                                                          \
    static int softmax_body_##S(void *arg, size_t b, size_t e) {                           \
        const row_job *j = arg;                                                            \
        const size_t c = j->c;                                                             \
        for (size_t r = b; r < e; r++) {                                                   \
            const T *x = (const T *)j->x + r * c;                                          \
            T *y = (T *)j->y + r * c;                                                      \
            const T m = row_max_##B(x, c);                                                 \
            double s = 0.0;                                                                \
            _Pragma("omp simd reduction(+ : s)") for (size_t k = 0; k < c; k++) {          \
                T v = EXP(x[k] - m);                                                       \
                y[k] = v;                                                                  \
                s += v;                                                                    \
            }                                                                              \
            const T inv = (T)(1.0 / s);                                                    \
            _Pragma("omp simd") for (size_t k = 0; k < c; k++) y[k] *= inv;                \
        }                                                                                  \
        return 0;                                                                          \
    }
EXP_VARIANTS(DEFINE_SOFTMAX)

/* y = x - max - log(sum(exp(x - max))), rows [b, e); the subtraction runs in double. */
#define DEFINE_LOG_SOFTMAX(T, S, EXP, B)                                                      \
    static int log_softmax_body_##S(void *arg, size_t b, size_t e) {                       \
        const row_job *j = arg;                                                            \
        const size_t c = j->c;                                                             \
        for (size_t r = b; r < e; r++) {                                                   \
            const T *x = (const T *)j->x + r * c;                                          \
            T *y = (T *)j->y + r * c;                                                      \
            const T m = row_max_##B(x, c);                                                 \
            double s = 0.0;                                                                \
            _Pragma("omp simd reduction(+ : s)") for (size_t k = 0; k < c; k++)            \
                s += EXP(x[k] - m);                                                        \
            const double shift = (double)m + log(s);                                       \
            _Pragma("omp simd") for (size_t k = 0; k < c; k++)                             \
                y[k] = (T)((double)x[k] - shift);                                          \
        }                                                                                  \
        return 0;                                                                          \
    }
EXP_VARIANTS(DEFINE_LOG_SOFTMAX)

/* out = y * (g - sum(g * y)) per row: the gradient through softmax output y. */
#define DEFINE_SOFTMAX_GRAD(T, S)                                                     \
    static int softmax_grad_body_##S(void *arg, size_t b, size_t e) {                      \
        const row_job *j = arg;                                                            \
        const size_t c = j->c;                                                             \
        for (size_t r = b; r < e; r++) {                                                   \
            const T *y = (const T *)j->x + r * c, *g = (const T *)j->g + r * c;            \
            T *o = (T *)j->y + r * c;                                                      \
            double dot = 0.0;                                                              \
            _Pragma("omp simd reduction(+ : dot)") for (size_t k = 0; k < c; k++)          \
                dot += (double)g[k] * y[k];                                                \
            const T d = (T)dot;                                                            \
            _Pragma("omp simd") for (size_t k = 0; k < c; k++) o[k] = y[k] * (g[k] - d);   \
        }                                                                                  \
        return 0;                                                                          \
    }
FLOAT_TYPES(DEFINE_SOFTMAX_GRAD)

/* out = g - exp(y) * sum(g) per row: the gradient through log-softmax output y. */
#define DEFINE_LOG_SOFTMAX_GRAD(T, S, EXP, B)                                                 \
    static int log_softmax_grad_body_##S(void *arg, size_t b, size_t e) {                  \
        const row_job *j = arg;                                                            \
        const size_t c = j->c;                                                             \
        for (size_t r = b; r < e; r++) {                                                   \
            const T *y = (const T *)j->x + r * c, *g = (const T *)j->g + r * c;            \
            T *o = (T *)j->y + r * c;                                                      \
            double sg = 0.0;                                                               \
            _Pragma("omp simd reduction(+ : sg)") for (size_t k = 0; k < c; k++)           \
                sg += g[k];                                                                \
            const T s = (T)sg;                                                             \
            _Pragma("omp simd") for (size_t k = 0; k < c; k++)                             \
                o[k] = g[k] - EXP(y[k]) * s;                                               \
        }                                                                                  \
        return 0;                                                                          \
    }
EXP_VARIANTS(DEFINE_LOG_SOFTMAX_GRAD)

/* Rows [b, e) of softmax_xent: partial = sum of log(sum(exp(x - max))) - (x[l] - max). */
#define DEFINE_XENT(T, S, EXP, B)                                                             \
    static int xent_body_##S(void *arg, size_t b, size_t e) {                              \
        const row_job *j = arg;                                                            \
        const size_t c = j->c;                                                             \
        double acc = 0.0;                                                                  \
        for (size_t r = b; r < e; r++) {                                                   \
            const T *x = (const T *)j->x + r * c;                                          \
            const T m = row_max_##B(x, c);                                                 \
            double s = 0.0;                                                                \
            _Pragma("omp simd reduction(+ : s)") for (size_t k = 0; k < c; k++)            \
                s += EXP(x[k] - m);                                                        \
            acc += log(s) - ((double)x[j->labels[r]] - (double)m);                         \
        }                                                                                  \
        j->partial[b / j->grain] = acc;                                                    \
        return 0;                                                                          \
    }
EXP_VARIANTS(DEFINE_XENT)

/* Rows [b, e) of (softmax(x) - onehot(label)) * scale. The label's entry is computed as
 * (p - 1) * scale, not p * scale - scale, to keep its precision when p is close to 1. */
#define DEFINE_XENT_GRAD(T, S, EXP, B)                                                        \
    static int xent_grad_body_##S(void *arg, size_t b, size_t e) {                         \
        const row_job *j = arg;                                                            \
        const size_t c = j->c;                                                             \
        for (size_t r = b; r < e; r++) {                                                   \
            const T *x = (const T *)j->x + r * c;                                          \
            T *o = (T *)j->y + r * c;                                                      \
            const size_t l = (size_t)j->labels[r];                                         \
            const T m = row_max_##B(x, c);                                                 \
            double s = 0.0;                                                                \
            _Pragma("omp simd reduction(+ : s)") for (size_t k = 0; k < c; k++) {          \
                T v = EXP(x[k] - m);                                                       \
                o[k] = v;                                                                  \
                s += v;                                                                    \
            }                                                                              \
            const double inv = 1.0 / s;                                                    \
            const double pl = (double)o[l] * inv;                                          \
            const T f = (T)(inv * j->scale);                                               \
            _Pragma("omp simd") for (size_t k = 0; k < c; k++) o[k] *= f;                  \
            o[l] = (T)((pl - 1.0) * j->scale);                                             \
        }                                                                                  \
        return 0;                                                                          \
    }
EXP_VARIANTS(DEFINE_XENT_GRAD)

/* Elements [b, e) of mse: partial = sum of (p - t)^2, in double. */
#define DEFINE_MSE(T, S)                                                              \
    static int mse_body_##S(void *arg, size_t b, size_t e) {                               \
        const row_job *j = arg;                                                            \
        const T *p = j->x, *t = j->g;                                                      \
        double acc = 0.0;                                                                  \
        _Pragma("omp simd reduction(+ : acc)") for (size_t i = b; i < e; i++) {            \
            double d = (double)p[i] - (double)t[i];                                        \
            acc += d * d;                                                                  \
        }                                                                                  \
        j->partial[b / j->grain] = acc;                                                    \
        return 0;                                                                          \
    }
FLOAT_TYPES(DEFINE_MSE)

/* Elements [b, e) of (p - t) * scale, scale = 2 g / numel. */
#define DEFINE_MSE_GRAD(T, S)                                                         \
    static int mse_grad_body_##S(void *arg, size_t b, size_t e) {                          \
        const row_job *j = arg;                                                            \
        const T *p = j->x, *t = j->g;                                                      \
        T *o = j->y;                                                                       \
        const T f = (T)j->scale;                                                           \
        _Pragma("omp simd") for (size_t i = b; i < e; i++) o[i] = (p[i] - t[i]) * f;       \
        return 0;                                                                          \
    }
FLOAT_TYPES(DEFINE_MSE_GRAD)

/* ---- kernels: entry points -------------------------------------------------------------- */

/* The body for the dtype of input 0 (f32 or f64: the shape rules admit nothing else);
 * PICK_EXP also by the row length c (EXP_VEC_MIN_ROW). */
#define PICK(ctx, name) ((ctx)->in[0].dtype == WEFT_F32 ? name##_f32 : name##_f64)
#define PICK_EXP(ctx, name, c)                                                             \
    ((ctx)->in[0].dtype == WEFT_F64 ? name##_f64                                           \
                                    : (c) >= EXP_VEC_MIN_ROW ? name##_f32v : name##_f32)

/* The row length (last axis) of input 0. */
static size_t row_len(const wf_kernel_ctx *ctx) {
    return (size_t)ctx->in[0].shape.d[ctx->in[0].shape.ndim - 1];
}

/* A row op over the last axis of input 0 (and input 1, same shape). */
static int rows_run(const wf_kernel_ctx *ctx, weft_range_fn body) {
    const wf_tref *x = &ctx->in[0];
    row_job j = {.x = x->data, .g = ctx->nin > 1 ? ctx->in[1].data : NULL,
                 .y = ctx->out->data, .c = row_len(ctx)};
    if (j.c == 0) return 0; /* empty rows: nothing to write */
    return wf_kernel_parallel(ctx, row_count(&x->shape), row_grain(j.c), body, &j);
}

static int softmax_forward(const wf_kernel_ctx *ctx) {
    return rows_run(ctx, PICK_EXP(ctx, softmax_body, row_len(ctx)));
}

static int log_softmax_forward(const wf_kernel_ctx *ctx) {
    return rows_run(ctx, PICK_EXP(ctx, log_softmax_body, row_len(ctx)));
}

static int softmax_grad_forward(const wf_kernel_ctx *ctx) {
    return rows_run(ctx, PICK(ctx, softmax_grad_body));
}

static int log_softmax_grad_forward(const wf_kernel_ctx *ctx) {
    return rows_run(ctx, PICK_EXP(ctx, log_softmax_grad_body, row_len(ctx)));
}

/* Mean over rows of the cross-entropy; an empty batch gives NaN (0 / 0), as a mean. */
static int xent_forward(const wf_kernel_ctx *ctx) {
    const wf_tref *x = &ctx->in[0];
    const size_t n = (size_t)x->shape.d[0], c = (size_t)x->shape.d[1];
    row_job j = {.x = x->data, .labels = ctx->in[1].data, .c = c};
    int rc = check_labels("softmax_xent", j.labels, n, c);
    double total = 0.0;
    if (!rc) rc = chunked_sum(ctx, &j, n, row_grain(c), PICK_EXP(ctx, xent_body, c), &total);
    if (rc) return rc;
    double loss = total / (double)n;
    if (x->dtype == WEFT_F32) *(float *)ctx->out->data = (float)loss;
    else *(double *)ctx->out->data = loss;
    return 0;
}

static int xent_grad_forward(const wf_kernel_ctx *ctx) {
    const wf_tref *x = &ctx->in[0];
    const size_t n = (size_t)x->shape.d[0], c = (size_t)x->shape.d[1];
    row_job j = {.x = x->data, .labels = ctx->in[1].data, .y = ctx->out->data, .c = c,
                 .scale = n ? scalar_value(&ctx->in[2]) / (double)n : 0.0};
    int rc = check_labels("softmax_xent_grad", j.labels, n, c);
    if (rc) return rc;
    return wf_kernel_parallel(ctx, n, row_grain(c), PICK_EXP(ctx, xent_grad_body, c), &j);
}

/* Mean over all elements; no elements gives NaN (0 / 0), as a mean. */
static int mse_forward(const wf_kernel_ctx *ctx) {
    const size_t n = wf_shape_numel(&ctx->in[0].shape);
    row_job j = {.x = ctx->in[0].data, .g = ctx->in[1].data};
    double total = 0.0;
    int rc = chunked_sum(ctx, &j, n, WF_ELEM_GRAIN, PICK(ctx, mse_body), &total);
    if (rc) return rc;
    double loss = total / (double)n;
    if (ctx->in[0].dtype == WEFT_F32) *(float *)ctx->out->data = (float)loss;
    else *(double *)ctx->out->data = loss;
    return 0;
}

static int mse_grad_forward(const wf_kernel_ctx *ctx) {
    const size_t n = wf_shape_numel(&ctx->in[0].shape);
    row_job j = {.x = ctx->in[0].data, .g = ctx->in[1].data, .y = ctx->out->data,
                 .scale = n ? 2.0 * scalar_value(&ctx->in[2]) / (double)n : 0.0};
    return wf_kernel_parallel(ctx, n, WF_ELEM_GRAIN, PICK(ctx, mse_grad_body), &j);
}

/* ---- cost ------------------------------------------------------------------------------ */

/* ---- backward ------------------------------------------------------------------------ */

static weft_status softmax_backward(wf_grad_ctx *ctx) {
    if (!ctx->needs[0]) return WEFT_OK;
    return wf_emit2(ctx, WF_OP_SOFTMAX_GRAD, ctx->out, ctx->gout, NULL, &ctx->gin[0]);
}

static weft_status log_softmax_backward(wf_grad_ctx *ctx) {
    if (!ctx->needs[0]) return WEFT_OK;
    return wf_emit2(ctx, WF_OP_LOG_SOFTMAX_GRAD, ctx->out, ctx->gout, NULL, &ctx->gin[0]);
}

/* The labels (i32) never carry a gradient. */
static weft_status xent_backward(wf_grad_ctx *ctx) {
    if (!ctx->needs[0]) return WEFT_OK;
    return wf_emit3(ctx, WF_OP_SOFTMAX_XENT_GRAD, ctx->in[0], ctx->in[1], ctx->gout, NULL,
                    &ctx->gin[0]);
}

/* d/dpred = mse_grad(pred, target, g); d/dtarget is its negation. */
static weft_status mse_backward(wf_grad_ctx *ctx) {
    if (!ctx->needs[0] && !ctx->needs[1]) return WEFT_OK;
    uint32_t gp;
    weft_status st = wf_emit3(ctx, WF_OP_MSE_GRAD, ctx->in[0], ctx->in[1], ctx->gout, NULL, &gp);
    if (st) return st;
    if (ctx->needs[0]) ctx->gin[0] = gp;
    if (ctx->needs[1]) st = wf_emit1(ctx, WF_OP_NEG, gp, NULL, &ctx->gin[1]);
    return st;
}

/* ---- the entries ----------------------------------------------------------------------
 * Costs: the table's default (wf_op_cost) with the flops per element of input 0 given
 * here; an exp counts EXP_FLOPS. */

#define GRAD_FLAGS (WF_OPF_INTERNAL | WF_OPF_NOT_DIFFERENTIABLE)

const wf_op_def wf_op_def_softmax = {
    .name = "softmax", .min_inputs = 1, .max_inputs = 1, .flags = 0,
    .shape = softmax_shape, .forward = softmax_forward, .backward = softmax_backward,
    .flops_per_elem = 4.0 + EXP_FLOPS /* max, subtract, exp, add, scale */,
};

const wf_op_def wf_op_def_log_softmax = {
    .name = "log_softmax", .min_inputs = 1, .max_inputs = 1, .flags = 0,
    .shape = log_softmax_shape, .forward = log_softmax_forward,
    .backward = log_softmax_backward,
    .flops_per_elem = 4.0 + EXP_FLOPS /* max, subtract, exp, add, subtract */,
};

const wf_op_def wf_op_def_softmax_grad = {
    .name = "softmax_grad", .min_inputs = 2, .max_inputs = 2, .flags = GRAD_FLAGS,
    .shape = softmax_grad_shape, .forward = softmax_grad_forward, .backward = NULL,
    .flops_per_elem = 4.0 /* dot, subtract, multiply */,
};

const wf_op_def wf_op_def_log_softmax_grad = {
    .name = "log_softmax_grad", .min_inputs = 2, .max_inputs = 2, .flags = GRAD_FLAGS,
    .shape = log_softmax_grad_shape, .forward = log_softmax_grad_forward, .backward = NULL,
    .flops_per_elem = 3.0 + EXP_FLOPS /* row sum, exp, multiply, subtract */,
};

const wf_op_def wf_op_def_softmax_xent = {
    .name = "softmax_xent", .min_inputs = 2, .max_inputs = 2, .flags = 0,
    .shape = xent_shape, .forward = xent_forward, .backward = xent_backward,
    .flops_per_elem = 3.0 + EXP_FLOPS /* max, subtract, exp, add */,
};

const wf_op_def wf_op_def_softmax_xent_grad = {
    .name = "softmax_xent_grad", .min_inputs = 3, .max_inputs = 3, .flags = GRAD_FLAGS,
    .shape = xent_grad_shape, .forward = xent_grad_forward, .backward = NULL,
    .flops_per_elem = 4.0 + EXP_FLOPS,
};

const wf_op_def wf_op_def_mse = {
    .name = "mse", .min_inputs = 2, .max_inputs = 2, .flags = 0,
    .shape = mse_shape, .forward = mse_forward, .backward = mse_backward,
    .flops_per_elem = 3.0 /* subtract, multiply, add */,
};

const wf_op_def wf_op_def_mse_grad = {
    .name = "mse_grad", .min_inputs = 3, .max_inputs = 3,
    .flags = GRAD_FLAGS | WF_OPF_INPLACE, /* out[i] = (p[i] - t[i]) * f */
    .shape = mse_grad_shape, .forward = mse_grad_forward, .backward = NULL,
    .flops_per_elem = 2.0,
};
