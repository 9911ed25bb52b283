import pytest

from mlcycle import config, gate

P = config.GateParams(metric="roc_auc", minimums={"roc_auc": 0.65}, max_drop=0.01)


def test_first_model_promoted_when_it_meets_minimums():
    d = gate.decide({"roc_auc": 0.70}, None, P, "1")
    assert d.promote and d.outcome == "promoted" and len(d.criteria) == 1


def test_first_model_rejected_below_minimum_names_metric():
    d = gate.decide({"roc_auc": 0.60}, None, P, "1")
    assert not d.promote
    assert "roc_auc >= minimum: 0.6000 vs 0.6500" in d.summary()


def test_against_rescored_champion_within_and_beyond_margin():
    assert gate.decide({"roc_auc": 0.715}, {"roc_auc": 0.72}, P, "2", "1").promote
    d = gate.decide({"roc_auc": 0.70}, {"roc_auc": 0.72}, P, "2", "1")
    assert not d.promote and d.failed()[0]["criterion"] == "roc_auc vs champion v1"


def test_lower_is_better_metrics_and_maximums():
    p = config.GateParams(metric="rmse", maximums={"rmse": 10.0}, max_drop=0.5)
    assert gate.decide({"rmse": 9.0}, {"rmse": 8.8}, p).promote
    assert not gate.decide({"rmse": 9.5}, {"rmse": 8.8}, p).promote
    assert not gate.decide({"rmse": 11.0}, None, p).promote


def test_unknown_metric_is_named_other_tasks_metric_is_skipped():
    with pytest.raises(KeyError, match="gate.minimums names 'auc'"):
        gate.decide({"roc_auc": 0.7}, None, config.GateParams(minimums={"auc": 0.5}))
    d = gate.decide({"rmse": 3.0, "r2": 0.9}, {"rmse": 3.1, "r2": 0.9}, config.GateParams(minimums={"roc_auc": 0.6}), "2", "1")
    assert d.promote and d.metric == "rmse" and "skipped, not reported for this task: roc_auc" in d.note


def test_written_files(tmp_path):
    d = gate.decide({"roc_auc": 0.6}, None, P, "3")
    gate.write(d, tmp_path / "gate.json", tmp_path / "decision.json")
    assert '"promoted": false' in (tmp_path / "gate.json").read_text()
    assert '"outcome": "rejected"' in (tmp_path / "decision.json").read_text()
