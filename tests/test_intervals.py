"""The forecaster's prediction intervals: split-conformal half-widths (their rank and
finite-sample validity), the calibration errors, the coverage the reports give, the
widening of a recursive forecast, pandas output, checkpoints and the command line."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lstm_native as ln
from lstm_native import _intervals
from lstm_native.forecasting import Forecaster, ForecastError

from conftest import last_json, run_cli

pytest.importorskip("statsmodels")

SMALL = {"lookback": 6, "hidden": 4, "epochs": 3, "batch_size": 32, "season": 12}


def seasonal(n=160, seed=0):
    """A positive monthly-like series: trend, yearly season, noise."""
    t = np.arange(n)
    noise = np.random.default_rng(seed).normal(0, 1.0, n)
    return 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / 12) + noise


@pytest.fixture(scope="module", params=["hybrid", "lstm"])
def fitted(request):
    return Forecaster(method=request.param, members=2, **SMALL).fit(seasonal())


# -- the conformal arithmetic ----------------------------------------------------------------

def test_the_half_width_is_the_corrected_rank_of_the_absolute_errors():
    errors = np.array([[-5.0], [1.0], [2.0], [-3.0], [4.0], [9.0], [-7.0], [6.0], [8.0]])
    # n = 9: the ceil(10 * 0.8) = 8th smallest |error| at 80%, the 9th at 90%.
    assert _intervals.half_widths(errors, 0.8)[0] == 8.0
    assert _intervals.half_widths(errors, 0.9)[0] == 9.0
    assert _intervals.half_widths(errors, 0.5)[0] == 5.0
    # 95% would take the ceil(9.5) = 10th of 9: unbounded, not narrower.
    assert _intervals.half_widths(errors, 0.95)[0] == np.inf
    # 19 errors are enough for 95% (20 * 0.95 = 19 exactly, not rounded up to 20).
    assert _intervals.half_widths(np.arange(1.0, 20.0)[:, None], 0.95)[0] == 19.0
    # One half-width per step of the horizon.
    two = np.column_stack([np.arange(1.0, 20.0), 10 * np.arange(1.0, 20.0)])
    np.testing.assert_array_equal(_intervals.half_widths(two, 0.9), [18.0, 180.0])


def test_split_conformal_covers_at_least_the_level_on_exchangeable_errors():
    # 20,000 draws of 30 calibration errors and one new error from the same law: the
    # new one falls inside the half-width with probability in [a, a + 1/(n + 1)].
    rng = np.random.default_rng(0)
    errors = rng.standard_t(3, size=(20_000, 31))
    for level in (0.8, 0.9):
        inside = [abs(row[-1]) <= _intervals.half_widths(row[:-1, None], level)[0]
                  for row in errors]
        assert level - 0.01 <= np.mean(inside) <= level + 1 / 31 + 0.01


def test_recent_half_widths_are_those_of_the_latest_known_errors():
    # By brute force: for window i and step h, the half-width of the last M errors of
    # the calibration's followed by those whose targets (origin + h + 1) are observed.
    rng = np.random.default_rng(1)
    calibration, errors = rng.normal(size=(25, 3)), rng.standard_t(2, size=(40, 3))
    origins = np.sort(rng.choice(np.arange(200, 300), size=40, replace=False))
    for level in (0.5, 0.8, 0.95):
        got = _intervals.recent_half_widths(calibration, errors, origins, level)
        for i in range(40):
            for h in range(3):
                known = [errors[j, h] for j in range(40) if origins[j] + h + 1 <= origins[i]]
                pool = np.concatenate([calibration[:, h], known])[-25:]
                assert got[i, h] == _intervals.half_widths(pool[:, None], level)[0]
    # Before any window's target is observed: the plain split-conformal half-width.
    first = _intervals.recent_half_widths(calibration, errors, origins, 0.8)[0]
    np.testing.assert_array_equal(first, _intervals.half_widths(calibration, 0.8))
    # Too few calibration errors for the level: unbounded throughout.
    assert np.all(_intervals.recent_half_widths(calibration[:10], errors, origins, 0.95)
                  == np.inf)


def test_a_nan_error_counts_as_an_infinite_one():
    calibration = np.arange(1.0, 20.0)[:, None]                  # |errors| 1 .. 19
    errors = np.array([[np.nan], [0.0], [0.0]])
    got = _intervals.recent_half_widths(calibration, errors, np.array([0, 1, 2]), 0.95)
    # From origin 1 on the pool holds the nan (as inf), the 19th smallest of 19.
    assert got[0, 0] == 19.0 and got[1, 0] == np.inf and got[2, 0] == np.inf
    # And so in the plain half-width: unbounded, not nan.
    pool = np.append(np.arange(2.0, 20.0), np.nan)[:, None]
    assert _intervals.half_widths(pool, 0.95)[0] == np.inf


def test_coverage_and_growth_by_hand():
    actual = np.array([1.0, 2.0, 3.0, 4.0])
    assert _intervals.coverage(actual, actual - 1, np.array([2.0, 1.0, 4.0, 3.0])) == 0.5
    np.testing.assert_allclose(_intervals.growth(np.array([0.5, 1.0])),
                               [1.0, math.sqrt(1.25), math.sqrt(2.25)])
    assert _intervals.label(0.8) == "80" and _intervals.label(0.995) == "99.5"


@pytest.mark.parametrize("levels, error, message", [
    ((), ValueError, "at least one"),
    ((0.8, 1.0), ValueError, "levels"),
    ((0.0,), ValueError, "levels"),
    ("0.8", TypeError, "levels"),
    (None, TypeError, "levels"),
])
def test_bad_levels(fitted, levels, error, message):
    with pytest.raises(error, match=message):
        fitted.predict_interval(2, levels=levels)


# -- the forecaster's calibration and coverage -------------------------------------------------

def _rows(f, start, stop):
    """The rows of `fitted_` whose targets fall in [start, stop)."""
    return (f.fitted_time_ >= start) & (f.fitted_time_ < stop)


def test_the_calibration_is_the_validation_parts_errors_in_log_space(fitted):
    y = seasonal()
    n_train, n_val = fitted._split
    rows = _rows(fitted, n_train, n_train + n_val)
    by_hand = np.log(y[fitted.fitted_time_[rows]]) - np.log(fitted.fitted_[rows, 0])
    np.testing.assert_allclose(fitted.calibration_[:, 0], by_hand, rtol=1e-12, atol=1e-15)
    assert fitted.results_["calibration_windows"] == rows.sum() == fitted.n_windows_[1]


def _test_errors(f, y, log=True):
    """The one-step errors of the fitted series' test windows, in time order."""
    n_train, n_val = f._split
    rows = _rows(f, n_train + n_val, len(y))
    space = np.log if log else (lambda a: a)
    return space(y[f.fitted_time_[rows]]) - space(f.fitted_[rows, 0])


def test_the_reported_coverage_is_that_of_the_test_forecasts(fitted):
    y = seasonal()
    n_train, n_val = fitted._split
    rows = _rows(fitted, n_train + n_val, len(y))
    actual, pred = y[fitted.fitted_time_[rows]], fitted.fitted_[rows, 0]
    errors, m = _test_errors(fitted, y), len(fitted.calibration_)
    for level in (0.8, 0.95):
        # Window i's interval: the validation errors, then the test windows' before it
        # (their targets observed at its origin), the last m of them.
        q = np.array([_intervals.half_widths(np.concatenate(
            [fitted.calibration_[:, 0], errors[:i]])[-m:, None], level)[0]
            for i in range(len(errors))])
        lower, upper = pred * np.exp(-q), pred * np.exp(q)
        scores = fitted.results_["intervals"][_intervals.label(level)]
        assert scores["coverage"] == np.mean((lower <= actual) & (actual <= upper))
        assert scores["width"] == pytest.approx(np.mean(upper - lower), rel=1e-12)
    assert fitted.score(y)["intervals"] == fitted.results_["intervals"]


def test_a_horizon_gets_a_half_width_per_step():
    f = Forecaster(method="lstm", horizon=3, **SMALL).fit(seasonal())
    assert f.calibration_.shape == (f.n_windows_[1], 3)
    # A differenced series (some values <= 0): the errors are in levels.
    g = Forecaster(method="lstm", **SMALL).fit(seasonal() - 80)
    n_train, n_val = g._split
    rows = _rows(g, n_train, n_train + n_val)
    y = seasonal() - 80
    np.testing.assert_allclose(g.calibration_[:, 0],
                               y[g.fitted_time_[rows]] - g.fitted_[rows, 0], rtol=1e-12)


# -- the intervals of a forecast ----------------------------------------------------------------

def test_predict_interval_holds_the_forecast_and_widens(fitted):
    out = fitted.predict_interval(8)
    np.testing.assert_array_equal(out["forecast"], fitted.predict(8))
    assert list(out) == ["forecast", "lower_80", "upper_80", "lower_95", "upper_95"]
    log_half = {k: np.log(out[f"upper_{k}"]) - np.log(out["forecast"]) for k in ("80", "95")}
    # Symmetric in log space, the first step's half-width the conformal one, never
    # narrowing with the steps, the 95% one wider than the 80% one.
    for k, level in (("80", 0.8), ("95", 0.95)):
        np.testing.assert_allclose(np.log(out["forecast"]) - np.log(out[f"lower_{k}"]),
                                   log_half[k], rtol=1e-9)
        # The first step's: the last validation and test errors (all observed).
        pool = np.concatenate([fitted.calibration_[:, 0], _test_errors(fitted, seasonal())])
        assert log_half[k][0] == pytest.approx(
            _intervals.half_widths(pool[-len(fitted.calibration_):, None], level)[0],
            rel=1e-9)
        assert np.all(np.diff(log_half[k]) >= -1e-12)
    assert np.all(log_half["95"] >= log_half["80"])


def test_the_widening_follows_the_recursive_forecasts_response(monkeypatch):
    # A forecaster whose continuation repeats the last value (a random walk's forecast):
    # each later value moves one for one with the first, so the k-step half-width is
    # the one-step one times sqrt(k), the random walk's.
    f = Forecaster(method="lstm", transform="diff", **SMALL).fit(seasonal())
    monkeypatch.setattr(f, "_continue", lambda values, steps: np.full(steps, values[-1]))
    out = f.predict_interval(5, levels=[0.8])
    pool = np.concatenate([f.calibration_[:, 0], _test_errors(f, seasonal(), log=False)])
    q = _intervals.half_widths(pool[-len(f.calibration_):, None], 0.8)[0]
    np.testing.assert_allclose(out["upper_80"] - out["forecast"], q * np.sqrt(np.arange(1, 6)),
                               rtol=1e-9)
    # A continuation that ignores the last value: the step errors do not add up.
    monkeypatch.setattr(f, "_continue", lambda values, steps: np.full(steps, 7.0))
    out = f.predict_interval(5, levels=[0.8])
    np.testing.assert_allclose(out["upper_80"] - out["forecast"], q, rtol=1e-9)


def test_pandas_input_gives_a_dated_frame():
    pd = pytest.importorskip("pandas")
    y = pd.Series(seasonal(), index=pd.period_range("2000-01", periods=160, freq="M"))
    f = Forecaster(method="lstm", **{**SMALL, "season": None}).fit(y)
    frame = f.predict_interval(3, levels=(0.9,))
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["forecast", "lower_90", "upper_90"]
    assert [str(p) for p in frame.index] == ["2013-05", "2013-06", "2013-07"]
    np.testing.assert_array_equal(frame["forecast"], f.predict(3).to_numpy())


def test_too_few_validation_windows_give_unbounded_intervals():
    # 60 values: 9 validation values, 6 windows after the lookback: too few for 95%.
    f = Forecaster(method="lstm", **{**SMALL, "season": None}).fit(seasonal(60))
    assert f.results_["calibration_windows"] < 19
    assert f.results_["intervals"]["95"] == {"coverage": 1.0, "width": None}
    out = f.predict_interval(2)
    assert np.all(out["upper_95"] == np.inf) and np.all(out["lower_95"] == 0.0)
    assert np.all(np.isfinite(out["upper_80"]))


# -- saved and loaded ---------------------------------------------------------------------------

def test_the_calibration_is_saved(fitted, tmp_path):
    path = tmp_path / "f.npz"
    fitted.save(path)
    loaded = Forecaster.load(path)
    np.testing.assert_array_equal(loaded.calibration_, fitted.calibration_)
    y = seasonal()
    got, want = loaded.predict_interval(4, y), fitted.predict_interval(4, y)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])


@pytest.mark.parametrize("calibration", [[], [[1.0, 2.0]], [[float("nan")]], [[True]],
                                         [["0.1"]], "errors", [[0.1], 5]])
def test_a_damaged_calibration_is_refused(fitted, tmp_path, calibration):
    path = tmp_path / "f.npz"
    fitted.save(path)
    loaded = ln.load_checkpoint(path)
    ln.save_checkpoint(path, loaded["model"], extra={**loaded["extra"],
                                                     "calibration": calibration})
    with pytest.raises(ForecastError, match="calibration errors are damaged"):
        Forecaster.load(path)


def test_a_file_without_calibration_loads_but_has_no_intervals(fitted, tmp_path):
    path = tmp_path / "f.npz"
    fitted.save(path)
    loaded = ln.load_checkpoint(path)
    extra = {k: v for k, v in loaded["extra"].items() if k != "calibration"}
    ln.save_checkpoint(path, loaded["model"], extra=extra)
    old = Forecaster.load(path)
    assert old.calibration_ is None
    np.testing.assert_array_equal(old.predict(2, seasonal()), fitted.predict(2, seasonal()))
    with pytest.raises(ValueError, match="no calibration errors"):
        old.predict_interval(2, seasonal())
    # Saved again, it stays a file without calibration errors.
    old.save(path)
    assert Forecaster.load(path).calibration_ is None


# -- the command line ---------------------------------------------------------------------------

def test_the_command_line_reports_coverage_and_prints_intervals(tmp_path, capsys):
    args = ["--method", "lstm", "--epochs", "3", "--hidden", "4", "--out", str(tmp_path)]
    code, out, err = run_cli(capsys, ["forecast", *args, "--json", "--quiet"])
    assert code == 0, err
    result = last_json(out)
    assert set(result["intervals"]) == {"80", "95"}
    line = next(s for s in out.splitlines() if s.startswith("prediction intervals"))
    cover = result["intervals"]["80"]["coverage"]
    assert f"on the 23 test windows: 80% covers {cover:.0%}" in line
    assert f"split conformal on the {result['calibration_windows']} latest errors" in line

    model = str(tmp_path / "model.npz")
    code, out, err = run_cli(capsys, ["predict", "--model", model, "--steps", "3", "--json"])
    assert code == 0, err
    result = last_json(out)
    f = Forecaster.load(model)
    y, dates = ln.data.load_dataset("airline", return_dates=True)
    want = f.predict_interval(3, y, dates=dates)
    for level in ("80", "95"):
        np.testing.assert_allclose(result["intervals"][level]["lower"], want[f"lower_{level}"])
        np.testing.assert_allclose(result["intervals"][level]["upper"], want[f"upper_{level}"])
    assert "80% interval" in out and "95% interval" in out
    first = want["lower_80"][0], want["upper_80"][0]
    assert f"[{first[0]:.2f}, {first[1]:.2f}]" in out
