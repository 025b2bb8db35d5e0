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

/* An elementwise pass is written once, as a macro DEFINE(SFX, T, ISA, ATTR) defining the
 * static function NAME_SFX_ISA: LN_FOR_EACH_ISA(DEFINE) compiles it for both precisions
 * at every level, and LN_DISPATCH(NAME_SFX, args...) calls the level ln_isa chose. */
#ifdef LN_X86
#define LN_FOR_EACH_ISA(DEFINE)                                                           \
    DEFINE(f32, float, generic, )                                                         \
    DEFINE(f64, double, generic, )                                                        \
    DEFINE(f32, float, avx2, LN_TARGET_AVX2)                                              \
    DEFINE(f64, double, avx2, LN_TARGET_AVX2)                                             \
    DEFINE(f32, float, avx512, LN_TARGET_AVX512)                                          \
    DEFINE(f64, double, avx512, LN_TARGET_AVX512)
#define LN_DISPATCH(NAME, ...)                                                            \
    do {                                                                                  \
        if (ln_isa == LN_ISA_AVX512) NAME##_avx512(__VA_ARGS__);                          \
        else if (ln_isa == LN_ISA_AVX2) NAME##_avx2(__VA_ARGS__);                         \
        else NAME##_generic(__VA_ARGS__);                                                 \
    } while (0)
#else
#define LN_FOR_EACH_ISA(DEFINE)                                                           \
    DEFINE(f32, float, generic, )                                                         \
    DEFINE(f64, double, generic, )
#define LN_DISPATCH(NAME, ...) NAME##_generic(__VA_ARGS__)
#endif

/* "avx512", "avx2" or "generic". */
const char *ln_isa_name(void);

#endif
