"""The default pipeline end to end with `dvc repro`, at full size, in a fresh copy of the workspace."""

import json
import re

import pytest

from tests.conftest import edit_params, make_workspace, run

pytestmark = pytest.mark.slow


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([a-z_]+)'", output))


@pytest.fixture(scope="module")
def full_ws(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("dvc") / "ws")
    first = run(["dvc", "repro"], ws, timeout=1500)
    return ws, first


def test_repro_runs_every_stage_and_meets_quality(full_ws):
    ws, first = full_ws
    assert ran(first.stdout) == {"ingest", "validate", "eda", "features", "train", "evaluate", "report"}
    ev = json.loads((ws / "reports/metrics/evaluate.json").read_text())
    # the bar for the default example, on the time-based holdout (Nov-Dec 2013)
    assert ev["model"]["roc_auc"] >= 0.70
    assert ev["model"]["roc_auc"] > ev["baseline"]["roc_auc"] + 0.03
    index = (ws / "reports/index.html").read_text()
    for stage in ("ingest", "validate", "eda", "features", "train", "evaluate"):
        assert (ws / "reports" / f"{stage}.html").exists() and f'href="{stage}.html"' in index


def test_status_clean_and_noop_repro(full_ws):
    ws, _ = full_ws
    assert "up to date" in run(["dvc", "status"], ws).stdout
    again = run(["dvc", "repro"], ws)
    assert ran(again.stdout) == set()


def test_metrics_and_plots_commands(full_ws):
    ws, _ = full_ws
    shown = run(["dvc", "metrics", "show", "--json"], ws).stdout
    assert "roc_auc" in shown
    run(["dvc", "plots", "show", "-o", "dvc_plots"], ws)
    assert (ws / "dvc_plots" / "index.html").exists()


def test_train_change_reruns_only_downstream(full_ws):
    ws, _ = full_ws
    edit_params(ws, {"train": {"learning_rate": 0.1, "max_iter": 150}})
    out = run(["dvc", "repro"], ws, timeout=900)
    assert ran(out.stdout) == {"train", "evaluate", "report"}
    assert "roc_auc" in run(["dvc", "metrics", "diff"], ws).stdout
