"""`mlcycle model reproduce` end to end on the shared user-data workspace (tests/pipeline/conftest.py: one
`dvc repro` of churn.csv, whose version 1 is the champion). Version 1 is rebuilt from its lineage in
a temporary worktree and found identical: inputs, metrics and holdout predictions bit for bit; the
workspace's registry, audit log and git worktrees are as they were, and no temporary folder is left.
A version whose commit the repository does not hold is refused (exit 2) before anything runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import env, mlflow_client, run

pytestmark = pytest.mark.slow


def model_name(ws: Path) -> str:
    from mlcycle.core import config

    return config.load(ws / "params.yaml").tracking.model_name  # derived from the data when params say null


def registry_state(ws: Path) -> tuple:
    """Every version with its aliases and tags, and the audit log's bytes."""
    c = mlflow_client(ws)
    name = model_name(ws)
    versions = [c.get_model_version(name, mv.version) for mv in c.search_model_versions(f"name = '{name}'")]
    audit = ws / "mlruns" / "audit.jsonl"
    return (sorted((mv.version, tuple(sorted(mv.aliases)), tuple(sorted(mv.tags.items()))) for mv in versions),
            audit.read_bytes() if audit.exists() else None)


def leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("mlcycle-reproduce-*")}


def test_version_1_is_rebuilt_identically(user_ws, tmp_path):
    before, temp_before = registry_state(user_ws), leftovers()
    report = tmp_path / "reproduce.json"
    proc = run(["mlcycle", "model", "reproduce", "--model", "1", "--json", str(report)], user_ws, check=False, timeout=1500)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    out = proc.stdout
    for line in ("inputs            identical", "params            identical", "train metrics     identical",
                 "evaluate metrics  identical", "predictions       identical"):
        assert line in out, out
    assert out.splitlines()[-1].startswith(f"identical: {model_name(user_ws)} v1 was rebuilt from its lineage")
    doc = json.loads(report.read_text())
    assert doc["identical"] is True and doc["lineage"]["version"] == "1"
    assert doc["inputs"]["data"]["original"] == doc["inputs"]["data"]["rebuilt"] == doc["lineage"]["data_md5"]
    train_deps = yaml.safe_load((user_ws / "dvc.lock").read_text())["stages"]["train"]["deps"]
    assert doc["inputs"]["compared"] == len(train_deps) >= 5  # every DVC-hashed input of the train stage
    assert doc["metrics"]["train"]["compared"] > 3
    assert doc["metrics"]["evaluate"]["identical"] is True and doc["metrics"]["evaluate"]["compared"] > 10
    p = doc["predictions"]
    assert p["compared"] and p["identical"] and p["rows"] > 100 and p["rows_differing"] == 0
    # nothing registered, promoted or audited in the workspace; the worktree and its folder are gone
    assert registry_state(user_ws) == before
    assert run(["git", "worktree", "list", "--porcelain"], user_ws).stdout.count("worktree ") == 1
    assert leftovers() <= temp_before


def test_a_commit_the_repository_does_not_hold_is_refused(user_ws, tmp_path):
    """On a copy of the workspace's store whose version 1 names a commit that was never made."""
    db = tmp_path / "mlflow.db"
    shutil.copy2(user_ws / "mlruns" / "mlflow.db", db)
    uri = f"sqlite:///{db}"
    import mlflow

    name, missing = model_name(user_ws), "5" * 40
    mlflow.MlflowClient(uri, registry_uri=uri).set_model_version_tag(name, "1", "git_commit", missing)
    e = {**env(), "MLFLOW_TRACKING_URI": uri}
    proc = subprocess.run(["mlcycle", "model", "reproduce", "--model", "1"], cwd=user_ws, env=e, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (f"mlcycle: reproduce: commit 555555555555 of {name} v1 is not in this repository; fetch it "
            "(`git fetch --all`), or run this in the clone it was trained in") in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
