# The one BLAS wrapper of the kernels: GEMM on row-major matrices, written once
# for the fused `floating` type. BLAS comes from scipy.linalg.cython_blas, so the
# wheel links no BLAS of its own and uses the one SciPy ships.
#
# BLAS is column-major and a row-major matrix is its own transpose read
# column-major, so row-major C = op(A)·op(B) is computed as the column-major
# Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands (and m with n) in this one place.
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil:
    """Row-major C (m×n) = alpha·op(A)·op(B) + beta·C; op(A) is m×k, op(B) is k×n."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if m <= 0 or n <= 0:
        return
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*> b, &ldb, <float*> a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*> b, &ldb, <double*> a, &lda,
              &beta, c, &ldc)
