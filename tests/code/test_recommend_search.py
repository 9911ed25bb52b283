"""Task recommendation, train.search: ALS's hyperparameters searched on the validation period, the
trials written as a table search's are, the final model refitted with the best."""

from __future__ import annotations

import json

import pytest

from mlcycle.core import config
from mlcycle.core.errors import ParamsError
from mlcycle.stages import search
from mlcycle.tasks.recommender import interactions as ia
from mlcycle.tasks.recommender import search as recommend_search
from mlcycle.tasks.recommender import stages as recommend
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

    from mlcycle.tasks.recommender import recommenders

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


def test_warm_refit_starts_from_the_train_factors(data):
    import numpy as np
    import pandas as pd

    from mlcycle.tasks.recommender import recommenders

    parts, items = data
    base = {**RAW["recommend"], "factors": 6, "iterations": 8, "k": 5}
    rec = config.parse({**RAW, "recommend": {**base, "refit_iterations": 1}}).recommend
    first = recommenders.fit(parts["train"], rec, items, threads=1)
    both = pd.concat([parts["train"], parts["valid"]], ignore_index=True)
    assert recommenders._prefix(first.index, ia.Index.of(both))
    other = ia.Index(np.array(["someone", *first.index.users], dtype=object), first.index.items)
    assert not recommenders._prefix(first.index, other)

    def agreement(models):  # how alike the train users' CF scores are to the train fit's
        n = len(first.index.users)
        a = first.user_factors @ first.item_factors.T
        b = models.user_factors[:n] @ models.item_factors[: a.shape[1]].T
        return np.corrcoef(a.ravel(), b.ravel())[0, 1]

    warm = recommenders.fit(both, rec, items, threads=1, warm=first)
    cold = recommenders.fit(both, rec.model_copy(update={"iterations": 1}), items, threads=1)
    assert warm.user_factors.shape == (len(ia.Index.of(both).users), 6)
    # one sweep from the train factors stays near them (0.74 here); one sweep from scratch does not (0.39)
    assert agreement(warm) > 0.6 > 0.5 > agreement(cold)
    # without refit_iterations the warm fit is ignored: a fresh fit, as without it
    fresh = rec.model_copy(update={"refit_iterations": None})
    assert np.allclose(recommenders.fit(both, fresh, items, threads=1, warm=first).user_factors,
                       recommenders.fit(both, fresh, items, threads=1).user_factors)


def test_popularity_penalty_is_chosen_on_validation_within_the_tolerance(data):
    import numpy as np

    from mlcycle.tasks.recommender import recommenders

    parts, items = data
    rec = config.parse({**RAW, "recommend": {**RAW["recommend"], "k": 5, "coverage_tolerance": 0.0}}).recommend
    models = recommenders.fit(parts["train"], rec, items, threads=1).with_weight(0.5)
    penalty, tried = recommenders.choose_penalty(models, parts["valid"], rec)
    assert list(tried["penalty"]) == list(recommenders.PENALTIES)
    best = tried[rec.metric].max()
    assert tried.loc[tried["penalty"] == penalty, rec.metric].iloc[0] == best  # no loss accepted
    wide = rec.model_copy(update={"coverage_tolerance": 0.99})
    penalty_wide, _ = recommenders.choose_penalty(models, parts["valid"], wide)
    ok = tried[tried[rec.metric] >= best * 0.01 - 1e-12]
    assert tried.loc[tried["penalty"] == penalty_wide, "coverage"].iloc[0] == ok["coverage"].max()
    # the penalty lowers the hybrid's scores of popular items, in proportion
    rows = np.arange(3)
    pop = models.popularity_scaled()
    assert pop.max() == pytest.approx(1.0) and pop.min() >= 0
    assert np.allclose(models.with_weight(0.5, 0.3).scores("hybrid", rows), models.scores("hybrid", rows) - 0.3 * pop,
                       atol=1e-6)
    trained = recommend.train(parts, items, config.parse({**RAW, "recommend": {**RAW["recommend"], "k": 5,
                                                                              "coverage_tolerance": 0.5}}), threads=1)
    assert trained.models.penalty == trained.penalty and trained.penalties is not None
    assert "Popularity penalty" in recommend.train_takeaways(trained, "ndcg_at_k")
