"""The MLflow UI as the workspace serves it (`make ui`, and the team server): MLflow's own server,
started with `--app-name mlcycle` (the entry point `mlflow.app` in pyproject.toml), with one change.
Its page at `/` opens in MLflow's model-training view (runs, metrics, registered models), not the
GenAI view MLflow 3 shows by default, and on the runs of the workspace's experiment.

MLflow keeps the view in the browser (localStorage `mlflow.workflowType_v1`, the switch in its
side bar): the page sets it only when the browser holds no choice, so a user who switches keeps
theirs. Likewise MLflow's AI assistant does not open its panel by itself on a first visit. The experiment is the one params.yaml names (`tracking.experiment`) when the server runs
in a workspace, `MLCYCLE_UI_EXPERIMENT` otherwise; with neither, or before the pipeline created it,
the page opens on the list of experiments.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

EXPERIMENT_ENV = "MLCYCLE_UI_EXPERIMENT"
VIEW_KEY = "mlflow.workflowType_v1"  # MLflow's own key: useLocalStorage("mlflow.workflowType", version 1)
VIEW = "machine_learning"  # MLflow's model-training view (the other: "genai")
# MLflow opens its AI assistant's panel on a browser's first visit unless this says it did already
ASSISTANT_OPENED_KEY = "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1"


def experiment_name(root: Path | None = None) -> str | None:
    """The experiment the page opens on: MLCYCLE_UI_EXPERIMENT, else params.yaml's
    tracking.experiment in the workspace the server runs in (None outside one)."""
    if os.environ.get(EXPERIMENT_ENV):
        return os.environ[EXPERIMENT_ENV]
    from mlcycle.core.errors import MlcycleError
    from mlcycle.core.workspace import Workspace

    try:
        return Workspace.open(root=root).params.tracking.experiment
    except MlcycleError:
        return None


def landing_script(experiment_id: str | None) -> str:
    """The script the page at `/` runs before MLflow's app: the model-training view unless the
    browser chose, no assistant panel opening by itself (its button stays), and the experiment's
    runs unless the address names a page."""
    route = f"#/experiments/{experiment_id}/runs" if experiment_id else "#/experiments"
    unset = "".join(f"if(!s.getItem({json.dumps(k)}))s.setItem({json.dumps(k)},{json.dumps(v)});"
                    for k, v in ((VIEW_KEY, json.dumps(VIEW)), (ASSISTANT_OPENED_KEY, "true")))
    return ("<script>(function(){"
            f"try{{var s=window.localStorage;{unset}}}catch(e){{}}"
            "var h=window.location.hash;"
            f"if(!h||h==='#'||h==='#/'){{window.location.replace({json.dumps(route)});}}"
            "})();</script>")


def with_landing(index_html: str, experiment_id: str | None) -> str:
    """MLflow's index.html with the landing script first in its head (before the app's bundle)."""
    script = landing_script(experiment_id)
    return index_html.replace("<head>", "<head>" + script, 1) if "<head>" in index_html else script + index_html


def create_app():
    """The ASGI app `mlflow ui --app-name mlcycle` serves: MLflow's FastAPI app with its Flask view of
    `/` replaced by one that serves the same index.html with the landing script."""
    from flask import Response
    from mlflow.server import app as flask_app
    from mlflow.server.fastapi_app import create_fastapi_app

    index = Path(flask_app.static_folder) / "index.html"

    def serve():
        experiment_id = None
        name = experiment_name()
        if name:
            from mlflow.server.handlers import _get_tracking_store  # the store this server serves

            try:
                found = _get_tracking_store().get_experiment_by_name(name)
            except Exception:  # noqa: BLE001 (a store that cannot answer: the page opens on the list)
                found = None
            experiment_id = found.experiment_id if found is not None and found.lifecycle_stage == "active" else None
        return Response(with_landing(index.read_text(encoding="utf-8"), experiment_id), mimetype="text/html")

    flask_app.view_functions["serve"] = serve
    return create_fastapi_app(flask_app)
