"""`core.workspace`: the workspace opened once (paths, checked params, task, tracking store, model
URIs), and the one reading of a model's `mlcycle` metadata and loading of a registered version,
against a real embedded MLflow store (SQLite in a temporary folder)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config, tasks, workspace
from mlcycle.core.errors import ParamsError
from mlcycle.core.paths import Paths
from mlcycle.core.workspace import Workspace
from mlcycle.runtime import tracking
from tests.conftest import edit_params, make_workspace


@pytest.fixture
def ws_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("MLCYCLE_ROOT", raising=False)
    return make_workspace(tmp_path / "ws", git=False)


def test_open_finds_the_root_and_checks_params(ws_dir, monkeypatch):
    ws = Workspace.open(root=ws_dir)
    assert ws.paths == Paths.at(ws_dir) and ws.root == ws_dir.resolve()
    assert ws.params == config.load("params.yaml", root=ws_dir)
    assert ws.task is tasks.active(ws.params) and ws.task.name == ws.params.task == "tabular"
    name = ws.params.tracking.model_name
    assert ws.model_name == name
    assert ws.champion_uri() == f"models:/{name}@champion"
    assert ws.version_uri(3) == f"models:/{name}/3" and ws.alias_uri("challenger") == f"models:/{name}@challenger"
    # from a folder inside the workspace (a notebook's kernel), as Paths.at() finds it
    monkeypatch.chdir(ws_dir / "notebooks" / "tabular")
    assert Workspace.open().root == ws_dir.resolve()
    # another params file, relative to the root: another task
    rec = Workspace.open("examples/movielens/params.yaml", ws_dir)
    assert rec.params.data.task == "recommendation" and rec.task.name == "recommender"
    assert rec.champion_uri() == f"models:/{rec.params.tracking.model_name}@champion" != ws.champion_uri()


def test_tracking_uri_is_the_one_tracking_uses(ws_dir, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ws = Workspace.open(root=ws_dir)
    local = f"sqlite:///{ws_dir.resolve() / 'mlruns' / 'mlflow.db'}"
    assert ws.tracking_uri == local == workspace.local_store_uri(ws_dir)
    assert tracking.tracking_uri(ws.root, ws.params) == local
    # a `dvc exp` copy under .dvc/tmp/exps/ records into its main workspace's store
    copy = ws_dir / ".dvc" / "tmp" / "exps" / "tmpab12"
    assert workspace.tracking_uri(copy, ws.params) == local
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert ws.tracking_uri == "http://127.0.0.1:5999" == tracking.tracking_uri(ws.root, ws.params)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    edit_params(ws_dir, {"tracking": {"uri": "postgresql://team-db/mlflow"}})
    assert Workspace.open(root=ws_dir).tracking_uri == "postgresql://team-db/mlflow"


def test_a_bad_params_file_fails_as_config_load_does(ws_dir, tmp_path, monkeypatch):
    edit_params(ws_dir, {"train": {"learnig_rate": 0.1}})
    with pytest.raises(ParamsError) as opened:
        Workspace.open(root=ws_dir)
    with pytest.raises(ParamsError) as loaded:
        config.load("params.yaml", root=ws_dir)
    assert str(opened.value) == str(loaded.value) and "train.learnig_rate" in str(opened.value)
    with pytest.raises(ParamsError, match="parameters file not found: nope.yaml"):
        Workspace.open("nope.yaml", ws_dir)
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    monkeypatch.chdir(nowhere)
    with pytest.raises(FileNotFoundError, match="no mlcycle workspace found"):
        Workspace.open()


def test_model_uris_are_spelled_and_parsed_in_one_place():
    assert workspace.model_uri("m", version=3) == "models:/m/3"
    assert workspace.model_uri("m", alias="champion") == "models:/m@champion"
    for uri in ("models:/m/3", "models:/m@champion"):
        name, alias, version = workspace.parse_model_uri(uri)
        assert workspace.model_uri(name, version=version, alias=alias) == uri
    assert workspace.parse_model_uri("runs:/abc/model") == (None, None, None)
    with pytest.raises(ValueError):
        workspace.model_uri("m")
    with pytest.raises(ValueError):
        workspace.model_uri("m", version=1, alias="champion")


class Ranker:
    """A stand-in for a recommender's pyfunc Python model."""

    def predict(self, context, model_input, params=None):
        return model_input


def test_metadata_and_loading_of_a_registered_model(ws_dir):
    """One registered scikit-learn model with mlcycle metadata: the same metadata from its URI, its
    folder and MLflow's loaded Model; `load_model` gives the pipeline (by alias too), a version
    without metadata gives {}, a recommender's version its Python model (task hook `load`)."""
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import Model
    from sklearn.linear_model import LogisticRegression

    from mlcycle.lifecycle import registry

    ws = Workspace.open(root=ws_dir)
    client, exp = tracking.setup(ws.root, ws.params)
    assert client.tracking_uri == ws.tracking_uri and mlflow.get_tracking_uri() == ws.tracking_uri
    assert ws.client(default=False).tracking_uri == ws.tracking_uri
    X = pd.DataFrame({"a": np.arange(20.0)})
    y = (X["a"] > 9).astype(int)
    fitted = LogisticRegression().fit(X, y)
    meta = {"task": "classification", "threshold": 0.4, "classes": [0, 1]}
    with_meta, bare = ws_dir / "with_meta", ws_dir / "bare"
    mlflow.sklearn.save_model(fitted, str(with_meta), serialization_format="cloudpickle", metadata={"mlcycle": meta})
    mlflow.sklearn.save_model(fitted, str(bare), serialization_format="cloudpickle")
    name = ws.model_name
    v1 = registry.register(client, name, client.create_run(exp).info.run_id, with_meta, {})
    v2 = registry.register(client, name, client.create_run(exp).info.run_id, bare, {})

    assert workspace.model_metadata(ws.version_uri(v1)) == meta
    assert workspace.model_metadata(with_meta) == meta  # the folder's MLmodel, read without MLflow
    assert workspace.model_metadata(Model.load(str(with_meta))) == meta
    assert workspace.model_metadata(ws.version_uri(v2)) == {} == workspace.model_metadata(bare)

    model, got = workspace.load_model(ws.version_uri(v1))
    assert got == meta and np.allclose(model.predict_proba(X), fitted.predict_proba(X))
    assert registry.load_version(client, name, v1)[1] == meta
    registry.set_alias(client, name, registry.CHAMPION, v2)
    model, got = workspace.load_model(ws.champion_uri())
    assert got == {} and model.predict(X).tolist() == fitted.predict(X).tolist()

    class PyRanker(Ranker, mlflow.pyfunc.PythonModel):
        pass

    folder = ws_dir / "ranker"
    mlflow.pyfunc.save_model(str(folder), python_model=PyRanker(),
                             metadata={"mlcycle": {"task": "recommendation", "model": "hybrid"}})
    v = registry.register(client, "ranker", client.create_run(exp).info.run_id, folder, {})
    model, got = workspace.load_model(workspace.model_uri("ranker", version=v))
    assert isinstance(model, Ranker) and got == {"task": "recommendation", "model": "hybrid"}
