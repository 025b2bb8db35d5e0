"""Checkpoints: a model's architecture and weights, and optionally an optimizer's state,
the epoch and an `extra` dict, in one `.npz` file, written atomically, without pickle.

The file is a zip of `.npy` members (``np.load(allow_pickle=False)`` reads it):

- ``__metadata__``: UTF-8 JSON as a uint8 array (a 0-d unicode array is read too): the
  format name and version, the model's ``{"type": class name, "config": get_config()}``,
  its parameter names, the epoch, and the optimizer state and `extra` with every array
  replaced by a reference ``{"__array__": member}`` to its own member; and, only for a
  model that draws random numbers (dropout), ``rng_states``: each generator's numpy
  ``bit_generator.state`` by module path ("" for the model, "1" for a Sequential's
  second layer), its arrays as lists of ints (checked against the layout of numpy's
  bit generator it names before a generator is built);
- ``model/<name>``: each parameter under its `state_dict` name (``model/0.weight_ih_l0``);
- ``optimizer/<path>``, ``extra/<path>``: the arrays of those trees, by their key paths.

Trees are flattened generically, so any nest of dicts, lists, tuples, JSON values,
numpy arrays and numpy scalars round-trips; dicts whose keys are not all strings keep
their keys (``{"__items__": [[key, value], ...]}``) and tuples stay tuples.

Loading treats the file as untrusted. It never unpickles and never reads the whole
archive: it reads the metadata, checks every declared config value against a table of
types and bounds per class (`_RULES`), computes the parameter shapes that config needs
by arithmetic alone, and checks the header of every member it will use (dtype, shape,
declared size) against them and against a byte cap, all before it builds the model or
allocates an array. Only then are the members read, each exactly to its declared size
and CRC. Anything wrong is a `CheckpointError` naming the file.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import numbers
import os
import re
import reprlib
import struct
import uuid
import warnings
import zipfile
import zlib
from typing import NamedTuple

import numpy as np
from numpy.lib import format as npy_format

from ._validation import FLOAT_DTYPES
from .gru import GRU, GRUCell
from .layers import Dropout, Ensemble, LastStep, Linear, Sequential
from .lstm import LSTM, LSTMCell, variant_shapes
from .module import BIT_GENERATORS, Module, generator_from_state, modules_by_path, rng_states
from .quantization import (PRECISIONS, QuantizedGRU, QuantizedLinear, QuantizedLSTM,
                           QuantizedRNN)
from .rnn import RNN, RNNCell

__all__ = ["DEFAULT_MAX_BYTES", "FORMAT_VERSION", "CheckpointError", "build_module",
           "load_checkpoint", "load_model", "register_module", "save_checkpoint"]

FORMAT_NAME = "lstm_native.checkpoint"
#: The version this code writes; files of a newer version are refused.
FORMAT_VERSION = 1

#: The default cap on the bytes a load reads (metadata and arrays), 1 GiB: a file that
#: declares more is refused before anything is read. Pass ``max_bytes=`` for a bigger model.
DEFAULT_MAX_BYTES = 1 << 30

# The bounds a file's declarations must keep, whatever max_bytes allows. They are far
# above any real model and bound the work a crafted file can cause before it is refused.
MAX_SIZE = 1 << 20          # input_size, hidden_size, in_features, out_features
MAX_LAYERS = 1024           # num_layers of a recurrent layer
MAX_THREADS = 1024          # n_threads
MAX_MODULES = 4096          # modules in one model, Sequentials included
MAX_NESTING = 32            # Sequentials within Sequentials
MAX_TREE_DEPTH = 64         # nesting of the optimizer and extra trees, and of other configs
MAX_MEMBERS = 1 << 16       # members of the archive
MAX_METADATA_BYTES = 64 << 20
_MAX_DIRECTORY_BYTES = 64 << 20  # the zip's central directory, parsed whole by zipfile
_MAX_NDIM = 32
_MAX_MEMBER_NAME = 1024

_METADATA = "__metadata__"
#: The weights of quantized layers: int8 values, bfloat16 bit patterns.
_QUANTIZED_DTYPES = (np.dtype(np.int8), np.dtype(np.uint16))
_ARRAY, _TUPLE, _ITEMS = "__array__", "__tuple__", "__items__"
_TAGS = (_ARRAY, _TUPLE, _ITEMS)
# The arrays a checkpoint holds: plain numbers, any byte order, nothing pickle would need.
_NUMERIC = frozenset(np.dtype(t) for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
    np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128))

_REGISTRY: dict[str, type] = {}


class CheckpointError(ValueError):
    """A file that `load_model` or `load_checkpoint` cannot load: not a checkpoint,
    truncated or corrupt, malformed, larger than `max_bytes`, or not matching the model
    it is loaded into. The message starts with the file's name and says what is wrong."""


class _Bad(Exception):
    """What is wrong with a file, before `_read` prefixes its name (a CheckpointError)."""


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 80, 80


def _short(value) -> str:
    """A value read from a file, for a message: cut short, and never nested too deep
    for repr."""
    return _REPR.repr(value)


def register_module(cls: type) -> type:
    """Make a model class known to `load_model` and `load_checkpoint`, by its name.

    Parameters
    ----------
    cls : type
        A `Module` subclass with `get_config()`; it is rebuilt as ``cls(**config)``, or
        ``cls.from_config(config, build_module)`` when it defines `from_config`.

        A file's config is untrusted, and loading checks the built-in classes' configs
        and weight shapes before building anything. For `cls`, define a classmethod
        ``parameter_shapes(config) -> {name: shape}`` that checks `config` (raising
        TypeError or ValueError on anything it would not build) and returns the shape
        of each parameter, computed without building the model: the weights' headers
        are then checked against it first. Without it (a subclass of a built-in class
        has none: its constructor may differ) the byte cap, the config's nesting and
        every header are still checked, but the model is built from the file's config
        before its shapes are compared: register only classes whose constructor bounds
        what it allocates, or load only files you trust.

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


for _cls in (LSTM, LSTMCell, RNN, RNNCell, GRU, GRUCell, Linear, Dropout, LastStep, Sequential,
             Ensemble, QuantizedLSTM, QuantizedGRU, QuantizedRNN, QuantizedLinear):
    register_module(_cls)


def build_module(spec: dict) -> Module:
    """A new model (fresh weights) from its ``{"type": ..., "config": ...}`` description.

    The description is trusted: the model is built as it says. Loading a file checks
    the description first (see `load_model`).

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
    """ValueError unless load_model could rebuild `model` and its sub-modules (`children`)."""
    if _REGISTRY.get(type(model).__name__) is not type(model):
        raise ValueError(f"{type(model).__name__} is not a registered model class: "
                         "register_module(cls) first, so that the checkpoint can be loaded")
    for child in model.children():
        _check_registered(child)


# -- the declared architecture, checked and measured without building it -----------------

class _Key(NamedTuple):
    """One config key: what it must be (said in messages), the check, and the value a
    file without the key means (`_REQUIRED`: a file must have it)."""
    expected: str
    ok: object
    default: object = None


_REQUIRED = object()


def _ints(low: int, high: int, default=_REQUIRED) -> _Key:
    return _Key(f"an int in {low}..{high}",
                lambda v: type(v) is int and low <= v <= high, default)


def _optional_ints(low: int, high: int, default=_REQUIRED) -> _Key:
    return _Key(f"None or an int in {low}..{high}",
                lambda v: v is None or (type(v) is int and low <= v <= high), default)


def _choice(*choices: str) -> _Key:
    return _Key(" or ".join(map(repr, choices)), lambda v: type(v) is str and v in choices,
                _REQUIRED)


_BOOL = _Key("a bool", lambda v: type(v) is bool, _REQUIRED)
_SIZE = _ints(1, MAX_SIZE)
_DTYPE = _choice("float32", "float64")
_THREADS = _optional_ints(1, MAX_THREADS)
_INIT = _choice("torch", "keras")._replace(default="torch")   # older files: torch's
#: The LSTM's variants (older files: none).
_LSTM_VARIANT_KEYS = {
    "peepholes": _BOOL._replace(default=False),
    "clip": _Key("None or a finite number > 0",
                 lambda v: v is None or (type(v) in (int, float) and 0 < v < float("inf")),
                 None),
    "input_forget": _BOOL._replace(default=False),
    "layer_norm": _BOOL._replace(default=False),
}


def _recurrent_shapes(cls):
    """The parameters of `LSTM`, `RNN` or `GRU` (`_Recurrent.__init__`), by the class's own
    gate count and name suffixes."""
    def shapes(c, layer_parameters):
        H, D = c["hidden_size"], 2 if c["bidirectional"] else 1
        G, P = cls._n_gates * H, c.get("proj_size", 0) or H
        for layer in range(c["num_layers"]):
            in_size = c["input_size"] if layer == 0 else D * P
            for direction in range(D):
                sfx = cls._suffix(layer, direction)
                yield f"weight_ih{sfx}", (G, in_size), c["dtype"]
                yield f"weight_hh{sfx}", (G, P), c["dtype"]
                if c["bias"]:
                    yield f"bias_ih{sfx}", (G,), c["dtype"]
                    yield f"bias_hh{sfx}", (G,), c["dtype"]
                if P != H:
                    yield f"weight_hr{sfx}", (P, H), c["dtype"]
                for name, shape in _variant_shapes(c):
                    yield f"{name}{sfx}", shape, c["dtype"]
    return shapes


def _cell_shapes(n_gates: int):
    """The parameters of `LSTMCell` (4 gates), `GRUCell` (3) or `RNNCell` (1)."""
    def shapes(c, layer_parameters):
        G, H = n_gates * c["hidden_size"], c["hidden_size"]
        yield "weight_ih", (G, c["input_size"]), c["dtype"]
        yield "weight_hh", (G, H), c["dtype"]
        if c["bias"]:
            yield "bias_ih", (G,), c["dtype"]
            yield "bias_hh", (G,), c["dtype"]
        for name, shape in _variant_shapes(c):
            yield name, shape, c["dtype"]
    return shapes


def _variant_shapes(c):
    """The parameters the LSTM's variants add to a layer and direction (or a cell)."""
    return variant_shapes(c["hidden_size"], c.get("peepholes", False),
                          c.get("layer_norm", False)).items()


def _linear_shapes(c, layer_parameters):
    yield "weight", (c["out_features"], c["in_features"]), c["dtype"]
    if c["bias"]:
        yield "bias", (c["out_features"],), c["dtype"]


def _no_parameters(c, layer_parameters):
    return ()


def _sequential_shapes(c, layer_parameters, key="layers"):
    for i, spec in enumerate(c[key]):
        for name, shape, dtype in layer_parameters(f"{key}[{i}]", spec):
            yield f"{i}.{name}", shape, dtype


def _ensemble_shapes(c, layer_parameters):
    return _sequential_shapes(c, layer_parameters, key="members")


#: The parameters a variant adds, which no quantized kernel takes.
_NOT_QUANTIZED = re.compile(r"weight_hr|peephole|_ln_")


def _quantized_shapes(float_type: str):
    """The parameters of a quantized layer (lstm_native.quantization): its float
    layer's (checked by that class's rule), each weight in int8 with a float32 scale per
    row, or in uint16 (bfloat16 bit patterns), the biases in float32."""
    def shapes(c, layer_parameters):
        spec = c["float"]
        if not isinstance(spec, dict) or spec.get("type") != float_type:
            raise _Bad(f"a quantized {float_type} must describe its float layer as "
                       f"{{'type': {float_type!r}, 'config': ...}}, got {_short(spec)}")
        weight, scale = (np.int8, np.float32) if c["precision"] == "int8" else (np.uint16, None)
        for name, shape, _ in layer_parameters("float", spec):
            if _NOT_QUANTIZED.search(name):
                raise _Bad(f"the quantized {float_type}'s float layer has {name!r}, which "
                           "no quantized kernel takes")
            if name.split("_")[0] == "bias":
                yield name, shape, "float32"
                continue
            yield name, shape, np.dtype(weight).name
            if scale is not None:
                yield f"{name}_scale", shape[:1], "float32"
    return shapes


_QUANTIZED_KEYS = {"float": _Key("a layer description", lambda v: type(v) is dict, _REQUIRED),
                   "precision": _choice(*PRECISIONS)}


#: A dropout probability (older files: none).
_RATE = _Key("a float in [0, 1]", lambda v: type(v) in (int, float) and 0 <= v <= 1, 0.0)
_RECURRENT_KEYS = {"input_size": _SIZE, "hidden_size": _SIZE,
                   "num_layers": _ints(1, MAX_LAYERS), "bias": _BOOL, "batch_first": _BOOL,
                   "dropout": _RATE, "input_dropout": _RATE, "recurrent_dropout": _RATE,
                   "bidirectional": _BOOL,
                   "init": _INIT,
                   "dtype": _DTYPE, "n_threads": _THREADS}

#: Per built-in class: every key its get_config() writes, and its parameters as
#: (name, shape, dtype name) from the checked config. `layer_parameters(where, spec)`
#: gives a sub-module's (for Sequential). A key added later gets a default, so that
#: older files still load.
_RULES = {
    LSTM: ({**_RECURRENT_KEYS, "proj_size": _ints(0, MAX_SIZE - 1, default=0),
            "unit_forget_bias": _BOOL._replace(default=False), **_LSTM_VARIANT_KEYS},
           _recurrent_shapes(LSTM)),
    RNN: ({**_RECURRENT_KEYS, "nonlinearity": _choice("tanh", "relu")},
          _recurrent_shapes(RNN)),
    GRU: ({**_RECURRENT_KEYS, "reset_after": _BOOL}, _recurrent_shapes(GRU)),
    LSTMCell: ({"input_size": _SIZE, "hidden_size": _SIZE, "bias": _BOOL, "init": _INIT,
                "unit_forget_bias": _BOOL._replace(default=False), **_LSTM_VARIANT_KEYS,
                "dtype": _DTYPE, "n_threads": _THREADS}, _cell_shapes(4)),
    RNNCell: ({"input_size": _SIZE, "hidden_size": _SIZE, "bias": _BOOL,
               "nonlinearity": _choice("tanh", "relu"), "init": _INIT, "dtype": _DTYPE,
               "n_threads": _THREADS}, _cell_shapes(1)),
    GRUCell: ({"input_size": _SIZE, "hidden_size": _SIZE, "bias": _BOOL,
               "reset_after": _BOOL, "init": _INIT, "dtype": _DTYPE, "n_threads": _THREADS},
              _cell_shapes(3)),
    Linear: ({"in_features": _SIZE, "out_features": _SIZE, "bias": _BOOL, "dtype": _DTYPE},
             _linear_shapes),
    Dropout: ({"p": _Key("a float in [0, 1)",
                         lambda v: type(v) in (int, float) and 0 <= v < 1, _REQUIRED),
               "seed": _optional_ints(0, 2**128 - 1)}, _no_parameters),
    LastStep: ({"batch_first": _BOOL, "bidirectional": _BOOL}, _no_parameters),
    Sequential: ({"layers": _Key(f"a list of 1..{MAX_MODULES} layer descriptions",
                                 lambda v: type(v) is list and 1 <= len(v) <= MAX_MODULES,
                                 _REQUIRED),
                  "stateful": _BOOL._replace(default=False)}, _sequential_shapes),
    Ensemble: ({"members": _Key(f"a list of 2..{MAX_MODULES} model descriptions",
                                lambda v: type(v) is list and 2 <= len(v) <= MAX_MODULES,
                                _REQUIRED),
                "reduce": _choice(*Ensemble.REDUCTIONS)}, _ensemble_shapes),
    **{cls: (_QUANTIZED_KEYS, _quantized_shapes(cls._float_class.__name__))
       for cls in (QuantizedLSTM, QuantizedGRU, QuantizedRNN)},
    QuantizedLinear: (_QUANTIZED_KEYS, _quantized_shapes("Linear")),
}


def _checked_config(config: dict, keys: dict, where: str) -> dict:
    """`config` with every key checked against `keys`, missing optional ones filled in."""
    unknown = sorted(set(config) - set(keys))
    if unknown:
        raise _Bad(f"{where} has unknown keys {_short(unknown)}")
    checked = {}
    for key, rule in keys.items():
        if key not in config:
            if rule.default is _REQUIRED:
                raise _Bad(f"{where} lacks {key!r}")
            checked[key] = rule.default
        elif not rule.ok(config[key]):
            raise _Bad(f"{where}[{key!r}] must be {rule.expected}, got {_short(config[key])}")
        else:
            checked[key] = config[key]
    return checked


def _check_depth(node, where: str, limit: int = MAX_TREE_DEPTH) -> None:
    """_Bad if the JSON value `node` nests deeper than `limit` (without recursion)."""
    level = [node]
    for _ in range(limit + 1):
        level = [v for n in level if isinstance(n, (dict, list))
                 for v in (n.values() if isinstance(n, dict) else n)]
        if not level:
            return
    raise _Bad(f"{where} nests deeper than {limit} levels")


class _Architecture:
    """The parameters a model description declares, {name: (shape, dtype)}, each shape
    and the total size checked against the limits as they are computed, so that a
    description of a huge model is refused after a bounded amount of work.

    `shapes` is None when a class has no shape rule: those are known only once built.
    With `given` (a model to load into, built already), a type not registered here is
    such a class too.
    """

    def __init__(self, spec, max_bytes: int, given: bool):
        self.max_bytes = max_bytes
        self.given = given
        self.modules = 0
        self.known = True
        self.nbytes = 0
        shapes = {}
        for name, shape, dtype in self._measured(self._parameters("model", spec, 0)):
            if name in shapes:
                raise _Bad(f"the model declares the parameter {name!r} twice")
            if len(shapes) == MAX_MEMBERS:
                raise _Bad(f"the model declares more than {MAX_MEMBERS} parameters")
            shapes[name] = (shape, dtype)
        self.shapes = shapes if self.known else None

    def _parameters(self, where: str, spec, depth: int):
        if depth > MAX_NESTING:
            raise _Bad(f"{where}: Sequentials nest deeper than {MAX_NESTING} levels")
        self.modules += 1
        if self.modules > MAX_MODULES:
            raise _Bad(f"the model has more than {MAX_MODULES} modules")
        if not isinstance(spec, dict) or set(spec) != {"type", "config"} \
                or not isinstance(spec["config"], dict):
            raise _Bad(f"{where} must be {{'type': str, 'config': dict}}, got {_short(spec)}")
        cls = _REGISTRY.get(spec["type"]) if isinstance(spec["type"], str) else None
        if cls is None and not (self.given and isinstance(spec["type"], str)):
            raise _Bad(f"unknown model type {_short(spec['type'])} at {where}; known types "
                       f"are {sorted(_REGISTRY)} (register_module(cls) adds one)")
        where = f"{where}.config"
        if cls in _RULES:
            keys, shapes = _RULES[cls]
            config = _checked_config(spec["config"], keys, where)
            yield from shapes(config, lambda key, child: self._parameters(
                f"{where}.{key}", child, depth + 1))
        elif cls is not None and hasattr(cls, "parameter_shapes"):
            _check_depth(spec["config"], where)
            try:
                declared = dict(cls.parameter_shapes(spec["config"]))
            except (TypeError, ValueError, KeyError) as e:
                raise _Bad(f"{where}: {cls.__name__}.parameter_shapes refuses it: {e}") from e
            for name, shape in declared.items():
                yield name, shape, None
        else:
            _check_depth(spec["config"], where)
            self.known = False

    def _measured(self, parameters):
        """The parameters, each shape checked and counted against max_bytes."""
        for name, shape, dtype in parameters:
            if type(name) is not str or type(shape) is not tuple \
                    or not all(type(n) is int and n >= 0 for n in shape):
                raise _Bad(f"a parameter must be a name and a shape (a tuple of ints >= 0), "
                           f"got {_short(name)}: {_short(shape)}")
            # float32 is the least any parameter takes (the dtype of a rule-less one is
            # checked on its header).
            self.nbytes += math.prod(shape) * np.dtype(dtype or np.float32).itemsize
            if self.nbytes > self.max_bytes:
                raise _Bad(f"the model's config declares more than {self.max_bytes} bytes "
                           f"of weights (max_bytes={self.max_bytes}; pass a larger "
                           "max_bytes to load a model this large)")
            yield name, shape, None if dtype is None else np.dtype(dtype)


# -- the states of the random generators ---------------------------------------------
# numpy's `bit_generator.state` of each of its bit generators, as JSON: its arrays as
# lists of ints. Each leaf is (None: an int, or n: a list of n ints) and the greatest
# value; a list is a uint32 array when its values fit 32 bits, else uint64.

_U32, _U64, _U128 = 2**32 - 1, 2**64 - 1, 2**128 - 1
_PCG_STATE = {"state": {"state": (None, _U128), "inc": (None, _U128)},
              "has_uint32": (None, 1), "uinteger": (None, _U32)}
_RNG_LAYOUTS = {
    "PCG64": _PCG_STATE,
    "PCG64DXSM": _PCG_STATE,
    "MT19937": {"state": {"key": (624, _U32), "pos": (None, 624)}},
    "Philox": {"state": {"counter": (4, _U64), "key": (2, _U64)}, "buffer": (4, _U64),
               "buffer_pos": (None, 4), "has_uint32": (None, 1), "uinteger": (None, _U32)},
    "SFC64": {"state": {"state": (4, _U64)}, "has_uint32": (None, 1),
              "uinteger": (None, _U32)},
}
assert set(_RNG_LAYOUTS) == set(BIT_GENERATORS)


def _rng_to_json(node):
    """A `bit_generator.state` with its arrays and numpy ints as JSON lists and ints."""
    if isinstance(node, dict):
        return {k: _rng_to_json(v) for k, v in node.items()}
    if isinstance(node, np.ndarray):
        return [int(v) for v in node.tolist()]
    return node if isinstance(node, str) else int(node)


def _rng_from_json(node, layout: dict, where: str) -> dict:
    """The numpy state a checked JSON state gives: exactly the layout's keys, every int
    in its range, every list of its length, as arrays of its dtype."""
    if not isinstance(node, dict) or set(node) != set(layout):
        raise _Bad(f"{where} must have the keys {sorted(layout)}, got {_short(node)}")
    state = {}
    for key, rule in layout.items():
        value = node[key]
        if isinstance(rule, dict):
            state[key] = _rng_from_json(value, rule, f"{where}[{key!r}]")
            continue
        length, top = rule
        ok = (lambda v: type(v) is int and 0 <= v <= top)
        if length is None and ok(value):
            state[key] = value
        elif length is not None and type(value) is list and len(value) == length \
                and all(ok(v) for v in value):
            state[key] = np.array(value, np.uint32 if top <= _U32 else np.uint64)
        else:
            expected = (f"an int in 0..{top}" if length is None
                        else f"a list of {length} ints in 0..{top}")
            raise _Bad(f"{where}[{key!r}] must be {expected}, got {_short(value)}")
    return state


def _checked_rng_states(states) -> dict:
    """A file's ``rng_states``, {module path: numpy generator state}, checked against
    numpy's bit generators' layouts before any generator is built."""
    if states is None:
        return {}
    if not isinstance(states, dict) or len(states) > MAX_MODULES:
        raise _Bad(f"rng_states must be None or a dict of at most {MAX_MODULES} generator "
                   f"states, got {_short(states)}")
    checked = {}
    for path, state in states.items():
        where = f"rng_states[{_short(path)}]"
        if not (isinstance(state, dict) and type(state.get("bit_generator")) is str
                and state["bit_generator"] in _RNG_LAYOUTS):
            raise _Bad(f"{where} must be a generator state naming one of numpy's bit "
                       f"generators {sorted(_RNG_LAYOUTS)}, got {_short(state)}")
        name = state["bit_generator"]
        rest = {k: v for k, v in state.items() if k != "bit_generator"}
        checked[path] = {"bit_generator": name,
                         **_rng_from_json(rest, _RNG_LAYOUTS[name], where)}
    return checked


def _generators_for(model: Module, states: dict) -> dict:
    """{module: Generator} of the saved states, each path naming a module of `model`
    that has a generator; _Bad otherwise."""
    modules = modules_by_path(model)
    generators = {}
    for path, state in states.items():
        module = modules.get(path)
        if module is None or module.rng_state() is None:
            raise _Bad(f"rng_states holds a generator for {path!r}, which is not a module "
                       f"of the model that draws random numbers")
        try:
            generators[path] = generator_from_state(state)
        except (TypeError, ValueError) as e:
            raise _Bad(f"rng_states[{path!r}] is not a valid generator state: {e}") from e
    return generators


def _set_generators(model: Module, generators: dict) -> None:
    modules = modules_by_path(model)
    for path, generator in generators.items():
        modules[path].set_rng_state(generator.bit_generator.state)


# -- trees of JSON values and arrays ---------------------------------------------------

class _Flattener:
    """Replaces every array of a tree by a reference to a uniquely named npz member."""

    def __init__(self, arrays: dict):
        self.arrays = arrays

    def _store(self, value: np.ndarray, path: str) -> str:
        if value.dtype.newbyteorder("=") not in _NUMERIC:
            raise TypeError(f"{path}: a {value.dtype} array cannot be saved: a checkpoint "
                            "holds numeric arrays only (bool, int, uint, float, complex; "
                            "object arrays would need pickle)")
        # The member's name is only referred to, so any will do: not a NUL (zipfile cuts
        # names there) or a backslash (a separator on Windows), not too long for a zip.
        base = re.sub(r"[\x00\\]", "_", path)[:_MAX_MEMBER_NAME]
        name, n = base, 1
        while name in self.arrays:
            name, n = f"{base}~{n}", n + 1
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


def _tree_arrays(node, where: str, arrays: dict, depth: int = 0, key: bool = False) -> None:
    """Check that `node` is a tree `_Flattener` writes (`key`: one that `_unflatten`
    turns into a dict key) at most MAX_TREE_DEPTH deep; add the members it refers to
    into `arrays` ({member: whether it must be 0-d})."""
    if depth > MAX_TREE_DEPTH:
        raise _Bad(f"{where} nests deeper than {MAX_TREE_DEPTH} levels")
    if isinstance(node, list):
        for v in node:
            _tree_arrays(v, where, arrays, depth + 1, key)
    elif isinstance(node, dict) and _ARRAY in node:
        member, scalar = node[_ARRAY], node.get("scalar", False)
        if set(node) - {_ARRAY, "scalar"} or type(member) is not str \
                or type(scalar) is not bool or (key and not scalar):
            raise _Bad(f"{where} holds a malformed array reference {_short(node)}")
        arrays[member] = arrays.get(member, False) or scalar
    elif isinstance(node, dict) and _TUPLE in node:
        if set(node) != {_TUPLE} or not isinstance(node[_TUPLE], list):
            raise _Bad(f"{where} holds a malformed tuple {_short(node)}")
        _tree_arrays(node[_TUPLE], where, arrays, depth + 1, key)
    elif isinstance(node, dict) and _ITEMS in node and not key:
        items = node[_ITEMS]
        if set(node) != {_ITEMS} or not isinstance(items, list) \
                or not all(isinstance(kv, list) and len(kv) == 2 for kv in items):
            raise _Bad(f"{where} holds a malformed dict {_short(node)}")
        for k, v in items:
            _tree_arrays(k, where, arrays, depth + 1, key=True)
            _tree_arrays(v, where, arrays, depth + 1)
    elif isinstance(node, dict) and not key:
        for v in node.values():
            _tree_arrays(v, where, arrays, depth + 1)
    elif isinstance(node, dict):
        raise _Bad(f"{where} holds a dict key that is a dict {_short(node)}")


def _unflatten(node, arrays: dict):
    if isinstance(node, list):
        return [_unflatten(v, arrays) for v in node]
    if not isinstance(node, dict):
        return node
    if _ARRAY in node:
        value = arrays[node[_ARRAY]]
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

def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, run by another user
        return True
    except OverflowError:  # not a pid this system can have
        return False
    return True


def _remove_orphaned_temp_files(path: str) -> None:
    """Remove the temporary files of saves to `path` whose writer is dead: a save killed
    mid-write (SIGKILL, power loss) leaves its ``.{name}.{pid}.{uuid}.tmp``. Those of live
    writers, or of other targets, are left alone. POSIX only: elsewhere os.kill does not
    test for a process."""
    if os.name != "posix":
        return
    directory, name = os.path.split(os.path.abspath(path))
    pattern = re.compile(rf"\.{re.escape(name)}\.([0-9]{{1,20}})\.[0-9a-f]{{32}}\.tmp")
    with contextlib.suppress(OSError):
        for entry in os.listdir(directory):
            match = pattern.fullmatch(entry)
            if match and not _writer_alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, entry))


def _write_atomically(path: str, arrays: dict) -> None:
    """Write an npz to a temporary file beside `path`, sync it, then rename it onto
    `path`: a reader sees the old file or the whole new one, never a partial one."""
    directory, name = os.path.split(os.path.abspath(path))
    # The writer's pid in the name lets a later save tell a dead writer's file.
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
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
        is replaced atomically: the new content goes to ``.{name}.{pid}.{uuid}.tmp``
        beside it, then is renamed onto it. If saving fails, the old file is left intact
        and the temporary file is removed; if the process is killed mid-save, the next
        save to `path` removes it (see Notes).
    model : Module
        An instance of a registered class (see `register_module`), as is each of its
        sub-modules (`Module.children`, checked down to the leaves).
    optimizer : object with ``state_dict()``, optional
        Its state (a nest of dicts, lists, JSON values and numpy arrays) is saved.
    epoch : int, optional
        The number of epochs done, in 0..2**63-1.
    extra : dict, optional
        Anything else to keep (scaler state, training history): JSON values and numeric
        numpy arrays and scalars, nested in dicts, lists and tuples.

    Raises
    ------
    TypeError
        `epoch` is not an int, `extra` not a dict, or a value is neither JSON-ready nor
        a numeric numpy array (bool, int, uint, float, complex).
    ValueError
        The model's class is not registered, or `epoch` is out of range.
    OSError
        The file cannot be written.

    Notes
    -----
    The state of every random generator in use (a `Dropout`'s, a recurrent layer's with
    `dropout` > 0; `Module.rng_state`) is saved in the metadata's ``rng_states``, so
    that a resumed run draws the masks the uninterrupted one would have. Kept states of
    a stateful `Sequential` are not saved.

    Each save first removes the temporary files of earlier saves to the same `path`
    whose writer process no longer exists (their pid in the name; POSIX only). Writers
    in another pid namespace (another host or container sharing the directory) cannot
    be told apart from dead ones: have one machine write a given file.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from lstm_native import LSTM, LastStep, Linear, Sequential, load_model
    >>> model = Sequential(LSTM(1, 8, batch_first=True, seed=0), LastStep(batch_first=True),
    ...                    Linear(8, 1, seed=1))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "model.npz")
    ...     save_checkpoint(path, model, epoch=3, extra={"lookback": 12})
    ...     restored = load_model(path)
    >>> x = np.random.default_rng(0).standard_normal((2, 12, 1))
    >>> bool(np.array_equal(restored(x), model(x)))
    True
    """
    from . import __version__

    path = os.fspath(path)
    _check_registered(model)
    if epoch is not None:
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral):
            raise TypeError(f"epoch must be None or an int in 0..2**63-1, got {epoch!r}")
        if not 0 <= epoch < 2**63:
            raise ValueError(f"epoch must be None or an int in 0..2**63-1, got {epoch}")
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
    states = rng_states(model)
    if states:  # only then: files of models that draw nothing read in older releases
        meta["rng_states"] = {path: _rng_to_json(state) for path, state in states.items()}
    try:
        text = json.dumps(meta)
    except TypeError as e:
        raise TypeError(f"the model's config is not JSON-ready: {e}") from e
    arrays[_METADATA] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _remove_orphaned_temp_files(path)
    _write_atomically(path, arrays)


# -- reading -------------------------------------------------------------------------

class _Header(NamedTuple):
    member: str
    info: zipfile.ZipInfo
    shape: tuple
    fortran_order: bool
    dtype: np.dtype
    offset: int  # where the data starts in the member


@contextlib.contextmanager
def _corrupt(what: str):
    """Whatever zipfile, zlib or numpy's header parser raise on malformed bytes, as _Bad."""
    try:
        yield
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError,
            TypeError, KeyError, IndexError, OverflowError, struct.error, SyntaxError,
            RecursionError, NotImplementedError, Warning) as e:
        raise _Bad(f"corrupt checkpoint: {what}: {type(e).__name__}: {e}") from e


class _Archive:
    """A checkpoint's zip: its directory checked, members read one by one, each only
    after its header was checked."""

    def __init__(self, file):
        with _corrupt("the zip directory"):
            # zipfile parses the whole central directory up front: bound it first.
            end = zipfile._EndRecData(file)  # zipfile's reader of the end record
            if end is None:
                raise _Bad("not a checkpoint: not a complete .npz (zip) archive (another "
                           "format, or truncated)")
            entries, size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
            if entries > MAX_MEMBERS or size > _MAX_DIRECTORY_BYTES:
                raise _Bad(f"the archive declares {entries} members in {size} bytes, more "
                           f"than a checkpoint has ({MAX_MEMBERS}, {_MAX_DIRECTORY_BYTES})")
            self.zip = zipfile.ZipFile(file)
        file_size = os.fstat(file.fileno()).st_size
        self.members = {}
        for info in self.zip.infolist():
            if info.filename in self.members:
                raise _Bad(f"corrupt checkpoint: the archive holds {info.filename!r} twice")
            # zipfile reads an offset past the directory's place as bytes prepended to
            # the archive, and would seek before the file's start.
            if not 0 <= info.header_offset < file_size:
                raise _Bad(f"corrupt checkpoint: the member {info.filename!r} starts at "
                           f"{info.header_offset}, outside the file")
            self.members[info.filename] = info

    def header(self, member: str) -> _Header:
        """The member's .npy header, checked against its declared size."""
        info = self.members.get(member + ".npy")
        if info is None:
            raise _Bad(f"corrupt checkpoint: the member {member!r} is missing")
        if info.flag_bits & 0x1:
            raise _Bad(f"the member {member!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Bad(f"the member {member!r} uses compression method "
                       f"{info.compress_type}, not stored (0) or deflated (8)")
        with _corrupt(f"the member {member!r}"), self.zip.open(info) as stream, \
                warnings.catch_warnings():
            # numpy warns, then guesses, on headers of Python 2's format: refuse them.
            warnings.simplefilter("error")
            version = npy_format.read_magic(stream)
            if version == (1, 0):
                shape, fortran_order, dtype = npy_format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran_order, dtype = npy_format.read_array_header_2_0(stream)
            else:
                raise _Bad(f"the member {member!r} is a .npy of version {version}, "
                           "not 1.0 or 2.0")
            offset = stream.tell()
        # numpy takes no shape whose dimensions multiply past 2**63, zeros or not.
        if len(shape) > _MAX_NDIM or any(n < 0 for n in shape) \
                or math.prod(max(n, 1) for n in shape) >= 2**62:
            raise _Bad(f"the member {member!r} has a malformed shape {_short(shape)}")
        needed = offset + math.prod(shape) * dtype.itemsize
        if info.file_size != needed:
            raise _Bad(f"corrupt checkpoint: the member {member!r} declares "
                       f"{info.file_size} bytes, its header says {needed}")
        return _Header(member, info, shape, fortran_order, dtype, offset)

    def read(self, header: _Header) -> np.ndarray:
        """The member's array, read in chunks into its own buffer, to exactly its
        declared size (the CRC is checked on the way)."""
        array = np.empty(math.prod(header.shape), header.dtype)
        buffer = memoryview(array).cast("B")
        with _corrupt(f"the member {header.member!r}"), self.zip.open(header.info) as stream:
            stream.read(header.offset)
            done = 0
            while done < len(buffer):
                chunk = stream.read(min(len(buffer) - done, 1 << 24))
                if not chunk:
                    raise _Bad(f"corrupt checkpoint: the member {header.member!r} is "
                               "truncated")
                buffer[done:done + len(chunk)] = chunk
                done += len(chunk)
            if stream.read(1):
                raise _Bad(f"corrupt checkpoint: the member {header.member!r} is longer "
                           "than its header says")
        # In native byte order, as the model's parameters and the kernels need.
        array = array.astype(array.dtype.newbyteorder("="), copy=False)
        if header.fortran_order:
            return array.reshape(header.shape[::-1]).T
        return array.reshape(header.shape)


def _read_metadata(archive: _Archive, max_bytes: int) -> dict:
    if _METADATA + ".npy" not in archive.members:
        raise _Bad(f"no checkpoint metadata ({_METADATA!r}): not written by save_checkpoint")
    header = archive.header(_METADATA)
    size = header.info.file_size
    if size > min(max_bytes, MAX_METADATA_BYTES):
        raise _Bad(f"the metadata declares {size} bytes, more than "
                   f"{min(max_bytes, MAX_METADATA_BYTES)} (max_bytes={max_bytes})")
    dtype = header.dtype
    if dtype == np.uint8 and len(header.shape) == 1:
        text = archive.read(header).tobytes()
    elif dtype.kind == "U" and header.shape == ():
        text = archive.read(header)[()]
    else:
        raise _Bad(f"unreadable checkpoint metadata ({_METADATA!r} is a {dtype} array of "
                   f"shape {header.shape}, not JSON text)")
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as e:  # also UnicodeDecodeError, JSONDecodeError
        raise _Bad(f"unreadable checkpoint metadata ({type(e).__name__}: {e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise _Bad("the metadata is not that of an lstm_native checkpoint")
    return meta


def _check_metadata(meta: dict) -> None:
    """The metadata's own keys (the model and the trees are checked by their readers)."""
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        raise _Bad(f"the metadata has no valid format_version: {_short(version)}")
    if version > FORMAT_VERSION:
        raise _Bad(f"checkpoint format version {version} is newer than this lstm_native "
                   f"supports ({FORMAT_VERSION}): upgrade lstm_native")
    keys = {"format", "format_version", "lstm_native_version", "model", "model_keys",
            "epoch", "optimizer", "extra"}
    missing = sorted(keys - set(meta))
    if missing:
        raise _Bad(f"the metadata lacks {missing[0]!r}")
    unknown = sorted(set(meta) - keys - {"rng_states"})  # that one is optional
    if unknown:
        raise _Bad(f"the metadata has unknown keys {_short(unknown)}")
    if type(meta["lstm_native_version"]) is not str:
        raise _Bad(f"the metadata's lstm_native_version must be a str, "
                   f"got {_short(meta['lstm_native_version'])}")
    epoch = meta["epoch"]
    if epoch is not None and not (type(epoch) is int and 0 <= epoch < 2**63):
        raise _Bad(f"the epoch must be None or an int in 0..2**63-1, got {_short(epoch)}")
    names = meta["model_keys"]
    if not (isinstance(names, list) and all(type(n) is str for n in names)
            and len(set(names)) == len(names)):
        raise _Bad(f"model_keys must be a list of distinct parameter names, got {_short(names)}")
    if not (meta["extra"] is None or isinstance(meta["extra"], dict)) \
            or (isinstance(meta["extra"], dict) and (_ARRAY in meta["extra"]
                                                      or _TUPLE in meta["extra"])):
        raise _Bad(f"extra must be None or a dict, got {_short(meta['extra'])}")


class _Contents(NamedTuple):
    model: Module      # the given model, or the rebuilt one (its fresh weights)
    weights: dict      # the saved weights, by parameter name, not yet loaded
    epoch: int | None
    trees: dict        # "optimizer" and "extra", or {} when not asked for
    generators: dict   # the saved random generators, by module path


def _read(path, max_bytes, model: Module | None, trees: bool) -> tuple[str, _Contents]:
    """Everything the loaders need, checked in that order: the archive's directory, the
    metadata, the model's config (against `_RULES`) and the shapes it implies, the
    header of every member used and the total they declare, the architecture of the
    given model, then building the model, then reading the members. `trees`: read
    the optimizer and extra trees too."""
    path = os.fspath(path)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral):
        raise TypeError(f"max_bytes must be an int >= 1, got {max_bytes!r}")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be an int >= 1, got {max_bytes}")
    if os.path.isdir(path):  # open() would say so on POSIX only
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    with open(path, "rb") as file:
        try:
            return path, _read_archive(_Archive(file), int(max_bytes), model, trees)
        except _Bad as e:
            raise CheckpointError(f"{path}: {e}") from None


def _read_archive(archive: _Archive, max_bytes: int, model, trees: bool) -> _Contents:
    meta = _read_metadata(archive, max_bytes)
    _check_metadata(meta)
    saved_rng = _checked_rng_states(meta.get("rng_states"))
    try:
        declared = _Architecture(meta["model"], max_bytes, model is not None).shapes
    except _Bad as e:
        raise _Bad(f"cannot rebuild the model: {e}") from None
    if declared is not None and set(meta["model_keys"]) != set(declared):
        raise _Bad(f"corrupt checkpoint: model_keys {_short(sorted(meta['model_keys']))} are "
                   f"not the parameters of its model {_short(sorted(declared))}")
    absent = [n for n in meta["model_keys"] if f"model/{n}.npy" not in archive.members]
    if absent:
        raise _Bad(f"corrupt checkpoint: its weights lack {_short(absent)}, listed in "
                   "model_keys")
    tree_arrays = {}
    for key in ("optimizer", "extra") if trees else ():
        _tree_arrays(meta[key], key, tree_arrays)
        absent = [m for m in tree_arrays if f"{m}.npy" not in archive.members]
        if absent:
            raise _Bad(f"corrupt checkpoint: the {key} state refers to missing members "
                       f"{_short(absent)}")

    headers = {name: archive.header(f"model/{name}") for name in meta["model_keys"]}
    for name, h in headers.items():
        shape, dtype = declared[name] if declared is not None else (None, None)
        # Float weights, or the int8 and uint16 (bfloat16) weights of a quantized layer
        # where its config declares them.
        if h.dtype.newbyteorder("=") not in (*FLOAT_DTYPES, *_QUANTIZED_DTYPES) or (
                h.dtype.newbyteorder("=") in _QUANTIZED_DTYPES and dtype is None):
            raise _Bad(f"the weight member 'model/{name}' holds {h.dtype}, not float32 or "
                       "float64 (or a quantized layer's int8 or uint16)")
        if dtype is not None and h.dtype.newbyteorder("=") != dtype:
            raise _Bad(f"the weight member 'model/{name}' holds {h.dtype}, its model's "
                       f"config says {dtype}")
        if shape is not None and h.shape != shape:
            raise _Bad(f"the weight member 'model/{name}' has shape {h.shape}, its model's "
                       f"config says {shape}")
    tree_headers = {member: archive.header(member) for member in tree_arrays}
    for member, h in tree_headers.items():
        if h.dtype.newbyteorder("=") not in _NUMERIC:
            raise _Bad(f"the member {member!r} holds {h.dtype}, not a numeric dtype")
        if tree_arrays[member] and h.shape != ():
            raise _Bad(f"the member {member!r} is referred to as a scalar and has shape "
                       f"{h.shape}")
    total = archive.members[_METADATA + ".npy"].file_size + sum(
        h.info.file_size for h in (*headers.values(), *tree_headers.values()))
    if total > max_bytes:
        raise _Bad(f"its members declare {total} bytes, more than max_bytes={max_bytes} "
                   "(pass a larger max_bytes to load a checkpoint this large)")

    if model is None:
        try:
            model = build_module(meta["model"])
        except (TypeError, ValueError, KeyError) as e:
            raise _Bad(f"cannot rebuild the model: {e}") from e
    _check_architecture(model, {name: h.shape for name, h in headers.items()})
    generators = _generators_for(model, saved_rng)
    weights = {name: archive.read(h) for name, h in headers.items()}
    arrays = {member: archive.read(h) for member, h in tree_headers.items()}
    return _Contents(model, weights, meta["epoch"],
                     {key: _unflatten(meta[key], arrays) for key in ("optimizer", "extra")}
                     if trees else {}, generators)


def _check_architecture(model: Module, shapes: dict) -> None:
    """_Bad unless the checkpoint's weights have the model's names and shapes."""
    expected = {name: p.shape for name, p in model.parameters().items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    differ = [f"{name}: {shapes[name]} vs {shape}" for name, shape in expected.items()
              if name in shapes and shapes[name] != shape]
    if missing or unexpected or differ:
        raise _Bad(f"the checkpoint's model does not match the given "
                   f"{type(model).__name__}: missing {missing}, unexpected "
                   f"{unexpected}, shapes differ {differ}")


def _load_weights(path: str, model: Module, weights: dict) -> None:
    try:
        model.load_state_dict(weights)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: the weights do not load into "
                              f"{type(model).__name__}: {e}") from e


def load_model(path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Module:
    """Rebuild a saved model with its weights.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by `save_checkpoint`.
    max_bytes : int, default DEFAULT_MAX_BYTES (1 GiB)
        The most bytes to read (metadata and weights): a file declaring more is refused
        before anything is read. Raise it for a larger model.

    Returns
    -------
    Module
        A new instance of the saved class and configuration, its weights bitwise those
        saved and its random generators (dropout masks) where they were (in training
        mode, as a freshly built model).

    Raises
    ------
    CheckpointError
        A ValueError naming the file: not an npz, truncated or corrupt, no or malformed
        metadata, a newer format version, a config out of bounds or of a model type not
        registered, weights that do not fit it, or more than `max_bytes`.
    FileNotFoundError, PermissionError, IsADirectoryError
        And any other OSError of opening or reading the file, as they are.
    TypeError, ValueError
        `max_bytes` is not an int >= 1.

    Notes
    -----
    The file is treated as untrusted: nothing is unpickled, only the members used are
    read, and the declared config (every key's type and bounds: sizes up to 2**20,
    num_layers and n_threads up to 1024, at most 4096 modules and 32 nested
    Sequentials, trees at most 64 deep), every array header (plain numeric dtypes, the
    shapes the config implies) and every member's declared size are checked, and the
    total against `max_bytes`, before the model is built or an array allocated. A
    registered class of your own is checked as `register_module` says.

    Examples
    --------
    >>> import os, tempfile
    >>> from lstm_native import LSTM, save_checkpoint
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "lstm.npz")
    ...     save_checkpoint(path, LSTM(3, 5, num_layers=2, seed=0))
    ...     model = load_model(path)
    >>> model
    LSTM(3, 5, num_layers=2, dtype=float32)
    >>> model.training    # as a freshly built model: call eval() to predict
    True
    """
    path, contents = _read(path, max_bytes, None, trees=False)
    _load_weights(path, contents.model, contents.weights)
    _set_generators(contents.model, contents.generators)
    return contents.model


def load_checkpoint(path, model: Module | None = None, optimizer=None, *,
                    max_bytes: int = DEFAULT_MAX_BYTES) -> dict:
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
    max_bytes : int, default DEFAULT_MAX_BYTES (1 GiB)
        The most bytes to read (metadata, weights, optimizer and extra arrays): a file
        declaring more is refused before anything is read. Raise it for a larger model.

    Returns
    -------
    dict
        ``"model"``: the model (its weights and its random generators restored);
        ``"epoch"``: int >= 0 or None; ``"extra"``: dict or None; ``"optimizer_state"``:
        the saved optimizer state or None (for an optimizer built after loading the
        model).

    Raises
    ------
    CheckpointError
        A ValueError naming the file: every error of `load_model`, an architecture that
        does not match the given model, a malformed optimizer or extra tree, or an
        optimizer state that is missing or does not load.
    FileNotFoundError, PermissionError, IsADirectoryError
        And any other OSError of opening or reading the file, as they are.
    TypeError, ValueError
        `max_bytes` is not an int >= 1.

    Notes
    -----
    As `load_model`: the file is treated as untrusted, and everything it declares is
    checked before the model is built or an array allocated.
    """
    path, contents = _read(path, max_bytes, model, trees=True)
    optimizer_state, extra = contents.trees["optimizer"], contents.trees["extra"]
    if optimizer is not None and optimizer_state is None:
        raise CheckpointError(f"{path}: the checkpoint holds no optimizer state")
    # A given model is put back as it was if the optimizer's state does not load.
    previous = model.state_dict() if model is not None and optimizer is not None else None
    model = contents.model
    _load_weights(path, model, contents.weights)
    if optimizer is not None:
        try:
            optimizer.load_state_dict(optimizer_state)
        except Exception as e:
            if previous is not None:
                model.load_state_dict(previous)
            if isinstance(e, (KeyError, TypeError, ValueError)):
                raise CheckpointError(f"{path}: the optimizer state does not load: "
                                      f"{e}") from e
            raise
    _set_generators(model, contents.generators)  # last: nothing can fail after it
    return {"model": model, "epoch": contents.epoch, "extra": extra,
            "optimizer_state": optimizer_state}

