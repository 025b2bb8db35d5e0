"""The tables of a run: per configuration, the summaries, the targets, the machine; a
run's `Report` as text, markdown and JSON (``--json`` saves it, ``--report`` shows it)."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .configs import CELLS, CONFIGS, LIBRARIES, SHORT_NAMES, Config, mode_flops
from .timing import Timing

__all__ = ["Table", "Result", "Report", "problem_title", "summary_table", "targets_table",
           "machine_table", "render_markdown", "NOTES"]

NOTES = ("Times in ms (median); spread is the interquartile range relative to the median. "
         "GF/s count the GEMM FLOPs (forward 2·G·B·H·(I+H)·T per layer and direction, "
         "G the cell's gate blocks: 4 for the LSTM, 3 for the GRU; with a projection "
         "2·G·B·H·(I+P)·T + 2·B·P·H·T; backward twice that, "
         "less the first layer's input gradient when it is not asked for); % GEMM is "
         "the share of numpy's SGEMM (float32) or DGEMM (float64) rate on the same "
         "threads, measured right after each configuration. ln / peer < 1: lstm_native "
         "is faster.")


@dataclasses.dataclass
class Table:
    """A titled table, rendered as aligned text or as markdown.

    The first `left` columns are labels (aligned left), the others figures (right).
    """

    title: str
    columns: list[str]
    rows: list[list[str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    left: int = 1

    def text(self) -> str:
        cells = [self.columns] + self.rows
        widths = [max(len(r[j]) for r in cells) for j in range(len(self.columns))]

        def line(row):
            return "  ".join(c.rjust(w) if j >= self.left else c.ljust(w)
                             for j, (c, w) in enumerate(zip(row, widths))).rstrip()
        out = [self.title, line(self.columns), line(["-" * w for w in widths])]
        out += [line(r) for r in self.rows] + [f"  {n}" for n in self.notes]
        return "\n".join(out)

    def markdown(self, level: int = 3) -> str:
        out = [f"{'#' * level} {self.title}", "",
               "| " + " | ".join(self.columns) + " |",
               "|" + "|".join("---" if j < self.left else "--:"
                              for j in range(len(self.columns))) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.notes:
            out += [""] + [f"{n}" for n in self.notes]
        return "\n".join(out)


def ms(seconds: float) -> str:
    """Seconds as milliseconds with three significant digits (one decimal from 10 ms)."""
    millis = seconds * 1e3
    return f"{millis:.3g}" if millis < 10 else f"{millis:.1f}"


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}"


def problem_title(cfg: Config) -> str:
    """A problem's name in a table's title: its cell's layer, its letter, its shape."""
    return f"{CELLS[cfg.cell].layer} {cfg.name}: {cfg.describe()}"


@dataclasses.dataclass
class Result:
    """The timings of one configuration (shape and cell), dtype and thread count, all
    modes."""

    cfg: Config
    dtype: str
    n_threads: int
    gemm_gflops: float
    timings: dict[str, list[Timing]]

    def table(self) -> Table:
        gemm = "SGEMM" if self.dtype == "float32" else "DGEMM"
        peers = sorted({t.library for ts in self.timings.values() for t in ts} - {"lstm_native"},
                       key=LIBRARIES.index)
        table = Table(f"{problem_title(self.cfg)} — {self.dtype}, "
                      f"{self.n_threads} thread{'s' if self.n_threads > 1 else ''}",
                      ["mode", "library", "ms (median)", "spread", "GF/s", f"% {gemm}"]
                      + [f"ln / {SHORT_NAMES[p]}" for p in peers], left=2)
        for mode, timings in self.timings.items():
            ours = next((t for t in timings if t.library == "lstm_native"), None)
            for t in timings:
                gflops = mode_flops(self.cfg, mode) / t.median / 1e9
                row = [mode, t.library, ms(t.median), f"{100 * t.spread:.0f}%",
                       f"{gflops:.1f}", f"{100 * gflops / self.gemm_gflops:.0f}%"]
                for p in peers:
                    row.append(_ratio(ours.median, t.median)
                               if ours is not None and t.library == p else "")
                table.rows.append(row)
        return table

    def to_json(self) -> dict:
        return {"config": self.cfg.name, "cell": self.cfg.cell, "dtype": self.dtype,
                "n_threads": self.n_threads, "gemm_gflops": self.gemm_gflops,
                "timings": {m: {t.library: t.times for t in ts}
                            for m, ts in self.timings.items()}}

    @classmethod
    def from_json(cls, d: dict) -> Result:
        # Runs saved before the GRU was timed have no "cell": they timed LSTMs.
        cfg = CONFIGS[d["config"]].with_cell(d.get("cell", "lstm"))
        return cls(cfg, d["dtype"], d["n_threads"], d["gemm_gflops"],
                   {m: [Timing(lib, times) for lib, times in ts.items()]
                    for m, ts in d["timings"].items()})


def summary_table(results: Sequence[Result], title: str = "Summary") -> Table:
    """One row per configuration, cell and mode: lstm_native's median, GF/s and share of the
    GEMM rate, the peers' medians and the ratios lstm_native / peer."""
    peers = [p for p in LIBRARIES[1:]
             if any(t.library == p for r in results for ts in r.timings.values() for t in ts)]
    table = Table(f"{title}: median ms; lstm_native / peer < 1: lstm_native is faster",
                  ["cfg", "cell", "dtype", "threads", "mode", "lstm_native ms", "GF/s",
                   "% GEMM"]
                  + [f"{p} ms" for p in peers] + [f"ln / {SHORT_NAMES[p]}" for p in peers],
                  left=5)
    for r in results:
        for mode, timings in r.timings.items():
            by_lib = {t.library: t.median for t in timings}
            ours = by_lib.get("lstm_native")
            row = [r.cfg.name, r.cfg.cell, r.dtype, str(r.n_threads), mode]
            if ours is None:
                row += ["–"] * 3
            else:
                gflops = mode_flops(r.cfg, mode) / ours / 1e9
                row += [ms(ours), f"{gflops:.1f}", f"{100 * gflops / r.gemm_gflops:.0f}%"]
            row += [ms(by_lib[p]) if p in by_lib else "–" for p in peers]
            row += [_ratio(ours, by_lib[p]) if p in by_lib and ours is not None else "–"
                    for p in peers]
            table.rows.append(row)
    return table


def targets_table(results: Sequence[Result]) -> Table:
    """The ratios the performance targets are stated in, per cell, dtype and thread count:
    training against torch (the worst configuration and the geometric mean over all),
    inference against the faster of the peers (the worst of the configurations but S,
    and S, batch 1, which has a target of its own)."""
    table = Table("Targets: lstm_native / peer, medians of this run (< 1: lstm_native is "
                  "faster)",
                  ["cell", "dtype", "threads", "train / torch, worst",
                   "train / torch, geo. mean", "infer / faster peer, worst but S",
                   "infer / faster peer, S"], left=3)

    def ratios(group, mode, peers):
        out = {}
        for r in group:
            by_lib = {t.library: t.median for t in r.timings.get(mode, [])}
            theirs = [by_lib[p] for p in peers if p in by_lib]
            if "lstm_native" in by_lib and theirs:
                out[r.cfg.name] = by_lib["lstm_native"] / min(theirs)
        return out

    def worst(rs):
        if not rs:
            return "–"
        name = max(rs, key=rs.get)
        return f"{rs[name]:.2f} ({name})"

    keys = dict.fromkeys((r.cfg.cell, r.dtype, r.n_threads) for r in results)
    for cell, dtype, n in keys:
        group = [r for r in results
                 if (r.cfg.cell, r.dtype, r.n_threads) == (cell, dtype, n)]
        train = ratios(group, "train", ["torch"])
        infer = ratios(group, "infer", LIBRARIES[1:])
        geo = (f"{float(np.exp(np.mean(np.log(list(train.values()))))):.2f}"
               if train else "–")
        but_s = {name: v for name, v in infer.items() if name != "S"}
        table.rows.append([cell, dtype, str(n), worst(train), geo, worst(but_s),
                           f"{infer['S']:.2f}" if "S" in infer else "–"])
    return table


def machine_table(info: dict, gemm: dict) -> Table:
    """`machine.machine_info`'s facts and the GEMM rates, keyed (dtype, threads)."""
    table = Table("Machine and settings", ["what", "value"], left=2)
    table.rows = [[k, str(v)] for k, v in info.items()]
    for (dtype, n), rate in sorted(gemm.items()):
        name = "SGEMM" if dtype == "float32" else "DGEMM"
        table.rows.append([f"{name} rate, {n} thread{'s' if n > 1 else ''}",
                           f"{rate:.1f} GF/s (numpy matmul, 2048²)"])
    return table


@dataclasses.dataclass
class Report:
    """Everything one run measured; saved with ``--json``, shown again with ``--report``."""

    command: str
    machine: dict
    gemm: dict                   # (dtype, n_threads) -> GF/s
    results: list[Result] = dataclasses.field(default_factory=list)
    tables: list[Table] = dataclasses.field(default_factory=list)   # scaling, memory

    def summaries(self) -> list[Table]:
        """One summary table per dtype, then the ratios of the targets."""
        return [summary_table([r for r in self.results if r.dtype == d], f"Summary, {d}")
                for d in dict.fromkeys(r.dtype for r in self.results)] + \
            [targets_table(self.results)]

    def to_json(self) -> dict:
        return {"command": self.command, "machine": self.machine,
                "gemm": [[d, n, g] for (d, n), g in self.gemm.items()],
                "results": [r.to_json() for r in self.results],
                "tables": [dataclasses.asdict(t) for t in self.tables]}

    @classmethod
    def from_json(cls, d: dict) -> Report:
        return cls(d["command"], d["machine"], {(g[0], g[1]): g[2] for g in d["gemm"]},
                   [Result.from_json(r) for r in d["results"]],
                   [Table(**t) for t in d["tables"]])


def render_markdown(report: Report, per_config: bool = True) -> str:
    """The report as markdown: the command, the machine, the tables."""
    tables = [machine_table(report.machine, report.gemm)]
    if per_config:
        tables += [r.table() for r in report.results]
    if report.results:
        tables += report.summaries()
    tables += report.tables
    return "\n\n".join([f"`{report.command}`", NOTES] + [t.markdown() for t in tables]) + "\n"
