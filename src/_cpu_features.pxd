cdef extern from "cpu_features.h" nogil:
    const char* ln_isa_name()
