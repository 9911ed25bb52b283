"""Metric names, directions and which metrics a model is shown with first, and the bootstrap behind
every interval: one place for every task, the gate, the release decision, monitoring and the reports.

Bootstrap resamples draw n of n rows with replacement: `resample_indices` (B x n row positions, one
`rng.integers` call; B calls of n draw the same numbers) or `resample_counts` (how often each row
was drawn). `weighted_metric` computes a metric on every resample at once from the counts,
`percentile_interval` cuts the interval from the resampled values, `bootstrap_mean_intervals` does
both for means of per-row values (per user, per served list).
"""

from __future__ import annotations

import numpy as np

from mlcycle.core import tasks

# what evaluate reports for a table model (binary, multiclass, regression) and for a recommender
TABLE_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "f1", "precision", "recall", "accuracy",
                 "f1_macro", "balanced_accuracy", "roc_auc_ovr", "rmse", "mae", "r2")
RANKING_METRICS = ("ndcg_at_k", "recall_at_k", "map_at_k", "hit_rate_at_k")
# the metrics a registered task's gate kinds add (`GateKind.metrics`, e.g. a forecast's "mase")
TASK_METRICS = tuple(dict.fromkeys(m for t in tasks.all_tasks() for k in t.gate_kinds for m in k.metrics))
GATE_METRICS = TABLE_METRICS + RANKING_METRICS + TASK_METRICS  # the gate may name any of these
# the metrics `weighted_metric` computes under resample weights (the release decision's live metrics)
WEIGHTED_METRICS = ("roc_auc", "log_loss", "brier", "accuracy", "rmse", "mae")
# every other metric: higher is better; a task's gate kinds add theirs (`GateKind.lower_is_better`)
LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss", "brier", "ece",
                             *(m for t in tasks.all_tasks() for k in t.gate_kinds for m in k.lower_is_better)})
# the quantiles of the 95% intervals evaluate, fairness and live monitoring write; `tails(0.95)` gives
# 0.025000000000000022 and 0.975, which the recommender's evaluate and the release decision use
CI95 = (0.025, 0.975)


def better(metric: str, a: float, b: float) -> bool:
    """Whether value `a` of `metric` is strictly better than `b`."""
    return a < b if metric in LOWER_IS_BETTER else a > b


def headline(spec) -> list[str]:
    """The metrics a table model is shown with first (index page, model card, evaluate report), by its
    kind (`spec`: its core.spec.FeatureSpec, not imported here: core/config.py imports this module)."""
    if tasks.target_of(spec.task) == "numbers":
        return ["rmse", "mae", "r2"]
    if spec.positive_class is not None:
        return ["roc_auc", "pr_auc", "log_loss", "f1"]
    return ["accuracy", "f1_macro", "log_loss"]


# ---------------------------------------------------------------- bootstrap

def resample_indices(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """Bootstrap resamples as row positions: n_boot x n, each row drawing n of the n rows with replacement."""
    return rng.integers(0, n, size=(n_boot, n))


def counts_of(idx: np.ndarray) -> np.ndarray:
    """Resamples as counts (float, B x n): how often each row was drawn in each row of `idx` (B x n positions)."""
    n_boot, n = idx.shape
    flat = idx + np.arange(n_boot)[:, None] * n
    return np.bincount(flat.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def resample_counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """Bootstrap resamples as counts: B x n, each row drawing n rows with replacement."""
    return counts_of(resample_indices(rng, n, n_boot))


def weighted_metric(name: str, y: np.ndarray, s: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The metric (one of WEIGHTED_METRICS) of the rows (`y`, `s`: 1-D; binary labels 0/1) under each
    row of weights `counts` (2-D, B x n: a bootstrap resample is the count of each row drawn, see
    `resample_counts`). ROC AUC uses one sort of the scores for every resample: the share of
    (positive, negative) pairs ranked right, ties counted half (as sklearn's roc_auc_score); nan
    for a resample without positives or negatives."""
    y, s = np.asarray(y, dtype=float), np.asarray(s, dtype=float)
    w = counts
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if name == "roc_auc":
            order = np.argsort(s, kind="stable")
            ss, ys, ws = s[order], y[order], w[:, order]
            starts = np.r_[0, np.flatnonzero(np.diff(ss)) + 1]  # groups of equal scores
            pos = np.add.reduceat(ws * ys, starts, axis=1)
            neg = np.add.reduceat(ws * (1 - ys), starts, axis=1)
            below = np.cumsum(neg, axis=1) - neg
            return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))
        if name == "log_loss":
            p = np.clip(s, 1e-15, 1 - 1e-15)
            return -(w * (y * np.log(p) + (1 - y) * np.log(1 - p))).sum(axis=1) / total
        if name == "brier":
            return (w * (s - y) ** 2).sum(axis=1) / total
        if name == "accuracy":
            return (w * (s == y)).sum(axis=1) / total
        if name == "rmse":
            return np.sqrt((w * (s - y) ** 2).sum(axis=1) / total)
        if name == "mae":
            return (w * np.abs(s - y)).sum(axis=1) / total
    raise ValueError(f"no weighted form of metric {name} (known: {', '.join(WEIGHTED_METRICS)})")


def tails(level: float) -> tuple[float, float]:
    """The quantiles of a central `level` interval: (1 - level) / 2 and 1 - (1 - level) / 2."""
    return (1 - level) / 2, 1 - (1 - level) / 2


def percentile_interval(values, level: float | tuple[float, float] = 0.95, axis: int = 0, nan: bool = False):
    """The percentile interval (lo, hi) of resampled `values` along `axis` (np.quantile, linear):
    `level` is the central share (quantiles from `tails`) or the two quantiles themselves (CI95).
    nan: np.nanquantile (resamples where the metric is undefined left out). Floats for 1-D values,
    arrays for more dimensions."""
    q = list(tails(level)) if np.ndim(level) == 0 else list(level)
    lo, hi = (np.nanquantile if nan else np.quantile)(values, q, axis=axis)
    return lo, hi


def bootstrap_mean_intervals(values, n_boot: int, rng: np.random.Generator,
                             level: float | tuple[float, float] = 0.95):
    """Percentile bootstrap intervals of the mean of `values` (rows, or rows x columns: one interval per
    column) over `n_boot` resamples of the rows; (lo, hi), each an array for 2-D values."""
    values = np.asarray(values)
    idx = resample_indices(rng, len(values), n_boot)
    return percentile_interval(values[idx].mean(axis=1), level, axis=0)
