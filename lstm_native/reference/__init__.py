"""A readable LSTM, Elman RNN and GRU in plain NumPy: forward pass and backpropagation
through time.

This package is the independent witness the native kernels are tested against. It
favours clarity over speed: one small function per gate, a Python loop over time, and
every derivative written out by name. It imports nothing but NumPy.

Each cell lives in its own module, which opens with its equations, forward and
backward:

- `lstm_native.reference.lstm`: the LSTM (``torch.nn.LSTM``), with its projection
  (LSTMP, ``proj_size``), the ONNX operator's variants (peepholes, clip, coupled
  input and forget gates) and the layer-normalised LSTM (`layer_norm`); the gates
  `input`, `forget`, `candidate`, `output` over their `pre_activation` (`clipped`),
  the `cell` and `hidden` states, `projection`, one step and whole sequences.
- `lstm_native.reference.rnn`: the Elman RNN (``torch.nn.RNN``), tanh or relu.
- `lstm_native.reference.gru`: the GRU (``torch.nn.GRU``), with the reset gate after
  or before the recurrent product.

They share `sigmoid`, `relu`, the checks of parameters, sequences and lengths, and the
loop over layers, directions and steps that runs a cell's step on the sequences that
have it (`lstm_native.reference._common`). Every name is importable from this package itself
(``from lstm_native.reference import gru_backward``).

Conventions shared by the cells
-------------------------------
Parameters are named and shaped as in PyTorch (``weight_ih_l{k}``, ``weight_hh_l{k}``,
``bias_ih_l{k}``, ``bias_hh_l{k}``, the suffix ``_reverse`` for the reverse direction),
inputs are time-major (T, N, I), and states are indexed layer·D + direction.

Variable-length batches (``lengths``) follow ``torch.nn.utils.rnn.pack_padded_sequence``:
sequence n only has steps 0 .. lengths[n] − 1. At a step past its end a sequence is
simply left out of the computation, so its state is carried unchanged, its output is
zero and nothing flows back into its padded input. The reverse direction therefore
starts at each sequence's own last valid step from the initial state.
"""
from __future__ import annotations

from ._common import relu, sigmoid
from .gru import (
    gru_backward,
    gru_candidate,
    gru_cell_backward,
    gru_cell_forward,
    gru_forward,
    gru_hidden,
    reset,
    update,
)
from .lstm import (
    candidate,
    cell,
    clipped,
    forget,
    hidden,
    input,
    layer_norm,
    layer_norm_backward,
    lstm_backward,
    lstm_cell_backward,
    lstm_cell_forward,
    lstm_forward,
    lstm_pre_activations,
    output,
    pre_activation,
    projection,
)
from .rnn import (
    rnn_backward,
    rnn_cell_backward,
    rnn_cell_forward,
    rnn_forward,
    rnn_hidden,
)

__all__ = [
    "candidate",
    "cell",
    "clipped",
    "forget",
    "gru_backward",
    "gru_candidate",
    "gru_cell_backward",
    "gru_cell_forward",
    "gru_forward",
    "gru_hidden",
    "hidden",
    "input",
    "layer_norm",
    "layer_norm_backward",
    "lstm_backward",
    "lstm_cell_backward",
    "lstm_cell_forward",
    "lstm_forward",
    "lstm_pre_activations",
    "output",
    "pre_activation",
    "projection",
    "relu",
    "reset",
    "rnn_backward",
    "rnn_cell_backward",
    "rnn_cell_forward",
    "rnn_forward",
    "rnn_hidden",
    "sigmoid",
    "update",
]

