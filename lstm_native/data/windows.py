"""Sliding windows: a time series cut into (input window, following values) training pairs.

Window ``i`` starts at step ``i * stride``; its input ``x[i]`` is the ``lookback`` steps
``series[i*stride : i*stride + lookback]`` and its target ``y[i]`` the ``horizon`` steps
right after them. Arrays are batch-first, ``(N, time, variables)``, the layout of
``LSTM(..., batch_first=True)``. ``horizon > 1`` gives the targets of a *direct*
multi-step forecast (see `lstm_native.data.forecast`).
"""
from __future__ import annotations

import numpy as np

from ._checks import as_series, check_columns, check_int

__all__ = ["make_windows", "n_windows"]


def n_windows(n_steps: int, lookback: int, horizon: int = 1, stride: int = 1) -> int:
    """Number of windows `make_windows` cuts from a series of ``n_steps`` steps.

    Parameters
    ----------
    n_steps : int
        Length of the series.
    lookback, horizon, stride : int
        As in `make_windows`.

    Returns
    -------
    int
        ``(n_steps - lookback - horizon) // stride + 1``, or 0 if the series is shorter
        than ``lookback + horizon``.
    """
    n_steps = check_int(n_steps, "n_steps", 0)
    lookback = check_int(lookback, "lookback")
    horizon = check_int(horizon, "horizon")
    stride = check_int(stride, "stride")
    span = lookback + horizon
    return 0 if n_steps < span else (n_steps - span) // stride + 1


def make_windows(series, lookback: int, horizon: int = 1, stride: int = 1, *,
                 target_columns=None) -> tuple[np.ndarray, np.ndarray]:
    """Cut a series into input windows and the values that follow each of them.

    Parameters
    ----------
    series : array_like, shape (T,) or (T, F)
        The series, time on the first axis; a 1-D series is one variable (F = 1).
        Numeric and finite (NaN/inf are an error: fill or drop them first).
    lookback : int
        Steps in each input window (>= 1).
    horizon : int, default 1
        Steps to predict after each window (>= 1). ``horizon > 1`` is direct multi-step
        forecasting: the model outputs all ``horizon`` values at once.
    stride : int, default 1
        Steps between the starts of consecutive windows (>= 1); ``stride = lookback``
        gives non-overlapping input windows.
    target_columns : int or sequence of int, optional
        The variables to predict (indices into F, negative from the end). Default: all.

    Returns
    -------
    x : ndarray, shape (N, lookback, F)
        ``x[i] = series[i*stride : i*stride + lookback]``.
    y : ndarray, shape (N, horizon, n_targets)
        ``y[i] = series[i*stride + lookback : i*stride + lookback + horizon, target_columns]``.
        ``N = (T - lookback - horizon) // stride + 1``. Both are new C-contiguous arrays,
        float32 if the series is float32, else float64.

    Raises
    ------
    TypeError
        If `series` is not numeric, or an int argument is not an int.
    ValueError
        If `series` is not 1-D/2-D or holds NaN/inf, an int argument is < 1, a target
        column is out of range or repeated, or T < lookback + horizon.

    Examples
    --------
    >>> import numpy as np
    >>> x, y = make_windows(np.arange(6.0), lookback=3, horizon=2)
    >>> x[:, :, 0]
    array([[0., 1., 2.],
           [1., 2., 3.]])
    >>> y[:, :, 0]
    array([[3., 4.],
           [4., 5.]])
    """
    lookback = check_int(lookback, "lookback")
    horizon = check_int(horizon, "horizon")
    stride = check_int(stride, "stride")
    s = as_series(series)
    n_steps, n_features = s.shape
    targets = check_columns(target_columns, n_features, "target_columns")
    if n_steps < lookback + horizon:
        raise ValueError(
            f"series is too short: it has {n_steps} steps, and one window needs "
            f"lookback + horizon = {lookback} + {horizon} = {lookback + horizon}"
        )
    n = (n_steps - lookback - horizon) // stride + 1
    # A stride past the series gives one window (n = 1), whose start 0 does not depend
    # on it; the cap keeps a huge stride from overflowing int64.
    starts = np.arange(n) * min(stride, n_steps)
    x = s[starts[:, None] + np.arange(lookback)]                     # (N, lookback, F)
    y = s[starts[:, None] + lookback + np.arange(horizon)]           # (N, horizon, F)
    if targets is not None:
        y = y[:, :, targets]
    return np.ascontiguousarray(x), np.ascontiguousarray(y)
