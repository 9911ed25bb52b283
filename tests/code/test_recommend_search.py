"""Task recommendation, train.search: ALS's hyperparameters searched on the validation period, the
trials written as a table search's are, the final model refitted with the best."""

from __future__ import annotations

import json

import pytest

from mlcycle.core import config
from mlcycle.core.errors import ParamsError
from mlcycle.stages import interactions as ia
from mlcycle.stages import recommend, recommend_search, search
from tests.code.test_recommend import RAW, table


def params(method="optuna", trials=3, **search_):
    raw = {**RAW, "recommend": {**RAW["recommend"], "weights": [0.0, 0.5, 1.0], "k": 5},
           "train": {"search": {"method": method, "trials": trials, **search_}}}
    return config.parse(raw)


@pytest.fixture(scope="module")
def data():
    p = params()
    inter = ia.standardise(table(n_users=40, per_user=14), p.data, p.recommend)
    return ia.split(inter, p.recommend), ia.items_table(inter, p.recommend)


@pytest.mark.parametrize("method", ["optuna", "random"])
def test_search_tries_candidates_and_refits_with_the_best(data, method, tmp_path):
    parts, items = data
    p = params(method, trials=3, space={"factors": [2, 8], "iterations": [2, 4]})
    trained = recommend.train(parts, items, p, threads=1)
    found = trained.found
    assert found is not None and len(found.trials) == 3
    done = [t for t in found.trials if t.state == "COMPLETE"]
    assert done and all(2 <= t.params["factors"] <= 8 and 2 <= t.params["iterations"] <= 4 for t in done)
    assert all(1e-3 <= t.params["regularization"] <= 1.0 and 1.0 <= t.params["alpha"] <= 100 for t in done)
    best = found.best
    assert best.score == max(t.score for t in done)
    # the final model: the best candidate's factors, refitted on train + valid, with its weight
    assert found.rec.factors == best.params["factors"] and found.rec.alpha == pytest.approx(best.params["alpha"])
    assert trained.models.user_factors.shape[1] == best.params["factors"]
    assert trained.weight == best.params["weight"]
    assert len(trained.models.index.users) == len(ia.Index.of(parts["train"], parts["valid"]).users)
    # models/search.json in a table search's form: nested runs for tracking
    recommend.write_search(trained, tmp_path / "search.json", "ndcg_at_k")
    doc = json.loads((tmp_path / "search.json").read_text())
    assert doc["method"] == method and doc["best_trial"] == best.number and doc["scored_by"] == "valid"
    assert doc["chosen"]["factors"] == best.params["factors"]
    runs = search.trial_runs(doc)
    assert len(runs) == 3 and sum(r["tags"]["mlcycle.best_trial"] == "true" for r in runs) == 1
    recommend.write_train_metrics(trained, tmp_path / "train.json", "ndcg_at_k")
    metrics = json.loads((tmp_path / "train.json").read_text())
    assert metrics["search_trials"] == 3 and metrics["als_factors"] == best.params["factors"]
    shown = recommend_search.table(found, "ndcg_at_k")
    assert shown["valid_ndcg_at_k"].is_monotonic_decreasing


def test_optuna_search_repeats_with_its_seed(data):
    parts, items = data
    p = params("optuna", trials=2, space={"factors": [2, 8], "iterations": [2, 3]})
    a = recommend.train(parts, items, p, threads=1).found
    b = recommend.train(parts, items, p, threads=1).found
    assert [t.params for t in a.trials] == [t.params for t in b.trials]


def test_search_off_keeps_the_params_values(data):
    parts, items = data
    p = params("none")
    trained = recommend.train(parts, items, p, threads=1)
    assert trained.found is None and trained.models.user_factors.shape[1] == p.recommend.factors


def test_search_space_names_the_als_hyperparameters():
    with pytest.raises((ParamsError, ValueError), match="factor"):
        params(space={"factor": [2, 8]})


def test_ease_matches_the_closed_form_by_numpy():
    import numpy as np
    import scipy.sparse as sp

    from mlcycle.stages import recommenders

    x = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 0]], dtype=float)
    lam = 0.5
    p = np.linalg.inv(x.T @ x + lam * np.eye(4))
    expected = np.eye(4) - p @ np.diag(1.0 / np.diag(p))  # Steck 2019: B = I - P diagMat(1 / diag(P))
    got = recommenders.ease(sp.csr_matrix(x), lam)
    assert np.allclose(got, expected, atol=1e-5)
    assert np.allclose(np.diag(got), 0.0)


def test_ease_serves_as_the_cf_component(data):
    import numpy as np

    parts, items = data
    raw = {**RAW, "recommend": {**RAW["recommend"], "weights": [0.0, 0.5, 1.0], "k": 5, "cf": "ease", "ease_lambda": 5.0}}
    p = config.parse(raw)
    trained = recommend.train(parts, items, p, threads=1)
    m = trained.models
    assert m.ease_weights is not None and m.ease_weights.shape == (len(m.index.items), len(m.index.items))
    rows = np.arange(4)
    assert np.allclose(m.scores("cf", rows), m.seen[rows].toarray() @ m.ease_weights, atol=1e-4)
    ev = recommend.evaluate(m, parts["test"], p)
    assert 0 <= ev["results"]["cf"]["ndcg_at_k"] <= 1
    # the tastes are in the co-ratings (even items by even users): EASE beats popularity
    assert ev["results"]["cf"]["ndcg_at_k"] > ev["results"]["popularity"]["ndcg_at_k"]
    with pytest.raises((ParamsError, ValueError), match="ease"):
        config.parse({**raw, "train": {"search": {"method": "optuna"}}})
