"""Recurrent-layer kernels: forward and BPTT of one layer, in one direction, over a whole
sequence, for every cell kind (LSTM, the Elman RNN with tanh or ReLU, and the GRU with the
reset gate applied after or before the recurrent product).

Design notes (the algorithm of docs/algorithm.md):
- One driver, several cells. A cell has n_gates gate blocks of H columns, G = n_gates·H
  (4 for the LSTM, 1 for the RNN, 3 for the GRU) and maybe a cell state (the LSTM's c;
  the others have none, their c buffers are None). The data flow around the cell is the
  same for all; only the fused per-row pass differs, picked by `cell` once per row.
- The GRU's candidate n. Its recurrent term is not summed with the input projection: r
  multiplies it (n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))), or r multiplies h
  before it (reset before: n = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)). So W_hh is
  packed in two parts, the rows of the gates that are summed (all of them for the LSTM
  and the RNN, r and z for the GRU) and the GRU's n rows, and the n rows' recurrent term
  has its own buffer `side` of H columns: W_hn h + b_hn (reset after; backward turns it
  into its gradient r ⊙ da_n), or r ⊙ h, the input of a second step GEMM into n's
  columns of the gates (reset before). The input projection, dW_ih, dX and b_ih's
  gradient stay single GEMMs and sums over the gates; dW_hh and b_hh's gradient take
  the n rows from `side`. Each step runs the passes of gru_cell.c between the GEMMs.
- The LSTM's projection (LSTMP, torch's proj_size = P): the state h is P wide, c stays H
  wide, and W_hh is G × P. The cell pass writes m_t = o_t ⊙ tanh(c_t) (H wide) into
  `side`, then one more step GEMM projects it, h_t = m_t · W_hrᵀ, straight into the
  step's output rows, from where active rows copy it to their state slot. Backward first
  takes the gradient on h_t through the projection (one step GEMM, dm = dh·W_hr, which
  the cell pass reads as its dh), keeping every step's dh in `proj_grad` for dW_hr, one
  merged GEMM after the loop like the others.
- Forward. Batch rows are independent through time, so each thread takes its own block
  of rows through all T steps with no barrier. Per step one packed GEMM writes the
  step's gates, gates[t] = x_t·W_ihᵀ + h_{t-1}·W_hhᵀ (gemm_packed2: W_ih and W_hh packed
  once per call), then one fused elementwise pass (bias, the gates, the cell, the hidden
  output written straight into `out`); inference keeps one step of gates, which stay in
  cache from the GEMM to the pass. The GRU and the layer-normalised LSTM, whose
  recurrent products stay apart from the projection, and weights larger than
  FUSED_MAX_BYTES, project the input of all steps first instead, in one GEMM cut into row blocks that the threads share (in inference
  chunk by chunk of steps, so that the scratch does not grow with T), and the step GEMM
  adds h_{t-1}·W_hhᵀ (beta = 1). With few rows per thread and a W_hh larger than a
  core's L2, the threads split hidden units instead (_forward_units), one barrier after
  each step's GEMM and pass.
- Backward (BPTT). Per step, in reverse, the fused pass turns step t's activated gates into
  their pre-activation gradients dG_t in place and dh_{t-1} += dG_t·W_hh. After the loop the
  parameter and input gradients are each one GEMM over all T·B rows (in blocks).
- Same bits for any thread count. The per-step GEMM and passes give each row the same
  operations whoever runs it, and the big BLAS calls are cut into blocks by the shape
  alone (see _gemm_parts), so 1 and 2 threads give bitwise equal results.
- States live in slots. Training keeps h (and c) of every step in (T+1) slots laid out in
  time order: the forward direction reads slot t and writes slot t+1, the reverse one reads
  slot t+1 and writes slot t, so h_{prev} of all steps is one contiguous (T·B, H) block for
  the dW_hh GEMM. Inference keeps a single slot, updated in place.
- Lengths. Row r is active at time t when t < lengths[r]. An inactive row carries its state
  unchanged, outputs zeros, and gets zero gate gradients. The reverse direction runs t = T-1
  down to 0, so it starts from h0 at each row's own last valid step.
- BLAS is called from inside OpenMP threads: the caller caps it at one thread (threadpoolctl).
- Small work runs on fewer threads (_n_workers): waking a thread costs microseconds on an
  idle machine and milliseconds on a busy one.
"""
from cython.parallel cimport prange, parallel
from cython cimport floating
from libc.stdint cimport int64_t
from libc.math cimport INFINITY
from libc.stdlib cimport calloc, malloc, free
from libc.string cimport memset

from _blas cimport gemm
from _openmp cimport omp_get_num_threads, omp_get_thread_num, ln_omp_barrier
from _gemm_packed cimport (LN_PACKED_ALIGN, packed_size, pack, gemm_packed, gemm_packed2,
                           packed_columns, tile_columns)
from _lstm_cell cimport (lstm_forward_row, lstm_backward_row, lstm_variant_forward_row,
                         lstm_variant_backward_row)
from _norm_lstm_cell cimport (LN_NORM_WIDTH, LN_NORM_ACC_WIDTH, norm_lstm_forward_row,
                              norm_lstm_backward_row)
from _rnn_cell cimport rnn_forward_row, rnn_backward_row
from _gru_cell cimport (gru_forward_row, gru_backward_row, gru_reset_row, gru_update_row,
                        gru_update_backward_row, gru_reset_backward_row)
from _simd_math cimport vexp, vsigmoid, vtanh
from _cpu_features cimport ln_isa_name

cdef extern from "stdlib.h" nogil:
    int posix_memalign(void** memptr, size_t alignment, size_t size)


cpdef enum Cell:
    # The cell kinds, `Cell.LSTM` etc. in Python.
    LSTM = 0
    RNN_TANH = 1
    RNN_RELU = 2
    GRU = 3                 # PyTorch's GRU: the reset gate after the recurrent product
    GRU_RESET_BEFORE = 4    # Keras reset_after=False, ONNX linear_before_reset=0


cdef Py_ssize_t _n_gates(Cell cell) except -1:
    """Gate blocks of H columns per row: 4 for the LSTM (i, f, g, o), 1 for the RNN, 3 for
    the GRU (r, z, n)."""
    if cell == LSTM:
        return 4
    if cell == RNN_TANH or cell == RNN_RELU:
        return 1
    if cell == GRU or cell == GRU_RESET_BEFORE:
        return 3
    raise ValueError(f"unknown cell kind {<int> cell}")


cdef inline bint _is_gru(Cell cell) noexcept nogil:
    return cell == GRU or cell == GRU_RESET_BEFORE


cdef inline Py_ssize_t _summed_rows(Cell cell, Py_ssize_t G, Py_ssize_t H) noexcept nogil:
    """The rows of W_hh whose recurrent term is summed into the gates (see "The GRU's
    candidate n" above): all G, or the GRU's r and z."""
    return 2 * H if _is_gru(cell) else G


cdef Py_ssize_t _check_layer(Cell cell, Py_ssize_t n_rows_w, Py_ssize_t H,
                             bint has_cell_state, bint has_side, bint has_proj) except -1:
    """G = n_gates·H, after checking that the weights, the cell-state buffers, the GRU's
    n buffers and the projection fit the cell (a guard against a caller's mistake: the
    API above checks the user's input)."""
    cdef Py_ssize_t G = _n_gates(cell) * H
    if n_rows_w != G:
        raise ValueError(f"cell kind {<int> cell} needs weights of {G} rows, got {n_rows_w}")
    if has_cell_state != (cell == LSTM):
        raise ValueError(f"cell kind {<int> cell}: the cell-state buffers c (and dc) must be "
                         + ("given" if cell == LSTM else "None"))
    if has_proj and cell != LSTM:
        raise ValueError(f"cell kind {<int> cell} has no projection: w_hr must be None")
    if has_side != (_is_gru(cell) or has_proj):
        raise ValueError(f"cell kind {<int> cell}: the buffer `side` (the GRU's n, the "
                         "projection's input) must be "
                         + ("given" if _is_gru(cell) or has_proj else "None"))
    return G


cdef Py_ssize_t _hidden_size(const floating[:, ::1] w_hh, const floating[:, ::1] w_hr,
                             Py_ssize_t* P) except -1:
    """H, and the state width P (H without a projection): W_hh is G × P, W_hr P × H."""
    P[0] = w_hh.shape[1]
    if w_hr is None:
        return P[0]
    if w_hr.shape[0] != P[0]:
        raise ValueError(f"w_hr must have {P[0]} rows (w_hh's columns), got {w_hr.shape[0]}")
    return w_hr.shape[1]


cdef inline Py_ssize_t _chunk_start(Py_ssize_t k, Py_ssize_t n_chunks, Py_ssize_t n) noexcept nogil:
    """First item of chunk k when n items are split into n_chunks near-equal chunks."""
    return k * n // n_chunks


# The big BLAS calls are cut into parts by the shape alone, never by the thread count:
# BLAS may sum in another order for another shape (OpenBLAS switches to its small-matrix
# kernels below a size), so the threads share out parts whose calls are the same for any
# thread count, and the results are bitwise equal for 1 and 2 threads.
# Each part's call packs the whole of the operand the parts share again, so a GEMM is cut
# into two parts only (one per core of the machines we target; a 1-thread run pays one
# extra packing, 0-5%), along the longer side of C: the shared operand is then the
# smaller one. Measured on the standard shapes (1 thread): 6-8 parts cost 5-25% more
# than one call, 2 parts 0-5%.
cdef enum:
    GEMM_PARTS = 2
    MIN_PART = 16            # rows or columns of C per part, at least
    # Inference projects the input in chunks of steps, so that its scratch does not grow
    # with T: chunks of about this many rows (steps × batch) ...
    INFERENCE_CHUNK_ROWS = 1024
    # ... or of this many when W_ih has fewer than SMALL_W_IH elements. BLAS packs W_ih
    # again for each chunk, which large chunks amortise; a small W_ih costs little to pack,
    # and a small chunk's gates stay in L2 until the recurrence reads them (F: 256 KiB).
    # Measured, 1 thread: F 7.0 -> 5.8 ms; at 256 rows B lost 2% (W_ih 1024 x 256), C 3-8%.
    INFERENCE_CHUNK_ROWS_SMALL = 256
    SMALL_W_IH = 1 << 16
    # A thread is only worth waking for this much work (multiply-adds, about 20-50 µs):
    # below it, waking a second thread on a busy machine costs more than it saves.
    MIN_WORK_PER_THREAD = 200000
    # The fused elementwise pass's work per gate value, counted as this many multiply-adds
    # (a gate value goes through a sigmoid or a tanh: an exp and a division): a rough
    # weight beside the step GEMM's H multiply-adds per gate value, for _recurrence_work.
    CELL_PASS_WORK_PER_GATE = 10
    # The recurrence splits hidden units between threads instead of batch rows when each
    # thread would have at most this many rows (the AVX-512 register tile of the step GEMM
    # had 8 rows when this was chosen; it has 6 now, and the bound was not measured again) ...
    UNIT_SPLIT_MAX_ROWS = 8
    # ... and W_hh is larger than a core's L2 (1 MiB here): split by rows, every thread
    # would stream all of it from L3 or memory at every step; split by units, half.
    UNIT_SPLIT_MIN_BYTES = 1 << 20
    # The step GEMM projects the input too (see "Forward" above) while W_ih and W_hh
    # together take at most this much, half the L3 (32 MiB here): then every step reads
    # them from L3. Larger, every step would read W_ih from memory, where the projection
    # ahead reads it once per block of rows. Measured on C (W_ih and W_hh: 32 MiB), the
    # step GEMM with the projection took 1.1-1.2x the time of the two apart, 1 and 2
    # threads.
    FUSED_MAX_BYTES = 1 << 24


cdef inline int _n_chunks(int n_threads, Py_ssize_t n) noexcept nogil:
    """Threads are capped at the number of items to share out."""
    if n_threads > n:
        return <int> n
    return n_threads if n_threads > 0 else 1


cdef inline int _n_workers(int n_threads, Py_ssize_t n_items, double work) noexcept nogil:
    """Threads for n_items independent items of `work` multiply-adds in all: at most one
    per item, and none idling on too little work."""
    cdef Py_ssize_t by_work = <Py_ssize_t> (work / MIN_WORK_PER_THREAD)
    if by_work < n_items:
        n_items = by_work if by_work > 1 else 1
    return _n_chunks(n_threads, n_items)


cdef inline double _recurrence_work(Py_ssize_t T, Py_ssize_t B, Py_ssize_t H,
                                    Py_ssize_t G, Py_ssize_t P, bint proj,
                                    Py_ssize_t I) noexcept nogil:
    """Multiply-adds of the recurrence, for _n_workers: per step and batch row, the step
    GEMM's G·(I + P) (I = 0 when the input is projected before the recurrence), the
    projection's P·H and the elementwise pass's CELL_PASS_WORK_PER_GATE per gate value."""
    return <double> T * B * (G * (I + P) + (P * H if proj else 0)
                             + CELL_PASS_WORK_PER_GATE * G)


cdef inline int _unit_split_threads(int n_threads, Py_ssize_t B, Py_ssize_t H,
                                    Py_ssize_t G, Py_ssize_t P, Py_ssize_t itemsize,
                                    Py_ssize_t unit_align) noexcept nogil:
    """Threads that split the hidden units of the recurrence (see _forward_units), or 0
    to split the batch rows: few rows per thread and a W_hh (G × P) too large for a
    core's L2. Each thread owns whole blocks of unit_align units."""
    cdef Py_ssize_t n_blocks = H // unit_align
    if n_threads < 2 or H % unit_align != 0 or n_blocks < 2:
        return 0
    if (B + n_threads - 1) // n_threads > UNIT_SPLIT_MAX_ROWS:
        return 0
    if G * P * itemsize < UNIT_SPLIT_MIN_BYTES:
        return 0
    return <int> (n_threads if n_threads < n_blocks else n_blocks)


cdef inline int _gemm_parts(Py_ssize_t side, double work) noexcept nogil:
    """Parts a GEMM of `work` multiply-adds is cut into when the cut is along a side of
    `side` rows or columns of C: a function of the shape alone."""
    if work < 2.0 * MIN_WORK_PER_THREAD or side < GEMM_PARTS * MIN_PART:
        return 1
    return GEMM_PARTS


cdef inline void _gemm_part(
    int part, int n_parts, bint trans_a, bint trans_b, int m, int n, int k,
    floating alpha, const floating* a, int lda, const floating* b, int ldb,
    floating beta, floating* c, int ldc,
) noexcept nogil:
    """Part `part` of n_parts of the row-major GEMM of _blas.gemm, cut along the longer
    side of C: rows of C (op(A) rows) when m >= n, else columns of C (op(B) columns)."""
    cdef Py_ssize_t p0, p1
    if m >= n:
        p0 = _chunk_start(part, n_parts, m)
        p1 = _chunk_start(part + 1, n_parts, m)
        gemm(trans_a, trans_b, <int> (p1 - p0), n, k, alpha,
             a + (p0 if trans_a else p0 * lda), lda, b, ldb, beta, c + p0 * ldc, ldc)
    else:
        p0 = _chunk_start(part, n_parts, n)
        p1 = _chunk_start(part + 1, n_parts, n)
        gemm(trans_a, trans_b, m, <int> (p1 - p0), k, alpha,
             a, lda, b + (p0 * ldb if trans_b else p0), ldb, beta, c + p0, ldc)


def inference_chunk_steps(Py_ssize_t T, Py_ssize_t B, Py_ssize_t G, Py_ssize_t I):
    """Steps per chunk of the input projection in inference, for a batch of B rows and
    W_ih of G × I: the gates scratch holds this many steps (all T in training)."""
    cdef Py_ssize_t rows = INFERENCE_CHUNK_ROWS_SMALL if G * I < SMALL_W_IH else INFERENCE_CHUNK_ROWS
    cdef Py_ssize_t steps = rows // B
    return min(T, steps if steps > 1 else 1)


cdef inline floating* _row(floating* a, Py_ssize_t row, Py_ssize_t H) noexcept nogil:
    """Row `row` of an (·, H) buffer, or NULL for a buffer the cell does not have."""
    return a + row * H if a != NULL else NULL


# ---------------------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------------------

cdef inline void _cell_forward(
    Cell cell,
    floating* gates,             # INOUT (G,) pre-activation in; activated gates out (training)
    const floating* bias,        # IN    (G,)
    const floating* bias_hn,     # IN    (H,) the GRU's b_hn (reset after), else NULL
    floating* side,              # INOUT (H,) the GRU's n buffer (see gru_cell.h), else NULL
    const floating* h_prev,      # IN    (H,)
    const floating* c_prev,      # IN    (H,) or NULL without a cell state
    floating* h_next,            # OUT   (H,) may alias h_prev (inference)
    floating* c_next,            # OUT   (H,) may alias c_prev; NULL without a cell state
    floating* out,               # OUT   (H,)
    const floating* peephole,    # IN    (3, H) rows p_i, p_f, p_o: the LSTM's variant pass
                                 #       (lstm_cell.h) with `clip` and `input_forget`; NULL
                                 #       for the plain pass
    floating clip, bint input_forget,
    const floating* ln,          # IN    (18H,) the layer-normalised LSTM's parameters
                                 #       (norm_lstm_cell.h), else NULL
    floating* norm,              # INOUT (9H + 3,) its row of `norm`, else NULL
    Py_ssize_t n, Py_ssize_t H, bint active,
) noexcept nogil:
    """One row of one step: the gates, the cell and the hidden output, for hidden units
    0..n of the row (n = H for all of it; the pointers may start at a later unit). For
    the GRU with the reset before, the second of its passes (_cell_reset ran first)."""
    cdef Py_ssize_t j
    if active:
        # The vectorised passes of lstm_cell.c / rnn_cell.c / gru_cell.c: the equations
        # of lstm_native/reference/.
        if cell == LSTM and ln != NULL:
            norm_lstm_forward_row(<int> H, gates, norm, bias, ln, c_prev, h_next, c_next, out)
        elif cell == LSTM and peephole != NULL:
            lstm_variant_forward_row(<int> n, <int> H, gates, bias, peephole, clip,
                                     input_forget, c_prev, h_next, c_next, out)
        elif cell == LSTM:
            lstm_forward_row(<int> n, <int> H, gates, bias, c_prev, h_next, c_next, out)
        elif cell == GRU:
            gru_forward_row(<int> n, <int> H, gates, bias, bias_hn, side, h_prev, h_next, out)
        elif cell == GRU_RESET_BEFORE:
            gru_update_row(<int> n, <int> H, gates, bias, h_prev, h_next, out)
        else:
            rnn_forward_row(cell == RNN_RELU, <int> n, gates, bias, h_next, out)
        return
    # Past this sequence's end: keep the state, output zeros.
    for j in range(n):
        h_next[j] = h_prev[j]
        out[j] = 0
    if c_next != NULL:
        for j in range(n):
            c_next[j] = c_prev[j]


cdef inline void _cell_reset(
    floating* gates, const floating* bias, const floating* h_prev, floating* rh,
    Py_ssize_t n, bint active,
) noexcept nogil:
    """The GRU with the reset before, first pass of one row: r, and rh = r ⊙ h_{t-1} for
    the step's second GEMM; rh = 0 past the sequence's end (backward reads it in dW_hh)."""
    if active:
        gru_reset_row(<int> n, gates, bias, h_prev, rh)
    else:
        memset(rh, 0, n * sizeof(floating))


cdef inline Py_ssize_t _forward_step(Py_ssize_t s, Py_ssize_t T, bint reverse, bint training,
                                     Py_ssize_t* prev, Py_ssize_t* nxt) noexcept nogil:
    """Time t of step s of a forward pass, and the state slots that step reads (prev) and
    writes (nxt): see "States live in slots" above; inference has the one slot 0."""
    cdef Py_ssize_t t = T - 1 - s if reverse else s
    if training:
        prev[0] = t + 1 if reverse else t
        nxt[0] = t if reverse else t + 1
    else:
        prev[0] = 0
        nxt[0] = 0
    return t


cdef void _project(
    Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t p0, Py_ssize_t p1, Py_ssize_t t,
    Py_ssize_t B, Py_ssize_t H, Py_ssize_t P, const floating* w_hr_packed,
    const floating* m_t, const floating* h_prev, floating* h_next, floating* out,
    Py_ssize_t ldo, const int64_t* lengths,
) noexcept nogil:
    """The projection of rows r0..r1 at time t, for state columns p0..p1: out[t] = m_t ·
    W_hrᵀ (w_hr_packed from column p0 on), copied to the state of the active rows; the
    others keep their state and output zeros. h_prev and h_next are the slots' rows of
    the whole batch (the same slot in inference)."""
    cdef Py_ssize_t r, j
    cdef floating* o
    for r in range(r0, r1):
        memset(out + (t * B + r) * ldo + p0, 0, (p1 - p0) * sizeof(floating))
    gemm_packed(<int> (r1 - r0), <int> (p1 - p0), <int> H, m_t + r0 * H, <int> H, w_hr_packed,
                out + (t * B + r0) * ldo + p0, <int> ldo)
    for r in range(r0, r1):
        o = out + (t * B + r) * ldo
        if t < lengths[r]:
            for j in range(p0, p1):
                h_next[r * P + j] = o[j]
        else:
            for j in range(p0, p1):
                h_next[r * P + j] = h_prev[r * P + j]
                o[j] = 0


cdef inline void _mask_rows(Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t j0, Py_ssize_t j1,
                            Py_ssize_t P, const floating* h, const floating* mask,
                            floating* hm) noexcept nogil:
    """hm = h ⊙ mask on rows r0..r1, columns j0..j1 of (B, P) buffers."""
    cdef Py_ssize_t r, j
    for r in range(r0, r1):
        for j in range(j0, j1):
            hm[r * P + j] = h[r * P + j] * mask[r * P + j]


cdef void _forward_rows(
    Cell cell,
    Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t t_base,
    Py_ssize_t T, Py_ssize_t B, Py_ssize_t H, Py_ssize_t G, Py_ssize_t P,
    const floating* w_hh_packed, const floating* w_hn_packed, const floating* w_hr_packed,
    const floating* bias, const floating* bias_hn, const int64_t* lengths,
    floating* gates, floating* side, floating* h, floating* c, floating* out, Py_ssize_t ldo,
    const floating* peephole, floating clip, bint input_forget,
    const floating* mask, floating* hm, const floating* ln, floating* norm,
    const floating* x, Py_ssize_t I, const floating* w_ih_packed,
    bint reverse, bint training,
) noexcept nogil:
    """Rows r0..r1 of the batch through steps s0..s1 of the pass (c is NULL without a
    cell state, side and w_hn_packed but for the GRU and the projection, w_hr_packed but
    for the projection, peephole but for the LSTM's variant pass, see _cell_forward,
    mask and hm but with a recurrent dropout mask, see forward_layer, ln and norm but
    for the layer-normalised LSTM, whose recurrent products go to norm's rows, kept
    apart from the input projection's); `gates`, `side` and `norm` hold the steps from
    time t_base on. With x (T·B, I) and w_ih_packed the step GEMM projects the input
    too (see "Forward" above), and inference keeps the one step of `gates` and `side`
    at time t_base."""
    cdef Py_ssize_t s, t, r, prev, nxt
    cdef Py_ssize_t n_summed = _summed_rows(cell, G, H)
    cdef floating* g_t
    cdef floating* s_t = NULL
    cdef floating* m_r
    # What the recurrent products read: h_{t-1}, or its dropped-out copy hm.
    cdef const floating* h_in
    # Where they go: the gates, or norm's rows (ldn apart) for the layer norm.
    cdef Py_ssize_t ldn = LN_NORM_WIDTH(<int> H)
    cdef floating* n_t = NULL
    cdef floating* rec
    cdef Py_ssize_t ld_rec = G
    cdef Py_ssize_t slot
    for s in range(s0, s1):
        t = _forward_step(s, T, reverse, training, &prev, &nxt)
        slot = 0 if x != NULL and not training else t - t_base
        g_t = gates + slot * B * G
        rec = g_t
        if side != NULL:
            s_t = side + slot * B * H
        if norm != NULL:
            n_t = norm + (t - t_base) * B * ldn
            rec = n_t + G
            ld_rec = ldn
            for r in range(r0, r1):
                memset(rec + r * ldn, 0, G * sizeof(floating))
        h_in = hm if hm != NULL else h + prev * B * P
        if x != NULL:
            # gates[t] = x_t · W_ihᵀ + h_{t-1} · W_hhᵀ for this thread's rows
            gemm_packed2(<int> (r1 - r0), <int> G, <int> I, x + (t * B + r0) * I, <int> I,
                         w_ih_packed, <int> P, h_in + r0 * P, <int> P, w_hh_packed,
                         g_t + r0 * G, <int> G)
        else:
            # gates[t] += h_{t-1} · W_hhᵀ for this thread's rows (the GRU: its r, z rows)
            gemm_packed(<int> (r1 - r0), <int> n_summed, <int> P, h_in + r0 * P,
                        <int> P, w_hh_packed, rec + r0 * ld_rec, <int> ld_rec)
        if cell == GRU:
            # side[t] = h_{t-1} · W_hnᵀ, kept apart for r to multiply
            memset(s_t + r0 * H, 0, (r1 - r0) * H * sizeof(floating))
            gemm_packed(<int> (r1 - r0), <int> H, <int> H, h_in + r0 * H, <int> H,
                        w_hn_packed, s_t + r0 * H, <int> H)
        elif cell == GRU_RESET_BEFORE:
            # r first, then gates[t]'s n columns += (r ⊙ h_{t-1}) · W_hnᵀ
            for r in range(r0, r1):
                _cell_reset(g_t + r * G, bias, h_in + r * H, s_t + r * H, H,
                            t < lengths[r])
            gemm_packed(<int> (r1 - r0), <int> H, <int> H, s_t + r0 * H, <int> H,
                        w_hn_packed, g_t + r0 * G + 2 * H, <int> G)
        if w_hr_packed != NULL:
            # The cell writes m_t into side[t] (zeros past the sequence's end, where the
            # projection below keeps the state), then h_t = m_t · W_hrᵀ.
            for r in range(r0, r1):
                m_r = s_t + r * H
                _cell_forward(cell, g_t + r * G, bias, NULL, NULL, m_r,
                              _row(c, prev * B + r, H), m_r, _row(c, nxt * B + r, H), m_r,
                              peephole, clip, input_forget, ln, _row(n_t, r, ldn), H, H,
                              t < lengths[r])
            _project(r0, r1, 0, P, t, B, H, P, w_hr_packed, s_t, h + prev * B * P,
                     h + nxt * B * P, out, ldo, lengths)
        else:
            for r in range(r0, r1):
                _cell_forward(cell, g_t + r * G, bias, bias_hn, _row(s_t, r, H),
                              _row(h, prev * B + r, H), _row(c, prev * B + r, H),
                              _row(h, nxt * B + r, H), _row(c, nxt * B + r, H),
                              out + (t * B + r) * ldo, peephole, clip, input_forget, ln,
                              _row(n_t, r, ldn), H, H, t < lengths[r])
        if hm != NULL:
            _mask_rows(r0, r1, 0, P, P, h + nxt * B * P, mask, hm)


cdef void _forward_units(
    Cell cell, Py_ssize_t s0, Py_ssize_t s1, Py_ssize_t t_base,
    Py_ssize_t T, Py_ssize_t B, Py_ssize_t H, Py_ssize_t G, Py_ssize_t P,
    Py_ssize_t unit_align,
    const floating* w_hh_packed, const floating* w_hn_packed, const floating* w_hr_packed,
    const floating* bias, const floating* bias_hn, const int64_t* lengths,
    floating* gates, floating* side, floating* h, floating* c, floating* out, Py_ssize_t ldo,
    const floating* peephole, floating clip, bint input_forget,
    const floating* mask, floating* hm,
    const floating* x, Py_ssize_t I, const floating* w_ih_packed,
    bint reverse, bint training,
) noexcept nogil:
    """The other split of the recurrence, run by every thread of a parallel region: each
    thread owns a block of hidden units (a multiple of unit_align = tile_columns, so that
    its columns of the packed W_hh are a packed matrix of their own, `packed_columns`) in
    every gate and takes every batch row
    through steps s0..s1 for those units. Every step needs all of h_{t-1}: a barrier
    after the step's GEMM (inference updates h in place, so it also waits before the
    GEMM reads it again), one after its elementwise pass. The GRU with the reset before
    needs all of r ⊙ h_{t-1} for its second GEMM: one more barrier before it. So does
    the projection, which needs all of m_t: the threads then split the P state columns
    in blocks of unit_align the same way. With a recurrent dropout mask each thread
    writes its own columns of hm once it has written them in h_t; the step's last
    barrier makes all of hm ready for the next step's products. x, I and w_ih_packed as
    in _forward_rows."""
    cdef int n_team = omp_get_num_threads(), tid = omp_get_thread_num()
    cdef Py_ssize_t n_blocks = H // unit_align
    cdef Py_ssize_t u0 = _chunk_start(tid, n_team, n_blocks) * unit_align
    cdef Py_ssize_t u1 = _chunk_start(tid + 1, n_team, n_blocks) * unit_align
    # The projection's state columns (the last block may be short).
    cdef Py_ssize_t n_p_blocks = (P + unit_align - 1) // unit_align
    cdef Py_ssize_t p0 = min(_chunk_start(tid, n_team, n_p_blocks) * unit_align, P)
    cdef Py_ssize_t p1 = min(_chunk_start(tid + 1, n_team, n_p_blocks) * unit_align, P)
    cdef Py_ssize_t s, t, r, q, prev, nxt, n_summed_gates = _summed_rows(cell, G, H) // H
    cdef floating* g_t
    cdef floating* s_t = NULL
    # The thread's first unit in every per-unit buffer (NULL stays NULL for the RNN's c).
    cdef floating* h_u = h + u0
    cdef floating* c_u = c + u0 if c != NULL else NULL
    cdef const floating* bias_hn_u = bias_hn + u0 if bias_hn != NULL else NULL
    cdef const floating* peephole_u = peephole + u0 if peephole != NULL else NULL
    cdef floating* m_r
    cdef const floating* h_in
    cdef Py_ssize_t slot
    for s in range(s0, s1):
        t = _forward_step(s, T, reverse, training, &prev, &nxt)
        slot = 0 if x != NULL and not training else t - t_base
        g_t = gates + slot * B * G
        if side != NULL:
            s_t = side + slot * B * H
        h_in = hm if hm != NULL else h + prev * B * P
        if u1 > u0:
            # gates[t][:, q·H + u0 .. q·H + u1] (+)= (x_t · W_ih[those rows]ᵀ +)
            # h_{t-1} · W_hh[those rows]ᵀ, each gate q
            for q in range(n_summed_gates):
                if x != NULL:
                    gemm_packed2(<int> B, <int> (u1 - u0), <int> I, x + t * B * I, <int> I,
                                 packed_columns(w_ih_packed, <int> I, <int> (q * H + u0)),
                                 <int> P, h_in, <int> P,
                                 packed_columns(w_hh_packed, <int> P, <int> (q * H + u0)),
                                 g_t + q * H + u0, <int> G)
                else:
                    gemm_packed(<int> B, <int> (u1 - u0), <int> P, h_in, <int> P,
                                packed_columns(w_hh_packed, <int> P, <int> (q * H + u0)),
                                g_t + q * H + u0, <int> G)
            if cell == GRU:
                for r in range(B):
                    memset(s_t + r * H + u0, 0, (u1 - u0) * sizeof(floating))
                gemm_packed(<int> B, <int> (u1 - u0), <int> H, h_in, <int> H,
                            packed_columns(w_hn_packed, <int> H, <int> u0), s_t + u0, <int> H)
        ln_omp_barrier()
        if cell == GRU_RESET_BEFORE:
            if u1 > u0:
                for r in range(B):
                    _cell_reset(g_t + r * G + u0, bias + u0, h_in + r * H + u0,
                                s_t + r * H + u0, u1 - u0, t < lengths[r])
            ln_omp_barrier()
            if u1 > u0:
                gemm_packed(<int> B, <int> (u1 - u0), <int> H, s_t, <int> H,
                            packed_columns(w_hn_packed, <int> H, <int> u0),
                            g_t + 2 * H + u0, <int> G)
        if w_hr_packed != NULL:
            # m_t of this thread's units into side[t] (see _forward_rows), then, once all
            # of it is there, this thread's state columns of the projection.
            if u1 > u0:
                for r in range(B):
                    m_r = s_t + r * H + u0
                    _cell_forward(cell, g_t + r * G + u0, bias + u0, NULL, NULL, m_r,
                                  _row(c_u, prev * B + r, H), m_r, _row(c_u, nxt * B + r, H),
                                  m_r, peephole_u, clip, input_forget, NULL, NULL, u1 - u0,
                                  H, t < lengths[r])
            ln_omp_barrier()
            if p1 > p0:
                _project(0, B, p0, p1, t, B, H, P,
                         packed_columns(w_hr_packed, <int> H, <int> p0), s_t,
                         h + prev * B * P, h + nxt * B * P, out, ldo, lengths)
                if hm != NULL:
                    _mask_rows(0, B, p0, p1, P, h + nxt * B * P, mask, hm)
        elif u1 > u0:
            for r in range(B):
                _cell_forward(cell, g_t + r * G + u0, bias + u0, bias_hn_u,
                              _row(s_t + u0 if s_t != NULL else NULL, r, H),
                              _row(h_u, prev * B + r, H), _row(c_u, prev * B + r, H),
                              _row(h_u, nxt * B + r, H), _row(c_u, nxt * B + r, H),
                              out + (t * B + r) * ldo + u0, peephole_u, clip,
                              input_forget, NULL, NULL, u1 - u0, H, t < lengths[r])
            if hm != NULL:
                _mask_rows(0, B, u0, u1, P, h + nxt * B * P, mask, hm)
        ln_omp_barrier()


def forward_layer(
    Cell cell,                       # IN    a Cell
    const floating[:, ::1] x,        # IN    (T·B, I) input rows, time-major
    const floating[:, ::1] w_ih,     # IN    (G, I), G = n_gates·H
    const floating[:, ::1] w_hh,     # IN    (G, P), P = H but with a projection
    const floating[:, ::1] w_hr,     # IN    (P, H) the LSTM's projection, or None
    const floating[::1] bias,        # IN    (G,) b_ih + b_hh (zeros without bias); for
                                     #       Cell.GRU, b_in alone in the n block
    const floating[::1] bias_hn,     # IN    (H,) b_hn for Cell.GRU; None otherwise
    const int64_t[::1] lengths,      # IN    (B,) valid steps of each sequence, 1..T
    floating[:, ::1] gates,          # OUT   (T·B, G) activated gates (kept for backward);
                                     #       inference: (k·B, G) scratch for k steps
    floating[:, ::1] side,           # OUT   gates' rows × H, kept for backward: the GRU's n
                                     #       buffer (W_hn h + b_hn, or r ⊙ h), or the
                                     #       projection's input m; None otherwise
    floating[:, ::1] h,              # INOUT ((T+1)·B, P) training, (B, P) inference
    floating[:, ::1] c,              # INOUT ((T+1)·B, H) or (B, H) (LSTM); None otherwise
    floating[:, ::1] out,            # OUT   (T·B, D·P), columns out_col .. out_col+P
    Py_ssize_t out_col,
    bint reverse,
    bint training,
    int n_threads,
    const floating[:, ::1] peephole=None,  # IN (3, H) the LSTM's peepholes p_i, p_f, p_o
    double clip=0,                   # IN    the LSTM's gate clip, > 0; 0 for none
    bint input_forget=False,         # IN    the LSTM's coupled gates, f = 1 - i
    const floating[:, ::1] recurrent_mask=None,  # IN (B, P) variational recurrent dropout
    const floating[::1] layer_norm=None,  # IN (18H,) the layer-normalised LSTM's parameters
    floating[:, ::1] norm=None,      # OUT   (gates' rows, 9H + 3) its per-row values (kept
                                     #       for backward in training); None otherwise
):
    """Run one direction of one layer over the whole sequence.

    With `layer_norm` the LSTM runs the layer-normalised pass (norm_lstm_cell.h): the
    recurrent products go to `norm`'s rows, and the threads always split the batch rows
    (the pass normalises over a whole row).

    With `recurrent_mask` m (variational dropout: one mask per sequence, for all steps)
    the recurrent products read h_{t-1} ⊙ m, kept in a scratch hm that each step updates
    after writing h_t; the state itself, and the GRU's update z ⊙ h_{t-1}, are not
    dropped.

    With `peephole`, `clip` or `input_forget` the LSTM runs its variant pass
    (lstm_cell.h) and, in training, `gates` keeps the pre-activations for backward.

    h0 (and c0) must be in the starting slot on entry: slot 0 (forward) or slot T
    (reverse) in training, the only slot in inference. On return the final states are in
    slot T (forward) or slot 0 (reverse), or the only slot.
    """
    cdef Py_ssize_t B = lengths.shape[0]
    cdef Py_ssize_t TB = x.shape[0], T = TB // B
    cdef Py_ssize_t P, I = x.shape[1], H = _hidden_size(w_hh, w_hr, &P)
    cdef Py_ssize_t G = _check_layer(cell, w_hh.shape[0], H, c is not None, side is not None,
                                     w_hr is not None)
    cdef Py_ssize_t n_summed = _summed_rows(cell, G, H)
    # Steps whose gates fit in `gates`: all of them in training, a chunk in inference.
    cdef Py_ssize_t chunk = T if training else gates.shape[0] // B
    cdef Py_ssize_t k, r0, r1, s0, s1, t0, rows
    cdef int n_proj, n_proj_parts, n_pack
    # The step GEMM projects the input too, but for the cells whose recurrent products
    # stay apart from it and for weights too large (see "Forward" above).
    cdef bint fused = (not _is_gru(cell) and layer_norm is None
                       and G * (I + w_hh.shape[1]) * sizeof(floating) <= FUSED_MAX_BYTES)
    cdef int n_row = _n_workers(n_threads, B, _recurrence_work(
        T, B, H, G, P, w_hr is not None, I if fused else 0))
    cdef floating* c_ptr = &c[0, 0] if c is not None else NULL
    cdef floating* side_ptr = &side[0, 0] if side is not None else NULL
    cdef const floating* bias_hn_ptr = &bias_hn[0] if bias_hn is not None else NULL
    cdef Py_ssize_t unit_align = tile_columns(&w_hh[0, 0])
    cdef int n_unit = 0 if layer_norm is not None else _unit_split_threads(
        n_threads, B, H, G, P, sizeof(floating), unit_align)
    cdef const floating* ln_ptr = NULL
    cdef floating* norm_ptr = NULL
    cdef floating* peephole_ptr = NULL
    cdef floating clip_value = <floating> (clip if clip > 0 else INFINITY)
    cdef const floating* mask_ptr
    cdef floating* hm = NULL
    cdef Py_ssize_t first = (T if reverse else 0) if training else 0
    _check_variant(cell, H, peephole, clip, input_forget)
    if _check_layer_norm(cell, H, gates.shape[0], layer_norm, norm, peephole, clip,
                         input_forget):
        ln_ptr = &layer_norm[0]
        norm_ptr = &norm[0, 0]
    mask_ptr = _mask_pointer(recurrent_mask, B, P)
    if chunk < 1 or chunk * B > gates.shape[0] or (training and gates.shape[0] != TB):
        raise ValueError(f"gates must have {TB if training else 'a multiple of B'} rows "
                         f"(training={training}), got {gates.shape[0]}")
    if side is not None and (side.shape[0] != gates.shape[0] or side.shape[1] != H):
        raise ValueError(f"side must be ({gates.shape[0]}, {H}), got {side.shape}")
    if (bias_hn is not None) != (cell == GRU) or (bias_hn is not None and bias_hn.shape[0] != H):
        raise ValueError(f"bias_hn must be ({H},) for Cell.GRU and None for other cells")
    if h.shape[1] != P or (c is not None and c.shape[1] != H) or out.shape[1] < out_col + P:
        raise ValueError(f"h must have {P} columns, c {H}, out at least {out_col + P}")
    # W_hh packed once for all steps, as the k × n matrix B[k, n] = W_hh[n, k]; the GRU's
    # n rows on their own; W_hr as B[k, n] = W_hr[n, k].
    cdef floating* w_hh_packed = _alloc_packed(&w_hh[0, 0], <int> P, <int> n_summed)
    cdef floating* w_hn_packed = NULL
    cdef floating* w_hr_packed = NULL
    cdef floating* w_ih_packed = NULL
    cdef const floating* x_ptr = NULL
    try:
        if fused:
            # W_ih as B[k, n] = W_ih[n, k]; the step GEMM reads x itself, so the whole
            # sequence is one chunk.
            w_ih_packed = _alloc_packed(&w_ih[0, 0], <int> I, <int> G)
            x_ptr = &x[0, 0]
            chunk = T
        if _is_gru(cell):
            w_hn_packed = _alloc_packed(&w_hh[0, 0], <int> H, <int> H)
        if w_hr is not None:
            w_hr_packed = _alloc_packed(&w_hh[0, 0], <int> H, <int> P)
        peephole_ptr = _variant_peephole(peephole, H, clip, input_forget)
        if mask_ptr != NULL:
            hm = <floating*> malloc(B * P * sizeof(floating))
            if hm == NULL:
                raise MemoryError("no memory for the recurrent dropout scratch")
        with nogil:
            if hm != NULL:
                # h0 ⊙ m, what the first step's products read
                _mask_rows(0, B, 0, P, P, &h[first * B, 0], mask_ptr, hm)
            # W_hh and W_ih packed by blocks of columns, threads share them: one thread
            # alone took 2-4% of a 2-thread forward (A, B).
            n_pack = _n_workers(n_threads, G // unit_align + 1,
                                <double> G * (P + (I if fused else 0)))
            for k in prange(n_pack, num_threads=n_pack, schedule='static'):
                _pack_part(<int> k, n_pack, <int> P, <int> n_summed, &w_hh[0, 0], 1, P,
                           w_hh_packed)
                if w_ih_packed != NULL:
                    _pack_part(<int> k, n_pack, <int> I, <int> G, &w_ih[0, 0], 1, I,
                               w_ih_packed)
            if w_hn_packed != NULL:
                pack(<int> H, <int> H, &w_hh[2 * H, 0], 1, H, w_hn_packed)
            if w_hr_packed != NULL:
                pack(<int> H, <int> P, &w_hr[0, 0], 1, H, w_hr_packed)
            s0 = 0
            while s0 < T:
                s1 = s0 + chunk if s0 + chunk < T else T
                # The chunk's steps s0..s1 are times t0..t0+(s1-s0) of the input.
                t0 = T - s1 if reverse else s0
                rows = (s1 - s0) * B
                if not fused:
                    # Input projection: gates = X·W_ihᵀ, threads share its parts.
                    n_proj_parts = _gemm_parts(max(rows, G), <double> rows * G * I)
                    n_proj = _n_workers(n_threads, n_proj_parts, <double> rows * G * I)
                    for k in prange(n_proj_parts, num_threads=n_proj, schedule='static'):
                        _gemm_part(<int> k, n_proj_parts, False, True, <int> rows, <int> G,
                                   <int> I, <floating> 1, &x[t0 * B, 0], <int> I, &w_ih[0, 0],
                                   <int> I, <floating> 0, &gates[0, 0], <int> G)
                if n_unit:
                    # Recurrence, threads split the hidden units (a barrier per step).
                    with parallel(num_threads=n_unit):
                        _forward_units(cell, s0, s1, t0, T, B, H, G, P, unit_align, w_hh_packed,
                                       w_hn_packed, w_hr_packed, &bias[0], bias_hn_ptr,
                                       &lengths[0],
                                       &gates[0, 0], side_ptr, &h[0, 0], c_ptr,
                                       &out[0, out_col], out.shape[1], peephole_ptr,
                                       clip_value, input_forget, mask_ptr, hm, x_ptr, I,
                                       w_ih_packed, reverse, training)
                    s0 = s1
                    continue
                # Recurrence: threads split the batch rows, each runs its rows through time.
                for k in prange(n_row, num_threads=n_row, schedule='static'):
                    r0 = _chunk_start(k, n_row, B)
                    r1 = _chunk_start(k + 1, n_row, B)
                    _forward_rows(cell, r0, r1, s0, s1, t0, T, B, H, G, P, w_hh_packed,
                                  w_hn_packed, w_hr_packed, &bias[0], bias_hn_ptr,
                                  &lengths[0],
                                  &gates[0, 0], side_ptr, &h[0, 0], c_ptr,
                                  &out[0, out_col], out.shape[1], peephole_ptr, clip_value,
                                  input_forget, mask_ptr, hm, ln_ptr, norm_ptr, x_ptr, I,
                                  w_ih_packed, reverse, training)
                s0 = s1
    finally:
        free(w_hh_packed)
        free(w_hn_packed)
        free(w_hr_packed)
        free(w_ih_packed)
        free(hm)
        if peephole is None:
            free(peephole_ptr)


cdef int _check_variant(Cell cell, Py_ssize_t H, const floating[:, ::1] peephole, double clip,
                        bint input_forget) except -1:
    """The LSTM's variant options fit (a guard against a caller's mistake)."""
    if (peephole is not None or clip != 0 or input_forget) and cell != LSTM:
        raise ValueError(f"cell kind {<int> cell}: peephole, clip and input_forget are the "
                         "LSTM's")
    if peephole is not None and (peephole.shape[0] != 3 or peephole.shape[1] != H):
        raise ValueError(f"peephole must be (3, {H}), got ({peephole.shape[0]}, "
                         f"{peephole.shape[1]})")
    if not clip >= 0:
        raise ValueError(f"clip must be > 0, or 0 for none, got {clip}")
    return 0


cdef const floating* _mask_pointer(const floating[:, ::1] recurrent_mask, Py_ssize_t B,
                                   Py_ssize_t P) except? NULL:
    """The recurrent dropout mask's data after checking it is (B, P), or NULL for none."""
    if recurrent_mask is None:
        return NULL
    if recurrent_mask.shape[0] != B or recurrent_mask.shape[1] != P:
        raise ValueError(f"recurrent_mask must be ({B}, {P}), got "
                         f"({recurrent_mask.shape[0]}, {recurrent_mask.shape[1]})")
    return &recurrent_mask[0, 0]


cdef bint _check_layer_norm(Cell cell, Py_ssize_t H, Py_ssize_t rows,
                            const floating[::1] layer_norm, const floating[:, ::1] norm,
                            const floating[:, ::1] peephole, double clip,
                            bint input_forget) except -1:
    """Whether the layer norm runs, after checking that its buffers fit (a guard against
    a caller's mistake)."""
    if layer_norm is None and norm is None:
        return False
    if cell != LSTM or layer_norm is None or norm is None:
        raise ValueError(f"cell kind {<int> cell}: layer_norm and norm are the LSTM's, "
                         "both given or both None")
    if peephole is not None or clip != 0 or input_forget:
        raise ValueError("layer_norm does not combine with peephole, clip or input_forget")
    if layer_norm.shape[0] != 18 * H or norm.shape[0] != rows or \
            norm.shape[1] != LN_NORM_WIDTH(<int> H):
        raise ValueError(f"layer_norm must be ({18 * H},) and norm ({rows}, "
                         f"{LN_NORM_WIDTH(<int> H)})")
    return True


cdef floating* _variant_peephole(const floating[:, ::1] peephole, Py_ssize_t H, double clip,
                                 bint input_forget) except? NULL:
    """What the passes take as `peephole`: the given one, zeros (calloc'd: the caller
    frees it) for a variant without peepholes, NULL for the plain LSTM pass."""
    cdef floating* zeros
    if peephole is not None:
        return <floating*> &peephole[0, 0]
    if clip == 0 and not input_forget:
        return NULL
    zeros = <floating*> calloc(3 * H, sizeof(floating))
    if zeros == NULL:
        raise MemoryError("no memory for the peephole scratch")
    return zeros


cdef void _pack_part(int part, int n_parts, int k, int n, const floating* b, Py_ssize_t s_k,
                     Py_ssize_t s_n, floating* bp) noexcept nogil:
    """Part `part` of n_parts of `pack(k, n, b, s_k, s_n, bp)`: a block of whole tiles of
    columns (tile_columns), the last part with the padding."""
    cdef int tile = tile_columns(b)
    cdef int n_tiles = (n + tile - 1) // tile
    cdef int c0 = <int> _chunk_start(part, n_parts, n_tiles) * tile
    cdef int c1 = min(<int> _chunk_start(part + 1, n_parts, n_tiles) * tile, n)
    if c1 > c0:
        pack(k, c1 - c0, b + c0 * s_n, s_k, s_n, <floating*> packed_columns(bp, k, c0))


cdef floating* _alloc_packed(const floating* like, int k, int n) except NULL:
    """Room for the packed form of a k × n matrix of `like`'s type, aligned as
    gemm_packed.h asks (free() releases it)."""
    cdef void* p = NULL
    cdef size_t size = packed_size(<floating*> like, k, n) * sizeof(floating)
    # posix_memalign may give NULL for size 0: room for at least one element.
    if posix_memalign(&p, LN_PACKED_ALIGN, max(size, sizeof(floating))) != 0:
        raise MemoryError("no memory for the packed recurrent weights")
    return <floating*> p


# ---------------------------------------------------------------------------------------
# Backward (BPTT)
# ---------------------------------------------------------------------------------------

cdef inline void _cell_backward(
    Cell cell,
    floating* gates,             # INOUT (G,) activated gates in; their pre-activation grads out
    floating* side,              # INOUT (H,) the GRU's n buffer (reset after: W_hn h + b_hn
                                 #       in, the n rows' recurrent gradient out), else NULL
    const floating* h_prev,      # IN    (H,)
    const floating* c_prev,      # IN    (H,) or NULL without a cell state
    const floating* c_t,         # IN    (H,) or NULL
    const floating* dout,        # IN    (H,) gradient on this step's output
    floating* dh,                # INOUT (H,) dh from step t+1 in; what the GEMMs add to out
    floating* dc,                # INOUT (H,) dc_t in; dc_{t-1} out; NULL without a cell state
    const floating* peephole,    # IN    as given to _cell_forward
    floating clip, bint input_forget,
    const floating* ln,          # IN    as given to _cell_forward
    floating* norm,              # INOUT its row of `norm` (the recurrent part: the
                                 #       gradient on W_hh h_{t-1} out), else NULL
    floating* acc,               # INOUT the row's sums of the layer norm's backward
    Py_ssize_t H, Py_ssize_t G, bint active,
) noexcept nogil:
    """One row of one step of BPTT (for the GRU with the reset before: its first pass)."""
    if active:
        if cell == LSTM and ln != NULL:
            norm_lstm_backward_row(<int> H, gates, norm, ln, c_prev, dout, dh, dc, acc)
        elif cell == LSTM and peephole != NULL:
            lstm_variant_backward_row(<int> H, gates, peephole, clip, input_forget, c_prev, c_t,
                                      dout, dh, dc)
        elif cell == LSTM:
            lstm_backward_row(<int> H, gates, c_prev, c_t, dout, dh, dc)
        elif cell == GRU:
            gru_backward_row(<int> H, gates, side, h_prev, dout, dh)
        elif cell == GRU_RESET_BEFORE:
            gru_update_backward_row(<int> H, gates, h_prev, dout, dh)
        else:
            rnn_backward_row(cell == RNN_RELU, <int> H, gates, dout, dh)
    else:
        # The state was carried through this step: dh and dc pass through, no gate gradient.
        memset(gates, 0, G * sizeof(floating))
        if norm != NULL:
            memset(norm + G, 0, G * sizeof(floating))
        if cell == GRU:
            memset(side, 0, H * sizeof(floating))


cdef void _backward_rows(
    Cell cell,
    Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t T, Py_ssize_t B, Py_ssize_t H, Py_ssize_t G,
    Py_ssize_t P,
    const floating* w_hh_packed, const floating* w_hn_packed, const floating* w_hr_packed,
    const int64_t* lengths,
    floating* gates, floating* side, const floating* h, const floating* c,
    const floating* dout, Py_ssize_t ldo,
    floating* dh, floating* dc, floating* drh, floating* proj_grad, const floating* zeros,
    const floating* peephole, floating clip, bint input_forget,
    const floating* mask, const floating* hm, floating* dhm,
    const floating* ln, floating* norm, floating* acc,
    bint reverse,
) noexcept nogil:
    """Rows r0..r1 of the batch back through all T steps (c, dc NULL without a cell state;
    side, w_hn_packed but for the GRU; drh, scratch of B × H, but for its reset before
    and the projection, where it holds dm and must be zeros on entry; w_hr_packed,
    proj_grad and zeros (H zeros) but for the projection). With a recurrent dropout
    mask: hm, the (T·B, P) inputs h_{t-1} ⊙ m of the recurrent products in time order,
    and dhm, B × P zeros, where those products' gradients gather before dh takes them
    through the mask. With the layer norm: ln, norm as forward left it, and acc, B rows
    of the passes' sums (zeros on entry); the recurrent products' gradient is in norm.)"""
    cdef Py_ssize_t s, t, r, j, prev, nxt
    cdef Py_ssize_t n_summed = _summed_rows(cell, G, H)
    cdef floating* g_t
    cdef floating* s_t = NULL
    cdef floating* pg
    cdef const floating* do
    # Where the recurrent products' gradients go: dh, or dhm with a mask.
    cdef floating* d_in = dhm if mask != NULL else dh
    # The recurrent products' own gradient: in the gates, or in norm's rows.
    cdef Py_ssize_t ldn = LN_NORM_WIDTH(<int> H), lda = LN_NORM_ACC_WIDTH(<int> H)
    cdef floating* n_t = NULL
    cdef floating* rec
    cdef Py_ssize_t ld_rec = ldn if norm != NULL else G
    for s in range(T):
        # The opposite order of the forward pass.
        t = s if reverse else T - 1 - s
        prev = t + 1 if reverse else t
        nxt = t if reverse else t + 1
        g_t = gates + t * B * G
        rec = g_t
        if norm != NULL:
            n_t = norm + t * B * ldn
            rec = n_t + G
        if side != NULL:
            s_t = side + t * B * H
        if w_hr_packed != NULL:
            # Through the projection first: proj_grad[t] = dh_t = dout_t + dh (kept for
            # dW_hr), then drh = dm = dh_t · W_hr is the gradient the cell pass takes
            # (and leaves zeroed); rows past their end get none, and their dh passes.
            for r in range(r0, r1):
                pg = proj_grad + (t * B + r) * P
                if t < lengths[r]:
                    do = dout + (t * B + r) * ldo
                    for j in range(P):
                        pg[j] = do[j] + dh[r * P + j]
                    memset(dh + r * P, 0, P * sizeof(floating))
                else:
                    memset(pg, 0, P * sizeof(floating))
            gemm_packed(<int> (r1 - r0), <int> H, <int> P, proj_grad + (t * B + r0) * P,
                        <int> P, w_hr_packed, drh + r0 * H, <int> H)
            for r in range(r0, r1):
                _cell_backward(cell, g_t + r * G, NULL, NULL,
                               _row(<floating*> c, prev * B + r, H),
                               _row(<floating*> c, nxt * B + r, H), zeros, drh + r * H,
                               _row(dc, r, H), peephole, clip, input_forget, ln,
                               _row(n_t, r, ldn), _row(acc, r, lda), H, G, t < lengths[r])
                if t >= lengths[r]:
                    memset(drh + r * H, 0, H * sizeof(floating))
        else:
            for r in range(r0, r1):
                _cell_backward(cell, g_t + r * G, _row(s_t, r, H), h + (prev * B + r) * H,
                               _row(<floating*> c, prev * B + r, H),
                               _row(<floating*> c, nxt * B + r, H),
                               dout + (t * B + r) * ldo, dh + r * H, _row(dc, r, H),
                               peephole, clip, input_forget, ln, _row(n_t, r, ldn),
                               _row(acc, r, lda), H, G, t < lengths[r])
        if cell == GRU:
            # dh_{t-1} += (r ⊙ da_n) · W_hn
            gemm_packed(<int> (r1 - r0), <int> H, <int> H, s_t + r0 * H, <int> H,
                        w_hn_packed, d_in + r0 * H, <int> H)
        elif cell == GRU_RESET_BEFORE:
            # drh = da_n · W_hn, the gradient on r ⊙ h_{t-1}; then r's gradient and
            # drh ⊙ r into dh_{t-1}
            memset(drh + r0 * H, 0, (r1 - r0) * H * sizeof(floating))
            gemm_packed(<int> (r1 - r0), <int> H, <int> H, g_t + r0 * G + 2 * H, <int> G,
                        w_hn_packed, drh + r0 * H, <int> H)
            for r in range(r0, r1):
                if t < lengths[r]:
                    gru_reset_backward_row(<int> H, g_t + r * G, drh + r * H,
                                           hm + (t * B + r) * H if mask != NULL
                                           else h + (prev * B + r) * H, d_in + r * H)
        # dh_{t-1} += dG_t · W_hh (the GRU: its r, z rows; inactive rows have dG_t = 0 and
        # keep their dh)
        gemm_packed(<int> (r1 - r0), <int> P, <int> n_summed, rec + r0 * ld_rec, <int> ld_rec,
                    w_hh_packed, d_in + r0 * P, <int> P)
        if mask != NULL:
            # through the mask: dh_{t-1} += dhm ⊙ m
            for r in range(r0, r1):
                for j in range(P):
                    dh[r * P + j] += dhm[r * P + j] * mask[r * P + j]
                memset(dhm + r * P, 0, P * sizeof(floating))


def backward_layer(
    Cell cell,                       # IN    as given to forward_layer
    const floating[:, ::1] x,        # IN    (T·B, I) the layer's input rows
    const floating[:, ::1] w_ih,     # IN    (G, I)
    const floating[:, ::1] w_hh,     # IN    (G, P)
    const floating[:, ::1] w_hr,     # IN    (P, H) the LSTM's projection, or None
    const int64_t[::1] lengths,      # IN    (B,)
    floating[:, ::1] gates,          # INOUT (T·B, G) activated gates in, dG out
    floating[:, ::1] side,           # INOUT (T·B, H) `side` of the forward pass (overwritten
                                     #       for Cell.GRU); None otherwise
    floating[:, ::1] proj_grad,      # OUT   (T·B, P) scratch with a projection; None otherwise
    const floating[:, ::1] h,        # IN    ((T+1)·B, P) hidden-state slots of the forward pass
    const floating[:, ::1] c,        # IN    ((T+1)·B, H) cell-state slots (LSTM); None otherwise
    const floating[:, ::1] dout,     # IN    (T·B, D·P) gradient on the output, columns out_col..+P
    Py_ssize_t out_col,
    floating[:, ::1] dh,             # INOUT (B, P) dh_n in, dh0 out
    floating[:, ::1] dc,             # INOUT (B, H) dc_n in, dc0 out (LSTM); None otherwise
    floating[:, ::1] dw_ih,          # INOUT (G, I) accumulated
    floating[:, ::1] dw_hh,          # INOUT (G, P) accumulated
    floating[:, ::1] dw_hr,          # INOUT (P, H) accumulated with a projection; None otherwise
    floating[::1] db,                # INOUT (G,) accumulated, or None without bias: b_ih's
                                     #       gradient, and b_hh's but for the GRU's n block
    floating[::1] db_hn,             # INOUT (H,) accumulated: the GRU's b_hn; None for other
                                     #       cells or without bias
    floating[:, ::1] dx,             # INOUT (T·B, I) accumulated, or None to skip
    bint reverse,
    int n_threads,
    const floating[:, ::1] peephole=None,  # IN as given to forward_layer
    double clip=0,                   # IN    as given to forward_layer
    bint input_forget=False,         # IN    as given to forward_layer
    floating[:, ::1] dpeephole=None,  # INOUT (3, H) accumulated, with peephole; else None
    const floating[:, ::1] recurrent_mask=None,  # IN as given to forward_layer
    const floating[::1] layer_norm=None,  # IN as given to forward_layer
    floating[:, ::1] norm=None,      # INOUT as forward_layer left it; overwritten
    floating[::1] dlayer_norm=None,  # INOUT (18H,) accumulated, with layer_norm; else None
):
    """Back-propagate one direction of one layer through the whole sequence.

    With the layer norm, db and dlayer_norm come from the passes' per-row sums (acc),
    added over the rows in order after the loop, and dW_hh from the recurrent products'
    gradient in `norm`."""
    cdef Py_ssize_t B = lengths.shape[0]
    cdef Py_ssize_t TB = x.shape[0], T = TB // B
    cdef Py_ssize_t P, I = x.shape[1], H = _hidden_size(w_hh, w_hr, &P)
    cdef bint with_proj = w_hr is not None
    cdef Py_ssize_t G = _check_layer(cell, w_hh.shape[0], H, c is not None, side is not None,
                                     with_proj)
    cdef Py_ssize_t n_summed = _summed_rows(cell, G, H)
    cdef Py_ssize_t k, r, j, c0, c1, r0, r1, n0
    cdef int n_row = _n_workers(n_threads, B, _recurrence_work(T, B, H, G, P, with_proj, 0))
    # dW_ih and dW_hh have the same G rows: cut both the same way, by their gate rows.
    cdef int n_dw_parts = _gemm_parts(G, <double> TB * G * (I + P))
    cdef int n_dw = _n_workers(n_threads, n_dw_parts, <double> TB * G * (I + P))
    cdef int n_dwr_parts = _gemm_parts(max(P, H), <double> TB * P * H)
    cdef int n_dwr = _n_workers(n_threads, n_dwr_parts, <double> TB * P * H)
    cdef int n_dx_parts = _gemm_parts(max(TB, I), <double> TB * G * I)
    cdef int n_dx = _n_workers(n_threads, n_dx_parts, <double> TB * G * I)
    cdef int n_pack = _n_workers(n_threads, P // tile_columns(&w_hh[0, 0]) + 1,
                                 <double> n_summed * P)
    cdef bint with_bias = db is not None
    cdef bint with_dx = dx is not None
    # h_{t-1} of every step t, in time order: slots 0..T-1 (forward) or 1..T (reverse).
    cdef const floating* h_prev = &h[B if reverse else 0, 0]
    cdef const floating* c_ptr = &c[0, 0] if c is not None else NULL
    cdef floating* dc_ptr = &dc[0, 0] if dc is not None else NULL
    cdef floating* db_ptr = &db[0] if with_bias else NULL
    cdef floating* db_hn_ptr = &db_hn[0] if db_hn is not None else NULL
    cdef floating* side_ptr = &side[0, 0] if side is not None else NULL
    # The GRU's n rows of dW_hh and b_hh: their gradient (ld_n_grad apart) and what it
    # multiplies (H_prev, or r ⊙ h_{t-1} kept in side).
    cdef const floating* n_grad = NULL
    cdef const floating* n_input = h_prev
    cdef Py_ssize_t ld_n_grad = H
    cdef floating* drh = NULL
    cdef floating* zeros = NULL
    cdef floating* peephole_ptr = NULL
    cdef floating clip_value = <floating> (clip if clip > 0 else INFINITY)
    # c_{t-1} and c_t of every step t, in time order (for the peepholes' gradient).
    cdef const floating* c_prev = &c[B if reverse else 0, 0] if c is not None else NULL
    cdef const floating* c_now = &c[0 if reverse else B, 0] if c is not None else NULL
    cdef int n_dp_parts = _gemm_parts(H, <double> TB * 3 * H)
    cdef int n_dp = _n_workers(n_threads, n_dp_parts, <double> TB * 3 * H)
    cdef const floating* mask_ptr
    cdef floating* hm = NULL
    cdef floating* dhm = NULL
    cdef const floating* ln_ptr = NULL
    cdef floating* norm_ptr = NULL
    cdef floating* acc = NULL
    cdef Py_ssize_t lda = LN_NORM_ACC_WIDTH(<int> H)
    # The operand of dW_hh: the gates, or the recurrent part of norm's rows.
    cdef const floating* d_rec = &gates[0, 0]
    cdef Py_ssize_t ld_d_rec = G
    _check_variant(cell, H, peephole, clip, input_forget)
    if _check_layer_norm(cell, H, TB, layer_norm, norm, peephole, clip, input_forget):
        if dlayer_norm is None or dlayer_norm.shape[0] != 18 * H:
            raise ValueError(f"dlayer_norm must be ({18 * H},) with layer_norm")
        ln_ptr = &layer_norm[0]
        norm_ptr = &norm[0, 0]
        d_rec = &norm[0, 4 * H]
        ld_d_rec = norm.shape[1]
    elif dlayer_norm is not None:
        raise ValueError("dlayer_norm must be None without layer_norm")
    mask_ptr = _mask_pointer(recurrent_mask, B, P)
    if (dpeephole is None) != (peephole is None) or (
            dpeephole is not None and (dpeephole.shape[0] != 3 or dpeephole.shape[1] != H)):
        raise ValueError(f"dpeephole must be (3, {H}) with peephole, else None")
    if (dc is None) != (c is None):
        raise ValueError("c and dc must both be given (LSTM) or both be None (other cells)")
    if (proj_grad is None or dw_hr is None) == with_proj or (with_proj and (
            proj_grad.shape[0] != TB or proj_grad.shape[1] != P
            or dw_hr.shape[0] != P or dw_hr.shape[1] != H)):
        raise ValueError(f"proj_grad ({TB}, {P}) and dw_hr ({P}, {H}) must be given with "
                         "w_hr, else None")
    if (h.shape[1] != P or dh.shape[1] != P or dw_hh.shape[1] != P
            or dout.shape[1] < out_col + P or (c is not None and (c.shape[1] != H
                                                                 or dc.shape[1] != H))):
        raise ValueError(f"h, dh and dw_hh must have {P} columns, c and dc {H}, dout at "
                         f"least {out_col + P}")
    if side is not None and (side.shape[0] != TB or side.shape[1] != H):
        raise ValueError(f"side must be ({TB}, {H}), got {side.shape}")
    if ((db_hn is not None) != (with_bias and _is_gru(cell))
            or (db_hn is not None and db_hn.shape[0] != H)):
        raise ValueError(f"db_hn must be ({H},) for the GRU with bias, else None")
    if cell == GRU:
        n_grad = side_ptr
    elif cell == GRU_RESET_BEFORE:
        n_grad = &gates[0, 2 * H]
        ld_n_grad = G
        n_input = side_ptr
    # W_hh packed once for all steps, as the k × n matrix B[k, n] = W_hh[k, n]; the GRU's
    # n rows on their own; W_hr as B[k, n] = W_hr[k, n].
    cdef floating* w_hh_packed = _alloc_packed(&w_hh[0, 0], <int> n_summed, <int> P)
    cdef floating* w_hn_packed = NULL
    cdef floating* w_hr_packed = NULL
    try:
        if _is_gru(cell):
            w_hn_packed = _alloc_packed(&w_hh[0, 0], <int> H, <int> H)
        if with_proj:
            w_hr_packed = _alloc_packed(&w_hh[0, 0], <int> P, <int> H)
            zeros = <floating*> calloc(H, sizeof(floating))
        if cell == GRU_RESET_BEFORE or with_proj:
            # calloc: the projection's dm starts from zeros (see _backward_rows)
            drh = <floating*> calloc(B * H, sizeof(floating))
        if (drh == NULL and (cell == GRU_RESET_BEFORE or with_proj)) or (with_proj and zeros == NULL):
            raise MemoryError("no memory for the backward scratch")
        peephole_ptr = _variant_peephole(peephole, H, clip, input_forget)
        if ln_ptr != NULL:
            acc = <floating*> calloc(B * lda, sizeof(floating))
            if acc == NULL:
                raise MemoryError("no memory for the layer norm's sums")
        if mask_ptr != NULL:
            hm = <floating*> malloc(TB * P * sizeof(floating))
            dhm = <floating*> calloc(B * P, sizeof(floating))
            if hm == NULL or dhm == NULL:
                raise MemoryError("no memory for the recurrent dropout scratch")
            # h_{t-1} ⊙ m of every step, in time order: what the products read forward,
            # for the reset gate's gradient below and dW_hh (and the GRU's dW_hn) after.
            for k in range(T):
                _mask_rows(0, B, 0, P, P, h_prev + k * B * P, mask_ptr, hm + k * B * P)
            h_prev = hm
            if cell == GRU:
                n_input = hm
        with nogil:
            # Threads share the packing by blocks of columns, as in forward_layer.
            for k in prange(n_pack, num_threads=n_pack, schedule='static'):
                _pack_part(<int> k, n_pack, <int> n_summed, <int> P, &w_hh[0, 0], P, 1,
                           w_hh_packed)
            if w_hn_packed != NULL:
                pack(<int> H, <int> H, &w_hh[2 * H, 0], H, 1, w_hn_packed)
            if w_hr_packed != NULL:
                pack(<int> P, <int> H, &w_hr[0, 0], H, 1, w_hr_packed)
            for k in prange(n_row, num_threads=n_row, schedule='static'):
                r0 = _chunk_start(k, n_row, B)
                r1 = _chunk_start(k + 1, n_row, B)
                _backward_rows(cell, r0, r1, T, B, H, G, P, w_hh_packed, w_hn_packed,
                               w_hr_packed, &lengths[0], &gates[0, 0], side_ptr, &h[0, 0],
                               c_ptr, &dout[0, out_col], dout.shape[1], &dh[0, 0], dc_ptr,
                               drh, &proj_grad[0, 0] if with_proj else NULL, zeros,
                               peephole_ptr, clip_value, input_forget, mask_ptr, hm,
                               dhm, ln_ptr, norm_ptr, acc, reverse)
        # After the loop, with the scratch (hm) still there.
        with nogil:
            # Parameter gradients over all T·B rows at once, threads share the gate-row parts.
            for k in prange(n_dw_parts, num_threads=n_dw, schedule='static'):
                c0 = _chunk_start(k, n_dw_parts, G)
                c1 = _chunk_start(k + 1, n_dw_parts, G)
                # dW_ih += dGᵀ · X ; dW_hh += dGᵀ · H_prev (the rows summed into the gates)
                gemm(True, False, <int> (c1 - c0), <int> I, <int> TB,
                     <floating> 1, &gates[0, c0], <int> G, &x[0, 0], <int> I,
                     <floating> 1, &dw_ih[c0, 0], <int> I)
                n0 = c1 if c1 < n_summed else n_summed
                if n0 > c0:
                    gemm(True, False, <int> (n0 - c0), <int> P, <int> TB,
                         <floating> 1, d_rec + c0, <int> ld_d_rec, h_prev, <int> P,
                         <floating> 1, &dw_hh[c0, 0], <int> P)
                if ln_ptr != NULL:
                    # db and the layer norm's parameters: the rows' sums, in row order
                    _layer_norm_grads(c0, c1, B, H, acc, db_ptr, &dlayer_norm[0])
                elif with_bias:
                    for r in range(TB):
                        for j in range(c0, c1):
                            db_ptr[j] += gates[r, j]
                # The GRU's n rows of this part: dW_hn += dG_nᵀ · (H_prev or R ⊙ H_prev)
                n0 = c0 if c0 > n_summed else n_summed
                if n_grad != NULL and c1 > n0:
                    gemm(True, False, <int> (c1 - n0), <int> H, <int> TB,
                         <floating> 1, n_grad + (n0 - n_summed), <int> ld_n_grad, n_input, <int> H,
                         <floating> 1, &dw_hh[n0, 0], <int> H)
                    if db_hn_ptr != NULL:
                        for r in range(TB):
                            for j in range(n0, c1):
                                db_hn_ptr[j - n_summed] += n_grad[r * ld_n_grad + j - n_summed]
            # dW_hr += proj_gradᵀ · M, the projection's inputs m_t kept in side.
            if with_proj:
                for k in prange(n_dwr_parts, num_threads=n_dwr, schedule='static'):
                    _gemm_part(<int> k, n_dwr_parts, True, False, <int> P, <int> H, <int> TB,
                               <floating> 1, &proj_grad[0, 0], <int> P, side_ptr, <int> H,
                               <floating> 1, &dw_hr[0, 0], <int> H)
            # dp_i += Σ da_i ⊙ c_{t-1}, dp_f += Σ da_f ⊙ c_{t-1}, dp_o += Σ da_o ⊙ c_t
            # over all T·B rows (zero gradients at inactive rows), threads share blocks
            # of units.
            if dpeephole is not None:
                for k in prange(n_dp_parts, num_threads=n_dp, schedule='static'):
                    _peephole_grad(_chunk_start(k, n_dp_parts, H),
                                   _chunk_start(k + 1, n_dp_parts, H), TB, H, &gates[0, 0],
                                   c_prev, c_now, &dpeephole[0, 0])
            # dX += dG · W_ih, threads share its parts.
            if with_dx:
                for k in prange(n_dx_parts, num_threads=n_dx, schedule='static'):
                    _gemm_part(<int> k, n_dx_parts, False, False, <int> TB, <int> I, <int> G,
                               <floating> 1, &gates[0, 0], <int> G, &w_ih[0, 0], <int> I,
                               <floating> 1, &dx[0, 0], <int> I)

    finally:
        free(w_hh_packed)
        free(w_hn_packed)
        free(w_hr_packed)
        free(drh)
        free(zeros)
        free(hm)
        free(dhm)
        free(acc)
        if peephole is None:
            free(peephole_ptr)

cdef void _layer_norm_grads(Py_ssize_t c0, Py_ssize_t c1, Py_ssize_t B, Py_ssize_t H,
                            const floating* acc, floating* db, floating* dln) noexcept nogil:
    """Gate columns c0..c1 of the layer norm's gradients from the rows' sums (acc, see
    norm_lstm_cell.h), added over the rows in order: db (when not NULL), dβ_x and dβ_h
    from Σ da, dγ_x from Σ da ⊙ x̂_x, dγ_h from Σ da ⊙ x̂_h; the part holding column 0
    also takes the cell's dγ_c and dβ_c."""
    cdef Py_ssize_t r, j, G = 4 * H, lda = LN_NORM_ACC_WIDTH(<int> H)
    cdef const floating* a
    for r in range(B):
        a = acc + r * lda
        for j in range(c0, c1):
            if db != NULL:
                db[j] += a[j]
            dln[j] += a[G + j]              # γ_x
            dln[G + j] += a[j]              # β_x
            dln[2 * G + j] += a[2 * G + j]  # γ_h
            dln[3 * G + j] += a[j]          # β_h
        if c0 == 0:
            for j in range(H):
                dln[4 * G + j] += a[3 * G + H + j]  # γ_c
                dln[4 * G + H + j] += a[3 * G + j]  # β_c


cdef void _peephole_grad(Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t TB, Py_ssize_t H,
                         const floating* dg, const floating* c_prev, const floating* c_now,
                         floating* dp) noexcept nogil:
    """Units j0..j1 of the peepholes' gradient (dp: rows p_i, p_f, p_o, H apart), summed
    over the rows in order, whatever the threads."""
    cdef Py_ssize_t r, j
    cdef const floating* d
    for r in range(TB):
        d = dg + r * 4 * H
        for j in range(j0, j1):
            dp[j] += d[j] * c_prev[r * H + j]
            dp[H + j] += d[H + j] * c_prev[r * H + j]
            dp[2 * H + j] += d[3 * H + j] * c_now[r * H + j]


# ---------------------------------------------------------------------------------------
# For the tests: what the CPU runs, and the vectorised nonlinearities on their own
# ---------------------------------------------------------------------------------------

def simd_level():
    """The SIMD level the kernels run: 'avx512', 'avx2' or 'generic'."""
    return ln_isa_name().decode()


def elementwise(str name, const floating[::1] x, floating[::1] y):
    """y = exp(x), sigmoid(x) or tanh(x) with the row passes' own vectorised functions."""
    cdef int n = <int> x.shape[0]
    if y.shape[0] != n:
        raise ValueError("x and y must have the same length")
    if n == 0:
        return
    if name == "exp":
        vexp(n, &x[0], &y[0])
    elif name == "sigmoid":
        vsigmoid(n, &x[0], &y[0])
    elif name == "tanh":
        vtanh(n, &x[0], &y[0])
    else:
        raise ValueError(f"unknown function {name!r}")
