"""What scoring a request yields: the outputs per row (`score`: prediction, score and class
probabilities, through `core.scoring`) and the rows as the prediction log holds them (`log_inputs`,
`log_outputs`, and `arrow_schema`, the Parquet types of the input columns)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlcycle.core import scoring
from mlcycle.serving.model import Column, Served


def score(served: Served, X: pd.DataFrame) -> dict[str, list]:
    """Outputs per row: `prediction`, `score` and, for classifiers (`Served.classifier`), `probabilities`
    (from `scoring`)."""
    meta, model = served.meta, served.model
    if served.classifier and hasattr(model, "predict_proba"):
        proba = scoring.class_probabilities(model, X)
        classes = list(meta.get("classes") or range(proba.shape[1]))
        if proba.shape[1] == 2:
            pos = meta.get("positive_class")
            # the class value itself (a `true` positive_class of 0/1 classes answers 1, not True)
            positive = next((c for c in classes if pos is not None and c == pos), classes[-1])
            negative = next(c for c in classes if c != positive) if len(classes) == 2 else classes[0]
            threshold = scoring.thresholds(model, X, meta.get("threshold") or 0.5)  # per row for a routed model
            p = proba[:, 1]
            pred = np.where(p >= threshold, 1, 0)
            labels = [negative, positive]
            order = [negative, positive]
            return {"prediction": [labels[i] for i in pred.tolist()], "score": p.tolist(),
                    "probabilities": [dict(zip(map(str, order), row, strict=True)) for row in proba.tolist()]}
        top = proba.argmax(axis=1)
        return {"prediction": [classes[i] for i in top.tolist()], "score": proba.max(axis=1).tolist(),
                "probabilities": [dict(zip(map(str, classes), row, strict=True)) for row in proba.tolist()]}
    # a regressor's values, or another flavor's predictions: no task answering probabilities, its `predict`
    values = scoring.scores(model, X, task="").tolist()
    scores = [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None for v in values]
    return {"prediction": values, "score": scores}


def log_inputs(rows: list[dict], columns: tuple[Column, ...], X: pd.DataFrame) -> dict[str, list] | pd.DataFrame:
    """The input columns for the prediction log as lists (cheaper than a frame per request); the
    frame itself for a model without a signature."""
    if not columns:
        return X
    return {c.name: [r.get(c.name) for r in rows] for c in columns}


def log_outputs(out: dict[str, list]) -> dict[str, list]:
    """Outputs as prediction log columns (`proba_<class>` for multiclass probabilities)."""
    cols = {"prediction": out["prediction"], "score": out["score"]}
    probs = out.get("probabilities")
    if probs and len(probs[0]) > 2:
        for k in probs[0]:
            cols[f"proba_{k}"] = [p[k] for p in probs]
    return cols



def arrow_schema(columns: tuple[Column, ...]):
    """Parquet types of the input columns in the prediction log, so every part agrees."""
    import pyarrow as pa

    types = {"double": pa.float64(), "float": pa.float64(), "long": pa.int64(), "integer": pa.int64(),
             "string": pa.string(), "boolean": pa.bool_(), "datetime": pa.timestamp("us")}
    return pa.schema([pa.field(c.name, types[c.type]) for c in columns if c.type in types])
