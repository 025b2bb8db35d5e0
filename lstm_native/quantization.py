"""Reduced-precision inference: `quantize(model, "int8" | "bfloat16")` (`lstm_native.quantize`).

A quantized model is a copy of a trained one that runs its products in int8 or
bfloat16 and everything else in float32 (the math: `lstm_native.reference.quantized`;
the kernels: ``src/quant_gemm.c`` on the CPU's VNNI and AVX512_BF16 dot products, on
AVX2's 16-bit multiply-adds and FMA where those are missing, and in portable C without
AVX2, all giving the same bits):

- int8: each weight row in signed 8 bits with its own symmetric scale; x_t and h_{t-1}
  quantized per row of each step as they come (unsigned 8 bits with a zero point); the
  sums exact in int32.
- bfloat16: weights and activations rounded to bfloat16 (nearest even), the products
  summed in float32.

The speed-up needs the dot-product instructions: with VNNI and AVX512_BF16 int8 runs
2.4-3.8x and bfloat16 1.7-1.9x faster than the float32 model on the standard
configurations (2 threads, AVX-512 Zen 4); on an AVX2 CPU without them (Zen 3), where
each 8-bit dot product takes two `vpmaddwd` and bfloat16 as many FMAs as float32, int8
runs 1.2-1.7x faster than float32 and bfloat16 at about float32's speed (A-E, 2 threads,
kernels at avx2), with weights 4x (int8) or 2x (bfloat16) smaller (docs/performance.md). `kernels()` says which kernels
run.

It is for inference only: `train()` and `backward` raise. Its inputs and outputs are
float32 whatever the dtype of the model it came from. The recurrent layers (`LSTM`,
`GRU`, `RNN`, any layers and directions, lengths, initial states), `Linear`, and
`Sequential`s of them with `LastStep` and `Dropout` have quantized forms; an LSTM's
projection, peepholes, clip, coupled gates or layer norm have no quantized kernel and
are refused.
"""
from __future__ import annotations

import copy

import numpy as np

from . import _quantized
from ._parallel import effective_n_threads
from ._validation import check_lengths, from_torch
from .gru import GRU
from .layers import Dropout, Ensemble, LastStep, Linear, Sequential
from .lstm import LSTM
from .module import Module
from .rnn import RNN

__all__ = ["quantize", "PRECISIONS", "QuantizedLSTM", "QuantizedGRU", "QuantizedRNN",
           "QuantizedLinear", "kernels"]

#: The precisions `quantize` offers.
PRECISIONS = ("int8", "bfloat16")

_INFERENCE_ONLY = "is a quantized model, for inference only: train the float model and " \
                  "quantize it again"


def kernels() -> dict:
    """The kernels quantized models run on this CPU (``LSTM_NATIVE_ISA`` may ask for
    less): ``{"level", "float", "int8", "bfloat16"}``, e.g. int8 ``"avx512-vnni"`` or
    ``"avx2-vnni"``, bfloat16 ``"avx512-bf16"``, either ``"avx2"`` (AVX2 without those
    instructions) or ``"portable"`` (no AVX2)."""
    return _quantized.kernels()


def check_precision(precision) -> str:
    """`precision` if it is one of PRECISIONS, else a ValueError naming them."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, "
                         f"got {precision!r}")
    return precision


def _quantize_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """W's rows in int8 with their symmetric scales (lstm_native.reference.quantized's
    quantize_weight_int8)."""
    peak = np.abs(w).max(axis=1)
    scale = np.where(peak > 0, peak / np.float32(127), np.float32(1)).astype(np.float32)
    return np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8), scale


class _Weight:
    """One weight matrix (n outputs × k inputs) in a precision: what is stored (the int8
    values and scales, or the bfloat16 bit patterns) and its packed form for the
    kernels."""

    def __init__(self, values: np.ndarray, scale: np.ndarray | None, precision: str):
        self.precision, self.values, self.scale = precision, values, scale
        if precision == "int8":
            packed, sums = _quantized.pack_int8(values)
            self.packed = ("int8", packed, sums, scale)
        else:
            self.packed = ("bfloat16", _quantized.pack_bfloat16(values))

    @classmethod
    def quantized(cls, w: np.ndarray, precision: str) -> _Weight:
        """W (float) in `precision`."""
        w = np.ascontiguousarray(w, np.float32)
        if not np.all(np.isfinite(w)):
            raise ValueError("the weights must be finite to be quantized")
        if precision == "int8":
            if w.shape[1] > _quantized.MAX_K:
                raise ValueError(f"int8 products take at most {_quantized.MAX_K} inputs "
                                 f"(their int32 sums would overflow), got {w.shape[1]}")
            return cls(*_quantize_int8(w), precision)
        return cls(_quantized.to_bfloat16(w.ravel()).reshape(w.shape), None, precision)

    def stored(self, name: str) -> dict:
        """The arrays a state_dict holds for it, under `name` (and `name`_scale)."""
        out = {name: self.values}
        if self.scale is not None:
            out[f"{name}_scale"] = self.scale
        return out


def _checked_stored(state_dict, expected: dict, where: str) -> dict:
    """`state_dict`'s arrays (its names are `expected`'s: the caller checked) as the
    quantized ones of `expected` ({name: array}) are: dtype and shape, the scales finite
    and > 0, the biases finite, no bfloat16 pattern that is not a finite normal number
    or zero (quantize writes none, and the kernels would disagree on subnormals).
    Nothing is written; a copy of each."""
    checked = {}
    for name, like in expected.items():
        label = f"state_dict[{where + name!r}]"
        value = np.asarray(from_torch(state_dict[name]))
        if value.dtype != like.dtype or value.shape != like.shape:
            raise TypeError(f"{label} must be {like.dtype} of shape {like.shape} (a "
                            f"quantized model's), got {value.dtype} of shape {value.shape}")
        if value.dtype == np.float32 and not np.all(np.isfinite(value)):
            raise ValueError(f"{label} holds a value that is not finite")
        if name.endswith("_scale") and not np.all(value > 0):
            raise ValueError(f"{label} holds a scale that is not > 0")
        if value.dtype == np.uint16:
            exponent = value & 0x7F80
            if np.any(exponent == 0x7F80) or np.any((exponent == 0) & (value & 0x7F != 0)):
                raise ValueError(f"{label} holds a bfloat16 pattern that is not a finite "
                                 "normal number or zero")
        checked[name] = np.array(value, order="C")
    return checked


def _check_input(x: np.ndarray, precision: str, name: str = "x") -> None:
    """int8 quantizes rows by their range: a nan or inf would make every value of its
    row meaningless, so it is refused rather than passed on."""
    if precision == "int8" and not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds a nan or inf: int8 quantization needs finite values")


class _Quantized(Module):
    """What every quantized block shares: float32 in and out, inference only."""

    def __init__(self, precision: str):
        super().__init__(np.dtype(np.float32))
        self.precision = precision
        self.training = False

    def train(self, mode: bool = True):
        if mode:
            raise RuntimeError(f"{type(self).__name__} {_INFERENCE_ONLY}")
        return self

    def backward(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__} {_INFERENCE_ONLY}")


class QuantizedLinear(_Quantized):
    """A `Linear` layer with its product in int8 or bfloat16 (see the module docstring);
    built by `quantize`."""

    def __init__(self, linear: Linear, precision: str):
        super().__init__(check_precision(precision))
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.n_threads = getattr(linear, "n_threads", None)
        self._float_config = {**linear.get_config(), "dtype": "float32"}
        params = linear.parameters()
        self._weight = _Weight.quantized(params["weight"], precision)
        self._params.update(self._weight.stored("weight"))
        self._bias = None
        if "bias" in params:
            self._bias = np.asarray(params["bias"], np.float32).copy()
            self._params["bias"] = self._bias

    def get_config(self) -> dict:
        """The float layer's description and the precision, JSON-ready."""
        return {"float": {"type": "Linear", "config": self._float_config},
                "precision": self.precision}

    @classmethod
    def from_config(cls, config: dict, build_module) -> QuantizedLinear:
        """Built from `get_config()`'s dict with fresh weights (load_state_dict sets them)."""
        return cls(build_module(config["float"]), config["precision"])

    def _checked_state(self, state_dict, where: str) -> dict:
        # load_state_dict takes the stored arrays of `state_dict()`: int8 with float32
        # scales, or uint16 bfloat16 patterns, and the float32 bias.
        return _checked_stored(state_dict, self._params, where)

    def _write_state(self, checked: dict) -> None:
        super()._write_state(checked)
        self._weight = _Weight(self._params["weight"], self._params.get("weight_scale"),
                               self.precision)

    def __repr__(self) -> str:
        return (f"QuantizedLinear(in_features={self.in_features}, "
                f"out_features={self.out_features}, bias={self._bias is not None}, "
                f"precision={self.precision!r})")

    def forward(self, x):
        """y = x ⊗ Wᵀ + b over the last axis of x (float32 out)."""
        x = np.asarray(x, np.float32)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have {self.in_features} features in its last axis, "
                             f"got shape {x.shape}")
        _check_input(x, self.precision)
        rows = np.ascontiguousarray(x.reshape(-1, self.in_features))
        out = np.empty((rows.shape[0], self.out_features), np.float32)
        _quantized.linear(self.precision, rows, self._weight.packed, out,
                          effective_n_threads(self.n_threads))
        if self._bias is not None:
            out += self._bias
        return out.reshape(*x.shape[:-1], self.out_features)


class QuantizedRecurrent(_Quantized):
    """A recurrent layer (`LSTM`, `GRU`, `RNN`) with its products in int8 or bfloat16
    (see the module docstring); built by `quantize`. `forward` takes and returns what the
    float layer's does, in float32."""

    recurrent = True
    _float_class: type = None

    def __init__(self, layer, precision: str):
        super().__init__(check_precision(precision))
        for option in ("proj_size", "peepholes", "clip", "input_forget", "layer_norm"):
            if getattr(layer, option, None):
                raise ValueError(f"{type(layer).__name__}({option}={getattr(layer, option)!r}) "
                                 f"has no quantized kernel: quantize works on the plain "
                                 f"LSTM, GRU and RNN")
        # A float32 twin without weights does what the float layer does around its
        # kernels: the checks of x, hx and lengths, the layouts, the kernels' biases.
        shell = type(layer)(**{**layer.get_config(), "dtype": "float32"})
        for name, value in layer.parameters().items():
            shell._params[name][...] = value
        shell.eval()
        self._shell = shell
        self.input_size, self.hidden_size = shell.input_size, shell.hidden_size
        self.num_layers, self.bidirectional = shell.num_layers, shell.bidirectional
        self.batch_first, self.n_threads = shell.batch_first, shell.n_threads
        self._gru = isinstance(shell, GRU)
        for name, value in shell._params.items():
            if name.startswith("weight"):
                self._params.update(_Weight.quantized(value, precision).stored(name))
            else:
                self._params[name] = value
        # The twin keeps its biases (for _kernel_biases) and drops its float weights.
        shell._params = {k: v for k, v in shell._params.items() if k.startswith("bias")}
        shell.grads = {}
        self._pack()

    def _pack(self) -> None:
        """The kernels' packed weights and biases of every layer and direction, from the
        stored arrays (the GRU's W_hh in two parts: its r and z rows, its n rows)."""
        shell, H, p = self._shell, self.hidden_size, self._params
        rows = {"summed": slice(0, 2 * H if self._gru else None), "n": slice(2 * H, None)}
        self._packed = []
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                sfx = shell._suffix(layer, direction)

                def weight(name, part=slice(None)):
                    scale = p.get(f"{name}_scale")
                    return _Weight(np.ascontiguousarray(p[name][part]),
                                   None if scale is None else scale[part],
                                   self.precision).packed
                self._packed.append((
                    weight(f"weight_ih{sfx}"), weight(f"weight_hh{sfx}", rows["summed"]),
                    weight(f"weight_hh{sfx}", rows["n"]) if self._gru else None,
                    *shell._kernel_biases(sfx)))

    def get_config(self) -> dict:
        """The float layer's description and the precision, JSON-ready."""
        return {"float": {"type": self._float_class.__name__,
                          "config": self._shell.get_config()},
                "precision": self.precision}

    @classmethod
    def from_config(cls, config: dict, build_module) -> QuantizedRecurrent:
        """Built from `get_config()`'s dict with fresh weights (load_state_dict sets them)."""
        layer = build_module(config["float"])
        if type(layer) is not cls._float_class:
            raise ValueError(f"{cls.__name__} quantizes a {cls._float_class.__name__}, not "
                             f"a {type(layer).__name__}")
        return cls(layer, config["precision"])

    def _checked_state(self, state_dict, where: str) -> dict:
        # load_state_dict takes the stored arrays of `state_dict()`: int8 with float32
        # scales, or uint16 bfloat16 patterns, and the float32 biases.
        return _checked_stored(state_dict, self._params, where)

    def _write_state(self, checked: dict) -> None:
        super()._write_state(checked)   # in place: the twin's biases are the same arrays
        self._pack()

    @property
    def num_directions(self) -> int:
        return self._shell.num_directions

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._shell!r}, precision={self.precision!r})"

    def forward(self, x, hx=None, lengths=None):
        """Run the quantized layer over whole sequences: the arguments and results of
        the float layer's `forward` (see `LSTM.forward`), in float32."""
        shell = self._shell
        x, batched = shell._check_x(x)
        _check_input(x, self.precision)
        T, N, I = x.shape
        lengths = check_lengths(lengths, N, T)
        states0 = shell._check_states(hx, "hx", N, batched)
        for state in states0:
            _check_input(state, self.precision, "hx")
        H, D = self.hidden_size, self.num_directions
        n_threads = effective_n_threads(self.n_threads)
        cell = int(shell._cell)
        finals = tuple(np.empty_like(s0) for s0 in states0)
        layer_input = np.ascontiguousarray(x.reshape(T * N, I))
        for layer in range(self.num_layers):
            out = np.empty((T * N, D * H), np.float32)
            for direction in range(D):
                idx = layer * D + direction
                w_ih, w_hh, w_hn, bias, bias_hn = self._packed[idx]
                h = states0[0][idx].copy()
                c = states0[1][idx].copy() if len(states0) > 1 else None
                _quantized.forward_layer(cell, layer_input, w_ih, w_hh, w_hn, bias, bias_hn,
                                         lengths, h, c, out, direction * H, bool(direction),
                                         n_threads)
                finals[0][idx] = h
                if c is not None:
                    finals[1][idx] = c
            layer_input = out
        return shell._to_user_layout(out.reshape(T, N, D * H), batched), \
            shell._state_to_user(finals, batched)


class QuantizedLSTM(QuantizedRecurrent):
    """An `LSTM` in int8 or bfloat16 (see `QuantizedRecurrent`)."""
    _float_class = LSTM


class QuantizedGRU(QuantizedRecurrent):
    """A `GRU` in int8 or bfloat16 (see `QuantizedRecurrent`)."""
    _float_class = GRU


class QuantizedRNN(QuantizedRecurrent):
    """An `RNN` in int8 or bfloat16 (see `QuantizedRecurrent`)."""
    _float_class = RNN


_RECURRENT = {LSTM: QuantizedLSTM, GRU: QuantizedGRU, RNN: QuantizedRNN}


def quantize(model, precision: str):
    """An inference-only copy of `model` with its products in int8 or bfloat16.

    Parameters
    ----------
    model : LSTM, GRU, RNN, Linear, Sequential or Ensemble
        A trained model (float32 or float64; left unchanged). In a `Sequential`,
        `LastStep` and `Dropout` (the identity at inference) are kept as they are; an
        `Ensemble` is quantized member by member (its reduction unchanged).
    precision : {"int8", "bfloat16"}
        int8: weights per output row in signed 8 bits with a symmetric scale,
        activations per row of each step in unsigned 8 bits with a zero point, exact
        int32 sums. bfloat16: weights and activations rounded to nearest even, float32
        sums.

    Returns
    -------
    Module
        `QuantizedLSTM`, `QuantizedGRU`, `QuantizedRNN`, `QuantizedLinear`, a
        `Sequential` of quantized layers, or an `Ensemble` of such members: float32 in
        and out, `train()` and `backward` raise.

    Raises
    ------
    ValueError
        An unknown precision, an LSTM option with no quantized kernel (projection,
        peepholes, clip, coupled gates, layer norm), non-finite weights, or an int8
        layer with more than 65536 inputs.
    TypeError
        A block with no quantized form (a cell, a block of one's own), also as an
        Ensemble's member.

    Notes
    -----
    Accuracy, measured on the standard configurations of ``lstm_native.bench`` (torch's
    default initialisation U(-1/sqrt(H), 1/sqrt(H)), inputs N(0, 1), seeds 0-4, kernels
    at avx512 with int8 on avx512-vnni and bfloat16 on avx512-bf16), as the largest
    absolute difference of the output from the float32 model's, median [range]:

    ====  ======================  ======================  ==========================
    conf  int8                    bfloat16                int8, inputs' rounding only
    ====  ======================  ======================  ==========================
    A     1.06e-2 [1.02, 1.18]    3.1e-3 [2.9, 3.2]       9.2e-3 [8.8e-3, 1.11e-2]
    B     0.99e-2 [0.96, 1.10]    2.9e-3 [2.8, 3.3]       9.0e-3 [8.2e-3, 1.01e-2]
    C     1.07e-2 [1.02, 1.18]    2.7e-3 [2.6, 3.4]       9.6e-3 [9.2e-3, 9.9e-3]
    D     1.05e-2 [0.98, 1.19]    3.5e-3 [3.2, 3.9]       9.6e-3 [9.3e-3, 1.08e-2]
    E     1.7e-3 [1.6, 1.9]       5.3e-4 [5.0, 5.7]
    F     9.2e-4 [7.9, 10.7]      3.4e-4 [2.9, 3.7]
    S     3.4e-4 [3.2, 3.8]       4.7e-4 [4.2, 5.4]
    ====  ======================  ======================  ==========================

    Where a layer reads the N(0, 1) inputs themselves (A-D), their 8-bit rounding per
    row (a step of about 6/255) is most of the int8 error: the float32 model run on the
    rounded inputs alone (the last column) is 0.9-1.1e-2 away, the int8 weights alone
    4.6-5.7e-3. A layer that reads another's h, in (-1, 1), sees much less of it (E's
    output). tests/test_quantize.py checks these bounds.

    Examples
    --------
    >>> import numpy as np
    >>> from lstm_native import LSTM, quantize
    >>> model = LSTM(8, 16, seed=0).eval()
    >>> x = np.random.default_rng(0).standard_normal((5, 2, 8)).astype(np.float32)
    >>> q = quantize(model, "int8")
    >>> out, (h, c) = q(x)
    >>> bool(np.abs(out - model(x)[0]).max() < 1e-2)
    True
    """
    check_precision(precision)
    if isinstance(model, Sequential):
        return Sequential(*(quantize(layer, precision) for layer in model.layers),
                          stateful=model.stateful)
    if isinstance(model, Ensemble):
        return Ensemble(*(quantize(member, precision) for member in model.members),
                        reduce=model.reduce)
    if type(model) in _RECURRENT:
        return _RECURRENT[type(model)](model, precision)
    if type(model) is Linear:
        return QuantizedLinear(model, precision)
    if type(model) in (LastStep, Dropout):
        return copy.deepcopy(model).eval()
    raise TypeError(f"{type(model).__name__} has no quantized form: quantize takes an LSTM, "
                    f"GRU, RNN, Linear, a Sequential of them with LastStep and Dropout, or "
                    f"an Ensemble of such")
