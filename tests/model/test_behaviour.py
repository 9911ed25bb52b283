"""Behaviour of the default model on real flights: quality above the baseline, the expected
direction for recent delays, and invariance to column order."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mlcycle.core import config, plugins, scoring
from mlcycle.tasks.tabular import features, train
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fitted():
    p = config.load(ROOT / "params.yaml")
    tables = plugins.load("examples/flights/flights.py:ingest", ROOT, "test")({"sample_frac": 0.3, "seed": 3})
    from mlcycle.core.tables import parse_time

    flights = parse_time(tables["flights"], p.data.time_column)
    hook = plugins.load(p.features.enrich.hook, ROOT, "test")
    table, spec, _ = features.build(flights, p.data, p.features, hook, tables)
    parts = features.split(table, spec, p.split, p.data.timezone)
    xy = {k: (v[spec.inputs], v[features.LABEL]) for k, v in parts.items()}
    res = train.fit(xy["train"], xy["valid"], spec, p.train.model_copy(update={"max_iter": 150}))
    return res, spec, xy


def test_beats_baseline_on_holdout(fitted):
    res, spec, xy = fitted
    X, y = xy["test"]
    y = train.encode_label(y, spec)
    model = roc_auc_score(y, scoring.scores(res.model, X, spec.task))
    base = roc_auc_score(y, scoring.scores(res.baseline, X, spec.task))
    assert model > 0.68 and model > base + 0.03


def test_recent_delays_raise_the_risk(fitted):
    res, spec, xy = fitted
    X = xy["test"][0].head(3000)
    calm = X.assign(recent_dep_delay=0.0, recent_late_share=0.0)
    stormy = X.assign(recent_dep_delay=90.0, recent_late_share=0.9)
    p_calm = scoring.scores(res.model, calm, spec.task)
    p_storm = scoring.scores(res.model, stormy, spec.task)
    assert np.mean(p_storm > p_calm) > 0.9


def test_column_order_does_not_matter(fitted):
    res, spec, xy = fitted
    X = xy["test"][0].head(500)
    shuffled = X[list(reversed(X.columns))]
    assert np.allclose(scoring.scores(res.model, X, spec.task), scoring.scores(res.model, shuffled, spec.task))


def test_unseen_category_is_scored(fitted):
    res, spec, xy = fitted
    X = xy["test"][0].head(50).assign(carrier="ZZ", dest="NEW")
    p = scoring.scores(res.model, X, spec.task)
    assert np.isfinite(p).all() and isinstance(X, pd.DataFrame)
