"""Checks shared by the public API: every message names the argument and what it expected.

The bounds below are fixed, not taken from the machine, so that a configuration saved on
one machine loads on any other. They keep every accepted size well inside the kernels'
C ``int`` arguments (row counts, matrix sides and leading dimensions of the GEMMs, the
loops of the packed GEMM and the cell passes), and turn absurd sizes into a ValueError
naming the argument instead of a MemoryError, an endless loop or a killed process.
"""
from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: Largest feature count: input_size, hidden_size, in_features, out_features. A gate
#: block of 4·2**20 columns stays far inside the kernels' int column indices.
MAX_FEATURES = 2**20
#: Largest num_layers of a recurrent layer.
MAX_NUM_LAYERS = 1024
#: Largest parameter count of one block (8 GiB of float32): every weight matrix then
#: has fewer elements than a C int counts.
MAX_PARAMETERS = 2**31 - 1
#: Largest n_threads. Accepted up to here (it is saved in configurations) and clamped
#: to the cores of the machine at call time.
MAX_THREADS = 1024
#: Largest rows of one call, T·N (steps × sequences; the batch of LSTMCell): the
#: kernels' GEMMs take the rows as a C int, and half its range leaves no loop near it.
MAX_ROWS = 2**30


#: The values of LSTM_NATIVE_ISA (src/cpu_features.h), in order: the SIMD level of the
#: kernels' own float passes and of the quantized products (int8 on VNNI, bfloat16 on
#: AVX512_BF16), capped at what the CPU offers; unset or empty picks the best it offers.
ISA_LEVELS = ("generic", "avx2", "avx2-vnni", "avx512", "avx512-vnni", "avx512-bf16")


def check_isa_request(environ) -> None:
    """ValueError unless LSTM_NATIVE_ISA in `environ` is unset, empty or a known level.

    The kernels read the variable when they load and ignore a value they do not know,
    so a typo would silently run the best level: check it first.
    """
    value = environ.get("LSTM_NATIVE_ISA", "")
    if value and value not in ISA_LEVELS:
        raise ValueError(f"the environment variable LSTM_NATIVE_ISA is {value!r}; expected "
                         f"one of {', '.join(map(repr, ISA_LEVELS))}, or unset or empty for "
                         "the best level this CPU offers")


def check_model_dtype(dtype) -> np.dtype:
    """The dtype a model computes in: float32 or float64, given as a NumPy dtype, its
    name, or torch.float32 / torch.float64 (None: the default, float32).

    torch is never imported for this unless the object given comes from it."""
    expected = "np.float32, np.float64, their names, or torch.float32 / torch.float64"
    if dtype is None:
        return np.dtype(np.float32)
    if type(dtype).__module__ == "torch":
        import torch

        torch_dtypes = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
        if isinstance(dtype, torch.dtype) and dtype in torch_dtypes:
            return torch_dtypes[dtype]
        raise TypeError(f"dtype must be {expected}, got {dtype!r}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be {expected}, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be {expected}, got {dt}")
    return dt


def check_device(device) -> None:
    """The `device` argument torch's layers take: the kernels run on the CPU, so None,
    "cpu" or torch.device("cpu") (ValueError for another device, TypeError for anything
    that is no device)."""
    expected = "None, 'cpu' or torch.device('cpu') (lstm_native runs on the CPU)"
    if device is None:
        return
    if isinstance(device, str):
        if device != "cpu":
            raise ValueError(f"device must be {expected}, got {device!r}")
        return
    if type(device).__module__ == "torch" and type(device).__name__ == "device":
        if device.type != "cpu" or device.index is not None:
            raise ValueError(f"device must be {expected}, got {device!r}")
        return
    raise TypeError(f"device must be {expected}, got {device!r}")


def check_size(value, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """A size argument: an int >= minimum (and <= maximum when given; bool is no int)."""
    bounds = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int {bounds}, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an int {bounds}, got {value}")
    return int(value)


def check_bool(value, name: str) -> bool:
    """A flag: True or False (a NumPy bool too). Truthiness is not enough: ``bias="no"``
    would build a layer with biases."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_parameter_count(count: int, sizes: str) -> None:
    """ValueError when a block would have more than MAX_PARAMETERS parameters, raised
    before anything is allocated; `sizes` names the arguments that give `count`."""
    if count > MAX_PARAMETERS:
        raise ValueError(f"{sizes} give {count} parameters, more than the "
                         f"{MAX_PARAMETERS} a block may have")


def check_rows(rows: int, name: str, what: str) -> None:
    """ValueError when one call would run more than MAX_ROWS rows through the kernels;
    `what` says how the rows of `name` are counted."""
    if rows > MAX_ROWS:
        raise ValueError(f"{name} has {rows} rows ({what}), more than the {MAX_ROWS} "
                         "one call may run: split it into smaller calls")


def check_seed(seed):
    """A seed of numpy's default_rng: None, an int >= 0, or numpy's own Generator,
    BitGenerator or SeedSequence."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.BitGenerator,
                                         np.random.SeedSequence)):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be None, an int >= 0 or a numpy Generator, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be None, an int >= 0 or a numpy Generator, got {seed}")
    return int(seed)


def as_float_array(a, name: str, dtype: np.dtype | None, expected: str) -> np.ndarray:
    """`a` as an array of the model's dtype (None: of its own float dtype).

    An array already of that dtype is returned as it is, unscanned. The other float
    precision is converted; float64 to float32 is checked: a finite value out of
    float32's range is a ValueError (it would become inf), while nan and inf pass
    through as they are (they propagate, as in torch). Any other dtype is a TypeError,
    nested lists of unequal lengths a ValueError; `expected` spells the shape the caller
    wants (for the message).
    """
    try:
        arr = np.asarray(a)
    except ValueError as e:  # nested sequences of unequal lengths
        raise ValueError(f"{name} must be an array of shape {expected}: {e}") from None
    if arr.dtype not in FLOAT_DTYPES:
        got = f"dtype {arr.dtype}" if arr.dtype != object else type(a).__name__
        raise TypeError(f"{name} must be a float32 or float64 array of shape {expected}, "
                        f"got {got}")
    if dtype is None or arr.dtype == dtype:
        return arr
    if arr.dtype.itemsize < dtype.itemsize:
        return arr.astype(dtype)
    with np.errstate(over="ignore"):
        converted = arr.astype(dtype)
    if not np.isfinite(converted).all() and np.any(np.isfinite(arr) & ~np.isfinite(converted)):
        raise ValueError(f"{name} holds a value out of {dtype}'s range (finite in "
                         f"{arr.dtype}, inf in the model's {dtype})")
    return converted


def check_shape(arr: np.ndarray, name: str, shape: tuple, expected: str) -> None:
    """ValueError unless arr.shape == shape; `expected` spells the shape symbolically."""
    if arr.shape != tuple(shape):
        raise ValueError(
            f"{name} must have shape {expected} = {tuple(shape)}, got {arr.shape}"
        )


def from_torch(value):
    """A torch tensor as a NumPy array (torch is never imported), anything else as it is:
    state_dicts and lengths may come from torch."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value


def check_lengths(lengths, N: int, T: int) -> np.ndarray:
    """`lengths` of N sequences padded to T steps: N ints in 1..T (None: all T), as int64."""
    if lengths is None:
        return np.full(N, T, dtype=np.int64)
    arr = np.asarray(from_torch(lengths))  # a tensor, as pack_padded_sequence takes
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"lengths must be {N} integers in 1..{T}, got dtype {arr.dtype}")
    if arr.shape != (N,):
        raise ValueError(f"lengths must have shape (N,) = ({N},), got {arr.shape}")
    if arr.min() < 1 or arr.max() > T:
        raise ValueError(
            f"lengths must be in 1..T = 1..{T}, got values from {arr.min()} to {arr.max()}"
        )
    return np.ascontiguousarray(arr, dtype=np.int64)
