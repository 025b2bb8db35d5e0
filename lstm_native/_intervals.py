"""Split-conformal prediction intervals of a forecaster.

The forecaster's errors on the validation part, a span its networks did not train on
(early stopping only looked at its loss), calibrate the intervals: for a level `a` and
each step h of the model's horizon, the half-width is the ceil((n + 1) a)-th smallest of
the n absolute errors |actual - forecast| at step h, in the model's space (the log for a
log-differenced series, so that the interval is relative; the levels otherwise). If the
future's errors are exchangeable with the validation part's, an interval covers the
actual value with probability at least `a` (Vovk et al., *Algorithmic Learning in a
Random World*, 2005; Lei et al., "Distribution-free predictive inference for regression",
2018). Too few errors for a level (n < 1/(1 - a) - 1) give an unbounded interval, said
as such, rather than a narrower one that would not hold.

A series drifts, and its errors with it: the pool of n errors then rolls forward
(`recent_half_widths`). Each forecast of the test part is calibrated on the n most
recent errors known at its origin, the validation part's followed by the test part's own
as their targets are observed, and a forecast from the end of a series on the last n
(sequential split conformal, as in Xu and Xie, "Conformal prediction interval for
dynamic time-series", ICML 2021). Measured on the seven series of docs/forecast_table.py,
this brought the coverage of the test parts closer to the nominal levels than the
validation errors alone (pooled 78% and 94% against 73% and 93% at 80% and 95%).

A recursive forecast of many steps feeds each forecast back as an observation, so its
error is the sum of the step errors, each carried forward by how the forecaster responds
to its inputs. `growth` linearises that response around the forecast path (the forecast
again with its first value moved by a typical error): with psi_j the change of the
forecast j steps later per unit of that move, the k-step half-width is the one-step one
times sqrt(1 + psi_1^2 + ... + psi_{k-1}^2) (the step errors taken as independent, as
for an ARIMA's forecast variance), so the intervals widen as the forecaster itself
propagates errors.
"""
from __future__ import annotations

import bisect
import collections
import math

import numpy as np

from .data._checks import check_fraction

__all__ = ["LEVELS", "check_levels", "coverage", "growth", "half_widths", "label",
           "recent_half_widths"]

#: The nominal levels the reports give.
LEVELS = (0.8, 0.95)


def check_levels(levels) -> tuple:
    """`levels` as a tuple of floats in (0, 1), or a TypeError/ValueError naming them."""
    if isinstance(levels, (int, float)):
        levels = (levels,)
    try:
        levels = tuple(levels)
    except TypeError:
        raise TypeError(f"levels must be a sequence of numbers in (0, 1), got "
                        f"{type(levels).__name__}") from None
    if not levels:
        raise ValueError("levels must hold at least one number in (0, 1), got none")
    return tuple(check_fraction(level, "levels", allow_zero=False) for level in levels)


def label(level: float) -> str:
    """"80" for 0.8: the level in percent, as the reports' keys spell it."""
    return f"{level * 100:g}"


def half_widths(residuals: np.ndarray, level: float) -> np.ndarray:
    """The split-conformal half-width at `level` of each step: (horizon,), inf where
    `residuals` (N, horizon) hold too few errors for the level."""
    rank = _rank(len(residuals), level)
    if rank is None:
        return np.full(residuals.shape[1], np.inf)
    return np.sort(_magnitudes(residuals), axis=0)[rank - 1]


def _rank(n: int, level: float) -> int | None:
    """The 1-based rank of the half-width among n errors at `level`, None when n is
    too few (an unbounded interval). The finite-sample correction ceil((n + 1) level);
    the slack keeps e.g. 20 * 0.95 from rounding up."""
    rank = math.ceil((n + 1) * level - 1e-9)
    return rank if rank <= n else None


def _magnitudes(errors) -> np.ndarray:
    """|errors|, a nan (a forecast that left float64) counted as an infinite one."""
    return np.nan_to_num(np.abs(errors), nan=np.inf)


def recent_half_widths(calibration: np.ndarray, errors: np.ndarray, origins: np.ndarray,
                       level: float) -> np.ndarray:
    """The half-width at `level` of each window and step, calibrated on the most recent
    errors known at its origin: (N, horizon).

    The pool holds as many errors as `calibration` (M, horizon), the validation part's:
    those first, then each of `errors` (N, horizon, the windows' own errors, their
    `origins` ascending) as soon as its target is observed (the error of window j at
    step h, whose target is origins[j] + h + 1, joins from the origin that reaches it),
    the oldest leaving as one joins. One sorted list per step, updated as the origins
    advance: N insertions and removals of O(M) each, not N sorts.
    """
    n, steps = errors.shape
    out = np.empty((n, steps))
    rank = _rank(len(calibration), level)
    if rank is None:
        out[:] = np.inf
        return out
    magnitudes = _magnitudes(errors)
    for h in range(steps):
        pool = collections.deque(_magnitudes(calibration[:, h]))
        ordered = sorted(pool)
        joined = 0
        for i in range(n):
            while joined < n and origins[joined] + h + 1 <= origins[i]:
                new = float(magnitudes[joined, h])
                pool.append(new)
                bisect.insort(ordered, new)
                del ordered[bisect.bisect_left(ordered, pool.popleft())]
                joined += 1
            out[i, h] = ordered[rank - 1]
    return out


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """The share of `actual` values inside [lower, upper]."""
    return float(np.mean((lower <= actual) & (actual <= upper)))


def growth(psi: np.ndarray) -> np.ndarray:
    """sqrt(1 + psi_1^2 + ... + psi_{k-1}^2) for k = 1 .. len(psi) + 1: the factor of
    the one-step half-width at each step of a recursive forecast."""
    return np.sqrt(1.0 + np.concatenate([[0.0], np.cumsum(np.square(psi))]))
