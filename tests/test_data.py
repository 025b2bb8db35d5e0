"""The data layer: windows, scalers, the split, forecasting helpers, built-in data, CSV.

Values are checked against hand computations on small made-up series; every error path
checks the exception type and that the message names the argument (or the line) at fault.
"""
from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest

import lstm_native.data as ld
from lstm_native.data import (IGNORE_INDEX, MinMaxScaler, StandardScaler, adding_problem,
                              airline_passengers, chronological_split, copy_task,
                              forecast_recursive, list_datasets, load_csv, load_dataset,
                              make_windows, n_windows, persistence_forecast,
                              scaler_from_state)

AIRLINE_1949 = [112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118]
AIRLINE_1960 = [417, 391, 419, 461, 472, 535, 622, 606, 508, 461, 390, 432]
# Yearly totals of the series (R: aggregate(AirPassengers, FUN = sum)).
AIRLINE_YEARLY = [1520, 1676, 2042, 2364, 2700, 2867, 3408, 3939, 4421, 4572, 5140, 5714]


def test_public_names_exported():
    for name in ld.__all__:
        assert hasattr(ld, name), name
    assert {"make_windows", "StandardScaler", "MinMaxScaler", "chronological_split",
            "forecast_recursive", "persistence_forecast", "load_dataset", "list_datasets",
            "load_csv"} <= set(ld.__all__)


def test_data_layer_imports_nothing_of_the_model():
    import ast
    import pathlib
    folder = pathlib.Path(ld.__file__).parent
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                # relative imports stay inside the data package; absolute ones are not ours
                assert node.level in (0, 1), f"{path.name} imports from outside lstm_native.data"
                assert not (node.module or "").startswith("lstm_native"), path.name
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("lstm_native"), path.name


# -------------------------------------------------------------------------------------
# Windows
# -------------------------------------------------------------------------------------

def test_windows_univariate_by_hand():
    x, y = make_windows(np.arange(6.0), lookback=3, horizon=2)
    assert x.shape == (2, 3, 1) and y.shape == (2, 2, 1)
    np.testing.assert_array_equal(x[:, :, 0], [[0, 1, 2], [1, 2, 3]])
    np.testing.assert_array_equal(y[:, :, 0], [[3, 4], [4, 5]])


def test_windows_stride_and_horizon():
    s = np.arange(10.0)
    x, y = make_windows(s, lookback=3, horizon=2, stride=2)
    # starts 0, 2, 4: (10 - 3 - 2) // 2 + 1 = 3 windows
    np.testing.assert_array_equal(x[:, :, 0], [[0, 1, 2], [2, 3, 4], [4, 5, 6]])
    np.testing.assert_array_equal(y[:, :, 0], [[3, 4], [5, 6], [7, 8]])
    assert n_windows(10, 3, 2, 2) == 3
    assert n_windows(4, 3, 2, 1) == 0
    # stride = lookback: non-overlapping inputs, the last incomplete one dropped
    x, y = make_windows(s, lookback=4, horizon=1, stride=4)
    np.testing.assert_array_equal(x[:, :, 0], [[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(y[:, :, 0], [[4], [8]])


def test_windows_exact_length_gives_one_window():
    x, y = make_windows([1, 2, 3, 4, 5], lookback=3, horizon=2)
    assert x.shape == (1, 3, 1) and y.shape == (1, 2, 1)
    np.testing.assert_array_equal(y[0, :, 0], [4, 5])


def test_windows_multivariate_and_target_columns():
    s = np.arange(20.0).reshape(10, 2)          # column 0 even, column 1 odd numbers
    x, y = make_windows(s, lookback=4)
    assert x.shape == (6, 4, 2) and y.shape == (6, 1, 2)
    for i in range(6):
        np.testing.assert_array_equal(x[i], s[i:i + 4])
        np.testing.assert_array_equal(y[i, 0], s[i + 4])
    _, y1 = make_windows(s, lookback=4, horizon=3, target_columns=1)
    assert y1.shape == (4, 3, 1)
    np.testing.assert_array_equal(y1[0, :, 0], [9, 11, 13])
    _, ylast = make_windows(s, lookback=4, horizon=3, target_columns=[-1])
    np.testing.assert_array_equal(ylast, y1)
    _, ysw = make_windows(s, lookback=4, target_columns=[1, 0])
    np.testing.assert_array_equal(ysw[0, 0], [9, 8])


def test_windows_dtype_and_layout():
    x, y = make_windows(np.arange(8, dtype=np.float32), 3)
    assert x.dtype == np.float32 and y.dtype == np.float32
    x, y = make_windows(np.arange(8), 3)                         # ints -> float64
    assert x.dtype == np.float64
    assert x.flags.c_contiguous and y.flags.c_contiguous
    s = np.arange(8.0)
    x, _ = make_windows(s, 3)
    x[0, 0, 0] = 99.0                                            # a copy, not a view
    assert s[0] == 0.0


def test_windows_too_short_says_steps_and_need():
    with pytest.raises(ValueError, match=r"has 4 steps.*lookback \+ horizon = 3 \+ 2 = 5"):
        make_windows(np.arange(4.0), lookback=3, horizon=2)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(lookback=0), ValueError, "lookback"),
    (dict(lookback=2.0), TypeError, "lookback"),
    (dict(lookback=True), TypeError, "lookback"),
    (dict(lookback=3, horizon=0), ValueError, "horizon"),
    (dict(lookback=3, horizon="1"), TypeError, "horizon"),
    (dict(lookback=3, stride=0), ValueError, "stride"),
    (dict(lookback=3, stride=1.5), TypeError, "stride"),
    (dict(lookback=3, target_columns=2), ValueError, "target_columns"),
    (dict(lookback=3, target_columns=-3), ValueError, "target_columns"),
    (dict(lookback=3, target_columns=[0, 0]), ValueError, "target_columns"),
    (dict(lookback=3, target_columns=[]), ValueError, "target_columns"),
    (dict(lookback=3, target_columns="a"), TypeError, "target_columns"),
    (dict(lookback=3, target_columns=[1.0]), TypeError, "target_columns"),
])
def test_windows_argument_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_windows(np.zeros((10, 2)), **kwargs)


@pytest.mark.parametrize("series,exc,match", [
    (np.zeros((4, 5, 2)), ValueError, "1-D"),
    (np.float64(3.0), ValueError, "1-D"),
    (np.zeros((10, 0)), ValueError, "at least one variable"),
    (["a", "b", "c", "d"], TypeError, "numeric"),
    (np.array([1 + 1j] * 6), TypeError, "numeric"),
    (np.array([1.0, 2.0, np.nan, 4.0, 5.0]), ValueError, "finite.*index 2"),
    (np.array([[1.0, 2.0], [3.0, np.inf]] * 3), ValueError, r"finite.*\(1, 1\)"),
    ([[1.0, 2.0], [3.0]], ValueError, "series"),
])
def test_windows_series_errors(series, exc, match):
    with pytest.raises(exc, match=match):
        make_windows(series, lookback=2)


# -------------------------------------------------------------------------------------
# Scalers
# -------------------------------------------------------------------------------------

@pytest.fixture
def series2():
    rng = np.random.default_rng(0)
    return np.column_stack([10 + 3 * rng.standard_normal(200), -5 + 0.1 * rng.standard_normal(200)])


def test_standard_scaler_statistics_and_round_trip(series2):
    sc = StandardScaler().fit(series2)
    z = sc.transform(series2)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(sc.mean_, series2.mean(axis=0))
    np.testing.assert_allclose(sc.inverse_transform(z), series2, rtol=1e-12)
    np.testing.assert_allclose(StandardScaler().fit_transform(series2), z)


def test_minmax_scaler_range_and_round_trip(series2):
    sc = MinMaxScaler(feature_range=(-1.0, 1.0)).fit(series2)
    z = sc.transform(series2)
    np.testing.assert_allclose(z.min(axis=0), -1.0)
    np.testing.assert_allclose(z.max(axis=0), 1.0)
    np.testing.assert_allclose(sc.inverse_transform(z), series2, rtol=1e-12)
    z01 = MinMaxScaler().fit_transform([0.0, 5.0, 10.0])
    np.testing.assert_allclose(z01, [0.0, 0.5, 1.0])


@pytest.mark.parametrize("cls", [StandardScaler, MinMaxScaler])
def test_scaler_uses_train_statistics_only(cls):
    series = np.concatenate([np.arange(70.0), 1000 + np.arange(30.0)])  # level shift later
    train, val, test = chronological_split(series, 0.7, 0.15)
    sc = cls().fit(train)
    z_val = sc.transform(val)
    if cls is StandardScaler:
        expected = (val - train.mean()) / train.std()
    else:
        expected = (val - train.min()) / (train.max() - train.min())
    np.testing.assert_allclose(z_val, expected)
    # ... not the validation part's own statistics:
    assert not np.allclose(z_val, cls().fit_transform(val))
    assert z_val.min() > 1.0          # far above the training range


def test_scaler_constant_column():
    data = np.column_stack([np.arange(5.0), np.full(5, 7.0)])
    std = StandardScaler().fit(data)
    z = std.transform(data)
    assert np.all(np.isfinite(z))
    np.testing.assert_array_equal(z[:, 1], 0.0)
    assert std.scale_[1] == 1.0
    np.testing.assert_array_equal(std.inverse_transform(z)[:, 1], 7.0)
    mm = MinMaxScaler(feature_range=(2.0, 3.0)).fit(data)
    zm = mm.transform(data)
    np.testing.assert_array_equal(zm[:, 1], 2.0)
    np.testing.assert_array_equal(mm.inverse_transform(zm)[:, 1], 7.0)
    # a value the constant column never took still maps finitely (divisor 1)
    np.testing.assert_allclose(std.transform([[0.0, 8.0]]), [[-2.0 / np.sqrt(2.0), 1.0]])


def test_standard_scaler_statistics_of_huge_values_are_finite():
    # numpy's mean and std overflow past |x| ~ 1e308 and ~ 1e154: the scaler still gets
    # the exact statistics, and maps such values to the usual range and back.
    big = np.array([1.7e308, -1.7e308, 1.7e308, -1.7e308])
    sc = StandardScaler().fit(big)
    assert sc.mean_[0] == 0.0 and sc.scale_[0] == 1.7e308
    np.testing.assert_array_equal(sc.transform(big), [1.0, -1.0, 1.0, -1.0])
    np.testing.assert_array_equal(sc.inverse_transform([1.0, -1.0]), big[:2])
    wide = np.array([0.0, 2e200])
    sc = StandardScaler().fit(wide)
    assert sc.mean_[0] == 1e200 and sc.scale_[0] == 1e200


@pytest.mark.parametrize("cls", [StandardScaler, MinMaxScaler])
def test_scaler_overflow_is_an_error_not_inf(cls):
    # Divided by a spread of 0.5 (or 0.25), multiplied by one of 4 (or 2).
    with pytest.raises(ValueError, match=r"x .*overflows float64 at index 1"):
        cls().fit(np.array([0.0, 0.5])).transform(np.array([0.5, 1e308]))
    with pytest.raises(ValueError, match=r"z .*overflows float64 at index 0"):
        cls().fit(np.array([0.0, 4.0])).inverse_transform(np.array([1e308]))
    # float32 data stay float32: a value past float32's range is an error too.
    with pytest.raises(ValueError, match="overflows float32"):
        cls().fit(np.array([0.0, 1e-40])).transform(np.array([1.0], np.float32))


def test_minmax_scaler_range_past_float64_is_an_error():
    with pytest.raises(ValueError, match="range .*overflows"):
        MinMaxScaler().fit(np.array([-1.7e308, 1.7e308]))


def test_scaler_on_windows_and_target_columns(series2):
    sc = StandardScaler().fit(series2)
    x, y = make_windows(series2, lookback=5, horizon=2, target_columns=[1])
    zx = sc.transform(x)                                      # (N, 5, 2) windows
    np.testing.assert_allclose(zx[3], sc.transform(series2[3:8]))
    zy = sc.transform(y, columns=[1])                         # (N, 2, 1) targets of col 1
    np.testing.assert_allclose(zy[..., 0], (y[..., 0] - sc.mean_[1]) / sc.scale_[1])
    np.testing.assert_allclose(sc.inverse_transform(zy, columns=1), y)


def test_scaler_keeps_float32():
    sc = StandardScaler().fit(np.arange(10.0))
    z = sc.transform(np.arange(10, dtype=np.float32))
    assert z.dtype == np.float32
    assert sc.transform([1, 2, 3]).dtype == np.float64


@pytest.mark.parametrize("cls,kwargs", [(StandardScaler, {}),
                                        (MinMaxScaler, {"feature_range": (-1.0, 2.0)})])
def test_scaler_state_json_round_trip(cls, kwargs, series2):
    sc = cls(**kwargs).fit(series2[:100])
    state = json.loads(json.dumps(sc.get_state()))
    assert state["class"] == cls.__name__ and state["n_features"] == 2
    for back in (cls.from_state(state), scaler_from_state(state)):
        assert type(back) is cls
        np.testing.assert_array_equal(back.transform(series2), sc.transform(series2))
        np.testing.assert_array_equal(back.inverse_transform(series2),
                                      sc.inverse_transform(series2))


def test_scaler_errors_on_use(series2):
    with pytest.raises(RuntimeError, match="not fitted"):
        StandardScaler().transform(series2)
    with pytest.raises(RuntimeError, match="not fitted"):
        MinMaxScaler().get_state()
    sc = StandardScaler().fit(series2)
    with pytest.raises(ValueError, match="last axis"):
        sc.transform(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="1-D"):
        sc.transform(np.zeros(5))
    with pytest.raises(ValueError, match="scalar"):
        sc.transform(1.0)
    with pytest.raises(ValueError, match="columns"):
        sc.transform(np.zeros((5, 1)), columns=[2])
    with pytest.raises(ValueError, match=r"z must have the 1"):
        sc.inverse_transform(np.zeros((5, 2)), columns=[0])
    with pytest.raises(ValueError, match="finite"):
        sc.transform([[1.0, np.nan]])


@pytest.mark.parametrize("train,exc,match", [
    (np.array([]), ValueError, "at least one value"),
    (np.zeros((0, 3)), ValueError, "at least one value"),
    (5.0, ValueError, "scalar"),
    (["a", "b"], TypeError, "train"),
    ([1.0, np.nan], ValueError, "train must contain finite"),
])
def test_scaler_fit_errors(train, exc, match):
    with pytest.raises(exc, match=match):
        StandardScaler().fit(train)


@pytest.mark.parametrize("feature_range,exc", [
    ((1.0, 0.0), ValueError), ((0.0, 0.0), ValueError), ((0.0, np.inf), ValueError),
    ((0.0,), TypeError), (1.0, TypeError), (("a", "b"), TypeError),
])
def test_minmax_feature_range_errors(feature_range, exc):
    with pytest.raises(exc, match="feature_range"):
        MinMaxScaler(feature_range=feature_range)


def test_scaler_from_state_errors():
    good = StandardScaler().fit(np.arange(5.0)).get_state()
    with pytest.raises(TypeError, match="state must be a dict"):
        StandardScaler.from_state([1, 2])
    with pytest.raises(ValueError, match="MinMaxScaler"):
        MinMaxScaler.from_state(good)
    with pytest.raises(ValueError, match="'mean'"):
        StandardScaler.from_state({k: v for k, v in good.items() if k != "mean"})
    with pytest.raises(ValueError, match="'scale'.*n_features = 1"):
        StandardScaler.from_state({**good, "scale": [1.0, 2.0]})
    with pytest.raises(ValueError, match="positive"):
        StandardScaler.from_state({**good, "scale": [0.0]})
    with pytest.raises(TypeError, match="'mean'"):
        StandardScaler.from_state({**good, "mean": ["x"]})
    with pytest.raises(ValueError, match="n_features"):
        StandardScaler.from_state({**good, "n_features": 0})
    with pytest.raises(ValueError, match="class"):
        scaler_from_state({**good, "class": "RobustScaler"})
    mm = MinMaxScaler().fit(np.arange(5.0)).get_state()
    with pytest.raises(ValueError, match="data_max"):
        MinMaxScaler.from_state({**mm, "data_min": [10.0]})


# -------------------------------------------------------------------------------------
# Chronological split
# -------------------------------------------------------------------------------------

def test_split_sizes_and_order():
    s = np.arange(100)
    tr, va, te = chronological_split(s)
    assert (len(tr), len(va), len(te)) == (70, 15, 15)
    np.testing.assert_array_equal(np.concatenate([tr, va, te]), s)
    assert tr[-1] < va[0] and va[-1] < te[0]
    tr, va, te = chronological_split(np.arange(10), 0.6, 0.2)
    np.testing.assert_array_equal(tr, [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(va, [6, 7])
    np.testing.assert_array_equal(te, [8, 9])
    assert tr.dtype == s.dtype                          # the dtype is kept
    tr, va, te = chronological_split(np.arange(144.0), 0.7, 0.15)
    assert (len(tr), len(va), len(te)) == (100, 21, 23)


def test_split_multivariate_and_no_val():
    s = np.arange(40.0).reshape(20, 2)
    tr, va, te = chronological_split(s, train=0.75, val=0.0)
    assert tr.shape == (15, 2) and va.shape == (0, 2) and te.shape == (5, 2)
    np.testing.assert_array_equal(te, s[15:])
    tr[0, 0] = -1.0                                      # copies: the input is untouched
    assert s[0, 0] == 0.0


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(train=0.0), ValueError, "train"),
    (dict(train=1.0), ValueError, "train"),
    (dict(train=-0.2), ValueError, "train"),
    (dict(train=1.5), ValueError, "train"),
    (dict(train="0.7"), TypeError, "train"),
    (dict(train=True), TypeError, "train"),
    (dict(val=-0.1), ValueError, "val"),
    (dict(val=1.0), ValueError, "val"),
    (dict(val=None), TypeError, "val"),
    (dict(train=0.8, val=0.2), ValueError, "train \\+ val"),
    (dict(min_length=0), ValueError, "min_length"),
    (dict(min_length=2.0), TypeError, "min_length"),
    (dict(min_length=16), ValueError, "val part is too short.*100 steps.*15 step"),
    (dict(train=0.005, val=0.5), ValueError, "train part is too short"),
    (dict(train=0.5, val=0.495, min_length=2), ValueError, "test part is too short.*1 step"),
])
def test_split_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        chronological_split(np.arange(100.0), **kwargs)


def test_split_too_short_series_and_scalar():
    with pytest.raises(ValueError, match="val part is too short: series has 5 steps"):
        chronological_split(np.arange(5.0))
    with pytest.raises(ValueError, match="scalar"):
        chronological_split(3.0)


# -------------------------------------------------------------------------------------
# Forecasting helpers
# -------------------------------------------------------------------------------------

def test_persistence_forecast_by_hand():
    x = np.array([[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]],
                  [[4.0, 40.0], [5.0, 50.0], [6.0, 60.0]]])
    p = persistence_forecast(x, horizon=3)
    assert p.shape == (2, 3, 2)
    np.testing.assert_array_equal(p[0], [[3, 30]] * 3)
    np.testing.assert_array_equal(p[1], [[6, 60]] * 3)
    p1 = persistence_forecast(x, 2, target_columns=1)
    np.testing.assert_array_equal(p1[:, :, 0], [[30, 30], [60, 60]])


def test_persistence_matches_windows_targets():
    s = np.arange(12.0) * 2.0                              # slope 2: error = 2 * (k + 1)
    x, y = make_windows(s, lookback=4, horizon=3)
    err = y - persistence_forecast(x, horizon=3)
    np.testing.assert_array_equal(err[:, :, 0], np.tile([2.0, 4.0, 6.0], (len(x), 1)))


def test_forecast_recursive_mean_model_by_hand():
    calls = []

    def mean_of_window(w):
        calls.append(w.copy())
        return w.mean(axis=1, keepdims=True)               # (N, 1, F)

    out = forecast_recursive(mean_of_window, np.array([1.0, 2.0, 3.0]), steps=3)
    np.testing.assert_allclose(out, [2.0, 7.0 / 3.0, 22.0 / 9.0])
    assert out.shape == (3,)
    np.testing.assert_allclose(calls[1][0, :, 0], [2.0, 3.0, 2.0])   # prediction fed back
    assert all(c.shape == (1, 3, 1) for c in calls)


def test_forecast_recursive_lookback_batch_and_multivariate():
    line = lambda w: 2 * w[:, -1] - w[:, -2]                      # (N, F): continue a line
    hist = np.stack([np.arange(5.0), 10 - np.arange(5.0)], axis=1)   # (5, 2)
    before = hist.copy()
    out = forecast_recursive(line, hist, steps=3, lookback=2)
    np.testing.assert_allclose(out, [[5, 5], [6, 4], [7, 3]])
    np.testing.assert_array_equal(hist, before)                       # history untouched
    batch = np.stack([hist, 2 * hist])                                # (2, 5, 2)
    out_b = forecast_recursive(line, batch, steps=2, lookback=3)
    assert out_b.shape == (2, 2, 2)
    np.testing.assert_allclose(out_b[1], [[10, 10], [12, 8]])
    seen = []
    forecast_recursive(lambda w: seen.append(w.shape) or w[:, -1], hist, 1, lookback=4)
    assert seen == [(1, 4, 2)]
    out32 = forecast_recursive(line, np.arange(4, dtype=np.float32), 2)
    assert out32.dtype == np.float32
    np.testing.assert_array_equal(out32, [4, 5])


def test_forecast_recursive_errors():
    hist = np.arange(3.0)
    with pytest.raises(TypeError, match="predict_one"):
        forecast_recursive("model", hist, 2)
    with pytest.raises(ValueError, match="steps"):
        forecast_recursive(lambda w: w[:, -1], hist, 0)
    with pytest.raises(TypeError, match="steps"):
        forecast_recursive(lambda w: w[:, -1], hist, 2.0)
    with pytest.raises(ValueError, match="has 3 steps, and lookback = 4"):
        forecast_recursive(lambda w: w[:, -1], hist, 2, lookback=4)
    with pytest.raises(ValueError, match="lookback"):
        forecast_recursive(lambda w: w[:, -1], hist, 2, lookback=0)
    with pytest.raises(ValueError, match=r"predict_one must return.*got shape \(1, 3, 1\)"):
        forecast_recursive(lambda w: w, hist, 2)
    with pytest.raises(ValueError, match="history"):
        forecast_recursive(lambda w: w[:, -1], np.zeros((1, 2, 3, 4)), 2)
    with pytest.raises(ValueError, match="history"):
        forecast_recursive(lambda w: w[:, -1], np.zeros(0), 2)
    with pytest.raises(ValueError, match="history must contain finite"):
        forecast_recursive(lambda w: w[:, -1], [1.0, np.nan], 2)


@pytest.mark.parametrize("x,horizon,kwargs,exc,match", [
    (np.zeros((2, 3)), 1, {}, ValueError, r"\(N, lookback, F\)"),
    (np.zeros((2, 0, 1)), 1, {}, ValueError, "lookback"),
    (np.zeros((2, 3, 1)), 0, {}, ValueError, "horizon"),
    (np.zeros((2, 3, 1)), 1.0, {}, TypeError, "horizon"),
    (np.zeros((2, 3, 1)), 1, {"target_columns": 1}, ValueError, "target_columns"),
    (np.array([[["a"]]]), 1, {}, TypeError, "x must be a numeric"),
])
def test_persistence_errors(x, horizon, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        persistence_forecast(x, horizon, **kwargs)


# -------------------------------------------------------------------------------------
# Built-in datasets
# -------------------------------------------------------------------------------------

def test_adding_problem_markers_and_target():
    n, t = 500, 31
    x, y = adding_problem(n, t, seed=1)
    assert x.shape == (n, t, 2) and y.shape == (n, 1)
    values, markers = x[..., 0], x[..., 1]
    assert np.all((values >= 0) & (values < 1))
    assert set(np.unique(markers)) == {0.0, 1.0}
    np.testing.assert_array_equal(markers.sum(axis=1), 2.0)
    np.testing.assert_array_equal(markers[:, :t // 2].sum(axis=1), 1.0)   # one per half
    np.testing.assert_array_equal(markers[:, t // 2:].sum(axis=1), 1.0)
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=1))
    # both halves get used, not just their ends
    assert len(np.unique(np.argmax(markers[:, :t // 2], axis=1))) == t // 2
    x2, y2 = adding_problem(n, t, seed=1)
    np.testing.assert_array_equal(x2, x)
    assert not np.array_equal(adding_problem(n, t, seed=2)[1], y)
    x_short, _ = adding_problem(3, 2)
    np.testing.assert_array_equal(x_short[..., 1], np.ones((3, 2)))


def test_adding_problem_trivial_mse_is_one_sixth():
    _, y = adding_problem(n_samples=40_000, seq_len=10, seed=0)
    mse = float(np.mean((y - 1.0) ** 2))
    assert abs(mse - 1.0 / 6.0) < 0.01, mse


def test_copy_task_shapes_and_shifted_target():
    n, lag, v, s = 64, 7, 5, 4
    t = 2 * s + lag + 1
    x, y = copy_task(n, lag, n_symbols=v, seq_len=s, seed=3)
    assert x.shape == (n, t, v + 2) and x.dtype == np.float64
    assert y.shape == (n, t) and y.dtype == np.int64
    np.testing.assert_array_equal(x.sum(axis=2), 1.0)                 # one-hot
    tokens, y_int = copy_task(n, lag, n_symbols=v, seq_len=s, seed=3, one_hot=False)
    assert tokens.shape == (n, t)
    np.testing.assert_array_equal(np.argmax(x, axis=2), tokens)
    np.testing.assert_array_equal(y_int, y)
    shift = s + lag + 1
    for step in range(shift, t):                                      # target = input, shifted
        np.testing.assert_array_equal(y[:, step], tokens[:, step - shift])
    np.testing.assert_array_equal(y[:, :shift], IGNORE_INDEX)
    assert IGNORE_INDEX == -100
    assert np.all(tokens[:, :s] < v)                                  # symbols
    np.testing.assert_array_equal(tokens[:, s:s + lag], v)            # blanks during the lag
    np.testing.assert_array_equal(tokens[:, s + lag], v + 1)          # delimiter
    np.testing.assert_array_equal(tokens[:, s + lag + 1:], v)         # blanks while recalling
    assert len(np.unique(tokens[:, :s])) == v                         # all symbols used
    x0, y0 = copy_task(2, lag=0, seq_len=3, seed=0, one_hot=False)
    assert x0.shape == (2, 7) and x0[0, 3] == 9


@pytest.mark.parametrize("fn,kwargs,exc,match", [
    (adding_problem, dict(n_samples=0), ValueError, "n_samples"),
    (adding_problem, dict(seq_len=1), ValueError, "seq_len"),
    (adding_problem, dict(seq_len=5.0), TypeError, "seq_len"),
    (adding_problem, dict(seed=-1), ValueError, "seed"),
    (adding_problem, dict(seed="x"), TypeError, "seed"),
    (copy_task, dict(lag=-1), ValueError, "lag"),
    (copy_task, dict(n_symbols=0), ValueError, "n_symbols"),
    (copy_task, dict(seq_len=0), ValueError, "seq_len"),
    (copy_task, dict(one_hot="yes"), TypeError, "one_hot"),
    (ld.noisy_sine, dict(length=0), ValueError, "length"),
    (ld.noisy_sine, dict(period=0.0), ValueError, "period"),
    (ld.noisy_sine, dict(noise=-0.1), ValueError, "noise"),
    (ld.noisy_sine, dict(amplitude="1"), TypeError, "amplitude"),
    (ld.noisy_sine, dict(noise=float("nan")), ValueError, "noise"),
    (ld.sum_of_sines, dict(periods=()), ValueError, "periods"),
    (ld.sum_of_sines, dict(periods=(5.0, -1.0)), ValueError, r"periods\[1\]"),
    (ld.sum_of_sines, dict(periods=(5.0,)), ValueError, "amplitudes"),
    (ld.sum_of_sines, dict(periods="ab"), TypeError, "periods"),
    (airline_passengers, dict(return_dates=1), TypeError, "return_dates"),
])
def test_dataset_argument_errors(fn, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(**kwargs)


def test_sines_values():
    clean = ld.noisy_sine(50, period=10.0, amplitude=2.0, noise=0.0)
    np.testing.assert_allclose(clean, 2.0 * np.sin(2 * np.pi * np.arange(50) / 10.0))
    noisy = load_dataset("sine", length=2000, period=10.0, noise=0.3, seed=5)
    np.testing.assert_allclose(np.std(noisy - 0.0 - np.sin(2 * np.pi * np.arange(2000) / 10.0)),
                               0.3, rtol=0.1)
    np.testing.assert_array_equal(noisy, load_dataset("sine", length=2000, period=10.0,
                                                      noise=0.3, seed=5))
    s = load_dataset("sines", length=30, periods=(6.0, 4.0), amplitudes=(1.0, 0.5), noise=0.0)
    t = np.arange(30)
    np.testing.assert_allclose(s, np.sin(2 * np.pi * t / 6) + 0.5 * np.sin(2 * np.pi * t / 4),
                               atol=1e-12)


def test_airline_passengers_values():
    s = airline_passengers()
    assert s.shape == (144,) and s.dtype == np.float64
    np.testing.assert_array_equal(s[:12], AIRLINE_1949)
    np.testing.assert_array_equal(s[-12:], AIRLINE_1960)
    assert s.sum() == 40363
    assert round(s.mean(), 2) == 280.30
    np.testing.assert_array_equal(s.reshape(12, 12).sum(axis=1), AIRLINE_YEARLY)
    assert s.min() == 104 and s.max() == 622
    np.testing.assert_array_equal(load_dataset("airline"), s)
    values, months = load_dataset("airline", return_dates=True)
    np.testing.assert_array_equal(values, s)
    assert months[0] == np.datetime64("1949-01") and months[-1] == np.datetime64("1960-12")
    np.testing.assert_array_equal(np.diff(months).astype(int), 1)       # consecutive months


def test_airline_csv_is_package_data_with_header():
    source = resources.files("lstm_native.data").joinpath("airline_passengers.csv")
    text = source.read_text(encoding="utf-8")
    assert "Box" in text and "Jenkins" in text                          # source named
    with resources.as_file(source) as path:
        values, months = load_csv(path, "passengers", date_column="month", min_length=144)
    assert len(values) == 144 and str(months[0]) == "1949-01"


def test_load_dataset_by_name_and_errors():
    assert list_datasets() == ["sine", "sines", "adding", "copy", "airline"]
    desc = list_datasets(descriptions=True)
    assert set(desc) == set(list_datasets()) and "1949" in desc["airline"]
    x, y = load_dataset("adding", n_samples=4, seq_len=20)
    assert x.shape == (4, 20, 2) and y.shape == (4, 1)
    x, y = load_dataset("copy", n_samples=3, lag=10)
    assert x.shape == (3, 31, 10) and y.shape == (3, 31)
    assert load_dataset("Sine").shape == (1000,)
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'.*'airline'"):
        load_dataset("mnist")
    with pytest.raises(TypeError, match="name must be a str"):
        load_dataset(3)
    with pytest.raises(TypeError, match=r"load_dataset\('airline'\).*'lenght'.*return_dates"):
        load_dataset("airline", lenght=5)


# -------------------------------------------------------------------------------------
# CSV files
# -------------------------------------------------------------------------------------

def _write(tmp_path, text, name="data.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_load_csv_by_name_index_and_several_columns(tmp_path):
    path = _write(tmp_path, "# a comment\n\ndate, a ,b\n2020-01-01,1.5,10\n"
                            "2020-01-02, 2.5 ,20\n\n2020-01-03,-3e0,30\n")
    np.testing.assert_array_equal(load_csv(path, "a"), [1.5, 2.5, -3.0])
    np.testing.assert_array_equal(load_csv(str(path), 2), [10, 20, 30])
    both = load_csv(path, ["b", 1])
    assert both.shape == (3, 2) and both.dtype == np.float64
    np.testing.assert_array_equal(both[:, 0], [10, 20, 30])
    values, dates = load_csv(path, "a", date_column="date")
    assert dates.dtype == np.dtype("datetime64[D]")
    assert dates[-1] == np.datetime64("2020-01-03")


def test_load_csv_bom_and_delimiter(tmp_path):
    path = _write(tmp_path, "x;y\n1;2\n3;4\n", encoding="utf-8-sig")
    np.testing.assert_array_equal(load_csv(path, "x", delimiter=";"), [1, 3])


def test_load_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_csv(tmp_path / "nope.csv", "a")
    with pytest.raises(IsADirectoryError, match="directory"):
        load_csv(tmp_path, "a")


def test_load_csv_missing_column_lists_available(tmp_path):
    path = _write(tmp_path, "month,passengers\n1949-01,112\n")
    with pytest.raises(ValueError, match=r"'passenger' is not in the file.*"
                                         r"\['month', 'passengers'\]"):
        load_csv(path, "passenger")
    with pytest.raises(ValueError, match="index 2 is out of range.*2 columns"):
        load_csv(path, 2)
    with pytest.raises(ValueError, match="date_column 'date'"):
        load_csv(path, 1, date_column="date")


def test_load_csv_duplicate_header_name(tmp_path):
    path = _write(tmp_path, "a,a\n1,2\n")
    with pytest.raises(ValueError, match="names 2 columns"):
        load_csv(path, "a")
    np.testing.assert_array_equal(load_csv(path, 1), [2.0])


@pytest.mark.parametrize("body,match", [
    ("# c\nt,v\n1,2\n2,abc\n", r"line 4: column 'v' holds 'abc', which is not a number"),
    ("t,v\n1,2\n2,\n", r"line 3: column 'v' has no value"),
    ("t,v\n1,2\n2\n", r"line 3: column 'v' has no value"),
    ("t,v\n1,nan\n", r"line 2: column 'v' holds 'nan'; only finite"),
    ("t,v\n1,\"1,234\"\n", r"line 2: column 'v' holds '1,234'"),
])
def test_load_csv_bad_values_say_where(tmp_path, body, match):
    with pytest.raises(ValueError, match=match):
        load_csv(_write(tmp_path, body), "v")


def test_load_csv_bad_date(tmp_path):
    path = _write(tmp_path, "t,v\n2020-01,1\nJan 2020,2\n")
    with pytest.raises(ValueError, match=r"line 3: date column 't' holds 'Jan 2020'"):
        load_csv(path, "v", date_column="t")


def test_load_csv_empty_and_too_short(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        load_csv(_write(tmp_path, "", "empty.csv"), "v")
    with pytest.raises(ValueError, match="empty"):
        load_csv(_write(tmp_path, "# only a comment\n\n", "comment.csv"), "v")
    with pytest.raises(ValueError, match="has 0 rows.*min_length = 1"):
        load_csv(_write(tmp_path, "t,v\n", "header.csv"), "v")
    path = _write(tmp_path, "t,v\n1,1\n2,2\n3,3\n")
    with pytest.raises(ValueError, match="has 3 rows, and at least min_length = 13"):
        load_csv(path, "v", min_length=13)
    assert len(load_csv(path, "v", min_length=3)) == 3


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(path=123), TypeError, "path"),
    (dict(column=1.5), TypeError, "column"),
    (dict(column=None), TypeError, "column"),
    (dict(column=[]), ValueError, "column"),
    (dict(date_column=["t"]), TypeError, "date_column"),
    (dict(min_length=0), ValueError, "min_length"),
    (dict(min_length="3"), TypeError, "min_length"),
    (dict(delimiter=";;"), TypeError, "delimiter"),
])
def test_load_csv_argument_errors(tmp_path, kwargs, exc, match):
    args = dict(path=_write(tmp_path, "t,v\n1,2\n"), column="v")
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        load_csv(args.pop("path"), args.pop("column"), **args)


def test_end_to_end_airline_pipeline():
    """The docstring's recipe runs and the persistence baseline is what it should be."""
    series = load_dataset("airline")
    lookback = 12
    train, val, test = chronological_split(series, 0.7, 0.15, min_length=lookback + 1)
    scaler = StandardScaler().fit(train)
    x, y = make_windows(scaler.transform(test), lookback=lookback)
    naive = scaler.inverse_transform(persistence_forecast(x, 1))
    expected = test[lookback - 1:-1]                       # last value of each window
    np.testing.assert_allclose(naive[:, 0, 0], expected)
    np.testing.assert_allclose(scaler.inverse_transform(y)[:, 0, 0], test[lookback:])
    assert math.isclose(float(np.mean(np.abs(test[lookback:] - expected))),
                        float(np.mean(np.abs(np.diff(test[lookback - 1:])))))
