"""asv benchmarks of lstm_native: inference, a training step, backward alone, memory, GF/s.

The full matrix: the LSTM (`Inference`, `TrainingStep`, `Backward`), the GRU
(`GRUInference`, ...), the LSTM with a projection (`LSTMPInference`, ...), with
peepholes (`LSTMPeepholeInference`, ...) and layer-normalised (`LNLSTMInference`, ...)
on the standard configurations A-F and S, float32 and float64, 1 and 2 threads, and the
LSTM's quantized inference (`QuantizedInference`: `lstm_native.quantize`'s int8 and
bfloat16 models of `Inference`'s float32 LSTM) on A and E. It takes a while; quick.py
runs the same benchmarks on a few configurations, and a regular
expression on the names or parameters picks other subsets (README.md,
"Benchmarks"): ``asv run -b "^quick\\."``, ``asv run -b "'float32', 2\\)"``.

The configurations and their FLOPs are those of ``python -m lstm_native.bench``
(`lstm_native.bench.configs`), imported from the lstm_native that asv installed from the
commit it times; so the suite times the commits that have that module (the GRU's
benchmarks: those whose module has the cells too; asv skips them on earlier ones). Models
and data are built once per parameter set and process: asv re-runs `setup` before each
timed call.
"""
import time

import numpy as np

import lstm_native as ln
from lstm_native.bench.configs import CONFIGS, mode_flops

DTYPES = ["float32", "float64"]
THREADS = [1, 2]
PRECISIONS = ["int8", "bfloat16"]

_problems = {}
_quantized = {}


def _layer_and_config(cell, config):
    """The lstm_native class and the `Config` of a cell and configuration's letter."""
    cfg = CONFIGS[config]
    if cell == "lstm":  # as every commit with lstm_native.bench.configs has it
        return ln.LSTM, cfg
    try:
        from lstm_native.bench.configs import CELLS
    except ImportError:
        CELLS = {}
    if cell not in CELLS:
        # asv marks the benchmark skipped on a commit from before the cell.
        raise NotImplementedError(f"no {cell} cell in this lstm_native.bench")
    return getattr(ln, CELLS[cell].layer), cfg.with_cell(cell)


def _cell_options(cell):
    """The layer's keyword arguments of a variant cell (`Cell.options`, which came with
    the variants: none before)."""
    from lstm_native.bench.configs import CELLS

    return dict(getattr(CELLS[cell], "options", {}))


def _problem(cell, config, dtype, n_threads):
    """(model, x, dout, cfg) of one parameter set, made once per process."""
    key = (cell, config, dtype, n_threads)
    if key not in _problems:
        layer, cfg = _layer_and_config(cell, config)
        # A projection's width from the cell (commits from before the projected LSTM's
        # benchmarks have none).
        proj_size = getattr(cfg, "proj_size", 0)
        options = {} if cell == "lstm" else _cell_options(cell)
        if proj_size:
            options["proj_size"] = proj_size
        model = layer(cfg.input_size, cfg.hidden_size, cfg.num_layers,
                      bidirectional=cfg.bidirectional, dtype=np.dtype(dtype), seed=0,
                      n_threads=n_threads, **options)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((cfg.steps, cfg.batch, cfg.input_size)).astype(dtype)
        dout = rng.standard_normal(
            (cfg.steps, cfg.batch, cfg.directions * (proj_size or cfg.hidden_size)))
        dout = dout.astype(dtype)
        _problems[key] = (model, x, dout, cfg)
    return _problems[key]


def _gflops(fn, flops, runs=5):
    """GF/s of the median of `runs` timed calls of fn, after one untimed call."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return flops / float(np.median(times)) / 1e9


class _Benchmark:
    #: The layer timed, a key of `CELLS`; `_cell_benchmarks` sets the other cells'.
    cell = "lstm"
    params = [list(CONFIGS), DTYPES, THREADS]
    param_names = ["config", "dtype", "n_threads"]
    timeout = 600.0

    def setup(self, config, dtype, n_threads):
        self.model, self.x, self.dout, self.cfg = _problem(self.cell, config, dtype,
                                                           n_threads)

    def _train_step(self):
        self.model(self.x)
        self.model.backward(self.dout, input_grad=False)


class Inference(_Benchmark):
    """A forward pass in eval mode: no activations kept."""

    def setup(self, config, dtype, n_threads):
        super().setup(config, dtype, n_threads)
        self.model.eval()

    def time_forward(self, config, dtype, n_threads):
        self.model(self.x)

    def track_gflops(self, config, dtype, n_threads):
        return _gflops(lambda: self.model(self.x), mode_flops(self.cfg, "infer"))

    track_gflops.unit = "GF/s"


class TrainingStep(_Benchmark):
    """Forward + backward of all weights, no input gradient (a first layer's step)."""

    def setup(self, config, dtype, n_threads):
        super().setup(config, dtype, n_threads)
        self.model.train()

    def time_step(self, config, dtype, n_threads):
        self._train_step()

    def peakmem_step(self, config, dtype, n_threads):
        self._train_step()

    def track_gflops(self, config, dtype, n_threads):
        return _gflops(self._train_step, mode_flops(self.cfg, "train"))

    track_gflops.unit = "GF/s"


class Backward(_Benchmark):
    """Backward alone; `setup` runs the forward it back-propagates through."""

    # One call per sample: each backward needs the fresh forward of a setup.
    number = 1

    def setup(self, config, dtype, n_threads):
        super().setup(config, dtype, n_threads)
        self.model.train()
        self.model(self.x)

    def time_backward(self, config, dtype, n_threads):
        self.model.backward(self.dout, input_grad=False)


# The other cells' benchmarks are classes of their own rather than a `cell` parameter of
# the ones above: asv keys a result by benchmark name and parameters, and a new parameter
# would cut the LSTM's benchmarks off their history.

def _cell_benchmarks(cell, prefix):
    """`Inference`, `TrainingStep` and `Backward` of `cell` (a key of `CELLS`), named
    prefix + their name.

    asv finds a class by the name it is bound to in this module, which must be its
    ``__name__`` (a benchmark's name is module.class.method): bind each to its own name.
    """
    return tuple(type(prefix + base.__name__, (base,), {
        "cell": cell, "__module__": __name__,
        "__doc__": f"`{base.__name__}` of the {cell!r} cell (`lstm_native.bench.configs.CELLS`)."})
        for base in (Inference, TrainingStep, Backward))


# torch's GRU (reset after the recurrent GEMM).
GRUInference, GRUTrainingStep, GRUBackward = _cell_benchmarks("gru", "GRU")
# The LSTM with a projection to P = H/4.
LSTMPInference, LSTMPTrainingStep, LSTMPBackward = _cell_benchmarks("lstmp", "LSTMP")
# The LSTM with peepholes.
(LSTMPeepholeInference, LSTMPeepholeTrainingStep,
 LSTMPeepholeBackward) = _cell_benchmarks("lstm-peephole", "LSTMPeephole")
# The layer-normalised LSTM.
LNLSTMInference, LNLSTMTrainingStep, LNLSTMBackward = _cell_benchmarks("ln-lstm", "LNLSTM")


class QuantizedInference:
    """Inference of `Inference`'s float32 LSTM quantized to int8 or bfloat16
    (`lstm_native.quantize`, on commits that have it): the same weights and data, its
    figures beside `Inference`'s float32 ones of the same configuration and threads."""

    params = [["A", "E"], PRECISIONS, THREADS]
    param_names = ["config", "precision", "n_threads"]
    timeout = 600.0

    def setup(self, config, precision, n_threads):
        quantize = getattr(ln, "quantize", None)
        if quantize is None:
            # asv marks the benchmark skipped on a commit from before the quantized models.
            raise NotImplementedError("no lstm_native.quantize in this lstm_native")
        model, self.x, _, self.cfg = _problem("lstm", config, "float32", n_threads)
        key = (config, precision, n_threads)
        if key not in _quantized:
            _quantized[key] = quantize(model, precision)
        self.model = _quantized[key]

    def time_forward(self, config, precision, n_threads):
        self.model(self.x)

    def track_gops(self, config, precision, n_threads):
        return _gflops(lambda: self.model(self.x), mode_flops(self.cfg, "infer"))

    # The products' multiply-adds, two operations each: int8 ones are no FLOPs.
    track_gops.unit = "GOP/s"
