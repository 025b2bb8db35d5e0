"""Weight initialisation: torch.nn.init's functions on NumPy arrays.

Each function fills a float array in place from a seeded generator and returns it, as
``torch.nn.init.xavier_uniform_(tensor)`` does for a tensor, so that code written for
torch ports line by line (``init.xavier_uniform_(model.parameters()["weight_ih_l0"])``:
`parameters()` hands out the live arrays), with torch's argument names (``a=`` is the
leaky ReLU's slope of `kaiming_uniform_`, and the bounds of `uniform_`). Keras' name is an
alias where its distribution is the same: ``glorot_uniform_`` is ``xavier_uniform_``.

The rules are torch's (torch/nn/init.py): fans of a (out, in, *receptive) array are
fan_in = in · receptive, fan_out = out · receptive; Xavier/Glorot draws
U(±gain·sqrt(6 / (fan_in + fan_out))) or N(0, gain²·2 / (fan_in + fan_out)); Kaiming/He
U(±gain·sqrt(3 / fan)) or N(0, gain² / fan) with fan = fan_in or fan_out (`mode`);
`orthogonal_` the Q of a QR decomposition of a normal matrix over the array flattened to
(out, in · receptive), its signs fixed by R's diagonal (Saxe et al. 2014), as torch and
Keras both draw it. `calculate_gain` gives torch's gains.

The random streams are numpy's, not torch's: the same seed gives the same distribution,
not the same numbers. `rng` takes what `numpy.random.default_rng` takes (None, an int >= 0,
a Generator).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ._validation import check_seed

__all__ = ["calculate_gain", "fans", "uniform_", "normal_", "constant_", "zeros_", "ones_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
           "orthogonal_", "glorot_uniform_"]

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``:
    1 for linear ones and sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + slope²))
    for leaky_relu (slope `param`, default 0.01), 3/4 for selu."""
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _check_array(a, name: str = "tensor") -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a float32 or float64 numpy array (filled in place), "
                        f"got {type(a).__name__}"
                        + (f" of {a.dtype}" if isinstance(a, np.ndarray) else ""))
    if not a.flags.writeable:
        raise ValueError(f"{name} must be writeable (it is filled in place)")
    return a


def fans(tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of an array of shape (out, in, *receptive field), as torch's
    ``_calculate_fan_in_and_fan_out``; fewer than 2 dimensions is a ValueError."""
    shape = np.shape(tensor)
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than "
                         f"2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fill(tensor: np.ndarray, values) -> np.ndarray:
    tensor[...] = values   # cast to the array's own dtype
    return tensor


def _finite(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def uniform_(tensor, a: float = 0.0, b: float = 1.0, *, rng=None) -> np.ndarray:
    """Fill `tensor` from U(a, b)."""
    tensor = _check_array(tensor)
    a, b = _finite(a, "a"), _finite(b, "b")
    if a > b:
        raise ValueError(f"a must not exceed b, got a={a}, b={b}")
    return _fill(tensor, np.random.default_rng(check_seed(rng)).uniform(a, b, tensor.shape))


def normal_(tensor, mean: float = 0.0, std: float = 1.0, *, rng=None) -> np.ndarray:
    """Fill `tensor` from N(mean, std²)."""
    tensor = _check_array(tensor)
    mean, std = _finite(mean, "mean"), _finite(std, "std")
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    return _fill(tensor, np.random.default_rng(check_seed(rng)).normal(mean, std, tensor.shape))


def constant_(tensor, val: float) -> np.ndarray:
    """Fill `tensor` with `val`."""
    return _fill(_check_array(tensor), _finite(val, "val"))


def zeros_(tensor) -> np.ndarray:
    """Fill `tensor` with zeros."""
    return constant_(tensor, 0.0)


def ones_(tensor) -> np.ndarray:
    """Fill `tensor` with ones."""
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain: float = 1.0, *, rng=None) -> np.ndarray:
    """Glorot & Bengio (2010): U(±gain·sqrt(6 / (fan_in + fan_out)))."""
    fan_in, fan_out = fans(_check_array(tensor))
    bound = abs(_finite(gain, "gain")) * math.sqrt(6.0 / max(fan_in + fan_out, 1))
    return uniform_(tensor, -bound, bound, rng=rng)


def xavier_normal_(tensor, gain: float = 1.0, *, rng=None) -> np.ndarray:
    """Glorot & Bengio (2010): N(0, gain²·2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(_check_array(tensor))
    std = abs(_finite(gain, "gain")) * math.sqrt(2.0 / max(fan_in + fan_out, 1))
    return normal_(tensor, 0.0, std, rng=rng)


def _kaiming_std(tensor, a, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = fans(_check_array(tensor))
    return calculate_gain(nonlinearity, a) / math.sqrt(
        max(fan_in if mode == "fan_in" else fan_out, 1))


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", *, rng=None) -> np.ndarray:
    """He et al. (2015): U(±gain·sqrt(3 / fan)), gain from `nonlinearity` (and `a`, the
    leaky ReLU's negative slope), fan = fan_in or fan_out (`mode`)."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, rng=rng)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", *, rng=None) -> np.ndarray:
    """He et al. (2015): N(0, gain² / fan), as `kaiming_uniform_`."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), rng=rng)


def orthogonal_(tensor, gain: float = 1.0, *, rng=None) -> np.ndarray:
    """A (semi-)orthogonal matrix (Saxe et al. 2014) times `gain`: the array flattened to
    (rows, cols) = (out, in · receptive) gets orthonormal rows (rows <= cols) or columns;
    the Q of the QR decomposition of a standard normal matrix, with the signs of R's
    diagonal, as torch and Keras draw it."""
    tensor = _check_array(tensor)
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported, got shape "
                         f"{tensor.shape}")
    gain = _finite(gain, "gain")
    if tensor.size == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.size // rows
    flat = np.random.default_rng(check_seed(rng)).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))   # a uniform (Haar) draw, not one biased by QR's sign choice
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))


# Keras' name for the same distribution (its GlorotNormal and HeNormal are truncated
# normals, not torch's: no alias for those).
glorot_uniform_ = xavier_uniform_
