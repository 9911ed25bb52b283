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


# ---------------------------------------------------------------- decisions against a real registry

TINY_META = {"task": "classification", "classes": [0, 1], "positive_class": 1}
NOWHERE = "http://127.0.0.1:9"  # no server: errors and latency "not checked", the labels decide


class Released:
    """A workspace copy whose SQLite registry holds a champion v1 (tiny scikit-learn models with
    mlcycle metadata, gate-passed); `candidate()` registers the next version under `challenger`."""

    def __init__(self, ws):
        import mlflow.sklearn
        from sklearn.linear_model import LogisticRegression

        from mlcycle.core import config
        from mlcycle.core.paths import Paths
        from mlcycle.lifecycle import registry
        from mlcycle.runtime import tracking

        self.ws, self.params = ws, config.load(ws / "params.yaml")
        self.client, self.exp = tracking.setup(ws, self.params)
        self.name, self.audit_file = self.params.tracking.model_name, Paths(ws).audit_log
        self.folder = ws / "tiny-model"
        X = pd.DataFrame({"a": np.arange(20.0)})
        mlflow.sklearn.save_model(LogisticRegression().fit(X, (X["a"] > 9).astype(int)), str(self.folder),
                                  metadata={"mlcycle": TINY_META})
        v1 = self.register()
        registry.promote(self.client, self.audit_file, self.name, v1, "the first champion")

    def register(self, gate: str | None = "promoted") -> str:
        from mlcycle.lifecycle import registry

        v = registry.register(self.client, self.name, self.client.create_run(self.exp).info.run_id, self.folder,
                              {"gate.decision": gate} if gate else {})
        return v

    def candidate(self, gate: str | None = "promoted") -> str:
        v = self.register(gate)
        self.client.set_registered_model_alias(self.name, "challenger", v)
        return v

    def champion(self) -> str:
        from mlcycle.lifecycle import registry

        return str(registry.champion(self.client, self.name).version)


def decide_in_a_process(ws: str, rounds: list, barrier, queue) -> None:
    """`mlcycle` commands in one process, one a round (None: sits the round out), each started with
    the other processes' at the barrier: imports and set-up are done before it, so the race is the
    decisions'. Puts (argv, exit code, stderr) per round."""
    import contextlib
    import io
    import os
    import traceback

    os.chdir(ws)
    os.environ["MLCYCLE_ROOT"] = ws
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from mlcycle.cli.main import main
    from mlcycle.monitoring import release as _release  # noqa: F401  (imported before the start)

    for argv in rounds:
        barrier.wait(timeout=600)
        if argv is None:
            queue.put((None, 0, ""))
            continue
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
        except BaseException:
            code, err = 99, io.StringIO(traceback.format_exc())
        queue.put((argv, code, err.getvalue()))


class Race:
    """Processes that run a command each per round, all at once (`run`), on workspace `ws`."""

    def __init__(self, ws, rounds: list[list]):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.barrier, self.queue = ctx.Barrier(len(rounds[0]) + 1), ctx.Queue()
        self.procs = [ctx.Process(target=decide_in_a_process, args=(str(ws), [r[i] for r in rounds], self.barrier,
                                                                     self.queue), daemon=True)
                      for i in range(len(rounds[0]))]
        for p in self.procs:
            p.start()

    def run(self) -> list[tuple[list[str], int, str]]:
        self.barrier.wait(timeout=600)
        out = [self.queue.get(timeout=600) for _ in self.procs]
        return [o for o in out if o[0] is not None]

    def close(self) -> None:
        for p in self.procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()


def one_story(r: Released) -> list[dict]:
    """The registry's aliases and tags tell the audit log's story; its entries."""
    from mlcycle.lifecycle import audit

    entries = audit.read(r.audit_file, r.name, r.client)
    assert audit.verify_chain(entries) == []
    moves = [e for e in entries if e["action"] in audit.MOVES]
    assert moves[-1]["to_version"] == r.champion()  # the alias is where the last move left it
    decided = [e for e in entries if e["action"] == "release-rollback"
               or (e["action"] == "promote" and (e.get("details") or {}).get("command"))]
    versions = {e["from_version"] if e["action"] == "release-rollback" else e["to_version"] for e in decided}
    assert len(versions) == len(decided), "one release decision per version"
    for e in decided:
        v = e["from_version"] if e["action"] == "release-rollback" else e["to_version"]
        tag = r.client.get_model_version(r.name, v).tags.get("release.decision")
        assert tag == ("rollback" if e["action"] == "release-rollback" else "promote"), (v, tag, e)
    return entries


@pytest.mark.slow  # real processes racing through the CLI, three rounds: about a minute and a half
def test_concurrent_release_decisions_are_linearisable(tmp_path):
    """`release promote` and `release abort` started together from separate processes, round after
    round: exactly one decides; the others exit 4 saying which decision came first and change
    nothing; aliases, the version's `release.decision` tag and the audit chain tell one story. A last
    round adds `mlcycle model rollback` to the race."""
    from tests.conftest import make_workspace

    r = Released(make_workspace(tmp_path / "ws", git=False))
    reason = ["--reason", "race", "--url", NOWHERE]
    promote, abort = ["release", "promote", *reason], ["release", "abort", *reason]
    rounds = [[promote, abort, promote], [abort, promote, abort], [promote, abort, ["model", "rollback", "--reason", "race"]]]
    race = Race(r.ws, rounds)
    try:
        for round_ in range(len(rounds)):
            race_round(r, race, round_)
    finally:
        race.close()


def race_round(r: Released, race: Race, round_: int) -> None:
    before = r.champion()
    cand = r.candidate()
    results = race.run()
    assert all(code in (0, 1, 4) for _, code, _ in results), results
    won = [(argv, err) for argv, code, err in results if code == 0 and argv[0] == "release"]
    lost = [(argv, code, err) for argv, code, err in results if code != 0 and argv[0] == "release"]
    assert len(won) <= 1, f"round {round_}: {len(won)} release decisions succeeded: {won}"
    for argv, code, err in lost:
        assert code == 4, err
        assert f"{' '.join(argv[:2])}: " in err and "nothing changed" in err, err
        assert any(k in err for k in ("rolled v", "made v", "model rollback moved")), err  # says what happened
    tag = r.client.get_model_version(r.name, cand).tags.get("release.decision")
    if round_ < 2:  # promote against abort alone: exactly one of them
        assert len(won) == 1, results
        winner = won[0][0][1]
        assert tag == {"promote": "promote", "abort": "rollback"}[winner]
        assert r.champion() == (cand if winner == "promote" else before)
    else:
        assert tag in (None, "promote", "rollback")
    if won:  # the release is over
        with pytest.raises(Exception, match="not found"):
            r.client.get_model_version_by_alias(r.name, "challenger")
    else:  # the rollback came first: both release decisions found the champion moved
        assert round_ == 2 and all("the champion moved" in err for _, _, err in lost), results
    one_story(r)


def test_a_gate_rejected_or_unjudged_version_is_no_release_candidate(tmp_path):
    """A version the gate rejected (or never judged) named by the candidate alias: `release status`
    and `release promote` refuse it saying so; `release abort` still ends the release."""
    from mlcycle.core.errors import ReleaseError
    from tests.conftest import make_workspace

    r = Released(make_workspace(tmp_path / "ws", git=False))
    for gate in ("rejected", None):
        cand = r.candidate(gate)
        why = "the gate rejected it" if gate else "the gate never judged it"
        with pytest.raises(ReleaseError, match=f"v{cand} cannot be a release candidate: {why}"):
            release.status(r.ws, r.params, NOWHERE)
        with pytest.raises(ReleaseError, match=why):
            release.act(r.ws, r.params, "promote", "try", url=NOWHERE)
        assert r.champion() == "1"
        out = release.act(r.ws, r.params, "rollback", "not this one", url=NOWHERE, command="release abort")
        assert out["candidate"] == cand and r.champion() == "1"
    one_story(r)


def test_the_server_does_not_route_to_a_candidate_the_gate_rejected(tmp_path, monkeypatch):
    """The candidate alias set by hand on a gate-rejected version: the server's candidate holder serves
    nothing (the champion answers everything) and says why; once the alias names a gate-passed
    version, the next reload serves it."""
    from mlcycle.serving import app, model
    from mlcycle.serving.settings import Settings
    from tests.conftest import make_workspace

    r = Released(make_workspace(tmp_path / "ws", git=False))
    loaded = []
    monkeypatch.setattr(model, "load", lambda client, uri, *a, **k: loaded.append(uri) or type(
        "S", (), {"version": str(client.get_model_version_by_alias(r.name, "challenger").version), "columns": ()})())
    bad = r.candidate("rejected")
    s = Settings(f"models:/{r.name}@champion", r.client.tracking_uri, release={"mode": "canary", "share": 0.5})
    champion = type("C", (), {"version": "1", "columns": ()})()
    holder = app.candidate_holder(r.client, s, champion)
    assert holder.current is None and loaded == []
    assert f"v{bad} cannot be a release candidate: the gate rejected it" in holder.refused
    good = r.candidate("promoted")
    assert holder.check() and holder.current.version == good and holder.refused is None
    asked, judge = [], holder.refuse
    holder.refuse = lambda version: asked.append(version) or judge(version)
    assert not holder.check() and not holder.check() and asked == []  # an admitted version is not judged again
    r.client.set_registered_model_alias(r.name, "challenger", bad)  # moved back by hand
    assert holder.check() and holder.current is None
    assert not holder.check() and asked == [bad, bad]  # a refusal is asked again: the gate may pass it later


def test_a_recommender_candidate_is_refused_canary_and_shadow():
    """The recommender's /recommend answers from the champion alone: a canary or shadow of it is
    refused (not reported at a share nobody was served), a table model's is not."""
    from mlcycle.core import tasks
    from mlcycle.serving.release import refusal

    rec = tasks.for_objective("recommendation")
    for mode in ("canary", "shadow"):
        assert f"serve.release.mode {mode}: the recommender task's serving cannot route" in refusal(mode, rec)
        assert refusal(mode, tasks.for_objective("classification")) is None
    assert refusal("off", rec) is None


def test_serving_start_refuses_a_canary_for_a_task_that_cannot_route(tmp_path, capsys):
    import os

    from mlcycle.cli.main import main
    from tests.conftest import make_workspace

    ws = make_workspace(tmp_path / "ws", git=False)
    old = os.getcwd()
    os.chdir(ws)
    try:
        code = main(["serving", "start", "--params", "examples/movielens/params.yaml", "--release", "canary",
                     "--port", "9"])
    finally:
        os.chdir(old)
    err = capsys.readouterr().err
    assert code == 1 and "serving start: serve.release.mode canary: the recommender task's serving cannot route" in err


def labelled_log(log_dir, champ: str, cand: str, cand_label, n: int = 240, seed: int = 0) -> None:
    """A prediction log of a canary (champion and candidate rows, one row a request) with labels fed
    back: the champion's of both classes, the candidate's all `cand_label`."""
    import datetime as dt

    from mlcycle.serving import feedback
    from mlcycle.serving.predlog import Batch, PredictionLog

    rng = np.random.default_rng(seed)
    log = PredictionLog(log_dir, roll_seconds=3600).start()
    labels = []
    for i in range(2 * n):
        route, version = ("canary", cand) if i % 2 else ("champion", champ)
        s = float(rng.random())
        log.submit(Batch({"a": [float(i)]}, {"prediction": [int(s > 0.5)], "score": [s]}, version, f"r{i}",
                         dt.datetime.now(dt.UTC), route))
        labels.append({"request_id": f"r{i}", "row": 0, "label": cand_label if i % 2 else int(rng.random() < 0.4)})
    log.close()
    feedback.FeedbackStore(log_dir).add(labels, TINY_META)


def test_labels_that_cannot_judge_are_said_and_watch_stops(tmp_path):
    """Candidate labels all one class: `status` says "metric: cannot be judged: <reason>" (not
    "passed (difference nan)") and `watch` stops after release.failed_checks such checks in a row,
    with the reason, having changed nothing."""
    from mlcycle.core.errors import ReleaseError
    from tests.conftest import make_workspace

    r = Released(make_workspace(tmp_path / "ws", git=False))
    cand = r.candidate()
    params = r.params.model_copy(update={"release": r.params.release.model_copy(
        update={"min_labelled_rows": 100, "min_requests": 10, "failed_checks": 2, "bootstrap": 200})})
    labelled_log(r.ws / params.serve.log_dir, "1", cand, 0)
    st = release.status(r.ws, params, NOWHERE)
    metric = {c["check"]: c for c in st["checks"]}["metric"]
    assert metric["status"] == "cannot be judged" and st["decision"] == "wait"
    assert "candidate's first 200 labelled rows are all one class" in metric["detail"]
    text = release.summary(st)
    assert "metric: cannot be judged: the candidate's first 200 labelled rows are all one class" in text
    assert "nan" not in text
    said = []
    with pytest.raises(ReleaseError, match="cannot be judged in 2 checks in a row: the candidate's first"):
        release.watch(r.ws, params, NOWHERE, max_checks=10, interval=0.0, log=said.append)
    assert len(said) == 2 and all("cannot be judged: " in s for s in said)
    assert r.champion() == "1" and str(r.client.get_model_version_by_alias(r.name, "challenger").version) == cand


def test_text_labels_for_numeric_classes_cannot_judge():
    """Labels that are not the model's classes (text for 0/1) are reported, not scored as nan."""
    frame = replay(300, 1.0, 1.0, seed=6)
    frame["label"] = np.where(frame["label"] == 1, "yes", "no")
    st = decide(frame)
    metric = {c["check"]: c for c in st["checks"]}["metric"]
    assert metric["status"] == "cannot be judged" and st["decision"] == "wait"
    assert "not among the model's classes [0, 1]" in metric["detail"] and "'no'" in metric["detail"]
    assert "metric: cannot be judged: the labels fed back cannot give roc_auc" in release.summary({**st, "model": "m"})
