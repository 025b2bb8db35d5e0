"""The LSTM's variants of the ONNX operator: `peepholes`, `clip`, `input_forget` on `LSTM`
and `LSTMCell`. The kernels against the NumPy reference (every SIMD level, both dtypes,
inference chunks, with a projection), finite differences of every option and their
combinations, threads and the hidden-unit split, the plain LSTM unchanged, checkpoints
and the API's errors. ONNX Runtime's agreement is in test_lstm_variants_onnx.py."""
from __future__ import annotations

import numpy as np
import pytest

import lstm_native as ln
from conftest import (
    DTYPES,
    SIMD_LEVELS,
    assert_results_close,
    assert_threads_bitwise_equal,
    check_finite_differences,
    check_lstm_finite_differences,
    lstm_case,
    lstm_simd_check,
    model_run,
    reference_run,
    run_at_simd_level,
)
from lstm_native import _recurrent
from lstm_native import reference as ref

KEYS = ("out", "h_n", "c_n", "dx", "dh0", "dc0")

# Each option alone and all together; clip 0.6 cuts a good share of the pre-activations
# of these random weights (test_clip_cuts_some_values).
VARIANTS = {
    "peepholes": dict(peepholes=True),
    "clip": dict(clip=0.6),
    "input_forget": dict(input_forget=True),
    "all": dict(peepholes=True, clip=0.6, input_forget=True),
}


# -------------------------------------------------------------------------------------
# Kernels against the NumPy reference
# -------------------------------------------------------------------------------------

CONFIGS = {
    "base": dict(T=5, N=3, I=4, H=6, L=1),
    "L2-bi-lengths-hx-dhx": dict(T=7, N=5, I=3, H=5, L=2, bi=True, lengths=True, hx=True,
                                 dhx=True),
    "L2-bf-proj": dict(T=6, N=4, I=5, H=7, P=3, L=2, bf=True, lengths=True, hx=True,
                       dhx=True),
    # H not a multiple of any vector width: every pass's edges run.
    "H37": dict(T=5, N=2, I=7, H=37, L=1, bi=True, lengths=True, hx=True, dhx=True),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("variant", list(VARIANTS.values()), ids=list(VARIANTS))
@pytest.mark.parametrize("cfg", list(CONFIGS.values()), ids=list(CONFIGS))
def test_matches_reference(cfg, variant, dtype):
    model, params, case = lstm_case(cfg, variant, dtype, seed=1)
    assert_results_close(model_run(model, **case), reference_run(model, params, **case), dtype)
    model.eval()
    case = dict(case, dout=None, dhx=None)
    assert_results_close(model_run(model, **case), reference_run(model, params, **case), dtype)


def test_clip_cuts_some_values():
    """The tests' clip is tight enough to matter: in the reference, a good share of the
    pre-activations lie beyond it (and some within)."""
    _, params, case = lstm_case(CONFIGS["base"], VARIANTS["clip"], np.float64, seed=1)
    _, _, cache = ref.lstm_forward(case["x"], params, clip=0.6)
    pre = np.concatenate([np.ravel(ref.lstm_pre_activations(step))
                          for step in cache["layer_caches"][0][0]])
    assert 0.2 < np.mean(np.abs(pre) > 0.6) < 0.8


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_long_sequence_matches_reference(dtype):
    """T = 700: inference projects the input in chunks of steps, the variant pass runs
    across them."""
    cfg = dict(T=700, N=3, I=4, H=9, L=2, bi=True, lengths=True, hx=True)
    model, params, case = lstm_case(cfg, VARIANTS["all"], dtype, seed=2)
    assert _recurrent.inference_chunk_steps(700, 3, 36, 4) < 700
    model.eval()
    case = dict(case, dout=None)
    assert_results_close(model_run(model, **case), reference_run(model, params, **case), dtype)


_SIMD_CHECK = lstm_simd_check([dict(peepholes=True),
                               dict(peepholes=True, clip=0.7, input_forget=True)])


@pytest.mark.parametrize("level", SIMD_LEVELS)
def test_every_simd_level_matches_the_reference(level):
    result = run_at_simd_level(_SIMD_CHECK, level)
    assert result["worst"]["float64"] <= 1e-10, result
    assert result["worst"]["float32"] <= 1e-5, result


# -------------------------------------------------------------------------------------
# Finite differences (float64): every option, their combinations, with a projection
# -------------------------------------------------------------------------------------

FD_VARIANTS = {
    **VARIANTS,
    "peepholes-clip": dict(peepholes=True, clip=0.6),
    "peepholes-input_forget": dict(peepholes=True, input_forget=True),
    "clip-input_forget": dict(clip=0.6, input_forget=True),
}
FD_CONFIGS = {
    "L2-bi-lengths": dict(T=4, N=3, I=2, H=3, L=2, bi=True, lengths=True, hx=True, dhx=True),
    "L1-bf-proj": dict(T=4, N=2, I=2, H=4, P=2, L=1, bf=True, lengths=True, hx=True,
                       dhx=True),
}


@pytest.mark.parametrize("variant", list(FD_VARIANTS.values()), ids=list(FD_VARIANTS))
@pytest.mark.parametrize("cfg", list(FD_CONFIGS.values()), ids=list(FD_CONFIGS))
def test_kernel_finite_differences(cfg, variant):
    """Every coordinate of every parameter, x, h0 and c0, against central differences of
    sum(out·dout) + sum(h_n·dh_n) + sum(c_n·dc_n). With clip, the differences step across
    no clip edge: the weights are scaled so that no pre-activation lies within 1e-4 of
    ±clip (a kink there has no derivative)."""
    model, _, case = lstm_case(cfg, variant, np.float64, seed=11, n_threads=1)
    if model.clip is not None:
        _keep_off_the_clip_edges(model, case["x"], case["hx"], case["lengths"])
    check_lstm_finite_differences(model, case)


def _keep_off_the_clip_edges(model, x, hx, lengths, margin=1e-4):
    """Rescale the model's parameters until no pre-activation of the reference lies within
    `margin` of ±clip, so that central differences (eps 1e-6) never cross a kink."""
    params = model.state_dict()
    for scale in np.linspace(1.0, 1.5, 51):
        scaled = {k: v * scale for k, v in params.items()}
        model.load_state_dict(scaled)
        _, _, cache = reference_forward(model, scaled, x, hx, lengths)
        pre = np.concatenate([np.ravel(ref.lstm_pre_activations(step))
                              for layer in cache["layer_caches"] for direction in layer
                              for step in direction if step])
        if np.min(np.abs(np.abs(pre) - model.clip)) > margin:
            return
    raise AssertionError("no scale keeps the pre-activations off the clip edges")


def reference_forward(model, params, x, hx, lengths):
    """The reference's forward on the model's options (time-major input)."""
    x_tm = x.transpose(1, 0, 2) if model.batch_first else x
    return ref.lstm_forward(x_tm, params, hx, lengths, num_layers=model.num_layers,
                            bidirectional=model.bidirectional, clip=model.clip,
                            input_forget=model.input_forget)


# -------------------------------------------------------------------------------------
# Threads: rows, and the hidden-unit split
# -------------------------------------------------------------------------------------

@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_one_and_two_threads_bitwise_equal(dtype):
    cfg = dict(T=12, N=8, I=5, H=16, L=2, bi=True, lengths=True, hx=True, dhx=True)

    def run(n_threads):
        model, _, case = lstm_case(cfg, VARIANTS["all"], dtype, seed=8, n_threads=n_threads)
        r = model_run(model, **case)
        model.eval()
        r["out_eval"] = model(case["x"], case["hx"], case["lengths"])[0]
        return r

    assert_threads_bitwise_equal(run, KEYS)


@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("P", [0, 200], ids=["plain", "P200"])
def test_hidden_unit_split(dtype, P):
    """Few rows and a W_hh (4·512 × 512) larger than a core's L2: the threads split hidden
    units, each with its own units' peepholes. Against the reference, and bitwise against
    one thread."""
    cfg = dict(T=4, N=2, I=3, H=512, P=P, L=1, bi=True, lengths=True, hx=True, dhx=True)

    def run(n_threads):
        model, params, case = lstm_case(cfg, VARIANTS["all"], dtype, seed=4,
                                        n_threads=n_threads)
        r = model_run(model, **case)
        assert_results_close(r, reference_run(model, params, **case), dtype)
        model.eval()
        r["out_eval"] = model(case["x"], case["hx"], case["lengths"])[0]
        return r

    assert_threads_bitwise_equal(run, KEYS)


# -------------------------------------------------------------------------------------
# What the options do and do not change
# -------------------------------------------------------------------------------------

def test_options_off_are_the_plain_lstm_bit_for_bit():
    """Explicitly off, the model draws the same parameters and runs the plain pass."""
    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((6, 3, 4)), rng.standard_normal((6, 3, 5))
    plain = ln.LSTM(4, 5, 2, seed=3)
    off = ln.LSTM(4, 5, 2, peepholes=False, clip=None, input_forget=False, seed=3)
    a, b = model_run(plain, x, dout=dout), model_run(off, x, dout=dout)
    for key in KEYS:
        assert np.array_equal(a[key], b[key]), key
    assert list(a["grads"]) == list(b["grads"])
    assert all(np.array_equal(a["grads"][k], b["grads"][k]) for k in a["grads"])


def test_zero_peepholes_and_a_huge_clip_equal_the_plain_lstm():
    """The variant pass with nothing to do computes the plain LSTM's numbers (to
    rounding: it is another pass, keeping pre-activations)."""
    rng = np.random.default_rng(1)
    x, dout = rng.standard_normal((6, 3, 4)), rng.standard_normal((6, 3, 10))
    plain = ln.LSTM(4, 5, 2, bidirectional=True, dtype=np.float64, seed=3)
    variant = ln.LSTM(4, 5, 2, bidirectional=True, peepholes=True, clip=1e6,
                      dtype=np.float64, seed=3)
    variant.load_state_dict({**{k: np.zeros_like(v) for k, v in variant.state_dict().items()
                                if k.startswith("weight_peephole")}, **plain.state_dict()})
    a, b = model_run(plain, x, dout=dout), model_run(variant, x, dout=dout)
    b["grads"] = {k: v for k, v in b["grads"].items() if k in a["grads"]}
    assert_results_close(b, a, np.float64, rtol=1e-14)


def test_peephole_draws_follow_torchs_and_keep_the_others():
    """The peepholes are drawn after torch's parameters of their layer and direction:
    those stay torch's draws; torch's bound 1/sqrt(H), Keras-style sqrt(3/H)."""
    plain = ln.LSTM(3, 16, 2, bidirectional=True, seed=5).state_dict()
    peep = ln.LSTM(3, 16, 2, bidirectional=True, peepholes=True, seed=5).state_dict()
    assert list(peep) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                          "weight_peephole_l0", "weight_ih_l0_reverse",
                          "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
                          "weight_peephole_l0_reverse", "weight_ih_l1", "weight_hh_l1",
                          "bias_ih_l1", "bias_hh_l1", "weight_peephole_l1",
                          "weight_ih_l1_reverse", "weight_hh_l1_reverse",
                          "bias_ih_l1_reverse", "bias_hh_l1_reverse",
                          "weight_peephole_l1_reverse"]
    assert np.array_equal(peep["weight_ih_l0"], plain["weight_ih_l0"])
    p = peep["weight_peephole_l1"]
    assert p.shape == (3, 16) and np.abs(p).max() <= 0.25 and np.abs(p).max() > 0.2
    k = ln.LSTM(3, 16, peepholes=True, init="keras", seed=5).state_dict()["weight_peephole_l0"]
    bound = np.sqrt(3 / 16)
    assert np.abs(k).max() <= bound and np.abs(k).max() > 0.8 * bound


@pytest.mark.parametrize("proj_size", [0, 2])
def test_input_forget_leaves_the_forget_rows_and_p_f_without_gradient(proj_size):
    model = ln.LSTM(3, 4, 2, bidirectional=True, proj_size=proj_size, peepholes=True,
                    input_forget=True, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    out, _ = model(x)
    model.backward(np.ones_like(out))
    for name, grad in model.grads.items():
        if name.startswith(("weight_ih", "weight_hh", "bias")):
            assert np.all(grad[4:8] == 0) and np.any(grad[:4] != 0), name
        if name.startswith("weight_peephole"):
            assert np.all(grad[1] == 0) and np.any(grad[0] != 0), name


def test_clip_stops_the_gradient_of_clipped_values():
    """With every pre-activation far beyond the clip, nothing flows back to the weights
    (c still carries the gradient of c_n to c0: it is not clipped)."""
    model = ln.LSTM(3, 4, clip=0.5, dtype=np.float64, seed=0)
    model.load_state_dict({k: np.full_like(v, 50.0) for k, v in model.state_dict().items()})
    x = np.abs(np.random.default_rng(0).standard_normal((5, 2, 3))) + 0.1
    dc_n = (np.zeros((1, 2, 4)), np.ones((1, 2, 4)))
    out, _ = model(x)
    dx, (dh0, _) = model.backward(np.ones_like(out), dc_n)
    assert all(np.all(g == 0) for g in model.grads.values())
    assert np.all(dx == 0) and np.all(dh0 == 0)
    # c_n's gradient reaches c0 through the five (clipped) forget gates alone.
    model(x)
    _, (_, dc0) = model.backward(np.zeros_like(out), dc_n)
    forget = 1 / (1 + np.exp(-0.5))
    assert np.allclose(dc0, forget ** 5, rtol=1e-12)


# -------------------------------------------------------------------------------------
# LSTMCell
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", list(VARIANTS.values()), ids=list(VARIANTS))
def test_cell_matches_the_reference_and_finite_differences(variant):
    rng = np.random.default_rng(2)
    cell = ln.LSTMCell(3, 5, dtype=np.float64, seed=2, **variant)
    x, h, c = rng.standard_normal((4, 3)), rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    dh, dc = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    p = cell.state_dict()
    h1, c1, cache = ref.lstm_cell_forward(x, h, c, p["weight_ih"], p["weight_hh"],
                                          p["bias_ih"], p["bias_hh"],
                                          peephole=p.get("weight_peephole"),
                                          clip=variant.get("clip"),
                                          input_forget=variant.get("input_forget", False))
    got_h, got_c = cell(x, (h, c))
    assert np.allclose(got_h, h1, rtol=1e-13, atol=1e-14)
    assert np.allclose(got_c, c1, rtol=1e-13, atol=1e-14)
    cell.zero_grad()
    dx, (dh_prev, dc_prev) = cell.backward(dh, dc)
    r_dx, r_dh, r_dc, r_grads = ref.lstm_cell_backward(dh, dc, cache)
    for got, want in [(dx, r_dx), (dh_prev, r_dh), (dc_prev, r_dc)] + \
            [(cell.grads[k], r_grads[k]) for k in r_grads]:
        assert np.allclose(got, want, rtol=1e-12, atol=1e-13)
    assert set(r_grads) == set(cell.grads)

    def loss():
        h_new, c_new = cell(x, (h, c))
        return np.sum(h_new * dh) + np.sum(c_new * dc)

    if variant.get("clip") is None:  # clip's kinks: the layer's test steps around them
        check_finite_differences(dict(cell.grads, x=dx, h=dh_prev, c=dc_prev),
                                 dict(cell.parameters(), x=x, h=h, c=c), loss)


def test_cell_and_layer_agree():
    cell = ln.LSTMCell(3, 5, peepholes=True, clip=0.8, input_forget=True, seed=0).eval()
    lstm = ln.LSTM(3, 5, peepholes=True, clip=0.8, input_forget=True).eval()
    lstm.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((7, 2, 3)).astype(np.float32)
    state = None
    for x_t in x:
        state = cell(x_t, state)
    _, (h_n, c_n) = lstm(x)
    assert np.allclose(h_n[0], state[0], atol=1e-6) and np.allclose(c_n[0], state[1], atol=1e-6)


# -------------------------------------------------------------------------------------
# The API: config, repr, checkpoints, errors
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,args", [(ln.LSTM, (3, 5, 2)), (ln.LSTMCell, (3, 5))])
def test_config_repr_and_checkpoint_round_trip(tmp_path, cls, args):
    model = cls(*args, peepholes=True, clip=2.5, input_forget=True, seed=0)
    config = model.get_config()
    assert (config["peepholes"], config["clip"], config["input_forget"]) == (True, 2.5, True)
    assert cls(**config).get_config() == config
    assert "peepholes=True, clip=2.5, input_forget=True" in repr(model)
    assert "peepholes" not in repr(cls(*args)) and "clip" not in repr(cls(*args))
    path = tmp_path / "m.npz"
    ln.save_checkpoint(path, model)
    loaded = ln.load_model(path)
    assert loaded.get_config() == config
    assert list(loaded.state_dict()) == list(model.state_dict())
    assert all(np.array_equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("cls,args", [(ln.LSTM, (3, 5)), (ln.LSTMCell, (3, 5))])
@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(clip=0), ValueError, "clip must be None or a finite number > 0"),
    (dict(clip=-1.0), ValueError, "clip must be None or a finite number > 0"),
    (dict(clip=float("inf")), ValueError, "clip must be None or a finite number > 0"),
    (dict(clip=float("nan")), ValueError, "clip must be None or a finite number > 0"),
    (dict(clip=True), ValueError, "clip must be None or a finite number > 0"),
    (dict(clip="1"), ValueError, "clip must be None or a finite number > 0"),
    (dict(peepholes=1), TypeError, "peepholes must be True or False"),
    (dict(input_forget="yes"), TypeError, "input_forget must be True or False"),
])
def test_bad_options(cls, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cls(*args, **kwargs)


@pytest.mark.parametrize("cls", [ln.GRU, ln.RNN, ln.GRUCell, ln.RNNCell])
@pytest.mark.parametrize("option", ["peepholes", "clip", "input_forget"])
def test_only_the_lstm_has_the_variants(cls, option):
    with pytest.raises(TypeError, match=rf"{option}"):
        cls(3, 8, **{option: True})


def test_load_state_dict_checks_the_peepholes_shape():
    model = ln.LSTM(3, 5, peepholes=True)
    state = model.state_dict()
    with pytest.raises(ValueError, match="weight_peephole_l0"):
        model.load_state_dict(dict(state, weight_peephole_l0=np.zeros((4, 5), np.float32)))
    with pytest.raises((KeyError, ValueError), match="weight_peephole_l0"):
        model.load_state_dict({k: v for k, v in state.items() if k != "weight_peephole_l0"})


@pytest.mark.parametrize("variant", [dict(peepholes=True, clip=0.8, input_forget=True),
                                     dict(layer_norm=True, proj_size=2)],
                         ids=["onnx-variants", "layer-norm-proj"])
def test_stateful_chunks_equal_the_whole_sequence(variant):
    """Truncated BPTT's forward: a stateful Sequential's chunks give the whole run."""
    x = np.random.default_rng(0).standard_normal((3, 12, 2))   # (N, T, I)
    model = ln.Sequential(ln.LSTM(2, 5, 2, batch_first=True, dtype=np.float64, seed=1,
                                  **variant)).eval()
    whole = model(x)
    model.stateful = True
    parts = [model(x[:, t:t + 5]) for t in range(0, 12, 5)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=1e-13, atol=1e-14)
