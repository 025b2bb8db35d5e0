"""Sequence classification with variable lengths: which wave is this?

    python examples/classify_lengths.py
    python examples/classify_lengths.py --min-length 5 --max-length 200 --epochs 20
    python examples/classify_lengths.py --ignore-lengths     # for contrast

Each sample is a noisy sine, square, triangle or sawtooth wave of random period, phase
and amplitude, from --min-length to --max-length steps long. The batch is padded to the
longest; the padding is filled with noise on purpose, and `lengths` tells the model
where each sequence ends: the LSTM stops there (its outputs past a length are zero, its
state is the one at the last valid step, as PyTorch's packed sequences), and LastStep
picks each sequence's own last output for the Linear classifier. Trained with
cross-entropy on the logits; chance is 25%. With --ignore-lengths the model gets no
lengths, reads the padding as if it were data and always ends on noise: it does no
better than chance.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import lstm_native as ln

CLASSES = ("sine", "square", "triangle", "sawtooth")


def waves(n: int, min_length: int, max_length: int, rng: np.random.Generator):
    """x (n, max_length, 1) padded with noise, lengths (n,), labels (n,)."""
    labels = rng.integers(0, len(CLASSES), n)
    lengths = rng.integers(min_length, max_length + 1, n)
    t = np.arange(max_length)
    period = rng.uniform(6, 20, (n, 1))
    phase = rng.uniform(0, 1, (n, 1))
    cycle = (t / period + phase) % 1.0                   # position within the period
    shapes = np.stack([np.sin(2 * np.pi * cycle),
                       np.where(cycle < 0.5, 1.0, -1.0),
                       4 * np.abs(cycle - 0.5) - 1,
                       2 * cycle - 1])                   # (4, n, T)
    x = shapes[labels, np.arange(n)] * rng.uniform(0.5, 1.5, (n, 1))
    x += 0.1 * rng.standard_normal(x.shape)
    padding = t >= lengths[:, None]
    x[padding] = rng.standard_normal(padding.sum())      # noise the model must not read
    return x[..., None].astype(np.float32), lengths, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=5000, help="training sequences")
    parser.add_argument("--min-length", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=60)
    parser.add_argument("--hidden", type=int, default=32, help="LSTM size (32)")
    parser.add_argument("--epochs", type=int, default=40, help="passes over the data (40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ignore-lengths", action="store_true",
                        help="give the model no lengths: it reads the padding too")
    parser.add_argument("--json", action="store_true",
                        help="end with one line: the figures as a JSON object")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    x, lengths, y = waves(args.samples, args.min_length, args.max_length, rng)
    x_val, lengths_val, y_val = waves(500, args.min_length, args.max_length, rng)
    x_test, lengths_test, y_test = waves(1000, args.min_length, args.max_length, rng)
    # What the model is told (the true lengths stay for the report below).
    given, given_val, given_test = ((None, None, None) if args.ignore_lengths
                                    else (lengths, lengths_val, lengths_test))
    print(f"{args.samples} training sequences of {args.min_length}..{args.max_length} "
          f"steps, {len(CLASSES)} classes: {', '.join(CLASSES)}")

    model = ln.Sequential(ln.LSTM(1, args.hidden, batch_first=True, seed=args.seed,
                                  n_threads=1),
                          ln.LastStep(batch_first=True),
                          ln.Linear(args.hidden, len(CLASSES), seed=args.seed + 1))

    def accuracy(logits, labels):
        return float(np.mean(np.argmax(logits, axis=-1) == labels))

    start = time.perf_counter()
    ln.fit(model, x, y, lengths=given, loss="cross_entropy",
           optimizer=ln.optim.Adam(model, lr=0.005), epochs=args.epochs, batch_size=32,
           validation_data=(x_val, y_val, given_val), metrics=[("acc", accuracy)],
           seed=args.seed, verbose=2, log_every=max(1, args.epochs // 5))
    seconds = time.perf_counter() - start

    logits = ln.predict(model, x_test, lengths=given_test)
    hit = np.argmax(logits, axis=1) == y_test
    print(f"test accuracy {hit.mean():.1%} on {len(y_test)} new sequences "
          f"(chance {1 / len(CLASSES):.0%})")
    short = lengths_test < np.median(lengths_test)
    print(f"  shorter half: {hit[short].mean():.1%}, longer half: {hit[~short].mean():.1%}")
    for k, name in enumerate(CLASSES):
        print(f"  {name:<9} {hit[y_test == k].mean():.1%}")
    if args.json:
        print(json.dumps({"test_accuracy": float(hit.mean()),
                          "shorter_half": float(hit[short].mean()),
                          "longer_half": float(hit[~short].mean()), "seconds": seconds}))


if __name__ == "__main__":
    main()
