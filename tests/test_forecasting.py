"""lstm_native.forecasting.Forecaster: fit, score, predict, save and load, parameters,
pandas inputs with dates, and the errors of bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lstm_native as ln
from lstm_native import forecasting
from lstm_native.forecasting import CELLS, Forecaster, ForecastError

# The plain method (the hybrid has its own tests in test_forecasting_hybrid.py).
TINY = {"lookback": 6, "hidden": 4, "epochs": 2, "batch_size": 32, "method": "lstm"}


def wavy(n=120):
    """A positive series with a trend and a yearly season, as monthly values."""
    t = np.arange(n)
    return 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / 12)


@pytest.fixture(scope="module")
def fitted():
    return Forecaster(**TINY).fit(wavy())


def test_fit_scores_the_test_part_against_the_naive_forecast(fitted):
    y = wavy()
    results = fitted.results_
    assert results["epochs"] == 2 and results["best_epoch"] in (1, 2)
    assert fitted.n_windows_[2] == results["test_windows"] > 0
    assert sum(fitted.n_windows_) == len(y) - 1 - 6      # one change lost to the diff
    assert fitted.transform_ == "log-diff"
    test = fitted.score(y)
    assert test["rmse"] == pytest.approx(results["rmse"])
    assert test["naive_rmse"] == pytest.approx(results["naive_rmse"])
    assert test["loss"] == pytest.approx(results["test_loss"])
    assert test["windows"] == results["test_windows"]
    # The naive forecast of the test part, by hand: next = last.
    start = round(len(y) * 0.7) + round(len(y) * 0.15)
    naive = math.sqrt(np.mean((y[start:] - y[start - 1:-1]) ** 2))
    assert test["naive_rmse"] == pytest.approx(naive)
    assert fitted.score(y, span="all")["windows"] == sum(fitted.n_windows_)
    assert fitted.fitted_.shape == (sum(fitted.n_windows_), 1)


def test_predict_continues_the_series_recursively(fitted):
    future = fitted.predict(4)
    assert future.shape == (4,) and np.all(np.isfinite(future))
    # The first step is the model's one-step forecast after the last window.
    assert fitted.predict(1)[0] == pytest.approx(future[0])
    assert np.array_equal(fitted.predict(4, wavy()), future)
    assert fitted.future_dates(4) is None


def test_numpy_dates_give_future_dates(fitted):
    y = wavy(60)
    dates = np.arange("2000-01", "2005-01", dtype="datetime64[M]")
    f = Forecaster(**TINY).fit(y, dates=dates)
    assert [str(d) for d in f.future_dates(3)] == ["2005-01", "2005-02", "2005-03"]
    assert isinstance(f.predict(3), np.ndarray)


def test_save_and_load_round_trip(fitted, tmp_path):
    path = tmp_path / "f.npz"
    fitted.save(path, source={"data": "wavy", "column": None})
    loaded = Forecaster.load(path)
    # The settings as resolved at fit: the transform, the members and the season.
    assert loaded.get_params() == {**fitted.get_params(), "transform": "log-diff",
                                   "members": 1, "season": 1}
    assert loaded.settings_["data"] == "wavy" and loaded.settings_["cell"] == "lstm"
    assert loaded.results_ == fitted.results_
    y = wavy()
    np.testing.assert_array_equal(loaded.predict(5, y), fitted.predict(5, y))
    assert loaded.score(y) == fitted.score(y)
    # One checkpoint: the model, its optimizer and epoch, the scaler, settings, history.
    raw = ln.load_checkpoint(path)
    assert raw["epoch"] == 2 and raw["optimizer_state"] is not None
    assert raw["extra"]["scaler"]["class"] == "StandardScaler"
    assert raw["extra"]["history"]["epoch"] == [1, 2]
    with pytest.raises(ValueError, match="keeps no series"):
        loaded.predict(2)


def test_a_checkpoint_that_is_not_a_forecaster(tmp_path):
    path = tmp_path / "m.npz"
    ln.save_checkpoint(path, ln.Linear(2, 1))
    with pytest.raises(ForecastError, match="not a model saved by Forecaster.save"):
        Forecaster.load(path)


def test_get_params_and_set_params():
    f = Forecaster(lookback=8, cell="gru")
    params = f.get_params()
    assert params["lookback"] == 8 and params["cell"] == "gru" and params["epochs"] == 300
    assert Forecaster(**params).get_params() == params
    assert f.set_params(hidden=5, lr=0.01) is f
    assert f.hidden == 5 and f.lr == 0.01
    assert repr(f) == "Forecaster(lookback=8, cell='gru', hidden=5, lr=0.01)"
    with pytest.raises(ValueError, match="unknown parameter nope"):
        f.set_params(nope=1)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_other_cells_fit(cell):
    f = Forecaster(cell=cell, layers=2, **TINY).fit(wavy())
    assert type(f.model_.layers[0]) is CELLS[cell] and f.model_.layers[0].num_layers == 2


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("layers, horizon", [(1, 1), (3, 2)])
def test_parameter_count_is_the_models(cell, layers, horizon):
    model = ln.Sequential(CELLS[cell](1, 5, num_layers=layers, batch_first=True),
                          ln.LastStep(batch_first=True), ln.Linear(5, horizon))
    count = sum(v.size for v in model.state_dict().values())
    assert forecasting._parameter_count(cell, 5, layers, horizon) == count


# -- pandas ------------------------------------------------------------------------------

def test_a_pandas_series_with_a_monthly_index():
    pd = pytest.importorskip("pandas")
    index = pd.date_range("2000-01-01", periods=60, freq="MS")
    series = pd.Series(wavy(60), index=index)
    f = Forecaster(**TINY).fit(series)
    future = f.predict(3)
    assert isinstance(future, pd.Series)
    assert list(future.index) == list(pd.date_range("2005-01-01", periods=3, freq="MS"))
    np.testing.assert_array_equal(future.to_numpy(), f.predict(3, wavy(60)))
    assert f.score(series) == f.score(wavy(60))


def test_a_dataframe_column_with_a_date_column():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"when": pd.date_range("2000-01-01", periods=60, freq="D"),
                          "sales": wavy(60), "other": -wavy(60)})
    f = Forecaster(**TINY).fit(frame, column="sales")
    future = f.predict(2)
    assert list(future.index) == [pd.Timestamp("2000-03-01"), pd.Timestamp("2000-03-02")]
    # The same numbers as the column as a plain array.
    np.testing.assert_array_equal(future.to_numpy(), f.predict(2, frame["sales"].to_numpy()))
    with pytest.raises(ValueError, match="column must name the column"):
        Forecaster(**TINY).fit(frame)
    with pytest.raises(KeyError, match="'nope' is not a column"):
        Forecaster(**TINY).fit(frame, column="nope")


def test_a_dataframe_with_a_period_index_and_one_column():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"v": wavy(40)},
                         index=pd.period_range("1990Q1", periods=40, freq="Q"))
    future = Forecaster(**TINY).fit(frame).predict(2)
    assert [str(p) for p in future.index] == ["2000Q1", "2000Q2"]


def test_pandas_missing_values_are_an_error():
    pd = pytest.importorskip("pandas")
    values = wavy(60)
    values[10] = np.nan
    with pytest.raises(ValueError, match="fill or drop missing values"):
        Forecaster(**TINY).fit(pd.Series(values))


# -- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("values, params, fragment", [
    (np.full(60, 5.0), {}, "y is constant"),
    (wavy(10), {"lookback": 20}, ("too short: y has 10 values, and one window needs 22 "
                                  "(lookback=20, horizon=1)")),
    (wavy(60) - 100, {"transform": "log-diff"}, ("transform=log-diff needs a series of "
                                                 "positive values; use transform=diff")),
    (wavy(60), {"hidden": 4096, "layers": 64}, ("more than the 250,000,000 the forecaster "
                                                "trains")),
    (wavy(60), {"lr": 1e30}, "training diverged with lr=1e+30"),
])
def test_forecast_errors_name_the_parameters(values, params, fragment):
    with pytest.raises(ForecastError) as e:
        Forecaster(**{**TINY, **params}).fit(values)
    assert fragment in str(e.value)
    assert isinstance(e.value, ValueError)


def test_render_spells_the_parameters_otherwise():
    e = ForecastError("{y} needs {lb}", y=("y", None), lb=("lookback", 3))
    assert str(e) == "y needs lookback=3"
    assert e.render(lambda name, value: f"<{name}:{value}>") == "<y:None> needs <lookback:3>"


@pytest.mark.parametrize("params, error, fragment", [
    ({"lookback": 0}, ValueError, "lookback"),
    ({"cell": "lstmx"}, ValueError, "cell must be one of"),
    ({"dtype": "float16"}, ValueError, "dtype must be one of"),
    ({"lr": -1.0}, ValueError, "lr"),
    ({"hidden": 2.5}, TypeError, "hidden"),
])
def test_bad_parameters_are_named_at_fit(params, error, fragment):
    with pytest.raises(error, match=fragment):
        Forecaster(**{**TINY, **params}).fit(wavy())


def test_bad_inputs(fitted):
    with pytest.raises(ValueError, match="1-D"):
        Forecaster(**TINY).fit(np.ones((60, 2)))
    with pytest.raises(TypeError, match="column and date_column apply to a pandas"):
        Forecaster(**TINY).fit(wavy(), column="x")
    with pytest.raises(ValueError, match="one date per value"):
        Forecaster(**TINY).fit(wavy(), dates=np.arange("2000-01", "2000-03",
                                                       dtype="datetime64[M]"))
    with pytest.raises(ValueError, match="span must be one of"):
        fitted.score(wavy(), span="future")
    with pytest.raises(ForecastError, match="has values <= 0"):
        fitted.score(wavy() - 100)
    with pytest.raises(RuntimeError, match="not fitted"):
        Forecaster().predict(2)
