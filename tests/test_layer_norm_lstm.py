"""`LSTM(layer_norm=True)` and `LSTMCell(layer_norm=True)`, the layer-normalised LSTM (Ba,
Kiros & Hinton 2016): the kernels against the NumPy reference (every SIMD level, both
dtypes, inference chunks, with a projection and the dropouts), finite differences of
every parameter, threads (the pass reads whole rows: the batch is always split by rows),
the initial gains and biases, and the API's errors."""
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
LN = dict(layer_norm=True)
# The normalisation's gradient subtracts two means from each value and multiplies by
# 1/std: in float32 its rounding grows with 1/std, past the plain LSTM's 1e-5.
RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): None}


def _perturb_norm_parameters(model, seed=0):
    """Gains and biases away from 1 and 0, so that a mix-up of them shows."""
    rng = np.random.default_rng(seed)
    state = model.state_dict()
    for name, value in state.items():
        if "_ln_" in name:
            value += rng.uniform(-0.5, 0.5, value.shape).astype(value.dtype)
    model.load_state_dict(state)
    return {k: v.astype(np.float64) for k, v in model.state_dict().items()}


CONFIGS = {
    "base": dict(T=5, N=3, I=4, H=6, L=1),
    "L2-bi-lengths-hx-dhx": dict(T=7, N=5, I=3, H=5, L=2, bi=True, lengths=True, hx=True,
                                 dhx=True),
    "L2-bf-proj": dict(T=6, N=4, I=5, H=7, P=3, L=2, bf=True, lengths=True, hx=True,
                       dhx=True),
    # H not a multiple of the reductions' 16 lanes or any vector width
    "H37": dict(T=5, N=2, I=7, H=37, L=1, bi=True, lengths=True, hx=True, dhx=True),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cfg", list(CONFIGS.values()), ids=list(CONFIGS))
def test_matches_reference(cfg, dtype):
    model, _, case = lstm_case(cfg, LN, dtype, seed=1)
    params = _perturb_norm_parameters(model)
    rtol = RTOL[np.dtype(dtype)]
    assert_results_close(model_run(model, **case), reference_run(model, params, **case), dtype,
                         rtol)
    model.eval()
    case = dict(case, dout=None, dhx=None)
    assert_results_close(model_run(model, **case), reference_run(model, params, **case), dtype,
                         rtol)


def test_long_sequence_matches_reference():
    """T = 700: inference projects the input in chunks of steps; `norm` is the chunk's.
    float64 only: these random layer-normalised LSTMs amplify rounding over long
    sequences (float32 NumPy drifts from float64 NumPy by 5e-4 at T = 200, 1e-2 at
    T = 700, as the float32 kernels do), where the plain LSTM's stay near 1e-7."""
    dtype = np.float64
    cfg = dict(T=700, N=3, I=4, H=9, L=2, bi=True, lengths=True, hx=True)
    model, _, case = lstm_case(cfg, LN, dtype, seed=2)
    params = _perturb_norm_parameters(model)
    assert _recurrent.inference_chunk_steps(700, 3, 36, 4) < 700
    model.eval()
    case = dict(case, dout=None)
    assert_results_close(model_run(model, **case), reference_run(model, params, **case), dtype)


_SIMD_CHECK = lstm_simd_check([dict(layer_norm=True), dict(layer_norm=True, proj_size=11)])


@pytest.mark.parametrize("level", SIMD_LEVELS)
def test_every_simd_level_matches_the_reference(level):
    result = run_at_simd_level(_SIMD_CHECK, level)
    assert result["worst"]["float64"] <= 1e-10, result
    assert result["worst"]["float32"] <= 1e-4, result


def test_the_reductions_give_the_same_bits_at_every_level():
    """The normalisation's sums are written in 16 fixed lanes: the output of a float64
    layer norm (a pass with no exp in the normalised values) is the same at every level
    up to the gates' exp, so the outputs agree to a few ulps across levels."""
    script = """
import json, numpy as np, lstm_native as ln
from lstm_native import _recurrent
m = ln.LSTM(5, 37, layer_norm=True, dtype=np.float64, seed=3).eval()
out, _ = m(np.random.default_rng(0).standard_normal((6, 4, 5)))
print(json.dumps({"level": _recurrent.simd_level(), "out": out.ravel().tolist()}))
"""
    outs = [np.array(run_at_simd_level(script, level)["out"]) for level in ("generic", "avx2")]
    assert np.allclose(outs[0], outs[1], rtol=0, atol=1e-14)


# -------------------------------------------------------------------------------------
# Finite differences (float64)
# -------------------------------------------------------------------------------------

FD_CASES = {
    "L2-bi-lengths": (dict(T=4, N=3, I=2, H=3, L=2, bi=True, lengths=True, hx=True,
                           dhx=True), {}),
    "L1-bf-proj": (dict(T=4, N=2, I=2, H=4, P=2, L=1, bf=True, lengths=True, hx=True,
                        dhx=True), {}),
    "L1-nobias": (dict(T=3, N=2, I=3, H=3, L=1, hx=True, dhx=True), dict(bias=False)),
}


@pytest.mark.parametrize("cfg,extra", list(FD_CASES.values()), ids=list(FD_CASES))
def test_kernel_finite_differences(cfg, extra):
    """Every coordinate of every parameter (the gains and biases too), x, h0 and c0,
    against central differences of sum(out·dout) + sum(h_n·dh_n) + sum(c_n·dc_n)."""
    model, _, case = lstm_case(cfg, dict(LN, **extra), np.float64, seed=11, n_threads=1)
    _perturb_norm_parameters(model)
    assert "weight_ln_c_l0" in check_lstm_finite_differences(model, case)


def test_finite_differences_with_variational_dropout():
    model, _, case = lstm_case(dict(T=4, N=3, I=2, H=3, L=2, bi=True, lengths=True),
                               dict(LN, input_dropout=0.3, recurrent_dropout=0.3),
                               np.float64, seed=5, n_threads=1)
    x, lengths, dout = case["x"], case["lengths"], case["dout"]

    def loss():
        return np.sum(model(x, lengths=lengths)[0] * dout)

    model.zero_grad()
    loss()
    model._hold_masks = True   # every forward of the differences reuses these masks
    dx, _ = model.backward(dout)
    check_finite_differences(dict(model.grads, x=dx), dict(model.parameters(), x=x), loss)


# -------------------------------------------------------------------------------------
# Threads
# -------------------------------------------------------------------------------------

@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cfg", [
    dict(T=12, N=8, I=5, H=16, L=2, bi=True, lengths=True, hx=True, dhx=True),
    # few rows and a large W_hh: the plain LSTM would split hidden units here
    dict(T=4, N=2, I=3, H=512, L=1, bi=True, lengths=True, hx=True, dhx=True),
], ids=["rows", "where-the-plain-lstm-splits-units"])
def test_one_and_two_threads_bitwise_equal(dtype, cfg):
    def run(n_threads):
        model, _, case = lstm_case(cfg, LN, dtype, seed=8, n_threads=n_threads)
        _perturb_norm_parameters(model)
        r = model_run(model, **case)
        model.eval()
        r["out_eval"] = model(case["x"], case["hx"], case["lengths"])[0]
        return r

    assert_threads_bitwise_equal(run, KEYS)


# -------------------------------------------------------------------------------------
# Parameters, LSTMCell, the API
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("init", ["torch", "keras"])
def test_gains_start_at_one_biases_at_zero_and_the_draws_are_kept(init):
    plain = ln.LSTM(3, 6, 2, bidirectional=True, proj_size=2, init=init, seed=4).state_dict()
    normed = ln.LSTM(3, 6, 2, bidirectional=True, proj_size=2, init=init, layer_norm=True,
                     seed=4).state_dict()
    for name, value in normed.items():
        if name.startswith("weight_ln"):
            assert np.all(value == 1) and value.shape == ((6,) if "_ln_c" in name else (24,))
        elif name.startswith("bias_ln"):
            assert np.all(value == 0), name
        else:
            assert np.array_equal(value, plain[name]), name
    assert [k for k in normed if "_ln_" not in k] == list(plain)
    assert list(normed)[5:11] == ["weight_ln_ih_l0", "bias_ln_ih_l0", "weight_ln_hh_l0",
                                  "bias_ln_hh_l0", "weight_ln_c_l0", "bias_ln_c_l0"]


def test_the_input_enters_normalised():
    """x_t reaches the gates only through LN(W_ih x_t): scaling a large input by 10
    changes nothing but the epsilon's share of the variance (the plain LSTM's gates
    move)."""
    x = 100 * np.random.default_rng(0).standard_normal((5, 3, 4))
    model = ln.LSTM(4, 8, layer_norm=True, dtype=np.float64, seed=0).eval()
    np.testing.assert_allclose(model(x)[0], model(10 * x)[0], rtol=0, atol=1e-7)
    plain = ln.LSTM(4, 8, dtype=np.float64, seed=0).eval()
    assert not np.allclose(plain(x / 100)[0], plain(x / 10)[0], atol=1e-3)


def test_cell_matches_the_layer_and_the_reference():
    rng = np.random.default_rng(2)
    cell = ln.LSTMCell(3, 5, layer_norm=True, dtype=np.float64, seed=2)
    _perturb_norm_parameters(cell)
    p = cell.state_dict()
    x, h, c = rng.standard_normal((4, 3)), rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    dh, dc = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    norm_params = tuple(p[name] for name in ref.lstm.LAYER_NORM_KINDS)
    h1, c1, cache = ref.lstm_cell_forward(x, h, c, p["weight_ih"], p["weight_hh"],
                                          p["bias_ih"], p["bias_hh"],
                                          layer_norm_params=norm_params)
    got_h, got_c = cell(x, (h, c))
    assert np.allclose(got_h, h1, rtol=1e-13, atol=1e-14)
    assert np.allclose(got_c, c1, rtol=1e-13, atol=1e-14)
    cell.zero_grad()
    dx, (dh_prev, dc_prev) = cell.backward(dh, dc)
    r_dx, r_dh, r_dc, r_grads = ref.lstm_cell_backward(dh, dc, cache)
    assert set(r_grads) == set(cell.grads)
    for got, want in [(dx, r_dx), (dh_prev, r_dh), (dc_prev, r_dc)] + \
            [(cell.grads[k], r_grads[k]) for k in r_grads]:
        assert np.allclose(got, want, rtol=1e-12, atol=1e-13)

    def loss():
        h_new, c_new = cell(x, (h, c))
        return np.sum(h_new * dh) + np.sum(c_new * dc)

    check_finite_differences(dict(cell.grads, x=dx, h=dh_prev, c=dc_prev),
                             dict(cell.parameters(), x=x, h=h, c=c), loss)
    lstm = ln.LSTM(3, 5, layer_norm=True, dtype=np.float64).eval()
    lstm.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    _, (h_n, c_n) = lstm(x[None], (h[None], c[None]))
    assert np.allclose(h_n[0], got_h, rtol=1e-14) and np.allclose(c_n[0], got_c, rtol=1e-14)


@pytest.mark.parametrize("cls,args", [(ln.LSTM, (3, 5, 2)), (ln.LSTMCell, (3, 5))])
def test_config_repr_and_checkpoint(tmp_path, cls, args):
    model = cls(*args, layer_norm=True, seed=0)
    _perturb_norm_parameters(model)
    config = model.get_config()
    assert config["layer_norm"] is True and cls(**config).get_config() == config
    assert "layer_norm=True" in repr(model) and "layer_norm" not in repr(cls(*args))
    ln.save_checkpoint(tmp_path / "m.npz", model)
    loaded = ln.load_model(tmp_path / "m.npz")
    assert loaded.get_config() == config
    assert all(np.array_equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("cls", [ln.LSTM, ln.LSTMCell])
@pytest.mark.parametrize("kwargs", [dict(peepholes=True), dict(clip=1.0),
                                    dict(input_forget=True)])
def test_the_onnx_variants_do_not_combine(cls, kwargs):
    with pytest.raises(ValueError, match="layer_norm=True does not combine with peepholes"):
        cls(3, 5, layer_norm=True, **kwargs)


@pytest.mark.parametrize("cls", [ln.LSTM, ln.LSTMCell])
def test_layer_norm_must_be_a_bool(cls):
    with pytest.raises(TypeError, match="layer_norm must be True or False"):
        cls(3, 5, layer_norm=1)


@pytest.mark.parametrize("cls", [ln.GRU, ln.RNN, ln.GRUCell, ln.RNNCell])
def test_only_the_lstm_has_it(cls):
    with pytest.raises(TypeError, match="layer_norm"):
        cls(3, 5, layer_norm=True)


def test_the_kernels_check_the_layer_norm_buffers():
    m = ln.LSTM(2, 3, layer_norm=True)
    x = np.zeros((4, 2), np.float32)
    args = (_recurrent.Cell.LSTM, x, m._params["weight_ih_l0"], m._params["weight_hh_l0"],
            None, np.zeros(12, np.float32), None, np.full(2, 2, np.int64),
            np.empty((4, 12), np.float32), None, np.zeros((6, 3), np.float32),
            np.zeros((6, 3), np.float32), np.empty((4, 3), np.float32), 0, False, True, 1)
    with pytest.raises(ValueError, match="both given or both None"):
        _recurrent.forward_layer(*args, layer_norm=np.ones(54, np.float32))
    with pytest.raises(ValueError, match=r"layer_norm must be \(54,\) and norm \(4, 30\)"):
        _recurrent.forward_layer(*args, layer_norm=np.ones(54, np.float32),
                                 norm=np.empty((4, 29), np.float32))
    with pytest.raises(ValueError, match="does not combine"):
        _recurrent.forward_layer(*args, layer_norm=np.ones(54, np.float32),
                                 norm=np.empty((4, 30), np.float32), clip=1.0)
