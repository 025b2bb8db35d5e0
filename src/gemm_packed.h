/* The small GEMM of every recurrent step, on a pre-packed weight matrix.
 *
 * Why not BLAS: per step the recurrent GEMM has few rows (a thread's share of the
 * batch, often 1..32) against a large weight matrix. A BLAS call repacks the whole
 * weight matrix on every call, which costs as much as the arithmetic at these shapes
 * and is repeated T times. Here the weights are packed once per sequence into panels
 * of NB columns, [n / NB][k][NB], zero-padded to a multiple of 4·NB columns, and a
 * register-blocked SIMD kernel streams them. A packed buffer should start on a 64-byte
 * boundary (LN_PACKED_ALIGN): the panels are then whole cache lines, and no vector load
 * of them straddles two lines.
 *
 * The kernels are compiled for AVX-512 and AVX2+FMA and chosen at run time by the CPU
 * (cpu_features.h; a portable C version otherwise), so one wheel runs on any x86-64. Each element of C
 * is summed over k in order with one fused multiply-add per term, whatever the row
 * count, so splitting rows between threads does not change the result.
 */
#ifndef LSTM_NATIVE_GEMM_PACKED_H
#define LSTM_NATIVE_GEMM_PACKED_H

#include <stddef.h>

/* Where a packed buffer should start, in bytes (see above). */
#define LN_PACKED_ALIGN 64

/* Panel widths (columns): one 512-bit vector. */
#define LN_NB_F32 16
#define LN_NB_F64 8
/* Columns the packed buffer is zero-padded to a multiple of: the widest tile of any
 * kernel (four vectors of 512 bits), which may read past the last column. */
#define LN_TILE_COLS_F32 (4 * LN_NB_F32)
#define LN_TILE_COLS_F64 (4 * LN_NB_F64)

/* Where panel col / NB of a packed k × n matrix starts, in elements from the start of the
 * buffer: `col` is a column index, a multiple of NB for the panel to start at it. From a
 * column that is a multiple of LN_TILE_COLS_*, the rest of the buffer is the packed form of
 * columns col.. on its own, which ln_gemm_packed_* may take (its tiles read no further
 * than the padding): how a thread computes a block of columns. */
#define LN_PACKED_PANEL_OFFSET(k, col, NB) ((size_t)((col) / (NB)) * (size_t)(k) * (NB))
static inline size_t ln_packed_panel_offset_f32(int k, int col) {
    return LN_PACKED_PANEL_OFFSET(k, col, LN_NB_F32);
}
static inline size_t ln_packed_panel_offset_f64(int k, int col) {
    return LN_PACKED_PANEL_OFFSET(k, col, LN_NB_F64);
}

/* Elements of the packed buffer for a k × n matrix. */
size_t ln_packed_size_f32(int k, int n);
size_t ln_packed_size_f64(int k, int n);

/* Pack B (k × n), element (kk, j) at b[kk * s_k + j * s_n], into bp. */
void ln_pack_f32(int k, int n, const float *b, ptrdiff_t s_k, ptrdiff_t s_n, float *bp);
void ln_pack_f64(int k, int n, const double *b, ptrdiff_t s_k, ptrdiff_t s_n, double *bp);

/* C (m × n, row-major, ldc) += A (m × k, row-major, lda) · B, B packed by ln_pack_*. */
void ln_gemm_packed_f32(int m, int n, int k, const float *a, int lda, const float *bp,
                        float *c, int ldc);
void ln_gemm_packed_f64(int m, int n, int k, const double *a, int lda, const double *bp,
                        double *c, int ldc);

/* C = A1 · B1 + A2 · B2 (C written, not read), A1 m × k1 and A2 m × k2 row-major, B1
 * and B2 packed by ln_pack_* with the same n: a step's input projection and recurrent
 * product in one pass, x_t · W_ihᵀ + h_{t-1} · W_hhᵀ. Each element is the sum over A1's
 * terms then A2's, in order, one fused multiply-add per term, from zero. Why one kernel:
 * the step's gates are written once, straight from the registers, where a projection
 * of many steps ahead writes them to memory, out of the caches, and the recurrence reads
 * them back; and the tiles run 2-3x longer between their stores. */
void ln_gemm_packed2_f32(int m, int n, int k1, const float *a1, int lda1, const float *bp1,
                         int k2, const float *a2, int lda2, const float *bp2, float *c,
                         int ldc);
void ln_gemm_packed2_f64(int m, int n, int k1, const double *a1, int lda1,
                         const double *bp1, int k2, const double *a2, int lda2,
                         const double *bp2, double *c, int ldc);

#endif
