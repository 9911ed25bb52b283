import json

import pytest

from mlcycle.core import config, provenance
from mlcycle.core.paths import Paths
from mlcycle.stages import report
from tests.conftest import ROOT, edit_params, make_workspace, run


def test_index_links_reports_and_shows_metrics(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    paths = Paths.at(ws)
    params = config.load(ws / "params.yaml")
    paths.metrics("evaluate").parent.mkdir(parents=True)
    paths.metrics("evaluate").write_text(json.dumps({"model": {"roc_auc": 0.7312}, "baseline": {"roc_auc": 0.6011}}))
    paths.processed.mkdir(parents=True)
    paths.feature_spec.write_text(json.dumps({"target": "arr_delay", "task": "classification", "positive_class": 1}))
    paths.report_html("train").write_text("<html></html>")
    html = report.build_index(paths, params).read_text()
    assert "0.7312" in html and "0.6011" in html
    assert 'href="train.html"' in html and "eda (not run)" in html
    commit = provenance.git_state(ws)["commit"]
    assert commit and commit in html


def test_versions_outside_git(tmp_path):
    assert provenance.git_state(tmp_path)["commit"] is None
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    assert provenance.file_md5(f) == "900150983cd24fb0d6963f7d28e17f72"


def test_every_stage_has_a_description():
    from mlcycle.core.paths import NOTEBOOKS

    assert set(report.DESCRIPTIONS) == set(NOTEBOOKS)
    assert (ROOT / "src/mlcycle/templates/index.html.j2").exists()


def test_index_links_the_model_card_and_regenerated_cards(tmp_path):
    ws = make_workspace(tmp_path / "ws", git=False)
    paths = Paths.at(ws)
    params = config.load(ws / "params.yaml")
    assert "No model card yet" in report.build_index(paths, params).read_text()
    paths.model_card("html").write_text("<html></html>")
    paths.registered.parent.mkdir(parents=True)
    paths.registered.write_text(json.dumps({"name": "m", "version": "3", "run_id": "r"}))
    paths.cards.mkdir()
    for v in ("10", "2"):
        (paths.cards / f"v{v}.html").write_text("<html></html>")
    html = report.build_index(paths, params).read_text()
    assert 'href="model_card.html"' in html and "version 3" in html
    assert html.index('href="cards/v2.html"') < html.index('href="cards/v10.html"')


HISTORY = {
    "model": "m", "champion": "1",
    "versions": [{"version": "1", "metric": "roc_auc", "value": 0.81, "decision": "promoted", "run_id": "a"},
                 {"version": "2", "metric": "roc_auc", "value": 0.74, "decision": "rejected", "run_id": "b"},
                 {"version": "3", "metric": "roc_auc", "value": 0.83, "decision": "promoted", "run_id": "c"}],
    "moves": [{"action": "gate-promote", "from_version": None, "to_version": "1"},
              {"action": "gate-promote", "from_version": "1", "to_version": "3"},
              {"action": "rollback", "from_version": "3", "to_version": "1"}],
}


def test_history_rows_mark_promotions_rollbacks_and_the_champion():
    rows = report.history_rows(HISTORY)
    assert [r["version"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["moves"] == ["promoted by the gate", "rolled back to"] and rows[0]["rollback"] and rows[0]["champion"]
    assert rows[1]["moves"] == [] and not rows[1]["champion"]
    assert rows[2]["moves"] == ["promoted by the gate"] and not rows[2]["rollback"]
    assert report.history_rows(None) == [] and report.history_svg([]) == ""


def test_history_chart_is_self_contained_svg_with_one_mark_per_version():
    svg = report.history_svg(report.history_rows(HISTORY))
    assert svg.startswith('<svg id="history-chart"') and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert svg.count('class="rollback"') == 1 and svg.count('class="promotion"') == 1 and svg.count('class="version"') == 1
    assert svg.count('class="champion"') == 1 and "v2: roc_auc 0.7400, rejected" in svg
    # the best value is drawn highest (smaller y) and the worst lowest
    points = svg.split('<polyline points="')[1].split('"')[0].split()
    heights = [float(p.split(",")[1]) for p in points]
    assert heights[2] < heights[0] < heights[1]


def test_index_shows_history_operation_pages_and_run_links(tmp_path):
    ws = make_workspace(tmp_path / "ws", git=False)
    paths = Paths.at(ws)
    params = config.load(ws / "params.yaml")
    html = report.build_index(paths, params).read_text()
    assert "No registered version yet" in html and 'id="pages"' not in html and "MLflow</th>" not in html
    paths.report_html("evaluate").write_text("<html></html>")
    (paths.reports / "simulation.html").write_text("<html></html>")
    (paths.reports / "benchmarks.md").write_text("# b")
    runs = {"experiment_id": "7", "pipeline": "p1", "stages": {"evaluate": "e1"}}
    html = report.build_index(paths, params, history=HISTORY, runs=runs).read_text()
    assert 'id="history-chart"' in html and "v1 (champion)" in html and "0.7400" in html
    assert 'href="simulation.html"' in html and 'href="benchmarks.md"' in html and 'href="monitor.html"' not in html
    assert "/#/experiments/7/runs/" not in html  # no tracking.ui_url: no links to a UI that may not exist
    edit_params(ws, {"tracking": {"ui_url": "http://127.0.0.1:5000/"}})
    params = config.load(ws / "params.yaml")
    html = report.build_index(paths, params, history=HISTORY, runs=runs).read_text()
    assert 'href="http://127.0.0.1:5000/#/experiments/7/runs/e1"' in html
    assert 'href="http://127.0.0.1:5000/#/experiments/7/runs/p1"' in html
    assert html.count('class="run"') == 2  # evaluate's run and the pipeline run; the others have no run


def test_ui_url_must_be_a_web_address():
    with pytest.raises(ValueError, match="tracking.ui_url 'localhost:5000' is not an http"):
        config.TrackingParams(ui_url="localhost:5000")


def test_what_the_pipeline_writes_does_not_make_the_checkout_dirty(tmp_path):
    """DVC removes and rewrites dvc.lock and the outputs git keeps while `dvc repro` runs: a model
    trained from a clean commit is tagged clean; a change to code still counts, and is named."""
    ws = make_workspace(tmp_path / "ws")
    results = provenance.pipeline_results(ws)
    assert "dvc.lock" in results and "reports/metrics/train.json" in results and "models/model" in results
    assert not any("${" in r for r in results)
    (ws / "dvc.lock").write_text("schema: '2.0'\n")
    (ws / "reports/metrics").mkdir(parents=True, exist_ok=True)
    (ws / "reports/metrics/train.json").write_text("{}\n")
    run(["git", "add", "-A"], ws)
    run(["git", "commit", "-q", "-m", "results"], ws)
    (ws / "reports/metrics/train.json").unlink()  # as DVC does before the stage runs
    (ws / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    assert provenance.git_state(ws, results)["dirty"] is False
    assert provenance.git_state(ws)["dirty"] is True  # without the list, as before
    (ws / "src/mlcycle/tasks/tabular/train.py").write_text("# edited\n")
    state = provenance.git_state(ws, results)
    assert state["dirty"] is True and state["changed"] == ["src/mlcycle/tasks/tabular/train.py"]


def test_index_headline_is_the_active_tasks_section(tmp_path):
    """The headline metrics, the baseline and the model on the index page come from the task (hook
    "index"): a recommender's page shows its ranking metrics and no table model's words."""
    ws = make_workspace(tmp_path / "ws")
    paths = Paths.at(ws)
    raw = config.read_yaml(ws / "params.yaml")
    raw.update(task="recommender", recommend={"user_column": "user", "item_column": "item", "k": 5})
    raw["data"] = {**raw["data"], "task": "recommendation", "target": "rating", "time_column": "ts",
                   "threshold": None, "positive_class": None}
    params = config.parse(raw)
    paths.metrics("evaluate").parent.mkdir(parents=True)
    paths.metrics("evaluate").write_text(json.dumps({"model": {"ndcg_at_k": 0.0754, "recall_at_k": 0.1031},
                                                     "baseline": {"ndcg_at_k": 0.0512}}))
    paths.metrics("features").write_text(json.dumps({"test_interactions": 1234, "test_users": 56}))
    html = report.build_index(paths, params).read_text()
    assert "0.0754" in html and "0.1031" in html and "0.0512" in html
    assert "popularity" in html and "1234 interactions of 56 users" in html and "k = 5" in html
    assert "gradient boosting" not in html and "Holdout rows" not in html
    table = report.build_index(paths, config.load(ws / "params.yaml")).read_text()
    assert "ndcg_at_k" not in table and "Holdout rows" in table


def test_the_index_carries_no_timestamp(tmp_path):
    """A report holds what the run produced: the same inputs render the same index (no clock time)."""
    import re

    paths = Paths(tmp_path)
    params = config.load(ROOT / "params.yaml")
    text = report.build_index(paths, params).read_text()
    assert not re.search(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d", text) and "Generated" not in text
