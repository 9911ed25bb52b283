import pandas as pd
from matplotlib.figure import Figure

from mlcycle.stages import eda, show
from tests.code.frames import mixed_frame


def test_overview_counts_nulls_and_distinct():
    df = mixed_frame(100)
    ov = eda.overview(df).set_index("column")
    assert ov.loc["x2", "nulls"] == df["x2"].isna().sum()
    assert ov.loc["cat", "distinct"] == 3


def test_figures_are_made_and_saved(tmp_path):
    df = mixed_frame(200)
    label = (df["y"] == "yes").astype(int)
    figs = {
        "missing": eda.plot_missing(df),
        "label": eda.plot_label(df["y"], "classification", "y"),
        "numeric": eda.plot_numeric(df, ["x1", "x2"]),
        "by_cat": eda.plot_label_by_category(df, ["cat"], label, 5, "y"),
        "corr": eda.plot_correlations(eda.correlations(df, ["x1", "x2"], label)),
        "trend": eda.plot_trend(eda.trend(df, "when", label, freq="D"), "y"),
    }
    for name, fig in figs.items():
        assert isinstance(fig, Figure)
        assert show.save(fig, tmp_path, name).stat().st_size > 1000
    assert eda.plot_missing(df[["x1"]]) is None


def test_label_rate_by_category():
    df = pd.DataFrame({"c": ["a", "a", "b", None]})
    t = eda.label_rate(df, "c", pd.Series([1, 0, 1, 1]), top=5)
    assert t.loc["a", "label_mean"] == 0.5 and t.loc["a", "rows"] == 2


def test_numeric_label_by_task():
    y = pd.Series(["no", "yes", "yes", "no", "no"])
    rate, what = eda.numeric_label(y, "classification")
    assert rate.tolist() == [0, 1, 1, 0, 0] and what == "share of rows with label = 'yes'"
    rate, what = eda.numeric_label(y, "classification", positive_class="no")
    assert rate.sum() == 3
    multi = pd.Series(["a", "a", "b", "c", "c", "c"])
    assert eda.numeric_label(multi, "classification")[0].tolist() == [0, 0, 1, 0, 0, 0]
    assert eda.numeric_label(pd.Series([1.5, 2.5]), "regression")[0].mean() == 2.0


def test_takeaways_name_the_label_rate_and_strongest_correlation():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "z": [4.0, 2.0, 3.0, 1.0], "c": ["a", None, "b", "b"],
                       "y": ["no", "no", "yes", "yes"]})
    rate = (df["y"] == "yes").astype(float)
    corr = eda.correlations(df, ["x", "z"], rate)
    text = eda.takeaways(df, rate, "share of rows with y = 'yes'", corr)
    assert "4 rows and 4 columns; 4 rows have a label" in text
    assert "1 column(s) with missing values; most: `c` (25.0%)" in text
    assert "share of rows with y = 'yes': 0.5." in text
    assert "correlations with the label: `x` (+0.89), `z` (-0.45)" in text


def test_metrics_of_a_table():
    df = pd.DataFrame({"a": [1.0, None, 3.0, 4.0], "b": ["x", "y", None, "z"]})
    rate = pd.Series([1.0, 0.0, 0.0, None])
    doc = eda.metrics(df, rate, "share of late", "classification")
    assert doc == {"task": "classification", "rows": 4, "columns": 2, "missing_share": 0.25, "labelled_rows": 3,
                   "label_rate": 1 / 3, "label_rate_is": "share of late"}


def test_write_metrics_writes_the_committed_format(tmp_path):
    """The table's eda.json: indent 2, numpy numbers as floats, one trailing newline (the bytes the
    committed reports/metrics/eda.json has), its folder made when missing."""
    import json

    import numpy as np

    from mlcycle.tasks.recommender import eda as interactions_eda

    doc = {"task": "classification", "rows": 4, "missing_share": np.float64(0.25), "label_rate_is": "share of late"}
    path = tmp_path / "reports" / "metrics" / "eda.json"
    eda.write_metrics(doc, path)
    text = path.read_text()
    assert text == json.dumps({**doc, "missing_share": 0.25}, indent=2) + "\n"
    assert json.loads(text)["missing_share"] == 0.25
    # the same bytes as the recommender's writer, which the table notebook used before it had its own
    interactions_eda.write_metrics(doc, tmp_path / "rec.json")
    assert (tmp_path / "rec.json").read_bytes() == path.read_bytes()
