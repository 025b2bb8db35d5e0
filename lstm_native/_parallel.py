"""Thread counts for the kernels, and the cap on BLAS threads around them."""
from __future__ import annotations

import contextlib
import functools
import numbers

from threadpoolctl import ThreadpoolController

from . import _openmp_helpers


def openmp_enabled() -> bool:
    """Whether the kernels were compiled with OpenMP.

    Returns
    -------
    bool
        False when the build found no OpenMP: the kernels then run on one thread.
    """
    return _openmp_helpers.openmp_enabled()


def check_n_threads(n_threads, name: str = "n_threads") -> int | None:
    """Validate a user's thread count: None or a positive int."""
    if n_threads is None:
        return None
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(f"{name} must be None or a positive int, got {n_threads!r}")
    if n_threads < 1:
        raise ValueError(f"{name} must be None or a positive int, got {n_threads}")
    return int(n_threads)


def effective_n_threads(n_threads: int | None) -> int:
    """The thread count a kernel runs with: OpenMP's default (OMP_NUM_THREADS, else the
    cores) when None, and 1 when the build has no OpenMP."""
    if not openmp_enabled():
        return 1
    if n_threads is None:
        return _openmp_helpers.max_threads()
    return n_threads


@functools.cache
def _controller() -> ThreadpoolController:
    # Inspecting the loaded libraries is slow (~ms): do it once per process.
    return ThreadpoolController()


@contextlib.contextmanager
def single_threaded_blas():
    """Cap BLAS at one thread while the kernels call it from their own OpenMP threads,
    so that the two thread pools do not oversubscribe the cores."""
    with _controller().limit(limits=1, user_api="blas"):
        yield
