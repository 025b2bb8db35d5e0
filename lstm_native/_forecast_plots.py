"""The figures of `Forecaster.plot`: forecast.png (the series, its one-step forecasts,
the parts, the prediction intervals and the next values) and loss.png (the losses per
epoch).

Drawing only: the numbers come from the fitted forecaster (its series, forecasts,
intervals and history), whose `plot` method checks it can draw and calls `plot` here.
matplotlib is imported when a plot is drawn (optional, the `forecasting` extra). It
imports no `forecasting`.
"""
from __future__ import annotations

import os

import numpy as np

from . import _intervals
from ._forecast_series import ForecastError
from .data import dated
from .data._checks import check_int


def plot(forecaster, folder: str, *, title: str, x_label: str, y_label: str,
         steps: int):
    """`Forecaster.plot` of a fitted forecaster that keeps its series."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return [], ("matplotlib is not installed: skipped the plots forecast.png and "
                    "loss.png (pip install matplotlib)")

    check_int(steps, "steps", 1)
    values, history = forecaster._values, forecaster.history_
    n_train, n_val = forecaster._split
    t = _plot_times(forecaster._dates, len(values))
    model_name = ("hybrid" if forecaster.method == "hybrid"
                  else type(forecaster._network()).__name__)   # labels the forecasts
    rmse, naive_rmse = forecaster.results_["rmse"], forecaster.results_["naive_rmse"]
    best_epoch = forecaster.best_epoch_
    paths = []

    fig = Figure(figsize=(10, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(t, values, color="black", lw=1.2, label="actual")
    ax.plot(t[forecaster.fitted_time_], forecaster.fitted_[:, 0], color="tab:red", lw=1.2,
            label=f"{model_name}, one step ahead")
    test_start = n_train + n_val
    ax.axvspan(t[n_train], t[test_start], color="tab:orange", alpha=0.08,
               label="validation")
    ax.axvspan(t[test_start], t[-1], color="tab:blue", alpha=0.08,
               label=f"test: RMSE {rmse:.2f}, naive {naive_rmse:.2f}")
    _plot_intervals(forecaster, ax, t, test_start, steps)
    ax.set_title(f"lstm_native forecast: {title}")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.legend(loc="upper left")
    path = os.path.join(folder, "forecast.png")
    fig.savefig(path, dpi=100)
    paths.append(path)

    fig = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(history["epoch"], history["loss"], label="training loss")
    if "val_loss" in history:
        ax.plot(history["epoch"], history["val_loss"], label="validation loss")
    ax.axvline(best_epoch, color="gray", ls=":", label=f"weights kept (epoch {best_epoch})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (MSE, standardised targets)")
    ax.legend()
    path = os.path.join(folder, "loss.png")
    fig.savefig(path, dpi=100)
    paths.append(path)
    return paths, None


def _plot_intervals(forecaster, ax, t: np.ndarray, test_start: int, steps: int) -> None:
    """The intervals of the one-step forecasts over the test part, with their
    coverage, and the next `steps` values with theirs (left out when they leave
    float64's range)."""
    rows = forecaster.fitted_time_ >= test_start
    when, pred = t[forecaster.fitted_time_[rows]], forecaster.fitted_[rows]
    origins = forecaster.fitted_time_[rows] - 1
    shades = dict(zip(_intervals.LEVELS, (0.3, 0.15)))
    bounds = forecaster._interval_bounds(forecaster._values, origins, pred)
    for level, alpha in shades.items():
        lower, upper = bounds[level]
        key = _intervals.label(level)
        covered = forecaster.results_["intervals"][key]["coverage"]
        ax.fill_between(when, lower[:, 0], upper[:, 0], color="tab:red", alpha=alpha,
                        lw=0, label=f"{key}% interval (covers {covered:.0%} of the test)")
    try:
        future = forecaster.predict_interval(steps)
    except ForecastError:
        return
    later = _plot_times(dated.future_dates(forecaster._dates, steps), steps) \
        if forecaster._dates is not None and len(forecaster._dates) >= 2 \
        else np.arange(len(forecaster._values), len(forecaster._values) + steps)
    ax.plot(later, future["forecast"], color="tab:purple", lw=1.2,
            label=f"next {steps} (recursive)")
    for level, alpha in shades.items():
        key = _intervals.label(level)
        ax.fill_between(later, future[f"lower_{key}"], future[f"upper_{key}"],
                        color="tab:purple", alpha=alpha, lw=0)


def _plot_times(dates, n: int) -> np.ndarray:
    """The x values of a plot: the dates (a PeriodIndex as its start times), or the
    steps 0 .. n - 1."""
    if dates is None:
        return np.arange(n)
    if hasattr(dates, "to_timestamp"):   # a pandas PeriodIndex: matplotlib takes times
        dates = dates.to_timestamp()
    return np.asarray(dates)
