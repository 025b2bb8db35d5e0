/* The int8 and bfloat16 GEMMs of quantized inference: see quant_gemm.h for the math.
 *
 * Compiled with -ffp-contract=off (CMakeLists.txt): the dequantisation's two
 * multiplications and the addition into C must round one by one, as the portable
 * kernel and lstm_native.reference.quantized do, so that every kernel gives the same
 * bits. */
#include "quant_gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"

#ifdef LN_X86
#include <immintrin.h>
#endif

static int round_up(int n, int m) { return (n + m - 1) / m * m; }
/* Four bytes from anywhere, as one int32 (memcpy: no alignment or aliasing assumed). */
static inline int32_t load32(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

int ln_q8_row_length(int k) { return round_up(k, LN_Q8_GROUP); }
int ln_bf16_row_length(int k) { return round_up(k, LN_BF16_GROUP); }

size_t ln_q8_packed_size(int k, int n) {
    return (size_t)round_up(n, LN_Q_TILE_COLS) * (size_t)ln_q8_row_length(k);
}
size_t ln_bf16_packed_size(int k, int n) {
    return (size_t)round_up(n, LN_Q_TILE_COLS) * (size_t)ln_bf16_row_length(k);
}

/* Where the panel holding column `col` starts, for A rows of kpad (k rounded up). */
#define PANEL(kpad, col) ((size_t)((col) / LN_Q_NB) * LN_Q_NB * (size_t)(kpad))
/* Element (kk, col % NB) within its panel, for groups of GROUP k. */
#define IN_PANEL(kk, col, GROUP) \
    (((size_t)((kk) / (GROUP)) * LN_Q_NB + (size_t)((col) % LN_Q_NB)) * (GROUP) + (kk) % (GROUP))

void ln_q8_pack(int k, int n, const int8_t *w, int ldw, int8_t *bp, int32_t *row_sums) {
    int kpad = ln_q8_row_length(k), npad = round_up(n, LN_Q_TILE_COLS);
    for (int col = 0; col < npad; col++) {
        int32_t sum = 0;
        for (int kk = 0; kk < kpad; kk++) {
            int8_t v = col < n && kk < k ? w[(size_t)col * ldw + kk] : 0;
            bp[PANEL(kpad, col) + IN_PANEL(kk, col, LN_Q8_GROUP)] = v;
            sum += v;
        }
        if (col < n) row_sums[col] = sum;
    }
}

void ln_bf16_pack(int k, int n, const uint16_t *w, int ldw, uint16_t *bp) {
    int kpad = ln_bf16_row_length(k), npad = round_up(n, LN_Q_TILE_COLS);
    for (int col = 0; col < npad; col++)
        for (int kk = 0; kk < kpad; kk++)
            bp[PANEL(kpad, col) + IN_PANEL(kk, col, LN_BF16_GROUP)] =
                col < n && kk < k ? w[(size_t)col * ldw + kk] : 0;
}

uint16_t ln_bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);        /* ±0 */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float ln_bf16_to_float(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ------------------------------------------------------------------------------------
 * The activations' quantisation and rounding, row by row: simple loops that the
 * compiler vectorises at each level (compiled per level, dispatched on ln_isa).
 * ---------------------------------------------------------------------------------- */
#define DEFINE_ROWS(ISA, ATTR)                                                            \
    ATTR static void q8_quantize_rows_##ISA(int m, int k, const float *a, int lda,       \
                                            uint8_t *q, int ldq, float *scale,           \
                                            int32_t *zero) {                             \
        int kpad = ln_q8_row_length(k);                                                   \
        for (int i = 0; i < m; i++) {                                                     \
            const float *ai = a + (size_t)i * lda;                                        \
            uint8_t *qi = q + (size_t)i * ldq;                                            \
            /* min and max as an OpenMP SIMD reduction, which the compiler vectorises   \
             * (a plain loop stays scalar without -ffast-math); exact in any order for  \
             * finite values, and a zero of either sign gives the same s and z. */     \
            float lo = 0.0f, hi = 0.0f;                                                   \
            _Pragma("omp simd reduction(min : lo) reduction(max : hi)")                  \
            for (int kk = 0; kk < k; kk++) {                                              \
                lo = ai[kk] < lo ? ai[kk] : lo;                                           \
                hi = ai[kk] > hi ? ai[kk] : hi;                                           \
            }                                                                             \
            float s = hi > lo ? (hi - lo) / 255.0f : 1.0f;                                \
            float z = rintf(-lo / s);                                                     \
            z = z > 255.0f ? 255.0f : z;                                                  \
            for (int kk = 0; kk < k; kk++) {                                              \
                float v = rintf(ai[kk] / s) + z;                                          \
                v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;                            \
                qi[kk] = (uint8_t)v;                                                      \
            }                                                                             \
            for (int kk = k; kk < kpad; kk++) qi[kk] = 0;                                 \
            scale[i] = s;                                                                 \
            zero[i] = (int32_t)z;                                                         \
        }                                                                                 \
    }                                                                                     \
    ATTR static void bf16_round_rows_##ISA(int m, int k, const float *a, int lda,        \
                                           uint16_t *q, int ldq) {                       \
        int kpad = ln_bf16_row_length(k);                                                 \
        for (int i = 0; i < m; i++) {                                                     \
            const uint32_t *ai = (const uint32_t *)(a + (size_t)i * lda);                 \
            uint16_t *qi = q + (size_t)i * ldq;                                           \
            for (int kk = 0; kk < k; kk++) {                                              \
                uint32_t u = ai[kk];                                                      \
                uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;                \
                uint32_t r = (u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u          \
                             : (u & 0x7f800000u) == 0         ? (u >> 16) & 0x8000u        \
                                                              : rounded;                  \
                qi[kk] = (uint16_t)r;                                                     \
            }                                                                             \
            for (int kk = k; kk < kpad; kk++) qi[kk] = 0;                                 \
        }                                                                                 \
    }

/* The dequantisation of one element: (float)(acc − z·Σw) · s_a · s_w, into C. */
#define Q8_OUT(ACC, Z, RS, SA, SW, C, ACCUMULATE)                                         \
    do {                                                                                  \
        float v_ = (float)((ACC) - (Z) * (RS)) * (SA);                                    \
        v_ = v_ * (SW);                                                                   \
        (C) = (ACCUMULATE) ? (C) + v_ : v_;                                               \
    } while (0)

/* ------------------------------------------------------------------------------------
 * Portable kernels: one row and one panel at a time, in each element's summation order.
 * ---------------------------------------------------------------------------------- */
#define DEFINE_PORTABLE(ISA, ATTR)                                                        \
    ATTR static void q8_gemm_portable_##ISA(                                              \
        int m, int n, int k, const uint8_t *a, int lda, const float *a_scale,             \
        const int32_t *a_zero, const int8_t *bp, const int32_t *row_sums,                 \
        const float *w_scale, float *c, int ldc, int accumulate) {                        \
        int kpad = ln_q8_row_length(k);                                                   \
        for (int i = 0; i < m; i++) {                                                     \
            const uint8_t *ai = a + (size_t)i * lda;                                      \
            for (int cs = 0; cs < n; cs += LN_Q_NB) {                                     \
                const int8_t *panel = bp + PANEL(kpad, cs);                               \
                int32_t acc[LN_Q_NB] = {0};                                               \
                for (int g = 0; g < kpad; g += LN_Q8_GROUP) {                             \
                    const int8_t *pg = panel + (size_t)g * LN_Q_NB;                       \
                    for (int j = 0; j < LN_Q_NB; j++)                                     \
                        for (int u = 0; u < LN_Q8_GROUP; u++)                             \
                            acc[j] += (int32_t)ai[g + u] * (int32_t)pg[j * LN_Q8_GROUP + u]; \
                }                                                                         \
                int valid = n - cs < LN_Q_NB ? n - cs : LN_Q_NB;                          \
                for (int j = 0; j < valid; j++)                                           \
                    Q8_OUT(acc[j], a_zero[i], row_sums[cs + j], a_scale[i],               \
                           w_scale[cs + j], c[(size_t)i * ldc + cs + j], accumulate);     \
            }                                                                             \
        }                                                                                 \
    }                                                                                     \
    ATTR static void bf16_gemm_portable_##ISA(int m, int n, int k, const uint16_t *a,    \
                                              int lda, const uint16_t *bp, float *c,     \
                                              int ldc, int accumulate) {                 \
        int kpad = ln_bf16_row_length(k);                                                 \
        for (int i = 0; i < m; i++) {                                                     \
            const uint16_t *ai = a + (size_t)i * lda;                                     \
            for (int cs = 0; cs < n; cs += LN_Q_NB) {                                     \
                const uint16_t *panel = bp + PANEL(kpad, cs);                             \
                float acc[LN_Q_NB] = {0};                                                 \
                for (int g = 0; g < kpad; g += LN_BF16_GROUP) {                           \
                    const uint16_t *pg = panel + (size_t)g * LN_Q_NB;                     \
                    float a1 = ln_bf16_to_float(ai[g + 1]), a0 = ln_bf16_to_float(ai[g]); \
                    for (int j = 0; j < LN_Q_NB; j++) {                                   \
                        acc[j] += a1 * ln_bf16_to_float(pg[2 * j + 1]);                   \
                        acc[j] += a0 * ln_bf16_to_float(pg[2 * j]);                       \
                    }                                                                     \
                }                                                                         \
                int valid = n - cs < LN_Q_NB ? n - cs : LN_Q_NB;                          \
                for (int j = 0; j < valid; j++) {                                         \
                    float *cp = c + (size_t)i * ldc + cs + j;                             \
                    *cp = accumulate ? *cp + acc[j] : acc[j];                             \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
    }

DEFINE_ROWS(generic, )
DEFINE_PORTABLE(generic, )
#ifdef LN_X86
DEFINE_ROWS(avx2, LN_TARGET_AVX2)
DEFINE_ROWS(avx512, LN_TARGET_AVX512)
DEFINE_PORTABLE(avx2, LN_TARGET_AVX2)
DEFINE_PORTABLE(avx512, LN_TARGET_AVX512)

/* ------------------------------------------------------------------------------------
 * SIMD kernels. A tile is MR rows × NV vectors of VW int32 / float lanes (VW columns),
 * in registers while the groups of k run: per group, NV loads of packed weights, MR
 * broadcasts of one group of A (4 bytes: 4 u8 or 2 bfloat16; BCAST(row, g) reads group
 * g of a row, at its own offset for a kernel whose A has another layout), NV·MR dot-product
 * instructions. The accumulators (VEC) and the operands (WVEC) are declared in the
 * types the instruction's builtin takes: GCC 12 keeps an array of __m512i accumulators
 * in memory, storing each after every vpdpbusd (7x slower), when each update casts. As in gemm_packed.c: NV·VW is a multiple of the panel width, a tile
 * starts at a panel boundary, and the row count is a constant in each switch case so
 * that the accumulators stay in registers. The epilogue stores each vector to a small
 * array and finishes it with the portable code's scalar expressions where the vector
 * holds the last, partial columns, and with the same operations in SIMD elsewhere (one
 * rounding each, as the scalar code: the same bits).
 * ---------------------------------------------------------------------------------- */
#define DEFINE_TILES(NAME, ATTR, ACC_T, VEC, WVEC, VW, MR, NV, GROUP, ELEM_T, ZERO, LOADB, \
                     BCAST, DOT, STORE, EPILOGUE, VEC_EPILOGUE)                           \
    _Static_assert(MR <= 6, #NAME ": the row switch has a case per row count up to 6"); \
    _Static_assert((NV * VW) % LN_Q_NB == 0, #NAME ": a tile starts at a panel");         \
    _Static_assert(LN_Q_TILE_COLS % (NV * VW) == 0, #NAME ": padding holds whole tiles"); \
    static inline __attribute__((always_inline)) ATTR void NAME##_tile(                   \
        const int mr, int kpad, const ELEM_T *a, int lda, const ELEM_T *bt, int i0,       \
        int cs, int n, Q_EXTRA_PARAMS) {                                                  \
        VEC acc[MR][NV];                                                                  \
        const ELEM_T *b[NV];                                                              \
        for (int v = 0; v < NV; v++) {                                                    \
            for (int i = 0; i < MR; i++) acc[i][v] = ZERO;                                \
            b[v] = bt + PANEL(kpad, v * VW) + (size_t)((v * VW) % LN_Q_NB) * GROUP;       \
        }                                                                                 \
        for (int g = 0; g < kpad; g += GROUP) {                                           \
            WVEC w[NV];                                                                   \
            for (int v = 0; v < NV; v++) w[v] = LOADB(b[v] + (size_t)g * LN_Q_NB);        \
            for (int i = 0; i < mr; i++) {                                                \
                WVEC av = BCAST(a + (size_t)i * lda, g);                                  \
                for (int v = 0; v < NV; v++) acc[i][v] = DOT(acc[i][v], av, w[v]);        \
            }                                                                             \
        }                                                                                 \
        for (int i = 0; i < mr; i++)                                                      \
            for (int v = 0; v < NV; v++) {                                                \
                int col = cs + v * VW;                                                    \
                int valid = n - col < VW ? n - col : VW;                                  \
                if (valid == VW) {                                                        \
                    VEC_EPILOGUE(i0 + i, col, acc[i][v]);                                 \
                } else if (valid > 0) {                                                   \
                    ACC_T t[VW];                                                          \
                    STORE(t, acc[i][v]);                                                  \
                    for (int j = 0; j < valid; j++) EPILOGUE(i0 + i, col + j, t[j]);      \
                }                                                                         \
            }                                                                             \
    }                                                                                     \
    ATTR static void NAME(int m, int n, int k, const ELEM_T *a, int lda, const ELEM_T *bp, \
                          Q_EXTRA_PARAMS) {                                               \
        int kpad = round_up(k, GROUP);                                                    \
        for (int cs = 0; cs < n; cs += NV * VW) {                                         \
            const ELEM_T *bt = bp + PANEL(kpad, cs);                                      \
            for (int i0 = 0; i0 < m; i0 += MR) {                                          \
                const ELEM_T *ai = a + (size_t)i0 * lda;                                  \
                switch (m - i0 < MR ? m - i0 : MR) {                                      \
                    case 6: NAME##_tile(MR < 6 ? MR : 6, kpad, ai, lda, bt, i0, cs, n, Q_EXTRA_ARGS); break; \
                    case 5: NAME##_tile(MR < 5 ? MR : 5, kpad, ai, lda, bt, i0, cs, n, Q_EXTRA_ARGS); break; \
                    case 4: NAME##_tile(MR < 4 ? MR : 4, kpad, ai, lda, bt, i0, cs, n, Q_EXTRA_ARGS); break; \
                    case 3: NAME##_tile(MR < 3 ? MR : 3, kpad, ai, lda, bt, i0, cs, n, Q_EXTRA_ARGS); break; \
                    case 2: NAME##_tile(MR < 2 ? MR : 2, kpad, ai, lda, bt, i0, cs, n, Q_EXTRA_ARGS); break; \
                    default: NAME##_tile(1, kpad, ai, lda, bt, i0, cs, n, Q_EXTRA_ARGS); break; \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
    }

/* int8: A and B are bytes, four k per 32-bit lane. */
#define Q_EXTRA_PARAMS                                                                    \
    const float *a_scale, const int32_t *a_zero, const int32_t *row_sums,                 \
        const float *w_scale, float *c, int ldc, int accumulate
#define Q_EXTRA_ARGS a_scale, a_zero, row_sums, w_scale, c, ldc, accumulate
#define Q8_EPILOGUE(I, COL, ACC)                                                          \
    Q8_OUT(ACC, a_zero[I], row_sums[COL], a_scale[I], w_scale[COL],                       \
           c[(size_t)(I) * ldc + (COL)], accumulate)
/* The same expression as Q8_OUT on a whole vector of VW columns: SFX selects the width. */
#define Q8_VEC_OUT(I, COL, ACC, W, SFX, SI)                                               \
    do {                                                                                  \
        __m##W##i corr_ = _mm##SFX##_mullo_epi32(_mm##SFX##_set1_epi32(a_zero[I]),        \
                                                 _mm##SFX##_loadu_##SI(                   \
                                                     (const void *)(row_sums + (COL))));  \
        __m##W v_ = _mm##SFX##_cvtepi32_ps(_mm##SFX##_sub_epi32((__m##W##i)(ACC), corr_)); \
        v_ = _mm##SFX##_mul_ps(v_, _mm##SFX##_set1_ps(a_scale[I]));                       \
        v_ = _mm##SFX##_mul_ps(v_, _mm##SFX##_loadu_ps(w_scale + (COL)));                 \
        float *cp_ = c + (size_t)(I) * ldc + (COL);                                       \
        if (accumulate) v_ = _mm##SFX##_add_ps(_mm##SFX##_loadu_ps(cp_), v_);             \
        _mm##SFX##_storeu_ps(cp_, v_);                                                    \
    } while (0)
#define Q8_VEC_OUT512(I, COL, ACC) Q8_VEC_OUT(I, COL, ACC, 512, 512, si512)
#define Q8_VEC_OUT256(I, COL, ACC) Q8_VEC_OUT(I, COL, ACC, 256, 256, si256)
#define LOAD512(p) _mm512_loadu_si512((const void *)(p))
#define LOAD256(p) _mm256_loadu_si256((const __m256i *)(p))
#define STORE512I(t, v) _mm512_storeu_si512((void *)(t), (__m512i)(v))
#define STORE256I(t, v) _mm256_storeu_si256((__m256i *)(t), (__m256i)(v))
typedef int32_t ln_v16si __attribute__((vector_size(64)));
typedef int32_t ln_v8si __attribute__((vector_size(32)));
#define DPBUSD512(acc, a, b) ((ln_v16si)_mm512_dpbusd_epi32((__m512i)(acc), a, b))
#define DPBUSD256_EVEX(acc, a, b) ((ln_v8si)_mm256_dpbusd_epi32((__m256i)(acc), a, b))
#define DPBUSD256_VEX(acc, a, b) ((ln_v8si)_mm256_dpbusd_avx_epi32((__m256i)(acc), a, b))
#define BCAST512(row, g) _mm512_set1_epi32(load32((row) + (g)))
#define BCAST256(row, g) _mm256_set1_epi32(load32((row) + (g)))

/* 512-bit: 6 rows × 4 vectors, 24 of the 32 registers; 256-bit: 6 × 2 (AVX2's 16). */
DEFINE_TILES(q8_vnni512, LN_TARGET_AVX512_VNNI, int32_t, ln_v16si, __m512i, 16, 6, 4,
             LN_Q8_GROUP, uint8_t, (ln_v16si){0}, LOAD512, BCAST512, DPBUSD512,
             STORE512I, Q8_EPILOGUE, Q8_VEC_OUT512)
DEFINE_TILES(q8_vnni256_evex, LN_TARGET_AVX512_VNNI, int32_t, ln_v8si, __m256i, 8, 6, 2,
             LN_Q8_GROUP, uint8_t, (ln_v8si){0}, LOAD256, BCAST256,
             DPBUSD256_EVEX, STORE256I, Q8_EPILOGUE, Q8_VEC_OUT256)
DEFINE_TILES(q8_vnni256_vex, LN_TARGET_AVX_VNNI, int32_t, ln_v8si, __m256i, 8, 6, 2,
             LN_Q8_GROUP, uint8_t, (ln_v8si){0}, LOAD256, BCAST256, DPBUSD256_VEX,
             STORE256I, Q8_EPILOGUE, Q8_VEC_OUT256)

/* AVX2 without VNNI: vpdpbusd's four u8·s8 products per lane as two vpmaddwd on 16-bit
 * halves (bytes 0 and 2, bytes 1 and 3 of each lane: activations zero-extended,
 * weights sign-extended), whose pair sums are exact in int32 as vpdpbusd's are, so the
 * results are the same integers. Not vpmaddubsw: its u8·s8 pair sums saturate at 16
 * bits (255·127·2 > 32767), which changes the results. The weights are split once per
 * loaded vector; the activations once per call, before the tiles (q8_avx2_split_rows:
 * each group of 4 bytes becomes the 16-bit pairs (a0, a2) and (a1, a3)), so that a
 * tile's broadcasts are plain loads where splitting after each broadcast took two more
 * vector instructions per row and group, which compete with vpmaddwd for the pipes.
 * 4 rows × 2 vectors, so that the 8 accumulators and the 6 halves stay in AVX2's 16
 * registers (6 rows spill). */
typedef struct { __m256i even, odd; } ln_q8_halves;
static inline __attribute__((always_inline)) LN_TARGET_AVX2 ln_q8_halves
q8_avx2_weights(const void *p) {
    __m256i w = _mm256_loadu_si256((const __m256i *)p);
    return (ln_q8_halves){_mm256_srai_epi16(_mm256_slli_epi16(w, 8), 8),
                          _mm256_srai_epi16(w, 8)};
}
/* Group g (a multiple of 4) of a split row: 8 bytes at 2g, the pairs (a0, a2), (a1, a3). */
static inline __attribute__((always_inline)) LN_TARGET_AVX2 ln_q8_halves
q8_avx2_group(const uint8_t *row, int g) {
    return (ln_q8_halves){_mm256_set1_epi32(load32(row + 2 * (size_t)g)),
                          _mm256_set1_epi32(load32(row + 2 * (size_t)g + 4))};
}
static inline __attribute__((always_inline)) LN_TARGET_AVX2 ln_v8si
q8_avx2_dot(ln_v8si acc, ln_q8_halves a, ln_q8_halves w) {
    __m256i sum = _mm256_add_epi32(_mm256_madd_epi16(a.even, w.even),
                                   _mm256_madd_epi16(a.odd, w.odd));
    return (ln_v8si)_mm256_add_epi32((__m256i)acc, sum);
}
DEFINE_TILES(q8_avx2, LN_TARGET_AVX2, int32_t, ln_v8si, ln_q8_halves, 8, 4, 2, LN_Q8_GROUP,
             uint8_t, (ln_v8si){0}, q8_avx2_weights, q8_avx2_group, q8_avx2_dot, STORE256I,
             Q8_EPILOGUE, Q8_VEC_OUT256)

/* m rows of kpad bytes (lda apart) into rows of 2·kpad bytes: each group of 4 bytes as the
 * 16-bit pairs (a0, a2), (a1, a3), q8_avx2_group's layout; 8 groups per vector. */
LN_TARGET_AVX2 static void q8_avx2_split_rows(int m, int kpad, const uint8_t *a, int lda,
                                              uint8_t *split) {
    const __m256i low = _mm256_set1_epi32(0x00ff00ff);
    for (int i = 0; i < m; i++) {
        const uint8_t *ai = a + (size_t)i * lda;
        uint8_t *si = split + (size_t)i * 2 * kpad;
        int g = 0;
        for (; g + 32 <= kpad; g += 32) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(ai + g));
            __m256i even = _mm256_and_si256(x, low), odd = _mm256_srli_epi16(x, 8);
            /* groups 0,1,4,5 and 2,3,6,7 interleaved within the 128-bit halves */
            __m256i lo = _mm256_unpacklo_epi32(even, odd), hi = _mm256_unpackhi_epi32(even, odd);
            _mm256_storeu_si256((__m256i *)(si + 2 * g), _mm256_permute2x128_si256(lo, hi, 0x20));
            _mm256_storeu_si256((__m256i *)(si + 2 * g + 32),
                                _mm256_permute2x128_si256(lo, hi, 0x31));
        }
        for (; g < kpad; g += 4) {
            const uint8_t *p = ai + g;
            uint16_t pairs[4] = {p[0], p[2], p[1], p[3]};
            memcpy(si + 2 * g, pairs, sizeof pairs);
        }
    }
}

/* The AVX2 kernel on rows split by blocks of at most 64 (2·kpad bytes each: 128 KiB at
 * kpad = 1024), so that the scratch stays small whatever m; 0 when it has no memory.
 * Up to 16 KiB of scratch is on the stack: a malloc per call cost small layers (one row,
 * k = 64: a step's GEMM is a microsecond) more than the split saves. */
#define Q_AVX2_ROWS 64
#define Q_AVX2_STACK 16384
static int q8_avx2_rows(int m, int n, int k, const uint8_t *a, int lda, const uint8_t *bp,
                        const float *a_scale, const int32_t *a_zero, const int32_t *row_sums,
                        const float *w_scale, float *c, int ldc, int accumulate) {
    int kpad = round_up(k, LN_Q8_GROUP);
    _Alignas(64) uint8_t local[Q_AVX2_STACK];
    size_t need = (size_t)(m < Q_AVX2_ROWS ? m : Q_AVX2_ROWS) * 2 * kpad;
    uint8_t *split = need <= sizeof local ? local : malloc(need);
    if (split == NULL) return 0;
    for (int r0 = 0; r0 < m; r0 += Q_AVX2_ROWS) {
        int rows = m - r0 < Q_AVX2_ROWS ? m - r0 : Q_AVX2_ROWS;
        q8_avx2_split_rows(rows, kpad, a + (size_t)r0 * lda, lda, split);
        q8_avx2(rows, n, k, split, 2 * kpad, bp, a_scale + r0, a_zero + r0, row_sums,
                w_scale, c + (size_t)r0 * ldc, ldc, accumulate);
    }
    if (split != local) free(split);
    return 1;
}
#undef Q_EXTRA_PARAMS
#undef Q_EXTRA_ARGS

/* bfloat16: A and B are uint16 bit patterns, two k per 32-bit lane. */
#define Q_EXTRA_PARAMS float *c, int ldc, int accumulate
#define Q_EXTRA_ARGS c, ldc, accumulate
#define BF16_EPILOGUE(I, COL, ACC)                                                        \
    do {                                                                                  \
        float *cp_ = c + (size_t)(I) * ldc + (COL);                                       \
        *cp_ = accumulate ? *cp_ + (ACC) : (ACC);                                         \
    } while (0)
#define BF16_VEC_OUT(I, COL, ACC)                                                         \
    do {                                                                                  \
        float *cp_ = c + (size_t)(I) * ldc + (COL);                                       \
        _mm512_storeu_ps(cp_, accumulate ? _mm512_add_ps(_mm512_loadu_ps(cp_), ACC) : ACC); \
    } while (0)
#define LOADBF(p) ((__m512bh)_mm512_loadu_si512((const void *)(p)))
#define BCASTBF(row, g) ((__m512bh)_mm512_set1_epi32(load32((row) + (g))))
#define DPBF16(acc, a, b) _mm512_dpbf16_ps(acc, a, b)
DEFINE_TILES(bf16_avx512, LN_TARGET_AVX512_BF16, float, __m512, __m512bh, 16, 6, 4, LN_BF16_GROUP,
             uint16_t, _mm512_setzero_ps(), LOADBF, BCASTBF, DPBF16, _mm512_storeu_ps,
             BF16_EPILOGUE, BF16_VEC_OUT)

/* AVX2 without AVX512_BF16: each bfloat16 is the top half of its float32, so a lane's
 * pair widens by a shift (k even) and a mask (k odd); the two products go in by FMA,
 * odd k first, in vdpbf16ps's and the reference's order. A product of two bfloat16
 * values is exact in float32, so the FMA rounds once where the reference's product and
 * sum round once too: the same bits. 4 rows × 2 vectors, as the int8 kernel; as there,
 * the activations are widened once per call (bf16_avx2_split_rows: each bfloat16 to its
 * float32), so that a tile broadcasts floats where it split each broadcast pair. */
typedef struct { __m256 even, odd; } ln_bf16_halves;
static inline __attribute__((always_inline)) LN_TARGET_AVX2 ln_bf16_halves
bf16_avx2_weights(const void *p) {
    __m256i w = _mm256_loadu_si256((const __m256i *)p);
    return (ln_bf16_halves){
        _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)),
        _mm256_castsi256_ps(_mm256_and_si256(w, _mm256_set1_epi32((int32_t)0xffff0000u)))};
}
static inline __attribute__((always_inline)) LN_TARGET_AVX2 ln_bf16_halves
bf16_avx2_group(const uint16_t *row, int g) {
    /* k = g and g + 1 of a widened row: floats g and g + 1, 2 and 2 uint16 each */
    return (ln_bf16_halves){_mm256_castsi256_ps(_mm256_set1_epi32(load32(row + 2 * (size_t)g))),
                            _mm256_castsi256_ps(_mm256_set1_epi32(load32(row + 2 * (size_t)g + 2)))};
}
static inline __attribute__((always_inline)) LN_TARGET_AVX2 __m256
bf16_avx2_dot(__m256 acc, ln_bf16_halves a, ln_bf16_halves w) {
    return _mm256_fmadd_ps(a.even, w.even, _mm256_fmadd_ps(a.odd, w.odd, acc));
}
#define BF16_VEC_OUT256(I, COL, ACC)                                                      \
    do {                                                                                  \
        float *cp_ = c + (size_t)(I) * ldc + (COL);                                       \
        _mm256_storeu_ps(cp_, accumulate ? _mm256_add_ps(_mm256_loadu_ps(cp_), ACC) : ACC); \
    } while (0)
DEFINE_TILES(bf16_avx2, LN_TARGET_AVX2, float, __m256, ln_bf16_halves, 8, 4, 2, LN_BF16_GROUP,
             uint16_t, _mm256_setzero_ps(), bf16_avx2_weights, bf16_avx2_group, bf16_avx2_dot,
             _mm256_storeu_ps, BF16_EPILOGUE, BF16_VEC_OUT256)

/* m rows of kpad bfloat16 (lda apart) into rows of kpad float32, as uint16 pairs. */
LN_TARGET_AVX2 static void bf16_avx2_split_rows(int m, int kpad, const uint16_t *a, int lda,
                                                uint16_t *split) {
    for (int i = 0; i < m; i++) {
        const uint16_t *ai = a + (size_t)i * lda;
        uint16_t *si = split + (size_t)i * 2 * kpad;
        int kk = 0;
        for (; kk + 16 <= kpad; kk += 16) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(ai + kk));
            __m256i lo = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(x)), 16);
            __m256i hi = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(x, 1)), 16);
            _mm256_storeu_si256((__m256i *)(si + 2 * kk), lo);
            _mm256_storeu_si256((__m256i *)(si + 2 * kk + 16), hi);
        }
        for (; kk < kpad; kk++) {
            uint32_t bits = (uint32_t)ai[kk] << 16;
            memcpy(si + 2 * kk, &bits, sizeof bits);
        }
    }
}

/* The AVX2 kernel on widened rows, by blocks of at most 64 rows (4·kpad bytes each); 0
 * when it has no memory. */
static int bf16_avx2_rows(int m, int n, int k, const uint16_t *a, int lda, const uint16_t *bp,
                          float *c, int ldc, int accumulate) {
    int kpad = round_up(k, LN_BF16_GROUP);
    _Alignas(64) uint16_t local[Q_AVX2_STACK / sizeof(uint16_t)];
    size_t need = (size_t)(m < Q_AVX2_ROWS ? m : Q_AVX2_ROWS) * 2 * kpad * sizeof *local;
    uint16_t *split = need <= sizeof local ? local : malloc(need);
    if (split == NULL) return 0;
    for (int r0 = 0; r0 < m; r0 += Q_AVX2_ROWS) {
        int rows = m - r0 < Q_AVX2_ROWS ? m - r0 : Q_AVX2_ROWS;
        bf16_avx2_split_rows(rows, kpad, a + (size_t)r0 * lda, lda, split);
        bf16_avx2(rows, n, k, split, 2 * kpad, bp, c + (size_t)r0 * ldc, ldc, accumulate);
    }
    if (split != local) free(split);
    return 1;
}
#undef Q_EXTRA_PARAMS
#undef Q_EXTRA_ARGS
#endif /* LN_X86 */

/* ------------------------------------------------------------------------------------
 * Dispatch.
 * ---------------------------------------------------------------------------------- */
void ln_q8_quantize_rows(int m, int k, const float *a, int lda, uint8_t *q, int ldq,
                         float *scale, int32_t *zero) {
    LN_DISPATCH(q8_quantize_rows, m, k, a, lda, q, ldq, scale, zero);
}

void ln_bf16_round_rows(int m, int k, const float *a, int lda, uint16_t *q, int ldq) {
    LN_DISPATCH(bf16_round_rows, m, k, a, lda, q, ldq);
}

void ln_q8_gemm(int m, int n, int k, const uint8_t *a, int lda, const float *a_scale,
                const int32_t *a_zero, const int8_t *bp, const int32_t *row_sums,
                const float *w_scale, float *c, int ldc, int accumulate) {
    if (m <= 0 || n <= 0) return;
#ifdef LN_X86
    const int8_t *b = bp;
    switch (ln_q8_isa) {
        case LN_Q8_VNNI512:
            q8_vnni512(m, n, k, a, lda, (const uint8_t *)b, a_scale, a_zero, row_sums,
                       w_scale, c, ldc, accumulate);
            return;
        case LN_Q8_VNNI256_EVEX:
            q8_vnni256_evex(m, n, k, a, lda, (const uint8_t *)b, a_scale, a_zero, row_sums,
                            w_scale, c, ldc, accumulate);
            return;
        case LN_Q8_VNNI256_VEX:
            q8_vnni256_vex(m, n, k, a, lda, (const uint8_t *)b, a_scale, a_zero, row_sums,
                           w_scale, c, ldc, accumulate);
            return;
        case LN_Q8_AVX2:
            /* without memory for the split rows, the portable kernel: the same bits */
            if (q8_avx2_rows(m, n, k, a, lda, (const uint8_t *)b, a_scale, a_zero, row_sums,
                             w_scale, c, ldc, accumulate))
                return;
            break;
        default: break;
    }
#endif
    LN_DISPATCH(q8_gemm_portable, m, n, k, a, lda, a_scale, a_zero, bp, row_sums,
                    w_scale, c, ldc, accumulate);
}

void ln_bf16_gemm(int m, int n, int k, const uint16_t *a, int lda, const uint16_t *bp,
                  float *c, int ldc, int accumulate) {
    if (m <= 0 || n <= 0) return;
#ifdef LN_X86
    if (ln_bf16_isa == LN_BF16_AVX512) {
        bf16_avx512(m, n, k, a, lda, bp, c, ldc, accumulate);
        return;
    }
    /* without memory for the widened rows, the portable kernel: the same bits */
    if (ln_bf16_isa == LN_BF16_AVX2 && bf16_avx2_rows(m, n, k, a, lda, bp, c, ldc, accumulate))
        return;
#endif
    LN_DISPATCH(bf16_gemm_portable, m, n, k, a, lda, bp, c, ldc, accumulate);
}

const char *ln_q8_kernel_name(void) {
    return ln_q8_isa == LN_Q8_VNNI512    ? "avx512-vnni"
           : ln_q8_isa == LN_Q8_PORTABLE ? "portable"
           : ln_q8_isa == LN_Q8_AVX2     ? "avx2"
                                         : "avx2-vnni";
}

const char *ln_bf16_kernel_name(void) {
    return ln_bf16_isa == LN_BF16_AVX512 ? "avx512-bf16"
           : ln_bf16_isa == LN_BF16_AVX2 ? "avx2"
                                         : "portable";
}
