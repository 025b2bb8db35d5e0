"""Bad arguments get a clear error, never a hang, a killed process or a silent wrong
answer: the bounds on sizes and thread counts, inputs that overflow the model's dtype,
malformed arrays and state dicts, non-contiguous inputs, and models trained from two
threads at once."""
from __future__ import annotations

import copy
import os
import pickle
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import lstm_native as ln
from lstm_native import _validation
from lstm_native._parallel import _controller, effective_n_threads

RECURRENT = [ln.LSTM, ln.RNN]
SIZED = [ln.LSTM, ln.RNN, ln.LSTMCell]


def _run_isolated(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter: a hang or a killed process fails the test
    instead of taking the suite down."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout)


# -------------------------------------------------------------------------------------
# Bounds on sizes, layers and threads
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", SIZED)
@pytest.mark.parametrize("name", ["input_size", "hidden_size"])
@pytest.mark.parametrize("value", [10**30, 10**9, _validation.MAX_FEATURES + 1])
def test_size_above_bound(cls, name, value):
    sizes = {"input_size": 3, "hidden_size": 4, name: value}
    with pytest.raises(ValueError, match=f"{name} must be an int in 1..{_validation.MAX_FEATURES}"):
        cls(sizes["input_size"], sizes["hidden_size"])


@pytest.mark.parametrize("name", ["in_features", "out_features"])
@pytest.mark.parametrize("value", [10**30, _validation.MAX_FEATURES + 1])
def test_linear_size_above_bound(name, value):
    sizes = {"in_features": 3, "out_features": 4, name: value}
    with pytest.raises(ValueError, match=name):
        ln.Linear(sizes["in_features"], sizes["out_features"])


@pytest.mark.parametrize("cls", SIZED + [ln.Linear])
@pytest.mark.parametrize("value", [True, 2.0, "3", None, np.float64(3.0)])
def test_size_of_wrong_type(cls, value):
    name = "in_features" if cls is ln.Linear else "input_size"
    with pytest.raises(TypeError, match=name):
        cls(value, 4)


@pytest.mark.parametrize("cls", RECURRENT)
@pytest.mark.parametrize("value", [2**31, _validation.MAX_NUM_LAYERS + 1])
def test_num_layers_above_bound(cls, value):
    """2**31 layers looped for ever building parameters."""
    result = _run_isolated(
        "import lstm_native as ln\n"
        "try:\n"
        f"    ln.{cls.__name__}(2, 3, {value})\n"
        "except ValueError as e:\n"
        "    print('ValueError:', e)\n", timeout=30)
    assert result.returncode == 0, result.stderr
    assert "ValueError: num_layers" in result.stdout


@pytest.mark.parametrize("cls", SIZED)
def test_parameter_count_above_bound(cls):
    """Sizes each within bounds whose weights together would not be: a ValueError
    before any allocation."""
    H = 2**14
    with pytest.raises(ValueError, match="parameters"):
        cls(_validation.MAX_FEATURES, H)


def test_linear_parameter_count_above_bound():
    with pytest.raises(ValueError, match="parameters"):
        ln.Linear(_validation.MAX_FEATURES, _validation.MAX_FEATURES)


@pytest.mark.parametrize("cls", SIZED)
@pytest.mark.parametrize("value", [2**31, 60000, _validation.MAX_THREADS + 1])
def test_n_threads_above_bound(cls, value):
    """2**31 failed later with OverflowError; 60000 made OpenMP kill the process."""
    expected = f"n_threads must be None or an int in 1..{_validation.MAX_THREADS}"
    with pytest.raises(ValueError, match=expected):
        cls(3, 4, n_threads=value)


@pytest.mark.parametrize("cls", SIZED)
def test_n_threads_at_bound_is_accepted(cls):
    """A thread count saved on a larger machine is accepted and clamped at call time."""
    result = _run_isolated(
        "import numpy as np, lstm_native as ln\n"
        f"m = ln.{cls.__name__}(3, 4, n_threads={_validation.MAX_THREADS}, seed=0)\n"
        f"r = ln.{cls.__name__}(3, 4, n_threads=1, seed=0)\n"
        "x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)\n"
        "x = x[0] if isinstance(m, ln.LSTMCell) else x\n"
        "assert np.array_equal(m(x)[0], r(x)[0])\n"
        "print('ok')\n")
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_effective_n_threads_is_clamped():
    """The kernels run on at most the cores the process may use, whatever was asked."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 1 <= effective_n_threads(_validation.MAX_THREADS) <= cores
    assert effective_n_threads(None) <= cores
    assert effective_n_threads(1) == 1


@pytest.mark.parametrize("cls", RECURRENT)
def test_too_many_rows_for_the_kernels(cls):
    """T·N past the kernels' int row index: a ValueError naming x, before any copy
    (the broadcast input takes no memory; its copy would take 8 GiB)."""
    m = cls(1, 2)
    x = np.broadcast_to(np.zeros((1, 1, 1), np.float32), (2**16, 2**15, 1))
    with pytest.raises(ValueError, match="x has 2147483648 rows"):
        m(x)


def test_too_many_rows_for_the_cell():
    m = ln.LSTMCell(1, 2)
    x = np.broadcast_to(np.zeros((1, 1), np.float32), (2**31, 1))
    with pytest.raises(ValueError, match="x has 2147483648 rows"):
        m(x)


# -------------------------------------------------------------------------------------
# float64 inputs that overflow a float32 model
# -------------------------------------------------------------------------------------

T, N, I, H = 4, 3, 2, 5


def _big(shape, where=(0,)):
    """float64 zeros with one value finite in float64 but out of float32's range."""
    a = np.zeros(shape)
    a[where] = 1e300
    return a


@pytest.mark.parametrize("cls", RECURRENT)
def test_recurrent_inputs_overflowing_float32(cls):
    m = cls(I, H, seed=0)
    states = (lambda a: (a, np.zeros_like(a))) if cls is ln.LSTM else (lambda a: a)
    with pytest.raises(ValueError, match=r"x holds a value out of float32's range"):
        m(_big((T, N, I), (0, 0, 0)))
    hname = "hx[0]" if cls is ln.LSTM else "hx"
    with pytest.raises(ValueError, match=re.escape(f"{hname} holds a value")):
        m(np.zeros((T, N, I)), states(_big((1, N, H), (0, 0, 0))))
    out, _ = m(np.zeros((T, N, I)))
    with pytest.raises(ValueError, match="dout holds a value"):
        m.backward(_big(out.shape, (0, 0, 0)))
    dname = "dhx[0]" if cls is ln.LSTM else "dh_n"
    with pytest.raises(ValueError, match=re.escape(f"{dname} holds a value")):
        m.backward(np.zeros(out.shape), states(_big((1, N, H), (0, 0, 0))))


def test_cell_inputs_overflowing_float32():
    m = ln.LSTMCell(I, H, seed=0)
    with pytest.raises(ValueError, match="x holds a value"):
        m(_big((N, I)))
    with pytest.raises(ValueError, match=r"hx\[1\] holds a value"):
        m(np.zeros((N, I)), (np.zeros((N, H)), _big((N, H))))
    m(np.zeros((N, I)))
    with pytest.raises(ValueError, match="dh holds a value"):
        m.backward(_big((N, H)))
    with pytest.raises(ValueError, match="dc holds a value"):
        m.backward(np.zeros((N, H)), _big((N, H)))


def test_linear_inputs_overflowing_float32():
    m = ln.Linear(I, H, seed=0)
    with pytest.raises(ValueError, match="x holds a value"):
        m(_big((N, I)))
    m(np.zeros((N, I)))
    with pytest.raises(ValueError, match="dout holds a value"):
        m.backward(_big((N, H)))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_in_the_input_propagate(value):
    """As in torch: non-finite input values go through, no error, the same through the
    float64 -> float32 conversion as in float32; nan gives nan."""
    m = ln.LSTM(I, H, seed=0)
    x = np.zeros((T, N, I))
    x[0, 0, 0] = value
    out64, _ = m(x)
    out32, _ = m(x.astype(np.float32))
    assert np.array_equal(out64, out32, equal_nan=True)
    assert np.isnan(out64[:, 0]).any() == np.isnan(value)
    assert np.all(np.isfinite(out64[:, 1:]))


def test_float64_model_takes_large_values():
    """No down-conversion, no range check: 1e300 is a float64 like any other."""
    out = ln.Linear(I, H, dtype=np.float64, seed=0)(_big((N, I)))
    assert np.any(np.abs(out) > 1e200)


# -------------------------------------------------------------------------------------
# Malformed arguments at the public boundary
# -------------------------------------------------------------------------------------

RAGGED = [[0.0, 1.0], [2.0]]


@pytest.mark.parametrize("cls", RECURRENT)
def test_ragged_x_and_hx(cls):
    m = cls(2, H)
    with pytest.raises(ValueError, match=r"^x must be"):
        m([[[0.0, 1.0]], [[2.0]]])
    hx = ([[[0.0] * H], [[0.0]]], np.zeros((1, 1, H))) if cls is ln.LSTM else [[[0.0] * H], [[0.0]]]
    with pytest.raises(ValueError, match=r"^hx(\[0\])? must be"):
        m(np.zeros((T, 1, 2)), hx)


def test_ragged_x_cell_and_linear():
    with pytest.raises(ValueError, match=r"^x must be"):
        ln.LSTMCell(2, H)(RAGGED)
    with pytest.raises(ValueError, match=r"^x must be"):
        ln.Linear(2, H)(RAGGED)


@pytest.mark.parametrize("cls", SIZED + [ln.Linear])
@pytest.mark.parametrize("value", ["abc", None, object()])
def test_non_arrays_where_arrays_go(cls, value):
    with pytest.raises(TypeError, match=r"^x must be a float32 or float64 array"):
        cls(2, H)(value)


@pytest.mark.parametrize("bad", [None, [("weight", np.zeros((H, 2)))], "weight", 3])
def test_load_state_dict_not_a_mapping(bad):
    for m in (ln.Linear(2, H), ln.LSTM(2, H), ln.Sequential(ln.Linear(2, H))):
        with pytest.raises(TypeError, match="state_dict must be a mapping"):
            m.load_state_dict(bad)


@pytest.mark.parametrize("value,exc", [("abc", TypeError), (None, TypeError),
                                       (object(), TypeError), ([[0.0, 1.0], [2.0]], ValueError)])
def test_load_state_dict_entry_not_an_array(value, exc):
    m = ln.Linear(2, H, seed=0)
    before = m.state_dict()
    sd = {**before, "weight": value}
    with pytest.raises(exc, match=r"state_dict\['weight'\]"):
        m.load_state_dict(sd)
    assert np.array_equal(m.state_dict()["weight"], before["weight"])


@pytest.mark.parametrize("cls", SIZED + [ln.Linear])
@pytest.mark.parametrize("seed,exc", [(-1, ValueError), ("a", TypeError), (1.5, TypeError),
                                      (True, TypeError), ([1, -2], TypeError)])
def test_bad_seed(cls, seed, exc):
    with pytest.raises(exc, match="seed"):
        cls(2, H, seed=seed)


@pytest.mark.parametrize("seed", [-1, "a", 1.5])
def test_bad_dropout_seed(seed):
    with pytest.raises((TypeError, ValueError), match="seed"):
        ln.Dropout(0.5, seed=seed)


@pytest.mark.parametrize("cls", SIZED + [ln.Linear])
def test_seed_kinds_accepted(cls):
    """An int and a numpy Generator seed the same weights as before."""
    a = cls(2, H, seed=np.int64(7)).state_dict()
    b = cls(2, H, seed=np.random.default_rng(7)).state_dict()
    for k in a:
        assert np.array_equal(a[k], b[k])
    cls(2, H, seed=None)


# -------------------------------------------------------------------------------------
# LSTMCell in eval mode takes any memory layout
# -------------------------------------------------------------------------------------

def _layouts(a: np.ndarray) -> dict:
    """Views equal to `a` in other memory layouts."""
    return {
        "strided": np.repeat(a, 2, axis=-1)[..., ::2],
        "fortran": np.asfortranarray(a),
        "negative": np.flip(np.flip(a, 0).copy(), 0),
        "reversed": np.flip(np.flip(a, -1).copy(), -1),
        "broadcast": np.broadcast_to(a[:1], a.shape),
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["strided", "fortran", "negative", "reversed", "broadcast"])
def test_cell_eval_any_layout(dtype, layout):
    """Under NumPy 2 these raised "Unable to avoid copy"; the result is the one of the
    contiguous arrays, batched and unbatched."""
    cell = ln.LSTMCell(I, H, dtype=dtype, seed=0).eval()
    rng = np.random.default_rng(1)
    x, h, c = (rng.standard_normal(shape).astype(dtype) for shape in ((N, I), (N, H), (N, H)))
    views = [_layouts(a)[layout] for a in (x, h, c)]
    if layout == "broadcast":
        x, h, c = (np.ascontiguousarray(v) for v in views)
    for a, v in zip((x, h, c), views):
        assert np.array_equal(a, v) and not v.flags.c_contiguous or layout == "fortran"
    for g, e in zip(cell(views[0], tuple(views[1:])), cell(x, (h, c))):
        assert np.array_equal(g, e)
    rows = [v[1] for v in views]
    for g, e in zip(cell(rows[0], tuple(rows[1:])), cell(x[1], (h[1], c[1]))):
        assert np.array_equal(g, e)


# -------------------------------------------------------------------------------------
# Threads: concurrent inference is safe; concurrent training is detected
# -------------------------------------------------------------------------------------

def _cases():
    """(name, model builder, inputs, forward, backward) of every block, small and float64."""
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((12, 3, 4)) for _ in range(4)]
    rows = [rng.standard_normal((3, 4)) for _ in range(4)]
    return {
        "LSTM": (lambda: ln.LSTM(4, 8, 2, dtype=np.float64, seed=0, n_threads=1), seqs,
                 lambda m, x: m(x)[0], lambda m, d: m.backward(d)[0]),
        "RNN": (lambda: ln.RNN(4, 8, 2, dtype=np.float64, seed=0, n_threads=1), seqs,
                lambda m, x: m(x)[0], lambda m, d: m.backward(d)[0]),
        "LSTMCell": (lambda: ln.LSTMCell(4, 8, dtype=np.float64, seed=0, n_threads=1), rows,
                     lambda m, x: m(x)[0], lambda m, d: m.backward(d)[0]),
        "Linear": (lambda: ln.Linear(4, 8, dtype=np.float64, seed=0), rows,
                   lambda m, x: m(x), lambda m, d: m.backward(d)),
        "Sequential": (lambda: ln.Sequential(
                           ln.LSTM(4, 8, dtype=np.float64, seed=0, n_threads=1),
                           ln.LastStep(), ln.Linear(8, 2, dtype=np.float64, seed=1)),
                       seqs, lambda m, x: m(x), lambda m, d: m.backward(d, input_grad=True)),
    }


def _serial(make, inputs, forward, backward):
    """Each input's output, input gradient and parameter gradients, one at a time."""
    m = make()
    results = []
    for x in inputs:
        m.zero_grad()
        out = forward(m, x)
        dout = np.cos(np.arange(out.size)).reshape(out.shape)
        dx = backward(m, dout)
        results.append((out, dout, dx, {k: g.copy() for k, g in m.grads.items()}))
    return results


def _run_threads(n_threads: int, work) -> None:
    """work(thread index) in n_threads threads started together; the first error
    re-raised."""
    errors = []
    start = threading.Barrier(n_threads)

    def run(tid):
        try:
            start.wait()
            work(tid)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.mark.parametrize("name", list(_cases()))
def test_concurrent_training_is_detected(name):
    """Two threads x 300 forward/backward on one model: each call gives the serial
    gradients or raises RuntimeError; none goes through with wrong values, and the
    accumulated parameter gradients are those of the calls that went through."""
    make, inputs, forward, backward = _cases()[name]
    serial = _serial(make, inputs, forward, backward)
    model = make()
    model.zero_grad()
    done = [[] for _ in inputs]
    refused = []
    lock = threading.Lock()

    def work(tid):
        for k in range(300):
            i = (tid + k) % len(inputs)
            out_s, dout, dx_s, _ = serial[i]
            try:
                out = forward(model, inputs[i])
                assert np.array_equal(out, out_s), "wrong output"
                time.sleep(1e-4)  # the loss: the other thread runs meanwhile
                dx = backward(model, dout)
            except RuntimeError as e:
                assert "one thread at a time" in str(e) or "once" in str(e), e
                assert type(model).__name__ in str(e) or name == "Sequential", e
                with lock:
                    refused.append(str(e))
                continue
            assert np.array_equal(dx, dx_s), "wrong input gradient"
            with lock:
                done[i].append(1)

    _run_threads(2, work)
    assert sum(map(len, done)) > 0
    for key, g in model.grads.items():
        expected = sum(len(d) * serial[i][3][key] for i, d in enumerate(done))
        np.testing.assert_allclose(g, expected, rtol=1e-9, atol=1e-9, err_msg=key)


@pytest.mark.parametrize("name", list(_cases()))
def test_concurrent_inference_is_safe(name):
    """Several threads running eval forward on one model get the serial results, and
    leave BLAS with its thread count (the kernels cap it at one while they run)."""
    make, inputs, forward, _ = _cases()[name]
    model = make().eval()
    expected = [forward(model, x) for x in inputs]
    blas_threads = [lib["num_threads"] for lib in _controller().info()
                    if lib["user_api"] == "blas"]

    def work(tid):
        for k in range(200):
            i = (tid + k) % len(inputs)
            assert np.array_equal(forward(model, inputs[i]), expected[i])

    _run_threads(4, work)
    assert [lib["num_threads"] for lib in _controller().info()
            if lib["user_api"] == "blas"] == blas_threads


def test_backward_in_another_thread_is_refused():
    """The forward ran in this thread; a backward from another one raises, naming the
    class, and leaves the forward to this thread's backward."""
    m = ln.LSTM(2, 3, dtype=np.float64, seed=0)
    out, _ = m(np.ones((4, 1, 2)))
    caught = []
    t = threading.Thread(target=lambda: caught.append(_catch(m.backward, np.ones(out.shape))))
    t.start()
    t.join()
    assert isinstance(caught[0], RuntimeError)
    assert "LSTM" in str(caught[0]) and "one thread at a time" in str(caught[0])
    assert not any(np.any(g) for g in m.grads.values())
    m.backward(np.ones(out.shape))
    assert any(np.any(g) for g in m.grads.values())


def test_forward_replaced_by_another_thread_is_refused():
    m = ln.Linear(2, 3, dtype=np.float64, seed=0)
    m(np.ones((1, 2)))
    t = threading.Thread(target=lambda: m(np.zeros((1, 2))))
    t.start()
    t.join()
    with pytest.raises(RuntimeError, match="Linear.*another thread"):
        m.backward(np.ones((1, 3)))


def test_training_lock_held_by_another_thread_is_refused():
    """While one thread runs a training forward, another's call raises at once."""
    m = ln.Linear(2, 3, dtype=np.float64, seed=0)
    assert m._training_lock.acquire(blocking=False)  # as a running training call does
    try:
        caught = []
        t = threading.Thread(target=lambda: caught.append(_catch(m, np.ones((1, 2)))))
        t.start()
        t.join()
        assert isinstance(caught[0], RuntimeError)
        assert "Linear" in str(caught[0]) and "one thread at a time" in str(caught[0])
    finally:
        m._training_lock.release()
    m.eval()
    m._training_lock.acquire()
    try:
        m(np.ones((1, 2)))  # inference takes no lock
    finally:
        m._training_lock.release()


def _catch(f, *args):
    try:
        f(*args)
    except Exception as e:  # noqa: BLE001 - the test inspects it
        return e
    return None


def test_modules_copy_and_pickle():
    """The lock and the per-thread record are not state: a deep copy or a pickle of a
    model is a model that trains on its own."""
    m = ln.Sequential(ln.LSTM(2, 3, seed=0), ln.LastStep(), ln.Linear(3, 1, seed=0))
    m(np.ones((4, 1, 2), np.float32))
    for other in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        with pytest.raises(RuntimeError, match="needs a training-mode forward"):
            other.backward(np.ones((1, 1), np.float32))
        out = other(np.ones((4, 1, 2), np.float32))
        other.backward(np.ones(out.shape, np.float32))
        assert other._training_lock is not m._training_lock
    m.backward(np.ones((1, 1), np.float32))


@pytest.mark.parametrize("layer", [ln.Dropout(0.5, seed=0), ln.LastStep()])
def test_ragged_x_parameterless_blocks(layer):
    with pytest.raises(ValueError, match=r"^x must be"):
        layer([[[0.0, 1.0]], [[2.0]]])


def test_sequential_layer_run_by_another_thread_is_refused_before_any_backward():
    """A layer shared with another model ran a training forward in another thread
    between this Sequential's forward and backward: the backward raises before any
    layer adds a gradient."""
    first, last = ln.Linear(2, 3, dtype=np.float64, seed=0), ln.Linear(3, 1, dtype=np.float64)
    seq = ln.Sequential(first, last)
    seq(np.ones((4, 2)))
    t = threading.Thread(target=lambda: first(np.zeros((4, 2))))
    t.start()
    t.join()
    with pytest.raises(RuntimeError, match="layer 0 .*one thread at a time"):
        seq.backward(np.ones((4, 1)))
    assert not any(np.any(g) for g in seq.grads.values())
