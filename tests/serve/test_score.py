"""`mlcycle serving score`: batch scoring of a multi-file folder on a real Dask cluster, the embedded local
one and an external scheduler with two worker processes started here, giving the pipeline's own
answers; bad input stopped before any output (a missing column, an unreadable file, an output that
exists) or set aside row by row (values of the wrong type in one file), never a half-written
output under the output's name."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import env, external_cluster, mlflow_client, run

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def inputs(served_ws, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """Three Parquet files of source rows (the model's training and validation inputs)."""
    spec = json.loads((served_ws / "data/processed/features.json").read_text())
    cols = [*spec["numeric"], *spec["categorical"]]
    rows = pd.concat([pd.read_parquet(served_ws / f"data/processed/{p}.parquet")[cols] for p in ("train", "valid")],
                     ignore_index=True)
    folder = tmp_path_factory.mktemp("score-in") / "flights"
    (folder / "sub").mkdir(parents=True)
    for i, chunk in enumerate(np.array_split(np.arange(len(rows)), 3)):
        target = folder / ("sub" if i == 2 else "") / f"rows-{i}.parquet"
        rows.iloc[chunk].to_parquet(target)
    (folder / "_ignored.parquet").write_bytes(b"not parquet")  # names starting with _ are skipped
    return folder, rows


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> str:
    """One external cluster (a `dask scheduler`, two `dask worker` processes) for the module's jobs."""
    with external_cluster(tmp_path_factory.mktemp("dask")) as address:
        yield address


def pipeline_scores(ws: Path, X: pd.DataFrame) -> np.ndarray:
    import mlflow.sklearn

    from mlcycle.core import scoring

    return scoring.scores(mlflow.sklearn.load_model(str(ws / "models" / "model")), X, "classification")


def score(ws: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "mlcycle", "serving", "score", "--no-progress", *args], ws, check=check, timeout=600)


def read_output(out: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted(out.glob("part-*.parquet"))], ignore_index=True)


def no_leftovers(out: Path) -> bool:
    return not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_a_folder_is_scored_on_the_local_cluster_as_the_pipeline_scores_it(served_ws, inputs, tmp_path):
    folder, rows = inputs
    out = tmp_path / "scored"
    proc = score(served_ws, "--input", str(folder), "--output", str(out))
    assert "3 file(s)" in proc.stdout and f"{len(rows):,} of {len(rows):,} rows scored" in proc.stdout
    got = read_output(out)
    assert len(got) == len(rows) and no_leftovers(out)
    # the prediction log's columns, inputs first
    assert list(got.columns[:len(rows.columns)]) == list(rows.columns)
    assert {"prediction", "score", "model_version", "request_id", "row", "ts"} <= set(got.columns)
    assert set(got["model_version"]) == {"1"}
    want = pipeline_scores(served_ws, rows)
    assert np.abs(got["score"].to_numpy() - want).max() <= 1e-6
    summary = json.loads((out / "_SUCCESS.json").read_text())
    assert summary["rows"] == summary["scored"] == len(rows) and summary["rejected"] == 0
    assert summary["model_uri"] == "models:/nycflights13-late-arrival/1"  # the alias pinned to its version
    assert summary["cluster"]["mlcycle.compute.workers"] == "2" and summary["partitions"] >= 3
    assert len(summary["files"]) == 3 and all(f["md5"] for f in summary["files"].values())
    run_ = mlflow_client(served_ws).get_run(summary["mlflow_run_id"])
    assert run_.info.status == "FINISHED" and run_.data.metrics["rows"] == len(rows)
    assert run_.data.tags["mlcycle.model_version"] == "1" and run_.data.tags["mlcycle.compute.dashboard"].startswith("http")
    # an output that exists is refused, and kept
    again = score(served_ws, "--input", str(folder), "--output", str(out), check=False)
    assert again.returncode == 1 and "exists" in again.stderr and len(read_output(out)) == len(rows)


def test_an_external_scheduler_gives_the_same_output(served_ws, inputs, cluster, tmp_path):
    folder, rows = inputs
    address = cluster
    out = tmp_path / "scored"
    score(served_ws, "--input", str(folder), "--output", str(out), "--scheduler", address)
    summary = json.loads((out / "_SUCCESS.json").read_text())
    assert summary["cluster"]["mlcycle.compute.scheduler"] == address
    assert summary["cluster"]["mlcycle.compute.workers"] == "2"
    got = read_output(out)
    assert len(got) == len(rows) and np.abs(got["score"].to_numpy() - pipeline_scores(served_ws, rows)).max() <= 1e-6


def test_a_missing_column_or_an_unreadable_file_stops_before_any_output(served_ws, inputs, tmp_path):
    folder, rows = inputs
    for name, write in [("no-distance.parquet", lambda p: rows.drop(columns=["distance"]).head(50).to_parquet(p)),
                        ("broken.parquet", lambda p: p.write_bytes(b"PAR1 this is not a parquet file"))]:
        bad = tmp_path / f"in-{name}"
        bad.mkdir()
        rows.head(100).to_parquet(bad / "a-good.parquet")
        write(bad / name)
        out = tmp_path / f"out-{name}"
        proc = score(served_ws, "--input", str(bad), "--output", str(out), check=False)
        assert proc.returncode == 1, proc.stdout
        assert name in proc.stderr and "nothing was scored" in proc.stderr
        if name.startswith("no-"):
            assert "'distance'" in proc.stderr
        assert not out.exists() and no_leftovers(out)


def test_wrong_values_in_one_file_are_set_aside_with_the_reason(served_ws, inputs, cluster, tmp_path):
    folder, rows = inputs
    csvs = tmp_path / "csv"
    csvs.mkdir()
    rows.head(300).to_csv(csvs / "a.csv", index=False)
    odd = rows.iloc[300:400].copy()
    odd["distance"] = odd["distance"].astype(object)
    odd.iloc[[3, 7], odd.columns.get_loc("distance")] = ["far", "12km"]
    odd.to_csv(csvs / "b.csv", index=False)
    out = tmp_path / "scored"
    proc = score(served_ws, "--input", str(csvs), "--output", str(out), "--scheduler", cluster)
    assert "2 rejected" in proc.stdout
    got, rejects = read_output(out), pd.read_parquet(out / "rejects")
    assert len(got) == 398 and len(rejects) == 2
    assert sorted(rejects["reason"]) == ["column 'distance': '12km' is not a number",
                                         "column 'distance': 'far' is not a number"]
    kept = pd.concat([rows.head(300), odd.drop(odd.index[[3, 7]])])
    kept["distance"] = kept["distance"].astype(float)
    assert np.abs(got["score"].to_numpy() - pipeline_scores(served_ws, kept)).max() <= 1e-6
    # more rejected rows than score.max_rejected_share: the job fails and writes nothing
    worse = tmp_path / "worse"
    worse.mkdir()
    odd.assign(distance="unknown").to_csv(worse / "c.csv", index=False)
    failed = score(served_ws, "--input", str(worse), "--output", str(tmp_path / "none"), "--scheduler", cluster,
                   check=False)
    assert failed.returncode == 1 and "score.max_rejected_share" in failed.stderr
    assert not (tmp_path / "none").exists() and no_leftovers(tmp_path / "none")


def test_overwrite_replaces_only_an_earlier_score_output_and_a_killed_job_is_cleaned_next_time(
        served_ws, inputs, cluster, tmp_path):
    """--overwrite on the input's folder, on a folder of the user's or on the workspace is refused
    and deletes nothing; on an earlier output it replaces it. A job killed mid-way (SIGKILL to the
    command) leaves its temporary folder and a RUNNING run: the next job into the same folder removes
    the one and ends the other FAILED. Outputs are 0700, their parts 0600; runs carry the git commit."""
    import os
    import signal
    import stat

    folder, rows = inputs
    small = tmp_path / "in"
    small.mkdir()
    rows.head(200).to_parquet(small / "rows.parquet")
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for target, words in [(small, "is the input or holds it"), (tmp_path, "is the input or holds it"),
                          (mine, "not written by `mlcycle serving score`"), (served_ws, "is the workspace or holds it")]:
        proc = score(served_ws, "--input", str(small), "--output", str(target), "--overwrite", "--scheduler", cluster,
                     check=False)
        assert proc.returncode == 1 and words in proc.stderr and "--output" in proc.stderr, proc.stderr
    assert (small / "rows.parquet").exists() and (mine / "notes.txt").read_text() == "keep me"
    assert (served_ws / "params.yaml").exists()
    out = tmp_path / "scored"
    score(served_ws, "--input", str(small), "--output", str(out), "--scheduler", cluster)
    first = json.loads((out / "_SUCCESS.json").read_text())
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.glob("part-*.parquet")} == {0o600}
    tags = mlflow_client(served_ws).get_run(first["mlflow_run_id"]).data.tags
    assert len(tags["mlflow.source.git.commit"]) == 40
    big = tmp_path / "big"
    big.mkdir()
    pd.concat([rows] * 100, ignore_index=True).to_csv(big / "rows.csv", index=False)
    proc = subprocess.Popen([sys.executable, "-m", "mlcycle", "serving", "score", "--no-progress", "--input", str(big),
                             "--output", str(out), "--overwrite", "--scheduler", cluster, "--blocksize", "256KiB"],
                            cwd=served_ws, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not list(tmp_path.glob(".scored.tmp-*/part-*.parquet")) and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the job ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    left = list(tmp_path.glob(".scored.tmp-*"))
    assert len(left) == 1
    client = mlflow_client(served_ws)
    killed = [r for r in client.search_runs([client.get_run(first["mlflow_run_id"]).info.experiment_id],
                                            "attributes.status = 'RUNNING'") if r.data.tags.get("mlcycle.operation") == "score"]
    assert len(killed) == 1
    again = score(served_ws, "--input", str(small), "--output", str(out), "--overwrite", "--scheduler", cluster)
    assert "removed .scored.tmp-" in again.stdout and "as FAILED" in again.stdout
    assert not left[0].exists() and no_leftovers(out)
    assert client.get_run(killed[0].info.run_id).info.status == "FAILED"
    assert json.loads((out / "_SUCCESS.json").read_text())["rows"] == 200


def test_a_worker_killed_mid_job_leaves_a_complete_output_or_none(served_ws, inputs, cluster, tmp_path):
    """SIGKILL to one of two worker processes while partitions are being scored: Dask retries its
    tasks (the job completes with every row once) or the job fails with nothing under the output."""
    import os
    import signal

    from distributed import Client

    _, rows = inputs
    big = tmp_path / "big"
    big.mkdir()
    many = pd.concat([rows] * 100, ignore_index=True)
    many.to_csv(big / "rows.csv", index=False)
    out = tmp_path / "scored"
    address = cluster  # the module's last test: the killed worker's nanny starts a new one
    proc = subprocess.Popen([sys.executable, "-m", "mlcycle", "serving", "score", "--no-progress", "--input", str(big),
                             "--output", str(out), "--scheduler", address, "--blocksize", "256KiB"],
                            cwd=served_ws, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not list(tmp_path.glob(".scored.tmp-*/part-*.parquet")) and proc.poll() is None:
        time.sleep(0.02)
    with Client(address, timeout=30) as c:
        pids = c.run(os.getpid)
    assert proc.poll() is None, "the job ended before a worker could be killed"
    os.kill(next(iter(pids.values())), signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=600)
    if proc.returncode == 0:
        got = read_output(out)
        assert len(got) == len(many) and got["request_id"].nunique() == len(list(out.glob("part-*.parquet")))
        assert json.loads((out / "_SUCCESS.json").read_text())["rows"] == len(many)
        assert np.abs(got["score"].to_numpy() - pipeline_scores(served_ws, many)).max() <= 1e-6
    else:
        assert "nothing was written" in stderr and not out.exists()
    assert no_leftovers(out)
