"""Free-text columns (data.text_columns): params, spec, model, init, schema, monitoring, explanations,
compiled check. The table: `frames.review_frame` (words carry the label, or are noise)."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mlcycle.cli import workspace
from mlcycle.core import config, schema, text
from mlcycle.core.errors import DataError, ExportError, ParamsError
from mlcycle.core.scoring import scores
from mlcycle.core.spec import RowFeatures
from mlcycle.monitoring import drift
from mlcycle.tasks.tabular import compiled, explain, features, monitor, train
from tests.code.frames import NEGATIVE_WORDS, POSITIVE_WORDS, data_params, review_frame


def parts_of(df: pd.DataFrame, text_columns: list[str]):
    data = data_params(target="good", id_columns=["review_id"], text_columns=text_columns,
                       drop_columns=[] if text_columns else ["review"])
    table, spec, _ = features.build(df, data, config.FeaturesParams(calendar=[]))
    parts = features.split(table, spec, config.SplitParams())
    return spec, {k: (v[spec.inputs], v[features.LABEL]) for k, v in parts.items()}


def holdout_auc(spec, parts, model: str) -> tuple[float, object]:
    result = train.fit(parts["train"], parts["valid"], spec, config.TrainParams(model=model, max_iter=60))
    X, y = parts["test"]
    return float(roc_auc_score(train.encode_label(y, spec), scores(result.model, X, spec.task))), result


def test_params_refuse_a_text_column_with_another_role():
    with pytest.raises(ParamsError, match=r"\['note'\] listed in both text_columns and id_columns"):
        config.parse({**_minimal(), "data": {**_minimal()["data"], "text_columns": ["note"], "id_columns": ["note"]}})
    with pytest.raises(ParamsError, match="train.text.ngram_max"):
        config.parse({**_minimal(), "train": {"text": {"ngram_max": 5}}})
    p = config.parse({**_minimal(), "data": {**_minimal()["data"], "text_columns": ["note"]}})
    assert p.data.text_columns == ["note"] and p.train.text.max_features == 20_000


def _minimal() -> dict:
    return {"data": {"path": "x.csv", "target": "y", "task": "classification"}}


def test_row_features_pass_text_through_as_strings():
    rf = RowFeatures(["review", "n"], {"review": "text", "n": "numeric"})
    out = rf.transform(pd.DataFrame({"review": ["Good tea", None], "n": [1, 2]}))
    assert out["review"].tolist() == ["Good tea", ""] and out["n"].tolist() == [1.0, 2.0]


def test_build_puts_text_columns_in_the_spec_not_in_categories():
    spec, _ = parts_of(review_frame(300), ["review"])
    assert spec.text == ["review"] and spec.kinds["review"] == "text" and "review" in spec.inputs
    assert spec.categorical == ["channel"] and spec.features[-1] == "review"
    assert spec.input_types["review"] == "string"
    with pytest.raises(DataError, match=r"data.text_columns names \['comment'\], not in the table"):
        parts_of(review_frame(300), ["comment"])
    described = features.describe(review_frame(300).rename(columns={"good": "y"}).assign(
        **{features.LABEL: 0}), spec)
    row = described.set_index("feature").loc["review"]
    assert row["kind"] == "text" and "words" in row["median"]
    assert not described.astype(str).apply(lambda c: c.str.contains("Order 10")).any().any()  # no raw text shown


@pytest.mark.parametrize("model", ["hist_gradient_boosting", "linear"])
def test_words_that_carry_the_label_make_a_better_model(model):
    df = review_frame(2000, seed=1)
    with_text, _ = holdout_auc(*parts_of(df, ["review"]), model)
    without, _ = holdout_auc(*parts_of(df, []), model)
    assert with_text > without + 0.1, (with_text, without)
    noise = review_frame(2000, seed=1, signal=False)
    noise_with, _ = holdout_auc(*parts_of(noise, ["review"]), model)
    noise_without, _ = holdout_auc(*parts_of(noise, []), model)
    assert abs(noise_with - noise_without) < 0.06, (noise_with, noise_without)


def test_tree_models_get_dense_components_and_linear_the_sparse_tfidf():
    spec, parts = parts_of(review_frame(400), ["review"])
    X, y = parts["train"]
    trees = train.build_pipeline(spec, config.TrainParams(text=config.TextParams(svd_components=7)))
    trees[:-1].fit(X, train.encode_label(y, spec))
    dense = trees[:-1].transform(X)
    assert isinstance(dense, pd.DataFrame) and [c for c in dense.columns if c.startswith("review:")] == [
        f"review:svd{i}" for i in range(7)]
    linear = train.build_pipeline(spec, config.TrainParams(model="linear")).fit(X, train.encode_label(y, spec))
    step = text.fitted(linear)["review"]
    assert step.svd_ is None and "delicious" in step.vocabulary


def test_a_text_column_without_words_fails_naming_it():
    step = text.TextFeatures("note", min_df=2)
    with pytest.raises(DataError, match="text column 'note': no word"):
        step.fit(pd.Series(["", "", None]))


def test_init_proposes_free_text_and_keeps_ids_and_categories():
    data, notes = workspace.infer(review_frame(500), "data/raw/reviews.csv", "good")
    d = data["data"]
    assert d["text_columns"] == ["review"] and d["id_columns"] == ["review_id"]
    said = "\n".join(notes)
    assert "free text: 'review' (" in said and "not free text: 'channel' (1.0 words" in said
    p = config.parse(workspace.merge(workspace.defaults(), data))
    proposed = schema.infer(review_frame(40), p.data, p.validate_)  # 40 reviews: few enough for a value list
    assert proposed.columns["review"].values is None and proposed.columns["channel"].values is not None


def test_monitor_measures_text_by_numbers_never_by_its_words():
    spec, parts = parts_of(review_frame(600), ["review"])
    X, y = parts["train"]
    model = train.build_pipeline(spec, config.TrainParams(max_iter=20)).fit(X, train.encode_label(y, spec))
    steps = monitor.text_steps(model, spec, X)
    cols = monitor.drift_columns(spec)
    assert "review" not in cols and {"review chars", "review words", "review oov"} <= set(cols)
    shifted = X.assign(review=X["review"].str.replace("coffee", "matcha zucchini quinoa", regex=False))
    d = drift.compare(monitor.drift_frame(spec, X, steps), monitor.drift_frame(spec, shifted, steps), cols)
    assert "review oov" in d.drifted and "Order" not in str(d.to_dict())
    summary = monitor.text_drift(spec, X, shifted, steps)[0]
    assert summary["oov_rate_cur"] > summary["oov_rate_ref"] + 0.05
    assert set(summary) == {"column", "vocabulary_size", "mean_words_ref", "oov_rate_ref", "vocabulary_share_ref",
                            "mean_words_cur", "oov_rate_cur", "vocabulary_share_cur"}


@pytest.mark.parametrize("model", ["hist_gradient_boosting", "linear"])
def test_explanations_name_the_words_that_weigh_most(model):
    spec, parts = parts_of(review_frame(1500, seed=2), ["review"])
    _, result = holdout_auc(spec, parts, model)
    X, _ = parts["test"]
    words = explain.text_words(result.model, X, spec, rows=300, seed=0, top=6)
    assert set(words["column"]) == {"review"} and len(words) == 6
    top = words.set_index("word")["effect"]
    assert set(top.index) & set(POSITIVE_WORDS) and set(top.index) & set(NEGATIVE_WORDS)
    assert all(top[w] > 0 for w in top.index if w in POSITIVE_WORDS)
    assert all(top[w] < 0 for w in top.index if w in NEGATIVE_WORDS)
    one = explain.row_words(result.model, X.iloc[[0]], spec)
    assert set(one["word"]) <= set(text.fitted(result.model)["review"].words(X["review"].iloc[[0]]).iloc[0])
    assert explain.pdp_candidates(pd.DataFrame({"feature": ["review", "price"]}), spec) == ["price"]


def test_compiled_refuses_text_columns_naming_them():
    spec, parts = parts_of(review_frame(300), ["review"])
    X, y = parts["train"]
    model = train.build_pipeline(spec, config.TrainParams(max_iter=5)).fit(X, train.encode_label(y, spec))
    with pytest.raises(ExportError, match="text column 'review' .* scored by the pipeline"):
        compiled.export(model, spec.task)


def test_text_stats_counts_out_of_vocabulary_words():
    step = text.TextFeatures("t", min_df=1, components=None).fit(pd.Series(["good tea", "bad tea"]))
    s = text.text_stats(pd.Series(["good coffee", "", None]), "t", step.vocabulary, step.words)
    assert s["t oov"].iloc[0] == 0.5 and np.isnan(s["t oov"].iloc[1]) and s["t words"].tolist() == [2.0, 0.0, 0.0]


def test_the_monitor_verdict_on_a_model_with_text_shows_no_text():
    from mlcycle.serving.model import Served

    df = review_frame(3000, seed=4)
    spec, parts = parts_of(df, ["review"])
    X, y = parts["train"]
    model = train.build_pipeline(spec, config.TrainParams(max_iter=20)).fit(X, train.encode_label(y, spec))
    served = Served(model, "sklearn", {"name": "m", "version": "1"}, (),
                    {"task": "classification", "classes": spec.classes, "positive_class": spec.positive_class})
    labelled = {k: v[0].assign(**{features.LABEL: v[1]}) for k, v in parts.items()}
    ref = monitor.Reference("1", "abc.dir", spec, labelled["train"], labelled["test"])
    raw = {"data": data_params(target="good", text_columns=["review"], id_columns=["review_id"]).model_dump()}
    params = config.parse({**raw, "evaluate": {"slices": []}, "monitor": {"min_rows": 100, "min_slice_rows": 100}})
    same = monitor.assess(params, served, ref, monitor.Current("same", labelled["valid"], True))
    new_words = labelled["valid"].assign(review=lambda d: d["review"].str.replace(
        r"\b(coffee|tea|snack|box)\b", "kombucha granola", regex=True))
    shifted = monitor.assess(params, served, ref, monitor.Current("shifted", new_words, True))
    assert "review oov" not in same["drift"]["drifted"] and "review oov" in shifted["drift"]["drifted"]
    [t] = shifted["text"]
    assert t["column"] == "review" and t["oov_rate_cur"] > t["oov_rate_ref"] + 0.05
    said = json.dumps({k: v for k, v in shifted.items() if k != "policy"}, default=str) + monitor.summary(shifted)
    assert "Order 1" not in said and "kombucha" not in said and "text 'review': out-of-vocabulary" in said
    assert list(monitor.tables_of(shifted)) == ["text columns"]


def test_pipeline_check_names_a_text_column_the_file_lacks(tmp_path):
    from mlcycle.cli import check

    f = tmp_path / "reviews.csv"
    review_frame(50).to_csv(f, index=False)
    p = config.parse({"data": {"path": str(f), "target": "good", "task": "classification", "text_columns": ["reveiw"]}})
    problems = check.columns(p, f, "csv")
    assert len(problems) == 1 and problems[0].startswith("data.text_columns: 'reveiw' is not a column")
    assert "review" in problems[0]
    ok = config.parse({"data": {"path": str(f), "target": "good", "task": "classification", "text_columns": ["review"]}})
    assert check.columns(ok, f, "csv") == []


@pytest.mark.parametrize("search", [{"method": "none"}, {"method": "random", "engine": "serial", "trials": 2}])
def test_model_auto_and_a_search_choose_among_families_with_text(search):
    from mlcycle.tasks.tabular import search as search_mod

    spec, parts = parts_of(review_frame(1200, seed=5), ["review"])
    params = config.TrainParams(model="auto", max_iter=30, search=config.SearchParams(**search))
    sel = search_mod.select(parts["train"], parts["valid"], spec, params)
    fitted_trials = [t for t in sel.trials if not t.error]
    assert {t.model for t in fitted_trials} == {"hist_gradient_boosting", "random_forest", "linear"}
    best = {f: max(t.score for t in fitted_trials if t.model == f) for f in ("hist_gradient_boosting", "linear")}
    assert min(best.values()) > 0.75, best  # each family learns from the words (about 0.65 without them)
    result = train.fit(parts["train"], parts["valid"], spec, sel.params)
    assert text.fitted(result.model)["review"].vocabulary
