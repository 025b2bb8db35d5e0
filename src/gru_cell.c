/* The fused elementwise passes of a GRU step: see gru_cell.h. */
#include "gru_cell.h"

#include "cpu_features.h"
#include "simd_math.h"

/* The passes, written once for both precisions and each SIMD level: the names are the
 * gates' (reset r, update z, candidate n). */
#define DEFINE_PASSES(SFX, T, ISA, ATTR)                                                  \
    ATTR static void forward_row_##SFX##_##ISA(int n, int ld, T *gates, const T *bias,    \
                                               const T *bias_hn, T *hn, const T *h_prev,  \
                                               T *h_next, T *out) {                       \
        T *gr = gates, *gz = gates + ld, *gn = gates + 2 * ld;                            \
        const T *br = bias, *bz = bias + ld, *bn = bias + 2 * ld;                         \
        LN_IVDEP                                                                          \
        for (int j = 0; j < n; j++) {                                                     \
            T reset = sigmoid_##SFX(gr[j] + br[j]);                                       \
            T update = sigmoid_##SFX(gz[j] + bz[j]);                                      \
            T recurrent_n = hn[j] + bias_hn[j];                                           \
            T candidate = tanh_##SFX(gn[j] + bn[j] + reset * recurrent_n);                \
            T hidden = (1 - update) * candidate + update * h_prev[j];                     \
            h_next[j] = hidden;                                                           \
            out[j] = hidden;                                                              \
            hn[j] = recurrent_n;                                                          \
            gr[j] = reset;                                                                \
            gz[j] = update;                                                               \
            gn[j] = candidate;                                                            \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    ATTR static void backward_row_##SFX##_##ISA(int H, T *gates, T *hn, const T *h_prev,  \
                                                const T *dout, T *dh) {                   \
        T *gr = gates, *gz = gates + H, *gn = gates + 2 * H;                              \
        LN_IVDEP                                                                          \
        for (int j = 0; j < H; j++) {                                                     \
            T reset = gr[j], update = gz[j], candidate = gn[j], recurrent_n = hn[j];      \
            /* h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}; n = tanh(a_n), a_n = ... + r ⊙ hn */     \
            T dhidden = dh[j] + dout[j];                                                  \
            T d_candidate = dhidden * (1 - update);                                       \
            T d_update = dhidden * (h_prev[j] - candidate);                               \
            T da_n = d_candidate * (1 - candidate * candidate);                           \
            T d_reset = da_n * recurrent_n;                                               \
            dh[j] = dhidden * update;                                                     \
            hn[j] = reset * da_n;                                                         \
            /* through the sigmoids: σ' = σ(1 − σ) */                                    \
            gr[j] = d_reset * reset * (1 - reset);                                        \
            gz[j] = d_update * update * (1 - update);                                     \
            gn[j] = da_n;                                                                 \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    ATTR static void reset_row_##SFX##_##ISA(int n, T *gates, const T *bias,              \
                                             const T *h_prev, T *rh) {                    \
        LN_IVDEP                                                                          \
        for (int j = 0; j < n; j++) {                                                     \
            T reset = sigmoid_##SFX(gates[j] + bias[j]);                                  \
            gates[j] = reset;                                                             \
            rh[j] = reset * h_prev[j];                                                    \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    ATTR static void update_row_##SFX##_##ISA(int n, int ld, T *gates, const T *bias,     \
                                              const T *h_prev, T *h_next, T *out) {       \
        T *gz = gates + ld, *gn = gates + 2 * ld;                                         \
        const T *bz = bias + ld, *bn = bias + 2 * ld;                                     \
        LN_IVDEP                                                                          \
        for (int j = 0; j < n; j++) {                                                     \
            T update = sigmoid_##SFX(gz[j] + bz[j]);                                      \
            T candidate = tanh_##SFX(gn[j] + bn[j]);                                      \
            T hidden = (1 - update) * candidate + update * h_prev[j];                     \
            h_next[j] = hidden;                                                           \
            out[j] = hidden;                                                              \
            gz[j] = update;                                                               \
            gn[j] = candidate;                                                            \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    ATTR static void update_backward_row_##SFX##_##ISA(int H, T *gates, const T *h_prev,  \
                                                       const T *dout, T *dh) {            \
        T *gz = gates + H, *gn = gates + 2 * H;                                           \
        LN_IVDEP                                                                          \
        for (int j = 0; j < H; j++) {                                                     \
            T update = gz[j], candidate = gn[j];                                          \
            T dhidden = dh[j] + dout[j];                                                  \
            T d_candidate = dhidden * (1 - update);                                       \
            T d_update = dhidden * (h_prev[j] - candidate);                               \
            dh[j] = dhidden * update;                                                     \
            gz[j] = d_update * update * (1 - update);                                     \
            gn[j] = d_candidate * (1 - candidate * candidate);                            \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    ATTR static void reset_backward_row_##SFX##_##ISA(int H, T *gates, const T *drh,      \
                                                      const T *h_prev, T *dh) {           \
        LN_IVDEP                                                                          \
        for (int j = 0; j < H; j++) {                                                     \
            T reset = gates[j];                                                           \
            /* rh = r ⊙ h_{t−1}: to r, then through its sigmoid; and to h_{t−1} */       \
            gates[j] = drh[j] * h_prev[j] * reset * (1 - reset);                          \
            dh[j] += drh[j] * reset;                                                      \
        }                                                                                 \
    }

LN_FOR_EACH_ISA(DEFINE_PASSES)

/* The public entry points: one dispatch per row (a well-predicted branch). */
#define DEFINE_ENTRIES(SFX, T)                                                            \
    void ln_gru_forward_row_##SFX(int n, int ld, T *gates, const T *bias,                 \
                                  const T *bias_hn, T *hn, const T *h_prev, T *h_next,    \
                                  T *out) {                                               \
        LN_DISPATCH(forward_row_##SFX, n, ld, gates, bias, bias_hn, hn, h_prev, h_next,   \
                    out);                                                                 \
    }                                                                                     \
    void ln_gru_backward_row_##SFX(int H, T *gates, T *hn, const T *h_prev,               \
                                   const T *dout, T *dh) {                                \
        LN_DISPATCH(backward_row_##SFX, H, gates, hn, h_prev, dout, dh);                  \
    }                                                                                     \
    void ln_gru_reset_row_##SFX(int n, T *gates, const T *bias, const T *h_prev, T *rh) { \
        LN_DISPATCH(reset_row_##SFX, n, gates, bias, h_prev, rh);                         \
    }                                                                                     \
    void ln_gru_update_row_##SFX(int n, int ld, T *gates, const T *bias,                  \
                                 const T *h_prev, T *h_next, T *out) {                    \
        LN_DISPATCH(update_row_##SFX, n, ld, gates, bias, h_prev, h_next, out);           \
    }                                                                                     \
    void ln_gru_update_backward_row_##SFX(int H, T *gates, const T *h_prev,               \
                                          const T *dout, T *dh) {                         \
        LN_DISPATCH(update_backward_row_##SFX, H, gates, h_prev, dout, dh);               \
    }                                                                                     \
    void ln_gru_reset_backward_row_##SFX(int H, T *gates, const T *drh,                   \
                                         const T *h_prev, T *dh) {                        \
        LN_DISPATCH(reset_backward_row_##SFX, H, gates, drh, h_prev, dh);                 \
    }

DEFINE_ENTRIES(f32, float)
DEFINE_ENTRIES(f64, double)
