"""Shared tolerances, comparison helpers and model builders of the test suite.

Every numeric comparison goes through `assert_close`, with the tolerance of the dtype
taken from `RTOL`, relative to the scale of the expected values:
``max|actual - expected| <= rtol * max(1, max|expected|)``.
"""
from __future__ import annotations

import importlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lstm_native as ln

# The one place the tolerances live, by the dtype the model computes in. The reference
# is always evaluated in float64 on the model's own (rounded) parameters and inputs, so
# these bound the kernels' rounding error alone.
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}
# Against torch, relative to max(1, max|expected|): float64 to 1e-12, float32 to 1e-6
# (both libraries round in float32).
TORCH_RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-6}

DTYPES = [np.float32, np.float64]


def rtol_for(dtype) -> float:
    return RTOL[np.dtype(dtype)]


def max_rel_err(actual, expected) -> float:
    """max|actual - expected| / max(1, max|expected|)."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def assert_close(actual, expected, dtype, name: str = "", rtol: float | None = None) -> None:
    """actual == expected up to the tolerance of `dtype`, relative to expected's scale."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    assert np.all(np.isfinite(actual)), f"{name}: non-finite values"
    tol = rtol_for(dtype) if rtol is None else rtol
    err = max_rel_err(actual, expected)
    assert err <= tol, f"{name}: relative error {err:.3e} > {tol:.1e}"


def numerical_grad(f, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() with respect to every element of `a`,
    perturbed in place (so `a` may be a live parameter array) and restored; float64."""
    g = np.zeros(a.shape, np.float64)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + eps
        up = f()
        a[idx] = old - eps
        down = f()
        a[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g


def check_finite_differences(analytic: dict, arrays: dict, loss, eps: float = 1e-6,
                             rtol: float = 1e-6) -> None:
    """Every coordinate of every array of `arrays` (changed in place, then restored):
    `analytic[name]` against central differences of `loss()`, within rtol of
    max(1, |numeric|)."""
    for name, a in arrays.items():
        numeric_grad = numerical_grad(loss, a, eps)
        for idx in np.ndindex(a.shape):
            numeric = numeric_grad[idx]
            assert abs(numeric - analytic[name][idx]) <= rtol * max(1.0, abs(numeric)), \
                f"{name}{idx}: analytic {analytic[name][idx]!r}, numeric {numeric!r}"


def torch_grid(batched: dict, unbatched: dict, final_grads: str) -> list[dict]:
    """The conformance grid against torch: layers × directions × batch_first × lengths ×
    hx × bias over a batched input of the sizes `batched`, and the unbatched input (no
    lengths, batch_first meaningless) of the sizes `unbatched` over layers × directions ×
    hx × bias; the gradients of the final states (the case's key `final_grads`) always
    flow in."""
    flags = (False, True)
    return [
        dict(batched, L=L, bi=bi, bf=bf, lengths=lengths, hx=hx, bias=bias,
             **{final_grads: True})
        for L, bi, bf, lengths, hx, bias in itertools.product((1, 2), flags, flags, flags,
                                                              flags, (True, False))
    ] + [
        dict(unbatched, N=1, L=L, bi=bi, hx=hx, bias=bias, batched=False,
             **{final_grads: True})
        for L, bi, hx, bias in itertools.product((1, 2), flags, flags, (True, False))
    ]


def grid_id(cfg: dict) -> str:
    """A test id for a configuration of `torch_grid`."""
    parts = [f"L{cfg['L']}"] + [k for k in ("bi", "bf", "lengths", "hx") if cfg.get(k)]
    if not cfg["bias"]:
        parts.append("nobias")
    if cfg.get("batched") is False:
        parts.append("unbatched")
    return "-".join(parts)


SIMD_LEVELS = ["generic", "avx2", "avx512"]


def run_at_simd_level(script: str, level: str, timeout: float = 300) -> dict:
    """Run `script` in a fresh interpreter with the kernels forced to `level`
    (LSTM_NATIVE_ISA) and return the JSON object its last line prints, which must hold
    the "level" the kernels ran; skip when this CPU offers less than `level`."""
    run = subprocess.run([sys.executable, "-c", script],
                         env=dict(os.environ, LSTM_NATIVE_ISA=level), capture_output=True,
                         text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if SIMD_LEVELS.index(result["level"]) < SIMD_LEVELS.index(level):
        pytest.skip(f"this CPU offers {result['level']}, not {level}")
    assert result["level"] == level
    return result


def lstm_simd_check(variants: list[dict]) -> str:
    """A script for `run_at_simd_level`: for each of `variants` (LSTM keyword arguments)
    and each dtype, a training step of a 2-layer bidirectional LSTM with H = 37 (not a
    multiple of any vector width) on uneven lengths against the reference; it prints the
    worst relative difference per dtype."""
    return textwrap.dedent(f"""
        import json, numpy as np, lstm_native as ln
        from lstm_native import _recurrent, reference as ref
        worst = {{}}
        for dtype in (np.float32, np.float64):
            for options in {variants!r}:
                rng = np.random.default_rng(0)
                x = rng.standard_normal((9, 7, 5)).astype(dtype)
                lengths = np.array([9, 3, 7, 1, 9, 5, 8])
                m = ln.LSTM(5, 37, 2, bidirectional=True, dtype=dtype, seed=2, n_threads=2,
                            **options)
                out, (h, c) = m(x, lengths=lengths)
                dout = rng.standard_normal(out.shape).astype(dtype)
                dx, (dh0, dc0) = m.backward(dout)
                params = {{k: v.astype(np.float64) for k, v in m.state_dict().items()}}
                r_out, (r_h, r_c), cache = ref.lstm_forward(
                    x.astype(np.float64), params, lengths=lengths, num_layers=2,
                    bidirectional=True, clip=m.clip, input_forget=m.input_forget)
                r_dx, (r_dh0, r_dc0), r_grads = ref.lstm_backward(dout.astype(np.float64),
                                                                  cache)
                pairs = [(out, r_out), (h, r_h), (c, r_c), (dx, r_dx), (dh0, r_dh0),
                         (dc0, r_dc0)]
                pairs += [(m.grads[k], r_grads[k]) for k in r_grads]
                name = np.dtype(dtype).name
                worst[name] = max(worst.get(name, 0.0), max(
                    float(np.abs(a - b).max() / max(1.0, np.abs(b).max())) for a, b in pairs))
        print(json.dumps({{"level": _recurrent.simd_level(), "worst": worst}}))
    """)


def assert_threads_bitwise_equal(run, keys) -> None:
    """`run(n_threads)` (the results of a training step, as `model_run`'s, with the eval
    output under "out_eval") gives bitwise the same `keys` and gradients for 1 and 2
    threads."""
    one, two = run(1), run(2)
    names = list(keys) + ["out_eval"]
    assert_all_equal([one[k] for k in names], [two[k] for k in names], names)
    assert_all_equal(list(one["grads"].values()), list(two["grads"].values()))


def assert_grads_close(actual: dict, expected: dict, dtype, rtol: float | None = None) -> None:
    """Same keys (same order not required) and every gradient close."""
    assert set(actual) == set(expected), f"keys differ: {sorted(actual)} vs {sorted(expected)}"
    for k in expected:
        assert_close(actual[k], expected[k], dtype, name=f"grad {k}", rtol=rtol)


def assert_all_equal(a_list, b_list, names=None) -> None:
    """Bitwise equality of two lists of arrays (or None)."""
    assert len(a_list) == len(b_list)
    for i, (a, b) in enumerate(zip(a_list, b_list)):
        name = names[i] if names else str(i)
        if a is None or b is None:
            assert a is None and b is None, name
            continue
        assert a.dtype == b.dtype, name
        assert np.array_equal(a, b), f"{name}: not bitwise equal"


# -- peers that must be there ----------------------------------------------------------
# A test that needs an optional peer (torch, onnx, onnxruntime) skips where that peer is
# not installed. Where the peers are meant to be there (CI on Python 3.11, the one version
# torch 2.13.0 installs on), LSTM_NATIVE_REQUIRE_PEERS lists them, e.g. torch,onnxruntime,
# and one that does not import stops the run (pytest exits 4): a broken install cannot
# pass by skipping the cross-checks. Keras is tested on the torch backend (its default,
# TensorFlow, is not installed): set before anything imports it.
os.environ.setdefault("KERAS_BACKEND", "torch")


def pytest_configure(config):
    required = os.environ.get("LSTM_NATIVE_REQUIRE_PEERS", "")
    for name in filter(None, (p.strip() for p in required.split(","))):
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise pytest.UsageError(
                f"LSTM_NATIVE_REQUIRE_PEERS names {name!r}, but it does not import: {e}") from e
        # mpi4py's tests launch their ranks with MPI's mpiexec: required with it.
        if name == "mpi4py" and mpiexec_path() is None:
            raise pytest.UsageError("LSTM_NATIVE_REQUIRE_PEERS names 'mpi4py', but there is "
                                    "no mpiexec beside this Python or on PATH")


def mpiexec_path() -> str | None:
    """MPI's launcher: the one installed beside this Python (the mpich wheel's), else the
    one on PATH; None when there is none."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("mpiexec")


# -- torch ----------------------------------------------------------------------------

def import_torch():
    """torch, or skip the test when it is not installed."""
    return pytest.importorskip("torch")


def torch_dtype(dtype):
    torch = import_torch()
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


def to_numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy()


# -- ONNX Runtime ---------------------------------------------------------------------

def ort_session(graph, opset: int):
    """An ONNX Runtime CPU session on `graph`, a model of the default domain at `opset`;
    skips the test when onnx or onnxruntime is not installed.

    The model carries the oldest IR version its opset allows (onnx's `VERSION_TABLE`, e.g.
    7 for opset 14), not the installed onnx's own: the newest onnx writes IR versions the
    newest onnxruntime of an older Python cannot read (onnx 1.23 writes 14, onnxruntime
    1.23.2, the last for Python 3.10, reads up to 11), while any onnxruntime that implements
    the opset reads its IR version (onnxruntime's docs/Versioning.md: 1.8 and later, opset 14
    and IR 7).
    """
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    opsets = [onnx.helper.make_opsetid("", opset)]
    model = onnx.helper.make_model(graph, opset_imports=opsets,
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


# -- random data and models -----------------------------------------------------------

def randn(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def random_lengths(rng: np.random.Generator, N: int, T: int) -> np.ndarray:
    """N lengths in 1..T in no sorted order: a full-length one at index 1 and, when
    N >= 3, a middle one first and a length-1 one last."""
    lengths = rng.integers(1, T + 1, size=N)
    lengths[min(1, N - 1)] = T
    if N >= 3:
        lengths[0] = max(1, (T + 1) // 2)
        lengths[-1] = 1
    return lengths


def make_lstm(input_size, hidden_size, num_layers=1, *, bias=True, batch_first=False,
              bidirectional=False, proj_size=0, dtype=np.float64, seed=0, n_threads=None,
              **variant):
    """An LSTM (with the options `variant` names: peepholes, clip, ...) and its parameters
    in float64, as the reference takes them."""
    model = ln.LSTM(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
                    bidirectional=bidirectional, proj_size=proj_size, dtype=dtype, seed=seed,
                    n_threads=n_threads, **variant)
    params = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    return model, params


def lstm_case(cfg, variant, dtype, seed=0, n_threads=None):
    """An LSTM with the options of `variant` (LSTM keyword arguments), its float64
    parameters and random inputs (`model_run`'s and `reference_run`'s arguments) for
    one configuration: T, N, I, H, L sizes, P (0: no projection); bi, bf, lengths, hx,
    dhx flags."""
    cfg = dict(dict(P=0, bi=False, bf=False, lengths=False, hx=False, dhx=False), **cfg)
    rng = np.random.default_rng(seed)
    T, N, I, H, P, L = (cfg[k] for k in ("T", "N", "I", "H", "P", "L"))
    D = 2 if cfg["bi"] else 1
    model, params = make_lstm(I, H, L, batch_first=cfg["bf"], bidirectional=cfg["bi"],
                              proj_size=P, dtype=dtype, seed=seed, n_threads=n_threads,
                              **variant)
    x_shape = (N, T, I) if cfg["bf"] else (T, N, I)
    out_shape = x_shape[:2] + (D * (P or H),)
    pair = (lambda: (randn(rng, (D * L, N, P or H), dtype), randn(rng, (D * L, N, H), dtype)))
    case = dict(x=randn(rng, x_shape, dtype), hx=pair() if cfg["hx"] else None,
                lengths=random_lengths(rng, N, T) if cfg["lengths"] else None,
                dout=randn(rng, out_shape, dtype), dhx=pair() if cfg["dhx"] else None)
    return model, params, case


def check_lstm_finite_differences(model, case) -> dict:
    """Every coordinate of every parameter of an LSTM, x, h0 and c0 (`case` as
    `lstm_case` gives it, with hx and dhx) against central differences of
    sum(out·dout) + sum(h_n·dh_n) + sum(c_n·dc_n); returns the analytic gradients."""
    x, lengths, dout = case["x"], case["lengths"], case["dout"]
    h0, c0 = case["hx"]
    dh_n, dc_n = case["dhx"]

    def loss():
        out, (h_n, c_n) = model(x, (h0, c0), lengths=lengths)
        return np.sum(out * dout) + np.sum(h_n * dh_n) + np.sum(c_n * dc_n)

    model.zero_grad()
    loss()
    dx, (dh0, dc0) = model.backward(dout, (dh_n, dc_n))
    analytic = dict(model.grads, x=dx, h0=dh0, c0=dc0)
    check_finite_differences(analytic, dict(model.parameters(), x=x, h0=h0, c0=c0), loss)
    return analytic


def to_time_major(a, batch_first: bool, batched: bool = True):
    """(N, T, ·) -> (T, N, ·) when batch_first; unbatched (T, ·) -> (T, 1, ·)."""
    if a is None:
        return None
    a = np.asarray(a)
    if not batched:
        return a[:, None, :]
    return a.transpose(1, 0, 2) if batch_first else a


def from_time_major(a, batch_first: bool, batched: bool = True):
    if not batched:
        return a[:, 0, :]
    return a.transpose(1, 0, 2) if batch_first else a


def state_batched(pair, batched: bool):
    """A (D·L, H) state pair as (D·L, 1, H) for the reference."""
    if pair is None or batched:
        return pair
    return tuple(s[:, None, :] for s in pair)


def state_unbatched(pair, batched: bool):
    if batched:
        return pair
    return tuple(s[:, 0, :] for s in pair)


def reference_run(model, params, x, hx=None, lengths=None, dout=None, dhx=None):
    """The NumPy reference in float64 on the model's layout: out, (h_n, c_n), dx,
    (dh0, dc0), grads — all in the layout the model takes and returns."""
    from lstm_native import reference as ref

    batched = np.ndim(x) == 3
    f64 = (lambda a: None if a is None else np.asarray(a, dtype=np.float64))
    x_tm = to_time_major(f64(x), model.batch_first, batched)
    hx64 = None if hx is None else tuple(f64(s) for s in hx)
    dhx64 = None if dhx is None else tuple(f64(s) for s in dhx)
    out, (h_n, c_n), cache = ref.lstm_forward(
        x_tm, params, state_batched(hx64, batched), lengths,
        num_layers=model.num_layers, bidirectional=model.bidirectional,
        clip=model.clip, input_forget=model.input_forget)
    result = {
        "out": from_time_major(out, model.batch_first, batched),
        "h_n": state_unbatched((h_n, c_n), batched)[0],
        "c_n": state_unbatched((h_n, c_n), batched)[1],
    }
    if dout is not None:
        dout_tm = to_time_major(f64(dout), model.batch_first, batched)
        dx, (dh0, dc0), grads = ref.lstm_backward(dout_tm, cache, state_batched(dhx64, batched))
        result["dx"] = from_time_major(dx, model.batch_first, batched)
        result["dh0"], result["dc0"] = state_unbatched((dh0, dc0), batched)
        result["grads"] = grads
    return result


def model_run(model, x, hx=None, lengths=None, dout=None, dhx=None, input_grad=True):
    """Forward (and backward when dout is given) of the model, from zeroed grads."""
    model.zero_grad()
    out, (h_n, c_n) = model(x, hx=hx, lengths=lengths)
    result = {"out": out, "h_n": h_n, "c_n": c_n}
    if dout is not None:
        dx, (dh0, dc0) = model.backward(dout, dhx, input_grad=input_grad)
        result.update(dx=dx, dh0=dh0, dc0=dc0,
                      grads={k: v.copy() for k, v in model.grads.items()})
    return result


def assert_results_close(actual: dict, expected: dict, dtype, rtol=None) -> None:
    for key in ("out", "h_n", "c_n", "dx", "dh0", "dc0"):
        if key in expected:
            assert_close(actual[key], expected[key], dtype, name=key, rtol=rtol)
    if "grads" in expected:
        assert_grads_close(actual["grads"], expected["grads"], dtype, rtol=rtol)


# -- the command line ---------------------------------------------------------------------

def run_cli(capsys, argv):
    """`python -m lstm_native ARGV` in this process: (exit code, stdout, stderr)."""
    from lstm_native import cli

    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out: str) -> dict:
    """The JSON summary a `--json` run prints as its last line."""
    return json.loads(out.strip().splitlines()[-1])


def has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
