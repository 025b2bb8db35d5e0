"""lstm_native.keras against Keras 3 (torch backend): the same numbers both ways.

Keras runs its LSTM and GRU (reset_after=True) without a mask through torch's own
operations, exact in float64; its other paths (SimpleRNN, GRU reset_after=False, any
mask, Dense) multiply through `keras.ops.matmul`, which computes float64 in float32
outside TensorFlow (Keras' type promotion maps float64 to float32 there): those are
compared to float32's tolerance.
"""
import doctest
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

import lstm_native.keras as lk
from lstm_native import GRU, LSTM, RNN, Dropout, LastStep, Linear, Sequential
from lstm_native.keras import from_keras, to_keras

# Keras' torch backend converts tensors with np.array(x), which NumPy 2 warns about.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

N, T, I, H = 3, 6, 4, 5
LENGTHS = np.array([6, 3, 1])

#: Keras' layer of each kind, and whether Keras runs it through torch's own operations
#: (exact in float64; see the module docstring).
KINDS = {
    "lstm": (lambda **kw: keras.layers.LSTM(H, **kw), True),
    "gru": (lambda **kw: keras.layers.GRU(H, **kw), True),
    "gru-reset-before": (lambda **kw: keras.layers.GRU(H, reset_after=False, **kw), False),
    "rnn-tanh": (lambda **kw: keras.layers.SimpleRNN(H, **kw), False),
    "rnn-relu": (lambda **kw: keras.layers.SimpleRNN(H, activation="relu", **kw), False),
}


def tolerance(dtype, exact: bool = False) -> float:
    """Max abs difference allowed: float32 1e-5; float64 1e-12 where Keras computes in
    float64, float32's tolerance where it does not."""
    return 1e-12 if np.dtype(dtype) == np.float64 and exact else 1e-5


def numpy(a) -> np.ndarray:
    return keras.ops.convert_to_numpy(a)


def randomize(layer, seed: int = 0) -> None:
    """Give every weight of a built Keras layer or model a random value (Keras'
    biases start at zero, which would hide a misplaced bias)."""
    rng = np.random.default_rng(seed)
    for variable in layer.weights:
        variable.assign(rng.uniform(-0.6, 0.6, size=variable.shape))


def keras_layer(kind: str, bidirectional: bool, dtype, **kw):
    make, _ = KINDS[kind]
    layer = make(dtype=np.dtype(dtype).name, **kw)
    if bidirectional:
        layer = keras.layers.Bidirectional(layer, dtype=np.dtype(dtype).name)
    layer.build((None, None, I))
    randomize(layer)
    return layer


def inputs(dtype, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((N, T, I)).astype(dtype)


def final_h(state):
    return state[0] if isinstance(state, tuple) else state


def keras_states(outputs: list, cls) -> tuple:
    """Keras' returned states as our (h_n, c_n) or h_n: [h, c] per direction."""
    per_direction = 2 if cls is LSTM else 1
    states = outputs[1:]
    h = np.stack(states[0::per_direction])
    if cls is LSTM:
        return h, np.stack(states[1::per_direction])
    return h


def assert_states_close(ours, theirs, atol) -> None:
    ours = ours if isinstance(ours, tuple) else (ours,)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=0, atol=atol)


# -- single layers ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_layer_from_keras_and_back(kind, bidirectional, dtype):
    k = keras_layer(kind, bidirectional, dtype, return_sequences=True, return_state=True)
    x = inputs(dtype)
    expected = [numpy(a) for a in k(x)]
    model = from_keras(k).eval()
    cls = {"lstm": LSTM, "rnn-tanh": RNN, "rnn-relu": RNN}.get(kind, GRU)
    assert type(model) is cls and model.batch_first and model.bidirectional == bidirectional
    assert model.dtype == np.dtype(dtype)
    if cls is GRU:
        assert model.reset_after == (kind == "gru")
    if cls is RNN:
        assert model.nonlinearity == kind.split("-")[1]
    out, state = model(x)
    atol = tolerance(dtype, KINDS[kind][1])
    np.testing.assert_allclose(out, expected[0], rtol=0, atol=atol)
    assert_states_close(state, keras_states(expected, cls), atol)
    # Keras' return_sequences=False is our last step.
    last = keras_layer(kind, bidirectional, dtype)
    for a, b in zip(last.weights, k.weights):
        a.assign(b)
    picked = LastStep(batch_first=True, bidirectional=bidirectional)(out)
    np.testing.assert_allclose(picked, numpy(last(x)), rtol=0, atol=atol)

    # And back: the very same Keras weights.
    back = to_keras(model, return_state=True)
    assert type(back) is type(k)
    for a, b in zip(back.weights, k.weights):
        np.testing.assert_array_equal(numpy(a), numpy(b))


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("make", [
    lambda **kw: LSTM(I, H, seed=0, **kw),
    lambda **kw: LSTM(I, H, bias=False, seed=0, **kw),
    lambda **kw: GRU(I, H, seed=0, **kw),
    lambda **kw: GRU(I, H, reset_after=False, seed=0, **kw),
    lambda **kw: GRU(I, H, bias=False, seed=0, **kw),
    lambda **kw: RNN(I, H, nonlinearity="relu", seed=0, **kw),
], ids=["lstm", "lstm-no-bias", "gru", "gru-reset-before", "gru-no-bias", "rnn-relu"])
def test_layer_to_keras_and_back(make, bidirectional):
    # torch's initialisation: b_hh is not zero, so Keras' one bias is the sum.
    model = make(bidirectional=bidirectional, batch_first=True).eval()
    x = inputs(np.float32)
    out, state = model(x)
    k = to_keras(model, return_state=True)
    got = [numpy(a) for a in k(x)]
    np.testing.assert_allclose(got[0], out, rtol=0, atol=1e-5)
    assert_states_close(state, keras_states(got, type(model)), 1e-5)
    again = from_keras(k).eval()
    assert again.get_config() == {**model.get_config(), "init": "keras"}
    np.testing.assert_allclose(again(x)[0], out, rtol=0, atol=1e-5)


def test_stacked_layer_to_keras_is_a_sequential_of_layers():
    model = LSTM(I, H, num_layers=3, bidirectional=True, dropout=0.25, seed=0).eval()
    x = inputs(np.float64)
    k = to_keras(model)
    kinds = [type(layer).__name__ for layer in k.layers]
    assert kinds == ["Bidirectional", "Dropout", "Bidirectional", "Dropout", "Bidirectional"]
    # Keras is batch-major whatever the model's layout.
    out, _ = model(x.transpose(1, 0, 2))
    np.testing.assert_allclose(numpy(k(x)), out.transpose(1, 0, 2), rtol=0, atol=1e-5)
    last = to_keras(model, return_sequences=False)
    np.testing.assert_allclose(numpy(last(x)), LastStep(bidirectional=True)(out),
                               rtol=0, atol=1e-5)


# -- masks --------------------------------------------------------------------------------

@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_mask_is_lengths_at_valid_steps(kind, bidirectional):
    k = keras_layer(kind, bidirectional, np.float32, return_sequences=True,
                    return_state=True)
    x = inputs(np.float32)
    mask = np.arange(T) < LENGTHS[:, None]
    expected = [numpy(a) for a in k(x, mask=mask)]
    model = from_keras(k).eval()
    out, state = model(x, lengths=LENGTHS)
    for n, length in enumerate(LENGTHS):
        np.testing.assert_allclose(out[n, :length], expected[0][n, :length], rtol=0, atol=1e-5)
        # Ours are zero past the length; Keras carries the last valid output on
        # (Bidirectional makes it zero: zero_output_for_mask).
        assert not out[n, length:].any()
        carried = 0 if bidirectional else expected[0][n, length - 1]
        np.testing.assert_array_equal(expected[0][n, length:],
                                      np.broadcast_to(carried, expected[0][n, length:].shape))
    assert_states_close(state, keras_states(expected, type(model)), 1e-5)


# -- Sequential models --------------------------------------------------------------------

def keras_sequential(*layers, dtype="float32"):
    model = keras.Sequential([keras.Input((None, I), dtype=dtype), *layers])
    randomize(model, seed=2)
    return model


def test_sequential_from_keras_stacks_and_masks():
    k = keras_sequential(
        keras.layers.Masking(0.0),
        keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True)),
        keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True)),
        keras.layers.Dropout(0.3),
        keras.layers.GRU(H, reset_after=False),
        keras.layers.Dense(2))
    model = from_keras(k).eval()
    assert [type(layer) for layer in model] == [LSTM, Dropout, GRU, LastStep, Linear]
    assert model[0].num_layers == 2 and model[0].bidirectional
    assert model[1].p == 0.3 and not model[2].reset_after and model[3].batch_first
    x = inputs(np.float32)
    np.testing.assert_allclose(model(x), numpy(k(x)), rtol=0, atol=1e-5)
    # Right padding with zeros is Masking's mask, our lengths.
    x[np.arange(T) >= LENGTHS[:, None]] = 0
    np.testing.assert_allclose(model(x, lengths=LENGTHS), numpy(k(x)), rtol=0, atol=1e-5)


def test_sequential_to_keras_and_back():
    model = Sequential(LSTM(I, H, num_layers=2, dropout=0.1, seed=0),  # time-major
                       Sequential(RNN(H, H, seed=1), Dropout(0.2)),
                       LastStep(), Linear(H, 3, seed=2), Linear(3, 1, bias=False, seed=3))
    model.eval()
    x = inputs(np.float32)
    expected = model(x.transpose(1, 0, 2))
    k = to_keras(model)
    assert [type(layer).__name__ for layer in k.layers] == \
        ["LSTM", "Dropout", "LSTM", "SimpleRNN", "Dropout", "Dense", "Dense"]
    assert [getattr(layer, "return_sequences", None) for layer in k.layers[:4]] == \
        [True, None, True, False]
    np.testing.assert_allclose(numpy(k(x)), expected, rtol=0, atol=1e-5)
    again = from_keras(k).eval()
    assert [type(layer) for layer in again] == [LSTM, Dropout, LSTM, RNN, LastStep, Dropout,
                                                Linear, Linear]
    np.testing.assert_allclose(again(x), expected, rtol=0, atol=1e-5)


def test_sequential_round_trip_from_keras_keeps_the_weights():
    k = keras_sequential(keras.layers.GRU(H, return_sequences=True, dtype="float64"),
                         keras.layers.GRU(H, dtype="float64"),
                         keras.layers.Dense(2, dtype="float64"), dtype="float64")
    model = from_keras(k)
    assert [type(layer) for layer in model] == [GRU, LastStep, Linear]
    assert model[0].num_layers == 2 and model.dtype == np.float64
    back = to_keras(model)
    for a, b in zip(back.weights, k.weights):
        np.testing.assert_array_equal(numpy(a), numpy(b))


def test_float64_sequential_to_keras_stays_float64():
    model = Sequential(GRU(I, H, batch_first=True, dtype=np.float64, seed=0), Dropout(0.5),
                       LastStep(batch_first=True), Linear(H, 2, dtype=np.float64, seed=1))
    model.eval()
    k = to_keras(model)
    x = inputs(np.float64)
    got = k(x)
    assert all(layer.dtype_policy.name == "float64" for layer in k.layers)
    assert numpy(got).dtype == np.float64
    np.testing.assert_allclose(numpy(got), model(x), rtol=0, atol=1e-5)


def test_bidirectional_last_step():
    k = keras_sequential(keras.layers.Masking(0.0),
                         keras.layers.Bidirectional(keras.layers.SimpleRNN(H)),
                         keras.layers.Dense(1))
    model = from_keras(k).eval()
    assert [type(layer) for layer in model] == [RNN, LastStep, Linear]
    assert model[1].bidirectional
    x = inputs(np.float32)
    np.testing.assert_allclose(model(x), numpy(k(x)), rtol=0, atol=1e-5)
    np.testing.assert_allclose(numpy(to_keras(model)(x)), model(x), rtol=0, atol=1e-5)
    # Each direction's final output: the forward one at the last valid step.
    x[np.arange(T) >= LENGTHS[:, None]] = 0
    np.testing.assert_allclose(model(x, lengths=LENGTHS), numpy(k(x)), rtol=0, atol=1e-5)


def test_stateful_sequential_from_keras():
    k = keras.Sequential([keras.Input(batch_shape=(N, None, I)),
                          keras.layers.LSTM(H, stateful=True, return_sequences=True),
                          keras.layers.Dense(1)])
    randomize(k)
    model = from_keras(k).eval()
    assert model.stateful
    x = inputs(np.float32)
    for chunk in (x[:, :4], x[:, 4:]):
        np.testing.assert_allclose(model(chunk), numpy(k(chunk)), rtol=0, atol=1e-5)


def test_converted_layers_and_models_alone():
    dense = keras.layers.Dense(3, dtype="float64")
    dense.build((None, I))
    randomize(dense)
    linear = from_keras(dense)
    x = inputs(np.float64)[:, 0]
    np.testing.assert_allclose(linear(x), numpy(dense(x)), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(numpy(to_keras(linear).kernel), numpy(dense.kernel))
    assert from_keras(keras.layers.Dropout(0.4)).p == 0.4
    assert to_keras(Dropout(0.4)).rate == 0.4


def test_docstring_examples_run_with_keras():
    for fn in (from_keras, to_keras):
        doc = fn.__doc__.replace("# doctest: +SKIP", "")
        test = doctest.DocTestParser().get_doctest(doc, dict(vars(lk)), fn.__name__, None, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        report = []
        runner.run(test, out=report.append)
        assert runner.failures == 0 and runner.tries > 5, "".join(report)


# -- what does not convert ----------------------------------------------------------------

def built(layer, shape=(None, None, I)):
    layer.build(shape)
    return layer


def functional_model():
    x = keras.Input((None, I))
    return keras.Model(x, keras.layers.LSTM(H)(x))


FROM_KERAS_ERRORS = [
    (lambda: built(keras.layers.LSTM(H, activation="relu")), ValueError, "activation='relu'"),
    (lambda: built(keras.layers.GRU(H, recurrent_activation="hard_sigmoid")), ValueError,
     "recurrent_activation='hard_sigmoid'"),
    (lambda: built(keras.layers.SimpleRNN(H, activation="sigmoid")), ValueError,
     "'tanh' or 'relu'"),
    (lambda: built(keras.layers.LSTM(H, go_backwards=True)), ValueError, "go_backwards"),
    (lambda: keras.layers.LSTM(H), ValueError, "not built"),
    (lambda: built(keras.layers.Bidirectional(keras.layers.LSTM(H), merge_mode="sum")),
     ValueError, "merge_mode='sum'"),
    (lambda: built(keras.layers.Bidirectional(
        keras.layers.GRU(H), backward_layer=keras.layers.GRU(H, reset_after=False,
                                                             go_backwards=True))),
     ValueError, "backward layer unlike"),
    (lambda: built(keras.layers.LSTM(H, dtype="mixed_float16")), ValueError, "mixed_float16"),
    (lambda: built(keras.layers.Dense(2, activation="relu"), (None, I)), ValueError,
     "activation 'relu'"),
    (lambda: keras.layers.Dropout(0.5, noise_shape=(None, 1, I)), ValueError, "noise_shape"),
    (lambda: keras_sequential(keras.layers.Conv1D(2, 3)), TypeError, r"\(Conv1D\)"),
    (lambda: keras_sequential(keras.layers.LSTM(H, return_state=True)), ValueError,
     "return_state"),
    (lambda: keras.Sequential([keras.Input(batch_shape=(N, None, I)),
                               keras.layers.LSTM(H, stateful=True, return_sequences=True),
                               keras.layers.LSTM(H)]), ValueError, "stateful and stateless"),
    (lambda: functional_model(), TypeError, "Functional"),
    (lambda: built(keras.layers.Conv1D(2, 3)), TypeError, "Conv1D"),
    (lambda: "LSTM", TypeError, "str"),
]


@pytest.mark.parametrize("make, error, match", FROM_KERAS_ERRORS)
def test_from_keras_refuses(make, error, match):
    with pytest.raises(error, match=match):
        from_keras(make())


TO_KERAS_ERRORS = [
    (lambda: LSTM(I, H, proj_size=2), ValueError, "proj_size=2"),
    (lambda: LSTM(I, H, peepholes=True), ValueError, "peepholes"),
    (lambda: LSTM(I, H, clip=3.0), ValueError, "clip=3.0"),
    (lambda: LSTM(I, H, input_forget=True), ValueError, "input_forget"),
    (lambda: LSTM(I, H, layer_norm=True), ValueError, "layer_norm"),
    (lambda: LastStep(), TypeError, "LastStep alone"),
    (lambda: Sequential(Linear(I, H), LastStep()), ValueError, "must follow a recurrent"),
    (lambda: Sequential(LSTM(I, H, bidirectional=True), LastStep()), ValueError,
     "bidirectional=False after"),
    (lambda: Sequential(LSTM(I, H), LastStep(), LastStep()), ValueError,
     "must follow a recurrent"),
    (lambda: Sequential(LSTM(I, H), stateful=True), ValueError, "stateful"),
    (lambda: Sequential(Dropout(0.1)), ValueError, "input size"),
    (lambda: object(), TypeError, "lstm_native Module"),
]


@pytest.mark.parametrize("make, error, match", TO_KERAS_ERRORS)
def test_to_keras_refuses(make, error, match):
    with pytest.raises(error, match=match):
        to_keras(make())


def test_to_keras_refuses_states_of_a_stack():
    with pytest.raises(ValueError, match="num_layers=2"):
        to_keras(GRU(I, H, num_layers=2), return_state=True)


def test_import_needs_no_keras_and_a_call_says_what_is_missing():
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed: Keras imports with it")
    # A backend that is not installed: Keras fails to import.
    code = ("import lstm_native.keras as lk\n"
            "try:\n    lk.to_keras(None)\n"
            "except ImportError as e:\n    print(e)\n")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=120, check=True)
    assert "lstm_native.keras needs Keras 3" in result.stdout
