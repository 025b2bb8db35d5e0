"""Regenerate the README's table: the forecaster against the classical baselines on real
series.

    python docs/forecast_table.py                      # all series, seeds 0-4 (~15 min)
    python docs/forecast_table.py --series airline --seeds 0 --method lstm

Each series is split as `python -m lstm_native forecast` splits it (70% train, 15%
validation, 15% test); the baselines (`lstm_native.baselines`) are fitted on the values
before the test part and run over it one step at a time without refitting, exactly like
the forecaster. For each seed the script fits a `Forecaster` with the command's default
options (one thread) and the series' season, and prints a Markdown table: each
baseline's test RMSE, ours as median [range] over the seeds, and our ratio to the best
baseline. Trained models depend on the SIMD level the kernels run at (see
docs/figures.py), so the table names it.

The series ship with statsmodels (besides the airline passengers, which ship with
lstm_native); the script is not part of the package and needs statsmodels and pandas.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from lstm_native.bench.machine import simd_level
from lstm_native.data import airline_passengers
from lstm_native.forecasting import Forecaster


def load_series() -> dict:
    """name -> (values, season, what it is): one series of each kind the table covers."""
    import statsmodels.api as sm

    co2 = sm.datasets.co2.load_pandas().data["co2"].interpolate()
    macro = sm.datasets.macrodata.load_pandas().data
    elnino = sm.datasets.elnino.load_pandas().data
    return {
        "airline": (np.asarray(airline_passengers(), float), 12,
                    "monthly airline passengers 1949-1960"),
        "co2": (co2.to_numpy(float), 52,
                "weekly CO2 at Mauna Loa 1958-2001 (high frequency; gaps interpolated)"),
        "sunspots": (sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(float),
                     11, "yearly sunspot numbers 1700-2008 (an ~11-year cycle: --season 11)"),
        "unemployment": (macro["unemp"].to_numpy(float), 4,
                         "quarterly US unemployment rate 1959-2009"),
        "real GDP": (macro["realgdp"].to_numpy(float), 4,
                     "quarterly US real GDP 1959-2009"),
        "El Niño": (elnino.iloc[:, 1:13].to_numpy(float).ravel(), 12,
                    "monthly sea surface temperature 1950-2010"),
        "Nile": (sm.datasets.nile.load_pandas().data["volume"].to_numpy(float), 1,
                 "yearly Nile flow 1871-1970"),
    }


def spread(values, fmt: str) -> str:
    """"median [min, max]", or the one value when they are all equal."""
    values = np.asarray(values, float)
    if np.all(values == values[0]):
        return format(values[0], fmt)
    return (f"{format(np.median(values), fmt)} [{format(values.min(), fmt)}, "
            f"{format(values.max(), fmt)}]")


def measure(names, seeds, **params) -> list[dict]:
    """One row per series: each baseline's RMSE and model, ours per seed, the seconds."""
    series = load_series()
    rows = []
    for name in names:
        values, season, what = series[name]
        runs = []
        for seed in seeds:
            started = time.perf_counter()
            f = Forecaster(seed=seed, season=season, n_threads=1, **params).fit(values)
            runs.append({**f.results_, "total_seconds": time.perf_counter() - started})
        rows.append({"series": name, "what": what, "season": season, "n": len(values),
                     "baselines": runs[0]["baselines"], "models": runs[0]["baseline_models"],
                     "rmse": [r["rmse"] for r in runs],
                     "ratio": [r["ratio_to_best"] for r in runs],
                     "windows": (runs[0]["calibration_windows"], runs[0]["test_windows"]),
                     "coverage": {level: [r["intervals"][level]["coverage"] for r in runs]
                                  for level in runs[0]["intervals"]},
                     "unbounded": [level for level in runs[0]["intervals"]
                                   if runs[0]["intervals"][level]["width"] is None],
                     "seconds": [r["total_seconds"] for r in runs]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    fmt = ".4g"
    lines = ["| series | naive | seasonal naive | ETS | SARIMA | ours | ours / best |",
             "|---|--:|--:|--:|--:|--:|--:|"]
    for row in rows:
        b = row["baselines"]
        best = min(b, key=b.get)

        def cell(name):
            if name not in b:
                return "–"
            text = format(b[name], fmt)
            return f"**{text}**" if name == best else text

        lines.append(f"| {row['series']} ({row['n']}, season {row['season']}) | "
                     f"{cell('naive')} | {cell('seasonal naive')} | {cell('ETS')} | "
                     f"{cell('SARIMA')} | {spread(row['rmse'], fmt)} | "
                     f"{spread(row['ratio'], '.3f')} |")
    ratios = [np.median(row["ratio"]) for row in rows]
    lines.append("")
    lines.append(f"Geometric mean of the median ratios: {np.exp(np.mean(np.log(ratios))):.3f}; "
                 f"kernels at {simd_level()}, one thread.")
    return "\n".join(lines)


def coverage_table(rows: list[dict]) -> str:
    """The prediction intervals' coverage of each test part next to the nominal levels,
    and over all test values (each series' median over the seeds, weighted by its test
    windows); "unbounded" where the validation part has too few windows for the level."""
    levels = list(rows[0]["coverage"])
    lines = ["| series | errors in the pool | test windows | "
             + " | ".join(f"{level}% covers" for level in levels) + " |",
             "|---|--:|--:|" + "--:|" * len(levels)]
    for row in rows:
        lines.append(f"| {row['series']} | {row['windows'][0]} | {row['windows'][1]} | "
                     + " | ".join(spread(row["coverage"][level], ".0%")
                                  + " (unbounded)" * (level in row["unbounded"])
                                  for level in levels)
                     + " |")
    weights = np.array([row["windows"][1] for row in rows], float)
    pooled = [np.average([np.median(row["coverage"][level]) for row in rows],
                         weights=weights) for level in levels]
    lines.append(f"| all | | {int(weights.sum())} | "
                 + " | ".join(f"{p:.0%}" for p in pooled) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", default=None,
                        help="comma-separated names (default: all)")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--method", default="hybrid")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--members", type=int, default=None)
    args = parser.parse_args(argv)
    names = args.series.split(",") if args.series else list(load_series())
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = measure(names, seeds, method=args.method, epochs=args.epochs,
                   members=args.members)
    print(table(rows))
    print()
    print(coverage_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
