# Shared by the CI scripts (sourced, not run).

# The kernels' own tests: what the sanitizer run and every wheel run.
KERNEL_TESTS=(tests/test_lstm.py tests/test_rnn.py tests/test_lstm_cell.py tests/test_gru.py
              tests/test_gru_cell.py tests/test_rnn_cell.py tests/test_recurrent_dropout.py
              tests/test_lstm_proj.py tests/test_lstm_variants.py tests/test_gemm.py
              tests/test_variational_dropout.py tests/test_layer_norm_lstm.py tests/test_simd.py
              tests/test_errors.py)

# The one manylinux tag the repaired wheels carry: the bundled libgomp of this builder
# (Debian 12, glibc 2.36) calls pthread_* and dl* at their GLIBC_2.34 versions.
WHEEL_PLAT=manylinux_2_34_x86_64

# python_for X.Y: the path of a CPython X.Y interpreter (pyenv's, else pythonX.Y on PATH);
# no such interpreter fails the run, it is never skipped.
python_for() {
  local version=$1 candidate
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python "$(command -v "python$version" || true)"; do
    if [[ -x $candidate ]] && "$candidate" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$version'.split('.')))"; then
      echo "$candidate"
      return
    fi
  done
  echo "CI needs Python $version and found none (pyenv versions: $(ls "${PYENV_ROOT:-$HOME/.pyenv}/versions" 2>/dev/null | tr '\n' ' '))" >&2
  exit 1
}
