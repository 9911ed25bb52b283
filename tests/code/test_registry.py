"""Registry operations against a real embedded MLflow store (SQLite in a temporary folder)."""

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config
from mlcycle.core.errors import MonitorError, RegistryError
from mlcycle.lifecycle import audit as auditlog
from mlcycle.lifecycle import gate, registry
from mlcycle.runtime import tracking
from tests.conftest import make_workspace


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("reg") / "ws", git=False)
    params = config.load(ws / "params.yaml")
    client, exp = tracking.setup(ws, params)
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"a": np.arange(20.0)})
    y = (X["a"] > 9).astype(int)
    model_dir = ws / "m"
    mlflow.sklearn.save_model(LogisticRegression().fit(X, y), str(model_dir), serialization_format="cloudpickle")
    versions = []
    for _ in range(3):
        rid = client.create_run(exp).info.run_id
        versions.append(registry.register(client, "m", rid, model_dir, {"data_md5": "abc"}))
    return ws, client, versions, X


def test_store_is_absolute_sqlite_in_workspace(store):
    ws, *_ = store
    assert (ws / "mlruns" / "mlflow.db").exists()
    assert tracking.tracking_uri(ws, config.load(ws / "params.yaml")) == f"sqlite:///{ws / 'mlruns' / 'mlflow.db'}"


def test_gate_promote_reject_promote_rollback_audit(store):
    ws, client, (v1, v2, v3), X = store
    audit = ws / "mlruns" / "audit.jsonl"
    P = config.GateParams(minimums={"roc_auc": 0.6})
    registry.apply_decision(client, audit, "m", gate.decide({"roc_auc": 0.8}, None, P, v1))
    assert str(registry.champion(client, "m").version) == v1
    registry.apply_decision(client, audit, "m", gate.decide({"roc_auc": 0.5}, {"roc_auc": 0.8}, P, v2, v1))
    assert str(registry.champion(client, "m").version) == v1
    assert client.get_model_version("m", v2).tags["gate.decision"] == "rejected"
    # a rejected version gets no alias: `challenger` is the default release candidate (serve.release)
    assert client.get_model_version("m", v2).aliases == []
    with pytest.raises(Exception, match="challenger not found"):
        client.get_model_version_by_alias("m", "challenger")
    assert "the gate rejected it" in registry.candidate_refusal(client, "m", v2)
    assert registry.candidate_refusal(client, "m", v1) is None
    assert "never judged" in registry.candidate_refusal(client, "m", v3)
    registry.promote(client, audit, "m", v3, "manual")
    registry.rollback(client, audit, "m", "v3 misbehaves")
    assert str(registry.champion(client, "m").version) == v1
    actions = [e["action"] for e in auditlog.read(audit, "m")]
    assert actions == ["gate-promote", "gate-reject", "promote", "rollback"]
    entry = auditlog.read(audit, "m")[-1]
    assert entry["from_version"] == v3 and entry["to_version"] == v1 and entry["who"] and entry["reason"] == "v3 misbehaves"
    assert any(k.startswith("audit.") for k in client.get_registered_model("m").tags)
    table = registry.versions_table(client, "m")
    assert table.set_index("version").loc[int(v1), "aliases"] == "champion"


def test_rescore_champion_and_errors(store):
    ws, client, (v1, v2, v3), X = store
    version, metrics, note = registry.rescore_champion(client, "m", v2, lambda m, meta: {"n": float(m.predict(X).sum())})
    assert version == str(registry.champion(client, "m").version) and metrics == {"n": 10.0} and "re-scored" in note
    version, metrics, note = registry.rescore_champion(client, "m", v2, lambda m, meta: m.predict(X[["a", "a"]].set_axis(["x", "y"], axis=1)))
    assert version is None and "cannot score" in note
    with pytest.raises(RegistryError, match="has no version 99"):
        registry.promote(client, ws / "mlruns" / "audit.jsonl", "m", "99", "typo")


def test_regression_decision_tags_gate_value_and_models_table_shows_it(store):
    ws, client, _, X = store
    audit = ws / "mlruns" / "audit.jsonl"
    rid = client.create_run(client.get_experiment_by_name("mlcycle").experiment_id).info.run_id
    v = registry.register(client, "reg", rid, ws / "m", {"data_md5": "abc"})
    d = gate.decide({"rmse": 10.0, "mae": 7.0, "r2": 0.45}, None, config.GateParams(), v,
                    baseline={"rmse": 12.0, "mae": 9.0, "r2": 0.2})
    registry.apply_decision(client, audit, "reg", d)
    tags = client.get_model_version("reg", v).tags
    assert tags["gate.metric"] == "rmse" and tags["gate.value"] == "10.000000"
    assert "2 criteria passed" in tags["gate.summary"] and "r2 >= minimum" in tags["gate.summary"]
    row = registry.versions_table(client, "reg").set_index("version").loc[int(v)]
    assert row["value"] == "10.000000" and row["aliases"] == "champion"


def test_no_champion_message_names_the_rejection_and_the_ways_forward(store):
    ws, client, _, X = store
    audit = ws / "mlruns" / "audit.jsonl"
    uri = "models:/lonely@champion"
    assert registry.unresolved_message(client, "lonely", uri) is None  # no version yet: `make repro` is right
    rid = client.create_run(client.get_experiment_by_name("mlcycle").experiment_id).info.run_id
    v = registry.register(client, "lonely", rid, ws / "m", {})
    d = gate.decide({"roc_auc": 0.55}, None, config.GateParams(), v)
    registry.apply_decision(client, audit, "lonely", d)
    assert registry.champion(client, "lonely") is None
    msg = registry.unresolved_message(client, "lonely", uri)
    assert f"the gate rejected version {v}" in msg and "roc_auc >= minimum: 0.5500 vs 0.6000" in msg
    assert f"`mlcycle model promote --model {v} --reason" in msg and f"`mlcycle serving start --model {v}`" in msg
    assert "make repro" in msg and len(msg) < 800
    assert "`mlcycle monitoring run --model" in registry.unresolved_message(client, "lonely", uri, command="monitoring run")

    from mlcycle.core.errors import ServeError
    from mlcycle.serving import model, server
    from mlcycle.serving.settings import settings as serve_settings

    with pytest.raises(ServeError, match=f"the gate rejected version {v}"):
        model.load(client, uri)
    settings = serve_settings(ws, config.load(ws / "params.yaml"), model_uri=uri)
    with pytest.raises(ServeError, match=f"serving start: {uri} does not resolve: 1 version registered"):
        server.run(settings)  # `mlcycle serving start`: fails before starting uvicorn
    from mlcycle.monitoring import monitor

    with pytest.raises(MonitorError, match=f"monitoring run: {uri} does not resolve.*mlcycle monitoring run --model"):
        monitor.run(ws, config.load(ws / "params.yaml"), current="unused.csv", model_uri=uri)


def test_promoting_the_champion_again_is_an_error_and_records_nothing(store):
    ws, client, (v1, v2, v3), X = store
    audit = ws / "mlruns" / "audit.jsonl"
    champ = str(registry.champion(client, "m").version)
    before = auditlog.read(audit, "m")
    with pytest.raises(RegistryError, match=f"v{champ} already is the champion"):
        registry.promote(client, audit, "m", champ, "again")
    for bad in ("", "   ", None):
        with pytest.raises(RegistryError, match="--reason is empty"):
            registry.promote(client, audit, "m", v2, bad)
        with pytest.raises(RegistryError, match="--reason is empty"):
            registry.rollback(client, audit, "m", bad)
    assert auditlog.read(audit, "m") == before
    assert str(registry.champion(client, "m").version) == champ
    assert auditlog.verify_chain(before) == []
    assert (ws / "mlruns" / "audit.jsonl.lock").exists()


def test_rollback_with_nothing_to_roll_back_to_says_so(store):
    ws, client, (v1, v2, v3), X = store
    audit = ws / "mlruns" / "audit-n.jsonl"
    rid = client.create_run(client.get_experiment_by_name("mlcycle").experiment_id).info.run_id
    n1 = registry.register(client, "n", rid, ws / "m", {})
    registry.promote(client, audit, "n", n1, "first")
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback(client, audit, "n", "why not")
    # a legacy self-move (v1 -> v1, recorded before promotions of the champion were refused) is no earlier champion
    auditlog.append(audit, client, "n", "promote", n1, n1, "legacy self-move")
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback(client, audit, "n", "why not")


def test_verify_chain_finds_a_break():
    e = [{"action": "gate-promote", "from_version": None, "to_version": "1"},
         {"action": "gate-reject", "from_version": "1", "to_version": "1"},
         {"action": "promote", "from_version": "1", "to_version": "2"},
         {"action": "rollback", "from_version": "2", "to_version": "1"}]
    assert auditlog.verify_chain(e) == []
    # what two unlocked promotions wrote: both read v2 as the champion
    broken = e + [{"action": "promote", "from_version": "1", "to_version": "3", "when": "t"},
                  {"action": "promote", "from_version": "1", "to_version": "2", "when": "t"}]
    out = auditlog.verify_chain(broken)
    assert len(out) == 1 and "entry 6" in out[0] and "left v3" in out[0]


def test_history_lists_versions_gate_values_and_champion_moves(store):
    ws, client, _, X = store
    audit = ws / "mlruns" / "audit.jsonl"
    exp = client.get_experiment_by_name("mlcycle").experiment_id
    v1, v2, v3 = (registry.register(client, "hist", client.create_run(exp).info.run_id, ws / "m", {}) for _ in range(3))
    P = config.GateParams(minimums={"roc_auc": 0.6})
    registry.apply_decision(client, audit, "hist", gate.decide({"roc_auc": 0.8}, None, P, v1))
    registry.apply_decision(client, audit, "hist", gate.decide({"roc_auc": 0.7}, {"roc_auc": 0.8}, P, v2, v1))
    registry.promote(client, audit, "hist", v3, "manual")
    registry.rollback(client, audit, "hist", "v3 misbehaves")
    h = registry.history(client, "hist", audit)
    assert h["model"] == "hist" and h["champion"] == v1
    assert [v["version"] for v in h["versions"]] == [v1, v2, v3]
    assert [v["value"] for v in h["versions"]] == [0.8, 0.7, None]  # v3 was promoted by hand: no gate value
    assert [v["decision"] for v in h["versions"][:2]] == ["promoted", "rejected"]
    assert [(m["action"], m["to_version"]) for m in h["moves"]] == [("gate-promote", v1), ("promote", v3), ("rollback", v1)]
    assert registry.history(client, "no-such-model", audit) == {"model": "no-such-model", "versions": [], "moves": [],
                                                                "champion": None}


class Ranker:
    """A stand-in for a recommender's pyfunc Python model."""

    def predict(self, context, model_input, params=None):
        return model_input


def test_load_version_loads_a_model_the_way_its_task_says(store):
    """A table model's version is its scikit-learn pipeline; a recommender's (task hook `load`) the
    Python model inside its pyfunc; the metadata comes with either."""
    import mlflow.pyfunc

    from mlcycle.core import tasks

    ws, client, (v1, *_), X = store
    model, meta = registry.load_version(client, "m", v1)
    assert hasattr(model, "predict_proba") and meta == {}  # saved without mlcycle metadata: the pipeline
    assert tasks.get("tabular").hook("load") is None and tasks.get("recommender").hook("load") is not None

    class PyRanker(Ranker, mlflow.pyfunc.PythonModel):
        pass

    folder = ws / "ranker"
    mlflow.pyfunc.save_model(str(folder), python_model=PyRanker(),
                             metadata={"mlcycle": {"task": "recommendation", "model": "hybrid"}})
    _, exp = tracking.setup(ws, config.load(ws / "params.yaml"))
    v = registry.register(client, "ranker", client.create_run(exp).info.run_id, folder, {})
    model, meta = registry.load_version(client, "ranker", v)
    assert isinstance(model, Ranker) and meta == {"task": "recommendation", "model": "hybrid"}
