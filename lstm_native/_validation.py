"""Checks shared by the public API: every message names the argument and what it expected."""
from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_model_dtype(dtype) -> np.dtype:
    """The dtype a model computes in: float32 or float64 (None: the default, float32)."""
    if dtype is None:
        return np.dtype(np.float32)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be np.float32 or np.float64, got {dt}")
    return dt


def check_size(value, name: str, minimum: int = 1) -> int:
    """A size argument: an int >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def as_float_array(a, name: str, dtype: np.dtype, expected: str) -> np.ndarray:
    """`a` as an array of the model's dtype.

    The other float precision is converted; any other dtype is a TypeError naming
    `expected`, the shape the caller wants (for the message).
    """
    arr = np.asarray(a)
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a float32 or float64 array of shape {expected}, "
            f"got dtype {arr.dtype}"
        )
    return arr.astype(dtype, copy=False)


def check_shape(arr: np.ndarray, name: str, shape: tuple, expected: str) -> None:
    """ValueError unless arr.shape == shape; `expected` spells the shape symbolically."""
    if arr.shape != tuple(shape):
        raise ValueError(
            f"{name} must have shape {expected} = {tuple(shape)}, got {arr.shape}"
        )


def check_lengths(lengths, N: int, T: int) -> np.ndarray:
    """`lengths` of N sequences padded to T steps: N ints in 1..T (None: all T), as int64."""
    if lengths is None:
        return np.full(N, T, dtype=np.int64)
    if hasattr(lengths, "detach"):  # a torch tensor, as pack_padded_sequence takes
        lengths = lengths.detach().cpu().numpy()
    arr = np.asarray(lengths)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"lengths must be {N} integers in 1..{T}, got dtype {arr.dtype}")
    if arr.shape != (N,):
        raise ValueError(f"lengths must have shape (N,) = ({N},), got {arr.shape}")
    if arr.min() < 1 or arr.max() > T:
        raise ValueError(
            f"lengths must be in 1..T = 1..{T}, got values from {arr.min()} to {arr.max()}"
        )
    return np.ascontiguousarray(arr, dtype=np.int64)
