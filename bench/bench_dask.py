"""Benchmark: work on the embedded local Dask cluster against the same work in one process.

1. Search (`--trials`, default 16): `train.search` with `method: random` on `--search-rows` of the
   workspace's training rows (time-ordered 3-fold cross-validation), `engine: serial` (one process,
   OpenMP threads on every core) against `engine: dask` (the local cluster: one worker per core,
   one thread each). Random search draws the same candidates on both, so both do the same work
   (the benchmark checks they choose the same values). Medians of `BENCH_REPEATS` (default 2).
2. Batch scoring: `mlcycle serving score` (partitions on the local cluster) against one pandas process
   that reads every file into one frame, calls the same model on it and writes the result.
3. Monitoring the scored rows: `mlcycle monitoring run --input` on the 10x output of `mlcycle serving score`,
   read partition by partition on the local cluster (more rows than `monitor.max_memory_rows`)
   against the same command reading them into memory (the limit raised past the rows): wall time,
   peak memory, and whether both verdicts agree (`--no-monitor` skips it).

The input is the workspace's own processed rows (train, validation and holdout inputs of the
champion, about 336,000 flights) repeated `--scale` times, as Parquet files of one copy each (10x:
about 3.3M rows in 10 files). Both sides score with the champion and write Parquet; the baseline
calls the scikit-learn pipeline on the whole frame (its fastest form for one big batch: compiled
scoring hands large batches to the pipeline too), ours runs `mlcycle serving score` as a user would, with
the default params (`compute`: one worker per core; `score.blocksize` 32 MiB). Wall time and the
peak of the summed memory of each command's whole process tree (driver and workers), sampled every
50 ms; the runs alternate, medians of `BENCH_REPEATS` (default 2). At `--memory-scale` (default
30x) only ours runs: its peak memory should stay where it was at `--scale`.

    python bench/bench_dask.py [--trials 16] [--search-rows 60000] [--scale 10] [--memory-scale 30]

Needs a champion (`make repro`). Results go to stdout and reports/benchmarks/dask.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import measure, repeats, save  # noqa: E402

TARGETS = {"throughput_ratio": 0.9, "peak_memory_ratio": 0.3, "memory_growth": 0.10, "search_speedup": 1.7}

BASELINE = """
import sys, mlflow, mlflow.sklearn, pandas as pd
from mlcycle.core import config, scoring
from mlcycle.runtime import tracking
from pathlib import Path
root = Path.cwd()
params = config.load(root / "params.yaml", root=root)
mlflow.set_tracking_uri(tracking.tracking_uri(root, params))
model = mlflow.sklearn.load_model(sys.argv[3])
X = pd.read_parquet(sys.argv[1])
out = X.copy()
out["score"] = scoring.scores(model, X, sys.argv[4])
out.to_parquet(sys.argv[2])
print(len(out))
"""


def inputs(folder: Path, scale: int) -> int:
    """`scale` Parquet files of the champion's processed input rows; their total row count."""
    import pandas as pd

    from mlcycle.core.paths import Paths
    from mlcycle.core.spec import FeatureSpec

    paths = Paths(ROOT)
    spec = FeatureSpec.from_json(paths.feature_spec)
    rows = pd.concat([pd.read_parquet(paths.split_file(p))[spec.inputs] for p in ("train", "valid", "test")],
                     ignore_index=True)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(scale):
        rows.to_parquet(folder / f"copy-{i:03d}.parquet", index=False)
    return len(rows) * scale


def champion() -> tuple[str, str]:
    import mlflow

    from mlcycle.core import config
    from mlcycle.runtime import tracking

    params = config.load(ROOT / "params.yaml", root=ROOT)
    uri = tracking.tracking_uri(ROOT, params)
    mv = mlflow.MlflowClient(uri, uri).get_model_version_by_alias(params.tracking.model_name, "champion")
    from mlcycle.core.paths import Paths
    from mlcycle.core.spec import FeatureSpec

    task = FeatureSpec.from_json(Paths(ROOT).feature_spec).task
    return f"models:/{params.tracking.model_name}/{mv.version}", task


SEARCH = """
import json, sys, time
import pandas as pd
from pathlib import Path
from mlcycle.core import config
from mlcycle.core.paths import Paths
from mlcycle.core.spec import FeatureSpec
from mlcycle.tasks.tabular import search
from mlcycle.tasks.tabular import features
root = Path.cwd()
params = config.load(root / "params.yaml", root=root)
paths = Paths(root)
spec = FeatureSpec.from_json(paths.feature_spec)
rows = int(sys.argv[3])
X, y = features.read(paths, "train", spec)
Xv, yv = features.read(paths, "valid", spec)
train = params.train.model_copy(update={"search": params.train.search.model_copy(update={
    "method": "random", "trials": int(sys.argv[2]), "cv_folds": 3, "engine": sys.argv[1]})})
t = time.perf_counter()
sel = search.select((X.tail(rows), y.tail(rows)), (Xv.head(rows // 4), yv.head(rows // 4)), spec, train, params.compute)
print(json.dumps({"seconds": time.perf_counter() - t, "chosen": sel.chosen(), "trials": len(sel.trials)}))
"""


def search_bench(args, n_runs: int) -> dict:
    import json

    runs: dict[str, list[dict]] = {"serial": [], "dask": []}
    chosen = {}
    for r in range(n_runs):
        for engine in ("serial", "dask"):
            m = measure([sys.executable, "-c", SEARCH, engine, str(args.trials), str(args.search_rows)], ROOT)
            doc = json.loads(m.pop("output").strip().splitlines()[-1])
            chosen[engine] = doc["chosen"]
            runs[engine].append({**m, "search_seconds": doc["seconds"]})
            print(f"run {r + 1} search {engine:<6} {args.trials} trials: {doc['seconds']:.1f} s "
                  f"(process {m['seconds']:.1f} s, peak {m['peak_mb']:.0f} MB)", flush=True)
    med = {k: statistics.median(x["search_seconds"] for x in v) for k, v in runs.items()}
    return {"trials": args.trials, "rows": args.search_rows, "runs": runs, "median_seconds": med,
            "speedup": round(med["serial"] / med["dask"], 2), "same_choice": chosen["serial"] == chosen["dask"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--search-rows", type=int, default=60_000)
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--memory-scale", type=int, default=30)
    ap.add_argument("--search", action=argparse.BooleanOptionalAction, default=True, help="--no-search: scoring only")
    ap.add_argument("--monitor", action=argparse.BooleanOptionalAction, default=True,
                    help="--no-monitor: skip monitoring the scored rows")
    args = ap.parse_args()
    model, task = champion()
    n_runs = repeats(2)
    searched = search_bench(args, n_runs) if args.search else None
    with tempfile.TemporaryDirectory(prefix="mlcycle-bench-score-") as t:
        tmp = Path(t)
        rows = inputs(tmp / "in", args.scale)
        runs: dict[str, list[dict]] = {"baseline": [], "mlcycle": []}
        for r in range(n_runs):
            for kind in ("baseline", "mlcycle"):
                out = tmp / f"out-{kind}-{r}"
                if kind == "baseline":
                    cmd = [sys.executable, "-c", BASELINE, str(tmp / "in"), str(out) + ".parquet", model, task]
                else:
                    cmd = [sys.executable, "-m", "mlcycle", "serving", "score", "--input", str(tmp / "in"), "--output", str(out),
                           "--model", model, "--no-progress"]
                m = measure(cmd, ROOT)
                m.pop("output")
                runs[kind].append(m)
                print(f"run {r + 1} {kind:<8} {rows:,} rows: {m['seconds']:.1f} s, peak {m['peak_mb']:.0f} MB", flush=True)
        monitored = monitor_bench(tmp / "out-mlcycle-0", tmp) if args.monitor else None
        big = tmp / "big"
        big_rows = inputs(big, args.memory_scale)
        m = measure([sys.executable, "-m", "mlcycle", "serving", "score", "--input", str(big), "--output", str(tmp / "out-big"),
                     "--model", model, "--no-progress"], ROOT)
        m.pop("output")
        print(f"mlcycle at {args.memory_scale}x, {big_rows:,} rows: {m['seconds']:.1f} s, peak {m['peak_mb']:.0f} MB")
    med = {k: {"seconds": statistics.median(x["seconds"] for x in v), "peak_mb": statistics.median(x["peak_mb"] for x in v)}
           for k, v in runs.items()}
    for v in med.values():
        v["rows_per_s"] = rows / v["seconds"]
    result = {"search": searched, "monitor": monitored, "model": model, "rows": rows, "scale": args.scale, "runs": runs, "median": med,
              "throughput_ratio": round(med["mlcycle"]["rows_per_s"] / med["baseline"]["rows_per_s"], 3),
              "peak_memory_ratio": round(med["mlcycle"]["peak_mb"] / med["baseline"]["peak_mb"], 3),
              "memory_scale": args.memory_scale, "memory_scale_rows": big_rows, "memory_scale_run": m,
              "memory_growth": round(m["peak_mb"] / med["mlcycle"]["peak_mb"] - 1, 3)}
    result["targets"] = {"throughput_met": result["throughput_ratio"] >= TARGETS["throughput_ratio"],
                         "memory_met": result["peak_memory_ratio"] <= TARGETS["peak_memory_ratio"],
                         "growth_met": result["memory_growth"] <= TARGETS["memory_growth"],
                         "search_met": bool(searched) and searched["speedup"] >= TARGETS["search_speedup"]}
    result["markdown"] = markdown(result)
    print(result["markdown"])
    print(save("dask", result))
    return 0


def monitor_bench(scored: Path, tmp: Path) -> dict:
    """`mlcycle monitoring run --input` on a scored folder: partition by partition against in memory."""
    import json

    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["monitor"]["max_memory_rows"] = 10 ** 9
    in_memory = ROOT / ".bench-monitor-in-memory.yaml"  # --params is relative to the workspace
    in_memory.write_text(yaml.safe_dump(params, sort_keys=False))
    out, verdicts = {}, {}
    try:
        for kind, extra in (("partitions", []), ("in_memory", ["--params", in_memory.name])):
            m = measure([sys.executable, "-m", "mlcycle", *extra, "monitoring", "run", "--input", str(scored)], ROOT)
            m.pop("output")
            verdicts[kind] = json.loads((ROOT / "reports/monitor/verdict.json").read_text())
            out[kind] = m
            print(f"monitor {kind:<10} {verdicts[kind]['current']['rows']:,} rows: {m['seconds']:.1f} s, "
                  f"peak {m['peak_mb']:.0f} MB", flush=True)
    finally:
        in_memory.unlink(missing_ok=True)
    a, b = verdicts["partitions"]["drift"]["columns"], verdicts["in_memory"]["drift"]["columns"]
    psi_gap = max(abs(x["psi"] - y["psi"]) for x, y in zip(sorted(a, key=lambda c: c["column"]),
                                                            sorted(b, key=lambda c: c["column"]), strict=True))
    return {**out, "rows": verdicts["partitions"]["current"]["rows"], "max_psi_difference": psi_gap,
            "same_status": verdicts["partitions"]["status"] == verdicts["in_memory"]["status"],
            "same_drifted": verdicts["partitions"]["drift"]["drifted"] == verdicts["in_memory"]["drift"]["drifted"],
            "peak_memory_ratio": round(out["partitions"]["peak_mb"] / out["in_memory"]["peak_mb"], 3),
            "time_ratio": round(out["partitions"]["seconds"] / out["in_memory"]["seconds"], 3)}


def markdown(r: dict) -> str:
    b, m = r["median"]["baseline"], r["median"]["mlcycle"]
    t = r["targets"]
    sr = r["search"]
    head = [] if not sr else [
        "## Search on the local Dask cluster against the serial search", "",
        f"Random search, {sr['trials']} trials x 3 folds on {sr['rows']:,} training rows; medians of "
        f"{len(sr['runs']['serial'])} alternating runs.", "",
        "| engine | seconds |", "|---|---|",
        f"| serial (one process, OpenMP on every core) | {sr['median_seconds']['serial']:.1f} |",
        f"| dask (local cluster, one worker per core) | {sr['median_seconds']['dask']:.1f} |", "",
        f"Speed-up **{sr['speedup']}x** (aim at least {TARGETS['search_speedup']}x: "
        f"{'met' if t['search_met'] else 'not met'}); the same values chosen: {sr['same_choice']}.", ""]
    mo = r.get("monitor")
    tail = [] if not mo else [
        "", "## Monitoring the scored rows: partition by partition against in memory", "",
        f"`mlcycle monitoring run --input` on the {mo['rows']:,} rows `mlcycle serving score` wrote; one run each.", "",
        "| reading | seconds | peak memory MB |", "|---|---|---|",
        f"| partition by partition (local cluster) | {mo['partitions']['seconds']:.1f} | {mo['partitions']['peak_mb']:,.0f} |",
        f"| in memory | {mo['in_memory']['seconds']:.1f} | {mo['in_memory']['peak_mb']:,.0f} |", "",
        f"Peak memory ratio **{mo['peak_memory_ratio']}x**, time ratio {mo['time_ratio']}x; the same verdict: "
        f"{mo['same_status'] and mo['same_drifted']} (largest PSI difference {mo['max_psi_difference']:.2g})."]
    return "\n".join([*head,
        "## Batch scoring: `mlcycle serving score` against one pandas process", "",
        f"{r['rows']:,} rows ({r['scale']}x the workspace's processed rows) in {r['scale']} Parquet files, the champion "
        f"`{r['model']}`; medians of {len(r['runs']['baseline'])} alternating runs; peak = summed RSS of the process tree.", "",
        "| | seconds | rows/s | peak memory MB |", "|---|---|---|---|",
        f"| one pandas process, whole frame | {b['seconds']:.1f} | {b['rows_per_s']:,.0f} | {b['peak_mb']:,.0f} |",
        f"| `mlcycle serving score` (local cluster) | {m['seconds']:.1f} | {m['rows_per_s']:,.0f} | {m['peak_mb']:,.0f} |",
        f"| `mlcycle serving score` at {r['memory_scale']}x ({r['memory_scale_rows']:,} rows) | {r['memory_scale_run']['seconds']:.1f} | "
        f"{r['memory_scale_rows'] / r['memory_scale_run']['seconds']:,.0f} | {r['memory_scale_run']['peak_mb']:,.0f} |", "",
        f"Throughput ratio **{r['throughput_ratio']}x** (aim at least {TARGETS['throughput_ratio']}x: "
        f"{'met' if t['throughput_met'] else 'not met'}); peak memory ratio **{r['peak_memory_ratio']}x** (aim at most "
        f"{TARGETS['peak_memory_ratio']}x: {'met' if t['memory_met'] else 'not met'}); peak memory at {r['memory_scale']}x "
        f"against {r['scale']}x: **{100 * r['memory_growth']:+.1f}%** (aim within {100 * TARGETS['memory_growth']:.0f}%: "
        f"{'met' if t['growth_met'] else 'not met'}).", *tail])


if __name__ == "__main__":
    raise SystemExit(main())
