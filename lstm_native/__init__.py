"""lstm_native: an exact, fast LSTM in native code behind PyTorch's API.

The forward pass and backpropagation through time run in typed Cython kernels with
OpenMP threads and BLAS; `lstm_native.reference` holds the same equations in plain NumPy.
"""
from ._parallel import openmp_enabled
from .lstm import LSTM, LSTMCell
from .module import Module

__version__ = "0.1.0"

__all__ = ["LSTM", "LSTMCell", "Module", "openmp_enabled", "__version__"]
