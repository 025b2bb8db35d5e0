"""Every script in examples/ runs to the end on tiny settings (each in its own process,
as a user would start it)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str, cwd=None) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_forecast_csv_on_the_builtin_series(tmp_path):
    out = _run("forecast_csv.py", "--epochs", "1", "--hidden", "4", "--steps", "3",
               cwd=tmp_path)
    assert "airline.csv, column 'passengers': 144 values" in out
    assert "naive" in out and "the next 3 values past the end" in out


def _figures(out: str) -> dict:
    """The JSON object --json prints as the last line."""
    return json.loads(out.strip().splitlines()[-1])


def test_forecast_csv_json_ends_with_its_figures(tmp_path):
    args = ["--epochs", "2", "--hidden", "4", "--steps", "3", "--seed", "1"]
    plain, out = _run("forecast_csv.py", *args, cwd=tmp_path), \
        _run("forecast_csv.py", *args, "--json", cwd=tmp_path)
    figures = _figures(out)
    assert set(figures) == {"epochs", "best_epoch", "seconds", "rmse", "naive_rmse", "steps",
                            "rmse_steps", "naive_rmse_steps"}
    assert figures["epochs"] == 2 and figures["steps"] == 3
    assert f"RMSE {figures['rmse']:.2f}, naive {figures['naive_rmse']:.2f}" in out
    assert f"RMSE {figures['rmse_steps']:.2f}, naive {figures['naive_rmse_steps']:.2f}" in out
    # Otherwise the output is the plain one (but for nothing: the seconds are not printed).
    assert out.strip().splitlines()[:-1] == plain.strip().splitlines()


def test_forecast_csv_on_a_user_file(tmp_path):
    path = tmp_path / "mine.csv"
    rows = [f"{t},{10 + t % 7 - (t % 3)}.5,{t}" for t in range(60)]
    path.write_text("# a comment line\nstep,load,other\n" + "\n".join(rows) + "\n")
    out = _run("forecast_csv.py", str(path), "--column", "load", "--epochs", "1",
               "--hidden", "4", "--lookback", "6", "--steps", "4")
    assert "mine.csv, column 'load': 60 values" in out
    assert "the next 4 values past the end" in out


def test_char_lm(tmp_path):
    out = _run("char_lm.py", "--chars", "3000", "--epochs", "1", "--hidden", "8",
               "--streams", "4", "--tbptt", "16", "--sample", "20", cwd=tmp_path)
    assert "epoch 1/1" in out and "sample at temperature" in out


def test_char_lm_json(tmp_path):
    out = _run("char_lm.py", "--chars", "3000", "--epochs", "2", "--hidden", "8",
               "--streams", "4", "--tbptt", "16", "--sample", "20", "--json", cwd=tmp_path)
    figures = _figures(out)
    assert set(figures) == {"uniform_loss", "first_val_loss", "last_val_loss", "epochs",
                            "seconds"}
    assert figures["epochs"] == 2 and figures["seconds"] > 0
    assert f"= {figures['uniform_loss']:.2f} (nats per character)" in out
    assert "epoch 1/2  loss" in out and f"val_loss {figures['first_val_loss']:.3f}" in out
    assert f"val_loss {figures['last_val_loss']:.3f}" in out


@pytest.mark.parametrize("extra", [[], ["--ignore-lengths"]])
def test_classify_lengths(tmp_path, extra):
    out = _run("classify_lengths.py", "--samples", "64", "--epochs", "1", "--hidden", "4",
               *extra, cwd=tmp_path)
    assert "test accuracy" in out and "chance 25%" in out


def test_classify_lengths_json(tmp_path):
    out = _run("classify_lengths.py", "--samples", "64", "--epochs", "1", "--hidden", "4",
               "--json", cwd=tmp_path)
    figures = _figures(out)
    assert set(figures) == {"test_accuracy", "shorter_half", "longer_half", "seconds"}
    assert f"test accuracy {figures['test_accuracy']:.1%}" in out
    assert f"shorter half: {figures['shorter_half']:.1%}" in out
