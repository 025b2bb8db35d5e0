"""Rolling-origin backtesting of a `Forecaster`: its error over several origins, not one.

One split scores a forecaster on one test part, whose error depends on where the split
falls. A backtest cuts that test part (the last ``1 - train_fraction - val_fraction`` of
the series) into `folds` consecutive blocks and refits a fresh copy of the forecaster at
each block's start on everything before it (an expanding window): fold i trains and
validates on the values before block i, in the forecaster's proportions, and is scored
on block i, its baselines fitted on the same values (`lstm_native.baselines`). The folds
are independent given the series: each refits from the same seed on more data.

The cost is `folds` fits; the result gives each fold's errors and, for the forecaster
and each baseline, their mean, spread and pooled value over the folds.

Examples
--------
>>> import numpy as np
>>> from lstm_native.backtest import backtest
>>> from lstm_native.forecasting import Forecaster
>>> t = np.arange(120)
>>> y = 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / 12)
>>> forecaster = Forecaster(lookback=6, hidden=4, epochs=2, method="lstm")
>>> result = backtest(forecaster, y, folds=3)
>>> [(fold.first, fold.last) for fold in result.folds]
[(102, 107), (108, 113), (114, 119)]
>>> [fold.windows for fold in result.folds]
[6, 6, 6]
>>> result.summary()["model"]["folds"]
3
"""
from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass

import numpy as np

from .data import chronological_split, dated
from .data._checks import check_fraction, check_int
from .forecasting import Forecaster, ForecastError

__all__ = ["Backtest", "Fold", "backtest"]


@dataclass(frozen=True)
class Fold:
    """One origin of a backtest: the block of the series it tests and the errors there.

    Attributes
    ----------
    index : int
        The fold's place, 0 for the first block (messages count from 1).
    first, last : int
        The indices of the block's first and last values.
    train, validation : int
        The values before the block the fit trained and validated on (together
        ``first``).
    windows : int
        The test windows in the block (its values - horizon + 1).
    rmse : float
        The forecaster's RMSE on the block.
    baselines : dict of str to float
        Each baseline's RMSE on the same windows, fitted on the values before the block.
    best_baseline : str
        The baseline of the smallest RMSE.
    ratio_to_best : float or None
        ``rmse`` over the best baseline's (None when that one is exact).
    seconds : float
        The fit's wall time, baselines included.
    first_date, last_date : object or None
        The dates of ``first`` and ``last`` when the series has dates.
    """

    index: int
    first: int
    last: int
    train: int
    validation: int
    windows: int
    rmse: float
    baselines: dict
    best_baseline: str
    ratio_to_best: float | None
    seconds: float
    first_date: object = None
    last_date: object = None

    def to_dict(self) -> dict:
        """The fold as JSON values (dates as strings)."""
        out = asdict(self)
        for key in ("first_date", "last_date"):
            out[key] = None if out[key] is None else str(out[key])
        return out


@dataclass(frozen=True)
class Backtest:
    """The folds of a backtest (`backtest`) and what they say together.

    Attributes
    ----------
    folds : tuple of Fold
        In time order; their blocks tile the forecaster's test part.
    horizon : int
        The steps each test window forecasts.
    seconds : float
        The backtest's wall time: its `folds` fits.
    """

    folds: tuple
    horizon: int
    seconds: float

    def summary(self) -> dict:
        """The errors over the folds.

        Returns
        -------
        dict
            ``model`` (ours) and ``baselines`` (by name), each a dict of ``mean``,
            ``std`` (over the folds, ddof=1: None for one fold), ``min`` and ``max`` of
            the fold RMSEs, ``pooled`` (the RMSE of all the folds' windows together:
            the square root of the windows-weighted mean of the squared fold RMSEs) and
            ``folds`` (the folds it was scored on: a baseline that cannot forecast a
            block from its fit is left out there); ``mean_ratio_to_best`` (the mean of
            the folds' ``ratio_to_best``, None when none has one),
            ``at_least_as_accurate`` (the folds where ours is at most the best
            baseline's RMSE), ``folds``, ``windows`` and ``seconds``.
        """
        ratios = [f.ratio_to_best for f in self.folds if f.ratio_to_best is not None]
        # The baselines in the order the folds first give them (naive first).
        names = dict.fromkeys(name for fold in self.folds for name in fold.baselines)
        return {
            "folds": len(self.folds),
            "windows": sum(f.windows for f in self.folds),
            "model": _stats([(f.rmse, f.windows) for f in self.folds]),
            "baselines": {name: _stats([(f.baselines[name], f.windows) for f in self.folds
                                        if name in f.baselines])
                          for name in names},
            "mean_ratio_to_best": float(np.mean(ratios)) if ratios else None,
            "at_least_as_accurate": sum(f.rmse <= f.baselines[f.best_baseline]
                                        for f in self.folds),
            "seconds": self.seconds,
        }

    def to_dict(self) -> dict:
        """The backtest as JSON values: ``horizon``, ``seconds``, ``folds`` (each
        `Fold.to_dict`) and ``summary``."""
        return {"horizon": self.horizon, "seconds": self.seconds,
                "folds": [fold.to_dict() for fold in self.folds], "summary": self.summary()}


def _stats(scores: list) -> dict:
    """Mean, spread and pooled value of the (rmse, windows) pairs of some folds."""
    rmse = np.array([r for r, _ in scores])
    windows = np.array([w for _, w in scores], np.float64)
    return {"mean": float(rmse.mean()),
            "std": float(rmse.std(ddof=1)) if len(rmse) > 1 else None,
            "min": float(rmse.min()), "max": float(rmse.max()),
            "pooled": float(np.sqrt(np.sum(windows * rmse**2) / windows.sum())),
            "folds": len(rmse)}


def backtest(forecaster: Forecaster, y, folds: int = 5, *, dates=None, column=None,
             date_column=None, callback=None) -> Backtest:
    """Rolling-origin backtest of `forecaster` on the series `y` (see the module).

    The forecaster's own split of `y` (``floor(train_fraction * T)`` training values,
    ``floor(val_fraction * T)`` validation ones, the rest test) gives the test part,
    cut into `folds` consecutive blocks (the first ``n_test % folds`` one value longer).
    Fold i fits ``type(forecaster)(**forecaster.get_params())`` (verbose off) on the
    values up to the end of block i, its fractions set so that its test part is block i
    and its training part ``round(n_train * first_i / (n_train + n_val))`` of the
    ``first_i`` values before the block, the rest validating: at the first block's
    start these are the forecaster's own counts, so that one fold is one plain fit.
    The forecaster itself is not changed.

    Parameters
    ----------
    forecaster : Forecaster
        The settings to backtest (fitted or not).
    y : array-like of shape (T,), pandas Series or DataFrame
        The series, as for `Forecaster.fit`; `dates`, `column` and `date_column` too.
    folds : int, default 5
        The origins; each block needs at least ``horizon`` values.
    callback : callable, optional
        ``callback(index, fold)`` after each fold's fit (`Fold`), e.g. to show progress.

    Returns
    -------
    Backtest

    Raises
    ------
    TypeError, ValueError
        `folds` not an int >= 1, or more folds than the test part has blocks of
        ``horizon`` values (the message says how many it allows); `y` not a series.
    ForecastError
        A fold's fit failed (its series too short, ...): the message names the fold.
    """
    if not isinstance(forecaster, Forecaster):
        raise TypeError(f"forecaster must be a Forecaster, got {type(forecaster).__name__}")
    folds = check_int(folds, "folds", 1)
    params = {**forecaster.get_params(), "verbose": False}
    horizon = check_int(params["horizon"], "horizon", 1)
    values, dates, _ = dated.read_series(y, dates, column, date_column)
    n_train, n_val = _split(params, len(values))
    n_fit = n_train + n_val
    bounds = _blocks(n_fit, len(values), folds, horizon)
    started = time.perf_counter()
    done = []
    for i, (first, stop) in enumerate(itertools.pairwise(bounds)):
        train = (2 * n_train * first + n_fit) // (2 * n_fit)    # rounded to the nearest
        clone = type(forecaster)(**{**params, **_fractions(train, first - train, stop)})
        fit_started = time.perf_counter()
        try:
            clone.fit(values[:stop], dates=None if dates is None else dates[:stop])
        except ForecastError as e:
            raise ForecastError(f"fold {i + 1} of {folds} (values {first} to {stop - 1}): "
                                f"{e.template}", **e.params) from None
        results = clone.results_
        fold = Fold(index=i, first=first, last=stop - 1, train=train,
                    validation=first - train, windows=results["test_windows"],
                    rmse=results["rmse"], baselines=dict(results["baselines"]),
                    best_baseline=results["best_baseline"],
                    ratio_to_best=results["ratio_to_best"],
                    seconds=time.perf_counter() - fit_started,
                    first_date=None if dates is None else dates[first],
                    last_date=None if dates is None else dates[stop - 1])
        done.append(fold)
        if callback is not None:
            callback(i, fold)
    return Backtest(folds=tuple(done), horizon=horizon,
                    seconds=time.perf_counter() - started)


def _split(params: dict, n: int) -> tuple:
    """(n_train, n_val): the forecaster's split of a series of n values, its fractions
    checked; a ForecastError when n is too short for it."""
    fractions = [check_fraction(params[name], name, allow_zero=False)
                 for name in ("train_fraction", "val_fraction")]
    if sum(fractions) >= 1:
        raise ValueError(f"train_fraction + val_fraction must be < 1 to leave a test part, "
                         f"got {fractions[0]} + {fractions[1]}")
    try:
        n_train, n_val, _ = (len(part) for part in chronological_split(np.empty(n),
                                                                         *fractions))
    except ValueError as e:
        raise ForecastError(f"the series is too short to split: "
                            f"{str(e).replace('{', '{{').replace('}', '}}')}") from None
    return n_train, n_val


def _blocks(n_fit: int, n: int, folds: int, horizon: int) -> list:
    """The bounds of `folds` blocks tiling the test part ``[n_fit, n)``: block i is
    ``[bounds[i], bounds[i + 1])``; a ValueError when one is shorter than `horizon`."""
    n_test = n - n_fit
    most = n_test // horizon
    if folds > most:
        allowed = (f"this series allows at most {most} fold{'s' * (most > 1)}" if most
                   else "no fold fits: use a longer series")
        raise ValueError(f"folds={folds} cuts the test part ({n_test} values, from index "
                         f"{n_fit}) into blocks of {n_test // folds}, fewer than the "
                         f"horizon={horizon} values of one test window; {allowed}")
    sizes = np.full(folds, n_test // folds)
    sizes[:n_test % folds] += 1
    return [n_fit, *(n_fit + np.cumsum(sizes)).tolist()]


def _fractions(n_train: int, n_val: int, n: int) -> dict:
    """train_fraction and val_fraction whose floors (`chronological_split`) give
    exactly n_train and n_val of n values."""
    # A quarter above each count: far from both floors' edges, and their sum stays
    # below 1 for a test part of one value.
    fractions = {"train_fraction": (n_train + 0.25) / n, "val_fraction": (n_val + 0.25) / n}
    split = chronological_split(np.empty(n), *fractions.values())
    assert [len(part) for part in split[:2]] == [n_train, n_val], (split, n_train, n_val, n)
    return fractions
