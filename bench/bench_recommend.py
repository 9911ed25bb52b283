"""The MovieLens recommender (docs/recommender.md), in one process:

1. quality on the example's held-out ratings: NDCG@10, Recall@10 of popularity, CF alone, content
   alone and the hybrid, with 95% intervals over users, and catalogue coverage;
2. catalogue coverage against accuracy: the hybrid with the popularity penalty chosen on the
   validation period (`recommend.coverage_tolerance` 0.1 and 0.3; the example has none). Target:
   coverage at least 0.2;
3. time to train and to recommend top-10 for every user: mlcycle's train step (fit on train, hybrid
   weight chosen on valid, refit on train + valid, warm-started with the example's
   `recommend.refit_iterations`) plus the hybrid's lists, against `implicit`'s ALS called directly in
   a bare script (fit on train + valid, `recommend` for every user), alternating, `BENCH_REPEATS`
   times (default 3). Target: at most 1.3 x. Beside it, the same work on both sides: mlcycle's
   collaborative-filtering component alone (`recommenders.fit` on train + valid, its top-10 lists
   for every user, seen items excluded) against the same bare script: what the workspace's own code
   costs around the library.
4. `POST /recommend` served by `mlcycle serving start` (the hybrid saved as the train stage saves it, the
   prediction log on, Prometheus metrics on), on 1 and 2 workers: p50 and p99 latency of a top-10
   for one known user with one client, and throughput with `--clients` clients sending back to
   back (the load generator of bench_serve.py in a process of its own), medians over `--rounds`.

python bench/bench_recommend.py                # writes reports/benchmarks/recommend.json
python bench/bench_recommend.py --serve-only   # only part 4 (trains once, no timing of training)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from common import ROOT, repeats, save

sys.path.insert(0, str(ROOT / "examples" / "movielens"))

import movielens  # noqa: E402

from mlcycle.cli import workspace  # noqa: E402
from mlcycle.core import config, tables  # noqa: E402
from mlcycle.tasks.recommender import ranking, recommenders  # noqa: E402
from mlcycle.tasks.recommender import stages as recommend  # noqa: E402


def bare(train_valid: pd.DataFrame, rec) -> float:
    """implicit's ALS straight on the interactions: matrix, fit, top-10 for every user."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    users, u = np.unique(train_valid["user"].to_numpy(), return_inverse=True)
    items, i = np.unique(train_valid["item"].to_numpy(), return_inverse=True)
    m = sp.csr_matrix((np.ones(len(u), dtype="float32"), (u, i)), shape=(len(users), len(items)))
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=rec.factors, regularization=rec.regularization,
                                        iterations=rec.iterations, alpha=rec.alpha, random_state=rec.seed)
        model.fit(m, show_progress=False)
    model.recommend(np.arange(len(users)), m, N=10, filter_already_liked_items=True)
    return time.perf_counter() - t0


def ours(parts: dict, items: pd.DataFrame, cfg) -> float:
    t0 = time.perf_counter()
    trained = recommend.train(parts, items, cfg)
    trained.models.recommend("hybrid", list(trained.models.index.users), 10)
    return time.perf_counter() - t0


def ours_cf(train_valid: pd.DataFrame, rec) -> float:
    """The CF component as mlcycle fits and ranks it, on what the bare script gets (no content)."""
    t0 = time.perf_counter()
    models = recommenders.fit(train_valid, rec.model_copy(update={"content_columns": []}))
    models.recommend("cf", list(models.index.users), 10)
    return time.perf_counter() - t0


def serving(trained, cfg, workers: tuple[int, ...] = (1, 2), clients: int = 4, seconds: float = 8.0,
            rounds: int = 3) -> list[dict]:
    """p50 / p99 of POST /recommend (top-10 for one known user) and throughput, per worker count."""
    from common import load, serve, stop

    user = str(trained.models.index.users[len(trained.models.index.users) // 2])
    runs: dict[tuple[int, int], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-recommend-") as t:
        tmp = Path(t)
        recommend.save(trained, cfg, tmp / "model", tmp / "baseline")
        body = tmp / "body.json"
        body.write_text(json.dumps({"user": user, "k": 10}))
        for r in range(rounds):
            for w in workers:
                log_dir = tmp / f"predictions-{r}-{w}"
                proc, url = serve(tmp, w, log_dir, ["--model", str(tmp / "model")])
                try:
                    for c in (1, clients):
                        res = load(f"{url}/recommend", body, c, seconds)
                        runs.setdefault((w, c), []).append(res)
                        print(f"round {r + 1} /recommend {w} worker(s) {c} client(s): {res['rps']:.0f} req/s, "
                              f"p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, errors {res['errors']}", flush=True)
                finally:
                    stop(proc)
                logged = sum(len(pd.read_parquet(p)) for p in log_dir.glob("part-*.parquet"))
                print(f"  prediction log: {logged:,} rows written", flush=True)
    return [{"workers": w, "clients": c, "requests_per_s": statistics.median(x["rps"] for x in v),
             "p50_ms": statistics.median(x["p50_ms"] for x in v), "p99_ms": statistics.median(x["p99_ms"] for x in v),
             "errors": sum(x["errors"] for x in v), "requests": sum(x["requests"] for x in v)}
            for (w, c), v in sorted(runs.items())]


def serving_markdown(rows: list[dict], cores: int | None) -> str:
    lines = [f"`POST /recommend`, top-10 for one known user, prediction log on ({cores} cores; medians over rounds):", "",
             "| workers | clients | requests/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['workers']} | {r['clients']} | {r['requests_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{r['errors']} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve-only", action="store_true", help="only the /recommend latency and throughput")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    cfg = config.parse(workspace.example_params(ROOT, "movielens"))
    df = tables.parse_time(movielens.ingest({})["ratings"], "timestamp", None, "s")
    parts, items = recommend.features(cfg, ROOT, df)
    trained = recommend.train(parts, items, cfg)
    served = serving(trained, cfg, clients=args.clients, seconds=args.seconds, rounds=args.rounds)
    serve_md = serving_markdown(served, os.cpu_count())
    print(serve_md)
    if args.serve_only:
        print(save("recommend_serve", {"markdown": "## recommend: /recommend served\n\n" + serve_md, "results": served}))
        return
    ev = recommend.evaluate(trained.models, parts["test"], cfg)
    table = ranking.comparison(ev["results"], ev["intervals"], cfg.recommend.k)
    print(f"weight of CF: {trained.weight:g}; users judged: {len(ev['relevant'])}")
    print(table.to_string(index=False))
    coverage_rows = []
    for tolerance in (0.1, 0.3):
        cfg_t = cfg.model_copy(update={"recommend": cfg.recommend.model_copy(update={"coverage_tolerance": tolerance})})
        tr = recommend.train(parts, items, cfg_t)
        h = recommend.evaluate(tr.models, parts["test"], cfg_t)["results"]["hybrid"]
        coverage_rows.append({"coverage_tolerance": tolerance, "penalty": tr.penalty, "ndcg_at_k": round(h["ndcg_at_k"], 4),
                              "recall_at_k": round(h["recall_at_k"], 4), "coverage": round(h["coverage"], 3)})
    h = ev["results"]["hybrid"]
    coverage_rows.insert(0, {"coverage_tolerance": None, "penalty": 0.0, "ndcg_at_k": round(h["ndcg_at_k"], 4),
                             "recall_at_k": round(h["recall_at_k"], 4), "coverage": round(h["coverage"], 3)})
    penalties = pd.DataFrame(coverage_rows)
    print(penalties.to_string(index=False))
    train_valid = pd.concat([parts["train"], parts["valid"]], ignore_index=True)
    times = {"ours": [], "bare": [], "ours_cf": []}
    for _ in range(repeats(3)):
        times["bare"].append(bare(train_valid, cfg.recommend))
        times["ours"].append(ours(parts, items, cfg))
        times["ours_cf"].append(ours_cf(train_valid, cfg.recommend))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio, ratio_cf = med["ours"] / med["bare"], med["ours_cf"] / med["bare"]
    print(f"train + top-10 for every user: ours {med['ours']:.2f} s, implicit alone {med['bare']:.2f} s: {ratio:.2f} x; "
          f"the CF component alone through mlcycle {med['ours_cf']:.2f} s: {ratio_cf:.2f} x")
    res = ev["results"]
    lift = res["hybrid"]["recall_at_k"] / res["popularity"]["recall_at_k"] - 1
    md = "\n".join(["## recommend (MovieLens)", "",
                    f"Hybrid weight of CF {trained.weight:g}; {len(ev['relevant'])} users judged; Recall@10 lift over "
                    f"popularity {lift:+.0%}.", "",
                    "| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns),
                    *["| " + " | ".join(map(str, r)) + " |" for r in table.itertuples(index=False)], "",
                    "The hybrid with a popularity penalty chosen on the validation period (target: coverage at least 0.2):",
                    "", "| " + " | ".join(penalties.columns) + " |", "|" + "---|" * len(penalties.columns),
                    *["| " + " | ".join(map(str, r)) + " |" for r in penalties.itertuples(index=False)], "",
                    f"Train + top-10 for every user: ours {med['ours']:.2f} s, `implicit` called directly "
                    f"{med['bare']:.2f} s: {ratio:.2f} x (target at most 1.3 x). The same work on both sides, the "
                    f"CF component alone fitted and ranked by mlcycle: {med['ours_cf']:.2f} s, {ratio_cf:.2f} x.", "",
                    serve_md])
    print(save("recommend", {"markdown": md, "results": res, "weight": trained.weight, "seconds": times,
                             "ratio": ratio, "ratio_cf": ratio_cf, "penalties": coverage_rows, "serve": served}))


if __name__ == "__main__":
    main()
