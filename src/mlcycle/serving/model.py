"""The served model: `Column` (one input of its MLflow signature), `Served` (one loaded version and
what the API says about it), `load` (a `models:/` URI resolved and loaded) and
`Holder`, which holds the served version and swaps in a new one when its alias moves (hot reload:
a thread checks every `reload_seconds`; requests in flight finish on the version they started with).

A version whose model folder holds a compiled form that agreed with the pipeline at registration
(its task's `compiled` hook: `mlcycle.tasks.tabular.compiled`) is scored through it, unless `compiled=False` (params `serve.compiled`); which
path answers, and why, is decided here, at load time, never per request."""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from mlcycle.core import tasks
from mlcycle.core.errors import ServeError
from mlcycle.core.workspace import model_metadata, model_uri, parse_model_uri

log = logging.getLogger("mlcycle.serve")


@dataclass(frozen=True)
class Column:
    """One input column of the model's MLflow signature."""

    name: str
    type: str  # MLflow data type: double, float, long, integer, string, boolean, datetime, ...
    required: bool = True  # may the column be left out of a request
    nullable: bool = True  # may a value be null (a missing value)


@dataclass(frozen=True)
class Served:
    """One loaded model version with what the API says about it."""

    model: Any
    flavor: str  # "sklearn" (predict_proba / predict on a Pipeline) or "pyfunc"
    info: dict  # name, version, alias, run_id, data_md5, git_commit, uri
    columns: tuple[Column, ...]
    meta: dict = field(default_factory=dict)  # mlcycle metadata: task, classes, positive_class, threshold
    example: list[dict] = field(default_factory=list)
    scoring: dict = field(default_factory=lambda: {"path": "sklearn", "reason": ""})  # which path answers, and why

    @property
    def path(self) -> str:
        """"compiled" or "sklearn" (the pipeline; also any other flavor)."""
        return self.scoring.get("path", "sklearn")

    @property
    def version(self) -> str:
        return str(self.info.get("version") or "")

    @cached_property
    def classifier(self) -> bool:
        """Whether it answers class probabilities: a scikit-learn model of a `data.task` its task
        declares so (`Task.probabilities`)."""
        return self.flavor == "sklearn" and tasks.answers_probabilities(self.meta.get("task"))




def columns_from_signature(signature, not_null: tuple[str, ...] = ()) -> tuple[Column, ...]:
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        return ()
    out = []
    for spec in signature.inputs.inputs:
        kind = getattr(spec.type, "name", None) or str(spec.type)
        out.append(Column(spec.name, kind, bool(getattr(spec, "required", True)), spec.name not in not_null))
    return tuple(out)


def load(client, uri: str, not_null: tuple[str, ...] = (), compiled: bool = True) -> Served:
    """Download and load the model behind `uri` (an alias is resolved to its version first), scored
    through its compiled form when it has one that agreed at registration and `compiled` is on."""
    import mlflow
    from mlflow.models import Model

    from mlcycle.core.scoring import quiet_mlflow

    name, alias, version = parse_model_uri(uri)
    info: dict = {"uri": uri, "name": name, "alias": alias, "version": version}
    source = uri
    if name:
        try:
            mv = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
        except Exception as exc:
            from mlcycle.lifecycle.registry import unresolved_message

            raise ServeError((alias and unresolved_message(client, name, uri))
                             or f"serve: {uri} does not resolve ({type(exc).__name__}: {str(exc)[:200]}); "
                             "see `mlcycle model list`, or run `make repro` to register a champion") from None
        tags = mv.tags or {}
        info.update(version=str(mv.version), run_id=mv.run_id, data_md5=tags.get("data_md5"),
                    git_commit=tags.get("git_commit"), aliases=sorted(mv.aliases or []),
                    release_decision=tags.get("release.decision"))
        source = model_uri(name, version=mv.version)
    with quiet_mlflow(), tempfile.TemporaryDirectory(prefix="mlcycle-serve-") as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp)
        mlmodel = Model.load(local)
        info["run_id"] = info.get("run_id") or mlmodel.run_id
        meta = model_metadata(mlmodel)
        if "sklearn" in mlmodel.flavors:
            import mlflow.sklearn

            model, flavor = mlflow.sklearn.load_model(local), "sklearn"
            load_compiled = tasks.for_objective(meta.get("task")).hook("compiled")
            if load_compiled is None:
                fast, scoring = None, {"path": "sklearn", "reason": "its task has no compiled form"}
            else:
                fast, verdict = load_compiled(Path(local), pipeline=model)
                scoring = {"path": "sklearn", "reason": verdict.reason, "max_abs_diff": verdict.max_abs_diff,
                           "rows_checked": verdict.rows, "engine": verdict.engine}
            if fast is not None and not compiled:
                scoring["reason"] = "the compiled form is switched off (serve.compiled: false)"
            elif fast is not None:
                model = fast
                scoring["path"] = "compiled"
        else:
            import mlflow.pyfunc

            model, flavor = mlflow.pyfunc.load_model(local), "pyfunc"
            scoring = {"path": "sklearn", "reason": "not a scikit-learn model: its MLflow flavor scores"}
        example = []
        try:
            ex = mlmodel.load_input_example(local)
            if isinstance(ex, pd.DataFrame):
                example = json.loads(ex.head(2).to_json(orient="records", date_format="iso"))
        except Exception:
            pass
    cols = columns_from_signature(mlmodel.signature, not_null)
    if scoring["path"] == "sklearn":
        log.info("serve: v%s scored by the pipeline: %s", info.get("version"), scoring["reason"])
    return Served(model, flavor, info, cols, meta, example, scoring)


class Holder:
    """The served model; a thread swaps in a new version when the alias moves."""

    def __init__(self, client, uri: str, not_null: tuple[str, ...] = (), on_switch=None, compiled: bool = True,
                 optional: bool = False, refuse=None):
        self.client, self.uri, self.not_null, self.compiled = client, uri, not_null, compiled
        self.name, self.alias, _ = parse_model_uri(uri)
        self.optional = optional  # a candidate: its alias may be missing (then `current` is None)
        # a candidate: refuse(version) says why that version may not be served (None: it may); a
        # refused version is treated as no candidate, so the champion answers everything
        self.refuse = refuse
        self.refused: str | None = None  # why the alias's version is not served, while it is refused
        self._admitted: str | None = None  # the last version `refuse` allowed (a refusal is asked again)
        self.current: Served | None = None
        if not optional or self.resolve() is not None:
            self.current = load(client, uri, not_null, compiled)
        self.on_switch = on_switch
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Load and swap in the alias's version when it differs from the served one; True if switched."""
        if not (self.name and self.alias):
            return False
        if self.optional:
            version = self.resolve()
            if version is None:
                if self.current is None:
                    return False
                old, self.current = self.current, None
                log.warning("serve: %s no longer resolves: v%s is not served any more", self.uri, old.version)
                if self.on_switch:
                    self.on_switch(old, None)
                return True
        else:
            version = str(self.client.get_model_version_by_alias(self.name, self.alias).version)
        if self.current is not None and version == self.current.version:
            return False
        new = load(self.client, self.uri, self.not_null, self.compiled)
        cols = self.columns if self.columns is not None else (self.current.columns if self.current else None)
        if cols is not None and [(c.name, c.type) for c in new.columns] != [(c.name, c.type) for c in cols]:
            raise ServeError(f"v{new.version} takes other input columns than the served version; "
                             "restart the server to serve it")
        old, self.current = self.current, new  # requests in flight keep their reference to `old`
        log.info("serve: %s moved: v%s -> v%s", self.uri, old.version if old else "-", new.version)
        if self.on_switch:
            self.on_switch(old, new)
        return True

    columns: tuple[Column, ...] | None = None  # the input columns every version must take (set by the server)

    def resolve(self) -> str | None:
        """The version the alias names now, None when it names none or `refuse` refuses it (only
        asked of a candidate)."""
        try:
            version = str(self.client.get_model_version_by_alias(self.name, self.alias).version)
        except Exception as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc) or "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
                return None
            raise
        if version == self._admitted:  # a version allowed once stays allowed: no registry read per check
            return version
        why = self.refuse(version) if self.refuse is not None else None
        if why is None:
            self._admitted = version
        if why != self.refused and why:
            log.error("serve: %s is not served: %s", self.uri, why)
        self.refused = why
        return None if why else version

    def start(self, every: float) -> None:
        def loop():
            while not self._stop.wait(every):
                try:
                    self.check()
                    self.last_error = None
                except Exception as exc:  # keep serving the loaded version
                    self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    log.error("serve: reload failed, still serving v%s: %s",
                              self.current.version if self.current else "-", self.last_error)

        if self.name and self.alias:
            self._thread = threading.Thread(target=loop, name="model-reload", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
