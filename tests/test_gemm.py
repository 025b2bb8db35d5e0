"""The kernels' two GEMMs on their own, against numpy's matmul: the BLAS wrapper
(src/_blas.pxd) and the packed GEMM of the recurrence (src/_gemm_packed.pxd) at every SIMD
level, through the test-only module lstm_native._kernel_testing.

The shapes cross every edge of the kernels: rows 1..13 (one, two and a part of the 6-row
register tiles), columns that are and are not multiples of the vector widths (4, 8, 16
lanes) and of the widest tile (32 / 64 columns).
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lstm_native import _kernel_testing as kt

from conftest import DTYPES, assert_close

ROWS = range(1, 14)
COLS = [1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 70]
DEPTHS = [1, 3, 17]
LEVELS = ["generic", "avx2", "avx512"]
DTYPE_IDS = ["float32", "float64"]


def _pool(rng, dtype, rows=80, cols=160):
    """Random values to take matrices from as views: a view of it has rows further
    apart than its own length (a leading dimension larger than the row)."""
    return rng.standard_normal((rows, cols)).astype(dtype)


def _matrix(pool, rows, cols, layout):
    """A rows × cols matrix of pool's values: 'contiguous', or 'strided' (a view whose
    rows are pool's rows apart)."""
    view = pool[:rows, :cols]
    return np.ascontiguousarray(view) if layout == "contiguous" else view


def _f64(a):
    return np.asarray(a, dtype=np.float64)


# -- the BLAS wrapper -----------------------------------------------------------------

@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["B", "Bt"])
@pytest.mark.parametrize("trans_a", [False, True], ids=["A", "At"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_blas_gemm_matches_numpy(dtype, trans_a, trans_b, layout):
    rng = np.random.default_rng(0)
    pool_a, pool_b, pool_c = (_pool(rng, dtype) for _ in range(3))
    alpha, beta = 1.5, -0.5
    for m in ROWS:
        for n in COLS:
            for k in DEPTHS:
                a = _matrix(pool_a, *((k, m) if trans_a else (m, k)), layout)
                b = _matrix(pool_b, *((n, k) if trans_b else (k, n)), layout)
                c = _matrix(pool_c.copy(), m, n, layout)
                op_a = _f64(a).T if trans_a else _f64(a)
                op_b = _f64(b).T if trans_b else _f64(b)
                want = alpha * op_a @ op_b + beta * _f64(c)
                kt.blas_gemm(trans_a, trans_b, alpha, a, b, beta, c)
                assert_close(c, want, dtype, name=f"m={m} n={n} k={k}")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_blas_gemm_with_beta_zero_overwrites_c(dtype):
    # The driver hands BLAS uninitialised scratch with beta = 0: what it held must not
    # leak into the result, NaN included.
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((13, 17)).astype(dtype), rng.standard_normal((17, 65)).astype(dtype)
    c = np.full((13, 65), np.nan, dtype)
    kt.blas_gemm(False, False, 1.0, a, b, 0.0, c)
    assert_close(c, _f64(a) @ _f64(b), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_blas_gemm_edges(dtype):
    rng = np.random.default_rng(2)
    c = rng.standard_normal((5, 7)).astype(dtype)
    # k = 0: an empty sum, C = beta·C.
    want = 0.5 * _f64(c)
    kt.blas_gemm(False, False, 2.0, np.empty((5, 0), dtype), np.empty((0, 7), dtype), 0.5, c)
    assert_close(c, want, dtype)
    # No rows or no columns: nothing to do, and nothing touched.
    kt.blas_gemm(False, False, 1.0, np.empty((0, 3), dtype), np.ones((3, 7), dtype), 0.0,
                 np.empty((0, 7), dtype))
    kt.blas_gemm(True, True, 1.0, np.ones((3, 5), dtype), np.empty((0, 3), dtype), 0.0,
                 np.empty((5, 0), dtype))
    with pytest.raises(ValueError, match="shape"):
        kt.blas_gemm(False, False, 1.0, np.ones((5, 3), dtype), np.ones((4, 7), dtype), 0.0, c)
    with pytest.raises(ValueError, match="adjacent columns"):
        kt.blas_gemm(False, False, 1.0, np.ones((5, 6), dtype)[:, ::2], np.ones((3, 7), dtype),
                     0.0, c)


# -- the packed GEMM ------------------------------------------------------------------
# The checks are functions of the dtype so that the subprocesses of
# test_packed_gemm_at_every_simd_level run them too.

def _packed_b(pool, k, n, layout):
    """B (k × n) as the driver gives it to `pack`: 'rows' (W_hh in backward, k × n
    row-major), 'transposed' (W_hhᵀ in forward, a view of an n × k array), or 'strided'
    (rows two apart and columns backwards, to reach any stride)."""
    if layout == "rows":
        return np.ascontiguousarray(pool[:k, :n])
    if layout == "transposed":
        return np.ascontiguousarray(pool[:n, :k]).T
    return pool[: 2 * k : 2, ::-1][:, :n]


def check_packed_gemm(dtype, layout):
    """C += A·B for every shape, A with rows further apart than k on odd m."""
    rng = np.random.default_rng(3)
    pool_a, pool_c = _pool(rng, dtype), _pool(rng, dtype)
    pool_b = _pool(rng, dtype, rows=80, cols=80)
    for m in ROWS:
        for n in COLS:
            for k in DEPTHS:
                a = _matrix(pool_a, m, k, "strided" if m % 2 else "contiguous")
                b = _packed_b(pool_b, k, n, layout)
                c = np.ascontiguousarray(pool_c[:m, :n])
                want = _f64(c) + _f64(a) @ _f64(b)
                kt.packed_gemm(a, b, c)
                assert_close(c, want, dtype, name=f"{layout} m={m} n={n} k={k}")


def check_packed_rows_independent(dtype):
    """Rows computed alone or in any blocks give the same bits as all rows at once: each
    element is summed in the same order whatever the tile (what lets the threads split
    the batch rows)."""
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((13, 37)).astype(dtype), rng.standard_normal((37, 70)).astype(dtype)
    c0 = rng.standard_normal((13, 70)).astype(dtype)
    whole = c0.copy()
    kt.packed_gemm(a, b, whole)
    for bounds in ([0, 13], list(range(14)), [0, 5, 13], [0, 6, 12, 13], [0, 7, 13]):
        parts = c0.copy()
        for r0, r1 in zip(bounds[:-1], bounds[1:]):
            kt.packed_gemm(a[r0:r1], b, parts[r0:r1])
        assert np.array_equal(parts, whole), bounds


def check_packed_column_blocks(dtype):
    """Blocks of columns from the packed panels (`packed_columns`, as the hidden-unit
    split takes them) give the whole product's bits, and touch no other column."""
    tile = kt.packed_tile_columns(dtype)
    rng = np.random.default_rng(5)
    n = 3 * tile + 5
    a, b = rng.standard_normal((7, 19)).astype(dtype), rng.standard_normal((19, n)).astype(dtype)
    c0 = rng.standard_normal((7, n)).astype(dtype)
    whole = c0.copy()
    kt.packed_gemm(a, b, whole)
    for bounds in ([0, tile, 2 * tile, n], [0, 2 * tile, n], [0, tile, n]):
        parts = c0.copy()
        for col0, col1 in zip(bounds[:-1], bounds[1:]):
            block = c0.copy()
            kt.packed_gemm(a, b, block, col0, col1)
            assert np.array_equal(block[:, :col0], c0[:, :col0])
            assert np.array_equal(block[:, col1:], c0[:, col1:])
            parts[:, col0:col1] = block[:, col0:col1]
        assert np.array_equal(parts, whole), bounds


PACKED_LAYOUTS = ["rows", "transposed", "strided"]


def check_packed_two_products(dtype):
    """C = A1·B1 + A2·B2 (a step's projection and recurrent product) for every shape,
    overwriting what C held (NaN included); each row the same bits alone as among all
    rows, and the same as C += A1·B1 then C += A2·B2 from C = 0 (both sum each element
    from zero in k order, one fused multiply-add per term)."""
    rng = np.random.default_rng(5)
    pool_a, pool_b = _pool(rng, dtype), _pool(rng, dtype, rows=80, cols=80)
    for m in ROWS:
        for n in COLS:
            for k1, k2 in [(1, 3), (17, 1), (3, 17)]:
                a1 = _matrix(pool_a, m, k1, "strided" if m % 2 else "contiguous")
                a2 = np.ascontiguousarray(pool_a[-m:, -k2:])
                b1, b2 = _packed_b(pool_b, k1, n, "transposed"), pool_b[-k2:, :n]
                c = np.full((m, n), np.nan, dtype)
                kt.packed_gemm2(a1, b1, a2, b2, c)
                assert_close(c, _f64(a1) @ _f64(b1) + _f64(a2) @ _f64(b2), dtype,
                             name=f"m={m} n={n} k={k1}+{k2}")
                rows = np.full((m, n), np.nan, dtype)
                for r in range(m):
                    kt.packed_gemm2(a1[r:r + 1], b1, a2[r:r + 1], b2, rows[r:r + 1])
                assert np.array_equal(rows, c), (m, n, k1, k2)
    a1, a2 = pool_a[:7, :9], pool_a[7:14, :5]
    b1, b2 = pool_b[:9, :70], pool_b[9:14, :70]
    two = np.zeros((7, 70), dtype)
    kt.packed_gemm2(a1, b1, a2, b2, two)
    one = np.zeros((7, 70), dtype)
    kt.packed_gemm(np.hstack([a1, a2]), np.vstack([b1, b2]), one)
    assert np.array_equal(two, one)


def check_packed_everything():
    for dtype in DTYPES:
        for layout in PACKED_LAYOUTS:
            check_packed_gemm(dtype, layout)
        check_packed_rows_independent(dtype)
        check_packed_column_blocks(dtype)
        check_packed_two_products(dtype)


@pytest.mark.parametrize("layout", PACKED_LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_packed_gemm_matches_numpy(dtype, layout):
    check_packed_gemm(dtype, layout)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_packed_gemm_rows_independent(dtype):
    check_packed_rows_independent(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_packed_gemm_column_blocks(dtype):
    check_packed_column_blocks(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_packed_gemm_two_products(dtype):
    check_packed_two_products(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_packed_gemm_edges(dtype):
    tile = kt.packed_tile_columns(dtype)
    assert tile in (32, 64)
    c = np.ones((3, 5), dtype)
    # k = 0 adds an empty sum; no rows, nothing.
    kt.packed_gemm(np.empty((3, 0), dtype), np.empty((0, 5), dtype), c)
    assert np.all(c == 1)
    kt.packed_gemm(np.empty((0, 4), dtype), np.ones((4, 5), dtype), np.empty((0, 5), dtype))
    b = np.ones((4, tile + 8), dtype)
    with pytest.raises(ValueError, match="multiple of"):
        kt.packed_gemm(np.ones((3, 4), dtype), b, np.zeros((3, tile + 8), dtype), col0=8)
    with pytest.raises(ValueError, match="shape"):
        kt.packed_gemm(np.ones((3, 4), dtype), b, np.zeros((3, tile), dtype))


# The BLAS wrapper calls SciPy's BLAS, which LSTM_NATIVE_ISA does not reach: only the
# packed GEMM has a kernel per SIMD level.
_AT_LEVEL = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {tests!r})
    import test_gemm
    from lstm_native import _kernel_testing
    test_gemm.check_packed_everything()
    print(json.dumps({{"level": _kernel_testing.simd_level()}}))
""")


@pytest.mark.parametrize("level", LEVELS)
def test_packed_gemm_at_every_simd_level(level):
    env = dict(os.environ, LSTM_NATIVE_ISA=level)
    script = _AT_LEVEL.format(tests=str(pathlib.Path(__file__).resolve().parent))
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if LEVELS.index(result["level"]) < LEVELS.index(level):
        pytest.skip(f"this CPU offers {result['level']}, not {level}")
    assert result["level"] == level
