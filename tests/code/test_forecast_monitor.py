"""Task forecast's monitor on tiny generated series (tests/code/test_forecast.py's table and seasonal
naive): the live error of logged forecasts and their actuals against a hand computation and the
backtest's promise, level and seasonality drift per series (found and named, or not run), decay,
too few actuals, a file of new observations scored, and the served model's log and feedback read
back through `mlcycle monitoring run`'s path."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config
from mlcycle.core.errors import MonitorError
from mlcycle.monitoring import monitor
from mlcycle.serving import feedback, predlog
from mlcycle.tasks.forecast import backtest, families, series, stages
from mlcycle.tasks.forecast import monitor as fm
from mlcycle.tasks.forecast.model import ForecastModel
from mlcycle.tasks.forecast.series import ID, TIME, VALUE
from tests.code.test_forecast import RAW, table
from tests.code.test_forecast_serve import app_for, post, served, store  # noqa: F401  (fixtures)

STORES = tuple(f"s{k}" for k in range(10))
# table(): store k's sales are 100 (k + 1) + 10 (month % 4) + month: a season of 4 and a trend of one a
# month, so the seasonal naive is off by 4 at every step and every series' scale is 4
PROMISE = {"mase": 1.0, "scaled_error_by_step": [1.0, 1.0, 1.0], "actuals_by_step": [30, 30, 30], "coverage": 0.9}


def params(**monitor):
    fc = {**RAW["forecasting"], "dynamic_columns": [], "static_columns": []}
    return config.parse({**RAW, "forecasting": fc, "monitor": {"min_rows": 20, **monitor}})


def fitted(stores=STORES) -> ForecastModel:
    p = params()
    frame = series.standardise(table(stores=stores), p.data, p.forecasting)
    return ForecastModel(families.SeasonalNaive("MS", 4), frame, [1.0, 1.0, 1.0], p.forecasting, "month", "sales", 4)


def as_served(pm: ForecastModel, promise=PROMISE) -> SimpleNamespace:
    """What `serving/model.py` loads, as far as the monitor reads it."""
    meta = {"task": "forecast", "model": pm.name, "coverage": 0.9, **({"backtest": promise} if promise else {})}
    return SimpleNamespace(model=pm, meta=meta, version="4", info={"name": "sales-forecast", "uri": "models:/x/4"})


def truth(name: str, months: range) -> list[float]:
    """The generator's own continuation of a store's series (months counted from 2020-01)."""
    k = int(name[1:]) if name[1:].isdigit() else "abc".index(name)
    return [100.0 * (k + 1) + 10 * (i % 4) + i for i in months]


def logged(pm: ForecastModel, version: str = "4", shift: float = 0.0) -> pd.DataFrame:
    """One /forecast answer per series as the server logs it (serve.answer), forecasts moved by `shift`."""
    f = pm.forecast()
    rows = []
    for uid, g in f.groupby(ID, sort=True):
        for row, r in enumerate(g.sort_values("step").itertuples(index=False)):
            rows.append({"request_id": f"r-{uid}", "row": row, "series": uid, "time": getattr(r, TIME),
                         "step": r.step, "forecast": r.yhat + shift, "lower": r.lower + shift, "upper": r.upper + shift,
                         "history_rows": 0, "model_version": version, "ts": pd.Timestamp("2030-01-01", tz="UTC")})
    return pd.DataFrame(rows)


def labels_of(rows: pd.DataFrame, actual) -> pd.DataFrame:
    """The feedback of every logged step: `actual(series, time) -> value`."""
    return pd.DataFrame({"request_id": rows["request_id"], "row": rows["row"],
                         "label": [actual(u, t) for u, t in zip(rows["series"], rows["time"], strict=True)]})


def month_index(t) -> int:
    t = pd.Timestamp(t)
    return (t.year - 2020) * 12 + t.month - 1


def true_value(u, t) -> float:
    return truth(u, range(month_index(t), month_index(t) + 1))[0]


def current(values: dict[str, list[float]], start="2022-01-01") -> fm.Observations:
    frame = pd.concat([pd.DataFrame({ID: u, TIME: pd.date_range(start, periods=len(v), freq="MS"), VALUE: v})
                       for u, v in values.items()], ignore_index=True)
    return fm.Observations("file new.csv", frame)


# ---------------------------------------------------------------- live error from the log

def test_live_mase_smape_and_coverage_match_a_hand_computation():
    pm = fitted(stores=("a", "b", "c"))
    rows = logged(pm)
    bump = {"a": [0.0, 3.0, 9.0], "b": [-2.0, 0.0, 0.0], "c": [0.0, 0.0, -7.0]}
    cur = fm.with_actuals(rows, labels_of(rows, lambda u, t: true_value(u, t) + bump[u][month_index(t) - 24]))
    live, perf = fm.live_error(cur.live, backtest.scales(pm.history, 4), pm.widths, as_served(pm).meta, "4",
                               params(min_rows=1))
    # the seasonal naive forecasts y_{t-4} = truth - 4; every series' scale is 4; intervals +/- 1 x 4
    errors = {u: [abs(4.0 + d) for d in bump[u]] for u in bump}
    mase = np.mean([np.mean(e) / 4.0 for e in errors.values()])
    actual = {u: [true_value(u, t) + bump[u][month_index(t) - 24] for t in pd.date_range("2022-01-01", periods=3, freq="MS")]
              for u in bump}
    smape = np.mean([np.mean([e / (abs(a) + abs(a - 4.0 - d)) for e, a, d in zip(errors[u], actual[u], bump[u], strict=True)])
                     for u in bump])
    inside = np.mean([e <= 4.0 for u in bump for e in errors[u]])  # 9 errors: 4, 7, 13, 2, 4, 4, 4, 4, 3
    assert inside == pytest.approx(7 / 9)
    (v,) = live
    assert (v["version"], v["forecasts"], v["steps"], v["actuals"], v["series"]) == ("4", 3, 9, 9, 3)
    assert v["mase"] == pytest.approx(mase) and v["smape"] == pytest.approx(smape) and v["coverage"] == pytest.approx(inside)
    assert perf["now"] == pytest.approx(mase) and perf["at_training"] == pytest.approx(1.0)  # 3 actuals at each step
    assert [s["actuals"] for s in perf["by_step"]] == [3, 3, 3]
    assert perf["by_step"][2]["scaled_error"] == pytest.approx((13 + 4 + 3) / 3 / 4.0)


def test_the_promise_weights_each_step_by_its_actuals_and_a_callers_series_reads_its_scale_back():
    meta = {"backtest": {"scaled_error_by_step": [0.5, 1.0, None]}}
    assert fm.promised(meta, {1: 3, 2: 1}) == pytest.approx((3 * 0.5 + 1.0) / 4)
    assert fm.promised(meta, {3: 5}) is None and fm.promised({}, {1: 2}) is None
    pm = fitted(stores=("a",))
    own = pd.DataFrame({"store": "new", "month": pd.date_range("2021-01-01", periods=8, freq="MS"),
                        "sales": [1.0, 2, 3, 4, 5, 6, 7, 8]})
    out = pm.predict(None, own)  # its scale: the seasonal naive's mean error on those 8 values, 4
    rows = pd.DataFrame({"series": out["series"], "step": out["step"], "lower": out["lower"], "upper": out["upper"],
                         "history_rows": 8})
    assert fm.live_scales(rows, backtest.scales(pm.history, 4), pm.widths).tolist() == pytest.approx([4.0] * 3)
    flat = rows.assign(lower=out["forecast"], upper=out["forecast"])  # a zero width: no scale to read back
    assert fm.live_scales(flat, backtest.scales(pm.history, 4), pm.widths).isna().all()


def test_decay_is_claimed_when_forecasts_go_bad_and_not_when_they_hold():
    pm = fitted()
    for shift, decayed in ((0.0, False), (40.0, True)):
        rows = logged(pm, shift=shift)
        cur = fm.with_actuals(rows, labels_of(rows, true_value))
        v = fm.assess(params(), as_served(pm), pm.history, cur)
        perf = v["performance"]
        assert perf["actuals"] == 30 and perf["decayed"] is decayed and v["decayed"] is decayed, v["reasons"]
        assert v["retrain"] is decayed and v["status"] == ("drift" if decayed else "ok")
    lo, hi = perf["interval_now"]
    assert perf["now"] == pytest.approx(9.0) and lo > 1.0  # |40 - 4| / 4 on every step, promised 1
    assert any(r.startswith("decay: MASE 9.000") for r in v["reasons"]), v["reasons"]
    assert [b.get_height() for b in fm.plot_error_by_step(v).axes[0].patches] == pytest.approx([9.0] * 3)
    # one series of ten gone bad: MASE 1.8 is worse than promised by more than the drop allowed, but the
    # interval over series reaches down to the promise (the nine good ones): no decay claimed
    rows = logged(pm)
    rows.loc[rows["series"] == "s3", ["forecast", "lower", "upper"]] += 40.0
    perf = fm.assess(params(), as_served(pm), pm.history, fm.with_actuals(rows, labels_of(rows, true_value)))["performance"]
    assert perf["now"] == pytest.approx(1.8) and perf["interval_now"][0] <= 1.0 and not perf["decayed"]


def test_too_few_actuals_give_no_verdict_and_no_retrain():
    pm = fitted()
    rows = logged(pm, shift=40.0)
    cur = fm.with_actuals(rows, labels_of(rows.head(5), true_value))
    v = fm.assess(params(min_rows=500), as_served(pm), pm.history, cur)
    assert (v["status"], v["retrain"], v["decayed"]) == ("insufficient", False, False)
    assert "5 actuals fed back, fewer than monitor.min_rows 500" in v["reasons"][0]
    assert v["live"][0]["actuals"] == 5 and "level_drift" not in v
    assert fm.metrics_of(v)["actuals"] == 5 and fm.figures(v)["level_drift_share"] is None


def test_actuals_of_another_version_are_shown_live_but_do_not_judge_the_served_one():
    pm = fitted()
    rows = logged(pm, version="3")
    v = fm.assess(params(), as_served(pm), pm.history, fm.with_actuals(rows, labels_of(rows, true_value)))
    assert v["performance"] is None and not v["decayed"] and [r["version"] for r in v["live"]] == ["3"]
    assert v["live"][0]["actuals"] == 30 and "mase_promised" not in v["live"][0]
    assert "forecasts of version 4 in this window: its error is not judged" in " ".join(v["current"]["notes"])


# ---------------------------------------------------------------- drift of level and seasonality

def test_a_level_shift_in_three_of_ten_series_is_found_and_named():
    pm = fitted()
    months = range(24, 28)
    same = {s: truth(s, months) for s in STORES}
    v = fm.assess(params(), as_served(pm), pm.history, current(same))
    assert v["status"] == "ok" and not v["data_drift"] and v["level_drift"]["drifted"] == []
    assert all(r["z"] == pytest.approx(1.0) for r in v["level_drift"]["rows"])  # the trend: 4 a season, the scale 4
    shifted = {s: [x + (60.0 if s in ("s2", "s5", "s7") else 0.0) for x in xs] for s, xs in same.items()}
    v = fm.assess(params(), as_served(pm), pm.history, current(shifted))
    assert v["status"] == "drift" and v["data_drift"] and v["retrain"]
    assert sorted(v["level_drift"]["drifted"]) == ["s2", "s5", "s7"] and v["level_drift"]["share"] == pytest.approx(0.3)
    assert v["level_drift"]["rows"][0]["z"] == pytest.approx(16.0)  # (4 + 60) / 4
    assert "'s2' (z +16.0)" in v["reasons"][0] and "monitor.drift_share" in v["reasons"][0]
    assert fm.tables_of(v)["level"]["series"].head(3).tolist() == ["s2", "s5", "s7"]
    assert fm.figures(v)["level_drift_share"] == pytest.approx(0.3)
    bars = fm.plot_level(v).axes[0].patches
    assert len(bars) == 10 and sum(b.get_facecolor()[0] > 0.7 for b in bars) == 3  # the drifted in red


def test_seasonality_with_less_than_a_season_is_not_run_and_says_why():
    pm = fitted()
    v = fm.assess(params(), as_served(pm), pm.history, current({s: truth(s, range(24, 27)) for s in STORES}))
    se = v["seasonality"]
    assert not se["ran"] and se["series"] == 0 and se["share"] is None
    assert "no series has a full season (4 consecutive steps)" in se["reason"]
    assert any(r.startswith("seasonality not checked") for r in v["reasons"]) and v["level_drift"]["ran"]
    assert "season_drift_share" not in fm.metrics_of(v) and "not run" in fm.summary(v)


def test_a_flipped_seasonal_profile_is_found_with_a_full_season():
    pm = fitted()
    months = range(24, 28)
    flipped = ("s1", "s3", "s4")

    def values(s):  # the same level and trend, the season's profile negated (its mean kept)
        k = int(s[1:])
        return [100.0 * (k + 1) + 30 - 10 * (i % 4) + i if s in flipped else truth(s, [i])[0] for i in months]

    v = fm.assess(params(), as_served(pm), pm.history, current({s: values(s) for s in STORES}))
    se = v["seasonality"]
    assert se["ran"] and se["series"] == 10 and sorted(se["drifted"]) == list(flipped)
    corr = {r["series"]: r["correlation"] for r in se["rows"]}
    assert corr["s1"] < -0.9 and corr["s0"] > 0.99
    assert v["level_drift"]["drifted"] == []  # the mean seasonal change is unchanged
    assert v["status"] == "drift" and v["drift"]["share"] == pytest.approx(0.3)
    assert fm.metrics_of(v)["season_drift_share"] == pytest.approx(0.3)


# ---------------------------------------------------------------- a file of new observations

def test_a_file_is_scored_from_the_workspaces_data_before_it(tmp_path):
    p = params()
    table(stores=STORES)[["store", "month", "sales"]].to_csv(tmp_path / "s.csv", index=False)
    times = pd.date_range("2022-01-01", periods=4, freq="MS")
    new = pd.DataFrame([{"store": s, "month": t, "sales": true_value(s, t)} for s in STORES for t in times]
                       + [{"store": "zz", "month": t, "sales": 1.0} for t in times])  # a store never seen
    new.to_csv(tmp_path / "new.csv", index=False)
    pm = fitted()
    cur = fm.from_file(tmp_path, p, tmp_path / "new.csv")
    assert len(cur.frame) == 44 and cur.period == ("2022-01-01 00:00:00", "2022-04-01 00:00:00")
    assert fm.score(tmp_path, p, as_served(pm), cur) == (pytest.approx(1.0), "mase")  # off by 4, scale 4
    v = fm.check(tmp_path, p, as_served(pm), str(tmp_path / "new.csv"))
    perf = v["performance"]
    assert perf["actuals"] == 30 and perf["now"] == pytest.approx(1.0) and perf["at_training"] == pytest.approx(1.0)
    assert not perf["decayed"] and v["status"] == "ok"
    notes = " ".join(v["current"]["notes"])
    assert "10 observations lie more than the model's 3 steps" in notes and "1 series of the file have no history" in notes
    with pytest.raises(MonitorError, match="no column 'sales'"):
        fm.from_file(tmp_path, p, _without(tmp_path, new, "sales"))


def test_a_file_after_a_gap_is_forecast_the_steps_from_the_datas_end(tmp_path):
    p = params()
    table(stores=STORES)[["store", "month", "sales"]].to_csv(tmp_path / "s.csv", index=False)  # to 2021-12
    times = pd.date_range("2022-02-01", periods=2, freq="MS")  # steps 2 and 3 after the data's end: h is 3
    new = pd.DataFrame([{"store": s, "month": t, "sales": true_value(s, t)} for s in STORES for t in times])
    new.to_csv(tmp_path / "gap.csv", index=False)
    v = fm.check(tmp_path, p, as_served(fitted()), str(tmp_path / "gap.csv"))
    perf = v["performance"]
    assert perf["actuals"] == 20 and [s["step"] for s in perf["by_step"]] == [2, 3]
    assert perf["now"] == pytest.approx(1.0)  # the seasonal naive: off by 4 at every step, scale 4
    assert "lie more than" not in " ".join(v["current"]["notes"])


def _without(folder, frame, column):
    path = folder / f"no-{column}.csv"
    frame.drop(columns=column).to_csv(path, index=False)
    return path


def test_the_train_stage_keeps_the_backtests_promise_per_step():
    points = pd.DataFrame({"model": "m", "step": [1, 1, 2, 2], VALUE: [10.0, 12.0, 10.0, 10.0],
                           "yhat": [11.0, 10.0, 14.0, 10.0], "scale": 2.0})
    t = pd.DataFrame({"model": "m", "window": [1, 1, 2], ID: ["a", "b", "a"], "mase": [0.5, 1.5, 2.0]})
    out = stages.promise(t, points, "m", 3, [1.0, 1.0, 1.0])
    assert out["scaled_error_by_step"] == [pytest.approx(0.75), pytest.approx(1.0), None]
    assert out["actuals_by_step"] == [2, 2, 0] and out["mase"] == pytest.approx(1.5)  # windows 1.0 and 2.0
    assert out["coverage"] == pytest.approx(3 / 4)  # |error| / scale 0.5, 1, 2, 0 within 1


# ---------------------------------------------------------------- the served model's log and feedback

def test_answers_and_actuals_of_the_server_are_judged_by_the_monitor_run(app_for, served, tmp_path):  # noqa: F811
    with app_for(served=served) as c:
        rids = {s: post(c, {"series": {"store": s}}).json()["request_id"] for s in ("a", "b", "c")}
        items = [{"request_id": rids[s], "time": t, "value": true_value(s, t) + 50.0 * (s == "a")}
                 for s in ("a", "b", "c") for t in ("2022-01-01", "2022-02-01", "2022-03-01")]
        assert c.post("/feedback", json={"feedback": items}).json() == {"accepted": 9}
    assert len(predlog.read(tmp_path / "log")) == 9 and len(feedback.read(tmp_path / "log")) == 9
    p = config.parse({**RAW, "forecasting": {**RAW["forecasting"], "dynamic_columns": [], "static_columns": []},
                      "serve": {"log_dir": str(tmp_path / "log")}, "monitor": {"min_rows": 9, "drift_share": 0.3}})
    # `mlcycle monitoring run --from-log --days 1`'s path: the generic monitor loads the served version (app_for's
    # loader hands over `served`), its task's monitor judges, the verdict files are written
    v = monitor.run(tmp_path, p, None, 1.0, "models:/sales-forecast/4", dt.datetime.now(dt.UTC))
    assert monitor.read_verdict(tmp_path)["status"] == "drift"
    written = json.loads((tmp_path / "reports/metrics/monitor.json").read_text())
    assert written["level_drift_share"] == pytest.approx(1 / 3) and written["mase_now"] == pytest.approx(v["performance"]["now"])
    assert v["task"] == "forecast" and v["model"]["version"] == "4" and v["current"]["rows"] == 9
    assert v["current"]["source"] == "prediction log, last 1 days"
    (live,) = v["live"]
    assert (live["forecasts"], live["actuals"], live["series"]) == (3, 9, 3)
    # b and c: off by 4 (scale 4); a: by 54
    assert live["mase"] == pytest.approx((54 / 4 + 1 + 1) / 3) and live["coverage"] == pytest.approx(6 / 9)
    assert v["level_drift"]["drifted"] == ["a"] and v["status"] == "drift"
    assert v["performance"]["at_training"] is None  # saved without backtest figures: nothing promised, said so
    assert "saved without its backtest figures" in " ".join(v["current"]["notes"])
    assert "live v4: 3 forecasts, 9 actuals" in monitor.summary(v) and "'a' (z +13.5)" in v["reasons"][0]
