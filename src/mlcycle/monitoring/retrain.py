"""Retraining on a trigger (`mlcycle monitoring retrain --input FILE`): the loop from new data to a new champion.

1. **validate** the batch against the schema (as `mlcycle data add` does); a failing batch stops
   here, stored nowhere, and the command exits non-zero;
2. **monitor** it (the monitor stage, notebook and MLflow run) against the champion's training data;
3. when the verdict calls for retraining (`retrain.trigger`) and not `--dry-run`: **add** the
   labelled batch as a new DVC-tracked file recorded in data/batches.jsonl (the training data is
   data.path plus the recorded batches, cut to `retrain.window`), **re-run** the pipeline with
   `dvc repro`, and let the **gate** decide the promotion; a task that keeps every batch
   (`Task.keeps_batches`: a forecast's observations are its history) adds it without retraining too;
4. **link** every step: each stage run of that pipeline carries the tag
   `mlcycle.trigger.monitor_run` (the monitor run's id), the new model version the tag
   `trigger_monitor_run`, the gate decision is on the version as usual, and one `retrain` entry in
   the audit log names the batch, the monitor run, the new version and the gate's outcome.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlcycle.core import tasks
from mlcycle.core.config import Params
from mlcycle.core.errors import DataError, RetrainError
from mlcycle.core.paths import Paths
from mlcycle.lifecycle import audit, registry
from mlcycle.monitoring import batches, monitor
from mlcycle.runtime import tracking
from mlcycle.runtime.runner import run_stage


def run_monitor(root: Path, params_file: str, current: Path) -> dict:

    run_stage("monitor", root, params_file, parameters={"current": str(current)})
    return monitor.read_verdict(root)


def repro(root: Path, trigger_run: str | None) -> None:
    """`dvc repro` of the whole pipeline, its stage runs tagged with the monitor run that triggered it."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the stages call `python`
    if trigger_run:
        env[tracking.TRIGGER_ENV] = trigger_run
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=root, env=env)
    if proc.returncode != 0:
        raise RetrainError(f"`dvc repro` failed (exit {proc.returncode}) while retraining; the champion is unchanged. "
                           "The batch stays recorded in data/batches.jsonl: fix the cause and run `dvc repro`")


def retrain(root: Path, params: Params, batch: str | Path, dry_run: bool = False, name: str | None = None,
            params_file: str = "params.yaml", log=print) -> dict:
    """Validate, monitor and, when called for, add the batch and retrain. Returns what happened."""
    src = Path(batch).expanduser()
    src = src if src.is_absolute() else (Path.cwd() / src)
    if not src.exists():
        raise DataError(f"batch file '{batch}' does not exist")
    result = batches.check(src, params, root)
    if not result.ok:
        raise DataError(f"batch {src.name} failed validation; nothing was stored or retrained:\n"
                        + result.summary(footer=None))
    verdict = run_monitor(root, params_file, src)
    log(monitor.summary(verdict))
    out = {"batch": src.name, "verdict": {k: verdict[k] for k in ("status", "retrain", "reasons")},
           "monitor_run_id": verdict.get("mlflow_run_id"), "model_version": verdict["model"]["version"],
           "retrained": False}
    if not verdict["retrain"]:
        if tasks.active(params).keeps_batches and not dry_run:  # a forecast's history: every observation is kept
            _, record = batches.add(src, params, root, name)
            out.update(batch_file=record["file"], added=True)
            log(f"retrain: not called for; {record['file']} added ({record['rows']} rows) to the history the next "
                "training starts from (the task keeps every batch)")
            return out
        log("retrain: not called for; the batch was not added")
        return out
    if dry_run:
        log("retrain: called for (dry run: nothing added, nothing retrained)")
        out["dry_run"] = True
        return out
    _, record = batches.add(src, params, root, name)
    log(f"retrain: {record['file']} added ({record['rows']} rows); running the pipeline")
    repro(root, out["monitor_run_id"])
    paths = Paths(root)
    decision = json.loads(paths.gate_decision.read_text())
    reg = json.loads(paths.registered.read_text())
    client, _ = tracking.setup(root, params)
    champ = registry.champion(client, params.tracking.model_name)
    entry = audit.append(
        Paths(root).audit_log, client, params.tracking.model_name, "retrain", out["model_version"],
        champ.version if champ else None,
        f"batch {record['name']}: {'; '.join(verdict['reasons'])}; gate: {decision['summary']}",
        {"batch": record["file"], "batch_md5": record["md5"], "monitor_run_id": out["monitor_run_id"],
         "candidate_version": reg["version"], "gate": decision["outcome"]})
    out.update(retrained=True, candidate_version=reg["version"], gate=decision["outcome"],
               champion_version=champ.version if champ else None, batch_file=record["file"], audit=entry)
    log(f"retrain: version {reg['version']} {decision['outcome']}; champion is v{out['champion_version']}")
    log(f"retrain: commit the new data version with:\n  git add {record['file']}.dvc {record['gitignore']} "
        f"data/batches.jsonl dvc.lock reports && git commit -m 'retrain on batch {record['name']}' && dvc push")
    return out
