/* tests/util/tu_tensor.h - reference tensors in double precision for op tests.
 *
 * A tu_ref is a plain row-major array of doubles with a shape: what a test writes its
 * expected results in. It converts to and from weft tensors of any dtype, and comes with
 * naive reference implementations of the tensor ops of weft/ops.h, written from the
 * definitions (nested loops over multi-indices, no blocking, no shared code with ops/) so
 * that a test can check weft's kernels against something independent. The references
 * apply their own shape rules and return -1 where a shape does not fit.
 *
 * Ownership: a tu_ref owns its array (tu_ref_free); functions that write a tu_ref `out`
 * free what it held first, so an out-parameter may be reused. A zero-initialised tu_ref
 * is empty and may be freed.
 *
 * Thread safety: none needed (test main thread only); distinct tu_refs are independent.
 */
#ifndef WEFT_TESTS_TU_TENSOR_H
#define WEFT_TESTS_TU_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "weft.h"

typedef struct tu_ref {
    int ndim;
    int64_t dims[WEFT_MAX_DIMS];
    size_t numel;
    double *v; /* malloc'd, numel elements (at least one slot) */
} tu_ref;

/* (Re)initialises r as zeros of the shape. 0, or -1 (bad shape, out of memory). */
int tu_ref_alloc(tu_ref *r, int ndim, const int64_t *dims);
void tu_ref_free(tu_ref *r);
int tu_ref_copy(tu_ref *dst, const tu_ref *src);

/* Parses "3x1x4" (a scalar: ""); a leading '?' ("?3x4") marks the first dimension as open
 * at build time (*open = 1; it is 3 when fed). 0, or -1 for a malformed spec. */
int tu_shape_parse(const char *spec, int *ndim, int64_t *dims, int *open);
/* "[3,1,4]" into buf; returns buf. */
char *tu_shape_str(int ndim, const int64_t *dims, char *buf, size_t cap);

/* A new weft tensor of `dtype` holding r's values (converted; i32 rounds to nearest).
 * NULL on failure. Owned by the caller. */
weft_tensor *tu_ref_to_tensor(const tu_ref *r, weft_dtype dtype);
/* r = the values of t, as doubles. 0 or -1. */
int tu_ref_from_tensor(tu_ref *r, const weft_tensor *t);

/* Rounds every value to the nearest float (so that f32 and f64 runs see the same
 * numbers). */
void tu_ref_round_f32(tu_ref *r);

/* ---- comparison ----------------------------------------------------------------------- */

/* Largest |got - want| / max(|want|, floor) over the elements, the index where it occurs,
 * and the two values there. Shapes must match (else max_err = +inf, index = SIZE_MAX). */
typedef struct tu_cmp {
    double max_err;
    size_t index;
    double got, want;
} tu_cmp;

tu_cmp tu_ref_compare(const tu_ref *got, const tu_ref *want, double floor);
/* The same with a per-element magnitude: the error is relative to
 * max(|want|, floor, scale[i]) (scale shaped like want, or NULL). For results whose
 * rounding error grows with the terms that were summed, not with the sum (a dot product:
 * scale = |a| @ |b|). */
tu_cmp tu_ref_compare_scaled(const tu_ref *got, const tu_ref *want, const tu_ref *scale,
                             double floor);
/* Replaces every value by its absolute value. */
void tu_ref_abs(tu_ref *r);
int tu_ref_same_shape(const tu_ref *a, const tu_ref *b);

/* ---- reference ops -------------------------------------------------------------------- */

typedef double (*tu_fn2)(double, double);

/* NumPy broadcasting: out = f(a, b). */
int tu_ref_binary(const tu_ref *a, const tu_ref *b, tu_fn2 f, tu_ref *out);
/* out = f(a, param) elementwise. */
int tu_ref_unary(const tu_ref *a, tu_fn2 f, double param, tu_ref *out);
/* op(a) @ op(b) on 2-D operands. */
int tu_ref_matmul(const tu_ref *a, const tu_ref *b, int trans_a, int trans_b, tu_ref *out);
/* Sum (mean = 0) or mean over all elements (axis WEFT_AXIS_ALL) or one axis. */
int tu_ref_reduce(const tu_ref *a, int axis, int keepdims, int mean, tu_ref *out);
/* Softmax or log-softmax over the last axis. */
int tu_ref_softmax(const tu_ref *a, int log, tu_ref *out);
/* Mean over rows of -log softmax(logits)[i, labels[i]]; a scalar. -1 for a label out of
 * range. */
int tu_ref_softmax_xent(const tu_ref *logits, const tu_ref *labels, tu_ref *out);
/* Mean of (p - t)^2; a scalar. */
int tu_ref_mse(const tu_ref *p, const tu_ref *t, tu_ref *out);
/* Same data, new shape (one -1 inferred). */
int tu_ref_reshape(const tu_ref *a, int ndim, const int64_t *dims, tu_ref *out);
/* Output axis i is input axis perm[i]; perm NULL reverses. */
int tu_ref_transpose(const tu_ref *a, const int *perm, tu_ref *out);
/* Joins n values along axis (negative from the end). */
int tu_ref_concat(size_t n, const tu_ref *const *v, int axis, tu_ref *out);
/* [begin, end) of axis (negative from the end). */
int tu_ref_slice(const tu_ref *a, int axis, int64_t begin, int64_t end, tu_ref *out);
/* Rows of table [V, D] picked by ids: shape ids.shape + [D]. -1 for an id out of range. */
int tu_ref_gather(const tu_ref *table, const tu_ref *ids, tu_ref *out);
/* Index of the largest element of the last axis (first of ties). */
int tu_ref_argmax(const tu_ref *a, tu_ref *out);

#endif
