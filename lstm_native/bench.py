"""Side-by-side timing of lstm_native, ``torch.nn.LSTM`` and ONNX Runtime's LSTM operator.

Run ``python -m lstm_native.bench --help``. Design notes:

- One process times every library on the same weights and inputs (converted from one
  lstm_native model), so their ratio is measured under the same load; figures taken at
  different times on a shared 2-core machine vary by up to 2.5x, ratios much less.
- The runs come in blocks that alternate between the libraries, with a pause before each
  block: torch, ONNX Runtime and lstm_native each have their own thread pool, whose
  threads keep spinning for a while after a call and would steal the next library's cores.
- A figure is the median of all of a library's runs; the spread is their interquartile
  range relative to it. GF/s count the GEMM FLOPs an LSTM needs (`mode_flops`), and the
  GEMM rate measured right after each configuration (numpy's matmul of two 2048²
  matrices on the same threads) says how close to the machine's BLAS that is.
- Nothing here sets ``OPENBLAS_CORETYPE``: OpenBLAS reads it when numpy and scipy load,
  before this module runs, so the tool reports it and what OpenBLAS picked.

The module imports lstm_native absolutely, so that a copy of this file times any
installed version of the package (see docs/performance.md, "History").
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import importlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import lstm_native as ln

__all__ = [
    "Config", "CONFIGS", "MODES", "LIBRARIES", "forward_flops", "backward_flops",
    "mode_flops", "activation_bytes", "torch_to_onnx_gates", "onnx_lstm_model",
    "kernel_module", "simd_level", "machine_info", "gemm_rate", "Table", "main",
]

# -- configurations and FLOPs ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Config:
    """One benchmark shape: B sequences of T steps, I inputs, H hidden units, L layers.

    Attributes
    ----------
    name : str
        The configuration's letter in docs/performance.md and /shared/PERFORMANCE.md.
    batch, steps, input_size, hidden_size, num_layers : int
        B, T, I, H and L.
    bidirectional : bool
        Whether each layer also runs backwards (D = 2).
    origin : str
        Where the shape comes from.
    """

    name: str
    batch: int
    steps: int
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    origin: str = ""

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def with_steps(self, steps: int) -> Config:
        """The same shape over `steps` time steps."""
        return dataclasses.replace(self, steps=steps)

    def describe(self) -> str:
        text = (f"B={self.batch} T={self.steps} I={self.input_size} H={self.hidden_size} "
                f"L={self.num_layers}")
        return text + (" bidirectional" if self.bidirectional else "")


CONFIGS: dict[str, Config] = {c.name: c for c in [
    Config("A", 64, 25, 512, 512, 1, origin="DeepBench LSTM, T=25"),
    Config("B", 32, 150, 256, 256, 1, origin="DeepBench char-LM"),
    Config("C", 16, 50, 1024, 1024, 1, origin="DeepBench LM, scaled to 2 cores"),
    Config("D", 64, 50, 500, 500, 1, origin="oneDNN benchdnn pytorch_testcase"),
    Config("E", 32, 50, 512, 512, 2, origin="stacked, GNMT-encoder-like"),
    Config("F", 32, 100, 16, 64, 2, origin="small and overhead-bound (pytorch#65597)"),
    Config("S", 1, 1000, 1, 64, 1, origin="streaming, batch 1"),
]}

#: What each mode times. "train" is a first layer's step: no gradient for the input.
MODES: dict[str, str] = {
    "infer": "forward in inference mode (lstm_native eval, torch.no_grad, ONNX Runtime)",
    "train": "forward + backward of all weights, no input gradient",
    "train_dx": "forward + backward of all weights and of the input",
    "bwd": "backward alone (weights, no input gradient), after an untimed forward",
}

LIBRARIES = ("lstm_native", "torch", "onnxruntime")
SHORT_NAMES = {"lstm_native": "ln", "torch": "torch", "onnxruntime": "ORT"}


def _layer_inputs(cfg: Config) -> list[int]:
    """The input width of each layer: I, then D·H."""
    return [cfg.input_size] + [cfg.directions * cfg.hidden_size] * (cfg.num_layers - 1)


def forward_flops(cfg: Config) -> int:
    """GEMM FLOPs of a forward pass: 8·B·H·(I + H)·T per layer and direction.

    Each step multiplies [x_t, h_{t-1}] (B × (I + H)) by the four gates' weights
    ((I + H) × 4H): 2·B·(I + H)·4H multiply-adds counted as two FLOPs each. The
    elementwise work (a few dozen FLOPs per hidden unit) is left out, as by convention.
    """
    B, T, H, D = cfg.batch, cfg.steps, cfg.hidden_size, cfg.directions
    return sum(8 * B * H * (i + H) * T * D for i in _layer_inputs(cfg))


def backward_flops(cfg: Config, input_grad: bool = True) -> int:
    """GEMM FLOPs of backpropagation through time.

    Twice the forward's: dW_ih, dW_hh (gates' gradients against the inputs and states)
    and dx, dh_{t-1} (against the weights). Without the input gradient the first layer
    skips dx = dG·W_ih, 8·B·H·I·T per direction; layers above always need theirs.
    """
    flops = 2 * forward_flops(cfg)
    if not input_grad:
        flops -= 8 * cfg.batch * cfg.hidden_size * cfg.input_size * cfg.steps * cfg.directions
    return flops


def mode_flops(cfg: Config, mode: str) -> int:
    """The FLOPs one call of `mode` does (see `MODES`); training with the input
    gradient is three times the forward's."""
    if mode == "infer":
        return forward_flops(cfg)
    if mode == "train":
        return forward_flops(cfg) + backward_flops(cfg, input_grad=False)
    if mode == "train_dx":
        return forward_flops(cfg) + backward_flops(cfg, input_grad=True)
    if mode == "bwd":
        return backward_flops(cfg, input_grad=False)
    raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}")


def activation_bytes(cfg: Config, itemsize: int) -> int:
    """What a training forward must keep for backward: per step, layer and direction
    the four activated gates, the cell and the hidden state (6·H values per row)."""
    return (cfg.steps * cfg.batch * 6 * cfg.hidden_size * cfg.num_layers * cfg.directions
            * itemsize)


def parameter_count(cfg: Config) -> int:
    """Weights and biases (b_ih and b_hh) of all layers and directions."""
    H, D = cfg.hidden_size, cfg.directions
    return sum(D * (4 * H * (i + H) + 8 * H) for i in _layer_inputs(cfg))


# -- the environment ------------------------------------------------------------------

#: lstm_native's compiled module, by the names it has had.
KERNEL_MODULES = ("_recurrent", "_lstm")


def kernel_module():
    """lstm_native's compiled LSTM module, or None when none of `KERNEL_MODULES` loads."""
    for name in KERNEL_MODULES:
        try:
            return importlib.import_module(f"lstm_native.{name}")
        except ImportError:
            continue
    return None


def simd_level() -> str:
    """The SIMD level lstm_native's kernels picked at load time ("avx512", "avx2",
    "generic"), or "unknown" for a version that does not say."""
    fn = getattr(kernel_module(), "simd_level", None)
    return str(fn()) if callable(fn) else "unknown"


def _openmp() -> str:
    fn = getattr(ln, "openmp_enabled", None)
    if not callable(fn):
        return "unknown"
    return "on" if fn() else "off"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: OpenMP settings that lstm_native may set for its threads when it is imported.
OPENMP_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def initial_environment() -> dict | None:
    """The environment the process started with (``/proc/self/environ``), untouched by
    changes to ``os.environ`` since; None where the system does not say."""
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def openmp_runtimes() -> list[str]:
    """The OpenMP runtimes loaded in this process (from ``/proc/self/maps``)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            paths = {line.split()[-1] for line in f if "/" in line}
    except OSError:
        return []
    names = ("libgomp", "libiomp", "libomp")
    return sorted(p for p in paths if os.path.basename(p).startswith(names))


def _optional(name: str):
    """The module, or None when it is not installed or fails to import."""
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a broken install is as good as a missing one here
        return None


def _blas_libraries() -> list[str]:
    """numpy's and scipy's BLAS: version and the kernels OpenBLAS picked."""
    found = []
    for lib in threadpool_info():
        if lib.get("user_api") != "blas":
            continue
        path = lib.get("filepath", "")
        owner = ("numpy" if "numpy" in path else "scipy" if "scipy" in path
                 else os.path.basename(path))
        arch = lib.get("architecture")
        found.append(f"{owner}: {lib.get('internal_api')} {lib.get('version')}"
                     + (f" ({arch} kernels)" if arch else ""))
    return found


def _openmp_settings(info: dict) -> None:
    """OMP_WAIT_POLICY as lstm_native and the peers see it, and the OpenMP runtimes."""
    ours = {k: os.environ.get(k) for k in OPENMP_VARIABLES}
    initial = initial_environment() or {}
    info["OMP_WAIT_POLICY"] = ours["OMP_WAIT_POLICY"] or "(unset)"
    if ours["GOMP_SPINCOUNT"] is not None:
        info["GOMP_SPINCOUNT"] = ours["GOMP_SPINCOUNT"]
    runtimes = openmp_runtimes()
    info["OpenMP runtimes"] = ", ".join(runtimes) or "none loaded"
    set_by_us = initial_environment() is not None and \
        ours["OMP_WAIT_POLICY"] is not None and "OMP_WAIT_POLICY" not in initial
    if set_by_us:
        info["OMP_WAIT_POLICY"] += " (set by lstm_native at import)"
        if len(runtimes) == 1 and "torch" in sys.modules:
            info["warning"] = (
                "torch shares lstm_native's OpenMP runtime, so it waits passively too, "
                "which is not its default (far slower at small sizes); run with "
                "GOMP_SPINCOUNT=300000, libgomp's own default, to time both at it")


def machine_info() -> dict:
    """What a reader needs to reproduce or compare the figures.

    Returns
    -------
    dict
        CPU model, cores, OS, Python, library versions, lstm_native's SIMD level and
        OpenMP, the BLAS libraries loaded (with the kernels OpenBLAS picked) and the
        value ``OPENBLAS_CORETYPE`` had.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable cores": usable,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "(unset)"),
        "lstm_native": f"{getattr(ln, '__version__', '?')} ({os.path.dirname(ln.__file__)})",
        "lstm_native SIMD": simd_level(),
        "lstm_native OpenMP": _openmp(),
        "numpy": np.__version__,
    }
    scipy = _optional("scipy")
    if scipy is not None:
        info["scipy"] = scipy.__version__
    info["BLAS"] = "; ".join(_blas_libraries()) or "none found"
    torch = _optional("torch")
    if torch is not None:
        onednn = torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
        info["torch"] = f"{torch.__version__} (oneDNN {'on' if onednn else 'off'})"
    ort = _optional("onnxruntime")
    if ort is not None:
        onnx = _optional("onnx")
        info["onnxruntime"] = ort.__version__ + (f" (onnx {onnx.__version__})" if onnx else "")
    _openmp_settings(info)
    return info


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


# -- ONNX Runtime's LSTM operator -------------------------------------------------------

#: PyTorch stacks the gates' rows as (i, f, g, o); ONNX as (i, o, f, c), c being g.
ONNX_GATE_ORDER = (0, 3, 1, 2)


def torch_to_onnx_gates(a: np.ndarray) -> np.ndarray:
    """Reorder a weight (4H, ·) or bias (4H,) from PyTorch's gate order to ONNX's.

    Parameters
    ----------
    a : numpy.ndarray, (4H,) or (4H, K)
        Rows in blocks of H: input, forget, cell candidate, output gate.

    Returns
    -------
    numpy.ndarray
        A copy with the blocks as input, output, forget, cell candidate.
    """
    a = np.asarray(a)
    H = a.shape[0] // 4
    return np.ascontiguousarray(a.reshape(4, H, *a.shape[1:])[list(ONNX_GATE_ORDER)]
                                .reshape(a.shape))


def onnx_lstm_model(state_dict: dict, input_size: int, hidden_size: int,
                    num_layers: int = 1, bidirectional: bool = False):
    """An ONNX model of a stacked LSTM with the given PyTorch-named weights.

    One ``LSTM`` node per layer (W, R and B converted to ONNX's gate order, the two
    biases concatenated), then the output reshaped from ONNX's (T, D, N, H) to
    PyTorch's (T, N, D·H) to feed the next layer.

    Parameters
    ----------
    state_dict : dict of str to numpy.ndarray
        ``weight_ih_l{k}``, ``weight_hh_l{k}``, optional ``bias_ih_l{k}``, ``bias_hh_l{k}``
        (and the ``_reverse`` ones when bidirectional), as `ln.LSTM.state_dict` gives.
    input_size, hidden_size, num_layers : int
    bidirectional : bool

    Returns
    -------
    onnx.ModelProto
        Input ``X`` (T, N, I) float32, output ``Y`` (T, N, D·H) float32, opset 17.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    H, D = hidden_size, 2 if bidirectional else 1
    nodes, weights = [], []
    layer_in = "X"
    for layer in range(num_layers):
        w, r, b = [], [], []
        for direction in range(D):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            w.append(torch_to_onnx_gates(state_dict[f"weight_ih{sfx}"]))
            r.append(torch_to_onnx_gates(state_dict[f"weight_hh{sfx}"]))
            zeros = np.zeros(4 * H)
            b.append(np.concatenate([
                torch_to_onnx_gates(state_dict.get(f"bias_ih{sfx}", zeros)),
                torch_to_onnx_gates(state_dict.get(f"bias_hh{sfx}", zeros))]))
        for name, arrays in (("W", w), ("R", r), ("B", b)):
            weights.append(numpy_helper.from_array(np.stack(arrays).astype(np.float32),
                                                   f"{name}{layer}"))
        y, out = f"Y{layer}", ("Y" if layer == num_layers - 1 else f"H{layer}")
        nodes.append(helper.make_node(
            "LSTM", [layer_in, f"W{layer}", f"R{layer}", f"B{layer}"], [y],
            hidden_size=H, direction="bidirectional" if D == 2 else "forward"))
        if D == 1:  # (T, 1, N, H) -> (T, N, H)
            weights.append(numpy_helper.from_array(np.array([1], np.int64), f"axes{layer}"))
            nodes.append(helper.make_node("Squeeze", [y, f"axes{layer}"], [out]))
        else:       # (T, 2, N, H) -> (T, N, 2, H) -> (T, N, 2H)
            weights.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64),
                                                   f"shape{layer}"))
            nodes.append(helper.make_node("Transpose", [y], [f"{y}t"], perm=[0, 2, 1, 3]))
            nodes.append(helper.make_node("Reshape", [f"{y}t", f"shape{layer}"], [out]))
        layer_in = out
    graph = helper.make_graph(
        nodes, "lstm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["T", "N", input_size])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", "N", D * H])],
        initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="lstm_native.bench")
    model.ir_version = 8  # opset 17's: readable by any ONNX Runtime since 1.12
    onnx.checker.check_model(model)
    return model


def onnx_session(model, n_threads: int):
    """An ONNX Runtime CPU session on `n_threads` intra-op threads, one inter-op."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = n_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model.SerializeToString(), sess_options=options,
                                providers=["CPUExecutionProvider"])


# -- what is timed ----------------------------------------------------------------------

#: Largest relative difference |peer - ours| / max(1, max|ours|) accepted before timing.
AGREEMENT_RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


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
class Problem:
    """The shared weights and data of one configuration in one dtype."""

    cfg: Config
    dtype: np.dtype
    state_dict: dict
    x: np.ndarray
    dout: np.ndarray

    @classmethod
    def make(cls, cfg: Config, dtype, seed: int = 0) -> Problem:
        model = ln.LSTM(cfg.input_size, cfg.hidden_size, cfg.num_layers,
                        bidirectional=cfg.bidirectional, dtype=dtype, seed=seed)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((cfg.steps, cfg.batch, cfg.input_size)).astype(dtype)
        dout = rng.standard_normal(
            (cfg.steps, cfg.batch, cfg.directions * cfg.hidden_size)).astype(dtype)
        return cls(cfg, np.dtype(dtype), model.state_dict(), x, dout)

    def ln_model(self, n_threads: int) -> ln.LSTM:
        cfg = self.cfg
        model = ln.LSTM(cfg.input_size, cfg.hidden_size, cfg.num_layers,
                        bidirectional=cfg.bidirectional, dtype=self.dtype,
                        n_threads=n_threads)
        model.load_state_dict(self.state_dict)
        return model

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


def torch_task(problem: Problem, mode: str, n_threads: int, check: bool = True) -> Task:
    """``torch.nn.LSTM``'s call for `mode` (time-major; oneDNN as torch configures it)."""
    import torch

    torch.set_num_threads(n_threads)
    cfg = problem.cfg
    tdtype = torch.float64 if problem.dtype == np.float64 else torch.float32
    lstm = torch.nn.LSTM(cfg.input_size, cfg.hidden_size, cfg.num_layers,
                         bidirectional=cfg.bidirectional, dtype=tdtype)
    lstm.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                          for k, v in problem.state_dict.items()})
    x, dout = torch.from_numpy(problem.x), torch.from_numpy(problem.dout)
    if check:
        with torch.no_grad():
            _check_agreement("torch.nn.LSTM", lstm(x)[0].numpy(), problem.reference_output,
                             problem.dtype)
    if mode == "infer":
        lstm.eval()

        def infer():
            with torch.no_grad():
                return lstm(x)
        return Task("torch", infer)
    lstm.train()
    # Gradients allocated up front, as lstm_native's are: backward accumulates into them
    # from the first step on, as in every later one, and a memory measurement finds
    # both libraries with their weights and gradients in place.
    for p in lstm.parameters():
        p.grad = torch.zeros_like(p)
    if mode == "bwd":
        kept = {}

        def forward():
            kept["out"] = lstm(x)[0]
        return Task("torch", lambda: kept.pop("out").backward(dout), prepare=forward)
    if mode == "train_dx":
        x = x.clone().requires_grad_(True)

        def clear():
            x.grad = None
    else:
        clear = None

    def step():
        out = lstm(x)[0]
        out.backward(dout)
    return Task("torch", step, prepare=clear)


def ort_task(problem: Problem, mode: str, n_threads: int, check: bool = True) -> Task | None:
    """ONNX Runtime's call: float32 inference only (None otherwise)."""
    if mode != "infer" or problem.dtype != np.float32:
        return None
    cfg = problem.cfg
    session = onnx_session(onnx_lstm_model(problem.state_dict, cfg.input_size,
                                           cfg.hidden_size, cfg.num_layers,
                                           cfg.bidirectional), n_threads)
    feed = {"X": problem.x}
    if check:
        _check_agreement("ONNX Runtime's LSTM", session.run(["Y"], feed)[0],
                         problem.reference_output, problem.dtype)
    return Task("onnxruntime", lambda: session.run(["Y"], feed))


TASK_FACTORIES = {"lstm_native": ln_task, "torch": torch_task, "onnxruntime": ort_task}


def available_libraries(wanted: Iterable[str] = LIBRARIES) -> tuple[list[str], dict]:
    """The wanted libraries that import here, and why the others do not."""
    found, missing = [], {}
    needs = {"torch": ("torch",), "onnxruntime": ("onnxruntime", "onnx")}
    for lib in wanted:
        absent = [m for m in needs.get(lib, ()) if _optional(m) is None]
        if absent:
            missing[lib] = f"{', '.join(absent)} not importable"
        else:
            found.append(lib)
    return found, missing


# -- timing ----------------------------------------------------------------------------


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


def measure(problem: Problem, mode: str, n_threads: int, libraries: Sequence[str],
            schedule: Schedule) -> list[Timing]:
    """Build each library's task for `mode` (skipping those without one) and time them."""
    tasks = []
    for lib in libraries:
        task = TASK_FACTORIES[lib](problem, mode, n_threads)
        if task is not None:
            tasks.append(task)
    with threadpool_limits(limits=n_threads, user_api="blas"):
        return time_tasks(tasks, schedule)


# -- tables ----------------------------------------------------------------------------


@dataclasses.dataclass
class Table:
    """A titled table, rendered as aligned text or as markdown.

    The first `left` columns are labels (aligned left), the others figures (right).
    """

    title: str
    columns: list[str]
    rows: list[list[str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    left: int = 1

    def text(self) -> str:
        cells = [self.columns] + self.rows
        widths = [max(len(r[j]) for r in cells) for j in range(len(self.columns))]

        def line(row):
            return "  ".join(c.rjust(w) if j >= self.left else c.ljust(w)
                             for j, (c, w) in enumerate(zip(row, widths))).rstrip()
        out = [self.title, line(self.columns), line(["-" * w for w in widths])]
        out += [line(r) for r in self.rows] + [f"  {n}" for n in self.notes]
        return "\n".join(out)

    def markdown(self, level: int = 3) -> str:
        out = [f"{'#' * level} {self.title}", "",
               "| " + " | ".join(self.columns) + " |",
               "|" + "|".join("---" if j < self.left else "--:"
                              for j in range(len(self.columns))) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.notes:
            out += [""] + [f"{n}" for n in self.notes]
        return "\n".join(out)


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 10 else f"{ms:.1f}"


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}"


@dataclasses.dataclass
class Result:
    """The timings of one configuration, dtype and thread count, all modes."""

    cfg: Config
    dtype: str
    n_threads: int
    gemm_gflops: float
    timings: dict[str, list[Timing]]

    def table(self) -> Table:
        gemm = "SGEMM" if self.dtype == "float32" else "DGEMM"
        peers = sorted({t.library for ts in self.timings.values() for t in ts} - {"lstm_native"},
                       key=LIBRARIES.index)
        table = Table(f"{self.cfg.name}: {self.cfg.describe()} — {self.dtype}, "
                      f"{self.n_threads} thread{'s' if self.n_threads > 1 else ''}",
                      ["mode", "library", "ms (median)", "spread", "GF/s", f"% {gemm}"]
                      + [f"ln / {SHORT_NAMES[p]}" for p in peers], left=2)
        for mode, timings in self.timings.items():
            ours = next((t for t in timings if t.library == "lstm_native"), None)
            for t in timings:
                gflops = mode_flops(self.cfg, mode) / t.median / 1e9
                row = [mode, t.library, _ms(t.median), f"{100 * t.spread:.0f}%",
                       f"{gflops:.1f}", f"{100 * gflops / self.gemm_gflops:.0f}%"]
                for p in peers:
                    row.append(_ratio(ours.median, t.median)
                               if ours is not None and t.library == p else "")
                table.rows.append(row)
        return table

    def to_json(self) -> dict:
        return {"config": self.cfg.name, "dtype": self.dtype, "n_threads": self.n_threads,
                "gemm_gflops": self.gemm_gflops,
                "timings": {m: {t.library: t.times for t in ts}
                            for m, ts in self.timings.items()}}

    @classmethod
    def from_json(cls, d: dict) -> Result:
        return cls(CONFIGS[d["config"]], d["dtype"], d["n_threads"], d["gemm_gflops"],
                   {m: [Timing(lib, times) for lib, times in ts.items()]
                    for m, ts in d["timings"].items()})


def summary_table(results: Sequence[Result], title: str = "Summary") -> Table:
    """One row per configuration and mode: lstm_native's median, GF/s and share of the
    GEMM rate, the peers' medians and the ratios lstm_native / peer."""
    peers = [p for p in LIBRARIES[1:]
             if any(t.library == p for r in results for ts in r.timings.values() for t in ts)]
    table = Table(f"{title}: median ms; lstm_native / peer < 1: lstm_native is faster",
                  ["cfg", "dtype", "threads", "mode", "lstm_native ms", "GF/s", "% GEMM"]
                  + [f"{p} ms" for p in peers] + [f"ln / {SHORT_NAMES[p]}" for p in peers],
                  left=4)
    for r in results:
        for mode, timings in r.timings.items():
            by_lib = {t.library: t.median for t in timings}
            ours = by_lib.get("lstm_native")
            row = [r.cfg.name, r.dtype, str(r.n_threads), mode]
            if ours is None:
                row += ["–"] * 3
            else:
                gflops = mode_flops(r.cfg, mode) / ours / 1e9
                row += [_ms(ours), f"{gflops:.1f}", f"{100 * gflops / r.gemm_gflops:.0f}%"]
            row += [_ms(by_lib[p]) if p in by_lib else "–" for p in peers]
            row += [_ratio(ours, by_lib[p]) if p in by_lib and ours is not None else "–"
                    for p in peers]
            table.rows.append(row)
    return table


def targets_table(results: Sequence[Result]) -> Table:
    """The ratios the performance targets are stated in, per dtype and thread count:
    training against torch (the worst configuration and the geometric mean over all),
    inference against the faster of the peers (the worst of the configurations but S,
    and S, batch 1, which has a target of its own)."""
    table = Table("Targets: lstm_native / peer, medians of this run (< 1: lstm_native is "
                  "faster)",
                  ["dtype", "threads", "train / torch, worst", "train / torch, geo. mean",
                   "infer / faster peer, worst but S", "infer / faster peer, S"], left=2)

    def ratios(group, mode, peers):
        out = {}
        for r in group:
            by_lib = {t.library: t.median for t in r.timings.get(mode, [])}
            theirs = [by_lib[p] for p in peers if p in by_lib]
            if "lstm_native" in by_lib and theirs:
                out[r.cfg.name] = by_lib["lstm_native"] / min(theirs)
        return out

    def worst(rs):
        if not rs:
            return "–"
        name = max(rs, key=rs.get)
        return f"{rs[name]:.2f} ({name})"

    keys = dict.fromkeys((r.dtype, r.n_threads) for r in results)
    for dtype, n in keys:
        group = [r for r in results if (r.dtype, r.n_threads) == (dtype, n)]
        train = ratios(group, "train", ["torch"])
        infer = ratios(group, "infer", LIBRARIES[1:])
        geo = (f"{float(np.exp(np.mean(np.log(list(train.values()))))):.2f}"
               if train else "–")
        but_s = {name: v for name, v in infer.items() if name != "S"}
        table.rows.append([dtype, str(n), worst(train), geo, worst(but_s),
                           f"{infer['S']:.2f}" if "S" in infer else "–"])
    return table


def machine_table(info: dict, gemm: dict) -> Table:
    table = Table("Machine and settings", ["what", "value"], left=2)
    table.rows = [[k, str(v)] for k, v in info.items()]
    for (dtype, n), rate in sorted(gemm.items()):
        name = "SGEMM" if dtype == "float32" else "DGEMM"
        table.rows.append([f"{name} rate, {n} thread{'s' if n > 1 else ''}",
                           f"{rate:.1f} GF/s (numpy matmul, 2048²)"])
    return table


# -- scaling ---------------------------------------------------------------------------

SCALING_CONFIGS = ("A", "B", "C", "D", "E")


def scaling_table(cfg: Config, dtype, modes: Sequence[str], libraries: Sequence[str],
                  n_threads: int, schedule: Schedule, steps=(100, 1000),
                  threads=(1, 2)) -> Table:
    """Time against sequence length (T=100 vs 1000: ideally 10x) and threads (1 vs 2).

    The thread comparison runs the configuration's own T.
    """
    t_lo, t_hi = steps
    n_lo, n_hi = threads
    table = Table(f"Scaling, {cfg.name}: {cfg.describe()} — {np.dtype(dtype).name}",
                  ["mode", "library", f"ms T={t_lo}", f"ms T={t_hi}", "ratio (ideal "
                   f"{t_hi / t_lo:g})", f"ms {n_lo} thr", f"ms {n_hi} thr", "speedup"], left=2)
    for mode in modes:
        by_steps = {T: measure(Problem.make(cfg.with_steps(T), dtype), mode, n_threads,
                               libraries, schedule) for T in steps}
        problem = Problem.make(cfg, dtype)
        by_threads = {n: measure(problem, mode, n, libraries, schedule) for n in threads}
        for i, t in enumerate(by_steps[t_lo]):
            lo, hi = t.median, by_steps[t_hi][i].median
            one, two = by_threads[n_lo][i].median, by_threads[n_hi][i].median
            table.rows.append([mode, t.library, _ms(lo), _ms(hi), f"{hi / lo:.2f}",
                               _ms(one), _ms(two), f"{one / two:.2f}"])
    return table


# -- memory ----------------------------------------------------------------------------

def _proc_status_kib(field: str) -> int | None:
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
    cfg, dtype, lib = CONFIGS[spec["config"]], np.dtype(spec["dtype"]), spec["library"]
    problem = Problem.make(cfg.with_steps(spec["steps"]), dtype)
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
    """Peak RSS growth (bytes) of one training step of `library`, in a fresh process."""
    spec = json.dumps({"config": cfg.name, "steps": cfg.steps, "dtype": np.dtype(dtype).name,
                       "library": library, "n_threads": n_threads})
    code = ("import importlib.util, sys\n"
            "spec = importlib.util.spec_from_file_location('_lstm_bench', sys.argv[1])\n"
            "mod = sys.modules['_lstm_bench'] = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(mod)\n"
            "mod._memory_child(sys.argv[2])\n")
    # A fixed mmap threshold turns off glibc's adaptive one, under which buffers freed by
    # the warm-up step would stay in the heap and hide the step's growth from the RSS.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    done = subprocess.run([sys.executable, "-c", code, os.path.abspath(__file__), spec],
                          capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_table(cfgs: Sequence[Config], dtype, libraries: Sequence[str],
                 n_threads: int) -> Table:
    """Each library's training-step memory next to the activations an LSTM must keep."""
    itemsize = np.dtype(dtype).itemsize
    mib = 2.0**20
    table = Table(f"Memory of a training step (forward + backward, no input gradient) — "
                  f"{np.dtype(dtype).name}",
                  ["cfg", "library", "peak RSS growth MiB", "numpy peak MiB",
                   "activations MiB", "growth / activations", "weights + grads MiB",
                   "peak / (act. + w + g)"],
                  left=2,
                  notes=["activations: gates 4H + cell + hidden per step, layer and "
                         "direction, the least a training forward keeps for backward; "
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
            if lib == "onnxruntime":
                continue
            m = memory_usage(cfg, dtype, lib, n_threads)
            traced = m.get("traced_peak")
            table.rows.append([cfg.name, lib, f"{m['rss_growth'] / mib:.1f}",
                               f"{traced / mib:.1f}" if traced is not None else "–",
                               f"{acts / mib:.1f}", f"{m['rss_growth'] / acts:.2f}",
                               f"{params / mib:.1f}",
                               f"{(m['rss_growth'] + params) / (acts + params):.2f}"])
    return table


# -- command line ------------------------------------------------------------------------

def _choices(text: str, allowed: Sequence[str], what: str, upper: bool = False) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    items = [s.upper() if upper else s for s in items]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(bad) or '(none)'}; choose from {', '.join(allowed)}")
    return items


def _thread_counts(text: str) -> list[int]:
    try:
        counts = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected positive thread counts, got {text!r}")
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lstm_native.bench",
        description="Time lstm_native side by side with torch.nn.LSTM and ONNX Runtime's "
                    "LSTM operator (whichever are installed), in one process.",
        epilog="Configurations: " + "; ".join(
            f"{c.name} = {c.describe()}" for c in CONFIGS.values())
        + ". Modes: " + "; ".join(f"{m} = {d}" for m, d in MODES.items()) + ".")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        type=lambda s: _choices(s, list(CONFIGS), "configuration", upper=True),
                        help="comma-separated configurations (default: all)")
    parser.add_argument("--dtype", default="float32",
                        type=lambda s: _choices(s, ["float32", "float64"], "dtype"),
                        help="float32 or float64, or both comma-separated (default float32)")
    parser.add_argument("--threads", default="2",
                        type=_thread_counts,
                        help="threads of every library, or a comma-separated list (default 2)")
    parser.add_argument("--modes", default="infer,train,train_dx",
                        type=lambda s: _choices(s, list(MODES), "mode"),
                        help="comma-separated modes (default infer,train,train_dx)")
    parser.add_argument("--libs", default=",".join(LIBRARIES),
                        type=lambda s: _choices(s, list(LIBRARIES), "library"),
                        help="libraries to time, when installed (default all)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per library and mode (default: about a second's "
                             "worth, at least 5)")
    parser.add_argument("--pause", type=float, default=None,
                        help="seconds of sleep before each block of runs (default 0.3)")
    parser.add_argument("--quick", action="store_true",
                        help="3 runs in one block, short pauses: a smoke test, not a figure")
    parser.add_argument("--scaling", action="store_true",
                        help="instead of the tables: T=100 vs T=1000 and 1 vs 2 threads on "
                             "the selected configurations among A-E")
    parser.add_argument("--memory", action="store_true",
                        help="also measure each library's peak RSS growth over a training "
                             "step (a fresh process per measurement)")
    parser.add_argument("--markdown", metavar="FILE",
                        help="also write the tables as markdown to FILE")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the raw times (and the other tables) as JSON")
    parser.add_argument("--report", metavar="FILE",
                        help="measure nothing: show the summaries of a run saved with --json "
                             "(and write them with --markdown)")
    parser.add_argument("--summary", action="store_true",
                        help="in the --markdown file, only the summaries, not a table per "
                             "configuration")
    return parser


def _say(text: str = "") -> None:
    print(text, flush=True)


NOTES = ("Times in ms (median); spread is the interquartile range relative to the median. "
         "GF/s count the GEMM FLOPs (forward 8·B·H·(I+H)·T per layer and direction; "
         "backward twice that, less the first layer's input gradient when it is not asked "
         "for); % GEMM is the share of numpy's SGEMM (float32) or DGEMM (float64) rate on "
         "the same threads, measured right after each configuration. ln / peer < 1: "
         "lstm_native is faster.")


@dataclasses.dataclass
class Report:
    """Everything one run measured; saved with ``--json``, shown again with ``--report``."""

    command: str
    machine: dict
    gemm: dict                   # (dtype, n_threads) -> GF/s
    results: list[Result] = dataclasses.field(default_factory=list)
    tables: list[Table] = dataclasses.field(default_factory=list)   # scaling, memory

    def summaries(self) -> list[Table]:
        """One summary table per dtype, then the ratios of the targets."""
        return [summary_table([r for r in self.results if r.dtype == d], f"Summary, {d}")
                for d in dict.fromkeys(r.dtype for r in self.results)] + \
            [targets_table(self.results)]

    def to_json(self) -> dict:
        return {"command": self.command, "machine": self.machine,
                "gemm": [[d, n, g] for (d, n), g in self.gemm.items()],
                "results": [r.to_json() for r in self.results],
                "tables": [dataclasses.asdict(t) for t in self.tables]}

    @classmethod
    def from_json(cls, d: dict) -> Report:
        return cls(d["command"], d["machine"], {(g[0], g[1]): g[2] for g in d["gemm"]},
                   [Result.from_json(r) for r in d["results"]],
                   [Table(**t) for t in d["tables"]])


def measure_report(args: argparse.Namespace, command: str) -> Report:
    """Run what the command line asks, printing each table as it is done."""
    schedule = Schedule.quick() if args.quick else Schedule()
    if args.repeats is not None:
        if args.repeats < 1:
            raise SystemExit("--repeats must be at least 1")
        schedule.repeats = args.repeats
    if args.pause is not None:
        schedule.pause = args.pause
    libraries, missing = available_libraries(args.libs)
    if "lstm_native" not in libraries:
        libraries.insert(0, "lstm_native")  # the reference of every ratio

    info = machine_info()
    info.update({f"{lib}": f"skipped: {why}" for lib, why in missing.items()})
    gemm_size, gemm_runs = (1024, 3) if args.quick else (2048, 5)
    gemm = {(d, n): gemm_rate(np.dtype(d), n, gemm_size, gemm_runs)
            for d in args.dtype for n in args.threads}
    report = Report(command, info, gemm)
    _say(machine_table(info, gemm).text())
    _say()

    def show(table: Table) -> None:
        _say(table.text())
        _say()

    if args.scaling:
        cfgs = [CONFIGS[c] for c in args.configs if c in SCALING_CONFIGS]
        modes = [m for m in args.modes if m in ("infer", "train")] or ["infer", "train"]
        for dtype in args.dtype:
            for cfg in cfgs:
                report.tables.append(scaling_table(cfg, np.dtype(dtype), modes, libraries,
                                                   max(args.threads), schedule))
                show(report.tables[-1])
    else:
        for dtype in args.dtype:
            for n in args.threads:
                for name in args.configs:
                    problem = Problem.make(CONFIGS[name], np.dtype(dtype))
                    timings = {mode: measure(problem, mode, n, libraries, schedule)
                               for mode in args.modes}
                    # The GEMM rate again right after, under the load of the moment.
                    rate = gemm_rate(np.dtype(dtype), n, gemm_size, gemm_runs)
                    report.results.append(Result(CONFIGS[name], dtype, n, rate, timings))
                    show(report.results[-1].table())
        if len(report.results) > 1:
            for table in report.summaries():
                show(table)
    if args.memory:
        for dtype in args.dtype:
            report.tables.append(memory_table([CONFIGS[c] for c in args.configs],
                                              np.dtype(dtype), libraries, max(args.threads)))
            show(report.tables[-1])
    _say(NOTES)
    return report


def render_markdown(report: Report, per_config: bool = True) -> str:
    """The report as markdown: the command, the machine, the tables."""
    tables = [machine_table(report.machine, report.gemm)]
    if per_config:
        tables += [r.table() for r in report.results]
    if report.results:
        tables += report.summaries()
    tables += report.tables
    return "\n\n".join([f"`{report.command}`", NOTES] + [t.markdown() for t in tables]) + "\n"


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
    if args.report:
        with open(args.report, encoding="utf-8") as f:
            report = Report.from_json(json.load(f))
        _say(machine_table(report.machine, report.gemm).text())
        for table in report.summaries() + report.tables:
            _say()
            _say(table.text())
    else:
        report = measure_report(args, "python -m lstm_native.bench " + " ".join(argv))
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(render_markdown(report, per_config=not args.summary))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report.to_json(), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
