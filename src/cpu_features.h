/* Which SIMD level the kernels use, decided once when the library loads.
 *
 * Every hand-vectorised float kernel is compiled for x86-64-v4 (AVX-512), x86-64-v3
 * (AVX2 + FMA) and the baseline, and each call site dispatches on ln_isa. The quantized
 * GEMMs (quant_gemm.h) have kernels of their own for the CPU's int8 and bfloat16 dot
 * products, on ln_q8_isa and ln_bf16_isa. One ordered list of levels sets all three:
 *
 *   level        float    int8                       bfloat16
 *   generic      generic  portable                   portable
 *   avx2         avx2     AVX2 (vpmaddwd)            AVX2 (FMA)
 *   avx2-vnni    avx2     256-bit VNNI               AVX2 (FMA)
 *   avx512       avx512   AVX2 (vpmaddwd)            AVX2 (FMA)
 *   avx512-vnni  avx512   512-bit VNNI               AVX2 (FMA)
 *   avx512-bf16  avx512   512-bit VNNI               AVX512_BF16
 *
 * The library takes the highest level the CPU offers; the environment variable
 * LSTM_NATIVE_ISA=<level> asks for at most that one (the highest the CPU offers at or
 * below it), so the tests can run every path on one machine. avx2-vnni runs on AVX-VNNI,
 * or on AVX512-VNNI's 256-bit form (the same operation) on a CPU that has only that.
 */
#ifndef LSTM_NATIVE_CPU_FEATURES_H
#define LSTM_NATIVE_CPU_FEATURES_H

enum { LN_ISA_GENERIC = 0, LN_ISA_AVX2 = 1, LN_ISA_AVX512 = 2 };
/* The int8 kernels: portable C, 256-bit VNNI (VEX: AVX-VNNI; EVEX: AVX512-VNNI + VL),
 * 512-bit VNNI, AVX2's vpmaddwd. The bfloat16 kernels: portable C, AVX512_BF16, AVX2's
 * FMA. */
enum { LN_Q8_PORTABLE = 0, LN_Q8_VNNI256_VEX = 1, LN_Q8_VNNI256_EVEX = 2, LN_Q8_VNNI512 = 3,
       LN_Q8_AVX2 = 4 };
enum { LN_BF16_PORTABLE = 0, LN_BF16_AVX512 = 1, LN_BF16_AVX2 = 2 };

#if defined(__x86_64__) && defined(__GNUC__)
#define LN_X86 1
#define LN_TARGET_AVX512 __attribute__((target("arch=x86-64-v4")))
#define LN_TARGET_AVX2 __attribute__((target("arch=x86-64-v3")))
#define LN_TARGET_AVX512_VNNI __attribute__((target("arch=x86-64-v4,avx512vnni")))
#define LN_TARGET_AVX512_BF16 __attribute__((target("arch=x86-64-v4,avx512vnni,avx512bf16")))
#define LN_TARGET_AVX_VNNI __attribute__((target("arch=x86-64-v3,avxvnni")))
#endif

extern int ln_isa;
extern int ln_q8_isa;
extern int ln_bf16_isa;

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

/* The float kernels' level: "avx512", "avx2" or "generic". */
const char *ln_isa_name(void);
/* The level of the list above the library runs, e.g. "avx512-bf16". */
const char *ln_level_name(void);

#endif
