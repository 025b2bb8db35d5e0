"""Quantized inference kernels: the recurrent layers and linear heads in int8 or bfloat16.

Design notes (the math is quant_gemm.h's, written out in lstm_native.reference.quantized):
- Only the GEMMs change precision. The input projection X·W_ihᵀ and each step's
  h_{t-1}·W_hhᵀ run on quantized weights packed once (by `pack_int8` /
  `pack_bfloat16`, when the model is quantized) and on activations quantized row by row
  as they come: x_t and h_{t-1} of one batch row at one step, so no thread waits for
  another's rows. Their results, and the gate math after them (the same fused passes
  as the float32 layers: lstm_cell.c, gru_cell.c, rnn_cell.c), are float32.
- The data flow is _recurrent.forward_layer's in inference: threads each take their own
  batch rows through the steps (no barrier), the state in one slot updated in place.
  While the packed W_ih and W_hh take at most FUSED_MAX_BYTES, each step first projects
  its own rows of x_t into one step of gates, which stay in cache for the recurrent
  product and the gate pass (no pass over a big scratch, no team of threads started per
  chunk; 2 threads, side by side in two runs: int8 A 0.95-0.96x the time of the
  projection ahead, B 0.82-0.99x, E's layer 0.97-1.00x, D 1.03-1.04x; bfloat16 A, B, D,
  E's layer 0.92-0.97x); larger weights, which each step would read from memory, have
  the input projection of a chunk of steps done first, the threads sharing its rows,
  into a scratch of at most CHUNK_BYTES that the steps read back from cache. The GRU's
  n rows of W_hh are packed on their own (reset after: their product goes to `side`,
  which r multiplies; reset before: a second product of r ⊙ h_{t-1}, quantized in
  turn).
- Threads split rows only, and every element of a product is the same sum whoever
  computes it, so any thread count gives the same bits.
"""
import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport int8_t, uint8_t, uint16_t, int32_t, int64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset

from _cpu_features cimport ln_isa_name
from _lstm_cell cimport lstm_forward_row
from _rnn_cell cimport rnn_forward_row
from _gru_cell cimport gru_forward_row, gru_reset_row, gru_update_row

cdef extern from "cpu_features.h" nogil:
    const char* ln_level_name()

cdef extern from "quant_gemm.h" nogil:
    int LN_Q8_MAX_K
    int ln_q8_row_length(int k)
    int ln_bf16_row_length(int k)
    size_t ln_q8_packed_size(int k, int n)
    size_t ln_bf16_packed_size(int k, int n)
    void ln_q8_pack(int k, int n, const int8_t* w, int ldw, int8_t* bp, int32_t* row_sums)
    void ln_bf16_pack(int k, int n, const uint16_t* w, int ldw, uint16_t* bp)
    void ln_q8_quantize_rows(int m, int k, const float* a, int lda, uint8_t* q, int ldq,
                             float* scale, int32_t* zero)
    void ln_bf16_round_rows(int m, int k, const float* a, int lda, uint16_t* q, int ldq)
    uint16_t ln_bf16_from_float(float x)
    void ln_q8_gemm(int m, int n, int k, const uint8_t* a, int lda, const float* a_scale,
                    const int32_t* a_zero, const int8_t* bp, const int32_t* row_sums,
                    const float* w_scale, float* c, int ldc, int accumulate)
    void ln_bf16_gemm(int m, int n, int k, const uint16_t* a, int lda, const uint16_t* bp,
                      float* c, int ldc, int accumulate)
    const char* ln_q8_kernel_name()
    const char* ln_bf16_kernel_name()


# The cell kinds, as lstm_native._recurrent.Cell numbers them.
cdef enum:
    LSTM = 0
    RNN_TANH = 1
    RNN_RELU = 2
    GRU = 3
    GRU_RESET_BEFORE = 4

cdef enum:
    # The gates of a chunk of steps (its input projection's output, float32): the steps
    # read them back while they are in cache (L2 and L3), where a chunk of 1024 rows
    # (16 MiB on C) went to memory and back: C 20.7 -> 17.8 ms at 2 threads in int8.
    CHUNK_BYTES = 2 << 20
    # Packed weights (W_ih, W_hh) up to this size are read by every step (FUSED below).
    FUSED_MAX_BYTES = 4 << 20
    # A thread is only worth waking for this much work (multiply-adds), as in _recurrent.
    MIN_WORK_PER_THREAD = 200000

MAX_K = LN_Q8_MAX_K


def kernels():
    """The level the kernels run (cpu_features.h) and the int8 and bfloat16 kernels it
    chose: {"level": ..., "float": ..., "int8": ..., "bfloat16": ...}."""
    return {"level": ln_level_name().decode(), "float": ln_isa_name().decode(),
            "int8": ln_q8_kernel_name().decode(), "bfloat16": ln_bf16_kernel_name().decode()}


# ---------------------------------------------------------------------------------------
# Weights and activations
# ---------------------------------------------------------------------------------------

def pack_int8(const int8_t[:, ::1] w):
    """W (n × k, int8, a row per output) packed for `ln_q8_gemm`, and its row sums."""
    cdef int n = <int> w.shape[0], k = <int> w.shape[1]
    if k > LN_Q8_MAX_K or n < 1 or k < 1:
        raise ValueError(f"an int8 weight needs 1..{LN_Q8_MAX_K} columns and a row, got "
                         f"{(n, k)}")
    packed = np.empty(ln_q8_packed_size(k, n), np.int8)
    row_sums = np.empty(n, np.int32)
    cdef int8_t[::1] bp = packed
    cdef int32_t[::1] sums = row_sums
    ln_q8_pack(k, n, &w[0, 0], k, &bp[0], &sums[0])
    return packed, row_sums


def pack_bfloat16(const uint16_t[:, ::1] w):
    """W (n × k, bfloat16 bit patterns) packed for `ln_bf16_gemm`."""
    cdef int n = <int> w.shape[0], k = <int> w.shape[1]
    if n < 1 or k < 1:
        raise ValueError(f"a bfloat16 weight needs a row and a column, got {(n, k)}")
    packed = np.empty(ln_bf16_packed_size(k, n), np.uint16)
    cdef uint16_t[::1] bp = packed
    ln_bf16_pack(k, n, &w[0, 0], k, &bp[0])
    return packed


def to_bfloat16(const float[::1] x):
    """float32 values rounded to bfloat16 bit patterns (nearest even, subnormals to ±0)."""
    out = np.empty(x.shape[0], np.uint16)
    cdef uint16_t[::1] o = out
    cdef Py_ssize_t i
    for i in range(x.shape[0]):
        o[i] = ln_bf16_from_float(x[i])
    return out


def quantize_rows_int8(const float[:, ::1] a):
    """The rows of `a` as the int8 GEMM reads them: (u8 codes (m, k rounded up to 4),
    scales (m,), zero points (m,))."""
    cdef int m = <int> a.shape[0], k = <int> a.shape[1]
    cdef int kpad = ln_q8_row_length(k)
    q = np.zeros((m, kpad), np.uint8)
    scale = np.empty(m, np.float32)
    zero = np.empty(m, np.int32)
    cdef uint8_t[:, ::1] qv = q
    cdef float[::1] sv = scale
    cdef int32_t[::1] zv = zero
    if m and k:
        ln_q8_quantize_rows(m, k, &a[0, 0], k, &qv[0, 0], kpad, &sv[0], &zv[0])
    return q, scale, zero


def round_rows_bfloat16(const float[:, ::1] a):
    """The rows of `a` as the bfloat16 GEMM reads them ((m, k rounded up to 2))."""
    cdef int m = <int> a.shape[0], k = <int> a.shape[1]
    cdef int kpad = ln_bf16_row_length(k)
    q = np.zeros((m, kpad), np.uint16)
    cdef uint16_t[:, ::1] qv = q
    if m and k:
        ln_bf16_round_rows(m, k, &a[0, 0], k, &qv[0, 0], kpad)
    return q


cdef struct QMat:
    # A packed weight matrix of n outputs over k inputs: int8 (packed, row sums, scales)
    # or bfloat16 (packed alone).
    bint int8
    int k, n
    const void* packed
    const int32_t* row_sums
    const float* scale


cdef QMat _qmat(object weight, int k, int n, str name) except *:
    """The QMat of `weight`: ("int8", packed, row_sums, scale) or ("bfloat16", packed),
    checked against k inputs and n outputs."""
    cdef QMat q
    cdef const int8_t[::1] p8
    cdef const uint16_t[::1] p16
    cdef const int32_t[::1] sums
    cdef const float[::1] scale
    q.k, q.n = k, n
    if weight[0] == "int8":
        p8, sums, scale = weight[1], weight[2], weight[3]
        if (<size_t> p8.shape[0] != ln_q8_packed_size(k, n) or sums.shape[0] != n
                or scale.shape[0] != n):
            raise ValueError(f"{name}: packed int8 weight of the wrong size for {n} × {k}")
        q.int8, q.packed, q.row_sums, q.scale = True, &p8[0], &sums[0], &scale[0]
    elif weight[0] == "bfloat16":
        p16 = weight[1]
        if <size_t> p16.shape[0] != ln_bf16_packed_size(k, n):
            raise ValueError(f"{name}: packed bfloat16 weight of the wrong size for {n} × {k}")
        q.int8, q.packed, q.row_sums, q.scale = False, &p16[0], NULL, NULL
    else:
        raise ValueError(f"{name}: unknown precision {weight[0]!r}")
    return q


cdef inline int _row_bytes(bint int8, int k) noexcept nogil:
    """Bytes of one quantized row of k activations."""
    return ln_q8_row_length(k) if int8 else 2 * ln_bf16_row_length(k)


cdef inline void _quantize(bint int8, int m, int k, const float* a, int lda, uint8_t* buf,
                           float* scale, int32_t* zero) noexcept nogil:
    """m rows of activations into buf (_row_bytes apart), with their scales and zero
    points for int8."""
    if int8:
        ln_q8_quantize_rows(m, k, a, lda, buf, ln_q8_row_length(k), scale, zero)
    else:
        ln_bf16_round_rows(m, k, a, lda, <uint16_t*> buf, ln_bf16_row_length(k))


cdef inline void _qgemm(const QMat* w, int m, const uint8_t* buf, const float* scale,
                        const int32_t* zero, float* c, int ldc, bint accumulate) noexcept nogil:
    """C (m × w.n) = or += the rows in buf (as _quantize left them) times Wᵀ."""
    if w.int8:
        ln_q8_gemm(m, w.n, w.k, buf, ln_q8_row_length(w.k), scale, zero,
                   <const int8_t*> w.packed, w.row_sums, w.scale, c, ldc, accumulate)
    else:
        ln_bf16_gemm(m, w.n, w.k, <const uint16_t*> buf, ln_bf16_row_length(w.k),
                     <const uint16_t*> w.packed, c, ldc, accumulate)


cdef inline int _workers(int n_threads, Py_ssize_t n_items, double work) noexcept nogil:
    """Threads for n_items independent items of `work` multiply-adds in all."""
    cdef Py_ssize_t n = <Py_ssize_t> (work / MIN_WORK_PER_THREAD)
    if n > n_items:
        n = n_items
    if n > n_threads:
        n = n_threads
    return <int> (n if n > 1 else 1)


cdef inline Py_ssize_t _chunk_start(Py_ssize_t k, Py_ssize_t n_chunks, Py_ssize_t n) noexcept nogil:
    return k * n // n_chunks


cdef void _project_rows(const QMat* w, Py_ssize_t r0, Py_ssize_t r1, const float* x,
                        uint8_t* buf, float* scale, int32_t* zero, float* c,
                        bint accumulate) noexcept nogil:
    """Rows r0..r1 of C = (or +=) X·Wᵀ (C w.n wide, buf/scale/zero the rows' scratch)."""
    cdef int rb = _row_bytes(w.int8, w.k)
    _quantize(w.int8, <int> (r1 - r0), w.k, x + r0 * w.k, w.k, buf + r0 * rb, scale + r0,
              zero + r0)
    _qgemm(w, <int> (r1 - r0), buf + r0 * rb, scale + r0, zero + r0, c + r0 * w.n, w.n,
           accumulate)


def linear(str precision, const float[:, ::1] x, tuple weight, float[:, ::1] out,
           int n_threads, bint accumulate=False):
    """out = (or += with `accumulate`) x · Wᵀ (no bias) for the rows of x, W a packed
    weight in `precision` as in forward_layer."""
    cdef Py_ssize_t m = x.shape[0]
    cdef QMat w = _qmat(weight, <int> x.shape[1], <int> out.shape[1], "weight")
    if w.int8 != (precision == "int8"):
        raise ValueError(f"weight is not a packed {precision} weight")
    if out.shape[0] != m:
        raise ValueError(f"out must have {m} rows, got {out.shape[0]}")
    if m == 0:
        return
    cdef int rb = _row_bytes(w.int8, w.k)
    cdef int n_parts = _workers(n_threads, m, <double> m * w.n * w.k)
    cdef Py_ssize_t k
    cdef uint8_t* buf = <uint8_t*> malloc(m * rb)
    cdef float* scale = <float*> malloc(m * sizeof(float))
    cdef int32_t* zero = <int32_t*> malloc(m * sizeof(int32_t))
    try:
        if buf == NULL or scale == NULL or zero == NULL:
            raise MemoryError("no memory for the quantized rows")
        with nogil:
            for k in prange(n_parts, num_threads=n_parts, schedule='static'):
                _project_rows(&w, _chunk_start(k, n_parts, m), _chunk_start(k + 1, n_parts, m),
                              &x[0, 0], buf, scale, zero, &out[0, 0], accumulate)
    finally:
        free(buf)
        free(scale)
        free(zero)


# ---------------------------------------------------------------------------------------
# The recurrence
# ---------------------------------------------------------------------------------------

cdef inline void _cell_step(int cell, float* gates, const float* bias, const float* bias_hn,
                            float* side, float* h, float* c, float* out, Py_ssize_t H,
                            bint active) noexcept nogil:
    """One row of one step after its products (see _recurrent._cell_forward): the state
    updated in place, h_t into out; past the sequence's end the state stays and out is
    zero. The GRU with the reset before: the second of its passes."""
    if not active:
        memset(out, 0, H * sizeof(float))
        return
    if cell == LSTM:
        lstm_forward_row(<int> H, <int> H, gates, bias, c, h, c, out)
    elif cell == GRU:
        gru_forward_row(<int> H, <int> H, gates, bias, bias_hn, side, h, h, out)
    elif cell == GRU_RESET_BEFORE:
        gru_update_row(<int> H, <int> H, gates, bias, h, h, out)
    else:
        rnn_forward_row(cell == RNN_RELU, <int> H, gates, bias, h, out)


cdef void _recurrence_rows(
    int cell, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t t_base,
    Py_ssize_t T, Py_ssize_t B, Py_ssize_t H, Py_ssize_t G,
    const QMat* w_hh, const QMat* w_hn, const float* bias, const float* bias_hn,
    const int64_t* lengths, float* gates, float* side, float* h, float* c, float* out,
    Py_ssize_t ldo, uint8_t* hbuf, float* hscale, int32_t* hzero, bint reverse,
    const QMat* w_ih, const float* x, uint8_t* xbuf, float* xscale, int32_t* xzero,
) noexcept nogil:
    """Rows r0..r1 of the batch through steps s0..s1; `gates` holds the steps from time
    t_base on, the input projection in; side: B × H scratch for the GRU. With x (all
    T·B input rows), each step projects its own rows first instead, into `gates`, one
    step of B × G (x_t's rows quantized into xbuf, xscale, xzero at their rows)."""
    cdef Py_ssize_t s, t, r
    cdef int m = <int> (r1 - r0)
    cdef int rb = _row_bytes(w_hh.int8, <int> H)
    cdef float* g_t = gates
    cdef uint8_t* hb = hbuf + r0 * rb
    cdef float* hs = hscale + r0
    cdef int32_t* hz = hzero + r0
    for s in range(s0, s1):
        t = T - 1 - s if reverse else s
        if x != NULL:
            # gates[t] = q(x_t) · W_ihᵀ for these rows: the same sums as the projection
            # ahead, the step's gates still in cache for what follows
            _project_rows(w_ih, r0, r1, x + t * B * w_ih.k, xbuf, xscale, xzero, gates,
                          False)
        else:
            g_t = gates + (t - t_base) * B * G
        # gates[t] += q(h_{t-1}) · W_hhᵀ (the GRU: its r and z rows)
        _quantize(w_hh.int8, m, <int> H, h + r0 * H, <int> H, hb, hs, hz)
        _qgemm(w_hh, m, hb, hs, hz, g_t + r0 * G, <int> G, True)
        if cell == GRU:
            # side = q(h_{t-1}) · W_hnᵀ, which r multiplies
            _qgemm(w_hn, m, hb, hs, hz, side + r0 * H, <int> H, False)
        elif cell == GRU_RESET_BEFORE:
            # r first, then n's columns += q(r ⊙ h_{t-1}) · W_hnᵀ
            for r in range(r0, r1):
                gru_reset_row(<int> H, g_t + r * G, bias, h + r * H, side + r * H)
            _quantize(w_hh.int8, m, <int> H, side + r0 * H, <int> H, hb, hs, hz)
            _qgemm(w_hn, m, hb, hs, hz, g_t + r0 * G + 2 * H, <int> G, True)
        for r in range(r0, r1):
            _cell_step(cell, g_t + r * G, bias, bias_hn, side + r * H if side != NULL else NULL,
                       h + r * H, c + r * H if c != NULL else NULL, out + (t * B + r) * ldo,
                       H, t < lengths[r])


def forward_layer(
    int cell,                        # IN    a lstm_native._recurrent.Cell
    const float[:, ::1] x,           # IN    (T·B, I) input rows, time-major
    tuple w_ih,                      # IN    W_ih (G × I) packed: ("int8", packed, row sums,
                                     #       scales) or ("bfloat16", packed)
    tuple w_hh,                      # IN    the rows of W_hh summed into the gates (all
                                     #       G, or the GRU's r and z: 2H), packed
    tuple w_hn,                      # IN    the GRU's n rows of W_hh (H × H) packed; None
    const float[::1] bias,           # IN    (G,) as _recurrent.forward_layer's
    const float[::1] bias_hn,        # IN    (H,) the GRU's b_hn (reset after); else None
    const int64_t[::1] lengths,      # IN    (B,) valid steps of each sequence, 1..T
    float[:, ::1] h,                 # INOUT (B, H) h0 in, the final h out
    float[:, ::1] c,                 # INOUT (B, H) the LSTM's c0 / final c; else None
    float[:, ::1] out,               # OUT   (T·B, D·H), columns out_col .. out_col+H
    Py_ssize_t out_col,
    bint reverse,
    int n_threads,
    int fuse=-1,                     # 1: each step projects its own x_t, 0: chunks of
                                     #    steps are projected ahead, -1: by the weights' size
):
    """Run one direction of one layer over the whole sequence in int8 or bfloat16 (the
    precision of the packed weights; all three the same)."""
    cdef Py_ssize_t B = lengths.shape[0]
    cdef Py_ssize_t T = x.shape[0] // B if B else 0
    cdef Py_ssize_t I = x.shape[1], H = h.shape[1]
    cdef bint gru = cell == GRU or cell == GRU_RESET_BEFORE
    cdef Py_ssize_t n_gates = 4 if cell == LSTM else 3 if gru else 1
    cdef Py_ssize_t G = n_gates * H
    cdef QMat q_ih = _qmat(w_ih, <int> I, <int> G, "w_ih")
    cdef QMat q_hh = _qmat(w_hh, <int> H, <int> (2 * H if gru else G), "w_hh")
    cdef QMat q_hn
    if cell < LSTM or cell > GRU_RESET_BEFORE:
        raise ValueError(f"unknown cell kind {cell}")
    if gru:
        q_hn = _qmat(w_hn, <int> H, <int> H, "w_hn")
    if q_ih.int8 != q_hh.int8 or (gru and q_hn.int8 != q_ih.int8):
        raise ValueError("w_ih, w_hh and w_hn must have the same precision")
    if B == 0 or T * B != x.shape[0]:
        raise ValueError(f"x must have a multiple of the batch's {B} rows, got {x.shape[0]}")
    if h.shape[0] != B or (c is not None) != (cell == LSTM) or (
            c is not None and (c.shape[0] != B or c.shape[1] != H)):
        raise ValueError(f"h must be ({B}, {H}), c the same for the LSTM and None otherwise")
    if bias.shape[0] != G or (bias_hn is not None) != (cell == GRU) or (
            bias_hn is not None and bias_hn.shape[0] != H):
        raise ValueError(f"bias must be ({G},), bias_hn ({H},) for Cell.GRU and None otherwise")
    if out.shape[0] != T * B or out.shape[1] < out_col + H or out_col < 0:
        raise ValueError(f"out must be ({T * B}, at least {out_col + H})")
    cdef int xb = _row_bytes(q_ih.int8, <int> I), hb = _row_bytes(q_ih.int8, <int> H)
    cdef size_t weight_bytes = (<size_t> G * xb + <size_t> (2 * H if gru else G) * hb
                                + (<size_t> H * hb if gru else 0))
    cdef bint fused = fuse == 1 or (fuse < 0 and weight_bytes <= FUSED_MAX_BYTES)
    cdef Py_ssize_t chunk = T if fused else max(1, min(T, CHUNK_BYTES // (G * sizeof(float) * B)))
    cdef Py_ssize_t rows_max = B if fused else chunk * B
    cdef int n_row = _workers(n_threads, B, <double> T * B * G * (H + I if fused else H))
    cdef int n_proj
    cdef Py_ssize_t k, s0, s1, t0, rows
    cdef float* gates = <float*> malloc(rows_max * G * sizeof(float))
    cdef uint8_t* xbuf = <uint8_t*> malloc(rows_max * xb)
    cdef float* xscale = <float*> malloc(rows_max * sizeof(float))
    cdef int32_t* xzero = <int32_t*> malloc(rows_max * sizeof(int32_t))
    cdef uint8_t* hbuf = <uint8_t*> malloc(B * hb)
    cdef float* hscale = <float*> malloc(B * sizeof(float))
    cdef int32_t* hzero = <int32_t*> malloc(B * sizeof(int32_t))
    cdef float* side = <float*> malloc(B * H * sizeof(float)) if gru else NULL
    cdef float* c_ptr = &c[0, 0] if c is not None else NULL
    cdef const float* bias_hn_ptr = &bias_hn[0] if bias_hn is not None else NULL
    try:
        if (gates == NULL or xbuf == NULL or xscale == NULL or xzero == NULL or hbuf == NULL
                or hscale == NULL or hzero == NULL or (gru and side == NULL)):
            raise MemoryError("no memory for the quantized layer's scratch")
        with nogil:
            s0 = 0
            while s0 < T:
                s1 = s0 + chunk if s0 + chunk < T else T
                t0 = T - s1 if reverse else s0
                rows = (s1 - s0) * B
                if not fused:
                    # Input projection of the chunk's steps: threads share its rows.
                    n_proj = _workers(n_threads, rows, <double> rows * G * I)
                    for k in prange(n_proj, num_threads=n_proj, schedule='static'):
                        _project_rows(&q_ih, _chunk_start(k, n_proj, rows),
                                      _chunk_start(k + 1, n_proj, rows), &x[t0 * B, 0], xbuf,
                                      xscale, xzero, gates, False)
                # Recurrence: threads split the batch rows (fused: and project them).
                for k in prange(n_row, num_threads=n_row, schedule='static'):
                    _recurrence_rows(cell, _chunk_start(k, n_row, B),
                                     _chunk_start(k + 1, n_row, B), s0, s1, t0, T, B, H, G,
                                     &q_hh, &q_hn, &bias[0], bias_hn_ptr, &lengths[0], gates,
                                     side, &h[0, 0], c_ptr, &out[0, out_col], out.shape[1],
                                     hbuf, hscale, hzero, reverse, &q_ih,
                                     &x[0, 0] if fused else NULL, xbuf, xscale, xzero)
                s0 = s1
    finally:
        free(gates)
        free(xbuf)
        free(xscale)
        free(xzero)
        free(hbuf)
        free(hscale)
        free(hzero)
        free(side)
