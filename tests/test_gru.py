"""`lstm_native.GRU`: the kernels against the NumPy reference (both GRUs, every SIMD level,
both dtypes), finite differences, torch.nn.GRU over a grid of options, ONNX's GRU for the
reset before, threads and the hidden-unit split, and the GRU inside a `Sequential`, `fit`
and a checkpoint."""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import lstm_native as ln
from conftest import (
    DTYPES,
    SIMD_LEVELS,
    TORCH_RTOL,
    assert_all_equal,
    assert_close,
    assert_grads_close,
    assert_threads_bitwise_equal,
    check_finite_differences,
    from_time_major,
    grid_id,
    import_torch,
    numerical_grad,
    ort_session,
    randn,
    random_lengths,
    run_at_simd_level,
    to_numpy,
    to_time_major,
    torch_dtype,
    torch_grid,
)
from lstm_native import reference as ref
from lstm_native.layers import LastStep, Linear, Sequential

RESETS = [True, False]
RESET_IDS = ["reset-after", "reset-before"]
KEYS = ("out", "h_n", "dx", "dh0")


# -------------------------------------------------------------------------------------
# Helpers: the model, the reference and torch run on one case, results as dicts
# -------------------------------------------------------------------------------------

def make_gru(input_size, hidden_size, num_layers=1, *, reset_after=True, bias=True,
             batch_first=False, bidirectional=False, dtype=np.float64, seed=0,
             n_threads=None):
    """A GRU and its parameters in float64, as the reference takes them."""
    model = ln.GRU(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
                   bidirectional=bidirectional, reset_after=reset_after, dtype=dtype,
                   seed=seed, n_threads=n_threads)
    params = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    return model, params


def model_run(model, x, hx=None, lengths=None, dout=None, dh_n=None, input_grad=True):
    """Forward (and backward when dout is given) of the model, from zeroed grads."""
    model.zero_grad()
    out, h_n = model(x, hx=hx, lengths=lengths)
    result = {"out": out, "h_n": h_n}
    if dout is not None:
        dx, dh0 = model.backward(dout, dh_n, input_grad=input_grad)
        result.update(dx=dx, dh0=dh0, grads={k: v.copy() for k, v in model.grads.items()})
    return result


def reference_run(model, params, x, hx=None, lengths=None, dout=None, dh_n=None):
    """The NumPy reference in float64, in the model's layout."""
    batched = np.ndim(x) == 3
    f64 = (lambda a: None if a is None else np.asarray(a, dtype=np.float64))
    unbatched_state = (lambda s: s if s is None or batched else s[:, None, :])
    out, h_n, cache = ref.gru_forward(
        to_time_major(f64(x), model.batch_first, batched), params, unbatched_state(f64(hx)),
        lengths, num_layers=model.num_layers, bidirectional=model.bidirectional,
        reset_after=model.reset_after)
    to_user = (lambda s: s if batched else s[:, 0, :])
    result = {"out": from_time_major(out, model.batch_first, batched), "h_n": to_user(h_n)}
    if dout is not None:
        dx, dh0, grads = ref.gru_backward(to_time_major(f64(dout), model.batch_first, batched),
                                          cache, unbatched_state(f64(dh_n)))
        result.update(dx=from_time_major(dx, model.batch_first, batched), dh0=to_user(dh0),
                      grads=grads)
    return result


def assert_results_close(actual, expected, dtype, rtol=None):
    for key in KEYS:
        if key in expected:
            assert_close(actual[key], expected[key], dtype, name=key, rtol=rtol)
    if "grads" in expected:
        assert_grads_close(actual["grads"], expected["grads"], dtype, rtol=rtol)


# T, N, I, H, L: sizes; bi: bidirectional; bf: batch_first; lengths / hx / dhn: whether
# given; batched: False means unbatched (T, I) input.
CONFIGS = {
    "base": dict(T=5, N=3, I=4, H=6, L=1),
    "L2-bi-lengths-hx-dhn": dict(T=7, N=5, I=3, H=4, L=2, bi=True, lengths=True, hx=True,
                                 dhn=True),
    "L3-bf-dhn": dict(T=6, N=4, I=5, H=3, L=3, bf=True, dhn=True),
    "L3-bi-bf-lengths-hx": dict(T=5, N=4, I=2, H=3, L=3, bi=True, bf=True, lengths=True,
                                hx=True),
    "nobias-bi-lengths-dhn": dict(T=6, N=4, I=3, H=5, L=2, bi=True, bias=False,
                                  lengths=True, dhn=True),
    "N1-T1": dict(T=1, N=1, I=3, H=4, L=2, bi=True, hx=True, dhn=True),
    "T1-lengths": dict(T=1, N=4, I=3, H=2, L=1, bi=True, lengths=True),
    "H1": dict(T=6, N=3, I=2, H=1, L=2, bi=True, lengths=True, hx=True, dhn=True),
    "H33": dict(T=5, N=2, I=7, H=33, L=2, lengths=True, hx=True, dhn=True),
    "unbatched-bi-L2-hx-dhn": dict(T=5, N=1, I=3, H=4, L=2, bi=True, hx=True, dhn=True,
                                   batched=False),
}


def make_case(cfg, dtype, reset_after=True, seed=0, n_threads=None):
    cfg = dict(dict(bi=False, bf=False, lengths=False, hx=False, dhn=False, bias=True,
                    batched=True), **cfg)
    rng = np.random.default_rng(seed)
    T, N, I, H, L = cfg["T"], cfg["N"], cfg["I"], cfg["H"], cfg["L"]
    D = 2 if cfg["bi"] else 1
    model, params = make_gru(I, H, L, reset_after=reset_after, bias=cfg["bias"],
                             batch_first=cfg["bf"], bidirectional=cfg["bi"], dtype=dtype,
                             seed=seed, n_threads=n_threads)
    if cfg["batched"]:
        x_shape = (N, T, I) if cfg["bf"] else (T, N, I)
        out_shape, state_shape = x_shape[:2] + (D * H,), (D * L, N, H)
    else:
        x_shape, out_shape, state_shape = (T, I), (T, D * H), (D * L, H)
    case = dict(
        x=randn(rng, x_shape, dtype),
        hx=randn(rng, state_shape, dtype) if cfg["hx"] else None,
        lengths=random_lengths(rng, N, T) if cfg["lengths"] else None,
        dout=randn(rng, out_shape, dtype),
        dh_n=randn(rng, state_shape, dtype) if cfg["dhn"] else None,
    )
    return model, params, case


# -------------------------------------------------------------------------------------
# Kernels against the NumPy reference
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("reset_after", RESETS, ids=RESET_IDS)
@pytest.mark.parametrize("cfg", list(CONFIGS.values()), ids=list(CONFIGS))
def test_matches_reference(cfg, reset_after, dtype):
    model, params, case = make_case(cfg, dtype, reset_after)
    got = model_run(model, **case)
    want = reference_run(model, params, **case)
    for key in KEYS:
        assert got[key].dtype == np.dtype(dtype), key
    assert list(got["grads"]) == list(model.state_dict())
    assert_results_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("reset_after", RESETS, ids=RESET_IDS)
def test_long_sequence_matches_reference(reset_after, dtype):
    """T = 1000: inference projects the input in chunks of steps; the state crosses them."""
    rng = np.random.default_rng(7)
    T, N, I, H = 1000, 2, 2, 3
    model, params = make_gru(I, H, reset_after=reset_after, bidirectional=True,
                             dtype=dtype, seed=3)
    case = dict(x=randn(rng, (T, N, I), dtype), lengths=np.array([T - 137, T]),
                hx=randn(rng, (2, N, H), dtype), dout=randn(rng, (T, N, 2 * H), dtype),
                dh_n=randn(rng, (2, N, H), dtype))
    got = model_run(model, **case)
    assert_results_close(got, reference_run(model, params, **case), dtype)
    model.eval()
    out, h_n = model(case["x"], case["hx"], case["lengths"])
    assert_all_equal([out, h_n], [got["out"], got["h_n"]], ["out", "h_n"])


@pytest.mark.parametrize("reset_after", RESETS, ids=RESET_IDS)
def test_padded_steps(reset_after):
    """Outputs and dx are zero past each length, and non-finite values there (x, dout)
    leak into nothing."""
    model, _, case = make_case(CONFIGS["L2-bi-lengths-hx-dhn"], np.float64, reset_after)
    T = case["x"].shape[0]
    padded = np.arange(T)[:, None] >= case["lengths"][None, :]
    assert padded.any()
    clean = model_run(model, **case)
    assert np.all(clean["out"][padded] == 0) and np.all(clean["dx"][padded] == 0)
    dirty = dict(case, x=case["x"].copy(), dout=case["dout"].copy())
    dirty["x"][padded] = np.nan
    dirty["dout"][padded] = np.inf
    got = model_run(model, **dirty)
    assert_all_equal([got[k] for k in KEYS], [clean[k] for k in KEYS], KEYS)
    assert_all_equal(list(got["grads"].values()), list(clean["grads"].values()))


_SIMD_CHECK = textwrap.dedent("""
    import json, numpy as np, lstm_native as ln
    from lstm_native import _recurrent, reference as ref
    worst = {}
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(0)
        # H = 37: rows not a multiple of any vector width, so every kernel's edges run.
        x = rng.standard_normal((9, 7, 5)).astype(dtype)
        lengths = np.array([9, 3, 7, 1, 9, 5, 8])
        pairs = []
        for reset_after in (True, False):
            m = ln.GRU(5, 37, 2, bidirectional=True, reset_after=reset_after, dtype=dtype,
                       seed=2, n_threads=2)
            out, h = m(x, lengths=lengths)
            dout = rng.standard_normal(out.shape).astype(dtype)
            dx, dh0 = m.backward(dout)
            params = {k: v.astype(np.float64) for k, v in m.state_dict().items()}
            r_out, r_h, cache = ref.gru_forward(x.astype(np.float64), params, lengths=lengths,
                                               num_layers=2, bidirectional=True,
                                               reset_after=reset_after)
            r_dx, r_dh0, r_grads = ref.gru_backward(dout.astype(np.float64), cache)
            pairs += [(out, r_out), (h, r_h), (dx, r_dx), (dh0, r_dh0)]
            pairs += [(m.grads[k], r_grads[k]) for k in r_grads]
        worst[np.dtype(dtype).name] = max(
            float(np.abs(a - b).max() / max(1.0, np.abs(b).max())) for a, b in pairs)
    print(json.dumps({"level": _recurrent.simd_level(), "worst": worst}))
""")


@pytest.mark.parametrize("level", SIMD_LEVELS)
def test_every_simd_level_matches_the_reference(level):
    result = run_at_simd_level(_SIMD_CHECK, level)
    assert result["worst"]["float64"] <= 1e-10, result
    assert result["worst"]["float32"] <= 1e-5, result


# -------------------------------------------------------------------------------------
# Finite differences (float64): of the reference, and of the kernels
# -------------------------------------------------------------------------------------

FD_EPS = 1e-6
FD_RTOL = 1e-6

FD_CONFIGS = {
    "L2-bi-lengths": dict(T=4, N=3, I=2, H=3, L=2, bi=True, lengths=True, hx=True,
                          dhn=True),
    "L1-bf-nobias": dict(T=4, N=2, I=2, H=3, L=1, bf=True, bias=False, hx=True, dhn=True),
}


@pytest.mark.parametrize("reset_after", RESETS, ids=RESET_IDS)
@pytest.mark.parametrize("cfg", list(FD_CONFIGS.values()), ids=list(FD_CONFIGS))
def test_kernel_finite_differences(cfg, reset_after):
    model, _, case = make_case(cfg, np.float64, reset_after, seed=11, n_threads=1)
    x, h0, lengths, dout, dh_n = (case[k].copy() if isinstance(case[k], np.ndarray)
                                  else case[k] for k in ("x", "hx", "lengths", "dout", "dh_n"))

    def loss():
        out, h_n = model(x, hx=h0, lengths=lengths)
        return np.sum(out * dout) + np.sum(h_n * dh_n)

    model.zero_grad()
    loss()
    dx, dh0 = model.backward(dout, dh_n)
    analytic = dict(model.grads, x=dx, h0=dh0)
    check_finite_differences(analytic, dict(model.parameters(), x=x, h0=h0), loss)


@pytest.mark.parametrize("reset_after", RESETS, ids=RESET_IDS)
@pytest.mark.parametrize("cfg", list(FD_CONFIGS.values()), ids=list(FD_CONFIGS))
def test_reference_finite_differences(cfg, reset_after):
    model, params, case = make_case(cfg, np.float64, reset_after, seed=12)
    x = to_time_major(case["x"], model.batch_first)
    h0, lengths, dh_n = case["hx"], case["lengths"], case["dh_n"]
    dout = to_time_major(case["dout"], model.batch_first)
    kwargs = dict(num_layers=model.num_layers, bidirectional=model.bidirectional,
                  reset_after=reset_after)

    def loss():
        out, h_n, _ = ref.gru_forward(x, params, h0, lengths, **kwargs)
        return np.sum(out * dout) + np.sum(h_n * dh_n)

    _, _, cache = ref.gru_forward(x, params, h0, lengths, **kwargs)
    dx, dh0, grads = ref.gru_backward(dout, cache, dh_n)
    check_finite_differences(dict(grads, x=dx, h0=dh0), dict(params, x=x, h0=h0), loss)


# -------------------------------------------------------------------------------------
# Against torch.nn.GRU: a grid of every option
# -------------------------------------------------------------------------------------

def torch_run(model, x, hx, lengths, dout, dh_n):
    """torch.nn.GRU with the model's state_dict: out, h_n and the gradients of
    sum(out·dout) + sum(h_n·dh_n), with respect to x, h0 and every parameter."""
    torch = import_torch()
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    t_gru = torch.nn.GRU(model.input_size, model.hidden_size, model.num_layers,
                         bias=model.bias, batch_first=model.batch_first,
                         bidirectional=model.bidirectional, dtype=torch_dtype(model.dtype))
    t_gru.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    xt = torch.tensor(x, requires_grad=True)
    batched = x.ndim == 3
    N = (x.shape[0] if model.batch_first else x.shape[1]) if batched else None
    if hx is None:
        DL = model.num_directions * model.num_layers
        hx = np.zeros((DL, N, model.hidden_size) if batched else (DL, model.hidden_size),
                      x.dtype)
    h0 = torch.tensor(hx, requires_grad=True)
    if lengths is None:
        out, h_n = t_gru(xt, h0)
    else:
        T = x.shape[1] if model.batch_first else x.shape[0]
        packed = pack_padded_sequence(xt, torch.as_tensor(lengths),
                                      batch_first=model.batch_first, enforce_sorted=False)
        out, h_n = t_gru(packed, h0)
        out, _ = pad_packed_sequence(out, batch_first=model.batch_first, total_length=T)
    loss = (out * torch.from_numpy(dout)).sum()
    if dh_n is not None:
        loss = loss + (h_n * torch.from_numpy(dh_n)).sum()
    loss.backward()
    return {"out": to_numpy(out), "h_n": to_numpy(h_n), "dx": to_numpy(xt.grad),
            "dh0": to_numpy(h0.grad),
            "grads": {k: to_numpy(p.grad) for k, p in t_gru.named_parameters()}}


TORCH_GRID = torch_grid(dict(T=6, N=4, I=3, H=5), dict(T=5, I=3, H=4), "dhn")


# `python tests/test_gru.py` prints the worst difference over the grid: 8.9e-16 and
# 4.5e-7 when this was written.


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cfg", TORCH_GRID, ids=[grid_id(c) for c in TORCH_GRID])
def test_matches_torch(cfg, dtype):
    model, _, case = make_case(cfg, dtype, seed=21)
    got = model_run(model, **case)
    want = torch_run(model, **case)
    assert_results_close(got, want, dtype, rtol=TORCH_RTOL[np.dtype(dtype)])


def test_state_dict_layout_and_init_equal_torch():
    torch = import_torch()
    for kwargs in (dict(num_layers=2, bidirectional=True), dict(num_layers=2, bias=False)):
        sd = ln.GRU(3, 5, **kwargs).state_dict()
        t_sd = torch.nn.GRU(3, 5, **kwargs).state_dict()
        assert list(sd) == list(t_sd)
        assert [v.shape for v in sd.values()] == [tuple(v.shape) for v in t_sd.values()]
    params = ln.GRU(3, 16, 2, bidirectional=True, seed=0).parameters().values()
    assert all(np.all(np.abs(p) <= 0.25) for p in params)
    assert max(np.abs(p).max() for p in params) > 0.24  # U(-1/sqrt(H), 1/sqrt(H))


def _onnx_gru(model, x, h0):
    """ONNX Runtime's GRU operator with linear_before_reset=0 on a one-layer model's
    weights: Y (T, D, N, H) as (T, N, D·H), and Y_h."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    H, D = model.hidden_size, model.num_directions
    order = np.r_[H:2 * H, 0:H, 2 * H:3 * H]        # ONNX stacks z, r, h; torch r, z, n
    sfxs = ["_l0", "_l0_reverse"][:D]
    sd = model.state_dict()
    W = np.stack([sd[f"weight_ih{s}"][order] for s in sfxs])
    R = np.stack([sd[f"weight_hh{s}"][order] for s in sfxs])
    Bias = np.stack([np.concatenate([sd[f"bias_ih{s}"][order], sd[f"bias_hh{s}"][order]])
                     for s in sfxs])
    node = helper.make_node("GRU", ["X", "W", "R", "B", "", "initial_h"], ["Y", "Y_h"],
                            hidden_size=H, linear_before_reset=0,
                            direction="bidirectional" if D == 2 else "forward")
    T, N, I = x.shape
    graph = helper.make_graph(
        [node], "gru",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, N, I]),
         helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [D, N, H])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, D, N, H]),
         helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [D, N, H])],
        [numpy_helper.from_array(a.astype(np.float32), n) for a, n in
         ((W, "W"), (R, "R"), (Bias, "B"))])
    y, y_h = ort_session(graph, opset=14).run(None, {"X": x, "initial_h": h0})
    return y.transpose(0, 2, 1, 3).reshape(T, N, D * H), y_h


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_reset_before_matches_onnx(bidirectional):
    """reset_after=False is ONNX's GRU with linear_before_reset=0 (float32)."""
    rng = np.random.default_rng(5)
    model = ln.GRU(4, 6, bidirectional=bidirectional, reset_after=False, seed=3).eval()
    D = model.num_directions
    x = randn(rng, (7, 3, 4), np.float32)
    h0 = randn(rng, (D, 3, 6), np.float32)
    out, h_n = model(x, h0)
    y, y_h = _onnx_gru(model, x, h0)
    assert_close(out, y, np.float32, "out")
    assert_close(h_n, y_h, np.float32, "h_n")


# -------------------------------------------------------------------------------------
# Chunks, threads, modes
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("reset_after", RESETS, ids=RESET_IDS)
def test_chunked_equals_whole(reset_after):
    rng = np.random.default_rng(3)
    T, T1, N, I, H, L = 9, 4, 3, 3, 5, 2
    model, _ = make_gru(I, H, L, reset_after=reset_after, seed=4)
    x, hx = randn(rng, (T, N, I)), randn(rng, (L, N, H))
    dout, dh_n = randn(rng, (T, N, H)), randn(rng, (L, N, H))
    whole = model_run(model, x, hx, dout=dout, dh_n=dh_n)

    model.zero_grad()
    out1, state1 = model(x[:T1], hx)
    out2, h_n = model(x[T1:], state1)
    dx2, dstate1 = model.backward(dout[T1:], dh_n)
    model(x[:T1], hx)  # the model keeps only the last forward
    dx1, dh0 = model.backward(dout[:T1], dstate1)
    got = {"out": np.concatenate([out1, out2]), "h_n": h_n,
           "dx": np.concatenate([dx1, dx2]), "dh0": dh0, "grads": model.grads}
    assert_results_close(got, whole, np.float64)


@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("reset_after", RESETS, ids=RESET_IDS)
def test_one_and_two_threads_bitwise_equal(reset_after, dtype):
    cfg = dict(T=12, N=8, I=5, H=16, L=2, bi=True, lengths=True, hx=True, dhn=True)

    def run(n_threads):
        model, _, case = make_case(cfg, dtype, reset_after, seed=8, n_threads=n_threads)
        r = model_run(model, **case)
        model.eval()
        r["out_eval"] = model(case["x"], case["hx"], case["lengths"])[0]
        return r

    assert_threads_bitwise_equal(run, KEYS)


@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("reset_after", RESETS, ids=RESET_IDS)
def test_hidden_unit_split(reset_after, dtype):
    """Few rows and a W_hh larger than a core's L2 (3·512² values): the threads split
    hidden units, not rows. Against the reference, and bitwise against one thread."""
    cfg = dict(T=4, N=2, I=3, H=512, L=1, bi=True, lengths=True, hx=True, dhn=True)

    def run(n_threads):
        model, params, case = make_case(cfg, dtype, reset_after, seed=4,
                                        n_threads=n_threads)
        r = model_run(model, **case)
        assert_results_close(r, reference_run(model, params, **case), dtype)
        model.eval()
        r["out_eval"] = model(case["x"], case["hx"], case["lengths"])[0]
        return r

    assert_threads_bitwise_equal(run, KEYS)


def test_eval_mode_and_backward_once():
    model, _, case = make_case(CONFIGS["L2-bi-lengths-hx-dhn"], np.float64)
    args = (case["x"], case["hx"], case["lengths"])
    out, h_n = model(*args)
    model.eval()
    e_out, e_h = model(*args)
    assert_all_equal([e_out, e_h], [out, h_n])
    with pytest.raises(RuntimeError, match="eval"):
        model.backward(case["dout"])
    model.train()
    model(*args)
    model.backward(case["dout"])
    with pytest.raises(RuntimeError, match="once"):
        model.backward(case["dout"])


def test_object_protocol():
    m = ln.GRU(3, 4, 2, bidirectional=True, reset_after=False, dtype=np.float64, seed=0)
    assert m.recurrent is True
    assert repr(m) == "GRU(3, 4, num_layers=2, reset_after=False, bidirectional=True, " \
        "dtype=float64)"
    assert repr(ln.GRU(3, 4)) == "GRU(3, 4, dtype=float32)"
    config = json.loads(json.dumps(m.get_config()))
    assert config["reset_after"] is False
    m2 = ln.GRU(**config)
    assert m2.get_config() == m.get_config()
    assert {k: v.shape for k, v in m2.state_dict().items()} == \
        {k: v.shape for k, v in m.state_dict().items()}
    assert list(m.grads) == list(m.state_dict())


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(input_size=0), ValueError, "input_size"),
    (dict(hidden_size=2.0), TypeError, "hidden_size"),
    (dict(reset_after="yes"), TypeError, "reset_after"),
    (dict(dtype=np.int32), TypeError, "dtype"),
])
def test_constructor_errors(kwargs, exc, match):
    args = dict(dict(input_size=3, hidden_size=4), **kwargs)
    with pytest.raises(exc, match=match):
        ln.GRU(args.pop("input_size"), args.pop("hidden_size"), **args)


def test_state_errors():
    m = ln.GRU(3, 4, 2, dtype=np.float64)
    x = np.zeros((5, 2, 3))
    with pytest.raises(TypeError, match="hx must be one array"):
        m(x, hx=(np.zeros((2, 2, 4)),) * 2)
    with pytest.raises(ValueError, match="hx must have shape"):
        m(x, hx=np.zeros((1, 2, 4)))
    m(x)
    with pytest.raises(ValueError, match="dh_n"):
        m.backward(np.zeros((5, 2, 4)), np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="shape"):
        m.load_state_dict(ln.LSTM(3, 4, 2).state_dict())


def test_driver_refuses_gru_buffers_that_do_not_fit():
    """The kernels' own guard against a caller's mistake (the API never makes one): the
    GRU's n buffer `side`, b_hn and its gradient are the GRU's and only the GRU's."""
    from lstm_native import _recurrent
    Cell = _recurrent.Cell
    T_, B, I_, H_ = 2, 3, 2, 4
    G = 3 * H_
    x = np.zeros((T_ * B, I_))
    lengths = np.full(B, T_, np.int64)
    h = np.zeros(((T_ + 1) * B, H_))
    w_ih, w_hh = np.zeros((G, I_)), np.zeros((G, H_))

    def forward(cell, bias_hn, side, G=G, w_hh=w_hh, w_ih=w_ih):
        _recurrent.forward_layer(cell, x, w_ih, w_hh, None, np.zeros(G), bias_hn, lengths,
                                 np.zeros((T_ * B, G)), side, h, None, np.zeros((T_ * B, H_)),
                                 0, False, True, 1)

    def backward(cell, side, db_hn):
        _recurrent.backward_layer(cell, x, w_ih, w_hh, None, lengths, np.zeros((T_ * B, G)),
                                  side, None, h, None, np.zeros((T_ * B, H_)), 0,
                                  np.zeros((B, H_)), None, np.zeros((G, I_)), np.zeros((G, H_)),
                                  None, np.zeros(G), db_hn,
                                  None, False, 1)

    side = np.zeros((T_ * B, H_))
    forward(Cell.GRU, np.zeros(H_), side)
    forward(Cell.GRU_RESET_BEFORE, None, side)
    backward(Cell.GRU, side, np.zeros(H_))
    with pytest.raises(ValueError, match="side"):
        forward(Cell.GRU, np.zeros(H_), None)
    with pytest.raises(ValueError, match="side"):
        forward(Cell.GRU, np.zeros(H_), np.zeros((T_ * B, H_ + 1)))
    with pytest.raises(ValueError, match="bias_hn"):
        forward(Cell.GRU, None, side)
    with pytest.raises(ValueError, match="bias_hn"):
        forward(Cell.GRU_RESET_BEFORE, np.zeros(H_), side)
    with pytest.raises(ValueError, match="side"):
        forward(Cell.RNN_TANH, None, side, G=H_, w_hh=np.zeros((H_, H_)),
                w_ih=np.zeros((H_, I_)))
    with pytest.raises(ValueError, match="db_hn"):
        backward(Cell.GRU, side, None)
    with pytest.raises(ValueError, match="side"):
        backward(Cell.GRU, None, np.zeros(H_))


# -------------------------------------------------------------------------------------
# In a Sequential, fit and a checkpoint
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("reset_after", RESETS, ids=RESET_IDS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_sequential_gru_last_step_linear_finite_differences(bidirectional, reset_after):
    rng = np.random.default_rng(3)
    Tq, Nq, Iq, Hq, O = 4, 3, 2, 3, 2
    Dq = 2 if bidirectional else 1
    model = Sequential(ln.GRU(Iq, Hq, 2, batch_first=True, bidirectional=bidirectional,
                              reset_after=reset_after, dtype=np.float64, seed=0,
                              n_threads=1),
                       LastStep(batch_first=True, bidirectional=bidirectional),
                       Linear(Dq * Hq, O, dtype=np.float64, seed=1))
    x = randn(rng, (Nq, Tq, Iq))
    lengths = random_lengths(rng, Nq, Tq)
    dout = randn(rng, (Nq, O))
    model.zero_grad()
    model(x, lengths=lengths)
    dx = model.backward(dout, input_grad=True)
    grads = {k: v.copy() for k, v in model.grads.items()}

    def loss():
        return float(np.sum(dout * model(x, lengths=lengths)))

    for name, p in model.parameters().items():
        assert_close(grads[name], numerical_grad(loss, p, FD_EPS), np.float64, name,
                     rtol=FD_RTOL)
    assert_close(dx, numerical_grad(loss, x, FD_EPS), np.float64, "dx", rtol=FD_RTOL)


def test_stateful_sequential_carries_the_gru_state():
    rng = np.random.default_rng(6)
    gru = ln.GRU(3, 4, 2, dtype=np.float64, seed=0)
    whole = Sequential(gru, Linear(4, 2, dtype=np.float64, seed=1))
    stateful = Sequential(*whole.layers, stateful=True)
    x = randn(rng, (12, 3, 3))
    expected = whole(x)
    got = np.concatenate([stateful(c) for c in np.split(x, [3, 7])])
    assert_close(got, expected, np.float64, "out", rtol=1e-12)
    assert isinstance(stateful._states[0], np.ndarray)  # one array, no tuple
    assert stateful._states[0].shape == (2, 3, 4)


def test_fit_predict_and_tbptt():
    rng = np.random.default_rng(0)
    x = randn(rng, (16, 12, 2), np.float32)
    y = x.sum(axis=(1, 2))[:, None]
    model = Sequential(ln.GRU(2, 8, batch_first=True, seed=0),
                       LastStep(batch_first=True), Linear(8, 1, seed=1))
    opt = ln.optim.Adam(model, lr=1e-2)
    history = ln.fit(model, x, y, loss="mse", optimizer=opt, epochs=3, batch_size=8,
                     seed=0, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert ln.predict(model, x).shape == (16, 1)
    seq = Sequential(ln.GRU(2, 4, batch_first=True, seed=0), Linear(4, 1, seed=1))
    ln.fit(seq, x, x[..., :1], loss="mse", optimizer=ln.optim.SGD(seq, lr=1e-2), epochs=1,
           batch_size=8, tbptt=4, shuffle=False, verbose=0)


def test_checkpoint_round_trip(tmp_path):
    model = Sequential(ln.GRU(3, 4, 2, bidirectional=True, batch_first=True,
                              reset_after=False, dtype=np.float64, seed=0),
                       LastStep(batch_first=True, bidirectional=True),
                       Linear(8, 2, dtype=np.float64, seed=1)).eval()
    ln.save_checkpoint(tmp_path / "gru.npz", model)
    loaded = ln.load_model(tmp_path / "gru.npz").eval()
    assert type(loaded[0]) is ln.GRU and loaded.get_config() == model.get_config()
    assert loaded[0].reset_after is False
    x = np.random.default_rng(0).standard_normal((3, 6, 3))
    lengths = [6, 2, 4]
    assert np.array_equal(loaded(x, lengths=lengths), model(x, lengths=lengths))


if __name__ == "__main__":
    # The worst difference from torch over the grid, per dtype.
    for dtype in DTYPES:
        worst = 0.0
        for cfg in TORCH_GRID:
            model, _, case = make_case(cfg, dtype, seed=21)
            got, want = model_run(model, **case), torch_run(model, **case)
            pairs = [(got[k], want[k]) for k in KEYS]
            pairs += [(got["grads"][k], want["grads"][k]) for k in want["grads"]]
            worst = max(worst, max(float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))
                                   for a, b in pairs))
        print(f"{np.dtype(dtype).name}: {len(TORCH_GRID)} configurations, worst relative "
              f"difference from torch.nn.GRU {worst:.2e}")
