# The fused elementwise passes of an Elman RNN step (rnn_cell.c), wrapped once for the
# fused `floating` type; `relu` picks the nonlinearity (else tanh).
from cython cimport floating

cdef extern from "rnn_cell.h" nogil:
    void ln_rnn_tanh_forward_row_f32(int H, float* pre, const float* bias, float* h_next,
                                     float* out)
    void ln_rnn_tanh_forward_row_f64(int H, double* pre, const double* bias, double* h_next,
                                     double* out)
    void ln_rnn_relu_forward_row_f32(int H, float* pre, const float* bias, float* h_next,
                                     float* out)
    void ln_rnn_relu_forward_row_f64(int H, double* pre, const double* bias, double* h_next,
                                     double* out)
    void ln_rnn_tanh_backward_row_f32(int H, float* pre, const float* dout, float* dh)
    void ln_rnn_tanh_backward_row_f64(int H, double* pre, const double* dout, double* dh)
    void ln_rnn_relu_backward_row_f32(int H, float* pre, const float* dout, float* dh)
    void ln_rnn_relu_backward_row_f64(int H, double* pre, const double* dout, double* dh)


cdef inline void rnn_forward_row(bint relu, int H, floating* pre, const floating* bias,
                                 floating* h_next, floating* out) noexcept nogil:
    if floating is float:
        if relu:
            ln_rnn_relu_forward_row_f32(H, pre, bias, h_next, out)
        else:
            ln_rnn_tanh_forward_row_f32(H, pre, bias, h_next, out)
    else:
        if relu:
            ln_rnn_relu_forward_row_f64(H, pre, bias, h_next, out)
        else:
            ln_rnn_tanh_forward_row_f64(H, pre, bias, h_next, out)


cdef inline void rnn_backward_row(bint relu, int H, floating* pre, const floating* dout,
                                  floating* dh) noexcept nogil:
    if floating is float:
        if relu:
            ln_rnn_relu_backward_row_f32(H, pre, dout, dh)
        else:
            ln_rnn_tanh_backward_row_f32(H, pre, dout, dh)
    else:
        if relu:
            ln_rnn_relu_backward_row_f64(H, pre, dout, dh)
        else:
            ln_rnn_tanh_backward_row_f64(H, pre, dout, dh)
