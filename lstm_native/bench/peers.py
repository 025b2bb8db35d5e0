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

A low-precision problem (``--dtype int8`` or ``bfloat16``) is the float32 problem (the
same seed: the same weights and data) run through `lstm_native.quantize`, in inference
only, with lstm_native's float32 layer beside it (`FLOAT32_LIBRARY`) and the peers'
paths in that precision: torch's layer cast to bfloat16 (oneDNN's bf16 LSTM; its GRU
has no oneDNN kernel and runs torch's own), and ONNX Runtime's float32 model through
``onnxruntime.quantization.quantize_dynamic`` (int8 weights, ``DynamicQuantizeLSTM``; it
leaves the GRU in float32, so there is no int8 GRU). torch 2.13's ``quantize_dynamic``
returns ``nn.LSTM`` unchanged: torch has no int8 path, ONNX Runtime no bfloat16 one.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import tempfile
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

import lstm_native as ln

from .configs import CELLS, FLOAT32_LIBRARY, LIBRARIES, LOW_PRECISIONS, Config
from .machine import optional_import
from .timing import Schedule, Task, Timing, time_tasks

__all__ = ["Problem", "onnx_session", "quantize_int8", "TASK_FACTORIES", "available_libraries",
           "measure"]

#: Largest relative difference |peer - ours| / max(1, max|ours|) accepted before timing;
#: in a low precision, any library's (ours too) against our float32 layer. Wrong math
#: (other weights, a gate order mixed up) is off by 0.1 to 1 on these problems.
#: int8 rounds each row of x_t and h_{t-1} to 255 levels over its range: about 6/255
#: for N(0, 1) inputs, whose half-step errors give 1.0e-2 to 1.7e-2 on A-D (ours and
#: ONNX Runtime's); 5e-2 leaves three times that. bfloat16 keeps 8 bits of mantissa
#: (2^-9 relative per operand): at most 4e-3 on A-F and S; 2e-2 leaves five times that.
AGREEMENT_RTOL = {"float32": 1e-4, "float64": 1e-10, "int8": 5e-2, "bfloat16": 2e-2}


@dataclasses.dataclass
class Problem:
    """The shared weights and data of one configuration (its shape and cell) in one
    dtype."""

    cfg: Config
    dtype: np.dtype
    state_dict: dict
    x: np.ndarray
    dout: np.ndarray
    #: "int8" or "bfloat16" for a low-precision problem (`dtype` is then float32, the
    #: weights' and the data's), None for a float one.
    precision: str | None = None

    @classmethod
    def make(cls, cfg: Config, dtype, seed: int = 0) -> Problem:
        """The problem of a configuration in `dtype`: float32, float64, or a low
        precision (`LOW_PRECISIONS`: the float32 problem of the same seed, to quantize)."""
        precision = dtype if isinstance(dtype, str) and dtype in LOW_PRECISIONS else None
        dtype = np.dtype(np.float32 if precision else dtype)
        model = getattr(ln, CELLS[cfg.cell].layer)(cfg.input_size, cfg.hidden_size,
                                                   **cfg.layer_kwargs(), dtype=dtype, seed=seed)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((cfg.steps, cfg.batch, cfg.input_size)).astype(dtype)
        dout = rng.standard_normal(
            (cfg.steps, cfg.batch, cfg.directions * cfg.state_size)).astype(dtype)
        return cls(cfg, dtype, model.state_dict(), x, dout, precision)

    @property
    def dtype_name(self) -> str:
        """Its name in ``--dtype`` and the tables: the precision, or the dtype's name."""
        return self.precision or self.dtype.name

    @property
    def float32(self) -> Problem:
        """The float problem a low-precision one quantizes: the same weights and data."""
        return dataclasses.replace(self, precision=None)

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
                       self.x, self.dout, self.precision)

    @functools.cached_property
    def reference_output(self) -> np.ndarray:
        """lstm_native's inference output (float, in a low-precision problem too): what
        the peers are checked against."""
        return self.ln_model(1).eval()(self.x)[0]


class Disagreement(RuntimeError):
    """A library's output is not lstm_native's within the tolerance: it is not timed."""


def _check_agreement(name: str, actual, expected, dtype) -> None:
    """Refuse `actual` if it is further from lstm_native's output than `AGREEMENT_RTOL`
    of `dtype` (a name of ``--dtype``, or a numpy dtype) allows."""
    dtype = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    err = float(np.max(np.abs(actual - expected)) / max(1.0, float(np.max(np.abs(expected)))))
    tol = AGREEMENT_RTOL[dtype]
    reference = "float32" if dtype in LOW_PRECISIONS else dtype
    if not err <= tol:
        raise Disagreement(f"{name}'s output differs from lstm_native's {reference} by "
                           f"{err:.2e} (relative; tolerance {tol:.0e}): not timing "
                           f"different math")


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
    """lstm_native's call for `mode`; in a low precision, its quantized model's
    inference (`check`: against our float32 output first; a float layer is the
    reference itself)."""
    model = problem.ln_model(n_threads)
    x, dout = problem.x, problem.dout
    if problem.precision:
        if mode != "infer":
            raise ValueError(f"a {problem.precision} model is for inference only, "
                             f"not {mode!r}")
        quantized = ln.quantize(model, problem.precision)
        if check:
            _check_agreement(f"lstm_native's {problem.precision} {CELLS[problem.cfg.cell].layer}",
                             quantized(x)[0], problem.reference_output, problem.precision)
        return Task("lstm_native", lambda: quantized(x))
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
    torch configures it); in bfloat16, the layer and its input cast to bfloat16, in
    inference. None for a cell torch is not a peer of (`Cell.peers`), and in int8 (see
    the module's notes)."""
    cfg = problem.cfg
    if "torch" not in CELLS[cfg.cell].peers or problem.precision == "int8":
        return None
    if problem.precision and mode != "infer":
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
    if problem.precision == "bfloat16":
        rnn, x = rnn.to(torch.bfloat16), x.to(torch.bfloat16)
    if check:
        with torch.no_grad():
            out = rnn(x)[0]
        # numpy has no bfloat16: compared in float32.
        out = out.float() if out.dtype == torch.bfloat16 else out
        _check_agreement(f"torch.nn.{layer}", out.numpy(), problem.reference_output,
                         problem.dtype_name)
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


def quantize_int8(model):
    """The ONNX model through ONNX Runtime's ``quantize_dynamic`` with int8 weights (it
    reads and writes files: a temporary directory); None when it quantized no operator
    (it has no int8 GRU: the model comes back in float32)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        source, target = os.path.join(folder, "float.onnx"), os.path.join(folder, "int8.onnx")
        onnx.save(model, source)
        # It logs a suggestion to pre-process the model (shape inference for
        # convolutional networks) on every call: not for this graph.
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        quantized = onnx.load(target)
    if not any(node.op_type.startswith("DynamicQuantize") for node in quantized.graph.node):
        return None
    return quantized


def ort_task(problem: Problem, mode: str, n_threads: int, check: bool = True) -> Task | None:
    """ONNX Runtime's call: float32 inference, or int8 inference of the model through
    `quantize_int8`. None otherwise (float64, bfloat16, training), for an int8 GRU, and
    for a cell ONNX Runtime is not a peer of, `Cell.peers`: a projected LSTM, which ONNX's
    operator cannot express, or a variant."""
    if (mode != "infer" or problem.dtype_name not in ("float32", "int8")
            or "onnxruntime" not in CELLS[problem.cfg.cell].peers):
        return None
    from lstm_native.onnx import recurrent_model

    cfg = problem.cfg
    model = recurrent_model(problem.state_dict, cfg.input_size, cfg.hidden_size,
                            cfg.num_layers, cfg.bidirectional, cfg.cell)
    if problem.precision == "int8":
        model = quantize_int8(model)
        if model is None:
            return None
    session = onnx_session(model, n_threads)
    feed = {"x": problem.x}
    if check:
        _check_agreement(f"ONNX Runtime's {CELLS[cfg.cell].layer}",
                         session.run(["out"], feed)[0],
                         problem.reference_output, problem.dtype_name)
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
    `Cell.baseline_library`, when the cell has one, and in a low precision our float32
    layer last, labelled `FLOAT32_LIBRARY`."""
    tasks = []
    for lib in libraries:
        try:
            task = TASK_FACTORIES[lib](problem, mode, n_threads)
        except Disagreement as err:
            if lib == "lstm_native" or not problem.precision:
                raise
            # A peer's low-precision kernel may lose more on some CPUs (ONNX Runtime's
            # int8 LSTM without VNNI: 1.7e-1 from float32 on an AVX2 machine, where its
            # u8 x s8 pair sums saturate at 16 bits): its row is left out, the run goes on.
            print(f"{lib} not timed: {err}", flush=True)
            continue
        if task is not None:
            tasks.append(task)
    if problem.precision:
        tasks.append(dataclasses.replace(ln_task(problem.float32, mode, n_threads),
                                         library=FLOAT32_LIBRARY))
    if problem.baseline is not None:
        plain = ln_task(problem.baseline, mode, n_threads)
        tasks.append(dataclasses.replace(
            plain, library=CELLS[problem.cfg.cell].baseline_library))
    with threadpool_limits(limits=n_threads, user_api="blas"):
        return time_tasks(tasks, schedule)
