"""Thread counts for the kernels, and the cap on BLAS threads around them."""
from __future__ import annotations

import functools
import math
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


# The default thread count follows scikit-learn's `_openmp_effective_n_threads`:
# OMP_NUM_THREADS when the user set it, else the physical cores this process may use.
# Hyper-threads share a core's FMA units and L2, which the kernels fill from one thread,
# and a container's CPU quota caps the cores it may use however many it sees. The count
# is read here from Linux's /sys, as joblib's loky does, rather than taken from loky or
# psutil: a few small files do not justify a dependency.
_SYS_CPU = "/sys/devices/system/cpu"
_CGROUP = "/sys/fs/cgroup"


def _read(path: str) -> str | None:
    """The text of a small /sys file, stripped; None when it is absent or unreadable."""
    try:
        with open(path) as file:
            return file.read().strip()
    except (OSError, ValueError):
        return None


def _allowed_cpus() -> frozenset[int] | None:
    """The logical CPUs this process may run on now; None where the OS does not say."""
    if hasattr(os, "sched_getaffinity"):
        return frozenset(os.sched_getaffinity(0))
    return None


def _cores() -> int:
    """The logical cores this process may run on now (its CPU affinity where the OS has one)."""
    cpus = _allowed_cpus()
    if cpus is not None:
        return max(1, len(cpus))
    return os.cpu_count() or 1


@functools.cache
def _physical_cores(cpus: frozenset[int]) -> int | None:
    """The physical cores the logical CPUs `cpus` belong to (hyper-threads of one core
    count once); None when the topology cannot be read. Cached: affinity rarely changes,
    and a new one is a new key."""
    cores = set()
    for cpu in cpus:
        topology = f"{_SYS_CPU}/cpu{cpu}/topology"
        core = (_read(f"{topology}/physical_package_id"), _read(f"{topology}/core_id"))
        if None in core:
            return None
        cores.add(core)
    return len(cores) or None


@functools.cache
def _cgroup_cpus() -> int | None:
    """The CPUs the cgroup's CPU quota allows, rounded up (cgroup v2 `cpu.max`, else v1
    `cpu.cfs_quota_us` / `cpu.cfs_period_us`); None without a quota. Cached: sklearn
    reads it once per process too."""
    limit = _read(f"{_CGROUP}/cpu.max")
    if limit is not None:
        quota, _, period = limit.partition(" ")
    else:
        quota = _read(f"{_CGROUP}/cpu/cpu.cfs_quota_us")
        period = _read(f"{_CGROUP}/cpu/cpu.cfs_period_us")
    try:
        quota, period = int(quota), int(period)
    except (TypeError, ValueError):  # "max" (no quota), or no such file
        return None
    if quota <= 0 or period <= 0:  # v1 writes -1 for no quota
        return None
    return max(1, math.ceil(quota / period))


def default_n_threads() -> int:
    """The thread count `n_threads=None` asks for: OpenMP's (OMP_NUM_THREADS) when that
    variable is set, else the physical cores this process may run on (its CPU affinity
    and its cgroup's CPU quota), or the logical ones where the topology is unknown."""
    if os.environ.get("OMP_NUM_THREADS"):
        return _openmp_helpers.max_threads()
    cpus = _allowed_cpus()
    cores = (_physical_cores(cpus) if cpus is not None else None) or _cores()
    quota = _cgroup_cpus()
    return max(1, min(cores, quota) if quota is not None else cores)


def effective_n_threads(n_threads: int | None) -> int:
    """The thread count a kernel runs with: n_threads, or `default_n_threads()` when
    None, at most the cores this process may run on (more threads only wait for each
    other, and thousands make OpenMP abort the process); 1 when the build has no OpenMP."""
    if not openmp_enabled():
        return 1
    wanted = default_n_threads() if n_threads is None else n_threads
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
_blas_original = None  # every pool's thread count before the cap, for the last user


def _cap_blas() -> list:
    """Do what threadpoolctl's ``limit(limits=1, user_api="blas")`` does (read the
    thread count of every pool it found, then set the BLAS ones to 1) through the same
    library controllers, without its dicts of library info: those cost ~10 µs a call,
    as much as a small layer's step spends in its kernels. Returns the counts
    `_restore_blas` sets back."""
    pools = _controller().lib_controllers
    original = [pool.get_num_threads() for pool in pools]
    for pool in pools:
        if pool.user_api == "blas":
            pool.set_num_threads(1)
    return original


def _restore_blas(original: list) -> None:
    """Set every pool back to its count before `_cap_blas`, as threadpoolctl's
    ``restore_original_limits`` (the OpenMP pools too)."""
    for pool, n_threads in zip(_controller().lib_controllers, original):
        pool.set_num_threads(n_threads)


class _OneBlasThread:
    """The context `single_threaded_blas` returns: one object for every call, as the
    count of its users is the process's (a class's `__enter__` and `__exit__` rather
    than a generator's: `contextlib.contextmanager` costs ~1.5 µs a call)."""

    def __enter__(self) -> None:
        global _blas_users, _blas_original
        with _blas_lock:
            if _blas_users == 0:
                _blas_original = _cap_blas()
            _blas_users += 1

    def __exit__(self, *exc_info) -> None:
        global _blas_users, _blas_original
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _restore_blas(_blas_original)
                _blas_original = None


_ONE_BLAS_THREAD = _OneBlasThread()


def single_threaded_blas() -> _OneBlasThread:
    """Cap BLAS at one thread while the kernels call it from their own OpenMP threads,
    so that the two thread pools do not oversubscribe the cores: ``with
    single_threaded_blas():`` around the kernels' calls."""
    return _ONE_BLAS_THREAD
