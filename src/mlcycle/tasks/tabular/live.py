"""What a table model's live answers are judged by, the tabular task's hooks for the live layers.

- `check_label` (hook `feedback_label`): a label fed back for a `/predict` answer (`POST /feedback`,
  `mlcycle monitoring feedback`, serving/feedback.py), one of a classifier's classes or a number for a regressor;
- `metric_name`, `encode` (hooks `live_metric`, `live_scores`): the metric `mlcycle release`
  compares the candidate and the champion on (monitoring/release.py; the monitor's live metric per
  version too) and the labels and scores it takes from the prediction log's rows: ROC AUC of the
  positive class's score for a binary classifier, accuracy for a multiclass one, RMSE for a regressor
  (or `gate.metric` when it has a live form for the model).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mlcycle.core.errors import ClientError
from mlcycle.core.stats import WEIGHTED_METRICS


def check_label(value, meta: dict, where: str = "label"):
    """The label as stored: one of a classifier's classes (a number equal to a numeric class is
    taken as it), a number for a regressor; a ClientError(422) naming `where` otherwise."""
    task = meta.get("task")
    if task == "classification":
        classes = list(meta.get("classes") or [])
        for c in classes:
            same_kind = isinstance(value, str) == isinstance(c, str) and not isinstance(value, bool)
            if same_kind and value == c:
                return c
        raise ClientError(422, "wrong label type", where,
                          f"the label must be one of the model's classes {classes}, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise ClientError(422, "wrong label type", where, f"the label must be a finite number, got {value!r}")
    return float(value)


def encode(frame: pd.DataFrame, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """(y, s) for the live metric: a binary classifier's 0/1 label and positive-class score; a
    multiclass one's 0/1 correctness twice (accuracy); a regressor's value and prediction. A
    ValueError naming them when the labels are not the model's classes (a classifier) or not numbers
    (a regressor): such labels cannot judge the model."""
    task = meta.get("task")
    if task == "classification":
        classes = list(meta.get("classes") or [])
        known = frame["label"].map(lambda v: any(v == c and isinstance(v, str) == isinstance(c, str) for c in classes))
        if len(frame) and not known.all():
            odd = list(dict.fromkeys(frame.loc[~known, "label"].tolist()))[:3]
            raise ValueError(f"{int((~known).sum())} label(s) are not among the model's classes {classes} "
                             f"(e.g. {', '.join(repr(v) for v in odd)})")
        if len(classes) == 2:
            pos = meta.get("positive_class")
            pos = pos if pos in classes else classes[-1]
            return (frame["label"] == pos).to_numpy(dtype=float), frame["score"].to_numpy(dtype=float)
        right = (frame["prediction"].astype(str) == frame["label"].astype(str)).to_numpy(dtype=float)
        return right, np.ones_like(right)
    y = pd.to_numeric(frame["label"], errors="coerce")
    if y.isna().any() or not np.isfinite(y.to_numpy(dtype=float)).all():
        odd = list(dict.fromkeys(frame.loc[y.isna() | ~np.isfinite(y.fillna(0)), "label"].tolist()))[:3]
        raise ValueError(f"{int((y.isna() | ~np.isfinite(y.fillna(0))).sum())} label(s) are not finite numbers "
                         f"(e.g. {', '.join(repr(v) for v in odd)}); a regressor is judged on numbers")
    return y.to_numpy(dtype=float), frame["score"].to_numpy(dtype=float)


def metric_name(meta: dict, gate_metric: str) -> str:
    """The live metric: `gate_metric` when it has a live form for the model (any of WEIGHTED_METRICS,
    release.py's SUPPORTED, for a binary classifier; rmse or mae for a regressor), else ROC AUC
    (binary), accuracy (multiclass) or RMSE (regression, and models without a task)."""
    task = meta.get("task")
    binary = task == "classification" and len(meta.get("classes") or []) == 2
    if gate_metric != "auto" and gate_metric in WEIGHTED_METRICS:
        if binary or (task != "classification" and gate_metric in ("rmse", "mae")):
            return gate_metric
    return "roc_auc" if binary else "accuracy" if task == "classification" else "rmse"
