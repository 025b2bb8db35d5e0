"""docs/forecast_table.py, the script behind the README's table of the forecaster against
the classical baselines: one short series, one seed, a short training."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("statsmodels")
SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "forecast_table.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("forecast_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_row_of_the_table(script, capsys):
    rows = script.measure(["Nile"], [0, 1], method="hybrid", epochs=2, members=2)
    row = rows[0]
    assert row["n"] == 100 and row["season"] == 1 and len(row["rmse"]) == 2
    best = min(row["baselines"].values())
    np.testing.assert_allclose(row["ratio"], np.array(row["rmse"]) / best)
    text = script.table(rows)
    assert text.splitlines()[2].startswith("| Nile (100, season 1) | ")
    assert "Geometric mean of the median ratios" in text
    # The intervals' coverage: each seed's, and the median in the table.
    n_test = row["windows"][1]
    for level in ("80", "95"):
        assert len(row["coverage"][level]) == 2
        # A share of the test windows.
        assert all(0 <= c <= 1 and c * n_test == pytest.approx(round(c * n_test))
                   for c in row["coverage"][level])
    cover = script.coverage_table(rows).splitlines()
    assert cover[0].endswith("| 80% covers | 95% covers |")
    assert cover[2].startswith(f"| Nile | {row['windows'][0]} | {row['windows'][1]} | ")
    assert cover[3].startswith(f"| all | | {row['windows'][1]} | ")
    # The Nile's 15 validation windows are too few for a bounded 95% interval.
    assert row["windows"][0] == 15 and row["unbounded"] == ["95"]
    assert cover[2].endswith(" (unbounded) |")


def test_every_series_loads(script):
    series = script.load_series()
    assert len(series) == 7
    for values, season, _ in series.values():
        assert values.ndim == 1 and np.all(np.isfinite(values)) and season >= 1


@pytest.mark.parametrize("values, text", [([1.0, 3.0, 2.0], "2 [1, 3]"), ([2.0, 2.0], "2")])
def test_spread(script, values, text):
    assert script.spread(values, ".4g") == text
