"""Model selection (mlcycle.search): model: auto, random and Optuna search, folds, budgets, params checks."""

import json

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config
from mlcycle.core.errors import ParamsError
from mlcycle.tasks.tabular import features, search, train
from tests.code.frames import data_params, mixed_frame


def prepared(task="binary", time_column=None, **train_kw):
    df = mixed_frame(600, task=task)
    dp = data_params(task="regression" if task == "regression" else "classification", time_column=time_column)
    table, spec, _ = features.build(df, dp, config.FeaturesParams())
    parts = features.split(table, spec, config.SplitParams(seed=0))
    xy = {k: (v[spec.inputs], v[features.LABEL]) for k, v in parts.items()}
    base = dict(max_iter=60, min_samples_leaf=5, n_estimators=40)
    base.update(train_kw)
    if "search" in base:  # one process here; tests/code/test_search_dask.py runs searches on clusters
        base["search"] = {"engine": "serial", **base["search"]}
    return xy, spec, config.TrainParams(**base)


def test_no_search_keeps_the_params():
    xy, spec, params = prepared()
    sel = search.select(xy["train"], xy["valid"], spec, params)
    assert sel.params == params and sel.trials == [] and sel.best is None
    assert sel.metrics() == {"trials": 0}
    assert search.table(sel)["source"].tolist() == ["values from params.yaml"]


def test_auto_tries_every_family_on_valid_and_keeps_the_best():
    xy, spec, params = prepared(model="auto")
    sel = search.select(xy["train"], xy["valid"], spec, params)
    assert [t.model for t in sel.trials] == list(config.MODEL_FAMILIES)
    best = max(sel.trials, key=lambda t: t.score)
    assert sel.params.model == best.model and sel.scored_by == "valid"
    # the chosen family really is the best on valid: refit it and score it again
    res = train.fit(xy["train"], xy["valid"], spec, sel.params)
    assert res.valid_score >= min(t.score for t in sel.trials)


def test_model_auto_cannot_reach_the_estimator_unresolved():
    xy, spec, params = prepared(model="auto")
    with pytest.raises(ValueError, match="resolved by mlcycle.search"):
        train.build_pipeline(spec, params)


@pytest.mark.parametrize("method", ["random", "optuna"])
def test_search_respects_budget_space_and_seed(method):
    space = {"learning_rate": [0.05, 0.2], "max_leaf_nodes": [4, 12]}
    xy, spec, params = prepared(search={"method": method, "trials": 4, "cv_folds": 3, "space": space})
    sel = search.select(xy["train"], xy["valid"], spec, params)
    assert len(sel.trials) == 4 and sel.scored_by == "cv"
    for t in sel.trials:
        assert 0.05 <= t.params["learning_rate"] <= 0.2 and 4 <= t.params["max_leaf_nodes"] <= 12
        assert isinstance(t.params["max_leaf_nodes"], int)
        if t.state == "COMPLETE":
            assert len(t.fold_scores) == 3 and t.score == pytest.approx(np.mean(t.fold_scores))
    best = sel.best
    assert sel.params.learning_rate == best.params["learning_rate"]
    assert sel.params.max_leaf_nodes == best.params["max_leaf_nodes"]
    assert sel.params.model == "hist_gradient_boosting"
    again = search.select(xy["train"], xy["valid"], spec, params)
    assert [t.params for t in again.trials] == [t.params for t in sel.trials]  # seeded


def test_auto_with_search_covers_every_family(tmp_path):
    xy, spec, params = prepared(task="regression", model="auto", search={"method": "random", "trials": 2, "cv_folds": 2})
    sel = search.select(xy["train"], xy["valid"], spec, params)
    assert [t.model for t in sel.trials] == [f for f in config.MODEL_FAMILIES for _ in range(2)]
    assert sel.score_name == "neg_rmse" and sel.best.model == sel.params.model
    search.write(sel, tmp_path / "search.json")
    doc = json.loads((tmp_path / "search.json").read_text())
    assert doc["chosen"]["model"] == sel.params.model and len(doc["trials"]) == 6
    assert doc["trials"][doc["best_trial"]]["score"] == max(t.score for t in sel.trials)


def test_time_limit_stops_new_trials():
    xy, spec, params = prepared(search={"method": "random", "trials": 50, "cv_folds": 2, "timeout_minutes": 0.0001})
    sel = search.select(xy["train"], xy["valid"], spec, params)
    assert 1 <= len(sel.trials) < 50 and sel.timed_out == ["hist_gradient_boosting"]


def test_time_ordered_folds_never_train_on_the_future():
    xy, spec, _ = prepared(time_column="when")
    assert spec.time_column == "when"
    y = np.zeros(100, dtype=int)
    for tr, va in search.folds(100, y, spec, 4, seed=0):
        assert tr.max() < va.min()


def test_shuffled_folds_are_stratified_without_time():
    xy, spec, _ = prepared()
    y = np.array([0] * 80 + [1] * 20)
    for _tr, va in search.folds(100, y, spec, 4, seed=0):
        assert y[va].sum() == 5


def test_search_params_are_checked():
    base = {"model": "auto"}
    with pytest.raises(ParamsError, match=r"train.search.method"):
        config.parse({**_minimal(), "train": {**base, "search": {"method": "grid"}}})
    with pytest.raises(ParamsError, match=r"learnig_rate' cannot be searched \(did you mean 'learning_rate'"):
        config.parse({**_minimal(), "train": {"search": {"space": {"learnig_rate": [0.1, 0.2]}}}})
    with pytest.raises(ParamsError, match="low 0.3 must be below high 0.1"):
        config.parse({**_minimal(), "train": {"search": {"space": {"learning_rate": [0.3, 0.1]}}}})
    with pytest.raises(ParamsError, match=r"train.search.cv_folds"):
        config.parse({**_minimal(), "train": {"search": {"cv_folds": 1}}})


def _minimal():
    return {"data": {"path": "x.csv", "target": "y", "task": "classification"}}


def test_table_lists_trials_best_first():
    xy, spec, params = prepared(model="auto")
    df = search.table(search.select(xy["train"], xy["valid"], spec, params))
    assert isinstance(df, pd.DataFrame) and df.iloc[:, 3].is_monotonic_decreasing
