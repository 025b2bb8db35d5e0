"""How calls are timed: alternating blocks of runs, medians and spreads, the GEMM rate.

The runs come in blocks that alternate between the libraries, with a pause before each
block: torch, ONNX Runtime and lstm_native each have their own thread pool, whose
threads keep spinning for a while after a call and would steal the next library's cores.
A figure is the median of all of a library's runs; the spread is their interquartile
range relative to it.
"""
from __future__ import annotations

import dataclasses
import gc
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["Task", "Timing", "Schedule", "time_tasks", "gemm_rate"]


@dataclasses.dataclass
class Task:
    """One library's call to time.

    Attributes
    ----------
    library : str
    run : callable
        The timed call.
    prepare : callable or None
        Untimed work before each timed call (the forward before a backward).
    """

    library: str
    run: Callable[[], object]
    prepare: Callable[[], object] | None = None


@dataclasses.dataclass
class Timing:
    """Per-call times of one library in one mode (seconds)."""

    library: str
    times: list[float]

    @property
    def median(self) -> float:
        return float(np.median(self.times))

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median."""
        q1, q3 = np.percentile(self.times, [25, 75])
        return float((q3 - q1) / self.median)


@dataclasses.dataclass
class Schedule:
    """How many runs, in how many alternating blocks, with what pause.

    Attributes
    ----------
    repeats : int or None
        Timed runs per library; None picks them from `target` (at least `min_runs`).
    target : float
        Seconds of timed runs per library and mode when `repeats` is None.
    min_runs, max_runs : int
    blocks : int
        Blocks per library; the libraries alternate block by block.
    pause : float
        Seconds of sleep before each block.
    warmup : int
        Untimed runs per library first.
    """

    repeats: int | None = None
    target: float = 1.0
    min_runs: int = 5
    max_runs: int = 200
    blocks: int = 5
    pause: float = 0.3
    warmup: int = 2

    @classmethod
    def quick(cls) -> Schedule:
        return cls(repeats=3, min_runs=3, blocks=1, pause=0.05, warmup=1)


def _call(task: Task) -> float:
    if task.prepare is not None:
        task.prepare()
    start = time.perf_counter()
    task.run()
    return time.perf_counter() - start


def time_tasks(tasks: Sequence[Task], schedule: Schedule) -> list[Timing]:
    """Time the tasks in alternating blocks, as the module's notes explain.

    Returns
    -------
    list of Timing
        One per task, in the tasks' order.
    """
    estimate = 0.0
    for task in tasks:
        for _ in range(max(1, schedule.warmup)):
            estimate = max(estimate, _call(task))
    runs = schedule.repeats
    if runs is None:
        runs = math.ceil(schedule.target / max(estimate, 1e-6))
        runs = min(max(runs, schedule.min_runs), schedule.max_runs)
    blocks = max(1, min(schedule.blocks, runs))
    per_block = math.ceil(runs / blocks)
    times: dict[int, list[float]] = {i: [] for i in range(len(tasks))}
    for block in range(blocks):
        order = list(enumerate(tasks))
        if block % 2:
            order.reverse()  # nobody always runs right after the same neighbour
        for i, task in order:
            gc.collect()
            time.sleep(schedule.pause)
            gc.disable()
            try:
                times[i].extend(_call(task) for _ in range(per_block))
            finally:
                gc.enable()
    return [Timing(task.library, times[i]) for i, task in enumerate(tasks)]


def gemm_rate(dtype, n_threads: int, size: int = 2048, runs: int = 5) -> float:
    """GF/s of numpy's matmul of two `size`² matrices on `n_threads` BLAS threads.

    The machine's practical peak for the LSTM's GEMMs, measured in the same run. Note
    that OpenBLAS (numpy's and scipy's) picks its kernels by ``OPENBLAS_CORETYPE``.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    out = np.empty_like(a)
    with threadpool_limits(limits=n_threads, user_api="blas"):
        np.matmul(a, b, out=out)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append(time.perf_counter() - start)
    return 2 * size**3 / float(np.median(times)) / 1e9
