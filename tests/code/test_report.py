import json

from mlcycle.core import config, provenance
from mlcycle.core.paths import Paths
from mlcycle.stages import report
from tests.conftest import ROOT, make_workspace


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
