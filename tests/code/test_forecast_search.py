"""Task forecast: the search over the global model's lags and settings (train.search) on tiny
generated monthly series: trials scored on the backtest windows only, repeatable with the seed, the
same on a Dask cluster as in process, and its params errors naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlcycle.core import config
from mlcycle.core.errors import ParamsError
from mlcycle.stages import search as shared
from mlcycle.tasks.forecast import backtest, families, search, stages
from tests.code.test_forecast import RAW, table

SPACE = {"max_iter": [10, 30], "learning_rate": [0.05, 0.2]}  # few iterations: seconds per trial
WINDOWS = 2  # backtest windows


def setting(method: str = "random", engine: str = "serial", trials: int = 3, seed: int = 42, **more):
    return config.parse({**RAW, "forecasting": {**RAW["forecasting"], "backtest_windows": WINDOWS},
                         "train": {"seed": seed, "search": {"method": method, "engine": engine, "trials": trials,
                                                            "space": SPACE, **more}}})


def prepared(cfg, values=None):
    """The features stage's series of three stores, 30 months each, and its info (step, season 4)."""
    return stages.features(cfg, Path("."), table(n=30) if values is None else values)


def trials_of(found) -> list[tuple]:
    return [(t.number, t.params, t.state, t.score, t.fold_scores) for t in found.trials]


def test_without_a_search_the_params_are_those_of_params_yaml():
    cfg = setting(method="none")
    frame, info = prepared(cfg)
    fc, found = search.tune(frame, info, cfg)
    assert fc is cfg.forecasting and found is None


def test_random_search_scores_each_candidate_on_the_backtest_and_keeps_the_lowest():
    cfg = setting()
    frame, info = prepared(cfg)
    fc, found = search.tune(frame, info, cfg)
    assert len(found.trials) == 3 and [t.number for t in found.trials] == [0, 1, 2]
    sets = search.choices(cfg.forecasting, 4)
    for t in found.trials:
        assert t.state == "COMPLETE" and np.isfinite(t.score) and len(t.fold_scores) == cfg.forecasting.backtest_windows
        assert t.score == pytest.approx(np.mean(t.fold_scores))
        assert 10 <= t.params["max_iter"] <= 30 and 0.05 <= t.params["learning_rate"] <= 0.2
        assert t.params["lags"] in sets["lags"] and t.params["windows"] in sets["windows"]
    best = min(found.trials, key=lambda t: t.score)
    assert found.best is best
    assert {k: getattr(fc, k) for k in best.params} == best.params  # the returned params carry the best settings
    assert fc.horizon == cfg.forecasting.horizon and fc.families == cfg.forecasting.families
    # its score is the global family's mean over the windows of the comparison's own backtest
    table_, _ = backtest.run(frame, {"global": lambda h: families.fitted("global", h, "MS", 4, fc)}, 3, 3, WINDOWS, 4)
    assert backtest.choose(table_, "mase")[1]["global"] == pytest.approx(best.score)
    assert trials_of(search.tune(frame, info, cfg)[1]) == trials_of(found)  # the seed repeats the search
    assert search.candidates(setting(), 4) == [t.params for t in found.trials]
    assert search.candidates(setting(seed=7), 4) != [t.params for t in found.trials]


def test_the_holdout_is_never_seen():
    cfg = setting(trials=2)
    df = table(n=30)
    frame, info = prepared(cfg, df)
    found = search.tune(frame, info, cfg)[1]
    last = df.groupby("store").cumcount(ascending=False)
    changed = df.assign(sales=df["sales"].where(last >= 3, df["sales"] * 10))  # the last horizon of each series
    again = search.tune(*prepared(cfg, changed), cfg)[1]
    assert trials_of(again) == trials_of(found)
    before = df.assign(sales=df["sales"].where(last != 3, df["sales"] * 10))  # the last step of the latest window
    moved = search.tune(*prepared(cfg, before), cfg)[1]
    assert [t.score for t in moved.trials] != [t.score for t in found.trials]


def test_optuna_minimises_within_the_choices_and_ranges():
    cfg = setting(method="optuna", trials=3)
    frame, info = prepared(cfg)
    fc, found = search.tune(frame, info, cfg)
    sets = search.choices(cfg.forecasting, 4)
    assert [t.state for t in found.trials] == ["COMPLETE"] * 3
    for t in found.trials:
        assert 10 <= t.params["max_iter"] <= 30 and t.params["lags"] in sets["lags"]
        assert t.params["difference"] in (True, False) and t.params["windows"] in sets["windows"]
    assert found.best.score == min(t.score for t in found.trials) and fc.lags == found.best.params["lags"]


def test_the_time_limit_stops_new_candidates_but_the_first_runs():
    cfg = setting(trials=3, timeout_minutes=1e-6)
    found = search.tune(*prepared(cfg), cfg)[1]
    assert len(found.trials) == 1 and found.timed_out and found.trials[0].state == "COMPLETE"


def test_search_json_holds_the_trials_lower_is_better_and_the_families(tmp_path):
    cfg = setting(trials=2)
    frame, info = prepared(cfg)
    fc, found = search.tune(frame, info, cfg)
    summary = backtest.summary(backtest.run(frame, {"seasonal_naive": lambda h: families.fitted(
        "seasonal_naive", h, "MS", 4, fc)}, 3, 3, WINDOWS, 4)[0])
    search.write(found, tmp_path / "search.json", summary, "global")
    doc = json.loads((tmp_path / "search.json").read_text())
    assert doc["lower_is_better"] and doc["score"] == "mase" and doc["scored_by"] == "backtest"
    assert doc["best_trial"] == found.best.number and doc["chosen"] == {"model": "global", **found.best.params}
    assert len(doc["trials"]) == 2 and {r["model"] for r in doc["families"]} == {"seasonal_naive"}
    runs = shared.trial_runs(doc)
    assert [m[0] for m in runs[0]["metrics"]] == ["fold_backtest_mase"] * WINDOWS + ["backtest_mase"]
    assert f"best backtest mase {found.best.score:.4f} with lags {search.label(found.best.params['lags'])}" in search.takeaway(found)
    shown = search.table(found)
    assert shown["backtest_mase"].is_monotonic_increasing and shown["lags"].iloc[0] == ",".join(
        str(v) for v in found.best.params["lags"])


def test_params_errors_name_the_key():
    with pytest.raises(ParamsError, match="'lag' cannot be searched"):
        setting(space={"lag": [1, 12]})
    with pytest.raises(ParamsError, match=r"\['max_leaf_nodes'\] are not searched for a forecast; it searches max_iter"):
        setting(space={"max_leaf_nodes": [4, 12]})
    with pytest.raises(ParamsError, match="forecasting.families does not list global"):
        config.parse({**RAW, "forecasting": {**RAW["forecasting"], "families": ["ets"]},
                      "train": {"search": {"method": "random"}}})


@pytest.mark.slow
def test_on_a_dask_cluster_the_trials_are_the_serial_ones():
    serial = setting(trials=3)
    frame, info = prepared(serial)
    expected = search.tune(frame, info, serial)[1]
    cfg = setting(trials=3, engine="dask")
    fc, found = search.tune(frame, info, cfg, config.ComputeParams(workers=2, dashboard=False))
    assert found.cluster["mlcycle.compute.workers"] == "2"
    assert [(t.number, t.params, t.state) for t in found.trials] == [(t.number, t.params, t.state) for t in expected.trials]
    assert np.allclose([t.score for t in found.trials], [t.score for t in expected.trials], rtol=0, atol=1e-9)
    assert fc == expected.fc
