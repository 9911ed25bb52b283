"""Task recommendation, stage eda: the interactions' long tails, ratings over time, sparsity and cold
start, against values counted by hand on a small table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config
from mlcycle.tasks.recommender import eda as ieda
from mlcycle.tasks.recommender import interactions as ia

RAW = {
    "data": {"path": "r.csv", "target": "rating", "task": "recommendation", "time_column": "ts", "time_unit": "s"},
    "recommend": {"user_column": "u", "item_column": "i", "relevant_rating": 4.0, "test_share": 0.25},
}


def frame() -> tuple[pd.DataFrame, config.Params]:
    """8 interactions: users a (4), b (2), c (1), d (1, the latest); items x (4), y (2), z (1), w (1).
    The latest 25% (2 interactions, March) bring user d and item w, both new, and user a, seen."""
    rows = [("a", "x", 5, "2020-01-05"), ("a", "y", 4, "2020-01-20"), ("b", "x", 3, "2020-02-01"),
            ("b", "y", 2, "2020-02-10"), ("c", "x", 4, "2020-02-15"), ("a", "z", 1, "2020-02-20"),
            ("a", "w", 5, "2020-03-01"), ("d", "x", 4, "2020-03-02")]
    df = pd.DataFrame(rows, columns=["u", "i", "rating", "ts"]).assign(ts=lambda d: pd.to_datetime(d["ts"]),
                                                                         rating=lambda d: d["rating"].astype(float))
    cfg = config.parse(RAW)
    return ia.standardise(df, cfg.data, cfg.recommend), cfg


def test_long_tails_and_top_share():
    inter, _ = frame()
    assert ieda.per_user(inter).to_dict() == {"a": 4, "b": 2, "c": 1, "d": 1}
    assert list(ieda.per_item(inter)) == [4, 2, 1, 1]
    # top 20% of 4 items is ceil(0.8) = 1 item: x, 4 of 8 interactions
    assert ieda.top_share(ieda.per_item(inter)) == pytest.approx(0.5)
    assert ieda.top_share(pd.Series([1, 1, 1, 1, 1]), 0.4) == pytest.approx(0.4)
    assert np.isnan(ieda.top_share(pd.Series([], dtype="int64")))


def test_monthly_and_rating_distribution():
    inter, _ = frame()
    m = ieda.monthly(inter)
    assert list(m.index.strftime("%Y-%m")) == ["2020-01", "2020-02", "2020-03"]
    assert list(m["interactions"]) == [2, 4, 2]
    assert m["mean_rating"].tolist() == pytest.approx([4.5, 2.5, 4.5])
    dist = ieda.rating_distribution(inter)
    assert dist.to_dict() == {1.0: 1, 2.0: 1, 3.0: 1, 4.0: 3, 5.0: 2}
    many = inter.assign(rating=np.linspace(0, 1, len(inter)))
    assert ieda.rating_distribution(many, max_values=3).sum() == len(inter)  # binned when many values


def test_profile_sparsity_and_cold_start():
    inter, cfg = frame()
    doc = ieda.profile(inter, cfg.recommend)
    assert (doc["users"], doc["items"], doc["interactions"]) == (4, 4, 8)
    assert doc["density"] == pytest.approx(8 / 16) and doc["sparsity"] == pytest.approx(0.5)
    assert doc["interactions_per_user_max"] == 4 and doc["interactions_per_user_median"] == pytest.approx(1.5)
    assert doc["users_with_one_interaction_share"] == pytest.approx(0.5)
    assert doc["relevant_share"] == pytest.approx(5 / 8)
    assert doc["months"] == 3 and doc["months_active"] == 3
    # the latest 25%: from 2020-03-01, users a (seen) and d (new), items w (new) and x (seen)
    assert doc["latest_interactions"] == 2 and doc["latest_from"].startswith("2020-03-01")
    assert doc["latest_new_user_share"] == pytest.approx(0.5) and doc["latest_new_item_share"] == pytest.approx(0.5)
    # the same cut as features' time split
    parts = ia.split(inter, cfg.recommend.model_copy(update={"split": "time"}))
    assert len(parts["test"]) == doc["latest_interactions"]
    json.dumps(doc)  # the metrics file takes it as is
    table = ieda.summary_table(doc)
    assert "sparsity" in set(table["measure"])
    text = ieda.takeaways(doc)
    assert "50%" in text and "never seen before" in text


def test_profile_of_nothing_says_what_to_check():
    inter, cfg = frame()
    with pytest.raises(ValueError, match="data.path"):
        ieda.profile(inter.head(0), cfg.recommend)


def test_figures_and_metrics_file(tmp_path):
    inter, cfg = frame()
    for fig in (ieda.plot_long_tails(inter), ieda.plot_over_time(ieda.monthly(inter)),
                ieda.plot_ratings(ieda.rating_distribution(inter))):
        assert fig.axes
    ieda.write_metrics(ieda.profile(inter, cfg.recommend), tmp_path / "m" / "eda.json")
    assert json.loads((tmp_path / "m" / "eda.json").read_text())["items"] == 4
