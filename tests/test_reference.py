"""Checks of the pure-NumPy reference LSTM: finite differences, and PyTorch."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from lstm_native import reference as ref
from conftest import numerical_grad


# ----------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------

def make_params(rng, I, H, num_layers, bidirectional, bias, dtype=np.float64):
    D = 2 if bidirectional else 1
    params = {}
    for layer in range(num_layers):
        in_size = I if layer == 0 else D * H
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            params["weight_ih" + sfx] = rng.uniform(-0.8, 0.8, (4 * H, in_size)).astype(dtype)
            params["weight_hh" + sfx] = rng.uniform(-0.8, 0.8, (4 * H, H)).astype(dtype)
            if bias:
                params["bias_ih" + sfx] = rng.uniform(-0.5, 0.5, 4 * H).astype(dtype)
                params["bias_hh" + sfx] = rng.uniform(-0.5, 0.5, 4 * H).astype(dtype)
    return params


def make_case(seed, T, N, I, H, num_layers, bidirectional, bias, lengths, with_hx):
    rng = np.random.default_rng(seed)
    D = 2 if bidirectional else 1
    x = rng.standard_normal((T, N, I))
    params = make_params(rng, I, H, num_layers, bidirectional, bias)
    h0 = rng.standard_normal((D * num_layers, N, H)) * 0.5 if with_hx else None
    c0 = rng.standard_normal((D * num_layers, N, H)) * 0.5 if with_hx else None
    R1 = rng.standard_normal((T, N, D * H))
    R2 = rng.standard_normal((D * num_layers, N, H))
    R3 = rng.standard_normal((D * num_layers, N, H))
    return x, params, h0, c0, (R1, R2, R3)


def loss_of(x, params, h0, c0, R, lengths, num_layers, bidirectional):
    hx = None if h0 is None else (h0, c0)
    out, (h_n, c_n), _ = ref.lstm_forward(
        x, params, hx, lengths, num_layers=num_layers, bidirectional=bidirectional
    )
    R1, R2, R3 = R
    return np.sum(out * R1) + np.sum(h_n * R2) + np.sum(c_n * R3)


def assert_grad_close(analytic, numeric, name):
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8, err_msg=name)


CONFIGS = [
    # num_layers, bidirectional, bias, lengths, with_hx
    pytest.param(1, False, True, None, True, id="1layer"),
    pytest.param(1, True, True, None, True, id="1layer-bidir"),
    pytest.param(2, False, False, None, True, id="2layers-nobias"),
    pytest.param(2, True, True, [3, 5, 1], True, id="2layers-bidir-lengths"),
    pytest.param(1, True, False, [2, 5, 4], False, id="1layer-bidir-nobias-lengths-nohx"),
    pytest.param(2, False, True, [4, 2, 5], True, id="2layers-lengths"),
]


# ----------------------------------------------------------------------------------
# Finite differences
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("num_layers, bidirectional, bias, lengths, with_hx", CONFIGS)
def test_lstm_backward_matches_finite_differences(num_layers, bidirectional, bias, lengths, with_hx):
    T, N, I, H = 5, 3, 2, 2
    x, params, h0, c0, R = make_case(0, T, N, I, H, num_layers, bidirectional, bias, lengths, with_hx)
    D = 2 if bidirectional else 1
    if h0 is None:  # still differentiate w.r.t. the (zero) initial state
        h0 = np.zeros((D * num_layers, N, H))
        c0 = np.zeros((D * num_layers, N, H))

    out, (h_n, c_n), cache = ref.lstm_forward(
        x, params, (h0, c0), lengths, num_layers=num_layers, bidirectional=bidirectional
    )
    dx, (dh0, dc0), grads = ref.lstm_backward(R[0], cache, (R[1], R[2]))

    assert set(grads) == set(params)
    for k in params:
        assert grads[k].shape == params[k].shape

    def f():
        return loss_of(x, params, h0, c0, R, lengths, num_layers, bidirectional)

    assert_grad_close(dx, numerical_grad(f, x), "x")
    assert_grad_close(dh0, numerical_grad(f, h0), "h0")
    assert_grad_close(dc0, numerical_grad(f, c0), "c0")
    for k in params:
        assert_grad_close(grads[k], numerical_grad(f, params[k]), k)
    # The check is not vacuous: every gradient has non-zero entries.
    for g in [dx, dh0, dc0, *grads.values()]:
        assert np.abs(g).max() > 1e-4


@pytest.mark.parametrize("bias", [True, False])
def test_cell_backward_matches_finite_differences(bias):
    rng = np.random.default_rng(1)
    N, I, H = 3, 3, 2
    x = rng.standard_normal((N, I))
    h = rng.standard_normal((N, H))
    c = rng.standard_normal((N, H))
    w_ih = rng.uniform(-1, 1, (4 * H, I))
    w_hh = rng.uniform(-1, 1, (4 * H, H))
    b_ih = rng.uniform(-1, 1, 4 * H) if bias else None
    b_hh = rng.uniform(-1, 1, 4 * H) if bias else None
    Rh = rng.standard_normal((N, H))
    Rc = rng.standard_normal((N, H))

    def f():
        h1, c1, _ = ref.lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh)
        return np.sum(h1 * Rh) + np.sum(c1 * Rc)

    _, _, cache = ref.lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh)
    dx, dh_prev, dc_prev, grads = ref.lstm_cell_backward(Rh, Rc, cache)

    expected_keys = {"weight_ih", "weight_hh"} | ({"bias_ih", "bias_hh"} if bias else set())
    assert set(grads) == expected_keys
    assert_grad_close(dx, numerical_grad(f, x), "x")
    assert_grad_close(dh_prev, numerical_grad(f, h), "h_prev")
    assert_grad_close(dc_prev, numerical_grad(f, c), "c_prev")
    assert_grad_close(grads["weight_ih"], numerical_grad(f, w_ih), "weight_ih")
    assert_grad_close(grads["weight_hh"], numerical_grad(f, w_hh), "weight_hh")
    if bias:
        assert_grad_close(grads["bias_ih"], numerical_grad(f, b_ih), "bias_ih")
        assert_grad_close(grads["bias_hh"], numerical_grad(f, b_hh), "bias_hh")


# ----------------------------------------------------------------------------------
# Semantics that need no torch
# ----------------------------------------------------------------------------------

def test_cell_equations_by_hand():
    rng = np.random.default_rng(2)
    N, I, H = 2, 3, 2
    x, h, c = rng.standard_normal((N, I)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    w_ih, w_hh = rng.standard_normal((4 * H, I)), rng.standard_normal((4 * H, H))
    b_ih, b_hh = rng.standard_normal(4 * H), rng.standard_normal(4 * H)
    a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    s = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    i, f, g, o = s(a[:, :H]), s(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), s(a[:, 3 * H:])
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    h1, c1, _ = ref.lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh)
    np.testing.assert_allclose(h1, h_new, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(c1, c_new, rtol=1e-13, atol=1e-14)


def test_sigmoid_is_stable_and_correct():
    z = np.array([-1000.0, -30.0, -1.0, 0.0, 2.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = ref.sigmoid(z)
    np.testing.assert_allclose(s[1:5], 1 / (1 + np.exp(-z[1:5])), rtol=1e-15)
    assert s[0] == 0.0 and s[-1] == 1.0


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lengths_equal_running_each_sequence_alone(bidirectional):
    """A padded batch gives, per sequence, what that sequence alone (truncated) gives."""
    T, N, I, H, L = 5, 3, 2, 3, 2
    lengths = [3, 5, 1]
    x, params, h0, c0, R = make_case(3, T, N, I, H, L, bidirectional, True, lengths, True)
    x[3:, 0] = np.nan  # padding must never be read
    x[1:, 2] = 1e300
    out, (h_n, c_n), cache = ref.lstm_forward(
        x, params, (h0, c0), lengths, num_layers=L, bidirectional=bidirectional
    )
    dout = R[0].copy()
    dx, (dh0, dc0), grads = ref.lstm_backward(dout, cache, (R[1], R[2]))
    for n, ln in enumerate(lengths):
        sl = slice(n, n + 1)
        out_n, (h_n_n, c_n_n), cache_n = ref.lstm_forward(
            x[:ln, sl], params, (h0[:, sl], c0[:, sl]), num_layers=L, bidirectional=bidirectional
        )
        np.testing.assert_allclose(out[:ln, sl], out_n, rtol=1e-13, atol=1e-15)
        assert np.all(out[ln:, n] == 0)
        np.testing.assert_allclose(h_n[:, sl], h_n_n, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(c_n[:, sl], c_n_n, rtol=1e-13, atol=1e-15)
        dx_n, (dh0_n, dc0_n), _ = ref.lstm_backward(
            dout[:ln, sl], cache_n, (R[1][:, sl], R[2][:, sl])
        )
        np.testing.assert_allclose(dx[:ln, sl], dx_n, rtol=1e-12, atol=1e-14)
        assert np.all(dx[ln:, n] == 0)
        np.testing.assert_allclose(dh0[:, sl], dh0_n, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dc0[:, sl], dc0_n, rtol=1e-12, atol=1e-14)
    for g in grads.values():
        assert np.all(np.isfinite(g))

    # Gradient in dout at padded positions is ignored.
    dout2 = dout.copy()
    for n, ln in enumerate(lengths):
        dout2[ln:, n] = 123.0
    dx2, (dh02, dc02), grads2 = ref.lstm_backward(dout2, cache, (R[1], R[2]))
    np.testing.assert_array_equal(dx2, dx)
    np.testing.assert_array_equal(dh02, dh0)
    for k in grads:
        np.testing.assert_array_equal(grads2[k], grads[k])


def test_no_hx_means_zero_state_and_no_dhx_means_zero_gradient():
    T, N, I, H = 4, 2, 3, 2
    x, params, _, _, R = make_case(4, T, N, I, H, 1, True, True, None, False)
    zeros = np.zeros((2, N, H))
    out_a, hc_a, cache_a = ref.lstm_forward(x, params, bidirectional=True)
    out_b, hc_b, cache_b = ref.lstm_forward(x, params, (zeros, zeros), bidirectional=True)
    np.testing.assert_array_equal(out_a, out_b)
    np.testing.assert_array_equal(hc_a[0], hc_b[0])
    dx_a, _, g_a = ref.lstm_backward(R[0], cache_a)
    dx_b, _, g_b = ref.lstm_backward(R[0], cache_b, (zeros, zeros))
    np.testing.assert_array_equal(dx_a, dx_b)
    # The last step of the forward direction is the first of the reverse one.
    np.testing.assert_array_equal(out_a[-1, :, :H], hc_a[0][0])
    np.testing.assert_array_equal(out_a[0, :, H:], hc_a[0][1])


def test_float32_computes_in_float32():
    T, N, I, H = 4, 3, 2, 3
    x, params, h0, c0, R = make_case(5, T, N, I, H, 2, True, True, [4, 2, 3], True)
    out64, (h64, c64), cache64 = ref.lstm_forward(x, params, (h0, c0), [4, 2, 3], num_layers=2, bidirectional=True)
    dx64, _, g64 = ref.lstm_backward(R[0], cache64, (R[1], R[2]))
    x32 = x.astype(np.float32)
    out32, (h32, c32), cache32 = ref.lstm_forward(x32, params, (h0, c0), [4, 2, 3], num_layers=2, bidirectional=True)
    dx32, (dh032, _), g32 = ref.lstm_backward(R[0], cache32, (R[1], R[2]))
    for a in [out32, h32, c32, dx32, dh032, *g32.values()]:
        assert a.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)
    for k in g64:
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-4, atol=1e-5)


def test_bad_inputs_are_rejected():
    x, params, _, _, _ = make_case(6, 3, 2, 2, 2, 1, False, True, None, False)
    with pytest.raises(KeyError):  # a layer the stack does not have
        ref.lstm_forward(x, {**params, "weight_hr_l1": np.zeros((1, 2))})
    with pytest.raises(ValueError, match="weight_hh_l0"):  # a projection to 1 needs (8, 1)
        ref.lstm_forward(x, {**params, "weight_hr_l0": np.zeros((1, 2))})
    with pytest.raises(ValueError):
        ref.lstm_forward(x, params, lengths=[0, 3])
    with pytest.raises(ValueError):
        ref.lstm_forward(x, params, lengths=[4, 3])
    with pytest.raises(ValueError):
        ref.lstm_forward(x[:, :, :1], params)


# ----------------------------------------------------------------------------------
# Against PyTorch
# ----------------------------------------------------------------------------------

TORCH_CONFIGS = [
    pytest.param(1, False, True, None, False, id="1layer-nohx"),
    pytest.param(1, True, False, None, True, id="1layer-bidir-nobias"),
    pytest.param(2, False, True, [2, 5, 4, 1], True, id="2layers-lengths"),
    pytest.param(2, True, True, [3, 5, 1, 4], True, id="2layers-bidir-lengths"),
    pytest.param(2, True, False, [5, 2, 5, 3], False, id="2layers-bidir-nobias-lengths-nohx"),
]


@pytest.mark.parametrize("num_layers, bidirectional, bias, lengths, with_hx", TORCH_CONFIGS)
def test_matches_torch(num_layers, bidirectional, bias, lengths, with_hx):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    T, N, I, H = 5, 4, 3, 3
    D = 2 if bidirectional else 1
    x, params, h0, c0, (R1, R2, R3) = make_case(
        7, T, N, I, H, num_layers, bidirectional, bias, lengths, with_hx
    )

    # Reference.
    hx = (h0, c0) if with_hx else None
    out, (h_n, c_n), cache = ref.lstm_forward(
        x, params, hx, lengths, num_layers=num_layers, bidirectional=bidirectional
    )
    dx, (dh0, dc0), grads = ref.lstm_backward(R1, cache, (R2, R3))

    # PyTorch, same parameters.
    lstm = torch.nn.LSTM(I, H, num_layers=num_layers, bias=bias,
                         bidirectional=bidirectional, dtype=torch.float64)
    assert set(dict(lstm.named_parameters())) == set(params)
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            p.copy_(torch.from_numpy(params[name]))
    xt = torch.tensor(x, requires_grad=True)
    if with_hx:
        h0t = torch.tensor(h0, requires_grad=True)
        c0t = torch.tensor(c0, requires_grad=True)
        thx = (h0t, c0t)
    else:
        thx = None
    if lengths is None:
        out_t, (h_n_t, c_n_t) = lstm(xt, thx)
    else:
        packed = pack_padded_sequence(xt, torch.tensor(lengths), enforce_sorted=False)
        out_p, (h_n_t, c_n_t) = lstm(packed, thx)
        out_t, _ = pad_packed_sequence(out_p, total_length=T)
    loss = ((out_t * torch.from_numpy(R1)).sum() + (h_n_t * torch.from_numpy(R2)).sum()
            + (c_n_t * torch.from_numpy(R3)).sum())
    loss.backward()

    tol = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **tol)
    np.testing.assert_allclose(h_n, h_n_t.detach().numpy(), **tol)
    np.testing.assert_allclose(c_n, c_n_t.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), err_msg="x", **tol)
    if with_hx:
        np.testing.assert_allclose(dh0, h0t.grad.numpy(), err_msg="h0", **tol)
        np.testing.assert_allclose(dc0, c0t.grad.numpy(), err_msg="c0", **tol)
    for name, p in lstm.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), err_msg=name, **tol)
    assert out.shape == (T, N, D * H) and h_n.shape == (D * num_layers, N, H)


def test_cell_matches_torch_lstmcell():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    N, I, H = 3, 3, 2
    x, h, c = rng.standard_normal((N, I)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    cell = torch.nn.LSTMCell(I, H, dtype=torch.float64)
    p = {k: v.detach().numpy().copy() for k, v in cell.named_parameters()}
    h1, c1, cache = ref.lstm_cell_forward(x, h, c, p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
    Rh, Rc = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    dx, dh, dc, grads = ref.lstm_cell_backward(Rh, Rc, cache)

    xt, ht, ct = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
    h1t, c1t = cell(xt, (ht, ct))
    ((h1t * torch.from_numpy(Rh)).sum() + (c1t * torch.from_numpy(Rc)).sum()).backward()
    tol = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h1, h1t.detach().numpy(), **tol)
    np.testing.assert_allclose(c1, c1t.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(dh, ht.grad.numpy(), **tol)
    np.testing.assert_allclose(dc, ct.grad.numpy(), **tol)
    for name, prm in cell.named_parameters():
        np.testing.assert_allclose(grads[name], prm.grad.numpy(), err_msg=name, **tol)
