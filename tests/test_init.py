"""`lstm_native.init`: torch.nn.init's rules on NumPy arrays — gains, fans, bounds and
spreads against torch's own functions, orthogonality, in place and seeded, and the errors;
and the recurrent layers' `init="keras"` and the LSTM's `unit_forget_bias`."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lstm_native as ln
from conftest import import_torch
from lstm_native import init

SHAPES = [(3, 5), (5, 3), (8, 4, 3), (2, 3, 4, 5), (1, 1)]


@pytest.mark.parametrize("nonlinearity,param", [
    ("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
    ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None)])
def test_gains_equal_torchs(nonlinearity, param):
    torch = import_torch()
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-15)


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_equal_torchs(shape):
    torch = import_torch()
    assert init.fans(np.zeros(shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))


def _bound_and_std(torch_fn, shape, **kwargs):
    """The bound (max |x|) and std torch's function gives over a large draw of `shape`."""
    torch = import_torch()
    torch.manual_seed(0)
    t = torch.empty(shape, dtype=torch.float64)
    torch_fn(t, **kwargs)
    return float(t.abs().max()), float(t.std())


@pytest.mark.parametrize("name,kwargs", [
    ("xavier_uniform_", {}), ("xavier_uniform_", {"gain": 5 / 3}),
    ("xavier_normal_", {}), ("xavier_normal_", {"gain": 2.0}),
    ("kaiming_uniform_", {}), ("kaiming_uniform_", {"a": math.sqrt(5)}),
    ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal_", {}), ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "tanh"}),
])
@pytest.mark.parametrize("shape", [(400, 300), (60, 20, 5)])
def test_distributions_equal_torchs(name, kwargs, shape):
    """The same distribution as torch's function of that name: the spread within 2% over
    100,000+ values, and a uniform's bound within 0.5% from below."""
    torch = import_torch()
    ours = getattr(init, name)(np.empty(shape), **kwargs, rng=0)
    t_max, t_std = _bound_and_std(getattr(torch.nn.init, name), shape, **kwargs)
    assert ours.std() == pytest.approx(t_std, rel=0.02)
    if "uniform" in name:
        fan_in, fan_out = init.fans(ours)
        bound = (kwargs.get("gain", 1.0) * math.sqrt(6 / (fan_in + fan_out))
                 if name.startswith("xavier") else
                 init.calculate_gain(kwargs.get("nonlinearity", "leaky_relu"),
                                     kwargs.get("a", 0))
                 * math.sqrt(3 / (fan_out if kwargs.get("mode") == "fan_out" else fan_in)))
        assert np.abs(ours).max() <= bound and np.abs(ours).max() > 0.995 * bound
        assert t_max <= bound * (1 + 1e-12)
    assert abs(ours.mean()) < 4 * ours.std() / math.sqrt(ours.size)


def test_torchs_linear_init_is_kaiming_uniform_with_a_sqrt5():
    # torch.nn.Linear's weight: kaiming_uniform_(w, a=sqrt(5)), i.e. U(±1/sqrt(fan_in)).
    w = init.kaiming_uniform_(np.empty((64, 256)), a=math.sqrt(5), rng=1)
    assert np.abs(w).max() <= 1 / 16 and np.abs(w).max() > 0.99 / 16


@pytest.mark.parametrize("shape", SHAPES + [(4, 512)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_orthogonal(shape, dtype):
    gain = 1.5
    a = np.empty(shape, dtype)
    out = init.orthogonal_(a, gain, rng=3)
    assert out is a and a.dtype == dtype
    rows = shape[0]
    flat = a.reshape(rows, -1).astype(np.float64) / gain
    small = min(flat.shape)
    product = flat @ flat.T if rows <= flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(product, np.eye(small), atol=1e-5 if dtype == np.float32 else 1e-12)


def test_orthogonal_draws_are_uniform_not_biased_by_qr_signs():
    # With R's diagonal signs applied, Q's diagonal is symmetric about 0; without them
    # LAPACK's QR makes it mostly one sign.
    diag = np.array([np.diag(init.orthogonal_(np.empty((4, 4)), rng=s)) for s in range(400)])
    assert abs(diag.mean()) < 0.1


def test_in_place_seeded_and_dtype_kept():
    a = np.zeros((6, 7), np.float32)
    out = init.xavier_uniform_(a, rng=5)
    assert out is a and a.dtype == np.float32 and np.any(a != 0)
    b = init.xavier_uniform_(np.zeros((6, 7), np.float32), rng=5)
    assert np.array_equal(a, b)
    c = init.xavier_uniform_(np.zeros((6, 7), np.float32), rng=6)
    assert not np.array_equal(a, c)
    gen = np.random.default_rng(0)
    d1, d2 = init.normal_(np.empty(5), rng=gen), init.normal_(np.empty(5), rng=gen)
    assert not np.array_equal(d1, d2)   # one generator, two draws
    assert np.array_equal(init.constant_(np.empty(3), 2.5), [2.5] * 3)
    assert np.array_equal(init.zeros_(np.ones(3)), [0] * 3)
    assert np.array_equal(init.ones_(np.zeros(3)), [1] * 3)
    assert init.glorot_uniform_ is init.xavier_uniform_
    u = init.uniform_(np.empty(1000), -2.0, -1.0, rng=0)
    assert u.min() >= -2 and u.max() < -1


def test_fills_a_layers_live_parameters():
    lstm = ln.LSTM(3, 4, seed=0)
    w = lstm.parameters()["weight_hh_l0"]
    init.orthogonal_(w, rng=0)
    assert np.array_equal(lstm.state_dict()["weight_hh_l0"], w)
    np.testing.assert_allclose(w.T.astype(np.float64) @ w, np.eye(4), atol=1e-6)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: init.fans(np.zeros(3)), ValueError, "fewer than 2 dimensions"),
    (lambda: init.xavier_uniform_(np.zeros(3)), ValueError, "fewer than 2 dimensions"),
    (lambda: init.orthogonal_(np.zeros(3)), ValueError, "2 or more dimensions"),
    (lambda: init.kaiming_uniform_(np.zeros((2, 2)), mode="fan"), ValueError,
     "Mode fan not supported"),
    (lambda: init.kaiming_normal_(np.zeros((2, 2)), nonlinearity="swish"), ValueError,
     "Unsupported nonlinearity swish"),
    (lambda: init.calculate_gain("leaky_relu", "x"), ValueError, "not a valid number"),
    (lambda: init.uniform_(np.zeros(2), 1.0, 0.0), ValueError, "a must not exceed b"),
    (lambda: init.normal_(np.zeros(2), 0.0, -1.0), ValueError, "std must be >= 0"),
    (lambda: init.normal_(np.zeros(2), float("nan")), ValueError, "mean must be a finite"),
    (lambda: init.constant_(np.zeros(2), float("inf")), ValueError, "val must be a finite"),
    (lambda: init.xavier_uniform_(np.zeros((2, 2), np.int64)), TypeError,
     "float32 or float64 numpy array"),
    (lambda: init.xavier_uniform_([[0.0, 1.0]]), TypeError, "got list"),
    (lambda: init.normal_(np.zeros(2), rng=-1), ValueError, "seed must be"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_read_only_array_is_refused_unchanged():
    a = np.zeros((2, 3))
    a.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        init.orthogonal_(a)
    assert not a.any()


def test_zero_element_arrays_are_a_no_op():
    for fn in (init.kaiming_uniform_, init.xavier_normal_, init.orthogonal_):
        assert fn(np.empty((0, 3))).shape == (0, 3)


# -- the layers' init= and unit_forget_bias= -------------------------------------------------

def test_keras_init_of_an_lstm():
    """Glorot-uniform input weights and projections, an orthogonal recurrent kernel over
    all four gates (orthonormal columns: the transpose of Keras' (P, 4H) kernel's rows),
    zero biases; every layer and direction."""
    I, H, P = 5, 8, 3
    m = ln.LSTM(I, H, 2, bidirectional=True, proj_size=P, init="keras", dtype=np.float64,
                seed=0)
    for sfx in ("_l0", "_l0_reverse", "_l1", "_l1_reverse"):
        params = {k[:-len(sfx)]: v for k, v in m.state_dict().items() if k.endswith(sfx)}
        w_ih, w_hh, w_hr = params["weight_ih"], params["weight_hh"], params["weight_hr"]
        in_size = I if sfx.startswith("_l0") else 2 * P
        assert np.abs(w_ih).max() <= math.sqrt(6 / (in_size + 4 * H))
        assert np.abs(w_hr).max() <= math.sqrt(6 / (H + P))
        np.testing.assert_allclose(w_hh.T @ w_hh, np.eye(P), atol=1e-12)
        assert not params["bias_ih"].any() and not params["bias_hh"].any()
    assert m.get_config()["init"] == "keras" and "init='keras'" in repr(m)
    assert "init" not in repr(ln.LSTM(2, 3))


@pytest.mark.parametrize("cls,gates", [(ln.GRU, 3), (ln.RNN, 1)])
def test_keras_init_of_the_gru_and_the_rnn(cls, gates):
    m = cls(4, 6, init="keras", dtype=np.float64, seed=1)
    sd = m.state_dict()
    assert np.abs(sd["weight_ih_l0"]).max() <= math.sqrt(6 / (4 + gates * 6))
    np.testing.assert_allclose(sd["weight_hh_l0"].T @ sd["weight_hh_l0"], np.eye(6),
                               atol=1e-12)
    assert not sd["bias_ih_l0"].any() and not sd["bias_hh_l0"].any()
    assert cls(**m.get_config()).get_config() == m.get_config()


@pytest.mark.parametrize("init_name", ["torch", "keras"])
def test_unit_forget_bias(init_name, tmp_path):
    H = 4
    plain = ln.LSTM(3, H, 2, bidirectional=True, init=init_name, seed=7)
    forget = ln.LSTM(3, H, 2, bidirectional=True, init=init_name, unit_forget_bias=True,
                     seed=7)
    for name, value in forget.state_dict().items():
        if name.startswith("bias"):
            gate = value[H:2 * H]
            assert np.all(gate == (1 if name.startswith("bias_ih") else 0)), name
            # the other blocks are the same draw as without the option
            assert np.array_equal(np.delete(value, np.s_[H:2 * H]),
                                  np.delete(plain.state_dict()[name], np.s_[H:2 * H]))
        else:
            assert np.array_equal(value, plain.state_dict()[name]), name
    assert forget.get_config()["unit_forget_bias"] is True
    assert "unit_forget_bias=True" in repr(forget)
    ln.save_checkpoint(tmp_path / "m.npz", forget)
    assert ln.load_model(tmp_path / "m.npz").get_config() == forget.get_config()


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(init="glorot"), ValueError, "init must be 'torch'"),
    (dict(init=None), ValueError, "init must be 'torch'"),
    (dict(unit_forget_bias=True, bias=False), ValueError, "needs bias=True"),
    (dict(unit_forget_bias=1), TypeError, "unit_forget_bias"),
])
def test_layer_init_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ln.LSTM(3, 4, **kwargs)


@pytest.mark.parametrize("cls", [ln.GRU, ln.RNN])
def test_unit_forget_bias_is_the_lstms(cls):
    with pytest.raises(TypeError, match=rf"{cls.__name__}.*unit_forget_bias"):
        cls(3, 4, unit_forget_bias=True)


@pytest.mark.parametrize("cls,gates", [(ln.LSTMCell, 4), (ln.GRUCell, 3), (ln.RNNCell, 1)])
def test_the_cells_take_init_as_their_layers(cls, gates, tmp_path):
    """A cell's init= draws what its layer's does for layer 0 (the same names, shapes
    and order of draws), and round-trips through get_config and a checkpoint."""
    cell = cls(4, 6, init="keras", dtype=np.float64, seed=2)
    layer = getattr(ln, cls.__name__[:-4])(4, 6, init="keras", dtype=np.float64, seed=2)
    for name, value in cell.state_dict().items():
        assert np.array_equal(value, layer.state_dict()[name + "_l0"]), name
    np.testing.assert_allclose(cell.state_dict()["weight_hh"].T @ cell.state_dict()["weight_hh"],
                               np.eye(6), atol=1e-12)
    assert "init='keras'" in repr(cell) and cls(**cell.get_config()).get_config() == \
        cell.get_config()
    ln.save_checkpoint(tmp_path / "c.npz", cell)
    assert ln.load_model(tmp_path / "c.npz").get_config()["init"] == "keras"
    with pytest.raises(ValueError, match="init must be"):
        cls(4, 6, init="he")


def test_lstm_cell_unit_forget_bias():
    cell = ln.LSTMCell(3, 5, unit_forget_bias=True, seed=0)
    layer = ln.LSTM(3, 5, unit_forget_bias=True, seed=0)
    for name, value in cell.state_dict().items():
        assert np.array_equal(value, layer.state_dict()[name + "_l0"]), name
    b = cell.state_dict()
    assert np.all(b["bias_ih"][5:10] + b["bias_hh"][5:10] == 1)
    assert "unit_forget_bias=True" in repr(cell)
    with pytest.raises(ValueError, match="needs bias=True"):
        ln.LSTMCell(3, 5, bias=False, unit_forget_bias=True)
