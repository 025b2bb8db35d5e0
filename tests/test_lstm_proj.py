"""`lstm_native.LSTM(..., proj_size=P)`, the LSTM with projections (LSTMP): the kernels
against the NumPy reference (every SIMD level, both dtypes, inference chunks), finite
differences, torch.nn.LSTM(proj_size=P) over a grid of options, threads and the
hidden-unit split (its barrier before the projection), the driver's checks, and the
projected LSTM inside `Sequential`, `fit`, stateful TBPTT and a checkpoint."""
from __future__ import annotations

import json

import numpy as np
import pytest

import lstm_native as ln
from conftest import (
    DTYPES,
    SIMD_LEVELS,
    TORCH_RTOL,
    assert_results_close,
    assert_threads_bitwise_equal,
    check_lstm_finite_differences,
    grid_id,
    import_torch,
    lstm_simd_check,
    make_lstm,
    model_run,
    randn,
    random_lengths,
    reference_run,
    run_at_simd_level,
    to_numpy,
    torch_dtype,
    torch_grid,
)
from lstm_native import _recurrent
from lstm_native.layers import LastStep, Linear, Sequential

KEYS = ("out", "h_n", "c_n", "dx", "dh0", "dc0")
# torch says once that oneDNN has no projected LSTM and it runs its own implementation.
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")


def make_case(cfg, dtype, seed=0, n_threads=None):
    """A projected LSTM, its float64 parameters and random inputs for one configuration:
    T, N, I, H, P, L sizes; bi, bf, lengths, hx, dhx, bias flags; batched=False for an
    unbatched (T, I) input."""
    cfg = dict(dict(bi=False, bf=False, lengths=False, hx=False, dhx=False, bias=True,
                    batched=True), **cfg)
    rng = np.random.default_rng(seed)
    T, N, I, H, P, L = (cfg[k] for k in ("T", "N", "I", "H", "P", "L"))
    D = 2 if cfg["bi"] else 1
    model, params = make_lstm(I, H, L, bias=cfg["bias"], batch_first=cfg["bf"],
                              bidirectional=cfg["bi"], proj_size=P, dtype=dtype, seed=seed,
                              n_threads=n_threads)
    if cfg["batched"]:
        x_shape = (N, T, I) if cfg["bf"] else (T, N, I)
        out_shape, h_shape, c_shape = x_shape[:2] + (D * P,), (D * L, N, P), (D * L, N, H)
    else:
        x_shape, out_shape, h_shape, c_shape = (T, I), (T, D * P), (D * L, P), (D * L, H)
    pair = (lambda: (randn(rng, h_shape, dtype), randn(rng, c_shape, dtype)))
    case = dict(x=randn(rng, x_shape, dtype), hx=pair() if cfg["hx"] else None,
                lengths=random_lengths(rng, N, T) if cfg["lengths"] else None,
                dout=randn(rng, out_shape, dtype), dhx=pair() if cfg["dhx"] else None)
    return model, params, case


# -------------------------------------------------------------------------------------
# Kernels against the NumPy reference
# -------------------------------------------------------------------------------------

CONFIGS = {
    "base": dict(T=5, N=3, I=4, H=6, P=3, L=1),
    "L2-bi-lengths-hx-dhx": dict(T=7, N=5, I=3, H=5, P=2, L=2, bi=True, lengths=True,
                                 hx=True, dhx=True),
    "L3-bf-dhx": dict(T=6, N=4, I=5, H=4, P=3, L=3, bf=True, dhx=True),
    "nobias-bi-lengths": dict(T=6, N=4, I=3, H=5, P=4, L=2, bi=True, bias=False,
                              lengths=True, dhx=True),
    "P1": dict(T=6, N=3, I=2, H=2, P=1, L=2, bi=True, lengths=True, hx=True, dhx=True),
    "N1-T1": dict(T=1, N=1, I=3, H=4, P=2, L=2, bi=True, hx=True, dhx=True),
    # H and P not multiples of any vector width or tile: every kernel's edges run.
    "H37-P19": dict(T=5, N=2, I=7, H=37, P=19, L=2, lengths=True, hx=True, dhx=True),
    "unbatched-bi-L2-hx-dhx": dict(T=5, N=1, I=3, H=4, P=3, L=2, bi=True, hx=True, dhx=True,
                                   batched=False),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cfg", list(CONFIGS.values()), ids=list(CONFIGS))
def test_matches_reference(cfg, dtype):
    model, params, case = make_case(cfg, dtype, seed=1)
    assert_results_close(model_run(model, **case), reference_run(model, params, **case), dtype)
    model.eval()
    case = dict(case, dout=None, dhx=None)
    assert_results_close(model_run(model, **case), reference_run(model, params, **case), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_long_sequence_matches_reference(dtype):
    """T = 700: inference projects the input in chunks of steps; the state (and `side`,
    the projection's input) crosses them."""
    cfg = dict(T=700, N=3, I=4, H=9, P=5, L=2, bi=True, lengths=True, hx=True)
    model, params, case = make_case(cfg, dtype, seed=2)
    assert _recurrent.inference_chunk_steps(700, 3, 36, 4) < 700
    model.eval()
    case = dict(case, dout=None)
    assert_results_close(model_run(model, **case), reference_run(model, params, **case), dtype)


def test_padded_steps_output_zeros_and_carry_the_state():
    model, _, case = make_case(dict(T=6, N=3, I=2, H=5, P=3, L=1), np.float64, seed=3)
    lengths = np.array([6, 2, 4])
    out, (h_n, c_n) = model(case["x"], lengths=lengths)
    for n, length in enumerate(lengths):
        assert np.all(out[length:, n] == 0)
        assert np.array_equal(h_n[0, n], out[length - 1, n])
        short, (h_short, c_short) = model(case["x"][:length, n:n + 1])
        assert np.allclose(h_short[0, 0], h_n[0, n], rtol=0, atol=1e-15)
        assert np.allclose(c_short[0, 0], c_n[0, n], rtol=0, atol=1e-15)


_SIMD_CHECK = lstm_simd_check([dict(proj_size=19)])


@pytest.mark.parametrize("level", SIMD_LEVELS)
def test_every_simd_level_matches_the_reference(level):
    result = run_at_simd_level(_SIMD_CHECK, level)
    assert result["worst"]["float64"] <= 1e-10, result
    assert result["worst"]["float32"] <= 1e-5, result


# -------------------------------------------------------------------------------------
# Finite differences (float64)
# -------------------------------------------------------------------------------------

FD_CONFIGS = {
    "L2-bi-lengths": dict(T=4, N=3, I=2, H=3, P=2, L=2, bi=True, lengths=True, hx=True,
                          dhx=True),
    "L1-bf-nobias": dict(T=4, N=2, I=2, H=4, P=1, L=1, bf=True, bias=False, hx=True,
                         dhx=True),
}


@pytest.mark.parametrize("cfg", list(FD_CONFIGS.values()), ids=list(FD_CONFIGS))
def test_kernel_finite_differences(cfg):
    """Every coordinate of every parameter, x, h0 and c0, against central differences of
    sum(out·dout) + sum(h_n·dh_n) + sum(c_n·dc_n)."""
    model, _, case = make_case(cfg, np.float64, seed=11, n_threads=1)
    assert "weight_hr_l0" in check_lstm_finite_differences(model, case)


# -------------------------------------------------------------------------------------
# Against torch.nn.LSTM(proj_size=P): a grid of every option
# -------------------------------------------------------------------------------------

def torch_run(model, x, hx, lengths, dout, dhx):
    """torch.nn.LSTM with the model's options and state_dict: out, states and the
    gradients of sum(out·dout) + sum(h_n·dh_n) + sum(c_n·dc_n), with respect to x, h0, c0
    and every parameter."""
    torch = import_torch()
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    t_lstm = torch.nn.LSTM(model.input_size, model.hidden_size, model.num_layers,
                           bias=model.bias, batch_first=model.batch_first,
                           bidirectional=model.bidirectional, proj_size=model.proj_size,
                           dtype=torch_dtype(model.dtype))
    t_lstm.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    xt = torch.tensor(x, requires_grad=True)
    batched = x.ndim == 3
    if hx is None:
        DL = model.num_directions * model.num_layers
        N = (x.shape[0] if model.batch_first else x.shape[1],) if batched else ()
        hx = tuple(np.zeros((DL, *N, size), x.dtype)
                   for size in (model.proj_size, model.hidden_size))
    h0, c0 = (torch.tensor(s, requires_grad=True) for s in hx)
    if lengths is None:
        out, (h_n, c_n) = t_lstm(xt, (h0, c0))
    else:
        T = x.shape[1] if model.batch_first else x.shape[0]
        packed = pack_padded_sequence(xt, torch.as_tensor(lengths),
                                      batch_first=model.batch_first, enforce_sorted=False)
        out, (h_n, c_n) = t_lstm(packed, (h0, c0))
        out, _ = pad_packed_sequence(out, batch_first=model.batch_first, total_length=T)
    loss = (out * torch.from_numpy(dout)).sum()
    if dhx is not None:
        loss = loss + (h_n * torch.from_numpy(dhx[0])).sum() + \
            (c_n * torch.from_numpy(dhx[1])).sum()
    loss.backward()
    return {"out": to_numpy(out), "h_n": to_numpy(h_n), "c_n": to_numpy(c_n),
            "dx": to_numpy(xt.grad), "dh0": to_numpy(h0.grad), "dc0": to_numpy(c0.grad),
            "grads": {k: to_numpy(p.grad) for k, p in t_lstm.named_parameters()}}


TORCH_GRID = torch_grid(dict(T=6, N=4, I=3, H=5, P=3), dict(T=5, I=3, H=4, P=2), "dhx")


# `python tests/test_lstm_proj.py` prints the worst difference over the grid.


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("cfg", TORCH_GRID, ids=[grid_id(c) for c in TORCH_GRID])
def test_matches_torch(cfg, dtype):
    model, _, case = make_case(cfg, dtype, seed=21)
    got = model_run(model, **case)
    want = torch_run(model, **case)
    assert_results_close(got, want, dtype, rtol=TORCH_RTOL[np.dtype(dtype)])


def test_state_dict_layout_order_and_init_equal_torch():
    torch = import_torch()
    for kwargs in (dict(num_layers=2, bidirectional=True, proj_size=3),
                   dict(num_layers=2, bias=False, proj_size=1)):
        sd = ln.LSTM(4, 6, **kwargs).state_dict()
        t_sd = torch.nn.LSTM(4, 6, **kwargs).state_dict()
        assert list(sd) == list(t_sd)
        assert [v.shape for v in sd.values()] == [tuple(v.shape) for v in t_sd.values()]
    # torch's U(-1/sqrt(H), 1/sqrt(H)) for every parameter, weight_hr too
    params = ln.LSTM(3, 16, 2, bidirectional=True, proj_size=5, seed=0).state_dict()
    assert all(np.all(np.abs(p) <= 0.25) and np.abs(p).max() > 0.2 for p in params.values())


# -------------------------------------------------------------------------------------
# Threads: rows, and the hidden-unit split with its barrier before the projection
# -------------------------------------------------------------------------------------

@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_one_and_two_threads_bitwise_equal(dtype):
    cfg = dict(T=12, N=8, I=5, H=16, P=7, L=2, bi=True, lengths=True, hx=True, dhx=True)

    def run(n_threads):
        model, _, case = make_case(cfg, dtype, seed=8, n_threads=n_threads)
        r = model_run(model, **case)
        model.eval()
        r["out_eval"] = model(case["x"], case["hx"], case["lengths"])[0]
        return r

    assert_threads_bitwise_equal(run, KEYS)


@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("P", [256, 200], ids=["P256", "P200-short-last-block"])
def test_hidden_unit_split(dtype, P):
    """Few rows and a W_hh (4·512 × P) larger than a core's L2: the threads split hidden
    units, wait for all of m_t, then split the projection's P columns (P = 200: the last
    block is short). Against the reference, and bitwise against one thread."""
    cfg = dict(T=4, N=2, I=3, H=512, P=P, L=1, bi=True, lengths=True, hx=True, dhx=True)

    def run(n_threads):
        model, params, case = make_case(cfg, dtype, seed=4, n_threads=n_threads)
        r = model_run(model, **case)
        assert_results_close(r, reference_run(model, params, **case), dtype)
        model.eval()
        r["out_eval"] = model(case["x"], case["hx"], case["lengths"])[0]
        return r

    assert_threads_bitwise_equal(run, KEYS)


# -------------------------------------------------------------------------------------
# The API: arguments, states, errors
# -------------------------------------------------------------------------------------

def test_shapes_config_and_repr():
    m = ln.LSTM(3, 8, 2, True, True, 0.0, True, 5, seed=0)
    x = np.zeros((4, 6, 3))
    out, (h_n, c_n) = m(x)
    assert out.shape == (4, 6, 10) and h_n.shape == (4, 4, 5) and c_n.shape == (4, 4, 8)
    assert m.state_dict()["weight_ih_l1"].shape == (32, 10)
    assert m.state_dict()["weight_hh_l1_reverse"].shape == (32, 5)
    assert m.state_dict()["weight_hr_l1_reverse"].shape == (5, 8)
    assert m.get_config()["proj_size"] == 5
    assert ln.LSTM(**m.get_config()).get_config() == m.get_config()
    assert "proj_size=5" in repr(m) and "proj_size" not in repr(ln.LSTM(3, 8))
    assert "weight_hr_l0" not in ln.LSTM(3, 8).state_dict()


@pytest.mark.parametrize("proj_size,exc,match", [
    (8, ValueError, "proj_size has to be smaller than hidden_size"),
    (9, ValueError, "proj_size has to be smaller than hidden_size"),
    (-1, ValueError, "proj_size should be a positive integer or zero"),
    (2.0, TypeError, "proj_size should be a positive integer or zero"),
    (True, TypeError, "proj_size should be a positive integer or zero"),
    ("2", TypeError, "proj_size should be a positive integer or zero"),
])
def test_bad_proj_size(proj_size, exc, match):
    with pytest.raises(exc, match=match):
        ln.LSTM(3, 8, proj_size=proj_size)


@pytest.mark.parametrize("cls", [ln.GRU, ln.RNN])
def test_only_the_lstm_has_a_projection(cls):
    with pytest.raises(TypeError, match=rf"{cls.__name__}.*proj_size"):
        cls(3, 8, proj_size=2)


def test_state_and_gradient_shape_errors_name_the_sizes():
    m = ln.LSTM(3, 8, proj_size=5, dtype=np.float64)
    x = np.zeros((4, 2, 3))
    with pytest.raises(ValueError, match=r"hx\[0\].*proj_size"):
        m(x, (np.zeros((1, 2, 8)), np.zeros((1, 2, 8))))
    with pytest.raises(ValueError, match=r"hx\[1\].*hidden_size"):
        m(x, (np.zeros((1, 2, 5)), np.zeros((1, 2, 5))))
    out, _ = m(x, (np.zeros((1, 2, 5)), np.zeros((1, 2, 8))))
    with pytest.raises(ValueError, match=r"dout.*D\*proj_size"):
        m.backward(np.zeros((4, 2, 8)))
    with pytest.raises(ValueError, match=r"dhx\[0\].*proj_size"):
        m.backward(np.zeros_like(out), (np.zeros((1, 2, 8)), np.zeros((1, 2, 8))))
    dx, (dh0, dc0) = m.backward(np.ones_like(out))
    assert dh0.shape == (1, 2, 5) and dc0.shape == (1, 2, 8)


def test_driver_refuses_projection_buffers_that_do_not_fit():
    T, B, I, H, P = 2, 3, 2, 4, 3
    G = 4 * H
    x, lengths = np.zeros((T * B, I)), np.full(B, T, np.int64)
    w_ih, w_hh, w_hr = np.zeros((G, I)), np.zeros((G, P)), np.zeros((P, H))

    def forward(cell=_recurrent.Cell.LSTM, w_hh=w_hh, w_hr=w_hr, side=np.zeros((T * B, H)),
                h_cols=P, out_cols=P):
        _recurrent.forward_layer(cell, x, w_ih, w_hh, w_hr, np.zeros(G), None, lengths,
                                 np.zeros((T * B, G)), side, np.zeros(((T + 1) * B, h_cols)),
                                 np.zeros(((T + 1) * B, H)), np.zeros((T * B, out_cols)), 0,
                                 False, True, 1)

    def backward(proj_grad=np.zeros((T * B, P)), dw_hr=np.zeros((P, H))):
        _recurrent.backward_layer(_recurrent.Cell.LSTM, x, w_ih, w_hh, w_hr, lengths,
                                  np.zeros((T * B, G)), np.zeros((T * B, H)), proj_grad,
                                  np.zeros(((T + 1) * B, P)), np.zeros(((T + 1) * B, H)),
                                  np.zeros((T * B, P)), 0, np.zeros((B, P)), np.zeros((B, H)),
                                  np.zeros((G, I)), np.zeros((G, P)), dw_hr, np.zeros(G), None,
                                  None, False, 1)

    forward()
    backward()
    with pytest.raises(ValueError, match="w_hr must have 3 rows"):
        forward(w_hr=np.zeros((2, H)))
    with pytest.raises(ValueError, match="side"):
        forward(side=None)
    with pytest.raises(ValueError, match="h must have 3 columns"):
        forward(h_cols=H)
    with pytest.raises(ValueError, match="out at least"):
        forward(out_cols=P - 1)
    with pytest.raises(ValueError, match="proj_grad"):
        backward(proj_grad=None)
    with pytest.raises(ValueError, match="proj_grad"):
        backward(dw_hr=np.zeros((H, P)))


def test_driver_refuses_a_projection_for_other_cells():
    T, B, I, H, P = 2, 3, 2, 4, 3
    with pytest.raises(ValueError, match="has no projection"):
        _recurrent.forward_layer(_recurrent.Cell.RNN_TANH, np.zeros((T * B, I)),
                                 np.zeros((H, I)), np.zeros((H, P)), np.zeros((P, H)),
                                 np.zeros(H), None, np.full(B, T, np.int64),
                                 np.zeros((T * B, H)), np.zeros((T * B, H)),
                                 np.zeros(((T + 1) * B, P)), None, np.zeros((T * B, P)), 0,
                                 False, True, 1)


# -------------------------------------------------------------------------------------
# Around the layer: chunks, dropout, Sequential, fit, checkpoints
# -------------------------------------------------------------------------------------

def test_chunked_equals_whole():
    """Truncated BPTT over two chunks (the state (h, c) of widths P and H carried, its
    gradient chained back) equals one pass over the whole sequence."""
    cfg = dict(T=9, N=3, I=2, H=6, P=4, L=2, hx=True, dhx=True)
    model, _, case = make_case(cfg, np.float64, seed=5)
    x, hx, dout, dhx = case["x"], case["hx"], case["dout"], case["dhx"]
    whole = model_run(model, x, hx, dout=dout, dhx=dhx)
    model.zero_grad()
    out1, state1 = model(x[:4], hx)
    out2, state2 = model(x[4:], state1)
    dx2, dstate1 = model.backward(dout[4:], dhx)
    model(x[:4], hx)
    dx1, dstate0 = model.backward(dout[:4], dstate1)
    got = {"out": np.concatenate([out1, out2]), "h_n": state2[0], "c_n": state2[1],
           "dx": np.concatenate([dx1, dx2]), "dh0": dstate0[0], "dc0": dstate0[1],
           "grads": model.grads}
    assert_results_close(got, whole, np.float64)


def test_dropout_between_projected_layers():
    """The mask is on the D·P-wide output of inner layers; backward goes through it."""
    model = ln.LSTM(3, 8, 3, dropout=0.5, bidirectional=True, proj_size=2,
                    dtype=np.float64, seed=3)
    x = np.random.default_rng(0).standard_normal((5, 4, 3))
    out, _ = model(x)
    assert out.shape == (5, 4, 4)
    masks = [layer[2] for layer in model._cache["layers"]]
    assert masks[0].shape == (20, 4) and masks[-1] is None
    assert np.isin(masks[0], [0.0, 2.0]).all() and 0 < (masks[0] == 0).mean() < 1
    dx, _ = model.backward(np.ones_like(out))
    assert np.isfinite(dx).all()
    model.eval()
    a, _ = model(x)
    b, _ = model(x)
    assert np.array_equal(a, b)


def test_in_sequential_fit_stateful_and_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 10, 2)).astype(np.float32)
    y = x[:, :, :1].sum(axis=1)
    model = Sequential(ln.LSTM(2, 12, 2, batch_first=True, proj_size=4, seed=1),
                       LastStep(batch_first=True), Linear(4, 1, seed=2))
    history = ln.fit(model, x, y, loss="mse", optimizer=ln.optim.Adam(model, lr=1e-2),
                     epochs=3, batch_size=8, seed=0, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    # Truncated BPTT carries the (h, c) state of widths P and H between chunks.
    seq = Sequential(ln.LSTM(2, 6, batch_first=True, proj_size=3, seed=0), Linear(3, 1, seed=1))
    ln.fit(seq, x, x[..., :1], loss="mse", optimizer=ln.optim.SGD(seq, lr=1e-2), epochs=1,
           batch_size=8, tbptt=4, shuffle=False, verbose=0)
    path = tmp_path / "lstmp.npz"
    ln.save_checkpoint(path, model)
    loaded = ln.load_model(path)
    model.eval()
    loaded.eval()
    assert loaded.layers[0].proj_size == 4
    assert np.array_equal(loaded(x), model(x))
    # Stateful: the (h, c) state of widths P and H carries from one call to the next.
    stateful = Sequential(ln.LSTM(2, 12, proj_size=4, batch_first=True, seed=1),
                          stateful=True).eval()
    whole = Sequential(ln.LSTM(2, 12, proj_size=4, batch_first=True, seed=1)).eval()
    halves = np.concatenate([stateful(x[:, :5]), stateful(x[:, 5:])], axis=1)
    np.testing.assert_allclose(halves, whole(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("proj_size", [8, -1, 2.5])
def test_a_checkpoint_with_an_impossible_projection_is_refused(tmp_path, proj_size):
    import io
    import struct
    import zipfile
    path = tmp_path / "m.npz"
    ln.save_checkpoint(path, ln.LSTM(3, 8, proj_size=5))
    assert ln.load_model(path).proj_size == 5
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    blob = members["__metadata__.npy"]
    meta = json.loads(blob[10 + struct.unpack("<H", blob[8:10])[0]:].decode("utf-8"))
    meta["model"]["config"]["proj_size"] = proj_size
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8))
    members["__metadata__.npy"] = buf.getvalue()
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(ln.CheckpointError, match="bad.npz"):
        ln.load_model(bad)


if __name__ == "__main__":
    # The worst relative difference from torch over the grid, for the docs.
    for dtype in DTYPES:
        worst = 0.0
        for cfg in TORCH_GRID:
            model, _, case = make_case(cfg, dtype, seed=21)
            got, want = model_run(model, **case), torch_run(model, **case)
            pairs = [(got[k], want[k]) for k in KEYS]
            pairs += [(got["grads"][k], want["grads"][k]) for k in want["grads"]]
            worst = max(worst, max(float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))
                                   for a, b in pairs))
        print(f"{np.dtype(dtype).name}: {len(TORCH_GRID)} configurations, worst {worst:.2g}")
