"""lstm_native.baselines: the naive forecasts by hand, ETS and SARIMA against statsmodels
called directly (parameters, forecasts from several origins, the model selection against
a brute-force loop), no refit over the test span, season_of, and the errors."""
from __future__ import annotations

import copy
import itertools
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from lstm_native import baselines as bl
from lstm_native.baselines import (ETS, SARIMA, Naive, SeasonalNaive, baselines,
                                   season_of)
from lstm_native.data import chronological_split, load_dataset

# The forecaster's split of the airline series (70/15/15): the models see y[:N_FIT].
AIRLINE = load_dataset("airline")
N_FIT = sum(len(part) for part in chronological_split(AIRLINE, 0.7, 0.15)[:2])
ORIGINS = [N_FIT - 1, N_FIT + 6, len(AIRLINE) - 5]
# Our forecasts come from the same arithmetic as statsmodels' (ETS) or from its state
# with the differences undone exactly, where statsmodels' own levels start from an
# approximately diffuse state (SARIMA).
RTOL = {"ETS": 1e-10, "SARIMA": 1e-6}


@pytest.fixture
def quiet_statsmodels():
    """statsmodels, quiet (the candidates' non-convergence is expected) and on one BLAS
    thread, as the module runs it (on its small matrices more threads only wait)."""
    sm = pytest.importorskip("statsmodels.api")
    from threadpoolctl import threadpool_limits
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")
        yield sm


@pytest.fixture(scope="module")
def airline_ets():
    pytest.importorskip("statsmodels")
    return ETS(12).fit(AIRLINE[:N_FIT])


@pytest.fixture(scope="module")
def airline_sarima():
    pytest.importorskip("statsmodels")
    return SARIMA(12).fit(AIRLINE[:N_FIT])


# -- the naive ones, by hand ----------------------------------------------------------

def test_naive_repeats_the_origin():
    y = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
    got = Naive().fit(y[:4]).forecast(y, [0, 3, 5], horizon=3)
    np.testing.assert_array_equal(got, [[3, 3, 3], [1, 1, 1], [9, 9, 9]])


def test_seasonal_naive_takes_the_step_a_season_back():
    y = np.array([10, 11, 12, 13, 20, 21, 22, 23, 30, 31], dtype=float)
    model = SeasonalNaive(4).fit(y[:8])
    got = model.forecast(y, [3, 7, 9], horizon=6)
    # step k reads y[o + k - 4 ceil(k / 4)]: the last season, again after four steps
    np.testing.assert_array_equal(got, [[10, 11, 12, 13, 10, 11],
                                        [20, 21, 22, 23, 20, 21],
                                        [22, 23, 30, 31, 22, 23]])
    assert model.describe() == "seasonal naive, season 4"


def test_seasonal_naive_of_season_one_is_naive():
    y = np.arange(1.0, 9.0)
    np.testing.assert_array_equal(SeasonalNaive(1).fit(y).forecast(y, [2, 7], 2),
                                  Naive().fit(y).forecast(y, [2, 7], 2))


# -- ETS against statsmodels ----------------------------------------------------------

def statsmodels_ets(y_fit, spec, season):
    """ETSModel fitted on y_fit as the module's candidates are (initial states
    estimated)."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    return ETSModel(y_fit, **ets_args(spec, season)).fit(disp=False)


def statsmodels_ets_forecasts(y, spec, season, params, origins, horizon):
    """Each origin's forecasts by statsmodels, from y[:o + 1] and the fitted parameters."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    return np.array([np.asarray(ETSModel(y[:o + 1], **ets_args(spec, season))
                                .smooth(params).forecast(horizon))
                     for o in origins])


def ets_args(spec, season):
    error, trend, damped, seasonal = spec
    return {"error": error, "trend": trend, "damped_trend": damped, "seasonal": seasonal,
            "seasonal_periods": season if seasonal else None,
            "initialization_method": "estimated"}


@pytest.mark.parametrize("horizon", [1, 4])
def test_ets_matches_statsmodels_on_the_airline_series(quiet_statsmodels, airline_ets, horizon):
    result = statsmodels_ets(AIRLINE[:N_FIT], airline_ets.spec_, 12)
    np.testing.assert_allclose(airline_ets.params_, result.params, rtol=1e-12)
    expected = statsmodels_ets_forecasts(AIRLINE, airline_ets.spec_, 12,
                                         result.params, ORIGINS, horizon)
    got = airline_ets.forecast(AIRLINE, ORIGINS, horizon)
    np.testing.assert_allclose(got, expected, rtol=RTOL["ETS"])


@pytest.mark.parametrize("spec", [("add", None, False, None), ("add", "add", True, None),
                                  ("mul", "add", True, "mul"), ("add", "add", False, "add"),
                                  ("mul", None, False, "add")],
                         ids=bl._ets_name)
def test_ets_forecasts_of_each_component_match_statsmodels(quiet_statsmodels, monkeypatch, spec):
    monkeypatch.setattr(bl, "_ets_specs", lambda positive, seasonal: [spec])
    season, horizon = 4, 6
    y = wavy(80, season)
    ours = ETS(season).fit(y[:60])
    assert ours.spec_ == spec
    result = statsmodels_ets(y[:60], spec, season)
    origins = [59, 65, 79]
    expected = statsmodels_ets_forecasts(y, spec, season, result.params, origins,
                                         horizon)
    np.testing.assert_allclose(ours.forecast(y, origins, horizon), expected,
                               rtol=RTOL["ETS"])


def test_ets_chooses_the_aicc_minimum_of_the_grid(quiet_statsmodels, airline_ets):
    aicc = {}
    for error, (trend, damped), seasonal in itertools.product(
            ("add", "mul"), ((None, False), ("add", False), ("add", True)),
            (None, "add", "mul")):
        if error == "add" and seasonal == "mul":
            continue   # infinite forecast variance: left out
        spec = (error, trend, damped, seasonal)
        result = statsmodels_ets(AIRLINE[:N_FIT], spec, 12)
        if result.mle_retvals["converged"]:
            aicc[bl._ets_name(spec)] = result.aicc
    assert len(aicc) >= 12
    assert set(aicc) <= set(airline_ets.criteria_)
    for name, value in aicc.items():
        assert airline_ets.criteria_[name] == pytest.approx(value, rel=1e-12)
    assert airline_ets.describe() == min(aicc, key=aicc.get)


def test_ets_of_a_long_season_models_the_stl_adjusted_series(quiet_statsmodels):
    from statsmodels.tsa.seasonal import STL
    season = 30
    y = wavy(200, season)
    ours = ETS(season).fit(y[:150])
    assert ours.describe().startswith("STL(30) + ETS(") and ours.spec_[3] is None
    component = np.asarray(STL(y[:150], period=season).fit().seasonal)
    result = statsmodels_ets(y[:150] - component, ours.spec_, season)
    np.testing.assert_allclose(ours.params_, result.params, rtol=1e-12)
    # After the fit the seasonal component is its last season, repeated.
    continued = np.r_[component, np.resize(component[-season:], 55)]
    origins = [149, 160, 199]   # the last one's forecasts run past the end of y
    expected = statsmodels_ets_forecasts(y - continued[:200], ours.spec_, season,
                                         result.params, origins, 5)
    expected += continued[np.add.outer(origins, np.arange(1, 6))]
    np.testing.assert_allclose(ours.forecast(y, origins, 5), expected, rtol=RTOL["ETS"])


def test_ets_leaves_the_season_out_with_fewer_than_two_seasons(quiet_statsmodels):
    y = wavy(20, 12)
    model = ETS(12).fit(y)
    assert model.spec_[3] is None and all(name.endswith("N)") for name in model.criteria_)


def test_ets_passes_over_candidates_with_too_many_parameters(quiet_statsmodels):
    # Two seasons of five: the seasonal candidates have nine parameters or more for ten
    # values, and an infinite AICc.
    model = ETS(5).fit(wavy(10, 5))
    seasonal = [value for name, value in model.criteria_.items() if not name.endswith("N)")]
    assert seasonal and all(value == np.inf for value in seasonal)
    assert model.spec_[3] is None


# -- SARIMA against statsmodels -------------------------------------------------------

def statsmodels_sarima(y_fit, spec):
    """SARIMAX fitted on y_fit (log or not, Fourier terms or not) as the candidates are;
    its results and its AIC on the levels."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX
    x = np.log(y_fit) if spec["log"] else y_fit
    exog = fourier(np.arange(len(x)), spec["season"], spec["fourier"])
    result = SARIMAX(x, exog=exog, **bl._sarimax_args(spec), simple_differencing=True,
                     concentrate_scale=concentrated(spec)).fit(disp=False, cov_type="none")
    lost = spec["order"][1] + spec["seasonal_order"][1] * spec["seasonal_order"][3]
    return result, result.aic + (2 * np.sum(x[lost:]) if spec["log"] else 0.0)


def statsmodels_sarima_forecasts(y, spec, params, origins, horizon):
    """Each origin's forecasts by statsmodels' own state space of the levels (the
    differences in the state), from y[:o + 1] and the fitted parameters."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX
    x = np.log(y) if spec["log"] else y
    rows = []
    for o in origins:
        t = np.arange(o + 1 + horizon)
        exog = fourier(t, spec["season"], spec["fourier"])
        model = SARIMAX(x[:o + 1], exog=None if exog is None else exog[:o + 1],
                        **bl._sarimax_args(spec), concentrate_scale=concentrated(spec))
        future = None if exog is None else exog[o + 1:]
        rows.append(np.asarray(model.filter(params).forecast(horizon, exog=future)))
    rows = np.array(rows)
    return np.exp(rows) if spec["log"] else rows


def concentrated(spec):
    """Whether the variance is concentrated out: statsmodels cannot when it is the only
    parameter (no ARMA terms, no constant, no regressors)."""
    p, _, q = spec["order"]
    P, _, Q, _ = spec["seasonal_order"]
    return p + q + P + Q + spec["fourier"] > 0 or spec["trend"] is not None


def fourier(t, season, K):
    """The K sine-cosine pairs sin(2 pi k t / m), cos(2 pi k t / m), pair by pair."""
    if not K:
        return None
    angle = 2 * np.pi * np.outer(t, np.arange(1, K + 1)) / season
    return np.column_stack([f(angle[:, k]) for k in range(K) for f in (np.sin, np.cos)])


@pytest.mark.parametrize("horizon", [1, 5])
def test_sarima_matches_statsmodels_on_the_airline_series(quiet_statsmodels, airline_sarima,
                                                          horizon):
    spec = airline_sarima.spec_
    result, _ = statsmodels_sarima(AIRLINE[:N_FIT], spec)
    np.testing.assert_allclose(airline_sarima.params_, result.params, rtol=1e-10)
    expected = statsmodels_sarima_forecasts(AIRLINE, spec, result.params, ORIGINS, horizon)
    np.testing.assert_allclose(airline_sarima.forecast(AIRLINE, ORIGINS, horizon), expected,
                               rtol=RTOL["SARIMA"])


def test_sarima_airline_differences_and_model(airline_sarima):
    # The airline series: strongly seasonal (F_s > 0.64: D = 1), one difference more
    # (d = 1), and Box and Jenkins's airline model on the log wins.
    assert airline_sarima.strength_ > bl.SEASONAL_STRENGTH
    assert airline_sarima.describe() == "SARIMA(0,1,1)(0,1,1)12 on log"


def test_sarima_chooses_the_aic_minimum_of_the_grid(quiet_statsmodels, airline_sarima):
    spec = airline_sarima.spec_
    d, D, m = spec["order"][1], spec["seasonal_order"][1], 12
    # First the scale, on the reference model; then the grid on it.
    reference = {**spec, "order": (1, d, 1), "seasonal_order": (0, D, 1, m)}
    scales = {log: statsmodels_sarima(AIRLINE[:N_FIT], {**reference, "log": log})[1]
              for log in (True, False)}
    log = min(scales, key=scales.get)
    assert spec["log"] == log
    aic = {}
    for p, q, P, Q in itertools.product(range(3), range(3), range(2), range(2)):
        candidate = {**spec, "order": (p, d, q), "seasonal_order": (P, D, Q, m)}
        aic[(p, q, P, Q)] = statsmodels_sarima(AIRLINE[:N_FIT], candidate)[1]
        assert airline_sarima.criteria_[bl._sarima_name(candidate)] == pytest.approx(
            aic[(p, q, P, Q)], rel=1e-10)
    p, q, P, Q = min(aic, key=aic.get)
    assert (spec["order"], spec["seasonal_order"]) == ((p, d, q), (P, D, Q, m))


def test_sarima_without_season_with_a_mean_matches_statsmodels(quiet_statsmodels):
    rng = np.random.default_rng(3)
    e = rng.standard_normal(300)
    y = np.empty(300)
    y[0] = 0.0
    for t in range(1, 300):   # an AR(1) around 2, through zero: the levels, d = 0
        y[t] = 0.6 * y[t - 1] + 0.8 + e[t]
    ours = SARIMA(1).fit(y[:250])
    spec = ours.spec_
    assert not spec["log"] and spec["order"][1] == 0 and spec["trend"] == "c"
    assert ours.describe().endswith("with mean")
    result, _ = statsmodels_sarima(y[:250], spec)
    np.testing.assert_allclose(ours.params_, result.params, rtol=1e-10)
    origins = [249, 260, 290]
    expected = statsmodels_sarima_forecasts(y, spec, result.params, origins, 4)
    np.testing.assert_allclose(ours.forecast(y, origins, 4), expected, rtol=1e-9)


def test_sarima_of_a_long_season_uses_fourier_terms_as_statsmodels(quiet_statsmodels):
    season = 30
    y = wavy(220, season)
    ours = SARIMA(season).fit(y[:180])
    spec = ours.spec_
    assert spec["fourier"] in bl.FOURIER_PAIRS and spec["seasonal_order"][1:3] == (0, 0)
    assert f"Fourier(30, K={spec['fourier']})" in ours.describe()
    result, _ = statsmodels_sarima(y[:180], spec)
    np.testing.assert_allclose(ours.params_, result.params, rtol=1e-10)
    origins = [179, 190, 219]   # the last one's forecasts run past the end of y
    expected = statsmodels_sarima_forecasts(y, spec, result.params, origins, 4)
    np.testing.assert_allclose(ours.forecast(y, origins, 4), expected, rtol=RTOL["SARIMA"])


@pytest.mark.parametrize("kind, expected", [("noise", 0), ("walk", 1), ("double", 2)])
def test_kpss_differences(quiet_statsmodels, kind, expected):
    e = np.random.default_rng(0).standard_normal(400)
    x = {"noise": e, "walk": np.cumsum(e), "double": np.cumsum(np.cumsum(e))}[kind]
    assert bl._ndiffs(x) == expected


# -- no refit over the test span ------------------------------------------------------

@pytest.mark.parametrize("name", ["naive", "seasonal naive", "ETS", "SARIMA"])
def test_forecasts_read_nothing_after_their_origin_and_refit_nothing(
        name, airline_ets, airline_sarima):
    fitted = {"naive": Naive().fit(AIRLINE[:N_FIT]),
              "seasonal naive": SeasonalNaive(12).fit(AIRLINE[:N_FIT]),
              "ETS": airline_ets, "SARIMA": airline_sarima}[name]
    before = {key: np.copy(value) if isinstance(value, np.ndarray) else value
              for key, value in vars(fitted).items() if key.endswith("_")}
    origins = np.arange(N_FIT - 1, len(AIRLINE) - 1)
    forecasts = fitted.forecast(AIRLINE, origins, 3)
    cut = N_FIT + 8
    changed = AIRLINE.copy()
    changed[cut + 1:] *= 1.7
    again = fitted.forecast(changed, origins, 3)
    np.testing.assert_array_equal(again[origins <= cut], forecasts[origins <= cut])
    assert not np.allclose(again[origins > cut + 12], forecasts[origins > cut + 12])
    for key, value in before.items():
        np.testing.assert_array_equal(getattr(fitted, key), value, err_msg=key)


def test_forecasts_of_the_test_span_score_as_expected(airline_ets, airline_sarima):
    # The test span's one-step RMSE: a check on the whole pipeline's sense.
    origins = np.arange(N_FIT - 1, len(AIRLINE) - 1)
    actual = AIRLINE[origins + 1]

    def rmse(model):
        return np.sqrt(np.mean((model.forecast(AIRLINE, origins)[:, 0] - actual) ** 2))
    naive = rmse(Naive().fit(AIRLINE[:N_FIT]))
    assert rmse(airline_sarima) < 0.35 * naive
    assert rmse(airline_ets) < 0.5 * naive


# -- the standard set -----------------------------------------------------------------

def test_baselines_standard_set():
    assert [b.name for b in baselines(1, statsmodels=False)] == ["naive"]
    assert [b.name for b in baselines(12, statsmodels=False)] == ["naive", "seasonal naive"]
    pytest.importorskip("statsmodels")
    chosen = baselines(12)
    assert [b.name for b in chosen] == ["naive", "seasonal naive", "ETS", "SARIMA"]
    assert all(b.season == 12 for b in chosen[1:])


def test_without_statsmodels_the_naive_ones_remain(monkeypatch):
    monkeypatch.setitem(sys.modules, "statsmodels", None)   # `import statsmodels` fails
    assert [b.name for b in baselines(12)] == ["naive", "seasonal naive"]
    for model in (ETS(12), SARIMA(12)):
        with pytest.raises(ImportError, match=f"{model.name} needs statsmodels"):
            model.fit(AIRLINE)


def test_the_module_imports_with_numpy_only():
    code = ("import sys, lstm_native, lstm_native.baselines; "
            "print(sorted(m for m in ('statsmodels', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_fits_are_quiet_when_they_import_statsmodels():
    # statsmodels sets warning filters of its own on import: imported inside the fit's
    # silence, they overrode it.
    pytest.importorskip("statsmodels")
    code = ("from lstm_native.baselines import ETS, SARIMA; "
            "from lstm_native.data import load_dataset; y = load_dataset('airline')[:121]; "
            "SARIMA(12).fit(y); ETS(12).fit(y)")
    run = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                         text=True, check=True)
    assert run.stderr == ""


# -- season_of ------------------------------------------------------------------------

@pytest.mark.parametrize("freq, season", [
    ("h", 24), ("D", 7), ("B", 5), ("W-SUN", 52), ("W-WED", 52), ("MS", 12), ("ME", 12),
    ("QS", 4), ("QE-DEC", 4), ("YS", 1), ("YE", 1), ("min", 1), ("2D", 1)])
def test_season_of_a_datetime_index(freq, season):
    pd = pytest.importorskip("pandas")
    index = pd.date_range("2019-12-30", periods=40, freq=freq)
    assert season_of(index) == season
    assert season_of(pd.Series(index)) == season
    assert season_of(index.to_numpy()) == season


@pytest.mark.parametrize("freq, season", [("h", 24), ("D", 7), ("W", 52),
                                          ("M", 12), ("Q", 4), ("Y", 1)])
def test_season_of_a_period_index(freq, season):
    pd = pytest.importorskip("pandas")
    assert season_of(pd.period_range("2019-12", periods=40, freq=freq)) == season


@pytest.mark.parametrize("unit, step, season", [("M", 1, 12), ("D", 7, 52), ("D", 1, 7),
                                                ("h", 1, 24), ("M", 3, 4), ("Y", 1, 1),
                                                ("s", 1, 1)])
def test_season_of_datetime64(unit, step, season):
    dates = np.arange(0, 40 * step, step).astype(f"datetime64[{unit}]")
    assert season_of(dates) == season


def test_season_of_ignores_a_few_missing_dates_and_a_time_zone():
    pd = pytest.importorskip("pandas")
    months = pd.date_range("2000-01", periods=36, freq="MS").delete([5, 17])
    assert season_of(months) == 12
    assert season_of(pd.date_range("2021-03-20", periods=500, freq="h",
                                    tz="Europe/Paris")) == 24


def test_season_of_too_few_dates_is_one():
    assert season_of(None) == 1
    assert season_of(np.array(["2020-01", "2020-02"], dtype="datetime64[M]")) == 1


def test_season_of_rejects_what_are_not_dates():
    with pytest.raises(TypeError, match="dates must be"):
        season_of(np.arange(10))
    pd = pytest.importorskip("pandas")
    with pytest.raises(TypeError, match="dates must be"):
        season_of(pd.Index([1, 2, 3]))


# -- errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("make", [SeasonalNaive, ETS, SARIMA])
def test_season_must_be_a_positive_int(make):
    with pytest.raises(ValueError, match="season must be an int >= 1, got 0"):
        make(0)
    with pytest.raises(TypeError, match="season must be an int"):
        make(12.0)
    with pytest.raises(ValueError, match="season"):
        baselines(-1)


def test_origins_horizon_and_series_are_checked():
    y = np.arange(1.0, 30.0)
    model = SeasonalNaive(12).fit(y[:24])
    with pytest.raises(ValueError, match=r"origins must be in 11\.\.28 \(seasonal naive, "
                       r"season 12 needs 12 values up to an origin, and y has 29\), "
                       r"got 10\.\.20"):
        model.forecast(y, [10, 20])
    with pytest.raises(ValueError, match=r"origins must be in 11\.\.28.*got 12\.\.29"):
        model.forecast(y, [12, 29])
    with pytest.raises(TypeError, match="origins must be a 1-D sequence of ints"):
        model.forecast(y, [12.0])
    with pytest.raises(TypeError, match="origins must be a 1-D sequence of ints"):
        model.forecast(y, 12)
    with pytest.raises(ValueError, match="horizon must be an int >= 1"):
        model.forecast(y, [12], horizon=0)
    with pytest.raises(ValueError, match="y must be one series"):
        model.forecast(y[:, None], [12])
    with pytest.raises(ValueError, match="y_fit"):
        Naive().fit([1.0, np.nan])
    assert model.forecast(y, [], 2).shape == (0, 2)


def test_forecast_before_fit():
    with pytest.raises(RuntimeError, match="not fitted"):
        Naive().forecast([1.0, 2.0], [0])
    with pytest.raises(RuntimeError, match="not fitted"):
        ETS(4).describe()


def test_too_short_y_fit_is_named():
    with pytest.raises(ValueError, match=r"y_fit has 11 values.*one full season \(season=12\)"):
        SeasonalNaive(12).fit(np.arange(11.0))
    pytest.importorskip("statsmodels")
    for model in (ETS(4), SARIMA(4)):
        with pytest.raises(ValueError, match="y_fit has 8 values"):
            model.fit(np.arange(1.0, 9.0))


def test_a_log_model_needs_positive_values(airline_sarima, airline_ets):
    y = AIRLINE.copy()
    y[-1] = -1.0
    for model in (airline_sarima, airline_ets):   # on the log / multiplicative
        with pytest.raises(ValueError, match="y has values <= 0"):
            model.forecast(y, [N_FIT - 1])


def wavy(n, season):
    """A positive series with a trend, a season and some noise."""
    t = np.arange(n)
    noise = np.random.default_rng(1).standard_normal(n)
    return 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / season) + noise


# -- states: get_state and baseline_from_state ---------------------------------------

# A weekly-like series: its season, 52, is over MAX_SEASON, so that ETS takes STL's
# seasonal component out and SARIMA takes Fourier terms.
WEEKLY = wavy(300, 52)
WEEKLY_FIT = 240
SERIES = {"airline": (AIRLINE, N_FIT, 12), "weekly": (WEEKLY, WEEKLY_FIT, 52)}
MAKERS = {"Naive": lambda season: Naive(), "SeasonalNaive": SeasonalNaive, "ETS": ETS,
          "SARIMA": SARIMA}


@pytest.fixture(scope="module")
def fitted():
    """Each baseline fitted on each series, by (class name, series name)."""
    models = {}

    def get(name, series):
        if (name, series) not in models:
            if name in ("ETS", "SARIMA"):
                pytest.importorskip("statsmodels")
            y, n_fit, season = SERIES[series]
            models[name, series] = MAKERS[name](season).fit(y[:n_fit])
        return models[name, series]
    return get


def through_json(state):
    """The state as a checkpoint's JSON metadata gives it back (no NaN, no inf)."""
    return json.loads(json.dumps(state, allow_nan=False))


@pytest.mark.parametrize("series", SERIES)
@pytest.mark.parametrize("name", MAKERS)
def test_a_rebuilt_baseline_forecasts_bitwise_as_the_fitted_one(fitted, name, series):
    y, n_fit, season = SERIES[series]
    original = fitted(name, series)
    rebuilt = bl.baseline_from_state(through_json(original.get_state()))
    assert type(rebuilt) is type(original)
    assert rebuilt.describe() == original.describe()
    assert (rebuilt.n_fit_, rebuilt.seconds_) == (n_fit, original.seconds_)
    if name != "Naive":
        assert rebuilt.season == season
    if name in ("ETS", "SARIMA"):
        assert rebuilt.spec_ == original.spec_
        assert rebuilt.param_names_ == original.param_names_
        np.testing.assert_array_equal(rebuilt.params_, original.params_)
    first = original._first_origin()
    # From the fit span's first origin, its end, the test span and the series' end; the
    # last forecasts run past the end of y.
    origins = [first, first + 3, n_fit - 1, n_fit + 7, len(y) - 1]
    for horizon in (1, 5, 60):
        np.testing.assert_array_equal(rebuilt.forecast(y, origins, horizon),
                                      original.forecast(y, origins, horizon))
    # And on a longer series than the fitted one, of the same values.
    longer = np.r_[y, y[-season:] * 1.05] if season > 1 else np.r_[y, y[-5:]]
    np.testing.assert_array_equal(rebuilt.forecast(longer, [len(longer) - 1], 3),
                                  original.forecast(longer, [len(longer) - 1], 3))


def test_the_weekly_states_take_the_long_season_paths(fitted):
    ets, sarima = fitted("ETS", "weekly"), fitted("SARIMA", "weekly")
    assert ets.describe().startswith("STL(52) + ")
    assert len(ets.get_state()["stl_seasonal"]) == WEEKLY_FIT
    assert sarima.get_state()["spec"]["fourier"] in bl.FOURIER_PAIRS
    assert any(name.startswith("fourier.") for name in sarima.get_state()["params"])


def test_states_are_json_values(fitted):
    def check(value, path):
        assert type(value) in (dict, list, str, int, float, bool, type(None)), path
        if type(value) is float:
            assert np.isfinite(value), path
        for key, item in (value.items() if type(value) is dict else
                          enumerate(value) if type(value) is list else ()):
            assert type(key) in (str, int), path
            check(item, f"{path}/{key}")
    for name in MAKERS:
        for series in SERIES:
            state = fitted(name, series).get_state()
            check(state, f"{name}, {series}")
            assert state["class"] == name


def test_the_airline_sarima_state(fitted):
    state = fitted("SARIMA", "airline").get_state()
    assert {key: value for key, value in state.items() if key != "params"} == {
        "class": "SARIMA", "season": 12, "n_fit": N_FIT, "seconds": state["seconds"],
        "spec": {"log": True, "order": [0, 1, 1], "seasonal_order": [0, 1, 1, 12],
                 "trend": None, "fourier": 0}}
    assert list(state["params"]) == ["ma.L1", "ma.S.L12"]


def test_a_rebuilt_baseline_refits_nothing(fitted, monkeypatch):
    pytest.importorskip("statsmodels")
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    from statsmodels.tsa.statespace.sarimax import SARIMAX
    states = {(name, series): fitted(name, series).get_state()
              for name in ("ETS", "SARIMA") for series in SERIES}

    def refit(*args, **kwargs):
        raise AssertionError("refitted")
    for cls in (ETSModel, SARIMAX):
        monkeypatch.setattr(cls, "fit", refit)
    for step in ("_stl", "_ndiffs", "_fit_sarima"):   # STL's fit is a C type's: its caller
        monkeypatch.setattr(bl, step, refit)
    for (name, series), state in states.items():
        y, n_fit, _ = SERIES[series]
        rebuilt = bl.baseline_from_state(state)
        assert rebuilt.forecast(y, [n_fit - 1], 2).shape == (1, 2)


def test_states_go_through_a_checkpoint(fitted, tmp_path):
    from lstm_native import Linear, load_checkpoint, save_checkpoint
    states = [fitted(name, "airline").get_state() for name in MAKERS]
    save_checkpoint(tmp_path / "forecaster.npz", Linear(1, 1, seed=0),
                    extra={"baselines": states})
    loaded = load_checkpoint(tmp_path / "forecaster.npz")["extra"]["baselines"]
    origins = [N_FIT - 1, len(AIRLINE) - 1]
    for name, state in zip(MAKERS, loaded):
        np.testing.assert_array_equal(bl.baseline_from_state(state).forecast(AIRLINE, origins, 4),
                                      fitted(name, "airline").forecast(AIRLINE, origins, 4))


def test_the_naive_states_need_numpy_only():
    code = ("import sys; import numpy as np; "
            "from lstm_native.baselines import Naive, SeasonalNaive, baseline_from_state; "
            "y = np.arange(1.0, 40.0); "
            "states = [Naive().fit(y[:30]).get_state(), "
            "          SeasonalNaive(12).fit(y[:30]).get_state()]; "
            "print([baseline_from_state(s).forecast(y, [30], 2).tolist() for s in states], "
            "'statsmodels' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[[[31.0, 31.0]], [[20.0, 21.0]]] False"


def test_a_rebuilt_baseline_needs_statsmodels_only_to_forecast(fitted, monkeypatch):
    states = [fitted(name, "airline").get_state() for name in ("ETS", "SARIMA")]
    monkeypatch.setitem(sys.modules, "statsmodels", None)   # `import statsmodels` fails
    for state in states:
        rebuilt = bl.baseline_from_state(state)
        with pytest.raises(ImportError, match=f"{rebuilt.name} needs statsmodels"):
            rebuilt.forecast(AIRLINE, [N_FIT - 1])


def test_the_param_names_are_statsmodels(quiet_statsmodels):
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    from statsmodels.tsa.statespace.sarimax import SARIMAX
    y = wavy(60, 4)
    for spec in bl._ets_specs(True, True):
        assert bl._ets_param_names(spec, 4) == ETSModel(y, **ets_args(spec, 4)).param_names
    for (p, q, P, Q), (d, D), K in itertools.product(
            itertools.product(range(3), range(3), range(2), range(2)),
            ((0, 0), (1, 0), (0, 1), (1, 1), (2, 0)), (0, 2)):
        spec = {"log": False, "order": (p, d, q), "seasonal_order": (P, D, Q, 4 * (not K)),
                "trend": "c" if d + D <= 1 else None, "season": 4, "fourier": K}
        if K and (P or Q or D):
            continue
        model = SARIMAX(y, exog=fourier(np.arange(60), 4, K), **bl._sarimax_args(spec),
                        concentrate_scale=concentrated(spec))
        names = [f"fourier.{n}" if n in (model.exog_names or ()) else n
                 for n in model.param_names]
        assert bl._sarima_param_names(spec) == names, spec


def test_get_state_before_fit():
    for model in (Naive(), SeasonalNaive(4), ETS(4), SARIMA(4)):
        with pytest.raises(RuntimeError, match=f"this {type(model).__name__} is not fitted"):
            model.get_state()


def test_the_season_is_at_most_longest_season():
    assert SeasonalNaive(bl.LONGEST_SEASON).season == bl.LONGEST_SEASON
    for make in (SeasonalNaive, ETS, SARIMA):
        with pytest.raises(ValueError, match=r"season must be at most LONGEST_SEASON = 1048576, "
                                             r"got 1048577"):
            make(bl.LONGEST_SEASON + 1)


def deep(n):
    nested = 0
    for _ in range(n):
        nested = [nested]
    return nested


def replace(**changes):
    """A change of a state: keys to new values (bl.__dict__ sentinel DELETE removes),
    a dotted key for a nested one ("spec/order")."""
    def change(state):
        for dotted, value in changes.items():
            *outer, key = dotted.split("/")
            node = state
            for part in outer:
                node = node[part]
            if value is DELETE:
                del node[key]
            else:
                node[key] = value(node.get(key)) if callable(value) else value
        return state
    return change


DELETE = object()

# (class, series, change of its state, the error's message)
REFUSALS = [
    ("Naive", "airline", lambda s: [s], r"state must be a dict, got \[\{"),
    ("Naive", "airline", replace(**{"class": "LSTM"}),
     r"state\['class'\] must be one of 'Naive', 'SeasonalNaive', 'ETS', 'SARIMA', got 'LSTM'"),
    ("Naive", "airline", replace(**{"class": ["Naive"]}), r"state\['class'\] must be one of"),
    ("Naive", "airline", replace(**{"class": DELETE}), r"state\['class'\] must be one of.*None"),
    ("Naive", "airline", replace(n_fit=DELETE),
     r"state must have the keys \['class', 'n_fit', 'seconds'\]: missing \['n_fit'\]"),
    ("Naive", "airline", replace(season=12), r"unknown \['season'\]"),
    ("Naive", "airline", replace(n_fit=0),
     r"state\['n_fit'\] must be an int in 1\.\.1099511627776, got 0"),
    ("Naive", "airline", replace(n_fit=120.0),
     r"state\['n_fit'\] must be an int in 1\.\.1099511627776, got 120\.0"),
    ("Naive", "airline", replace(n_fit=True),
     r"state\['n_fit'\] must be an int in 1\.\.1099511627776, got True"),
    ("Naive", "airline", replace(n_fit=deep(10000)), r"state\['n_fit'\] must be an int in 1\.\."),
    ("Naive", "airline", replace(n_fit=2 ** 40 + 1),
     r"state\['n_fit'\] must be an int in 1\.\.1099511627776, got 1099511627777"),
    ("Naive", "airline", replace(n_fit=10 ** 5000),
     r"state\['n_fit'\] must be an int in 1\.\.1099511627776, got an int of 16610 bits"),
    ("Naive", "airline", replace(seconds=float("nan")),
     r"state\['seconds'\] must be a finite number >= 0\.0, got nan"),
    ("Naive", "airline", replace(seconds=-1.0), r"state\['seconds'\] must be a finite number"),
    ("Naive", "airline", replace(seconds="1"), r"state\['seconds'\] must be a finite number"),
    # One full season of n_fit, as the fit.
    ("SeasonalNaive", "airline", replace(season=0),
     rf"state\['season'\] must be an int in 1\.\.{N_FIT}, got 0"),
    ("SeasonalNaive", "airline", replace(season=N_FIT + 1),
     rf"state\['season'\] must be an int in 1\.\.{N_FIT}, got {N_FIT + 1}"),
    ("SeasonalNaive", "airline", replace(season="12"), r"state\['season'\] must be an int"),
    ("SeasonalNaive", "airline", replace(season=12.0), r"state\['season'\] must be an int"),
    ("SeasonalNaive", "airline", replace(season=DELETE), r"missing \['season'\]"),
    ("ETS", "airline", replace(season=bl.LONGEST_SEASON + 1),
     r"state\['season'\] must be an int in 1\.\.1048576, got 1048577"),
    ("ETS", "airline", replace(season=-12), r"state\['season'\] must be an int in 1\.\.1048576"),
    ("ETS", "airline", replace(n_fit=9),
     r"state\['n_fit'\] must be an int in 10\.\.1099511627776, got 9"),
    ("ETS", "airline", replace(spec=["mul", "add", False, "mul"]),
     r"state\['spec'\] must be a dict, got \['mul'"),
    ("ETS", "airline", replace(**{"spec/damping": True}),
     (r"state\['spec'\] must have the keys \['error', 'trend', 'damped', 'seasonal'\]: "
     r"unknown \['damping'\]")),
    ("ETS", "airline", replace(**{"spec/error": "none"}),
     r"state\['spec'\]\['error'\] must be one of 'add', 'mul', got 'none'"),
    ("ETS", "airline", replace(**{"spec/damped": 1}),
     r"state\['spec'\]\['damped'\] must be one of False, True, got 1"),
    ("ETS", "airline", replace(**{"spec/trend": "mul"}), r"\['trend'\] must be one of None, 'add'"),
    # Outside the grid: additive error with a multiplicative season; damped without trend.
    ("ETS", "airline", replace(**{"spec/error": "add"}),
     r"state\['spec'\] must be one of ETS's candidates .*, got ETS\(A,A,M\)"),
    ("ETS", "airline", replace(**{"spec/trend": None, "spec/damped": True}),
     r"state\['spec'\] must be one of ETS's candidates .*, got ETS\(M,Nd,M\)"),
    # A seasonal spec where the fit has none: fewer than two seasons; a season over 24.
    ("ETS", "airline", replace(n_fit=23),
     (r"state\['spec'\]\['seasonal'\] must be one of None \(n_fit = 23 is less than two "
     r"seasons of 12\), got 'mul'")),
    ("ETS", "weekly", replace(**{"spec/seasonal": "add"}),
     r"\['seasonal'\] must be one of None \(the season 52 is over MAX_SEASON = 24\)"),
    ("ETS", "airline", replace(season=1), r"\['seasonal'\] must be one of None \(no season\)"),
    ("ETS", "airline", replace(params=[0.5]), r"state\['params'\] must be a dict"),
    ("ETS", "airline", replace(**{"params/initial_seasonal.11": DELETE}),
     (r"state\['params'\] must have the keys \['smoothing_level', .*missing "
     r"\['initial_seasonal\.11'\]")),
    ("ETS", "airline", replace(**{"params/initial_seasonal.12": 1.0}),
     r"state\['params'\] must have the keys .*unknown \['initial_seasonal\.12'\]"),
    ("ETS", "airline", replace(**{"params/smoothing_level": float("nan")}),
     (r"state\['params'\]\['smoothing_level'\] must be a finite number in \[0\.0, 1\.0\], "
     r"got nan")),
    ("ETS", "airline", replace(**{"params/smoothing_level": 1.5}),
     r"\['smoothing_level'\] must be a finite number in \[0\.0, 1\.0\], got 1\.5"),
    ("ETS", "airline", replace(**{"params/initial_level": 10 ** 400}),
     r"state\['params'\]\['initial_level'\] must be a finite number, got 1000"),
    ("ETS", "airline", replace(**{"params/initial_level": float("inf")}),
     r"\['initial_level'\] must be a finite number, got inf"),
    ("ETS", "airline", replace(**{"params/initial_level": "111"}),
     r"\['initial_level'\] must be a finite number, got '111'"),
    ("ETS", "airline", replace(stl_seasonal=[0.0] * N_FIT),
     (r"state\['stl_seasonal'\] must be one of None \(STL only for a season over "
     r"MAX_SEASON = 24 with two seasons of n_fit\), got \[0\.0")),
    ("ETS", "weekly", replace(stl_seasonal=None),
     r"state\['stl_seasonal'\] must be a list of 240 finite numbers, got None"),
    ("ETS", "weekly", replace(stl_seasonal=lambda s: s[:-1]),
     r"state\['stl_seasonal'\] must be a list of 240 finite numbers"),
    ("ETS", "weekly", replace(stl_seasonal=lambda s: s * 1000),
     r"state\['stl_seasonal'\] must be a list of 240 finite numbers"),
    ("ETS", "weekly", replace(stl_seasonal=lambda s: {"values": s}),
     r"state\['stl_seasonal'\] must be a list of 240"),
    ("ETS", "weekly", replace(stl_seasonal=lambda s: s[:7] + [float("-inf")] + s[8:]),
     r"state\['stl_seasonal'\]\[7\] must be a finite number, got -inf"),
    ("ETS", "weekly", replace(stl_seasonal=lambda s: s[:7] + [None] + s[8:]),
     r"state\['stl_seasonal'\]\[7\] must be a finite number, got None"),
    # Without two seasons of n_fit the weekly series has no STL either.
    ("ETS", "weekly", replace(n_fit=100), r"state\['stl_seasonal'\] must be one of None"),
    ("SARIMA", "airline", replace(spec=DELETE), r"missing \['spec'\]"),
    ("SARIMA", "airline", replace(**{"spec/season": 12}), r"unknown \['season'\]"),
    ("SARIMA", "airline", replace(**{"spec/log": 1}),
     r"state\['spec'\]\['log'\] must be one of False, True, got 1"),
    ("SARIMA", "airline", replace(**{"spec/order": [3, 1, 1]}),
     (r"state\['spec'\]\['order'\] must be a list \[0\.\.2, 0\.\.2, 0\.\.2\] of ints, "
     r"got \[3, 1, 1\]")),
    ("SARIMA", "airline", replace(**{"spec/order": [0, 1]}), r"\['order'\] must be a list"),
    ("SARIMA", "airline", replace(**{"spec/order": [0, 1.0, 1]}), r"\['order'\] must be a list"),
    ("SARIMA", "airline", replace(**{"spec/order": "011"}), r"\['order'\] must be a list"),
    ("SARIMA", "airline", replace(**{"spec/seasonal_order": [0, 1, 1, 4]}),
     (r"\['seasonal_order'\] must be a list \[0\.\.1, 0\.\.1, 0\.\.1, 12\.\.12\] of ints "
     r"\(\(P, D, Q, season\)\), got \[0, 1, 1, 4\]")),
    ("SARIMA", "airline", replace(**{"spec/seasonal_order": [0, 2, 1, 12]}),
     r"\['seasonal_order'\] must be a list"),
    ("SARIMA", "weekly", replace(**{"spec/seasonal_order": [0, 1, 1, 52]}),
     (r"\['seasonal_order'\] must be a list \[0\.\.0, 0\.\.0, 0\.\.0, 0\.\.0\] of ints "
     r"\(Fourier terms for a season over MAX_SEASON\)")),
    ("SARIMA", "airline", replace(**{"spec/trend": "c"}),
     (r"state\['spec'\]\['trend'\] must be one of None \(a constant when d \+ D <= 1; "
     r"d \+ D = 2\), got 'c'")),
    ("SARIMA", "airline", replace(**{"spec/fourier": 2}),
     (r"\['fourier'\] must be one of 0 \(Fourier terms only for a season over MAX_SEASON = 24 "
     r"with two seasons of n_fit\), got 2")),
    ("SARIMA", "weekly", replace(**{"spec/fourier": 6}),
     r"\['fourier'\] must be one of 1, 2, 3, 4, 5 \(K\), got 6"),
    ("SARIMA", "airline", replace(**{"params/ma.S.L12": DELETE}),
     r"state\['params'\] must have the keys \['ma\.L1', 'ma\.S\.L12'\]: missing"),
    # A parameter vector longer than the spec's: the extra one is refused.
    ("SARIMA", "airline", replace(**{"params/ar.L1": 0.1}), r"unknown \['ar\.L1'\]"),
    ("SARIMA", "airline", replace(**{"params/ma.L1": float("nan")}),
     r"state\['params'\]\['ma\.L1'\] must be a finite number, got nan"),
    ("SARIMA", "airline", replace(**{"params/ma.L1": True}),
     r"\['ma\.L1'\] must be a finite number, got True"),
    ("SARIMA", "airline", replace(**{"spec/order": [2, 1, 1], "params": {
        "ar.L1": 0.5, "ar.L2": 0.6, "ma.L1": -0.3, "ma.S.L12": -0.5}}),
     r"state\['params'\] must have a stationary autoregression, got coefficients \[0\.5, 0\.6\]"),
    ("SARIMA", "airline", replace(**{"spec/seasonal_order": [1, 1, 1, 12], "params": {
        "ma.L1": -0.3, "ar.S.L12": -1.0, "ma.S.L12": -0.5}}),
     r"stationary autoregression, got coefficients \[-1\.0\]"),
    ("SARIMA", "airline", replace(**{"spec/order": [0, 1, 0], "spec/seasonal_order": [0, 1, 0, 12],
                                    "params": {"sigma2": 0.0}}),
     r"state\['params'\]\['sigma2'\] must be > 0 \(a variance\), got 0\.0"),
]


@pytest.mark.parametrize("name, series, change, message", REFUSALS,
                         ids=[f"{r[0]}-{r[1]}-{i}" for i, r in enumerate(REFUSALS)])
def test_a_damaged_state_is_refused_by_its_key(fitted, name, series, change, message):
    state = change(copy.deepcopy(fitted(name, series).get_state()))
    with pytest.raises(ValueError, match=message):
        bl.baseline_from_state(state)


@pytest.mark.parametrize("change", [
    replace(**{"spec/order": [2, 1, 1], "params": {"ar.L1": 0.5, "ar.L2": 0.3,
                                                   "ma.L1": -0.3, "ma.S.L12": -0.5}}),
    replace(**{"spec/seasonal_order": [1, 1, 1, 12], "params": {
        "ma.L1": -0.3, "ar.S.L12": -0.9, "ma.S.L12": -0.5}}),
    replace(**{"spec/order": [0, 1, 0], "spec/seasonal_order": [0, 1, 0, 12],
               "params": {"sigma2": 0.01}})])
def test_the_refusals_of_sarima_params_let_a_fit_pass(fitted, change):
    # The same changes as the refused ones above, with parameters a fit can give.
    state = change(copy.deepcopy(fitted("SARIMA", "airline").get_state()))
    assert bl.baseline_from_state(state).forecast(AIRLINE, [N_FIT], 2).shape == (1, 2)


def test_first_origin_is_where_forecasts_start():
    y = np.arange(1.0, 41.0)
    assert Naive().fit(y).first_origin() == 0
    seasonal = SeasonalNaive(12).fit(y)
    assert seasonal.first_origin() == 11
    seasonal.forecast(y, [11], 1)
    with pytest.raises(ValueError, match="origins must be in 11"):
        seasonal.forecast(y, [10], 1)
    with pytest.raises(RuntimeError, match="not fitted"):
        Naive().first_origin()
