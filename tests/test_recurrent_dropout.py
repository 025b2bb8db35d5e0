"""`dropout` of LSTM, GRU and RNN: torch's inter-layer dropout, seeded, and resumable.

torch's masks come from its own generator and cannot be reproduced, so the semantics
are checked against a composition of one-layer models with our own masks applied in
between (bitwise), the masks drawn from a copy of the layer's generator.
"""
import warnings

import numpy as np
import pytest

import lstm_native as ln
from lstm_native.module import rng_states

from conftest import DTYPES, assert_all_equal, import_torch, numerical_grad

CLASSES = [ln.LSTM, ln.GRU, ln.RNN]


def _states(out):
    """The state of a forward's result as a list of arrays."""
    s = out[1]
    return list(s) if isinstance(s, tuple) else [s]


def _layer_weights(model, layer):
    """The weights of one layer of `model`, under the names of a one-layer model."""
    return {k.replace(f"_l{layer}", "_l0"): v for k, v in model.state_dict().items()
            if f"_l{layer}" in k}


def _compose(model, x, lengths, masks):
    """`model`'s training forward written as one-layer models and masks: the output of
    each layer but the last times its mask is the next layer's input."""
    cls, cfg = type(model), model.get_config()
    cfg.update(num_layers=1, dropout=0.0, batch_first=False)
    finals, out = [], x
    for layer in range(model.num_layers):
        cfg["input_size"] = model.input_size if layer == 0 else model.num_directions * \
            model.hidden_size
        one = cls(**cfg)
        one.load_state_dict(_layer_weights(model, layer))
        result = one(out, lengths=lengths)
        out = result[0]
        finals.append(_states(result))
        if layer < model.num_layers - 1:
            out = out * masks[layer]
    return out, [np.concatenate(s) for s in zip(*finals)]


def _masks(state, model, shape, dtype):
    """The masks the layer draws from the generator state `state`, as its own rule."""
    g = np.random.Generator(getattr(np.random, state["bit_generator"])())
    g.bit_generator.state = state
    p = model.dropout
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    return [(g.random(shape, dtype=dtype) >= p).astype(dtype) * dtype.type(scale)
            for _ in range(model.num_layers - 1)]


# -- arguments, config, repr ------------------------------------------------------------

@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), float("inf")])
def test_dropout_out_of_range_is_torchs_value_error(cls, p):
    with pytest.raises(ValueError, match=r"^dropout should be a number in range \[0, 1\] "
                                         "representing the probability of an element"):
        cls(2, 3, 2, dropout=p)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("p", [True, "0.5", None, [0.5]])
def test_dropout_of_another_type_is_a_type_error(cls, p):
    with pytest.raises(TypeError, match="dropout should be a number"):
        cls(2, 3, 2, dropout=p)


@pytest.mark.parametrize("cls", CLASSES)
def test_one_layer_with_dropout_warns_as_torch(cls):
    torch = import_torch()
    with pytest.warns(UserWarning) as ours:
        cls(2, 3, dropout=0.3)
    with pytest.warns(UserWarning) as theirs:
        getattr(torch.nn, cls.__name__)(2, 3, dropout=0.3)
    assert str(ours[0].message) == str(theirs[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cls(2, 3, dropout=0.0)
        cls(2, 3, 2, dropout=0.3)


@pytest.mark.parametrize("cls", CLASSES)
def test_dropout_in_config_and_repr(cls):
    model = cls(2, 3, 2, dropout=0.25)
    assert model.get_config()["dropout"] == 0.25
    assert "dropout=0.25" in repr(model)
    assert "dropout" not in repr(cls(2, 3, 2))
    assert cls(**model.get_config()).dropout == 0.25
    assert cls(2, 3, 2, dropout=1).dropout == 1.0


# -- semantics --------------------------------------------------------------------------

@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_zero_is_bitwise_the_old_path(cls, dtype):
    """dropout=0 draws nothing: outputs, states and gradients bitwise those of a layer
    built without the argument, and the generator does not move."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3, 2)).astype(dtype)
    dout = rng.standard_normal((6, 3, 8)).astype(dtype)
    results = []
    for kw in ({}, {"dropout": 0.0}):
        model = cls(2, 4, 3, bidirectional=True, dtype=dtype, seed=5, **kw)
        assert model.rng_state() is None
        out = model(x, lengths=[6, 4, 1])
        dx, _ = model.backward(dout)
        results.append([out[0], *_states(out), dx,
                        *(model.grads[k] for k in sorted(model.grads))])
    assert_all_equal(results[0], results[1])


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_forward_is_one_layer_models_with_masks_between(cls, dtype, bidirectional):
    """Bitwise: each inner layer's whole (T, N, D·H) output times its mask is the next
    layer's input; h_n holds the unmasked states; padded steps stay zero."""
    dtype = np.dtype(dtype)
    T, N, H = 7, 4, 5
    model = cls(3, H, 3, dropout=0.4, bidirectional=bidirectional, dtype=dtype, seed=2,
                n_threads=1)
    x = np.random.default_rng(0).standard_normal((T, N, 3)).astype(dtype)
    lengths = np.array([7, 3, 5, 1])
    masks = _masks(model.rng_state(), model, (T, N, model.num_directions * H), dtype)
    out = model(x, lengths=lengths)
    expected_out, expected_states = _compose(model, x, lengths, masks)
    assert_all_equal([out[0], *_states(out)], [expected_out, *expected_states])
    assert not out[0][~(np.arange(T)[:, None] < lengths)].any()  # padded steps


@pytest.mark.parametrize("cls", CLASSES)
def test_eval_is_the_identity_and_draws_nothing(cls):
    model = cls(2, 3, 3, dropout=0.5, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 2))
    state = model.rng_state()
    reference = cls(2, 3, 3, seed=0).eval()
    assert_all_equal(list(model.eval()(x)[0:1]), list(reference(x)[0:1]))
    assert model.rng_state() == state


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_mask_rate_and_scale(p):
    """The zeroed fraction of an inner layer's output is p (5 sigmas), the rest is
    scaled by 1/(1 - p), and the masks differ from step to step (one draw per element of
    the whole (T, N, D·H) output, not one mask for every step)."""
    model = ln.RNN(4, 50, 2, dropout=p, bidirectional=True, dtype=np.float64, seed=3)
    T, N = 40, 10
    masks = _masks(model.rng_state(), model, (T, N, 100), np.dtype(np.float64))
    rate = float(np.mean(masks[0] == 0))
    n = masks[0].size
    assert abs(rate - p) < 5 * np.sqrt(p * (1 - p) / n)
    assert set(np.unique(masks[0])) == {0.0, 1.0 / (1.0 - p)}
    assert not all(np.array_equal(masks[0][0], masks[0][t]) for t in range(1, T))
    # and the model draws exactly these
    x = np.random.default_rng(0).standard_normal((T, N, 4))
    out = model(x)
    expected, _ = _compose(model, x, None, masks)
    assert np.array_equal(out[0], expected)


@pytest.mark.parametrize("cls", CLASSES)
def test_p_one_gives_zeros_to_the_next_layer(cls):
    """p = 1: the inner outputs are zeros (torch's), so the last layer sees only zeros."""
    model = cls(2, 3, 2, dropout=1.0, dtype=np.float64, seed=0)
    zero_input = cls(2, 3, 2, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 2))
    out = model(x)[0]
    assert np.all(np.isfinite(out))
    one = cls(3, 3, dtype=np.float64)
    one.load_state_dict(_layer_weights(zero_input, 1))
    assert np.array_equal(out, one(np.zeros((5, 2, 3)))[0])


@pytest.mark.parametrize("cls", CLASSES)
def test_the_same_seed_gives_the_same_masks(cls):
    x = np.random.default_rng(0).standard_normal((5, 2, 2))
    a, b, c = (cls(2, 3, 3, dropout=0.5, seed=s) for s in (7, 7, 8))
    first = [m(x)[0] for m in (a, b, c)]
    assert np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], cls(2, 3, 3, seed=7)(x)[0])
    second = a(x)[0]
    assert not np.array_equal(second, first[0])  # the generator moves on
    assert np.array_equal(second, b(x)[0])


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradient_by_finite_differences_with_the_mask_fixed(cls, bidirectional):
    """float64: backward's gradients (weights, x, h0) against central differences of a
    loss whose every evaluation draws the same masks (the generator put back)."""
    model = cls(2, 3, 3, dropout=0.5, bidirectional=bidirectional, dtype=np.float64,
                seed=4)
    rng = np.random.default_rng(1)
    T, N = 4, 2
    x = rng.standard_normal((T, N, 2))
    lengths = [4, 2]
    dout = rng.standard_normal((T, N, model.num_directions * 3))
    start = model.rng_state()

    def loss():
        model.set_rng_state(start)
        return float(np.sum(model(x, lengths=lengths)[0] * dout))

    model.set_rng_state(start)
    model.zero_grad()
    model(x, lengths=lengths)
    dx, _ = model.backward(dout)
    assert model.rng_state() != start
    for name, param in model.parameters().items():
        num = numerical_grad(loss, param)
        np.testing.assert_allclose(model.grads[name], num, rtol=1e-6, atol=1e-8,
                                   err_msg=name)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-8)
    assert not dx[2:, 1].any()  # padded steps


# -- checkpoints and exact resume ------------------------------------------------------

def test_checkpoint_keeps_the_generators(tmp_path):
    model = ln.Sequential(ln.LSTM(1, 4, 2, dropout=0.3, batch_first=True, seed=0),
                          ln.LastStep(batch_first=True), ln.Dropout(0.2, seed=1),
                          ln.Linear(4, 1, seed=2))
    x = np.random.default_rng(0).standard_normal((3, 6, 1))
    model(x)  # the generators move on from their seeds
    ln.save_checkpoint(tmp_path / "m.npz", model)
    saved = rng_states(model)
    assert set(saved) == {"0", "2"}
    restored = ln.load_model(tmp_path / "m.npz")
    assert restored.get_config() == model.get_config()
    assert rng_states(restored) == saved
    assert np.array_equal(restored(x), model(x))  # the same masks next

    fresh = ln.Sequential(ln.LSTM(1, 4, 2, dropout=0.3, batch_first=True, seed=9),
                          ln.LastStep(batch_first=True), ln.Dropout(0.2, seed=9),
                          ln.Linear(4, 1, seed=9))
    ln.load_checkpoint(tmp_path / "m.npz", fresh)
    assert rng_states(fresh) == saved


def test_a_model_without_dropout_writes_no_generator_states(tmp_path):
    import json
    import zipfile
    ln.save_checkpoint(tmp_path / "m.npz", ln.LSTM(1, 4, 2, seed=0))
    with zipfile.ZipFile(tmp_path / "m.npz") as z, z.open("__metadata__.npy") as f:
        meta = json.loads(np.lib.format.read_array(f).tobytes())
    assert "rng_states" not in meta


@pytest.mark.parametrize("variational", [{}, dict(input_dropout=0.2, recurrent_dropout=0.3)],
                         ids=["dropout", "and-variational"])
def test_resume_with_dropout_equals_the_uninterrupted_run(tmp_path, variational):
    """A run with an LSTM(dropout=0.3, num_layers=2) (and variational dropout) and a
    Dropout, interrupted after epoch 2 and resumed from its ModelCheckpoint, ends
    bitwise as the uninterrupted one."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 8, 1))
    y = np.sin(x.sum(axis=1))
    val = (x[:6], y[:6])

    def setup():
        model = ln.Sequential(ln.LSTM(1, 6, 2, dropout=0.3, batch_first=True,
                                      dtype=np.float64, seed=0, n_threads=1, **variational),
                              ln.LastStep(batch_first=True), ln.Dropout(0.25, seed=1),
                              ln.Linear(6, 1, dtype=np.float64, seed=2))
        return model, ln.optim.Adam(model, lr=0.01)

    kw = dict(loss=ln.losses.MSELoss(), batch_size=8, seed=3, verbose=0,
              validation_data=val)
    model, opt = setup()
    full = ln.fit(model, x, y, optimizer=opt, epochs=4, **kw)
    expected = model.state_dict()

    model, opt = setup()
    ln.fit(model, x, y, optimizer=opt, epochs=2,
           callbacks=[ln.ModelCheckpoint(tmp_path / "ckpt-{epoch}.npz")], **kw)
    model, opt = setup()  # a new process: fresh objects, generators at their seeds
    state = ln.resume_from_checkpoint(tmp_path / "ckpt-2.npz", model, opt)
    rest = ln.fit(model, x, y, optimizer=opt, epochs=4,
                  initial_epoch=state["initial_epoch"], **kw)
    assert rest["loss"] == full["loss"][2:]
    got = model.state_dict()
    for k in expected:
        assert np.array_equal(got[k], expected[k]), k

    # Without the generators' states the resumed run would differ: the test can fail.
    model, opt = setup()
    ln.resume_from_checkpoint(tmp_path / "ckpt-2.npz", model, opt)
    ln.module.set_rng_states(model, rng_states(setup()[0]))
    ln.fit(model, x, y, optimizer=opt, epochs=4, initial_epoch=2, **kw)
    assert not all(np.array_equal(model.state_dict()[k], expected[k]) for k in expected)


# -- against torch where its masks do not matter ------------------------------------------

@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("p, training", [(0.3, False), (1.0, True), (0.0, True)])
def test_torch_gives_the_same_numbers_where_the_mask_is_known(cls, p, training):
    """torch's masks cannot be reproduced, but in eval mode there are none and with
    p = 1 every mask is zero: there torch's outputs, states and gradients are ours."""
    torch = import_torch()
    from conftest import assert_close
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3, 2))
    ours = cls(2, 4, 3, dropout=p, bidirectional=True, dtype=np.float64, seed=0)
    theirs = getattr(torch.nn, cls.__name__)(2, 4, 3, dropout=p, bidirectional=True,
                                             dtype=torch.float64)
    ours.load_state_dict(theirs.state_dict())
    ours.train(training)
    theirs.train(training)
    xt = torch.tensor(x, requires_grad=True)
    out_t, state_t = theirs(xt)
    out = ours(x)
    assert_close(out[0], out_t.detach().numpy(), np.float64, "out")
    states_t = list(state_t) if isinstance(state_t, tuple) else [state_t]
    for a, b in zip(_states(out), states_t):
        assert_close(a, b.detach().numpy(), np.float64, "state")
    if training:
        dout = rng.standard_normal(out[0].shape)
        out_t.backward(torch.tensor(dout))
        dx, _ = ours.backward(dout)
        assert_close(dx, xt.grad.numpy(), np.float64, "dx")
        for name, param in theirs.named_parameters():
            assert_close(ours.grads[name], param.grad.numpy(), np.float64, name)


def test_a_failed_resume_leaves_the_generators(tmp_path):
    """resume_from_checkpoint that fails after loading (no scheduler state saved) puts
    the generators back where they were, as the weights and the optimizer."""
    def setup():
        model = ln.Sequential(ln.LSTM(1, 3, 2, dropout=0.3, batch_first=True, seed=0),
                              ln.LastStep(batch_first=True), ln.Dropout(0.2, seed=1),
                              ln.Linear(3, 1, seed=2))
        return model, ln.optim.Adam(model, lr=0.01)

    model, opt = setup()
    model(np.ones((2, 4, 1)))
    ln.save_checkpoint(tmp_path / "c.npz", model, opt, epoch=1, extra={})
    model, opt = setup()
    before = rng_states(model)
    with pytest.raises(ValueError, match="no scheduler state"):
        ln.resume_from_checkpoint(tmp_path / "c.npz", model, opt,
                                  ln.schedules.StepLR(opt, step_size=1))
    assert rng_states(model) == before
    ln.resume_from_checkpoint(tmp_path / "c.npz", model, opt)
    assert rng_states(model) != before
