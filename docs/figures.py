"""Regenerate the README's figures: docs/figures.md and the longlag plots in docs/.

    python docs/figures.py          # all of them (longlag: about 8 min per SIMD level on 2 cores)
    python docs/figures.py --coretypes Haswell --out /tmp/h --save /tmp/h.json  # other BLAS
    python docs/figures.py --save a.json && python docs/figures.py --merge a.json /tmp/h.json
    python docs/figures.py --parts examples --save e.json     # the scripts in examples/ only
    python docs/figures.py --parts forecast,longlag --keep-examples  # examples/ as they are

Trained models depend on more than their seed: the kernels' float sums round differently
at each SIMD level (``LSTM_NATIVE_ISA``), and so do the BLAS kernels OpenBLAS picks for the
CPU (``OPENBLAS_CORETYPE`` forces a set). So every configuration runs in a process of its
own, as a reader would start it (``python -m lstm_native ... --json``), with the SIMD level
and the BLAS kernels set, one thread (``--threads 1``, ``OMP_NUM_THREADS=1``,
``OPENBLAS_NUM_THREADS=1``), for each seed; figures.md gives, per configuration, the
median and range over the seeds, next to the machine they were measured on. The sample
outputs are the plain commands at this machine's defaults; the plots are those of the
multi-seed longlag run at the default SIMD level and BLAS kernels.

The scripts in examples/ (the README's "Examples") run the same way: ``python
examples/NAME.py --seed S --json`` at each SIMD level, one thread, with OpenBLAS's
default kernels.

Levels this CPU cannot run are skipped (the kernels fall back to a lower one, which is
measured anyway). The script is not part of the package; it needs matplotlib.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from lstm_native import longlag

DOCS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DOCS)
LEVELS = ("generic", "avx2", "avx512")
PARTS = ("forecast", "longlag", "examples")
#: The scripts in examples/ and their figures: (key of their --json, heading, format).
EXAMPLES = {
    "forecast_csv": [("rmse", "1 step RMSE", ".1f"), ("naive_rmse", "naive", ".1f"),
                     ("rmse_steps", "12 steps RMSE", ".1f"),
                     ("naive_rmse_steps", "naive", ".1f"), ("epochs", "epochs run", ".0f"),
                     ("seconds", "training (s)", ".1f")],
    "char_lm": [("first_val_loss", "validation loss, epoch 1", ".2f"),
                ("last_val_loss", "last epoch", ".2f"), ("uniform_loss", "uniform guess", ".2f"),
                ("seconds", "training (s)", ".0f")],
    "classify_lengths": [("test_accuracy", "test accuracy (%)", ".1%"),
                         ("shorter_half", "shorter half", ".1%"),
                         ("longer_half", "longer half", ".1%"),
                         ("seconds", "training (s)", ".1f")],
}
#: What every run is given: one thread for the kernels and for BLAS.
THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


# -- running the command line --------------------------------------------------------------

def environment(level: str | None, coretype: str) -> dict:
    """The environment of one run: `level` (None: the kernels' own choice) and the
    OpenBLAS `coretype` ("default": whatever OpenBLAS picks, or the caller's setting)."""
    env = {**os.environ, **THREADS}
    env.pop("LSTM_NATIVE_ISA", None)
    if level is not None:
        env["LSTM_NATIVE_ISA"] = level
    if coretype != "default":
        env["OPENBLAS_CORETYPE"] = coretype
    return env


def run(args: list, env: dict, cwd: str) -> str:
    """The stdout of ``python ARGS`` in `cwd`; a failure stops the script with its stderr."""
    proc = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"python {shlex.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    return proc.stdout


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def machine() -> dict:
    """What this process runs on: CPU, versions, numpy's and scipy's BLAS with the kernels
    OpenBLAS picked, ``OPENBLAS_CORETYPE``, and the kernels' SIMD level and OpenMP."""
    import platform

    import scipy
    from threadpoolctl import threadpool_info

    import lstm_native
    from lstm_native._recurrent import simd_level

    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f
                     if line.startswith("model name")]
        cpu = names[0] if names else cpu
    blas = []
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            # numpy.libs/..., scipy.libs/...: the package that ships it.
            owner = os.path.basename(os.path.dirname(lib["filepath"])).split(".")[0]
            blas.append(f"{owner}: {lib.get('internal_api')} {lib.get('version')} "
                        f"({lib.get('architecture')} kernels)")
    return {"cpu": cpu, "cores": os.cpu_count(),
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "BLAS": "; ".join(sorted(blas)) or "none found",
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
            "lstm_native SIMD": simd_level(),
            "lstm_native OpenMP": "on" if lstm_native.openmp_enabled() else "off"}


def probe(level: str | None, coretype: str, cwd: str) -> dict:
    """`machine` as a run with this level and BLAS setting sees it."""
    return json.loads(run([os.path.abspath(__file__), "--machine"],
                          environment(level, coretype), cwd))


def blas_kernels(info: dict) -> str:
    """The OpenBLAS kernel set of scipy's BLAS (the one the kernels call), e.g. "SkylakeX"."""
    for part in info["BLAS"].split("; "):
        if part.startswith("scipy:") and "(" in part:
            return part.rsplit("(", 1)[1].split(" kernels")[0]
    return "unknown"


# -- the measurements ----------------------------------------------------------------------

def measure(levels, coretypes, seeds, work: str, forecast_args=(), longlag_args=(),
            parts=PARTS, example_seeds=None) -> dict:
    """Every run of `parts` figures.md needs (see the module's notes): the results as
    `render` takes them, and the folder of the default configuration's longlag plots.
    `example_seeds` maps an example's name to its seeds when they are not `seeds`."""
    default_info = probe(None, "default", work)
    default_level = default_info["lstm_native SIMD"]
    seed_text = ",".join(map(str, seeds))
    results = {"machine": default_info,
               "default_level": default_level, "default_blas": blas_kernels(default_info), "seeds": list(seeds), "threads": THREADS,
               "configs": [], "commit": _commit(),
               "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    plots_dir = None
    cli_parts = [part for part in ("forecast", "longlag") if part in parts]
    for coretype in coretypes if cli_parts else ():
        for level in levels:
            info = probe(level, coretype, work)
            if info["lstm_native SIMD"] != level:
                print(f"skipped {level}: this CPU runs {info['lstm_native SIMD']} instead",
                      flush=True)
                continue
            config = {"level": level, "coretype": coretype, "blas": blas_kernels(info),
                      "forecast": [], "longlag": None}
            env = environment(level, coretype)
            for seed in seeds if "forecast" in parts else ():
                cwd = os.path.join(work, f"{coretype}-{level}-forecast-{seed}")
                os.makedirs(cwd)
                out = run(["-m", "lstm_native", "--seed", str(seed), "--quiet", "--json",
                           *forecast_args], env, cwd)
                config["forecast"].append(last_json(out))
            print(f"{coretype} {level}: forecast done", flush=True)
            if "longlag" not in parts:
                results["configs"].append(config)
                continue
            cwd = os.path.join(work, f"{coretype}-{level}-longlag")
            os.makedirs(cwd)
            out = run(["-m", "lstm_native", "longlag", "--seeds", seed_text, "--quiet",
                       "--json", *longlag_args], env, cwd)
            config["longlag"] = last_json(out)
            print(f"{coretype} {level}: longlag done", flush=True)
            if level == default_level and coretype == "default":
                plots_dir = os.path.join(cwd, "lstm_native_out")
            results["configs"].append(config)
    # What a reader who types the plain commands sees on this machine.
    env = environment(None, "default")
    for name, args in (("forecast", list(forecast_args)), ("longlag", ["longlag", *longlag_args])):
        if name not in parts:
            continue
        cwd = os.path.join(work, f"sample-{name}")
        os.makedirs(cwd)
        results[f"{name}_sample"] = {"command": shlex.join(["python", "-m", "lstm_native", *args]),
                                     "output": run(["-m", "lstm_native", *args], env, cwd)}
    if "examples" in parts:
        results["examples"] = measure_examples(levels, seeds, work, example_seeds or {})
    return {"results": results, "plots_dir": plots_dir}


def measure_examples(levels, seeds, work: str, example_seeds: dict) -> list[dict]:
    """Each script of `EXAMPLES` at its defaults, per SIMD level and seed, in a process of
    its own (``python examples/NAME.py --seed S --json``, one thread, OpenBLAS's default
    kernels): per level, each script's seeds and the JSON objects they printed."""
    measured = []
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for level in levels:
        info = probe(level, "default", work)
        if info["lstm_native SIMD"] != level:
            print(f"skipped {level}: this CPU runs {info['lstm_native SIMD']} instead",
                  flush=True)
            continue
        entry = {"level": level, "coretype": "default", "blas": blas_kernels(info),
                 "date": date, "commit": _commit(("examples",)), "scripts": {}}
        env = environment(level, "default")
        for name in EXAMPLES:
            script = os.path.join(ROOT, "examples", f"{name}.py")
            script_seeds = list(example_seeds.get(name, seeds))
            runs = []
            for seed in script_seeds:
                cwd = os.path.join(work, f"{level}-{name}-{seed}")
                os.makedirs(cwd)
                runs.append(last_json(run([script, "--seed", str(seed), "--json"], env, cwd)))
            entry["scripts"][name] = {"seeds": script_seeds, "runs": runs}
            print(f"{level}: {name} done", flush=True)
        measured.append(entry)
    return measured


def _commit(more=()) -> str:
    """The commit measured, with a note when the package's files (or `more` of the
    repository's folders) differ from it."""
    def git(*args):
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--", "lstm_native", "src", "CMakeLists.txt"):
        commit += " (with uncommitted changes to the package)"
    elif more and git("status", "--porcelain", "--", *more):
        commit += f" (with uncommitted changes to {', '.join(more)})"
    return commit


# -- figures.md ----------------------------------------------------------------------------

def spread(values, fmt: str) -> str:
    """"median [min, max]" of `values`, or the one value when they are all equal."""
    median, low, high = longlag.spread(values)
    if fmt.endswith("%"):           # "94.8 [93.1, 95.2]": the values are fractions
        median, low, high, fmt = 100 * median, 100 * low, 100 * high, fmt[:-1] + "f"
    if low == high:
        return format(median, fmt)
    return f"{median:{fmt}} [{low:{fmt}}, {high:{fmt}}]"


def _table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows]


def _config_name(config: dict) -> tuple[str, str]:
    blas = config["blas"] + (f" (OPENBLAS_CORETYPE={config['coretype']})"
                             if config["coretype"] != "default" else "")
    return config["level"], blas


def _code(text: str) -> list[str]:
    return ["```", text.rstrip("\n"), "```"]


def _seed_text(seeds) -> str:
    seeds = list(seeds)
    return f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) \
        else ", ".join(map(str, seeds))


def render(results: dict) -> str:
    """figures.md from `measure`'s results: the machine and settings, then per
    configuration (SIMD level, BLAS kernels) the median and range over the seeds."""
    seed_text = _seed_text(results["seeds"])
    threads = ", ".join(f"`{k}={v}`" for k, v in results["threads"].items())
    m = results["machine"]
    lines = [
        "# The README's figures",
        "",
        "Made by `python docs/figures.py` (do not edit by hand) on "
        f"{results['date']}, at commit {results['commit']}. Each configuration (SIMD level "
        "of the kernels, BLAS kernels) ran in processes of its own: `python -m lstm_native "
        f"... --json` with `LSTM_NATIVE_ISA` set, {threads} and `--threads 1`, once per "
        f"seed {seed_text}. A figure is the median over the seeds, with the range "
        "[min, max]. Trained models differ between SIMD levels and between BLAS kernels "
        "(their float sums round differently), so results on another machine can differ "
        "within (and sometimes beyond) these ranges.",
        "",
        "## Machine",
        "",
        *_table(["", ""], [
            ("CPU", f"{m['cpu']} ({m['cores']} cores)"), ("OS", m["os"]),
            ("Python, numpy, scipy", f"{m['python']}, {m['numpy']}, {m['scipy']}"),
            ("BLAS (by default)", m["BLAS"]),
            ("OPENBLAS_CORETYPE", m["OPENBLAS_CORETYPE"]),
            ("SIMD level (by default)", m["lstm_native SIMD"]),
            ("OpenMP", m["lstm_native OpenMP"])]),
        "",
    ]
    if any(config["forecast"] for config in results["configs"]):
        lines += _forecast_section(results, seed_text)
    if any(config["longlag"] for config in results["configs"]):
        lines += _longlag_section(results, seed_text)
    if results.get("examples"):
        lines += _examples_section(results["examples"], results["seeds"],
                                   results.get("examples_note"))
    return "\n".join(lines) + "\n"


def _sample(results: dict, name: str, what: str) -> list[str]:
    sample = results[f"{name}_sample"]
    return [f"`{sample['command']}` as printed on this machine at its defaults ({what}, "
            f"SIMD {results['default_level']}, BLAS kernels {results['default_blas']}, one "
            "thread):", "",
            *_code(f"$ {sample['command']}\n{sample['output']}"), ""]


def _forecast_section(results: dict, seed_text: str) -> list[str]:
    rows = []
    for config in results["configs"]:
        runs = config["forecast"]
        if not runs:
            continue
        rows.append((*_config_name(config),
                     spread([r["rmse"] for r in runs], ".2f"),
                     spread([r["naive_rmse"] for r in runs], ".2f"),
                     spread([r["epochs"] for r in runs], ".0f"),
                     spread([r["best_epoch"] for r in runs], ".0f"),
                     spread([r["seconds"] for r in runs], ".1f"),
                     ", ".join(f"{r['rmse']:.2f}" for r in runs)))
    return [
        "## The main job: `python -m lstm_native`", "",
        *_sample(results, "forecast", "seed 0"),
        f"Over seeds {seed_text} (`--seed S`, everything else at its default):", "",
        *_table(["SIMD level", "BLAS kernels", "test RMSE", "naive RMSE", "epochs run",
                 "best epoch", "training (s)", "test RMSE per seed"], rows), ""]


def _longlag_section(results: dict, seed_text: str) -> list[str]:
    configs = [config for config in results["configs"] if config["longlag"]]
    # The cells measured (files saved before --cells hold RNN and LSTM; --longlag-args
    # "--cells ..." adds the variants), in the registry's order; a configuration without
    # one of them shows a dash there.
    cells = [spec.label for spec in longlag.REGISTRY.values()
             if any(spec.label in config["longlag"]["table"][0] for config in configs)]
    lines = ["## `python -m lstm_native longlag`", "",
             *_sample(results, "longlag", "seed 0"),
             f"Test MSE over seeds {seed_text} (`--seeds {seed_text}`); solved = MSE < "
             "0.0167, counted over the seeds:", ""]
    rows = []
    for config in configs:
        for row in config["longlag"]["table"]:
            figures = []
            for cell in cells:
                done = row.get(cell)
                figures += (["–", "–"] if done is None else
                            [spread(done["test_mse"], longlag.MSE_FORMAT),
                             f"{sum(done['solved'])}/{len(done['solved'])}"])
            rows.append((*_config_name(config), row["lag"], spread(row["trivial_mse"], ".4f"),
                         *figures))
    header = ["SIMD level", "BLAS kernels", "T", "trivial MSE"]
    for cell in cells:
        header += [f"{cell} MSE", f"{cell} solved"]
    lines += [*_table(header, rows), ""]

    # The first marked value lies T - T//2 to T - 1 steps back from the loss.
    T = configs[0]["longlag"]["table"][-1]["lag"]
    near, far = T - T // 2, T - 1
    rows = []
    for config in configs:
        curves = config["longlag"]["gradient_curves"]
        for kind in cells:
            if f"{kind}_trained" not in curves:
                continue
            row = [*_config_name(config), kind]
            for when in ("trained", "initial"):
                per_seed = np.asarray(curves[f"{kind}_{when}"])     # (seeds, T)
                row += [spread(per_seed[:, near], ".2g"), spread(per_seed[:, far], ".2g")]
            rows.append(row)
    lines += [f"‖∂L/∂h_t‖ / ‖∂L/∂h_{{T−1}}‖ at T = {T}, {near} and {far} steps back from the "
              "loss (the nearest and farthest places of the first marked value): per seed "
              f"the median over 256 test sequences, then median [range] over seeds "
              f"{seed_text}:", "",
              *_table(["SIMD level", "BLAS kernels", "model", f"trained, {near} back",
                       f"trained, {far} back", f"initial, {near} back",
                       f"initial, {far} back"], rows), ""]

    rows = []
    for config in configs:
        g = config["longlag"]["gates"]
        if g is None:           # measured without an LSTM
            continue
        rows.append((*_config_name(config), g["seed"], g["unit"],
                     f"{g['first_mark']}, {g['second_mark']}", f"{g['input_at_mark']:.2f}",
                     f"{g['input_elsewhere']:.2f}", f"{g['forget_after_min']:.2f}",
                     f"{g['forget_after_median']:.2f}"))
    if rows:
        lines += [f"The trained LSTM (T = {T}) on its first test sequence: the unit that best "
                  "writes and keeps the first marked value (largest input gate at the first "
                  "mark times smallest forget gate after it):", "",
                  *_table(["SIMD level", "BLAS kernels", "seed", "unit", "marked steps",
                           "input gate at the first mark", "input gate elsewhere (mean)",
                           "forget gate after it (min)", "(median)"], rows), ""]
    gates = (f" and `docs/longlag_gates.png` (seed {results['seeds'][0]})" if rows else "")
    lines += [f"`docs/longlag_gradients.png` (seeds {seed_text}){gates} "
              f"{'are the plots' if rows else 'is the plot'} of the run at SIMD "
              f"{results['default_level']} with the default BLAS kernels.", ""]
    return lines


EXAMPLES_HEADING = "## Examples"


def examples_section(text: str) -> str | None:
    """The examples section of a figures.md (from its heading to the end, where `render`
    puts it), or None when it has none."""
    start = text.find(f"\n{EXAMPLES_HEADING}\n")
    return None if start < 0 else text[start + 1:]


def _examples_section(examples: list[dict], seeds, note=None) -> list[str]:
    dates = sorted({f"{e['date']}, at commit {e['commit']}" for e in examples})
    lines = [EXAMPLES_HEADING, "",
             "The scripts in `examples/` at their defaults, each run as `python "
             "examples/NAME.py --seed S --json` in a process of its own at each SIMD level "
             "(`LSTM_NATIVE_ISA`), one thread, OpenBLAS's default kernels; measured on "
             f"{'; '.join(dates)}. Median [min, max] over the seeds; the seconds are those "
             "of training (`fit`) and depend on the machine's load.", ""]
    if note:
        lines += [note, ""]
    for name, columns in EXAMPLES.items():
        rows = []
        for entry in examples:
            script = entry["scripts"].get(name)
            if script is None:
                continue
            rows.append((entry["level"], entry["blas"], _seed_text(script["seeds"]),
                         *(spread([r[key] for r in script["runs"]], fmt)
                           for key, _, fmt in columns)))
        if not rows:
            continue
        heading = f"`python examples/{name}.py`"
        fewer = sorted({row[2] for row in rows} - {_seed_text(seeds)})
        if fewer:       # say it where the figures are, not only in the seeds column
            heading += (f", over seeds {' or '.join(fewer)} only (`--example-seeds "
                        f"{name}=...`), not {_seed_text(seeds)} as the rest")
        lines += [f"{heading}:", "",
                  *_table(["SIMD level", "BLAS kernels", "seeds",
                           *(title for _, title, _ in columns)], rows), ""]
    return lines


# -- main ----------------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default=",".join(LEVELS),
                   help=f"SIMD levels to measure (default: {','.join(LEVELS)})")
    p.add_argument("--coretypes", default="default",
                   help="OpenBLAS kernel sets to measure, 'default' for the one OpenBLAS "
                        "picks (e.g. default,Haswell; default: default)")
    p.add_argument("--seeds", default="0-4", help="seeds of every run (default: 0-4)")
    p.add_argument("--parts", default=",".join(PARTS),
                   help=f"what to measure (default: {','.join(PARTS)}); the forecast and "
                        "longlag parts of `python -m lstm_native`, the scripts in examples/")
    p.add_argument("--example-seeds", metavar="NAME=SEEDS", action="append", default=[],
                   help="other seeds for one example, e.g. char_lm=0-1 (repeatable)")
    p.add_argument("--out", default=DOCS,
                   help="where figures.md and the longlag PNGs go (default: docs/)")
    p.add_argument("--forecast-args", default="", help="more options for every forecast run")
    p.add_argument("--longlag-args", default="", help="more options for every longlag run")
    p.add_argument("--save", metavar="FILE.json",
                   help="also write the measured results to FILE.json")
    p.add_argument("--merge", metavar="FILE.json", nargs="+",
                   help="measure nothing: write figures.md from results saved with --save "
                        "(the machine, samples and plots of the first; the configurations "
                        "of all), e.g. of runs with different --coretypes")
    p.add_argument("--note", help="a paragraph for the examples section of figures.md (how "
                                  "they were measured when it is not the usual way)")
    p.add_argument("--keep-examples", action="store_true",
                   help="keep the examples section of the figures.md in --out as it is (it "
                        "says when and at which commit it was measured), after the forecast "
                        "and longlag parts measured (or merged) now: the parts the top of "
                        "the file dates")
    p.add_argument("--machine", action="store_true",
                   help="print what this process runs on as JSON, and stop")
    args = p.parse_args(argv)
    if args.machine:
        print(json.dumps(machine()))
        return 0
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "figures.md")
    parts = [part.strip() for part in args.parts.split(",")]
    kept = ""
    if args.keep_examples:
        if not args.merge and sorted(parts) != ["forecast", "longlag"]:
            p.error(f"--keep-examples: measures --parts forecast,longlag (the top of "
                    f"figures.md dates both), got --parts {args.parts}")
        try:
            with open(path, encoding="utf-8") as f:
                kept = examples_section(f.read())
        except FileNotFoundError:
            kept = None
        if kept is None:
            p.error(f"--keep-examples: {path} has no examples section to keep")
    if args.merge:
        saved = []
        for name in args.merge:
            with open(name, encoding="utf-8") as f:
                saved.append(json.load(f))
        # Results saved before the examples part existed have no "examples".
        results = {**saved[0], "configs": [c for r in saved for c in r["configs"]],
                   "examples": [e for r in saved for e in r.get("examples", [])]}
        for name in ("forecast_sample", "longlag_sample"):
            found = [r[name] for r in saved if name in r]
            if found:
                results[name] = found[0]
        if args.note:
            results["examples_note"] = args.note
        if kept and results["examples"]:
            p.error("--keep-examples: the saved results hold examples of their own")
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(results) + kept)
        print(f"wrote {path}")
        return 0
    seeds = longlag.parse_seeds(args.seeds)
    levels = [level.strip() for level in args.levels.split(",")]
    unknown = set(levels) - set(LEVELS)
    if unknown:
        p.error(f"--levels: expected some of {', '.join(LEVELS)}, got {', '.join(unknown)}")
    coretypes = [c.strip() for c in args.coretypes.split(",")]
    if not parts or set(parts) - set(PARTS):
        p.error(f"--parts: expected some of {', '.join(PARTS)}, got {args.parts}")
    example_seeds = {}
    for item in args.example_seeds:
        name, _, text = item.partition("=")
        if name not in EXAMPLES or not text:
            p.error(f"--example-seeds: expected NAME=SEEDS with NAME one of "
                    f"{', '.join(EXAMPLES)}, got {item!r}")
        example_seeds[name] = longlag.parse_seeds(text)
    with tempfile.TemporaryDirectory() as work:
        measured = measure(levels, coretypes, seeds, work, shlex.split(args.forecast_args),
                           shlex.split(args.longlag_args), parts, example_seeds)
        if args.note:
            measured["results"]["examples_note"] = args.note
        written = [path]
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(measured["results"]) + kept)
        if args.save:
            with open(args.save, "w", encoding="utf-8") as f:
                json.dump(measured["results"], f)
            written.append(args.save)
        if measured["plots_dir"] is not None:
            for name in ("gradients", "gates"):       # no gates without an LSTM
                source = os.path.join(measured["plots_dir"], f"{name}.png")
                if os.path.exists(source):
                    target = os.path.join(args.out, f"longlag_{name}.png")
                    shutil.copyfile(source, target)
                    written.append(target)
    print("wrote " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
