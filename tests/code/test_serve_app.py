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
