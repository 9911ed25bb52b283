"""Task forecast end to end on a small generated table of monthly series (a trend, a season, a
promotion known in advance, one series with missing months, one too short): `mlcycle init --data ...
--task forecast` infers the series and the step, `dvc repro` runs the forecast notebooks, validate
names the gap and the short series, the backtest compares the three families, the chosen model is
registered as champion and beats the seasonal naive on the held-out horizon, and the saved model
forecasts a known series and a caller's own history."""

import json

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import edit_params, make_workspace, run

pytestmark = pytest.mark.slow


def series_table(seed: int = 0) -> pd.DataFrame:
    """Five stores' monthly sales over six years: level and trend per store, a yearly season, +25 in a
    promotion month (known in advance); store 's2' misses three months, store 'short' has ten."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, store in enumerate(["s0", "s1", "s2", "s3", "short"]):
        n = 10 if store == "short" else 72
        months = pd.date_range("2018-01-01", periods=n, freq="MS")
        promo = rng.integers(0, 2, n)
        sales = (200 + 60 * k + (1.5 + k) * np.arange(n) + 30 * np.sin(2 * np.pi * (months.month - 1) / 12)
                 + 25 * promo + rng.normal(0, 2, n))
        for i in range(n):
            if store == "s2" and i in (30, 31, 32):
                continue
            rows.append({"store": store, "month": months[i].strftime("%Y-%m-%d"), "sales": round(float(sales[i]), 2),
                         "promo": int(promo[i])})
    return pd.DataFrame(rows)


def test_a_forecast_runs_through_init_and_dvc_repro(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    (ws / "data" / "series").mkdir(parents=True)
    series_table().to_csv(ws / "data" / "series" / "sales.csv", index=False)
    out = run(["mlcycle", "init", "--data", "data/series/sales.csv", "--target", "sales", "--task", "forecast",
               "--time-column", "month", "--force"], ws).stdout
    params = yaml.safe_load((ws / "params.yaml").read_text())
    assert params["task"] == "forecast" and params["data"]["task"] == "forecast"
    assert params["forecasting"]["id_columns"] == ["store"] and params["forecasting"]["freq"] == "MS", out
    assert params["forecasting"]["horizon"] == 12
    edit_params(ws, {"ingest": {}, "validate": {"min_rows": 100},
                     "forecasting": {"horizon": 6, "dynamic_columns": ["promo"], "backtest_windows": 2,
                                     "max_iter": 60, "lags": [1, 12], "windows": [3]}})
    run(["git", "add", "-A"], ws)
    run(["git", "commit", "-qm", "forecast params"], ws)
    run(["dvc", "repro"], ws, timeout=900)

    # validate: the gap and the short series, by name
    findings = json.loads((ws / "reports/validate_findings.json").read_text())["series"]
    assert any("3 missing steps in 1 series: 's2'" in w for w in findings["warnings"]), findings
    assert any("'short'" in w and "left out" in w for w in findings["warnings"]), findings
    assert findings["errors"] == []

    # features: the gap filled, the short series left out
    frame = pd.read_parquet(ws / "data/processed/series.parquet")
    assert sorted(frame["unique_id"].unique()) == ["s0", "s1", "s2", "s3"]
    assert int(frame.loc[frame["unique_id"] == "s2", "filled"].sum()) == 3 and len(frame) == 4 * 72

    # train: every family on both backtest windows; the chosen one has the lowest mean MASE
    train = json.loads((ws / "reports/metrics/train.json").read_text())
    assert set(train["backtest"]) == {"seasonal_naive", "ets", "global"}
    assert train["chosen"] == min(train["backtest"], key=lambda m: train["backtest"][m]["mase"])
    search = json.loads((ws / "models/search.json").read_text())
    assert {(t["model"], t["window"]) for t in search["trials"]} >= {("global", "1"), ("global", "2"), ("ets", "mean")}

    # evaluate: the model beats the seasonal naive on the held-out horizon; intervals and worst series
    ev = json.loads((ws / "reports/metrics/evaluate.json").read_text())
    assert ev["model"]["mase"] < ev["baseline"]["mase"], ev
    assert ev["model"]["series"] == 4 and 0.0 <= ev["model"]["coverage"] <= 1.0
    assert ev["worst_series"][0]["unique_id"] in {"s0", "s1", "s2", "s3"}
    decision = json.loads((ws / "reports/gate_decision.json").read_text())
    assert decision["task"] == "forecast" and decision["metric"] == "mase" and decision["promote"], decision
    assert any(c["criterion"] == "mase beats baseline" and c["passed"] for c in decision["criteria"])

    # the registered champion forecasts a known series (future promotions sent) and a caller's history
    reg = json.loads((ws / "models/registered.json").read_text())
    assert reg["version"] == "1"
    model = mlflow.pyfunc.load_model(str(ws / "models/model"))
    # models/model learned from everything before the held-out horizon and holds the whole history
    # (to December 2023): it forecasts from January 2024
    future = pd.DataFrame({"store": "s0", "month": pd.date_range("2024-01-01", periods=6, freq="MS"), "promo": 1})
    known = model.predict(future)
    assert len(known) == 6 and known["series"].eq("s0").all() and known["time"].iloc[0] == pd.Timestamp("2024-01-01")
    assert (known["lower"] <= known["forecast"]).all() and (known["forecast"] <= known["upper"]).all()
    history = series_table(seed=1).query("store == 's1'").assign(store="new")
    later = pd.DataFrame({"store": "new", "month": pd.date_range("2024-01-01", periods=6, freq="MS"), "promo": 0})
    own = pd.concat([history, later], ignore_index=True)
    answer = model.predict(own)
    assert answer["series"].eq("new").all() and len(answer) == 6
    with pytest.raises(Exception, match="not in the training data"):
        model.predict(future.assign(store="nowhere"))
    with pytest.raises(Exception, match="are not the 6 steps after their history"):
        model.predict(future.assign(month=pd.date_range("2023-07-01", periods=6, freq="MS")))


def test_the_replay_keeps_every_month_and_retrains_on_a_level_shift(tmp_path):
    """`mlcycle monitoring simulate` on a forecast: 70 months train version 1, then two months are fed.
    The first moves as before (no retraining; its rows still join the data: a forecast's history),
    the second jumps by 300 in three of the four stores (level drift named, retraining, the gate)."""
    ws = make_workspace(tmp_path / "ws")
    (ws / "data" / "series").mkdir(parents=True)
    table = series_table()
    last = table["month"] == "2023-12-01"
    table.loc[last & table["store"].isin(["s0", "s1", "s3"]), "sales"] += 300.0
    table.to_csv(ws / "data" / "series" / "sales.csv", index=False)
    run(["mlcycle", "init", "--data", "data/series/sales.csv", "--target", "sales", "--task", "forecast",
         "--time-column", "month", "--force"], ws)
    params = yaml.safe_load((ws / "params.yaml").read_text())  # a month's batch: the 4 stores observed at the end
    assert params["validate"]["min_rows"] == 4 and params["monitor"]["min_rows"] == 4
    assert yaml.safe_load((ws / "schemas" / "sales.yaml").read_text())["min_rows"] == 4
    edit_params(ws, {"ingest": {},
                     "forecasting": {"horizon": 6, "backtest_windows": 1, "families": ["seasonal_naive", "global"],
                                     "max_iter": 40, "lags": [1, 12], "windows": [3]},
                     "simulate": {"period": "month", "train_periods": 70, "periods": 2}})
    run(["git", "add", "-A"], ws)
    run(["git", "commit", "-qm", "forecast replay params"], ws)
    out = run(["mlcycle", "monitoring", "simulate"], ws, timeout=1500)
    assert "reports/simulation.html" in out.stdout, out.stdout[-2000:]
    res = json.loads((ws / "reports/simulation.json").read_text())
    first, second = res["periods"]
    assert (first["period"], second["period"]) == ("2023-11", "2023-12") and first["metric"] == "mase"
    assert first["champion"] == "v1" and first["champion_score"] == first["frozen_score"]
    assert 0 < first["champion_score"] < 3, first  # a month like the history: forecast about as well as promised
    assert not first["retrain"] and first["level_drift_share"] == 0.0, first
    assert second["retrain"] and second["level_drift_share"] == 0.75, second
    assert any("level" in r and "'s0'" in r for r in second["reasons"]), second["reasons"]
    assert second["champion_score"] > 5 * first["champion_score"]  # the jump was not forecast
    assert second["new_version"] == "2" and second["gate"] in ("promoted", "rejected")
    # both months joined the replay's data, the first without retraining
    work = ws / "build" / "simulation"
    added = [json.loads(line) for line in (work / "data/batches.jsonl").read_text().splitlines() if line.startswith("{")]
    assert [b["rows"] for b in added] == [4, 4]
    assert res["replay"]["bar"][0] == "level_drift_share"
    html = (ws / "reports/simulation.html").read_text()
    assert "Month by month" in html and "level_drift_share" in html and "data:image/png;base64," in html
