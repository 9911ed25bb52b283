"""The model card of a task that gives its own parts (`Task.card_sections`): a recommender version's
card is built by lifecycle/card.py, logged with the evaluate run and tagged on the version as a table
version's is, and `mlcycle model card --model VERSION` (`card.regenerate`) renders it again from MLflow."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from mlcycle.core import record, tasks
from mlcycle.core.errors import CardError
from mlcycle.core.paths import Paths
from mlcycle.lifecycle import audit as auditlog
from mlcycle.lifecycle import card, gate, registry
from mlcycle.runtime import tracking
from mlcycle.tasks.recommender import model as recommend_model
from mlcycle.tasks.recommender import stages as recommend
from tests.code.test_recommend import params, table


def test_the_registry_names_the_card_parts_of_a_task_lazily():
    assert tasks.get("tabular").card() is None  # the table card
    own = tasks.get("recommender").card()
    assert callable(own) and own.__module__ == "mlcycle.tasks.recommender.card"


@pytest.fixture(scope="module")
def recommender_version(tmp_path_factory):
    """A small recommender trained, registered (its train run logs the `recommend` params, as tracking
    does for the task's stage_params) and evaluated, its card written under a runner's record and the
    record applied by the tracking hook to an evaluate run."""
    ws = tmp_path_factory.mktemp("recs") / "ws"
    ws.mkdir()
    paths = Paths(ws)
    p = params(k=4, weights=[0.0, 0.5, 1.0])
    parts, items = recommend.features(p, ws, df=table(n_users=40, per_user=14))
    recommend.write_features(parts, items, paths.processed, paths.metrics("features"))
    trained = recommend.train(parts, items, p, threads=1)
    recommend.save(trained, p, paths.model, paths.baseline)
    recommend.write_train_metrics(trained, paths.metrics("train"), p.recommend.metric)

    client, exp = tracking.setup(ws, p)
    train_run = client.create_run(exp).info.run_id
    for k, v in tracking.flatten({s: p.dump()[s] for s in tracking.stage_sections("train", p)}).items():
        client.log_param(train_run, k, json.dumps(v) if isinstance(v, list | dict) else str(v))
    version = registry.register(client, "recs", train_run, paths.model, {"data_md5": "d" * 32})
    registered = {"name": "recs", "version": version, "run_id": train_run}

    model, meta = recommend_model.load(paths.model)
    ev = recommend.evaluate(model.models, parts["test"], p)
    res = ev["results"]
    decision = gate.decide(res["hybrid"], None, p.gate, version, baseline=res["popularity"])
    audit_file = ws / "mlruns" / "audit.jsonl"
    registry.apply_decision(client, audit_file, "recs", decision)
    user = next(iter(ev["lists"]["hybrid"]))
    explanation = recommend.explain(model.models, user, ev["lists"]["hybrid"][user][:3])

    hook = tracking.TrackingHook()  # the evaluate stage's run, as the runner's tracking hook makes it
    hook.client, hook.exp_id = client, exp
    hook.run_id = client.create_run(exp).info.run_id
    items_file = ws / "record.jsonl"
    mp = pytest.MonkeyPatch()
    mp.setenv(record.ENV, str(items_file))
    try:
        written = recommend.write_reports(paths, p, {**ev, "weight": meta.get("weight")}, explanation,
                                          gate.document(decision), registered,
                                          auditlog.read(audit_file, "recs", client), client=client)
    finally:
        mp.undo()
    run = SimpleNamespace(root=ws, record=items_file)
    for item in record.read(items_file):
        hook.apply(item, run, {})
    return SimpleNamespace(ws=ws, paths=paths, p=p, client=client, version=version, train_run=train_run,
                           evaluate_run=hook.run_id, written=written, audit=audit_file, ev=ev)


SECTIONS = ("## Metrics on the test period (95% intervals over users)", "## Slices: user activity and item popularity",
            "## Cold start", "## Why these items")


def test_the_evaluate_card_of_a_recommender_is_the_generic_card_with_its_sections(recommender_version):
    r = recommender_version
    md = r.written["md"].read_text()
    assert md.startswith(f"# Model card: recs version {r.version}")
    for section in ("## Intended use", "## Training data", "## Parameters", *SECTIONS, "## Known limitations",
                    "## Gate decision", "## Audit history"):
        assert section in md, section
    assert "| cf |" in md and "| content |" in md and "| popularity |" in md  # every component, with intervals
    ndcg = r.ev["results"]["hybrid"]["ndcg_at_k"]
    lo, hi = r.ev["intervals"]["hybrid"]["ndcg_at_k"]
    assert f"{ndcg:.4f} [{lo:.4f}, {hi:.4f}]" in md and "NDCG@4" in md
    assert "| factors | 4 |" in md  # the train run's `recommend` params
    assert f"| gate-promote | - | {r.version} |" in md  # this version's history
    assert "d" * 32 in md  # the data hash the version was registered with
    doc = json.loads(r.written["json"].read_text())
    assert doc["task"]["name"] == "recommender" and doc["model"]["train_run_id"] == r.train_run
    assert "sensitive attribute" not in md  # no table limitations
    assert "<h2>Cold start</h2>" in r.written["html"].read_text()


def test_a_recommender_version_is_tagged_as_a_table_version_and_mlcycle_card_renders_it(recommender_version, tmp_path):
    r = recommender_version
    tags = r.client.get_model_version("recs", r.version).tags
    assert tags["model_card.run_id"] == r.evaluate_run
    base = f"{r.client.get_run(r.evaluate_run).info.artifact_uri}/{card.ARTIFACT_DIR}"
    assert tags["model_card"] == f"{base}/{card.HTML}" and tags["model_card.markdown"] == f"{base}/{card.MD}"
    arts = {a.path for a in r.client.list_artifacts(r.evaluate_run, card.ARTIFACT_DIR)}
    assert {f"{card.ARTIFACT_DIR}/{f}" for f in (card.RECORD, card.HTML, card.MD)} <= arts

    registry.set_alias(r.client, "recs", "challenger", r.version)  # a move after the gate: the new card shows it
    files = card.regenerate(r.client, "recs", r.version, auditlog.read(r.audit, "recs", r.client), tmp_path / "cards")
    md = files["md"].read_text()
    for section in SECTIONS:
        assert section in md, section
    assert "challenger" in md.split("## Intended use")[0]  # the version's aliases now
    assert "| cf |" in md and "| factors | 4 |" in md
    assert files["md"].name == f"v{r.version}.md"
    assert json.loads(files["json"].read_text())["task"]["limitations"] == json.loads(
        r.written["json"].read_text())["limitations"]


def test_a_version_never_evaluated_still_says_so(recommender_version):
    r = recommender_version
    rid = r.client.create_run(r.client.get_experiment_by_name("mlcycle").experiment_id).info.run_id
    v = registry.register(r.client, "recs", rid, r.paths.model, {})
    with pytest.raises(CardError, match="never evaluated"):
        card.regenerate(r.client, "recs", v, [], r.ws / "cards")
