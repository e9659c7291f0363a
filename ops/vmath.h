/* ops/vmath.h - float math that vectorises: exp, tanh and sigmoid for f32, and type-generic
 * wrappers (vm_exp, vm_log, vm_sqrt, vm_pow, vm_tanh, vm_sigmoid) that pick the f32 or
 * f64 function from the argument's type, so that a kernel written once for both dtypes
 * does not silently compute f32 in double through libm's double functions.
 *
 * Results depend only on the input (never on vector vs scalar execution or on threads):
 * the library is compiled with -ffp-contract=off (C11 mode), so no fused multiply-add
 * appears or disappears between the two. */
#ifndef WEFT_OPS_VMATH_H
#define WEFT_OPS_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- exp ---------------------------------------------------------------------------------
 * Long f32 rows are exp-bound, and glibc's expf is a scalar call (its vector variants
 * need -ffast-math). exp_f32 is plain IEEE arithmetic that an omp simd loop vectorises:
 * ~1.8x glibc's throughput with SSE2 (the default x86-64 target), ~5x when built for
 * AVX-512. Its result does not depend on the machine, nor on vector vs scalar execution
 * (C11 mode compiles with -ffp-contract=off: no fused multiply-adds appear or disappear).
 * Method (Cephes expf): x = n ln2 + r with n = round(x / ln2), |r| <= ln2 / 2, and
 * e^x = 2^n p(r); 2^n is applied as 2^h 2^(n-h), h = round(n / 2), so that subnormal and
 * infinite results come out right from two normal powers of two. Measured against
 * double-precision exp: < 1 ulp wherever the result is finite (subnormals included),
 * -inf -> 0, +inf -> inf, NaN -> the same NaN, and identical bits from vector and scalar
 * code. The clamp and the NaN pass-through work on the integer bits because GCC 12 does
 * not if-convert float comparisons under the default -ftrapping-math, which would leave
 * the loop scalar.
 * f64 keeps libm's exp: vectorising the same scheme needs 64-bit integer compares, which
 * baseline x86-64 (SSE2) lacks, and f64 is the precision path, not the fast one. */

/* 2^k for an integer-valued k in [-126, 127]: the exponent field is the low bits of
 * k + 127 + 1.5 * 2^23 (the rounding-constant trick), shifted into place. */
static inline float pow2i_f32(float k) {
    float t = k + (127.0f + 0x1.8p23f);
    uint32_t b;
    memcpy(&b, &t, sizeof b);
    b <<= 23;
    memcpy(&t, &b, sizeof t);
    return t;
}

static inline float exp_f32(float x) {
    const float round = 0x1.8p23f; /* (v + round) - round = v rounded to an integer */
    int32_t u, a;
    memcpy(&u, &x, sizeof u);
    a = u & 0x7fffffff;
    const int32_t nan = -(int32_t)(a > 0x7f800000); /* all ones for a NaN */
    /* |x| <= 104: e^104 is inf and e^-104 rounds to 0 in f32, and n stays in range */
    a = (a > 0x42d00000 ? 0x42d00000 : a) | (u & INT32_MIN);
    float xc;
    memcpy(&xc, &a, sizeof xc);
    const float n = (xc * 1.44269504088896341f + round) - round;
    const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f; /* ln2 = hi - lo */
    const float p = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
                       4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) *
                        (r * r) + r + 1.0f;
    const float h = (n * 0.5f + round) - round;
    float y = p * pow2i_f32(h) * pow2i_f32(n - h);
    int32_t yb;
    memcpy(&yb, &y, sizeof yb);
    yb = (u & nan) | (yb & ~nan);
    memcpy(&y, &yb, sizeof y);
    return y;
}

/* ---- tanh, sigmoid ------------------------------------------------------------------------
 * tanh_f32: for |x| < 1/8 the odd Taylor polynomial to x^9 (the next term is below 1e-12
 * relative); above, sign(x) (1 - e) / (1 + e) with e = exp_f32(-2|x|), whose cancellation
 * costs at most ~5 ulp at |x| = 1/8 (e = 0.78). NaN passes through; +-inf -> +-1.
 * sigmoid_f32: 1 / (1 + exp_f32(-x)); -inf -> 0, +inf -> 1. */
static inline float tanh_f32(float x) {
    const float ax = fabsf(x), x2 = x * x;
    const float small =
        x + x * x2 * (-0.333333333f + x2 * (0.133333333f + x2 * (-0.0539682540f + x2 * 0.0218694885f)));
    const float e = exp_f32(-2.0f * ax);
    const float big = copysignf((1.0f - e) / (1.0f + e), x);
    return ax < 0.125f ? small : big;
}

static inline float sigmoid_f32(float x) {
    return 1.0f / (1.0f + exp_f32(-x));
}

static inline double sigmoid_f64(double x) {
    return 1.0 / (1.0 + exp(-x));
}

#define vm_exp(x) _Generic((x), float: exp_f32, double: exp)(x)
#define vm_log(x) _Generic((x), float: logf, double: log)(x)
#define vm_sqrt(x) _Generic((x), float: sqrtf, double: sqrt)(x)
#define vm_pow(x, p) _Generic((x), float: powf, double: pow)((x), (p))
#define vm_tanh(x) _Generic((x), float: tanh_f32, double: tanh)(x)
#define vm_sigmoid(x) _Generic((x), float: sigmoid_f32, double: sigmoid_f64)(x)

#endif
