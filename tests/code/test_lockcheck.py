"""`mlcycle pipeline lock-check`: dvc.lock against the committed code, notebooks and params, without running a stage."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mlcycle.runtime import lockcheck
from tests.conftest import ROOT, run

PIPELINE = {
    "stages": {
        "prepare": {"cmd": "python code/prepare.py", "deps": ["code/prepare.py", "data/raw.csv"],
                    "params": ["prepare.scale"], "outs": ["data/prepared.csv"]},
        "fit": {"cmd": "python code/fit.py", "deps": ["code/fit.py", "data/prepared.csv"],
                "params": ["fit"], "outs": ["model.txt"]},
    }
}
PREPARE = "import yaml\nk = yaml.safe_load(open('params.yaml'))['prepare']['scale']\n" \
          "open('data/prepared.csv', 'w').write(open('data/raw.csv').read() * k)\n"
FIT = "open('model.txt', 'w').write(str(len(open('data/prepared.csv').read())))\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A two-stage DVC pipeline, run once and committed: dvc.lock is current."""
    ws = tmp_path_factory.mktemp("lockcheck") / "p"
    (ws / "code").mkdir(parents=True)
    (ws / "data").mkdir()
    (ws / "code" / "prepare.py").write_text(PREPARE)
    (ws / "code" / "fit.py").write_text(FIT)
    (ws / "data" / "raw.csv").write_text("a,b\n1,2\n")
    (ws / "params.yaml").write_text(yaml.safe_dump({"prepare": {"scale": 2}, "fit": {"depth": 3}}))
    (ws / "dvc.yaml").write_text(yaml.safe_dump(PIPELINE, sort_keys=False))
    run(["git", "init", "-q"], ws)
    run(["dvc", "init", "-q"], ws)
    run(["dvc", "add", "-q", "data/raw.csv"], ws)
    run(["dvc", "repro", "-q"], ws)
    run(["git", "add", "-A"], ws)
    run(["git", "commit", "-q", "-m", "pipeline"], ws)
    return ws


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Path:
    """A copy of the built pipeline for one test to change."""
    return Path(shutil.copytree(built, tmp_path / "p", symlinks=True))


def test_a_current_lock_passes_and_data_is_not_read(project):
    assert lockcheck.check(project) == []
    # a fresh clone has no data and no outputs: not stale code
    for rel in ("data/raw.csv", "data/prepared.csv", "model.txt"):
        (project / rel).unlink()
    assert lockcheck.check(project) == []


def test_changed_code_names_the_stage_and_the_file(project):
    (project / "code" / "fit.py").write_text(FIT + "# tuned\n")
    found = lockcheck.check(project)
    assert [(s.stage, s.path, s.why) for s in found] == [("fit", "code/fit.py", "modified")]
    text = lockcheck.report(found)
    assert "fit: code/fit.py (modified)" in text and "make repro" in text


def test_changed_params_name_the_key(project):
    p = project / "params.yaml"
    p.write_text(yaml.safe_dump({"prepare": {"scale": 3}, "fit": {"depth": 3}}))
    assert [(s.stage, s.path) for s in lockcheck.check(project)] == [("prepare", "params.yaml:prepare.scale")]
    p.write_text(yaml.safe_dump({"prepare": {"scale": 2}, "fit": {"depth": 4}}))
    assert [(s.stage, s.path) for s in lockcheck.check(project)] == [("fit", "params.yaml:fit")]


def test_a_stage_never_run_is_stale(project):
    doc = yaml.safe_load((project / "dvc.yaml").read_text())
    doc["stages"]["score"] = {"cmd": "python code/fit.py", "deps": ["code/fit.py"], "outs": ["scores.txt"]}
    (project / "dvc.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    assert ("score", "code/fit.py", "not in dvc.lock") in [(s.stage, s.path, s.why) for s in lockcheck.check(project)]


def test_the_command_exits_non_zero_when_stale(project):
    ok = run(["mlcycle", "pipeline", "lock-check"], project)
    assert "dvc.lock is current" in ok.stdout
    (project / "code" / "prepare.py").write_text(PREPARE + "\n")
    bad = run(["mlcycle", "pipeline", "lock-check"], project, check=False)
    assert bad.returncode == 1
    assert "prepare: code/prepare.py (modified)" in bad.stderr


def test_the_committed_lock_matches_the_committed_code():
    """The repository's own results: dvc.lock was produced by the code, notebooks and params it sits
    beside (after a change to any of them: `make repro`, then commit dvc.lock and its outputs)."""
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.fail("the workspace is not a git checkout: the check reads what git tracks")
    found = lockcheck.check(ROOT)
    assert not found, lockcheck.report(found)


def tracked_copy(dest: Path) -> Path:
    """The files git tracks in the repository (as they are on disk) in a fresh git repository at dest."""
    for rel in lockcheck.tracked_paths(ROOT):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    return dest


def test_a_tasks_code_and_notebooks_rerun_only_its_own_pipeline(tmp_path):
    """The workspace runs the tabular task: touching the recommender's code or notebooks leaves its
    pipeline current, touching the tabular task's names every stage that runs it."""
    ws = tracked_copy(tmp_path / "ws")
    assert lockcheck.check(ws) == []
    for rel in ("src/mlcycle/tasks/recommender/recommenders.py", "src/mlcycle/tasks/recommender/monitor.py",
                "notebooks/recommender/05_train.ipynb"):
        path = ws / rel
        path.write_text(path.read_text().replace("\n", "\n\n", 1))
    assert lockcheck.check(ws) == []
    tabular = ws / "src/mlcycle/tasks/tabular/__init__.py"
    tabular.write_text(tabular.read_text() + "\n# touched\n")
    stale = {s.stage for s in lockcheck.check(ws) if s.path.startswith("src/mlcycle/tasks/tabular")}
    assert stale == {"validate", "eda", "features", "train", "evaluate", "report"}  # report: the index headline
