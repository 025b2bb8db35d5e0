"""The blocks around the recurrent layers, and the container that chains them.

`Linear` (a dense layer), `Dropout`, `LastStep` (sequence to one: each sequence's last
valid output) and `Sequential`, which runs a stack such as LSTM -> Dropout -> LastStep ->
Linear forwards and backwards under PyTorch's dotted parameter names, optionally carrying
the recurrent states from one chunk of a long sequence to the next (truncated BPTT).

Every block follows `LSTM`'s protocol, which is what `Sequential` relies on:

- ``forward(x, ...)`` returns the output; in training mode it keeps what backward needs.
- ``backward(dout, *, input_grad=True)`` adds the parameter gradients into `grads` and
  returns the gradient with respect to x (None when `input_grad` is False). Each
  training-mode forward can be back-propagated once; in eval mode backward raises.
- A *recurrent* layer (`LSTM`; any class with ``recurrent = True``) is called as
  ``out, state = layer(x, hx=state, lengths=lengths)`` and back-propagated as
  ``dx, dstate = layer.backward(dout, input_grad=...)``.
- A block with ``takes_lengths = True`` (`LastStep`, `Sequential`) is called as
  ``layer(x, lengths=lengths)``.

Threads, as every block (`lstm_native.module`): inference in eval mode may run in many
threads at once, training one thread at a time; a `Sequential` takes its own lock and
checks that its layers still hold what its forward kept before any of them
back-propagates, so a refused backward adds no gradient.
"""
from __future__ import annotations

import numbers

import numpy as np

from ._validation import (MAX_FEATURES, as_float_array, check_bool, check_lengths,
                          check_model_dtype, check_parameter_count, check_seed, check_shape,
                          check_size)
from .gru import GRUCell
from .lstm import LSTMCell
from .module import ONE_TRAINING_THREAD, Module, generator_from_state, one_thread_in_training
from .rnn import RNNCell

__all__ = ["Linear", "Dropout", "LastStep", "Sequential", "Ensemble"]


def _is_recurrent(layer) -> bool:
    """Whether `layer` follows the recurrent-layer protocol (see the module docstring)."""
    return getattr(type(layer), "recurrent", False) is True


def _takes_lengths(layer) -> bool:
    return _is_recurrent(layer) or getattr(type(layer), "takes_lengths", False) is True


def _blocks_dtype(blocks, kind: str, container: str):
    """The one dtype the blocks of a container compute in (None if none has one); a
    TypeError unless each is a Module, a ValueError when one appears twice or their
    dtypes differ. `kind` names a block in the messages ("layer", "member")."""
    for i, block in enumerate(blocks):
        if not isinstance(block, Module):
            raise TypeError(f"{kind} {i} must be a lstm_native Module, "
                            f"got {type(block).__name__}")
    if len({id(block) for block in blocks}) != len(blocks):
        raise ValueError(f"each {kind} of a{'n' * (container[0] in 'AEIOU')} {container} "
                         "must be a different object")
    dtypes = {block.dtype for block in blocks if block.dtype is not None}
    if len(dtypes) > 1:
        raise ValueError(f"the {kind}s compute in different dtypes "
                         f"{sorted(dt.name for dt in dtypes)}: build them with one dtype")
    return dtypes.pop() if dtypes else None


def _gather_parameters(container: Module, blocks) -> None:
    """The blocks' parameters and gradients in the container's, as ``"{i}.{name}"``
    (torch's naming in Sequential and ModuleList): the same arrays, not copies."""
    for i, block in enumerate(blocks):
        container._params.update({f"{i}.{k}": v for k, v in block.parameters().items()})
        container.grads.update({f"{i}.{k}": v for k, v in block.grads.items()})


def _backward_cache(module: Module):
    """The cache of this thread's last training-mode forward, taken (each forward is
    back-propagated once); RuntimeError as `Module._cache_for_backward`."""
    cache = module._cache_for_backward()
    module._cache = None
    return cache


class Linear(Module):
    """A dense layer ``y = x Wᵀ + b`` over the last axis, as `torch.nn.Linear`.

    Parameters
    ----------
    in_features : int
        Features of each input, I, in 1..2**20.
    out_features : int
        Features of each output, O, in 1..2**20; I·O + O at most 2**31 - 1.
    bias : bool, default True
        Whether the layer has the parameter `bias`.
    dtype : {np.float32, np.float64}, default np.float32
        The precision of parameters and computation.
    seed : int, numpy Generator or None
        Seed of the initialisation: weight and bias from U(-1/sqrt(I), 1/sqrt(I)),
        PyTorch's default; an int >= 0.

    Attributes
    ----------
    grads : dict of str to numpy.ndarray
        Gradients of `weight` and `bias`; `backward` adds into them.

    Notes
    -----
    Parameter names and shapes are PyTorch's: `weight` (O, I) and `bias` (O,), so
    `load_state_dict(torch_linear.state_dict())` works. A float64 input to a float32
    layer must fit float32's range; nan and inf propagate. Inference may run in many
    threads at once, training in one at a time.
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 dtype=np.float32, seed: int | None = None):
        super().__init__(check_model_dtype(dtype))
        self.in_features = check_size(in_features, "in_features", maximum=MAX_FEATURES)
        self.out_features = check_size(out_features, "out_features", maximum=MAX_FEATURES)
        self.bias = check_bool(bias, "bias")
        check_parameter_count(self.out_features * (self.in_features + self.bias),
                              "in_features and out_features")
        rng = np.random.default_rng(check_seed(seed))
        bound = 1.0 / np.sqrt(self.in_features)
        self._add_parameter("weight", rng.uniform(-bound, bound,
                                                  (self.out_features, self.in_features)))
        if self.bias:
            self._add_parameter("bias", rng.uniform(-bound, bound, self.out_features))

    def get_config(self) -> dict:
        """The constructor's arguments (but the seed) as a JSON-ready dict.

        Returns
        -------
        dict
            `in_features`, `out_features`, `bias` and `dtype` (its name).
        """
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias}, dtype={self.dtype.name})")

    @one_thread_in_training
    def forward(self, x):
        """Apply the layer to the last axis of x.

        Parameters
        ----------
        x : array_like, (..., I)
            Any leading dimensions (none for one sample); float32 or float64 (converted
            to the layer's dtype).

        Returns
        -------
        numpy.ndarray, (..., O)
        """
        expected = f"(..., in_features) with in_features = {self.in_features}"
        user_x = x
        x = as_float_array(x, "x", self.dtype, expected)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape {expected}, got {x.shape}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        out = x2 @ self._params["weight"].T
        if self.bias:
            out += self._params["bias"]
        if self.training:
            # backward reads x again: our own copy, so the caller may reuse the buffer.
            if np.may_share_memory(x2, user_x):
                x2 = x2.copy()
            self._keep_for_backward((x2, lead))
        return out.reshape(lead + (self.out_features,))

    @one_thread_in_training
    def backward(self, dout, *, input_grad: bool = True):
        """Back-propagate through the last `forward`, adding into `grads`.

        Parameters
        ----------
        dout : array_like, (..., O)
            Gradient of the loss with respect to forward's output, of its shape.
        input_grad : bool, default True
            Whether to compute the gradient with respect to x.

        Returns
        -------
        dx : numpy.ndarray of x's shape, or None when `input_grad` is False

        Raises
        ------
        RuntimeError
            In eval mode, or with no training-mode forward left to back-propagate.
        """
        x2, lead = _backward_cache(self)
        shape = lead + (self.out_features,)
        expected = "(..., out_features), forward's output shape"
        dout = as_float_array(dout, "dout", self.dtype, expected)
        check_shape(dout, "dout", shape, expected)
        d2 = dout.reshape(-1, self.out_features)
        self.grads["weight"] += d2.T @ x2
        if self.bias:
            self.grads["bias"] += d2.sum(axis=0)
        if not input_grad:
            return None
        return (d2 @ self._params["weight"]).reshape(lead + (self.in_features,))


class Dropout(Module):
    """Inverted dropout, as `torch.nn.Dropout`.

    In training mode each element is zeroed with probability `p` and the others are
    scaled by 1/(1 - p), so that the expected output is the input; in eval mode the
    layer is the identity.

    Parameters
    ----------
    p : float, default 0.5
        The probability of zeroing an element, in [0, 1).
    seed : int or None
        Seed of the layer's own random generator: the same seed gives the same
        sequence of masks.

    Notes
    -----
    The output keeps the input's dtype (float32 or float64). In eval mode forward
    returns x itself, without a copy.
    """

    def __init__(self, p: float = 0.5, *, seed: int | None = None):
        super().__init__(None)
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"p must be a float in [0, 1), got {p!r}")
        if not 0 <= p < 1:
            raise ValueError(f"p must be a float in [0, 1), got {p}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed must be None or an int >= 0, got {seed!r}")
        if seed is not None and seed < 0:
            raise ValueError(f"seed must be None or an int >= 0, got {seed}")
        self.p = float(p)
        self.seed = None if seed is None else int(seed)
        self._rng = np.random.default_rng(self.seed)

    def get_config(self) -> dict:
        """The constructor's arguments as a JSON-ready dict.

        Returns
        -------
        dict
            `p` and `seed` (a rebuilt layer restarts the seed's sequence of masks).
        """
        return {"p": self.p, "seed": self.seed}

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"

    def rng_state(self) -> dict:
        """The state of the generator of the masks (numpy's `bit_generator.state`)."""
        return self._rng.bit_generator.state

    def set_rng_state(self, state: dict) -> None:
        """Put the generator of the masks where `rng_state` said it was."""
        self._rng = generator_from_state(state)

    @one_thread_in_training
    def forward(self, x):
        """Drop elements of x (training) or pass it through (eval).

        Parameters
        ----------
        x : array_like of float32 or float64, any shape

        Returns
        -------
        numpy.ndarray of x's shape and dtype
        """
        x = as_float_array(x, "x", None, "(any shape)")  # its own dtype: no parameters
        if not self.training:
            self._cache = None
            return x
        keep = self._rng.random(x.shape, dtype=x.dtype) >= self.p
        # The mask carries the 1/(1-p) scale, so backward is one multiplication.
        mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        self._keep_for_backward(mask)
        return np.asarray(x * mask)  # an array also for 0-d x (NumPy gives a scalar)

    @one_thread_in_training
    def backward(self, dout, *, input_grad: bool = True):
        """The gradient through the last training-mode forward's mask.

        Parameters
        ----------
        dout : array_like, forward's output shape
        input_grad : bool, default True
            Whether to compute the gradient with respect to x.

        Returns
        -------
        dx : numpy.ndarray, or None when `input_grad` is False

        Raises
        ------
        RuntimeError
            In eval mode, or with no training-mode forward left to back-propagate.
        """
        mask = _backward_cache(self)
        dout = as_float_array(dout, "dout", mask.dtype, "forward's output shape")
        check_shape(dout, "dout", mask.shape, "forward's output shape")
        return np.asarray(dout * mask) if input_grad else None


class LastStep(Module):
    """Sequence to one: each sequence's last valid output of a recurrent layer.

    Parameters
    ----------
    batch_first : bool, default False
        The input is (N, T, F) instead of (T, N, F), as the recurrent layer's output.
    bidirectional : bool, default False
        The input is a bidirectional layer's output, F = 2H: the forward direction's
        H features then the reverse direction's.

    Notes
    -----
    For sequence n of length L_n (T when `lengths` is None) the output is
    ``x[L_n - 1, n, :]``. With `bidirectional` it is the forward half at the last
    valid step, ``x[L_n - 1, n, :H]``, followed by the reverse half at step 0,
    ``x[0, n, H:]``: the reverse direction ends at step 0, so each half is its
    direction's final hidden state (the h_n of a one-layer LSTM, in the same order).
    An unbatched (T, F) input gives an (F,) output.
    """

    takes_lengths = True

    def __init__(self, *, batch_first: bool = False, bidirectional: bool = False):
        super().__init__(None)
        self.batch_first = check_bool(batch_first, "batch_first")
        self.bidirectional = check_bool(bidirectional, "bidirectional")

    def get_config(self) -> dict:
        """The constructor's arguments as a JSON-ready dict.

        Returns
        -------
        dict
            `batch_first` and `bidirectional`.
        """
        return {"batch_first": self.batch_first, "bidirectional": self.bidirectional}

    def __repr__(self) -> str:
        return f"LastStep(batch_first={self.batch_first}, bidirectional={self.bidirectional})"

    def _time_major(self, a: np.ndarray) -> np.ndarray:
        """A (T, N, F) view of a sequence in the user's layout."""
        if a.ndim == 2:
            return a[:, None, :]
        return a.transpose(1, 0, 2) if self.batch_first else a

    @one_thread_in_training
    def forward(self, x, lengths=None):
        """Pick each sequence's last valid output.

        Parameters
        ----------
        x : array_like, (T, N, F), or (N, T, F) with `batch_first`, or unbatched (T, F)
            A recurrent layer's output; float32 or float64 (kept).
        lengths : array_like of int, (N,), or None
            Valid steps of each sequence, in 1..T, as given to the recurrent layer;
            None means T for all.

        Returns
        -------
        numpy.ndarray, (N, F), or (F,) unbatched
        """
        layout = "(N, T, F)" if self.batch_first else "(T, N, F)"
        expected = f"{layout} or (T, F)" + (" with F even" if self.bidirectional else "")
        x = as_float_array(x, "x", None, expected)  # its own dtype: no parameters
        if x.ndim not in (2, 3):
            raise ValueError(f"x must have shape {expected}, got {x.shape}")
        seq = self._time_major(x)
        T, N, F = seq.shape
        if T < 1 or N < 1 or F < 1:
            raise ValueError(f"x must have at least one step, sequence and feature, "
                             f"got shape {x.shape}")
        if self.bidirectional and F % 2:
            raise ValueError(f"x must have shape {expected}: a bidirectional output has "
                             f"2H features, got {F}")
        last = check_lengths(lengths, N, T) - 1
        rows = np.arange(N)
        if self.bidirectional:
            H = F // 2
            out = np.concatenate([seq[last, rows, :H], seq[0, :, H:]], axis=1)
        else:
            out = seq[last, rows]
        if self.training:
            self._keep_for_backward((x.shape, x.dtype, last))
        return out[0] if x.ndim == 2 else out

    @one_thread_in_training
    def backward(self, dout, *, input_grad: bool = True):
        """Scatter dout back to the steps forward picked; zeros elsewhere.

        Parameters
        ----------
        dout : array_like, (N, F), or (F,) unbatched
        input_grad : bool, default True
            Whether to compute the gradient with respect to x.

        Returns
        -------
        dx : numpy.ndarray of x's shape, or None when `input_grad` is False

        Raises
        ------
        RuntimeError
            In eval mode, or with no training-mode forward left to back-propagate.
        """
        shape, dtype, last = _backward_cache(self)
        dx = np.zeros(shape, dtype)
        seq = self._time_major(dx)
        T, N, F = seq.shape
        out_shape, expected = ((F,), "(F,)") if len(shape) == 2 else ((N, F), "(N, F)")
        dout = as_float_array(dout, "dout", dtype, expected)
        check_shape(dout, "dout", out_shape, expected)
        if not input_grad:
            return None
        dout = dout.reshape(N, F)
        rows = np.arange(N)
        if self.bidirectional:
            H = F // 2
            seq[last, rows, :H] = dout[:, :H]
            seq[0, :, H:] = dout[:, H:]
        else:
            seq[last, rows] = dout
        return dx


class Sequential(Module):
    """Layers run one after the other, as `torch.nn.Sequential`.

    Parameters
    ----------
    *layers : Module
        At least one, each a different object: `LSTM` (or another recurrent layer),
        `Linear`, `Dropout`, `LastStep`, a nested `Sequential`. Every layer with
        parameters must compute in the same dtype.
    stateful : bool, default False
        Carry each recurrent layer's final state into the next `forward` (see Notes).

    Attributes
    ----------
    layers : tuple of Module
    grads : dict of str to numpy.ndarray
        The layers' gradients under dotted names; the same arrays as the layers' own.
    stateful : bool
        Setting it clears the kept states.

    Notes
    -----
    Parameter names are PyTorch's: the layer's index, a dot and the layer's own name
    (``0.weight_ih_l0``, ``2.weight``), so the keys of `state_dict()` are those of the
    equivalent `torch.nn.Sequential`. `parameters()` and `grads` hold the layers' own
    arrays; `load_state_dict` checks every dotted name, shape and value before writing
    any (a failed load leaves every layer unchanged).

    A recurrent layer's ``(out, state)`` is reduced to `out` for the next layer.
    `lengths` goes to the recurrent layers and to the blocks that take it (`LastStep`).

    Stateful mode is truncated BPTT over consecutive chunks of long sequences (Keras's
    `stateful=True`, PyTorch's detached hidden state): each recurrent layer starts from
    the state its previous forward ended in, so that running the chunks one after the
    other gives the outputs of one forward over the whole sequences; `backward` stops
    at the chunk's start (no gradient flows into the previous chunk). The batch must
    keep its size and order from chunk to chunk; with `lengths`, a sequence's kept state
    is the one at its last valid step. `reset_states()` starts new sequences. The
    variational dropout masks of the layers (`input_dropout`, `recurrent_dropout`) are
    held too: one per stream over all its chunks, drawn anew after `reset_states()`. A
    bidirectional recurrent layer cannot be stateful: its reverse direction starts at
    each chunk's end.

    Examples
    --------
    A one-step-ahead forecaster: windows of 12 steps in, one value out.

    >>> import numpy as np
    >>> from lstm_native import LSTM, LastStep, Linear, Sequential
    >>> model = Sequential(LSTM(1, 8, batch_first=True, seed=0), LastStep(batch_first=True),
    ...                    Linear(8, 1, seed=1))
    >>> model(np.zeros((5, 12, 1))).shape    # (N, T, I) in, (N, 1) out
    (5, 1)
    >>> list(model.state_dict())             # the names of torch.nn.Sequential
    ['0.weight_ih_l0', '0.weight_hh_l0', '0.bias_ih_l0', '0.bias_hh_l0', '2.weight', '2.bias']
    """

    takes_lengths = True

    def __init__(self, *layers: Module, stateful: bool = False):
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        dtype = _blocks_dtype(layers, "layer", "Sequential")
        for i, layer in enumerate(layers):
            if isinstance(layer, (LSTMCell, GRUCell, RNNCell)):
                cls = type(layer).__name__
                raise TypeError(f"layer {i} ({cls}) runs one step with its own state: "
                                f"use {cls[:-len('Cell')]} in a Sequential")
        super().__init__(dtype)
        self.layers = tuple(layers)
        _gather_parameters(self, self.layers)
        self.training = all(layer.training for layer in self.layers)
        self._states = [None] * len(self.layers)
        self.stateful = stateful

    @property
    def stateful(self) -> bool:
        """Whether each forward starts from the recurrent states the last one ended in."""
        return self._stateful

    @stateful.setter
    def stateful(self, value: bool) -> None:
        value = check_bool(value, "stateful")
        if value:
            for i, layer in enumerate(self.layers):
                if _is_recurrent(layer) and getattr(layer, "bidirectional", False):
                    raise ValueError(f"layer {i} is bidirectional and cannot be stateful: "
                                     "its reverse direction starts at each chunk's end")
        self._stateful = value
        self.reset_states()

    def reset_states(self) -> None:
        """Forget the kept recurrent states (also of nested Sequentials): the next
        forward starts from zeros."""
        self._states = [None] * len(self.layers)
        for layer in self.layers:
            if isinstance(layer, Sequential):
                layer.reset_states()

    @classmethod
    def from_config(cls, config: dict, build_layer) -> Sequential:
        """Rebuild from `get_config()`'s dict (fresh weights).

        Parameters
        ----------
        config : dict
            As `get_config()` returns.
        build_layer : callable
            Builds one layer from its ``{"type": ..., "config": ...}`` dict, such as
            `lstm_native.checkpoint.build_module`.

        Returns
        -------
        Sequential
        """
        return cls(*(build_layer(spec) for spec in config["layers"]),
                   stateful=config.get("stateful", False))

    def get_config(self) -> dict:
        """The architecture as a JSON-ready dict.

        Returns
        -------
        dict
            ``{"layers": [{"type": class name, "config": layer.get_config()}, ...],
            "stateful": bool}``; `from_config` rebuilds it.
        """
        return {"layers": [{"type": type(layer).__name__, "config": layer.get_config()}
                           for layer in self.layers],
                "stateful": self.stateful}

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, index):
        """The layer at an int index, or a Sequential of the same layer objects for a
        slice (not stateful's kept states)."""
        if isinstance(index, slice):
            return Sequential(*self.layers[index], stateful=self.stateful)
        return self.layers[index]

    def __repr__(self) -> str:
        lines = [f"  ({i}): " + repr(layer).replace("\n", "\n  ")
                 for i, layer in enumerate(self.layers)]
        stateful = "stateful=True, " if self.stateful else ""
        return f"Sequential({stateful}\n" + "\n".join(lines) + "\n)"

    def children(self) -> tuple[Module, ...]:
        """The layers, in order.

        Returns
        -------
        tuple of Module
        """
        return self.layers

    @one_thread_in_training
    def forward(self, x, lengths=None):
        """Run the layers in order.

        Parameters
        ----------
        x : array_like
            The first layer's input.
        lengths : array_like of int, (N,), or None
            Valid steps of each sequence, given to the recurrent layers and `LastStep`.

        Returns
        -------
        numpy.ndarray
            The last layer's output (a recurrent layer's `out`, without its state).
        """
        for i, layer in enumerate(self.layers):
            if _is_recurrent(layer):
                hx = self._states[i] if self._stateful else None
                if hasattr(layer, "_hold_masks"):
                    # Continuing its streams, a layer keeps its variational dropout masks.
                    layer._hold_masks = hx is not None
                try:
                    x, state = layer(x, hx=hx, lengths=lengths)
                except ValueError as e:
                    if hx is None:
                        raise
                    raise ValueError(f"layer {i}: {e} (a stateful Sequential starts each "
                                     "forward from the last one's final states: keep the "
                                     "batch size, or call reset_states())") from e
                if self._stateful:
                    self._states[i] = state
            elif _takes_lengths(layer):
                x = layer(x, lengths=lengths)
            else:
                x = layer(x)
        if self.training:
            # What each layer kept, by its mark: backward checks that it is still there.
            self._keep_for_backward(tuple(getattr(layer, "_cache_mark", None)
                                          for layer in self.layers))
        return x

    @one_thread_in_training
    def backward(self, dout, *, input_grad: bool = False):
        """Back-propagate through the last forward, last layer first, adding into `grads`.

        Parameters
        ----------
        dout : array_like
            Gradient of the loss with respect to forward's output.
        input_grad : bool, default False
            Whether to compute the gradient with respect to the input (passed to the
            first layer; False skips that work, the usual case for data).

        Returns
        -------
        dx : numpy.ndarray, or None when `input_grad` is False

        Raises
        ------
        RuntimeError
            In eval mode, with no training-mode forward left to back-propagate, or when
            another thread trains the model or one of its layers (then no layer has
            back-propagated).
        """
        marks = self._cache_for_backward()
        for i, (layer, mark) in enumerate(zip(self.layers, marks)):
            if getattr(layer, "_cache_mark", None) != mark:
                raise RuntimeError(f"Sequential.backward(): layer {i} ({type(layer).__name__}) "
                                   "has run another forward() since this Sequential's: "
                                   f"{ONE_TRAINING_THREAD}")
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            wanted = input_grad if i == 0 else True
            if _is_recurrent(layer):
                # No state gradient flows in: in stateful mode the final state only
                # feeds the next chunk, which does not back-propagate into this one.
                dout, _ = layer.backward(dout, input_grad=wanted)
            else:
                dout = layer.backward(dout, input_grad=wanted)
        self._cache = None
        return dout


class Ensemble(Module):
    """Models of the same input and output run side by side, their outputs reduced to one:
    the elementwise mean or median (an ensemble over seeds and its median forecast).

    Parameters
    ----------
    *members : Module
        Two or more models (e.g. `Sequential`s) that map the same input to outputs of
        one shape. A recurrent layer (whose output is a pair) goes into a `Sequential`
        first.
    reduce : {"median", "mean"}, default "median"
        How the members' outputs combine. The median is robust to a member that
        trained badly; with an even count it is the mean of the two middle values.

    Notes
    -----
    `backward` gives the gradient of the reduction: for the mean each member gets
    ``dout / K``; for the median, at each output element, the middle member (odd K) or
    each of the two middle ones with half (even K), the others none (the median's
    gradient where the members' values differ). The parameters are named
    ``"{k}.{name}"`` after member k, as torch's `ModuleList`; training the members one
    by one (`lstm_native.fit` on ``ensemble.members[k]``) is what an ensemble over
    seeds does.

    Examples
    --------
    >>> import numpy as np
    >>> from lstm_native import Ensemble, Linear
    >>> ensemble = Ensemble(*(Linear(2, 1, seed=s) for s in range(3)))
    >>> x = np.ones((4, 2))
    >>> bool(np.allclose(ensemble(x), np.median(ensemble.outputs(x), axis=0)))
    True
    >>> list(ensemble.state_dict())[:2]
    ['0.weight', '0.bias']
    """

    takes_lengths = True
    REDUCTIONS = ("median", "mean")

    def __init__(self, *members: Module, reduce: str = "median"):
        if len(members) < 2:
            raise ValueError(f"Ensemble needs at least two members, got {len(members)}")
        dtype = _blocks_dtype(members, "member", "Ensemble")
        for k, member in enumerate(members):
            if _is_recurrent(member) or isinstance(member, (LSTMCell, GRUCell, RNNCell)):
                raise TypeError(f"member {k} ({type(member).__name__}) returns its state "
                                "too: put it in a Sequential with the blocks after it")
        if reduce not in self.REDUCTIONS:
            raise ValueError(f"reduce must be one of {', '.join(map(repr, self.REDUCTIONS))}, "
                             f"got {reduce!r}")
        super().__init__(dtype)
        self.members, self.reduce = tuple(members), reduce
        _gather_parameters(self, self.members)
        self.training = all(m.training for m in self.members)

    def get_config(self) -> dict:
        """``{"members": [{"type": ..., "config": ...}, ...], "reduce": str}``."""
        return {"members": [{"type": type(m).__name__, "config": m.get_config()}
                            for m in self.members],
                "reduce": self.reduce}

    @classmethod
    def from_config(cls, config: dict, build_layer) -> Ensemble:
        """Rebuild from `get_config()`'s dict (fresh weights); `build_layer` builds one
        member from its ``{"type", "config"}`` dict, as for `Sequential.from_config`."""
        return cls(*(build_layer(spec) for spec in config["members"]),
                   reduce=config["reduce"])

    def children(self) -> tuple[Module, ...]:
        """The members, in order."""
        return self.members

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        lines = [f"  ({k}): " + repr(m).replace("\n", "\n  ")
                 for k, m in enumerate(self.members)]
        return f"Ensemble(reduce={self.reduce!r},\n" + "\n".join(lines) + "\n)"

    def outputs(self, x, lengths=None) -> np.ndarray:
        """Every member's output, stacked: (K, *output shape)."""
        outs = [m(x, lengths=lengths) if _takes_lengths(m) else m(x) for m in self.members]
        shapes = {np.shape(o) for o in outs}
        if len(shapes) > 1:
            raise ValueError(f"the members' outputs differ in shape {sorted(shapes)}: an "
                             "Ensemble's members map one input to outputs of one shape")
        return np.stack(outs)

    @one_thread_in_training
    def forward(self, x, lengths=None):
        """The members' outputs reduced (`reduce`) to one array of their shape."""
        outs = self.outputs(x, lengths)
        if self.reduce == "mean":
            out = outs.mean(axis=0)
            weights = None
        else:
            out = np.median(outs, axis=0)
            weights = self._median_weights(outs) if self.training else None
        if self.training:
            self._keep_for_backward((weights, tuple(getattr(m, "_cache_mark", None)
                                                    for m in self.members)))
        return out.astype(outs.dtype, copy=False)

    @staticmethod
    def _median_weights(outs: np.ndarray) -> np.ndarray:
        """(K, ...) the median's derivative by each member's output: 1 at the middle
        member (odd K), 1/2 at the two middle ones (even K), else 0."""
        k = len(outs)
        order = np.argsort(outs, axis=0, kind="stable")
        weights = np.zeros(outs.shape, outs.dtype)
        middle = (k // 2,) if k % 2 else (k // 2 - 1, k // 2)
        for rank in middle:
            np.put_along_axis(weights, order[rank:rank + 1], 1.0 / len(middle), axis=0)
        return weights

    @one_thread_in_training
    def backward(self, dout, *, input_grad: bool = False):
        """Back-propagate the reduction into each member (see Notes); returns the sum of
        the members' input gradients when `input_grad`, else None."""
        weights, marks = self._cache_for_backward()
        for k, (member, mark) in enumerate(zip(self.members, marks)):
            if getattr(member, "_cache_mark", None) != mark:
                raise RuntimeError(f"Ensemble.backward(): member {k} has run another "
                                   f"forward() since this Ensemble's: {ONE_TRAINING_THREAD}")
        dout = np.asarray(dout)
        dx = None
        for k, member in enumerate(self.members):
            share = dout / len(self.members) if weights is None else dout * weights[k]
            d = member.backward(share.astype(dout.dtype, copy=False), input_grad=input_grad)
            if input_grad:
                dx = d if dx is None else dx + d
        self._cache = None
        return dx
