"""The Elman RNN in plain NumPy, as ``torch.nn.RNN`` and ``torch.nn.RNNCell``.

Equations
---------
``torch.nn.RNN`` has one gate and no cell state::

    h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)      act = tanh or relu

with ``weight_ih_l{k}`` (H, I_k), ``weight_hh_l{k}`` (H, H), ``bias_ih_l{k}`` and
``bias_hh_l{k}`` (H,), and the same layers, directions and lengths as the LSTM
(`lstm_native.reference.lstm`). Backward through one step, given dh = ∂L/∂h_t, goes to
the pre-activation a through the derivative written with h_t itself,
tanh'(a) = 1 − h_t², relu'(a) = [h_t > 0]::

    da = dh ⊙ (1 − h_t²)   or   da = dh ⊙ [h_t > 0]
    dx_t = da W_ih    dh_{t-1} = da W_hh    dW_ih += da^T x_t    dW_hh += da^T h_{t-1}
"""
from __future__ import annotations

import functools

import numpy as np

from ._common import (
    _run_hidden_layers,
    _run_hidden_layers_backward,
    dropped,
    relu,
)


def rnn_hidden(x_t, h_prev, w_ih, w_hh, b, nonlinearity):
    """Hidden state: h_t = act(x_t W_ih^T + h_{t-1} W_hh^T + b), act = tanh or relu."""
    pre = x_t @ w_ih.T + h_prev @ w_hh.T + b
    return np.tanh(pre) if nonlinearity == "tanh" else relu(pre)


def _check_nonlinearity(nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity


def rnn_cell_forward(x_t, h_prev, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh", *,
                     input_mask=None, recurrent_mask=None):
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
    input_mask, recurrent_mask : numpy.ndarray of shape (N, I) and (N, H), or None
        Variational dropout: the step reads x_t ⊙ input_mask, and its recurrent
        product reads h_{t-1} ⊙ recurrent_mask (`dropped`).

    Returns
    -------
    h : numpy.ndarray, shape (N, H)
        New hidden state h_t.
    cache : dict
        Everything `rnn_cell_backward` needs.
    """
    nonlinearity = _check_nonlinearity(nonlinearity)
    H = h_prev.shape[1]
    # h_{t-1} only enters the recurrent product: both are what the step reads.
    x_t, h_prev = dropped(x_t, input_mask), dropped(h_prev, recurrent_mask)
    b = np.zeros(H, dtype=x_t.dtype)
    if b_ih is not None:
        b = b + b_ih
    if b_hh is not None:
        b = b + b_hh
    h_t = rnn_hidden(x_t, h_prev, w_ih, w_hh, b, nonlinearity)
    cache = {
        "x_t": x_t, "h_prev": h_prev, "h": h_t, "w_ih": w_ih, "w_hh": w_hh,
        "nonlinearity": nonlinearity,
        "input_mask": input_mask, "recurrent_mask": recurrent_mask,
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
    # x_t and h_prev are the dropped ones the step read: back through their masks.
    dx = dropped(da @ cache["w_ih"], cache["input_mask"])
    dh_prev = dropped(da @ cache["w_hh"], cache["recurrent_mask"])
    grads = {"weight_ih": da.T @ cache["x_t"], "weight_hh": da.T @ cache["h_prev"]}
    if cache["has_bias_ih"]:
        grads["bias_ih"] = da.sum(axis=0)
    if cache["has_bias_hh"]:
        grads["bias_hh"] = da.sum(axis=0)
    return dx, dh_prev, grads


def rnn_forward(x, params, h0=None, lengths=None, *, num_layers=1, bidirectional=False,
                nonlinearity="tanh", input_masks=None, recurrent_masks=None):
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
    input_masks, recurrent_masks : sequences of D·L arrays, (N, I_k) and (N, H), or None
        Variational dropout masks of every layer and direction (index layer·D +
        direction), each held for all the steps (`rnn_cell_forward`).

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
    return _run_hidden_layers(
        x, params, h0, lengths, num_layers, bidirectional, 1,
        functools.partial(rnn_cell_forward, nonlinearity=nonlinearity), input_masks,
        recurrent_masks)


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
    return _run_hidden_layers_backward(dout, cache, dh_n, rnn_cell_backward)
