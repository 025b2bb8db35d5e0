"""The hybrid forecaster's parts: a classical model's forecasts, corrected by recurrent
networks that read its errors (after Smyl's ES-RNN, which won the M4 competition: the
classical model carries the level and the season, the network learns what it misses).

In model space z (log y for a positive series, else y) the base model (ETS or SARIMA,
`lstm_native.baselines`) forecasts ``zb[t, j] = ẑ(t + j | t)`` from each origin t. At
origin t the network reads the `lookback` steps up to t, three features each,
standardised with the training span's statistics:

- ``change[t] = z[t] - z[t - 1]``: the series itself;
- ``error[t] = z[t] - ẑ(t | t - 1)``: the base's one-step error;
- ``step[t] = ẑ(t + 1 | t) - z[t]``: the change the base predicts next;

and predicts the base's errors over the horizon, ``z[t + j] - ẑ(t + j | t)`` over
``sigma`` (the standard deviation of the training span's one-step errors). Its output
layer starts at zero, so training starts from the base's forecast, and early stopping on
the validation span keeps a correction only as far as it helps there. Each member's
correction is clipped to ``± CLIP * sigma``: in a regime the networks never saw (a
shock), the forecast stays near the base's instead of following an extrapolation. The
members (seeds) give the median correction.
"""
from __future__ import annotations

import numpy as np

from .layers import Ensemble, LastStep, Linear, Sequential

__all__ = ["BASES", "CLIP", "FEATURES", "HybridData", "base_path", "correct", "members"]

#: The classical models (`lstm_native.baselines`) a hybrid may correct.
BASES = ("ETS", "SARIMA")

#: The features the networks read per step, in this order.
FEATURES = ("change", "error", "step")
#: The largest correction a member gives, in `sigma`s of the base's training errors.
CLIP = 1.0


def to_model_space(y: np.ndarray, log: bool) -> np.ndarray:
    return np.log(y) if log else np.asarray(y, np.float64)


def from_model_space(z: np.ndarray, log: bool) -> np.ndarray:
    with np.errstate(over="ignore"):   # past float64: inf, for the caller to report
        return np.exp(z) if log else z


def base_path(base, y: np.ndarray, horizon: int, log: bool) -> np.ndarray:
    """(T, horizon): row t the fitted `base`'s forecasts of y[t + 1 .. t + horizon] from
    origin t, in model space; NaN before its first origin."""
    path = np.full((len(y), horizon), np.nan)
    origins = np.arange(base.first_origin(), len(y))
    path[origins] = to_model_space(base.forecast(y, origins, horizon), log)
    return path


class HybridData:
    """The features and targets of a series given its base's forecasts.

    Parameters
    ----------
    z : ndarray (T,)
        The series in model space.
    base : ndarray (T, horizon)
        ``base[t, j]``: the base's forecast of ``z[t + 1 + j]`` from origin t, in model
        space; NaN where the base has none (its first origins, and past the end).
    lookback : int
    stats : dict, optional
        ``mean`` and ``std`` of the features (3,) and ``sigma``: by default those of
        the steps before `n_train` (the training span).
    n_train : int
        The training span's length, for the default `stats`.

    Attributes
    ----------
    x : ndarray (N, lookback, 3)
        The windows, ending at the origins `origin` (N,), whose base forecasts exist.
    y : ndarray (N, horizon)
        The targets: the base's errors over sigma (NaN past the end of the series).
    """

    def __init__(self, z: np.ndarray, base: np.ndarray, lookback: int, *,
                 stats: dict | None = None, n_train: int | None = None):
        T, horizon = base.shape
        change = np.full(T, np.nan)
        change[1:] = np.diff(z)
        error = np.full(T, np.nan)
        error[1:] = z[1:] - base[:-1, 0]
        step = base[:, 0] - z
        features = np.stack([change, error, step], axis=1)
        if stats is None:
            train = features[:n_train]
            train = train[np.all(np.isfinite(train), axis=1)]
            std = train.std(axis=0)
            stats = {"mean": train.mean(axis=0), "std": np.where(std > 0, std, 1.0),
                     "sigma": float(std[1]) if std[1] > 0 else 1.0}
        self.stats = stats
        features = (features - stats["mean"]) / stats["std"]
        # Every window of `lookback` steps that ends at an origin with finite features
        # throughout (the base has no forecast from its first origins).
        windows = np.lib.stride_tricks.sliding_window_view(features, lookback, axis=0)
        windows = windows.transpose(0, 2, 1)            # (T - lookback + 1, lookback, 3)
        ok = np.all(np.isfinite(windows), axis=(1, 2))
        self.origin = np.flatnonzero(ok) + lookback - 1
        self.x = np.ascontiguousarray(windows[ok])
        targets = np.full((T, horizon), np.nan)
        for j in range(horizon):
            targets[:T - 1 - j, j] = z[1 + j:] - base[:T - 1 - j, j]
        self.y = targets[self.origin] / stats["sigma"]


def members(count: int, cell, hidden: int, layers: int, horizon: int, *, dtype,
            seed: int, n_threads) -> list[Sequential]:
    """`count` networks cell(3, hidden, layers) (an LSTM, GRU or RNN class) -> last step
    -> Linear(hidden, horizon), member k drawn from seeds (seed + 2k, seed + 2k + 1), the
    Linear at zero: each starts from the base's forecast."""
    built = []
    for k in range(count):
        head = Linear(hidden, horizon, dtype=dtype, seed=seed + 2 * k + 1)
        for p in head.parameters().values():
            p.fill(0)
        built.append(Sequential(
            cell(len(FEATURES), hidden, num_layers=layers, batch_first=True, dtype=dtype,
                 seed=seed + 2 * k, n_threads=n_threads),
            LastStep(batch_first=True), head))
    return built


def correct(model, x: np.ndarray, sigma: float) -> np.ndarray:
    """The median over the members of `model` (an Ensemble, or one network) of their
    corrections, each clipped to ± CLIP * sigma, in model space: (N, horizon)."""
    x = x.astype(model.dtype, copy=False)
    outputs = model.outputs(x) if isinstance(model, Ensemble) else model(x)[None]
    outputs = outputs.astype(np.float64)
    return np.median(np.clip(outputs, -CLIP, CLIP), axis=0) * sigma
