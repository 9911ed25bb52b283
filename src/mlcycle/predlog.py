"""The prediction log: every scored row, written off the request path as Parquet parts.

A request hands its rows to `PredictionLog.submit` (no disk work there); one writer thread collects
them and writes a part when it holds `max_rows` rows or its first row is `roll_seconds` old. Parts
are written under a temporary name and renamed, so a reader never sees half a file:

    <log_dir>/part-<UTC start>-<pid>-<seq>.parquet

Each row holds the model's input columns, `prediction`, `score` (positive-class probability,
regression value or top-class probability), `proba_<class>` for multiclass models,
`model_version`, `request_id`, `row` (position in its request) and `ts` (UTC time of scoring).
`pandas.read_parquet(log_dir)` reads them all.

Memory is bounded: at most `max_queue_rows` rows wait for the writer; beyond that `submit` waits
(the request slows down rather than a row being lost). `close()` writes everything still held.
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

_STOP = object()
_TIMEOUT = object()


class LogFull(Exception):
    """The writer is too far behind: the rows could not be queued in time."""


@dataclass
class Batch:
    """The rows of one request: inputs and outputs, each with len == n rows."""

    inputs: pd.DataFrame
    outputs: dict[str, list]
    model_version: str
    request_id: str
    ts: dt.datetime

    def __len__(self) -> int:
        return len(self.inputs)

    def frame(self) -> pd.DataFrame:
        n = len(self.inputs)
        df = self.inputs.reset_index(drop=True).copy()
        for k, v in self.outputs.items():
            df[k] = v
        df["model_version"] = self.model_version
        df["request_id"] = self.request_id
        df["row"] = range(n)
        return df


class PredictionLog:
    """A background writer of Parquet parts (see the module docstring)."""

    def __init__(self, log_dir: Path, max_rows: int = 100_000, roll_seconds: float = 60.0,
                 max_queue_rows: int = 200_000, schema=None):
        self.dir = Path(log_dir)
        self.max_rows = max_rows
        self.roll_seconds = roll_seconds
        self.max_queue_rows = max_queue_rows
        self.schema = schema  # optional pyarrow schema of the input columns, so parts agree
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0  # rows submitted and not yet taken by the writer
        self._cond = threading.Condition()
        self._seq = 0
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.parts_written = 0
        self.error: BaseException | None = None

    def start(self) -> PredictionLog:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        return self

    def submit(self, batch: Batch, timeout: float = 30.0) -> None:
        """Queue one request's rows; waits while the queue is full, LogFull after `timeout` s."""
        if self._thread is None or not self._thread.is_alive():
            raise LogFull(f"the prediction log writer is not running ({self.error!r})")
        n = len(batch)
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending > 0 and self._pending + n > self.max_queue_rows:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LogFull(f"{self._pending} rows wait for the prediction log writer")
                self._cond.wait(left)
            self._pending += n
        self._queue.put(batch)

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self, timeout: float = 120.0) -> None:
        """Write every row still queued or held, then stop the writer."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        held: list[Batch] = []
        rows = 0
        first = 0.0
        while True:
            wait = None if not held else max(0.0, first + self.roll_seconds - time.monotonic())
            try:
                item = self._queue.get(timeout=wait) if wait is None or wait > 0 else _TIMEOUT
            except queue.Empty:
                item = _TIMEOUT
            if item is _STOP:
                if held:
                    self._write(held)
                return
            if item is not _TIMEOUT:
                with self._cond:
                    self._pending -= len(item)
                    self._cond.notify_all()
                if not held:
                    first = time.monotonic()
                held.append(item)
                rows += len(item)
            if held and (rows >= self.max_rows or time.monotonic() - first >= self.roll_seconds):
                self._write(held)
                held, rows = [], 0

    def _write(self, batches: list[Batch]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            frame = pd.concat([b.frame() for b in batches], ignore_index=True)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            ts = [b.ts for b in batches for _ in range(len(b))]
            table = table.append_column("ts", pa.array(ts, type=pa.timestamp("us", tz="UTC")))
            if self.schema is not None:
                fields = [self.schema.field(n) if n in self.schema.names else table.schema.field(n)
                          for n in table.column_names]
                table = table.cast(pa.schema(fields))
            stamp = batches[0].ts.strftime("%Y%m%dT%H%M%S%fZ")
            self._seq += 1
            name = f"part-{stamp}-{os.getpid()}-{self._seq:06d}.parquet"
            tmp = self.dir / f".{name}.tmp"
            pq.write_table(table, tmp)
            os.replace(tmp, self.dir / name)
            self.rows_written += len(frame)
            self.parts_written += 1
        except Exception as exc:  # keep serving; the error shows in /ready and the server log
            self.error = exc
            import logging

            logging.getLogger("mlcycle.serve").exception("prediction log: a part could not be written")



def read(log_dir: Path) -> pd.DataFrame:
    """Every row of the prediction log (all parts), oldest part first."""
    parts = sorted(Path(log_dir).glob("part-*.parquet"))
    if not parts:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
