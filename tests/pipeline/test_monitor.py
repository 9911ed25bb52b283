"""Monitoring and retraining on a user's own data set (no time column): a same-distribution batch
triggers nothing, a planted shift is detected, named and retrains through the pipeline and the gate,
with every step linked in MLflow and the audit log; a bad batch is refused; the prediction log can
be monitored too."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SAMPLE, deep_merge, init_data, make_workspace, run

pytestmark = pytest.mark.slow
MODEL = "churn-model"

PARAMS = {  # on top of what `mlcycle init --data data/raw/customers.csv --target churn` writes
    "validate": {"min_rows": 100},
    "eda": SAMPLE["eda"],
    "split": {"test_size": 0.25},
    "train": {"max_iter": 30},
    "evaluate": {"slices": ["plan"], "bootstrap": 0, "explain_rows": 500},
    "tracking": {"model_name": MODEL},
    "monitor": {"min_rows": 300, "min_slice_rows": 50},
}


def customers(n: int, seed: int, prefix: str, shifted: bool = False) -> pd.DataFrame:
    """Churn data; `shifted`: long-tenure customers on the pro plan (every value inside the schema's ranges)."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(50, 72, n) if shifted else rng.integers(1, 72, n)
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.1, 0.2, 0.7] if shifted else [0.5, 0.3, 0.2])
    charges = np.clip(rng.normal(60, 20, n), 5, 115).round(2)
    logit = -0.05 * tenure + 0.03 * charges + np.where(plan == "basic", 0.8, 0)
    churn = np.where(rng.random(n) < 1 / (1 + np.exp(-(logit - 1.5))), "yes", "no")
    return pd.DataFrame({"customer_id": [f"{prefix}{i:05d}" for i in range(n)], "tenure": tenure, "plan": plan,
                         "monthly_charges": charges, "churn": churn})


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    ws = make_workspace(tmp_path_factory.mktemp("monitor") / "ws")
    customers(2000, 0, "C").to_csv(ws / "data/raw/customers.csv", index=False)
    init_data(ws, "data/raw/customers.csv", "churn", params=deep_merge({}, PARAMS))  # also proposes the schema
    run("git add -A && git commit -q -m 'customer data and its schema'", ws)
    run(["dvc", "repro"], ws, timeout=900)
    incoming = ws.parent / "incoming"
    incoming.mkdir()
    customers(1000, 1, "S").to_csv(incoming / "same.csv", index=False)
    customers(1000, 2, "D", shifted=True).to_csv(incoming / "shifted.csv", index=False)
    customers(1000, 3, "X").drop(columns=["plan"]).to_csv(incoming / "broken.csv", index=False)
    return ws


def batches(ws: Path) -> list[dict]:
    from mlcycle.core.tables import recorded_batches

    return recorded_batches(ws)


def client(ws: Path):
    import mlflow

    uri = f"sqlite:///{ws / 'mlruns' / 'mlflow.db'}"
    return mlflow.MlflowClient(uri, uri)


def versions(ws: Path) -> list[str]:
    return sorted(str(v.version) for v in client(ws).search_model_versions(f"name = '{MODEL}'"))


def test_same_distribution_batch_triggers_nothing(ws):
    before = versions(ws)
    out = run(["mlcycle", "monitoring", "retrain", "--input", str(ws.parent / "incoming" / "same.csv")], ws, timeout=600)
    assert "OK, retrain: no" in out.stdout and "not called for" in out.stdout
    v = json.loads((ws / "reports/monitor/verdict.json").read_text())
    assert v["drift"]["drifted"] == [] and v["retrain"] is False and v["current"]["labelled"]
    assert v["performance"]["metric"] == "roc_auc" and not v["performance"]["decayed"]
    assert versions(ws) == before
    assert not batches(ws)  # nothing added
    assert (ws / "reports/monitor.html").exists()


def test_bad_batch_is_refused_and_nothing_is_stored(ws):
    out = run(["mlcycle", "monitoring", "retrain", "--input", str(ws.parent / "incoming" / "broken.csv")], ws, check=False)
    assert out.returncode != 0
    assert "plan" in out.stderr and "failed validation" in out.stderr
    assert not (ws / "data/raw/batches").exists() and not batches(ws)


def test_dry_run_reports_and_changes_nothing(ws):
    out = run(["mlcycle", "monitoring", "retrain", "--dry-run", "--input", str(ws.parent / "incoming" / "shifted.csv")], ws, timeout=600)
    assert "retrain: yes" in out.stdout and "dry run" in out.stdout
    assert not batches(ws)


def test_planted_shift_is_named_retrains_and_the_lineage_is_linked(ws):
    c = client(ws)
    before = versions(ws)
    champion_before = str(c.get_model_version_by_alias(MODEL, "champion").version)
    out = run(["mlcycle", "monitoring", "retrain", "--input", str(ws.parent / "incoming" / "shifted.csv")], ws, timeout=900)
    assert "retrain: yes" in out.stdout
    assert "tenure" in out.stdout and "plan" in out.stdout  # the drifted features are named
    rec = batches(ws)
    assert [r["file"] for r in rec] == ["data/raw/batches/shifted.csv"]
    assert (ws / "data/raw/batches/shifted.csv.dvc").exists()
    new = sorted(set(versions(ws)) - set(before))
    assert len(new) == 1
    # lineage: audit entry -> monitor run (verdict artifact, judged version) -> pipeline runs -> new version
    entry = [json.loads(x) for x in (ws / "mlruns/audit.jsonl").read_text().splitlines()][-1]
    assert entry["action"] == "retrain" and entry["from_version"] == champion_before
    monitor_run = entry["details"]["monitor_run_id"]
    assert entry["details"]["candidate_version"] == new[0]
    mr = c.get_run(monitor_run)
    assert mr.data.tags["mlcycle.stage"] == "monitor" and mr.data.tags["mlcycle.monitor.retrain"] == "true"
    assert mr.data.tags["mlcycle.monitor.model_version"] == champion_before
    assert "monitor/verdict.json" in [a.path for a in c.list_artifacts(monitor_run, "monitor")]
    mv = c.get_model_version(MODEL, new[0])
    assert mv.tags["trigger_monitor_run"] == monitor_run
    assert mv.tags["gate.decision"] == entry["details"]["gate"]
    train_run = c.get_run(mv.run_id)
    assert train_run.data.tags["mlcycle.trigger.monitor_run"] == monitor_run
    parent = c.get_run(train_run.data.tags["mlflow.parentRunId"])  # the retraining's pipeline run groups its stages
    assert parent.data.tags["mlcycle.trigger.monitor_run"] == monitor_run
    assert c.get_model_version(MODEL, champion_before).tags["monitor.last_run_id"] == monitor_run
    # the retraining data is the base table plus the batch
    assert json.loads((ws / "reports/metrics/validate.json").read_text())["rows"] == 3000
    lock = (ws / "dvc.lock").read_text()
    assert "data/batches.jsonl" in lock


def test_monitor_reads_the_prediction_log(ws):
    from mlcycle.serving.predlog import Batch, PredictionLog

    rows = customers(600, 4, "L").drop(columns=["churn", "customer_id"])
    log = PredictionLog(ws / "data" / "predictions", max_rows=250)
    log.start()
    import datetime as dt

    for i in range(0, 600, 100):
        part = rows.iloc[i:i + 100]
        log.submit(Batch(part, {"prediction": ["no"] * len(part), "score": list(np.linspace(0.1, 0.6, len(part)))},
                         "1", f"req-{i}", dt.datetime.now(dt.UTC)))
    log.close()
    out = run(["mlcycle", "monitoring", "run", "--from-log", "--days", "1"], ws, timeout=600)
    v = json.loads((ws / "reports/monitor/verdict.json").read_text())
    assert v["current"]["rows"] == 600 and v["current"]["labelled"] is False
    assert v["performance"] is None and "drift" in v
    assert "prediction log" in out.stdout


def test_monitor_names_what_is_missing(ws, tmp_path):
    out = run([sys.executable, "-m", "mlcycle", "monitoring", "run", "--input", str(tmp_path / "nope.csv")], ws, check=False)
    assert out.returncode == 2 and "nope.csv" in out.stderr and "does not exist" in out.stderr


def test_scored_rows_read_partition_by_partition_give_the_in_memory_verdict(ws, tmp_path):
    """A folder of scored rows (here the prediction log's parts, as `mlcycle serving score` writes them):
    read in memory, and read partition by partition on a Dask cluster (monitor.max_memory_rows
    below its rows), the drift verdict is the same (every row counted; the tests' samples hold
    every row at this size)."""
    import shutil

    from tests.conftest import edit_params

    folder = tmp_path / "scored"
    shutil.copytree(ws / "data" / "predictions", folder)
    run(["mlcycle", "monitoring", "run", "--input", str(folder)], ws, timeout=600)
    in_memory = json.loads((ws / "reports/monitor/verdict.json").read_text())
    good = (ws / "params.yaml").read_text()
    edit_params(ws, {"monitor": {"max_memory_rows": 100}, "compute": {"workers": 2}})
    try:
        run(["mlcycle", "monitoring", "run", "--input", str(folder)], ws, timeout=600)
    finally:
        (ws / "params.yaml").write_text(good)
    streamed = json.loads((ws / "reports/monitor/verdict.json").read_text())
    assert in_memory["current"]["rows"] == streamed["current"]["rows"] == 600
    assert any("partition by partition" in n for n in streamed["current"]["notes"])
    assert not any("partition by partition" in n for n in in_memory["current"]["notes"])
    a, b = in_memory["drift"]["columns"], streamed["drift"]["columns"]
    assert [c["column"] for c in a] == [c["column"] for c in b]
    for x, y in zip(a, b, strict=True):
        for k in ("psi", "p_value", "distance", "null_cur", "mean_cur", "new_share"):
            assert (x[k] is None and y[k] is None) or x[k] == pytest.approx(y[k], rel=1e-9, abs=1e-12), (x["column"], k)
        assert x["drifted"] == y["drifted"] and x["new_categories"] == y["new_categories"]
    for k in ("psi", "p_value", "distance"):
        assert in_memory["score_drift"][k] == pytest.approx(streamed["score_drift"][k], rel=1e-9)
    assert in_memory["status"] == streamed["status"] and in_memory["reasons"] == streamed["reasons"]
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run(["mlcycle", "monitoring", "run", "--input", str(empty)], ws, check=False)
    assert out.returncode != 0 and "no part-*.parquet files" in out.stderr
