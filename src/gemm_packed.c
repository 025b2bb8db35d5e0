/* The per-step recurrent GEMM on pre-packed weights: see gemm_packed.h for why. */
#include "gemm_packed.h"

#include "cpu_features.h"

#ifdef LN_X86
#include <immintrin.h>
#endif

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

size_t ln_packed_size_f32(int k, int n) { return (size_t)k * round_up((size_t)n, LN_TILE_COLS_F32); }
size_t ln_packed_size_f64(int k, int n) { return (size_t)k * round_up((size_t)n, LN_TILE_COLS_F64); }

/* Panels of NB columns, [n / NB][k][NB], zero past column n up to a multiple of the widest
 * tile (as ln_packed_size_*): the kernels then read whole vectors everywhere and only mask
 * their stores. The panel's columns before n are found once per panel, not tested per
 * element: a loop without the test copies 1.2x (from W transposed, the step GEMMs' forward
 * operand) to 2.7x (from W as it is, backward's) faster (512 x 2048, 1 thread). */
#define DEFINE_PACK(SFX, T, NB, TILE_COLS)                                                \
    void ln_pack_##SFX(int k, int n, const T *b, ptrdiff_t s_k, ptrdiff_t s_n, T *bp) {  \
        int n_panels = (int)(round_up((size_t)n, TILE_COLS) / NB);                        \
        for (int p = 0; p < n_panels; p++) {                                              \
            T *panel = bp + LN_PACKED_PANEL_OFFSET(k, p * NB, NB);                        \
            int valid = n - p * NB < 0 ? 0 : (n - p * NB < NB ? n - p * NB : NB);         \
            const T *src = b + (ptrdiff_t)p * NB * s_n;                                   \
            for (int kk = 0; kk < k; kk++) {                                              \
                T *dst = panel + (size_t)kk * NB;                                         \
                for (int j = 0; j < valid; j++) dst[j] = src[kk * s_k + j * s_n];         \
                for (int j = valid; j < NB; j++) dst[j] = (T)0;                           \
            }                                                                             \
        }                                                                                 \
    }
DEFINE_PACK(f32, float, LN_NB_F32, LN_TILE_COLS_F32)
DEFINE_PACK(f64, double, LN_NB_F64, LN_TILE_COLS_F64)

/* ------------------------------------------------------------------------------------
 * Portable kernel: one row and one panel at a time, simple enough for any compiler to
 * vectorise with the baseline instruction set.
 * ---------------------------------------------------------------------------------- */
#define DEFINE_GENERIC(SFX, T, NB)                                                        \
    static void gemm_generic_##SFX(int m, int n, int k1, const T *a1, int lda1, const T *bp1, \
                                   int k2, const T *a2, int lda2, const T *bp2, T *c,     \
                                   int ldc, int add) {                                    \
        for (int i = 0; i < m; i++) {                                                     \
            for (int cs = 0; cs < n; cs += NB) {                                          \
                const T *panel1 = bp1 + LN_PACKED_PANEL_OFFSET(k1, cs, NB);               \
                const T *panel2 = bp2 + LN_PACKED_PANEL_OFFSET(k2, cs, NB);               \
                T acc[NB];                                                                \
                for (int j = 0; j < NB; j++) acc[j] = 0;                                  \
                for (int kk = 0; kk < k1; kk++) {                                         \
                    T av = a1[(size_t)i * lda1 + kk];                                     \
                    for (int j = 0; j < NB; j++) acc[j] += av * panel1[(size_t)kk * NB + j]; \
                }                                                                         \
                for (int kk = 0; kk < k2; kk++) {                                         \
                    T av = a2[(size_t)i * lda2 + kk];                                     \
                    for (int j = 0; j < NB; j++) acc[j] += av * panel2[(size_t)kk * NB + j]; \
                }                                                                         \
                int valid = n - cs < NB ? n - cs : NB;                                    \
                T *ci = c + (size_t)i * ldc + cs;                                         \
                for (int j = 0; j < valid; j++) ci[j] = add ? ci[j] + acc[j] : acc[j];    \
            }                                                                             \
        }                                                                                 \
    }
DEFINE_GENERIC(f32, float, LN_NB_F32)
DEFINE_GENERIC(f64, double, LN_NB_F64)

#ifdef LN_X86
/* ------------------------------------------------------------------------------------
 * SIMD kernels. A tile is MR rows × NV vectors of VW columns (VW: the lanes of VEC),
 * held in registers while k runs: per k, NV vector loads of B, MR broadcasts of A,
 * NV·MR fused multiply-adds. NV·VW is a multiple of the panel width NB, so a tile starts
 * at a panel boundary; vector v of the tile reads panel (v·VW / NB) at offset
 * (v·VW mod NB). The packed buffer is padded to TILE_COLS columns, a multiple of NV·VW,
 * so a tile reads whole vectors everywhere.
 * The row count of a tile is a compile-time constant in each `switch` case, so the
 * compiler unrolls the row loops and keeps the accumulators in registers: one case for
 * each row count 1..MR, so MR is checked against the cases. The rows are cut into
 * tiles of near-equal height (32 rows: 6, 6, 5, 5, 5, 5, not 6 x 5 + 2): a tile reads
 * its panel of B from L2 whatever its height, and a 2-row one did it for a third of the
 * work (+1-2% on 32 rows x 1024 or 2048 columns, 1 thread).
 * ---------------------------------------------------------------------------------- */
#define DEFINE_SIMD(NAME, ATTR, T, VEC, VW, NB, TILE_COLS, MR, NV, ZERO, LOAD, STOREU, SET1, \
                    FMA, ADD)                                                             \
    _Static_assert(MR == 6, #NAME ": the row switch has one case per row count 1..6");  \
    _Static_assert((NV * VW) % NB == 0, #NAME ": a tile must start at a panel boundary"); \
    _Static_assert(TILE_COLS % (NV * VW) == 0, #NAME ": the padding must hold whole tiles"); \
    static inline __attribute__((always_inline)) ATTR void NAME##_sum(                    \
        const int mr, VEC acc[MR][NV], int k, const T *a, int lda, const T *bt) {         \
        const T *b[NV];                                                                   \
        for (int v = 0; v < NV; v++)                                                      \
            b[v] = bt + LN_PACKED_PANEL_OFFSET(k, v * VW, NB) + (v * VW) % NB;            \
        for (int kk = 0; kk < k; kk++) {                                                  \
            VEC w[NV];                                                                    \
            for (int v = 0; v < NV; v++) w[v] = LOAD(b[v] + (size_t)kk * NB);             \
            for (int i = 0; i < mr; i++) {                                                \
                VEC av = SET1(a[(size_t)i * lda + kk]);                                   \
                for (int v = 0; v < NV; v++) acc[i][v] = FMA(av, w[v], acc[i][v]);        \
            }                                                                             \
        }                                                                                 \
    }                                                                                     \
    static inline __attribute__((always_inline)) ATTR void NAME##_tile(                   \
        const int mr, int k1, const T *a1, int lda1, const T *b1t, int k2, const T *a2,   \
        int lda2, const T *b2t, T *c, int ldc, int ncols, int add) {                      \
        VEC acc[MR][NV];                                                                  \
        for (int i = 0; i < MR; i++)                                                      \
            for (int v = 0; v < NV; v++) acc[i][v] = ZERO;                                \
        NAME##_sum(mr, acc, k1, a1, lda1, b1t);                                           \
        NAME##_sum(mr, acc, k2, a2, lda2, b2t);                                           \
        for (int i = 0; i < mr; i++) {                                                    \
            for (int v = 0; v < NV; v++) {                                                \
                T *cp = c + (size_t)i * ldc + v * VW;                                     \
                int valid = ncols - v * VW;                                               \
                if (valid >= VW) {                                                        \
                    STOREU(cp, add ? ADD(LOAD(cp), acc[i][v]) : acc[i][v]);               \
                } else if (valid > 0) {                                                   \
                    T tmp[VW];                                                            \
                    STOREU(tmp, acc[i][v]);                                               \
                    for (int j = 0; j < valid; j++) cp[j] = add ? cp[j] + tmp[j] : tmp[j]; \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
    }                                                                                     \
    ATTR static void NAME(int m, int n, int k1, const T *a1, int lda1, const T *bp1,      \
                          int k2, const T *a2, int lda2, const T *bp2, T *c, int ldc,     \
                          int add) {                                                      \
        for (int cs = 0; cs < n; cs += NV * VW) {                                         \
            const T *b1t = bp1 + LN_PACKED_PANEL_OFFSET(k1, cs, NB);                      \
            const T *b2t = bp2 + LN_PACKED_PANEL_OFFSET(k2, cs, NB);                      \
            int n_tiles = (m + MR - 1) / MR;                                              \
            for (int tile = 0; tile < n_tiles; tile++) {                                  \
                int i0 = tile * m / n_tiles, i1 = (tile + 1) * m / n_tiles;               \
                const T *a1i = a1 + (size_t)i0 * lda1, *a2i = a2 + (size_t)i0 * lda2;     \
                T *ci = c + (size_t)i0 * ldc + cs;                                        \
                switch (i1 - i0) {                                                        \
                    case 6: NAME##_tile(6, k1, a1i, lda1, b1t, k2, a2i, lda2, b2t, ci, ldc, n - cs, add); break; \
                    case 5: NAME##_tile(5, k1, a1i, lda1, b1t, k2, a2i, lda2, b2t, ci, ldc, n - cs, add); break; \
                    case 4: NAME##_tile(4, k1, a1i, lda1, b1t, k2, a2i, lda2, b2t, ci, ldc, n - cs, add); break; \
                    case 3: NAME##_tile(3, k1, a1i, lda1, b1t, k2, a2i, lda2, b2t, ci, ldc, n - cs, add); break; \
                    case 2: NAME##_tile(2, k1, a1i, lda1, b1t, k2, a2i, lda2, b2t, ci, ldc, n - cs, add); break; \
                    default: NAME##_tile(1, k1, a1i, lda1, b1t, k2, a2i, lda2, b2t, ci, ldc, n - cs, add); break; \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
    }

/* AVX-512 tiles: 6 rows x 4 vectors, 24 of the 32 registers as accumulators; per k, 4
 * loads of W and 6 broadcasts feed 24 multiply-adds. Measured against 8 x 2 (16
 * accumulators, 2 loads + 8 broadcasts per 16) on the recurrence alone, 1 thread:
 * 78.8 -> 87-96 GF/s at B=16 H=1024, +0-4% at H=256 and 512. AVX2 has 16 registers:
 * 6 rows x 2 vectors, 12 accumulators. The AVX-512 tile is the widest, LN_TILE_COLS_*. */
#define AVX512_TILE_ROWS 6
#define AVX512_TILE_VECS 4
#define AVX2_TILE_ROWS 6
#define AVX2_TILE_VECS 2
#define AVX512 LN_TARGET_AVX512
#define AVX2 LN_TARGET_AVX2

DEFINE_SIMD(gemm_avx512_f32, AVX512, float, __m512, 16, LN_NB_F32, LN_TILE_COLS_F32,
            AVX512_TILE_ROWS, AVX512_TILE_VECS, _mm512_setzero_ps(),
            _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps)
DEFINE_SIMD(gemm_avx512_f64, AVX512, double, __m512d, 8, LN_NB_F64, LN_TILE_COLS_F64,
            AVX512_TILE_ROWS, AVX512_TILE_VECS, _mm512_setzero_pd(),
            _mm512_loadu_pd, _mm512_storeu_pd, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd)
DEFINE_SIMD(gemm_avx2_f32, AVX2, float, __m256, 8, LN_NB_F32, LN_TILE_COLS_F32,
            AVX2_TILE_ROWS, AVX2_TILE_VECS, _mm256_setzero_ps(),
            _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps)
DEFINE_SIMD(gemm_avx2_f64, AVX2, double, __m256d, 4, LN_NB_F64, LN_TILE_COLS_F64,
            AVX2_TILE_ROWS, AVX2_TILE_VECS, _mm256_setzero_pd(),
            _mm256_loadu_pd, _mm256_storeu_pd, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd)
#endif /* LN_X86 */

/* C (+)= A1·B1 + A2·B2, one entry per type; k2 = 0 for a single product. */
#ifdef LN_X86
#define DISPATCH_SIMD(SFX, ...)                                                           \
    do {                                                                                  \
        if (ln_isa == LN_ISA_AVX512) { gemm_avx512_##SFX(__VA_ARGS__); return; }          \
        if (ln_isa == LN_ISA_AVX2) { gemm_avx2_##SFX(__VA_ARGS__); return; }              \
    } while (0)
#else
#define DISPATCH_SIMD(SFX, ...) do { } while (0)
#endif
#define DEFINE_ENTRIES(SFX, T)                                                            \
    static void gemm_##SFX(int m, int n, int k1, const T *a1, int lda1, const T *bp1,     \
                           int k2, const T *a2, int lda2, const T *bp2, T *c, int ldc,    \
                           int add) {                                                     \
        if (m <= 0 || n <= 0) return;                                                     \
        DISPATCH_SIMD(SFX, m, n, k1, a1, lda1, bp1, k2, a2, lda2, bp2, c, ldc, add);     \
        gemm_generic_##SFX(m, n, k1, a1, lda1, bp1, k2, a2, lda2, bp2, c, ldc, add);     \
    }                                                                                     \
    void ln_gemm_packed_##SFX(int m, int n, int k, const T *a, int lda, const T *bp, T *c, \
                              int ldc) {                                                  \
        if (k <= 0) return;                                                               \
        gemm_##SFX(m, n, k, a, lda, bp, 0, a, lda, bp, c, ldc, 1);                        \
    }                                                                                     \
    void ln_gemm_packed2_##SFX(int m, int n, int k1, const T *a1, int lda1, const T *bp1, \
                               int k2, const T *a2, int lda2, const T *bp2, T *c,         \
                               int ldc) {                                                 \
        gemm_##SFX(m, n, k1, a1, lda1, bp1, k2, a2, lda2, bp2, c, ldc, 0);                \
    }
DEFINE_ENTRIES(f32, float)
DEFINE_ENTRIES(f64, double)
