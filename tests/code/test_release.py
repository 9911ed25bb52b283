"""The release decision on simulated live evidence (in-process, no server): a worse candidate is
rolled back, a better one promoted, an equal one not promoted before the minimum evidence, and
the false-promotion rate of an equal candidate over many seeded replays stays at or under alpha."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlcycle.core.config import ReleaseParams, ServeReleaseParams
from mlcycle.monitoring import release
from mlcycle.serving.release import Router, bucket

META = {"task": "classification", "classes": [0, 1], "positive_class": 1}


def replay(n: int, champ_auc_shift: float, cand_auc_shift: float, seed: int, mode: str = "canary") -> pd.DataFrame:
    """Log rows as the server writes them with labels fed back: each version scores its own rows
    (canary) or the candidate shadows the champion's rows; `*_shift` sets how well scores separate."""
    rng = np.random.default_rng(seed)
    rows = []

    def scored(version, route, y, shift, rids):
        s = 1 / (1 + np.exp(-(rng.normal(0, 1, len(y)) + shift * (2 * y - 1))))
        for i, (rid, yy, ss) in enumerate(zip(rids, y, s, strict=True)):
            rows.append({"request_id": rid, "row": 0, "model_version": version, "route": route, "score": ss,
                         "prediction": int(ss >= 0.5), "ts": pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(seconds=i),
                         "label": int(yy)})

    y0 = (rng.random(n) < 0.3).astype(int)
    r0 = [f"a{i}" for i in range(n)]
    scored("1", "champion", y0, champ_auc_shift, r0)
    if mode == "shadow":
        scored("2", "shadow", y0, cand_auc_shift, r0)
    else:
        y1 = (rng.random(n) < 0.3).astype(int)
        scored("2", "canary", y1, cand_auc_shift, [f"b{i}" for i in range(n)])
    return pd.DataFrame(rows)


POLICY = ReleaseParams(min_labelled_rows=200, min_requests=50, bootstrap=400, alpha=0.05)


def decide(frame: pd.DataFrame, policy=POLICY) -> dict:
    return release.decide(release.Evidence(frame, None, "1", "2", META), policy)


@pytest.mark.parametrize("mode", ["canary", "shadow"])
def test_worse_is_rolled_back_and_better_promoted(mode):
    worse = decide(replay(800, 1.0, 0.2, seed=1, mode=mode))
    assert worse["decision"] == "rollback" and "metric" in worse["why"]
    better = decide(replay(800, 0.5, 1.5, seed=2, mode=mode))
    assert better["decision"] == "promote", better["why"]
    metric = next(c for c in better["checks"] if c["check"] == "metric")
    assert metric["paired"] == (mode == "shadow") and metric["difference"] > 0 and metric["lower"] > 0


def test_no_promotion_before_the_minimum_evidence():
    # equal, and even clearly better, with fewer labelled rows than release.min_labelled_rows: wait
    st = decide(replay(150, 1.0, 1.0, seed=3))
    assert st["decision"] == "wait", st["why"]
    assert next(c for c in st["checks"] if c["check"] == "metric")["outcome"] == "pending"
    lenient = POLICY.model_copy(update={"max_score_psi": 10.0})
    assert decide(replay(150, 0.3, 2.0, seed=3), lenient)["decision"] == "wait"
    assert decide(replay(400, 0.3, 2.0, seed=3), lenient)["decision"] == "promote"
    # before the labels can judge, scores far from the champion's stop the candidate
    st = decide(replay(150, 0.3, 2.0, seed=3))
    assert st["decision"] == "rollback" and st["why"] == "failed: score_drift"


@pytest.mark.slow
def test_false_promotion_rate_at_or_under_alpha():
    """An equal candidate looked at as evidence grows up to 800 labelled rows per version, over
    100 seeded replays: promoted at most alpha of the time. Between milestones the answer cannot
    change (test_milestones_spend_alpha_and_fix_the_rows), so looking at each milestone is looking
    after every row."""
    alpha, replays, promoted = 0.10, 100, 0
    pol = ReleaseParams(min_labelled_rows=100, bootstrap=200, alpha=alpha)
    for seed in range(replays):
        rng = np.random.default_rng(seed)
        n = 800
        y0, y1 = (rng.random(n) < 0.3), (rng.random(n) < 0.3)
        s0 = rng.normal(0, 1, n) + 0.8 * y0
        s1 = rng.normal(0, 1, n) + 0.8 * y1
        for looked in (100, 200, 400, 800):
            out = release.compare("roc_auc", (y0[:looked], s0[:looked]), (y1[:looked], s1[:looked]), False,
                                  pol.min_labelled_rows, alpha, 0.0, pol.bootstrap, seed)
            if out["outcome"] == "better":
                promoted += 1
                break
    assert promoted / replays <= alpha, f"{promoted} of {replays} equal candidates promoted"
    # the same replays with a truly better candidate are promoted most of the time (the test has power)
    wins = 0
    for seed in range(20):
        rng = np.random.default_rng(1000 + seed)
        y0, y1 = (rng.random(800) < 0.3), (rng.random(800) < 0.3)
        s0, s1 = rng.normal(0, 1, 800) + 0.6 * y0, rng.normal(0, 1, 800) + 1.2 * y1
        out = release.compare("roc_auc", (y0, s0), (y1, s1), False, pol.min_labelled_rows, alpha, 0.0, pol.bootstrap, seed)
        wins += out["outcome"] == "better"
    assert wins >= 15


def test_milestones_spend_alpha_and_fix_the_rows():
    assert release.milestone(99, 100) is None
    assert [release.milestone(n, 100) for n in (100, 199, 200, 399, 400)] == [0, 0, 1, 1, 2]
    y = np.r_[np.zeros(150), np.ones(150)]
    s = np.linspace(0, 1, 300)
    out = release.compare("roc_auc", (y, s), (y, s), True, 100, 0.05)
    assert out["rows"] == 200 and out["alpha"] == pytest.approx(0.05 / 4) and out["difference"] == 0.0
    # within a milestone more rows change nothing: the milestone's first rows decide
    rng = np.random.default_rng(7)
    y0, y1 = rng.random(399) < 0.3, rng.random(399) < 0.3
    s0, s1 = rng.normal(0, 1, 399) + y0, rng.normal(0, 1, 399) + y1
    looks = [release.compare("roc_auc", (y0[:k], s0[:k]), (y1[:k], s1[:k]), False, 100, 0.05, 0.0, 200, 3)
             for k in (200, 250, 320, 399)]
    assert all(look == looks[0] for look in looks)


def test_live_metric_matches_sklearn():
    from sklearn.metrics import log_loss, roc_auc_score

    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.4).astype(float)
    s = np.clip(rng.random(500) * 0.5 + y * 0.3, 0.01, 0.99)
    assert release.metric("roc_auc", y, s) == pytest.approx(roc_auc_score(y, s))
    assert release.metric("log_loss", y, s) == pytest.approx(log_loss(y, s))
    ci = release.interval("roc_auc", y, s, seed=1)
    assert ci["low"] < ci["value"] < ci["high"]


def test_server_figures_from_prometheus_text():
    buckets = {0.01: 50.0, 0.05: 99.0, 0.1: 100.0, float("inf"): 100.0}
    assert release.quantile(0.99, buckets) == pytest.approx(0.05)
    assert release.quantile(0.5, buckets) == pytest.approx(0.01)
    frame = replay(400, 1.0, 1.0, seed=5)
    server = {("1", "champion"): {"requests": 400.0, "errors": 0.0, "p99": 0.02},
              ("2", "canary"): {"requests": 400.0, "errors": 40.0, "p99": 0.02}}
    st = release.decide(release.Evidence(frame, server, "1", "2", META), POLICY)
    assert st["decision"] == "rollback" and "errors" in st["why"]
    server[("2", "canary")] = {"requests": 400.0, "errors": 0.0, "p99": 0.5}
    st = release.decide(release.Evidence(frame, server, "1", "2", META), POLICY)
    assert st["decision"] == "rollback" and st["why"] == "failed: latency"


def test_latency_slack_keeps_millisecond_noise_from_failing():
    frame = replay(400, 1.0, 1.0, seed=5)
    server = {("1", "champion"): {"requests": 400.0, "errors": 0.0, "p99": 0.004},
              ("2", "canary"): {"requests": 400.0, "errors": 0.0, "p99": 0.012}}  # 3x, but 8 ms
    latency = {c["check"]: c for c in release.decide(release.Evidence(frame, server, "1", "2", META), POLICY)["checks"]}["latency"]
    assert latency["status"] == "passed" and latency["bound"] == pytest.approx(0.004 + POLICY.latency_slack_seconds)
    strict = POLICY.model_copy(update={"latency_slack_seconds": 0.0})
    latency = {c["check"]: c for c in release.decide(release.Evidence(frame, server, "1", "2", META), strict)["checks"]}["latency"]
    assert latency["status"] == "failed" and latency["bound"] == pytest.approx(0.006)


def test_canary_routing_is_stable_and_near_the_share():
    r = Router(ServeReleaseParams(mode="canary", share=0.2).model_dump())
    keys = [f"entity-{i}" for i in range(5000)]
    first = [r.canary_rows([{}], k, "rid")[0] for k in keys]
    again = [r.canary_rows([{}], k, "other")[0] for k in keys]
    assert first == again
    assert 0.18 < sum(first) / len(first) < 0.22
    assert bucket("x") == bucket("x") and 0 <= bucket("x") < 1
    # a key column routes each row by its own value; a row without it falls back to the header
    by_col = Router({"mode": "canary", "share": 0.5, "key": "carrier"})
    rows = [{"carrier": c} for c in ("UA", "AA", "DL", "B6", "EV", "UA")]
    routes = by_col.canary_rows(rows, None, "rid")
    assert routes[0] == routes[5] and routes == [bucket(c) < 0.5 for c in ("UA", "AA", "DL", "B6", "EV", "UA")]
    assert Router({"mode": "shadow", "share": 0.5}).canary_rows(rows, "k", "rid") == [False] * 6
    assert Router({"mode": "canary", "share": 0.5}).share_now(False) == 0.0


def test_labels_fed_back_join_the_log_and_give_live_metrics_per_version(tmp_path):
    """Labels stored beside the log (never in its parts) join the rows by request id and row."""
    import datetime as dt

    from mlcycle.core.errors import ClientError
    from mlcycle.core.spec import LABEL
    from mlcycle.serving import feedback
    from mlcycle.serving.predlog import Batch, PredictionLog
    from mlcycle.tasks.tabular import monitor

    rng = np.random.default_rng(0)
    log = PredictionLog(tmp_path, roll_seconds=3600).start()
    truth = {}
    for i in range(60):
        route, version = ("canary", "2") if i % 3 == 0 else ("champion", "1")
        y = rng.random(4) < 0.4
        s = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, 4), 0, 1)
        log.submit(Batch({"distance": [100.0] * 4}, {"prediction": [int(v > 0.5) for v in s], "score": list(s)},
                         version, f"r{i}", dt.datetime.now(dt.UTC), route))
        truth[f"r{i}"] = y
    log.close()
    parts_before = {p.name: p.read_bytes() for p in tmp_path.glob("part-*.parquet")}
    store = feedback.FeedbackStore(tmp_path)
    assert store.add([{"request_id": rid, "row": r, "label": int(y[r])} for rid, y in truth.items() for r in range(4)],
                     META) == 240
    with pytest.raises(ClientError) as err:
        store.add([{"request_id": "r0", "row": 0, "label": 1}], META)
    assert err.value.status == 409
    assert {p.name: p.read_bytes() for p in tmp_path.glob("part-*.parquet")} == parts_before
    assert len(pd.read_parquet(tmp_path)) == 240  # pandas reads the log, not the labels

    params = type("P", (), {"monitor": type("M", (), {"max_memory_rows": 10_000})()})()
    cur = monitor.with_labels(monitor.from_parts(sorted(tmp_path.glob("part-*.parquet")), params), tmp_path)
    assert cur.labelled and cur.frame[LABEL].notna().all() and cur.scores is None  # a release ran: re-scored
    live = release.per_version(release.live_rows(tmp_path), META, "roc_auc", n_boot=200)
    by = {(v["version"], v["route"]): v for v in live}
    assert by[("1", "champion")]["labelled"] == 160 and by[("2", "canary")]["labelled"] == 80
    for v in live:
        assert v["low"] <= v["value"] <= v["high"] and v["value"] > 0.7


def test_a_release_decision_run_records_the_commit_and_environment(tmp_path):
    """Like every run, the release decision's run carries the git commit and the lock's digest."""
    import mlflow

    from mlcycle.monitoring import release
    from tests.conftest import ROOT

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri, uri)
    exp_id = client.create_experiment("releases", artifact_location=(tmp_path / "artifacts").as_uri())
    st = {"candidate": "2", "champion": "1", "checks": [{"check": "metric", "candidate": 0.8, "champion": 0.7}]}
    rid = release.record(client, exp_id, "m", st, "promote", "better on live labels", root=ROOT)
    tags = client.get_run(rid).data.tags
    assert len(tags["mlflow.source.git.commit"]) == 40 and tags["mlcycle.git.dirty"] in ("true", "false")
    assert len(tags["mlcycle.env.lock_digest"]) == 64 and tags["mlcycle.env.matches_lock"] in ("true", "false")
    assert tags["mlcycle.release.decision"] == "promote"


@pytest.mark.parametrize("meta, gate_metric, name", [
    (META, "auto", "roc_auc"), (META, "log_loss", "log_loss"), (META, "rmse", "rmse"),
    ({"task": "classification", "classes": ["a", "b", "c"]}, "auto", "accuracy"),
    ({"task": "classification", "classes": ["a", "b", "c"]}, "log_loss", "accuracy"),
    ({"task": "regression"}, "auto", "rmse"), ({"task": "regression"}, "mae", "mae"),
    ({"task": "regression"}, "roc_auc", "rmse"), ({}, "mae", "mae"), ({}, "auto", "rmse"),  # saved before `task`
])
def test_the_live_metric_is_the_table_tasks(meta, gate_metric, name):
    """The tabular task's `live_metric` hook: the gate metric when it has a live form for the model."""
    assert release.metric_name(meta, gate_metric) == name


def test_the_live_labels_and_scores_are_the_table_tasks():
    frame = pd.DataFrame({"label": ["yes", "no", "yes"], "score": [0.9, 0.2, 0.4], "prediction": ["yes", "no", "no"]})
    y, s = release.encode(frame, {"task": "classification", "classes": ["no", "yes"], "positive_class": "yes"})
    assert y.tolist() == [1.0, 0.0, 1.0] and s.tolist() == [0.9, 0.2, 0.4]
    y, s = release.encode(frame, {"task": "classification", "classes": ["maybe", "no", "yes"]})
    assert y.tolist() == [1.0, 1.0, 0.0] and s.tolist() == [1.0, 1.0, 1.0]  # correct or not: accuracy
    reg = pd.DataFrame({"label": [1.5, 2.0], "score": [1.0, 2.5], "prediction": [1.0, 2.5]})
    for meta in ({"task": "regression"}, {}):
        y, s = release.encode(reg, meta)
        assert y.tolist() == [1.5, 2.0] and s.tolist() == [1.0, 2.5]


def test_a_task_without_a_live_metric_waits_and_says_why():
    """A recommender has no `live_metric` hook (its candidate answers no /predict traffic): the
    release waits, the metric check pending with the reason, and never scores its rows."""
    from mlcycle.core.errors import ReleaseError

    meta = {"task": "recommendation", "model": "hybrid", "k": 10}
    assert release.metric_name(meta, "auto") is None
    frame = replay(300, 1.0, 1.0, seed=4)
    st = release.decide(release.Evidence(frame, None, "1", "2", meta), POLICY)
    metric = {c["check"]: c for c in st["checks"]}["metric"]
    assert st["decision"] == "wait" and metric["status"] == "pending" and metric["metric"] is None
    assert st["why"] == metric["detail"] and "task recommender has no live metric" in st["why"]
    assert "metric: pending" in release.summary({**st, "model": "m"})
    with pytest.raises(ReleaseError, match="task recommender has no live metric"):
        release.encode(frame, meta)
