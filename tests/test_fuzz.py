"""Property-based fuzzing of the public API with hypothesis.

The property, for every entry point: called with arbitrary arguments it returns or raises
one of the documented exception types (TypeError, ValueError and its subclasses,
RuntimeError; KeyError where `load_state_dict` documents it; FloatingPointError from
`fit` on a diverging loss), and it never crashes or hangs. Where a call succeeds, cheap
oracles check that the result is not silently wrong (shapes, finiteness, round trips,
a failed load leaving the model as it was).

The runs are deterministic and bounded, for CI: the "ci" profile registered below
derandomizes the examples, writes no example database and prints no reproduction blobs;
each test sets its own number of examples, one to one and a half minutes in all on two
cores. Each example runs under `time_guard`, so that a hang fails the test instead of
blocking CI (and hypothesis shrinks a failure for at most five minutes). Every call is
tallied by outcome (returned, or the exception's type) in `TALLY`, which the last test
of the module prints.

Sizes that make a *valid* model or data set are drawn small; huge values are passed only
where they must be refused.
"""
from __future__ import annotations

import collections
import contextlib
import faulthandler
import fractions
import math
import signal
import zipfile

import numpy as np
import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import lstm_native as ln  # noqa: E402
from lstm_native import losses, optim, schedules  # noqa: E402

# NaN, inf and 1e300 are fed on purpose: NumPy's warnings about them are expected.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

settings.register_profile(
    "ci",
    derandomize=True,        # the same examples on every run and machine
    database=None,           # nothing written next to the checkout
    print_blob=False,
    deadline=None,           # time is bounded by time_guard, not per-example deadlines
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
CI = settings.get_profile("ci")

#: Seconds one example may take before it counts as a hang (the slowest valid example,
#: a few epochs of `fit`, takes well under one second).
EXAMPLE_SECONDS = 20
#: A hang inside a kernel holds the GIL-free C code where no Python signal handler
#: runs: after this long faulthandler dumps every thread's stack and ends the process.
HARD_SECONDS = 120

#: (target, outcome) -> count over the session; outcome is "ok" or an exception type.
TALLY: collections.Counter = collections.Counter()
#: test name -> examples run.
EXAMPLES: collections.Counter = collections.Counter()

DOCUMENTED = (TypeError, ValueError, RuntimeError)


class ExampleTimeout(Exception):
    """An example ran longer than EXAMPLE_SECONDS."""


@contextlib.contextmanager
def time_guard(test: str, seconds: float = EXAMPLE_SECONDS):
    """Run one example of `test` under a SIGALRM timer and a faulthandler backstop."""
    EXAMPLES[test] += 1

    def on_alarm(signum, frame):
        raise ExampleTimeout(f"{test}: one example ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    faulthandler.dump_traceback_later(HARD_SECONDS, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


class Outcome:
    """What `attempt` saw: `ok` and the `value` returned, or the `error` raised."""

    def __init__(self, value=None, error: BaseException | None = None):
        self.value, self.error = value, error

    @property
    def ok(self) -> bool:
        return self.error is None


def attempt(target: str, fn, *args, allowed: tuple = DOCUMENTED, **kwargs) -> Outcome:
    """Call fn(*args, **kwargs): its result, or the documented exception it raised.

    Any other exception fails the example, naming `target` and the exception's type.
    """
    try:
        value = fn(*args, **kwargs)
    except ExampleTimeout:
        raise
    except allowed as e:
        TALLY[target, type(e).__name__] += 1
        return Outcome(error=e)
    except Exception as e:
        TALLY[target, type(e).__name__] += 1
        raise AssertionError(f"{target} raised an undocumented {type(e).__name__}: {e}") from e
    TALLY[target, "ok"] += 1
    return Outcome(value)


# -------------------------------------------------------------------------------------
# Strategies
# -------------------------------------------------------------------------------------

#: Ints so large that any bound on sizes and counts must refuse them.
HUGE_INTS = (2**31, 2**32 + 1, 2**40, 2**63 - 1, 2**63, 2**64 + 1, 10**30)


def _is_huge(value) -> bool:
    return (isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
            and int(value) >= 2**31)


#: Values of every kind an argument may be given by mistake.
WILD_SCALARS = st.sampled_from([
    None, True, False, 0, -1, -7, 0.0, -0.0, 0.5, 1.5, -2.5, 1e300, math.nan, math.inf,
    -math.inf, "", "3", "float32", "tanh", "mse", b"3", 1 + 2j, fractions.Fraction(3, 2),
    np.int64(2), np.int8(-3), np.uint64(2**64 - 1), np.float32(2.0), np.float64(math.nan),
    np.bool_(True), np.array(3), np.array([2]), [2], (2,), (), {}, {"a": 1}, object(),
    np.float32, np.float64, np.int32, np.float16, np.complex64, "f8", "float16", object,
    np.dtype("f4"), np.dtype(">f8"), np.dtype([("a", "f8")]), int, float, str, len,
    -(2**63), -(10**30),
])
WILD_HUGE = st.sampled_from(HUGE_INTS)
WILD = st.one_of(WILD_SCALARS, WILD_HUGE, st.integers(-5, 0),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4))
#: As WILD but no huge positive int: for arguments where a huge value is valid and
#: would make a run absurdly long or large (epochs, lengths of generated series).
WILD_NOT_HUGE = WILD.filter(lambda v: not _is_huge(v))


def small_int(lo: int = 1, hi: int = 3):
    """A small valid int, as a Python or a NumPy integer."""
    return st.integers(lo, hi).flatmap(lambda n: st.sampled_from([n, np.int64(n), np.int32(n)]))


def weighted(*options):
    """One of the (weight, strategy) options, drawn with those weights.

    st.one_of would not do: it flattens nested one_ofs into one list of branches, so a
    WILD among them would count five times.
    """
    index = [i for i, (weight, _) in enumerate(options) for _ in range(weight)]
    return st.sampled_from(index).flatmap(lambda i: options[i][1])


def maybe(valid, wild=WILD):
    """Mostly (3 in 4) a valid value, else a wild one."""
    return weighted((3, valid), (1, wild))


FLOAT_EDGES = [0.0, -0.0, 1.0, -1.0, 1e300, -1e300, 1e-310, 3.5e38, 65504.0, math.nan,
               math.inf, -math.inf]
FINITE = st.floats(-3, 3, allow_nan=False, allow_infinity=False)
ANY_FLOAT = st.one_of(FINITE, st.sampled_from(FLOAT_EDGES),
                      st.floats(allow_nan=True, allow_infinity=True))

DTYPES = ["float32", "float64", "float16", "int64", "int8", "uint64", "bool", "complex128",
          "object", "U3", "datetime64[s]", ">f8", "<f4"]
LAYOUTS = ["C", "F", "reversed", "strided", "readonly", "broadcast", "unaligned", "list",
           "ragged", "tuple"]


def _cast(values: np.ndarray, dtype: str) -> np.ndarray:
    """float64 values in `dtype`, whatever that does to them (the point is the dtype)."""
    dt = np.dtype(dtype)
    with np.errstate(all="ignore"):
        if dt.kind in "iu":
            info = np.iinfo(dt)
            return np.clip(np.nan_to_num(values), info.min, info.max).astype(dt)
        if dt.kind == "b":
            return values > 0
        if dt.kind == "c":
            return values.astype(dt) + 1j
        if dt.kind == "M":
            return np.nan_to_num(values, posinf=0, neginf=0).astype(np.int64).astype(dt)
        return values.astype(dt)


def _layout(a: np.ndarray, layout: str):
    """The same values (mostly) in another memory layout or container."""
    if a.ndim == 0 or a.size == 0:
        return a.tolist() if layout in ("list", "ragged") else a
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "reversed":
        return np.flip(a, axis=0)
    if layout == "strided":
        return np.repeat(a, 2, axis=-1)[..., ::2]
    if layout == "readonly":
        a = a.copy()
        a.setflags(write=False)
        return a
    if layout == "broadcast":
        return np.broadcast_to(a[..., :1], a.shape)
    if layout == "unaligned" and a.dtype.kind in "fiuc" and a.dtype.itemsize > 1:
        raw = np.zeros(a.nbytes + 1, np.uint8)[1:]
        out = raw.view(a.dtype).reshape(a.shape)
        out[...] = a
        return out
    if layout == "list":
        return a.tolist()
    if layout == "ragged" and a.ndim >= 2:
        rows = a.tolist()
        rows[0] = rows[0][:-1]
        return rows
    if layout == "tuple":
        return tuple(a.tolist())
    return a


@st.composite
def arrays(draw, shape, dtypes=DTYPES, values=ANY_FLOAT, layouts=LAYOUTS):
    """An array (or nested list) of the given shape, any dtype, layout and values."""
    shape = tuple(draw(shape) if isinstance(shape, st.SearchStrategy) else shape)
    a = draw(hnp.arrays(np.float64, shape, elements=values))
    dtype = draw(st.sampled_from(dtypes))
    return _layout(_cast(a, dtype), draw(st.sampled_from(layouts)))


def float_arrays(shape, values=FINITE):
    """A well-formed float array: the valid case, in any layout."""
    return arrays(shape, dtypes=["float32", "float64"], values=values,
                  layouts=["C", "F", "reversed", "strided", "readonly", "unaligned"])


@st.composite
def near_shapes(draw, shape):
    """`shape`, or a shape close to it: a dimension changed, dropped, added or zeroed."""
    shape = list(shape)
    how = draw(st.sampled_from(["same", "same", "same", "change", "drop", "add", "zero",
                                "scalar"]))
    if how == "same" or not shape:
        return tuple(shape)
    i = draw(st.integers(0, len(shape) - 1))
    if how == "change":
        shape[i] = draw(st.integers(0, 5))
    elif how == "drop":
        del shape[i]
    elif how == "add":
        shape.insert(i, draw(st.integers(1, 2)))
    elif how == "zero":
        shape[i] = 0
    else:
        shape = []
    return tuple(shape)


def any_array_near(shape):
    """Mostly (3 in 6) a valid float array of `shape`; else non-finite values, any dtype,
    a near shape, any layout, or anything."""
    return weighted((3, float_arrays(shape)), (1, float_arrays(shape, ANY_FLOAT)),
                    (1, arrays(near_shapes(shape))), (1, WILD))


# -------------------------------------------------------------------------------------
# Oracles
# -------------------------------------------------------------------------------------

def finite_in(a, dtype) -> bool:
    """Whether a (array_like of numbers) is finite once converted to `dtype`."""
    with np.errstate(all="ignore"):
        return bool(np.all(np.isfinite(np.asarray(a, dtype=np.float64).astype(dtype))))


def is_float_array(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64)


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)


# -------------------------------------------------------------------------------------
# Constructors
# -------------------------------------------------------------------------------------

RECURRENT = [ln.LSTM, ln.RNN, ln.GRU]
#: Training mode (3 in 4) or eval mode.
TRAINING = st.sampled_from([True, True, True, False])
DTYPE_ARG = st.sampled_from([np.float32, np.float64, "float32", "float64", None,
                             np.dtype("f8")])
BOOL_ARG = st.sampled_from([True, False, np.bool_(True)])
SEED_ARG = st.one_of(st.none(), st.integers(0, 2**70))
THREADS_ARG = st.one_of(st.none(), st.integers(1, 4), st.integers(5, 1024))
#: Thread counts to refuse, besides WILD's: above the documented bound of 1024.
WILD_THREADS = st.one_of(WILD, st.integers(1025, 60000))


@st.composite
def arguments(draw, *, optional: bool = False, wild: dict | None = None, **valid):
    """Keyword arguments, each drawn from its valid strategy except a few (none, one,
    two or all of them), drawn from WILD (or `wild[name]`): so that most refusals have
    a single cause. With `optional`, valid arguments may be left out (their default)."""
    names = sorted(valid)
    n_wild = draw(st.sampled_from([0, 0, 1, 1, 1, 2, len(names)]))
    chosen = set(draw(st.permutations(names))[:n_wild])
    kwargs = {}
    for k in names:
        if k in chosen:
            kwargs[k] = draw((wild or {}).get(k, WILD), k)
        elif not optional or draw(st.booleans()):
            kwargs[k] = draw(valid[k], k)
    return kwargs


@pytest.mark.parametrize("cls", RECURRENT, ids=lambda c: c.__name__)
@settings(CI, max_examples=200)
@given(data=st.data())
def test_recurrent_constructor(cls, data):
    extra = {"nonlinearity": st.sampled_from(["tanh", "relu"])} if cls is ln.RNN else {}
    if cls is ln.LSTM:
        extra = {"proj_size": small_int(0, 3)}   # >= hidden_size: torch's ValueError
    kwargs = data.draw(arguments(
        input_size=small_int(), hidden_size=small_int(), num_layers=small_int(1, 2),
        bias=BOOL_ARG, batch_first=BOOL_ARG, bidirectional=BOOL_ARG, dtype=DTYPE_ARG,
        seed=SEED_ARG, n_threads=THREADS_ARG, wild={"n_threads": WILD_THREADS}, **extra))
    target = f"{cls.__name__}()"
    with time_guard("test_recurrent_constructor"):
        made = attempt(target, cls, **kwargs)
        if not made.ok:
            return
        m = made.value
        assert (m.input_size, m.hidden_size, m.num_layers) == (
            kwargs["input_size"], kwargs["hidden_size"], kwargs["num_layers"])
        assert all(type(v) is int for v in (m.input_size, m.hidden_size, m.num_layers))
        assert m.dtype in (np.float32, np.float64)
        # The model it built runs, and its config rebuilds it.
        out = attempt(f"{target}.forward", m, np.ones((2, 3, m.input_size), m.dtype)).value[0]
        width = getattr(m, "proj_size", 0) or m.hidden_size
        assert out.shape == (2, 3, m.num_directions * width)
        assert np.all(np.isfinite(out))
        assert type(m)(**m.get_config()).state_dict().keys() == m.state_dict().keys()


@settings(CI, max_examples=120)
@given(kwargs=arguments(input_size=small_int(), hidden_size=small_int(), bias=BOOL_ARG,
                        dtype=DTYPE_ARG, seed=SEED_ARG, n_threads=THREADS_ARG,
                        wild={"n_threads": WILD_THREADS}))
def test_cell_constructor(kwargs):
    with time_guard("test_cell_constructor"):
        made = attempt("LSTMCell()", ln.LSTMCell, **kwargs)
        if made.ok:
            cell = made.value
            h, c = attempt("LSTMCell.forward", cell, np.ones(cell.input_size)).value
            assert h.shape == c.shape == (cell.hidden_size,)


LAYERS = {
    "Linear": (ln.Linear, dict(in_features=small_int(), out_features=small_int(),
                               bias=BOOL_ARG, dtype=DTYPE_ARG, seed=SEED_ARG)),
    "Dropout": (ln.Dropout, dict(p=st.floats(0, 0.99), seed=SEED_ARG)),
    "LastStep": (ln.LastStep, dict(batch_first=BOOL_ARG, bidirectional=BOOL_ARG)),
}


@settings(CI, max_examples=200)
@given(data=st.data(), which=st.sampled_from(sorted(LAYERS)))
def test_layer_constructors(data, which):
    cls, valid = LAYERS[which]
    kwargs = data.draw(arguments(**valid))
    with time_guard("test_layer_constructors"):
        made = attempt(f"{which}()", cls, **kwargs)
        if made.ok and which == "Linear":
            y = attempt("Linear.forward", made.value, np.ones((2, made.value.in_features)))
            assert y.value.shape == (2, made.value.out_features)
        if made.ok and which == "Dropout":
            assert 0 <= made.value.p < 1


def _small_layers():
    return st.sampled_from([
        lambda: ln.LSTM(2, 3, batch_first=True, seed=0),
        lambda: ln.RNN(2, 3, seed=0, dtype=np.float64),
        lambda: ln.LSTM(2, 3, bidirectional=True, seed=0),
        lambda: ln.Linear(3, 2, seed=0),
        lambda: ln.Linear(3, 2, seed=0, dtype=np.float64),
        lambda: ln.Dropout(0.2, seed=0),
        lambda: ln.LastStep(),
        lambda: ln.LastStep(batch_first=True),
        lambda: ln.LSTMCell(2, 3),
        lambda: ln.Sequential(ln.Linear(3, 3, seed=0)),
    ]).map(lambda make: make())


@settings(CI, max_examples=150)
@given(layers=st.lists(maybe(_small_layers()), max_size=4),
       repeat=st.booleans(), stateful=maybe(BOOL_ARG))
def test_sequential_constructor(layers, repeat, stateful):
    if repeat and layers:
        layers = layers + layers[:1]
    with time_guard("test_sequential_constructor"):
        made = attempt("Sequential()", ln.Sequential, *layers, stateful=stateful)
        if made.ok:
            seq = made.value
            assert len(seq) == len(layers)
            assert set(seq.state_dict()) == set(seq.grads)


# -------------------------------------------------------------------------------------
# LSTM / RNN forward and backward
# -------------------------------------------------------------------------------------

@st.composite
def recurrent_models(draw):
    cls = draw(st.sampled_from(RECURRENT))
    kwargs = dict(num_layers=draw(st.integers(1, 2)), batch_first=draw(st.booleans()),
                  bidirectional=draw(st.booleans()), bias=draw(st.booleans()),
                  dtype=draw(st.sampled_from([np.float32, np.float64])), seed=0,
                  n_threads=draw(st.sampled_from([None, 1, 2, 64])))
    if cls is ln.RNN:
        kwargs["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    hidden_size = draw(st.integers(1, 3))
    if draw(st.booleans()):
        kwargs.update(input_dropout=draw(st.sampled_from([0.0, 0.3, 1.0])),
                      recurrent_dropout=draw(st.sampled_from([0.0, 0.5, 1.0])))
    if cls is ln.LSTM:
        kwargs["proj_size"] = draw(st.integers(0, hidden_size - 1))
        kwargs.update(draw(st.sampled_from([
            {}, dict(peepholes=True), dict(clip=0.5, input_forget=True),
            dict(peepholes=True, clip=3.0, input_forget=True), dict(layer_norm=True)])))
    return cls(draw(st.integers(1, 3)), hidden_size, **kwargs)


def state_sizes(model) -> tuple:
    """The widths of the model's states: h (P with a projection, else H), and c (H)."""
    H = model.hidden_size
    if isinstance(model, ln.LSTM):
        return (model.proj_size or H, H)
    return (H,)


def state_strategy(model, N: int, batched: bool):
    """hx / dhx for `model`: mostly of the right shape, else anything."""
    DL = model.num_directions * model.num_layers
    shapes = [(DL, N, size) if batched else (DL, size) for size in state_sizes(model)]
    one = any_array_near(shapes[0])
    if isinstance(model, ln.LSTM):
        valid = st.tuples(float_arrays(shapes[0]), float_arrays(shapes[1]))
        wild = st.one_of(st.tuples(one, any_array_near(shapes[1])), st.lists(one, max_size=3),
                         one, WILD)
    else:
        valid = float_arrays(shapes[0])
        wild = st.one_of(one, st.tuples(one, one), WILD)
    return weighted((1, st.none()), (3, valid), (1, wild))


def lengths_strategy(N: int, T: int):
    valid = st.lists(st.integers(1, T), min_size=N, max_size=N).map(np.array)
    wild = st.one_of(
        st.lists(st.integers(-3, T + 3), min_size=N, max_size=N),
        st.lists(st.integers(1, T), min_size=0, max_size=N + 2),
        st.lists(st.floats(0, T + 1), min_size=N, max_size=N),
        st.lists(st.sampled_from(HUGE_INTS + (-(2**63),)), min_size=N, max_size=N)
        .map(lambda v: np.array(v, dtype=object if max(v) >= 2**64 else None)),
        arrays(near_shapes((N,)), values=st.floats(-2, T + 2)),
        WILD)
    return weighted((2, st.none()), (2, valid), (1, wild))


@settings(CI, max_examples=500)
@given(data=st.data())
def test_recurrent_forward_backward(data):
    model = data.draw(recurrent_models(), "model")
    T, N = data.draw(st.integers(1, 4), "T"), data.draw(st.integers(1, 3), "N")
    batched = data.draw(st.booleans(), "batched")
    I = model.input_size
    shape = ((N, T, I) if model.batch_first else (T, N, I)) if batched else (T, I)
    x = data.draw(any_array_near(shape), "x")
    hx = data.draw(state_strategy(model, N, batched), "hx")
    lengths = data.draw(lengths_strategy(N if batched else 1, T), "lengths")
    training = data.draw(TRAINING, "training")
    model.train(training)
    name = type(model).__name__
    with time_guard("test_recurrent_forward_backward"):
        fwd = attempt(f"{name}.forward", model, x, hx=hx, lengths=lengths)
        if not fwd.ok:
            return
        out, state = fwd.value
        D = model.num_directions
        xa = np.asarray(x)
        # The layout x really had (the draw may have dropped or added an axis).
        batched = xa.ndim == 3
        T, N = (xa.shape[:2][::-1] if model.batch_first else xa.shape[:2]) if batched else (
            xa.shape[0], 1)
        sizes = state_sizes(model)
        assert out.shape == xa.shape[:-1] + (D * sizes[0],) and out.dtype == model.dtype
        states = state if isinstance(state, tuple) else (state,)
        assert len(states) == (2 if name == "LSTM" else 1)
        DL = D * model.num_layers
        assert [s.shape for s in states] == [(DL, N, size) if batched else (DL, size)
                                             for size in sizes]
        hx_arrays = [] if hx is None else (list(hx) if isinstance(hx, tuple) else [hx])
        if finite_in(xa, model.dtype) and all(finite_in(h, model.dtype) for h in hx_arrays):
            assert np.all(np.isfinite(out)), "finite inputs gave a non-finite output"
        if lengths is not None and batched:
            # Outputs past each sequence's length are zero.
            seq = out.transpose(1, 0, 2) if model.batch_first else out
            steps = np.arange(T)[:, None] >= np.asarray(lengths)[None, :]
            assert np.all(seq[steps] == 0)

        dout = data.draw(any_array_near(out.shape), "dout")
        dhx = data.draw(state_strategy(model, N, batched), "dhx")
        input_grad = data.draw(maybe(st.booleans()), "input_grad")
        bwd = attempt(f"{name}.backward", model.backward, dout, dhx, input_grad=input_grad)
        if not training:
            assert not bwd.ok and isinstance(bwd.error, RuntimeError)
        if bwd.ok:
            dx, _ = bwd.value
            assert dx is None or dx.shape == xa.shape
            again = attempt(f"{name}.backward", model.backward, dout, dhx)
            assert isinstance(again.error, RuntimeError), "a forward back-propagated twice"


@settings(CI, max_examples=200)
@given(data=st.data())
def test_cell_forward_backward(data):
    cell = ln.LSTMCell(data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)),
                       bias=data.draw(st.booleans()),
                       dtype=data.draw(st.sampled_from([np.float32, np.float64])), seed=0)
    cell.train(data.draw(TRAINING, "training"))
    N = data.draw(st.integers(1, 3), "N")
    batched = data.draw(st.booleans(), "batched")
    x = data.draw(any_array_near((N, cell.input_size) if batched else (cell.input_size,)),
                  "x")
    sshape = (N, cell.hidden_size) if batched else (cell.hidden_size,)
    hx = data.draw(weighted((1, st.none()),
                            (3, st.tuples(float_arrays(sshape), float_arrays(sshape))),
                            (1, st.tuples(any_array_near(sshape), any_array_near(sshape))),
                            (1, WILD)), "hx")
    with time_guard("test_cell_forward_backward"):
        fwd = attempt("LSTMCell.forward", cell, x, hx)
        if not fwd.ok:
            return
        h, c = fwd.value
        assert h.shape == c.shape == sshape
        dh = data.draw(any_array_near(sshape), "dh")
        dc = data.draw(st.one_of(st.none(), any_array_near(sshape)), "dc")
        bwd = attempt("LSTMCell.backward", cell.backward, dh, dc)
        if bwd.ok:
            assert bwd.value[0].shape == np.shape(x)


# -------------------------------------------------------------------------------------
# Linear, Dropout, LastStep, Sequential forward and backward
# -------------------------------------------------------------------------------------

@settings(CI, max_examples=300)
@given(data=st.data())
def test_layers_forward_backward(data):
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    which = data.draw(st.sampled_from(["Linear", "Dropout", "LastStep", "Sequential"]))
    if which == "Linear":
        layer = ln.Linear(2, 3, dtype=dtype, seed=0)
        shape = data.draw(st.sampled_from([(2,), (4, 2), (2, 3, 2)]))
    elif which == "Dropout":
        layer = ln.Dropout(data.draw(st.floats(0, 0.9)), seed=0)
        shape = data.draw(st.sampled_from([(), (3,), (2, 3, 2)]))
    elif which == "LastStep":
        layer = ln.LastStep(batch_first=data.draw(st.booleans()),
                            bidirectional=data.draw(st.booleans()))
        shape = data.draw(st.sampled_from([(3, 2, 4), (3, 4)]))
    else:
        layer = ln.Sequential(ln.LSTM(2, 3, batch_first=True, dtype=dtype, seed=0),
                              ln.Dropout(0.1, seed=0), ln.LastStep(batch_first=True),
                              ln.Linear(3, 1, dtype=dtype, seed=0),
                              stateful=data.draw(st.booleans()))
        shape = (2, 3, 2)
    layer.train(data.draw(TRAINING, "training"))
    x = data.draw(any_array_near(shape), "x")
    kwargs = {}
    if which in ("LastStep", "Sequential"):
        if len(shape) == 2:                       # unbatched (T, F)
            N, T = 1, shape[0]
        elif getattr(layer, "batch_first", True):  # (N, T, F); the Sequential's LSTM too
            N, T = shape[0], shape[1]
        else:
            N, T = shape[1], shape[0]
        kwargs["lengths"] = data.draw(lengths_strategy(N, T), "lengths")
    with time_guard("test_layers_forward_backward"):
        fwd = attempt(f"{which}.forward", layer, x, **kwargs)
        if not fwd.ok:
            return
        out = fwd.value
        assert is_float_array(out)
        if which == "Linear":
            assert out.shape == np.shape(x)[:-1] + (3,)
        if which == "Dropout":
            assert out.shape == np.shape(x)
        dout = data.draw(any_array_near(out.shape), "dout")
        bwd = attempt(f"{which}.backward", layer.backward, dout,
                      input_grad=data.draw(maybe(st.booleans())))
        if bwd.ok and bwd.value is not None:
            assert bwd.value.shape == np.shape(x)


@settings(CI, max_examples=60)
@given(cls=st.sampled_from(RECURRENT), num_layers=st.integers(1, 2), T=st.integers(2, 6),
       N=st.integers(1, 3), training=st.booleans(), data=st.data())
def test_stateful_chunks_equal_one_forward(cls, num_layers, T, N, training, data):
    """A stateful Sequential run over consecutive chunks gives the outputs of one forward
    over the whole sequences (its documented contract), in either mode."""
    cuts = sorted(data.draw(st.sets(st.integers(1, T - 1), max_size=3), "cuts"))
    x = data.draw(float_arrays((N, T, 2)), "x")
    whole = cls(2, 3, num_layers, batch_first=True, dtype=np.float64, seed=0)
    chunked = ln.Sequential(cls(2, 3, num_layers, batch_first=True, dtype=np.float64, seed=0),
                            stateful=True).train(training)
    with time_guard("test_stateful_chunks_equal_one_forward"):
        expected = whole(x)[0]
        bounds = list(zip([0, *cuts], [*cuts, T]))
        outs = [attempt("Sequential.forward (stateful)", chunked, np.asarray(x)[:, a:b]).value
                for a, b in bounds]
        np.testing.assert_allclose(np.concatenate(outs, axis=1), expected, rtol=1e-10,
                                   atol=1e-12)
        # The kept states belong to N sequences: another batch size is refused.
        other = attempt("Sequential.forward (stateful)", chunked, np.zeros((N + 1, 1, 2)))
        assert isinstance(other.error, ValueError), "a stateful run changed its batch size"


# -------------------------------------------------------------------------------------
# load_state_dict
# -------------------------------------------------------------------------------------

def _models_with_state():
    return st.sampled_from([
        lambda: ln.LSTM(2, 3, 2, bidirectional=True, seed=0),
        lambda: ln.RNN(2, 2, seed=0, dtype=np.float64),
        lambda: ln.LSTMCell(2, 2, seed=0),
        lambda: ln.Linear(2, 2, seed=0),
        lambda: ln.Sequential(ln.LSTM(2, 2, seed=0), ln.Linear(2, 1, seed=0)),
    ]).map(lambda make: make())


@st.composite
def state_dicts(draw, model):
    """A mapping near `model.state_dict()`: keys dropped, added or renamed, values of any
    shape, dtype and content; or not a mapping at all."""
    state = model.state_dict()
    keys = sorted(state)
    how = draw(st.sampled_from(["values", "values", "drop", "add", "rename", "wild",
                                "nonstr", "torchlike"]))
    if how == "wild":
        return draw(WILD)
    if how == "drop":
        del state[draw(st.sampled_from(keys))]
    elif how == "add":
        state[draw(st.text(max_size=8))] = np.zeros(1)
    elif how == "rename":
        k = draw(st.sampled_from(keys))
        state[k + "_"] = state.pop(k)
    elif how == "nonstr":
        state[draw(st.sampled_from([0, None, (1,), 1.5, b"k"]))] = np.zeros(1)
    elif how == "torchlike":
        state = collections.OrderedDict(state)
    for k in draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys))):
        if k in state:
            state[k] = draw(any_array_near(state[k].shape))
    return state


@settings(CI, max_examples=250)
@given(data=st.data())
def test_load_state_dict(data):
    model = data.draw(_models_with_state(), "model")
    before = model.state_dict()
    sd = data.draw(state_dicts(model), "state_dict")
    with time_guard("test_load_state_dict"):
        loaded = attempt(f"{type(model).__name__}.load_state_dict", model.load_state_dict,
                         sd, allowed=DOCUMENTED + (KeyError,))
        after = model.state_dict()
        if not loaded.ok:
            assert same_state(before, after), "a failed load changed the model"
            return
        for k, v in after.items():
            assert v.dtype == before[k].dtype and v.shape == before[k].shape
            assert np.all(np.isfinite(v))


# -------------------------------------------------------------------------------------
# Losses
# -------------------------------------------------------------------------------------

REDUCTION = maybe(st.sampled_from(["mean", "sum", "none"]))


@settings(CI, max_examples=300)
@given(data=st.data())
def test_losses(data):
    shape = data.draw(st.sampled_from([(3,), (2, 3), (2, 2, 3), (0, 3), ()]))
    which = data.draw(st.sampled_from(["mse", "l1", "huber", "cross_entropy", "classes"]))
    pred = data.draw(any_array_near(shape), "pred")
    reduction = data.draw(REDUCTION, "reduction")
    with time_guard("test_losses"):
        if which == "cross_entropy" or (which == "classes" and data.draw(st.booleans())):
            C = shape[-1] if shape else 1
            target = data.draw(st.one_of(
                arrays(shape[:-1], dtypes=["int64", "int8", "uint64"],
                       values=st.integers(-1, C).map(float)),
                st.just(np.full(shape[:-1], -100)), any_array_near(shape[:-1])), "target")
            weight = data.draw(st.one_of(st.none(), any_array_near((C,))), "weight")
            ignore = data.draw(maybe(st.sampled_from([-100, 0, -1])), "ignore_index")
            if which == "classes":
                made = attempt("CrossEntropyLoss()", losses.CrossEntropyLoss, weight, ignore,
                               reduction)
                fn = made.value if made.ok else None
            else:
                def fn(p, t):
                    return losses.cross_entropy(p, t, weight, ignore, reduction)
        else:
            target = data.draw(any_array_near(shape), "target")
            delta = data.draw(maybe(st.floats(0.01, 10)), "delta")
            if which == "classes":
                cls = data.draw(st.sampled_from([losses.MSELoss, losses.L1Loss,
                                                 losses.MAELoss, losses.HuberLoss]))
                args = (reduction, delta) if cls is losses.HuberLoss else (reduction,)
                made = attempt(f"{cls.__name__}()", cls, *args)
                fn = made.value if made.ok else None
            elif which == "huber":
                def fn(p, t):
                    return losses.huber_loss(p, t, reduction, delta)
            else:
                fn = {"mse": losses.mse_loss, "l1": losses.l1_loss}[which]
                fn = (lambda f: lambda p, t: f(p, t, reduction))(fn)
        if fn is None:
            return
        result = attempt(f"loss {which}", fn, pred, target)
        if result.ok:
            value, grad = result.value
            assert is_float_array(grad)
            assert np.shape(grad) == np.shape(pred)
            if reduction != "none":
                assert isinstance(value, float)


# -------------------------------------------------------------------------------------
# Optimizers, clipping and schedules
# -------------------------------------------------------------------------------------

OPTIMIZERS = {
    "SGD": (optim.SGD, dict(lr=FINITE.map(abs), momentum=st.floats(0, 0.99),
                            dampening=st.floats(0, 1), nesterov=st.booleans(),
                            weight_decay=st.floats(0, 0.1))),
    "Adam": (optim.Adam, dict(lr=FINITE.map(abs), betas=st.tuples(st.floats(0, 0.99),
                                                                   st.floats(0, 0.99)),
                              eps=st.floats(1e-10, 1e-3), weight_decay=st.floats(0, 0.1),
                              amsgrad=st.booleans())),
    "AdamW": (optim.AdamW, dict(lr=FINITE.map(abs), amsgrad=st.booleans())),
    "RMSprop": (optim.RMSprop, dict(lr=FINITE.map(abs), alpha=st.floats(0, 1),
                                    eps=st.floats(1e-10, 1e-3), momentum=st.floats(0, 0.9),
                                    centered=st.booleans())),
}


#: Values at the edges of the hyperparameters' ranges.
EDGES = st.sampled_from([0.0, 1.0, 1e300, -1e-12, 1 - 1e-16, 5e-324])


def optimizer_kwargs(name):
    """Hyperparameters of optimizer `name`: valid, at an edge, wild, or left out."""
    _, hyper = OPTIMIZERS[name]
    return arguments(optional=True, wild={k: st.one_of(WILD, EDGES) for k in hyper}, **hyper)


def _trained_grads(model):
    """Fill the model's grads with one backward pass on ones."""
    model.zero_grad()
    out = model(np.ones((2, 3, 2), model.dtype))
    model.backward(np.ones_like(out), input_grad=False)


SCHEDULES = {
    "StepLR": dict(step_size=small_int(1, 3), gamma=st.floats(0, 2)),
    "CosineAnnealingLR": dict(T_max=small_int(1, 3), eta_min=st.floats(0, 1)),
    "ReduceLROnPlateau": dict(mode=st.sampled_from(["min", "max"]), factor=st.floats(0, 0.99),
                              patience=small_int(0, 2), threshold=st.floats(0, 0.1),
                              threshold_mode=st.sampled_from(["rel", "abs"]),
                              cooldown=small_int(0, 2), min_lr=st.floats(0, 1e-3),
                              eps=st.floats(0, 1e-6)),
}


@st.composite
def _mangled(draw, state):
    """A state dict with one entry (possibly nested) replaced, removed or added."""
    state = {k: (dict(v) if isinstance(v, dict) else v) for k, v in state.items()}
    how = draw(st.sampled_from(["replace", "nested", "drop", "add", "wild"]))
    if how == "wild":
        return draw(WILD)
    key = draw(st.sampled_from(sorted(state)))
    if how == "replace":
        state[key] = draw(WILD)
    elif how == "drop":
        del state[key]
    elif how == "add":
        state[draw(st.text(max_size=4))] = draw(WILD)
    else:
        inner = next((v for v in state.values() if isinstance(v, dict) and v), None)
        if inner is not None:
            k = draw(st.sampled_from(sorted(inner)))
            inner[k] = draw(st.one_of(WILD, any_array_near(np.shape(inner[k]))))
    return state


@settings(CI, max_examples=300)
@given(data=st.data(), name=st.sampled_from(sorted(OPTIMIZERS)))
def test_optimizers_and_schedules(data, name):
    cls, _ = OPTIMIZERS[name]
    model = ln.Sequential(ln.LSTM(2, 2, batch_first=True, seed=0), ln.Linear(2, 1, seed=0))
    kwargs = data.draw(optimizer_kwargs(name), "hyperparameters")
    target_model = data.draw(maybe(st.just(model)), "model")
    with time_guard("test_optimizers_and_schedules"):
        made = attempt(f"{name}()", cls, target_model, **kwargs)
        if not made.ok:
            return
        opt = made.value
        _trained_grads(model)
        max_norm = data.draw(maybe(st.floats(0, 10)), "max_norm")
        norm_type = data.draw(maybe(st.sampled_from([1.0, 2.0, 3.5, math.inf])), "norm_type")
        attempt("clip_grad_norm", optim.clip_grad_norm, model, max_norm, norm_type,
                data.draw(maybe(st.booleans()), "error_if_nonfinite"))
        attempt(f"{name}.step", opt.step, allowed=DOCUMENTED + (FloatingPointError,))
        attempt(f"{name}.lr=", setattr, opt, "lr", data.draw(maybe(FINITE.map(abs))))

        # The optimizer's own state loads back; a mangled one fails and changes nothing.
        state = opt.state_dict()
        reloaded = attempt(f"{name}.load_state_dict", opt.load_state_dict, state)
        assert reloaded.ok, reloaded.error
        mangled = data.draw(_mangled(state), "mangled state")
        kept = opt.state_dict()
        bad = attempt(f"{name}.load_state_dict", opt.load_state_dict, mangled,
                      allowed=DOCUMENTED + (KeyError,))
        if not bad.ok:
            assert opt.state_dict()["hyper"] == kept["hyper"]
            assert same_state(opt.state_dict()["buffers"], kept["buffers"])

        sched_name = data.draw(st.sampled_from(["StepLR", "CosineAnnealingLR",
                                                "ReduceLROnPlateau"]))
        sched_cls = getattr(schedules, sched_name)
        skw = data.draw(arguments(**SCHEDULES[sched_name]), "schedule")
        sched = attempt(f"{sched_name}()", sched_cls,
                        data.draw(maybe(st.just(opt)), "optimizer"), **skw)
        if not sched.ok:
            return
        s = sched.value
        for _ in range(3):
            if sched_name == "ReduceLROnPlateau":
                attempt(f"{sched_name}.step", s.step, data.draw(maybe(ANY_FLOAT)))
            else:
                attempt(f"{sched_name}.step", s.step)
            assert opt.lr >= 0 and not math.isnan(opt.lr)
        assert attempt(f"{sched_name}.load_state_dict", s.load_state_dict, s.state_dict()).ok
        attempt(f"{sched_name}.load_state_dict", s.load_state_dict,
                data.draw(_mangled(s.state_dict())), allowed=DOCUMENTED + (KeyError,))


# -------------------------------------------------------------------------------------
# fit, predict, evaluate
# -------------------------------------------------------------------------------------

@st.composite
def fit_problems(draw):
    """A small model and well-shaped data for it: (model, x, y, lengths or None)."""
    kind = draw(st.sampled_from(["seq2one", "seq2seq", "bare"]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rec = draw(st.sampled_from(RECURRENT))
    F, H = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    N, T = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    layer = rec(F, H, batch_first=True, dtype=dtype, seed=0, n_threads=1)
    if kind == "seq2one":
        model = ln.Sequential(layer, ln.LastStep(batch_first=True), ln.Linear(H, 1, seed=0,
                                                                           dtype=dtype))
        y_shape = (N, 1)
    elif kind == "seq2seq":
        model = ln.Sequential(layer, ln.Dropout(0.1, seed=0),
                              ln.Linear(H, 1, seed=0, dtype=dtype))
        y_shape = (N, T, 1)
    else:
        model, y_shape = layer, (N, T, H)
    x = draw(any_array_near((N, T, F)))
    y = draw(any_array_near(y_shape))
    lengths = draw(weighted((1, st.none()), (1, lengths_strategy(N, T))))
    return model, x, y, lengths


@settings(CI, max_examples=300)
@given(data=st.data(), problem=fit_problems())
def test_fit_predict_evaluate(data, problem, tmp_path_factory):
    model, x, y, lengths = problem
    opt_name = data.draw(st.sampled_from(sorted(OPTIMIZERS)), "optimizer")
    lr = data.draw(st.one_of(st.sampled_from([1e-3, 0.1, 1e3, 1e30, 1e300]), FINITE.map(abs)))
    optimizer = OPTIMIZERS[opt_name][0](model, lr=lr)
    schedulers = [None, schedules.StepLR(optimizer, 1, 0.5),
                  schedules.ReduceLROnPlateau(optimizer, patience=0)]
    ckpt = tmp_path_factory.getbasetemp() / "fuzz_fit.npz"
    callbacks = [(), [ln.EarlyStopping(monitor="loss", patience=0)],
                 [ln.ModelCheckpoint(ckpt, monitor="loss")]]
    kwargs = data.draw(arguments(
        loss=st.sampled_from(["mse", "mae", "huber", losses.MSELoss(), losses.mse_loss,
                              "cross_entropy"]),
        epochs=small_int(0, 2), batch_size=small_int(1, 8),
        seed=st.one_of(st.none(), st.integers(0, 2**70)), shuffle=st.booleans(),
        verbose=st.just(0), clip_norm=st.one_of(st.none(), st.floats(0, 10)),
        initial_epoch=small_int(0, 1), tbptt=weighted((2, st.none()), (1, small_int(1, 3))),
        stateful_batches=st.booleans(),
        metrics=st.sampled_from([(), ("mse",), "rmse", ["mae", "mse"]]),
        validation_data=st.sampled_from([None, (x, y), (x, y, lengths)]),
        log_every=small_int(1, 2), lengths=st.just(lengths),
        scheduler=st.sampled_from(schedulers), callbacks=st.sampled_from(callbacks),
        wild={"epochs": WILD_NOT_HUGE,
              "callbacks": st.one_of(WILD, st.lists(WILD, max_size=2))}), "fit arguments")
    with time_guard("test_fit_predict_evaluate"):
        fitted = attempt("fit", ln.fit, model, x, y, optimizer=optimizer,
                         allowed=DOCUMENTED + (FloatingPointError,), **kwargs)
        assert model.training, "fit must leave the model in training mode"
        if fitted.ok:
            history = fitted.value
            runs = len(history.get("loss", []))
            assert all(len(v) == runs for v in history.values())
            assert all(math.isfinite(v) for v in history.get("loss", []))
        mode = data.draw(st.booleans(), "predict in training mode")
        model.train(mode)
        batch_size = data.draw(maybe(small_int(1, 8)), "predict batch_size")
        pred = attempt("predict", ln.predict, model, x, batch_size=batch_size,
                       lengths=kwargs["lengths"])
        assert model.training == mode, "predict must restore the model's mode"
        if pred.ok:
            assert pred.value.shape[0] == np.shape(x)[0], "predict lost or added samples"
        attempt("evaluate", ln.evaluate, model, x, y, loss=kwargs["loss"],
                metrics=kwargs["metrics"], batch_size=batch_size, lengths=kwargs["lengths"])
        assert model.training == mode, "evaluate must restore the model's mode"


TEMPLATES = weighted(
    (4, st.sampled_from(["ck.npz", "ck-{epoch}.npz", "ck-{epoch:03d}.npz"])),
    (2, st.sampled_from(["{", "}", "{0}", "{epoch!r}", "{epoch.real}", "{epoch[0]}", "{x}",
                         "{epoch:>99999999999}", "{epoch:>100000}", "{{epoch}}", "",
                         "ck\x00.npz"])),
    (1, st.text(st.characters(blacklist_characters="/\x00"), max_size=8)))


@settings(CI, max_examples=100)
@given(early=arguments(optional=True, monitor=st.sampled_from(["loss", "val_loss", "mse"]),
                       patience=small_int(0, 2), min_delta=st.floats(0, 1),
                       mode=st.sampled_from(["auto", "min", "max"]),
                       restore_best_weights=st.booleans()),
       checkpoint=arguments(optional=True, monitor=st.sampled_from(["loss", "val_loss"]),
                            save_best_only=st.booleans(),
                            mode=st.sampled_from(["auto", "min", "max"]),
                            extra=st.one_of(st.none(), st.just({"note": "x"}))),
       template=TEMPLATES, validate=st.booleans(),
       resume=arguments(path=st.just("valid"), model=st.just("model"),
                        optimizer=st.just("optimizer"),
                        scheduler=st.sampled_from([None, "scheduler"])))
def test_callbacks_and_resume(early, checkpoint, template, validate, resume, tmp_path_factory):
    """EarlyStopping and ModelCheckpoint with any arguments in a short fit, then
    resume_from_checkpoint: on success the run continues, on failure nothing changed."""
    folder = tmp_path_factory.mktemp("fuzz_resume")
    model = ln.Sequential(ln.LSTM(1, 2, batch_first=True, seed=0), ln.LastStep(batch_first=True),
                          ln.Linear(2, 1, seed=0))
    opt = optim.Adam(model, lr=0.01)
    sched = schedules.StepLR(opt, 1, 0.5)
    x = np.linspace(0, 1, 12, dtype=np.float32).reshape(4, 3, 1)
    y = x[:, -1]
    with time_guard("test_callbacks_and_resume"):
        callbacks = []
        made = attempt("EarlyStopping()", ln.EarlyStopping, **early)
        if made.ok:
            callbacks.append(made.value)
        path = str(folder / template)
        made = attempt("ModelCheckpoint()", ln.ModelCheckpoint, path, **checkpoint)
        if made.ok:
            callbacks.append(made.value)
        fitted = attempt("fit (callbacks)", ln.fit, model, x, y, loss="mse", optimizer=opt,
                         scheduler=sched, epochs=2, batch_size=2, seed=0, verbose=0,
                         callbacks=callbacks, validation_data=(x, y) if validate else None)
        saved = sorted(folder.glob("*"))
        if not fitted.ok or not saved:
            return
        # Resume from what was saved, with some arguments replaced by wild ones.
        fresh = ln.Sequential(ln.LSTM(1, 2, batch_first=True, seed=1),
                              ln.LastStep(batch_first=True), ln.Linear(2, 1, seed=1))
        fresh_opt = optim.Adam(fresh, lr=0.5)
        known = {"valid": saved[-1], "model": fresh, "optimizer": fresh_opt,
                 "scheduler": schedules.StepLR(fresh_opt, 1, 0.5)}
        args = {k: known.get(v, v) if isinstance(v, str) else v for k, v in resume.items()}
        before = fresh.state_dict()
        # A path that names no file raises the OSError of opening it, as documented.
        state = attempt("resume_from_checkpoint", ln.resume_from_checkpoint,
                        allowed=DOCUMENTED + (OSError,), **args)
        if not state.ok:
            assert same_state(before, fresh.state_dict()), "a failed resume changed the model"
            return
        start = state.value["initial_epoch"]
        assert isinstance(start, int) and 0 <= start <= 2
        assert attempt("fit (resumed)", ln.fit, fresh, x, y, loss="mse", optimizer=fresh_opt,
                       epochs=3, batch_size=2, seed=0, verbose=0, initial_epoch=start).ok


# -------------------------------------------------------------------------------------
# Data helpers
# -------------------------------------------------------------------------------------

SERIES = weighted((2, float_arrays(st.tuples(st.integers(1, 30)))),
                  (2, float_arrays(st.tuples(st.integers(1, 30), st.integers(1, 3)))),
                  (1, float_arrays(st.tuples(st.integers(1, 30)), ANY_FLOAT)),
                  (1, arrays(st.lists(st.integers(0, 6), max_size=3).map(tuple))), (1, WILD))
COLUMNS = weighted((2, st.none()), (2, st.integers(-3, 3)),
                   (2, st.lists(st.integers(-3, 3), max_size=3)), (1, WILD))


@settings(CI, max_examples=150)
@given(series=SERIES, kwargs=arguments(lookback=small_int(1, 4), horizon=small_int(1, 3),
                                       stride=small_int(1, 3), target_columns=COLUMNS),
       data=st.data())
def test_make_windows(series, kwargs, data):
    with time_guard("test_make_windows"):
        made = attempt("make_windows", ln.data.make_windows, series, **kwargs)
        counts = {k: v for k, v in kwargs.items() if k != "target_columns"}
        attempt("n_windows", ln.data.n_windows, data.draw(maybe(st.integers(0, 40))), **counts)
        if made.ok:
            xw, yw = made.value
            assert xw.shape[1] == kwargs["lookback"] and yw.shape[1] == kwargs["horizon"]
            assert len(xw) == len(yw) == ln.data.n_windows(len(series), **counts) >= 1


@settings(CI, max_examples=120)
@given(series=SERIES, kwargs=arguments(optional=True, train=st.floats(0.3, 0.7),
                                       val=weighted((1, st.just(0.0)), (2, st.floats(0.1, 0.25))),
                                       min_length=small_int(1, 2)))
def test_chronological_split(series, kwargs):
    with time_guard("test_chronological_split"):
        parts = attempt("chronological_split", ln.data.chronological_split, series, **kwargs)
        if parts.ok:
            assert sum(len(p) for p in parts.value) == len(np.asarray(series))


@settings(CI, max_examples=150)
@given(data=st.data(), cls=st.sampled_from(["StandardScaler", "MinMaxScaler"]),
       series=SERIES)
def test_scalers(data, cls, series):
    cls = getattr(ln.data, cls)
    with time_guard("test_scalers"):
        if cls is ln.data.MinMaxScaler:
            feature_range = data.draw(maybe(st.tuples(FINITE, st.floats(0.1, 3)).map(
                lambda lo_width: (lo_width[0], lo_width[0] + lo_width[1]))), "feature_range")
            made = attempt("MinMaxScaler()", cls, feature_range)
            if not made.ok:
                return
            scaler = made.value
        else:
            scaler = cls()
        attempt(f"{cls.__name__}.transform (unfitted)", scaler.transform, series)
        if not attempt(f"{cls.__name__}.fit", scaler.fit, series).ok:
            return
        other = data.draw(st.one_of(st.just(series), SERIES), "other")
        columns = data.draw(weighted((2, st.none()), (1, COLUMNS)), "columns")
        z = attempt(f"{cls.__name__}.transform", scaler.transform, other, columns=columns)
        if z.ok:
            back = attempt(f"{cls.__name__}.inverse_transform", scaler.inverse_transform,
                           z.value, columns=columns)
            assert back.ok and back.value.shape == np.shape(other)
            if np.all(np.abs(np.asarray(other, np.float64)) < 1e6):
                np.testing.assert_allclose(back.value, np.asarray(other, back.value.dtype),
                                           rtol=1e-3, atol=1e-3)
        state = scaler.get_state()
        for rebuild, how in ((ln.data.scaler_from_state, "scaler_from_state"),
                             (cls.from_state, f"{cls.__name__}.from_state")):
            reloaded = attempt(how, rebuild, state)
            assert reloaded.ok, reloaded.error
        mangled = data.draw(_mangled(state), "mangled state")
        attempt("scaler_from_state", ln.data.scaler_from_state, mangled)
        attempt(f"{cls.__name__}.from_state", cls.from_state, mangled)


def _predictor(reply: str):
    """A one-step predictor for forecast_recursive: right, or returning the wrong thing."""
    def predict_one(w):
        if reply == "last":
            return w[:, -1]
        if reply == "mean":
            return w.mean(axis=1, keepdims=True)
        if reply == "window":
            return w
        return "nonsense"
    return predict_one


@settings(CI, max_examples=150)
@given(windows=st.one_of(any_array_near((2, 3, 2)), SERIES),
       persistence=arguments(horizon=small_int(1, 3), target_columns=COLUMNS,
                             wild={"horizon": WILD_NOT_HUGE}),
       history=SERIES, reply=st.sampled_from(["last", "mean", "window", "nonsense"]),
       recursive=arguments(steps=small_int(1, 3), lookback=st.one_of(st.none(),
                                                                     small_int(1, 4)),
                           wild={"steps": WILD_NOT_HUGE}))
def test_forecasting(windows, persistence, history, reply, recursive):
    with time_guard("test_forecasting"):
        attempt("persistence_forecast", ln.data.persistence_forecast, windows, **persistence)
        out = attempt("forecast_recursive", ln.data.forecast_recursive, _predictor(reply),
                      history, **recursive)
        if out.ok:
            steps_axis = -1 if np.ndim(history) == 1 else -2
            assert out.value.shape[steps_axis] == recursive["steps"]


DATASET_ARGS = dict(length=small_int(1, 40), n_samples=small_int(1, 8),
                    seq_len=small_int(1, 8), lag=small_int(0, 4), n_symbols=small_int(1, 4),
                    period=st.floats(0.5, 30), amplitude=FINITE, noise=st.floats(0, 1),
                    seed=st.one_of(st.none(), st.integers(0, 2**70)),
                    periods=st.lists(st.floats(0.5, 30), min_size=1, max_size=3),
                    amplitudes=st.lists(FINITE, min_size=1, max_size=3),
                    one_hot=st.booleans(), return_dates=st.booleans(), bogus=st.just(1))


@settings(CI, max_examples=150)
@given(name=maybe(st.sampled_from(["sine", "sines", "adding", "copy", "airline", " Sine "])),
       keys=st.lists(st.sampled_from(sorted(DATASET_ARGS)), unique=True, max_size=3),
       data=st.data())
def test_load_dataset(name, keys, data):
    kwargs = data.draw(arguments(wild={k: WILD_NOT_HUGE for k in keys},
                                 **{k: DATASET_ARGS[k] for k in keys}), "kwargs")
    with time_guard("test_load_dataset"):
        attempt("load_dataset", ln.data.load_dataset, name, **kwargs)


CSV_CELLS = weighted((6, st.sampled_from(["1", "2.5", "-3", "1e3", " 4 ", "1949-01"])),
                     (1, st.sampled_from(["x", "", "nan", "inf", "1e400", '"q', "#c", "\x00",
                                          "a,b", "\ufeff1"])),
                     (1, st.text(max_size=4)))


@settings(CI, max_examples=150)
@given(rows=st.lists(st.lists(CSV_CELLS, min_size=2, max_size=2), max_size=5),
       raw=weighted((4, st.none()), (1, st.text(max_size=40))),
       column=maybe(st.sampled_from(["b", 1, ["b", "a"], [0, 1]])),
       date_column=maybe(weighted((3, st.none()), (1, st.sampled_from(["a", 0])))),
       delimiter=maybe(st.sampled_from([",", ";", "\t"])),
       min_length=maybe(small_int(1, 3)))
def test_load_csv(rows, raw, column, date_column, delimiter, min_length, tmp_path_factory):
    """Rows of a header a,b (mostly numbers), or any text."""
    sep = delimiter if isinstance(delimiter, str) and len(delimiter) == 1 else ","
    text = raw if raw is not None else "\n".join(sep.join(r) for r in [["a", "b"], *rows])
    path = tmp_path_factory.getbasetemp() / "fuzz.csv"
    path.write_text(text, encoding="utf-8")
    with time_guard("test_load_csv"):
        loaded = attempt("load_csv", ln.data.load_csv, path, column, date_column=date_column,
                         min_length=min_length, delimiter=delimiter)
        if loaded.ok:
            values = loaded.value[0] if date_column is not None else loaded.value
            assert values.dtype == np.float64 and np.all(np.isfinite(values))
            assert len(values) >= min_length


# -------------------------------------------------------------------------------------
# Checkpoints
# -------------------------------------------------------------------------------------

LEAF_ARRAYS = weighted(
    (12, hnp.arrays(st.sampled_from(["f4", "f8", "i8", "u1", "?", "c16", "<U3", "S2", "M8[s]",
                                     ">i4", "f2"]),
                    hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))),
    (1, st.just(np.arange(6.0).reshape(2, 3).T)),                 # not C-contiguous
    (1, st.just(np.array([None, 1], dtype=object))),              # must be refused
    (1, st.just(np.zeros(2, [("a", "f8"), ("b", "i4")]))),        # structured
)
LEAF_SCALARS = st.sampled_from([np.float32(1.5), np.int64(-3), np.bool_(False),
                                np.str_("s"), np.float64(math.nan), np.datetime64("2020-01")])
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6))
KEYS = st.one_of(st.text(max_size=6), st.sampled_from(["__array__", "__tuple__", "__items__",
                                                       "a/b", "~1", "", "\x00", "model"]))
ODD_KEYS = st.one_of(st.integers(-3, 3), st.none(), st.booleans(), st.floats(-2, 2),
                     st.tuples(st.integers(0, 2), st.text(max_size=2)))


def _trees():
    leaves = st.one_of(JSON_LEAVES, LEAF_ARRAYS, LEAF_SCALARS)
    return st.recursive(leaves, lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.tuples(kids, kids),
        st.dictionaries(KEYS, kids, max_size=3),
        st.dictionaries(st.one_of(KEYS, ODD_KEYS), kids, max_size=3)), max_leaves=8)


def same_tree(a, b) -> bool:
    """Whether a loaded tree equals the saved one: types, dtypes, shapes, values (nan ==
    nan)."""
    if isinstance(a, np.ndarray) or isinstance(a, np.generic):
        return (type(a) is type(b) and np.shape(a) == np.shape(b)
                and a.dtype.newbyteorder("=") == b.dtype.newbyteorder("=")
                and (np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
                     if a.dtype.kind not in "M" else bool(np.all((a == b) | (np.isnat(a)
                                                                           & np.isnat(b))))))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(same_tree(u, v) for u, v in zip(a, b)))
    if isinstance(a, dict):
        return (isinstance(b, dict) and list(a) == list(b)
                and all(same_tree(a[k], b[k]) for k in a))
    return type(a) is type(b) and a == b


@settings(CI, max_examples=250)
@given(extra=maybe(st.dictionaries(st.one_of(KEYS, ODD_KEYS), _trees(), max_size=4)),
       epoch=maybe(st.one_of(st.none(), small_int(0, 5))),
       with_optimizer=st.booleans(),
       model=_models_with_state())
def test_checkpoint_round_trip(extra, epoch, with_optimizer, model, tmp_path_factory):
    """save_checkpoint refuses the tree, or load_checkpoint and load_model give back the
    weights, the epoch, the optimizer's state and `extra` (up to byte order)."""
    path = tmp_path_factory.getbasetemp() / "fuzz_checkpoint.npz"
    opt = optim.Adam(model, lr=0.01) if with_optimizer else None
    with time_guard("test_checkpoint_round_trip"):
        saved = attempt("save_checkpoint", ln.save_checkpoint, path, model, opt, epoch=epoch,
                        extra=extra)
        if not saved.ok:
            return
        loaded = attempt("load_checkpoint", ln.load_checkpoint, path)
        assert loaded.ok, f"a saved checkpoint does not load: {loaded.error!r}"
        ck = loaded.value
        assert same_state(ck["model"].state_dict(), model.state_dict())
        assert ck["epoch"] == epoch
        assert same_tree(extra, ck["extra"]), "extra did not round-trip"
        if with_optimizer:
            again = optim.Adam(ck["model"], lr=0.5)
            assert attempt("load_checkpoint", ln.load_checkpoint, path, ck["model"], again).ok
            assert again.lr == 0.01
        assert same_state(ln.load_model(path).state_dict(), model.state_dict())


@settings(CI, max_examples=40)
@given(cls=maybe(st.sampled_from(["same name", "builtin"])))
def test_register_module(cls):
    """register_module takes Module subclasses only, once per name. (No new class is
    registered: the registry is global, and other tests list what it holds.)"""
    if cls == "same name":
        cls = type("Linear", (ln.Linear,), {})
    elif cls == "builtin":
        cls = ln.LSTM
    with time_guard("test_register_module"):
        made = attempt("register_module", ln.register_module, cls)
        if made.ok:
            assert made.value is cls


@settings(CI, max_examples=250)
@given(edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1,
                      max_size=4),
       cut=st.one_of(st.none(), st.floats(0, 1)),
       member=st.one_of(st.none(), st.sampled_from(["__metadata__", "model/weight"])),
       payload=st.binary(max_size=40))
def test_load_corrupt_checkpoint(edits, cut, member, payload, tmp_path_factory):
    """Bytes changed, a truncated file, or a member replaced: a ValueError naming the
    file, or (bytes the format does not check) a model that loads."""
    base = tmp_path_factory.getbasetemp()
    good = base / "fuzz_good.npz"
    if not good.exists():
        ln.save_checkpoint(good, ln.Linear(2, 1, seed=0), extra={"a": np.arange(3)})
    raw = bytearray(good.read_bytes())
    for where, value in edits:
        raw[min(int(where * len(raw)), len(raw) - 1)] = value
    if cut is not None:
        raw = raw[:int(cut * len(raw))]
    bad = base / "fuzz_bad.npz"
    if member is None:
        bad.write_bytes(bytes(raw))
    else:
        with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
            for info in zin.infolist():
                body = zin.read(info)
                zout.writestr(info, payload if info.filename.startswith(member) else body)
    with time_guard("test_load_corrupt_checkpoint"):
        loaded = attempt("load_checkpoint (corrupt)", ln.load_checkpoint, bad,
                         allowed=(ValueError,))
        if not loaded.ok:
            assert str(bad) in str(loaded.error), "the error does not name the file"
        attempt("load_model (corrupt)", ln.load_model, bad, allowed=(ValueError,))


# -------------------------------------------------------------------------------------
# The tally
# -------------------------------------------------------------------------------------

def test_zz_tally(capsys):
    """Print the examples run and the outcome of every call, by target and type; and
    check that the examples reached each target with calls that succeed, not only with
    refused ones (a fuzzer that only ever hits the first check tests little)."""
    if not EXAMPLES:
        pytest.skip("no fuzz test ran in this session")
    by_type = collections.Counter()
    by_target = collections.defaultdict(collections.Counter)
    for (target, outcome), n in TALLY.items():
        by_type[outcome] += n
        by_target[target][outcome] += n
    lines = [f"fuzz: {sum(EXAMPLES.values())} examples, {sum(TALLY.values())} calls",
             "  examples per test: " + ", ".join(f"{k} {v}" for k, v in sorted(EXAMPLES.items())),
             "  outcomes: " + ", ".join(f"{k} {v}" for k, v in by_type.most_common())]
    for target in sorted(by_target):
        lines.append(f"  {target}: " + ", ".join(
            f"{k} {v}" for k, v in by_target[target].most_common()))
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    # Targets called rarely may see only refusals by chance; the others must not.
    never_ok = [t for t, c in by_target.items() if not c["ok"] and sum(c.values()) >= 30
                and "(corrupt)" not in t and "(unfitted)" not in t]
    assert not never_ok, f"no example got a successful call through {never_ok}"

