"""The warm tracking daemon (mlcycle.trackd): a stage it serves is recorded exactly as one whose
tracking process was forked fresh; it takes the stage's environment, records a killed stage as
FAILED, exits when idle, and is not used when turned off or when its folder is not private."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from mlcycle.core.paths import Paths
from mlcycle.runtime import trackd
from tests.conftest import SAMPLE, edit_params, env, make_workspace, mlflow_client, run

pytestmark = pytest.mark.slow


def stage_runs(ws: Path, stage: str):
    c = mlflow_client(ws)
    exp = c.get_experiment_by_name("mlcycle")
    runs = c.search_runs([exp.experiment_id], filter_string=f"tags.`mlcycle.stage` = '{stage}'",
                         order_by=["start_time ASC"])
    return c, runs


def set_notebook(ws: Path, stage: str, code: str) -> None:
    """The workspace's notebook of `stage` (its task's, tabular for the flights copy) reduced to its
    parameters cell and `code`."""
    path = Paths(ws).notebook(stage, "tabular")
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    cell = nbformat.v4.new_code_cell(code)
    cell.id = "cell-test"
    nb.cells.append(cell)
    nbformat.write(nb, path)


@pytest.fixture
def own_dir(monkeypatch):
    """A daemon folder of this test's own (short: socket paths are limited to about 100 bytes)."""
    d = tempfile.mkdtemp(prefix="trackd-")
    monkeypatch.setenv(trackd.ENV_DIR, d)
    for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # as the stages see it (conftest.env)
        monkeypatch.delenv(k, raising=False)
    yield Path(d)
    trackd.stop_all()
    shutil.rmtree(d, ignore_errors=True)


def wait_for(predicate, seconds: float = 90) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def logs(d: Path) -> str:
    return "\n".join(f.read_text()[-2000:] for f in d.glob("*.log"))


def daemon_up() -> bool:
    conn = trackd.connect()
    if conn is None:
        return False
    conn.close()
    return True


def test_warm_run_records_what_a_forked_run_records(tmp_path, own_dir):
    ws = make_workspace(tmp_path / "ws", {"ingest": SAMPLE["ingest"], "validate": SAMPLE["validate"],
                                          "tracking": {"daemon_idle_minutes": 0}})
    run(["python", "-m", "mlcycle", "run", "ingest"], ws)
    run(["python", "-m", "mlcycle", "run", "validate"], ws)  # forked, and no daemon started
    assert not daemon_up() and not list(own_dir.glob("*.log"))
    edit_params(ws, {"tracking": {"daemon_idle_minutes": 5}})
    run(["python", "-m", "mlcycle", "run", "validate"], ws)  # forked again, and starts the daemon
    log = own_dir / f"{trackd.key()}.log"
    assert wait_for(daemon_up), log.read_text() if log.exists() else "no log"
    status = subprocess.run([sys.executable, "-m", "mlcycle.runtime.trackd", "status"], env=env(), capture_output=True, text=True)
    assert status.returncode == 0 and "'pid'" in status.stdout

    e = env()
    e["DVC_EXP_NAME"] = "warm-check"  # the stage's own environment, not the daemon's, must reach the hooks
    subprocess.run(["python", "-m", "mlcycle", "run", "validate"], cwd=ws, env=e, check=True, capture_output=True)

    c, runs = stage_runs(ws, "validate")
    assert [r.data.tags["mlcycle.tracking.process"] for r in runs] == ["forked", "forked", "warm"]
    forked, _, warm = runs
    assert warm.info.status == forked.info.status == "FINISHED"
    assert warm.data.tags["mlcycle.dvc_experiment"] == "warm-check" and "mlcycle.dvc_experiment" not in forked.data.tags
    assert set(warm.data.tags) - {"mlcycle.dvc_experiment"} == set(forked.data.tags)
    assert warm.data.params == forked.data.params
    assert warm.data.metrics == forked.data.metrics and warm.data.metrics
    for key in ("mlflow.source.git.commit", "mlcycle.dvc.deps.data/raw/nycflights13/flights.parquet",
                "mlcycle.dvc.deps.notebooks/tabular/02_validate.ipynb"):
        assert warm.data.tags[key] == forked.data.tags[key], key
    assert [i.dataset.digest for i in warm.inputs.dataset_inputs] == [i.dataset.digest for i in forked.inputs.dataset_inputs]

    def artifacts(r):
        return sorted(a.path for a in c.list_artifacts(r.info.run_id, "report"))

    assert artifacts(warm) == artifacts(forked) == ["report/validate.html", "report/validate.ipynb"]


def test_a_killed_stage_is_recorded_failed_by_the_daemon(tmp_path, own_dir):
    ws = make_workspace(tmp_path / "ws")
    set_notebook(ws, "validate", "import time\ntime.sleep(120)")
    run(["git", "commit", "-qam", "slow validate"], ws)
    trackd.launch(5)
    assert wait_for(daemon_up)
    # create the store's tables now: this test reads the store while the stage runs, and two
    # processes creating a new SQLite store's tables at once fail (one sees "table already exists")
    (ws / "mlruns").mkdir()
    mlflow_client(ws).search_experiments()
    proc = subprocess.Popen(["python", "-m", "mlcycle", "run", "validate"], cwd=ws, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def running():
            try:  # no experiment yet until the stage's tracking process has started
                return any(r.info.status == "RUNNING" for r in stage_runs(ws, "validate")[1])
            except Exception:
                return False

        assert wait_for(running), f"no RUNNING validate run; daemon log: {logs(own_dir)}"
        _, (r,) = stage_runs(ws, "validate")
        assert r.data.tags["mlcycle.tracking.process"] == "warm"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its kernel die without a word
        proc.wait()

    assert wait_for(lambda: stage_runs(ws, "validate")[1][0].info.status == "FAILED", 60), logs(own_dir)
    assert daemon_up()  # and it keeps serving


def test_idle_daemon_exits_and_zero_turns_it_off(tmp_path, own_dir):
    ws = make_workspace(tmp_path / "ws", {"ingest": SAMPLE["ingest"], "tracking": {"daemon_idle_minutes": 0.02}})
    run(["python", "-m", "mlcycle", "run", "ingest"], ws)
    log = own_dir / f"{trackd.key()}.log"
    assert wait_for(lambda: log.exists() and "serves" in log.read_text(), 90)  # started, warmed up, listening
    assert wait_for(lambda: not list(own_dir.glob("*.sock")) and not daemon_up(), 30)  # 1.2 s idle: gone

    off = make_workspace(tmp_path / "off", {"ingest": SAMPLE["ingest"], "tracking": {"daemon_idle_minutes": 0}})
    run(["python", "-m", "mlcycle", "run", "ingest"], off)
    time.sleep(3)
    assert not list(own_dir.glob("*.sock")) and log.read_text().count("serves") == 1  # none started
    _, (r,) = stage_runs(off, "ingest")
    assert r.data.tags["mlcycle.tracking.process"] == "forked" and r.info.status == "FINISHED"


def test_folder_must_be_private_and_key_follows_mlflow_settings(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    monkeypatch.setenv(trackd.ENV_DIR, str(shared))
    assert trackd.state_dir() is None and trackd.connect() is None
    trackd.launch(5)  # refuses quietly: nothing written there
    assert list(shared.iterdir()) == []
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = trackd.key()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert trackd.key() != before
