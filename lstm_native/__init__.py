"""lstm_native: an exact, fast LSTM in native code behind PyTorch's API.

The forward pass and backpropagation through time run in typed Cython kernels with
OpenMP threads and SIMD/BLAS; `lstm_native.reference` holds the same equations in plain
NumPy. Around the core: layers (`Linear`, `Dropout`, `LastStep`, `Sequential`,
`Ensemble`), losses, optimizers and schedules, checkpoints, the training loop (`fit`,
`predict`, `evaluate`, callbacks), and time-series data helpers (`lstm_native.data`).
"""
import os as _os

from ._validation import check_isa_request as _check_isa_request

# Before any kernel loads: they read LSTM_NATIVE_ISA then, and ignore a value they do not know.
_check_isa_request(_os.environ)

from . import data, init, losses, optim, schedules
from ._parallel import openmp_enabled
from .checkpoint import (CheckpointError, load_checkpoint, load_model, register_module,
                         save_checkpoint)
from .gru import GRU, GRUCell
from .layers import Dropout, Ensemble, LastStep, Linear, Sequential
from .lstm import LSTM, LSTMCell
from .module import Module
from .quantization import quantize
from .rnn import RNN, RNNCell
from .training import (Callback, EarlyStopping, History, ModelCheckpoint, evaluate, fit,
                       predict, resume_from_checkpoint)

__version__ = "0.1.0"

__all__ = [
    "LSTM", "LSTMCell", "RNN", "RNNCell", "GRU", "GRUCell", "Linear", "Dropout", "LastStep",
    "Sequential", "Ensemble", "Module",
    "losses", "optim", "schedules", "data", "init",
    "save_checkpoint", "load_checkpoint", "load_model", "register_module", "CheckpointError",
    "openmp_enabled", "__version__",
    "fit", "predict", "evaluate", "History", "Callback", "EarlyStopping", "ModelCheckpoint",
    "resume_from_checkpoint", "quantize",
]
