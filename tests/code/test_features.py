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


def repeated_times(n: int = 400, seed: int = 0, start: str = "2024-01-01") -> tuple[pd.DataFrame, features.FeatureSpec]:
    """A feature table whose times repeat: 1 to 30 rows per hour, in shuffled order."""
    rng = np.random.default_rng(seed)
    hours = np.repeat(np.arange(n), rng.integers(1, 31, size=n))[:n]
    df = mixed_frame(n, seed).assign(when=pd.Timestamp(start) + pd.to_timedelta(hours, unit="h"))
    df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    table, spec, _ = features.build(df, data_params(time_column="when"), config.FeaturesParams(calendar=[]))
    return table, spec


def nearest_change(t: pd.Series, share: float) -> int:
    """The row count before the place where the time changes nearest the share's position (brute force)."""
    t = t.sort_values().reset_index(drop=True)
    changes = [i for i in range(1, len(t)) if t[i] != t[i - 1]]
    return min(changes, key=lambda i: (abs(i - len(t) * (1 - share)), i))


def assert_no_time_on_two_sides(parts):
    times = {name: set(part["when"]) for name, part in parts.items()}
    assert not times["train"] & times["valid"] and not times["valid"] & times["test"] and not times["train"] & times["test"]
    assert parts["train"]["when"].max() < parts["valid"]["when"].min() <= parts["valid"]["when"].max() < parts["test"]["when"].min()


def test_time_split_by_shares_cuts_between_two_distinct_times():
    table, spec = repeated_times()
    assert table["when"].duplicated().sum() > 300  # a row count cut would fall inside a time
    parts = features.split(table, spec, config.SplitParams(test_size=0.2, valid_size=0.25))
    assert_no_time_on_two_sides(parts)
    assert len(parts["train"]) + len(parts["valid"]) == nearest_change(table["when"], 0.2)
    rest = pd.concat([parts["train"], parts["valid"]])
    assert len(parts["train"]) == nearest_change(rest["when"], 0.25)
    assert sum(map(len, parts.values())) == len(table)


def test_time_split_by_test_start_keeps_its_date_and_cuts_valid_between_times():
    table, spec = repeated_times()
    parts = features.split(table, spec, config.SplitParams(test_start="2024-01-02", valid_size=0.3))
    assert_no_time_on_two_sides(parts)
    assert (parts["test"]["when"] >= pd.Timestamp("2024-01-02")).all()
    assert (parts["valid"]["when"] < pd.Timestamp("2024-01-02")).all()
    assert len(parts["test"]) == int((table["when"] >= pd.Timestamp("2024-01-02")).sum())
    assert len(parts["train"]) == nearest_change(pd.concat([parts["train"], parts["valid"]])["when"], 0.3)


def test_test_start_is_a_date_in_data_timezone():
    # times are held as UTC: 04:00 UTC on 2024-01-12 is 23:00 on the 11th in New York, 05:00 UTC its midnight
    hours = np.repeat([0, 2, 6, 10, 11, 30], 10)
    df = mixed_frame(60).assign(when=pd.Timestamp("2024-01-11 18:00") + pd.to_timedelta(hours, unit="h"))
    table, spec, _ = features.build(df, data_params(time_column="when"), config.FeaturesParams(calendar=[]))
    params = config.SplitParams(test_start="2024-01-12")
    utc = features.split(table, spec, params)
    assert utc["test"]["when"].min() == pd.Timestamp("2024-01-12 00:00") and len(utc["test"]) == 40
    local = features.split(table, spec, params, "America/New_York")
    assert local["test"]["when"].min() == pd.Timestamp("2024-01-12 05:00")  # midnight in New York
    assert len(local["test"]) == 20 and local["valid"]["when"].max() == pd.Timestamp("2024-01-12 04:00")
    assert_no_time_on_two_sides(local)
    assert features.test_start_time("2024-01-12", "America/New_York") == pd.Timestamp("2024-01-12 05:00")
    assert features.test_start_time("2024-01-12T00:00:00+01:00", "America/New_York") == pd.Timestamp("2024-01-11 23:00")
    cuts = features.split_cuts(local, spec, params, "America/New_York")
    assert cuts["rule"].iloc[1] == "rows at or after split.test_start 2024-01-12 (in America/New_York)"
    assert str(cuts["first_after"].iloc[1]) == "2024-01-12 00:00:00-05:00"


def test_time_split_without_two_distinct_times_names_the_time_column():
    df = mixed_frame(40).assign(when=pd.Timestamp("2024-01-01"))
    table, spec, _ = features.build(df, data_params(time_column="when"), config.FeaturesParams(calendar=[]))
    with pytest.raises(DataError, match=r"the rows \(40\) have a single distinct time \(2024-01-01 00:00\) in "
                                        r"data.time_column 'when', so the test set \(split.test_size\) would be empty"):
        features.split(table, spec, config.SplitParams())
    table["when"] = pd.Timestamp("2024-01-01") + pd.to_timedelta([0] * 30 + [1] * 10, unit="D")
    with pytest.raises(DataError, match=r"the training rows \(before the test set\) \(30\) have a single distinct "
                                        r"time .* 'when', so the validation set \(split.valid_size\)"):
        features.split(table, spec, config.SplitParams(test_start="2024-01-02"))


def test_split_cuts_and_takeaways_show_each_cut_and_the_rows_on_each_side():
    table, spec = repeated_times()
    params = config.SplitParams(test_size=0.2, valid_size=0.25)
    parts = features.split(table, spec, params)
    cuts = features.split_cuts(parts, spec, params)
    assert cuts["cut"].tolist() == ["train | valid", "train + valid | test"]
    assert cuts["rows_before"].tolist() == [len(parts["train"]), len(parts["train"]) + len(parts["valid"])]
    assert cuts["rows_after"].tolist() == [len(parts["valid"]), len(parts["test"])]
    assert cuts["last_before"].tolist() == [parts["train"]["when"].max(), parts["valid"]["when"].max()]
    assert cuts["first_after"].tolist() == [parts["valid"]["when"].min(), parts["test"]["when"].min()]
    assert "split.test_size 0.2" in cuts["rule"].iloc[1]
    text = features.takeaways(parts, spec, params)
    last, first = (features.shown_time(cuts[c].iloc[1]) for c in ("last_before", "first_after"))
    assert (f"train + valid | test between {last} and {first} ({cuts['rows_before'].iloc[1]:,} rows before, "
            f"{len(parts['test']):,} at or after)") in text
    local = features.takeaways(parts, spec, params, "America/New_York")
    assert "2024-01-01 00:00" not in local and "2023-12-31 19:00 EST" in local  # the first time, in New York
    summary = features.split_summary(parts, spec, "America/New_York")
    assert str(summary["from"].iloc[0]) == "2023-12-31 19:00:00-05:00"
    random_parts = features.split(*features.build(mixed_frame(100), data_params(), config.FeaturesParams())[:2], params)
    assert features.split_cuts(random_parts, spec.__class__(target="y", task="classification")).empty


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
