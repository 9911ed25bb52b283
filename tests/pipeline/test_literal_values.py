"""A table whose values are markup in other languages (`$5 and $10`, `<script>`, `{x}`, backslashes,
control characters, 10,000 characters) through every stage of the table pipeline, the monitor and
the model card: nothing fails, every figure is drawn, and each report shows the values as text.
The browser's view of the same reports: tests/browser/test_literal_values.py."""

import html
import json

import pytest

from mlcycle.core import literal
from tests.conftest import run, up_to_date
from tests.pipeline.conftest import HOSTILE, HOSTILE_CLASSES, hostile_values_workspace

pytestmark = pytest.mark.slow

STAGES = ("validate", "eda", "features", "train", "evaluate")


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return hostile_values_workspace(tmp_path_factory.mktemp("literal") / "ws")


def test_every_stage_runs_and_draws_its_figures(ws):
    assert up_to_date(run(["dvc", "status"], ws).stdout)
    for stage in STAGES:
        assert (ws / "reports" / f"{stage}.html").exists(), stage
    figures = {p.relative_to(ws / "reports" / "figures").as_posix() for p in (ws / "reports" / "figures").rglob("*.png")}
    assert {"eda/label.png", "eda/label_by_category.png", "evaluate/confusion.png", "evaluate/groups_plan.png",
            "evaluate/groups_note.png", "evaluate/importance.png", "evaluate/partial_dependence.png"} <= figures
    spec = json.loads((ws / "data/processed/features.json").read_text())
    assert "plan" in spec["categorical"] and spec["positive_class"] == HOSTILE_CLASSES[0]
    fair = json.loads((ws / "reports/fairness.json").read_text())
    assert {g["group"] for g in fair["columns"]["plan"]["groups"]} == set(HOSTILE)  # kept exactly, not cleaned


def test_reports_show_the_values_as_text(ws):
    """No report holds an element made of a value (`<script>`, `<b>`); the escaped values are there."""
    reports = {p.name: p.read_text(encoding="utf-8") for p in (ws / "reports").glob("*.html")}
    assert {f"{s}.html" for s in STAGES} | {"index.html", "model_card.html"} <= set(reports)
    for name, text in reports.items():
        assert "<script>alert(1)" not in text and "left $5_$ <b>" not in text, name
        assert "\x00" not in text and "\x1b" not in text, name
    escaped = html.escape(literal.visible(HOSTILE[2]), quote=False)
    assert escaped in reports["evaluate.html"] and escaped in reports["model_card.html"]  # the group tables
    assert html.escape("left $5_$ <b>", quote=False) in reports["eda.html"]  # the label's rate, in its summary
    assert html.escape(literal.visible(HOSTILE[-1]), quote=False) in reports["evaluate.html"]


def test_the_markdown_card_keeps_each_value_in_its_cell(ws):
    import mistune

    md = (ws / "reports/model_card.md").read_text(encoding="utf-8")
    assert "\x00" not in md and "\x1b" not in md
    rendered = mistune.create_markdown(escape=True, plugins=["table"])(md)
    assert "<script" not in rendered and "<b>" not in rendered
    table = rendered.split("plan (slice)</h3>")[1].split("</table>")[0]
    rows = table.split("<tr>")[2:]
    assert len(rows) == len(HOSTILE) and len({r.count("<td") for r in rows}) == 1
    cells = {html.unescape(r.split("<td>", 1)[1].split("</td>")[0]).strip() for r in rows}
    assert cells == {literal.visible(v).strip() for v in HOSTILE}


def test_the_monitor_and_the_card_again_from_the_registry(ws):
    out = run(["mlcycle", "monitoring", "run", "--input", "data/raw/reviews.parquet"], ws, timeout=600)
    assert "monitor: report reports/monitor.html" in out.stdout
    assert (ws / "reports/figures/monitor/drift.png").exists()
    page = (ws / "reports/monitor.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in page
    run(["mlcycle", "model", "card", "--model", "1"], ws, timeout=600)  # the command each card names
    assert "mlcycle model card --model 1" in (ws / "reports/model_card.md").read_text(encoding="utf-8")
    card_html = ws / "reports/cards/v1.html"
    text = card_html.read_text(encoding="utf-8")
    assert "<script>alert(1)" not in text and html.escape(HOSTILE[2], quote=False) in text
