"""The prediction log writer: parts rolled by rows and by time, everything flushed on close,
a bounded queue."""

import datetime as dt
import time

import pandas as pd
import pyarrow as pa
import pytest

from mlcycle.core.errors import LogFull, MonitorError
from mlcycle.serving.predlog import Batch, PredictionLog, answers_to_monitor, read


def batch(n: int, rid: str = "r", nulls: bool = False) -> Batch:
    X = pd.DataFrame({"distance": [float(i) for i in range(n)],
                      "carrier": pd.array([None if nulls else "UA"] * n, dtype="str")})
    return Batch(X, {"prediction": [1] * n, "score": [0.5] * n}, "3", rid, dt.datetime.now(dt.UTC))


def test_rows_roll_into_parts_and_close_flushes(tmp_path):
    log = PredictionLog(tmp_path, max_rows=10, roll_seconds=3600).start()
    for i in range(7):
        log.submit(batch(3, f"r{i}"))
    log.close()
    parts = sorted(tmp_path.glob("part-*.parquet"))
    assert len(parts) == 2  # 12 rows, then the 9 left are written by close()
    df = read(tmp_path)
    assert len(df) == 21 and df["request_id"].nunique() == 7
    assert list(df.columns[-4:]) == ["model_version", "request_id", "row", "ts"]
    assert df.groupby("request_id")["row"].apply(list).map(lambda r: r == [0, 1, 2]).all()
    assert str(df["ts"].dtype) == "datetime64[us, UTC]"
    assert not list(tmp_path.glob(".*.tmp"))


def test_parts_roll_by_time(tmp_path):
    log = PredictionLog(tmp_path, max_rows=1000, roll_seconds=0.2).start()
    log.submit(batch(2))
    deadline = time.monotonic() + 5
    while not list(tmp_path.glob("part-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(read(tmp_path)) == 2  # written while the server is still running
    log.close()


def test_schema_keeps_parts_alike(tmp_path):
    schema = pa.schema([pa.field("distance", pa.float64()), pa.field("carrier", pa.string())])
    log = PredictionLog(tmp_path, max_rows=2, schema=schema).start()
    log.submit(batch(2, "a", nulls=True))  # all-null strings would otherwise be typed null
    log.submit(batch(2, "b"))
    log.close()
    types = {str(pa.parquet.read_schema(p).field("carrier").type) for p in tmp_path.glob("part-*.parquet")}
    assert types == {"string"}
    assert read(tmp_path)["carrier"].isna().sum() == 2


def test_queue_is_bounded(tmp_path):
    log = PredictionLog(tmp_path, max_rows=4, max_queue_rows=5)  # writer not started: nothing takes a part
    log._thread = type("Alive", (), {"is_alive": staticmethod(lambda: True)})()
    log.submit(batch(4))  # a part of 4 rows, rolled: it waits for the writer
    with pytest.raises(LogFull, match="4 rows wait"):
        log.submit(batch(4), timeout=0.2)
    assert log.pending == 4


def test_submit_refused_when_writer_not_running(tmp_path):
    with pytest.raises(LogFull, match="not running"):
        PredictionLog(tmp_path).submit(batch(1))


def wait_until(cond, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_failed_write_is_kept_and_retried_not_dropped(tmp_path):
    folder = tmp_path / "log"
    log = PredictionLog(folder, max_rows=1000, roll_seconds=0.1).start()
    folder.rmdir()
    folder.write_text("a file where the log folder was")  # the folder replaced by a file
    for i in range(4):
        log.submit(batch(3, f"r{i}"))
    assert wait_until(lambda: log.error is not None)
    assert not log.healthy and log.pending == 12  # held, not dropped
    folder.unlink()
    folder.mkdir()
    assert wait_until(lambda: log.healthy and log.pending == 0)  # retried with backoff
    log.close()
    assert len(read(folder)) == 12 and log.rows_lost == 0


def test_close_spills_what_cannot_be_written_and_counts_what_is_lost(tmp_path):
    for fallback in (tmp_path / "spill", None):
        folder = tmp_path / f"log-{fallback is None}"
        log = PredictionLog(folder, roll_seconds=3600, fallback_dir=fallback).start()
        folder.rmdir()
        folder.write_text("not a folder")
        log.submit(batch(5))
        log.close()
        if fallback is not None:
            assert (log.rows_spilled, log.rows_lost) == (5, 0) and len(read(fallback)) == 5
        else:
            assert (log.rows_spilled, log.rows_lost) == (0, 5)


def test_spilled_parts_come_back_once_the_folder_is_writable(tmp_path):
    folder, spill = tmp_path / "log", tmp_path / "spill"
    log = PredictionLog(folder, max_rows=1000, roll_seconds=0.05, max_queue_rows=4, fallback_dir=spill).start()
    folder.rmdir()
    folder.write_text("not a folder")
    log.submit(batch(5, "a"))  # more than max_queue_rows held while failing: spilled
    assert wait_until(lambda: log.rows_spilled == 5)
    assert not log.healthy and log.pending == 0
    folder.unlink()
    folder.mkdir()
    assert wait_until(lambda: log.healthy)  # nothing held to retry with: the folder is probed
    assert wait_until(lambda: not list(spill.glob("part-*")))
    log.submit(batch(2, "b"))
    log.close()
    assert sorted(read(folder)["request_id"].unique()) == ["a", "b"] and not list(spill.glob("part-*"))


def test_parts_and_folder_are_private(tmp_path):
    folder = tmp_path / "new" / "log"
    log = PredictionLog(folder, roll_seconds=3600).start()
    log.submit(batch(1))
    log.close()
    part = next(folder.glob("part-*.parquet"))
    assert folder.stat().st_mode & 0o777 == 0o700 and part.stat().st_mode & 0o777 == 0o600


def test_column_inputs_match_frame_inputs(tmp_path):
    schema = pa.schema([pa.field("distance", pa.float64()), pa.field("carrier", pa.string())])
    log = PredictionLog(tmp_path, schema=schema).start()
    log.submit(batch(2, "frame", nulls=True))
    log.submit(Batch({"distance": [0.0, None], "carrier": [None, "UA"]}, {"prediction": [1, 1], "score": [0.5, 0.5]},
                     "3", "cols", dt.datetime.now(dt.UTC)))
    log.close()
    df = read(tmp_path)
    assert list(df.columns) == ["distance", "carrier", "prediction", "score", "route", "model_version", "request_id",
                                "row", "ts"]
    assert df["carrier"].isna().tolist() == [True, True, True, False]
    assert df["distance"].isna().tolist() == [False, False, False, True]


DISK_FULL = r'''
import datetime as dt, json, resource, signal, sys, time
from pathlib import Path
from mlcycle.serving.predlog import Batch, PredictionLog, read

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
root = Path(sys.argv[1])
log = PredictionLog(root / "log", max_rows=5, roll_seconds=0.1, fallback_dir=root / "fallback").start()
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (512, hard))  # "disk full": no file may grow past 512 bytes
for i in range(40):
    log.submit(Batch({"x": [float(i)]}, {"prediction": [1], "score": [0.5]}, "1", f"r{i}", dt.datetime.now(dt.UTC)))
    time.sleep(0.01)
deadline = time.monotonic() + 10
while log.healthy and time.monotonic() < deadline:
    time.sleep(0.05)
unhealthy = not log.healthy
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
deadline = time.monotonic() + 60
while (not log.healthy or log.pending) and time.monotonic() < deadline:
    time.sleep(0.1)
log.close()
print(json.dumps({"unhealthy_while_full": unhealthy, "healthy_after": log.error is None,
                  "on_disk": len(read(root / "log")), "lost": log.rows_lost}))
'''


def test_a_full_disk_loses_no_answered_row_and_marks_the_log_unhealthy(tmp_path):
    """The writer under a file-size limit (as on a full disk every write fails): the log reports itself
    unhealthy (the server answers 503), keeps the rows, and writes them all once space is back."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", DISK_FULL, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"unhealthy_while_full": True, "healthy_after": True, "on_disk": 40, "lost": 0}, got


def test_a_task_s_answers_of_the_window_are_read_and_an_empty_window_names_the_route(tmp_path):
    log = tmp_path / "data" / "predictions"
    with pytest.raises(MonitorError, match="prediction log data/predictions is empty: serve the model"):
        answers_to_monitor(tmp_path, "data/predictions", "the model", lambda df: df, 7, None, "/x answers")
    log.mkdir(parents=True)
    now = dt.datetime(2026, 1, 31, tzinfo=dt.UTC)
    ts = [now - dt.timedelta(days=d) for d in (10, 3, 1)]
    pd.DataFrame({"ts": ts, "v": [1, 2, 3]}).to_parquet(log / "part-1.parquet")

    def rows_of(df):  # the task's own rows: here those with v > 1, ts as UTC times
        return df[df["v"] > 1].assign(ts=pd.to_datetime(df["ts"], utc=True))

    folder, rows = answers_to_monitor(tmp_path, "data/predictions", "the model", rows_of, 7, now, "/x answers")
    assert folder == log and rows["v"].tolist() == [2, 3]
    with pytest.raises(MonitorError, match=r"no /x answers in the last 0.5 days of data/predictions; widen --days"):
        answers_to_monitor(tmp_path, "data/predictions", "the model", rows_of, 0.5, now, "/x answers")
