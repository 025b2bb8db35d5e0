"""Our kernels inside PyTorch: `LSTM`, `GRU`, `RNN` and their cells as `torch.nn.Module`s.

Each class here is the `torch.nn` class of the same name (a subclass: the same
constructor, arguments, errors, parameters and their initialisation, `repr`,
`state_dict`, hooks and `.to()`), with its `forward` run by lstm_native's kernels and
its backward by our BPTT through a `torch.autograd.Function`. So it trains inside any
torch model with torch's optimizers, and ``torch.nn.LSTM`` -> ``lstm_native.torch.LSTM``
is a one-word change.

How it is wired:

- The parameters stay torch's `nn.Parameter`s. Each call points an lstm_native layer
  (built once per module, `_Native`) at their memory: ``p.detach().numpy()`` shares a CPU
  tensor's storage, so an optimizer's in-place step, `load_state_dict`, `.double()` or
  `.to()` are seen at the next call without copies.
- What a training forward keeps for backward lives in the autograd graph (the
  Function's ctx), never in the module: a module may be called several times before one
  backward (an RNN unrolled by hand, two inputs through one encoder). Our layer's
  `_forward` keeps its activations in the layer; the Function takes them out right after
  and hands them back right before the layer's `_backward`, under the module's lock.
- A `PackedSequence` becomes a zero-padded time-major batch in its sorted order and the
  lengths our kernels take; the output is packed back with the same `batch_sizes`,
  `sorted_indices` and `unsorted_indices`, the final states permuted back as torch does.
- Dropout between layers (training mode) draws its masks from a generator seeded by one
  ``torch.randint`` per call, so ``torch.manual_seed`` makes a run reproducible; the
  masks are not torch's own (torch's LSTM draws them in its own way).

CPU tensors in float32 or float64 only: another device or dtype is an error naming it.
torch is imported here, and this module is never imported by ``lstm_native`` itself.
"""
from __future__ import annotations

import copy
import sys
import threading

import numpy as np
import torch
from torch.nn.utils.rnn import PackedSequence

from . import gru as _gru
from . import lstm as _lstm
from . import rnn as _rnn

__all__ = ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"]

_FLOAT_DTYPES = (torch.float32, torch.float64)


def _check_factory(name: str, device, dtype) -> np.dtype:
    """The constructor's `device` and `dtype` (torch's factory arguments): CPU and
    float32/float64 only. Returns the dtype as numpy's."""
    if device is not None and torch.device(device).type != "cpu":
        raise ValueError(f"{name} runs on the CPU (lstm_native's kernels): device must be "
                         f"None or a CPU device, got {device!r}")
    resolved = torch.get_default_dtype() if dtype is None else dtype
    if resolved not in _FLOAT_DTYPES:
        raise TypeError(f"{name}: dtype must be torch.float32 or torch.float64 (None: "
                        f"torch's default dtype), got {resolved!r}")
    return np.dtype("float64" if resolved == torch.float64 else "float32")


def _check_tensors(module, params: list, inputs: dict) -> None:
    """The parameters and inputs of a call: CPU tensors, the parameters float32 or
    float64 (`inputs`: what to call each in a message -> tensor or None)."""
    name = type(module).__name__
    for what, t in (*(("the parameters", p) for p in params), *inputs.items()):
        if t is not None and t.device.type != "cpu":
            raise RuntimeError(f"{name} runs on the CPU (lstm_native's kernels): {what} is on "
                               f"{t.device}; move the module and its inputs with .to('cpu')")
    dtype = params[0].dtype
    if dtype not in _FLOAT_DTYPES or any(p.dtype != dtype for p in params):
        raise TypeError(f"{name} computes in float32 or float64: its parameters are "
                        f"{sorted({str(p.dtype) for p in params})}; convert it with "
                        f".float() or .double()")


def _key(tensors) -> tuple:
    """What tells `_Native.check` and `_Native.bind` that the parameters are those of
    the last call: each one's memory, shape, dtype and device."""
    return tuple((t.data_ptr(), t.shape, t.dtype, t.is_cpu) for t in tensors)


class _Native:
    """The lstm_native layer (or cell) that computes for one torch module, the names of
    its parameters (torch's, in torch's order) and the lock that makes each call's use
    of the layer one at a time (its parameters, dropout and gradients are set per call).
    """

    def __init__(self, layer, n_states: int):
        self.layer = layer
        self.names = tuple(layer._params)
        self.n_states = n_states  # 2 for the LSTM's (h, c), 1 for the others' h
        self.lock = threading.Lock()
        # The module's tensors are bound at each call (`bind`); these arrays are spent.
        layer._params, layer.grads = {}, {}
        self.bound = None  # what the layer's parameters are views of
        self.checked = None  # the parameters that passed `_check_tensors` last (`check`)
        self.spare_grads = {}  # the gradients the last backward gave (`fresh_grads`)

    def __getstate__(self) -> dict:
        # A lock is no state (copies and pickles get their own). Nor are the layer's
        # arrays: views of the module's tensors (a copy binds its own module's) and the
        # buffers a training step reuses.
        layer = copy.copy(self.layer)
        layer._params, layer.grads = {}, {}
        if hasattr(layer, "_spare"):
            layer._spare, layer._held_masks = {}, {}
        return {"layer": layer, "names": self.names, "n_states": self.n_states,
                "bound": None, "checked": None, "spare_grads": {}}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.lock = threading.Lock()

    def params(self, module) -> list:
        # From the module's dict of parameters: nn.Module's __getattr__ costs about a
        # microsecond a name. A name not there (a parametrization's property) is read
        # as an attribute.
        found = module._parameters
        return [p if (p := found.get(name)) is not None else getattr(module, name)
                for name in self.names]

    def check(self, module, params: list, x, states) -> tuple:
        """`_check_tensors` of a call: the parameters, the input x and the states (a
        tuple, or None). Skipped while the parameters' memory, shape, dtype and device
        are those that passed last and the inputs are on the CPU (the checks cost as
        much as the rest of our Python around a small layer's kernels). Returns the
        parameters' `_key`, for `bind` in the same call."""
        key = _key(params)
        if key != self.checked or not x.is_cpu or \
                (states is not None and not all(s.is_cpu for s in states)):
            _check_tensors(module, params, {"input": x, **{
                f"hx[{i}]": s for i, s in enumerate(states or ())}})
            self.checked = key
        return key

    def bind(self, tensors, key: tuple | None = None) -> object:
        """The layer, computing with the memory of `tensors` (the parameters in `names`'
        order): numpy views of CPU tensors (a copy of a non-contiguous one). Called
        under `lock`. The views are made again only when a tensor's memory or shape
        changed (`.double()`, `.to()`, a new `.data`): in-place updates show through
        them, and making them costs more than checking. `key`: the tensors' `_key` when
        the caller has just computed it."""
        key = _key(tensors) if key is None else key
        layer = self.layer
        if key == self.bound:
            return layer
        arrays = {}
        for name, t in zip(self.names, tensors):
            a = t.detach().numpy()
            arrays[name] = a if a.flags.c_contiguous else np.ascontiguousarray(a)
        dtype = arrays[self.names[0]].dtype
        if dtype != layer.dtype:
            # After .double() or .to(): the buffers the layer reuses are of the old dtype.
            layer.dtype = dtype
            layer._spare = {}
        layer._params = arrays
        # A copy would not see in-place updates: bind again at every call then.
        views = all(t.is_contiguous() for t in tensors)
        self.bound = key if views else None
        return layer

    def fresh_grads(self) -> dict:
        """Zero gradients for the layer's backward to add into, each backward's own.

        New arrays would cost a page fault per 4 KiB page on the backward's first touch
        (up to 5% of a step with large weights). So the arrays the last backward gave
        autograd are taken again when no tensor holds them any more (autograd added them
        into `.grad`, or `.grad` was set to None since): a tensor made by
        `torch.from_numpy` holds a reference to its array, so the array's reference
        count tells. Called under `lock`.
        """
        grads = {}
        for name, a in self.layer._params.items():
            g = self.spare_grads.get(name)
            # References: the dict's and the argument's; a third is a tensor's.
            if g is None or g.shape != a.shape or g.dtype != a.dtype or \
                    sys.getrefcount(g) > 3:
                grads[name] = np.zeros(a.shape, a.dtype)
            else:
                g.fill(0)
                grads[name] = g
        self.layer.grads = grads
        self.spare_grads = grads
        return grads


def _needs_backward(x, tensors) -> bool:
    """Whether a call's backward may come: autograd on and a tensor of the call needing a
    gradient. Without it (no_grad, inference_mode) our layer runs its inference path and
    keeps nothing (a Function's `needs_input_grad` says only which inputs require grad,
    under no_grad too)."""
    return torch.is_grad_enabled() and (x.requires_grad or any(
        t is not None and t.requires_grad for t in tensors))


def _numpy(t):
    return None if t is None else t.detach().numpy()


def _tensor(a):
    return None if a is None else torch.from_numpy(a)


def _layer_forward(native, settings: tuple, x, states: tuple, params, keep: bool,
                   key: tuple | None = None):
    """Our layer over x (T, N, I) from `states` (a tuple, empty for zeros) with the
    call's `settings` (lengths, dropout, seed): out, the final states as a tuple, and
    what backward needs (None unless `keep`). Each call sets the layer's parameters,
    mode and dropout: another call may have set them since. `key`: as `_Native.bind`'s."""
    lengths, dropout, seed = settings
    with native.lock:
        layer = native.bind(params, key)
        layer.dropout = dropout
        # The layer keeps activations and draws dropout masks in training mode only.
        layer.training = keep or seed is not None
        if seed is not None:
            layer._rng = np.random.default_rng(seed)
        hx = None
        if states:
            hx = tuple(s.detach().numpy() for s in states)
            hx = hx if native.n_states == 2 else hx[0]
        # No private copy of x for backward: x is saved for backward in the autograd
        # graph, which refuses to back-propagate once it was changed in place.
        out, finals = layer._forward(x.detach().numpy(), hx, lengths, copy_x=False)
        cache, layer._cache = layer._cache, None
    return out, (finals if native.n_states == 2 else (finals,)), (cache if keep else None)


def _state_grads(layer, d_finals: tuple, N: int):
    """The gradients on the final states as our layer's backward takes them: None when
    none flows in (autograd does not materialise them), else an array per state (zeros
    for one without a gradient: the LSTM's h_n read and c_n not)."""
    if all(d is None for d in d_finals):
        return None
    DL = layer.num_directions * layer.num_layers
    arrays = tuple(np.zeros((DL, N, size), layer.dtype) if d is None else d.detach().numpy()
                   for d, size in zip(d_finals, layer._state_sizes()))
    return arrays if len(arrays) == 2 else arrays[0]


class _RecurrentFunction(torch.autograd.Function):
    """Our layer's forward and BPTT as one autograd node.

    Inputs: the call's native layer, whether to keep the activations
    (`_needs_backward`), its parameters' `_key` and its settings (lengths, dropout,
    seed) as one tuple; x (T, N, I) time-major, the initial states when given, the
    parameters. Outputs: out (T, N, D·P) and the final states.

    Its Python runs between kernels that have just filled the caches, where every call
    costs many times its usual (on a small layer, the bridge's share of a step): so the
    node takes and gives no more than it needs. The settings travel as one argument,
    absent states as none, and gradients autograd has not got (an output not read) are
    not made into zeros for it (`set_materialize_grads`).
    """

    @staticmethod
    def forward(ctx, call, x, *tensors):
        native, keep, key, settings = call
        n = len(tensors) - len(native.names)  # the initial states given: 0 or all
        out, finals, cache = _layer_forward(native, settings, x, tensors[:n], tensors[n:],
                                            keep, key)
        ctx.set_materialize_grads(False)
        ctx.call, ctx.cache = call, cache
        # torch checks that none of them is changed in place before backward.
        ctx.save_for_backward(x, *tensors)
        return (torch.from_numpy(out), *(torch.from_numpy(f) for f in finals))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out, *d_finals):
        native, _, _, settings = ctx.call
        needs = ctx.needs_input_grad
        x, *tensors = ctx.saved_tensors
        n = len(tensors) - len(native.names)
        states, params = tensors[:n], tensors[n:]
        cache, ctx.cache = ctx.cache, None
        if cache is None:
            # A second backward through this call (retain_graph=True, gradcheck): the
            # first one spent the activations (the kernels overwrite them with their
            # gradients). The same call again gives them back, dropout masks included.
            cache = _layer_forward(native, settings, x, states, params, True)[2]
        with native.lock:
            layer = native.bind(params)
            layer.training = True
            grads = native.fresh_grads()
            layer._keep_for_backward(cache)
            T, N = x.shape[:2]
            dout = (np.zeros((T, N, layer.num_directions * layer._out_size), layer.dtype)
                    if d_out is None else d_out.detach().numpy())
            dx, d_initial = layer._backward(dout, _state_grads(layer, d_finals, N), "dhx",
                                            needs[1])
            layer.grads = {}
        d_initial = d_initial if native.n_states == 2 else (d_initial,)
        d_states = tuple(torch.from_numpy(d) if need else None
                         for d, need in zip(d_initial, needs[2:2 + n]))
        d_params = tuple(torch.from_numpy(grads[name]) if need else None
                         for name, need in zip(native.names, needs[2 + n:]))
        return (None, _tensor(dx), *d_states, *d_params)


def _padded(data: torch.Tensor, batch_sizes: torch.Tensor):
    """A PackedSequence's data as a zero-padded time-major (T, N, I) batch in its sorted
    order, the lengths (N,) our kernels take, and the (T, N) mask of its valid steps (the
    packed order is the mask's row-major order)."""
    sizes = batch_sizes.numpy()
    T, N = len(sizes), int(sizes[0])
    valid = np.arange(N) < sizes[:, None]
    mask = torch.from_numpy(valid)
    x = data.new_zeros((T, N, data.shape[-1])).index_put((mask,), data)
    return x, valid.sum(0), mask


class _RecurrentBridge:
    """The forward that `LSTM`, `GRU` and `RNN` share: torch's `forward` (checks, layouts,
    PackedSequence, hx), with `_RecurrentFunction` in place of torch's kernels."""

    _native: _Native

    def _build_native(self, native_cls, dtype: np.dtype, n_threads, **options) -> None:
        layer = native_cls(self.input_size, self.hidden_size, self.num_layers, bias=self.bias,
                           bidirectional=self.bidirectional, dtype=dtype,
                           n_threads=n_threads, **options)
        self._native = _Native(layer, len(layer._state_names))

    def _hx_form(self, states: tuple):
        """States as torch passes them: (h, c) for the LSTM, h for the others."""
        return states if len(states) == 2 else states[0]

    def forward(self, input, hx=None):
        """Run over whole sequences, as the `torch.nn` class's `forward`.

        Parameters
        ----------
        input : torch.Tensor or PackedSequence
            (T, N, I), (N, T, I) with `batch_first`, unbatched (T, I), or packed.
        hx : torch.Tensor, tuple of two for the LSTM, or None
            The initial states, as torch's (None: zeros).

        Returns
        -------
        output, h_n (or (h_n, c_n) for the LSTM)
            As torch's, a PackedSequence for a packed input.
        """
        name = type(self).__name__
        S = self._native.n_states
        params = self._native.params(self)
        packed = isinstance(input, PackedSequence)
        data = input.data if packed else input
        states = None if hx is None else (tuple(hx) if S == 2 else (hx,))
        key = self._native.check(self, params, data, states)
        if packed:
            data, batch_sizes, sorted_indices, unsorted_indices = input
            if states is not None:
                states = tuple(self.permute_hidden(self._hx_form(states), sorted_indices)) \
                    if S == 2 else (self.permute_hidden(states[0], sorted_indices),)
            x, lengths, mask = _padded(data, batch_sizes)
            check_input, batched = data, True
        else:
            if input.dim() not in (2, 3):
                raise ValueError(f"{name}: Expected input to be 2D or 3D, got "
                                 f"{input.dim()}D instead")
            batched, batch_dim = input.dim() == 3, (0 if self.batch_first else 1)
            want = 3 if batched else 2
            if states is not None and any(s.dim() != want for s in states):
                dims = ", ".join(f"{s.dim()}-D" for s in states)
                raise RuntimeError(f"For {'batched 3-D' if batched else 'unbatched 2-D'} "
                                   f"input, hx should also be {want}-D but got ({dims}) "
                                   f"tensor(s)")
            if not batched:
                input = input.unsqueeze(batch_dim)
                if states is not None:
                    states = tuple(s.unsqueeze(1) for s in states)
            check_input, batch_sizes, lengths = input, None, None
            x = input.transpose(0, 1) if self.batch_first else input
        if states is None:
            self.check_input(check_input, batch_sizes)
        else:
            self.check_forward_args(check_input, self._hx_form(states), batch_sizes)
        dropping = self.training and self.dropout > 0 and self.num_layers > 1
        seed = int(torch.randint(0, 2**62, ())) if dropping else None
        tensors = (*(states or ()), *params)
        call = (self._native, _needs_backward(x, tensors), key,
                (lengths, self.dropout if dropping else 0.0, seed))
        out, *finals = _RecurrentFunction.apply(call, x, *tensors)
        if packed:
            output = PackedSequence(out[mask], batch_sizes, sorted_indices, unsorted_indices)
            return output, self.permute_hidden(self._hx_form(tuple(finals)), unsorted_indices)
        output = out.transpose(0, 1) if self.batch_first else out
        if not batched:
            output = output.squeeze(batch_dim)
            finals = [f.squeeze(1) for f in finals]
        return output, self._hx_form(tuple(finals))


class LSTM(_RecurrentBridge, torch.nn.LSTM):
    """`torch.nn.LSTM` with lstm_native's kernels: forward and BPTT on the CPU.

    Parameters
    ----------
    input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size
        As `torch.nn.LSTM`'s, in its order.
    device : None or a CPU device
        Another device (CUDA, meta) is a ValueError.
    dtype : torch.float32, torch.float64 or None
        None is torch's default dtype; any other is a TypeError.
    n_threads : int or None, keyword-only
        OpenMP threads of our kernels, in 1..1024; None as in `lstm_native.LSTM` (the
        physical cores the process may use, or OMP_NUM_THREADS).

    Notes
    -----
    Parameters, their names, order and initialisation are torch's (the same draws of
    torch's generator), so `state_dict()` moves both ways between this and
    `torch.nn.LSTM`. Dropout's masks (training mode, `num_layers` > 1) are drawn from a
    generator seeded by torch's (``torch.manual_seed`` makes them reproducible) but are
    not torch's masks. Each call's activations serve one backward: a second backward
    through the same call (``retain_graph=True``) recomputes the call's forward first.

    Examples
    --------
    >>> import torch
    >>> import lstm_native.torch as lnt
    >>> _ = torch.manual_seed(0)
    >>> lstm = lnt.LSTM(3, 8, num_layers=2, batch_first=True)
    >>> out, (h_n, c_n) = lstm(torch.randn(4, 10, 3))
    >>> out.sum().backward()
    >>> lstm.weight_ih_l0.grad.shape
    torch.Size([32, 3])
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None,
                 *, n_threads: int | None = None):
        np_dtype = _check_factory(type(self).__name__, device, dtype)
        super().__init__(input_size, hidden_size, num_layers, bias=bias,
                         batch_first=batch_first, dropout=dropout, bidirectional=bidirectional,
                         proj_size=proj_size, device=device, dtype=dtype)
        self._build_native(_lstm.LSTM, np_dtype, n_threads, proj_size=proj_size)


class GRU(_RecurrentBridge, torch.nn.GRU):
    """`torch.nn.GRU` with lstm_native's kernels (torch's GRU: the reset gate applied
    after the recurrent product, our ``reset_after=True``).

    Parameters
    ----------
    input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        As `torch.nn.GRU`'s, in its order.
    device, dtype, n_threads
        As `LSTM`'s.

    Notes
    -----
    As `LSTM`'s.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None, *,
                 n_threads: int | None = None):
        np_dtype = _check_factory(type(self).__name__, device, dtype)
        super().__init__(input_size, hidden_size, num_layers, bias=bias,
                         batch_first=batch_first, dropout=dropout, bidirectional=bidirectional,
                         device=device, dtype=dtype)
        self._build_native(_gru.GRU, np_dtype, n_threads)


class RNN(_RecurrentBridge, torch.nn.RNN):
    """`torch.nn.RNN` (tanh or ReLU) with lstm_native's kernels.

    Parameters
    ----------
    input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, dropout, bidirectional
        As `torch.nn.RNN`'s, in its order.
    device, dtype, n_threads
        As `LSTM`'s.

    Notes
    -----
    As `LSTM`'s.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None,
                 *, n_threads: int | None = None):
        np_dtype = _check_factory(type(self).__name__, device, dtype)
        super().__init__(input_size, hidden_size, num_layers, nonlinearity=nonlinearity,
                         bias=bias, batch_first=batch_first, dropout=dropout,
                         bidirectional=bidirectional, device=device, dtype=dtype)
        self._build_native(_rnn.RNN, np_dtype, n_threads, nonlinearity=nonlinearity)


def _cell_forward(native, x, states, params, keep: bool):
    """Our cell's step: the new states as a tuple, and what backward needs (None unless
    `keep`)."""
    S = native.n_states
    with native.lock:
        cell = native.bind(params)
        cell.training = keep
        hx = None if states[0] is None else tuple(_numpy(s) for s in states)
        new = cell.forward(_numpy(x), hx if S == 2 or hx is None else hx[0])
        cache, cell._cache = cell._cache, None
    return (new if S == 2 else (new,)), (cache if keep else None)


class _CellFunction(torch.autograd.Function):
    """Our cell's step and its backward as one autograd node: inputs whether to keep
    what backward needs (`_needs_backward`), x (N, I), the previous states (or None), the
    parameters; outputs the new states."""

    @staticmethod
    def forward(ctx, native, keep, x, *tensors):
        S = native.n_states
        new, cache = _cell_forward(native, x, tensors[:S], tensors[S:], keep)
        ctx.native, ctx.cache = native, cache
        ctx.save_for_backward(x, *tensors)
        return tuple(torch.from_numpy(s) for s in new)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *d_new):
        native, needs = ctx.native, ctx.needs_input_grad
        S = native.n_states
        x, *tensors = ctx.saved_tensors
        states, params = tensors[:S], tensors[S:]
        cache, ctx.cache = ctx.cache, None
        if cache is None:  # a second backward: as the layers'
            cache = _cell_forward(native, x, states, params, True)[1]
        with native.lock:
            cell = native.bind(params)
            cell.training = True
            grads = native.fresh_grads()
            cell._keep_for_backward(cache)
            dx, d_prev = cell.backward(*(_numpy(d) for d in d_new))
            cell.grads = {}
        d_prev = d_prev if S == 2 else (d_prev,)
        d_states = tuple(_tensor(d) if need else None
                         for d, need in zip(d_prev, needs[3:3 + S]))
        d_params = tuple(torch.from_numpy(grads[name]) if need else None
                         for name, need in zip(native.names, needs[3 + S:]))
        return (None, None, _tensor(dx) if needs[2] else None, *d_states, *d_params)


class _CellBridge:
    """The forward that `LSTMCell`, `GRUCell` and `RNNCell` share: torch's checks and
    unbatched inputs, with `_CellFunction` in place of torch's kernels."""

    _native: _Native

    def _build_native(self, native_cls, dtype: np.dtype, n_threads, **options) -> None:
        cell = native_cls(self.input_size, self.hidden_size, bias=self.bias, dtype=dtype,
                          n_threads=n_threads, **options)
        self._native = _Native(cell, 2 if isinstance(cell, _lstm.LSTMCell) else 1)

    def forward(self, input, hx=None):
        """One step, as the `torch.nn` cell's `forward`.

        Parameters
        ----------
        input : torch.Tensor, (N, I) or unbatched (I,)
        hx : torch.Tensor, a tuple (h, c) for `LSTMCell`, or None
            The previous states, (N, H) or (H,) (None: zeros).

        Returns
        -------
        h, or (h, c) for `LSTMCell`
        """
        name = type(self).__name__
        S = self._native.n_states
        params = self._native.params(self)
        states = None if hx is None else (tuple(hx) if S == 2 else (hx,))
        self._native.check(self, params, input, states)
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D "
                             f"instead")
        for i, s in enumerate(states or ()):
            if s.dim() not in (1, 2):
                raise ValueError(f"{name}: Expected hx[{i}] to be 1D or 2D, got {s.dim()}D "
                                 f"instead")
        if input.dtype != params[0].dtype:
            raise ValueError(f"{name} input dtype ({input.dtype}) does not match weight "
                             f"dtype ({params[0].dtype})")
        batched = input.dim() == 2
        if not batched:
            input = input.unsqueeze(0)
            states = None if states is None else tuple(s.unsqueeze(0) for s in states)
        tensors = (*(states or (None,) * S), *params)
        new = _CellFunction.apply(self._native, _needs_backward(input, tensors), input,
                                  *tensors)
        if not batched:
            new = tuple(s.squeeze(0) for s in new)
        return new if S == 2 else new[0]


class LSTMCell(_CellBridge, torch.nn.LSTMCell):
    """`torch.nn.LSTMCell` with lstm_native's kernels.

    Parameters
    ----------
    input_size, hidden_size, bias
        As `torch.nn.LSTMCell`'s.
    device, dtype, n_threads
        As `LSTM`'s.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, *, n_threads: int | None = None):
        np_dtype = _check_factory(type(self).__name__, device, dtype)
        super().__init__(input_size, hidden_size, bias=bias, device=device, dtype=dtype)
        self._build_native(_lstm.LSTMCell, np_dtype, n_threads)


class GRUCell(_CellBridge, torch.nn.GRUCell):
    """`torch.nn.GRUCell` with lstm_native's kernels.

    Parameters
    ----------
    input_size, hidden_size, bias
        As `torch.nn.GRUCell`'s.
    device, dtype, n_threads
        As `LSTM`'s.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, *, n_threads: int | None = None):
        np_dtype = _check_factory(type(self).__name__, device, dtype)
        super().__init__(input_size, hidden_size, bias=bias, device=device, dtype=dtype)
        self._build_native(_gru.GRUCell, np_dtype, n_threads)


class RNNCell(_CellBridge, torch.nn.RNNCell):
    """`torch.nn.RNNCell` (tanh or ReLU) with lstm_native's kernels.

    Parameters
    ----------
    input_size, hidden_size, bias, nonlinearity
        As `torch.nn.RNNCell`'s, in its order.
    device, dtype, n_threads
        As `LSTM`'s.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None, *,
                 n_threads: int | None = None):
        np_dtype = _check_factory(type(self).__name__, device, dtype)
        super().__init__(input_size, hidden_size, bias=bias, nonlinearity=nonlinearity,
                         device=device, dtype=dtype)
        self._build_native(_rnn.RNNCell, np_dtype, n_threads, nonlinearity=nonlinearity)
