"""What a stage hands tracking to record, beyond what tracking records of every stage.

Tracking records every stage run the same way (params, metrics, reports, figures, DVC hashes) and
knows no stage by name. What only some stages produce (a search's trials, a model to register,
evaluation files, a verdict and the tags that point to it) they hand over here: each call appends
one item to the file the runner names in $MLCYCLE_RECORD, and the tracking hook applies the items
once the stage has finished. Outside the runner (a notebook in JupyterLab) the calls do nothing.

Tag values may contain `{run_id}` and `{artifact_uri}`: tracking fills in the stage run's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV = "MLCYCLE_RECORD"


def active() -> bool:
    """Whether a runner is recording this process's stage."""
    return bool(os.environ.get(ENV))


def note(kind: str, **item) -> bool:
    """Hand one item to tracking; False (and nothing written) outside the runner."""
    path = os.environ.get(ENV)
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"kind": kind, **item}, default=str) + "\n")
    return True


def artifacts(files: list[Path], folder: str) -> bool:
    """Log these files as artifacts of the stage run, under `folder`."""
    return note("artifacts", files=[str(Path(f).resolve()) for f in files], folder=folder)


def tags(values: dict[str, str]) -> bool:
    """Tags of the stage run."""
    return note("tags", tags={k: str(v) for k, v in values.items()})


def params(values: dict[str, str]) -> bool:
    """Params of the stage run (beyond its params sections)."""
    return note("params", params={k: str(v) for k, v in values.items()})


def version_tags(name: str, version: str, values: dict[str, str]) -> bool:
    """Tags of a registered model version (e.g. pointing back at the stage run)."""
    return note("version_tags", name=name, version=str(version), tags={k: str(v) for k, v in values.items()})


def child_runs(runs: list[dict]) -> bool:
    """Nested runs under the stage run. Each: name, tags, params (dict), metrics (list of
    [key, value, step]), start_ms, end_ms, status (FINISHED | FAILED | KILLED)."""
    return note("child_runs", runs=runs)


def register(name: str, model_dir: Path, registration: Path, data: str = "", tags: dict[str, str] | None = None) -> bool:
    """Register the model saved at `model_dir` under `name`, tagged with the DVC hash of the stage
    input `data` (a path as dvc.yaml names it) and with `tags` (the version's own: which path scores
    it, ...); write {name, version, run_id} to `registration`."""
    return note("register", name=name, model_dir=str(Path(model_dir).resolve()),
                registration=str(Path(registration).resolve()), data=data,
                tags={k: str(v) for k, v in (tags or {}).items()})


def run_id_into(file: Path, key: str) -> bool:
    """Write the stage run's id into the JSON object in `file`, under `key`, after the rest is recorded."""
    return note("run_id_into", file=str(Path(file).resolve()), key=key)


def read(path: Path | None) -> list[dict]:
    """The items handed over, in order (none when the file does not exist)."""
    if path is None or not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
