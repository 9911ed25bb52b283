"""Data values as typed (core/literal.py): figure labels, Markdown text and code spans, and the
figures of every stage drawing a value such as `$5 and $10` literally instead of as mathtext."""

import html
import io

import matplotlib

matplotlib.use("Agg")

import mistune  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from mlcycle.core import literal  # noqa: E402
from mlcycle.stages import eda, show  # noqa: E402
from mlcycle.tasks.tabular import evaluate, explain, fairness  # noqa: E402
from mlcycle.tasks.tabular import monitor as table_monitor  # noqa: E402

LONG = "long review " * 834  # 10,008 characters
HOSTILE = ["$5 and $10", "cost $5_$", "<script>alert(1)</script>", "{}", "{x}", r"a|b \alpha^2_x {", LONG,
           "nul\x00 esc\x1b[31m red\nnew line"]


def test_visible_writes_control_characters_as_escapes_and_keeps_the_rest():
    assert literal.visible("nul\x00 esc\x1b[31m\nline\ttab") == "nul\\x00 esc\\x1b[31m\\nline\\ttab"
    assert literal.visible("right\u202eto left") == "right\\u202eto left"  # a format character
    assert literal.visible("caf\u00e9 \u00a0 $5 <b>{x}</b>") == "caf\u00e9 \u00a0 $5 <b>{x}</b>"  # printable: as typed
    assert literal.visible("a\nb\x00", keep="\n") == "a\nb\\x00"
    assert literal.visible(12.5) == "12.5"


def test_label_shortens_with_an_ellipsis_and_names_a_missing_value():
    assert literal.label("$5 and $10") == "$5 and $10"
    short = literal.label(LONG, 40)
    assert len(short) == 40 and short.endswith("\u2026") and short.startswith("long review long")
    assert literal.label(None) == literal.label(float("nan")) == "(missing)"
    assert literal.label("a\x00b") == "a\\x00b"


def test_labels_keep_values_that_shorten_alike_distinct():
    values = ["x" * 50 + "1", "x" * 50 + "2", "x" * 50 + "3", "short"]
    shown = literal.labels(values, 20)
    assert len(set(shown)) == 4 and all(len(s) <= 20 for s in shown)
    assert shown[3] == "short" and shown[1].endswith(" (2)") and shown[2].endswith(" (3)")


@pytest.mark.parametrize("value", HOSTILE + ["[a](javascript:alert(1))", "x_y _z_ *b* ~~s~~", "> quote", "# head",
                                             "- item", "&lt; &amp;", "back`tick``s"])
def test_md_text_renders_as_the_value_typed(value):
    """Through a Markdown renderer (mistune, raw HTML escaped as the card does), in a sentence and in a
    table cell, the escaped value reads as `visible(value)`: no link, emphasis, tag, entity or cell break."""
    cell = mistune.create_markdown(escape=True, plugins=["table"])(f"| h |\n| --- |\n| {literal.md_text(value)} |\n")
    assert "<td>" in cell, cell  # still one table, one cell
    text = cell.split("<td>", 1)[1].rsplit("</td>", 1)[0]
    assert "<" not in text.replace("&lt;", "")  # no element made of the value
    assert html.unescape(text) == literal.visible(value).strip()  # Markdown trims a cell's edges
    para = mistune.create_markdown(escape=True)(literal.md_text(value))
    assert html.unescape(para.removeprefix("<p>").removesuffix("</p>\n")) == literal.visible(value).strip()


@pytest.mark.parametrize("value", ["plain", "a|b", "back`tick", "``two``", "<script>", "$5 and $10"])
def test_md_code_is_one_code_span_holding_the_value(value):
    """One code span in one table cell; inside it `|` is `\\|`, which GitHub's tables read as `|` (GFM)."""
    out = mistune.create_markdown(escape=True, plugins=["table"])(f"| h |\n| --- |\n| {literal.md_code(value)} |\n")
    assert out.count("<td>") == 1 and out.count("<code>") == 1, out
    code = out.split("<code>", 1)[1].rsplit("</code>", 1)[0]
    assert html.unescape(code).strip().replace("\\|", "|") == value


def drawn(fig, folder) -> list[Text]:
    """The figure saved as a PNG the way every stage saves one (`show.save`), and every text it drew."""
    assert show.save(fig, folder, "figure").stat().st_size > 0
    return [t for t in fig.findobj(Text) if t.get_text()]


def test_a_value_with_dollars_breaks_a_plain_matplotlib_figure():
    """What the stages' figures are protected from: matplotlib reads `$...$` as mathtext and fails."""
    fig = Figure()
    fig.subplots().set_title("cost $5_$")
    with matplotlib.rc_context({"text.parse_math": True}), pytest.raises(ValueError, match="ParseSyntaxException"):
        fig.savefig(io.BytesIO())


def figures_of_hostile_values() -> dict[str, Figure]:
    n = len(HOSTILE)
    df = pd.DataFrame({"plan": HOSTILE * 20, "$cost_x": np.arange(n * 20, dtype=float)})
    df.loc[::3, "$cost_x"] = np.nan
    rate = pd.Series(np.tile(np.linspace(0, 1, n), 20))
    groups = pd.DataFrame({"column": "plan", "group": HOSTILE, "n": [50] * n, "roc_auc": np.linspace(0.5, 0.9, n),
                           "roc_auc_lo": np.linspace(0.4, 0.8, n), "roc_auc_hi": np.linspace(0.6, 1.0, n),
                           "small": [False] * n})
    importance = pd.DataFrame({"feature": HOSTILE, "importance": np.linspace(0.1, 0.01, n), "std": [0.01] * n})
    importance.attrs.update(scoring="roc_auc", rows=100)
    pdp = pd.DataFrame({"value": HOSTILE, "prediction": np.linspace(0.2, 0.8, n)})
    pdp.attrs["categorical"] = True
    confusion = pd.DataFrame({"actual": HOSTILE * 2, "predicted": HOSTILE[::-1] * 2})
    drift = {"drift": {"columns": [{"column": v, "psi": 0.1 * i, "drifted": i % 2 == 0} for i, v in enumerate(HOSTILE)]}}
    return {
        "missing": eda.plot_missing(df.rename(columns={"plan": "$plan_"}).assign(**{"$plan_": None})),
        "label": eda.plot_label(df["plan"], "classification", "cost $5_$"),
        "by_category": eda.plot_label_by_category(df, ["plan"], rate, 12, "share of rows with churn = '$5_$'"),
        "numeric": eda.plot_numeric(df, ["$cost_x"]),
        "groups": fairness.plot_groups(groups),
        "importance": explain.plot_importance(importance),
        "partial_dependence": explain.plot_partial_dependence({"cost $5_$": pdp}, "predicted probability"),
        "confusion": evaluate.plot_confusion(confusion),
        "drift": table_monitor.plot_drift(drift, 0.2),
    }


def test_every_figure_draws_hostile_values_literally(tmp_path):
    """Values such as `$5 and $10`, `cost $5_$` (no valid mathtext), `<script>`, `{x}`, backslashes,
    control characters and 10,000 characters: each figure saves, every text is drawn as written
    (never mathtext), control characters as escapes, and no label is longer than the width it was given."""
    assert matplotlib.rcParams["text.parse_math"]  # matplotlib's default here: the figures set their own
    for name, fig in figures_of_hostile_values().items():
        texts = drawn(fig, tmp_path)
        shown = [t.get_text() for t in texts]
        assert all(not t._preprocess_math(t.get_text())[1] for t in texts), name  # drawn as text, not math
        assert all("\x00" not in s and "\x1b" not in s and "\n" not in s for s in shown), (name, shown)
        assert max(map(len, shown)) <= 120, (name, max(shown, key=len)[:200])
    by_category = figures_of_hostile_values()["by_category"]
    ticks = [t.get_text() for t in drawn(by_category, tmp_path) if t.get_text()]
    assert {"$5 and $10", "cost $5_$", "<script>alert(1)</script>", "{}", "{x}"} <= set(ticks), ticks
    assert any(t.startswith("nul\\x00 esc\\x1b[31m red\\n") for t in ticks) and any(t.startswith("long review") and t.endswith("\u2026")
                                                                  for t in ticks)


def test_a_stage_kernel_sets_the_literal_style_once_matplotlib_is_loaded(monkeypatch):
    """`runtime/kernel.setup` (every stage's kernel) applies `FIGURE_STYLE` to the whole process, so a
    figure a notebook cell draws itself shows its values as typed too."""
    from mlcycle.runtime import kernel

    monkeypatch.setitem(matplotlib.rcParams, "text.parse_math", True)
    monkeypatch.setitem(matplotlib.rcParams, "text.usetex", False)
    kernel.setup(log_file=None)
    assert matplotlib.rcParams["text.parse_math"] is False and matplotlib.rcParams["text.usetex"] is False
