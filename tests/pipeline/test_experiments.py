"""`dvc exp run -S`: two queued experiments in parallel and one in a temporary copy, all recorded in MLflow."""

import pytest

from tests.conftest import SAMPLE, deep_merge, make_workspace, run

pytestmark = pytest.mark.slow

# what is checked is how experiments run and are recorded, not the model: the smallest flights sample
# (as tests/pipeline/test_reproducible.py runs it) and an evaluate stage without bootstrap intervals,
# slices or more than one partial-dependence plot (the roc_auc that `dvc exp show` lists stays)
PARAMS = deep_merge(SAMPLE, {"ingest": {"nycflights13": {"params": {"sample_frac": 0.015}}},
                             "eda": {"sample_rows": 2000}, "train": {"max_iter": 25},
                             "evaluate": {"bootstrap": 0, "explain_rows": 300, "pdp_features": 1, "slices": []}})


def test_two_queued_experiments_in_parallel(tmp_path):
    ws = make_workspace(tmp_path / "ws", params=PARAMS)
    run(["dvc", "repro"], ws, timeout=900)
    run("git add -A && git commit -qm baseline", ws)
    for n, it in (("fast", 10), ("slow", 15)):
        run(["dvc", "exp", "run", "--queue", "-n", n, "-S", f"train.max_iter={it}"], ws)
    out = run(["mlcycle", "pipeline", "queue", "--jobs", "2"], ws, timeout=1200).stdout
    assert "tracking server for the queue" in out
    assert out.count("Success") == 2, out
    rows = run(["dvc", "exp", "show", "--csv"], ws).stdout.splitlines()
    assert "model.roc_auc" in rows[0]
    assert {"fast", "slow"} <= {r.split(",")[0] for r in rows[1:]}
    import mlflow

    uri = f"sqlite:///{ws / 'mlruns' / 'mlflow.db'}"
    c = mlflow.MlflowClient(uri, registry_uri=uri)
    runs = c.search_runs([c.get_experiment_by_name("mlcycle").experiment_id])
    trained = {r.data.tags.get("mlcycle.dvc_experiment") for r in runs if r.data.tags.get("mlcycle.stage") == "train"}
    assert {"fast", "slow"} <= trained
    assert not [r for r in runs if r.info.status == "RUNNING"]  # parents end with their last stage
    params = {r.data.tags["mlcycle.dvc_experiment"]: r.data.params["train.max_iter"] for r in runs
              if r.data.tags.get("mlcycle.stage") == "train" and r.data.tags.get("mlcycle.dvc_experiment")}
    assert params == {"fast": "10", "slow": "15"}

    # --temp runs in a copy under .dvc/tmp/exps/ and still writes to this workspace's store
    out = run(["dvc", "exp", "run", "--temp", "-n", "tmpcopy", "-S", "train.max_iter=12"], ws, timeout=900).stdout
    assert "tmpcopy" in out
    runs = c.search_runs([c.get_experiment_by_name("mlcycle").experiment_id],
                         filter_string="tags.`mlcycle.dvc_experiment` = 'tmpcopy'")
    assert {r.data.tags.get("mlcycle.stage") for r in runs} >= {"train", "evaluate"}  # and the parent
    assert {r.data.params["train.max_iter"] for r in runs if r.data.tags.get("mlcycle.stage") == "train"} == {"12"}
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert not list((ws / ".dvc/tmp/exps").glob("*/mlruns"))  # no stray store inside the temp copy
