"""Test-only entry points to the kernels' two GEMMs, on NumPy arrays: the BLAS wrapper of
_blas.pxd and the packed GEMM of _gemm_packed.pxd, for tests/test_gemm.py to compare with
numpy's matmul (as scikit-learn's `_gemm_memview` does for its test_cython_blas.py).

Why a module of its own rather than hooks in _recurrent: the models import _recurrent, and
these functions serve the tests alone. Both wrappers are `cdef inline` in their .pxd, and
this module is built from the same gemm_packed.c and cpu_features.c, so it runs the code
the recurrent driver inlines, at the SIMD level LSTM_NATIVE_ISA asks for.

The functions check only what keeps a wrong call from reading or writing out of bounds:
shapes that agree, adjacent columns where a matrix goes by pointer and leading dimension.
"""
import numpy as np

from cython cimport floating
from libc.stdlib cimport malloc, free

from _blas cimport gemm
from _cpu_features cimport ln_isa_name
from _gemm_packed cimport (packed_size, pack, gemm_packed, gemm_packed2, packed_columns,
                           tile_columns)


def simd_level():
    """The SIMD level this module's packed GEMM runs: 'avx512', 'avx2' or 'generic'."""
    return ln_isa_name().decode()


def packed_tile_columns(dtype):
    """`tile_columns` of the packed GEMM in float32 or float64."""
    cdef float f32_tag
    cdef double f64_tag
    if np.dtype(dtype) == np.float32:
        return tile_columns(&f32_tag)
    if np.dtype(dtype) == np.float64:
        return tile_columns(&f64_tag)
    raise ValueError(f"no packed GEMM in {np.dtype(dtype)}")


cdef int _leading_dim(const floating[:, :] a, str name) except -1:
    """Elements from one row of `a` to the next, for a row-major matrix given by pointer
    and leading dimension: its columns must be adjacent."""
    cdef Py_ssize_t itemsize = sizeof(floating)
    cdef Py_ssize_t ld = a.shape[1]
    if a.shape[1] > 1 and a.strides[1] != itemsize:
        raise ValueError(f"{name} must have adjacent columns")
    if a.shape[0] > 1:
        if a.strides[0] % itemsize != 0 or a.strides[0] < a.shape[1] * itemsize:
            raise ValueError(f"{name}'s rows must run forward in memory, none overlapping")
        ld = a.strides[0] // itemsize
    return <int> max(ld, 1)


cdef void _check_shape(str name, tuple got, tuple want) except *:
    if got != want:
        raise ValueError(f"{name} has shape {got}, needs {want}")


def blas_gemm(bint trans_a, bint trans_b, double alpha, const floating[:, :] a,
              const floating[:, :] b, double beta, floating[:, :] c):
    """c = alpha·op(a)·op(b) + beta·c by _blas.gemm, op(x) = xᵀ when trans_x. Each matrix
    is row-major with adjacent columns; its rows may be further apart (a leading dimension
    larger than its row), as in a slice of a wider array."""
    cdef int m = <int> c.shape[0], n = <int> c.shape[1]
    cdef int k = <int> (a.shape[0] if trans_a else a.shape[1])
    _check_shape("a", (a.shape[0], a.shape[1]), (k, m) if trans_a else (m, k))
    _check_shape("b", (b.shape[0], b.shape[1]), (n, k) if trans_b else (k, n))
    cdef int lda = _leading_dim(a, "a"), ldb = _leading_dim(b, "b")
    cdef int ldc = _leading_dim(c, "c")
    with nogil:
        gemm(trans_a, trans_b, m, n, k, <floating> alpha, &a[0, 0], lda, &b[0, 0], ldb,
             <floating> beta, &c[0, 0], ldc)


def packed_gemm(const floating[:, :] a, const floating[:, :] b, floating[:, :] c,
                Py_ssize_t col0=0, col1=None):
    """c[:, col0:col1] += a · b[:, col0:col1] by _gemm_packed: all of b (k × n, any
    strides, negative too) is packed, then its packed columns col0.. are multiplied, as the
    hidden-unit split of the recurrence does. col0 must be a multiple of
    `packed_tile_columns`; col1 defaults to n. a and c are row-major with adjacent columns."""
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], n = b.shape[1]
    cdef Py_ssize_t end = n if col1 is None else col1
    cdef Py_ssize_t itemsize = sizeof(floating)
    _check_shape("b", (b.shape[0], b.shape[1]), (k, n))
    _check_shape("c", (c.shape[0], c.shape[1]), (m, n))
    if not (0 <= col0 <= end <= n) or col0 % tile_columns(&b[0, 0]) != 0:
        raise ValueError(f"columns {col0}..{end} of {n}: col0 must be a multiple of "
                         f"{tile_columns(&b[0, 0])}, and col0 <= col1 <= n")
    if b.strides[0] % itemsize != 0 or b.strides[1] % itemsize != 0:
        raise ValueError("b's strides must be whole elements")
    cdef int lda = _leading_dim(a, "a"), ldc = _leading_dim(c, "c")
    # malloc(0) may give NULL: room for at least one element.
    cdef size_t n_packed = packed_size(<floating*> &b[0, 0], <int> k, <int> n)
    cdef floating* bp = <floating*> malloc(max(n_packed, 1) * sizeof(floating))
    if bp == NULL:
        raise MemoryError()
    try:
        with nogil:
            pack(<int> k, <int> n, &b[0, 0], b.strides[0] // itemsize,
                 b.strides[1] // itemsize, bp)
            gemm_packed(<int> m, <int> (end - col0), <int> k, &a[0, 0], lda,
                        packed_columns(bp, <int> k, <int> col0), &c[0, 0] + col0, ldc)
    finally:
        free(bp)


def packed_gemm2(const floating[:, :] a1, const floating[:, :] b1, const floating[:, :] a2,
                 const floating[:, :] b2, floating[:, :] c):
    """c = a1 · b1 + a2 · b2 by _gemm_packed's two-product GEMM (c written, not read): b1
    (k1 × n) and b2 (k2 × n) are packed whole; a1, a2 and c are row-major with adjacent
    columns."""
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1], k1 = a1.shape[1], k2 = a2.shape[1]
    cdef Py_ssize_t itemsize = sizeof(floating)
    _check_shape("a1", (a1.shape[0], a1.shape[1]), (m, k1))
    _check_shape("a2", (a2.shape[0], a2.shape[1]), (m, k2))
    _check_shape("b1", (b1.shape[0], b1.shape[1]), (k1, n))
    _check_shape("b2", (b2.shape[0], b2.shape[1]), (k2, n))
    if (b1.strides[0] % itemsize != 0 or b1.strides[1] % itemsize != 0
            or b2.strides[0] % itemsize != 0 or b2.strides[1] % itemsize != 0):
        raise ValueError("b1's and b2's strides must be whole elements")
    cdef int lda1 = _leading_dim(a1, "a1"), lda2 = _leading_dim(a2, "a2")
    cdef int ldc = _leading_dim(c, "c")
    cdef floating* bp1 = <floating*> malloc(
        max(packed_size(<floating*> &c[0, 0], <int> k1, <int> n), 1) * sizeof(floating))
    cdef floating* bp2 = <floating*> malloc(
        max(packed_size(<floating*> &c[0, 0], <int> k2, <int> n), 1) * sizeof(floating))
    try:
        if bp1 == NULL or bp2 == NULL:
            raise MemoryError()
        with nogil:
            pack(<int> k1, <int> n, &b1[0, 0], b1.strides[0] // itemsize,
                 b1.strides[1] // itemsize, bp1)
            pack(<int> k2, <int> n, &b2[0, 0], b2.strides[0] // itemsize,
                 b2.strides[1] // itemsize, bp2)
            gemm_packed2(<int> m, <int> n, <int> k1, &a1[0, 0], lda1, bp1, <int> k2,
                         &a2[0, 0], lda2, bp2, &c[0, 0], ldc)
    finally:
        free(bp1)
        free(bp2)
