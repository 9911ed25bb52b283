import json

import numpy as np
import pandas as pd
import yaml

from mlcycle.core import config
from mlcycle.core.paths import Paths
from mlcycle.lifecycle import card, gate
from mlcycle.tasks.tabular import fairness
from mlcycle.tasks.tabular.features import FeatureSpec


def workspace(tmp_path, intended: str | None = "Rank loan files for review; never decide alone."):
    """The files the evaluate stage leaves before the card is written, with known values."""
    paths = Paths(tmp_path)
    spec = FeatureSpec(target="default", task="classification", label="default", numeric=["income"],
                       categorical=["district"], id_columns=["applicant"], classes=["no", "yes"],
                       positive_class="yes", label_rule="default == 'yes'")
    spec.to_json(paths.feature_spec)
    paths.metrics("evaluate").parent.mkdir(parents=True)
    paths.metrics("evaluate").write_text(json.dumps({
        "model": {"roc_auc": 0.812345, "pr_auc": 0.5, "log_loss": 0.4, "f1": 0.6},
        "baseline": {"roc_auc": 0.5}, "intervals": {"model": {"roc_auc_lo": 0.79, "roc_auc_hi": 0.83}}}))
    paths.metrics("features").write_text(json.dumps({"train_rows": 1700, "valid_rows": 300, "test_rows": 900}))
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    s = np.clip(0.4 + 0.2 * y + rng.normal(0, 0.1, 600), 0, 1)
    frame = pd.DataFrame({"gender": rng.choice(["f", "m"], 600, p=[0.95, 0.05])})
    a = fairness.assess(frame, y, s, "classification", 0.5, [], ["gender"], 100, 20, 0)
    fairness.write(a, paths.fairness)
    p = config.GateParams(minimums={"roc_auc": 0.6}, fairness=config.FairnessParams(max_demographic_parity_difference=0.1))
    d = gate.decide({"roc_auc": 0.812345}, None, p, "7", fairness=a.sensitive_gaps())
    gate.write(d, paths.metrics("gate"), paths.gate_decision)
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"stages": {
        "features": {"deps": [{"path": "data/raw/credit.csv", "md5": "a" * 32}]},
        "train": {"deps": [{"path": "data/processed", "md5": "b" * 32 + ".dir"}]}}}))
    if intended:
        (tmp_path / "intended_use.md").write_text(intended)
    cfg = config.parse({"data": {"path": "data/raw/credit.csv", "target": "default", "task": "classification",
                                 "aside_columns": ["gender"]},
                        "evaluate": {"sensitive": ["gender"]},
                        "gate": {"fairness": {"max_demographic_parity_difference": 0.1}}})
    return paths, cfg, d


AUDIT = [{"when": "2026-01-01T00:00:00+00:00", "action": "gate-reject", "from_version": None, "to_version": None,
          "reason": "version 7 not promoted (fairness)", "who": "ci", "model": "m"},
         {"when": "2026-01-02T00:00:00+00:00", "action": "promote", "from_version": "6", "to_version": "7",
          "reason": "reviewed by hand", "who": "ana", "model": "m"},
         {"when": "2026-01-03T00:00:00+00:00", "action": "promote", "from_version": "5", "to_version": "6",
          "reason": "other version", "who": "ana", "model": "m"}]


def test_card_holds_the_records_real_values(tmp_path):
    paths, cfg, decision = workspace(tmp_path)
    record = card.collect(paths, cfg, None, "credit-model", "7", AUDIT)
    files = card.write(record, paths.reports)
    for kind in ("html", "md"):
        text = files[kind].read_text()
        assert "credit-model" in text and "7" in text
        assert "a" * 32 in text and "b" * 32 + ".dir" in text  # DVC hashes from dvc.lock
        assert "0.8123" in text and "[0.7900, 0.8300]" in text  # metric with its interval
        assert "Rank loan files for review" in text
        assert "demographic_parity_difference on gender" in text and "rejected" in text
        assert "reviewed by hand" in text and "version 7 not promoted" in text  # v7's history
        assert "other version" not in text  # a move of other versions only
        assert "train 1,700, validation 300, holdout 900" in text
        assert "(small)" in text or "small" in text  # the 5% group 'm' has < 100 rows
        assert "gender: 1 group(s) with fewer than 100 holdout rows (m)" in text
    assert json.loads(files["json"].read_text())["model"]["version"] == "7"
    assert record["features"]["not_used"] == ["applicant", "gender"]


def test_history_only_moves_of_the_version_and_missing_intended_use_is_said(tmp_path):
    assert [e["reason"] for e in card.version_history(AUDIT, "5")] == ["other version"]
    paths, cfg, _ = workspace(tmp_path, intended=None)
    record = card.collect(paths, cfg, None, "credit-model", "7", [])
    text = record["intended_use"]
    assert text.startswith("**Intended use (derived from the data, not written yet).** Predicts `default`")
    assert "Not written yet" in text and "intended_use.md" in text
    from tests.conftest import ROOT  # the shipped template counts as not written

    (tmp_path / "intended_use.md").write_text((ROOT / "intended_use.md").read_text())
    assert "derived from the data" in card.collect(paths, cfg)["intended_use"]
    assert "No sensitive attribute" not in " ".join(record["limitations"])
    assert card.lock_hashes(tmp_path / "missing.lock", "x") == {"source_md5": None, "processed_md5": None}


def test_a_column_the_importance_table_ranks_is_listed_as_used(tmp_path):
    """The time column the model derives calendar parts from is an input: permutation importance ranks
    it, so the card lists it as used, never as "not used" (the two come from one source)."""
    paths, cfg, _ = workspace(tmp_path)
    spec = FeatureSpec(target="default", task="classification", label="default", numeric=["income", "month"],
                       categorical=["district"], time_column="when", id_columns=["applicant"],
                       inputs=["income", "district", "when"], kinds={"income": "numeric", "district": "category",
                                                                      "when": "time"},
                       calendar=["month"], passthrough=["note"], classes=["no", "yes"], positive_class="yes")
    spec.to_json(paths.feature_spec)
    for part in ("train", "valid", "test"):
        pd.DataFrame({"when": pd.to_datetime(["2024-03-01"])}).to_parquet(paths.split_file(part))
    paths.explanations.write_text(json.dumps({"scoring": "roc_auc", "rows": 100, "importance": [
        {"rank": 1, "feature": "income", "importance": 0.1, "std": 0.01},
        {"rank": 2, "feature": "when", "importance": 0.05, "std": 0.01}]}))
    record = card.collect(paths, cfg, None, "credit-model", "7", [])
    feats = record["features"]
    ranked = [i["feature"] for i in record["explanations"]["importance"]]
    assert set(ranked) <= set(feats["inputs"]) and not set(ranked) & set(feats["not_used"])
    assert feats["time_column"] == "when" and feats["calendar"] == ["month"]
    assert feats["not_used"] == ["applicant", "note", "gender"]
    html, md = card.render(record)
    not_used = html.split('id="not-used">')[1].split("</p>")[0]
    assert "when" not in not_used and "applicant" in not_used
    assert "- derived from `when`: month" in md and "when" not in md.split("- not used by the model:")[1].split("\n")[0]
    # a record written before: the ranked time column moves from "kept aside" to the used ones
    old = {"features": {"numeric": ["income"], "categorical": ["district"], "not_features": ["when", "applicant"]},
           "explanations": {"importance": [{"feature": "when"}]}, "parameters": {}, "model": {"family": None}}
    assert card.upgrade(old)["features"]["not_used"] == ["applicant"] and "when" in old["features"]["inputs"]


def test_only_the_chosen_family_settings_are_listed(tmp_path):
    paths, cfg, _ = workspace(tmp_path)
    for family, shown, hidden in (
            ("hist_gradient_boosting", {"learning_rate", "max_iter", "max_depth", "max_categories", "threshold"},
             {"n_estimators", "C"}),
            ("random_forest", {"n_estimators", "max_depth", "min_samples_leaf", "seed"},
             {"learning_rate", "max_iter", "l2_regularization", "max_leaf_nodes", "C"}),
            ("linear", {"C", "max_categories"}, {"learning_rate", "n_estimators", "max_depth", "min_samples_leaf"})):
        c = cfg.model_copy(update={"train": cfg.train.model_copy(update={"model": family})})
        params = card.collect(paths, c, None, "m", "7", [])["parameters"]
        assert shown <= set(params) and not hidden & set(params), family
        html, md = card.render(card.collect(paths, c, None, "m", "7", []))
        assert ">None<" not in html and "| None |" not in md
    # the train run's params (MLflow) of a model the selection chose: filtered by the family it chose
    assert set(card.family_parameters({"model": "auto", "C": "1.0", "n_estimators": "300", "seed": "42"},
                                      "linear")) == {"model", "C", "seed"}
    assert card.family_parameters({"C": 1.0, "n_estimators": 3}, "auto") == {"C": 1.0, "n_estimators": 3}


def test_periods_are_given_in_the_data_s_own_time_zone(tmp_path):
    """Times stored as naive UTC (as the pipeline keeps times that carried an offset) are shown as
    dates in data.timezone: the last New York evening of 2013 is 2014-01-01 in UTC."""
    paths = Paths(tmp_path)
    paths.processed.mkdir(parents=True)
    utc = {"train": ["2013-01-01 10:00", "2013-06-01 12:00"], "valid": ["2013-10-31 23:00"],
           "test": ["2013-11-01 05:00", "2014-01-01 04:00"]}
    for part, times in utc.items():
        pd.DataFrame({"t": pd.to_datetime(times)}).to_parquet(paths.split_file(part))
    assert card.periods(paths, "t") == {"train_period": ["2013-01-01 10:00", "2013-10-31 23:00"],
                                        "test_period": ["2013-11-01 05:00", "2014-01-01 04:00"], "period_zone": None}
    ny = card.periods(paths, "t", "America/New_York")
    assert ny == {"train_period": ["2013-01-01 05:00", "2013-10-31 19:00"],
                  "test_period": ["2013-11-01 01:00", "2013-12-31 23:00"], "period_zone": "America/New_York"}
    for part in ("train", "valid", "test"):  # dates: as dates
        pd.DataFrame({"t": pd.to_datetime(["2020-01-01", "2020-02-01"])}).to_parquet(paths.split_file(part))
    assert card.periods(paths, "t")["test_period"] == ["2020-01-01", "2020-02-01"]
    aware = pd.Series(pd.to_datetime(["2014-01-01 04:00"]).tz_localize("UTC"))
    assert str(card.local_times(aware, "America/New_York").iloc[0].date()) == "2013-12-31"
    record = {"data": {"test_period": ny["test_period"], "period_zone": "America/New_York"},
              "gate": {}, "fairness": None}
    assert "(2013-11-01 01:00 to 2013-12-31 23:00 America/New_York)" in card.limitations(record)[0]


def test_the_intended_use_is_rendered_as_markdown_with_html_escaped(tmp_path):
    paths, cfg, _ = workspace(tmp_path, intended="**Intended use.** Rank `files`.\n\n- one\n- two <script>x</script>")
    html, md = card.render(card.collect(paths, cfg, None, "m", "7", []))
    use = html.split('id="intended-use">')[1].split("</div>")[0]
    assert "<strong>Intended use.</strong>" in use and "<code>files</code>" in use and "<li>one</li>" in use
    assert "<script>" not in use and "&lt;script&gt;" in use
    assert "<pre" not in html and "**Intended use.**" in md


def test_an_undefined_group_metric_shows_as_n_a_with_its_reason(tmp_path):
    paths, cfg, _ = workspace(tmp_path)
    rec = card.collect(paths, cfg, None, "m", "7", [])
    groups = rec["fairness"]["columns"]["gender"]["groups"]
    groups.append({"column": "gender", "group": "z", "n": 5, "small": True, "positive_rate": 0.0,
                   "positive_rate_lo": 0.0, "positive_rate_hi": 0.0, "selection_rate": 0.2,
                   "selection_rate_lo": 0.0, "selection_rate_hi": 0.6, "true_positive_rate": None,
                   "false_positive_rate": 0.2, "roc_auc": None, "roc_auc_lo": None, "roc_auc_hi": None,
                   "undefined": {"roc_auc": "one class in the group", "true_positive_rate": "no positive rows in the group"}})
    html, md = card.render(rec)
    for text in (html, md):
        assert "n/a (one class in the group)" in text and "n/a (no positive rows in the group)" in text
        assert "0.000 [0.000, 0.000]" not in text and "0.200 [0.000, 0.600]" in text
    assert card.group_cell({"x": 0.5, "x_lo": 0.5, "x_hi": 0.5}, "x") == "0.500"
    assert card.group_cell({"x": None}, "x") == "n/a (undefined for this group)"


HOSTILE = ["$5 and $10", "<script>alert(1)</script>", "{x}", "a|b \\alpha^2_x", "nul\x00 esc\x1b[31m\nline",
           "long review " * 834]


def test_group_values_are_shown_as_typed_in_both_cards(tmp_path):
    """Values of a sensitive column holding markup, pipes, dollars, control characters and 10,000
    characters: the HTML card escapes them (no element made of them), the Markdown card keeps each in
    its own cell, and both read as the value typed (control characters as escapes)."""
    import html as html_lib

    import mistune

    from mlcycle.core import literal

    paths, cfg, _ = workspace(tmp_path)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"gender": rng.choice(HOSTILE, 600)})
    y = rng.integers(0, 2, 600)
    a = fairness.assess(frame, y, np.clip(0.4 + 0.2 * y + rng.normal(0, 0.1, 600), 0, 1), "classification", 0.5,
                        [], ["gender"], 100, 20, 0)
    fairness.write(a, paths.fairness)
    html, md = card.render(card.collect(paths, cfg, None, "m", "7", []))
    assert "<script>" not in html and "\x00" not in html + md and "\x1b" not in html + md
    shown = {html_lib.unescape(c.split("</td>")[0]).removesuffix(" (small)")
             for c in html.split('id="groups-gender"')[1].split("</table>")[0].split("<tr")[2:] for c in [c.split("<td>", 1)[1]]}
    assert shown == {literal.visible(v) for v in HOSTILE}
    rendered = mistune.create_markdown(escape=True, plugins=["table"])(md)
    table = rendered.split("gender (sensitive)</h3>")[1].split("</table>")[0]
    rows = table.split("<tr>")[2:]
    assert len(rows) == len(HOSTILE) and all(r.count("<td") == rows[0].count("<td") for r in rows)
    cells = {html_lib.unescape(r.split("<td>", 1)[1].split("</td>")[0]).strip() for r in rows}
    assert cells == {literal.visible(v).strip() for v in HOSTILE}
    assert "<script" not in rendered


def test_text_columns_are_listed_as_features_the_model_reads_as_words():
    spec = FeatureSpec(target="score", task="classification", numeric=["price"], categorical=["brand"],
                       text=["review"], inputs=["price", "brand", "review"],
                       kinds={"price": "numeric", "brand": "category", "review": "text"}, id_columns=["product"])
    used = card.used_columns(spec)
    assert used["text"] == ["review"] and "review" in used["inputs"] and used["not_used"] == ["product"]
