"""The data-parallel benchmark (`python -m lstm_native.bench.distributed`).

An end-to-end run on the small configuration F (one rank and two, under mpiexec; no
timing asserted, only that every figure is there and consistent), one layout's worker
in this process, the ring all-reduce's model and the projection against hand-computed
values, and the options' checks.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from conftest import mpiexec_path

from lstm_native.bench import distributed as bench
from lstm_native.bench.configs import CONFIGS


@pytest.fixture(scope="module")
def mpiexec():
    pytest.importorskip("mpi4py")
    path = mpiexec_path()
    if path is None:
        pytest.skip("no mpiexec")
    return path


def test_the_benchmark_runs_end_to_end(mpiexec, tmp_path, capsys):
    out = tmp_path / "run.json"
    markdown = tmp_path / "run.md"
    assert bench.main(["--configs", "F", "--quick", "--layouts", "1x1,1x2,2x1",
                       "--mpiexec", mpiexec, "--json", str(out),
                       "--markdown", str(markdown)]) == 0
    text = capsys.readouterr().out
    for title in ("Machine and settings", "Data-parallel training steps, float32",
                  "Speed-up of data parallelism", "Projected speed-up over one rank of 1×2",
                  "Projected speed-up over one rank of 16x a 1×2"):
        assert title in text and title in markdown.read_text()
    assert "load before" in text and "load after" in text
    assert "cores busy" in text and " of 2 " in text  # the 1×2 row

    saved = json.loads(out.read_text())
    params = 4 * 64 * (16 + 64) + 4 * 64 * (64 + 64) + 2 * 2 * 4 * 64
    for layout in ("1×1", "1×2", "2×1"):
        r = saved["results"][layout]["F"]
        assert r["batch"] == 32 and r["parameters"] == params
        assert r["gradient_bytes"] == 4 * params  # float32
        assert len(r["steps"]) == len(r["cpu"]) == len(r["allreduce"]) == 3  # --quick
        assert all(t > 0 for t in r["steps"]) and all(t >= 0 for t in r["cpu"])
    one, two = saved["results"]["1×1"]["F"], saved["results"]["2×1"]["F"]
    assert one["allreduce"] == [0.0] * 3 and one["allreduce_alone"] == [0.0]
    # Inside a step, the Allreduce is timed on both ranks and is part of the step.
    assert all(0 < a < s for a, s in zip(two["allreduce"], two["steps"]))
    assert two["allreduce_alone"][0] > 0

    speedups = text.split("Speed-up of data parallelism")[1]
    speedup = next(line for line in speedups.splitlines() if line.startswith("F    2×1"))
    expected = np.median(one["steps"]) / np.median(two["steps"])
    busy = [np.median(np.divide(r["cpu"], r["steps"])) for r in (one, two)]
    assert speedup.split()[2] == f"{expected:.2f}x"
    assert speedup.split()[4] == f"{expected * busy[0] / busy[1]:.2f}x"  # load-corrected


def test_a_worker_times_one_rank_in_this_process():
    result = bench.run_worker(["F"], "float64", threads=1, steps=2, warmup=1)
    assert (result["ranks"], result["threads"], result["dtype"]) == (1, 1, "float64")
    [r] = result["results"]
    assert r["config"] == "F" and len(r["steps"]) == len(r["cpu"]) == 2
    assert r["gradient_bytes"] == 8 * r["parameters"]
    assert r["allreduce"] == [[0.0, 0.0]] and r["allreduce_alone"] == 0.0


def test_ring_allreduce_model():
    # 2(N-1)/N · bytes / bandwidth + 2(N-1) · latency
    assert bench.ring_allreduce_seconds(8e6, 8, 1e9, 1e-5) == pytest.approx(
        2 * 7 / 8 * 8e-3 + 14e-5)
    assert bench.ring_allreduce_seconds(1e6, 1, 1e9, 1e-5) == 0.0


def test_projection_from_a_measured_step():
    pooled = {"1×2": {"E": {"steps": [0.1, 0.3, 0.2], "gradient_bytes": 16_809_984}}}
    row = bench.projection_table(pooled, bench.Layout(1, 2)).rows[0]
    assert row[:3] == ["E", "200.0", "16.8"]
    # N = 8 on 10 Gbit/s: 8 · 0.2 / (0.2 + 2·7/8 · 16.8 MB / 1.25 GB/s + 14 · 20 µs)
    t = 2 * 7 / 8 * 16_809_984 / 1.25e9 + 14 * 20e-6
    assert row[3] == f"{8 * 0.2 / (0.2 + t):.1f}"
    assert len(row) == 3 + len(bench.NETWORKS) * len(bench.PROJECTED_RANKS)
    # A rank 16x as fast: the same transfer against a sixteenth of the step.
    table = bench.projection_table(pooled, bench.Layout(1, 2), faster=16)
    assert "16x a 1×2" in table.title
    assert table.rows[0][1] == "12.5"
    assert table.rows[0][3] == f"{8 * 0.0125 / (0.0125 + t):.1f}"


@pytest.mark.parametrize("argv, message", [
    (["--configs", "Z"], "unknown configuration Z"),
    (["--layouts", "2"], "a layout is RANKSxTHREADS"),
    (["--layouts", "0x1"], "a layout is RANKSxTHREADS"),
    (["--rounds", "0"], "expected a positive int"),
])
def test_the_options_are_checked(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench.build_parser().parse_args(argv)
    assert message in capsys.readouterr().err


def test_layouts_parse():
    assert bench.Layout.parse("2x1") == bench.Layout(2, 1) == bench.Layout.parse("2×1")
    assert bench.Layout(1, 2).name == "1×2"
    with pytest.raises(argparse.ArgumentTypeError):
        bench.Layout.parse("x")
    assert CONFIGS["F"].batch == 32  # the end-to-end run's global batch
