"""The shipped NYC flights 2013 tables hold what the default params.yaml relies on."""

import pytest

from mlcycle.core import config, plugins
from tests.conftest import ROOT

flights = plugins.load_module("examples/flights/flights.py", ROOT, "test")


@pytest.fixture(scope="module")
def tables():
    return flights.ingest({})


def test_all_tables_present_with_rows(tables):
    assert set(tables) == {"flights", "weather", "planes", "airports", "airlines"}
    assert len(tables["flights"]) == 336_776


def test_columns_named_in_params_exist(tables):
    p = config.load(ROOT / "params.yaml")
    cols = set(tables["flights"].columns)
    assert {p.data.target, p.data.time_column, *p.data.required_columns, *p.data.drop_columns} <= cols
    assert {"origin", "time_hour", *flights.WEATHER_COLS} <= set(tables["weather"].columns)
    assert {"tailnum", *flights.PLANE_COLS} <= set(tables["planes"].columns)


def test_weather_joins_on_utc_hour(tables):
    f = tables["flights"].head(2000)
    w = tables["weather"]
    joined = flights.enrich(f, {"weather": w, "planes": tables["planes"]}, {})
    assert len(joined) == len(f)
    assert joined["temp"].notna().mean() > 0.95  # weather found for almost every flight
    assert joined["seats"].notna().mean() > 0.7  # most tail numbers are in planes


def test_label_share_is_plausible(tables):
    y = tables["flights"]["arr_delay"].dropna()
    assert 0.2 < (y >= 15).mean() < 0.3
