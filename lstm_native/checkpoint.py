"""Checkpoints: a model's architecture and weights, and optionally an optimizer's state,
the epoch and an `extra` dict, in one `.npz` file, written atomically, without pickle.

The file is a zip of `.npy` members, read back with ``np.load(allow_pickle=False)``:

- ``__metadata__``: UTF-8 JSON as a uint8 array (a 0-d unicode array is read too): the
  format name and version, the model's ``{"type": class name, "config": get_config()}``,
  its parameter names, the epoch, and the optimizer state and `extra` with every array
  replaced by a reference ``{"__array__": member}`` to its own member;
- ``model/<name>``: each parameter under its `state_dict` name (``model/0.weight_ih_l0``);
- ``optimizer/<path>``, ``extra/<path>``: the arrays of those trees, by their key paths.

Trees are flattened generically, so any nest of dicts, lists, tuples, JSON values,
numpy arrays and numpy scalars round-trips; dicts whose keys are not all strings keep
their keys (``{"__items__": [[key, value], ...]}``) and tuples stay tuples.
"""
from __future__ import annotations

import contextlib
import json
import numbers
import os
import uuid
import zipfile
import zlib

import numpy as np

from .layers import Dropout, LastStep, Linear, Sequential
from .lstm import LSTM, LSTMCell
from .module import Module
from .rnn import RNN

__all__ = ["FORMAT_VERSION", "build_module", "load_checkpoint", "load_model",
           "register_module", "save_checkpoint"]

FORMAT_NAME = "lstm_native.checkpoint"
#: The version this code writes; files of a newer version are refused.
FORMAT_VERSION = 1

_METADATA = "__metadata__"
_ARRAY, _TUPLE, _ITEMS = "__array__", "__tuple__", "__items__"
_TAGS = (_ARRAY, _TUPLE, _ITEMS)

_REGISTRY: dict[str, type] = {}


def register_module(cls: type) -> type:
    """Make a model class known to `load_model` and `load_checkpoint`, by its name.

    Parameters
    ----------
    cls : type
        A `Module` subclass with `get_config()`; it is rebuilt as ``cls(**config)``, or
        ``cls.from_config(config, build_module)`` when it defines `from_config`.

    Returns
    -------
    type
        `cls`, so that this works as a class decorator.

    Raises
    ------
    TypeError
        `cls` is not a Module subclass.
    ValueError
        Another class is registered under the same name.
    """
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TypeError(f"register_module takes a Module subclass, got {cls!r}")
    known = _REGISTRY.setdefault(cls.__name__, cls)
    if known is not cls:
        raise ValueError(f"another class is already registered as {cls.__name__!r}: {known!r}")
    return cls


for _cls in (LSTM, LSTMCell, RNN, Linear, Dropout, LastStep, Sequential):
    register_module(_cls)


def build_module(spec: dict) -> Module:
    """A new model (fresh weights) from its ``{"type": ..., "config": ...}`` description.

    Parameters
    ----------
    spec : dict
        ``{"type": registered class name, "config": that class's get_config()}``.

    Returns
    -------
    Module

    Raises
    ------
    ValueError
        The type is not registered, or the description is malformed.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise ValueError(f"a model description must be a dict {{'type': str, 'config': dict}}, "
                         f"got {spec!r}")
    cls = _REGISTRY.get(spec.get("type"))
    if cls is None:
        raise ValueError(f"unknown model type {spec.get('type')!r}; known types are "
                         f"{sorted(_REGISTRY)} (register_module(cls) adds one)")
    if hasattr(cls, "from_config"):
        return cls.from_config(spec["config"], build_module)
    return cls(**spec["config"])


def _check_registered(model) -> None:
    """ValueError unless load_model could rebuild `model` (and its layers)."""
    if _REGISTRY.get(type(model).__name__) is not type(model):
        raise ValueError(f"{type(model).__name__} is not a registered model class: "
                         "register_module(cls) first, so that the checkpoint can be loaded")
    if isinstance(model, Sequential):
        for layer in model.layers:
            _check_registered(layer)


# -- trees of JSON values and arrays ---------------------------------------------------

class _Flattener:
    """Replaces every array of a tree by a reference to a uniquely named npz member."""

    def __init__(self, arrays: dict):
        self.arrays = arrays

    def _store(self, value: np.ndarray, path: str) -> str:
        if value.dtype.hasobject:
            raise TypeError(f"{path}: object arrays cannot be saved without pickle")
        name, n = path, 1
        while name in self.arrays:
            name, n = f"{path}~{n}", n + 1
        self.arrays[name] = value
        return name

    def __call__(self, value, path: str):
        if isinstance(value, np.ndarray):
            return {_ARRAY: self._store(value, path)}
        if isinstance(value, np.generic):
            return {_ARRAY: self._store(np.asarray(value), path), "scalar": True}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list):
            return [self(v, f"{path}/{i}") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {_TUPLE: [self(v, f"{path}/{i}") for i, v in enumerate(value)]}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value) and not any(t in value for t in _TAGS):
                return {k: self(v, f"{path}/{k}") for k, v in value.items()}
            return {_ITEMS: [[self(k, f"{path}/key{i}"), self(v, f"{path}/{k}")]
                             for i, (k, v) in enumerate(value.items())]}
        raise TypeError(f"{path}: a {type(value).__name__} is neither a numpy array nor "
                        "JSON-ready (dict, list, tuple, str, int, float, bool, None)")


def _unflatten(node, arrays: dict):
    if isinstance(node, list):
        return [_unflatten(v, arrays) for v in node]
    if not isinstance(node, dict):
        return node
    if _ARRAY in node:
        value = arrays[node[_ARRAY]]  # KeyError: a missing member, reported by the caller
        return value[()] if node.get("scalar") else value
    if _TUPLE in node:
        return tuple(_unflatten(v, arrays) for v in node[_TUPLE])
    if _ITEMS in node:
        return {_hashable(_unflatten(k, arrays)): _unflatten(v, arrays) for k, v in node[_ITEMS]}
    return {k: _unflatten(v, arrays) for k, v in node.items()}


def _hashable(key):
    # A tuple key comes back as a tuple; JSON alone would give a list.
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


# -- writing -------------------------------------------------------------------------

def _write_atomically(path: str, arrays: dict) -> None:
    """Write an npz to a temporary file beside `path`, sync it, then rename it onto
    `path`: a reader sees the old file or the whole new one, never a partial one."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    # os.open with 0o666 lets the umask set the permissions, as for an ordinary file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o666)
    try:
        with open(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # The rename itself is durable once the directory entry is synced (POSIX only).
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save_checkpoint(path, model: Module, optimizer=None, *, epoch: int | None = None,
                    extra: dict | None = None) -> None:
    """Save a model (architecture and weights) and optionally the training state.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write, exactly this name (``.npz`` is customary). An existing file
        is replaced atomically: if saving fails, the old file is left intact and no
        temporary file remains.
    model : Module
        An instance of a registered class (see `register_module`).
    optimizer : object with ``state_dict()``, optional
        Its state (a nest of dicts, lists, JSON values and numpy arrays) is saved.
    epoch : int, optional
        The number of epochs done.
    extra : dict, optional
        Anything else to keep (scaler state, training history): JSON values and numpy
        arrays, nested in dicts, lists and tuples.

    Raises
    ------
    TypeError
        `epoch` is not an int, `extra` not a dict, or a value is neither JSON-ready nor
        a numpy array.
    ValueError
        The model's class is not registered, or `epoch` is negative.
    OSError
        The file cannot be written.

    Notes
    -----
    Kept states of a stateful `Sequential` and the position of a `Dropout`'s random
    generator are not saved.
    """
    from . import __version__

    path = os.fspath(path)
    _check_registered(model)
    if epoch is not None:
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral):
            raise TypeError(f"epoch must be None or an int >= 0, got {epoch!r}")
        if epoch < 0:
            raise ValueError(f"epoch must be None or an int >= 0, got {epoch}")
        epoch = int(epoch)
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra must be None or a dict, got {type(extra).__name__}")

    state = model.state_dict()
    arrays = {f"model/{name}": np.asarray(value) for name, value in state.items()}
    flatten = _Flattener(arrays)
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "lstm_native_version": __version__,
        "model": {"type": type(model).__name__, "config": model.get_config()},
        "model_keys": list(state),
        "epoch": epoch,
        "optimizer": None if optimizer is None else flatten(optimizer.state_dict(), "optimizer"),
        "extra": None if extra is None else flatten(extra, "extra"),
    }
    try:
        text = json.dumps(meta)
    except TypeError as e:
        raise TypeError(f"the model's config is not JSON-ready: {e}") from e
    arrays[_METADATA] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _write_atomically(path, arrays)


# -- reading -------------------------------------------------------------------------

def _read(path) -> tuple[str, dict, dict, dict]:
    """(path, metadata, weights, arrays) of a checkpoint; ValueError naming the file
    otherwise."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: not a file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a checkpoint: not a complete .npz (zip) archive "
                         "(another format, or truncated)")
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()  # reads every member and checks its CRC
        if bad is None:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as e:
        raise ValueError(f"{path}: corrupt checkpoint ({e})") from e
    if bad is not None:
        raise ValueError(f"{path}: corrupt checkpoint: member {bad!r} fails its CRC check")

    raw = arrays.pop(_METADATA, None)
    if raw is None:
        raise ValueError(f"{path}: no checkpoint metadata ({_METADATA!r}): not written by "
                         "save_checkpoint")
    try:
        if raw.dtype == np.uint8 and raw.ndim == 1:
            text = raw.tobytes().decode("utf-8")
        elif raw.dtype.kind == "U" and raw.ndim == 0:
            text = str(raw[()])
        else:
            raise ValueError(f"a {raw.dtype} array of shape {raw.shape}")
        meta = json.loads(text)
    except ValueError as e:  # also UnicodeDecodeError and json.JSONDecodeError
        raise ValueError(f"{path}: unreadable checkpoint metadata ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ValueError(f"{path}: the metadata is not that of an lstm_native checkpoint")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"{path}: the metadata has no valid format_version: {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format version {version} is newer than this "
                         f"lstm_native supports ({FORMAT_VERSION}): upgrade lstm_native")
    for key in ("model", "model_keys", "epoch", "optimizer", "extra"):
        if key not in meta:
            raise ValueError(f"{path}: the metadata lacks {key!r}")
    weights = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    if sorted(weights) != sorted(meta["model_keys"]):
        raise ValueError(f"{path}: corrupt checkpoint: its weights "
                         f"{sorted(weights)} are not those listed {sorted(meta['model_keys'])}")
    return path, meta, weights, arrays


def _tree(path: str, meta: dict, key: str, arrays: dict):
    try:
        return _unflatten(meta[key], arrays)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: corrupt checkpoint: the {key} state refers to a "
                         f"missing or malformed array ({e})") from e


def _load_weights(path: str, model: Module, weights: dict) -> None:
    try:
        model.load_state_dict(weights)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: the weights do not load into {type(model).__name__}: "
                         f"{e}") from e


def _rebuild(path: str, meta: dict, weights: dict) -> Module:
    try:
        model = build_module(meta["model"])
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{path}: cannot rebuild the model: {e}") from e
    _load_weights(path, model, weights)
    return model


def _check_architecture(path: str, model: Module, weights: dict) -> None:
    """ValueError unless the checkpoint's weights have the model's names and shapes."""
    expected = {name: p.shape for name, p in model.parameters().items()}
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    shapes = [f"{name}: {weights[name].shape} vs {shape}" for name, shape in expected.items()
              if name in weights and weights[name].shape != shape]
    if missing or unexpected or shapes:
        raise ValueError(f"{path}: the checkpoint's model does not match the given "
                         f"{type(model).__name__}: missing {missing}, unexpected "
                         f"{unexpected}, shapes differ {shapes}")


def load_model(path) -> Module:
    """Rebuild a saved model with its weights.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by `save_checkpoint`.

    Returns
    -------
    Module
        A new instance of the saved class and configuration, its weights bitwise those
        saved (in training mode, as a freshly built model).

    Raises
    ------
    ValueError
        Naming the file: not a file, not an npz, truncated or corrupt, no metadata, a
        newer format version, or a model type not registered.
    """
    path, meta, weights, _ = _read(path)
    return _rebuild(path, meta, weights)


def load_checkpoint(path, model: Module | None = None, optimizer=None) -> dict:
    """Load a checkpoint: the model's weights, and the optimizer's state if asked.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by `save_checkpoint`.
    model : Module, optional
        Load the weights into this model, whose parameter names and shapes must be the
        saved ones; None rebuilds the saved model, as `load_model`.
    optimizer : object with ``load_state_dict(state)``, optional
        Restored from the saved state (the checkpoint must hold one). If this fails, the
        given model is restored too.

    Returns
    -------
    dict
        ``"model"``: the model; ``"epoch"``: int or None; ``"extra"``: dict or None;
        ``"optimizer_state"``: the saved optimizer state or None (for an optimizer
        built after loading the model).

    Raises
    ------
    ValueError
        Naming the file: every error of `load_model`, an architecture that does not
        match the given model, or an optimizer state that is missing or does not load.
    """
    path, meta, weights, arrays = _read(path)
    optimizer_state = _tree(path, meta, "optimizer", arrays)
    extra = _tree(path, meta, "extra", arrays)
    if optimizer is not None and optimizer_state is None:
        raise ValueError(f"{path}: the checkpoint holds no optimizer state")
    if model is None:
        model = _rebuild(path, meta, weights)
        previous = None
    else:
        _check_architecture(path, model, weights)
        previous = model.state_dict() if optimizer is not None else None
        _load_weights(path, model, weights)
    if optimizer is not None:
        try:
            optimizer.load_state_dict(optimizer_state)
        except Exception as e:
            if previous is not None:
                model.load_state_dict(previous)
            if isinstance(e, (KeyError, TypeError, ValueError)):
                raise ValueError(f"{path}: the optimizer state does not load: {e}") from e
            raise
    return {"model": model, "epoch": meta["epoch"], "extra": extra,
            "optimizer_state": optimizer_state}
