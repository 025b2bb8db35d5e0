"""How the package sets up OpenMP's threads."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

_SHOW = "import os, lstm_native; print(os.environ.get('OMP_WAIT_POLICY'))"


@pytest.mark.parametrize("given,expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_threads_sleep_between_regions_unless_the_user_says(given, expected):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    run = subprocess.run([sys.executable, "-c", _SHOW], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == expected


def test_a_users_spin_count_is_left_alone():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["GOMP_SPINCOUNT"] = "1000"
    run = subprocess.run([sys.executable, "-c", _SHOW], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "None"
