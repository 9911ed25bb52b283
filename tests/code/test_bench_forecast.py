"""bench/bench_forecast.py's direct baseline (mlforecast, statsmodels and numpy called plainly) must do
the train step's work: the same backtest metrics per family, the same choice and the same conformal
widths as `stages.train`, or the benchmark would compare different work. Three generated series."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlcycle.core import config
from mlcycle.tasks.forecast import stages
from mlcycle.tasks.forecast.series import ID, TIME, VALUE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("bench_forecast", ROOT / "bench" / "bench_forecast.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def frame(n=40) -> pd.DataFrame:
    """Three monthly series of different lengths: a level, a trend, a season of 4 months and noise."""
    rng = np.random.default_rng(0)
    parts = []
    for k, length in enumerate((n, n - 5, n + 7)):
        i = np.arange(length)
        parts.append(pd.DataFrame({ID: f"s{k}", TIME: pd.date_range("2020-01-01", periods=length, freq="MS"),
                                   VALUE: 100.0 * (k + 1) + (k + 1) * i + 10 * np.sin(i * np.pi / 2)
                                   + rng.normal(0, 2, length)}))
    return pd.concat(parts, ignore_index=True)


def test_direct_does_the_train_steps_work(bench):
    cfg = config.parse({"data": {"path": "s.csv", "target": "sales", "task": "forecast", "time_column": "month"},
                        "forecasting": {"id_columns": ["store"], "horizon": 3, "season_length": 4, "max_iter": 20,
                                        "max_history": 24, "backtest_windows": 2}})
    f = frame()
    trained = stages.train(f, {"freq": "MS", "season_length": 4}, cfg)
    result, _ = bench.direct(f, "MS", 4, cfg.forecasting)
    s = trained["summary"]
    ours = s[s["window"] == "mean"].set_index("model")
    assert sorted(result["means"].index) == sorted(ours.index) == ["ets", "global", "seasonal_naive"]
    for family in ours.index:
        for metric in ("mase", "smape", "rmse"):
            assert result["means"].loc[family, metric] == pytest.approx(ours.loc[family, metric], rel=1e-9), (family, metric)
    assert result["chosen"] == trained["chosen"]
    assert result["widths"] == pytest.approx(trained["widths"], rel=1e-9)
    assert result["baseline_widths"] == pytest.approx(trained["baseline_widths"], rel=1e-9)
