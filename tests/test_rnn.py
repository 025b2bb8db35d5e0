"""`lstm_native.RNN`: the kernels against the NumPy reference, finite differences and
torch.nn.RNN, chunks and threads, the shared argument checks, and the RNN inside a
`Sequential` and a checkpoint."""
from __future__ import annotations

import json

import numpy as np
import pytest

import lstm_native as ln
from conftest import (
    DTYPES,
    assert_all_equal,
    assert_close,
    assert_grads_close,
    assert_threads_bitwise_equal,
    check_finite_differences,
    from_time_major,
    import_torch,
    numerical_grad,
    randn,
    random_lengths,
    to_numpy,
    to_time_major,
    torch_dtype,
)
from lstm_native import reference as ref
from lstm_native.layers import LastStep, Linear, Sequential

NONLINEARITIES = ["tanh", "relu"]
KEYS = ("out", "h_n", "dx", "dh0")


# -------------------------------------------------------------------------------------
# Helpers: the model, the reference and torch run on one case, results as dicts
# -------------------------------------------------------------------------------------

def make_rnn(input_size, hidden_size, num_layers=1, *, nonlinearity="tanh", bias=True,
             batch_first=False, bidirectional=False, dtype=np.float64, seed=0,
             n_threads=None):
    """An RNN and its parameters in float64, as the reference takes them."""
    model = ln.RNN(input_size, hidden_size, num_layers, nonlinearity=nonlinearity, bias=bias,
                   batch_first=batch_first, bidirectional=bidirectional, dtype=dtype,
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
    out, h_n, cache = ref.rnn_forward(
        to_time_major(f64(x), model.batch_first, batched), params, unbatched_state(f64(hx)),
        lengths, num_layers=model.num_layers, bidirectional=model.bidirectional,
        nonlinearity=model.nonlinearity)
    to_user = (lambda s: s if batched else s[:, 0, :])
    result = {"out": from_time_major(out, model.batch_first, batched), "h_n": to_user(h_n)}
    if dout is not None:
        dx, dh0, grads = ref.rnn_backward(to_time_major(f64(dout), model.batch_first, batched),
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


def make_case(cfg, dtype, nonlinearity="tanh", seed=0, n_threads=None):
    cfg = dict(dict(bi=False, bf=False, lengths=False, hx=False, dhn=False, bias=True,
                    batched=True), **cfg)
    rng = np.random.default_rng(seed)
    T, N, I, H, L = cfg["T"], cfg["N"], cfg["I"], cfg["H"], cfg["L"]
    D = 2 if cfg["bi"] else 1
    model, params = make_rnn(I, H, L, nonlinearity=nonlinearity, bias=cfg["bias"],
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
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("cfg", list(CONFIGS.values()), ids=list(CONFIGS))
def test_matches_reference(cfg, nonlinearity, dtype):
    model, params, case = make_case(cfg, dtype, nonlinearity)
    got = model_run(model, **case)
    want = reference_run(model, params, **case)
    for key in KEYS:
        assert got[key].dtype == np.dtype(dtype), key
    assert list(got["grads"]) == list(model.state_dict())
    assert_results_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_long_sequence_matches_reference(nonlinearity, dtype):
    rng = np.random.default_rng(7)
    T, N, I, H = 1000, 2, 2, 3
    model, params = make_rnn(I, H, nonlinearity=nonlinearity, bidirectional=True,
                             dtype=dtype, seed=3)
    case = dict(x=randn(rng, (T, N, I), dtype), lengths=np.array([T - 137, T]),
                hx=randn(rng, (2, N, H), dtype), dout=randn(rng, (T, N, 2 * H), dtype),
                dh_n=randn(rng, (2, N, H), dtype))
    assert_results_close(model_run(model, **case), reference_run(model, params, **case),
                         dtype)


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_padded_steps(nonlinearity):
    """Outputs and dx are zero past each length, and non-finite values there (x, dout)
    leak into nothing."""
    model, _, case = make_case(CONFIGS["L2-bi-lengths-hx-dhn"], np.float64, nonlinearity)
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


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("cfg", list(FD_CONFIGS.values()), ids=list(FD_CONFIGS))
def test_kernel_finite_differences(cfg, nonlinearity):
    model, _, case = make_case(cfg, np.float64, nonlinearity, seed=11, n_threads=1)
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


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_reference_finite_differences(nonlinearity):
    model, params, case = make_case(FD_CONFIGS["L2-bi-lengths"], np.float64, nonlinearity,
                                    seed=12)
    x, h0, lengths, dout, dh_n = (case[k] for k in ("x", "hx", "lengths", "dout", "dh_n"))

    def loss():
        out, h_n, _ = ref.rnn_forward(x, params, h0, lengths, num_layers=2,
                                      bidirectional=True, nonlinearity=nonlinearity)
        return np.sum(out * dout) + np.sum(h_n * dh_n)

    _, _, cache = ref.rnn_forward(x, params, h0, lengths, num_layers=2, bidirectional=True,
                                  nonlinearity=nonlinearity)
    dx, dh0, grads = ref.rnn_backward(dout, cache, dh_n)
    check_finite_differences(dict(grads, x=dx, h0=dh0), dict(params, x=x, h0=h0), loss)


# -------------------------------------------------------------------------------------
# Against torch.nn.RNN
# -------------------------------------------------------------------------------------

def _torch_run(model, x, hx, lengths, dout, dh_n):
    """torch.nn.RNN with the model's state_dict: out, h_n and the gradients of
    sum(out·dout) + sum(h_n·dh_n)."""
    torch = import_torch()
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    t_rnn = torch.nn.RNN(model.input_size, model.hidden_size, model.num_layers,
                         nonlinearity=model.nonlinearity, bias=model.bias,
                         batch_first=model.batch_first, bidirectional=model.bidirectional,
                         dtype=torch_dtype(model.dtype))
    t_rnn.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    xt = torch.tensor(x, requires_grad=True)
    N = x.shape[0] if model.batch_first else x.shape[1]
    if hx is None:
        hx = np.zeros((model.num_directions * model.num_layers, N, model.hidden_size), x.dtype)
    h0 = torch.tensor(hx, requires_grad=True)
    if lengths is None:
        out, h_n = t_rnn(xt, h0)
    else:
        T = x.shape[1] if model.batch_first else x.shape[0]
        packed = pack_padded_sequence(xt, torch.as_tensor(lengths),
                                      batch_first=model.batch_first, enforce_sorted=False)
        out, h_n = t_rnn(packed, h0)
        out, _ = pad_packed_sequence(out, batch_first=model.batch_first, total_length=T)
    loss = (out * torch.from_numpy(dout)).sum()
    if dh_n is not None:
        loss = loss + (h_n * torch.from_numpy(dh_n)).sum()
    loss.backward()
    return {"out": to_numpy(out), "h_n": to_numpy(h_n), "dx": to_numpy(xt.grad),
            "dh0": to_numpy(h0.grad),
            "grads": {k: to_numpy(p.grad) for k, p in t_rnn.named_parameters()}}


TORCH_CONFIGS = {
    "L1": dict(T=6, N=3, I=4, H=5, L=1),
    "L2-bi-lengths-hx-dhn": CONFIGS["L2-bi-lengths-hx-dhn"],
    "L3-bf-lengths-dhn": dict(T=6, N=4, I=3, H=3, L=3, bf=True, lengths=True, dhn=True),
    "L2-bi-bf-lengths-nobias-hx": dict(T=5, N=4, I=2, H=6, L=2, bi=True, bf=True,
                                       lengths=True, hx=True, bias=False),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("cfg", list(TORCH_CONFIGS.values()), ids=list(TORCH_CONFIGS))
def test_matches_torch(cfg, nonlinearity, dtype):
    model, _, case = make_case(cfg, dtype, nonlinearity, seed=21)
    got = model_run(model, **case)
    want = _torch_run(model, **case)
    assert_results_close(got, want, dtype)


def test_state_dict_layout_equals_torch():
    torch = import_torch()
    for kwargs in (dict(num_layers=2, bidirectional=True), dict(num_layers=2, bias=False)):
        sd = ln.RNN(3, 5, **kwargs).state_dict()
        t_sd = torch.nn.RNN(3, 5, **kwargs).state_dict()
        assert list(sd) == list(t_sd)
        assert [v.shape for v in sd.values()] == [tuple(v.shape) for v in t_sd.values()]


# -------------------------------------------------------------------------------------
# Chunks, threads, modes
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_chunked_equals_whole(nonlinearity):
    rng = np.random.default_rng(3)
    T, T1, N, I, H, L = 9, 4, 3, 3, 5, 2
    model, _ = make_rnn(I, H, L, nonlinearity=nonlinearity, seed=4)
    x, hx = randn(rng, (T, N, I)), randn(rng, (L, N, H))
    dout, dh_n = randn(rng, (T, N, H)), randn(rng, (L, N, H))
    whole = model_run(model, x, hx, dout=dout, dh_n=dh_n)

    model.zero_grad()
    out1, state1 = model(x[:T1], hx)
    out2, h_n = model(x[T1:], state1)
    dx2, dstate1 = model.backward(dout[T1:], dh_n)
    out1_again, _ = model(x[:T1], hx)  # the model keeps only the last forward
    assert np.array_equal(out1_again, out1)
    dx1, dh0 = model.backward(dout[:T1], dstate1)
    got = {"out": np.concatenate([out1, out2]), "h_n": h_n,
           "dx": np.concatenate([dx1, dx2]), "dh0": dh0, "grads": model.grads}
    assert_results_close(got, whole, np.float64)


@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_one_and_two_threads_bitwise_equal(nonlinearity, dtype):
    cfg = dict(T=12, N=8, I=5, H=16, L=2, bi=True, lengths=True, hx=True, dhn=True)

    def run(n_threads):
        model, _, case = make_case(cfg, dtype, nonlinearity, seed=8, n_threads=n_threads)
        r = model_run(model, **case)
        model.eval()
        r["out_eval"] = model(case["x"], case["hx"], case["lengths"])[0]
        return r

    assert_threads_bitwise_equal(run, KEYS)


@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_hidden_unit_split(nonlinearity):
    """Few rows and a W_hh larger than a core's L2 (1 MiB at H = 512): the threads split
    hidden units, not rows. Against the reference, and bitwise against one thread."""
    cfg = dict(T=5, N=2, I=3, H=512, L=1, bi=True, lengths=True, hx=True, dhn=True)
    results = []
    for n_threads in (1, 2):
        model, params, case = make_case(cfg, np.float32, nonlinearity, seed=4,
                                        n_threads=n_threads)
        r = model_run(model, **case)
        assert_results_close(r, reference_run(model, params, **case), np.float32)
        model.eval()
        r["out_eval"] = model(case["x"], case["hx"], case["lengths"])[0]
        results.append(r)
    names = list(KEYS) + ["out_eval"]
    assert_all_equal([results[0][k] for k in names], [results[1][k] for k in names], names)


@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("cls", [ln.RNN, ln.LSTM])
def test_threads_bitwise_equal_at_small_blas_shapes(cls):
    """The shared driver cuts its BLAS calls by shape, not by threads: small shapes, where
    OpenBLAS changes its summation order with the shape, are bitwise equal too."""
    rng = np.random.default_rng(9)
    for H, I, T, N in [(1, 32, 3, 1), (3, 100, 40, 5), (4, 32, 12, 8), (16, 5, 12, 8)]:
        x = randn(rng, (T, N, I))
        dout = randn(rng, (T, N, 2 * H))
        results = []
        for n_threads in (1, 2):
            model = cls(I, H, 2, bidirectional=True, dtype=np.float64, seed=0,
                        n_threads=n_threads)
            out, _ = model(x)
            dx, _ = model.backward(dout)
            results.append([out, dx, *model.grads.values()])
        assert_all_equal(*results)


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
    m = ln.RNN(3, 4, 2, nonlinearity="relu", bidirectional=True, dtype=np.float64, seed=0)
    assert m.recurrent is True
    assert "RNN(3, 4" in repr(m) and "nonlinearity='relu'" in repr(m)
    assert "nonlinearity" not in repr(ln.RNN(3, 4))
    config = json.loads(json.dumps(m.get_config()))
    assert config["nonlinearity"] == "relu"
    m2 = ln.RNN(**config)
    assert m2.get_config() == m.get_config()
    assert {k: v.shape for k, v in m2.state_dict().items()} == \
        {k: v.shape for k, v in m.state_dict().items()}
    assert list(m.grads) == list(m.state_dict())
    bound = 1 / np.sqrt(4)
    assert all(np.all(np.abs(p) <= bound) for p in m.parameters().values())


# -------------------------------------------------------------------------------------
# Errors: the checks are LSTM's (shared), so a few cases suffice; and the RNN's own
# -------------------------------------------------------------------------------------

T, N, I, H, L, D = 5, 3, 4, 6, 2, 2


@pytest.fixture
def rnn():
    return ln.RNN(I, H, L, bidirectional=True, dtype=np.float64, seed=0)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(input_size=0), ValueError, "input_size"),
    (dict(hidden_size=2.0), TypeError, "hidden_size"),
    (dict(num_layers=0), ValueError, "num_layers"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(n_threads=0), ValueError, "n_threads"),
    (dict(nonlinearity="sigmoid"), ValueError, "nonlinearity"),
    (dict(nonlinearity=None), TypeError, "nonlinearity"),
])
def test_constructor_errors(kwargs, exc, match):
    args = dict(dict(input_size=3, hidden_size=4), **kwargs)
    with pytest.raises(exc, match=match):
        ln.RNN(args.pop("input_size"), args.pop("hidden_size"), **args)


@pytest.mark.parametrize("call,exc,match", [
    (lambda m: m(np.zeros((T, N, I), dtype=np.int64)), TypeError, "x must be a float32"),
    (lambda m: m(np.zeros((T, N, I + 1))), ValueError, "x must have shape"),
    (lambda m: m(np.zeros((T, N, I)), lengths=[T, 0, 1]), ValueError, "lengths"),
    (lambda m: m(np.zeros((T, N, I)), hx=np.zeros((L, N, H))), ValueError,
     r"hx must have shape \(D\*num_layers, N, hidden_size\)"),
    (lambda m: m(np.zeros((T, N, I)), hx=(np.zeros((D * L, N, H)),) * 2), TypeError,
     "hx must be one array"),
    (lambda m: m(np.zeros((T, N, I)), hx=np.zeros((D * L, N, H), dtype=np.int32)),
     TypeError, "hx"),
], ids=["x-int", "x-features", "lengths", "hx-shape", "hx-tuple", "hx-int"])
def test_forward_errors(rnn, call, exc, match):
    with pytest.raises(exc, match=match):
        call(rnn)


@pytest.mark.parametrize("dout,dh_n,exc,match", [
    (np.zeros((T, N, H)), None, ValueError, "dout"),
    (np.zeros((T, N, D * H)), np.zeros((D * L, N + 1, H)), ValueError, "dh_n"),
    (np.zeros((T, N, D * H)), (np.zeros((D * L, N, H)),) * 2, TypeError, "dh_n"),
])
def test_backward_errors(rnn, dout, dh_n, exc, match):
    x = np.zeros((T, N, I))
    rnn(x)
    with pytest.raises(exc, match=match):
        rnn.backward(dout, dh_n)
    dx, dh0 = rnn.backward(np.zeros((T, N, D * H)))  # the failed call kept the forward
    assert dx.shape == x.shape and dh0.shape == (D * L, N, H)


def test_load_state_dict_checks_names_and_shapes(rnn):
    lstm_sd = ln.LSTM(I, H, L, bidirectional=True).state_dict()
    with pytest.raises(ValueError, match="shape"):
        rnn.load_state_dict(lstm_sd)  # same names, 4H rows
    with pytest.raises(KeyError, match="missing"):
        rnn.load_state_dict({})


def test_driver_refuses_a_cell_that_does_not_fit_its_buffers():
    """The kernels' own guard against a caller's mistake (the API never makes one)."""
    from lstm_native import _recurrent
    Cell = _recurrent.Cell
    T_, B, I_, H_ = 2, 3, 2, 4
    x = np.zeros((T_ * B, I_))
    lengths = np.full(B, T_, np.int64)
    h = np.zeros(((T_ + 1) * B, H_))
    out = np.zeros((T_ * B, H_))

    def run(cell, G, c):
        _recurrent.forward_layer(cell, x, np.zeros((G, I_)), np.zeros((G, H_)), None,
                                 np.zeros(G), None, lengths, np.zeros((T_ * B, G)), None, h,
                                 c, out, 0, False, True, 1)

    run(Cell.RNN_RELU, H_, None)
    run(Cell.LSTM, 4 * H_, np.zeros_like(h))
    with pytest.raises(ValueError, match="rows"):
        run(Cell.RNN_TANH, 4 * H_, None)
    with pytest.raises(ValueError, match="None"):
        run(Cell.RNN_TANH, H_, np.zeros_like(h))
    with pytest.raises(ValueError, match="given"):
        run(Cell.LSTM, 4 * H_, None)
    with pytest.raises(ValueError, match="unknown cell"):
        run(7, H_, None)


# -------------------------------------------------------------------------------------
# In a Sequential, and in a checkpoint
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_sequential_rnn_last_step_linear_finite_differences(bidirectional):
    rng = np.random.default_rng(3)
    Tq, Nq, Iq, Hq, O = 4, 3, 2, 3, 2
    Dq = 2 if bidirectional else 1
    model = Sequential(ln.RNN(Iq, Hq, 2, nonlinearity="tanh", batch_first=True,
                              bidirectional=bidirectional, dtype=np.float64, seed=0,
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
    assert list(grads)[:2] == ["0.weight_ih_l0", "0.weight_hh_l0"]

    def loss():
        return float(np.sum(dout * model(x, lengths=lengths)))

    for name, p in model.parameters().items():
        assert_close(grads[name], numerical_grad(loss, p, FD_EPS), np.float64, name, rtol=FD_RTOL)
    assert_close(dx, numerical_grad(loss, x, FD_EPS), np.float64, "dx", rtol=FD_RTOL)


def test_stateful_sequential_carries_the_rnn_state():
    rng = np.random.default_rng(6)
    rnn = ln.RNN(3, 4, 2, nonlinearity="relu", dtype=np.float64, seed=0)
    whole = Sequential(rnn, Linear(4, 2, dtype=np.float64, seed=1))
    stateful = Sequential(*whole.layers, stateful=True)
    x = randn(rng, (12, 3, 3))
    expected = whole(x)
    got = np.concatenate([stateful(c) for c in np.split(x, [3, 7])])
    assert_close(got, expected, np.float64, "out", rtol=1e-12)
    assert isinstance(stateful._states[0], np.ndarray)  # one array, no tuple
    assert stateful._states[0].shape == (2, 3, 4)


def test_checkpoint_round_trip(tmp_path):
    model = Sequential(ln.RNN(3, 4, 2, nonlinearity="relu", bidirectional=True,
                              batch_first=True, dtype=np.float64, seed=0),
                       LastStep(batch_first=True, bidirectional=True),
                       Linear(8, 2, dtype=np.float64, seed=1)).eval()
    ln.save_checkpoint(tmp_path / "rnn.npz", model)
    loaded = ln.load_model(tmp_path / "rnn.npz").eval()
    assert type(loaded[0]) is ln.RNN and loaded.get_config() == model.get_config()
    assert loaded[0].nonlinearity == "relu"
    x = np.random.default_rng(0).standard_normal((3, 6, 3))
    lengths = [6, 2, 4]
    assert np.array_equal(loaded(x, lengths=lengths), model(x, lengths=lengths))
