import warnings

import numpy as np
import pytest

from mlcycle.core import stats
from mlcycle.tasks.tabular import evaluate


def test_perfect_and_random_scores():
    y = np.array([0, 0, 1, 1] * 50)
    perfect = evaluate.classification_metrics(y, y * 0.8 + 0.1, threshold=0.5)
    assert perfect["roc_auc"] == 1.0 and perfect["f1"] == 1.0
    rng = np.random.default_rng(0)
    noise = evaluate.classification_metrics(y, rng.random(len(y)), threshold=0.5)
    assert 0.35 < noise["roc_auc"] < 0.65


def test_calibration_error():
    rng = np.random.default_rng(1)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(int)
    assert evaluate.expected_calibration_error(y, p) < 0.02
    assert evaluate.expected_calibration_error(y, np.clip(p + 0.3, 0, 1)) > 0.2


def test_regression_metrics():
    y = np.array([1.0, 2.0, 3.0])
    m = evaluate.regression_metrics(y, y + 1)
    assert m["rmse"] == pytest.approx(1.0) and m["mae"] == pytest.approx(1.0) and m["r2"] == pytest.approx(-0.5)


def test_multiclass_metrics_and_curves():
    y = np.array([0, 1, 2, 2])
    p = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2]])
    m = evaluate.classification_metrics(y, p, None)
    assert m["accuracy"] == 0.75 and "roc_auc_ovr" in m
    c = evaluate.curves("classification", y, p, None, 10, classes=["a", "b", "c"])
    assert set(c) == {"confusion"} and set(c["confusion"]["actual"]) == {"a", "b", "c"}


def test_curves_by_task_and_written_files(tmp_path):
    y = np.array([0, 1] * 100)
    p = np.linspace(0, 1, 200)
    c = evaluate.curves("classification", y, p, 0.5, 10)
    assert set(c) == {"roc", "pr", "calibration", "confusion"}
    r = evaluate.curves("regression", np.arange(10.0), np.arange(10.0) + 0.5, None, 10)
    assert set(r) == {"residuals"} and (r["residuals"]["residual"] == -0.5).all()
    evaluate.write({"model": {"a": 1 / 3}}, c, tmp_path / "m.json", tmp_path / "plots")
    assert (tmp_path / "m.json").read_text().count("0.333333") == 1
    assert sorted(f.name for f in (tmp_path / "plots").iterdir()) == ["calibration.csv", "confusion.csv", "pr.csv", "roc.csv"]


def test_bootstrap_intervals_hold_the_estimate_and_repeat_with_the_seed():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, 500), 0, 1)
    ci = evaluate.intervals("classification", y, p, 0.5, 10, ["roc_auc", "f1"], 40, seed=1)
    m = evaluate.metrics_for("classification", y, p, 0.5, 10)
    assert ci["roc_auc_lo"] < m["roc_auc"] < ci["roc_auc_hi"] and ci["f1_lo"] < ci["f1_hi"]
    assert ci == evaluate.intervals("classification", y, p, 0.5, 10, ["roc_auc", "f1"], 40, seed=1)
    assert evaluate.intervals("classification", y, p, 0.5, 10, ["roc_auc"], 0, seed=1) == {}


def test_takeaways_name_the_headline_metric_interval_and_top_inputs():
    import pandas as pd

    results = {"model": {"roc_auc": 0.8, "f1": 0.5}, "baseline": {"roc_auc": 0.7, "f1": 0.4}}
    importance = pd.DataFrame({"feature": ["a", "b"], "importance": [0.1, 0.02]})
    text = evaluate.takeaways(results, ["roc_auc", "pr_auc", "f1"], {"roc_auc_lo": 0.75, "roc_auc_hi": 0.85}, importance)
    assert "holdout roc_auc: 0.8000 for the model (95% interval 0.7500 to 0.8500), 0.7000 for the baseline: the model is better" in text
    assert "also: f1 0.5000 (baseline 0.4000)" in text
    assert "`a` (0.1000), `b` (0.0200)" in text
    worse = {"model": {"rmse": 3.0}, "baseline": {"rmse": 2.0}}
    assert "the model is not better" in evaluate.takeaways(worse, ["rmse"])


def _cases():
    rng = np.random.default_rng(3)
    n = 300
    y = (rng.random(n) < 0.3).astype(int)
    p = np.round(np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1), 2)  # rounded: ties, as trees give
    per_row = np.where(rng.random(n) < 0.5, 0.4, 0.6)  # a routed model's thresholds, one per row
    yr = rng.normal(size=n)
    k = rng.integers(0, 3, n)
    pk = rng.dirichlet([1, 1, 1], n)
    return [("classification", y, p, 0.45, ["roc_auc", "pr_auc", "log_loss", "brier", "f1", "precision", "recall",
                                            "accuracy"]),
            ("classification", y, p, per_row, ["f1", "precision", "recall", "accuracy", "roc_auc"]),
            ("regression", yr, yr + rng.normal(size=n), None, ["rmse", "mae", "r2"]),
            ("classification", k, pk, None, ["accuracy", "log_loss"])]


@pytest.mark.parametrize("case", range(4))
def test_vectorised_bootstrap_matches_one_resample_at_a_time(case):
    task, y, s, t, names = _cases()[case]
    idx = stats.resample_indices(np.random.default_rng(0), len(y), 60)
    fast = evaluate.resampled_metrics(task, y, s, t, names, idx)
    slow = evaluate.loop_metrics(task, y, s, t, 10, names, idx)
    for n in names:
        assert len(fast[n]) == 60
        np.testing.assert_allclose(fast[n], slow[n], rtol=1e-12, atol=1e-12, err_msg=n)


def test_vectorised_bootstrap_on_resamples_of_one_class_gives_what_scikit_learn_gives():
    y = np.array([0] * 8 + [1])  # many resamples of 9 rows miss the one positive
    p = np.linspace(0.1, 0.9, 9)
    idx = stats.resample_indices(np.random.default_rng(1), len(y), 50)
    names = ["roc_auc", "pr_auc", "f1", "recall", "log_loss"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns of the undefined values
        slow = evaluate.loop_metrics("classification", y, p, 0.5, 10, names, idx)
        ci = evaluate.intervals("classification", y, p, 0.5, 10, ["roc_auc"], 50, seed=1)
    fast = evaluate.resampled_metrics("classification", y, p, 0.5, names, idx)
    one_class = ~(y[idx] == 1).any(axis=1)
    assert 0 < one_class.sum() < 50
    assert np.isnan(fast["roc_auc"][one_class]).all() and (fast["pr_auc"][one_class] == 0).all()
    for n in names:
        np.testing.assert_allclose(fast[n], slow[n], rtol=1e-12, atol=1e-12, err_msg=n)  # nan where sklearn's is
    assert np.isfinite([ci["roc_auc_lo"], ci["roc_auc_hi"]]).all()  # the undefined resamples left out


def intervals_loop(task, y, scores, threshold, n_bins, names, n_boot, seed):
    """`evaluate.intervals` computed one resample at a time with `metrics_for`: all n_boot draws at
    once, then `loop_metrics` (the reference the vectorised blocks are held to)."""
    idx = stats.resample_indices(np.random.default_rng(seed), len(y), n_boot)
    return evaluate._cut(evaluate.loop_metrics(task, y, scores, threshold, n_bins, names, idx))


@pytest.mark.parametrize("case", range(4))
def test_intervals_equal_the_plain_loop_for_the_same_seed(case):
    task, y, s, t, names = _cases()[case]
    fast = evaluate.intervals(task, y, s, t, 10, names + ["ece"] * (task == "classification" and s.ndim == 1),
                              70, seed=5)  # 70: blocks of BOOT_BLOCK and a partial one; ece: by the loop
    slow = intervals_loop(task, y, s, t, 10, names + ["ece"] * (task == "classification" and s.ndim == 1),
                          70, seed=5)
    assert fast.keys() == slow.keys() and len(fast) >= 2 * len(names)
    for k in slow:
        assert fast[k] == pytest.approx(slow[k], rel=1e-12, abs=1e-12), k
