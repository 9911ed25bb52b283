"""The app in-process (FastAPI TestClient) on a stand-in model: what a 5xx body shows, the token
checked before the body, and 503 while the prediction log cannot be written."""

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
    served = Served(Model(), "sklearn", {"name": "m", "version": "1"}, COLUMNS,
                    {"task": "classification", "classes": [0, 1], "positive_class": 1})
    monkeypatch.setattr(model, "load", lambda *a, **k: served)

    def make(token=None, **kw):
        if token:
            monkeypatch.setenv("MLCYCLE_SERVE_TOKEN", token)
        else:
            monkeypatch.delenv("MLCYCLE_SERVE_TOKEN", raising=False)
        s = Settings("runs:/x/model", store, log_dir=str(tmp_path / "log"),
                           log_fallback_dir=str(tmp_path / "spill"), log_roll_seconds=0.1, **kw)
        return TestClient(app.create_app(s), raise_server_exceptions=False)
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
