/* The shared nonlinearities on their own, for the tests: see simd_math.h. */
#include "simd_math.h"

#include "cpu_features.h"

#define DEFINE_VECTOR_FUNCTIONS(SFX, T, ISA, ATTR)                                        \
    ATTR static void vexp_##SFX##_##ISA(int n, const T *x, T *y) {                        \
        for (int j = 0; j < n; j++) y[j] = exp_##SFX(x[j]);                               \
    }                                                                                     \
    ATTR static void vsigmoid_##SFX##_##ISA(int n, const T *x, T *y) {                    \
        for (int j = 0; j < n; j++) y[j] = sigmoid_##SFX(x[j]);                           \
    }                                                                                     \
    ATTR static void vtanh_##SFX##_##ISA(int n, const T *x, T *y) {                       \
        for (int j = 0; j < n; j++) y[j] = tanh_##SFX(x[j]);                              \
    }

LN_FOR_EACH_ISA(DEFINE_VECTOR_FUNCTIONS)

#define DEFINE_ENTRIES(SFX, T)                                                            \
    void ln_vexp_##SFX(int n, const T *x, T *y) { LN_DISPATCH(vexp_##SFX, n, x, y); }     \
    void ln_vsigmoid_##SFX(int n, const T *x, T *y) { LN_DISPATCH(vsigmoid_##SFX, n, x, y); } \
    void ln_vtanh_##SFX(int n, const T *x, T *y) { LN_DISPATCH(vtanh_##SFX, n, x, y); }

DEFINE_ENTRIES(f32, float)
DEFINE_ENTRIES(f64, double)
