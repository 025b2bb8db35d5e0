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

/* The ONNX operator's options (lstm_cell.h): a value clipped to [-clip, clip], NaN kept. */
#define CLIP(a, c) ((a) < -(c) ? -(c) : (a) > (c) ? (c) : (a))
/* 1 where the clip let a through (the gradient flows), 0 where it cut a; NaN flows. */
#define UNCLIPPED(T, a, c) ((T) !((a) < -(c) || (a) > (c)))

#define DEFINE_VARIANT_PASSES(SFX, T, ISA, ATTR)                                          \
    ATTR static void variant_forward_row_##SFX##_##ISA(                                   \
        int n, int ld, T *gates, const T *bias, const T *peephole, T clip,                \
        int input_forget, const T *c_prev, T *h_next, T *c_next, T *out) {                \
        T *gi = gates, *gf = gates + ld, *gg = gates + 2 * ld, *go = gates + 3 * ld;      \
        const T *bi = bias, *bf = bias + ld, *bg = bias + 2 * ld, *bo = bias + 3 * ld;    \
        const T *pi = peephole, *pf = peephole + ld, *po = peephole + 2 * ld;             \
        LN_IVDEP                                                                          \
        for (int j = 0; j < n; j++) {                                                     \
            /* i and f peek at c_{t-1}, o at c_t */                                       \
            T a_input = gi[j] + bi[j] + pi[j] * c_prev[j];                                \
            T a_forget = gf[j] + bf[j] + pf[j] * c_prev[j];                               \
            T a_candidate = gg[j] + bg[j];                                                \
            T input = sigmoid_##SFX(CLIP(a_input, clip));                                 \
            T own_forget = sigmoid_##SFX(CLIP(a_forget, clip));                           \
            T forget = input_forget ? 1 - input : own_forget;                             \
            T candidate = tanh_##SFX(CLIP(a_candidate, clip));                            \
            T cell = forget * c_prev[j] + input * candidate;                              \
            T a_output = go[j] + bo[j] + po[j] * cell;                                    \
            T output = sigmoid_##SFX(CLIP(a_output, clip));                               \
            T hidden = output * tanh_##SFX(cell);                                         \
            c_next[j] = cell;                                                             \
            h_next[j] = hidden;                                                           \
            out[j] = hidden;                                                              \
            gi[j] = a_input;                                                              \
            gf[j] = a_forget;                                                             \
            gg[j] = a_candidate;                                                          \
            go[j] = a_output;                                                             \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    ATTR static void variant_backward_row_##SFX##_##ISA(                                  \
        int H, T *gates, const T *peephole, T clip, int input_forget, const T *c_prev,    \
        const T *c_t, const T *dout, T *dh, T *dc) {                                      \
        T *gi = gates, *gf = gates + H, *gg = gates + 2 * H, *go = gates + 3 * H;         \
        const T *pi = peephole, *pf = peephole + H, *po = peephole + 2 * H;               \
        LN_IVDEP                                                                          \
        for (int j = 0; j < H; j++) {                                                     \
            /* the gates again from their pre-activations */                              \
            T a_input = gi[j], a_forget = gf[j], a_candidate = gg[j], a_output = go[j];   \
            T input = sigmoid_##SFX(CLIP(a_input, clip));                                 \
            T own_forget = sigmoid_##SFX(CLIP(a_forget, clip));                           \
            T forget = input_forget ? 1 - input : own_forget;                             \
            T candidate = tanh_##SFX(CLIP(a_candidate, clip));                            \
            T output = sigmoid_##SFX(CLIP(a_output, clip));                               \
            T tanh_cell = tanh_##SFX(c_t[j]);                                             \
            T dhidden = dh[j] + dout[j];                                                  \
            T da_output = dhidden * tanh_cell * output * (1 - output)                     \
                          * UNCLIPPED(T, a_output, clip);                                 \
            /* c_t reaches the loss through h_t and through o's peephole */               \
            T dcell = dc[j] + dhidden * output * (1 - tanh_cell * tanh_cell)              \
                      + da_output * po[j];                                                \
            T d_forget = dcell * c_prev[j];                                               \
            /* coupled: f = 1 - i, so i also takes f's gradient, negated */               \
            T d_input = dcell * candidate - (input_forget ? d_forget : 0);                \
            T da_input = d_input * input * (1 - input) * UNCLIPPED(T, a_input, clip);     \
            T da_forget = input_forget ? 0                                                \
                          : d_forget * forget * (1 - forget)                              \
                                * UNCLIPPED(T, a_forget, clip);                           \
            T da_candidate = dcell * input * (1 - candidate * candidate)                  \
                             * UNCLIPPED(T, a_candidate, clip);                           \
            dc[j] = dcell * forget + da_input * pi[j] + da_forget * pf[j];                \
            dh[j] = 0;                                                                    \
            gi[j] = da_input;                                                             \
            gf[j] = da_forget;                                                            \
            gg[j] = da_candidate;                                                         \
            go[j] = da_output;                                                            \
        }                                                                                 \
    }

LN_FOR_EACH_ISA(DEFINE_VARIANT_PASSES)

/* The public entry points: one dispatch per row (a well-predicted branch). */
#define DEFINE_ENTRIES(SFX, T)                                                            \
    void ln_lstm_forward_row_##SFX(int n, int ld, T *gates, const T *bias,                \
                                   const T *c_prev, T *h_next, T *c_next, T *out) {       \
        LN_DISPATCH(forward_row_##SFX, n, ld, gates, bias, c_prev, h_next, c_next, out);  \
    }                                                                                     \
    void ln_lstm_backward_row_##SFX(int H, T *gates, const T *c_prev, const T *c_t,       \
                                    const T *dout, T *dh, T *dc) {                        \
        LN_DISPATCH(backward_row_##SFX, H, gates, c_prev, c_t, dout, dh, dc);             \
    }                                                                                     \
    void ln_lstm_variant_forward_row_##SFX(int n, int ld, T *gates, const T *bias,        \
                                           const T *peephole, T clip, int input_forget,   \
                                           const T *c_prev, T *h_next, T *c_next,         \
                                           T *out) {                                      \
        LN_DISPATCH(variant_forward_row_##SFX, n, ld, gates, bias, peephole, clip,        \
                    input_forget, c_prev, h_next, c_next, out);                           \
    }                                                                                     \
    void ln_lstm_variant_backward_row_##SFX(int H, T *gates, const T *peephole, T clip,   \
                                            int input_forget, const T *c_prev,            \
                                            const T *c_t, const T *dout, T *dh, T *dc) {  \
        LN_DISPATCH(variant_backward_row_##SFX, H, gates, peephole, clip, input_forget,   \
                    c_prev, c_t, dout, dh, dc);                                           \
    }

DEFINE_ENTRIES(f32, float)
DEFINE_ENTRIES(f64, double)
