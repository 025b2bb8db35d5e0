"""`python -m lstm_native`: train a small LSTM on a built-in sequence task and evaluate it.

The task: a noisy sum of two sines, cut into windows; at every step the model predicts
the next value. An LSTM reads the window, a linear readout maps each hidden state to one
number, and plain minibatch gradient descent on the mean squared error trains both. The
test error is printed next to the persistence forecast (predict the current value), the
baseline a forecaster has to beat.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from . import LSTM, __version__, openmp_enabled


def make_series(n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """A noisy sum of two sines with incommensurate periods."""
    t = np.arange(n_steps)
    clean = np.sin(2 * np.pi * t / 25.0) + 0.5 * np.sin(2 * np.pi * t / 9.3)
    return clean + 0.05 * rng.standard_normal(n_steps)


def make_windows(series: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs x (window, N, 1) time-major and next-step targets y (window, N, 1)."""
    starts = np.arange(0, len(series) - window - 1, window // 2)
    x = np.stack([series[s:s + window] for s in starts], axis=1)[..., None]
    y = np.stack([series[s + 1:s + window + 1] for s in starts], axis=1)[..., None]
    return x, y


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m lstm_native",
        description="Train an LSTM on a built-in noisy-sine task and print its test error.")
    p.add_argument("--epochs", type=int, default=100, help="passes over the training windows")
    p.add_argument("--hidden", type=int, default=32, help="hidden units of the LSTM")
    p.add_argument("--window", type=int, default=50, help="steps per training window")
    p.add_argument("--batch-size", type=int, default=16, help="windows per gradient step")
    p.add_argument("--lr", type=float, default=0.3, help="gradient-descent step size")
    p.add_argument("--seed", type=int, default=0, help="seed of data, init and shuffling")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = p.parse_args(argv)
    for name in ("epochs", "hidden", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.window < 4:
        p.error("--window must be >= 4")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    dtype = np.dtype(args.dtype)
    series = make_series(4000, rng).astype(dtype)
    split = int(0.8 * len(series))
    x_train, y_train = make_windows(series[:split], args.window)
    x_test, y_test = make_windows(series[split:], args.window)

    lstm = LSTM(1, args.hidden, dtype=dtype, seed=args.seed)
    # The readout y_t = h_t · wᵀ + b, trained with the LSTM.
    w = (rng.uniform(-1, 1, (1, args.hidden)) / np.sqrt(args.hidden)).astype(dtype)
    b = np.zeros(1, dtype)

    print(f"lstm_native {__version__} (OpenMP: {'on' if openmp_enabled() else 'off'}): "
          f"{lstm!r} on a noisy sum of sines, {x_train.shape[1]} training windows of "
          f"{args.window} steps, plain gradient descent, lr {args.lr}")
    start = time.perf_counter()
    n = x_train.shape[1]
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(n)
        total = 0.0
        for i in range(0, n, args.batch_size):
            idx = order[i:i + args.batch_size]
            xb, yb = x_train[:, idx], y_train[:, idx]
            lstm.zero_grad()
            out, _ = lstm(xb)
            pred = out @ w.T + b
            err = pred - yb
            total += float(np.sum(err ** 2))
            # d(mean squared error)/d(pred), then through the readout into the LSTM.
            dpred = 2 * err / err.size
            dw = np.einsum("tno,tnh->oh", dpred, out)
            db = dpred.sum(axis=(0, 1))
            lstm.backward(dpred @ w, input_grad=False)
            for p, g in zip(lstm.parameters().values(), lstm.grads.values()):
                p -= args.lr * g
            w -= args.lr * dw
            b -= args.lr * db
        if epoch == 1 or epoch % max(1, args.epochs // 10) == 0 or epoch == args.epochs:
            print(f"epoch {epoch:3d}  train mse {total / y_train.size:.5f}")
    seconds = time.perf_counter() - start

    lstm.eval()
    out, _ = lstm(x_test)
    test_mse = float(np.mean((out @ w.T + b - y_test) ** 2))
    naive_mse = float(np.mean((x_test - y_test) ** 2))
    print(f"test mse {test_mse:.5f}   persistence forecast mse {naive_mse:.5f}   "
          f"ratio {test_mse / naive_mse:.3f}   ({seconds:.1f} s training)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
