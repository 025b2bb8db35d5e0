"""One run of the benchmark as the command line asks: the tables, printed as they are done."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from .configs import CELLS, CONFIGS, LOW_PRECISIONS, SCALING_CONFIGS, Config
from .machine import machine_info
from .memory import memory_table
from .peers import Problem, available_libraries, measure
from .report import NOTES, Report, Result, Table, machine_table, ms, problem_title
from .timing import Schedule, gemm_rate

__all__ = ["measure_report", "scaling_table", "say", "plan", "gemm_dtype"]


def say(text: str = "") -> None:
    """Print at once: a long run shows each table as it is done."""
    print(text, flush=True)


def gemm_dtype(dtype: str) -> str:
    """The GEMM whose rate a dtype's figures are compared with: a low precision's
    float32 (numpy has no fast int8 or bfloat16 product to measure)."""
    return "float32" if dtype in LOW_PRECISIONS else np.dtype(dtype).name


def plan(dtype: str, modes: Sequence[str], cells: Sequence[str]) -> tuple[list, list, list]:
    """The modes and cells `dtype` is timed in, and what is skipped and why.

    A low precision's quantized models (`lstm_native.quantize`) are for inference only,
    of the plain LSTM and the GRU.

    Returns
    -------
    modes, cells : list of str
        Those of the arguments that run.
    notes : list of str
        A sentence per skipped group.
    """
    if dtype not in LOW_PRECISIONS:
        return list(modes), list(cells), []
    notes = []
    skipped = [m for m in modes if m != "infer"]
    if skipped:
        notes.append(f"{dtype}: inference only (a quantized model does not train): "
                     f"mode{'s' if len(skipped) > 1 else ''} {', '.join(skipped)} skipped.")
    others = [c for c in cells if not CELLS[c].quantizable]
    if others:
        notes.append(f"{dtype}: cell{'s' if len(others) > 1 else ''} {', '.join(others)} "
                     f"skipped: lstm_native.quantize has the plain LSTM and the GRU only.")
    return ([m for m in modes if m == "infer"], [c for c in cells if CELLS[c].quantizable],
            notes)


def scaling_table(cfg: Config, dtype, modes: Sequence[str], libraries: Sequence[str],
                  n_threads: int, schedule: Schedule, steps=(100, 1000),
                  threads=(1, 2)) -> Table:
    """Time against sequence length (T=100 vs 1000: ideally 10x) and threads (1 vs 2).

    The thread comparison runs the configuration's own T.
    """
    t_lo, t_hi = steps
    n_lo, n_hi = threads
    name = dtype if dtype in LOW_PRECISIONS else np.dtype(dtype).name
    table = Table(f"Scaling, {problem_title(cfg)} — {name}",
                  ["mode", "library", f"ms T={t_lo}", f"ms T={t_hi}", "ratio (ideal "
                   f"{t_hi / t_lo:g})", f"ms {n_lo} thr", f"ms {n_hi} thr", "speedup"], left=2)
    for mode in modes:
        by_steps = {T: measure(Problem.make(cfg.with_steps(T), dtype), mode, n_threads,
                               libraries, schedule) for T in steps}
        problem = Problem.make(cfg, dtype)
        by_threads = {n: measure(problem, mode, n, libraries, schedule) for n in threads}
        for i, t in enumerate(by_steps[t_lo]):
            lo, hi = t.median, by_steps[t_hi][i].median
            one, two = by_threads[n_lo][i].median, by_threads[n_hi][i].median
            table.rows.append([mode, t.library, ms(lo), ms(hi), f"{hi / lo:.2f}",
                               ms(one), ms(two), f"{one / two:.2f}"])
    return table


def measure_report(args: argparse.Namespace, command: str) -> Report:
    """Run what the command line asks (`cli.build_parser`'s options), printing each
    table as it is done."""
    schedule = Schedule.quick() if args.quick else Schedule()
    if args.repeats is not None:
        if args.repeats < 1:
            raise SystemExit("--repeats must be at least 1")
        schedule.repeats = args.repeats
    if args.pause is not None:
        schedule.pause = args.pause
    libraries, missing = available_libraries(args.libs)
    if "lstm_native" not in libraries:
        libraries.insert(0, "lstm_native")  # the reference of every ratio

    info = machine_info()
    info.update({f"{lib}": f"skipped: {why}" for lib, why in missing.items()})
    gemm_size, gemm_runs = (1024, 3) if args.quick else (2048, 5)
    gemm = {(d, n): gemm_rate(np.dtype(d), n, gemm_size, gemm_runs)
            for d in dict.fromkeys(map(gemm_dtype, args.dtype)) for n in args.threads}
    report = Report(command, info, gemm)
    say(machine_table(info, gemm).text())
    say()

    def show(table: Table) -> None:
        say(table.text())
        say()

    def planned(dtype: str, modes: Sequence[str]) -> tuple[list, list]:
        modes, cells, notes = plan(dtype, modes, args.cells)
        for note in notes:
            report.notes.append(note)
            say(note)
            say()
        return modes, cells

    if args.scaling:
        for dtype in args.dtype:
            modes, cells = planned(dtype, [m for m in args.modes if m in ("infer", "train")]
                                   or ["infer", "train"])
            for cfg in [CONFIGS[c].with_cell(cell) for c in args.configs
                        if c in SCALING_CONFIGS for cell in cells]:
                if modes:
                    report.tables.append(scaling_table(cfg, dtype, modes, libraries,
                                                       max(args.threads), schedule))
                    show(report.tables[-1])
    else:
        for dtype in args.dtype:
            modes, cells = planned(dtype, args.modes)
            if not modes:
                continue
            for n in args.threads:
                for cfg in [CONFIGS[c].with_cell(cell) for c in args.configs
                            for cell in cells]:
                    problem = Problem.make(cfg, dtype)
                    timings = {mode: measure(problem, mode, n, libraries, schedule)
                               for mode in modes}
                    # The GEMM rate again right after, under the load of the moment.
                    rate = gemm_rate(np.dtype(gemm_dtype(dtype)), n, gemm_size, gemm_runs)
                    report.results.append(Result(cfg, dtype, n, rate, timings))
                    show(report.results[-1].table())
        if len(report.results) > 1:
            for table in report.summaries():
                show(table)
    if args.memory:
        for dtype in args.dtype:
            if dtype in LOW_PRECISIONS:
                report.notes.append(f"{dtype}: no memory table (it measures a training "
                                    f"step).")
                say(report.notes[-1])
                continue
            cfgs = [CONFIGS[c].with_cell(cell) for c in args.configs for cell in args.cells]
            report.tables.append(memory_table(cfgs, np.dtype(dtype), libraries,
                                              max(args.threads)))
            show(report.tables[-1])
    say(NOTES)
    return report
