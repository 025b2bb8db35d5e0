"""A readable LSTM, Elman RNN and GRU in plain NumPy: forward pass and backpropagation
through time.

This module is the independent witness the native kernels are tested against. It
favours clarity over speed: one small function per gate, a Python loop over time, and
every derivative written out by name. It imports nothing but NumPy.

Equations
---------
For one layer and one direction, at step t, with input x_t (N, I), previous hidden
state h_{t-1} (N, H) and previous cell state c_{t-1} (N, H)::

    i_t = σ(x_t W_xi^T + h_{t-1} W_hi^T + b_i)        input gate
    f_t = σ(x_t W_xf^T + h_{t-1} W_hf^T + b_f)        forget gate
    g_t = tanh(x_t W_xg^T + h_{t-1} W_hg^T + b_g)     candidate cell
    o_t = σ(x_t W_xo^T + h_{t-1} W_ho^T + b_o)        output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                   cell state
    h_t = o_t ⊙ tanh(c_t)                             hidden state

where σ is the logistic sigmoid and ⊙ the elementwise product.

Parameters are stored exactly as in ``torch.nn.LSTM``: the four gates are stacked
row-wise in the order i, f, g, o, so for hidden size H::

    weight_ih_l{k}  (4H, I_k)   rows [0:H] = W_xi, [H:2H] = W_xf, [2H:3H] = W_xg, [3H:4H] = W_xo
    weight_hh_l{k}  (4H, H)     the same for W_h*
    bias_ih_l{k}    (4H,)       optional (bias=False drops both biases)
    bias_hh_l{k}    (4H,)       optional; b_* = bias_ih + bias_hh

Layer k reads I_0 = I features, or I_k = D·H for k > 0 (the previous layer's output,
D = 2 for a bidirectional LSTM, else 1). The reverse direction's parameters carry the
suffix ``_reverse``.

Backward through one step, given dh = ∂L/∂h_t and dc = ∂L/∂c_t (the part of the cell
gradient coming from step t + 1)::

    d_output    = dh ⊙ tanh(c_t)
    dc         += dh ⊙ o_t ⊙ (1 − tanh²(c_t))
    d_input     = dc ⊙ g_t
    d_forget    = dc ⊙ c_{t-1}
    d_candidate = dc ⊙ i_t
    dc_{t-1}    = dc ⊙ f_t

then through the nonlinearities to the pre-activations a_*,
σ'(a) = σ(a)(1 − σ(a)) and tanh'(a) = 1 − tanh²(a)::

    da_i = d_input ⊙ i_t ⊙ (1 − i_t)
    da_f = d_forget ⊙ f_t ⊙ (1 − f_t)
    da_g = d_candidate ⊙ (1 − g_t²)
    da_o = d_output ⊙ o_t ⊙ (1 − o_t)

and with da = [da_i, da_f, da_g, da_o] (N, 4H)::

    dx_t      = da W_ih          dW_ih += da^T x_t        db_ih += Σ_n da
    dh_{t-1}  = da W_hh          dW_hh += da^T h_{t-1}    db_hh += Σ_n da

With a projection (``proj_size`` P > 0, LSTMP: Sak et al. 2014, as ``torch.nn.LSTM``)
the hidden state is projected to P features before it leaves the step::

    m_t = o_t ⊙ tanh(c_t)                             (N, H)
    h_t = m_t W_hr^T                                  (N, P)

with ``weight_hr_l{k}`` (P, H); ``weight_hh_l{k}`` is then (4H, P), h is P wide (c stays
H wide) and layer k > 0 reads D·P features. Backward first takes dh through the
projection, dm = dh W_hr and dW_hr += dh^T m_t, then goes on as above with dm in the
place of dh.

Variable-length batches (``lengths``) follow ``torch.nn.utils.rnn.pack_padded_sequence``:
sequence n only has steps 0 .. lengths[n] − 1. At a step past its end a sequence is
simply left out of the computation, so its state is carried unchanged, its output is
zero and nothing flows back into its padded input. The reverse direction therefore
starts at each sequence's own last valid step from the initial state.

The Elman RNN
-------------
``torch.nn.RNN`` has one gate and no cell state::

    h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)      act = tanh or relu

with ``weight_ih_l{k}`` (H, I_k), ``weight_hh_l{k}`` (H, H), ``bias_ih_l{k}`` and
``bias_hh_l{k}`` (H,), and the same layers, directions and lengths as above. Backward
through one step, given dh = ∂L/∂h_t, goes to the pre-activation a through the
derivative written with h_t itself, tanh'(a) = 1 − h_t², relu'(a) = [h_t > 0]::

    da = dh ⊙ (1 − h_t²)   or   da = dh ⊙ [h_t > 0]
    dx_t = da W_ih    dh_{t-1} = da W_hh    dW_ih += da^T x_t    dW_hh += da^T h_{t-1}

The GRU
-------
``torch.nn.GRU`` has three gates, stacked r, z, n in ``weight_ih_l{k}`` (3H, I_k),
``weight_hh_l{k}`` (3H, H), ``bias_ih_l{k}`` and ``bias_hh_l{k}`` (3H,), and no cell
state::

    r_t = σ(x_t W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr)              reset gate
    z_t = σ(x_t W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)              update gate
    n_t = tanh(x_t W_in^T + b_in + r_t ⊙ (h_{t-1} W_hn^T + b_hn))   candidate ("new gate")
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}                           hidden state

The other standard GRU (Keras's reset_after=False, ONNX's linear_before_reset=0) applies
the reset gate before the recurrent product: n_t = tanh(x_t W_in^T + b_in +
(r_t ⊙ h_{t-1}) W_hn^T + b_hn). With the reset after, r multiplies b_hn, so bias_ih
and bias_hh get different gradients in their n block; `gru_cell_backward` writes the
steps out.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "sigmoid",
    "input",
    "forget",
    "candidate",
    "output",
    "cell",
    "hidden",
    "projection",
    "lstm_cell_forward",
    "lstm_cell_backward",
    "lstm_forward",
    "lstm_backward",
    "relu",
    "rnn_hidden",
    "rnn_cell_forward",
    "rnn_cell_backward",
    "rnn_forward",
    "rnn_backward",
    "reset",
    "update",
    "gru_candidate",
    "gru_hidden",
    "gru_cell_forward",
    "gru_cell_backward",
    "gru_forward",
    "gru_backward",
]


# ----------------------------------------------------------------------------------
# The gates, one function each
# ----------------------------------------------------------------------------------

def sigmoid(z):
    """The logistic function σ(z) = 1 / (1 + exp(−z)), without overflow for large |z|."""
    e = np.exp(-np.abs(z))  # in (0, 1]: never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def input(x_t, h_prev, W_xi, W_hi, b_i):  # noqa: A001 - shadows the builtin on purpose
    """Input gate: i_t = σ(x_t W_xi^T + h_{t-1} W_hi^T + b_i)."""
    return sigmoid(x_t @ W_xi.T + h_prev @ W_hi.T + b_i)


def forget(x_t, h_prev, W_xf, W_hf, b_f):
    """Forget gate: f_t = σ(x_t W_xf^T + h_{t-1} W_hf^T + b_f)."""
    return sigmoid(x_t @ W_xf.T + h_prev @ W_hf.T + b_f)


def candidate(x_t, h_prev, W_xg, W_hg, b_g):
    """Candidate cell: g_t = tanh(x_t W_xg^T + h_{t-1} W_hg^T + b_g)."""
    return np.tanh(x_t @ W_xg.T + h_prev @ W_hg.T + b_g)


def output(x_t, h_prev, W_xo, W_ho, b_o):
    """Output gate: o_t = σ(x_t W_xo^T + h_{t-1} W_ho^T + b_o)."""
    return sigmoid(x_t @ W_xo.T + h_prev @ W_ho.T + b_o)


def cell(f_t, i_t, g_t, c_prev):
    """Cell state: c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t."""
    return f_t * c_prev + i_t * g_t


def hidden(o_t, c_t):
    """Hidden state: h_t = o_t ⊙ tanh(c_t)."""
    return o_t * np.tanh(c_t)


def projection(m_t, W_hr):
    """Projected hidden state (LSTMP): h_t = m_t W_hr^T."""
    return m_t @ W_hr.T


def _gate_blocks(stacked, H):
    """Split PyTorch's stacked (4H, ...) weights or (4H,) bias into (i, f, g, o)."""
    return stacked[0:H], stacked[H:2 * H], stacked[2 * H:3 * H], stacked[3 * H:4 * H]


# ----------------------------------------------------------------------------------
# One step
# ----------------------------------------------------------------------------------

def lstm_cell_forward(x_t, h_prev, c_prev, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None):
    """One LSTM step, as ``torch.nn.LSTMCell`` (or one step of an LSTM with a projection).

    Parameters
    ----------
    x_t : numpy.ndarray, shape (N, I)
        Input at this step.
    h_prev : numpy.ndarray, shape (N, P)
        Hidden state of the previous step; P = H without a projection.
    c_prev : numpy.ndarray, shape (N, H)
        Cell state of the previous step.
    w_ih : numpy.ndarray, shape (4H, I)
        Input-to-hidden weights, gates stacked i, f, g, o.
    w_hh : numpy.ndarray, shape (4H, P)
        Hidden-to-hidden weights, gates stacked i, f, g, o.
    b_ih, b_hh : numpy.ndarray of shape (4H,), or None
        The two biases; None means absent.
    w_hr : numpy.ndarray of shape (P, H), or None
        The projection; None means none (h_t = m_t).

    Returns
    -------
    h : numpy.ndarray, shape (N, P)
        New hidden state h_t.
    c : numpy.ndarray, shape (N, H)
        New cell state c_t.
    cache : dict
        Everything `lstm_cell_backward` needs.
    """
    H = c_prev.shape[1]
    W_xi, W_xf, W_xg, W_xo = _gate_blocks(w_ih, H)
    W_hi, W_hf, W_hg, W_ho = _gate_blocks(w_hh, H)

    b = np.zeros(4 * H, dtype=x_t.dtype)
    if b_ih is not None:
        b = b + b_ih
    if b_hh is not None:
        b = b + b_hh
    b_i, b_f, b_g, b_o = _gate_blocks(b, H)

    i_t = input(x_t, h_prev, W_xi, W_hi, b_i)
    f_t = forget(x_t, h_prev, W_xf, W_hf, b_f)
    g_t = candidate(x_t, h_prev, W_xg, W_hg, b_g)
    o_t = output(x_t, h_prev, W_xo, W_ho, b_o)
    c_t = cell(f_t, i_t, g_t, c_prev)
    m_t = hidden(o_t, c_t)
    h_t = m_t if w_hr is None else projection(m_t, w_hr)

    cache = {
        "x_t": x_t, "h_prev": h_prev, "c_prev": c_prev,
        "i": i_t, "f": f_t, "g": g_t, "o": o_t, "c": c_t, "m": m_t,
        "w_ih": w_ih, "w_hh": w_hh, "w_hr": w_hr,
        "has_bias_ih": b_ih is not None, "has_bias_hh": b_hh is not None,
    }
    return h_t, c_t, cache


def lstm_cell_backward(dh, dc, cache):
    """Backward through one LSTM step.

    Parameters
    ----------
    dh : numpy.ndarray, shape (N, P)
        ∂L/∂h_t (everything that reaches h_t: the output and the next step).
    dc : numpy.ndarray, shape (N, H)
        ∂L/∂c_t arriving directly (from the next step or from c_n), not through h_t.
    cache : dict
        As returned by `lstm_cell_forward`.

    Returns
    -------
    dx : numpy.ndarray, shape (N, I)
        ∂L/∂x_t.
    dh_prev : numpy.ndarray, shape (N, P)
        ∂L/∂h_{t-1}.
    dc_prev : numpy.ndarray, shape (N, H)
        ∂L/∂c_{t-1}.
    grads : dict of str to numpy.ndarray
        "weight_ih" (4H, I), "weight_hh" (4H, P), "weight_hr" (P, H) with a projection,
        and "bias_ih" / "bias_hh" (4H,) for those biases that were given.
    """
    x_t, h_prev, c_prev = cache["x_t"], cache["h_prev"], cache["c_prev"]
    i_t, f_t, g_t, o_t, c_t = cache["i"], cache["f"], cache["g"], cache["o"], cache["c"]

    grads = {}
    if cache["w_hr"] is not None:
        # Through the projection h_t = m_t W_hr^T first.
        grads["weight_hr"] = dh.T @ cache["m"]
        dh = dh @ cache["w_hr"]

    tanh_c = np.tanh(c_t)
    d_output = dh * tanh_c
    dc = dc + dh * o_t * (1.0 - tanh_c ** 2)
    d_input = dc * g_t
    d_forget = dc * c_prev
    d_candidate = dc * i_t
    dc_prev = dc * f_t

    # Through the nonlinearities, to the pre-activations.
    da_i = d_input * i_t * (1.0 - i_t)
    da_f = d_forget * f_t * (1.0 - f_t)
    da_g = d_candidate * (1.0 - g_t ** 2)
    da_o = d_output * o_t * (1.0 - o_t)
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)  # (N, 4H), PyTorch's order

    dx = da @ cache["w_ih"]
    dh_prev = da @ cache["w_hh"]
    grads["weight_ih"] = da.T @ x_t
    grads["weight_hh"] = da.T @ h_prev
    if cache["has_bias_ih"]:
        grads["bias_ih"] = da.sum(axis=0)
    if cache["has_bias_hh"]:
        grads["bias_hh"] = da.sum(axis=0)
    return dx, dh_prev, dc_prev, grads


# ----------------------------------------------------------------------------------
# Whole sequences, stacked layers, both directions
# ----------------------------------------------------------------------------------

def _param_name(kind, layer, direction):
    """PyTorch's parameter name, e.g. ``weight_ih_l1_reverse``."""
    return f"{kind}_l{layer}" + ("_reverse" if direction == 1 else "")


def _layer_params(params, layer, direction, in_size, H, dtype, n_gates=4, proj_size=0):
    """(w_ih, w_hh, b_ih, b_hh, w_hr) of one layer and direction, checked and cast to
    dtype; n_gates blocks of H rows (4 for the LSTM, 1 for the RNN, 3 for the GRU); w_hr
    (proj_size, H) with a projection, else None."""
    G = n_gates * H
    P = proj_size or H
    expected = {
        "weight_ih": (G, in_size),
        "weight_hh": (G, P),
        "bias_ih": (G,),
        "bias_hh": (G,),
        "weight_hr": (P, H),
    }
    out = []
    for kind, shape in expected.items():
        name = _param_name(kind, layer, direction)
        if kind == "weight_hr" and not proj_size:
            out.append(None)
            continue
        if name not in params:
            if kind.startswith("bias"):
                out.append(None)
                continue
            raise KeyError(f"params is missing {name!r}")
        p = np.asarray(params[name], dtype=dtype)
        if p.shape != shape:
            raise ValueError(f"params[{name!r}] must have shape {shape}, got {p.shape}")
        out.append(p)
    return tuple(out)


def _check_lengths(lengths, T, N):
    """Lengths as an int array of N values in 1..T (all T when None)."""
    if lengths is None:
        return np.full(N, T, dtype=np.int64)
    lengths = np.asarray(lengths)
    if lengths.shape != (N,) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be {N} ints, got {lengths!r}")
    if lengths.min() < 1 or lengths.max() > T:
        raise ValueError(f"lengths must lie in 1..{T}, got {lengths}")
    return lengths.astype(np.int64)


def _check_sequence(x, params, lengths, num_layers, bidirectional, projection=False):
    """x as a (T, N, I) float array and lengths as N ints in 1..T; params must hold no
    names but a stack of num_layers (bidirectional) layers' weights and biases (and
    projections, when `projection`)."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (T, N, I), got {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    T, N, _ = x.shape
    known = {
        _param_name(kind, layer, d)
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        + (("weight_hr",) if projection else ())
        for layer in range(num_layers)
        for d in range(2 if bidirectional else 1)
    }
    unknown = set(params) - known
    if unknown:
        raise KeyError(f"params has unexpected entries {sorted(unknown)}")
    return x, _check_lengths(lengths, T, N)


def lstm_forward(x, params, hx=None, lengths=None, *, num_layers=1, bidirectional=False):
    """Forward pass of a multi-layer LSTM over a time-major batch, as ``torch.nn.LSTM``.

    Parameters
    ----------
    x : numpy.ndarray, shape (T, N, I)
        Input sequences, time-major. Its dtype (float32 or float64) is the dtype of the
        whole computation.
    params : dict of str to numpy.ndarray
        PyTorch's names and shapes: ``weight_ih_l{k}`` (4H, I_k), ``weight_hh_l{k}``
        (4H, P), optionally ``bias_ih_l{k}`` and ``bias_hh_l{k}`` (4H,), and with a
        projection ``weight_hr_l{k}`` (P, H), each with the suffix ``_reverse`` for the
        reverse direction. P = H without a projection; I_0 = I, I_k = D·P for k > 0.
    hx : tuple of two numpy.ndarray, or None
        (h0, c0), (D·L, N, P) and (D·L, N, H), index layer·D + direction; None means
        zeros.
    lengths : sequence of int, or None
        N lengths in 1..T, any order; sequence n has the valid steps 0..lengths[n] − 1
        (as ``pack_padded_sequence(enforce_sorted=False)``). None means all T.
    num_layers : int, default 1
        L, the number of stacked layers.
    bidirectional : bool, default False
        Whether each layer also runs backwards in time (D = 2).

    Returns
    -------
    out : numpy.ndarray, shape (T, N, D·P)
        Hidden state of the last layer at every step, forward direction in [..., :P],
        reverse in [..., P:]; zero at padded steps (t >= lengths[n]).
    (h_n, c_n) : tuple of numpy.ndarray, (D·L, N, P) and (D·L, N, H)
        Hidden and cell state of every layer and direction after its last valid step
        (for the reverse direction: after step 0).
    cache : dict
        Everything `lstm_backward` needs.
    """
    projected = "weight_hr_l0" in params
    x, lengths = _check_sequence(x, params, lengths, num_layers, bidirectional, projected)
    dtype = x.dtype
    T, N, _ = x.shape
    L = num_layers
    D = 2 if bidirectional else 1
    H = np.asarray(params["weight_ih_l0"]).shape[0] // 4
    P = np.asarray(params["weight_hr_l0"]).shape[0] if projected else H

    if hx is None:
        h0 = np.zeros((D * L, N, P), dtype=dtype)
        c0 = np.zeros((D * L, N, H), dtype=dtype)
    else:
        h0 = np.asarray(hx[0], dtype=dtype)
        c0 = np.asarray(hx[1], dtype=dtype)
        for name, s, size in (("h0", h0, P), ("c0", c0, H)):
            if s.shape != (D * L, N, size):
                raise ValueError(f"{name} must have shape {(D * L, N, size)}, got {s.shape}")

    h_n = np.zeros((D * L, N, P), dtype=dtype)
    c_n = np.zeros((D * L, N, H), dtype=dtype)
    layer_caches = []  # layer_caches[layer][direction][t] = cell cache, or None if no row ran

    layer_in = x
    for layer in range(L):
        in_size = layer_in.shape[2]
        layer_out = np.zeros((T, N, D * P), dtype=dtype)
        direction_caches = []
        for d in range(D):
            w_ih, w_hh, b_ih, b_hh, w_hr = _layer_params(params, layer, d, in_size, H, dtype,
                                                         proj_size=P if projected else 0)
            h = h0[layer * D + d].copy()
            c = c0[layer * D + d].copy()
            step_caches = [None] * T
            time_steps = range(T) if d == 0 else reversed(range(T))
            for t in time_steps:
                active = t < lengths  # the sequences that have a step t
                if not active.any():
                    continue
                h_new, c_new, step_caches[t] = lstm_cell_forward(
                    layer_in[t, active], h[active], c[active], w_ih, w_hh, b_ih, b_hh, w_hr
                )
                h[active] = h_new
                c[active] = c_new
                layer_out[t, active, d * P:(d + 1) * P] = h_new
            h_n[layer * D + d] = h
            c_n[layer * D + d] = c
            direction_caches.append(step_caches)
        layer_caches.append(direction_caches)
        layer_in = layer_out

    cache = {
        "layer_caches": layer_caches,
        "lengths": lengths,
        "shape": (T, N, H),
        "proj_size": P if projected else 0,
        "input_size": x.shape[2],
        "num_layers": L,
        "num_directions": D,
        "dtype": dtype,
        "param_names": sorted(params),
    }
    return layer_in, (h_n, c_n), cache


def lstm_backward(dout, cache, dhx=None):
    """Backpropagation through time for `lstm_forward`.

    Parameters
    ----------
    dout : numpy.ndarray, shape (T, N, D·P)
        ∂L/∂out. Entries at padded steps (t >= lengths[n]) are ignored.
    cache : dict
        As returned by `lstm_forward`.
    dhx : tuple of two numpy.ndarray, or None
        (dh_n, dc_n), (D·L, N, P) and (D·L, N, H): ∂L/∂h_n and ∂L/∂c_n; None means zeros.

    Returns
    -------
    dx : numpy.ndarray, shape (T, N, I)
        ∂L/∂x; zero at padded steps.
    (dh0, dc0) : tuple of numpy.ndarray, (D·L, N, P) and (D·L, N, H)
        ∂L/∂h0 and ∂L/∂c0.
    grads : dict of str to numpy.ndarray
        ∂L/∂ of every parameter, same keys and shapes as the ``params`` given to
        `lstm_forward`.
    """
    T, N, H = cache["shape"]
    P = cache["proj_size"] or H
    L, D, dtype = cache["num_layers"], cache["num_directions"], cache["dtype"]
    lengths = cache["lengths"]
    dout = np.asarray(dout, dtype=dtype)
    if dout.shape != (T, N, D * P):
        raise ValueError(f"dout must have shape {(T, N, D * P)}, got {dout.shape}")
    if dhx is None:
        dh_n = np.zeros((D * L, N, P), dtype=dtype)
        dc_n = np.zeros((D * L, N, H), dtype=dtype)
    else:
        dh_n = np.asarray(dhx[0], dtype=dtype)
        dc_n = np.asarray(dhx[1], dtype=dtype)
        for name, s, size in (("dh_n", dh_n, P), ("dc_n", dc_n, H)):
            if s.shape != (D * L, N, size):
                raise ValueError(f"{name} must have shape {(D * L, N, size)}, got {s.shape}")

    grads = {}
    dh0 = np.zeros((D * L, N, P), dtype=dtype)
    dc0 = np.zeros((D * L, N, H), dtype=dtype)

    d_layer_out = dout
    for layer in reversed(range(L)):
        in_size = cache["input_size"] if layer == 0 else D * P
        d_layer_in = np.zeros((T, N, in_size), dtype=dtype)
        for d in range(D):
            step_caches = cache["layer_caches"][layer][d]
            names = {kind: _param_name(kind, layer, d)
                     for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")}
            grads[names["weight_ih"]] = np.zeros((4 * H, in_size), dtype=dtype)
            grads[names["weight_hh"]] = np.zeros((4 * H, P), dtype=dtype)
            if cache["proj_size"]:
                grads[names["weight_hr"]] = np.zeros((P, H), dtype=dtype)
            for kind in ("bias_ih", "bias_hh"):
                if names[kind] in cache["param_names"]:
                    grads[names[kind]] = np.zeros(4 * H, dtype=dtype)

            dh = dh_n[layer * D + d].copy()  # ∂L/∂h carried back from later steps
            dc = dc_n[layer * D + d].copy()  # ∂L/∂c carried back from later steps
            # Visit the steps in the opposite order of the forward pass.
            time_steps = reversed(range(T)) if d == 0 else range(T)
            for t in time_steps:
                active = t < lengths
                if not active.any():
                    continue
                dh_t = dh[active] + d_layer_out[t, active, d * P:(d + 1) * P]
                dx_t, dh_prev, dc_prev, step_grads = lstm_cell_backward(
                    dh_t, dc[active], step_caches[t]
                )
                dh[active] = dh_prev
                dc[active] = dc_prev
                d_layer_in[t, active] += dx_t
                for kind, g in step_grads.items():
                    grads[names[kind]] += g
            dh0[layer * D + d] = dh
            dc0[layer * D + d] = dc
        d_layer_out = d_layer_in

    return d_layer_out, (dh0, dc0), grads


# ----------------------------------------------------------------------------------
# The Elman RNN: one gate, no cell state
# ----------------------------------------------------------------------------------

def relu(z):
    """The rectifier relu(z) = max(z, 0)."""
    return np.maximum(z, 0)


def rnn_hidden(x_t, h_prev, w_ih, w_hh, b, nonlinearity):
    """Hidden state: h_t = act(x_t W_ih^T + h_{t-1} W_hh^T + b), act = tanh or relu."""
    pre = x_t @ w_ih.T + h_prev @ w_hh.T + b
    return np.tanh(pre) if nonlinearity == "tanh" else relu(pre)


def _check_nonlinearity(nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity


def rnn_cell_forward(x_t, h_prev, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """One Elman RNN step, as ``torch.nn.RNNCell``.

    Parameters
    ----------
    x_t : numpy.ndarray, shape (N, I)
        Input at this step.
    h_prev : numpy.ndarray, shape (N, H)
        Hidden state of the previous step.
    w_ih : numpy.ndarray, shape (H, I)
    w_hh : numpy.ndarray, shape (H, H)
    b_ih, b_hh : numpy.ndarray of shape (H,), or None
        The two biases; None means absent.
    nonlinearity : {"tanh", "relu"}

    Returns
    -------
    h : numpy.ndarray, shape (N, H)
        New hidden state h_t.
    cache : dict
        Everything `rnn_cell_backward` needs.
    """
    nonlinearity = _check_nonlinearity(nonlinearity)
    H = h_prev.shape[1]
    b = np.zeros(H, dtype=x_t.dtype)
    if b_ih is not None:
        b = b + b_ih
    if b_hh is not None:
        b = b + b_hh
    h_t = rnn_hidden(x_t, h_prev, w_ih, w_hh, b, nonlinearity)
    cache = {
        "x_t": x_t, "h_prev": h_prev, "h": h_t, "w_ih": w_ih, "w_hh": w_hh,
        "nonlinearity": nonlinearity,
        "has_bias_ih": b_ih is not None, "has_bias_hh": b_hh is not None,
    }
    return h_t, cache


def rnn_cell_backward(dh, cache):
    """Backward through one Elman RNN step.

    Parameters
    ----------
    dh : numpy.ndarray, shape (N, H)
        ∂L/∂h_t (everything that reaches h_t: the output and the next step).
    cache : dict
        As returned by `rnn_cell_forward`.

    Returns
    -------
    dx : numpy.ndarray, shape (N, I)
        ∂L/∂x_t.
    dh_prev : numpy.ndarray, shape (N, H)
        ∂L/∂h_{t-1}.
    grads : dict of str to numpy.ndarray
        "weight_ih" (H, I), "weight_hh" (H, H), and "bias_ih" / "bias_hh" (H,) for those
        biases that were given.
    """
    h_t = cache["h"]
    # Through the nonlinearity, to the pre-activation, with its derivative written
    # in terms of h_t: tanh' = 1 − tanh², relu' = 1 where the output is positive.
    if cache["nonlinearity"] == "tanh":
        da = dh * (1.0 - h_t ** 2)
    else:
        da = dh * (h_t > 0)
    dx = da @ cache["w_ih"]
    dh_prev = da @ cache["w_hh"]
    grads = {"weight_ih": da.T @ cache["x_t"], "weight_hh": da.T @ cache["h_prev"]}
    if cache["has_bias_ih"]:
        grads["bias_ih"] = da.sum(axis=0)
    if cache["has_bias_hh"]:
        grads["bias_hh"] = da.sum(axis=0)
    return dx, dh_prev, grads


def rnn_forward(x, params, h0=None, lengths=None, *, num_layers=1, bidirectional=False,
                nonlinearity="tanh"):
    """Forward pass of a multi-layer Elman RNN over a time-major batch, as ``torch.nn.RNN``.

    Parameters
    ----------
    x : numpy.ndarray, shape (T, N, I)
        Input sequences, time-major. Its dtype (float32 or float64) is the dtype of the
        whole computation.
    params : dict of str to numpy.ndarray
        PyTorch's names and shapes: ``weight_ih_l{k}`` (H, I_k), ``weight_hh_l{k}``
        (H, H), optionally ``bias_ih_l{k}`` and ``bias_hh_l{k}`` (H,), each with the
        suffix ``_reverse`` for the reverse direction. I_0 = I, I_k = D·H for k > 0.
    h0 : numpy.ndarray, shape (D·L, N, H), or None
        Initial hidden state, index layer·D + direction; None means zeros.
    lengths : sequence of int, or None
        N lengths in 1..T, any order (as ``pack_padded_sequence(enforce_sorted=False)``).
        None means all T.
    num_layers : int, default 1
        L, the number of stacked layers.
    bidirectional : bool, default False
        Whether each layer also runs backwards in time (D = 2).
    nonlinearity : {"tanh", "relu"}, default "tanh"

    Returns
    -------
    out : numpy.ndarray, shape (T, N, D·H)
        Hidden state of the last layer at every step, forward direction in [..., :H],
        reverse in [..., H:]; zero at padded steps (t >= lengths[n]).
    h_n : numpy.ndarray, shape (D·L, N, H)
        Hidden state of every layer and direction after its last valid step (for the
        reverse direction: after step 0).
    cache : dict
        Everything `rnn_backward` needs.
    """
    nonlinearity = _check_nonlinearity(nonlinearity)
    x, lengths = _check_sequence(x, params, lengths, num_layers, bidirectional)
    dtype = x.dtype
    T, N, _ = x.shape
    L = num_layers
    D = 2 if bidirectional else 1
    H = np.asarray(params["weight_hh_l0"]).shape[1]
    if h0 is None:
        h0 = np.zeros((D * L, N, H), dtype=dtype)
    else:
        h0 = np.asarray(h0, dtype=dtype)
        if h0.shape != (D * L, N, H):
            raise ValueError(f"h0 must have shape {(D * L, N, H)}, got {h0.shape}")

    h_n = np.zeros((D * L, N, H), dtype=dtype)
    layer_caches = []  # layer_caches[layer][direction][t] = cell cache, or None if no row ran

    layer_in = x
    for layer in range(L):
        in_size = layer_in.shape[2]
        layer_out = np.zeros((T, N, D * H), dtype=dtype)
        direction_caches = []
        for d in range(D):
            w_ih, w_hh, b_ih, b_hh, _ = _layer_params(params, layer, d, in_size, H, dtype,
                                                   n_gates=1)
            h = h0[layer * D + d].copy()
            step_caches = [None] * T
            time_steps = range(T) if d == 0 else reversed(range(T))
            for t in time_steps:
                active = t < lengths  # the sequences that have a step t
                if not active.any():
                    continue
                h_new, step_caches[t] = rnn_cell_forward(
                    layer_in[t, active], h[active], w_ih, w_hh, b_ih, b_hh, nonlinearity
                )
                h[active] = h_new
                layer_out[t, active, d * H:(d + 1) * H] = h_new
            h_n[layer * D + d] = h
            direction_caches.append(step_caches)
        layer_caches.append(direction_caches)
        layer_in = layer_out

    cache = {
        "layer_caches": layer_caches,
        "lengths": lengths,
        "shape": (T, N, H),
        "input_size": x.shape[2],
        "num_layers": L,
        "num_directions": D,
        "dtype": dtype,
        "param_names": sorted(params),
    }
    return layer_in, h_n, cache


def rnn_backward(dout, cache, dh_n=None):
    """Backpropagation through time for `rnn_forward`.

    Parameters
    ----------
    dout : numpy.ndarray, shape (T, N, D·H)
        ∂L/∂out. Entries at padded steps (t >= lengths[n]) are ignored.
    cache : dict
        As returned by `rnn_forward`.
    dh_n : numpy.ndarray, shape (D·L, N, H), or None
        ∂L/∂h_n; None means zeros.

    Returns
    -------
    dx : numpy.ndarray, shape (T, N, I)
        ∂L/∂x; zero at padded steps.
    dh0 : numpy.ndarray, shape (D·L, N, H)
        ∂L/∂h0.
    grads : dict of str to numpy.ndarray
        ∂L/∂ of every parameter, same keys and shapes as the ``params`` given to
        `rnn_forward`.
    """
    T, N, H = cache["shape"]
    L, D, dtype = cache["num_layers"], cache["num_directions"], cache["dtype"]
    lengths = cache["lengths"]
    dout = np.asarray(dout, dtype=dtype)
    if dout.shape != (T, N, D * H):
        raise ValueError(f"dout must have shape {(T, N, D * H)}, got {dout.shape}")
    if dh_n is None:
        dh_n = np.zeros((D * L, N, H), dtype=dtype)
    else:
        dh_n = np.asarray(dh_n, dtype=dtype)
        if dh_n.shape != (D * L, N, H):
            raise ValueError(f"dh_n must have shape {(D * L, N, H)}, got {dh_n.shape}")

    grads = {}
    dh0 = np.zeros((D * L, N, H), dtype=dtype)

    d_layer_out = dout
    for layer in reversed(range(L)):
        in_size = cache["input_size"] if layer == 0 else D * H
        d_layer_in = np.zeros((T, N, in_size), dtype=dtype)
        for d in range(D):
            step_caches = cache["layer_caches"][layer][d]
            names = {kind: _param_name(kind, layer, d)
                     for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            grads[names["weight_ih"]] = np.zeros((H, in_size), dtype=dtype)
            grads[names["weight_hh"]] = np.zeros((H, H), dtype=dtype)
            for kind in ("bias_ih", "bias_hh"):
                if names[kind] in cache["param_names"]:
                    grads[names[kind]] = np.zeros(H, dtype=dtype)

            dh = dh_n[layer * D + d].copy()  # ∂L/∂h carried back from later steps
            # Visit the steps in the opposite order of the forward pass.
            time_steps = reversed(range(T)) if d == 0 else range(T)
            for t in time_steps:
                active = t < lengths
                if not active.any():
                    continue
                dh_t = dh[active] + d_layer_out[t, active, d * H:(d + 1) * H]
                dx_t, dh_prev, step_grads = rnn_cell_backward(dh_t, step_caches[t])
                dh[active] = dh_prev
                d_layer_in[t, active] += dx_t
                for kind, g in step_grads.items():
                    grads[names[kind]] += g
            dh0[layer * D + d] = dh
        d_layer_out = d_layer_in

    return d_layer_out, dh0, grads


# ----------------------------------------------------------------------------------
# The GRU: three gates, no cell state, two ways to apply the reset gate
# ----------------------------------------------------------------------------------

def reset(x_t, h_prev, W_ir, W_hr, b_r):
    """Reset gate: r_t = σ(x_t W_ir^T + h_{t-1} W_hr^T + b_r), b_r = b_ir + b_hr."""
    return sigmoid(x_t @ W_ir.T + h_prev @ W_hr.T + b_r)


def update(x_t, h_prev, W_iz, W_hz, b_z):
    """Update gate: z_t = σ(x_t W_iz^T + h_{t-1} W_hz^T + b_z), b_z = b_iz + b_hz."""
    return sigmoid(x_t @ W_iz.T + h_prev @ W_hz.T + b_z)


def gru_candidate(x_t, h_prev, r_t, W_in, W_hn, b_in, b_hn, reset_after=True):
    """Candidate (PyTorch's "new gate") n_t, with the reset gate after the recurrent
    product (PyTorch's GRU)::

        n_t = tanh(x_t W_in^T + b_in + r_t ⊙ (h_{t-1} W_hn^T + b_hn))

    or before it (``reset_after=False``: Keras's reset_after=False, ONNX's
    linear_before_reset=0)::

        n_t = tanh(x_t W_in^T + b_in + (r_t ⊙ h_{t-1}) W_hn^T + b_hn)
    """
    if reset_after:
        return np.tanh(x_t @ W_in.T + b_in + r_t * (h_prev @ W_hn.T + b_hn))
    return np.tanh(x_t @ W_in.T + b_in + (r_t * h_prev) @ W_hn.T + b_hn)


def gru_hidden(z_t, n_t, h_prev):
    """Hidden state: h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}."""
    return (1.0 - z_t) * n_t + z_t * h_prev


def _gru_gate_blocks(stacked, H):
    """Split PyTorch's stacked (3H, ...) GRU weights or (3H,) bias into (r, z, n)."""
    return stacked[0:H], stacked[H:2 * H], stacked[2 * H:3 * H]


def gru_cell_forward(x_t, h_prev, w_ih, w_hh, b_ih=None, b_hh=None, reset_after=True):
    """One GRU step, as ``torch.nn.GRUCell`` (``reset_after=True``).

    Parameters
    ----------
    x_t : numpy.ndarray, shape (N, I)
    h_prev : numpy.ndarray, shape (N, H)
    w_ih : numpy.ndarray, shape (3H, I)
        Input-to-hidden weights, gates stacked r, z, n.
    w_hh : numpy.ndarray, shape (3H, H)
        Hidden-to-hidden weights, gates stacked r, z, n.
    b_ih, b_hh : numpy.ndarray of shape (3H,), or None
        The two biases; None means absent.
    reset_after : bool, default True
        Where the reset gate applies (see `gru_candidate`).

    Returns
    -------
    h : numpy.ndarray, shape (N, H)
        New hidden state h_t.
    cache : dict
        Everything `gru_cell_backward` needs.
    """
    H = h_prev.shape[1]
    zeros = np.zeros(3 * H, dtype=x_t.dtype)
    b_i = zeros if b_ih is None else b_ih
    b_h = zeros if b_hh is None else b_hh
    W_ir, W_iz, W_in = _gru_gate_blocks(w_ih, H)
    W_hr, W_hz, W_hn = _gru_gate_blocks(w_hh, H)
    b_ir, b_iz, b_in = _gru_gate_blocks(b_i, H)
    b_hr, b_hz, b_hn = _gru_gate_blocks(b_h, H)

    r_t = reset(x_t, h_prev, W_ir, W_hr, b_ir + b_hr)
    z_t = update(x_t, h_prev, W_iz, W_hz, b_iz + b_hz)
    n_t = gru_candidate(x_t, h_prev, r_t, W_in, W_hn, b_in, b_hn, reset_after)
    h_t = gru_hidden(z_t, n_t, h_prev)

    cache = {
        "x_t": x_t, "h_prev": h_prev, "r": r_t, "z": z_t, "n": n_t,
        # what r multiplies: the recurrent term of n (reset after), or h_{t-1} (before)
        "hn": h_prev @ W_hn.T + b_hn if reset_after else None,
        "w_ih": w_ih, "w_hh": w_hh, "reset_after": reset_after,
        "has_bias_ih": b_ih is not None, "has_bias_hh": b_hh is not None,
    }
    return h_t, cache


def gru_cell_backward(dh, cache):
    """Backward through one GRU step.

    With d_candidate = dh ⊙ (1 − z_t) and d_update = dh ⊙ (h_{t-1} − n_t), through the
    nonlinearities da_n = d_candidate ⊙ (1 − n_t²), da_z = d_update ⊙ z_t (1 − z_t).
    Reset after: r multiplies hn = h_{t-1} W_hn^T + b_hn, so d_reset = da_n ⊙ hn and the
    recurrent n rows see r ⊙ da_n; b_hn's gradient differs from b_in's. Reset before:
    r multiplies h_{t-1}, and the gradient on r ⊙ h_{t-1} is d_rh = da_n W_hn, so
    d_reset = d_rh ⊙ h_{t-1} and h_{t-1} also gets d_rh ⊙ r. Then da_r = d_reset ⊙ r_t (1 − r_t).

    Parameters
    ----------
    dh : numpy.ndarray, shape (N, H)
        ∂L/∂h_t (everything that reaches h_t: the output and the next step).
    cache : dict
        As returned by `gru_cell_forward`.

    Returns
    -------
    dx : numpy.ndarray, shape (N, I)
    dh_prev : numpy.ndarray, shape (N, H)
    grads : dict of str to numpy.ndarray
        "weight_ih" (3H, I), "weight_hh" (3H, H), and "bias_ih" / "bias_hh" (3H,) for
        those biases that were given.
    """
    x_t, h_prev = cache["x_t"], cache["h_prev"]
    r_t, z_t, n_t = cache["r"], cache["z"], cache["n"]
    H = h_prev.shape[1]
    W_hr, W_hz, W_hn = _gru_gate_blocks(cache["w_hh"], H)

    d_candidate = dh * (1.0 - z_t)
    d_update = dh * (h_prev - n_t)
    dh_prev = dh * z_t
    da_n = d_candidate * (1.0 - n_t ** 2)
    da_z = d_update * z_t * (1.0 - z_t)
    if cache["reset_after"]:
        d_reset = da_n * cache["hn"]
        d_hn = da_n * r_t                      # the gradient of h_{t-1} W_hn^T + b_hn
        n_input = h_prev                       # what W_hn multiplies
    else:
        d_rh = da_n @ W_hn                     # the gradient of r_t ⊙ h_{t-1}
        d_reset = d_rh * h_prev
        dh_prev = dh_prev + d_rh * r_t
        d_hn = da_n                            # the gradient of (r ⊙ h) W_hn^T + b_hn
        n_input = r_t * h_prev
    da_r = d_reset * r_t * (1.0 - r_t)

    da_ih = np.concatenate([da_r, da_z, da_n], axis=1)   # (N, 3H): x W_ih^T + b_ih
    da_rz = np.concatenate([da_r, da_z], axis=1)         # (N, 2H): h W_hr^T, h W_hz^T
    dx = da_ih @ cache["w_ih"]
    if cache["reset_after"]:
        dh_prev = dh_prev + da_rz @ np.concatenate([W_hr, W_hz]) + d_hn @ W_hn
    else:
        dh_prev = dh_prev + da_rz @ np.concatenate([W_hr, W_hz])
    grads = {
        "weight_ih": da_ih.T @ x_t,
        "weight_hh": np.concatenate([da_rz.T @ h_prev, d_hn.T @ n_input]),
    }
    if cache["has_bias_ih"]:
        grads["bias_ih"] = da_ih.sum(axis=0)
    if cache["has_bias_hh"]:
        grads["bias_hh"] = np.concatenate([da_rz.sum(axis=0), d_hn.sum(axis=0)])
    return dx, dh_prev, grads


def gru_forward(x, params, h0=None, lengths=None, *, num_layers=1, bidirectional=False,
                reset_after=True):
    """Forward pass of a multi-layer GRU over a time-major batch, as ``torch.nn.GRU``
    (``reset_after=True``).

    Parameters
    ----------
    x : numpy.ndarray, shape (T, N, I)
        Input sequences, time-major; its dtype is the computation's.
    params : dict of str to numpy.ndarray
        PyTorch's names and shapes: ``weight_ih_l{k}`` (3H, I_k), ``weight_hh_l{k}``
        (3H, H), optionally ``bias_ih_l{k}`` and ``bias_hh_l{k}`` (3H,), gates r, z, n,
        each with the suffix ``_reverse`` for the reverse direction.
    h0 : numpy.ndarray, shape (D·L, N, H), or None
        Initial hidden state, index layer·D + direction; None means zeros.
    lengths : sequence of int, or None
        N lengths in 1..T, any order (as ``pack_padded_sequence(enforce_sorted=False)``).
    num_layers, bidirectional
        As `lstm_forward`.
    reset_after : bool, default True
        Where the reset gate applies (see `gru_candidate`).

    Returns
    -------
    out : numpy.ndarray, shape (T, N, D·H)
    h_n : numpy.ndarray, shape (D·L, N, H)
    cache : dict
        Everything `gru_backward` needs.
    """
    x, lengths = _check_sequence(x, params, lengths, num_layers, bidirectional)
    dtype = x.dtype
    T, N, _ = x.shape
    L = num_layers
    D = 2 if bidirectional else 1
    H = np.asarray(params["weight_hh_l0"]).shape[1]
    if h0 is None:
        h0 = np.zeros((D * L, N, H), dtype=dtype)
    else:
        h0 = np.asarray(h0, dtype=dtype)
        if h0.shape != (D * L, N, H):
            raise ValueError(f"h0 must have shape {(D * L, N, H)}, got {h0.shape}")

    h_n = np.zeros((D * L, N, H), dtype=dtype)
    layer_caches = []  # layer_caches[layer][direction][t] = cell cache, or None if no row ran

    layer_in = x
    for layer in range(L):
        in_size = layer_in.shape[2]
        layer_out = np.zeros((T, N, D * H), dtype=dtype)
        direction_caches = []
        for d in range(D):
            w_ih, w_hh, b_ih, b_hh, _ = _layer_params(params, layer, d, in_size, H, dtype,
                                                   n_gates=3)
            h = h0[layer * D + d].copy()
            step_caches = [None] * T
            time_steps = range(T) if d == 0 else reversed(range(T))
            for t in time_steps:
                active = t < lengths  # the sequences that have a step t
                if not active.any():
                    continue
                h_new, step_caches[t] = gru_cell_forward(
                    layer_in[t, active], h[active], w_ih, w_hh, b_ih, b_hh, reset_after
                )
                h[active] = h_new
                layer_out[t, active, d * H:(d + 1) * H] = h_new
            h_n[layer * D + d] = h
            direction_caches.append(step_caches)
        layer_caches.append(direction_caches)
        layer_in = layer_out

    cache = {
        "layer_caches": layer_caches,
        "lengths": lengths,
        "shape": (T, N, H),
        "input_size": x.shape[2],
        "num_layers": L,
        "num_directions": D,
        "dtype": dtype,
        "param_names": sorted(params),
    }
    return layer_in, h_n, cache


def gru_backward(dout, cache, dh_n=None):
    """Backpropagation through time for `gru_forward`.

    Parameters
    ----------
    dout : numpy.ndarray, shape (T, N, D·H)
        ∂L/∂out. Entries at padded steps (t >= lengths[n]) are ignored.
    cache : dict
        As returned by `gru_forward`.
    dh_n : numpy.ndarray, shape (D·L, N, H), or None
        ∂L/∂h_n; None means zeros.

    Returns
    -------
    dx : numpy.ndarray, shape (T, N, I)
    dh0 : numpy.ndarray, shape (D·L, N, H)
    grads : dict of str to numpy.ndarray
        ∂L/∂ of every parameter, the keys and shapes of the ``params`` given to
        `gru_forward`.
    """
    T, N, H = cache["shape"]
    L, D, dtype = cache["num_layers"], cache["num_directions"], cache["dtype"]
    lengths = cache["lengths"]
    dout = np.asarray(dout, dtype=dtype)
    if dout.shape != (T, N, D * H):
        raise ValueError(f"dout must have shape {(T, N, D * H)}, got {dout.shape}")
    if dh_n is None:
        dh_n = np.zeros((D * L, N, H), dtype=dtype)
    else:
        dh_n = np.asarray(dh_n, dtype=dtype)
        if dh_n.shape != (D * L, N, H):
            raise ValueError(f"dh_n must have shape {(D * L, N, H)}, got {dh_n.shape}")

    grads = {}
    dh0 = np.zeros((D * L, N, H), dtype=dtype)

    d_layer_out = dout
    for layer in reversed(range(L)):
        in_size = cache["input_size"] if layer == 0 else D * H
        d_layer_in = np.zeros((T, N, in_size), dtype=dtype)
        for d in range(D):
            step_caches = cache["layer_caches"][layer][d]
            names = {kind: _param_name(kind, layer, d)
                     for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            grads[names["weight_ih"]] = np.zeros((3 * H, in_size), dtype=dtype)
            grads[names["weight_hh"]] = np.zeros((3 * H, H), dtype=dtype)
            for kind in ("bias_ih", "bias_hh"):
                if names[kind] in cache["param_names"]:
                    grads[names[kind]] = np.zeros(3 * H, dtype=dtype)

            dh = dh_n[layer * D + d].copy()  # ∂L/∂h carried back from later steps
            # Visit the steps in the opposite order of the forward pass.
            time_steps = reversed(range(T)) if d == 0 else range(T)
            for t in time_steps:
                active = t < lengths
                if not active.any():
                    continue
                dh_t = dh[active] + d_layer_out[t, active, d * H:(d + 1) * H]
                dx_t, dh_prev, step_grads = gru_cell_backward(dh_t, step_caches[t])
                dh[active] = dh_prev
                d_layer_in[t, active] += dx_t
                for kind, g in step_grads.items():
                    grads[names[kind]] += g
            dh0[layer * D + d] = dh
        d_layer_out = d_layer_in

    return d_layer_out, dh0, grads
