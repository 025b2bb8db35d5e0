"""Checks an installed lstm_native from outside the source tree: that the import is the
installed copy, how it was built, and that a forward and backward pass run. Run it from
the directory the tests run in: that directory is searched first, as `python -m pytest`
searches it.

Usage: python check_installed.py [--openmp bundled|system|none]
"""
import argparse
import os
import pathlib
import sys
import sysconfig

sys.path.insert(0, os.getcwd())

import numpy as np  # noqa: E402

import lstm_native as ln  # noqa: E402
from lstm_native import _recurrent  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--openmp", choices=["bundled", "system", "none"], default="system",
                    help="bundled: the libgomp auditwheel put in lstm_native.libs is the one loaded")
args = parser.parse_args()

site = pathlib.Path(sysconfig.get_paths()["purelib"]).resolve()
for module in (ln, _recurrent):
    where = pathlib.Path(module.__file__).resolve()
    assert where.is_relative_to(site), f"{module.__name__} comes from {where}, not from {site}"

assert ln.openmp_enabled() == (args.openmp != "none"), f"openmp_enabled() is {ln.openmp_enabled()}"
if args.openmp == "bundled":
    maps = pathlib.Path("/proc/self/maps").read_text()
    assert "/lstm_native.libs/libgomp" in maps, "the wheel's own libgomp is not the one loaded"

m = ln.LSTM(3, 4, seed=0, n_threads=2)
out, (h, c) = m(np.ones((5, 2, 3), np.float32))
dx, _ = m.backward(np.ones_like(out))
assert out.shape == (5, 2, 4) and dx.shape == (5, 2, 3) and np.isfinite(dx).all()
print(f"installed lstm_native OK: {where.parent}, Python {sys.version.split()[0]}, "
      f"OpenMP {args.openmp}, SIMD {_recurrent.simd_level()}")
