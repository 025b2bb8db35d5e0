"""Whether the kernels were built with OpenMP, and how many threads it offers.

The OpenMP calls go through the shim `_openmp.pxd`, as in every kernel.
"""
from _openmp cimport omp_get_max_threads

cdef extern from *:
    """
    #ifdef _OPENMP
    #define LSTM_NATIVE_OPENMP 1
    #else
    #define LSTM_NATIVE_OPENMP 0
    #endif
    """
    bint LSTM_NATIVE_OPENMP


def openmp_enabled():
    """True when the kernels were compiled with OpenMP (else they run on one thread)."""
    return bool(LSTM_NATIVE_OPENMP)


def max_threads():
    """OpenMP's default thread count (OMP_NUM_THREADS, else the cores); 1 without OpenMP."""
    return omp_get_max_threads()
