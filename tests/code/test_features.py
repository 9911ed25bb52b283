import numpy as np
import pandas as pd
import pytest

from mlcycle import config, features
from mlcycle.errors import DataError
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


def test_type_columns_handles_bool_datetime_text():
    df = mixed_frame(20)
    typed, numeric, categorical = features.type_columns(df, exclude={"y"})
    assert categorical == ["cat"]
    assert {"x1", "x2", "flag", "when_year", "when_month", "when_day_of_week"} == set(numeric)
    assert typed["flag"].isin([0.0, 1.0]).all()
    assert typed["cat"].isna().sum() == df["cat"].isna().sum()


def test_build_spec_and_no_leakage_of_drop_or_id_columns():
    df = mixed_frame(50).assign(row_id=range(50), leak=1.0)
    table, spec, _ = features.build(df, data_params(id_columns=["row_id"], drop_columns=["leak"], time_column="when"),
                                    config.FeaturesParams(calendar=["day_of_week", "hour"]))
    assert "leak" not in spec.features and "row_id" not in spec.features and "y" not in spec.features
    assert "day_of_week" in spec.numeric and "hour" in spec.numeric
    assert spec.classes == ["no", "yes"] and spec.positive_class == "yes"
    assert {"when", "row_id", features.LABEL} <= set(table.columns)


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


def flights_frame():
    # two origins; flights every 30 minutes; the first EWR departures are very late
    rows = []
    for i in range(8):
        t = pd.Timestamp("2013-01-01 06:00") + pd.Timedelta(minutes=30 * i)
        for origin, delay in (("EWR", 90.0 if i < 3 else 0.0), ("JFK", 0.0)):
            rows.append({"year": 2013, "month": 1, "day": 1, "hour": t.hour, "minute": t.minute,
                         "origin": origin, "dep_delay": delay})
    return pd.DataFrame(rows)


def test_recent_departures_use_only_flights_already_gone():
    f = flights_frame()
    r = features.recent_departures(f, window_minutes=120, lead_minutes=60)
    ewr = f["origin"].eq("EWR")
    # 06:00 EWR: prediction at 05:00, nothing has left yet
    assert r.loc[ewr].iloc[0]["recent_departures"] == 0 and np.isnan(r.loc[ewr].iloc[0]["recent_dep_delay"])
    # 08:30 EWR: prediction at 07:30; the 06:00 flight left at 07:30 (90 min late) and counts
    row = r.loc[ewr].iloc[5]
    assert row["recent_dep_delay"] > 0 and row["recent_late_share"] > 0
    # JFK never sees EWR's delays
    assert (r.loc[~ewr, "recent_dep_delay"].fillna(0) == 0).all()
    # a flight's own delay never enters its own feature
    f2 = f.copy()
    f2.loc[15, "dep_delay"] = 500.0
    pd.testing.assert_series_equal(features.recent_departures(f2, 120, 60).loc[15], r.loc[15])


def test_aside_columns_are_kept_for_slices_but_are_not_features():
    df = mixed_frame(200)
    table, spec, _ = features.build(df, data_params(aside_columns=["cat"]), config.FeaturesParams())
    assert "cat" in table.columns and "cat" not in spec.features
    with pytest.raises(DataError, match=r"data.aside_columns names \['gender'\], not in the table"):
        features.build(df, data_params(aside_columns=["gender"]), config.FeaturesParams())
