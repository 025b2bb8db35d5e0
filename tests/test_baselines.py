"""lstm_native.baselines: the naive forecasts by hand, ETS and SARIMA against statsmodels
called directly (parameters, forecasts from several origins, the model selection against
a brute-force loop), no refit over the test span, season_of, and the errors."""
from __future__ import annotations

import itertools
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
