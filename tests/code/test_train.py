import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config, scoring
from mlcycle.core.errors import DataError
from mlcycle.tasks.tabular import features, train
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


def test_saving_a_model_leaves_no_mlflow_warning_in_a_fresh_process(tmp_path):
    """A stage's kernel imports mlflow for the first time inside `quiet_mlflow`: mlflow's import
    sets its loggers' level, which must not undo the quieting (the pickle notice, with a timestamp,
    opened every train report)."""
    import subprocess
    import sys

    code = ("import numpy as np\n"
            "from sklearn.linear_model import LogisticRegression\n"
            "from mlcycle.core.scoring import quiet_mlflow\n"
            "m = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])\n"
            "with quiet_mlflow():\n"
            "    import mlflow.sklearn\n"
            f"    mlflow.sklearn.save_model(m, {str(tmp_path / 'm')!r}, serialization_format='cloudpickle')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m" / "MLmodel").exists()
    assert "WARNING" not in proc.stderr and "pickle" not in proc.stderr, proc.stderr


def test_a_saved_model_is_the_same_bytes_twice(tmp_path):
    """The model folder's identity follows from its content (no save time; uuid from the digest)."""
    import yaml

    from mlcycle.core import provenance

    X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    from sklearn.linear_model import LogisticRegression

    folders = []
    for name in ("a", "b"):
        import mlflow.sklearn

        mlflow.sklearn.save_model(LogisticRegression().fit(X, y), str(tmp_path / name), serialization_format="cloudpickle")
        provenance.stable_model_identity(tmp_path / name)
        folders.append(tmp_path / name)
    assert provenance.folder_digest(folders[0]) == provenance.folder_digest(folders[1])
    meta = yaml.safe_load((folders[0] / "MLmodel").read_text())
    assert "utc_time_created" not in meta and len(meta["model_uuid"]) == 32
    # another model gets another identity
    mlflow.sklearn.save_model(LogisticRegression(C=0.01).fit(X, y), str(tmp_path / "c"), serialization_format="cloudpickle")
    assert provenance.stable_model_identity(tmp_path / "c") != meta["model_uuid"]


def test_the_saved_model_is_the_same_bytes_on_one_core_and_on_two():
    """Histogram gradient boosting records the training machine's OpenMP thread count in its bin
    mapper; `without_thread_counts` clears it, so the pickle follows from data and params alone."""
    import os
    import subprocess
    import sys

    code = ("import hashlib, pickle, numpy as np\n"
            "from sklearn.ensemble import HistGradientBoostingClassifier\n"
            "from sklearn.pipeline import make_pipeline\n"
            "from sklearn.preprocessing import StandardScaler\n"
            "from mlcycle.core.provenance import without_thread_counts\n"
            "rng = np.random.default_rng(0); X = rng.normal(size=(3000, 5)); y = (X[:, 0] > 0).astype(int)\n"
            "m = make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=10, random_state=0)).fit(X, y)\n"
            "raw = hashlib.md5(pickle.dumps(m)).hexdigest()\n"
            "print(raw, hashlib.md5(pickle.dumps(without_thread_counts(m))).hexdigest(), m.predict_proba(X)[:3].sum())\n")
    out = {}
    for threads in ("1", "2"):
        proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": threads},
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        out[threads] = proc.stdout.split()
    assert out["1"][0] != out["2"][0]  # as scikit-learn saves it: the thread count is in the bytes
    assert out["1"][1] == out["2"][1]  # cleared: the same bytes
    assert out["1"][2] == out["2"][2]  # and the same predictions
