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


def test_flatten_and_sections():
    assert tracking.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}
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
