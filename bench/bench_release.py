"""Benchmark: serving with a release on (canary, shadow) against the champion alone, and replayed
releases: how many labelled rows `mlcycle release` needs to decide correctly.

1. **Throughput and p99.** Three `mlcycle serving start` processes, one at a time, with `--workers`
   workers each: the champion alone (`off`), a canary at `--share` (the candidate answers that
   share of routing keys) and a shadow (the candidate scores every request after the answer).
   The candidate is a second registered version of the champion's own model folder, registered
   in a copy of the registry (the workspace's registry is not touched), so the two score at the
   same cost. The load is bench_serve.py's generator: 1-row requests from `--clients` clients,
   each request with its own routing key. Aims: canary at least 0.9x, shadow at least 0.7x the
   champion alone's throughput.
2. **Replayed releases.** The decision function of `mlcycle release` (`release.decide`) on
   replayed canary traffic with labels fed back in time order: a candidate worse by a given AUC
   gap, and one better by it, over seeds. For each, the labelled rows per version at the first
   check where the decision is the correct one (rollback, promotion), with release.* as in
   params.yaml (score drift left out: the labels decide).

    python bench/bench_release.py [--workers 2] [--clients 4] [--seconds 8] [--rounds 2] [--share 0.1]

Needs a champion in the workspace's registry (`make repro`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


def registry_copy(tmp: Path, params) -> tuple[str, str, str]:
    """A copy of the workspace's tracking database with a candidate version (the champion's model
    folder registered again) under the alias `challenger`; (uri, champion, candidate)."""
    import mlflow

    from mlcycle.runtime import tracking

    uri = tracking.tracking_uri(ROOT, params)
    if not uri.startswith("sqlite:///"):
        raise SystemExit(f"bench_release: needs the local SQLite store, not {uri}")
    db = tmp / "mlflow.db"
    shutil.copy2(uri.removeprefix("sqlite:///"), db)
    copy = f"sqlite:///{db}"
    c = mlflow.MlflowClient(copy, copy)
    name = params.tracking.model_name
    champ = c.get_model_version_by_alias(name, "champion")
    cand = c.create_model_version(name, source=champ.source, run_id=champ.run_id, tags=champ.tags)
    c.set_registered_model_alias(name, "challenger", cand.version)
    return copy, str(champ.version), str(cand.version)


def body(tmp: Path, uri: str, name: str) -> Path:
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    src = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}@champion/serving_input_example.json",
                                              dst_path=str(tmp))
    split = json.loads(Path(src).read_text())["dataframe_split"]
    p = tmp / "body-1.json"
    p.write_text(json.dumps({"dataframe_split": {"columns": split["columns"], "data": split["data"][:1]}}))
    return p


def throughput(args, params, tmp: Path) -> list[dict]:
    from common import load, serve, stop

    uri, champ, cand = registry_copy(tmp, params)
    b = body(tmp, uri, params.tracking.model_name)
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_TRACKING_URI"] = uri
    env.pop("MLCYCLE_SERVE_TOKEN", None)
    env.setdefault("OMP_NUM_THREADS", "1")
    modes = {"off": [], "canary": ["--release", "canary", "--release-share", str(args.share)],
             "shadow": ["--release", "shadow"]}
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for r in range(args.rounds):
        for mode, flags in modes.items():
            proc, url = serve(tmp, args.workers, tmp / "predictions", flags, env)
            try:
                res = load(f"{url}/predict", b, args.clients, args.seconds)
                runs[mode].append(res)
                print(f"round {r + 1} {mode:<7}: {res['rps']:.0f} req/s, p50 {res['p50_ms']:.1f} ms, "
                      f"p99 {res['p99_ms']:.1f} ms, errors {res['errors']}", flush=True)
            finally:
                stop(proc)
    out = []
    for mode, rs in runs.items():
        out.append({"mode": mode, "requests_per_s": statistics.median(x["rps"] for x in rs),
                    "p50_ms": statistics.median(x["p50_ms"] for x in rs),
                    "p99_ms": statistics.median(x["p99_ms"] for x in rs), "errors": sum(x["errors"] for x in rs)})
    base = out[0]["requests_per_s"]
    for x in out:
        x["ratio"] = x["requests_per_s"] / base
    return out, champ, cand


def replayed(params, gaps=(0.05, 0.10), seeds: int = 10, max_rows: int = 16000) -> list[dict]:
    """Labelled rows per version until the decision is the correct one, for worse and better candidates."""
    import numpy as np
    import pandas as pd
    from scipy.stats import norm

    from mlcycle.monitoring import release

    meta = {"task": "classification", "classes": [0, 1], "positive_class": 1}
    pol = params.release.model_copy(update={"max_score_psi": 1e9})  # the labels decide here
    out = []
    for gap in gaps:
        for kind in ("worse", "better"):
            base = 0.72  # the champion's AUC, about the flights model's
            other = base - gap if kind == "worse" else base + gap
            rows_needed = []
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                n = max_rows

                y0, y1 = rng.random(n) < 0.2, rng.random(n) < 0.2
                # binormal scores: AUC = Phi(d / sqrt(2)) for a shift d of the positives
                s0 = rng.normal(0, 1, n) + np.sqrt(2) * norm.ppf(base) * y0
                s1 = rng.normal(0, 1, n) + np.sqrt(2) * norm.ppf(other) * y1
                ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="s")
                frame = pd.concat([
                    pd.DataFrame({"request_id": [f"a{i}" for i in range(n)], "row": 0, "model_version": "1",
                                  "route": "champion", "score": s0, "prediction": (s0 > 0).astype(int), "ts": ts,
                                  "label": y0.astype(int)}),
                    pd.DataFrame({"request_id": [f"b{i}" for i in range(n)], "row": 0, "model_version": "2",
                                  "route": "canary", "score": s1, "prediction": (s1 > 0).astype(int), "ts": ts,
                                  "label": y1.astype(int)})], ignore_index=True)
                want = "rollback" if kind == "worse" else "promote"
                found = None
                # the decision can change only at a milestone (min_labelled_rows x 2^j labelled rows
                # per version; release.compare), so checking there is checking after every row
                for k in (pol.min_labelled_rows * 2 ** j for j in range(release.MAX_MILESTONES)):
                    if k > n:
                        break
                    part = frame[frame["ts"] < ts[0] + pd.Timedelta(seconds=k)]
                    d = release.decide(release.Evidence(part, None, "1", "2", meta), pol)["decision"]
                    if d != "wait":
                        found = k if d == want else -k
                        break
                rows_needed.append(found)
            ok = [r for r in rows_needed if r is not None and r > 0]
            out.append({"candidate": kind, "auc_gap": gap, "seeds": seeds, "correct": len(ok),
                        "wrong": sum(1 for r in rows_needed if r is not None and r < 0),
                        "undecided": sum(1 for r in rows_needed if r is None),
                        "median_labelled_rows": statistics.median(ok) if ok else None,
                        "max_labelled_rows": max(ok) if ok else None})
            print(f"replay: {kind} by {gap} AUC: correct {len(ok)}/{seeds}, median "
                  f"{out[-1]['median_labelled_rows']} labelled rows per version", flush=True)
    return out


def markdown(r: dict) -> str:
    lines = ["## Releases: serving with a canary or a shadow, and replayed release decisions", "",
             f"`mlcycle serving start` with {r['workers']} workers, 1-row requests from {r['clients']} clients, "
             f"{r['seconds']:.0f} s per case, medians of {r['rounds']} rounds; canary share {r['share']}. "
             "The candidate is the champion's model registered again (same cost to score).", "",
             "| mode | requests/s | ratio to off | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|"]
    for x in r["serving"]:
        lines.append(f"| {x['mode']} | {x['requests_per_s']:.0f} | {x['ratio']:.2f} | {x['p50_ms']:.1f} "
                     f"| {x['p99_ms']:.1f} | {x['errors']} |")
    s = {x["mode"]: x for x in r["serving"]}
    lines += ["", f"Aims: canary at least 0.9x: **{'met' if s['canary']['ratio'] >= 0.9 else 'not met'}** "
              f"({s['canary']['ratio']:.2f}x); shadow at least 0.7x: **{'met' if s['shadow']['ratio'] >= 0.7 else 'not met'}** "
              f"({s['shadow']['ratio']:.2f}x).", "",
              f"Replayed canary releases (release.* of params.yaml: min_labelled_rows {r['policy']['min_labelled_rows']}, "
              f"alpha {r['policy']['alpha']}; champion AUC 0.72; 20% positives; labelled rows per version at the "
              "first decision, checked at every row):", "",
              "| candidate | AUC gap | correct | wrong | undecided | median labelled rows per version | max |",
              "|---|---|---|---|---|---|---|"]
    for x in r["replayed"]:
        lines.append(f"| {x['candidate']} | {x['auc_gap']} | {x['correct']}/{x['seeds']} | {x['wrong']} | {x['undecided']} "
                     f"| {x['median_labelled_rows']} | {x['max_labelled_rows']} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from common import save

    from mlcycle.core import config

    params = config.load(ROOT / "params.yaml", root=ROOT)
    with tempfile.TemporaryDirectory(prefix="bench-release-") as t:
        serving, champ, cand = throughput(args, params, Path(t))
    replays = replayed(params, seeds=args.seeds)
    result = {"workers": args.workers, "clients": args.clients, "seconds": args.seconds, "rounds": args.rounds,
              "share": args.share, "champion": champ, "candidate": cand, "serving": serving,
              "replayed": replays, "policy": params.release.model_dump()}
    result["markdown"] = markdown(result)
    print(result["markdown"])
    save("release", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
