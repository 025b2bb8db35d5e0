/* The one place the SIMD level is chosen: see cpu_features.h. */
#include "cpu_features.h"

#include <stdlib.h>
#include <string.h>

int ln_isa = LN_ISA_GENERIC;

__attribute__((constructor)) static void ln_choose_isa(void) {
#ifdef LN_X86
    __builtin_cpu_init();
    int best = LN_ISA_GENERIC;
    if (__builtin_cpu_supports("x86-64-v4"))
        best = LN_ISA_AVX512;
    else if (__builtin_cpu_supports("x86-64-v3"))
        best = LN_ISA_AVX2;
    int asked = best;
    const char *want = getenv("LSTM_NATIVE_ISA");
    if (want && strcmp(want, "generic") == 0) asked = LN_ISA_GENERIC;
    if (want && strcmp(want, "avx2") == 0) asked = LN_ISA_AVX2;
    ln_isa = asked < best ? asked : best;
#endif
}

const char *ln_isa_name(void) {
    return ln_isa == LN_ISA_AVX512 ? "avx512" : ln_isa == LN_ISA_AVX2 ? "avx2" : "generic";
}
