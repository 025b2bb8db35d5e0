"""`Forecaster`: a recurrent forecaster of one series, fitted, scored, run and saved.

The plain method (``method="lstm"``) models the series as a stationary one: the log (when every value is
positive) is differenced, the changes are standardised with statistics of the training
part only, and a recurrent layer (`CELLS`: an LSTM by default) reads the last `lookback`
changes to predict the next `horizon` ones; a forecast is the last observed value plus
the predicted changes. The series is split in time (70% train, 15% validation, 15%
test by default); a window belongs to the part its targets fall in, its inputs being
observed values before them. Training stops early on the validation part and keeps the
best weights; the test part scores the forecaster against the classical baselines
(`lstm_native.baselines`: naive, seasonal naive, ETS, SARIMA), fitted on the values
before it and run over it the same way (one origin at a time, no refit).

With ``method="hybrid"`` (the default) the networks instead correct a classical model: ETS or SARIMA
(the one with the smaller validation error) forecasts, and an ensemble of LSTMs that
reads its recent errors predicts the errors of its next forecasts
(`lstm_native._hybrid`, after Smyl's ES-RNN); the forecast is the median of the
corrected one, ETS's and SARIMA's.

The latest errors (the validation part's, then the test part's as they are observed)
calibrate split-conformal prediction intervals (`predict_interval`,
`lstm_native._intervals`), whose coverage of the test part the results give next to the
nominal 80% and 95%.

The trained networks may run in int8 or bfloat16 (``quantized=``, or `Forecaster.quantize`
of a fitted forecaster: `lstm_native.quantize`); the classical models stay in float64.

A series is a 1-D numpy array (dates optional, as ``dates=``), a pandas Series, or a
column of a pandas DataFrame; the dates come from a DatetimeIndex or PeriodIndex or a
date column. pandas is imported only when such an object is passed.

Errors of the series and of the numbers (too short, constant, overflowing, a training
that diverges) are `ForecastError`: a ValueError whose message names the parameters
involved, and which a caller with other names for them (the command line's options)
can spell its own way with `ForecastError.render`.

The class is the pipeline; the pieces it stands on live in private modules beside it:
`lstm_native._forecast_series` (`ForecastError`, the transform, the windows, the names of
the settings: `CELLS`, `TRANSFORMS`, `METHODS`, `SPANS`), `lstm_native._forecast_checkpoint`
(what `save` writes and `load` checks) and `lstm_native._forecast_plots` (`plot`'s
figures). They never import this module.
"""
from __future__ import annotations

import copy
import math
import os
import time
from typing import ClassVar

import numpy as np

from . import _forecast_plots, _hybrid, _intervals, losses, optim
from ._forecast_checkpoint import (_check_loaded_model, _loaded_baselines, _loaded_calibration,
                                   _loaded_hybrid, _loaded_scaler, _loaded_settings, _saved_extra)
from ._forecast_series import (CELLS, METHODS, SPANS, TRANSFORMS, ForecastError, _braced,
                               _check_length, _check_levels, _origin_spans, _param,
                               _parameter_count, _rmse, _scale, _Transform, _unscale, _Windows)
from .baselines import baselines as standard_baselines
from .baselines import season_of
from .checkpoint import load_checkpoint, save_checkpoint
from .data import StandardScaler, chronological_split, dated, forecast_recursive
from .data._checks import check_fraction, check_int, check_real
from .layers import Ensemble, LastStep, Linear, Sequential
from .quantization import PRECISIONS, check_precision, quantize
from .training import EarlyStopping, fit, predict

__all__ = ["CELLS", "ForecastError", "Forecaster"]

#: The most parameters a forecaster builds: 1 GB of float32 weights, four with the
#: gradients and Adam's two moments.
MAX_PARAMETERS = 250_000_000
#: The most values all the windows of a series may hold: they are held several times
#: (scaled, as levels, in the model's precision), about 1 GB each in float64.
MAX_WINDOW_VALUES = 2**27


class Forecaster:
    """A recurrent forecaster of one series (see the module's docstring for the method).

    Parameters
    ----------
    lookback : int, default 12
        Past steps the model reads.
    horizon : int, default 1
        Future steps it predicts at once.
    cell : {"lstm", "gru", "rnn"}, default "lstm"
        The recurrent layer (`CELLS`).
    hidden : int, default 32
        Hidden units of each recurrent layer.
    layers : int, default 1
        Stacked recurrent layers.
    epochs : int, default 300
        Most passes over the training windows.
    patience : int, default 30
        Stop after this many epochs without a better validation loss and keep the best
        weights; 0 turns early stopping off.
    batch_size : int, default 16
        Windows per gradient step.
    lr : float, default 0.003
        Adam's learning rate.
    transform : {"auto", "log-diff", "diff", "none"}, default "auto"
        Model the series as log-differences, differences or levels; "auto" is log-diff
        for a positive series, else diff.
    seed : int, default 0
        Seed of the weights and the shuffling.
    dtype : {"float32", "float64"}, default "float32"
        The model's precision.
    n_threads : int or None, default 1
        OpenMP threads of the recurrent kernels; None = all cores. One is the fastest
        for batches this small.
    train_fraction, val_fraction : float, default 0.7, 0.15
        The chronological split; the rest is the test part.
    verbose : bool, default False
        Print the progress of training.
    method : {"hybrid", "lstm"}, default "hybrid"
        "lstm": the networks read the transformed series (the module's docstring).
        "hybrid": ETS or SARIMA (of `lstm_native.baselines`, the one with the smaller
        validation error) corrected by LSTMs that read its errors
        (`lstm_native._hybrid`); needs statsmodels.
    members : int or None, default None
        Networks trained from successive seeds (member k from seeds seed + 2k and
        seed + 2k + 1), whose median forecast counts; None: 5 for the hybrid, 1 for
        "lstm".
    season : int or None, default None
        The season in steps, for the seasonal baselines and bases; None: from the
        dates' frequency (`lstm_native.baselines.season_of`), 1 without dates.
    combine : bool, default True
        For the hybrid: the forecast is the median of the corrected base's, ETS's and
        SARIMA's (robust where the correction errs); False: the corrected base alone.
    distributed : bool, default False
        Train each network data-parallel over the MPI ranks of ``mpiexec -n N``
        (`lstm_native.fit`'s `distributed`): every rank builds the same forecaster, the
        same weights, results and checkpoint as one process up to rounding; save and
        plot on rank 0 only (`lstm_native.distributed.rank`). Not kept by `save`.
    quantized : {None, "int8", "bfloat16"}, default None
        Run the networks in int8 or bfloat16 for inference (`lstm_native.quantize`):
        `fit` trains them in `dtype`, then quantizes them, and the results, forecasts
        and intervals are the quantized networks'. `quantize` does the same to a fitted
        forecaster without training again.

    Attributes
    ----------
    model_ : Sequential or Ensemble
        The recurrent layer -> its last step -> Linear(hidden, horizon); an `Ensemble`
        of them (median) with several members; their quantized forms (inference only)
        with `quantized`.
    baselines_ : list of Baseline
        The classical baselines fitted on the values before the test part
        (`lstm_native.baselines.baselines`): naive, seasonal naive when the season is
        > 1, ETS and SARIMA when statsmodels is installed.
    season_ : int
        The season used.
    base_, hybrid_stats_ : str, dict
        The hybrid's base ("ETS" or "SARIMA") and the statistics of its features.
    scaler_ : StandardScaler
        The statistics of the training part's changes.
    transform_ : str
        The transform used ("auto" resolved).
    n_windows_ : tuple of int
        Train, validation and test windows of the fitted series.
    history_ : History
        The loss per epoch.
    best_epoch_ : int
        The epoch whose weights were kept.
    results_ : dict
        On the fitted series: ``rmse`` and ``naive_rmse`` (test part, levels),
        ``baselines`` (each baseline's RMSE on the same windows), ``baseline_models``
        (each one's chosen model), ``best_baseline`` and ``ratio_to_best`` (our RMSE
        over the best baseline's), ``val_rmse``, ``test_loss`` (MSE of the standardised
        targets), ``test_windows``, ``epochs``, ``best_epoch`` (of member 0),
        ``seconds`` (of training), ``intervals`` (per level of `_intervals.LEVELS`,
        "80" and "95": the ``coverage`` of the test values by the prediction intervals
        and their mean ``width``, None when unbounded) and ``calibration_windows``.
    calibration_ : ndarray of shape (N, horizon)
        The errors (actual - forecast, in the model's space: the log for a
        log-differenced series) of the validation part's windows: they calibrate the
        split-conformal prediction intervals (`predict_interval`, `lstm_native._intervals`),
        rolled forward over a series' test part as its errors are observed.
    fitted_ : ndarray of shape (N, horizon)
        The forecasts of every window of the fitted series (levels), whose first targets
        are at `fitted_time_`.

    Examples
    --------
    >>> import numpy as np
    >>> from lstm_native.forecasting import Forecaster
    >>> t = np.arange(120)
    >>> y = 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / 12)
    >>> f = Forecaster(lookback=6, hidden=4, epochs=2).fit(y)
    >>> f.predict(3).shape
    (3,)
    >>> list(f.predict_interval(3))
    ['forecast', 'lower_80', 'upper_80', 'lower_95', 'upper_95']
    >>> sorted(f.score(y)["baselines"])
    ['ETS', 'SARIMA', 'naive']
    """

    def __init__(self, lookback: int = 12, horizon: int = 1, *, cell: str = "lstm",
                 hidden: int = 32, layers: int = 1, epochs: int = 300, patience: int = 30,
                 batch_size: int = 16, lr: float = 0.003, transform: str = "auto",
                 seed: int = 0, dtype: str = "float32", n_threads: int | None = 1,
                 train_fraction: float = 0.7, val_fraction: float = 0.15,
                 verbose: bool = False, method: str = "hybrid", members: int | None = None,
                 season: int | None = None, combine: bool = True,
                 distributed: bool = False, quantized: str | None = None):
        self.method, self.members, self.season, self.combine = method, members, season, combine
        self.distributed, self.quantized = distributed, quantized
        self.lookback, self.horizon, self.cell = lookback, horizon, cell
        self.hidden, self.layers, self.epochs, self.patience = hidden, layers, epochs, patience
        self.batch_size, self.lr, self.transform, self.seed = batch_size, lr, transform, seed
        self.dtype, self.n_threads = dtype, n_threads
        self.train_fraction, self.val_fraction = train_fraction, val_fraction
        self.verbose = verbose

    # -- scikit-learn's parameter protocol ---------------------------------------------

    _PARAMS: ClassVar[tuple] = ("lookback", "horizon", "cell", "hidden", "layers", "epochs", "patience",
               "batch_size", "lr", "transform", "seed", "dtype", "n_threads",
               "train_fraction", "val_fraction", "verbose", "method", "members", "season",
               "combine", "distributed", "quantized")

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's parameters by name (`deep` is scikit-learn's; nothing here
        nests)."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params) -> Forecaster:
        """Set constructor parameters by name; they take effect at the next `fit`."""
        unknown = sorted(set(params) - set(self._PARAMS))
        if unknown:
            raise ValueError(f"unknown parameter{'s' * (len(unknown) > 1)} "
                             f"{', '.join(unknown)} of Forecaster; valid: "
                             f"{', '.join(self._PARAMS)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = type(self)().get_params()
        changed = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()
                            if v != defaults[k])
        return f"Forecaster({changed})"

    def _checked_params(self) -> None:
        """TypeError or ValueError naming the first parameter out of its range."""
        for name in ("lookback", "horizon", "hidden", "layers", "epochs", "batch_size"):
            check_int(getattr(self, name), name, 1)
        check_int(self.patience, "patience", 0)
        check_int(self.seed, "seed", 0)
        check_real(self.lr, "lr", minimum=0.0)
        if not self.lr > 0:
            raise ValueError(f"lr must be a number > 0, got {self.lr!r}")
        if self.members is not None:
            check_int(self.members, "members", 1)
        if self.season is not None:
            check_int(self.season, "season", 1)
        for name in ("combine", "distributed"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name, choices in (("cell", tuple(CELLS)), ("transform", ("auto",) + TRANSFORMS),
                              ("method", METHODS),
                              ("dtype", ("float32", "float64")),
                              ("quantized", (None, *PRECISIONS))):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, "
                                 f"got {getattr(self, name)!r}")
        if self.n_threads is not None:
            check_int(self.n_threads, "n_threads", 1)
        check_fraction(self.train_fraction, "train_fraction", allow_zero=False)
        check_fraction(self.val_fraction, "val_fraction", allow_zero=False)

    # -- fit -----------------------------------------------------------------------------

    def fit(self, y, *, dates=None, column=None, date_column=None, callbacks=()):
        """Train on the series `y` (see the class's docstring); returns self.

        Parameters
        ----------
        y : array-like of shape (T,), pandas Series or DataFrame
            The series, finite numbers. A DataFrame gives the column `column` (by
            default its one column besides the dates).
        dates : array-like of datetime64 or pandas index, optional
            One date per value; by default a pandas DatetimeIndex or PeriodIndex of
            `y`, or its `date_column` (by default its first datetime column).
        callbacks : sequence of Callback
            Passed to `lstm_native.fit`; their ``on_train_begin`` sees the model built
            and the series windowed, before the first epoch.

        Raises
        ------
        ForecastError
            The series is constant, too short for a window in each part, has values
            <= 0 for transform="log-diff", or overflows float64 (or the model's
            precision) on the way; the model is too large or does not fit in memory;
            the training diverged.
        TypeError, ValueError
            A parameter out of its range, or `y` not a finite series.
        """
        self._checked_params()
        values, dates, pd = dated.read_series(y, dates, column, date_column)
        if np.all(values == values[0]):
            raise ForecastError(f"{{y}} is constant (all {len(values)} values are "
                                f"{values[0]:g}): there is nothing to forecast", y=_param("y"))
        transform = _Transform.choose(self.transform, values)
        _check_length(len(values), self.lookback, self.horizon, transform.first,
                      self._features(), limit=MAX_WINDOW_VALUES)
        try:
            train_part, val_part, _ = chronological_split(values, self.train_fraction,
                                                          self.val_fraction)
        except ValueError as e:
            raise ForecastError(f"the series is too short to split: {_braced(e)}") from None
        n_train, n_val = len(train_part), len(val_part)
        self._dates, self._pandas, self._values = dates, pd, values
        self._split = (n_train, n_val)
        self.season_ = self.season if self.season is not None else season_of(dates)
        self.baselines_ = self._fit_baselines(values[:n_train + n_val])
        started = time.perf_counter()
        if self.method == "hybrid":
            spans = self._fit_hybrid(values, transform, n_train, n_val, callbacks)
        else:
            spans = self._fit_lstm(values, transform, n_train, n_val, callbacks)
        seconds = time.perf_counter() - started
        if self.quantized is not None:
            # The optimizer's state belongs to the float weights, which are gone.
            self.model_, self.optimizer_ = quantize(self.model_, self.quantized), None
        self._evaluate(values, self._inputs(values), spans, seconds)
        return self

    def _evaluate(self, values: np.ndarray, inputs, spans: dict, seconds: float) -> None:
        """The fitted series' calibration errors, results and forecasts (`calibration_`,
        `results_`, `fitted_`) by the networks `model_` holds."""
        # The validation part's errors start the pool of errors that calibrates the test
        # part's intervals (scored on the test part only: None while the validation
        # part is scored, also after an earlier fit).
        what = "the model's forecasts"
        val_pred = self._forecasts(values, spans["validation"], what, inputs)
        self.calibration_ = None
        val = self._score(values, spans["validation"], what, inputs, val_pred)
        self.calibration_ = self._model_errors(values, spans["validation"], val_pred)
        test = self._score(values, spans["test"], what, inputs)
        test["test_loss"], test["test_windows"] = test.pop("loss"), test.pop("windows")
        self.results_ = {**test, "val_rmse": val["rmse"],
                         "epochs": len(self.history_["epoch"]),
                         "best_epoch": self.best_epoch_, "seconds": seconds}
        self.fitted_time_ = spans["all"] + 1
        self.fitted_ = self._forecasts(values, spans["all"], what, inputs)

    def quantize(self, precision: str) -> Forecaster:
        """A copy of this fitted forecaster whose networks run in int8 or bfloat16
        (`lstm_native.quantize`), the copy's `quantized` set to `precision`.

        The networks' products run in `precision`, everything else as before: the
        classical models, the transform, the scaler or the hybrid's statistics. The
        copy predicts, scores and saves as any forecaster; its `fit` trains float
        networks from its parameters again and quantizes them (which is what
        `lstm_native.backtest` does at each fold). On the fitted series its
        `calibration_`, `results_` and `fitted_` are the quantized networks' (as
        ``Forecaster(quantized=precision).fit`` gives them); a loaded forecaster keeps
        no series: its copy keeps the float networks' calibration errors and has no
        `results_` (None; `score` gives them).

        Parameters
        ----------
        precision : {"int8", "bfloat16"}
            int8: weights per row in 8 bits with a scale, activations per row of each
            step in 8 bits, exact int32 sums; bfloat16: weights and activations rounded
            to bfloat16, float32 sums.

        Returns
        -------
        Forecaster
            The copy; this forecaster is left unchanged.

        Raises
        ------
        ValueError
            `precision` is not "int8" or "bfloat16", or the networks are quantized
            already (quantize the float forecaster).
        RuntimeError
            The forecaster is not fitted.

        Notes
        -----
        The change of the test RMSE on the airline series with the main job's settings
        (``python -m lstm_native``: the hybrid, five LSTMs of 32 units, float32, one
        thread; ``Forecaster(seed=s).fit(y)``, then ``quantize``), median [range] over
        seeds 0-4: int8 +0.013% [-0.002%, +0.034%], bfloat16 -0.001% [-0.003%, +0.003%],
        of a float32 test RMSE of 15.10 [14.96, 15.15]. The kernels ran at SIMD level
        avx512, int8 on avx512-vnni and bfloat16 on avx512-bf16
        (`lstm_native.quantization.kernels`); the kernels without VNNI and
        AVX512_BF16 (``LSTM_NATIVE_ISA=avx2`` or ``generic``), which give the same
        bits as each other, gave the same figures to the digits quoted.
        The hybrid damps the networks' share (each correction clipped, the forecast a
        median with ETS's and SARIMA's); the plain network (``method="lstm"``, same
        seeds, float32 test RMSE 19.99 [18.36, 20.16]) changes by -0.14% [-0.58%,
        +0.12%] in int8 and +0.13% [-0.18%, +0.29%] in bfloat16.
        tests/test_quantize_forecast.py checks that the hybrid's stays within 1%.

        Examples
        --------
        >>> import numpy as np
        >>> from lstm_native.forecasting import Forecaster
        >>> t = np.arange(120)
        >>> y = 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / 12)
        >>> f = Forecaster(lookback=6, hidden=4, epochs=2, method="lstm").fit(y)
        >>> q = f.quantize("int8")
        >>> q.quantized, q.predict(3).shape
        ('int8', (3,))
        >>> bool(abs(q.results_["rmse"] / f.results_["rmse"] - 1) < 0.05)
        True
        """
        self._check_fitted()
        check_precision(precision)
        if self._precision() is not None:
            raise ValueError(f"this Forecaster's networks are quantized already (to "
                             f"{self._precision()}): quantize the float forecaster")
        copied = copy.copy(self)
        copied.quantized = precision
        # The optimizer's state belongs to the float weights.
        copied.model_, copied.optimizer_ = quantize(self.model_, precision), None
        values = getattr(self, "_values", None)
        if values is None:
            copied.results_ = None
        else:
            inputs = copied._inputs(values)
            copied._evaluate(values, inputs, copied._spans(values, inputs),
                             self.results_["seconds"])
        return copied

    def _fit_baselines(self, y_fit: np.ndarray) -> list:
        """The standard baselines (`lstm_native.baselines`) fitted on `y_fit`; ETS and
        SARIMA when statsmodels imports (the hybrid needs them), each left out when it
        cannot model the series (too short for its differences)."""
        fitted, self._unfitted = [], {}
        for baseline in standard_baselines(self.season_):
            try:
                fitted.append(baseline.fit(y_fit))
            except ValueError as e:
                if baseline.name in ("naive",):
                    raise
                self._unfitted[baseline.name] = str(e)   # why, for the hybrid's message
        return fitted

    def _train(self, model, x, y, xv, yv, seed: int, callbacks=None):
        """Train one network with Adam and early stopping on (xv, yv): (optimizer,
        history, stopper); ForecastErrors for a diverged or out-of-memory training.
        `callbacks` None: a later member of an ensemble, trained without callbacks and
        without progress lines (the first member's stand for all)."""
        optimizer = optim.Adam(model, lr=self.lr)
        stopper = None
        if self.patience:
            stopper = EarlyStopping("val_loss", patience=self.patience,
                                    restore_best_weights=True)
        try:
            # fit raises on a non-finite loss; numpy's overflow warnings on the way there
            # would only add lines to the one-line message.
            with np.errstate(over="ignore", invalid="ignore"):
                history = fit(model, x, y, loss=losses.MSELoss(), optimizer=optimizer,
                              epochs=self.epochs, batch_size=self.batch_size,
                              validation_data=(xv, yv), seed=seed,
                              callbacks=[*([stopper] if stopper else []),
                                         *(callbacks or ())],
                              verbose=1 if self.verbose and callbacks is not None else 0,
                              distributed=self.distributed,
                              log_every=max(1, self.epochs // 15))
        except FloatingPointError:
            raise ForecastError("training diverged with {lr}: the loss is no longer finite; "
                                "use a smaller {lr_} (default: 0.003)",
                                lr=_param("lr", f"{self.lr:g}"), lr_=_param("lr")) from None
        except MemoryError:
            raise self._out_of_memory() from None
        return optimizer, history, stopper

    def _out_of_memory(self) -> ForecastError:
        return ForecastError(
            "out of memory with {hidden}, {layers} and {batch}: use smaller ones",
            hidden=_param("hidden", self.hidden), layers=_param("layers", self.layers),
            batch=_param("batch_size", self.batch_size))

    def _features(self) -> int:
        """Values per step of the networks' windows."""
        return len(_hybrid.FEATURES) if self.method == "hybrid" else 1

    def _check_size(self) -> None:
        """A ForecastError when a network would have more than MAX_PARAMETERS."""
        n_parameters = _parameter_count(self.cell, self.hidden, self.layers, self.horizon,
                                        self._features())
        if n_parameters > MAX_PARAMETERS:
            raise ForecastError(
                f"{{cell}} with {{hidden}} and {{layers}} gives {n_parameters:,} parameters, "
                f"more than the {MAX_PARAMETERS:,} {{this}} trains; use a smaller {{h}} or "
                "fewer {l}", cell=_param("cell", self.cell),
                hidden=_param("hidden", self.hidden), layers=_param("layers", self.layers),
                this=_param("this"), h=_param("hidden"), l=_param("layers"))

    def _n_members(self) -> int:
        return self.members if self.members is not None else (
            5 if self.method == "hybrid" else 1)

    def _keep_training(self, trained: list) -> None:
        """The histories and stopping points of the trained members, member 0's as the
        forecaster's `history_` and `best_epoch_`."""
        self.histories_ = [history for _, history, _ in trained]
        optimizer, history, stopper = trained[0]
        self.optimizer_ = optimizer if len(trained) == 1 else None
        self.history_ = history
        epochs_run = len(history["epoch"])
        self.best_epoch_ = stopper.best_epoch if stopper is not None else epochs_run
        self.best_val_loss_ = stopper.best if stopper is not None else None

    def _check_counts(self, counts: tuple, n: int) -> None:
        if min(counts) < 1:
            raise ForecastError(
                f"the series is too short: {{y}} has {n} values, which give "
                f"{counts[0]}/{counts[1]}/{counts[2]} train/validation/test windows with "
                "{lookback} and {horizon}; each part needs one", y=_param("y"),
                lookback=_param("lookback", self.lookback),
                horizon=_param("horizon", self.horizon))

    def _fit_lstm(self, values, transform, n_train, n_val, callbacks) -> dict:
        """The plain method: networks on the transformed series; the origins of each
        span."""
        # Statistics of the training part only: the changes up to the last training step.
        scaler = StandardScaler().fit(transform.encode(values[:n_train])[:, None])
        dtype = np.dtype(self.dtype)
        w = _Windows(values, transform, scaler, self.lookback, self.horizon, dtype)
        spans = _origin_spans(w.target_time - 1, n_train, n_val, len(values), self.horizon)
        counts = tuple(len(spans[span]) for span in ("train", "validation", "test"))
        self._check_counts(counts, len(values))
        self._check_size()
        try:
            members = [Sequential(
                CELLS[self.cell](1, self.hidden, num_layers=self.layers, batch_first=True,
                                 dtype=dtype, seed=self.seed + 2 * k,
                                 n_threads=self.n_threads),
                LastStep(batch_first=True),
                Linear(self.hidden, self.horizon, dtype=dtype, seed=self.seed + 2 * k + 1))
                for k in range(self._n_members())]
        except MemoryError:
            raise self._out_of_memory() from None
        self.model_ = members[0] if len(members) == 1 else Ensemble(*members)
        self.scaler_, self.transform_ = scaler, transform.name
        self.n_windows_ = counts
        first = w.target_time[0] - 1   # the origin of window 0
        train, val = spans["train"] - first, spans["validation"] - first
        self._keep_training([
            self._train(m, w.x[train], w.y[train], w.x[val], w.y[val], self.seed + k,
                        callbacks if k == 0 else None)
            for k, m in enumerate(members)])
        return spans

    def _fit_hybrid(self, values, transform, n_train, n_val, callbacks) -> dict:
        """The hybrid: the base of ETS and SARIMA with the smaller validation error,
        corrected by an ensemble of LSTMs (`lstm_native._hybrid`); the origins of each
        span."""
        bases = {b.name: b for b in self.baselines_ if b.name in _hybrid.BASES}
        if not bases and self._unfitted:
            why = "; ".join(self._unfitted.values())
            raise ForecastError(f"{{method}} found no base for {{y}}: {_braced(why)}; use "
                                "{lstm}", method=_param("method", "hybrid"), y=_param("y"),
                                lstm=_param("method", "lstm"))
        if not bases:
            raise ForecastError("{method} needs ETS and SARIMA from statsmodels: pip install "
                                "'lstm_native[forecasting]' (or use {lstm})",
                                method=_param("method", "hybrid"),
                                lstm=_param("method", "lstm"))
        self.transform_ = transform.name
        log = transform.log
        n_fit = n_train + n_val
        paths = {name: _hybrid.base_path(b, values, self.horizon, log)
                 for name, b in bases.items()}
        val_origins = np.arange(n_train - 1, n_fit - 1)

        def val_error(name):
            first = paths[name][val_origins, 0]
            ok = np.isfinite(first)
            return _rmse(_hybrid.from_model_space(first[ok], log), values[val_origins[ok] + 1])

        self.base_ = min(paths, key=val_error)
        data = _hybrid.HybridData(_hybrid.to_model_space(values, log), paths[self.base_],
                                  self.lookback, n_train=n_train)
        self.hybrid_stats_ = data.stats
        spans = _origin_spans(data.origin, n_train, n_val, len(values), self.horizon)
        counts = tuple(int(len(spans[k])) for k in ("train", "validation", "test"))
        self._check_counts(counts, len(values))
        self.n_windows_ = counts
        dtype = np.dtype(self.dtype)
        self._check_size()
        try:
            members = _hybrid.members(self._n_members(), CELLS[self.cell], self.hidden,
                                      self.layers, self.horizon, dtype=dtype, seed=self.seed,
                                      n_threads=self.n_threads)
        except MemoryError:
            raise self._out_of_memory() from None
        self.model_ = members[0] if len(members) == 1 else Ensemble(*members)
        rows = {k: np.searchsorted(data.origin, spans[k]) for k in ("train", "validation")}
        x, y = data.x.astype(dtype), data.y.astype(dtype)
        self._keep_training([
            self._train(m, x[rows["train"]], y[rows["train"]], x[rows["validation"]],
                        y[rows["validation"]], self.seed + k, callbacks if k == 0 else None)
            for k, m in enumerate(members)])
        return spans

    # -- what a fitted forecaster does -------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("this Forecaster is not fitted: call fit or load first")

    def _network(self):
        """The recurrent layer of the (first) network."""
        first = self.model_.members[0] if isinstance(self.model_, Ensemble) else self.model_
        return first.layers[0]

    def _precision(self) -> str | None:
        """The fitted networks' precision when quantized (`quantized` may have been set
        since), else None."""
        return getattr(self._network(), "precision", None)

    def describe(self) -> str:
        """What the fitted forecaster computes, in a line."""
        self._check_fitted()
        layer, n = self._network(), len(getattr(self.model_, "members", (0,)))
        layers, precision = layer.num_layers, self._precision()
        # A quantized layer is named after the float layer it came from.
        name = (type(layer).__name__ if precision is None
                else layer.get_config()["float"]["type"])
        net = (f"{name}({layer.hidden_size} hidden, {layers} "
               f"layer{'s' * (layers > 1)}) -> last step -> Linear({self.horizon})"
               + (f" in {precision}" if precision is not None else ""))
        ensemble = f"the median of {n} networks " if n > 1 else ""
        if self.method == "hybrid":
            base = next(b for b in self.baselines_ if b.name == self.base_).describe()
            text = (f"{base} corrected by {ensemble or 'a network '}{net} reading "
                    f"{self.lookback} steps of the series' changes, the base's errors and "
                    f"its next step, predicting its next {self.horizon} errors")
            if self.combine:
                text += "; the forecast is the median of this, ETS's and SARIMA's"
            return text
        diff = self.transform_ != "none"
        return (f"{ensemble}{net}; reads {self.lookback} {'changes' if diff else 'values'} "
                f"({self.transform_}, standardised on the training part), predicts the next "
                f"{self.horizon}")

    def _check_series(self, values: np.ndarray) -> _Transform:
        """The transform of the fitted model, once `values` are checked to suit it."""
        transform = _Transform(self.transform_)
        if transform.log and not np.all(values > 0):
            raise ForecastError("the model works on log-differences, but {y} has values <= 0",
                                y=_param("y"))
        _check_length(len(values), self.lookback, self.horizon, transform.first,
                      self._features(), limit=MAX_WINDOW_VALUES)
        return transform

    def _inputs(self, values: np.ndarray):
        """The model's view of `values`: (origins (N,), x, standardised targets (N, h)
        (NaN past the end), and for the hybrid the bases' paths in model space)."""
        transform = self._check_series(values)
        if self.method == "hybrid":
            paths = {b.name: _hybrid.base_path(b, values, self.horizon, transform.log)
                     for b in self.baselines_ if b.name in _hybrid.BASES}
            z = _hybrid.to_model_space(values, transform.log)
            data = _hybrid.HybridData(z, paths[self.base_], self.lookback,
                                      stats=self.hybrid_stats_)
            return data.origin, data.x.astype(self.model_.dtype), data.y, paths
        w = _Windows(values, transform, self.scaler_, self.lookback, self.horizon,
                     self.model_.dtype)
        return w.target_time - 1, w.x, w.y, None

    def _forecasts(self, values: np.ndarray, origins: np.ndarray, what: str,
                   inputs=None) -> np.ndarray:
        """The forecasts (levels, (N, horizon)) from each of `origins`, which the
        model's windows must reach (`_inputs`)."""
        all_origins, x, _, paths = inputs or self._inputs(values)
        rows = np.searchsorted(all_origins, origins)
        log = _Transform(self.transform_).log
        if paths is None:
            u = _unscale(self.scaler_, predict(self.model_, x[rows]))
            pred = _Transform(self.transform_).decode(u, values[origins])
        else:
            z = paths[self.base_][origins] + _hybrid.correct(self.model_, x[rows],
                                                             self.hybrid_stats_["sigma"])
            pred = _hybrid.from_model_space(z, log)
            if self.combine and len(paths) > 1:
                # The median of the hybrid's, ETS's and SARIMA's forecasts.
                pred = np.median(np.stack(
                    [pred, *(_hybrid.from_model_space(p[origins], log)
                             for p in paths.values())]), axis=0)
        _check_levels(pred, what)
        return pred

    def _actual(self, values: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """The values the forecasts from `origins` aim at: (N, horizon)."""
        return values[origins[:, None] + 1 + np.arange(self.horizon)]

    def _model_errors(self, values: np.ndarray, origins: np.ndarray,
                      pred: np.ndarray) -> np.ndarray:
        """actual - forecast of the forecasts `pred` from `origins`, in the model's space
        (the log for a log-differenced series): (N, horizon)."""
        log = _Transform(self.transform_).log
        # A forecast that underflowed to 0 has an infinite error: an unbounded interval.
        with np.errstate(divide="ignore", invalid="ignore"):
            return (_hybrid.to_model_space(self._actual(values, origins), log)
                    - _hybrid.to_model_space(pred, log))

    def _interval_bounds(self, values: np.ndarray, origins: np.ndarray, pred: np.ndarray,
                         levels=_intervals.LEVELS) -> dict:
        """{level: (lower, upper)} of the forecasts `pred` from `origins` (ascending) of
        `values`, each calibrated on the errors known at its origin
        (`_intervals.recent_half_widths`: the validation part's, then these forecasts' own
        as their targets are observed)."""
        errors = self._model_errors(values, origins, pred)   # once for all the levels
        return {level: self._bounds(pred, _intervals.recent_half_widths(
                    self.calibration_, errors, origins, level)) for level in levels}

    def _interval_scores(self, values: np.ndarray, origins: np.ndarray,
                         pred: np.ndarray) -> dict:
        """At each of `_intervals.LEVELS`: the share of the actual values inside the
        intervals of the forecasts `pred` from `origins` (`_interval_bounds`) and their
        mean width (None when unbounded)."""
        scores = {}
        actual = self._actual(values, origins)
        for level, (lower, upper) in self._interval_bounds(values, origins, pred).items():
            width = float(np.mean(upper - lower))
            scores[_intervals.label(level)] = {
                "coverage": _intervals.coverage(actual, lower, upper),
                "width": width if math.isfinite(width) else None}
        return scores

    def _bounds(self, pred: np.ndarray, half_width: np.ndarray) -> tuple:
        """(lower, upper): `pred` -+ `half_width` in the model's space, as levels."""
        log = _Transform(self.transform_).log
        z = _hybrid.to_model_space(pred, log)
        return (_hybrid.from_model_space(z - half_width, log),
                _hybrid.from_model_space(z + half_width, log))

    def _score(self, values: np.ndarray, origins: np.ndarray, what: str,
               inputs=None, pred=None) -> dict:
        """The errors of the forecasts from `origins` (`pred` when computed already) and
        of the baselines' there; the intervals' coverage when calibrated."""
        inputs = inputs or self._inputs(values)
        actual = self._actual(values, origins)
        if pred is None:
            pred = self._forecasts(values, origins, what, inputs)
        rows = np.searchsorted(inputs[0], origins)
        loss = float(np.mean((predict(self.model_, inputs[1][rows]) - inputs[2][rows]) ** 2))
        scores = {"rmse": _rmse(pred, actual), "loss": loss, "windows": len(origins),
                  "baselines": {}, "baseline_models": {}}
        for b in self.baselines_:
            if origins.min() >= b.first_origin():
                scores["baselines"][b.name] = _rmse(b.forecast(values, origins, self.horizon),
                                                    actual)
                scores["baseline_models"][b.name] = b.describe()
        scores["naive_rmse"] = scores["baselines"]["naive"]
        best = min(scores["baselines"], key=scores["baselines"].get)
        scores["best_baseline"] = best
        best_rmse = scores["baselines"][best]
        scores["ratio_to_best"] = scores["rmse"] / best_rmse if best_rmse > 0 else None
        if getattr(self, "calibration_", None) is not None:
            scores["intervals"] = self._interval_scores(values, origins, pred)
            scores["calibration_windows"] = len(self.calibration_)
        return scores

    def _spans(self, values: np.ndarray, inputs) -> dict:
        """The origins of each span of `values` (`SPANS`) the model's windows reach."""
        n_train, n_val, _ = (len(part) for part in chronological_split(
            values, self.train_fraction, self.val_fraction))
        return _origin_spans(inputs[0], n_train, n_val, len(values), self.horizon)

    def score(self, y, *, span: str = "test", dates=None, column=None,
              date_column=None) -> dict:
        """The forecaster's error on a span of the series `y`, against the naive
        forecast's (next = last).

        Parameters
        ----------
        y : array-like of shape (T,), pandas Series or DataFrame
            As for `fit`.
        span : {"test", "validation", "train", "all"}, default "test"
            The windows whose targets fall in that part of `y` (split by
            `train_fraction` and `val_fraction`), or every window ("all": on the
            fitted series, the training windows included).

        Returns
        -------
        dict
            ``rmse`` and ``naive_rmse`` of the forecasts' levels, ``baselines``,
            ``baseline_models``, ``best_baseline`` and ``ratio_to_best`` (as in
            `results_`; a baseline that cannot forecast from the span's first origin is
            left out), ``loss`` (MSE of the standardised targets), ``windows``
            (their count), and ``intervals`` and ``calibration_windows`` (as in
            `results_`: the prediction intervals' coverage of the span's values; an
            out-of-sample figure for the test span only, as the pool starts from the
            validation part's errors, which come after the training part's origins).

        Raises
        ------
        ForecastError
            `y` is too short for one window (one in the span), or has values <= 0 for
            a model of log-differences, or overflows on the way.
        """
        self._check_fitted()
        if span not in SPANS:
            raise ValueError(f"span must be one of {', '.join(map(repr, SPANS))}, got "
                             f"{span!r}")
        values = dated.read_series(y, dates, column, date_column)[0]
        inputs = self._inputs(values)
        try:
            origins = self._spans(values, inputs)[span]
        except ValueError as e:
            raise ForecastError(f"the series is too short to split: {_braced(e)}") from None
        if not len(origins):
            raise ForecastError(f"the series is too short: {{y}} has {len(values)} "
                                f"values, which give no {span} window", y=_param("y"))
        what = ("the model's predictions on the series" if span == "all"
                else "the model's forecasts")
        return self._score(values, origins, what, inputs)

    def future_dates(self, steps: int, y=None, *, dates=None, column=None,
                     date_column=None):
        """The dates of the `steps` values after the end of `y` (default: the fitted
        series), or None when it has none: a pandas index for pandas dates, else a
        datetime64 array, one step of the last two dates apart."""
        check_int(steps, "steps", 1)
        if y is None:
            self._check_fitted()
            dates = self._dates if dates is None else dates
        else:
            dates = dated.read_series(y, dates, column, date_column)[1]
        if dates is None or len(dates) < 2:
            return None
        return dated.future_dates(dates, steps)

    def predict(self, steps: int = 1, y=None, *, dates=None, column=None, date_column=None):
        """The next `steps` values after the end of `y` (default: the fitted series),
        one step at a time, each prediction fed back as an input.

        Returns
        -------
        ndarray of shape (steps,), or pandas Series
            A pandas Series when `y` was a pandas object, indexed by the future dates
            when `y` had dates.

        Raises
        ------
        ForecastError
            As `score`; or the forecast leaves float64's range (it names the first step
            that does, and how many steps stay finite).
        """
        values, future, index, pd = self._future(steps, y, dates, column, date_column)
        if pd is None:
            return future
        return pd.Series(future, index=self._future_index(pd, index, len(values), steps))

    def predict_interval(self, steps: int = 1, y=None, *, levels=_intervals.LEVELS,
                         dates=None, column=None, date_column=None):
        """`predict`'s forecast with split-conformal prediction intervals
        (`lstm_native._intervals`).

        The most recent one-step errors calibrate the first step: as many as the
        validation part gave, the last of the validation part's followed by those of the
        test part of `y` (its last ``1 - train_fraction - val_fraction``); later steps
        widen as the recursive forecast carries an error forward (its response to a
        change of its first value). `results_["intervals"]` gives their coverage on the
        test part.

        Parameters
        ----------
        steps, y, dates, column, date_column
            As for `predict`.
        levels : sequence of float in (0, 1), default (0.8, 0.95)
            The nominal coverages.

        Returns
        -------
        dict of ndarray of shape (steps,), or pandas DataFrame
            ``forecast`` and, per level, ``lower_80`` and ``upper_80`` (the level in
            percent); a DataFrame of those columns, indexed as `predict`'s Series, when
            `y` was a pandas object. A level the validation part has too few windows for
            (fewer than 1 / (1 - level) - 1) gives bounds of -inf and inf (0 and inf
            for a log-differenced series).

        Raises
        ------
        ForecastError
            As `predict`.
        ValueError
            The forecaster was loaded from a file saved without its calibration.
        """
        levels = _intervals.check_levels(levels)
        if getattr(self, "calibration_", None) is None:
            self._check_fitted()
            raise ValueError("this Forecaster has no calibration errors (saved by an "
                             "earlier version): fit it again for intervals")
        values, future, index, pd = self._future(steps, y, dates, column, date_column)
        log = _Transform(self.transform_).log
        one_step = self._recent_errors(values)
        finite = one_step[np.isfinite(one_step)]
        shift = float(np.sqrt(np.mean(finite ** 2))) if len(finite) else 0.0
        shift = shift or 1.0   # a typical error
        psi = np.empty(0)
        if steps > 1:
            # The forecast again with its first value moved by `shift` (model space).
            z = _hybrid.to_model_space(future, log)
            moved = _hybrid.from_model_space(z[:1] + shift, log)
            with np.errstate(invalid="ignore", over="ignore"):
                again = _hybrid.to_model_space(
                    self._continue(np.append(values, moved), steps - 1), log)
                psi = np.where(np.isfinite(again), (again - z[1:]) / shift, np.inf)
        growth = _intervals.growth(psi)
        out = {"forecast": future}
        for level in levels:
            half = _intervals.half_widths(one_step[:, None], level)[0] * growth
            with np.errstate(invalid="ignore", over="ignore"):
                lower, upper = self._bounds(future, half)
            out[f"lower_{_intervals.label(level)}"] = lower
            out[f"upper_{_intervals.label(level)}"] = upper
        if pd is None:
            return out
        return pd.DataFrame(out, index=self._future_index(pd, index, len(values), steps))

    def _recent_errors(self, values: np.ndarray) -> np.ndarray:
        """The one-step errors that calibrate a forecast from the end of `values`: the
        last len(calibration_) of the validation part's followed by those of the test
        part of `values` (all observed by its end); the validation part's alone when
        `values` is too short for a test part."""
        try:
            inputs = self._inputs(values)
            origins = self._spans(values, inputs)["test"]
        except ValueError:   # too short to split, or a ForecastError: for a window
            origins = np.empty(0, np.int64)
        errors = self.calibration_[:, 0]
        if len(origins):
            pred = self._forecasts(values, origins, "the model's forecasts", inputs)
            errors = np.concatenate([errors, self._model_errors(values, origins, pred)[:, 0]])
        return errors[-len(self.calibration_):]

    def _future(self, steps, y, dates, column, date_column) -> tuple:
        """(values, the next `steps` values (finite), their dates or None, the pandas
        module or None) of `predict`."""
        self._check_fitted()
        check_int(steps, "steps", 1)
        if y is None:
            if getattr(self, "_values", None) is None:
                raise ValueError("y is needed: a loaded Forecaster keeps no series")
            values, dates, pd = self._values, self._dates if dates is None else dates, \
                self._pandas
        else:
            values, dates, pd = dated.read_series(y, dates, column, date_column)
        future = self._continue(values, steps)
        index = (dated.future_dates(dates, steps) if dates is not None and len(dates) >= 2
                 else None)
        bad = ~np.isfinite(future)
        if bad.any():
            # Each value builds on the ones before it: stop at the first that left float64.
            k = int(np.argmax(bad))
            label = str(index[k]) if index is not None else f"t+{k + 1}"
            fewer = "; {steps} or fewer give finite values" if k else ""
            raise ForecastError(f"the forecast is not finite from step {k + 1} ({label}) on: "
                                f"it grows past float64's range{fewer}",
                                steps=_param("steps", k))
        return values, future, index, pd

    @staticmethod
    def _future_index(pd, index, n: int, steps: int):
        """The index of a pandas forecast: the future dates, else the steps after `n`."""
        return index if index is not None else pd.RangeIndex(n, n + steps)

    def _continue(self, values: np.ndarray, steps: int) -> np.ndarray:
        """The next `steps` values after `values`, recursively (inf from the first that
        leaves float64's range, for the hybrid)."""
        return (self._continue_hybrid(values, steps) if self.method == "hybrid"
                else self._continue_lstm(values, steps))

    def _continue_lstm(self, values: np.ndarray, steps: int) -> np.ndarray:
        transform, dtype = self._check_series(values), self.model_.dtype
        encoded = _scale(self.scaler_, transform.encode(values))

        def predict_one(window):
            return predict(self.model_, window.astype(dtype))[:, :1]

        future_u = forecast_recursive(predict_one, encoded, steps, lookback=self.lookback)
        future_u = _unscale(self.scaler_, future_u.T)[0]
        return transform.decode(future_u[None, :], values[-1:])[0]

    def _continue_hybrid(self, values: np.ndarray, steps: int) -> np.ndarray:
        """The next `steps` values, each one step ahead of the series extended by the
        ones before it (the bases' states follow the forecasts as observations); inf
        from the first that leaves float64's range."""
        extended = values
        future = np.full(steps, np.inf)
        for k in range(steps):
            origin = np.array([len(extended) - 1])
            try:
                future[k] = self._forecasts(extended, origin, "the forecast")[0, 0]
            except ForecastError:
                break
            extended = np.append(extended, future[k])
        return future

    # -- plots ---------------------------------------------------------------------------

    def plot(self, folder: str, *, title: str = "the series", x_label: str = "time step",
             y_label: str = "value", steps: int = 12):
        """Write forecast.png (the fitted series and its one-step forecasts, the parts
        shaded, the prediction intervals over the test part and the next `steps` values
        with theirs) and loss.png (the losses per epoch) into `folder`, when matplotlib
        is installed.

        Returns
        -------
        (list of str, str or None)
            The paths written, and the message saying why none were (matplotlib missing).
        """
        self._check_fitted()
        if getattr(self, "_values", None) is None:
            raise ValueError("plot needs the fitted series: a loaded Forecaster keeps none")
        return _forecast_plots.plot(self, folder, title=title, x_label=x_label,
                                    y_label=y_label, steps=steps)

    # -- save and load -------------------------------------------------------------------

    def settings(self) -> dict:
        """The settings a checkpoint keeps: the parameters, the transform resolved, the
        fitted networks' precision (`quantized`), the threads as an int (0 = all cores)."""
        return {"cell": self.cell, "lookback": self.lookback, "horizon": self.horizon,
                "hidden": self.hidden, "layers": self.layers,
                "transform": getattr(self, "transform_", self.transform),
                "epochs": self.epochs, "patience": self.patience,
                "batch_size": self.batch_size, "lr": self.lr, "seed": self.seed,
                "dtype": np.dtype(self.dtype).name, "threads": self.n_threads or 0,
                "train_fraction": self.train_fraction, "val_fraction": self.val_fraction,
                "method": self.method, "members": self._n_members(),
                "season": getattr(self, "season_", self.season), "combine": self.combine,
                "quantized": self._precision() if hasattr(self, "model_") else self.quantized}

    def save(self, path, *, source: dict | None = None) -> None:
        """Save the fitted forecaster as one checkpoint (`lstm_native.save_checkpoint`):
        the model and its optimizer's state, and in its `extra` the settings, the
        scaler's state, the results and the history.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (replaced atomically).
        source : dict, optional
            JSON values kept first in the settings, e.g. where the series came from
            (``{"data": ..., "column": ...}``); `load` gives them back in `settings_`.
        """
        self._check_fitted()
        save_checkpoint(path, self.model_, getattr(self, "optimizer_", None),
                        epoch=self.results_.get("epochs") if self.results_ else None,
                        extra=_saved_extra(self, source))

    @classmethod
    def load(cls, path) -> Forecaster:
        """A forecaster saved by `save`, ready to `predict` and `score` (not to `plot`:
        the series is not saved).

        The settings are checked: lookback and horizon ints >= 1, a known transform, the
        source's data, column and date column as text or null, a cell of `CELLS` (files
        saved before the cell was a setting have none: theirs is "lstm"), and every
        other parameter in the constructor's range; the model is a Sequential whose
        first layer is that cell's (an Ensemble of `members` of them; for a `quantized`
        forecaster their quantized forms, every layer with weights in its precision), and
        reads windows of `lookback` steps into `horizon` outputs; the baselines', the
        hybrid's or the
        scaler's state and the calibration errors load. `settings_` holds the settings
        as saved (the cell filled in).

        Raises
        ------
        CheckpointError
            The file is not a checkpoint (as `lstm_native.load_checkpoint`).
        ForecastError
            A checkpoint, but not of a forecaster, or one whose parts disagree.
        OSError
            The file cannot be read.
        """
        loaded = load_checkpoint(path)
        path = os.fspath(path)
        where = _param("path", repr(path))
        extra = loaded["extra"] or {}
        settings = _loaded_settings(extra, where)
        method = settings["method"]
        baselines = _loaded_baselines(extra.get("baselines"), where)
        if method == "hybrid":
            stats, base = _loaded_hybrid(extra["hybrid"], baselines, where)
        else:
            scaler = _loaded_scaler(extra["scaler"], where)
        model = loaded["model"]
        _check_loaded_model(model, settings, where)
        calibration = _loaded_calibration(extra.get("calibration"), settings["horizon"],
                                          where)

        params = {name: settings[name] for name in
                  ("lookback", "horizon", "cell", "transform", "hidden", "layers", "epochs",
                   "patience", "batch_size", "lr", "seed", "dtype", "train_fraction",
                   "val_fraction", "method", "members", "season", "combine", "quantized")
                  if name in settings}
        forecaster = cls(**params)
        forecaster.n_threads = settings.get("threads") or None
        try:   # what a refit would use: the constructor's ranges (the file is untrusted)
            forecaster._checked_params()
        except (TypeError, ValueError) as e:
            raise ForecastError(f"{{path}}: its settings are damaged: {_braced(e)}",
                                path=where) from None
        forecaster.model_, forecaster.baselines_ = model, baselines
        forecaster.season_ = settings.get("season") or 1
        if method == "hybrid":
            forecaster.hybrid_stats_, forecaster.base_ = stats, base
        else:
            forecaster.scaler_ = scaler
        forecaster.transform_ = settings["transform"]
        forecaster.calibration_ = calibration
        forecaster.results_ = extra.get("results")
        forecaster.history_ = extra.get("history")
        forecaster.settings_ = settings
        forecaster._values = forecaster._dates = forecaster._pandas = None
        return forecaster
