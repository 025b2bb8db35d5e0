"""Built-in data by name: synthetic series and tasks, and one real series shipped in the package.

=============  ==================================================================
name           what `load_dataset(name, **kwargs)` returns
=============  ==================================================================
``"sine"``     `noisy_sine`: a noisy sine, shape (length,)
``"sines"``    `sum_of_sines`: a noisy sum of sines, shape (length,)
``"adding"``   `adding_problem`: the adding problem, x (N, T, 2) and y (N, 1)
``"copy"``     `copy_task`: a copy task with a long lag, x (N, T, V) and y (N, T)
``"airline"``  `airline_passengers`: 144 monthly totals, shape (144,)
=============  ==================================================================

The synthetic data are drawn from ``numpy.random.default_rng(seed)``; every generator has
a fixed default seed, so the same call gives the same data (pass ``seed=None`` for fresh
draws).

The airline series is Box & Jenkins' series G: monthly totals of international airline
passengers, in thousands, January 1949 - December 1960 (G. E. P. Box and G. M. Jenkins,
*Time Series Analysis: Forecasting and Control*, Holden-Day, 1976; also Box, Jenkins &
Reinsel). It is the series R ships as ``datasets::AirPassengers``. It is kept in
``lstm_native/data/airline_passengers.csv`` (columns ``month`` as YYYY-MM and
``passengers``) and read through ``importlib.resources``, so it works from an installed
wheel as well as from a checkout.

The adding problem and the copy (long time lag) task come from Hochreiter & Schmidhuber,
"Long Short-Term Memory", Neural Computation 9(8), 1997 (experiments 4 and 2); the
versions here are the ones common since (one marker in each half of the sequence; a copy
of symbols after a delimiter, as in Arjovsky, Shah & Bengio 2016).
"""
from __future__ import annotations

import inspect
from importlib import resources

import numpy as np

from ._checks import check_int, check_real, make_rng
from .csv_io import _read_csv_series

__all__ = ["IGNORE_INDEX", "adding_problem", "airline_passengers", "copy_task",
           "list_datasets", "load_dataset", "noisy_sine", "sum_of_sines"]

#: Target value of the steps that have no target in `copy_task` (PyTorch's default
#: ``ignore_index`` of ``cross_entropy``).
IGNORE_INDEX = -100

_AIRLINE_FILE = "airline_passengers.csv"


# -----------------------------------------------------------------------------------------
# Synthetic series
# -----------------------------------------------------------------------------------------

def noisy_sine(length: int = 1000, *, period: float = 25.0, amplitude: float = 1.0,
               noise: float = 0.1, seed=0) -> np.ndarray:
    """A sine with Gaussian noise: ``amplitude * sin(2 pi t / period) + noise * e_t``.

    Parameters
    ----------
    length : int, default 1000
        Number of steps T (>= 1).
    period : float, default 25.0
        Period in steps (> 0).
    amplitude : float, default 1.0
        Amplitude of the sine.
    noise : float, default 0.1
        Standard deviation of the i.i.d. Gaussian noise e_t (>= 0).
    seed : int, numpy.random.Generator or None, default 0
        Seed of the noise.

    Returns
    -------
    ndarray of float64, shape (length,)

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If `length` < 1, `period` <= 0, `noise` < 0, or a number is not finite.
    """
    length = check_int(length, "length")
    period = check_real(period, "period", minimum=0.0, strict=True)
    amplitude = check_real(amplitude, "amplitude")
    noise = check_real(noise, "noise", minimum=0.0)
    rng = make_rng(seed)
    t = np.arange(length, dtype=np.float64)
    return amplitude * np.sin(2 * np.pi * t / period) + noise * rng.standard_normal(length)


def sum_of_sines(length: int = 1000, *, periods=(25.0, 9.3), amplitudes=(1.0, 0.5),
                 noise: float = 0.05, seed=0) -> np.ndarray:
    """A noisy sum of sines: ``sum_k a_k sin(2 pi t / p_k) + noise * e_t``.

    Parameters
    ----------
    length : int, default 1000
        Number of steps T (>= 1).
    periods : sequence of float, default (25.0, 9.3)
        Periods p_k in steps (> 0); incommensurate periods never repeat exactly.
    amplitudes : sequence of float, default (1.0, 0.5)
        Amplitudes a_k, one per period.
    noise : float, default 0.05
        Standard deviation of the i.i.d. Gaussian noise (>= 0).
    seed : int, numpy.random.Generator or None, default 0
        Seed of the noise.

    Returns
    -------
    ndarray of float64, shape (length,)

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If `periods` is empty or has a period <= 0, `amplitudes` has another length,
        or another argument is out of range.
    """
    length = check_int(length, "length")
    periods = _real_sequence(periods, "periods")
    amplitudes = _real_sequence(amplitudes, "amplitudes")
    for i, p in enumerate(periods):
        check_real(p, f"periods[{i}]", minimum=0.0, strict=True)
    if len(amplitudes) != len(periods):
        raise ValueError(f"amplitudes must have one value per period ({len(periods)}), "
                         f"got {len(amplitudes)}")
    noise = check_real(noise, "noise", minimum=0.0)
    rng = make_rng(seed)
    t = np.arange(length, dtype=np.float64)
    clean = sum(a * np.sin(2 * np.pi * t / p) for a, p in zip(amplitudes, periods))
    return clean + noise * rng.standard_normal(length)


def _real_sequence(values, name: str) -> list[float]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r}")
    if len(values) == 0:
        raise ValueError(f"{name} must hold at least one number, got an empty sequence")
    return [check_real(v, f"{name}[{i}]") for i, v in enumerate(values)]


# -----------------------------------------------------------------------------------------
# Long-memory tasks
# -----------------------------------------------------------------------------------------

def adding_problem(n_samples: int = 1000, seq_len: int = 50, seed=0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem: add the two marked numbers of a long sequence.

    Each sequence has two channels: values drawn uniformly from [0, 1], and markers
    that are 1 at exactly two steps (one in the first half ``[0, T//2)``, one in the
    second half ``[T//2, T)``) and 0 elsewhere. The target is the sum of the two marked
    values. Always predicting 1.0 (the expected sum) gives a mean squared error of
    Var(U1 + U2) = 1/6 ~ 0.167: the bar a model must clear to show it remembers.

    Parameters
    ----------
    n_samples : int, default 1000
        Number of sequences N (>= 1).
    seq_len : int, default 50
        Length T of each sequence (>= 2).
    seed : int, numpy.random.Generator or None, default 0
        Seed of the values and marker positions.

    Returns
    -------
    x : ndarray of float64, shape (N, T, 2)
        ``x[..., 0]`` the values, ``x[..., 1]`` the markers. Batch-first.
    y : ndarray of float64, shape (N, 1)
        The sum of the two marked values.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If `n_samples` < 1 or `seq_len` < 2.
    """
    n = check_int(n_samples, "n_samples")
    t = check_int(seq_len, "seq_len", 2)
    rng = make_rng(seed)
    half = t // 2
    values = rng.uniform(0.0, 1.0, size=(n, t))
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, t, size=n)
    markers = np.zeros((n, t))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values[rows, first] + values[rows, second])[:, None]
    return x, y


def copy_task(n_samples: int = 1000, lag: int = 50, n_symbols: int = 8, seq_len: int = 10,
              seed=0, *, one_hot: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The copy (long time lag) task: recall a sequence of symbols after a long wait.

    Token ids: the data symbols are ``0 .. n_symbols-1``, the blank is ``n_symbols`` and
    the delimiter ``n_symbols + 1`` (V = n_symbols + 2 tokens). With S = `seq_len`, each
    sequence of length ``T = 2*S + lag + 1`` is

    ======================  =================  ====================
    steps                   input              target
    ======================  =================  ====================
    ``0 .. S-1``            S random symbols   IGNORE_INDEX (-100)
    ``S .. S+lag-1``        blank              IGNORE_INDEX
    ``S+lag``               delimiter          IGNORE_INDEX
    ``S+lag+1 .. T-1``      blank              the S symbols
    ======================  =================  ====================

    so ``y[:, S+lag+1+k] == symbols[:, k]``: each symbol is recalled ``S + lag + 1``
    steps after it was shown. A model guessing at random scores a cross-entropy of
    ``log(n_symbols)`` on the target steps.

    Parameters
    ----------
    n_samples : int, default 1000
        Number of sequences N (>= 1).
    lag : int, default 50
        Blank steps between the symbols and the delimiter (>= 0).
    n_symbols : int, default 8
        Size of the symbol alphabet (>= 1).
    seq_len : int, default 10
        Number of symbols S to copy (>= 1).
    seed : int, numpy.random.Generator or None, default 0
        Seed of the symbols.
    one_hot : bool, default True
        Return the inputs one-hot encoded (float64) or as token ids (int64).

    Returns
    -------
    x : ndarray
        One-hot inputs of shape (N, T, n_symbols + 2), float64 (batch-first), or token
        ids of shape (N, T), int64, if ``one_hot=False``.
    y : ndarray of int64, shape (N, T)
        Target token ids at the last S steps, `IGNORE_INDEX` (-100) elsewhere: use a
        cross-entropy with ``ignore_index=-100``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If an int argument is out of range.
    """
    n = check_int(n_samples, "n_samples")
    lag = check_int(lag, "lag", 0)
    n_symbols = check_int(n_symbols, "n_symbols")
    s = check_int(seq_len, "seq_len")
    if not isinstance(one_hot, (bool, np.bool_)):
        raise TypeError(f"one_hot must be a bool, got {one_hot!r}")
    rng = make_rng(seed)
    blank, delimiter = n_symbols, n_symbols + 1
    t = 2 * s + lag + 1
    symbols = rng.integers(0, n_symbols, size=(n, s))
    tokens = np.full((n, t), blank, dtype=np.int64)
    tokens[:, :s] = symbols
    tokens[:, s + lag] = delimiter
    y = np.full((n, t), IGNORE_INDEX, dtype=np.int64)
    y[:, s + lag + 1:] = symbols
    if not one_hot:
        return tokens, y
    x = np.zeros((n, t, n_symbols + 2))
    np.put_along_axis(x, tokens[:, :, None], 1.0, axis=2)
    return x, y


# -----------------------------------------------------------------------------------------
# Real data
# -----------------------------------------------------------------------------------------

def airline_passengers(*, return_dates: bool = False):
    """Box & Jenkins' monthly international airline passengers, 1949-1960 (thousands).

    144 monthly totals from January 1949 to December 1960, with a trend and a yearly
    season whose swing grows with the level (a log transform makes it additive). Series
    G of Box & Jenkins (1976); R's ``AirPassengers``. Read from the CSV file shipped in
    the package.

    Parameters
    ----------
    return_dates : bool, default False
        Also return the months.

    Returns
    -------
    values : ndarray of float64, shape (144,)
        Passengers in thousands, 112.0 (1949-01) to 432.0 (1960-12).
    months : ndarray of datetime64[M], shape (144,)
        Only if `return_dates`: ``(values, months)`` is returned.

    Raises
    ------
    TypeError
        If `return_dates` is not a bool.
    """
    if not isinstance(return_dates, (bool, np.bool_)):
        raise TypeError(f"return_dates must be a bool, got {return_dates!r}")
    source = resources.files(__package__).joinpath(_AIRLINE_FILE)
    with source.open("r", encoding="utf-8") as fh:
        out = _read_csv_series(fh, "passengers", date_column="month" if return_dates else None,
                               min_length=144, source=_AIRLINE_FILE)
    if return_dates:
        values, months = out
        return values, months.astype("datetime64[M]")
    return out


# -----------------------------------------------------------------------------------------
# By name
# -----------------------------------------------------------------------------------------

_DATASETS = {
    "sine": (noisy_sine, "noisy sine wave, shape (length,)"),
    "sines": (sum_of_sines, "noisy sum of sines, shape (length,)"),
    "adding": (adding_problem, "adding problem (Hochreiter & Schmidhuber 1997): "
                               "x (N, T, 2), y (N, 1)"),
    "copy": (copy_task, "copy task with a long lag: x (N, T, n_symbols + 2) one-hot, "
                        "y (N, T) int targets, -100 = no target"),
    "airline": (airline_passengers, "Box & Jenkins monthly airline passengers 1949-1960, "
                                    "shape (144,), thousands"),
}


def list_datasets(*, descriptions: bool = False):
    """The names `load_dataset` accepts.

    Parameters
    ----------
    descriptions : bool, default False
        Return a dict of name -> one-line description instead of a list of names.

    Returns
    -------
    list of str or dict of str to str
        ``["sine", "sines", "adding", "copy", "airline"]`` (or the dict).
    """
    if descriptions:
        return {name: desc for name, (_, desc) in _DATASETS.items()}
    return list(_DATASETS)


def load_dataset(name: str, **kwargs):
    """A built-in dataset by name.

    Parameters
    ----------
    name : str
        One of `list_datasets()`: ``"sine"`` (`noisy_sine`), ``"sines"``
        (`sum_of_sines`), ``"adding"`` (`adding_problem`), ``"copy"`` (`copy_task`),
        ``"airline"`` (`airline_passengers`).
    **kwargs
        Passed to that function (e.g. ``length=``, ``noise=``, ``seed=``; ``n_samples=``,
        ``seq_len=``; ``lag=``; ``return_dates=``).

    Returns
    -------
    ndarray or tuple of ndarray
        What the function returns: a (T,) series for ``"sine"``, ``"sines"`` and
        ``"airline"``, an ``(x, y)`` pair for ``"adding"`` and ``"copy"``.

    Raises
    ------
    TypeError
        If `name` is not a str or a keyword is not accepted by that dataset (the
        message lists the accepted ones).
    ValueError
        If `name` is unknown (the message lists the known ones), or as the function.

    Examples
    --------
    >>> x, y = load_dataset("adding", n_samples=4, seq_len=20)
    >>> x.shape, y.shape
    ((4, 20, 2), (4, 1))
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {list(_DATASETS)}, got {name!r}")
    entry = _DATASETS.get(name.strip().lower())
    if entry is None:
        raise ValueError(f"name: unknown dataset {name!r}; available: {list(_DATASETS)}")
    fn = entry[0]
    sig = inspect.signature(fn)
    try:
        sig.bind(**kwargs)
    except TypeError as exc:
        raise TypeError(f"load_dataset({name!r}): {exc}; it accepts "
                        f"{list(sig.parameters)}") from None
    return fn(**kwargs)

