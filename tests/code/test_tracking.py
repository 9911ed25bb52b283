from pathlib import Path

from mlcycle.core import paths
from mlcycle.runtime import tracking


def test_experiment_copies_resolve_to_the_main_workspace(tmp_path):
    ws = tmp_path / "ws"
    assert paths.main_root(ws / ".dvc" / "tmp" / "exps" / "tmpab12") == ws.resolve()
    assert paths.main_root(ws) == ws.resolve()
    assert paths.store_dir(ws / ".dvc/tmp/exps/x") == ws.resolve() / "mlruns"


def test_env_uri_wins(monkeypatch, tmp_path):
    from mlcycle.core import config
    from tests.conftest import ROOT

    p = config.load(ROOT / "params.yaml")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking.tracking_uri(tmp_path, p) == "http://127.0.0.1:5999"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking.tracking_uri(tmp_path, p).startswith("sqlite:////")


def test_the_activated_venv_default_gives_way_to_params(monkeypatch, tmp_path):
    """`source .venv/bin/activate` points MLFLOW_TRACKING_URI at the workspace's store as a default
    (MLCYCLE_DEFAULT_STORE says so); a store named in params.yaml still wins over that default."""
    from mlcycle.core import config
    from tests.conftest import ROOT

    p = config.load(ROOT / "params.yaml")
    default = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", default)
    monkeypatch.setenv("MLCYCLE_DEFAULT_STORE", default)
    assert tracking.tracking_uri(tmp_path, p) == default
    p = p.model_copy(update={"tracking": p.tracking.model_copy(update={"uri": "postgresql://team-db/mlflow"})})
    assert tracking.tracking_uri(tmp_path, p) == "postgresql://team-db/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")  # set by hand: it wins
    assert tracking.tracking_uri(tmp_path, p) == "http://127.0.0.1:5999"


def test_the_activated_venv_reaches_the_workspace_store(tmp_path):
    """No stray `mlflow.db` at the root: after `source .venv/bin/activate`, a bare mlflow (a notebook,
    `mlflow ui`) uses the workspace's store under mlruns/."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    activate = Path(sys.executable).parent / "activate"
    if not activate.exists():
        raise AssertionError(f"{activate} is missing: run the tests through `make test` (it sets up .venv)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLCYCLE_DEFAULT"))}
    proc = subprocess.run(["bash", "-c", f"source {activate} && echo $MLFLOW_TRACKING_URI && echo $MLFLOW_BACKEND_STORE_URI"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    store = f"sqlite:///{ROOT.resolve() / 'mlruns' / 'mlflow.db'}"
    assert proc.stdout.split() == [store, store]
    assert not (ROOT / "mlflow.db").exists()


def test_flatten_and_sections():
    assert tracking.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}
    # names MLflow refuses (a segment called "(all rows)", an origin "A+B") are made acceptable
    assert tracking.flatten({"segments": {"(all rows)": {"rows": 5}, "A+B": {"r2": 0.5}}}) == {
        "segments._all rows_.rows": 5, "segments.A_B.r2": 0.5}
    assert paths.PARAMS_SECTIONS["train"] == ("train",)


def test_pipeline_key_from_env(monkeypatch):
    monkeypatch.setenv("MLCYCLE_PIPELINE_KEY", "k1")
    assert tracking.pipeline_key() == "k1"
    monkeypatch.delenv("MLCYCLE_PIPELINE_KEY")
    assert tracking.pipeline_key() is None or tracking.pipeline_key().count(":") == 2


def test_versions_name_key_packages():
    v = tracking.versions()
    assert {"mlcycle.version.pandas", "mlcycle.version.mlflow", "mlcycle.python"} <= set(v)
    assert isinstance(Path(".").resolve(), Path)


def test_the_local_store_is_readable_by_its_owner_only(tmp_path):
    import stat

    from mlcycle.core import config
    from mlcycle.runtime import tracking

    ws = tmp_path / "ws"
    ws.mkdir()
    params = config.parse({"data": {"path": "x.csv", "target": "y", "task": "regression"}})
    tracking.setup(ws, params)
    store = ws / "mlruns"
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert stat.S_IMODE((store / "mlflow.db").stat().st_mode) == 0o600


def test_record_does_nothing_outside_the_runner(tmp_path, monkeypatch):
    from mlcycle.core import record

    monkeypatch.delenv(record.ENV, raising=False)
    assert record.tags({"a": "1"}) is False and not record.active()
    path = tmp_path / "r.jsonl"
    monkeypatch.setenv(record.ENV, str(path))
    assert record.tags({"a": 1}) and record.artifacts([tmp_path / "f.json"], "evaluation")
    assert [i["kind"] for i in record.read(path)] == ["tags", "artifacts"]
    assert record.read(path)[0]["tags"] == {"a": "1"}
    assert record.read(tmp_path / "missing.jsonl") == []


def test_the_hook_applies_what_a_stage_handed_over(tmp_path, monkeypatch):
    """Each kind of record item, against a real MLflow store: trials as nested runs, params, tags,
    files, a registered version's tags filled with the run's id, the run id written into a file."""
    import json
    from types import SimpleNamespace

    import pytest

    from mlcycle.core import config, record
    from mlcycle.lifecycle import registry
    from tests.conftest import mlflow_client

    ws = tmp_path / "ws"
    ws.mkdir()
    params = config.parse({"data": {"path": "x.csv", "target": "y", "task": "regression"}})
    client, exp = tracking.setup(ws, params)
    hook = tracking.TrackingHook()
    hook.client, hook.exp_id, hook.git = client, exp, {"mlflow.source.git.commit": "c", "mlcycle.git.dirty": "false"}
    hook.run_id = client.create_run(exp).info.run_id
    model = ws / "m"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    registered = ws / "registered.json"
    verdict = ws / "verdict.json"
    verdict.write_text(json.dumps({"status": "ok"}))
    (ws / "fairness.json").write_text("{}")
    monkeypatch.setenv(record.ENV, str(ws / "items.jsonl"))
    record.params({"selected.model": "hgb"})
    record.tags({"mlcycle.model_family": "hgb"})
    record.child_runs([{"name": "trial 0 hgb", "tags": {"mlcycle.trial": "0"}, "params": {"model": "hgb"},
                        "metrics": [["valid_roc_auc", 0.7, 0]], "start_ms": 1, "end_ms": 2, "status": "COMPLETE"}])
    record.artifacts([ws / "fairness.json"], "evaluation")
    record.register("reg", model, registered, "data/processed", tags={"mlcycle.scoring_path": "compiled"})
    run = SimpleNamespace(root=ws, record=ws / "items.jsonl")
    hashes = {"deps": {"data/processed": "abc.dir"}}
    for item in record.read(run.record):
        hook.apply(item, run, hashes)
    reg = json.loads(registered.read_text())
    assert reg == {"name": "reg", "version": "1", "run_id": hook.run_id}
    mv = client.get_model_version("reg", "1")
    assert mv.tags["data_md5"] == "abc.dir" and mv.tags["stage_run_id"] == hook.run_id
    assert mv.tags["lock_digest"] == "none"  # the workspace has no requirements.lock
    assert mv.tags["mlcycle.scoring_path"] == "compiled"  # the stage's own version tags, set at registration
    # a later stage's items: tags on the version, the run id into the verdict
    (ws / "items.jsonl").unlink()
    record.version_tags("reg", "1", {"monitor.last_run_id": "{run_id}", "model_card": "{artifact_uri}/model_card/x.html"})
    record.run_id_into(verdict, "mlflow_run_id")
    for item in record.read(run.record):
        hook.apply(item, run, hashes)
    r = client.get_run(hook.run_id)
    assert r.data.params["selected.model"] == "hgb" and r.data.tags["mlcycle.model_family"] == "hgb"
    children = mlflow_client(ws).search_runs([exp], f"tags.mlflow.parentRunId = '{hook.run_id}'")
    assert [c.data.tags["mlflow.runName"] for c in children] == ["trial 0 hgb"]
    assert children[0].data.metrics["valid_roc_auc"] == 0.7 and children[0].info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(hook.run_id, "evaluation")] == ["evaluation/fairness.json"]
    tags = client.get_model_version("reg", "1").tags
    assert tags["monitor.last_run_id"] == hook.run_id
    assert tags["model_card"] == f"{r.info.artifact_uri}/model_card/x.html"
    assert json.loads(verdict.read_text())["mlflow_run_id"] == hook.run_id
    assert registry.champion(client, "reg") is None  # registering moves no alias
    with pytest.raises(ValueError, match="unknown record kind 'nope'"):
        hook.apply({"kind": "nope"}, run, hashes)


def test_code_dependencies_are_not_logged_as_datasets():
    assert tracking.is_code("src/mlcycle/core") and tracking.is_code("notebooks/tabular/05_train.ipynb")
    assert tracking.is_code("src/mlcycle/templates/model_card.md.j2")
    assert not tracking.is_code("data/processed") and not tracking.is_code("reports/metrics/validate.json")


def _locked_workspace(tmp_path, extra: str = "") -> Path:
    """A workspace whose requirements.lock pins two installed packages as installed (plus `extra`)."""
    from importlib.metadata import version

    ws = tmp_path / "ws"
    ws.mkdir()
    h = " \\\n    --hash=sha256:" + "0" * 64
    (ws / "requirements.lock").write_text(f"# make lock\npyyaml=={version('pyyaml')}{h}\n"
                                          f"jinja2=={version('jinja2')}{h}\n{extra}")
    return ws


def test_env_tags_say_whether_the_packages_are_the_locked_ones(tmp_path):
    import hashlib

    ws = _locked_workspace(tmp_path, "no-such-package-here==1.0 --hash=sha256:aa\n")
    tags = tracking.env_tags(ws)
    assert tags == {"mlcycle.env.lock_digest": hashlib.sha256((ws / "requirements.lock").read_bytes()).hexdigest(),
                    "mlcycle.env.matches_lock": "false", "mlcycle.env.differs": "no-such-package-here (not installed)"}
    assert tracking.env_tags(tmp_path) == {"mlcycle.env.lock_digest": "none", "mlcycle.env.matches_lock": "unknown"}


def test_a_stage_run_and_its_pipeline_run_carry_the_lock_digest(tmp_path, monkeypatch):
    """The tracking hook's run for a stage (no notebook executed), and the parent run it creates."""
    import hashlib
    from types import SimpleNamespace

    from mlcycle.core import config

    ws = _locked_workspace(tmp_path)
    params = config.parse({"data": {"path": "x.csv", "target": "y", "task": "regression"}})
    monkeypatch.setenv("MLCYCLE_PIPELINE_KEY", "test-lock-digest")
    run = SimpleNamespace(root=ws, params=params, stage="demo", notebook=ws / "demo.ipynb", tracking_run_id=None)
    hook = tracking.TrackingHook()
    hook.start(run)
    digest = hashlib.sha256((ws / "requirements.lock").read_bytes()).hexdigest()
    for run_id in (hook.run_id, hook.parent_id):
        tags = hook.client.get_run(run_id).data.tags
        assert tags["mlcycle.env.lock_digest"] == digest and tags["mlcycle.env.matches_lock"] == "true"
        assert "mlcycle.env.differs" not in tags and tags["mlflow.source.git.commit"] == "none"


def test_the_score_run_is_tagged_as_stage_runs_are():
    """`mlcycle serving score`'s run records the git commit, dirty flag and environment like a stage run."""
    from mlcycle.serving import batch
    from tests.conftest import ROOT

    tags = batch.run_tags(ROOT, "models:/m/3", "3", "sklearn")
    assert tags["mlcycle.model_uri"] == "models:/m/3" and tags["mlflow.runName"] == "score"
    stage_like = {**tracking.git_tags(ROOT), **tracking.env_tags(ROOT)}
    assert {k: tags[k] for k in stage_like} == stage_like
    assert tags["mlflow.source.git.commit"] != "none" and tags["mlcycle.env.lock_digest"] != "none"


def test_a_stage_run_logs_the_active_tasks_own_sections():
    """A recommender's train run carries `recommend.*` (its hyperparameters), a table model's does not."""
    from mlcycle.core import config
    from tests.code.test_recommend import params as recommender_params
    from tests.conftest import ROOT

    table = config.load(ROOT / "params.yaml")
    assert tracking.stage_sections("train", table) == ("train",)
    assert tracking.stage_sections("train", recommender_params()) == ("train", "recommend")
    assert tracking.stage_sections("validate", recommender_params()) == ("data", "validate", "recommend")
