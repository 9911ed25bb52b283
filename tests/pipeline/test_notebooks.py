"""Every pipeline notebook executed on a small sample, through the runner `dvc repro` uses."""

import json

import nbformat
import pytest

from mlcycle.core.paths import NOTEBOOKS, STAGES
from tests.conftest import SAMPLE, make_workspace, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample_ws(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("nb") / "ws", params=SAMPLE)
    outputs = {}
    for stage in STAGES:
        cmd = ["python", "-m", "mlcycle", "report"] if stage == "report" else ["python", "-m", "mlcycle", "run", stage]
        outputs[stage] = run(cmd, ws)
    return ws, outputs


@pytest.mark.parametrize("stage", list(NOTEBOOKS))
def test_stage_executes_and_renders(sample_ws, stage):
    ws, outputs = sample_ws
    assert f"{stage}: FINISHED" in outputs[stage].stdout
    nb = nbformat.read(str(ws / "reports" / "executed" / f"{stage}.ipynb"), as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert "start_time" not in json.dumps(nb.metadata)  # timestamps stripped
    html = (ws / "reports" / f"{stage}.html").read_text()
    assert "Traceback" not in html and "Warning" not in html
    assert "params_file" not in html and 'class="highlight hl-ipython3"' not in html  # code hidden by default


def test_stage_outputs(sample_ws):
    ws, _ = sample_ws
    assert len(list((ws / "data/raw/nycflights13").glob("*.parquet"))) == 5
    assert json.loads((ws / "reports/metrics/validate.json").read_text())["passed"] is True
    assert len(list((ws / "reports/figures/eda").glob("*.png"))) >= 5
    eda = json.loads((ws / "reports/metrics/eda.json").read_text())
    assert eda["task"] == "classification" and eda["rows"] > 0 and 0 < eda["label_rate"] < 1
    feats = json.loads((ws / "reports/metrics/features.json").read_text())
    assert feats["train_rows"] > feats["valid_rows"] > 0 and feats["test_rows"] > 0
    assert (ws / "models/model/MLmodel").exists() and (ws / "models/baseline/MLmodel").exists()
    ev = json.loads((ws / "reports/metrics/evaluate.json").read_text())
    assert 0.5 < ev["model"]["roc_auc"] <= 1 and 0 < ev["model"]["f1"] <= 1
    assert {p.name for p in (ws / "reports/plots").glob("*.csv")} == {"roc.csv", "pr.csv", "calibration.csv", "confusion.csv"}
    index = (ws / "reports/index.html").read_text()
    for stage in NOTEBOOKS:
        assert f'href="{stage}.html"' in index
    assert f"{ev['model']['roc_auc']:.4f}" in index
    assert '<p id="gate"><strong>promoted</strong>' in index


def test_the_compiled_form_answers_as_the_model_on_the_flights_holdout(sample_ws):
    """The train stage proved the compiled form on the flights validation and holdout rows; scored
    again here from the saved files (frames and request records), it answers as the pipeline."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd

    from mlcycle.core import scoring
    from mlcycle.core.paths import Paths
    from mlcycle.core.spec import FeatureSpec
    from mlcycle.tasks.tabular import compiled

    ws, _ = sample_ws
    paths = Paths(ws)
    feats = json.loads((ws / "reports/metrics/features.json").read_text())
    checked = json.loads((ws / "reports/metrics/train.json").read_text())["compiled"]
    assert checked["agrees"] == 1 and checked["decisions_differ"] == 0 and checked["max_abs_diff"] <= compiled.TOLERANCE
    assert checked["rows"] == feats["valid_rows"] + feats["test_rows"] and checked["request_rows"] > 0
    pipe = mlflow.sklearn.load_model(str(paths.model))
    fast, verdict = compiled.load(paths.model, pipeline=pipe)
    assert fast is not None and verdict.agrees, verdict.reason
    spec = FeatureSpec.from_json(paths.feature_spec)
    X = pd.read_parquet(paths.split_file("test"))[spec.inputs]
    want = scoring.scores(pipe, X, spec.task)
    assert np.abs(scoring.scores(compiled.load(paths.model)[0], X, spec.task) - want).max() <= compiled.TOLERANCE
    records = compiled.request_rows(X.head(compiled.PIPELINE_FROM - 1))
    prepared = fast.prepare(records)
    assert prepared is not None  # flights rows as a client sends them take the record path
    assert np.abs(scoring.scores(fast, prepared, spec.task) - want[:len(records)]).max() <= compiled.TOLERANCE


def test_show_code_switch(sample_ws):
    ws, _ = sample_ws
    text = (ws / "params.yaml").read_text().replace("show_code: false", "show_code: true")
    (ws / "params.yaml").write_text(text)
    run(["python", "-m", "mlcycle", "run", "validate"], ws)
    html = (ws / "reports/validate.html").read_text()
    assert 'class="highlight hl-ipython3"' in html and ">check<" in html


def test_same_params_same_metrics(sample_ws):
    ws, _ = sample_ws
    first = (ws / "reports/metrics/evaluate.json").read_text()
    run(["python", "-m", "mlcycle", "run", "train"], ws)
    run(["python", "-m", "mlcycle", "run", "evaluate"], ws)
    assert (ws / "reports/metrics/evaluate.json").read_text() == first


def test_failing_stage_names_the_problem(sample_ws, tmp_path):
    ws, _ = sample_ws
    good = (ws / "params.yaml").read_text()
    (ws / "params.yaml").write_text(good.replace("target: arr_delay", "target: arrival_delay"))
    try:
        proc = run(["python", "-m", "mlcycle", "run", "validate"], ws, check=False)
    finally:
        (ws / "params.yaml").write_text(good)
    assert proc.returncode == 1
    assert "target column 'arrival_delay' is missing" in proc.stderr
    assert "reports/validate.html" in proc.stderr
    import mlflow

    c = mlflow.MlflowClient(f"sqlite:///{ws / 'mlruns' / 'mlflow.db'}")
    runs = c.search_runs([c.get_experiment_by_name("mlcycle").experiment_id], "tags.`mlcycle.stage` = 'validate'",
                         order_by=["attributes.start_time DESC"], max_results=1)
    assert runs[0].info.status == "FAILED" and "arrival_delay" in runs[0].data.tags["mlcycle.error"]


def test_rerun_renders_identical_report(sample_ws):
    ws, _ = sample_ws
    run(["python", "-m", "mlcycle", "run", "features"], ws)
    before = {p: (ws / p).read_bytes() for p in ("reports/features.html", "reports/executed/features.ipynb")}
    run(["python", "-m", "mlcycle", "run", "features"], ws)
    for p, content in before.items():
        assert (ws / p).read_bytes() == content, p


def test_notebook_run_as_in_jupyterlab_reads_the_same_params(sample_ws, tmp_path):
    """JupyterLab starts kernels in the notebook's folder, notebooks/<task>/: the notebook must find
    params.yaml (two folders up) and the outputs by itself and reproduce the pipeline's results."""
    from mlcycle.core.paths import Paths

    ws, _ = sample_ws
    before = (ws / "reports/metrics/features.json").read_text()
    path = Paths(ws).notebook("features", "tabular")
    assert path.parent == ws / "notebooks" / "tabular"
    nb = nbformat.read(str(path), as_version=4)
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    assert (ws / "reports/metrics/features.json").read_text() == before
    for folder in (ws / "notebooks", path.parent):
        assert not list(folder.glob("*.parquet")) and not (folder / "reports").exists() and not (folder / "data").exists()


def test_bare_benchmark_baseline_computes_the_same_results(sample_ws, tmp_path):
    """bench/bare_pipeline.py (the speed baseline) runs the notebooks' code in one process: it must
    reach the same metrics as the runner, or the benchmark would compare different work."""
    import sys

    from tests.conftest import ROOT

    ws, _ = sample_ws
    bare = make_workspace(tmp_path / "bare", params=SAMPLE)
    run([sys.executable, str(ROOT / "bench" / "bare_pipeline.py"), str(bare)], bare)
    for name in ("features", "train", "evaluate"):
        assert (bare / f"reports/metrics/{name}.json").read_text() == (ws / f"reports/metrics/{name}.json").read_text(), name
    assert (bare / "reports/index.html").exists() and not (bare / "mlruns").exists()


def test_one_model_per_origin_is_registered_judged_and_served(sample_ws, tmp_path):
    """`train.segment_by: [origin]` through the train and evaluate notebooks: segment models trained
    on the local Dask cluster, one routed MLflow model registered, compared per origin on the
    holdout, judged by the gate's segment bound, and served by the unchanged app. Runs last: the
    params are restored afterwards."""
    import shutil

    from fastapi.testclient import TestClient

    from mlcycle.serving import app
    from mlcycle.serving.settings import Settings
    from tests.conftest import edit_params, mlflow_client

    ws, _ = sample_ws
    good = (ws / "params.yaml").read_text()
    edit_params(ws, {"train": {"segment_by": ["origin"], "min_segment_rows": 500}, "compute": {"workers": 2}})
    try:
        run(["python", "-m", "mlcycle", "run", "train"], ws)
        run(["python", "-m", "mlcycle", "run", "evaluate"], ws)
    finally:
        (ws / "params.yaml").write_text(good)
    trained = json.loads((ws / "reports/metrics/train.json").read_text())["segments"]
    assert trained["by"] == ["origin"] and trained["segments"] == 3 and trained["models"] + trained["to_global"] == 3
    evaluated = json.loads((ws / "reports/metrics/evaluate.json").read_text())["segments"]
    assert set(evaluated) == {"(all rows)", "EWR", "JFK", "LGA"}
    assert evaluated["(all rows)"]["rows"] == sum(evaluated[k]["rows"] for k in ("EWR", "JFK", "LGA"))
    decision = json.loads((ws / "reports/gate_decision.json").read_text())
    if trained["models"]:
        assert any("segment drop" in c["criterion"] for c in decision["criteria"]) or "not judged" in decision["note"]
    assert "Segment models against the global model" in (ws / "reports/evaluate.html").read_text()
    registered = json.loads((ws / "models/registered.json").read_text())
    uri = f"models:/{registered['name']}/{registered['version']}"
    store = f"sqlite:///{ws / 'mlruns' / 'mlflow.db'}"
    assert mlflow_client(ws).get_model_version(registered["name"], registered["version"]).tags[
        "mlcycle.scoring_path"] == "sklearn"
    rows = json.loads((ws / "models/model/input_example.json").read_text())
    records = [{k: (None if v != v else v) for k, v in zip(rows["columns"], r, strict=True)}  # NaN: missing
               for r in rows["data"]]
    settings = Settings(uri, store, log_dir=str(tmp_path / "log"), log_fallback_dir=str(tmp_path / "spill"))
    with TestClient(app.create_app(settings)) as c:
        info = c.get("/model").json()
        answer = c.post("/predict", json={"dataframe_records": records})
        unseen = c.post("/predict", json={"dataframe_records": [{**records[0], "origin": "XYZ"}]})
    assert info["version"] == registered["version"]
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == len(records)
    assert unseen.status_code == 200  # an origin never trained on goes to the global model
    shutil.rmtree(tmp_path / "log", ignore_errors=True)
