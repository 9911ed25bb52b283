"""The search on a real Dask cluster (`train.search.engine: dask`): random search gives the serial
search's trials and choice on the embedded local cluster and on an external scheduler with two
worker processes; Optuna's trials share one study there (unique numbers, the space respected, the
pruner's verdicts recorded) and the best trial is the one chosen."""

import numpy as np
import pytest

from mlcycle.core import config
from mlcycle.tasks.tabular import search
from tests.code.test_search import prepared
from tests.conftest import external_cluster

pytestmark = pytest.mark.slow

SPACE = {"learning_rate": [0.05, 0.2], "max_leaf_nodes": [4, 12]}


def setting(method: str, engine: str, trials: int = 4):
    return prepared(search={"method": method, "trials": trials, "cv_folds": 2, "space": SPACE, "engine": engine})


def same_trials(a, b) -> bool:
    return [(t.number, t.params, t.state) for t in a.trials] == [(t.number, t.params, t.state) for t in b.trials] and \
        np.allclose([t.score for t in a.trials], [t.score for t in b.trials], rtol=0, atol=1e-12)


def test_random_search_on_the_clusters_repeats_the_serial_search(tmp_path):
    xy, spec, serial_params = setting("random", "serial")
    serial = search.select(xy["train"], xy["valid"], spec, serial_params)
    _, _, params = setting("random", "dask")
    local = search.select(xy["train"], xy["valid"], spec, params, config.ComputeParams(workers=2, dashboard=True))
    assert local.cluster["mlcycle.compute.workers"] == "2" and local.cluster["mlcycle.compute.dashboard"].startswith("http")
    assert same_trials(local, serial) and local.chosen() == serial.chosen()
    with external_cluster(tmp_path) as address:
        remote = search.select(xy["train"], xy["valid"], spec, params, config.ComputeParams(scheduler=address))
    assert remote.cluster["mlcycle.compute.scheduler"] == address and remote.cluster["mlcycle.compute.workers"] == "2"
    assert same_trials(remote, serial) and remote.chosen() == serial.chosen()


def test_optuna_trials_share_one_study_on_the_cluster():
    xy, spec, params = setting("optuna", "dask", trials=6)
    sel = search.select(xy["train"], xy["valid"], spec, params, config.ComputeParams(workers=2))
    assert sorted(t.number for t in sel.trials) == list(range(6))  # one study: numbers never repeat
    for t in sel.trials:
        assert 0.05 <= t.params["learning_rate"] <= 0.2 and 4 <= t.params["max_leaf_nodes"] <= 12
        assert t.state in ("COMPLETE", "PRUNED")
    assert len({tuple(sorted(t.params.items())) for t in sel.trials}) == 6  # each task its own sampler: no repeats
    best = sel.best
    assert best is not None and sel.params.learning_rate == best.params["learning_rate"]
    assert best.score == max(t.score for t in sel.trials if t.state == "COMPLETE")
