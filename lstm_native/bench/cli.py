"""``python -m lstm_native.bench``: the options, and where the tables go."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .configs import CELLS, CONFIGS, DTYPES, LIBRARIES, MODES
from .report import Report, machine_table, render_markdown
from .run import measure_report, say

__all__ = ["build_parser", "main"]


def _choices(text: str, allowed: Sequence[str], what: str, upper: bool = False) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    items = [s.upper() if upper else s for s in items]
    bad = [s for s in items if s not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(bad) or '(none)'}; choose from {', '.join(allowed)}")
    return items


def _thread_counts(text: str) -> list[int]:
    try:
        counts = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected positive thread counts, got {text!r}")
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lstm_native.bench",
        description="Time lstm_native's LSTM (and GRU, LSTMP, variants: --cells) side by "
                    "side with torch.nn's and ONNX Runtime's operator of the same cell "
                    "(whichever are installed), in one process; a variant no peer has, "
                    "with lstm_native's plain LSTM.",
        epilog="Configurations: " + "; ".join(
            f"{c.name} = {c.describe()}" for c in CONFIGS.values())
        + ". Cells: " + "; ".join(c.describe() for c in CELLS.values())
        + ". Modes: " + "; ".join(f"{m} = {d}" for m, d in MODES.items()) + ".")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        type=lambda s: _choices(s, list(CONFIGS), "configuration", upper=True),
                        help="comma-separated configurations (default: all)")
    parser.add_argument("--cells", default="lstm",
                        type=lambda s: _choices(s, list(CELLS), "cell"),
                        help="comma-separated cells, each timed on every configuration's "
                             f"shape (default lstm; {','.join(CELLS)} for all)")
    parser.add_argument("--dtype", default="float32",
                        type=lambda s: _choices(s, DTYPES, "dtype"),
                        help="comma-separated, of float32, float64, and int8 and bfloat16: "
                             "lstm_native.quantize's models (inference only) beside our "
                             "float32 layer and the peers' int8 (ONNX Runtime's "
                             "quantize_dynamic) and bfloat16 (torch) paths (default "
                             "float32)")
    parser.add_argument("--threads", default="2",
                        type=_thread_counts,
                        help="threads of every library, or a comma-separated list (default 2)")
    parser.add_argument("--modes", default="infer,train,train_dx",
                        type=lambda s: _choices(s, list(MODES), "mode"),
                        help="comma-separated modes (default infer,train,train_dx)")
    parser.add_argument("--libs", default=",".join(LIBRARIES),
                        type=lambda s: _choices(s, list(LIBRARIES), "library"),
                        help="libraries to time, when installed (default all)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per library and mode (default: about a second's "
                             "worth, at least 5)")
    parser.add_argument("--pause", type=float, default=None,
                        help="seconds of sleep before each block of runs (default 0.3)")
    parser.add_argument("--quick", action="store_true",
                        help="3 runs in one block, short pauses: a smoke test, not a figure")
    parser.add_argument("--scaling", action="store_true",
                        help="instead of the tables: T=100 vs T=1000 and 1 vs 2 threads on "
                             "the selected configurations among A-E")
    parser.add_argument("--memory", action="store_true",
                        help="also measure each library's peak RSS growth over a training "
                             "step (a fresh process per measurement)")
    parser.add_argument("--markdown", metavar="FILE",
                        help="also write the tables as markdown to FILE")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the raw times (and the other tables) as JSON")
    parser.add_argument("--report", metavar="FILE",
                        help="measure nothing: show the summaries of a run saved with --json "
                             "(and write them with --markdown)")
    parser.add_argument("--summary", action="store_true",
                        help="in the --markdown file, only the summaries, not a table per "
                             "configuration")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark as the command line asks; print the tables.

    Parameters
    ----------
    argv : sequence of str or None
        The arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    int
        The exit status, 0.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.report:
        with open(args.report, encoding="utf-8") as f:
            report = Report.from_json(json.load(f))
        say(machine_table(report.machine, report.gemm).text())
        for note in report.notes:
            say()
            say(note)
        for table in report.summaries() + report.tables:
            say()
            say(table.text())
    else:
        report = measure_report(args, "python -m lstm_native.bench " + " ".join(argv))
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(render_markdown(report, per_config=not args.summary))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report.to_json(), f, indent=1)
    return 0
