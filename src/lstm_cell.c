/* The fused elementwise passes of an LSTM step: see lstm_cell.h for why. */
#include "lstm_cell.h"

#include <stdint.h>
#include <string.h>

#include "cpu_features.h"

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

/* The row pointers never overlap but at the same index (c_next may be c_prev), which
 * GCC cannot prove for so many streams: tell it the loop carries no dependence. */
#if defined(__GNUC__) && !defined(__clang__)
#define LN_IVDEP _Pragma("GCC ivdep")
#else
#define LN_IVDEP
#endif

/* The passes, written once for both precisions and each SIMD level: the names are the
 * gates'. */
#define DEFINE_PASSES(SFX, T, ISA, ATTR)                                                             \
    ATTR static void forward_row_##SFX##_##ISA(int H, T *gates, const T *bias,              \
                                            const T *c_prev, T *h_next, T *c_next,        \
                                            T *out) {                                     \
        T *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;         \
        const T *bi = bias, *bf = bias + H, *bg = bias + 2 * H, *bo = bias + 3 * H;       \
        LN_IVDEP                                                                          \
        for (int j = 0; j < H; j++) {                                                     \
            T input = sigmoid_##SFX(gi[j] + bi[j]);                                       \
            T forget = sigmoid_##SFX(gf[j] + bf[j]);                                      \
            T candidate = tanh_##SFX(gg[j] + bg[j]);                                      \
            T output = sigmoid_##SFX(go[j] + bo[j]);                                      \
            T cell = forget * c_prev[j] + input * candidate;                              \
            T hidden = output * tanh_##SFX(cell);                                         \
            c_next[j] = cell;                                                             \
            h_next[j] = hidden;                                                           \
            out[j] = hidden;                                                              \
            gi[j] = input;                                                                \
            gf[j] = forget;                                                               \
            gg[j] = candidate;                                                            \
            go[j] = output;                                                               \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    ATTR static void backward_row_##SFX##_##ISA(int H, T *gates, const T *c_prev,           \
                                             const T *c_t, const T *dout, T *dh, T *dc) { \
        T *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;         \
        LN_IVDEP                                                                          \
        for (int j = 0; j < H; j++) {                                                     \
            T input = gi[j], forget = gf[j], candidate = gg[j], output = go[j];           \
            T tanh_cell = tanh_##SFX(c_t[j]);                                             \
            /* h_t = output ⊙ tanh(c_t); c_t = forget ⊙ c_{t-1} + input ⊙ candidate */  \
            T dhidden = dh[j] + dout[j];                                                  \
            T d_output = dhidden * tanh_cell;                                             \
            T dcell = dc[j] + dhidden * output * (1 - tanh_cell * tanh_cell);             \
            T d_input = dcell * candidate;                                                \
            T d_forget = dcell * c_prev[j];                                               \
            T d_candidate = dcell * input;                                                \
            dc[j] = dcell * forget;                                                       \
            dh[j] = 0;                                                                    \
            /* through the nonlinearities: σ' = σ(1 - σ), tanh' = 1 - tanh² */          \
            gi[j] = d_input * input * (1 - input);                                        \
            gf[j] = d_forget * forget * (1 - forget);                                     \
            gg[j] = d_candidate * (1 - candidate * candidate);                            \
            go[j] = d_output * output * (1 - output);                                     \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    ATTR static void vexp_##SFX##_##ISA(int n, const T *x, T *y) {                               \
        for (int j = 0; j < n; j++) y[j] = exp_##SFX(x[j]);                               \
    }                                                                                     \
    ATTR static void vsigmoid_##SFX##_##ISA(int n, const T *x, T *y) {                           \
        for (int j = 0; j < n; j++) y[j] = sigmoid_##SFX(x[j]);                           \
    }                                                                                     \
    ATTR static void vtanh_##SFX##_##ISA(int n, const T *x, T *y) {                              \
        for (int j = 0; j < n; j++) y[j] = tanh_##SFX(x[j]);                              \
    }

DEFINE_PASSES(f32, float, generic, )
DEFINE_PASSES(f64, double, generic, )
#ifdef LN_X86
DEFINE_PASSES(f32, float, avx2, LN_TARGET_AVX2)
DEFINE_PASSES(f64, double, avx2, LN_TARGET_AVX2)
DEFINE_PASSES(f32, float, avx512, LN_TARGET_AVX512)
DEFINE_PASSES(f64, double, avx512, LN_TARGET_AVX512)
#define LN_DISPATCH(NAME, ...)                                                            \
    do {                                                                                  \
        if (ln_isa == LN_ISA_AVX512) NAME##_avx512(__VA_ARGS__);                          \
        else if (ln_isa == LN_ISA_AVX2) NAME##_avx2(__VA_ARGS__);                         \
        else NAME##_generic(__VA_ARGS__);                                                 \
    } while (0)
#else
#define LN_DISPATCH(NAME, ...) NAME##_generic(__VA_ARGS__)
#endif

/* The public entry points: one dispatch per row (a well-predicted branch). */
#define DEFINE_ENTRIES(SFX, T)                                                            \
    void ln_lstm_forward_row_##SFX(int H, T *gates, const T *bias, const T *c_prev,       \
                                   T *h_next, T *c_next, T *out) {                        \
        LN_DISPATCH(forward_row_##SFX, H, gates, bias, c_prev, h_next, c_next, out);      \
    }                                                                                     \
    void ln_lstm_backward_row_##SFX(int H, T *gates, const T *c_prev, const T *c_t,       \
                                    const T *dout, T *dh, T *dc) {                        \
        LN_DISPATCH(backward_row_##SFX, H, gates, c_prev, c_t, dout, dh, dc);             \
    }                                                                                     \
    void ln_vexp_##SFX(int n, const T *x, T *y) { LN_DISPATCH(vexp_##SFX, n, x, y); }     \
    void ln_vsigmoid_##SFX(int n, const T *x, T *y) { LN_DISPATCH(vsigmoid_##SFX, n, x, y); } \
    void ln_vtanh_##SFX(int n, const T *x, T *y) { LN_DISPATCH(vtanh_##SFX, n, x, y); }

DEFINE_ENTRIES(f32, float)
DEFINE_ENTRIES(f64, double)
