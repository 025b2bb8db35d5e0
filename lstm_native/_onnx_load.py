"""`lstm_native.onnx.load`'s work: an ONNX graph followed from its input onto our modules.

Each value of the graph is either a constant (initializers, Constant, and whatever is
computed from constants only, folded with the glue ops of `_onnx_ops`), or depends on
the graph's input: a `_Seq` (what our layers so far compute, with the axes ONNX's tensor
has), a `_Shape` (a dynamic shape, for the zero initial states torch writes), or a
`_Marker` (lengths, zeros, final states). A node that does not fit one of these
patterns raises ValueError naming its op and name.
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, numpy_helper

from ._onnx_ops import (_CELLS, _GLUE, _OPS, _attributes, _axes_of, _check_ops,
                        _recurrent_layer, _slice, _where)
from .layers import LastStep, Linear, Sequential


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
