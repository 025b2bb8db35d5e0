"""The benchmark tool (`lstm_native.bench`) and the asv suite's configurations.

The FLOP counts against hand-computed values, the gate-order conversion and ONNX
Runtime's LSTM against ours (when onnxruntime is installed), one quick end-to-end
run of the command line with its table and markdown file, and a copy of the package
run on its own, as docs/performance.md's "History" does.
"""
from __future__ import annotations

import importlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import lstm_native as ln
from lstm_native import bench
from lstm_native.bench import cli, configs, machine, memory, peers, report, timing
from lstm_native.bench.configs import CONFIGS

ROOT = pathlib.Path(__file__).resolve().parents[1]


# -- FLOPs ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, forward", [
    ("A", 8 * 64 * 512 * (512 + 512) * 25),                                # 6.71e9
    ("E", 2 * 8 * 32 * 512 * (512 + 512) * 50),                            # I = H above
    ("F", 8 * 32 * 64 * (16 + 64) * 100 + 8 * 32 * 64 * (64 + 64) * 100),
    ("S", 8 * 1 * 64 * (1 + 64) * 1000),
])
def test_forward_flops_by_hand(name, forward):
    assert configs.forward_flops(CONFIGS[name]) == forward


def test_flops_of_each_mode():
    cfg = CONFIGS["A"]
    fwd = 6_710_886_400
    dx = 8 * 64 * 512 * 512 * 25    # the first layer's input gradient, dG·W_ih
    assert configs.mode_flops(cfg, "infer") == fwd
    assert configs.mode_flops(cfg, "train_dx") == 3 * fwd
    assert configs.mode_flops(cfg, "train") == 3 * fwd - dx == 16_777_216_000
    assert configs.mode_flops(cfg, "bwd") == 2 * fwd - dx
    with pytest.raises(ValueError, match="unknown mode"):
        configs.mode_flops(cfg, "fly")


def test_flops_bidirectional_layers_read_2h():
    cfg = configs.Config("x", batch=2, steps=3, input_size=4, hidden_size=5, num_layers=2,
                       bidirectional=True)
    # layer 0: 8·2·5·(4+5)·3 per direction; layer 1 reads 2H = 10: 8·2·5·(10+5)·3.
    assert configs.forward_flops(cfg) == 2 * (2160 + 3600)
    assert configs.backward_flops(cfg, input_grad=False) == 2 * 11520 - 2 * (8 * 2 * 5 * 4 * 3)


def test_activations_and_parameters():
    cfg = CONFIGS["E"]
    assert configs.activation_bytes(cfg, 4) == 50 * 32 * 6 * 512 * 2 * 4
    model = ln.LSTM(cfg.input_size, cfg.hidden_size, cfg.num_layers)
    assert configs.parameter_count(cfg) == sum(p.size for p in model.parameters().values())


def test_targets_table_takes_worst_geometric_mean_and_the_faster_peer():
    def result(name, n, **modes):
        timings = {mode: [timing.Timing(lib, [t]) for lib, t in libs.items()]
                   for mode, libs in modes.items()}
        return report.Result(CONFIGS[name], "float32", n, 100.0, timings)

    results = [
        result("A", 2, train={"lstm_native": 2.0, "torch": 4.0},
               infer={"lstm_native": 3.0, "torch": 2.0, "onnxruntime": 4.0}),
        result("B", 2, train={"lstm_native": 2.0, "torch": 1.0},
               infer={"lstm_native": 1.0, "torch": 4.0, "onnxruntime": 2.0}),
        result("S", 2, train={"lstm_native": 1.0, "torch": 2.0},
               infer={"lstm_native": 4.0, "torch": 8.0, "onnxruntime": 2.0}),
        result("A", 1, infer={"lstm_native": 1.0}),
    ]
    rows = report.targets_table(results).rows
    # training: 0.5, 2.0, 0.5 -> worst 2.00 (B), geometric mean (0.5 * 2 * 0.5)^(1/3) = 0.79
    # inference against the faster peer: 1.5 (A), 0.5 (B); S (2.0) only on its own
    assert rows[0] == ["float32", "2", "2.00 (B)", "0.79", "1.50 (A)", "2.00"]
    assert rows[1] == ["float32", "1", "–", "–", "–", "–"]  # no peer timed


def test_memory_table_measures_a_step_and_relates_it_to_what_it_must_hold():
    table = memory.memory_table([CONFIGS["F"]], np.float64, ["lstm_native"], 1)
    (row,) = table.rows
    col = dict(zip(table.columns, row))
    growth, acts, params = (float(col[k]) for k in
                            ["peak RSS growth MiB", "activations MiB", "weights + grads MiB"])
    # A training step holds at least its activations (F: 1.6 MiB in float64) at its peak.
    assert growth >= 0.9 * acts
    assert float(col["peak / (act. + w + g)"]) == pytest.approx(
        (growth + params) / (acts + params), abs=0.01)


def test_asv_suite_shares_the_configurations_and_has_a_quick_profile(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    full = importlib.import_module("benchmarks.benchmarks")
    quick = importlib.import_module("benchmarks.quick")
    assert full.CONFIGS is CONFIGS     # one definition, not a copy to keep in step
    for name in ("Inference", "TrainingStep", "Backward"):
        matrix, profile = getattr(full, name), getattr(quick, name)
        assert issubclass(profile, matrix)
        assert matrix.params == [list(CONFIGS), ["float32", "float64"], [1, 2]]
        assert profile.params == [["S", "F", "A"], ["float32"], [1]]
    # The quick profile's smallest case runs, each benchmark once.
    params = ("S", "float32", 1)
    infer, step, back = quick.Inference(), quick.TrainingStep(), quick.Backward()
    infer.setup(*params)
    assert infer.track_gflops(*params) > 0
    step.setup(*params)
    step.time_step(*params)
    assert step.track_gflops(*params) > 0
    back.setup(*params)
    back.time_backward(*params)


# -- ONNX Runtime -------------------------------------------------------------------------

def test_gate_order_torch_to_onnx():
    H = 2
    w = np.repeat(np.arange(4), H)[:, None] * np.ones((1, 3))   # rows: i i f f g g o o
    converted = peers.torch_to_onnx_gates(w)
    assert converted[:, 0].tolist() == [0, 0, 3, 3, 1, 1, 2, 2]  # i o f c(=g)
    assert peers.torch_to_onnx_gates(np.arange(8.0)).tolist() == [0, 1, 6, 7, 2, 3, 4, 5]


@pytest.mark.parametrize("num_layers, bidirectional, bias", [
    (1, False, True), (2, False, True), (2, True, True), (1, False, False)])
def test_onnxruntime_matches_lstm_native(num_layers, bidirectional, bias):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    T, N, I, H = 7, 3, 5, 6
    model = ln.LSTM(I, H, num_layers, bidirectional=bidirectional, bias=bias, seed=1)
    x = np.random.default_rng(2).standard_normal((T, N, I)).astype(np.float32)
    session = peers.onnx_session(
        peers.onnx_lstm_model(model.state_dict(), I, H, num_layers, bidirectional), 1)
    (y,) = session.run(["Y"], {"X": x})
    expected = model.eval()(x)[0]
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_a_peer_with_other_math_is_refused():
    problem = peers.Problem.make(CONFIGS["F"].with_steps(3), np.float32)
    wrong = problem.reference_output + 1e-2
    with pytest.raises(RuntimeError, match="differs from lstm_native"):
        peers._check_agreement("peer", wrong, problem.reference_output, np.float32)


# -- the environment and the command line ---------------------------------------------------

def test_machine_info_reports_simd_openmp_and_openblas_coretype(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    info = machine.machine_info()
    assert info["OPENBLAS_CORETYPE"] == "Haswell"
    assert info["lstm_native SIMD"] in {"avx512", "avx2", "generic", "unknown"}
    assert info["lstm_native OpenMP"] == ("on" if ln.openmp_enabled() else "off")
    assert machine.kernel_module() is not None


def test_time_tasks_alternates_blocks_and_counts_runs():
    calls = []
    tasks = [timing.Task("a", lambda: calls.append("a")),
             timing.Task("b", lambda: calls.append("b"), prepare=lambda: calls.append("p"))]
    schedule = timing.Schedule(repeats=4, blocks=2, pause=0.0, warmup=1)
    timings = timing.time_tasks(tasks, schedule)
    assert [len(t.times) for t in timings] == [4, 4]
    # warm-up a, b; block 1: a a, b b; block 2 reversed: b b, a a (p before every b)
    assert "".join(calls) == "a" + "pb" + "aa" + "pbpb" + "pbpb" + "aa"


def test_command_line_quick_run_prints_a_table_and_writes_markdown(tmp_path, capsys):
    md, saved = tmp_path / "bench.md", tmp_path / "bench.json"
    assert cli.main(["--quick", "--configs", "F", "--modes", "infer",
                       "--markdown", str(md), "--json", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "F: B=32 T=100 I=16 H=64 L=2" in out
    assert "OPENBLAS_CORETYPE" in out and "SGEMM rate, 2 threads" in out
    row = next(line for line in out.splitlines() if line.startswith("infer")
               and "lstm_native" in line)
    assert float(row.split()[2]) > 0   # ms
    text = md.read_text()
    assert "| mode | library | ms (median) |" in text
    found, _ = peers.available_libraries()
    if len(found) > 1:  # a ratio column per peer that is installed
        assert "ln / " in out and "ln / " in text

    # The saved run shown again: its summary, without measuring anything.
    summary = tmp_path / "summary.md"
    assert cli.main(["--report", str(saved), "--markdown", str(summary), "--summary"]) == 0
    out = capsys.readouterr().out
    assert "Summary, float32" in out and "lstm_native ms" in out
    text = summary.read_text()
    assert "--quick --configs F" in text and "| F | float32 | 2 | infer |" in text
    assert "| mode | library |" not in text   # --summary: no table per configuration


def test_command_line_rejects_unknown_choices(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--configs", "Z"])
    assert "unknown configuration Z" in capsys.readouterr().err


def test_openmp_settings_are_reported_as_the_environment_has_them(monkeypatch):
    monkeypatch.setenv("GOMP_SPINCOUNT", "300000")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    info = machine.machine_info()
    assert info["GOMP_SPINCOUNT"] == "300000"
    # The user's setting, as it is: lstm_native sets no policy (see the next test).
    assert info["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "warning" not in info
    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.delenv("OMP_WAIT_POLICY")
    info = machine.machine_info()
    assert info["OMP_WAIT_POLICY"] == "(unset)" and "GOMP_SPINCOUNT" not in info
    if ln.openmp_enabled():
        assert "omp" in info["OpenMP runtimes"]


def test_lstm_native_leaves_the_openmp_wait_policy_alone():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run([sys.executable, "-c", "import os, lstm_native; "
                           "print(os.environ.get('OMP_WAIT_POLICY'))"],
                          capture_output=True, text=True, check=True, env=env)
    assert done.stdout.strip() == "None"


def test_kernel_module_is_the_recurrent_driver():
    assert machine.kernel_module().__name__ == "lstm_native._recurrent"


def test_package_exports_the_public_names():
    # The names the single-file module had stay importable from the package.
    assert bench.machine_info is machine.machine_info and bench.main is cli.main
    assert all(hasattr(bench, name) for name in bench.__all__)


def test_python_m_lstm_native_bench_help():
    done = subprocess.run([sys.executable, "-m", "lstm_native.bench", "--help"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.startswith("usage: python -m lstm_native.bench")
    assert "--memory" in done.stdout and "S = B=1 T=1000 I=1 H=64 L=1" in done.stdout


def test_a_copy_of_the_package_runs_alone(tmp_path):
    # docs/performance.md, "History": a copy times whichever lstm_native is installed,
    # with no part of lstm_native.bench, even in the memory measurement's child process.
    shutil.copytree(ROOT / "lstm_native" / "bench", tmp_path / "lstm_bench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import json, sys; from lstm_bench.configs import CONFIGS; "
            "from lstm_bench.memory import memory_usage; "
            "m = memory_usage(CONFIGS['F'].with_steps(5), 'float64', 'lstm_native', 1); "
            "print(json.dumps([m, 'lstm_native.bench' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    usage, imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert usage["rss_growth"] >= 0 and usage["traced_peak"] > 0
    assert not imported
    done = subprocess.run([sys.executable, "-m", "lstm_bench", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    assert "usage: python -m lstm_native.bench" in done.stdout
