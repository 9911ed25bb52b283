import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config
from mlcycle.core.errors import DataError, ParamsError
from mlcycle.lifecycle import gate
from mlcycle.tasks.tabular import fairness


def planted(n=4000, gap=0.4, seed=0):
    """Binary scores where group 'f' is selected far less often than 'm' at the same label rate."""
    rng = np.random.default_rng(seed)
    g = rng.choice(["f", "m"], n)
    y = (rng.random(n) < 0.3).astype(int)
    s = np.clip(0.35 + 0.3 * y + rng.normal(0, 0.15, n) - np.where(g == "f", gap, 0), 0, 1)
    small = np.where(rng.random(n) < 0.01, "x", g)  # a third, tiny group
    return pd.DataFrame({"gender": small, "region": rng.choice(["n", "s"], n)}), y, s


def test_groups_metrics_intervals_and_small_groups():
    frame, y, s = planted()
    a = fairness.assess(frame, y, s, "classification", 0.5, ["region"], ["gender"], min_group_size=100,
                        n_boot=50, seed=1)
    t = a.table("gender")
    assert list(t["group"]) == ["m", "f", "x"] or set(t["group"]) == {"f", "m", "x"}
    assert t.set_index("group").loc["x", "small"] and not t.set_index("group").loc["f", "small"]
    row = t.set_index("group").loc["m"]
    assert row["selection_rate_lo"] <= row["selection_rate"] <= row["selection_rate_hi"]
    assert row["n"] == (frame["gender"] == "m").sum()
    # the planted gap: 'f' selected much less often; the small group 'x' is left out of the gap
    dp = next(g for g in a.gaps if g.column == "gender" and g.metric == "demographic_parity_difference")
    assert dp.value > 0.3 and {dp.high_group, dp.low_group} == {"m", "f"} and dp.excluded == ["x"]
    assert dp.lo is not None and dp.lo <= dp.hi
    assert a.roles == {"region": "slice", "gender": "sensitive"}
    assert a.metrics()["gender"]["demographic_parity_difference"] == pytest.approx(dp.value, abs=1e-6)
    shown = fairness.display_table(t)
    assert shown.loc[shown["group"] == "x", "small"].item() == "small" and "[" in shown["selection_rate"][0]


def test_same_seed_same_intervals():
    frame, y, s = planted(800)
    a = fairness.assess(frame, y, s, "classification", 0.5, [], ["gender"], 50, 30, seed=3)
    b = fairness.assess(frame, y, s, "classification", 0.5, [], ["gender"], 50, 30, seed=3)
    pd.testing.assert_frame_equal(a.table("gender"), b.table("gender"))


def test_bootstrap_auc_matches_sklearn_on_each_resample():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y, s = rng.integers(0, 2, 300), np.round(rng.random(300), 1)  # ties on purpose
    boot = fairness.bootstrap_metrics(y, s, "classification", 0.5, 4, np.random.default_rng(1))
    idx = np.random.default_rng(1).integers(0, 300, (4, 300))  # the same resamples
    assert boot["roc_auc"] == pytest.approx([roc_auc_score(y[i], s[i]) for i in idx])
    assert boot["selection_rate"] == pytest.approx([np.mean(s[i] >= 0.5) for i in idx])


def test_regression_error_gap_and_numeric_column_in_quintiles():
    rng = np.random.default_rng(0)
    n = 1000
    age = rng.uniform(18, 80, n)
    y = rng.normal(size=n)
    pred = y + np.where(age > 60, rng.normal(0, 2, n), rng.normal(0, 0.2, n))
    a = fairness.assess(pd.DataFrame({"age": age}), y, pred, "regression", None, [], ["age"], 50, 0)
    t = a.table("age")
    assert len(t) == 5 and "mae" in t and "mae_lo" not in t
    gap = a.gaps[0]
    assert gap.metric == "error_gap" and gap.value > 0.5 and gap.part == "mae" and gap.high_group.startswith("[")


def test_missing_values_form_their_own_group():
    labels = fairness.group_labels(pd.Series(["a", None, "b", float("nan")], dtype="object"))
    assert list(labels) == ["a", "(missing)", "b", "(missing)"]
    assert list(fairness.group_labels(pd.Series([1.0, 2.0, 1.0]))) == ["1", "2", "1"]


def test_unknown_column_is_named_with_the_available_ones():
    with pytest.raises(DataError, match=r"evaluate.sensitive names \['gender'\].*available: \['age', 'x'\].*aside_columns"):
        fairness.check_columns(["x", "age"], ["x"], ["gender"])


def test_one_big_group_gives_no_gap_and_the_gate_fails_it():
    frame, y, s = planted(500)
    a = fairness.assess(frame, y, s, "classification", 0.5, [], ["gender"], min_group_size=400, n_boot=0)
    assert all(g.value is None and "a gap needs two" in g.note for g in a.gaps)
    p = config.GateParams(minimums={}, fairness=config.FairnessParams(max_demographic_parity_difference=0.1))
    d = gate.decide({"roc_auc": 0.8}, None, p, "1", fairness=a.sensitive_gaps())
    assert not d.promote and "not computed" in d.summary()
    assert "demographic_parity_difference" not in str(d.metrics())  # NaN is no metric


def test_gate_blocks_on_a_planted_gap_and_names_group_and_metric():
    frame, y, s = planted()
    a = fairness.assess(frame, y, s, "classification", 0.5, [], ["gender"], 100, 0)
    p = config.GateParams(minimums={"roc_auc": 0.6},
                          fairness=config.FairnessParams(max_demographic_parity_difference=0.1,
                                                         max_equalized_odds_difference=0.9,
                                                         max_error_gap=1.0))
    d = gate.decide({"roc_auc": 0.8}, None, p, "1", fairness=a.sensitive_gaps())
    assert not d.promote
    failed = d.failed()
    assert [c["criterion"] for c in failed] == ["demographic_parity_difference on gender <= gate.fairness"]
    assert "group 'm' vs 'f'" in d.summary() and "selection_rate" in d.summary()
    assert "detail" in d.table().columns
    # an error-gap bound is for regression: not applied to a classifier
    assert not [c for c in d.criteria if "error_gap" in c["criterion"]]
    fair = fairness.assess(frame, y, np.clip(0.35 + 0.3 * y, 0, 1), "classification", 0.5, [], ["gender"], 100, 0)
    assert gate.decide({"roc_auc": 0.8}, None, p, "1", fairness=fair.sensitive_gaps()).promote


def test_fairness_bounds_need_sensitive_columns():
    raw = {"data": {"path": "x.csv", "target": "y", "task": "classification"},
           "gate": {"fairness": {"max_equalized_odds_difference": 0.1}}}
    with pytest.raises(ParamsError, match="evaluate.sensitive names no column"):
        config.parse(raw)
    raw["evaluate"] = {"sensitive": ["gender"]}
    assert config.parse(raw).gate.fairness.bounds() == {"equalized_odds_difference": 0.1}
    with pytest.raises(ParamsError, match="gate.fairness.max_demographic_parity_difference"):
        config.parse({**raw, "gate": {"fairness": {"max_demographic_parity_difference": 2.0}}})


def test_a_group_with_one_class_has_undefined_metrics_stored_null_and_shown_as_n_a():
    """A group without positives: ROC AUC and the true positive rate are undefined. They are NaN in the
    table, null with a reason in the record, and "n/a (reason)" when shown, never 0.000 [0.000, 0.000];
    an interval without width (every resample the same value) is left out."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"carrier": ["big"] * 400 + ["one"] * 6})
    y = np.r_[(rng.random(400) < 0.3).astype(int), np.zeros(6, int)]
    s = np.r_[rng.random(400), np.full(6, 0.1)]
    a = fairness.assess(frame, y, s, "classification", 0.5, ["carrier"], [], min_group_size=100, n_boot=30, seed=1)
    one = a.table("carrier").set_index("group").loc["one"]
    assert np.isnan(one["roc_auc"]) and np.isnan(one["true_positive_rate"])
    assert one["false_positive_rate"] == 0.0 and one["selection_rate"] == 0.0
    stored = next(g for g in a.to_dict()["columns"]["carrier"]["groups"] if g["group"] == "one")
    assert stored["roc_auc"] is None and stored["true_positive_rate"] is None
    assert stored["undefined"] == {"roc_auc": "one class in the group", "true_positive_rate": "no positive rows in the group"}
    shown = fairness.display_table(a.table("carrier")).set_index("group").loc["one"]
    assert shown["roc_auc"] == "n/a (one class in the group)"
    assert shown["true_positive_rate"] == "n/a (no positive rows in the group)"
    assert shown["selection_rate"] == "0.000"  # every resample 0: no interval of no width
    assert "0.000 [0.000, 0.000]" not in fairness.display_table(a.table("carrier")).to_string()


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_gaps_from_the_group_table_equal_fairlearns(task):
    rng = np.random.default_rng(4)
    n = 3000
    groups = pd.Series(rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1]))
    y = (rng.random(n) < 0.3).astype(int) if task == "classification" else rng.normal(size=n)
    s = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1) if task == "classification" else y + rng.normal(size=n)
    table = fairness.group_table("g", groups, y, s, task, 0.45, min_group_size=50)
    got = fairness.gaps("g", table, groups, y, s, task, 0.45)
    big = table[~table["small"]]
    assert len(got) >= 1 and all(g.value is not None and g.value > 0 for g in got)
    for g in got:
        assert g.value == fairness.fairlearn_gap(g.metric, big, groups, y, s, 0.45), g.metric
