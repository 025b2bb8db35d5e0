"""Run under mpiexec: lstm_native.distributed's API on more than one rank.

Usage: mpiexec -n N python tests/mpi/api.py

Prints on rank 0 one JSON line of checks (each true when it holds on every rank) and
the largest relative difference between a custom loop's gradients (each rank its shard,
`allreduce_gradients` weighted by the shard's elements) and the one-process gradients.
"""
import json
import os
from typing import ClassVar

import numpy as np
from mpi4py import MPI

import lstm_native as ln
from lstm_native import distributed
from lstm_native._parallel import default_n_threads

comm = MPI.COMM_WORLD
RANK, SIZE = comm.Get_rank(), comm.Get_size()


def model_with(seed):
    return ln.Sequential(ln.LSTM(2, 3, batch_first=True, dtype=np.float64, seed=seed),
                         ln.LastStep(batch_first=True),
                         ln.Linear(3, 1, dtype=np.float64, seed=seed))


class RecordingLSTM(ln.LSTM):
    """An LSTM that notes the n_threads of each training forward."""

    seen: ClassVar[set] = set()

    def forward(self, *args, **kwargs):
        if self.training:
            RecordingLSTM.seen.add(self.n_threads)
        return super().forward(*args, **kwargs)


def gradients(model, x, y):
    model.zero_grad()
    pred = model(x)
    _, grad = ln.losses.mse_loss(pred, y)
    model.backward(grad, input_grad=False)
    return {k: g.copy() for k, g in model.grads.items()}


def main():
    checks = {"rank": distributed.rank() == RANK, "size": distributed.size() == SIZE}
    parts = comm.allgather(distributed.shard(np.arange(10)))
    checks["shard"] = np.concatenate(parts).tolist() == list(range(10))
    checks["sum"] = distributed.allreduce_scalar(RANK + 1) == SIZE * (SIZE + 1) / 2
    checks["mean"] = distributed.allreduce_scalar(
        float(RANK), "mean", weight=RANK + 1) == sum(r * (r + 1) for r in range(SIZE)) / sum(
            r + 1 for r in range(SIZE))
    checks["max"] = distributed.allreduce_scalar(RANK, "max") == SIZE - 1
    checks["object"] = distributed.broadcast_object({"rank": RANK}, root=SIZE - 1) == {
        "rank": SIZE - 1}

    # Every rank builds another model; after the broadcast all hold rank 0's.
    model = model_with(seed=RANK)
    distributed.broadcast_parameters(model)
    flat = np.concatenate([p.ravel() for p in model.parameters().values()])
    checks["broadcast"] = all(np.array_equal(flat, f) for f in comm.allgather(flat)) and (
        np.array_equal(flat, np.concatenate(
            [p.ravel() for p in model_with(seed=0).parameters().values()])))

    # A custom step: this rank's shard, gradients weighted by its elements.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((11, 4, 2))
    y = x.sum(axis=(1, 2))[:, None]
    expected = gradients(model, x, y)
    xs, ys = distributed.shard(x, y)
    gradients(model, xs, ys)
    distributed.allreduce_gradients(model, weight=ys.size)
    err = max(float(np.max(np.abs(model.grads[k] - g)) / np.max(np.abs(g)))
              for k, g in expected.items())

    try:
        distributed.broadcast_parameters(model, root=SIZE)
        checks["root_refused"] = False
    except ValueError as e:
        checks["root_refused"] = "root" in str(e)
    try:
        distributed.broadcast_parameters(model_with(0) if RANK == 0 else ln.Sequential(
            ln.LSTM(2, 4, batch_first=True, dtype=np.float64, seed=0)))
        checks["layout_refused"] = False
    except ValueError as e:
        checks["layout_refused"] = "parameters differs" in str(e)

    # n_threads=None: this node's cores shared out among its ranks.
    share = distributed._thread_share(comm)
    if os.environ.get("OMP_NUM_THREADS"):  # the user's choice, per process
        checks["threads"] = share is None
    else:
        checks["threads"] = share is not None and 1 <= share <= default_n_threads() and (
            share * SIZE <= max(SIZE, default_n_threads()))
    # fit's training steps run with it, and the layer's own None comes back after.
    model = ln.Sequential(RecordingLSTM(2, 3, batch_first=True, dtype=np.float64, seed=0),
                          ln.LastStep(batch_first=True),
                          ln.Linear(3, 1, dtype=np.float64, seed=0))
    ln.fit(model, x, y, loss="mse", optimizer=ln.optim.SGD(model, lr=0.01), epochs=1,
           batch_size=4, seed=0, verbose=0, distributed=True)
    checks["threads_in_fit"] = (RecordingLSTM.seen == {share}
                                and model.layers[0].n_threads is None)
    checks = {k: all(comm.allgather(v)) for k, v in checks.items()}
    if RANK == 0:
        print(json.dumps({"checks": checks, "grad_err": err}), flush=True)


if __name__ == "__main__":
    main()
