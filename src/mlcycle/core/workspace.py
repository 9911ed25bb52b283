"""The workspace, opened once: `Workspace.open()` finds the root (`Paths.at`), reads and checks
`params.yaml` (`config.load`) and answers what the commands, notebooks, the server and the monitor
ask of it: the active task, the tracking store's URI and a client on it, the registered model's
URIs. Beside it, the one place that spells and parses `models:/` URIs (`model_uri`,
`parse_model_uri`) and the `--model REF` every command takes (`resolve_model_ref`,
`registered_version`), reads the `mlcycle` metadata saved with a model (`model_metadata`) and loads
a registered version the way its task says (`load_model`).

Importing it does no work and imports neither mlflow nor the params model: each is imported by
the function that needs it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcycle.core.paths import Paths, store_dir

if TYPE_CHECKING:
    from mlcycle.core.config import Params
    from mlcycle.core.tasks import Task

CHAMPION, CHALLENGER = "champion", "challenger"  # the registry's aliases (lifecycle/registry.py moves them)
META_KEY = "mlcycle"  # the key of the metadata every mlcycle model is saved with (its MLmodel file)


def local_store_uri(root: Path) -> str:
    """The SQLite store under the main workspace's `mlruns/` (by absolute path)."""
    return f"sqlite:///{store_dir(root) / 'mlflow.db'}"


def tracking_uri(root: Path, params: Params) -> str:
    """`MLFLOW_TRACKING_URI` when set, else `tracking.uri` from params, else the local store; a
    store named in params wins over the default the activated .venv sets (`MLCYCLE_DEFAULT_STORE`)."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    # the activated .venv (and `make lab`) set the workspace's own store as a default for bare
    # `mlflow` commands; a store named in params.yaml wins over that default
    from_activate = env is not None and env == os.environ.get("MLCYCLE_DEFAULT_STORE")
    if env and not (from_activate and params.tracking.uri):
        return env
    if params.tracking.uri:
        return params.tracking.uri
    return local_store_uri(root)


def open_client(uri: str, default: bool = True):
    """An `MlflowClient` on `uri` for runs and the registry; `default`: mlflow's own tracking and
    registry URIs point there too (what `models:/` loading and artifact downloads use). Checks
    nothing: a caller that must fail fast on a server that does not answer checks it first
    (`runtime.tracking.check_store`)."""
    import mlflow

    if default:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(uri, uri)


def model_uri(name: str, version: str | int | None = None, alias: str | None = None) -> str:
    """`models:/<name>/<version>` or `models:/<name>@<alias>` (exactly one of the two)."""
    if (version is None) == (alias is None):
        raise ValueError(f"model_uri({name!r}): give a version or an alias, not {'both' if alias else 'neither'}")
    return f"models:/{name}@{alias}" if alias is not None else f"models:/{name}/{version}"


def parse_model_uri(uri: str) -> tuple[str | None, str | None, str | None]:
    """(name, alias, version) of a `models:/` URI; (None, None, None) for any other URI."""
    m = re.fullmatch(r"models:/([^/@]+)@([^/]+)", uri)
    if m:
        return m.group(1), m.group(2), None
    m = re.fullmatch(r"models:/([^/@]+)/([^/]+)", uri)
    if m:
        return m.group(1), None, m.group(2)
    return None, None, None


def model_metadata(source: Any) -> dict:
    """The `mlcycle` metadata of an MLflow model ({} when it has none). `source`: a model URI
    (`models:/<name>/<version>`, `runs:/...`; read by MLflow without loading the model), a local
    model folder as a `Path` (its MLmodel file read as YAML, without importing mlflow), or what
    MLflow already loaded (an `mlflow.models.Model` or `ModelInfo`)."""
    if isinstance(source, Path):
        import yaml

        metadata = (yaml.safe_load((source / "MLmodel").read_text()) or {}).get("metadata")
    elif hasattr(source, "metadata"):
        metadata = source.metadata
    else:
        from mlflow.models import get_model_info

        metadata = get_model_info(str(source)).metadata
    return (metadata or {}).get(META_KEY) or {}


def load_model(uri: str) -> tuple[Any, dict]:
    """The model behind `uri` and its `mlcycle` metadata: its task's `load` hook (a recommender: the
    pyfunc's Python model), else the scikit-learn pipeline."""
    from mlcycle.core import tasks
    from mlcycle.core.scoring import quiet_mlflow

    with quiet_mlflow():
        meta = model_metadata(uri)
        load = tasks.for_objective(meta.get("task")).hook("load")
        if load is not None:
            model = load(uri)
        else:
            import mlflow.sklearn

            model = mlflow.sklearn.load_model(uri)
    return model, meta


@dataclass(frozen=True)
class Workspace:
    """One workspace: where everything lives (`paths`) and its checked parameters (`params`)."""

    paths: Paths
    params: Params

    @classmethod
    def open(cls, params_file: str | Path = "params.yaml", root: str | Path | None = None) -> Workspace:
        """The workspace at `root` (default: $MLCYCLE_ROOT, else the nearest folder upwards holding
        params.yaml and dvc.yaml) with `params_file` (relative to its root) read and checked: a bad
        key fails here, naming it (`config.load`)."""
        from mlcycle.core import config

        paths = Paths.at(root)
        return cls(paths, config.load(params_file, root=paths.root))

    @property
    def root(self) -> Path:
        return self.paths.root

    @property
    def task(self) -> Task:
        """The active task (params `task`, from `data.task`)."""
        from mlcycle.core import tasks

        return tasks.active(self.params)

    @property
    def tracking_uri(self) -> str:
        return tracking_uri(self.root, self.params)

    def client(self, default: bool = True):
        """A client on the tracking store (`open_client`); `runtime.tracking.setup` also checks the
        store and creates the experiment."""
        return open_client(self.tracking_uri, default)

    @property
    def model_name(self) -> str:
        return self.params.tracking.model_name

    def champion_uri(self) -> str:
        """`models:/<tracking.model_name>@champion`: what serving, scoring and the monitor use by default."""
        return model_uri(self.model_name, alias=CHAMPION)

    def alias_uri(self, alias: str) -> str:
        return model_uri(self.model_name, alias=alias)

    def version_uri(self, version: str | int) -> str:
        return model_uri(self.model_name, version=version)

    def model_ref(self, ref: str | None = None) -> str:
        """The URI `--model REF` names (`resolve_model_ref`); None: the champion."""
        return resolve_model_ref(self.model_name, ref)

    def model_version(self, ref: str | None = None, client=None) -> str:
        """The registered version number `--model REF` names (`registered_version`); None: the
        champion's, read through `client` (default: a client on the workspace's store)."""
        return registered_version(client if client is not None else self.client(), self.model_name, ref)


MODEL_REF_FORMS = ("a version (3 or v3), an alias (champion, @challenger) or an MLflow model URI "
                   "(models:/NAME/3, models:/NAME@alias, runs:/RUN_ID/model)")
_VERSION_REF = re.compile(r"[vV]?([0-9]+)")
_ALIAS_REF = re.compile(r"@?([A-Za-z_][A-Za-z0-9_-]*)")
_URI_REF = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/\S*")


def resolve_model_ref(name: str, ref: str | None = None) -> str:
    """The MLflow URI `--model REF` names for the registered model `name`: a version (`3`, `v3`) ->
    `models:/<name>/3`; an alias (`champion`, `@challenger`) -> `models:/<name>@<alias>`; a URI
    (`models:/...`, `runs:/...`, any `scheme:/...`) as given; None: the champion. A ref that is none
    of these raises MlcycleError naming `--model` and the accepted forms."""
    from mlcycle.core.errors import MlcycleError

    ref = CHAMPION if ref is None else str(ref).strip()
    if (m := _VERSION_REF.fullmatch(ref)) is not None:
        return model_uri(name, version=int(m.group(1)))
    if _URI_REF.fullmatch(ref):
        return ref
    if (m := _ALIAS_REF.fullmatch(ref)) is not None:
        return model_uri(name, alias=m.group(1))
    raise MlcycleError(f"--model {ref!r} names no model; give {MODEL_REF_FORMS}")


def registered_version(client, name: str, ref: str | None = None) -> str:
    """The version number (as a string) `--model REF` names among the versions of `name` (the
    champion by default), an alias read through `client`. A URI of another model or of a run, an
    unknown alias, or no champion yet, raise MlcycleError saying what to pass instead."""
    from mlcycle.core.errors import MlcycleError

    uri = resolve_model_ref(name, ref)
    found, alias, version = parse_model_uri(uri)
    if found is None or found != name:
        raise MlcycleError(f"--model {ref}: this command needs a registered version of '{name}'; give a "
                           f"version (3 or v3), an alias (champion, @challenger) or models:/{name}/3")
    if version is not None:
        return str(version)
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except Exception as exc:  # MlflowException: the alias is not set (or the store does not answer)
        if alias == CHAMPION:
            raise MlcycleError(f"no champion yet for '{name}': run `make repro` or pass --model N") from exc
        raise MlcycleError(f"--model {ref}: no version of '{name}' has the alias @{alias} "
                           "(`mlcycle model list` shows the aliases)") from exc
