"""The GRU in plain NumPy, as ``torch.nn.GRU`` and ``torch.nn.GRUCell``, and the other
standard GRU, which applies the reset gate before the recurrent product.

Equations
---------
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

import functools

import numpy as np

from ._common import (
    _run_hidden_layers,
    _run_hidden_layers_backward,
    dropped,
    sigmoid,
)


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


def gru_cell_forward(x_t, h_prev, w_ih, w_hh, b_ih=None, b_hh=None, reset_after=True, *,
                     input_mask=None, recurrent_mask=None):
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
    input_mask, recurrent_mask : numpy.ndarray of shape (N, I) and (N, H), or None
        Variational dropout: the step reads x_t ⊙ input_mask, and its recurrent
        products (all three gates') read h_{t-1} ⊙ recurrent_mask (`dropped`); the
        update z_t ⊙ h_{t-1} keeps the state itself.

    Returns
    -------
    h : numpy.ndarray, shape (N, H)
        New hidden state h_t.
    cache : dict
        Everything `gru_cell_backward` needs.
    """
    H = h_prev.shape[1]
    x_t = dropped(x_t, input_mask)
    h_rec = dropped(h_prev, recurrent_mask)  # what the recurrent products read
    zeros = np.zeros(3 * H, dtype=x_t.dtype)
    b_i = zeros if b_ih is None else b_ih
    b_h = zeros if b_hh is None else b_hh
    W_ir, W_iz, W_in = _gru_gate_blocks(w_ih, H)
    W_hr, W_hz, W_hn = _gru_gate_blocks(w_hh, H)
    b_ir, b_iz, b_in = _gru_gate_blocks(b_i, H)
    b_hr, b_hz, b_hn = _gru_gate_blocks(b_h, H)

    r_t = reset(x_t, h_rec, W_ir, W_hr, b_ir + b_hr)
    z_t = update(x_t, h_rec, W_iz, W_hz, b_iz + b_hz)
    n_t = gru_candidate(x_t, h_rec, r_t, W_in, W_hn, b_in, b_hn, reset_after)
    h_t = gru_hidden(z_t, n_t, h_prev)

    cache = {
        "x_t": x_t, "h_prev": h_prev, "h_rec": h_rec, "r": r_t, "z": z_t, "n": n_t,
        # what r multiplies: the recurrent term of n (reset after), or h_{t-1} (before)
        "hn": h_rec @ W_hn.T + b_hn if reset_after else None,
        "w_ih": w_ih, "w_hh": w_hh, "reset_after": reset_after,
        "input_mask": input_mask, "recurrent_mask": recurrent_mask,
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
    d_reset = d_rh ⊙ h_{t-1} and h_{t-1} also gets d_rh ⊙ r. Then
    da_r = d_reset ⊙ r_t (1 − r_t). With a recurrent mask, the products read
    h_rec = h_{t-1} ⊙ mask in the place of h_{t-1}, and their gradient reaches h_{t-1}
    through the mask; the update's z_t ⊙ h_{t-1} keeps the state itself.

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
    x_t, h_prev, h_rec = cache["x_t"], cache["h_prev"], cache["h_rec"]
    r_t, z_t, n_t = cache["r"], cache["z"], cache["n"]
    H = h_prev.shape[1]
    W_hr, W_hz, W_hn = _gru_gate_blocks(cache["w_hh"], H)

    d_candidate = dh * (1.0 - z_t)
    d_update = dh * (h_prev - n_t)
    da_n = d_candidate * (1.0 - n_t ** 2)
    da_z = d_update * z_t * (1.0 - z_t)
    # h_rec, what the recurrent products read (h_{t-1}, or its dropped copy), gets
    # d_rec; h_{t-1} itself gets z_t ⊙ dh through the update, and d_rec through the mask.
    if cache["reset_after"]:
        d_reset = da_n * cache["hn"]
        d_hn = da_n * r_t                      # the gradient of h_rec W_hn^T + b_hn
        n_input = h_rec                        # what W_hn multiplies
        d_rec = d_hn @ W_hn
    else:
        d_rh = da_n @ W_hn                     # the gradient of r_t ⊙ h_rec
        d_reset = d_rh * h_rec
        d_rec = d_rh * r_t
        d_hn = da_n                            # the gradient of (r ⊙ h_rec) W_hn^T + b_hn
        n_input = r_t * h_rec
    da_r = d_reset * r_t * (1.0 - r_t)

    da_ih = np.concatenate([da_r, da_z, da_n], axis=1)   # (N, 3H): x W_ih^T + b_ih
    da_rz = np.concatenate([da_r, da_z], axis=1)         # (N, 2H): h W_hr^T, h W_hz^T
    dx = dropped(da_ih @ cache["w_ih"], cache["input_mask"])
    d_rec = d_rec + da_rz @ np.concatenate([W_hr, W_hz])
    dh_prev = dh * z_t + dropped(d_rec, cache["recurrent_mask"])
    grads = {
        "weight_ih": da_ih.T @ x_t,
        "weight_hh": np.concatenate([da_rz.T @ h_rec, d_hn.T @ n_input]),
    }
    if cache["has_bias_ih"]:
        grads["bias_ih"] = da_ih.sum(axis=0)
    if cache["has_bias_hh"]:
        grads["bias_hh"] = np.concatenate([da_rz.sum(axis=0), d_hn.sum(axis=0)])
    return dx, dh_prev, grads


def gru_forward(x, params, h0=None, lengths=None, *, num_layers=1, bidirectional=False,
                reset_after=True, input_masks=None, recurrent_masks=None):
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
    input_masks, recurrent_masks : sequences of D·L arrays, (N, I_k) and (N, H), or None
        Variational dropout masks of every layer and direction (index layer·D +
        direction), each held for all the steps (`gru_cell_forward`).

    Returns
    -------
    out : numpy.ndarray, shape (T, N, D·H)
    h_n : numpy.ndarray, shape (D·L, N, H)
    cache : dict
        Everything `gru_backward` needs.
    """
    return _run_hidden_layers(
        x, params, h0, lengths, num_layers, bidirectional, 3,
        functools.partial(gru_cell_forward, reset_after=reset_after), input_masks,
        recurrent_masks)


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
    return _run_hidden_layers_backward(dout, cache, dh_n, gru_cell_backward)
