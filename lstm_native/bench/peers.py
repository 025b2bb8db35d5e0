"""The libraries timed: lstm_native, torch.nn and ONNX Runtime, on an LSTM or a GRU.

One process times every library on the same weights and inputs (a `Problem`, converted
from one lstm_native model of the configuration's cell: ``ln.LSTM`` against
``torch.nn.LSTM`` and ONNX's ``LSTM`` operator, ``ln.GRU`` against ``torch.nn.GRU`` and
ONNX's ``GRU`` with linear_before_reset=1), so their ratio is measured under the same
load; figures taken at different times on a shared 2-core machine vary by up to 2.5x,
ratios much less.
Each peer's output is checked against lstm_native's before it is timed. torch and ONNX
are imported only when their runner is built. A variant no peer has (the peephole LSTM)
is timed against lstm_native's plain layer instead (its cell's `Cell.baseline`), on the
same shared weights and data, in the same alternating blocks.
"""
from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

import lstm_native as ln

from .configs import CELLS, LIBRARIES, Config
from .machine import optional_import
from .timing import Schedule, Task, Timing, time_tasks

__all__ = ["Problem", "onnx_session", "TASK_FACTORIES", "available_libraries", "measure"]

#: Largest relative difference |peer - ours| / max(1, max|ours|) accepted before timing.
AGREEMENT_RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


@dataclasses.dataclass
class Problem:
    """The shared weights and data of one configuration (its shape and cell) in one
    dtype."""

    cfg: Config
    dtype: np.dtype
    state_dict: dict
    x: np.ndarray
    dout: np.ndarray

    @classmethod
    def make(cls, cfg: Config, dtype, seed: int = 0) -> Problem:
        model = getattr(ln, CELLS[cfg.cell].layer)(cfg.input_size, cfg.hidden_size,
                                                   **cfg.layer_kwargs(), dtype=dtype, seed=seed)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((cfg.steps, cfg.batch, cfg.input_size)).astype(dtype)
        dout = rng.standard_normal(
            (cfg.steps, cfg.batch, cfg.directions * cfg.state_size)).astype(dtype)
        return cls(cfg, np.dtype(dtype), model.state_dict(), x, dout)

    def ln_model(self, n_threads: int):
        """The lstm_native layer (`ln.LSTM`, `ln.GRU`) with the shared weights."""
        cfg = self.cfg
        model = getattr(ln, CELLS[cfg.cell].layer)(cfg.input_size, cfg.hidden_size,
                                                   **cfg.layer_kwargs(), dtype=self.dtype,
                                                   n_threads=n_threads)
        model.load_state_dict(self.state_dict)
        return model

    @functools.cached_property
    def baseline(self) -> Problem | None:
        """The problem of the cell's `Cell.baseline` on the same shape, data and weights
        (those the baseline has: a variant's own, like the peepholes, left out); None
        without a baseline."""
        cell = CELLS[self.cfg.cell].baseline
        if cell is None:
            return None
        cfg = self.cfg.with_cell(cell)
        names = getattr(ln, CELLS[cell].layer)(cfg.input_size, cfg.hidden_size,
                                               **cfg.layer_kwargs()).state_dict()
        return Problem(cfg, self.dtype, {k: self.state_dict[k] for k in names},
                       self.x, self.dout)

    @functools.cached_property
    def reference_output(self) -> np.ndarray:
        """lstm_native's inference output: what the peers are checked against."""
        return self.ln_model(1).eval()(self.x)[0]


def _check_agreement(name: str, actual, expected, dtype) -> None:
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    err = float(np.max(np.abs(actual - expected)) / max(1.0, float(np.max(np.abs(expected)))))
    tol = AGREEMENT_RTOL[np.dtype(dtype)]
    if not err <= tol:
        raise RuntimeError(f"{name}'s output differs from lstm_native's by {err:.2e} "
                           f"(relative; tolerance {tol:.0e}): not timing different math")


# -- ONNX Runtime's LSTM and GRU operators ---------------------------------------------
# The model is `lstm_native.onnx.recurrent_model`'s (imported when the runner is built).

def onnx_session(model, n_threads: int):
    """An ONNX Runtime CPU session on `n_threads` intra-op threads, one inter-op."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = n_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model.SerializeToString(), sess_options=options,
                                providers=["CPUExecutionProvider"])


# -- each library's call ------------------------------------------------------------------

def ln_task(problem: Problem, mode: str, n_threads: int, check: bool = True) -> Task:
    """lstm_native's call for `mode` (`check` is for the peers' signature: ours is the
    reference)."""
    model = problem.ln_model(n_threads)
    x, dout = problem.x, problem.dout
    if mode == "infer":
        model.eval()
        return Task("lstm_native", lambda: model(x))
    model.train()
    if mode == "bwd":
        return Task("lstm_native", lambda: model.backward(dout, input_grad=False),
                    prepare=lambda: model(x))
    input_grad = mode == "train_dx"

    def step():
        model(x)
        return model.backward(dout, input_grad=input_grad)
    return Task("lstm_native", step)


def torch_task(problem: Problem, mode: str, n_threads: int,
               check: bool = True) -> Task | None:
    """``torch.nn.LSTM``'s or ``torch.nn.GRU``'s call for `mode` (time-major; oneDNN as
    torch configures it); None for a cell torch is not a peer of (`Cell.peers`)."""
    cfg = problem.cfg
    if "torch" not in CELLS[cfg.cell].peers:
        return None
    import torch

    torch.set_num_threads(n_threads)
    layer = CELLS[cfg.cell].layer
    tdtype = torch.float64 if problem.dtype == np.float64 else torch.float32
    rnn = getattr(torch.nn, layer)(cfg.input_size, cfg.hidden_size, **cfg.layer_kwargs(),
                                   dtype=tdtype)
    if cfg.proj_size:
        # torch warns on each call that oneDNN has no projected LSTM and runs its own
        # implementation: what is timed, and said in docs/performance.md.
        warnings.filterwarnings("ignore", "LSTM with projections", UserWarning)
    rnn.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                         for k, v in problem.state_dict.items()})
    x, dout = torch.from_numpy(problem.x), torch.from_numpy(problem.dout)
    if check:
        with torch.no_grad():
            _check_agreement(f"torch.nn.{layer}", rnn(x)[0].numpy(), problem.reference_output,
                             problem.dtype)
    if mode == "infer":
        rnn.eval()

        def infer():
            with torch.no_grad():
                return rnn(x)
        return Task("torch", infer)
    rnn.train()
    # Gradients allocated up front, as lstm_native's are: backward accumulates into them
    # from the first step on, as in every later one, and a memory measurement finds
    # both libraries with their weights and gradients in place.
    for p in rnn.parameters():
        p.grad = torch.zeros_like(p)
    if mode == "bwd":
        kept = {}

        def forward():
            kept["out"] = rnn(x)[0]
        return Task("torch", lambda: kept.pop("out").backward(dout), prepare=forward)
    if mode == "train_dx":
        x = x.clone().requires_grad_(True)

        def clear():
            x.grad = None
    else:
        clear = None

    def step():
        out = rnn(x)[0]
        out.backward(dout)
    return Task("torch", step, prepare=clear)


def ort_task(problem: Problem, mode: str, n_threads: int, check: bool = True) -> Task | None:
    """ONNX Runtime's call: float32 inference only (None otherwise, and for a cell ONNX
    Runtime is not a peer of, `Cell.peers`: a projected LSTM, which ONNX's operator
    cannot express, or a variant)."""
    if (mode != "infer" or problem.dtype != np.float32
            or "onnxruntime" not in CELLS[problem.cfg.cell].peers):
        return None
    from lstm_native.onnx import recurrent_model

    cfg = problem.cfg
    session = onnx_session(recurrent_model(problem.state_dict, cfg.input_size,
                                           cfg.hidden_size, cfg.num_layers,
                                           cfg.bidirectional, cfg.cell), n_threads)
    feed = {"x": problem.x}
    if check:
        _check_agreement(f"ONNX Runtime's {CELLS[cfg.cell].layer}",
                         session.run(["out"], feed)[0],
                         problem.reference_output, problem.dtype)
    return Task("onnxruntime", lambda: session.run(["out"], feed))


TASK_FACTORIES = {"lstm_native": ln_task, "torch": torch_task, "onnxruntime": ort_task}


def available_libraries(wanted: Iterable[str] = LIBRARIES) -> tuple[list[str], dict]:
    """The wanted libraries that import here, and why the others do not."""
    found, missing = [], {}
    needs = {"torch": ("torch",), "onnxruntime": ("onnxruntime", "onnx")}
    for lib in wanted:
        absent = [m for m in needs.get(lib, ()) if optional_import(m) is None]
        if absent:
            missing[lib] = f"{', '.join(absent)} not importable"
        else:
            found.append(lib)
    return found, missing


def measure(problem: Problem, mode: str, n_threads: int, libraries: Sequence[str],
            schedule: Schedule) -> list[Timing]:
    """Build each library's task for `mode` (skipping those without one) and time them,
    with lstm_native's baseline (`Problem.baseline`) last, labelled
    `Cell.baseline_library`, when the cell has one."""
    tasks = []
    for lib in libraries:
        task = TASK_FACTORIES[lib](problem, mode, n_threads)
        if task is not None:
            tasks.append(task)
    if problem.baseline is not None:
        plain = ln_task(problem.baseline, mode, n_threads)
        tasks.append(dataclasses.replace(
            plain, library=CELLS[problem.cfg.cell].baseline_library))
    with threadpool_limits(limits=n_threads, user_api="blas"):
        return time_tasks(tasks, schedule)
