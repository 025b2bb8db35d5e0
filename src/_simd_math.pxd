# The shared nonlinearities of the row passes (simd_math.h), elementwise over arrays, for
# the tests; wrapped once for the fused `floating` type.
from cython cimport floating

cdef extern from "simd_math.h" nogil:
    void ln_vexp_f32(int n, const float* x, float* y)
    void ln_vexp_f64(int n, const double* x, double* y)
    void ln_vsigmoid_f32(int n, const float* x, float* y)
    void ln_vsigmoid_f64(int n, const double* x, double* y)
    void ln_vtanh_f32(int n, const float* x, float* y)
    void ln_vtanh_f64(int n, const double* x, double* y)


cdef inline void vexp(int n, const floating* x, floating* y) noexcept nogil:
    if floating is float:
        ln_vexp_f32(n, x, y)
    else:
        ln_vexp_f64(n, x, y)


cdef inline void vsigmoid(int n, const floating* x, floating* y) noexcept nogil:
    if floating is float:
        ln_vsigmoid_f32(n, x, y)
    else:
        ln_vsigmoid_f64(n, x, y)


cdef inline void vtanh(int n, const floating* x, floating* y) noexcept nogil:
    if floating is float:
        ln_vtanh_f32(n, x, y)
    else:
        ln_vtanh_f64(n, x, y)
