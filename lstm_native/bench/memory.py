"""Peak memory of a training step, each library in a fresh process of its own.

A fresh process per measurement, so that no library's caches or heap from an earlier
measurement count. The child runs `_memory_child` of this very package, imported by
its own name (``lstm_native.bench``, or a copy's: see docs/performance.md, "History"),
so parent and child always run the same code.
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Sequence

import numpy as np

from .configs import CELLS, CONFIGS, Config, activation_bytes, parameter_count
from .peers import TASK_FACTORIES, Problem
from .report import Table

__all__ = ["memory_usage", "memory_table"]


def _proc_status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``), or None."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ≥ 4.0: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _memory_child(spec: str) -> None:
    """Run in a fresh process: one training step's peak RSS growth, as JSON on stdout.

    The growth is from the RSS before a first (warm-up) step, with weights and gradients
    allocated, to the peak during the second step: what a library keeps from one step to
    the next (lstm_native its activation buffers, torch its caches) counts too.
    """
    import resource
    import tracemalloc

    spec = json.loads(spec)
    cfg = CONFIGS[spec["config"]].with_steps(spec["steps"]).with_cell(spec["cell"])
    dtype, lib = np.dtype(spec["dtype"]), spec["library"]
    problem = Problem.make(cfg, dtype)
    task = TASK_FACTORIES[lib](problem, "train", spec["n_threads"], check=False)
    gc.collect()
    exact = _reset_peak_rss()
    before = _proc_status_kib("VmRSS") if exact else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    task.run()
    gc.collect()
    exact = exact and _reset_peak_rss()
    task.run()
    peak = _proc_status_kib("VmHWM") if exact else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"rss_growth": (peak - before) * 1024, "exact": exact}
    if lib == "lstm_native":  # numpy's buffers are traced; torch's are not
        tracemalloc.start()
        task.run()
        result["traced_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(json.dumps(result))


def memory_usage(cfg: Config, dtype, library: str, n_threads: int) -> dict:
    """Peak RSS growth of one training step of `library` on `cfg` (its shape, T and
    cell), in a fresh process.

    Returns
    -------
    dict
        ``rss_growth`` (bytes), ``exact`` (False where the peak could not be reset and
        is the process's whole-life maximum) and, for lstm_native, ``traced_peak``.
    """
    spec = json.dumps({"config": cfg.name, "steps": cfg.steps, "cell": cfg.cell,
                       "dtype": np.dtype(dtype).name, "library": library,
                       "n_threads": n_threads})
    code = (f"import sys; from {__package__}.memory import _memory_child; "
            "_memory_child(sys.argv[1])")
    # A fixed mmap threshold turns off glibc's adaptive one, under which buffers freed by
    # the warm-up step would stay in the heap and hide the step's growth from the RSS.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    done = subprocess.run([sys.executable, "-c", code, spec],
                          capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_table(cfgs: Sequence[Config], dtype, libraries: Sequence[str],
                 n_threads: int) -> Table:
    """Each library's training-step memory next to the activations the cell must keep."""
    itemsize = np.dtype(dtype).itemsize
    mib = 2.0**20
    table = Table(f"Memory of a training step (forward + backward, no input gradient) — "
                  f"{np.dtype(dtype).name}",
                  ["cfg", "cell", "library", "peak RSS growth MiB", "numpy peak MiB",
                   "activations MiB", "growth / activations", "weights + grads MiB",
                   "peak / (act. + w + g)"],
                  left=3,
                  notes=["activations: per step, layer and direction, the least a training "
                         "forward keeps for backward: LSTM the gates 4H + cell + hidden, GRU "
                         "the gates 3H + n's recurrent term + hidden; "
                         "growth: from before a first step (weights and gradients "
                         "allocated) to the peak of the second, so what a library keeps "
                         "between steps counts. numpy peak: tracemalloc's peak of the "
                         "numpy buffers a third step allocates (lstm_native only; without "
                         "the activation buffers it reuses). "
                         "peak / (act. + w + g): (growth + weights + grads) / (activations "
                         "+ weights + grads), the step's peak against what it must hold "
                         "(the issue's bound: 1.5)."])
    for cfg in cfgs:
        acts = activation_bytes(cfg, itemsize)
        params = 2 * parameter_count(cfg) * itemsize
        for lib in libraries:
            # ONNX Runtime has no training; a peer without the cell has nothing to run.
            if lib == "onnxruntime" or (lib != "lstm_native"
                                        and lib not in CELLS[cfg.cell].peers):
                continue
            m = memory_usage(cfg, dtype, lib, n_threads)
            traced = m.get("traced_peak")
            table.rows.append([cfg.name, cfg.cell, lib, f"{m['rss_growth'] / mib:.1f}",
                               f"{traced / mib:.1f}" if traced is not None else "–",
                               f"{acts / mib:.1f}", f"{m['rss_growth'] / acts:.2f}",
                               f"{params / mib:.1f}",
                               f"{(m['rss_growth'] + params) / (acts + params):.2f}"])
    return table
