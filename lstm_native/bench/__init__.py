"""Side-by-side timing of lstm_native's LSTM and GRU, torch.nn's and ONNX Runtime's.

Run ``python -m lstm_native.bench --help``. The package, one job per module:

- `configs`: the standard configurations A-F and S, the cells (``--cells``: LSTM, GRU)
  and the FLOPs they need (the asv suite in benchmarks/ imports them too);
- `machine`: the machine and settings the figures depend on;
- `timing`: alternating blocks of runs, medians, the GEMM rate to compare against;
- `peers`: each library's call on shared weights and data (the ONNX model is
  `lstm_native.onnx.recurrent_model`'s);
- `memory`: a training step's peak RSS, from ``/proc``, in a fresh process each;
- `report`: the tables, as text, markdown and JSON;
- `run`: one run as the command line asks; `cli`: the command line's options.

GF/s count the GEMM FLOPs the cell needs (`configs.mode_flops`), and the GEMM rate
measured right after each configuration (numpy's matmul of two 2048² matrices on the
same threads) says how close to the machine's BLAS that is.

The modules import lstm_native absolutely and each other relatively, so that a copy of
this folder times any installed version of the package (docs/performance.md, "History").
"""
from .cli import main
from .configs import (CELLS, CONFIGS, LIBRARIES, MODES, Cell, Config, activation_bytes,
                      backward_flops, forward_flops, mode_flops)
from .machine import kernel_module, machine_info, simd_level
from .report import Table
from .timing import gemm_rate

__all__ = [
    "Cell", "CELLS", "Config", "CONFIGS", "MODES", "LIBRARIES", "forward_flops",
    "backward_flops", "mode_flops", "activation_bytes",
    "kernel_module", "simd_level", "machine_info", "gemm_rate", "Table", "main",
]
