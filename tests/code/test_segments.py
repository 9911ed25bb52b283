"""One model per segment (`train.segment_by`): segments trained on a real Dask cluster (the embedded
one, and an external scheduler with two workers: the same models), routed with the global model as
one MLflow model that scores, decides and serves like any other; the evaluate comparison and the
gate's bound on a segment's drop."""

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config, scoring
from mlcycle.core.errors import DataError
from mlcycle.lifecycle import gate
from mlcycle.tasks.tabular import evaluate, features, routing, segments, train
from tests.code.frames import data_params
from tests.conftest import external_cluster


def segmented_frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Segments whose label follows opposite rules (a: x1 high, b: x1 low, c: x2 high) and a tiny one (d)."""
    rng = np.random.default_rng(seed)
    seg = rng.choice(["a", "b", "c", "d"], size=n, p=[0.4, 0.3, 0.28, 0.02])
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    signal = np.select([seg == "a", seg == "b", seg == "c"], [x1, -x1, x2], 0.3 * x1)
    return pd.DataFrame({
        "x1": x1, "x2": x2, "seg": pd.array(seg, dtype="str"),
        "y": np.where(signal + rng.normal(scale=0.4, size=n) > 0, "yes", "no"),
    })


def prepared(**train_kw):
    dp = data_params()
    table, spec, _ = features.build(segmented_frame(), dp, config.FeaturesParams())
    parts = features.split(table, spec, config.SplitParams(seed=0))
    xy = {k: (v[spec.inputs], v[features.LABEL]) for k, v in parts.items()}
    params = config.TrainParams(max_iter=40, min_samples_leaf=5, max_categories=10, segment_by=["seg"],
                                min_segment_rows=300, **train_kw)
    return xy, spec, params


@pytest.fixture(scope="module")
def fitted():
    xy, spec, params = prepared()
    base = train.fit(xy["train"], xy["valid"], spec, params)
    result = segments.fit(xy["train"], xy["valid"], spec, params, base, config.ComputeParams(workers=2))
    return xy, spec, params, base, result


def test_segments_get_their_own_models_and_the_rest_go_to_the_global_model(fitted):
    xy, spec, _, base, result = fitted
    model, found = result.model, result.segments
    assert routing.is_routed(model) and model.global_model is base.model
    by_key = {s.key: s for s in found.items}
    assert set(by_key) == {"a", "b", "c", "d"}
    assert not by_key["d"].routed and "min_segment_rows" in by_key["d"].reason
    for s in found.routed:  # each chose its own iterations and threshold, and beat the global model on its valid rows
        assert s.best_iter and 0 < s.threshold < 1 and s.valid_score > s.valid_global
    assert set(model.models) == {s.key for s in found.routed} and found.routed
    assert found.cluster["mlcycle.compute.workers"] == "2"
    X = xy["test"][0]
    route = model.route(X)
    p = model.predict_proba(X)
    for key in set(route):  # each row is scored by its segment's model, the others by the global one
        rows = route == key
        own = base.model if key == routing.GLOBAL else model.models[key]
        assert np.array_equal(p[rows], own.predict_proba(X[rows]))
    t = scoring.thresholds(model, X, base.threshold)
    for key in model.models:
        assert np.all(t[route == key] == model.thresholds[key])
    assert np.all(t[route == routing.GLOBAL] == base.threshold)
    assert np.array_equal(model.predict(X), model.classes_[(p[:, 1] >= t).astype(int)])


def test_an_unseen_or_missing_segment_goes_to_the_global_model(fitted):
    xy, _, _, base, result = fitted
    X = xy["test"][0].head(4).copy()
    X["seg"] = pd.array(["zz", None, "a", "d"], dtype="str")
    assert list(result.model.route(X)) == [routing.GLOBAL, routing.GLOBAL, "a", routing.GLOBAL] or \
        "a" not in result.model.models
    rows = np.array([0, 1, 3])
    assert np.array_equal(result.model.predict_proba(X)[rows], base.model.predict_proba(X.iloc[rows]))


def test_segment_keys_read_the_same_from_files_and_requests():
    a = pd.DataFrame({"n": [1, 2, None], "s": ["x", None, "y"]})
    b = pd.DataFrame({"n": [1.0, 2.0, np.nan], "s": pd.array(["x", None, "y"], dtype="str")})
    assert list(routing.keys(a, ["n", "s"])) == list(routing.keys(b, ["n", "s"])) == \
        ["1 | x", f"2 | {routing.MISSING}", f"{routing.MISSING} | y"]


def test_a_segment_column_that_is_not_an_input_is_refused(fitted):
    xy, spec, params, base, _ = fitted
    with pytest.raises(DataError, match=r"train.segment_by \['nope'\].*choose from"):
        segments.fit(xy["train"], xy["valid"], spec, params.model_copy(update={"segment_by": ["nope"]}), base)
    with pytest.raises(ValueError, match="listed more than once"):
        config.TrainParams(segment_by=["seg", "seg"])


def test_the_routed_model_saves_as_one_mlflow_model_and_serves(fitted, tmp_path):
    from mlflow.models import Model

    from mlcycle.serving import model as served_model
    from mlcycle.serving import outputs

    xy, spec, _, _, result = fitted
    train.save(result, spec, xy["train"][0], tmp_path / "model", tmp_path / "baseline")
    verdict = train.compile_check(result, spec, tmp_path / "model", [xy["valid"][0]])
    assert verdict.path == "sklearn" and "no compiled form" in verdict.reason
    loaded, meta = train.load(tmp_path / "model")
    assert meta["segments"]["by"] == ["seg"] and meta["segments"]["models"] == sorted(result.model.models)
    X = xy["test"][0]
    assert np.array_equal(loaded.predict_proba(X), result.model.predict_proba(X))
    import mlflow.pyfunc

    pyfunc = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    assert np.allclose(np.asarray(pyfunc.predict(X)), result.model.predict_proba(X))
    signature = Model.load(str(tmp_path / "model")).signature
    served = served_model.Served(loaded, "sklearn", {}, served_model.columns_from_signature(signature), meta)
    out = outputs.score(served, X)
    t = result.model.row_thresholds(X)
    p = result.model.predict_proba(X)[:, 1]
    expected = np.where(p >= t, spec.positive_class, next(c for c in spec.classes if c != spec.positive_class))
    assert out["prediction"] == expected.tolist() and np.allclose(out["score"], p)


def test_evaluate_compares_segments_and_the_gate_bounds_the_worst_drop(fitted):
    xy, spec, _, _, result = fitted
    X, y = xy["test"][0], train.encode_label(xy["test"][1], spec)
    table = segments.compare(result.model, X, y, spec, 10, min_rows=50, metrics=["roc_auc"])
    assert table["segment"].tolist()[0] == "(all rows)" and table["rows"].iloc[0] == len(X)
    assert set(table["segment"]) == {"(all rows)", *pd.unique(X["seg"].astype(str))}
    a = table[table["segment"] == "a"].iloc[0]
    rows = (X["seg"] == "a").to_numpy()
    assert a["roc_auc global"] == pytest.approx(
        evaluate.metrics_for(spec.task, y[rows], scoring.scores(result.model.global_model, X[rows], spec.task),
                             None, 10)["roc_auc"])
    judged = segments.gate_rows(table, "roc_auc")
    assert {r["segment"] for r in judged} == set(result.model.models)
    passed = gate.decide({"roc_auc": 0.8}, None, config.GateParams(beat_baseline=False), segments=judged)
    crit = next(c for c in passed.criteria if "segment drop" in c["criterion"])
    assert crit["value"] == pytest.approx(max(r["global"] - r["routed"] for r in judged))
    worse = [{**judged[0], "routed": judged[0]["global"] - 0.05}]
    refused = gate.decide({"roc_auc": 0.8}, None, config.GateParams(beat_baseline=False), segments=worse)
    assert not refused.promote and judged[0]["segment"] in refused.failed()[0]["detail"]
    off = gate.decide({"roc_auc": 0.8}, None, config.GateParams(beat_baseline=False, max_segment_drop=None),
                      segments=worse)
    assert off.promote
    small = gate.decide({"roc_auc": 0.8}, None, config.GateParams(beat_baseline=False),
                        segments=[{**worse[0], "small": True}])
    assert small.promote and "not judged" in small.note  # reported, not counted as a passed check
    assert not any("segment drop" in c["criterion"] for c in small.criteria)


def test_a_regression_drop_is_relative():
    assert gate.segment_drop("rmse", 11.0, 10.0) == pytest.approx(0.1)
    assert gate.segment_drop("roc_auc", 0.70, 0.75) == pytest.approx(0.05)


@pytest.mark.slow
def test_segments_on_an_external_cluster_are_the_same_models(fitted, tmp_path):
    xy, spec, params, base, local = fitted
    with external_cluster(tmp_path) as address:
        remote = segments.fit(xy["train"], xy["valid"], spec, params, base, config.ComputeParams(scheduler=address))
    assert remote.segments.cluster["mlcycle.compute.scheduler"] == address
    assert [(s.key, s.routed, s.best_iter, s.threshold) for s in remote.segments.items] == \
        [(s.key, s.routed, s.best_iter, s.threshold) for s in local.segments.items]
    X = xy["test"][0]
    assert np.array_equal(remote.model.predict_proba(X), local.model.predict_proba(X))
