import pytest

from mlcycle.core import config
from mlcycle.core.errors import ParamsError
from mlcycle.lifecycle import gate
from tests.conftest import ROOT

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
    p = config.GateParams(metric="rmse", maximums={"rmse": 10.0}, max_relative_drop=0.05)
    assert gate.decide({"rmse": 9.0}, {"rmse": 8.8}, p).promote  # 2.3% worse, within 5%
    assert not gate.decide({"rmse": 9.5}, {"rmse": 8.8}, p).promote  # 8% worse
    assert not gate.decide({"rmse": 11.0}, None, p).promote


def test_unknown_metric_is_named_other_tasks_metric_is_skipped():
    raw = config.read_yaml(ROOT / "params.yaml")
    raw["gate"] = {"minimums": {"auc": 0.5}, "maximums": {"rsme": 3.0}, "metric": "rmse"}
    with pytest.raises(ParamsError, match=r"gate: Value error, minimums: 'auc' is not a metric evaluate reports "
                                          r"\(did you mean 'pr_auc' or 'roc_auc'\?\)"):
        config.parse(raw)  # at `mlcycle pipeline check`, before any stage runs
    d = gate.decide({"rmse": 3.0, "r2": 0.9}, {"rmse": 3.1, "r2": 0.9}, config.GateParams(minimums={"roc_auc": 0.6}), "2", "1")
    assert d.promote and d.metric == "rmse" and "skipped, not reported for this task: roc_auc" in d.note


def test_written_files(tmp_path):
    d = gate.decide({"roc_auc": 0.6}, None, P, "3")
    gate.write(d, tmp_path / "gate.json", tmp_path / "decision.json")
    assert '"promoted": false' in (tmp_path / "gate.json").read_text()
    assert '"outcome": "rejected"' in (tmp_path / "decision.json").read_text()


REG = {"rmse": 10.0, "mae": 7.0, "r2": 0.45}  # a regressor's holdout metrics
REG_BASELINE = {"rmse": 12.0, "mae": 9.0, "r2": 0.2}


def test_regression_with_default_params_is_judged_on_real_criteria():
    d = gate.decide(REG, None, config.GateParams(), "1", baseline=REG_BASELINE)
    names = [c["criterion"] for c in d.criteria]
    assert names == ["r2 >= minimum", "rmse beats baseline"]
    assert d.promote and d.task == "regression" and d.minimums == "auto (regression)"
    assert d.criteria[0]["limit"] == gate.auto_minimums("regression")["r2"] == 0.1
    # a regressor no better than the baseline (or below the R² floor) is not promoted
    assert not gate.decide(REG, None, config.GateParams(), "1", baseline={**REG_BASELINE, "rmse": 9.0}).promote
    assert not gate.decide({**REG, "r2": 0.05}, None, config.GateParams(), "1", baseline=REG_BASELINE).promote


def test_summary_of_a_promotion_names_the_criteria_that_passed():
    s = gate.decide(REG, None, config.GateParams(), "1", baseline=REG_BASELINE).summary()
    assert "2 criteria passed" in s and "r2 >= minimum: 0.4500 vs 0.1000" in s and "rmse beats baseline" in s
    assert "every criterion" not in s
    one = gate.decide({"roc_auc": 0.7}, None, config.GateParams(), "4").summary()
    assert one == "version 4 promoted to champion: 1 criterion passed (roc_auc >= minimum: 0.7000 vs 0.6000)"


def test_a_decision_without_criteria_is_not_promoted_and_says_why():
    d = gate.decide(REG, None, config.GateParams(minimums={}, beat_baseline=False), "1")
    assert d.criteria == [] and not d.promote
    assert "no criterion applies to this task (regression)" in d.summary()


def test_example_classification_minimums_on_a_regression_fall_back_to_the_task_floor():
    d = gate.decide({**REG, "r2": 0.05}, None, config.GateParams(minimums={"roc_auc": 0.65}), "1")
    assert [c["criterion"] for c in d.criteria] == ["r2 >= minimum"] and not d.promote
    assert "skipped, not reported for this task: roc_auc" in d.note and "floor" in d.note


def test_relative_tolerance_for_rmse_accepts_a_small_loss_and_rejects_a_large_one():
    p = config.GateParams()  # max_drop 0.005 would be target units here; max_relative_drop 0.01 applies
    ok = gate.decide({**REG, "rmse": 10.0 * 1.002}, REG, p, "2", "1", baseline=REG_BASELINE)
    assert ok.promote, ok.summary()
    bad = gate.decide({**REG, "rmse": 10.0 * 1.05}, REG, p, "2", "1", baseline=REG_BASELINE)
    assert not bad.promote
    crit = bad.failed()[0]
    assert crit["criterion"] == "rmse vs champion v1" and crit["limit"] == pytest.approx(10.1)
    assert "rmse vs champion v1: 10.5000 vs 10.1000 (within 1% relative of 10.0000)" in bad.summary()


def test_classification_champion_tolerance_stays_absolute():
    p = config.GateParams()
    assert gate.decide({"roc_auc": 0.716}, {"roc_auc": 0.72}, p, "2", "1").promote  # 0.004 worse
    d = gate.decide({"roc_auc": 0.713}, {"roc_auc": 0.72}, p, "2", "1")  # 0.007 worse
    assert not d.promote and "within 0.005 absolute" in d.failed()[0]["detail"]
    first = gate.decide({"roc_auc": 0.62}, None, p, "1", baseline={"roc_auc": 0.5})
    assert first.promote and [c["criterion"] for c in first.criteria] == ["roc_auc >= minimum", "roc_auc beats baseline"]
    assert not gate.decide({"roc_auc": 0.58}, None, p, "1").promote  # below the auto floor 0.6


def test_multiclass_auto_floor_and_log_loss_baseline():
    cand = {"log_loss": 0.9, "accuracy": 0.6, "f1_macro": 0.5, "balanced_accuracy": 0.5, "roc_auc_ovr": 0.7}
    d = gate.decide(cand, None, config.GateParams(), "1", baseline={**cand, "log_loss": 1.0986})
    assert d.task == "multiclass classification" and d.metric == "log_loss" and d.promote
    assert [c["criterion"] for c in d.criteria] == ["roc_auc_ovr >= minimum", "log_loss beats baseline"]


def test_decision_carries_the_gate_metric_value_and_files_stay_compatible(tmp_path):
    d = gate.decide(REG, REG, config.GateParams(), "2", "1", baseline=REG_BASELINE)
    assert d.value == 10.0 and d.metric == "rmse"
    gate.write(d, tmp_path / "gate.json", tmp_path / "decision.json")
    import json

    metrics = json.loads((tmp_path / "gate.json").read_text())
    assert metrics["promoted"] is True and metrics["rmse_vs_champion_v1"] == 10.0
    body = json.loads((tmp_path / "decision.json").read_text())
    assert {"promote", "metric", "criteria", "outcome", "summary"} <= set(body) and body["value"] == 10.0


def test_auto_minimums_in_params_and_explicit_dict_still_parse():
    assert config.GateParams().minimums == "auto"
    assert config.GateParams.model_validate({"minimums": {"roc_auc": 0.7}}).minimums == {"roc_auc": 0.7}
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="minimums"):
        config.GateParams.model_validate({"minimums": "automatic"})


# evaluate's metrics of each kind of model -> (decision `task`, gate.metric auto, the auto minimums)
KINDS = {
    "binary": ({"roc_auc": 0.7, "log_loss": 0.5, "accuracy": 0.7}, "binary classification", "roc_auc", {"roc_auc": 0.6}),
    "multiclass": ({"log_loss": 0.9, "balanced_accuracy": 0.5, "roc_auc_ovr": 0.7}, "multiclass classification",
                   "log_loss", {"roc_auc_ovr": 0.6}),
    "regression": ({"rmse": 1.0, "mae": 0.8, "r2": 0.3}, "regression", "rmse", {"r2": 0.1}),
    "recommendation": ({"ndcg_at_k": 0.2, "recall_at_k": 0.1, "map_at_k": 0.1, "hit_rate_at_k": 0.4},
                       "recommendation", "ndcg_at_k", {"recall_at_k": 0.01}),
}


@pytest.mark.parametrize("kind", KINDS)
def test_the_gate_defaults_come_from_the_tasks_and_keep_their_names(kind, tmp_path):
    """Each task declares its kinds of model (`Task.gate_kinds`); the decision's `task` and
    `minimums` strings (gate_decision.json, the version's tags) are what they were before."""
    metrics, name, primary, floor = KINDS[kind]
    assert gate.task_of(metrics) == name and gate.primary_metric(metrics) == primary
    assert gate.auto_minimums(name) == floor
    d = gate.decide(metrics, None, config.GateParams(), "1")
    assert (d.task, d.metric, d.minimums) == (name, primary, f"auto ({name})")
    assert [(c["criterion"], c["limit"]) for c in d.criteria] == [(f"{m} >= minimum", v) for m, v in floor.items()]
    gate.write(d, tmp_path / "gate.json", tmp_path / "decision.json")
    import json

    body = json.loads((tmp_path / "decision.json").read_text())
    assert body["task"] == name and body["minimums"] == f"auto ({name})"


def test_every_kind_of_model_is_declared_by_one_task_and_told_apart():
    from mlcycle.core import tasks

    owners = {k.name: t.name for t in tasks.all_tasks() for k in t.gate_kinds}
    assert owners == {"binary classification": "tabular", "multiclass classification": "tabular",
                      "regression": "tabular", "recommendation": "recommender", "forecast": "forecast"}
    tells = [m for k in gate.kinds() for m in k.tells]
    assert len(tells) == len(set(tells))  # a metric tells one kind only: the order of the tasks does not matter
    with pytest.raises(KeyError, match="cannot tell the task from the metrics"):
        gate.decide({"coverage": 0.5}, None, config.GateParams())
    with pytest.raises(KeyError, match="no primary metric among"):
        gate.primary_metric({"coverage": 0.5})
    with pytest.raises(KeyError, match="no task trains a kind of model named 'ranking'"):
        gate.auto_minimums("ranking")


def test_the_first_version_s_gate_text_states_one_outcome():
    """Without a champion the note says what the decision was judged on, not a rule that reads as a
    second outcome ("promoted ..." followed by "no champion yet: ... is promoted when ...")."""
    from mlcycle.lifecycle import registry

    class NoChampion:
        def get_model_version_by_alias(self, name, alias):
            raise LookupError(alias)

    version, metrics, note = registry.rescore_champion(NoChampion(), "m", "1", lambda m, meta: {})
    assert version is None and metrics is None
    for promote in (True, False):
        d = gate.decide({"roc_auc": 0.9 if promote else 0.5}, None, config.GateParams(minimums={"roc_auc": 0.6}),
                        candidate_version="1", note=note)
        text = f"{d.outcome}: {d.summary()} {d.note}"
        assert d.promote is promote
        assert "no champion yet" not in text and "is promoted when" not in text
        assert ("promoted to champion" in text) is promote and ("not promoted" in text) is not promote
        assert "no champion to compare against" in d.note


def test_the_criteria_table_shows_no_nan_where_a_criterion_has_no_detail():
    d = gate.decide({"roc_auc": 0.70}, {"roc_auc": 0.69}, P, "2", "1")
    table = d.table()
    assert list(table["detail"][:1]) == [""] and "within" in table["detail"].iloc[-1]
    assert "nan" not in table.to_string().lower()
