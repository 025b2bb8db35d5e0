# The one OpenMP shim of the kernels: every OpenMP call goes through here, with
# fallbacks so that a build without OpenMP compiles and runs on one thread.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #else
    static inline int omp_get_max_threads(void) { return 1; }
    static inline int omp_get_thread_num(void) { return 0; }
    #endif
    """
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
