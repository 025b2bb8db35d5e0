"""Run under mpiexec: a distributed run resumed from a checkpoint that only rank 0 can
read takes bitwise the steps of the uninterrupted run.

Usage: mpiexec -n N python tests/mpi/resume.py DIR

Each rank has a directory of its own, DIR/rank<r> (no shared file system): only rank 0
may write there. Prints on rank 0 one JSON line: ``equal`` (the resumed run's weights
and history are the uninterrupted run's, bitwise, on every rank) and the files each
rank's directory holds, and ``missing_raises`` (a file missing on rank 0 is a
FileNotFoundError on every rank).
"""
import json
import os
import sys

import numpy as np
from mpi4py import MPI

import lstm_native as ln
from lstm_native import optim, schedules

comm = MPI.COMM_WORLD
RANK = comm.Get_rank()


def setup(seed):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((13, 5, 2))
    y = x.sum(axis=(1, 2))[:, None] * 0.2
    model = ln.Sequential(
        ln.LSTM(2, 4, batch_first=True, dtype=np.float64, seed=seed, recurrent_dropout=0.2),
        ln.LastStep(batch_first=True), ln.Dropout(0.3, seed=seed),
        ln.Linear(4, 1, dtype=np.float64, seed=seed))
    opt = optim.Adam(model, lr=0.02)
    scheduler = schedules.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    return x, y, model, opt, scheduler


def fit(x, y, model, opt, scheduler, folder, **kw):
    return ln.fit(model, x, y, loss="mse", optimizer=opt, scheduler=scheduler, epochs=4,
                  batch_size=4, seed=3, verbose=0, distributed=True,
                  callbacks=[ln.ModelCheckpoint(os.path.join(folder, "ckpt-{epoch}.npz"),
                                                monitor="loss")], **kw)


def main(root):
    folder = os.path.join(root, f"rank{RANK}")
    os.makedirs(folder, exist_ok=True)
    x, y, model, opt, scheduler = setup(seed=0)
    full = fit(x, y, model, opt, scheduler, folder)
    weights = np.concatenate([p.ravel() for p in model.parameters().values()])

    x, y, model, opt, scheduler = setup(seed=10 + RANK)  # other weights on every rank
    resumed = ln.resume_from_checkpoint(os.path.join(folder, "ckpt-2.npz"), model, opt,
                                        scheduler, distributed=True)
    rest = fit(x, y, model, opt, scheduler, folder, initial_epoch=resumed["initial_epoch"])
    again = np.concatenate([p.ravel() for p in model.parameters().values()])
    equal = (np.array_equal(weights, again) and resumed["initial_epoch"] == 2
             and full["loss"][2:] == rest["loss"] and full["lr"][2:] == rest["lr"])
    try:
        ln.resume_from_checkpoint(os.path.join(folder, "missing.npz"), model, opt, scheduler,
                                  distributed=True)
        missing = False
    except FileNotFoundError as e:
        missing = "missing.npz" in str(e)
    report = {"equal": all(comm.allgather(equal)),
              "missing_raises": all(comm.allgather(missing)),
              "files": comm.allgather(sorted(os.listdir(folder)))}
    if RANK == 0:
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
