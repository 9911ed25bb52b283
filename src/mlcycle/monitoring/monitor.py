"""Monitoring: is the champion still seeing the data it was trained on, and still as good?

`mlcycle monitoring run` (notebook `notebooks/<task>/07_monitor.ipynb`, run through the runner like every
stage) loads the model the monitor judges (`serve.model_uri`, default the champion) and hands it to
its task's monitor (`Task.monitor_module`: `mlcycle.tasks.tabular.monitor` for a table model's
features and scores, `mlcycle.tasks.recommender.monitor` for a recommender's interactions), which
reads the reference and the current data and returns the verdict.

Files: `reports/monitor/verdict.json` (the whole verdict), `reports/metrics/monitor.json` (numbers
MLflow records), `reports/monitor.html` (the rendered notebook). The MLflow run of the stage is
tagged with the model version it judged, and that version gets the tags `monitor.last_run_id` and
`monitor.last_verdict`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from mlcycle.core import record, tasks
from mlcycle.core.config import Params
from mlcycle.core.errors import MonitorError, ServeError
from mlcycle.core.paths import Paths
from mlcycle.core.workspace import Workspace, parse_model_uri
from mlcycle.lifecycle.registry import unresolved_message
from mlcycle.runtime import tracking
from mlcycle.serving import model

VERDICT = Path("reports/monitor/verdict.json")


def run(root: Path, params: Params, current: str | None = None, days: float | None = None,
        model_uri: str | None = None, now: dt.datetime | None = None) -> dict:
    """`check`, then write the verdict files."""
    verdict = check(root, params, current, days, model_uri, now)
    write(root, verdict)
    return verdict


def check(root: Path, params: Params, current: str | None = None, days: float | None = None,
          model_uri: str | None = None, now: dt.datetime | None = None) -> dict:
    """Load the model, then its task's monitor reads the reference and the current data and assesses; writes nothing."""
    client, _ = tracking.setup(root, params)
    uri = model_uri or params.serve.model_uri or Workspace(Paths(root), params).champion_uri()
    try:
        served = model.load(client, uri, compiled=params.serve.compiled)
    except ServeError as exc:
        name, alias, _ = parse_model_uri(uri)
        raise MonitorError((alias and unresolved_message(client, name, uri, command="monitoring run"))
                           or str(exc).replace("serve: ", "monitor: ")) from None
    own = tasks.for_objective((served.meta or {}).get("task") or params.data.task).monitor()
    return own.check(root, params, served, current, days, now)


def write(root: Path, verdict: dict) -> None:

    path = root / VERDICT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdict, indent=2, default=str) + "\n")
    metrics = {"rows": verdict["current"]["rows"], "retrain": int(verdict["retrain"])}
    metrics.update(own_monitor(verdict).metrics_of(verdict))
    for v in verdict.get("live") or []:
        if "hit_rate" in v:
            metrics[f"live_hit_rate_v{v['version']}_{v['route']}"] = v["hit_rate"]
    if verdict.get("performance"):
        p = verdict["performance"]
        metrics.update({f"{p['metric']}_now": p["now"], f"{p['metric']}_at_training": p["at_training"]})
    out = Paths(root).metrics("monitor")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metrics, indent=2) + "\n")
    record.artifacts([path], "monitor")  # under the runner: the verdict joins the monitor run, which the version points to
    m = verdict["model"]
    record.tags({"mlcycle.monitor.model": str(m.get("name")), "mlcycle.monitor.model_version": str(m.get("version")),
                 "mlcycle.monitor.status": verdict["status"], "mlcycle.monitor.retrain": str(verdict["retrain"]).lower(),
                 "mlcycle.monitor.source": verdict["current"]["source"][:250]})
    if m.get("name") and m.get("version"):
        record.version_tags(m["name"], m["version"], {
            "monitor.last_run_id": "{run_id}",
            "monitor.last_verdict": f"{verdict['status']}; retrain {'yes' if verdict['retrain'] else 'no'}"})
    record.run_id_into(path, "mlflow_run_id")


def own_monitor(verdict: dict):
    """The monitor module of the task that wrote `verdict` (a table model's verdict names no task)."""
    return tasks.for_objective(verdict.get("task")).monitor()


def tables_of(verdict: dict) -> dict:
    """The task's own tables of a verdict (name -> DataFrame)."""
    return own_monitor(verdict).tables_of(verdict)


def read_verdict(root: Path) -> dict:
    path = root / VERDICT
    if not path.exists():
        raise MonitorError(f"no verdict at {VERDICT}: the monitor stage did not finish")
    return json.loads(path.read_text())


def summary(verdict: dict) -> str:
    """A few terminal lines, by the monitor of the task that wrote the verdict."""
    return own_monitor(verdict).summary(verdict)


def takeaways(verdict: dict) -> str:
    """What this run's current data showed against the reference, as Markdown bullets."""
    return own_monitor(verdict).takeaways(verdict)
