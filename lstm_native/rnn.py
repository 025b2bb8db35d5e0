"""`RNN` and `RNNCell`: the Elman RNN with tanh or ReLU, PyTorch's API and semantics, the
native kernels underneath.

`RNN` is the shared recurrent layer of `lstm_native.recurrent` with the one-gate Elman
cell and no cell state: the same checks, layouts and kernel driver as `LSTM`. `RNNCell`
runs one step of it on the same driver, as a one-step sequence, as `LSTMCell` and
`GRUCell` do. The equations the kernels implement are written out for a reader in
`lstm_native.reference` (`rnn_forward`, `rnn_backward`, `rnn_cell_forward`,
`rnn_cell_backward`).
"""
from __future__ import annotations

import numpy as np

from . import _recurrent
from ._parallel import check_n_threads, effective_n_threads, single_threaded_blas
from ._validation import (MAX_FEATURES, check_bool, check_device, check_model_dtype,
                          check_parameter_count, check_seed, check_size)
from .module import one_thread_in_training
from .recurrent import _Cell, _Recurrent, add_initial_parameters, check_init, check_state

__all__ = ["RNN", "RNNCell"]

_NONLINEARITIES = {"tanh": _recurrent.Cell.RNN_TANH, "relu": _recurrent.Cell.RNN_RELU}


def _check_nonlinearity(nonlinearity) -> str:
    if not isinstance(nonlinearity, str):
        raise TypeError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    if nonlinearity not in _NONLINEARITIES:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity


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
    device : None, "cpu" or torch.device("cpu")
        As torch's: the kernels run on the CPU; any other device is a ValueError.
    dtype : np.float32, np.float64, their names, or torch.float32 / torch.float64
        The precision of parameters and computation; default float32. The arguments up
        to here are torch's, in its order; the rest are keyword-only.
    init : {"torch", "keras"}, default "torch"
        The initialisation: torch's U(-1/sqrt(H), 1/sqrt(H)) for every parameter, or
        Keras' (Glorot-uniform `weight_ih`, an orthogonal `weight_hh` over all gates at
        once, the transpose of Keras' (H, H) recurrent kernel, zero biases;
        `lstm_native.init`).
    input_dropout, recurrent_dropout : float, default 0.0
        Variational dropout (Gal & Ghahramani 2016), as `LSTM`'s: in training mode, one
        mask per sequence, layer and direction, the same at every step, on x_t and on
        the copy of h_{t-1} that the recurrent weights read; in [0, 1].
    seed : int, numpy Generator or None
        Seed of the initialisation, whose generator then draws the dropout masks; an int
        >= 0.
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

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=np.float32, *, init: str = "torch", input_dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, seed: int | None = None,
                 n_threads: int | None = None):
        self.nonlinearity = _check_nonlinearity(nonlinearity)
        self._cell = _NONLINEARITIES[nonlinearity]
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype, seed, n_threads, init=init,
                         input_dropout=input_dropout, recurrent_dropout=recurrent_dropout)

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


class RNNCell(_Cell):
    """One Elman RNN step, as `torch.nn.RNNCell`::

        h = act(W_ih x + b_ih + W_hh h_prev + b_hh),  act = tanh or ReLU

    Parameters
    ----------
    input_size : int
        Features of the input, I, in 1..2**20.
    hidden_size : int
        Features of the hidden state, H, in 1..2**20.
    bias : bool, default True
        Whether the cell has `bias_ih` and `bias_hh`.
    nonlinearity : {'tanh', 'relu'}, default 'tanh'
        The activation act.
    device : None, "cpu" or torch.device("cpu")
        As torch's: the kernels run on the CPU; any other device is a ValueError.
    dtype : np.float32, np.float64, their names, or torch.float32 / torch.float64
        Default float32. The arguments up to here are torch's, in its order; the rest
        are keyword-only.
    init : {"torch", "keras"}, default "torch"
        torch's U(-1/sqrt(H), 1/sqrt(H)) initialisation, or Keras' (as `RNN`'s).
    seed : int, numpy Generator or None
        Seed of the initialisation; an int >= 0.
    n_threads : int or None
        OpenMP threads (they split the batch), in 1..1024, used up to the cores the
        process may run on; None as in `RNN`.

    Notes
    -----
    Parameters are `weight_ih` (H, I), `weight_hh` (H, H), `bias_ih`, `bias_hh` (H,), as
    PyTorch's, so `load_state_dict(torch_cell.state_dict())` works.

    Limits and threads as `RNN`: at most 2**31 - 1 parameters and 2**30 rows N per step;
    float64 inputs must fit a float32 model's range, nan and inf propagate; inference
    may run in many threads at once, training in one at a time.

    Examples
    --------
    >>> import numpy as np
    >>> from lstm_native import RNNCell
    >>> cell = RNNCell(3, 5, nonlinearity="relu", seed=0)
    >>> x = np.random.default_rng(0).standard_normal((2, 3))   # (N, I)
    >>> h = cell(x)
    >>> h.shape, bool((h >= 0).all())
    ((2, 5), True)
    >>> dx, dh_prev = cell.backward(np.ones_like(h))
    >>> dx.shape, dh_prev.shape
    ((2, 3), (2, 5))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=np.float32, *,
                 init: str = "torch", seed: int | None = None, n_threads: int | None = None):
        check_device(device)
        super().__init__(check_model_dtype(dtype))
        self.input_size = check_size(input_size, "input_size", maximum=MAX_FEATURES)
        self.hidden_size = check_size(hidden_size, "hidden_size", maximum=MAX_FEATURES)
        self.bias = check_bool(bias, "bias")
        self.init = check_init(init)
        self.nonlinearity = _check_nonlinearity(nonlinearity)
        self._cell = _NONLINEARITIES[nonlinearity]
        self.n_threads = check_n_threads(n_threads)
        H = self.hidden_size
        check_parameter_count(H * (self.input_size + H + 2 * self.bias),
                              "input_size and hidden_size")
        rng = np.random.default_rng(check_seed(seed))
        shapes = {"weight_ih": (H, self.input_size), "weight_hh": (H, H)}
        if self.bias:
            shapes.update(bias_ih=(H,), bias_hh=(H,))
        add_initial_parameters(self, rng, shapes, self.init)

    def get_config(self) -> dict:
        """The constructor's arguments (but the seed) as a JSON-ready dict."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "bias": self.bias, "nonlinearity": self.nonlinearity, "init": self.init,
                "dtype": self.dtype.name, "n_threads": self.n_threads}

    def __repr__(self) -> str:
        extra = ("" if self.bias else ", bias=False") + \
            ("" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}") + \
            ("" if self.init == "torch" else f", init={self.init!r}")
        return f"RNNCell({self.input_size}, {self.hidden_size}{extra}, dtype={self.dtype.name})"

    @one_thread_in_training
    def forward(self, x, hx=None):
        """One step.

        Parameters
        ----------
        x : array_like, (N, I) or unbatched (I,)
            float32 or float64 (converted to the model's dtype), any memory layout.
        hx : array_like or None
            The previous state h, (N, H) ((H,) unbatched); None means zeros.

        Returns
        -------
        h : numpy.ndarray, (N, H) ((H,) unbatched)
            The new hidden state.
        """
        x, batched = self._check_step_input(x)
        N, H = x.shape[0], self.hidden_size
        if hx is None:
            h_prev = np.zeros((N, H), self.dtype)
        else:
            shape, expected_h = self._state_shape(N, batched)
            h_prev = check_state(hx, "hx", shape, expected_h, self.dtype).reshape(N, H)
        bias = (self._params["bias_ih"] + self._params["bias_hh"] if self.bias
                else np.zeros(H, self.dtype))
        lengths = np.ones(N, np.int64)
        gates = np.empty((N, H), self.dtype)
        # Two slots, as a one-step sequence in training: the previous and the new state.
        h = np.concatenate([h_prev, np.empty_like(h_prev)])
        out = np.empty((N, H), self.dtype)
        with single_threaded_blas():
            _recurrent.forward_layer(self._cell, x, self._params["weight_ih"],
                                     self._params["weight_hh"], None, bias, None, lengths,
                                     gates, None, h, None, out, 0, False, True,
                                     effective_n_threads(self.n_threads))
        h_new = h[N:].copy()
        if self.training:
            self._keep_for_backward((x, lengths, gates, h, batched))
        return h_new if batched else h_new[0]

    @one_thread_in_training
    def backward(self, dh):
        """Back-propagate through the last step, adding into `grads`.

        Parameters
        ----------
        dh : array_like, the shape of forward's h
            Gradient with respect to the new hidden state.

        Returns
        -------
        dx : numpy.ndarray
            Gradient with respect to x.
        dh_prev : numpy.ndarray
            Gradient with respect to the previous state.

        Raises
        ------
        RuntimeError
            In eval mode, with no training-mode forward left to back-propagate, or when
            another thread trains the cell (see `lstm_native.module`).
        """
        x, lengths, gates, h, batched = self._cache_for_backward()
        N, H = x.shape[0], self.hidden_size
        shape, expected = self._state_shape(N, batched)
        dh_next = check_state(dh, "dh", shape, expected, self.dtype).reshape(N, H)
        self._cache = None
        dx = np.zeros_like(x)
        db = np.zeros(H, self.dtype) if self.bias else None
        no_output_grad = np.zeros((N, H), self.dtype)
        with single_threaded_blas():
            _recurrent.backward_layer(self._cell, x, self._params["weight_ih"],
                                      self._params["weight_hh"], None, lengths, gates, None,
                                      None, h, None, no_output_grad, 0, dh_next, None,
                                      self.grads["weight_ih"], self.grads["weight_hh"], None, db,
                                      None, dx, False, effective_n_threads(self.n_threads))
        if self.bias:
            self.grads["bias_ih"] += db
            self.grads["bias_hh"] += db
        if not batched:
            return dx[0], dh_next[0]
        return dx, dh_next
