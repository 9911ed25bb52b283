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
    assert record["features"]["not_features"] == ["applicant", "gender"]


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
