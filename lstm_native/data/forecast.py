"""Multi-step forecasting helpers and the naive baseline, for any model.

Two ways to forecast ``h`` steps ahead:

- **Direct**: train on ``make_windows(series, lookback, horizon=h)``; the model maps a
  (N, lookback, F) window to all ``h`` future values (N, h, n_targets) at once. Nothing
  here is needed beyond the windows.
- **Recursive** (`forecast_recursive`): a one-step model is applied ``h`` times, each
  prediction appended to the window as if it had been observed. Errors compound, but one
  model serves every horizon.

`persistence_forecast` is the baseline both should beat: the last observed value,
repeated. The helpers take a plain callable, never the model itself, so the data layer
imports nothing of it.
"""
from __future__ import annotations

import numpy as np

from ._checks import as_float_values, check_columns, check_int

__all__ = ["forecast_recursive", "persistence_forecast"]


def persistence_forecast(x, horizon: int = 1, *, target_columns=None) -> np.ndarray:
    """The naive forecast: every future value equals the last observed one.

    Parameters
    ----------
    x : array_like, shape (N, lookback, F)
        Input windows, as from `make_windows`.
    horizon : int, default 1
        Steps to forecast (>= 1).
    target_columns : int or sequence of int, optional
        Variables to forecast, as in `make_windows`. Default: all F.

    Returns
    -------
    ndarray, shape (N, horizon, n_targets)
        ``x[:, -1, target_columns]`` repeated `horizon` times: directly comparable with
        the ``y`` of ``make_windows(series, lookback, horizon, target_columns=...)``.

    Raises
    ------
    TypeError
        If `x` is not numeric or `horizon` not an int.
    ValueError
        If `x` is not 3-D with at least one step, holds NaN/inf, or `horizon` < 1.

    Examples
    --------
    >>> import numpy as np
    >>> persistence_forecast(np.array([[[1.0], [2.0], [3.0]]]), horizon=2)[:, :, 0]
    array([[3., 3.]])
    """
    horizon = check_int(horizon, "horizon")
    arr = as_float_values(x, "x", "(N, lookback, F)")
    if arr.ndim != 3 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ValueError(f"x must be windows of shape (N, lookback, F) with lookback, F >= 1, "
                         f"got shape {arr.shape}")
    targets = check_columns(target_columns, arr.shape[2], "target_columns")
    last = arr[:, -1:, :] if targets is None else arr[:, -1:, targets]
    return np.ascontiguousarray(np.repeat(last, horizon, axis=1))


def forecast_recursive(predict_one, history, steps: int, *, lookback: int | None = None
                       ) -> np.ndarray:
    """Forecast `steps` values by feeding a one-step predictor its own predictions.

    At each step the last `lookback` values (observed, then predicted) form the window
    given to `predict_one`; its prediction is appended and the window slides by one.

    Parameters
    ----------
    predict_one : callable
        Maps a window batch of shape (N, lookback, F) to the next values of all F
        variables: an array of shape (N, 1, F) or (N, F) (or (N,) when F = 1). E.g.
        ``lambda w: head(lstm(w)[0][:, -1:])`` for a batch-first model.
    history : array_like, shape (T,), (T, F) or (N, T, F)
        The observed past: one series (1-D or 2-D) or a batch of N series.
    steps : int
        Number of future steps to forecast (>= 1).
    lookback : int, optional
        Window length given to `predict_one`: the last `lookback` steps of `history`
        (<= T). Default: all T steps.

    Returns
    -------
    ndarray
        The forecast: shape (steps,), (steps, F) or (N, steps, F) following `history`'s
        shape; float32 if `history` is float32, else float64.

    Raises
    ------
    TypeError
        If `predict_one` is not callable, `history` not numeric, or an int argument not
        an int.
    ValueError
        If `history` has the wrong number of dimensions, holds NaN/inf, is shorter than
        `lookback`, or `predict_one` returns an array of the wrong shape.

    Examples
    --------
    >>> import numpy as np
    >>> # a "model" that continues a straight line: next = 2 * last - previous
    >>> step = lambda w: 2 * w[:, -1] - w[:, -2]
    >>> forecast_recursive(step, np.array([1.0, 2.0, 3.0]), steps=3)
    array([4., 5., 6.])
    """
    if not callable(predict_one):
        raise TypeError(f"predict_one must be a callable mapping (N, lookback, F) windows "
                        f"to (N, 1, F) predictions, got {type(predict_one).__name__}")
    steps = check_int(steps, "steps")
    hist = as_float_values(history, "history", "(T,), (T, F) or (N, T, F)")
    ndim = hist.ndim
    if ndim == 1:
        batch = hist[None, :, None]
    elif ndim == 2:
        batch = hist[None]
    elif ndim == 3:
        batch = hist
    else:
        raise ValueError(f"history must have shape (T,), (T, F) or (N, T, F), "
                         f"got {ndim}-D shape {hist.shape}")
    n, t, f = batch.shape
    if n == 0 or t == 0 or f == 0:
        raise ValueError(f"history must hold at least one step of one variable, "
                         f"got shape {hist.shape}")
    if lookback is None:
        lookback = t
    lookback = check_int(lookback, "lookback")
    if lookback > t:
        raise ValueError(f"history is too short: it has {t} steps, and lookback = "
                         f"{lookback} steps are needed")

    # A copy (never a view): the window slides in place and must not touch `history`.
    window = np.array(batch[:, t - lookback:, :], order="C", copy=True)
    out = np.empty((n, steps, f), dtype=hist.dtype)
    for k in range(steps):
        pred = np.asarray(predict_one(window.copy()))
        if pred.size != n * f or pred.ndim == 0 or pred.shape[0] != n:
            raise ValueError(
                f"predict_one must return the next values of shape (N, 1, F) = "
                f"({n}, 1, {f}) or (N, F) = ({n}, {f}) for a window batch of shape "
                f"{window.shape}, got shape {pred.shape} at step {k}"
            )
        out[:, k, :] = pred.reshape(n, f)
        window[:, :-1] = window[:, 1:]
        window[:, -1] = out[:, k, :]
    if ndim == 1:
        return out[0, :, 0]
    if ndim == 2:
        return out[0]
    return out
