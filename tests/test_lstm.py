"""`lstm_native.LSTM`: the kernels against the NumPy reference, finite differences and
torch.nn.LSTM, and the behaviour of the model object (modes, grads, state_dict, threads)."""
from __future__ import annotations

import numpy as np
import pytest

import lstm_native as ln
from conftest import (
    DTYPES,
    assert_all_equal,
    assert_close,
    assert_grads_close,
    assert_results_close,
    import_torch,
    numerical_grad,
    make_lstm,
    model_run,
    randn,
    random_lengths,
    reference_run,
    to_numpy,
    torch_dtype,
)

# -------------------------------------------------------------------------------------
# Kernels against the NumPy reference
# -------------------------------------------------------------------------------------

# T, N, I, H, L: sizes; bi: bidirectional; bf: batch_first; lengths / hx / dhx: whether
# given; batched: False means unbatched (T, I) input.
CONFIGS = {
    "base": dict(T=5, N=3, I=4, H=6, L=1),
    "L2-bi-lengths-hx-dhx": dict(T=7, N=5, I=3, H=4, L=2, bi=True, lengths=True, hx=True,
                                 dhx=True),
    "L3-bf-dhx": dict(T=6, N=4, I=5, H=3, L=3, bf=True, dhx=True),
    "L3-bi-bf-lengths-hx": dict(T=5, N=4, I=2, H=3, L=3, bi=True, bf=True, lengths=True,
                                hx=True),
    "nobias-bi-lengths-dhx": dict(T=6, N=4, I=3, H=5, L=2, bi=True, bias=False,
                                  lengths=True, dhx=True),
    "nobias-hx": dict(T=4, N=2, I=3, H=4, L=1, bias=False, hx=True),
    "N1-T1": dict(T=1, N=1, I=3, H=4, L=2, bi=True, hx=True, dhx=True),
    "T1-lengths": dict(T=1, N=4, I=3, H=2, L=1, bi=True, lengths=True),
    "H1": dict(T=6, N=3, I=2, H=1, L=2, bi=True, lengths=True, hx=True, dhx=True),
    "H33": dict(T=5, N=2, I=7, H=33, L=2, lengths=True, hx=True, dhx=True),
    "N1-lengths": dict(T=5, N=1, I=3, H=4, L=1, bi=True, lengths=True, dhx=True),
    "unbatched-bi-L2-hx-dhx": dict(T=5, N=1, I=3, H=4, L=2, bi=True, hx=True, dhx=True,
                                   batched=False),
    "unbatched-bf": dict(T=4, N=1, I=3, H=2, L=1, bf=True, batched=False, dhx=True),
}


def _make_case(cfg, dtype, seed=0):
    cfg = dict(dict(bi=False, bf=False, lengths=False, hx=False, dhx=False, bias=True,
                    batched=True), **cfg)
    rng = np.random.default_rng(seed)
    T, N, I, H, L = cfg["T"], cfg["N"], cfg["I"], cfg["H"], cfg["L"]
    D = 2 if cfg["bi"] else 1
    model, params = make_lstm(I, H, L, bias=cfg["bias"], batch_first=cfg["bf"],
                              bidirectional=cfg["bi"], dtype=dtype, seed=seed)
    if cfg["batched"]:
        x_shape = (N, T, I) if cfg["bf"] else (T, N, I)
        out_shape = x_shape[:2] + (D * H,)
        state_shape = (D * L, N, H)
    else:
        x_shape, out_shape, state_shape = (T, I), (T, D * H), (D * L, H)
    case = dict(
        x=randn(rng, x_shape, dtype),
        hx=(randn(rng, state_shape, dtype), randn(rng, state_shape, dtype)) if cfg["hx"]
        else None,
        lengths=random_lengths(rng, N, T) if cfg["lengths"] else None,
        dout=randn(rng, out_shape, dtype),
        dhx=(randn(rng, state_shape, dtype), randn(rng, state_shape, dtype)) if cfg["dhx"]
        else None,
    )
    return model, params, case


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cfg", list(CONFIGS.values()), ids=list(CONFIGS))
def test_matches_reference(cfg, dtype):
    model, params, case = _make_case(cfg, dtype)
    got = model_run(model, **case)
    want = reference_run(model, params, **case)
    for key in ("out", "h_n", "c_n", "dx", "dh0", "dc0"):
        assert got[key].dtype == np.dtype(dtype), key
        assert got[key].shape == want[key].shape, key
    assert list(got["grads"]) == list(model.state_dict())
    assert_results_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_long_sequence_matches_reference(dtype, bidirectional):
    rng = np.random.default_rng(7)
    T, N, I, H = 1000, 2, 2, 3
    model, params = make_lstm(I, H, bidirectional=bidirectional, dtype=dtype, seed=3)
    D = 2 if bidirectional else 1
    lengths = np.array([T - 137, T]) if bidirectional else None
    case = dict(x=randn(rng, (T, N, I), dtype), lengths=lengths,
                hx=(randn(rng, (D, N, H), dtype), randn(rng, (D, N, H), dtype)),
                dout=randn(rng, (T, N, D * H), dtype),
                dhx=(randn(rng, (D, N, H), dtype), randn(rng, (D, N, H), dtype)))
    assert_results_close(model_run(model, **case), reference_run(model, params, **case), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_padded_steps(dtype):
    """Outputs and dx are zero past each length; dout there is ignored; non-finite inputs
    there do not leak into anything."""
    model, params, case = _make_case(CONFIGS["L2-bi-lengths-hx-dhx"], dtype)
    lengths = case["lengths"]
    T = case["x"].shape[0]
    padded = np.arange(T)[:, None] >= lengths[None, :]  # (T, N)
    assert padded.any()
    clean = model_run(model, **case)
    assert np.all(clean["out"][padded] == 0)
    assert np.all(clean["dx"][padded] == 0)
    assert np.any(clean["out"][~padded] != 0)

    dirty = dict(case, x=case["x"].copy(), dout=case["dout"].copy())
    dirty["x"][padded] = np.nan
    dirty["dout"][padded] = np.inf
    got = model_run(model, **dirty)
    names = ["out", "h_n", "c_n", "dx", "dh0", "dc0"]
    assert_all_equal([got[k] for k in names], [clean[k] for k in names], names)
    assert_all_equal(list(got["grads"].values()), list(clean["grads"].values()),
                     list(got["grads"]))


# -------------------------------------------------------------------------------------
# Finite differences (float64)
# -------------------------------------------------------------------------------------

FD_EPS = 1e-6
FD_RTOL = 1e-6  # central differences: O(eps²) truncation + O(1e-16/eps) rounding


@pytest.mark.parametrize("cfg", [
    dict(T=5, N=3, I=3, H=4, L=2, bi=True, lengths=True, hx=True, dhx=True),
    dict(T=4, N=2, I=2, H=3, L=1, bf=True, bias=False, hx=True, dhx=True),
    dict(T=6, N=4, I=3, H=2, L=2, bf=True, lengths=True, dhx=True),
], ids=["L2-bi-lengths", "L1-bf-nobias", "L2-bf-lengths"])
def test_finite_differences(cfg):
    model, _, case = _make_case(cfg, np.float64, seed=11)
    D = model.num_directions
    N, H = cfg["N"], cfg["H"]
    hx = case["hx"] or (np.zeros((D * cfg["L"], N, H)), np.zeros((D * cfg["L"], N, H)))
    x, lengths, dout = case["x"], case["lengths"], case["dout"]
    dhx = case["dhx"]

    def loss(x_, hx_):
        out, (h_n, c_n) = model(x_, hx=hx_, lengths=lengths)
        value = np.sum(out * dout)
        if dhx is not None:
            value += np.sum(h_n * dhx[0]) + np.sum(c_n * dhx[1])
        return value

    model.zero_grad()
    loss(x, hx)
    dx, (dh0, dc0) = model.backward(dout, dhx)
    grads = {k: v.copy() for k, v in model.grads.items()}

    def check(array, analytic, name, evaluate):
        # Every coordinate: the models are small and a forward is ~0.1 ms.
        numeric_grad = numerical_grad(evaluate, array, FD_EPS)
        for idx in np.ndindex(array.shape):
            numeric = numeric_grad[idx]
            assert abs(numeric - analytic[idx]) <= FD_RTOL * max(1.0, abs(numeric)), \
                f"{name}{idx}: analytic {analytic[idx]!r}, numeric {numeric!r}"

    params = model.parameters()  # live arrays: perturbing them perturbs the model
    for name, p in params.items():
        check(p, grads[name], name, lambda: loss(x, hx))
    x = x.copy()
    check(x, dx, "x", lambda: loss(x, hx))
    h0, c0 = hx[0].copy(), hx[1].copy()
    check(h0, dh0, "h0", lambda: loss(x, (h0, c0)))
    check(c0, dc0, "c0", lambda: loss(x, (h0, c0)))
    # a padded step of x has no influence at all
    if lengths is not None and lengths.min() < x.shape[1 if model.batch_first else 0]:
        n = int(np.argmin(lengths))
        t = int(lengths[n])
        idx = (n, t, 0) if model.batch_first else (t, n, 0)
        assert dx[idx] == 0


# -------------------------------------------------------------------------------------
# Against torch.nn.LSTM
# -------------------------------------------------------------------------------------

def _torch_lstm(model):
    torch = import_torch()
    t = torch.nn.LSTM(model.input_size, model.hidden_size, model.num_layers, bias=model.bias,
                      batch_first=model.batch_first, bidirectional=model.bidirectional,
                      dtype=torch_dtype(model.dtype))
    with torch.no_grad():
        for k, v in model.state_dict().items():
            getattr(t, k).copy_(torch.from_numpy(v))
    return t


def _torch_run(t_lstm, x, hx, lengths, dout, dhx, batch_first, state_shape):
    """torch's out, states and gradients of sum(out·dout) + sum(h_n·dh_n) + sum(c_n·dc_n)."""
    torch = import_torch()
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    xt = torch.tensor(x, requires_grad=True)
    if hx is None:
        hx = (np.zeros(state_shape, x.dtype), np.zeros(state_shape, x.dtype))
    h0 = torch.tensor(hx[0], requires_grad=True)
    c0 = torch.tensor(hx[1], requires_grad=True)
    if lengths is None:
        out, (h_n, c_n) = t_lstm(xt, (h0, c0))
    else:
        T = x.shape[1] if batch_first else x.shape[0]
        packed = pack_padded_sequence(xt, torch.as_tensor(lengths), batch_first=batch_first,
                                      enforce_sorted=False)
        out, (h_n, c_n) = t_lstm(packed, (h0, c0))
        out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    loss = (out * torch.from_numpy(dout)).sum()
    if dhx is not None:
        loss = loss + (h_n * torch.from_numpy(dhx[0])).sum() + \
            (c_n * torch.from_numpy(dhx[1])).sum()
    t_lstm.zero_grad()
    loss.backward()
    return {
        "out": to_numpy(out), "h_n": to_numpy(h_n), "c_n": to_numpy(c_n),
        "dx": to_numpy(xt.grad), "dh0": to_numpy(h0.grad), "dc0": to_numpy(c0.grad),
        "grads": {k: to_numpy(p.grad) for k, p in t_lstm.named_parameters()},
    }


TORCH_CONFIGS = {
    "L1": dict(T=6, N=3, I=4, H=5, L=1),
    "L2-bi-lengths-hx-dhx": dict(T=7, N=5, I=3, H=4, L=2, bi=True, lengths=True, hx=True,
                                 dhx=True),
    "L3-bf-lengths-dhx": dict(T=6, N=4, I=3, H=3, L=3, bf=True, lengths=True, dhx=True),
    "L2-bi-bf-lengths-nobias-hx": dict(T=5, N=4, I=2, H=6, L=2, bi=True, bf=True,
                                       lengths=True, hx=True, bias=False),
    "unbatched-bi-hx-dhx": dict(T=5, N=1, I=3, H=4, L=1, bi=True, hx=True, dhx=True,
                                batched=False),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cfg", list(TORCH_CONFIGS.values()), ids=list(TORCH_CONFIGS))
def test_matches_torch(cfg, dtype):
    model, _, case = _make_case(cfg, dtype, seed=21)
    t_lstm = _torch_lstm(model)
    got = model_run(model, **case)
    want = _torch_run(t_lstm, case["x"], case["hx"], case["lengths"], case["dout"],
                      case["dhx"], model.batch_first, got["h_n"].shape)
    assert_results_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_load_state_dict_from_torch(dtype):
    torch = import_torch()
    torch.manual_seed(0)
    t_lstm = torch.nn.LSTM(3, 4, 2, bidirectional=True, batch_first=True,
                           dtype=torch_dtype(dtype))
    model = ln.LSTM(3, 4, 2, bidirectional=True, batch_first=True, dtype=dtype, seed=99)
    model.load_state_dict(t_lstm.state_dict())  # torch tensors, as they are
    for k, v in t_lstm.state_dict().items():
        assert np.array_equal(model.state_dict()[k], to_numpy(v)), k
    rng = np.random.default_rng(1)
    x = randn(rng, (3, 5, 3), dtype)
    lengths = torch.tensor([2, 5, 4])  # a torch tensor of lengths is accepted too
    out, (h_n, c_n) = model(x, lengths=lengths)
    with torch.no_grad():
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
        packed = pack_padded_sequence(torch.from_numpy(x), lengths, batch_first=True,
                                      enforce_sorted=False)
        t_out, (t_h, t_c) = t_lstm(packed)
        t_out, _ = pad_packed_sequence(t_out, batch_first=True, total_length=5)
    assert_close(out, to_numpy(t_out), dtype, "out")
    assert_close(h_n, to_numpy(t_h), dtype, "h_n")
    assert_close(c_n, to_numpy(t_c), dtype, "c_n")
    # and the other way: torch loads ours
    t2 = torch.nn.LSTM(3, 4, 2, bidirectional=True, batch_first=True,
                       dtype=torch_dtype(dtype))
    t2.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    for k, v in t2.state_dict().items():
        assert np.array_equal(to_numpy(v), model.state_dict()[k]), k


@pytest.mark.parametrize("kwargs", [dict(num_layers=2, bidirectional=True),
                                    dict(num_layers=2, bias=False)],
                         ids=["L2-bi", "L2-nobias"])
def test_state_dict_layout_equals_torch(kwargs):
    torch = import_torch()
    model = ln.LSTM(3, 5, **kwargs)
    t_sd = torch.nn.LSTM(3, 5, **kwargs).state_dict()
    sd = model.state_dict()
    assert list(sd) == list(t_sd)
    assert [v.shape for v in sd.values()] == [tuple(v.shape) for v in t_sd.values()]
    assert list(model.grads) == list(t_sd)
    assert [g.shape for g in model.grads.values()] == [v.shape for v in sd.values()]
    assert list(model.parameters()) == list(t_sd)


# -------------------------------------------------------------------------------------
# input_grad, chunking, threads
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cfg", ["L2-bi-lengths-hx-dhx", "base"])
def test_input_grad_false(cfg, dtype):
    model, _, case = _make_case(CONFIGS[cfg], dtype)
    with_dx = model_run(model, **case)
    without = model_run(model, **case, input_grad=False)
    assert with_dx["dx"] is not None
    assert without["dx"] is None
    # The parameter and state gradients take the same operations either way: bitwise.
    names = ["dh0", "dc0"] + list(with_dx["grads"])
    assert_all_equal([without["dh0"], without["dc0"], *without["grads"].values()],
                     [with_dx["dh0"], with_dx["dc0"], *with_dx["grads"].values()], names)
    assert any(np.any(g != 0) for g in without["grads"].values())


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("num_layers,with_hx", [(1, False), (2, True), (2, False)])
def test_chunked_equals_whole(num_layers, with_hx, dtype):
    rng = np.random.default_rng(3)
    T, T1, N, I, H, L = 9, 4, 3, 3, 5, num_layers
    model, _ = make_lstm(I, H, L, dtype=dtype, seed=4)
    x = randn(rng, (T, N, I), dtype)
    hx = (randn(rng, (L, N, H), dtype), randn(rng, (L, N, H), dtype)) if with_hx else None
    dout = randn(rng, (T, N, H), dtype)
    dhx = (randn(rng, (L, N, H), dtype), randn(rng, (L, N, H), dtype))
    whole = model_run(model, x, hx, dout=dout, dhx=dhx)

    model.zero_grad()
    out1, state1 = model(x[:T1], hx)
    out2, (h_n, c_n) = model(x[T1:], state1)
    dx2, dstate1 = model.backward(dout[T1:], dhx)
    # The model keeps only the last forward: run chunk 1 again to back-propagate it.
    out1_again, _ = model(x[:T1], hx)
    assert np.array_equal(out1_again, out1)
    dx1, (dh0, dc0) = model.backward(dout[:T1], dstate1)

    assert_close(np.concatenate([out1, out2]), whole["out"], dtype, "out")
    assert_close(h_n, whole["h_n"], dtype, "h_n")
    assert_close(c_n, whole["c_n"], dtype, "c_n")
    assert_close(np.concatenate([dx1, dx2]), whole["dx"], dtype, "dx")
    assert_close(dh0, whole["dh0"], dtype, "dh0")
    assert_close(dc0, whole["dc0"], dtype, "dc0")
    assert_grads_close(model.grads, whole["grads"], dtype)


@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_one_and_two_threads_bitwise_equal(dtype):
    # Checked empirically for float32 and float64: 1 and 2 threads give BITWISE equal
    # results (each output element is computed by the same sequence of operations; the
    # threads only split gate columns / batch rows), so this asserts np.array_equal.
    rng = np.random.default_rng(8)
    T, N, I, H, L = 12, 8, 5, 16, 2
    x = randn(rng, (T, N, I), dtype)
    hx = (randn(rng, (2 * L, N, H), dtype), randn(rng, (2 * L, N, H), dtype))
    lengths = random_lengths(rng, N, T)
    dout = randn(rng, (T, N, 2 * H), dtype)
    dhx = (randn(rng, (2 * L, N, H), dtype), randn(rng, (2 * L, N, H), dtype))
    results = []
    for n_threads in (1, 2):
        model, _ = make_lstm(I, H, L, bidirectional=True, dtype=dtype, seed=5,
                             n_threads=n_threads)
        r = model_run(model, x, hx, lengths, dout, dhx)
        model.eval()
        r["out_eval"] = model(x, hx, lengths)[0]
        results.append(r)
    names = ["out", "h_n", "c_n", "dx", "dh0", "dc0", "out_eval"]
    assert_all_equal([results[0][k] for k in names], [results[1][k] for k in names], names)
    assert_all_equal(list(results[0]["grads"].values()), list(results[1]["grads"].values()),
                     list(results[0]["grads"]))


# Few rows per thread and a W_hh larger than a core's L2 (4 MiB in float32 at H = 512):
# the recurrence splits hidden units between threads, with a barrier per step, instead
# of batch rows (src/_recurrent.pyx, _forward_units).
UNIT_SPLIT = dict(T=6, N=3, I=7, H=512)


@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("n_threads", [2, 3])
def test_hidden_unit_split_matches_reference(dtype, n_threads):
    rng = np.random.default_rng(12)
    T, N, I, H = (UNIT_SPLIT[k] for k in "TNIH")
    model, params = make_lstm(I, H, bidirectional=True, dtype=dtype, seed=2,
                              n_threads=n_threads)
    x = randn(rng, (T, N, I), dtype)
    hx = (randn(rng, (2, N, H), dtype), randn(rng, (2, N, H), dtype))
    lengths = random_lengths(rng, N, T)
    dout = randn(rng, (T, N, 2 * H), dtype)
    assert_results_close(model_run(model, x, hx, lengths, dout),
                         reference_run(model, params, x, hx, lengths, dout), dtype)
    model.eval()
    assert_results_close(model_run(model, x, hx, lengths),
                         reference_run(model, params, x, hx, lengths), dtype)


@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_hidden_unit_split_bitwise_equal_to_one_thread(dtype):
    rng = np.random.default_rng(13)
    T, N, I, H = (UNIT_SPLIT[k] for k in "TNIH")
    x = randn(rng, (T, N, I), dtype)
    lengths = random_lengths(rng, N, T)
    dout = randn(rng, (T, N, H), dtype)
    results = []
    for n_threads in (1, 2):
        model, _ = make_lstm(I, H, dtype=dtype, seed=3, n_threads=n_threads)
        r = model_run(model, x, lengths=lengths, dout=dout)
        model.eval()
        r["out_eval"] = model(x, lengths=lengths)[0]
        results.append(r)
    names = ["out", "h_n", "c_n", "dx", "dh0", "dc0", "out_eval"]
    assert_all_equal([results[0][k] for k in names], [results[1][k] for k in names], names)


def test_more_threads_than_rows():
    rng = np.random.default_rng(0)
    model, params = make_lstm(3, 2, n_threads=4, bidirectional=True)
    x = randn(rng, (4, 1, 3))
    dout = randn(rng, (4, 1, 4))
    assert_results_close(model_run(model, x, dout=dout),
                         reference_run(model, params, x, dout=dout), np.float64)


# -------------------------------------------------------------------------------------
# The model object
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_grads_accumulate_and_zero_grad(dtype):
    model, _, case = _make_case(CONFIGS["L2-bi-lengths-hx-dhx"], dtype)
    once = model_run(model, **case)["grads"]
    model(case["x"], case["hx"], case["lengths"])
    model.backward(case["dout"], case["dhx"])
    assert any(np.any(g != 0) for g in once.values())
    assert_grads_close(model.grads, {k: 2 * g for k, g in once.items()}, dtype)
    grads_before = dict(model.grads)
    model.zero_grad()
    for k, g in model.grads.items():
        assert g is grads_before[k]  # cleared in place
        assert not np.any(g), k


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_eval_mode(dtype):
    model, _, case = _make_case(CONFIGS["L2-bi-lengths-hx-dhx"], dtype)
    args = (case["x"], case["hx"], case["lengths"])
    out, (h_n, c_n) = model(*args)
    assert model.eval() is model
    assert model.training is False
    e_out, (e_h, e_c) = model(*args)
    # Same kernels and operation order: bitwise equal (checked empirically).
    assert_all_equal([e_out, e_h, e_c], [out, h_n, c_n], ["out", "h_n", "c_n"])
    with pytest.raises(RuntimeError, match="eval"):
        model.backward(case["dout"])
    assert model.train() is model
    # switching to eval dropped what the training forward kept
    with pytest.raises(RuntimeError, match="forward"):
        model.backward(case["dout"])
    model(*args)
    dx, _ = model.backward(case["dout"])
    assert dx.shape == case["x"].shape


def test_backward_twice_raises():
    model, _, case = _make_case(CONFIGS["base"], np.float64)
    with pytest.raises(RuntimeError, match="forward"):
        model.backward(case["dout"])  # no forward yet
    model(case["x"])
    model.backward(case["dout"])
    grads = {k: g.copy() for k, g in model.grads.items()}
    with pytest.raises(RuntimeError, match="once"):
        model.backward(case["dout"])
    assert_all_equal(list(model.grads.values()), list(grads.values()))


@pytest.mark.parametrize("model_dtype,input_dtype", [(np.float32, np.float64),
                                                     (np.float64, np.float32)])
def test_other_float_precision_is_converted(model_dtype, input_dtype):
    rng = np.random.default_rng(2)
    model, _ = make_lstm(3, 4, 2, bidirectional=True, dtype=model_dtype)
    x = randn(rng, (5, 2, 3), input_dtype)
    hx = (randn(rng, (4, 2, 4), input_dtype), randn(rng, (4, 2, 4), input_dtype))
    dout = randn(rng, (5, 2, 8), input_dtype)
    got = model_run(model, x, hx, dout=dout, dhx=hx)
    same = model_run(model, x.astype(model_dtype), tuple(s.astype(model_dtype) for s in hx),
                     dout=dout.astype(model_dtype),
                     dhx=tuple(s.astype(model_dtype) for s in hx))
    names = ["out", "h_n", "c_n", "dx", "dh0", "dc0"]
    for k in names:
        assert got[k].dtype == np.dtype(model_dtype), k
    for g in got["grads"].values():
        assert g.dtype == np.dtype(model_dtype)
    assert_all_equal([got[k] for k in names], [same[k] for k in names], names)


def test_equivalent_argument_forms():
    """Non-contiguous x, hx as a list, lengths as a list / int32 / torch-free ints, and
    dhx=None versus zeros, give bitwise the same results."""
    rng = np.random.default_rng(4)
    model, _ = make_lstm(3, 4, 2, bidirectional=True, batch_first=True)
    big = randn(rng, (4, 12, 6))
    x = big[:, ::2, ::2]  # (4, 6, 3), not contiguous
    assert not x.flags.c_contiguous
    hx = (randn(rng, (4, 4, 4)), randn(rng, (4, 4, 4)))
    lengths = np.array([3, 6, 1, 5])
    dout = randn(rng, (4, 6, 8))
    zeros = (np.zeros((4, 4, 4)), np.zeros((4, 4, 4)))
    base = model_run(model, np.ascontiguousarray(x), hx, lengths, dout, zeros)
    names = ["out", "h_n", "c_n", "dx", "dh0", "dc0"]
    for kwargs in (dict(hx=list(hx), lengths=lengths.tolist()),
                   dict(hx=hx, lengths=lengths.astype(np.int32)),
                   dict(hx=hx, lengths=lengths, dhx=None)):
        kwargs = dict(dict(dhx=zeros), **kwargs)
        got = model_run(model, x, dout=dout, **kwargs)
        assert_all_equal([got[k] for k in names], [base[k] for k in names], names)
        assert_all_equal(list(got["grads"].values()), list(base["grads"].values()))


def test_full_lengths_equal_no_lengths():
    rng = np.random.default_rng(6)
    model, _ = make_lstm(3, 4, 2, bidirectional=True)
    x = randn(rng, (5, 3, 3))
    dout = randn(rng, (5, 3, 8))
    a = model_run(model, x, dout=dout)
    b = model_run(model, x, lengths=[5, 5, 5], dout=dout)
    for k in ("out", "h_n", "c_n", "dx", "dh0", "dc0"):
        assert_close(b[k], a[k], np.float64, k)
    assert_grads_close(b["grads"], a["grads"], np.float64)


def test_backward_unaffected_by_modifying_x_after_forward():
    rng = np.random.default_rng(0)
    model, _ = make_lstm(3, 4)
    x = randn(rng, (5, 2, 3))
    dout = randn(rng, (5, 2, 4))
    want = model_run(model, x.copy(), dout=dout)["grads"]
    model.zero_grad()
    model(x)
    x[...] = 0  # e.g. a data loader reusing its buffer
    model.backward(dout)
    assert_grads_close(model.grads, want, np.float64)


def test_state_dict_returns_copies_parameters_are_live():
    rng = np.random.default_rng(0)
    model, _ = make_lstm(3, 4, 2, bidirectional=True)
    x = randn(rng, (4, 2, 3))
    out, _ = model(x)
    sd = model.state_dict()
    for v in sd.values():
        v[...] = 0
    assert all(np.any(v != 0) for v in model.state_dict().values())
    assert np.array_equal(model(x)[0], out)
    # parameters() hands out the live arrays, as documented
    model.parameters()["weight_ih_l0"][...] = 0
    assert not np.any(model.state_dict()["weight_ih_l0"])
    assert not np.array_equal(model(x)[0], out)


def test_load_state_dict_roundtrip_and_converts():
    a = ln.LSTM(3, 4, 2, bidirectional=True, dtype=np.float32, seed=1)
    b = ln.LSTM(3, 4, 2, bidirectional=True, dtype=np.float64, seed=2)
    b.load_state_dict(a.state_dict())  # float32 into a float64 model
    for k, v in b.state_dict().items():
        assert v.dtype == np.float64
        assert np.array_equal(v, a.state_dict()[k].astype(np.float64)), k
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    assert_close(b(x)[0], a(x)[0], np.float32, "out")


def test_seed_determines_parameters():
    same = [ln.LSTM(3, 4, 2, bidirectional=True, seed=7).state_dict() for _ in range(2)]
    other = ln.LSTM(3, 4, 2, bidirectional=True, seed=8).state_dict()
    unseeded = [ln.LSTM(3, 4, 2, bidirectional=True).state_dict() for _ in range(2)]
    for k in same[0]:
        assert np.array_equal(same[0][k], same[1][k]), k
        assert not np.array_equal(same[0][k], other[k]), k
        assert not np.array_equal(unseeded[0][k], unseeded[1][k]), k


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_default_init_within_bound(dtype):
    H = 7
    bound = 1 / np.sqrt(H)
    model = ln.LSTM(5, H, 2, bidirectional=True, dtype=dtype, seed=0)
    values = np.concatenate([p.ravel() for p in model.state_dict().values()])
    for name, p in model.state_dict().items():
        assert p.dtype == np.dtype(dtype), name
        assert np.all(np.abs(p) <= bound), name
    # spread over the whole interval, not a narrower one
    assert values.max() > 0.9 * bound and values.min() < -0.9 * bound
    assert abs(values.mean()) < 0.1 * bound
    for g in model.grads.values():
        assert not np.any(g)


def test_repr_names_the_configuration():
    r = repr(ln.LSTM(3, 4, 2, bidirectional=True, dtype=np.float64))
    assert "LSTM(3, 4" in r and "num_layers=2" in r and "bidirectional=True" in r
    assert "float64" in r


def test_dtype_none_means_the_default_float32():
    assert ln.LSTM(2, 3, dtype=None).dtype == np.float32
    assert ln.LSTMCell(2, 3, dtype=None).dtype == np.float32


@pytest.mark.parametrize("cls,kwargs", [
    (ln.LSTM, dict(input_size=3, hidden_size=4, num_layers=2, bias=False, batch_first=True,
                   bidirectional=True, dtype=np.float64, n_threads=1)),
    (ln.LSTMCell, dict(input_size=3, hidden_size=4, bias=False, dtype=np.float64)),
])
def test_get_config_rebuilds_the_architecture(cls, kwargs):
    import json
    m = cls(**kwargs, seed=0)
    config = json.loads(json.dumps(m.get_config()))
    m2 = cls(**config)
    assert m2.get_config() == m.get_config()
    assert {k: v.shape for k, v in m2.state_dict().items()} == \
        {k: v.shape for k, v in m.state_dict().items()}
    assert m2.dtype == np.float64


@pytest.mark.parametrize("cls", [ln.LSTM, ln.RNN])
def test_training_buffers_kept_between_steps_change_nothing(cls):
    # Backward hands the activation buffers back and the next training forward of the
    # same shapes reuses them (recurrent.py, _take / _give_back): the results of a step
    # must be those of a fresh model, and what the user got from the previous step
    # (outputs, states, gradients) must not change.
    rng = np.random.default_rng(14)
    T, N, I, H, L = 9, 4, 3, 8, 3
    steps = [(randn(rng, (T, N, I)), randn(rng, (T, N, 2 * H))) for _ in range(2)]
    steps.append((randn(rng, (T + 2, N, I)), randn(rng, (T + 2, N, 2 * H))))  # new shape
    model = cls(I, H, L, bidirectional=True, dtype=np.float64, seed=6)
    as_tuple = (lambda st: st if isinstance(st, tuple) else (st,))
    kept = []
    for x, dout in steps:
        model.zero_grad()
        out, state = model(x)
        dx, dstate = model.backward(dout)
        fresh_again = cls(I, H, L, bidirectional=True, dtype=np.float64, seed=6)
        f_out, f_state = fresh_again(x)
        f_dx, f_dstate = fresh_again.backward(dout)
        assert np.array_equal(out, f_out) and np.array_equal(dx, f_dx)
        for k in model.grads:
            assert np.array_equal(model.grads[k], fresh_again.grads[k]), k
        kept.append([(a, a.copy()) for a in (out, dx, *as_tuple(state), *as_tuple(dstate))])
    assert model._spare  # the buffers were kept ...
    for arrays in kept:  # ... and none of them was handed to the user
        for a, copy in arrays:
            assert np.array_equal(a, copy)
    model.eval()
    assert not model._spare  # inference lets them go


def test_inference_chunk_sizes():
    from lstm_native import _recurrent
    # A (B=64, W_ih 2048 x 512): chunks of 1024 rows, 16 steps.
    assert _recurrent.inference_chunk_steps(1000, 64, 2048, 512) == 16
    # F (B=32, W_ih 256 x 16, a small one): 256 rows, 8 steps.
    assert _recurrent.inference_chunk_steps(1000, 32, 256, 16) == 8
    # Never more than T steps, never fewer than one.
    assert _recurrent.inference_chunk_steps(5, 32, 256, 16) == 5
    assert _recurrent.inference_chunk_steps(10, 5000, 2048, 512) == 1


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_inference_in_chunks_equals_training(bidirectional, dtype):
    # Inference would project the input a chunk of steps at a time (_recurrent's
    # INFERENCE_CHUNK_ROWS_SMALL = 256 rows for this small W_ih: 700 steps of 3 sequences
    # make 9 chunks, the last one short), but these weights are small enough for the
    # step GEMM to project each step's input itself (FUSED_MAX_BYTES), in training as in
    # inference: 700 steps through the one-step gates scratch, with lengths, must give
    # training's numbers (the GRU and the layer norm test the chunks).
    from lstm_native import _recurrent
    T, N, H = 700, 3, 5
    assert 1 < _recurrent.inference_chunk_steps(T, N, 4 * H, 2) < T
    m = ln.LSTM(2, H, 2, bidirectional=bidirectional, dtype=dtype, seed=3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, N, 2)).astype(dtype)
    lengths = np.array([T, 341, 690])
    hx = tuple(rng.standard_normal((2 * (2 if bidirectional else 1), N, H)).astype(dtype)
               for _ in range(2))
    out_train, (h_train, c_train) = m(x, hx, lengths=lengths)
    m.eval()
    out_eval, (h_eval, c_eval) = m(x, hx, lengths=lengths)
    assert_close(out_eval, out_train, dtype, "out")
    assert_close(h_eval, h_train, dtype, "h_n")
    assert_close(c_eval, c_train, dtype, "c_n")
    assert np.all(out_eval[341:, 1] == 0)
