"""Every script in examples/ runs to the end on tiny settings (each in its own process,
as a user would start it)."""
from __future__ import annotations

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


@pytest.mark.parametrize("extra", [[], ["--ignore-lengths"]])
def test_classify_lengths(tmp_path, extra):
    out = _run("classify_lengths.py", "--samples", "64", "--epochs", "1", "--hidden", "4",
               *extra, cwd=tmp_path)
    assert "test accuracy" in out and "chance 25%" in out
