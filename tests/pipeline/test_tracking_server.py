"""Stages recorded through a real `mlflow server` process (what parallel runs use)."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mlcycle.lifecycle.experiments import free_port
from tests.conftest import SAMPLE, env, make_workspace, run

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path):
    port = free_port()
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    proc = subprocess.Popen(
        [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", str(tmp_path / "artifacts")],
        env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not answer within 60 s")
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def test_stage_recorded_on_tracking_server(server, tmp_path):
    ws = make_workspace(tmp_path / "ws", params=SAMPLE)
    e = env()
    e["MLFLOW_TRACKING_URI"] = server
    proc = subprocess.run(["python", "-m", "mlcycle", "run", "ingest"], cwd=ws, env=e, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import mlflow

    c = mlflow.MlflowClient(server)
    runs = c.search_runs([c.get_experiment_by_name("mlcycle").experiment_id])
    assert [r.data.tags["mlcycle.stage"] for r in runs] == ["ingest"] and runs[0].info.status == "FINISHED"
    assert {a.path for a in c.list_artifacts(runs[0].info.run_id, "report")} == {"report/ingest.html", "report/ingest.ipynb"}
    assert not (ws / "mlruns").exists()  # nothing went to the embedded store
    run(["dvc", "status"], ws, check=False)
