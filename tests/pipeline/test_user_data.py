"""Your own table after one step (`mlcycle init --data FILE --target COL`): classification with a time
column (text dates in a non-ISO format, an id, booleans, missing values) and regression without one.
Each runs through `dvc repro`, is served taking the raw rows users have (the time column as the file
holds it, the id accepted and logged), and the one with a time column is replayed by `mlcycle
simulate`. No table of the default flights example is read or written."""

import json

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import SAMPLE, init_data, make_workspace, run, up_to_date
from tests.serve.conftest import serving

pytestmark = pytest.mark.slow

FAST = {"eda": SAMPLE["eda"], "train": {"max_iter": 60}, "evaluate": {"bootstrap": 50, "explain_rows": 500}}


def churn_csv(path, n=3000, seed=0):
    """Classification: text labels, categoricals and booleans with missing values, a date, an id."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n).astype(float)
    plan = rng.choice(["basic", "plus", "pro", None], n, p=[0.5, 0.3, 0.15, 0.05])
    charges = rng.normal(60, 20, n)
    charges[rng.random(n) < 0.08] = np.nan
    logit = -0.05 * tenure + 0.03 * np.nan_to_num(charges, nan=60) + np.where(plan == "basic", 0.8, 0)
    churn = np.where(rng.random(n) < 1 / (1 + np.exp(-(logit - 1.5))), "yes", "no")
    signup = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "signup": signup.strftime("%d/%m/%Y"),  # not ISO 8601: init proposes the format that reads it
        "tenure": tenure, "plan": plan, "monthly_charges": charges,
        "paperless": rng.choice([True, False], n),
        "churn": churn,
    }).to_csv(path, index=False)


def prices_parquet(path, n=3000, seed=1):
    rng = np.random.default_rng(seed)
    area = rng.uniform(30, 200, n)
    district = rng.choice(["north", "south", "east", "west"], n)
    price = 2.5 * area + np.select([district == "north", district == "south"], [80, -40], 0) + rng.normal(0, 15, n)
    pd.DataFrame({"area": area, "district": district, "rooms": rng.integers(1, 6, n), "price": price}).to_parquet(path)


def no_flights_table(ws):
    """Nothing of the default example ran: no ingest, no enrichment tables, no flights files."""
    assert not (ws / "data/raw/nycflights13").exists()
    stages = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
    assert not [s for s in stages if s.startswith(("ingest", "tables"))], list(stages)
    assert "nycflights13" not in (ws / "dvc.lock").read_text()


def served_raw_row(ws, tmp_path, row: dict, passthrough: str | None, bad: dict | None = None) -> dict:
    """POST one raw row to a real `mlcycle serving start` (and a bad one, which must get a 422 naming its
    column); the answer, and the row's prediction-log entry."""
    log_dir = tmp_path / "predlog"
    with serving(ws, log_dir, None) as server:
        r = httpx.post(f"{server.url}/predict", json={"dataframe_records": [row]}, timeout=30)
        assert r.status_code == 200, r.text
        model = httpx.get(f"{server.url}/model", timeout=10).json()
        for column, value in (bad or {}).items():
            r_bad = httpx.post(f"{server.url}/predict", json={"dataframe_records": [dict(row, **{column: value})]},
                               timeout=30)
            assert r_bad.status_code == 422 and column in r_bad.text, r_bad.text
    logged = pd.read_parquet(log_dir)
    assert len(logged) == 1
    if passthrough:
        assert logged[passthrough].iloc[0] == row[passthrough]  # an id sent with the row is logged, not refused
    return {"answer": r.json(), "model": model}


def test_classification_with_a_time_column(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    churn_csv(ws / "data/raw/churn.csv")
    # an Optuna search with time-ordered folds as well
    said = init_data(ws, "data/raw/churn.csv", "churn", params={
        **FAST, "train": {"max_iter": 60, "search": {"method": "optuna", "trials": 3, "cv_folds": 3}},
        "simulate": {"period": "quarter", "train_periods": 5, "periods": 1}})
    print(said)
    assert "task: classification" in said and "positive class: 'yes'" in said
    assert "'%d/%m/%Y'" in said and "id columns (kept out of the features): 'customer_id' (named like an id, unique in" in said
    data = yaml.safe_load((ws / "params.yaml").read_text())["data"]
    assert (data["time_column"], data["time_format"], data["id_columns"]) == ("signup", "%d/%m/%Y", ["customer_id"])
    assert (ws / "schemas/churn.yaml").exists()

    run(["dvc", "repro"], ws, timeout=900)
    no_flights_table(ws)
    ev = json.loads((ws / "reports/metrics/evaluate.json").read_text())
    spec = json.loads((ws / "data/processed/features.json").read_text())
    assert "customer_id" not in spec["inputs"] and "customer_id" in spec["passthrough"]
    assert "signup" in spec["inputs"] and spec["input_types"]["signup"] == "string"
    assert {"plan", "paperless", "monthly_charges", "month", "day_of_week"} <= set(spec["numeric"] + spec["categorical"])
    assert ev["model"]["roc_auc"] > 0.65 and ev["baseline"]["roc_auc"] == 0.5
    test = pd.read_parquet(ws / "data/processed/test.parquet")
    train = pd.read_parquet(ws / "data/processed/train.parquet")
    assert test["signup"].min() >= train["signup"].max()  # the latest rows are held out
    gate = json.loads((ws / "reports/gate_decision.json").read_text())
    assert gate["outcome"] == "promoted", gate["summary"]
    assert up_to_date(run(["dvc", "status"], ws).stdout)
    check_search_recorded(ws, families=1)
    index = (ws / "reports/index.html").read_text()
    assert "churn.csv, predicting churn" in index and "NYC" not in index

    # the served model takes the row as the file holds it: the time as text, the id beside it
    row = pd.read_csv(ws / "data/raw/churn.csv").drop(columns=["churn"]).iloc[0]
    row = {k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    got = served_raw_row(ws, tmp_path, row, "customer_id", bad={"signup": "2023-13-45"})
    assert got["answer"]["predictions"][0] in ("yes", "no") and got["model"]["name"] == "churn"

    # the replay along the time column: 5 quarters train version 1, the next one is fed
    out = run(["mlcycle", "monitoring", "simulate"], ws, timeout=1200)
    assert "reports/simulation.html" in out.stdout
    res = json.loads((ws / "reports/simulation.json").read_text())
    [period] = res["periods"]
    assert period["period"] == "2023Q2" and period["champion"] == "v1" and period["metric"] == "roc_auc"
    assert 0.55 < period["champion_score"] < 1 and period["monitor_run"]
    assert "quarter-by-quarter replay of data/raw/churn.csv" in (ws / "reports/simulation.html").read_text()
    no_flights_table(ws / "build" / "simulation")


def test_regression_without_a_time_column(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    prices_parquet(ws / "data/raw/prices.parquet")
    said = init_data(ws, "data/raw/prices.parquet", "price",
                     params={**FAST, "train": {"max_iter": 60, "search": {"method": "random", "trials": 3, "cv_folds": 3}}})
    assert "task: regression" in said and "no time column" in said
    run(["dvc", "repro"], ws, timeout=900)
    no_flights_table(ws)
    ev = json.loads((ws / "reports/metrics/evaluate.json").read_text())
    assert ev["model"]["r2"] > 0.9 and ev["model"]["rmse"] < ev["baseline"]["rmse"]
    assert (ws / "reports/plots/residuals.csv").exists()
    gate = json.loads((ws / "reports/gate_decision.json").read_text())
    assert gate["outcome"] == "promoted" and gate["criteria"], gate  # promoted on real criteria
    assert up_to_date(run(["dvc", "status"], ws).stdout)
    check_search_recorded(ws, families=1)
    row = {"area": 120.5, "district": "north", "rooms": 3}
    got = served_raw_row(ws, tmp_path, row, None)
    assert got["model"]["name"] == "prices-price" and 200 < got["answer"]["predictions"][0] < 500
    # no time column: the replay says what it needs
    out = run(["mlcycle", "monitoring", "simulate"], ws, check=False)
    assert out.returncode != 0 and "data.time_column" in out.stderr


def check_search_recorded(ws, families: int):
    """Every trial is a nested MLflow run of the train run; the chosen values are logged on it."""
    import mlflow

    doc = json.loads((ws / "models/search.json").read_text())
    assert len(doc["trials"]) == 3 * families and doc["scored_by"] == "cv" and doc["cv_folds"] == 3
    assert json.loads((ws / "reports/metrics/train.json").read_text())["search"]["trials"] == 3 * families
    uri = f"sqlite:///{ws / 'mlruns' / 'mlflow.db'}"
    c = mlflow.MlflowClient(uri, registry_uri=uri)
    runs = c.search_runs([c.get_experiment_by_name("mlcycle").experiment_id])
    train_run = next(r for r in runs if r.data.tags.get("mlcycle.stage") == "train")
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == train_run.info.run_id]
    assert len(trials) == len(doc["trials"])
    assert {r.data.tags["mlcycle.trial.state"] for r in trials} <= {"COMPLETE", "PRUNED", "FAIL"}
    assert not [r for r in trials if r.info.status == "RUNNING"]
    best = [r for r in trials if r.data.tags["mlcycle.best_trial"] == "true"]
    assert len(best) == 1 and best[0].data.params["model"] == doc["chosen"]["model"]
    assert train_run.data.params["selected.model"] == doc["chosen"]["model"]
    assert train_run.data.tags["mlcycle.model_family"] == doc["chosen"]["model"]
    complete = [r for r in trials if r.data.tags["mlcycle.trial.state"] == "COMPLETE"]
    metric = f"cv_{doc['score']}"
    assert best[0].data.metrics[metric] == max(r.data.metrics[metric] for r in complete)
