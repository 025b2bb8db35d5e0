"""Quantized inference in plain NumPy: the int8 and bfloat16 products of
``lstm_native.quantize`` and the LSTM, GRU and RNN steps around them.

Equations
---------
Only the products ``x_t W_ih^T`` and ``h_{t-1} W_hh^T`` (and a linear head's ``x W^T``)
change; the gates, the cell and the hidden state are the float32 equations of
`lstm_native.reference.lstm`, `.gru` and `.rnn`, on the pre-activation ::

    a = (x_t ⊗ W_ih) + (h_{t-1} ⊗ W_hh) + b        (float32, in this order)

where ⊗ is one of the two products below. The GRU's n gate takes its recurrent term
apart, as in float: r ⊙ (h_{t-1} ⊗ W_hn) + ..., or (r ⊙ h_{t-1}) ⊗ W_hn with the reset
before.

int8. Each row j of a weight matrix W (n × k) is quantized once, symmetric::

    s_w[j] = max_k |W[j, k]| / 127   (1 for a row of zeros)
    Wq[j, k] = clip(rint(W[j, k] / s_w[j]), −127, 127)            int8

and each row of activations a (k,) as it comes (one batch row, one step), unsigned
with a zero point::

    lo = min(0, min a),  hi = max(0, max a),  s = (hi − lo) / 255  (1 when hi = lo)
    z = rint(−lo / s),   q = clip(rint(a / s) + z, 0, 255)        uint8

all in float32, rint to nearest even. Then, the sum exact in integers::

    (a ⊗ W)[j] = float32(Σ_k q[k]·Wq[j, k] − z·Σ_k Wq[j, k]) · s · s_w[j]

with the two multiplications rounded one after the other.

bfloat16. Weights and activations are rounded to bfloat16 (to nearest, ties to even; a
float32 subnormal becomes a signed zero) and multiplied in pairs of k as the AVX512_BF16
dot product does: the float32 sum takes, pair by pair, a[2p+1]·W[j, 2p+1] and then
a[2p]·W[j, 2p] (each product exact in float32, each addition rounded).
"""
from __future__ import annotations

import numpy as np

from ._common import _run_layers, relu, sigmoid

_F32 = np.float32


# -- int8 -------------------------------------------------------------------------------

def quantize_weight_int8(w):
    """W (n × k) as int8 rows with their symmetric scales: (Wq (n, k) int8, s_w (n,))."""
    w = np.asarray(w, _F32)
    peak = np.abs(w).max(axis=1)
    scale = np.where(peak > 0, peak / _F32(127), _F32(1)).astype(_F32)
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def quantize_rows_int8(a):
    """Each row of `a` (m × k) as uint8 codes with its scale and zero point:
    (q (m, k) uint8, s (m,) float32, z (m,) int32)."""
    a = np.asarray(a, _F32)
    lo = np.minimum(a.min(axis=1, initial=0), _F32(0)).astype(_F32)
    hi = np.maximum(a.max(axis=1, initial=0), _F32(0)).astype(_F32)
    scale = np.where(hi > lo, (hi - lo) / _F32(255), _F32(1)).astype(_F32)
    zero = np.minimum(np.rint(-lo / scale), _F32(255))
    q = np.clip(np.rint(a / scale[:, None]) + zero[:, None], 0, 255)
    return q.astype(np.uint8), scale, zero.astype(np.int32)


def matmul_int8(a, w_q, w_scale):
    """a ⊗ W for int8 weights (Wq, s_w): (m × k) times (n × k)^T, float32 (m, n)."""
    q, scale, zero = quantize_rows_int8(a)
    sums = q.astype(np.int64) @ w_q.T.astype(np.int64)
    sums -= zero[:, None].astype(np.int64) * w_q.astype(np.int64).sum(axis=1)[None, :]
    out = sums.astype(np.int32).astype(_F32) * scale[:, None]
    return out * np.asarray(w_scale, _F32)[None, :]


# -- bfloat16 ---------------------------------------------------------------------------

def bfloat16_bits(a):
    """float32 values rounded to bfloat16, as uint16 bit patterns."""
    u = np.ascontiguousarray(a, _F32).view(np.uint32)
    rounded = ((u + np.uint32(0x7FFF) + ((u >> 16) & 1)) >> 16).astype(np.uint32)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    tiny = (u & 0x7F800000) == 0
    bits = np.where(nan, (u >> 16) | 0x40, np.where(tiny, (u >> 16) & 0x8000, rounded))
    return bits.astype(np.uint16)


def bfloat16_values(bits):
    """bfloat16 bit patterns as the float32 values they hold."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(_F32)


def matmul_bfloat16(a, w_bits):
    """a ⊗ W for bfloat16 weights (bit patterns, n × k): float32 (m, n), summed pair by
    pair in the dot product's order."""
    a = bfloat16_values(bfloat16_bits(a))
    w = bfloat16_values(w_bits)
    m, k = a.shape
    if k % 2:
        a = np.concatenate([a, np.zeros((m, 1), _F32)], axis=1)
        w = np.concatenate([w, np.zeros((w.shape[0], 1), _F32)], axis=1)
    out = np.zeros((m, w.shape[0]), _F32)
    for p in range(0, a.shape[1], 2):
        out += a[:, p + 1, None] * w[None, :, p + 1]
        out += a[:, p, None] * w[None, :, p]
    return out


# -- the layers -------------------------------------------------------------------------

def quantize_weight(w, precision):
    """A weight matrix in `precision` ("int8": (Wq, s_w); "bfloat16": its bit patterns)."""
    if precision == "int8":
        return quantize_weight_int8(w)
    if precision == "bfloat16":
        return bfloat16_bits(w)
    raise ValueError(f"precision must be 'int8' or 'bfloat16', got {precision!r}")


def product(a, w, precision):
    """a ⊗ W with W as `quantize_weight` returned it."""
    return matmul_int8(a, *w) if precision == "int8" else matmul_bfloat16(a, w)


def linear(x, w, b, precision):
    """A linear head, (x ⊗ W) + b."""
    out = product(np.asarray(x, _F32), w, precision)
    return out if b is None else out + np.asarray(b, _F32)


def _lstm_step(x_t, h_prev, c_prev, w_ih, w_hh, b, precision):
    a = product(x_t, w_ih, precision) + product(h_prev, w_hh, precision) + b
    H = h_prev.shape[1]
    i, f = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H])
    g, o = np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
    c = f * c_prev + i * g
    return o * np.tanh(c), c


def _gru_step(x_t, h_prev, w_ih, w_hh, w_hn, b, b_hn, reset_after, precision):
    H = h_prev.shape[1]
    a = product(x_t, w_ih, precision)
    a[:, :2 * H] += product(h_prev, w_hh, precision)
    r = sigmoid(a[:, :H] + b[:H])
    z = sigmoid(a[:, H:2 * H] + b[H:2 * H])
    if reset_after:
        n = np.tanh(a[:, 2 * H:] + b[2 * H:] + r * (product(h_prev, w_hn, precision) + b_hn))
    else:
        n = np.tanh((a[:, 2 * H:] + product(r * h_prev, w_hn, precision)) + b[2 * H:])
    return (1 - z) * n + z * h_prev


def _rnn_step(x_t, h_prev, w_ih, w_hh, b, nonlinearity, precision):
    a = product(x_t, w_ih, precision) + product(h_prev, w_hh, precision) + b
    return np.tanh(a) if nonlinearity == "tanh" else relu(a)


def quantized_forward(kind, x, layers, h0, c0=None, lengths=None, *, precision,
                      num_directions=1, nonlinearity="tanh", reset_after=True):
    """A quantized LSTM, GRU or RNN over a time-major batch x (T, N, I).

    `layers[layer·D + direction]` holds that layer and direction's weights as
    `quantize_weight` returns them and its float32 biases as the kernels add them:
    ``{"w_ih", "w_hh", "b"}`` (b = b_ih + b_hh, or zeros); for the GRU ``w_hh`` holds
    its r and z rows, ``w_hn`` its n rows, b = (b_ir + b_hr, b_iz + b_hz, b_in) and
    ``b_hn`` with the reset after, b = (..., b_in + b_hn) with it before. h0 (and the
    LSTM's c0): (D·L, N, H).

    Returns (out (T, N, D·H), h_n) or, for the LSTM, (out, (h_n, c_n)), float32.
    """
    x = np.asarray(x, _F32)
    T, N, _ = x.shape
    lengths = np.full(N, T) if lengths is None else np.asarray(lengths)
    states0 = [np.asarray(h0, _F32)] + ([np.asarray(c0, _F32)] if kind == "lstm" else [])
    D = num_directions

    def step_for(layer, direction, in_size):
        p = layers[layer * D + direction]
        if kind == "lstm":
            def step(x_t, states, active):
                return _lstm_step(x_t, *states, p["w_ih"], p["w_hh"], p["b"], precision), None
        elif kind == "gru":
            def step(x_t, states, active):
                return (_gru_step(x_t, states[0], p["w_ih"], p["w_hh"], p["w_hn"], p["b"],
                                  p.get("b_hn"), reset_after, precision),), None
        else:
            def step(x_t, states, active):
                return (_rnn_step(x_t, states[0], p["w_ih"], p["w_hh"], p["b"],
                                  nonlinearity, precision),), None
        return step

    out, finals, _ = _run_layers(x, lengths, {}, len(layers) // D, D, states0, step_for)
    return (out, (finals[0], finals[1])) if kind == "lstm" else (out, finals[0])
