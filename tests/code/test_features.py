import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config, tables
from mlcycle.core.errors import DataError
from mlcycle.tasks.tabular import features
from tests.code.frames import data_params, mixed_frame


def test_threshold_label_drops_missing_targets_and_keeps_input():
    df = pd.DataFrame({"d": [0.0, 20.0, np.nan, 15.0], "x": [1, 2, 3, 4]})
    before = df.copy()
    out, info = features.make_label(df, data_params(target="d", threshold=15))
    assert out[features.LABEL].tolist() == [0, 1, 1]
    assert info["rows_without_target"] == 1
    pd.testing.assert_frame_equal(df, before)
    assert features.label_name(data_params(target="d", threshold=15)) == "d>=15"


def test_classes_and_positive_class():
    assert features.classes_of(pd.Series(["no", "yes", "no"])) == (["no", "yes"], "yes")
    assert features.classes_of(pd.Series(["no", "yes"]), "no") == (["no", "yes"], "no")
    assert features.classes_of(pd.Series(["a", "b", "c"]))[1] is None


def test_the_model_derives_features_from_the_source_columns():
    df = mixed_frame(20)
    table, spec, _ = features.build(df, data_params(), config.FeaturesParams())
    assert spec.inputs == ["x1", "x2", "cat", "flag", "when"] and spec.categorical == ["cat"]
    assert {"x1", "x2", "flag", "when_year", "when_month", "when_day_of_week"} == set(spec.numeric)
    assert spec.input_types == {"x1": "double", "x2": "double", "cat": "string", "flag": "boolean", "when": "datetime"}
    typed = features.derived(spec, table[spec.inputs])
    assert set(typed.columns) == set(spec.features)
    assert typed["flag"].isin([0.0, 1.0]).all()
    assert typed["cat"].isna().sum() == df["cat"].isna().sum()
    pd.testing.assert_frame_equal(table[spec.inputs].reset_index(drop=True), df[spec.inputs].reset_index(drop=True))


def test_the_time_column_is_an_input_read_by_its_rule():
    df = mixed_frame(60).assign(day=lambda d: d["when"].dt.strftime("%d/%m/%Y %H:%M")).drop(columns="when")
    dp = data_params(time_column="day", time_format="%d/%m/%Y %H:%M")
    parsed = tables.parse_time(df, "day", dp.time_format)
    table, spec, info = features.build(parsed, dp, config.FeaturesParams(calendar=["month", "hour", "year"]))
    # year and month are constant in 60 hours of January: left out
    assert spec.calendar == ["hour"] and info["constant_calendar_parts"] == ["month", "year"]
    assert "day" in spec.inputs and spec.kinds["day"] == "time" and spec.input_types["day"] == "string"
    raw = df[spec.inputs]  # a client's rows: the time as the file holds it
    from_raw = features.derived(spec, raw)
    from_parsed = features.derived(spec, table[spec.inputs])
    pd.testing.assert_frame_equal(from_raw.reset_index(drop=True), from_parsed.reset_index(drop=True))
    with pytest.raises(ValueError, match="time column 'day'.*cannot be read"):
        features.derived(spec, raw.assign(day="2024-01-01"))


HOOK = '''
def add(table, tables, params):
    """Doubles x1."""
    return table.assign(x1_twice=table["x1"] * params["k"])

def drop(table, tables, params):
    return table.drop(columns=["x2"])

def shuffle(table, tables, params):
    return table.sample(frac=1.0, random_state=0)
'''


def test_an_enrichment_hook_adds_inputs_and_must_keep_the_rows(tmp_path):
    (tmp_path / "h.py").write_text(HOOK)
    df = mixed_frame(40)
    fp = config.FeaturesParams(enrich={"hook": "h.py:add", "params": {"k": 2}})
    hook, extra = features.enrichment(fp, tmp_path)
    table, spec, info = features.build(df, data_params(), fp, hook, extra)
    assert spec.provided_at_prediction == ["x1_twice"] == info["enriched_columns"] and "x1_twice" in spec.inputs
    assert spec.enrichment == "Doubles x1."
    for fn, why in (("drop", "removed the columns"), ("shuffle", "changed the rows")):
        fp = config.FeaturesParams(enrich={"hook": f"h.py:{fn}"})
        hook, extra = features.enrichment(fp, tmp_path)
        with pytest.raises(DataError, match=why):
            features.build(df, data_params(), fp, hook, extra)


def test_time_split_holds_out_latest_rows():
    df = mixed_frame(300)
    table, spec, _ = features.build(df, data_params(time_column="when"), config.FeaturesParams(calendar=[]))
    parts = features.split(table, spec, config.SplitParams(test_size=0.2, valid_size=0.25))
    assert parts["train"]["when"].max() < parts["valid"]["when"].min() <= parts["valid"]["when"].max() < parts["test"]["when"].min()
    assert len(parts["test"]) == 60 and len(parts["valid"]) == 60
    dated = features.split(table, spec, config.SplitParams(test_start="2024-01-12"))
    assert (dated["test"]["when"] >= pd.Timestamp("2024-01-12")).all()
    assert (dated["train"]["when"] < pd.Timestamp("2024-01-12")).all()


def test_time_split_outside_range_is_a_clear_error():
    table, spec, _ = features.build(mixed_frame(50), data_params(time_column="when"), config.FeaturesParams())
    with pytest.raises(DataError, match="split.test_start 2030-01-01 leaves an empty test set"):
        features.split(table, spec, config.SplitParams(test_start="2030-01-01"))


def test_random_split_is_stratified_and_seeded():
    table, spec, _ = features.build(mixed_frame(400), data_params(), config.FeaturesParams())
    a = features.split(table, spec, config.SplitParams(seed=1))
    b = features.split(table, spec, config.SplitParams(seed=1))
    pd.testing.assert_frame_equal(a["test"], b["test"])
    share = table[features.LABEL].eq("yes").mean()
    assert abs(a["test"][features.LABEL].eq("yes").mean() - share) < 0.03


def test_aside_columns_are_kept_for_slices_but_are_not_features():
    df = mixed_frame(200)
    table, spec, _ = features.build(df, data_params(aside_columns=["cat"]), config.FeaturesParams())
    assert "cat" in table.columns and "cat" not in spec.features
    with pytest.raises(DataError, match=r"data.aside_columns names \['gender'\], not in the table"):
        features.build(df, data_params(aside_columns=["gender"]), config.FeaturesParams())


def test_takeaways_give_rows_and_label_share_per_part():
    spec = features.FeatureSpec(target="y", task="classification", label="y", numeric=["x"], categorical=["c"],
                                classes=["no", "yes"], positive_class="yes", inputs=["x", "c"])
    parts = {"train": pd.DataFrame({features.LABEL: ["yes", "no", "no", "no"]}),
             "valid": pd.DataFrame({features.LABEL: ["yes", "no"]}),
             "test": pd.DataFrame({features.LABEL: ["yes", "yes"]})}
    text = features.takeaways(parts, spec)
    assert "8 labelled rows: train 4 (50%), valid 2 (25%), test 2 (25%)" in text
    assert "share of 'yes' per part: train 0.25, valid 0.5, test 1." in text
    assert "2 input columns: 1 numeric and 1 categorical" in text
