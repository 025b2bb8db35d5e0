"""The command line's --quantize: predict runs a saved forecaster's networks in int8 or
bfloat16, forecast quantizes them after training; the float networks' RMSE is printed
beside; bad values and a model quantized already end in one line on stderr."""
from __future__ import annotations

import pytest

import lstm_native as ln
from lstm_native import cli
from lstm_native.forecasting import Forecaster
from lstm_native.quantization import PRECISIONS, QuantizedLSTM
from conftest import last_json, run_cli
from test_cli_errors import assert_one_line_error, parse_error

# The plain method, fast, no backtest.
TINY = ["--method", "lstm", "--epochs", "2", "--hidden", "4", "--batch-size", "32",
        "--backtest", "0"]


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    """A tiny float forecaster of the airline series saved by forecast: its path."""
    out = tmp_path_factory.mktemp("float")
    assert cli.main(["forecast", *TINY, "--out", str(out), "--quiet"]) == 0
    return str(out / "model.npz")


@pytest.mark.parametrize("precision", PRECISIONS)
def test_predict_quantize_runs_the_networks_quantized(float_model, capsys, precision):
    code, out, err = run_cli(capsys, ["predict", "--model", float_model, "--steps", "3",
                                      "--quantize", precision, "--json"])
    assert code == 0, err
    result = last_json(out)
    assert result["quantized"] == precision
    # What the library gives for the loaded forecaster quantized.
    y = ln.data.load_dataset("airline")
    saved = Forecaster.load(float_model)
    quantized = saved.quantize(precision)
    assert result["rmse"] == quantized.score(y, span="all")["rmse"]
    assert result["float_rmse"] == saved.score(y, span="all")["rmse"] != result["rmse"]
    assert result["forecast"] == quantized.predict(3, y).tolist()
    assert f"-> Linear(1) in {precision}; reads 12 changes" in out
    change = result["rmse"] / result["float_rmse"] - 1
    assert (f"networks in {precision}: RMSE {result['rmse']:.4g} on the series against "
            f"{result['float_rmse']:.4g} in float32 ({change:+.3%})") in out


def test_predict_without_quantize_runs_the_networks_as_saved(float_model, capsys):
    code, out, err = run_cli(capsys, ["predict", "--model", float_model, "--steps", "2",
                                      "--json", "--quiet"])
    assert code == 0, err
    result = last_json(out)
    assert result["quantized"] is None and "float_rmse" not in result
    assert "networks in" not in out


def test_forecast_quantize_saves_and_backtests_the_quantized_forecaster(tmp_path, capsys,
                                                                         monkeypatch):
    backtested = []

    def backtest(forecaster, *args, **kwargs):
        backtested.append(forecaster.get_params()["quantized"])
        return cli_backtest(forecaster, *args, **kwargs)
    cli_backtest = cli.backtest
    monkeypatch.setattr(cli, "backtest", backtest)
    code, out, err = run_cli(capsys, ["forecast", *TINY[:-1], "1", "--quantize", "int8",
                                      "--out", str(tmp_path), "--json", "--quiet"])
    assert code == 0, err
    result = last_json(out)
    assert result["quantized"] == "int8"
    # The backtest refits the quantized forecaster's parameters: its folds quantized.
    assert backtested == ["int8"] and len(result["backtest"]["folds"]) == 1
    # The same settings trained in float: its RMSE is the float_rmse printed.
    code, out_float, _ = run_cli(capsys, ["forecast", *TINY, "--out", str(tmp_path / "f"),
                                          "--json", "--quiet"])
    float_result = last_json(out_float)
    assert "quantized" not in float_result and "networks in" not in out_float
    assert result["float_rmse"] == float_result["rmse"] != result["rmse"]
    assert abs(result["rmse"] / result["float_rmse"] - 1) < 0.05
    assert "networks in int8: RMSE" in out and "on the test windows against" in out
    loaded = Forecaster.load(result["model_path"])
    assert loaded.quantized == "int8" and type(loaded.model_.layers[0]) is QuantizedLSTM
    assert loaded.results_["rmse"] == result["rmse"]
    # predict runs it as saved, and refuses to quantize it again.
    code, out, err = run_cli(capsys, ["predict", "--model", result["model_path"], "--json"])
    assert code == 0, err
    assert last_json(out)["quantized"] == "int8" and "Linear(1) in int8" in out
    code, _, err = run_cli(capsys, ["predict", "--model", result["model_path"],
                                    "--quantize", "bfloat16"])
    assert_one_line_error(code, err, "--quantize bfloat16", "quantized to int8 already")


@pytest.mark.parametrize("command", ["predict", "forecast"])
@pytest.mark.parametrize("value", ["int4", "INT8", "float32", ""])
def test_a_bad_quantize_is_refused_by_argparse(capsys, command, value):
    err = parse_error(capsys, [command, "--quantize", value])
    assert f"argument --quantize: invalid choice: '{value}' (choose from 'int8', " \
           "'bfloat16')" in err
