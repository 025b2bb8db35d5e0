"""n_threads=None: OMP_NUM_THREADS when set, else the physical cores this process may use.

The readers of /sys and of the CPU affinity are replaced by a fake machine, so that the
rule is checked for topologies and quotas this machine does not have.
"""
import pytest

from lstm_native import _openmp_helpers, _parallel

SYS = _parallel._SYS_CPU
CGROUP = _parallel._CGROUP


def topology(*cores):
    """/sys files of logical CPUs 0, 1, ... on the given (package, core) pairs."""
    files = {}
    for cpu, (package, core) in enumerate(cores):
        files[f"{SYS}/cpu{cpu}/topology/physical_package_id"] = str(package)
        files[f"{SYS}/cpu{cpu}/topology/core_id"] = str(core)
    return files


# Four logical CPUs on two physical cores: CPUs 0 and 2 are hyper-threads of core 0.
SMT = topology((0, 0), (0, 1), (0, 0), (0, 1))


@pytest.fixture
def machine(monkeypatch):
    """Set the fake machine: `machine(files, cpus, omp=None)`."""
    def set_machine(files, cpus, omp=None):
        monkeypatch.setattr(_parallel, "_read", files.get)
        monkeypatch.setattr(_parallel, "_allowed_cpus", lambda: frozenset(cpus))
        monkeypatch.setattr(_parallel, "openmp_enabled", lambda: True)
        if omp is None:
            monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        else:
            monkeypatch.setenv("OMP_NUM_THREADS", str(omp))
            # OpenMP reads the variable when it starts: say what it would have read.
            monkeypatch.setattr(_openmp_helpers, "max_threads", lambda: int(omp))
        _parallel._physical_cores.cache_clear()
        _parallel._cgroup_cpus.cache_clear()
    yield set_machine
    _parallel._physical_cores.cache_clear()
    _parallel._cgroup_cpus.cache_clear()


def test_physical_cores_not_hyperthreads(machine):
    machine(SMT, cpus=range(4))
    assert _parallel.effective_n_threads(None) == 2


def test_only_the_cores_of_the_affinity(machine):
    machine(SMT, cpus={0, 2})  # two hyper-threads of one core
    assert _parallel.effective_n_threads(None) == 1
    machine(SMT, cpus={0, 1})
    assert _parallel.effective_n_threads(None) == 2


def test_unknown_topology_counts_logical_cpus(machine):
    machine({}, cpus=range(3))
    assert _parallel.effective_n_threads(None) == 3


@pytest.mark.parametrize("files, expected", [
    ({f"{CGROUP}/cpu.max": "150000 100000"}, 2),       # v2: 1.5 CPUs round up
    ({f"{CGROUP}/cpu.max": "50000 100000"}, 1),
    ({f"{CGROUP}/cpu.max": "max 100000"}, 4),           # v2: no quota
    ({f"{CGROUP}/cpu/cpu.cfs_quota_us": "200000",
      f"{CGROUP}/cpu/cpu.cfs_period_us": "100000"}, 2),  # v1
    ({f"{CGROUP}/cpu/cpu.cfs_quota_us": "-1",
      f"{CGROUP}/cpu/cpu.cfs_period_us": "100000"}, 4),  # v1: no quota
    ({f"{CGROUP}/cpu.max": "garbage"}, 4),
])
def test_cgroup_quota(machine, files, expected):
    machine({**topology(*((0, i) for i in range(8))), **files}, cpus=range(4))
    assert _parallel.effective_n_threads(None) == expected


def test_omp_num_threads_wins(machine):
    machine({**SMT, f"{CGROUP}/cpu.max": "100000 100000"}, cpus=range(4), omp=3)
    assert _parallel.effective_n_threads(None) == 3


def test_omp_num_threads_clamped_to_the_affinity(machine):
    machine(SMT, cpus={0, 1}, omp=8)
    assert _parallel.effective_n_threads(None) == 2


def test_empty_omp_num_threads_is_unset(machine):
    machine(SMT, cpus=range(4), omp="")
    assert _parallel.effective_n_threads(None) == 2


def test_explicit_n_threads_unchanged(machine):
    # An explicit count is the caller's: only the logical cores clamp it, as before.
    machine({**SMT, f"{CGROUP}/cpu.max": "100000 100000"}, cpus=range(4))
    assert _parallel.effective_n_threads(3) == 3
    assert _parallel.effective_n_threads(9) == 4


def test_this_machine():
    n = _parallel.default_n_threads()
    assert 1 <= n
    assert 1 <= _parallel.effective_n_threads(None) <= _parallel._cores()
