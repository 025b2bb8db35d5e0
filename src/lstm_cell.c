/* The fused elementwise passes of an LSTM step: see lstm_cell.h for why. */
#include "lstm_cell.h"

#include "cpu_features.h"
#include "simd_math.h"

/* The passes, written once for both precisions and each SIMD level: the names are the
 * gates'. */
#define DEFINE_PASSES(SFX, T, ISA, ATTR)                                                             \
    ATTR static void forward_row_##SFX##_##ISA(int n, int ld, T *gates, const T *bias,   \
                                            const T *c_prev, T *h_next, T *c_next,        \
                                            T *out) {                                     \
        T *gi = gates, *gf = gates + ld, *gg = gates + 2 * ld, *go = gates + 3 * ld;      \
        const T *bi = bias, *bf = bias + ld, *bg = bias + 2 * ld, *bo = bias + 3 * ld;    \
        LN_IVDEP                                                                          \
        for (int j = 0; j < n; j++) {                                                     \
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
    }

LN_FOR_EACH_ISA(DEFINE_PASSES)

/* The public entry points: one dispatch per row (a well-predicted branch). */
#define DEFINE_ENTRIES(SFX, T)                                                            \
    void ln_lstm_forward_row_##SFX(int n, int ld, T *gates, const T *bias,                \
                                   const T *c_prev, T *h_next, T *c_next, T *out) {       \
        LN_DISPATCH(forward_row_##SFX, n, ld, gates, bias, c_prev, h_next, c_next, out);  \
    }                                                                                     \
    void ln_lstm_backward_row_##SFX(int H, T *gates, const T *c_prev, const T *c_t,       \
                                    const T *dout, T *dh, T *dc) {                        \
        LN_DISPATCH(backward_row_##SFX, H, gates, c_prev, c_t, dout, dh, dc);             \
    }

DEFINE_ENTRIES(f32, float)
DEFINE_ENTRIES(f64, double)
