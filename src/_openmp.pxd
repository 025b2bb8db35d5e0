# The one OpenMP shim of the kernels: every OpenMP call goes through here, with
# fallbacks so that a build without OpenMP compiles and runs on one thread.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    /* An orphaned barrier: it binds to the parallel region the caller runs in. */
    static inline void ln_omp_barrier(void) { _Pragma("omp barrier") }
    #else
    static inline int omp_get_max_threads(void) { return 1; }
    static inline int omp_get_num_threads(void) { return 1; }
    static inline int omp_get_thread_num(void) { return 0; }
    static inline void ln_omp_barrier(void) {}
    #endif
    """
    int omp_get_max_threads() noexcept nogil
    int omp_get_num_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
    void ln_omp_barrier() noexcept nogil
