/* graph/tensor.c - weft_tensor: creation, ownership, access, seeded random init.
 *
 * The random generator is counter-based: element i of a tensor filled with seed s is
 * derived from splitmix64(s, i) alone (two counters per element for normals), so the
 * numbers do not depend on the thread count or the order of filling. */
#include <math.h>
#include <string.h>

#include "graph/internal.h"

const char *weft_dtype_name(weft_dtype t) {
    switch (t) {
    case WEFT_F32: return "f32";
    case WEFT_F64: return "f64";
    case WEFT_I32: return "i32";
    }
    return "?";
}

size_t weft_dtype_size(weft_dtype t) {
    switch (t) {
    case WEFT_F32: return 4;
    case WEFT_F64: return 8;
    case WEFT_I32: return 4;
    }
    return 0;
}

void wf_tensor_view(weft_tensor *t, weft_dtype dtype, const wf_shape *shape, void *data) {
    t->ref.dtype = dtype;
    t->ref.shape = *shape;
    t->ref.data = data;
    t->bytes = wf_shape_numel(shape) * weft_dtype_size(dtype);
    t->owned = 0;
}

static weft_status check_desc(const char *who, weft_dtype dtype, size_t ndim,
                              const int64_t *dims, wf_shape *shape) {
    if (weft_dtype_size(dtype) == 0)
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: unknown dtype %d", who, (int)dtype);
    if (ndim > WEFT_MAX_DIMS)
        return wf_error(WEFT_ERR_INVALID_ARG, "%s: %zu dimensions, at most %d", who, ndim,
                        WEFT_MAX_DIMS);
    if (ndim && !dims) return wf_error(WEFT_ERR_INVALID_ARG, "%s: dims is NULL", who);
    shape->ndim = (int)ndim;
    size_t numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        if (dims[i] < 0 || dims[i] > ((int64_t)1 << 40))
            return wf_error(WEFT_ERR_INVALID_ARG, "%s: dimension %zu is %lld", who, i,
                            (long long)dims[i]);
        shape->d[i] = dims[i];
        if (dims[i] && numel > ((size_t)1 << 40) / (size_t)dims[i])
            return wf_error(WEFT_ERR_INVALID_ARG, "%s: too many elements", who);
        numel *= (size_t)dims[i];
    }
    return WEFT_OK;
}

weft_status wf_tensor_new(weft_dtype dtype, const wf_shape *shape, weft_tensor **out) {
    weft_tensor *t = wf_alloc(sizeof *t, 16);
    if (!t) return wf_error(WEFT_ERR_NOMEM, "tensor: out of memory");
    wf_tensor_view(t, dtype, shape, NULL);
    size_t cap = t->bytes < 64 ? 64 : (t->bytes + 63) & ~(size_t)63;
    t->ref.data = wf_calloc(cap, 64);
    if (!t->ref.data) {
        weft_status st = wf_error(WEFT_ERR_NOMEM, "tensor: out of memory for %zu bytes", t->bytes);
        wf_free(t, sizeof *t);
        return st;
    }
    t->owned = 1;
    *out = t;
    return WEFT_OK;
}

weft_status weft_tensor_create(weft_dtype dtype, size_t ndim, const int64_t *dims,
                               weft_tensor **out) {
    if (!out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_create: out is NULL");
    *out = NULL;
    wf_shape shape;
    weft_status st = check_desc("weft_tensor_create", dtype, ndim, dims, &shape);
    return st ? st : wf_tensor_new(dtype, &shape, out);
}

weft_status weft_tensor_from_data(weft_dtype dtype, size_t ndim, const int64_t *dims,
                                  const void *data, weft_data_mode mode, weft_tensor **out) {
    if (!out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_from_data: out is NULL");
    *out = NULL;
    wf_shape shape;
    weft_status st = check_desc("weft_tensor_from_data", dtype, ndim, dims, &shape);
    if (st) return st;
    if (!data && wf_shape_numel(&shape))
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_from_data: data is NULL");
    if (mode == WEFT_COPY) {
        if ((st = wf_tensor_new(dtype, &shape, out))) return st;
        if ((*out)->bytes) memcpy((*out)->ref.data, data, (*out)->bytes);
        return WEFT_OK;
    }
    if (mode != WEFT_BORROW)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_from_data: unknown mode %d", (int)mode);
    weft_tensor *t = wf_alloc(sizeof *t, 16);
    if (!t) return wf_error(WEFT_ERR_NOMEM, "weft_tensor_from_data: out of memory");
    wf_tensor_view(t, dtype, &shape, (void *)data);
    *out = t;
    return WEFT_OK;
}

void weft_tensor_destroy(weft_tensor *t) {
    if (!t) return;
    if (t->owned) {
        size_t cap = t->bytes < 64 ? 64 : (t->bytes + 63) & ~(size_t)63;
        wf_free(t->ref.data, cap);
    }
    wf_free(t, sizeof *t);
}

static void store(weft_tensor *t, size_t i, double v) {
    switch (t->ref.dtype) {
    case WEFT_F32: ((float *)t->ref.data)[i] = (float)v; break;
    case WEFT_F64: ((double *)t->ref.data)[i] = v; break;
    case WEFT_I32: ((int32_t *)t->ref.data)[i] = (int32_t)v; break;
    }
}

weft_status weft_tensor_fill(weft_tensor *t, double value) {
    if (!t) return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_fill: tensor is NULL");
    size_t n = wf_shape_numel(&t->ref.shape);
    for (size_t i = 0; i < n; i++) store(t, i, value);
    return WEFT_OK;
}

/* splitmix64 of (seed, counter): a bijective mix of the pair's combination. */
static uint64_t rng_at(uint64_t seed, uint64_t counter) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + counter * 0xD1B54A32D192ED03ull + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1): 53 random bits, never 0 (log is taken of it). */
static double unit_open(uint64_t seed, uint64_t counter) {
    return ((double)(rng_at(seed, counter) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

weft_status weft_tensor_init_random(weft_tensor *t, weft_init init, uint64_t seed, double a,
                                    double b) {
    if (!t) return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_init_random: tensor is NULL");
    if (!wf_dtype_is_float(t->ref.dtype))
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_init_random: %s tensor (float only)",
                        weft_dtype_name(t->ref.dtype));
    const wf_shape *s = &t->ref.shape;
    size_t n = wf_shape_numel(s);
    double fan_in = s->ndim ? (double)s->d[0] : 1.0;
    double fan_out = s->ndim > 1 ? (double)n / fan_in : fan_in;
    int normal = 0;
    double lo = a, hi = b, mean = a, sd = b;
    switch (init) {
    case WEFT_INIT_UNIFORM:
        if (!(b >= a) || !isfinite(a) || !isfinite(b))
            return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_init_random: uniform range [%g, %g)", a, b);
        break;
    case WEFT_INIT_NORMAL:
        if (!(b >= 0) || !isfinite(a) || !isfinite(b))
            return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_init_random: normal sd %g", b);
        normal = 1;
        break;
    case WEFT_INIT_XAVIER:
        hi = fan_in + fan_out > 0 ? sqrt(6.0 / (fan_in + fan_out)) : 0.0;
        lo = -hi;
        break;
    case WEFT_INIT_HE:
        normal = 1;
        mean = 0.0;
        sd = fan_in > 0 ? sqrt(2.0 / fan_in) : 0.0;
        break;
    default:
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_init_random: unknown init %d", (int)init);
    }
    for (size_t i = 0; i < n; i++) {
        double v;
        if (normal) { /* Box-Muller, cosine branch, counters 2i and 2i+1 */
            double u1 = unit_open(seed, 2 * (uint64_t)i), u2 = unit_open(seed, 2 * (uint64_t)i + 1);
            v = mean + sd * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        } else {
            v = lo + (hi - lo) * (unit_open(seed, i) - 0.5 / 9007199254740992.0);
        }
        store(t, i, v);
    }
    return WEFT_OK;
}

weft_dtype weft_tensor_dtype(const weft_tensor *t) { return t ? t->ref.dtype : WEFT_F32; }
size_t weft_tensor_ndim(const weft_tensor *t) { return t ? (size_t)t->ref.shape.ndim : 0; }
int64_t weft_tensor_dim(const weft_tensor *t, size_t i) {
    return t && i < (size_t)t->ref.shape.ndim ? t->ref.shape.d[i] : -1;
}
size_t weft_tensor_numel(const weft_tensor *t) { return t ? wf_shape_numel(&t->ref.shape) : 0; }
void *weft_tensor_data(weft_tensor *t) { return t ? t->ref.data : NULL; }
const void *weft_tensor_data_const(const weft_tensor *t) { return t ? t->ref.data : NULL; }

weft_status weft_tensor_get(const weft_tensor *t, size_t index, double *out) {
    if (!t || !out) return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_get: NULL argument");
    size_t n = wf_shape_numel(&t->ref.shape);
    if (index >= n)
        return wf_error(WEFT_ERR_RANGE, "weft_tensor_get: index %zu, the tensor has %zu elements",
                        index, n);
    switch (t->ref.dtype) {
    case WEFT_F32: *out = ((const float *)t->ref.data)[index]; break;
    case WEFT_F64: *out = ((const double *)t->ref.data)[index]; break;
    case WEFT_I32: *out = ((const int32_t *)t->ref.data)[index]; break;
    }
    return WEFT_OK;
}

weft_status weft_tensor_copy_to(const weft_tensor *t, void *dst, size_t bytes) {
    if (!t || (!dst && bytes))
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_copy_to: NULL argument");
    if (bytes != t->bytes)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_copy_to: %zu bytes, the tensor has %zu",
                        bytes, t->bytes);
    if (bytes) memcpy(dst, t->ref.data, bytes);
    return WEFT_OK;
}

weft_status weft_tensor_copy_from(weft_tensor *t, const void *src, size_t bytes) {
    if (!t || (!src && bytes))
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_copy_from: NULL argument");
    if (bytes != t->bytes)
        return wf_error(WEFT_ERR_INVALID_ARG, "weft_tensor_copy_from: %zu bytes, the tensor has %zu",
                        bytes, t->bytes);
    if (bytes) memcpy(t->ref.data, src, bytes);
    return WEFT_OK;
}
