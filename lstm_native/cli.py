"""`python -m lstm_native`: the command line. Nothing in the package imports it.

Subcommands:

- ``forecast`` (the default): train a forecaster (ETS or SARIMA corrected by LSTMs, or
  with ``--method lstm`` a network alone; ``--cell`` puts a GRU or an RNN in the LSTM's
  place) on a real series (the built-in airline passengers, or a CSV column), print its
  test RMSE next to the classical baselines', save the model and, with matplotlib,
  plots.
- ``predict``: run a saved forecaster on a series: its error there, and the next values
  past the end; ``--quantize`` runs its networks in int8 or bfloat16.
- ``longlag``: why LSTMs exist: an RNN, a GRU and an LSTM (or some of them, or the LSTM's
  variants, ``--cells``) with the same budget on the adding problem at growing lags, with
  plots of the gradient reaching back and of the LSTM's gates (the experiment itself is
  `lstm_native.longlag`).

Adding a subcommand is one function taking the parsed arguments and returning the exit
code, registered with ``@subcommand(name, help=..., arguments=...)``. It raises `CLIError`
for bad input: an option out of range, a series the forecaster cannot use, a model file
that is not one, an --out that cannot be written, a training that diverges. `main` prints
those (and OSError) as one line on stderr with exit code 2; anything else is a bug and
keeps its traceback.

The forecaster itself (the transform, windows, split, scaling, model, training, scores,
forecasts, plots and its checkpoint) is `lstm_native.forecasting.Forecaster`; ``forecast``
and ``predict`` parse their options, call it and print.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from . import __version__, longlag, openmp_enabled
from .backtest import backtest
from .callbacks import Callback
from .data import list_datasets, load_dataset, read_csv
from .forecasting import (CELLS, MAX_PARAMETERS, MAX_WINDOW_VALUES, METHODS, TRANSFORMS,
                          Forecaster, ForecastError)
from .quantization import PRECISIONS

PROG = "python -m lstm_native"
DEFAULT_OUT = "lstm_native_out"
MODEL_FILE = "model.npz"
TRAIN_FRACTION, VAL_FRACTION = 0.7, 0.15
SERIES_DATASETS = ("airline", "sine", "sines")  # the built-in data that are one series
# The options' maxima, shown in --help: far inside what the library accepts, and past any
# size a forecaster of one series has a use for (the parameters and the windows' values
# are capped by `lstm_native.forecasting`).
MAX_HIDDEN, MAX_LAYERS, MAX_THREADS, MAX_STEPS = 4096, 64, 256, 10_000
MAX_MEMBERS, MAX_SEASON, MAX_FOLDS = 100, 10_000, 1000


class CLIError(Exception):
    """A user error: printed as one line, exit code 2."""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse with its errors on one line (the message and where the help is, no usage
    block), exit code 2 as argparse's own."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- subcommand registry ---------------------------------------------------------------

@dataclass
class _Subcommand:
    name: str
    run: object
    help: str
    arguments: object


_SUBCOMMANDS: dict[str, _Subcommand] = {}


def subcommand(name: str, *, help: str, arguments=None):
    """Register `run(args) -> int` as the subcommand `name`; `arguments(parser)` adds its
    options."""
    def register(run):
        _SUBCOMMANDS[name] = _Subcommand(name, run, help, arguments)
        return run
    return register


# -- argument types ----------------------------------------------------------------------

def _int_in(minimum: int, maximum: int | None = None):
    """An argparse type: an integer >= minimum, and <= maximum when given."""
    expected = (f"an integer >= {minimum}" if maximum is None
                else f"an integer in {minimum} .. {maximum}")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value
    return parse


_positive_int = _int_in(1)
_nonnegative_int = _int_in(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _add_data_arguments(p, default_data: str | None) -> None:
    what = "default: the one the model was trained on" if default_data is None else \
        f"default: {default_data}"
    p.add_argument("--data", default=default_data, metavar="NAME|CSV",
                   help=f"a built-in series ({', '.join(SERIES_DATASETS)}) or a CSV file "
                        f"with a header row ({what})")
    p.add_argument("--column", default=None,
                   help="the CSV column to forecast, by name or 0-based index (default: "
                        "the last column besides the dates)")
    p.add_argument("--date-column", default=None, metavar="NAME|INDEX",
                   help="the CSV column of dates, by name or 0-based index (default: the "
                        "first column whose values all parse as dates, trying first names "
                        "like date, month, year or ds; numbers count as dates only there: "
                        "years, YYYYMM, YYYYMMDD)")


def _add_distributed_argument(p) -> None:
    p.add_argument("--distributed", action="store_true",
                   help="under 'mpiexec -n N', train data-parallel over the N ranks (each "
                        "its share of every batch, gradients averaged: the one-process "
                        "run up to rounding); only rank 0 prints and writes files; needs "
                        "mpi4py (without MPI, or with one rank, a plain run)")


def _add_quantize_argument(p, when: str) -> None:
    p.add_argument("--quantize", choices=PRECISIONS, default=None,
                   help=f"run the networks in int8 or bfloat16 (lstm_native.quantize), "
                        f"quantized {when}")


def _quantized_line(precision: str, rmse: float, float_rmse: float, where: str,
                    dtype: str) -> str:
    """The quantized networks' RMSE beside the float ones'."""
    change = f" ({rmse / float_rmse - 1:+.3%})" if float_rmse > 0 else ""
    return (f"networks in {precision}: RMSE {rmse:.4g} {where} against {float_rmse:.4g} "
            f"in {dtype}{change}")


def _add_output_arguments(p, json_holds: str = "the results",
                          verbose_shows: str = "the progress per epoch") -> None:
    """--json, and --verbose / --quiet, worded for the subcommand."""
    p.add_argument("--json", action="store_true",
                   help=f"end with one line holding {json_holds} as a JSON object")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--verbose", dest="verbose", action="store_true", default=True,
                       help=f"show the settings and {verbose_shows} (default)")
    group.add_argument("--quiet", dest="verbose", action="store_false",
                       help="print the results only")


# -- series ------------------------------------------------------------------------------

@dataclass
class _Series:
    values: np.ndarray              # (T,) float64
    dates: object                   # (T,) datetime64 or a pandas DatetimeIndex, or None
    data: str                       # the --data to give again (a name or an absolute path)
    column: str | None
    label: str                      # for the messages and plots
    x_label: str = "time step"      # the plots' axes
    y_label: str = "value"
    date_column: str | None = None  # the --date-column given, to give again


def _load_series(data: str, column: str | None, date_column: str | None = None) -> _Series:
    """The series named by --data/--column/--date-column, or a CLIError saying what is
    wrong."""
    name = data.strip().lower()
    if name in list_datasets():
        if name not in SERIES_DATASETS:
            raise CLIError(f"--data {data!r} is a built-in task (x, y pairs), not a series; "
                           f"use one of {', '.join(SERIES_DATASETS)} or a CSV file")
        for option, value in (("--column", column), ("--date-column", date_column)):
            if value is not None:
                raise CLIError(f"{option} applies to CSV files; --data {data!r} is a "
                               "built-in series")
        if name == "airline":
            values, dates = load_dataset("airline", return_dates=True)
            return _Series(values, dates, "airline", None,
                           "airline passengers 1949-1960 (thousands, monthly)",
                           "month", "passengers (thousands)")
        return _Series(load_dataset(name), None, name, None, f"the built-in {name!r} series")
    if not os.path.isfile(data):
        what = "a directory" if os.path.isdir(data) else "no such file"
        raise CLIError(f"--data {data!r}: not a built-in series ({', '.join(SERIES_DATASETS)}) "
                       f"and not a CSV file ({what})")
    path = os.path.abspath(data)
    try:
        read = read_csv(path, column, date_column=date_column)
    except (ValueError, TypeError, OSError, ImportError) as e:
        raise CLIError(f"--data {data!r}: {e}") from None
    return _Series(read.values, read.dates, path, column,
                   f"{os.path.basename(path)}, column {read.column!r}",
                   x_label=read.date_column or "time step", y_label=read.column,
                   date_column=date_column)


def _date_labels(dates) -> list[str]:
    """The dates as text: pandas timestamps without their time when it is midnight
    throughout ("2020-03-31"), numpy dates and pandas periods in their own unit."""
    stamps = [d for d in dates if isinstance(d, datetime.datetime)]   # pandas Timestamps
    if len(stamps) < len(dates):
        return [str(d) for d in dates]
    whole_days = all(d.hour == d.minute == d.second == 0 for d in stamps)
    return [d.strftime("%Y-%m-%d" if whole_days else "%Y-%m-%d %H:%M") for d in stamps]


# -- the forecaster's errors ----------------------------------------------------------------

def _message(error: ForecastError, label: str | None = None) -> str:
    """A ForecastError's message with its parameters spelled as this command's options
    (``--lookback 12``, ``--model 'path'``) and the series as `label`."""
    words = {"y": label, "this": "this command", "saver": f"'{PROG} forecast'"}

    def spell(name, value):
        if name in words:
            return words[name]
        option = "--model" if name == "path" else "--" + name.replace("_", "-")
        return option if value is None else f"{option} {value}"
    return error.render(spell)


# -- forecast ------------------------------------------------------------------------------

def _forecast_arguments(p) -> None:
    _add_data_arguments(p, "airline")
    p.add_argument("--method", choices=METHODS, default="hybrid",
                   help="lstm: a recurrent network on the series' changes; hybrid: ETS or "
                        "SARIMA (the better on the validation part) corrected by an ensemble "
                        "of LSTMs, combined with ETS and SARIMA by the median; needs "
                        "statsmodels (default: hybrid)")
    p.add_argument("--members", type=_int_in(1, MAX_MEMBERS), default=None,
                   help=f"networks trained from successive seeds whose median forecast "
                        f"counts, at most {MAX_MEMBERS} (default: 5 for hybrid, 1 for lstm)")
    p.add_argument("--season", type=_int_in(1, MAX_SEASON), default=None,
                   help="the season in steps, for the seasonal baselines and models "
                        "(default: from the dates' frequency, 12 for monthly, 4 for "
                        "quarterly, 52 for weekly...; 1 without dates). Give it for a cycle "
                        "a calendar does not show, e.g. 11 for yearly sunspots")
    p.add_argument("--lookback", type=_positive_int, default=12,
                   help=f"past steps the model reads; all the windows together may hold at "
                        f"most {MAX_WINDOW_VALUES:,} values (default: 12)")
    p.add_argument("--horizon", type=_positive_int, default=1,
                   help="future steps it predicts at once (default: 1)")
    p.add_argument("--cell", type=str.lower, choices=tuple(CELLS), default="lstm",
                   help="the recurrent layer: lstm, gru (torch's, reset_after) or rnn "
                        "(Elman, tanh) (default: lstm)")
    p.add_argument("--hidden", type=_int_in(1, MAX_HIDDEN), default=32,
                   help=f"hidden units of each recurrent layer, at most {MAX_HIDDEN}; the "
                        f"model may have at most {MAX_PARAMETERS:,} parameters (default: 32)")
    p.add_argument("--layers", type=_int_in(1, MAX_LAYERS), default=1,
                   help=f"stacked recurrent layers, at most {MAX_LAYERS} (default: 1)")
    p.add_argument("--epochs", type=_positive_int, default=300,
                   help="most passes over the training windows (default: 300)")
    p.add_argument("--patience", type=_nonnegative_int, default=30,
                   help="stop after this many epochs without a better validation loss and "
                        "keep the best weights; 0 turns early stopping off (default: 30)")
    p.add_argument("--batch-size", type=_positive_int, default=16,
                   help="windows per gradient step (default: 16)")
    p.add_argument("--lr", type=_positive_float, default=0.003,
                   help="Adam's learning rate (default: 0.003)")
    p.add_argument("--transform", choices=("auto",) + TRANSFORMS, default="auto",
                   help="model the series as log-differences, differences or levels "
                        "(default: auto, log-diff for a positive series, else diff)")
    p.add_argument("--seed", type=_nonnegative_int, default=0,
                   help="seed of the weights and the shuffling (default: 0)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="the model's precision (default: float32)")
    p.add_argument("--threads", type=_int_in(0, MAX_THREADS), default=1,
                   help=f"OpenMP threads of the recurrent kernels, at most {MAX_THREADS}; 0 = "
                        "all cores (default: 1, the fastest for batches this small)")
    _add_quantize_argument(p, "after training (the results, model, plots and backtest are "
                              "then the quantized networks'; the float ones' test RMSE is "
                              "printed beside)")
    p.add_argument("--backtest", type=_int_in(0, MAX_FOLDS), default=5, metavar="K",
                   help="then a rolling-origin backtest: the test part cut into K blocks, "
                        "the forecaster refitted before each on every earlier value "
                        "(expanding window) and scored on it with the baselines; costs K "
                        f"more fits; at most {MAX_FOLDS}, 0 = none (default: 5)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"where the model and plots go (default: ./{DEFAULT_OUT})")
    _add_distributed_argument(p)
    _add_output_arguments(p)


def _make_out_dir(out: str) -> None:
    """Create --out before training, so that a path that cannot be written fails fast."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"--out {out!r}: a file, not a directory")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise CLIError(f"--out {out!r}: cannot create the directory: {e}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise CLIError(f"--out {out!r}: the directory is not writable")


class _Announce(Callback):
    """Before the first epoch (the model built, the series windowed): create --out, so
    that a path that cannot be written fails before training, and say what trains."""

    def __init__(self, args, series: _Series, forecaster: Forecaster, say):
        self.args, self.series, self.forecaster, self.say = args, series, forecaster, say

    def on_train_begin(self, run) -> None:
        args, f, say = self.args, self.forecaster, self.say
        if args.root:
            _make_out_dir(args.out)
        counts = f.n_windows_
        say(f"lstm_native {__version__} (OpenMP {'on' if openmp_enabled() else 'off'}): "
            f"forecasting {self.series.label}, {len(self.series.values)} values")
        say(f"model: {f.describe()}")
        say(f"windows: {counts[0]} train, {counts[1]} validation, {counts[2]} test "
            f"(chronological split {TRAIN_FRACTION:.0%}/{VAL_FRACTION:.0%}/"
            f"{1 - TRAIN_FRACTION - VAL_FRACTION:.0%}); Adam lr {args.lr}, batch "
            f"{args.batch_size}, up to {args.epochs} epochs")


def _baseline_lines(results: dict) -> list[str]:
    """The baselines' errors on the test windows and our ratio to the best of them."""
    scores, models = results["baselines"], results["baseline_models"]
    width = max(map(len, scores))
    lines = ["baselines on the same windows (fitted on the values before the test part, "
             "then run over it without refitting):"]
    lines += [f"  {name:<{width}}  RMSE {rmse:.2f}"
              + (f"  {models[name]}" if models[name] not in (name, "naive") else "")
              for name, rmse in scores.items()]
    best, ratio = results["best_baseline"], results["ratio_to_best"]
    if ratio is None:
        lines.append(f"no ratio to the best baseline: {best} is exact on the test part")
    else:
        verdict = "at least as accurate" if ratio <= 1 else "LESS accurate"
        lines.append(f"ratio to the best baseline ({best}): {ratio:.3f}, {verdict}")
    return lines


def _interval_line(results: dict) -> str:
    """The intervals' coverage of the test values next to their nominal levels."""
    shares = [f"{level}% covers {scores['coverage']:.0%}" + (
        "" if scores["width"] is not None else " (unbounded: too few validation windows)")
        for level, scores in results["intervals"].items()]
    return (f"prediction intervals (split conformal on the {results['calibration_windows']} "
            "latest errors: the validation windows', then the test windows' as observed), "
            f"on the {results['test_windows']} test windows: " + ", ".join(shares))


@subcommand("forecast", arguments=_forecast_arguments,
            help="train a forecaster (by default ETS or SARIMA corrected by LSTMs) on a "
                 "series and compare it with the classical baselines (the default)")
def forecast(args) -> int:
    started = time.perf_counter()
    say = print if args.verbose else (lambda *a, **k: None)
    series = _load_series(args.data, args.column, args.date_column)
    forecaster = Forecaster(
        lookback=args.lookback, horizon=args.horizon, cell=args.cell, hidden=args.hidden,
        layers=args.layers, epochs=args.epochs, patience=args.patience,
        batch_size=args.batch_size, lr=args.lr, transform=args.transform, seed=args.seed,
        dtype=args.dtype, n_threads=args.threads or None, train_fraction=TRAIN_FRACTION,
        val_fraction=VAL_FRACTION, verbose=args.verbose, method=args.method,
        members=args.members, season=args.season, distributed=args.distributed)
    try:
        forecaster.fit(series.values, dates=series.dates,
                       callbacks=[_Announce(args, series, forecaster, say)])
    except ForecastError as e:
        raise CLIError(_message(e, series.label)) from None
    results = forecaster.results_
    epochs_run, best_epoch = results["epochs"], results["best_epoch"]
    members = len(getattr(forecaster.model_, "members", (0,)))
    if args.patience:
        how = (f"stopped after epoch {epochs_run}" if forecaster.history_.stopped_epoch
               else f"ran {epochs_run} epochs")
        first = f"network 1 of {members} (the others trained silently): " * (members > 1)
        say(f"{first}{how}; kept the weights of epoch {best_epoch} (best validation loss "
            f"{forecaster.best_val_loss_:.4g})")
    float_rmse = None
    if args.quantize:
        float_rmse = results["rmse"]
        forecaster = forecaster.quantize(args.quantize)
        results = forecaster.results_

    model_path = os.path.join(args.out, MODEL_FILE)
    plots, skipped = [], None
    try:
        if args.root:   # the other ranks of a --distributed run hold the same model
            forecaster.save(model_path, source={"data": series.data,
                                                "column": series.column,
                                                "date_column": series.date_column})
            plots, skipped = forecaster.plot(args.out, title=series.label,
                                             x_label=series.x_label, y_label=series.y_label)
    except OSError as e:
        raise CLIError(f"--out {args.out!r}: cannot write: {e}") from None
    rmse, naive_rmse = results["rmse"], results["naive_rmse"]
    unit = " (in the series' units)" if series.data != "airline" else " (thousands of passengers)"
    if naive_rmse > 0:
        ratio = (f"ratio {rmse / naive_rmse:.2f} "
                 f"({'better' if rmse < naive_rmse else 'NOT better'} than naive)")
    else:
        ratio = "no ratio: the naive forecast is exact on the test part"
    print(f"test RMSE {rmse:.2f}{unit} over {results['test_windows']} windows; naive "
          f"persistence forecast RMSE {naive_rmse:.2f}; {ratio}")
    if args.quantize:
        print(_quantized_line(args.quantize, rmse, float_rmse, "on the test windows",
                              args.dtype))
    for line in _baseline_lines(results):
        print(line)
    print(_interval_line(results))
    trained = (f"{members} networks ({epochs_run} epochs for the first)" if members > 1
               else f"{epochs_run} epochs")
    print(f"trained {trained} in {results['seconds']:.1f} s; model saved to {model_path}")
    if plots:
        print("plots: " + ", ".join(plots))
    if skipped:
        print(skipped)
    tested = _backtest(args, forecaster, series, say) if args.backtest else None
    if args.json:
        quantized = ({"quantized": args.quantize, "float_rmse": float_rmse}
                     if args.quantize else {})
        print(json.dumps({**results, **quantized, "backtest": tested,
                          "model_path": model_path, "plots": plots,
                          "method": args.method, "cell": args.cell, "data": series.data,
                          "column": series.column,
                          "total_seconds": time.perf_counter() - started}))
    return 0


def _backtest(args, forecaster: Forecaster, series: _Series, say) -> dict:
    """Run and print the rolling-origin backtest of --backtest; its `to_dict`."""
    k = args.backtest
    say(f"backtest: the test part in {k} blocks, the forecaster refitted before each on "
        "every earlier value (expanding window) and scored on it:")

    def when(fold):
        if fold.first_date is None:
            return f"values {fold.first}..{fold.last}"
        first, last = _date_labels([fold.first_date, fold.last_date])
        return f"{first}..{last}"

    def show(i, fold):
        ratio = "" if fold.ratio_to_best is None else f", ratio {fold.ratio_to_best:.3f}"
        say(f"  fold {i + 1}/{k}  {when(fold)}  {fold.windows} windows  RMSE "
            f"{fold.rmse:.4g}; {fold.best_baseline} {fold.baselines[fold.best_baseline]:.4g}"
            f"{ratio}  ({fold.seconds:.1f} s)")

    try:
        result = backtest(forecaster, series.values, k, dates=series.dates, callback=show)
    except ForecastError as e:
        raise CLIError(_message(e, series.label)) from None
    except ValueError as e:   # more folds than the test part has blocks
        raise CLIError(f"--backtest {k}: {e}") from None
    summary = result.summary()
    width = max(4, *map(len, summary["baselines"]))

    def row(name, stats):
        spread = "" if stats["std"] is None else f" ± {stats['std']:.4g}"
        return (f"  {name:<{width}}  {stats['mean']:.4g}{spread} [{stats['min']:.4g}, "
                f"{stats['max']:.4g}]  pooled {stats['pooled']:.4g}")

    print(f"backtest over {k} origins ({summary['windows']} windows, {k} refits in "
          f"{result.seconds:.1f} s), RMSE mean ± std [min, max] over the folds:")
    print(row("ours", summary["model"]))
    for name, stats in summary["baselines"].items():
        print(row(name, stats))
    ratio = summary["mean_ratio_to_best"]
    print(f"ours at least as accurate as the best baseline in "
          f"{summary['at_least_as_accurate']} of {k} folds"
          + ("" if ratio is None else f"; mean ratio to it {ratio:.3f}"))
    return result.to_dict()


# -- predict -------------------------------------------------------------------------------

def _predict_arguments(p) -> None:
    p.add_argument("--model", default=os.path.join(DEFAULT_OUT, MODEL_FILE), metavar="FILE",
                   help=f"a model saved by forecast (default: ./{DEFAULT_OUT}/{MODEL_FILE})")
    _add_data_arguments(p, None)
    p.add_argument("--steps", type=_int_in(1, MAX_STEPS), default=12,
                   help=f"values to forecast past the end of the series, at most {MAX_STEPS} "
                        "(default: 12)")
    _add_quantize_argument(p, "as they load (default: as saved); the RMSE of the networks "
                              "as saved is printed beside")
    _add_output_arguments(p)


def _load_forecaster(path: str) -> Forecaster:
    """The forecaster of a file forecast saved (`Forecaster.load`), or a CLIError."""
    try:
        return Forecaster.load(path)
    except ForecastError as e:
        raise CLIError(_message(e)) from None
    except (ValueError, OSError) as e:  # the checkpoint's errors name the file
        raise CLIError(f"--model: {e}") from None


@subcommand("predict", arguments=_predict_arguments,
            help="run a saved forecaster on a series: its error there and the next values")
def predict_command(args) -> int:
    forecaster = _load_forecaster(args.model)
    settings = forecaster.settings_
    saved = forecaster   # the networks as saved, when --quantize changes them
    if args.quantize:
        if forecaster.quantized is not None:
            raise CLIError(f"--quantize {args.quantize}: --model {args.model!r} holds networks "
                           f"quantized to {forecaster.quantized} already")
        forecaster = forecaster.quantize(args.quantize)
    if args.data is None:
        data = settings.get("data")
        if data is None:
            raise CLIError(f"--model {args.model!r} does not say which series it was "
                           "trained on (saved by the library without a source): give --data")
        column = settings.get("column") if args.column is None else args.column
        date_column = (settings.get("date_column") if args.date_column is None
                       else args.date_column)
    else:
        data, column, date_column = args.data, args.column, args.date_column
    series = _load_series(data, column, date_column)
    values = series.values
    try:
        # The error on every window of the series (in-sample where the model trained on
        # it), then the next values past the end.
        scores = forecaster.score(values, span="all")
        saved_rmse = saved.score(values, span="all")["rmse"] if args.quantize else None
        if calibrated := forecaster.calibration_ is not None:
            intervals = forecaster.predict_interval(args.steps, values, dates=series.dates)
            future = intervals.pop("forecast")
        else:   # a file written before the calibration was kept
            future, intervals = forecaster.predict(args.steps, values, dates=series.dates), {}
    except ForecastError as e:
        raise CLIError(_message(e, series.label)) from None
    dates = forecaster.future_dates(args.steps, values, dates=series.dates)
    labels = (_date_labels(dates) if dates is not None
              else [f"t+{k + 1}" for k in range(args.steps)])

    if args.verbose:
        print(f"model {args.model}: {forecaster.describe()}; {series.label}, {len(values)} "
              "values")
    print(f"on the series: RMSE {scores['rmse']:.2f} over {scores['windows']} windows (naive "
          f"persistence {scores['naive_rmse']:.2f}; the windows the model trained on are "
          "included)")
    if args.quantize:
        print(_quantized_line(args.quantize, scores["rmse"], saved_rmse, "on the series",
                              saved.dtype))
    print(f"forecast of the next {args.steps} values (recursive, one step at a time)"
          + (", with prediction intervals (split conformal, widening with the steps):"
             if calibrated else " (no intervals: the model file predates them):"))
    levels = [key[len("lower_"):] for key in intervals if key.startswith("lower_")]
    cells = {level: [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in
                     zip(intervals[f"lower_{level}"], intervals[f"upper_{level}"])]
             for level in levels}
    width = {level: max(len(f"{level}% interval"), *map(len, cells[level]))
             for level in levels}
    if levels:
        print(f"  {'':>10}  {'forecast':>10}" + "".join(
            f"  {f'{level}% interval':>{width[level]}}" for level in levels))
    for k, (label, value) in enumerate(zip(labels, future)):
        print(f"  {label:>10}  {value:10.2f}" + "".join(
            f"  {cells[level][k]:>{width[level]}}" for level in levels))
    if args.json:
        # JSON has no infinity: an unbounded side is null.
        bounds = {level: {side: [float(v) if math.isfinite(v) else None
                                 for v in intervals[f"{side}_{level}"]]
                          for side in ("lower", "upper")} for level in levels}
        print(json.dumps({"forecast": [float(v) for v in future], "labels": labels,
                          "intervals": bounds,
                          "rmse": scores["rmse"], "naive_rmse": scores["naive_rmse"],
                          "windows": scores["windows"], "model_path": args.model,
                          "cell": settings["cell"], "data": series.data,
                          "quantized": forecaster.quantized,
                          **({"float_rmse": saved_rmse} if args.quantize else {})}))
    return 0


# -- longlag -------------------------------------------------------------------------------

def _lags(text: str) -> list[int]:
    try:
        lags = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 2, got "
                                         f"{text!r}") from None
    if not lags or min(lags) < 2:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 2, got "
                                         f"{text!r}")
    return sorted(set(lags))


def _longlag_arguments(p) -> None:
    def seeds(text: str) -> list[int]:
        try:
            return longlag.parse_seeds(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    def cells(text: str) -> list[str]:
        try:
            return longlag.parse_cells(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    default = ",".join(label.lower() for label in longlag.CELLS)
    variants = ", ".join(f"{name} ({_options(spec)})" for name, spec in
                         longlag.REGISTRY.items() if spec.label not in longlag.CELLS)
    p.add_argument("--cells", type=cells, default=list(longlag.CELLS), metavar="CELL,...",
                   help=f"the recurrent layers to compare, side by side in this order: "
                        f"some of {default} (the default) and the LSTM's variants "
                        f"{variants}; any case; the gates plot is the plain lstm's")
    p.add_argument("--lags", type=_lags, default=[20, 50, 100], metavar="T,T,...",
                   help="sequence lengths of the adding problem; the first marked value is "
                        "held T/2 to T steps (default: 20,50,100)")
    p.add_argument("--hidden", type=_positive_int, default=32,
                   help="hidden units of every model (default: 32)")
    p.add_argument("--epochs", type=_positive_int, default=20,
                   help="passes over the training sequences (default: 20)")
    p.add_argument("--samples", type=_positive_int, default=10000,
                   help="training sequences per lag (default: 10000; 1000 more test)")
    p.add_argument("--batch-size", type=_positive_int, default=32,
                   help="sequences per gradient step (default: 32)")
    p.add_argument("--lr", type=_positive_float, default=0.005,
                   help="Adam's initial learning rate, cosine-annealed to 0 (default: 0.005)")
    p.add_argument("--seeds", "--seed", dest="seeds", type=seeds, default=[0], metavar="S",
                   help="seed of the data, the weights and the shuffling, or several: a "
                        "range (0-4) or a list (0,2,5), each trained in turn; the table and "
                        "the gradient plot then give the median and range over them "
                        "(default: 0)")
    p.add_argument("--threads", type=_nonnegative_int, default=1,
                   help="OpenMP threads of the recurrent kernels; 0 = all cores (default: "
                        "1, the fastest for batches this small)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"where the plots go (default: ./{DEFAULT_OUT})")
    _add_distributed_argument(p)
    _add_output_arguments(p, json_holds="the table, settings and gradient figures, per seed",
                          verbose_shows="a line per trained model")


def _yes(solved: bool) -> str:
    return "yes" if solved else "no"


def _options(spec) -> str:
    """"peepholes=True": the options a `longlag.Cell` gives its layer."""
    return ", ".join(f"{name}={value!r}" for name, value in spec.options.items())


def _describe_cells(cells) -> str:
    """"RNN(tanh), GRU, LSTM and LSTM-CIFG(input_forget=True)": the models of --cells
    (labels of `longlag.REGISTRY`), as the header names them."""
    names = []
    for label in cells:
        spec = longlag.cell_spec(label)
        names.append("RNN(tanh)" if label == "RNN" else
                     f"{label}({_options(spec)})" if spec.options else label)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


@subcommand("longlag", arguments=_longlag_arguments,
            help="why LSTMs exist: an RNN, a GRU and an LSTM with the same budget on the "
                 "adding problem at growing lags")
def longlag_command(args) -> int:
    started = time.perf_counter()
    say = print if args.verbose else (lambda *a, **k: None)
    seeds, longest, cells = args.seeds, args.lags[-1], args.cells
    several = len(seeds) > 1
    setting = longlag.setting(args.threads or None)
    every = "both" if len(cells) == 2 else "all" if len(cells) > 2 else "it"
    say(f"lstm_native {__version__} ({setting}): the adding problem at T = "
        f"{', '.join(map(str, args.lags))}; {_describe_cells(cells)}, {args.hidden} hidden "
        f"each, -> last step -> Linear(1)")
    say(f"same budget for {every}: {args.samples} training sequences, {args.epochs} "
        f"epoch{'s' * (args.epochs > 1)}, batch {args.batch_size}, Adam lr {args.lr} "
        f"(cosine-annealed to 0), gradients clipped to norm {longlag.CLIP_NORM:g}, "
        f"seed{'s' * several} {', '.join(map(str, seeds))}; tested on {longlag.N_TEST} new "
        f"sequences")
    say(f"always answering 1.0 scores MSE {longlag.TRIVIAL_MSE:.3f}; solved = MSE < "
        f"{longlag.SOLVED_MSE:.4f} (ten times better)")
    mse = longlag.MSE_FORMAT
    name_width = max(4, *map(len, cells))
    runs = {}       # (seed, T, cell) -> LongLagRun
    curves = {}     # (cell, when) -> one gradient curve per seed
    for seed in seeds:
        for seq_len in args.lags:
            for kind in cells:
                run = longlag.train_model(kind, seq_len, hidden=args.hidden,
                                          samples=args.samples, epochs=args.epochs,
                                          batch_size=args.batch_size, lr=args.lr, seed=seed,
                                          n_threads=args.threads or None,
                                          distributed=args.distributed)
                runs[seed, seq_len, kind] = run
                say(f"  {f'seed {seed}  ' * several}T = {seq_len:>3}  "
                    f"{kind:<{name_width}}  test MSE "
                    f"{run.test_mse:{mse}}  (training loss {run.loss[0]:{mse}} -> "
                    f"{run.loss[-1]:{mse}}, {run.seconds:.1f} s)")
        for key, curve in longlag.gradient_curves(
                {k: runs[seed, longest, k] for k in cells}, seed).items():
            curves.setdefault(key, []).append(curve)
    curves = {key: np.array(rows) for key, rows in curves.items()}
    reach = {f"{kind}_{when}": rows[:, -1] for (kind, when), rows in curves.items()}
    plots, skipped, unit = [], None, None
    if args.root:   # the other ranks of a --distributed run hold the same models
        plots, skipped, unit = longlag.make_plots(
            args.out, {k: runs[seeds[0], longest, k] for k in cells}, curves, seeds,
            setting)

    def cell(values, fmt):
        if not several:
            return format(values[0], fmt)
        median, low, high = longlag.spread(values)
        return f"{median:{fmt}} [{low:{fmt}}, {high:{fmt}}]"

    def solved(flags):
        return _yes(flags[0]) if not several else f"{sum(flags)}/{len(flags)}"

    # A column as wide as its figures or its heading, whichever is wider.
    width = {kind: max(24 if several else 8, len(f"{kind} MSE")) for kind in cells}
    if several:
        print(f"median [range] over seeds {', '.join(map(str, seeds))}:")
    print(f"{'T':>4}  {'trivial':>8}" + "".join(
        f"  {f'{kind} MSE':>{width[kind]}}  {'solved':>6}" for kind in cells))
    table = []
    for seq_len in args.lags:
        row = {"lag": seq_len,
               "trivial_mse": [runs[s, seq_len, cells[0]].trivial_mse for s in seeds]}
        for kind in cells:
            done = [runs[s, seq_len, kind] for s in seeds]
            row[kind] = {"test_mse": [r.test_mse for r in done],
                         "solved": [r.solved for r in done],
                         "seconds": [r.seconds for r in done]}
        table.append(row)
        print(f"{seq_len:>4}  {longlag.spread(row['trivial_mse'])[0]:>8.4f}" + "".join(
            f"  {cell(row[kind]['test_mse'], mse):>{width[kind]}}  "
            f"{solved(row[kind]['solved']):>6}" for kind in cells))
    print(f"gradient reaching back {longest - 1} steps (T = {longest}), as a fraction of "
          f"the one at the loss (median over sequences"
          f"{'; median [range] over the seeds' * several}): " + "; ".join(
              f"{kind} {cell(reach[f'{kind}_trained'], '.2g')} trained, "
              f"{cell(reach[f'{kind}_initial'], '.2g')} initial" for kind in cells))
    seconds = time.perf_counter() - started
    print(f"total {seconds:.1f} s")
    if plots:
        print("plots: " + ", ".join(plots))
    if skipped:
        print(skipped)
    if args.json:
        settings = {name: getattr(args, name) for name in
                    ("cells", "lags", "hidden", "epochs", "samples", "batch_size", "lr",
                     "seeds", "threads")}
        print(json.dumps({
            "cells": cells, "table": table, "trivial_mse": longlag.TRIVIAL_MSE,
            "solved_below": longlag.SOLVED_MSE,
            "gradient_reach": {k: v.tolist() for k, v in reach.items()},
            "gradient_curves": {f"{kind}_{when}": rows.tolist()
                                for (kind, when), rows in curves.items()},
            "gates": None if unit is None else {"seed": seeds[0], "lag": longest, **unit},
            "plots": plots, "settings": {**settings, "setting": setting},
            "total_seconds": seconds}))
    return 0


# -- main ----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog=PROG,
        description="Train and run recurrent (LSTM, GRU, RNN) forecasters built on "
                    "lstm_native. Without a "
                    "subcommand, runs 'forecast' (options after it go to forecast).")
    parser.add_argument("--version", action="version", version=f"lstm_native {__version__}")
    subparsers = parser.add_subparsers(dest="command", title="subcommands", metavar="COMMAND")
    for cmd in _SUBCOMMANDS.values():
        sub = subparsers.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        if cmd.arguments is not None:
            cmd.arguments(sub)
        sub.set_defaults(run=cmd.run)
    return parser


def main(argv=None) -> int:
    """Run the command line with `argv` (default: sys.argv[1:]); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "forecast")
    parser = build_parser()
    args = parser.parse_args(argv)
    distributed = _distributed(args)
    args.root = distributed is None or distributed.rank() == 0
    # Only the errors of bad input become a message; anything else is a bug and keeps
    # its traceback (and under MPI, `fit`'s hook aborts the job).
    try:
        if args.root:
            return args.run(args)
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            return args.run(args)   # only rank 0 prints
    except (CLIError, OSError) as e:
        print(f"{PROG} {args.command}: error: {e}", file=sys.stderr)
        if distributed is not None:
            distributed.abort(2)   # the other ranks may wait for this one
        return 2


def _distributed(args):
    """`lstm_native.distributed` for a --distributed run, else None (it imports mpi4py:
    only when asked for)."""
    if not getattr(args, "distributed", False):
        return None
    from . import distributed
    return distributed
