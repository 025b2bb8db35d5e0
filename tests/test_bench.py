"""The benchmark tool (`lstm_native.bench`) and the asv suite's configurations.

The FLOP counts of the LSTM and the GRU against hand-computed values, the gate-order
conversions and ONNX Runtime's LSTM and GRU against ours (when onnxruntime is
installed), quick end-to-end runs of the command line with their tables and files (the
GRU's next to the LSTM's, the peephole LSTM's against our plain LSTM), and a copy of the
package run on its own, as docs/performance.md's "History" does.
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
from lstm_native.bench import cli, configs, machine, memory, peers, report, run, timing
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


@pytest.mark.parametrize("name, forward", [
    ("A", 6 * 64 * 512 * (512 + 512) * 25),                                # 5.03e9
    ("E", 2 * 6 * 32 * 512 * (512 + 512) * 50),
    ("F", 6 * 32 * 64 * (16 + 64) * 100 + 6 * 32 * 64 * (64 + 64) * 100),
    ("S", 6 * 1 * 64 * (1 + 64) * 1000),
])
def test_gru_forward_flops_by_hand(name, forward):
    # Three gate blocks (r, z, n) where the LSTM has four: x_t·W_ihᵀ and h·W_hhᵀ are
    # (B × I)·(I × 3H) and (B × H)·(H × 3H) per step, 2 FLOPs per multiply-add.
    # r ⊙ (W_hn·h + b_hn) is elementwise, left out as the LSTM's elementwise work is.
    cfg = CONFIGS[name].with_cell("gru")
    assert configs.forward_flops(cfg) == forward
    assert configs.forward_flops(cfg) * 4 == configs.forward_flops(CONFIGS[name]) * 3


def test_gru_flops_of_each_mode():
    cfg = CONFIGS["A"].with_cell("gru")
    fwd = 5_033_164_800
    dx = 6 * 64 * 512 * 512 * 25    # the first layer's input gradient, dG·W_ih, 3H wide
    assert configs.mode_flops(cfg, "infer") == fwd
    assert configs.mode_flops(cfg, "train_dx") == 3 * fwd
    assert configs.mode_flops(cfg, "train") == 3 * fwd - dx == 12_582_912_000
    assert configs.mode_flops(cfg, "bwd") == 2 * fwd - dx
    bi = configs.Config("x", batch=2, steps=3, input_size=4, hidden_size=5, num_layers=2,
                        bidirectional=True, cell="gru")
    # layer 0: 6·2·5·(4+5)·3 per direction; layer 1 reads 2H = 10: 6·2·5·(10+5)·3.
    assert configs.forward_flops(bi) == 2 * (1620 + 2700)


def test_lstmp_flops_by_hand():
    # P = H/4. Per step and direction: the gates (B × (I + P))·((I + P) × 4H), the
    # projection (B × H)·(H × P); layer 1 reads D·P = P.
    cfg = CONFIGS["E"].with_cell("lstmp")            # B=32 T=50 I=512 H=512 L=2
    P = 128
    assert cfg.proj_size == P and cfg.state_size == P
    per_step = [2 * 4 * 32 * 512 * (512 + P) + 2 * 32 * P * 512,
                2 * 4 * 32 * 512 * (P + P) + 2 * 32 * P * 512]
    assert configs.forward_flops(cfg) == 50 * sum(per_step)
    dx = 2 * 4 * 32 * 512 * 512 * 50
    assert configs.mode_flops(cfg, "train") == 3 * configs.forward_flops(cfg) - dx
    assert cfg.layer_kwargs() == {"num_layers": 2, "bidirectional": False, "proj_size": P}
    assert "P=128" in cfg.describe() and "P=" not in CONFIGS["E"].describe()
    assert CONFIGS["E"].proj_size == 0 and CONFIGS["E"].state_size == 512


def test_a_config_names_its_cell():
    cfg = CONFIGS["F"]
    assert cfg.cell == "lstm" and cfg.gates == 4
    gru = cfg.with_cell("gru")
    assert (gru.cell, gru.gates, gru.with_steps(3).cell) == ("gru", 3, "gru")
    assert gru.describe() == cfg.describe()   # the same shape
    with pytest.raises(ValueError, match="unknown cell 'tree'"):
        cfg.with_cell("tree")


def test_a_variant_cell_carries_its_options_and_its_baseline():
    cell = configs.CELLS["lstm-peephole"]
    assert cell.options == {"peepholes": True} and cell.peers == ()
    assert (cell.baseline, cell.baseline_library, cell.overhead_target) == (
        "lstm", "lstm_native:lstm", 1.10)
    assert configs.CELLS["lstm"].baseline_library is None
    cfg = CONFIGS["E"].with_cell("lstm-peephole")
    assert cfg.layer_kwargs() == {"num_layers": 2, "bidirectional": False, "peepholes": True}
    assert CONFIGS["E"].layer_kwargs() == {"num_layers": 2, "bidirectional": False}
    # The peepholes are elementwise: the GEMMs' FLOPs and the kept values are the plain
    # LSTM's (the pre-activations instead of the activated gates).
    for mode in configs.MODES:
        assert configs.mode_flops(cfg, mode) == configs.mode_flops(CONFIGS["E"], mode)
    assert configs.activation_bytes(cfg, 4) == configs.activation_bytes(CONFIGS["E"], 4)
    model = ln.LSTM(cfg.input_size, cfg.hidden_size, **cfg.layer_kwargs())
    assert configs.parameter_count(cfg) == sum(p.size for p in model.parameters().values())
    assert configs.parameter_count(cfg) == configs.parameter_count(CONFIGS["E"]) + 2 * 3 * 512
    assert report.problem_title(cfg).startswith("LSTM(peepholes=True) E: B=32")
    assert cell.describe() == ("lstm-peephole = lstm_native.LSTM(peepholes=True) vs "
                               "lstm_native's lstm, side by side")
    assert configs.CELLS["lstmp"].describe() == (
        "lstmp = lstm_native.LSTM with proj_size = H/4 vs torch.nn.LSTM")


def test_the_layer_normalised_lstm_is_a_variant_against_the_plain_lstm():
    cell = configs.CELLS["ln-lstm"]
    assert (cell.options, cell.peers, cell.baseline, cell.overhead_target) == (
        {"layer_norm": True}, (), "lstm", 1.25)
    cfg = CONFIGS["E"].with_cell("ln-lstm")
    model = ln.LSTM(cfg.input_size, cfg.hidden_size, **cfg.layer_kwargs())
    assert model.layer_norm
    # Its norm parameters: gains and biases of both projections' norms and of c's.
    assert configs.parameter_count(cfg) == sum(p.size for p in model.parameters().values())
    # The training forward keeps the norm buffer (9H + 3 per row) besides the plain
    # LSTM's 6H: all but its 3 values per row.
    rows = 50 * 32 * 2
    assert configs.activation_bytes(cfg, 4) == rows * 15 * 512 * 4
    assert model._norm_width == 9 * 512 + 3   # what the kernels keep per row
    for mode in configs.MODES:
        assert configs.mode_flops(cfg, mode) == configs.mode_flops(CONFIGS["E"], mode)


def test_activations_and_parameters():
    cfg = CONFIGS["E"]
    assert configs.activation_bytes(cfg, 4) == 50 * 32 * 6 * 512 * 2 * 4
    model = ln.LSTM(cfg.input_size, cfg.hidden_size, cfg.num_layers)
    assert configs.parameter_count(cfg) == sum(p.size for p in model.parameters().values())
    gru = cfg.with_cell("gru")
    # r, z, n, the hidden state and n's recurrent term W_hn·h + b_hn: 5H per row.
    assert configs.activation_bytes(gru, 4) == 50 * 32 * 5 * 512 * 2 * 4
    model = ln.GRU(cfg.input_size, cfg.hidden_size, cfg.num_layers)
    assert configs.parameter_count(gru) == sum(p.size for p in model.parameters().values())
    lstmp = cfg.with_cell("lstmp")
    # the gates, c and the projection's input m (6H), and h (P) per row
    assert configs.activation_bytes(lstmp, 4) == 50 * 32 * (6 * 512 + 128) * 2 * 4
    model = ln.LSTM(cfg.input_size, cfg.hidden_size, **lstmp.layer_kwargs())
    assert configs.parameter_count(lstmp) == sum(p.size for p in model.parameters().values())


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
    assert rows[0] == ["lstm", "float32", "2", "2.00 (B)", "0.79", "1.50 (A)", "2.00"]
    assert rows[1] == ["lstm", "float32", "1", "–", "–", "–", "–"]  # no peer timed


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
        lstm, gru, lstmp, peephole, normed = (
            getattr(full, prefix + name)
            for prefix in ("", "GRU", "LSTMP", "LSTMPeephole", "LNLSTM"))
        # The LSTM's benchmarks keep their names and parameters (asv's history); the
        # other cells' are the same benchmarks on those cells.
        assert lstm.cell == "lstm" and gru.cell == "gru" and lstmp.cell == "lstmp"
        assert peephole.cell == "lstm-peephole" and normed.cell == "ln-lstm"
        for matrix in (lstm, gru, lstmp, peephole, normed):
            assert issubclass(matrix, lstm)
            profile = getattr(quick, matrix.__name__)
            assert profile.__name__ == matrix.__name__ and profile.__module__ == quick.__name__
            assert issubclass(profile, matrix)
            assert matrix.params == [list(CONFIGS), ["float32", "float64"], [1, 2]]
            assert matrix.param_names == ["config", "dtype", "n_threads"]
            assert profile.params == [["S", "F", "A"], ["float32"], [1]]
    # The quick profile's smallest case runs, each benchmark once, for each cell.
    params = ("S", "float32", 1)
    for prefix, layer, proj_size in (("", ln.LSTM, 0), ("GRU", ln.GRU, 0),
                                     ("LSTMP", ln.LSTM, 16)):
        infer, step, back = (getattr(quick, prefix + name)()
                             for name in ("Inference", "TrainingStep", "Backward"))
        infer.setup(*params)
        assert type(infer.model) is layer
        assert getattr(infer.model, "proj_size", 0) == proj_size
        assert infer.track_gflops(*params) > 0
        step.setup(*params)
        step.time_step(*params)
        assert step.track_gflops(*params) > 0
        back.setup(*params)
        back.time_backward(*params)


def test_asv_variant_benchmarks_time_the_layer_with_its_options(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    full = importlib.import_module("benchmarks.benchmarks")
    for name in ("Inference", "TrainingStep", "Backward"):
        for prefix, cell in (("LSTMPeephole", "lstm-peephole"), ("LNLSTM", "ln-lstm")):
            cls = getattr(full, prefix + name)
            assert cls.cell == cell and issubclass(cls, getattr(full, name))
            assert cls.params == getattr(full, name).params
    # asv names a benchmark module.class.method by the class's __name__ and finds it
    # again by that name: every public class is bound to its own name.
    classes = {k: v for k, v in vars(full).items() if isinstance(v, type)
               and not k.startswith("_") and v.__module__ == full.__name__}
    assert {k for k, v in classes.items() if v.__name__ != k} == set()
    assert {"GRUBackward", "LSTMPInference", "LSTMPeepholeTrainingStep"} <= set(classes)
    params = ("S", "float32", 1)
    infer = full.LSTMPeepholeInference()
    infer.setup(*params)
    assert type(infer.model) is ln.LSTM and infer.model.peepholes
    plain = full.Inference()
    plain.setup(*params)
    assert not plain.model.peepholes
    step = full.LSTMPeepholeTrainingStep()
    step.setup(*params)
    step.time_step(*params)
    assert step.model.grads["weight_peephole_l0"].any()   # the peepholes were trained
    back = full.LSTMPeepholeBackward()
    back.setup(*params)
    back.time_backward(*params)
    step = full.LNLSTMTrainingStep()
    step.setup(*params)
    step.time_step(*params)
    assert step.model.layer_norm and step.model.grads["weight_ln_c_l0"].any()
    # A commit whose bench has cells but not this one: asv marks it skipped.
    # (a copy without it: deleting and restoring the key would reorder CELLS)
    monkeypatch.setattr(configs, "CELLS", {k: v for k, v in configs.CELLS.items()
                                           if k != "lstm-peephole"})
    monkeypatch.setattr(full, "_problems", {})
    with pytest.raises(NotImplementedError, match="no lstm-peephole cell"):
        full.LSTMPeepholeInference().setup(*params)


def test_asv_gru_benchmarks_are_skipped_on_a_commit_without_cells(monkeypatch):
    # asv imports the package of the commit it times: one from before the cells has no
    # CELLS, and asv marks a benchmark whose setup raises NotImplementedError skipped.
    monkeypatch.syspath_prepend(str(ROOT))
    full = importlib.import_module("benchmarks.benchmarks")
    monkeypatch.delattr(configs, "CELLS")
    monkeypatch.delattr(configs.Config, "proj_size")   # came with the projected LSTM
    monkeypatch.setattr(full, "_problems", {})   # nothing made by an earlier test
    with pytest.raises(NotImplementedError, match="no gru cell"):
        full.GRUInference().setup("S", "float32", 1)
    with pytest.raises(NotImplementedError, match="no lstmp cell"):
        full.LSTMPInference().setup("S", "float32", 1)
    with pytest.raises(NotImplementedError, match="no lstm-peephole cell"):
        full.LSTMPeepholeTrainingStep().setup("S", "float32", 1)
    lstm = full.Inference()
    lstm.setup("S", "float32", 1)
    assert type(lstm.model) is ln.LSTM


# -- ONNX Runtime -------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("num_layers, bidirectional, bias", [
    (1, False, True), (2, False, True), (2, True, True), (1, False, False)])
def test_onnxruntime_matches_lstm_native(cell, num_layers, bidirectional, bias):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    T, N, I, H = 7, 3, 5, 6
    layer = getattr(ln, configs.CELLS[cell].layer)
    model = layer(I, H, num_layers, bidirectional=bidirectional, bias=bias, seed=1)
    x = np.random.default_rng(2).standard_normal((T, N, I)).astype(np.float32)
    from lstm_native.onnx import recurrent_model

    session = peers.onnx_session(recurrent_model(
        model.state_dict(), I, H, num_layers, bidirectional, cell), 1)
    (y,) = session.run(["out"], {"x": x})
    expected = model.eval()(x)[0]
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_tiny_gru_is_measured_against_each_peer(dtype):
    # Every installed peer's GRU is checked against ln.GRU (torch.nn.GRU with the same
    # state_dict, ONNX's GRU) before one timed run of each mode.
    problem = peers.Problem.make(CONFIGS["F"].with_steps(4).with_cell("gru"), dtype)
    assert isinstance(problem.ln_model(1), ln.GRU)
    found, _ = peers.available_libraries()
    schedule = timing.Schedule(repeats=1, blocks=1, pause=0.0, warmup=1)
    for mode in ("infer", "train"):
        timings = peers.measure(problem, mode, 1, found, schedule)
        expected = [lib for lib in found if lib != "onnxruntime"
                    or (mode == "infer" and dtype == np.float32)]
        assert [t.library for t in timings] == expected
        assert all(t.median > 0 for t in timings)


@pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")
def test_a_tiny_lstmp_is_measured_against_torch():
    # torch.nn.LSTM(proj_size=P) with the same state_dict, checked against ours before
    # it is timed; ONNX's LSTM has no projection: no ONNX Runtime task.
    problem = peers.Problem.make(CONFIGS["F"].with_steps(4).with_cell("lstmp"), np.float32)
    assert problem.ln_model(1).proj_size == 16 and problem.dout.shape == (4, 32, 16)
    found, _ = peers.available_libraries()
    schedule = timing.Schedule(repeats=1, blocks=1, pause=0.0, warmup=1)
    for mode in ("infer", "train"):
        timings = peers.measure(problem, mode, 1, found, schedule)
        assert [t.library for t in timings] == [lib for lib in found if lib != "onnxruntime"]
    assert peers.ort_task(problem, "infer", 1) is None


@pytest.mark.parametrize("mode", ["infer", "train", "bwd"])
@pytest.mark.parametrize("cell, own", [
    ("lstm-peephole", {"weight_peephole_l0", "weight_peephole_l1"}),
    ("ln-lstm", {f"{kind}_ln_{part}_l{k}" for kind in ("weight", "bias")
                 for part in ("ih", "hh", "c") for k in (0, 1)})])
def test_a_tiny_variant_lstm_is_measured_against_our_plain_lstm(mode, cell, own):
    # No peer has the variant here: ours runs, and our plain LSTM on the same weights
    # (but the variant's own) and data beside it, in the same blocks, labelled apart.
    problem = peers.Problem.make(CONFIGS["F"].with_steps(4).with_cell(cell), np.float32)
    model = problem.ln_model(1)
    option = next(iter(configs.CELLS[cell].options))
    assert getattr(model, option)
    plain = problem.baseline
    assert plain.cfg == CONFIGS["F"].with_steps(4) and plain.x is problem.x
    assert plain.dout is problem.dout and plain.baseline is None
    assert set(problem.state_dict) - set(plain.state_dict) == own
    assert all(plain.state_dict[k] is v for k, v in problem.state_dict.items()
               if k not in own)
    assert not getattr(plain.ln_model(1), option)
    assert peers.torch_task(problem, mode, 1) is None
    assert peers.ort_task(problem, mode, 1) is None
    found, _ = peers.available_libraries()
    schedule = timing.Schedule(repeats=2, blocks=2, pause=0.0, warmup=1)
    timings = peers.measure(problem, mode, 1, found, schedule)
    assert [t.library for t in timings] == ["lstm_native", "lstm_native:lstm"]
    assert all(len(t.times) == 2 and t.median > 0 for t in timings)
    # A cell without a baseline times no plain layer besides.
    assert peers.Problem.make(CONFIGS["F"].with_steps(4), np.float32).baseline is None


def test_variants_table_takes_the_worst_of_a_to_e_against_the_target():
    def result(name, cell, n=2, **modes):
        timings = {mode: [timing.Timing(lib, [t]) for lib, t in libs.items()]
                   for mode, libs in modes.items()}
        return report.Result(CONFIGS[name].with_cell(cell), "float32", n, 100.0, timings)

    results = [
        result("A", "lstm", train={"lstm_native": 2.0, "torch": 4.0}),
        result("A", "lstm-peephole", train={"lstm_native": 2.1, "lstm_native:lstm": 2.0},
               infer={"lstm_native": 1.0, "lstm_native:lstm": 1.0}),
        result("C", "lstm-peephole", train={"lstm_native": 2.4, "lstm_native:lstm": 2.0},
               infer={"lstm_native": 0.9, "lstm_native:lstm": 1.0}),
        # F is timed but not one of the configurations the target is stated on.
        result("F", "lstm-peephole", train={"lstm_native": 3.0, "lstm_native:lstm": 2.0},
               infer={"lstm_native": 1.1, "lstm_native:lstm": 1.0}),
    ]
    table = report.variants_table(results)
    assert table.columns == ["cell", "dtype", "threads", "mode", "A", "C", "F",
                             "worst of A-E", "target"]
    assert table.rows == [
        ["lstm-peephole", "float32", "2", "train", "1.050", "1.200", "1.500", "1.200 (C)",
         "≤ 1.10"],
        ["lstm-peephole", "float32", "2", "infer", "1.000", "0.900", "1.100", "1.000 (A)",
         "–"]]
    # The summary has the plain LSTM's time and the ratio; the targets, only the cells
    # with peers; the per-configuration table a ratio on the variant's row.
    summary = report.summary_table(results)
    rows = {(r[0], r[1], r[4]): dict(zip(summary.columns, r)) for r in summary.rows}
    assert rows["C", "lstm-peephole", "train"]["plain ms"] == "2000.0"
    assert rows["C", "lstm-peephole", "train"]["variant / plain"] == "1.200"
    assert rows["A", "lstm", "train"]["variant / plain"] == "–"
    titles = [t.title.split(":")[0] for t in report.Report("", {}, {}, results).summaries()]
    assert titles == ["Summary, float32", "Targets", "Variants"]
    assert [r[0] for r in report.targets_table(results).rows] == ["lstm"]
    per_config = results[2].table()
    assert per_config.columns[-1] == "variant / lstm"
    assert [r[1] for r in per_config.rows[:2]] == ["lstm_native", "lstm_native:lstm"]
    assert [r[-1] for r in per_config.rows[:2]] == ["1.200", ""]
    assert "ln / " not in " ".join(per_config.columns)


def test_torch_gru_is_checked_against_ln_gru():
    pytest.importorskip("torch")
    problem = peers.Problem.make(CONFIGS["F"].with_steps(3).with_cell("gru"), np.float32)
    peers.torch_task(problem, "infer", 1)   # the same weights: it agrees
    # Other weights than those of the reference output: refused before any timing.
    other = peers.Problem.make(problem.cfg, np.float32, seed=1)
    problem.state_dict = other.state_dict
    with pytest.raises(RuntimeError, match="torch.nn.GRU's output differs"):
        peers.torch_task(problem, "infer", 1)


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
    assert "--quick --configs F" in text and "| F | lstm | float32 | 2 | infer |" in text
    assert "| mode | library |" not in text   # --summary: no table per configuration


def test_command_line_rejects_unknown_choices(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--configs", "Z"])
    assert "unknown configuration Z" in capsys.readouterr().err


@pytest.mark.parametrize("text, cells", [
    (None, ["lstm"]), ("gru", ["gru"]), ("lstm,gru", ["lstm", "gru"]),
    (" gru , lstm ", ["gru", "lstm"]), ("lstm,lstm-peephole", ["lstm", "lstm-peephole"]),
    ("ln-lstm,lstm", ["ln-lstm", "lstm"])])
def test_command_line_cells(text, cells):
    argv = [] if text is None else ["--cells", text]
    assert cli.build_parser().parse_args(argv).cells == cells


@pytest.mark.parametrize("text, message", [
    ("lstm,tree", "unknown cell tree; choose from lstm, gru, lstmp, lstm-peephole, ln-lstm"),
    (",", "unknown cell (none)"), ("GRU", "unknown cell GRU")])
def test_command_line_rejects_unknown_cells(text, message, capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--cells", text])
    assert message in capsys.readouterr().err


def test_command_line_times_the_gru_beside_the_lstm(tmp_path, capsys):
    md, saved = tmp_path / "bench.md", tmp_path / "bench.json"
    assert cli.main(["--quick", "--cells", "lstm,gru", "--configs", "F", "--modes", "infer",
                     "--threads", "1", "--markdown", str(md), "--json", str(saved)]) == 0
    out = capsys.readouterr().out
    # A table per configuration and cell, the LSTM's first.
    assert out.index("LSTM F: B=32 T=100 I=16 H=64 L=2") < out.index("GRU F: B=32 T=100")
    summary = out[out.index("Summary, float32"):]
    assert "cfg  cell  dtype" in summary
    for cell in ("lstm", "gru"):
        row = next(line.split() for line in summary.splitlines()
                   if line.startswith(f"F    {cell}"))
        assert row[:5] == ["F", cell, "float32", "1", "infer"] and float(row[5]) > 0
        assert f"| F | {cell} | float32 | 1 | infer |" in md.read_text()
    targets = out[out.index("Targets"):].splitlines()
    assert [line.split()[0] for line in targets[3:5]] == ["lstm", "gru"]
    results = json.loads(saved.read_text())["results"]
    assert [(r["config"], r["cell"]) for r in results] == [("F", "lstm"), ("F", "gru")]
    # GF/s from the GRU's FLOPs: three quarters of the LSTM's.
    again = report.Report.from_json(json.loads(saved.read_text()))
    assert [r.cfg for r in again.results] == [CONFIGS["F"], CONFIGS["F"].with_cell("gru")]
    assert report.problem_title(again.results[1].cfg).startswith("GRU F:")


def test_command_line_times_the_peephole_lstm_against_our_plain_lstm(tmp_path, capsys):
    md, saved = tmp_path / "bench.md", tmp_path / "bench.json"
    assert cli.main(["--quick", "--cells", "lstm-peephole", "--configs", "F,S",
                     "--modes", "infer,train", "--threads", "1", "--markdown", str(md),
                     "--json", str(saved)]) == 0
    out = capsys.readouterr().out
    table = out[out.index("LSTM(peepholes=True) F: B=32 T=100"):]
    header = table.splitlines()[1].split()
    assert header[-3:] == ["variant", "/", "lstm"] and "torch" not in header
    rows = [line.split() for line in table.splitlines()[3:7]]
    assert [r[:2] for r in rows] == [["infer", "lstm_native"], ["infer", "lstm_native:lstm"],
                                     ["train", "lstm_native"], ["train", "lstm_native:lstm"]]
    # The ratio on the variant's row: its median over the plain LSTM's.
    assert float(rows[2][-1]) == pytest.approx(float(rows[2][2]) / float(rows[3][2]),
                                               rel=0.02)
    assert "plain ms  variant / plain" in out and "Targets" not in out
    variants = out[out.index("Variants"):].splitlines()
    assert variants[1].split()[-6:] == ["F", "S", "worst", "of", "A-E", "target"]
    assert variants[3].split()[:4] == ["lstm-peephole", "float32", "1", "infer"]
    assert variants[4].split()[-3:] == ["–", "≤", "1.10"]   # no A-E timed here
    assert "| lstm-peephole | float32 | 1 | train |" in md.read_text()
    results = json.loads(saved.read_text())["results"]
    assert [r["cell"] for r in results] == ["lstm-peephole"] * 2
    assert set(results[0]["timings"]["train"]) == {"lstm_native", "lstm_native:lstm"}
    # The saved run shown again: the same ratios.
    assert cli.main(["--report", str(saved)]) == 0
    again = capsys.readouterr().out
    assert again[again.index("Variants"):].splitlines()[:5] == variants[:5]


def test_a_run_saved_before_the_cells_reads_as_lstm():
    saved = {"config": "F", "dtype": "float32", "n_threads": 2, "gemm_gflops": 100.0,
             "timings": {"infer": {"lstm_native": [1e-3]}}}
    result = report.Result.from_json(saved)
    assert result.cfg == CONFIGS["F"] and result.cfg.cell == "lstm"
    assert report.Result.from_json(result.to_json()).cfg == CONFIGS["F"]


def test_scaling_table_per_cell():
    cfg = CONFIGS["F"].with_cell("gru")
    schedule = timing.Schedule(repeats=1, blocks=1, pause=0.0, warmup=1)
    table = run.scaling_table(cfg, np.float32, ["infer"], ["lstm_native"], 1, schedule,
                              steps=(2, 4), threads=(1, 1))
    assert table.title.startswith("Scaling, GRU F: B=32 T=100")
    assert [row[:2] for row in table.rows] == [["infer", "lstm_native"]]


def test_memory_table_per_cell():
    table = memory.memory_table([CONFIGS["F"].with_steps(20).with_cell("gru")], np.float64,
                                ["lstm_native"], 1)
    (row,) = table.rows
    col = dict(zip(table.columns, row))
    assert (col["cfg"], col["cell"], col["library"]) == ("F", "gru", "lstm_native")
    acts = configs.activation_bytes(CONFIGS["F"].with_steps(20).with_cell("gru"), 8)
    assert float(col["activations MiB"]) == pytest.approx(acts / 2.0**20, abs=0.05)
    # The GRU's step holds at least its activations at its peak, as the LSTM's.
    assert float(col["peak RSS growth MiB"]) >= 0.9 * float(col["activations MiB"])


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
