"""`input_dropout` and `recurrent_dropout` of LSTM, GRU and RNN: variational dropout (Gal
& Ghahramani 2016), one mask per sequence, layer and direction held over all steps.

The kernels against the NumPy reference given the layer's own masks (every cell, both
dtypes, directions, lengths, with the LSTM's projection and variants, threads and the
hidden-unit split), finite differences with the masks held, what the masks are (rate,
scale, the same at every step, eval mode) and stateful chunks holding them. The exact
resume is test_recurrent_dropout's, with these masks too."""
from __future__ import annotations

import numpy as np
import pytest

import lstm_native as ln
from conftest import (
    DTYPES,
    assert_all_equal,
    assert_close,
    check_finite_differences,
    randn,
    random_lengths,
)
from lstm_native import reference as ref

# cls, its constructor options, the reference's forward and backward and their options
CELLS = {
    "lstm": (ln.LSTM, {}),
    "lstm-proj-variants": (ln.LSTM, dict(proj_size=3, peepholes=True, input_forget=True)),
    "gru": (ln.GRU, {}),
    "gru-reset-before": (ln.GRU, dict(reset_after=False)),
    "rnn-tanh": (ln.RNN, {}),
    "rnn-relu": (ln.RNN, dict(nonlinearity="relu")),
}


def _masks(model):
    """The masks of the model's last training forward, as the reference takes them:
    (input masks, recurrent masks), D·L each, or None where that dropout is off."""
    held = [model._held_masks[idx] for idx in range(model.num_layers * model.num_directions)]
    return tuple(None if held[0][k] is None else [m[k] for m in held] for k in (0, 1))


def _reference(model, x, lengths, hx, dout, dhx, masks):
    """The reference's forward and backward of `model` (time-major x) with `masks`:
    {"out", "states", "dx", "d_states", "grads"} in float64."""
    params = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    kw = dict(num_layers=model.num_layers, bidirectional=model.bidirectional,
              input_masks=masks[0], recurrent_masks=masks[1])
    x = x.astype(np.float64)
    if isinstance(model, ln.LSTM):
        out, states, cache = ref.lstm_forward(x, params, hx, lengths, clip=model.clip,
                                              input_forget=model.input_forget, **kw)
        dx, d_states, grads = ref.lstm_backward(dout, cache, dhx)
    elif isinstance(model, ln.GRU):
        out, states, cache = ref.gru_forward(x, params, hx, lengths,
                                             reset_after=model.reset_after, **kw)
        dx, d_states, grads = ref.gru_backward(dout, cache, dhx)
    else:
        out, states, cache = ref.rnn_forward(x, params, hx, lengths,
                                             nonlinearity=model.nonlinearity, **kw)
        dx, d_states, grads = ref.rnn_backward(dout, cache, dhx)
    return dict(out=out, states=states, dx=dx, d_states=d_states, grads=grads)


def _run(model, x, lengths, hx, dout, dhx):
    model.zero_grad()
    out, states = model(x, hx, lengths)
    dx, d_states = model.backward(dout, dhx)
    return dict(out=out, states=states, dx=dx, d_states=d_states,
                grads={k: v.copy() for k, v in model.grads.items()})


def _case(name, dtype, p_in=0.3, p_rec=0.4, seed=0, T=6, N=5, I=4, H=5, L=2, bi=True,
          n_threads=None, **extra):
    cls, options = CELLS[name]
    rng = np.random.default_rng(seed)
    model = cls(I, H, L, bidirectional=bi, dtype=dtype, seed=seed, n_threads=n_threads,
                input_dropout=p_in, recurrent_dropout=p_rec, **options, **extra)
    D = 2 if bi else 1
    P = getattr(model, "proj_size", 0) or H
    sizes = model._state_sizes()
    hx = tuple(randn(rng, (D * L, N, size), dtype) for size in sizes)
    dhx = tuple(randn(rng, (D * L, N, size), dtype) for size in sizes)
    if len(sizes) == 1:
        hx, dhx = hx[0], dhx[0]
    return model, dict(x=randn(rng, (T, N, I), dtype), lengths=random_lengths(rng, N, T),
                       hx=hx, dout=randn(rng, (T, N, D * P), dtype), dhx=dhx)


def _assert_matches(got, want, dtype):
    for key in ("out", "dx"):
        assert_close(got[key], want[key], dtype, name=key)
    for key in ("states", "d_states"):
        pairs = zip(got[key], want[key]) if isinstance(got[key], tuple) else \
            [(got[key], want[key])]
        for a, b in pairs:
            assert_close(a, b, dtype, name=key)
    assert set(got["grads"]) == set(want["grads"])
    for k in want["grads"]:
        assert_close(got["grads"][k], want["grads"][k], dtype, name=k)


# -------------------------------------------------------------------------------------
# Kernels against the reference
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("p_in,p_rec", [(0.3, 0.4), (0.5, 0.0), (0.0, 0.5)],
                         ids=["both", "input", "recurrent"])
def test_matches_the_reference_with_the_layers_masks(name, dtype, p_in, p_rec):
    model, case = _case(name, dtype, p_in, p_rec, dropout=0.0)
    got = _run(model, **case)
    masks = _masks(model)
    assert (masks[0] is None) == (p_in == 0) and (masks[1] is None) == (p_rec == 0)
    _assert_matches(got, _reference(model, **case, masks=masks), dtype)


@pytest.mark.parametrize("name", ["lstm", "gru-reset-before"])
def test_masks_combine_with_the_dropout_between_layers(name):
    """With torch's `dropout` too: the reference of the first layer, its output times
    the inter-layer mask, then the reference of the second."""
    model, case = _case(name, np.float64, L=2, bi=False, dropout=0.5)
    got = _run(model, **case)
    masks = _masks(model)
    inter = model._spare.get(("mask", 0))   # the inter-layer mask, handed back by backward
    assert inter is not None and np.any(inter == 0)
    one = CELLS[name]
    cfg = dict(model.get_config(), num_layers=1, dropout=0.0)
    first = one[0](**cfg)
    second = one[0](**dict(cfg, input_size=model.hidden_size))
    first.load_state_dict({k: v for k, v in model.state_dict().items() if "_l0" in k})
    second.load_state_dict({k.replace("_l1", "_l0"): v for k, v in model.state_dict().items()
                            if "_l1" in k})
    hx = case["hx"]
    h_first = tuple(s[:1] for s in hx) if isinstance(hx, tuple) else hx[:1]
    h_second = tuple(s[1:] for s in hx) if isinstance(hx, tuple) else hx[1:]
    out1 = _reference(first, case["x"], case["lengths"], h_first,
                      np.zeros(case["dout"].shape), None,
                      [None if m is None else m[:1] for m in masks])["out"]
    T, N = case["x"].shape[:2]
    out2 = _reference(second, out1 * inter.reshape(T, N, -1), case["lengths"], h_second,
                      case["dout"], None, [None if m is None else m[1:] for m in masks])["out"]
    assert_close(got["out"], out2, np.float64, name="out")


@pytest.mark.skipif(not ln.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("name", ["lstm", "lstm-proj-variants", "gru", "gru-reset-before"])
def test_hidden_unit_split_and_threads(name):
    """Few rows and W_hh larger than a core's L2: the threads split hidden units, each
    writing its own columns of the dropped copy of h_t. Against the reference, and
    bitwise equal for 1 and 2 threads."""
    runs = []
    for n_threads in (1, 2):
        model, case = _case(name, np.float32, T=4, N=2, I=3, H=512, L=1, bi=True,
                            n_threads=n_threads)
        runs.append(_run(model, **case))
        _assert_matches(runs[-1], _reference(model, **case, masks=_masks(model)), np.float32)
    one, two = runs
    assert_all_equal([one["out"], one["dx"]], [two["out"], two["dx"]])
    assert_all_equal(list(one["grads"].values()), list(two["grads"].values()))


# -------------------------------------------------------------------------------------
# Finite differences (float64), the masks held
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CELLS))
def test_finite_differences(name):
    """Every parameter, x and the initial state against central differences of
    sum(out·dout) + the final states' terms, the masks of the first forward held (as a
    stateful Sequential holds them) so that every forward of the differences uses them."""
    model, case = _case(name, np.float64, T=4, N=3, I=2, H=4, L=2, bi=True, n_threads=1)
    x, lengths, dout, hx, dhx = (case[k] for k in ("x", "lengths", "dout", "hx", "dhx"))
    states = list(hx) if isinstance(hx, tuple) else [hx]
    d_finals = list(dhx) if isinstance(dhx, tuple) else [dhx]

    def loss():
        out, finals = model(x, hx, lengths)
        finals = list(finals) if isinstance(finals, tuple) else [finals]
        return np.sum(out * dout) + sum(np.sum(f * d) for f, d in zip(finals, d_finals))

    model.zero_grad()
    loss()
    model._hold_masks = True
    dx, d_states = model.backward(dout, dhx)
    d_states = list(d_states) if isinstance(d_states, tuple) else [d_states]
    analytic = dict(model.grads, x=dx, **{f"state{i}": d for i, d in enumerate(d_states)})
    arrays = dict(model.parameters(), x=x, **{f"state{i}": s for i, s in enumerate(states)})
    check_finite_differences(analytic, arrays, loss)


# -------------------------------------------------------------------------------------
# What the masks are
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_mask_rate_scale_and_shapes(p):
    model = ln.LSTM(40, 30, 2, bidirectional=True, proj_size=20, input_dropout=p,
                    recurrent_dropout=p, seed=1)
    model(np.zeros((3, 500, 40), np.float32))
    for idx in range(4):
        in_mask, rec_mask = model._held_masks[idx]
        # layer 1 reads both directions' projected outputs
        assert in_mask.shape == (500, 40) and rec_mask.shape == (500, 20)
        for mask in (in_mask, rec_mask):
            assert set(np.unique(mask)) == {0.0, np.float32(1 / (1 - p))}
            assert abs(np.mean(mask == 0) - p) < 0.03
    # every layer and direction has its own
    assert not np.array_equal(model._held_masks[0][1], model._held_masks[1][1])


@pytest.mark.parametrize("cls", [ln.LSTM, ln.GRU, ln.RNN])
def test_the_same_features_are_dropped_at_every_step(cls):
    """An RNN-like probe: with W_ih the identity and everything else zero (relu RNN), the
    output at every step is x_t ⊙ mask: the zeros sit at the same features at every
    step, and differ between sequences. For the recurrent mask, W_hh the identity and
    W_ih zero carry h0 ⊙ mask forward."""
    T, N, H = 5, 64, 8
    x = np.ones((T, N, H))
    model = ln.RNN(H, H, nonlinearity="relu", dtype=np.float64, input_dropout=0.5, seed=0)
    model.load_state_dict({"weight_ih_l0": np.eye(H), "weight_hh_l0": np.zeros((H, H)),
                           "bias_ih_l0": np.zeros(H), "bias_hh_l0": np.zeros(H)})
    out, _ = model(x)
    assert np.all(out == out[0]) and np.any(out[0] == 0) and np.any(out[0] == 2)
    assert len({row.tobytes() for row in out[0]}) > 10

    model = ln.RNN(H, H, nonlinearity="relu", dtype=np.float64, recurrent_dropout=0.5,
                   seed=0)
    model.load_state_dict({"weight_ih_l0": np.zeros((H, H)), "weight_hh_l0": np.eye(H),
                           "bias_ih_l0": np.zeros(H), "bias_hh_l0": np.zeros(H)})
    out, _ = model(np.zeros((T, N, H)), np.ones((1, N, H)))
    # h_t = h_{t-1} ⊙ m: the kept features double each step, the dropped are 0 from t = 0
    mask = model._held_masks[0][1]
    for t in range(T):
        assert np.array_equal(out[t], mask ** (t + 1))


@pytest.mark.parametrize("cls", [ln.LSTM, ln.GRU, ln.RNN])
def test_eval_mode_is_the_identity_and_draws_nothing(cls):
    x = np.random.default_rng(0).standard_normal((6, 3, 4))
    plain = cls(4, 5, 2, dtype=np.float64, seed=2).eval()
    dropped = cls(4, 5, 2, dtype=np.float64, input_dropout=0.5, recurrent_dropout=0.5,
                  seed=2).eval()
    state = dropped.rng_state()
    assert np.array_equal(plain(x)[0], dropped(x)[0])
    assert dropped.rng_state() == state and dropped._held_masks == {}
    # in training mode they differ
    dropped.train()
    assert not np.allclose(plain(x)[0], dropped(x)[0])


@pytest.mark.parametrize("cls", [ln.LSTM, ln.GRU, ln.RNN])
def test_the_same_seed_gives_the_same_masks_and_a_new_forward_new_ones(cls):
    x = np.random.default_rng(0).standard_normal((6, 3, 4))
    a = cls(4, 5, input_dropout=0.4, recurrent_dropout=0.4, seed=7)
    b = cls(4, 5, input_dropout=0.4, recurrent_dropout=0.4, seed=7)
    first = a(x)[0]
    assert np.array_equal(first, b(x)[0])
    assert not np.array_equal(first, a(x)[0])


def test_zero_rates_are_the_plain_layer_bit_for_bit():
    x = np.random.default_rng(0).standard_normal((6, 3, 4))
    for cls in (ln.LSTM, ln.GRU, ln.RNN):
        a = cls(4, 5, 2, dropout=0.3, seed=3)
        b = cls(4, 5, 2, dropout=0.3, input_dropout=0.0, recurrent_dropout=0.0, seed=3)
        assert np.array_equal(a(x)[0], b(x)[0])
        assert a.rng_state() == b.rng_state()


# -------------------------------------------------------------------------------------
# Stateful chunks, resume
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [ln.LSTM, ln.GRU, ln.RNN])
def test_stateful_chunks_hold_the_masks_until_reset(cls):
    """Training-mode chunks of a stateful Sequential give the whole sequence's training
    forward with the same masks: one mask per stream over all its chunks; after
    reset_states() new masks are drawn."""
    x = np.random.default_rng(0).standard_normal((4, 12, 3))   # (N, T, I)

    def model():
        return ln.Sequential(cls(3, 6, 2, batch_first=True, dtype=np.float64,
                                 input_dropout=0.4, recurrent_dropout=0.4, seed=5))

    whole = model()(x)
    chunked = model()
    chunked.stateful = True
    parts = [chunked(x[:, t:t + 4]) for t in range(0, 12, 4)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=1e-13, atol=1e-14)
    chunked.reset_states()
    again = chunked(x[:, :4])
    assert not np.allclose(again, whole[:, :4])


def test_tbptt_fit_with_recurrent_dropout_runs_and_learns():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 40, 2))
    y = np.cumsum(x[..., :1], axis=1) * 0.1
    model = ln.Sequential(ln.LSTM(2, 8, batch_first=True, recurrent_dropout=0.2,
                                  input_dropout=0.1, seed=0),
                          ln.Linear(8, 1, seed=1))
    history = ln.fit(model, x, y, loss=ln.losses.MSELoss(), batch_size=8, epochs=30,
                     tbptt=10, optimizer=ln.optim.Adam(model, lr=0.02), seed=0,
                     verbose=0)
    assert history["loss"][-1] < 0.5 * history["loss"][0]


# -------------------------------------------------------------------------------------
# The API
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [ln.LSTM, ln.GRU, ln.RNN])
def test_config_repr_and_checkpoint(cls, tmp_path):
    model = cls(3, 4, input_dropout=0.25, recurrent_dropout=0.5, seed=0)
    config = model.get_config()
    assert config["input_dropout"] == 0.25 and config["recurrent_dropout"] == 0.5
    assert "input_dropout=0.25, recurrent_dropout=0.5" in repr(model)
    assert "input_dropout" not in repr(cls(3, 4))
    ln.save_checkpoint(tmp_path / "m.npz", model)
    assert ln.load_model(tmp_path / "m.npz").get_config() == config


@pytest.mark.parametrize("cls", [ln.LSTM, ln.GRU, ln.RNN])
@pytest.mark.parametrize("name", ["input_dropout", "recurrent_dropout"])
@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), True, "0.2", None])
def test_bad_rates(cls, name, p):
    with pytest.raises(ValueError, match=rf"{name} must be a number in \[0, 1\]"):
        cls(3, 4, **{name: p})


@pytest.mark.parametrize("cls", [ln.LSTMCell, ln.GRUCell, ln.RNNCell])
def test_the_cells_have_none(cls):
    """A cell runs one step: a mask held across steps belongs to the loop around it."""
    with pytest.raises(TypeError, match="recurrent_dropout"):
        cls(3, 4, recurrent_dropout=0.2)
