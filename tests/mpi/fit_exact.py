"""Run under mpiexec: data-parallel `fit` against the one-process `fit` with the same
arguments. Every rank runs both (so no rank idles in a busy-polling MPI wait).

Usage: mpiexec -n N python tests/mpi/fit_exact.py CASE [CASE ...]

Prints on rank 0 one JSON line, per case: ``err``, the largest difference of the
weights relative to their largest magnitude (max |a - b| / max |b|); ``state_err``, the
same for the optimizer's state arrays (the largest over them, each relative to its own
largest magnitude) and ``steps_equal``, the optimizer's step counts equal;
``ranks_equal``, whether every rank ended with bitwise the same weights and optimizer
state; ``history_err``, the largest relative difference of the History's numbers;
``epochs`` of both runs; ``histories_equal``, whether every rank returned the same
History; and ``sharded``, whether the distributed run divided the optimizer's step among
the ranks (`distributed._ShardedStep`) rather than running it whole on each.
"""
import json
import sys

import numpy as np
from mpi4py import MPI

import lstm_native as ln
from lstm_native import distributed as dist
from lstm_native import losses, optim, schedules

comm = MPI.COMM_WORLD
RANK = comm.Get_rank()

#: The sharded steps taken (each rank's), counted by a wrapper of `_ShardedStep.step`.
SHARDED_STEPS = []
_sharded_step = dist._ShardedStep.step


def _counted_step(self, *args, **kwargs):
    SHARDED_STEPS.append(1)
    return _sharded_step(self, *args, **kwargs)


dist._ShardedStep.step = _counted_step


def build(kind, dtype, distributed):
    """The case's model. In the distributed run, ranks other than 0 build theirs from
    other seeds: the broadcast of rank 0's parameters and generators must undo that."""
    seed = 3 + (100 * RANK if distributed else 0)
    if kind == "seq2seq":
        return ln.Sequential(
            ln.LSTM(2, 5, batch_first=True, dtype=dtype, seed=seed, recurrent_dropout=0.25,
                    input_dropout=0.2),
            ln.Linear(5, 1, dtype=dtype, seed=seed))
    if kind == "classes":
        return ln.Sequential(
            ln.GRU(2, 4, batch_first=True, dtype=dtype, seed=seed, dropout=0.0),
            ln.LastStep(batch_first=True), ln.Dropout(0.2, seed=seed),
            ln.Linear(4, 3, dtype=dtype, seed=seed))
    return ln.Sequential(
        ln.LSTM(2, 5, num_layers=2, batch_first=True, dtype=dtype, seed=seed, dropout=0.3,
                recurrent_dropout=0.2),
        ln.LastStep(batch_first=True), ln.Dropout(0.25, seed=seed),
        ln.Linear(5, 1, dtype=dtype, seed=seed))


def data(kind, dtype, n, T=6, seed=7):
    """(x, y, lengths) of the case."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, T, 2)).astype(dtype)
    lengths = rng.integers(1, T + 1, n)
    if kind == "seq2seq":
        return x, np.cumsum(x[..., :1], axis=1) * 0.3, None
    if kind == "classes":
        y = (x.sum(axis=(1, 2)) > 0).astype(np.int64) + (x[:, 0, 0] > 1)
        y[::5] = -100  # ignored targets (losses.CrossEntropyLoss's ignore_index)
        return x, y, lengths
    return x, x.sum(axis=(1, 2))[:, None] * 0.3, lengths


def run(kind, dtype, distributed, n, opt, scheduler=None, callbacks=(), **kw):
    x, y, lengths = data(kind, dtype, n)
    model = build(kind, dtype, distributed)
    optimizer = opt(model)
    history = ln.fit(model, x, y, optimizer=optimizer, lengths=lengths,
                     scheduler=None if scheduler is None else scheduler(optimizer),
                     callbacks=[make() for make in callbacks], verbose=0,
                     distributed=distributed, **kw)
    weights = np.concatenate([p.ravel().astype(np.float64)
                              for p in model.parameters().values()])
    state = optimizer.state_dict()
    return (weights, {k: v for k, v in history.items() if k != "seconds"},
            (state["step"], {k: a.astype(np.float64) for k, a in state["buffers"].items()}))


def same_state(a, b) -> bool:
    return a[0] == b[0] and a[1].keys() == b[1].keys() and all(
        np.array_equal(a[1][k], b[1][k]) for k in a[1])


def case(kind, dtype, n=23, reference=True, **kw):
    SHARDED_STEPS.clear()
    many, hn, sn = run(kind, dtype, True, n, **kw)
    result = {"ranks_equal": all(np.array_equal(many, w) and same_state(sn, s)
                                 for w, s in comm.allgather((many, sn))),
              "histories_equal": all(h == hn for h in comm.allgather(hn)),
              "sharded": bool(SHARDED_STEPS)}
    if reference:
        one, h1, s1 = run(kind, dtype, False, n, **kw)
        result["err"] = float(np.max(np.abs(many - one)) / np.max(np.abs(one)))
        result["state_err"] = max(
            (float(np.max(np.abs(sn[1][k] - a)) / max(np.max(np.abs(a)), 1e-300))
             for k, a in s1[1].items()), default=0.0)
        result["steps_equal"] = sn[0] == s1[0]
        result["history_err"] = max(
            float(np.max(np.abs(np.subtract(hn[k], h1[k])) / np.maximum(1e-300, np.abs(h1[k]))))
            for k in h1)
        result["epochs"] = [len(h1["loss"]), len(hn["loss"])]
    return result


def adam(model):
    return optim.Adam(model, lr=0.01)


class HalvedSGD(optim.SGD):
    """An optimizer of one's own (its update replaced): distributed training cannot know
    it is elementwise, so every rank runs its whole step (the replicated path)."""

    def _update(self, p, g, bufs, work, first) -> None:
        super()._update(p, g * 0.5, bufs, work, first)


def adam_epochs(dtype):
    """Epochs of Adam on shuffled batches of 7 (the last one of 2, fewer than 3 ranks),
    with validation, metrics, clipping, early stopping and a plateau schedule."""
    return case(
        "many_to_one", dtype, loss=losses.HuberLoss(delta=0.5), opt=adam, epochs=6,
        batch_size=7, clip_norm=0.2, metrics=["mae", "rmse"], seed=11,
        validation_data=data("many_to_one", dtype, 9, seed=8),
        scheduler=lambda o: schedules.ReduceLROnPlateau(o, patience=0, factor=0.5),
        callbacks=[lambda: ln.EarlyStopping(patience=1)])


CASES = {
    # One step: the whole batch of 23 at once, clipped to the global norm.
    "step64": lambda: case("many_to_one", np.float64, loss="mse", opt=adam, epochs=1,
                           batch_size=23, clip_norm=0.05, seed=1),
    "step32": lambda: case("many_to_one", np.float32, loss="mse", opt=adam, epochs=1,
                           batch_size=23, clip_norm=0.05, seed=1),
    "adam64": lambda: adam_epochs(np.float64),
    "adam32": lambda: adam_epochs(np.float32),
    # AdamW's decoupled weight decay with amsgrad, a cosine schedule, clipping.
    "adamw64": lambda: case(
        "many_to_one", np.float64, loss="mse", epochs=4, batch_size=6, clip_norm=0.1,
        opt=lambda m: optim.AdamW(m, lr=0.02, weight_decay=0.1, amsgrad=True), seed=2,
        scheduler=lambda o: schedules.CosineAnnealingLR(o, T_max=4)),
    # RMSprop, centered, with momentum and L2 weight decay; a step schedule.
    "rmsprop64": lambda: case(
        "many_to_one", np.float64, loss="l1", epochs=3, batch_size=8, seed=4,
        opt=lambda m: optim.RMSprop(m, lr=0.01, momentum=0.5, centered=True,
                                    weight_decay=0.01),
        scheduler=lambda o: schedules.StepLR(o, step_size=1, gamma=0.5)),
    # An optimizer of one's own: the replicated step, as exact.
    "own64": lambda: case("many_to_one", np.float64, loss="mse", epochs=2, batch_size=7,
                          clip_norm=0.1, opt=lambda m: HalvedSGD(m, lr=0.1, momentum=0.9),
                          seed=6),
    # Stateful truncated BPTT: chunks of 2 steps, the states carried across batches.
    "tbptt64": lambda: case("seq2seq", np.float64, n=24, loss="mse", opt=adam, epochs=4,
                            batch_size=6, tbptt=2, shuffle=False, stateful_batches=True),
    # Weighted cross-entropy with ignored targets, SGD with momentum.
    "classes64": lambda: case(
        "classes", np.float64, loss=losses.CrossEntropyLoss(weight=[1.0, 2.0, 0.5]),
        opt=lambda m: optim.SGD(m, lr=0.1, momentum=0.9), epochs=3, batch_size=8, seed=5),
    # seed=None: rank 0 draws it; no reference, the ranks must only agree.
    "noseed": lambda: case("many_to_one", np.float64, loss="mse", opt=adam, epochs=2,
                           batch_size=8, seed=None, reference=False),
}

if __name__ == "__main__":
    result = {name: CASES[name]() for name in sys.argv[1:]}
    if RANK == 0:
        print(json.dumps(result), flush=True)
