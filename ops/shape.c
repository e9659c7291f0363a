/* ops/shape.c - ops that move data rather than compute it: reshape, reshape_like,
 * transpose, concat, slice, slice_grad, gather, gather_grad (the one that adds).
 *
 * Apart from gather_grad, the kernels only copy bytes, so one byte-level helper serves
 * every dtype (f32, f64, i32): copy_rows moves `rows` rows of equal length between two
 * strided layouts, split into fixed byte ranges with wf_kernel_parallel. Transpose
 * first merges the axes that stay adjacent and drops axes of size 1; what remains is
 * usually a (batched) 2-D transpose, done in cache tiles, else a general strided copy.
 * gather_grad sums rows in id-position order within fixed blocks of table rows, so its
 * results do not depend on the thread count.
 */
#include <stdio.h>
#include <string.h>

#include "ops/internal.h"
#include "scheduler/internal.h"

/* Bytes per chunk of a parallel copy: ~20-50 us of memcpy, well above the cost of a
 * task, and small enough that a 10 MB copy still spreads over many cores. */
#define SH_COPY_GRAIN ((size_t)256 * 1024)
/* Edge of the square tiles of a 2-D transpose, in elements: a 32x32 tile of f64 is 8 KiB,
 * source and destination lines fit in L1 together. */
#define SH_TILE ((size_t)32)

/* ---- helpers --------------------------------------------------------------------------- */

static size_t sh_dim(int64_t d) {
    return d < 0 ? 1 : (size_t)d;
}

/* Product of dims [from, to) (concrete shapes). */
static size_t sh_prod(const wf_shape *s, int from, int to) {
    size_t n = 1;
    for (int i = from; i < to; i++) n *= sh_dim(s->d[i]);
    return n;
}

/* "[5,-1]": a requested shape, -1 printed as given (wf_shape_str would print "?"). */
static char *sh_dims_str(const int64_t *d, int n, char *buf, size_t cap) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? "," : "", (long long)d[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}

static char *sh_perm_str(const int *p, int n, char *buf, size_t cap) {
    int64_t d[WEFT_MAX_DIMS];
    for (int i = 0; i < n; i++) d[i] = p[i];
    return sh_dims_str(d, n, buf, cap);
}

/* rows x row_bytes bytes from src (row stride src_stride) to dst (row stride dst_stride),
 * or zeros when src is NULL. The byte range [0, rows*row_bytes) is split into chunks of
 * SH_COPY_GRAIN, so one long row and many short rows parallelise alike. */
typedef struct sh_rows_job {
    char *dst;
    const char *src;
    size_t dst_stride, src_stride, row_bytes;
} sh_rows_job;

static int sh_rows_body(void *arg, size_t begin, size_t end) {
    const sh_rows_job *j = arg;
    size_t pos = begin;
    while (pos < end) {
        size_t r = pos / j->row_bytes, off = pos % j->row_bytes;
        size_t len = j->row_bytes - off;
        if (len > end - pos) len = end - pos;
        char *d = j->dst + r * j->dst_stride + off;
        if (j->src) memcpy(d, j->src + r * j->src_stride + off, len);
        else memset(d, 0, len);
        pos += len;
    }
    return 0;
}

static int copy_rows(const wf_kernel_ctx *ctx, void *dst, size_t dst_stride, const void *src,
                     size_t src_stride, size_t rows, size_t row_bytes) {
    if (rows == 0 || row_bytes == 0) return 0;
    if (rows > 1 && dst_stride == row_bytes && (!src || src_stride == row_bytes)) {
        row_bytes *= rows; /* contiguous on both sides: one long row */
        rows = 1;
    }
    sh_rows_job j = {dst, src, dst_stride, src_stride, row_bytes};
    return wf_kernel_parallel(ctx, rows * row_bytes, SH_COPY_GRAIN, sh_rows_body, &j);
}

static int copy_all(const wf_kernel_ctx *ctx, void *dst, const void *src, size_t bytes) {
    if (dst == src) return 0; /* computed in place */
    return copy_rows(ctx, dst, bytes, src, bytes, 1, bytes);
}

static size_t sh_bytes(const wf_desc *d) {
    return wf_shape_numel(&d->shape) * weft_dtype_size(d->dtype);
}

/* Data movement: no flops; the output is written and as many bytes read. */
static wf_cost sh_cost_move(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                            const wf_desc *out) {
    (void)attrs, (void)nin, (void)in;
    return (wf_cost){0.0, 2.0 * (double)sh_bytes(out)};
}

/* ---- reshape ----------------------------------------------------------------------------
 * attrs->shape is the request (one -1 = inferred); it is kept as given, so that a plan
 * infers the dim again for every batch size. */

static weft_status reshape_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                 wf_desc *out) {
    (void)nin;
    const wf_shape *req = &attrs->shape, *s = &in[0].shape;
    char sa[160], sb[160];
    if (req->ndim < 0 || req->ndim > WEFT_MAX_DIMS)
        return wf_op_error("reshape", "%d dimensions requested (at most %d)", req->ndim,
                           WEFT_MAX_DIMS);
    int infer = -1;
    int64_t known = 1; /* product of the requested sizes other than -1 */
    for (int i = 0; i < req->ndim; i++) {
        int64_t d = req->d[i];
        if (d == -1 && infer < 0) {
            infer = i;
            continue;
        }
        if (d < 0)
            return wf_op_error("reshape", "%s: %s",
                               d == -1 ? "more than one inferred (-1) dimension"
                                       : "negative dimension",
                               sh_dims_str(req->d, req->ndim, sb, sizeof sb));
        if (d > 0 && known > INT64_MAX / d)
            return wf_op_error("reshape", "%s has too many elements",
                               sh_dims_str(req->d, req->ndim, sb, sizeof sb));
        known *= d;
    }
    out->dtype = in[0].dtype;
    out->shape = *req;
    int ok = 1;
    if (wf_shape_known(s)) {
        int64_t total = (int64_t)wf_shape_numel(s);
        if (infer < 0) ok = total == known;
        else if (known == 0) ok = 0; /* [0,-1]: the inferred size is ambiguous */
        else if (total % known) ok = 0;
        else out->shape.d[infer] = total / known;
    } else if (infer < 0) {
        /* the known input dims must at least divide the requested count */
        int64_t part = (int64_t)wf_shape_numel(s);
        ok = part == 0 ? known == 0 : known % part == 0;
    } /* else: the inferred dim stays open until the run */
    if (!ok)
        return wf_op_error("reshape", "cannot reshape %s into %s",
                           wf_shape_str(s, sa, sizeof sa),
                           sh_dims_str(req->d, req->ndim, sb, sizeof sb));
    return WEFT_OK;
}

/* reshape and reshape_like: the same bytes (nothing to do when planned in place). */
static int reshape_forward(const wf_kernel_ctx *ctx) {
    return copy_all(ctx, ctx->out->data, ctx->in[0].data,
                    wf_shape_numel(&ctx->out->shape) * weft_dtype_size(ctx->out->dtype));
}

static weft_status reshape_backward(wf_grad_ctx *ctx) {
    if (!ctx->needs[0]) return WEFT_OK;
    return wf_emit2(ctx, WF_OP_RESHAPE_LIKE, ctx->gout, ctx->in[0], NULL, &ctx->gin[0]);
}

const wf_op_def wf_op_def_reshape = {
    .name = "reshape",
    .min_inputs = 1,
    .max_inputs = 1,
    .flags = WF_OPF_INPLACE | WF_OPF_VIEW,
    .shape = reshape_shape,
    .forward = reshape_forward,
    .backward = reshape_backward,
    .cost = sh_cost_move,
};

/* ---- reshape_like(x, ref): x's data with ref's shape ---------------------------------- */

static weft_status reshape_like_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                      wf_desc *out) {
    (void)attrs, (void)nin;
    const wf_shape *x = &in[0].shape, *ref = &in[1].shape;
    if (wf_shape_known(x) && wf_shape_known(ref) && wf_shape_numel(x) != wf_shape_numel(ref))
        return wf_op_shape_error("reshape_like", "element counts differ", x, "and", ref);
    out->dtype = in[0].dtype;
    out->shape = *ref;
    return WEFT_OK;
}

/* ref is read only for its shape: its gradient stays WF_NO_VALUE (zero). */
static weft_status reshape_like_backward(wf_grad_ctx *ctx) {
    if (!ctx->needs[0]) return WEFT_OK;
    return wf_emit2(ctx, WF_OP_RESHAPE_LIKE, ctx->gout, ctx->in[0], NULL, &ctx->gin[0]);
}

const wf_op_def wf_op_def_reshape_like = {
    .name = "reshape_like",
    .min_inputs = 2,
    .max_inputs = 2,
    .flags = WF_OPF_INTERNAL | WF_OPF_INPLACE | WF_OPF_VIEW,
    .shape_only = 1u << 1,
    .shape = reshape_like_shape,
    .forward = reshape_forward,
    .backward = reshape_like_backward,
    .cost = sh_cost_move,
};

/* ---- transpose ----------------------------------------------------------------------------
 * Output axis i is input axis perm[i]. */

static weft_status transpose_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                   wf_desc *out) {
    (void)nin;
    const int nd = in[0].shape.ndim;
    unsigned seen = 0;
    for (int i = 0; i < nd; i++) {
        int p = attrs->perm[i];
        if (p < 0 || p >= nd || (seen >> p) & 1u) {
            char sp[160];
            return wf_op_error("transpose", "perm %s is not a permutation of %d axes",
                               sh_perm_str(attrs->perm, nd, sp, sizeof sp), nd);
        }
        seen |= 1u << p;
    }
    out->dtype = in[0].dtype;
    out->shape.ndim = nd;
    for (int i = 0; i < nd; i++) out->shape.d[i] = in[0].shape.d[attrs->perm[i]];
    return WEFT_OK;
}

/* The transpose reduced to its essentials: axes of size 1 dropped, and input axes that
 * stay adjacent and in order in the output merged. dim[] are the input dims of the
 * result, output axis i is input axis perm[i]. */
typedef struct tp_plan {
    int nd;
    size_t dim[WEFT_MAX_DIMS];
    int perm[WEFT_MAX_DIMS];
} tp_plan;

static void tp_collapse(const wf_shape *s, const int *perm, tp_plan *p) {
    int rank[WEFT_MAX_DIMS], q[WEFT_MAX_DIMS], nk = 0, nq = 0;
    size_t kd[WEFT_MAX_DIMS];
    for (int a = 0; a < s->ndim; a++) {
        rank[a] = s->d[a] == 1 ? -1 : nk;
        if (rank[a] >= 0) kd[nk++] = (size_t)s->d[a];
    }
    for (int j = 0; j < s->ndim; j++)
        if (rank[perm[j]] >= 0) q[nq++] = rank[perm[j]];
    /* groups: runs of consecutive input ranks, in output order */
    int gstart[WEFT_MAX_DIMS], glen[WEFT_MAX_DIMS], ng = 0;
    for (int j = 0; j < nq; j++) {
        if (j > 0 && q[j] == q[j - 1] + 1) {
            glen[ng - 1]++;
        } else {
            gstart[ng] = q[j];
            glen[ng++] = 1;
        }
    }
    p->nd = ng;
    for (int g = 0; g < ng; g++) {
        int ord = 0; /* the group's place in input order */
        for (int h = 0; h < ng; h++) ord += gstart[h] < gstart[g];
        size_t d = 1;
        for (int r = gstart[g]; r < gstart[g] + glen[g]; r++) d *= kd[r];
        p->dim[ord] = d;
        p->perm[g] = ord;
    }
}

typedef struct tp_job {
    const void *src;
    void *dst;
    /* batched 2-D: [batch, rows, cols] -> [batch, cols, rows]; items are (batch, tile of
     * output rows) */
    size_t rows, cols, col_tiles;
    /* general: output dims, the input stride of each output axis */
    int nd;
    size_t odim[WEFT_MAX_DIMS], istride[WEFT_MAX_DIMS];
} tp_job;

/* One body per element type (copies through the element's own type, no aliasing). */
#define TP_DEFINE(T)                                                                       \
    static int tp_tiles_##T(void *arg, size_t i0, size_t i1) {                             \
        const tp_job *j = arg;                                                             \
        const size_t R = j->rows, C = j->cols;                                             \
        for (size_t it = i0; it < i1; it++) {                                              \
            const size_t b = it / j->col_tiles, c0 = it % j->col_tiles * SH_TILE;          \
            const size_t c1 = c0 + SH_TILE < C ? c0 + SH_TILE : C;                         \
            const T *src = (const T *)j->src + b * R * C;                                  \
            T *dst = (T *)j->dst + b * R * C;                                              \
            for (size_t r0 = 0; r0 < R; r0 += SH_TILE) {                                   \
                const size_t r1 = r0 + SH_TILE < R ? r0 + SH_TILE : R;                     \
                for (size_t c = c0; c < c1; c++)                                           \
                    for (size_t r = r0; r < r1; r++) dst[c * R + r] = src[r * C + c];      \
            }                                                                              \
        }                                                                                  \
        return 0;                                                                          \
    }                                                                                      \
    static int tp_general_##T(void *arg, size_t r0, size_t r1) {                           \
        const tp_job *j = arg;                                                             \
        const int last = j->nd - 1;                                                        \
        const size_t L = j->odim[last], ls = j->istride[last];                             \
        size_t idx[WEFT_MAX_DIMS], off = 0, rem = r0;                                      \
        for (int a = last - 1; a >= 0; a--) { /* output row r0 as a multi-index */         \
            idx[a] = rem % j->odim[a];                                                     \
            rem /= j->odim[a];                                                             \
            off += idx[a] * j->istride[a];                                                 \
        }                                                                                  \
        const T *src = j->src;                                                             \
        for (size_t r = r0; r < r1; r++) {                                                 \
            T *dst = (T *)j->dst + r * L;                                                  \
            for (size_t l = 0; l < L; l++) dst[l] = src[off + l * ls];                     \
            for (int a = last - 1; a >= 0; a--) { /* next row: odometer */                 \
                off += j->istride[a];                                                      \
                if (++idx[a] < j->odim[a]) break;                                          \
                off -= idx[a] * j->istride[a];                                             \
                idx[a] = 0;                                                                \
            }                                                                              \
        }                                                                                  \
        return 0;                                                                          \
    }
TP_DEFINE(float)
TP_DEFINE(double)
TP_DEFINE(int32_t)
#undef TP_DEFINE

static int transpose_forward(const wf_kernel_ctx *ctx) {
    const wf_tref *in = &ctx->in[0];
    const weft_dtype dt = in->dtype;
    const size_t n = wf_shape_numel(&in->shape), esize = weft_dtype_size(dt);
    if (n == 0) return 0;
    tp_plan p;
    tp_collapse(&in->shape, ctx->attrs->perm, &p);
    if (p.nd <= 1) return copy_all(ctx, ctx->out->data, in->data, n * esize);

    tp_job j = {.src = in->data, .dst = ctx->out->data};
    if (p.nd == 2 || (p.nd == 3 && p.perm[0] == 0 && p.perm[1] == 2)) {
        /* a (batched) 2-D transpose; tiles of output rows, ~WF_ELEM_GRAIN per chunk */
        j.rows = p.dim[p.nd - 2];
        j.cols = p.dim[p.nd - 1];
        j.col_tiles = (j.cols + SH_TILE - 1) / SH_TILE;
        size_t items = (p.nd == 3 ? p.dim[0] : 1) * j.col_tiles;
        size_t grain = WF_ELEM_GRAIN / (SH_TILE * j.rows);
        weft_range_fn body = dt == WEFT_F32 ? tp_tiles_float
                           : dt == WEFT_F64 ? tp_tiles_double : tp_tiles_int32_t;
        return wf_kernel_parallel(ctx, items, grain ? grain : 1, body, &j);
    }
    size_t istride[WEFT_MAX_DIMS], s = 1;
    for (int a = p.nd - 1; a >= 0; a--) {
        istride[a] = s;
        s *= p.dim[a];
    }
    j.nd = p.nd;
    for (int i = 0; i < p.nd; i++) {
        j.odim[i] = p.dim[p.perm[i]];
        j.istride[i] = istride[p.perm[i]];
    }
    size_t L = j.odim[p.nd - 1], grain = WF_ELEM_GRAIN / L;
    weft_range_fn body = dt == WEFT_F32 ? tp_general_float
                       : dt == WEFT_F64 ? tp_general_double : tp_general_int32_t;
    return wf_kernel_parallel(ctx, n / L, grain ? grain : 1, body, &j);
}

static weft_status transpose_backward(wf_grad_ctx *ctx) {
    if (!ctx->needs[0]) return WEFT_OK;
    wf_attrs at = {0};
    for (int i = 0; i < ctx->in_desc[0].shape.ndim; i++) at.perm[ctx->attrs->perm[i]] = i;
    return wf_emit1(ctx, WF_OP_TRANSPOSE, ctx->gout, &at, &ctx->gin[0]);
}

const wf_op_def wf_op_def_transpose = {
    .name = "transpose",
    .min_inputs = 1,
    .max_inputs = 1,
    .flags = 0,
    .shape = transpose_shape,
    .forward = transpose_forward,
    .backward = transpose_backward,
    .cost = sh_cost_move,
};

/* ---- concat -------------------------------------------------------------------------- */

static weft_status concat_shape(wf_attrs *attrs, size_t nin, const wf_desc *in, wf_desc *out) {
    const wf_shape *s0 = &in[0].shape;
    char sa[160];
    if (s0->ndim == 0) return wf_op_error("concat", "cannot join scalars");
    int axis = wf_axis_norm(attrs->axis, s0->ndim);
    if (axis < 0)
        return wf_op_error("concat", "axis %d out of range for %s", attrs->axis,
                           wf_shape_str(s0, sa, sizeof sa));
    attrs->axis = axis;
    *out = in[0];
    size_t from[WEFT_MAX_DIMS] = {0}; /* the input that fixed out->shape.d[d] */
    for (size_t i = 1; i < nin; i++) {
        const wf_shape *s = &in[i].shape;
        if (in[i].dtype != in[0].dtype)
            return wf_op_error("concat", "dtypes differ: %s and %s",
                               weft_dtype_name(in[0].dtype), weft_dtype_name(in[i].dtype));
        if (s->ndim != s0->ndim)
            return wf_op_shape_error("concat", "ranks differ", s0, "and", s);
        for (int d = 0; d < s->ndim; d++) {
            int64_t have = out->shape.d[d], got = s->d[d];
            if (d == axis) {
                out->shape.d[d] = have < 0 || got < 0 ? -1 : have + got;
            } else if (have < 0) {
                out->shape.d[d] = got;
                from[d] = i;
            } else if (got >= 0 && got != have) {
                char what[64];
                snprintf(what, sizeof what, "shapes differ outside axis %d", axis);
                return wf_op_shape_error("concat", what, &in[from[d]].shape, "and", s);
            }
        }
    }
    return WEFT_OK;
}

static int concat_forward(const wf_kernel_ctx *ctx) {
    const wf_shape *os = &ctx->out->shape;
    const int axis = ctx->attrs->axis;
    const size_t esize = weft_dtype_size(ctx->out->dtype);
    const size_t outer = sh_prod(os, 0, axis), inner = sh_prod(os, axis + 1, os->ndim) * esize;
    const size_t out_row = (size_t)os->d[axis] * inner;
    size_t off = 0;
    for (size_t i = 0; i < ctx->nin; i++) {
        const size_t row = (size_t)ctx->in[i].shape.d[axis] * inner;
        int rc = copy_rows(ctx, (char *)ctx->out->data + off, out_row, ctx->in[i].data, row,
                           outer, row);
        if (rc) return rc;
        off += row;
    }
    return 0;
}

/* gin[i] = slice(g, axis, offset_i, offset_i + len_i): the offsets must be known when the
 * graph is built, i.e. every input up to a needed one has a known size along axis. */
static weft_status concat_backward(wf_grad_ctx *ctx) {
    if (ctx->nin == 1) {
        if (ctx->needs[0]) ctx->gin[0] = ctx->gout;
        return WEFT_OK;
    }
    const int axis = wf_axis_norm(ctx->attrs->axis, ctx->in_desc[0].shape.ndim);
    int64_t off = 0;
    for (size_t i = 0; i < ctx->nin; i++) {
        const int64_t len = ctx->in_desc[i].shape.d[axis];
        if (ctx->needs[i]) {
            if (off < 0 || len < 0)
                return wf_op_error("concat", "gradient over an open dimension not supported");
            wf_attrs at = {.axis = axis, .begin = off, .end = off + len};
            weft_status st = wf_emit1(ctx, WF_OP_SLICE, ctx->gout, &at, &ctx->gin[i]);
            if (st != WEFT_OK) return st;
        }
        off = off < 0 || len < 0 ? -1 : off + len;
    }
    return WEFT_OK;
}

const wf_op_def wf_op_def_concat = {
    .name = "concat",
    .min_inputs = 1,
    .max_inputs = 0,
    .flags = 0,
    .shape = concat_shape,
    .forward = concat_forward,
    .backward = concat_backward,
    .cost = sh_cost_move,
};

/* ---- slice, slice_grad ----------------------------------------------------------------
 * Elements [begin, end) of axis; slice_grad(g, ref) puts g back at that place in zeros of
 * ref's shape. */

/* Normalises attrs->axis against s and checks 0 <= begin <= end <= dim (an open dim only
 * bounds begin and end from below). */
static weft_status slice_check(const char *op, wf_attrs *attrs, const wf_shape *s) {
    char sa[160];
    if (s->ndim == 0) return wf_op_error(op, "cannot slice a scalar");
    int axis = wf_axis_norm(attrs->axis, s->ndim);
    if (axis < 0)
        return wf_op_error(op, "axis %d out of range for %s", attrs->axis,
                           wf_shape_str(s, sa, sizeof sa));
    attrs->axis = axis;
    const int64_t dim = s->d[axis];
    if (attrs->begin < 0 || attrs->end < attrs->begin || (dim >= 0 && attrs->end > dim))
        return wf_op_error(op, "range [%lld,%lld) out of bounds for axis %d of %s",
                           (long long)attrs->begin, (long long)attrs->end, axis,
                           wf_shape_str(s, sa, sizeof sa));
    return WEFT_OK;
}

static weft_status slice_shape(wf_attrs *attrs, size_t nin, const wf_desc *in, wf_desc *out) {
    (void)nin;
    weft_status st = slice_check("slice", attrs, &in[0].shape);
    if (st != WEFT_OK) return st;
    *out = in[0];
    out->shape.d[attrs->axis] = attrs->end - attrs->begin;
    return WEFT_OK;
}

/* outer rows of `dim` * inner bytes; the slice is bytes [begin*inner, end*inner) of each */
typedef struct slice_geom {
    size_t outer, inner, dim, begin, end;
} slice_geom;

static slice_geom slice_geometry(const wf_attrs *attrs, const wf_shape *full, weft_dtype dt) {
    const int axis = attrs->axis;
    return (slice_geom){
        .outer = sh_prod(full, 0, axis),
        .inner = sh_prod(full, axis + 1, full->ndim) * weft_dtype_size(dt),
        .dim = (size_t)full->d[axis],
        .begin = (size_t)attrs->begin,
        .end = (size_t)attrs->end,
    };
}

static int slice_forward(const wf_kernel_ctx *ctx) {
    slice_geom g = slice_geometry(ctx->attrs, &ctx->in[0].shape, ctx->in[0].dtype);
    const size_t row = (g.end - g.begin) * g.inner;
    const char *src = (const char *)ctx->in[0].data + g.begin * g.inner;
    return copy_rows(ctx, ctx->out->data, row, src, g.dim * g.inner, g.outer, row);
}

static weft_status slice_backward(wf_grad_ctx *ctx) {
    if (!ctx->needs[0]) return WEFT_OK;
    return wf_emit2(ctx, WF_OP_SLICE_GRAD, ctx->gout, ctx->in[0], ctx->attrs, &ctx->gin[0]);
}

const wf_op_def wf_op_def_slice = {
    .name = "slice",
    .min_inputs = 1,
    .max_inputs = 1,
    .flags = 0,
    .shape = slice_shape,
    .forward = slice_forward,
    .backward = slice_backward,
    .cost = sh_cost_move,
};

static weft_status slice_grad_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                    wf_desc *out) {
    (void)nin;
    const wf_shape *g = &in[0].shape, *ref = &in[1].shape;
    weft_status st = slice_check("slice_grad", attrs, ref);
    if (st != WEFT_OK) return st;
    wf_shape want = *ref;
    want.d[attrs->axis] = attrs->end - attrs->begin;
    int ok = g->ndim == want.ndim;
    for (int d = 0; ok && d < g->ndim; d++)
        ok = g->d[d] < 0 || want.d[d] < 0 || g->d[d] == want.d[d];
    if (!ok) return wf_op_shape_error("slice_grad", "gradient does not fit", g, "into", ref);
    out->dtype = in[0].dtype;
    out->shape = *ref;
    return WEFT_OK;
}

static int slice_grad_forward(const wf_kernel_ctx *ctx) {
    slice_geom g = slice_geometry(ctx->attrs, &ctx->out->shape, ctx->out->dtype);
    char *out = ctx->out->data;
    const size_t stride = g.dim * g.inner, row = (g.end - g.begin) * g.inner;
    /* zeros before the range, g in it, zeros after it: each byte written once */
    int rc = copy_rows(ctx, out, stride, NULL, 0, g.outer, g.begin * g.inner);
    if (!rc)
        rc = copy_rows(ctx, out + g.begin * g.inner, stride, ctx->in[0].data, row, g.outer,
                       row);
    if (!rc)
        rc = copy_rows(ctx, out + g.end * g.inner, stride, NULL, 0, g.outer,
                       (g.dim - g.end) * g.inner);
    return rc;
}

/* ref is read only for its shape: its gradient stays WF_NO_VALUE (zero). */
static weft_status slice_grad_backward(wf_grad_ctx *ctx) {
    if (!ctx->needs[0]) return WEFT_OK;
    return wf_emit1(ctx, WF_OP_SLICE, ctx->gout, ctx->attrs, &ctx->gin[0]);
}

const wf_op_def wf_op_def_slice_grad = {
    .name = "slice_grad",
    .min_inputs = 2,
    .max_inputs = 2,
    .flags = WF_OPF_INTERNAL,
    .shape_only = 1u << 1,
    .shape = slice_grad_shape,
    .forward = slice_grad_forward,
    .backward = slice_grad_backward,
    .cost = sh_cost_move,
};

/* ---- gather, gather_grad ----------------------------------------------------------------
 * gather(table [V,D], ids) = table rows picked by ids, shape ids.shape + [D]. Ids are
 * checked on the thread that runs the kernel, before any copy, so that an id out of
 * range gives WEFT_ERR_RANGE and its message there (a body failing inside
 * weft_parallel_for would come back as WEFT_ERR_TASK_FAILED, its message on a worker). */

static weft_status gather_check(const char *op, const wf_desc *table, const wf_desc *ids) {
    char sa[160];
    if (table->shape.ndim != 2)
        return wf_op_shape_error(op, "table must be 2-D", &table->shape, NULL, NULL);
    if (ids->dtype != WEFT_I32)
        return wf_op_error(op, "ids must be i32, not %s", weft_dtype_name(ids->dtype));
    if (ids->shape.ndim + 1 > WEFT_MAX_DIMS)
        return wf_op_error(op, "ids %s have too many dimensions (at most %d)",
                           wf_shape_str(&ids->shape, sa, sizeof sa), WEFT_MAX_DIMS - 1);
    return WEFT_OK;
}

static weft_status gather_shape(wf_attrs *attrs, size_t nin, const wf_desc *in, wf_desc *out) {
    (void)attrs, (void)nin;
    if (!wf_dtype_is_float(in[0].dtype))
        return wf_op_error("gather", "table must be float, not %s",
                           weft_dtype_name(in[0].dtype));
    weft_status st = gather_check("gather", &in[0], &in[1]);
    if (st != WEFT_OK) return st;
    out->dtype = in[0].dtype;
    out->shape = in[1].shape;
    out->shape.d[out->shape.ndim++] = in[0].shape.d[1];
    return WEFT_OK;
}

/* Index of the first id outside [0, V), or n if all are in range. */
static size_t gather_bad_id(const int32_t *ids, size_t n, int64_t V) {
    for (size_t p = 0; p < n; p++)
        if (ids[p] < 0 || ids[p] >= V) return p;
    return n;
}

static weft_status gather_range_error(const char *op, const int32_t *ids, size_t p,
                                      int64_t V) {
    return wf_error(WEFT_ERR_RANGE, "%s: id %d at position %zu out of range [0, %lld)", op,
                    ids[p], p, (long long)V);
}

typedef struct gather_job {
    const char *table;
    char *out;
    const int32_t *ids;
    size_t row_bytes;
} gather_job;

static int gather_rows(void *arg, size_t p0, size_t p1) {
    const gather_job *j = arg;
    for (size_t p = p0; p < p1; p++)
        memcpy(j->out + p * j->row_bytes, j->table + (size_t)j->ids[p] * j->row_bytes,
               j->row_bytes);
    return 0;
}

static int gather_forward(const wf_kernel_ctx *ctx) {
    const wf_tref *table = &ctx->in[0], *ids = &ctx->in[1];
    const int64_t V = table->shape.d[0];
    const size_t n = wf_shape_numel(&ids->shape);
    const size_t row = (size_t)table->shape.d[1] * weft_dtype_size(table->dtype);
    size_t bad = gather_bad_id(ids->data, n, V);
    if (bad < n) return gather_range_error("gather", ids->data, bad, V);
    if (row == 0) return 0;
    gather_job j = {table->data, ctx->out->data, ids->data, row};
    size_t grain = SH_COPY_GRAIN / row;
    return wf_kernel_parallel(ctx, n, grain ? grain : 1, gather_rows, &j);
}

static weft_status gather_backward(wf_grad_ctx *ctx) {
    /* ids are integers: they never get a gradient */
    if (!ctx->needs[0]) return WEFT_OK;
    return wf_emit3(ctx, WF_OP_GATHER_GRAD, ctx->gout, ctx->in[1], ctx->in[0], NULL,
                    &ctx->gin[0]);
}

/* Reads the ids and writes the picked rows. */
static wf_cost gather_cost(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                           const wf_desc *out) {
    (void)attrs, (void)nin;
    return (wf_cost){0.0, (double)sh_bytes(&in[1]) + 2.0 * (double)sh_bytes(out)};
}

const wf_op_def wf_op_def_gather = {
    .name = "gather",
    .min_inputs = 2,
    .max_inputs = 2,
    .flags = 0,
    .shape = gather_shape,
    .forward = gather_forward,
    .backward = gather_backward,
    .cost = gather_cost,
};

/* gather_grad(g, ids, table_ref) = zeros of table_ref's shape [V,D] plus, for each
 * position p in increasing order, g[p,:] added to row ids[p].
 *
 * Determinism: the table rows are split into fixed blocks (a function of V and D); one
 * chunk owns a block, zeroes it and adds the rows of its ids in position order, so every
 * element sees its additions in position order on any thread count. A chunk finds its
 * positions by scanning all ids, unless that scan (blocks x n) would cost more than the
 * useful work ((V + n) x D): then a stable counting sort of the positions by block
 * (sequential, O(n), in the node's scratch memory) hands each chunk its own. */

static weft_status gather_grad_shape(wf_attrs *attrs, size_t nin, const wf_desc *in,
                                     wf_desc *out) {
    (void)attrs, (void)nin;
    const wf_desc *g = &in[0], *ids = &in[1], *ref = &in[2];
    if (!wf_dtype_is_float(g->dtype))
        return wf_op_error("gather_grad", "gradient must be float, not %s",
                           weft_dtype_name(g->dtype));
    weft_status st = gather_check("gather_grad", ref, ids);
    if (st != WEFT_OK) return st;
    wf_shape want = ids->shape;
    want.d[want.ndim++] = ref->shape.d[1];
    int ok = g->shape.ndim == want.ndim;
    for (int d = 0; ok && d < want.ndim; d++)
        ok = g->shape.d[d] < 0 || want.d[d] < 0 || g->shape.d[d] == want.d[d];
    if (!ok)
        return wf_op_shape_error("gather_grad", "gradient shape differs from ids.shape + [D]",
                                 &g->shape, "vs", &want);
    out->dtype = g->dtype;
    out->shape = ref->shape;
    return WEFT_OK;
}

typedef struct gg_job {
    const void *g;
    void *out;
    const int32_t *ids;
    size_t n, V, D, block_rows;
    size_t *order; /* positions sorted by block (stable), or NULL: scan all */
    size_t *end;   /* block b's positions are order[b ? end[b-1] : 0 .. end[b]) */
} gg_job;

#define GG_DEFINE(T)                                                                       \
    static int gg_blocks_##T(void *arg, size_t b0, size_t b1) {                            \
        const gg_job *j = arg;                                                             \
        const T *g = j->g;                                                                 \
        T *out = j->out;                                                                   \
        const size_t D = j->D;                                                             \
        for (size_t b = b0; b < b1; b++) {                                                 \
            const size_t v0 = b * j->block_rows;                                           \
            const size_t rows = v0 + j->block_rows < j->V ? j->block_rows : j->V - v0;     \
            memset(out + v0 * D, 0, rows * D * sizeof(T));                                 \
            const size_t k0 = j->order ? (b ? j->end[b - 1] : 0) : 0;                      \
            const size_t k1 = j->order ? j->end[b] : j->n;                                 \
            for (size_t k = k0; k < k1; k++) {                                             \
                const size_t p = j->order ? j->order[k] : k;                               \
                const size_t v = (size_t)j->ids[p];                                        \
                if (v - v0 >= rows) continue; /* another block's row (scan only) */        \
                T *dst = out + v * D;                                                      \
                const T *src = g + p * D;                                                  \
                _Pragma("omp simd") for (size_t d = 0; d < D; d++) dst[d] += src[d];       \
            }                                                                              \
        }                                                                                  \
        return 0;                                                                          \
    }
GG_DEFINE(float)
GG_DEFINE(double)
#undef GG_DEFINE

/* The counting sort of positions by block into order[n] and end[nblocks], as gg_job
 * describes them. */
static void gg_sort(gg_job *j, size_t nblocks, size_t *order, size_t *end) {
    /* counts into end[b], exclusive prefix sums, then each placement advances end[b]:
     * afterwards end[b] is the end of block b's positions */
    memset(end, 0, nblocks * sizeof *end);
    for (size_t p = 0; p < j->n; p++) end[(size_t)j->ids[p] / j->block_rows]++;
    size_t sum = 0;
    for (size_t b = 0; b < nblocks; b++) {
        size_t c = end[b];
        end[b] = sum;
        sum += c;
    }
    for (size_t p = 0; p < j->n; p++) order[end[(size_t)j->ids[p] / j->block_rows]++] = p;
    j->order = order;
    j->end = end;
}

static int gather_grad_forward(const wf_kernel_ctx *ctx) {
    const int32_t *ids = ctx->in[1].data;
    const size_t V = (size_t)ctx->out->shape.d[0], D = (size_t)ctx->out->shape.d[1];
    const size_t n = wf_shape_numel(&ctx->in[1].shape);
    size_t bad = gather_bad_id(ids, n, (int64_t)V);
    if (bad < n) return gather_range_error("gather_grad", ids, bad, (int64_t)V);
    if (V == 0 || D == 0) return 0;

    size_t block_rows = WF_ELEM_GRAIN / D;
    if (block_rows == 0) block_rows = 1;
    const size_t nblocks = (V + block_rows - 1) / block_rows;
    gg_job j = {.g = ctx->in[0].data, .out = ctx->out->data, .ids = ids, .n = n, .V = V,
                .D = D, .block_rows = block_rows};
    if (nblocks > 1 && (double)nblocks * (double)n > (double)(V + n) * (double)D) {
        size_t *order = wf_kernel_scratch(ctx, (n + nblocks) * sizeof *order);
        if (!order) return WEFT_ERR_NOMEM; /* message recorded by wf_kernel_scratch */
        gg_sort(&j, nblocks, order, order + n);
    }
    weft_range_fn body = ctx->out->dtype == WEFT_F32 ? gg_blocks_float : gg_blocks_double;
    return wf_kernel_parallel(ctx, nblocks, 1, body, &j);
}

/* n*D additions; reads g and the ids, writes the table. */
static wf_cost gather_grad_cost(const wf_attrs *attrs, size_t nin, const wf_desc *in,
                                const wf_desc *out) {
    (void)attrs, (void)nin;
    return (wf_cost){(double)wf_shape_numel(&in[0].shape),
                     (double)(sh_bytes(&in[0]) + sh_bytes(&in[1]) + sh_bytes(out))};
}

const wf_op_def wf_op_def_gather_grad = {
    .name = "gather_grad",
    .min_inputs = 3,
    .max_inputs = 3,
    .flags = WF_OPF_INTERNAL | WF_OPF_NOT_DIFFERENTIABLE,
    .shape_only = 1u << 2,
    .shape = gather_grad_shape,
    .forward = gather_grad_forward,
    .backward = NULL,
    .cost = gather_grad_cost,
};
