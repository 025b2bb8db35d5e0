"""`Linear`, `Dropout`, `LastStep` and `Sequential`: finite differences in float64,
torch.nn for the same weights, the recurrent-state carry of stateful mode, and the
behaviour of the objects (modes, names, grads, state_dict, errors)."""
from __future__ import annotations

import numpy as np
import pytest

import lstm_native as ln
from conftest import DTYPES, assert_close, import_torch, numerical_grad, randn, \
    random_lengths, to_numpy, torch_dtype
from lstm_native.layers import Dropout, LastStep, Linear, Sequential

FD_RTOL = 1e-6  # central differences in float64 with EPS = 1e-6


def check_block_gradients(model, x, dout, forward, backward):
    """Analytic parameter and input gradients of sum(dout * forward(x)) against finite
    differences; forward/backward are callables taking (model, x) and (model, dout)."""
    model.train()
    model.zero_grad()
    forward(model, x)
    dx = backward(model, dout)
    grads = {k: v.copy() for k, v in model.grads.items()}
    assert grads, "the model has parameters to check"

    def loss():
        return float(np.sum(dout * forward(model, x)))

    for name, p in model.parameters().items():
        assert_close(grads[name], numerical_grad(loss, p), np.float64, name=name,
                     rtol=FD_RTOL)
    assert_close(dx, numerical_grad(loss, x), np.float64, name="dx", rtol=FD_RTOL)


# -------------------------------------------------------------------------------------
# Linear
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 3, 4)])
def test_linear_finite_differences(shape):
    rng = np.random.default_rng(0)
    lin = Linear(4, 3, dtype=np.float64, seed=1)
    x = randn(rng, shape)
    dout = randn(rng, shape[:-1] + (3,))
    check_block_gradients(lin, x, dout, lambda m, a: m(a),
                          lambda m, d: m.backward(d))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(dtype, bias):
    torch = import_torch()
    rng = np.random.default_rng(0)
    ref = torch.nn.Linear(5, 3, bias=bias, dtype=torch_dtype(dtype))
    lin = Linear(5, 3, bias=bias, dtype=dtype, seed=0)
    lin.load_state_dict(ref.state_dict())
    assert list(lin.state_dict()) == list(ref.state_dict())
    x = randn(rng, (2, 4, 5), dtype)
    dout = randn(rng, (2, 4, 3), dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = ref(xt)
    (yt * torch.tensor(dout)).sum().backward()
    y = lin(x)
    dx = lin.backward(dout)
    assert y.dtype == np.dtype(dtype) and dx.dtype == np.dtype(dtype)
    assert_close(y, to_numpy(yt), dtype, name="out")
    assert_close(dx, to_numpy(xt.grad), dtype, name="dx")
    for name, p in ref.named_parameters():
        assert_close(lin.grads[name], to_numpy(p.grad), dtype, name=name)


def test_linear_init_is_pytorch_uniform_and_seeded():
    lin = Linear(16, 200, seed=3)
    bound = 1 / np.sqrt(16)
    for name in ("weight", "bias"):
        p = lin.parameters()[name]
        assert p.dtype == np.float32
        assert np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.9 * bound  # spread over the whole interval
    assert lin.parameters()["weight"].shape == (200, 16)
    assert lin.parameters()["bias"].shape == (200,)
    same, other = Linear(16, 200, seed=3), Linear(16, 200, seed=4)
    assert np.array_equal(same.parameters()["weight"], lin.parameters()["weight"])
    assert not np.array_equal(other.parameters()["weight"], lin.parameters()["weight"])
    assert list(Linear(2, 3, bias=False).state_dict()) == ["weight"]


def test_linear_backward_adds_and_input_grad_false():
    rng = np.random.default_rng(0)
    lin = Linear(3, 2, dtype=np.float64, seed=0)
    x, dout = randn(rng, (5, 3)), randn(rng, (5, 2))
    lin(x)
    dx = lin.backward(dout)
    once = {k: v.copy() for k, v in lin.grads.items()}
    lin(x)
    assert lin.backward(dout, input_grad=False) is None
    for k in once:
        assert_close(lin.grads[k], 2 * once[k], np.float64, name=k)
    assert_close(dx, dout @ lin.parameters()["weight"], np.float64, name="dx")


def test_linear_keeps_its_own_copy_of_the_input():
    rng = np.random.default_rng(0)
    lin = Linear(3, 2, dtype=np.float64, seed=0)
    x, dout = randn(rng, (4, 3)), randn(rng, (4, 2))
    lin(x)
    lin.backward(dout)
    expected = lin.grads["weight"].copy()
    lin.zero_grad()
    buf = x.copy()
    lin(buf)
    buf[:] = 100.0  # the caller reuses its buffer before backward
    lin.backward(dout)
    assert np.array_equal(lin.grads["weight"], expected)


def test_linear_eval_keeps_nothing_and_backward_raises():
    lin = Linear(3, 2, seed=0).eval()
    y = lin(np.ones((2, 3), np.float32))
    assert y.shape == (2, 2) and lin._cache is None
    with pytest.raises(RuntimeError, match="eval mode"):
        lin.backward(np.ones((2, 2), np.float32))
    lin.train()
    lin(np.ones((2, 3), np.float32))
    lin.backward(np.ones((2, 2), np.float32))
    with pytest.raises(RuntimeError, match="once"):
        lin.backward(np.ones((2, 2), np.float32))


def test_linear_errors():
    lin = Linear(3, 2, seed=0)
    with pytest.raises(ValueError, match="in_features"):
        lin(np.ones((4, 5), np.float32))
    with pytest.raises(TypeError, match="x must be a float32 or float64"):
        lin(np.ones((4, 3), np.int64))
    lin(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="dout must have shape"):
        lin.backward(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="out_features"):
        Linear(3, 0)
    with pytest.raises(TypeError, match="in_features"):
        Linear(2.5, 3)
    assert Linear(3, 2, dtype=np.float64).get_config() == {
        "in_features": 3, "out_features": 2, "bias": True, "dtype": "float64"}


# -------------------------------------------------------------------------------------
# Dropout
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_mask_statistics(dtype):
    p = 0.3
    drop = Dropout(p, seed=0)
    x = np.full((400, 500), 2.0, dtype)
    y = drop(x)
    assert y.dtype == np.dtype(dtype) and y.shape == x.shape
    zeros = y == 0
    assert abs(zeros.mean() - p) < 0.005  # 200 000 Bernoulli draws: sd 0.001
    assert np.allclose(y[~zeros], 2.0 / (1 - p), rtol=1e-6)
    assert abs(y.mean() - 2.0) < 0.02  # inverted dropout keeps the expectation
    assert not np.array_equal(drop(x) == 0, zeros)  # a new mask each call


def test_dropout_eval_is_identity_and_p_zero_keeps_all():
    x = np.random.default_rng(0).standard_normal((3, 4))
    drop = Dropout(0.5, seed=0).eval()
    assert drop(x) is x
    with pytest.raises(RuntimeError, match="eval mode"):
        drop.backward(x)
    assert np.array_equal(Dropout(0.0, seed=0)(x), x)


def test_dropout_seeded_reproducibility():
    x = np.ones((50, 40), np.float32)
    a, b, c = Dropout(0.5, seed=7), Dropout(0.5, seed=7), Dropout(0.5, seed=8)
    first, second = a(x), a(x)
    assert np.array_equal(first, b(x)) and np.array_equal(second, b(x))
    assert not np.array_equal(first, c(x))


def test_dropout_backward_uses_the_forward_mask():
    rng = np.random.default_rng(0)
    x, dout = randn(rng, (6, 5)), randn(rng, (6, 5))
    drop = Dropout(0.4, seed=3)
    y = drop(x)
    dx = drop.backward(dout)
    kept = y != 0
    assert kept.any() and (~kept).any()
    assert np.allclose(dx[kept], dout[kept] / 0.6) and np.all(dx[~kept] == 0)

    def loss():  # a fresh layer with the same seed draws the same mask
        return float(np.sum(dout * Dropout(0.4, seed=3)(x)))

    assert_close(dx, numerical_grad(loss, x), np.float64, name="dx", rtol=FD_RTOL)
    with pytest.raises(RuntimeError, match="once"):
        drop.backward(dout)


@pytest.mark.parametrize("p,exc", [(-0.1, ValueError), (1.0, ValueError), (1.5, ValueError),
                                   (float("nan"), ValueError), ("0.5", TypeError),
                                   (True, TypeError)])
def test_dropout_rejects_bad_p(p, exc):
    with pytest.raises(exc, match="p must be a float in"):
        Dropout(p)


def test_dropout_config_and_dtype_errors():
    assert Dropout(0.25, seed=4).get_config() == {"p": 0.25, "seed": 4}
    with pytest.raises(TypeError, match="seed"):
        Dropout(0.2, seed=1.5)
    with pytest.raises(TypeError, match="x must be a float32 or float64"):
        Dropout(0.2)(np.ones(3, np.int32))


# -------------------------------------------------------------------------------------
# LastStep
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_first", [False, True])
def test_last_step_picks_the_last_valid_step(batch_first):
    rng = np.random.default_rng(0)
    T, N, F = 6, 4, 3
    x_tm = randn(rng, (T, N, F))
    lengths = random_lengths(rng, N, T)
    x = x_tm.transpose(1, 0, 2) if batch_first else x_tm
    out = LastStep(batch_first=batch_first)(x, lengths=lengths)
    expected = np.stack([x_tm[lengths[n] - 1, n] for n in range(N)])
    assert np.array_equal(out, expected)
    assert np.array_equal(LastStep(batch_first=batch_first)(x), x_tm[-1])
    assert np.array_equal(LastStep()(x_tm[:, 0]), x_tm[-1, 0])  # unbatched (T, F)


@pytest.mark.parametrize("batch_first", [False, True])
def test_last_step_bidirectional_is_the_final_states(batch_first):
    """Forward half at the last valid step, reverse half at step 0: h_n of both
    directions of a one-layer bidirectional LSTM."""
    rng = np.random.default_rng(1)
    T, N, I, H = 7, 5, 3, 4
    lstm = ln.LSTM(I, H, bidirectional=True, batch_first=batch_first, dtype=np.float64,
                   seed=0)
    x = randn(rng, (N, T, I) if batch_first else (T, N, I))
    lengths = random_lengths(rng, N, T)
    out, (h_n, _) = lstm(x, lengths=lengths)
    last = LastStep(batch_first=batch_first, bidirectional=True)(out, lengths=lengths)
    assert last.shape == (N, 2 * H)
    assert np.array_equal(last, np.concatenate([h_n[0], h_n[1]], axis=1))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_last_step_backward_scatters(bidirectional, batch_first):
    rng = np.random.default_rng(2)
    T, N, F = 5, 4, 6
    x = randn(rng, (N, T, F) if batch_first else (T, N, F))
    lengths = random_lengths(rng, N, T)
    dout = randn(rng, (N, F))
    layer = LastStep(batch_first=batch_first, bidirectional=bidirectional)
    layer(x, lengths=lengths)
    dx = layer.backward(dout)
    assert dx.shape == x.shape
    assert np.count_nonzero(dx) == N * F  # one step per feature and sequence

    def loss():
        return float(np.sum(dout * layer(x, lengths=lengths)))

    assert_close(dx, numerical_grad(loss, x), np.float64, name="dx", rtol=FD_RTOL)


def test_last_step_errors():
    x = np.zeros((4, 2, 5))
    with pytest.raises(ValueError, match="2H features"):
        LastStep(bidirectional=True)(x)
    with pytest.raises(ValueError, match="lengths must be in"):
        LastStep()(x, lengths=[5, 1])
    with pytest.raises(ValueError, match="x must have shape"):
        LastStep()(np.zeros(3))
    layer = LastStep()
    layer(x)
    with pytest.raises(ValueError, match="dout must have shape"):
        layer.backward(np.zeros((3, 5)))
    assert LastStep(batch_first=True).get_config() == {"batch_first": True,
                                                       "bidirectional": False}


# -------------------------------------------------------------------------------------
# Sequential: gradients and torch
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_sequential_finite_differences(batch_first, bidirectional):
    rng = np.random.default_rng(3)
    T, N, I, H, O = 4, 3, 2, 3, 2
    D = 2 if bidirectional else 1
    model = Sequential(
        # One thread: hundreds of tiny forwards, where a busy machine's OpenMP waits
        # would dominate.
        ln.LSTM(I, H, 2, batch_first=batch_first, bidirectional=bidirectional,
                dtype=np.float64, seed=0, n_threads=1),
        LastStep(batch_first=batch_first, bidirectional=bidirectional),
        Linear(D * H, O, dtype=np.float64, seed=1),
    )
    x = randn(rng, (N, T, I) if batch_first else (T, N, I))
    lengths = random_lengths(rng, N, T)
    dout = randn(rng, (N, O))
    check_block_gradients(model, x, dout, lambda m, a: m(a, lengths=lengths),
                          lambda m, d: m.backward(d, input_grad=True))


def test_sequential_names_are_torch_sequential_keys():
    torch = import_torch()
    ours = Sequential(Linear(3, 4), Linear(4, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours = Sequential(ln.LSTM(3, 4, 2, bidirectional=True), Dropout(0.1),
                      LastStep(bidirectional=True), Linear(8, 1, bias=False))
    theirs = torch.nn.Sequential(torch.nn.LSTM(3, 4, 2, bidirectional=True),
                                 torch.nn.Dropout(0.1), torch.nn.Identity(),
                                 torch.nn.Linear(8, 1, bias=False))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours.grads) == list(ours.state_dict()) == list(ours.parameters())


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_of_linears_matches_torch(dtype):
    torch = import_torch()
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)).to(
        torch_dtype(dtype))
    ours = Sequential(Linear(3, 4, dtype=dtype), Linear(4, 2, dtype=dtype))
    ours.load_state_dict(theirs.state_dict())
    x = randn(np.random.default_rng(0), (5, 3), dtype)
    assert_close(ours(x), to_numpy(theirs(torch.tensor(x))), dtype, name="out")


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_lstm_linear_matches_torch(dtype):
    """Sequential(LSTM(batch_first=True), Linear) on every step, outputs and gradients."""
    torch = import_torch()
    rng = np.random.default_rng(4)
    N, T, I, H, O = 3, 6, 4, 5, 2
    tl = torch.nn.LSTM(I, H, 2, batch_first=True, dtype=torch_dtype(dtype))
    tlin = torch.nn.Linear(H, O, dtype=torch_dtype(dtype))
    container = torch.nn.Sequential(tl, tlin)  # for its parameter names
    model = Sequential(ln.LSTM(I, H, 2, batch_first=True, dtype=dtype),
                       Linear(H, O, dtype=dtype))
    model.load_state_dict(container.state_dict())
    x = randn(rng, (N, T, I), dtype)
    dout = randn(rng, (N, T, O), dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = tlin(tl(xt)[0])
    (yt * torch.tensor(dout)).sum().backward()
    y = model(x)
    dx = model.backward(dout, input_grad=True)
    assert_close(y, to_numpy(yt), dtype, name="out")
    assert_close(dx, to_numpy(xt.grad), dtype, name="dx")
    for name, p in container.named_parameters():
        assert_close(model.grads[name], to_numpy(p.grad), dtype, name=name)


def test_sequential_lstm_last_step_linear_with_lengths_matches_torch():
    """Sequence to one with lengths: torch packs the batch and reads h_n[-1]."""
    torch = import_torch()
    from torch.nn.utils.rnn import pack_padded_sequence

    rng = np.random.default_rng(5)
    N, T, I, H, O = 5, 7, 3, 4, 2
    tl = torch.nn.LSTM(I, H, 2, batch_first=True, dtype=torch.float64)
    tlin = torch.nn.Linear(H, O, dtype=torch.float64)
    model = Sequential(ln.LSTM(I, H, 2, batch_first=True, dtype=np.float64),
                       LastStep(batch_first=True), Linear(H, O, dtype=np.float64))
    model.load_state_dict(torch.nn.Sequential(tl, torch.nn.Identity(), tlin).state_dict())
    x = randn(rng, (N, T, I))
    lengths = random_lengths(rng, N, T)
    dout = randn(rng, (N, O))
    packed = pack_padded_sequence(torch.tensor(x), torch.tensor(lengths), batch_first=True,
                                  enforce_sorted=False)
    yt = tlin(tl(packed)[1][0][-1])
    (yt * torch.tensor(dout)).sum().backward()
    y = model(x, lengths=lengths)
    assert model.backward(dout) is None  # input_grad=False by default
    assert_close(y, to_numpy(yt), np.float64, name="out")
    named = dict(tl.named_parameters(prefix="0"))
    named.update(tlin.named_parameters(prefix="2"))
    for name, p in named.items():
        assert_close(model.grads[name], to_numpy(p.grad), np.float64, name=name)


# -------------------------------------------------------------------------------------
# Sequential: stateful mode
# -------------------------------------------------------------------------------------

def _stateful_pair(batch_first, dtype=np.float64):
    def build(stateful):
        return Sequential(ln.LSTM(3, 4, 2, batch_first=batch_first, dtype=dtype, seed=0),
                          Linear(4, 2, dtype=dtype, seed=1), stateful=stateful)
    return build(False), build(True)


def _chunks(x, sizes, batch_first):
    axis = 1 if batch_first else 0
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_stateful_chunks_equal_one_long_forward(batch_first, training):
    rng = np.random.default_rng(6)
    N, T = 3, 12
    whole, stateful = _stateful_pair(batch_first)
    whole.train(training)
    stateful.train(training)
    x = randn(rng, (N, T, 3) if batch_first else (T, N, 3))
    expected = whole(x)
    axis = 1 if batch_first else 0
    chunks = _chunks(x, [3, 4, 5], batch_first)
    got = np.concatenate([stateful(c) for c in chunks], axis=axis)
    assert_close(got, expected, np.float64, name="out", rtol=1e-12)
    # Not stateful, the chunks start from zeros and differ from the long run.
    fresh = np.concatenate([whole(c) for c in chunks], axis=axis)
    assert not np.allclose(fresh, expected)
    stateful.reset_states()
    assert np.array_equal(stateful(chunks[0]), whole(chunks[0]))


def test_stateful_backward_stops_at_the_chunk_start():
    """The second chunk's gradients are those of a run from the first chunk's final
    state taken as a constant (PyTorch's detached hidden state)."""
    rng = np.random.default_rng(7)
    model = Sequential(ln.LSTM(3, 4, 2, dtype=np.float64, seed=0),
                       Linear(4, 2, dtype=np.float64, seed=1), stateful=True)
    lstm, lin = model[0], model[1]
    x1, x2 = randn(rng, (5, 2, 3)), randn(rng, (4, 2, 3))
    d1, d2 = randn(rng, (5, 2, 2)), randn(rng, (4, 2, 2))
    model(x1)
    model.backward(d1)
    model.zero_grad()
    y2 = model(x2)
    dx2 = model.backward(d2, input_grad=True)
    got = {k: v.copy() for k, v in model.grads.items()}

    model.zero_grad()
    _, state = lstm(x1)  # the state the first chunk ended in
    out, _ = lstm(x2, hx=state)
    assert np.array_equal(lin(out), y2)
    dx, _ = lstm.backward(lin.backward(d2))
    assert_close(dx2, dx, np.float64, name="dx")
    for k, v in model.grads.items():
        assert_close(got[k], v, np.float64, name=k)


def test_stateful_errors():
    model = Sequential(ln.LSTM(3, 4, dtype=np.float64), stateful=True)
    model(np.zeros((5, 2, 3)))
    with pytest.raises(ValueError, match="reset_states"):
        model(np.zeros((5, 3, 3)))
    model.reset_states()
    assert model(np.zeros((5, 3, 3))).shape == (5, 3, 4)
    with pytest.raises(ValueError, match="bidirectional"):
        Sequential(ln.LSTM(3, 4, bidirectional=True), stateful=True)
    plain = Sequential(ln.LSTM(3, 4, bidirectional=True))
    with pytest.raises(ValueError, match="bidirectional"):
        plain.stateful = True
    assert plain.stateful is False


# -------------------------------------------------------------------------------------
# Sequential: the object
# -------------------------------------------------------------------------------------

def _model(dtype=np.float32):
    return Sequential(ln.LSTM(3, 4, dtype=dtype, seed=0), Dropout(0.2, seed=0),
                      LastStep(), Linear(4, 2, dtype=dtype, seed=1))


def test_sequential_train_eval_propagate():
    model = _model()
    assert model.training and all(layer.training for layer in model)
    assert model.eval() is model
    assert not model.training and not any(layer.training for layer in model)
    x = np.ones((5, 2, 3), np.float32)
    assert np.array_equal(model(x), model(x))  # no dropout in eval
    with pytest.raises(RuntimeError, match="eval mode"):
        model.backward(np.ones((2, 2), np.float32))
    model.train()
    assert all(layer.training for layer in model)


def test_sequential_grads_are_the_layers_and_zero_grad_clears_all():
    model = _model(np.float64)
    rng = np.random.default_rng(0)
    model(randn(rng, (5, 2, 3)))
    model.backward(randn(rng, (2, 2)))
    assert all(np.any(g != 0) for g in model.grads.values())
    assert model.grads["3.weight"] is model[3].grads["weight"]
    assert model.parameters()["0.weight_ih_l0"] is model[0].parameters()["weight_ih_l0"]
    model.zero_grad()
    assert all(np.all(g == 0) for layer in model for g in layer.grads.values())


def test_sequential_load_state_dict_reports_names_and_is_atomic():
    model = _model()
    before = model.state_dict()
    good = {k: np.full_like(v, 0.5) for k, v in before.items()}

    bad = dict(good)
    del bad["0.bias_hh_l0"]
    bad["5.weight"] = np.zeros(2, np.float32)
    with pytest.raises(KeyError) as err:
        model.load_state_dict(bad)
    assert "0.bias_hh_l0" in str(err.value) and "5.weight" in str(err.value)

    bad = dict(good)
    bad["3.weight"] = np.zeros((3, 4), np.float32)  # the last layer's shape is wrong
    with pytest.raises(ValueError, match="3.weight"):
        model.load_state_dict(bad)
    for k, v in model.state_dict().items():  # the first layer was not written either
        assert np.array_equal(v, before[k]), k

    model.load_state_dict(good)
    assert all(np.all(v == 0.5) for v in model.state_dict().values())


def test_sequential_container_protocol_and_config():
    model = _model()
    assert len(model) == 4
    assert isinstance(model[0], ln.LSTM) and isinstance(model[-1], Linear)
    head = model[2:]
    assert isinstance(head, Sequential) and len(head) == 2 and head[1] is model[3]
    assert list(head.state_dict()) == ["1.weight", "1.bias"]
    text = repr(model)
    assert text.startswith("Sequential(") and "(0): LSTM(3, 4" in text and "(3): Linear(" in text
    config = model.get_config()
    assert [layer["type"] for layer in config["layers"]] == ["LSTM", "Dropout", "LastStep",
                                                              "Linear"]
    assert config["stateful"] is False
    assert config["layers"][3]["config"] == model[3].get_config()
    from lstm_native.checkpoint import build_module
    rebuilt = Sequential.from_config(config, build_module)
    assert rebuilt.get_config() == config
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == \
        {k: v.shape for k, v in model.state_dict().items()}


def test_nested_sequential_names_and_lengths():
    rng = np.random.default_rng(0)
    inner = Sequential(ln.LSTM(3, 4, dtype=np.float64, seed=0), LastStep())
    model = Sequential(inner, Linear(4, 1, dtype=np.float64, seed=1))
    assert list(model.state_dict())[:2] == ["0.0.weight_ih_l0", "0.0.weight_hh_l0"]
    x = randn(rng, (5, 3, 3))
    lengths = np.array([2, 5, 1])
    expected = model[1](inner(x, lengths=lengths))
    assert np.array_equal(model(x, lengths=lengths), expected)


def test_sequential_errors():
    with pytest.raises(ValueError, match="at least one layer"):
        Sequential()
    with pytest.raises(TypeError, match="layer 1 must be a lstm_native Module"):
        Sequential(Linear(2, 2), lambda x: x)
    with pytest.raises(TypeError, match="LSTMCell"):
        Sequential(ln.LSTMCell(2, 2))
    lin = Linear(2, 2)
    with pytest.raises(ValueError, match="different object"):
        Sequential(lin, lin)
    with pytest.raises(ValueError, match="dtypes"):
        Sequential(Linear(2, 2, dtype=np.float32), Linear(2, 2, dtype=np.float64))
