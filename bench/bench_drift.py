"""Drift: `mlcycle.drift.compare` against Evidently's `DataDriftPreset` on the same data.

Data (seeded): a reference and a current table of `--rows` rows and 20 columns each, 15 numeric
(normal, log-normal, uniform, exponential and integer Poisson columns; two with 1% nulls) and 5
categorical (`category` dtype, 10 levels of unequal shares; one with 1% nulls), and a planted-shift
current table: the same current rows with 3 numeric columns moved by half a standard deviation and
1 categorical column's level shares reversed. Written once as Parquet to a temporary folder.

Each library runs in a child process of its own (bench/evidently/run_drift.py): ours under the
project's .venv, Evidently under its own virtualenv (`.venv-evidently`, created on first use by
bench/evidently/setup_env.py, because Evidently 0.7.x cannot be imported with pandas 3). The child
reads the Parquet files, warms up on the first 5,000 rows, then times the computation on all rows
(for Evidently: `Dataset.from_pandas` of both tables with an explicit `DataDefinition`, and
`Report.run`). Import, read and warm-up are timed apart and left out of the comparison. Per repeat
(alternating which library goes first): the planted-shift pair once per library; medians over
`--repeats` repeats. Peak memory as the other benchmarks measure it (the summed RSS of the child's
process tree, both tables included) and the child's own peak increase during the computation.
Agreement: the columns each flags on the planted-shift pair, against each other and the planted
set; and on the same-distribution pair (run once per library) any false alarms.

    python bench/bench_drift.py --rows 1000000 --repeats 3    # BENCH_REPEATS sets the default
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, measure, repeats, save, summarise  # noqa: E402

HERE = Path(__file__).resolve().parent
CHILD = HERE / "evidently" / "run_drift.py"
sys.path.insert(0, str(HERE / "evidently"))
import setup_env  # noqa: E402

N_NUMERIC, N_CATEGORICAL, LEVELS = 15, 5, 10
NUMERIC = [f"num_{i:02d}" for i in range(N_NUMERIC)]
CATEGORICAL = [f"cat_{i}" for i in range(N_CATEGORICAL)]
SHIFTED_NUMERIC = ["num_00", "num_06", "num_12"]  # normal, log-normal, uniform: + 0.5 sd
SHIFTED_CATEGORICAL = ["cat_1"]  # level shares reversed
PLANTED = sorted(SHIFTED_NUMERIC + SHIFTED_CATEGORICAL)
NULLS = {"num_03": 0.01, "num_08": 0.01, "cat_2": 0.01}


def _numeric(rng: np.random.Generator, i: int, rows: int) -> np.ndarray:
    kind = i % 5
    if kind == 0:
        return rng.normal(10.0 * i, 1.0 + i / 10, rows)
    if kind == 1:
        return rng.lognormal(0.0, 0.5 + i / 20, rows)
    if kind == 2:
        return rng.uniform(-i, i + 1.0, rows)
    if kind == 3:
        return rng.exponential(1.0 + i, rows)
    return rng.poisson(3 + i, rows).astype(np.float64)


def _shares(j: int, reverse: bool = False) -> np.ndarray:
    p = 1.0 / np.arange(1, LEVELS + 1) ** (0.6 + 0.2 * j)
    p = p / p.sum()
    return p[::-1].copy() if reverse else p


def _categorical(rng: np.random.Generator, j: int, rows: int, reverse: bool = False) -> pd.Categorical:
    codes = rng.choice(LEVELS, size=rows, p=_shares(j, reverse))
    return pd.Categorical.from_codes(codes, categories=[f"level_{k}" for k in range(LEVELS)])


def _with_nulls(rng: np.random.Generator, df: pd.DataFrame) -> pd.DataFrame:
    for col, share in NULLS.items():
        mask = rng.random(len(df)) < share
        df[col] = df[col].mask(mask)
    return df


def table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {c: _numeric(rng, i, rows) for i, c in enumerate(NUMERIC)}
    data.update({c: _categorical(rng, j, rows) for j, c in enumerate(CATEGORICAL)})
    return _with_nulls(rng, pd.DataFrame(data))


def planted(current: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The current rows with the planted shifts: 3 numeric columns + 0.5 sd, 1 categorical reversed."""
    rng = np.random.default_rng(seed)
    out = current.copy()
    for c in SHIFTED_NUMERIC:
        out[c] = out[c] + 0.5 * out[c].std()
    for c in SHIFTED_CATEGORICAL:
        out[c] = _categorical(rng, CATEGORICAL.index(c), len(out), reverse=True)
    return out


def write_data(folder: Path, rows: int, seed: int) -> dict[str, Path]:
    reference, current = table(rows, seed), table(rows, seed + 1)
    paths = {"reference": folder / "reference.parquet", "same": folder / "current_same.parquet",
             "shift": folder / "current_shift.parquet", "columns": folder / "columns.json"}
    reference.to_parquet(paths["reference"])
    current.to_parquet(paths["same"])
    planted(current, seed + 2).to_parquet(paths["shift"])
    paths["columns"].write_text(json.dumps({"numeric": NUMERIC, "categorical": CATEGORICAL}))
    return paths


def run_child(python: Path, lib: str, data: dict[str, Path], current: str, out: Path) -> dict:
    cmd = [str(python), str(CHILD), "--lib", lib, "--reference", str(data["reference"]),
           "--current", str(data[current]), "--columns", str(data["columns"]), "--out", str(out)]
    s = measure(cmd, ROOT)
    r = json.loads(out.read_text())
    # `seconds` is the computation alone (the comparison); `peak_mb` the child's whole process tree
    return {**r, "peak_mb": s["peak_mb"], "process_seconds": s["seconds"]}


def summary(samples: list[dict]) -> dict:
    med = statistics.median
    first = samples[0]
    return {
        **summarise(samples),
        "median_peak_increase_mb": round(med(s["peak_increase_mb"] for s in samples), 1),
        "median_process_seconds": round(med(s["process_seconds"] for s in samples), 3),
        "median_import_seconds": round(med(s["import_seconds"] for s in samples), 3),
        "median_load_seconds": round(med(s["load_seconds"] for s in samples), 3),
        "median_warmup_seconds": round(med(s["warmup_seconds"] for s in samples), 3),
        "version": first["version"], "pandas": first["pandas"], "numpy": first["numpy"], "scipy": first["scipy"],
        "flagged": first["flagged"],
        "flagged_stable": all(s["flagged"] == first["flagged"] for s in samples),
    }


def markdown(r: dict) -> str:
    o, e, a = r["ours"], r["evidently"], r["agreement"]
    lines = [
        "## Drift: mlcycle.drift.compare against Evidently DataDriftPreset", "",
        f"{r['rows']:,} rows x {r['columns']} columns in each table (reference, current), seed {r['seed']}; "
        f"{o['runs']} runs each, alternating; seconds are the computation alone (Parquet read, imports and a "
        "warm-up are timed apart). Each library runs in its own process: Evidently "
        f"{e['version']} on pandas {e['pandas']} (its own virtualenv), mlcycle on pandas {o['pandas']}.", "",
        "| library | runs | median s | min s | max s | peak MB (process) | peak increase MB | import s | read s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in (("mlcycle.drift.compare", o), (f"Evidently {e['version']} DataDriftPreset", e)):
        lines.append(f"| {name} | {v['runs']} | {v['median_seconds']} | {v['min_seconds']} | {v['max_seconds']} "
                     f"| {v['median_peak_mb']} | {v['median_peak_increase_mb']} | {v['median_import_seconds']} "
                     f"| {v['median_load_seconds']} |")
    lines += [
        "", f"Time ratio (Evidently / ours): **{r['time_ratio']}**; peak memory ratio: {r['memory_ratio']}.", "",
        f"Planted shift ({', '.join(a['planted'])}): ours flags {a['ours_shift'] or 'nothing'}, Evidently flags "
        f"{a['evidently_shift'] or 'nothing'}. Same set as each other: **{a['shift_equal']}**; ours equals the planted "
        f"set: **{a['ours_equals_planted']}**; Evidently equals it: **{a['evidently_equals_planted']}**.",
        f"Same distribution: ours flags {a['ours_same'] or 'nothing'}, Evidently flags {a['evidently_same'] or 'nothing'}.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=repeats(3))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    try:
        ev_python = setup_env.ensure()
    except setup_env.SetupError as e:
        print(f"ERROR: bench_drift.py needs Evidently in its own virtualenv ({setup_env.venv_path()}), and setting "
              f"it up failed. Check that PyPI is reachable and retry with `python bench/evidently/setup_env.py`; "
              f"the pins are in bench/evidently/requirements.txt.\n{e}", file=sys.stderr)
        return 1
    ours_python = Path(sys.executable)
    pythons = {"ours": ours_python, "evidently": ev_python}

    with tempfile.TemporaryDirectory(prefix="mlcycle-bench-drift-") as d:
        tmp = Path(d)
        print(f"writing {args.rows:,} x {N_NUMERIC + N_CATEGORICAL} reference, current and planted-shift tables")
        data = write_data(tmp, args.rows, args.seed)
        samples: dict[str, list[dict]] = {"ours": [], "evidently": []}
        for i in range(args.repeats):
            for lib in (("ours", "evidently") if i % 2 == 0 else ("evidently", "ours")):
                s = run_child(pythons[lib], lib, data, "shift", tmp / f"{lib}-{i}.json")
                print(f"repeat {i + 1}/{args.repeats} {lib}: {s['seconds']:.2f} s, peak {s['peak_mb']:.0f} MB, "
                      f"flags {s['flagged']}", flush=True)
                samples[lib].append(s)
        same = {lib: run_child(pythons[lib], lib, data, "same", tmp / f"{lib}-same.json") for lib in pythons}

    ours, ev = summary(samples["ours"]), summary(samples["evidently"])
    agreement = {
        "planted": PLANTED, "ours_shift": ours["flagged"], "evidently_shift": ev["flagged"],
        "shift_equal": ours["flagged"] == ev["flagged"],
        "ours_equals_planted": ours["flagged"] == PLANTED, "evidently_equals_planted": ev["flagged"] == PLANTED,
        "ours_same": same["ours"]["flagged"], "evidently_same": same["evidently"]["flagged"],
        "evidently_count_consistent": all(s["count_consistent"] for s in [*samples["evidently"], same["evidently"]]),
    }
    result = {
        "rows": args.rows, "columns": N_NUMERIC + N_CATEGORICAL, "seed": args.seed, "repeats": args.repeats,
        "ours": ours, "evidently": ev,
        "time_ratio": round(ev["median_seconds"] / ours["median_seconds"], 2),
        "memory_ratio": round(ev["median_peak_mb"] / ours["median_peak_mb"], 2),
        "agreement": agreement,
        "scores_shift": {"ours": samples["ours"][0]["columns"], "evidently": samples["evidently"][0]["columns"]},
        "scores_same": {"ours": same["ours"]["columns"], "evidently": same["evidently"]["columns"]},
    }
    result["markdown"] = markdown(result)
    print(result["markdown"])
    print(save("drift", result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
