"""`mlcycle model reproduce` without a pipeline: the comparisons and the report on recorded values, the
lineage read from a real embedded MLflow store, and each refusal (exit 2) with what to do.
tests/pipeline/test_reproduce.py rebuilds a real version end to end."""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest

from mlcycle.core.errors import ReproduceError
from mlcycle.lifecycle import reproduce
from mlcycle.lifecycle.reproduce import Lineage
from tests.conftest import make_workspace

DATA = "9f0c1e2d3b4a59687f0e1d2c3b4a5968.dir"


def lineage(**changes) -> Lineage:
    base = dict(name="m", version="3", run_id="r" * 32, experiment_id="1", commit="c" * 40, dirty="false",
                data_md5=DATA, deps={"data/processed": DATA, "src/mlcycle/tasks/tabular/train.py": "aa11"},
                outs={"models/model": "bb22.dir", "reports/train.html": "cc33"},
                params={"train.max_iter": "40", "train.seed": "42"},
                metrics={"valid_roc_auc": 0.71, "threshold": 0.25, "best_iter": 33.0},
                evaluate_run_id="e" * 32, evaluate_metrics={"model.roc_auc": 0.7, "model.ece": float("nan")})
    return Lineage(**{**base, **changes})


def rebuilt(lin: Lineage, **changes) -> tuple[dict, dict]:
    train = {"run_id": "n" * 32, "deps": dict(lin.deps), "outs": dict(lin.outs), "params": dict(lin.params),
             "metrics": dict(lin.metrics)}
    evaluate = {"run_id": "o" * 32, "deps": {}, "outs": {}, "params": {}, "metrics": dict(lin.evaluate_metrics)}
    for key, value in changes.items():
        stage, _, field = key.partition("__")
        (train if stage == "train" else evaluate)[field].update(value)
    return train, evaluate


def result_of(lin, train, evaluate, predictions) -> dict:
    out = reproduce.compare(lin, train, evaluate, predictions)
    out.update(lineage={"name": lin.name, "version": lin.version, "run_id": lin.run_id, "commit": lin.commit,
                        "data_md5": lin.data_md5}, data_from={"data/processed": "from the DVC cache"},
               environment={"summary": "not checked"}, warnings=[], seconds=12.0)
    return out


SAME = reproduce.compare_predictions(np.array([0.1, 0.2]), np.array([0.1, 0.2]))


def test_values_identical_with_nan_on_both_sides():
    c = reproduce.compare_values({"a": 1.0, "b": float("nan")}, {"a": 1.0, "b": float("nan")})
    assert c == {"compared": 2, "identical": True, "differences": {}}


def test_values_name_each_difference_and_a_metric_on_one_side():
    c = reproduce.compare_values({"a": 0.5, "b": 2.0, "gone": 1.0}, {"a": 0.5, "b": 2.25, "new": 3.0})
    assert c["identical"] is False and c["compared"] == 4
    assert c["differences"]["b"] == {"original": 2.0, "rebuilt": 2.25, "abs_diff": 0.25}
    assert c["differences"]["gone"]["rebuilt"] is None and c["differences"]["new"]["original"] is None
    assert "a" not in c["differences"]


def test_predictions_bitwise():
    a = np.array([0.1, 0.2, np.nan, 0.4])
    assert reproduce.compare_predictions(a, a.copy())["identical"] is True
    b = a.copy()
    b[1] = np.nextafter(b[1], 1.0)  # one ulp: not identical
    b[3] = 0.5
    c = reproduce.compare_predictions(a, b)
    assert c["identical"] is False and c["rows"] == 4 and c["rows_differing"] == 2
    assert math.isclose(c["max_abs_diff"], 0.1)
    nan_one_side = reproduce.compare_predictions(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    assert nan_one_side["rows_differing"] == 1 and nan_one_side["max_abs_diff"] == math.inf


def test_predictions_multiclass_rows_and_shapes():
    a = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    b = a.copy()
    b[2] = [0.8, 0.2]
    c = reproduce.compare_predictions(a, b)
    assert c["rows_differing"] == 1 and math.isclose(c["max_abs_diff"], 0.1)
    shapes = reproduce.compare_predictions(a, a[:2])
    assert shapes["identical"] is False and "shapes differ" in shapes["why"]


def test_identical_rebuild_reports_identical():
    lin = lineage()
    out = result_of(lin, *rebuilt(lin), SAME)
    assert out["identical"] is True
    text = reproduce.summary(out)
    assert text.splitlines()[0] == ("reproduce m v3: train run rrrrrrrrrrrr, commit cccccccccccc, data/processed "
                                    "9f0c1e2d3b4a; data/processed from the DVC cache")
    assert "train metrics     identical (3 metrics)" in text
    assert "evaluate metrics  identical (2 metrics)" in text
    assert "predictions       identical (2 holdout rows, bit for bit)" in text
    assert text.splitlines()[-1].startswith("identical: m v3 was rebuilt")


def test_a_difference_is_reported_with_its_size():
    lin = lineage()
    train, evaluate = rebuilt(lin, train__metrics={"valid_roc_auc": 0.7102}, evaluate__metrics={"model.roc_auc": 0.69},
                              train__outs={"models/model": "dd44.dir"})
    preds = reproduce.compare_predictions(np.array([0.1, 0.2, 0.3]), np.array([0.1, 0.2003, 0.3]))
    out = result_of(lin, train, evaluate, preds)
    assert out["identical"] is False
    assert out["metrics"]["train"]["differences"] == {
        "valid_roc_auc": {"original": 0.71, "rebuilt": 0.7102, "abs_diff": pytest.approx(2e-4)}}
    text = reproduce.summary(out)
    assert "train metrics     DIFFER in 1 of 3: valid_roc_auc 0.71 -> 0.7102 (|diff| 0.0002)" in text
    assert "evaluate metrics  DIFFER in 1 of 2: model.roc_auc 0.7 -> 0.69" in text
    assert "predictions       DIFFER in 1 of 3 holdout rows (max |diff| 0.0003)" in text
    assert "models/model" in text  # an output's hash is shown, not judged
    assert text.splitlines()[-1].startswith("DIFFERENT: m v3")


def test_outputs_alone_do_not_make_a_difference():
    lin = lineage()
    train, evaluate = rebuilt(lin, train__outs={"models/model": "dd44.dir", "reports/train.html": "ee55"})
    out = result_of(lin, train, evaluate, SAME)
    assert out["identical"] is True and [d["path"] for d in out["outputs"]["differences"]] == ["models/model",
                                                                                               "reports/train.html"]


def test_inputs_and_params_that_differ_are_named():
    lin = lineage()
    train, evaluate = rebuilt(lin, train__deps={"data/processed": "0" * 32 + ".dir", "src/mlcycle/tasks/tabular/train.py": "ff66"},
                              train__params={"train.max_iter": "400"})
    out = result_of(lin, train, evaluate, SAME)
    assert out["identical"] is False and out["inputs"]["data"]["rebuilt"] == "0" * 32 + ".dir"
    text = reproduce.summary(out)
    assert "inputs            DIFFER: data/processed 9f0c1e2d3b4a -> 000000000000; src/mlcycle/tasks/tabular/train.py" in text
    assert "params            DIFFER: train.max_iter 40 -> 400" in text


def test_predictions_not_compared():
    lin = lineage()
    rec = {"compared": False, "required": False, "why": "task 'recommendation': ..."}
    out = result_of(lin, *rebuilt(lin), rec)
    assert out["identical"] is True
    assert reproduce.summary(out).splitlines()[-1] == ("identical: m v3 was rebuilt from its lineage with the same inputs "
                                                       "and metrics (predictions not compared) in 12 s")
    failed = {"compared": False, "required": True, "why": "the original model could not be downloaded"}
    out = result_of(lin, *rebuilt(lin), failed)
    assert out["identical"] is False and "predictions       not compared: the original model" in reproduce.summary(out)
    assert reproduce.predictions(None, None, "recommendation")["compared"] is False


def test_no_evaluate_run_is_said_and_not_a_difference():
    lin = lineage(evaluate_run_id=None, evaluate_metrics={})
    train, _ = rebuilt(lin)
    out = result_of(lin, train, None, SAME)
    assert out["identical"] is True
    assert "evaluate metrics  not compared: no evaluate run of the original pipeline was found" in reproduce.summary(out)


def test_dirty_refused_unless_allowed():
    with pytest.raises(ReproduceError, match=r"git_dirty true.*--allow-dirty") as e:
        reproduce.check_dirty(lineage(dirty="true"), allow_dirty=False)
    assert e.value.exit_code == 2
    assert "rebuilt from commit cccccccccccc" in reproduce.check_dirty(lineage(dirty="true"), allow_dirty=True)
    assert reproduce.check_dirty(lineage(), allow_dirty=False) is None


def test_environment_against_the_commits_lock(tmp_path):
    none = reproduce.environment(tmp_path, lineage(), strict=False)
    assert none["checked"] is False and none["summary"] == f"not checked: commit {'c' * 12} has no requirements.lock"
    with pytest.raises(ReproduceError, match="--strict-env: not checked"):
        reproduce.environment(tmp_path, lineage(), strict=True)
    (tmp_path / "requirements.lock").write_text("numpy==0.0.1 \\\n    --hash=sha256:00\n")
    lin = lineage(lock_digest="f" * 64, lock_matched="true")
    env = reproduce.environment(tmp_path, lin, strict=False)
    assert env["matches"] is False and env["differs"][0].startswith("numpy ") and env["differs"][0].endswith("(lock 0.0.1)")
    assert env["summary"].startswith(f"DIFFERS from the requirements.lock of commit {'c' * 12}: numpy ")
    assert "the version records lock digest ffffffffffff" in env["summary"]
    with pytest.raises(ReproduceError, match="--strict-env: DIFFERS"):
        reproduce.environment(tmp_path, lin, strict=True)


def _git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_commit_not_in_repository_and_shallow_clone(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    for i in range(2):
        (repo / "f.txt").write_text(str(i))
        _git(repo, "add", "f.txt")
        _git(repo, "commit", "-q", "-m", f"c{i}")
    first = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=repo, capture_output=True,
                           text=True).stdout.strip()
    reproduce.check_commit(repo, lineage(commit=first))  # present: no refusal
    with pytest.raises(ReproduceError, match="commit 0123456789ab of m v3 is not in this repository; fetch it"):
        reproduce.check_commit(repo, lineage(commit="0123456789ab" * 3 + "0123"))
    shallow = tmp_path / "shallow"
    _git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow))
    with pytest.raises(ReproduceError, match=r"shallow: run `git fetch --unshallow`"):
        reproduce.check_commit(shallow, lineage(commit=first))
    with pytest.raises(ReproduceError, match="records no git commit"):
        reproduce.check_commit(repo, lineage(commit="none"))


def test_worktree_is_removed_after_a_failure_and_kept_when_asked(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "f.txt").write_text("x")
    _git(repo, "add", "f.txt")
    _git(repo, "commit", "-q", "-m", "c")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()

    def worktrees() -> int:
        return subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout.count("\n")

    seen = []
    with pytest.raises(RuntimeError, match="stage failed"):
        with reproduce.worktree(repo, head) as tree:
            seen.append(tree)
            assert (tree / "f.txt").read_text() == "x" and worktrees() == 2
            raise RuntimeError("stage failed")
    assert not seen[0].parent.exists() and worktrees() == 1
    said = []
    with reproduce.worktree(repo, head, keep=True, say=said.append) as tree:
        pass
    assert tree.exists() and worktrees() == 2 and "git worktree remove --force" in said[0]
    _git(repo, "worktree", "remove", "--force", str(tree))
    shutil.rmtree(tree.parent)


def test_data_inputs_are_the_train_inputs_git_does_not_hold():
    from pathlib import PurePosixPath

    lin = lineage(deps={"data/processed": DATA, "src/mlcycle/core": "ab.dir", "notebooks/05_train.ipynb": "cd"})
    tracked = {PurePosixPath("src/mlcycle/core/config.py"), PurePosixPath("notebooks/05_train.ipynb")}
    assert reproduce.data_inputs(lin, tracked) == {"data/processed": DATA}
    assert reproduce.data_inputs(lineage(deps={}), tracked) == {"data/processed": DATA}  # from data_md5 alone


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with a train run and its evaluate run under one pipeline run, version 1 registered
    from the train run (no model needed to read a lineage), and a validate run."""
    import mlflow

    from mlcycle.lifecycle import registry

    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    uri = f"sqlite:///{db}"
    c = mlflow.MlflowClient(uri, registry_uri=uri)
    exp = c.create_experiment("mlcycle")
    parent = c.create_run(exp, tags={"mlflow.runName": "pipeline"}).info.run_id
    train = c.create_run(exp, tags={"mlcycle.stage": "train", "mlflow.parentRunId": parent, "mlflow.source.git.commit": "c" * 40,
                                    "mlcycle.git.dirty": "false", "mlcycle.dvc.deps.data/processed": DATA,
                                    "mlcycle.dvc.outs.models/model": "bb22.dir"}).info.run_id
    c.log_param(train, "train.max_iter", "40")
    c.log_metric(train, "valid_roc_auc", 0.71)
    evaluate = c.create_run(exp, tags={"mlcycle.stage": "evaluate", "mlflow.parentRunId": parent}).info.run_id
    c.log_metric(evaluate, "model.roc_auc", 0.7)
    validate = c.create_run(exp, tags={"mlcycle.stage": "validate"}).info.run_id
    c.create_registered_model("m")
    c.create_model_version("m", source="nowhere", run_id=train,
                           tags={"git_commit": "c" * 40, "git_dirty": "false", "data_md5": DATA, "stage_run_id": train})
    registry.set_alias(c, "m", registry.CHAMPION, "1")
    return c, train, evaluate, validate


def test_lineage_of_a_version_its_run_and_the_champion(store):
    c, train, evaluate, _ = store
    lin = reproduce.lineage(c, "m", "1")
    assert (lin.version, lin.run_id, lin.commit, lin.dirty, lin.data_md5) == ("1", train, "c" * 40, "false", DATA)
    assert lin.deps == {"data/processed": DATA} and lin.outs == {"models/model": "bb22.dir"}
    assert lin.params == {"train.max_iter": "40"} and lin.metrics == {"valid_roc_auc": 0.71}
    assert lin.evaluate_run_id == evaluate and lin.evaluate_metrics == {"model.roc_auc": 0.7}
    assert reproduce.lineage(c, "m", train).version == "1"  # by run id: its version
    assert reproduce.lineage(c, "m").version == "1"  # the champion


def test_lineage_refusals(store):
    c, _, _, validate = store
    with pytest.raises(ReproduceError, match=r"model 'm' has no version 9; `mlcycle model list`"):
        reproduce.lineage(c, "m", "9")
    with pytest.raises(ReproduceError, match="there is no MLflow run 0123456789abcdef0123456789abcdef"):
        reproduce.lineage(c, "m", "0123456789abcdef0123456789abcdef")
    with pytest.raises(ReproduceError, match="is a 'validate' stage run, not a train stage run"):
        reproduce.lineage(c, "m", validate)
    with pytest.raises(ReproduceError, match="model 'other' has no champion"):
        reproduce.lineage(c, "other")


def test_command_refuses_without_a_store_or_with_an_unreachable_one(tmp_path, monkeypatch, capsys):
    from mlcycle.cli import main as cli

    ws = make_workspace(tmp_path / "ws")
    monkeypatch.chdir(ws)
    assert cli.main(["model", "reproduce", "--model", "1"]) == 2
    assert "reproduce: no tracking store at" in capsys.readouterr().err
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert cli.main(["model", "reproduce", "--model", "1"]) == 2
    err = capsys.readouterr().err
    assert "mlcycle: reproduce: tracking store http://127.0.0.1:9: it cannot be reached" in err
    assert not (ws / "mlruns").exists()  # nothing was created in the workspace
