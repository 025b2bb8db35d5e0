"""The tables of a run: per configuration, the summaries, the targets, the variants
against their plain layer, the machine; a run's `Report` as text, markdown and JSON
(``--json`` saves it, ``--report`` shows it)."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .configs import (CELLS, CONFIGS, FLOAT32_LIBRARY, LIBRARIES, LOW_PRECISIONS,
                      OVERHEAD_CONFIGS, SHORT_NAMES, SPEEDUP_CONFIGS, SPEEDUP_TARGETS, Config,
                      mode_flops)
from .timing import Timing

__all__ = ["Table", "Result", "Report", "problem_title", "summary_table", "targets_table",
           "variants_table", "machine_table", "render_markdown", "NOTES",
           "LOW_PRECISION_NOTES"]

NOTES = ("Times in ms (median); spread is the interquartile range relative to the median. "
         "GF/s count the GEMM FLOPs (forward 2·G·B·H·(I+H)·T per layer and direction, "
         "G the cell's gate blocks: 4 for the LSTM, 3 for the GRU; with a projection "
         "2·G·B·H·(I+P)·T + 2·B·P·H·T; backward twice that, "
         "less the first layer's input gradient when it is not asked for); % GEMM is "
         "the share of numpy's SGEMM (float32) or DGEMM (float64) rate on the same "
         "threads, measured right after each configuration. ln / peer < 1: lstm_native "
         "is faster. A variant no peer has (lstm-peephole, ln-lstm) is timed side by side with "
         "lstm_native's plain LSTM (library lstm_native:lstm) on the same weights and "
         "data: variant / plain > 1 is what the variant costs more. In int8 and bfloat16 "
         "(lstm_native.quantize, inference only, on the float32 problem's weights and "
         "data), float32 / ln is our float32 layer's median (library lstm_native:float32, "
         "timed in the same blocks) over the quantized one's: > 1 is the speed-up.")

#: What a low-precision table's rows are, under the table.
LOW_PRECISION_NOTES = {
    "int8": [
        "lstm_native: quantize(model, 'int8'): weights per row and x_t, h_{t-1} per row "
        "of each step in 8 bits, int32 sums (the kernel: 'lstm_native quantized' "
        "above). GOP/s count its multiply-adds as two operations each; % SGEMM is "
        "against the float32 GEMM rate.",
        "onnxruntime: the float32 ONNX model through onnxruntime.quantization."
        "quantize_dynamic (QInt8 weights, DynamicQuantizeLSTM); it leaves a GRU in "
        "float32: no int8 GRU.",
        "torch: none (torch 2.13's quantize_dynamic returns nn.LSTM and nn.GRU unchanged)."],
    "bfloat16": [
        "lstm_native: quantize(model, 'bfloat16'): weights and activations in bfloat16, "
        "float32 sums (the kernel: 'lstm_native quantized' above); % SGEMM is against "
        "the float32 GEMM rate.",
        "torch: the layer and its input cast to bfloat16, under no_grad (oneDNN's bf16 "
        "LSTM; torch runs its GRU with its own kernels).",
        "onnxruntime: none (no bfloat16 recurrent operator on the CPU)."],
}


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
    """A problem's name in a table's title: its cell's layer (and options), its letter,
    its shape."""
    options = ", ".join(f"{k}={v!r}" for k, v in CELLS[cfg.cell].options.items())
    layer = CELLS[cfg.cell].layer + (f"({options})" if options else "")
    return f"{layer} {cfg.name}: {cfg.describe()}"


def _rate_unit(dtype: str) -> str:
    """What a rate column counts: GF/s, but int8 products are no floating-point ones."""
    return "GOP/s" if dtype == "int8" else "GF/s"


def _is_ours(library: str) -> bool:
    """Whether a timing is lstm_native's: its layer, or one timed beside it for a ratio
    (a variant's baseline, the float32 layer of a low-precision run), not a peer."""
    return library == "lstm_native" or library.startswith("lstm_native:")


def _float32_over_ours(timings: Sequence[Timing]) -> float | None:
    """Our float32 layer's median over our quantized one's, timed side by side (the
    speed-up); None without both in `timings`."""
    by_lib = {t.library: t.median for t in timings}
    if FLOAT32_LIBRARY not in by_lib or "lstm_native" not in by_lib:
        return None
    return by_lib[FLOAT32_LIBRARY] / by_lib["lstm_native"]


def _is_baseline(library: str) -> bool:
    """Whether a timing's library is a variant's baseline, lstm_native's plain layer
    (`Cell.baseline_library`), not a peer."""
    return library in {c.baseline_library for c in CELLS.values() if c.baseline}


def _over_baseline(cfg: Config, timings: Sequence[Timing]) -> float | None:
    """The variant's median over its baseline's, timed side by side; None without a
    baseline in `timings`."""
    by_lib = {t.library: t.median for t in timings}
    plain = by_lib.get(CELLS[cfg.cell].baseline_library)
    if plain is None or "lstm_native" not in by_lib:
        return None
    return by_lib["lstm_native"] / plain


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
        gemm = "DGEMM" if self.dtype == "float64" else "SGEMM"
        libraries = {t.library for ts in self.timings.values() for t in ts}
        peers = sorted({lib for lib in libraries if not _is_ours(lib)}, key=LIBRARIES.index)
        baseline = CELLS[self.cfg.cell].baseline
        with_baseline = CELLS[self.cfg.cell].baseline_library in libraries
        with_float32 = FLOAT32_LIBRARY in libraries
        table = Table(f"{problem_title(self.cfg)} — {self.dtype}, "
                      f"{self.n_threads} thread{'s' if self.n_threads > 1 else ''}",
                      ["mode", "library", "ms (median)", "spread", _rate_unit(self.dtype),
                       f"% {gemm}"]
                      + [f"ln / {SHORT_NAMES[p]}" for p in peers]
                      + ([f"variant / {baseline}"] if with_baseline else [])
                      + (["float32 / ln"] if with_float32 else []), left=2,
                      notes=list(LOW_PRECISION_NOTES.get(self.dtype, [])))
        for mode, timings in self.timings.items():
            ours = next((t for t in timings if t.library == "lstm_native"), None)
            for t in timings:
                cfg = self.cfg.with_cell(baseline) if _is_baseline(t.library) else self.cfg
                gflops = mode_flops(cfg, mode) / t.median / 1e9
                row = [mode, t.library, ms(t.median), f"{100 * t.spread:.0f}%",
                       f"{gflops:.1f}", f"{100 * gflops / self.gemm_gflops:.0f}%"]
                for p in peers:
                    row.append(_ratio(ours.median, t.median)
                               if ours is not None and t.library == p else "")
                if with_baseline:
                    ratio = _over_baseline(self.cfg, timings)
                    row.append(f"{ratio:.3f}" if t is ours and ratio is not None else "")
                if with_float32:
                    speedup = _float32_over_ours(timings)
                    row.append(f"{speedup:.2f}" if t is ours and speedup is not None else "")
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
    """One row per configuration, cell and mode: lstm_native's median, GF/s (GOP/s in
    int8) and share of the GEMM rate, the peers' medians and the ratios lstm_native /
    peer; when a variant was timed, its plain layer's median and the ratio variant /
    plain; in a low precision, our float32 layer's median and the speed-up over it."""
    peers = [p for p in LIBRARIES[1:]
             if any(t.library == p for r in results for ts in r.timings.values() for t in ts)]
    variants = any(_over_baseline(r.cfg, ts) is not None
                   for r in results for ts in r.timings.values())
    low = any(_float32_over_ours(ts) is not None for r in results for ts in r.timings.values())
    units = {_rate_unit(r.dtype) for r in results}
    table = Table(f"{title}: median ms; lstm_native / peer < 1: lstm_native is faster",
                  ["cfg", "cell", "dtype", "threads", "mode", "lstm_native ms",
                   units.pop() if len(units) == 1 else "GF/s, GOP/s in int8", "% GEMM"]
                  + [f"{p} ms" for p in peers] + [f"ln / {SHORT_NAMES[p]}" for p in peers]
                  + (["plain ms", "variant / plain"] if variants else [])
                  + (["float32 ms", "float32 / ln"] if low else []),
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
            if variants:
                ratio = _over_baseline(r.cfg, timings)
                plain = by_lib.get(CELLS[r.cfg.cell].baseline_library)
                row += [ms(plain) if plain is not None else "–",
                        f"{ratio:.3f}" if ratio is not None else "–"]
            if low:
                speedup = _float32_over_ours(timings)
                plain = by_lib.get(FLOAT32_LIBRARY)
                row += [ms(plain) if plain is not None else "–",
                        f"{speedup:.2f}" if speedup is not None else "–"]
            table.rows.append(row)
    return table


def targets_table(results: Sequence[Result]) -> Table:
    """The ratios the performance targets are stated in, per cell, dtype and thread count:
    training against torch (the worst configuration and the geometric mean over all),
    inference against the faster of the peers (the worst of the configurations but S,
    and S, batch 1, which has a target of its own). With low-precision results, the
    columns of their targets besides (`SPEEDUP_TARGETS`, on `SPEEDUP_CONFIGS`): the
    speed-up over our float32 layer timed side by side and the ratio to the faster peer
    in that precision, each the worst and the geometric mean, and the target speed-up."""
    low = any(r.dtype in LOW_PRECISIONS for r in results)
    span = f"{SPEEDUP_CONFIGS[0]}-{SPEEDUP_CONFIGS[-1]}"
    table = Table("Targets: lstm_native / peer, medians of this run (< 1: lstm_native is "
                  "faster)" + (f"; low precision over {span}: float32 / ln, the speed-up "
                               f"over our float32 (> 1: faster)" if low else ""),
                  ["cell", "dtype", "threads", "train / torch, worst",
                   "train / torch, geo. mean", "infer / faster peer, worst but S",
                   "infer / faster peer, S"]
                  + ["float32 / ln, worst", "float32 / ln, geo. mean",
                     "ln / faster peer, worst", "ln / faster peer, geo. mean",
                     "float32 / ln, target (goal)"] * low, left=3)

    def ratios(group, mode, peers):
        out = {}
        for r in group:
            by_lib = {t.library: t.median for t in r.timings.get(mode, [])}
            theirs = [by_lib[p] for p in peers if p in by_lib]
            if "lstm_native" in by_lib and theirs:
                out[r.cfg.name] = by_lib["lstm_native"] / min(theirs)
        return out

    def worst(rs, pick=max):
        if not rs:
            return "–"
        name = pick(rs, key=rs.get)
        return f"{rs[name]:.2f} ({name})"

    def geo_mean(rs):
        return f"{float(np.exp(np.mean(np.log(list(rs.values()))))):.2f}" if rs else "–"

    # A cell no peer has is in `variants_table` instead.
    keys = dict.fromkeys((r.cfg.cell, r.dtype, r.n_threads) for r in results
                         if CELLS[r.cfg.cell].peers)
    for cell, dtype, n in keys:
        group = [r for r in results
                 if (r.cfg.cell, r.dtype, r.n_threads) == (cell, dtype, n)]
        train = ratios(group, "train", ["torch"])
        infer = ratios(group, "infer", LIBRARIES[1:])
        but_s = {name: v for name, v in infer.items() if name != "S"}
        row = [cell, dtype, str(n), worst(train), geo_mean(train), worst(but_s),
               f"{infer['S']:.2f}" if "S" in infer else "–"]
        if low and dtype not in LOW_PRECISIONS:
            row += ["–"] * 5
        elif low:
            speedups = {r.cfg.name: _float32_over_ours(r.timings.get("infer", []))
                        for r in group if r.cfg.name in SPEEDUP_CONFIGS}
            speedups = {name: v for name, v in speedups.items() if v is not None}
            spanned = {name: v for name, v in infer.items() if name in SPEEDUP_CONFIGS}
            target = SPEEDUP_TARGETS.get(dtype)
            row += [worst(speedups, min), geo_mean(speedups), worst(spanned),
                    geo_mean(spanned),
                    f"≥ {target[0]:.1f} ({target[1]:.1f})" if target else "–"]
        table.rows.append(row)
    return table


def variants_table(results: Sequence[Result]) -> Table:
    """Each variant's median over its plain layer's (`Cell.baseline`), timed side by side,
    per cell, dtype, threads and mode: one column per configuration, the worst of A-E, and
    the training step's target (`Cell.overhead_target`)."""
    results = [r for r in results if CELLS[r.cfg.cell].baseline]
    names = list(dict.fromkeys(r.cfg.name for r in results))
    table = Table("Variants: lstm_native's variant / its plain LSTM, medians timed side by "
                  "side in this run (> 1: the variant takes longer)",
                  ["cell", "dtype", "threads", "mode"] + names
                  + [f"worst of {OVERHEAD_CONFIGS[0]}-{OVERHEAD_CONFIGS[-1]}", "target"],
                  left=4)
    keys = dict.fromkeys((r.cfg.cell, r.dtype, r.n_threads, mode)
                         for r in results for mode in r.timings)
    for cell, dtype, n, mode in keys:
        ratios = {}
        for r in results:
            if (r.cfg.cell, r.dtype, r.n_threads) == (cell, dtype, n) and mode in r.timings:
                ratio = _over_baseline(r.cfg, r.timings[mode])
                if ratio is not None:
                    ratios[r.cfg.name] = ratio
        bounded = {name: v for name, v in ratios.items() if name in OVERHEAD_CONFIGS}
        worst = max(bounded, key=bounded.get, default=None)
        target = CELLS[cell].overhead_target
        table.rows.append([cell, dtype, str(n), mode]
                          + [f"{ratios[name]:.3f}" if name in ratios else "–"
                             for name in names]
                          + [f"{bounded[worst]:.3f} ({worst})" if worst else "–",
                             f"≤ {target:.2f}" if target and mode == "train" else "–"])
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
    notes: list[str] = dataclasses.field(default_factory=list)      # what was skipped

    def summaries(self) -> list[Table]:
        """One summary table per dtype, then the ratios of the targets (of the cells with
        peers) and the variants against their plain layer, for the cells the run timed."""
        compared = [r for r in self.results if CELLS[r.cfg.cell].peers]
        variants = [r for r in self.results if CELLS[r.cfg.cell].baseline]
        return [summary_table([r for r in self.results if r.dtype == d], f"Summary, {d}")
                for d in dict.fromkeys(r.dtype for r in self.results)] + \
            ([targets_table(compared)] if compared else []) + \
            ([variants_table(variants)] if variants else [])

    def to_json(self) -> dict:
        return {"command": self.command, "machine": self.machine,
                "gemm": [[d, n, g] for (d, n), g in self.gemm.items()],
                "results": [r.to_json() for r in self.results],
                "tables": [dataclasses.asdict(t) for t in self.tables],
                "notes": self.notes}

    @classmethod
    def from_json(cls, d: dict) -> Report:
        # Runs saved before the low precisions have no "notes".
        return cls(d["command"], d["machine"], {(g[0], g[1]): g[2] for g in d["gemm"]},
                   [Result.from_json(r) for r in d["results"]],
                   [Table(**t) for t in d["tables"]], d.get("notes", []))


def render_markdown(report: Report, per_config: bool = True) -> str:
    """The report as markdown: the command, the machine, the tables."""
    tables = [machine_table(report.machine, report.gemm)]
    if per_config:
        tables += [r.table() for r in report.results]
    if report.results:
        tables += report.summaries()
    tables += report.tables
    return "\n\n".join([f"`{report.command}`", NOTES] + report.notes
                       + [t.markdown() for t in tables]) + "\n"
