"""asv benchmarks of lstm_native: inference, a training step, backward alone, memory, GF/s.

Every benchmark runs over the standard configurations A-F and S of docs/performance.md
(the same table as `lstm_native.bench.CONFIGS`; tests/test_bench.py checks they agree),
float32 and float64, and 1 and 2 threads. The full matrix takes a while; a regular
expression on the parameters picks a subset (README.md, "Benchmarks"):
``asv run -b "'float32', 2\\)"``.

This file imports nothing from lstm_native but its public API, so that asv can time
older commits too. Models and data are built once per parameter set and process: asv
re-runs `setup` before each timed call.
"""
import time

import numpy as np

import lstm_native as ln

#: name: (B batch, T steps, I inputs, H hidden units, L layers), unidirectional.
CONFIGS = {
    "A": (64, 25, 512, 512, 1),
    "B": (32, 150, 256, 256, 1),
    "C": (16, 50, 1024, 1024, 1),
    "D": (64, 50, 500, 500, 1),
    "E": (32, 50, 512, 512, 2),
    "F": (32, 100, 16, 64, 2),
    "S": (1, 1000, 1, 64, 1),
}
DTYPES = ["float32", "float64"]
THREADS = [1, 2]

_problems = {}


def _problem(config, dtype, n_threads):
    """(model, x, dout) of one parameter set, made once per process."""
    key = (config, dtype, n_threads)
    if key not in _problems:
        B, T, I, H, L = CONFIGS[config]
        model = ln.LSTM(I, H, L, dtype=np.dtype(dtype), seed=0, n_threads=n_threads)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((T, B, I)).astype(dtype)
        dout = rng.standard_normal((T, B, H)).astype(dtype)
        _problems[key] = (model, x, dout)
    return _problems[key]


def forward_flops(config):
    """GEMM FLOPs of a forward pass: 8·B·H·(I + H)·T per layer (I = H above the first)."""
    B, T, I, H, L = CONFIGS[config]
    return sum(8 * B * H * ((I if layer == 0 else H) + H) * T for layer in range(L))


def training_flops(config):
    """Forward + backward without the input gradient: three forwards, less the first
    layer's dx = dG·W_ih (8·B·H·I·T)."""
    B, T, I, H, _ = CONFIGS[config]
    return 3 * forward_flops(config) - 8 * B * H * I * T


def _gflops(fn, flops, runs=5):
    """GF/s of the median of `runs` timed calls of fn, after one untimed call."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return flops / float(np.median(times)) / 1e9


class _LSTMBenchmark:
    params = [list(CONFIGS), DTYPES, THREADS]
    param_names = ["config", "dtype", "n_threads"]
    timeout = 600.0

    def setup(self, config, dtype, n_threads):
        self.model, self.x, self.dout = _problem(config, dtype, n_threads)

    def _train_step(self):
        self.model(self.x)
        self.model.backward(self.dout, input_grad=False)


class Inference(_LSTMBenchmark):
    """A forward pass in eval mode: no activations kept."""

    def setup(self, config, dtype, n_threads):
        super().setup(config, dtype, n_threads)
        self.model.eval()

    def time_forward(self, config, dtype, n_threads):
        self.model(self.x)

    def track_gflops(self, config, dtype, n_threads):
        return _gflops(lambda: self.model(self.x), forward_flops(config))

    track_gflops.unit = "GF/s"


class TrainingStep(_LSTMBenchmark):
    """Forward + backward of all weights, no input gradient (a first layer's step)."""

    def setup(self, config, dtype, n_threads):
        super().setup(config, dtype, n_threads)
        self.model.train()

    def time_step(self, config, dtype, n_threads):
        self._train_step()

    def peakmem_step(self, config, dtype, n_threads):
        self._train_step()

    def track_gflops(self, config, dtype, n_threads):
        return _gflops(self._train_step, training_flops(config))

    track_gflops.unit = "GF/s"


class Backward(_LSTMBenchmark):
    """Backward alone; `setup` runs the forward it back-propagates through."""

    # One call per sample: each backward needs the fresh forward of a setup.
    number = 1

    def setup(self, config, dtype, n_threads):
        super().setup(config, dtype, n_threads)
        self.model.train()
        self.model(self.x)

    def time_backward(self, config, dtype, n_threads):
        self.model.backward(self.dout, input_grad=False)
