"""`python -m lstm_native`: the command line. Nothing in the package imports it.

Subcommands:

- ``forecast`` (the default): train a forecaster (an LSTM, or with ``--cell`` a GRU or an
  RNN) on a real series (the built-in airline passengers, or a CSV column), print its
  test RMSE next to the naive persistence forecast's, save the model and, with
  matplotlib, plots.
- ``predict``: run a saved forecaster on a series: its error there, and the next values
  past the end.
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

The forecaster models the series as a stationary one: the log (when every value is
positive) is differenced, the changes are standardised with statistics of the training
part only, and a recurrent layer (`CELLS`: an LSTM by default) reads the last `lookback`
changes to predict the next `horizon` ones; a forecast is the last observed value plus
the predicted changes. The series is split in time (70% train, 15% validation, 15%
test); a window belongs to the part its targets fall in, its inputs being observed
values before them.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from . import (GRU, LSTM, RNN, EarlyStopping, LastStep, Linear, Sequential, __version__,
               evaluate, fit, load_checkpoint, longlag, losses, openmp_enabled, optim,
               predict, save_checkpoint)
from .data import (StandardScaler, chronological_split, forecast_recursive, list_datasets,
                   load_csv, load_dataset, make_windows, persistence_forecast,
                   scaler_from_state)

PROG = "python -m lstm_native"
DEFAULT_OUT = "lstm_native_out"
MODEL_FILE = "model.npz"
TRAIN_FRACTION, VAL_FRACTION = 0.7, 0.15
SERIES_DATASETS = ("airline", "sine", "sines")  # the built-in data that are one series
#: The forecaster's recurrent layer by --cell, at torch's defaults (the GRU's
#: reset_after=True, the RNN's tanh), and its blocks of weights per layer (gates).
CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
_GATES = {"lstm": 4, "gru": 3, "rnn": 1}
# The options' maxima, shown in --help: far inside what the library accepts, and past any
# size a forecaster of one series has a use for. Parameters: 1 GB of float32 weights, four
# with the gradients and Adam's two moments.
MAX_HIDDEN, MAX_LAYERS, MAX_THREADS, MAX_STEPS = 4096, 64, 256, 10_000
MAX_PARAMETERS = 250_000_000
# Values in all the windows of a series: they are held several times (scaled, as levels,
# in the model's precision), about 1 GB each in float64.
MAX_WINDOW_VALUES = 2**27
RESCALE = "rescale the series (divide it by a power of ten)"


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
                        "the last column)")


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
    dates: np.ndarray | None        # (T,) datetime64, or None
    data: str                       # the --data to give again (a name or an absolute path)
    column: str | None
    label: str                      # for the messages and plots
    x_label: str = "time step"      # the plots' axes
    y_label: str = "value"


def _csv_columns(path: str) -> list[str]:
    """The header of a CSV file (after `#` comment lines), [] if unreadable."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for line in fh:
                if line.strip() and not line.lstrip().startswith("#"):
                    return [h.strip() for h in next(csv.reader([line]))]
    except (OSError, UnicodeDecodeError, csv.Error):
        pass
    return []


def _load_series(data: str, column: str | None) -> _Series:
    """The series named by --data/--column, or a CLIError saying what is wrong."""
    name = data.strip().lower()
    if name in list_datasets():
        if name not in SERIES_DATASETS:
            raise CLIError(f"--data {data!r} is a built-in task (x, y pairs), not a series; "
                           f"use one of {', '.join(SERIES_DATASETS)} or a CSV file")
        if column is not None:
            raise CLIError(f"--column applies to CSV files; --data {data!r} is a built-in "
                           "series")
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
    header = _csv_columns(path)
    if column is None:
        if not header:
            raise CLIError(f"--data {data!r}: no header row of column names found")
        column = header[-1]
    key = int(column) if column.strip().lstrip("-").isdigit() else column
    try:
        values = load_csv(path, key)
    except (ValueError, TypeError, OSError) as e:
        raise CLIError(f"--data {data!r}: {e}") from None
    name = header[key] if isinstance(key, int) else key   # load_csv checked the index
    return _Series(values, None, path, str(column), f"{os.path.basename(path)}, column {column!r}",
                   y_label=name)


# -- the forecaster's transform ------------------------------------------------------------

class _Transform:
    """Level <-> model space: optional log, optional differencing (the scaler comes after).

    ``encode(y)`` gives u[t] for t = first .. T-1 (the change z[t] - z[t-1] when
    differencing, else z[t], with z = log y or y); ``decode(u_pred, y_last)`` turns
    predicted u of the steps after a level y_last back into levels.
    """

    NAMES = ("log-diff", "diff", "none")

    def __init__(self, name: str):
        self.name = name
        self.log = name == "log-diff"
        self.diff = name in ("log-diff", "diff")
        self.first = 1 if self.diff else 0

    @classmethod
    def choose(cls, name: str, values: np.ndarray) -> _Transform:
        if name == "auto":
            name = "log-diff" if np.all(values > 0) else "diff"
        if name == "log-diff" and not np.all(values > 0):
            raise CLIError("--transform log-diff needs a series of positive values; use "
                           "--transform diff")
        return cls(name)

    def encode(self, y: np.ndarray) -> np.ndarray:
        """u of the levels y (T,), or a CLIError where a difference overflows float64."""
        z = np.log(y) if self.log else np.asarray(y, np.float64)
        if not self.diff:
            return z.copy()
        with np.errstate(over="ignore", invalid="ignore"):   # checked next
            u = np.diff(z)
        bad = ~np.isfinite(u)
        if bad.any():
            t = int(np.argmax(bad))
            raise CLIError(f"--transform {self.name}: the change from step {t} to {t + 1} "
                           f"({y[t]:g} to {y[t + 1]:g}) overflows float64; {RESCALE}")
        return u

    def decode(self, u: np.ndarray, y_last: np.ndarray) -> np.ndarray:
        """u (N, H) predicted steps after the levels y_last (N,) -> levels (N, H); past
        float64's range they are inf, for the caller to report."""
        if not self.diff:
            return u
        with np.errstate(over="ignore", invalid="ignore"):
            z_last = np.log(y_last) if self.log else y_last
            z = z_last[:, None] + np.cumsum(u, axis=1)
            return np.exp(z) if self.log else z


def _scale(scaler, u: np.ndarray) -> np.ndarray:
    """The model-space series u (T,) standardised, (T, 1); a CLIError where it overflows
    (the only ValueError of a fitted scaler on a finite (T, 1) array)."""
    try:
        return scaler.transform(u[:, None])
    except ValueError as e:
        raise CLIError(f"the series does not fit the training part's scale: {e}") from None


def _unscale(scaler, pred: np.ndarray) -> np.ndarray:
    """Model outputs (N, H) back to unscaled model space, float64; a CLIError when they
    are not finite or overflow float64 there."""
    try:
        return scaler.inverse_transform(pred.astype(np.float64)[..., None])[..., 0]
    except ValueError as e:
        raise CLIError(f"the model's predictions do not map back to the series: {e}") from None


def _check_levels(levels: np.ndarray, what: str) -> None:
    """A CLIError when decoded levels left float64's range (`decode` gives them as inf)."""
    if not np.all(np.isfinite(levels)):
        raise CLIError(f"{what} overflow float64; {RESCALE}")


def _rmse(pred, actual) -> float:
    """The root mean squared error, or a CLIError when the squares overflow float64."""
    with np.errstate(over="ignore", invalid="ignore"):   # checked next
        rmse = float(np.sqrt(np.mean(np.square(np.asarray(pred, np.float64) - actual))))
    if not math.isfinite(rmse):
        raise CLIError(f"the errors of the forecasts overflow float64; {RESCALE}")
    return rmse


@dataclass
class _Windows:
    x: np.ndarray        # (N, lookback, 1) scaled model inputs
    y: np.ndarray        # (N, horizon) scaled model targets
    target_time: np.ndarray   # (N,) time index of each window's first target
    levels_x: np.ndarray      # (N, lookback, 1) the inputs' levels
    levels_y: np.ndarray      # (N, horizon) the targets' levels


def _windows(series: np.ndarray, transform: _Transform, scaler, lookback: int,
             horizon: int, dtype) -> _Windows:
    """Every window of the series, in model space and in levels, aligned."""
    u = _scale(scaler, transform.encode(series))  # (T - first, 1)
    x, y = make_windows(u, lookback, horizon)
    lx, ly = make_windows(series[transform.first:], lookback, horizon)
    target_time = np.arange(len(x)) + transform.first + lookback
    return _Windows(_as_model_dtype(x, dtype), _as_model_dtype(y[:, :, 0], dtype),
                    target_time, lx, ly[:, :, 0])


def _as_model_dtype(a: np.ndarray, dtype) -> np.ndarray:
    """`a` in the model's precision, or a CLIError where float32 overflows."""
    with np.errstate(over="ignore"):   # checked next
        out = a.astype(dtype)
    if not np.all(np.isfinite(out)):
        raise CLIError(f"the standardised series reaches {np.max(np.abs(a)):.3g}, past "
                       f"{np.dtype(dtype).name}'s range (the model's precision); train with "
                       f"--dtype float64 or {RESCALE}")
    return out


def _check_length(series: _Series, lookback: int, horizon: int, first: int):
    """A CLIError unless the series gives one window, and all its windows together hold
    at most MAX_WINDOW_VALUES values."""
    needed = first + lookback + horizon
    if len(series.values) < needed:
        raise CLIError(f"the series is too short: {series.label} has {len(series.values)} "
                       f"values, and one window needs {needed} (--lookback {lookback}, "
                       f"--horizon {horizon})")
    n_windows = len(series.values) - needed + 1
    held = n_windows * (lookback + horizon)
    if held > MAX_WINDOW_VALUES:
        raise CLIError(f"the windows are too large: {n_windows:,} windows of --lookback "
                       f"{lookback} + --horizon {horizon} values hold {held:,} values, more "
                       f"than the {MAX_WINDOW_VALUES:,} this command cuts; use a smaller "
                       "--lookback or a shorter series")


# -- forecast ------------------------------------------------------------------------------

def _forecast_arguments(p) -> None:
    _add_data_arguments(p, "airline")
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
    p.add_argument("--transform", choices=("auto",) + _Transform.NAMES, default="auto",
                   help="model the series as log-differences, differences or levels "
                        "(default: auto, log-diff for a positive series, else diff)")
    p.add_argument("--seed", type=_nonnegative_int, default=0,
                   help="seed of the weights and the shuffling (default: 0)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="the model's precision (default: float32)")
    p.add_argument("--threads", type=_int_in(0, MAX_THREADS), default=1,
                   help=f"OpenMP threads of the recurrent kernels, at most {MAX_THREADS}; 0 = "
                        "all cores (default: 1, the fastest for batches this small)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"where the model and plots go (default: ./{DEFAULT_OUT})")
    _add_output_arguments(p)


def _split_windows(w: _Windows, n_train: int, n_val: int, horizon: int):
    """Masks of the train, validation and test windows: by where their targets fall."""
    first, last = w.target_time, w.target_time + horizon - 1
    train = last < n_train
    val = (first >= n_train) & (last < n_train + n_val)
    test = first >= n_train + n_val
    return train, val, test


def _parameter_count(cell: str, hidden: int, layers: int, horizon: int) -> int:
    """Parameters of CELLS[cell](1, hidden, layers) -> Linear(hidden, horizon): per layer
    and gate, the input and hidden weights and two biases (torch's layout)."""
    recurrent = sum(_GATES[cell] * hidden * ((1 if layer == 0 else hidden) + hidden + 2)
                    for layer in range(layers))
    return recurrent + (hidden + 1) * horizon


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


@subcommand("forecast", arguments=_forecast_arguments,
            help="train an LSTM (or GRU, RNN) forecaster on a series and compare it with "
                 "the naive forecast (the default)")
def forecast(args) -> int:
    started = time.perf_counter()
    say = print if args.verbose else (lambda *a, **k: None)
    series = _load_series(args.data, args.column)
    values = series.values
    if np.all(values == values[0]):
        raise CLIError(f"{series.label} is constant (all {len(values)} values are "
                       f"{values[0]:g}): there is nothing to forecast")
    transform = _Transform.choose(args.transform, values)
    _check_length(series, args.lookback, args.horizon, transform.first)
    try:
        train_part, val_part, _ = chronological_split(values, TRAIN_FRACTION, VAL_FRACTION)
    except ValueError as e:
        raise CLIError(f"the series is too short to split: {e}") from None
    n_train, n_val = len(train_part), len(val_part)

    # Statistics of the training part only: the changes up to the last training step.
    scaler = StandardScaler().fit(transform.encode(train_part)[:, None])
    dtype = np.dtype(args.dtype)
    w = _windows(values, transform, scaler, args.lookback, args.horizon, dtype)
    is_train, is_val, is_test = _split_windows(w, n_train, n_val, args.horizon)
    counts = (int(is_train.sum()), int(is_val.sum()), int(is_test.sum()))
    if min(counts) < 1:
        raise CLIError(f"the series is too short: {series.label} has {len(values)} values, "
                       f"which give {counts[0]}/{counts[1]}/{counts[2]} train/validation/test "
                       f"windows with --lookback {args.lookback} and --horizon "
                       f"{args.horizon}; each part needs one")
    n_parameters = _parameter_count(args.cell, args.hidden, args.layers, args.horizon)
    if n_parameters > MAX_PARAMETERS:
        raise CLIError(f"--cell {args.cell} with --hidden {args.hidden} and --layers "
                       f"{args.layers} gives "
                       f"{n_parameters:,} parameters, more than the {MAX_PARAMETERS:,} this "
                       "command trains; use a smaller --hidden or fewer --layers")
    _make_out_dir(args.out)
    out_of_memory = CLIError(f"out of memory with --hidden {args.hidden}, --layers "
                             f"{args.layers} and --batch-size {args.batch_size}: use smaller "
                             "ones")

    try:
        model = Sequential(
            CELLS[args.cell](1, args.hidden, num_layers=args.layers, batch_first=True,
                             dtype=dtype, seed=args.seed, n_threads=args.threads or None),
            LastStep(batch_first=True),
            Linear(args.hidden, args.horizon, dtype=dtype, seed=args.seed + 1))
    except MemoryError:
        raise out_of_memory from None
    optimizer = optim.Adam(model, lr=args.lr)
    say(f"lstm_native {__version__} (OpenMP {'on' if openmp_enabled() else 'off'}): "
        f"forecasting {series.label}, {len(values)} values")
    name = type(model.layers[0]).__name__
    say(f"model: {name}({args.hidden} hidden, {args.layers} layer{'s' * (args.layers > 1)}) "
        f"-> last step -> Linear({args.horizon}); reads {args.lookback} "
        f"{'changes' if transform.diff else 'values'} ({transform.name}, standardised on "
        f"the training part), predicts the next {args.horizon}")
    say(f"windows: {counts[0]} train, {counts[1]} validation, {counts[2]} test "
        f"(chronological split {TRAIN_FRACTION:.0%}/{VAL_FRACTION:.0%}/"
        f"{1 - TRAIN_FRACTION - VAL_FRACTION:.0%}); Adam lr {args.lr}, batch "
        f"{args.batch_size}, up to {args.epochs} epochs")

    callbacks = []
    stopper = None
    if args.patience:
        stopper = EarlyStopping("val_loss", patience=args.patience, restore_best_weights=True)
        callbacks.append(stopper)
    fit_start = time.perf_counter()
    try:
        # fit raises on a non-finite loss; numpy's overflow warnings on the way there
        # would only add lines to the one-line message.
        with np.errstate(over="ignore", invalid="ignore"):
            history = fit(model, w.x[is_train], w.y[is_train], loss=losses.MSELoss(),
                          optimizer=optimizer, epochs=args.epochs, batch_size=args.batch_size,
                          validation_data=(w.x[is_val], w.y[is_val]), seed=args.seed,
                          callbacks=callbacks, verbose=1 if args.verbose else 0,
                          log_every=max(1, args.epochs // 15))
    except FloatingPointError:
        raise CLIError(f"training diverged with --lr {args.lr:g}: the loss is no longer "
                       "finite; use a smaller --lr (default: 0.003)") from None
    except MemoryError:
        raise out_of_memory from None
    seconds = time.perf_counter() - fit_start
    epochs_run = len(history["epoch"])
    best_epoch = stopper.best_epoch if stopper is not None else epochs_run
    if stopper is not None:
        how = (f"stopped after epoch {epochs_run}" if history.stopped_epoch
               else f"ran {epochs_run} epochs")
        say(f"{how}; kept the weights of epoch {best_epoch} (best validation loss "
            f"{stopper.best:.4g})")

    def levels(mask):
        u = _unscale(scaler, predict(model, w.x[mask]))
        pred = transform.decode(u, w.levels_x[mask, -1, 0])
        _check_levels(pred, "the model's forecasts")
        return pred

    test_pred = levels(is_test)
    actual = w.levels_y[is_test]
    naive = persistence_forecast(w.levels_x[is_test], args.horizon)[:, :, 0]
    rmse, naive_rmse = _rmse(test_pred, actual), _rmse(naive, actual)
    val_rmse = _rmse(levels(is_val), w.levels_y[is_val])
    scores = evaluate(model, w.x[is_test], w.y[is_test], loss=losses.MSELoss())

    model_path = os.path.join(args.out, MODEL_FILE)
    settings = {"data": series.data, "column": series.column, "cell": args.cell,
                "lookback": args.lookback, "horizon": args.horizon, "hidden": args.hidden,
                "layers": args.layers,
                "transform": transform.name, "epochs": args.epochs, "patience": args.patience,
                "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                "dtype": args.dtype, "threads": args.threads,
                "train_fraction": TRAIN_FRACTION, "val_fraction": VAL_FRACTION}
    results = {"rmse": rmse, "naive_rmse": naive_rmse, "val_rmse": val_rmse,
               "test_loss": scores["loss"], "test_windows": counts[2],
               "epochs": epochs_run, "best_epoch": best_epoch, "seconds": seconds}
    all_levels = levels(np.ones(len(w.x), bool))
    try:
        save_checkpoint(model_path, model, optimizer, epoch=epochs_run,
                        extra={"settings": settings, "scaler": scaler.get_state(),
                               "results": results, "history": dict(history)})
        plots, skipped = _plot_forecast(args.out, series, w, all_levels, n_train, n_val,
                                        history, best_epoch, rmse, naive_rmse, name)
    except OSError as e:
        raise CLIError(f"--out {args.out!r}: cannot write: {e}") from None
    unit = " (in the series' units)" if series.data != "airline" else " (thousands of passengers)"
    if naive_rmse > 0:
        ratio = (f"ratio {rmse / naive_rmse:.2f} "
                 f"({'better' if rmse < naive_rmse else 'NOT better'} than naive)")
    else:
        ratio = "no ratio: the naive forecast is exact on the test part"
    print(f"test RMSE {rmse:.2f}{unit} over {counts[2]} windows; naive persistence forecast "
          f"RMSE {naive_rmse:.2f}; {ratio}")
    print(f"trained {epochs_run} epochs in {seconds:.1f} s; model saved to {model_path}")
    if plots:
        print("plots: " + ", ".join(plots))
    if skipped:
        print(skipped)
    if args.json:
        print(json.dumps({**results, "model_path": model_path, "plots": plots,
                          "cell": args.cell, "data": series.data, "column": series.column,
                          "total_seconds": time.perf_counter() - started}))
    return 0


def _plot_forecast(out: str, series: _Series, w: _Windows, pred_levels: np.ndarray,
                   n_train: int, n_val: int, history, best_epoch: int, rmse: float,
                   naive_rmse: float, model_name: str):
    """Write forecast.png and loss.png when matplotlib is installed: (paths, message).
    `model_name` ("LSTM", "GRU", "RNN") labels the forecasts."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return [], ("matplotlib is not installed: skipped the plots forecast.png and "
                    "loss.png (pip install matplotlib)")
    t = series.dates if series.dates is not None else np.arange(len(series.values))
    paths = []

    fig = Figure(figsize=(10, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(t, series.values, color="black", lw=1.2, label="actual")
    ax.plot(t[w.target_time], pred_levels[:, 0], color="tab:red", lw=1.2,
            label=f"{model_name}, one step ahead")
    test_start = n_train + n_val
    ax.axvspan(t[n_train], t[test_start], color="tab:orange", alpha=0.08, label="validation")
    ax.axvspan(t[test_start], t[-1], color="tab:blue", alpha=0.08,
               label=f"test: RMSE {rmse:.2f}, naive {naive_rmse:.2f}")
    ax.set_title(f"lstm_native forecast: {series.label}")
    ax.set_xlabel(series.x_label)
    ax.set_ylabel(series.y_label)
    ax.legend(loc="upper left")
    path = os.path.join(out, "forecast.png")
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
    path = os.path.join(out, "loss.png")
    fig.savefig(path, dpi=100)
    paths.append(path)
    return paths, None


# -- predict -------------------------------------------------------------------------------

def _predict_arguments(p) -> None:
    p.add_argument("--model", default=os.path.join(DEFAULT_OUT, MODEL_FILE), metavar="FILE",
                   help=f"a model saved by forecast (default: ./{DEFAULT_OUT}/{MODEL_FILE})")
    _add_data_arguments(p, None)
    p.add_argument("--steps", type=_int_in(1, MAX_STEPS), default=12,
                   help=f"values to forecast past the end of the series, at most {MAX_STEPS} "
                        "(default: 12)")
    _add_output_arguments(p)


def _load_forecaster(path: str):
    """(model, scaler, settings) of a file forecast saved, or a CLIError. The settings
    predict reads are checked: lookback and horizon ints >= 1, a known transform, a data
    name, an optional column and a cell of `CELLS` (files saved before --cell have none:
    theirs is "lstm", which is put in the settings returned); and the model is a
    Sequential whose first layer is that cell's."""
    try:
        loaded = load_checkpoint(path)
    except (ValueError, OSError) as e:  # the checkpoint's errors name the file
        raise CLIError(f"--model: {e}") from None
    extra = loaded["extra"] or {}
    if not {"settings", "scaler"} <= set(extra):
        raise CLIError(f"--model {path!r}: not a model saved by '{PROG} forecast' (its "
                       "checkpoint has no settings and scaler)")
    try:
        scaler = scaler_from_state(extra["scaler"])
    except (TypeError, ValueError) as e:
        raise CLIError(f"--model {path!r}: its scaler does not load: {e}") from None
    settings = extra["settings"]
    valid = (isinstance(settings, dict)
             and all(type(settings.get(k)) is int and settings[k] >= 1   # not bool
                     for k in ("lookback", "horizon"))
             and settings.get("transform") in _Transform.NAMES
             and isinstance(settings.get("data"), str)
             and isinstance(settings.get("column"), (str, type(None)))
             and isinstance(settings.get("cell", "lstm"), str)
             and settings.get("cell", "lstm") in CELLS)
    if not valid:
        raise CLIError(f"--model {path!r}: its settings are damaged (expected lookback and "
                       f"horizon >= 1, a transform of {', '.join(_Transform.NAMES)}, the data "
                       f"and column, a cell of {', '.join(CELLS)}), got {settings!r}")
    settings = {**settings, "cell": settings.get("cell", "lstm")}
    model, layer = loaded["model"], CELLS[settings["cell"]]
    first = model.layers[0] if isinstance(model, Sequential) and model.layers else None
    if type(first) is not layer:
        what = type(model if first is None else first).__name__
        raise CLIError(f"--model {path!r}: its settings name the cell {settings['cell']!r} "
                       f"({layer.__name__} first), but its model "
                       f"{'starts with' if first is not None else 'is'} {what}")
    return model, scaler, settings


@subcommand("predict", arguments=_predict_arguments,
            help="run a saved forecaster on a series: its error there and the next values")
def predict_command(args) -> int:
    model, scaler, settings = _load_forecaster(args.model)
    if args.data is None:
        data, column = settings["data"], settings.get("column")
        if args.column is not None:
            column = args.column
    else:
        data, column = args.data, args.column
    series = _load_series(data, column)
    values = series.values
    lookback, horizon = settings["lookback"], settings["horizon"]
    transform = _Transform(settings["transform"])
    if transform.log and not np.all(values > 0):
        raise CLIError(f"the model works on log-differences, but {series.label} has values "
                       "<= 0")
    _check_length(series, lookback, horizon, transform.first)
    dtype = model.dtype

    # The error on every window of the series (in-sample where the model trained on it).
    w = _windows(values, transform, scaler, lookback, horizon, dtype)
    try:  # a model of another shape than the settings say: the only ValueError here
        out = predict(model, w.x)
    except ValueError as e:
        raise CLIError(f"--model {args.model!r}: its model does not read its own windows "
                       f"of {lookback} steps of one value: {e}") from None
    if out.ndim != 2 or out.shape[1] != horizon:
        raise CLIError(f"--model {args.model!r}: its model gives outputs of shape "
                       f"{out.shape[1:]} per window, its settings a horizon of {horizon}")
    u = _unscale(scaler, out)
    pred = transform.decode(u, w.levels_x[:, -1, 0])
    _check_levels(pred, "the model's predictions on the series")
    rmse = _rmse(pred, w.levels_y)
    naive_rmse = _rmse(persistence_forecast(w.levels_x, horizon)[:, :, 0], w.levels_y)

    # The next values past the end: one step at a time, each prediction fed back.
    encoded = _scale(scaler, transform.encode(values))

    def predict_one(window):
        return predict(model, window.astype(dtype))[:, :1]

    future_u = forecast_recursive(predict_one, encoded, args.steps, lookback=lookback)
    future_u = _unscale(scaler, future_u.T)[0]
    future = transform.decode(future_u[None, :], values[-1:])[0]
    if series.dates is not None:
        step = series.dates[-1] - series.dates[-2]
        labels = [str(series.dates[-1] + step * (k + 1)) for k in range(args.steps)]
    else:
        labels = [f"t+{k + 1}" for k in range(args.steps)]
    bad = ~np.isfinite(future)
    if bad.any():
        # Each value builds on the ones before it: stop at the first that left float64.
        k = int(np.argmax(bad))
        fewer = f"; --steps {k} or fewer give finite values" if k else ""
        raise CLIError(f"the forecast is not finite from step {k + 1} ({labels[k]}) on: it "
                       f"grows past float64's range{fewer}")

    if args.verbose:
        print(f"model {args.model}: {type(model.layers[0]).__name__}, reads {lookback} values "
              f"({transform.name}), predicts {horizon}; {series.label}, {len(values)} values")
    print(f"on the series: RMSE {rmse:.2f} over {len(w.x)} windows (naive persistence "
          f"{naive_rmse:.2f}; the windows the model trained on are included)")
    print(f"forecast of the next {args.steps} values (recursive, one step at a time):")
    for label, value in zip(labels, future):
        print(f"  {label:>10}  {value:.2f}")
    if args.json:
        print(json.dumps({"forecast": [float(v) for v in future], "labels": labels,
                          "rmse": rmse, "naive_rmse": naive_rmse, "windows": len(w.x),
                          "model_path": args.model, "cell": settings["cell"],
                          "data": series.data}))
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
                                          n_threads=args.threads or None)
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
    plots, skipped, unit = longlag.make_plots(
        args.out, {k: runs[seeds[0], longest, k] for k in cells}, curves, seeds, setting)

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
    # Only the errors of bad input become a message; anything else is a bug and keeps
    # its traceback.
    try:
        return args.run(args)
    except (CLIError, OSError) as e:
        print(f"{PROG} {args.command}: error: {e}", file=sys.stderr)
        return 2
