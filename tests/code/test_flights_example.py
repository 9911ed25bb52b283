"""The flights example's hooks (examples/flights/flights.py), loaded as params name them."""

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import plugins
from tests.conftest import ROOT

flights = plugins.load_module("examples/flights/flights.py", ROOT, "test")


def tables():
    return {"flights": pd.DataFrame({"a": range(100), "s": pd.Series(["x", None] * 50, dtype=object)}),
            "side": pd.DataFrame({"b": [1, 2]})}


def test_prepare_samples_the_flights_table_only_and_keeps_order():
    src = tables()
    out = flights.prepare(src, sample_frac=0.3, seed=1)
    assert len(out["flights"]) == 30 and len(out["side"]) == 2
    assert out["flights"]["a"].is_monotonic_increasing
    assert len(src["flights"]) == 100  # input untouched
    assert out["flights"]["s"].dtype == "str"


def test_replicate_copies_rows_with_small_jitter():
    df = pd.DataFrame({"delay": [1.0, np.nan, 30.0], "carrier": ["AA", "UA", "DL"], "n": [1, 2, 3]})
    out = flights.replicate(df, 3, seed=0)
    assert len(out) == 9 and list(out.dtypes) == list(df.dtypes)
    assert out["carrier"].tolist() == df["carrier"].tolist() * 3
    assert out["n"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9]  # a unique integer id stays unique
    pd.testing.assert_frame_equal(out.iloc[:3], df)
    diff = (out["delay"].to_numpy().reshape(3, 3) - df["delay"].to_numpy())[1:]
    assert np.nanmax(np.abs(diff)) <= 2 and np.isnan(diff[:, 1]).all()
    assert out["delay"].min() >= 1.0 and out["delay"].max() <= 30.0  # within the original range: the schema still holds


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
    r = flights.recent_departures(f, window_minutes=120, lead_minutes=60)
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
    pd.testing.assert_series_equal(flights.recent_departures(f2, 120, 60).loc[15], r.loc[15])



@pytest.mark.parametrize("missing", ["weather", "planes"])
def test_enrich_needs_its_tables(missing):
    f = pd.DataFrame({"year": [2013], "month": [1], "day": [1], "hour": [5], "minute": [0], "dep_delay": [1.0],
                      "origin": ["EWR"], "tailnum": ["N1"], "time_hour": ["2013-01-01T10:00:00Z"]})
    both = {"weather": pd.DataFrame({"origin": ["EWR"], "time_hour": ["2013-01-01T10:00:00Z"],
                                     **{c: [1.0] for c in flights.WEATHER_COLS}}),
            "planes": pd.DataFrame({"tailnum": ["N1"], **{c: [1] for c in flights.PLANE_COLS}})}
    out = flights.enrich(f, both, {})
    assert out["temp"].iloc[0] == 1.0 and out["seats"].iloc[0] == 1 and out["flights_same_hour"].iloc[0] == 1.0
    with pytest.raises(KeyError):
        flights.enrich(f, {k: v for k, v in both.items() if k != missing}, {})
