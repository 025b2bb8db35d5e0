"""Chronological train/validation/test split: the past trains, the future tests.

A time series is never shuffled before splitting: the model would see the future. The
first part trains, the next validates, the last tests; fit scalers on the first part only.
"""
from __future__ import annotations

import math

import numpy as np

from ._checks import check_fraction, check_int

__all__ = ["chronological_split"]


def chronological_split(series, train: float = 0.7, val: float = 0.15, *,
                        min_length: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a series along time into consecutive train, validation and test parts.

    Parameters
    ----------
    series : array_like, shape (T, ...)
        Any array with time on the first axis (values, dates, windows, ...). Its dtype
        is kept.
    train : float, default 0.7
        Fraction of the steps in the training part, in (0, 1):
        ``n_train = floor(train * T)``.
    val : float, default 0.15
        Fraction in the validation part, in [0, 1): ``n_val = floor(val * T)``. 0 gives
        an empty validation part. The test part is the rest, so ``train + val < 1``.
    min_length : int, default 1
        Fewest steps each part must have (the validation part is exempt when ``val == 0``).
        Pass ``lookback + horizon`` when each part will be cut into windows.

    Returns
    -------
    train, val, test : ndarray
        ``series[:n_train]``, ``series[n_train:n_train + n_val]``,
        ``series[n_train + n_val:]`` (copies), in time order.

    Raises
    ------
    TypeError
        If a fraction is not a real number or `min_length` not an int.
    ValueError
        If a fraction is out of range, ``train + val >= 1``, `series` is 0-D, or a part
        would be shorter than `min_length`.

    Examples
    --------
    >>> import numpy as np
    >>> tr, va, te = chronological_split(np.arange(10), 0.6, 0.2)
    >>> tr, va, te
    (array([0, 1, 2, 3, 4, 5]), array([6, 7]), array([8, 9]))
    """
    train = check_fraction(train, "train", allow_zero=False)
    val = check_fraction(val, "val", allow_zero=True)
    min_length = check_int(min_length, "min_length")
    if train + val >= 1.0:
        raise ValueError(f"train + val must be < 1 to leave a test part, got "
                         f"train={train} + val={val} = {train + val}")
    arr = np.asarray(series)
    if arr.ndim == 0:
        raise ValueError("series must be an array with time on the first axis, got a scalar")
    n = arr.shape[0]
    # The small slack keeps e.g. 0.7 * 100 = 70.00000000000001 from flooring wrongly.
    n_train = math.floor(train * n + 1e-9)
    n_val = math.floor(val * n + 1e-9)
    n_test = n - n_train - n_val
    for part, size, frac in (("train", n_train, train), ("val", n_val, val),
                             ("test", n_test, 1.0 - train - val)):
        if part == "val" and val == 0.0:
            continue
        if size < min_length:
            raise ValueError(
                f"the {part} part is too short: series has {n} steps, so a fraction of "
                f"{frac:.4g} gives {size} step(s), and at least min_length = {min_length} "
                "are needed; use a longer series or other fractions"
            )
    return (arr[:n_train].copy(), arr[n_train:n_train + n_val].copy(),
            arr[n_train + n_val:].copy())
