/* ops/common.c - the op table and the helpers every op family uses: shapes, error
 * messages, broadcasting, chunked kernels, emit conveniences for backward builders. */
#include <math.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ops/internal.h"
#include "scheduler/internal.h"

static const wf_op_def *const op_table[WF_OP_COUNT] = {
#define WF_OP_ENTRY_(e, n) [WF_OP_##e] = &wf_op_def_##n,
    WF_OP_LIST(WF_OP_ENTRY_)
#undef WF_OP_ENTRY_
};

const wf_op_def *wf_op_get(wf_op_id id) {
    return (unsigned)id < WF_OP_COUNT ? op_table[id] : NULL;
}

size_t wf_shape_numel(const wf_shape *s) {
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        if (s->d[i] > 0) n *= (size_t)s->d[i];
        else if (s->d[i] == 0) return 0;
    return n;
}

int wf_shape_known(const wf_shape *s) {
    for (int i = 0; i < s->ndim; i++)
        if (s->d[i] < 0) return 0;
    return 1;
}

int wf_shape_equal(const wf_shape *a, const wf_shape *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->d[i] != b->d[i]) return 0;
    return 1;
}

char *wf_shape_str(const wf_shape *s, char *buf, size_t cap) {
    size_t len = 0;
    if (cap == 0) return buf;
    buf[0] = '\0';
    len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "[");
    for (int i = 0; i < s->ndim && len < cap; i++) {
        if (s->d[i] < 0)
            len += (size_t)snprintf(buf + len, cap - len, "%s?", i ? "," : "");
        else
            len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? "," : "",
                                    (long long)s->d[i]);
    }
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}

int wf_shape_broadcast(const wf_shape *a, const wf_shape *b, wf_shape *out) {
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    wf_shape r = {.ndim = n};
    for (int i = 0; i < n; i++) {
        int ia = i - (n - a->ndim), ib = i - (n - b->ndim);
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da == db) r.d[i] = da;
        else if (da == 1) r.d[i] = db;
        else if (db == 1) r.d[i] = da;
        else if (da < 0) r.d[i] = db; /* unknown meets known: checked again at run time */
        else if (db < 0) r.d[i] = da;
        else return -1;
    }
    *out = r;
    return 0;
}

int wf_axis_norm(int axis, int ndim) {
    if (axis < 0) axis += ndim;
    return axis >= 0 && axis < ndim ? axis : -1;
}

weft_status wf_op_shape_error(const char *op, const char *what, const wf_shape *a,
                              const char *sep, const wf_shape *b) {
    char sa[160], sb[160];
    wf_shape_str(a, sa, sizeof sa);
    if (b)
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: %s: %s %s %s", op, what, sa, sep ? sep : ",",
                        wf_shape_str(b, sb, sizeof sb));
    return wf_error(WEFT_ERR_INVALID_ARG, "%s: %s: %s", op, what, sa);
}

weft_status wf_op_error(const char *op, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return wf_error(WEFT_ERR_INVALID_ARG, "%s: %s", op, msg);
}

int wf_dtype_is_float(weft_dtype t) {
    return t == WEFT_F32 || t == WEFT_F64;
}

/* The first failing chunk of a parallel kernel: its value and its message, carried from
 * the worker that ran it (messages are thread-local) back to the calling thread. */
typedef struct chunk_failure {
    weft_range_fn body;
    void *arg;
    _Atomic int claimed;
    int rc;
    char msg[512];
} chunk_failure;

static int guarded_chunk(void *arg, size_t begin, size_t end) {
    chunk_failure *cf = arg;
    int rc = cf->body(cf->arg, begin, end);
    int expected = 0;
    /* the winner's writes are published to the caller by weft_parallel_for's completion */
    if (rc && atomic_compare_exchange_strong_explicit(&cf->claimed, &expected, 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
        cf->rc = rc;
        snprintf(cf->msg, sizeof cf->msg, "%s", weft_last_error());
    }
    return rc;
}

int wf_kernel_parallel(const wf_kernel_ctx *ctx, size_t n, size_t grain, weft_range_fn body,
                       void *arg) {
    if (grain == 0) grain = 1;
    if (n <= grain || !ctx->pool || weft_pool_threads(ctx->pool) < 2) {
        /* the same chunk boundaries as the parallel path: results do not change */
        for (size_t b = 0; b < n; b += grain) {
            int rc = body(arg, b, b + grain < n ? b + grain : n);
            if (rc) return rc;
        }
        return 0;
    }
    chunk_failure cf = {.body = body, .arg = arg};
    weft_status st = weft_parallel_for(ctx->pool, n, grain, guarded_chunk, &cf);
    if (st == WEFT_OK) return 0;
    if (cf.claimed) {
        wf_error(WEFT_ERR_TASK_FAILED, "%s", cf.msg); /* the body's own message */
        return cf.rc;
    }
    return (int)st;
}

void *wf_kernel_scratch(const wf_kernel_ctx *ctx, size_t bytes) {
    wf_scratch *s = ctx->scratch;
    if (bytes <= s->cap) return s->data;
    size_t cap = (bytes + 63) & ~(size_t)63;
    void *p = wf_alloc(cap, 64);
    if (!p) {
        wf_error(WEFT_ERR_NOMEM, "kernel scratch: out of memory for %zu bytes", cap);
        return NULL;
    }
    wf_scratch_free(s);
    s->data = p;
    s->cap = cap;
    return p;
}

void wf_scratch_free(wf_scratch *s) {
    if (s->cap) wf_free(s->data, s->cap);
    s->data = NULL;
    s->cap = 0;
}

wf_cost wf_op_cost(const wf_op_def *def, const wf_attrs *attrs, size_t nin, const wf_desc *in,
                   const wf_desc *out) {
    if (def->cost) return def->cost(attrs, nin, in, out);
    double n_out = (double)wf_shape_numel(&out->shape);
    double n_in = nin ? (double)wf_shape_numel(&in[0].shape) : 0.0;
    double bytes = n_out * (double)weft_dtype_size(out->dtype);
    for (size_t i = 0; i < nin; i++)
        bytes += (double)wf_shape_numel(&in[i].shape) * (double)weft_dtype_size(in[i].dtype);
    double per = def->flops_per_elem > 0 ? def->flops_per_elem : 1.0;
    return (wf_cost){per * (n_in > n_out ? n_in : n_out), bytes};
}

weft_status wf_emit1(wf_grad_ctx *ctx, wf_op_id op, uint32_t a, const wf_attrs *attrs,
                     uint32_t *out) {
    return ctx->emit(ctx->builder, op, 1, &a, attrs, out);
}

weft_status wf_emit2(wf_grad_ctx *ctx, wf_op_id op, uint32_t a, uint32_t b,
                     const wf_attrs *attrs, uint32_t *out) {
    uint32_t in[2] = {a, b};
    return ctx->emit(ctx->builder, op, 2, in, attrs, out);
}

weft_status wf_emit3(wf_grad_ctx *ctx, wf_op_id op, uint32_t a, uint32_t b, uint32_t c,
                     const wf_attrs *attrs, uint32_t *out) {
    uint32_t in[3] = {a, b, c};
    return ctx->emit(ctx->builder, op, 3, in, attrs, out);
}

weft_status wf_emit_unbroadcast(wf_grad_ctx *ctx, uint32_t g, uint32_t like_value,
                                const wf_desc *g_desc, const wf_desc *like_desc,
                                uint32_t *out) {
    if (wf_shape_equal(&g_desc->shape, &like_desc->shape) && wf_shape_known(&g_desc->shape)) {
        *out = g;
        return WEFT_OK;
    }
    return wf_emit2(ctx, WF_OP_SUM_LIKE, g, like_value, NULL, out);
}

long wf_find_nonfinite(const wf_tref *t) {
    size_t n = wf_shape_numel(&t->shape);
    if (t->dtype == WEFT_F32) {
        const float *p = t->data;
        for (size_t i = 0; i < n; i++)
            if (!isfinite(p[i])) return (long)i;
    } else if (t->dtype == WEFT_F64) {
        const double *p = t->data;
        for (size_t i = 0; i < n; i++)
            if (!isfinite(p[i])) return (long)i;
    }
    return -1;
}
