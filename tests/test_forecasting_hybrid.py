"""The hybrid forecaster (ETS or SARIMA corrected by an LSTM ensemble) and the
baselines every forecaster reports: their numbers against lstm_native.baselines called
directly, the correction's bounds, the combination, recursion and errors."""
from __future__ import annotations

import numpy as np
import pytest

from lstm_native import GRU, LSTM, Ensemble, Sequential
from lstm_native import _hybrid, forecasting
from lstm_native.baselines import ETS, SARIMA, Naive, SeasonalNaive
from lstm_native.forecasting import Forecaster, ForecastError

pytest.importorskip("statsmodels")

SMALL = {"lookback": 6, "hidden": 4, "epochs": 3, "batch_size": 32, "members": 3,
         "season": 12}


def seasonal(n=120, seed=0):
    """A positive monthly-like series: trend, yearly season, noise."""
    t = np.arange(n)
    noise = np.random.default_rng(seed).normal(0, 1.0, n)
    return 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / 12) + noise


@pytest.fixture(scope="module")
def hybrid():
    return Forecaster(method="hybrid", **SMALL).fit(seasonal())


def _split(n):
    return round(n * 0.7), round(n * 0.15)


def test_baselines_are_those_of_lstm_native_baselines(hybrid):
    y = seasonal()
    n_train, n_val = _split(len(y))
    n_fit = n_train + n_val
    origins = np.arange(n_fit - 1, len(y) - 1)
    actual = y[origins + 1]
    results = hybrid.results_
    for baseline in (Naive(), SeasonalNaive(12), ETS(12), SARIMA(12)):
        pred = baseline.fit(y[:n_fit]).forecast(y, origins, 1)[:, 0]
        rmse = np.sqrt(np.mean((pred - actual) ** 2))
        assert results["baselines"][baseline.name] == pytest.approx(rmse, rel=1e-12)
        assert results["baseline_models"][baseline.name] == baseline.describe()
    best = min(results["baselines"], key=results["baselines"].get)
    assert results["best_baseline"] == best
    assert results["ratio_to_best"] == pytest.approx(results["rmse"]
                                                     / results["baselines"][best])
    assert results["naive_rmse"] == results["baselines"]["naive"]


def test_the_forecast_is_the_median_of_the_hybrid_ets_and_sarima(hybrid):
    y = seasonal()
    origins, x, _, paths = hybrid._inputs(y)
    test = hybrid._spans(y, (origins, x, None, paths))["test"]
    rows = np.searchsorted(origins, test)
    correction = _hybrid.correct(hybrid.model_, x[rows], hybrid.hybrid_stats_["sigma"])
    corrected = np.exp(paths[hybrid.base_][test] + correction)
    ets, sarima = np.exp(paths["ETS"][test]), np.exp(paths["SARIMA"][test])
    expected = np.median(np.stack([corrected, ets, sarima]), axis=0)
    np.testing.assert_allclose(hybrid._forecasts(y, test, "test"), expected, rtol=1e-12)
    actual = y[test + 1]
    rmse = np.sqrt(np.mean((expected[:, 0] - actual) ** 2))
    assert hybrid.results_["rmse"] == pytest.approx(rmse, rel=1e-12)


def test_the_correction_is_clipped_to_clip_sigmas(hybrid):
    y = seasonal()
    origins, x, _, paths = hybrid._inputs(y)
    member_outputs = hybrid.model_.outputs(x)
    sigma = hybrid.hybrid_stats_["sigma"]
    correction = _hybrid.correct(hybrid.model_, x, sigma)
    assert np.all(np.abs(correction) <= _hybrid.CLIP * sigma + 1e-12)
    clipped = np.clip(member_outputs.astype(np.float64), -_hybrid.CLIP, _hybrid.CLIP)
    np.testing.assert_allclose(correction, np.median(clipped, axis=0) * sigma, rtol=1e-12)


def test_members_start_from_the_base_forecast():
    nets = _hybrid.members(2, LSTM, 4, 1, 3, dtype=np.float64, seed=0, n_threads=1)
    x = np.random.default_rng(0).normal(size=(5, 6, len(_hybrid.FEATURES)))
    for net in nets:
        np.testing.assert_array_equal(net(x), np.zeros((5, 3)))


def test_features_and_targets_by_hand():
    z = np.array([0.0, 1.0, 3.0, 6.0, 10.0, 15.0])
    base = np.column_stack([z + 1.5, z + 2.5])          # forecasts of z[t+1], z[t+2]
    base[0] = np.nan
    data = _hybrid.HybridData(z, base, 2, stats={"mean": np.zeros(3), "std": np.ones(3),
                                                 "sigma": 2.0})
    # Origin t needs change[t-1..t] and error[t-1..t]: error[t] needs base[t-1], so t >= 3.
    np.testing.assert_array_equal(data.origin, [3, 4, 5])
    change = np.diff(z, prepend=np.nan)
    error = z - np.r_[np.nan, base[:-1, 0]]
    step = base[:, 0] - z
    np.testing.assert_array_equal(data.x[0], np.column_stack([change, error, step])[2:4])
    # Targets: (z[t+j] - base[t, j-1]) / sigma; NaN past the end.
    np.testing.assert_array_equal(data.y[0], [(z[4] - base[3, 0]) / 2, (z[5] - base[3, 1]) / 2])
    assert np.isnan(data.y[2]).all() and np.isnan(data.y[1, 1])


def test_score_and_predict(hybrid):
    y = seasonal()
    test = hybrid.score(y)
    assert test["rmse"] == pytest.approx(hybrid.results_["rmse"], rel=1e-12)
    assert test["baselines"] == pytest.approx(hybrid.results_["baselines"], rel=1e-12)
    future = hybrid.predict(3)
    first = hybrid._forecasts(y, np.array([len(y) - 1]), "x")[0, 0]
    assert future[0] == pytest.approx(first, rel=1e-12)
    second = hybrid._forecasts(np.append(y, future[0]), np.array([len(y)]), "x")[0, 0]
    assert future[1] == pytest.approx(second, rel=1e-12)
    assert isinstance(hybrid.model_, Ensemble) and len(hybrid.model_) == 3


def test_without_combination_the_forecast_is_the_corrected_base():
    y = seasonal()
    f = Forecaster(method="hybrid", combine=False, **SMALL).fit(y)
    origins, x, _, paths = f._inputs(y)
    rows = np.arange(len(origins) - 1)
    expected = np.exp(paths[f.base_][origins[rows]]
                      + _hybrid.correct(f.model_, x[rows], f.hybrid_stats_["sigma"]))
    np.testing.assert_allclose(f._forecasts(y, origins[rows], "x"), expected, rtol=1e-12)


def test_the_base_is_the_one_with_the_smaller_validation_error(hybrid):
    y = seasonal()
    n_train, n_val = _split(len(y))
    origins = np.arange(n_train - 1, n_train + n_val - 1)
    errors = {}
    for b in (ETS(12), SARIMA(12)):
        pred = b.fit(y[:n_train + n_val]).forecast(y, origins, 1)[:, 0]
        errors[b.name] = np.sqrt(np.mean((pred - y[origins + 1]) ** 2))
    assert hybrid.base_ == min(errors, key=errors.get)


def test_an_lstm_ensemble():
    f = Forecaster(method="lstm", members=2, lookback=6, hidden=4, epochs=2).fit(seasonal())
    assert isinstance(f.model_, Ensemble) and len(f.histories_) == 2
    assert all(isinstance(m, Sequential) for m in f.model_.members)
    assert np.isfinite(f.results_["rmse"]) and f.predict(2).shape == (2,)


def test_the_hybrid_needs_statsmodels(monkeypatch):
    monkeypatch.setattr(forecasting, "standard_baselines",
                        lambda season: [Naive()])
    with pytest.raises(ForecastError, match="method=hybrid needs ETS and SARIMA"):
        Forecaster(method="hybrid", **SMALL).fit(seasonal())


def test_the_hybrid_is_the_default():
    f = Forecaster(lookback=6, hidden=4, epochs=2, members=2, season=12).fit(seasonal())
    assert f.method == "hybrid" and f.base_ in ("ETS", "SARIMA")
    assert "corrected by the median of 2 networks" in f.describe()


def test_a_series_neither_base_can_model_is_an_error_naming_them():
    # Alternating +-1.7e308: no ETS or SARIMA fit is finite; the message says so (not
    # that statsmodels is missing) and points at the plain method.
    y = np.array([1.7e308, -1.7e308] * 40)
    with pytest.raises(ForecastError) as raised:
        Forecaster(**SMALL).fit(y)
    text = str(raised.value)
    assert "method=hybrid found no base for y" in text and "method=lstm" in text
    assert "no ETS model could be fitted" in text and "no SARIMA model" in text
    assert "statsmodels" not in text


@pytest.mark.parametrize("params,error,message", [
    ({"method": "arima"}, ValueError, "method must be one of"),
    ({"members": 0}, ValueError, "members"),
    ({"season": 0}, ValueError, "season"),
    ({"combine": "yes"}, TypeError, "combine must be True or False"),
    ({"distributed": 1}, TypeError, "distributed must be True or False"),
])
def test_bad_parameters(params, error, message):
    with pytest.raises(error, match=message):
        Forecaster(**params).fit(seasonal())


def test_save_and_load_a_hybrid(hybrid, tmp_path):
    path = tmp_path / "hybrid.npz"
    hybrid.save(path, source={"data": "seasonal", "column": None})
    loaded = Forecaster.load(path)
    y = seasonal()
    assert isinstance(loaded.model_, Ensemble) and loaded.base_ == hybrid.base_
    assert loaded.get_params()["method"] == "hybrid" and loaded.season_ == 12
    np.testing.assert_array_equal(loaded.predict(3, y), hybrid.predict(3, y))
    assert loaded.score(y) == hybrid.score(y)
    assert [b.describe() for b in loaded.baselines_] == [b.describe()
                                                         for b in hybrid.baselines_]


def _resaved(hybrid, tmp_path, change):
    """The hybrid saved, its checkpoint's extra changed by `change`, saved again."""
    import lstm_native as ln
    path = tmp_path / "h.npz"
    hybrid.save(path, source={"data": "seasonal", "column": None})
    loaded = ln.load_checkpoint(path)
    extra = loaded["extra"]
    change(extra)
    ln.save_checkpoint(path, loaded["model"], extra=extra)
    return path


@pytest.mark.parametrize("change,message", [
    (lambda e: e["hybrid"].update(sigma=-1.0), "hybrid state is damaged"),
    (lambda e: e["hybrid"].update(base="naive"), "hybrid state is damaged"),
    (lambda e: e["hybrid"].update(mean=[0.0, 1.0]), "hybrid state is damaged"),
    (lambda e: e.pop("hybrid"), "no settings and hybrid"),
    (lambda e: e["settings"].update(members=2), "say 2 members, its model has 3"),
    (lambda e: e["settings"].update(method="arima"), "settings are damaged"),
    (lambda e: e["baselines"][2].update({"class": "Prophet"}), "baselines do not load"),
    # The parameters a refit would use, in the constructor's ranges.
    (lambda e: e["settings"].update(threads="all"), "settings are damaged: n_threads"),
    (lambda e: e["settings"].update(hidden=0), "settings are damaged: hidden"),
    (lambda e: e["settings"].update(lr=float("nan")), "settings are damaged: lr"),
    (lambda e: e["settings"].update(dtype="float16"), "settings are damaged: dtype"),
])
def test_a_damaged_hybrid_checkpoint_is_refused(hybrid, tmp_path, change, message):
    path = _resaved(hybrid, tmp_path, change)
    with pytest.raises(ForecastError, match=message):
        Forecaster.load(path)


def test_the_hybrids_windows_count_their_three_features(monkeypatch):
    # 120 values, lookback 6: 114 windows of 6 steps of 3 values + 1 = 2166 values.
    monkeypatch.setattr(forecasting, "MAX_WINDOW_VALUES", 2000)
    with pytest.raises(ForecastError, match="6 steps of 3 values"):
        Forecaster(method="hybrid", **SMALL).fit(seasonal())
    Forecaster(method="lstm", **{**SMALL, "epochs": 1}).fit(seasonal())   # 114 * 7 fit


def test_the_hybrids_networks_take_the_cell_and_layers_and_their_size_is_capped(monkeypatch):
    f = Forecaster(method="hybrid", cell="gru", layers=2,
                   **{**SMALL, "members": 2, "epochs": 1}).fit(seasonal())
    for net in f.model_.members:
        assert type(net.layers[0]) is GRU and net.layers[0].num_layers == 2
    assert net.layers[0].input_size == len(_hybrid.FEATURES)
    monkeypatch.setattr(forecasting, "MAX_PARAMETERS", 100)
    with pytest.raises(ForecastError, match="more than the 100"):
        Forecaster(method="hybrid", **SMALL).fit(seasonal())
