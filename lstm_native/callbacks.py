"""Callbacks: the hooks `fit` runs around its epochs and steps, and the ones it brings.

Design notes (the shape of Keras 3's ``CallbackList``, ``History`` and ``ProgbarLogger``):

- `fit` runs every hook through one `CallbackList`, in this order: the scheduler's step
  (first: a `ModelCheckpoint` then saves the schedule's new state), the user's callbacks,
  the `History` recorder (a callback's ``on_epoch_end`` sees ``run.history`` without the
  epoch ending now) and the printed progress (last: it prints the logs as the callbacks
  left them).
- A schedule says itself whether its step takes the epoch's monitored value
  (``takes_metric``, True for `ReduceLROnPlateau`); the loop knows no schedule type.
- The hooks and their arguments are the public `Callback` protocol: each gets the
  `TrainingRun`, the epoch and batch hooks also the logs.
"""
from __future__ import annotations

import math
import os
import re
import string
import sys
from collections.abc import Iterable, Mapping

from ._validation import check_size
from .checkpoint import save_checkpoint
from .optim import _check_bool, _check_float

__all__ = ["Callback", "CallbackList", "EarlyStopping", "History", "ModelCheckpoint",
           "TrainingRun", "format_epoch"]


def _describe(value) -> str:
    """A wrong argument as a message shows it: its type, or the class passed for an
    instance of it (the checks of `lstm_native.training` use it too)."""
    if isinstance(value, type):
        return f"the class {value.__name__} (an instance is needed)"
    return type(value).__name__


# -- History ---------------------------------------------------------------------------

class History(dict):
    """What `fit` returns: per-epoch lists, as Keras's ``History.history``.

    A dict (JSON-ready) of equally long lists, one entry per epoch run:

    - ``epoch``: the epoch's number, 1-based (``initial_epoch + 1`` first);
    - ``loss``: the mean training loss over the epoch's batches (weighted by batch size,
      or by steps under truncated BPTT), measured during training;
    - ``val_loss``: the loss on `validation_data` after the epoch, in eval mode (only with
      validation data);
    - one list per metric, and ``val_<metric>`` with validation data;
    - ``lr``: the optimizer's learning rate during the epoch;
    - ``seconds``: the epoch's wall time, validation included.

    Attributes
    ----------
    stopped_epoch : int or None
        The 1-based epoch after which a callback stopped training, None if none did.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stopped_epoch: int | None = None

    @property
    def history(self) -> History:
        """The dict itself (Keras's ``history.history``)."""
        return self

    def append(self, logs: Mapping) -> None:
        """Add one epoch's values (keys seen for the first time start a new list)."""
        for key, value in logs.items():
            self.setdefault(key, []).append(value)


# -- callbacks -------------------------------------------------------------------------

class TrainingRun:
    """What callbacks see of a running `fit`.

    Attributes
    ----------
    model, optimizer, scheduler
        As given to `fit` (scheduler may be None).
    history : History
        The epochs finished so far.
    epoch : int
        The 0-based index of the current epoch (the number of epochs done before it).
    epochs : int
        The index training stops at (`fit`'s `epochs`).
    stop_training : bool
        Set it to True to stop after the current epoch (under ``fit(...,
        distributed=True)``, rank 0's decision holds on every rank).
    rank : int
        This process's rank under ``fit(..., distributed=True)``, else 0: a callback that
        writes files or prints does it where ``run.rank == 0``, as `ModelCheckpoint`.
    """

    def __init__(self, model, optimizer, scheduler, epochs: int, initial_epoch: int):
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.history = History()
        self.epoch = initial_epoch
        self.epochs = epochs
        self.stop_training = False
        self.rank = 0

    def reset_states(self) -> None:
        """Forget a stateful model's kept (h, c): the next chunk starts from zeros."""
        reset = getattr(self.model, "reset_states", None)
        if callable(reset):
            reset()


class Callback:
    """Base of the callbacks: override any of the hooks.

    Each hook receives the `TrainingRun` (model, optimizer, history, epoch, and the
    `stop_training` flag to set); the epoch and batch hooks also get `logs`, a dict:
    after a batch ``{"batch": i, "size": samples, "loss": value}``, after an epoch what
    the `History` gets for that epoch (``epoch``, ``loss``, ``val_loss``, metrics, ``lr``,
    ``seconds``).
    """

    def on_train_begin(self, run: TrainingRun) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, run: TrainingRun) -> None:
        """Before each epoch (``run.epoch`` is its 0-based index)."""

    def on_batch_end(self, run: TrainingRun, logs: dict) -> None:
        """After each optimizer step (each chunk under truncated BPTT)."""

    def on_epoch_end(self, run: TrainingRun, logs: dict) -> None:
        """After each epoch, its validation and the scheduler's step."""

    def on_train_end(self, run: TrainingRun) -> None:
        """After the last epoch (also when a callback stopped training)."""


class CallbackList(Callback):
    """Run each hook of a sequence of callbacks, in their order (Keras's ``CallbackList``).

    `fit` runs all its hooks through one: the scheduler's step, the user's callbacks, the
    History and the progress output (see the module's notes for the order). Itself a
    callback, it can be one of another list's, or of `fit`'s `callbacks`.

    Parameters
    ----------
    callbacks : iterable of Callback
    """

    def __init__(self, callbacks: Iterable[Callback]):
        self.callbacks = list(callbacks)

    def on_train_begin(self, run: TrainingRun) -> None:
        for cb in self.callbacks:
            cb.on_train_begin(run)

    def on_epoch_begin(self, run: TrainingRun) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(run)

    def on_batch_end(self, run: TrainingRun, logs: dict) -> None:
        for cb in self.callbacks:
            cb.on_batch_end(run, logs)

    def on_epoch_end(self, run: TrainingRun, logs: dict) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(run, logs)

    def on_train_end(self, run: TrainingRun) -> None:
        for cb in self.callbacks:
            cb.on_train_end(run)


def _check_monitor(monitor) -> str:
    if not isinstance(monitor, str):
        raise TypeError(f"monitor must be a key of the epoch logs such as 'val_loss', "
                        f"got {monitor!r}")
    return monitor


def _check_mode(mode: str, monitor: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def _monitored(logs: Mapping, monitor: str, who: str) -> float:
    if monitor not in logs:
        hint = " (pass validation_data to fit)" if monitor.startswith("val_") else ""
        raise ValueError(f"{who} monitors {monitor!r}, which the epoch logs do not hold"
                         f"{hint}; they hold {sorted(logs)}")
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop when a monitored value has stopped improving, and keep the best weights.

    Parameters
    ----------
    monitor : str, default 'val_loss'
        A key of the epoch logs: 'loss', 'val_loss', a metric or 'val_<metric>'.
    patience : int, default 10
        Epochs without improvement after which training stops (0: at the first).
    min_delta : float, default 0
        The least change that counts as an improvement.
    mode : {'auto', 'min', 'max'}, default 'auto'
        Whether lower or higher is better; 'auto' is 'min' unless the name has "acc".
    restore_best_weights : bool, default True
        At the end of training (stopped or not), load the weights of the best epoch.

    Attributes
    ----------
    best : float
        The best monitored value seen.
    best_epoch : int or None
        Its 1-based epoch.
    stopped_epoch : int or None
        The 1-based epoch after which training was stopped, None if it ran to the end.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True):
        self.monitor = _check_monitor(monitor)
        self.patience = check_size(patience, "patience", minimum=0)
        self.min_delta = _check_float(min_delta, "min_delta", 0.0)
        self.mode = _check_mode(mode, self.monitor)
        self.restore_best_weights = _check_bool(restore_best_weights, "restore_best_weights")

    def on_train_begin(self, run):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None
        self.wait = 0

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, run, logs):
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if self.best_epoch is None or self._improved(value):
            self.best, self.best_epoch, self.wait = value, logs["epoch"], 0
            if self.restore_best_weights:
                self.best_weights = run.model.state_dict()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = logs["epoch"]
            run.stop_training = True

    def on_train_end(self, run):
        if self.restore_best_weights and self.best_weights is not None:
            run.model.load_state_dict(self.best_weights)


class ModelCheckpoint(Callback):
    """Save a checkpoint after each epoch (or only when the monitored value improves).

    The file (`lstm_native.save_checkpoint`) holds the model, the optimizer's state, the
    number of epochs done, and in `extra`: ``"history"`` (the History so far),
    ``"scheduler"`` (its state_dict, or None), ``"monitor"``/``"value"`` and whatever
    `extra` was given. `resume_from_checkpoint` restores all of it, and
    ``fit(..., initial_epoch=<epochs done>)`` then continues exactly. Under ``fit(...,
    distributed=True)`` only rank 0 writes the file (every rank keeps `best` and
    `last_path` alike).

    Parameters
    ----------
    path : str or os.PathLike
        The file. A template for `str.format`: ``{epoch}``, the 1-based epoch (a format
        spec allowed, e.g. ``"ckpt-{epoch:03d}.npz"``), keeps one file per epoch; it is
        the only placeholder, and a literal brace is doubled (``{{``, ``}}``). A bad
        template, a path naming a directory, or a file name longer than 255 bytes is
        refused here, not after the first epoch.
    monitor : str, default 'val_loss'
        The value deciding "best", with `save_best_only`.
    save_best_only : bool, default False
        Save only when the monitored value improved on the best so far.
    mode : {'auto', 'min', 'max'}, default 'auto'
        Whether lower or higher is better.
    extra : dict, optional
        More to keep in the checkpoint's `extra` (JSON values and arrays), e.g. a
        scaler's state.

    Attributes
    ----------
    last_path : str or None
        The file last written.

    Raises
    ------
    TypeError, ValueError
        An argument has the wrong type or value (`path` a template `str.format` cannot
        fill with the epoch, a directory, or a name too long); the message names it.
    """

    def __init__(self, path, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto", extra: dict | None = None):
        self.path = _check_path_template(path)
        self.monitor = _check_monitor(monitor)
        self.save_best_only = _check_bool(save_best_only, "save_best_only")
        self.mode = _check_mode(mode, self.monitor)
        if extra is not None and not isinstance(extra, dict):
            raise TypeError(f"extra must be None or a dict, got {type(extra).__name__}")
        self.extra = dict(extra or {})
        self.last_path = None

    def on_train_begin(self, run):
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, run, logs):
        value = None
        if self.save_best_only or self.monitor in logs:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
        if self.save_best_only:
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        path = self.path.format(epoch=logs["epoch"])
        extra = dict(self.extra)
        history = History({k: list(v) for k, v in run.history.items()})
        history.append(logs)  # the epoch ending now is not in run.history yet
        extra.update(history=dict(history), monitor=self.monitor, value=value,
                     scheduler=None if run.scheduler is None else run.scheduler.state_dict())
        if run.rank == 0:
            save_checkpoint(path, run.model, run.optimizer, epoch=logs["epoch"], extra=extra)
        self.last_path = path


#: The longest file name of the common file systems (ext4, XFS, APFS, NTFS), in bytes.
_NAME_MAX = 255


def _check_path_template(path) -> str:
    """`path` as a str that ``path.format(epoch=e)`` fills (ValueError otherwise)."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"path must be a str or os.PathLike naming the file, got "
                        f"{_describe(path)}")
    try:
        # A width or precision past a file name's length would have format build a
        # string of that size (gigabytes for {epoch:>99999999999}) before any check.
        for _, _, spec, _ in string.Formatter().parse(path):
            if spec and any(int(n) > _NAME_MAX for n in re.findall(r"\d+", spec)):
                raise ValueError(f"a width or precision in {{epoch:{spec}}} exceeds the "
                                 f"{_NAME_MAX} bytes of a file name")
        filled = path.format(epoch=1)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"path {path!r} is not a template str.format can fill: its one placeholder "
            "is {epoch} (a format spec allowed, e.g. {epoch:03d}) and a literal brace is "
            f"doubled ({{{{ or }}}}); filling it raised {type(e).__name__}: {e}") from None
    # Refused here rather than by the first save, after an epoch of training.
    name = os.path.basename(filled)
    if name in ("", ".", "..") or os.path.isdir(filled):
        raise ValueError(f"path {path!r} names a directory ({filled!r} for epoch 1): "
                         "it must name the checkpoint file, e.g. 'ckpt-{epoch:03d}.npz'")
    long = [part for part in filled.split(os.sep) if len(os.fsencode(part)) > _NAME_MAX]
    if long:
        raise ValueError(f"path {path!r} holds a file or directory name longer than "
                         f"{_NAME_MAX} bytes (for epoch 1): {long[0][:40]!r}...")
    return path


# -- the epoch's line ----------------------------------------------------------------------

def _format_value(v: float) -> str:
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}"


def format_epoch(logs: Mapping, epochs: int) -> str:
    """One line for an epoch: ``epoch 3/20  loss 0.0123  val_loss 0.0234  0.05 s ...``."""
    width = len(str(epochs))
    parts = [f"epoch {logs['epoch']:>{width}}/{epochs}"]
    for key, value in logs.items():
        if key in ("epoch", "seconds", "lr", "samples_per_second"):
            continue
        parts.append(f"{key} {_format_value(value)}")
    parts.append(f"{logs['seconds']:.2f} s")
    if logs.get("samples_per_second"):
        parts.append(f"{logs['samples_per_second']:.0f} samples/s")
    return "  ".join(parts)


# -- the callbacks fit brings -------------------------------------------------------------

class _ScheduleStep(Callback):
    """Step a learning-rate schedule after each epoch: ``step(metric)`` for a schedule
    whose `takes_metric` is True (the validation loss, or the training loss without
    validation data), else ``step()``."""

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def on_epoch_end(self, run, logs):
        if self.scheduler.takes_metric:
            self.scheduler.step(logs.get("val_loss", logs["loss"]))
        else:
            self.scheduler.step()


class _RecordHistory(Callback):
    """Append each epoch's logs to ``run.history`` and note the epoch training stopped at."""

    def on_epoch_end(self, run, logs):
        run.history.append(logs)
        if run.stop_training:
            run.history.stopped_epoch = run.epoch + 1


class _ProgressLogger(Callback):
    """What `fit` prints for its `verbose`: 0 nothing; 1 a progress bar per epoch (when
    `bar` is given) and a line per epoch; 2 a line per epoch.

    Parameters
    ----------
    verbose : {0, 1, 2}
    n_samples : int
        The samples of an epoch (the bar's total, and the samples/s of the line).
    log_every : int, default 1
        Print the line of every `log_every`-th epoch only (and of the first and last).
    steps_per_batch : int, default 1
        The steps a batch takes (its chunks under truncated BPTT): the bar moves by a
        batch's samples after its last step, with that step's loss.
    bar : callable, optional
        tqdm's class (or one called as it) to draw the bar with, on stderr.
    """

    def __init__(self, verbose: int, n_samples: int, log_every: int = 1,
                 steps_per_batch: int = 1, bar=None):
        self.verbose, self.n, self.log_every = verbose, n_samples, log_every
        self.steps_per_batch = steps_per_batch
        self.bar_class = bar if verbose == 1 else None
        self.bar = None

    def on_train_begin(self, run):
        self.initial_epoch = run.epoch

    def on_epoch_begin(self, run):
        self.steps = 0
        if self.bar_class is not None:
            self.bar = self.bar_class(total=self.n, desc=f"epoch {run.epoch + 1}/{run.epochs}",
                                      unit="samples", leave=False, file=sys.stderr)

    def on_batch_end(self, run, logs):
        self.steps += 1
        if self.bar is not None and self.steps % self.steps_per_batch == 0:
            self.bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)
            self.bar.update(logs["size"])  # refreshes at most every `mininterval` seconds

    def on_epoch_end(self, run, logs):
        self.close()
        last = run.stop_training or run.epoch == run.epochs - 1
        if self.verbose and (run.epoch == self.initial_epoch or last
                             or logs["epoch"] % self.log_every == 0):
            seconds = logs["seconds"]
            line = {**logs, "samples_per_second": self.n / seconds if seconds else 0.0}
            print(format_epoch(line, run.epochs), flush=True)

    def close(self) -> None:
        """Close the bar of an epoch cut short (training raised)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
