"""Data-parallel training over MPI (`fit(..., distributed=True)`, lstm_native.distributed).

The multi-rank tests launch the scripts of tests/mpi under ``mpiexec -n 2`` and ``-n 3``
(tiny models: three ranks share two cores here, and MPICH's waits poll busily); each
script compares with a one-process run itself and prints one JSON line. They skip where
mpi4py or mpiexec is missing, unless LSTM_NATIVE_REQUIRE_PEERS names mpi4py (then the
run stops at once: see conftest.py). The one-rank tests run in this process.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import mpiexec_path

import lstm_native as ln
from lstm_native import distributed, optim

SCRIPTS = os.path.join(os.path.dirname(__file__), "mpi")
RANKS = [2, 3]
#: Weights after one step, relative to their largest magnitude, by dtype; after epochs.
ONE_STEP = {"step64": 1e-12, "step32": 1e-5}
EPOCHS = 1e-9
#: After epochs in float32: the issue's one-step float32 bound. Measured 6e-8-1.2e-7 for
#: the weights (1-2 units in the last place of the largest) and 4e-7 for Adam's moments
#: after 12 steps: the bound leaves a factor of 25 for rounding to accumulate over more
#: steps, while a wrong step (a slice updated twice or not at all, a stale moment) moves
#: the weights by lr = 1e-2 relative to them.
EPOCHS_FLOAT32 = {"adam32": 1e-5}


@pytest.fixture(scope="module")
def mpiexec():
    pytest.importorskip("mpi4py")
    path = mpiexec_path()
    if path is None:
        pytest.skip("no mpiexec")
    return path


def launch(mpiexec, n: int, script: str, *args, timeout: float = 60):
    """``mpiexec -n n python tests/mpi/<script> args``: the finished process."""
    return subprocess.run([mpiexec, "-n", str(n), sys.executable,
                           os.path.join(SCRIPTS, script), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, check=False)


def launch_json(mpiexec, n: int, script: str, *args) -> dict:
    """The JSON line a script prints on rank 0 (its run must succeed)."""
    run = launch(mpiexec, n, script, *args)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


# -- many ranks ----------------------------------------------------------------------------

@pytest.mark.parametrize("n", RANKS)
def test_fit_is_the_one_process_fit_split(mpiexec, n):
    """One step in float64 and float32, epochs of Adam in float64 and float32 (shuffled,
    lengths, dropout between layers, recurrent and Dropout masks, a last batch smaller
    than the ranks, validation, metrics, clipping to the global norm, early stopping, a
    plateau schedule), AdamW with amsgrad and a cosine schedule, centered RMSprop with
    momentum and weight decay, an optimizer of one's own, stateful truncated BPTT with
    variational masks, weighted cross-entropy with ignored targets and SGD: the weights
    and the optimizer's whole state of the one-process run, every rank the same, the same
    History; the step divided among the ranks for the optimizers of lstm_native.optim,
    run whole on every rank for one's own."""
    cases = ["step64", "step32", "adam64", "adam32", "adamw64", "rmsprop64", "own64",
             "tbptt64", "classes64", "noseed"]
    result = launch_json(mpiexec, n, "fit_exact.py", *cases)
    for name, r in result.items():
        assert r["ranks_equal"] and r["histories_equal"], name
        assert r["sharded"] == (name != "own64"), name
        if name == "noseed":
            continue
        tol = ONE_STEP.get(name, EPOCHS_FLOAT32.get(name, EPOCHS))
        assert r["err"] <= tol, f"{name}: weights differ by {r['err']:.2e} > {tol:.0e}"
        assert r["state_err"] <= tol, f"{name}: optimizer state differs by {r['state_err']:.2e}"
        assert r["steps_equal"], name
        assert r["history_err"] <= max(tol, 1e-9), name
        assert r["epochs"][0] == r["epochs"][1], name
    assert result["adam64"]["epochs"][0] < 6  # early stopping stopped it


@pytest.mark.parametrize("n", RANKS)
def test_the_api_on_many_ranks(mpiexec, n):
    result = launch_json(mpiexec, n, "api.py")
    assert all(result["checks"].values()), result["checks"]
    assert result["grad_err"] <= 1e-12


@pytest.mark.parametrize("n", RANKS)
def test_resume_reads_the_checkpoint_on_rank_0_only(mpiexec, n, tmp_path):
    """Only rank 0 writes checkpoints; a resume from the one rank 0 wrote (the other ranks
    cannot see it) continues bitwise as the uninterrupted run; rank 0's error is every
    rank's."""
    result = launch_json(mpiexec, n, "resume.py", tmp_path)
    assert result["equal"] and result["missing_raises"]
    assert result["files"][0] == [f"ckpt-{e}.npz" for e in range(1, 5)]
    assert all(files == [] for files in result["files"][1:])


@pytest.mark.parametrize("mode, message", [
    ("mismatch", "batch_size differs, rank 0 has 4 and rank 1 has 5"),
    ("model", "model differs, rank 0 has 'Sequential(\\n  (0): LSTM(2, 3"),
    ("data", "y differs, rank 0 has 'float64 array of shape (12, 1) (hash"),
    ("loss", "it needs one of lstm_native.losses"),
])
def test_a_refused_start_raises_on_every_rank(mpiexec, mode, message):
    run = launch(mpiexec, 2, "faults.py", mode)
    assert run.returncode == 0, run.stderr
    # (the ranks' lines may reach mpiexec's stdout interleaved)
    assert run.stdout.count("refused: ") == 2 and run.stdout.count(message) == 2, run.stdout


@pytest.mark.parametrize("n", RANKS)
def test_a_diverging_loss_stops_every_rank(mpiexec, n):
    """A nan target on one rank's share: the global loss is nan on every rank, and each
    raises FloatingPointError at the same step, as one process would."""
    run = launch(mpiexec, n, "faults.py", "nan")
    assert run.returncode == 0, run.stderr
    # (the ranks' lines may reach mpiexec's stdout interleaved)
    assert run.stdout.count("diverged: the training loss is nan") == n, run.stdout


@pytest.mark.parametrize("mode", ["raise", "kill"])
def test_a_failing_rank_ends_the_job(mpiexec, mode):
    """A rank that raises aborts the job (the abort hook) and a killed one ends it (the
    launcher), within 30 s: the other ranks do not wait for it forever."""
    start = time.monotonic()
    run = launch(mpiexec, 2, "faults.py", mode, timeout=30)
    assert run.returncode != 0
    assert time.monotonic() - start < 30
    if mode == "raise":
        assert "rank 1 of 2 raised, aborting the job" in run.stderr
        assert "RuntimeError: a fault on rank 1" in run.stderr
    assert "finished" not in run.stdout


def launch_cli(mpiexec, n: int, *args, timeout: float = 120):
    """``mpiexec -n n python -m lstm_native args``: the finished process."""
    return subprocess.run([mpiexec, "-n", str(n), sys.executable, "-m", "lstm_native",
                           *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _weights(path) -> dict:
    return ln.load_checkpoint(path)["model"].state_dict()


def _largest_relative_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k])) / max(np.max(np.abs(b[k])), 1e-300))
               for k in a)


@pytest.mark.parametrize("n, method", [(2, "lstm"), (3, "lstm"), (2, "hybrid")])
def test_the_forecast_command_trains_distributed(mpiexec, n, method, tmp_path):
    """`forecast --distributed` under mpiexec: rank 0 alone prints and saves, and the
    saved weights are the one-process command's (float64, epochs of Adam)."""
    pytest.importorskip("statsmodels")
    from lstm_native import cli

    args = ["forecast", "--method", method, "--members", "2", "--dtype", "float64",
            "--epochs", "4", "--hidden", "4", "--batch-size", "8", "--backtest", "0",
            "--quiet", "--json"]
    run = launch_cli(mpiexec, n, *args, "--distributed", "--out", tmp_path / "mpi")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("test RMSE") == 1 and run.stdout.count('"rmse"') == 1
    many = json.loads(run.stdout.strip().splitlines()[-1])
    assert cli.main([*args, "--out", str(tmp_path / "one")]) == 0
    assert _largest_relative_difference(_weights(tmp_path / "mpi" / "model.npz"),
                                        _weights(tmp_path / "one" / "model.npz")) <= EPOCHS
    one = ln.load_checkpoint(tmp_path / "one" / "model.npz")["extra"]["results"]
    assert many["rmse"] == pytest.approx(one["rmse"], rel=1e-9)


def test_the_longlag_command_trains_distributed(mpiexec, tmp_path, capsys):
    from lstm_native import cli

    args = ["longlag", "--cells", "lstm", "--lags", "10", "--samples", "64", "--epochs",
            "2", "--hidden", "4", "--quiet", "--json"]
    run = launch_cli(mpiexec, 2, *args, "--distributed", "--out", tmp_path / "mpi")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count('"table"') == 1
    many = json.loads(run.stdout.strip().splitlines()[-1])
    capsys.readouterr()
    assert cli.main([*args, "--out", str(tmp_path / "one")]) == 0
    one = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # float32 models: the summation order differs between the runs.
    assert (many["table"][0]["LSTM"]["test_mse"][0]
            == pytest.approx(one["table"][0]["LSTM"]["test_mse"][0], rel=1e-3))


def test_a_command_line_error_on_rank_0_ends_the_job(mpiexec, tmp_path):
    """--out is checked on rank 0 only, after the other ranks went on to train: its
    one-line error aborts the job instead of leaving them waiting."""
    blocker = tmp_path / "a file"
    blocker.write_text("")
    start = time.monotonic()
    run = launch_cli(mpiexec, 2, "forecast", "--method", "lstm", "--epochs", "2",
                     "--hidden", "4", "--distributed", "--out", blocker, timeout=60)
    assert run.returncode != 0 and time.monotonic() - start < 60
    assert "forecast: error: --out" in run.stderr and "a file, not a directory" in run.stderr


def _doc_examples() -> list[str]:
    """The runnable examples of docs/distributed.md (its Python blocks that import
    lstm_native)."""
    path = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "distributed.md")
    with open(path, encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.DOTALL)
    return [b for b in blocks if "import lstm_native" in b]


@pytest.mark.parametrize("example", _doc_examples(), ids=["fit", "custom_loop"])
def test_the_docs_examples_run_on_two_ranks(mpiexec, example, tmp_path):
    """Each prints its epochs once (rank 0 only), and the loss goes down."""
    script = tmp_path / "example.py"
    script.write_text(example)
    run = subprocess.run([mpiexec, "-n", "2", sys.executable, str(script)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    epochs = [line for line in run.stdout.splitlines() if line.startswith("epoch")]
    assert [re.match(r"epoch +(\d+)", line).group(1) for line in epochs] == \
        [str(e) for e in range(1, len(epochs) + 1)] and len(epochs) >= 3, run.stdout
    losses = [float(re.search(r"loss:? ([0-9.e+-]+)", line).group(1)) for line in epochs]
    assert losses[-1] < losses[0]


# -- one rank ------------------------------------------------------------------------------

def test_import_lstm_native_does_not_import_mpi4py():
    code = "import sys, lstm_native; print('mpi4py' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.stdout.strip() == "False", run.stderr


def _trained(distributed_flag: bool):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 4, 2))
    y = x.sum(axis=(1, 2))[:, None]
    model = ln.Sequential(ln.LSTM(2, 3, batch_first=True, dtype=np.float64, seed=0,
                                  recurrent_dropout=0.2),
                          ln.LastStep(batch_first=True), ln.Dropout(0.2, seed=0),
                          ln.Linear(3, 1, dtype=np.float64, seed=0))
    # A loss of one's own: refused on many ranks, fine on one.
    history = ln.fit(model, x, y, loss=lambda p, t: ln.losses.mse_loss(p, t),
                     optimizer=optim.Adam(model), epochs=2, batch_size=4, seed=1, verbose=0,
                     distributed=distributed_flag)
    return model.state_dict(), history


def test_one_rank_is_plain_fit():
    (weights, history), (expected, expected_history) = _trained(True), _trained(False)
    for k in expected:
        assert np.array_equal(weights[k], expected[k]), k
    assert history["loss"] == expected_history["loss"]


def test_fit_checks_distributed():
    model = ln.Sequential(ln.Linear(2, 1, seed=0))
    with pytest.raises(TypeError, match="distributed must be True or False"):
        ln.fit(model, np.zeros((4, 2)), np.zeros((4, 1)), loss="mse",
               optimizer=optim.SGD(model, lr=0.1), distributed="yes")


@pytest.mark.parametrize("call, error, match", [
    (lambda: distributed.shard_bounds(-1), ValueError, "n must be an int >= 0"),
    (lambda: distributed.shard_bounds(5, rank=2, size=2), ValueError,
     r"rank must be an int in 0\.\.1"),
    (lambda: distributed.shard_bounds(5, rank=0, size=0), ValueError, "size must be an int >= 1"),
    (lambda: distributed.shard(), ValueError, "at least one array"),
    (lambda: distributed.shard(np.zeros(3), np.zeros(4)), ValueError, "same number of samples"),
    (lambda: distributed.allreduce_scalar(1.0, "prod"), ValueError, "op must be one of"),
    (lambda: distributed.allreduce_scalar("1"), TypeError, "value must be a float"),
    (lambda: distributed.allreduce_scalar(1.0, weight=2), ValueError, "weight is for op='mean'"),
    (lambda: distributed.allreduce_scalar(1.0, "mean", weight=-1), ValueError,
     "weight must be None or a finite float >= 0"),
    (lambda: distributed.broadcast_object(1, root=1), ValueError, r"root must be an int in 0\.\.0"),
    (lambda: distributed.broadcast_parameters(object()), TypeError, "must have parameters"),
    (lambda: distributed.broadcast_parameters(ln.Linear(2, 1), root=-1), ValueError, "root"),
    (lambda: distributed.allreduce_gradients(ln.Linear(2, 1), weight=float("nan")), ValueError,
     "weight must be None or a finite float >= 0"),
])
def test_the_api_checks_its_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_the_api_on_one_rank():
    """Without an MPI launcher there is one rank, and every collective is the identity."""
    assert (distributed.rank(), distributed.size()) == (0, 1)
    x = np.arange(6)
    assert distributed.shard(x) is not x and np.array_equal(distributed.shard(x), x)
    assert distributed.allreduce_scalar(2.5, "mean", weight=3) == 2.5
    model = ln.Linear(2, 1, seed=0)
    model.grads["weight"][...] = 1.0
    distributed.allreduce_gradients(model, weight=4)
    assert np.all(model.grads["weight"] == 1.0)
    assert distributed.abort(3) is None   # one rank: nothing to end


def test_a_launched_process_without_mpi4py_is_refused(monkeypatch):
    """Started by an MPI launcher with others but without mpi4py, a process would train a
    model of its own: refused. Without a launcher it is the one rank."""
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # its import fails
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(ImportError, match="one of 2 an MPI launcher started, but mpi4py"):
        distributed._world.__wrapped__()
    monkeypatch.delenv("PMI_SIZE")
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE", raising=False)
    assert distributed._world.__wrapped__() is None


def test_shares_are_contiguous_and_as_even_as_can_be():
    for n in range(12):
        for size in range(1, 5):
            bounds = [distributed.shard_bounds(n, r, size) for r in range(size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize("make", [
    lambda m: optim.SGD(m, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda m: optim.SGD(m, lr=0.1, momentum=0.5, dampening=0.3),
    lambda m: optim.Adam(m, lr=0.01, weight_decay=0.1, amsgrad=True),
    lambda m: optim.AdamW(m, lr=0.01),
    lambda m: optim.RMSprop(m, lr=0.01, momentum=0.5, centered=True, weight_decay=0.01),
], ids=["sgd-nesterov", "sgd-dampening", "adam-amsgrad", "adamw", "rmsprop-centered"])
def test_an_update_by_slices_is_the_whole_step(make):
    """The sharded step's update: each rank's slices of the flattened parameters (cut
    across parameter boundaries, as `_ShardedStep`'s even slices of three ranks) take
    bitwise the update the whole step gives them, state included, step after step."""
    rng = np.random.default_rng(0)
    models = [ln.Sequential(ln.LSTM(2, 3, num_layers=2, dtype=np.float64, seed=0),
                            ln.Linear(3, 2, dtype=np.float64, seed=0)) for _ in range(2)]
    whole, sliced = (make(m) for m in models)
    shards = distributed._ShardedStep(models[1].parameters())
    [(names, _, total)] = shards.groups
    for _ in range(3):
        grads = {k: rng.standard_normal(g.shape) for k, g in models[0].grads.items()}
        for model in models:
            for k, g in grads.items():
                model.grads[k][...] = g
        whole.step()
        pieces = []
        for r in range(3):
            lo, hi = distributed.shard_bounds(total, r, 3)
            pieces += [(name, a, b, grads[name].reshape(-1)[a:b])
                       for name, a, b, _ in shards._pieces(names, models[1].parameters(),
                                                          lo, hi)]
        sliced._step_slices(pieces)
    for k, p in models[0].parameters().items():
        assert np.array_equal(p, models[1].parameters()[k]), k
    a, b = whole.state_dict(), sliced.state_dict()
    assert a["step"] == b["step"] == 3
    assert all(np.array_equal(a["buffers"][k], b["buffers"][k]) for k in a["buffers"])


def test_only_elementwise_optimizers_are_sharded():
    """The optimizers of lstm_native.optim divide their step among the ranks; a subclass
    with an update of its own, or a parameter that is not contiguous, keeps it whole."""
    model = ln.Linear(3, 2, dtype=np.float64, seed=0)
    assert isinstance(distributed._sharded_step(optim.AdamW(model)), distributed._ShardedStep)

    class Own(optim.SGD):
        def _update(self, p, g, bufs, work, first):
            super()._update(p, g, bufs, work, first)

    assert distributed._sharded_step(Own(model)) is None

    class Strided:  # a model whose parameter is a Fortran-ordered array
        def __init__(self):
            self.weight = np.asfortranarray(np.ones((3, 2)))
            self.grads = {"weight": np.zeros((3, 2))}

        def parameters(self):
            return {"weight": self.weight}

    assert distributed._sharded_step(optim.SGD(Strided())) is None
