"""The one way a model becomes scores, for training, evaluation, explanation, serving and monitoring.

Scores: the positive class's probability for a binary classifier, the class probabilities
(rows x classes, in the model's class order) for a multiclass one, the predicted values for a
regressor. The quiet loading of MLflow models lives here too, so every layer loads models the
same way (metric directions: core/stats.py).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pandas as pd

from mlcycle.core import tasks
from mlcycle.core.stats import LOWER_IS_BETTER, better  # noqa: F401 (directions: defined in core/stats.py)


def class_probabilities(model, X: pd.DataFrame) -> np.ndarray:
    """Rows x classes, float64, in the model's class order."""
    return np.asarray(model.predict_proba(X), dtype=np.float64)


def from_probabilities(proba: np.ndarray) -> np.ndarray:
    """Scores from class probabilities: the positive column of two, else all of them."""
    return proba[:, 1] if proba.shape[1] == 2 else proba


def scores(model, X: pd.DataFrame, task: str) -> np.ndarray:
    """The model's scores on rows X (see the module docstring). A classifier without
    `predict_proba` (an MLflow pyfunc of another library) gives its predictions."""
    if tasks.answers_probabilities(task) and hasattr(model, "predict_proba"):
        return from_probabilities(class_probabilities(model, X))
    out = model.predict(X)
    return np.asarray(out.iloc[:, 0] if isinstance(out, pd.DataFrame) else out).ravel()


def thresholds(model, X: pd.DataFrame, threshold: float | None):
    """The decision threshold for the rows X: one per row from a model that routes rows to several
    models, each with its own (`core.segments`); `threshold` (the model's one) for any other."""
    per_row = getattr(model, "row_thresholds", None)
    return per_row(X) if callable(per_row) else threshold


@contextmanager
def quiet_mlflow():
    """Import and use mlflow without its import-time progress-bar warning and pickle notice in reports.

    Models are written by this workspace itself, so the cloudpickle notice carries no news;
    skops, the alternative, refuses HistGradientBoosting trees unless told to trust them.
    """
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import mlflow  # noqa: F401 (first: its import sets the level of its loggers, which is set below)
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="IProgress not found")
            yield
    finally:
        logger.setLevel(level)
