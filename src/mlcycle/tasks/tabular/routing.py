"""A routed model: one model per segment of the data, and a global model for every other row.

A segment is one value (or one combination of values) of the `by` columns: one origin airport, one
carrier, one customer. `routed(...)` packs the fitted global pipeline and the fitted pipeline of each
segment, each with its own decision threshold, into one scikit-learn estimator: it scores like the
global pipeline (`predict_proba`, `predict`), so MLflow saves it as one model and the registry, the
gate, serving and monitoring take it as they take any other. Each row goes to its segment's model;
rows of a segment without one (too few training rows, no better than the global model, never seen)
go to the global model. `row_thresholds(X)` gives each row the threshold of the model that scored it
(`core.scoring.thresholds` reads it).

Segment keys are text: each column's value as text (a whole number without its `.0`, a missing
value as `(missing)`), joined by ` | ` for several columns, so a key reads the same whether the row
came from a Parquet file or from a JSON request.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

MISSING = "(missing)"
JOIN = " | "
GLOBAL = "(global)"  # what `route` gives a row scored by the global model


def _text(values: pd.Series) -> pd.Series:
    """A column's values as segment-key text (see the module docstring)."""
    s = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_bool_dtype(s):
        out = s.astype("string")
    elif pd.api.types.is_numeric_dtype(s):
        num = pd.to_numeric(s, errors="coerce").astype("float64")
        whole = num.notna() & np.isfinite(num) & (num == np.round(num))
        out = num.astype("string")
        out[whole] = num[whole].astype("int64").astype("string")
    else:
        out = s.astype("string")
    return out.fillna(MISSING).astype(object)


def keys(X: pd.DataFrame, by: list[str]) -> np.ndarray:
    """The segment key of each row of X (an array of str)."""
    missing = [c for c in by if c not in X.columns]
    if missing:
        raise KeyError(f"segment column(s) {missing} are not in the rows; the model routes by {by}")
    parts = [_text(X[c]) for c in by]
    out = parts[0]
    for p in parts[1:]:
        out = out + JOIN + p
    return out.to_numpy(dtype=object)


class Routed(BaseEstimator):
    """The global pipeline and one pipeline per segment key (see the module docstring)."""

    def __init__(self, by: list[str], task: str, global_model=None, global_threshold: float | None = None,
                 models: dict | None = None, thresholds: dict | None = None):
        self.by = by
        self.task = task
        self.global_model = global_model
        self.global_threshold = global_threshold
        self.models = models
        self.thresholds = thresholds

    def __sklearn_is_fitted__(self) -> bool:
        return self.global_model is not None

    def fit(self, X, y=None):
        raise NotImplementedError("a routed model is assembled from fitted models (mlcycle.tasks.tabular.segments.fit)")

    @property
    def classes_(self):
        return self.global_model.classes_

    @property
    def n_features_in_(self) -> int:
        return int(getattr(self.global_model, "n_features_in_", 0))

    @property
    def feature_names_in_(self):
        return self.global_model.feature_names_in_

    def route(self, X: pd.DataFrame) -> np.ndarray:
        """The key of the segment model that scores each row, or GLOBAL."""
        k = keys(X, self.by)
        return np.where(pd.Series(k).isin(list(self.models or {})).to_numpy(), k, GLOBAL).astype(object)

    def _groups(self, X: pd.DataFrame):
        """(model, row positions) for each model that scores some row of X."""
        where = self.route(X)
        for key in pd.unique(where):
            rows = np.flatnonzero(where == key)
            yield (self.global_model if key == GLOBAL else self.models[key]), rows

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        n = len(self.classes_)
        out = np.zeros((len(X), n), dtype=np.float64)
        for model, rows in self._groups(X):
            p = np.asarray(model.predict_proba(X.iloc[rows]), dtype=np.float64)
            # a segment's model may have seen fewer classes (multiclass): its columns go to its classes
            cols = np.searchsorted(np.asarray(self.classes_), np.asarray(model.classes_))
            out[np.ix_(rows, cols)] = p
        return out

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if self.task == "regression":
            out = np.zeros(len(X), dtype=np.float64)
            for model, rows in self._groups(X):
                out[rows] = np.asarray(model.predict(X.iloc[rows]), dtype=np.float64).ravel()
            return out
        proba = self.predict_proba(X)
        classes = np.asarray(self.classes_)
        if proba.shape[1] == 2:
            return classes[(proba[:, 1] >= self.row_thresholds(X)).astype(int)]
        return classes[proba.argmax(axis=1)]

    def row_thresholds(self, X: pd.DataFrame) -> np.ndarray:
        """The decision threshold of the model that scores each row (0.5 where a model has none)."""
        cut = {k: (0.5 if t is None else float(t)) for k, t in (self.thresholds or {}).items()}
        default = 0.5 if self.global_threshold is None else float(self.global_threshold)
        return np.array([cut.get(k, default) for k in self.route(X)], dtype=np.float64)


class RoutedClassifier(ClassifierMixin, Routed):
    pass


class RoutedRegressor(RegressorMixin, Routed):
    pass


def routed(by: list[str], task: str, global_model, global_threshold: float | None, models: dict,
           thresholds: dict) -> Routed:
    """The routed model of a task (a classifier or a regressor to scikit-learn's tools)."""
    cls = RoutedRegressor if task == "regression" else RoutedClassifier
    return cls(list(by), task, global_model, global_threshold, dict(models), dict(thresholds))


def is_routed(model) -> bool:
    return isinstance(model, Routed)
