"""`mlcycle serving start` as a real uvicorn process: both input forms, every kind of bad request, the token,
the info endpoints, and hot reload after a promotion and a rollback."""

import json
import math
import sys
import threading
import time

import httpx
import pytest

from mlcycle.serving.predlog import read
from tests.conftest import run
from tests.serve.conftest import TOKEN, example_rows, register_again, serving

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(served_ws, tmp_path_factory):
    with serving(served_ws, tmp_path_factory.mktemp("serve-log") / "predictions") as s:
        yield s


@pytest.fixture(scope="module")
def rows(served_ws):
    return example_rows(served_ws)


def post(server, body, headers=AUTH, **kw):
    return httpx.post(f"{server.url}/predict", json=body, headers=headers, timeout=30, **kw)


def test_records_and_split_forms_agree(server, rows):
    a = post(server, {"dataframe_records": rows})
    cols = list(rows[0])
    b = post(server, {"dataframe_split": {"columns": cols, "data": [[r[c] for c in cols] for r in rows]}})
    assert a.status_code == b.status_code == 200, (a.text, b.text)
    ja, jb = a.json(), b.json()
    assert ja["predictions"] == jb["predictions"] and len(ja["predictions"]) == len(rows)
    assert all(p in (0, 1) for p in ja["predictions"])
    for probs in ja["probabilities"]:
        assert set(probs) == {"0", "1"} and math.isclose(sum(probs.values()), 1.0)
    assert ja["model_version"] == "1" and ja["model_name"] == "nycflights13-late-arrival"
    assert ja["request_id"] != jb["request_id"] and a.headers["x-request-id"] == ja["request_id"]


def raw(server, content: bytes, content_type="application/json"):
    return httpx.post(f"{server.url}/predict", content=content, timeout=30,
                      headers={**AUTH, "Content-Type": content_type})


def bad_requests(rows):
    """(name, request body bytes or JSON, status, error, field)."""
    good = rows[0]
    drop = {k: v for k, v in good.items() if k != "carrier"}
    nan = json.dumps({"dataframe_records": [good]}).replace('"distance": ' + json.dumps(good["distance"]), '"distance": NaN')
    return [
        ("malformed JSON", b'{"dataframe_records": [', 400, "malformed JSON", "body"),
        ("empty body", b"", 400, "empty body", "body"),
        ("missing column", {"dataframe_records": [drop]}, 422, "missing column", "carrier"),
        ("unknown column", {"dataframe_records": [{**good, "dep_delay": 3.0}]}, 422, "unknown column", "dep_delay"),
        ("wrong type", {"dataframe_records": [{**good, "distance": "far"}]}, 422, "wrong type", "distance"),
        ("string for a category", {"dataframe_records": [{**good, "origin": 3}]}, 422, "wrong type", "origin"),
        ("null where not allowed", {"dataframe_records": [{**good, "carrier": None}]}, 422, "null not allowed", "carrier"),
        ("NaN where not allowed", nan.encode(), 422, "NaN not allowed", "distance"),
        ("no rows", {"dataframe_records": []}, 422, "no rows", "dataframe_records"),
        ("too many rows", {"dataframe_records": [good] * 51}, 413, "too many rows", "dataframe_records"),
        ("oversized body", {"dataframe_records": [{**good, "carrier": "x" * 300_000}]}, 413, "body too large", "body"),
        ("split: unknown column", {"dataframe_split": {"columns": ["nope"], "data": [[1]]}}, 422, "unknown column", "nope"),
        ("split: short row", {"dataframe_split": {"columns": list(good), "data": [[1.0]]}}, 422, "wrong row length", "data"),
        ("neither form", {"instances": [good]}, 422, "unknown field", "instances"),
        ("not an object", [1, 2], 422, "wrong type", "body"),
    ]


def test_every_bad_request_gets_a_4xx_naming_the_field(server, rows):
    for name, body, status, error, field in bad_requests(rows):
        r = raw(server, body) if isinstance(body, bytes) else post(server, body)
        assert r.status_code == status, (name, r.text)
        j = r.json()
        assert (j["error"], j["field"]) == (error, field), (name, j)
        assert j["detail"] and j["request_id"], name
    assert raw(server, b"{}", "text/plain").status_code == 415
    assert httpx.get(f"{server.url}/predict").status_code == 405
    assert httpx.get(f"{server.url}/nowhere").json()["error"] == "not found"
    # the server keeps serving, and no client error became a 500
    assert post(server, {"dataframe_records": rows[:1]}).status_code == 200
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'mlcycle_serve_requests_total{endpoint="/predict",route="",status="422",version=""}' in metrics
    assert 'status="5' not in metrics


def test_token_guards_predictions_only(server, rows):
    body = {"dataframe_records": rows[:1]}
    assert post(server, body, headers={}).status_code == 401
    r = post(server, body, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["field"] == "Authorization"
    for path in ("/health", "/ready", "/model", "/metrics", "/openapi.json"):
        assert httpx.get(f"{server.url}{path}").status_code == 200, path


def test_model_metrics_and_openapi(server, served_ws):
    m = httpx.get(f"{server.url}/model").json()
    registered = json.loads((served_ws / "models" / "registered.json").read_text())
    assert (m["name"], m["version"], m["alias"], m["run_id"]) == (registered["name"], "1", "champion", registered["run_id"])
    assert m["data_md5"].endswith(".dir") and len(m["git_commit"]) == 40
    schema = {c["name"]: c for c in m["input_schema"]}
    assert schema["distance"] == {"name": "distance", "type": "double", "required": True, "nullable": False}
    assert schema["carrier"]["type"] == "string" and schema["temp"]["nullable"]
    text = httpx.get(f"{server.url}/metrics").text
    for name in ("mlcycle_serve_request_seconds_bucket", "mlcycle_serve_rows_scored_total",
                 "mlcycle_serve_prediction_score_bucket", "mlcycle_serve_model_version 1.0"):
        assert name in text, name
    openapi = httpx.get(f"{server.url}/openapi.json").json()
    row = openapi["components"]["schemas"]["Row"]
    assert set(row["properties"]) == set(schema) and row["properties"]["carrier"]["type"] == "string"
    assert "HTTPBearer" in openapi["components"]["securitySchemes"]


def test_the_compiled_path_answers_and_says_so(server, served_ws, rows, tmp_path):
    """The version was registered with a compiled form proven equal: the server scores through it,
    says so in /model, /metrics and the version's tags, and answers as the pipeline does."""
    from tests.conftest import mlflow_client
    from tests.serve.conftest import MODEL

    m = httpx.get(f"{server.url}/model").json()
    assert m["scoring_path"] == "compiled", m["scoring"]
    assert m["scoring"]["max_abs_diff"] <= 1e-6 and m["scoring"]["rows_checked"] > 0
    assert 'mlcycle_serve_scoring_path{path="compiled"} 1.0' in httpx.get(f"{server.url}/metrics").text
    tags = mlflow_client(served_ws).get_model_version(MODEL, "1").tags
    assert tags["mlcycle.scoring_path"] == "compiled" and "agrees with the pipeline" in tags["mlcycle.compiled.reason"]
    fast = post(server, {"dataframe_records": rows}).json()
    with serving(served_ws, tmp_path / "predictions", TOKEN, "--no-compiled") as plain:
        m = httpx.get(f"{plain.url}/model").json()
        assert m["scoring_path"] == "sklearn" and "switched off" in m["scoring"]["reason"]
        assert 'mlcycle_serve_scoring_path{path="sklearn"} 1.0' in httpx.get(f"{plain.url}/metrics").text
        slow = post(plain, {"dataframe_records": rows}).json()
    assert fast["predictions"] == slow["predictions"]
    for a, b in zip(fast["probabilities"], slow["probabilities"], strict=True):
        assert max(abs(a[k] - b[k]) for k in a) <= 1e-6


def version_served(server) -> str:
    return httpx.get(f"{server.url}/model").json()["version"]


def wait_for_version(server, version: str, timeout: float = 30) -> float:
    start = time.monotonic()
    while version_served(server) != version:
        assert time.monotonic() - start < timeout, f"still serving v{version_served(server)}"
        time.sleep(0.2)
    return time.monotonic() - start


def test_hot_reload_after_promotion_and_rollback(server, served_ws, rows):
    v2 = register_again(served_ws)
    statuses, versions, stop = [], set(), threading.Event()

    def traffic():  # requests in flight across both switches
        with httpx.Client(headers=AUTH, timeout=30) as c:
            while not stop.is_set():
                r = c.post(f"{server.url}/predict", json={"dataframe_records": rows[:2]})
                statuses.append(r.status_code)
                if r.status_code == 200:
                    versions.add(r.json()["model_version"])

    t = threading.Thread(target=traffic)
    t.start()
    try:
        run([sys.executable, "-m", "mlcycle", "model", "promote", "--model", v2, "--reason", "hot reload test"], served_ws)
        wait_for_version(server, v2)
        assert post(server, {"dataframe_records": rows[:1]}).json()["model_version"] == v2
        text = httpx.get(f"{server.url}/metrics").text
        assert f"mlcycle_serve_model_version {float(v2)}" in text and "mlcycle_serve_model_reloads_total 1.0" in text
        run([sys.executable, "-m", "mlcycle", "model", "rollback", "--reason", "hot reload test"], served_ws)
        wait_for_version(server, "1")
    finally:
        stop.set()
        t.join()
    assert statuses and set(statuses) == {200}
    assert versions == {"1", v2}
    assert "mlcycle_serve_model_reloads_total 2.0" in httpx.get(f"{server.url}/metrics").text


def test_log_holds_every_prediction_after_shutdown(served_ws, tmp_path, rows):
    with serving(served_ws, tmp_path / "predictions") as s:
        ids = [post(s, {"dataframe_records": rows[: i + 1]}).json()["request_id"] for i in range(5)]
        assert s.stop() in (0, -15)  # uvicorn re-raises SIGTERM after its graceful shutdown
    assert "prediction log flushed (15 rows" in s.output(), s.output()
    log = read(tmp_path / "predictions")
    assert sorted(log["request_id"].unique()) == sorted(ids) and len(log) == 15
    assert {"prediction", "score", "model_version", "ts", "row", "distance", "carrier"} <= set(log.columns)


def test_unknown_model_fails_in_seconds_with_a_message(served_ws):
    proc = run([sys.executable, "-m", "mlcycle", "serving", "start", "--model", "models:/no-such-model@champion",
                "--port", "1"], served_ws, check=False, timeout=120)
    assert proc.returncode == 1
    assert "models:/no-such-model@champion does not resolve" in proc.stderr and "make repro" in proc.stderr
