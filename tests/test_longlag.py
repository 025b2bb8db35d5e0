"""`python -m lstm_native longlag` end to end on a tiny setting, and the exactness of its
two diagnostics: ∂L/∂h_t (against the reference and finite differences) and the gates."""
from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import pytest

from lstm_native import GRU, LSTM, _recurrent, cli, longlag
from lstm_native import reference as ref
from conftest import has_matplotlib, last_json, run_cli

TINY = ["longlag", "--lags", "5", "--epochs", "1", "--samples", "64", "--hidden", "4"]


# -- the subcommand ------------------------------------------------------------------------

def test_longlag_json_table_and_plots(tmp_path, capsys):
    code, out, err = run_cli(capsys, [*TINY, "--out", str(tmp_path), "--json"])
    assert code == 0, err
    result = last_json(out)
    assert [row["lag"] for row in result["table"]] == [5]
    # Every cell by default, in the order of CELLS.
    assert result["cells"] == ["RNN", "GRU", "LSTM"] == result["settings"]["cells"]
    row = result["table"][0]
    for kind in ("RNN", "GRU", "LSTM"):
        (mse,), (solved,) = row[kind]["test_mse"], row[kind]["solved"]
        assert math.isfinite(mse) and mse >= 0
        assert solved == (mse < 1 / 60)
    assert row["trivial_mse"][0] == pytest.approx(1 / 6, abs=0.03)
    assert result["settings"]["hidden"] == 4 and result["settings"]["samples"] == 64
    assert result["settings"]["seeds"] == [0]
    keys = {f"{kind}_{when}" for kind in ("RNN", "GRU", "LSTM")
            for when in ("trained", "initial")}
    assert set(result["gradient_reach"]) == keys and set(result["gradient_curves"]) == keys
    assert np.shape(result["gradient_curves"]["LSTM_trained"]) == (1, 5)
    assert np.shape(result["gradient_curves"]["GRU_initial"]) == (1, 5)
    assert result["gradient_reach"]["RNN_trained"] == [
        result["gradient_curves"]["RNN_trained"][0][-1]]
    assert result["gates"]["seed"] == 0 and result["gates"]["lag"] == 5
    # What the figures depend on is stated: the SIMD level and the threads.
    simd = f"SIMD {_recurrent.simd_level()}, 1 thread"
    assert simd in out.splitlines()[0] and result["settings"]["setting"].startswith(simd)
    # The printed table: a header and one row per lag, every model in order.
    header = next(line for line in out.splitlines() if "trivial" in line).split()
    assert header == ["T", "trivial", "RNN", "MSE", "solved", "GRU", "MSE", "solved",
                      "LSTM", "MSE", "solved"]
    assert "RNN(tanh), GRU and LSTM, 4 hidden each" in out.splitlines()[0]
    assert "; GRU " in next(line for line in out.splitlines() if "reaching back" in line)
    plots = [tmp_path / "gradients.png", tmp_path / "gates.png"]
    if has_matplotlib():
        assert result["plots"] == [str(p) for p in plots]
        for p in plots:
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert result["plots"] == [] and "matplotlib is not installed" in out


def test_several_seeds_give_each_seed_its_own_run(tmp_path, capsys):
    """--seeds 0-1 trains each seed as --seed would, and reports median and range."""
    code, out, err = run_cli(capsys, [*TINY, "--seeds", "0-1", "--out", str(tmp_path),
                                      "--json"])
    assert code == 0, err
    both = last_json(out)
    assert "median [range] over seeds 0, 1:" in out
    assert "seed 1  T =   5  LSTM" in out
    code, out_1, err = run_cli(capsys, [*TINY, "--seed", "1", "--out", str(tmp_path / "one"),
                                        "--json"])
    assert code == 0, err
    one = last_json(out_1)
    assert both["settings"]["seeds"] == [0, 1]
    for kind in ("RNN", "LSTM"):
        mses = both["table"][0][kind]["test_mse"]
        assert len(mses) == 2 and mses[1] == one["table"][0][kind]["test_mse"][0]
        solved = sum(both["table"][0][kind]["solved"])
        assert f" {solved}/2" in out
    curves = np.array(both["gradient_curves"]["RNN_trained"])
    assert curves.shape == (2, 5)
    np.testing.assert_array_equal(curves[1], one["gradient_curves"]["RNN_trained"][0])
    # The gates plot and its unit stay with the first seed.
    assert both["gates"]["seed"] == 0


def test_a_subset_of_cells_in_the_order_given(tmp_path, capsys):
    """--cells gru,rnn: those two only, GRU first; no LSTM, so no gates plot or unit."""
    code, out, err = run_cli(capsys, [*TINY, "--cells", "gru,RNN", "--out", str(tmp_path),
                                      "--json"])
    assert code == 0, err
    result = last_json(out)
    assert result["cells"] == ["GRU", "RNN"]
    assert set(result["table"][0]) == {"lag", "trivial_mse", "GRU", "RNN"}
    assert set(result["gradient_curves"]) == {"GRU_trained", "GRU_initial", "RNN_trained",
                                              "RNN_initial"}
    assert result["gates"] is None
    assert "GRU and RNN(tanh), 4 hidden each" in out and "same budget for both" in out
    header = next(line for line in out.splitlines() if "trivial" in line)
    assert header.index("GRU MSE") < header.index("RNN MSE") and "LSTM" not in header
    assert [line.split()[3] for line in out.splitlines() if "T =   5" in line] == ["GRU",
                                                                                  "RNN"]
    if has_matplotlib():
        assert result["plots"] == [str(tmp_path / "gradients.png")]
    assert not (tmp_path / "gates.png").exists()


@pytest.mark.parametrize("text, cells", [
    ("rnn,gru,lstm", ["RNN", "GRU", "LSTM"]), ("LSTM, gru", ["LSTM", "GRU"]),
    ("Gru", ["GRU"]),
    ("lstm-vd,LSTM-CIFG, lstm-peephole,lstm", ["LSTM-VD", "LSTM-CIFG", "LSTM-peephole",
                                               "LSTM"]),
    ("LN-lstm", ["LN-LSTM"])])
def test_parse_cells(text, cells):
    assert longlag.parse_cells(text) == cells


@pytest.mark.parametrize("text, fragment", [("", "''"), ("lstm,cnn", "'cnn'"),
                                            ("rnn,,gru", "''"), ("gru,GRU", "twice"),
                                            ("lstm,lstm-peepholes", "'lstm-peepholes'"),
                                            ("cifg", "'cifg'"),
                                            ("lstm-cifg,LSTM-CIFG", "twice")])
def test_bad_cells_are_rejected(text, fragment, capsys):
    with pytest.raises(ValueError, match="cells"):
        longlag.parse_cells(text)
    with pytest.raises(SystemExit) as e:
        cli.main([*TINY, "--cells", text])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1
    # The message names every cell it would take, variants included.
    assert "--cells" in err and ",".join(longlag.REGISTRY) in err and fragment in err


def test_the_registry():
    """Each entry builds the model it says (its layer, with its options set), its label
    is its name in other case (so any case of either names it), and the default cells
    are its first three, the plain layers."""
    assert list(longlag.REGISTRY)[:3] == ["rnn", "gru", "lstm"]
    assert longlag.CELLS == tuple(spec.label for spec in list(longlag.REGISTRY.values())[:3])
    assert {"lstm-peephole", "lstm-cifg", "lstm-vd", "ln-lstm"} <= set(longlag.REGISTRY)
    colors = [spec.color for spec in longlag.REGISTRY.values()]
    assert len(set(colors)) == len(colors)
    for name, spec in longlag.REGISTRY.items():
        assert spec.label.lower() == name
        assert longlag.cell_spec(spec.label) is longlag.cell_spec(name.upper()) is spec
        layer = longlag.build_model(spec.label, 3, seed=0).layers[0]
        assert type(layer) is spec.layer and layer.hidden_size == 3
        config = layer.get_config()
        assert {key: config[key] for key in spec.options} == spec.options
    assert longlag.REGISTRY["lstm-peephole"].options == {"peepholes": True}
    assert longlag.REGISTRY["lstm-cifg"].options == {"input_forget": True}
    assert longlag.REGISTRY["lstm-vd"].options == {"recurrent_dropout": 0.1}
    assert longlag.REGISTRY["ln-lstm"].options == {"layer_norm": True}
    assert longlag.REGISTRY["ln-lstm"].label == "LN-LSTM"
    assert all(not longlag.REGISTRY[name].options for name in ("rnn", "gru", "lstm"))


@pytest.mark.parametrize("kind", ["cnn", "lstm_cifg", "", None])
def test_unknown_kinds_are_rejected(kind):
    with pytest.raises(ValueError, match="kind must be one of rnn,gru,lstm,lstm-peephole"):
        longlag.build_model(kind, 3, seed=0)


def test_the_variants_side_by_side(tmp_path, capsys):
    """--cells lstm-peephole,lstm-cifg,lstm-vd: each trained as its registry entry says,
    labelled in the header, the lines, the table, the gradients and the JSON; no plain
    LSTM, so no gates plot."""
    code, out, err = run_cli(capsys, [*TINY, "--cells", "lstm-peephole,lstm-cifg,lstm-vd",
                                      "--out", str(tmp_path), "--verbose", "--json"])
    assert code == 0, err
    result = last_json(out)
    labels = ["LSTM-peephole", "LSTM-CIFG", "LSTM-VD"]
    assert result["cells"] == labels == result["settings"]["cells"]
    assert set(result["table"][0]) == {"lag", "trivial_mse", *labels}
    for label in labels:
        (mse,), (solved,) = (result["table"][0][label]["test_mse"],
                             result["table"][0][label]["solved"])
        assert math.isfinite(mse) and solved == (mse < 1 / 60)
    assert set(result["gradient_curves"]) == {f"{label}_{when}" for label in labels
                                              for when in ("trained", "initial")}
    assert result["gates"] is None
    assert ("LSTM-peephole(peepholes=True), LSTM-CIFG(input_forget=True) and "
            "LSTM-VD(recurrent_dropout=0.1), 4 hidden each") in out.splitlines()[0]
    # The lines of the runs align their labels; the table's headings fit their columns.
    lines = [line for line in out.splitlines() if "T =   5" in line]
    assert [line.split()[3] for line in lines] == labels
    assert len({line.index("test MSE") for line in lines}) == 1
    header = next(line for line in out.splitlines() if "trivial" in line)
    assert header.split() == ["T", "trivial", "LSTM-peephole", "MSE", "solved", "LSTM-CIFG",
                              "MSE", "solved", "LSTM-VD", "MSE", "solved"]
    row = next(line for line in out.splitlines() if line.startswith("   5  "))
    for label in labels:
        end = header.index(f"{label} MSE") + len(f"{label} MSE")
        assert row[end - 1] != " " and row[end] == " "      # right-aligned under it
    reach = next(line for line in out.splitlines() if "reaching back" in line)
    assert all(f"{label} " in reach for label in labels)
    if has_matplotlib():
        assert result["plots"] == [str(tmp_path / "gradients.png")]
    assert not (tmp_path / "gates.png").exists()


def test_a_variant_trains_its_own_layer():
    """A variant's run trains its registry model: an LSTM(input_forget=True) for
    LSTM-CIFG, from the plain LSTM's initial weights (same seed), to another result."""
    settings = dict(hidden=4, samples=64, epochs=1, batch_size=32, lr=0.005, seed=0,
                    n_threads=1)
    run = longlag.train_model("LSTM-CIFG", 5, **settings)
    assert run.kind == "LSTM-CIFG" and run.model.layers[0].input_forget
    plain = longlag.train_model("LSTM", 5, **settings)
    assert run.test_mse != plain.test_mse
    # The same initial weights: the variants change the equations, not the draws.
    np.testing.assert_array_equal(run.initial_state["0.weight_ih_l0"],
                                  plain.initial_state["0.weight_ih_l0"])


def test_gates_only_for_the_plain_lstm(tmp_path, capsys):
    """With the plain LSTM among variants, gates.png and the unit are the plain one's."""
    code, out, err = run_cli(capsys, [*TINY, "--cells", "lstm-cifg,lstm", "--out",
                                      str(tmp_path), "--json"])
    assert code == 0, err
    result = last_json(out)
    assert result["gates"]["seed"] == 0 and result["gates"]["lag"] == 5
    if has_matplotlib():
        assert result["plots"] == [str(tmp_path / "gradients.png"),
                                   str(tmp_path / "gates.png")]


def test_help_names_the_cells(capsys):
    with pytest.raises(SystemExit):
        cli.main(["longlag", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "some of rnn,gru,lstm (the default)" in text
    for name, spec in longlag.REGISTRY.items():
        if spec.label not in longlag.CELLS:
            options = ", ".join(f"{k}={v!r}" for k, v in spec.options.items())
            # argparse may break a line at the hyphen of a name.
            assert f"{name} ({options})" in text.replace("- ", "-")


@pytest.mark.parametrize("text, seeds", [("0", [0]), ("0-4", [0, 1, 2, 3, 4]),
                                         ("5, 1-2", [1, 2, 5]), ("3,3", [3])])
def test_parse_seeds(text, seeds):
    assert longlag.parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "-1", "4-2", "1-x", "0,,1"])
def test_bad_seeds_are_rejected(text, capsys):
    with pytest.raises(ValueError, match="seeds"):
        longlag.parse_seeds(text)
    with pytest.raises(SystemExit):
        cli.main([*TINY, "--seeds", text])
    assert "--seeds" in capsys.readouterr().err


def test_longlag_without_matplotlib_says_what_it_skipped(tmp_path, capsys, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    code, out, _ = run_cli(capsys, [*TINY, "--out", str(tmp_path), "--quiet", "--json"])
    assert code == 0
    assert "skipped the plots gradients.png and gates.png" in out
    assert last_json(out)["plots"] == []
    assert not (tmp_path / "gradients.png").exists()


@pytest.mark.parametrize("text, lags", [("20,50,100", [20, 50, 100]), ("100, 20", [20, 100]),
                                        ("5", [5])])
def test_lags_argument(text, lags):
    assert cli._lags(text) == lags


@pytest.mark.parametrize("text", ["", "1", "a,b", "10,-5"])
def test_bad_lags_are_rejected(text):
    with pytest.raises(argparse.ArgumentTypeError):
        cli._lags(text)


# -- ∂L/∂h_t -------------------------------------------------------------------------------

#: The cells the reference computes (it has no dropout and no layer norm); the variants'
#: own parameters (the peepholes) come with the state_dict, their options below.
REFERENCE_CELLS = ("rnn", "gru", "lstm", "lstm-peephole", "lstm-cifg")
#: The cells without dropout, whose ∂L/∂h_t `hidden_state_grads` computes.
DETERMINISTIC_CELLS = [name for name, spec in longlag.REGISTRY.items()
                       if not any("dropout" in option for option in spec.options)]


def _reference_hidden_grads(kind, params, x, d_last):
    """∂L/∂h_t for L = <d_last, h_{T-1}>, from the reference: for each t, run the
    reference from the state after step t over the rest of the sequence and take the
    gradient of its initial hidden state."""
    spec = longlag.cell_spec(kind)
    xt = np.asarray(x, np.float64).transpose(1, 0, 2)    # (T, N, I)
    T = xt.shape[0]
    grads = np.empty((x.shape[0], T, d_last.shape[1]))
    grads[:, T - 1] = d_last
    for t in range(T - 1):
        if spec.layer is LSTM:
            options = {"input_forget": spec.options.get("input_forget", False)}
            _, state, _ = ref.lstm_forward(xt[:t + 1], params, **options)
            out, _, cache = ref.lstm_forward(xt[t + 1:], params, hx=state, **options)
            dout = np.zeros_like(out)
            dout[-1] = d_last
            _, (dh0, _), _ = ref.lstm_backward(dout, cache)
        elif spec.layer is GRU:
            _, state, _ = ref.gru_forward(xt[:t + 1], params)
            out, _, cache = ref.gru_forward(xt[t + 1:], params, h0=state)
            dout = np.zeros_like(out)
            dout[-1] = d_last
            _, dh0, _ = ref.gru_backward(dout, cache)
        else:
            _, state, _ = ref.rnn_forward(xt[:t + 1], params)
            out, _, cache = ref.rnn_forward(xt[t + 1:], params, h0=state)
            dout = np.zeros_like(out)
            dout[-1] = d_last
            _, dh0, _ = ref.rnn_backward(dout, cache)
        grads[:, t] = dh0[0]
    return grads


@pytest.mark.parametrize("kind", REFERENCE_CELLS)
def test_hidden_state_grads_match_the_reference(kind):
    rng = np.random.default_rng(1)
    N, T, H = 3, 7, 4
    layer = longlag.build_model(kind, H, seed=2, dtype=np.float64).layers[0]
    x = rng.standard_normal((N, T, 2))
    d_last = rng.standard_normal((N, H))
    grads = longlag.hidden_state_grads(layer, x, d_last)
    params = layer.state_dict()
    assert ("weight_peephole_l0" in params) == (kind == "lstm-peephole")
    expected = _reference_hidden_grads(kind, params, x, d_last)
    assert grads.shape == (N, T, H)
    np.testing.assert_allclose(grads, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", DETERMINISTIC_CELLS)
def test_hidden_state_grads_match_finite_differences(kind):
    """<∂L/∂h_t, v> against (L(h_t + εv) - L(h_t - εv)) / 2ε, the rest of the sequence
    run from the perturbed state by the layer itself."""
    rng = np.random.default_rng(3)
    N, T, H, eps = 2, 6, 3, 1e-6
    layer = longlag.build_model(kind, H, seed=4, dtype=np.float64).layers[0]
    x = rng.standard_normal((N, T, 2))
    d_last = rng.standard_normal((N, H))
    grads = longlag.hidden_state_grads(layer, x, d_last)
    layer.eval()

    def loss_from(t, state):
        out, _ = layer(x[:, t + 1:], hx=state)
        return float(np.sum(d_last * out[:, -1]))

    for t in range(T - 1):
        _, state = layer(x[:, :t + 1])
        v = rng.standard_normal((1, N, H))
        if isinstance(state, tuple):        # an LSTM's (h, c)
            plus, minus = (state[0] + eps * v, state[1]), (state[0] - eps * v, state[1])
        else:       # the RNN's and the GRU's state: h alone
            plus, minus = state + eps * v, state - eps * v
        numeric = (loss_from(t, plus) - loss_from(t, minus)) / (2 * eps)
        assert np.sum(grads[:, t] * v[0]) == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_hidden_state_grads_refuse_dropout():
    """In training mode a layer with dropout draws masks its eval-mode forward did not use:
    no exact ∂L/∂h_t to give."""
    layer = longlag.build_model("lstm-vd", 3, seed=0, dtype=np.float64).layers[0]
    with pytest.raises(ValueError, match="without dropout.*recurrent_dropout=0.1"):
        longlag.hidden_state_grads(layer, np.zeros((1, 4, 2)), np.ones((1, 3)))


def test_gradient_profile_with_dropout_is_that_of_eval_mode():
    """lstm-vd's profile: that of the same weights without dropout, the same every time
    (no masks drawn)."""
    model = longlag.build_model("lstm-vd", 4, seed=0)
    plain = longlag.build_model("lstm", 4, seed=0)
    plain.load_state_dict(model.state_dict())
    x, y = longlag.adding_data(8, 6, seed=0, part=1)
    profile = longlag.gradient_profile(model, x, y)
    np.testing.assert_array_equal(profile, longlag.gradient_profile(model, x, y))
    np.testing.assert_array_equal(profile, longlag.gradient_profile(plain, x, y))
    assert model.layers[0].recurrent_dropout == 0.1       # the model itself untouched


@pytest.mark.parametrize("kind", longlag.REGISTRY)
def test_gradient_profile_is_a_ratio_to_the_last_step(kind):
    model = longlag.build_model(kind, 4, seed=0)
    x, y = longlag.adding_data(8, 6, seed=0, part=1)
    profile = longlag.gradient_profile(model, x, y)
    assert profile.shape == (8, 6)
    np.testing.assert_allclose(profile[:, 0], 1.0)
    assert np.all(np.isfinite(profile)) and np.all(profile > 0)
    # Another set of weights (those before training, say) gives another profile.
    other = longlag.build_model(kind, 4, seed=1).state_dict()
    assert not np.allclose(longlag.gradient_profile(model, x, y, other), profile)


# -- the gates -----------------------------------------------------------------------------

def test_lstm_gates_are_in_unit_interval_and_rebuild_the_hidden_states():
    lstm = longlag.build_model("LSTM", 5, seed=0, dtype=np.float64).layers[0]
    x, _ = longlag.adding_data(1, 9, seed=0, part=0)
    gates = longlag.lstm_gates(lstm, x[0])
    assert set(gates) == {"forget", "input", "output"}
    for g in gates.values():
        assert g.shape == (9, 5)
        assert np.all((g >= 0) & (g <= 1))
    # With the candidate, these gates give back the LSTM's own hidden states.
    p = lstm.state_dict()
    H = 5
    b = p["bias_ih_l0"] + p["bias_hh_l0"]
    lstm.eval()
    out, _ = lstm(x[0])
    h, c = np.zeros(H), np.zeros(H)
    for t in range(9):
        s = slice(2 * H, 3 * H)
        g = ref.candidate(x[0, t], h, p["weight_ih_l0"][s], p["weight_hh_l0"][s], b[s])
        c = ref.cell(gates["forget"][t], gates["input"][t], g, c)
        h = ref.hidden(gates["output"][t], c)
        np.testing.assert_allclose(h, out[t], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("options, named", [
    ({"peepholes": True}, "peepholes=True"), ({"input_forget": True}, "input_forget=True"),
    ({"clip": 3.0}, "clip=3.0"), ({"layer_norm": True}, "layer_norm=True")])
def test_lstm_gates_refuse_the_variants(options, named):
    """The reference's gate functions are the plain LSTM's: no gates of another."""
    lstm = LSTM(2, 3, seed=0, **options)
    with pytest.raises(ValueError, match=f"plain LSTM.*{named}"):
        longlag.lstm_gates(lstm, np.zeros((4, 2)))


def test_memory_unit_finds_the_unit_that_writes_and_holds():
    T, H = 10, 3
    x = np.zeros((T, 2))
    x[[2, 7], 1] = 1.0
    gates = {"input": np.full((T, H), 0.1), "forget": np.full((T, H), 0.5)}
    gates["input"][2] = [0.9, 0.95, 0.2]      # unit 1 opens most, but does not hold
    gates["forget"][3:, 0] = 0.97             # unit 0 opens and holds
    gates["forget"][3:, 1] = 0.3
    unit = longlag.memory_unit(gates, x)
    assert unit["unit"] == 0 and (unit["first_mark"], unit["second_mark"]) == (2, 7)
    assert unit["input_at_mark"] == pytest.approx(0.9)
    assert unit["input_elsewhere"] == pytest.approx(0.1)
    assert unit["forget_after_min"] == pytest.approx(0.97)


@pytest.mark.parametrize("n_seeds", [1, 3])
def test_gradient_plot_shades_the_range_over_seeds(tmp_path, monkeypatch, n_seeds):
    """One line per model and weights, the median over seeds; a band for their range
    when there are several."""
    pytest.importorskip("matplotlib")
    figures = []
    make = longlag._figure
    monkeypatch.setattr(longlag, "_figure", lambda size: figures.append(make(size))
                        or figures[-1])
    T = 6
    rng = np.random.default_rng(0)
    labels = [*longlag.CELLS, "LSTM-CIFG"]
    curves = {(kind, when): 10.0 ** -rng.uniform(0, 5, (n_seeds, T))
              for kind in labels for when in ("trained", "initial")}
    path = longlag.plot_gradients(str(tmp_path / "g.png"), curves, T, "seeds 0-2\nSIMD x")
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    (ax,) = figures[0].axes
    assert path == str(tmp_path / "g.png") and len(ax.lines) == 8
    for line, key in zip(ax.lines, curves):
        assert line.get_label() == f"{key[0]}, {key[1]}"
        assert line.get_color() == longlag.cell_spec(key[0]).color     # each its own
        np.testing.assert_allclose(line.get_ydata(), np.median(curves[key], axis=0))
    assert ax.lines[2].get_color() == "tab:green"              # the GRU's
    assert len(ax.collections) == (8 if n_seeds > 1 else 0)
    assert "SIMD x" in ax.get_title()
