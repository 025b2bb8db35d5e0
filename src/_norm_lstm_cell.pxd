# The fused passes of the layer-normalised LSTM (norm_lstm_cell.c), wrapped once for the
# fused `floating` type.
from cython cimport floating

cdef extern from "norm_lstm_cell.h" nogil:
    int LN_NORM_WIDTH(int H)
    int LN_NORM_ACC_WIDTH(int H)
    void ln_norm_lstm_forward_row_f32(int H, float* gates, float* norm, const float* bias,
                                      const float* ln, const float* c_prev, float* h_next,
                                      float* c_next, float* out)
    void ln_norm_lstm_forward_row_f64(int H, double* gates, double* norm, const double* bias,
                                      const double* ln, const double* c_prev, double* h_next,
                                      double* c_next, double* out)
    void ln_norm_lstm_backward_row_f32(int H, float* gates, float* norm, const float* ln,
                                       const float* c_prev, const float* dout, float* dh,
                                       float* dc, float* acc)
    void ln_norm_lstm_backward_row_f64(int H, double* gates, double* norm, const double* ln,
                                       const double* c_prev, const double* dout, double* dh,
                                       double* dc, double* acc)


cdef inline void norm_lstm_forward_row(int H, floating* gates, floating* norm,
                                       const floating* bias, const floating* ln,
                                       const floating* c_prev, floating* h_next,
                                       floating* c_next, floating* out) noexcept nogil:
    if floating is float:
        ln_norm_lstm_forward_row_f32(H, gates, norm, bias, ln, c_prev, h_next, c_next, out)
    else:
        ln_norm_lstm_forward_row_f64(H, gates, norm, bias, ln, c_prev, h_next, c_next, out)


cdef inline void norm_lstm_backward_row(int H, floating* gates, floating* norm,
                                        const floating* ln, const floating* c_prev,
                                        const floating* dout, floating* dh, floating* dc,
                                        floating* acc) noexcept nogil:
    if floating is float:
        ln_norm_lstm_backward_row_f32(H, gates, norm, ln, c_prev, dout, dh, dc, acc)
    else:
        ln_norm_lstm_backward_row_f64(H, gates, norm, ln, c_prev, dout, dh, dc, acc)
