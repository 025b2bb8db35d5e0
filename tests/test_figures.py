"""docs/figures.py, the script that regenerates the README's figures: its cheap pieces
(the environment of a run, the tables of figures.md) on made-up results. The script
itself takes half an hour and is not run here."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "figures.py"


@pytest.fixture(scope="module")
def figures():
    spec = importlib.util.spec_from_file_location("figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_environment_sets_the_level_blas_and_one_thread(figures, monkeypatch):
    monkeypatch.setenv("LSTM_NATIVE_ISA", "avx2")
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    env = figures.environment("generic", "Haswell")
    assert env["LSTM_NATIVE_ISA"] == "generic" and env["OPENBLAS_CORETYPE"] == "Haswell"
    assert env["OMP_NUM_THREADS"] == "1" and env["OPENBLAS_NUM_THREADS"] == "1"
    # The defaults: the kernels' own level (not the caller's), OpenBLAS's own kernels.
    env = figures.environment(None, "default")
    assert "LSTM_NATIVE_ISA" not in env and "OPENBLAS_CORETYPE" not in env


def test_blas_kernels_are_scipys(figures):
    info = {"BLAS": "numpy: openblas 0.3.31 (Zen kernels); scipy: openblas 0.3.30 "
                    "(SkylakeX kernels)"}
    assert figures.blas_kernels(info) == "SkylakeX"
    assert figures.blas_kernels({"BLAS": "none found"}) == "unknown"


@pytest.mark.parametrize("values, text", [([19.99, 18.4, 20.2], "19.99 [18.40, 20.20]"),
                                          ([52.68, 52.68], "52.68"), ([3.0], "3.00")])
def test_spread(figures, values, text):
    assert figures.spread(values, ".2f") == text


def _fake_results(seeds=(0, 1, 2), cells=("RNN", "LSTM")):
    """What `measure` returns, for two configurations, T = 4 and 3 seeds; longlag with
    `cells` (RNN and LSTM: as files saved before --cells)."""
    n = len(seeds)

    def longlag_json(shift):
        mse = {"RNN": {"test_mse": [0.1 + shift, 0.01, 0.2][:n],
                       "solved": [False, True, False][:n]},
               "GRU": {"test_mse": [3e-5, 2e-5, 5e-5][:n], "solved": [True] * n},
               "LSTM": {"test_mse": [0.001, 0.002, 0.003][:n], "solved": [True] * n},
               "LN-LSTM": {"test_mse": [4e-4, 5e-4, 6e-4][:n], "solved": [True] * n}}
        return {
            "table": [{"lag": 4, "trivial_mse": [0.17] * n,
                       **{cell: mse[cell] for cell in cells}}],
            # (seeds, T): 1 at the loss, then falling; the figures at 2 and 3 steps back.
            "gradient_curves": {f"{kind}_{when}": [[1.0, 0.5, 0.1 * (s + 1), 1e-3 * (s + 1)]
                                                   for s in range(n)]
                                for kind in cells for when in ("trained", "initial")},
            "gates": None if "LSTM" not in cells else {
                "seed": 0, "lag": 4, "unit": 15, "first_mark": 1, "second_mark": 3,
                "input_at_mark": 0.92, "input_elsewhere": 0.02, "forget_after_min": 0.95,
                "forget_after_median": 0.99}}

    def forecast(rmse):
        return [{"rmse": rmse + s, "naive_rmse": 52.68, "epochs": 228, "best_epoch": 197,
                 "seconds": 1.0} for s in range(n)]

    return {
        "machine": {"cpu": "Test CPU", "cores": 2, "os": "Linux", "python": "3.11",
                    "numpy": "2.0", "scipy": "1.14",
                    "BLAS": "scipy: openblas 0.3.30 (SkylakeX kernels)",
                    "OPENBLAS_CORETYPE": "(unset)", "lstm_native SIMD": "avx512",
                    "lstm_native OpenMP": "on"},
        "default_level": "avx512", "default_blas": "SkylakeX", "seeds": list(seeds),
        "threads": {"OMP_NUM_THREADS": "1"}, "commit": "abc1234", "date": "today",
        "configs": [
            {"level": "generic", "coretype": "default", "blas": "SkylakeX",
             "forecast": forecast(19.0), "longlag": longlag_json(0.0)},
            {"level": "avx512", "coretype": "Haswell", "blas": "Haswell",
             "forecast": forecast(20.0), "longlag": longlag_json(0.5)}],
        "forecast_sample": {"command": "python -m lstm_native", "output": "test RMSE 19.99\n"},
        "longlag_sample": {"command": "python -m lstm_native longlag",
                           "output": "LSTM  test MSE 0.0001\n"},
    }


def _fake_examples(levels=("generic", "avx512")):
    """What `measure_examples` returns: char_lm with fewer seeds than the others."""
    def runs(seeds, step, **figures):
        return {"seeds": list(seeds),
                "runs": [{k: v + step * s for k, v in figures.items()} for s in seeds]}

    return [{"level": level, "coretype": "default", "blas": "SkylakeX", "date": "today",
             "commit": "abc1234", "scripts": {
                 "forecast_csv": runs(range(3), 1.0, rmse=20.0, naive_rmse=53.7, rmse_steps=21.5,
                                      naive_rmse_steps=112.1, epochs=200, best_epoch=150,
                                      steps=12, seconds=1.5),
                 "char_lm": runs(range(2), 0.1, uniform_loss=4.6, first_val_loss=2.43,
                                 last_val_loss=1.63, epochs=8, seconds=30.0),
                 "classify_lengths": runs(range(3), 0.01, test_accuracy=0.948, shorter_half=0.9,
                                          longer_half=0.99, seconds=9.0)}}
            for level in levels]


def test_render_gives_each_configuration_its_median_and_range(figures):
    text = figures.render(_fake_results())
    lines = text.splitlines()
    assert lines[0] == "# The README's figures"
    assert "at commit abc1234" in text and "seed 0-2" in text
    assert "| CPU | Test CPU (2 cores) |" in lines
    # The sample outputs, as a reader would type and see them.
    assert "$ python -m lstm_native\ntest RMSE 19.99\n```" in text
    assert "SIMD avx512, BLAS kernels SkylakeX, one thread" in text
    # The forecast: per configuration the median [range] over seeds and the seeds' values.
    assert ("| generic | SkylakeX | 20.00 [19.00, 21.00] | 52.68 | 228 | 197 | 1.0 | "
            "19.00, 20.00, 21.00 |") in lines
    assert any(line.startswith("| avx512 | Haswell (OPENBLAS_CORETYPE=Haswell) | 21.00 ")
               for line in lines)
    # longlag: MSE (two significant digits) with the solved count, the gradient T/2 and
    # T - 1 steps back, the gates.
    assert ("| generic | SkylakeX | 4 | 0.1700 | 0.1 [0.01, 0.2] | 1/3 | "
            "0.002 [0.001, 0.003] | 3/3 |") in lines
    assert "2 and 3 steps back" in text
    assert "| generic | SkylakeX | LSTM | 0.2 [0.1, 0.3] | 0.002 [0.001, 0.003] | " \
           "0.2 [0.1, 0.3] | 0.002 [0.001, 0.003] |" in lines
    assert "| generic | SkylakeX | 0 | 15 | 1, 3 | 0.92 | 0.02 | 0.95 | 0.99 |" in lines
    # Every table is well formed: as many cells in each row as in its header.
    widths, previous = [], False
    for line in lines:
        if line.startswith("|"):
            if not previous:
                widths.append(set())
            widths[-1].add(line.count("|"))
        previous = line.startswith("|")
    assert len(widths) == 5 and all(len(w) == 1 for w in widths)


def test_render_with_one_seed_gives_plain_values(figures):
    lines = figures.render(_fake_results(seeds=(0,))).splitlines()
    assert "| generic | SkylakeX | 19.00 | 52.68 | 228 | 197 | 1.0 | 19.00 |" in lines
    assert "| generic | SkylakeX | 4 | 0.1700 | 0.1 | 0/1 | 0.001 | 1/1 |" in lines


def _longlag_tables(text):
    """The three tables of the longlag section: (header cells, rows' cells) each."""
    section = text.split("## `python -m lstm_native longlag`")[1].split("## Examples")[0]
    tables, current = [], None
    for line in section.splitlines():
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if current is None:
                current = (cells, [])
                tables.append(current)
            elif not line.startswith("|---"):
                current[1].append(cells)
        else:
            current = None
    return tables


def test_render_longlag_with_three_cells(figures):
    text = figures.render(_fake_results(cells=("RNN", "GRU", "LSTM")))
    (mse_header, mse_rows), (grad_header, grad_rows), (gates_header, gates_rows) = \
        _longlag_tables(text)
    assert mse_header == ["SIMD level", "BLAS kernels", "T", "trivial MSE", "RNN MSE",
                          "RNN solved", "GRU MSE", "GRU solved", "LSTM MSE", "LSTM solved"]
    assert mse_rows[0] == ["generic", "SkylakeX", "4", "0.1700", "0.1 [0.01, 0.2]", "1/3",
                           "3e-05 [2e-05, 5e-05]", "3/3", "0.002 [0.001, 0.003]", "3/3"]
    assert [row[2] for row in grad_rows] == ["RNN", "GRU", "LSTM"] * 2
    assert len(gates_rows) == 2 and "longlag_gates.png" in text


def test_render_longlag_with_a_variant(figures):
    """--longlag-args "--cells ln-lstm,lstm": the variants' columns too, in the
    registry's order."""
    (mse_header, mse_rows), (_, grad_rows), _ = _longlag_tables(
        figures.render(_fake_results(cells=("LN-LSTM", "LSTM"))))
    assert mse_header[4:] == ["LSTM MSE", "LSTM solved", "LN-LSTM MSE", "LN-LSTM solved"]
    assert mse_rows[0][-2:] == ["0.0005 [0.0004, 0.0006]", "3/3"]
    assert [row[2] for row in grad_rows] == ["LSTM", "LN-LSTM"] * 2


def test_render_longlag_without_an_lstm_has_no_gates(figures):
    """--cells gru,rnn (in any order): the cells' columns in CELLS' order, no gates."""
    results = _fake_results(cells=("GRU", "RNN"))
    text = figures.render(results)
    tables = _longlag_tables(text)
    assert len(tables) == 2 and "The trained LSTM" not in text
    assert tables[0][0][4:] == ["RNN MSE", "RNN solved", "GRU MSE", "GRU solved"]
    assert "`docs/longlag_gradients.png` (seeds 0-2) is the plot of the run" in text
    assert "longlag_gates.png" not in text
    # Merged with a configuration of other cells: a dash where a cell was not measured.
    lstm_only = _fake_results(cells=("LSTM",))["configs"][0]
    results["configs"].append({**lstm_only, "level": "avx2"})
    (header, rows), _, (_, gates_rows) = _longlag_tables(figures.render(results))
    assert header[4:] == ["RNN MSE", "RNN solved", "GRU MSE", "GRU solved", "LSTM MSE",
                          "LSTM solved"]
    assert rows[0][-2:] == ["–", "–"] and rows[-1][4:8] == ["–"] * 4
    assert [row[0] for row in gates_rows] == ["avx2"]


def test_merge_renders_the_configurations_of_several_saved_runs(figures, tmp_path):
    first, second = _fake_results(), _fake_results()
    second["configs"] = [{**second["configs"][1], "coretype": "Zen", "blas": "Zen"}]
    second["machine"] = {**second["machine"], "cpu": "Other CPU"}
    paths = []
    for name, results in (("a.json", first), ("b.json", second)):
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(results))
    assert figures.main(["--merge", *map(str, paths), "--out", str(tmp_path)]) == 0
    lines = (tmp_path / "figures.md").read_text().splitlines()
    assert "| CPU | Test CPU (2 cores) |" in lines             # the first run's machine
    forecast_rows = [line for line in lines if line.startswith("| ") and "19.00, " in line
                     or "21.00, " in line]
    assert [row.split(" | ")[1] for row in forecast_rows] == [
        "SkylakeX", "Haswell (OPENBLAS_CORETYPE=Haswell)", "Zen (OPENBLAS_CORETYPE=Zen)"]


def test_render_examples_per_level_and_script(figures):
    results = {**_fake_results(), "examples": _fake_examples()}
    text = figures.render(results)
    lines = text.splitlines()
    assert "## Examples" in lines and "`python examples/forecast_csv.py`:" in lines
    # A script run with fewer seeds says so above its table.
    assert "`python examples/char_lm.py`, over seeds 0-1 only (`--example-seeds " \
           "char_lm=...`), not 0-2 as the rest:" in lines
    # Median [range] over each script's own seeds, per SIMD level.
    assert ("| generic | SkylakeX | 0-2 | 21.0 [20.0, 22.0] | 54.7 [53.7, 55.7] | "
            "22.5 [21.5, 23.5] | 113.1 [112.1, 114.1] | 201 [200, 202] | 2.5 [1.5, 3.5] |"
            ) in lines
    assert any(line.startswith("| avx512 | SkylakeX | 0-1 | 2.48 [2.43, 2.53] | "
                               "1.68 [1.63, 1.73] |") for line in lines)
    assert "| generic | SkylakeX | 0-2 | 95.8 [94.8, 96.8] | 91.0 [90.0, 92.0] | " \
           "100.0 [99.0, 101.0] | 9.0 [9.0, 9.0] |" in lines
    # The examples part alone: no forecast or longlag sections, still well-formed tables.
    alone = {**_fake_results(), "configs": [], "examples": _fake_examples(("avx2",))}
    text = figures.render(alone)
    assert "## The main job" not in text and "longlag" not in text
    assert text.count("| avx2 | SkylakeX |") == 3


def test_merge_keeps_saved_files_without_examples(figures, tmp_path):
    old = _fake_results()                                 # saved before the examples part
    new = {**_fake_results(), "configs": [], "examples": _fake_examples(("avx2",))}
    del new["forecast_sample"], new["longlag_sample"]
    paths = []
    for name, results in (("old.json", old), ("new.json", new)):
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(results))
    assert figures.main(["--merge", *map(str, paths), "--out", str(tmp_path),
                         "--note", "Measured in a hurry."]) == 0
    merged = (tmp_path / "figures.md").read_text()
    assert figures.render(old) in merged                   # all of it, then the examples
    assert "\nMeasured in a hurry.\n" in merged.split("## Examples")[1]
    assert merged.index("## Examples") > merged.index("## `python -m lstm_native longlag`")


@pytest.mark.parametrize("merge", [False, True])
def test_keep_examples_keeps_the_old_section(figures, tmp_path, monkeypatch, merge):
    """The forecast and longlag parts written anew, the examples section as it was."""
    old = figures.render({**_fake_results(), "examples": _fake_examples()})
    (tmp_path / "figures.md").write_text(old)
    new = _fake_results(cells=("RNN", "GRU", "LSTM"))
    new["date"] = "tomorrow"
    if merge:
        saved = tmp_path / "new.json"
        saved.write_text(json.dumps(new))
        argv = ["--merge", str(saved)]
    else:
        monkeypatch.setattr(figures, "measure", lambda *a, **k: {"results": new,
                                                                "plots_dir": None})
        argv = ["--parts", "longlag,forecast"]
    assert figures.main([*argv, "--keep-examples", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "figures.md").read_text()
    assert text == figures.render(new) + figures.examples_section(old)
    assert "on tomorrow" in text and "| GRU MSE |" in text
    assert text.count("## Examples") == 1 and "\n\n## Examples\n" in text


@pytest.mark.parametrize("argv, old, fragment", [
    (["--parts", "longlag"], True, "--parts forecast,longlag"),
    (["--parts", "forecast,longlag,examples"], True, "--parts forecast,longlag"),
    (["--parts", "forecast,longlag"], False, "no examples section"),
])
def test_keep_examples_is_checked(figures, tmp_path, capsys, argv, old, fragment):
    if old:
        (tmp_path / "figures.md").write_text(figures.render(_fake_results()))
    with pytest.raises(SystemExit):
        figures.main([*argv, "--keep-examples", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "--keep-examples" in err and fragment in err


def test_parts_and_example_seeds_are_checked(figures, capsys):
    for argv in (["--parts", "forecast,plots"], ["--example-seeds", "nope=0-1"],
                 ["--example-seeds", "char_lm"]):
        with pytest.raises(SystemExit):
            figures.main(argv)
    assert "--example-seeds" in capsys.readouterr().err


def test_machine_states_the_simd_level_and_blas(figures):
    from lstm_native import _recurrent

    info = figures.machine()
    assert info["lstm_native SIMD"] == _recurrent.simd_level()
    assert "scipy: openblas" in info["BLAS"] or info["BLAS"] == "none found"
    assert figures.blas_kernels(info) != "" and info["cores"] >= 1
