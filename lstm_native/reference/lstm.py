"""The LSTM in plain NumPy, as ``torch.nn.LSTM`` and ``torch.nn.LSTMCell``: one function
per gate, one step forward and backward, and whole sequences through stacked layers
in both directions.

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

The ONNX LSTM operator's variants change the gates' pre-activations a_* (``x_t W^T +
h_{t-1} W^T + b``, `pre_activation`). With peepholes (Gers & Schmidhuber 2000;
``weight_peephole_l{k}`` (3, H), rows p_i, p_f, p_o) the input and forget gates also
read the previous cell state and the output gate the new one::

    a_i += p_i ⊙ c_{t-1}      a_f += p_f ⊙ c_{t-1}      a_o += p_o ⊙ c_t

with ``clip`` every a_* (these terms included) is clipped to [−clip, clip] before its
σ or tanh (`clipped`; its gradient is zero where it cut), and with ``input_forget``
(coupled gates) f_t = 1 − i_t. Backward then adds the peepholes' paths: c_t's gradient
takes da_o ⊙ p_o, c_{t-1}'s takes da_i ⊙ p_i + da_f ⊙ p_f.

The layer-normalised LSTM (Ba, Kiros & Hinton 2016, eq. 20-22) normalises each
projection over its 4H values and the cell before the output (`layer_norm`)::

    a   = LN(x_t W_ih^T; γ_ih, β_ih) + LN(h_{t-1} W_hh^T; γ_hh, β_hh) + b
    h_t = o_t ⊙ tanh(LN(c_t; γ_c, β_c))

with c_t itself as above (the state is not normalised); backward goes through each
normalisation with `layer_norm_backward`.

Variational dropout (Gal & Ghahramani 2016): one mask per sequence, held for all steps,
multiplies x_t and the h_{t-1} that the recurrent products read (`dropped`); the mask
is part of the step's input (``input_mask``, ``recurrent_mask``), and the gradients on
x_t and h_{t-1} go back through it.

Variable-length batches (``lengths``) follow `lstm_native.reference`'s conventions.
"""
from __future__ import annotations

import numpy as np

from ._common import (
    _check_sequence,
    _layer_params,
    _param_name,
    _run_layers,
    _run_layers_backward,
    _states,
    _step_masks,
    dropped,
    sigmoid,
)

# ----------------------------------------------------------------------------------
# The gates, one function each
# ----------------------------------------------------------------------------------

def pre_activation(x_t, h_prev, W_x, W_h, b, p=None, c=None):
    """A gate's pre-activation a = x_t W_x^T + h_{t-1} W_h^T + b, plus the peephole term
    p ⊙ c with peepholes (p given)."""
    a = x_t @ W_x.T + h_prev @ W_h.T + b
    return a if p is None else a + p * c


def clipped(a, clip):
    """a clipped to [−clip, clip] (the ONNX operator's `clip`); a itself for clip None."""
    return a if clip is None else np.clip(a, -clip, clip)


# `input` shadows the builtin on purpose: it is the gate's name.
def input(x_t, h_prev, W_xi, W_hi, b_i, *, p_i=None, c_prev=None, clip=None):
    """Input gate: i_t = σ(x_t W_xi^T + h_{t-1} W_hi^T + b_i); with peepholes p_i the
    pre-activation adds p_i ⊙ c_{t-1}, with `clip` it is clipped first."""
    return sigmoid(clipped(pre_activation(x_t, h_prev, W_xi, W_hi, b_i, p_i, c_prev), clip))


def forget(x_t, h_prev, W_xf, W_hf, b_f, *, p_f=None, c_prev=None, clip=None):
    """Forget gate: f_t = σ(x_t W_xf^T + h_{t-1} W_hf^T + b_f); with peepholes p_f the
    pre-activation adds p_f ⊙ c_{t-1}, with `clip` it is clipped first."""
    return sigmoid(clipped(pre_activation(x_t, h_prev, W_xf, W_hf, b_f, p_f, c_prev), clip))


def candidate(x_t, h_prev, W_xg, W_hg, b_g, *, clip=None):
    """Candidate cell: g_t = tanh(x_t W_xg^T + h_{t-1} W_hg^T + b_g), the pre-activation
    clipped first with `clip`."""
    return np.tanh(clipped(pre_activation(x_t, h_prev, W_xg, W_hg, b_g), clip))


def output(x_t, h_prev, W_xo, W_ho, b_o, *, p_o=None, c_t=None, clip=None):
    """Output gate: o_t = σ(x_t W_xo^T + h_{t-1} W_ho^T + b_o); with peepholes p_o the
    pre-activation adds p_o ⊙ c_t (the new cell state), with `clip` it is clipped first."""
    return sigmoid(clipped(pre_activation(x_t, h_prev, W_xo, W_ho, b_o, p_o, c_t), clip))


def cell(f_t, i_t, g_t, c_prev):
    """Cell state: c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t."""
    return f_t * c_prev + i_t * g_t


def hidden(o_t, c_t):
    """Hidden state: h_t = o_t ⊙ tanh(c_t)."""
    return o_t * np.tanh(c_t)


def projection(m_t, W_hr):
    """Projected hidden state (LSTMP): h_t = m_t W_hr^T."""
    return m_t @ W_hr.T


def layer_norm(v, gain, bias, eps=1e-5):
    """Layer normalisation (Ba, Kiros & Hinton 2016) over the last axis:
    gain ⊙ (v − mean(v)) / sqrt(var(v) + eps) + bias; also the normalised v and
    1 / sqrt(var(v) + eps), which backward needs."""
    mean = v.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((v - mean) ** 2).mean(axis=-1, keepdims=True) + eps)
    normalised = (v - mean) * rstd
    return gain * normalised + bias, normalised, rstd


def layer_norm_backward(d_normalised, normalised, rstd):
    """The gradient on v of `layer_norm`'s normalisation, given the gradient on the
    normalised v: every value moves the mean and the variance of its row."""
    n = normalised.shape[-1]
    return rstd * (d_normalised - d_normalised.sum(axis=-1, keepdims=True) / n
                   - normalised * (d_normalised * normalised).sum(axis=-1, keepdims=True) / n)


def _gate_blocks(stacked, H):
    """Split PyTorch's stacked (4H, ...) weights or (4H,) bias into (i, f, g, o)."""
    return stacked[0:H], stacked[H:2 * H], stacked[2 * H:3 * H], stacked[3 * H:4 * H]


# ----------------------------------------------------------------------------------
# One step
# ----------------------------------------------------------------------------------

def lstm_cell_forward(x_t, h_prev, c_prev, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None, *,
                      peephole=None, clip=None, input_forget=False, input_mask=None,
                      recurrent_mask=None, layer_norm_params=None):
    """One LSTM step, as ``torch.nn.LSTMCell`` (or one step of an LSTM with a projection,
    or with the ONNX operator's variants).

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
    peephole : numpy.ndarray of shape (3, H), or None
        The peepholes p_i, p_f, p_o (Gers & Schmidhuber 2000); None means none.
    clip : float or None
        Clip every gate's pre-activation to [−clip, clip] (the ONNX operator's `clip`).
    input_forget : bool
        Couple the gates, f_t = 1 − i_t (the ONNX operator's `input_forget`).
    input_mask, recurrent_mask : numpy.ndarray of shape (N, I) and (N, P), or None
        Variational dropout: the step reads x_t ⊙ input_mask, and its recurrent
        products read h_{t-1} ⊙ recurrent_mask (`dropped`).
    layer_norm_params : tuple of six numpy.ndarray, or None
        The layer-normalised LSTM (Ba, Kiros & Hinton 2016): the gains and biases
        (γ_x, β_x, γ_h, β_h) of the input and the recurrent projection (4H each) and
        (γ_c, β_c) of the cell (H each); see `layer_norm`. None means none.

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
    # h_{t-1} only enters the recurrent products: both are what the gates read.
    x_t, h_prev = dropped(x_t, input_mask), dropped(h_prev, recurrent_mask)
    W_xi, W_xf, W_xg, W_xo = _gate_blocks(w_ih, H)
    W_hi, W_hf, W_hg, W_ho = _gate_blocks(w_hh, H)

    b = np.zeros(4 * H, dtype=x_t.dtype)
    if b_ih is not None:
        b = b + b_ih
    if b_hh is not None:
        b = b + b_hh
    b_i, b_f, b_g, b_o = _gate_blocks(b, H)

    p_i, p_f, p_o = (None, None, None) if peephole is None else peephole
    norms = {}

    if layer_norm_params is None:
        i_t = input(x_t, h_prev, W_xi, W_hi, b_i, p_i=p_i, c_prev=c_prev, clip=clip)
        if input_forget:
            f_t = 1.0 - i_t
        else:
            f_t = forget(x_t, h_prev, W_xf, W_hf, b_f, p_f=p_f, c_prev=c_prev, clip=clip)
        g_t = candidate(x_t, h_prev, W_xg, W_hg, b_g, clip=clip)
        c_t = cell(f_t, i_t, g_t, c_prev)
        o_t = output(x_t, h_prev, W_xo, W_ho, b_o, p_o=p_o, c_t=c_t, clip=clip)
        m_t = hidden(o_t, c_t)
    else:
        # Ba et al. 2016, eq. 20-22: the input and the recurrent projection of all four
        # gates normalised apart, then c_t before the output's tanh (not the state).
        gain_x, bias_x, gain_h, bias_h, gain_c, bias_c = layer_norm_params
        y_x, norms["x"], norms["rstd_x"] = layer_norm(x_t @ w_ih.T, gain_x, bias_x)
        y_h, norms["h"], norms["rstd_h"] = layer_norm(h_prev @ w_hh.T, gain_h, bias_h)
        a_i, a_f, a_g, a_o = _gate_blocks((y_x + y_h + b).T, H)
        i_t, f_t, g_t, o_t = sigmoid(a_i.T), sigmoid(a_f.T), np.tanh(a_g.T), sigmoid(a_o.T)
        c_t = cell(f_t, i_t, g_t, c_prev)
        y_c, norms["c"], norms["rstd_c"] = layer_norm(c_t, gain_c, bias_c)
        m_t = o_t * np.tanh(y_c)
        norms["params"] = layer_norm_params
    h_t = m_t if w_hr is None else projection(m_t, w_hr)

    cache = {
        "x_t": x_t, "h_prev": h_prev, "c_prev": c_prev,
        "i": i_t, "f": f_t, "g": g_t, "o": o_t, "c": c_t, "m": m_t,
        "w_ih": w_ih, "w_hh": w_hh, "w_hr": w_hr, "b": b,
        "peephole": peephole, "clip": clip, "input_forget": input_forget,
        "input_mask": input_mask, "recurrent_mask": recurrent_mask, "norms": norms,
        "has_bias_ih": b_ih is not None, "has_bias_hh": b_hh is not None,
    }
    return h_t, c_t, cache


def lstm_pre_activations(cache):
    """The pre-activations (a_i, a_f, a_g, a_o) of the step `cache` holds, peephole terms
    in, before any clip: what the ONNX operator's `clip` bounds."""
    H = cache["c"].shape[1]
    x_t, h_prev, c_prev, c_t = cache["x_t"], cache["h_prev"], cache["c_prev"], cache["c"]
    p_i, p_f, p_o = (None, None, None) if cache["peephole"] is None else cache["peephole"]
    blocks = zip(_gate_blocks(cache["w_ih"], H), _gate_blocks(cache["w_hh"], H),
                 _gate_blocks(cache["b"], H), (p_i, p_f, None, p_o),
                 (c_prev, c_prev, None, c_t))
    return tuple(pre_activation(x_t, h_prev, W_x, W_h, b, p, c)
                 for W_x, W_h, b, p, c in blocks)


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
        "weight_peephole" (3, H) with peepholes, the layer norm's gains and biases
        ("weight_ln_ih", "bias_ln_ih", "weight_ln_hh", "bias_ln_hh" (4H,), "weight_ln_c",
        "bias_ln_c" (H,)) with it, and "bias_ih" / "bias_hh" (4H,) for those biases that
        were given.
    """
    x_t, h_prev, c_prev = cache["x_t"], cache["h_prev"], cache["c_prev"]
    i_t, f_t, g_t, o_t, c_t = cache["i"], cache["f"], cache["g"], cache["o"], cache["c"]

    grads = {}
    if cache["w_hr"] is not None:
        # Through the projection h_t = m_t W_hr^T first.
        grads["weight_hr"] = dh.T @ cache["m"]
        dh = dh @ cache["w_hr"]

    peephole, clip = cache["peephole"], cache["clip"]
    H = c_t.shape[1]
    p_i, p_f, p_o = np.zeros((3, H), c_t.dtype) if peephole is None else peephole
    # Where a clip cut the pre-activation, its gradient stops (1 where it let it through).
    if clip is None:
        keep_i = keep_f = keep_g = keep_o = 1.0
    else:
        keep_i, keep_f, keep_g, keep_o = (np.abs(a) <= clip for a in lstm_pre_activations(cache))

    norms = cache["norms"]
    if norms:
        # h_t = o_t ⊙ tanh(y_c), y_c = γ_c ⊙ ĉ_t + β_c with ĉ_t = LN's normalised c_t
        gain_x, _, gain_h, _, gain_c, bias_c = norms["params"]
        tanh_y = np.tanh(gain_c * norms["c"] + bias_c)
        da_o = dh * tanh_y * o_t * (1.0 - o_t)
        d_y = dh * o_t * (1.0 - tanh_y ** 2)
        grads["weight_ln_c"] = (d_y * norms["c"]).sum(axis=0)
        grads["bias_ln_c"] = d_y.sum(axis=0)
        dc = dc + layer_norm_backward(d_y * gain_c, norms["c"], norms["rstd_c"])
    else:
        tanh_c = np.tanh(c_t)
        d_output = dh * tanh_c
        da_o = d_output * o_t * (1.0 - o_t) * keep_o
        # c_t reaches the loss through h_t, and through o_t's peephole.
        dc = dc + dh * o_t * (1.0 - tanh_c ** 2) + da_o * p_o
    d_input = dc * g_t
    d_forget = dc * c_prev
    d_candidate = dc * i_t
    if cache["input_forget"]:
        # f_t = 1 − i_t: the input gate takes the forget gate's gradient, negated.
        d_input = d_input - d_forget
        d_forget = np.zeros_like(d_forget)

    # Through the nonlinearities, to the pre-activations.
    da_i = d_input * i_t * (1.0 - i_t) * keep_i
    da_f = d_forget * f_t * (1.0 - f_t) * keep_f
    da_g = d_candidate * (1.0 - g_t ** 2) * keep_g
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)  # (N, 4H), PyTorch's order
    # c_{t-1} reaches the loss through c_t, and through i_t's and f_t's peepholes.
    dc_prev = dc * f_t + da_i * p_i + da_f * p_f
    if peephole is not None:
        grads["weight_peephole"] = np.stack([(da_i * c_prev).sum(axis=0),
                                             (da_f * c_prev).sum(axis=0),
                                             (da_o * c_t).sum(axis=0)])

    da_x = da_h = da
    if norms:
        # a = LN(x W_ih^T) + LN(h W_hh^T) + b: each projection through its normalisation
        grads["weight_ln_ih"], grads["bias_ln_ih"] = (da * norms["x"]).sum(axis=0), da.sum(axis=0)
        grads["weight_ln_hh"], grads["bias_ln_hh"] = (da * norms["h"]).sum(axis=0), da.sum(axis=0)
        da_x = layer_norm_backward(da * gain_x, norms["x"], norms["rstd_x"])
        da_h = layer_norm_backward(da * gain_h, norms["h"], norms["rstd_h"])
    # x_t and h_prev are the dropped ones the step read: back through their masks.
    dx = dropped(da_x @ cache["w_ih"], cache["input_mask"])
    dh_prev = dropped(da_h @ cache["w_hh"], cache["recurrent_mask"])
    grads["weight_ih"] = da_x.T @ x_t
    grads["weight_hh"] = da_h.T @ h_prev
    if cache["has_bias_ih"]:
        grads["bias_ih"] = da.sum(axis=0)
    if cache["has_bias_hh"]:
        grads["bias_hh"] = da.sum(axis=0)
    return dx, dh_prev, dc_prev, grads


# ----------------------------------------------------------------------------------
# Whole sequences, stacked layers, both directions
# ----------------------------------------------------------------------------------

#: The layer norm's parameters, in `lstm_cell_forward`'s `layer_norm_params` order.
LAYER_NORM_KINDS = ("weight_ln_ih", "bias_ln_ih", "weight_ln_hh", "bias_ln_hh",
                    "weight_ln_c", "bias_ln_c")


def _extra_param(params, kind, layer, direction, shape, dtype):
    """A parameter beyond torch's of one layer and direction, checked and cast."""
    name = _param_name(kind, layer, direction)
    if name not in params:
        raise KeyError(f"params is missing {name!r}")
    p = np.asarray(params[name], dtype=dtype)
    if p.shape != shape:
        raise ValueError(f"params[{name!r}] must have shape {shape}, got {p.shape}")
    return p


def lstm_forward(x, params, hx=None, lengths=None, *, num_layers=1, bidirectional=False,
                 clip=None, input_forget=False, input_masks=None, recurrent_masks=None):
    """Forward pass of a multi-layer LSTM over a time-major batch, as ``torch.nn.LSTM``.

    Parameters
    ----------
    x : numpy.ndarray, shape (T, N, I)
        Input sequences, time-major. Its dtype (float32 or float64) is the dtype of the
        whole computation.
    params : dict of str to numpy.ndarray
        PyTorch's names and shapes: ``weight_ih_l{k}`` (4H, I_k), ``weight_hh_l{k}``
        (4H, P), optionally ``bias_ih_l{k}`` and ``bias_hh_l{k}`` (4H,), with a
        projection ``weight_hr_l{k}`` (P, H), with peepholes ``weight_peephole_l{k}``
        (3, H) (rows p_i, p_f, p_o), and with the layer norm those of
        `LAYER_NORM_KINDS` (``weight_ln_ih_l{k}`` ... (4H,), ``weight_ln_c_l{k}``,
        ``bias_ln_c_l{k}`` (H,)), each with the suffix ``_reverse`` for the reverse
        direction. P = H without a projection; I_0 = I, I_k = D·P for k > 0.
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
    clip, input_forget
        The ONNX operator's variants, as `lstm_cell_forward`'s.
    input_masks, recurrent_masks : sequences of D·L arrays, (N, I_k) and (N, P), or None
        Variational dropout masks of every layer and direction (index layer·D +
        direction), each held for all the steps (`lstm_cell_forward`).

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
    peepholes = "weight_peephole_l0" in params
    normed = "weight_ln_ih_l0" in params
    x, lengths = _check_sequence(x, params, lengths, num_layers, bidirectional, projected,
                                 (("weight_peephole",) if peepholes else ())
                                 + (LAYER_NORM_KINDS if normed else ()))
    dtype, N = x.dtype, x.shape[1]
    D = 2 if bidirectional else 1
    H = np.asarray(params["weight_ih_l0"]).shape[0] // 4
    P = np.asarray(params["weight_hr_l0"]).shape[0] if projected else H
    h0, c0 = _states(hx, ("h0", "c0"), ((D * num_layers, N, P), (D * num_layers, N, H)),
                     dtype)

    def step_for(layer, d, in_size):
        w_ih, w_hh, b_ih, b_hh, w_hr = _layer_params(params, layer, d, in_size, H, dtype,
                                                     proj_size=P if projected else 0)
        peephole = _extra_param(params, "weight_peephole", layer, d, (3, H), dtype) \
            if peepholes else None
        norm_params = tuple(
            _extra_param(params, kind, layer, d, (H if kind.endswith("_c") else 4 * H,),
                         dtype)
            for kind in LAYER_NORM_KINDS) if normed else None

        def step(x_t, states, active):
            h_new, c_new, step_cache = lstm_cell_forward(
                x_t, states[0], states[1], w_ih, w_hh, b_ih, b_hh, w_hr,
                peephole=peephole, clip=clip, input_forget=input_forget,
                layer_norm_params=norm_params,
                input_mask=_step_masks(input_masks, layer * D + d, active),
                recurrent_mask=_step_masks(recurrent_masks, layer * D + d, active))
            return (h_new, c_new), step_cache
        return step

    out, (h_n, c_n), cache = _run_layers(x, lengths, params, num_layers, D, [h0, c0],
                                         step_for)
    return out, (h_n, c_n), cache


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
    def step_backward(d_states, step_cache):
        dx_t, dh_prev, dc_prev, grads = lstm_cell_backward(*d_states, step_cache)
        return dx_t, (dh_prev, dc_prev), grads

    dx, (dh0, dc0), grads = _run_layers_backward(dout, cache, dhx, ("dh_n", "dc_n"),
                                                 step_backward)
    return dx, (dh0, dc0), grads
