"""Every error path of the public API: the exception type and a message naming the
argument at fault; and a failed call leaves the model as it was."""
from __future__ import annotations

import numpy as np
import pytest

import lstm_native as ln
from conftest import assert_all_equal

T, N, I, H, L = 5, 3, 4, 6, 2
D = 2


@pytest.fixture
def lstm():
    return ln.LSTM(I, H, L, bidirectional=True, dtype=np.float64, seed=0)


@pytest.fixture
def x():
    return np.random.default_rng(0).standard_normal((T, N, I))


def _states(shape=(D * L, N, H)):
    return np.zeros(shape), np.zeros(shape)


# -------------------------------------------------------------------------------------
# Constructors
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [ln.LSTM, ln.LSTMCell])
@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(input_size=0), ValueError, "input_size"),
    (dict(input_size=-3), ValueError, "input_size"),
    (dict(input_size=2.0), TypeError, "input_size"),
    (dict(input_size="3"), TypeError, "input_size"),
    (dict(input_size=True), TypeError, "input_size"),
    (dict(hidden_size=-1), ValueError, "hidden_size"),
    (dict(hidden_size=0), ValueError, "hidden_size"),
    (dict(hidden_size=None), TypeError, "hidden_size"),
    (dict(dtype=np.int32), TypeError, "dtype"),
    (dict(dtype=int), TypeError, "dtype"),
    (dict(dtype=np.float16), TypeError, "dtype"),
    (dict(dtype=np.complex128), TypeError, "dtype"),
    (dict(dtype="not a dtype"), TypeError, "dtype"),
    (dict(n_threads=0), ValueError, "n_threads"),
    (dict(n_threads=-1), ValueError, "n_threads"),
    (dict(n_threads="2"), TypeError, "n_threads"),
    (dict(n_threads=2.0), TypeError, "n_threads"),
    (dict(n_threads=True), TypeError, "n_threads"),
])
def test_constructor_errors(cls, kwargs, exc, match):
    args = dict(input_size=3, hidden_size=4)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        cls(args.pop("input_size"), args.pop("hidden_size"), **args)


@pytest.mark.parametrize("num_layers,exc", [(0, ValueError), (-1, ValueError),
                                            (1.5, TypeError), ("2", TypeError)])
def test_constructor_num_layers(num_layers, exc):
    with pytest.raises(exc, match="num_layers"):
        ln.LSTM(3, 4, num_layers)


def test_constructor_accepts_numpy_ints_and_dtype_names():
    m = ln.LSTM(np.int64(3), np.int32(4), np.int16(2), dtype="float64", n_threads=np.int64(1))
    assert (m.input_size, m.hidden_size, m.num_layers) == (3, 4, 2)
    assert m.dtype == np.float64 and m.n_threads == 1
    assert ln.LSTMCell(np.int64(3), 4, dtype="float32").dtype == np.float32


# -------------------------------------------------------------------------------------
# LSTM.forward
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad_x,exc", [
    (np.zeros((T, N, I), dtype=np.int64), TypeError),
    (np.zeros((T, N, I), dtype=np.float16), TypeError),
    (np.zeros((T, N, I), dtype=np.complex128), TypeError),
    (np.zeros((T, N, I), dtype=bool), TypeError),
    ([["a"]], TypeError),
    (np.zeros(I), ValueError),                 # rank 1
    (np.zeros((T, N, I, 1)), ValueError),      # rank 4
    (np.zeros(()), ValueError),                # rank 0
    (np.zeros((T, N, I + 1)), ValueError),     # feature size
    (np.zeros((T, I - 1)), ValueError),        # unbatched, feature size
    (np.zeros((0, N, I)), ValueError),         # no steps
    (np.zeros((T, 0, I)), ValueError),         # no sequences
    (np.zeros((0, I)), ValueError),            # unbatched, no steps
], ids=["int", "float16", "complex", "bool", "str", "rank1", "rank4", "rank0", "features",
        "unbatched-features", "T0", "N0", "unbatched-T0"])
def test_forward_bad_x(lstm, bad_x, exc):
    with pytest.raises(exc, match="x"):
        lstm(bad_x)


def test_forward_int_x_message_names_x_and_dtype(lstm):
    with pytest.raises(TypeError, match=r"x must be a float32 or float64 array.*int64"):
        lstm(np.zeros((T, N, I), dtype=np.int64))
    with pytest.raises(ValueError, match=r"x must have shape.*input_size = 4"):
        lstm(np.zeros((T, N, 7)))


def test_forward_batch_first_feature_size():
    m = ln.LSTM(I, H, batch_first=True, dtype=np.float64)
    with pytest.raises(ValueError, match=r"x must have shape \(N, T, I\)"):
        m(np.zeros((N, T, I + 2)))


@pytest.mark.parametrize("hx,exc,match", [
    (np.zeros((2, D * L, N, H)), TypeError, "hx must be a tuple"),     # an array, not a pair
    ((np.zeros((D * L, N, H)),), TypeError, "hx must be a tuple"),     # one array
    (_states() + (np.zeros((D * L, N, H)),), TypeError, "hx must be a tuple"),
    ("hx", TypeError, "hx must be a tuple"),
    ((np.zeros((D * L, N, H)), None), TypeError, r"hx\[1\]"),
    ((np.zeros((D * L, N, H), dtype=np.int32), np.zeros((D * L, N, H))), TypeError,
     r"hx\[0\]"),
    ((np.zeros((D * L - 1, N, H)), np.zeros((D * L, N, H))), ValueError, r"hx\[0\]"),
    ((np.zeros((D * L, N, H)), np.zeros((D * L, N + 1, H))), ValueError, r"hx\[1\]"),
    ((np.zeros((D * L, N, H + 1)), np.zeros((D * L, N, H + 1))), ValueError, r"hx\[0\]"),
    ((np.zeros((D * L, H)), np.zeros((D * L, H))), ValueError, r"hx\[0\]"),  # unbatched
    ((np.zeros((L, N, H)), np.zeros((L, N, H))), ValueError, r"hx\[0\]"),  # D forgotten
], ids=["array", "one", "three", "str", "none", "int", "DL", "N", "H", "rank2", "no-D"])
def test_forward_bad_hx(lstm, x, hx, exc, match):
    with pytest.raises(exc, match=match):
        lstm(x, hx=hx)


def test_forward_unbatched_hx_must_be_unbatched(lstm):
    with pytest.raises(ValueError, match=r"hx\[0\] must have shape \(D\*num_layers, "
                                         r"hidden_size\)"):
        lstm(np.zeros((T, I)), hx=_states((D * L, 1, H)))


@pytest.mark.parametrize("lengths,exc", [
    ([T] * (N - 1), ValueError),                            # too few
    ([T] * (N + 1), ValueError),                            # too many
    (np.full((N, 1), T), ValueError),                       # 2-D
    (T, ValueError),                                        # a scalar
    (np.full(N, float(T)), TypeError),                      # float dtype
    ([float(T)] * N, TypeError),
    (np.ones(N, dtype=bool), TypeError),                    # bool is no count
    (["5"] * N, TypeError),
    ([T, 0, 2], ValueError),                                # 0
    ([T, T + 1, 2], ValueError),                            # > T
    ([T, -1, 2], ValueError),                               # negative
    (np.array([T, 2**40, 1], dtype=np.uint64), ValueError),
], ids=["short", "long", "2d", "scalar", "float", "float-list", "bool", "str", "zero",
        "gt-T", "negative", "huge-uint"])
def test_forward_bad_lengths(lstm, x, lengths, exc):
    with pytest.raises(exc, match="lengths"):
        lstm(x, lengths=lengths)


def test_forward_bad_lengths_torch_tensor(lstm, x):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="lengths"):
        lstm(x, lengths=torch.tensor([T, 0, 1]))
    with pytest.raises(TypeError, match="lengths"):
        lstm(x, lengths=torch.tensor([5.0, 1.0, 1.0]))


def test_failed_forward_keeps_previous_cache(lstm, x):
    """A forward that fails its argument checks does not discard the last good one."""
    lstm(x)
    with pytest.raises(ValueError, match="lengths"):
        lstm(x, lengths=[0, 1, 1])
    dx, _ = lstm.backward(np.zeros((T, N, D * H)))
    assert dx.shape == x.shape


# -------------------------------------------------------------------------------------
# LSTM.backward
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dout,exc", [
    (np.zeros((T, N, H)), ValueError),            # D·H forgotten
    (np.zeros((T + 1, N, D * H)), ValueError),
    (np.zeros((T, N + 1, D * H)), ValueError),
    (np.zeros((N, T, D * H)), ValueError),        # batch-first layout, time-major model
    (np.zeros((T, D * H)), ValueError),           # unbatched for a batched forward
    (np.zeros((T, N, D * H), dtype=np.int64), TypeError),
    (None, TypeError),
], ids=["H", "T", "N", "NT", "rank2", "int", "none"])
def test_backward_bad_dout(lstm, x, dout, exc):
    lstm(x)
    with pytest.raises(exc, match="dout"):
        lstm.backward(dout)
    # the failed call did not use up the forward
    dx, _ = lstm.backward(np.zeros((T, N, D * H)))
    assert dx.shape == x.shape


def test_backward_bad_dout_batch_first():
    m = ln.LSTM(I, H, batch_first=True, dtype=np.float64)
    m(np.zeros((N, T, I)))
    with pytest.raises(ValueError, match=r"dout must have shape \(N, T, D\*hidden_size\)"):
        m.backward(np.zeros((T, N, H)))


@pytest.mark.parametrize("dhx,exc,match", [
    (np.zeros((2, D * L, N, H)), TypeError, "dhx must be a tuple"),
    ((np.zeros((D * L, N, H)),), TypeError, "dhx must be a tuple"),
    ((np.zeros((D * L, N, H)), np.zeros((D * L, N, H), dtype=np.int8)), TypeError,
     r"dhx\[1\]"),
    ((np.zeros((L, N, H)), np.zeros((D * L, N, H))), ValueError, r"dhx\[0\]"),
    ((np.zeros((D * L, N, H)), np.zeros((D * L, N, 1))), ValueError, r"dhx\[1\]"),
    ((np.zeros((D * L, H)), np.zeros((D * L, H))), ValueError, r"dhx\[0\]"),
], ids=["array", "one", "int", "DL", "H", "rank2"])
def test_backward_bad_dhx(lstm, x, dhx, exc, match):
    lstm(x)
    with pytest.raises(exc, match=match):
        lstm.backward(np.zeros((T, N, D * H)), dhx)
    assert not any(np.any(g) for g in lstm.grads.values())


def test_backward_without_forward_eval_and_twice(lstm, x):
    dout = np.zeros((T, N, D * H))
    with pytest.raises(RuntimeError, match="forward"):
        lstm.backward(dout)
    lstm(x)
    lstm.backward(dout)
    with pytest.raises(RuntimeError, match="once"):
        lstm.backward(dout)
    lstm.eval()
    lstm(x)
    with pytest.raises(RuntimeError, match="eval"):
        lstm.backward(dout)


# -------------------------------------------------------------------------------------
# load_state_dict
# -------------------------------------------------------------------------------------

def _other_state(model):
    """A valid state dict, every value different from the model's."""
    return {k: v * 0.5 + 0.25 for k, v in model.state_dict().items()}


def _assert_load_fails(model, bad, exc, match):
    before = model.state_dict()
    with pytest.raises(exc, match=match):
        model.load_state_dict(bad)
    after = model.state_dict()
    assert list(after) == list(before)
    assert_all_equal(list(after.values()), list(before.values()), list(before))


def test_load_missing_key(lstm):
    sd = _other_state(lstm)
    del sd["bias_hh_l1_reverse"]
    _assert_load_fails(lstm, sd, KeyError, r"missing \['bias_hh_l1_reverse'\]")


def test_load_unexpected_key(lstm):
    sd = _other_state(lstm)
    sd["weight_ih_l2"] = np.zeros((4 * H, D * H))
    _assert_load_fails(lstm, sd, KeyError, r"unexpected \['weight_ih_l2'\]")


def test_load_bias_into_model_without_bias():
    m = ln.LSTM(I, H, bias=False, dtype=np.float64)
    sd = _other_state(ln.LSTM(I, H, dtype=np.float64))
    _assert_load_fails(m, sd, KeyError, "bias_ih_l0")


# The last parameter in load order is the bad one: every other one would already have
# been written by a load that is not all-or-nothing.
LAST = "bias_hh_l1_reverse"


@pytest.mark.parametrize("value,exc,match", [
    (np.zeros(4 * H + 1), ValueError, "shape"),
    (np.zeros((4 * H, 1)), ValueError, "shape"),
    (np.zeros(4 * H, dtype=np.int64), TypeError, "float32 or float64"),
    (np.zeros(4 * H, dtype=np.float16), TypeError, "float32 or float64"),
    (np.zeros(4 * H, dtype=bool), TypeError, "float32 or float64"),
    (np.full(4 * H, np.nan), ValueError, "finite"),
    (np.r_[np.zeros(4 * H - 1), np.inf], ValueError, "finite"),
    (np.r_[-np.inf, np.zeros(4 * H - 1)].astype(np.float32), ValueError, "finite"),
], ids=["shape", "rank", "int", "float16", "bool", "nan", "inf", "-inf-float32"])
def test_load_bad_value_leaves_model_unchanged(lstm, value, exc, match):
    sd = _other_state(lstm)
    sd[LAST] = value
    _assert_load_fails(lstm, sd, exc, match)
    with pytest.raises(exc, match=LAST):
        lstm.load_state_dict(sd)


def test_load_bad_first_weight(lstm):
    sd = _other_state(lstm)
    sd["weight_ih_l0"] = np.zeros((4 * H, I + 1))
    _assert_load_fails(lstm, sd, ValueError, "weight_ih_l0")


def test_load_bad_torch_tensor(lstm):
    torch = pytest.importorskip("torch")
    sd = {k: torch.from_numpy(v) for k, v in _other_state(lstm).items()}
    sd[LAST] = torch.full((4 * H,), float("nan"))
    _assert_load_fails(lstm, sd, ValueError, LAST)
    sd[LAST] = torch.zeros(4 * H, dtype=torch.int32)
    _assert_load_fails(lstm, sd, TypeError, LAST)


def test_load_float64_overflowing_float32_model():
    m = ln.LSTM(I, H, dtype=np.float32, seed=0)
    sd = _other_state(m)
    sd = {k: v.astype(np.float64) for k, v in sd.items()}
    sd["weight_hh_l0"][0, 0] = 1e300  # finite in float64, inf in float32
    before = m.state_dict()
    with pytest.raises(ValueError, match="weight_hh_l0"):
        m.load_state_dict(sd)
    for k, v in m.state_dict().items():
        assert np.array_equal(v, before[k])


# -------------------------------------------------------------------------------------
# LSTMCell
# -------------------------------------------------------------------------------------

@pytest.fixture
def cell():
    return ln.LSTMCell(I, H, dtype=np.float64, seed=0)


@pytest.mark.parametrize("bad_x,exc", [
    (np.zeros((N, I), dtype=np.int32), TypeError),
    (np.zeros((N, I), dtype=np.float16), TypeError),
    (np.zeros((1, N, I)), ValueError),      # rank 3
    (np.zeros(()), ValueError),             # rank 0
    (np.zeros((N, I + 1)), ValueError),
    (np.zeros(I - 1), ValueError),
    (np.zeros((0, I)), ValueError),         # no rows
], ids=["int", "float16", "rank3", "rank0", "features", "unbatched-features", "N0"])
def test_cell_bad_x(cell, bad_x, exc):
    with pytest.raises(exc, match="x"):
        cell(bad_x)


@pytest.mark.parametrize("hx,exc,match", [
    (np.zeros((2, N, H)), TypeError, "hx must be a tuple"),
    ((np.zeros((N, H)),), TypeError, "hx must be a tuple"),
    ((np.zeros((N, H)), np.zeros((N, H), dtype=np.int64)), TypeError, r"hx\[1\]"),
    ((np.zeros((N + 1, H)), np.zeros((N, H))), ValueError, r"hx\[0\]"),
    ((np.zeros((N, H)), np.zeros((N, H - 1))), ValueError, r"hx\[1\]"),
    ((np.zeros(H), np.zeros(H)), ValueError, r"hx\[0\]"),        # unbatched for batched x
    ((np.zeros((1, N, H)), np.zeros((1, N, H))), ValueError, r"hx\[0\]"),  # LSTM's layout
], ids=["array", "one", "int", "N", "H", "unbatched", "rank3"])
def test_cell_bad_hx(cell, hx, exc, match):
    with pytest.raises(exc, match=match):
        cell(np.zeros((N, I)), hx)


def test_cell_unbatched_hx_must_be_unbatched(cell):
    with pytest.raises(ValueError, match=r"hx\[0\] must have shape \(hidden_size,\)"):
        cell(np.zeros(I), (np.zeros((1, H)), np.zeros((1, H))))


@pytest.mark.parametrize("dh,dc,exc,match", [
    (np.zeros((N, H + 1)), np.zeros((N, H)), ValueError, "dh"),
    (np.zeros(H), None, ValueError, "dh"),
    (np.zeros((N, H)), np.zeros((N + 1, H)), ValueError, "dc"),
    (np.zeros((N, H), dtype=np.int64), None, TypeError, "dh"),
    (np.zeros((N, H)), np.zeros((N, H), dtype=np.int64), TypeError, "dc"),
    (None, None, TypeError, "dh"),
], ids=["dh-shape", "dh-unbatched", "dc-shape", "dh-int", "dc-int", "dh-none"])
def test_cell_bad_backward_args(cell, dh, dc, exc, match):
    cell(np.zeros((N, I)))
    with pytest.raises(exc, match=match):
        cell.backward(dh, dc)
    assert not any(np.any(g) for g in cell.grads.values())


def test_cell_backward_without_forward_eval_and_twice(cell):
    dh = np.zeros((N, H))
    with pytest.raises(RuntimeError, match="forward"):
        cell.backward(dh)
    cell(np.zeros((N, I)))
    cell.backward(dh)
    with pytest.raises(RuntimeError, match="once"):
        cell.backward(dh)
    cell.eval()
    cell(np.zeros((N, I)))
    with pytest.raises(RuntimeError, match="eval"):
        cell.backward(dh)


def test_cell_load_state_dict_errors(cell):
    sd = _other_state(cell)
    del sd["bias_hh"]
    _assert_load_fails(cell, sd, KeyError, "bias_hh")
    sd = _other_state(cell)
    sd["weight_ih_l0"] = sd.pop("weight_ih")  # LSTM's name
    _assert_load_fails(cell, sd, KeyError, "weight_ih_l0")
    sd = _other_state(cell)
    sd["bias_hh"] = np.zeros(4 * H + 1)
    _assert_load_fails(cell, sd, ValueError, "bias_hh")
    sd["bias_hh"] = np.zeros(4 * H, dtype=np.int32)
    _assert_load_fails(cell, sd, TypeError, "bias_hh")
    sd["bias_hh"] = np.full(4 * H, np.inf)
    _assert_load_fails(cell, sd, ValueError, "bias_hh")
