"""ONNX both ways: export our recurrent models, load and run ONNX graphs of LSTM/GRU/RNN.

Three entry points, all needing the `onnx` package (the ``onnx`` extra installs it):

- `export` writes an ONNX model of an `LSTM`, `GRU` or `RNN` (alone or in a `Sequential`
  with `Linear`, `LastStep` and `Dropout`): one ONNX node per layer, time-major
  (``layout=0``, the only layout ONNX Runtime runs for these operators) inside, the
  graph's input ``x`` and output ``out`` in the model's own layout.
- `InferenceSession` runs such graphs as ONNX Runtime's session does: a small
  interpreter of the glue ops (Transpose, Reshape, Slice, Gather, MatMul, Gemm, ...) that
  runs every LSTM, GRU and RNN node with our layers.
- `load` maps a whole graph (ours, or what ``torch.onnx.export`` and ``tf2onnx`` emit
  around these nodes) onto our modules: a bare layer or a `Sequential`. It follows the
  data from the graph's input through the nodes, folding what is constant (weights and
  static shapes), and refuses, naming the op and node, what has no module of ours.

Gate orders: ONNX's LSTM blocks are i, o, f, c where ours (torch's) are i, f, g, o (c
being g); its GRU blocks z, r, h where ours are r, z, n; its bias B is [Wb, Rb], our
`bias_ih` then `bias_hh`; its peepholes P are i, o, f where our `weight_peephole` rows
are p_i, p_f, p_o. GRU ``linear_before_reset=1`` is our ``reset_after=True``, 0 is False.
"""
from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .gru import GRU
from .layers import Dropout, LastStep, Linear, Sequential
from .lstm import LSTM
from .rnn import RNN

__all__ = ["export", "load", "InferenceSession", "torch_to_onnx_gates",
           "onnx_to_torch_gates", "recurrent_model", "DEFAULT_OPSET"]

#: The opset `export` writes by default: the first with the recurrent ops' `layout`.
DEFAULT_OPSET = 14
MIN_OPSET = 14

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


# -- export -------------------------------------------------------------------------------

class _Builder:
    """Nodes and initializers of a graph being written, with unique names."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.nodes, self.initializers, self._count = [], [], 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, array) -> str:
        array = np.asarray(array)
        if array.dtype.kind == "f":
            array = array.astype(self.dtype)
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def node(self, op: str, inputs, n_outputs: int = 1, outputs=None, **attributes):
        outputs = outputs or [self.name(op.lower()) for _ in range(n_outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), outputs, name=self.name(op),
                                           **attributes))
        return outputs[0] if len(outputs) == 1 else outputs

    def time_major(self, x: str, batch_first: bool) -> str:
        return self.node("Transpose", [x], perm=[1, 0, 2]) if batch_first else x


def _recurrent_weights(layer, k: int) -> dict:
    """The ONNX inputs W, R, B (or None) and P (or None) of layer `k`, both directions
    stacked."""
    _, cell = _OPS[type(layer)]
    sfxs = [f"_l{k}", f"_l{k}_reverse"][:layer.num_directions]
    sd = layer.state_dict()
    weights = {"W": np.stack([torch_to_onnx_gates(sd[f"weight_ih{s}"], cell) for s in sfxs]),
               "R": np.stack([torch_to_onnx_gates(sd[f"weight_hh{s}"], cell) for s in sfxs]),
               "B": None, "P": None}
    if layer.bias:
        weights["B"] = np.stack([np.concatenate([torch_to_onnx_gates(sd[f"bias_ih{s}"], cell),
                                                 torch_to_onnx_gates(sd[f"bias_hh{s}"], cell)])
                                 for s in sfxs])
    if getattr(layer, "peepholes", False):
        weights["P"] = np.stack([sd[f"weight_peephole{s}"][PEEPHOLE_ORDER].ravel()
                                 for s in sfxs])
    return weights


def _check_exportable(layer) -> None:
    """ValueError for an option ONNX's operators cannot express."""
    if isinstance(layer, LSTM):
        if layer.proj_size:
            raise ValueError(f"cannot export an LSTM with proj_size={layer.proj_size}: "
                             "ONNX's LSTM operator has no projection")
        if layer.layer_norm:
            raise ValueError("cannot export an LSTM with layer_norm=True: ONNX's LSTM "
                             "operator has no layer normalisation")


def _node_attributes(layer) -> dict:
    op, _ = _OPS[type(layer)]
    D = layer.num_directions
    attributes = {"hidden_size": layer.hidden_size,
                  "direction": "bidirectional" if D == 2 else "forward"}
    if op == "LSTM":
        if layer.clip is not None:
            attributes["clip"] = layer.clip
        if layer.input_forget:
            attributes["input_forget"] = 1
    elif op == "GRU":
        attributes["linear_before_reset"] = int(layer.reset_after)
    elif layer.nonlinearity == "relu":
        attributes["activations"] = ["Relu"] * D
    return attributes


def _export_recurrent(b: _Builder, layer, x: str, seq_lens: str | None, states):
    """Nodes of a recurrent layer on `x` (in the layer's layout): its output (the
    layer's layout) and the names of its final states (D·L, N, H), one per state."""
    _check_exportable(layer)
    op, _ = _OPS[type(layer)]
    D, n_states = layer.num_directions, len(layer._state_names)
    seq = b.time_major(x, layer.batch_first)
    finals = [[] for _ in range(n_states)]
    for k in range(layer.num_layers):
        w = _recurrent_weights(layer, k)
        initial = []
        if states is not None:
            initial = [b.node("Slice", [s, b.const("start", [k * D]),
                                        b.const("end", [(k + 1) * D]), b.const("axes", [0])])
                       for s in states]
        inputs = [seq, b.const(f"W{k}", w["W"]), b.const(f"R{k}", w["R"]),
                  b.const(f"B{k}", w["B"]) if w["B"] is not None else "", seq_lens or "",
                  *(initial or [""] * n_states)]
        if w["P"] is not None:
            inputs.append(b.const(f"P{k}", w["P"]))
        while inputs[-1] == "":
            inputs.pop()
        y, *hc = b.node(op, inputs, n_outputs=1 + n_states, **_node_attributes(layer))
        for final, s in zip(finals, hc):
            final.append(s)
        # ONNX's Y (T, D, N, H) as our (T, N, D·H): the next layer's input, or the output.
        seq = b.node("Reshape", [b.node("Transpose", [y], perm=[0, 2, 1, 3]),
                                 b.const("shape", np.array([0, 0, -1], np.int64))])
    out = b.time_major(seq, layer.batch_first)  # the same transposition back
    return out, [f[0] if len(f) == 1 else b.node("Concat", f, axis=0) for f in finals]


def _export_last_step(b: _Builder, layer: LastStep, x: str, lengths: str | None,
                      features: int) -> str:
    """Each sequence's last valid step of `x`, as `LastStep.forward`."""
    seq = b.time_major(x, layer.batch_first)
    if lengths is None:
        last = b.node("Gather", [seq, b.const("index", np.array(-1, np.int64))], axis=0)
    else:
        # x[L_n - 1, n, :] for each n: the index (1, N, F) holds L_n - 1 along its row.
        index = b.node("Sub", [lengths, b.const("one", np.array(1, np.int64))])
        index = b.node("Reshape", [index, b.const("shape", np.array([1, -1, 1], np.int64))])
        index = b.node("Expand", [index, b.const("shape", np.array([1, 1, features],
                                                                  np.int64))])
        last = b.node("Squeeze", [b.node("GatherElements", [seq, index], axis=0),
                                  b.const("axes", np.array([0], np.int64))])
    if not layer.bidirectional:
        return last
    # The reverse direction's final state is its output at step 0.
    first = b.node("Gather", [seq, b.const("index", np.array(0, np.int64))], axis=0)
    H, axis = features // 2, b.const("axes", np.array([1], np.int64))
    return b.node("Concat", [
        b.node("Slice", [last, b.const("start", [0]), b.const("end", [H]), axis]),
        b.node("Slice", [first, b.const("start", [H]), b.const("end", [features]), axis])],
        axis=1)


def _flatten(model) -> list:
    if isinstance(model, Sequential):
        return [leaf for layer in model.layers for leaf in _flatten(layer)]
    return [model]


def _model_dtype(layers) -> np.dtype:
    dtypes = {np.dtype(layer.dtype) for layer in layers if layer.dtype is not None}
    if len(dtypes) != 1:
        raise ValueError(f"the model's layers must share one dtype to be exported, got "
                         f"{sorted(str(d) for d in dtypes)}")
    return dtypes.pop()


def export(model, path=None, *, opset: int = DEFAULT_OPSET, lengths: bool = False,
           states: bool = False):
    """Write an ONNX model of `model`, inference as its eval mode computes it.

    Parameters
    ----------
    model : LSTM, GRU, RNN, or Sequential
        A recurrent layer, or a `Sequential` (nested ones too) of recurrent layers,
        `Linear`, `LastStep` and `Dropout`. An LSTM with `peepholes`, `clip` and
        `input_forget` maps onto the operator's P, clip and input_forget; a GRU's
        `reset_after` onto linear_before_reset; an RNN's relu onto its activations.
        `dropout`, `input_dropout` and `recurrent_dropout` (the variational masks) and
        `Dropout` act in training only: the graph is the identity there, as eval mode.
        A stateful `Sequential` is written as a fresh forward (zero initial states).
    path : str, os.PathLike or None
        Where to save the model; None only returns it.
    opset : int, default 14
        The default domain's opset, from 14 (the first with the recurrent operators'
        `layout`) to the installed onnx's newest. The model carries the oldest IR version
        of that opset, so older ONNX Runtimes read it.
    lengths : bool, default False
        Add a graph input ``lengths`` (N,) int64, the valid steps of each sequence
        (``forward``'s `lengths`): the recurrent nodes' ``sequence_lens`` and `LastStep`'s.
    states : bool, default False
        For a bare recurrent layer: add the graph inputs ``h0`` (and ``c0`` for the
        LSTM), (D·num_layers, N, H), the initial states as ``forward``'s `hx`.

    Returns
    -------
    onnx.ModelProto
        Inputs ``x`` in the model's layout ((T, N, I), or (N, T, I) with `batch_first`),
        then ``lengths``, ``h0``, ``c0`` as asked; outputs ``out`` (the model's output,
        a recurrent layer's `out`), then for a bare recurrent layer its final states
        ``h_n`` (and ``c_n``), (D·num_layers, N, H). Inside, one ONNX node per layer,
        time-major (``layout=0``); float32 or float64 as the model. Checked by
        ``onnx.checker``.

    Raises
    ------
    ValueError
        An option ONNX cannot express (an LSTM's `proj_size` or `layer_norm`), an
        `opset` out of range, `states` with a `Sequential`.
    TypeError
        A layer that has no ONNX equivalent.

    Examples
    --------
    >>> import numpy as np, lstm_native as ln
    >>> from lstm_native import onnx as ln_onnx
    >>> model = ln.Sequential(ln.LSTM(3, 8, batch_first=True, seed=0),
    ...                       ln.LastStep(batch_first=True), ln.Linear(8, 1, seed=0))
    >>> proto = ln_onnx.export(model)
    >>> x = np.random.default_rng(0).standard_normal((4, 6, 3)).astype(np.float32)
    >>> out, = ln_onnx.InferenceSession(proto.SerializeToString()).run(None, {"x": x})
    >>> bool(np.allclose(out, model.eval()(x), atol=1e-6))
    True
    """
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an int in {MIN_OPSET}..{newest} (the installed "
                         f"onnx's newest), got {opset!r}")
    layers = _flatten(model)
    bare = type(model) in _OPS
    if states and not bare:
        raise ValueError("states=True needs a bare recurrent layer (LSTM, GRU, RNN); a "
                         "Sequential's layers start from zero states")
    for layer in layers:
        if type(layer) not in (*_OPS, Linear, LastStep, Dropout):
            raise TypeError(f"cannot export a {type(layer).__name__}: export takes LSTM, "
                            "GRU, RNN, and Sequential of those with Linear, LastStep and "
                            "Dropout")
    first = next((layer for layer in layers if type(layer) in _OPS), None)
    if first is None:
        raise TypeError("cannot export a model without a recurrent layer (LSTM, GRU, RNN)")
    b = _Builder(_model_dtype(layers))
    elem = _ELEM[b.dtype]
    T, N = ("N", "T") if first.batch_first else ("T", "N")
    inputs = [helper.make_tensor_value_info("x", elem, [T, N, first.input_size])]
    seq_lens = lengths64 = None
    if lengths:
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT64, ["N"]))
        lengths64 = "lengths"
        seq_lens = b.node("Cast", ["lengths"], to=TensorProto.INT32)
    initial = None
    if states:
        D_L = first.num_directions * first.num_layers
        initial = [name + "0" for name in first._state_names]
        inputs += [helper.make_tensor_value_info(name, elem, [D_L, "N", first.hidden_size])
                   for name in initial]
    x, shape, finals = "x", [T, N, first.input_size], []
    for layer in layers:
        if type(layer) in _OPS:
            x, finals = _export_recurrent(b, layer, x, seq_lens, initial)
            shape = shape[:2] + [layer.num_directions * layer.hidden_size]
        elif isinstance(layer, LastStep):
            x = _export_last_step(b, layer, x, lengths64, shape[-1])
            shape = ["N", shape[-1]]
        elif isinstance(layer, Linear):
            params = layer.state_dict()
            x = b.node("MatMul", [x, b.const("weight_t", params["weight"].T)])
            if layer.bias:
                x = b.node("Add", [x, b.const("bias", params["bias"])])
            shape = shape[:-1] + [layer.out_features]
    outputs = [("out", x, shape)]
    if bare:
        D_L = first.num_directions * first.num_layers
        outputs += [(name + "_n", s, [D_L, "N", first.hidden_size])
                    for name, s in zip(first._state_names, finals)]
    for name, source, _ in outputs:
        b.node("Identity", [source], outputs=[name])
    graph = helper.make_graph(b.nodes, type(model).__name__, inputs,
                              [helper.make_tensor_value_info(name, elem, shape)
                               for name, _, shape in outputs], b.initializers)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="lstm_native",
                              ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(proto)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto


def recurrent_model(state_dict: dict, input_size: int, hidden_size: int,
                    num_layers: int = 1, bidirectional: bool = False, cell: str = "lstm",
                    opset: int = 17):
    """An ONNX model of a time-major stacked LSTM or GRU (linear_before_reset=1, which is
    PyTorch's GRU) from PyTorch-named weights, in float32: the benchmark's model.

    Parameters
    ----------
    state_dict : dict of str to numpy.ndarray
        ``weight_ih_l{k}``, ``weight_hh_l{k}``, optional ``bias_ih_l{k}``, ``bias_hh_l{k}``
        (and the ``_reverse`` ones when bidirectional), as `LSTM.state_dict` gives.
    input_size, hidden_size, num_layers : int
    bidirectional : bool
    cell : {"lstm", "gru"}
    opset : int, default 17

    Returns
    -------
    onnx.ModelProto
        `export`'s model: input ``x`` (T, N, I), output ``out`` (T, N, D·H).
    """
    cls = {"lstm": LSTM, "gru": GRU}[cell]
    bias = "bias_ih_l0" in state_dict
    model = cls(input_size, hidden_size, num_layers, bias=bias, bidirectional=bidirectional)
    model.load_state_dict(state_dict)
    return export(model, opset=opset)


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


class NodeArg:
    """A graph input or output as ONNX Runtime describes it: `name`, `shape` (ints, and
    strings for named dimensions, None for unknown ones) and `type` ("tensor(float)")."""

    def __init__(self, value_info):
        self.name = value_info.name
        tensor = value_info.type.tensor_type
        self.type = f"tensor({_TYPE_NAMES.get(tensor.elem_type, 'unknown')})"
        self.shape = ([d.dim_value if d.HasField("dim_value") else
                       (d.dim_param or None) for d in tensor.shape.dim]
                      if tensor.HasField("shape") else None)

    def __repr__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape})"


_TYPE_NAMES = {TensorProto.FLOAT: "float", TensorProto.DOUBLE: "double",
               TensorProto.INT32: "int32", TensorProto.INT64: "int64",
               TensorProto.FLOAT16: "float16", TensorProto.BOOL: "bool"}


class InferenceSession:
    """Run an ONNX graph of LSTM, GRU and RNN nodes as ``onnxruntime.InferenceSession``.

    The recurrent nodes run on our layers (directions forward, reverse and bidirectional,
    layout 0 and 1, ``sequence_lens``, initial states, the LSTM's peepholes, clip and
    input_forget, the GRU's linear_before_reset, the RNN's Tanh or Relu), the glue
    between them (Transpose, Squeeze, Unsqueeze, Reshape, Concat, Slice, Gather,
    GatherElements, Shape, ConstantOfShape, Constant, Cast, Expand, MatMul, Gemm, Add,
    Sub, Mul, Identity, Dropout) in NumPy. Swapping ``onnxruntime.InferenceSession`` for
    it is one line.

    Parameters
    ----------
    path_or_bytes : str, os.PathLike, bytes or onnx.ModelProto
        The model.
    sess_options, providers, **kwargs
        ONNX Runtime's, accepted and ignored (our layers use their own threads).

    Raises
    ------
    ValueError
        A node of an op not listed above (naming the op and node), or of another domain.
    """

    def __init__(self, path_or_bytes, sess_options=None, providers=None, **kwargs):
        self._model = _read_model(path_or_bytes)
        graph = self._model.graph
        _check_ops(graph)
        self._initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self._inputs = [NodeArg(v) for v in graph.input if v.name not in self._initializers]
        self._outputs = [NodeArg(v) for v in graph.output]
        self._layers = {}  # node index -> its layer, when its weights are initializers

    def get_inputs(self) -> list[NodeArg]:
        """The graph's inputs that are not initializers, in order."""
        return list(self._inputs)

    def get_outputs(self) -> list[NodeArg]:
        """The graph's outputs, in order."""
        return list(self._outputs)

    def get_providers(self) -> list[str]:
        return ["CPUExecutionProvider"]

    def run(self, output_names, input_feed, run_options=None) -> list[np.ndarray]:
        """The graph's outputs on `input_feed`.

        Parameters
        ----------
        output_names : list of str or None
            The outputs wanted, in order; None for all of them.
        input_feed : dict of str to array_like
            Every input of `get_inputs`; an initializer may be overridden by name.
        run_options
            ONNX Runtime's, ignored.

        Returns
        -------
        list of numpy.ndarray
        """
        if not isinstance(input_feed, dict):
            raise TypeError(f"input_feed must be a dict of input names to arrays, got "
                            f"{type(input_feed).__name__}")
        known = {v.name for v in self._model.graph.input} | set(self._initializers)
        unknown = sorted(set(input_feed) - known)
        if unknown:
            raise ValueError(f"input_feed names {unknown}, which are not inputs of the graph "
                             f"(its inputs: {[i.name for i in self._inputs]})")
        missing = [i.name for i in self._inputs if i.name not in input_feed]
        if missing:
            raise ValueError(f"input_feed is missing the graph inputs {missing}")
        values = dict(self._initializers)
        values.update({k: np.asarray(v) for k, v in input_feed.items()})
        for index, node in enumerate(self._model.graph.node):
            inputs = [values[name] if name else None for name in node.input]
            attributes = _attributes(node)
            if node.op_type in _CELLS:
                outputs = self._run_recurrent(index, node, attributes, inputs, input_feed)
            else:
                outputs = _GLUE[node.op_type](attributes, inputs)
            for name, value in zip(node.output, outputs):
                if name:
                    values[name] = value
        names = [o.name for o in self._outputs] if output_names is None else output_names
        missing = [n for n in names if n not in values]
        if missing:
            raise ValueError(f"output_names {missing} are not values of the graph")
        return [np.asarray(values[n]) for n in names]

    def _run_recurrent(self, index, node, attributes, inputs, feed):
        inputs = inputs + [None] * (8 - len(inputs))
        X, W, R, B, lengths, h0, c0, P = inputs
        fixed = not any(name in feed for name in node.input[1:4] + node.input[7:8])
        if fixed and index in self._layers:
            layer, reverse = self._layers[index]
        else:
            layer, reverse = _recurrent_layer(node, attributes, W, R, B, P)
            if fixed:
                self._layers[index] = layer, reverse
        initial = [h0, c0] if node.op_type == "LSTM" else [h0]
        return _run_recurrent(node, attributes, layer, reverse, X, lengths, initial)


# -- load: the graph onto our modules -----------------------------------------------------

class _Seq:
    """A value that depends on the graph's input: our `layers` compute it, with the axes
    `ours`, and this tensor is those with its axes `axes` (a permutation of ours, with
    a feature axis split into ("D", d), ("H", h) or singleton axes added).

    Axes are (label, size): "T" and "N" (size None), "F" features, "D" and "H" ONNX's
    directions and hidden units, "1" a singleton; the input's first two axes are "?0"
    and "?1" until a recurrent node says which is time.

    `state` marks a recurrent node's Y_h itself (a bare layer's output h_n). `part` marks
    a piece of `LastStep(bidirectional=True)` being assembled: "first" (step 0 of the
    sequence `layers` computes), then "forward" or "reverse" (a half of the features)."""

    def __init__(self, layers, ours, axes, state=False, part=None):
        self.layers, self.ours, self.axes = tuple(layers), tuple(ours), tuple(axes)
        self.state, self.part = state, part


def _is_state(value) -> bool:
    return (isinstance(value, _Seq) and value.state) or \
        (isinstance(value, _Marker) and value.kind == "state")


class _Shape:
    """A shape or dimension computed from a `_Seq`'s shape: entries are ints or axes."""

    def __init__(self, entries, scalar=False):
        self.entries, self.scalar = list(entries), scalar


class _Marker:
    """The graph's `lengths` (and what is derived from it), zeros of a dynamic shape, an
    initial state fed at run time, or a final state."""

    def __init__(self, kind, layer=None):
        self.kind, self.layer = kind, layer


def _merge(group, where):
    """The one axis that the adjacent axes `group` reshape into."""
    group = [ax for ax in group if ax[1] != 1] or [("1", 1)]
    if len(group) == 1:
        return ("F", group[0][1]) if group[0][0] == "H" else group[0]
    if [ax[0] for ax in group] == ["D", "H"]:
        return ("F", group[0][1] * group[1][1])
    raise ValueError(f"{where}: a reshape merging the axes {[ax[0] for ax in group]} has no "
                     "layer of ours")


def _normalised(axes):
    """Axes with H read as F when no D axis is left (one direction squeezed out)."""
    if any(ax[0] == "D" for ax in axes):
        return tuple(axes)
    return tuple(("F", ax[1]) if ax[0] == "H" else ax for ax in axes)


class _Loader:
    """Follows the data from the graph's input through its nodes (see `load`)."""

    def __init__(self, model):
        self.graph = model.graph
        _check_ops(self.graph)
        self.values = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        inputs = [v for v in self.graph.input if v.name not in self.values]
        if not inputs:
            raise ValueError("the graph has no input")
        x = inputs[0]
        dims = x.type.tensor_type.shape.dim
        if len(dims) != 3 or not dims[2].HasField("dim_value"):
            raise ValueError(f"the graph's first input {x.name!r} must be a sequence (T, N, I) "
                             "or (N, T, I) with a static I")
        axes = (("?0", None), ("?1", None), ("F", dims[2].dim_value))
        self.values[x.name] = _Seq((), axes, axes)
        # Static sizes of the input's first two axes, by label once a recurrent node has
        # said which is time: what a reshape to fixed sizes (a static export) matches.
        self.static = {label: d.dim_value for (label, _), d in zip(axes, dims[:2])
                       if d.HasField("dim_value")}
        for v in inputs[1:]:
            elem = v.type.tensor_type.elem_type
            self.values[v.name] = _Marker(
                "lengths" if elem in (TensorProto.INT32, TensorProto.INT64) else "input")
        self.recurrent = []

    def run(self):
        for node in self.graph.node:
            inputs = [self.values[name] if name else None for name in node.input]
            attributes = _attributes(node)
            if all(not isinstance(i, (_Seq, _Shape, _Marker)) for i in inputs):
                outputs = self._constant(node, attributes, inputs)
            elif node.op_type in _CELLS:
                outputs = self._recurrent(node, attributes, inputs)
            else:
                outputs = self._glue(node, attributes, inputs)
            for name, value in zip(node.output, outputs):
                if name:
                    self.values[name] = value
        return self._model()

    def _constant(self, node, attributes, inputs):
        if node.op_type in _CELLS:
            raise ValueError(f"{_where(node)}: its input does not come from the graph's input")
        return _GLUE[node.op_type](attributes, inputs)

    def _recurrent(self, node, attributes, inputs):
        inputs = inputs + [None] * (8 - len(inputs))
        X, W, R, B, lengths, h0, c0, P = inputs
        where = _where(node)
        if not isinstance(X, _Seq):
            raise ValueError(f"{where}: its input X must come from the graph's input")
        for name, value in (("W", W), ("R", R), ("B", B), ("P", P)):
            if value is not None and not isinstance(value, np.ndarray):
                raise ValueError(f"{where}: its {name} must be a constant (an initializer)")
        if lengths is not None and not (isinstance(lengths, _Marker)
                                        and lengths.kind == "lengths"):
            raise ValueError(f"{where}: its sequence_lens must be the graph's lengths input")
        for name, s in (("initial_h", h0), ("initial_c", c0)):
            zero = (isinstance(s, np.ndarray) and not s.any()) or (
                isinstance(s, _Marker) and s.kind in ("zeros", "input"))
            if s is not None and not zero:
                raise ValueError(f"{where}: its {name} must be zeros or a graph input (our "
                                 "model then takes it as forward's hx)")
        layout = attributes.get("layout", 0)
        axes = list(X.axes)
        time, batch = (1, 0) if layout else (0, 1)
        if W is None or R is None:
            raise ValueError(f"{where}: W and R are required")
        if len(axes) != 3 or axes[2] != ("F", W.shape[-1]):
            raise ValueError(f"{where}: its input's axes {[a[0] for a in axes]} are not a "
                             f"sequence of {W.shape[-1]} features")
        ours = list(X.ours)
        for i, label in ((time, "T"), (batch, "N")):
            if axes[i][0].startswith("?"):
                if axes[i][0] in self.static:
                    self.static[label] = self.static.pop(axes[i][0])
                ours = [(label, None) if ax == axes[i] else ax for ax in ours]
                axes[i] = (label, None)
        if (axes[time][0], axes[batch][0]) != ("T", "N") or \
                sorted(a[0] for a in ours) != ["F", "N", "T"]:
            raise ValueError(f"{where}: its input is not a sequence in layout {layout}")
        layer, reverse = _recurrent_layer(node, attributes, W, R, B, P,
                                          batch_first=ours[0][0] == "N")
        if reverse:
            raise ValueError(f"{where}: direction 'reverse' has no layer of ours "
                             "(InferenceSession runs it)")
        self.recurrent.append(layer)
        D, H = layer.num_directions, layer.hidden_size
        F = ("F", D * H)
        out_ours = (("N", None), ("T", None), F) if layer.batch_first else \
            (("T", None), ("N", None), F)
        y_axes = [("T", None), ("D", D), ("N", None), ("H", H)]
        if layout:
            y_axes[:3] = [("N", None), ("T", None), ("D", D)]
        # Y_h is each direction's final hidden state: `LastStep` of the output (lengths
        # respected), (N, D·H) as ours, (D, N, H) or in layout 1 (N, D, H) as ONNX's.
        h_axes = [("D", D), ("N", None), ("H", H)]
        if layout:
            h_axes[:2] = h_axes[1::-1]
        last = LastStep(batch_first=layer.batch_first, bidirectional=D == 2)
        y_h = _Seq(X.layers + (layer, last), (("N", None), F), h_axes, state=True)
        return [_Seq(X.layers + (layer,), out_ours, y_axes), y_h, _Marker("state", layer)]

    def _glue(self, node, a, inputs):
        op, where = node.op_type, _where(node)
        x = inputs[0]
        if isinstance(x, _Marker):
            return self._marker(node, a, inputs)
        if isinstance(x, _Shape) or (op in ("Concat", "Unsqueeze")
                                     and any(isinstance(i, _Shape) for i in inputs)):
            return self._shape(node, a, inputs)
        if op == "Concat" and all(_is_state(i) for i in inputs) and a["axis"] == 0:
            return [_Marker("state")]   # the final states of the layers, one after the other
        if not isinstance(x, _Seq):
            raise ValueError(f"{where}: the graph's input reaches its second input; only its "
                             "first may carry it")
        if x.part is not None or (op == "Concat" and any(
                isinstance(i, _Seq) and i.part for i in inputs)):
            return [self._bidirectional_last_step(node, a, inputs)]
        axes = list(x.axes)
        if op in ("Identity", "Dropout"):
            return [x, None]
        if op == "Cast":
            return [x]
        if op == "Shape":
            return [_Shape(axes[a.get("start", 0):a.get("end", len(axes))])]
        if op == "Transpose":
            perm = a.get("perm", list(range(len(axes)))[::-1])
            return [_Seq(x.layers, x.ours, [axes[p] for p in perm])]
        if op in ("Squeeze", "Unsqueeze"):
            given = _axes_of(a, [None] + [self._const(i, where) if i is not None else None
                                          for i in inputs[1:]], 1)
            if op == "Squeeze":
                drop = {ax % len(axes) for ax in given} if given is not None else \
                    {i for i, ax in enumerate(axes) if ax[1] == 1}
                if any(axes[i][1] != 1 for i in drop):
                    raise ValueError(f"{where}: squeezes an axis that is not of size 1")
                axes = [ax for i, ax in enumerate(axes) if i not in drop]
            else:
                for ax in sorted(g % (len(axes) + len(given)) for g in given):
                    axes.insert(ax, ("1", 1))
            return [_Seq(x.layers, x.ours, _normalised(axes))]
        if op == "Reshape":
            return [_Seq(x.layers, x.ours, self._reshape(axes, inputs[1], a, where))]
        if op in ("Gather", "Slice"):
            return [self._last_step(node, a, x, inputs)]
        if op == "GatherElements":
            index = inputs[1]
            axis = a.get("axis", 0) % len(axes)
            if not (isinstance(index, _Marker) and index.kind == "last") or \
                    axes[axis][0] != "T":
                raise ValueError(f"{where}: only the pick of each sequence's last valid step "
                                 "(lengths - 1 along the time axis) has a layer of ours")
            axes[axis] = ("1", 1)
            return [self._then(x, self._last_step_layer(x), axes, where)]
        if op in ("MatMul", "Gemm"):
            return [self._linear(node, a, x, inputs)]
        if op == "Add":
            return [self._bias(node, x, inputs)]
        raise ValueError(f"{where}: the op {op} on the data has no layer of ours")

    def _const(self, value, where):
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{where}: this input must be a constant")
        return value

    def _marker(self, node, a, inputs):
        """lengths, Cast, and lengths - 1 reshaped/expanded as GatherElements' index."""
        x, op = inputs[0], node.op_type
        if x.kind == "lengths" and op in ("Cast", "Identity"):
            return [x]
        if x.kind == "lengths" and op == "Sub" and np.array_equal(inputs[1], 1):
            return [_Marker("last")]
        if x.kind == "last" and op in ("Reshape", "Expand", "Unsqueeze"):
            return [x]
        if x.kind == "state" and (op == "Identity" or (op == "Concat" and a["axis"] == 0 and all(
                isinstance(i, _Marker) and i.kind == "state" for i in inputs))):
            return [x]
        if x.kind == "zeros" and op in ("Slice", "Identity", "Cast", "Reshape", "Squeeze",
                                        "Unsqueeze", "Expand"):
            return [x]
        raise ValueError(f"{_where(node)}: the op {op} on the graph's {x.kind} input has no "
                         "layer of ours")

    def _shape(self, node, a, inputs):
        """Shape arithmetic on a dynamic shape: Gather, Unsqueeze, Concat, Slice, Cast,
        and ConstantOfShape of zeros (the zero initial states torch writes)."""
        op, x = node.op_type, inputs[0]
        if op == "Gather":
            index = self._const(inputs[1], _where(node))
            picked = [x.entries[int(i)] for i in np.ravel(index)]
            return [_Shape(picked, scalar=np.ndim(index) == 0)]
        if op == "Unsqueeze":
            return [_Shape(x.entries)]
        if op == "Concat":
            entries = []
            for i in inputs:
                entries += i.entries if isinstance(i, _Shape) else \
                    [int(v) for v in np.ravel(i)]
            return [_Shape(entries)]
        if op in ("Cast", "Identity"):
            return [x]
        if op == "Slice":
            return [_Shape(_slice(np.array(x.entries, object),
                                  *[np.ravel(i) for i in inputs[1:] if i is not None]))]
        if op == "ConstantOfShape" and not (
                "value" in a and numpy_helper.to_array(a["value"]).any()):
            return [_Marker("zeros")]
        raise ValueError(f"{_where(node)}: the op {op} on a dynamic shape has no layer of ours")

    def _reshape(self, axes, shape, a, where):
        if isinstance(shape, _Shape):
            target = shape.entries
        else:
            target = [int(s) for s in self._const(shape, where).ravel()]
        out, i = [], 0
        for j, t in enumerate(target):
            if isinstance(t, tuple) or (t == 0 and not a.get("allowzero", 0)):
                ax = t if isinstance(t, tuple) else axes[j]
                if i >= len(axes) or axes[i] != ax:
                    raise ValueError(f"{where}: a reshape that moves the axes has no layer "
                                     "of ours")
                out.append(ax)
                i += 1
            elif t == -1:
                end = len(axes) - (len(target) - j - 1)
                out.append(_merge(axes[i:end], where))
                i = end
            else:
                start, size = i, 1
                while i < len(axes) and size < t:
                    label, known = axes[i]
                    known = known or self.static.get(label)
                    if known is None:
                        raise ValueError(f"{where}: a reshape to a fixed size of a dynamic "
                                         "time or batch axis has no layer of ours")
                    size *= known
                    i += 1
                if size != t:
                    raise ValueError(f"{where}: a reshape splitting axes has no layer of ours")
                out.append(_merge(axes[start:i], where))
        if i != len(axes):
            raise ValueError(f"{where}: a reshape with axes left over has no layer of ours")
        return _normalised(out)

    def _last_step_layer(self, x):
        if not x.layers:
            raise ValueError("a step is picked from the graph's input itself")
        return LastStep(batch_first=x.ours[0][0] == "N")

    def _then(self, x, layer, axes, where):
        """`x` followed by our `layer` (whose output drops the time axis)."""
        if x.ours[-1][0] != "F":
            raise ValueError(f"{where}: picks a step of a value that is not a sequence")
        return _Seq(x.layers + (layer,), (("N", None), x.ours[-1]), _normalised(axes))

    def _last_step(self, node, a, x, inputs):
        """Gather of index -1 along time, or Slice of [-1:] along time: `LastStep`."""
        where, axes = _where(node), list(x.axes)
        if node.op_type == "Gather":
            index = self._const(inputs[1], where)
            axis = a.get("axis", 0) % len(axes)
            if np.ndim(index) == 0 and int(index) == 0 and axes[axis][0] == "T":
                del axes[axis]
                return _Seq(x.layers, x.ours, axes, part="first")
            if np.ndim(index) != 0 or int(index) != -1 or axes[axis][0] != "T":
                raise ValueError(f"{where}: only the last step (index -1 along the time "
                                 "axis) has a layer of ours (LastStep)")
            del axes[axis]
        else:
            starts, ends, axes_, steps = ([np.ravel(self._const(i, where)) if i is not None
                                           else None for i in inputs[1:]] + [None] * 3)[:4]
            if "starts" in a:
                starts, ends, axes_ = a["starts"], a["ends"], a.get("axes")
            axes_ = list(range(len(starts))) if axes_ is None else list(axes_)
            if len(axes_) == 1 and int(axes_[0]) % len(axes) == len(axes) - 1 and \
                    isinstance(x.layers[-1], LastStep) and not x.layers[-1].bidirectional:
                # the forward half of each sequence's last step
                return self._half(node, x, "forward", starts, ends, steps)
            if len(axes_) != 1 or axes[int(axes_[0]) % len(axes)][0] != "T" or \
                    int(starts[0]) != -1 or int(ends[0]) < 0 or \
                    (steps is not None and int(steps[0]) != 1):
                raise ValueError(f"{where}: only the slice of the last step ([-1:] along the "
                                 "time axis) has a layer of ours (LastStep)")
            axes[int(axes_[0]) % len(axes)] = ("1", 1)
        return self._then(x, self._last_step_layer(x), axes, where)

    def _half(self, node, x, part, starts, ends, steps):
        """The forward half [0:H] of a last step, or the reverse half [H:2H] of step 0."""
        F = x.axes[-1][1]
        H = F // 2
        wanted = (0, H) if part == "forward" else (H, F)
        start, end = int(starts[0]), min(int(ends[0]), F)
        if x.axes[-1][0] != "F" or F % 2 or (start, end) != wanted or \
                (steps is not None and int(steps[0]) != 1):
            raise ValueError(f"{_where(node)}: only the halves of a bidirectional output, the "
                             "forward one at the last step and the reverse one at step 0, "
                             "have a layer of ours (LastStep(bidirectional=True))")
        if part == "reverse":
            return _Seq(x.layers, x.ours, x.axes[:-1] + (("F", H),), part=part)
        # The sequence before the LastStep: its layers, and its axes in its layout.
        time_batch = (("N", None), ("T", None)) if x.layers[-1].batch_first else \
            (("T", None), ("N", None))
        return _Seq(x.layers[:-1], time_batch + x.ours[-1:], x.axes[:-1] + (("F", H),),
                    part=part)

    def _bidirectional_last_step(self, node, a, inputs):
        """Slice [H:2H] of step 0 (the reverse half), and the Concat of the forward half
        at the last step with it: `LastStep(bidirectional=True)`."""
        where, x = _where(node), inputs[0]
        if node.op_type == "Identity":
            return x
        if node.op_type == "Slice" and x.part == "first":
            starts, ends, axes_, steps = ([np.ravel(self._const(i, where)) if i is not None
                                           else None for i in inputs[1:]] + [None] * 3)[:4]
            axis = len(x.axes) - 1 if axes_ is None else int(axes_[0]) % len(x.axes)
            if axis == len(x.axes) - 1 and len(starts) == 1:
                return self._half(node, x, "reverse", starts, ends, steps)
        if node.op_type == "Concat" and len(inputs) == 2 and \
                [getattr(i, "part", None) for i in inputs] == ["forward", "reverse"] and \
                inputs[0].layers == inputs[1].layers and \
                a["axis"] % len(x.axes) == len(x.axes) - 1:
            F = ("F", 2 * x.axes[-1][1])
            last = LastStep(batch_first=x.ours[0][0] == "N", bidirectional=True)
            return _Seq(x.layers + (last,), (("N", None), F), x.axes[:-1] + (F,))
        raise ValueError(f"{where}: only the halves of a bidirectional output, the forward one "
                         "at the last step and the reverse one at step 0, concatenated, have "
                         "a layer of ours (LastStep(bidirectional=True))")

    def _linear(self, node, a, x, inputs):
        where, axes = _where(node), x.axes
        weight = self._const(inputs[1], where)
        if node.op_type == "Gemm":
            if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0:
                raise ValueError(f"{where}: Gemm with transA or alpha != 1 has no layer of ours")
            weight = weight.T if a.get("transB", 0) else weight
        if weight.ndim != 2 or axes[-1] != ("F", weight.shape[0]) or x.ours[-1] != axes[-1]:
            raise ValueError(f"{where}: a product that is not over the features has no "
                             "layer of ours")
        O = weight.shape[1]
        linear = Linear(weight.shape[0], O, bias=False, dtype=weight.dtype, seed=0)
        linear.load_state_dict({"weight": weight.T})
        y = _Seq(x.layers + (linear,), x.ours[:-1] + (("F", O),), axes[:-1] + (("F", O),))
        if node.op_type == "Gemm" and len(inputs) > 2 and inputs[2] is not None:
            return self._bias(node, y, [y, a.get("beta", 1.0) * inputs[2]])
        return y

    def _bias(self, node, x, inputs):
        where = _where(node)
        bias = self._const(inputs[1], where)
        last = x.layers[-1] if x.layers else None
        F = x.axes[-1]
        if not isinstance(last, Linear) or last.bias or bias.size != F[1] or \
                bias.shape[-1:] != (F[1],):
            raise ValueError(f"{where}: only a bias after a matrix product has a layer of ours")
        linear = Linear(last.in_features, last.out_features, dtype=last.dtype, seed=0)
        linear.load_state_dict({"weight": last.state_dict()["weight"],
                                "bias": bias.reshape(-1)})
        return _Seq(x.layers[:-1] + (linear,), x.ours, x.axes)

    def _model(self):
        outputs = [self.values[o.name] for o in self.graph.output]
        y = outputs[0]
        if not isinstance(y, _Seq) or not y.layers:
            raise ValueError(f"the graph's first output {self.graph.output[0].name!r} does "
                             "not come from a recurrent node")
        layers = _stacked(y.layers)
        bare = len(layers) == 1
        if _normalised(y.axes) != y.ours and not (bare and len(y.axes) == 4):
            raise ValueError(f"the graph's first output has the axes "
                             f"{[a[0] for a in y.axes]}, which our model's output "
                             f"{[a[0] for a in y.ours]} is not")
        for name, value in zip([o.name for o in self.graph.output[1:]], outputs[1:]):
            if not (bare and _is_state(value)):
                raise ValueError(f"the graph's output {name!r} is not our model's output nor "
                                 "a bare recurrent layer's final state")
        return layers[0] if bare else Sequential(*layers)


def _stacked(layers) -> list:
    """Consecutive recurrent layers of one kind and configuration as one layer of as many
    layers (torch's and our export's multi-layer models are one node per layer)."""
    merged = []
    for layer in layers:
        prev = merged[-1] if merged else None
        if (type(layer) in _OPS and type(prev) is type(layer)
                and prev.get_config() == dict(layer.get_config(), num_layers=prev.num_layers,
                                              input_size=prev.input_size)
                and layer.input_size == prev.num_directions * prev.hidden_size):
            config = dict(prev.get_config(), num_layers=prev.num_layers + 1)
            stack = type(layer)(**config)
            params = prev.state_dict()
            params.update({name.replace("_l0", f"_l{prev.num_layers}"): value
                           for name, value in layer.state_dict().items()})
            stack.load_state_dict(params)
            merged[-1] = stack
        else:
            merged.append(layer)
    return merged


def load(path):
    """Our model from an ONNX graph of LSTM, GRU and RNN nodes and their glue.

    The graph's first input is the sequence x, (T, N, I) or (N, T, I): which axis is time
    is what the first recurrent node (and any Transpose before it) says, and gives the
    model's `batch_first`. The data is followed from there: a recurrent node becomes our
    layer (zero or fed initial states; its ``sequence_lens`` only from an integer graph
    input, the model's `lengths`); the reshaping of ONNX's Y (T, D, N, H) to (T, N, D·H),
    Transpose, Squeeze and Unsqueeze are layout; a Gather of index -1 or a Slice [-1:]
    along time (or GatherElements at lengths - 1) is `LastStep`; MatMul or Gemm with a
    constant weight, and an Add of a constant bias after it, are `Linear`; Identity,
    Dropout and Cast pass through; Shape, Gather, Concat and ConstantOfShape on shapes are
    folded where they make zero initial states (torch's export), and every op on constants
    only is computed.

    Parameters
    ----------
    path : str, os.PathLike, bytes or onnx.ModelProto

    Returns
    -------
    LSTM, GRU, RNN or Sequential
        In eval mode. For a graph of one bare node, the layer: its `out` is ONNX's Y
        (T, D, N, H) as (T, N, D·H) and its final states are Y_h, Y_c.

    Raises
    ------
    ValueError
        An op or attribute that has no module of ours, naming the op and the node (a
        reverse-only node, activations other than the defaults, a second input that
        carries data, ...).
    """
    return _Loader(_read_model(path)).run().eval()
