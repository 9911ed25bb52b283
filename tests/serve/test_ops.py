"""Operations around `mlcycle serving start`: a real Prometheus (Debian's `prometheus` package) scraping a real
server with the shipped scrape config and rules, and the serving image's entry point run outside a
container on a registered model's URI, with the files the Dockerfile copies."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from mlcycle.lifecycle.experiments import free_port
from tests.code.test_deploy import METRIC, RELEASE_METRICS, dashboard_queries
from tests.conftest import ROOT, env
from tests.serve.conftest import MODEL, TOKEN, example_rows, serving

pytestmark = pytest.mark.slow
DEPLOY = ROOT / "deploy"


def wait_for(check, what: str, proc: subprocess.Popen, log: Path, seconds: float = 90):
    """Poll `check()` until it returns a value other than None; fail with the process log otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            got = check()
        except httpx.TransportError:
            got = None
        except httpx.HTTPStatusError as exc:  # Prometheus answers 503 until its storage is ready
            if exc.response.status_code != 503:
                raise
            got = None
        if got is not None:
            return got
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen (exit {proc.poll()}):\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def prometheus_config(tmp: Path, target: str) -> Path:
    """The shipped prometheus.yml aimed at `target`, scraping and evaluating every second."""
    cfg = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    cfg["global"].update(scrape_interval="1s", evaluation_interval="1s")
    cfg["rule_files"] = [str(DEPLOY / "prometheus" / f) for f in cfg["rule_files"]]
    (job,) = cfg["scrape_configs"]
    job["static_configs"] = [{"targets": [target]}]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def instant(api: str, query: str) -> list[dict]:
    r = httpx.get(f"{api}/api/v1/query", params={"query": query}, timeout=5)
    r.raise_for_status()
    return r.json()["data"]["result"]


def test_prometheus_scrapes_the_server_and_evaluates_the_rules(served_ws, tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: install Debian's `prometheus` package (.ci/run does)")
    rows = example_rows(served_ws)
    with serving(served_ws, tmp_path / "log") as server:
        target = server.url.removeprefix("http://")
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        log = tmp_path / "prometheus.log"
        with log.open("wb") as out:
            prom = subprocess.Popen([binary, f"--config.file={prometheus_config(tmp_path, target)}",
                                     f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            (up,) = wait_for(lambda: instant(api, 'up{job="mlcycle-serve"}') or None, "a first scrape", prom, log)
            assert up["value"][1] == "1" and up["metric"]["instance"] == target
            # one request, a scrape, two more, a scrape: Prometheus sees the /predict series grow
            # (a series' first sample is not an increase), so rates over the scrapes are defined
            auth = {"Authorization": f"Bearer {TOKEN}"}

            def scored(n: int):
                got = instant(api, 'mlcycle_serve_rows_scored_total{job="mlcycle-serve"}')
                return got if got and float(got[0]["value"][1]) == n else None

            for requests, total in ((1, len(rows)), (2, 3 * len(rows))):
                for _ in range(requests):
                    r = httpx.post(f"{server.url}/predict", json={"dataframe_records": rows}, headers=auth, timeout=30)
                    assert r.status_code == 200, r.text
                wait_for(lambda n=total: scored(n), f"a scrape with {total} rows scored", prom, log)

            def recorded(rule: str):
                got = instant(api, rule)
                return got if got and all(s["value"][1] != "NaN" for s in got) else None

            # the recording rules run on the real series: no 5xx, a p99 within the latency buckets
            ratio = wait_for(lambda: recorded("mlcycle:predict_error_ratio:rate5m"), "the error ratio rule", prom, log)
            assert [float(s["value"][1]) for s in ratio] == [0.0]
            p99 = wait_for(lambda: recorded("mlcycle:predict_latency_seconds:p99_5m"), "the p99 rule", prom, log)
            assert 0 < float(p99[0]["value"][1]) <= 5.0
            groups = httpx.get(f"{api}/api/v1/rules", timeout=5).json()["data"]["groups"]
            loaded = [r for g in groups for r in g["rules"]]
            assert len(loaded) == 14 and {r["health"] for r in loaded} <= {"ok", "unknown"}
            firing = httpx.get(f"{api}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
            assert [a for a in firing if a["state"] == "firing"] == []
            # every dashboard query names a series this server exposes (or the release work's)
            exposed = exposition_names(httpx.get(f"{server.url}/metrics").text)
            assert "mlcycle_serve_requests_total" in exposed and "mlcycle_serve_out_of_range_values_total" in exposed
            board = json.loads((DEPLOY / "grafana" / "mlcycle-serve.json").read_text())
            used = {m for q in dashboard_queries(board) for m in METRIC.findall(q)}
            assert used - exposed - RELEASE_METRICS - {"up"} == set()
        finally:
            stop(prom)


def exposition_names(text: str) -> set[str]:
    """Series names in a /metrics answer: those with samples, and those declared by a # TYPE line
    (a labelled counter has no sample until its first label set is used)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if kind == "histogram":
                names.update(name + s for s in ("_bucket", "_sum", "_count"))
            else:
                names.add(name if kind != "counter" or name.endswith("_total") else name + "_total")
        elif line and not line.startswith("#"):
            names.add(line.split("{")[0].split(" ")[0])
    return names


def image_root(dest: Path) -> Path:
    """The files the Dockerfile COPYs into /srv/mlcycle, copied from the repository the same way."""
    dest.mkdir()
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        parts = line.split()
        if not parts or parts[0] != "COPY":
            continue
        *sources, target = [p for p in parts[1:] if not p.startswith("--")]
        if target.startswith("/"):
            continue  # the entry point goes to /usr/local/bin; the test runs it from deploy/
        for src in sources:
            if (ROOT / src).is_dir():
                shutil.copytree(ROOT / src, dest / target, dirs_exist_ok=True)
            else:
                to = dest / target / Path(src).name if target.endswith("/") else dest / target
                to.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / src, to)
    return dest


def entrypoint(root: Path, served_ws: Path, port: int | str, uri: str, *args: str, log: Path | None = None):
    e = env()
    e.update(MLCYCLE_ROOT=str(root), MLCYCLE_HOST="127.0.0.1", MLCYCLE_PORT=str(port), MLCYCLE_MODEL_URI=uri,
             MLFLOW_TRACKING_URI=f"sqlite:///{served_ws / 'mlruns' / 'mlflow.db'}", MLCYCLE_SERVE_TOKEN=TOKEN)
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e['PATH']}"
    cmd = [str(DEPLOY / "entrypoint.sh"), *args]
    if log is None:
        return subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=300)
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=e, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def test_entrypoint_serves_a_model_uri_and_answers_the_healthcheck(served_ws, tmp_path):
    root = image_root(tmp_path / "srv")
    assert (root / "params.yaml").exists() and (root / "src" / "mlcycle").is_dir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # nothing listens yet: the health check fails
    assert entrypoint(root, served_ws, port, f"models:/{MODEL}/1", "healthcheck").returncode == 1
    log = tmp_path / "serve.log"
    proc = entrypoint(root, served_ws, port, f"models:/{MODEL}/1", log=log)
    try:
        wait_for(lambda: httpx.get(f"{url}/ready", timeout=2).status_code == 200 or None, "/ready", proc, log)
        health = entrypoint(root, served_ws, port, f"models:/{MODEL}/1", "healthcheck")
        assert health.returncode == 0, health.stderr
        info = httpx.get(f"{url}/model", timeout=10).json()
        assert (info["name"], info["version"], info["uri"]) == (MODEL, "1", f"models:/{MODEL}/1")
        r = httpx.post(f"{url}/predict", json={"dataframe_records": example_rows(served_ws)},
                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert r.status_code == 200 and len(r.json()["predictions"]) == 5
        assert httpx.post(f"{url}/predict", json={"dataframe_records": example_rows(served_ws)}).status_code == 401
    finally:
        # uvicorn ends with the signal it drained on (-15), or 0
        assert stop(proc) in (0, -signal.SIGTERM), log.read_text(errors="replace")[-3000:]
    # the entry point exec'd the server (the process SIGTERM reached is the one serving), which
    # flushed its prediction log under the image's root before exiting
    assert f"(pid {proc.pid})" in log.read_text()
    assert "prediction log flushed (5 rows" in log.read_text()
    assert list((root / "data" / "predictions").rglob("*.parquet"))


def test_entrypoint_refuses_an_unknown_model_and_a_bad_port(served_ws, tmp_path):
    root = image_root(tmp_path / "srv")
    missing = entrypoint(root, served_ws, free_port(), f"models:/{MODEL}@nope", "serve")
    assert missing.returncode != 0
    assert f"models:/{MODEL}@nope" in missing.stderr + missing.stdout
    bad = entrypoint(root, served_ws, "eighty", f"models:/{MODEL}/1", "serve")
    assert bad.returncode == 2
    assert "MLCYCLE_PORT must be a port number, got 'eighty'" in bad.stderr
