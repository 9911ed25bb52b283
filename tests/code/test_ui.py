"""The MLflow UI the workspace serves (`mlflow ui --app-name mlcycle`, src/mlcycle/runtime/ui.py):
a real server on a temporary store; its page at / carries the landing script with the experiment's
id, and the rest of MLflow answers as before. The browser test (tests/browser/test_mlflow_ui.py)
checks what a browser shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from mlcycle.lifecycle.experiments import free_port
from mlcycle.runtime import ui
from tests.conftest import ROOT, stop, wait_http

BIN = Path(sys.executable).parent


def test_the_landing_script_sets_the_view_only_when_none_is_chosen_and_opens_the_runs():
    script = ui.landing_script("7")
    assert "#/experiments/7/runs" in script and '"mlflow.workflowType_v1"' in script
    assert 'if(!s.getItem("mlflow.workflowType_v1"))s.setItem("mlflow.workflowType_v1","\\"machine_learning\\"")' in script
    assert 'if(!s.getItem("mlflow.assistant.fab.autoOpenedOnFirstLoad_v1"))' in script
    assert "#/experiments\"" in ui.landing_script(None)
    page = ui.with_landing("<html><head><title>MLflow</title></head></html>", "7")
    assert page.startswith("<html><head><script>") and page.count("<script>") == 1


def test_the_experiment_is_the_workspaces_unless_named(monkeypatch, tmp_path):
    monkeypatch.delenv(ui.EXPERIMENT_ENV, raising=False)
    assert ui.experiment_name(ROOT) == "mlcycle"  # params.yaml's tracking.experiment
    monkeypatch.setenv(ui.EXPERIMENT_ENV, "team-experiment")
    assert ui.experiment_name(tmp_path) == "team-experiment"


def test_the_server_serves_the_landing_page_and_the_rest_of_mlflow(tmp_path):
    import mlflow

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(store, store)
    client.create_experiment("first")
    exp_id = client.create_experiment("mlcycle-ui-test")
    port = free_port()
    env = {**os.environ, "MLCYCLE_UI_EXPERIMENT": "mlcycle-ui-test"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = tmp_path / "ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(BIN / "mlflow"), "ui", "--app-name", "mlcycle", "--backend-store-uri", store,
                                 "--default-artifact-root", str(tmp_path / "artifacts"), "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", "1"], cwd=tmp_path, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", proc, log, "mlflow ui --app-name mlcycle")
        page = httpx.get(f"{url}/", timeout=30)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert f"#/experiments/{exp_id}/runs" in page.text and "<script>(function(){" in page.text
        assert 'id="root"' in page.text  # MLflow's own page, with the script added
        found = httpx.get(f"{url}/api/2.0/mlflow/experiments/get-by-name",
                          params={"experiment_name": "mlcycle-ui-test"}, timeout=30)
        assert found.status_code == 200 and json.loads(found.text)["experiment"]["experiment_id"] == exp_id
    finally:
        stop(proc)
