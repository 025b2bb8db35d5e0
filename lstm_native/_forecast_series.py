"""The series side of `lstm_native.forecasting`: what a forecaster does to the numbers
before and after its networks.

`ForecastError` (the errors of a series or setting, whose messages name parameters), the
transform between levels and model space (`_Transform`, `_scale`, `_unscale`), the
windows a network reads (`_Windows`, `_check_length`, `_origin_spans`), the checks that
numbers stay in range (`_check_levels`, `_rmse`, `_as_model_dtype`), and the names the
forecaster's settings take (`CELLS`, `TRANSFORMS`, `METHODS`, `SPANS`) with the count of
parameters a cell gives. Kept apart from the `Forecaster` class so that the class reads
as fitting, scoring and predicting; `forecasting` re-exports the public names, and
nothing here imports it.
"""
from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from .data import make_windows
from .gru import GRU
from .lstm import LSTM
from .rnn import RNN

#: The forecaster's recurrent layer by name, at torch's defaults (the GRU's
#: reset_after=True, the RNN's tanh), and its blocks of weights per layer (gates).
CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
_GATES = {"lstm": 4, "gru": 3, "rnn": 1}
TRANSFORMS = ("log-diff", "diff", "none")
#: "lstm": a recurrent network on the transformed series; "hybrid": ETS or SARIMA
#: corrected by an ensemble of LSTMs (`lstm_native._hybrid`).
METHODS = ("lstm", "hybrid")
SPANS = ("train", "validation", "test", "all")
_RESCALE = "rescale the series (divide it by a power of ten)"


class ForecastError(ValueError):
    """A series or a setting the forecaster cannot work with.

    The message is a template whose ``{placeholders}`` stand for parameters, each a
    ``(name, value)`` pair (value None for the parameter itself). ``str(error)`` spells
    them ``name=value``; `render` lets a caller spell them otherwise.
    """

    # Public as lstm_native.forecasting.ForecastError (its tracebacks and pickles say so).
    __module__ = "lstm_native.forecasting"

    #: The words of the placeholders that are not parameters, as the library says them.
    WORDS: ClassVar[dict] = {"y": "y", "this": "the forecaster", "saver": "Forecaster.save"}

    def __init__(self, template: str, **params):
        self.template, self.params = template, params
        super().__init__(self.render(self._spell))

    @classmethod
    def _spell(cls, name: str, value) -> str:
        if name in cls.WORDS:
            return cls.WORDS[name]
        return name if value is None else f"{name}={value}"

    def render(self, spell) -> str:
        """The message with each placeholder's ``(name, value)`` given to
        ``spell(name, value) -> str``."""
        return self.template.format(**{key: spell(name, value)
                                       for key, (name, value) in self.params.items()})


def _param(name: str, value=None) -> tuple:
    return name, value


# -- the transform ---------------------------------------------------------------------

class _Transform:
    """Level <-> model space: optional log, optional differencing (the scaler comes after).

    ``encode(y)`` gives u[t] for t = first .. T-1 (the change z[t] - z[t-1] when
    differencing, else z[t], with z = log y or y); ``decode(u_pred, y_last)`` turns
    predicted u of the steps after a level y_last back into levels.
    """

    def __init__(self, name: str):
        self.name = name
        self.log = name == "log-diff"
        self.diff = name in ("log-diff", "diff")
        self.first = 1 if self.diff else 0

    @classmethod
    def choose(cls, name: str, values: np.ndarray) -> _Transform:
        if name == "auto":
            name = "log-diff" if np.all(values > 0) else "diff"
        if name == "log-diff" and not np.all(values > 0):
            raise ForecastError("{log} needs a series of positive values; use {diff}",
                                log=_param("transform", "log-diff"),
                                diff=_param("transform", "diff"))
        return cls(name)

    def encode(self, y: np.ndarray) -> np.ndarray:
        """u of the levels y (T,), or a ForecastError where a difference overflows."""
        z = np.log(y) if self.log else np.asarray(y, np.float64)
        if not self.diff:
            return z.copy()
        with np.errstate(over="ignore", invalid="ignore"):   # checked next
            u = np.diff(z)
        bad = ~np.isfinite(u)
        if bad.any():
            t = int(np.argmax(bad))
            raise ForecastError(f"{{t}}: the change from step {t} to {t + 1} ({y[t]:g} to "
                                f"{y[t + 1]:g}) overflows float64; {_RESCALE}",
                                t=_param("transform", self.name))
        return u

    def decode(self, u: np.ndarray, y_last: np.ndarray) -> np.ndarray:
        """u (N, H) predicted steps after the levels y_last (N,) -> levels (N, H); past
        float64's range they are inf, for the caller to report."""
        if not self.diff:
            return u
        with np.errstate(over="ignore", invalid="ignore"):
            z_last = np.log(y_last) if self.log else y_last
            z = z_last[:, None] + np.cumsum(u, axis=1)
            return np.exp(z) if self.log else z


def _scale(scaler, u: np.ndarray) -> np.ndarray:
    """The model-space series u (T,) standardised, (T, 1); a ForecastError where it
    overflows (the only ValueError of a fitted scaler on a finite (T, 1) array)."""
    try:
        return scaler.transform(u[:, None])
    except ValueError as e:
        raise ForecastError(f"the series does not fit the training part's scale: "
                            f"{_braced(e)}") from None


def _unscale(scaler, pred: np.ndarray) -> np.ndarray:
    """Model outputs (N, H) back to unscaled model space, float64; a ForecastError when
    they are not finite or overflow float64 there."""
    try:
        return scaler.inverse_transform(pred.astype(np.float64)[..., None])[..., 0]
    except ValueError as e:
        raise ForecastError(f"the model's predictions do not map back to the series: "
                            f"{_braced(e)}") from None


def _braced(e: Exception) -> str:
    """The text of `e`, its braces doubled for a ForecastError template."""
    return str(e).replace("{", "{{").replace("}", "}}")


def _check_levels(levels: np.ndarray, what: str) -> None:
    """A ForecastError when decoded levels left float64's range (`decode` gives inf)."""
    if not np.all(np.isfinite(levels)):
        raise ForecastError(f"{what} overflow float64; {_RESCALE}")


def _rmse(pred, actual) -> float:
    """The root mean squared error, or a ForecastError when the squares overflow."""
    with np.errstate(over="ignore", invalid="ignore"):   # checked next
        rmse = float(np.sqrt(np.mean(np.square(np.asarray(pred, np.float64) - actual))))
    if not math.isfinite(rmse):
        raise ForecastError(f"the errors of the forecasts overflow float64; {_RESCALE}")
    return rmse


class _Windows:
    """Every window of a series in model space: x (N, lookback, 1) and y (N, horizon),
    the scaled model inputs and targets; target_time (N,), the time index of each
    window's first target."""

    def __init__(self, series: np.ndarray, transform: _Transform, scaler, lookback: int,
                 horizon: int, dtype):
        u = _scale(scaler, transform.encode(series))  # (T - first, 1)
        x, y = make_windows(u, lookback, horizon)
        self.target_time = np.arange(len(x)) + transform.first + lookback
        self.x, self.y = _as_model_dtype(x, dtype), _as_model_dtype(y[:, :, 0], dtype)


def _as_model_dtype(a: np.ndarray, dtype) -> np.ndarray:
    """`a` in the model's precision, or a ForecastError where float32 overflows."""
    with np.errstate(over="ignore"):   # checked next
        out = a.astype(dtype)
    if not np.all(np.isfinite(out)):
        raise ForecastError(f"the standardised series reaches {np.max(np.abs(a)):.3g}, past "
                            f"{np.dtype(dtype).name}'s range (the model's precision); train "
                            f"with {{d}} or {_RESCALE}", d=_param("dtype", "float64"))
    return out


def _check_length(n: int, lookback: int, horizon: int, first: int, features: int = 1, *,
                  limit: int) -> None:
    """A ForecastError unless a series of n values gives one window, and all its windows
    (of `features` values per step) together hold at most `limit` values (the
    forecaster's MAX_WINDOW_VALUES)."""
    needed = first + lookback + horizon
    sizes = {"lookback": _param("lookback", lookback), "horizon": _param("horizon", horizon)}
    if n < needed:
        raise ForecastError(f"the series is too short: {{y}} has {n} values, and one window "
                            f"needs {needed} ({{lookback}}, {{horizon}})",
                            y=_param("y"), **sizes)
    n_windows = n - needed + 1
    held = n_windows * (lookback * features + horizon)
    if held > limit:
        steps = f"{{lookback}} steps of {features} values" if features > 1 else "{lookback}"
        raise ForecastError(f"the windows are too large: {n_windows:,} windows of {steps} "
                            f"+ {{horizon}} values hold {held:,} values, more than the "
                            f"{limit:,} {{this}} cuts; use a smaller {{lb}} or a "
                            "shorter series", this=_param("this"), lb=_param("lookback"),
                            **sizes)


def _origin_spans(origins: np.ndarray, n_train: int, n_val: int, n: int,
                  horizon: int) -> dict:
    """The origins whose `horizon` targets all fall in each span of a series of n values
    (the first n_train train, the next n_val validation, the rest test; "all": every
    origin with its targets in the series)."""
    last = origins + horizon          # the last target's index
    n_fit = n_train + n_val
    return {"train": origins[last < n_train],
            "validation": origins[(origins >= n_train - 1) & (last < n_fit)],
            "test": origins[(origins >= n_fit - 1) & (last < n)],
            "all": origins[last < n]}


def _parameter_count(cell: str, hidden: int, layers: int, horizon: int,
                     features: int = 1) -> int:
    """Parameters of CELLS[cell](features, hidden, layers) -> Linear(hidden, horizon): per
    layer and gate, the input and hidden weights and two biases (torch's layout)."""
    recurrent = sum(_GATES[cell] * hidden * ((features if layer == 0 else hidden) + hidden + 2)
                    for layer in range(layers))
    return recurrent + (hidden + 1) * horizon
