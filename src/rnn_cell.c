/* The fused elementwise passes of an Elman RNN step: see rnn_cell.h. */
#include "rnn_cell.h"

#include "cpu_features.h"
#include "simd_math.h"

static inline float relu_f32(float x) { return x > 0.0f ? x : 0.0f; }
static inline double relu_f64(double x) { return x > 0.0 ? x : 0.0; }

/* The passes, written once for both precisions, each SIMD level and each nonlinearity
 * (tanh, relu); the derivative is taken from the activated value, as the LSTM's. */
#define DEFINE_PASSES_OF(ACT, DERIV, SFX, T, ISA, ATTR)                                   \
    ATTR static void ACT##_forward_row_##SFX##_##ISA(int H, T *pre, const T *bias,        \
                                                     T *h_next, T *out) {                 \
        LN_IVDEP                                                                          \
        for (int j = 0; j < H; j++) {                                                     \
            T hidden = ACT##_##SFX(pre[j] + bias[j]);                                     \
            h_next[j] = hidden;                                                           \
            out[j] = hidden;                                                              \
            pre[j] = hidden;                                                              \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    ATTR static void ACT##_backward_row_##SFX##_##ISA(int H, T *pre, const T *dout,       \
                                                      T *dh) {                            \
        LN_IVDEP                                                                          \
        for (int j = 0; j < H; j++) {                                                     \
            T hidden = pre[j];                                                            \
            T dhidden = dh[j] + dout[j];                                                  \
            pre[j] = dhidden * (DERIV);                                                   \
            dh[j] = 0;                                                                    \
        }                                                                                 \
    }

/* tanh' = 1 − tanh²; relu' = 1 where the output is positive, else 0 (as PyTorch). */
#define DEFINE_PASSES(SFX, T, ISA, ATTR)                                                  \
    DEFINE_PASSES_OF(tanh, 1 - hidden * hidden, SFX, T, ISA, ATTR)                        \
    DEFINE_PASSES_OF(relu, (hidden > 0 ? (T)1 : (T)0), SFX, T, ISA, ATTR)

LN_FOR_EACH_ISA(DEFINE_PASSES)

/* The public entry points: one dispatch per row (a well-predicted branch). */
#define DEFINE_ENTRIES_OF(ACT, SFX, T)                                                    \
    void ln_rnn_##ACT##_forward_row_##SFX(int H, T *pre, const T *bias, T *h_next,        \
                                          T *out) {                                       \
        LN_DISPATCH(ACT##_forward_row_##SFX, H, pre, bias, h_next, out);                  \
    }                                                                                     \
    void ln_rnn_##ACT##_backward_row_##SFX(int H, T *pre, const T *dout, T *dh) {         \
        LN_DISPATCH(ACT##_backward_row_##SFX, H, pre, dout, dh);                          \
    }

DEFINE_ENTRIES_OF(tanh, f32, float)
DEFINE_ENTRIES_OF(tanh, f64, double)
DEFINE_ENTRIES_OF(relu, f32, float)
DEFINE_ENTRIES_OF(relu, f64, double)
