"""Benchmark: the compiled scoring path (Treelite trees + array preprocessing) against the
scikit-learn pipeline, on the workspace's champion (the model `make repro` registered, with the
compiled form its train stage proved equal), one process, one thread.

- Single-row latency p50/p99 (`--calls` calls per variant, alternating): the pipeline on a
  one-row frame; the compiled form on the same frame; the compiled form on the row as a server
  gets it (a JSON record, `Compiled.prepare`: no DataFrame), which is what `mlcycle serving start` does.
- Rows per second on batches of 100 and 10,000 holdout rows (medians of `--repeats`): the
  pipeline, the compiled form as served (batches of PIPELINE_FROM rows or more go to the pipeline)
  and Treelite alone on every batch.
- What the compiled form adds to `train`: export + the equivalence check on the validation and
  holdout rows, as the champion's train stage timed them (its `mlcycle.compiled.seconds` tag), next to the duration
  of that stage's run in MLflow.

Through the server (1 and 4 clients, against `--no-compiled` and `mlflow models serve`):
bench_serve.py. Results go to stdout and reports/benchmarks/compiled.json.

    python bench/bench_compiled.py [--calls 2000] [--repeats 5]

Needs a champion in the workspace's registry (`make repro`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one worker, one thread: both paths alike

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402

TARGETS = {"single_row_p99_ms": 5.0, "batch_throughput_ratio": 2.0, "train_share": 0.10}


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))]


def champion(tmp: Path) -> tuple[Path, dict]:
    """The champion's MLflow model folder (downloaded) and facts about it."""
    import mlflow

    from mlcycle.core import config
    from mlcycle.core.scoring import quiet_mlflow
    from mlcycle.runtime import tracking

    params = config.load(ROOT / "params.yaml", root=ROOT)
    uri = tracking.tracking_uri(ROOT, params)
    client = mlflow.MlflowClient(uri, uri)
    name = params.tracking.model_name
    mv = client.get_model_version_by_alias(name, "champion")
    run = client.get_run(mv.run_id)
    with quiet_mlflow():
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{mv.version}", dst_path=str(tmp)))
    return local, {"model": f"models:/{name}/{mv.version}", "train_run": run.info.run_name,
                   "train_stage_seconds": round((run.info.end_time - run.info.start_time) / 1000, 2),
                   "scoring_path_tag": (mv.tags or {}).get("mlcycle.scoring_path"),
                   "compiled_seconds": compiled_seconds(mv.tags or {})}


def compiled_seconds(tags: dict) -> tuple[float, float]:
    """(export, check) seconds as the train stage timed them (the version's tag)."""
    from mlcycle.tasks.tabular import compiled

    found = compiled.seconds_from_tags(tags)
    if found is None:
        raise SystemExit("the champion has no mlcycle.compiled.seconds tag: train it again (make repro)")
    return found


def scoring_bench(args) -> dict:
    import mlflow.sklearn

    from mlcycle.core import scoring
    from mlcycle.core.paths import Paths
    from mlcycle.core.spec import FeatureSpec
    from mlcycle.tasks.tabular import compiled

    paths = Paths.at(ROOT)
    spec = FeatureSpec.from_json(paths.feature_spec)
    with tempfile.TemporaryDirectory(prefix="mlcycle-bench-compiled-") as tmp:
        local, facts = champion(Path(tmp))
        pipe = mlflow.sklearn.load_model(str(local))
        fast, verdict = compiled.load(local, pipeline=pipe)  # as the server loads it
        trees_only, _ = compiled.load(local)  # Treelite for every batch size, for comparison
        if fast is None:
            raise SystemExit(f"the champion has no compiled form that agreed: {verdict.reason}")
        X = pd.read_parquet(paths.split_file("test"))[spec.inputs].reset_index(drop=True)
    verdict.export_seconds, verdict.check_seconds = facts["compiled_seconds"]  # as the train stage timed them
    build_s = verdict.export_seconds + verdict.check_seconds
    task = spec.task
    frames = [X.iloc[[i % len(X)]] for i in range(args.calls)]  # single-row frames
    records = [compiled.request_rows(f) for f in frames]  # the same rows as a server gets them
    variants = {"sklearn": lambda i: scoring.scores(pipe, frames[i], task),
                "compiled_frame": lambda i: scoring.scores(fast, frames[i], task),
                "compiled_records": lambda i: scoring.scores(fast, fast.prepare(records[i]), task)}
    for f in variants.values():  # warm-up
        for i in range(50):
            f(i)
    lat = {k: [] for k in variants}
    for i in range(args.calls):  # alternating, so every variant sees the same machine
        for k, f in variants.items():
            t = time.perf_counter()
            f(i)
            lat[k].append((time.perf_counter() - t) * 1000)
    batches = {}
    for size in (100, 10_000):
        B = pd.concat([X] * (size // len(X) + 1), ignore_index=True).head(size)
        per = {k: [] for k in ("sklearn", "compiled", "treelite_only")}
        for _ in range(args.repeats):
            for k, m in (("sklearn", pipe), ("compiled", fast), ("treelite_only", trees_only)):
                t = time.perf_counter()
                scoring.scores(m, B, task)
                per[k].append(size / (time.perf_counter() - t))
        batches[size] = {k: round(statistics.median(v)) for k, v in per.items()}
        batches[size]["ratio"] = round(batches[size]["compiled"] / batches[size]["sklearn"], 2)
        batches[size]["treelite_only_ratio"] = round(batches[size]["treelite_only"] / batches[size]["sklearn"], 2)
    single = {k: {"p50_ms": round(pct(v, 0.5), 3), "p99_ms": round(pct(v, 0.99), 3),
                  "rows_per_s": round(1000 / statistics.mean(v))} for k, v in lat.items()}
    return {**facts, "rows_holdout": len(X), "trees": int(pipe.named_steps["model"].n_iter_),
            "export_check_seconds": round(build_s, 2), "export_seconds": round(verdict.export_seconds, 3),
            "check_seconds": round(verdict.check_seconds, 3), "rows_checked": verdict.rows,
            "request_rows_checked": verdict.request_rows, "max_abs_diff": verdict.max_abs_diff,
            "train_share": round(build_s / facts["train_stage_seconds"], 3), "single_row": single,
            "pipeline_from": compiled.PIPELINE_FROM,
            "single_row_ratio_p50": round(single["sklearn"]["p50_ms"] / single["compiled_records"]["p50_ms"], 1),
            "batches": {str(k): v for k, v in batches.items()}}


def markdown(r: dict) -> str:
    s = r["scoring"]
    out = ["## Compiled scoring path against the scikit-learn pipeline", "",
           f"One process, OMP_NUM_THREADS={r['omp_num_threads']}; the champion `{s['model']}` ({s['trees']} trees), "
           f"holdout rows of this workspace. Scoring through `core.scoring` (what serving and monitoring call).", "",
           "| path | 1-row p50 ms | 1-row p99 ms | 1-row calls/s |", "|---|---|---|---|"]
    for k in ("sklearn", "compiled_frame", "compiled_records"):
        x = s["single_row"][k]
        out.append(f"| {k} | {x['p50_ms']} | {x['p99_ms']} | {x['rows_per_s']} |")
    out += ["", "| rows per batch | sklearn rows/s | compiled rows/s (as served) | Treelite alone rows/s | ratio | "
            "Treelite alone ratio |", "|---|---|---|---|---|---|"]
    for n, b in s["batches"].items():
        out.append(f"| {int(n):,} | {b['sklearn']:,} | {b['compiled']:,} | {b['treelite_only']:,} | **{b['ratio']}x** | "
                   f"{b['treelite_only_ratio']}x |")
    out += ["", f"- single row: p50 **{s['single_row_ratio_p50']}x** faster from request records "
            f"(batches of {s['pipeline_from']} rows or more go to the pipeline)",
            f"- added to `train` (as the stage timed it): export + check {s['export_check_seconds']} s (export {s['export_seconds']} s, check on "
            f"{s['rows_checked']:,} rows, {s['request_rows_checked']:,} of them also as request records, "
            f"{s['check_seconds']} s) against the champion's train stage run of {s['train_stage_seconds']} s: "
            f"**{100 * s['train_share']:.1f}%**; max |diff| {s['max_abs_diff']:.2g}"]
    t = r["targets"]
    out += ["", f"Targets: batch throughput at least {TARGETS['batch_throughput_ratio']}x at 100 and 10,000 rows: "
            f"**{'met' if t['batch_met'] else 'not met'}**; export + check under {100 * TARGETS['train_share']:.0f}% "
            f"of the train stage: **{'met' if t['train_share_met'] else 'not met'}**. Single-row p99 through the "
            "server: bench_serve.py."]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from common import save

    result = {"omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "scoring": scoring_bench(args)}
    s = result["scoring"]
    result["targets"] = {"batch_met": min(s["batches"]["100"]["ratio"], s["batches"]["10000"]["ratio"])
                         >= TARGETS["batch_throughput_ratio"],
                         "train_share_met": s["train_share"] < TARGETS["train_share"]}
    result["markdown"] = markdown(result)
    print(result["markdown"])
    print(save("compiled", result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
