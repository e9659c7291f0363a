/* ops/optim.c - optim_update: the fused optimizer step of one parameter (SGD, momentum,
 * Adam, with L2 weight decay), as an update op of static plans and as the kernel that
 * weft_optim_step runs eagerly; optim_update_mm: the same step fed by a gradient product
 * block by block (below). Inputs (parameter, gradient); attrs->slot holds the
 * parameter's state and the optimizer's hyper-parameters (read when the op runs). The
 * rules are in weft/optim.h. Elementwise and chunked: results do not depend on threads. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "ops/internal.h"
#include "ops/matmul.h"
#include "ops/vmath.h"
#include "scheduler/atomic.h"
#include "scheduler/internal.h"
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

/* One step's constants: Adam's bias corrections c1 = 1 - beta1^t, c2 = 1 - beta2^t. */
typedef struct optim_step {
    const wf_optim_hyper *h;
    double c1, c2;
} optim_step;

/* Optimizer state that decays towards zero (a momentum buffer or Adam moment of a weight
 * whose gradient stays 0) ends in subnormal numbers, which cost ~100x per operation on
 * x86 and slowed whole epochs down by 2-3x. State below the smallest normal number is
 * flushed to zero: its effect on the update is below the rounding of any weight. */
static inline float flush_float(float x) { return fabsf(x) < FLT_MIN ? 0.0f : x; }
static inline double flush_double(double x) { return fabs(x) < DBL_MIN ? 0.0 : x; }
#define FLUSH(T, x) flush_##T(x)

/* The update of n consecutive elements: w, g and the state m, v (NULL when the kind has
 * none) at the same offset. Every element's arithmetic is its own (no contraction, no
 * reduction), so a parameter updated in any split of its elements gets the same bits. */
#define OPTIM_APPLY_DEFINE(T)                                                              \
    static void optim_apply_##T(const optim_step *s, T *w, const T *g, T *m, T *v,         \
                                size_t n) {                                                \
        const wf_optim_hyper *h = s->h;                                                    \
        const T lr = (T)h->lr, wd = (T)h->weight_decay;                                    \
        if (h->kind == WEFT_OPTIM_SGD) {                                                   \
            _Pragma("omp simd") for (size_t i = 0; i < n; i++)                             \
                w[i] -= lr * (g[i] + wd * w[i]);                                           \
        } else if (h->kind == WEFT_OPTIM_MOMENTUM) {                                       \
            const T mu = (T)h->momentum;                                                   \
            _Pragma("omp simd") for (size_t i = 0; i < n; i++) {                           \
                m[i] = FLUSH(T, mu * m[i] + (g[i] + wd * w[i]));                           \
                w[i] -= lr * m[i];                                                         \
            }                                                                              \
        } else {                                                                           \
            /* 1 - beta in double: 1 - 0.999f is 1.3e-5 away from 1e-3 in float */       \
            const T b1 = (T)h->beta1, b2 = (T)h->beta2, eps = (T)h->eps;                   \
            const T nb1 = (T)(1.0 - h->beta1), nb2 = (T)(1.0 - h->beta2);                  \
            const T ic1 = (T)(1.0 / s->c1), ic2 = (T)(1.0 / s->c2);                        \
            _Pragma("omp simd") for (size_t i = 0; i < n; i++) {                           \
                const T gi = g[i] + wd * w[i];                                             \
                m[i] = FLUSH(T, b1 * m[i] + nb1 * gi);                                     \
                v[i] = FLUSH(T, b2 * v[i] + nb2 * gi * gi);                                \
                w[i] -= lr * (m[i] * ic1) / (vm_sqrt(v[i] * ic2) + eps);                   \
            }                                                                              \
        }                                                                                  \
    }
OPTIM_APPLY_DEFINE(float)
OPTIM_APPLY_DEFINE(double)

/* Elements [off, off + n) of a parameter, its gradient row g and its state. */
static void optim_apply(const optim_step *s, const wf_optim_slot *slot, weft_dtype dtype,
                        void *w, const void *g, size_t off, size_t n) {
    const size_t es = weft_dtype_size(dtype), b = off * es;
    char *m = slot->m ? (char *)slot->m + b : NULL, *v = slot->v ? (char *)slot->v + b : NULL;
    if (dtype == WEFT_F32)
        optim_apply_float(s, (float *)((char *)w + b), g, (float *)m, (float *)v, n);
    else
        optim_apply_double(s, (double *)((char *)w + b), g, (double *)m, (double *)v, n);
}

/* The step's constants; Adam counts the step (once per step, before any element). */
static optim_step optim_begin(const wf_optim_slot *slot) {
    optim_step s = {.h = slot->hyper, .c1 = 1, .c2 = 1};
    if (slot->hyper->kind == WEFT_OPTIM_ADAM) {
        double t = ++*slot->t;
        s.c1 = 1.0 - pow(slot->hyper->beta1, t);
        s.c2 = 1.0 - pow(slot->hyper->beta2, t);
    }
    return s;
}

typedef struct optim_job {
    optim_step step;
    const wf_optim_slot *slot;
    weft_dtype dtype;
    void *w;
    const void *g;
} optim_job;

static int optim_chunk(void *arg, size_t i0, size_t i1) {
    const optim_job *j = arg;
    const char *g = (const char *)j->g + i0 * weft_dtype_size(j->dtype);
    optim_apply(&j->step, j->slot, j->dtype, j->w, g, i0, i1 - i0);
    return 0;
}

/* out->data is the parameter itself (an update op). */
static int optim_update_forward(const wf_kernel_ctx *ctx) {
    const wf_optim_slot *slot = ctx->attrs->slot;
    optim_job j = {.step = optim_begin(slot), .slot = slot, .dtype = ctx->out->dtype,
                   .w = ctx->out->data, .g = ctx->in[1].data};
    return wf_kernel_parallel(ctx, wf_shape_numel(&ctx->out->shape), WF_ELEM_GRAIN, optim_chunk,
                              &j);
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

/* ---- optim_update_mm: the update of a parameter whose gradient is a product ------------
 * Inputs (w, a, b[, addend]); attrs->flags holds the product's TRANS flags, attrs->slot
 * the state. The gradient op(a) op(b) (+ addend) is computed one output tile at a time
 * into a block of the node's scratch and applied at once, so it is never stored whole.
 * Chunks claim tiles one at a time from a shared counter, each into its own block, so a
 * chunk delayed behind other work leaves its tiles to the others (a static deal of 7 + 7
 * tiles on 2 threads made the MLP step about 8% slower than the unfused step with
 * OpenBLAS's default kernels). One chunk per pool thread, at most one per tile, and never
 * more blocks than the product has elements. GEMM
 * tiles and GER row tiles hold at most 16384 elements (64 KB of f32): the MLP's first
 * weight gradient, 784 x 256 floats in 14 tiles, needs 2 blocks (112 KB) on 2 threads.
 * Tiny, one-row and empty-sum products are one tile, the whole (small) product.
 *
 * The result is bit for bit that of matmul (or matmul_acc) followed by optim_update: each
 * tile is computed by the same call as in the matmul ops (ops/matmul.h) and each
 * parameter element is updated as by optim_apply. In check mode the gradient is computed
 * and scanned once before anything is applied, so a NaN or Inf leaves the parameter and
 * its state untouched, as the unfused step does. weft_optim_minimize emits this op for a
 * gradient that is a product read by nothing else, of operands that are not variables. */

/* Chunks, hence scratch blocks: one per thread, at most one per tile and at most as many
 * tile-sized blocks as fit in the product. */
static size_t optim_mm_chunks(const wf_mm *mm, unsigned threads) {
    size_t c = threads ? threads : 1;
    const size_t fit = mm->tiles ? mm->m * mm->n / (mm->mb * mm->nb) : 0;
    if (c > mm->tiles) c = mm->tiles;
    if (c > fit) c = fit ? fit : (mm->tiles ? 1 : 0);
    return c;
}

static weft_status optim_mm_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                  wf_desc *out) {
    char a[160], b[160];
    if (!attrs->slot) return wf_op_error("optim_update_mm", "no optimizer state");
    wf_attrs mat = {.flags = attrs->flags};
    wf_desc prod;
    weft_status st = wf_op_def_matmul.shape(&mat, 2, in + 1, &prod);
    if (st) return st;
    for (size_t k = 0; k < nin; k += 3) { /* the parameter, then the addend if any */
        if (in[k].dtype == prod.dtype && wf_shape_equal(&in[k].shape, &prod.shape)) continue;
        return wf_op_error("optim_update_mm", "%s %s %s and gradient %s %s",
                           k ? "addend" : "parameter", weft_dtype_name(in[k].dtype),
                           wf_shape_str(&in[k].shape, a, sizeof a), weft_dtype_name(prod.dtype),
                           wf_shape_str(&prod.shape, b, sizeof b));
    }
    *out = in[0];
    return WEFT_OK;
}

typedef struct optim_mm_job {
    optim_step step;
    const wf_optim_slot *slot;
    wf_mm mm;
    void *w;
    const void *addend; /* NULL: the gradient is the product alone */
    char *scratch;      /* chunk c's block at c * mb * nb elements */
    size_t chunks;
    int apply;          /* 0: check mode's first pass, which only scans the gradient */
    /* The next unclaimed tile of the pass. Relaxed: the fetch-add alone makes every tile
     * claimed once; tiles write disjoint elements, and the join of wf_kernel_parallel
     * orders all of a pass's writes before whatever follows it. */
    _Atomic size_t next_tile;
} optim_mm_job;

/* Check mode: WEFT_ERR_NUMERICS (message recorded) if tile block g holds a NaN or Inf. */
static int optim_mm_scan(const wf_mm *mm, const void *g, size_t r0, size_t rows, size_t k0,
                         size_t cols) {
    wf_tref block = {mm->dtype, {.ndim = 2, .d = {(int64_t)rows, (int64_t)cols}}, (void *)g};
    long bad = wf_find_nonfinite(&block);
    if (bad < 0) return 0;
    const size_t r = r0 + (size_t)bad / cols, c = k0 + (size_t)bad % cols;
    double v = mm->dtype == WEFT_F32 ? ((const float *)g)[bad] : ((const double *)g)[bad];
    wf_error(WEFT_ERR_NUMERICS, "check numerics: the weight gradient [%zu,%zu] (a product "
             "with inner dimension %zu) has %s at [%zu,%zu]; the parameter and its optimizer "
             "state were not changed", mm->m, mm->n, mm->k, isnan(v) ? "NaN" : "Inf", r, c);
    return WEFT_ERR_NUMERICS;
}

/* Chunks [c0, c1): chunk c claims tiles until none is left, each into its own block. */
static int optim_mm_chunk(void *arg, size_t c0, size_t c1) {
    optim_mm_job *j = arg;
    const wf_mm *mm = &j->mm;
    const size_t es = weft_dtype_size(mm->dtype);
    for (size_t c = c0; c < c1; c++) {
        char *g = j->scratch + c * mm->mb * mm->nb * es;
        for (;;) {
            size_t t = wf_add_relaxed(&j->next_tile, 1);
            if (t >= mm->tiles) break;
            size_t r0, rows, k0, cols;
            wf_mm_tile(mm, t, &r0, &rows, &k0, &cols);
            for (size_t i = 0; j->addend && i < rows; i++)
                memcpy(g + i * cols * es, (const char *)j->addend + ((r0 + i) * mm->n + k0) * es,
                       cols * es);
            wf_mm_block(mm, r0, rows, k0, cols, g, cols, j->addend != NULL);
            if (!j->apply) {
                int rc = optim_mm_scan(mm, g, r0, rows, k0, cols);
                if (rc) return rc;
                continue;
            }
            for (size_t i = 0; i < rows; i++)
                optim_apply(&j->step, j->slot, mm->dtype, j->w, g + i * cols * es,
                            (r0 + i) * mm->n + k0, cols);
        }
    }
    return 0;
}

static int optim_mm_forward(const wf_kernel_ctx *ctx) {
    optim_mm_job j = {.slot = ctx->attrs->slot, .w = ctx->out->data,
                      .addend = ctx->nin > 3 ? ctx->in[3].data : NULL};
    int rc = wf_mm_prepare("optim_update_mm", &ctx->in[1], &ctx->in[2], ctx->attrs->flags, &j.mm);
    if (rc) return rc;
    j.chunks = optim_mm_chunks(&j.mm, ctx->pool ? weft_pool_threads(ctx->pool) : 1);
    const size_t bytes = j.chunks * j.mm.mb * j.mm.nb * weft_dtype_size(j.mm.dtype);
    if (bytes && !(j.scratch = wf_kernel_scratch(ctx, bytes))) return WEFT_ERR_NOMEM;
    atomic_init(&j.next_tile, 0);
    if (ctx->check_numerics && (rc = wf_kernel_parallel(ctx, j.chunks, 1, optim_mm_chunk, &j)))
        return rc;
    wf_store_relaxed(&j.next_tile, 0); /* before the pass forks */
    j.apply = 1;
    j.step = optim_begin(j.slot); /* after the last check: a refused run counts no step */
    return wf_kernel_parallel(ctx, j.chunks, 1, optim_mm_chunk, &j);
}

static wf_cost optim_mm_cost(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                             const wf_desc *out) {
    /* the product, the update, and the addend read once */
    wf_cost c = wf_mm_cost(attrs->flags, &in[1], &in[2], out);
    wf_cost u = optim_update_cost(attrs, 2, in, out);
    double addend = nin > 3 ? (double)wf_shape_numel(&in[3].shape) * weft_dtype_size(in[3].dtype)
                            : 0.0;
    return (wf_cost){c.flops + u.flops, c.bytes + u.bytes + addend};
}

/* The scratch blocks, and the gradient never stored (what an unfused plan holds). */
static wf_mem optim_mm_memory(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                              const wf_desc *out, unsigned threads) {
    (void)nin;
    wf_tref a = {in[1].dtype, in[1].shape, NULL}, b = {in[2].dtype, in[2].shape, NULL};
    wf_mm mm;
    const size_t es = weft_dtype_size(out->dtype);
    if (wf_mm_prepare("optim_update_mm", &a, &b, attrs->flags, &mm)) return (wf_mem){0, 0};
    return (wf_mem){optim_mm_chunks(&mm, threads) * mm.mb * mm.nb * es, mm.m * mm.n * es};
}

const wf_op_def wf_op_def_optim_update_mm = {
    .name = "optim_update_mm",
    .min_inputs = 3,
    .max_inputs = 4,
    .flags = WF_OPF_UPDATE | WF_OPF_NOT_DIFFERENTIABLE | WF_OPF_INTERNAL,
    .shape = optim_mm_shape,
    .forward = optim_mm_forward,
    .backward = NULL,
    .cost = optim_mm_cost,
    .memory = optim_mm_memory,
};
