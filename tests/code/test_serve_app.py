"""The app in-process (FastAPI TestClient) on a stand-in model: what a 5xx body shows, the token
checked before the body, and 503 while the prediction log cannot be written."""

import json
import os
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from mlcycle.serving import app, model
from mlcycle.serving.model import Column, Served
from mlcycle.serving.settings import Settings

COLUMNS = (Column("distance", "double"), Column("carrier", "string"))
ROW = {"distance": 100.0, "carrier": "UA"}


class Model:
    def predict_proba(self, X):
        if (X["carrier"] == "BOOM").any():
            raise RuntimeError("secret internal detail /srv/model/path")
        return np.tile([0.3, 0.7], (len(X), 1))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('store')}/m.db"  # created once (MLflow's migrations take seconds)


@pytest.fixture
def app_for(tmp_path, monkeypatch, store):
    default = Served(Model(), "sklearn", {"name": "m", "version": "1"}, COLUMNS,
                     {"task": "classification", "classes": [0, 1], "positive_class": 1}, [{"distance": 100.0}])
    current = [default]
    monkeypatch.setattr(model, "load", lambda *a, **k: current[0])

    def make(token=None, served=None, asgi=False, **kw):
        """A TestClient of the app on these settings; `asgi=True`: the app itself (for a real server)."""
        current[0] = served or default
        if token:
            monkeypatch.setenv("MLCYCLE_SERVE_TOKEN", token)
        else:
            monkeypatch.delenv("MLCYCLE_SERVE_TOKEN", raising=False)
        s = Settings("runs:/x/model", store, log_dir=str(tmp_path / "log"),
                           log_fallback_dir=str(tmp_path / "spill"), log_roll_seconds=0.1, **kw)
        return app.create_app(s) if asgi else TestClient(app.create_app(s), raise_server_exceptions=False)
    return make


def test_a_5xx_shows_a_request_id_and_no_exception_text(app_for):
    with app_for() as c:
        r = c.post("/predict", json={"dataframe_records": [{**ROW, "carrier": "BOOM"}]})
    assert r.status_code == 500
    body = r.json()
    assert body["request_id"] and r.headers["x-request-id"] == body["request_id"]
    assert "secret" not in r.text and "RuntimeError" not in r.text and "/srv" not in r.text


def test_token_is_checked_before_the_body(app_for):
    with app_for(token="t0k") as c:
        assert c.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 401
        assert c.post("/predict", content=b"{not json", headers={"Authorization": "Bearer t0k",
                                                                  "Content-Type": "application/json"}).status_code == 400
        assert c.post("/predict", json={"dataframe_records": [ROW]}, headers={"Authorization": "Bearer t0k"}).status_code == 200
        assert "HTTPBearer" in c.get("/openapi.json").json()["components"]["securitySchemes"]


@pytest.mark.parametrize("policy", ["refuse", "serve"])
def test_predict_and_ready_while_the_log_cannot_be_written(app_for, tmp_path, policy):
    log_dir = tmp_path / "log"
    with app_for(log_failure=policy) as c:
        assert c.post("/predict", json={"dataframe_records": [ROW]}).status_code == 200
        os.rename(log_dir, tmp_path / "aside")
        log_dir.write_text("not a folder")
        deadline = time.monotonic() + 10
        while c.get("/ready").json()["log_error"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        ready, answer = c.get("/ready"), c.post("/predict", json={"dataframe_records": [ROW]})
        if policy == "refuse":
            assert ready.status_code == 503 and ready.json()["log_pending_rows"] == 1
            assert (answer.status_code, answer.json()["error"]) == (503, "prediction log unavailable")
        else:
            assert ready.status_code == 200 and answer.status_code == 200
        log_dir.unlink()
        os.rename(tmp_path / "aside", log_dir)
        deadline = time.monotonic() + 10
        while c.get("/ready").json()["log_error"] is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.post("/predict", json={"dataframe_records": [ROW]}).status_code == 200
    from mlcycle.serving.predlog import read

    assert len(read(log_dir)) == (3 if policy == "serve" else 2)  # every 200 is on disk


# ---------------------------------------------------------------- the task's answers and labels (hooks)

class Regressor:
    def predict(self, X):
        return np.full(len(X), 12.5)


class ThreeClasses:
    classes_ = np.array(["a", "b", "c"])

    def predict_proba(self, X):
        return np.tile([0.2, 0.5, 0.3], (len(X), 1))


def served_with(m, meta: dict, flavor: str = "sklearn") -> Served:
    return Served(m, flavor, {"name": "m", "version": "1"}, COLUMNS, meta)


def test_which_models_answer_class_probabilities():
    """`Served.classifier` asks the model's task (`Task.probabilities`): the tabular task's classifiers
    answer probabilities; a regressor, a model saved before `task` existed, a recommender or another
    flavor answer their predictions."""
    import pandas as pd

    from mlcycle.serving import outputs

    X = pd.DataFrame([ROW, ROW])
    binary = served_with(Model(), {"task": "classification", "classes": [0, 1], "positive_class": 1})
    assert binary.classifier
    assert outputs.score(binary, X) == {"prediction": [1, 1], "score": [0.7, 0.7],
                                        "probabilities": [{"0": 0.3, "1": 0.7}] * 2}
    multi = served_with(ThreeClasses(), {"task": "classification", "classes": ["a", "b", "c"]})
    assert outputs.score(multi, X) == {"prediction": ["b", "b"], "score": [0.5, 0.5],
                                       "probabilities": [{"a": 0.2, "b": 0.5, "c": 0.3}] * 2}
    for meta in ({"task": "regression"}, {}, {"task": "recommendation"}):
        assert not served_with(Regressor(), meta).classifier
        assert outputs.score(served_with(Regressor(), meta), X) == {"prediction": [12.5, 12.5], "score": [12.5, 12.5]}
    assert not served_with(Model(), {"task": "classification", "classes": [0, 1]}, flavor="pyfunc").classifier


class Known:
    """Two logged requests of one row each."""

    def get(self, rid):
        return 1 if rid in ("r0", "r1") else None


@pytest.mark.parametrize("meta, label, stored, error", [
    ({"task": "classification", "classes": [0, 1]}, 1, 1, None),
    ({"task": "classification", "classes": [0, 1]}, 1.0, 1, None),
    ({"task": "classification", "classes": ["no", "yes"]}, "yes", "yes", None),
    ({"task": "classification", "classes": [0, 1]}, True, None, "the label must be one of the model's classes [0, 1], got True"),
    ({"task": "classification", "classes": [0, 1]}, "1", None, "the label must be one of the model's classes [0, 1], got '1'"),
    ({"task": "regression"}, 3, 3.0, None),
    ({"task": "regression"}, "3", None, "the label must be a finite number, got '3'"),
    ({}, float("inf"), None, "the label must be a finite number, got inf"),  # a model saved before `task`: a number
])
def test_a_table_models_labels_are_checked_by_its_task(meta, label, stored, error):
    """The generic feedback path checks a label with the task's `feedback_label` hook: the same
    entries, messages and statuses as when the check lived in serving/feedback.py."""
    from mlcycle.core.errors import ClientError
    from mlcycle.serving import feedback

    items = [{"request_id": "r0", "row": 0, "label": label}]
    if error is None:
        out = feedback.checked(items, meta, Known(), set())
        assert out == [{"request_id": "r0", "row": 0, "label": stored}] and type(out[0]["label"]) is type(stored)
        return
    with pytest.raises(ClientError) as err:
        feedback.checked([{"request_id": "r1", "row": 0, "label": 0 if meta.get("task") == "classification" else 1.0},
                          *items], meta, Known(), set())
    assert (err.value.status, err.value.error, err.value.field, err.value.detail) == (422, "wrong label type",
                                                                                      "[1].label", error)


# ---------------------------------------------------------------- contracts: sizes, examples, strict types, timeouts

def test_a_text_value_longer_than_the_limit_is_refused_naming_the_column(app_for):
    with app_for(max_text_chars=10) as c:
        r = c.post("/predict", json={"dataframe_records": [ROW, {**ROW, "carrier": "x" * 11}]})
        assert (r.status_code, r.json()["error"], r.json()["field"], r.json()["row"]) == (422, "text too long", "carrier", 1)
        assert "serve.max_text_chars" in r.json()["detail"]
        split = {"dataframe_split": {"columns": ["distance", "carrier"], "data": [[1.0, "x" * 11]]}}
        assert c.post("/predict", json=split).json()["field"] == "carrier"
        assert c.post("/predict", json={"dataframe_records": [{**ROW, "carrier": "x" * 10}]}).status_code == 200


def test_every_published_example_is_answered_and_the_feedback_schema_is_strict(app_for):
    """The OpenAPI document's examples pass every check (the example's rows leave a nullable
    column out); the /feedback body is one entry or a batch, `{}` and unknown fields outside it."""
    with app_for() as c:
        api = c.get("/openapi.json").json()
        (example,) = api["components"]["schemas"]["PredictRequest"]["examples"]
        r = c.post("/predict", json=example)
        assert r.status_code == 200, r.text
        body = api["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]
        for ex in body["examples"].values():  # a made-up request id: refused only for being unknown
            r = c.post("/feedback", json=ex["value"])
            assert (r.status_code, r.json()["error"]) == (404, "unknown request id"), r.text
        entry, batch = body["schema"]["oneOf"]
        assert entry["required"] == ["request_id", "label"] and entry["additionalProperties"] is False
        assert batch["required"] == ["feedback"] and batch["additionalProperties"] is False
        rid = c.post("/predict", json={"dataframe_records": [ROW]}).json()["request_id"]
        r = c.post("/feedback", json={"feedback": [{"request_id": rid, "label": 1}], "source": "x"})
        assert (r.status_code, r.json()["error"], r.json()["field"]) == (422, "unknown field", "source")
        assert c.post("/feedback", json={"feedback": [{"request_id": rid, "label": 1}]}).json() == {"accepted": 1}


class Recommender:
    def predict(self, X):
        import pandas as pd

        return pd.DataFrame({"item": ["10", "11"][: int(X["k"].iloc[0])], "score": [0.9, 0.8][: int(X["k"].iloc[0])],
                             "source": "hybrid"})


def recommender() -> Served:
    return Served(Recommender(), "pyfunc", {"name": "rec", "version": "1"},
                  (Column("user", "string"), Column("k", "long"), Column("exclude", "string")),
                  {"task": "recommendation", "model": "hybrid", "rating_min": 0.5, "rating_max": 5.0})


@pytest.mark.parametrize("body, field", [
    ({"user": True}, "user"), ({"user": 1.5}, "user"), ({"user": "1", "k": "5"}, "k"), ({"user": "1", "k": True}, "k"),
    ({"user": "1", "k": 10**400}, "k"), ({"user": "1", "exclude": ["318,296"]}, "exclude"),
    ({"user": "1", "exclude": ["\udfff"]}, "exclude"), ({"user": "\ud800"}, "user"), ({"user": "1", "extra": 1}, "extra"),
    ({"user": "1", "exclude": [2**64]}, "exclude")])
def test_recommend_types_are_strict_and_bounded(app_for, body, field):
    with app_for(served=recommender()) as c:
        r = c.post("/recommend", content=json.dumps(body), headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["field"] == field, r.text
        assert c.post("/recommend", json={"user": 1, "k": 2, "exclude": [5, "7"]}).status_code == 200  # still serving
        (example,) = c.get("/openapi.json").json()["components"]["schemas"]["RecommendRequest"]["examples"]
        assert c.post("/recommend", json=example).status_code == 200


def test_recommend_feedback_ratings_are_bounded_and_the_endpoint_is_counted_and_guarded(app_for):
    with app_for(served=recommender(), token="t0k") as c:
        auth = {"Authorization": "Bearer t0k"}
        # the token is checked before the body: a malformed body without it is a 401, not a 400
        assert c.post("/recommend", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 401
        rid = c.post("/recommend", json={"user": "1", "k": 2}, headers=auth).json()["request_id"]
        r = c.post("/feedback", content=b'{"request_id": "%s", "item": "10", "rating": %s}' % (rid.encode(), b"9" * 400),
                   headers={**auth, "Content-Type": "application/json"})
        assert (r.status_code, r.json()["field"]) == (422, "rating"), r.text
        assert c.post("/feedback", json={"request_id": rid, "item": "10", "rating": 4.0}, headers=auth).json() == {"accepted": 1}
        metrics = c.get("/metrics").text
    assert 'endpoint="other"' not in metrics
    served = [line for line in metrics.splitlines()
              if line.startswith('mlcycle_serve_requests_total{endpoint="/recommend"') and 'status="200"' in line]
    assert served and all('route="champion"' in line and 'version=""' not in line for line in served), served


@pytest.fixture
def uvicorn_server():
    """A real uvicorn server on 127.0.0.1 in a thread, serving the app given; stopped after the test."""
    import threading

    import uvicorn

    from mlcycle.lifecycle.experiments import free_port

    started = []

    def start(application, **config):
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="on", **config))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        started.append((server, thread))
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return port

    yield start
    for server, thread in started:
        server.should_exit = True
        thread.join(30)


def test_an_idle_partial_body_is_answered_408_and_closed(app_for, uvicorn_server):
    import socket

    timeout = 0.5
    port = uvicorn_server(app_for(asgi=True, body_timeout_seconds=timeout))
    socks = []
    for _ in range(5):  # several stalled clients at once
        sock = socket.create_connection(("127.0.0.1", port), timeout=30 * timeout)
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"dataframe_records\": [")
        socks.append(sock)
    start = time.monotonic()
    for sock in socks:
        got = b""
        while chunk := sock.recv(65536):  # until the server closes the connection
            got += chunk
        sock.close()
        assert got.startswith(b"HTTP/1.1 408"), got[:200]
        assert b"serve.body_timeout_seconds" in got
    assert time.monotonic() - start < 20 * timeout
    import httpx

    assert httpx.post(f"http://127.0.0.1:{port}/predict", json={"dataframe_records": [ROW]}).status_code == 200


def test_idle_and_partial_headers_are_answered_408_and_closed(app_for, uvicorn_server):
    """Connections that stop inside their request line or headers reach no app code: the server's
    protocol answers them 408 and closes them after the deadline (one that sends nothing is closed
    without an answer), and keeps serving; a keep-alive connection gets the deadline again after each
    answer."""
    import socket

    import httpx

    from mlcycle.serving.protocol import HeaderDeadline

    class Fast(HeaderDeadline):
        seconds = 0.5

    port = uvicorn_server(app_for(asgi=True), http=Fast)
    starts = [b"", b"POST /pred", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty"]
    socks = []
    for start in starts * 3:
        sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        sock.sendall(start)
        socks.append(sock)
    for start, sock in zip(starts * 3, socks, strict=True):
        got = b""
        while chunk := sock.recv(65536):  # until the server closes the connection
            got += chunk
        sock.close()
        if start:
            assert got.startswith(b"HTTP/1.1 408"), got[:200]
            assert b"serve.body_timeout_seconds" in got
        else:
            assert got == b""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:  # one keep-alive connection
        assert http.post("/predict", json={"dataframe_records": [ROW]}).status_code == 200
        time.sleep(1.0)  # past the deadline between two requests: a fresh request on a new connection works
        assert http.post("/predict", json={"dataframe_records": [ROW]}).status_code == 200
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)  # a request, then a stalled second one
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /heal")
    got = b""
    while chunk := sock.recv(65536):
        got += chunk
    sock.close()
    assert got.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 408" in got, got[:400]


def test_a_body_streamed_past_the_limit_is_refused_and_not_read(app_for, uvicorn_server):
    """10x the limit sent in chunks without Content-Length: a 413 naming the limit, and the server
    stops reading (the connection is closed rather than drained)."""
    import httpx

    limit = 100_000
    port = uvicorn_server(app_for(asgi=True, max_body_bytes=limit))
    sent = [0]

    def chunks():
        yield b'{"dataframe_records": [{"distance": 1.0, "carrier": "'
        for _ in range(100):
            sent[0] += 10_000
            yield b"x" * 10_000
        yield b'"}]}'

    try:
        r = httpx.post(f"http://127.0.0.1:{port}/predict", content=chunks(), headers={"Content-Type": "application/json"})
        assert (r.status_code, r.json()["error"]) == (413, "body too large") and str(limit) in r.json()["detail"]
        assert r.headers["connection"] == "close"
    except httpx.RemoteProtocolError:  # closed while the client was still sending: not read either
        pass
    assert httpx.post(f"http://127.0.0.1:{port}/predict", json={"dataframe_records": [ROW]}).status_code == 200


class TimeModel:
    """Reads `carrier` as a time, as a tabular model reads its time column (`tables.parse_series`)."""

    def predict_proba(self, X):
        from mlcycle.core.errors import DataError
        from mlcycle.core.tables import parse_series

        try:
            parse_series(X["carrier"], "carrier", key="time column")
        except DataError as exc:
            raise ValueError(str(exc)) from None
        return np.tile([0.3, 0.7], (len(X), 1))


def test_a_time_the_model_cannot_read_is_a_422_naming_the_column(app_for):
    served = Served(TimeModel(), "sklearn", {"name": "m", "version": "1"}, COLUMNS,
                    {"task": "classification", "classes": [0, 1], "positive_class": 1})
    with app_for(served=served) as c:
        r = c.post("/predict", json={"dataframe_records": [{**ROW, "carrier": "9999-12-31T00:00:00"}]})
        assert (r.status_code, r.json()["field"]) == (422, "carrier") and "outside the times" in r.json()["detail"]
        assert c.post("/predict", json={"dataframe_records": [{**ROW, "carrier": "2013-01-01T05:00:00"}]}).status_code == 200
