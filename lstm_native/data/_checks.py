"""Argument checks of the data helpers: every message names the argument and what it expected.

The data layer imports nothing of the model (see STYLE.md, "Layering"), so it keeps its
own small set of checks instead of sharing ``lstm_native._validation``.
"""
from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_int(value, name: str, minimum: int = 1) -> int:
    """An integer argument >= minimum (bool is not an integer here)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def check_real(value, name: str, *, minimum: float | None = None,
               strict: bool = False) -> float:
    """A finite real number; >= minimum (> minimum if strict) when minimum is given."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if minimum is not None:
        if strict and not value > minimum:
            raise ValueError(f"{name} must be > {minimum}, got {value}")
        if not strict and not value >= minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_fraction(value, name: str, *, allow_zero: bool) -> float:
    """A real number in (0, 1), or [0, 1) if allow_zero."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in {'[0, 1)' if allow_zero else '(0, 1)'}, "
                        f"got {value!r}")
    value = float(value)
    low_ok = value >= 0.0 if allow_zero else value > 0.0
    if not (low_ok and value < 1.0):
        raise ValueError(f"{name} must be a float in {'[0, 1)' if allow_zero else '(0, 1)'}, "
                         f"got {value}")
    return value


def make_rng(seed, name: str = "seed") -> np.random.Generator:
    """A NumPy Generator from None, a non-negative int or a Generator."""
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be None, an int >= 0 or a numpy.random.Generator, "
                        f"got {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be an int >= 0, got {seed}")
    return np.random.default_rng(int(seed))


def as_float_values(a, name: str, expected: str) -> np.ndarray:
    """`a` as a float array of finite numbers: float32 stays float32, anything else numeric
    becomes float64. Non-numeric dtypes are a TypeError, NaN/inf a ValueError (with where).

    `expected` spells the shape the caller wants, for the messages.
    """
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ValueError(f"{name} must be a numeric array of shape {expected}: {exc}") from None
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer)
                                     or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(
            f"{name} must be a numeric (int or float) array of shape {expected}, "
            f"got dtype {arr.dtype}"
        )
    if arr.dtype not in FLOAT_DTYPES:
        arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        value = arr[where]
        where_txt = where[0] if len(where) == 1 else where
        raise ValueError(
            f"{name} must contain finite numbers only, got {value} at index {where_txt}; "
            "fill or drop missing values first"
        )
    return arr


def as_series(series, name: str = "series") -> np.ndarray:
    """A time series as a float array of shape (T, F): 1-D input becomes (T, 1)."""
    arr = as_float_values(series, name, "(T,) or (T, F)")
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim != 2:
        raise ValueError(
            f"{name} must be 1-D (T,) or 2-D (T, F) with time on the first axis, "
            f"got {arr.ndim}-D shape {arr.shape}"
        )
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one variable, got shape {arr.shape}")
    return arr


def check_columns(columns, n_features: int, name: str) -> np.ndarray | None:
    """None (all columns), an int, or a sequence of distinct ints indexing n_features
    variables (negative indices count from the end). Returns sorted-as-given int indices."""
    if columns is None:
        return None
    if isinstance(columns, (bool, np.bool_)):
        raise TypeError(f"{name} must be None, an int or a sequence of ints, got {columns!r}")
    if isinstance(columns, numbers.Integral):
        columns = [columns]
    try:
        items = list(columns)
    except TypeError:
        raise TypeError(
            f"{name} must be None, an int or a sequence of ints, got {columns!r}"
        ) from None
    if not items:
        raise ValueError(f"{name} must name at least one column, got an empty sequence")
    out = []
    for c in items:
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, numbers.Integral):
            raise TypeError(f"{name} must contain ints, got {c!r}")
        if not -n_features <= c < n_features:
            raise ValueError(
                f"{name} entry {c} is out of range for {n_features} variable(s) "
                f"(valid: {-n_features} .. {n_features - 1})"
            )
        out.append(int(c) % n_features)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat a column, got {items}")
    return np.asarray(out, dtype=np.intp)
