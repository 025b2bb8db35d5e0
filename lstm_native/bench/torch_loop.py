"""A torch training loop with `lstm_native.torch.LSTM` against `torch.nn.LSTM`.

``python -m lstm_native.bench.torch_loop`` times, on each standard configuration
(`CONFIGS`, A-F and S), the training step a torch user runs: forward, an MSE loss,
backward and an SGD step, once with ``torch.nn.LSTM`` and once with
``lstm_native.torch.LSTM`` (same weights, data and target), and the cost of the bridge
itself: our module's forward and backward through autograd against our native layer's
forward and backward (`lstm_native.LSTM`) alone, both without the loss and the
optimizer. Each step is a first layer's: no gradient for the input. A fifth call, the
autograd floor, is our native layer's forward and backward as one bare
`torch.autograd.Function` (no module, checks or state), its gradients added into
`.grad` by autograd as the bridge's are: what any bridge through autograd pays at the
least, so that the bridge's cost splits into torch's share and ours.

One process times all five side by side, in blocks that alternate between them
(`lstm_native.bench.timing`), so their ratios are measured under the same load; figures
are medians. Defaults: float32, 2 threads (``torch.set_num_threads`` and our
``n_threads``). Run it as ``env -u OPENBLAS_CORETYPE python -m
lstm_native.bench.torch_loop`` to let OpenBLAS pick its kernels for the machine (the
table's header says what it was). Our module's output and gradients are checked against
torch's before anything is timed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence

import numpy as np

import lstm_native as ln

from .configs import CONFIGS, Config
from .timing import Schedule, Task, time_tasks

__all__ = ["Row", "TARGETS", "measure", "thread_setup", "format_table", "main"]

#: The speed-ups of our training step over torch's wanted per configuration (torch's
#: time / ours), and the most the bridge may add to our native step.
TARGETS = {"A": 1.3, "B": 1.3, "C": 1.3, "D": 1.3, "E": 1.3, "F": 1.0, "S": 1.0}
BRIDGE_TARGET = 0.05

#: Largest relative difference of our outputs and gradients from torch's accepted.
AGREEMENT_RTOL = {np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-10}

LIBRARIES = ("torch.nn", "lstm_native.torch", "bridge", "native", "autograd floor")


@dataclasses.dataclass
class Row:
    """The medians (seconds) of one configuration's five timed calls."""

    cfg: Config
    torch_step: float
    our_step: float
    bridge: float
    native: float
    autograd: float

    @property
    def speedup(self) -> float:
        """torch.nn's training step / ours."""
        return self.torch_step / self.our_step

    @property
    def bridge_cost(self) -> float:
        """What autograd and the conversions add to our native step, relative to it."""
        return self.bridge / self.native - 1

    @property
    def autograd_cost(self) -> float:
        """What the autograd floor adds to our native step, relative to it: the part of
        `bridge_cost` no bridge through a `torch.autograd.Function` avoids."""
        return self.autograd / self.native - 1


def _problem(cfg: Config, dtype: np.dtype, n_threads: int, seed: int = 0):
    """torch.nn's LSTM and ours with the same weights, and a step's data."""
    import torch

    from .. import torch as lnt

    if cfg.cell != "lstm":
        raise ValueError(f"the torch loop times LSTMs, got cell {cfg.cell!r}")
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    kwargs = dict(num_layers=cfg.num_layers, bidirectional=cfg.bidirectional, dtype=tdtype)
    torch.manual_seed(seed)
    theirs = torch.nn.LSTM(cfg.input_size, cfg.hidden_size, **kwargs)
    ours = lnt.LSTM(cfg.input_size, cfg.hidden_size, **kwargs, n_threads=n_threads)
    ours.load_state_dict(theirs.state_dict())
    native = ln.LSTM(cfg.input_size, cfg.hidden_size, cfg.num_layers,
                     bidirectional=cfg.bidirectional, dtype=dtype, n_threads=n_threads)
    native.load_state_dict(theirs.state_dict())
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(cfg.steps, cfg.batch, cfg.input_size, generator=gen, dtype=tdtype)
    target = torch.randn(cfg.steps, cfg.batch, cfg.directions * cfg.hidden_size,
                         generator=gen, dtype=tdtype)
    return theirs, ours, native, x, target


def _check_agreement(theirs, ours, x, target, dtype: np.dtype) -> None:
    """Our module's output and gradients against torch's (ValueError when they differ)."""
    import torch

    results = []
    for module in (theirs, ours):
        module.zero_grad()
        out, _ = module(x)
        torch.nn.functional.mse_loss(out, target).backward()
        results.append([out.detach()] + [p.grad.clone() for p in module.parameters()])
        module.zero_grad()
    for want, got in zip(*results):
        scale = max(1.0, float(want.abs().max()))
        err = float((got - want).abs().max()) / scale
        if not err <= AGREEMENT_RTOL[dtype]:
            raise ValueError(f"lstm_native.torch.LSTM differs from torch.nn.LSTM by {err:.3g} "
                             f"(relative), more than {AGREEMENT_RTOL[dtype]}")


def _autograd_floor(native, x, dout):
    """A training step's forward and backward through `native` as one bare autograd
    node, for leaf tensors of its parameters' shapes whose `.grad` autograd adds our
    gradients into (zeros at first, so that it adds rather than takes them, as in the
    bridge's step without zero_grad)."""
    import torch

    class NativeStep(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, *params):
            return torch.from_numpy(native.forward(x.numpy())[0])

        @staticmethod
        def backward(ctx, d_out):
            native.backward(d_out.numpy(), input_grad=False)
            return (None, *(torch.from_numpy(native.grads[name]) for name in native._params))

    params = [torch.zeros(a.shape, dtype=x.dtype, requires_grad=True)
              for a in native._params.values()]
    for p in params:
        p.grad = torch.zeros_like(p)

    def run():
        NativeStep.apply(x, *params).backward(dout)
    return run


def _tasks(cfg: Config, dtype: np.dtype, n_threads: int) -> list[Task]:
    import torch

    theirs, ours, native, x, target = _problem(cfg, dtype, n_threads)
    # The floor's own layer: the native task's gradients stay its own.
    floor_native = ln.LSTM(cfg.input_size, cfg.hidden_size, cfg.num_layers,
                           bidirectional=cfg.bidirectional, dtype=dtype, n_threads=n_threads)
    floor_native.load_state_dict(native.state_dict())
    _check_agreement(theirs, ours, x, target, dtype)
    optimizers = {m: torch.optim.SGD(m.parameters(), lr=1e-4) for m in (theirs, ours)}

    def train_step(module):
        def run():
            opt = optimizers[module]
            out, _ = module(x)
            loss = torch.nn.functional.mse_loss(out, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return run

    dout = torch.ones_like(target)
    x_np, dout_np = x.numpy(), dout.numpy()

    def bridge():
        out, _ = ours(x)
        out.backward(dout)

    def native_step():
        native.forward(x_np)
        native.backward(dout_np, input_grad=False)

    return [Task("torch.nn", train_step(theirs)), Task("lstm_native.torch", train_step(ours)),
            Task("bridge", bridge), Task("native", native_step),
            Task("autograd floor", _autograd_floor(floor_native, x, dout))]


def measure(configs: Sequence[Config], schedule: Schedule, dtype=np.float32,
            n_threads: int = 2) -> list[Row]:
    """Time the five calls of each configuration (torch with `n_threads` threads).

    Returns
    -------
    list of Row
        One per configuration, in order.
    """
    import torch

    dtype = np.dtype(dtype)
    torch.set_num_threads(n_threads)
    rows = []
    for cfg in configs:
        timings = time_tasks(_tasks(cfg, dtype, n_threads), schedule)
        medians = {t.library: t.median for t in timings}
        rows.append(Row(cfg, medians["torch.nn"], medians["lstm_native.torch"],
                        medians["bridge"], medians["native"], medians["autograd floor"]))
    return rows


def thread_setup() -> str:
    """The thread pools the timed calls use, for the table's header: torch's intra-op
    and inter-op threads, the OpenMP runtimes loaded (torch's ATen and our kernels share
    one when a single libgomp is loaded: the team of one is the team of the other as
    they alternate), OMP_WAIT_POLICY (libgomp's threads spin a while after each parallel
    region unless it is passive) and the BLAS libraries (our kernels cap theirs at one
    thread per call)."""
    import torch
    from threadpoolctl import threadpool_info

    pools = threadpool_info()
    openmp = sorted({os.path.basename(p["filepath"]) for p in pools
                     if p["internal_api"] == "openmp"})
    blas = sorted({f"{os.path.basename(p['filepath'])} ({p['num_threads']} threads)"
                   for p in pools if p["user_api"] == "blas"})
    return (f"threads: torch intra-op {torch.get_num_threads()}, inter-op "
            f"{torch.get_num_interop_threads()}, ATen's backend "
            f"{'OpenMP' if torch.backends.openmp.is_available() else 'native'}; OpenMP "
            f"runtimes {', '.join(openmp) or 'none'}; "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; "
            f"BLAS {', '.join(blas) or 'none'}")


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table of the rows: the two training steps, the speed-up against its
    target, the bridge's cost against the native step, and the autograd floor's."""
    lines = ["| config | shape | torch.nn step ms | lstm_native.torch step ms | speed-up "
             "(target) | native fwd+bwd ms | bridge fwd+bwd ms | bridge cost (≤ 5%) | "
             "autograd floor |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        target = TARGETS.get(r.cfg.name)
        want = f" (≥ {target:g})" if target else ""
        ok = "" if target is None or r.speedup >= target else " ✗"
        bridge_ok = "" if r.bridge_cost <= BRIDGE_TARGET else " ✗"
        lines.append(f"| {r.cfg.name} | {r.cfg.describe()} | {r.torch_step * 1e3:.2f} | "
                     f"{r.our_step * 1e3:.2f} | {r.speedup:.2f}x{want}{ok} | "
                     f"{r.native * 1e3:.2f} | {r.bridge * 1e3:.2f} | "
                     f"{r.bridge_cost * 100:+.1f}%{bridge_ok} | "
                     f"{r.autograd_cost * 100:+.1f}% |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lstm_native.bench.torch_loop",
        description="A torch training step (forward, MSE loss, backward, SGD step) with "
                    "lstm_native.torch.LSTM against torch.nn.LSTM, and the bridge's own "
                    "cost against our native layer (and the least any bridge through "
                    "torch.autograd costs).")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS),
                        metavar="NAME", help=f"configurations, of {', '.join(CONFIGS)} "
                                             "(default: all)")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch's threads and our n_threads (default 2)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--quick", action="store_true",
                        help="3 runs per call in one block: a smoke test, not figures")
    parser.add_argument("--json", metavar="PATH", help="also write the medians as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads < 1:
        raise SystemExit("--threads must be >= 1")
    import torch

    schedule = Schedule.quick() if args.quick else Schedule()
    rows = measure([CONFIGS[name] for name in args.configs], schedule, args.dtype,
                   args.threads)
    print(f"torch {torch.__version__}, {args.dtype}, {args.threads} threads, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(thread_setup())
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"config": r.cfg.name, "torch_step": r.torch_step,
                        "our_step": r.our_step, "bridge": r.bridge, "native": r.native,
                        "autograd": r.autograd, "speedup": r.speedup,
                        "bridge_cost": r.bridge_cost, "autograd_cost": r.autograd_cost}
                       for r in rows],
                      f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
