"""lstm_native: an exact, fast LSTM in native code behind PyTorch's API.

The forward pass and backpropagation through time run in typed Cython kernels with
OpenMP threads and SIMD/BLAS; `lstm_native.reference` holds the same equations in plain
NumPy. Around the core: layers (`Linear`, `Dropout`, `LastStep`, `Sequential`), losses,
optimizers and schedules, checkpoints, the training loop (`fit`, `predict`, `evaluate`,
callbacks), and time-series data helpers (`lstm_native.data`).
"""
import os as _os

# OpenMP threads that finish a parallel region spin for a while before they sleep. Our
# kernels open only a few regions per call, so sleeping costs microseconds, while a
# spinning thread steals a core from the caller's own work (and on a busy machine makes
# two threads far slower than one). libgomp reads this once, when the kernels load
# below; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left as it is.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

from . import data, losses, optim, schedules  # noqa: E402
from ._parallel import openmp_enabled  # noqa: E402
from .checkpoint import load_checkpoint, load_model, register_module, save_checkpoint
from .layers import Dropout, LastStep, Linear, Sequential
from .lstm import LSTM, LSTMCell
from .module import Module
from .rnn import RNN
from .training import (Callback, EarlyStopping, History, ModelCheckpoint, evaluate, fit,
                       predict, resume_from_checkpoint)

__version__ = "0.1.0"

__all__ = [
    "LSTM", "LSTMCell", "RNN", "Linear", "Dropout", "LastStep", "Sequential", "Module",
    "losses", "optim", "schedules", "data",
    "save_checkpoint", "load_checkpoint", "load_model", "register_module",
    "openmp_enabled", "__version__",
    "fit", "predict", "evaluate", "History", "Callback", "EarlyStopping", "ModelCheckpoint",
    "resume_from_checkpoint",
]
