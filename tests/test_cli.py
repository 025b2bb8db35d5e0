"""The command line, end to end on tiny settings: forecast, predict, CSV data, errors."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import lstm_native as ln
from lstm_native import cli
from lstm_native.forecasting import Forecaster
from conftest import has_matplotlib, last_json, run_cli

# The plain method, fast, no backtest; the default run (hybrid, backtest) has its own
# tests.
TINY = ["--method", "lstm", "--epochs", "2", "--hidden", "4", "--batch-size", "32",
        "--backtest", "0"]


@pytest.fixture
def trained(tmp_path_factory):
    """A tiny forecaster trained on the airline series: (out dir, its JSON summary)."""
    out = tmp_path_factory.mktemp("airline")
    code = cli.main(["forecast", *TINY, "--out", str(out), "--json", "--quiet"])
    assert code == 0
    return out


def test_forecast_json_model_and_plots(tmp_path, capsys):
    code, out, err = run_cli(capsys, ["forecast", *TINY, "--out", str(tmp_path), "--json"])
    assert code == 0, err
    result = last_json(out)
    for key in ("rmse", "naive_rmse", "epochs", "seconds", "model_path"):
        assert key in result
    assert math.isfinite(result["rmse"]) and result["rmse"] > 0
    # The persistence forecast on the airline test split (1959-02 .. 1960-12).
    assert result["naive_rmse"] == pytest.approx(52.678, abs=1e-3)
    assert result["epochs"] == 2 and result["test_windows"] == 23
    assert os.path.isfile(result["model_path"]) and result["cell"] == "lstm"
    # Verbose (the default): the settings and a line per epoch before the results.
    assert "epoch 1/2" in out and "epoch 2/2" in out and "naive" in out

    loaded = ln.load_checkpoint(result["model_path"])
    settings = loaded["extra"]["settings"]
    assert settings["data"] == "airline" and settings["lookback"] == 12
    assert settings["cell"] == "lstm" and type(loaded["model"].layers[0]) is ln.LSTM
    assert settings["transform"] == "log-diff"
    assert loaded["extra"]["scaler"]["class"] == "StandardScaler"
    assert loaded["extra"]["history"]["epoch"] == [1, 2]
    assert loaded["epoch"] == 2

    plots = [tmp_path / "forecast.png", tmp_path / "loss.png"]
    if has_matplotlib():
        assert result["plots"] == [str(p) for p in plots]
        for p in plots:
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert result["plots"] == [] and "matplotlib is not installed" in out


def test_without_matplotlib_the_plots_are_skipped_with_a_message(tmp_path, capsys,
                                                                 monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    code, out, _ = run_cli(capsys, ["forecast", *TINY, "--out", str(tmp_path), "--quiet",
                                 "--json"])
    assert code == 0
    assert "matplotlib is not installed: skipped the plots" in out
    assert last_json(out)["plots"] == []
    assert not (tmp_path / "forecast.png").exists()


def test_no_subcommand_means_forecast(tmp_path, capsys):
    code, out, _ = run_cli(capsys, ["--epochs", "1", "--hidden", "4", "--out", str(tmp_path),
                                 "--quiet", "--json", "--horizon", "2", "--layers", "2"])
    assert code == 0
    result = last_json(out)
    assert result["epochs"] == 1 and math.isfinite(result["rmse"])
    # --quiet: the results only, no progress.
    assert "epoch 1/1" not in out
    # The default method: the hybrid, an ensemble of five, one checkpoint.
    assert result["method"] == "hybrid"
    saved = ln.load_checkpoint(result["model_path"])
    assert saved["extra"]["settings"]["method"] == "hybrid"
    assert len(saved["model"].members) == 5
    # And a backtest over five origins, its summary printed.
    assert len(result["backtest"]["folds"]) == 5
    assert "backtest over 5 origins (" in out
    assert "fold 1/5" not in out   # --quiet: no progress lines


def test_the_backtest_reports_each_fold_and_the_summary(tmp_path, capsys):
    args = ["forecast", *TINY[:-1], "2", "--out", str(tmp_path), "--json"]
    code, out, err = run_cli(capsys, args)
    assert code == 0, err
    tested = last_json(out)["backtest"]
    folds, summary = tested["folds"], tested["summary"]
    # The airline test part (1959-02 .. 1960-12, 23 months) in two blocks, the first
    # one longer.
    assert [(f["first_date"], f["last_date"]) for f in folds] == [
        ("1959-02", "1960-01"), ("1960-02", "1960-12")]
    for i, f in enumerate(folds):
        assert (f"fold {i + 1}/2  {f['first_date']}..{f['last_date']}  {f['windows']} "
                f"windows  RMSE {f['rmse']:.4g}") in out
    ours = summary["model"]
    assert (f"  ours            {ours['mean']:.4g} ± {ours['std']:.4g} [{ours['min']:.4g}, "
            f"{ours['max']:.4g}]  pooled {ours['pooled']:.4g}") in out
    assert set(summary["baselines"]) == {"naive", "seasonal naive", "ETS", "SARIMA"}
    assert (f"in {summary['at_least_as_accurate']} of 2 folds; mean ratio to it "
            f"{summary['mean_ratio_to_best']:.3f}") in out


def test_too_many_backtest_folds_is_an_error(tmp_path, capsys):
    code, out, err = run_cli(capsys, ["forecast", *TINY[:-1], "100", "--out", str(tmp_path)])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--backtest 100: " in err and "at most 23 folds" in err


def test_predict_runs_the_saved_model(trained, capsys):
    model = str(trained / "model.npz")
    code, out, err = run_cli(capsys, ["predict", "--model", model, "--steps", "3", "--json"])
    assert code == 0, err
    result = last_json(out)
    assert result["labels"] == ["1961-01", "1961-02", "1961-03"]
    assert len(result["forecast"]) == 3 and all(math.isfinite(v) for v in result["forecast"])
    assert result["windows"] == 144 - 1 - 12
    assert math.isfinite(result["rmse"]) and result["naive_rmse"] > 0
    assert "1961-01" in out


@pytest.mark.parametrize("cell, layer, config", [
    ("gru", ln.GRU, {"reset_after": True}),
    ("RNN", ln.RNN, {"nonlinearity": "tanh"}),     # --cell takes any case
])
def test_forecast_and_predict_with_another_cell(tmp_path, capsys, cell, layer, config):
    code, out, err = run_cli(capsys, ["forecast", "--cell", cell, *TINY, "--layers", "2",
                                      "--out", str(tmp_path), "--json"])
    assert code == 0, err
    result = last_json(out)
    assert result["cell"] == cell.lower() and math.isfinite(result["rmse"])
    assert f"model: {layer.__name__}(4 hidden, 2 layers)" in out
    loaded = ln.load_checkpoint(result["model_path"])
    assert loaded["extra"]["settings"]["cell"] == cell.lower()
    recurrent = loaded["model"].layers[0]
    assert type(recurrent) is layer and recurrent.num_layers == 2
    assert config.items() <= recurrent.get_config().items()
    # predict runs it: the saved model, unchanged, on its series.
    code, out, err = run_cli(capsys, ["predict", "--model", result["model_path"], "--steps",
                                      "2", "--json"])
    assert code == 0, err
    predicted = last_json(out)
    assert predicted["cell"] == cell.lower() and f": {layer.__name__}(4 hidden" in out
    assert "; reads 12 changes" in out
    assert len(predicted["forecast"]) == 2 and all(map(math.isfinite, predicted["forecast"]))


def test_predict_reads_a_model_saved_before_cell_as_an_lstm(trained, tmp_path, capsys):
    loaded = ln.load_checkpoint(trained / "model.npz")
    extra = loaded["extra"]
    del extra["settings"]["cell"]
    old = tmp_path / "old.npz"
    ln.save_checkpoint(old, loaded["model"], extra=extra)
    code, out, err = run_cli(capsys, ["predict", "--model", str(old), "--json", "--quiet"])
    assert code == 0, err
    assert last_json(out)["cell"] == "lstm"


def _write_csv(path, n=90):
    t = np.arange(n)
    value = 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / 12)
    with open(path, "w") as f:
        f.write("# a test series\nday,value,other\n")
        for i in range(n):
            f.write(f"{np.datetime64('2020-01-01') + i},{value[i]:.3f},{-value[i]:.3f}\n")
    return value


def test_a_user_csv_by_column_then_predict_on_it(tmp_path, capsys):
    path = tmp_path / "series.csv"
    _write_csv(path)
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, ["forecast", "--data", str(path), "--column", "value",
                                   *TINY, "--lookback", "6", "--out", str(out_dir), "--json",
                                   "--quiet"])
    assert code == 0, err
    result = last_json(out)
    assert result["data"] == str(path) and result["column"] == "value"
    assert math.isfinite(result["rmse"])
    # predict reads the series and column the model was trained on by default, and
    # labels the forecast with the days after the file's last (2020-03-30).
    code, out, err = run_cli(capsys, ["predict", "--model", result["model_path"], "--steps", "2",
                                   "--json", "--quiet"])
    assert code == 0, err
    assert last_json(out)["labels"] == ["2020-03-31", "2020-04-01"]
    # A column with negative values: the differences, not their log (auto).
    code, out, err = run_cli(capsys, ["forecast", "--data", str(path), "--column", "2", *TINY,
                                   "--lookback", "6", "--out", str(out_dir), "--quiet"])
    assert code == 0, err
    assert ln.load_checkpoint(out_dir / "model.npz")["extra"]["settings"]["transform"] == "diff"


def test_a_semicolon_csv_with_decimal_commas_and_dates(tmp_path, capsys):
    # A European spreadsheet's export: ';' between fields, ',' in numbers, a month column.
    path = tmp_path / "umsatz.csv"
    months = np.arange("2010-01", "2018-01", dtype="datetime64[M]")
    value = 50 + 0.3 * np.arange(96) + 5 * np.sin(2 * np.pi * np.arange(96) / 12)
    path.write_text("Monat;Umsatz\n" + "".join(
        f"{m};{v:.2f}".replace(".", ",") + "\n" for m, v in zip(months, value)))
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, ["forecast", "--data", str(path), *TINY, "--lookback",
                                      "6", "--out", str(out_dir), "--json"])
    assert code == 0, err
    result = last_json(out)
    # The month column gave the dates, their frequency the season.
    assert result["baseline_models"]["seasonal naive"] == "seasonal naive, season 12"
    assert "umsatz.csv, column 'Umsatz'" in out
    code, out, err = run_cli(capsys, ["predict", "--model", str(out_dir / "model.npz"),
                                      "--steps", "2", "--json", "--quiet"])
    assert code == 0, err
    assert last_json(out)["labels"] == ["2018-01-01", "2018-02-01"]
    # --date-column by index, saved with the model: predict reads the file the same way.
    code, out, err = run_cli(capsys, ["forecast", "--data", str(path), "--date-column", "0",
                                      *TINY, "--lookback", "6", "--out", str(out_dir),
                                      "--quiet"])
    assert code == 0, err
    assert Forecaster.load(out_dir / "model.npz").settings_["date_column"] == "0"


@pytest.mark.parametrize("argv, message", [
    (["--data", "{csv}", "--column", "nope"], "column 'nope' is not in the file"),
    (["--data", "{csv}", "--date-column", "value"], "date column 'value' holds"),
    (["--date-column", "month"], "--date-column applies to CSV files"),
    (["--data", "no-such-data"], "not a built-in series"),
    (["--data", "adding"], "a built-in task"),
    (["--data", "{csv}", "--column", "value", "--lookback", "200"], "too short"),
    (["--data", "airline", "--column", "x"], "--column applies to CSV files"),
    (["--data", "{csv}", "--column", "other", "--transform", "log-diff"],
     "needs a series of positive values"),
])
def test_data_errors_exit_2_with_one_line(tmp_path, capsys, argv, message):
    path = tmp_path / "series.csv"
    _write_csv(path)
    argv = [a.replace("{csv}", str(path)) for a in argv]
    code, out, err = run_cli(capsys, ["forecast", *argv, *TINY, "--out", str(tmp_path)])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and message in lines[0], err
    assert "Traceback" not in err


def test_predict_errors_exit_2(tmp_path, capsys):
    code, _, err = run_cli(capsys, ["predict", "--model", str(tmp_path / "none.npz")])
    assert code == 2 and "--model" in err and "none.npz" in err
    # A checkpoint that the forecast command did not write.
    other = tmp_path / "other.npz"
    ln.save_checkpoint(other, ln.Linear(2, 1))
    code, _, err = run_cli(capsys, ["predict", "--model", str(other)])
    assert code == 2 and "not a model saved by" in err


def test_bad_option_values_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["forecast", "--epochs", "0"])
    assert e.value.code == 2
    assert "--epochs" in capsys.readouterr().err


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "forecast" in out and "predict" in out
    with pytest.raises(SystemExit):
        cli.main(["forecast", "--help"])
    out = " ".join(capsys.readouterr().out.split())   # argparse wraps the lines
    assert "--cell {lstm,gru,rnn}" in out and "(default: lstm)" in out


def test_python_dash_m_entry_point(tmp_path):
    """`python -m lstm_native` as a user types it (one epoch): the default subcommand, the
    JSON last line. One subprocess only: each one imports (and may rebuild) the package."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "lstm_native", "--epochs", "1", "--hidden",
                           "4", "--out", str(tmp_path), "--json", "--quiet"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    result = last_json(done.stdout)
    assert result["epochs"] == 1 and os.path.isfile(result["model_path"])
