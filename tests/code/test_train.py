import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config, scoring
from mlcycle.core.errors import DataError
from mlcycle.stages import features, train
from tests.code.frames import data_params, mixed_frame


def prepared(task: str, model: str = "hist_gradient_boosting", **train_kw):
    df = mixed_frame(600, task=task)
    dp = data_params(task="regression" if task == "regression" else "classification")
    table, spec, _ = features.build(df, dp, config.FeaturesParams())
    parts = features.split(table, spec, config.SplitParams(seed=0))
    xy = {k: (v[spec.inputs], v[features.LABEL]) for k, v in parts.items()}
    params = config.TrainParams(model=model, max_iter=60, min_samples_leaf=5, **train_kw)
    return xy, spec, params


@pytest.mark.parametrize("model", ["hist_gradient_boosting", "random_forest", "linear"])
def test_binary_models_learn_the_signal(model):
    xy, spec, params = prepared("binary", model=model, baseline_columns=["x2"])
    res = train.fit(xy["train"], xy["valid"], spec, params)
    assert res.valid_score > 0.75 > res.valid_baseline_score
    assert 0 < res.threshold < 1
    p = scoring.scores(res.model, xy["test"][0], spec.task)
    assert p.shape == (len(xy["test"][0]),) and ((p >= 0) & (p <= 1)).all()


def test_multiclass_and_regression():
    xy, spec, params = prepared("multiclass")
    res = train.fit(xy["train"], xy["valid"], spec, params)
    assert scoring.scores(res.model, xy["test"][0], spec.task).shape[1] == 3
    assert res.threshold is None and res.score_name == "neg_log_loss"
    xy, spec, params = prepared("regression")
    res = train.fit(xy["train"], xy["valid"], spec, params)
    assert res.score_name == "neg_rmse" and res.valid_score > res.valid_baseline_score


def test_empty_baseline_columns_predict_the_prior():
    xy, spec, params = prepared("binary")
    res = train.fit(xy["train"], xy["valid"], spec, params)
    p = scoring.scores(res.baseline, xy["test"][0], spec.task)
    assert np.allclose(p, p[0])


def test_same_seed_same_model():
    xy, spec, params = prepared("binary")
    a = train.fit(xy["train"], xy["valid"], spec, params)
    b = train.fit(xy["train"], xy["valid"], spec, params)
    X = xy["test"][0]
    assert np.array_equal(scoring.scores(a.model, X, "classification"), scoring.scores(b.model, X, "classification"))


def test_unknown_baseline_column_is_named():
    xy, spec, params = prepared("binary", baseline_columns=["nope"])
    with pytest.raises(DataError, match=r"train.baseline_columns \['nope'\]"):
        train.fit(xy["train"], xy["valid"], spec, params)


def test_unseen_class_is_named():
    _, spec, _ = prepared("multiclass")
    with pytest.raises(DataError, match="not seen in training"):
        train.encode_label(pd.Series(["low", "extreme"]), spec)


def test_save_and_load_round_trip(tmp_path):
    xy, spec, params = prepared("binary", baseline_columns=["x1"])
    res = train.fit(xy["train"], xy["valid"], spec, params)
    train.save(res, spec, xy["train"][0], tmp_path / "model", tmp_path / "baseline")
    model, meta = train.load(tmp_path / "model")
    X = xy["test"][0]
    assert np.allclose(model.predict_proba(X), res.model.predict_proba(X))
    assert meta["threshold"] == pytest.approx(res.threshold) and meta["positive_class"] == "yes"
    mlmodel = (tmp_path / "model" / "MLmodel").read_text()
    assert "signature" in mlmodel and "x1" in mlmodel
    assert (tmp_path / "model" / "input_example.json").exists()


def test_takeaways_compare_with_the_baseline():
    result = train.TrainResult(model=None, baseline=None, threshold=0.31, best_iter=25, valid_score=0.81,
                               valid_baseline_score=0.75, score_name="roc_auc")
    text = train.takeaways(result, trials=4)
    assert "validation roc_auc: 0.8100 for the model, 0.7500 for the baseline (+0.0600): the model is better than" in text
    assert "25 boosting iterations, decision threshold 0.310" in text and "4 candidate(s)" in text
    worse = train.TrainResult(None, None, None, None, valid_score=12.0, valid_baseline_score=10.0, score_name="rmse")
    assert "no better than the baseline" in train.takeaways(worse)
