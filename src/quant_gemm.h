/* Reduced-precision GEMMs of quantized inference: int8 and bfloat16, on pre-packed weights.
 *
 * int8. Weights are signed 8-bit with one symmetric scale per output row (a row of W is
 * a column of C here): W[j, :] ≈ s_w[j] · Wq[j, :]. Activations are quantized per row of
 * A as it comes (x_t and h_{t-1} of one batch row, one step), unsigned 8-bit with a zero
 * point: a[i, :] ≈ s_a[i] · (q[i, :] − z[i]). The product of the two is then
 *     C[i, j] = (float)(Σ_k q[i,k]·Wq[j,k] − z[i]·Σ_k Wq[j,k]) · s_a[i] · s_w[j]
 * with the sum in int32 (exact for k ≤ LN_Q8_MAX_K), the weight-row sums Σ_k Wq[j,k]
 * computed when packing, and the two multiplications in float32 in that order. u8 · s8
 * is what VNNI's vpdpbusd multiplies, four k at a time, into int32 without saturation
 * (AVX2's vpmaddubsw would saturate its 16-bit pair sums, so it is not used).
 *
 * bfloat16. Weights and activations are rounded to bfloat16 (nearest even; a float32
 * subnormal becomes a signed zero, as the hardware's dot product reads one) and
 * multiplied in pairs of k, C[i, j] += Σ over pairs p of (a[2p+1]·b[2p+1], then
 * a[2p]·b[2p]), each added to a float32 sum in that order: vdpbf16ps's definition. A
 * bfloat16 product is exact in float32, so the portable kernel, which does the same
 * additions, gives the same bits except where a partial sum falls below float32's
 * smallest normal (the instruction flushes those to zero).
 *
 * Packing. Weights are packed once, in panels of LN_Q_NB output columns with the k of
 * one instruction together: int8 [n/16][k/4][16][4] bytes, bfloat16 [n/16][k/2][16][2]
 * (64 bytes per group of k, one 512-bit load), zero past column n up to a multiple of
 * LN_Q_TILE_COLS and past k up to the group. A rows are read in whole groups too: their
 * length `lda` must cover k rounded up to the group (any values there; they meet zero
 * weights). Each element of C is summed over k in the same order by every kernel and
 * for any row count, so threads may split rows freely.
 *
 * Kernels: 512-bit VNNI and AVX512_BF16, 256-bit VNNI (AVX-VNNI, or AVX512-VNNI's
 * 256-bit form on a CPU without AVX-VNNI, so that both can be tested on one machine),
 * and portable C for every other CPU, chosen once at load time (cpu_features.h).
 */
#ifndef LSTM_NATIVE_QUANT_GEMM_H
#define LSTM_NATIVE_QUANT_GEMM_H

#include <stddef.h>
#include <stdint.h>

#define LN_Q_NB 16                   /* output columns per panel */
#define LN_Q_TILE_COLS (4 * LN_Q_NB) /* what packed buffers are padded to */
#define LN_Q8_GROUP 4                /* k per vpdpbusd lane */
#define LN_BF16_GROUP 2              /* k per vdpbf16ps lane */
/* The longest k whose int32 sums cannot overflow: 255 · 128 · k < 2^31. */
#define LN_Q8_MAX_K 65536

/* k rounded up to its group: the length of an A row (and the least lda). */
int ln_q8_row_length(int k);
int ln_bf16_row_length(int k);

/* Elements (bytes / uint16) of the packed form of W (n × k). */
size_t ln_q8_packed_size(int k, int n);
size_t ln_bf16_packed_size(int k, int n);

/* Pack W (n rows × k, row-major, ldw) into bp; int8 also writes the row sums (n). */
void ln_q8_pack(int k, int n, const int8_t *w, int ldw, int8_t *bp, int32_t *row_sums);
void ln_bf16_pack(int k, int n, const uint16_t *w, int ldw, uint16_t *bp);

/* Quantize m rows of k floats (lda apart) to u8 (ldq apart): per row i,
 *   lo = min(0, min_k a), hi = max(0, max_k a), s = (hi − lo) / 255 (1 when hi = lo),
 *   z = rint(−lo / s), q = clamp(rint(a / s) + z, 0, 255)   (rint: nearest even),
 * all in float32; scale[i] = s, zero[i] = z. The values must be finite. */
void ln_q8_quantize_rows(int m, int k, const float *a, int lda, uint8_t *q, int ldq,
                         float *scale, int32_t *zero);
/* Round m rows of k floats (lda apart) to bfloat16 bit patterns (ldq apart). */
void ln_bf16_round_rows(int m, int k, const float *a, int lda, uint16_t *q, int ldq);
/* One float to bfloat16 and back (the weights' rounding, and the tests'). */
uint16_t ln_bf16_from_float(float x);
float ln_bf16_to_float(uint16_t b);

/* C (m × n, ldc) = or += (accumulate) the int8 product above: A quantized by
 * ln_q8_quantize_rows, B packed by ln_q8_pack (with its row sums and scales). */
void ln_q8_gemm(int m, int n, int k, const uint8_t *a, int lda, const float *a_scale,
                const int32_t *a_zero, const int8_t *bp, const int32_t *row_sums,
                const float *w_scale, float *c, int ldc, int accumulate);
/* C (m × n, ldc) = or += A (bfloat16, m × k) · B (packed by ln_bf16_pack). */
void ln_bf16_gemm(int m, int n, int k, const uint16_t *a, int lda, const uint16_t *bp,
                  float *c, int ldc, int accumulate);

/* The kernels chosen: "avx512-vnni", "avx2-vnni" or "portable"; "avx512-bf16" or
 * "portable". */
const char *ln_q8_kernel_name(void);
const char *ln_bf16_kernel_name(void);

#endif
