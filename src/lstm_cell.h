/* The fused elementwise pass of one LSTM step for one batch row, forward and backward.
 *
 * Why C and not Cython: at small and medium H these passes cost more than the GEMMs, and
 * almost all of it is exp and tanh. Here they are written in SIMD-friendly C on the
 * shared nonlinearities of simd_math.h, which the compiler vectorises, and each pass is
 * compiled for AVX-512, AVX2 and baseline x86-64 and chosen at load time
 * (cpu_features.h), so one wheel runs on any x86-64.
 *
 * Gates are in PyTorch's order: input [0, H), forget [H, 2H), candidate [2H, 3H),
 * output [3H, 4H).
 */
#ifndef LSTM_NATIVE_LSTM_CELL_H
#define LSTM_NATIVE_LSTM_CELL_H

/* Hidden units 0..n of a row whose gate blocks are ld apart (ld = H for a whole row; a
 * thread that owns a block of units passes pointers to its first unit and n < H).
 * gates: pre-activations in (input projection + recurrent term, bias not yet added),
 * the activated gates out (what backward needs; always written, so the loop has no
 * branch). c_next may alias c_prev. out receives h_t too. */
void ln_lstm_forward_row_f32(int n, int ld, float *gates, const float *bias,
                             const float *c_prev, float *h_next, float *c_next, float *out);
void ln_lstm_forward_row_f64(int n, int ld, double *gates, const double *bias,
                             const double *c_prev, double *h_next, double *c_next,
                             double *out);

/* gates: the activated gates in, their pre-activation gradients out. dh: gradient on
 * h_t from step t+1 in, zeroed out (the recurrent GEMM adds dh_{t-1} into it). dc: dc_t
 * in, dc_{t-1} out. dout: gradient on this step's output. */
void ln_lstm_backward_row_f32(int H, float *gates, const float *c_prev, const float *c_t,
                              const float *dout, float *dh, float *dc);
void ln_lstm_backward_row_f64(int H, double *gates, const double *c_prev, const double *c_t,
                              const double *dout, double *dh, double *dc);

/* The same step with the ONNX LSTM operator's options (Gers & Schmidhuber 2000's
 * peepholes, `clip`, `input_forget`), a pass of its own so that the plain LSTM's is
 * untouched. peephole: p_i, p_f, p_o, ld apart (zeros for none): i_t and f_t also read
 * p ⊙ c_{t-1}, o_t reads p_o ⊙ c_t. Every pre-activation (bias and peephole terms in) is
 * clipped to [-clip, clip] before its nonlinearity (clip = inf for none). input_forget:
 * f_t = 1 - i_t. gates: pre-activations in (as above); the full pre-activations out,
 * unclipped, from which backward computes the gates again and sees what was clipped
 * (an activated value cannot tell). */
void ln_lstm_variant_forward_row_f32(int n, int ld, float *gates, const float *bias,
                                     const float *peephole, float clip, int input_forget,
                                     const float *c_prev, float *h_next, float *c_next,
                                     float *out);
void ln_lstm_variant_forward_row_f64(int n, int ld, double *gates, const double *bias,
                                     const double *peephole, double clip, int input_forget,
                                     const double *c_prev, double *h_next, double *c_next,
                                     double *out);

/* gates: the pre-activations the forward pass left in, their gradients out (zero where
 * a value was clipped, and in f's block with input_forget); dh, dc as above. */
void ln_lstm_variant_backward_row_f32(int H, float *gates, const float *peephole, float clip,
                                      int input_forget, const float *c_prev,
                                      const float *c_t, const float *dout, float *dh,
                                      float *dc);
void ln_lstm_variant_backward_row_f64(int H, double *gates, const double *peephole,
                                      double clip, int input_forget, const double *c_prev,
                                      const double *c_t, const double *dout, double *dh,
                                      double *dc);

#endif
