"""Quantized inference (lstm_native.quantize): the int8 and bfloat16 kernels against the
NumPy reference of lstm_native.reference.quantized at every SIMD level (the same bits
for the products, the float32 tolerance for the layers' gate math), the models built
by `quantize` against their float32 originals, and the refusals."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lstm_native as ln
from lstm_native import _quantized
from lstm_native._validation import ISA_LEVELS
from lstm_native.quantization import (QuantizedGRU, QuantizedLinear, QuantizedLSTM,
                                      QuantizedRNN)
from lstm_native.reference import quantized as ref

PRECISIONS = ["int8", "bfloat16"]
# Rows cross the 6-row tiles, columns the 8- and 16-lane vectors and the 64-column
# tiles, depths the 4-byte (int8) and 2-value (bfloat16) groups.
SHAPES = [(m, k, n) for m in (1, 5, 6, 7, 13) for k in (1, 3, 4, 5, 17, 64)
          for n in (1, 8, 15, 16, 17, 63, 64, 65, 130)]
# And the input projection's shapes: many rows a thread, deeper k.
SHAPES += [(97, 129, 70), (97, 257, 64), (130, 1030, 65)]


def _weights(precision, w):
    """The reference's quantized weight and the kernels' packed form of it."""
    if precision == "int8":
        values, scale = ref.quantize_weight_int8(w)
        packed, sums = _quantized.pack_int8(values)
        return (values, scale), ("int8", packed, sums, scale)
    bits = ref.bfloat16_bits(w)
    return bits, ("bfloat16", _quantized.pack_bfloat16(bits))


# -- the products -----------------------------------------------------------------------

_PRODUCTS_CHECK = textwrap.dedent("""
    import json, numpy as np
    from lstm_native import _quantized
    from lstm_native.reference import quantized as ref
    rng = np.random.default_rng(0)
    mismatches = []
    for m, k, n in {shapes}:
        x = rng.standard_normal((m, k)).astype(np.float32)
        w = (rng.standard_normal((n, k)) * 0.1).astype(np.float32)
        start = rng.standard_normal((m, n)).astype(np.float32)
        values, scale = ref.quantize_weight_int8(w)
        packed, sums = _quantized.pack_int8(values)
        bits = ref.bfloat16_bits(w)
        for prec, weight, want in (
                ("int8", ("int8", packed, sums, scale), ref.matmul_int8(x, values, scale)),
                ("bfloat16", ("bfloat16", _quantized.pack_bfloat16(bits)),
                 ref.matmul_bfloat16(x, bits))):
            out = start.copy()
            _quantized.linear(prec, x, weight, out, 2)
            added = start.copy()
            _quantized.linear(prec, x, weight, added, 2, accumulate=True)
            if not (np.array_equal(out, want) and np.array_equal(added, start + want)):
                mismatches.append([prec, m, k, n])
    print(json.dumps({{"kernels": _quantized.kernels(), "mismatches": mismatches}}))
""")


@pytest.mark.parametrize("level", ISA_LEVELS)
def test_products_give_the_references_bits_at_every_level(level):
    script = _PRODUCTS_CHECK.format(shapes=SHAPES)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=dict(os.environ, LSTM_NATIVE_ISA=level), timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    ran = result["kernels"]["level"]
    if ISA_LEVELS.index(ran) < ISA_LEVELS.index(level):
        pytest.skip(f"this CPU offers {ran}, not {level}")
    assert ran == level
    expected = {"generic": "portable", "avx2-vnni": "avx2-vnni", "avx512-vnni": "avx512-vnni",
                "avx512-bf16": "avx512-vnni"}.get(level, "avx2")
    assert result["kernels"]["int8"] == expected
    assert result["kernels"]["bfloat16"] == {"generic": "portable",
                                             "avx512-bf16": "avx512-bf16"}.get(level, "avx2")
    assert result["mismatches"] == []


def test_activation_rows_quantize_as_the_reference():
    rng = np.random.default_rng(1)
    rows = [rng.standard_normal(37), np.zeros(37), np.full(37, 2.5), -np.abs(rng.random(37)),
            np.abs(rng.random(37)), np.r_[np.zeros(36), 1e-30],
            # values on the midpoints between codes: rint's ties go to even
            np.arange(-18, 19) * (2.0 / 255) + 1.0 / 255]
    a = np.array(rows, np.float32)
    q, scale, zero = _quantized.quantize_rows_int8(a)
    want_q, want_scale, want_zero = ref.quantize_rows_int8(a)
    assert np.array_equal(q[:, :37], want_q) and np.all(q[:, 37:] == 0)
    assert np.array_equal(scale, want_scale) and np.array_equal(zero, want_zero)
    # A row of zeros: scale 1, every code at the zero point; an all-positive row has its
    # zero point at 0, an all-negative one at 255.
    assert scale[1] == 1 and np.all(q[1, :37] == zero[1])
    assert zero[2] == 0 and zero[3] == 255 and q[2, :37].max() == 255
    # The dequantised row is within half a step of the row.
    back = (q[:, :37].astype(np.float32) - zero[:, None]) * scale[:, None]
    assert np.all(np.abs(back - a) <= scale[:, None] / 2 * (1 + 1e-6))


def test_bfloat16_rounding_edge_cases():
    specials = np.array([1.0, -1.0, 0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40,
                         3.4e38, 1.00390625, 1.01171875, 1.0 + 2 ** -8 + 2 ** -20],
                        np.float32)
    bits = _quantized.to_bfloat16(specials)
    assert np.array_equal(bits, ref.bfloat16_bits(specials))
    values = ref.bfloat16_values(bits)
    assert list(values[:6]) == [1.0, -1.0, 0.0, 0.0, np.inf, -np.inf]
    assert np.signbit(values[3]) and np.isnan(values[6])
    assert bits[7] == 0 and bits[8] == 0x8000          # subnormals flush to signed zeros
    assert values[9] == np.inf                          # past bfloat16's largest: inf
    assert values[10] == 1.0 and values[11] == 1.015625  # ties to even
    assert values[12] == 1.0078125                      # just past a tie: up


def test_packing_checks_its_sizes():
    with pytest.raises(ValueError, match="1..65536 columns"):
        _quantized.pack_int8(np.zeros((2, 65537), np.int8))
    packed, sums = _quantized.pack_int8(np.ones((3, 5), np.int8))
    assert list(sums) == [5, 5, 5]
    with pytest.raises(ValueError, match="wrong size"):
        _quantized.linear("int8", np.zeros((2, 9), np.float32), ("int8", packed, sums,
                                                                 np.ones(3, np.float32)),
                          np.zeros((2, 3), np.float32), 1)


# -- the layers against the reference ----------------------------------------------------

def _reference_layers(model, precision):
    """The reference's per-layer, per-direction weights and kernel biases of `model`."""
    params = model.parameters()
    H = model.hidden_size
    gru = isinstance(model, ln.GRU)
    layers = []
    for layer in range(model.num_layers):
        for direction in range(model.num_directions):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            w_ih, w_hh = params[f"weight_ih{sfx}"], params[f"weight_hh{sfx}"]
            bias, bias_hn = model._kernel_biases(sfx)
            p = {"w_ih": ref.quantize_weight(w_ih, precision),
                 "w_hh": ref.quantize_weight(w_hh[:2 * H] if gru else w_hh, precision),
                 "b": bias.astype(np.float32)}
            if gru:
                p["w_hn"] = ref.quantize_weight(w_hh[2 * H:], precision)
                p["b_hn"] = None if bias_hn is None else bias_hn.astype(np.float32)
            layers.append(p)
    return layers


LAYERS = [
    ("lstm", {}), ("lstm", {"num_layers": 2, "bidirectional": True}),
    ("gru", {}), ("gru", {"reset_after": False, "bidirectional": True}),
    ("rnn", {}), ("rnn", {"nonlinearity": "relu", "num_layers": 2}),
    ("lstm", {"bias": False}),
]


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("kind,options", LAYERS,
                         ids=[f"{k}-{'-'.join(map(str, o.values())) or 'plain'}"
                              for k, o in LAYERS])
def test_layers_match_the_reference(kind, options, precision):
    cls = {"lstm": ln.LSTM, "gru": ln.GRU, "rnn": ln.RNN}[kind]
    model = cls(7, 19, seed=3, **options).eval()
    q = ln.quantize(model, precision)
    rng = np.random.default_rng(4)
    T, N = 9, 5
    x = rng.standard_normal((T, N, 7)).astype(np.float32)
    lengths = np.array([9, 3, 7, 1, 9])
    D, L = model.num_directions, model.num_layers
    h0 = (rng.standard_normal((D * L, N, 19)) * 0.5).astype(np.float32)
    c0 = (rng.standard_normal((D * L, N, 19)) * 0.5).astype(np.float32)
    hx = (h0, c0) if kind == "lstm" else h0
    out, state = q(x, hx, lengths)
    want_out, want_state = ref.quantized_forward(
        kind, x, _reference_layers(model, precision), h0, c0 if kind == "lstm" else None,
        lengths, precision=precision, num_directions=D,
        nonlinearity=options.get("nonlinearity", "tanh"),
        reset_after=options.get("reset_after", True))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, want_out, rtol=0, atol=2e-5)
    for got, want in zip(state if kind == "lstm" else (state,),
                         want_state if kind == "lstm" else (want_state,)):
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    # Past a sequence's end the output is zero, as in float.
    assert np.all(out[3:, 1] == 0)


_LAYERS_CHECK = textwrap.dedent("""
    import json, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    import lstm_native as ln
    from lstm_native import _quantized
    from lstm_native.reference import quantized as ref
    from test_quantize import LAYERS, _reference_layers
    worst = {{}}
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 4, 7)).astype(np.float32)
    lengths = np.array([8, 2, 5, 8])
    for kind, options in LAYERS:
        model = {{"lstm": ln.LSTM, "gru": ln.GRU, "rnn": ln.RNN}}[kind](
            7, 19, seed=3, **options).eval()
        for precision in ("int8", "bfloat16"):
            out, _ = ln.quantize(model, precision)(x, lengths=lengths)
            D, L = model.num_directions, model.num_layers
            h0 = np.zeros((D * L, 4, 19), np.float32)
            want, _ = ref.quantized_forward(
                kind, x, _reference_layers(model, precision), h0,
                h0 if kind == "lstm" else None, lengths, precision=precision,
                num_directions=D, nonlinearity=options.get("nonlinearity", "tanh"),
                reset_after=options.get("reset_after", True))
            key = precision
            worst[key] = max(worst.get(key, 0.0), float(np.abs(out - want).max()))
    print(json.dumps({{"kernels": _quantized.kernels(), "worst": worst}}))
""")


@pytest.mark.parametrize("level", ISA_LEVELS)
def test_layers_match_the_reference_at_every_level(level):
    # The products are bitwise the reference's at every level (above); the gate math
    # around them is each level's float32 kernels: the layers agree within float32's
    # tolerance, the portable kernels included.
    script = _LAYERS_CHECK.format(tests=os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=dict(os.environ, LSTM_NATIVE_ISA=level), timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if ISA_LEVELS.index(result["kernels"]["level"]) < ISA_LEVELS.index(level):
        pytest.skip(f"this CPU offers {result['kernels']['level']}, not {level}")
    assert result["kernels"]["level"] == level
    assert result["worst"]["int8"] < 2e-5 and result["worst"]["bfloat16"] < 2e-5


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("kind, options", [("lstm", {}), ("gru", {}),
                                           ("gru", {"reset_after": False}),
                                           ("rnn", {"nonlinearity": "relu"})])
def test_steps_projecting_their_input_give_the_projection_aheads_bits(kind, options,
                                                                      precision):
    # Small weights: each step projects its own x_t (fuse=1); large: chunks of steps are
    # projected first (fuse=0). Both directions, rows ending early, 1 and 2 threads.
    layer = {"lstm": ln.LSTM, "gru": ln.GRU, "rnn": ln.RNN}[kind](
        20, 30, bidirectional=True, seed=1, **options).eval()
    q = ln.quantize(layer, precision)
    T, B = 9, 7
    x = np.random.default_rng(1).standard_normal((T * B, 20)).astype(np.float32)
    lengths = np.array([9, 3, 9, 1, 5, 9, 8], np.int64)
    results = []
    for fuse, n_threads in ((0, 1), (1, 1), (1, 2), (0, 2)):
        out = np.zeros((T * B, 60), np.float32)
        states = []
        for direction in range(2):
            w_ih, w_hh, w_hn, bias, bias_hn = q._packed[direction]
            h = np.full((B, 30), 0.5, np.float32)
            c = np.full((B, 30), -0.25, np.float32) if kind == "lstm" else None
            _quantized.forward_layer(int(q._shell._cell), x, w_ih, w_hh, w_hn, bias, bias_hn,
                                     lengths, h, c, out, 30 * direction, bool(direction),
                                     n_threads, fuse)
            states += [h, c]
        results.append((out, states))
    for out, states in results[1:]:
        assert np.array_equal(out, results[0][0])
        for got, want in zip(states, results[0][1]):
            assert got is None or np.array_equal(got, want)
    assert np.abs(results[0][0]).max() > 0


@pytest.mark.parametrize("precision", PRECISIONS)
def test_any_thread_count_gives_the_same_bits(precision):
    model = ln.LSTM(33, 70, num_layers=2, bidirectional=True, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((40, 11, 33)).astype(np.float32)
    outs = []
    for n_threads in (1, 2, 3):
        model.n_threads = n_threads
        outs.append(ln.quantize(model, precision)(x)[0])
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


# -- accuracy against float32 ---------------------------------------------------------------

STANDARD = {"A": (64, 25, 512, 512, 1), "B": (32, 150, 256, 256, 1),
            "C": (16, 50, 1024, 1024, 1), "D": (64, 50, 500, 500, 1),
            "E": (32, 50, 512, 512, 2), "F": (32, 100, 16, 64, 2), "S": (1, 1000, 1, 64, 1)}
BOUNDS = {"int8": 1e-2, "bfloat16": 4e-3}
# One layer fed N(0, 1) inputs directly (A-D): the int8 rounding of those inputs (a step
# of ~6/255 per row) is most of the error, 0.98-1.19e-2 over seeds 0-4 (the rounded
# inputs alone through the float32 model: 0.82-1.11e-2); a layer above another reads h
# in (-1, 1) and E's output is within 2e-3.
INT8_FIRST_LAYER_BOUND = 1.4e-2


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("config", list(STANDARD))
def test_accuracy_on_the_standard_configurations(config, precision):
    B, T, I, H, L = STANDARD[config]
    model = ln.LSTM(I, H, num_layers=L, seed=0).eval()
    x = np.random.default_rng(1).standard_normal((T, B, I)).astype(np.float32)
    error = np.abs(ln.quantize(model, precision)(x)[0] - model(x)[0]).max()
    bound = BOUNDS[precision]
    if precision == "int8" and config in "ABCD":
        bound = INT8_FIRST_LAYER_BOUND
    assert error <= bound, f"{config} {precision}: {error:.2e}"


# -- the models -------------------------------------------------------------------------------

@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_sequential_quantizes_layer_by_layer(precision):
    model = ln.Sequential(ln.LSTM(3, 16, batch_first=True, seed=0), ln.Dropout(0.3, seed=1),
                          ln.LastStep(batch_first=True), ln.Linear(16, 2, seed=2)).eval()
    q = ln.quantize(model, precision)
    assert [type(layer) for layer in q.layers] == [QuantizedLSTM, ln.Dropout, ln.LastStep,
                                                   QuantizedLinear]
    x = np.random.default_rng(0).standard_normal((6, 10, 3))
    lengths = np.array([10, 4, 7, 1, 10, 2])
    got, want = q(x, lengths=lengths), model(x, lengths=lengths)
    assert got.shape == want.shape == (6, 2) and got.dtype == np.float32
    assert np.abs(got - want).max() < BOUNDS[precision]
    assert not q.training and not model.layers[1].training


def test_float64_models_quantize_to_float32_in_and_out():
    model = ln.GRU(4, 8, dtype=np.float64, seed=0).eval()
    q = ln.quantize(model, "int8")
    x = np.random.default_rng(0).standard_normal((5, 3, 4))
    out, h = q(x)
    assert out.dtype == h.dtype == np.float32
    assert np.abs(out - model(x)[0]).max() < 1e-2
    assert model.dtype == np.float64   # the original is left as it was


def test_quantized_models_keep_the_float_layers_layouts():
    model = ln.RNN(4, 6, batch_first=True, seed=0).eval()
    q = ln.quantize(model, "bfloat16")
    assert isinstance(q, QuantizedRNN) and q.batch_first
    x = np.random.default_rng(0).standard_normal((3, 5, 4))
    out, h = q(x)
    assert out.shape == (3, 5, 6) and h.shape == (1, 3, 6)
    out1, h1 = q(x[0])                          # unbatched (T, I)
    assert out1.shape == (5, 6) and h1.shape == (1, 6)
    np.testing.assert_array_equal(out1, out[0])


def test_state_dict_holds_the_quantized_arrays():
    model = ln.GRU(5, 8, seed=0)
    q8, q16 = ln.quantize(model, "int8"), ln.quantize(model, "bfloat16")
    s8 = q8.state_dict()
    assert s8["weight_ih_l0"].dtype == np.int8 and s8["weight_ih_l0"].shape == (24, 5)
    assert s8["weight_hh_l0"].dtype == np.int8 and s8["weight_hh_l0_scale"].shape == (24,)
    assert s8["bias_hh_l0"].dtype == np.float32
    w = model.parameters()["weight_hh_l0"]
    back = s8["weight_hh_l0"] * s8["weight_hh_l0_scale"][:, None]
    assert np.abs(back - w).max() <= s8["weight_hh_l0_scale"].max() / 2 * 1.001
    s16 = q16.state_dict()
    assert s16["weight_hh_l0"].dtype == np.uint16 and "weight_hh_l0_scale" not in s16
    np.testing.assert_array_equal(s16["weight_hh_l0"], ref.bfloat16_bits(w))


# -- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("options,name", [({"proj_size": 4}, "proj_size"),
                                          ({"peepholes": True}, "peepholes"),
                                          ({"clip": 3.0}, "clip"),
                                          ({"input_forget": True}, "input_forget"),
                                          ({"layer_norm": True}, "layer_norm")])
def test_lstm_options_without_a_quantized_kernel_are_refused(options, name):
    with pytest.raises(ValueError, match=f"{name}=.*no quantized kernel"):
        ln.quantize(ln.LSTM(3, 8, **options), "int8")


def test_bad_arguments_are_refused():
    model = ln.LSTM(3, 8, seed=0)
    for precision in ("int4", "float16", None, 8):
        with pytest.raises(ValueError, match="precision must be one of 'int8', 'bfloat16'"):
            ln.quantize(model, precision)
    with pytest.raises(TypeError, match="LSTMCell has no quantized form"):
        ln.quantize(ln.LSTMCell(3, 8), "int8")


def test_quantized_models_are_inference_only():
    q = ln.quantize(ln.Sequential(ln.LSTM(3, 8, seed=0), ln.Linear(8, 1)), "int8")
    with pytest.raises(RuntimeError, match="for inference only"):
        q.train()
    with pytest.raises(RuntimeError, match="for inference only"):
        q.layers[0].backward(np.zeros((2, 1, 8)))
    q.eval()   # asking for what it is already is fine


def test_int8_refuses_non_finite_inputs():
    q = ln.quantize(ln.LSTM(3, 8, seed=0), "int8")
    x = np.zeros((4, 2, 3))
    x[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match="x holds a nan or inf"):
        q(x)
    with pytest.raises(ValueError, match="hx holds a nan or inf"):
        q(np.zeros((4, 2, 3)), (np.full((1, 2, 8), np.inf), np.zeros((1, 2, 8))))
    lin = ln.quantize(ln.Linear(3, 2), "int8")
    with pytest.raises(ValueError, match="x holds a nan or inf"):
        lin(np.array([[1.0, np.inf, 0.0]]))
    with pytest.raises(ValueError, match="3 features"):
        lin(np.zeros((2, 4)))


def test_non_finite_weights_are_refused():
    model = ln.Linear(3, 2)
    model.parameters()["weight"][0, 0] = np.nan
    with pytest.raises(ValueError, match="weights must be finite"):
        ln.quantize(model, "bfloat16")


def test_repr_names_the_precision():
    assert repr(ln.quantize(ln.LSTM(3, 8), "int8")) == \
        "QuantizedLSTM(LSTM(3, 8, dtype=float32), precision='int8')"
    assert isinstance(ln.quantize(ln.GRU(3, 8), "bfloat16"), QuantizedGRU)
