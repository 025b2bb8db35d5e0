"""Data-parallel training over MPI: what ``fit(..., distributed=True)`` is made of, and
the pieces a custom training loop needs (`rank`, `size`, `shard`, `broadcast_parameters`,
`allreduce_gradients`, `allreduce_scalar`). See docs/distributed.md.

Design notes:

- One process per MPI rank (``mpiexec -n N python script.py``), each with the whole
  model and the whole data set. Every rank walks the same global batches (the order is a
  function of the seed and the epoch) and takes its contiguous share of each
  (`shard_bounds`: the first ``n % N`` ranks take one sample more).
- The gradient of the global batch is the sum of the ranks' gradients once each rank has
  scaled its d loss / d pred by its share of the loss's denominator: ``w_r / W``, its
  elements (cross-entropy: the weights of its targets not ignored) over the batch's.
- The optimizer's step is divided among the ranks (`_ShardedStep`, ZeRO stage 1) for
  the optimizers of `lstm_native.optim`, whose updates are elementwise: one
  ``MPI_Reduce_scatter`` per dtype gives each rank the sum of its slice of the flat
  gradients, each rank updates its slice of the parameters and of the optimizer's
  state, and one ``MPI_Allgatherv`` gives every rank all the parameters; the state is
  gathered at each epoch's end (checkpoints save all of it). An optimizer class of
  one's own runs whole on every rank after one ``MPI_Allreduce`` per dtype. Either
  reduction is MPICH's: the same algorithm for a given number of ranks and buffer
  size, so a run repeats bitwise and every rank holds the same weights; it is not the
  one-process run's order of additions (its GEMMs add over the whole batch), so the
  weights agree with a one-process `fit` to rounding, not bitwise.
  Scalars (the losses) are gathered and added exactly (`math.fsum`, correctly
  rounded whatever the order), on every rank.
- Dropout masks are drawn for the global batch and sliced: during a step each module's
  generator is stood in for by `_GlobalDraws`, which draws the global batch's mask from
  the real generator and hands the layer its rows. Every rank's generators thus advance
  as the one-process run's and stay equal.
- mpi4py is imported on first use, never by ``import lstm_native``. Without mpi4py, or
  in a process not started by an MPI launcher, there is one rank and everything here is
  the identity.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import numbers
import os
import sys
import time
import traceback

import numpy as np

from . import losses as _losses
from ._parallel import _physical_cores, default_n_threads
from .layers import Dropout
from .module import modules_by_path, rng_states
from .optim import SGD, Adam, RMSprop, _model_arrays, _scale_to_norm, clip_grad_norm
from .training import _backward, _forward, predict

__all__ = ["abort", "allreduce_gradients", "allreduce_scalar", "broadcast_object",
           "broadcast_parameters", "install_abort_hook", "rank", "shard", "shard_bounds",
           "size"]

#: Variables an MPI launcher sets to the number of processes it started (MPICH's Hydra
#: and Intel MPI: PMI_SIZE; Open MPI: OMPI_COMM_WORLD_SIZE).
_LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


# -- the communicator ---------------------------------------------------------------------

@functools.cache
def _world():
    """MPI's COMM_WORLD, or None where there is no MPI (mpi4py missing in a process no
    launcher started): one rank. mpi4py initialises MPI on import, once per process."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        launched = max((int(os.environ.get(v, "1") or 1) for v in _LAUNCHER_SIZE), default=1)
        if launched > 1:
            raise ImportError(
                f"this process is one of {launched} an MPI launcher started, but mpi4py "
                f"does not import ({e}): install it (pip install 'lstm_native[mpi]'), or "
                "every process would train a model of its own") from e
        return None
    return MPI.COMM_WORLD


def _world_rank() -> int:
    comm = _world()
    return 0 if comm is None else comm.Get_rank()


def _world_size() -> int:
    comm = _world()
    return 1 if comm is None else comm.Get_size()


def rank() -> int:
    """This process's rank in MPI's COMM_WORLD (0 without MPI).

    Returns
    -------
    int
    """
    return _world_rank()


def size() -> int:
    """The number of ranks in MPI's COMM_WORLD (1 without MPI).

    Returns
    -------
    int
    """
    return _world_size()


def _check_rank(value, name: str, n: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int in 0..{n - 1}, got {value!r}")
    if not 0 <= value < n:
        raise ValueError(f"{name} must be an int in 0..{n - 1} (there are {n} ranks), "
                         f"got {value}")
    return int(value)


# -- shares of a batch -----------------------------------------------------------------

def shard_bounds(n: int, rank: int | None = None, size: int | None = None) -> tuple[int, int]:
    """The contiguous share [lo, hi) of `n` samples that `rank` of `size` takes.

    The first ``n % size`` ranks take ``n // size + 1`` samples, the others
    ``n // size`` (none when n < size), as `numpy.array_split`.

    Parameters
    ----------
    n : int >= 0
        The samples to share.
    rank, size : int, optional
        The rank and the number of ranks; this process's by default.

    Returns
    -------
    (int, int)

    Examples
    --------
    >>> from lstm_native import distributed
    >>> [distributed.shard_bounds(10, r, 3) for r in range(3)]
    [(0, 4), (4, 7), (7, 10)]
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    if size is None:
        size = _world_size()
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"size must be an int >= 1, got {size!r}")
    rank = _world_rank() if rank is None else _check_rank(rank, "rank", size)
    base, extra = divmod(int(n), int(size))
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def shard(*arrays, rank: int | None = None, size: int | None = None):
    """This rank's contiguous share of each array along axis 0 (see `shard_bounds`).

    Parameters
    ----------
    *arrays : array_like
        Arrays with the same number of samples on axis 0 (None passes through).
    rank, size : int, optional
        The rank and the number of ranks; this process's by default.

    Returns
    -------
    numpy.ndarray or tuple of them
        Views of the rows [lo, hi): one array for one given, else a tuple.

    Raises
    ------
    ValueError
        No array was given, or they differ in their number of samples.

    Examples
    --------
    >>> import numpy as np
    >>> from lstm_native import distributed
    >>> distributed.shard(np.arange(5), rank=1, size=2)
    array([3, 4])
    """
    if not arrays:
        raise ValueError("shard needs at least one array")
    arrays = [None if a is None else np.asarray(a) for a in arrays]
    counts = {len(a) if a.ndim else None for a in arrays if a is not None}
    if None in counts or len(counts) > 1:
        raise ValueError(f"the arrays must have the same number of samples on axis 0, "
                         f"got shapes {[None if a is None else a.shape for a in arrays]}")
    lo, hi = shard_bounds(counts.pop() if counts else 0, rank, size)
    parts = tuple(None if a is None else a[lo:hi] for a in arrays)
    return parts[0] if len(parts) == 1 else parts


# -- collectives ------------------------------------------------------------------------

def broadcast_object(obj, root: int = 0):
    """`obj` of rank `root` on every rank (pickled; for small things: seeds, states).

    Parameters
    ----------
    obj : picklable
    root : int, default 0

    Returns
    -------
    The root's object (`obj` itself with one rank).
    """
    comm = _world()
    n = 1 if comm is None else comm.Get_size()
    root = _check_rank(root, "root", n)
    return obj if n == 1 else comm.bcast(obj, root=root)


def _flat_groups(arrays) -> list:
    """The arrays grouped by dtype: [(flat buffer, [arrays])], one buffer per dtype."""
    groups = {}
    for a in arrays:
        groups.setdefault(a.dtype, []).append(a)
    return [(np.empty(sum(a.size for a in group), dtype), group)
            for dtype, group in groups.items()]


def _pack(buffer, arrays) -> None:
    at = 0
    for a in arrays:
        buffer[at:at + a.size] = a.ravel()
        at += a.size


def _unpack(buffer, arrays) -> None:
    at = 0
    for a in arrays:
        a.reshape(-1)[...] = buffer[at:at + a.size]
        at += a.size


def broadcast_parameters(model, root: int = 0) -> None:
    """Copy rank `root`'s parameters and random generators' states into every rank's
    model (in place), so that all ranks start from the same model.

    Parameters
    ----------
    model : Module
        Built alike on every rank (same parameter names, shapes and dtypes).
    root : int, default 0

    Raises
    ------
    TypeError
        `model` is not an lstm_native model.
    ValueError
        `root` is not a rank, or the models differ across ranks (every rank raises).
    """
    params, _ = _model_arrays(model)
    comm = _world()
    n = 1 if comm is None else comm.Get_size()
    root = _check_rank(root, "root", n)
    if n == 1:
        return
    _check_same(comm, {"parameters": _parameter_layout(params)})
    for buffer, arrays in _flat_groups(params.values()):
        _pack(buffer, arrays)
        comm.Bcast(buffer, root=root)
        _unpack(buffer, arrays)
    states = comm.bcast(rng_states(model), root=root)
    _set_generator_states(model, states)


def allreduce_gradients(model, weight: float | None = None) -> None:
    """Average the model's gradients over the ranks, in place (MPI all-reduce of one
    flat buffer per dtype): every rank ends with the same `model.grads`.

    Parameters
    ----------
    model : Module
    weight : float >= 0, optional
        This rank's weight, e.g. the samples its mean-reduced loss averaged over: the
        result is ``sum_r weight_r * grads_r / sum_r weight_r``, the gradient of the
        mean over all ranks' samples. None weighs the ranks equally.

    Raises
    ------
    TypeError, ValueError
        `model` is not an lstm_native model, or `weight` is not a finite float >= 0.
    """
    params, grads = _model_arrays(model)
    if weight is not None:
        weight = _check_weight(weight)
    comm = _world()
    if comm is None or comm.Get_size() == 1:
        return
    total = (float(comm.Get_size()) if weight is None
             else allreduce_scalar(weight, "sum"))
    scale = (1.0 if weight is None else weight) / total if total else 0.0
    arrays = [grads[name] for name in params]
    for a in arrays:
        a *= a.dtype.type(scale)
    _sum_in_place(comm, _flat_groups(arrays))


def _check_weight(weight) -> float:
    if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, numbers.Real):
        raise TypeError(f"weight must be None or a finite float >= 0, got {weight!r}")
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"weight must be None or a finite float >= 0, got {weight!r}")
    return float(weight)


def _sum_in_place(comm, groups) -> None:
    """Replace the arrays of `groups` (`_flat_groups`) by their sums over the ranks."""
    from mpi4py import MPI

    for buffer, arrays in groups:
        _pack(buffer, arrays)
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        _unpack(buffer, arrays)


_OPS = {"sum": math.fsum, "mean": None, "min": min, "max": max}


def allreduce_scalar(value: float, op: str = "sum", weight: float | None = None) -> float:
    """A number reduced over the ranks, the same float on every rank: the values are
    gathered and combined on each rank, sums exactly (`math.fsum`), so the result does
    not depend on MPI's reduction algorithm nor on the order of the ranks.

    Parameters
    ----------
    value : float
        This rank's number.
    op : {'sum', 'mean', 'min', 'max'}, default 'sum'
    weight : float >= 0, optional
        With 'mean': this rank's weight (e.g. its samples), for the weighted mean
        ``sum_r weight_r * value_r / sum_r weight_r`` (0 when all weights are 0).

    Returns
    -------
    float

    Examples
    --------
    >>> from lstm_native import distributed
    >>> distributed.allreduce_scalar(0.25, "mean", weight=8)   # one rank: itself
    0.25
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"value must be a float, got {value!r}")
    if op not in _OPS:
        raise ValueError(f"op must be one of {sorted(_OPS)}, got {op!r}")
    if weight is not None:
        if op != "mean":
            raise ValueError(f"weight is for op='mean', got op={op!r}")
        weight = _check_weight(weight)
    comm = _world()
    pairs = ([(float(value), 1.0 if weight is None else weight)] if comm is None
             else comm.allgather((float(value), 1.0 if weight is None else weight)))
    if op == "mean":
        total = math.fsum(w for _, w in pairs)
        return math.fsum(v * w for v, w in pairs) / total if total else 0.0
    return float(_OPS[op](v for v, _ in pairs))


# -- faults ---------------------------------------------------------------------------------

#: How long a rank that aborts the job waits for its last output to be forwarded.
_FORWARD_SECONDS = 0.5


def abort(code: int = 1) -> None:
    """End the whole job with exit status `code` (MPI's Abort, this rank's output
    flushed first) when it runs on several ranks; nothing with one rank or without MPI.
    For an error a rank reports itself (the command line's one-line errors): the other
    ranks would otherwise wait in their next collective forever."""
    comm = _world()
    if comm is None or comm.Get_size() == 1:
        return
    sys.stderr.flush()
    sys.stdout.flush()
    # The launcher forwards the ranks' output through pipes of its own, and Abort kills
    # the job at once: a moment lets what this rank just wrote (its error) reach them.
    time.sleep(_FORWARD_SECONDS)
    comm.Abort(code)


def install_abort_hook() -> None:
    """Make an uncaught exception on any rank end the whole job: the rank prints its
    traceback and calls MPI's Abort, so that the other ranks exit too (non-zero) instead
    of waiting in their next collective forever. `fit` installs it when it runs on more
    than one rank; nothing happens with one rank."""
    comm = _world()
    if comm is None or comm.Get_size() == 1 or getattr(sys.excepthook, "_aborts", False):
        return
    previous = sys.excepthook

    def hook(kind, value, tb):
        # One write: the header and the traceback reach the launcher together.
        sys.stderr.write(f"lstm_native.distributed: rank {comm.Get_rank()} of "
                         f"{comm.Get_size()} raised, aborting the job:\n"
                         + "".join(traceback.format_exception(kind, value, tb)))
        abort(1)

    hook._aborts = True
    hook.previous = previous
    sys.excepthook = hook


# -- the same everywhere --------------------------------------------------------------

def _parameter_layout(params) -> list:
    return [(name, tuple(p.shape), p.dtype.name) for name, p in params.items()]


def _check_same(comm, items: dict) -> None:
    """ValueError on every rank unless every rank passed equal `items` (name -> value):
    the message names the first item that differs and the ranks."""
    everyone = comm.allgather(items)
    for key in sorted(set().union(*everyone)):
        values = [e.get(key) for e in everyone]
        for r, value in enumerate(values):
            if value != values[0]:
                raise ValueError(
                    f"distributed training needs the same model, data and arguments on "
                    f"every rank: {key} differs, rank 0 has {_short(values[0])} and rank "
                    f"{r} has {_short(value)}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 300 else text[:300] + "..."


def _digest(a) -> str | None:
    """A fingerprint of an array for messages: its dtype, shape and a hash of its bytes."""
    if a is None:
        return None
    a = np.ascontiguousarray(a)
    digest = hashlib.blake2b(a.view(np.uint8).ravel(), digest_size=8).hexdigest()
    return f"{a.dtype} array of shape {a.shape} (hash {digest})"


def _set_generator_states(model, states: dict) -> None:
    """Put the generators in the given states, keeping `_GlobalDraws` stand-ins in place."""
    modules = modules_by_path(model)
    for path, state in states.items():
        generator = getattr(modules[path], "_rng", None)
        if isinstance(generator, _GlobalDraws):
            generator.generator.bit_generator.state = state
        else:
            modules[path].set_rng_state(state)


# -- the losses fit can split ----------------------------------------------------------

_REGRESSION = (_losses.mse_loss, _losses.l1_loss, _losses.huber_loss)


def _loss_denominator(loss, dtype):
    """For a loss fit can split over ranks: a function of the targets y giving the
    denominator of its 'mean' (the elements; cross-entropy: the summed weights of the
    targets not ignored), or None for a 'sum' (nothing to divide). ValueError for a
    loss whose reduction cannot be weighted (a callable of one's own, or 'none')."""
    if loss in _REGRESSION:
        reduction, count = "mean", np.size
    elif loss is _losses.cross_entropy:
        reduction, count = "mean", functools.partial(_class_weight, None, -100, dtype)
    elif isinstance(loss, (_losses.MSELoss, _losses.L1Loss, _losses.HuberLoss)):
        reduction, count = loss.reduction, np.size
    elif isinstance(loss, _losses.CrossEntropyLoss):
        reduction = loss.reduction
        count = functools.partial(_class_weight, loss.weight, loss.ignore_index, dtype)
    else:
        raise ValueError(
            f"distributed training splits each batch over the ranks and weighs each rank's "
            f"mean-reduced gradient by its elements: it needs one of lstm_native.losses "
            f"(or its name), whose reduction it knows, got {loss!r}")
    return None if reduction == "sum" else count


def _class_weight(weight, ignore_index, dtype, y) -> float:
    """Cross-entropy's denominator of the mean: the weights of the targets not ignored.
    Targets that are not classes count nothing here: the loss refuses them on the rank
    that holds them, with its own message."""
    t = np.asarray(y).reshape(-1)
    t = t[t != ignore_index]
    if weight is None:
        return float(t.size)
    w = np.asarray(weight).astype(dtype)
    return float(w[t[(t >= 0) & (t < w.size)]].sum(dtype=np.float64))


# -- dropout masks of the global batch -------------------------------------------------

class _GlobalDraws:
    """Stands in for a module's generator during distributed training: a draw of a mask
    for this rank's rows [lo, hi) of a global batch of n draws the whole batch's mask
    from the real generator, as the one-process run does, and returns this rank's rows.

    A mask's leading axis is k blocks of the local batch: k = 1 for `Dropout` (batch
    first), T for a recurrent layer's time-major (T·N, ·) masks and 1 for its
    per-sequence (N, ·) masks.
    """

    def __init__(self, generator: np.random.Generator, one_block: bool, owner: str):
        self.generator = generator
        self.one_block = one_block
        self.owner = owner
        self.rows = None        # (lo, hi, n) during a step

    @property
    def bit_generator(self):
        return self.generator.bit_generator

    def random(self, size=None, dtype=np.float64, out=None):
        if self.rows is None:
            return self.generator.random(size, dtype=dtype, out=out)
        shape = out.shape if out is not None else tuple(np.atleast_1d(size).tolist())
        lo, hi, n = self.rows
        k, rest = divmod(shape[0] if shape else 0, hi - lo)
        if not shape or rest or (self.one_block and k != 1):
            raise RuntimeError(
                f"{self.owner} drew a mask of shape {shape} for a share of {hi - lo} "
                "samples: distributed training draws masks for the global batch and needs "
                "the samples on axis 0 (batch-first data)")
        whole = self.generator.random((k * n,) + shape[1:], dtype=dtype)
        part = whole.reshape((k, n) + shape[1:])[:, lo:hi].reshape(shape)
        if out is None:
            return np.ascontiguousarray(part)
        out[...] = part
        return out


class _GlobalMasks:
    """The `_GlobalDraws` of every module of a model that draws masks."""

    def __init__(self, model):
        self.modules = {}
        for path, module in modules_by_path(model).items():
            if module.rng_state() is None:
                continue
            if not isinstance(getattr(module, "_rng", None), (np.random.Generator,
                                                               _GlobalDraws)):
                raise TypeError(
                    f"{type(module).__name__} (module {path or 'model'!r}) draws random "
                    "numbers that distributed training cannot draw for the global batch "
                    "(it shards the masks of Dropout and of the recurrent layers)")
            self.modules[path] = module

    @contextlib.contextmanager
    def rows(self, lo: int, hi: int, n: int):
        """Within the block, masks are this rank's rows [lo, hi) of a batch of n."""
        draws = []
        for module in self.modules.values():
            if not isinstance(module._rng, _GlobalDraws):  # a new generator was set
                module._rng = _GlobalDraws(module._rng, isinstance(module, Dropout),
                                           type(module).__name__)
            module._rng.rows = (lo, hi, n)
            draws.append(module._rng)
        try:
            yield
        finally:
            for d in draws:
                d.rows = None

    def release(self) -> None:
        """Give every module its own generator back."""
        for module in self.modules.values():
            if isinstance(module._rng, _GlobalDraws):
                module._rng = module._rng.generator


# -- threads ---------------------------------------------------------------------------------

def _thread_share(comm) -> int | None:
    """The threads `n_threads=None` gets on a rank: the physical cores the ranks of this
    node may run on, shared out among them (each at least one, at most what it would
    take alone). None when OMP_NUM_THREADS is set: the user chose per process."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    from mpi4py import MPI

    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        cpus = frozenset().union(*node.allgather(frozenset(os.sched_getaffinity(0))
                                                 if hasattr(os, "sched_getaffinity")
                                                 else frozenset()))
        ranks = node.Get_size()
    finally:
        node.Free()
    cores = (_physical_cores(cpus) if cpus else None) or len(cpus) or (os.cpu_count() or 1)
    return max(1, min(default_n_threads(), cores // ranks))


@contextlib.contextmanager
def _threads(model, n_threads: int | None):
    """Modules of `model` with ``n_threads=None`` run with `n_threads` in the block."""
    modules = ([] if n_threads is None else
               [m for m in modules_by_path(model).values()
                if hasattr(m, "n_threads") and m.n_threads is None])
    for m in modules:
        m.n_threads = n_threads
    try:
        yield
    finally:
        for m in modules:
            m.n_threads = None


# -- the optimizer step divided among the ranks ---------------------------------------

#: The optimizers' updates that are elementwise (each element of a parameter and of its
#: state updated from the same element of the gradient alone): those the ranks can share.
_ELEMENTWISE_UPDATES = frozenset({SGD._update, Adam._update, RMSprop._update})


def _sharded_step(optimizer):
    """A `_ShardedStep` for `optimizer`, or None where the step cannot be divided: an
    update that is not elementwise (an optimizer class of one's own), or parameters,
    gradients or state that are not C-contiguous (their slices would be copies)."""
    if type(optimizer)._update not in _ELEMENTWISE_UPDATES:
        return None
    params, grads = _model_arrays(optimizer.model)
    state = [a for by_name in optimizer._buffers.values() for a in by_name.values()]
    if not all(a.flags.c_contiguous for a in [*params.values(), *grads.values(), *state]):
        return None
    return _ShardedStep(params)


class _ShardedStep:
    """The optimizer step divided among the ranks, as ZeRO stage 1 (DeepSpeed's
    partitioning): the parameters of each dtype, flattened in the model's order into
    one vector, are cut into N contiguous slices of equal length (across parameter
    boundaries, `shard_bounds`), and rank r owns slice r. A step

    1. reduce-scatters the gradients (`MPI_Reduce_scatter`): each rank receives the sum
       over the ranks of its own slice only;
    2. clips them to the global norm (the squares summed per slice, the slices' sums
       gathered and added exactly, `math.fsum`);
    3. runs the optimizer's update on its slice (`Optimizer._step_slices`: the update is
       elementwise, so the slice's elements take the update of the whole step);
    4. all-gathers the updated parameters (`MPI_Allgatherv`).

    The same bytes cross the network as in one all-reduce (which is a reduce-scatter and
    an all-gather), and each rank does 1/N of the optimizer's work. The optimizer's state
    of the other slices goes stale on a rank: `gather_state` makes it whole again (at
    every epoch's end, before a checkpoint may be saved). `model.grads` keeps this
    rank's own gradients outside its slice.
    """

    def __init__(self, params):
        self.groups = []  # per dtype: (names, the flat vector, the slices' bounds)
        for dtype in dict.fromkeys(p.dtype for p in params.values()):
            names = [name for name, p in params.items() if p.dtype == dtype]
            total = sum(params[name].size for name in names)
            self.groups.append((names, np.empty(total, dtype), total))

    @staticmethod
    def _bounds(total: int, size: int) -> list:
        """[lo, hi) of each rank's slice of a flat vector of `total` elements."""
        return [shard_bounds(total, r, size) for r in range(size)]

    @staticmethod
    def _pieces(names, arrays, lo: int, hi: int):
        """The parts of the arrays (flattened, in `names`' order) that fall within
        [lo, hi) of their concatenation: (name, start, stop, offset from lo)."""
        at = 0
        for name in names:
            n = arrays[name].size
            a, b = max(lo, at), min(hi, at + n)
            if a < b:
                yield name, a - at, b - at, a - lo
            at += n

    def step(self, comm, optimizer, clip_norm) -> None:
        """Steps 1-4 of the class's description on every rank (all must call it)."""
        from mpi4py import MPI

        rank, size = comm.Get_rank(), comm.Get_size()
        params, grads = _model_arrays(optimizer.model)
        owned = []  # per group: (names, vector, lo, hi, counts, this rank's summed slice)
        for names, vector, total in self.groups:
            bounds = self._bounds(total, size)
            counts = [hi - lo for lo, hi in bounds]
            _pack(vector, [grads[name] for name in names])
            mine = np.empty(counts[rank], vector.dtype)
            comm.Reduce_scatter(vector, mine, counts, op=MPI.SUM)
            owned.append((names, vector, *bounds[rank], bounds, mine))
        if clip_norm is not None:
            # torch's clip_grad_norm_ (as `clip_grad_norm`): the 2-norm accumulated in
            # float64, the same float on every rank.
            wide = [m.astype(np.float64, copy=False) for *_, m in owned]
            squares = math.fsum(comm.allgather(math.fsum(float(np.dot(w, w))
                                                         for w in wide)))
            _scale_to_norm([m for *_, m in owned], clip_norm, squares ** 0.5)
        optimizer._step_slices([
            (name, a, b, mine[at:at + b - a])
            for names, _, lo, hi, _, mine in owned
            for name, a, b, at in self._pieces(names, params, lo, hi)])
        for names, vector, lo, hi, bounds, _ in owned:
            self._allgather(comm, vector, names, params, lo, hi, bounds)

    def gather_state(self, comm, optimizer) -> None:
        """Make the optimizer's state whole on every rank: each rank's slices of every
        state array, all-gathered (all ranks must call it)."""
        rank, size = comm.Get_rank(), comm.Get_size()
        for by_name in optimizer._buffers.values():
            for names, vector, total in self.groups:
                bounds = self._bounds(total, size)
                self._allgather(comm, vector, names, by_name, *bounds[rank], bounds)

    def _allgather(self, comm, vector, names, arrays, lo, hi, bounds) -> None:
        """Each rank's slice [lo, hi) of the arrays (flattened, concatenated) given to
        every rank, the arrays updated in place: `vector` is the scratch."""
        from mpi4py import MPI

        for name, a, b, at in self._pieces(names, arrays, lo, hi):
            vector[lo + at:lo + at + b - a] = arrays[name].reshape(-1)[a:b]
        counts = [h - l for l, h in bounds]
        displacements = [l for l, _ in bounds]
        comm.Allgatherv(MPI.IN_PLACE, [vector, (counts, displacements)])
        _unpack(vector, [arrays[name] for name in names])


# -- fit's data-parallel steps ---------------------------------------------------------

class _DataParallel:
    """What `fit` does differently on more than one rank: a step on this rank's share of
    each global batch, the sharded validation, and the logs made the same everywhere.

    Built by `_data_parallel` once the arguments are checked.
    """

    def __init__(self, comm, model, loss, dtype):
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.denominator = _loss_denominator(loss, dtype)
        self.masks = _GlobalMasks(model)
        self.n_threads = None  # set by `_data_parallel` once the ranks agree
        self.sharded = None    # the `_ShardedStep` and its optimizer, where it applies

    def train_step(self, model, optimizer, loss, x, y, lengths, clip_norm, keep_pred):
        """One optimizer step on this rank's share of the global batch (x, y, lengths):
        (the global batch's loss, its whole prediction when `keep_pred`, else None)."""
        n = len(x)
        lo, hi = shard_bounds(n, self.rank, self.size)
        total = None if self.denominator is None else self.denominator(y)
        optimizer.zero_grad()
        value, pred, grad, share = 0.0, None, None, 0.0
        if hi > lo:
            part = None if lengths is None else lengths[lo:hi]
            with self.masks.rows(lo, hi, n), _threads(model, self.n_threads):
                pred = _forward(model, x[lo:hi], part)
            value, grad = loss(pred, y[lo:hi])
            share = 1.0 if total is None else (self.denominator(y[lo:hi]) / total
                                               if total else 0.0)
        if grad is not None:
            grad *= grad.dtype.type(share)
            with _threads(model, self.n_threads):
                _backward(model, grad)
        # The losses are gathered after the backward, not between it and the forward: a
        # rank then waits for the others once per step (in this gather), not twice. A
        # nan loss still stops every rank before the reduction and the step.
        gathered = self.comm.allgather((float(value) * share,
                                        pred if keep_pred else None))
        value = math.fsum(v for v, _ in gathered)
        if not math.isfinite(value):
            raise FloatingPointError(f"the training loss is {value}: lower the learning "
                                     "rate, clip the gradients (clip_norm) or scale the data")
        if self.sharded is not None and self.sharded[1] is optimizer:
            self.sharded[0].step(self.comm, optimizer, clip_norm)
        else:
            _sum_in_place(self.comm,
                          _flat_groups(model.grads[k] for k in model.parameters()))
            if clip_norm is not None:
                clip_grad_norm(model, clip_norm)  # the global norm: every rank has the sum
            optimizer.step()
        if n < self.size:  # ranks without samples drew no masks: rank 0's generators
            _set_generator_states(model, self.comm.bcast(rng_states(model), root=0))
        if not keep_pred:
            return value, None
        return value, np.concatenate([p for _, p in gathered if p is not None], axis=0)

    def predict(self, model, x, *, batch_size: int, lengths=None) -> np.ndarray:
        """`predict` on x, each rank predicting its share, the shares gathered."""
        lo, hi = shard_bounds(len(x), self.rank, self.size)
        part = None
        if hi > lo:
            with _threads(model, self.n_threads):
                part = predict(model, x[lo:hi], batch_size=batch_size,
                               lengths=None if lengths is None else lengths[lo:hi])
        parts = self.comm.allgather(part)
        return np.concatenate([p for p in parts if p is not None], axis=0)

    def same_logs(self, logs: dict) -> dict:
        """Rank 0's epoch logs (its wall time; the rest is equal already). Called at
        every epoch's end, before the callbacks: a sharded optimizer's state is made
        whole here, so that a checkpoint saves all of it."""
        if self.sharded is not None:
            self.sharded[0].gather_state(self.comm, self.sharded[1])
        return self.comm.bcast(logs, root=0)

    def same_stop(self, stop: bool) -> bool:
        """Rank 0's decision to stop, so that no rank waits for another that left."""
        return self.comm.bcast(bool(stop), root=0)

    def close(self) -> None:
        self.masks.release()


def _data_parallel(model, optimizer, scheduler, loss, arguments: dict, seed: int):
    """Start data-parallel training when there is more than one rank: check that every
    rank was given the same, install the abort hook, broadcast rank 0's parameters,
    generators, optimizer and schedule states and seed. Returns (_DataParallel, seed), or
    (None, seed) with one rank: plain `fit`.

    `arguments` names what must be equal on every rank (fingerprints of the data)."""
    comm = _world()
    if comm is None or comm.Get_size() == 1:
        return None, seed
    install_abort_hook()
    params = model.parameters()
    dtype = next(iter(params.values())).dtype
    parallel = _DataParallel(comm, model, loss, dtype)  # a loss it cannot split: refused
    _check_same(comm, {"model": repr(model), "model's parameters": _parameter_layout(params),
                       **arguments})
    parallel.n_threads = _thread_share(comm)
    broadcast_parameters(model)
    state = comm.bcast(optimizer.state_dict() if comm.Get_rank() == 0 else None, root=0)
    if comm.Get_rank() != 0:
        optimizer.load_state_dict(state)
    if scheduler is not None:
        state = comm.bcast(scheduler.state_dict() if comm.Get_rank() == 0 else None, root=0)
        if comm.Get_rank() != 0:
            scheduler.load_state_dict(state)
    sharded = _sharded_step(optimizer)
    if all(comm.allgather(sharded is not None)):  # the same path on every rank
        parallel.sharded = (sharded, optimizer)
    return parallel, comm.bcast(seed, root=0)


def _resume(load, model, optimizer, scheduler):
    """`resume_from_checkpoint` with the file on rank 0 only: rank 0 runs `load` (the
    one-process resume), then its model (parameters and generators), optimizer and
    schedule states and what `load` returned are broadcast. A failure on rank 0 is
    raised on every rank, of the same type and message."""
    comm = _world()
    if comm is None or comm.Get_size() == 1:
        return load()
    root = comm.Get_rank() == 0
    payload = error = None
    if root:
        try:
            payload = (load(), optimizer.state_dict(),
                       None if scheduler is None else scheduler.state_dict())
        except Exception as e:  # every rank raises it below
            error = e
    payload, failure = comm.bcast(
        (payload, None if error is None else (type(error), str(error))), root=0)
    if error is not None:
        raise error
    if failure is not None:
        kind, message = failure
        try:
            failed = kind(message)
        except Exception:  # an exception type that takes other arguments
            failed = RuntimeError(f"rank 0 failed to resume: {kind.__name__}: {message}")
        raise failed
    broadcast_parameters(model)
    result, optimizer_state, scheduler_state = payload
    if not root:
        optimizer.load_state_dict(optimizer_state)
        if scheduler is not None:
            scheduler.load_state_dict(scheduler_state)
    return result
