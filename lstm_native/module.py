"""What every model building block shares: named parameters, their gradients, state_dict
and load_state_dict, the train/eval switch, and the rule for threads.

Threads. Inference (eval mode) keeps nothing between calls and takes no lock: any
number of threads may run one model's forward at once. Training is one thread at a
time per model: a training-mode forward keeps the activations its backward reads, in
the model itself. So a training-mode forward or backward holds the block's lock while
it runs, and a call from another thread meanwhile raises RuntimeError at once instead
of waiting (two threads training one model is a mistake, not a queue). What a forward
keeps is marked as its thread's: a backward raises RuntimeError when it comes from
another thread, or when another thread's forward has replaced or used up this thread's
since, rather than back-propagate the wrong activations. Each message names the class
and says that a model is trained from one thread at a time. Switching a model between
train() and eval(), loading weights or stepping an optimizer while other threads run
it is the caller's to order.
"""
from __future__ import annotations

import collections.abc
import functools
import itertools
import threading

import numpy as np

from ._validation import FLOAT_DTYPES, from_torch

# Marks of what training forwards keep: unique within the process.
_cache_marks = itertools.count(1)

#: How every error of two threads training one model ends, in every block.
ONE_TRAINING_THREAD = "a model is trained from one thread at a time"
#: The error of a backward in eval mode, in every block.
EVAL_MODE_BACKWARD = ("backward() is not available in eval mode: call train() and run "
                      "forward() again")


def one_thread_in_training(method):
    """Decorate a block's forward or backward: in training mode it runs under the block's
    lock, and a call while another thread holds it raises RuntimeError; in eval mode it
    runs as it is (see the module docstring)."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        if not self.training:
            return method(self, *args, **kwargs)
        if not self._training_lock.acquire(False):  # never waits
            raise RuntimeError(
                f"{type(self).__name__} is being trained by another thread right now: "
                f"{ONE_TRAINING_THREAD} (inference in eval mode may run in many threads)")
        try:
            return method(self, *args, **kwargs)
        finally:
            self._training_lock.release()
    return call


#: numpy's bit generators, by the name their state carries.
BIT_GENERATORS = {cls.__name__: cls for cls in (np.random.PCG64, np.random.PCG64DXSM,
                                                np.random.MT19937, np.random.Philox,
                                                np.random.SFC64)}


def generator_from_state(state) -> np.random.Generator:
    """A new Generator in the given ``bit_generator.state`` (numpy checks the rest)."""
    if not (isinstance(state, dict) and isinstance(state.get("bit_generator"), str)
            and state["bit_generator"] in BIT_GENERATORS):
        raise ValueError(f"a generator state must be a dict naming one of numpy's bit "
                         f"generators {sorted(BIT_GENERATORS)}, got {state!r:.200}")
    bit_generator = BIT_GENERATORS[state["bit_generator"]]()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def rng_states(model) -> dict:
    """The states of the random generators of `model` and its sub-modules (`children`),
    by module path as in `state_dict` names ("" for the model itself, "0", "1.2" for
    sub-modules); the modules that draw nothing are left out."""
    states, stack = {}, [("", model)]
    while stack:
        path, module = stack.pop()
        state = module.rng_state()
        if state is not None:
            states[path] = state
        stack.extend((f"{path}.{i}" if path else str(i), child)
                     for i, child in enumerate(module.children()))
    return states


def modules_by_path(model) -> dict:
    """`model` and its sub-modules by the paths `rng_states` uses."""
    found, stack = {}, [("", model)]
    while stack:
        path, module = stack.pop()
        found[path] = module
        stack.extend((f"{path}.{i}" if path else str(i), child)
                     for i, child in enumerate(module.children()))
    return found


def set_rng_states(model, states: dict) -> None:
    """Put the generators `rng_states` described back (paths not given are left)."""
    modules = modules_by_path(model)
    for path, state in states.items():
        modules[path].set_rng_state(state)


class Module:
    """Base of the building blocks: parameters by PyTorch's names, gradients, modes.

    Parameters live in `parameters()` (the arrays the model computes with) and their
    gradients in `grads` (same keys and shapes); `backward` adds into `grads`.

    Inference in eval mode may run in many threads at once; training is one thread at a
    time per model, and a second thread's training call raises RuntimeError (see the
    module docstring).
    """

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype
        self._params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True
        self._cache = None
        self._init_threading()

    def _init_threading(self) -> None:
        self._training_lock = threading.Lock()
        # The mark of what the last training forward kept, and per thread the mark of
        # that thread's own last training forward.
        self._cache_mark = None
        self._thread_marks = threading.local()

    def __getstate__(self) -> dict:
        # A lock and a thread's record are not state: a copy gets its own, and starts
        # with no forward to back-propagate.
        state = dict(self.__dict__)
        for name in ("_training_lock", "_thread_marks", "_cache_mark"):
            state.pop(name, None)
        state["_cache"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_threading()

    def _keep_for_backward(self, cache) -> None:
        """Keep what backward needs, marked as this thread's (a training forward calls
        it under the training lock)."""
        mark = next(_cache_marks)
        self._cache = cache
        self._cache_mark = mark
        self._thread_marks.mark = mark

    def _cache_for_backward(self):
        """What this thread's last training forward kept, left in place (backward drops
        it, by setting `_cache` to None, once its arguments pass their checks).

        Raises
        ------
        RuntimeError
            In eval mode; with no forward left to back-propagate; when the cache is
            another thread's, or this thread's was replaced or used up by another.
        """
        if not self.training:
            raise RuntimeError(EVAL_MODE_BACKWARD)
        name = type(self).__name__
        mine = getattr(self._thread_marks, "mark", None)
        if mine is not None and mine == self._cache_mark:
            if self._cache is not None:
                return self._cache
        elif mine is not None:
            raise RuntimeError(f"{name}.backward(): another thread's forward() has replaced "
                               f"this thread's since: {ONE_TRAINING_THREAD}")
        elif self._cache is not None:
            raise RuntimeError(f"{name}.backward() runs in another thread than the forward() "
                               f"it would back-propagate: {ONE_TRAINING_THREAD}")
        raise RuntimeError("backward() needs a training-mode forward() first; each "
                           "forward() can be back-propagated once")

    def _add_parameter(self, name: str, value: np.ndarray) -> None:
        self._params[name] = np.ascontiguousarray(value, dtype=self.dtype)
        self.grads[name] = np.zeros_like(self._params[name])

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):  # pragma: no cover - every block defines it
        raise NotImplementedError

    def get_config(self) -> dict:
        """The constructor's arguments as a JSON-ready dict: `type(self)(**config)` builds
        the same architecture (with fresh weights)."""
        raise NotImplementedError(f"{type(self).__name__} does not describe its configuration")

    def parameters(self) -> dict[str, np.ndarray]:
        """The live parameter arrays by name (updating them in place updates the model).

        Returns
        -------
        dict of str to numpy.ndarray
            Same keys as `state_dict()`; the arrays themselves, not copies.
        """
        return dict(self._params)

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, under PyTorch's names and shapes.

        Returns
        -------
        dict of str to numpy.ndarray
        """
        return {name: p.copy() for name, p in self._params.items()}

    def load_state_dict(self, state_dict) -> None:
        """Copy parameters in from a dict such as `state_dict()` (or a PyTorch one).

        Every name and shape is checked before anything is written, so a failed load
        leaves the model as it was.

        Parameters
        ----------
        state_dict : mapping of str to array_like
            Exactly this model's parameter names, each of the same shape, float32 or
            float64 (converted to the model's dtype), all values finite.

        Raises
        ------
        KeyError
            A parameter is missing or an unexpected name is present.
        ValueError
            A shape differs, a value is not finite, or a value is nested lists of
            unequal lengths.
        TypeError
            `state_dict` is not a mapping, or a value is not a float array.
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"state_dict must be a mapping of parameter names to arrays, "
                            f"got {type(state_dict).__name__}")
        names = set(self._params)
        given = set(state_dict)
        if names != given:
            missing = sorted(names - given)
            unexpected = sorted(given - names)
            raise KeyError(
                f"state_dict does not match {type(self).__name__}: "
                f"missing {missing}, unexpected {unexpected}"
            )
        self._write_state(self._checked_state(state_dict, ""))

    def _prefixed_children(self) -> tuple:
        """(prefix, child) for each child when this model's parameters are exactly its
        children's under ``"{i}."`` (as in `Sequential`): the children then check and
        write their own (a quantized layer's are not float). Empty otherwise."""
        pairs = tuple((f"{i}.", child) for i, child in enumerate(self.children()))
        names = {prefix + name for prefix, child in pairs for name in child._params}
        return pairs if pairs and names == set(self._params) else ()

    def _checked_state(self, state_dict, where: str) -> dict:
        """This model's parameters from `state_dict` (its names exactly), each checked
        and converted, nothing written: `load_state_dict`'s first half. `where` is the
        prefix of the names in messages."""
        children = self._prefixed_children()
        if children:
            checked = {}
            for prefix, child in children:
                own = _unprefixed(state_dict, prefix)
                checked.update({prefix + k: v for k, v in
                                child._checked_state(own, where + prefix).items()})
            return checked
        loaded = {}
        for name, p in self._params.items():
            value = from_torch(state_dict[name])
            label = f"state_dict[{where + name!r}]"
            expected = f"float32 or float64 of shape {p.shape}"
            try:
                arr = np.asarray(value)
            except ValueError as e:  # nested sequences of unequal lengths
                raise ValueError(f"{label} must be {expected}: {e}") from None
            if arr.dtype not in FLOAT_DTYPES:
                got = f"dtype {arr.dtype}" if arr.dtype != object else type(value).__name__
                raise TypeError(f"{label} must be {expected}, got {got}")
            value = arr
            if value.shape != p.shape:
                raise ValueError(f"{label} must have shape {p.shape}, got {value.shape}")
            # Finite after conversion: a float64 1e300 would become inf in float32.
            with np.errstate(over="ignore", invalid="ignore"):
                value = value.astype(self.dtype)
            if not np.all(np.isfinite(value)):
                raise ValueError(
                    f"{label} holds a value that is not finite in "
                    f"{self.dtype} (nan, inf or out of range)"
                )
            loaded[name] = value
        return loaded

    def _write_state(self, checked: dict) -> None:
        """Copy in what `_checked_state` returned: `load_state_dict`'s second half (a
        container through its children, so that each updates what it derives from its
        parameters)."""
        children = self._prefixed_children()
        if children:
            for prefix, child in children:
                child._write_state(_unprefixed(checked, prefix))
            return
        for name, value in checked.items():
            np.copyto(self._params[name], value)

    def rng_state(self) -> dict | None:
        """The state of this block's own random generator, numpy's
        ``Generator.bit_generator.state``; None for a block that draws nothing (the
        default). `save_checkpoint` saves it, so that a resumed run draws the masks the
        uninterrupted one would have drawn.

        Returns
        -------
        dict or None
        """
        return None

    def set_rng_state(self, state: dict) -> None:
        """Put this block's random generator in the state `rng_state` gave.

        Parameters
        ----------
        state : dict
            numpy's ``bit_generator.state`` of one of its bit generators.

        Raises
        ------
        TypeError
            The block draws nothing (`rng_state` is None).
        """
        raise TypeError(f"{type(self).__name__} has no random generator")

    def children(self) -> tuple[Module, ...]:
        """The sub-modules this one is made of, in order; none for a plain block.

        A container (such as `Sequential`) returns its sub-modules: `train` and `eval`
        reach them, and `save_checkpoint` checks that each one's class is registered.

        Returns
        -------
        tuple of Module
        """
        return ()

    def zero_grad(self) -> None:
        """Set every gradient in `grads` to zero."""
        for g in self.grads.values():
            g.fill(0)

    def train(self, mode: bool = True):
        """Training mode, here and in every sub-module (`children`): forward keeps what
        backward needs. Returns self."""
        for child in self.children():
            child.train(mode)
        self.training = bool(mode)
        if not self.training:
            self._drop_cache()
        return self

    def eval(self):
        """Inference mode: forward keeps only the running state; backward raises. Returns self."""
        return self.train(False)

    def _drop_cache(self) -> None:
        """Forget what the last forward kept for backward."""
        self._cache = None


def _unprefixed(state: dict, prefix: str) -> dict:
    """The entries of `state` under `prefix`, by their names without it."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
