"""The hand-vectorised parts: the nonlinearities' accuracy, and every SIMD level the CPU
offers giving the reference's numbers, for the LSTM, the RNN and the RNNCell (tanh and
ReLU)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lstm_native import _recurrent

from conftest import DTYPES

LEVELS = ["generic", "avx2", "avx512"]


def _reference(name, x):
    x = x.astype(np.float64)
    with np.errstate(over="ignore"):
        if name == "exp":
            return np.exp(x)
        if name == "sigmoid":
            return 1.0 / (1.0 + np.exp(-x))
        return np.tanh(x)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", ["exp", "sigmoid", "tanh"])
def test_nonlinearities_within_a_few_ulps(name, dtype):
    x = np.concatenate([np.linspace(-90, 90, 100001), np.linspace(-0.1, 0.1, 10001),
                        [0.0, -0.0, 1e-30, -1e-30]]).astype(dtype)
    y = np.empty_like(x)
    _recurrent.elementwise(name, x, y)
    want = _reference(name, x)
    info = np.finfo(dtype)
    normal = np.isfinite(want) & (np.abs(want) < info.max / 4) & (np.abs(want) > info.tiny * 4)
    rel = np.abs(y[normal] - want[normal]) / np.abs(want[normal])
    # tanh loses a few bits to cancellation in 1 - 2/(e^2x + 1) just above |x| = 1/16.
    assert rel.max() <= 16 * info.eps, f"{name}: {rel.max() / info.eps:.1f} ulp"
    assert np.array_equal(np.signbit(y[normal]), np.signbit(want[normal]))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_nonlinearities_saturate_without_overflow(dtype):
    x = np.array([-1e4, -1000.0, -89.0, 89.0, 1000.0, 1e4, np.inf, -np.inf], dtype=dtype)
    y = np.empty_like(x)
    _recurrent.elementwise("sigmoid", x, y)
    assert np.array_equal(y[:3] < 1e-30, [True] * 3) and np.all(y[3:6] == 1) and y[6] == 1
    assert y[7] < 1e-30 and np.all(y >= 0)
    _recurrent.elementwise("tanh", x, y)
    assert np.array_equal(y, [-1, -1, -1, 1, 1, 1, 1, -1])
    _recurrent.elementwise("exp", x[:2], y[:2])
    assert np.all(np.isfinite(y[:2])) and np.all(y[:2] >= 0) and np.all(y[:2] < 1e-30)


def test_simd_level_is_known():
    assert _recurrent.simd_level() in LEVELS


_CHECK = textwrap.dedent("""
    import json, numpy as np, lstm_native as ln
    from lstm_native import _recurrent, reference as ref
    worst = {}
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(0)
        # H = 37: rows not a multiple of any vector width, so every kernel's edges run.
        m = ln.LSTM(5, 37, 2, bidirectional=True, dtype=dtype, seed=1, n_threads=2)
        x = rng.standard_normal((9, 7, 5)).astype(dtype)
        lengths = np.array([9, 3, 7, 1, 9, 5, 8])
        out, (h, c) = m(x, lengths=lengths)
        dout = rng.standard_normal(out.shape).astype(dtype)
        dx, (dh0, dc0) = m.backward(dout)
        params = {k: v.astype(np.float64) for k, v in m.state_dict().items()}
        r_out, (r_h, r_c), cache = ref.lstm_forward(x.astype(np.float64), params, lengths=lengths,
                                                   num_layers=2, bidirectional=True)
        r_dx, (r_dh0, r_dc0), r_grads = ref.lstm_backward(dout.astype(np.float64), cache)
        pairs = [(out, r_out), (h, r_h), (c, r_c), (dx, r_dx), (dh0, r_dh0), (dc0, r_dc0)]
        pairs += [(m.grads[k], r_grads[k]) for k in r_grads]
        for nonlinearity in ("tanh", "relu"):
            m = ln.RNN(5, 37, 2, nonlinearity=nonlinearity, bidirectional=True, dtype=dtype,
                       seed=2, n_threads=2)
            out, h = m(x, lengths=lengths)
            dx, dh0 = m.backward(dout)
            params = {k: v.astype(np.float64) for k, v in m.state_dict().items()}
            r_out, r_h, cache = ref.rnn_forward(x.astype(np.float64), params, lengths=lengths,
                                               num_layers=2, bidirectional=True,
                                               nonlinearity=nonlinearity)
            r_dx, r_dh0, r_grads = ref.rnn_backward(dout.astype(np.float64), cache)
            pairs += [(out, r_out), (h, r_h), (dx, r_dx), (dh0, r_dh0)]
            pairs += [(m.grads[k], r_grads[k]) for k in r_grads]
            # RNNCell: one step on the same driver, h0 given.
            cell = ln.RNNCell(5, 37, nonlinearity=nonlinearity, dtype=dtype, seed=3,
                              n_threads=2)
            h0 = rng.standard_normal((7, 37)).astype(dtype)
            dh = rng.standard_normal((7, 37)).astype(dtype)
            h1 = cell(x[0], h0)
            dx1, dh0 = cell.backward(dh)
            params = {k: v.astype(np.float64) for k, v in cell.state_dict().items()}
            r_h1, cache = ref.rnn_cell_forward(x[0].astype(np.float64), h0.astype(np.float64),
                                               params["weight_ih"], params["weight_hh"],
                                               params["bias_ih"], params["bias_hh"],
                                               nonlinearity)
            r_dx1, r_dh0, r_grads = ref.rnn_cell_backward(dh.astype(np.float64), cache)
            pairs += [(h1, r_h1), (dx1, r_dx1), (dh0, r_dh0)]
            pairs += [(cell.grads[k], r_grads[k]) for k in r_grads]
        worst[np.dtype(dtype).name] = max(
            float(np.abs(a - b).max() / max(1.0, np.abs(b).max())) for a, b in pairs)
    print(json.dumps({"level": _recurrent.simd_level(), "worst": worst}))
""")


@pytest.mark.parametrize("level", LEVELS)
def test_every_simd_level_matches_the_reference(level):
    env = dict(os.environ, LSTM_NATIVE_ISA=level)
    run = subprocess.run([sys.executable, "-c", _CHECK], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if LEVELS.index(result["level"]) < LEVELS.index(level):
        pytest.skip(f"this CPU offers {result['level']}, not {level}")
    assert result["level"] == level
    assert result["worst"]["float64"] <= 1e-10, result
    assert result["worst"]["float32"] <= 1e-5, result
