"""Forecast a column of a CSV file with an LSTM.

    python examples/forecast_csv.py                           # the airline series, as a CSV
    python examples/forecast_csv.py sales.csv --column units --steps 24

Without a path, the built-in airline passengers series is written to a temporary CSV
first, so that the example goes through `load_csv` like your own file would.

The path from a column to a forecast: load_csv -> log-differences (the changes of a
series with a trend are closer to stationary than its levels) -> a chronological split
-> a StandardScaler fitted on the training part only -> windows of `lookback` changes ->
Sequential(LSTM, LastStep, Linear) trained with `fit` (early stopping on the validation
part) -> the one-step test error next to the naive forecast's ("next = last") -> a
recursive forecast of several steps, each prediction fed back as an input.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time

import numpy as np

import lstm_native as ln
from lstm_native.data import (StandardScaler, chronological_split, forecast_recursive,
                              load_csv, load_dataset, make_windows)


def write_airline_csv(directory: str) -> str:
    """The built-in series as a CSV file with a header row: month, passengers."""
    values, months = load_dataset("airline", return_dates=True)
    path = os.path.join(directory, "airline.csv")
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["month", "passengers"])
        writer.writerows(zip(months.astype(str), values))
    return path


def last_column(path: str) -> str:
    """The name of a CSV file's last column (the header is its first line not a comment)."""
    with open(path, newline="") as fh:
        for line in fh:
            if line.strip() and not line.startswith("#"):
                return next(csv.reader([line]))[-1].strip()
    raise SystemExit(f"{path}: no header row")


def rmse(a, b) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(a) - np.asarray(b)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("csv", nargs="?", help="a CSV file with a header row (default: the "
                        "airline series, written to a temporary file)")
    parser.add_argument("--column", help="the column to forecast, by name or index "
                        "(default: the last one)")
    parser.add_argument("--lookback", type=int, default=12, help="past steps read (12)")
    parser.add_argument("--steps", type=int, default=12, help="steps forecast (12)")
    parser.add_argument("--hidden", type=int, default=16, help="LSTM size (16)")
    parser.add_argument("--epochs", type=int, default=200, help="most epochs (200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true",
                        help="end with one line: the figures as a JSON object")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.csv or write_airline_csv(tmp)
        column = args.column or last_column(path)
        series = load_csv(path, int(column) if column.isdigit() else column)
    print(f"{os.path.basename(path)}, column {column!r}: {len(series)} values")

    # Model space: the changes of the log (of the values if any is <= 0), standardised.
    log = bool(np.all(series > 0))
    z = np.log(series) if log else series
    changes = np.diff(z)                                   # changes[j] = z[j+1] - z[j]
    n_train, n_val, _ = map(len, chronological_split(changes, 0.7, 0.15))
    scaler = StandardScaler().fit(changes[:n_train, None])  # the training part only
    u = scaler.transform(changes[:, None]).astype(np.float32)   # (T - 1, 1)

    # Window i reads changes i .. i+lookback-1 and predicts change j = i + lookback; it
    # belongs to the part its target falls in.
    x, y = make_windows(u, args.lookback)                  # (N, lookback, 1), (N, 1, 1)
    y = y[:, 0]                                            # (N, 1)
    j = np.arange(len(x)) + args.lookback
    train, val = j < n_train, (j >= n_train) & (j < n_train + n_val)
    test = j >= n_train + n_val

    model = ln.Sequential(ln.LSTM(1, args.hidden, batch_first=True, seed=args.seed,
                                  n_threads=1),
                          ln.LastStep(batch_first=True),
                          ln.Linear(args.hidden, 1, seed=args.seed + 1))
    stopper = ln.EarlyStopping("val_loss", patience=30)   # keeps the best epoch's weights
    start = time.perf_counter()
    history = ln.fit(model, x[train], y[train], loss="mse",
                     optimizer=ln.optim.Adam(model, lr=0.003), epochs=args.epochs,
                     batch_size=16, validation_data=(x[val], y[val]), seed=args.seed,
                     callbacks=[stopper], verbose=0)
    seconds = time.perf_counter() - start
    print(f"trained {len(history['epoch'])} epochs on {train.sum()} windows, kept epoch "
          f"{stopper.best_epoch} (validation loss {stopper.best:.3f})")

    # One step ahead on the test part, in the series' own units: the last level plus
    # the predicted change, against the naive forecast (the last level).
    def to_levels(u_pred, j_targets):
        change = scaler.inverse_transform(np.asarray(u_pred, np.float64).reshape(-1, 1))[:, 0]
        level = z[j_targets] + change
        return np.exp(level) if log else level

    pred = to_levels(ln.predict(model, x[test]), j[test])
    actual, naive = series[j[test] + 1], series[j[test]]
    figures = {"epochs": len(history["epoch"]), "best_epoch": stopper.best_epoch,
               "seconds": seconds, "rmse": rmse(pred, actual), "naive_rmse": rmse(naive, actual)}
    print(f"test, one step ahead ({test.sum()} steps): RMSE {figures['rmse']:.2f}, "
          f"naive {figures['naive_rmse']:.2f}")

    # Several steps ahead, recursively: each predicted change is appended to the window.
    def predict_one(window):
        return ln.predict(model, window.astype(np.float32))

    def forecast(end: int) -> np.ndarray:
        """`steps` levels after series[end], from the changes up to it."""
        u_future = forecast_recursive(predict_one, u[:end], args.steps,
                                      lookback=args.lookback)
        change = scaler.inverse_transform(u_future.astype(np.float64))[:, 0]
        level = z[end] + np.cumsum(change)
        return np.exp(level) if log else level

    end = n_train + n_val                  # the test part's first target is series[end + 1]
    steps = min(args.steps, len(series) - end - 1)
    held_out = forecast(end)[:steps]
    actual = series[end + 1:end + 1 + steps]
    naive = np.full(steps, series[end])
    figures.update(steps=steps, rmse_steps=rmse(held_out, actual),
                   naive_rmse_steps=rmse(naive, actual))
    print(f"test, {steps} steps ahead from series[{end}] (recursive): RMSE "
          f"{figures['rmse_steps']:.2f}, naive {figures['naive_rmse_steps']:.2f}")
    future = forecast(len(series) - 1)
    print(f"the next {args.steps} values past the end: "
          + " ".join(f"{v:.1f}" for v in future))
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
