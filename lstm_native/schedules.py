"""Learning-rate schedules, epoch-based as `torch.optim.lr_scheduler`: they set the
`lr` of an `lstm_native.optim` optimizer.

Call `step()` once per epoch after the epoch's optimizer steps (`step(metric)` for
the schedules whose `takes_metric` is True: `ReduceLROnPlateau`). Like PyTorch's, `StepLR`
and `CosineAnnealingLR` are chainable: each step updates the optimizer's CURRENT lr by
the same recursive formulas as PyTorch (so the sequences agree with PyTorch's to the
last bit), and the state they need to resume is small and JSON-ready.

A checkpoint holds the optimizer's `state_dict()` (which carries the current lr) and the
scheduler's; loading both resumes the schedule exactly. Loading a scheduler's state does
not touch the optimizer's lr, as in PyTorch.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from ._validation import check_size
from .optim import Optimizer, _check_float

__all__ = ["CosineAnnealingLR", "LRScheduler", "ReduceLROnPlateau", "StepLR"]


def _encode_float(x: float):
    """A float for JSON: itself when finite, else the string 'inf', '-inf' or 'nan'."""
    return x if math.isfinite(x) else str(x)


def _decode_float(x, name: str) -> float:
    if isinstance(x, str):
        if x not in ("inf", "-inf", "nan"):
            raise ValueError(f"{name} must be a float or 'inf', '-inf', 'nan', got {x!r}")
        return float(x)
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a float, got {x!r}")
    return float(x)


class LRScheduler:
    """Base of the schedules: the optimizer, its initial lr, the epoch count.

    Parameters
    ----------
    optimizer : lstm_native.optim.Optimizer
        The optimizer whose `lr` the schedule sets; its lr now is the schedule's `base_lr`.

    Attributes
    ----------
    optimizer : Optimizer
    base_lr : float
        The optimizer's lr when the schedule was created.
    last_epoch : int
        The number of `step()` calls so far.
    takes_metric : bool
        Whether `step` takes the epoch's metric, ``step(metric)`` (`ReduceLROnPlateau`);
        `fit` passes it the validation loss then (the training loss without validation
        data), else calls ``step()``. A class attribute: a schedule declares it.
    """

    takes_metric: bool = False
    _HYPER: tuple = ()
    _STATE: tuple = ("base_lr", "last_epoch", "last_lr")

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be an lstm_native.optim optimizer (SGD, Adam, ...), "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        self._last_lr = optimizer.lr

    @classmethod
    def _check_hyper(cls, **hyper) -> dict:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def get_last_lr(self) -> float:
        """The lr the schedule last set (the optimizer's lr at creation before any step).

        Returns
        -------
        float
            One value: lstm_native optimizers have a single lr (PyTorch returns a list
            with one entry per parameter group).
        """
        return self._last_lr

    def step(self) -> None:
        """End an epoch: advance `last_epoch` and set the optimizer's lr for the next one."""
        self.last_epoch += 1
        self.optimizer.lr = self._get_lr()
        self._last_lr = self.optimizer.lr

    def _get_lr(self) -> float:  # pragma: no cover
        raise NotImplementedError

    def _hyper(self) -> dict:
        return {k: getattr(self, k) for k in self._HYPER}

    def _state(self) -> dict:
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch, "last_lr": self._last_lr}

    def _check_state(self, state: Mapping) -> dict:
        return {
            "base_lr": _check_float(state["base_lr"], "state_dict['base_lr']", 0.0),
            "last_epoch": check_size(state["last_epoch"], "state_dict['last_epoch']", minimum=0),
            "last_lr": _check_float(state["last_lr"], "state_dict['last_lr']", 0.0),
        }

    def _apply_state(self, state: dict) -> None:
        self.base_lr = state["base_lr"]
        self.last_epoch = state["last_epoch"]
        self._last_lr = state["last_lr"]

    def state_dict(self) -> dict:
        """The schedule's state, JSON-ready (only str, int, float, bool).

        Returns
        -------
        dict
            ``{"type": class name, "hyper": {constructor arguments but the optimizer},
            "base_lr": float, "last_epoch": int, "last_lr": float}``; `ReduceLROnPlateau`
            has ``best`` (a float, or 'inf'/'-inf'/'nan' as a string), ``num_bad_epochs``
            and ``cooldown_counter`` instead of ``base_lr``.
        """
        return {"type": type(self).__name__, "hyper": self._hyper(), **self._state()}

    def load_state_dict(self, state_dict) -> None:
        """Restore a `state_dict()` of the same schedule type.

        Everything is checked before anything changes. The optimizer's lr is not touched:
        load the optimizer's own state_dict for it.

        Parameters
        ----------
        state_dict : mapping
            As returned by `state_dict`.

        Raises
        ------
        KeyError
            A key is missing or unexpected.
        TypeError, ValueError
            ``type`` names another schedule, or a value has the wrong type or range.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        keys = {"type", "hyper", *self._STATE}
        if set(state_dict) != keys:
            raise KeyError(f"state_dict must have exactly the keys {sorted(keys)}, "
                           f"got {sorted(state_dict)}")
        if state_dict["type"] != type(self).__name__:
            raise ValueError(f"state_dict['type'] is {state_dict['type']!r}, "
                             f"cannot load it into {type(self).__name__}")
        hyper = state_dict["hyper"]
        if not isinstance(hyper, Mapping) or set(hyper) != set(self._HYPER):
            raise KeyError(f"state_dict['hyper'] must be a dict with exactly the keys "
                           f"{sorted(self._HYPER)}, got {hyper!r}")
        hyper = self._check_hyper(**hyper)
        state = self._check_state(state_dict)
        for k, v in hyper.items():
            setattr(self, k, v)
        self._apply_state(state)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyper().items())
        return f"{type(self).__name__}({args})"


class StepLR(LRScheduler):
    """Multiply the lr by `gamma` every `step_size` epochs, as `torch.optim.lr_scheduler.StepLR`.

    With an untouched optimizer lr, the lr of epoch e (after e `step()` calls) is
    ``base_lr * gamma ** (e // step_size)``.

    Parameters
    ----------
    optimizer : lstm_native.optim.Optimizer
        The optimizer whose `lr` is set.
    step_size : int
        Period of the decay in epochs, >= 1.
    gamma : float, default 0.1
        Multiplicative factor of the decay, >= 0.

    Raises
    ------
    TypeError, ValueError
        An argument has the wrong type or value; the message names it.
    """

    _HYPER = ("step_size", "gamma")

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        hyper = self._check_hyper(step_size=step_size, gamma=gamma)
        super().__init__(optimizer)
        self.step_size, self.gamma = hyper["step_size"], hyper["gamma"]

    @classmethod
    def _check_hyper(cls, step_size, gamma) -> dict:
        return {"step_size": check_size(step_size, "step_size"),
                "gamma": _check_float(gamma, "gamma", 0.0)}

    def _get_lr(self) -> float:
        lr = self.optimizer.lr
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lr
        return lr * self.gamma


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the initial lr down to `eta_min` over `T_max` epochs, as
    `torch.optim.lr_scheduler.CosineAnnealingLR`.

    With an untouched optimizer lr, the lr of epoch e is
    ``eta_min + (base_lr - eta_min) (1 + cos(pi e / T_max)) / 2``; it is computed by
    PyTorch's recursive form, and past `T_max` it rises again (a cosine of period
    2 T_max), also as PyTorch.

    Parameters
    ----------
    optimizer : lstm_native.optim.Optimizer
        The optimizer whose `lr` is set.
    T_max : int
        Epochs of the half period, >= 1.
    eta_min : float, default 0
        The smallest lr, >= 0.

    Raises
    ------
    TypeError, ValueError
        An argument has the wrong type or value; the message names it.
    """

    _HYPER = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        hyper = self._check_hyper(T_max=T_max, eta_min=eta_min)
        super().__init__(optimizer)
        self.T_max, self.eta_min = hyper["T_max"], hyper["eta_min"]

    @classmethod
    def _check_hyper(cls, T_max, eta_min) -> dict:
        return {"T_max": check_size(T_max, "T_max"),
                "eta_min": _check_float(eta_min, "eta_min", 0.0)}

    def _get_lr(self) -> float:
        # torch.optim.lr_scheduler.CosineAnnealingLR.get_lr, term for term.
        lr, e, T, eta_min = self.optimizer.lr, self.last_epoch, self.T_max, self.eta_min
        if e == 0:
            return lr
        if (e - 1 - T) % (2 * T) == 0:
            return lr + (self.base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
        return ((1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
                * (lr - eta_min) + eta_min)


class ReduceLROnPlateau(LRScheduler):
    """Reduce the lr when a metric stops improving, as
    `torch.optim.lr_scheduler.ReduceLROnPlateau`.

    Each `step(metric)` compares the metric to the best so far; after more than
    `patience` epochs without improvement the lr becomes ``max(lr * factor, min_lr)``
    (when that lowers it by more than `eps`), then `cooldown` epochs pass before bad
    epochs count again.

    Parameters
    ----------
    optimizer : lstm_native.optim.Optimizer
        The optimizer whose `lr` is set.
    mode : {'min', 'max'}, default 'min'
        Whether lower or higher metric values are better.
    factor : float, default 0.1
        Multiplier of the lr at a reduction, in [0, 1).
    patience : int, default 10
        Epochs without improvement tolerated before a reduction, >= 0.
    threshold : float, default 1e-4
        The least change that counts as an improvement, >= 0.
    threshold_mode : {'rel', 'abs'}, default 'rel'
        'rel': better than ``best * (1 - threshold)`` ('min') or
        ``best * (1 + threshold)`` ('max'); 'abs': than ``best -/+ threshold``.
    cooldown : int, default 0
        Epochs after a reduction during which bad epochs are not counted, >= 0.
    min_lr : float, default 0
        The lr is never reduced below this, >= 0.
    eps : float, default 1e-8
        A reduction smaller than this is skipped, >= 0.

    Attributes
    ----------
    best : float
        The best metric so far (inf in 'min' mode before the first step).
    num_bad_epochs : int
        Epochs since the last improvement (reset by a reduction and during cooldown).
    cooldown_counter : int
        Cooldown epochs left.

    Raises
    ------
    TypeError, ValueError
        An argument has the wrong type or value; the message names it.
    """

    takes_metric = True
    _HYPER = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown",
              "min_lr", "eps")
    _STATE = ("last_epoch", "last_lr", "best", "num_bad_epochs", "cooldown_counter")

    def __init__(self, optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0.0, eps: float = 1e-8):
        hyper = self._check_hyper(mode=mode, factor=factor, patience=patience,
                                  threshold=threshold, threshold_mode=threshold_mode,
                                  cooldown=cooldown, min_lr=min_lr, eps=eps)
        super().__init__(optimizer)
        for k, v in hyper.items():
            setattr(self, k, v)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    @classmethod
    def _check_hyper(cls, mode, factor, patience, threshold, threshold_mode, cooldown,
                     min_lr, eps) -> dict:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        return {
            "mode": mode,
            "factor": _check_float(factor, "factor", 0.0, 1.0, high_open=True),
            "patience": check_size(patience, "patience", minimum=0),
            "threshold": _check_float(threshold, "threshold", 0.0),
            "threshold_mode": threshold_mode,
            "cooldown": check_size(cooldown, "cooldown", minimum=0),
            "min_lr": _check_float(min_lr, "min_lr", 0.0),
            "eps": _check_float(eps, "eps", 0.0),
        }

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel"
                        else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if self.threshold_mode == "rel"
                    else best + self.threshold)

    def step(self, metric) -> None:
        """End an epoch with its metric (e.g. the validation loss); maybe reduce the lr.

        Parameters
        ----------
        metric : float
            A real number (a Python or NumPy scalar, or a 0-d array).

        Raises
        ------
        TypeError
            metric is not a real number.
        """
        arr = np.asarray(metric)
        if arr.shape != () or arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
            raise TypeError(f"metric must be a real number, got {metric!r}")
        current = float(arr)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old_lr = self.optimizer.lr
            new_lr = max(old_lr * self.factor, self.min_lr)
            if old_lr - new_lr > self.eps:
                self.optimizer.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self.optimizer.lr

    def _state(self) -> dict:
        return {"last_epoch": self.last_epoch, "last_lr": self._last_lr,
                "best": _encode_float(self.best), "num_bad_epochs": self.num_bad_epochs,
                "cooldown_counter": self.cooldown_counter}

    def _check_state(self, state: Mapping) -> dict:
        return {
            "last_epoch": check_size(state["last_epoch"], "state_dict['last_epoch']", minimum=0),
            "last_lr": _check_float(state["last_lr"], "state_dict['last_lr']", 0.0),
            "best": _decode_float(state["best"], "state_dict['best']"),
            "num_bad_epochs": check_size(state["num_bad_epochs"],
                                         "state_dict['num_bad_epochs']", minimum=0),
            "cooldown_counter": check_size(state["cooldown_counter"],
                                           "state_dict['cooldown_counter']", minimum=0),
        }

    def _apply_state(self, state: dict) -> None:
        self.last_epoch = state["last_epoch"]
        self._last_lr = state["last_lr"]
        self.best = state["best"]
        self.num_bad_epochs = state["num_bad_epochs"]
        self.cooldown_counter = state["cooldown_counter"]
