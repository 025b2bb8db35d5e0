"""`lstm_native.LSTMCell`: one step against the NumPy reference, finite differences,
torch.nn.LSTMCell and `LSTM`, and the behaviour of the cell object."""
from __future__ import annotations

import numpy as np
import pytest

import lstm_native as ln
from conftest import (
    DTYPES,
    assert_all_equal,
    assert_close,
    assert_grads_close,
    import_torch,
    numerical_grad,
    randn,
    to_numpy,
    torch_dtype,
)


def _make_cell(I, H, *, bias=True, dtype=np.float64, seed=0):
    cell = ln.LSTMCell(I, H, bias=bias, dtype=dtype, seed=seed)
    params = {k: v.astype(np.float64) for k, v in cell.state_dict().items()}
    return cell, params


def _data(rng, N, I, H, dtype, batched, with_hx, with_dc=True):
    shape_x = (N, I) if batched else (I,)
    shape_s = (N, H) if batched else (H,)
    x = randn(rng, shape_x, dtype)
    hx = (randn(rng, shape_s, dtype), randn(rng, shape_s, dtype)) if with_hx else None
    dh = randn(rng, shape_s, dtype)
    dc = randn(rng, shape_s, dtype) if with_dc else None
    return x, hx, dh, dc


def _cell_run(cell, x, hx, dh, dc):
    cell.zero_grad()
    h, c = cell(x, hx)
    dx, (dh_prev, dc_prev) = cell.backward(dh, dc)
    return {"h": h, "c": c, "dx": dx, "dh_prev": dh_prev, "dc_prev": dc_prev,
            "grads": {k: v.copy() for k, v in cell.grads.items()}}


def _reference_run(params, x, hx, dh, dc, H):
    from lstm_native import reference as ref

    batched = np.ndim(x) == 2
    f64 = (lambda a: np.atleast_2d(np.asarray(a, dtype=np.float64)))
    x2 = f64(x)
    N = x2.shape[0]
    h0, c0 = (f64(hx[0]), f64(hx[1])) if hx is not None else (np.zeros((N, H)),
                                                              np.zeros((N, H)))
    dc = np.zeros((N, H)) if dc is None else f64(dc)
    h, c, cache = ref.lstm_cell_forward(x2, h0, c0, params["weight_ih"], params["weight_hh"],
                                        params.get("bias_ih"), params.get("bias_hh"))
    dx, dh_prev, dc_prev, grads = ref.lstm_cell_backward(f64(dh), dc, cache)
    squeeze = (lambda a: a) if batched else (lambda a: a[0])
    return {"h": squeeze(h), "c": squeeze(c), "dx": squeeze(dx),
            "dh_prev": squeeze(dh_prev), "dc_prev": squeeze(dc_prev), "grads": grads}


def _assert_cell_results(got, want, dtype):
    for k in ("h", "c", "dx", "dh_prev", "dc_prev"):
        assert_close(got[k], want[k], dtype, k)
    assert_grads_close(got["grads"], want["grads"], dtype)


CELL_CASES = {
    "batched-hx": dict(N=4, I=3, H=5, batched=True, with_hx=True),
    "batched-no-hx": dict(N=3, I=2, H=4, batched=True, with_hx=False),
    "nobias": dict(N=2, I=3, H=3, batched=True, with_hx=True, bias=False),
    "N1-H1": dict(N=1, I=1, H=1, batched=True, with_hx=True),
    "H33": dict(N=2, I=5, H=33, batched=True, with_hx=True),
    "unbatched": dict(N=1, I=3, H=4, batched=False, with_hx=True),
    "unbatched-no-hx-dc-none": dict(N=1, I=3, H=4, batched=False, with_hx=False,
                                    with_dc=False),
    "dc-none": dict(N=3, I=3, H=4, batched=True, with_hx=True, with_dc=False),
}


def _case(spec, dtype, seed=0):
    spec = dict(dict(bias=True, with_dc=True), **spec)
    rng = np.random.default_rng(seed)
    cell, params = _make_cell(spec["I"], spec["H"], bias=spec["bias"], dtype=dtype, seed=seed)
    data = _data(rng, spec["N"], spec["I"], spec["H"], dtype, spec["batched"],
                 spec["with_hx"], spec["with_dc"])
    return cell, params, data


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("spec", list(CELL_CASES.values()), ids=list(CELL_CASES))
def test_cell_matches_reference(spec, dtype):
    cell, params, (x, hx, dh, dc) = _case(spec, dtype)
    got = _cell_run(cell, x, hx, dh, dc)
    for k in ("h", "c", "dx", "dh_prev", "dc_prev"):
        assert got[k].dtype == np.dtype(dtype), k
    assert list(got["grads"]) == list(cell.state_dict())
    _assert_cell_results(got, _reference_run(params, x, hx, dh, dc, spec["H"]), dtype)


@pytest.mark.parametrize("bias", [True, False])
def test_cell_finite_differences(bias):
    rng = np.random.default_rng(3)
    N, I, H = 3, 4, 5
    cell, _ = _make_cell(I, H, bias=bias, seed=1)
    x, (h0, c0), dh, dc = _data(rng, N, I, H, np.float64, True, True)

    def loss():
        h, c = cell(x, (h0, c0))
        return np.sum(h * dh) + np.sum(c * dc)

    cell.zero_grad()
    loss()
    dx, (dh_prev, dc_prev) = cell.backward(dh, dc)
    grads = {k: v.copy() for k, v in cell.grads.items()}
    eps, tol = 1e-6, 1e-7
    targets = [(p, grads[k], k) for k, p in cell.parameters().items()]
    targets += [(x, dx, "x"), (h0, dh_prev, "h0"), (c0, dc_prev, "c0")]
    for array, analytic, name in targets:
        numeric_grad = numerical_grad(loss, array, eps)
        for idx in np.ndindex(array.shape):  # every coordinate
            numeric = numeric_grad[idx]
            assert abs(numeric - analytic[idx]) <= tol * max(1.0, abs(numeric)), name


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("batched,bias,with_hx", [(True, True, True), (True, False, True),
                                                  (False, True, True), (True, True, False)],
                         ids=["batched", "nobias", "unbatched", "no-hx"])
def test_cell_matches_torch(batched, bias, with_hx, dtype):
    torch = import_torch()
    rng = np.random.default_rng(9)
    N, I, H = 4, 3, 6
    cell, _ = _make_cell(I, H, bias=bias, dtype=dtype, seed=2)
    t_cell = torch.nn.LSTMCell(I, H, bias=bias, dtype=torch_dtype(dtype))
    t_cell.load_state_dict({k: torch.from_numpy(v) for k, v in cell.state_dict().items()})
    x, hx, dh, dc = _data(rng, N, I, H, dtype, batched, with_hx)
    got = _cell_run(cell, x, hx, dh, dc)

    xt = torch.tensor(x, requires_grad=True)
    if hx is None:
        hx = (np.zeros_like(dh), np.zeros_like(dh))
    h0 = torch.tensor(hx[0], requires_grad=True)
    c0 = torch.tensor(hx[1], requires_grad=True)
    h, c = t_cell(xt, (h0, c0))
    ((h * torch.from_numpy(dh)).sum() + (c * torch.from_numpy(dc)).sum()).backward()
    want = {"h": to_numpy(h), "c": to_numpy(c), "dx": to_numpy(xt.grad),
            "dh_prev": to_numpy(h0.grad), "dc_prev": to_numpy(c0.grad),
            "grads": {k: to_numpy(p.grad) for k, p in t_cell.named_parameters()}}
    _assert_cell_results(got, want, dtype)


def test_cell_state_dict_layout_equals_torch():
    torch = import_torch()
    for bias in (True, False):
        sd = ln.LSTMCell(3, 5, bias=bias).state_dict()
        t_sd = torch.nn.LSTMCell(3, 5, bias=bias).state_dict()
        assert list(sd) == list(t_sd)
        assert [v.shape for v in sd.values()] == [tuple(v.shape) for v in t_sd.values()]


def test_cell_load_state_dict_from_torch():
    torch = import_torch()
    torch.manual_seed(0)
    t_cell = torch.nn.LSTMCell(3, 4)
    cell = ln.LSTMCell(3, 4, seed=5)
    cell.load_state_dict(t_cell.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    h, c = cell(x)
    with torch.no_grad():
        t_h, t_c = t_cell(torch.from_numpy(x))
    assert_close(h, to_numpy(t_h), np.float32, "h")
    assert_close(c, to_numpy(t_c), np.float32, "c")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_cell_steps_equal_lstm(dtype):
    """The cell stepped over a sequence gives LSTM's outputs; one step, its gradients."""
    rng = np.random.default_rng(1)
    T, N, I, H = 6, 3, 4, 5
    cell = ln.LSTMCell(I, H, dtype=dtype, seed=3)
    lstm = ln.LSTM(I, H, dtype=dtype, seed=99)
    lstm.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    x = randn(rng, (T, N, I), dtype)
    h0, c0 = randn(rng, (1, N, H), dtype), randn(rng, (1, N, H), dtype)
    out, (h_n, c_n) = lstm(x, (h0, c0))
    state = (h0[0], c0[0])
    for t in range(T):
        state = cell(x[t], state)
        assert_close(state[0], out[t], dtype, f"h[{t}]")
    assert_close(state[0], h_n[0], dtype, "h_n")
    assert_close(state[1], c_n[0], dtype, "c_n")

    # one step: gradients of the cell equal those of a T = 1 LSTM
    dh, dc = randn(rng, (N, H), dtype), randn(rng, (N, H), dtype)
    cell.zero_grad()
    lstm.zero_grad()
    cell(x[0], (h0[0], c0[0]))
    dx, (dh_prev, dc_prev) = cell.backward(dh, dc)
    lstm(x[:1], (h0, c0))
    l_dx, (l_dh0, l_dc0) = lstm.backward(np.zeros((1, N, H), dtype), (dh[None], dc[None]))
    assert_close(dx, l_dx[0], dtype, "dx")
    assert_close(dh_prev, l_dh0[0], dtype, "dh_prev")
    assert_close(dc_prev, l_dc0[0], dtype, "dc_prev")
    assert_grads_close({k + "_l0": g for k, g in cell.grads.items()}, lstm.grads, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_cell_modes_and_grads(dtype):
    cell, _, (x, hx, dh, dc) = _case(CELL_CASES["batched-hx"], dtype)
    with pytest.raises(RuntimeError, match="forward"):
        cell.backward(dh, dc)  # nothing to back-propagate yet
    once = _cell_run(cell, x, hx, dh, dc)
    with pytest.raises(RuntimeError, match="once"):
        cell.backward(dh, dc)
    # grads accumulate
    cell(x, hx)
    cell.backward(dh, dc)
    assert_grads_close(cell.grads, {k: 2 * g for k, g in once["grads"].items()}, dtype)
    cell.zero_grad()
    assert not any(np.any(g) for g in cell.grads.values())
    # eval: the same step, no backward
    cell.eval()
    h, c = cell(x, hx)
    assert_all_equal([h, c], [once["h"], once["c"]], ["h", "c"])
    with pytest.raises(RuntimeError, match="eval"):
        cell.backward(dh, dc)
    cell.train()
    with pytest.raises(RuntimeError, match="forward"):
        cell.backward(dh, dc)


def test_cell_converts_other_precision():
    rng = np.random.default_rng(0)
    cell = ln.LSTMCell(3, 4, dtype=np.float32, seed=0)
    x, hx, dh, dc = _data(rng, 2, 3, 4, np.float64, True, True)
    got = _cell_run(cell, x, hx, dh, dc)
    same = _cell_run(cell, x.astype(np.float32), tuple(s.astype(np.float32) for s in hx),
                     dh.astype(np.float32), dc.astype(np.float32))
    names = ["h", "c", "dx", "dh_prev", "dc_prev"]
    for k in names:
        assert got[k].dtype == np.float32
    assert_all_equal([got[k] for k in names], [same[k] for k in names], names)


def test_cell_hx_not_modified_and_outputs_fresh():
    rng = np.random.default_rng(0)
    cell = ln.LSTMCell(3, 4, dtype=np.float64, seed=0)
    x, hx, dh, dc = _data(rng, 2, 3, 4, np.float64, True, True)
    saved = [x.copy(), hx[0].copy(), hx[1].copy()]
    h, c = cell(x, hx)
    cell.backward(dh, dc)
    assert_all_equal([x, hx[0], hx[1]], saved)
    h2, c2 = cell(x, (h, c))
    assert not np.array_equal(h2, h)  # the step advanced the state


def test_cell_seed_and_init():
    H = 6
    a = ln.LSTMCell(4, H, seed=1).state_dict()
    b = ln.LSTMCell(4, H, seed=1).state_dict()
    other = ln.LSTMCell(4, H, seed=2).state_dict()
    bound = 1 / np.sqrt(H)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
        assert not np.array_equal(a[k], other[k]), k
        assert np.all(np.abs(a[k]) <= bound), k
    values = np.concatenate([v.ravel() for v in a.values()])
    assert values.max() > 0.8 * bound and values.min() < -0.8 * bound
    assert "LSTMCell(4, 6" in repr(ln.LSTMCell(4, H))


@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_cell_one_and_two_threads_bitwise_equal(dtype):
    # Checked empirically for both dtypes: bitwise equal (threads split the batch rows).
    rng = np.random.default_rng(2)
    N, I, H = 8, 5, 16
    x, hx, dh, dc = _data(rng, N, I, H, dtype, True, True)
    runs = []
    for n_threads in (1, 2):
        cell = ln.LSTMCell(I, H, dtype=dtype, seed=4, n_threads=n_threads)
        runs.append(_cell_run(cell, x, hx, dh, dc))
    names = ["h", "c", "dx", "dh_prev", "dc_prev"]
    assert_all_equal([runs[0][k] for k in names], [runs[1][k] for k in names], names)
    assert_all_equal(list(runs[0]["grads"].values()), list(runs[1]["grads"].values()))


def test_cell_backward_unaffected_by_modifying_x_after_forward():
    rng = np.random.default_rng(0)
    cell, _ = _make_cell(3, 4)
    x = rng.standard_normal((2, 3))
    dh = rng.standard_normal((2, 4))
    cell(x.copy())
    want_dx, _ = cell.backward(dh)
    want = {k: g.copy() for k, g in cell.grads.items()}
    cell.zero_grad()
    cell(x)
    x[...] = 0  # the caller reuses its buffer before backward
    dx, _ = cell.backward(dh)
    assert np.array_equal(dx, want_dx)
    for k in want:
        assert np.array_equal(cell.grads[k], want[k]), k
