"""Data versioning: new batches through `mlcycle data add`, and `dvc push` then `dvc pull` into a
fresh clone restoring exactly the data of a commit (the default local remote in .dvc/config)."""

import hashlib
import json

import pandas as pd
import pytest

from tests.conftest import ROOT, SAMPLE, deep_merge, make_workspace, run

pytestmark = pytest.mark.slow


def md5s(root, rels):
    return {r: hashlib.md5((root / r).read_bytes()).hexdigest() for r in rels}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    base = tmp_path_factory.mktemp("versioning")
    ws = make_workspace(base / "ws", params=deep_merge(SAMPLE, {"ingest": {"nycflights13": {"params": {"sample_frac": 0.01}}},
                                                              "tracking": {"enabled": False}}))
    run(["dvc", "repro", "ingest"], ws)
    run("git add -A && git commit -q -m 'ingest'", ws)
    return ws


def test_a_bad_batch_is_refused_and_stored_nowhere(ws, tmp_path):
    flights = pd.read_parquet(ws / "data/raw/nycflights13/flights.parquet")
    bad = flights.head(1500).drop(columns=["carrier"])
    bad.loc[bad.index[:3], "distance"] = -5
    bad.to_parquet(tmp_path / "bad.parquet", index=False)
    proc = run(["mlcycle", "data", "add", "--input", str(tmp_path / "bad.parquet")], ws, check=False)
    assert proc.returncode == 1
    assert "column 'carrier' is missing" in proc.stdout and "column 'distance' has 3 value(s) below min 1" in proc.stdout
    assert "refused" in proc.stderr and "nothing was stored" in proc.stderr
    assert not (ws / "data/raw/batches").exists()
    assert (ws / "data/batches.jsonl").read_text() == (ROOT / "data/batches.jsonl").read_text()  # nothing recorded


def test_a_good_batch_is_stored_tracked_and_recorded_with_its_warnings(ws, tmp_path):
    flights = pd.read_parquet(ws / "data/raw/nycflights13/flights.parquet")
    batch = flights.tail(1500).copy()
    batch.loc[batch.index[:4], "carrier"] = "ZZ"  # a new carrier: a warning, not an error
    batch.to_parquet(tmp_path / "2013-12.parquet", index=False)
    proc = run(["mlcycle", "data", "add", "--input", str(tmp_path / "2013-12.parquet")], ws)
    assert "warning carrier: new_values, 4" in proc.stdout and "'ZZ'" in proc.stdout
    assert "git add data/raw/batches/2013-12.parquet.dvc" in proc.stdout
    stored = ws / "data/raw/batches/2013-12.parquet"
    assert stored.read_bytes() == (tmp_path / "2013-12.parquet").read_bytes()
    assert (ws / "data/raw/batches/2013-12.parquet.dvc").exists()
    assert "/2013-12.parquet" in (ws / "data/raw/batches/.gitignore").read_text()  # git ignores the data itself
    rec = json.loads((ws / "data/batches.jsonl").read_text().splitlines()[-1])
    assert rec["rows"] == 1500 and rec["md5"] == hashlib.md5(stored.read_bytes()).hexdigest()
    assert rec["file"] == "data/raw/batches/2013-12.parquet" and any("carrier: new_values" in w for w in rec["warnings"])
    assert "ZZ" not in (ws / "data/batches.jsonl").read_text()  # counts only in what git keeps: no values
    again = run(["mlcycle", "data", "add", "--input", str(tmp_path / "2013-12.parquet")], ws, check=False)
    assert again.returncode == 1 and "raw data is never overwritten" in again.stderr
    run("git add -A && git commit -q -m 'data: add batch 2013-12'", ws)


def test_push_then_pull_into_a_fresh_clone_restores_the_data(ws):
    files = [f"data/raw/nycflights13/{t}.parquet" for t in ("flights", "weather", "planes", "airports", "airlines")]
    files += ["data/raw/batches/2013-12.parquet"]
    files = [f for f in files if (ws / f).exists()]
    assert len(files) == 6, "run after the add-data test"
    before = md5s(ws, files)
    run(["dvc", "push"], ws)
    remote = ws.parent / "mlcycle-dvc-remote"  # .dvc/config: url = ../../mlcycle-dvc-remote
    assert remote.is_dir() and any(remote.rglob("*"))
    clone = ws.parent / "clone"
    run(["git", "clone", "-q", str(ws), str(clone)], ws.parent)
    assert not (clone / files[0]).exists()  # git holds no data
    targets = ["ingest", "data/raw/batches/2013-12.parquet.dvc"]  # what this commit has run and added
    run(["dvc", "pull", *targets], clone)
    assert md5s(clone, files) == before
    assert "up to date" in run(["dvc", "status", *targets], clone).stdout
