"""Carry a workspace's local store to a team server: registered models, their versions (with the
run behind each and its artifacts), aliases, tags and the audit history; then the DVC cache.

`mlcycle team migrate [--to URI]`. Version numbers are kept: a number the local store skipped (a
deleted version) is created and deleted again on the server, so that `v3` means the same model on
both and the audit history stays true. Each copied run keeps its params, metrics and tags and is
tagged `mlcycle.migrated.from_run` with its local id; tag values that named the local run's artifact
folder (the model card's) name the new one. Audit entries kept only in the local `audit.jsonl`
become registered-model tags beside the copied ones. Runs that no registered version points to stay
in the local store. A model that already has versions on the server is not touched (an error).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import tempfile
from pathlib import Path

from mlcycle.core.errors import MigrateError
from mlcycle.lifecycle import audit


def copy_run(src, dst, run_id: str, experiment: str, src_uri: str) -> tuple[str, str, str]:
    """Copy one run (params, latest metrics, tags, artifacts) into `experiment` on `dst`;
    returns (new run id, old artifact URI, new artifact URI)."""
    import mlflow
    from mlflow.entities import Metric, Param

    run = src.get_run(run_id)
    exp = dst.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else dst.create_experiment(experiment)
    tags = {k: v for k, v in run.data.tags.items() if k != "mlflow.parentRunId"}
    if "mlflow.parentRunId" in run.data.tags:
        tags["mlcycle.migrated.parent_run"] = run.data.tags["mlflow.parentRunId"]
    tags["mlcycle.migrated.from_run"] = run_id
    new = dst.create_run(exp_id, start_time=run.info.start_time, tags=tags).info
    params = [Param(k, v) for k, v in run.data.params.items()]
    metrics = [Metric(k, v, run.info.end_time or run.info.start_time, 0) for k, v in run.data.metrics.items()]
    for i in range(0, max(len(params), len(metrics), 1), 100):
        dst.log_batch(new.run_id, params=params[i:i + 100], metrics=metrics[i:i + 100])
    with tempfile.TemporaryDirectory(prefix="mlcycle-migrate-") as tmp:
        if src.list_artifacts(run_id):
            local = mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=tmp, tracking_uri=src_uri)
            dst.log_artifacts(new.run_id, local)
    dst.set_terminated(new.run_id, run.info.status, end_time=run.info.end_time)
    return new.run_id, run.info.artifact_uri, dst.get_run(new.run_id).info.artifact_uri


def identity(entry: dict) -> tuple:
    """What tells audit entries apart (a tag may hold an entry without its long details)."""
    return tuple(str(entry.get(k)) for k in ("model", "when", "action", "from_version", "to_version", "who", "reason"))


def migrate_model(src, dst, name: str, experiment: str, local_audit: list[dict], src_uri: str) -> dict:
    """Copy registered model `name` from `src` to `dst`; returns what was copied."""
    rm = src.get_registered_model(name)
    try:
        existing = dst.search_model_versions(f"name = '{name}'")
    except Exception:
        existing = []
    if existing:
        raise MigrateError(f"migrate: model '{name}' already has {len(existing)} version(s) on the server; "
                           "nothing was copied (migrate into a server that does not hold it yet)")
    try:
        dst.create_registered_model(name, description=rm.description)
    except Exception as exc:
        if "ALREADY_EXISTS" not in str(exc):
            raise
    versions = sorted(src.search_model_versions(f"name = '{name}'"), key=lambda m: int(m.version))
    by_number = {int(m.version): m for m in versions}
    runs: dict[str, tuple[str, str, str]] = {}
    placeholders, holder = [], None
    for n in range(1, (max(by_number) if by_number else 0) + 1):
        mv = by_number.get(n)
        if mv is None:  # a number the local store skipped: take it and give it back
            if holder is None:  # the server wants a source inside a run: an empty run, deleted after
                exp = dst.get_experiment_by_name(experiment)
                exp_id = exp.experiment_id if exp else dst.create_experiment(experiment)
                holder = dst.create_run(exp_id, tags={"mlflow.runName": "migration placeholder"}).info
            placeholders.append(dst.create_model_version(name, source=f"{holder.artifact_uri}/placeholder",
                                                         run_id=holder.run_id).version)
            continue
        mv = src.get_model_version(name, mv.version)
        if mv.run_id and mv.run_id not in runs:
            runs[mv.run_id] = copy_run(src, dst, mv.run_id, experiment, src_uri)
        new_run, old_uri, new_uri = runs.get(mv.run_id, (None, "", ""))
        source = mv.source.replace(old_uri, new_uri) if old_uri and mv.source.startswith(old_uri) else mv.source
        tags = {k: (v.replace(old_uri, new_uri) if old_uri else v) for k, v in (mv.tags or {}).items()}
        tags["migrated.from_source"] = mv.source[:5000]
        got = dst.create_model_version(name, source=source, run_id=new_run, tags=tags, description=mv.description)
        if str(got.version) != str(mv.version):
            raise MigrateError(f"migrate: '{name}' v{mv.version} became v{got.version} on the server; stopped")
    for v in placeholders:
        dst.delete_model_version(name, v)
    if holder is not None:
        dst.delete_run(holder.run_id)
    for k, v in (rm.tags or {}).items():
        dst.set_registered_model_tag(name, k, v)
    for alias, v in (rm.aliases or {}).items():
        dst.set_registered_model_alias(name, alias, v)
    keys = {}  # each copied entry -> its tag key (the time stamp that orders it)
    for k, v in (rm.tags or {}).items():
        if k.startswith(audit.TAG_PREFIX):
            try:
                keys[identity(json.loads(v))] = k
            except ValueError:
                continue
    added, last = 0, None
    for e in local_audit:  # in the file's order: an entry only there goes right after the one before it
        if e.get("model") != name:
            continue
        known = keys.get(identity(e))
        if known:
            last = dt.datetime.strptime(known[len(audit.TAG_PREFIX):].split(".")[0], "%Y%m%dT%H%M%S%f")
            continue
        when = dt.datetime.fromisoformat(e["when"]).replace(tzinfo=None) if e.get("when") else dt.datetime.now()
        if last is not None and when <= last:
            when = last + dt.timedelta(microseconds=1)
        dst.set_registered_model_tag(name, audit.tag_key(when), audit.tag_value(e))
        last, added = when, added + 1
    return {"model": name, "versions": len(versions), "runs": len(runs), "aliases": dict(rm.aliases or {}),
            "audit_entries": len(audit.read(Path("-"), name, dst)), "audit_added_from_file": added}


def migrate(src_uri: str, dst_uri: str, audit_file: Path, experiment: str) -> list[dict]:
    """Copy every registered model of the local store `src_uri` to `dst_uri` (see the module docstring)."""
    import mlflow

    src = mlflow.MlflowClient(src_uri, src_uri)
    dst = mlflow.MlflowClient(dst_uri, dst_uri)
    local = audit.read(audit_file)
    out = []
    for rm in src.search_registered_models():
        if rm.name != audit.LOCK_MODEL:
            out.append(migrate_model(src, dst, rm.name, experiment, local, src_uri))
    return out


def push_cache(root: Path, remote: str | None) -> str:
    """`dvc push` of the workspace's tracked data to `remote` (the default remote when None)."""
    from mlcycle.runtime.team import dvc_bin

    cmd = [dvc_bin(), "push", *(["-r", remote] if remote else [])]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise MigrateError(f"migrate: `{' '.join(cmd)}` failed: {(proc.stderr or proc.stdout).strip()[-600:]}")
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "dvc push: nothing to push"


def describe(results: list[dict]) -> str:
    if not results:
        return "migrate: the local store has no registered model"
    return "\n".join(f"migrate: {r['model']}: {r['versions']} version(s), {r['runs']} run(s), aliases "
                     f"{json.dumps(r['aliases'])}, {r['audit_entries']} audit entries on the server "
                     f"({r['audit_added_from_file']} only in the local file before)" for r in results)
