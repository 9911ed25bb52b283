"""Task forecast: params, the series checks (each finding naming its series), the regular grid, the
splits, the metrics against values computed by hand, the conformal intervals and the saved model's
answers, on tiny generated series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config, stats
from mlcycle.core.errors import DataError, ParamsError
from mlcycle.lifecycle import gate
from mlcycle.tasks.forecast import backtest, families, series
from mlcycle.tasks.forecast.model import ForecastModel
from mlcycle.tasks.forecast.series import ID, TIME, VALUE

RAW = {"data": {"path": "s.csv", "target": "sales", "task": "forecast", "time_column": "month"},
       "forecasting": {"id_columns": ["store"], "horizon": 3, "season_length": 4, "lags": [1, 4],
                       "windows": [], "dynamic_columns": ["promo"], "static_columns": ["region"]}}
NOW = pd.Timestamp("2030-01-01")


def params(**fc):
    return config.parse({**RAW, "forecasting": {**RAW["forecasting"], **fc}})


def table(n=24, stores=("a", "b", "c"), start="2020-01-01") -> pd.DataFrame:
    """Monthly sales of a few stores: a level per store, a season of 4 months, a promotion flag."""
    rows = []
    for k, s in enumerate(stores):
        for i, t in enumerate(pd.date_range(start, periods=n, freq="MS")):
            rows.append({"store": s, "month": t, "sales": 100.0 * (k + 1) + 10 * (i % 4) + i, "promo": i % 2,
                         "region": "north" if k % 2 else "south"})
    return pd.DataFrame(rows)


def check(df, **fc):
    p = params(**fc)
    return series.check(df, p.data, p.forecasting, now=NOW)


# ---------------------------------------------------------------- params

def test_the_section_is_required_and_its_errors_name_the_key():
    with pytest.raises(ParamsError, match="the `forecasting` section must name id_columns and horizon"):
        config.parse({"data": RAW["data"]})
    with pytest.raises(ParamsError, match=r"forecasting\.horizon"):
        params(horizon=0)
    with pytest.raises(ParamsError, match="freq 'monthly' is not a pandas frequency"):
        params(freq="monthly")
    with pytest.raises(ParamsError, match=r"static_columns and dynamic_columns both list \['promo'\]"):
        params(static_columns=["promo"])
    with pytest.raises(ParamsError, match=r"forecasting.id_columns lists \['sales'\], which is data.target"):
        params(id_columns=["sales"])
    with pytest.raises(ParamsError, match="data.time_column must name"):
        config.parse({**RAW, "data": {**RAW["data"], "time_column": None}})


def test_mase_is_a_lower_is_better_gate_metric_of_the_forecast_kind():
    assert "mase" in stats.GATE_METRICS and "mase" in stats.LOWER_IS_BETTER and "smape" in stats.LOWER_IS_BETTER
    assert gate.task_of({"mase": 0.5, "rmse": 3.0}) == "forecast" and gate.primary_metric({"mase": 0.5, "rmse": 3.0}) == "mase"
    p = config.parse({**RAW, "gate": {"max_relative_drop": 0.01}}).gate
    worse = gate.decide({"mase": 0.9, "smape": 0.1, "rmse": 1.0}, {"mase": 0.8, "smape": 0.1, "rmse": 1.0}, p, "2", "1",
                        baseline={"mase": 1.0})
    better = gate.decide({"mase": 0.7, "smape": 0.1, "rmse": 1.0}, {"mase": 0.8, "smape": 0.1, "rmse": 1.0}, p, "2", "1",
                         baseline={"mase": 1.0})
    assert not worse.promote and better.promote and better.metric == "mase"


# ---------------------------------------------------------------- the series checks

def test_a_clean_table_passes_with_the_step_and_season_inferred():
    f = check(table(), season_length=None)
    assert f.errors == [] and f.warnings == []
    assert f.stats["freq"] == "MS" and f.stats["season_length"] == 12 and f.stats["series"] == 3


def test_findings_name_the_series():
    df = table()
    dup = df[(df["store"] == "b") & (df["month"] == "2020-03-01")]
    gap = (df["store"] == "c") & df["month"].isin(pd.to_datetime(["2020-05-01", "2020-06-01"]))
    future = pd.DataFrame([{"store": "a", "month": pd.Timestamp("2031-01-01"), "sales": 1.0, "promo": 0, "region": "south"}])
    short = table(n=5, stores=("tiny",))
    df = pd.concat([df[~gap], dup, future, short], ignore_index=True)
    df.loc[(df["store"] == "a") & (df["month"] == "2020-02-01"), "region"] = "east"
    f = check(df)
    text = "\n".join(f.errors + f.warnings)
    assert any("duplicate (series, time) pairs in series 'b'" in e for e in f.errors), f.errors
    assert any("dated after now" in e and "'a'" in e for e in f.errors), f.errors
    assert any("static column 'region'" in e and "'a'" in e for e in f.errors), f.errors
    assert any("2 missing steps in 1 series: 'c'" in w for w in f.warnings), f.warnings
    assert any("fewer than" in w and "'tiny'" in w for w in f.warnings), f.warnings
    assert "'b'" not in next(w for w in f.warnings if "missing steps" in w)
    with pytest.raises(DataError, match="duplicate"):
        f.enforce()
    assert "ERROR" in f.summary() and "duplicate" in text


def test_irregular_steps_missing_columns_and_text_targets_are_errors():
    df = table()
    df.loc[(df["store"] == "a") & (df["month"] == "2020-04-01"), "month"] = pd.Timestamp("2020-04-15")
    assert any("times off the step MS" in e and "'a'" in e for e in check(df, freq="MS").errors)
    assert "columns ['promo']" in check(table().drop(columns="promo")).errors[0]
    assert "must hold numbers" in check(table().astype({"sales": "str"})).errors[0]


def test_regular_fills_gaps_by_interpolation_and_marks_them():
    df = table(n=8, stores=("a",))
    df = df[df["month"] != "2020-03-01"]
    p = params()
    frame = series.regular(series.standardise(df, p.data, p.forecasting), "MS", p.forecasting)
    assert len(frame) == 8 and frame[series.FILLED].sum() == 1
    filled = frame[frame[series.FILLED]].iloc[0]
    assert filled[TIME] == pd.Timestamp("2020-03-01")
    assert filled[VALUE] == pytest.approx((frame[VALUE].iloc[1] + frame[VALUE].iloc[3]) / 2)


# ---------------------------------------------------------------- splits, metrics, intervals

def frame_of(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({ID: k, TIME: pd.date_range("2020-01-01", periods=len(v), freq="MS"), VALUE: v})
                      for k, v in values.items()], ignore_index=True)


def test_cut_takes_the_same_positions_from_each_series_end():
    f = frame_of({"a": list(range(10)), "b": list(range(100, 106))})
    history, actuals = backtest.cut(f, 2, 3)
    assert actuals.groupby(ID)[VALUE].apply(list).to_dict() == {"a": [5, 6, 7], "b": [101, 102, 103]}
    assert history.groupby(ID)[VALUE].max().to_dict() == {"a": 4, "b": 100}


def test_metrics_against_values_computed_by_hand():
    history = frame_of({"a": [1.0, 2.0, 3.0, 5.0], "b": [10.0, 10.0, 10.0, 10.0]})
    actuals = pd.DataFrame({ID: ["a", "a", "b", "b"], TIME: pd.to_datetime(["2020-05-01", "2020-06-01"] * 2),
                            VALUE: [6.0, 8.0, 10.0, 10.0]})
    fc = actuals[[ID, TIME]].assign(yhat=[5.0, 5.0, 12.0, 8.0])
    t = backtest.per_series(actuals, {"m": fc}, history, season=1).set_index(ID)
    # a: errors 1 and 3; in-sample naive MAE (1 + 1 + 2) / 3
    assert t.loc["a", "mase"] == pytest.approx(2.0 / (4 / 3))
    assert t.loc["a", "smape"] == pytest.approx((1 / 11 + 3 / 13) / 2)
    assert t.loc["a", "rmse"] == pytest.approx(np.sqrt((1 + 9) / 2))
    # b is flat: its scale falls back to the mean absolute value, 10
    assert t.loc["b", "mase"] == pytest.approx(2.0 / 10.0)
    agg = backtest.aggregate(t.reset_index().assign(model="m"), actuals, {"m": fc})["m"]
    assert agg["rmse"] == pytest.approx(np.sqrt((1 + 9 + 4 + 4) / 4)) and agg["series"] == 2


def test_seasonal_naive_repeats_the_last_season():
    f = frame_of({"a": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]})
    out = families.SeasonalNaive("MS", 4).forecast(f, 6)
    assert out["yhat"].tolist() == [5.0, 6.0, 7.0, 8.0, 5.0, 6.0]
    assert out[TIME].iloc[0] == pd.Timestamp("2020-09-01")


def test_conformal_widths_cover_the_backtest_share_asked_for():
    rng = np.random.default_rng(0)
    n = 400
    points = pd.DataFrame({"model": "m", "step": np.tile([1, 2], n // 2), VALUE: rng.normal(0, 1, n),
                           "yhat": 0.0, "scale": 1.0})
    w = backtest.conformal(points, "m", 2, 0.9)
    inside = [(points.loc[points["step"] == k, VALUE].abs() <= w[k - 1]).mean() for k in (1, 2)]
    assert all(0.9 <= s <= 0.93 for s in inside), inside
    assert 1.4 < w[0] < 2.0  # about the normal's 95th percentile, 1.645


def test_choose_takes_the_lowest_mean_over_windows():
    t = pd.DataFrame({"model": ["x", "x", "y", "y"], "window": [1, 2, 1, 2], ID: "a", "mase": [0.5, 1.5, 0.9, 0.9],
                      "smape": 0.0, "rmse": 0.0})
    best, means = backtest.choose(t, "mase")
    assert best == "y" and means["x"] == pytest.approx(1.0)


# ---------------------------------------------------------------- the saved model's answers

def model(dynamic=False) -> ForecastModel:
    p = params(dynamic_columns=["promo"] if dynamic else [], static_columns=[])
    frame = series.standardise(table(), p.data, p.forecasting)
    return ForecastModel(families.SeasonalNaive("MS", 4), frame, [1.0, 1.0, 1.0], p.forecasting, "month", "sales", 4)


def test_the_model_forecasts_known_series_and_a_callers_history():
    m = model()
    out = m.predict(None, pd.DataFrame({"store": ["a", "b"], "horizon": [2, 2]}))
    assert list(out.columns) == ["series", "time", "step", "forecast", "lower", "upper"]
    assert len(out) == 4 and (out["lower"] < out["forecast"]).all() and (out["forecast"] < out["upper"]).all()
    history = pd.DataFrame({"store": "new", "month": pd.date_range("2021-01-01", periods=8, freq="MS"),
                            "sales": [1.0, 2, 3, 4, 5, 6, 7, 8]})
    own = m.predict(None, history)
    assert own["series"].unique().tolist() == ["new"] and own["forecast"].tolist() == [5.0, 6.0, 7.0]
    assert own["time"].iloc[0] == pd.Timestamp("2021-09-01")


def test_the_model_refuses_what_it_cannot_forecast():
    with pytest.raises(ValueError, match=r"series \['zzz'\] were not in the training data"):
        model().predict(None, pd.DataFrame({"store": ["zzz"]}))
    with pytest.raises(ValueError, match="needs the series id columns"):
        model().predict(None, pd.DataFrame({"shop": ["a"]}))
    with pytest.raises(ValueError, match=r"beyond the 3 steps"):
        model().predict(None, pd.DataFrame({"store": ["a"], "horizon": [5]}))
    with pytest.raises(ValueError, match=r"future values of \['promo'\]"):
        model(dynamic=True).predict(None, pd.DataFrame({"store": ["a"]}))


# ---------------------------------------------------------------- mlcycle init --task forecast

def test_init_infers_the_series_columns_and_the_step():
    section, notes = series.infer_section(table(), {"target": "sales", "time_column": "month"})
    assert section == {"forecasting": {"id_columns": ["store"], "horizon": 12, "freq": "MS"},
                       "validate": {"min_rows": 3}, "monitor": {"min_rows": 3}}  # a month of the 3 stores
    assert any("['store'] (3 series" in n for n in notes)
    ended = pd.concat([table(), table(n=10, stores=("old",))])  # a store no longer observed at the end
    assert series.infer_section(ended, {"target": "sales", "time_column": "month"})[0]["monitor"] == {"min_rows": 3}
    weekly = table().assign(month=lambda d: d.groupby("store").cumcount().map(
        lambda i: pd.Timestamp("2024-01-07") + pd.Timedelta(weeks=i)))
    assert series.infer_section(weekly, {"target": "sales", "time_column": "month"})[0]["forecasting"]["freq"] == "W-SUN"
    with pytest.raises(DataError, match="--time-column"):
        series.infer_section(table(), {"target": "sales"})
    with pytest.raises(DataError, match="write forecasting.id_columns yourself"):
        series.infer_section(table(stores=("a",)).drop(columns=["store", "region"]).assign(promo=1.5),
                             {"target": "sales", "time_column": "month"})
