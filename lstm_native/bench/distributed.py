"""``python -m lstm_native.bench.distributed``: data-parallel training steps over MPI.

What is timed is `fit(..., distributed=True)` itself, over a fixed number of batches
(``verbose=0``, no validation, no shuffling): a bare `LSTM` of a configuration's shape
trained with the MSE of its output against random targets and Adam, i.e. per step the
forward, the loss, the backward, the gradients' reduction and the Adam step: on several
ranks fit divides the Adam step among them (a Reduce_scatter of the gradients, each rank
updating its slice, an Allgatherv of the parameters: `distributed._ShardedStep`); a
layout marked replicated (``2x1r``) runs the earlier way instead, an Allreduce and the
whole Adam step on every rank, for comparison in the same run. A step's time is the
interval between two of fit's ``on_batch_end`` calls on rank 0 (the ranks leave each
step together, after its collectives).

Each layout, R ranks × T threads, runs in processes of its own: the benchmark launches
them (``mpiexec -n R`` for more than one rank, plain ``python`` for one) with
``OMP_NUM_THREADS=T`` and layers of ``n_threads=T``, one configuration after another
in the same process, and prints one JSON line (rank 0). The layouts alternate, round
after round, so that a change of the machine's load hits all of them alike; a figure is
the median of all a layout's timed steps. Each step's CPU time (rank 0's process, all
its threads) over its time says how much of its cores a rank got: on a machine shared
with other jobs, less than its threads.

The gradients' reduction (the Allreduce, or the Reduce_scatter and the Allgatherv) is
timed inside the steps by wrapping the communicator fit's reduction is given
(`distributed._sum_in_place`, `distributed._ShardedStep.step`), and the optimizer's
update (`Optimizer.step`, `Optimizer._step_slices`) alike. The ranks meet just before
the reduction, in the gather of the step's losses (where the faster rank waits for the
slower), so its time is mostly the transfer's. After the steps, the same collectives are
timed alone (each call after a Barrier), for comparison.

The projection (`projection_table`) applies the ring all-reduce's model to the measured
step of one rank: see docs/distributed.md, "Scaling to many ranks".
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np

import lstm_native as ln
from lstm_native import distributed

from .configs import CONFIGS, Config, parameter_count
from .machine import machine_info
from .report import Table, ms
from .run import say

__all__ = ["LAYOUTS", "NETWORKS", "Layout", "build_parser", "main", "measure",
           "projection_table", "ring_allreduce_seconds", "run_worker", "speedup_table",
           "steps_table"]

#: The configurations timed by default.
DEFAULT_CONFIGS = ("B", "D", "E")

#: The speed-up of 2 ranks × 1 thread over 1 rank × 1 thread the issue asks for.
TARGET = 1.8

#: Networks of the projection: name -> (bytes per second, seconds of latency per message).
#: Line rates; the latencies are typical of TCP over 10 Gbit/s Ethernet and of RDMA
#: (InfiniBand, RoCE) at 100 Gbit/s.
NETWORKS = {"10 Gbit/s": (10e9 / 8, 20e-6), "100 Gbit/s": (100e9 / 8, 2e-6)}

#: The numbers of ranks of the projection.
PROJECTED_RANKS = (8, 16, 32, 64)

#: Ranks of the projection, as fast as the measured one-rank layout with the most
#: threads times these: 16x a 2-core rank is a 32-core socket at the same speed per core.
FASTER_RANKS = (1, 16)


@dataclasses.dataclass(frozen=True)
class Layout:
    """R ranks of T threads each; `replicated`: every rank runs the whole optimizer step
    after an Allreduce (fit divides the step among the ranks otherwise)."""

    ranks: int
    threads: int
    replicated: bool = False

    @property
    def name(self) -> str:
        return f"{self.ranks}×{self.threads}" + (" replicated" if self.replicated else "")

    @classmethod
    def parse(cls, text: str) -> Layout:
        """``"2x1"`` (or ``"2×1"``): 2 ranks of 1 thread; ``"2x1r"``: the same with the
        replicated optimizer step."""
        text = text.strip().replace("×", "x")
        replicated = text.endswith("r")
        ranks, sep, threads = text.removesuffix("r").partition("x")
        try:
            layout = cls(int(ranks), int(threads), replicated)
        except ValueError:
            layout = None
        if (not sep or layout is None or layout.ranks < 1 or layout.threads < 1
                or (replicated and layout.ranks == 1)):
            raise argparse.ArgumentTypeError(
                f"a layout is RANKSxTHREADS with positive numbers, e.g. 2x1, and an r "
                f"after it for the replicated optimizer step on several ranks (2x1r); "
                f"got {text!r}")
        return layout


LAYOUTS = (Layout(1, 1), Layout(1, 2), Layout(2, 1), Layout(2, 1, replicated=True))


# -- one layout's processes -----------------------------------------------------------

class _StepTimes(ln.Callback):
    """The seconds of each step of fit, from the epoch's start or the last step's end to
    this step's end: on the clock, and of this process's CPU time (all its threads); and
    the seconds `parts` gathered during the step (`_timed_parts`), per part."""

    def __init__(self, parts: dict):
        self.seconds, self.cpu_seconds = [], []
        self.parts, self.part_seconds = parts, {name: [] for name in parts}
        self._last = None

    def on_epoch_begin(self, run):
        self._last = (time.perf_counter(), time.process_time())
        for name in self.parts:
            self.parts[name] = 0.0

    def on_batch_end(self, run, logs):
        now = (time.perf_counter(), time.process_time())
        self.seconds.append(now[0] - self._last[0])
        self.cpu_seconds.append(now[1] - self._last[1])
        self._last = now
        for name, seconds in self.parts.items():
            self.part_seconds[name].append(seconds)
            self.parts[name] = 0.0


#: The collectives of the gradients' reduction (mpi4py's names).
_REDUCTIONS = ("Allreduce", "Reduce_scatter", "Allgatherv")


class _TimedComm:
    """A communicator whose gradient collectives (`_REDUCTIONS`) add their seconds to
    ``parts["reduction"]``; the rest is the real one's."""

    def __init__(self, comm, parts: dict):
        self._comm, self._parts = comm, parts

    def __getattr__(self, name):
        call = getattr(self._comm, name)
        if name not in _REDUCTIONS:
            return call

        def timed(*args, **kwargs):
            start = time.perf_counter()
            call(*args, **kwargs)
            self._parts["reduction"] += time.perf_counter() - start

        return timed


def _timer(parts: dict, name: str, method):
    """`method` adding its seconds to ``parts[name]``."""

    def timed(*args, **kwargs):
        start = time.perf_counter()
        method(*args, **kwargs)
        parts[name] += time.perf_counter() - start

    return timed


@contextlib.contextmanager
def _timed_parts(parts: dict):
    """Within the block, the seconds of fit's gradient collectives add up in
    ``parts["reduction"]`` and those of the optimizer's update in
    ``parts["optimizer"]``."""
    patched = [(distributed, "_sum_in_place"), (distributed._ShardedStep, "step"),
               (ln.optim.Optimizer, "step"), (ln.optim.Optimizer, "_step_slices")]
    saved = [(owner, name, getattr(owner, name)) for owner, name in patched]
    reduce, sharded = distributed._sum_in_place, distributed._ShardedStep.step

    def reduce_timed(comm, groups):
        reduce(_TimedComm(comm, parts), groups)

    def sharded_timed(self, comm, optimizer, clip_norm):
        sharded(self, _TimedComm(comm, parts), optimizer, clip_norm)

    distributed._sum_in_place = reduce_timed
    distributed._ShardedStep.step = sharded_timed
    ln.optim.Optimizer.step = _timer(parts, "optimizer", ln.optim.Optimizer.step)
    ln.optim.Optimizer._step_slices = _timer(parts, "optimizer",
                                             ln.optim.Optimizer._step_slices)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def _reduction_alone(nbytes: int, dtype, repeats: int, sharded: bool) -> float:
    """The median seconds of the gradients' reduction of `nbytes` of `dtype` alone, each
    after a Barrier (so that no rank waits for another inside it): an in-place
    Allreduce, or when `sharded` a Reduce_scatter and an in-place Allgatherv of even
    slices (as `distributed._ShardedStep`); 0 on one rank."""
    if distributed.size() == 1:
        return 0.0
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    buffer = np.ones(nbytes // np.dtype(dtype).itemsize, dtype)
    bounds = [distributed.shard_bounds(buffer.size, r, comm.Get_size())
              for r in range(comm.Get_size())]
    counts, starts = [hi - lo for lo, hi in bounds], [lo for lo, _ in bounds]
    mine = np.empty(counts[comm.Get_rank()], dtype)
    seconds = []
    for _ in range(repeats + 1):  # the first call sets up the transfer: untimed
        comm.Barrier()
        start = time.perf_counter()
        if sharded:
            comm.Reduce_scatter(buffer, mine, counts, op=MPI.SUM)
            comm.Allgatherv(MPI.IN_PLACE, [buffer, (counts, starts)])
        else:
            comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds[1:]))


def _time_config(cfg: Config, dtype, threads: int, steps: int, warmup: int) -> dict:
    """fit(..., distributed=True) over `warmup` + `steps` global batches of `cfg`: the
    timed steps' seconds (rank 0's), each rank's in-step reduction seconds per step
    (under "allreduce", whichever collectives it took), rank 0's optimizer seconds per
    step, and the reduction alone."""
    rng = np.random.default_rng(0)
    n = cfg.batch * (warmup + steps)
    x = rng.standard_normal((n, cfg.steps, cfg.input_size)).astype(dtype)
    y = rng.standard_normal((n, cfg.steps, cfg.hidden_size)).astype(dtype)
    model = ln.LSTM(cfg.input_size, cfg.hidden_size, cfg.num_layers, batch_first=True,
                    dtype=dtype, seed=0, n_threads=threads)
    optimizer = ln.optim.Adam(model, lr=1e-3)
    parts = {"reduction": 0.0, "optimizer": 0.0}
    timer = _StepTimes(parts)
    with _timed_parts(parts):
        ln.fit(model, x, y, loss="mse", optimizer=optimizer, epochs=1, batch_size=cfg.batch,
               shuffle=False, verbose=0, callbacks=[timer], distributed=True)
    nbytes = sum(p.nbytes for p in model.parameters().values())
    # This rank's seconds inside the reduction of each timed step.
    reductions = timer.part_seconds["reduction"][warmup:]
    ranks_reductions = distributed._world().allgather(reductions) \
        if distributed.size() > 1 else [[0.0] * steps]
    sharded = distributed.size() > 1 and distributed._sharded_step(optimizer) is not None
    return {"config": cfg.name, "batch": cfg.batch, "parameters": parameter_count(cfg),
            "gradient_bytes": nbytes, "steps": timer.seconds[warmup:],
            "cpu": timer.cpu_seconds[warmup:],
            "allreduce": ranks_reductions, "sharded": sharded,
            "optimizer": timer.part_seconds["optimizer"][warmup:],
            "allreduce_alone": _reduction_alone(nbytes, dtype, repeats=max(steps, 5),
                                                sharded=sharded)}


def run_worker(configs: Sequence[str], dtype: str, threads: int, steps: int,
               warmup: int, replicated: bool = False) -> dict:
    """One layout's run, in this process and rank (`main`'s ``--worker``): the timings
    of each configuration (`_time_config`); with `replicated`, fit's optimizer step is
    not divided among the ranks (an Allreduce, then the whole step on every rank)."""
    choose = distributed._sharded_step
    if replicated:
        distributed._sharded_step = lambda optimizer: None
    try:
        return {"ranks": distributed.size(), "threads": threads, "dtype": dtype,
                "results": [_time_config(CONFIGS[c], np.dtype(dtype), threads, steps,
                                         warmup) for c in configs]}
    finally:
        distributed._sharded_step = choose


def mpiexec_path() -> str | None:
    """MPI's launcher: the one beside this Python (the mpich wheel's), else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("mpiexec")


def _launch(layout: Layout, args: argparse.Namespace) -> dict:
    """Run one layout's worker processes; their JSON line."""
    command = [sys.executable, "-m", "lstm_native.bench.distributed", "--worker",
               "--configs", ",".join(args.configs), "--dtype", args.dtype,
               "--threads", str(layout.threads), "--steps", str(args.steps),
               "--warmup", str(args.warmup)] + (["--replicated"] if layout.replicated else [])
    if layout.ranks > 1:
        if args.mpiexec is None:
            raise SystemExit("no mpiexec beside this Python or on PATH: install mpich "
                             "(pip install 'lstm_native[mpi]') or pass --mpiexec")
        command = [args.mpiexec, "-n", str(layout.ranks)] + command
    env = dict(os.environ, OMP_NUM_THREADS=str(layout.threads))
    run = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({run.returncode}):\n{run.stderr}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def measure(args: argparse.Namespace) -> dict:
    """Every layout, `args.rounds` times, alternating: {layout name: {config: pooled
    results}}."""
    pooled: dict = {layout.name: {} for layout in args.layouts}
    for round_ in range(args.rounds):
        order = args.layouts if round_ % 2 == 0 else args.layouts[::-1]
        for layout in order:
            say(f"round {round_ + 1}/{args.rounds}: {layout.name} ...")
            for r in _launch(layout, args)["results"]:
                into = pooled[layout.name].setdefault(r["config"], dict(
                    r, steps=[], cpu=[], allreduce=[], allreduce_alone=[], optimizer=[]))
                into["steps"] += r["steps"]
                into["cpu"] += r["cpu"]
                into["optimizer"] += r["optimizer"]
                # Per step, the ranks' mean time inside the Allreduce.
                into["allreduce"] += np.mean(r["allreduce"], axis=0).tolist()
                into["allreduce_alone"].append(r["allreduce_alone"])
    return pooled


# -- tables ------------------------------------------------------------------------------

def _median(values) -> float:
    return float(np.median(values))


def _spread(values) -> str:
    q1, q3 = np.percentile(values, [25, 75])
    return f"{100 * (q3 - q1) / np.median(values):.0f}%"


def steps_table(pooled: dict, layouts: Sequence[Layout], dtype: str) -> Table:
    """One row per configuration and layout: the step, samples per second, the speed-up
    over 1×1, the optimizer's update, the reduction inside the step and alone."""
    table = Table(f"Data-parallel training steps, {dtype}: fit(..., distributed=True) of "
                  "an LSTM, MSE, Adam (medians over all rounds' steps)",
                  ["cfg", "layout", "global batch", "step ms", "spread", "samples/s",
                   "vs 1×1", "cores busy", "Adam ms", "reduction", "reduction ms",
                   "reduction share", "alone ms", "gradients MB"], left=2)
    configs = list(dict.fromkeys(c for by_cfg in pooled.values() for c in by_cfg))
    for name in configs:
        base = pooled.get("1×1", {}).get(name)
        for layout in layouts:
            r = pooled[layout.name].get(name)
            if r is None:
                continue
            step = _median(r["steps"])
            inside = _median(r["allreduce"]) if layout.ranks > 1 else None
            table.rows.append([
                name, layout.name, str(r["batch"]), ms(step), _spread(r["steps"]),
                f"{r['batch'] / step:.1f}",
                f"{_median(base['steps']) / step:.2f}" if base else "–",
                f"{_busy(r, layout) * layout.threads:.2f} of {layout.threads}",
                ms(_median(r["optimizer"])),
                ("–" if layout.ranks == 1 else
                 "sharded" if r.get("sharded") else "Allreduce"),
                ms(inside) if inside is not None else "–",
                f"{100 * inside / step:.1f}%" if inside is not None else "–",
                ms(_median(r["allreduce_alone"])) if layout.ranks > 1 else "–",
                f"{r['gradient_bytes'] / 1e6:.1f}"])
    table.notes.append("samples/s = global batch / step; cores busy: rank 0's CPU time "
                       "over the step's (its threads at most; less: the cores went to "
                       "other processes; MPI's waits spin and count as busy); Adam ms: "
                       "rank 0's update (its slice when sharded); reduction: sharded = "
                       "Reduce_scatter of the gradients + Allgatherv of the parameters, "
                       "Allreduce = the gradients' Allreduce and the whole Adam step on "
                       "every rank; reduction ms: the ranks' mean time inside it in a "
                       "step, its share of the step; alone ms: the same collectives "
                       "after a Barrier.")
    return table


def _busy(r: dict, layout: Layout) -> float:
    """The share of its cores a layout's rank 0 kept busy: CPU time over the step's time
    over its threads (1 when no other process took them)."""
    return _median(np.divide(r["cpu"], r["steps"])) / layout.threads


def speedup_table(pooled: dict, layouts: Sequence[Layout]) -> Table:
    """Each layout of several ranks against each layout of one: samples per second
    over samples per second, the target over 1×1, and the speed-up over 1×1 corrected
    for the load: as if each had kept its cores busy (the ratio times the share of its
    cores 1×1 kept busy over the share the ranks did)."""
    single = [lay for lay in layouts if lay.ranks == 1]
    multi = [lay for lay in layouts if lay.ranks > 1]
    table = Table(f"Speed-up of data parallelism (samples/s over samples/s); target "
                  f"≥ {TARGET:g}x over 1×1",
                  ["cfg", "layout"] + [f"vs {s.name}" for s in single]
                  + ["vs 1×1, load-corrected", "target met"], left=2)
    configs = list(dict.fromkeys(c for by_cfg in pooled.values() for c in by_cfg))
    for name in configs:
        for m in multi:
            r = pooled[m.name].get(name)
            if r is None:
                continue
            step = _median(r["steps"])
            ratios = {s.name: _median(pooled[s.name][name]["steps"]) / step
                      for s in single if name in pooled[s.name]}
            base = pooled.get("1×1", {}).get(name)
            corrected = (ratios["1×1"] * _busy(base, Layout(1, 1)) / _busy(r, m)
                         if base is not None else None)
            met = ("yes" if ratios["1×1"] >= TARGET else "no") if "1×1" in ratios else "–"
            table.rows.append([name, m.name]
                              + [f"{ratios[s.name]:.2f}x" if s.name in ratios else "–"
                                 for s in single]
                              + [f"{corrected:.2f}x" if corrected is not None else "–", met])
    table.notes.append("load-corrected: assumes a rank that got a share f of its cores "
                       "would run 1/f times as fast with all of them; MPI's waits spin "
                       "and count as busy, so it leans low.")
    return table


def ring_allreduce_seconds(nbytes: float, ranks: int, bandwidth: float,
                           latency: float) -> float:
    """The ring all-reduce's time: 2(N−1)/N · bytes / bandwidth + 2(N−1) · latency.

    Each rank sends and receives 2(N−1) chunks of bytes/N (a reduce-scatter, then an
    all-gather), each one message.
    """
    n = ranks
    return 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency


def projection_table(pooled: dict, layout: Layout, faster: float = 1.0) -> Table:
    """Projected speed-up of N ranks over one, each rank `faster` times as fast as
    `layout` (one rank of the measured machine) with the configuration's batch (the
    global batch N times it): N · t / (t + allreduce(N)), t the layout's measured step
    over `faster`, the allreduce the ring's (`ring_allreduce_seconds`) over `NETWORKS`,
    after the backward (not overlapped with it)."""
    columns = ["cfg", "step ms", "gradients MB"] + [
        f"N={n}, {net}" for net in NETWORKS for n in PROJECTED_RANKS]
    rank = f"{layout.name}" if faster == 1 else f"{faster:g}x a {layout.name}"
    table = Table(f"Projected speed-up over one rank of {rank} (per-rank batch fixed; "
                  "the ring all-reduce after the backward)", columns, left=1)
    for name, r in pooled.get(layout.name, {}).items():
        step = _median(r["steps"]) / faster
        row = [name, ms(step), f"{r['gradient_bytes'] / 1e6:.1f}"]
        for bandwidth, latency in NETWORKS.values():
            for n in PROJECTED_RANKS:
                t = ring_allreduce_seconds(r["gradient_bytes"], n, bandwidth, latency)
                row.append(f"{n * step / (step + t):.1f}")
        table.rows.append(row)
    return table


def _load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min)"


# -- the command line -------------------------------------------------------------------

def _configs(text: str) -> list[str]:
    names = [s.strip().upper() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in CONFIGS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown configuration {', '.join(bad) or '(none)'}; choose from "
            f"{', '.join(CONFIGS)}")
    return names


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lstm_native.bench.distributed",
        description="Time fit(..., distributed=True)'s training steps (forward, MSE, "
                    "backward, the gradients' reduction, Adam divided among the ranks "
                    "or replicated) of an LSTM of the standard configurations on "
                    "layouts of MPI ranks × threads; samples per second, speed-ups, "
                    "the optimizer's time, the reduction's share of a step, and the "
                    "projection to 8-64 ranks. Launches its own processes (mpiexec for "
                    "more than one rank).",
        epilog="Configurations: " + "; ".join(
            f"{c.name} = {c.describe()}" for c in CONFIGS.values()) + ".")
    parser.add_argument("--configs", type=_configs, default=list(DEFAULT_CONFIGS),
                        help="comma-separated configurations (default B,D,E)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--layouts", default=list(LAYOUTS),
                        type=lambda s: [Layout.parse(t) for t in s.split(",") if t.strip()],
                        help="comma-separated RANKSxTHREADS, an r after for the "
                             "replicated optimizer step (default 1x1,1x2,2x1,2x1r)")
    parser.add_argument("--rounds", type=_positive, default=3,
                        help="runs of every layout, alternating (default 3)")
    parser.add_argument("--steps", type=_positive, default=8,
                        help="timed steps per configuration and run (default 8)")
    parser.add_argument("--warmup", type=_positive, default=2,
                        help="untimed steps first (default 2)")
    parser.add_argument("--quick", action="store_true",
                        help="1 round of 3 steps after 1: a smoke test, not a figure")
    parser.add_argument("--mpiexec", default=mpiexec_path(),
                        help="MPI's launcher (default: beside this Python, else on PATH)")
    parser.add_argument("--json", metavar="FILE", help="also write the raw times as JSON")
    parser.add_argument("--markdown", metavar="FILE",
                        help="also write the tables as markdown")
    parser.add_argument("--worker", action="store_true",
                        help="internal: time the configurations in this process (under "
                             "mpiexec: this rank) on --threads and print one JSON line")
    parser.add_argument("--threads", type=_positive, default=1,
                        help="with --worker: the layers' threads")
    parser.add_argument("--replicated", action="store_true",
                        help="with --worker: every rank runs the whole optimizer step")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark as the command line asks; print the tables.

    Parameters
    ----------
    argv : sequence of str or None
        The arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    int
        The exit status, 0.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.quick:
        args.rounds, args.steps, args.warmup = 1, 3, 1
    if args.worker:
        result = run_worker(args.configs, args.dtype, args.threads, args.steps, args.warmup,
                            args.replicated)
        if distributed.rank() == 0:
            print(json.dumps(result), flush=True)
        return 0

    info = machine_info()
    info["load before"] = _load_line()
    pooled = measure(args)
    info["load after"] = _load_line()
    machine = Table("Machine and settings", ["what", "value"], left=2,
                    rows=[[k, str(v)] for k, v in info.items()])
    tables = [machine, steps_table(pooled, args.layouts, args.dtype),
              speedup_table(pooled, args.layouts)]
    one_rank = [lay for lay in args.layouts if lay.ranks == 1]
    if one_rank:
        widest = max(one_rank, key=lambda lay: lay.threads)
        tables += [projection_table(pooled, widest, faster) for faster in FASTER_RANKS]
    command = "python -m lstm_native.bench.distributed " + " ".join(argv)
    say()
    say(command)
    for table in tables:
        say()
        say(table.text())
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write("\n\n".join([f"`{command}`"] + [t.markdown() for t in tables]) + "\n")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"command": command, "machine": info, "results": pooled}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
