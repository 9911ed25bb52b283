"""core/stats.py: metric names and directions, and the bootstrap every interval is built from
(resamples, metrics under resample counts, percentile intervals, intervals of means), each against a
plain reference: the same numbers, to the bit where the callers' reports depend on it."""

from __future__ import annotations

import typing

import numpy as np
import pytest
from sklearn import metrics as skm

from mlcycle.core import config, stats
from mlcycle.tasks.recommender.params import RecommendParams


def binary(n=300, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    s = rng.random(n)
    return y, (np.round(s, 1) if ties else s)  # rounded: many ties in the scores


# ---------------------------------------------------------------- resamples

@pytest.mark.parametrize("n", [1, 7, 300, 1001])
def test_resample_indices_draw_as_one_call_or_one_resample_at_a_time(n):
    """evaluate draws one resample per loop, fairness, ranking and release all at once: the same rows."""
    idx = stats.resample_indices(np.random.default_rng(3), n, 25)
    assert idx.shape == (25, n) and idx.min() >= 0 and idx.max() < n
    rng = np.random.default_rng(3)
    one_at_a_time = np.stack([rng.integers(0, n, n) for _ in range(25)])
    assert np.array_equal(idx, one_at_a_time)
    rng = np.random.default_rng(3)
    assert np.array_equal(np.stack([stats.resample_indices(rng, n, 1)[0] for _ in range(25)]), idx)


def test_resample_counts_count_the_drawn_rows():
    idx = stats.resample_indices(np.random.default_rng(5), 40, 30)
    counts = stats.counts_of(idx)
    assert counts.dtype == np.float64 and counts.shape == (30, 40)
    assert np.array_equal(counts, np.stack([np.bincount(i, minlength=40) for i in idx]).astype(float))
    assert np.array_equal(stats.resample_counts(np.random.default_rng(5), 40, 30), counts)
    assert (counts.sum(axis=1) == 40).all()


# ---------------------------------------------------------------- metrics under resample counts

def test_weighted_roc_auc_is_sklearns_on_each_expanded_resample():
    y, s = binary()
    idx = stats.resample_indices(np.random.default_rng(1), len(y), 20)
    got = stats.weighted_metric("roc_auc", y, s, stats.counts_of(idx))
    want = [skm.roc_auc_score(y[i], s[i]) for i in idx]
    assert got == pytest.approx(want, rel=1e-12, abs=0)
    assert stats.weighted_metric("roc_auc", y, s, np.ones((1, len(y))))[0] == pytest.approx(
        skm.roc_auc_score(y, s), rel=1e-12, abs=0)


def test_weighted_roc_auc_is_nan_for_a_resample_of_one_class():
    y, s = np.array([0, 0, 0, 1]), np.array([0.1, 0.2, 0.2, 0.9])
    counts = np.array([[4.0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 4]])
    got = stats.weighted_metric("roc_auc", y, s, counts)
    assert np.isnan(got[0]) and got[1] == 1.0 and np.isnan(got[2])


def reference_auc_from_masks(y, scores, idx):
    """The ROC AUC fairness computed before (boolean class masks, ties found by comparison): the
    per-group intervals of reports/fairness.json come from these exact numbers."""
    n_boot, n = idx.shape
    w = np.bincount((idx + n * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * n)
    w = w.reshape(n_boot, n).astype(float)
    order = np.argsort(scores, kind="stable")
    s_sorted, y_sorted, w = scores[order], y[order], w[:, order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    pos = np.add.reduceat(w * (y_sorted == 1), starts, axis=1)
    neg = np.add.reduceat(w * (y_sorted != 1), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))


@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weighted_roc_auc_gives_fairness_its_numbers_to_the_bit(ties, dtype):
    _, s = binary(n=40, seed=2, ties=ties)
    s, y = s.astype(dtype), np.zeros(40, dtype=int)
    y[[5, 30]] = 1  # two positives of 40 rows: some resamples hold none
    idx = stats.resample_indices(np.random.default_rng(4), len(y), 300)
    got = stats.weighted_metric("roc_auc", y, s, stats.counts_of(idx))
    want = reference_auc_from_masks(y, s, idx)
    assert np.isnan(want).any()
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("name", ["log_loss", "brier", "accuracy", "rmse", "mae"])
def test_weighted_metrics_are_sklearns_on_each_expanded_resample(name):
    rng = np.random.default_rng(6)
    if name in ("rmse", "mae"):
        y = rng.normal(size=200)
        s = y + rng.normal(0, 0.5, 200)
    else:
        y, s = binary(200, seed=6, ties=False)
        s = np.clip(s, 0.01, 0.99)
        if name == "accuracy":
            s = (s >= 0.5).astype(float)
    reference = {"log_loss": lambda a, b: skm.log_loss(a, b, labels=[0, 1]), "brier": skm.brier_score_loss,
                 "accuracy": skm.accuracy_score, "rmse": lambda a, b: np.sqrt(skm.mean_squared_error(a, b)),
                 "mae": skm.mean_absolute_error}[name]
    idx = stats.resample_indices(rng, 200, 10)
    got = stats.weighted_metric(name, y, s, stats.counts_of(idx))
    assert got == pytest.approx([reference(y[i], s[i]) for i in idx], rel=1e-12, abs=1e-15)


def test_weighted_metric_refuses_a_metric_without_a_weighted_form():
    with pytest.raises(ValueError, match="no weighted form of metric pr_auc"):
        stats.weighted_metric("pr_auc", np.array([0.0, 1.0]), np.array([0.2, 0.8]), np.ones((1, 2)))


# ---------------------------------------------------------------- percentile intervals

def test_the_two_95_percent_quantiles_differ_and_each_is_kept():
    """(1 - 0.95) / 2 is 0.025000000000000022: evaluate, fairness and live monitoring cut at CI95's
    0.025, the recommender's evaluate and the release at tails(0.95). Both must stay as they are."""
    assert stats.tails(0.95) != stats.CI95 and stats.tails(0.95)[1] == 0.975
    v = np.random.default_rng(0).random(1000)
    lo, hi = stats.percentile_interval(v, stats.CI95)
    assert [lo, hi] == list(np.quantile(v, [0.025, 0.975]))
    lo, hi = stats.percentile_interval(v, 0.95)
    assert [lo, hi] == list(np.quantile(v, [(1 - 0.95) / 2, 1 - (1 - 0.95) / 2]))
    assert lo != np.quantile(v, 0.025)  # the difference shows in the numbers
    lo, hi = stats.percentile_interval(v, 0.9)
    assert [lo, hi] == list(np.quantile(v, [(1 - 0.9) / 2, 1 - (1 - 0.9) / 2]))


def test_percentile_interval_nan_aware_only_when_asked():
    v = np.random.default_rng(1).random(500)
    v[::7] = np.nan
    lo, hi = stats.percentile_interval(v, 0.95, nan=True)
    assert [lo, hi] == list(np.nanquantile(v, [(1 - 0.95) / 2, 1 - (1 - 0.95) / 2]))
    assert np.isfinite([lo, hi]).all()
    assert np.isnan(stats.percentile_interval(v, 0.95)).all()
    lo, hi = stats.percentile_interval(v, (0.01, 0.99), nan=True)  # release.compare: one-sided at alpha_j each
    assert [lo, hi] == list(np.nanquantile(v, [0.01, 0.99]))


def test_percentile_interval_along_an_axis():
    v = np.random.default_rng(2).random((300, 4))
    lo, hi = stats.percentile_interval(v, 0.95, axis=0)
    assert lo.shape == hi.shape == (4,)
    for j in range(4):
        assert [lo[j], hi[j]] == list(np.quantile(v[:, j], [(1 - 0.95) / 2, 1 - (1 - 0.95) / 2]))


# ---------------------------------------------------------------- intervals of means

def test_bootstrap_mean_intervals_of_one_column_and_of_several():
    rng = np.random.default_rng(3)
    values = np.column_stack([rng.random(150), (rng.random(150) < 0.3).astype(float), np.round(rng.random(150), 1)])
    lo, hi = stats.bootstrap_mean_intervals(values, 400, np.random.default_rng(9), 0.95)
    idx = np.random.default_rng(9).integers(0, 150, (400, 150))
    want = np.quantile(values[idx].mean(axis=1), [(1 - 0.95) / 2, 1 - (1 - 0.95) / 2], axis=0)
    assert lo.tobytes() == want[0].tobytes() and hi.tobytes() == want[1].tobytes()
    assert (lo < values.mean(axis=0)).all() and (values.mean(axis=0) < hi).all()
    one = values[:, 0]
    lo1, hi1 = stats.bootstrap_mean_intervals(one, 400, np.random.default_rng(9), stats.CI95)
    assert [lo1, hi1] == list(np.quantile(one[idx].mean(axis=1), [0.025, 0.975]))


# ---------------------------------------------------------------- names and directions, once

def test_metric_names_are_defined_once_in_stats():
    from mlcycle.monitoring import release
    from mlcycle.tasks.recommender import ranking

    assert config.GATE_METRICS is stats.GATE_METRICS and config.RANKING_METRICS is stats.RANKING_METRICS
    assert ranking.METRICS is stats.RANKING_METRICS
    assert release.SUPPORTED is stats.WEIGHTED_METRICS
    # a task's gate kinds add their own (the forecast's mase, smape, coverage) with their direction
    assert stats.GATE_METRICS == stats.TABLE_METRICS + stats.RANKING_METRICS + stats.TASK_METRICS
    assert {"mase", "smape"} <= set(stats.TASK_METRICS) and {"mase", "smape"} <= stats.LOWER_IS_BETTER
    assert len(set(stats.GATE_METRICS)) == len(stats.GATE_METRICS)
    assert stats.LOWER_IS_BETTER <= set(stats.TABLE_METRICS) | set(stats.TASK_METRICS)
    assert set(stats.WEIGHTED_METRICS) <= set(stats.TABLE_METRICS)
    # the recommender's params name the same four (a Literal keeps them readable in the schema)
    annotation = RecommendParams.model_fields["metric"].annotation
    assert typing.get_args(annotation) == stats.RANKING_METRICS


def test_evaluate_reports_only_metrics_the_gate_knows():
    from mlcycle.tasks.recommender import ranking
    from mlcycle.tasks.tabular import evaluate

    y, s = binary(100, ties=False)
    named = set(evaluate.classification_metrics(y, s, 0.5)) - {"threshold", "positive_rate"}
    p = np.random.default_rng(0).dirichlet([1, 1, 1], 100)
    named |= set(evaluate.classification_metrics(np.arange(100) % 3, p, None))
    named |= set(evaluate.regression_metrics(s, y))
    assert named == set(stats.TABLE_METRICS)
    assert tuple(ranking.user_metrics(["a", "b"], {"a"}, 2)) == stats.RANKING_METRICS


@pytest.mark.parametrize("metric", sorted(stats.LOWER_IS_BETTER))
def test_better_follows_the_direction(metric):
    assert stats.better(metric, 0.1, 0.2) and not stats.better(metric, 0.2, 0.1)
    assert stats.better("roc_auc", 0.8, 0.7) and not stats.better("roc_auc", 0.7, 0.7)
