"""The command line on bad input: one line on stderr, exit code 2, never a traceback.

Every case runs in this process through `cli.main`. Option values argparse rejects end in
SystemExit(2); errors found while running return 2. A genuine bug still raises. numpy's
RuntimeWarnings (overflow) are errors here: they would be more lines on stderr.
"""
from __future__ import annotations

import numpy as np
import pytest

import lstm_native as ln
from lstm_native import cli, forecasting
from conftest import has_matplotlib, last_json, run_cli

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

# The plain method, fast, no backtest; the default run (hybrid, backtest) has its own
# tests.
TINY = ["--method", "lstm", "--epochs", "2", "--hidden", "4", "--batch-size", "32",
        "--backtest", "0"]


def assert_one_line_error(code, err, *fragments):
    """Exit code 2 and one stderr line holding 'error:' and every fragment."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error:" in lines[0], err
    for fragment in fragments:
        assert fragment in lines[0], err


def parse_error(capsys, argv):
    """The stderr of an argparse rejection (SystemExit 2), checked to be one line."""
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    assert_one_line_error(e.value.code, err)
    return err


def write_csv(path, values, name="value"):
    with open(path, "w") as f:
        f.write(f"t,{name}\n")
        for i, v in enumerate(values):
            f.write(f"{i},{float(v)!r}\n")
    return str(path)


def wavy(n):
    """A positive series with a trend and a season, as the CLI expects."""
    t = np.arange(n)
    return 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / 12)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A tiny forecaster of the airline series."""
    out = tmp_path_factory.mktemp("model")
    assert cli.main(["forecast", *TINY, "--out", str(out), "--quiet"]) == 0
    return out / "model.npz"


# -- the series ----------------------------------------------------------------------------

def test_a_constant_series_is_an_error(tmp_path, capsys):
    path = write_csv(tmp_path / "flat.csv", [5.0] * 60)
    code, _, err = run_cli(capsys, ["forecast", "--data", path, *TINY, "--lookback", "4",
                                    "--out", str(tmp_path)])
    assert_one_line_error(code, err, "constant", "5")


def test_a_constant_test_part_gives_no_ratio(tmp_path, capsys):
    # The naive forecast is exact on the test part: its RMSE is 0, nothing to divide by.
    values = np.concatenate([wavy(80), np.full(20, 80.0)])   # test targets: steps 85..99
    path = write_csv(tmp_path / "end_flat.csv", values)
    code, out, err = run_cli(capsys, ["forecast", "--data", path, *TINY, "--lookback", "4",
                                      "--out", str(tmp_path), "--quiet", "--json"])
    assert code == 0, err
    assert last_json(out)["naive_rmse"] == 0.0
    assert "no ratio" in out


@pytest.mark.parametrize("values, extra, fragments", [
    # The changes of +-1.7e308 are past float64's range.
    ([1.7e308, -1.7e308] * 40, [], ["overflow", "rescale"]),
    # Levels of 1e308: the forecasts and their errors are past float64's range.
    ([1e308, 1e-300] * 40, [], ["overflow", "rescale"]),
    # Standardised on a training part of spread ~1e-3, 1e300 is past float32's range.
    (list(1 + 1e-3 * np.sin(np.arange(85))) + [1e300] * 15, ["--transform", "none"],
     ["float32", "--dtype float64"]),
], ids=["changes", "levels", "float32"])
def test_values_near_the_float64_limit_are_an_error(tmp_path, capsys, values, extra,
                                                    fragments):
    path = write_csv(tmp_path / "huge.csv", values)
    code, _, err = run_cli(capsys, ["forecast", "--data", path, *TINY, "--lookback", "4",
                                    *extra, "--out", str(tmp_path)])
    assert_one_line_error(code, err, *fragments)


@pytest.mark.parametrize("body, fragment", [
    ("t,value\n0,1\n1,nan\n2,3\n", "'nan'"),
    ("", "the file is empty"),
    ("t,value\n", "too short"),
    ("t,value\n0,1\n1,abc\n", "not a number"),
    ("t,value\n0,1\n1,\n", "has no value"),
], ids=["nan", "empty", "header-only", "non-numeric", "missing"])
def test_bad_csv_data_is_an_error(tmp_path, capsys, body, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    code, _, err = run_cli(capsys, ["forecast", "--data", str(path), *TINY,
                                    "--out", str(tmp_path)])
    assert_one_line_error(code, err, "--data", fragment)


def test_a_binary_file_is_an_error(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_bytes(bytes(range(256)) * 4)
    code, _, err = run_cli(capsys, ["forecast", "--data", str(path), *TINY,
                                    "--out", str(tmp_path)])
    assert_one_line_error(code, err, "--data")


@pytest.mark.parametrize("command", ["forecast", "predict"])
def test_a_lookback_longer_than_the_series(tmp_path, capsys, model_path, command):
    path = write_csv(tmp_path / "short.csv", wavy(10))
    argv = (["forecast", *TINY, "--lookback", "20", "--out", str(tmp_path)]
            if command == "forecast" else ["predict", "--model", str(model_path)])
    code, _, err = run_cli(capsys, [*argv, "--data", path])
    assert_one_line_error(code, err, "too short")


def test_windows_past_the_cap_are_an_error(tmp_path, capsys):
    # 15,000 windows of 15,001 values: 225 million values, past the 134 million cap.
    path = write_csv(tmp_path / "long.csv", wavy(30_000))
    code, out, err = run_cli(capsys, ["forecast", "--data", path, *TINY, "--lookback",
                                      "15000", "--out", str(tmp_path)])
    assert_one_line_error(code, err, "windows are too large", "--lookback")
    assert "epoch" not in out


# -- the options -----------------------------------------------------------------------------

@pytest.mark.parametrize("argv, fragment", [
    (["forecast", "--hidden", "200000"], "--hidden: expected an integer in 1 .. 4096"),
    (["forecast", "--layers", "100000000"], "--layers: expected an integer in 1 .. 64"),
    (["forecast", "--threads", "100000"], "--threads: expected an integer in 0 .. 256"),
    (["forecast", "--threads", "-1"], "--threads: expected an integer in 0 .. 256"),
    (["forecast", "--epochs", "0"], "--epochs: expected an integer >= 1"),
    (["forecast", "--lr", "nan"], "--lr: expected a number > 0"),
    (["forecast", "--dtype", "float16"], "--dtype: invalid choice"),
    (["forecast", "--cell", "lstmx"], "--cell: invalid choice: 'lstmx' (choose from 'lstm', "
                                      "'gru', 'rnn')"),
    (["predict", "--steps", "1000000"], "--steps: expected an integer in 1 .. 10000"),
    (["forecast", "--no-such-option"], "unrecognized arguments"),
])
def test_bad_option_values_give_one_line(capsys, argv, fragment):
    err = parse_error(capsys, argv)
    assert fragment in err and "--help" in err


def test_help_documents_the_maxima(capsys):
    for command, maxima in (("forecast", ("at most 4096", "at most 64", "at most 256",
                                          "at most 250,000,000 parameters",
                                          "at most 134,217,728 values")),
                            ("predict", ("at most 10000",))):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        out = " ".join(capsys.readouterr().out.split())   # argparse wraps the lines
        for text in maxima:
            assert text in out, (command, text)


def test_a_model_too_large_to_build_is_an_error(tmp_path, capsys):
    code, out, err = run_cli(capsys, ["forecast", "--hidden", "4096", "--layers", "64",
                                      "--out", str(tmp_path)])
    assert_one_line_error(code, err, "parameters", "--hidden", "--layers")
    assert "epoch" not in out


def test_out_of_memory_is_an_error(tmp_path, capsys, monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setitem(cli.CELLS, "lstm", no_memory)
    code, _, err = run_cli(capsys, ["forecast", *TINY, "--out", str(tmp_path)])
    assert_one_line_error(code, err, "memory", "--hidden")


def test_a_diverging_training_is_an_error(tmp_path, capsys):
    code, _, err = run_cli(capsys, ["forecast", *TINY, "--lr", "1e30", "--out", str(tmp_path)])
    assert_one_line_error(code, err, "diverged", "--lr")


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_out_that_cannot_be_written_fails_before_training(tmp_path, capsys, where):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out_dir = blocker if where == "a file" else blocker / "sub"
    code, out, err = run_cli(capsys, ["forecast", *TINY, "--out", str(out_dir)])
    assert_one_line_error(code, err, "--out")
    assert "epoch" not in out


def test_a_write_failing_after_training_is_an_error(tmp_path, capsys, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(forecasting, "save_checkpoint", disk_full)
    code, _, err = run_cli(capsys, ["forecast", *TINY, "--out", str(tmp_path)])
    assert_one_line_error(code, err, "--out", "No space left")


# -- predict -------------------------------------------------------------------------------

@pytest.mark.parametrize("what", ["missing", "directory", "corrupt", "empty", "no settings",
                                  "damaged settings", "another input", "another horizon",
                                  "unknown cell", "cell not a string"])
def test_bad_model_files_are_an_error(tmp_path, capsys, model_path, what):
    path = tmp_path / "model.npz"
    if what == "directory":
        path = tmp_path
    elif what == "corrupt":
        path.write_bytes(model_path.read_bytes()[:-100])
    elif what == "empty":
        path.write_bytes(b"")
    elif what == "no settings":
        ln.save_checkpoint(path, ln.Linear(2, 1), extra={"note": 1})
    elif what == "damaged settings":
        extra = ln.load_checkpoint(model_path)["extra"]
        ln.save_checkpoint(path, ln.Linear(2, 1),
                           extra={**extra, "settings": {"data": "airline", "horizon": 1}})
    elif what in ("another input", "another horizon"):
        # The settings of the saved forecaster with a model of another shape.
        model = (ln.Linear(2, 1) if what == "another input" else
                 ln.Sequential(ln.LSTM(1, 4, batch_first=True), ln.LastStep(batch_first=True),
                               ln.Linear(4, 3)))
        ln.save_checkpoint(path, model, extra=ln.load_checkpoint(model_path)["extra"])
    elif what in ("unknown cell", "cell not a string"):
        loaded = ln.load_checkpoint(model_path)
        extra = loaded["extra"]
        extra["settings"]["cell"] = "lstmx" if what == "unknown cell" else ["lstm"]
        ln.save_checkpoint(path, loaded["model"], extra=extra)
    code, _, err = run_cli(capsys, ["predict", "--model", str(path)])
    assert_one_line_error(code, err, "--model")
    if "cell" in what:
        assert "damaged" in err and "a cell of lstm, gru, rnn" in err


@pytest.mark.parametrize("cell, model, found", [
    ("gru", "LSTM", "starts with LSTM"),        # the settings of one cell, the model of another
    ("lstm", "RNN", "starts with RNN"),
    ("rnn", "Linear", "is Linear"),             # not a Sequential at all
    ("lstm", "LastStep first", "starts with LastStep"),
])
def test_a_model_that_is_not_its_cells_is_an_error(tmp_path, capsys, model_path, cell, model,
                                                   found):
    recurrent = {"LSTM": ln.LSTM, "RNN": ln.RNN}
    if model in recurrent:
        built = ln.Sequential(recurrent[model](1, 4, batch_first=True),
                              ln.LastStep(batch_first=True), ln.Linear(4, 1))
    elif model == "Linear":
        built = ln.Linear(12, 1)
    else:
        built = ln.Sequential(ln.LastStep(batch_first=True), ln.Linear(1, 1))
    extra = ln.load_checkpoint(model_path)["extra"]
    extra["settings"]["cell"] = cell
    path = tmp_path / "model.npz"
    ln.save_checkpoint(path, built, extra=extra)
    code, _, err = run_cli(capsys, ["predict", "--model", str(path)])
    assert_one_line_error(code, err, "--model", f"the cell {cell!r}", found)


def test_an_unreadable_model_is_an_error(tmp_path, capsys, model_path, monkeypatch):
    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(forecasting, "load_checkpoint", denied)
    code, _, err = run_cli(capsys, ["predict", "--model", str(model_path)])
    assert_one_line_error(code, err, "--model", "Permission denied")


def test_a_forecast_past_float64_stops_with_a_message(tmp_path, capsys, model_path):
    # A head that adds 1000 standard deviations to every change: exp() of the summed
    # log-changes passes float64's range after a few steps.
    loaded = ln.load_checkpoint(model_path)
    model = loaded["model"]
    state = model.state_dict()
    bias = [k for k in state if k.endswith("bias")][-1]
    model.load_state_dict({**state, bias: state[bias] + 1000})
    path = tmp_path / "wild.npz"
    ln.save_checkpoint(path, model, extra=loaded["extra"])
    code, out, err = run_cli(capsys, ["predict", "--model", str(path), "--steps", "1000"])
    assert_one_line_error(code, err, "not finite", "--steps")
    assert "inf" not in out


# -- what stays a traceback ---------------------------------------------------------------

def test_a_bug_still_raises(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(forecasting, "fit", broken)
    with pytest.raises(KeyError, match="a bug"):
        cli.main(["forecast", *TINY, "--out", str(tmp_path), "--quiet"])


# -- the plots -----------------------------------------------------------------------------

@pytest.mark.skipif(not has_matplotlib(), reason="matplotlib is not installed")
@pytest.mark.parametrize("data, x_label, y_label", [
    ("airline", "month", "passengers (thousands)"),
    ("csv", "time step", "value"),
])
def test_the_plots_label_their_axes(tmp_path, capsys, monkeypatch, data, x_label, y_label):
    from matplotlib.figure import Figure

    labels = {}

    def record(fig, path, **kwargs):
        ax = fig.axes[0]
        labels[str(path).rsplit("/", 1)[-1]] = (ax.get_xlabel(), ax.get_ylabel())

    monkeypatch.setattr(Figure, "savefig", record)
    if data == "csv":
        data = write_csv(tmp_path / "series.csv", wavy(90))
    code, _, err = run_cli(capsys, ["forecast", "--data", data, *TINY, "--lookback", "6",
                                    "--out", str(tmp_path), "--quiet"])
    assert code == 0, err
    assert labels["forecast.png"] == (x_label, y_label)
    x, y = labels["loss.png"]
    assert x == "epoch" and y.startswith("loss")


def test_a_model_saved_without_its_source_needs_data(tmp_path, capsys):
    # Forecaster.save without `source` (a library user's file) loads; predict then has
    # no series to default to and asks for --data.
    path = tmp_path / "lib.npz"
    forecasting.Forecaster(method="lstm", lookback=6, hidden=4, epochs=2).fit(
        wavy(80)).save(path)
    code, _, err = run_cli(capsys, ["predict", "--model", str(path)])
    assert_one_line_error(code, err, "--model", "give --data")
    data = write_csv(tmp_path / "s.csv", wavy(80))
    code, out, err = run_cli(capsys, ["predict", "--model", str(path), "--data", data])
    assert code == 0, err
