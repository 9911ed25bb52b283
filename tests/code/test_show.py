"""Notebook display helpers: what they put into an executed notebook carries no checkout path."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402

from mlcycle.stages import show  # noqa: E402


def test_figure_embeds_the_image_and_shows_no_path(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    fig = plt.figure()
    plt.plot([1, 2])
    out = show.figure(fig, tmp_path / "figs", "line")
    assert out is None  # nothing for a cell to print as its result
    assert (tmp_path / "figs" / "line.png").exists()
    bundle, _ = InteractiveShell.instance().display_formatter.format(shown[0])
    assert "image/png" in bundle and str(tmp_path) not in repr(bundle)


def test_figure_without_a_folder_shows_and_saves_nothing(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    monkeypatch.chdir(tmp_path)
    fig = plt.figure()
    plt.plot([1, 2])
    assert show.figure(fig, None, "line") is None
    bundle, _ = InteractiveShell.instance().display_formatter.format(shown[0])
    assert "image/png" in bundle and not list(tmp_path.rglob("*"))
    show.figure(None, None, "nothing")  # a plot function with nothing to draw returns None
    assert len(shown) == 1


def test_markdown_displays_generated_text(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    show.markdown("- 3 rows in `plan`")
    assert shown[0]["text/html"] == "<ul>\n<li>3 rows in <code>plan</code></li>\n</ul>\n"
    assert shown[0]["text/plain"] == "- 3 rows in `plan`"


def test_markdown_shows_a_value_holding_html_as_text(monkeypatch):
    """A column named `<script>` in a stage's summary is text in the report, never markup that runs."""
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    show.markdown("- most missing: `<script>alert(1)</script>` and <script>alert(2)</script> <b>x</b>")
    html = shown[0]["text/html"]
    assert "<script" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;script&gt;alert(2)&lt;/script&gt;" in html


def test_a_table_escapes_values_names_and_caption(monkeypatch):
    import pandas as pd

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    df = pd.DataFrame({"<i>col</i>": ["<script>alert(1)</script>", "nul\x00 esc\x1b", "$5 and $10"], "n": [1.5, 2.0, 3.0]},
                      index=pd.Index(["<b>row</b>", "{x}", "a|b"]))
    show.table(df, caption="<u>by plan</u>")
    html = shown[0].data
    assert "<script" not in html and "<b>" not in html and "<i>" not in html and "<u>" not in html
    for text in ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;row&lt;/b&gt;", "&lt;i&gt;col&lt;/i&gt;",
                 "&lt;u&gt;by plan&lt;/u&gt;", "$5 and $10", "{x}", "a|b", "1.5000"):
        assert text in html, text
    assert "nul\\x00 esc\\x1b" in html and "\x00" not in html and "\x1b" not in html  # seen, not acted on


def test_make_metrics_prints_one_narrow_line_per_metric():
    """`dvc metrics show` puts every metric of a file in one row (1,490 characters for the flights
    example); `make metrics` prints one line per metric, long dotted names wrapped at their dots."""
    shown = {"": {"data": {
        "reports/metrics/train.json": {"data": {"valid_roc_auc": 0.689275, "best_iter": 399, "search": {"trials": 0},
                                                "compiled": {"agrees": True, "max_abs_diff": 1.4e-15}}},
        "reports/metrics/evaluate.json": {"data": {"model": {f"metric_{i}": i / 7 for i in range(40)},
                                                   "fairness": {"a_rather_long_column_name": {
                                                       "demographic_parity_difference": 0.547201}},
                                                   "note": "x" * 300}},
        "reports/metrics/gone.json": {"error": {"type": "FileNotFoundError"}}}}}
    text = show.metrics_text(shown, width=80)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80 and len(lines) > 45
    assert "reports/metrics/train.json" in lines and any(line.split() == ["valid_roc_auc", "0.689275"] for line in lines)
    assert any(line.split() == ["compiled.agrees", "true"] for line in lines)
    assert any(line.split() == ["best_iter", "399"] for line in lines)
    assert any(line.strip().startswith("fairness.a_rather_long_column_name.") for line in lines)
    assert any(line.split() == ["demographic_parity_difference", "0.547201"] for line in lines)
    assert "reports/metrics/gone.json: not readable" in text
    assert show.metrics_text({"main": {"data": {}}, "HEAD~1": {"data": {}}}).splitlines() == ["== main", "== HEAD~1"]


def test_a_table_shows_a_missing_value_as_an_empty_cell_not_nan(monkeypatch):
    import numpy as np
    import pandas as pd

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    show.table(pd.DataFrame({"column": ["distance", "carrier"], "median": [888.0, np.nan], "top": [None, "UA (18%)"]}))
    html = shown[0].data
    assert ">nan<" not in html and ">None<" not in html and "888.0000" in html and "UA (18%)" in html
