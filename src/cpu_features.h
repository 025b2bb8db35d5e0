/* Which SIMD level the kernels use, decided once when the library loads.
 *
 * Every hand-vectorised kernel is compiled for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 +
 * FMA) and the baseline, and each call site dispatches on ln_isa. The environment
 * variable LSTM_NATIVE_ISA=generic|avx2|avx512 asks for a lower level than the CPU
 * offers, so the tests can run every path on one machine.
 */
#ifndef LSTM_NATIVE_CPU_FEATURES_H
#define LSTM_NATIVE_CPU_FEATURES_H

enum { LN_ISA_GENERIC = 0, LN_ISA_AVX2 = 1, LN_ISA_AVX512 = 2 };

#if defined(__x86_64__) && defined(__GNUC__)
#define LN_X86 1
#define LN_TARGET_AVX512 __attribute__((target("arch=x86-64-v4")))
#define LN_TARGET_AVX2 __attribute__((target("arch=x86-64-v3")))
#endif

extern int ln_isa;

/* "avx512", "avx2" or "generic". */
const char *ln_isa_name(void);

#endif
