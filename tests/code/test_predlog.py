"""The prediction log writer: parts rolled by rows and by time, everything flushed on close,
a bounded queue."""

import datetime as dt
import time

import pandas as pd
import pyarrow as pa
import pytest

from mlcycle.predlog import Batch, LogFull, PredictionLog, read


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
    log = PredictionLog(tmp_path, max_queue_rows=5)  # writer not started: nothing drains the queue
    log._thread = type("Alive", (), {"is_alive": staticmethod(lambda: True)})()
    log.submit(batch(4))
    with pytest.raises(LogFull, match="4 rows wait"):
        log.submit(batch(4), timeout=0.2)
    assert log.pending == 4


def test_submit_refused_when_writer_not_running(tmp_path):
    with pytest.raises(LogFull, match="not running"):
        PredictionLog(tmp_path).submit(batch(1))
