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
        changes = {"data": {"path": "data/raw/churn.csv", "target": "churn", "task": "classification",
                            "positive_class": "yes", "id_columns": ["customer_id"], "time_column": "signup"},
                   "split": {"test_start": "2023-09-01"}}
    else:
        prices_parquet(ws / "data/raw/prices.parquet")
        changes = {"data": {"path": "data/raw/prices.parquet", "target": "price", "task": "regression"}}
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
