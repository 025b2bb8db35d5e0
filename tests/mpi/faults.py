"""Run under mpiexec: how distributed `fit` fails.

Usage: mpiexec -n N python tests/mpi/faults.py MODE

- mismatch: rank 1 passes another batch_size; every rank must raise the same ValueError
  at the start (each prints "refused: <message>", and the job ends normally).
- model: rank 1 builds a wider LSTM; data: rank 1 holds other targets (refused alike).
- nan: a target is nan: every rank raises FloatingPointError at the step that meets it
  ("diverged: <message>").
- loss: a loss of one's own, whose reduction fit cannot weigh, refused on every rank.
- raise: rank 1 raises in a callback after the first epoch: the abort hook must end
  every rank (the job exits non-zero) instead of leaving rank 0 waiting.
- kill: rank 1 kills itself (SIGKILL) after the first epoch: the launcher ends the job.
"""
import os
import signal
import sys

import numpy as np
from mpi4py import MPI

import lstm_native as ln
from lstm_native import optim

RANK = MPI.COMM_WORLD.Get_rank()


class Fault(ln.Callback):
    def __init__(self, mode):
        self.mode = mode

    def on_epoch_end(self, run, logs):
        if RANK != 1:
            return
        if self.mode == "raise":
            raise RuntimeError("a fault on rank 1")
        if self.mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)


def main(mode):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 4, 2))
    y = x.sum(axis=(1, 2))[:, None] + (mode == "data" and RANK == 1)
    if mode == "nan":
        y[9] = np.nan  # in the third batch, on rank 0's share with 2 ranks, on 1's with 3
    hidden = 4 if (mode == "model" and RANK == 1) else 3
    model = ln.Sequential(ln.LSTM(2, hidden, batch_first=True, dtype=np.float64, seed=0),
                          ln.LastStep(batch_first=True),
                          ln.Linear(hidden, 1, dtype=np.float64, seed=0))
    loss = "mse"
    if mode == "loss":
        def loss(pred, target):
            return ln.losses.mse_loss(pred, target)
    batch_size = 5 if (mode == "mismatch" and RANK == 1) else 4
    try:
        ln.fit(model, x, y, loss=loss, optimizer=optim.SGD(model, lr=0.1), epochs=1000,
               batch_size=batch_size, seed=0, verbose=0, distributed=True,
               callbacks=[Fault(mode)])
    except FloatingPointError as e:
        if mode != "nan":
            raise
        print(f"diverged: {e}", flush=True)
        return
    except ValueError as e:
        if mode not in ("mismatch", "model", "data", "loss"):
            raise
        print(f"refused: {e}", flush=True)
        return
    print("finished", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
