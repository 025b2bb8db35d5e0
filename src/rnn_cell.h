/* The fused elementwise pass of one Elman RNN step for one batch row, forward and
 * backward, with tanh or ReLU as the nonlinearity.
 *
 * The same design as lstm_cell.h, with one gate instead of four and no cell state:
 * written in SIMD-friendly C on the shared nonlinearities of simd_math.h, compiled for
 * AVX-512, AVX2 and baseline x86-64 and chosen at load time (cpu_features.h).
 */
#ifndef LSTM_NATIVE_RNN_CELL_H
#define LSTM_NATIVE_RNN_CELL_H

/* hidden = tanh(pre + bias) or relu(pre + bias).
 * pre: the pre-activation in (input projection + recurrent term, bias not yet added),
 * the activated hidden state out (what backward needs; always written, so the loop has
 * no branch). h_next and out receive it too. */
void ln_rnn_tanh_forward_row_f32(int H, float *pre, const float *bias, float *h_next,
                                 float *out);
void ln_rnn_tanh_forward_row_f64(int H, double *pre, const double *bias, double *h_next,
                                 double *out);
void ln_rnn_relu_forward_row_f32(int H, float *pre, const float *bias, float *h_next,
                                 float *out);
void ln_rnn_relu_forward_row_f64(int H, double *pre, const double *bias, double *h_next,
                                 double *out);

/* dpre = (dh + dout) ⊙ (1 − hidden²) for tanh, (dh + dout) ⊙ (hidden > 0) for ReLU.
 * pre: the activated hidden state in, the pre-activation gradient out. dh: gradient on
 * h_t from step t+1 in, zeroed out (the recurrent GEMM adds dh_{t-1} into it). dout:
 * gradient on this step's output. */
void ln_rnn_tanh_backward_row_f32(int H, float *pre, const float *dout, float *dh);
void ln_rnn_tanh_backward_row_f64(int H, double *pre, const double *dout, double *dh);
void ln_rnn_relu_backward_row_f32(int H, float *pre, const float *dout, float *dh);
void ln_rnn_relu_backward_row_f64(int H, double *pre, const double *dout, double *dh);

#endif
