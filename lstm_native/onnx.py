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

The nodes' execution (our layer for a recurrent node, the glue ops in NumPy) is in
`lstm_native._onnx_ops`, `load`'s pattern matching in `lstm_native._onnx_load`.

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

from ._onnx_load import _Loader
from ._onnx_ops import (_CELLS, _ELEM, _GLUE, _OPS, PEEPHOLE_ORDER, _attributes,
                        _check_ops, _read_model, _recurrent_layer, _run_recurrent,
                        onnx_to_torch_gates, torch_to_onnx_gates)
from .gru import GRU
from .layers import Dropout, LastStep, Linear, Sequential
from .lstm import LSTM

__all__ = ["export", "load", "InferenceSession", "NodeArg", "torch_to_onnx_gates",
           "onnx_to_torch_gates", "recurrent_model", "DEFAULT_OPSET"]

#: The opset `export` writes by default: the first with the recurrent ops' `layout`.
DEFAULT_OPSET = 14
MIN_OPSET = 14


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


# -- running a graph --------------------------------------------------------------------

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
