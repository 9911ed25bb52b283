"""The compiled scoring path (core/compiled.py): the same answers as the pipeline on generated
tables of every task (categories, missing values, unseen categories, a time column with gaps), a
planted disagreement that leaves the version to the pipeline with the reason, families without a
compiled form refused at registration, and the serving loader picking the path."""

import json
from functools import cache

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config, scoring
from mlcycle.core.errors import ExportError
from mlcycle.tasks.tabular import compiled, features, train
from tests.code.frames import data_params, mixed_frame


@cache  # fitted once per task and family for the whole module (tests copy what they change)
def fitted(task: str, model: str = "hist_gradient_boosting", n: int = 600):
    df = mixed_frame(n, seed=1, task=task)
    df["flag"] = df["flag"].astype(object)
    df.loc[df.index[::13], "flag"] = None  # a boolean with missing values
    dp = data_params(task="regression" if task == "regression" else "classification", time_column="when")
    table, spec, _ = features.build(df, dp, config.FeaturesParams())
    parts = features.split(table, spec, config.SplitParams(seed=0))
    xy = {k: (v[spec.inputs], v[features.LABEL]) for k, v in parts.items()}
    # gaps in the time column of the rows scored (training rows have every time: validate and the split
    # refuse missing ones; a request may still send none)
    X_test = xy["test"][0].copy()
    X_test.loc[X_test.index[::11], "when"] = pd.NaT
    xy["test"] = (X_test, xy["test"][1])
    params = config.TrainParams(model=model, max_iter=30, min_samples_leaf=5, n_estimators=10, baseline_columns=[])
    return train.fit(xy["train"], xy["valid"], spec, params), spec, xy


def rows_with_surprises(X: pd.DataFrame) -> pd.DataFrame:
    """Holdout rows plus an unseen category, a missing category and an all-missing row."""
    X = X.copy()
    X["cat"] = X["cat"].astype(object)
    X.loc[X.index[0], "cat"] = "never seen"
    X.loc[X.index[1], "cat"] = None
    X.loc[X.index[2], ["x1", "x2", "cat", "flag", "when"]] = [np.nan, np.nan, None, None, pd.NaT]
    return X


def plant_disagreement(monkeypatch) -> None:
    """`compiled.export` made to read category "a" as "b": a form that must fail its check."""
    real = compiled.export

    def planted(pipe, task):
        c = real(pipe, task)
        codes = c.codes["cat"]["values"]
        codes["a"], codes["b"] = codes["b"], codes["a"]
        return compiled.Compiled(c.rows, c.columns, c.codes, c.task, list(c.classes_), c.trees, c.float32)

    monkeypatch.setattr(compiled, "export", planted)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_compiled_scores_equal_the_pipeline(task, tmp_path):
    res, spec, xy = fitted(task)
    verdict = compiled.build(res.model, tmp_path, [xy["valid"][0], xy["test"][0]], spec.task, res.threshold)
    assert verdict.agrees and verdict.rows == len(xy["valid"][0]) + len(xy["test"][0]), verdict.reason
    assert verdict.request_rows == min(verdict.rows, compiled.REQUEST_ROWS_CHECKED)  # as JSON records too
    assert verdict.max_abs_diff <= compiled.TOLERANCE and verdict.decisions_differ == 0
    fast, loaded = compiled.load(tmp_path)  # from the files, as the server reads them
    assert fast is not None and loaded.path == "compiled"
    X = rows_with_surprises(xy["test"][0])
    assert np.array_equal(fast.features(X), res.model[:-1].transform(X).to_numpy(dtype=np.float64), equal_nan=True)
    a, b = scoring.scores(res.model, X, spec.task), scoring.scores(fast, X, spec.task)
    assert a.shape == b.shape and np.abs(a - b).max() <= compiled.TOLERANCE
    one = X.head(1)  # what a request of one row sends
    assert np.abs(scoring.scores(res.model, one, spec.task) - scoring.scores(fast, one, spec.task)).max() <= 1e-6
    served, _ = compiled.load(tmp_path, pipeline=res.model)  # as the server loads it: large batches to the pipeline
    big = pd.concat([X] * (compiled.PIPELINE_FROM // len(X) + 1), ignore_index=True)
    assert served.large(big) and not served.large(one)
    assert np.array_equal(scoring.scores(served, big, spec.task), scoring.scores(res.model, big, spec.task))


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_request_records_score_as_the_pipeline_scores_the_frame(task, tmp_path):
    """What a server gets (JSON records: numbers, text, booleans, null, ISO times with and without
    offsets) goes straight to the feature matrix and answers as the pipeline on the typed frame."""
    res, spec, xy = fitted(task)
    compiled.build(res.model, tmp_path, [xy["valid"][0]], spec.task, res.threshold)
    fast, _ = compiled.load(tmp_path, pipeline=res.model)
    X = rows_with_surprises(xy["test"][0]).reset_index(drop=True)
    records = compiled.request_rows(X)
    assert records[0]["cat"] == "never seen" and records[2]["when"] is None and records[2]["x1"] is None
    assert isinstance(records[3]["when"], str) and records[3]["when"].startswith(str(X["when"][3].year))
    # the same instants as text with offsets: read as their UTC wall time, as the frame path reads them
    shifted = pd.to_datetime(X["when"]).dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    timed = [i for i in range(3, len(records)) if records[i]["when"] is not None]
    for i in timed[::2]:
        records[i]["when"] = shifted[i].isoformat()
    records[timed[1]]["when"] = X["when"][timed[1]].strftime("%Y-%m-%dT%H:%MZ")
    prepared = fast.prepare(records)
    assert prepared is not None and len(prepared) == len(X)
    assert np.array_equal(prepared.matrix, fast.features(X), equal_nan=True)
    a, b = scoring.scores(res.model, X, spec.task), scoring.scores(fast, prepared, spec.task)
    assert a.shape == b.shape and np.abs(a - b).max() <= compiled.TOLERANCE


def test_values_the_record_path_does_not_read_go_to_the_frame():
    """Anything but plain JSON values of the column's kind, and times other than ISO 8601 text,
    leave the request to the frame path (pandas), as do batches the pipeline takes."""
    res, spec, xy = fitted("binary")
    fast = compiled.export(res.model, spec.task)
    good = compiled.request_rows(xy["test"][0].head(3))
    assert fast.prepare(good) is not None
    for column, value in [("when", "01/02/2013 10:00"), ("when", "2013-01-02T25:00"), ("when", "2013-W01-1"),
                          ("when", 1357120800), ("cat", 3), ("x1", "1.5"), ("flag", 1), ("cat", float("nan"))]:
        rows = [dict(r) for r in good]
        rows[1][column] = value
        assert fast.prepare(rows) is None, (column, value)
    served = compiled.Compiled(fast.rows, fast.columns, fast.codes, fast.task, list(fast.classes_), fast.trees,
                               fast.float32, pipeline=res.model)
    assert served.prepare(good * compiled.PIPELINE_FROM) is None  # the pipeline's batch: it needs the frame


def test_random_forest_is_compiled_too(tmp_path):
    res, spec, xy = fitted("binary", model="random_forest")
    assert compiled.build(res.model, tmp_path, [xy["valid"][0]], spec.task, res.threshold).agrees


def test_a_family_without_compiled_form_is_refused_at_registration(tmp_path):
    res, spec, xy = fitted("binary", model="linear")
    with pytest.raises(ExportError, match="LogisticRegression family has no compiled form"):
        compiled.export(res.model, spec.task)
    verdict = compiled.build(res.model, tmp_path, [xy["valid"][0]], spec.task, res.threshold)
    assert verdict.path == "sklearn" and verdict.reason.startswith("not compiled: the LogisticRegression")
    assert verdict.tags()["mlcycle.scoring_path"] == "sklearn"
    fast, loaded = compiled.load(tmp_path)
    assert fast is None and loaded.reason == verdict.reason


def test_a_planted_disagreement_leaves_the_version_to_the_pipeline(tmp_path, monkeypatch):
    res, spec, xy = fitted("binary")
    plant_disagreement(monkeypatch)
    verdict = compiled.build(res.model, tmp_path, [xy["valid"][0], xy["test"][0]], spec.task, res.threshold)
    assert not verdict.agrees and verdict.max_abs_diff > compiled.TOLERANCE
    assert "disagrees with the pipeline" in verdict.reason and "served by the pipeline" in verdict.reason
    tags = verdict.tags()
    assert tags["mlcycle.scoring_path"] == "sklearn" and "disagrees" in tags["mlcycle.compiled.reason"]
    assert not (tmp_path / compiled.FOLDER / compiled.TREES).exists()  # a form that disagreed is not kept
    fast, loaded = compiled.load(tmp_path)
    assert fast is None and loaded.path == "sklearn"
    assert json.loads((tmp_path / compiled.FOLDER / compiled.VERDICT).read_text())["path"] == "sklearn"


def test_a_model_trained_before_compiled_forms_is_served_by_the_pipeline(tmp_path):
    fast, verdict = compiled.load(tmp_path)
    assert fast is None and verdict.path == "sklearn" and "no compiled form" in verdict.reason


def test_calendar_arrays_match_pandas():
    t = pd.Series(pd.to_datetime(["1969-12-31 23:30", "2024-02-29 05:00", None, "2025-12-31 23:59"]))
    got = compiled.calendar_arrays(t, ["year", "month", "day_of_week", "day_of_year", "hour"], "")
    want = {"year": t.dt.year, "month": t.dt.month, "day_of_week": t.dt.day_of_week,
            "day_of_year": t.dt.day_of_year, "hour": t.dt.hour}
    for k, v in want.items():
        assert np.array_equal(got[k], v.astype("float64").to_numpy(), equal_nan=True), k
    zoned = t.dt.tz_localize("America/New_York")
    assert np.array_equal(compiled.calendar_arrays(zoned, ["hour"], "")["hour"],
                          zoned.dt.hour.astype("float64").to_numpy(), equal_nan=True)


def test_the_train_stage_writes_the_verdict_into_metrics_and_the_model_folder(tmp_path):
    res, spec, xy = fitted("binary")
    model_dir, baseline_dir = tmp_path / "model", tmp_path / "baseline"
    train.save(res, spec, xy["train"][0], model_dir, baseline_dir)
    verdict = train.compile_check(res, spec, model_dir, [xy["valid"][0], xy["test"][0]])
    train.write_metrics(res, tmp_path / "train.json", None, verdict)
    doc = json.loads((tmp_path / "train.json").read_text())
    assert doc["compiled"]["agrees"] == 1 and doc["compiled"]["rows"] == verdict.rows
    assert (model_dir / "MLmodel").exists() and (model_dir / compiled.FOLDER / compiled.TREES).exists()
    sk, _ = train.load(model_dir)  # the MLflow model still loads as the pipeline
    assert np.array_equal(scoring.scores(sk, xy["test"][0], spec.task), scoring.scores(res.model, xy["test"][0], spec.task))


def test_the_server_loader_picks_the_path_and_says_why(tmp_path, monkeypatch):
    """`serving.model.load` on saved model folders: the compiled scorer when it agreed, the pipeline
    when it is switched off or when a planted disagreement was found at registration."""
    from mlcycle.serving import model

    res, spec, xy = fitted("binary")
    rows = [xy["valid"][0], xy["test"][0]]
    good, bad = tmp_path / "good", tmp_path / "bad"
    for folder in (good, bad):
        train.save(res, spec, xy["train"][0], folder, tmp_path / f"{folder.name}-baseline")
    compiled.build(res.model, good, rows, spec.task, res.threshold)
    served = model.load(None, str(good))
    assert served.path == "compiled" and isinstance(served.model, compiled.Compiled)
    assert served.model.pipeline is not None  # large batches go to the pipeline
    off = model.load(None, str(good), compiled=False)
    assert off.path == "sklearn" and "switched off" in off.scoring["reason"]
    plant_disagreement(monkeypatch)
    compiled.build(res.model, bad, rows, spec.task, res.threshold)
    served = model.load(None, str(bad))
    assert served.path == "sklearn" and "disagrees with the pipeline" in served.scoring["reason"]
    X = xy["test"][0]
    assert np.array_equal(scoring.scores(served.model, X, spec.task), scoring.scores(res.model, X, spec.task))


def test_the_model_folder_holds_no_timing_so_the_same_model_is_the_same_bytes(tmp_path):
    """The check's timings go to the tags only: two builds of one model write the same files."""
    res, spec, xy = fitted("binary")
    a = compiled.build(res.model, tmp_path / "a", [xy["valid"][0]], spec.task, res.threshold)
    compiled.build(res.model, tmp_path / "b", [xy["valid"][0]], spec.task, res.threshold)
    saved = json.loads((tmp_path / "a" / compiled.FOLDER / compiled.VERDICT).read_text())
    assert not set(compiled.TIMINGS) & set(saved)
    for f in sorted((tmp_path / "a" / compiled.FOLDER).iterdir()):
        assert f.read_bytes() == (tmp_path / "b" / compiled.FOLDER / f.name).read_bytes(), f.name
    assert compiled.seconds_from_tags(a.tags()) == (round(a.export_seconds, 3), round(a.check_seconds, 3))
    assert compiled.read_verdict(tmp_path / "a").agrees
