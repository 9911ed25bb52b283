"""Benchmark: `mlcycle serving start` against `mlflow models serve` on the same registered model.

Three servers serve `models:/<tracking.model_name>@champion` of this workspace with the same
worker count, one at a time (so they never share the CPU), and get the same request bodies
(`dataframe_split`, 1 row and 100 rows, taken from the model's input example): `mlcycle serving start`
as configured (through the compiled scoring path the version registered with, when it agreed),
`mlcycle serving start --no-compiled` (the scikit-learn pipeline) and `mlflow models serve`. Ours run as
configured for production: signature validation, prediction log, Prometheus metrics all on.

The load comes from a separate process (this script with `load`): `--clients` threads, each with
its own HTTP connection, send requests back to back for `--seconds`, after a warm-up: once with 1
client (latency alone) and once with `--clients` (throughput under load). Every
round measures each server and size; the table shows medians over rounds. Results go to stdout
and to reports/benchmarks/serve.json.

    python bench/bench_serve.py [--workers 1] [--clients 4] [--seconds 8] [--rounds 3]

Needs a champion in the workspace's registry (`make repro`).
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

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def CASES(clients: int) -> list[tuple[int, int]]:  # noqa: N802
    """(rows per request, concurrent clients): latency alone (1 client) and under load."""
    return [(1, 1), (1, clients), (100, 1), (100, clients)]


def load(args) -> None:
    """The load generator: prints one JSON line with counts and latency percentiles."""
    import threading

    import httpx

    body = Path(args.body).read_bytes()
    headers = {"Content-Type": "application/json"}
    stop_at = [0.0]
    lat: list[list[float]] = [[] for _ in range(args.clients)]
    errors = [0] * args.clients
    measuring = threading.Event()

    def client(i: int) -> None:
        with httpx.Client(timeout=60) as c:
            while True:
                t = time.perf_counter()
                if t >= stop_at[0]:
                    return
                r = c.post(args.url, content=body, headers=headers)
                dt = time.perf_counter() - t
                if measuring.is_set():
                    if r.status_code == 200:
                        lat[i].append(dt)
                    else:
                        errors[i] += 1

    start = time.perf_counter()
    stop_at[0] = start + args.warmup + args.seconds
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    time.sleep(args.warmup)
    measuring.set()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    all_lat = sorted(x for part in lat for x in part)
    n = len(all_lat)

    def pct(p):
        return all_lat[min(n - 1, int(p * n))] * 1000 if n else float("nan")

    print(json.dumps({"requests": n, "errors": sum(errors), "seconds": elapsed, "rps": n / elapsed,
                      "p50_ms": pct(0.50), "p99_ms": pct(0.99)}))


SERVERS = ("mlcycle", "mlcycle-pipeline", "mlflow")  # mlcycle-pipeline: `mlcycle serving start --no-compiled`


def start(kind: str, model: str, workers: int, tmp: Path, env: dict):
    from common import serve, wait_for

    if kind.startswith("mlcycle"):
        proc, url = serve(tmp, workers, tmp / "predictions",
                          ["--no-compiled" if kind == "mlcycle-pipeline" else "--compiled"], env)
        return proc, f"{url}/predict"
    from mlcycle.lifecycle.experiments import free_port

    port = free_port()
    out = tmp / f"{kind}-{port}.out"
    cmd = [str(BIN / "mlflow"), "models", "serve", "-m", model, "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
    with out.open("wb") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(f"http://127.0.0.1:{port}/ping", proc, out)
    return proc, f"http://127.0.0.1:{port}/invocations"


def bodies(tmp: Path) -> dict[int, Path]:
    """dataframe_split bodies of 1 and 100 rows from the champion's input example."""
    from mlcycle.core import config
    from mlcycle.runtime import tracking

    params = config.load(ROOT / "params.yaml", root=ROOT)
    import mlflow

    uri = tracking.tracking_uri(ROOT, params)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    src = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{params.tracking.model_name}@champion/serving_input_example.json", dst_path=str(tmp))
    split = json.loads(Path(src).read_text())["dataframe_split"]
    out = {}
    for n in (1, 100):
        data = [split["data"][i % len(split["data"])] for i in range(n)]
        p = tmp / f"body-{n}.json"
        p.write_text(json.dumps({"dataframe_split": {"columns": split["columns"], "data": data}}))
        out[n] = p
    return out


def markdown(r: dict) -> str:
    rows = r["results"]
    out = ["## Serving: `mlcycle serving start` against `mlflow models serve`", "",
           f"The champion of this workspace, {r['workers']} worker(s) each, one server at a time, "
           f"{r['seconds']:.0f} s per case after a warm-up, medians of {r['rounds']} rounds; "
           f"OMP_NUM_THREADS={r['omp_num_threads']}. Ours with signature validation, prediction log and metrics on; "
           f"`mlcycle` scores through {r.get('scoring_path', 'its configured path')} "
           "(its `/model` says so), `mlcycle-pipeline` is `--no-compiled`.", "",
           "| server | rows per request | clients | requests/s | rows/s | p50 ms | p99 ms | errors |",
           "|---|---|---|---|---|---|---|---|"]
    for x in rows:
        out.append(f"| {x['server']} | {x['rows_per_request']} | {x['clients']} | {x['requests_per_s']:.0f} "
                   f"| {x['rows_per_s']:.0f} | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} | {x['errors']} |")
    out.append("")
    ratios, single_ratios = [], []

    def case(kind, n, clients):
        return next(x for x in rows if (x["server"], x["rows_per_request"], x["clients"]) == (kind, n, clients))

    for n, clients in CASES(r["clients"]):
        ours, pipeline, theirs = (case(k, n, clients) for k in SERVERS)
        ratio = ours["requests_per_s"] / theirs["requests_per_s"]
        ratios.append(ratio)
        if n == 1:
            single_ratios.append(ratio)
        out.append(f"- {n} row(s), {clients} client(s): throughput mlcycle / mlflow **{ratio:.2f}x**, "
                   f"mlcycle / mlcycle-pipeline **{ours['requests_per_s'] / pipeline['requests_per_s']:.2f}x**")
    single = case("mlcycle", 1, 1)
    out += ["", f"Targets: at least MLflow's throughput in every case: **{'met' if min(ratios) >= 1 else 'not met'}**; "
            f"single-row p99 within 5 ms on one worker: **{'met' if single['p99_ms'] <= 5 else 'not met'}** "
            f"({single['p99_ms']:.2f} ms); single-row throughput at least 5 x MLflow's (1 and {r['clients']} clients): "
            f"**{'met' if min(single_ratios) >= 5 else 'not met'}** ({min(single_ratios):.1f}x at the least)."]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode")
    lg = sub.add_parser("load", help="(internal) the load generator process")
    lg.add_argument("--url", required=True)
    lg.add_argument("--body", required=True)
    lg.add_argument("--clients", type=int, default=4)
    lg.add_argument("--seconds", type=float, default=8)
    lg.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.mode == "load":
        load(args)
        return 0

    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import load as load_in_process
    from common import save, stop

    from mlcycle.core import config
    from mlcycle.runtime import tracking

    params = config.load(ROOT / "params.yaml", root=ROOT)
    model = f"models:/{params.tracking.model_name}@champion"
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_TRACKING_URI"] = tracking.tracking_uri(ROOT, params)
    env.pop("MLCYCLE_SERVE_TOKEN", None)
    # like for like: `mlcycle serving start` runs one OpenMP thread per worker; give MLflow's server the same
    env.setdefault("OMP_NUM_THREADS", "1")
    results: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as t:
        tmp = Path(t)
        files = bodies(tmp)
        for r in range(args.rounds):
            for kind in SERVERS:
                proc, url = start(kind, model, args.workers, tmp, env)
                try:
                    if kind == "mlcycle":
                        import httpx

                        scoring_path = httpx.get(url.replace("/predict", "/model")).json()["scoring_path"]
                    for (n, clients), body in ((k, files[k[0]]) for k in CASES(args.clients)):
                        res = load_in_process(url, body, clients, args.seconds)
                        results.setdefault((kind, n, clients), []).append(res)
                        print(f"round {r + 1} {kind:<8} {n:>3} rows {clients:>2} clients: {res['rps']:.0f} req/s, "
                              f"p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, errors {res['errors']}", flush=True)
                finally:
                    stop(proc)
    rows = []
    for (kind, n, clients), runs in results.items():
        rows.append({"server": kind, "rows_per_request": n, "clients": clients,
                     "requests_per_s": statistics.median(x["rps"] for x in runs),
                     "rows_per_s": statistics.median(x["rps"] for x in runs) * n,
                     "p50_ms": statistics.median(x["p50_ms"] for x in runs),
                     "p99_ms": statistics.median(x["p99_ms"] for x in runs),
                     "errors": sum(x["errors"] for x in runs), "requests": sum(x["requests"] for x in runs)})
    rows.sort(key=lambda x: (x["rows_per_request"], x["clients"], x["server"]))
    result = {"model": model, "scoring_path": scoring_path, "workers": args.workers, "clients": args.clients, "seconds": args.seconds,
              "rounds": args.rounds, "omp_num_threads": env["OMP_NUM_THREADS"], "results": rows,
              "runs": {f"{k}/{n}rows/{c}clients": v for (k, n, c), v in results.items()}}
    result["markdown"] = markdown(result)
    print(result["markdown"])
    print(save("serve", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
