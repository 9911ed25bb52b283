"""Benchmark: one model per segment (`train.segment_by`) against the global model alone.

On the workspace's processed flights rows (`make repro` first), with the params' hyperparameters:
1. the global model, `train.fit` in this process (as the train notebook fits it: OpenMP threads on
   every core);
2. the segment models of each `--segment-by` column, `stages.segments.fit` on the embedded local
   Dask cluster (params `compute`: one worker per core, one thread each), run after the global
   model they fall back to.
Time: the segments' wall time against the global model's. Quality: holdout metrics of the routed
model against the global model alone, overall and per segment (`segments.compare`), whichever
wins; segments that kept the global model (too few rows, or no better on their validation rows)
score the same on both sides.

    python bench/bench_segments.py [--segment-by origin] [--segment-by carrier]

Results go to stdout and reports/benchmarks/segments.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import save  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segment-by", action="append", help="a column to segment by (repeatable); default: origin")
    args = ap.parse_args()
    columns = args.segment_by or ["origin"]

    from mlcycle.core import config
    from mlcycle.core.paths import Paths
    from mlcycle.core.spec import FeatureSpec
    from mlcycle.tasks.tabular import evaluate, features, segments, train

    params = config.load(ROOT / "params.yaml", root=ROOT)
    paths = Paths(ROOT)
    spec = FeatureSpec.from_json(paths.feature_spec)
    tr, va, te = (features.read(paths, p, spec) for p in ("train", "valid", "test"))
    y_te = train.encode_label(te[1], spec)
    metric = evaluate.headline(spec)[0]
    t = time.perf_counter()
    base = train.fit(tr, va, spec, params.train)
    global_seconds = time.perf_counter() - t
    print(f"global model: {global_seconds:.1f} s", flush=True)
    runs = []
    for column in columns:
        p = params.train.model_copy(update={"segment_by": [column]})
        t = time.perf_counter()
        result = segments.fit(tr, va, spec, p, base, params.compute)
        seconds = time.perf_counter() - t
        table = segments.compare(result.model, te[0], y_te, spec, params.evaluate.calibration_bins,
                                 params.evaluate.min_group_size)
        runs.append({"by": column, "seconds": round(seconds, 1), "ratio_to_global": round(seconds / global_seconds, 2),
                     "segments": len(result.segments.items), "models": len(result.segments.routed),
                     "workers": result.segments.cluster.get("mlcycle.compute.workers"),
                     "train_table": result.segments.table().to_dict("records"),
                     "holdout": segments.comparison_metrics(table)})
        print(f"segments by {column}: {seconds:.1f} s, {len(result.segments.routed)} of "
              f"{len(result.segments.items)} with their own model", flush=True)
    result = {"rows": {"train": len(tr[0]), "valid": len(va[0]), "holdout": len(te[0])}, "metric": metric,
              "global_seconds": round(global_seconds, 1), "runs": runs}
    result["markdown"] = markdown(result)
    print(result["markdown"])
    print(save("segments", result))
    return 0


def markdown(r: dict) -> str:
    m = r["metric"]
    lines = ["## One model per segment against the global model", "",
             f"Flights: {r['rows']['train']:,} training, {r['rows']['valid']:,} validation, {r['rows']['holdout']:,} "
             f"holdout rows. The global model: {r['global_seconds']} s in one process.", ""]
    for run in r["runs"]:
        h = run["holdout"]
        total = h["(all rows)"]
        lines += [f"### By `{run['by']}`: {run['models']} of {run['segments']} segments with their own model, "
                  f"{run['seconds']} s on {run['workers']} workers ({run['ratio_to_global']}x the global model's time)", "",
                  f"| segment | holdout rows | scored by | {m} routed | {m} global | routed - global |", "|---|---|---|---|---|---|"]
        for key, v in h.items():
            a, b = v.get(f"{m}_routed"), v.get(f"{m}_global")
            diff = f"{a - b:+.4f}" if a == a and b == b else "n/a"
            lines.append(f"| {key} | {v['rows']:,} | {v['scored_by']} | {a:.4f} | {b:.4f} | {diff} |")
        from mlcycle.core.scoring import better

        winner = "the routed model" if better(m, total[f"{m}_routed"], total[f"{m}_global"]) else "the global model"
        lines += ["", f"Overall on the holdout: {winner} wins ({total[f'{m}_routed']:.4f} against "
                  f"{total[f'{m}_global']:.4f}).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
