"""The monitor's verdict on small frames, with a real fitted model: same-distribution data is OK,
a planted shift is data drift and named, decay needs labels, the trigger policy decides retraining,
too few rows give no verdict, and the reference is found through the DVC hash."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config
from mlcycle.core.errors import MonitorError
from mlcycle.serving.model import Served
from mlcycle.tasks.tabular import monitor
from mlcycle.tasks.tabular.features import LABEL, FeatureSpec
from tests.code.frames import data_params

SPEC = FeatureSpec(target="y", task="classification", label="y", numeric=["x1", "x2"], categorical=["cat"],
                   classes=[0, 1], positive_class=1, label_rule="y (classes)")


def frame(n: int, seed: int, shift: float = 0.0, flip: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1, n)
    x2 = rng.uniform(0, 10, n)
    cat = rng.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5] if shift else [0.5, 0.3, 0.2])
    logit = 1.5 * x1 + (cat == "a") - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64")
    if flip:  # the relation the model learnt no longer holds
        y = 1 - y
    return pd.DataFrame({"x1": x1, "x2": x2, "cat": pd.array(cat, dtype="str"), LABEL: y})


@pytest.fixture(scope="module")
def served():
    from mlcycle.tasks.tabular import train

    params = config.TrainParams(max_iter=30)
    df = frame(3000, 0)
    model = train.build_pipeline(SPEC, params)
    model.fit(df[SPEC.features], df[LABEL])
    return Served(model, "sklearn", {"name": "m", "version": "1"}, (), {"task": "classification", "classes": [0, 1],
                                                                         "positive_class": 1, "threshold": 0.5})


def params(**monitor_kw):
    raw = {"data": data_params().model_dump(), "monitor": monitor_kw, "evaluate": {"slices": ["cat"]}}
    raw["retrain"] = {"trigger": monitor_kw.pop("trigger", "drift_or_decay")}
    return config.parse({**raw, "monitor": {**monitor_kw, "min_slice_rows": 100}})


def ref():
    return monitor.Reference("1", "abc.dir", SPEC, frame(3000, 1), frame(1000, 2))


def cur(df: pd.DataFrame, labelled: bool = True) -> monitor.Current:
    return monitor.Current("test", df if labelled else df.drop(columns=[LABEL]), labelled)


def test_same_distribution_is_ok(served):
    v = monitor.assess(params(), served, ref(), cur(frame(1500, 3)))
    assert v["status"] == "ok" and v["retrain"] is False and v["drift"]["drifted"] == []
    assert v["performance"]["metric"] == "roc_auc" and abs(v["performance"]["change"]) < 0.05
    json.dumps(v, default=str)  # the verdict is written as JSON


def test_planted_shift_is_data_drift_named_and_retrains(served):
    v = monitor.assess(params(), served, ref(), cur(frame(1500, 4, shift=1.0)))
    assert set(v["drift"]["drifted"]) == {"x1", "cat"} and "x2" not in v["drift"]["drifted"]
    assert v["data_drift"] and v["retrain"] and v["status"] == "drift"
    assert any("x1" in r and "cat" in r for r in v["reasons"])
    assert v["score_drifted"]  # the scores move with x1


def test_decay_needs_labels_and_follows_the_trigger(served):
    flipped = frame(1500, 5, flip=True)
    v = monitor.assess(params(), served, ref(), cur(flipped))
    assert v["decayed"] and v["retrain"] and not v["data_drift"]
    assert v["performance"]["now"] < 0.5 < v["performance"]["at_training"]
    assert v["performance"]["slices"] and all(s["change"] < 0 for s in v["performance"]["slices"])
    assert monitor.assess(params(trigger="drift"), served, ref(), cur(flipped))["retrain"] is False
    unlabelled = monitor.assess(params(), served, ref(), cur(flipped, labelled=False))
    assert unlabelled["performance"] is None and unlabelled["retrain"] is False


def test_never_and_too_few_rows(served):
    assert monitor.assess(params(trigger="never"), served, ref(), cur(frame(1500, 6, shift=1.0)))["retrain"] is False
    v = monitor.assess(params(min_rows=2000), served, ref(), cur(frame(1500, 6, shift=1.0)))
    assert v["status"] == "insufficient" and not v["retrain"] and "monitor.min_rows" in v["reasons"][0]


def test_missing_feature_is_named(served):
    from mlcycle.core.errors import DataError

    with pytest.raises(DataError, match=r"\['x2'\]"):
        monitor.assess(params(), served, ref(), cur(frame(1500, 7).drop(columns=["x2"])))


def test_reference_is_read_from_the_dvc_cache_by_its_hash(tmp_path):
    """The layout DVC 3 writes: .dvc/cache/files/md5/<2>/<rest>, a .dir listing of relpath and md5."""
    cache = tmp_path / ".dvc" / "cache" / "files" / "md5"
    listing = []
    for name, content in (("train.parquet", b"T"), ("features.json", b"{}")):
        md5 = f"{len(listing):02d}" + "f" * 30
        (cache / md5[:2]).mkdir(parents=True, exist_ok=True)
        (cache / md5[:2] / md5[2:]).write_bytes(content)
        listing.append({"relpath": name, "md5": md5})
    (cache / "ab").mkdir()
    (cache / "ab" / ("c" * 30 + ".dir")).write_text(json.dumps(listing))
    files = monitor.processed_files(tmp_path, "ab" + "c" * 30 + ".dir")
    assert files["train.parquet"].read_bytes() == b"T"
    with pytest.raises(MonitorError, match="dvc pull"):
        monitor.processed_files(tmp_path, "ff" + "0" * 30 + ".dir")


def test_takeaways_give_the_verdict_in_numbers():
    verdict = {"model": {"name": "m", "version": "3"}, "current": {"rows": 1200, "source": "new.csv"},
               "status": "drift", "retrain": True,
               "drift": {"drifted": ["a"], "share_drifted": 0.5,
                         "columns": [{"column": "a", "psi": 0.4}, {"column": "b", "psi": 0.01}]},
               "score_drift": {"psi": 0.12},
               "performance": {"metric": "roc_auc", "now": 0.7, "at_training": 0.8, "decayed": True}}
    text = monitor.takeaways(verdict)
    assert "1,200 current rows (new.csv) against m v3: drift, retrain yes" in text
    assert "1 drifted feature(s) (50% of them); largest PSI: `a` (0.400), `b` (0.010)" in text
    assert "PSI 0.120" in text and "roc_auc: 0.7000 now against 0.8000 at training (decayed)" in text
    assert "not assessed" in monitor.takeaways({**verdict, "performance": None})


def test_personal_values_in_new_categories_never_reach_the_verdict_or_the_report(served):
    """Request rows with e-mail addresses and phone numbers in a category column: the verdict (written
    to reports/monitor/verdict.json and MLflow) and the report's drift table show a count per kind,
    never the values; other new values are still listed."""
    df = frame(1500, 8)
    cat = df["cat"].astype(object)
    cat.iloc[:40] = [f"user{i}@example.com" for i in range(40)]
    cat.iloc[40:45] = ["+44 20 7946 0958", "(555) 123-4567", "write to bob@example.org", "zz", "yy"]
    df["cat"] = pd.array(cat, dtype="str")
    v = monitor.assess(params(), served, ref(), cur(df))
    text = json.dumps(v, default=str)
    assert "@" not in text and "7946" not in text and "123-4567" not in text
    new = v["drift"]["new_categories"]["cat"]
    assert new == ["<41 e-mail value(s) redacted>", "<2 phone number value(s) redacted>", "yy", "zz"]
    shown = monitor.drift_table(v).set_index("column").loc["cat", "new_categories"]
    assert "41 e-mail value(s) redacted" in shown and "@" not in shown
