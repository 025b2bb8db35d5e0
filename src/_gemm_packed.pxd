# The per-step GEMM on pre-packed weights (gemm_packed.c), wrapped once for the fused
# `floating` type like the BLAS wrapper in _blas.pxd.
from cython cimport floating

cdef extern from "gemm_packed.h" nogil:
    int LN_PACKED_ALIGN
    int LN_TILE_COLS_F32
    int LN_TILE_COLS_F64
    size_t ln_packed_panel_offset_f32(int k, int col)
    size_t ln_packed_panel_offset_f64(int k, int col)
    size_t ln_packed_size_f32(int k, int n)
    size_t ln_packed_size_f64(int k, int n)
    void ln_pack_f32(int k, int n, const float* b, Py_ssize_t s_k, Py_ssize_t s_n, float* bp)
    void ln_pack_f64(int k, int n, const double* b, Py_ssize_t s_k, Py_ssize_t s_n, double* bp)
    void ln_gemm_packed_f32(int m, int n, int k, const float* a, int lda, const float* bp,
                            float* c, int ldc)
    void ln_gemm_packed_f64(int m, int n, int k, const double* a, int lda, const double* bp,
                            double* c, int ldc)
    void ln_gemm_packed2_f32(int m, int n, int k1, const float* a1, int lda1, const float* bp1,
                             int k2, const float* a2, int lda2, const float* bp2, float* c,
                             int ldc)
    void ln_gemm_packed2_f64(int m, int n, int k1, const double* a1, int lda1,
                             const double* bp1, int k2, const double* a2, int lda2,
                             const double* bp2, double* c, int ldc)


cdef inline size_t packed_size(floating* tag, int k, int n) noexcept nogil:
    """Elements of the packed form of a k × n matrix (`tag` only selects the type)."""
    if floating is float:
        return ln_packed_size_f32(k, n)
    else:
        return ln_packed_size_f64(k, n)


cdef inline int tile_columns(const floating* tag) noexcept nogil:
    """The widest tile of the kernels, in columns (`tag` only selects the type): a block
    of columns that starts at a multiple of it and is a multiple of it long can be
    computed on its own, its tiles reading no column outside it."""
    if floating is float:
        return LN_TILE_COLS_F32
    else:
        return LN_TILE_COLS_F64


cdef inline const floating* packed_columns(const floating* bp, int k, int col) noexcept nogil:
    """The packed form of columns col.. of the k-row matrix packed in bp, for `gemm_packed`:
    `col` must be a multiple of `tile_columns`."""
    if floating is float:
        return bp + ln_packed_panel_offset_f32(k, col)
    else:
        return bp + ln_packed_panel_offset_f64(k, col)


cdef inline void pack(int k, int n, const floating* b, Py_ssize_t s_k, Py_ssize_t s_n,
                      floating* bp) noexcept nogil:
    """Pack B (k × n), element (kk, j) at b[kk·s_k + j·s_n]."""
    if floating is float:
        ln_pack_f32(k, n, b, s_k, s_n, bp)
    else:
        ln_pack_f64(k, n, b, s_k, s_n, bp)


cdef inline void gemm_packed(int m, int n, int k, const floating* a, int lda,
                             const floating* bp, floating* c, int ldc) noexcept nogil:
    """Row-major C (m × n) += A (m × k) · B, B packed by `pack`."""
    if floating is float:
        ln_gemm_packed_f32(m, n, k, a, lda, bp, c, ldc)
    else:
        ln_gemm_packed_f64(m, n, k, a, lda, bp, c, ldc)


cdef inline void gemm_packed2(int m, int n, int k1, const floating* a1, int lda1,
                              const floating* bp1, int k2, const floating* a2, int lda2,
                              const floating* bp2, floating* c, int ldc) noexcept nogil:
    """Row-major C (m × n) = A1 (m × k1) · B1 + A2 (m × k2) · B2, B1 and B2 packed by
    `pack`: C is written, not read."""
    if floating is float:
        ln_gemm_packed2_f32(m, n, k1, a1, lda1, bp1, k2, a2, lda2, bp2, c, ldc)
    else:
        ln_gemm_packed2_f64(m, n, k1, a1, lda1, bp1, k2, a2, lda2, bp2, c, ldc)
