"""A small replay (`mlcycle monitoring simulate`) on the flights example: 5% of the flights, two months of training
(in New York time, `simulate.timezone`), one month fed. The full-size replay is `make simulate` (its
figures are in docs/monitoring.md); the replay of a user's own table is in tests/pipeline/test_user_data.py."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SAMPLE, edit_params, make_workspace, run

pytestmark = pytest.mark.slow


def test_small_replay_writes_the_report_in_its_own_workspace(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    edit_params(ws, {"simulate": {"train_periods": 2, "periods": 1, "sample_frac": 0.05},
                     "eda": SAMPLE["eda"], "train": {"max_iter": 30},
                     "evaluate": {"bootstrap": 0, "explain_rows": 500, "pdp_features": 1},
                     "gate": {"minimums": {"roc_auc": 0.5}}})  # 2,700 training flights: a weak but real model
    out = run(["mlcycle", "monitoring", "simulate"], ws, timeout=1200)
    assert "reports/simulation.html" in out.stdout
    res = json.loads((ws / "reports/simulation.json").read_text())
    [month] = res["periods"]
    assert month["period"] == "2013-03" and month["champion"] == "v1"
    assert month["metric"] == "roc_auc" and 0.55 < month["champion_score"] < 0.95
    assert month["champion_score"] == month["frozen_score"]  # the first month: both are version 1
    assert month["status"] in ("ok", "drift") and month["monitor_run"]
    html = (ws / "reports/simulation.html").read_text()
    assert "Month by month" in html and "2013-03" in html and "data:image/png;base64," in html
    assert "month-by-month replay of data/raw/nycflights13/flights.parquet" in html
    # the replay has its own store and registry; the workspace's own store was never created
    work = ws / "build" / "simulation"
    assert (work / "mlruns" / "mlflow.db").exists() and not (ws / "mlruns").exists()
    assert res["audit"][0]["action"] == "gate-promote" and res["audit"][0]["to_version"] == "1"
    import mlflow

    uri = f"sqlite:///{work / 'mlruns' / 'mlflow.db'}"
    c = mlflow.MlflowClient(uri, uri)
    mr = c.get_run(month["monitor_run"])
    assert mr.data.tags["mlcycle.stage"] == "monitor" and mr.data.tags["mlcycle.monitor.model_version"] == "1"
