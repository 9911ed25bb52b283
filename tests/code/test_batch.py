"""`mlcycle serving score` touches only what it owns: --overwrite replaces only an earlier score
output (its marker, nothing else in it) and never the input, a folder holding the input or the
workspace; temporary folders and RUNNING runs of dead jobs are cleaned on the next start, a live
job's never; rows are written 0600 in 0700 folders. (Scoring itself: tests/serve/test_score.py.)"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pandas as pd
import psutil
import pytest

from mlcycle.core.errors import ScoreError
from mlcycle.serving import batch


def score_output(folder: Path) -> Path:
    """A folder as a score job leaves it."""
    (folder / batch.REJECTS).mkdir(parents=True)
    pd.DataFrame({"x": [1]}).to_parquet(folder / "part-00000-000.parquet")
    pd.DataFrame({"x": ["a"]}).to_parquet(folder / batch.REJECTS / "part-00000-000.parquet")
    (folder / batch.SUMMARY).write_text("{}")
    (folder / batch.MARKER).write_text(json.dumps({"written_by": batch.WRITTEN_BY, "job_id": "abc"}))
    return folder


@pytest.fixture
def place(tmp_path) -> tuple[Path, Path]:
    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True)
    src = tmp_path / "in" / "rows.parquet"
    src.parent.mkdir()
    pd.DataFrame({"x": [1]}).to_parquet(src)
    return root, src


@pytest.mark.parametrize("target", ["input", "input-folder", "input-parent", "workspace", "workspace-parent"])
def test_overwrite_never_replaces_the_input_or_what_holds_it(place, target):
    root, src = place
    output = {"input": src, "input-folder": src.parent, "input-parent": src.parent.parent, "workspace": root,
              "workspace-parent": root.parent}[target].resolve()
    with pytest.raises(ScoreError, match="--output .*(is the input or holds it|is the workspace or holds it)"):
        batch.check_output(output, src, root, overwrite=True)
    assert src.exists() and root.exists()


def test_overwrite_replaces_only_an_earlier_score_output_holding_nothing_else(place, tmp_path):
    root, src = place
    sibling = tmp_path / "results"  # a folder of the user's, not written by score
    sibling.mkdir()
    (sibling / "notes.txt").write_text("mine")
    with pytest.raises(ScoreError, match="exists; .*--overwrite"):
        batch.check_output(sibling, src, root, overwrite=False)
    with pytest.raises(ScoreError, match=r"not written by `mlcycle serving score` \(no .mlcycle-score.json"):
        batch.check_output(sibling, src, root, overwrite=True)
    a_file = tmp_path / "report.csv"
    a_file.write_text("a,b\n")
    with pytest.raises(ScoreError, match="not written by"):
        batch.check_output(a_file, src, root, overwrite=True)
    earlier = score_output(tmp_path / "scored")
    batch.check_output(earlier, src, root, overwrite=True)  # an earlier output: may be replaced
    (earlier / "summary-by-hand.xlsx").write_text("added later")
    with pytest.raises(ScoreError, match=r"holds files a score job does not write \(summary-by-hand.xlsx\)"):
        batch.check_output(earlier, src, root, overwrite=True)
    batch.check_output(tmp_path / "new", src, root, overwrite=False)  # a new folder: fine


def dead_owner() -> dict:
    """The owner record of a process that has ended."""
    proc = psutil.Popen([sys.executable, "-c", "pass"])
    who = {"host": batch.owner()["host"], "pid": proc.pid, "started": proc.create_time()}
    proc.wait()
    return who


def test_leftovers_of_dead_jobs_are_removed_and_their_runs_failed_but_a_live_job_is_untouched(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    exp_id = client.create_experiment("score")
    dead, me = dead_owner(), batch.owner()
    runs = {}
    for name, who in (("dead", dead), ("live", me)):
        tags = {"mlcycle.operation": "score", "mlcycle.job.host": who["host"], "mlcycle.job.pid": str(who["pid"]),
                "mlcycle.job.started": repr(who["started"])}
        runs[name] = client.create_run(exp_id, tags=tags).info.run_id
        folder = tmp_path / "out" / f".scored-{name}.tmp-{name}"
        folder.mkdir(parents=True)
        (folder / "part-00000-000.parquet").write_bytes(b"rows")
        (folder / batch.OWNER).write_text(json.dumps({"written_by": batch.WRITTEN_BY, **who}))
    stranger = tmp_path / "out" / ".other.tmp-x"  # not a score job's: no owner record
    stranger.mkdir()
    done = batch.clean_leftovers(tmp_path / "out", client, exp_id)
    assert not (tmp_path / "out" / ".scored-dead.tmp-dead").exists()
    assert (tmp_path / "out" / ".scored-live.tmp-live" / "part-00000-000.parquet").exists() and stranger.exists()
    assert client.get_run(runs["dead"]).info.status == "FAILED"
    assert "interrupted" in client.get_run(runs["dead"]).data.tags["mlcycle.error"]
    assert client.get_run(runs["live"]).info.status == "RUNNING"
    assert len(done) == 2 and any(runs["dead"] in d for d in done)


def test_rows_are_written_owner_only(tmp_path):
    path = tmp_path / "out" / ".scored.tmp-1" / batch.REJECTS / "part-00000-000.parquet"
    path.parent.parent.mkdir(parents=True)  # the job's folder, made by `batch.run`
    batch.write_parquet(pd.DataFrame({"email": ["a@example.com"]}), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_dead_process_is_told_from_a_live_one():
    assert batch.alive(batch.owner()) and not batch.alive(dead_owner())
    reused = {**batch.owner(), "started": batch.owner()["started"] - 3600}  # same pid, another process
    assert not batch.alive(reused)
