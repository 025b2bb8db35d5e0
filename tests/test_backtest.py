"""lstm_native.backtest: the blocks of a rolling-origin backtest, what each fold's fit
saw, one fold as one plain fit, the summary's statistics, dates, pandas and errors."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from lstm_native.backtest import Backtest, Fold, backtest
from lstm_native.baselines import Naive, SeasonalNaive
from lstm_native.data import load_dataset
from lstm_native.forecasting import Forecaster, ForecastError

TINY = {"lookback": 5, "hidden": 4, "epochs": 2, "batch_size": 32, "method": "lstm"}


def wavy(n=100):
    """A positive series with a trend and a season of 12."""
    t = np.arange(n)
    return 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / 12)


def rmse(pred, actual):
    return float(np.sqrt(np.mean((pred - actual) ** 2)))


@pytest.fixture(scope="module")
def four_folds():
    """wavy(100): 70 train, 15 validation and 15 test values, in blocks of 4, 4, 4, 3;
    and what the callback saw."""
    seen = []
    result = backtest(Forecaster(**TINY), wavy(), folds=4,
                      callback=lambda i, fold: seen.append((i, fold)))
    return result, seen


@pytest.mark.parametrize("horizon", [1, 2])
def test_the_blocks_tile_the_test_part_in_order(four_folds, horizon):
    result = (four_folds[0] if horizon == 1 else
              backtest(Forecaster(**TINY, horizon=horizon), wavy(), folds=4))
    folds = result.folds
    assert [f.index for f in folds] == [0, 1, 2, 3]
    assert folds[0].first == 85 and folds[-1].last == 99
    assert [f.last - f.first + 1 for f in folds] == [4, 4, 4, 3]
    assert all(a.last + 1 == b.first for a, b in itertools.pairwise(folds))
    # Each fit trains and validates on the values before its block, in the forecaster's
    # proportions (70:15 of the 85 before the test part), and tests the block's windows.
    for f in folds:
        assert f.train + f.validation == f.first
        assert f.train == round(70 * f.first / 85)
        assert f.windows == f.last - f.first + 2 - horizon
    assert result.horizon == horizon


def check_baselines_by_hand(result, y, baselines):
    """Each fold's `baselines` (name: unfitted baseline) score as fitted by hand on the
    values before its block and run over it."""
    for f in result.folds:
        origins = np.arange(f.first - 1, f.last)
        actual = y[origins + 1, None]
        for name, baseline in baselines.items():
            pred = baseline.fit(y[:f.first]).forecast(y[:f.last + 1], origins)
            assert f.baselines[name] == pytest.approx(rmse(pred, actual), rel=1e-12)
        assert f.best_baseline == min(f.baselines, key=f.baselines.get)
        assert f.ratio_to_best == pytest.approx(f.rmse / f.baselines[f.best_baseline])


def test_each_fold_fits_the_baselines_on_the_values_before_its_block(four_folds):
    check_baselines_by_hand(four_folds[0], wavy(), {"naive": Naive()})


def test_a_fold_sees_no_value_after_its_block():
    y = wavy()
    changed = y.copy()
    changed[93:] *= 1.5                      # after fold 0's block of two folds: 85..92
    first, second = (backtest(Forecaster(**TINY), series, folds=2)
                     for series in (y, changed))
    assert first.folds[0].last == 92
    assert first.folds[0].rmse == second.folds[0].rmse
    assert first.folds[0].baselines == second.folds[0].baselines
    assert first.folds[1].rmse != second.folds[1].rmse


def test_one_fold_is_one_plain_fit():
    y = wavy()
    forecaster = Forecaster(**TINY)
    plain = Forecaster(**TINY).fit(y).results_
    (fold,) = backtest(forecaster, y, folds=1).folds
    assert (fold.first, fold.last, fold.train, fold.validation) == (85, 99, 70, 15)
    assert fold.windows == plain["test_windows"]
    assert fold.rmse == plain["rmse"]
    assert fold.baselines == plain["baselines"]
    assert fold.best_baseline == plain["best_baseline"]
    # The forecaster given is only read.
    assert not hasattr(forecaster, "results_")
    assert forecaster.get_params() == Forecaster(**TINY).get_params()


def _fold(index, rmse, baselines, windows):
    best = min(baselines, key=baselines.get)
    return Fold(index=index, first=10 * index, last=10 * index + windows - 1, train=1,
                validation=1, windows=windows, rmse=rmse, baselines=baselines,
                best_baseline=best, ratio_to_best=rmse / baselines[best], seconds=0.5)


def test_the_summary_follows_from_the_folds():
    folds = (_fold(0, 2.0, {"naive": 3.0, "ETS": 1.5}, 4),
             _fold(1, 1.0, {"naive": 2.0}, 4),
             _fold(2, 4.0, {"naive": 4.0, "ETS": 5.0}, 2))
    summary = Backtest(folds=folds, horizon=1, seconds=7.0).summary()
    ours = np.array([2.0, 1.0, 4.0])
    windows = np.array([4, 4, 2])
    assert summary["model"] == {
        "mean": pytest.approx(ours.mean()), "std": pytest.approx(ours.std(ddof=1)),
        "min": 1.0, "max": 4.0, "folds": 3,
        "pooled": pytest.approx(np.sqrt(np.sum(windows * ours**2) / windows.sum()))}
    ets = np.array([1.5, 5.0])               # scored in folds 0 and 2 only
    assert summary["baselines"]["ETS"]["folds"] == 2
    assert summary["baselines"]["ETS"]["std"] == pytest.approx(ets.std(ddof=1))
    assert summary["baselines"]["ETS"]["pooled"] == pytest.approx(
        np.sqrt((4 * 1.5**2 + 2 * 5.0**2) / 6))
    assert list(summary["baselines"]) == ["naive", "ETS"]
    assert summary["mean_ratio_to_best"] == pytest.approx(np.mean([2 / 1.5, 1 / 2, 4 / 4]))
    assert summary["at_least_as_accurate"] == 2       # folds 1 and 2 (a tie counts)
    assert (summary["folds"], summary["windows"], summary["seconds"]) == (3, 10, 7.0)
    one = Backtest(folds=folds[:1], horizon=1, seconds=1.0).summary()
    assert one["model"]["std"] is None


def test_the_summary_of_a_real_backtest(four_folds):
    result = four_folds[0]
    summary = result.summary()
    ours = np.array([f.rmse for f in result.folds])
    assert summary["model"]["mean"] == pytest.approx(ours.mean())
    assert summary["model"]["max"] == ours.max()
    assert summary["windows"] == 15
    assert result.seconds >= sum(f.seconds for f in result.folds) > 0
    assert json.loads(json.dumps(result.to_dict()))["summary"]["folds"] == 4


def test_the_callback_sees_each_fold_in_order(four_folds):
    result, seen = four_folds
    assert seen == list(enumerate(result.folds))


@pytest.fixture(scope="module")
def airline():
    return load_dataset("airline", return_dates=True)


def test_the_folds_carry_the_dates(airline):
    y, dates = airline
    result = backtest(Forecaster(**TINY), y, folds=2, dates=dates)
    assert [(f.first, f.last) for f in result.folds] == [(121, 132), (133, 143)]
    for f in result.folds:
        assert (f.first_date, f.last_date) == (dates[f.first], dates[f.last])
    assert result.folds[-1].to_dict()["last_date"] == str(dates[-1]) == "1960-12"
    # Monthly dates: each fit's season is 12, as the whole series'.
    check_baselines_by_hand(result, y, {"naive": Naive(), "seasonal naive": SeasonalNaive(12)})
    json.dumps(result.to_dict())


def test_a_pandas_series_gives_the_same_backtest(four_folds):
    pd = pytest.importorskip("pandas")
    y = wavy()
    # Yearly dates: season 1 as without dates, and no seasonal model to slow the fits.
    series = pd.Series(y, index=pd.date_range("1900", periods=len(y), freq="YS"))
    from_pandas = backtest(Forecaster(**TINY), series, folds=4)
    for a, b in zip(four_folds[0].folds, from_pandas.folds, strict=True):
        assert (a.first, a.last, a.rmse, a.baselines) == (b.first, b.last, b.rmse, b.baselines)
        assert b.last_date == series.index[b.last]


def test_a_hybrid_backtest(airline):
    pytest.importorskip("statsmodels")
    y, dates = airline
    result = backtest(Forecaster(**{**TINY, "method": "hybrid", "members": 1}), y, folds=2,
                      dates=dates)
    assert [(f.first, f.last) for f in result.folds] == [(121, 132), (133, 143)]
    for f in result.folds:
        assert set(f.baselines) == {"naive", "seasonal naive", "ETS", "SARIMA"}
        assert f.windows == f.last - f.first + 1 and np.isfinite(f.rmse)
    check_baselines_by_hand(result, y, {"naive": Naive(), "seasonal naive": SeasonalNaive(12)})


@pytest.mark.parametrize("folds, error, match", [
    ("3", TypeError, "folds must be an int >= 1"),
    (True, TypeError, "folds must be an int >= 1"),
    (2.0, TypeError, "folds must be an int >= 1"),
    (0, ValueError, "folds must be an int >= 1"),
    (16, ValueError, "blocks of 0, fewer than the horizon=1 .* at most 15 folds"),
])
def test_bad_folds(folds, error, match):
    with pytest.raises(error, match=match):
        backtest(Forecaster(**TINY), wavy(), folds=folds)


def test_more_folds_than_blocks_of_the_horizon():
    with pytest.raises(ValueError, match="blocks of 3, fewer than the horizon=4 .* at most 3 "
                                         "folds"):
        backtest(Forecaster(**TINY, horizon=4), wavy(), folds=5)
    with pytest.raises(ValueError, match="no fold fits"):
        backtest(Forecaster(**TINY, horizon=4), wavy(20), folds=1)


def test_bad_forecaster_and_fractions():
    with pytest.raises(TypeError, match="forecaster must be a Forecaster, got dict"):
        backtest(TINY, wavy())
    with pytest.raises(ValueError, match="train_fraction \\+ val_fraction must be < 1"):
        backtest(Forecaster(**TINY, train_fraction=0.8, val_fraction=0.2), wavy())
    with pytest.raises(TypeError, match="val_fraction must be a float"):
        backtest(Forecaster(**TINY, val_fraction="0.1"), wavy())
    with pytest.raises(ForecastError, match="too short to split"):
        backtest(Forecaster(**TINY), wavy(5))


def test_a_fold_that_cannot_fit_is_named():
    y = wavy()
    y[:93] = 60.0                            # constant up to the end of fold 0's block
    with pytest.raises(ForecastError, match=r"^fold 1 of 2 \(values 85 to 92\): y is "
                                            "constant") as caught:
        backtest(Forecaster(**TINY), y, folds=2)
    # The parameters stay placeholders, for the command line to spell its own way.
    assert caught.value.render(lambda name, value: f"<{name}>").startswith(
        "fold 1 of 2 (values 85 to 92): <y> is constant")
