# The fused elementwise passes of an LSTM step (lstm_cell.c), wrapped once for the
# fused `floating` type.
from cython cimport floating

cdef extern from "lstm_cell.h" nogil:
    void ln_lstm_forward_row_f32(int n, int ld, float* gates, const float* bias,
                                 const float* c_prev, float* h_next, float* c_next, float* out)
    void ln_lstm_forward_row_f64(int n, int ld, double* gates, const double* bias,
                                 const double* c_prev, double* h_next, double* c_next,
                                 double* out)
    void ln_lstm_backward_row_f32(int H, float* gates, const float* c_prev, const float* c_t,
                                  const float* dout, float* dh, float* dc)
    void ln_lstm_backward_row_f64(int H, double* gates, const double* c_prev, const double* c_t,
                                  const double* dout, double* dh, double* dc)
    void ln_lstm_variant_forward_row_f32(int n, int ld, float* gates, const float* bias,
                                         const float* peephole, float clip, int input_forget,
                                         const float* c_prev, float* h_next, float* c_next,
                                         float* out)
    void ln_lstm_variant_forward_row_f64(int n, int ld, double* gates, const double* bias,
                                         const double* peephole, double clip,
                                         int input_forget, const double* c_prev,
                                         double* h_next, double* c_next, double* out)
    void ln_lstm_variant_backward_row_f32(int H, float* gates, const float* peephole,
                                          float clip, int input_forget, const float* c_prev,
                                          const float* c_t, const float* dout, float* dh,
                                          float* dc)
    void ln_lstm_variant_backward_row_f64(int H, double* gates, const double* peephole,
                                          double clip, int input_forget,
                                          const double* c_prev, const double* c_t,
                                          const double* dout, double* dh, double* dc)


cdef inline void lstm_forward_row(int n, int ld, floating* gates, const floating* bias,
                                  const floating* c_prev, floating* h_next, floating* c_next,
                                  floating* out) noexcept nogil:
    if floating is float:
        ln_lstm_forward_row_f32(n, ld, gates, bias, c_prev, h_next, c_next, out)
    else:
        ln_lstm_forward_row_f64(n, ld, gates, bias, c_prev, h_next, c_next, out)


cdef inline void lstm_backward_row(int H, floating* gates, const floating* c_prev,
                                   const floating* c_t, const floating* dout, floating* dh,
                                   floating* dc) noexcept nogil:
    if floating is float:
        ln_lstm_backward_row_f32(H, gates, c_prev, c_t, dout, dh, dc)
    else:
        ln_lstm_backward_row_f64(H, gates, c_prev, c_t, dout, dh, dc)



cdef inline void lstm_variant_forward_row(int n, int ld, floating* gates, const floating* bias,
                                          const floating* peephole, floating clip,
                                          bint input_forget, const floating* c_prev,
                                          floating* h_next, floating* c_next,
                                          floating* out) noexcept nogil:
    if floating is float:
        ln_lstm_variant_forward_row_f32(n, ld, gates, bias, peephole, clip, input_forget,
                                        c_prev, h_next, c_next, out)
    else:
        ln_lstm_variant_forward_row_f64(n, ld, gates, bias, peephole, clip, input_forget,
                                        c_prev, h_next, c_next, out)


cdef inline void lstm_variant_backward_row(int H, floating* gates, const floating* peephole,
                                           floating clip, bint input_forget,
                                           const floating* c_prev, const floating* c_t,
                                           const floating* dout, floating* dh,
                                           floating* dc) noexcept nogil:
    if floating is float:
        ln_lstm_variant_backward_row_f32(H, gates, peephole, clip, input_forget, c_prev, c_t,
                                         dout, dh, dc)
    else:
        ln_lstm_variant_backward_row_f64(H, gates, peephole, clip, input_forget, c_prev, c_t,
                                         dout, dh, dc)
