/* weft/tensor.h - dense tensors: dtype, shape, data; creation, seeded random init.
 *
 * A tensor is a row-major array of up to WEFT_MAX_DIMS dimensions of float32, float64 or
 * int32 (int32 holds class labels and row ids). It either owns its data or borrows it:
 *   - weft_tensor_create / weft_tensor_from_data(..., WEFT_COPY, ...) own their data
 *     (64-byte aligned, freed by weft_tensor_destroy);
 *   - weft_tensor_from_data(..., WEFT_BORROW, ...) keeps the caller's pointer: the caller
 *     keeps the memory alive and unchanged in size until the tensor is destroyed, and may
 *     write into it between runs (a feed tensor is read during a run, never written).
 *
 * Random initialisation is counter-based: element i of a tensor filled with seed s is a
 * pure function of (s, i), so the same seed gives the same numbers on any thread count and
 * in any order of filling.
 *
 * Thread safety: a tensor is used by one thread at a time; distinct tensors are
 * independent.
 */
#ifndef WEFT_TENSOR_H
#define WEFT_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "weft/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_MAX_DIMS 8

typedef enum weft_dtype {
    WEFT_F32 = 0,
    WEFT_F64 = 1,
    WEFT_I32 = 2
} weft_dtype;
#define WEFT_DTYPE_COUNT 3

/* "f32", "f64", "i32"; "?" for anything else. Static strings. */
WEFT_API const char *weft_dtype_name(weft_dtype dtype);
/* 4, 8, 4; 0 for an unknown dtype. */
WEFT_API size_t weft_dtype_size(weft_dtype dtype);

typedef struct weft_tensor weft_tensor;

typedef enum weft_data_mode {
    WEFT_COPY = 0,  /* the tensor copies the data and owns the copy */
    WEFT_BORROW = 1 /* the tensor points at the caller's data (see the ownership rule) */
} weft_data_mode;

/* A zero-filled tensor. dims[i] >= 0 (0 gives an empty tensor); ndim <= WEFT_MAX_DIMS
 * (0 = a scalar). *out is owned by the caller (weft_tensor_destroy). */
WEFT_API weft_status weft_tensor_create(weft_dtype dtype, size_t ndim, const int64_t *dims,
                                        weft_tensor **out);
/* A tensor over `data` (numel * dtype size bytes), copied or borrowed. */
WEFT_API weft_status weft_tensor_from_data(weft_dtype dtype, size_t ndim, const int64_t *dims,
                                           const void *data, weft_data_mode mode,
                                           weft_tensor **out);
/* NULL is a no-op. Frees owned data; borrowed data is left to its owner. */
WEFT_API void weft_tensor_destroy(weft_tensor *tensor);

/* Sets every element to value (converted to the dtype). */
WEFT_API weft_status weft_tensor_fill(weft_tensor *tensor, double value);

typedef enum weft_init {
    WEFT_INIT_UNIFORM = 0, /* uniform in [a, b) */
    WEFT_INIT_NORMAL = 1,  /* normal with mean a, standard deviation b */
    WEFT_INIT_XAVIER = 2,  /* uniform in +-sqrt(6 / (fan_in + fan_out)); a, b unused */
    WEFT_INIT_HE = 3       /* normal with sd sqrt(2 / fan_in); a, b unused */
} weft_init;

/* Fills a float tensor from the counter-based generator with `seed`. fan_in is dims[0]
 * and fan_out the product of the other dims (a [in, out] weight matrix); a 1-D tensor has
 * fan_in = fan_out = its length. WEFT_ERR_INVALID_ARG for an int32 tensor, b < a
 * (uniform) or b < 0 (normal). */
WEFT_API weft_status weft_tensor_init_random(weft_tensor *tensor, weft_init init,
                                             uint64_t seed, double a, double b);

WEFT_API weft_dtype weft_tensor_dtype(const weft_tensor *tensor);
WEFT_API size_t weft_tensor_ndim(const weft_tensor *tensor);
/* Dimension i; -1 if i >= ndim. */
WEFT_API int64_t weft_tensor_dim(const weft_tensor *tensor, size_t i);
/* Number of elements (1 for a scalar). */
WEFT_API size_t weft_tensor_numel(const weft_tensor *tensor);
/* The data, row-major; owned by the tensor (or by the lender for a borrowed tensor). */
WEFT_API void *weft_tensor_data(weft_tensor *tensor);
WEFT_API const void *weft_tensor_data_const(const weft_tensor *tensor);
/* Element `index` (flat, row-major) converted to double. WEFT_ERR_RANGE past the end. */
WEFT_API weft_status weft_tensor_get(const weft_tensor *tensor, size_t index, double *out);
/* Copies all the data out / in; `bytes` must equal numel * dtype size. */
WEFT_API weft_status weft_tensor_copy_to(const weft_tensor *tensor, void *dst, size_t bytes);
WEFT_API weft_status weft_tensor_copy_from(weft_tensor *tensor, const void *src, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif
