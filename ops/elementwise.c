/* ops/elementwise.c - the elementwise ops: add, sub, mul, div (NumPy broadcasting); the
 * float maps neg, exp, log, sqrt, sigmoid, tanh, relu, pow, scale; fill_like; and the fused
 * gradient kernels sigmoid_grad, tanh_grad, relu_grad that backward builders emit.
 *
 * Each op's arithmetic is written once, as an expression in the X-lists below, and
 * instantiated for float and double (<tgmath.h> resolves exp, log, ... by type, so an f32
 * op never widens to double). A binary kernel first folds its operands into a plan: the
 * output's dims with size-1 dims dropped and neighbouring dims merged wherever both
 * operands stay contiguous (or stay broadcast) across them, each operand with per-dim
 * strides, 0 where it is broadcast. Equal shapes and scalar operands fold to one dim (one
 * flat loop); [N,D] + [D] folds to two (one contiguous loop per row); any other pattern
 * walks the outer dims with an odometer and runs the innermost dim as one contiguous loop.
 * Work is cut into WF_ELEM_GRAIN-element chunks of the flat output. Every element is
 * computed by the same expression whatever the chunking, with no reassociation, so the
 * results are bit-identical for any thread count and equal a plain scalar loop.
 */
#include <stddef.h>
#include <stdint.h>
#include <tgmath.h>

#include "ops/internal.h"
#include "ops/vmath.h"

/* ---- shape rules ---------------------------------------------------------------------- */

static weft_status check_float(const char *op, weft_dtype dtype) {
    if (wf_dtype_is_float(dtype)) return WEFT_OK;
    return wf_op_error(op, "expects f32 or f64, got %s", weft_dtype_name(dtype));
}

/* Two operands of one float dtype. */
static weft_status check_float_pair(const char *op, const wf_desc *in) {
    if (in[0].dtype != in[1].dtype)
        return wf_op_error(op, "dtypes differ: %s and %s", weft_dtype_name(in[0].dtype),
                           weft_dtype_name(in[1].dtype));
    return check_float(op, in[0].dtype);
}

/* add, sub, mul, div: the NumPy broadcast of the two shapes. `sep` is the operator shown
 * between the shapes in the error message. */
static weft_status broadcast_rule(const char *op, const char *sep, const wf_desc *in,
                                  wf_desc *out) {
    weft_status st = check_float_pair(op, in);
    if (st) return st;
    wf_shape shape;
    if (wf_shape_broadcast(&in[0].shape, &in[1].shape, &shape))
        return wf_op_shape_error(op, "shapes do not broadcast", &in[0].shape, sep,
                                 &in[1].shape);
    out->dtype = in[0].dtype;
    out->shape = shape;
    return WEFT_OK;
}

/* The fused gradient kernels: (saved value, gradient) of one shape. An unknown dim matches
 * anything here and takes the other operand's size; run time sees both concrete. */
static weft_status same_shape_rule(const char *op, const wf_desc *in, wf_desc *out) {
    weft_status st = check_float_pair(op, in);
    if (st) return st;
    const wf_shape *a = &in[0].shape, *b = &in[1].shape;
    wf_shape shape = *a;
    int same = a->ndim == b->ndim;
    for (int i = 0; same && i < a->ndim; i++) {
        if (a->d[i] < 0) shape.d[i] = b->d[i];
        else same = b->d[i] < 0 || b->d[i] == a->d[i];
    }
    if (!same) return wf_op_shape_error(op, "shapes differ", a, "vs", b);
    out->dtype = in[0].dtype;
    out->shape = shape;
    return WEFT_OK;
}

/* One float operand; the output is described like it (fill_like: like its ref). */
static weft_status unary_rule(const char *op, const wf_desc *in, wf_desc *out) {
    weft_status st = check_float(op, in[0].dtype);
    if (!st) *out = in[0];
    return st;
}

/* The shape function of each op: the rule above, with the op's name for messages. */
#define BROADCASTING_OPS(X) X(add, "+") X(sub, "-") X(mul, "*") X(div, "/")
#define SAME_SHAPE_OPS(X) X(sigmoid_grad) X(tanh_grad) X(relu_grad)
#define UNARY_OPS(X)                                                                       \
    X(neg) X(exp) X(log) X(sqrt) X(sigmoid) X(tanh) X(relu) X(pow) X(scale) X(fill_like)

#define DEFINE_BROADCAST_SHAPE(NAME, SEP)                                                  \
    static weft_status NAME##_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,        \
                                    wf_desc *out) {                                        \
        (void)attrs, (void)nin;                                                            \
        return broadcast_rule(#NAME, SEP, in, out);                                        \
    }
#define DEFINE_SAME_SHAPE(NAME)                                                            \
    static weft_status NAME##_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,        \
                                    wf_desc *out) {                                        \
        (void)attrs, (void)nin;                                                            \
        return same_shape_rule(#NAME, in, out);                                            \
    }
#define DEFINE_UNARY_SHAPE(NAME)                                                           \
    static weft_status NAME##_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,        \
                                    wf_desc *out) {                                        \
        (void)attrs, (void)nin;                                                            \
        return unary_rule(#NAME, in, out);                                                 \
    }
BROADCASTING_OPS(DEFINE_BROADCAST_SHAPE)
SAME_SHAPE_OPS(DEFINE_SAME_SHAPE)
UNARY_OPS(DEFINE_UNARY_SHAPE)

/* ---- kernels: the arithmetic -----------------------------------------------------------
 * X(name, a, b, expression): out = expression of the operands a and b (both of the op's
 * type). The *_grad kernels take (saved forward value, incoming gradient). */
#define BINARY_KERNELS(X)                                                                  \
    X(add, x, y, x + y)                                                                    \
    X(sub, x, y, x - y)                                                                    \
    X(mul, x, y, x * y)                                                                    \
    X(div, x, y, x / y)                                                                    \
    X(sigmoid_grad, y, g, g * y * (1 - y))                                                 \
    X(tanh_grad, y, g, g * (1 - y * y))                                                    \
    X(relu_grad, x, g, x > 0 ? g : 0)

/* X(name, expression of the element x and the op's parameter p). relu passes NaN
 * through (so a check-mode run still sees it); square and copy are pow's fast paths for
 * p == 2 and p == 1 (x * x is the correctly rounded square). */
#define UNARY_KERNELS(X)                                                                   \
    X(neg, -x)                                                                             \
    X(exp, vm_exp(x))                                                                      \
    X(log, vm_log(x))                                                                      \
    X(sqrt, vm_sqrt(x))                                                                    \
    X(sigmoid, vm_sigmoid(x))                                                              \
    X(tanh, vm_tanh(x))                                                                    \
    X(relu, x < 0 ? 0 : x)                                                                 \
    X(pow, vm_pow(x, p))                                                                   \
    X(square, x * x)                                                                       \
    X(copy, x)                                                                             \
    X(scale, x * p)

/* ---- kernels: unary loops ---------------------------------------------------------------
 * in, out: the whole tensors (out may be in: every op here is safe in place); param: the
 * op's scalar, converted to the element type once per chunk. */
typedef struct unary_args {
    const void *in;
    void *out;
    double param;
} unary_args;

#define DEFINE_UNARY_T(NAME, EXPR, T)                                                      \
    static inline T NAME##_##T(T x, T p) {                                                 \
        (void)x, (void)p;                                                                  \
        return (EXPR);                                                                     \
    }                                                                                      \
    static int unary_##NAME##_##T(void *arg, size_t begin, size_t end) {                   \
        const unary_args *u = arg;                                                         \
        const T *in = (const T *)u->in + begin;                                            \
        T *out = (T *)u->out + begin;                                                      \
        const T p = (T)u->param;                                                           \
        const size_t n = end - begin;                                                      \
        _Pragma("omp simd") for (size_t i = 0; i < n; i++) out[i] = NAME##_##T(in[i], p);  \
        return 0;                                                                          \
    }
#define DEFINE_UNARY(NAME, EXPR)                                                           \
    DEFINE_UNARY_T(NAME, EXPR, float) DEFINE_UNARY_T(NAME, EXPR, double)
UNARY_KERNELS(DEFINE_UNARY)

/* fill_like: out = param; the input (ref) is not read. */
#define DEFINE_FILL_T(T)                                                                   \
    static int unary_fill_##T(void *arg, size_t begin, size_t end) {                       \
        const unary_args *u = arg;                                                         \
        T *out = (T *)u->out + begin;                                                      \
        const T value = (T)u->param;                                                       \
        const size_t n = end - begin;                                                      \
        _Pragma("omp simd") for (size_t i = 0; i < n; i++) out[i] = value;                 \
        return 0;                                                                          \
    }
DEFINE_FILL_T(float)
DEFINE_FILL_T(double)

/* Runs the f32 or f64 body (by the output's dtype) over the whole output. */
static int unary_run(const wf_kernel_ctx *ctx, const char *op, weft_range_fn f32_body,
                     weft_range_fn f64_body, double param) {
    const wf_tref *out = ctx->out;
    weft_range_fn body = out->dtype == WEFT_F32 ? f32_body
                         : out->dtype == WEFT_F64 ? f64_body : NULL;
    if (!body) /* the shape rule admits floats only: a caller bypassed it */
        return wf_op_error(op, "no kernel for dtype %s", weft_dtype_name(out->dtype));
    unary_args args = {.in = ctx->in[0].data, .out = out->data, .param = param};
    return wf_kernel_parallel(ctx, wf_shape_numel(&out->shape), WF_ELEM_GRAIN, body, &args);
}

#define PLAIN_UNARY_OPS(X) X(neg) X(exp) X(log) X(sqrt) X(sigmoid) X(tanh) X(relu)
#define DEFINE_UNARY_FORWARD(NAME)                                                         \
    static int NAME##_forward(const wf_kernel_ctx *ctx) {                                  \
        return unary_run(ctx, #NAME, unary_##NAME##_float, unary_##NAME##_double, 0);      \
    }
PLAIN_UNARY_OPS(DEFINE_UNARY_FORWARD)

static int pow_forward(const wf_kernel_ctx *ctx) {
    double p = ctx->attrs->scalar;
    if (p == 2) return unary_run(ctx, "pow", unary_square_float, unary_square_double, 0);
    if (p == 1) { /* the compiler turns copy into memcpy, which must not overlap */
        if (ctx->in[0].data == ctx->out->data) return 0;
        return unary_run(ctx, "pow", unary_copy_float, unary_copy_double, 0);
    }
    return unary_run(ctx, "pow", unary_pow_float, unary_pow_double, p);
}

static int scale_forward(const wf_kernel_ctx *ctx) {
    return unary_run(ctx, "scale", unary_scale_float, unary_scale_double, ctx->attrs->scalar);
}

static int fill_like_forward(const wf_kernel_ctx *ctx) {
    return unary_run(ctx, "fill_like", unary_fill_float, unary_fill_double,
                     ctx->attrs->scalar);
}

/* ---- kernels: binary loops -------------------------------------------------------------
 * The plan of a binary kernel (see the top of the file). dim[] has ndim >= 1 entries,
 * outermost first, none of size 1 unless the output is a single element; strides are in
 * elements. The innermost stride of each operand is 1 (it advances) or 0 (broadcast), and
 * never 0 for both unless the output is a single element. */
typedef struct binary_plan {
    int ndim;
    int64_t dim[WEFT_MAX_DIMS];
    int64_t stride_a[WEFT_MAX_DIMS], stride_b[WEFT_MAX_DIMS];
    size_t esize;
    const void *a, *b;
    void *out;
} binary_plan;

static void binary_plan_init(binary_plan *plan, const wf_tref *a, const wf_tref *b,
                             const wf_tref *out) {
    const wf_shape *os = &out->shape;
    int64_t dim[WEFT_MAX_DIMS], sa[WEFT_MAX_DIMS], sb[WEFT_MAX_DIMS];
    int64_t run_a = 1, run_b = 1; /* elements of a (of b) inside the current dim */
    int n = 0;                    /* dims kept so far, innermost first */
    for (int i = os->ndim - 1; i >= 0; i--) {
        int ia = i - (os->ndim - a->shape.ndim), ib = i - (os->ndim - b->shape.ndim);
        int64_t d = os->d[i];
        int64_t da = ia >= 0 ? a->shape.d[ia] : 1, db = ib >= 0 ? b->shape.d[ib] : 1;
        if (d == 1) continue;
        int64_t step_a = da == 1 ? 0 : run_a, step_b = db == 1 ? 0 : run_b;
        run_a *= da;
        run_b *= db;
        if (n > 0 && step_a == sa[n - 1] * dim[n - 1] && step_b == sb[n - 1] * dim[n - 1]) {
            dim[n - 1] *= d; /* both operands continue the inner dim's pattern: merge */
            continue;
        }
        dim[n] = d, sa[n] = step_a, sb[n] = step_b;
        n++;
    }
    if (n == 0) /* a single element */
        dim[0] = 1, sa[0] = 1, sb[0] = 1, n = 1;
    plan->ndim = n;
    for (int i = 0; i < n; i++) {
        plan->dim[i] = dim[n - 1 - i];
        plan->stride_a[i] = sa[n - 1 - i];
        plan->stride_b[i] = sb[n - 1 - i];
    }
    plan->esize = weft_dtype_size(out->dtype);
    plan->a = a->data;
    plan->b = b->data;
    plan->out = out->data;
}

/* out[0..n) = op(a, b) along one row; a_step / b_step: 1 if that operand advances, 0 if
 * its single element is broadcast. out may be a (in place). */
typedef void (*binary_row_fn)(void *out, const void *a, const void *b, size_t n, int a_step,
                              int b_step);

/* Runs `row` over the output elements [begin, end): positions the odometer at begin, then
 * one call per (part of an) innermost row. */
static inline int binary_walk(const binary_plan *plan, size_t begin, size_t end,
                              binary_row_fn row) {
    const int last = plan->ndim - 1;
    const size_t es = plan->esize;
    const int64_t *dim = plan->dim, *sa = plan->stride_a, *sb = plan->stride_b;
    int64_t idx[WEFT_MAX_DIMS], off_a = 0, off_b = 0;
    size_t rest = begin;
    for (int i = last; i >= 0; i--) {
        idx[i] = (int64_t)(rest % (size_t)dim[i]);
        rest /= (size_t)dim[i];
        off_a += idx[i] * sa[i];
        off_b += idx[i] * sb[i];
    }
    char *out = plan->out;
    const char *a = plan->a, *b = plan->b;
    const int a_step = sa[last] != 0, b_step = sb[last] != 0;
    for (size_t pos = begin; pos < end;) {
        size_t len = (size_t)(dim[last] - idx[last]);
        if (len > end - pos) len = end - pos;
        row(out + pos * es, a + (size_t)off_a * es, b + (size_t)off_b * es, len, a_step,
            b_step);
        pos += len;
        idx[last] += (int64_t)len;
        off_a += (int64_t)len * sa[last];
        off_b += (int64_t)len * sb[last];
        for (int i = last; i > 0 && idx[i] == dim[i]; i--) { /* carry */
            idx[i] = 0;
            off_a += sa[i - 1] - dim[i] * sa[i];
            off_b += sb[i - 1] - dim[i] * sb[i];
            idx[i - 1]++;
        }
    }
    return 0;
}

#define DEFINE_BINARY_T(NAME, A, B, EXPR, T)                                               \
    static inline T NAME##_##T(T A, T B) { return (EXPR); }                                \
    static void NAME##_##T##_row(void *outv, const void *av, const void *bv, size_t n,     \
                                 int a_step, int b_step) {                                 \
        T *out = outv;                                                                     \
        const T *a = av, *b = bv;                                                          \
        if (a_step && b_step) {                                                            \
            _Pragma("omp simd") for (size_t i = 0; i < n; i++)                            \
                out[i] = NAME##_##T(a[i], b[i]);                                           \
        } else if (a_step) {                                                               \
            const T b0 = *b;                                                               \
            _Pragma("omp simd") for (size_t i = 0; i < n; i++)                            \
                out[i] = NAME##_##T(a[i], b0);                                             \
        } else {                                                                           \
            const T a0 = *a;                                                               \
            _Pragma("omp simd") for (size_t i = 0; i < n; i++)                            \
                out[i] = NAME##_##T(a0, b[i]);                                             \
        }                                                                                  \
    }                                                                                      \
    static int binary_##NAME##_##T(void *arg, size_t begin, size_t end) {                  \
        return binary_walk(arg, begin, end, NAME##_##T##_row);                             \
    }
#define DEFINE_BINARY(NAME, A, B, EXPR)                                                    \
    DEFINE_BINARY_T(NAME, A, B, EXPR, float) DEFINE_BINARY_T(NAME, A, B, EXPR, double)
BINARY_KERNELS(DEFINE_BINARY)

static int binary_run(const wf_kernel_ctx *ctx, const char *op, weft_range_fn f32_body,
                      weft_range_fn f64_body) {
    const wf_tref *out = ctx->out;
    weft_range_fn body = out->dtype == WEFT_F32 ? f32_body
                         : out->dtype == WEFT_F64 ? f64_body : NULL;
    if (!body) /* the shape rule admits floats only: a caller bypassed it */
        return wf_op_error(op, "no kernel for dtype %s", weft_dtype_name(out->dtype));
    size_t n = wf_shape_numel(&out->shape);
    if (n == 0) return 0;
    binary_plan plan;
    binary_plan_init(&plan, &ctx->in[0], &ctx->in[1], out);
    return wf_kernel_parallel(ctx, n, WF_ELEM_GRAIN, body, &plan);
}

#define DEFINE_BINARY_FORWARD(NAME, A, B, EXPR)                                            \
    static int NAME##_forward(const wf_kernel_ctx *ctx) {                                  \
        return binary_run(ctx, #NAME, binary_##NAME##_float, binary_##NAME##_double);      \
    }
BINARY_KERNELS(DEFINE_BINARY_FORWARD)

/* ---- cost ----------------------------------------------------------------------------- */

/* fill_like writes its output and reads nothing. */
static wf_cost cost_fill(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                         const wf_desc *out) {
    (void)attrs, (void)nin, (void)in;
    double n = (double)wf_shape_numel(&out->shape);
    return (wf_cost){0, n * (double)weft_dtype_size(out->dtype)};
}

/* ---- backward builders -----------------------------------------------------------------
 * g is the gradient of the output (described by out_desc). A full-size gradient term of a
 * binary op also has the output's description; unbroadcast_to sums it down to input i. */

static weft_status unbroadcast_to(wf_grad_ctx *c, uint32_t g, size_t i, uint32_t *out) {
    return wf_emit_unbroadcast(c, g, c->in[i], c->out_desc, &c->in_desc[i], out);
}

static weft_status add_backward(wf_grad_ctx *c) {
    weft_status st = WEFT_OK;
    for (size_t i = 0; i < 2 && !st; i++)
        if (c->needs[i]) st = unbroadcast_to(c, c->gout, i, &c->gin[i]);
    return st;
}

/* gb = -unbroadcast(g): negating after the sum touches the smaller tensor and is exact
 * (rounding is symmetric), so it equals unbroadcast(-g). */
static weft_status sub_backward(wf_grad_ctx *c) {
    weft_status st = WEFT_OK;
    uint32_t gb;
    if (c->needs[0]) st = unbroadcast_to(c, c->gout, 0, &c->gin[0]);
    if (!st && c->needs[1]) {
        st = unbroadcast_to(c, c->gout, 1, &gb);
        if (!st) st = wf_emit1(c, WF_OP_NEG, gb, NULL, &c->gin[1]);
    }
    return st;
}

static weft_status mul_backward(wf_grad_ctx *c) {
    weft_status st = WEFT_OK;
    uint32_t term;
    for (size_t i = 0; i < 2 && !st; i++) {
        if (!c->needs[i]) continue;
        st = wf_emit2(c, WF_OP_MUL, c->gout, c->in[1 - i], NULL, &term);
        if (!st) st = unbroadcast_to(c, term, i, &c->gin[i]);
    }
    return st;
}

/* With t = g / b: ga = unbroadcast(t), gb = -unbroadcast(t * out), since
 * d(a/b)/db = -a/b^2 = -(1/b)(a/b). t is shared by both. */
static weft_status div_backward(wf_grad_ctx *c) {
    uint32_t t, term, sum;
    weft_status st = wf_emit2(c, WF_OP_DIV, c->gout, c->in[1], NULL, &t);
    if (!st && c->needs[0]) st = unbroadcast_to(c, t, 0, &c->gin[0]);
    if (!st && c->needs[1]) {
        st = wf_emit2(c, WF_OP_MUL, t, c->out, NULL, &term);
        if (!st) st = unbroadcast_to(c, term, 1, &sum);
        if (!st) st = wf_emit1(c, WF_OP_NEG, sum, NULL, &c->gin[1]);
    }
    return st;
}

/* The unary builders below run only when needs[0]: a unary op has one input, and the
 * graph calls a builder only when some input needs a gradient. */

static weft_status neg_backward(wf_grad_ctx *c) {
    return wf_emit1(c, WF_OP_NEG, c->gout, NULL, &c->gin[0]);
}

static weft_status exp_backward(wf_grad_ctx *c) {
    return wf_emit2(c, WF_OP_MUL, c->gout, c->out, NULL, &c->gin[0]);
}

static weft_status log_backward(wf_grad_ctx *c) {
    return wf_emit2(c, WF_OP_DIV, c->gout, c->in[0], NULL, &c->gin[0]);
}

static weft_status sqrt_backward(wf_grad_ctx *c) { /* g / (2 sqrt(a)) */
    wf_attrs half = {.scalar = 0.5};
    uint32_t t;
    weft_status st = wf_emit1(c, WF_OP_SCALE, c->gout, &half, &t);
    return st ? st : wf_emit2(c, WF_OP_DIV, t, c->out, NULL, &c->gin[0]);
}

static weft_status sigmoid_backward(wf_grad_ctx *c) {
    return wf_emit2(c, WF_OP_SIGMOID_GRAD, c->out, c->gout, NULL, &c->gin[0]);
}

static weft_status tanh_backward(wf_grad_ctx *c) {
    return wf_emit2(c, WF_OP_TANH_GRAD, c->out, c->gout, NULL, &c->gin[0]);
}

/* relu_grad reads the output rather than the input (out > 0 exactly where a > 0, NaN
 * included): the activation keeps its output alive for the next layer's backward anyway,
 * so the pre-activation may die early and relu may run in place. */
static weft_status relu_backward(wf_grad_ctx *c) {
    return wf_emit2(c, WF_OP_RELU_GRAD, c->out, c->gout, NULL, &c->gin[0]);
}

/* g * p * a^(p-1); p == 0 gives zeros (not g * 0 * a^-1, which is NaN at a == 0), p == 1
 * gives g itself, p == 2 skips the pow. */
static weft_status pow_backward(wf_grad_ctx *c) {
    double p = c->attrs->scalar;
    if (p == 0) {
        wf_attrs zero = {.scalar = 0};
        return wf_emit1(c, WF_OP_FILL_LIKE, c->in[0], &zero, &c->gin[0]);
    }
    if (p == 1) {
        c->gin[0] = c->gout;
        return WEFT_OK;
    }
    wf_attrs factor = {.scalar = p}, exponent = {.scalar = p - 1};
    uint32_t power = c->in[0], scaled;
    weft_status st = p == 2 ? WEFT_OK : wf_emit1(c, WF_OP_POW, c->in[0], &exponent, &power);
    if (!st) st = wf_emit1(c, WF_OP_SCALE, power, &factor, &scaled);
    return st ? st : wf_emit2(c, WF_OP_MUL, c->gout, scaled, NULL, &c->gin[0]);
}

static weft_status scale_backward(wf_grad_ctx *c) {
    wf_attrs factor = {.scalar = c->attrs->scalar};
    return wf_emit1(c, WF_OP_SCALE, c->gout, &factor, &c->gin[0]);
}

/* ---- the table entries ---------------------------------------------------------------- */

/* The entry of op NAME; the trailing designated initializers set what differs from the
 * defaults (cost model, shape-only inputs). */
#define OP_DEF(NAME, NIN, FLAGS, BACKWARD, ...)                                            \
    const wf_op_def wf_op_def_##NAME = {.name = #NAME,                                     \
                                        .min_inputs = NIN,                                 \
                                        .max_inputs = NIN,                                 \
                                        .flags = FLAGS,                                    \
                                        .shape = NAME##_shape,                             \
                                        .forward = NAME##_forward,                         \
                                        .backward = BACKWARD,                              \
                                        __VA_ARGS__};

/* exp, log, sigmoid, tanh, pow: a libm-class function is worth about ten flops. */
#define TRANSCENDENTAL .flops_per_elem = 10

/* Unary ops compute out[i] from in[i] alone, with out described like input 0: they may
 * run in place. Binary ops may too, over an operand as large as the output (the memory
 * plan checks the sizes: a broadcast operand is smaller than the output). */
enum { UNARY_FLAGS = WF_OPF_INPLACE,
       FUSED_GRAD_FLAGS = WF_OPF_INTERNAL | WF_OPF_NOT_DIFFERENTIABLE | WF_OPF_INPLACE };

OP_DEF(add, 2, WF_OPF_INPLACE, add_backward, .flops_per_elem = 1)
OP_DEF(sub, 2, WF_OPF_INPLACE, sub_backward, .flops_per_elem = 1)
OP_DEF(mul, 2, WF_OPF_INPLACE, mul_backward, .flops_per_elem = 1)
OP_DEF(div, 2, WF_OPF_INPLACE, div_backward, .flops_per_elem = 1)
OP_DEF(neg, 1, UNARY_FLAGS, neg_backward, .flops_per_elem = 1)
OP_DEF(exp, 1, UNARY_FLAGS, exp_backward, TRANSCENDENTAL)
OP_DEF(log, 1, UNARY_FLAGS, log_backward, TRANSCENDENTAL)
OP_DEF(sqrt, 1, UNARY_FLAGS, sqrt_backward, .flops_per_elem = 1)
OP_DEF(sigmoid, 1, UNARY_FLAGS, sigmoid_backward, TRANSCENDENTAL)
OP_DEF(tanh, 1, UNARY_FLAGS, tanh_backward, TRANSCENDENTAL)
OP_DEF(relu, 1, UNARY_FLAGS, relu_backward, .flops_per_elem = 1)
OP_DEF(pow, 1, UNARY_FLAGS, pow_backward, TRANSCENDENTAL)
OP_DEF(scale, 1, UNARY_FLAGS, scale_backward, .flops_per_elem = 1)
/* fill_like reads only its ref's description; it is the seed and the zero of gradients.
 * Its value does not depend on the ref's data: the gradient is zero (no contribution),
 * which lets gradients of gradients pass through the seed. */
static weft_status fill_like_backward(wf_grad_ctx *c) {
    (void)c;
    return WEFT_OK;
}
OP_DEF(fill_like, 1, WF_OPF_INTERNAL, fill_like_backward, .cost = cost_fill, .shape_only = 1u)
OP_DEF(sigmoid_grad, 2, FUSED_GRAD_FLAGS, NULL, .flops_per_elem = 1)
OP_DEF(tanh_grad, 2, FUSED_GRAD_FLAGS, NULL, .flops_per_elem = 1)
OP_DEF(relu_grad, 2, FUSED_GRAD_FLAGS, NULL, .flops_per_elem = 1)
