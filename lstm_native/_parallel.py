"""Thread counts for the kernels, and the cap on BLAS threads around them."""
from __future__ import annotations

import contextlib
import functools
import numbers
import os
import threading

from threadpoolctl import ThreadpoolController

from . import _openmp_helpers
from ._validation import MAX_THREADS


def openmp_enabled() -> bool:
    """Whether the kernels were compiled with OpenMP.

    Returns
    -------
    bool
        False when the build found no OpenMP: the kernels then run on one thread.
    """
    return _openmp_helpers.openmp_enabled()


def check_n_threads(n_threads, name: str = "n_threads") -> int | None:
    """Validate a user's thread count: None or an int in 1..MAX_THREADS.

    The bound is fixed, not this machine's cores, so that a configuration saved on a
    larger machine loads here; `effective_n_threads` clamps it to the cores at call time.
    """
    if n_threads is None:
        return None
    expected = f"None or an int in 1..{MAX_THREADS}"
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(f"{name} must be {expected}, got {n_threads!r}")
    if not 1 <= n_threads <= MAX_THREADS:
        raise ValueError(f"{name} must be {expected}, got {n_threads}")
    return int(n_threads)


def _cores() -> int:
    """The cores this process may run on now (its CPU affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def effective_n_threads(n_threads: int | None) -> int:
    """The thread count a kernel runs with: n_threads, or OpenMP's default
    (OMP_NUM_THREADS, else the cores) when None, at most the cores this process may run
    on (more threads only wait for each other, and thousands make OpenMP abort the
    process); 1 when the build has no OpenMP."""
    if not openmp_enabled():
        return 1
    wanted = _openmp_helpers.max_threads() if n_threads is None else n_threads
    return max(1, min(wanted, _cores()))


@functools.cache
def _controller() -> ThreadpoolController:
    # Inspecting the loaded libraries is slow (~ms): do it once per process.
    return ThreadpoolController()


# The BLAS thread count is one setting of the whole process, while the kernels may run
# in several Python threads at once (concurrent inference): the first of them to enter
# caps it and the last one to leave restores it. Capping and restoring per call would
# let one thread restore the count while another still runs, and leave the cap in place
# for good when the calls end in the other order.
_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextlib.contextmanager
def single_threaded_blas():
    """Cap BLAS at one thread while the kernels call it from their own OpenMP threads,
    so that the two thread pools do not oversubscribe the cores."""
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            _blas_limiter = _controller().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
