"""A forecast model served (FastAPI TestClient): `POST /forecast` on a saved seasonal-naive pyfunc of
tiny generated series (its answers, bounds and strict types, the unknown series, the published
example), `/predict` refused, the prediction log's rows, feedback of actuals and the metrics."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from mlcycle.core.errors import ClientError
from mlcycle.serving import feedback, predlog
from mlcycle.serving import model as serving_model
from mlcycle.tasks.forecast import model as forecast_model
from tests.code import test_serve_app
from tests.code.test_forecast import model

# the app in-process on a given Served, and the tracking store it opens (test_serve_app's fixtures)
app_for, store = test_serve_app.app_for, test_serve_app.store

LOAD = serving_model.load  # the real loader (app_for replaces it with one handing over the Served it is given)
# table(): three monthly series a, b, c from 2020-01 to 2021-12; the model forecasts from 2022-01, 3 steps
NEXT = ["2022-01-01T00:00:00", "2022-02-01T00:00:00", "2022-03-01T00:00:00"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The seasonal naive of tests/code/test_forecast.py saved as the forecast stage saves it and loaded
    as the server loads it, as version 4 of a registered model."""
    folder = tmp_path_factory.mktemp("forecast") / "model"
    forecast_model.save(model(), folder, {"id_columns": ["store"], "time_column": "month", "target": "sales"})
    s = LOAD(None, str(folder))
    return dataclasses.replace(s, info={**s.info, "name": "sales-forecast", "version": "4"})


def post(c, body):
    return c.post("/forecast", content=json.dumps(body), headers={"Content-Type": "application/json"})


def test_a_known_series_is_forecast_logged_and_counted_under_its_version(app_for, served, tmp_path):
    expected = model().predict(None, pd.DataFrame({"store": ["b"], "horizon": [2]}))
    with app_for(served=served) as c:
        r = post(c, {"series": {"store": "b"}, "horizon": 2})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (r.headers["x-model-version"], r.headers["x-route"]) == ("4", "champion")
        assert body["series"] == {"store": "b"} and body["horizon"] == 2 and body["coverage"] == 0.9
        assert (body["model_name"], body["model_version"], body["model"]) == ("sales-forecast", "4", "seasonal_naive")
        rows = body["forecasts"]
        assert [row["step"] for row in rows] == [1, 2] and [row["time"] for row in rows] == NEXT[:2]
        assert [row["forecast"] for row in rows] == expected["forecast"].tolist()
        assert all(row["lower"] < row["forecast"] < row["upper"] for row in rows)
        whole = post(c, {"series": {"store": "c"}}).json()  # no horizon: every step trained for
        assert [row["time"] for row in whole["forecasts"]] == NEXT
        metrics = c.get("/metrics").text
    counted = [line for line in metrics.splitlines()
               if line.startswith('mlcycle_serve_requests_total{endpoint="/forecast"') and 'status="200"' in line]
    assert counted and all('version="4"' in line and 'route="champion"' in line for line in counted), counted
    log = predlog.read(tmp_path / "log")  # flushed when the app stopped
    mine = log[log["request_id"] == body["request_id"]].sort_values("row")
    assert mine["store"].tolist() == ["b", "b"] and mine["step"].tolist() == [1, 2]
    assert mine["forecast"].tolist() == [row["forecast"] for row in rows]
    assert mine["upper"].tolist() == [row["upper"] for row in rows] and mine["lower"].tolist() == [row["lower"] for row in rows]
    assert [t.isoformat() for t in mine["time"]] == NEXT[:2] and (mine["model_version"] == "4").all()
    assert len(log) == 5  # 2 + 3 steps


@pytest.mark.parametrize("body, status, field, says", [
    ({"series": {"store": "a"}, "horizon": 4}, 422, "horizon", "less than or equal to 3"),
    ({"series": {"store": "a"}, "horizon": 0}, 422, "horizon", "greater than or equal to 1"),
    ({"series": {"store": "a"}, "horizon": True}, 422, "horizon", "integer"),
    ({"series": {"store": "a"}, "horizon": "2"}, 422, "horizon", "integer"),
    ({"series": {"store": True}}, 422, "store", ""),
    ({"series": {"store": 1.5}}, 422, "store", ""),
    ({"series": {"store": "a", "shop": "a"}}, 422, "shop", "not part of the request"),
    ({"series": {"shop": "a"}}, 422, "store", "required"),
    ({"series": {"store": "a"}, "steps": 2}, 422, "steps", "not part of the request; /docs shows the fields of /forecast"),
    ({"horizon": 2}, 422, "series", "required"),
    ({"series": {"store": "a"}, "history": [{"time": "2021-01-01", "value": "5"}]}, 422, "value", ""),
    ({"series": {"store": "a"}, "history": [{"time": 20210101, "value": 5}]}, 422, "time", ""),
    ({"series": {"store": "a"}, "history": [{"time": "1700000000", "value": 5}]}, 422, "time", "ISO 8601"),
    ({"series": {"store": "a"}, "history": [{"time": "2021-01-01", "value": 5, "promo": 1}]}, 422, "promo", ""),
    ({"series": {"store": "a"}, "history": [{"time": "2021-01-01", "value": 5}, {"time": "2021-01-01", "value": 6}]},
     422, "history", "more than once"),
    ({"series": {"store": "zzz"}}, 404, "series", "GET /forecast/series lists them"),
])
def test_bounds_strict_types_unknown_fields_and_series_are_refused_naming_the_field(app_for, served, body, status,
                                                                                   field, says):
    with app_for(served=served) as c:
        r = post(c, body)
        assert (r.status_code, r.json()["field"]) == (status, field), r.text
        assert says in r.json()["detail"], r.text
        assert post(c, {"series": {"store": "a"}, "horizon": 1}).status_code == 200  # still serving


def test_the_series_list_a_callers_history_the_published_example_and_predict(app_for, served):
    with app_for(served=served) as c:
        listed = c.get("/forecast/series").json()
        assert listed["id_columns"] == ["store"] and listed["series"] == [{"store": s} for s in "abc"]
        # a series the model never saw, from the caller's history: the seasonal naive repeats its last season
        history = [{"time": f"2021-{m:02d}-01", "value": float(m)} for m in range(1, 9)]
        r = post(c, {"series": {"store": "new"}, "history": history})
        assert r.status_code == 200, r.text
        assert [row["forecast"] for row in r.json()["forecasts"]] == [5.0, 6.0, 7.0]
        assert r.json()["forecasts"][0]["time"] == "2021-09-01T00:00:00" and r.json()["history"] == "sent"
        (example,) = c.get("/openapi.json").json()["components"]["schemas"]["ForecastRequest"]["examples"]
        assert example == {"series": {"store": "a"}, "horizon": 3}
        assert post(c, example).status_code == 200
        r = c.post("/forecast", headers={"Content-Type": "application/json"})
        assert (r.status_code, r.json()["error"]) == (400, "empty body") and "dataframe" not in r.text, r.text
        r = c.post("/predict", json={"dataframe_records": [{"store": "a", "horizon": 1}]})
        assert r.status_code == 409 and "POST /forecast" in r.json()["detail"], r.text


def test_actuals_are_taken_for_a_forecast_time_only(app_for, served, tmp_path):
    with app_for(served=served) as c:
        rid = post(c, {"series": {"store": "a"}}).json()["request_id"]
        r = c.post("/feedback", json={"request_id": rid, "time": "2022-05-01", "value": 120.0})
        assert (r.status_code, r.json()["field"]) == (422, "time") and "not one of the 3 forecast times" in r.text, r.text
        for bad, field in (({"value": "120"}, "value"), ({"value": True}, "value"), ({"time": 20220201}, "time"),
                           ({"label": 1}, "label")):
            r = c.post("/feedback", json={"request_id": rid, "time": "2022-02-01", "value": 120.0, **bad})
            assert (r.status_code, r.json()["field"]) == (422, field), r.text
        assert c.post("/feedback", json={"request_id": rid, "time": "2022-02-01", "value": 120}).json() == {"accepted": 1}
        r = c.post("/feedback", json={"request_id": rid, "time": "2022-02-01T00:00:00", "value": 121})
        assert (r.status_code, r.json()["field"]) == (409, "time"), r.text
        body = c.get("/openapi.json").json()["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"]["oneOf"][0]["required"] == ["request_id", "time", "value"]
        assert c.post("/feedback", json=body["examples"]["one"]["value"]).status_code == 404  # a made-up request id
    stored = feedback.read(tmp_path / "log")
    assert stored[["request_id", "row", "time", "label"]].values.tolist() == [[rid, 1, "2022-02-01T00:00:00", 120.0]]
    # `mlcycle monitoring feedback`'s form, in a fresh process: the forecast times are read from the log's parts
    fresh = feedback.FeedbackStore(tmp_path / "log")
    frame = pd.DataFrame({"request_id": [rid, rid], "time": pd.to_datetime(["2022-01-01", "2022-03-01"]),
                          "value": [118.0, 125.5]})
    assert fresh.add_file(frame, served.meta, "file actuals.csv") == 2
    assert sorted(feedback.read(tmp_path / "log")["row"]) == [0, 1, 2]
    with pytest.raises(ClientError) as err:
        fresh.add_file(frame.assign(time=["2022-01-01", "2023-01-01"]), served.meta, "file actuals.csv")
    assert (err.value.status, err.value.field) == (409, "rows[0].time")  # the first entry wrong is named
    with pytest.raises(ClientError) as err:
        fresh.add_file(frame.iloc[:1].assign(time=["2023-01-01"]), served.meta, "file actuals.csv")
    assert (err.value.status, err.value.field) == (422, "rows[0].time") and "not one of the 3" in err.value.detail
    with pytest.raises(ClientError) as err:
        fresh.add_file(frame.rename(columns={"value": "actual"}), served.meta, "file actuals.csv")
    assert (err.value.status, err.value.field) == (422, "value")


def test_forecasts_at_once_through_one_global_model_keep_their_own_series_scale():
    """The server's threads share one fitted global model, whose mlforecast transforms are refitted on
    each history forecast: two series of levels 100 and 100,000 forecast at once each keep their own
    (unguarded, a share of them came back at the other's level)."""
    import threading

    import numpy as np

    from mlcycle.tasks.forecast import families
    from mlcycle.tasks.forecast.series import ID, TIME, VALUE
    from tests.code.test_forecast import params

    fc = params(lags=[1, 4], windows=[], max_iter=20, dynamic_columns=[], static_columns=[]).forecasting
    times = pd.date_range("2020-01-01", periods=48, freq="MS")

    def one(uid, level):
        return pd.DataFrame({ID: uid, TIME: times, VALUE: level + 10 * np.sin(np.arange(48)) + np.arange(48)})

    g = families.Global("MS", 4, fc).fit(pd.concat([one("a", 100.0), one("b", 1e5)], ignore_index=True))
    alone = {uid: g.forecast(one(uid, level), 3)["yhat"].tolist() for uid, level in (("a", 100.0), ("b", 1e5))}
    wrong = []

    def forecast(uid, level):
        for _ in range(25):
            got = g.forecast(one(uid, level), 3)["yhat"].tolist()
            if not np.allclose(got, alone[uid]):
                wrong.append((uid, got))

    threads = [threading.Thread(target=forecast, args=a) for a in (("a", 100.0), ("b", 1e5))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(alone["a"]) < 1000 < min(alone["b"]) and wrong == []


def test_a_model_with_dynamic_columns_takes_their_future_values_and_the_token_guards_its_routes(app_for, tmp_path):
    folder = tmp_path / "dynamic"
    forecast_model.save(model(dynamic=True), folder, {"id_columns": ["store"]})
    s = LOAD(None, str(folder))
    with app_for(served=dataclasses.replace(s, info={**s.info, "name": "promo", "version": "2"}), token="t0k") as c:
        auth = {"Authorization": "Bearer t0k"}
        assert c.post("/forecast", json={"series": {"store": "a"}}).status_code == 401
        assert c.get("/forecast/series").status_code == 401
        assert c.get("/forecast/series", headers=auth).json()["count"] == 3
        (example,) = c.get("/openapi.json").json()["components"]["schemas"]["ForecastRequest"]["examples"]
        assert [row["time"] for row in example["future"]] == [t[:10] + "T00:00:00" for t in NEXT]
        r = c.post("/forecast", json=example, headers=auth)
        assert r.status_code == 200 and len(r.json()["forecasts"]) == 3, r.text
        r = c.post("/forecast", json={"series": {"store": "a"}}, headers=auth)
        assert (r.status_code, r.json()["field"]) == (422, "future"), r.text
        late = {**example, "future": [{**row, "time": "2023-01-01"} for row in example["future"][:1]]}
        r = c.post("/forecast", json=late, headers=auth)
        assert (r.status_code, r.json()["field"]) == (422, "future") and "not the 1 steps after" in r.text, r.text
        r = c.post("/forecast", json={**example, "future": [{**example["future"][0], "promo": "1"}]}, headers=auth)
        assert (r.status_code, r.json()["field"]) == (422, "promo"), r.text
