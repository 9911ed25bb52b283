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


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_permutation_importance_through_the_compiled_features_equals_the_pipeline(task, tmp_path):
    from mlcycle.tasks.tabular import compiled
    from tests.code.test_compiled import fitted as compiled_fitted

    res, spec, xy = compiled_fitted(task)
    assert compiled.build(res.model, tmp_path, [xy["valid"][0]], spec.task, res.threshold).agrees
    fast, _ = compiled.load(tmp_path)
    X, y = xy["test"][0], train.encode_label(xy["test"][1], spec)
    binary = spec.positive_class is not None
    through = explain.permutation_importance(res.model, X, y, spec.task, binary, rows=150, seed=3, repeats=4, fast=fast)
    plain = explain.permutation_importance(res.model, X, y, spec.task, binary, rows=150, seed=3, repeats=4)
    assert through.attrs["path"] == "compiled features" and plain.attrs["path"] == "pipeline"
    pd.testing.assert_frame_equal(through, plain, check_exact=True)  # the same shuffles, the same scores
    assert through["importance"].abs().max() > 0
    # the shuffled rows' scores themselves: the estimator on the moved features, the pipeline on shuffled rows
    Xs = X.iloc[:150]
    blocks = explain.InputBlocks.proven(res.model, fast, Xs, seed=0)
    positions = blocks.positions()
    positions[:, 1] = positions[::-1, 1]
    shuffled = Xs.copy()
    shuffled[Xs.columns[1]] = Xs[Xs.columns[1]].to_numpy()[::-1]
    method = "predict_proba" if spec.task == "classification" else "predict"
    assert np.array_equal(getattr(blocks, method)(positions), getattr(res.model, method)(shuffled))


def test_permutation_importance_falls_back_to_the_pipeline_when_the_features_differ(tmp_path, monkeypatch):
    from mlcycle.tasks.tabular import compiled
    from tests.code.test_compiled import fitted as compiled_fitted

    res, spec, xy = compiled_fitted("binary")
    compiled.build(res.model, tmp_path, [xy["valid"][0]], spec.task, res.threshold)
    fast, _ = compiled.load(tmp_path)
    real = compiled.Compiled.blocks

    def mixed_up(self, X):  # the features of two input columns swapped: not what the pipeline makes
        F, owners = real(self, X)
        a, b = owners["x1"], owners["x2"]
        F[:, a + b] = F[:, b + a]
        return F, owners

    monkeypatch.setattr(compiled.Compiled, "blocks", mixed_up)
    X, y = xy["test"][0], train.encode_label(xy["test"][1], spec)
    got = explain.permutation_importance(res.model, X, y, spec.task, True, rows=100, seed=0, repeats=2, fast=fast)
    assert got.attrs["path"] == "pipeline"
    assert explain.InputBlocks.proven(res.model, None, X, seed=0) is None  # no compiled form: the pipeline
