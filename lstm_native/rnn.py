"""`RNN`: the Elman RNN with tanh or ReLU, PyTorch's API and semantics, the native kernels
underneath.

`RNN` is the shared recurrent layer of `lstm_native.recurrent` with the one-gate Elman
cell and no cell state: the same checks, layouts and kernel driver as `LSTM`. The
equations the kernels implement are written out for a reader in
`lstm_native.reference` (`rnn_forward`, `rnn_backward`).
"""
from __future__ import annotations

import numpy as np

from . import _recurrent
from .recurrent import _Recurrent

__all__ = ["RNN"]

_NONLINEARITIES = {"tanh": _recurrent.Cell.RNN_TANH, "relu": _recurrent.Cell.RNN_RELU}


class RNN(_Recurrent):
    """A multi-layer Elman RNN over whole sequences, as `torch.nn.RNN`.

    For each step t and layer::

        h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

    with act = tanh or ReLU.

    Parameters
    ----------
    input_size : int
        Features of each input step, I, in 1..2**20.
    hidden_size : int
        Features of the hidden state, H, in 1..2**20.
    num_layers : int, default 1
        Stacked layers, L, in 1..1024; layer k > 0 reads the output of layer k - 1.
    nonlinearity : {'tanh', 'relu'}, default 'tanh'
        The activation act.
    bias : bool, default True
        Whether the layers have the biases `bias_ih_l{k}` and `bias_hh_l{k}`.
    batch_first : bool, default False
        Inputs and outputs are (N, T, ·) instead of (T, N, ·). The state is always
        (D·L, N, H).
    dropout : float, default 0.0
        In training mode, the probability of zeroing each element of the output of every
        layer but the last (the next layer's input), the others scaled by 1/(1 - p), as
        torch's; in [0, 1]. The masks come from the layer's own generator, seeded by
        `seed` (`rng_state`); eval mode is the identity. With one layer it does nothing
        and warns, as torch.
    bidirectional : bool, default False
        Each layer also runs the sequence backwards (D = 2); its output is concatenated
        after the forward direction's.
    dtype : {np.float32, np.float64}, default np.float32
        The precision of parameters and computation.
    seed : int, numpy Generator or None
        Seed of the U(-1/sqrt(H), 1/sqrt(H)) initialisation (PyTorch's default), whose
        generator then draws the dropout masks; an int >= 0.
    n_threads : int or None
        OpenMP threads of the kernels, in 1..1024, used up to the cores the process may
        run on; None uses OMP_NUM_THREADS when it is set, else the physical cores the
        process may use (its CPU affinity and cgroup quota; hyper-threads count once).

    Attributes
    ----------
    grads : dict of str to numpy.ndarray
        The gradient of every parameter, same keys and shapes as `state_dict()`;
        `backward` adds into it, `zero_grad` clears it.

    Notes
    -----
    Parameter names and shapes are PyTorch's: `weight_ih_l{k}` (H, in), `weight_hh_l{k}`
    (H, H), `bias_ih_l{k}` and `bias_hh_l{k}` (H,), with the suffix `_reverse` for the
    backward direction; so `load_state_dict(torch_rnn.state_dict())` works. As in
    PyTorch, the state is one array h, not a tuple.

    Limits and threads as `LSTM`: at most 2**31 - 1 parameters and 2**30 rows T·N per
    call; float64 inputs must fit a float32 model's range, nan and inf propagate;
    inference may run in many threads at once, training in one at a time.

    Examples
    --------
    >>> import numpy as np
    >>> from lstm_native import RNN
    >>> rnn = RNN(input_size=2, hidden_size=4, nonlinearity="relu", seed=0)
    >>> out, h_n = rnn(np.ones((6, 1, 2)))    # (T, N, I), converted to float32
    >>> out.shape, h_n.shape, out.dtype
    ((6, 1, 4), (1, 1, 4), dtype('float32'))
    >>> bool((out >= 0).all())
    True
    """

    _n_gates = 1
    _state_names = ("h",)
    _cell_defaults = {"nonlinearity": "tanh"}

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, dtype=np.float32,
                 seed: int | None = None, n_threads: int | None = None):
        if not isinstance(nonlinearity, str):
            raise TypeError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        if nonlinearity not in _NONLINEARITIES:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self._cell = _NONLINEARITIES[nonlinearity]
        super().__init__(input_size, hidden_size, num_layers, bias=bias,
                         batch_first=batch_first, dropout=dropout,
                         bidirectional=bidirectional, dtype=dtype,
                         seed=seed, n_threads=n_threads)

    def _cell_config(self) -> dict:
        return {"nonlinearity": self.nonlinearity}

    def forward(self, x, hx=None, lengths=None):
        """Run the RNN over whole sequences.

        Parameters
        ----------
        x : array_like, (T, N, I), or (N, T, I) with `batch_first`, or unbatched (T, I)
            The input sequences; float32 or float64 (converted to the model's dtype).
        hx : array_like or None
            The initial state h0, (D·num_layers, N, H) ((D·num_layers, H) unbatched), the
            index being layer·D + direction: one array, not a tuple. None means zeros.
        lengths : array_like of int, (N,), or None
            The valid steps of each sequence, in 1..T and in any order. Outputs past a
            sequence's length are zero; its h_n is the state at its last valid step; the
            reverse direction starts at that step. As PyTorch's
            `pack_padded_sequence(..., enforce_sorted=False)`.

        Returns
        -------
        out : numpy.ndarray, (T, N, D·H), or (N, T, D·H) with `batch_first`, or (T, D·H)
            The last layer's hidden state at every step, the reverse direction after the
            forward one.
        h_n : numpy.ndarray, (D·num_layers, N, H)
            The final state of every layer and direction.
        """
        return self._forward(x, hx, lengths)

    def backward(self, dout, dh_n=None, *, input_grad: bool = True):
        """Back-propagate through time through the last `forward`, adding into `grads`.

        Each training-mode forward can be back-propagated once.

        Parameters
        ----------
        dout : array_like, the shape of forward's `out`
            Gradient of the loss with respect to `out`. Values at padded steps (past a
            sequence's length) are ignored.
        dh_n : array_like or None
            Gradient with respect to forward's h_n, of its shape; None means none flows
            in from it. Chaining it across chunks of a long sequence is truncated BPTT.
        input_grad : bool, default True
            Whether to compute the gradient with respect to x. False skips that work and
            returns None for it: the usual case for a first layer fed with data.

        Returns
        -------
        dx : numpy.ndarray or None
            Gradient with respect to x, of x's shape (zero at padded steps).
        dh0 : numpy.ndarray
            Gradient with respect to the initial state, of hx's shape.

        Raises
        ------
        RuntimeError
            In eval mode, with no training-mode forward left to back-propagate, or when
            another thread trains the model (see `lstm_native.module`).
        """
        return self._backward(dout, dh_n, "dh_n", input_grad)
