"""A recommender online: feedback on /recommend answers (checked, stored beside the prediction log)
and its monitoring (item popularity and user activity drift, new users and items, quality now and
live), on synthetic interactions."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config
from mlcycle.core.errors import ClientError
from mlcycle.serving import feedback
from mlcycle.serving.predlog import Batch, PredictionLog
from mlcycle.tasks.recommender import interactions as ia
from mlcycle.tasks.recommender import monitor as recmonitor

META = {"task": "recommendation", "model": "hybrid", "relevant_rating": 4.0, "rating_min": 0.5, "rating_max": 5.0}


def answer(log: PredictionLog, rid: str, user: str, items: list[str], version: str = "1", route: str = "champion"):
    log.submit(Batch({"user": [user], "k": [len(items)], "exclude": [""]},
                     {"prediction": [json.dumps(items)], "score": [0.9], "source": ["hybrid"]},
                     version, rid, dt.datetime.now(dt.UTC), route))


def test_feedback_on_recommendations_is_checked_and_stored(tmp_path):
    log = PredictionLog(tmp_path, roll_seconds=3600).start()
    answer(log, "r1", "15", ["10", "11", "12"])
    answer(log, "r2", "16", ["20", "21", "22"])
    log.close()
    parts_before = {p.name: p.read_bytes() for p in tmp_path.glob("part-*.parquet")}
    store = feedback.FeedbackStore(tmp_path)
    store.known.add("r3", 1, ["30", "31"])  # answered by this process, not on disk yet

    def refused(entries, status, field):
        with pytest.raises(ClientError) as err:
            store.add(entries, META)
        assert (err.value.status, err.value.field) == (status, field), err.value.detail
        return err.value.detail

    assert "not among the 3 items" in refused([{"request_id": "r1", "item": "99"}], 422, "item")
    refused([{"request_id": "nope", "item": "10"}], 404, "request_id")
    refused([{"request_id": "r1", "item": True}], 422, "item")
    refused([{"request_id": "r1"}], 422, "item")
    refused([{"request_id": "r1", "item": "10", "rating": "good"}], 422, "rating")
    refused([{"request_id": "r1", "item": "10", "rating": 7}], 422, "rating")
    refused([{"request_id": "r1", "row": 0, "label": 1}], 422, "label")
    # one bad entry refuses the call: nothing stored
    refused({"feedback": [{"request_id": "r1", "item": "10"}, {"request_id": "r1", "item": 77}]}["feedback"],
            422, "[1].item")
    refused([{"request_id": "r1", "item": "10"}, {"request_id": "r1", "item": 10}], 409, "[1].item")
    assert feedback.read(tmp_path).empty

    assert store.add([{"request_id": "r1", "item": 11, "rating": 4.5}, {"request_id": "r1", "item": "12"},
                      {"request_id": "r3", "item": "30"}], META) == 3
    refused([{"request_id": "r1", "item": "11", "rating": 3}], 409, "item")  # never replaced
    stored = feedback.read(tmp_path).sort_values(["request_id", "row"])
    assert stored[["request_id", "row", "item"]].values.tolist() == [["r1", 1, "11"], ["r1", 2, "12"], ["r3", 0, "30"]]
    assert stored["label"].tolist()[0] == 4.5 and pd.isna(stored["label"].tolist()[1])
    assert {p.name: p.read_bytes() for p in tmp_path.glob("part-*.parquet")} == parts_before

    # the command's form: a file of request_id, item, rating (empty: a click); a fresh store reads the
    # answered items from the log's parts
    fresh = feedback.FeedbackStore(tmp_path)
    frame = pd.DataFrame({"request_id": ["r2", "r2"], "item": [20, 22], "rating": [np.nan, 2.0]})
    assert fresh.add_file(frame, META, "file f.csv") == 2
    with pytest.raises(ClientError) as err:
        fresh.add_file(frame, META, "file f.csv")
    assert err.value.status == 409
    with pytest.raises(ClientError) as err:
        fresh.add_file(frame.rename(columns={"item": "movie"}), META, "file f.csv")
    assert err.value.field == "item"
    assert len(feedback.read(tmp_path)) == 5


# ---------------------------------------------------------------- monitoring

P = config.parse({
    "data": {"path": "r.csv", "target": "rating", "task": "recommendation", "time_column": "ts", "time_unit": "s"},
    "recommend": {"user_column": "u", "item_column": "i", "content_columns": ["genres"], "relevant_rating": 4.0,
                  "factors": 4, "iterations": 3, "k": 5, "weights": [0.5]},
    "monitor": {"min_rows": 100},
})


def interactions(users: range, items: int, per_month: int, months: int, start: str, seed: int,
                 tail: float = 1.2, offset: int = 0) -> pd.DataFrame:
    """Users rating items drawn with Zipf-like popularity (`tail` its exponent), about `per_month` each
    month (Poisson)."""
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, items + 1) ** tail
    rows = []
    for m in range(months):
        t0 = pd.Timestamp(start) + pd.DateOffset(months=m)
        for u in users:
            n = int(np.clip(rng.poisson(per_month), 1, items))
            for i in rng.choice(items, n, replace=False, p=w / w.sum()):
                rows.append({ia.USER: str(u), ia.ITEM: str(i + offset), ia.RATING: float(rng.choice([2.0, 4.0, 5.0])),
                             ia.TIME: t0 + pd.Timedelta(hours=int(rng.integers(0, 600)))})
    return pd.DataFrame(rows)


def served():
    return SimpleNamespace(info={"name": "rec", "version": "3"}, version="3", meta=META)


def test_popularity_groups_split_the_interactions_in_equal_mass():
    ref = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 10 + ["d"] * 5 + ["e"] * 5)
    assert recmonitor.popularity_groups(ref, 4) == {"a": "p1", "b": "p3", "c": "p4", "d": "p4", "e": "p4"}


def test_same_interactions_do_not_drift_and_shifted_ones_do():
    ref = interactions(range(60), 200, 6, 6, "2015-01-01", seed=0)
    same = interactions(range(60), 200, 6, 1, "2015-07-01", seed=1)
    pop = recmonitor.popularity_drift(ref, same, 10, 0.2, 0.01)
    act = recmonitor.activity_drift(ref, same, "month")
    assert not pop["groups"]["drifted"] and pop["groups"]["psi"] < 0.1 and not act["drifted"]
    # new users, interactions moved to the tail and to 100 new items, three times as active
    shifted = pd.concat([interactions(range(100, 160), 200, 18, 1, "2015-07-01", seed=2, tail=0.0),
                         interactions(range(100, 160), 100, 6, 1, "2015-07-01", seed=3, offset=1000)])
    pop = recmonitor.popularity_drift(ref, shifted, 10, 0.2, 0.01)
    act = recmonitor.activity_drift(ref, shifted, "month")
    new = (~shifted[ia.ITEM].isin(set(ref[ia.ITEM]))).mean()  # the 100 new items and tail items never rated
    assert pop["groups"]["drifted"] and pop["groups"]["new_share"] == pytest.approx(new) and new >= 0.25
    assert act["drifted"] and act["median_cur"] >= 3 * act["median_ref"]
    only_new = recmonitor.popularity_drift(ref, shifted[shifted[ia.ITEM].astype(int) >= 1000], 10, 0.2, 0.01)
    assert only_new["groups"]["new_share"] == 1.0 and not only_new["groups"]["drifted"]
    n = recmonitor.newness(ref, shifted)
    assert n["new_user_share"] == 1.0 and n["new_item_interaction_share"] == pytest.approx(new)
    seen = set(shifted[ia.ITEM]) & set(ref[ia.ITEM])
    assert n["new_item_share"] == pytest.approx(1 - len(seen) / shifted[ia.ITEM].nunique())


def test_verdict_drives_retraining_by_the_policy_and_judges_quality_now():
    from mlcycle.tasks.recommender import recommenders

    genres = {str(i): "Action" if i % 2 else "Comedy" for i in range(1200)}
    ref = interactions(range(60), 200, 6, 6, "2015-01-01", seed=0)
    ref["genres"] = ref[ia.ITEM].map(genres)
    models = recommenders.fit(ref, P.recommend, ia.items_table(ref, P.recommend), ia.Index.of(ref),
                              threads=1).with_weight(0.5)
    test = interactions(range(60), 200, 3, 1, "2015-07-01", seed=4)
    same = recmonitor.Interactions("file same", interactions(range(60), 200, 6, 1, "2015-07-01", seed=1))
    v = recmonitor.assess(P, served(), ref, test, "md5", same, models=(models, "hybrid"))
    assert v["status"] == "ok" and v["retrain"] is False and v["task"] == "recommendation"
    perf = v["performance"]
    assert perf["metric"] == "ndcg_at_k" and perf["users_now"] > 10 and 0 <= perf["now"] <= 1
    lo, hi = perf["interval_now"]
    assert lo <= perf["now"] <= hi and not perf["decayed"]
    # the model's lists judged on interactions with only the items it ranks last: decay
    worst = same.frame.copy()
    lists = recommenders.recommend_all(models, "hybrid", list(worst[ia.USER].unique()), 200)
    worst[ia.ITEM] = [lists[u][-1 - j % 5] for j, u in enumerate(worst[ia.USER])]
    worst[ia.RATING] = 5.0
    bad = recmonitor.assess(P, served(), ref, test, "md5", recmonitor.Interactions("file worst", worst),
                            models=(models, "hybrid"))
    assert bad["performance"]["decayed"] and bad["performance"]["now"] == 0.0 and bad["retrain"]
    assert any(r.startswith("decay: ndcg_at_k") for r in bad["reasons"])
    shifted = recmonitor.Interactions("file shifted", pd.concat([
        interactions(range(100, 160), 200, 18, 1, "2015-07-01", seed=2, tail=0.0),
        interactions(range(100, 160), 100, 6, 1, "2015-07-01", seed=3, offset=1000)]))
    v = recmonitor.assess(P, served(), ref, test, "md5", shifted, models=(models, "hybrid"))
    assert v["status"] == "drift" and v["retrain"] is True and v["data_drift"]
    assert any("item popularity drift" in r for r in v["reasons"])
    assert v["performance"]["users_now"] > 10  # users never seen are judged on what they get: popular items
    never = P.model_copy(update={"retrain": P.retrain.model_copy(update={"trigger": "never"})})
    assert recmonitor.assess(never, served(), ref, test, "md5", shifted, models=(models, "hybrid"))["retrain"] is False
    few = recmonitor.Interactions("file few", shifted.frame.head(50))
    assert recmonitor.assess(P, served(), ref, test, "md5", few, models=(models, "hybrid"))["status"] == "insufficient"
    assert "item popularity PSI" in recmonitor.summary(v) and "retrain yes" in recmonitor.takeaways(v)


def test_live_quality_per_version_from_the_feedback():
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for n in range(90):
        version = "1" if n < 60 else "2"
        rid, items = f"r{n}", [str(i) for i in range(n, n + 5)]
        rows.append({"request_id": rid, "user": f"u{n % 7}", "items": items, "source": "hybrid",
                     "model_version": version, "route": "champion", "ts": pd.Timestamp("2026-01-01", tz="UTC")})
        if rng.random() < (0.5 if version == "1" else 0.2):
            labels.append({"request_id": rid, "row": 0, "item": items[0], "label": None})  # a click
        if n % 4 == 0:
            labels.append({"request_id": rid, "row": 1, "item": items[1], "label": 2.0})  # not relevant
    cur = recmonitor.with_feedback(pd.DataFrame(rows), pd.DataFrame(labels))
    assert len(cur.frame) == len(labels) and set(cur.frame[ia.USER]) <= {f"u{i}" for i in range(7)}
    live = {v["version"]: v for v in recmonitor.live_quality(cur.lists, 4.0, n_boot=300)}
    clicks = {lab["request_id"] for lab in labels if lab["label"] is None}
    for version, ids in (("1", range(60)), ("2", range(60, 90))):
        hits = [f"r{n}" in clicks for n in ids]
        assert live[version]["hit_rate"] == pytest.approx(np.mean(hits))
        assert live[version]["precision_at_k"] == pytest.approx(np.mean(hits) / 5)
        lo, hi = live[version]["hit_rate_interval"]
        assert lo <= live[version]["hit_rate"] <= hi
    assert live["1"]["hit_rate"] > live["2"]["hit_rate"]
    small = recmonitor.live_quality(cur.lists.head(10), 4.0)
    assert "hit_rate_interval" not in small[0]
