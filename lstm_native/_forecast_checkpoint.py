"""What `Forecaster.save` writes into a checkpoint's `extra` and what `Forecaster.load`
checks of it: the settings, the scaler or the hybrid's state, the baselines, the
calibration errors and the model's shape.

Each check raises a `ForecastError` naming the file (a ``{path}`` placeholder) and what
it expected. `Forecaster.save` and `Forecaster.load` stay methods of the class (they
read and write the file, `lstm_native.checkpoint`); this module holds the format between
them, so that the class reads as the forecaster. It imports no `forecasting`.
"""
from __future__ import annotations

import math

import numpy as np

from . import _hybrid
from ._forecast_series import CELLS, METHODS, TRANSFORMS, ForecastError, _braced, _param
from .baselines import Naive, baseline_from_state
from .data import scaler_from_state
from .layers import Ensemble, Sequential
from .quantization import PRECISIONS, QuantizedGRU, QuantizedLSTM, QuantizedRNN
from .training import predict

# The quantized form of each cell's layer (`lstm_native.quantize`), by the cell's name.
_QUANTIZED = {"lstm": QuantizedLSTM, "gru": QuantizedGRU, "rnn": QuantizedRNN}


def _saved_extra(forecaster, source: dict | None) -> dict:
    """The `extra` of a fitted forecaster's checkpoint: its settings after `source`,
    the hybrid's state or the scaler's, the baselines' states, the calibration
    errors, the results and the history (what `Forecaster.load` checks)."""
    settings = {**(source or {}), **forecaster.settings()}
    if forecaster.method == "hybrid":
        stats = forecaster.hybrid_stats_
        state = {"hybrid": {"base": forecaster.base_, "mean": stats["mean"].tolist(),
                            "std": stats["std"].tolist(), "sigma": stats["sigma"]}}
    else:
        state = {"scaler": forecaster.scaler_.get_state()}
    history = forecaster.history_
    return {"settings": settings, **state,
            "baselines": [b.get_state() for b in forecaster.baselines_],
            # None for a forecaster loaded from a file saved before they were kept.
            "calibration": (None if forecaster.calibration_ is None
                            else forecaster.calibration_.tolist()),
            "results": forecaster.results_,
            "history": None if history is None else dict(history)}


def _loaded_settings(extra: dict, where) -> dict:
    """The settings a checkpoint's `extra` keeps, checked (as `Forecaster.load` says),
    with the cell, method, members and precision of files saved before they were
    settings filled in; a ForecastError for a checkpoint not of a forecaster, or damaged
    settings."""
    settings = extra.get("settings")
    method = settings.get("method", "lstm") if isinstance(settings, dict) else "lstm"
    # What the method keeps besides the model (an unknown method: damaged settings).
    state = {"hybrid": "hybrid", "lstm": "scaler"}.get(method, "settings")
    if not {"settings", state} <= set(extra):
        raise ForecastError(f"{{path}}: not a model saved by {{saver}} (its checkpoint has no "
                            f"settings and {state})", path=where, saver=_param("saver"))
    valid = (isinstance(settings, dict)
             and all(type(settings.get(k)) is int and settings[k] >= 1   # not bool
                     for k in ("lookback", "horizon"))
             and settings.get("transform") in TRANSFORMS
             and isinstance(settings.get("data"), (str, type(None)))   # None: no source
             and all(isinstance(settings.get(k), (str, type(None)))
                     for k in ("column", "date_column"))
             and isinstance(settings.get("cell", "lstm"), str)
             and settings.get("cell", "lstm") in CELLS
             and method in METHODS
             and type(settings.get("members", 1)) is int and settings.get("members", 1) >= 1
             and (settings.get("season") is None
                  or type(settings["season"]) is int and settings["season"] >= 1)
             and type(settings.get("combine", True)) is bool
             and settings.get("quantized") in (None, *PRECISIONS))
    if not valid:
        raise ForecastError(
            f"{{path}}: its settings are damaged (expected lookback and horizon >= 1, a "
            f"transform of {', '.join(TRANSFORMS)}, the data, column and date column as "
            f"text or null, a cell of "
            f"{', '.join(CELLS)}, a method of {', '.join(METHODS)}, members >= 1, a "
            f"season >= 1 or null, combine true or false, quantized null or one of "
            f"{', '.join(PRECISIONS)}), got "
            f"{_braced(repr(settings))}", path=where)
    return {**settings, "cell": settings.get("cell", "lstm"), "method": method,
            "members": settings.get("members", 1), "quantized": settings.get("quantized")}


def _loaded_scaler(state, where):
    """The `StandardScaler` of a saved plain forecaster."""
    try:
        return scaler_from_state(state)
    except (TypeError, ValueError) as e:
        raise ForecastError(f"{{path}}: its scaler does not load: {_braced(e)}",
                            path=where) from None


def _loaded_baselines(states, where) -> list:
    """The fitted baselines a checkpoint keeps; the naive one alone for files written
    before they were kept (it has no parameters)."""
    if states is None:
        return [Naive().fit([0.0])]
    try:
        if not isinstance(states, list) or not states:
            raise ValueError(f"expected a list of baseline states, got {type(states).__name__}")
        return [baseline_from_state(state) for state in states]
    except (TypeError, ValueError, ImportError) as e:
        raise ForecastError(f"{{path}}: its baselines do not load: {_braced(e)}",
                            path=where) from None


def _loaded_hybrid(state, baselines: list, where) -> tuple:
    """(stats, base) of a saved hybrid, checked: three finite means, three positive
    finite standard deviations, a positive finite sigma, a base among its baselines."""
    names = [b.name for b in baselines if b.name in _hybrid.BASES]

    def numbers(value, n):
        return (isinstance(value, list) and len(value) == n
                and all(type(v) in (int, float) and math.isfinite(v) for v in value))

    valid = (isinstance(state, dict) and set(state) == {"base", "mean", "std", "sigma"}
             and state["base"] in names and numbers(state["mean"], len(_hybrid.FEATURES))
             and numbers(state["std"], len(_hybrid.FEATURES))
             and all(v > 0 for v in state["std"])
             and type(state["sigma"]) in (int, float) and math.isfinite(state["sigma"])
             and state["sigma"] > 0)
    if not valid:
        raise ForecastError(
            f"{{path}}: its hybrid state is damaged (expected the base, one of "
            f"{', '.join(names) or 'its baselines ETS and SARIMA'}, and {len(_hybrid.FEATURES)} "
            f"finite means, {len(_hybrid.FEATURES)} positive standard deviations and a "
            f"positive sigma), got {_braced(repr(state))[:300]}", path=where)
    stats = {"mean": np.array(state["mean"], np.float64),
             "std": np.array(state["std"], np.float64), "sigma": float(state["sigma"])}
    return stats, state["base"]


def _loaded_calibration(errors, horizon: int, where) -> np.ndarray | None:
    """The validation errors that calibrate the intervals, (N, horizon) finite numbers;
    None for files written before they were kept."""
    if errors is None:
        return None
    valid = isinstance(errors, list) and errors and all(
        isinstance(row, list) and len(row) == horizon
        and all(type(v) in (int, float) and math.isfinite(v) for v in row)   # not bool
        for row in errors)
    if not valid:
        raise ForecastError(f"{{path}}: its calibration errors are damaged (expected rows "
                            f"of {horizon} finite numbers), got "
                            f"{_braced(repr(errors))[:300]}", path=where)
    return np.array(errors, dtype=np.float64)


def _precision(block) -> str:
    """A block's precision: a quantized block's, else its dtype's name."""
    return getattr(block, "precision", None) or block.dtype.name


def _check_loaded_model(model, settings: dict, where) -> None:
    """A ForecastError unless `model` is the settings' network (or an Ensemble of
    `members` of them), in their precision (quantized ones for `quantized`), reading
    windows of `lookback` steps into `horizon` outputs."""
    hybrid = settings["method"] == "hybrid"
    quantized = settings["quantized"]
    layer = (CELLS if quantized is None else _QUANTIZED)[settings["cell"]]
    members = settings["members"]
    nets = model.members if isinstance(model, Ensemble) else (model,)
    if len(nets) != members:
        raise ForecastError(f"{{path}}: its settings say {members} member"
                            f"{'s' * (members > 1)}, its model has {len(nets)}", path=where)
    for net in nets:
        first = net.layers[0] if isinstance(net, Sequential) and net.layers else None
        if type(first) is not layer:
            what = type(net if first is None else first).__name__
            raise ForecastError(
                f"{{path}}: its settings name the cell {settings['cell']!r} ({layer.__name__} "
                f"first), but its model {'starts with' if first is not None else 'is'} {what}",
                path=where)
        precisions = {_precision(block) for block in net.layers if block.parameters()}
        if quantized is not None and precisions != {quantized}:
            raise ForecastError(f"{{path}}: its settings say the networks are quantized to "
                                f"{quantized}, its model has layers in "
                                f"{', '.join(sorted(precisions))}", path=where)
        if quantized is None and precisions & set(PRECISIONS):
            raise ForecastError(f"{{path}}: its model has quantized layers "
                                f"({', '.join(sorted(precisions & set(PRECISIONS)))}), its "
                                f"settings say none", path=where)
    lookback, horizon = settings["lookback"], settings["horizon"]
    features = len(_hybrid.FEATURES) if hybrid else 1
    try:  # a model of another shape than the settings say: the only ValueError here
        out = predict(model, np.zeros((1, lookback, features), model.dtype))
    except ValueError as e:
        raise ForecastError(f"{{path}}: its model does not read its own windows of "
                            f"{lookback} steps of {features} value{'s' * (features > 1)}: "
                            f"{_braced(e)}", path=where) from None
    if out.ndim != 2 or out.shape[1] != horizon:
        raise ForecastError(f"{{path}}: its model gives outputs of shape {out.shape[1:]} "
                            f"per window, its settings a horizon of {horizon}", path=where)
