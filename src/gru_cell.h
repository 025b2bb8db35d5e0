/* The fused elementwise passes of one GRU step for one batch row, forward and backward.
 *
 * The same design as lstm_cell.h: SIMD-friendly C on the shared nonlinearities of
 * simd_math.h, compiled for AVX-512, AVX2 and baseline x86-64 and chosen at load time
 * (cpu_features.h). Gates are in PyTorch's order: reset r [0, H), update z [H, 2H),
 * candidate n [2H, 3H) (PyTorch's "new" gate).
 *
 * Two GRUs (lstm_native/reference/gru.py has both written out):
 * - reset after the recurrent product (PyTorch's, ONNX linear_before_reset=1):
 *       n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),
 *   so the recurrent n rows cannot be summed with the input projection: the driver keeps
 *   W_hn h in a buffer of its own (`hn`), which the pass completes with b_hn.
 * - reset before it (Keras reset_after=False, ONNX linear_before_reset=0):
 *       n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn),
 *   which needs r before the recurrent n product: the step runs in two passes around a
 *   second small GEMM, `reset` (r and r ⊙ h) and `update` (z, n, h).
 * In both h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}.
 */
#ifndef LSTM_NATIVE_GRU_CELL_H
#define LSTM_NATIVE_GRU_CELL_H

/* Reset after. Hidden units 0..n of a row whose gate blocks are ld apart (as the LSTM's).
 * gates: pre-activations in (input projection + recurrent term for r and z, input
 * projection alone for n; biases not yet added), the activated r, z, n out. bias: r and
 * z's b_ih + b_hh, n's b_in. hn: W_hn h_{t-1} in, W_hn h_{t-1} + b_hn out (backward needs
 * it). h_next may alias h_prev; out receives h_t too. */
void ln_gru_forward_row_f32(int n, int ld, float *gates, const float *bias,
                            const float *bias_hn, float *hn, const float *h_prev,
                            float *h_next, float *out);
void ln_gru_forward_row_f64(int n, int ld, double *gates, const double *bias,
                            const double *bias_hn, double *hn, const double *h_prev,
                            double *h_next, double *out);

/* Reset after, backward. gates: the activated r, z, n in; their pre-activation
 * gradients out (the input projection's: da_r, da_z, da_n). hn: W_hn h_{t-1} + b_hn in,
 * the recurrent n rows' gradient r ⊙ da_n out. dh: gradient on h_t from step t+1 in,
 * its direct part z ⊙ dh_t out (the recurrent GEMMs add the rest). dout: gradient on
 * this step's output. */
void ln_gru_backward_row_f32(int H, float *gates, float *hn, const float *h_prev,
                             const float *dout, float *dh);
void ln_gru_backward_row_f64(int H, double *gates, double *hn, const double *h_prev,
                             const double *dout, double *dh);

/* Reset before, the first forward pass: r = σ(gates_r + bias_r) into gates, and
 * rh = r ⊙ h_{t-1}, the input of the recurrent n product (r is the first gate block: no
 * ld needed). */
void ln_gru_reset_row_f32(int n, float *gates, const float *bias, const float *h_prev,
                          float *rh);
void ln_gru_reset_row_f64(int n, double *gates, const double *bias, const double *h_prev,
                          double *rh);

/* Reset before, the second forward pass, once gates_n holds W_in x + W_hn (r ⊙ h):
 * z, n (bias: b_ih + b_hh for both) and h_t. The activated z, n go into gates. */
void ln_gru_update_row_f32(int n, int ld, float *gates, const float *bias,
                           const float *h_prev, float *h_next, float *out);
void ln_gru_update_row_f64(int n, int ld, double *gates, const double *bias,
                           const double *h_prev, double *h_next, double *out);

/* Reset before, backward, the first pass: da_z and da_n into gates (r stays for the
 * second pass); dh: dh_t in (plus dout), z ⊙ dh_t out. */
void ln_gru_update_backward_row_f32(int H, float *gates, const float *h_prev,
                                    const float *dout, float *dh);
void ln_gru_update_backward_row_f64(int H, double *gates, const double *h_prev,
                                    const double *dout, double *dh);

/* Reset before, backward, the second pass, once drh = da_n W_hn (the gradient on
 * r ⊙ h_{t-1}) is known: da_r into gates, dh += r ⊙ drh. */
void ln_gru_reset_backward_row_f32(int H, float *gates, const float *drh,
                                   const float *h_prev, float *dh);
void ln_gru_reset_backward_row_f64(int H, double *gates, const double *drh,
                                   const double *h_prev, double *dh);

#endif
