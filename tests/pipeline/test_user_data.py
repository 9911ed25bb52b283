"""Your own single-table data by editing params.yaml alone: classification and regression."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SAMPLE, deep_merge, make_workspace, run

pytestmark = pytest.mark.slow

USER = {
    "ingest": {"sample_frac": 0.01},  # the default example's ingest still runs; keep it small
    "data": {"threshold": None, "positive_class": None, "time_column": None, "id_columns": [],
             "drop_columns": [], "enrich": None, "required_columns": [], "format": "auto"},
    "features": {"calendar": ["month", "day_of_week"]},
    "split": {"test_start": None, "test_size": 0.25},
    "train": {"max_iter": 60, "baseline_columns": []},
    "validate": {"min_rows": 100},
    "evaluate": {"slices": []},  # the flights slices (carrier, origin) are not in these tables
}


def churn_csv(path, n=3000, seed=0):
    """Classification: text labels, categoricals and booleans with missing values, a date, an id."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n).astype(float)
    plan = rng.choice(["basic", "plus", "pro", None], n, p=[0.5, 0.3, 0.15, 0.05])
    charges = rng.normal(60, 20, n)
    charges[rng.random(n) < 0.08] = np.nan
    logit = -0.05 * tenure + 0.03 * np.nan_to_num(charges, nan=60) + np.where(plan == "basic", 0.8, 0)
    churn = np.where(rng.random(n) < 1 / (1 + np.exp(-(logit - 1.5))), "yes", "no")
    pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "signup": pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
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


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_own_data_runs_by_editing_params_only(tmp_path, kind):
    ws = make_workspace(tmp_path / "ws")
    if kind == "classification":
        churn_csv(ws / "data/raw/churn.csv")
        # model selection as well: every family, an Optuna search with time-ordered folds
        changes = {"data": {"path": "data/raw/churn.csv", "target": "churn", "task": "classification",
                            "positive_class": "yes", "id_columns": ["customer_id"], "time_column": "signup"},
                   "split": {"test_start": "2023-09-01"},
                   "train": {"model": "auto", "search": {"method": "optuna", "trials": 3, "cv_folds": 3}}}
    else:
        prices_parquet(ws / "data/raw/prices.parquet")
        changes = {"data": {"path": "data/raw/prices.parquet", "target": "price", "task": "regression"},
                   "train": {"search": {"method": "random", "trials": 3, "cv_folds": 3}}}
    from tests.conftest import edit_params

    edit_params(ws, deep_merge(deep_merge({"eda": SAMPLE["eda"]}, USER), changes))
    run(["dvc", "repro"], ws, timeout=900)
    ev = json.loads((ws / "reports/metrics/evaluate.json").read_text())
    spec = json.loads((ws / "data/processed/features.json").read_text())
    if kind == "classification":
        assert "customer_id" not in spec["numeric"] + spec["categorical"]
        assert {"plan", "paperless", "monthly_charges", "month", "day_of_week"} <= set(spec["numeric"] + spec["categorical"])
        assert ev["model"]["roc_auc"] > 0.65 and ev["baseline"]["roc_auc"] == 0.5
        test = pd.read_parquet(ws / "data/processed/test.parquet")
        assert (test["signup"] >= pd.Timestamp("2023-09-01")).all()
    else:
        assert ev["model"]["r2"] > 0.9 and ev["model"]["rmse"] < ev["baseline"]["rmse"]
        assert (ws / "reports/plots/residuals.csv").exists()
    assert "up to date" in run(["dvc", "status"], ws).stdout
    check_search_recorded(ws, families=3 if kind == "classification" else 1)


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
