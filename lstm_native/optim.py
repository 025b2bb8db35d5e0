"""Optimizers (SGD, Adam, AdamW, RMSprop) and gradient clipping over a model's public
interface: `model.parameters()` (live arrays, updated in place) and `model.grads`.

Design notes:

- The update rules are `torch.optim`'s single-tensor ones (`torch/optim/sgd.py`,
  `adam.py`, `rmsprop.py`), operation for operation, with the same defaults; the tests
  run both on the same gradients and compare.
- One optimizer drives one model with one learning rate (`lr`, settable: the schedules in
  `lstm_native.schedules` change it). There are no parameter groups.
- State lives in the parameter's dtype, keyed by the model's parameter names. Every step
  works in place: the buffers are allocated once, and the temporaries of an update are
  two scratch arrays per dtype, the size of the largest parameter.
- `state_dict()` is JSON-ready metadata plus named arrays, for a checkpoint that keeps
  the arrays in an .npz and the rest as JSON; `load_state_dict` restores it exactly, so a
  resumed run takes bitwise the same steps as an uninterrupted one.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from ._validation import FLOAT_DTYPES, check_size

__all__ = ["Adam", "AdamW", "Optimizer", "RMSprop", "SGD", "clip_grad_norm"]


# -- argument checks -------------------------------------------------------------------

def _check_float(value, name: str, low=None, high=None, *, low_open=False, high_open=False,
                 allow_inf=False) -> float:
    """A real number (not bool) within [low, high] (open ends as asked), as a float."""
    lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
    if low is not None and high is not None:
        what = f"a float in {lo}, {hi}"
    elif low is not None:
        what = f"a float {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        what = f"a float {'<' if high_open else '<='} {high:g}"
    else:
        what = "a finite float"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be {what}, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {what}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name} must be {what}, got {v}")
    return v


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _model_arrays(model, name: str = "model"):
    """(parameters, grads) of a model, both mappings of name -> array, checked to match."""
    if not callable(getattr(model, "parameters", None)) or not hasattr(model, "grads"):
        raise TypeError(
            f"{name} must have parameters() and grads (an lstm_native Module), "
            f"got {type(model).__name__}")
    params, grads = model.parameters(), model.grads
    if not isinstance(params, Mapping) or not isinstance(grads, Mapping):
        raise TypeError(f"{name}.parameters() and {name}.grads must be dicts of arrays")
    if set(params) != set(grads):
        raise ValueError(
            f"{name}.grads must have the keys of {name}.parameters(): "
            f"missing {sorted(set(params) - set(grads))}, "
            f"unexpected {sorted(set(grads) - set(params))}")
    for key, p in params.items():
        g = grads[key]
        if not isinstance(p, np.ndarray) or p.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} parameter {key!r} must be a float32 or float64 array")
        if not isinstance(g, np.ndarray) or g.shape != p.shape or g.dtype != p.dtype:
            raise ValueError(
                f"{name}.grads[{key!r}] must be an array of the parameter's shape "
                f"{p.shape} and dtype {p.dtype}")
    return params, grads


def _lerp_(a: np.ndarray, b: np.ndarray, weight: float, work: np.ndarray) -> None:
    """a <- a + weight * (b - a), as torch's `lerp_` (its two branches by |weight|)."""
    np.subtract(b, a, out=work)
    if abs(weight) < 0.5:
        work *= weight
        a += work
    else:
        work *= 1.0 - weight
        np.subtract(b, work, out=a)


# -- the base class ----------------------------------------------------------------------

class Optimizer:
    """Base of the optimizers: the model, the learning rate, the step count, the state.

    Subclasses define `_HYPER` (hyperparameter names, in `state_dict` order),
    `_check_hyper` (validate them), `_buffer_kinds` (state arrays kept per parameter for
    given hyperparameters) and `_update` (one parameter's step).

    Parameters
    ----------
    model : Module
        Anything with `parameters()` (name -> live float array) and `grads` (the same
        names, shapes and dtypes).
    hyper : dict
        The validated hyperparameters, `lr` among them.
    """

    _HYPER: tuple = ("lr",)

    def __init__(self, model, hyper: dict):
        params, _ = _model_arrays(model)
        if not params:
            raise ValueError("model has no parameters to optimize")
        self._model = model
        self._specs = {name: (p.shape, p.dtype) for name, p in params.items()}
        self._step = 0
        self._hyper = {}
        self._buffers: dict[str, dict[str, np.ndarray]] = {}
        self._apply_hyper(hyper)
        self._buffers = self._zero_buffers(hyper)
        # Scratch: two flat arrays per dtype, as long as the largest parameter.
        self._scratch = {}
        for shape, dtype in self._specs.values():
            size = max(int(np.prod(shape)), 1)
            have = self._scratch.get(dtype)
            if have is None or have[0].size < size:
                self._scratch[dtype] = (np.empty(size, dtype), np.empty(size, dtype))

    # -- hyperparameters --------------------------------------------------------------

    @classmethod
    def _check_hyper(cls, **hyper) -> dict:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @classmethod
    def _buffer_kinds(cls, hyper: dict) -> tuple:  # pragma: no cover
        raise NotImplementedError

    def _apply_hyper(self, hyper: dict) -> None:
        self._hyper = dict(hyper)

    @property
    def lr(self) -> float:
        """The learning rate, a float >= 0; set it to change the rate of the next steps."""
        return self._hyper["lr"]

    @lr.setter
    def lr(self, value) -> None:
        self._hyper["lr"] = _check_float(value, "lr", 0.0)

    @property
    def model(self):
        """The model whose parameters `step` updates (read-only)."""
        return self._model

    @property
    def hyper(self) -> dict:
        """A copy of the hyperparameters, JSON-ready (tuples as lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self._hyper.items()}

    @property
    def step_count(self) -> int:
        """The number of steps taken (restored by `load_state_dict`)."""
        return self._step

    def __getattr__(self, name):
        # Read access to every hyperparameter as an attribute (optimizer.momentum, ...).
        hyper = self.__dict__.get("_hyper")
        if hyper is not None and name in hyper:
            return hyper[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name != "lr" and name in type(self)._HYPER:
            raise AttributeError(
                f"{name} is fixed at construction (load_state_dict can change it); "
                "only lr is settable")
        super().__setattr__(name, value)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyper.items())
        return f"{type(self).__name__}({args})"

    # -- state --------------------------------------------------------------------------

    def _zero_buffers(self, hyper: dict) -> dict:
        return {kind: {name: np.zeros(shape, dtype) for name, (shape, dtype) in self._specs.items()}
                for kind in self._buffer_kinds(hyper)}

    def _work(self, p: np.ndarray) -> tuple:
        a, b = self._scratch[p.dtype]
        n = p.size
        return a[:n].reshape(p.shape), b[:n].reshape(p.shape)

    # -- the public interface -------------------------------------------------------

    def step(self) -> None:
        """Update every parameter of the model in place from its gradient in `model.grads`.

        Raises
        ------
        RuntimeError
            The model's parameters no longer match those the optimizer was built with.

        Notes
        -----
        As in PyTorch, a step that overflows (a huge lr or weight_decay, a gradient that
        is not finite) writes the resulting nan or inf into the parameters and the state:
        checking and restoring every step would cost a copy of all of them, as much as the
        update itself. `fit` stops with FloatingPointError at the next non-finite loss,
        and the optimizer's `state_dict` still loads back.
        """
        pairs = self._checked_pairs()
        first = self._step == 0
        self._step += 1  # the updates' bias corrections count this step
        for name, p, g in pairs:
            bufs = {kind: b[name] for kind, b in self._buffers.items()}
            self._update(p, g, bufs, self._work(p), first)

    def _checked_pairs(self) -> list:
        """[(name, parameter, gradient)], RuntimeError if the model's parameters are no
        longer those the optimizer was built with."""
        params, grads = self._model.parameters(), self._model.grads
        if len(params) != len(self._specs):
            raise RuntimeError(
                "the model's parameters changed since the optimizer was created: "
                f"{sorted(params)} vs {sorted(self._specs)}")
        pairs = []
        for name, (shape, dtype) in self._specs.items():
            try:
                p, g = params[name], grads[name]
            except KeyError:
                raise RuntimeError(
                    f"the model has no parameter or gradient {name!r} any more") from None
            if p.shape != shape or g.shape != shape:
                raise RuntimeError(f"parameter {name!r} changed shape since the optimizer "
                                   f"was created: {shape} -> {p.shape}")
            pairs.append((name, p, g))
        return pairs

    def _step_slices(self, slices) -> None:
        """One step that updates only slices of the flattened parameters, from gradients
        given: the step divided among ranks (`lstm_native.distributed`), each rank
        updating its slices and their state.

        `slices` holds (name, lo, hi, g): elements lo..hi-1 of parameter `name`
        flattened (C order) and their gradient g, a 1-D array of hi - lo. Only for the
        optimizers whose `_update` is elementwise (SGD, Adam, AdamW, RMSprop): each
        element then takes bitwise the update `step` gives it. The step count advances
        as in `step`.
        """
        params = {name: p for name, p, _ in self._checked_pairs()}
        for name, _, _, _ in slices:
            if not params[name].flags.c_contiguous:
                raise RuntimeError(f"parameter {name!r} is not C-contiguous: its slices "
                                   "cannot be updated in place")
        first = self._step == 0
        self._step += 1
        for name, lo, hi, g in slices:
            p = params[name].reshape(-1)[lo:hi]
            bufs = {kind: b[name].reshape(-1)[lo:hi] for kind, b in self._buffers.items()}
            self._update(p, g, bufs, self._work(p), first)

    def _update(self, p, g, bufs, work, first) -> None:  # pragma: no cover
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Set the model's gradients to zero (`model.zero_grad()` when it has one)."""
        zero = getattr(self._model, "zero_grad", None)
        if callable(zero):
            zero()
        else:
            for g in self._model.grads.values():
                g.fill(0)

    def state_dict(self) -> dict:
        """Everything needed to resume: JSON-ready metadata and named arrays.

        Returns
        -------
        dict
            ``{"type": str, "hyper": dict, "step": int, "buffers": dict}``:

            - ``type``: the class name, e.g. ``"Adam"``;
            - ``hyper``: every constructor argument but the model, current values
              (``lr`` as changed by a schedule), floats, bools and ``betas`` as a list;
            - ``step``: the number of steps taken;
            - ``buffers``: copies of the state arrays, one per (buffer, parameter), named
              ``"<buffer>.<parameter name>"``, e.g. ``"exp_avg.0.weight_ih_l0"``; each
              of the parameter's shape and dtype. Buffers are ``momentum_buffer`` (SGD
              with momentum, RMSprop with momentum), ``exp_avg``, ``exp_avg_sq``,
              ``max_exp_avg_sq`` (Adam/AdamW, the last with amsgrad), ``square_avg``,
              ``grad_avg`` (RMSprop, the last when centered).

            Everything but ``buffers`` serialises with `json.dumps` as it is.
        """
        return {
            "type": type(self).__name__,
            "hyper": self.hyper,
            "step": self._step,
            "buffers": {f"{kind}.{name}": arr.copy()
                        for kind, by_name in self._buffers.items()
                        for name, arr in by_name.items()},
        }

    def load_state_dict(self, state_dict) -> None:
        """Restore a `state_dict()` of the same optimizer type over the same parameters.

        The hyperparameters are taken from it (as in PyTorch), the buffers are copied in
        the parameter's dtype. Everything is checked before anything is changed, so a
        failed load leaves the optimizer as it was.

        Parameters
        ----------
        state_dict : mapping
            ``{"type", "hyper", "step", "buffers"}`` as returned by `state_dict`; the
            buffers may be any float arrays of the right shapes (e.g. read from an .npz).

        Raises
        ------
        KeyError
            A top-level key, hyperparameter or buffer is missing or unexpected.
        TypeError
            A value has the wrong type (a buffer not a float array).
        ValueError
            ``type`` names another optimizer, a value is out of range, or a buffer has
            the wrong shape. (A buffer may hold nan or inf, as one a diverged step wrote:
            what `state_dict` returns always loads back.)
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        keys = {"type", "hyper", "step", "buffers"}
        if set(state_dict) != keys:
            raise KeyError(f"state_dict must have exactly the keys {sorted(keys)}, "
                           f"got {sorted(state_dict)}")
        if state_dict["type"] != type(self).__name__:
            raise ValueError(f"state_dict['type'] is {state_dict['type']!r}, "
                             f"cannot load it into {type(self).__name__}")
        hyper = state_dict["hyper"]
        if not isinstance(hyper, Mapping):
            raise TypeError("state_dict['hyper'] must be a dict")
        if set(hyper) != set(self._HYPER):
            raise KeyError(f"state_dict['hyper'] must have exactly the keys "
                           f"{sorted(self._HYPER)}, got {sorted(hyper)}")
        hyper = self._check_hyper(**hyper)
        step = check_size(state_dict["step"], "state_dict['step']", minimum=0)
        given = state_dict["buffers"]
        if not isinstance(given, Mapping):
            raise TypeError("state_dict['buffers'] must be a dict of arrays")
        expected = {f"{kind}.{name}": (kind, name) for kind in self._buffer_kinds(hyper)
                    for name in self._specs}
        if set(given) != set(expected):
            raise KeyError(
                f"state_dict['buffers'] does not match {type(self).__name__} over this model: "
                f"missing {sorted(set(expected) - set(given))}, "
                f"unexpected {sorted(set(given) - set(expected))}")
        buffers: dict[str, dict[str, np.ndarray]] = {kind: {} for kind in self._buffer_kinds(hyper)}
        for key, (kind, name) in expected.items():
            shape, dtype = self._specs[name]
            value = np.asarray(given[key])
            if value.dtype not in FLOAT_DTYPES:
                raise TypeError(f"state_dict['buffers'][{key!r}] must be a float array, "
                                f"got dtype {value.dtype}")
            if value.shape != shape:
                raise ValueError(f"state_dict['buffers'][{key!r}] must have shape {shape}, "
                                 f"got {value.shape}")
            with np.errstate(over="ignore", invalid="ignore"):
                value = np.array(value, dtype=dtype, order="C", copy=True)
            buffers[kind][name] = value
        self._apply_hyper(hyper)
        self._step = step
        self._buffers = buffers


# -- SGD -------------------------------------------------------------------------------

class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as `torch.optim.SGD`.

    For each parameter p with gradient g (λ = weight_decay, μ = momentum,
    τ = dampening)::

        g = g + λ p                       if λ != 0
        b = g (first step), else μ b + (1 - τ) g      if μ != 0
        g = g + μ b (nesterov), else b                if μ != 0
        p = p - lr g

    Parameters
    ----------
    model : Module
        Anything with `parameters()` and `grads` (same names, shapes, dtypes).
    lr : float, default 1e-3
        Learning rate, >= 0.
    momentum : float, default 0
        Momentum factor μ, >= 0.
    dampening : float, default 0
        Dampening τ of the momentum's new gradient.
    nesterov : bool, default False
        Nesterov momentum; needs momentum > 0 and dampening = 0.
    weight_decay : float, default 0
        L2 penalty λ added to the gradient, >= 0.

    Raises
    ------
    TypeError, ValueError
        An argument has the wrong type or value; the message names it.
    """

    _HYPER = ("lr", "momentum", "dampening", "nesterov", "weight_decay")

    def __init__(self, model, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(model, self._check_hyper(
            lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
            weight_decay=weight_decay))

    @classmethod
    def _check_hyper(cls, lr, momentum, dampening, nesterov, weight_decay) -> dict:
        hyper = dict(
            lr=_check_float(lr, "lr", 0.0),
            momentum=_check_float(momentum, "momentum", 0.0),
            dampening=_check_float(dampening, "dampening"),
            nesterov=_check_bool(nesterov, "nesterov"),
            weight_decay=_check_float(weight_decay, "weight_decay", 0.0),
        )
        if hyper["nesterov"] and (hyper["momentum"] <= 0 or hyper["dampening"] != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0")
        return hyper

    @classmethod
    def _buffer_kinds(cls, hyper: dict) -> tuple:
        return ("momentum_buffer",) if hyper["momentum"] != 0 else ()

    def _update(self, p, g, bufs, work, first) -> None:
        h = self._hyper
        lr, momentum, dampening, wd = h["lr"], h["momentum"], h["dampening"], h["weight_decay"]
        w0, w1 = work
        d = g
        if wd != 0:
            np.multiply(p, wd, out=w0)
            w0 += g
            d = w0
        if momentum != 0:
            buf = bufs["momentum_buffer"]
            if first:
                np.copyto(buf, d)
            else:
                buf *= momentum
                if dampening == 0:
                    buf += d
                else:  # nesterov is off, so d is not needed after this
                    np.multiply(d, 1.0 - dampening, out=w0)
                    buf += w0
            if h["nesterov"]:
                np.multiply(buf, momentum, out=w1)
                w1 += d
                d = w1
            else:
                d = buf
        np.multiply(d, -lr, out=w1)
        p += w1


# -- Adam / AdamW ----------------------------------------------------------------------

class Adam(Optimizer):
    """Adam, as `torch.optim.Adam` (with amsgrad).

    At step t, for each parameter p with gradient g (λ = weight_decay)::

        g = g + λ p                                    if λ != 0
        m = m + (1 - β1)(g - m)                        (lerp)
        v = β2 v + (1 - β2) g²
        v̂ = max(v̂, v); use v̂ for v below              if amsgrad
        p = p - lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + eps)

    Parameters
    ----------
    model : Module
        Anything with `parameters()` and `grads` (same names, shapes, dtypes).
    lr : float, default 1e-3
        Learning rate, >= 0.
    betas : (float, float), default (0.9, 0.999)
        Decay rates β1, β2 of the first and second moment averages, each in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, >= 0.
    weight_decay : float, default 0
        L2 penalty λ added to the gradient, >= 0.
    amsgrad : bool, default False
        Normalise by the running maximum of the second moment.

    Raises
    ------
    TypeError, ValueError
        An argument has the wrong type or value; the message names it.
    """

    _HYPER = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    _DECOUPLED = False

    def __init__(self, model, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(model, self._check_hyper(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    @classmethod
    def _check_hyper(cls, lr, betas, eps, weight_decay, amsgrad) -> dict:
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair of floats in [0, 1), got {betas!r}")
        return dict(
            lr=_check_float(lr, "lr", 0.0),
            betas=(_check_float(betas[0], "betas[0]", 0.0, 1.0, high_open=True),
                   _check_float(betas[1], "betas[1]", 0.0, 1.0, high_open=True)),
            eps=_check_float(eps, "eps", 0.0),
            weight_decay=_check_float(weight_decay, "weight_decay", 0.0),
            amsgrad=_check_bool(amsgrad, "amsgrad"),
        )

    @classmethod
    def _buffer_kinds(cls, hyper: dict) -> tuple:
        kinds = ("exp_avg", "exp_avg_sq")
        return kinds + ("max_exp_avg_sq",) if hyper["amsgrad"] else kinds

    def _update(self, p, g, bufs, work, first) -> None:
        h = self._hyper
        lr, (beta1, beta2), eps, wd = h["lr"], h["betas"], h["eps"], h["weight_decay"]
        w0, w1 = work
        exp_avg, exp_avg_sq = bufs["exp_avg"], bufs["exp_avg_sq"]
        t = self._step
        d = g
        if wd != 0:
            if self._DECOUPLED:
                p *= 1.0 - lr * wd
            else:
                np.multiply(p, wd, out=w0)
                w0 += g
                d = w0
        _lerp_(exp_avg, d, 1.0 - beta1, w1)
        exp_avg_sq *= beta2
        np.multiply(d, 1.0 - beta2, out=w1)
        w1 *= d
        exp_avg_sq += w1

        step_size = lr / (1.0 - beta1 ** t)
        bias_correction2_sqrt = (1.0 - beta2 ** t) ** 0.5
        second = exp_avg_sq
        if h["amsgrad"]:
            second = bufs["max_exp_avg_sq"]
            np.maximum(second, exp_avg_sq, out=second)
        np.sqrt(second, out=w1)                 # denominator
        w1 /= bias_correction2_sqrt
        w1 += eps
        np.multiply(exp_avg, -step_size, out=w0)
        w0 /= w1
        p += w0


class AdamW(Adam):
    """Adam with decoupled weight decay, as `torch.optim.AdamW`.

    As `Adam`, except that the weight decay shrinks the parameter directly,
    ``p = p (1 - lr λ)``, before the update, instead of entering the gradient and the
    moment averages.

    Parameters
    ----------
    model : Module
        Anything with `parameters()` and `grads` (same names, shapes, dtypes).
    lr : float, default 1e-3
        Learning rate, >= 0.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the moment averages, each in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, >= 0.
    weight_decay : float, default 1e-2
        Decoupled weight decay λ, >= 0.
    amsgrad : bool, default False
        Normalise by the running maximum of the second moment.

    Raises
    ------
    TypeError, ValueError
        An argument has the wrong type or value; the message names it.
    """

    _DECOUPLED = True

    def __init__(self, model, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(model, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)


# -- RMSprop ---------------------------------------------------------------------------

class RMSprop(Optimizer):
    """RMSprop, as `torch.optim.RMSprop`.

    For each parameter p with gradient g (λ = weight_decay, α = alpha, μ = momentum)::

        g = g + λ p                                    if λ != 0
        s = α s + (1 - α) g²
        a = a + (1 - α)(g - a); avg = sqrt(s - a²)     if centered
        avg = sqrt(s)                                  otherwise
        b = μ b + g / (avg + eps); p = p - lr b        if μ > 0
        p = p - lr g / (avg + eps)                     otherwise

    Parameters
    ----------
    model : Module
        Anything with `parameters()` and `grads` (same names, shapes, dtypes).
    lr : float, default 1e-2
        Learning rate, >= 0.
    alpha : float, default 0.99
        Smoothing constant of the squared-gradient average, in [0, 1].
    eps : float, default 1e-8
        Added to the denominator, >= 0.
    weight_decay : float, default 0
        L2 penalty λ added to the gradient, >= 0.
    momentum : float, default 0
        Momentum factor, >= 0.
    centered : bool, default False
        Normalise by an estimate of the gradient's variance instead of its second moment.

    Raises
    ------
    TypeError, ValueError
        An argument has the wrong type or value; the message names it.
    """

    _HYPER = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, model, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(model, self._check_hyper(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
            centered=centered))

    @classmethod
    def _check_hyper(cls, lr, alpha, eps, weight_decay, momentum, centered) -> dict:
        return dict(
            lr=_check_float(lr, "lr", 0.0),
            alpha=_check_float(alpha, "alpha", 0.0, 1.0),
            eps=_check_float(eps, "eps", 0.0),
            weight_decay=_check_float(weight_decay, "weight_decay", 0.0),
            momentum=_check_float(momentum, "momentum", 0.0),
            centered=_check_bool(centered, "centered"),
        )

    @classmethod
    def _buffer_kinds(cls, hyper: dict) -> tuple:
        kinds = ("square_avg",)
        if hyper["momentum"] > 0:
            kinds += ("momentum_buffer",)
        if hyper["centered"]:
            kinds += ("grad_avg",)
        return kinds

    def _update(self, p, g, bufs, work, first) -> None:
        h = self._hyper
        lr, alpha, eps, wd, momentum = (h["lr"], h["alpha"], h["eps"], h["weight_decay"],
                                        h["momentum"])
        w0, w1 = work
        square_avg = bufs["square_avg"]
        d = g
        if wd != 0:
            np.multiply(p, wd, out=w0)
            w0 += g
            d = w0
        square_avg *= alpha
        np.multiply(d, 1.0 - alpha, out=w1)
        w1 *= d
        square_avg += w1
        if h["centered"]:
            grad_avg = bufs["grad_avg"]
            _lerp_(grad_avg, d, 1.0 - alpha, w1)
            np.multiply(grad_avg, grad_avg, out=w1)
            np.subtract(square_avg, w1, out=w1)
            np.sqrt(w1, out=w1)
        else:
            np.sqrt(square_avg, out=w1)
        w1 += eps                               # avg
        if momentum > 0:
            buf = bufs["momentum_buffer"]
            buf *= momentum
            np.divide(d, w1, out=w1)
            buf += w1
            np.multiply(buf, -lr, out=w1)
            p += w1
        else:
            np.multiply(d, -lr, out=w0)         # in place when d is w0
            w0 /= w1
            p += w0


# -- gradient clipping -----------------------------------------------------------------

def clip_grad_norm(model, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False) -> float:
    """Scale all of a model's gradients in place so that their global norm is at most
    `max_norm`, as `torch.nn.utils.clip_grad_norm_`.

    The norm is taken over all gradients as one vector (accumulated in float64). When it
    exceeds `max_norm`, every gradient is multiplied by ``max_norm / (norm + 1e-6)``.

    Parameters
    ----------
    model : Module
        Anything with `grads`, a dict of float arrays.
    max_norm : float
        The largest norm allowed, >= 0 (inf: measure only).
    norm_type : float, default 2.0
        The p of the p-norm, > 0, or inf for the largest absolute value.
    error_if_nonfinite : bool, default False
        Raise instead of scaling when the norm is nan or inf (otherwise, as PyTorch,
        the gradients are scaled by the resulting nan or 0).

    Returns
    -------
    float
        The total norm of the gradients before clipping.

    Raises
    ------
    TypeError
        model has no `grads` dict of float arrays, or an argument has the wrong type.
    ValueError
        max_norm < 0 or nan, norm_type <= 0 or nan.
    RuntimeError
        The norm is not finite and `error_if_nonfinite` is True.
    """
    grads = getattr(model, "grads", None)
    if not isinstance(grads, Mapping):
        raise TypeError(f"model must have grads (a dict of arrays, as an lstm_native Module), "
                        f"got {type(model).__name__}")
    max_norm = _check_float(max_norm, "max_norm", 0.0, allow_inf=True)
    norm_type = _check_float(norm_type, "norm_type", 0.0, low_open=True, allow_inf=True)
    error_if_nonfinite = _check_bool(error_if_nonfinite, "error_if_nonfinite")
    arrays = []
    for key, g in grads.items():
        if not isinstance(g, np.ndarray) or g.dtype not in FLOAT_DTYPES:
            raise TypeError(f"model.grads[{key!r}] must be a float32 or float64 array")
        if g.size:
            arrays.append(g)
    if not arrays:
        return 0.0

    if math.isinf(norm_type):
        total = max(float(max(g.max(), -g.min())) for g in arrays)
    else:
        acc = 0.0
        for g in arrays:
            x = g.ravel().astype(np.float64, copy=False)
            if norm_type == 2.0:
                acc += float(np.dot(x, x))
            elif norm_type == 1.0:
                acc += float(np.abs(x).sum())
            else:
                acc += float(np.sum(np.abs(x) ** norm_type))
        try:
            total = acc ** (1.0 / norm_type)
        except OverflowError:  # a small p: the norm is past the float range
            total = math.inf

    if not math.isfinite(total) and error_if_nonfinite:
        raise RuntimeError(
            f"the total norm of order {norm_type} of the gradients is {total}, so they "
            "cannot be clipped (pass error_if_nonfinite=False to scale them anyway)")
    _scale_to_norm(arrays, max_norm, total)
    return total


def _scale_to_norm(arrays, max_norm: float, total: float) -> None:
    """torch's rule: the arrays, whose norm together is `total`, multiplied in place by
    ``max_norm / (total + 1e-6)`` when that is below 1 (also when nan)."""
    with np.errstate(invalid="ignore"):
        coef = max_norm / (total + 1e-6)
        if not coef >= 1.0:  # also when nan, as PyTorch
            for g in arrays:
                g *= g.dtype.type(coef)
