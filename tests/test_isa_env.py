"""LSTM_NATIVE_ISA: a value the kernels do not know is an error at import, not ignored."""
import os
import subprocess
import sys

import pytest

_IMPORT = "import lstm_native._recurrent as r; print(r.simd_level())"


def run_import(value):
    env = dict(os.environ, LSTM_NATIVE_ISA=value)
    return subprocess.run([sys.executable, "-c", _IMPORT], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("value", ["avx-512", "AVX2", "sse", " generic"])
def test_unknown_value_raises_at_import(value):
    run = run_import(value)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: ")
    assert "LSTM_NATIVE_ISA" in last and repr(value) in last
    assert ("'generic', 'avx2', 'avx2-vnni', 'avx512', 'avx512-vnni', 'avx512-bf16'" in last
            and "unset or empty" in last)


@pytest.mark.parametrize("value", ["", "generic", "avx2", "avx2-vnni", "avx512",
                                   "avx512-vnni", "avx512-bf16"])
def test_known_values_load_the_kernels(value):
    run = run_import(value)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() in ("generic", "avx2", "avx512")
    if value == "generic":
        assert run.stdout.strip() == "generic"
