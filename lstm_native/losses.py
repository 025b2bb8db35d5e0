"""Losses that return their value and their gradient with respect to the prediction in one
call: ``loss, dpred = MSELoss()(pred, target)``; ``dpred`` is what a model's `backward`
takes.

Design notes:

- NumPy only, in the prediction's dtype (float32 or float64): no kernel is needed, these
  are a handful of vectorised passes over arrays far smaller than the LSTM's activations.
- Semantics follow `torch.nn.functional` (`mse_loss`, `l1_loss`, `huber_loss`,
  `cross_entropy`) except that cross-entropy takes the classes on the LAST axis,
  logits (..., C), which is how sequence models lay them out.
- With ``reduction='none'`` the per-element losses come back with the gradient of their
  SUM, so a caller can weight or mask the losses and scale the gradient to match.
- An empty mean (no elements, or every cross-entropy target ignored) is 0 with a zero
  gradient, never nan.
"""
from __future__ import annotations

import numbers

import numpy as np

from ._validation import FLOAT_DTYPES

__all__ = [
    "CrossEntropyLoss",
    "HuberLoss",
    "L1Loss",
    "MAELoss",
    "MSELoss",
    "cross_entropy",
    "huber_loss",
    "l1_loss",
    "mse_loss",
]

REDUCTIONS = ("mean", "sum", "none")


# -- argument checks -------------------------------------------------------------------

def _check_reduction(reduction) -> str:
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def _check_pred(pred, name: str) -> np.ndarray:
    """The prediction as a float32/float64 array (its dtype is the loss's dtype)."""
    arr = np.asarray(pred)
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {arr.dtype}")
    return arr


def _check_target(target, pred: np.ndarray) -> np.ndarray:
    """A regression target: real numbers of pred's shape, converted to pred's dtype."""
    arr = np.asarray(target)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
        raise TypeError(f"target must be an array of real numbers, got dtype {arr.dtype}")
    if arr.shape != pred.shape:
        raise ValueError(f"target must have the shape of pred {pred.shape}, got {arr.shape}")
    return arr.astype(pred.dtype, copy=False)


def _check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float > 0, got {value!r}")
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite float > 0, got {value}")
    return value


def _difference(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``pred - target`` as a new array (NumPy gives a scalar for 0-d operands, which the
    in-place updates of the gradient cannot write into)."""
    return np.asarray(pred - target)


def _reduce(losses: np.ndarray, grad: np.ndarray, reduction: str):
    """Apply the reduction to elementwise losses and their (unscaled) gradient, in place.

    `grad` holds d(loss_i)/d(pred_i); for 'mean' it is divided by the count.
    """
    # NumPy arithmetic on 0-d arrays gives scalars: back to the documented arrays.
    losses, grad = np.asarray(losses), np.asarray(grad)
    if reduction == "none":
        return losses, grad
    if reduction == "sum":
        return float(losses.sum()), grad
    n = losses.size
    if n == 0:
        return 0.0, grad
    grad *= grad.dtype.type(1.0 / n)  # the reciprocal in float64, rounded once
    return float(losses.mean()), grad


# -- regression losses -----------------------------------------------------------------

def mse_loss(pred, target, reduction: str = "mean"):
    """Mean squared error, ``(pred - target)**2``, and its gradient.

    Parameters
    ----------
    pred : numpy.ndarray
        Predictions, float32 or float64, any shape; the loss is computed in its dtype.
    target : array_like
        Real numbers of the same shape (converted to pred's dtype).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        'mean' averages over every element (0 when there are none), 'sum' adds them,
        'none' returns the elementwise losses.

    Returns
    -------
    loss : float or numpy.ndarray
        A float for 'mean' and 'sum'; for 'none' the losses, of pred's shape and dtype.
    grad : numpy.ndarray
        d loss / d pred, of pred's shape and dtype (for 'none': of the sum of the losses).

    Raises
    ------
    TypeError
        pred is not a float array, or target is not real.
    ValueError
        The shapes differ, or reduction is unknown.
    """
    reduction = _check_reduction(reduction)
    pred = _check_pred(pred, "pred")
    target = _check_target(target, pred)
    diff = _difference(pred, target)
    losses = np.square(diff)
    diff *= diff.dtype.type(2)
    return _reduce(losses, diff, reduction)


def l1_loss(pred, target, reduction: str = "mean"):
    """Mean absolute error, ``|pred - target|``, and its gradient ``sign(pred - target)``
    (0 where they are equal, as PyTorch).

    Parameters
    ----------
    pred : numpy.ndarray
        Predictions, float32 or float64, any shape; the loss is computed in its dtype.
    target : array_like
        Real numbers of the same shape (converted to pred's dtype).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        As in `mse_loss`.

    Returns
    -------
    loss : float or numpy.ndarray
        A float for 'mean' and 'sum'; for 'none' the losses, of pred's shape and dtype.
    grad : numpy.ndarray
        d loss / d pred, of pred's shape and dtype.

    Raises
    ------
    TypeError
        pred is not a float array, or target is not real.
    ValueError
        The shapes differ, or reduction is unknown.
    """
    reduction = _check_reduction(reduction)
    pred = _check_pred(pred, "pred")
    target = _check_target(target, pred)
    diff = _difference(pred, target)
    losses = np.abs(diff)
    np.sign(diff, out=diff)
    return _reduce(losses, diff, reduction)


def huber_loss(pred, target, reduction: str = "mean", delta: float = 1.0):
    """Huber loss and its gradient: quadratic within `delta` of the target, linear beyond.

    For d = pred - target: ``0.5 d**2`` where ``|d| < delta``, else
    ``delta * (|d| - 0.5 delta)``; the gradient is d clipped to [-delta, delta].

    Parameters
    ----------
    pred : numpy.ndarray
        Predictions, float32 or float64, any shape; the loss is computed in its dtype.
    target : array_like
        Real numbers of the same shape (converted to pred's dtype).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        As in `mse_loss`.
    delta : float, default 1.0
        Where the loss turns from quadratic to linear; > 0.

    Returns
    -------
    loss : float or numpy.ndarray
        A float for 'mean' and 'sum'; for 'none' the losses, of pred's shape and dtype.
    grad : numpy.ndarray
        d loss / d pred, of pred's shape and dtype.

    Raises
    ------
    TypeError
        pred is not a float array, target is not real, or delta is not a number.
    ValueError
        The shapes differ, reduction is unknown, or delta is not > 0.
    """
    reduction = _check_reduction(reduction)
    delta = _check_positive(delta, "delta")
    pred = _check_pred(pred, "pred")
    target = _check_target(target, pred)
    dt = pred.dtype.type
    diff = _difference(pred, target)
    absd = np.abs(diff)
    quadratic = absd < dt(delta)
    losses = np.where(quadratic, dt(0.5) * diff * diff, dt(delta) * (absd - dt(0.5 * delta)))
    np.clip(diff, dt(-delta), dt(delta), out=diff)
    return _reduce(losses.astype(pred.dtype, copy=False), diff, reduction)


# -- classification --------------------------------------------------------------------

def cross_entropy(logits, target, weight=None, ignore_index: int = -100,
                  reduction: str = "mean"):
    """Softmax cross-entropy on logits with integer class targets, and its gradient.

    The softmax is fused in and computed stably (log-sum-exp after subtracting each row's
    maximum), so logits of any magnitude give a finite loss. The classes are on the LAST
    axis (PyTorch's `cross_entropy` takes them on axis 1).

    Parameters
    ----------
    logits : numpy.ndarray
        Unnormalised scores of shape (..., C), float32 or float64; the loss is computed in
        its dtype.
    target : array_like of int
        Class indices of shape (...) = logits.shape[:-1], each in [0, C) or equal to
        `ignore_index`.
    weight : array_like, optional
        Weight of each class, shape (C,), finite. Each position's loss is multiplied by
        the weight of its target class, and 'mean' divides by the sum of those weights
        (as PyTorch).
    ignore_index : int, default -100
        Target value whose positions add nothing to the loss, to the gradient or to the
        denominator of the mean.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        'mean' is the (weighted) average over positions not ignored, 0 with a zero
        gradient when every position is ignored; 'sum' adds them; 'none' returns the loss
        of every position, shape (...), 0 where ignored.

    Returns
    -------
    loss : float or numpy.ndarray
        A float for 'mean' and 'sum'; for 'none' an array of target's shape in logits'
        dtype.
    grad : numpy.ndarray
        d loss / d logits, shape (..., C), logits' dtype (for 'none': of the sum of the
        losses): ``weight[t] * (softmax(logits) - onehot(t))``, scaled for the mean.

    Raises
    ------
    TypeError
        logits is not a float array, target is not integer, weight is not real, or
        ignore_index is not an int.
    ValueError
        logits has no class axis or C = 0, target's shape is not logits.shape[:-1], a
        target is outside [0, C) and not ignore_index, weight is not (C,) or not finite,
        or reduction is unknown.
    """
    reduction = _check_reduction(reduction)
    logits = _check_pred(logits, "logits")
    if logits.ndim == 0 or logits.shape[-1] == 0:
        raise ValueError(
            f"logits must have shape (..., C) with C >= 1 classes, got {logits.shape}")
    C = logits.shape[-1]
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
    ignore_index = int(ignore_index)

    target = np.asarray(target)
    if target.dtype == np.bool_ or target.dtype.kind not in "iu":
        raise TypeError(f"target must be an array of integer class indices, got dtype {target.dtype}")
    if target.shape != logits.shape[:-1]:
        raise ValueError(
            f"target must have shape logits.shape[:-1] = {logits.shape[:-1]}, got {target.shape}")

    dtype = logits.dtype
    x = logits.reshape(-1, C)
    t = target.reshape(-1).astype(np.int64)
    ignored = t == ignore_index
    bad = ~ignored & ((t < 0) | (t >= C))
    if bad.any():
        raise ValueError(
            f"target must hold class indices in [0, {C}) or ignore_index={ignore_index}, "
            f"got {t[bad][0]}")

    if weight is not None:
        w = np.asarray(weight)
        if w.dtype == np.bool_ or w.dtype.kind not in "iuf":
            raise TypeError(f"weight must be an array of real numbers, got dtype {w.dtype}")
        if w.shape != (C,):
            raise ValueError(f"weight must have shape (C,) = ({C},), got {w.shape}")
        w = w.astype(dtype)
        if not np.all(np.isfinite(w)):
            raise ValueError("weight must be finite")

    M = x.shape[0]
    rows = np.arange(M)
    t_safe = np.where(ignored, 0, t)           # any valid column for the ignored rows
    # Per-position weights: the class weight, 0 where ignored.
    if weight is None:
        wpos = (~ignored).astype(dtype)
    else:
        wpos = w[t_safe]
        wpos[ignored] = 0

    # One (M, C) buffer: shifted logits, then their exponentials, then the gradient.
    buf = x - x.max(axis=1, keepdims=True) if M else np.empty((0, C), dtype)
    picked = buf[rows, t_safe]                 # shifted logit of the target (a copy)
    np.exp(buf, out=buf)
    sumexp = buf.sum(axis=1)
    losses = (np.log(sumexp) - picked) * wpos  # -log softmax(x)[t], weighted
    losses[ignored] = 0                        # even where the ignored row is not finite
    buf /= sumexp[:, None]                     # softmax
    buf[rows, t_safe] -= dtype.type(1)

    if reduction == "mean":
        denom = float(wpos.sum(dtype=np.float64))
        if denom == 0.0:
            buf.fill(0)
            return 0.0, buf.reshape(logits.shape)
        scale = wpos * dtype.type(1.0 / denom)
        buf *= scale[:, None]
        value = float(losses.sum(dtype=np.float64) / denom)
        return value, buf.reshape(logits.shape)
    buf *= wpos[:, None]
    if reduction == "sum":
        return float(losses.sum()), buf.reshape(logits.shape)
    return losses.reshape(target.shape), buf.reshape(logits.shape)


# -- the classes -----------------------------------------------------------------------

class _Loss:
    """Base of the loss objects: a reduction and a call returning (loss, grad)."""

    def __init__(self, reduction: str = "mean"):
        self.reduction = _check_reduction(reduction)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class MSELoss(_Loss):
    """Mean squared error as an object: ``loss, grad = MSELoss()(pred, target)``.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        See `mse_loss`.
    """

    def __call__(self, pred, target):
        """The loss and d loss / d pred; see `mse_loss`."""
        return mse_loss(pred, target, self.reduction)


class L1Loss(_Loss):
    """Mean absolute error as an object: ``loss, grad = L1Loss()(pred, target)``.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        See `l1_loss`.
    """

    def __call__(self, pred, target):
        """The loss and d loss / d pred; see `l1_loss`."""
        return l1_loss(pred, target, self.reduction)


#: Mean absolute error: the same class as `L1Loss`.
MAELoss = L1Loss


class HuberLoss(_Loss):
    """Huber loss as an object: ``loss, grad = HuberLoss(delta=1.0)(pred, target)``.

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        See `huber_loss`.
    delta : float, default 1.0
        Where the loss turns from quadratic to linear; > 0.
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        self.delta = _check_positive(delta, "delta")

    def __call__(self, pred, target):
        """The loss and d loss / d pred; see `huber_loss`."""
        return huber_loss(pred, target, self.reduction, self.delta)

    def __repr__(self) -> str:
        return f"HuberLoss(reduction={self.reduction!r}, delta={self.delta})"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy on logits (..., C) with integer targets (...), as an object:
    ``loss, grad = CrossEntropyLoss()(logits, target)``.

    Parameters
    ----------
    weight : array_like, optional
        Weight of each class, shape (C,).
    ignore_index : int, default -100
        Target value whose positions are left out of the loss and the mean.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        See `cross_entropy`.
    """

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
            raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
        self.ignore_index = int(ignore_index)
        if weight is not None:
            w = np.asarray(weight)
            if w.dtype == np.bool_ or w.dtype.kind not in "iuf":
                raise TypeError(f"weight must be an array of real numbers, got dtype {w.dtype}")
            if w.ndim != 1:
                raise ValueError(f"weight must have shape (C,), got {w.shape}")
            weight = w.copy()
        self.weight = weight

    def __call__(self, logits, target):
        """The loss and d loss / d logits; see `cross_entropy`."""
        return cross_entropy(logits, target, self.weight, self.ignore_index, self.reduction)

    def __repr__(self) -> str:
        w = "None" if self.weight is None else f"array of {self.weight.shape[0]}"
        return (f"CrossEntropyLoss(weight={w}, ignore_index={self.ignore_index}, "
                f"reduction={self.reduction!r})")
