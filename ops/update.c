/* ops/update.c - updates of a variable: assign(var, value) and assign_sub(var, value).
 *
 * Both are WF_OPF_UPDATE ops: the executor passes the variable's own storage as the
 * output (out->data == in[0].data), so the kernel writes the variable in place, in fixed
 * chunks of WF_ELEM_GRAIN elements. The kernels stay correct if out is a separate
 * buffer (out = value, out = var - value). Checking that input 0 is a variable, and
 * ordering the update after every reader of it, belong to the graph layer. Not
 * differentiable.
 */
#include <string.h>

#include "ops/internal.h"

/* ---- shape rule ------------------------------------------------------------------------ */

/* value has var's dtype and exactly its shape (no broadcasting); an open dim on either
 * side is checked again at run time. The output is the variable. */
static weft_status update_shape(const char *op, const wf_desc *var, const wf_desc *val,
                                wf_desc *out) {
    if (!wf_dtype_is_float(var->dtype))
        return wf_op_error(op, "variable must be float, not %s", weft_dtype_name(var->dtype));
    if (val->dtype != var->dtype)
        return wf_op_error(op, "dtypes differ: %s and %s", weft_dtype_name(var->dtype),
                           weft_dtype_name(val->dtype));
    int ok = var->shape.ndim == val->shape.ndim;
    for (int d = 0; ok && d < var->shape.ndim; d++)
        ok = var->shape.d[d] < 0 || val->shape.d[d] < 0 || var->shape.d[d] == val->shape.d[d];
    if (!ok) return wf_op_shape_error(op, "shapes differ", &var->shape, "and", &val->shape);
    *out = *var;
    for (int d = 0; d < out->shape.ndim; d++)
        if (out->shape.d[d] < 0) out->shape.d[d] = val->shape.d[d];
    return WEFT_OK;
}

static weft_status assign_shape(wf_attrs *attrs, size_t nin, const wf_desc *in, wf_desc *out) {
    (void)attrs, (void)nin;
    return update_shape("assign", &in[0], &in[1], out);
}

static weft_status assign_add_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                    wf_desc *out) {
    (void)attrs, (void)nin;
    return update_shape("assign_add", &in[0], &in[1], out);
}

static weft_status assign_sub_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                    wf_desc *out) {
    (void)attrs, (void)nin;
    return update_shape("assign_sub", &in[0], &in[1], out);
}

/* ---- kernels --------------------------------------------------------------------------- */

typedef struct update_job {
    void *out;         /* the variable (normally == var) */
    const void *var;
    const void *value;
    size_t esize;
} update_job;

static int assign_chunk(void *arg, size_t i0, size_t i1) {
    const update_job *j = arg;
    memcpy((char *)j->out + i0 * j->esize, (const char *)j->value + i0 * j->esize,
           (i1 - i0) * j->esize);
    return 0;
}

/* out[i] = var[i] OP value[i]. out and var are the same array (or disjoint), never
 * shifted against each other, so the loop carries no dependence and vectorises. */
#define ACC_DEFINE(NAME, OP, T)                                                            \
    static int NAME##_chunk_##T(void *arg, size_t i0, size_t i1) {                         \
        const update_job *j = arg;                                                         \
        T *out = j->out;                                                                   \
        const T *var = j->var, *value = j->value;                                          \
        _Pragma("omp simd") for (size_t i = i0; i < i1; i++) out[i] = var[i] OP value[i];  \
        return 0;                                                                          \
    }
ACC_DEFINE(assign_sub, -, float)
ACC_DEFINE(assign_sub, -, double)
ACC_DEFINE(assign_add, +, float)
ACC_DEFINE(assign_add, +, double)
#undef ACC_DEFINE

static int assign_forward(const wf_kernel_ctx *ctx) {
    /* assign(v, v): nothing to do (and memcpy must not see overlapping buffers) */
    if (ctx->out->data == ctx->in[1].data) return 0;
    update_job j = {ctx->out->data, ctx->in[0].data, ctx->in[1].data,
                    weft_dtype_size(ctx->out->dtype)};
    return wf_kernel_parallel(ctx, wf_shape_numel(&ctx->out->shape), WF_ELEM_GRAIN,
                              assign_chunk, &j);
}

static int accumulate(const wf_kernel_ctx *ctx, weft_range_fn f32, weft_range_fn f64) {
    update_job j = {ctx->out->data, ctx->in[0].data, ctx->in[1].data,
                    weft_dtype_size(ctx->out->dtype)};
    weft_range_fn body = ctx->out->dtype == WEFT_F32 ? f32 : f64;
    return wf_kernel_parallel(ctx, wf_shape_numel(&ctx->out->shape), WF_ELEM_GRAIN, body, &j);
}

static int assign_sub_forward(const wf_kernel_ctx *ctx) {
    return accumulate(ctx, assign_sub_chunk_float, assign_sub_chunk_double);
}

/* assign_add: gradient accumulation into a parameter's .grad (dynamic mode). */
static int assign_add_forward(const wf_kernel_ctx *ctx) {
    return accumulate(ctx, assign_add_chunk_float, assign_add_chunk_double);
}

/* ---- cost ------------------------------------------------------------------------------ */

/* No flops: reads the value, writes the variable. (assign_sub: the default, one flop per
 * element and the bytes of var, value and the written variable.) */
static wf_cost assign_cost(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                           const wf_desc *out) {
    (void)attrs, (void)nin, (void)in;
    return (wf_cost){0.0, 2.0 * (double)wf_shape_numel(&out->shape) *
                              (double)weft_dtype_size(out->dtype)};
}

const wf_op_def wf_op_def_assign = {
    .name = "assign",
    .min_inputs = 2,
    .max_inputs = 2,
    .flags = WF_OPF_UPDATE | WF_OPF_NOT_DIFFERENTIABLE,
    .shape = assign_shape,
    .forward = assign_forward,
    .backward = NULL,
    .cost = assign_cost,
};

const wf_op_def wf_op_def_assign_sub = {
    .name = "assign_sub",
    .min_inputs = 2,
    .max_inputs = 2,
    .flags = WF_OPF_UPDATE | WF_OPF_NOT_DIFFERENTIABLE,
    .shape = assign_sub_shape,
    .forward = assign_sub_forward,
    .backward = NULL,
    .cost = NULL,
};

const wf_op_def wf_op_def_assign_add = {
    .name = "assign_add",
    .min_inputs = 2,
    .max_inputs = 2,
    .flags = WF_OPF_UPDATE | WF_OPF_NOT_DIFFERENTIABLE | WF_OPF_INTERNAL,
    .shape = assign_add_shape,
    .forward = assign_add_forward,
    .backward = NULL,
    .cost = NULL,
};
