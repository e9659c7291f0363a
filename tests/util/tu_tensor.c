/* tests/util/tu_tensor.c - see tu_tensor.h. Every reference op is the textbook loop over
 * multi-indices, in double; none is clever, so none shares a bug with a kernel. */
#include "tests/util/tu_tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- storage -------------------------------------------------------------------------- */

int tu_ref_alloc(tu_ref *r, int ndim, const int64_t *dims)
{
    tu_ref_free(r);
    if (ndim < 0 || ndim > WEFT_MAX_DIMS)
        return -1;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0)
            return -1;
        r->dims[i] = dims[i];
        n *= (size_t)dims[i];
    }
    r->ndim = ndim;
    r->numel = n;
    r->v = calloc(n ? n : 1, sizeof *r->v);
    return r->v ? 0 : -1;
}

void tu_ref_free(tu_ref *r)
{
    free(r->v);
    memset(r, 0, sizeof *r);
}

int tu_ref_copy(tu_ref *dst, const tu_ref *src)
{
    if (dst == src)
        return 0;
    if (tu_ref_alloc(dst, src->ndim, src->dims))
        return -1;
    memcpy(dst->v, src->v, src->numel * sizeof *src->v);
    return 0;
}

int tu_shape_parse(const char *spec, int *ndim, int64_t *dims, int *open)
{
    *ndim = 0;
    *open = 0;
    if (*spec == '?') {
        *open = 1;
        spec++;
    }
    if (!*spec)
        return *open ? -1 : 0;
    for (;;) {
        char *end;
        long long d = strtoll(spec, &end, 10);
        if (end == spec || d < 0 || *ndim >= WEFT_MAX_DIMS)
            return -1;
        dims[(*ndim)++] = d;
        if (!*end)
            return 0;
        if (*end != 'x')
            return -1;
        spec = end + 1;
    }
}

char *tu_shape_str(int ndim, const int64_t *dims, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++) {
        if (dims[i] < 0)
            len += (size_t)snprintf(buf + len, cap - len, "%s?", i ? "," : "");
        else
            len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? "," : "",
                                    (long long)dims[i]);
    }
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
    return buf;
}

weft_tensor *tu_ref_to_tensor(const tu_ref *r, weft_dtype dtype)
{
    weft_tensor *t = NULL;
    if (weft_tensor_create(dtype, (size_t)r->ndim, r->dims, &t) != WEFT_OK)
        return NULL;
    void *data = weft_tensor_data(t);
    for (size_t i = 0; i < r->numel; i++) {
        switch (dtype) {
        case WEFT_F32: ((float *)data)[i] = (float)r->v[i]; break;
        case WEFT_F64: ((double *)data)[i] = r->v[i]; break;
        case WEFT_I32: ((int32_t *)data)[i] = (int32_t)lrint(r->v[i]); break;
        }
    }
    return t;
}

int tu_ref_from_tensor(tu_ref *r, const weft_tensor *t)
{
    int64_t dims[WEFT_MAX_DIMS];
    int nd = (int)weft_tensor_ndim(t);
    for (int i = 0; i < nd; i++)
        dims[i] = weft_tensor_dim(t, (size_t)i);
    if (tu_ref_alloc(r, nd, dims))
        return -1;
    if (weft_tensor_numel(t) != r->numel)
        return -1;
    for (size_t i = 0; i < r->numel; i++)
        if (weft_tensor_get(t, i, &r->v[i]) != WEFT_OK)
            return -1;
    return 0;
}

void tu_ref_round_f32(tu_ref *r)
{
    for (size_t i = 0; i < r->numel; i++)
        r->v[i] = (double)(float)r->v[i];
}

/* ---- comparison ----------------------------------------------------------------------- */

int tu_ref_same_shape(const tu_ref *a, const tu_ref *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

tu_cmp tu_ref_compare(const tu_ref *got, const tu_ref *want, double floor)
{
    return tu_ref_compare_scaled(got, want, NULL, floor);
}

void tu_ref_abs(tu_ref *r)
{
    for (size_t i = 0; i < r->numel; i++)
        r->v[i] = fabs(r->v[i]);
}

tu_cmp tu_ref_compare_scaled(const tu_ref *got, const tu_ref *want, const tu_ref *scale,
                             double floor)
{
    tu_cmp c = {.max_err = 0.0, .index = 0, .got = 0.0, .want = 0.0};
    if (!tu_ref_same_shape(got, want) || (scale && !tu_ref_same_shape(scale, want))) {
        c.max_err = INFINITY;
        c.index = SIZE_MAX;
        return c;
    }
    for (size_t i = 0; i < want->numel; i++) {
        double w = want->v[i], g = got->v[i];
        double den = fabs(w) > floor ? fabs(w) : floor;
        if (scale && scale->v[i] > den)
            den = scale->v[i];
        double err = (isnan(g) != isnan(w) || isinf(g) != isinf(w)) ? INFINITY
                     : (isnan(w) || (isinf(w) && g == w)) ? 0.0
                                                          : fabs(g - w) / den;
        if (err > c.max_err || (i == 0 && err >= c.max_err)) {
            c.max_err = err;
            c.index = i;
            c.got = g;
            c.want = w;
        }
    }
    return c;
}

/* ---- indexing ------------------------------------------------------------------------- */

/* Multi-index <-> flat offset, row-major. */
static void unflatten(size_t flat, int ndim, const int64_t *dims, int64_t *idx)
{
    for (int i = ndim - 1; i >= 0; i--) {
        idx[i] = dims[i] ? (int64_t)(flat % (size_t)dims[i]) : 0;
        flat = dims[i] ? flat / (size_t)dims[i] : 0;
    }
}

static size_t flatten(int ndim, const int64_t *dims, const int64_t *idx)
{
    size_t off = 0;
    for (int i = 0; i < ndim; i++)
        off = off * (size_t)dims[i] + (size_t)idx[i];
    return off;
}

static int norm_axis(int axis, int ndim)
{
    if (axis < 0)
        axis += ndim;
    return axis >= 0 && axis < ndim ? axis : -1;
}

/* ---- elementwise ---------------------------------------------------------------------- */

int tu_ref_binary(const tu_ref *a, const tu_ref *b, tu_fn2 f, tu_ref *out)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t od[WEFT_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return -1;
        od[i] = da == 1 ? db : da;
    }
    tu_ref r = {0};
    if (tu_ref_alloc(&r, nd, od))
        return -1;
    int64_t idx[WEFT_MAX_DIMS], ia_idx[WEFT_MAX_DIMS], ib_idx[WEFT_MAX_DIMS];
    for (size_t o = 0; o < r.numel; o++) {
        unflatten(o, nd, od, idx);
        for (int i = 0; i < a->ndim; i++) {
            int64_t k = idx[i + nd - a->ndim];
            ia_idx[i] = a->dims[i] == 1 ? 0 : k;
        }
        for (int i = 0; i < b->ndim; i++) {
            int64_t k = idx[i + nd - b->ndim];
            ib_idx[i] = b->dims[i] == 1 ? 0 : k;
        }
        r.v[o] = f(a->v[flatten(a->ndim, a->dims, ia_idx)],
                   b->v[flatten(b->ndim, b->dims, ib_idx)]);
    }
    tu_ref_free(out);
    *out = r;
    return 0;
}

int tu_ref_unary(const tu_ref *a, tu_fn2 f, double param, tu_ref *out)
{
    tu_ref r = {0};
    if (tu_ref_alloc(&r, a->ndim, a->dims))
        return -1;
    for (size_t i = 0; i < a->numel; i++)
        r.v[i] = f(a->v[i], param);
    tu_ref_free(out);
    *out = r;
    return 0;
}

/* ---- matmul --------------------------------------------------------------------------- */

int tu_ref_matmul(const tu_ref *a, const tu_ref *b, int trans_a, int trans_b, tu_ref *out)
{
    if (a->ndim != 2 || b->ndim != 2)
        return -1;
    int64_t m = a->dims[trans_a ? 1 : 0], k = a->dims[trans_a ? 0 : 1];
    int64_t kb = b->dims[trans_b ? 1 : 0], n = b->dims[trans_b ? 0 : 1];
    if (k != kb)
        return -1;
    int64_t od[2] = {m, n};
    tu_ref r = {0};
    if (tu_ref_alloc(&r, 2, od))
        return -1;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < k; p++) {
                double x = trans_a ? a->v[p * a->dims[1] + i] : a->v[i * a->dims[1] + p];
                double y = trans_b ? b->v[j * b->dims[1] + p] : b->v[p * b->dims[1] + j];
                acc += x * y;
            }
            r.v[i * n + j] = acc;
        }
    tu_ref_free(out);
    *out = r;
    return 0;
}

/* ---- reductions ----------------------------------------------------------------------- */

int tu_ref_reduce(const tu_ref *a, int axis, int keepdims, int mean, tu_ref *out)
{
    tu_ref r = {0};
    if (axis == WEFT_AXIS_ALL) {
        int64_t ones[WEFT_MAX_DIMS];
        for (int i = 0; i < a->ndim; i++)
            ones[i] = 1;
        if (tu_ref_alloc(&r, keepdims ? a->ndim : 0, ones))
            return -1;
        double acc = 0.0;
        for (size_t i = 0; i < a->numel; i++)
            acc += a->v[i];
        r.v[0] = mean ? acc / (double)a->numel : acc;
    } else {
        int ax = norm_axis(axis, a->ndim);
        if (ax < 0)
            return -1;
        int64_t od[WEFT_MAX_DIMS];
        int nd = 0;
        for (int i = 0; i < a->ndim; i++) {
            if (i != ax)
                od[nd++] = a->dims[i];
            else if (keepdims)
                od[nd++] = 1;
        }
        if (tu_ref_alloc(&r, nd, od))
            return -1;
        int64_t idx[WEFT_MAX_DIMS], oidx[WEFT_MAX_DIMS];
        for (size_t i = 0; i < a->numel; i++) {
            unflatten(i, a->ndim, a->dims, idx);
            int k = 0;
            for (int d = 0; d < a->ndim; d++) {
                if (d != ax)
                    oidx[k++] = idx[d];
                else if (keepdims)
                    oidx[k++] = 0;
            }
            r.v[flatten(nd, od, oidx)] += a->v[i];
        }
        if (mean)
            for (size_t o = 0; o < r.numel; o++)
                r.v[o] /= (double)a->dims[ax];
    }
    tu_ref_free(out);
    *out = r;
    return 0;
}

int tu_ref_argmax(const tu_ref *a, tu_ref *out)
{
    if (a->ndim < 1 || a->dims[a->ndim - 1] < 1)
        return -1;
    int64_t len = a->dims[a->ndim - 1];
    tu_ref r = {0};
    if (tu_ref_alloc(&r, a->ndim - 1, a->dims))
        return -1;
    for (size_t row = 0; row < r.numel; row++) {
        const double *x = a->v + row * (size_t)len;
        int64_t best = 0;
        for (int64_t k = 1; k < len; k++)
            if (x[k] > x[best])
                best = k;
        r.v[row] = (double)best;
    }
    tu_ref_free(out);
    *out = r;
    return 0;
}

/* ---- softmax family ------------------------------------------------------------------- */

int tu_ref_softmax(const tu_ref *a, int log_out, tu_ref *out)
{
    if (a->ndim < 1)
        return -1;
    int64_t len = a->dims[a->ndim - 1];
    tu_ref r = {0};
    if (tu_ref_alloc(&r, a->ndim, a->dims))
        return -1;
    size_t rows = len ? a->numel / (size_t)len : 0;
    for (size_t row = 0; row < rows; row++) {
        const double *x = a->v + row * (size_t)len;
        double *y = r.v + row * (size_t)len;
        double mx = x[0];
        for (int64_t k = 1; k < len; k++)
            mx = x[k] > mx ? x[k] : mx;
        double s = 0.0;
        for (int64_t k = 0; k < len; k++)
            s += exp(x[k] - mx);
        for (int64_t k = 0; k < len; k++)
            y[k] = log_out ? x[k] - mx - log(s) : exp(x[k] - mx) / s;
    }
    tu_ref_free(out);
    *out = r;
    return 0;
}

int tu_ref_softmax_xent(const tu_ref *logits, const tu_ref *labels, tu_ref *out)
{
    if (logits->ndim != 2 || labels->ndim != 1 || labels->dims[0] != logits->dims[0])
        return -1;
    tu_ref ls = {0}, r = {0};
    if (tu_ref_softmax(logits, 1, &ls))
        return -1;
    int64_t n = logits->dims[0], c = logits->dims[1];
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double lab = labels->v[i];
        if (lab < 0 || lab >= (double)c) {
            tu_ref_free(&ls);
            return -1;
        }
        acc -= ls.v[i * c + (int64_t)lab];
    }
    tu_ref_free(&ls);
    if (tu_ref_alloc(&r, 0, NULL))
        return -1;
    r.v[0] = acc / (double)n;
    tu_ref_free(out);
    *out = r;
    return 0;
}

int tu_ref_mse(const tu_ref *p, const tu_ref *t, tu_ref *out)
{
    if (!tu_ref_same_shape(p, t))
        return -1;
    tu_ref r = {0};
    if (tu_ref_alloc(&r, 0, NULL))
        return -1;
    double acc = 0.0;
    for (size_t i = 0; i < p->numel; i++)
        acc += (p->v[i] - t->v[i]) * (p->v[i] - t->v[i]);
    r.v[0] = acc / (double)p->numel;
    tu_ref_free(out);
    *out = r;
    return 0;
}

/* ---- shape ops ------------------------------------------------------------------------ */

int tu_ref_reshape(const tu_ref *a, int ndim, const int64_t *dims, tu_ref *out)
{
    int64_t od[WEFT_MAX_DIMS];
    int infer = -1;
    size_t known = 1;
    if (ndim < 0 || ndim > WEFT_MAX_DIMS)
        return -1;
    for (int i = 0; i < ndim; i++) {
        od[i] = dims[i];
        if (dims[i] == -1) {
            if (infer >= 0)
                return -1;
            infer = i;
        } else if (dims[i] < 0) {
            return -1;
        } else {
            known *= (size_t)dims[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || a->numel % known)
            return -1;
        od[infer] = (int64_t)(a->numel / known);
        known = a->numel;
    }
    if (known != a->numel)
        return -1;
    tu_ref r = {0};
    if (tu_ref_alloc(&r, ndim, od))
        return -1;
    memcpy(r.v, a->v, a->numel * sizeof *a->v);
    tu_ref_free(out);
    *out = r;
    return 0;
}

int tu_ref_transpose(const tu_ref *a, const int *perm, tu_ref *out)
{
    int p[WEFT_MAX_DIMS], seen[WEFT_MAX_DIMS] = {0};
    int64_t od[WEFT_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++) {
        p[i] = perm ? perm[i] : a->ndim - 1 - i;
        if (p[i] < 0 || p[i] >= a->ndim || seen[p[i]]++)
            return -1;
        od[i] = a->dims[p[i]];
    }
    tu_ref r = {0};
    if (tu_ref_alloc(&r, a->ndim, od))
        return -1;
    int64_t oidx[WEFT_MAX_DIMS], iidx[WEFT_MAX_DIMS];
    for (size_t o = 0; o < r.numel; o++) {
        unflatten(o, a->ndim, od, oidx);
        for (int i = 0; i < a->ndim; i++)
            iidx[p[i]] = oidx[i];
        r.v[o] = a->v[flatten(a->ndim, a->dims, iidx)];
    }
    tu_ref_free(out);
    *out = r;
    return 0;
}

int tu_ref_concat(size_t n, const tu_ref *const *v, int axis, tu_ref *out)
{
    if (n == 0)
        return -1;
    int nd = v[0]->ndim, ax = norm_axis(axis, nd);
    if (ax < 0)
        return -1;
    int64_t od[WEFT_MAX_DIMS];
    memcpy(od, v[0]->dims, sizeof od);
    od[ax] = 0;
    for (size_t k = 0; k < n; k++) {
        if (v[k]->ndim != nd)
            return -1;
        for (int i = 0; i < nd; i++)
            if (i != ax && v[k]->dims[i] != v[0]->dims[i])
                return -1;
        od[ax] += v[k]->dims[ax];
    }
    tu_ref r = {0};
    if (tu_ref_alloc(&r, nd, od))
        return -1;
    int64_t idx[WEFT_MAX_DIMS];
    int64_t base = 0;
    for (size_t k = 0; k < n; k++) {
        for (size_t i = 0; i < v[k]->numel; i++) {
            unflatten(i, nd, v[k]->dims, idx);
            idx[ax] += base;
            r.v[flatten(nd, od, idx)] = v[k]->v[i];
        }
        base += v[k]->dims[ax];
    }
    tu_ref_free(out);
    *out = r;
    return 0;
}

int tu_ref_slice(const tu_ref *a, int axis, int64_t begin, int64_t end, tu_ref *out)
{
    int ax = norm_axis(axis, a->ndim);
    if (ax < 0 || begin < 0 || end < begin || end > a->dims[ax])
        return -1;
    int64_t od[WEFT_MAX_DIMS];
    memcpy(od, a->dims, sizeof od);
    od[ax] = end - begin;
    tu_ref r = {0};
    if (tu_ref_alloc(&r, a->ndim, od))
        return -1;
    int64_t idx[WEFT_MAX_DIMS];
    for (size_t o = 0; o < r.numel; o++) {
        unflatten(o, a->ndim, od, idx);
        idx[ax] += begin;
        r.v[o] = a->v[flatten(a->ndim, a->dims, idx)];
    }
    tu_ref_free(out);
    *out = r;
    return 0;
}

int tu_ref_gather(const tu_ref *table, const tu_ref *ids, tu_ref *out)
{
    if (table->ndim != 2 || ids->ndim + 1 > WEFT_MAX_DIMS)
        return -1;
    int64_t vrows = table->dims[0], d = table->dims[1];
    int64_t od[WEFT_MAX_DIMS];
    memcpy(od, ids->dims, sizeof od);
    od[ids->ndim] = d;
    tu_ref r = {0};
    if (tu_ref_alloc(&r, ids->ndim + 1, od))
        return -1;
    for (size_t i = 0; i < ids->numel; i++) {
        double id = ids->v[i];
        if (id < 0 || id >= (double)vrows) {
            tu_ref_free(&r);
            return -1;
        }
        for (int64_t j = 0; j < d; j++)
            r.v[i * (size_t)d + (size_t)j] = table->v[(int64_t)id * d + j];
    }
    tu_ref_free(out);
    *out = r;
    return 0;
}
