"""What the stacked recurrent layers share: PyTorch's semantics around the native kernels.

`LSTM` (lstm.py), `RNN` (rnn.py) and `GRU` (gru.py) are the same layer around different
cells. This base class holds everything they have in common: the argument checks and
their messages, the (T, N, ·) / (N, T, ·) / unbatched layouts, the parameters under
PyTorch's names, and the loop over layers and directions that calls
`lstm_native._recurrent` once per layer and direction over the whole sequence. A subclass
says only what its cell is:

- `_n_gates`, the gate blocks of H rows in its weights (4 for the LSTM, 1 for the RNN, 3
  for the GRU);
- `_state_names`, its state: ``("h", "c")`` for the LSTM (hx is a pair of arrays),
  ``("h",)`` for the RNN and the GRU (hx is one array);
- `_cell`, the cell kind the kernels run (`lstm_native._recurrent.Cell`);
- `_has_side`, whether the kernels need the GRU's buffer for its n rows (`side` in
  `lstm_native._recurrent`), and `_kernel_biases` / `_add_bias_grads` when b_ih and b_hh
  do not enter the gates as one sum (the GRU's n gate).

The LSTM's projection (`proj_size` P > 0) is here too, as the sizes it changes are
everywhere: h, the output and an inner layer's input are P wide per direction
(`_out_size`), c stays H wide (`_state_sizes`), W_hh is G × P, and each layer and
direction has `weight_hr` (P, H) and a `side` buffer for the projection's input.

The subclasses define the public `forward` and `backward` (with their own docstrings)
on top of `_forward` and `_backward` here. Those two hold the rules every block follows
(`lstm_native.module`): in training mode one thread at a time, what forward keeps marked
as its thread's; in eval mode no lock and nothing kept, so threads may share a model.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from . import _recurrent
from . import init as initializers
from ._parallel import check_n_threads, effective_n_threads, single_threaded_blas
from ._validation import (MAX_FEATURES, MAX_NUM_LAYERS, as_float_array, check_bool,
                          check_device, check_lengths, check_model_dtype,
                          check_parameter_count, check_rows, check_seed, check_shape,
                          check_size)
from .module import Module, generator_from_state, one_thread_in_training


def init_uniform(rng: np.random.Generator, shape: tuple, hidden_size: int) -> np.ndarray:
    """PyTorch's default initialisation: every parameter from U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / np.sqrt(hidden_size)
    return rng.uniform(-bound, bound, size=shape)


def check_state(arr, name: str, shape: tuple, expected: str, dtype) -> np.ndarray:
    """One state array of the given shape, as a contiguous copy in the model's dtype."""
    arr = as_float_array(arr, name, dtype, expected)
    check_shape(arr, name, shape, expected)
    return np.array(arr, dtype=dtype, order="C", copy=True)


def check_state_pair(pair, name: str, specs: tuple, dtype) -> tuple:
    """(h, c) given as a pair of arrays; a contiguous copy of each. specs: the (shape,
    description) of h and of c."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        (_, h_expected), (_, c_expected) = specs
        expected = h_expected if h_expected == c_expected else f"h: {h_expected}, c: {c_expected}"
        raise TypeError(f"{name} must be a tuple of two arrays ({expected}), "
                        f"got {type(pair).__name__}")
    return tuple(check_state(arr, f"{name}[{i}]", shape, expected, dtype)
                 for i, (arr, (shape, expected)) in enumerate(zip(pair, specs)))


def check_proj_size(proj_size, hidden_size: int) -> int:
    """`proj_size` as an int in 0..hidden_size - 1, with torch's messages."""
    if isinstance(proj_size, (bool, np.bool_)) or not isinstance(proj_size, numbers.Integral):
        raise TypeError(f"proj_size should be a positive integer or zero to disable "
                        f"projections, got {proj_size!r}")
    if proj_size < 0:
        raise ValueError(f"proj_size should be a positive integer or zero to disable "
                         f"projections, got {proj_size}")
    if proj_size >= hidden_size:
        raise ValueError(f"proj_size has to be smaller than hidden_size, got proj_size="
                         f"{proj_size} and hidden_size={hidden_size}")
    return int(proj_size)


INITS = ("torch", "keras")


def check_init(init) -> str:
    """`init` as one of `INITS`."""
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"init must be 'torch' (U(-1/sqrt(H), 1/sqrt(H)) for every "
                         f"parameter) or 'keras' (glorot-uniform, orthogonal recurrent "
                         f"kernel, zero biases), got {init!r}")
    return init


def check_unit_forget_bias(unit_forget_bias, bias: bool) -> bool:
    """`unit_forget_bias` as a bool, which needs the biases it sets."""
    if check_bool(unit_forget_bias, "unit_forget_bias") and not bias:
        raise ValueError("unit_forget_bias=True sets the forget gate's bias: it needs "
                         "bias=True")
    return unit_forget_bias


def add_initial_parameters(module: Module, rng: np.random.Generator, shapes: dict,
                           init: str, unit_forget_bias: bool = False) -> None:
    """Add the parameters of `shapes` (name -> shape, in torch's order: the order of the
    seeded draws) to a recurrent layer or cell, initialised by `init`: torch's
    U(-1/sqrt(H), 1/sqrt(H)) for all, or Keras' (Glorot-uniform input weights and
    projections, an orthogonal recurrent kernel over all gates at once, as Keras draws
    its (H, G) kernel: ours is its transpose, zero biases). `unit_forget_bias` (an LSTM's,
    Keras') then sets the forget gate's bias b_ih + b_hh to 1."""
    H = module.hidden_size
    for name, shape in shapes.items():
        if name.startswith(("weight_ln", "bias_ln")):
            # The layer norm's gains start at 1, its biases at 0, under either init (no
            # draw: the other parameters are drawn as without it).
            value = np.full(shape, 1.0 if name.startswith("weight") else 0.0)
        elif init == "torch":
            value = init_uniform(rng, shape, H)
        elif name.startswith("weight_peephole"):
            # Keras' LSTM has none; TF's PeepholeLSTMCell drew each gate's (H,) vector
            # with the Glorot-uniform kernel initializer, fan_in = fan_out = H.
            value = rng.uniform(-np.sqrt(3.0 / H), np.sqrt(3.0 / H), size=shape)
        elif name.startswith("bias"):
            value = np.zeros(shape)
        elif name.startswith("weight_hh"):
            value = initializers.orthogonal_(np.empty(shape), rng=rng)
        else:
            value = initializers.glorot_uniform_(np.empty(shape), rng=rng)
        module._add_parameter(name, value)
    if unit_forget_bias:
        for name in shapes:
            if name.startswith("bias"):
                module._params[name][H:2 * H] = 1 if name.startswith("bias_ih") else 0


def check_clip(clip) -> float | None:
    """The LSTM's `clip` as a finite float > 0, or None."""
    if clip is None:
        return None
    if isinstance(clip, (bool, np.bool_)) or not isinstance(clip, numbers.Real) or \
            not 0 < clip < np.inf:
        raise ValueError(f"clip must be None or a finite number > 0 (the bound of every "
                         f"gate pre-activation), got {clip!r}")
    return float(clip)


def check_rate(p, name: str) -> float:
    """A dropout probability `name` as a float in [0, 1]."""
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"{name} must be a number in [0, 1] (the probability of zeroing "
                         f"each feature), got {p!r}")
    return float(p)


def check_dropout(dropout, num_layers: int) -> float:
    """`dropout` as a float in [0, 1], with torch's message and torch's warning for a
    single layer (there is no inner layer to drop from)."""
    message = ("dropout should be a number in range [0, 1] representing the probability "
               "of an element being zeroed")
    if isinstance(dropout, (bool, np.bool_)) or not isinstance(dropout, numbers.Real):
        raise TypeError(f"{message}, got {dropout!r}")
    if not 0 <= dropout <= 1:  # nan too
        raise ValueError(f"{message}, got {dropout}")
    if dropout > 0 and num_layers == 1:
        warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                      "non-zero dropout expects num_layers greater than 1, but got "
                      f"dropout={dropout} and num_layers={num_layers}", stacklevel=4)
    return float(dropout)


class _Cell(Module):
    """What `LSTMCell`, `GRUCell` and `RNNCell` share: the one-step input and state
    layouts (each cell's own constructor, forward and backward are in its module)."""

    def _state_shape(self, N: int, batched: bool) -> tuple[tuple, str]:
        """The shape of a state array and its description for messages."""
        H = self.hidden_size
        return ((N, H), "(N, hidden_size)") if batched else ((H,), "(hidden_size,)")

    def _check_step_input(self, x) -> tuple[np.ndarray, bool]:
        """x, (N, I) or unbatched (I,) in any memory layout, as a contiguous (N, I) array
        of the cell's dtype, and whether it was batched. In training the array is the
        cell's own: backward reads x again, and the caller may reuse its buffer."""
        expected = f"(N, I) or (I,) with I = input_size = {self.input_size}"
        user_x = x
        x = as_float_array(x, "x", self.dtype, expected)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size or x.size == 0:
            raise ValueError(f"x must have shape {expected}, got {x.shape}")
        batched = x.ndim == 2
        check_rows(x.size // self.input_size, "x", "the batch N")
        x = np.ascontiguousarray(x.reshape(-1, self.input_size))
        if self.training and np.may_share_memory(x, user_x):
            x = x.copy()
        return x, batched


def _dropped(seq: np.ndarray, mask, T: int) -> np.ndarray:
    """The (T·N, I) rows of a sequence times a per-sequence mask (N, I), the same at every
    step; the rows themselves without a mask."""
    if mask is None:
        return seq
    return (seq.reshape(T, *mask.shape) * mask).reshape(seq.shape)


class _Recurrent(Module):
    """A stacked, optionally bidirectional recurrent layer over whole sequences.

    Parameters
    ----------
    input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
    dtype, seed, n_threads, proj_size, init, unit_forget_bias, input_dropout,
    recurrent_dropout
        As documented by `LSTM`, `RNN` and `GRU`, which each define their own constructor
        (so that its signature and errors name the public class) and call this one; only
        the LSTM has a `proj_size` and a `unit_forget_bias`. A subclass with options of
        its own checks and sets them before calling this one, and says what they add
        through `_extra_shapes` and `_kernel_options`.
    """

    #: Runs over whole sequences with `lengths` and states: what `Sequential` looks for.
    recurrent = True

    # What a subclass sets (see the module docstring).
    _n_gates: int
    _state_names: tuple[str, ...]
    _cell: _recurrent.Cell
    _has_side: bool = False

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, bias: bool,
                 batch_first: bool, dropout: float, bidirectional: bool, device, dtype, seed,
                 n_threads, proj_size: int = 0, init: str = "torch",
                 unit_forget_bias: bool = False, input_dropout: float = 0.0,
                 recurrent_dropout: float = 0.0):
        check_device(device)
        super().__init__(check_model_dtype(dtype))
        self.input_size = check_size(input_size, "input_size", maximum=MAX_FEATURES)
        self.hidden_size = check_size(hidden_size, "hidden_size", maximum=MAX_FEATURES)
        self.num_layers = check_size(num_layers, "num_layers", maximum=MAX_NUM_LAYERS)
        self.bias = check_bool(bias, "bias")
        self.batch_first = check_bool(batch_first, "batch_first")
        self.dropout = check_dropout(dropout, self.num_layers)
        self.input_dropout = check_rate(input_dropout, "input_dropout")
        self.recurrent_dropout = check_rate(recurrent_dropout, "recurrent_dropout")
        self.bidirectional = check_bool(bidirectional, "bidirectional")
        self.proj_size = check_proj_size(proj_size, self.hidden_size)
        self.init = check_init(init)
        self.unit_forget_bias = check_unit_forget_bias(unit_forget_bias, self.bias)
        self.n_threads = check_n_threads(n_threads)
        self.num_directions = 2 if self.bidirectional else 1
        self._spare = {}
        # The variational masks of the last training forward, per layer and direction,
        # and whether the next one continues its sequences (see _variational_masks).
        self._held_masks = {}
        self._hold_masks = False

        H, D, G = self.hidden_size, self.num_directions, self._n_gates * self.hidden_size
        P = self._out_size
        proj = P * H if self.proj_size else 0
        extra = proj + sum(int(np.prod(shape)) for shape in self._extra_shapes().values())
        per_direction = G * (D * P + P + 2 * self.bias) + extra  # an inner layer's
        first = D * (G * (self.input_size + P + 2 * self.bias) + extra)
        check_parameter_count(first + (self.num_layers - 1) * D * per_direction,
                              "input_size, hidden_size, proj_size and num_layers")
        rng = np.random.default_rng(check_seed(seed))
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else D * P
            for direction in range(D):
                sfx = self._suffix(layer, direction)
                # torch's order of parameters (and so of the seeded draws)
                shapes = {f"weight_ih{sfx}": (G, in_size), f"weight_hh{sfx}": (G, P)}
                if self.bias:
                    shapes.update({f"bias_ih{sfx}": (G,), f"bias_hh{sfx}": (G,)})
                if self.proj_size:
                    shapes[f"weight_hr{sfx}"] = (P, H)
                shapes.update({f"{name}{sfx}": shape
                               for name, shape in self._extra_shapes().items()})
                add_initial_parameters(self, rng, shapes, self.init, self.unit_forget_bias)
        # The masks of `dropout` come from the same generator, past the initialisation.
        self._rng = rng

    #: Defaults of the subclass's own constructor arguments (left out of repr).
    _cell_defaults: dict = {}


    @property
    def _out_size(self) -> int:
        """Features of h and of each direction's output: proj_size, or hidden_size."""
        return self.proj_size or self.hidden_size

    def _state_sizes(self) -> tuple[int, ...]:
        """Features of each state of `_state_names`: h is `_out_size` wide, c H wide."""
        return (self._out_size, self.hidden_size)[:len(self._state_names)]

    def _cell_config(self) -> dict:
        """The subclass's own constructor arguments (listed after num_layers)."""
        return {}

    def _extra_shapes(self) -> dict:
        """The subclass's own parameters of each layer and direction, name (without the
        suffix) -> shape, after torch's in the order of the seeded draws."""
        return {}

    def _kernel_options(self, sfx: str, grads: bool) -> dict:
        """The subclass's own keyword arguments of `_recurrent.forward_layer` for the
        layer and direction of suffix `sfx`, and with `grads` those that
        `backward_layer` adds (its gradient buffers)."""
        return {}

    def _add_option_grads(self, sfx: str, options: dict) -> None:
        """Add what `backward_layer` left in the gradient buffers of `options` (as
        `_kernel_options(sfx, True)` gave them) into `grads`, where they are not
        `grads`' own arrays."""

    #: Values per row of the kernels' `norm` buffer (the layer-normalised LSTM's), 0 for
    #: none.
    _norm_width = 0

    def get_config(self) -> dict:
        """The constructor's arguments (but the seed) as a JSON-ready dict."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, **self._cell_config(), "bias": self.bias,
                "batch_first": self.batch_first, "dropout": self.dropout,
                "input_dropout": self.input_dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "bidirectional": self.bidirectional, "init": self.init,
                "dtype": self.dtype.name, "n_threads": self.n_threads}

    def flatten_parameters(self) -> None:
        """Do nothing, as there is nothing to do: the parameters are always contiguous
        arrays the kernels read as they are. Here so that code written for torch (which
        calls it after moving a model to a GPU) runs unchanged."""

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction else "")

    def __repr__(self) -> str:
        defaults = {"num_layers": 1, "bias": True, "dropout": 0.0, "input_dropout": 0.0,
                    "recurrent_dropout": 0.0, "init": "torch", **self._cell_defaults}
        shown = {"num_layers": self.num_layers, **self._cell_config(), "bias": self.bias,
                 "batch_first": self.batch_first, "dropout": self.dropout,
                 "input_dropout": self.input_dropout,
                 "recurrent_dropout": self.recurrent_dropout,
                 "bidirectional": self.bidirectional, "init": self.init}
        extra = "".join(f", {k}={v!r}" for k, v in shown.items()
                        if v != defaults.get(k, False))
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}{extra}, "
                f"dtype={self.dtype.name})")

    def _drop_cache(self) -> None:
        self._cache = None
        self._spare = {}
        self._held_masks = {}

    # -- training buffers kept between steps ------------------------------------------------
    # A training step needs tens to hundreds of MiB of activations (gates, state slots,
    # the outputs of inner layers). Fresh arrays that large come straight from the kernel
    # (mmap), which zeroes every page on its first touch: 3-7% of a step in the profiles
    # of E (T=50) and B at T=1000. So backward hands its buffers back, and the next
    # training forward of the same shapes takes them again instead of allocating. They
    # are internal only (the user's outputs and states are always fresh arrays) and are
    # let go in eval mode. The memory is what the step needs anyway.

    def _take(self, key, shape: tuple) -> np.ndarray:
        """An uninitialised buffer: the spare one under `key` when its shape fits."""
        buf = self._spare.pop(key, None)
        if buf is None or buf.shape != shape:
            buf = np.empty(shape, self.dtype)
        return buf

    def _give_back(self, key, buf) -> None:
        if buf is not None:
            self._spare[key] = buf

    # -- dropout between layers --------------------------------------------------------------

    def _dropout_mask(self, layer: int, shape: tuple) -> np.ndarray:
        """The mask on an inner layer's output in training: each element of the whole
        (T·N, D·H) output kept with probability 1 - p and scaled by 1/(1 - p), as
        torch's inter-layer dropout (p == 1 gives zeros). One draw of the layer's own
        generator per element, as `Dropout`'s."""
        return self._draw_mask(self._take(("mask", layer), shape), self.dropout)

    def _draw_mask(self, mask: np.ndarray, p: float) -> np.ndarray:
        """Fill `mask` with one draw of the layer's generator per element: kept with
        probability 1 - p and scaled by 1/(1 - p), else 0 (all 0 for p == 1)."""
        self._rng.random(dtype=self.dtype, out=mask)
        keep = mask >= p
        scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
        np.multiply(keep, self.dtype.type(scale), out=mask)
        return mask

    def _variational_masks(self, idx: int, N: int, in_size: int) -> tuple:
        """The variational masks (Gal & Ghahramani 2016) of layer and direction `idx` in a
        training forward: (input mask (N, in_size) or None, recurrent mask (N, P) or
        None), one per sequence for all its steps, shared by all gates, drawn input mask
        first. A stateful `Sequential` continuing its sequences (`_hold_masks`) gets the
        last forward's again, so that one mask covers all chunks of a stream until its
        states are reset."""
        held = self._held_masks.get(idx)
        if self._hold_masks and held is not None and all(
                m is None or m.shape[0] == N for m in held):
            return held
        masks = tuple(None if p == 0 else self._draw_mask(np.empty((N, size), self.dtype), p)
                      for p, size in ((self.input_dropout, in_size),
                                      (self.recurrent_dropout, self._out_size)))
        self._held_masks[idx] = masks
        return masks

    def rng_state(self) -> dict | None:
        """The state of the generator of the dropout masks (numpy's `bit_generator.state`);
        None without dropout, when no mask is drawn."""
        drawn = self.dropout > 0 or self.input_dropout > 0 or self.recurrent_dropout > 0
        return self._rng.bit_generator.state if drawn else None

    def set_rng_state(self, state: dict) -> None:
        """Put the generator of the dropout masks where `rng_state` said it was."""
        self._rng = generator_from_state(state)

    # -- argument checks ------------------------------------------------------------------

    def _seq_layout(self) -> str:
        return "(N, T, I)" if self.batch_first else "(T, N, I)"

    def _check_x(self, x):
        """x as a contiguous time-major (T, N, I) array, and whether it was batched."""
        expected = f"{self._seq_layout()} or (T, I) with I = input_size = {self.input_size}"
        x = as_float_array(x, "x", self.dtype, expected)
        if x.ndim == 2:
            batched = False
            x = x[:, None, :]
        elif x.ndim == 3:
            batched = True
            if self.batch_first:
                x = x.transpose(1, 0, 2)
        else:
            raise ValueError(f"x must have shape {expected}, got {x.ndim} dimensions {x.shape}")
        if x.shape[2] != self.input_size:
            raise ValueError(f"x must have shape {expected}, got {x.shape[2]} features")
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"x must have at least one step and one sequence, got shape {x.shape}")
        check_rows(x.shape[0] * x.shape[1], "x", "steps × sequences")
        return np.ascontiguousarray(x), batched

    def _state_shape(self, N: int, batched: bool, size: int | None = None) -> tuple[tuple, str]:
        """The shape of a state of `size` features (hidden_size by default) and its
        description for messages."""
        DL = self.num_directions * self.num_layers
        size = self.hidden_size if size is None else size
        what = "proj_size" if self.proj_size and size == self.proj_size else "hidden_size"
        if batched:
            return (DL, N, size), f"(D*num_layers, N, {what})"
        return (DL, size), f"(D*num_layers, {what})"

    def _check_states(self, states, name: str, N: int, batched: bool) -> tuple:
        """The state as a tuple of (D·L, N, ·) arrays, one per `_state_names` of their
        `_state_sizes` (zeros when None), contiguous copies: a pair of arrays for (h, c),
        else a single array."""
        DL = self.num_directions * self.num_layers
        sizes = self._state_sizes()
        if states is None:
            return tuple(np.zeros((DL, N, size), self.dtype) for size in sizes)
        if len(self._state_names) == 2:
            specs = tuple(self._state_shape(N, batched, size) for size in sizes)
            arrays = check_state_pair(states, name, specs, self.dtype)
        else:
            shape, expected = self._state_shape(N, batched)
            if isinstance(states, tuple):
                raise TypeError(f"{name} must be one array {expected}, not a tuple: "
                                f"{type(self).__name__} has no cell state")
            arrays = (check_state(states, name, shape, expected, self.dtype),)
        if not batched:
            arrays = tuple(a[:, None, :] for a in arrays)
        return arrays

    def _kernel_biases(self, sfx: str):
        """The kernels' (bias, bias_hn) of one layer and direction: b_ih + b_hh (zeros
        without bias), and None (only the GRU keeps b_hn apart)."""
        G = self._n_gates * self.hidden_size
        if not self.bias:
            return np.zeros(G, self.dtype), None
        return self._params[f"bias_ih{sfx}"] + self._params[f"bias_hh{sfx}"], None

    def _add_bias_grads(self, sfx: str, db: np.ndarray, db_hn) -> None:
        """Add the kernels' bias gradients into `grads`: b_ih and b_hh enter the gates
        as a sum, so both get db."""
        self.grads[f"bias_ih{sfx}"] += db
        self.grads[f"bias_hh{sfx}"] += db

    def _layer_arrays(self, layer: int, direction: int, store: dict):
        """W_ih, W_hh and W_hr (None without a projection) of one layer and direction
        in `store` (the parameters or their gradients), and their names' suffix."""
        sfx = self._suffix(layer, direction)
        return (store[f"weight_ih{sfx}"], store[f"weight_hh{sfx}"],
                store.get(f"weight_hr{sfx}"), sfx)

    def _to_user_layout(self, seq: np.ndarray, batched: bool) -> np.ndarray:
        if not batched:
            return seq[:, 0, :]
        if self.batch_first:
            return np.ascontiguousarray(seq.transpose(1, 0, 2))
        return seq

    def _state_to_user(self, states: tuple, batched: bool):
        """(h, c) as a tuple, a lone h as the array itself; unbatched without the N axis."""
        if not batched:
            states = tuple(s[:, 0, :] for s in states)
        return states if len(states) > 1 else states[0]

    # -- forward and backward -------------------------------------------------------------

    @one_thread_in_training
    def _forward(self, x, hx, lengths, copy_x: bool = True):
        """`forward`: out in the user's layout and the final state as `_state_to_user`.
        `copy_x=False` is for a caller that keeps x unchanged until backward itself (the
        torch bridge: autograd checks the versions of the tensors it saved)."""
        user_x = x
        x, batched = self._check_x(x)
        if self.training and copy_x and np.may_share_memory(x, user_x):
            # backward reads x again: keep our own copy, so that the caller may reuse
            # the buffer in between (a data loader filling it with the next batch).
            x = x.copy()
        T, N, I = x.shape
        lengths = check_lengths(lengths, N, T)
        states0 = self._check_states(hx, "hx", N, batched)
        H, D, G = self.hidden_size, self.num_directions, self._n_gates * self.hidden_size
        P, with_side = self._out_size, self._has_side or self.proj_size > 0
        training = self.training
        n_threads = effective_n_threads(self.n_threads)
        self._cache = None

        layer_input = x.reshape(T * N, I)
        if training and lengths.min() < T:
            # Padded steps never reach the output, but their inputs would meet zero
            # gradients in dW_ih = dGᵀ·X, and 0·inf is nan: clear them.
            layer_input = np.where((np.arange(T)[:, None] < lengths)[..., None], x, 0)
            layer_input = layer_input.reshape(T * N, I)
        finals = tuple(np.empty((D * self.num_layers, N, size), self.dtype)
                       for size in self._state_sizes())
        layers = []
        with single_threaded_blas():
            for layer in range(self.num_layers):
                if training and layer < self.num_layers - 1:
                    out = self._take(("out", layer), (T * N, D * P))  # the next layer's input
                else:
                    out = np.empty((T * N, D * P), self.dtype)    # the user's output
                kept = []
                for direction in range(D):
                    idx = layer * D + direction
                    w_ih, w_hh, w_hr, sfx = self._layer_arrays(layer, direction, self._params)
                    bias, bias_hn = self._kernel_biases(sfx)
                    # Inference needs the gates of one chunk of steps at a time only.
                    if training:
                        gates = self._take(("gates", idx), (T * N, G))
                    else:
                        steps = _recurrent.inference_chunk_steps(T, N, G, layer_input.shape[1])
                        gates = np.empty((steps * N, G), self.dtype)
                    side = norm = None
                    if with_side:
                        side = (self._take(("side", idx), (T * N, H)) if training
                                else np.empty((gates.shape[0], H), self.dtype))
                    if self._norm_width:
                        norm = (self._take(("norm", idx), (T * N, self._norm_width))
                                if training
                                else np.empty((gates.shape[0], self._norm_width), self.dtype))
                    if training:
                        # Every step's state in T + 1 slots; the first one holds the initial.
                        first, last = (T, 0) if direction else (0, T)
                        slots = []
                        for name, s0 in zip(self._state_names, states0):
                            slot = self._take((name, idx), ((T + 1) * N, s0.shape[2]))
                            slot[first * N:(first + 1) * N] = s0[idx]
                            slots.append(slot)
                    else:
                        slots = [s0[idx].copy() for s0 in states0]
                        first = last = 0
                    h, c = slots[0], (slots[1] if len(slots) > 1 else None)
                    masks = (self._variational_masks(idx, N, layer_input.shape[1])
                             if training else (None, None))
                    _recurrent.forward_layer(self._cell, _dropped(layer_input, masks[0], T),
                                             w_ih, w_hh, w_hr, bias, bias_hn, lengths, gates,
                                             side, h, c, out, direction * P, bool(direction),
                                             training, n_threads,
                                             recurrent_mask=masks[1], norm=norm,
                                             **self._kernel_options(sfx, False))
                    for final, slot in zip(finals, slots):
                        final[idx] = slot[last * N:(last + 1) * N]
                    if training:
                        kept.append((gates, side, norm, h, c, masks))
                mask = None
                if training and self.dropout > 0 and layer < self.num_layers - 1:
                    mask = self._dropout_mask(layer, out.shape)
                    out *= mask  # padded steps are zero and stay so
                if training:
                    layers.append((layer_input, kept, mask))
                layer_input = out
        if training:
            self._keep_for_backward({"T": T, "N": N, "batched": batched, "lengths": lengths,
                                     "layers": layers})
        return self._to_user_layout(out.reshape(T, N, D * P), batched), \
            self._state_to_user(finals, batched)

    @one_thread_in_training
    def _backward(self, dout, dstates, dstates_name: str, input_grad: bool):
        """`backward`: dx (or None) and the initial state's gradient as `_state_to_user`."""
        cache = self._cache_for_backward()
        T, N, batched = cache["T"], cache["N"], cache["batched"]
        H, D, G = self.hidden_size, self.num_directions, self._n_gates * self.hidden_size
        P = self._out_size
        n_out, width = D * P, "D*proj_size" if self.proj_size else "D*hidden_size"
        if batched:
            shape = (N, T, n_out) if self.batch_first else (T, N, n_out)
            expected = f"(N, T, {width})" if self.batch_first else f"(T, N, {width})"
        else:
            shape, expected = (T, n_out), f"(T, {width})"
        dout = as_float_array(dout, "dout", self.dtype, expected)
        check_shape(dout, "dout", shape, expected)
        d_finals = self._check_states(dstates, dstates_name, N, batched)
        if not batched:
            dout = dout[:, None, :]
        elif self.batch_first:
            dout = dout.transpose(1, 0, 2)
        d_layer_out = np.ascontiguousarray(dout).reshape(T * N, n_out)

        self._cache = None  # the kernels overwrite the kept gates with their gradients
        n_threads = effective_n_threads(self.n_threads)
        lengths = cache["lengths"]
        d_initials = tuple(np.empty((D * self.num_layers, N, size), self.dtype)
                           for size in self._state_sizes())
        with single_threaded_blas():
            for layer in reversed(range(self.num_layers)):
                layer_input, kept, _ = cache["layers"][layer]
                if layer < self.num_layers - 1:
                    mask = cache["layers"][layer][2]
                    if mask is not None:
                        # The next layer read out·mask: its input gradient goes back
                        # through the same mask.
                        d_layer_out *= mask
                        self._give_back(("mask", layer), mask)
                dx = None
                if layer > 0:
                    # The gradient on an inner layer's output, internal like the output.
                    dx = self._take(("dx", layer), layer_input.shape)
                    dx.fill(0)
                elif input_grad:
                    dx = np.zeros_like(layer_input)
                for direction in range(D):
                    idx = layer * D + direction
                    gates, side, norm, h, c, (in_mask, rec_mask) = kept[direction]
                    w_ih, w_hh, w_hr, sfx = self._layer_arrays(layer, direction, self._params)
                    dw_ih, dw_hh, dw_hr, _ = self._layer_arrays(layer, direction, self.grads)
                    proj_grad = (self._take(("proj_grad", idx), (T * N, P))
                                 if self.proj_size else None)
                    ds = [d[idx].copy() for d in d_finals]
                    dh, dc = ds[0], (ds[1] if len(ds) > 1 else None)
                    db = np.zeros(G, self.dtype) if self.bias else None
                    db_hn = np.zeros(H, self.dtype) if self.bias and self._has_side else None
                    # With an input mask the kernel's dx is the gradient on x ⊙ mask:
                    # it goes to x through the mask.
                    d_input = dx if dx is None or in_mask is None else np.zeros_like(dx)
                    options = self._kernel_options(sfx, True)
                    _recurrent.backward_layer(self._cell, _dropped(layer_input, in_mask, T),
                                              w_ih, w_hh, w_hr, lengths, gates, side,
                                              proj_grad, h, c, d_layer_out, direction * P, dh,
                                              dc, dw_ih, dw_hh, dw_hr, db, db_hn, d_input,
                                              bool(direction), n_threads,
                                              recurrent_mask=rec_mask, norm=norm, **options)
                    self._add_option_grads(sfx, options)
                    if d_input is not dx:
                        dx += _dropped(d_input, in_mask, T)
                    if self.bias:
                        self._add_bias_grads(sfx, db, db_hn)
                    for d_initial, d in zip(d_initials, ds):
                        d_initial[idx] = d
                    # This direction's buffers are spent: keep them for the next step.
                    self._give_back(("gates", idx), gates)
                    self._give_back(("side", idx), side)
                    self._give_back(("norm", idx), norm)
                    self._give_back(("proj_grad", idx), proj_grad)
                    for name, slot in zip(self._state_names, (h, c)):
                        self._give_back((name, idx), slot)
                if layer < self.num_layers - 1:
                    self._give_back(("dx", layer + 1), d_layer_out)
                if layer > 0:
                    self._give_back(("out", layer - 1), layer_input)
                d_layer_out = dx
        if input_grad:
            dx = self._to_user_layout(d_layer_out.reshape(T, N, self.input_size), batched)
        else:
            dx = None
        return dx, self._state_to_user(d_initials, batched)
