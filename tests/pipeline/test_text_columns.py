"""A table with a free-text column, end to end: `mlcycle init` proposes it in data.text_columns, `dvc
repro` trains on its words (the model with text beats the same model without it on the holdout; on a
table whose text is noise it does not), evaluate names the words that weigh most, the compiled check
hands the version to the pipeline saying why, and the served model takes the raw text."""

import dataclasses
import json

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score

from mlcycle.core import config
from mlcycle.core.paths import Paths
from mlcycle.core.scoring import scores
from mlcycle.serving import app
from mlcycle.serving.settings import Settings
from mlcycle.tasks.tabular import compiled, features, train
from tests.code.frames import review_frame
from tests.conftest import SAMPLE, init_data, make_workspace, run

pytestmark = pytest.mark.slow

FAST = {"eda": SAMPLE["eda"], "train": {"max_iter": 60, "text": {"svd_components": 50}},
        "evaluate": {"bootstrap": 20, "explain_rows": 400, "pdp_features": 1}}


def holdout_auc(spec, parts, params: config.TrainParams) -> float:
    result = train.fit(parts["train"], parts["valid"], spec, params, with_baseline=False)
    X, y = parts["test"]
    return float(roc_auc_score(train.encode_label(y, spec), scores(result.model, X, spec.task)))


def without_text(spec):
    """The same spec with its text columns left out (the model without text)."""
    return dataclasses.replace(spec, text=[], inputs=[c for c in spec.inputs if c not in spec.text])


def test_words_of_a_text_column_become_features_end_to_end(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    review_frame(3000, seed=3).to_csv(ws / "data/raw/reviews.csv", index=False)
    said = init_data(ws, "data/raw/reviews.csv", "good", params=FAST)
    assert "free text: 'review' (" in said and "not free text: 'channel' (" in said
    data = yaml.safe_load((ws / "params.yaml").read_text())["data"]
    assert data["text_columns"] == ["review"] and data["id_columns"] == ["review_id"]
    assert "values" not in yaml.safe_load((ws / "schemas/reviews.yaml").read_text())["columns"]["review"]

    run(["dvc", "repro"], ws, timeout=900)
    spec = features.FeatureSpec.from_json(ws / "data/processed/features.json")
    assert spec.text == ["review"] and "review" not in spec.categorical
    ev = json.loads((ws / "reports/metrics/evaluate.json").read_text())

    # the model with text against the same model (the workspace's train params) without it, same rows
    params = config.load(ws / "params.yaml", root=ws).train
    parts = {p: (pd.read_parquet(ws / f"data/processed/{p}.parquet")[spec.inputs],
                 pd.read_parquet(ws / f"data/processed/{p}.parquet")[spec.label]) for p in ("train", "valid", "test")}
    plain = without_text(spec)
    no_text = holdout_auc(plain, {p: (X[plain.inputs], y) for p, (X, y) in parts.items()}, params)
    assert ev["model"]["roc_auc"] > no_text + 0.1, (ev["model"]["roc_auc"], no_text)

    # noise control: text whose words do not depend on the label adds nothing
    noise = review_frame(3000, seed=3, signal=False)
    data_params = config.load(ws / "params.yaml", root=ws).data
    table, nspec, _ = features.build(noise, data_params, config.FeaturesParams(calendar=[]))
    nparts = {k: (v[nspec.inputs], v[features.LABEL]) for k, v in features.split(table, nspec, config.SplitParams()).items()}
    nplain = without_text(nspec)
    with_noise = holdout_auc(nspec, nparts, params)
    without_noise = holdout_auc(nplain, {p: (X[nplain.inputs], y) for p, (X, y) in nparts.items()}, params)
    assert abs(with_noise - without_noise) < 0.05, (with_noise, without_noise)

    # evaluate names the words; the compiled check says why the pipeline scores this version
    words = json.loads((ws / "reports/explanations.json").read_text())["text_words"]
    assert words and {w["column"] for w in words} == {"review"}
    assert {"delicious", "stale", "awful", "wonderful"} & {w["word"] for w in words}
    assert json.loads((ws / "reports/metrics/train.json").read_text())["compiled"]["agrees"] == 0
    verdict = compiled.read_verdict(Paths(ws).model)
    assert verdict.path == "sklearn" and "text column 'review'" in verdict.reason

    # `mlcycle model explain` names the words of a row that move its score
    row = {"review_id": "R1", "channel": "web", "price": 10.0, "review": "Stale cookies, an awful box"}
    out = run(["mlcycle", "model", "explain", "--row", json.dumps(row)], ws).stdout
    assert "words that weigh most" in out and "awful" in out.split("words that weigh most")[1], out

    # the champion served in-process takes the raw text
    gate = json.loads((ws / "reports/gate_decision.json").read_text())
    assert gate["outcome"] == "promoted", gate["summary"]
    store = f"sqlite:///{ws / 'mlruns' / 'mlflow.db'}"
    settings = Settings("models:/reviews-good@champion", store, log_dir=str(tmp_path / "log"),
                        log_fallback_dir=str(tmp_path / "spill"), log_roll_seconds=0.1)
    base = {"review_id": "R1", "channel": "web", "price": 10.0}
    with TestClient(app.create_app(settings)) as c:
        good = c.post("/predict", json={"dataframe_records": [
            {**base, "review": "Delicious and fresh, a wonderful tasty snack, perfect"}]})
        bad = c.post("/predict", json={"dataframe_records": [
            {**base, "review": "Stale and bland, awful soggy cookies, terrible, I want a refund"}]})
        empty = c.post("/predict", json={"dataframe_records": [{**base, "review": None}]})
    assert good.status_code == bad.status_code == empty.status_code == 200, (good.text, bad.text, empty.text)
    assert good.json()["predictions"] == ["yes"] and bad.json()["predictions"] == ["no"]
