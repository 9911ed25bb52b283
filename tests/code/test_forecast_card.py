"""The forecast task's model card (`tasks/forecast/card.py`): the generic card around the backtest,
the held-out horizon against the seasonal naive, the worst series and the intervals, with limitations
read from its own figures; built from the files a tiny forecast's stages write, or from the evaluate
stage's own results when it wrote none."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlcycle.core import tasks
from mlcycle.core.paths import Paths
from mlcycle.lifecycle import card, gate
from mlcycle.stages import evaluate
from mlcycle.tasks.forecast import card as forecast_card
from mlcycle.tasks.forecast import model as forecast_model
from mlcycle.tasks.forecast import stages
from tests.code.test_forecast import params, table

SECTIONS = ("## Backtest: the families compared", "## The held-out horizon: model against seasonal naive",
            "## The worst series", "## The intervals")
TABLE_CARD = ("## Features", "## Metrics on the holdout", "## Slices and fairness", "## Explanations")


@pytest.fixture(scope="module")
def forecast(tmp_path_factory):
    """Three monthly stores and one too short to keep, through features, train and evaluate as the
    stage notebooks run them (every file written), with the gate's decision."""
    ws = tmp_path_factory.mktemp("forecast")
    paths = Paths(ws)
    p = params(backtest_windows=2, families=["seasonal_naive", "ets"])
    df = table(stores=("a", "b", "c", "tiny"))
    df = df[(df["store"] != "tiny") | (df["month"] < "2020-06-01")]
    frame, info = stages.features(p, ws, df=df)
    stages.write_features(frame, info, paths.processed, paths.metrics("features"))
    trained = stages.train(frame, info, p)
    stages.save(trained, p, paths.model, paths.baseline)
    stages.write_train_metrics(trained, paths.metrics("train"), p.forecasting.metric)
    stages.write_search(trained, paths.search, p.forecasting.metric)
    model, meta = forecast_model.load(paths.model)
    baseline, _ = forecast_model.load(paths.baseline)
    ev = stages.evaluate(model, baseline, frame, p, int(info["season_length"]))
    evaluated = stages.metrics_document(ev, p.forecasting.coverage, meta["model"])
    evaluate.write(evaluated, {}, paths.metrics("evaluate"), paths.plots)
    stages.write_reports(paths, ev)
    decision = gate.decide(ev["model"]["metrics"], None, p.gate, None, None, "tracking disabled",
                           baseline=ev["baseline"]["metrics"])
    gate.write(decision, paths.metrics("gate"), paths.gate_decision)
    return SimpleNamespace(ws=ws, paths=paths, p=p, ev=ev, evaluated=evaluated, decision=decision,
                           chosen=trained["chosen"], widths=trained["widths"])


def card_of(f, tmp_path, evaluated=None, worst=None):
    """The card's record and its markdown and HTML: from the workspace's files, or (given evaluate's
    document) from the stage's own results, as its notebook passes them with `write = False`."""
    docs = None if evaluated is None else forecast_card.card_documents(
        evaluated, f.ev["worst"] if worst is None else worst, gate.document(f.decision))
    record = card.collect(f.paths, f.p, documents=docs)
    written = card.write(record, tmp_path)
    return record, written["md"].read_text(), written["html"].read_text()


def test_the_forecast_task_names_its_card():
    own = tasks.get("forecast").card()
    assert callable(own) and own.__module__ == "mlcycle.tasks.forecast.card"


def test_the_card_of_a_forecast_is_the_generic_card_with_its_sections(forecast, tmp_path):
    f = forecast
    record, md, html = card_of(f, tmp_path)
    assert f.chosen == "ets" and record["model"]["family"].startswith("ets: exponential smoothing")
    assert f"| model family | {record['model']['family']} |" in md
    for section in ("## Intended use", "## Training data", "## Parameters", *SECTIONS, "## Known limitations",
                    "## Gate decision", "## Audit history"):
        assert section in md, section
    for section in TABLE_CARD:
        assert section not in md, section
    assert "Features</h2>" not in html and "Slices and fairness</h2>" not in html
    assert "<h2>The held-out horizon: model against seasonal naive</h2>" in html
    m, b = f.ev["model"]["metrics"], f.ev["baseline"]["metrics"]
    assert m["mase"] < 0.5 < b["mase"]  # the trending, seasonal stores: smoothing far ahead of the naive
    assert (f"| ets (model) | {m['mase']:.4f} | {m['smape']:.4f} | {m['rmse']:.4f} | {m['coverage']:.4f} | 3 |" in md)
    assert f"| seasonal_naive (baseline) | {b['mase']:.4f} | {b['smape']:.4f} | {b['rmse']:.4f} |" in md
    assert "| ets (chosen) |" in md and "2 window(s), 3 steps apart" in md
    assert [row[0] for row in record["task"]["sections"][3]["table"]["rows"]] == [1, 2, 3]  # a half-width per step
    assert f"| 3 | {f.widths[2]:.4f} |" in md
    assert "| left out, too short | 1 series shorter than 8 steps: 'tiny' |" in md
    assert "**promoted**" in md
    lims = record["limitations"]
    assert any("'tiny'" in line and "left out" in line for line in lims), lims
    assert any("at most 3 steps ahead" in line for line in lims), lims
    assert not any("sensitive attribute" in line for line in lims)  # no table limitations


def test_coverage_below_nominal_is_a_limitation_only_when_it_is_low(forecast, tmp_path):
    f = forecast
    nominal = f.evaluated["nominal_coverage"]
    fine = {**f.evaluated, "model": {**f.evaluated["model"], "coverage": nominal - 0.01}}
    low = {**f.evaluated, "model": {**f.evaluated["model"], "coverage": nominal - 0.2}}
    record, md, _ = card_of(f, tmp_path / "fine", fine)
    assert not any("below nominal" in line for line in record["limitations"]), record["limitations"]
    record, md, _ = card_of(f, tmp_path / "low", low)
    assert any(line.startswith(f"the {nominal:.0%} intervals hold {nominal - 0.2:.1%} of the held-out values, "
                               "20.0% below nominal") for line in record["limitations"]), record["limitations"]
    assert "too narrow" in md.split("## Known limitations")[1]


def test_series_that_lose_to_the_seasonal_naive_are_named(forecast, tmp_path):
    f = forecast
    record, _, _ = card_of(f, tmp_path / "beats", f.evaluated)
    assert f.evaluated["beats_baseline_share"] == 1.0
    assert not any("does not beat" in line for line in record["limitations"])
    worst = f.ev["worst"].copy()
    worst.loc[0, "baseline_mase"] = worst.loc[0, "mase"] / 2  # the worst series now loses to the naive
    losing = {**f.evaluated, "beats_baseline_share": 2 / 3}
    record, md, _ = card_of(f, tmp_path / "loses", losing, worst)
    uid = worst.loc[0, "unique_id"]
    line = next(line for line in record["limitations"] if "does not beat" in line)
    assert line.startswith("it does not beat the seasonal naive on 33% of the series (1 of 3) by MASE")
    assert f"'{uid}' (MASE {worst.loc[0, 'mase']:.2f}, seasonal naive {worst.loc[0, 'baseline_mase']:.2f})" in line
    assert sum(f"'{u}'" in line for u in worst["unique_id"]) == 1  # the others beat it: not named
