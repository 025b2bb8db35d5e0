"""Optimizers, gradient clipping and lr schedules against torch.optim on the same
parameters and gradients; checkpoint round trips that resume bitwise; every error."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

import lstm_native as ln
from lstm_native import optim, schedules
from lstm_native.losses import MSELoss
from conftest import DTYPES, assert_close

# Parameters after a few optimizer steps against torch, by dtype (one place).
OPT_RTOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}
N_STEPS = 5
SCALES = [1.0, 3.0, 0.5, 2.0, 0.1, 1.5, 0.7, 4.0]  # varying sizes: amsgrad's max matters


class FakeModel:
    """The Module interface the optimizers use: parameters() and grads, dotted names."""

    def __init__(self, dtype=np.float64, seed=0):
        rng = np.random.default_rng(seed)
        shapes = {"0.weight": (3, 4), "0.bias": (4,), "1.weight": (2, 3)}
        self._params = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
        self.grads = {k: np.zeros_like(v) for k, v in self._params.items()}

    def parameters(self):
        return dict(self._params)

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)


def grad_sequence(model, n, seed=1):
    """n dicts of random gradients of the model's shapes and dtype."""
    rng = np.random.default_rng(seed)
    return [{k: (SCALES[i % len(SCALES)] * rng.standard_normal(p.shape)).astype(p.dtype)
             for k, p in model.parameters().items()} for i in range(n)]


def run_ours(opt, model, grads_seq):
    for grads in grads_seq:
        for k, g in grads.items():
            np.copyto(model.grads[k], g)
        opt.step()
    return {k: v.copy() for k, v in model.parameters().items()}


def run_torch(name, kwargs, model, grads_seq):
    torch = pytest.importorskip("torch")
    params = {k: torch.nn.Parameter(torch.from_numpy(v.copy()))
              for k, v in model.parameters().items()}
    opt = getattr(torch.optim, name)(list(params.values()), **kwargs)
    for grads in grads_seq:
        for k, g in grads.items():
            params[k].grad = torch.from_numpy(g.copy())
        opt.step()
    return {k: v.detach().numpy() for k, v in params.items()}


CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.8, weight_decay=0.1, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.5, dampening=0.5, weight_decay=0.01)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.05, betas=(0.4, 0.9), eps=1e-6, weight_decay=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("AdamW", dict(lr=0.01, betas=(0.3, 0.5), weight_decay=0.0)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.3, centered=True, eps=1e-4)),
]
CONFIG_IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}"
              for n, kw in CONFIGS]


# -------------------------------------------------------------------------------------
# Optimizers against torch.optim
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=CONFIG_IDS)
def test_optimizer_matches_torch(name, kwargs, dtype):
    model = FakeModel(dtype)
    grads_seq = grad_sequence(model, N_STEPS)
    expected = run_torch(name, kwargs, model, grads_seq)
    opt = getattr(optim, name)(model, **kwargs)
    before = {k: v.copy() for k, v in model.parameters().items()}
    actual = run_ours(opt, model, grads_seq)
    assert opt.step_count == N_STEPS
    for k in expected:
        assert actual[k].dtype == np.dtype(dtype)
        assert not np.array_equal(actual[k], before[k]), f"{k} did not move"
        assert_close(actual[k], expected[k], dtype, name=k, rtol=OPT_RTOL[np.dtype(dtype)])
    for kind, by_name in opt._buffers.items():
        for arr in by_name.values():
            assert arr.dtype == np.dtype(dtype), kind


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=CONFIG_IDS)
def test_step_updates_in_place_and_leaves_grads(name, kwargs):
    model = FakeModel()
    ids = {k: id(v) for k, v in model.parameters().items()}
    (grads,) = grad_sequence(model, 1)
    for k, g in grads.items():
        np.copyto(model.grads[k], g)
    opt = getattr(optim, name)(model, **kwargs)
    opt.step()
    assert {k: id(v) for k, v in model.parameters().items()} == ids
    for k, g in grads.items():
        assert np.array_equal(model.grads[k], g), "step must not change the gradients"


def test_defaults_are_torchs():
    torch = pytest.importorskip("torch")
    model = FakeModel()
    p = [torch.nn.Parameter(torch.zeros(2))]
    for name in ("SGD", "Adam", "AdamW", "RMSprop"):
        ours = getattr(optim, name)(model).hyper
        theirs = getattr(torch.optim, name)(p).defaults
        for k, v in ours.items():
            t = theirs[k]
            assert (list(t) if isinstance(t, tuple) else t) == v, (name, k)


def test_zero_grad_and_lr_attribute():
    model = FakeModel()
    for g in model.grads.values():
        g.fill(1.0)
    opt = optim.SGD(model, lr=0.5, momentum=0.9)
    opt.zero_grad()
    assert not any(g.any() for g in model.grads.values())
    opt.lr = 0.25
    assert opt.lr == 0.25 and opt.hyper["lr"] == 0.25 and opt.momentum == 0.9
    assert "SGD(lr=0.25" in repr(opt)

    class NoZeroGrad:  # a model without zero_grad: the optimizer zeroes grads itself
        def __init__(self):
            self.p = {"w": np.ones(3)}
            self.grads = {"w": np.ones(3)}

        def parameters(self):
            return self.p

    m = NoZeroGrad()
    optim.Adam(m).zero_grad()
    assert not m.grads["w"].any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_with_lstm_matches_torch_and_trains(dtype):
    """The real model: grads from the native backward, one Adam step as torch's, then
    a few steps of training lower the loss."""
    model = ln.LSTM(2, 3, dtype=dtype, seed=0, n_threads=1)  # tiny: threads only cost
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4, 2)).astype(dtype)
    y = (0.5 * rng.standard_normal((6, 4, 3))).astype(dtype)
    loss_fn = MSELoss()
    opt = optim.Adam(model, lr=0.05, weight_decay=0.01)

    def forward_backward():
        opt.zero_grad()
        out, _ = model(x)
        loss, dout = loss_fn(out, y)
        model.backward(dout, input_grad=False)
        return loss

    first = forward_backward()
    grads = [{k: g.copy() for k, g in model.grads.items()}]
    expected = run_torch("Adam", dict(lr=0.05, weight_decay=0.01), model, grads)
    opt.step()
    for k, v in model.parameters().items():
        assert_close(v, expected[k], dtype, name=k, rtol=OPT_RTOL[np.dtype(dtype)])
    for _ in range(15):
        loss = forward_backward()
        opt.step()
    assert loss < first


# -------------------------------------------------------------------------------------
# Checkpoints: state_dict round trips resume bitwise
# -------------------------------------------------------------------------------------

def save_and_load(state: dict) -> dict:
    """What a checkpoint writer does: the arrays through .npz, the rest through JSON."""
    arrays = state.get("buffers", {})
    meta = {k: v for k, v in state.items() if k != "buffers"}
    text = json.dumps(meta, allow_nan=False)
    out = json.loads(text)
    if "buffers" in state:
        f = io.BytesIO()
        np.savez(f, **arrays)
        f.seek(0)
        with np.load(f) as z:
            out["buffers"] = {k: z[k] for k in z.files}
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=CONFIG_IDS)
def test_optimizer_state_dict_resumes_bitwise(name, kwargs, dtype):
    model = FakeModel(dtype)
    grads_seq = grad_sequence(model, 6)
    opt = getattr(optim, name)(model, **kwargs)
    run_ours(opt, model, grads_seq[:3])
    opt.lr = opt.lr * 0.5                          # as a schedule would
    state = opt.state_dict()
    assert state["type"] == name and state["step"] == 3
    assert set(state) == {"type", "hyper", "step", "buffers"}
    for key, arr in state["buffers"].items():
        kind, pname = key.split(".", 1)
        assert pname in model.parameters() and arr.dtype == np.dtype(dtype)
    saved_params = model.state_dict() if hasattr(model, "state_dict") else \
        {k: v.copy() for k, v in model.parameters().items()}
    loaded = save_and_load(state)

    # The uninterrupted run.
    final = run_ours(opt, model, grads_seq[3:])
    # The resumed run: a fresh model and a default optimizer, state loaded into both.
    model2 = FakeModel(dtype, seed=99)
    for k, v in saved_params.items():
        np.copyto(model2.parameters()[k], v)
    opt2 = getattr(optim, name)(model2)
    opt2.load_state_dict(loaded)
    assert opt2.hyper == state["hyper"] and opt2.step_count == 3
    resumed = run_ours(opt2, model2, grads_seq[3:])
    for k in final:
        assert np.array_equal(final[k], resumed[k]), f"{k}: resumed run differs"
    for key, arr in opt.state_dict()["buffers"].items():
        assert np.array_equal(arr, opt2.state_dict()["buffers"][key]), key


def test_state_dict_is_a_copy():
    model = FakeModel()
    opt = optim.Adam(model)
    run_ours(opt, model, grad_sequence(model, 1))
    state = opt.state_dict()
    state["buffers"]["exp_avg.0.bias"][:] = 123.0
    assert not np.any(opt.state_dict()["buffers"]["exp_avg.0.bias"] == 123.0)


def test_state_dict_format():
    model = FakeModel()
    state = optim.Adam(model, amsgrad=True).state_dict()
    assert state["hyper"] == {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8,
                              "weight_decay": 0.0, "amsgrad": True}
    assert sorted(state["buffers"]) == sorted(
        f"{kind}.{p}" for kind in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
        for p in ("0.weight", "0.bias", "1.weight"))
    assert optim.SGD(model).state_dict()["buffers"] == {}
    rms = optim.RMSprop(model, momentum=0.5, centered=True).state_dict()
    assert {k.split(".")[0] for k in rms["buffers"]} == {"square_avg", "momentum_buffer",
                                                         "grad_avg"}


def test_load_state_dict_changes_configuration():
    """The hyperparameters come from the state (as torch): momentum turns on."""
    model = FakeModel()
    src = optim.SGD(model, lr=0.1, momentum=0.9)
    run_ours(src, model, grad_sequence(model, 2))
    dst = optim.SGD(model, lr=0.3)
    dst.load_state_dict(src.state_dict())
    assert dst.momentum == 0.9 and dst.lr == 0.1 and "momentum_buffer" in dst._buffers


# -------------------------------------------------------------------------------------
# clip_grad_norm
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("max_norm", [0.5, 1e3, np.inf])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, np.inf])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype):
    torch = pytest.importorskip("torch")
    model = FakeModel(dtype)
    (grads,) = grad_sequence(model, 1)
    for k, g in grads.items():
        np.copyto(model.grads[k], g)
    params = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in model.parameters().values()]
    for p, g in zip(params, grads.values()):
        p.grad = torch.from_numpy(g.copy())
    expected = float(torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type))
    total = optim.clip_grad_norm(model, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    tol = OPT_RTOL[np.dtype(dtype)]
    assert total == pytest.approx(expected, rel=tol)
    for p, (k, g) in zip(params, model.grads.items()):
        assert g.dtype == np.dtype(dtype)
        assert_close(g, p.grad.numpy(), dtype, name=k, rtol=tol)
    if max_norm == 0.5:
        assert optim.clip_grad_norm(model, np.inf, norm_type=norm_type) == pytest.approx(
            0.5, rel=1e-5)
    else:
        for k, g in grads.items():
            assert np.array_equal(model.grads[k], g), "no clipping below max_norm"


def test_clip_grad_norm_by_hand_and_edge_cases():
    class M:
        grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]]), "e": np.zeros((0, 2))}

    total = optim.clip_grad_norm(M, 1.0)
    assert total == 5.0
    np.testing.assert_allclose(M.grads["a"], [3 / (5 + 1e-6), 0.0])
    np.testing.assert_allclose(M.grads["b"], [[4 / (5 + 1e-6)]])

    class Empty:
        grads = {}

    assert optim.clip_grad_norm(Empty, 1.0) == 0.0

    class Bad:
        grads = {"a": np.array([np.inf, 1.0])}

    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        optim.clip_grad_norm(Bad, 1.0, error_if_nonfinite=True)
    assert np.isinf(Bad.grads["a"][0])  # untouched when it raises
    assert optim.clip_grad_norm(Bad, 1.0) == np.inf


def test_clip_grad_norm_past_the_float_range_is_inf():
    """A small p: the sum of |g|^p is finite, its 1/p-th power is not; the norm is inf
    and the gradients are scaled by 0, as PyTorch (or it raises, when asked to)."""
    class M:
        grads = {"w": np.ones(1000)}

    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        optim.clip_grad_norm(M, 1.0, norm_type=1 / 256, error_if_nonfinite=True)
    assert optim.clip_grad_norm(M, 1.0, norm_type=1 / 256) == np.inf
    assert np.array_equal(M.grads["w"], np.zeros(1000))


# -------------------------------------------------------------------------------------
# Schedules against torch.optim.lr_scheduler
# -------------------------------------------------------------------------------------

EPOCHS = 20
PLATEAU = [10.0, 9.0, 8.0, 8.0, 8.0, 8.0, 7.9999, 8.0, 8.0, 8.0,
           5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 4.0, 4.0, 4.0, 4.0]

SCHEDULES = [
    ("StepLR", dict(step_size=3)),
    ("StepLR", dict(step_size=1, gamma=0.5)),
    ("StepLR", dict(step_size=7, gamma=0.3)),
    ("CosineAnnealingLR", dict(T_max=20)),
    ("CosineAnnealingLR", dict(T_max=6, eta_min=0.01)),
    ("CosineAnnealingLR", dict(T_max=1)),
    ("ReduceLROnPlateau", dict()),
    ("ReduceLROnPlateau", dict(patience=2)),
    ("ReduceLROnPlateau", dict(patience=1, factor=0.5, cooldown=2, min_lr=0.02)),
    ("ReduceLROnPlateau", dict(patience=0, threshold=0.5, threshold_mode="abs")),
    ("ReduceLROnPlateau", dict(mode="max", patience=1, factor=0.5)),
    ("ReduceLROnPlateau", dict(mode="max", patience=1, threshold_mode="abs", eps=0.02)),
]
SCHEDULE_IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}"
                for n, kw in SCHEDULES]


def _metric(name, kwargs, epoch):
    m = PLATEAU[epoch % len(PLATEAU)]
    return 20.0 - m if kwargs.get("mode") == "max" else m


def torch_lrs(name, kwargs, lr=0.1, epochs=EPOCHS):
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=lr)
    sched = getattr(torch.optim.lr_scheduler, name)(opt, **kwargs)
    lrs = []
    for e in range(epochs):
        p.grad = torch.ones(2)
        opt.step()
        sched.step(_metric(name, kwargs, e)) if name == "ReduceLROnPlateau" else sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def our_lrs(sched, name, kwargs, epochs, start=0):
    lrs = []
    for e in range(start, start + epochs):
        sched.optimizer.step()
        sched.step(_metric(name, kwargs, e)) if name == "ReduceLROnPlateau" else sched.step()
        lrs.append(sched.optimizer.lr)
        assert sched.get_last_lr() == sched.optimizer.lr
    return lrs


@pytest.mark.parametrize("name,kwargs", SCHEDULES, ids=SCHEDULE_IDS)
def test_schedule_matches_torch(name, kwargs):
    expected = torch_lrs(name, kwargs)
    opt = optim.SGD(FakeModel(), lr=0.1)
    sched = getattr(schedules, name)(opt, **kwargs)
    assert sched.get_last_lr() == 0.1 and opt.lr == 0.1
    actual = our_lrs(sched, name, kwargs, EPOCHS)
    assert actual == pytest.approx(expected, rel=1e-14, abs=0)
    assert len(set(actual)) > 1 or name == "ReduceLROnPlateau" and kwargs == {}


@pytest.mark.parametrize("name,kwargs", SCHEDULES, ids=SCHEDULE_IDS)
@pytest.mark.parametrize("split", [0, 7])
def test_schedule_state_dict_resumes_exactly(name, kwargs, split):
    model = FakeModel()
    opt = optim.Adam(model, lr=0.1)
    sched = getattr(schedules, name)(opt, **kwargs)
    our_lrs(sched, name, kwargs, split)
    opt_state, sched_state = save_and_load(opt.state_dict()), save_and_load(sched.state_dict())
    rest = our_lrs(sched, name, kwargs, EPOCHS - split, start=split)

    opt2 = optim.Adam(FakeModel(), lr=0.7)
    sched2 = getattr(schedules, name)(opt2, **kwargs)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    assert sched2.state_dict() == sched_state
    resumed = our_lrs(sched2, name, kwargs, EPOCHS - split, start=split)
    assert resumed == rest


def test_plateau_state_encodes_infinite_best():
    opt = optim.SGD(FakeModel(), lr=0.1)
    for mode, text in (("min", "inf"), ("max", "-inf")):
        sched = schedules.ReduceLROnPlateau(opt, mode=mode)
        state = sched.state_dict()
        assert state["best"] == text
        json.dumps(state, allow_nan=False)
        sched.step(1.0)
        sched.load_state_dict(state)
        assert sched.best == float(text) and sched.last_epoch == 0


def test_scheduler_repr_and_attributes():
    opt = optim.SGD(FakeModel(), lr=0.1)
    s = schedules.StepLR(opt, 5, gamma=0.5)
    assert repr(s) == "StepLR(step_size=5, gamma=0.5)"
    assert s.base_lr == 0.1 and s.last_epoch == 0


# -------------------------------------------------------------------------------------
# Errors
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,kwargs,exc,match", [
    (optim.SGD, dict(lr=-0.1), ValueError, "lr"),
    (optim.SGD, dict(lr=np.nan), ValueError, "lr"),
    (optim.SGD, dict(lr=np.inf), ValueError, "lr"),
    (optim.SGD, dict(lr="0.1"), TypeError, "lr"),
    (optim.SGD, dict(lr=None), TypeError, "lr"),
    (optim.SGD, dict(lr=True), TypeError, "lr"),
    (optim.SGD, dict(momentum=-0.5), ValueError, "momentum"),
    (optim.SGD, dict(dampening="x"), TypeError, "dampening"),
    (optim.SGD, dict(weight_decay=-1e-3), ValueError, "weight_decay"),
    (optim.SGD, dict(nesterov=1), TypeError, "nesterov"),
    (optim.SGD, dict(nesterov=True), ValueError, "nesterov"),
    (optim.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError, "nesterov"),
    (optim.Adam, dict(lr=-1.0), ValueError, "lr"),
    (optim.Adam, dict(betas=(1.0, 0.999)), ValueError, r"betas\[0\]"),
    (optim.Adam, dict(betas=(0.9, -0.1)), ValueError, r"betas\[1\]"),
    (optim.Adam, dict(betas=(0.9, "a")), TypeError, r"betas\[1\]"),
    (optim.Adam, dict(betas=0.9), TypeError, "betas"),
    (optim.Adam, dict(betas=(0.9, 0.99, 0.9)), TypeError, "betas"),
    (optim.Adam, dict(eps=-1e-8), ValueError, "eps"),
    (optim.Adam, dict(weight_decay=-1.0), ValueError, "weight_decay"),
    (optim.Adam, dict(amsgrad="yes"), TypeError, "amsgrad"),
    (optim.AdamW, dict(weight_decay=-0.01), ValueError, "weight_decay"),
    (optim.AdamW, dict(betas=(0.9, 1.5)), ValueError, "betas"),
    (optim.RMSprop, dict(lr=-1.0), ValueError, "lr"),
    (optim.RMSprop, dict(alpha=-0.1), ValueError, "alpha"),
    (optim.RMSprop, dict(alpha=1.5), ValueError, "alpha"),
    (optim.RMSprop, dict(eps=-1.0), ValueError, "eps"),
    (optim.RMSprop, dict(momentum=-0.1), ValueError, "momentum"),
    (optim.RMSprop, dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (optim.RMSprop, dict(centered=None), TypeError, "centered"),
    # nan and inf are no hyperparameter's value
    (optim.SGD, dict(lr=-np.inf), ValueError, "lr"),
    (optim.SGD, dict(momentum=np.nan), ValueError, "momentum"),
    (optim.SGD, dict(momentum=np.inf), ValueError, "momentum"),
    (optim.SGD, dict(dampening=np.nan), ValueError, "dampening"),
    (optim.SGD, dict(weight_decay=np.nan), ValueError, "weight_decay"),
    (optim.SGD, dict(weight_decay=np.inf), ValueError, "weight_decay"),
    (optim.SGD, dict(weight_decay="0"), TypeError, "weight_decay"),
    (optim.Adam, dict(betas=(np.nan, 0.999)), ValueError, r"betas\[0\]"),
    (optim.Adam, dict(betas=(0.9, np.inf)), ValueError, r"betas\[1\]"),
    (optim.Adam, dict(betas=(-0.1, 0.999)), ValueError, r"betas\[0\]"),
    (optim.Adam, dict(betas=None), TypeError, "betas"),
    (optim.Adam, dict(eps=np.nan), ValueError, "eps"),
    (optim.Adam, dict(eps=np.inf), ValueError, "eps"),
    (optim.AdamW, dict(lr=np.nan), ValueError, "lr"),
    (optim.AdamW, dict(weight_decay=np.inf), ValueError, "weight_decay"),
    (optim.RMSprop, dict(alpha=np.nan), ValueError, "alpha"),
    (optim.RMSprop, dict(momentum=np.nan), ValueError, "momentum"),
    (optim.RMSprop, dict(lr=np.inf), ValueError, "lr"),
])
def test_optimizer_constructor_errors(cls, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cls(FakeModel(), **kwargs)


class _NoGrads:
    def parameters(self):
        return {"w": np.zeros(2)}


class _Custom:
    def __init__(self, params, grads):
        self._p, self.grads = params, grads

    def parameters(self):
        return self._p


@pytest.mark.parametrize("model,exc,match", [
    (object(), TypeError, "model must have parameters"),
    (np.zeros(3), TypeError, "model must have parameters"),
    (None, TypeError, "model must have parameters"),
    ("lstm", TypeError, "model must have parameters"),
    ({"w": np.zeros(2)}, TypeError, "model must have parameters"),  # a bare mapping
    (_NoGrads(), TypeError, "model must have parameters"),
    (_Custom([np.zeros(2)], {}), TypeError, "dicts of arrays"),
    (_Custom({}, {}), ValueError, "no parameters"),
    (_Custom({"w": np.zeros(2)}, {"v": np.zeros(2)}), ValueError, "model.grads must have the keys"),
    (_Custom({"w": np.zeros(2, int)}, {"w": np.zeros(2, int)}), TypeError, "'w'"),
    (_Custom({"w": [0.0, 1.0]}, {"w": np.zeros(2)}), TypeError, "'w'"),
    (_Custom({"w": np.zeros(2)}, {"w": np.zeros(3)}), ValueError, r"grads\['w'\]"),
    (_Custom({"w": np.zeros(2)}, {"w": np.zeros(2, np.float32)}), ValueError, r"grads\['w'\]"),
])
@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop])
def test_optimizer_model_errors(cls, model, exc, match):
    with pytest.raises(exc, match=match):
        cls(model)


def test_lr_setter_and_read_only_hyper():
    opt = optim.Adam(FakeModel())
    for bad, exc in ((-1.0, ValueError), (np.nan, ValueError), ("x", TypeError)):
        with pytest.raises(exc, match="lr"):
            opt.lr = bad
    assert opt.lr == 1e-3
    with pytest.raises(AttributeError, match="betas"):
        opt.betas = (0.5, 0.5)
    with pytest.raises(AttributeError, match="nonexistent"):
        opt.nonexistent


def test_optimizer_model_is_the_one_given_and_read_only():
    model = FakeModel()
    opt = optim.SGD(model)
    assert opt.model is model
    with pytest.raises(AttributeError):
        opt.model = FakeModel()
    assert opt.model is model


def test_step_after_model_changed():
    model = _Custom({"w": np.zeros(2)}, {"w": np.zeros(2)})
    opt = optim.SGD(model)
    model._p = {"v": np.zeros(2)}
    model.grads = {"v": np.zeros(2)}
    with pytest.raises(RuntimeError, match="'w'"):
        opt.step()
    model._p = {"w": np.zeros(3)}
    model.grads = {"w": np.zeros(3)}
    with pytest.raises(RuntimeError, match="shape"):
        opt.step()
    model._p = {"w": np.zeros(2), "v": np.zeros(2)}
    with pytest.raises(RuntimeError, match="changed"):
        opt.step()


def _adam_state():
    model = FakeModel()
    opt = optim.Adam(model)
    run_ours(opt, model, grad_sequence(model, 2))
    return opt.state_dict()


def _edit(path, value):
    def apply(state):
        d = state
        for k in path[:-1]:
            d = d[k]
        if value is KeyError:
            del d[path[-1]]
        else:
            d[path[-1]] = value
        return state
    return apply


@pytest.mark.parametrize("edit,exc,match", [
    (lambda s: [s], TypeError, "state_dict must be a dict"),
    (_edit(["type"], "SGD"), ValueError, "type"),
    (_edit(["step"], KeyError), KeyError, "keys"),
    (_edit(["extra"], 1), KeyError, "keys"),
    (_edit(["hyper"], [1]), TypeError, "hyper"),
    (_edit(["hyper", "eps"], KeyError), KeyError, "hyper"),
    (_edit(["hyper", "momentum"], 0.9), KeyError, "hyper"),
    (_edit(["hyper", "lr"], -1.0), ValueError, "lr"),
    (_edit(["hyper", "amsgrad"], True), KeyError, "max_exp_avg_sq"),
    (_edit(["step"], -1), ValueError, "step"),
    (_edit(["step"], 2.0), TypeError, "step"),
    (_edit(["buffers"], None), TypeError, "buffers"),
    (_edit(["buffers", "exp_avg.0.bias"], KeyError), KeyError, "exp_avg.0.bias"),
    (_edit(["buffers", "exp_avg.2.bias"], np.zeros(4)), KeyError, "exp_avg.2.bias"),
    (_edit(["buffers", "exp_avg.0.bias"], np.zeros(5)), ValueError, "exp_avg.0.bias"),
    (_edit(["buffers", "exp_avg.0.bias"], np.zeros(4, int)), TypeError, "exp_avg.0.bias"),
])
def test_optimizer_load_state_dict_errors(edit, exc, match):
    model = FakeModel()
    opt = optim.Adam(model, lr=0.5)
    run_ours(opt, model, grad_sequence(model, 1, seed=5))
    before = opt.state_dict()
    with pytest.raises(exc, match=match):
        opt.load_state_dict(edit(_adam_state()))
    after = opt.state_dict()                    # a failed load changes nothing
    assert after["hyper"] == before["hyper"] and after["step"] == before["step"]
    for k, v in before["buffers"].items():
        assert np.array_equal(after["buffers"][k], v)


def test_optimizer_load_float64_buffers_into_float32():
    model = FakeModel(np.float32)
    opt = optim.Adam(model)
    state = _adam_state()                       # float64 buffers
    opt.load_state_dict(state)
    assert all(v.dtype == np.float32 for v in opt.state_dict()["buffers"].values())


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(max_norm=-1.0), ValueError, "max_norm"),
    (dict(max_norm=np.nan), ValueError, "max_norm"),
    (dict(max_norm="1"), TypeError, "max_norm"),
    (dict(max_norm=1.0, norm_type=0.0), ValueError, "norm_type"),
    (dict(max_norm=1.0, norm_type=-2.0), ValueError, "norm_type"),
    (dict(max_norm=1.0, norm_type="fro"), TypeError, "norm_type"),
    (dict(max_norm=1.0, error_if_nonfinite=1), TypeError, "error_if_nonfinite"),
])
def test_clip_grad_norm_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        optim.clip_grad_norm(FakeModel(), **kwargs)


@pytest.mark.parametrize("model,exc,match", [
    (object(), TypeError, "model must have grads"),
    (_Custom({}, [np.zeros(2)]), TypeError, "model must have grads"),
    (_Custom({}, {"w": np.zeros(2, int)}), TypeError, r"grads\['w'\]"),
])
def test_clip_grad_norm_model_errors(model, exc, match):
    with pytest.raises(exc, match=match):
        optim.clip_grad_norm(model, 1.0)


@pytest.mark.parametrize("cls,kwargs,exc,match", [
    (schedules.StepLR, dict(step_size=0), ValueError, "step_size"),
    (schedules.StepLR, dict(step_size=2.0), TypeError, "step_size"),
    (schedules.StepLR, dict(step_size=2, gamma=-0.1), ValueError, "gamma"),
    (schedules.StepLR, dict(step_size=2, gamma="x"), TypeError, "gamma"),
    (schedules.CosineAnnealingLR, dict(T_max=0), ValueError, "T_max"),
    (schedules.CosineAnnealingLR, dict(T_max=None), TypeError, "T_max"),
    (schedules.CosineAnnealingLR, dict(T_max=5, eta_min=-1.0), ValueError, "eta_min"),
    (schedules.ReduceLROnPlateau, dict(mode="minimum"), ValueError, "mode"),
    (schedules.ReduceLROnPlateau, dict(factor=1.0), ValueError, "factor"),
    (schedules.ReduceLROnPlateau, dict(factor=-0.1), ValueError, "factor"),
    (schedules.ReduceLROnPlateau, dict(patience=-1), ValueError, "patience"),
    (schedules.ReduceLROnPlateau, dict(patience=1.5), TypeError, "patience"),
    (schedules.ReduceLROnPlateau, dict(threshold=-1e-4), ValueError, "threshold"),
    (schedules.ReduceLROnPlateau, dict(threshold_mode="relative"), ValueError, "threshold_mode"),
    (schedules.ReduceLROnPlateau, dict(cooldown=-1), ValueError, "cooldown"),
    (schedules.ReduceLROnPlateau, dict(min_lr=-1.0), ValueError, "min_lr"),
    (schedules.ReduceLROnPlateau, dict(eps=-1.0), ValueError, "eps"),
    (schedules.StepLR, dict(step_size=True), TypeError, "step_size"),
    (schedules.StepLR, dict(step_size=2, gamma=np.nan), ValueError, "gamma"),
    (schedules.StepLR, dict(step_size=2, gamma=np.inf), ValueError, "gamma"),
    (schedules.CosineAnnealingLR, dict(T_max=5, eta_min=np.nan), ValueError, "eta_min"),
    (schedules.ReduceLROnPlateau, dict(factor=np.nan), ValueError, "factor"),
    (schedules.ReduceLROnPlateau, dict(threshold=np.nan), ValueError, "threshold"),
    (schedules.ReduceLROnPlateau, dict(min_lr=np.inf), ValueError, "min_lr"),
])
def test_schedule_constructor_errors(cls, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cls(optim.SGD(FakeModel()), **kwargs)


@pytest.mark.parametrize("cls,args", [(schedules.StepLR, (2,)),
                                      (schedules.CosineAnnealingLR, (5,)),
                                      (schedules.ReduceLROnPlateau, ())])
def test_schedule_needs_an_optimizer(cls, args):
    with pytest.raises(TypeError, match="optimizer"):
        cls(FakeModel(), *args)


@pytest.mark.parametrize("metric", ["1.0", None, [1.0, 2.0], np.zeros(2), True, 1 + 2j])
def test_plateau_metric_errors(metric):
    sched = schedules.ReduceLROnPlateau(optim.SGD(FakeModel()))
    with pytest.raises(TypeError, match="metric"):
        sched.step(metric)
    assert sched.last_epoch == 0
    sched.step(np.float32(1.0))
    sched.step(np.array(0.5))
    assert sched.best == 0.5


@pytest.mark.parametrize("edit,exc,match", [
    (lambda s: None, TypeError, "state_dict must be a dict"),
    (_edit(["type"], "CosineAnnealingLR"), ValueError, "type"),
    (_edit(["last_epoch"], KeyError), KeyError, "keys"),
    (_edit(["hyper", "gamma"], KeyError), KeyError, "hyper"),
    (_edit(["hyper", "step_size"], 0), ValueError, "step_size"),
    (_edit(["last_epoch"], -2), ValueError, "last_epoch"),
    (_edit(["last_lr"], "x"), TypeError, "last_lr"),
    (_edit(["base_lr"], -1.0), ValueError, "base_lr"),
])
def test_schedule_load_state_dict_errors(edit, exc, match):
    opt = optim.SGD(FakeModel(), lr=0.1)
    sched = schedules.StepLR(opt, 2)
    state = sched.state_dict()
    sched.step()
    before = sched.state_dict()
    with pytest.raises(exc, match=match):
        sched.load_state_dict(edit(dict(state, hyper=dict(state["hyper"]))))
    assert sched.state_dict() == before


@pytest.mark.parametrize("key,value,exc", [
    ("best", "infinity", ValueError),
    ("best", None, TypeError),
    ("num_bad_epochs", -1, ValueError),
    ("cooldown_counter", 0.5, TypeError),
])
def test_plateau_load_state_dict_errors(key, value, exc):
    sched = schedules.ReduceLROnPlateau(optim.SGD(FakeModel()))
    state = sched.state_dict()
    state[key] = value
    with pytest.raises(exc, match=key):
        sched.load_state_dict(state)
