import json

import numpy as np
import pandas as pd
import pytest

from mlcycle.core.errors import DataError
from mlcycle.tasks.tabular import explain, train
from tests.code.test_train import prepared


@pytest.fixture(scope="module")
def fitted():
    xy, spec, params = prepared("binary")
    res = train.fit(xy["train"], xy["valid"], spec, params)
    return res.model, xy, spec


def test_permutation_importance_finds_the_signal(fitted):
    model, xy, spec = fitted
    X, y = xy["test"][0], train.encode_label(xy["test"][1], spec)
    imp = explain.permutation_importance(model, X, y, "classification", True, rows=200, seed=0, repeats=3)
    assert set(imp["feature"]) == set(X.columns) and list(imp["rank"]) == list(range(1, len(X.columns) + 1))
    assert imp["feature"].iloc[0] in ("x1", "cat")  # the label depends on x1 and cat
    assert imp.attrs["scoring"] == "roc_auc" and imp.attrs["rows"] == min(200, len(X))


def test_partial_dependence_numeric_and_categorical(fitted):
    model, xy, spec = fitted
    X = xy["test"][0]
    curves = explain.partial_dependence(model, X, ["x1", "cat"], spec.categorical, "classification", 200, 0, grid=8)
    x1 = curves["x1"]
    assert len(x1) == 8 and x1["prediction"].iloc[-1] > x1["prediction"].iloc[0]  # more x1, more positives
    cat = curves["cat"].set_index("value")["prediction"]
    assert curves["cat"].attrs["categorical"] and cat["a"] > cat["b"]
    fig = explain.plot_partial_dependence(curves, "P(positive)")
    assert len(fig.axes) == 2


def test_contributions_of_one_row(fitted):
    model, xy, spec = fitted
    X = xy["train"][0]
    row = X.iloc[[0]].copy()
    row["x1"] = 3.0  # far above typical: pushes the score up
    c = explain.contributions(model, row, X, "classification", n_background=50, seed=0)
    assert set(c["feature"]) == set(X.columns)
    top = c.iloc[0]
    assert top["feature"] == "x1" and top["contribution"] > 0 and top["value"] == 3.0
    assert 0 <= c.attrs["score"] <= 1
    with pytest.raises(ValueError, match="one row at a time"):
        explain.contributions(model, X.iloc[:2], X, "classification")


def test_rows_from_json_and_prepare_names_missing_features(fitted):
    _, xy, _ = fitted
    X = xy["train"][0]
    rows = explain.rows_from(json.dumps({"x1": "1.5", "x2": None, "cat": "a", "flag": 1}), None)
    with pytest.raises(DataError, match="lacks the model's features"):
        explain.prepare(rows, X)
    full = {c: X.iloc[0][c] for c in X.columns}
    full = {k: (v.item() if isinstance(v, np.generic) else v.isoformat() if isinstance(v, pd.Timestamp) else v)
            for k, v in full.items()}  # as a client writes the row: the date as ISO 8601 text
    ready = explain.prepare(explain.rows_from(json.dumps(full), None), X)
    assert list(ready.columns) == list(X.columns) and pd.api.types.is_float_dtype(ready["x1"])
    assert ready["when"].iloc[0] == X["when"].iloc[0]
    with pytest.raises(DataError, match="not valid JSON"):
        explain.rows_from("{carrier: UA}", None)
