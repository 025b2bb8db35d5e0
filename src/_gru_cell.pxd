# The fused elementwise passes of a GRU step (gru_cell.c), wrapped once for the fused
# `floating` type. See gru_cell.h for the two GRUs and what each pass reads and writes.
from cython cimport floating

cdef extern from "gru_cell.h" nogil:
    void ln_gru_forward_row_f32(int n, int ld, float* gates, const float* bias,
                                const float* bias_hn, float* hn, const float* h_prev,
                                float* h_next, float* out)
    void ln_gru_forward_row_f64(int n, int ld, double* gates, const double* bias,
                                const double* bias_hn, double* hn, const double* h_prev,
                                double* h_next, double* out)
    void ln_gru_backward_row_f32(int H, float* gates, float* hn, const float* h_prev,
                                 const float* dout, float* dh)
    void ln_gru_backward_row_f64(int H, double* gates, double* hn, const double* h_prev,
                                 const double* dout, double* dh)
    void ln_gru_reset_row_f32(int n, float* gates, const float* bias, const float* h_prev,
                              float* rh)
    void ln_gru_reset_row_f64(int n, double* gates, const double* bias, const double* h_prev,
                              double* rh)
    void ln_gru_update_row_f32(int n, int ld, float* gates, const float* bias,
                               const float* h_prev, float* h_next, float* out)
    void ln_gru_update_row_f64(int n, int ld, double* gates, const double* bias,
                               const double* h_prev, double* h_next, double* out)
    void ln_gru_update_backward_row_f32(int H, float* gates, const float* h_prev,
                                        const float* dout, float* dh)
    void ln_gru_update_backward_row_f64(int H, double* gates, const double* h_prev,
                                        const double* dout, double* dh)
    void ln_gru_reset_backward_row_f32(int H, float* gates, const float* drh,
                                       const float* h_prev, float* dh)
    void ln_gru_reset_backward_row_f64(int H, double* gates, const double* drh,
                                       const double* h_prev, double* dh)


cdef inline void gru_forward_row(int n, int ld, floating* gates, const floating* bias,
                                 const floating* bias_hn, floating* hn, const floating* h_prev,
                                 floating* h_next, floating* out) noexcept nogil:
    if floating is float:
        ln_gru_forward_row_f32(n, ld, gates, bias, bias_hn, hn, h_prev, h_next, out)
    else:
        ln_gru_forward_row_f64(n, ld, gates, bias, bias_hn, hn, h_prev, h_next, out)


cdef inline void gru_backward_row(int H, floating* gates, floating* hn, const floating* h_prev,
                                  const floating* dout, floating* dh) noexcept nogil:
    if floating is float:
        ln_gru_backward_row_f32(H, gates, hn, h_prev, dout, dh)
    else:
        ln_gru_backward_row_f64(H, gates, hn, h_prev, dout, dh)


cdef inline void gru_reset_row(int n, floating* gates, const floating* bias,
                               const floating* h_prev, floating* rh) noexcept nogil:
    if floating is float:
        ln_gru_reset_row_f32(n, gates, bias, h_prev, rh)
    else:
        ln_gru_reset_row_f64(n, gates, bias, h_prev, rh)


cdef inline void gru_update_row(int n, int ld, floating* gates, const floating* bias,
                                const floating* h_prev, floating* h_next,
                                floating* out) noexcept nogil:
    if floating is float:
        ln_gru_update_row_f32(n, ld, gates, bias, h_prev, h_next, out)
    else:
        ln_gru_update_row_f64(n, ld, gates, bias, h_prev, h_next, out)


cdef inline void gru_update_backward_row(int H, floating* gates, const floating* h_prev,
                                         const floating* dout, floating* dh) noexcept nogil:
    if floating is float:
        ln_gru_update_backward_row_f32(H, gates, h_prev, dout, dh)
    else:
        ln_gru_update_backward_row_f64(H, gates, h_prev, dout, dh)


cdef inline void gru_reset_backward_row(int H, floating* gates, const floating* drh,
                                        const floating* h_prev, floating* dh) noexcept nogil:
    if floating is float:
        ln_gru_reset_backward_row_f32(H, gates, drh, h_prev, dh)
    else:
        ln_gru_reset_backward_row_f64(H, gates, drh, h_prev, dh)
