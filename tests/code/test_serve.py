"""Request validation of the model server, without a server: request models built from a model's
columns, the error each bad input gets, the frame handed to the model, settings."""

import math

import pytest
from pydantic import ValidationError

from mlcycle.core import config
from mlcycle.core.errors import ClientError, ServeError
from mlcycle.core.workspace import parse_model_uri as parse_uri
from mlcycle.serving import outputs, request, server, settings
from mlcycle.serving.model import Column
from mlcycle.serving.request import describe, frame, request_models, rows_from_split
from tests.conftest import ROOT

COLUMNS = (
    Column("distance", "double", nullable=False),
    Column("temp", "double"),
    Column("wind_gust", "double", required=False),
    Column("seats", "long"),
    Column("carrier", "string", nullable=False),
    Column("plane_type", "string"),
)
GOOD = {"distance": 1400.0, "temp": 39.0, "wind_gust": None, "seats": 149, "carrier": "UA", "plane_type": None}
Request, ROWS, _ = request_models(COLUMNS, max_rows=3)


def error_for(body: dict) -> ClientError:
    try:
        req = Request.model_validate(body)
    except ValidationError as exc:
        return describe(exc.errors(include_url=False), 3)
    try:
        rows_from_split(req.dataframe_split, ROWS, COLUMNS, 3)
    except ClientError as exc:
        return exc
    return None


def records(**changes):
    return {"dataframe_records": [GOOD, {**GOOD, **changes}]}


def test_good_rows_validate():
    req = Request.model_validate({"dataframe_records": [GOOD, {k: v for k, v in GOOD.items() if k != "wind_gust"}]})
    assert req.dataframe_records[0] == GOOD and "wind_gust" not in req.dataframe_records[1]
    assert Request.model_validate(records(temp=float("nan"))).dataframe_records[1]["temp"] != 1.0  # NaN: missing


@pytest.mark.parametrize("change, status, error, field", [
    ({"distance": "far"}, 422, "wrong type", "distance"),
    ({"distance": True}, 422, "wrong type", "distance"),
    ({"seats": 1.5}, 422, "wrong type", "seats"),
    ({"seats": 2**70}, 422, "invalid value", "seats"),
    ({"carrier": 7}, 422, "wrong type", "carrier"),
    ({"distance": None}, 422, "null not allowed", "distance"),
    ({"distance": float("nan")}, 422, "NaN not allowed", "distance"),
    ({"temp": float("inf")}, 422, "infinity not allowed", "temp"),
    ({"dep_delay": 3.0}, 422, "unknown column", "dep_delay"),
])
def test_bad_value_names_field_and_row(change, status, error, field):
    err = error_for(records(**change))
    assert (err.status, err.error, err.field, err.row) == (status, error, field, 1)
    assert field in err.detail


def test_missing_column():
    row = {k: v for k, v in GOOD.items() if k != "carrier"}
    err = error_for({"dataframe_records": [row]})
    assert (err.status, err.error, err.field, err.row) == (422, "missing column", "carrier", 0)


@pytest.mark.parametrize("body, status, error, field", [
    ({"dataframe_records": [GOOD] * 4}, 413, "too many rows", "dataframe_records"),
    ({"dataframe_records": []}, 422, "no rows", "dataframe_records"),
    ({"instances": [GOOD]}, 422, "unknown field", "instances"),
    ({"dataframe_split": {"columns": ["distance", "nope"], "data": [[1.0, 2.0]]}}, 422, "unknown column", "nope"),
    ({"dataframe_split": {"columns": ["distance"], "data": [[1.0]] * 5}}, 413, "too many rows", "data"),
    ({"dataframe_split": {"columns": ["distance"], "data": [[{"a": 1}]]}}, 422, "wrong type", "data"),
])
def test_bad_body(body, status, error, field):
    err = error_for(body)
    assert (err.status, err.error, err.field) == (status, error, field)


def split(columns, data):
    return {"dataframe_split": {"columns": columns, "data": data}}


def test_split_form():
    cols = list(GOOD)
    req = Request.model_validate(split(cols, [list(GOOD.values())]))
    assert rows_from_split(req.dataframe_split, ROWS, COLUMNS, 3) == [GOOD]
    assert error_for(split(cols + ["distance"], [list(GOOD.values()) + [1.0]])).error == "duplicate column"
    assert error_for(split(cols[1:], [list(GOOD.values())[1:]])).field == "distance"
    assert error_for(split(cols, [list(GOOD.values())[:-1]])).error == "wrong row length"
    bad = list(GOOD.values())
    bad[0] = "far"
    err = error_for(split(cols, [list(GOOD.values()), bad]))
    assert (err.error, err.field, err.row) == ("wrong type", "distance", 1)


def test_json_and_empty_body_errors():
    assert describe([{"type": "json_invalid", "loc": ("body", 3), "msg": "x", "ctx": {"error": "Expecting value"}}], 3).status == 400
    assert describe([{"type": "missing", "loc": ("body",), "msg": "Field required"}], 3).error == "empty body"


def test_openapi_schema_shows_columns_and_types():
    schema = Request.model_json_schema()
    row = schema["$defs"]["Row"]
    assert row["properties"]["seats"]["anyOf"][0]["type"] == "integer"
    assert row["properties"]["carrier"]["type"] == "string"  # not nullable: no null branch
    assert set(row["required"]) == set(GOOD) - {"wind_gust"}
    assert row["additionalProperties"] is False


def test_frame_types_and_missing_values():
    X = frame([GOOD, {**GOOD, "seats": None, "temp": float("nan")}], COLUMNS)
    assert list(X.columns) == [c.name for c in COLUMNS]
    assert str(X["distance"].dtype) == "float64" and str(X["carrier"].dtype) == "str"
    assert math.isnan(X["seats"][1]) and X["wind_gust"].isna().all() and X["plane_type"].isna().all()
    assert str(frame([GOOD], COLUMNS)["seats"].dtype) == "int64"


def test_parse_model_uri():
    assert parse_uri("models:/m@champion") == ("m", "champion", None)
    assert parse_uri("models:/m/3") == ("m", None, "3")
    assert parse_uri("runs:/abc/model") == (None, None, None)


def test_settings_from_params_and_flags(tmp_path):
    params = config.load(ROOT / "params.yaml")
    s = settings.settings(tmp_path, params, port=9999, log_dir=None)
    assert s.model_uri == f"models:/{params.tracking.model_name}@champion" and s.host == "127.0.0.1"
    assert s.port == 9999 and s.log_dir == str(tmp_path / "data/predictions")
    assert s.not_null == tuple(params.data.required_columns)
    assert settings.Settings.from_json(s.to_json()) == s
    with pytest.raises(ServeError, match=r"--workers: Input should be greater than or equal to 1 \(got 0\)"):
        settings.settings(tmp_path, params, workers=0)


@pytest.mark.parametrize("body, field, row", [
    (records(carrier="U\ud800A"), "carrier", 1),
    (split(list(GOOD), [list(GOOD.values()), [*list(GOOD.values())[:-1], "\udfff"]]), "plane_type", 1),
])
def test_lone_surrogate_is_a_422_naming_field_and_row(body, field, row):
    err = error_for(body)
    assert (err.status, err.error, err.field, err.row) == (422, "invalid text", field, row)
    assert "surrogate" in err.detail


def test_check_text_for_models_without_a_signature():
    request.check_text([{"a": "fine", "b": 1}])
    with pytest.raises(ClientError) as e:
        request.check_text([{"a": "fine"}, {"a": "x\ud800"}])
    assert (e.value.status, e.value.field, e.value.row) == (422, "a", 1)


def test_schema_requires_exactly_one_form():
    import jsonschema

    schema = Request.model_json_schema()
    for body in ({}, {"dataframe_records": [GOOD], "dataframe_split": {"columns": ["distance"], "data": [[1.0]]}},
                 {"dataframe_records": None}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(body, schema)
    jsonschema.validate({"dataframe_records": [GOOD]}, schema)
    assert error_for({"dataframe_records": None}).status == 422


@pytest.mark.parametrize("host, token, warns", [
    ("0.0.0.0", None, True), ("192.168.1.5", None, True), ("0.0.0.0", "t", False),
    ("127.0.0.1", None, False), ("localhost", None, False), ("::1", None, False),
])
def test_binding_beyond_loopback_without_token_warns(host, token, warns, monkeypatch, capsys):
    monkeypatch.delenv("MLCYCLE_SERVE_TOKEN", raising=False)
    if token:
        monkeypatch.setenv("MLCYCLE_SERVE_TOKEN", token)
    assert server.warn_exposed(settings.Settings("models:/m@champion", "sqlite:///x.db", host=host)) is warns
    assert ("without a token" in capsys.readouterr().err) is warns


def test_log_inputs_are_columns_of_the_validated_rows():
    rows = [GOOD, {**GOOD, "temp": None}]
    cols = outputs.log_inputs(rows, COLUMNS, frame(rows, COLUMNS))
    assert list(cols) == [c.name for c in COLUMNS] and cols["temp"] == [39.0, None] and cols["carrier"] == ["UA", "UA"]


def test_out_of_range_values_against_the_schema(tmp_path):
    bounds = {"distance": [1, 5000], "seats": [None, 500], "carrier": [0, 1]}
    rows = [GOOD, {**GOOD, "distance": 9999.0, "seats": 900}, {**GOOD, "distance": 0.5}, {**GOOD, "distance": None}]
    out = {c: (n, row, v) for c, n, row, v, _ in request.out_of_range(rows, COLUMNS, bounds)}
    assert out == {"distance": (2, 1, 9999.0), "seats": (1, 1, 900)}  # strings and nulls are not checked
    assert request.out_of_range([GOOD], COLUMNS, bounds) == []
    params = config.load(ROOT / "params.yaml")
    s = settings.settings(ROOT, params)
    assert s.ranges == "warn" and s.bounds["distance"] == [1, 5000]  # schemas/flights.yaml
    assert settings.settings(ROOT, params, ranges="off").bounds == {}
    assert settings.settings(tmp_path, params).bounds == {}  # no schema file: nothing to check


def test_binary_predictions_carry_the_classes_own_type():
    """positive_class `true` for classes 0 and 1 (as an older init wrote it): every prediction is 0 or 1,
    never True beside 0; classes_of returns the class value too."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from mlcycle.core.spec import classes_of
    from mlcycle.serving.model import Served

    X = pd.DataFrame({"x": np.linspace(-3, 3, 40)})
    y = (X["x"] > 0).astype(int)
    served = Served(model=LogisticRegression().fit(X, y), flavor="sklearn", info={}, columns=(),
                    meta={"task": "classification", "classes": [0, 1], "positive_class": True})
    preds = outputs.score(served, X)["prediction"]
    assert set(preds) == {0, 1} and not any(isinstance(p, bool) for p in preds)
    _, positive = classes_of(y, True)
    assert positive == 1 and type(positive) is int


@pytest.mark.parametrize("value", ["9999-12-31T00:00:00", "0001-01-01T00:00:00", "2262-04-12T00:00:00"])
def test_a_time_outside_what_training_and_monitoring_read_is_refused(value):
    """The server, the compiled scorer and the monitor's parse agree: a time outside pandas' range is
    refused naming the column, whichever way it comes (a datetime column, or ISO text of a time column)."""
    import pandas as pd

    from mlcycle.core.errors import DataError
    from mlcycle.core.tables import parse_series
    from mlcycle.tasks.tabular.compiled import iso_calendar

    cols = (Column("time_hour", "datetime"),)
    req, rows, _ = request_models(cols, max_rows=3)
    with pytest.raises(ValidationError) as exc:
        req.model_validate({"dataframe_records": [{"time_hour": "2013-01-01T05:00:00"}, {"time_hour": value}]})
    err = describe(exc.value.errors(include_url=False), 3)
    assert (err.status, err.error, err.field, err.row) == (422, "time out of range", "time_hour", 1)
    req.model_validate({"dataframe_records": [{"time_hour": "2262-04-11T00:00:00"}, {"time_hour": "1700-01-01T00:00:00"}]})
    with pytest.raises(DataError, match="time_hour.*outside the times"):
        parse_series(pd.Series(["2013-01-01T05:00:00", value]), "time_hour")
    assert iso_calendar([value], ["hour"]) is None  # the compiled path leaves it to parse_series (then a 422)
    assert iso_calendar(["2013-01-01T05:00:00"], ["hour"]) == {"hour": [5.0]}
