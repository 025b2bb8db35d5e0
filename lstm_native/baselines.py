"""Classical forecasting baselines: naive, seasonal naive, ETS and SARIMA.

Each baseline is scored the way `lstm_native.forecasting.Forecaster` scores its model:
the parameters are fitted on the part of a series before its test span, ``y[:n_fit]``
(`Baseline.fit`); a forecast from origin ``o`` sees ``y[:o + 1]`` and predicts
``y[o + 1 : o + 1 + horizon]`` (`Baseline.forecast`). Over the test span the models' state
follows each new observation with the parameters fixed: nothing is refitted.

- `Naive`: the last value, ``y[o]``.
- `SeasonalNaive`: the value one season back, ``y[o + k - m * ceil(k / m)]`` for step k.
- `ETS`: exponential smoothing (statsmodels' ``ETSModel``), its components chosen by AICc.
- `SARIMA`: a seasonal ARIMA (statsmodels' ``SARIMAX``), its differences by tests and its
  orders and scale (log or not) by AIC.

`baselines` gives the standard set for a season, `season_of` the season of a calendar.
A fitted baseline's `Baseline.get_state` is JSON, from which `baseline_from_state` rebuilds
it, checked, with the same parameters and forecasts (no refit): a checkpoint keeps them.
This module needs numpy only; statsmodels is imported when an ETS or SARIMA is fitted,
or forecasts, or when `baselines` looks for it.

Examples
--------
>>> import numpy as np
>>> from lstm_native.baselines import Naive, SeasonalNaive
>>> y = np.arange(1.0, 31.0)                        # 1, 2, ..., 30
>>> SeasonalNaive(12).fit(y[:24]).forecast(y, [23, 24], horizon=2)
array([[13., 14.],
       [14., 15.]])
>>> Naive().fit(y[:24]).forecast(y, [23, 24], horizon=2)
array([[24., 24.],
       [25., 25.]])
"""
from __future__ import annotations

import contextlib
import importlib
import itertools
import math
import reprlib
import time
import warnings
from typing import ClassVar

import numpy as np

from .data._checks import as_float_values, check_int

__all__ = ["ETS", "LONGEST_SEASON", "MAX_SEASON", "SARIMA", "Baseline", "Naive",
           "SeasonalNaive", "baseline_from_state", "baselines", "season_of"]

#: The longest season a baseline takes (a year of minutes is 525,600 steps): it bounds
#: what a damaged or crafted state (`baseline_from_state`) can declare.
LONGEST_SEASON = 1 << 20

#: The longest season ETS and SARIMA model as such; longer ones (weekly data's 52) are
#: STL's seasonal component (ETS) or Fourier terms (SARIMA), as Hyndman's forecast
#: package advises: a state per season makes the fits slow and their many initial states
#: poorly estimated.
MAX_SEASON = 24

#: The seasonal strength (Hyndman's F_s, from STL) above which SARIMA differences once
#: by the season (forecast::nsdiffs's threshold).
SEASONAL_STRENGTH = 0.64

#: SARIMA's orders: p and q in 0..2, P and Q in 0..1; with Fourier terms, their number
#: of sine-cosine pairs K.
ARMA_ORDERS = range(3)
SEASONAL_ORDERS = range(2)
FOURIER_PAIRS = (1, 2, 3, 4, 5)

_INSTALL = "pip install statsmodels (or lstm_native[forecasting])"


# -- what every baseline does ----------------------------------------------------------

class Baseline:
    """A forecasting method whose parameters come from the span before the test span.

    Subclasses give `name`, ``_fit(y_fit)``, ``_forecast(y, origins, horizon)`` and
    ``_first_origin()``; this class checks the arguments of both and times the fit. For
    their state (`get_state`), they give ``_STATE_KEYS``, ``_state()`` and
    ``_from_state(state, n_fit)``.

    Attributes
    ----------
    model_ : str
        The fitted model in words (`describe`).
    n_fit_ : int
        The values it was fitted on.
    seconds_ : float
        The time the fit took (the model selection included).
    """

    #: The baseline's name in tables: "naive", "seasonal naive", "ETS", "SARIMA".
    name: ClassVar[str]

    def fit(self, y_fit) -> Baseline:
        """Fit the parameters on `y_fit`, the series before its test span.

        Parameters
        ----------
        y_fit : array_like of shape (n_fit,)
            Finite values.

        Returns
        -------
        self
        """
        y_fit = _check_series(y_fit, "y_fit")
        if len(y_fit) < self._FEWEST_FIT:
            raise ValueError(f"y_fit has {len(y_fit)} values; {self.name} needs at least "
                             f"{self._FEWEST_FIT}")
        started = time.perf_counter()
        self._fit(y_fit)
        self.seconds_ = time.perf_counter() - started
        self.n_fit_ = len(y_fit)
        return self

    def forecast(self, y, origins, horizon: int = 1) -> np.ndarray:
        """Forecasts of the `horizon` values after each origin, from the fitted parameters.

        Parameters
        ----------
        y : array_like of shape (T,)
            The series; normally the one fitted, ``y[:n_fit]``, followed by the values
            after it. A forecast from origin ``o`` reads ``y[:o + 1]`` only.
        origins : array_like of int
            The last observed index of each forecast, in ``first..T - 1`` (``first``
            depends on the model: a season back for the seasonal ones, the differences
            for SARIMA; the error says it).
        horizon : int, default 1
            Steps forecast from each origin; they may run past the end of `y`.

        Returns
        -------
        ndarray of shape (len(origins), horizon)
            Row i: the forecasts of ``y[origins[i] + 1 : origins[i] + 1 + horizon]``.
        """
        self._check_fitted()
        y = _check_series(y, "y")
        horizon = check_int(horizon, "horizon")
        origins = _check_origins(origins, len(y), self._first_origin(), self.model_)
        if len(origins) == 0:
            return np.empty((0, horizon))
        return self._forecast(y, origins, horizon)

    def describe(self) -> str:
        """The fitted model in words, e.g. "ETS(M,Ad,M)" or "SARIMA(0,1,1)(0,1,1)12 on log"."""
        self._check_fitted()
        return self.model_

    def get_state(self) -> dict:
        """The fitted baseline as JSON values, from which `baseline_from_state` rebuilds it.

        Returns
        -------
        dict
            Of str, int, finite float, bool, None, lists and dicts only, so that
            ``json.dumps(state, allow_nan=False)`` writes it and its floats read back
            exactly. Every state has ``"class"`` (the class's name), ``"n_fit"`` and
            ``"seconds"`` (`n_fit_`, `seconds_`); the seasonal ones ``"season"``; ETS and
            SARIMA also ``"spec"`` (their `spec_` as a dict of named fields, SARIMA's
            without its season) and ``"params"`` (`params_` by their statsmodels names,
            in statsmodels' order), and ETS ``"stl_seasonal"`` (STL's seasonal component
            of `y_fit`, a list of `n_fit` floats, or None without STL).

        Raises
        ------
        RuntimeError
            The baseline is not fitted.

        Notes
        -----
        The fit's diagnostics, `criteria_` and SARIMA's `strength_`, are not kept: a
        rebuilt baseline forecasts and describes itself, but does not have them.

        Examples
        --------
        >>> import json
        >>> from lstm_native.baselines import SeasonalNaive, baseline_from_state
        >>> y = np.arange(1.0, 31.0)
        >>> state = SeasonalNaive(12).fit(y[:24]).get_state()
        >>> state["class"], state["season"], state["n_fit"]
        ('SeasonalNaive', 12, 24)
        >>> rebuilt = baseline_from_state(json.loads(json.dumps(state)))
        >>> rebuilt.forecast(y, [23, 24], horizon=2)
        array([[13., 14.],
               [14., 15.]])
        """
        self._check_fitted()
        return {"class": type(self).__name__, **self._state(), "n_fit": int(self.n_fit_),
                "seconds": float(self.seconds_)}

    def __repr__(self) -> str:
        fitted = f", {self.model_}" if hasattr(self, "model_") else ""
        return f"{type(self).__name__}({self._settings()}{fitted})"

    def _settings(self) -> str:
        return ""

    def first_origin(self) -> int:
        """The earliest origin the fitted baseline forecasts from (the values it needs
        before its first forecast, less one): 0 for the naive one."""
        self._check_fitted()
        return self._first_origin()

    def _first_origin(self) -> int:
        return 0

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted: call fit first")

    #: The keys of the state besides "class", "n_fit" and "seconds".
    _STATE_KEYS: ClassVar[tuple] = ()
    #: The fewest values the fit takes (the seasonal naive's season is checked apart).
    _FEWEST_FIT: ClassVar[int] = 1

    def _state(self) -> dict:
        """The state's keys of this class (`_STATE_KEYS`)."""
        return {}

    @classmethod
    def _from_state(cls, state: _State, n_fit: int) -> Baseline:
        """The fitted baseline of a state whose keys are checked, and of "n_fit"'s value
        (checked); it reads and checks the values of its class's keys. The caller sets
        `n_fit_` and `seconds_`."""
        raise NotImplementedError


def _check_series(y, name: str) -> np.ndarray:
    values = as_float_values(y, name, "(T,)")
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"{name} must be one series, 1-D (T,) with T >= 1, got shape "
                         f"{values.shape}")
    return np.ascontiguousarray(values, np.float64)


def _check_origins(origins, n: int, first: int, model: str) -> np.ndarray:
    a = np.asarray(origins)
    if a.ndim != 1 or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
        raise TypeError(f"origins must be a 1-D sequence of ints, got "
                        f"{a.dtype} of shape {a.shape}")
    a = a.astype(np.int64)
    if a.size and (a.min() < first or a.max() > n - 1):
        raise ValueError(f"origins must be in {first}..{n - 1} ({model} needs {first + 1} "
                         f"values up to an origin, and y has {n}), got {a.min()}..{a.max()}")
    return a


def _check_season(season) -> int:
    season = check_int(season, "season", 1)
    if season > LONGEST_SEASON:
        raise ValueError(f"season must be at most LONGEST_SEASON = {LONGEST_SEASON}, got "
                         f"{season}")
    return season


# -- reading a state -------------------------------------------------------------------

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 2, 60, 60, 6, 6

#: The most values a state's n_fit may declare: more than a series in memory holds.
_MOST_VALUES = 1 << 40


def _shown(value) -> str:
    """A value read from a state, for a message: cut short, and never too deep or too
    long to print (Python refuses to print an int of over 4300 digits)."""
    try:
        return _REPR.repr(value)
    except ValueError:
        return f"an int of {value.bit_length()} bits"


class _State:
    """A dict of a baseline's state whose keys are checked, and readers of its values
    that check them: the errors are ValueErrors naming the key by its path, e.g.
    ``state['spec']['order']``, and what was expected."""

    def __init__(self, state, keys, where: str = "state"):
        if not isinstance(state, dict):
            # A file's content, wrong in type or in value alike: a ValueError, as the
            # checkpoint's CheckpointError.
            raise ValueError(f"{where} must be a dict, got {_shown(state)}")  # noqa: TRY004
        missing = [key for key in keys if key not in state]
        extra = [key for key in state if key not in keys]
        if missing or extra:
            wrong = (("missing", missing), ("unknown", extra))
            raise ValueError(f"{where} must have the keys {list(keys)}: " + "; ".join(
                f"{what} {_shown(names)}" for what, names in wrong if names))
        self.state, self.where = state, where

    def path(self, key: str) -> str:
        return f"{self.where}[{key!r}]"

    def bad(self, key: str, expected: str, why: str = "") -> ValueError:
        return ValueError(f"{self.path(key)} must be {expected}{f' ({why})' if why else ''}, "
                          f"got {_shown(self.state[key])}")

    def int(self, key: str, low: int, high: int | None = None) -> int:
        value = self.state[key]
        expected = f"an int in {low}..{high}" if high is not None else f"an int >= {low}"
        if type(value) is not int or value < low or (high is not None and value > high):
            raise self.bad(key, expected)
        return value

    def number(self, key: str, low: float = -math.inf, high: float = math.inf) -> float:
        value = _finite(self.state[key])
        if value is None or not low <= value <= high:
            bounds = (f" in [{low}, {high}]" if math.isfinite(high) else
                      f" >= {low}" if math.isfinite(low) else "")
            raise self.bad(key, "a finite number" + bounds)
        return value

    def choice(self, key: str, choices: tuple, why: str = ""):
        """The value if it is one of `choices`, its type included (True is not 1)."""
        value = self.state[key]
        if not any(type(value) is type(c) and value == c for c in choices):
            raise self.bad(key, "one of " + ", ".join(map(repr, choices)), why)
        return value

    def numbers(self, key: str, length: int) -> np.ndarray:
        """A list of `length` finite numbers, as float64."""
        values = self.state[key]
        if not isinstance(values, list) or len(values) != length:
            raise self.bad(key, f"a list of {length} finite numbers")
        floats = [_finite(v) for v in values]
        if None in floats:
            i = floats.index(None)
            raise ValueError(f"{self.path(key)}[{i}] must be a finite number, got "
                             f"{_shown(values[i])}")
        return np.array(floats, dtype=np.float64)

    def ints(self, key: str, bounds: list, why: str = "") -> tuple:
        """A list of ints, the i-th in bounds[i] = (low, high)."""
        values = self.state[key]
        expected = "a list [" + ", ".join(f"{low}..{high}" for low, high in bounds) + "] of ints"
        if not isinstance(values, list) or len(values) != len(bounds) or not all(
                type(v) is int and low <= v <= high for v, (low, high) in zip(values, bounds)):
            raise self.bad(key, expected, why)
        return tuple(values)

    def dict(self, key: str, keys) -> _State:
        return _State(self.state[key], keys, self.path(key))


def _finite(value) -> float | None:
    """`value` as a finite float if it is a real number (not a bool) that is one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:   # an int beyond float's range
        return None
    return value if math.isfinite(value) else None


# -- the naive ones --------------------------------------------------------------------

class _Seasonal(Baseline):
    """A baseline of a season m (`season_of`), shown in its repr."""

    def __init__(self, season: int = 1):
        self.season = _check_season(season)

    def _settings(self) -> str:
        return f"season={self.season}"


class Naive(Baseline):
    """The last observed value, at every step: ``y[o]``."""

    name = "naive"

    def _fit(self, y_fit: np.ndarray) -> None:
        self.model_ = "naive"

    @classmethod
    def _from_state(cls, state: _State, n_fit: int) -> Naive:
        baseline = cls()
        baseline.model_ = "naive"
        return baseline

    def _forecast(self, y, origins, horizon):
        return np.repeat(y[origins][:, None], horizon, axis=1)


class SeasonalNaive(_Seasonal):
    """The value one season before each step: ``y[o + k - m * ceil(k / m)]`` at step k.

    Parameters
    ----------
    season : int
        The season m, in steps (`season_of`); 1 is the naive forecast.
    """

    name = "seasonal naive"

    def __init__(self, season: int):   # no default: season 1 is the naive forecast
        super().__init__(season)

    def _fit(self, y_fit: np.ndarray) -> None:
        if len(y_fit) < self.season:
            raise ValueError(f"y_fit has {len(y_fit)} values; the seasonal naive forecast "
                             f"needs one full season (season={self.season})")
        self.model_ = f"seasonal naive, season {self.season}"

    _STATE_KEYS = ("season",)

    def _state(self) -> dict:
        return {"season": self.season}

    @classmethod
    def _from_state(cls, state: _State, n_fit: int) -> SeasonalNaive:
        # As the fit: one full season of y_fit.
        baseline = cls(state.int("season", 1, min(n_fit, LONGEST_SEASON)))
        baseline.model_ = f"seasonal naive, season {baseline.season}"
        return baseline

    def _first_origin(self) -> int:
        return self.season - 1

    def _forecast(self, y, origins, horizon):
        m, k = self.season, np.arange(1, horizon + 1)
        return y[origins[:, None] + k - m * ((k + m - 1) // m)]


# -- statsmodels -----------------------------------------------------------------------

def _import_statsmodels(what: str) -> None:
    """Import the parts of statsmodels this module uses, or raise an ImportError that
    says who needs them.

    Before `_statsmodels_calls`, not inside it: statsmodels sets warning filters of its
    own on import, which would override the silence there, and be lost when it ends;
    and the BLAS it loads must be there for the cap on its threads to find it.
    """
    try:
        for name in ("statsmodels", "statsmodels.tsa.exponential_smoothing.ets",
                     "statsmodels.tsa.seasonal", "statsmodels.tsa.statespace.sarimax",
                     "statsmodels.tsa.stattools"):
            importlib.import_module(name)
    except ImportError as e:
        raise ImportError(f"{what} needs statsmodels, which is not installed: "
                          f"{_INSTALL}") from e


@contextlib.contextmanager
def _statsmodels_calls():
    """Quiet, single-threaded BLAS while statsmodels fits and filters.

    The candidates' warnings (no convergence, non-stationary starting values, overflow in
    a multiplicative recursion) are noise here: each fit's outcome is read from its
    results instead. Its Kalman filters call BLAS on matrices of a few dozen rows, where
    OpenBLAS's threads only wait for each other: on two busy cores a SARIMA fit took 15
    times as long with them. The BLAS is scipy's, loaded with statsmodels, so the limit
    is set here and not once for the package (`_import_statsmodels` comes first).
    """
    from threadpoolctl import threadpool_limits
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")
        yield


def _stl(x: np.ndarray, season: int):
    """(seasonal strength F_s, seasonal component) of STL(x) with period `season`;
    F_s = max(0, 1 - var(remainder) / var(seasonal + remainder)) (Wang, Smith and
    Hyndman 2006)."""
    from statsmodels.tsa.seasonal import STL
    fit = STL(x, period=season).fit()
    seasonal, remainder = np.asarray(fit.seasonal), np.asarray(fit.resid)
    spread = np.var(seasonal + remainder)
    strength = max(0.0, 1.0 - np.var(remainder) / spread) if spread > 0 else 0.0
    return strength, seasonal


def _continued(seasonal: np.ndarray, season: int, n: int) -> np.ndarray:
    """The seasonal component of a fit for the first `n` steps: itself over its span, its
    last season repeated after it."""
    n_fit = len(seasonal)
    t = np.arange(n)
    last = n_fit - season + (t - (n_fit - season)) % season
    return np.where(t < n_fit, seasonal[np.minimum(t, n_fit - 1)], seasonal[last])


def _selected(fits: dict, what: str, y_fit_length: int):
    """The key of the smallest criterion among the fits that converged, else among all
    whose criterion is finite; fits are {key: (criterion, converged, ...)}."""
    finite = {key: fit for key, fit in fits.items() if math.isfinite(fit[0])}
    if not finite:
        raise ValueError(f"no {what} model could be fitted to y_fit ({y_fit_length} "
                         "values): it is too short or too irregular")
    converged = {key: fit for key, fit in finite.items() if fit[1]} or finite
    return min(converged, key=lambda key: converged[key][0])


# -- ETS -------------------------------------------------------------------------------

class ETS(_Seasonal):
    """Exponential smoothing (statsmodels' ``ETSModel``), its components chosen by AICc.

    The candidates: error additive or multiplicative, trend none, additive or additive
    damped, season none, additive or multiplicative. The multiplicative ones only for a
    positive series, and additive error with multiplicative season is left out (its
    forecast variance is infinite: forecast::ets's ``restrict``). The season enters when
    `season` > 1 and `y_fit` holds two full seasons; else the candidates have none. The
    initial states are estimated with the smoothing parameters, as forecast::ets does:
    taking them from the heuristic of Hyndman et al. (2008, sec. 2.6.1) is ten times
    faster (0.07 s against 0.9 s for the grid on the airline series), but scored worse
    on the test spans of four of the six series tried (better on one).

    A candidate whose optimizer does not converge is left out unless none converges;
    one that fails or whose AICc is not finite (statsmodels' AICc is infinite for
    as many parameters as `y_fit` has values less one) is always left out.

    A season longer than `MAX_SEASON` is taken out first: the candidates, without
    season, model ``y - s`` where s is STL's seasonal component of `y_fit`, continued
    after it by repeating its last season, and the forecasts add s back ("STL + ETS").

    Parameters
    ----------
    season : int, default 1
        The season in steps (`season_of`).

    Attributes
    ----------
    spec_ : tuple
        (error, trend, damped, seasonal) as ``ETSModel``'s arguments.
    params_ : ndarray
        The smoothing parameters (alpha, beta, gamma, phi, those the model has) and the
        initial states, as ``ETSModel.fit`` gives them.
    param_names_ : list of str
        Their names in ``ETSModel``.
    criteria_ : dict
        The AICc of each candidate fitted, by its name "ETS(E,T,S)".
    """

    name = "ETS"
    _FEWEST_FIT = 10        # statsmodels starts its states from the first ten

    def _fit(self, y_fit: np.ndarray) -> None:
        _import_statsmodels("ETS")
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel
        n, m = len(y_fit), self.season
        seasonal = m > 1 and n >= 2 * m
        self._stl = None
        x = y_fit
        with _statsmodels_calls():
            if seasonal and m > MAX_SEASON:
                self._stl = _stl(y_fit, m)[1]
                x = y_fit - self._stl
            positive = bool(np.all(x > 0))
            fits = {}
            for spec in _ets_specs(positive, seasonal and m <= MAX_SEASON):
                try:
                    result = ETSModel(x, **_ets_args(spec, m)).fit(disp=False)
                except (ValueError, np.linalg.LinAlgError):
                    continue
                fits[spec] = (float(result.aicc), bool(result.mle_retvals["converged"]),
                              result.params, result.model.param_names)
        self.spec_ = _selected(fits, "ETS", n)
        self.params_ = np.array(fits[self.spec_][2], dtype=np.float64)
        self.param_names_ = list(fits[self.spec_][3])
        self.criteria_ = {_ets_name(spec): fit[0] for spec, fit in fits.items()}
        self.model_ = self._described()

    def _described(self) -> str:
        name = _ets_name(self.spec_)
        return f"STL({self.season}) + {name}" if self._stl is not None else name

    def _first_origin(self) -> int:
        # The seasonal state of a step a season back must have been filtered.
        return self.season - 1 if self.spec_[3] else 0

    _STATE_KEYS = ("season", "spec", "params", "stl_seasonal")

    def _state(self) -> dict:
        error, trend, damped, seasonal = self.spec_
        return {"season": self.season,
                "spec": {"error": error, "trend": trend, "damped": bool(damped),
                         "seasonal": seasonal},
                "params": dict(zip(self.param_names_, self.params_.tolist())),
                "stl_seasonal": None if self._stl is None else self._stl.tolist()}

    @classmethod
    def _from_state(cls, state: _State, n_fit: int) -> ETS:
        baseline = cls(state.int("season", 1, LONGEST_SEASON))
        m = baseline.season
        # What the fit chooses from, for this season and n_fit.
        seasons = m > 1 and n_fit >= 2 * m
        stl, seasonal = seasons and m > MAX_SEASON, seasons and m <= MAX_SEASON
        spec_state = state.dict("spec", ("error", "trend", "damped", "seasonal"))
        spec = (spec_state.choice("error", ("add", "mul")),
                spec_state.choice("trend", (None, "add")),
                spec_state.choice("damped", (False, True)),
                spec_state.choice("seasonal", (None, "add", "mul") if seasonal else (None,),
                                  "" if seasonal else _no_seasonal_state(m, n_fit)))
        if spec not in _ets_specs(True, seasonal):
            raise ValueError(f"{state.path('spec')} must be one of ETS's candidates (a damped "
                             "trend needs a trend, a multiplicative season a multiplicative "
                             f"error), got {_ets_name(spec)}")
        names = _ets_param_names(spec, m)
        params = state.dict("params", names)
        # The bounds statsmodels keeps them in: smoothing and damping are fractions.
        baseline.params_ = np.array([params.number(name, 0.0, 1.0)
                                     if name.startswith(("smoothing", "damping"))
                                     else params.number(name) for name in names])
        baseline.spec_, baseline.param_names_ = spec, names
        baseline._stl = (state.numbers("stl_seasonal", n_fit) if stl else
                         state.choice("stl_seasonal", (None,), "STL only for a season over "
                                      f"MAX_SEASON = {MAX_SEASON} with two seasons of n_fit"))
        baseline.model_ = baseline._described()
        return baseline

    def _forecast(self, y, origins, horizon):
        _import_statsmodels("ETS")   # a baseline from a state may not have met it yet
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel
        error, trend, damped, seasonal = self.spec_
        m = self.season
        k = np.arange(1, horizon + 1)
        season = (_continued(self._stl, m, len(y) + horizon) if self._stl is not None
                  else np.zeros(len(y) + horizon))
        x = y - season[:len(y)]
        if "mul" in (error, seasonal) and not np.all(x > 0):
            raise ValueError(f"y has values <= 0, which the multiplicative "
                             f"{_ets_name(self.spec_)} fitted on y_fit cannot follow")
        model = ETSModel(x, **_ets_args(self.spec_, m))
        with _statsmodels_calls():
            # The raw (fitted values, states): the results object would also estimate
            # the parameters' covariance by a numerical Hessian, hundreds of smoothing
            # passes that a forecast does not use.
            states = np.asarray(model.smooth(self.params_, return_raw=True)[1],
                                dtype=np.float64)
        level = states[origins, 0][:, None]
        if trend:
            phi = self.params_[list(model.param_names).index("damping_trend")] if damped else 1.0
            steps = np.cumsum(phi ** k)   # phi + ... + phi^k: the damped trend's reach
            level = level + steps * states[origins, 1][:, None]
        if seasonal:
            s = states[origins[:, None] + k - m * ((k + m - 1) // m), -1]
            level = level * s if seasonal == "mul" else level + s
        return level + season[origins[:, None] + k]


def _ets_specs(positive: bool, seasonal: bool) -> list:
    errors = ("add", "mul") if positive else ("add",)
    seasons = (None, *errors) if seasonal else (None,)
    trends = ((None, False), ("add", False), ("add", True))
    return [(error, trend, damped, season)
            for error, (trend, damped), season in itertools.product(errors, trends, seasons)
            if not (error == "add" and season == "mul")]


def _ets_args(spec, season: int) -> dict:
    error, trend, damped, seasonal = spec
    return {"error": error, "trend": trend, "damped_trend": damped, "seasonal": seasonal,
            "seasonal_periods": season if seasonal else None,
            "initialization_method": "estimated"}


def _ets_param_names(spec, season: int) -> list:
    """``ETSModel``'s names of the parameters of a spec, in its order."""
    _, trend, damped, seasonal = spec
    return (["smoothing_level"] + ["smoothing_trend"] * bool(trend)
            + ["smoothing_seasonal"] * bool(seasonal) + ["damping_trend"] * bool(damped)
            + ["initial_level"] + ["initial_trend"] * bool(trend)
            + [f"initial_seasonal.{i}" for i in range(season if seasonal else 0)])


def _no_seasonal_state(season: int, n_fit: int) -> str:
    """Why a fit of this season on n_fit values has no seasonal state."""
    if season == 1:
        return "no season"
    if n_fit < 2 * season:
        return f"n_fit = {n_fit} is less than two seasons of {season}"
    return f"the season {season} is over MAX_SEASON = {MAX_SEASON}"


def _ets_name(spec) -> str:
    error, trend, damped, seasonal = spec
    letter = {None: "N", "add": "A", "mul": "M"}
    return f"ETS({letter[error]},{letter[trend]}{'d' if damped else ''},{letter[seasonal]})"


# -- SARIMA ----------------------------------------------------------------------------

class SARIMA(_Seasonal):
    """A seasonal ARIMA (statsmodels' ``SARIMAX``): differences by tests, orders by AIC.

    With x the log of `y_fit` when it is positive, else `y_fit` itself, and the season
    m = `season` taken when `y_fit` holds two full seasons:

    1. D = 1 when the seasonal strength of STL(x) exceeds `SEASONAL_STRENGTH` (0.64, as
       forecast::nsdiffs), else 0.
    2. d in 0..2: the fewest differences of the seasonally differenced x that pass the
       KPSS test of level stationarity at 5%, with trunc(3 sqrt(n) / 13) lags (as
       forecast::ndiffs).
    3. The scale, the log or the levels (the log only for a positive series): the one
       on which the reference model ARIMA(1,d,1)(0,D,1)m (no seasonal MA without a
       season) has the smaller AIC of the levels, the log's corrected for the Jacobian:
       AIC_y = AIC_log + 2 sum(log y) over the observations it models.
    4. (p, q) in 0..2 x 0..2 and (P, Q) in 0..1 x 0..1 on that scale, by AIC.

    Each candidate is fitted by maximum likelihood on the differenced series
    (statsmodels' ``simple_differencing=True``, the variance concentrated out: four times
    faster), with a constant when d + D <= 1 (a mean, or a drift), as auto.arima does.
    The scale is chosen on one model because the grid on both scales takes three times
    as long (2.6 s against 0.9 s on the airline series, on two busy cores) for one
    choice.

    A fit that fails or whose AIC is not finite is left out; one whose optimizer stopped
    before it converged is kept (statsmodels' 50 iterations end near the optimum, and a
    short AIC only counts against it).

    A season longer than `MAX_SEASON` enters as K pairs of Fourier terms
    sin(2 pi k t / m), cos(2 pi k t / m), k = 1..K, regressors of a non-seasonal
    ARIMA(p, d, q) (d from the KPSS test of x less STL's seasonal component); K in
    `FOURIER_PAIRS` is chosen with the scale, on the reference ARIMA(1,d,1).

    Forecasts on the log are the exponential of the forecast mean: the median forecast,
    not the bias-adjusted mean.

    Parameters
    ----------
    season : int, default 1
        The season in steps (`season_of`).

    Attributes
    ----------
    spec_ : dict
        log (bool), order (p, d, q), seasonal_order (P, D, Q, m), trend ("c" or None),
        season (m), fourier (K; 0 without Fourier terms).
    params_ : ndarray
        The parameters as ``SARIMAX.fit`` gives them, with the variance concentrated out
        (but for a model without any other parameter).
    param_names_ : list of str
        Their names; the Fourier terms' are "fourier.x1", "fourier.x2", ...
    strength_ : float
        The seasonal strength of STL(x) (0 without season).
    criteria_ : dict
        The AIC on the levels of each candidate fitted, by its `describe` text.
    """

    name = "SARIMA"
    _FEWEST_FIT = 10

    def _fit(self, y_fit: np.ndarray) -> None:
        _import_statsmodels("SARIMA")
        n, m = len(y_fit), self.season
        positive = bool(np.all(y_fit > 0))
        x = np.log(y_fit) if positive else y_fit
        seasonal = m > 1 and n >= 2 * m
        fourier = seasonal and m > MAX_SEASON
        with _statsmodels_calls():
            self.strength_, component = _stl(x, m) if seasonal else (0.0, 0.0)
            D = int(seasonal and not fourier and self.strength_ > SEASONAL_STRENGTH)
            d = _ndiffs(x - component if fourier else _seasonal_difference(x, m, D))
            trend = "c" if d + D <= 1 else None
            # The reference: ARMA(1, 1), and a seasonal MA(1) for a seasonal ARMA.
            seasonal_arma = seasonal and not fourier
            period = m if seasonal_arma else 0
            reference = {"order": (1, d, 1), "seasonal_order": (0, D, int(seasonal_arma), period),
                         "trend": trend, "season": m, "fourier": 0}
            first = [{**reference, "log": log, "fourier": K}
                     for log, K in itertools.product((True, False) if positive else (False,),
                                                     FOURIER_PAIRS if fourier else (0,))]
            fits = {_sarima_name(spec): _fit_sarima(y_fit, spec) for spec in first}
            chosen = fits[_selected(fits, "SARIMA", n)][2]
            seasonal_orders = SEASONAL_ORDERS if seasonal_arma else (0,)
            grid = {}
            for p, q, P, Q in itertools.product(ARMA_ORDERS, ARMA_ORDERS, seasonal_orders,
                                                seasonal_orders):
                spec = {**chosen, "order": (p, d, q), "seasonal_order": (P, D, Q, period)}
                name = _sarima_name(spec)
                grid[name] = fits[name] if name in fits else _fit_sarima(y_fit, spec)
            fits.update(grid)
        best = _selected(grid, "SARIMA", n)
        _, _, self.spec_, self.params_, self.param_names_ = fits[best]
        self.criteria_ = {name: fit[0] for name, fit in fits.items()}
        self.model_ = best

    def _first_origin(self) -> int:
        # The differences need n0 = d + D m values before the origin's next step.
        return max(0, _lost(self.spec_) - 1)

    _STATE_KEYS = ("season", "spec", "params")

    def _state(self) -> dict:
        spec = self.spec_
        return {"season": self.season,
                "spec": {"log": bool(spec["log"]), "order": [int(v) for v in spec["order"]],
                         "seasonal_order": [int(v) for v in spec["seasonal_order"]],
                         "trend": spec["trend"], "fourier": int(spec["fourier"])},
                "params": dict(zip(self.param_names_, self.params_.tolist()))}

    @classmethod
    def _from_state(cls, state: _State, n_fit: int) -> SARIMA:
        baseline = cls(state.int("season", 1, LONGEST_SEASON))
        m = baseline.season
        # What the fit chooses from, for this season and n_fit.
        seasonal = m > 1 and n_fit >= 2 * m
        fourier, seasonal_arma = seasonal and m > MAX_SEASON, seasonal and m <= MAX_SEASON
        spec_state = state.dict("spec", ("log", "order", "seasonal_order", "trend", "fourier"))
        log = spec_state.choice("log", (False, True))
        arma = (0, max(ARMA_ORDERS))
        order = spec_state.ints("order", [arma, (0, 2), arma])
        if seasonal_arma:
            PQ = (0, max(SEASONAL_ORDERS))
            seasonal_order = spec_state.ints("seasonal_order", [PQ, (0, 1), PQ, (m, m)],
                                             "(P, D, Q, season)")
        else:
            seasonal_order = spec_state.ints(
                "seasonal_order", [(0, 0)] * 4,
                "Fourier terms for a season over MAX_SEASON" if fourier
                else _no_seasonal_state(m, n_fit))
        differences = order[1] + seasonal_order[1]
        trend = spec_state.choice("trend", ("c",) if differences <= 1 else (None,),
                                  f"a constant when d + D <= 1; d + D = {differences}")
        K = spec_state.choice("fourier", FOURIER_PAIRS if fourier else (0,),
                              "K" if fourier else "Fourier terms only for a season over "
                              f"MAX_SEASON = {MAX_SEASON} with two seasons of n_fit")
        spec = {"log": log, "order": order, "seasonal_order": seasonal_order, "trend": trend,
                "season": m, "fourier": K}
        names = _sarima_param_names(spec)
        params = state.dict("params", names)
        values = {name: params.number(name) for name in names}
        if "sigma2" in values and not values["sigma2"] > 0:
            raise params.bad("sigma2", "> 0", "a variance")
        # The fit keeps the autoregressions stationary: a state that is not would be
        # filtered from a meaningless start.
        for ar in ([values[f"ar.L{i}"] for i in range(1, order[0] + 1)],
                   [values[f"ar.S.L{m * i}"] for i in range(1, seasonal_order[0] + 1)]):
            if not _stationary(ar):
                raise ValueError(f"{state.path('params')} must have a stationary "
                                 f"autoregression, got coefficients {ar}")
        baseline.spec_, baseline.param_names_ = spec, names
        baseline.params_ = np.array(list(values.values()))
        baseline.model_ = _sarima_name(spec)
        return baseline

    def _forecast(self, y, origins, horizon):
        _import_statsmodels("SARIMA")   # a baseline from a state may not have met it yet
        from statsmodels.tsa.statespace.sarimax import SARIMAX
        spec, m = self.spec_, self.season
        if spec["log"] and not np.all(y > 0):
            raise ValueError(f"y has values <= 0, and {self.model_} was fitted on the log")
        x = np.log(y) if spec["log"] else y
        # Regression with ARIMA errors: u = x - X beta is the ARIMA, forecast by its own
        # filter and put back on x with the future X beta.
        regressors = np.array([name.startswith("fourier") for name in self.param_names_])
        beta = self.params_[regressors]
        K = spec["fourier"]
        u = x - _fourier(np.arange(len(x)), m, K) @ beta if K else x
        model = SARIMAX(u, **_sarimax_args(spec), simple_differencing=True,
                        concentrate_scale=_concentrated(spec))
        with _statsmodels_calls():
            result = model.filter(self.params_[~regressors])
        # The filter's one-step predictions a[o+1|o] of the state of the differenced
        # series, moved on by the transition matrix: the k-step forecasts of every origin
        # at once, from the state of one pass over y.
        n0 = _lost(spec)
        design, transition = model.ssm["design"], model.ssm["transition"]   # (1, k), (k, k)
        # The constant of trend "c" is the state's intercept, which statsmodels stores
        # once per step; it is the same at every step.
        intercept = np.asarray(model.ssm["state_intercept"]).reshape(len(transition), -1)[:, :1]
        state = np.asarray(result.predicted_state)[:, origins + 1 - n0]
        changes = np.empty((len(origins), horizon))
        for k in range(horizon):
            changes[:, k] = design @ state
            state = transition @ state + intercept
        # The differences undone: x[t] = w[t] - sum_j poly[j] x[t - j], poly being
        # (1 - B)^d (1 - B^m)^D = 1 + sum_j poly[j] B^j.
        poly = _difference_polynomial(spec["order"][1], m, spec["seasonal_order"][1])
        levels = np.empty((len(origins), n0 + horizon))
        levels[:, :n0] = u[origins[:, None] + np.arange(1 - n0, 1)]
        for k in range(horizon):
            t = n0 + k
            levels[:, t] = changes[:, k] - levels[:, t - n0:t][:, ::-1] @ poly[1:]
        forecasts = levels[:, n0:]
        if K:
            steps = origins[:, None] + np.arange(1, horizon + 1)
            forecasts = forecasts + _fourier(steps.ravel(), m, K).reshape(
                *steps.shape, -1) @ beta
        return np.exp(forecasts) if spec["log"] else forecasts


def _sarima_param_names(spec: dict) -> list:
    """``SARIMAX``'s names of the parameters of a spec, in its order, the regressors'
    as `_fit_sarima` names them."""
    p, _, q = spec["order"]
    P, _, Q, m = spec["seasonal_order"]
    return (["intercept"] * (spec["trend"] == "c")
            + [f"fourier.x{i}" for i in range(1, 2 * spec["fourier"] + 1)]
            + [f"ar.L{i}" for i in range(1, p + 1)] + [f"ma.L{i}" for i in range(1, q + 1)]
            + [f"ar.S.L{m * i}" for i in range(1, P + 1)]
            + [f"ma.S.L{m * i}" for i in range(1, Q + 1)]
            + ["sigma2"] * (not _concentrated(spec)))


def _stationary(ar: list) -> bool:
    """Whether x[t] = ar[0] x[t-1] + ... is stationary, for at most two lags (the
    triangle of AR(2))."""
    if len(ar) == 1:
        return abs(ar[0]) < 1
    if len(ar) == 2:
        a1, a2 = ar
        return abs(a2) < 1 and a1 + a2 < 1 and a2 - a1 < 1
    return True


def _ndiffs(x: np.ndarray, max_d: int = 2) -> int:
    """The fewest differences (at most max_d) of x that the KPSS test at 5% does not find
    non-stationary in level; lags trunc(3 sqrt(n) / 13) as forecast::ndiffs."""
    from statsmodels.tsa.stattools import kpss
    d = 0
    while d < max_d and len(x) >= 3 and np.ptp(x) > 0:
        lags = int(3 * math.sqrt(len(x)) / 13)
        statistic, _, _, critical = kpss(x, regression="c", nlags=lags)
        if statistic <= critical["5%"]:
            break
        x, d = np.diff(x), d + 1
    return d


def _difference_polynomial(d: int, season: int, D: int) -> np.ndarray:
    poly = np.ones(1)
    for _ in range(d):
        poly = np.convolve(poly, [1.0, -1.0])
    for _ in range(D):
        poly = np.convolve(poly, np.r_[1.0, np.zeros(season - 1), -1.0])
    return poly


def _seasonal_difference(x: np.ndarray, season: int, D: int) -> np.ndarray:
    for _ in range(D):
        x = x[season:] - x[:-season]
    return x


def _lost(spec: dict) -> int:
    """Observations the differences use up: d + D m."""
    return spec["order"][1] + spec["seasonal_order"][1] * spec["seasonal_order"][3]


def _fourier(t: np.ndarray, season: int, K: int) -> np.ndarray:
    """The K sine-cosine pairs of the season at the steps t, (len(t), 2K)."""
    angle = 2 * np.pi * np.outer(t, np.arange(1, K + 1)) / season
    terms = np.empty((len(t), 2 * K))
    terms[:, 0::2], terms[:, 1::2] = np.sin(angle), np.cos(angle)
    return terms


def _sarimax_args(spec: dict) -> dict:
    return {"order": spec["order"], "seasonal_order": spec["seasonal_order"],
            "trend": spec["trend"]}


def _concentrated(spec: dict) -> bool:
    # Concentrating the variance out makes the fits 4 times faster, but statsmodels needs
    # one parameter left to optimise.
    p, _, q = spec["order"]
    P, _, Q, _ = spec["seasonal_order"]
    return bool(p + q + P + Q + spec["fourier"] or spec["trend"])


def _fit_sarima(y_fit: np.ndarray, spec: dict) -> tuple:
    """(AIC of the levels, converged, spec, params, param names) of one candidate; AIC inf
    when the fit fails."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX
    x = np.log(y_fit) if spec["log"] else y_fit
    K = spec["fourier"]
    exog = _fourier(np.arange(len(x)), spec["season"], K) if K else None
    try:
        model = SARIMAX(x, exog=exog, **_sarimax_args(spec), simple_differencing=True,
                        concentrate_scale=_concentrated(spec))
        # Only the likelihood is read: no covariance of the parameters, no stored
        # filter output (twice as fast).
        result = model.fit(disp=False, cov_type="none", low_memory=True)
    except (ValueError, np.linalg.LinAlgError):
        return math.inf, False, spec, None, None
    aic = float(result.aic)
    if spec["log"]:
        aic += 2 * float(np.sum(x[_lost(spec):]))
    # The regressors' names say what they are, for `_forecast` to find them.
    names = [f"fourier.{name}" if name in (model.exog_names or ()) else name
             for name in model.param_names]
    params = np.array(result.params, dtype=np.float64)
    return aic, bool(result.mle_retvals["converged"]), spec, params, names


def _sarima_name(spec: dict) -> str:
    p, d, q = spec["order"]
    P, D, Q, m = spec["seasonal_order"]
    name = f"SARIMA({p},{d},{q})({P},{D},{Q}){m}" if P + D + Q else f"ARIMA({p},{d},{q})"
    if spec["trend"]:
        name += " with drift" if d + D == 1 else " with mean"
    if spec["fourier"]:
        name += f" + Fourier({spec['season']}, K={spec['fourier']})"
    return name + (" on log" if spec["log"] else "")


# -- states: rebuilding a fitted baseline ----------------------------------------------

#: The classes `baseline_from_state` rebuilds, by the name a state gives.
_CLASSES = {cls.__name__: cls for cls in (Naive, SeasonalNaive, ETS, SARIMA)}


def baseline_from_state(state) -> Baseline:
    """The fitted baseline of a state `Baseline.get_state` gave, checked: no refit.

    Its forecasts are the original's, bitwise; it is the original's class, with the
    same `season`, `describe`, `n_fit_` and `seconds_` (but none of the fit's
    diagnostics: `Baseline.get_state`). The naive ones need numpy only, and ETS and
    SARIMA need statsmodels only when they forecast.

    Parameters
    ----------
    state : dict
        As `Baseline.get_state` returns it (or JSON read back from it). Read from a file
        that may be damaged or crafted, it is checked whole before it is used.

    Returns
    -------
    Baseline
        A `Naive`, `SeasonalNaive`, `ETS` or `SARIMA`, fitted.

    Raises
    ------
    ValueError
        The state is not one a fit gives, naming the key and what was expected: not a
        dict, a key missing or unknown, an unknown class, a value of the wrong type, a
        season outside 1..`LONGEST_SEASON`, a spec the class's fit cannot choose for
        that season and `n_fit` (out of its grid, or seasonal without two seasons of
        `n_fit`), parameters other than the spec's, not finite, or outside the bounds
        a fit keeps (ETS's smoothing parameters in [0, 1], SARIMA's autoregression
        stationary, its variance positive), an STL component but for ETS with a
        season over `MAX_SEASON` and two seasons of `n_fit`, or not of `n_fit`
        finite values.

    Examples
    --------
    >>> from lstm_native.baselines import baseline_from_state
    >>> y = np.arange(1.0, 31.0)
    >>> naive = baseline_from_state({"class": "Naive", "n_fit": 24, "seconds": 0.0})
    >>> naive.forecast(y, [23], horizon=2)
    array([[24., 24.]])
    >>> baseline_from_state({"class": "Naive", "n_fit": 0, "seconds": 0.0})
    Traceback (most recent call last):
    ...
    ValueError: state['n_fit'] must be an int in 1..1099511627776, got 0
    """
    if not isinstance(state, dict):
        raise ValueError(f"state must be a dict, got {_shown(state)}")  # noqa: TRY004
    name = state.get("class")
    if not (type(name) is str and name in _CLASSES):
        raise ValueError(f"state['class'] must be one of {', '.join(map(repr, _CLASSES))}, "
                         f"got {_shown(name)}")
    cls = _CLASSES[name]
    state = _State(state, ("class", *cls._STATE_KEYS, "n_fit", "seconds"))
    n_fit = state.int("n_fit", cls._FEWEST_FIT, _MOST_VALUES)
    seconds = state.number("seconds", 0.0)
    baseline = cls._from_state(state, n_fit)
    baseline.n_fit_, baseline.seconds_ = n_fit, seconds
    return baseline


# -- the standard set, and the season of a calendar ------------------------------------

def baselines(season: int, *, statsmodels: bool = True) -> list[Baseline]:
    """The standard baselines of a series with the given season, unfitted.

    Parameters
    ----------
    season : int
        The season in steps (`season_of`); 1 for none.
    statsmodels : bool, default True
        Include ETS and SARIMA. They are left out, silently, when statsmodels cannot be
        imported: the naive ones need numpy only. (`ETS` and `SARIMA` themselves raise an
        ImportError on fit without it.)

    Returns
    -------
    list of Baseline
        `Naive`, `SeasonalNaive` (when season > 1), `ETS` and `SARIMA`, in that order.

    Examples
    --------
    >>> from lstm_native.baselines import baselines
    >>> [b.name for b in baselines(12, statsmodels=False)]
    ['naive', 'seasonal naive']
    """
    season = _check_season(season)
    chosen: list[Baseline] = [Naive()]
    if season > 1:
        chosen.append(SeasonalNaive(season))
    if statsmodels and _has_statsmodels():
        chosen += [ETS(season), SARIMA(season)]
    return chosen


def _has_statsmodels() -> bool:
    try:
        _import_statsmodels("")
    except ImportError:
        return False
    return True


_DAY = 86400


def season_of(dates) -> int:
    """The season of a calendar, in steps, from the spacing of its dates.

    Parameters
    ----------
    dates : pandas DatetimeIndex, PeriodIndex or Series of dates, datetime64 array, or None

    Returns
    -------
    int
        Hourly 24, daily 7, business-daily 5 (weekdays only, the weekends skipped),
        weekly 52, monthly 12, quarterly 4; yearly and any other spacing 1, and so are
        None and fewer than three dates. The spacing is the median step, so that a few
        missing dates do not change it.

    Examples
    --------
    >>> import numpy as np
    >>> from lstm_native.baselines import season_of
    >>> season_of(np.arange("2020-01", "2023-01", dtype="datetime64[M]"))
    12
    >>> season_of(np.arange("2020-01-01", "2020-03-01", 7, dtype="datetime64[D]"))
    52
    """
    if dates is None:
        return 1
    stamps = _as_seconds(dates)
    if len(stamps) < 3:
        return 1
    stamps = np.unique(stamps)
    steps = np.diff(stamps)
    step = float(np.median(steps)) if len(steps) else 0.0
    days = step / _DAY
    if abs(step - 3600) <= 360:
        return 24
    if 0.9 <= days <= 1.1:
        weekdays = (stamps // _DAY + 3) % 7   # 1970-01-01 was a Thursday (3; Monday is 0)
        business = np.all(weekdays < 5) and np.any(steps >= 3 * _DAY)
        return 5 if business else 7
    for low, high, season in ((6.5, 7.5, 52), (27.5, 31.5, 12), (88.5, 92.5, 4)):
        if low <= days <= high:
            return season
    return 1


def _as_seconds(dates) -> np.ndarray:
    """The dates as int64 seconds since 1970 (local wall time for a zoned pandas index)."""
    if type(dates).__module__.split(".")[0] == "pandas":
        import pandas as pd
        index = pd.Index(dates)
        if isinstance(index, pd.PeriodIndex):
            index = index.to_timestamp()
        if not isinstance(index, pd.DatetimeIndex):
            raise TypeError(f"dates must be dates (a DatetimeIndex, a PeriodIndex or a "
                            f"Series of them), got values of dtype {index.dtype}")
        if index.tz is not None:
            index = index.tz_localize(None)
        return index.to_numpy("datetime64[s]").astype(np.int64)
    a = np.asarray(dates)
    if not np.issubdtype(a.dtype, np.datetime64) or a.ndim != 1:
        raise TypeError(f"dates must be a 1-D array of datetime64, got dtype {a.dtype} of "
                        f"shape {a.shape}")
    return a.astype("datetime64[s]").astype(np.int64)
