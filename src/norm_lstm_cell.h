/* The fused passes of one step of the layer-normalised LSTM (Ba, Kiros & Hinton 2016,
 * eq. 20-22) for one batch row, forward and backward:
 *
 *     a = LN(W_ih x_t; γ_x, β_x) + LN(W_hh h_{t-1}; γ_h, β_h) + b     (4H, gates i f g o)
 *     c_t = σ(a_f) ⊙ c_{t-1} + σ(a_i) ⊙ tanh(a_g)
 *     h_t = σ(a_o) ⊙ tanh(LN(c_t; γ_c, β_c))
 *
 * where LN(v; γ, β) = γ ⊙ (v − mean(v)) / sqrt(var(v) + 1e-5) + β over the whole vector
 * (all 4H pre-activations of a projection, the H values of c_t). The state c_t is not
 * normalised; only what the output tanh reads is.
 *
 * The means and variances are sums over a whole row: each pass takes all H units of its
 * row (the hidden-unit thread split cannot run it). The sums use LN_LANES independent
 * partial sums added in a fixed order, so that the loops vectorise without reordering
 * any sum, and the results are the same at every SIMD level and thread count.
 *
 * Per row, `norm` holds what backward needs, 9H + 3 values: x̂_x (4H, the normalised
 * input projection), the recurrent projection (4H: the step GEMM's W_hh h_{t-1} in,
 * x̂_h out), x̂_c (H), and the three 1/sqrt(var + eps). `ln` holds the parameters, 18H
 * values: γ_x, β_x, γ_h, β_h (4H each), γ_c, β_c (H each).
 */
#ifndef LSTM_NATIVE_NORM_LSTM_CELL_H
#define LSTM_NATIVE_NORM_LSTM_CELL_H

/* The values of `norm` per row, and where they start. */
#define LN_NORM_WIDTH(H) (9 * (H) + 3)

/* gates: W_ih x_t in, the activated gates out. bias: b_ih + b_hh. c_next may alias
 * c_prev, out and h_next may alias each other. */
void ln_norm_lstm_forward_row_f32(int H, float *gates, float *norm, const float *bias,
                                  const float *ln, const float *c_prev, float *h_next,
                                  float *c_next, float *out);
void ln_norm_lstm_forward_row_f64(int H, double *gates, double *norm, const double *bias,
                                  const double *ln, const double *c_prev, double *h_next,
                                  double *c_next, double *out);

/* gates: the activated gates in, the gradient on W_ih x_t out; norm: as forward left it
 * in, its recurrent part the gradient on W_hh h_{t-1} out. dh: gradient on h_t from step
 * t+1 in, zeroed out (the recurrent GEMM adds dh_{t-1} into it); dc: dc_t in, dc_{t-1}
 * out; dout: gradient on this step's output. acc: the row's sums over its steps, 14H
 * values added into (Σ da, Σ da ⊙ x̂_x, Σ da ⊙ x̂_h over the 4H pre-activations a,
 * Σ dy_c, Σ dy_c ⊙ x̂_c over the H normalised cell values y_c), then 4H of scratch. */
#define LN_NORM_ACC_WIDTH(H) (18 * (H))
void ln_norm_lstm_backward_row_f32(int H, float *gates, float *norm, const float *ln,
                                   const float *c_prev, const float *dout, float *dh,
                                   float *dc, float *acc);
void ln_norm_lstm_backward_row_f64(int H, double *gates, double *norm, const double *ln,
                                   const double *c_prev, const double *dout, double *dh,
                                   double *dc, double *acc);

#endif
