"""The benchmark tool's low precisions (``--dtype int8,bfloat16``) and the asv suite's
quantized inference.

lstm_native's quantized model beside its float32 layer and the peers' int8 and bfloat16
paths (ONNX Runtime's quantize_dynamic, torch's bfloat16 layer), the agreement checks
before timing, the tables' ratio columns and the targets' row, the saved run read back,
training modes and cells without a quantized form skipped, and the peers when they are
missing. Quick runs on the small configuration F: seconds.
"""
from __future__ import annotations

import importlib
import json
import pathlib

import numpy as np
import pytest

import lstm_native as ln
from lstm_native.bench import cli, configs, peers, report, run, timing
from lstm_native.bench.configs import CONFIGS, FLOAT32_LIBRARY
from lstm_native.quantization import QuantizedLSTM

ROOT = pathlib.Path(__file__).resolve().parents[1]
ONE_RUN = timing.Schedule(repeats=1, blocks=1, pause=0.0, warmup=1)


def _has(*modules):
    return all(importlib.util.find_spec(m) is not None for m in modules)


# -- the command line and what a low precision runs ----------------------------------------

@pytest.mark.parametrize("text, dtypes", [
    ("int8", ["int8"]), ("bfloat16", ["bfloat16"]),
    ("float32,int8,bfloat16", ["float32", "int8", "bfloat16"]),
    ("float64, int8", ["float64", "int8"])])
def test_command_line_takes_the_low_precisions(text, dtypes):
    assert cli.build_parser().parse_args(["--dtype", text]).dtype == dtypes


def test_command_line_rejects_an_unknown_precision(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--dtype", "float32,int4"])
    assert ("unknown dtype int4; choose from float32, float64, int8, bfloat16"
            in capsys.readouterr().err)


def test_a_low_precision_runs_inference_of_the_quantizable_cells_only():
    modes, cells, notes = run.plan("int8", ["infer", "train", "train_dx"],
                                   ["lstm", "lstmp", "gru", "ln-lstm"])
    assert (modes, cells) == (["infer"], ["lstm", "gru"])
    assert notes == [
        "int8: inference only (a quantized model does not train): modes train, train_dx "
        "skipped.",
        "int8: cells lstmp, ln-lstm skipped: lstm_native.quantize has the plain LSTM and "
        "the GRU only."]
    assert run.plan("bfloat16", ["infer"], ["gru"]) == (["infer"], ["gru"], [])
    # A float dtype runs what it is asked.
    assert run.plan("float32", ["train"], ["ln-lstm"]) == (["train"], ["ln-lstm"], [])
    assert [run.gemm_dtype(d) for d in configs.DTYPES] == ["float32", "float64",
                                                           "float32", "float32"]


def test_a_low_precision_problem_is_the_float32_problem_of_the_same_seed():
    cfg = CONFIGS["F"].with_steps(3)
    plain = peers.Problem.make(cfg, np.float32)
    for precision in configs.LOW_PRECISIONS:
        problem = peers.Problem.make(cfg, precision)
        assert (problem.precision, problem.dtype, problem.dtype_name) == (
            precision, np.float32, precision)
        np.testing.assert_array_equal(problem.x, plain.x)
        assert problem.state_dict.keys() == plain.state_dict.keys()
        assert all(np.array_equal(problem.state_dict[k], v)
                   for k, v in plain.state_dict.items())
        assert problem.float32.precision is None and problem.float32.x is problem.x
    assert plain.dtype_name == "float32" and plain.precision is None


# -- the agreement checks ------------------------------------------------------------------

def test_the_low_precision_tolerances_refuse_other_math():
    problem = peers.Problem.make(CONFIGS["F"].with_steps(3), "int8")
    ref = problem.reference_output
    peers._check_agreement("peer", ref + 0.03, ref, "int8")     # int8's rounding
    with pytest.raises(RuntimeError, match="differs from lstm_native's float32 by 1.0"):
        peers._check_agreement("peer", ref + 0.1, ref, "int8")
    peers._check_agreement("peer", ref + 0.01, ref, "bfloat16")
    with pytest.raises(RuntimeError, match="tolerance 2e-02"):
        peers._check_agreement("peer", ref + 0.03, ref, "bfloat16")
    # A float problem keeps its own tolerance, named by its dtype.
    with pytest.raises(RuntimeError, match="lstm_native's float32 by"):
        peers._check_agreement("peer", ref + 1e-2, ref, np.float32)


def test_a_peer_that_disagrees_in_a_low_precision_is_left_out(monkeypatch, capsys):
    def disagrees(problem, mode, n_threads):
        peers._check_agreement("ONNX Runtime's LSTM", problem.reference_output + 0.2,
                               problem.reference_output, problem.dtype_name)

    monkeypatch.setitem(peers.TASK_FACTORIES, "onnxruntime", disagrees)
    schedule = timing.Schedule(repeats=1, blocks=1, pause=0.0)
    problem = peers.Problem.make(CONFIGS["F"].with_steps(3), "int8")
    timings = peers.measure(problem, "infer", 1, ["lstm_native", "onnxruntime"], schedule)
    assert [t.library for t in timings] == ["lstm_native", FLOAT32_LIBRARY]
    assert "onnxruntime not timed: ONNX Runtime's LSTM's output differs" in capsys.readouterr().out
    # In float32 a disagreement is a wrong mapping of the weights: the run stops.
    plain = peers.Problem.make(CONFIGS["F"].with_steps(3), "float32")
    with pytest.raises(peers.Disagreement, match="differs from lstm_native's float32"):
        peers.measure(plain, "infer", 1, ["lstm_native", "onnxruntime"], schedule)


@pytest.mark.parametrize("precision", configs.LOW_PRECISIONS)
def test_our_quantized_model_is_checked_and_timed_beside_our_float32(precision):
    problem = peers.Problem.make(CONFIGS["F"].with_steps(4), precision)
    task = peers.ln_task(problem, "infer", 1)
    out, _ = task.run()
    assert out.dtype == np.float32 and out.shape == problem.reference_output.shape
    assert not np.array_equal(out, problem.reference_output)   # the quantized one ran
    timings = peers.measure(problem, "infer", 1, ["lstm_native"], ONE_RUN)
    assert [t.library for t in timings] == ["lstm_native", FLOAT32_LIBRARY]
    with pytest.raises(ValueError, match="inference only, not 'train'"):
        peers.ln_task(problem, "train", 1)
    # Other weights than the reference's: our quantized model is refused too.
    problem.state_dict = peers.Problem.make(problem.cfg, np.float32, seed=1).state_dict
    with pytest.raises(RuntimeError, match=f"lstm_native's {precision} LSTM's output"):
        peers.ln_task(problem, "infer", 1)


@pytest.mark.skipif(not _has("onnx", "onnxruntime"), reason="needs onnx and onnxruntime")
def test_onnxruntime_int8_is_quantize_dynamic_of_the_lstm_and_none_for_the_gru():
    cfg = CONFIGS["F"].with_steps(4)
    problem = peers.Problem.make(cfg, "int8")
    task = peers.ort_task(problem, "infer", 1)    # checked against our float32 first
    assert task.library == "onnxruntime"
    out = task.run()[0]
    # int8 weights: not the float32 model's output, within int8's rounding of it.
    assert 0 < np.abs(out - problem.reference_output).max() < 5e-2
    from lstm_native.onnx import recurrent_model

    model = peers.quantize_int8(recurrent_model(problem.state_dict, 16, 64, 2, False, "lstm"))
    assert {n.op_type for n in model.graph.node} >= {"DynamicQuantizeLSTM"}
    gru = peers.Problem.make(cfg.with_cell("gru"), "int8")
    assert peers.ort_task(gru, "infer", 1) is None
    assert peers.ort_task(peers.Problem.make(cfg, "bfloat16"), "infer", 1) is None


@pytest.mark.skipif(not _has("torch"), reason="needs torch")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_torch_bfloat16_casts_its_layer_and_has_no_int8(cell):
    import torch

    cfg = CONFIGS["F"].with_steps(4).with_cell(cell)
    task = peers.torch_task(peers.Problem.make(cfg, "bfloat16"), "infer", 1)
    out = task.run()[0]
    assert out.dtype == torch.bfloat16
    assert peers.torch_task(peers.Problem.make(cfg, "int8"), "infer", 1) is None
    assert peers.torch_task(peers.Problem.make(cfg, "bfloat16"), "train", 1) is None


# -- the tables ------------------------------------------------------------------------------

def _result(name, dtype, n=2, **libs):
    timings = {"infer": [timing.Timing(lib, [t]) for lib, t in libs.items()]}
    return report.Result(CONFIGS[name], dtype, n, 100.0, timings)


def test_the_targets_gain_the_low_precision_speed_ups_over_a_to_e():
    f32 = FLOAT32_LIBRARY
    results = [
        _result("A", "float32", lstm_native=3.0, torch=2.0, onnxruntime=4.0),
        _result("A", "int8", lstm_native=1.0, onnxruntime=2.0, **{f32: 3.0}),
        _result("B", "int8", lstm_native=1.0, onnxruntime=0.5, **{f32: 2.0}),
        _result("E", "int8", lstm_native=2.0, **{f32: 8.0}),    # no peer timed on E
        # F counts in the inference column (all but S) but not in A-E's.
        _result("F", "int8", lstm_native=1.0, onnxruntime=0.25, **{f32: 1.0}),
        _result("A", "bfloat16", lstm_native=1.0, torch=2.0, **{f32: 2.0}),
    ]
    table = report.targets_table(results)
    assert table.columns[-5:] == ["float32 / ln, worst", "float32 / ln, geo. mean",
                                  "ln / faster peer, worst", "ln / faster peer, geo. mean",
                                  "float32 / ln, target (goal)"]
    rows = {r[1]: r for r in table.rows}
    assert rows["float32"] == ["lstm", "float32", "2", "–", "–", "1.50 (A)", "–",
                               "–", "–", "–", "–", "–"]
    # speed-ups 3, 2, 4: the worst is the smallest; geometric mean 24^(1/3) = 2.88.
    # ours / peer on A-E: 0.5 (A), 2.0 (B) -> worst 2.00 (B), mean 1.00.
    assert rows["int8"] == ["lstm", "int8", "2", "–", "–", "4.00 (F)", "–",
                            "2.00 (B)", "2.88", "2.00 (B)", "1.00", "≥ 2.0 (3.0)"]
    assert rows["bfloat16"][-5:] == ["2.00 (A)", "2.00", "0.50 (A)", "0.50", "≥ 1.5 (1.8)"]
    # Without low-precision results the table keeps its columns.
    assert len(report.targets_table(results[:1]).columns) == 7


def test_a_low_precision_table_names_its_rate_and_its_speed_up():
    result = _result("A", "int8", lstm_native=1e-3, onnxruntime=2e-3, **{FLOAT32_LIBRARY: 3e-3})
    table = result.table()
    assert table.columns == ["mode", "library", "ms (median)", "spread", "GOP/s", "% SGEMM",
                             "ln / ORT", "float32 / ln"]
    rows = {r[1]: r for r in table.rows}
    # ln / peer on the peer's row (as in float32), the speed-up on ours.
    assert rows["lstm_native"][-2:] == ["", "3.00"]
    assert rows["onnxruntime"][-2:] == ["0.50", ""]
    assert rows[FLOAT32_LIBRARY][-2:] == ["", ""]
    # GOP/s from the LSTM's multiply-adds: A's forward, 6.71e9, in 1 ms.
    assert rows["lstm_native"][4] == "6710.9"
    assert any("quantize_dynamic" in note for note in table.notes)
    summary = report.summary_table([result])
    assert summary.columns[6] == "GOP/s" and summary.columns[-2:] == ["float32 ms",
                                                                       "float32 / ln"]
    assert summary.rows[0][-2:] == ["3", "3.00"]
    assert _result("A", "bfloat16", lstm_native=1.0).table().columns[4] == "GF/s"


# -- the command line, end to end --------------------------------------------------------------

def test_command_line_times_int8_and_bfloat16_and_reads_the_run_back(tmp_path, capsys):
    md, saved = tmp_path / "bench.md", tmp_path / "bench.json"
    assert cli.main(["--quick", "--configs", "F", "--dtype", "int8,bfloat16", "--threads", "1",
                     "--modes", "infer,train", "--cells", "lstm,lstm-peephole",
                     "--markdown", str(md), "--json", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "int8: inference only (a quantized model does not train): mode train skipped." in out
    assert "cell lstm-peephole skipped" in out
    found, _ = peers.available_libraries()
    expected = {
        "int8": ["lstm_native"] + ["onnxruntime"] * ("onnxruntime" in found) + [FLOAT32_LIBRARY],
        "bfloat16": ["lstm_native"] + ["torch"] * ("torch" in found) + [FLOAT32_LIBRARY]}
    data = json.loads(saved.read_text())
    assert [(r["config"], r["cell"], r["dtype"]) for r in data["results"]] == [
        ("F", "lstm", "int8"), ("F", "lstm", "bfloat16")]
    for r in data["results"]:
        assert list(r["timings"]) == ["infer"]      # no training mode
        assert list(r["timings"]["infer"]) == expected[r["dtype"]]
    for dtype, peer in (("int8", "ORT"), ("bfloat16", "torch")):
        table = out[out.index(f"LSTM F: B=32 T=100 I=16 H=64 L=2 — {dtype}"):]
        header = table.splitlines()[1]
        assert header.split()[-3:] == ["float32", "/", "ln"]
        assert (f"ln / {peer}" in header) == (expected[dtype][1] != FLOAT32_LIBRARY)
        assert ("GOP/s" in header) == (dtype == "int8")
        ours = table.splitlines()[3].split()
        f32 = next(line.split() for line in table.splitlines() if FLOAT32_LIBRARY in line)
        assert ours[:2] == ["infer", "lstm_native"]
        # the ratio as printed, to two decimals (0.02 where int8 runs slowly)
        assert float(ours[-1]) == pytest.approx(float(f32[2]) / float(ours[2]), rel=0.02,
                                                abs=0.005)
    targets = out[out.index("Targets"):].splitlines()
    assert [line.split()[:3] for line in targets[3:5]] == [["lstm", "int8", "1"],
                                                          ["lstm", "bfloat16", "1"]]
    assert "≥ 2.0 (3.0)" in targets[3] and "≥ 1.5 (1.8)" in targets[4]
    text = md.read_text()
    assert "| infer | lstm_native:float32 |" in text and "mode train skipped" in text
    assert "| F | lstm | int8 | 1 | infer |" in text

    # The saved run read back: the same results, notes and summaries.
    again = report.Report.from_json(data)
    assert again.to_json() == data
    assert [t.text() for t in again.summaries()] == [
        t.text() for t in report.Report.from_json(json.loads(saved.read_text())).summaries()]
    assert cli.main(["--report", str(saved)]) == 0
    shown = capsys.readouterr().out
    assert "mode train skipped" in shown
    assert shown[shown.index("Targets"):].splitlines()[:5] == targets[:5]


def test_missing_peers_leave_our_two_rows(monkeypatch, tmp_path, capsys):
    # torch and ONNX Runtime not importable: the machine table says they are skipped and
    # only lstm_native's quantized and float32 layers are timed.
    real = peers.optional_import
    monkeypatch.setattr(peers, "optional_import",
                        lambda name: None if name in ("torch", "onnxruntime", "onnx")
                        else real(name))
    saved = tmp_path / "bench.json"
    assert cli.main(["--quick", "--configs", "F", "--dtype", "int8,bfloat16", "--threads",
                     "1", "--modes", "infer", "--json", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "skipped: torch not importable" in out
    assert "skipped: onnxruntime, onnx not importable" in out
    for r in json.loads(saved.read_text())["results"]:
        assert list(r["timings"]["infer"]) == ["lstm_native", FLOAT32_LIBRARY]
    assert "ln / ORT" not in out and "ln / torch" not in out and "float32 / ln" in out


def test_scaling_in_a_low_precision_times_our_two_layers():
    table = run.scaling_table(CONFIGS["F"], "bfloat16", ["infer"], ["lstm_native"], 1,
                              ONE_RUN, steps=(2, 4), threads=(1, 1))
    assert table.title.startswith("Scaling, LSTM F:") and table.title.endswith("— bfloat16")
    assert [row[:2] for row in table.rows] == [["infer", "lstm_native"],
                                               ["infer", FLOAT32_LIBRARY]]


def test_memory_is_not_measured_in_a_low_precision(tmp_path, capsys):
    saved = tmp_path / "bench.json"
    assert cli.main(["--quick", "--configs", "S", "--dtype", "int8", "--threads", "1",
                     "--modes", "infer", "--libs", "lstm_native", "--memory",
                     "--json", str(saved)]) == 0
    assert "int8: no memory table (it measures a training step)." in capsys.readouterr().out
    data = json.loads(saved.read_text())
    assert data["tables"] == [] and data["notes"] == [
        "int8: no memory table (it measures a training step)."]


def test_a_run_saved_before_the_low_precisions_reads_without_notes():
    saved = {"command": "", "machine": {}, "gemm": [["float32", 2, 100.0]],
             "results": [], "tables": []}
    assert report.Report.from_json(saved).notes == []


# -- asv -------------------------------------------------------------------------------------

def test_asv_times_quantized_inference_beside_the_float32_one(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    full = importlib.import_module("benchmarks.benchmarks")
    bench = full.QuantizedInference
    assert bench.params == [["A", "E"], ["int8", "bfloat16"], [1, 2]]
    assert bench.param_names == ["config", "precision", "n_threads"]
    plain = full.Inference()
    plain.setup("F", "float32", 1)
    for precision, kind in (("int8", "int8"), ("bfloat16", "bfloat16")):
        case = bench()
        case.setup("F", precision, 1)
        assert type(case.model) is QuantizedLSTM and case.model.precision == kind
        assert case.x is plain.x        # the float32 benchmark's data and weights
        case.time_forward("F", precision, 1)
        assert case.track_gops("F", precision, 1) > 0
    assert bench.track_gops.unit == "GOP/s"
    # A commit from before the quantized models: asv marks it skipped.
    monkeypatch.delattr(ln, "quantize")
    with pytest.raises(NotImplementedError, match="no lstm_native.quantize"):
        bench().setup("F", "int8", 1)
