"""The MovieLens recommender online, on a sample of its users: feedback on served lists (`POST
/feedback`, `mlcycle monitoring feedback`), `mlcycle monitoring run --from-log` with live quality per version, a CF-only
version (`recommend.weights: [1.0]`) promoted and rolled back with the audit log showing it, and the
month-by-month replay (`mlcycle monitoring simulate`)."""

import json

import httpx
import pandas as pd
import pytest

from tests.conftest import edit_params, make_workspace, mlflow_client, run
from tests.serve.conftest import serving

pytestmark = pytest.mark.slow

SMALL = {"ingest": {"movielens": {"params": {"user_frac": 0.2}}}, "eda": {"sample_rows": 4000},
         "evaluate": {"bootstrap": 50}, "monitor": {"min_rows": 5},
         "recommend": {"factors": 16, "iterations": 5, "weights": [0.0, 0.5, 1.0]}}
NAME = "movielens-recommender"


def champion(ws) -> str:
    return str(mlflow_client(ws).get_model_version_by_alias(NAME, "champion").version)


def test_feedback_monitor_and_rollback_to_a_single_component(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    run(["mlcycle", "init", "--example", "movielens", "--force"], ws)
    edit_params(ws, {**SMALL, "recommend": {**SMALL["recommend"], "weights": [0.5]}})
    run(["dvc", "repro"], ws, timeout=900)
    if not _has_champion(ws) or champion(ws) != "1":  # the gate may keep popularity ahead on a sample
        run(["mlcycle", "model", "promote", "--model", "1", "--reason", "the first hybrid"], ws)
    assert champion(ws) == "1"
    users = pd.read_parquet(ws / "data/processed/train.parquet")["user"].drop_duplicates().head(30).tolist()

    # served lists, feedback on them (good and bad), the prediction log and the labels beside it
    log_dir = ws / "data" / "predictions"
    answers = []
    with serving(ws, log_dir, None) as server:
        for u in [*users, "never-seen"]:
            r = httpx.post(f"{server.url}/recommend", json={"user": u, "k": 5}, timeout=30)
            assert r.status_code == 200
            answers.append(r.json())
        assert {a["source"] for a in answers[:-1]} == {"hybrid"} and answers[-1]["source"] == "popularity"
        clicked = answers[:10]
        ok = httpx.post(f"{server.url}/feedback", timeout=30, json={"feedback": [
            {"request_id": a["request_id"], "item": a["items"][0]["item"], "rating": 4.5} for a in clicked]})
        assert ok.status_code == 200 and ok.json() == {"accepted": 10}
        a = answers[10]
        shown = [i["item"] for i in a["items"]]
        bad = {(404, "request_id"): {"request_id": "0" * 32, "item": shown[0]},
               (422, "item"): {"request_id": a["request_id"], "item": "not-shown"},
               (422, "rating"): {"request_id": a["request_id"], "item": shown[0], "rating": "five"},
               (409, "item"): {"request_id": clicked[0]["request_id"], "item": clicked[0]["items"][0]["item"]}}
        for (status, field), body in bad.items():
            r = httpx.post(f"{server.url}/feedback", json=body, timeout=30)
            assert (r.status_code, r.json()["field"]) == (status, field), r.text
        assert httpx.get(f"{server.url}/ready", timeout=5).status_code == 200  # still serving
    labels_before = sorted(p.read_bytes() for p in (log_dir / "_labels").glob("labels-*.jsonl"))

    # the command's form, a file of clicks (no rating) on the next lists; a bad file changes nothing
    bad_file = tmp_path / "bad.csv"
    pd.DataFrame({"request_id": [answers[11]["request_id"]], "item": ["not-shown"]}).to_csv(bad_file, index=False)
    out = run(["mlcycle", "monitoring", "feedback", "--input", str(bad_file)], ws, check=False)
    assert out.returncode == 2 and "item" in out.stderr and "nothing was stored" in out.stderr
    assert sorted(p.read_bytes() for p in (log_dir / "_labels").glob("labels-*.jsonl")) == labels_before
    good_file = tmp_path / "clicks.csv"
    pd.DataFrame({"request_id": [a["request_id"] for a in answers[11:16]],
                  "item": [a["items"][1]["item"] for a in answers[11:16]]}).to_csv(good_file, index=False)
    run(["mlcycle", "monitoring", "feedback", "--input", str(good_file)], ws)

    # monitor from the log: live hit rate of v1 = the 15 lists with feedback of the 31 served
    out = run(["mlcycle", "monitoring", "run", "--from-log"], ws)
    verdict = json.loads((ws / "reports/monitor/verdict.json").read_text())
    assert verdict["task"] == "recommendation" and "item popularity PSI" in out.stdout
    live = {(v["version"], v["route"]): v for v in verdict["live"]}
    v1 = live[("1", "champion")]
    assert v1["lists"] == 31 and v1["with_feedback"] == 15
    assert v1["hit_rate"] == pytest.approx(15 / 31) and v1["precision_at_k"] == pytest.approx(15 / 31 / 5)
    lo, hi = v1["hit_rate_interval"]
    assert lo <= v1["hit_rate"] <= hi
    assert verdict["requests"]["new_user_request_share"] == pytest.approx(1 / 31)
    assert verdict["newness"]["new_item_interaction_share"] == 0.0  # served items are all known

    # a CF-only version, promoted then rolled back to the hybrid; the audit log shows both moves
    edit_params(ws, {"recommend": {"weights": [1.0]}})
    run(["dvc", "repro"], ws, timeout=900)
    assert json.loads((ws / "models/registered.json").read_text())["version"] == "2"
    if champion(ws) != "2":
        run(["mlcycle", "model", "promote", "--model", "2", "--reason", "CF only while the content features are rebuilt"], ws)
    with serving(ws, tmp_path / "log2", None) as server:
        r = httpx.post(f"{server.url}/recommend", json={"user": users[0], "k": 3}, timeout=30).json()
    assert r["source"] == "cf" and r["known_user"] is True and r["model_version"] == "2"
    out = run(["mlcycle", "model", "rollback", "--reason", "back to the hybrid"], ws)
    assert "v2 -> v1" in out.stdout and champion(ws) == "1"
    audit = run(["mlcycle", "model", "audit"], ws).stdout.splitlines()
    assert any("rollback" in line and "v2 -> v1" in line and "back to the hybrid" in line for line in audit)
    assert any(" -> v2" in line and ("promote" in line or "gate" in line) for line in audit)
    assert run(["mlcycle", "model", "audit", "--verify"], ws).returncode == 0


def _has_champion(ws) -> bool:
    try:
        champion(ws)
        return True
    except Exception:
        return False


def test_month_by_month_replay_of_the_interactions(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    run(["mlcycle", "init", "--example", "movielens", "--force"], ws)
    edit_params(ws, {**SMALL, "ingest": {"movielens": {"params": {"user_frac": 0.3}}}, "validate": {"min_rows": 20},
                     "monitor": {"min_rows": 20}, "gate": {"beat_baseline": False},
                     "simulate": {"train_periods": 40, "periods": 2}})
    run(["git", "commit", "-qam", "a sample"], ws)
    out = run(["mlcycle", "monitoring", "simulate"], ws, timeout=900)
    assert "item_popularity_psi" in out.stdout
    res = json.loads((ws / "reports/simulation.json").read_text())
    rows = res["periods"]
    assert [r["period"] for r in rows] == ["2001-01", "2001-02"] and res["period"] == "month"
    for r in rows:
        assert r["metric"] == "ndcg_at_k" and 0 <= r["champion_score"] <= 1 and 0 <= r["frozen_score"] <= 1
        assert r["item_popularity_psi"] >= 0 and 0 <= r["new_item_share"] <= 1 and r["status"] in ("ok", "drift")
        assert bool(r["new_version"]) == bool(r["retrain"])  # retrained exactly when the verdict said so
    # the first month is scored by version 1, which is also the frozen model
    assert rows[0]["champion"] == "v1" and rows[0]["champion_score"] == rows[0]["frozen_score"]
    retrains = [e for e in res["audit"] if e["action"] == "retrain"]
    assert len(retrains) == res["summary"]["retrainings"] == sum(bool(r["retrain"]) for r in rows)
    assert "item_popularity_psi" in (ws / "reports/simulation.html").read_text()
