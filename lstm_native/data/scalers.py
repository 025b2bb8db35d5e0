"""Per-variable scalers: statistics from the training part only, applied to every part.

Fit a scaler on the *training* part of a series only (`chronological_split` gives it),
then transform the training, validation and test parts (and the model's inputs at
inference) with those same statistics; fitting on the whole series would leak the future
into training. Predictions are mapped back with ``inverse_transform``.

The last axis is the variable axis: a scaler fitted on a (T, F) series transforms any
(..., F) array, e.g. the (N, lookback, F) windows of `make_windows`. A 1-D array is one
variable. ``columns=`` selects fitted variables when the array holds only some of them
(the targets ``y`` of ``make_windows(..., target_columns=...)``).

A constant training column has no spread to divide by: it is mapped to 0
(`StandardScaler`; also a column whose standard deviation underflows to 0) or to the low end of the range (`MinMaxScaler`) with a divisor of 1,
never a division by zero. Values up to float64's limit (~1.8e308) get finite statistics,
and a result past the output dtype's range is a ValueError, never inf. ``get_state()``/``from_state()`` turn a fitted scaler into a
JSON-ready dict and back, for checkpoints.
"""
from __future__ import annotations

import numbers

import numpy as np

from ._checks import as_float_values, check_columns

__all__ = ["StandardScaler", "MinMaxScaler", "scaler_from_state"]


class _Scaler:
    """Shared machinery: ``z = (x - center) / scale + shift`` per variable."""

    _center: np.ndarray
    _scale: np.ndarray
    _shift: np.ndarray

    def __init__(self) -> None:
        self.n_features_: int | None = None

    # -- subclasses fill these -----------------------------------------------------------
    def _fit_stats(self, values: np.ndarray) -> None:  # values: (n_rows, F) float64
        raise NotImplementedError

    def _state_stats(self) -> dict:
        raise NotImplementedError

    def _load_stats(self, state: dict, n_features: int) -> None:
        raise NotImplementedError

    # -- public API ------------------------------------------------------------------------
    def fit(self, train):
        """Learn the per-variable statistics from the training data.

        Parameters
        ----------
        train : array_like, shape (T,) or (..., F)
            The training part only (never validation or test data). The last axis holds
            the F variables; statistics are taken over all other axes. 1-D is one variable.

        Returns
        -------
        self

        Raises
        ------
        TypeError
            If `train` is not numeric.
        ValueError
            If `train` is 0-D, empty, or holds NaN/inf; for `MinMaxScaler`, if a
            variable's range (max - min) overflows float64.
        """
        arr = as_float_values(train, "train", "(T,) or (..., F)")
        if arr.ndim == 0:
            raise ValueError("train must be an array of shape (T,) or (..., F), got a scalar")
        values = arr.reshape(-1, 1) if arr.ndim == 1 else arr.reshape(-1, arr.shape[-1])
        if values.shape[0] == 0 or values.shape[1] == 0:
            raise ValueError(f"train must hold at least one value per variable, "
                             f"got shape {arr.shape}")
        self._fit_stats(values.astype(np.float64, copy=False))
        self.n_features_ = values.shape[1]
        return self

    def transform(self, x, *, columns=None) -> np.ndarray:
        """Scale `x` with the fitted statistics.

        Parameters
        ----------
        x : array_like, shape (T,) or (..., k)
            Data whose last axis holds the k fitted variables (k = F, or ``len(columns)``).
            A 1-D array is one variable.
        columns : int or sequence of int, optional
            The fitted variables the last axis of `x` holds, in order. Default: all F.

        Returns
        -------
        ndarray
            Same shape as `x`; float32 if `x` is float32, else float64.

        Raises
        ------
        RuntimeError
            If the scaler is not fitted.
        TypeError
            If `x` is not numeric or `columns` not ints.
        ValueError
            If the last axis of `x` does not match the variables, `x` holds NaN/inf, or a
            scaled value overflows the output dtype.
        """
        arr, center, scale, shift = self._prepare(x, columns)
        with np.errstate(over="ignore", invalid="ignore"):   # checked below
            out = ((arr.astype(np.float64) - center) / scale + shift).astype(arr.dtype,
                                                                              copy=False)
        return _check_finite_result(out, arr, "x", "scaling")

    def inverse_transform(self, z, *, columns=None) -> np.ndarray:
        """Map scaled values back to the original units (e.g. a model's predictions).

        Parameters
        ----------
        z : array_like, shape (T,) or (..., k)
            Scaled data; as `x` in `transform`.
        columns : int or sequence of int, optional
            The fitted variables the last axis of `z` holds, e.g. the ``target_columns``
            the windows were made with. Default: all F.

        Returns
        -------
        ndarray
            Same shape as `z`; float32 if `z` is float32, else float64.

        Raises
        ------
        RuntimeError, TypeError, ValueError
            As `transform`.
        """
        arr, center, scale, shift = self._prepare(z, columns, name="z")
        with np.errstate(over="ignore", invalid="ignore"):   # checked below
            out = ((arr.astype(np.float64) - shift) * scale + center).astype(arr.dtype,
                                                                              copy=False)
        return _check_finite_result(out, arr, "z", "unscaling")

    def fit_transform(self, train) -> np.ndarray:
        """``fit(train)`` then ``transform(train)``: use on the training part only.

        Parameters
        ----------
        train : array_like, shape (T,) or (..., F)
            The training part.

        Returns
        -------
        ndarray
            The scaled training data, same shape as `train`.
        """
        return self.fit(train).transform(train)

    def get_state(self) -> dict:
        """The fitted scaler as a JSON-ready dict (plain str, int, float and lists).

        Returns
        -------
        dict
            ``{"class": <name>, "n_features": F, ...statistics}``; `from_state` rebuilds
            the scaler from it.

        Raises
        ------
        RuntimeError
            If the scaler is not fitted.
        """
        self._check_fitted()
        return {"class": type(self).__name__, "n_features": int(self.n_features_),
                **self._state_stats()}

    @classmethod
    def from_state(cls, state: dict):
        """Rebuild a fitted scaler from `get_state()`'s dict.

        Parameters
        ----------
        state : dict
            As returned by ``get_state()`` (e.g. after a round trip through JSON).

        Returns
        -------
        scaler
            A fitted instance of this class.

        Raises
        ------
        TypeError
            If `state` is not a dict or a field has the wrong type.
        ValueError
            If `state` is of another scaler class, misses a field, or holds inconsistent
            statistics.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from get_state(), got {type(state).__name__}")
        if state.get("class") != cls.__name__:
            raise ValueError(f"state must describe a {cls.__name__} (state['class'] == "
                             f"{cls.__name__!r}), got class {state.get('class')!r}")
        n = state.get("n_features")
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"state['n_features'] must be an int >= 1, got {n!r}")
        scaler = cls.__new__(cls)
        _Scaler.__init__(scaler)
        scaler._load_stats(state, int(n))
        scaler.n_features_ = int(n)
        return scaler

    # -- helpers ---------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.n_features_ is None:
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: "
                               "call fit(train) first")

    def _prepare(self, x, columns, name: str = "x"):
        self._check_fitted()
        idx = check_columns(columns, self.n_features_, "columns")
        k = self.n_features_ if idx is None else len(idx)
        arr = as_float_values(x, name, f"(..., {k})")
        if arr.ndim == 0:
            raise ValueError(f"{name} must be an array of shape (..., {k}), got a scalar")
        if arr.ndim == 1 and k != 1:
            raise ValueError(
                f"{name} is 1-D (one variable) but {k} variables are expected: "
                f"pass an array of shape (..., {k})"
            )
        if arr.ndim > 1 and arr.shape[-1] != k:
            raise ValueError(
                f"{name} must have the {k} scaled variable(s) on its last axis, "
                f"got shape {arr.shape}"
                + ("" if idx is not None else "; pass columns= if it holds only some of them")
            )
        sel = slice(None) if idx is None else idx
        return arr, self._center[sel], self._scale[sel], self._shift[sel]

    @staticmethod
    def _stat_list(state: dict, key: str, n: int) -> np.ndarray:
        if key not in state:
            raise ValueError(f"state is missing the field {key!r}")
        try:
            arr = np.asarray(state[key], dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"state[{key!r}] must be a list of {n} numbers, "
                            f"got {state[key]!r}") from None
        if arr.shape != (n,):
            raise ValueError(f"state[{key!r}] must be a list of n_features = {n} numbers, "
                             f"got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"state[{key!r}] must hold finite numbers, got {arr.tolist()}")
        return arr

    def __repr__(self) -> str:
        fitted = "unfitted" if self.n_features_ is None else f"n_features={self.n_features_}"
        return f"{type(self).__name__}({fitted})"


def _check_finite_result(out: np.ndarray, arr: np.ndarray, name: str, what: str) -> np.ndarray:
    """`out`, or a ValueError naming the first value of `arr` whose result overflowed."""
    bad = ~np.isfinite(out)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        where_txt = where[0] if len(where) == 1 else where
        raise ValueError(f"{name} is too large for the fitted statistics: {what} "
                         f"{name}[{where_txt}] = {arr[where]:g} overflows {out.dtype} at index "
                         f"{where_txt}; rescale the data" + (", or use float64"
                                                             if out.dtype == np.float32 else ""))
    return out


def _mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and population std of finite (n_rows, F) values, finite as well.

    numpy's sum overflows past ~1.8e308 and its sum of squares past |x - mean| ~ 1e154; a
    column where that happens is recomputed on its values divided by a power of two near
    its largest magnitude: exact (bar values 1e308 times smaller than that magnitude), so
    the numbers are those numpy would give with a wider exponent.
    """
    with np.errstate(over="ignore", invalid="ignore"):   # recomputed below
        mean = values.mean(axis=0)
        std = values.std(axis=0)
    bad = ~(np.isfinite(mean) & np.isfinite(std))
    if bad.any():
        # 2 ** (e - 1) for a peak in [2 ** (e - 1), 2 ** e): the scaled values lie in (-2, 2).
        step = np.ldexp(1.0, np.frexp(np.abs(values[:, bad]).max(axis=0))[1] - 1)
        scaled = values[:, bad] / step
        mean[bad] = scaled.mean(axis=0) * step
        std[bad] = scaled.std(axis=0) * step
    return mean, std


class StandardScaler(_Scaler):
    """Per-variable standardization: ``z = (x - mean) / std``.

    Statistics come from `fit` on the training part only; ``std`` is the population
    standard deviation (ddof = 0). A constant training column gets ``std = 1``, so it
    maps to 0 and back exactly; so does a column whose standard deviation underflows to 0
    (values within ~1e-160 of each other), which then keeps its tiny spread.

    Attributes
    ----------
    mean_ : ndarray, shape (F,)
        Per-variable training mean.
    scale_ : ndarray, shape (F,)
        Per-variable divisor: the training standard deviation, 1 for constant columns
        (and those whose standard deviation underflows to 0).
    n_features_ : int or None
        F, or None before `fit`.

    Examples
    --------
    >>> import numpy as np
    >>> from lstm_native.data import StandardScaler, chronological_split
    >>> train, val, test = chronological_split(np.arange(100.0), 0.7, 0.15)
    >>> scaler = StandardScaler().fit(train)            # training part only
    >>> scaler.mean_, scaler.scale_.round(4)
    (array([34.5]), array([20.2052]))
    >>> val_z = scaler.transform(val)                   # train statistics
    >>> val_z[:3].round(4)
    array([1.757 , 1.8065, 1.856 ])
    >>> bool(np.allclose(scaler.inverse_transform(val_z), val))
    True
    """

    def _fit_stats(self, values):
        mean, std = _mean_std(values)
        constant = values.max(axis=0) == values.min(axis=0)
        mean = np.where(constant, values[0], mean)   # exact: a constant maps to exactly 0
        # A spread so small that its std underflows to 0 (values ~1e-180) has nothing to
        # divide by either: a divisor of 1, as for a constant column.
        self._set(mean, np.where(constant | (std == 0), 1.0, std))

    def _set(self, mean, scale):
        self.mean_ = mean
        self.scale_ = scale
        self._center, self._scale, self._shift = mean, scale, np.zeros_like(mean)

    def _state_stats(self):
        return {"mean": self.mean_.tolist(), "scale": self.scale_.tolist()}

    def _load_stats(self, state, n):
        mean = self._stat_list(state, "mean", n)
        scale = self._stat_list(state, "scale", n)
        if np.any(scale <= 0):
            raise ValueError(f"state['scale'] must hold positive numbers, got {scale.tolist()}")
        self._set(mean, scale)


class MinMaxScaler(_Scaler):
    """Per-variable min-max scaling of the training range onto `feature_range`.

    ``z = lo + (x - data_min) * (hi - lo) / (data_max - data_min)``, with the training
    minimum and maximum from `fit` (training part only). Values outside the training
    range map outside `feature_range` (no clipping). A constant training column maps to
    ``lo``.

    Parameters
    ----------
    feature_range : tuple of two floats, default (0.0, 1.0)
        ``(lo, hi)`` with lo < hi.

    Attributes
    ----------
    data_min_, data_max_ : ndarray, shape (F,)
        Per-variable training minimum and maximum.
    feature_range : tuple of float
        ``(lo, hi)``.
    n_features_ : int or None
        F, or None before `fit`.

    Raises
    ------
    TypeError
        If `feature_range` is not a pair of real numbers.
    ValueError
        If it is not finite with lo < hi.

    Examples
    --------
    >>> import numpy as np
    >>> from lstm_native.data import MinMaxScaler
    >>> scaler = MinMaxScaler(feature_range=(-1, 1)).fit(np.array([2.0, 4.0, 6.0]))
    >>> scaler.transform(np.array([2.0, 5.0, 8.0]))    # no clipping past the range
    array([-1. ,  0.5,  2. ])
    >>> scaler.inverse_transform(np.array([0.0]))
    array([4.])
    """

    def __init__(self, feature_range=(0.0, 1.0)) -> None:
        super().__init__()
        self.feature_range = self._check_range(feature_range, "feature_range")

    @staticmethod
    def _check_range(feature_range, name):
        try:
            lo, hi = feature_range
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a pair (lo, hi) of floats, "
                            f"got {feature_range!r}") from None
        for v in (lo, hi):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
                raise TypeError(f"{name} must be a pair (lo, hi) of floats, "
                                f"got {feature_range!r}")
        lo, hi = float(lo), float(hi)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"{name} must be finite with lo < hi, got {(lo, hi)}")
        return lo, hi

    def _fit_stats(self, values):
        data_min, data_max = values.min(axis=0), values.max(axis=0)
        with np.errstate(over="ignore"):   # checked next
            too_wide = ~np.isfinite(data_max - data_min)
        if too_wide.any():
            i = int(np.argmax(too_wide))
            raise ValueError(f"train's range (max - min) overflows float64 for variable {i}: "
                             f"{data_min[i]:g} .. {data_max[i]:g}; rescale the data")
        self._set(data_min, data_max)

    def _set(self, data_min, data_max):
        lo, hi = self.feature_range
        self.data_min_, self.data_max_ = data_min, data_max
        data_range = data_max - data_min
        data_range = np.where(data_range == 0, hi - lo, data_range)   # constant -> lo
        self._center = data_min
        self._scale = data_range / (hi - lo)
        self._shift = np.full_like(data_min, lo)

    def _state_stats(self):
        return {"feature_range": list(self.feature_range),
                "data_min": self.data_min_.tolist(), "data_max": self.data_max_.tolist()}

    def _load_stats(self, state, n):
        if "feature_range" not in state:
            raise ValueError("state is missing the field 'feature_range'")
        self.feature_range = self._check_range(state["feature_range"],
                                               "state['feature_range']")
        data_min = self._stat_list(state, "data_min", n)
        data_max = self._stat_list(state, "data_max", n)
        if np.any(data_max < data_min):
            raise ValueError("state['data_max'] must be >= state['data_min'] for every "
                             f"variable, got {data_min.tolist()} and {data_max.tolist()}")
        self._set(data_min, data_max)


_SCALERS = {cls.__name__: cls for cls in (StandardScaler, MinMaxScaler)}


def scaler_from_state(state: dict):
    """Rebuild whichever scaler `state` describes (its ``"class"`` field).

    Parameters
    ----------
    state : dict
        From ``StandardScaler.get_state()`` or ``MinMaxScaler.get_state()``.

    Returns
    -------
    StandardScaler or MinMaxScaler
        The fitted scaler.

    Raises
    ------
    TypeError
        If `state` is not a dict.
    ValueError
        If ``state["class"]`` names no known scaler, or as the class's ``from_state``.

    Examples
    --------
    >>> import json
    >>> import numpy as np
    >>> from lstm_native.data import MinMaxScaler, scaler_from_state
    >>> state = MinMaxScaler().fit(np.array([0.0, 10.0])).get_state()
    >>> scaler = scaler_from_state(json.loads(json.dumps(state)))    # JSON-ready
    >>> type(scaler).__name__, scaler.transform(np.array([5.0]))
    ('MinMaxScaler', array([0.5]))
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict from get_state(), got {type(state).__name__}")
    cls = _SCALERS.get(state.get("class"))
    if cls is None:
        raise ValueError(f"state['class'] must be one of {sorted(_SCALERS)}, "
                         f"got {state.get('class')!r}")
    return cls.from_state(state)
