"""Stage `evaluate`: holdout metrics and the curves behind them, for the model and the baseline.

Metrics go to reports/metrics/evaluate.json (DVC metrics); curves to reports/plots/*.csv (DVC
plots), so `dvc metrics diff` and `dvc plots diff` compare runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from mlcycle.core import literal, stats
from mlcycle.core.spec import FeatureSpec
from mlcycle.core.stats import headline  # noqa: F401 (the metrics shown first: evaluate.headline in the notebooks)
from mlcycle.stages.evaluate import write  # noqa: F401 (the metrics and plot files, written alike by every task)


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold, n_bins: int = 10) -> dict:
    """Binary (p: positive-class probability) or multiclass (p: n x k probabilities) metrics.
    `threshold`: one for every row, or one per row (a routed model's, `core.scoring.thresholds`);
    `threshold` in the result only for one."""
    if p.ndim == 1:
        t = 0.5 if threshold is None else threshold
        pred = (p >= t).astype(int)
        one = {"threshold": float(t)} if np.ndim(t) == 0 else {}
        return {
            "roc_auc": float(skm.roc_auc_score(y, p)),
            "pr_auc": float(skm.average_precision_score(y, p)),
            "log_loss": float(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
            "brier": float(skm.brier_score_loss(y, p)),
            "ece": expected_calibration_error(y, p, n_bins),
            "f1": float(skm.f1_score(y, pred, zero_division=0)),
            "precision": float(skm.precision_score(y, pred, zero_division=0)),
            "recall": float(skm.recall_score(y, pred, zero_division=0)),
            "accuracy": float(skm.accuracy_score(y, pred)),
            **one,
            "positive_rate": float(np.mean(y)),
        }
    labels = np.arange(p.shape[1])
    pred = p.argmax(axis=1)
    present = np.unique(y)
    out = {
        "log_loss": float(skm.log_loss(y, p, labels=labels)),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "f1_macro": float(skm.f1_score(y, pred, average="macro", zero_division=0)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, pred)),
    }
    if len(present) == p.shape[1]:
        out["roc_auc_ovr"] = float(skm.roc_auc_score(y, p, multi_class="ovr", labels=labels))
    return out


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict:
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
        "mae": float(skm.mean_absolute_error(y, pred)),
        "r2": float(skm.r2_score(y, pred)),
    }


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Mean |observed rate - mean predicted| over equal-width bins, weighted by bin size."""
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        m = bins == b
        total += m.sum() * abs(y[m].mean() - p[m].mean())
    return float(total / len(y))


def rows_of(threshold, rows):
    """The threshold of the given rows: per-row thresholds are taken at `rows`, one stays one."""
    return threshold[rows] if np.ndim(threshold) else threshold


def metrics_for(task: str, y: np.ndarray, scores: np.ndarray, threshold: float | None, n_bins: int) -> dict:
    if task == "regression":
        return regression_metrics(y, scores)
    return classification_metrics(y, scores, threshold, n_bins)


def curves(task: str, y: np.ndarray, scores: np.ndarray, threshold: float | None, n_bins: int,
           classes: list | None = None, max_points: int = 400) -> dict[str, pd.DataFrame]:
    """Plot data: roc, pr, calibration and confusion (binary); confusion (multiclass); residuals (regression)."""
    out: dict[str, pd.DataFrame] = {}
    if task == "regression":
        idx = _thin(len(y), 2000)
        out["residuals"] = pd.DataFrame({"predicted": scores[idx], "actual": y[idx], "residual": y[idx] - scores[idx]})
        return out
    if scores.ndim == 1:
        fpr, tpr, _ = skm.roc_curve(y, scores)
        i = _thin(len(fpr), max_points)
        out["roc"] = pd.DataFrame({"fpr": fpr[i], "tpr": tpr[i]})
        prec, rec, _ = skm.precision_recall_curve(y, scores)
        i = _thin(len(prec), max_points)
        out["pr"] = pd.DataFrame({"recall": rec[i], "precision": prec[i]})
        from sklearn.calibration import calibration_curve

        frac, mean = calibration_curve(y, scores, n_bins=n_bins, strategy="uniform")
        out["calibration"] = pd.DataFrame({"predicted": mean, "observed": frac})
        pred = (scores >= (0.5 if threshold is None else threshold)).astype(int)
        names = ["negative", "positive"]
    else:
        pred = scores.argmax(axis=1)
        names = [str(c) for c in (classes or range(scores.shape[1]))]
    out["confusion"] = pd.DataFrame({"actual": [names[v] for v in y], "predicted": [names[v] for v in pred]})
    return out


def _thin(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, num=min(n, k)).round().astype(int))


# ---------------------------------------------------------------- figures for the report

@literal.figures()
def plot_curves(model: dict[str, pd.DataFrame], baseline: dict[str, pd.DataFrame], metrics: dict):
    """ROC, precision-recall and calibration of model and baseline side by side (binary)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.8))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for name, c, style in (("model", model, "-"), ("baseline", baseline, "--")):
        m = metrics[name]
        ax1.plot(c["roc"]["fpr"], c["roc"]["tpr"], style, label=f"{name} (AUC {m['roc_auc']:.3f})")
        ax2.plot(c["pr"]["recall"], c["pr"]["precision"], style, label=f"{name} (AP {m['pr_auc']:.3f})")
        ax3.plot(c["calibration"]["predicted"], c["calibration"]["observed"], style + "o", ms=3,
                 label=f"{name} (ECE {m['ece']:.3f})")
    ax1.plot([0, 1], [0, 1], ":", color="grey")
    ax3.plot([0, 1], [0, 1], ":", color="grey")
    ax1.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax2.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    ax3.set(xlabel="mean predicted probability", ylabel="observed share", title="Calibration")
    for ax in (ax1, ax2, ax3):
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@literal.figures()
def plot_confusion(confusion: pd.DataFrame, title: str = "Confusion matrix (holdout)"):
    from matplotlib.figure import Figure

    table = pd.crosstab(confusion["actual"], confusion["predicted"])
    labels = sorted(set(table.index) | set(table.columns))
    table = table.reindex(index=labels, columns=labels, fill_value=0)
    k = len(labels)
    fig = Figure(figsize=(1.2 * k + 2.5, 1.0 * k + 2))
    ax = fig.subplots()
    ax.imshow(table.to_numpy(), cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{table.iat[i, j]:,}", ha="center", va="center", fontsize=9)
    shown = literal.labels(labels, 24)  # classes as typed, shortened
    ax.set_xticks(range(k), shown, rotation=45, ha="right")
    ax.set_yticks(range(k), shown)
    ax.set(xlabel="predicted", ylabel="actual", title=title)
    fig.tight_layout()
    return fig


@literal.figures()
def plot_residuals(residuals: pd.DataFrame):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.scatter(residuals["predicted"], residuals["actual"], s=4, alpha=0.4)
    lo = float(min(residuals["predicted"].min(), residuals["actual"].min()))
    hi = float(max(residuals["predicted"].max(), residuals["actual"].max()))
    ax1.plot([lo, hi], [lo, hi], ":", color="grey")
    ax1.set(xlabel="predicted", ylabel="actual", title="Predicted against actual")
    ax2.hist(residuals["residual"], bins=50)
    ax2.set(xlabel="actual - predicted", ylabel="rows", title="Residuals")
    fig.tight_layout()
    return fig


def comparison(metrics: dict, names: list[str]) -> pd.DataFrame:
    """Model and baseline side by side for the given metric names."""
    rows = [{"metric": n, "model": metrics["model"].get(n), "baseline": metrics["baseline"].get(n)} for n in names]
    return pd.DataFrame(rows).set_index("metric")


# ---------------------------------------------------------------- intervals

def intervals(task: str, y: np.ndarray, scores: np.ndarray, threshold: float | None, n_bins: int,
              names: list[str], n_boot: int, seed: int) -> dict[str, float]:
    """95% percentile bootstrap intervals of the named metrics over the holdout rows, as
    {"<metric>_lo": ..., "<metric>_hi": ...}; {} when n_boot is 0. Seeded: a re-run gives the same.
    The metrics of `resampled_metrics` are computed for blocks of resamples at once (the same
    resamples and values as `loop_metrics`, which computes any other metric one resample at a time).
    A resample where a metric is undefined (ROC AUC of a resample holding one class) is left out of
    that metric's interval."""
    if not n_boot:
        return {}
    fast = [n for n in names if n in vectorised_metrics(task, scores)]
    slow = [n for n in names if n not in fast]
    values = {n: [] for n in names}
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, BOOT_BLOCK):  # blocks of draws: the same numbers as one n_boot x n draw
        idx = stats.resample_indices(rng, len(y), min(BOOT_BLOCK, n_boot - start))
        if fast:
            got = resampled_metrics(task, y, scores, threshold, fast, idx)
            for n in fast:
                values[n].extend(got[n].tolist())
        if slow:
            for n, v in loop_metrics(task, y, scores, threshold, n_bins, slow, idx).items():
                values[n].extend(v)
    return _cut(values)


BOOT_BLOCK = 25  # resamples computed together by `intervals` (memory: a few BOOT_BLOCK x rows arrays)


def loop_metrics(task: str, y: np.ndarray, scores: np.ndarray, threshold, n_bins: int, names: list[str],
                 idx: np.ndarray) -> dict[str, list[float]]:
    """The named metrics of each resample (rows of `idx`, row positions) by `metrics_for` (a resample
    it refuses is left out: scikit-learn before 1.6 refused ROC AUC for one class)."""
    values: dict[str, list[float]] = {n: [] for n in names}
    for i in idx:
        try:
            m = metrics_for(task, y[i], scores[i], rows_of(threshold, i), n_bins)
        except ValueError:  # a resample holding one class only
            continue
        for n in names:
            if n in m:
                values[n].append(m[n])
    return values


def _cut(values: dict[str, list[float]]) -> dict[str, float]:
    out = {}
    for n, v in values.items():
        v = [x for x in v if not np.isnan(x)]  # undefined on a resample (ROC AUC of one class): left out
        if v:
            lo, hi = stats.percentile_interval(v, stats.CI95)
            out[f"{n}_lo"], out[f"{n}_hi"] = float(lo), float(hi)
    return out


def vectorised_metrics(task: str, scores: np.ndarray) -> tuple[str, ...]:
    """The metrics `resampled_metrics` computes for the task (by the scores' shape)."""
    if task == "regression":
        return ("rmse", "mae", "r2")
    if scores.ndim == 1:
        return ("roc_auc", "pr_auc", "log_loss", "brier", "f1", "precision", "recall", "accuracy")
    return ("accuracy", "log_loss")


def resampled_metrics(task: str, y: np.ndarray, scores: np.ndarray, threshold, names: list[str],
                      idx: np.ndarray) -> dict[str, np.ndarray]:
    """The named metrics (of `vectorised_metrics`) on every resample at once: `idx` holds one
    resample's row positions a row (B x n, `core.stats.resample_indices`); each metric an array of B,
    the values `metrics_for` gives on `y[i], scores[i]` up to rounding (a resample is the count of
    each row drawn, `core.stats.counts_of`, and each metric a weighted sum: the rankings behind ROC
    AUC and average precision need one sort of the scores for every resample). As scikit-learn's, ROC
    AUC is nan on a resample holding one class, average precision 0 on one without positives."""
    w = stats.counts_of(idx)
    y = np.asarray(y)
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if task == "regression":
            err = scores - y
            sse = w @ err ** 2
            mean_y = (w @ y) / total
            sst = (w * (y[None, :] - mean_y[:, None]) ** 2).sum(axis=1)
            r2 = np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1), np.where(sse == 0, 1.0, 0.0))
            got = {"rmse": lambda: np.sqrt(sse / total), "mae": lambda: (w @ np.abs(err)) / total, "r2": lambda: r2}
            return {n: got[n]() for n in names}
        if scores.ndim == 2:
            rows = np.arange(len(y))
            p = scores / scores.sum(axis=1, keepdims=True)
            p_true = np.clip(p[rows, y], np.finfo(p.dtype).eps, 1 - np.finfo(p.dtype).eps)
            got = {"accuracy": lambda: (w @ (scores.argmax(axis=1) == y).astype(float)) / total,
                   "log_loss": lambda: -(w @ np.log(p_true)) / total}
            return {n: got[n]() for n in names}
        yf = y.astype(float)
        pos, neg = w @ yf, w @ (1 - yf)
        pred = (scores >= (0.5 if threshold is None else np.asarray(threshold))).astype(float)
        tp, fp = w @ (pred * yf), w @ (pred * (1 - yf))
        fn = pos - tp

        def share(a, b):
            return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)  # zero_division=0, as sklearn's scores

        got = {"roc_auc": lambda: stats.weighted_metric("roc_auc", y, scores, w),
               "pr_auc": lambda: np.where(pos > 0, weighted_average_precision(y, scores, w), 0.0),
               "log_loss": lambda: stats.weighted_metric("log_loss", y, np.clip(scores, 1e-15, 1 - 1e-15), w),
               "brier": lambda: stats.weighted_metric("brier", y, scores, w),
               "f1": lambda: share(2 * tp, 2 * tp + fp + fn), "precision": lambda: share(tp, tp + fp),
               "recall": lambda: share(tp, pos), "accuracy": lambda: (tp + neg - fp) / total}
        return {n: got[n]() for n in names}


def weighted_average_precision(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average precision (sklearn's `average_precision_score`: the sum over the distinct scores, highest
    first, of the rise in recall times the precision there) under each row of weights `w` (B x n)."""
    order = np.argsort(-np.asarray(s, dtype=float), kind="stable")
    ss, ys, ws = np.asarray(s, dtype=float)[order], np.asarray(y, dtype=float)[order], w[:, order]
    starts = np.r_[0, np.flatnonzero(np.diff(ss)) + 1]  # groups of equal scores
    tps = np.cumsum(np.add.reduceat(ws * ys, starts, axis=1), axis=1)
    fps = np.cumsum(np.add.reduceat(ws * (1 - ys), starts, axis=1), axis=1)
    recall = tps / tps[:, -1:]
    rise = np.diff(recall, axis=1, prepend=0.0)
    precision = np.where(tps + fps > 0, tps / np.where(tps + fps > 0, tps + fps, 1), 0.0)
    return (rise * precision).sum(axis=1)


def comparison_with_intervals(metrics: dict, names: list[str], ci: dict) -> pd.DataFrame:
    """`comparison` with the model's 95% interval beside it."""
    out = comparison(metrics, names)
    out.insert(1, "model 95% interval", [f"[{ci[f'{n}_lo']:.4f}, {ci[f'{n}_hi']:.4f}]" if f"{n}_lo" in ci else ""
                                         for n in out.index])
    return out


def takeaways(results: dict, metrics: list[str], ci: dict | None = None, importance: pd.DataFrame | None = None,
              top: int = 3) -> str:
    """What the holdout showed this run, as Markdown bullets: the first of `metrics` (see `headline`)
    for the model against the baseline with the model's interval, then the other metrics and the
    most important inputs (`importance` from `explain.permutation_importance`)."""
    from mlcycle.core.scoring import better

    model, base = results["model"], results["baseline"]
    first = next((m for m in metrics if m in model), None)
    if first is None:
        return "- no headline metric could be computed on the holdout."
    ci = ci or {}
    interval = f" (95% interval {ci[f'{first}_lo']:.4f} to {ci[f'{first}_hi']:.4f})" if f"{first}_lo" in ci else ""
    lines = [f"- holdout {first}: {model[first]:.4f} for the model{interval}, {base[first]:.4f} for the baseline: "
             f"the model is {'better' if better(first, model[first], base[first]) else 'not better'}."]
    others = [m for m in metrics if m != first and m in model]
    if others:
        lines.append("- also: " + ", ".join(f"{m} {model[m]:.4f} (baseline {base.get(m, float('nan')):.4f})"
                                           for m in others) + ".")
    if importance is not None and len(importance):
        head = importance.head(top)
        lines.append("- the holdout score depends most on " + ", ".join(
            f"`{r.feature}` ({r.importance:.4f})" for r in head.itertuples()) + " (permutation importance).")
    return "\n".join(lines)


def index_section(paths, params, read) -> dict:
    """The index page's headline for a table model (the task's "index" hook): the metrics shown first,
    what the baseline is, the rows behind the holdout and the model family. `read(path)` gives a
    JSON file's content (or None)."""
    features = read(paths.metrics("features")) or {}
    cols = params.train.baseline_columns
    return {
        "headline": stats.headline(FeatureSpec.from_json(paths.feature_spec)) if paths.feature_spec.exists() else [],
        "baseline": f"plain gradient boosting on {', '.join(cols)}" if cols else "the prior (no features)",
        "rows": (f"Holdout rows: {features.get('test_rows', '-')}; training rows: {features.get('train_rows', '-')} "
                 f"+ validation {features.get('valid_rows', '-')}."),
        "model": params.train.model,
    }
