"""ONNX's recurrent operators on our layers, and the glue ops around them in NumPy.

What `lstm_native.onnx`'s `InferenceSession` executes and its `load` folds: the gate
orders between ONNX and our (PyTorch's) layout, our layer for an LSTM, GRU or RNN node
and its run with ONNX's inputs and outputs (directions, layouts, sequence_lens, initial
states), and each supported glue op as a function of (attributes, input arrays).
"""
from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .gru import GRU
from .lstm import LSTM
from .rnn import RNN

#: Where ONNX's gate blocks are in ours (torch's): the LSTM's (i, f, g, o) are ONNX's
#: (i, o, f, c), c being g; the GRU's (r, z, n) are ONNX's (z, r, h), h being n.
ONNX_GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn": (0,)}
#: Our peephole rows p_i, p_f, p_o in ONNX's P order i, o, f (its own inverse).
PEEPHOLE_ORDER = [0, 2, 1]

_OPS = {LSTM: ("LSTM", "lstm"), GRU: ("GRU", "gru"), RNN: ("RNN", "rnn")}
_CELLS = {"LSTM": (LSTM, "lstm"), "GRU": (GRU, "gru"), "RNN": (RNN, "rnn")}
_DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"],
                        "RNN": ["Tanh"]}
_ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}


def _reorder(a, order) -> np.ndarray:
    a = np.asarray(a)
    H = a.shape[0] // len(order)
    return np.ascontiguousarray(a.reshape(len(order), H, *a.shape[1:])[list(order)]
                                .reshape(a.shape))


def torch_to_onnx_gates(a, cell: str = "lstm") -> np.ndarray:
    """Reorder a weight (G·H, ·) or bias (G·H,) from our (PyTorch's) gate order to ONNX's.

    Parameters
    ----------
    a : array_like, (G·H,) or (G·H, K)
        Rows in blocks of H, G of them: for the LSTM input, forget, cell candidate,
        output gate; for the GRU reset, update, new gate; the RNN's one block.
    cell : {"lstm", "gru", "rnn"}

    Returns
    -------
    numpy.ndarray
        A copy with the blocks as input, output, forget, cell candidate (LSTM), or as
        update, reset, new gate (GRU).
    """
    return _reorder(a, ONNX_GATE_ORDER[cell])


def onnx_to_torch_gates(a, cell: str = "lstm") -> np.ndarray:
    """The inverse of `torch_to_onnx_gates`: ONNX's gate blocks in our order."""
    return _reorder(a, np.argsort(ONNX_GATE_ORDER[cell]))


# -- reading ONNX's recurrent nodes -------------------------------------------------------

def _attributes(node) -> dict:
    values = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode() for s in v]
        values[a.name] = v
    return values


def _where(node) -> str:
    return f"{node.op_type} node {node.name or node.output[0]!r}"


def _recurrent_layer(node, attributes: dict, W, R, B, P, batch_first: bool = False):
    """Our layer for an ONNX LSTM, GRU or RNN node with these weights (and our layout
    `batch_first`), in eval mode, and
    whether the node runs in reverse only (our layer then runs forward on the flipped
    sequences).

    The attributes our layers cannot express raise ValueError naming the node."""
    op = node.op_type
    cls, cell = _CELLS[op]
    W, R = np.asarray(W), np.asarray(R)
    dtype = W.dtype
    if dtype not in _ELEM:
        raise ValueError(f"{_where(node)}: weights of dtype {dtype}; float32 and float64 run")
    D, GH, I = W.shape
    H = attributes.get("hidden_size", R.shape[-1])
    direction = attributes.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ValueError(f"{_where(node)}: unknown direction {direction!r}")
    activations = attributes.get("activations")
    kwargs = {}
    if op == "RNN" and activations in (["Relu"] * D,):
        kwargs["nonlinearity"] = "relu"
    elif activations is not None and activations != _DEFAULT_ACTIVATIONS[op] * D:
        raise ValueError(f"{_where(node)}: activations {activations} are not supported (ours "
                         f"are {_DEFAULT_ACTIVATIONS[op]}" +
                         (", or Relu for the RNN)" if op == "RNN" else ")"))
    if op == "LSTM":
        kwargs.update(clip=attributes.get("clip"),
                      input_forget=bool(attributes.get("input_forget", 0)),
                      peepholes=P is not None)
    elif "clip" in attributes:
        raise ValueError(f"{_where(node)}: clip is not supported on the {op} (only the LSTM "
                         "has it)")
    if op == "GRU":
        kwargs["reset_after"] = bool(attributes.get("linear_before_reset", 0))
    layer = cls(I, H, bias=B is not None, bidirectional=direction == "bidirectional",
                batch_first=batch_first, dtype=dtype, seed=0, **kwargs)
    params = {}
    for d in range(D):
        sfx = "_l0" + ("_reverse" if d else "")
        params[f"weight_ih{sfx}"] = onnx_to_torch_gates(W[d], cell)
        params[f"weight_hh{sfx}"] = onnx_to_torch_gates(R[d], cell)
        if B is not None:
            params[f"bias_ih{sfx}"] = onnx_to_torch_gates(B[d, :GH], cell)
            params[f"bias_hh{sfx}"] = onnx_to_torch_gates(B[d, GH:], cell)
        if P is not None:
            params[f"weight_peephole{sfx}"] = np.asarray(P)[d].reshape(3, H)[PEEPHOLE_ORDER]
    layer.load_state_dict(params)
    return layer.eval(), direction == "reverse"


def _flip_index(lengths: np.ndarray, T: int) -> np.ndarray:
    """(T, N) step indices reversing each sequence within its length, padding in place
    (the index is its own inverse)."""
    t = np.arange(T)[:, None]
    return np.where(t < lengths, lengths - 1 - t, t)


def _run_recurrent(node, attributes: dict, layer, reverse: bool, X, lengths, initial):
    """ONNX's outputs Y, Y_h (, Y_c) of `layer` (from `_recurrent_layer`) on X."""
    layout = attributes.get("layout", 0)
    X = np.asarray(X)
    seq = X.transpose(1, 0, 2) if layout else X
    T, N, _ = seq.shape
    if lengths is not None:
        lengths = np.asarray(lengths).astype(np.int64)
        if lengths.min() < 1:
            raise ValueError(f"{_where(node)}: sequence_lens must be >= 1, got "
                             f"{lengths.min()}")
    hx = None
    if any(s is not None for s in initial):
        D = layer.num_directions
        zeros = np.zeros((D, N, layer.hidden_size), layer.dtype)
        hx = [zeros if s is None else (np.asarray(s).transpose(1, 0, 2) if layout else s)
              for s in initial]
        hx = tuple(hx) if len(hx) == 2 else hx[0]
    rows = np.arange(N)
    if reverse:
        flip = _flip_index(lengths if lengths is not None else np.full(N, T), T)
        seq = seq[flip, rows]
    out, finals = layer(seq, hx=hx, lengths=lengths)
    if reverse:
        out = out[flip, rows]
    finals = finals if isinstance(finals, tuple) else (finals,)
    H, D = layer.hidden_size, layer.num_directions
    Y = out.reshape(T, N, D, H)
    if layout:
        return [Y.transpose(1, 0, 2, 3)] + [s.transpose(1, 0, 2) for s in finals]
    return [Y.transpose(0, 2, 1, 3)] + list(finals)


# -- the interpreter ----------------------------------------------------------------------

def _axes_of(attributes, inputs, index: int):
    """A node's `axes`: the attribute (older opsets) or its input `index`."""
    if "axes" in attributes:
        return list(attributes["axes"])
    if len(inputs) > index and inputs[index] is not None:
        return [int(a) for a in np.asarray(inputs[index]).ravel()]
    return None


def _reshape(x, shape, allowzero=0):
    shape = [int(s) for s in np.asarray(shape).ravel()]
    if not allowzero:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _slice(x, starts, ends, axes=None, steps=None):
    index = [slice(None)] * x.ndim
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


def _op_slice(a, inputs):
    if "starts" in a:  # opset < 10
        return [_slice(inputs[0], a["starts"], a["ends"], a.get("axes"))]
    args = [None if i is None else np.asarray(i).ravel() for i in inputs[1:]]
    return [_slice(inputs[0], *args)]


def _op_squeeze(a, inputs):
    axes = _axes_of(a, inputs, 1)
    x = inputs[0]
    return [np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(axes))]


def _op_unsqueeze(a, inputs):
    x = inputs[0]
    axes = sorted(ax % (x.ndim + len(_axes_of(a, inputs, 1)))
                  for ax in _axes_of(a, inputs, 1))
    for ax in axes:
        x = np.expand_dims(x, ax)
    return [x]


def _op_constant(a, inputs):
    if "value" in a:
        return [numpy_helper.to_array(a["value"])]
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in a:
            return [np.array(a[key], dtype)]
    raise ValueError(f"Constant with attributes {sorted(a)} is not supported")


def _op_gemm(a, inputs):
    A, B = inputs[0], inputs[1]
    A = A.T if a.get("transA", 0) else A
    B = B.T if a.get("transB", 0) else B
    y = a.get("alpha", 1.0) * (A @ B)
    if len(inputs) > 2 and inputs[2] is not None:
        y = y + a.get("beta", 1.0) * inputs[2]
    return [y.astype(A.dtype, copy=False)]


def _op_shape(a, inputs):
    shape = np.array(np.shape(inputs[0]), np.int64)
    return [shape[a.get("start", 0):a.get("end", len(shape))]]


def _op_constant_of_shape(a, inputs):
    value = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
    return [np.full(tuple(int(s) for s in np.asarray(inputs[0]).ravel()), value.ravel()[0],
                    value.dtype)]


def _op_gather_elements(a, inputs):
    return [np.take_along_axis(inputs[0], np.asarray(inputs[1]).astype(np.int64),
                               axis=a.get("axis", 0))]


#: The glue ops, as functions of (attributes, input arrays) -> output arrays.
_GLUE = {
    "Identity": lambda a, i: [i[0]],
    "Dropout": lambda a, i: [i[0], np.ones(np.shape(i[0]), bool)],
    "Transpose": lambda a, i: [np.transpose(i[0], a.get("perm"))],
    "Squeeze": _op_squeeze,
    "Unsqueeze": _op_unsqueeze,
    "Reshape": lambda a, i: [_reshape(i[0], i[1], a.get("allowzero", 0))],
    "Flatten": lambda a, i: [i[0].reshape(int(np.prod(i[0].shape[:a.get("axis", 1)])), -1)],
    "Concat": lambda a, i: [np.concatenate([np.asarray(x) for x in i], axis=a["axis"])],
    "Slice": _op_slice,
    "Gather": lambda a, i: [np.take(i[0], np.asarray(i[1]).astype(np.int64),
                                    axis=a.get("axis", 0))],
    "GatherElements": _op_gather_elements,
    "Shape": _op_shape,
    "ConstantOfShape": _op_constant_of_shape,
    "Constant": _op_constant,
    "Cast": lambda a, i: [np.asarray(i[0]).astype(helper.tensor_dtype_to_np_dtype(a["to"]))],
    "Expand": lambda a, i: [i[0] * np.ones(tuple(int(s) for s in i[1]), i[0].dtype)],
    "MatMul": lambda a, i: [np.matmul(i[0], i[1])],
    "Gemm": _op_gemm,
    "Add": lambda a, i: [np.add(i[0], i[1])],
    "Sub": lambda a, i: [np.subtract(i[0], i[1])],
    "Mul": lambda a, i: [np.multiply(i[0], i[1])],
}


def _read_model(source) -> onnx.ModelProto:
    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray)):
        return onnx.load_from_string(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        return onnx.load(os.fspath(source))
    raise TypeError(f"path_or_bytes must be a path, the model's bytes or an "
                    f"onnx.ModelProto, got {type(source).__name__}")


def _check_ops(graph) -> None:
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise ValueError(f"{_where(node)}: the domain {node.domain!r} is not supported")
        if node.op_type not in _GLUE and node.op_type not in _CELLS:
            raise ValueError(f"{_where(node)}: the op {node.op_type} is not supported (LSTM, "
                             f"GRU, RNN and {', '.join(sorted(_GLUE))} are)")
