"""Fault injection against real `mlcycle serve` processes: nothing answered 200 is ever missing from
the prediction log, and no input, however malformed, yields a 5xx.

- the log folder is replaced by a file for more than one roll period while clients send requests:
  every request answered 200 is in the log afterwards; while the log cannot be written, /ready and
  /predict answer 503;
- SIGTERM while many clients send requests: every request answered 200 is on disk after the exit;
- malformed bodies (lone surrogates, invalid UTF-8, deep nesting, ...) each get a 4xx with a
  request id; the token is checked before the body is parsed.
"""

from __future__ import annotations

import os
import threading
import time

import httpx
import pandas as pd
import pytest

from tests.serve.conftest import TOKEN, example_rows, serving

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def logged_ids(*folders) -> set[str]:
    ids: set[str] = set()
    for folder in folders:
        for p in sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []:
            ids |= set(pd.read_parquet(p, columns=["request_id"])["request_id"])
    return ids


class Load:
    """Client threads sending requests back to back; records the request id of every 200 and
    the count of every status."""

    def __init__(self, url: str, body: dict, clients: int = 3):
        self.url, self.body, self.clients = url, body, clients
        self.ok: list[str] = []
        self.statuses: dict[int, int] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(clients)]

    def client(self):
        with httpx.Client(timeout=30) as c:
            while not self.stop.is_set():
                try:
                    r = c.post(f"{self.url}/predict", json=self.body, headers=AUTH)
                except httpx.TransportError:  # the server stopped
                    if self.stop.wait(0.05):
                        return
                    continue
                with self.lock:
                    self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
                    if r.status_code == 200:
                        self.ok.append(r.json()["request_id"])

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)


def test_log_folder_replaced_by_a_file_loses_no_answered_row(served_ws, tmp_path):
    rows = example_rows(served_ws)
    log_dir = tmp_path / "predictions"
    fallback = served_ws / "data" / "predictions-fallback"
    ready_codes: list[int] = []
    with serving(served_ws, log_dir) as s, Load(s.url, {"dataframe_records": rows[:2]}) as load:
        time.sleep(2.5)  # a part or two written normally
        aside = tmp_path / "predictions.aside"
        os.replace(log_dir, aside)
        log_dir.write_text("the log folder replaced by a file")
        deadline = time.monotonic() + 6  # more than one roll period (2 s) plus the first retries
        while time.monotonic() < deadline:
            ready_codes.append(httpx.get(f"{s.url}/ready", timeout=10).status_code)
            time.sleep(0.2)
        log_dir.unlink()
        os.replace(aside, log_dir)
        deadline = time.monotonic() + 40  # the writer's backoff retries, then serving again
        while httpx.get(f"{s.url}/ready", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the server did not recover once the folder came back"
            time.sleep(0.2)
        ok_before_stop = len(load.ok)
        time.sleep(1.5)
        assert len(load.ok) > ok_before_stop  # answering 200 again
        load.stop.set()
    assert s.stop() in (0, -15)
    answered = set(load.ok)
    missing = answered - logged_ids(log_dir, fallback)
    assert not missing, f"{len(missing)} of {len(answered)} answered requests are not in the log"
    assert 503 in ready_codes  # /ready told the load balancer
    assert load.statuses.get(503, 0) > 0  # /predict refused rows it could not record
    assert set(load.statuses) <= {200, 503}, load.statuses
    assert "could not be written" in s.output()


def test_sigterm_under_load_writes_every_answered_row(served_ws, tmp_path):
    rows = example_rows(served_ws)
    body = {"dataframe_records": (rows * 10)[:50]}  # 50 rows a request: a backlog builds quickly
    log_dir = tmp_path / "predictions"
    with serving(served_ws, log_dir) as s:
        with Load(s.url, body, clients=4) as load:
            time.sleep(3.0)
            s.proc.send_signal(15)  # SIGTERM while the clients keep sending
            s.proc.wait(120)
        answered = set(load.ok)
    missing = answered - logged_ids(log_dir, served_ws / "data" / "predictions-fallback")
    assert len(answered) > 20
    assert not missing, f"{len(missing)} of {len(answered)} answered requests are not in the log"
    assert "rows lost" not in s.output()


MALFORMED: list[tuple[str, bytes]] = [
    ("lone high surrogate in a string column", b'{"dataframe_records": [{"carrier": "\\ud800"}]}'),
    ("lone low surrogate in a string column", b'{"dataframe_records": [{"carrier": "UA\\udfff"}]}'),
    ("lone surrogate in a key", b'{"dataframe_records": [{"\\ud800": 1}]}'),
    ("lone surrogate in the split form", b'{"dataframe_split": {"columns": ["carrier"], "data": [["\\ud800"]]}}'),
    ("lone surrogate in a split column name", b'{"dataframe_split": {"columns": ["\\ud800"], "data": [[1]]}}'),
    ("invalid UTF-8", b'{"dataframe_records": [{"carrier": "\xff\xfe"}]}'),
    ("truncated UTF-8", b'{"dataframe_records": [{"carrier": "\xe2\x82"}]}'),
    ("deep nesting of arrays", b"[" * 100_000 + b"]" * 100_000),
    ("deep nesting in a value", b'{"dataframe_records": [{"carrier": ' + b"[" * 50_000 + b"]" * 50_000 + b"}]}"),
    ("deep nesting in split index", b'{"dataframe_split": {"columns": ["carrier"], "data": [["UA"]], "index": '
     + b"[" * 50_000 + b"]" * 50_000 + b"}}"),
    ("an empty body", b""),
    ("JSON null", b"null"),
    ("a JSON list", b"[]"),
    ("a JSON string", b'"x"'),
    ("an empty object", b"{}"),
    ("both forms", b'{"dataframe_records": [{}], "dataframe_split": {"columns": ["carrier"], "data": [["UA"]]}}'),
    ("null forms", b'{"dataframe_records": null}'),
    ("a number too large for a double", b'{"dataframe_records": [{"distance": 1e999}]}'),
    ("NaN and Infinity tokens", b'{"dataframe_records": [{"distance": NaN, "temp": Infinity}]}'),
    ("an integer of 400 digits", b'{"dataframe_records": [{"distance": ' + b"9" * 400 + b"}]}"),
    ("a BOM", b'\xef\xbb\xbf{"dataframe_records": []}'),
    ("a NUL byte in a string", b'{"dataframe_records": [{"carrier": "U\\u0000A"}]}'),
    ("a row that is a list", b'{"dataframe_records": [[1, 2, 3]]}'),
    ("a split row that is an object", b'{"dataframe_split": {"columns": ["carrier"], "data": [{"a": 1}]}}'),
    ("trailing garbage", b'{"dataframe_records": []} xyz'),
]


def test_malformed_bodies_each_get_a_4xx_with_a_request_id(served_ws, tmp_path):
    rows = example_rows(served_ws)
    full = {k: v for k, v in rows[0].items()}
    import json

    surrogate_full = json.dumps({"dataframe_records": [{**full, "carrier": "\ud800"}]}).encode()
    cases = [*MALFORMED, ("lone surrogate in a complete row", surrogate_full)]
    results = {}
    with serving(served_ws, tmp_path / "predictions") as s, httpx.Client(timeout=60) as c:
        for name, body in cases:
            r = c.post(f"{s.url}/predict", content=body, headers=AUTH)
            results[name] = r.status_code
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text[:300])
            j = r.json()
            assert j["request_id"] and j["detail"], name
            assert r.headers.get("x-request-id") == j["request_id"], name
        r = c.post(f"{s.url}/predict", content=surrogate_full, headers=AUTH)
        assert (r.status_code, r.json()["field"], r.json()["row"]) == (422, "carrier", 0)
        # the token before the body: a malformed body without the token is a 401, not a 400
        r = c.post(f"{s.url}/predict", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 401 and r.json()["field"] == "Authorization"
        assert c.post(f"{s.url}/predict", json={"dataframe_records": rows[:1]}, headers=AUTH).status_code == 200
        metrics = c.get(f"{s.url}/metrics").text
    assert 'status="5' not in metrics
    print(f"malformed bodies: {len(cases)} tried, {sum(400 <= v < 500 for v in results.values())} 4xx, "
          f"{sum(v >= 500 for v in results.values())} 5xx")


def test_openapi_declares_bearer_only_with_a_token_and_ranges_are_counted(served_ws, tmp_path):
    far = {**example_rows(served_ws)[0], "distance": 99999.0}  # schemas/flights.yaml: distance max 5000
    with serving(served_ws, tmp_path / "predictions", None) as s:
        doc = httpx.get(f"{s.url}/openapi.json").json()
        r = httpx.post(f"{s.url}/predict", json={"dataframe_records": example_rows(served_ws)[:1]})
        scored_anyway = httpx.post(f"{s.url}/predict", json={"dataframe_records": [far, far]}).status_code
        metrics = httpx.get(f"{s.url}/metrics").text
    assert scored_anyway == 200  # serve.ranges: warn (the default)
    assert 'mlcycle_serve_out_of_range_values_total{column="distance"} 2.0' in metrics
    assert "outside the training range" in s.output()
    assert "securitySchemes" not in doc.get("components", {})
    assert "401" not in doc["paths"]["/predict"]["post"]["responses"]
    body = doc["components"]["schemas"]["PredictRequest"]
    assert {"required": ["dataframe_records"]} in body["oneOf"]
    assert r.status_code == 200
