"""Ensemble: members side by side, their outputs reduced by the mean or the median."""
import numpy as np
import pytest

import lstm_native as ln
from lstm_native import LSTM, Ensemble, LastStep, Linear, Sequential


def _forecaster(seed, dtype=np.float64):
    return Sequential(LSTM(2, 5, batch_first=True, dtype=dtype, seed=seed),
                      LastStep(batch_first=True), Linear(5, 3, dtype=dtype, seed=seed + 1))


def _ensemble(k=3, reduce="median", dtype=np.float64):
    return Ensemble(*(_forecaster(10 * s, dtype) for s in range(k)), reduce=reduce)


@pytest.mark.parametrize("reduce", ["median", "mean"])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_forward_reduces_the_members_outputs(reduce, k):
    ens = _ensemble(k, reduce)
    x = np.random.default_rng(0).normal(size=(6, 7, 2))
    members = np.stack([m(x) for m in ens.members])
    expected = np.median(members, 0) if reduce == "median" else members.mean(0)
    np.testing.assert_allclose(ens(x), expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(ens.outputs(x), members)


def test_lengths_reach_the_members():
    ens = _ensemble(3)
    x = np.random.default_rng(1).normal(size=(4, 7, 2))
    lengths = np.array([7, 3, 5, 1])
    expected = np.median(np.stack([m(x, lengths=lengths) for m in ens.members]), 0)
    np.testing.assert_array_equal(ens(x, lengths=lengths), expected)
    assert not np.array_equal(ens(x, lengths=lengths), ens(x))


def _loss_and_grads(ens, x, target):
    ens.zero_grad()
    out = ens(x)
    dx = ens.backward(out - target, input_grad=True)
    return 0.5 * np.sum((out - target) ** 2), {k: g.copy() for k, g in ens.grads.items()}, dx


@pytest.mark.parametrize("reduce,k", [("median", 3), ("median", 4), ("mean", 3)])
def test_gradients_match_finite_differences(reduce, k):
    ens = _ensemble(k, reduce)
    rng = np.random.default_rng(2)
    x, target = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 3))
    _, grads, dx = _loss_and_grads(ens, x, target)
    params, eps = ens.parameters(), 1e-6

    def loss():
        return 0.5 * np.sum((ens(x) - target) ** 2)

    for name in ("0.0.weight_ih_l0", f"{k - 1}.2.bias", "1.0.bias_hh_l0"):
        p = params[name]
        for index in [(0,) * p.ndim, tuple(s - 1 for s in p.shape)]:
            old = p[index]
            p[index] = old + eps
            up = loss()
            p[index] = old - eps
            down = loss()
            p[index] = old
            assert grads[name][index] == pytest.approx((up - down) / (2 * eps), abs=1e-7)
    for index in [(0, 0, 0), (2, 3, 1)]:
        xp = x.copy()
        xp[index] += eps
        up = 0.5 * np.sum((ens(xp) - target) ** 2)
        xp[index] -= 2 * eps
        down = 0.5 * np.sum((ens(xp) - target) ** 2)
        assert dx[index] == pytest.approx((up - down) / (2 * eps), abs=1e-7)


def test_median_gradient_reaches_only_the_middle_members():
    members = [Linear(1, 1, bias=False, seed=s) for s in range(3)]
    for m, w in zip(members, (1.0, 3.0, 2.0)):
        m.load_state_dict({"weight": np.array([[w]])})
    ens = Ensemble(*members)
    out = ens(np.array([[1.0]]))
    assert out[0, 0] == 2.0
    ens.backward(np.ones((1, 1)))
    assert [float(m.grads["weight"][0, 0]) for m in members] == [0.0, 0.0, 1.0]


def test_fit_trains_an_ensemble_and_the_members_one_by_one():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(32, 5, 2)), rng.normal(size=(32, 3))
    ens = _ensemble(3, "mean")
    before = ln.evaluate(ens, x, y, loss="mse")["loss"]
    ln.fit(ens, x, y, loss="mse", optimizer=ln.optim.Adam(ens, lr=0.01), epochs=5,
           batch_size=8, seed=0, verbose=0)
    after = ln.evaluate(ens, x, y, loss="mse")["loss"]
    assert after < before
    first = ens.members[0].state_dict()
    ln.fit(ens.members[1], x, y, loss="mse", optimizer=ln.optim.Adam(ens.members[1]),
           epochs=1, batch_size=8, seed=0, verbose=0)
    for name, value in ens.members[0].state_dict().items():
        np.testing.assert_array_equal(value, first[name])


def test_checkpoint_round_trip(tmp_path):
    ens = _ensemble(3, "median", np.float32)
    path = tmp_path / "ens.npz"
    ln.save_checkpoint(path, ens)
    loaded = ln.load_model(path)
    assert isinstance(loaded, Ensemble) and loaded.reduce == "median" and len(loaded) == 3
    x = np.random.default_rng(4).normal(size=(2, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.eval()(x), ens.eval()(x))
    assert "Ensemble(reduce='median'," in repr(loaded)


@pytest.mark.parametrize("config,message", [
    ({"members": [], "reduce": "median"}, "a list of 2.."),
    ({"reduce": "median"}, "lacks 'members'"),
    ({"members": [{"type": "Linear", "config": {"in_features": 1, "out_features": 1,
                                               "bias": True, "dtype": "float64"}}] * 2,
      "reduce": "max"}, "'reduce'"),
])
def test_checkpoint_refuses_a_damaged_description(tmp_path, config, message):
    from lstm_native.checkpoint import CheckpointError, _Architecture, _Bad
    with pytest.raises((_Bad, CheckpointError, ValueError), match=message):
        _Architecture({"type": "Ensemble", "config": config}, 2**30, given=False)


@pytest.mark.parametrize("args,kwargs,error,message", [
    ((), {}, ValueError, "at least two members"),
    (("x", "y"), {}, TypeError, "member 0 must be a lstm_native Module"),
    ((LSTM(1, 2), Linear(2, 1)), {}, TypeError, "put it in a Sequential"),
    ((Linear(1, 1, dtype=np.float64), Linear(1, 1, dtype=np.float32)), {}, ValueError,
     "different dtypes"),
    ((Linear(1, 1), Linear(1, 1)), {"reduce": "max"}, ValueError, "reduce must be one of"),
])
def test_bad_arguments(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        Ensemble(*args, **kwargs)


def test_the_same_member_twice_is_refused():
    m = Linear(1, 1)
    with pytest.raises(ValueError, match="different object"):
        Ensemble(m, m)


def test_members_of_different_output_shapes():
    ens = Ensemble(Linear(2, 1), Linear(2, 3))
    with pytest.raises(ValueError, match="outputs differ in shape"):
        ens(np.ones((1, 2)))
