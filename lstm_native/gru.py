"""`GRU` and `GRUCell`: PyTorch's API and semantics, the native kernels underneath.

`GRU` is the shared recurrent layer of `lstm_native.recurrent` with the GRU cell and no
cell state: the same checks, layouts and kernel driver as `LSTM` and `RNN`. Its n gate
keeps b_in and b_hn apart (r multiplies b_hn), so the kernels take b_hn on its own and
return its gradient on its own. `reset_after=False` is the other standard GRU (Keras's
reset_after=False, ONNX's linear_before_reset=0). The equations are written out for a
reader in `lstm_native.reference` (`gru_forward`, `gru_backward`).
"""
from __future__ import annotations

import numpy as np

from . import _recurrent
from ._parallel import check_n_threads, effective_n_threads, single_threaded_blas
from ._validation import (MAX_FEATURES, check_bool, check_device, check_model_dtype,
                          check_parameter_count, check_seed, check_size)
from .module import one_thread_in_training
from .recurrent import _Cell, _Recurrent, add_initial_parameters, check_init, check_state

__all__ = ["GRU", "GRUCell"]


def _cell_kind(reset_after: bool) -> _recurrent.Cell:
    return _recurrent.Cell.GRU if reset_after else _recurrent.Cell.GRU_RESET_BEFORE


def _kernel_biases(b_ih, b_hh, H: int, reset_after: bool, dtype):
    """The kernels' (bias, bias_hn) from b_ih and b_hh (None: no bias): r and z take
    b_ih + b_hh; with the reset after, n takes b_in and b_hn apart, else their sum."""
    if b_ih is None:
        return np.zeros(3 * H, dtype), (np.zeros(H, dtype) if reset_after else None)
    if not reset_after:
        return b_ih + b_hh, None
    bias = b_ih.copy()
    bias[:2 * H] += b_hh[:2 * H]
    return bias, b_hh[2 * H:].copy()


class GRU(_Recurrent):
    """A multi-layer GRU over whole sequences, as `torch.nn.GRU`.

    For each step t and layer, with gates in PyTorch's order (reset, update, new)::

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    and with ``reset_after=False`` n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn).

    Parameters
    ----------
    input_size : int
        Features of each input step, I, in 1..2**20.
    hidden_size : int
        Features of the hidden state, H, in 1..2**20.
    num_layers : int, default 1
        Stacked layers, L, in 1..1024; layer k > 0 reads the output of layer k - 1.
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
    reset_after : bool, default True
        Keyword-only, as `seed` and `n_threads` (the other arguments are torch's, in its
        order). True: PyTorch's GRU (ONNX's linear_before_reset=1), the reset gate multiplies the
        recurrent term of n. False: it multiplies h_{t-1} before W_hn (Keras's
        reset_after=False, ONNX's linear_before_reset=0; not in PyTorch).
    device : None, "cpu" or torch.device("cpu")
        As torch's: the kernels run on the CPU; any other device is a ValueError.
    dtype : np.float32, np.float64, their names, or torch.float32 / torch.float64
        The precision of parameters and computation; default float32.
    init : {"torch", "keras"}, default "torch"
        The initialisation: torch's U(-1/sqrt(H), 1/sqrt(H)) for every parameter, or
        Keras' (Glorot-uniform `weight_ih`, an orthogonal `weight_hh` over all gates at
        once, the transpose of Keras' (H, 3H) recurrent kernel, zero biases;
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
        run on; None uses OpenMP's default (OMP_NUM_THREADS, else all cores).

    Attributes
    ----------
    grads : dict of str to numpy.ndarray
        The gradient of every parameter, same keys and shapes as `state_dict()`;
        `backward` adds into it, `zero_grad` clears it.

    Notes
    -----
    Parameter names and shapes are PyTorch's: `weight_ih_l{k}` (3H, in), `weight_hh_l{k}`
    (3H, H), `bias_ih_l{k}` and `bias_hh_l{k}` (3H,), gates r, z, n, with the suffix
    `_reverse` for the backward direction; so `load_state_dict(torch_gru.state_dict())`
    works. As in PyTorch, the state is one array h, not a tuple.

    Limits and threads as `LSTM`: at most 2**31 - 1 parameters and 2**30 rows T·N per
    call; float64 inputs must fit a float32 model's range, nan and inf propagate;
    inference may run in many threads at once, training in one at a time.
    """

    _n_gates = 3
    _state_names = ("h",)
    _has_side = True
    _cell_defaults = {"reset_after": True}

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=np.float32, *,
                 reset_after: bool = True, init: str = "torch", input_dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, seed: int | None = None,
                 n_threads: int | None = None):
        self.reset_after = check_bool(reset_after, "reset_after")
        self._cell = _cell_kind(self.reset_after)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype, seed, n_threads, init=init,
                         input_dropout=input_dropout, recurrent_dropout=recurrent_dropout)

    def _cell_config(self) -> dict:
        return {"reset_after": self.reset_after}

    def _kernel_biases(self, sfx: str):
        b_ih = self._params[f"bias_ih{sfx}"] if self.bias else None
        b_hh = self._params[f"bias_hh{sfx}"] if self.bias else None
        return _kernel_biases(b_ih, b_hh, self.hidden_size, self.reset_after, self.dtype)

    def _add_bias_grads(self, sfx: str, db: np.ndarray, db_hn) -> None:
        H = self.hidden_size
        self.grads[f"bias_ih{sfx}"] += db
        self.grads[f"bias_hh{sfx}"][:2 * H] += db[:2 * H]
        self.grads[f"bias_hh{sfx}"][2 * H:] += db_hn

    def forward(self, x, hx=None, lengths=None):
        """Run the GRU over whole sequences.

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


class GRUCell(_Cell):
    """One GRU step, as `torch.nn.GRUCell`.

    Parameters
    ----------
    input_size : int
        Features of the input, I, in 1..2**20.
    hidden_size : int
        Features of the hidden state, H, in 1..2**20.
    bias : bool, default True
        Whether the cell has `bias_ih` and `bias_hh`.
    reset_after : bool, default True
        As `GRU`'s: True is PyTorch's GRUCell. Keyword-only, as `seed` and `n_threads`.
    device : None, "cpu" or torch.device("cpu")
        As torch's: the kernels run on the CPU; any other device is a ValueError.
    dtype : np.float32, np.float64, their names, or torch.float32 / torch.float64
        Default float32. `bias`, `device` and `dtype` are torch's positional arguments,
        in its order.
    init : {"torch", "keras"}, default "torch"
        torch's U(-1/sqrt(H), 1/sqrt(H)) initialisation, or Keras' (as `GRU`'s).
    seed : int, numpy Generator or None
        Seed of the initialisation; an int >= 0.
    n_threads : int or None
        OpenMP threads (they split the batch), in 1..1024, used up to the cores the
        process may run on; None uses OpenMP's default.

    Notes
    -----
    Parameters are `weight_ih` (3H, I), `weight_hh` (3H, H), `bias_ih`, `bias_hh` (3H,),
    gates in the order reset, update, new, as PyTorch.

    Limits and threads as `GRU`: at most 2**31 - 1 parameters and 2**30 rows N per step;
    inference may run in many threads at once, training in one at a time.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=np.float32, *, reset_after: bool = True, init: str = "torch",
                 seed: int | None = None, n_threads: int | None = None):
        check_device(device)
        super().__init__(check_model_dtype(dtype))
        self.input_size = check_size(input_size, "input_size", maximum=MAX_FEATURES)
        self.hidden_size = check_size(hidden_size, "hidden_size", maximum=MAX_FEATURES)
        self.bias = check_bool(bias, "bias")
        self.init = check_init(init)
        self.reset_after = check_bool(reset_after, "reset_after")
        self.n_threads = check_n_threads(n_threads)
        H = self.hidden_size
        check_parameter_count(3 * H * (self.input_size + H + 2 * self.bias),
                              "input_size and hidden_size")
        rng = np.random.default_rng(check_seed(seed))
        shapes = {"weight_ih": (3 * H, self.input_size), "weight_hh": (3 * H, H)}
        if self.bias:
            shapes.update(bias_ih=(3 * H,), bias_hh=(3 * H,))
        add_initial_parameters(self, rng, shapes, self.init)

    def get_config(self) -> dict:
        """The constructor's arguments (but the seed) as a JSON-ready dict."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "bias": self.bias, "reset_after": self.reset_after, "init": self.init,
                "dtype": self.dtype.name, "n_threads": self.n_threads}

    def __repr__(self) -> str:
        extra = ("" if self.bias else ", bias=False") + \
            ("" if self.reset_after else ", reset_after=False") + \
            ("" if self.init == "torch" else f", init={self.init!r}")
        return f"GRUCell({self.input_size}, {self.hidden_size}{extra}, dtype={self.dtype.name})"

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
        bias, bias_hn = _kernel_biases(self._params.get("bias_ih"), self._params.get("bias_hh"),
                                       H, self.reset_after, self.dtype)
        lengths = np.ones(N, np.int64)
        gates = np.empty((N, 3 * H), self.dtype)
        side = np.empty((N, H), self.dtype)
        # Two slots, as a one-step sequence in training: the previous and the new state.
        h = np.concatenate([h_prev, np.empty_like(h_prev)])
        out = np.empty((N, H), self.dtype)
        with single_threaded_blas():
            _recurrent.forward_layer(_cell_kind(self.reset_after), x, self._params["weight_ih"],
                                     self._params["weight_hh"], None, bias, bias_hn, lengths,
                                     gates,
                                     side, h, None, out, 0, False, True,
                                     effective_n_threads(self.n_threads))
        h_new = h[N:].copy()
        if self.training:
            self._keep_for_backward((x, lengths, gates, side, h, batched))
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
        x, lengths, gates, side, h, batched = self._cache_for_backward()
        N, H = x.shape[0], self.hidden_size
        shape, expected = self._state_shape(N, batched)
        dh_next = check_state(dh, "dh", shape, expected, self.dtype).reshape(N, H)
        self._cache = None
        dx = np.zeros_like(x)
        db = np.zeros(3 * H, self.dtype) if self.bias else None
        db_hn = np.zeros(H, self.dtype) if self.bias else None
        no_output_grad = np.zeros((N, H), self.dtype)
        with single_threaded_blas():
            _recurrent.backward_layer(_cell_kind(self.reset_after), x, self._params["weight_ih"],
                                      self._params["weight_hh"], None, lengths, gates, side,
                                      None, h, None, no_output_grad, 0, dh_next, None,
                                      self.grads["weight_ih"], self.grads["weight_hh"], None, db,
                                      db_hn, dx, False, effective_n_threads(self.n_threads))
        if self.bias:
            self.grads["bias_ih"] += db
            self.grads["bias_hh"][:2 * H] += db[:2 * H]
            self.grads["bias_hh"][2 * H:] += db_hn
        if not batched:
            return dx[0], dh_next[0]
        return dx, dh_next
