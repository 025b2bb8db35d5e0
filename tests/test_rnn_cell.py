"""`lstm_native.RNNCell`: one step against the NumPy reference (tanh and ReLU), finite
differences, torch.nn.RNNCell and `RNN`, threads, and the behaviour of the cell object."""
from __future__ import annotations

import io
import json
import threading
import zipfile

import numpy as np
import pytest

import lstm_native as ln
from conftest import (
    DTYPES,
    TORCH_RTOL,
    assert_all_equal,
    assert_close,
    assert_grads_close,
    import_torch,
    numerical_grad,
    randn,
    to_numpy,
    torch_dtype,
)
from lstm_native import reference as ref

NONLINEARITIES = ["tanh", "relu"]
NAMES = ["h", "dx", "dh_prev"]


def _make_cell(I, H, *, bias=True, nonlinearity="tanh", dtype=np.float64, seed=0,
               n_threads=None):
    cell = ln.RNNCell(I, H, bias=bias, nonlinearity=nonlinearity, dtype=dtype, seed=seed,
                      n_threads=n_threads)
    params = {k: v.astype(np.float64) for k, v in cell.state_dict().items()}
    return cell, params


def _data(rng, N, I, H, dtype, batched, with_hx):
    x = randn(rng, (N, I) if batched else (I,), dtype)
    shape_s = (N, H) if batched else (H,)
    hx = randn(rng, shape_s, dtype) if with_hx else None
    return x, hx, randn(rng, shape_s, dtype)


def _cell_run(cell, x, hx, dh):
    cell.zero_grad()
    h = cell(x, hx)
    dx, dh_prev = cell.backward(dh)
    return {"h": h, "dx": dx, "dh_prev": dh_prev,
            "grads": {k: v.copy() for k, v in cell.grads.items()}}


def _reference_run(cell, params, x, hx, dh):
    batched = np.ndim(x) == 2
    f64 = (lambda a: np.atleast_2d(np.asarray(a, dtype=np.float64)))
    x2 = f64(x)
    h0 = f64(hx) if hx is not None else np.zeros((x2.shape[0], cell.hidden_size))
    h, cache = ref.rnn_cell_forward(x2, h0, params["weight_ih"], params["weight_hh"],
                                    params.get("bias_ih"), params.get("bias_hh"),
                                    cell.nonlinearity)
    dx, dh_prev, grads = ref.rnn_cell_backward(f64(dh), cache)
    squeeze = (lambda a: a) if batched else (lambda a: a[0])
    return {"h": squeeze(h), "dx": squeeze(dx), "dh_prev": squeeze(dh_prev), "grads": grads}


def _assert_cell_results(got, want, dtype, rtol=None):
    for k in NAMES:
        assert_close(got[k], want[k], dtype, k, rtol=rtol)
    assert_grads_close(got["grads"], want["grads"], dtype, rtol=rtol)


CELL_CASES = {
    "batched-hx": dict(N=4, I=3, H=5, batched=True, with_hx=True),
    "batched-no-hx": dict(N=3, I=2, H=4, batched=True, with_hx=False),
    "nobias": dict(N=2, I=3, H=3, batched=True, with_hx=True, bias=False),
    "N1-H1": dict(N=1, I=1, H=1, batched=True, with_hx=True),
    "H37": dict(N=2, I=5, H=37, batched=True, with_hx=True),
    "unbatched": dict(N=1, I=3, H=4, batched=False, with_hx=True),
    "unbatched-no-hx": dict(N=1, I=3, H=4, batched=False, with_hx=False),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("spec", list(CELL_CASES.values()), ids=list(CELL_CASES))
def test_cell_matches_reference(spec, nonlinearity, dtype):
    spec = dict(dict(bias=True), **spec)
    rng = np.random.default_rng(0)
    cell, params = _make_cell(spec["I"], spec["H"], bias=spec["bias"],
                              nonlinearity=nonlinearity, dtype=dtype)
    x, hx, dh = _data(rng, spec["N"], spec["I"], spec["H"], dtype, spec["batched"],
                      spec["with_hx"])
    got = _cell_run(cell, x, hx, dh)
    for k in NAMES:
        assert got[k].dtype == np.dtype(dtype), k
    assert list(got["grads"]) == list(cell.state_dict())
    _assert_cell_results(got, _reference_run(cell, params, x, hx, dh), dtype)


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("bias", [True, False])
def test_cell_finite_differences(bias, nonlinearity):
    rng = np.random.default_rng(3)
    N, I, H = 3, 4, 5
    cell, _ = _make_cell(I, H, bias=bias, nonlinearity=nonlinearity, seed=1)
    x, h0, dh = _data(rng, N, I, H, np.float64, True, True)

    def loss():
        return np.sum(cell(x, h0) * dh)

    cell.zero_grad()
    loss()
    dx, dh_prev = cell.backward(dh)
    grads = {k: v.copy() for k, v in cell.grads.items()}
    targets = [(p, grads[k], k) for k, p in cell.parameters().items()]
    targets += [(x, dx, "x"), (h0, dh_prev, "h0")]
    for array, analytic, name in targets:
        numeric_grad = numerical_grad(loss, array, 1e-6)
        for idx in np.ndindex(array.shape):  # every coordinate
            numeric = numeric_grad[idx]
            assert abs(numeric - analytic[idx]) <= 1e-7 * max(1.0, abs(numeric)), name


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("batched,bias,with_hx", [(True, True, True), (True, False, True),
                                                  (False, True, True), (False, False, False),
                                                  (True, True, False)],
                         ids=["batched", "nobias", "unbatched", "unbatched-nobias-no-hx",
                              "no-hx"])
def test_cell_matches_torch(batched, bias, with_hx, nonlinearity, dtype):
    torch = import_torch()
    rng = np.random.default_rng(9)
    N, I, H = 4, 3, 6
    cell, _ = _make_cell(I, H, bias=bias, nonlinearity=nonlinearity, dtype=dtype, seed=2)
    t_cell = torch.nn.RNNCell(I, H, bias=bias, nonlinearity=nonlinearity,
                              dtype=torch_dtype(dtype))
    t_cell.load_state_dict({k: torch.from_numpy(v) for k, v in cell.state_dict().items()})
    x, hx, dh = _data(rng, N, I, H, dtype, batched, with_hx)
    got = _cell_run(cell, x, hx, dh)

    xt = torch.tensor(x, requires_grad=True)
    h0 = torch.tensor(np.zeros_like(dh) if hx is None else hx, requires_grad=True)
    h = t_cell(xt, h0)
    (h * torch.from_numpy(dh)).sum().backward()
    want = {"h": to_numpy(h), "dx": to_numpy(xt.grad), "dh_prev": to_numpy(h0.grad),
            "grads": {k: to_numpy(p.grad) for k, p in t_cell.named_parameters()}}
    _assert_cell_results(got, want, dtype, rtol=TORCH_RTOL[np.dtype(dtype)])


def test_cell_state_dict_layout_equals_torch():
    torch = import_torch()
    for bias in (True, False):
        sd = ln.RNNCell(3, 5, bias=bias).state_dict()
        t_sd = torch.nn.RNNCell(3, 5, bias=bias).state_dict()
        assert list(sd) == list(t_sd)
        assert [v.shape for v in sd.values()] == [tuple(v.shape) for v in t_sd.values()]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_cell_steps_equal_rnn(nonlinearity, dtype):
    """The cell stepped over a sequence gives RNN's outputs; one step, its gradients."""
    rng = np.random.default_rng(1)
    T, N, I, H = 6, 3, 4, 5
    cell = ln.RNNCell(I, H, nonlinearity=nonlinearity, dtype=dtype, seed=3)
    rnn = ln.RNN(I, H, nonlinearity=nonlinearity, dtype=dtype, seed=99)
    rnn.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    x = randn(rng, (T, N, I), dtype)
    h0 = randn(rng, (1, N, H), dtype)
    out, h_n = rnn(x, h0)
    h = h0[0]
    for t in range(T):
        h = cell(x[t], h)
        assert_close(h, out[t], dtype, f"h[{t}]")
    assert_close(h, h_n[0], dtype, "h_n")

    dh = randn(rng, (N, H), dtype)
    cell.zero_grad()
    rnn.zero_grad()
    cell(x[0], h0[0])
    dx, dh_prev = cell.backward(dh)
    rnn(x[:1], h0)
    r_dx, r_dh0 = rnn.backward(np.zeros((1, N, H), dtype), dh[None])
    assert_close(dx, r_dx[0], dtype, "dx")
    assert_close(dh_prev, r_dh0[0], dtype, "dh_prev")
    assert_grads_close({k + "_l0": g for k, g in cell.grads.items()}, rnn.grads, dtype)


def test_cell_modes_and_object():
    cell, _ = _make_cell(3, 4, nonlinearity="relu")
    rng = np.random.default_rng(0)
    x, hx, dh = _data(rng, 2, 3, 4, np.float64, True, True)
    with pytest.raises(RuntimeError, match="forward"):
        cell.backward(dh)
    once = _cell_run(cell, x, hx, dh)
    with pytest.raises(RuntimeError, match="once"):
        cell.backward(dh)
    cell.eval()
    assert_all_equal([cell(x, hx)], [once["h"]])
    with pytest.raises(RuntimeError, match="eval"):
        cell.backward(dh)
    assert repr(cell) == "RNNCell(3, 4, nonlinearity='relu', dtype=float64)"
    assert repr(ln.RNNCell(2, 3, False)) == "RNNCell(2, 3, bias=False, dtype=float32)"
    assert ln.RNNCell(**cell.get_config()).get_config() == cell.get_config()
    assert cell.get_config() == {"input_size": 3, "hidden_size": 4, "bias": True,
                                 "nonlinearity": "relu", "init": "torch",
                                 "dtype": "float64", "n_threads": None}
    with pytest.raises(ValueError, match="hx"):
        cell(x, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="x must have shape"):
        cell(np.zeros((2, 5)))
    with pytest.raises(TypeError, match="RNNCell"):
        ln.Sequential(ln.RNNCell(2, 2))
    assert "RNNCell" in ln.__all__


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(bias=1), TypeError, "bias"),
    (dict(bias=None), TypeError, "bias"),
    (dict(nonlinearity="sigmoid"), ValueError, "nonlinearity"),
    (dict(nonlinearity=None), TypeError, "nonlinearity"),
    (dict(input_size=0), ValueError, "input_size"),
    (dict(hidden_size=2**20 + 1), ValueError, "hidden_size"),
    (dict(input_size=True), TypeError, "input_size"),
    (dict(input_size=2**20, hidden_size=2**20), ValueError, "parameters"),
    (dict(n_threads=0), ValueError, "n_threads"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(device="cuda"), ValueError, "device"),
    (dict(dropout=0.0), TypeError, r"RNNCell\.__init__"),
])
def test_cell_refuses_bad_arguments(kwargs, error, match):
    args = dict(input_size=2, hidden_size=3)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        ln.RNNCell(**args)


def test_cell_training_is_one_thread_at_a_time():
    cell, _ = _make_cell(2, 3)
    x = np.ones((1, 2))
    cell._training_lock.acquire()  # as if another thread were in a training call
    try:
        errors = []
        t = threading.Thread(target=lambda: errors.append(
            pytest.raises(RuntimeError, cell, x).value))
        t.start()
        t.join()
        assert "one thread at a time" in str(errors[0])
    finally:
        cell._training_lock.release()
    h = cell(x)
    other = []
    t = threading.Thread(target=lambda: other.append(
        pytest.raises(RuntimeError, cell.backward, np.ones_like(h)).value))
    t.start()
    t.join()
    assert "another thread" in str(other[0])
    cell.backward(np.ones_like(h))


@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_cell_one_and_two_threads_bitwise_equal(nonlinearity, dtype):
    rng = np.random.default_rng(2)
    N, I, H = 8, 5, 16
    x, hx, dh = _data(rng, N, I, H, dtype, True, True)
    runs = []
    for n_threads in (1, 2):
        cell, _ = _make_cell(I, H, nonlinearity=nonlinearity, dtype=dtype, seed=4,
                             n_threads=n_threads)
        runs.append(_cell_run(cell, x, hx, dh))
    assert_all_equal([runs[0][k] for k in NAMES], [runs[1][k] for k in NAMES], NAMES)
    assert_all_equal(list(runs[0]["grads"].values()), list(runs[1]["grads"].values()))


def test_cell_load_state_dict_casts_and_refuses_overflow():
    cell = ln.RNNCell(2, 3, dtype=np.float32, seed=0)
    sd = {k: v.astype(np.float64) for k, v in ln.RNNCell(2, 3, seed=1).state_dict().items()}
    cell.load_state_dict(sd)
    assert all(v.dtype == np.float32 for v in cell.state_dict().values())
    assert np.array_equal(cell.state_dict()["weight_ih"], sd["weight_ih"].astype(np.float32))
    before = cell.state_dict()
    sd["bias_hh"] = np.full(3, 1e300)
    with pytest.raises(ValueError, match="bias_hh"):
        cell.load_state_dict(sd)
    assert_all_equal(list(cell.state_dict().values()), list(before.values()))


def test_cell_checkpoint_round_trip(tmp_path):
    cell = ln.RNNCell(3, 4, nonlinearity="relu", dtype=np.float64, seed=0).eval()
    ln.save_checkpoint(tmp_path / "cell.npz", cell)
    loaded = ln.load_model(tmp_path / "cell.npz").eval()
    assert type(loaded) is ln.RNNCell and loaded.get_config() == cell.get_config()
    x = np.random.default_rng(0).standard_normal((2, 3))
    assert np.array_equal(loaded(x), cell(x))


@pytest.mark.parametrize("key,value,match", [
    ("nonlinearity", "sigmoid", "nonlinearity"),
    ("nonlinearity", None, "nonlinearity"),
    ("bias", 1, "bias"),
    ("hidden_size", 2**20 + 1, "hidden_size"),
    ("input_size", 0, "input_size"),
    ("dtype", "float16", "dtype"),
    ("n_threads", 0, "n_threads"),
    ("device", "cpu", "unknown keys"),
    ("hidden_size", 2**20, "bytes"),  # in bounds, but 2**40 weights: the byte cap
])
def test_checkpoint_config_is_checked_before_building(tmp_path, key, value, match):
    """An untrusted file's RNNCell config goes through checkpoint.py's table (bounds,
    types, the byte cap) before anything is built or allocated."""
    path = tmp_path / "cell.npz"
    ln.save_checkpoint(path, ln.RNNCell(3, 4, seed=0))
    with zipfile.ZipFile(path) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    meta = json.loads(np.load(path)["__metadata__"].tobytes().decode("utf-8"))
    meta["model"]["config"][key] = value
    if key == "hidden_size" and value == 2**20:
        meta["model"]["config"]["input_size"] = 2**20
    text = json.dumps(meta).encode("utf-8")
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as zf:
        for name, data in members.items():
            if name == "__metadata__.npy":
                buf = io.BytesIO()
                np.save(buf, np.frombuffer(text, np.uint8), allow_pickle=False)
                data = buf.getvalue()
            zf.writestr(name, data)
    with pytest.raises(ln.CheckpointError, match=match):
        ln.load_model(bad)
