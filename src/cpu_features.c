/* The one place the SIMD level is chosen: see cpu_features.h. */
#include "cpu_features.h"

#include <stdlib.h>
#include <string.h>

int ln_isa = LN_ISA_GENERIC;
int ln_q8_isa = LN_Q8_PORTABLE;
int ln_bf16_isa = LN_BF16_PORTABLE;

/* The levels of cpu_features.h, in order. */
enum { LVL_GENERIC, LVL_AVX2, LVL_AVX2_VNNI, LVL_AVX512, LVL_AVX512_VNNI, LVL_AVX512_BF16,
       N_LEVELS };
static const char *const level_names[N_LEVELS] = {
    "generic", "avx2", "avx2-vnni", "avx512", "avx512-vnni", "avx512-bf16"};
static int level = LVL_GENERIC;

#ifdef LN_X86
static int cpu_offers(int lvl) {
    int v3 = __builtin_cpu_supports("x86-64-v3"), v4 = __builtin_cpu_supports("x86-64-v4");
    int vnni512 = __builtin_cpu_supports("avx512vnni");
    switch (lvl) {
        case LVL_AVX2: return v3;
        case LVL_AVX2_VNNI:
            return v3 && (__builtin_cpu_supports("avxvnni") || (v4 && vnni512));
        case LVL_AVX512: return v4;
        case LVL_AVX512_VNNI: return v4 && vnni512;
        case LVL_AVX512_BF16: return v4 && vnni512 && __builtin_cpu_supports("avx512bf16");
        default: return 1;
    }
}
#endif

__attribute__((constructor)) static void ln_choose_isa(void) {
#ifdef LN_X86
    __builtin_cpu_init();
    int asked = N_LEVELS - 1;
    const char *want = getenv("LSTM_NATIVE_ISA");
    /* An unknown value is the Python package's to refuse (lstm_native._validation). */
    for (int l = 0; want && l < N_LEVELS; l++)
        if (strcmp(want, level_names[l]) == 0) asked = l;
    level = asked;
    while (level > LVL_GENERIC && !cpu_offers(level)) level--;
    ln_isa = level >= LVL_AVX512 ? LN_ISA_AVX512 : level >= LVL_AVX2 ? LN_ISA_AVX2 : LN_ISA_GENERIC;
    if (level >= LVL_AVX512_VNNI)
        ln_q8_isa = LN_Q8_VNNI512;
    else if (level == LVL_AVX2_VNNI)
        ln_q8_isa = __builtin_cpu_supports("avxvnni") ? LN_Q8_VNNI256_VEX : LN_Q8_VNNI256_EVEX;
    else if (level >= LVL_AVX2)
        ln_q8_isa = LN_Q8_AVX2;
    if (level == LVL_AVX512_BF16)
        ln_bf16_isa = LN_BF16_AVX512;
    else if (level >= LVL_AVX2)
        ln_bf16_isa = LN_BF16_AVX2;
#endif
}

const char *ln_isa_name(void) {
    return ln_isa == LN_ISA_AVX512 ? "avx512" : ln_isa == LN_ISA_AVX2 ? "avx2" : "generic";
}

const char *ln_level_name(void) { return level_names[level]; }
