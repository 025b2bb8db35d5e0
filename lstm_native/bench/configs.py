"""The standard configurations A-F and S, the cells, the modes, and the FLOPs and bytes
they need.

One definition for ``python -m lstm_native.bench`` and the asv suite (benchmarks/): both
import it from the installed package. It imports nothing but the standard library.
"""
from __future__ import annotations

import dataclasses

__all__ = ["Cell", "CELLS", "Config", "CONFIGS", "MODES", "LIBRARIES", "SHORT_NAMES",
           "DTYPES", "LOW_PRECISIONS", "FLOAT32_LIBRARY", "SPEEDUP_TARGETS",
           "SCALING_CONFIGS", "OVERHEAD_CONFIGS", "SPEEDUP_CONFIGS", "forward_flops",
           "backward_flops", "mode_flops", "activation_bytes", "parameter_count"]


@dataclasses.dataclass(frozen=True)
class Cell:
    """A kind of recurrent layer, as the benchmark times it.

    Attributes
    ----------
    name : str
        Its name in ``--cells`` and in the tables' cell column.
    layer : str
        The class of that name in lstm_native and in ``torch.nn`` (each peer builds its
        own from the same weights).
    gates : int
        Gate blocks of H rows in W_ih and W_hh, G: what the GEMMs' FLOPs scale with.
    kept : int
        Values per hidden unit a training forward keeps per step for backward (and, with
        a projection, the P-wide hidden state besides).
    proj_divisor : int
        With a projection (an LSTM's `proj_size`), P = H // proj_divisor; 0 for none.
    options : dict
        The layer's keyword arguments besides its shape (``{"peepholes": True}``), the
        same for every configuration.
    unit_params : int
        Parameters per hidden unit, layer and direction besides the weights, biases and
        projection (the peepholes p_i, p_f, p_o: 3).
    peers : tuple of str
        The peers (`LIBRARIES` but lstm_native) that have this cell and are timed on it.
    baseline : str or None
        A cell (a key of `CELLS`) whose lstm_native layer is timed side by side with this
        one, in the same alternating blocks, for the ratio variant / baseline; None for
        none.
    overhead_target : float or None
        The most a training step may take relative to the baseline's on A-E (1.10: at
        most 10% more), shown next to the measured ratio.
    """

    name: str
    layer: str
    gates: int
    kept: int
    proj_divisor: int = 0
    options: dict = dataclasses.field(default_factory=dict)
    unit_params: int = 0
    peers: tuple[str, ...] = ("torch", "onnxruntime")
    baseline: str | None = None
    overhead_target: float | None = None

    @property
    def quantizable(self) -> bool:
        """Whether `lstm_native.quantize` has a form of it (the plain LSTM and the GRU:
        no projection, no options)."""
        return not self.options and not self.proj_divisor

    @property
    def baseline_library(self) -> str | None:
        """The baseline's name in the library column of timings and tables
        (``"lstm_native:lstm"``), or None without one."""
        return f"lstm_native:{self.baseline}" if self.baseline else None

    def describe(self) -> str:
        """What is timed against what, for ``--help``."""
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        ours = f"lstm_native.{self.layer}" + (f"({options})" if options else "")
        if self.proj_divisor:
            ours += f" with proj_size = H/{self.proj_divisor}"
        against = [f"torch.nn.{self.layer}" if p == "torch" else f"ONNX's {self.layer}"
                   for p in self.peers]
        if self.baseline:
            against.append(f"lstm_native's {self.baseline}, side by side")
        return f"{self.name} = {ours} vs {' and '.join(against) or 'nothing'}"


CELLS: dict[str, Cell] = {c.name: c for c in [
    # The four activated gates, the cell and the hidden state.
    Cell("lstm", "LSTM", gates=4, kept=6),
    # torch's GRU (reset after the recurrent GEMM): the three activated gates, the hidden
    # state, and n's recurrent term W_hn·h + b_hn, which the reset gate's gradient needs.
    Cell("gru", "GRU", gates=3, kept=5),
    # The LSTM with a projection to P = H/4 (the ratio of Sak et al. 2014's LSTMP, 2048
    # cells projected to 512): the four gates, the cell and the projection's input m.
    # ONNX's LSTM has no projection.
    Cell("lstmp", "LSTM", gates=4, kept=6, proj_divisor=4, peers=("torch",)),
    # The peephole LSTM (ONNX's P): its training forward keeps the four pre-activations
    # instead of the activated gates, the same amount. Neither torch.nn.LSTM nor (in this
    # comparison) ONNX Runtime runs it: it is timed against our plain LSTM.
    Cell("lstm-peephole", "LSTM", gates=4, kept=6, options={"peepholes": True}, unit_params=3,
         peers=(), baseline="lstm", overhead_target=1.10),
    # The layer-normalised LSTM (Ba et al. 2016): the pre-activations, c and h, and its
    # norm buffer of 9H + 3 per row (3 left out here); gains and biases of the two
    # projections' norms (4 · 4H) and of c's (2H). No peer has it.
    Cell("ln-lstm", "LSTM", gates=4, kept=15, options={"layer_norm": True}, unit_params=18,
         peers=(), baseline="lstm", overhead_target=1.25),
]}


@dataclasses.dataclass(frozen=True)
class Config:
    """One benchmark problem: B sequences of T steps, I inputs, H hidden units, L layers
    of a cell.

    Attributes
    ----------
    name : str
        The configuration's letter in docs/performance.md.
    batch, steps, input_size, hidden_size, num_layers : int
        B, T, I, H and L.
    bidirectional : bool
        Whether each layer also runs backwards (D = 2).
    origin : str
        Where the shape comes from.
    cell : str
        A key of `CELLS`. The standard configurations are LSTMs; `with_cell` gives the
        same shape with another cell.
    """

    name: str
    batch: int
    steps: int
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    origin: str = ""
    cell: str = "lstm"

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; expected one of {list(CELLS)}")

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def gates(self) -> int:
        """The cell's gate blocks, G."""
        return CELLS[self.cell].gates

    @property
    def proj_size(self) -> int:
        """P, the projected hidden state's width; 0 without a projection."""
        divisor = CELLS[self.cell].proj_divisor
        return self.hidden_size // divisor if divisor else 0

    @property
    def state_size(self) -> int:
        """The width of h and of each direction's output: P, or H."""
        return self.proj_size or self.hidden_size

    def layer_kwargs(self) -> dict:
        """The layer's arguments after input_size and hidden_size, as lstm_native's and
        torch's classes take them (with the cell's `Cell.options`, which torch's take
        only where torch is one of the cell's peers)."""
        kwargs = {"num_layers": self.num_layers, "bidirectional": self.bidirectional,
                  **CELLS[self.cell].options}
        if self.proj_size:
            kwargs["proj_size"] = self.proj_size
        return kwargs

    def with_steps(self, steps: int) -> Config:
        """The same problem over `steps` time steps."""
        return dataclasses.replace(self, steps=steps)

    def with_cell(self, cell: str) -> Config:
        """The same shape with another cell (a key of `CELLS`)."""
        return dataclasses.replace(self, cell=cell)

    def describe(self) -> str:
        text = (f"B={self.batch} T={self.steps} I={self.input_size} H={self.hidden_size} "
                + (f"P={self.proj_size} " if self.proj_size else "") + f"L={self.num_layers}")
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

#: The configurations ``--scaling`` runs: those large enough for T and threads to matter.
SCALING_CONFIGS = ("A", "B", "C", "D", "E")

#: The configurations a variant's `Cell.overhead_target` is stated on.
OVERHEAD_CONFIGS = ("A", "B", "C", "D", "E")

#: The configurations the low precisions' `SPEEDUP_TARGETS` are stated on.
SPEEDUP_CONFIGS = ("A", "B", "C", "D", "E")

#: What each mode times. "train" is a first layer's step: no gradient for the input.
MODES: dict[str, str] = {
    "infer": "forward in inference mode (lstm_native eval, torch.no_grad, ONNX Runtime)",
    "train": "forward + backward of all weights, no input gradient",
    "train_dx": "forward + backward of all weights and of the input",
    "bwd": "backward alone (weights, no input gradient), after an untimed forward",
}

#: The libraries timed, lstm_native first: it is the reference of every ratio.
LIBRARIES = ("lstm_native", "torch", "onnxruntime")
SHORT_NAMES = {"lstm_native": "ln", "torch": "torch", "onnxruntime": "ORT"}

#: The reduced precisions of ``--dtype``: `lstm_native.quantize`'s, timed in inference
#: only, on the float32 problem's weights and data.
LOW_PRECISIONS = ("int8", "bfloat16")
DTYPES = ("float32", "float64") + LOW_PRECISIONS

#: lstm_native's float32 layer in a low-precision run: timed in the same blocks as the
#: quantized one, on the same weights, for the ratio float32 / quantized.
FLOAT32_LIBRARY = "lstm_native:float32"

#: The speed-up over our float32 on A-E that each precision must reach (the target) and
#: aims at (the goal), 2 threads.
SPEEDUP_TARGETS = {"int8": (2.0, 3.0), "bfloat16": (1.5, 1.8)}


def _layer_inputs(cfg: Config) -> list[int]:
    """The input width of each layer: I, then D·H (D·P with a projection)."""
    return [cfg.input_size] + [cfg.directions * cfg.state_size] * (cfg.num_layers - 1)


def forward_flops(cfg: Config) -> int:
    """GEMM FLOPs of a forward pass: 2·G·B·H·(I + H)·T per layer and direction.

    Each step multiplies [x_t, h_{t-1}] (B × (I + H)) by the G gates' weights
    ((I + H) × G·H), B·(I + H)·G·H multiply-adds counted as two FLOPs each: 8·B·H·(I + H)
    for the LSTM's four gates, 6·B·H·(I + H) for the GRU's three. With a projection h_{t-1}
    is P wide, 2·G·B·H·(I + P), and the projection itself adds 2·B·P·H. The elementwise
    work (a few dozen FLOPs per hidden unit; the GRU's r ⊙ (W_hn·h + b_hn) among them) is
    left out, as by convention.
    """
    B, T, H, D, G = cfg.batch, cfg.steps, cfg.hidden_size, cfg.directions, cfg.gates
    S, P = cfg.state_size, cfg.proj_size
    return sum((2 * G * B * H * (i + S) + 2 * B * P * H) * T * D for i in _layer_inputs(cfg))


def backward_flops(cfg: Config, input_grad: bool = True) -> int:
    """GEMM FLOPs of backpropagation through time.

    Twice the forward's: dW_ih, dW_hh (gates' gradients against the inputs and states)
    and dx, dh_{t-1} (against the weights). Without the input gradient the first layer
    skips dx = dG·W_ih, 2·G·B·H·I·T per direction; layers above always need theirs.
    """
    flops = 2 * forward_flops(cfg)
    if not input_grad:
        flops -= (2 * cfg.gates * cfg.batch * cfg.hidden_size * cfg.input_size * cfg.steps
                  * cfg.directions)
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
    the cell's `Cell.kept` values per hidden unit (LSTM: the four activated gates, the
    cell and the hidden state, 6·H per row), and the P-wide hidden state with a
    projection."""
    per_row = CELLS[cfg.cell].kept * cfg.hidden_size + cfg.proj_size
    return cfg.steps * cfg.batch * per_row * cfg.num_layers * cfg.directions * itemsize


def parameter_count(cfg: Config) -> int:
    """Weights and biases (b_ih and b_hh) of all layers and directions, the projections
    (P × H) with one, and the cell's `Cell.unit_params` per hidden unit."""
    H, D, G, S = cfg.hidden_size, cfg.directions, cfg.gates, cfg.state_size
    extra = cfg.proj_size * H + CELLS[cfg.cell].unit_params * H
    return sum(D * (G * H * (i + S) + 2 * G * H + extra) for i in _layer_inputs(cfg))
