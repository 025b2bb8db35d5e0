"""The LSTM's variants of the ONNX operator (`peepholes`, `clip`, `input_forget`) against
ONNX Runtime's LSTM, the peepholes also against onnx's reference evaluator (which
ignores clip, input_forget and sequence_lens), and the gradients the variants must cut.

ONNX's LSTM is one layer over W (D, 4H, I), R (D, 4H, H), B (D, 8H) = [Wb; Rb] and
P (D, 3H), the gates ordered i, o, f, c where ours (torch's) are i, f, g, o, and P's
rows i, o, f where our `weight_peephole` (3, H) holds p_i, p_f, p_o.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import ort_session, randn, random_lengths, rtol_for

import lstm_native as ln

# The bridge's gate reordering (lstm_native.onnx needs onnx: the module skips without it).
torch_to_onnx_gates = pytest.importorskip("lstm_native.onnx").torch_to_onnx_gates

OPSET = 14
# Our rows p_i, p_f, p_o in ONNX's order i, o, f (lstm_native.onnx will need the same).
ONNX_PEEPHOLE_ORDER = [0, 2, 1]
# A fifth to a third of the pre-activations of the draws below (`random_model`) exceed it.
CLIP = 1.5
VARIANTS = {
    "peepholes": {"peepholes": True},
    "clip": {"clip": CLIP},
    "input_forget": {"input_forget": True},
    "peepholes-clip": {"peepholes": True, "clip": CLIP},
    "all": {"peepholes": True, "clip": CLIP, "input_forget": True},
}
SHAPES = {"T5-N1-I3-H5": (5, 1, 3, 5), "T6-N4-I7-H37": (6, 4, 7, 37),
          "T3-N3-I4-H16": (3, 3, 4, 16)}


def onnx_attributes(model) -> dict:
    """The ONNX LSTM node's attributes for the variants of `model`."""
    attributes = {}
    if model.clip is not None:
        attributes["clip"] = model.clip
    if model.input_forget:
        attributes["input_forget"] = 1
    return attributes


def onnx_lstm_graph(model, sfxs, x, lengths=None, hx=None, layout=0):
    """A graph of one ONNX LSTM node on `model`'s parameters of suffixes `sfxs` (one per
    direction) and its feeds: inputs X, sequence_lens and initial_h, initial_c when
    given (ONNX's layout: (T, N, ·) or, with layout 1, (N, T, ·) and states (N, D, H)),
    outputs Y, Y_h, Y_c."""
    from onnx import TensorProto, helper, numpy_helper

    H, D = model.hidden_size, len(sfxs)
    sd = model.state_dict()
    initializers = {
        "W": np.stack([torch_to_onnx_gates(sd[f"weight_ih{s}"]) for s in sfxs]),
        "R": np.stack([torch_to_onnx_gates(sd[f"weight_hh{s}"]) for s in sfxs]),
        "B": np.stack([np.concatenate([torch_to_onnx_gates(sd[f"bias_ih{s}"]),
                                       torch_to_onnx_gates(sd[f"bias_hh{s}"])])
                       for s in sfxs]),
    }
    if model.peepholes:
        initializers["P"] = np.stack([sd[f"weight_peephole{s}"][ONNX_PEEPHOLE_ORDER].ravel()
                                      for s in sfxs])
    feeds = {"X": x}
    if lengths is not None:
        feeds["sequence_lens"] = np.asarray(lengths, np.int32)
    if hx is not None:
        feeds["initial_h"], feeds["initial_c"] = (
            s.transpose(1, 0, 2) if layout else s for s in hx)
    inputs = [name if name in feeds or name in initializers else ""
              for name in ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")]
    node = helper.make_node("LSTM", inputs, ["Y", "Y_h", "Y_c"], hidden_size=H,
                            direction="bidirectional" if D == 2 else "forward",
                            layout=layout, **onnx_attributes(model))
    elem = helper.np_dtype_to_tensor_dtype(x.dtype)
    if layout:
        N, T = x.shape[:2]
        y, states = [N, T, D, H], [N, D, H]
    else:
        T, N = x.shape[:2]
        y, states = [T, D, N, H], [D, N, H]
    graph = helper.make_graph(
        [node], "lstm",
        [helper.make_tensor_value_info(name, TensorProto.INT32 if name == "sequence_lens"
                                       else elem, list(a.shape)) for name, a in feeds.items()],
        [helper.make_tensor_value_info("Y", elem, y),
         helper.make_tensor_value_info("Y_h", elem, states),
         helper.make_tensor_value_info("Y_c", elem, states)],
        [numpy_helper.from_array(a.astype(x.dtype), name) for name, a in initializers.items()])
    return graph, feeds


def as_ours(y, y_h, y_c, layout=0):
    """ONNX's Y (T, D, N, H), Y_h and Y_c (D, N, H) (or, with layout 1, (N, T, D, H) and
    (N, D, H)) as our out (T, N, D·H) (or (N, T, D·H)), h_n and c_n (D, N, H)."""
    if layout:
        return y.reshape(*y.shape[:2], -1), y_h.transpose(1, 0, 2), y_c.transpose(1, 0, 2)
    return y.transpose(0, 2, 1, 3).reshape(*y.shape[::2], -1), y_h, y_c


def assert_agree(ours, theirs, dtype) -> None:
    """out, h_n, c_n within conftest's tolerance of `dtype`, taken as an absolute bound."""
    for name, a, b in zip(("out", "h_n", "c_n"), ours, theirs):
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol_for(dtype), err_msg=name)


def random_model(rng, cls, *args, scale=0.5, **kwargs):
    """`cls(*args, **kwargs)` with every parameter drawn from N(0, scale²): larger than
    the initialisation's U(±1/sqrt(H)), so that `CLIP` bites."""
    model = cls(*args, **kwargs)
    model.load_state_dict({name: scale * randn(rng, p.shape)
                           for name, p in model.state_dict().items()})
    return model


@pytest.mark.parametrize("with_hx", [False, True], ids=["zero-state", "hx"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
def test_lstm_matches_onnxruntime(variant, shape, bidirectional, with_lengths, with_hx):
    T, N, I, H = shape
    D = 2 if bidirectional else 1
    rng = np.random.default_rng(T * N * H)
    model = random_model(rng, ln.LSTM, I, H, bidirectional=bidirectional, **variant).eval()
    x = randn(rng, (T, N, I), np.float32)
    lengths = random_lengths(rng, N, T) if with_lengths else None
    hx = (randn(rng, (D, N, H), np.float32), randn(rng, (D, N, H), np.float32)) \
        if with_hx else None
    out, (h_n, c_n) = model(x, hx=hx, lengths=lengths)
    graph, feeds = onnx_lstm_graph(model, ["_l0", "_l0_reverse"][:D], x, lengths, hx)
    assert_agree((out, h_n, c_n), as_ours(*ort_session(graph, OPSET).run(None, feeds)),
                 np.float32)
    if model.clip is not None:  # the clip changed the results: it was exercised
        unclipped = ln.LSTM(I, H, bidirectional=bidirectional, **dict(variant, clip=None))
        unclipped.load_state_dict(model.state_dict())
        assert np.max(np.abs(unclipped.eval()(x, hx=hx, lengths=lengths)[0] - out)) > 1e-2


@pytest.mark.parametrize("N, I, H", [(1, 3, 5), (4, 7, 37)], ids=["N1-H5", "N4-H37"])
@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
def test_cell_matches_a_one_step_onnxruntime_lstm(variant, N, I, H):
    rng = np.random.default_rng(H)
    cell = random_model(rng, ln.LSTMCell, I, H, **variant).eval()
    x = randn(rng, (N, I), np.float32)
    hx = (randn(rng, (N, H), np.float32), randn(rng, (N, H), np.float32))
    h, c = cell(x, hx)
    graph, feeds = onnx_lstm_graph(cell, [""], x[None], hx=tuple(s[None] for s in hx))
    _, y_h, y_c = ort_session(graph, OPSET).run(None, feeds)
    assert_agree((h, c), (y_h[0], y_c[0]), np.float32)


@pytest.mark.parametrize("batch_first", [False, True], ids=["layout0", "layout1"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_peepholes_match_the_onnx_reference_evaluator(dtype, bidirectional, batch_first):
    reference = pytest.importorskip("onnx.reference")
    T, N, I, H = 5, 3, 4, 6
    D = 2 if bidirectional else 1
    rng = np.random.default_rng(7)
    model = random_model(rng, ln.LSTM, I, H, bidirectional=bidirectional,
                         batch_first=batch_first, peepholes=True, dtype=dtype).eval()
    x = randn(rng, (N, T, I) if batch_first else (T, N, I), dtype)
    hx = (randn(rng, (D, N, H), dtype), randn(rng, (D, N, H), dtype))
    out, (h_n, c_n) = model(x, hx=hx)
    graph, feeds = onnx_lstm_graph(model, ["_l0", "_l0_reverse"][:D], x, hx=hx,
                                   layout=int(batch_first))
    evaluator = reference.ReferenceEvaluator(graph, opsets={"": OPSET})
    assert_agree((out, h_n, c_n), as_ours(*evaluator.run(None, feeds), int(batch_first)),
                 dtype)


@pytest.mark.parametrize("cls", [ln.LSTM, ln.LSTMCell], ids=["LSTM", "LSTMCell"])
def test_input_forget_gives_the_forget_rows_and_p_f_zero_gradients(cls):
    # f = 1 - i: the forget rows of the weights and biases, and p_f, are never read.
    rng = np.random.default_rng(3)
    N, I, H = 3, 4, 5
    kwargs = {"bidirectional": True} if cls is ln.LSTM else {}
    model = random_model(rng, cls, I, H, peepholes=True, input_forget=True,
                         dtype=np.float64, **kwargs)
    if cls is ln.LSTM:
        out, (h_n, c_n) = model(randn(rng, (6, N, I)), lengths=random_lengths(rng, N, 6))
        model.backward(randn(rng, out.shape), (randn(rng, h_n.shape), randn(rng, c_n.shape)))
    else:
        h, c = model(randn(rng, (N, I)), (randn(rng, (N, H)), randn(rng, (N, H))))
        model.backward(randn(rng, h.shape), randn(rng, c.shape))
    for name, grad in model.grads.items():
        rows = [1] if name.startswith("weight_peephole") else slice(H, 2 * H)
        assert np.all(grad[rows] == 0), name
        assert np.all(np.delete(grad, rows, axis=0) != 0), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_clip_that_every_pre_activation_exceeds_gives_zero_gradients(dtype):
    # Biases of ±5 against small weights and peepholes: every gate's pre-activation lies
    # beyond ±1, so with clip=1 every gate is a constant and nothing reaches the weights,
    # h0 or x (c0 still reaches c_n through f ⊙ c). Without the clip, everything does.
    rng = np.random.default_rng(11)
    T, N, I, H = 4, 3, 3, 5
    model = random_model(rng, ln.LSTM, I, H, bidirectional=True, peepholes=True, clip=1.0,
                         scale=0.05, dtype=dtype)
    params = model.parameters()
    for name in params:
        if name.startswith("bias_ih"):
            params[name][:] = 5 * rng.choice([-1, 1], size=params[name].shape)
    unclipped = ln.LSTM(I, H, bidirectional=True, peepholes=True, dtype=dtype)
    unclipped.load_state_dict(model.state_dict())
    x = randn(rng, (T, N, I), dtype)
    hx = (randn(rng, (2, N, H), dtype), randn(rng, (2, N, H), dtype))
    dout = randn(rng, (T, N, 2 * H), dtype)
    dhx = (randn(rng, (2, N, H), dtype), randn(rng, (2, N, H), dtype))
    for lstm in (model, unclipped):
        lstm(x, hx=hx)
        dx, (dh0, dc0) = lstm.backward(dout, dhx)
        clipped = lstm is model
        for name, a in [*lstm.grads.items(), ("dx", dx), ("dh0", dh0)]:
            assert np.all(a == 0) if clipped else np.all(a != 0), name
        assert np.all(dc0 != 0)
