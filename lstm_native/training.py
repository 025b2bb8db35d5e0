"""The training loop: `fit`, `predict`, `evaluate` (the callbacks are in
`lstm_native.callbacks`, and importable from here too).

Design notes:

- `fit` has the shape of Keras 3's trainer: it checks every argument, then an
  `_EpochIterator` gives each epoch's steps (the shuffled batches, cut into chunks under
  truncated BPTT), `_train_step` takes one, and one `CallbackList` runs every hook:
  the scheduler's step, the user's callbacks, the History and the printed progress.

- Data is batch-first, as Keras: x is (N, T, F) and y is (N, ...) with the samples on
  the first axis; `fit` cuts both into minibatches along that axis. Models in the CLI are
  built with ``LSTM(..., batch_first=True)`` and ``LastStep(batch_first=True)``.
- Only the model's public interface is used: ``model(x[, lengths=])``, ``backward(dout,
  input_grad=False)``, ``zero_grad``, ``train``/``eval``, ``parameters`` (to check that
  the optimizer updates them), ``state_dict``/``load_state_dict``, and for truncated
  BPTT ``stateful``/``reset_states``. A bare recurrent layer (``recurrent = True``: its
  forward returns ``(out, state)``) works too; its `out` is the prediction.
- One step per batch: zero_grad, forward, loss (a `lstm_native.losses` callable giving
  ``(value, d value / d pred)``), backward, optional gradient clipping, optimizer step.
- The order of the samples in epoch e depends on ``(seed, e)`` only, so a run resumed
  from a checkpoint at epoch e (``initial_epoch=e``) takes the very steps the
  uninterrupted run would have taken: same weights, bitwise (see `ModelCheckpoint` and
  `resume_from_checkpoint`). The checkpoint keeps the dropout generators' states too
  (`Dropout`, a recurrent layer's `dropout`), so the resumed run draws the same masks.
- Every argument is checked before anything changes (weights, mode, stateful flag,
  optimizer, callbacks): a refused call leaves everything as it was. Errors that only
  the data can show (a target the loss refuses, a diverging loss) come from the steps.
- Truncated BPTT (``fit(..., tbptt=k)``) trains sequence-to-sequence models on long
  sequences: each batch is cut into chunks of k steps along time, and a stateful
  `Sequential` carries (h, c) from one chunk to the next, back-propagating each chunk
  on its own (one optimizer step per chunk).
"""
from __future__ import annotations

import contextlib
import math
import numbers
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

import numpy as np

from . import losses as _losses
from ._validation import check_lengths
from .callbacks import (Callback, CallbackList, EarlyStopping, History, ModelCheckpoint,
                        TrainingRun, _describe, _ProgressLogger, _RecordHistory,
                        _ScheduleStep)
from .callbacks import format_epoch  # noqa: F401 (still importable from here)
from .checkpoint import load_checkpoint
from .module import rng_states, set_rng_states
from .optim import Optimizer, _check_bool, clip_grad_norm
from .schedules import LRScheduler

__all__ = ["Callback", "EarlyStopping", "History", "ModelCheckpoint", "TrainingRun",
           "evaluate", "fit", "predict", "resume_from_checkpoint"]


# -- the model's public interface ------------------------------------------------------

def _is_recurrent(model) -> bool:
    return getattr(type(model), "recurrent", False) is True


def _takes_lengths(model) -> bool:
    return _is_recurrent(model) or getattr(type(model), "takes_lengths", False) is True


def _forward(model, x, lengths=None):
    """The model's prediction for one batch (a recurrent layer's `out`)."""
    if lengths is None:
        out = model(x)
    else:
        out = model(x, lengths=lengths)
    return out[0] if _is_recurrent(model) else out


def _backward(model, grad) -> None:
    """Back-propagate d loss / d prediction into the model's `grads` (no input gradient)."""
    model.backward(grad, input_grad=False)


class _ModeGuard:
    """Put a model in eval (or train) mode and restore its previous mode on exit."""

    def __init__(self, model, training: bool):
        self.model, self.training = model, training

    def __enter__(self):
        self.previous = bool(self.model.training)
        self.model.train(self.training)
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.previous)
        return False


@contextlib.contextmanager
def _stateful(model, stateful: bool):
    """Set a model's `stateful` flag for the block and restore the previous setting
    after it, also when it raises (setting the flag resets the kept states)."""
    previous = model.stateful
    model.stateful = stateful
    try:
        yield model
    finally:
        model.stateful = previous


# -- argument checks -------------------------------------------------------------------
# Each names the argument and what it expects; fit, predict and evaluate run all of them
# before they change anything.

def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def _check_model(model, *, trains: bool) -> None:
    """TypeError unless `model` has the interface the loop calls (see the design notes):
    a call and train() to predict; parameters() and backward() besides to train."""
    needs = ("train", "parameters", "backward") if trains else ("train",)
    if (isinstance(model, type) or not callable(model) or not hasattr(model, "training")
            or not all(callable(getattr(model, name, None)) for name in needs)):
        methods = ", ".join(f"{name}()" for name in needs)
        raise TypeError(f"model must be an lstm_native model such as Sequential(...) "
                        f"(callable, with {methods} and a training flag), got "
                        f"{_describe(model)}")


def _check_optimizer(optimizer, model) -> None:
    """TypeError unless an lstm_native optimizer; ValueError unless it updates the model's
    own parameter arrays (all of them, or some: one layer's)."""
    if optimizer is None:
        raise TypeError("optimizer is required: an lstm_native.optim optimizer built over "
                        "the model, such as optim.Adam(model)")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an lstm_native.optim optimizer built over the "
                        f"model, such as optim.Adam(model), got {_describe(optimizer)}")
    own = {id(p) for p in model.parameters().values()}
    if not all(id(p) in own for p in optimizer.model.parameters().values()):
        raise ValueError(f"optimizer updates arrays that are not the parameters of the "
                         f"{type(model).__name__} given: it was built over another model "
                         "(build it over this one, e.g. optim.Adam(model))")


def _check_scheduler(scheduler, optimizer) -> None:
    if scheduler is None:
        return
    if not isinstance(scheduler, LRScheduler):
        raise TypeError(f"scheduler must be None or an lstm_native.schedules schedule "
                        f"(StepLR, CosineAnnealingLR, ReduceLROnPlateau) built over the "
                        f"optimizer, got {_describe(scheduler)}")
    if scheduler.optimizer is not optimizer:
        raise ValueError("scheduler was built over another optimizer than the one given: it "
                         "would set that one's lr (build it over this optimizer)")


def _check_takes_lengths(model, lengths) -> None:
    if lengths is not None and not _takes_lengths(model):
        raise TypeError(f"lengths was given, but {type(model).__name__} does not take lengths")


def _check_samples(a, name: str) -> np.ndarray:
    """`a` as an array of numbers with the samples on axis 0."""
    try:
        arr = np.asarray(a)
    except ValueError as e:  # nested sequences of different lengths
        raise ValueError(f"{name} must be an array with the samples on axis 0, "
                         f"got ragged nested sequences ({e})") from None
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of numbers with the samples on axis 0, "
                        f"got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{name} must be an array with the samples on axis 0 (batch-first, "
                         "(N, T, F) for a sequence model), got a scalar")
    return arr


def _first_block(model):
    """The block that receives x: the first layer of (nested) Sequentials."""
    while isinstance(getattr(model, "layers", None), tuple) and model.layers:
        model = model.layers[0]
    return model


def _check_xy(x, y, lengths, what: str = "", model=None):
    """x, y (and lengths) as arrays with the same number of samples on axis 0; lengths
    as check_lengths makes them, one per sequence of x (N, T, ...), each in 1..T. A
    model whose first block is recurrent needs x (N, T, F): it would take a 2-D batch
    for one unbatched sequence, silently."""
    x = _check_samples(x, f"{what}x")
    if model is not None and _is_recurrent(_first_block(model)) and x.ndim != 3:
        raise ValueError(f"{what}x must have shape (N, T, F) (batch-first sequences) for "
                         f"a model that starts with {type(_first_block(model)).__name__}, "
                         f"got shape {x.shape}")
    n = x.shape[0]
    if n == 0:
        raise ValueError(f"{what}x holds no samples (shape {x.shape})")
    if y is not None:
        y = _check_samples(y, f"{what}y")
        if y.shape[0] != n:
            raise ValueError(f"{what}y must have the {n} samples of x on axis 0 "
                             f"(batch-first), got shape {y.shape}")
    if lengths is not None:
        if x.ndim < 2:
            raise ValueError(f"{what}lengths needs sequences x of shape (N, T, ...), "
                             f"got x of shape {x.shape}")
        try:
            lengths = check_lengths(lengths, n, x.shape[1])
        except (TypeError, ValueError) as e:
            raise type(e)(f"{what}{e}") from None
    return x, y, lengths


def _check_loss(loss) -> Callable:
    if loss is None:
        raise TypeError("loss is required: a lstm_native.losses callable such as "
                        "losses.MSELoss() or losses.mse_loss, returning (value, grad)")
    if isinstance(loss, str):
        return _named_loss(loss)
    if isinstance(loss, type) or not callable(loss):
        raise TypeError(f"loss must be a callable returning (value, grad), such as "
                        f"losses.MSELoss(), got {_describe(loss)}")
    if getattr(loss, "reduction", None) == "none":
        raise ValueError(f"loss must reduce to one number: {loss!r} returns the loss of "
                         "every element (use reduction='mean' or 'sum')")
    return loss


def _check_seed(seed) -> int:
    """The seed of the shuffling: the int given, or a fresh random one for None."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2 ** 63))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be None or an int >= 0, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be None or an int >= 0, got {seed}")
    return int(seed)


def _check_verbose(verbose) -> int:
    if not isinstance(verbose, numbers.Integral):
        raise TypeError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def _check_clip_norm(clip_norm):
    if clip_norm is None:
        return None
    if isinstance(clip_norm, (bool, np.bool_)) or not isinstance(clip_norm, numbers.Real):
        raise TypeError(f"clip_norm must be None or a float >= 0, got {clip_norm!r}")
    if not clip_norm >= 0:  # also nan
        raise ValueError(f"clip_norm must be None or a float >= 0, got {clip_norm!r}")
    return clip_norm


def _check_callbacks(callbacks) -> list[Callback]:
    if callbacks is None:
        return []
    if isinstance(callbacks, (Callback, str)) or not isinstance(callbacks, Iterable):
        raise TypeError(f"callbacks must be a sequence of Callback instances, e.g. "
                        f"[EarlyStopping()], got {_describe(callbacks)}")
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be Callback instances (of subclasses of "
                            f"lstm_native.Callback), got {_describe(cb)}")
    return callbacks


_LOSSES = {"mse": _losses.mse_loss, "mae": _losses.l1_loss, "l1": _losses.l1_loss,
           "huber": _losses.huber_loss, "cross_entropy": _losses.cross_entropy}


def _named_loss(name: str) -> Callable:
    try:
        return _LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known names are {sorted(_LOSSES)}, or pass "
                         "a lstm_native.losses callable") from None


# -- metrics ---------------------------------------------------------------------------

def _mse(pred, target) -> float:
    return float(np.mean(np.square(np.asarray(pred, np.float64) - np.asarray(target, np.float64))))


def _mae(pred, target) -> float:
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - np.asarray(target, np.float64))))


def _rmse(pred, target) -> float:
    return math.sqrt(_mse(pred, target))


_METRICS = {"mse": _mse, "mae": _mae, "rmse": _rmse}


def _check_metrics(metrics) -> list[tuple[str, Callable]]:
    """(name, fn) pairs from names ('mse', 'mae', 'rmse'), callables or (name, fn)."""
    if metrics is None:
        return []
    if isinstance(metrics, (str, tuple)) and len(metrics) == 2 and callable(metrics[1]):
        metrics = [metrics]
    elif isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    elif not isinstance(metrics, Iterable):
        raise TypeError(f"metrics must be a sequence of metric names {sorted(_METRICS)}, "
                        f"callables (pred, target) -> float or (name, callable) pairs, "
                        f"got {metrics!r}")
    out = []
    for m in metrics:
        if isinstance(m, str):
            if m not in _METRICS:
                raise ValueError(f"unknown metric {m!r}; known names are {sorted(_METRICS)}, "
                                 "or pass a callable (pred, target) -> float")
            out.append((m, _METRICS[m]))
        elif isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str) and callable(m[1]):
            out.append(m)
        elif callable(m):
            out.append((getattr(m, "__name__", type(m).__name__), m))
        else:
            raise TypeError(f"a metric must be a name {sorted(_METRICS)}, a callable "
                            f"(pred, target) -> float or a (name, callable) pair, got {m!r}")
    names = [name for name, _ in out]
    if len(set(names)) != len(names) or {"loss", "lr", "seconds", "epoch"} & set(names):
        raise ValueError(f"metric names must be distinct and not 'loss', 'lr', 'seconds' "
                         f"or 'epoch', got {names}")
    return out


def _metric_value(fn, pred, target) -> float:
    value = fn(pred, target)
    if isinstance(value, tuple):  # a losses function: (value, grad)
        value = value[0]
    return float(value)


# -- resuming ------------------------------------------------------------------------------

def resume_from_checkpoint(path, model, optimizer, scheduler=None, *,
                           distributed: bool = False) -> dict:
    """Load what `ModelCheckpoint` saved into a model, its optimizer and its schedule.

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint written by `ModelCheckpoint` (or by `save_checkpoint` with an
        optimizer and an epoch).
    model : Module
        Built as the saved one; its weights are replaced.
    optimizer : lstm_native.optim.Optimizer
        Built over `model`; its state (moments, step count, lr) is replaced.
    scheduler : lstm_native.schedules.LRScheduler, optional
        Its state is restored from the checkpoint's ``extra["scheduler"]``.
    distributed : bool, default False
        For ``fit(..., distributed=True)``, called on every rank: only rank 0 reads the
        file (the others need not see it), then broadcasts the model, the optimizer and
        schedule states and the returned dict; an error on rank 0 is raised on every
        rank. With one rank this is the plain resume.

    Returns
    -------
    dict
        ``"initial_epoch"``: the epochs done (pass it to `fit`), ``"history"``: the saved
        History (or None), ``"extra"``: the checkpoint's whole `extra`.

    Raises
    ------
    TypeError
        `model`, `optimizer` or `scheduler` is not one (the optimizer is required).
    ValueError
        The optimizer is not over `model` or the scheduler not over the optimizer; or the
        file is not a checkpoint, does not match the model or optimizer, holds no epoch,
        or no scheduler state when a scheduler is given. Nothing is changed then: the
        model, optimizer and scheduler keep the state they had. A file that is not a
        checkpoint or does not match is a `CheckpointError` (a ValueError naming it).
    FileNotFoundError, PermissionError, IsADirectoryError
        And any other OSError of opening or reading the file, as they are (as
        `load_checkpoint`); nothing is changed then either.
    """
    _check_model(model, trains=True)
    _check_optimizer(optimizer, model)
    _check_scheduler(scheduler, optimizer)
    if _check_bool(distributed, "distributed"):
        from . import distributed as _distributed  # imports mpi4py: only when asked for

        return _distributed._resume(
            lambda: resume_from_checkpoint(path, model, optimizer, scheduler),
            model, optimizer, scheduler)
    previous = model.state_dict(), optimizer.state_dict(), rng_states(model)
    loaded = load_checkpoint(path, model, optimizer)
    extra = loaded["extra"] or {}
    try:
        if loaded["epoch"] is None:
            raise ValueError(f"{os.fspath(path)}: the checkpoint records no epoch to resume "
                             "from")
        if scheduler is not None:
            state = extra.get("scheduler")
            if state is None:
                raise ValueError(f"{os.fspath(path)}: the checkpoint holds no scheduler "
                                 "state")
            scheduler.load_state_dict(state)  # checks everything before it changes any
    except BaseException:
        model.load_state_dict(previous[0])
        optimizer.load_state_dict(previous[1])
        set_rng_states(model, previous[2])
        raise
    history = extra.get("history")
    return {"initial_epoch": int(loaded["epoch"]),
            "history": None if history is None else History(history),
            "extra": extra}


# -- progress ----------------------------------------------------------------------------
# `fit` draws a bar (verbose=1) when both say yes; the printing is `_ProgressLogger`'s.

def _import_tqdm():
    """tqdm's class, or None when tqdm is not installed (it is optional)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


# -- the steps of an epoch ----------------------------------------------------------------

def _epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The sample order of an epoch: a function of (seed, epoch) only."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


def _chunk_bounds(T: int, k: int):
    return [(s, min(s + k, T)) for s in range(0, T, k)]


class _Step(NamedTuple):
    """The data of one optimizer step: a batch, or one chunk of it under truncated BPTT."""

    batch: int                       # the batch's index in the epoch
    x: np.ndarray
    y: np.ndarray
    lengths: np.ndarray | None
    chunk: tuple[int, int] | None    # its steps [start, stop) under truncated BPTT

    @property
    def size(self) -> int:
        """The samples of the batch."""
        return len(self.x)

    @property
    def weight(self) -> int:
        """The step's weight in the epoch's means: its samples (times its time steps
        under truncated BPTT)."""
        if self.chunk is None:
            return self.size
        return self.size * (self.chunk[1] - self.chunk[0])


class _EpochIterator:
    """The steps of each epoch (Keras's ``EpochIterator``): the samples in the order of
    (seed, epoch), cut into batches of `batch_size` and, under truncated BPTT, each batch
    into chunks of `tbptt` steps along time."""

    def __init__(self, x, y, lengths, *, batch_size: int, shuffle: bool, seed: int,
                 tbptt: int | None):
        self.x, self.y, self.lengths = x, y, lengths
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.chunks = None if tbptt is None else _chunk_bounds(x.shape[1], tbptt)

    @property
    def steps_per_batch(self) -> int:
        return 1 if self.chunks is None else len(self.chunks)

    def epoch(self, epoch: int) -> Iterator[_Step]:
        """The steps of epoch `epoch` (0-based), in order."""
        n = self.x.shape[0]
        order = _epoch_order(n, self.seed, epoch, self.shuffle)
        for batch, lo in enumerate(range(0, n, self.batch_size)):
            idx = order[lo:lo + self.batch_size]
            xb, yb = self.x[idx], self.y[idx]
            if self.chunks is None:
                yield _Step(batch, xb, yb, None if self.lengths is None else self.lengths[idx],
                            None)
            else:
                for s, e in self.chunks:
                    yield _Step(batch, xb[:, s:e], yb[:, s:e], None, (s, e))


# -- fit -------------------------------------------------------------------------------

def fit(model, x, y, *, loss, optimizer, epochs: int = 10, batch_size: int = 32,
        validation_data=None, shuffle: bool = True, seed: int | None = None,
        callbacks: Sequence[Callback] | None = (), verbose: int = 1, lengths=None,
        metrics=(), scheduler=None, clip_norm: float | None = None,
        initial_epoch: int = 0, tbptt: int | None = None,
        stateful_batches: bool = False, log_every: int = 1,
        distributed: bool = False) -> History:
    """Train a model with minibatch gradient descent, as Keras's ``model.fit``.

    Parameters
    ----------
    model : Module
        E.g. ``Sequential(LSTM(F, H, batch_first=True), LastStep(batch_first=True),
        Linear(H, O))``; any block with the forward/backward protocol of
        `lstm_native.layers`. It is left in training mode.
    x : array_like, (N, T, F)
        Inputs, batch-first: the samples on axis 0 (an LSTM must have
        ``batch_first=True``). A model that starts with a recurrent layer needs the
        3 axes: a 2-D x is refused, not taken for one unbatched sequence.
    y : array_like, (N, ...)
        Targets of the model's output shape, the samples on axis 0 (integer classes
        for cross-entropy).
    loss : callable or str
        ``loss(pred, target) -> (value, d value / d pred)``: a `lstm_native.losses`
        function or instance (``losses.MSELoss()``), or 'mse', 'mae', 'huber',
        'cross_entropy'.
    optimizer : lstm_native.optim.Optimizer
        Built over `model` (or over one of its layers, which then is all that trains).
    epochs : int, default 10
        The epoch to stop at: epochs ``initial_epoch .. epochs - 1`` are run.
    batch_size : int, default 32
        Samples per step; the last batch of an epoch may be smaller.
    validation_data : (x_val, y_val) or (x_val, y_val, lengths_val), optional
        Evaluated after each epoch in eval mode: ``val_loss`` and ``val_<metric>``.
        Shaped as x and y but for the number of samples (and of steps).
    shuffle : bool, default True
        Shuffle the samples each epoch, in an order that depends on (seed, epoch) only.
    seed : int >= 0 or None
        Seed of the shuffling; None draws one at random (then a resumed run does not
        repeat the interrupted one).
    callbacks : sequence of Callback, optional
        E.g. ``[EarlyStopping()]``, `ModelCheckpoint`; see `Callback` for the hooks.
    verbose : {0, 1, 2}, default 1
        0 prints nothing; 1 a progress bar per epoch (loss, samples/s) on a terminal with
        tqdm installed, else a line per epoch; 2 a line per epoch. Lines go to stdout,
        the bar to stderr.
    log_every : int, default 1
        Print the line of every `log_every`-th epoch only (and of the first and last).
    lengths : array_like of int, (N,), optional
        Valid steps of each sequence, in 1..T, given to the model with each batch.
    metrics : sequence of str or callable, optional
        'mse', 'mae', 'rmse', callables ``(pred, target) -> float`` or (name, callable)
        pairs; each epoch records their batch-size-weighted mean over the training
        batches, and on the validation data.
    scheduler : lstm_native.schedules.LRScheduler, optional
        Built over `optimizer`; stepped once after each epoch, before the callbacks:
        ``step(val_loss)`` (``step(loss)`` without validation data) when the schedule's
        `takes_metric` is True (`ReduceLROnPlateau`), else ``step()``.
    clip_norm : float >= 0, optional
        Clip the gradients' global 2-norm to this before each step (inf: no clipping).
    initial_epoch : int, default 0
        The epoch to start at, for resuming (see `resume_from_checkpoint`).
    tbptt : int, optional
        Truncated BPTT in chunks of `tbptt` steps (see Notes). Needs a `Sequential`
        and sequence targets y (N, T, ...).
    stateful_batches : bool, default False
        With `tbptt`: also carry the states from one batch to the next (sample i of a
        batch continues sample i of the previous one). Needs ``shuffle=False`` and every
        batch of the same size (N a multiple of batch_size).
    distributed : bool, default False
        Train data-parallel over MPI, run as ``mpiexec -n N python script.py`` with the
        same model, data and arguments on every rank (checked at the start): each rank
        takes its contiguous share of every global batch of `batch_size`, and the
        gradients are summed over the ranks each step, so the run is the one-process
        run's up to rounding (see `lstm_native.distributed` and docs/distributed.md).
        Rank 0's parameters, generators, optimizer and schedule states and seed are
        broadcast first; only rank 0 prints and saves checkpoints. The loss must be one
        of `lstm_native.losses` with reduction 'mean' or 'sum'. With one rank (no MPI
        launcher) this is plain `fit`. Imports mpi4py.

    Returns
    -------
    History
        Per-epoch lists: epoch, loss, val_loss, metrics, lr, seconds.

    Raises
    ------
    TypeError, ValueError
        An argument has the wrong type or value; the message names it. Every argument
        is checked before anything changes: the model's weights, mode and stateful flag,
        the optimizer and the callbacks are then as they were.
    FloatingPointError
        The training loss of a batch is nan or inf: training diverged (or the data holds
        nan or inf). The weights and the optimizer's state are those of the steps before
        it (non-finite too if a step overflowed, e.g. for a huge lr: as in PyTorch, a
        step writes what it computes).

    Notes
    -----
    Truncated BPTT: ``fit(..., tbptt=k)`` switches the Sequential to ``stateful=True`` for
    the run (restoring its setting afterwards, also when training raises). Each batch
    (N_b, T, F) is cut along time into chunks of k steps (the last may be shorter); chunk
    j starts from the (h, c) that chunk j - 1 ended in, is back-propagated on its own (no
    gradient flows into the previous chunk) and takes one optimizer step. The states are
    reset at the start of every batch (unless `stateful_batches`) and of every epoch; a
    callback can reset them at any time with ``run.reset_states()``
    (``model.reset_states()``). `lengths` is not supported with tbptt. Validation runs
    whole sequences, which gives the same outputs.

    Examples
    --------
    Learn the sum of a sequence of 10 numbers:

    >>> import numpy as np, lstm_native as ln
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((64, 10, 1)).astype(np.float32)
    >>> y = x.sum(axis=1)
    >>> model = ln.Sequential(ln.LSTM(1, 8, batch_first=True, seed=0),
    ...                       ln.LastStep(batch_first=True), ln.Linear(8, 1, seed=0))
    >>> history = ln.fit(model, x, y, loss="mse", optimizer=ln.optim.Adam(model, lr=0.01),
    ...                  epochs=30, batch_size=16, seed=0, verbose=0)
    >>> len(history["loss"]), history["loss"][-1] < history["loss"][0] / 5
    (30, True)
    """
    # Every argument is checked before anything changes: a refused call leaves the
    # model (weights, mode, stateful flag), the optimizer and the callbacks as they were.
    _check_model(model, trains=True)
    _check_takes_lengths(model, lengths)
    x, y, lengths = _check_xy(x, y, lengths, model=model)
    loss = _check_loss(loss)
    _check_optimizer(optimizer, model)
    epochs = _check_int(epochs, "epochs", 0)
    batch_size = _check_int(batch_size, "batch_size", 1)
    initial_epoch = _check_int(initial_epoch, "initial_epoch", 0)
    if initial_epoch > epochs:
        raise ValueError(f"initial_epoch ({initial_epoch}) must be <= epochs ({epochs})")
    val = _check_validation(validation_data, model, x, y)
    shuffle = _check_bool(shuffle, "shuffle")
    seed_given, seed = seed, _check_seed(seed)
    callbacks = _check_callbacks(callbacks)
    verbose = _check_verbose(verbose)
    log_every = _check_int(log_every, "log_every", 1)
    metric_fns = _check_metrics(metrics)
    _check_scheduler(scheduler, optimizer)
    clip_norm = _check_clip_norm(clip_norm)
    stateful_batches = _check_bool(stateful_batches, "stateful_batches")
    if tbptt is not None:
        tbptt = _check_tbptt(model, x, y, lengths, tbptt, batch_size, shuffle,
                             stateful_batches)
    elif stateful_batches:
        raise ValueError("stateful_batches needs tbptt: it carries the states of truncated "
                         "BPTT from one batch to the next")
    distributed = _check_bool(distributed, "distributed")

    parallel = None
    if distributed:
        parallel, seed = _start_distributed(
            model, optimizer, scheduler, loss, seed,
            x=x, y=y, lengths=lengths, validation_data=val, seed=seed_given, epochs=epochs,
            batch_size=batch_size, initial_epoch=initial_epoch, shuffle=shuffle,
            tbptt=tbptt, stateful_batches=stateful_batches, clip_norm=clip_norm,
            metrics=[name for name, _ in metric_fns],
            callbacks=[type(cb).__name__ for cb in callbacks])
        if parallel is not None and parallel.rank != 0:
            verbose = 0  # only rank 0 prints

    n = x.shape[0]
    run = TrainingRun(model, optimizer, scheduler, epochs, initial_epoch)
    run.rank = 0 if parallel is None else parallel.rank
    batches = _EpochIterator(x, y, lengths, batch_size=batch_size, shuffle=shuffle, seed=seed,
                             tbptt=tbptt)
    bar = _import_tqdm() if verbose == 1 and _stderr_is_terminal() else None
    progress = _ProgressLogger(verbose, n, log_every=log_every,
                               steps_per_batch=batches.steps_per_batch, bar=bar)
    # One list runs every hook: the scheduler first (a checkpoint saves its new state),
    # the History after the user's callbacks, the printed line last.
    hooks = CallbackList([*([_ScheduleStep(scheduler)] if scheduler is not None else []),
                          *callbacks, _RecordHistory(), progress])
    # Under tbptt the model is stateful for the run; its own setting comes back after,
    # also when training raises.
    keep_states = _stateful(model, True) if tbptt is not None else contextlib.nullcontext()
    with keep_states, contextlib.closing(progress):
        model.train()
        try:
            hooks.on_train_begin(run)
            for epoch in range(initial_epoch, epochs):
                run.epoch = epoch
                start = time.perf_counter()
                lr = float(optimizer.lr)
                if tbptt is not None:
                    run.reset_states()
                hooks.on_epoch_begin(run)
                logs = {"epoch": epoch + 1}
                logs.update(_train_epoch(run, batches.epoch(epoch), hooks, loss, metric_fns,
                                         clip_norm, carry_states=stateful_batches,
                                         parallel=parallel))
                if val is not None:
                    logs.update(_validate(model, val, loss, metric_fns, batch_size,
                                          stateful=tbptt is not None, parallel=parallel))
                logs["lr"] = lr
                logs["seconds"] = time.perf_counter() - start
                if parallel is not None:
                    logs = parallel.same_logs(logs)
                hooks.on_epoch_end(run, logs)
                if parallel is not None:
                    run.stop_training = parallel.same_stop(run.stop_training)
                if run.stop_training:
                    break
            hooks.on_train_end(run)
        finally:
            model.train()
            if parallel is not None:
                parallel.close()
    return run.history


def _start_distributed(model, optimizer, scheduler, loss, drawn_seed, **arguments):
    """`lstm_native.distributed._data_parallel` on checked arguments: (its _DataParallel,
    or None with one rank; rank 0's `drawn_seed`). `arguments` must be equal on every
    rank (``seed`` as given: None, or the same int); the data are compared by their
    fingerprints."""
    from . import distributed  # imports mpi4py: only when asked for

    fingerprint = distributed._digest
    val = arguments.pop("validation_data")
    arguments.update(
        {name: fingerprint(arguments[name]) for name in ("x", "y", "lengths")},
        validation_data=None if val is None else [fingerprint(a) for a in val],
        loss=(f"{loss.__module__}.{loss.__qualname__}" if hasattr(loss, "__qualname__")
              else repr(loss), fingerprint(getattr(loss, "weight", None))),
        optimizer=(type(optimizer).__name__, optimizer.hyper),
        scheduler=None if scheduler is None else scheduler.state_dict())
    return distributed._data_parallel(model, optimizer, scheduler, loss, arguments,
                                     drawn_seed)


def _train_epoch(run, steps: Iterable[_Step], hooks: CallbackList, loss, metric_fns,
                 clip_norm, carry_states: bool, parallel=None) -> dict:
    """Take the steps of one epoch: the loss and metrics averaged over them, weighted by
    each step's samples (and time steps under truncated BPTT). Under truncated BPTT the
    first chunk of a batch starts from zeros unless `carry_states`. With `parallel` (a
    `lstm_native.distributed._DataParallel`) each rank takes its share of each step."""
    totals = {"loss": 0.0, **{name: 0.0 for name, _ in metric_fns}}
    weight = 0
    for i, step in enumerate(steps):
        if step.chunk is not None and step.chunk[0] == 0 and not carry_states:
            run.reset_states()
        if parallel is None:
            value, pred = _train_step(run.model, run.optimizer, loss, step.x, step.y,
                                      step.lengths, clip_norm)
        else:
            value, pred = parallel.train_step(run.model, run.optimizer, loss, step.x, step.y,
                                              step.lengths, clip_norm,
                                              keep_pred=bool(metric_fns))
        totals["loss"] += value * step.weight
        for name, fn in metric_fns:
            totals[name] += _metric_value(fn, pred, step.y) * step.weight
        weight += step.weight
        hooks.on_batch_end(run, {"batch": i, "size": step.size, "loss": value})
    return {k: v / weight for k, v in totals.items()}


def _validate(model, val, loss, metric_fns, batch_size: int, stateful: bool,
              parallel=None) -> dict:
    """``val_loss`` and ``val_<metric>`` on the validation data, in eval mode. A model
    that is stateful for truncated BPTT runs whole sequences (not stateful) here: the
    same outputs as the chunks. With `parallel` each rank predicts its share and every
    rank scores the gathered predictions (so all get the same numbers)."""
    whole = _stateful(model, False) if stateful else contextlib.nullcontext()
    with whole:
        if parallel is None:
            pred = predict(model, val[0], batch_size=max(batch_size, 256), lengths=val[2])
        else:
            pred = parallel.predict(model, val[0], batch_size=max(batch_size, 256),
                                    lengths=val[2])
        scores = _scores(pred, val[1], loss, metric_fns)
    return {f"val_{k}": v for k, v in scores.items()}


def _train_step(model, optimizer, loss, x, y, lengths, clip_norm):
    """One optimizer step on one batch: (loss value, prediction)."""
    optimizer.zero_grad()
    pred = _forward(model, x, lengths)
    value, grad = loss(pred, y)
    value = float(value)
    if not math.isfinite(value):
        raise FloatingPointError(f"the training loss is {value}: lower the learning rate, "
                                 "clip the gradients (clip_norm) or scale the data")
    _backward(model, grad)
    if clip_norm is not None:
        clip_grad_norm(model, clip_norm)
    optimizer.step()
    return value, pred


def _check_validation(validation_data, model, x, y):
    """(x_val, y_val, lengths_val) shaped as x and y but for the number of samples and,
    for sequences x (N, T, ...), of steps."""
    if validation_data is None:
        return None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise TypeError("validation_data must be (x_val, y_val) or (x_val, y_val, lengths_val)")
    xv, yv = validation_data[0], validation_data[1]
    lv = validation_data[2] if len(validation_data) == 3 else None
    if lv is not None and not _takes_lengths(model):
        raise TypeError(f"validation lengths were given, but {type(model).__name__} does "
                        "not take lengths")
    xv, yv, lv = _check_xy(xv, yv, lv, "validation_data: ", model)
    free = 2 if x.ndim >= 3 else 1  # the axes that may differ: samples (and steps)
    for name, val, train in (("x", xv, x), ("y", yv, y)):
        if val.ndim != train.ndim or val.shape[free:] != train.shape[free:]:
            raise ValueError(f"validation_data: {name} must have the shape of {name} "
                             f"{train.shape} but for the number of samples"
                             f"{' and steps' if free == 2 else ''}, got {val.shape}")
    return xv, yv, lv


def _check_tbptt(model, x, y, lengths, tbptt, batch_size, shuffle, stateful_batches) -> int:
    tbptt = _check_int(tbptt, "tbptt", 1)
    if not hasattr(model, "stateful") or not callable(getattr(model, "reset_states", None)):
        raise TypeError(f"tbptt needs a model with a stateful mode (a Sequential), "
                        f"got {type(model).__name__}")
    if x.ndim != 3:
        raise ValueError(f"tbptt needs sequences x of shape (N, T, F), got {x.shape}")
    if y.ndim < 2 or y.shape[1] != x.shape[1]:
        raise ValueError(f"tbptt trains sequence-to-sequence models: y must have x's "
                         f"T = {x.shape[1]} steps on axis 1, got shape {y.shape}")
    if lengths is not None:
        raise ValueError("lengths is not supported with tbptt: pad the sequences instead")
    if stateful_batches:
        if shuffle:
            raise ValueError("stateful_batches carries states from one batch to the next: "
                             "it needs shuffle=False")
        if x.shape[0] % batch_size:
            raise ValueError(f"stateful_batches needs batches of one size: N = {x.shape[0]} "
                             f"must be a multiple of batch_size = {batch_size}")
    return tbptt


# -- predict and evaluate ----------------------------------------------------------------

def predict(model, x, *, batch_size: int = 256, lengths=None) -> np.ndarray:
    """The model's outputs for x, in batches, in eval mode (its mode is restored after).

    Parameters
    ----------
    model : Module
    x : array_like, (N, T, F)
        Batch-first inputs (of 3 axes when the model starts with a recurrent layer).
    batch_size : int, default 256
        Samples per forward call (memory only: the result does not depend on it, up to
        rounding).
    lengths : array_like of int, (N,), optional
        Valid steps of each sequence.

    Returns
    -------
    numpy.ndarray, (N, ...)
        The outputs of all batches, concatenated along axis 0 (a recurrent layer's
        `out`). A stateful model carries its states from batch to batch, as it would
        from call to call.

    Raises
    ------
    TypeError, ValueError
        An argument has the wrong type or value; the message names it.

    Examples
    --------
    >>> import numpy as np, lstm_native as ln
    >>> model = ln.Sequential(ln.LSTM(1, 8, batch_first=True, seed=0),
    ...                       ln.LastStep(batch_first=True), ln.Linear(8, 1, seed=0))
    >>> x = np.zeros((600, 10, 1), np.float32)
    >>> ln.predict(model, x, batch_size=256).shape    # three forward calls
    (600, 1)
    """
    _check_model(model, trains=False)
    batch_size = _check_int(batch_size, "batch_size", 1)
    _check_takes_lengths(model, lengths)
    x, _, lengths = _check_xy(x, None, lengths, model=model)
    outs = []
    with _ModeGuard(model, training=False):
        for lo in range(0, x.shape[0], batch_size):
            lb = None if lengths is None else lengths[lo:lo + batch_size]
            outs.append(np.asarray(_forward(model, x[lo:lo + batch_size], lb)))
    return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=0)


def evaluate(model, x, y, *, loss, metrics=(), batch_size: int = 256, lengths=None) -> dict:
    """The loss (and metrics) of the model on (x, y), predicted in batches in eval mode.

    Parameters
    ----------
    model : Module
    x : array_like, (N, T, F)
    y : array_like, (N, ...)
    loss : callable or str
        As in `fit`.
    metrics : sequence of str or callable
        As in `fit`.
    batch_size : int, default 256
    lengths : array_like of int, (N,), optional

    Returns
    -------
    dict
        ``{"loss": float, <metric>: float, ...}``, computed once on all the
        predictions (so they equal one big call's, up to rounding).

    Raises
    ------
    TypeError, ValueError
        An argument has the wrong type or value; the message names it.

    Examples
    --------
    >>> import numpy as np, lstm_native as ln
    >>> model = ln.Sequential(ln.LSTM(1, 8, batch_first=True, seed=0),
    ...                       ln.LastStep(batch_first=True), ln.Linear(8, 1, seed=0))
    >>> x, y = np.zeros((32, 10, 1), np.float32), np.zeros((32, 1), np.float32)
    >>> sorted(ln.evaluate(model, x, y, loss="mse", metrics=["mae", "rmse"]))
    ['loss', 'mae', 'rmse']
    """
    _check_model(model, trains=False)
    loss = _check_loss(loss)
    metric_fns = _check_metrics(metrics)
    batch_size = _check_int(batch_size, "batch_size", 1)
    x, y, lengths = _check_xy(x, y, lengths, model=model)
    pred = predict(model, x, batch_size=batch_size, lengths=lengths)
    return _scores(pred, y, loss, metric_fns)


def _scores(pred, y, loss, metric_fns) -> dict:
    """The loss and metrics of the predictions `pred` of targets `y`."""
    value, _ = loss(pred, y)
    scores = {"loss": float(value)}
    for name, fn in metric_fns:
        scores[name] = _metric_value(fn, pred, y)
    return scores
