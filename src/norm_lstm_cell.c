/* The fused passes of the layer-normalised LSTM: see norm_lstm_cell.h. */
#include "norm_lstm_cell.h"

#include <math.h>

#include "cpu_features.h"
#include "simd_math.h"

#define LN_EPS 1e-5
/* Partial sums of a row reduction: one AVX-512 register of floats. */
#define LN_LANES 16

/* result = Σ_{j < n} EXPR (EXPR reads j) in LN_LANES partial sums, lane k taking the
 * j = k mod LN_LANES, combined pairwise in a fixed order: the same bits at every SIMD
 * level, and a loop the compiler vectorises without reassociating. */
#define LN_REDUCE(T, n, EXPR, result)                                                     \
    do {                                                                                  \
        T acc_[LN_LANES] = {0};                                                           \
        int j0_ = 0;                                                                      \
        for (; j0_ + LN_LANES <= (n); j0_ += LN_LANES)                                    \
            for (int k_ = 0; k_ < LN_LANES; k_++) {                                       \
                int j = j0_ + k_;                                                         \
                acc_[k_] += (EXPR);                                                       \
            }                                                                             \
        for (int k_ = 0; j0_ + k_ < (n); k_++) {                                          \
            int j = j0_ + k_;                                                             \
            acc_[k_] += (EXPR);                                                           \
        }                                                                                 \
        for (int w_ = LN_LANES / 2; w_ > 0; w_ /= 2)                                      \
            for (int k_ = 0; k_ < w_; k_++) acc_[k_] += acc_[k_ + w_];                    \
        (result) = acc_[0];                                                               \
    } while (0)

#define DEFINE_PASSES(SFX, T, ISA, ATTR)                                                  \
    /* xhat = (v - mean) / sqrt(var + eps) over n values (xhat may be v); returns       \
     * 1 / sqrt(var + eps). */                                                            \
    ATTR static inline T normalize_##SFX##_##ISA(int n, const T *v, T *xhat) {           \
        T sum, sq;                                                                        \
        LN_REDUCE(T, n, v[j], sum);                                                       \
        T mean = sum / n;                                                                 \
        LN_REDUCE(T, n, (v[j] - mean) * (v[j] - mean), sq);                               \
        T rstd = 1 / (T)sqrt(sq / n + (T)LN_EPS);                                         \
        LN_IVDEP                                                                          \
        for (int j = 0; j < n; j++) xhat[j] = (v[j] - mean) * rstd;                       \
        return rstd;                                                                      \
    }                                                                                     \
                                                                                          \
    /* The gradient on v of LN's normalisation, from dxhat (the gradient on xhat):      \
     * rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), written into out. */           \
    ATTR static inline void normalize_backward_##SFX##_##ISA(                             \
        int n, T rstd, const T *xhat, const T *dxhat, T *out) {                           \
        T m1, m2;                                                                         \
        LN_REDUCE(T, n, dxhat[j], m1);                                                    \
        LN_REDUCE(T, n, dxhat[j] * xhat[j], m2);                                          \
        m1 /= n;                                                                          \
        m2 /= n;                                                                          \
        LN_IVDEP                                                                          \
        for (int j = 0; j < n; j++) out[j] = rstd * (dxhat[j] - m1 - xhat[j] * m2);       \
    }                                                                                     \
                                                                                          \
    ATTR static void forward_row_##SFX##_##ISA(int H, T *gates, T *norm, const T *bias,  \
                                               const T *ln, const T *c_prev, T *h_next,   \
                                               T *c_next, T *out) {                       \
        int G = 4 * H;                                                                    \
        T *xhat_x = norm, *rec = norm + G, *xhat_c = norm + 2 * G, *rstd = norm + 9 * H; \
        const T *gamma_x = ln, *beta_x = ln + G, *gamma_h = ln + 2 * G;                   \
        const T *beta_h = ln + 3 * G, *gamma_c = ln + 4 * G, *beta_c = ln + 4 * G + H;    \
        rstd[0] = normalize_##SFX##_##ISA(G, gates, xhat_x);                              \
        rstd[1] = normalize_##SFX##_##ISA(G, rec, rec);                                   \
        LN_IVDEP                                                                          \
        for (int j = 0; j < G; j++)                                                       \
            gates[j] = gamma_x[j] * xhat_x[j] + beta_x[j] + gamma_h[j] * rec[j]           \
                       + beta_h[j] + bias[j];                                             \
        T *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;         \
        LN_IVDEP                                                                          \
        for (int j = 0; j < H; j++) {                                                     \
            T input = sigmoid_##SFX(gi[j]);                                               \
            T forget = sigmoid_##SFX(gf[j]);                                              \
            T candidate = tanh_##SFX(gg[j]);                                              \
            T output = sigmoid_##SFX(go[j]);                                              \
            c_next[j] = forget * c_prev[j] + input * candidate;                           \
            gi[j] = input;                                                                \
            gf[j] = forget;                                                               \
            gg[j] = candidate;                                                            \
            go[j] = output;                                                               \
        }                                                                                 \
        rstd[2] = normalize_##SFX##_##ISA(H, c_next, xhat_c);                             \
        LN_IVDEP                                                                          \
        for (int j = 0; j < H; j++) {                                                     \
            T hidden = go[j] * tanh_##SFX(gamma_c[j] * xhat_c[j] + beta_c[j]);            \
            h_next[j] = hidden;                                                           \
            out[j] = hidden;                                                              \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    ATTR static void backward_row_##SFX##_##ISA(int H, T *gates, T *norm, const T *ln,    \
                                                const T *c_prev, const T *dout, T *dh,    \
                                                T *dc, T *acc) {                          \
        int G = 4 * H;                                                                    \
        T *xhat_x = norm, *rec = norm + G, *xhat_c = norm + 2 * G, *rstd = norm + 9 * H; \
        const T *gamma_x = ln, *gamma_h = ln + 2 * G;                                     \
        const T *gamma_c = ln + 4 * G, *beta_c = ln + 4 * G + H;                          \
        T *sum_da = acc, *sum_da_x = acc + G, *sum_da_h = acc + 2 * G;                    \
        T *sum_dy = acc + 3 * G, *sum_dy_c = acc + 3 * G + H;                             \
        T *scratch = acc + 3 * G + 2 * H; /* G values */                                  \
        T *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;         \
        /* h_t = o ⊙ tanh(y_c), y_c = γ_c x̂_c + β_c: o's gradient, and x̂_c's */           \
        LN_IVDEP                                                                          \
        for (int j = 0; j < H; j++) {                                                     \
            T output = go[j];                                                             \
            T tanh_y = tanh_##SFX(gamma_c[j] * xhat_c[j] + beta_c[j]);                    \
            T dhidden = dh[j] + dout[j];                                                  \
            T dy = dhidden * output * (1 - tanh_y * tanh_y);                              \
            go[j] = dhidden * tanh_y * output * (1 - output);                             \
            sum_dy[j] += dy;                                                              \
            sum_dy_c[j] += dy * xhat_c[j];                                                \
            scratch[j] = dy * gamma_c[j];                                                 \
            dh[j] = 0;                                                                    \
        }                                                                                 \
        /* through c's normalisation: the gradient on c_t that h_t gives */               \
        normalize_backward_##SFX##_##ISA(H, rstd[2], xhat_c, scratch, scratch);           \
        LN_IVDEP                                                                          \
        for (int j = 0; j < H; j++) {                                                     \
            T input = gi[j], forget = gf[j], candidate = gg[j];                           \
            T dcell = dc[j] + scratch[j];                                                 \
            dc[j] = dcell * forget;                                                       \
            gi[j] = dcell * candidate * input * (1 - input);                              \
            gf[j] = dcell * c_prev[j] * forget * (1 - forget);                            \
            gg[j] = dcell * input * (1 - candidate * candidate);                          \
        }                                                                                 \
        /* gates now hold da, the gradient on the pre-activations: the parameters' sums */ \
        LN_IVDEP                                                                          \
        for (int j = 0; j < G; j++) {                                                     \
            sum_da[j] += gates[j];                                                        \
            sum_da_x[j] += gates[j] * xhat_x[j];                                          \
            sum_da_h[j] += gates[j] * rec[j];                                             \
        }                                                                                 \
        /* through the two normalisations, into rec (W_hh h_{t-1}'s) and gates (W_ih x_t's) \
         * gradients */                                                                   \
        LN_IVDEP                                                                          \
        for (int j = 0; j < G; j++) scratch[j] = gates[j] * gamma_h[j];                   \
        normalize_backward_##SFX##_##ISA(G, rstd[1], rec, scratch, rec);                  \
        LN_IVDEP                                                                          \
        for (int j = 0; j < G; j++) scratch[j] = gates[j] * gamma_x[j];                   \
        normalize_backward_##SFX##_##ISA(G, rstd[0], xhat_x, scratch, gates);             \
    }

LN_FOR_EACH_ISA(DEFINE_PASSES)

#define DEFINE_ENTRIES(SFX, T)                                                            \
    void ln_norm_lstm_forward_row_##SFX(int H, T *gates, T *norm, const T *bias,          \
                                        const T *ln, const T *c_prev, T *h_next,          \
                                        T *c_next, T *out) {                              \
        LN_DISPATCH(forward_row_##SFX, H, gates, norm, bias, ln, c_prev, h_next, c_next,  \
                    out);                                                                 \
    }                                                                                     \
    void ln_norm_lstm_backward_row_##SFX(int H, T *gates, T *norm, const T *ln,           \
                                         const T *c_prev, const T *dout, T *dh, T *dc,    \
                                         T *acc) {                                        \
        LN_DISPATCH(backward_row_##SFX, H, gates, norm, ln, c_prev, dout, dh, dc, acc);   \
    }

DEFINE_ENTRIES(f32, float)
DEFINE_ENTRIES(f64, double)
