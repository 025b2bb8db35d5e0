/* The nonlinearities of the fused row passes, shared by every cell (lstm_cell.c,
 * rnn_cell.c).
 *
 * Why our own: at small and medium H the row passes cost more than the GEMMs, and almost
 * all of it is exp and tanh. These are written in SIMD-friendly C (exp from a polynomial
 * and exponent bits, sigmoid and tanh from exp, no branch, no libm call) as static
 * inline functions, so that each cell's loops, compiled for AVX-512, AVX2 and baseline
 * x86-64 (cpu_features.h), inline and vectorise them. Files that include this header
 * are compiled with -fno-trapping-math (CMakeLists.txt): GCC vectorises the selects
 * below (clamps, tanh's two formulas) only then.
 */
#ifndef LSTM_NATIVE_SIMD_MATH_H
#define LSTM_NATIVE_SIMD_MATH_H

#include <stdint.h>
#include <string.h>

/* exp(x) = 2^n · exp(r), n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2], exp(r)
 * from its Taylor series (degree 7 in float, 13 in double: below half an ulp), 2^n
 * written straight into the exponent bits. Rounding uses the 1.5·2^p trick: adding it
 * leaves round(v) in the low mantissa bits, which are then n as an integer. No branch,
 * no libm call: the loops around it vectorise. x is clamped so 2^n stays normal. */
static inline float exp_f32(float x) {
    const float magic = 12582912.0f; /* 1.5 · 2^23 */
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    float r = x - n * 0.693145751953125f - n * 1.42860682030941723e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t ti, mi;
    memcpy(&ti, &t, 4);
    memcpy(&mi, &magic, 4);
    int32_t bits = (ti - mi + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

static inline double exp_f64(double x) {
    const double magic = 6755399441055744.0; /* 1.5 · 2^52 */
    x = x < -708.0 ? -708.0 : x > 709.0 ? 709.0 : x;
    double t = x * 1.4426950408889634074 + magic;
    double n = t - magic;
    double r = x - n * 0.6931471803691238164 - n * 1.9082149292705877e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t ti, mi;
    memcpy(&ti, &t, 8);
    memcpy(&mi, &magic, 8);
    int64_t bits = (ti - mi + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, 8);
    return p * scale;
}

static inline float sigmoid_f32(float x) { return 1.0f / (1.0f + exp_f32(-x)); }
static inline double sigmoid_f64(double x) { return 1.0 / (1.0 + exp_f64(-x)); }

/* tanh(x) = 1 - 2 / (exp(2x) + 1), which cancels near 0: there an odd Taylor series
 * (to x^7 in float, x^15 in double, for |x| < 1/16) keeps the relative error at an ulp. */
static inline float tanh_f32(float x) {
    float big = 1.0f - 2.0f / (exp_f32(2.0f * x) + 1.0f);
    float x2 = x * x;
    float small = x + x * x2 * (-1.0f / 3.0f + x2 * (2.0f / 15.0f + x2 * (-17.0f / 315.0f)));
    return (x < 0.0625f && x > -0.0625f) ? small : big;
}

static inline double tanh_f64(double x) {
    double big = 1.0 - 2.0 / (exp_f64(2.0 * x) + 1.0);
    double x2 = x * x;
    double q = -929569.0 / 638512875.0;
    q = q * x2 + 21844.0 / 6081075.0;
    q = q * x2 - 1382.0 / 155925.0;
    q = q * x2 + 62.0 / 2835.0;
    q = q * x2 - 17.0 / 315.0;
    q = q * x2 + 2.0 / 15.0;
    q = q * x2 - 1.0 / 3.0;
    double small = x + x * x2 * q;
    return (x < 0.0625 && x > -0.0625) ? small : big;
}

/* The row pointers of a pass never overlap but at the same index (c_next may be c_prev),
 * which GCC cannot prove for so many streams: tell it the loop carries no dependence. */
#if defined(__GNUC__) && !defined(__clang__)
#define LN_IVDEP _Pragma("GCC ivdep")
#else
#define LN_IVDEP
#endif

/* Elementwise exp, sigmoid and tanh as the passes compute them, exposed for the tests
 * (simd_math.c). */
void ln_vexp_f32(int n, const float *x, float *y);
void ln_vexp_f64(int n, const double *x, double *y);
void ln_vsigmoid_f32(int n, const float *x, float *y);
void ln_vsigmoid_f64(int n, const double *x, double *y);
void ln_vtanh_f32(int n, const float *x, float *y);
void ln_vtanh_f64(int n, const double *x, double *y);

#endif
