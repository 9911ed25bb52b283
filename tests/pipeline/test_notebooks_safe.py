"""Stage notebooks opened in JupyterLab write nothing: run top to bottom as JupyterLab runs them (no
injected parameters, kernel started in the notebook's folder, the workspace found from there), every
stage notebook of every task (notebooks/<task>/ and the shared ingest, each on a workspace of its
task) and the explore starter leave the pipeline's outputs, the registry, the audit log and the
MLflow runs as they were. Only the runner's `write=True` makes a notebook write."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from mlcycle.core import config, tasks
from mlcycle.core.paths import NOTEBOOK_FILES, Paths
from tests.conftest import SAMPLE, deep_merge, edit_params, make_workspace, mlflow_client, run
from tests.pipeline.conftest import digest

pytestmark = pytest.mark.slow

OUTPUTS = ["data", "models", "reports", "mlruns/audit.jsonl"]
# the sample, with fewer bootstrap resamples and explained rows: the evaluate notebook runs twice
PARAMS = deep_merge(SAMPLE, {"evaluate": {"bootstrap": 10, "explain_rows": 500}})
# the MovieLens example on a sample of its users (as tests/pipeline/test_recommend_pipeline.py runs it)
REC_PARAMS = {"ingest": {"movielens": {"params": {"user_frac": 0.2}}}, "eda": {"sample_rows": 4000},
              "evaluate": {"bootstrap": 10}, "monitor": {"min_rows": 5},
              "recommend": {"factors": 16, "iterations": 5, "weights": [0.0, 0.5, 1.0]}}
FC_PARAMS = {"ingest": {"us_employment": {"params": {"series_frac": 0.05}}},
             "forecasting": {"max_history": 120, "max_iter": 50, "backtest_windows": 2},
             "monitor": {"min_rows": 10}}  # the sample's few actuals fed back get a verdict
# the workspace fixture each task's notebooks run on: every registered task needs one
WORKSPACES = {"tabular": "ran_ws", "recommender": "rec_ws", "forecast": "fc_ws"}


@pytest.fixture(scope="module")
def ran_ws(tmp_path_factory) -> Path:
    """A sample workspace where the pipeline ran once (`dvc repro`: the runner for every stage, and the
    champion's training data in the DVC cache, where monitoring finds it), with tracking (a champion,
    its version tags and the audit log exist), and a prediction log for the monitor's defaults."""
    ws = make_workspace(tmp_path_factory.mktemp("safe") / "ws", params=PARAMS)
    run(["dvc", "repro"], ws, timeout=1200)
    assert (ws / "mlruns" / "audit.jsonl").exists()
    prediction_log(ws)
    return ws


@pytest.fixture(scope="module")
def rec_ws(tmp_path_factory) -> Path:
    """The MovieLens example where the pipeline ran once (`dvc repro`), with tracking and a champion
    (promoted by hand when the gate keeps popularity ahead on the sample), and a prediction log of
    `/recommend` answers with feedback on some (what the monitor reads by default)."""
    ws = make_workspace(tmp_path_factory.mktemp("safe-rec") / "ws")
    run(["mlcycle", "init", "--example", "movielens", "--force"], ws)
    edit_params(ws, REC_PARAMS)
    run(["dvc", "repro"], ws, timeout=1200)
    name = json.loads((ws / "models/registered.json").read_text())["name"]
    try:
        mlflow_client(ws).get_model_version_by_alias(name, "champion")
    except Exception:  # no champion: the gate kept the popularity baseline ahead on the sample
        run(["mlcycle", "model", "promote", "--model", "1", "--reason", "a champion for the monitor notebook"], ws)
    assert (ws / "mlruns" / "audit.jsonl").exists()
    recommendation_log(ws)
    return ws


@pytest.fixture(scope="module")
def fc_ws(tmp_path_factory) -> Path:
    """The US employment example on a sample of its series where the pipeline ran once (`dvc repro`),
    with tracking and a champion, and a prediction log of `/forecast` answers with the actuals of
    some fed back (what the monitor reads by default)."""
    ws = make_workspace(tmp_path_factory.mktemp("safe-fc") / "ws")
    run(["mlcycle", "init", "--example", "us-employment", "--force"], ws)
    edit_params(ws, FC_PARAMS)
    run(["dvc", "repro"], ws, timeout=1200)
    assert (ws / "mlruns" / "audit.jsonl").exists()
    forecast_log(ws)
    return ws


def forecast_log(ws: Path) -> None:
    """`/forecast` answers as `mlcycle serving start` logs them (the saved model's forecasts of each
    series from the history it held a horizon ago, a row per step), and the held-out values of the
    first steps fed back as their actuals, as `POST /feedback` stores them."""
    from mlcycle.serving.feedback import FeedbackStore
    from mlcycle.serving.predlog import Batch, PredictionLog
    from mlcycle.tasks.forecast import backtest
    from mlcycle.tasks.forecast import model as forecast_model

    model, meta = forecast_model.load(ws / "models" / "model")
    version = json.loads((ws / "models/registered.json").read_text())["version"]
    held = pd.read_parquet(ws / "data/processed/series.parquet").set_index(["unique_id", "ds"])["y"]
    log_dir = ws / "data" / "predictions"
    log = PredictionLog(log_dir, max_rows=300)
    log.start()
    actuals = []
    before, _ = backtest.cut(model.history, 0, model.fc.horizon)  # as served a horizon ago: the held-out values judge it
    for i, (uid, f) in enumerate(model.forecast(before).groupby("unique_id", sort=True)):
        f = f.sort_values("step")
        rid, n = f"fc-{i:04d}", len(f)
        log.submit(Batch({model.fc.id_columns[0]: [uid] * n, "series": [uid] * n, "horizon": [n] * n,
                          "history_rows": [0] * n},
                         {"time": list(f["ds"]), "step": f["step"].tolist(), "forecast": f["yhat"].tolist(),
                          "lower": f["lower"].tolist(), "upper": f["upper"].tolist()},
                         str(version), rid, dt.datetime.now(dt.UTC)))
        actuals += [{"request_id": rid, "time": t.isoformat(), "value": float(held[(uid, t)])}
                    for t in f["ds"].head(3) if (uid, t) in held.index]
    log.close()
    assert FeedbackStore(log_dir).add(actuals, meta) == len(actuals)


def recommendation_log(ws: Path, n: int = 40) -> None:
    """`/recommend` answers as `mlcycle serving start` logs them (the saved model's lists for test users), and
    a click on the first item of half of them, stored as `POST /feedback` stores it."""
    from mlcycle.serving.feedback import FeedbackStore
    from mlcycle.serving.predlog import Batch, PredictionLog
    from mlcycle.tasks.recommender import model as recommend_model

    model, meta = recommend_model.load(ws / "models" / "model")
    version = json.loads((ws / "models/registered.json").read_text())["version"]
    users = pd.read_parquet(ws / "data/processed/test.parquet")["user"].astype("str").drop_duplicates().head(n).tolist()
    log_dir = ws / "data" / "predictions"
    log = PredictionLog(log_dir, max_rows=300)
    log.start()
    answers = []
    for i, user in enumerate(users):
        out = model.recommend(user, 5, [])
        rid = f"rec-{i:04d}"
        log.submit(Batch({"user": [user], "k": [5], "exclude": [""]},
                         {"prediction": [json.dumps(out["item"].tolist())], "score": [float(out["score"].iloc[0])],
                          "source": [str(out["source"].iloc[0])]}, str(version), rid, dt.datetime.now(dt.UTC)))
        answers.append((rid, out["item"].tolist()))
    log.close()
    clicks = [{"request_id": rid, "item": items[0]} for rid, items in answers[: n // 2] if items]
    assert FeedbackStore(log_dir).add(clicks, meta) == len(clicks)


def prediction_log(ws: Path) -> None:
    """Requests as `mlcycle serving start` logs them: the holdout's inputs with scores (what monitor reads by default)."""
    from mlcycle.serving.predlog import Batch, PredictionLog
    from mlcycle.tasks.tabular.features import FeatureSpec

    spec = FeatureSpec.from_json(ws / "data/processed/features.json")
    rows = pd.read_parquet(ws / "data/processed/test.parquet")[spec.inputs].head(600)
    log = PredictionLog(ws / "data" / "predictions", max_rows=300)
    log.start()
    for i in range(0, len(rows), 200):
        part = rows.iloc[i:i + 200]
        log.submit(Batch(part, {"prediction": [0] * len(part), "score": [0.3] * len(part)}, "1", f"req-{i}",
                         dt.datetime.now(dt.UTC)))
    log.close()


def snapshot(ws: Path) -> dict[str, str]:
    """md5 of every output file, the registry's aliases and tags, and the number of MLflow runs."""
    from mlflow.entities import ViewType

    state = {f"file {k}": v for k, v in digest(ws, OUTPUTS).items()}
    client = mlflow_client(ws)
    for rm in client.search_registered_models():
        model = client.get_registered_model(rm.name)
        state[f"registry {rm.name} aliases"] = json.dumps(dict(sorted(model.aliases.items())))
        state[f"registry {rm.name} tags"] = json.dumps(dict(sorted(model.tags.items())))
        for mv in client.search_model_versions(f"name = '{rm.name}'"):
            tags = client.get_model_version(rm.name, mv.version).tags
            state[f"registry {rm.name} v{mv.version} tags"] = json.dumps(dict(sorted(tags.items())))
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    state["mlflow runs"] = str(len(client.search_runs(experiments, run_view_type=ViewType.ALL, max_results=50000)))
    return state


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def execute_as_in_jupyterlab(path: Path) -> str | None:
    """Run every cell of the notebook in a fresh kernel started in its folder, with its own defaults;
    the first error, or None."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(str(path), as_version=4)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    except CellExecutionError as exc:
        return str(exc)[-3000:]
    return None


def test_every_task_has_a_workspace():
    assert set(WORKSPACES) == set(tasks.REGISTRY), "a task's notebooks need a workspace of that task here"


@pytest.mark.parametrize("task", list(tasks.REGISTRY))
def test_notebooks_opened_in_jupyterlab_write_nothing(task, request, monkeypatch):
    ws = request.getfixturevalue(WORKSPACES[task])
    assert config.load(ws / "params.yaml").task == task
    monkeypatch.delenv("MLCYCLE_ROOT", raising=False)  # the notebooks find the workspace from their folder
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # two kernels at a time, one OpenMP thread each: both cores busy, none oversubscribed (the
    # notebooks write nothing, which is what this test checks, so they cannot disturb each other)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = snapshot(ws)
    notebooks = [Paths(ws).notebook(stage, task) for stage in NOTEBOOK_FILES]  # the task's own and the shared ones
    assert {p.parent.name for p in notebooks} == {"notebooks", task}
    notebooks.append(ws / "notebooks" / "explore" / "starter.ipynb")
    errors, seconds = {}, {}

    def one(p: Path) -> None:
        name = str(p.relative_to(ws / "notebooks"))
        t0 = time.perf_counter()
        error = execute_as_in_jupyterlab(p)
        seconds[name] = round(time.perf_counter() - t0, 1)
        if error is not None:
            errors[name] = error

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, notebooks))
    print("seconds per notebook:", seconds)
    assert not errors, "\n\n".join(f"{name}:\n{e}" for name, e in errors.items())
    after = snapshot(ws)
    assert not changed(before, after), f"notebooks run with write = False changed: {changed(before, after)}"
    assert not list((ws / "notebooks").rglob("*.png")) and not list((ws / "notebooks").rglob("*.json"))


def test_write_true_writes(ran_ws, monkeypatch, tmp_path):
    """The snapshot sees what a notebook writes: validate, with the runner's `write=True`, writes its
    outputs again after they were removed."""
    import papermill

    monkeypatch.delenv("MLCYCLE_ROOT", raising=False)
    removed = [ran_ws / "reports/metrics/validate.json", ran_ws / "reports/validate_findings.json"]
    for p in removed:
        p.unlink()
    before = snapshot(ran_ws)
    path = Paths(ran_ws).notebook("validate", "tabular")
    papermill.execute_notebook(str(path), str(tmp_path / "out.ipynb"), parameters={"write": True},
                               kernel_name="python3", cwd=str(path.parent), progress_bar=False)
    assert changed(before, snapshot(ran_ws)) == sorted(f"file {p.relative_to(ran_ws)}" for p in removed)
