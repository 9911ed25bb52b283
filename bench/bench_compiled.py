"""Benchmark: the compiled scoring path (Treelite trees + array preprocessing) against the
scikit-learn pipeline, on the same fitted model, one process, one thread.

1. Scoring alone (in this process): a flights-shaped table (numbers with gaps, categories with
   gaps, a boolean, a time column read into calendar parts), the default `train` hyperparameters
   with every boosting iteration kept (`max_iter` trees, 400 by default). Single-row latency
   p50/p99 (`--calls` calls per path, alternating), and rows per second on batches of 100 and
   10,000 rows (medians of `--repeats`). The time the train stage adds (export + the equivalence
   check on the validation and holdout rows) is shown next to the time of the fit.
2. Through `mlcycle serve` (`--http`, default on): a workspace copy gets these tables, the real
   `train` stage registers the model (with its compiled form) and `mlcycle promote` makes it the
   champion; then one worker serves it with `--compiled` and with `--no-compiled`, one server at a
   time, and the load generator of bench_serve.py sends single-row requests (1 client: latency
   alone) and 100-row requests for `--seconds` each, in `--rounds` rounds (medians shown).

Results go to stdout and reports/benchmarks/compiled.json (`python bench/report.py` collects them).

    python bench/bench_compiled.py [--rows 60000] [--calls 2000] [--repeats 5] [--no-http] [--seconds 6] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one worker, one thread: both paths alike

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TARGETS = {"single_row_p99_ms": 5.0, "batch_throughput_ratio": 2.0}


def raw_table(n: int, seed: int = 0) -> pd.DataFrame:
    """Flights-shaped rows: a departure hour, distance and temperature (with gaps), carrier, origin
    and plane type (with gaps), a boolean, an hourly time column; the label is noisy."""
    rng = np.random.default_rng(seed)
    t = pd.Timestamp("2013-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 365 * 24, n)), unit="h")
    df = pd.DataFrame({
        "sched_dep_time": rng.integers(500, 2300, n).astype(float),
        "distance": rng.uniform(100, 2500, n).round(),
        "temp": np.where(rng.random(n) < 0.05, np.nan, rng.normal(55, 15, n).round(1)),
        "carrier": pd.array(rng.choice(["UA", "AA", "DL", "B6", "EV", "MQ", "US", "WN", "9E", "VX"], n), dtype="str"),
        "origin": pd.array(rng.choice(["EWR", "JFK", "LGA"], n), dtype="str"),
        "plane_type": pd.array(np.where(rng.random(n) < 0.1, None,
                                        rng.choice(["Fixed wing multi engine", "Fixed wing single engine", "Rotorcraft"], n)),
                               dtype="str"),
        "wet": rng.random(n) < 0.2,
        "time_hour": t,
    })
    logit = ((df["sched_dep_time"] - 1400) / 400 + 0.8 * (df["carrier"] == "EV") - df["temp"].fillna(55) / 60
             + 0.5 * df["wet"] + 0.4 * np.sin(np.asarray(t.month) / 2) + 0.3 * (df["origin"] == "EWR"))
    df["arr_delay"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), 30.0, 0.0) + rng.normal(0, 5, n)
    return df


def prepared(n: int):
    from mlcycle.core import config
    from mlcycle.stages import features

    dp = config.DataParams(path="flights.csv", target="arr_delay", task="classification", threshold=15,
                           time_column="time_hour")
    table, spec, _ = features.build(raw_table(n), dp, config.FeaturesParams())
    parts = features.split(table, spec, config.SplitParams())
    return table, spec, parts


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))]


def scoring_bench(args) -> dict:
    from mlcycle.core import compiled, config, scoring
    from mlcycle.stages import features, train

    _, spec, parts = prepared(args.rows)
    xy = {k: (v[spec.inputs], train.encode_label(v[features.LABEL], spec)) for k, v in parts.items()}
    params = config.TrainParams()
    pipe = train.build_pipeline(spec, params)
    t = time.perf_counter()
    pipe.fit(*xy["train"])
    fit_s = time.perf_counter() - t
    trees = int(pipe.named_steps["model"].n_iter_)
    with tempfile.TemporaryDirectory(prefix="mlcycle-bench-compiled-") as tmp:
        t = time.perf_counter()
        verdict = compiled.build(pipe, Path(tmp), [xy["valid"][0], xy["test"][0]], spec.task, 0.5)
        build_s = time.perf_counter() - t
        fast, _ = compiled.load(Path(tmp), pipeline=pipe)  # as the server loads it
        trees_only, _ = compiled.load(Path(tmp))  # Treelite for every batch size, for comparison
    if fast is None:
        raise SystemExit(f"the compiled form did not agree: {verdict.reason}")
    paths = {"sklearn": pipe, "compiled": fast}
    X = xy["test"][0].reset_index(drop=True)
    rows = [X.iloc[[i % len(X)]] for i in range(args.calls)]  # single-row frames, as a request becomes
    for m in paths.values():  # warm-up
        for r in rows[:50]:
            scoring.scores(m, r, spec.task)
    lat = {k: [] for k in paths}
    for r in rows:  # alternating, so both see the same machine
        for k, m in paths.items():
            t = time.perf_counter()
            scoring.scores(m, r, spec.task)
            lat[k].append((time.perf_counter() - t) * 1000)
    batches = {}
    for size in (100, 10_000):
        B = pd.concat([X] * (size // len(X) + 1), ignore_index=True).head(size)
        per = {k: [] for k in [*paths, "treelite_only"]}
        for _ in range(args.repeats):
            for k, m in [*paths.items(), ("treelite_only", trees_only)]:
                t = time.perf_counter()
                scoring.scores(m, B, spec.task)
                per[k].append(size / (time.perf_counter() - t))
        batches[size] = {k: round(statistics.median(v)) for k, v in per.items()}
        batches[size]["ratio"] = round(batches[size]["compiled"] / batches[size]["sklearn"], 2)
        batches[size]["treelite_only_ratio"] = round(batches[size]["treelite_only"] / batches[size]["sklearn"], 2)
    single = {k: {"p50_ms": round(pct(v, 0.5), 3), "p99_ms": round(pct(v, 0.99), 3),
                  "rows_per_s": round(1000 / statistics.mean(v))} for k, v in lat.items()}
    return {"rows": args.rows, "trees": trees, "fit_seconds": round(fit_s, 2),
            "export_check_seconds": round(build_s, 2), "export_seconds": round(verdict.export_seconds, 3),
            "check_seconds": round(verdict.check_seconds, 3), "rows_checked": verdict.rows,
            "max_abs_diff": verdict.max_abs_diff, "single_row": single, "pipeline_from": compiled.PIPELINE_FROM,
            "single_row_ratio_p50": round(single["sklearn"]["p50_ms"] / single["compiled"]["p50_ms"], 1),
            "batches": {str(k): v for k, v in batches.items()}}


def http_bench(args, tmp: Path) -> dict:
    """The real train stage in a workspace copy, then one `mlcycle serve` worker per path."""
    from bench_serve import stop, wait_for
    from common import env, workspace

    from mlcycle.core.paths import Paths
    from mlcycle.lifecycle.experiments import free_port
    from mlcycle.stages import features

    ws = workspace(tmp / "ws", {"train": {"baseline_columns": ["sched_dep_time", "carrier"]}})
    table, spec, parts = prepared(args.rows)
    features.write(parts, spec, Paths(ws))
    e = env(OMP_NUM_THREADS="1")
    t = time.perf_counter()
    for cmd in (["mlcycle", "run", "train"], ["mlcycle", "promote", "1", "--reason", "compiled benchmark"]):
        r = subprocess.run([sys.executable, "-m", *cmd], cwd=ws, env=e, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    stage_s = time.perf_counter() - t
    train_metrics = json.loads((ws / "reports" / "metrics" / "train.json").read_text())
    X = parts["test"][spec.inputs].head(100)
    cols = list(X.columns)
    data = json.loads(X.to_json(orient="values", date_format="iso"))
    bodies = {}
    for n in (1, 100):
        p = tmp / f"body-{n}.json"
        p.write_text(json.dumps({"dataframe_split": {"columns": cols, "data": data[:n]}}))
        bodies[n] = p
    results = []
    for rnd in range(args.rounds):
        for path in ("compiled", "sklearn"):
            port = free_port()
            out = tmp / f"{path}-{port}.out"
            flag = "--compiled" if path == "compiled" else "--no-compiled"
            with out.open("wb") as f:
                proc = subprocess.Popen([sys.executable, "-m", "mlcycle", "serve", "--port", str(port), "--workers", "1",
                                         "--log-dir", str(tmp / "predictions"), flag], cwd=ws, env=e, stdout=f,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            try:
                wait_for(f"http://127.0.0.1:{port}/ready", proc, out)
                import httpx

                said = httpx.get(f"http://127.0.0.1:{port}/model").json()["scoring_path"]
                for n, body in bodies.items():
                    r = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_serve.py"), "load", "--url",
                                        f"http://127.0.0.1:{port}/predict", "--body", str(body), "--clients", "1",
                                        "--seconds", str(args.seconds)], env=e, capture_output=True, text=True, check=True)
                    m = json.loads(r.stdout.strip().splitlines()[-1])
                    results.append({"round": rnd, "path": path, "served_by": said, "rows_per_request": n,
                                    "requests_per_s": m["rps"], "rows_per_s": m["rps"] * n, "p50_ms": m["p50_ms"],
                                    "p99_ms": m["p99_ms"], "errors": m["errors"]})
            finally:
                stop(proc)
    med = []
    for path in ("compiled", "sklearn"):
        for n in bodies:
            xs = [x for x in results if x["path"] == path and x["rows_per_request"] == n]
            med.append({"path": path, "served_by": xs[0]["served_by"], "rows_per_request": n,
                        **{k: round(statistics.median(x[k] for x in xs), 2)
                           for k in ("requests_per_s", "rows_per_s", "p50_ms", "p99_ms")},
                        "errors": sum(x["errors"] for x in xs)})
    return {"train_stage_seconds": round(stage_s, 1), "train_metrics_compiled": train_metrics.get("compiled"),
            "best_iter": train_metrics.get("best_iter"), "seconds": args.seconds, "rounds": args.rounds,
            "results": med}


def markdown(r: dict) -> str:
    s = r["scoring"]
    out = ["## Compiled scoring path against the scikit-learn pipeline", "",
           f"One process, OMP_NUM_THREADS={r['omp_num_threads']}; a flights-shaped table of {s['rows']:,} rows, "
           f"{s['trees']} trees. Scoring through `core.scoring` (what serving and monitoring call).", "",
           "| path | 1-row p50 ms | 1-row p99 ms | 1-row calls/s | rows/s (100-row batch) | rows/s (10,000-row batch) |",
           "|---|---|---|---|---|---|"]
    for k in ("sklearn", "compiled"):
        out.append(f"| {k} | {s['single_row'][k]['p50_ms']} | {s['single_row'][k]['p99_ms']} | "
                   f"{s['single_row'][k]['rows_per_s']} | {s['batches']['100'][k]:,} | {s['batches']['10000'][k]:,} |")
    out += ["", f"- single row: p50 **{s['single_row_ratio_p50']}x** faster; batch throughput ratio compiled / sklearn: "
            f"100 rows **{s['batches']['100']['ratio']}x**, 10,000 rows **{s['batches']['10000']['ratio']}x** "
            f"(batches of {s['pipeline_from']} rows or more go to the pipeline; Treelite alone: "
            f"{s['batches']['100']['treelite_only_ratio']}x and {s['batches']['10000']['treelite_only_ratio']}x)",
            f"- added to `train`: export + check {s['export_check_seconds']} s (export {s['export_seconds']} s, "
            f"check on {s['rows_checked']:,} rows {s['check_seconds']} s) next to a fit of {s['fit_seconds']} s; "
            f"max |diff| {s['max_abs_diff']:.2g}"]
    h = r.get("http")
    if h:
        out += ["", f"Through `mlcycle serve`, 1 worker, 1 client, {h['seconds']:.0f} s per case, medians of {h['rounds']} "
                f"round(s); the model the real train stage registered (best_iter {h['best_iter']}).", "",
                "| path (/model says) | rows per request | requests/s | rows/s | p50 ms | p99 ms | errors |",
                "|---|---|---|---|---|---|---|"]
        for x in h["results"]:
            out.append(f"| {x['path']} ({x['served_by']}) | {x['rows_per_request']} | {x['requests_per_s']:.0f} | "
                       f"{x['rows_per_s']:.0f} | {x['p50_ms']:.2f} | {x['p99_ms']:.2f} | {x['errors']} |")
    t = r["targets"]
    out += ["", f"Targets: single-row p99 within {TARGETS['single_row_p99_ms']} ms ({t['single_row_p99_where']}): "
            f"**{'met' if t['single_row_p99_met'] else 'not met'}** ({t['single_row_p99_ms']} ms); batch throughput at "
            f"least {TARGETS['batch_throughput_ratio']}x at 100 and 10,000 rows: **{'met' if t['batch_met'] else 'not met'}**."]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=60_000)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--http", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    from common import save

    result = {"omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "scoring": scoring_bench(args)}
    if args.http:
        with tempfile.TemporaryDirectory(prefix="mlcycle-bench-compiled-") as tmp:
            result["http"] = http_bench(args, Path(tmp))
    s = result["scoring"]
    if result.get("http"):
        p99 = next(x["p99_ms"] for x in result["http"]["results"] if x["path"] == "compiled" and x["rows_per_request"] == 1)
        where = "end to end through the server"
    else:
        p99, where = s["single_row"]["compiled"]["p99_ms"], "scoring alone"
    result["targets"] = {"single_row_p99_ms": p99, "single_row_p99_where": where,
                         "single_row_p99_met": p99 <= TARGETS["single_row_p99_ms"],
                         "batch_met": min(s["batches"]["100"]["ratio"], s["batches"]["10000"]["ratio"])
                         >= TARGETS["batch_throughput_ratio"]}
    result["markdown"] = markdown(result)
    print(result["markdown"])
    print(save("compiled", result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
