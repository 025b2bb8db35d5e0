"""The losses of `lstm_native.losses`: values by hand and against torch.nn.functional,
gradients by central finite differences in float64, stability, and every error."""
from __future__ import annotations

import numpy as np
import pytest

from lstm_native import losses as L
from conftest import DTYPES, assert_close, numerical_grad

# Loss values and gradients against torch, by dtype (one place).
LOSS_RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
FD_EPS = 1e-6
FD_RTOL = 1e-7  # central differences: O(eps²) truncation + O(1e-16/eps) rounding
REDUCTIONS = ["mean", "sum", "none"]


def _data(dtype, shape=(4, 3, 2), seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape).astype(dtype),
            rng.standard_normal(shape).astype(dtype))


def _ce_data(dtype, shape=(5, 3), C=4, seed=0, ignore=True):
    rng = np.random.default_rng(seed)
    logits = (3 * rng.standard_normal(shape + (C,))).astype(dtype)
    target = rng.integers(0, C, size=shape)
    if ignore:
        target.flat[[1, 4]] = -100
    return logits, target


def _scalar(loss, reduction):
    """The value the gradient is of: the loss, or the sum of the losses for 'none'."""
    return float(np.sum(loss)) if reduction == "none" else loss


def check_fd(fn, pred, reduction):
    """The analytic gradient of fn(pred) against central differences, in float64."""
    loss, grad = fn(pred)
    assert grad.shape == pred.shape and grad.dtype == pred.dtype
    p = pred.copy()
    numeric = numerical_grad(lambda: _scalar(fn(p)[0], reduction), p, FD_EPS)
    err = np.max(np.abs(numeric - grad)) / max(1.0, np.max(np.abs(numeric)))
    assert err <= FD_RTOL, f"finite differences: relative error {err:.2e}"


# -------------------------------------------------------------------------------------
# Hand computations
# -------------------------------------------------------------------------------------

def test_mse_by_hand():
    pred = np.array([1.0, 2.0, 4.0])
    target = np.array([0.0, 2.0, 1.0])
    loss, grad = L.MSELoss()(pred, target)
    assert loss == pytest.approx((1 + 0 + 9) / 3)
    np.testing.assert_allclose(grad, np.array([2.0, 0.0, 6.0]) / 3)
    loss, grad = L.MSELoss("sum")(pred, target)
    assert loss == pytest.approx(10.0)
    np.testing.assert_allclose(grad, [2.0, 0.0, 6.0])
    loss, grad = L.MSELoss("none")(pred, target)
    np.testing.assert_allclose(loss, [1.0, 0.0, 9.0])
    np.testing.assert_allclose(grad, [2.0, 0.0, 6.0])


def test_l1_by_hand():
    pred = np.array([1.0, 2.0, -4.0, 0.5])
    target = np.array([0.0, 2.0, 1.0, 1.0])
    loss, grad = L.L1Loss()(pred, target)
    assert loss == pytest.approx((1 + 0 + 5 + 0.5) / 4)
    np.testing.assert_allclose(grad, np.array([1.0, 0.0, -1.0, -1.0]) / 4)
    assert L.MAELoss is L.L1Loss


def test_huber_by_hand():
    pred = np.array([0.5, 3.0, -2.0])
    target = np.zeros(3)
    loss, grad = L.HuberLoss("none", delta=1.0)(pred, target)
    np.testing.assert_allclose(loss, [0.125, 2.5, 1.5])
    np.testing.assert_allclose(grad, [0.5, 1.0, -1.0])
    loss, grad = L.HuberLoss("sum", delta=2.0)(pred, target)
    assert loss == pytest.approx(0.125 + 2 * (3 - 1) + 0.5 * 4)
    np.testing.assert_allclose(grad, [0.5, 2.0, -2.0])


def test_cross_entropy_by_hand():
    logits = np.array([[0.0, np.log(3.0)], [np.log(2.0), 0.0], [5.0, 1.0]])
    target = np.array([1, 1, -100])
    loss, grad = L.CrossEntropyLoss()(logits, target)
    # softmax rows: [1/4, 3/4] and [2/3, 1/3]; the third row is ignored.
    assert loss == pytest.approx((-np.log(0.75) - np.log(1 / 3)) / 2)
    np.testing.assert_allclose(grad, np.array([[0.25, -0.25], [2 / 3, -2 / 3], [0, 0]]) / 2)
    w = np.array([1.0, 3.0])
    loss, grad = L.cross_entropy(logits, target, weight=w, reduction="sum")
    assert loss == pytest.approx(3 * (-np.log(0.75) - np.log(1 / 3)))
    np.testing.assert_allclose(grad, 3 * np.array([[0.25, -0.25], [2 / 3, -2 / 3], [0, 0]]))


# -------------------------------------------------------------------------------------
# Against torch
# -------------------------------------------------------------------------------------

def _torch_loss_and_grad(fn, pred, *args, **kwargs):
    torch = pytest.importorskip("torch")
    p = torch.tensor(pred, requires_grad=True)
    out = fn(p, *args, **kwargs)
    out.sum().backward()
    value = out.detach().numpy()
    return (float(value) if value.ndim == 0 else value), p.grad.numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse", "l1", "huber", "huber2"])
def test_regression_losses_match_torch(name, reduction, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    pred, target = _data(dtype)
    pred[0, 0, 0] = target[0, 0, 0] + 5  # the linear part of Huber
    ours, theirs, kwargs = {
        "mse": (L.mse_loss, F.mse_loss, {}),
        "l1": (L.l1_loss, F.l1_loss, {}),
        "huber": (L.huber_loss, F.huber_loss, {}),
        "huber2": (L.huber_loss, F.huber_loss, {"delta": 0.3}),
    }[name]
    loss, grad = ours(pred, target, reduction=reduction, **kwargs)
    t_loss, t_grad = _torch_loss_and_grad(theirs, pred, torch.tensor(target),
                                          reduction=reduction, **kwargs)
    assert grad.dtype == pred.dtype
    if reduction == "none":
        assert loss.dtype == pred.dtype and loss.shape == pred.shape
    else:
        assert isinstance(loss, float)
    tol = LOSS_RTOL[np.dtype(dtype)]
    assert_close(loss, t_loss, dtype, name="loss", rtol=tol)
    assert_close(grad, t_grad, dtype, name="grad", rtol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_cross_entropy_matches_torch(ignore_index, weighted, reduction, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    logits, target = _ce_data(dtype)           # (5, 3, C=4), two positions at -100
    weight = np.array([0.5, 2.0, 1.0, 3.0], dtype=dtype) if weighted else None
    # The ignored positions hold ignore_index (with 2, also real class-2 targets are).
    t_target = np.where(target == -100, ignore_index, target)
    loss, grad = L.CrossEntropyLoss(weight=weight, ignore_index=ignore_index,
                                    reduction=reduction)(logits, t_target)
    # torch takes the classes on axis 1.
    t_loss, t_grad_cl = _torch_loss_and_grad(
        lambda x, *a, **k: F.cross_entropy(x.permute(0, 2, 1), *a, **k), logits,
        torch.tensor(t_target), weight=None if weight is None else torch.tensor(weight),
        ignore_index=ignore_index, reduction=reduction)
    tol = LOSS_RTOL[np.dtype(dtype)]
    assert_close(loss, t_loss, dtype, name="loss", rtol=tol)
    assert_close(grad, t_grad_cl, dtype, name="grad", rtol=tol)
    assert grad.dtype == logits.dtype
    if reduction == "none":
        assert loss.shape == target.shape and loss.dtype == logits.dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_vector_and_2d_match_torch(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    logits, target = _ce_data(dtype, shape=(6,), ignore=False)
    loss, grad = L.cross_entropy(logits, target)
    t_loss, t_grad = _torch_loss_and_grad(F.cross_entropy, logits, torch.tensor(target))
    assert_close(loss, t_loss, dtype, rtol=LOSS_RTOL[np.dtype(dtype)])
    assert_close(grad, t_grad, dtype, rtol=LOSS_RTOL[np.dtype(dtype)])
    # One unbatched position: logits (C,), target a scalar.
    loss, grad = L.cross_entropy(logits[0], target[0])
    t_loss, t_grad = _torch_loss_and_grad(F.cross_entropy, logits[0], torch.tensor(target[0]))
    assert_close(loss, t_loss, dtype, rtol=LOSS_RTOL[np.dtype(dtype)])
    assert_close(grad, t_grad, dtype, rtol=LOSS_RTOL[np.dtype(dtype)])


# -------------------------------------------------------------------------------------
# Finite differences (float64)
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse", "l1", "huber"])
def test_regression_gradients_by_finite_differences(name, reduction):
    pred, target = _data(np.float64, shape=(3, 4))
    pred[0, 0] = target[0, 0] + 3.0      # linear part of Huber
    pred[1, 1] = target[1, 1] - 2.5
    fn = {
        "mse": lambda p: L.mse_loss(p, target, reduction),
        "l1": lambda p: L.l1_loss(p, target, reduction),
        "huber": lambda p: L.huber_loss(p, target, reduction, delta=0.7),
    }[name]
    check_fd(fn, pred, reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_gradient_by_finite_differences(weighted, reduction):
    logits, target = _ce_data(np.float64, shape=(3, 2), C=5)
    weight = np.array([0.5, 2.0, 1.0, 3.0, 0.25]) if weighted else None
    check_fd(lambda x: L.cross_entropy(x, target, weight, reduction=reduction),
             logits, reduction)


# -------------------------------------------------------------------------------------
# Stability and edge cases
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_huge_logits_stay_finite(dtype, reduction):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, 1e4]], dtype=dtype)
    target = np.array([1, 2, 0])
    loss, grad = L.cross_entropy(logits, target, reduction=reduction)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    expected = np.array([2e4, 0.0, np.log(3.0)])
    if reduction == "none":
        np.testing.assert_allclose(loss, expected, rtol=1e-6)
    elif reduction == "sum":
        assert loss == pytest.approx(expected.sum(), rel=1e-6)
    else:
        assert loss == pytest.approx(expected.mean(), rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_all_ignored_is_zero(dtype, reduction):
    logits = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    target = np.full(3, -100)
    with np.errstate(all="raise"):
        loss, grad = L.cross_entropy(logits, target, reduction=reduction)
    assert np.all(loss == 0) and np.all(np.isfinite(loss))
    assert grad.dtype == logits.dtype and not grad.any()


def test_cross_entropy_zero_weight_mean_is_zero():
    logits = np.zeros((2, 3))
    loss, grad = L.cross_entropy(logits, np.array([0, 0]), weight=np.array([0.0, 1.0, 1.0]))
    assert loss == 0.0 and not grad.any()


@pytest.mark.parametrize("fn", [L.mse_loss, L.l1_loss, L.huber_loss])
def test_empty_regression_mean_is_zero(fn):
    loss, grad = fn(np.zeros((0, 3)), np.zeros((0, 3)))
    assert loss == 0.0 and grad.shape == (0, 3)


def test_empty_cross_entropy():
    loss, grad = L.cross_entropy(np.zeros((0, 3), np.float32), np.zeros(0, np.int64))
    assert loss == 0.0 and grad.shape == (0, 3) and grad.dtype == np.float32


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_preserved_and_integer_target_accepted(dtype):
    pred = np.arange(6, dtype=dtype).reshape(2, 3)
    loss, grad = L.mse_loss(pred, np.ones((2, 3), dtype=np.int64), reduction="none")
    assert loss.dtype == dtype and grad.dtype == dtype


def test_inputs_not_modified():
    pred, target = _data(np.float64)
    p0, t0 = pred.copy(), target.copy()
    for fn in (L.mse_loss, L.l1_loss, L.huber_loss):
        fn(pred, target)
    logits, ct = _ce_data(np.float64)
    l0 = logits.copy()
    L.cross_entropy(logits, ct)
    assert np.array_equal(pred, p0) and np.array_equal(target, t0)
    assert np.array_equal(logits, l0)


def test_reprs():
    assert "delta=0.5" in repr(L.HuberLoss(delta=0.5))
    assert "reduction='sum'" in repr(L.MSELoss("sum"))
    assert "ignore_index=3" in repr(L.CrossEntropyLoss(weight=[1.0, 2.0], ignore_index=3))


# -------------------------------------------------------------------------------------
# Errors
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [L.MSELoss, L.L1Loss, L.HuberLoss])
@pytest.mark.parametrize("reduction", ["avg", "", None, 1, "MEAN"])
def test_bad_reduction(cls, reduction):
    with pytest.raises(ValueError, match="reduction"):
        cls(reduction)
    with pytest.raises(ValueError, match="reduction"):
        L.CrossEntropyLoss(reduction=reduction)
    with pytest.raises(ValueError, match="reduction"):
        L.mse_loss(np.zeros(2), np.zeros(2), reduction=reduction)
    with pytest.raises(ValueError, match="reduction"):
        L.cross_entropy(np.zeros((2, 3)), np.zeros(2, int), reduction=reduction)


@pytest.mark.parametrize("fn", [L.mse_loss, L.l1_loss, L.huber_loss])
@pytest.mark.parametrize("pred,target,exc,match", [
    (np.zeros((2, 3)), np.zeros((3, 2)), ValueError, "target must have the shape"),
    (np.zeros((2, 3)), np.zeros((2, 3, 1)), ValueError, "target must have the shape"),
    (np.zeros((2, 3)), np.zeros(3), ValueError, "target must have the shape"),
    (np.zeros((2, 3), dtype=np.int64), np.zeros((2, 3)), TypeError, "pred"),
    (np.zeros((2, 3), dtype=np.float16), np.zeros((2, 3)), TypeError, "pred"),
    (np.zeros((2, 3)), np.zeros((2, 3), dtype=bool), TypeError, "target"),
    (np.zeros((2, 3)), np.full((2, 3), "a"), TypeError, "target"),
    (np.zeros((2, 3)), np.zeros((2, 3), dtype=complex), TypeError, "target"),
])
def test_regression_errors(fn, pred, target, exc, match):
    with pytest.raises(exc, match=match):
        fn(pred, target)


@pytest.mark.parametrize("delta,exc", [(0.0, ValueError), (-1.0, ValueError),
                                       (np.inf, ValueError), (np.nan, ValueError),
                                       ("1", TypeError), (True, TypeError), (None, TypeError)])
def test_huber_bad_delta(delta, exc):
    with pytest.raises(exc, match="delta"):
        L.HuberLoss(delta=delta)
    with pytest.raises(exc, match="delta"):
        L.huber_loss(np.zeros(2), np.zeros(2), delta=delta)


@pytest.mark.parametrize("logits,target,kwargs,exc,match", [
    # shapes
    (np.zeros((2, 3)), np.zeros(3, int), {}, ValueError, r"target must have shape logits.shape\[:-1\]"),
    (np.zeros((2, 3)), np.zeros((2, 3), int), {}, ValueError, "target must have shape"),
    (np.zeros((2, 3, 4)), np.zeros((3, 2), int), {}, ValueError, "target must have shape"),
    (np.zeros((2, 0)), np.zeros(2, int), {}, ValueError, "logits"),
    (np.float64(1.0), np.int64(0), {}, ValueError, "logits"),
    # dtypes
    (np.zeros((2, 3), int), np.zeros(2, int), {}, TypeError, "logits"),
    (np.zeros((2, 3)), np.zeros(2), {}, TypeError, "target must be an array of integer"),
    (np.zeros((2, 3)), np.array([0.0, 1.5]), {}, TypeError, "integer"),
    (np.zeros((2, 3)), np.zeros(2, bool), {}, TypeError, "integer"),
    # range
    (np.zeros((2, 3)), np.array([0, 3]), {}, ValueError, r"target must hold class indices in \[0, 3\).*got 3"),
    (np.zeros((2, 3)), np.array([-1, 0]), {}, ValueError, "got -1"),
    (np.zeros((2, 3)), np.array([-100, 0]), {"ignore_index": 1}, ValueError, "got -100"),
    # weight and ignore_index
    (np.zeros((2, 3)), np.zeros(2, int), {"weight": np.ones(2)}, ValueError, "weight"),
    (np.zeros((2, 3)), np.zeros(2, int), {"weight": np.ones((3, 1))}, ValueError, "weight"),
    (np.zeros((2, 3)), np.zeros(2, int), {"weight": np.array([1.0, np.nan, 1.0])}, ValueError, "weight"),
    (np.zeros((2, 3)), np.zeros(2, int), {"weight": np.array(["a", "b", "c"])}, TypeError, "weight"),
    (np.zeros((2, 3)), np.zeros(2, int), {"ignore_index": 1.0}, TypeError, "ignore_index"),
    (np.zeros((2, 3)), np.zeros(2, int), {"ignore_index": True}, TypeError, "ignore_index"),
])
def test_cross_entropy_errors(logits, target, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        L.cross_entropy(logits, target, **kwargs)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"ignore_index": "x"}, TypeError, "ignore_index"),
    ({"ignore_index": 2.5}, TypeError, "ignore_index"),
    ({"weight": np.ones((2, 2))}, ValueError, "weight"),
    ({"weight": [True, False]}, TypeError, "weight"),
])
def test_cross_entropy_constructor_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        L.CrossEntropyLoss(**kwargs)
