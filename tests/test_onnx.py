"""`lstm_native.onnx`: export against ONNX Runtime and onnx's reference evaluator, ONNX's
own backend node tests for LSTM, GRU and RNN through our `InferenceSession`, load of our
exports and of torch's, and the errors that name what does not map.

ONNX Runtime runs float32 only and refuses layout=1 inside these operators, so the
batch-first models' graphs (time-major inside) are checked with it, while the nodes in
layout 1 are checked with onnx.reference, which in turn ignores clip and input_forget
(those only with ONNX Runtime).
"""
from __future__ import annotations

import io
import itertools
import warnings

import numpy as np
import pytest
from conftest import random_lengths

onnx = pytest.importorskip("onnx")

import lstm_native as ln  # noqa: E402
from lstm_native import onnx as ln_onnx  # noqa: E402

# float32 agreement, absolute (the bound).
ATOL = 1e-5
RECURRENT_OPS = ("LSTM", "GRU", "RNN")


def outputs_of(model, x, lengths=None, hx=None):
    """`export`'s outputs computed by the model itself: out (and h_n, c_n when bare)."""
    if isinstance(model, ln.Sequential):
        return [model(x, lengths=lengths)]
    out, states = model(x, hx=hx, lengths=lengths)
    return [out, *(states if isinstance(states, tuple) else (states,))]


def random_model(rng, model, scale=0.5):
    """`model` with every parameter drawn from N(0, scale²), so that a clip bites."""
    for layer in ln_onnx._flatten(model):
        if layer.dtype is not None:
            layer.load_state_dict({k: scale * rng.standard_normal(v.shape)
                                   for k, v in layer.state_dict().items()})
    return model.eval()


def assert_agree(actual, expected, atol=ATOL):
    assert len(actual) == len(expected)
    for i, (a, b) in enumerate(zip(actual, expected)):
        assert a.shape == b.shape, f"output {i}: {a.shape} != {b.shape}"
        np.testing.assert_allclose(a, b, rtol=0, atol=atol, err_msg=f"output {i}")


# -- gate orders ----------------------------------------------------------------------

def test_gate_order_torch_to_onnx():
    H = 2
    w = np.repeat(np.arange(4), H)[:, None] * np.ones((1, 3))   # rows: i i f f g g o o
    converted = ln_onnx.torch_to_onnx_gates(w)
    assert converted[:, 0].tolist() == [0, 0, 3, 3, 1, 1, 2, 2]  # i o f c(=g)
    assert ln_onnx.torch_to_onnx_gates(np.arange(8.0)).tolist() == [0, 1, 6, 7, 2, 3, 4, 5]
    assert np.array_equal(ln_onnx.onnx_to_torch_gates(converted), w)


def test_gate_order_torch_to_onnx_gru():
    H = 2
    w = np.repeat(np.arange(3), H)[:, None] * np.ones((1, 3))   # rows: r r z z n n
    converted = ln_onnx.torch_to_onnx_gates(w, "gru")
    assert converted[:, 0].tolist() == [1, 1, 0, 0, 2, 2]       # z r h(=n)
    assert ln_onnx.torch_to_onnx_gates(np.arange(6.0), "gru").tolist() == [2, 3, 0, 1, 4, 5]
    assert np.array_equal(ln_onnx.onnx_to_torch_gates(converted, "gru"), w)


# -- ONNX's backend node tests --------------------------------------------------------

def node_cases():
    from onnx.backend.test.case import node

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = node.collect_testcases()
    return [c for c in cases if c.model.graph.node[0].op_type in RECURRENT_OPS]


NODE_CASES = node_cases()


def test_the_node_tests_cover_every_case_of_lstm_gru_and_rnn():
    names = {c.name for c in NODE_CASES}
    for op, prefix in (("lstm", "lstm"), ("gru", "gru"), ("rnn", "simple_rnn")):
        assert f"test_{prefix}_defaults" in names
    assert len(NODE_CASES) >= 18


@pytest.mark.parametrize("case", NODE_CASES, ids=[c.name for c in NODE_CASES])
def test_onnx_backend_node_test(case):
    session = ln_onnx.InferenceSession(case.model.SerializeToString(), providers=["any"])
    (inputs, expected), = case.data_sets
    names = [i.name for i in session.get_inputs()]
    outputs = session.run(None, dict(zip(names, inputs)))
    for got, want in zip(outputs, expected):
        np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol)
        # tighter than the case asks: our kernels agree with onnx's NumPy reference
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


# -- export against ONNX Runtime and onnx.reference -----------------------------------

def build(kind, L, bi, bf, variant=None, head=None, seed=0, dtype=np.float32):
    cls = {"lstm": ln.LSTM, "gru": ln.GRU, "rnn": ln.RNN}[kind]
    options = dict(variant or {})
    layer = cls(3, 5, L, bidirectional=bi, batch_first=bf, dtype=dtype, seed=seed, **options)
    F = 5 * (2 if bi else 1)
    if head == "last":
        model = ln.Sequential(layer, ln.Dropout(0.3), ln.LastStep(batch_first=bf),
                              ln.Linear(F, 2, dtype=dtype, seed=seed))
    elif head == "last-bi":
        model = ln.Sequential(layer, ln.LastStep(batch_first=bf, bidirectional=bi),
                              ln.Linear(F, 2, dtype=dtype, seed=seed))
    elif head == "seq":
        model = ln.Sequential(layer, ln.Linear(F, 2, dtype=dtype, seed=seed))
    else:
        model = layer
    return random_model(np.random.default_rng(seed), model)


VARIANTS = {"lstm": [{}, {"peepholes": True}, {"clip": 1.5}, {"input_forget": True},
                     {"peepholes": True, "clip": 1.5, "input_forget": True}],
            "gru": [{}, {"reset_after": False}],
            "rnn": [{}, {"nonlinearity": "relu"}]}
GRID = [(kind, variant, L, bi, bf, head)
        for kind in VARIANTS for variant in VARIANTS[kind]
        for L, bi, bf, head in itertools.product((1, 2), (False, True), (False, True),
                                                 (None, "last", "last-bi", "seq"))
        # every variant over the layouts, the full grid on the plain cells
        if not variant or (L, head) in ((2, None), (1, "last"))]


def grid_id(case):
    kind, variant, L, bi, bf, head = case
    return "-".join([kind, *(f"{k}" for k in variant), f"L{L}"] + ["bi"] * bi +
                    ["bf"] * bf + [head or "bare"])


def feeds(model, first, rng, with_lengths, with_states, N=4, T=6):
    x = rng.standard_normal((N, T, 3) if first.batch_first else (T, N, 3)).astype(
        np.float32)
    lengths = random_lengths(rng, N, T) if with_lengths else None
    hx = None
    if with_states:
        shape = (first.num_directions * first.num_layers, N, first.hidden_size)
        hx = tuple(rng.standard_normal(shape).astype(np.float32)
                   for _ in first._state_names)
    feed = {"x": x}
    if with_lengths:
        feed["lengths"] = lengths
    if hx is not None:
        feed.update(zip(("h0", "c0"), hx))
        hx = hx if len(hx) == 2 else hx[0]
    return feed, outputs_of(model, x, lengths, hx)


@pytest.mark.parametrize("case", GRID, ids=[grid_id(c) for c in GRID])
def test_export_matches_onnxruntime_and_our_session(case):
    ort = pytest.importorskip("onnxruntime")
    kind, variant, L, bi, bf, head = case
    model = build(kind, L, bi, bf, variant, head)
    first = ln_onnx._flatten(model)[0]
    rng = np.random.default_rng(L + 2 * bi + 4 * bf)
    bare = head is None
    for with_lengths, with_states in ((False, False), (True, bare)):
        proto = ln_onnx.export(model, lengths=with_lengths, states=with_states)
        assert [i.name for i in proto.graph.input][0] == "x"
        assert proto.opset_import[0].version == ln_onnx.DEFAULT_OPSET
        feed, expected = feeds(model, first, rng, with_lengths, with_states)
        theirs = ort.InferenceSession(proto.SerializeToString(),
                                      providers=["CPUExecutionProvider"]).run(None, feed)
        assert_agree(theirs, expected)
        assert_agree(ln_onnx.InferenceSession(proto).run(None, feed), expected)


# onnx.reference ignores clip and input_forget, and knows no Relu for the RNN.
REFERENCE_GRID = [(kind, variant, bi, bf) for kind in VARIANTS for variant in VARIANTS[kind]
                  if not ({"clip", "input_forget", "nonlinearity"} & set(variant))
                  for bi in (False, True) for bf in (False, True)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", REFERENCE_GRID,
                         ids=[grid_id((k, v, 2, bi, bf, None)) for k, v, bi, bf in REFERENCE_GRID])
def test_export_matches_the_onnx_reference_evaluator(case, dtype):
    reference = pytest.importorskip("onnx.reference")
    kind, variant, bi, bf = case
    model = build(kind, 2, bi, bf, variant, dtype=dtype)
    rng = np.random.default_rng(5)
    feed, expected = feeds(model, model, rng, False, True)
    feed = {k: v.astype(dtype) for k, v in feed.items()}
    expected = outputs_of(model, feed["x"], hx=tuple(feed[k] for k in ("h0", "c0")
                                                     if k in feed) if kind == "lstm"
                          else feed["h0"])
    proto = ln_onnx.export(model, states=True)
    assert_agree(reference.ReferenceEvaluator(proto).run(None, feed), expected)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_layout_1_nodes_match_the_onnx_reference_evaluator(kind, direction):
    # ONNX Runtime refuses layout=1: our session runs it against onnx's reference.
    reference = pytest.importorskip("onnx.reference")
    from onnx import TensorProto, helper

    rng = np.random.default_rng(3)
    D, G = 1 + (direction == "bidirectional"), {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
    N, T, I, H = 3, 5, 2, 4
    arrays = {"X": rng.standard_normal((N, T, I)), "W": rng.standard_normal((D, G * H, I)),
              "R": rng.standard_normal((D, G * H, H)), "B": rng.standard_normal((D, 2 * G * H)),
              "sequence_lens": np.array([5, 2, 4], np.int32),
              "initial_h": rng.standard_normal((N, D, H))}
    if kind == "LSTM":
        arrays.update(initial_c=rng.standard_normal((N, D, H)),
                      P=rng.standard_normal((D, 3 * H)))
    arrays = {k: (v if v.dtype == np.int32 else (0.5 * v).astype(np.float32))
              for k, v in arrays.items()}
    outs = ["Y", "Y_h"] + (["Y_c"] if kind == "LSTM" else [])

    def node_model(arrays):
        inputs = ["" if k not in arrays else k for k in ("X", "W", "R", "B", "sequence_lens",
                                                           "initial_h", "initial_c", "P")]
        while not inputs[-1]:
            inputs.pop()
        node = helper.make_node(kind, inputs, outs, hidden_size=H, direction=direction,
                                layout=1)
        graph = helper.make_graph(
            [node], "g", [helper.make_tensor_value_info(
                k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in arrays.items()],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])

    model = node_model(arrays)
    ours = ln_onnx.InferenceSession(model).run(None, arrays)
    theirs = reference.ReferenceEvaluator(model).run(None, arrays)
    # onnx.reference ignores sequence_lens: compare the full-length sequence only, then
    # all sequences without sequence_lens.
    assert_agree([o[:1] for o in ours], [o[:1] for o in theirs])
    del arrays["sequence_lens"]
    model = node_model(arrays)
    ours = ln_onnx.InferenceSession(model).run(None, arrays)
    assert_agree(ours, reference.ReferenceEvaluator(model).run(None, arrays))


# -- load -----------------------------------------------------------------------------

ROUND_TRIPS = [("lstm", {"peepholes": True}, 2, True, True, None),
               ("lstm", {}, 2, True, True, "last-bi"),
               ("gru", {}, 1, True, False, "last-bi"),
               ("lstm", {"clip": 1.5, "input_forget": True}, 1, False, False, "last"),
               ("gru", {"reset_after": False}, 2, True, False, None),
               ("gru", {}, 1, True, True, "last"),
               ("rnn", {"nonlinearity": "relu"}, 2, False, True, "seq"),
               ("lstm", {}, 2, True, False, "seq")]


@pytest.mark.parametrize("case", ROUND_TRIPS, ids=[grid_id(c) for c in ROUND_TRIPS])
def test_export_then_load_gives_the_same_model(case, tmp_path):
    kind, variant, L, bi, bf, head = case
    model = build(kind, L, bi, bf, variant, head)
    path = tmp_path / "model.onnx"
    ln_onnx.export(model, path, lengths=True)
    loaded = ln_onnx.load(path)
    assert not loaded.training
    first, again = ln_onnx._flatten(model)[0], ln_onnx._flatten(loaded)[0]
    assert again.get_config() == dict(first.get_config(), n_threads=None)
    rng = np.random.default_rng(1)
    feed, expected = feeds(model, first, rng, True, False)
    assert_agree(outputs_of(loaded, feed["x"], feed["lengths"]), expected, atol=0)


def torch_model(kind, batch_first, bidirectional):
    torch = pytest.importorskip("torch")

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, kind)(3, 5, 2, batch_first=batch_first,
                                               bidirectional=bidirectional)
            self.head = torch.nn.Linear(10 if bidirectional else 5, 2)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.head(y[:, -1] if batch_first else y[-1])

    torch.manual_seed(0)
    return torch, Model().eval()


TORCH_EXPORTS = [(kind, bf, bi, "torchscript") for kind in ("LSTM", "GRU")
                 for bf in (False, True) for bi in (False, True)]
# The default (dynamo) exporter, where onnxscript is installed: it writes the same ONNX
# LSTM and GRU nodes, with static shapes; one case, as it is slow (~10 s).
TORCH_EXPORTS += [("LSTM", True, True, "dynamo")]


def torch_export(model, x, exporter) -> bytes:
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            pytest.importorskip("onnxscript")
            return torch.onnx.export(model, (x,), dynamo=True, input_names=["x"],
                                     output_names=["y"], verbose=False
                                     ).model_proto.SerializeToString()
        buffer = io.BytesIO()
        torch.onnx.export(model, (x,), buffer, dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "a", 1: "b"}})
        return buffer.getvalue()


@pytest.mark.parametrize("kind, batch_first, bidirectional, exporter", TORCH_EXPORTS,
                         ids=["-".join([k, "bf" if bf else "tm", "bi" if bi else "fw", e])
                              for k, bf, bi, e in TORCH_EXPORTS])
def test_load_a_torch_export(kind, batch_first, bidirectional, exporter):
    torch, model = torch_model(kind, batch_first, bidirectional)
    x = torch.randn((4, 6, 3) if batch_first else (6, 4, 3))
    exported = torch_export(model, x, exporter)
    with torch.no_grad():
        expected = model(x).numpy()
    loaded = ln_onnx.load(exported)
    assert [type(layer) for layer in loaded] == [getattr(ln, kind), ln.LastStep, ln.Linear]
    assert loaded[0].num_layers == 2 and loaded[0].batch_first == batch_first
    np.testing.assert_allclose(loaded(x.numpy()), expected, rtol=0, atol=ATOL)
    session = ln_onnx.InferenceSession(exported)
    np.testing.assert_allclose(session.run(["y"], {"x": x.numpy()})[0], expected, rtol=0,
                               atol=ATOL)


def keras_like_graph(kind, bidirectional, rng):
    """The graph tf2onnx writes for a Keras recurrent layer (return_sequences=False) and a
    Dense head: x (N, T, I) transposed to time-major, the node's final state Y_h (D, N, H)
    as the output, squeezed (one direction) or transposed and reshaped to (N, D·H), then
    MatMul and Add."""
    from onnx import TensorProto, helper, numpy_helper

    D, G, I, H = 1 + bidirectional, {"LSTM": 4, "GRU": 3}[kind], 3, 5
    weights = {"W": rng.standard_normal((D, G * H, I)), "R": rng.standard_normal((D, G * H, H)),
               "B": rng.standard_normal((D, 2 * G * H)), "kernel": rng.standard_normal((D * H, 2)),
               "bias": rng.standard_normal(2),
               "axes": np.array([0]), "perm_shape": np.array([0, -1])}
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node(kind, ["xt", "W", "R", "B"], ["", "y_h"], hidden_size=H,
                              direction="bidirectional" if bidirectional else "forward",
                              **({"linear_before_reset": 1} if kind == "GRU" else {}))]
    if bidirectional:
        nodes += [helper.make_node("Transpose", ["y_h"], ["h_t"], perm=[1, 0, 2]),
                  helper.make_node("Reshape", ["h_t", "perm_shape"], ["h"])]
    else:
        nodes.append(helper.make_node("Squeeze", ["y_h", "axes"], ["h"]))
    nodes += [helper.make_node("MatMul", ["h", "kernel"], ["hk"]),
              helper.make_node("Add", ["hk", "bias"], ["out"])]
    graph = helper.make_graph(
        nodes, "keras", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", I])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array((0.5 * v).astype(np.float32) if v.dtype == np.float64 else v,
                                 k) for k, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)],
                             ir_version=7)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_load_the_final_state_head_tf2onnx_writes(kind, bidirectional):
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(4)
    proto = keras_like_graph(kind, bidirectional, rng)
    x = rng.standard_normal((3, 6, 3)).astype(np.float32)
    expected = ort.InferenceSession(proto.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, {"x": x})
    loaded = ln_onnx.load(proto)
    assert [type(layer) for layer in loaded] == [getattr(ln, kind), ln.LastStep, ln.Linear]
    assert loaded[0].batch_first and loaded[1].bidirectional == bidirectional
    assert_agree([loaded(x)], expected)
    assert_agree(ln_onnx.InferenceSession(proto).run(None, {"x": x}), expected)


# -- the session's interface and the errors -------------------------------------------

def test_session_describes_inputs_and_outputs_as_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    proto = ln_onnx.export(build("lstm", 1, True, True), lengths=True, states=True)
    ours = ln_onnx.InferenceSession(proto.SerializeToString(), sess_options=None,
                                    providers=["CPUExecutionProvider"])
    theirs = ort.InferenceSession(proto.SerializeToString(),
                                  providers=["CPUExecutionProvider"])
    for a, b in [*zip(ours.get_inputs(), theirs.get_inputs()),
                 *zip(ours.get_outputs(), theirs.get_outputs())]:
        assert (a.name, a.shape, a.type) == (b.name, b.shape, b.type)
    with pytest.raises(ValueError, match=r"missing the graph inputs \['lengths', 'h0', 'c0'\]"):
        ours.run(None, {"x": np.zeros((1, 2, 3), np.float32)})
    with pytest.raises(ValueError, match="'y'.*not inputs"):
        ours.run(None, {"y": 1})


def test_export_refuses_what_onnx_cannot_express():
    with pytest.raises(ValueError, match="proj_size=2"):
        ln_onnx.export(ln.LSTM(3, 4, proj_size=2))
    with pytest.raises(ValueError, match="layer_norm"):
        ln_onnx.export(ln.LSTM(3, 4, layer_norm=True))
    with pytest.raises(TypeError, match="LSTMCell"):
        ln_onnx.export(ln.LSTMCell(3, 4))
    with pytest.raises(ValueError, match="states=True"):
        ln_onnx.export(ln.Sequential(ln.LSTM(3, 4)), states=True)
    with pytest.raises(ValueError, match="opset"):
        ln_onnx.export(ln.LSTM(3, 4), opset=13)


def test_variational_dropout_exports_as_eval_mode():
    model = ln.LSTM(3, 4, 2, dropout=0.5, input_dropout=0.3, recurrent_dropout=0.2, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    proto = ln_onnx.export(model)
    assert_agree(ln_onnx.InferenceSession(proto).run(None, {"x": x}),
                 outputs_of(model.eval(), x))


def unsupported_graph(op="Relu", **attributes):
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=2, name="lstm",
                              **attributes)]
    if op:
        nodes.append(helper.make_node(op, ["y"], ["z"], name="the_head"))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "N", 3])],
        [helper.make_tensor_value_info("z" if op else "y", TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
         for n, s in (("W", (1, 8, 3)), ("R", (1, 8, 2)))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def test_an_unmappable_op_is_named_with_its_node():
    with pytest.raises(ValueError, match="Relu node 'the_head'"):
        ln_onnx.load(unsupported_graph())
    with pytest.raises(ValueError, match="Softmax node 'the_head'.*not supported"):
        ln_onnx.InferenceSession(unsupported_graph("Softmax"))
    with pytest.raises(ValueError, match="LSTM node 'lstm': activations"):
        ln_onnx.InferenceSession(unsupported_graph(
            None, activations=["Sigmoid", "Tanh", "Relu"])).run(
                None, {"x": np.zeros((2, 1, 3), np.float32)})
    with pytest.raises(ValueError, match="LSTM node 'lstm': direction 'reverse'"):
        ln_onnx.load(unsupported_graph(None, direction="reverse"))
