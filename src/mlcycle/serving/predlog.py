"""The prediction log: every scored row, written off the request path as Parquet parts.

A request hands its rows to `PredictionLog.submit` (no disk work there); one writer thread collects
them as columns (lists, not one DataFrame per request) and writes a part when it holds `max_rows`
rows or its first row is `roll_seconds` old. Parts are written under a temporary name and renamed,
so a reader never sees half a file:

    <log_dir>/part-<UTC start>-<pid>-<seq>.parquet

Each row holds the model's input columns, `prediction`, `score` (positive-class probability,
regression value or top-class probability), `proba_<class>` for multiclass models,
`model_version` (the version that scored the row), `route` (`champion`, `canary` or `shadow`: see
`serving/release.py`), `request_id`, `row` (position in its request) and `ts` (UTC time of scoring).
A shadow row has the same request id and position as the champion's row it shadows.
`pandas.read_parquet(log_dir)` reads them all. The folder is created 0700 and parts 0600: they
hold request inputs.

Nothing answered is dropped:
- a part that cannot be written stays in memory and is retried with backoff (0.5 s doubling up to
  30 s); meanwhile `healthy` is False (the server answers /ready and /predict with 503);
- rows held beyond `max_queue_rows` while failing, and rows still unwritten at `close()`, are
  spilled to `fallback_dir` (parts of the same shape); the next successful write moves spilled
  parts back into the log folder;
- rows that could be written nowhere are counted in `rows_lost` and logged as an error.

Memory is bounded: at most `max_queue_rows` rows wait for the writer; beyond that `submit` waits
(the request slows down rather than a row being lost). `close()` writes everything still held.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlcycle.core.errors import LogFull, MonitorError

_STOP = object()
_TIMEOUT = object()
log = logging.getLogger("mlcycle.serve")
BACKOFF = (0.5, 30.0)  # first retry delay and the largest, seconds


@dataclass
class Batch:
    """The rows of one request: inputs (a DataFrame, or columns as lists) and outputs, each n rows."""

    inputs: pd.DataFrame | dict[str, list]
    outputs: dict[str, list]
    model_version: str
    request_id: str
    ts: dt.datetime
    route: str = "champion"  # champion | canary | shadow (serving/release.py)
    positions: list[int] | None = None  # each row's position in its request (None: 0..n-1)

    def __len__(self) -> int:
        if isinstance(self.inputs, pd.DataFrame):
            return len(self.inputs)
        return len(next(iter(self.inputs.values()))) if self.inputs else len(next(iter(self.outputs.values()), ()))

    def columns(self) -> dict[str, list]:
        """Every log column of these rows as a list (`ts` last), in the order the parts hold them."""
        n = len(self)
        if isinstance(self.inputs, pd.DataFrame):
            cols = {str(c): self.inputs[c].tolist() for c in self.inputs.columns}
        else:
            cols = {k: list(v) for k, v in self.inputs.items()}
        for k, v in self.outputs.items():
            cols[k] = list(v)
        cols["route"] = [self.route] * n
        cols["model_version"] = [self.model_version] * n
        cols["request_id"] = [self.request_id] * n
        cols["row"] = list(self.positions) if self.positions is not None else list(range(n))
        cols["ts"] = [self.ts] * n
        return cols

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.columns())


class Held:
    """Rows accumulated as columns: a list per column, padded with None where a batch lacks one."""

    def __init__(self):
        self.cols: dict[str, list] = {}
        self.n = 0
        self.first_ts: dt.datetime | None = None
        self.since = 0.0  # monotonic time of the first row

    def add(self, batch: Batch) -> None:
        cols = batch.columns()
        n = len(batch)
        if not self.n:
            self.first_ts, self.since = batch.ts, time.monotonic()
        if cols.keys() != self.cols.keys():
            for k in cols:
                if k not in self.cols:
                    self.cols[k] = [None] * self.n
            for k in self.cols:
                if k not in cols:
                    cols[k] = [None] * n
        for k, v in cols.items():
            self.cols[k].extend(v)
        self.n += n

    def __len__(self) -> int:
        return self.n


class PredictionLog:
    """A background writer of Parquet parts (see the module docstring)."""

    def __init__(self, log_dir: Path, max_rows: int = 100_000, roll_seconds: float = 60.0,
                 max_queue_rows: int = 200_000, schema=None, fallback_dir: Path | None = None):
        self.dir = Path(log_dir)
        self.fallback_dir = Path(fallback_dir) if fallback_dir else None
        self.max_rows = max_rows
        self.roll_seconds = roll_seconds
        self.max_queue_rows = max_queue_rows
        self.schema = schema  # optional pyarrow schema of the input columns, so parts agree
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0  # rows submitted and not yet taken by the writer
        self._held = 0  # rows the writer holds (taken, not yet on disk)
        self._cond = threading.Condition()
        self._seq = 0
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.parts_written = 0
        self.rows_spilled = 0  # written to fallback_dir
        self.rows_lost = 0  # written nowhere (counted and logged)
        self.failures = 0  # consecutive failed writes
        self.error: BaseException | None = None  # the last write error, None once a write succeeds

    def start(self) -> PredictionLog:
        make_private_dir(self.dir)
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
        """Rows not yet on disk: queued for the writer or held by it."""
        return self._pending + self._held

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def healthy(self) -> bool:
        """The writer runs and its last write succeeded."""
        return self.running and self.error is None

    def close(self, timeout: float = 120.0) -> None:
        """Write every row still queued or held (spilling what cannot be written), then stop the writer.
        Rows still unwritten after `timeout` seconds are counted in `rows_lost` and logged."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.rows_lost += self.pending
            log.error("prediction log: %d rows were not written within %.0f s of shutdown", self.pending, timeout)
        self._thread = None

    # ------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        held = Held()
        retry_at = 0.0
        while True:
            now = time.monotonic()
            if self.error is not None:  # retry the held rows, or (all spilled) probe the folder
                wait = max(0.0, retry_at - now)
            elif not held.n:
                wait = None
            else:
                wait = max(0.0, held.since + self.roll_seconds - now)
            try:
                item = self._queue.get(timeout=wait) if wait is None or wait > 0 else _TIMEOUT
            except queue.Empty:
                item = _TIMEOUT
            if item is _STOP:
                self._drain(held)
                return
            if item is not _TIMEOUT:
                held.add(item)
                with self._cond:
                    self._pending -= len(item)
                    self._held = held.n
                    self._cond.notify_all()
            now = time.monotonic()
            if not held.n:
                if self.error is not None and now >= retry_at:
                    if self._probe():
                        self._reclaim()
                    else:
                        retry_at = now + min(BACKOFF[1], BACKOFF[0] * 2 ** (self.failures - 1))
                continue
            due = held.n >= self.max_rows or now - held.since >= self.roll_seconds
            if self.error is not None:
                due = now >= retry_at
            if not due:
                continue
            if self._write(held, self.dir):
                held = Held()
                self._reclaim()
            else:
                retry_at = time.monotonic() + min(BACKOFF[1], BACKOFF[0] * 2 ** (self.failures - 1))
                if held.n >= self.max_queue_rows and self._spill(held):  # memory stays bounded
                    held = Held()
            self._held = held.n

    def _drain(self, held: Held) -> None:
        """At close: everything queued joins `held`; written, else spilled, else counted as lost."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                held.add(item)
                with self._cond:
                    self._pending -= len(item)
        if held.n and not self._write(held, self.dir) and not self._spill(held):
            self.rows_lost += held.n
            log.error("prediction log: %d answered rows could not be written to %s nor to %s; they are lost",
                      held.n, self.dir, self.fallback_dir)
        self._held = 0

    def _spill(self, held: Held) -> bool:
        if self.fallback_dir is None:
            return False
        try:
            make_private_dir(self.fallback_dir)
        except OSError:
            return False
        ok = self._write(held, self.fallback_dir, spill=True)
        if ok:
            self.rows_spilled += held.n
            log.error("prediction log: %d rows spilled to %s (the log folder %s cannot be written)",
                      held.n, self.fallback_dir, self.dir)
        return ok

    def _probe(self) -> bool:
        """Can the log folder be written again? (Everything held was spilled: no part to retry with.)"""
        probe = self.dir / f".probe-{os.getpid()}"
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
            probe.unlink()
        except OSError as exc:
            self.error, self.failures = exc, self.failures + 1
            return False
        log.warning("prediction log: %s can be written again after %d failed attempts", self.dir, self.failures)
        self.error, self.failures = None, 0
        return True

    def _reclaim(self) -> None:
        """Move parts spilled by this process back into the log folder, once it can be written."""
        if self.fallback_dir is None or not self.rows_spilled:
            return
        for p in sorted(self.fallback_dir.glob(f"part-*-{os.getpid()}-*.parquet")):
            try:
                os.replace(p, self.dir / p.name)
            except OSError:
                return

    def table(self, held: Held):
        """The pyarrow Table of the held rows (input columns typed by `schema` when given)."""
        import pyarrow as pa

        arrays, names = [], []
        for name, values in held.cols.items():
            if name == "ts":
                t = pa.timestamp("us", tz="UTC")
            elif self.schema is not None and name in self.schema.names:
                t = self.schema.field(name).type
            else:
                t = None
            try:
                arr = pa.array(values, type=t, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed values (a model without a signature)
                try:
                    arr = pa.Table.from_pandas(pd.DataFrame({name: values}), preserve_index=False).column(0)
                    arr = arr.cast(t) if t is not None else arr
                except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):  # kept as text
                    arr = pa.array([None if v is None else str(v) for v in values], type=pa.string())
            arrays.append(arr)
            names.append(name)
        return pa.Table.from_arrays(arrays, names=names)

    def _write(self, held: Held, folder: Path, spill: bool = False) -> bool:
        """One part of the held rows in `folder`; False (and `error` set) if it could not be written."""
        import pyarrow.parquet as pq

        tmp = None
        try:
            table = self.table(held)
            stamp = held.first_ts.strftime("%Y%m%dT%H%M%S%fZ")
            self._seq += 1
            name = f"part-{stamp}-{os.getpid()}-{self._seq:06d}.parquet"
            tmp = folder / f".{name}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                pq.write_table(table, f)
            os.replace(tmp, folder / name)
        except Exception as exc:  # kept in memory and retried; the error shows in /ready and the server log
            if tmp is not None:
                try:
                    tmp.unlink(missing_ok=True)
                except OSError:
                    pass
            if not spill:
                self.error = exc
                self.failures += 1
                log.error("prediction log: a part of %d rows could not be written to %s (attempt %d, kept in "
                          "memory and retried): %s: %s", held.n, folder, self.failures, type(exc).__name__, exc)
            return False
        if not spill:
            if self.error is not None:
                log.warning("prediction log: writing again after %d failed attempts", self.failures)
            self.error, self.failures = None, 0
            self.rows_written += held.n
            self.parts_written += 1
        return True


def make_private_dir(path: Path) -> None:
    """Create `path` (and parents) readable by its owner only (0700) when it does not exist yet."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)  # mkdir's mode is reduced by the umask


def parts(log_dir: Path) -> list[Path]:
    """The prediction log's part files, oldest first."""
    return sorted(Path(log_dir).glob("part-*.parquet"))


def parts_to_monitor(root: Path, log_dir: str | Path, send: str) -> tuple[Path, list[Path]]:
    """The log folder `log_dir` (serve.log_dir, under `root` unless absolute) and its parts; a
    MonitorError saying what to `send` first when it has none."""
    folder = Path(log_dir) if Path(log_dir).is_absolute() else Path(root) / log_dir
    files = parts(folder)
    if not files:
        raise MonitorError(f"the prediction log {log_dir} is empty: serve {send} first, "
                           "or monitor a file with --input")
    return folder, files


def read(log_dir: Path) -> pd.DataFrame:
    """Every row of the prediction log (all parts), oldest part first."""
    files = parts(log_dir)
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
