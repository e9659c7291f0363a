/* ops/optim.c - optim_update: the fused optimizer step of one parameter (SGD, momentum,
 * Adam, with L2 weight decay), as an update op of static plans and as the kernel that
 * weft_optim_step runs eagerly. Inputs (parameter, gradient); attrs->slot holds the
 * parameter's state and the optimizer's hyper-parameters (read when the op runs). The
 * rules are in weft/optim.h. Elementwise and chunked: results do not depend on threads. */
#include <float.h>
#include <math.h>

#include "ops/internal.h"
#include "ops/vmath.h"
#include "weft/optim.h"

static weft_status optim_update_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                      wf_desc *out) {
    (void)nin;
    char a[160], b[160];
    if (!attrs->slot) return wf_op_error("optim_update", "no optimizer state");
    if (!wf_dtype_is_float(in[0].dtype) || in[0].dtype != in[1].dtype)
        return wf_op_error("optim_update", "parameter %s and gradient %s",
                           weft_dtype_name(in[0].dtype), weft_dtype_name(in[1].dtype));
    if (!wf_shape_equal(&in[0].shape, &in[1].shape))
        return wf_op_error("optim_update", "parameter %s and gradient %s differ",
                           wf_shape_str(&in[0].shape, a, sizeof a),
                           wf_shape_str(&in[1].shape, b, sizeof b));
    *out = in[0];
    return WEFT_OK;
}

typedef struct optim_job {
    const wf_optim_slot *slot;
    void *w;
    const void *g;
    double c1, c2; /* Adam: 1 - beta1^t, 1 - beta2^t */
} optim_job;

/* Optimizer state that decays towards zero (a momentum buffer or Adam moment of a weight
 * whose gradient stays 0) ends in subnormal numbers, which cost ~100x per operation on
 * x86 and slowed whole epochs down by 2-3x. State below the smallest normal number is
 * flushed to zero: its effect on the update is below the rounding of any weight. */
static inline float flush_float(float x) { return fabsf(x) < FLT_MIN ? 0.0f : x; }
static inline double flush_double(double x) { return fabs(x) < DBL_MIN ? 0.0 : x; }
#define FLUSH(T, x) flush_##T(x)

#define OPTIM_CHUNK_DEFINE(T)                                                              \
    static int optim_chunk_##T(void *arg, size_t i0, size_t i1) {                          \
        const optim_job *j = arg;                                                          \
        const wf_optim_hyper *h = j->slot->hyper;                                          \
        T *w = (T *)j->w;                                                                  \
        const T *g = (const T *)j->g;                                                      \
        const T lr = (T)h->lr, wd = (T)h->weight_decay;                                    \
        if (h->kind == WEFT_OPTIM_SGD) {                                                   \
            _Pragma("omp simd") for (size_t i = i0; i < i1; i++)                           \
                w[i] -= lr * (g[i] + wd * w[i]);                                           \
        } else if (h->kind == WEFT_OPTIM_MOMENTUM) {                                       \
            T *b = (T *)j->slot->m;                                                        \
            const T mu = (T)h->momentum;                                                   \
            _Pragma("omp simd") for (size_t i = i0; i < i1; i++) {                         \
                b[i] = FLUSH(T, mu * b[i] + (g[i] + wd * w[i]));                           \
                w[i] -= lr * b[i];                                                         \
            }                                                                              \
        } else {                                                                           \
            T *m = (T *)j->slot->m, *v = (T *)j->slot->v;                                  \
            /* 1 - beta in double: 1 - 0.999f is 1.3e-5 away from 1e-3 in float */       \
            const T b1 = (T)h->beta1, b2 = (T)h->beta2, eps = (T)h->eps;                   \
            const T nb1 = (T)(1.0 - h->beta1), nb2 = (T)(1.0 - h->beta2);                  \
            const T ic1 = (T)(1.0 / j->c1), ic2 = (T)(1.0 / j->c2);                        \
            _Pragma("omp simd") for (size_t i = i0; i < i1; i++) {                         \
                const T gi = g[i] + wd * w[i];                                             \
                m[i] = FLUSH(T, b1 * m[i] + nb1 * gi);                                     \
                v[i] = FLUSH(T, b2 * v[i] + nb2 * gi * gi);                                \
                w[i] -= lr * (m[i] * ic1) / (vm_sqrt(v[i] * ic2) + eps);                   \
            }                                                                              \
        }                                                                                  \
        return 0;                                                                          \
    }
OPTIM_CHUNK_DEFINE(float)
OPTIM_CHUNK_DEFINE(double)

/* out->data is the parameter itself (an update op). */
static int optim_update_forward(const wf_kernel_ctx *ctx) {
    const wf_optim_slot *slot = ctx->attrs->slot;
    optim_job j = {.slot = slot, .w = ctx->out->data, .g = ctx->in[1].data, .c1 = 1, .c2 = 1};
    if (slot->hyper->kind == WEFT_OPTIM_ADAM) {
        double t = ++*slot->t; /* once per step, before the chunks */
        j.c1 = 1.0 - pow(slot->hyper->beta1, t);
        j.c2 = 1.0 - pow(slot->hyper->beta2, t);
    }
    weft_range_fn body = ctx->out->dtype == WEFT_F32 ? optim_chunk_float : optim_chunk_double;
    return wf_kernel_parallel(ctx, wf_shape_numel(&ctx->out->shape), WF_ELEM_GRAIN, body, &j);
}

static wf_cost optim_update_cost(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                                 const wf_desc *out) {
    (void)attrs, (void)nin;
    double n = (double)wf_shape_numel(&out->shape), es = (double)weft_dtype_size(in[0].dtype);
    return (wf_cost){10.0 * n, 6.0 * n * es}; /* w, g, m, v read; w, m, v written */
}

const wf_op_def wf_op_def_optim_update = {
    .name = "optim_update",
    .min_inputs = 2,
    .max_inputs = 2,
    .flags = WF_OPF_UPDATE | WF_OPF_NOT_DIFFERENTIABLE | WF_OPF_INTERNAL,
    .shape = optim_update_shape,
    .forward = optim_update_forward,
    .backward = NULL,
    .cost = optim_update_cost,
};
